"""One thin, explicit transport to the Kubernetes/OpenShift API on top of the ``kubernetes`` client.

Why not the generated API classes: securebuild talks to a handful of paths (Builds and their
status, BuildConfigs, Namespaces, Secrets, Events, reviews), needs raw watch streams with an
inactivity timeout, JSON merge patches with a resourceVersion precondition and the HTTP status of
every failure. The ``kubernetes`` client still does what it is good at: reading kubeconfig or the
in-cluster service account (with token refresh), TLS, client certificates, authentication headers.

TLS and proxies are immune to the environment: ``kubernetes`` 37 reads ``HTTPS_PROXY`` itself,
so the proxy is set explicitly from the daemon's config (none by default); the CA is the one of
the kubeconfig or service account, handed to urllib3 as ``ca_certs`` (urllib3 then loads no
default trust store, so ``SSL_CERT_FILE`` does not apply, and ``REQUESTS_CA_BUNDLE`` is a
``requests`` feature that urllib3 never reads). Every call has a timeout.
"""

from __future__ import annotations

import json
import logging
import time
import urllib.parse
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import urllib3
from kubernetes import client as k8s_client
from kubernetes import config as k8s_config
from kubernetes.client.exceptions import ApiException

from securebuild.cluster.metrics import UNREACHABLE, count_error
from securebuild.errors import SecurebuildError

logger = logging.getLogger(__name__)

#: (connect, read) seconds for ordinary calls.
DEFAULT_TIMEOUT: tuple[float, float] = (5.0, 30.0)

JSON = "application/json"
MERGE_PATCH = "application/merge-patch+json"


class ClusterError(SecurebuildError):
    """The API could not be reached or configured (not an HTTP answer)."""


class ApiError(SecurebuildError):
    """The API server answered with an HTTP error status."""

    def __init__(self, status: int, method: str, path: str, body: Any) -> None:
        self.status = status
        self.method = method
        self.path = path
        self.body = body
        message = body.get("message") if isinstance(body, dict) else str(body)[:300]
        self.reason = body.get("reason") if isinstance(body, dict) else None
        super().__init__(f"{method} {path}: {status} {message}")

    @property
    def conflict(self) -> bool:
        return self.status == 409

    @property
    def not_found(self) -> bool:
        return self.status == 404

    @property
    def gone(self) -> bool:
        return self.status == 410


@dataclass(frozen=True)
class ClusterAccess:
    """How to reach the cluster: a kubeconfig (and context), or the in-cluster service account."""

    kubeconfig: Path | None = None
    context: str | None = None
    in_cluster: bool = False
    proxy: str | None = None


def load_configuration(access: ClusterAccess) -> k8s_client.Configuration:
    configuration = k8s_client.Configuration()
    try:
        if access.in_cluster:
            k8s_config.load_incluster_config(client_configuration=configuration)  # type: ignore[no-untyped-call]
        else:
            if access.kubeconfig is None:
                raise ClusterError("no kubeconfig given and in_cluster is false")
            k8s_config.load_kube_config(  # type: ignore[no-untyped-call]
                config_file=str(access.kubeconfig),
                context=access.context,
                client_configuration=configuration,
                persist_config=False,
            )
    except (k8s_config.ConfigException, OSError, ValueError) as exc:
        source = "in-cluster service account" if access.in_cluster else str(access.kubeconfig)
        raise ClusterError(f"cannot load cluster access from {source}: {exc}") from exc
    # Explicit proxy (None: direct), never the environment's.
    configuration.proxy = access.proxy
    configuration.no_proxy = None
    configuration.retries = False
    return configuration


class Kube:
    """Raw JSON calls with explicit timeouts; raises :class:`ApiError` on an HTTP error."""

    def __init__(
        self,
        configuration: k8s_client.Configuration,
        *,
        timeout: tuple[float, float] = DEFAULT_TIMEOUT,
    ) -> None:
        self.configuration = configuration
        self.api = k8s_client.ApiClient(configuration)
        self.timeout = timeout

    @classmethod
    def from_access(cls, access: ClusterAccess, **kwargs: Any) -> Kube:
        return cls(load_configuration(access), **kwargs)

    @property
    def host(self) -> str:
        return str(self.configuration.host)

    def close(self) -> None:
        self.api.close()  # type: ignore[no-untyped-call]

    def _send(
        self,
        method: str,
        path: str,
        *,
        query: Mapping[str, Any] | None,
        body: Any,
        content_type: str,
        timeout: tuple[float, float] | float,
        accept: str = JSON,
    ) -> Any:
        headers = {"Accept": accept}
        if body is not None:
            headers["Content-Type"] = content_type
        params = [(k, _query_value(v)) for k, v in (query or {}).items() if v is not None]
        _method, url, header_params, serialized, _post = self.api.param_serialize(
            method=method,
            resource_path=path,
            query_params=params,
            header_params=headers,
            body=body,
            auth_settings=["BearerToken"],
        )
        try:
            response = self.api.call_api(
                method,
                url,
                header_params=header_params,
                body=serialized,
                _request_timeout=timeout,
            )
        except (ApiException, urllib3.exceptions.HTTPError, OSError) as exc:
            # ApiException: a transport problem wrapped by the client, not an HTTP answer
            count_error(UNREACHABLE)
            raise ClusterError(f"{method} {path}: {exc}") from exc
        if response.status >= 400:
            count_error(response.status)
        return response

    def request(
        self,
        method: str,
        path: str,
        *,
        query: Mapping[str, Any] | None = None,
        body: Any = None,
        content_type: str = JSON,
        timeout: tuple[float, float] | float | None = None,
    ) -> Any:
        response = self._send(
            method,
            path,
            query=query,
            body=body,
            content_type=content_type,
            timeout=timeout or self.timeout,
        )
        try:
            raw = response.read()
        except (urllib3.exceptions.HTTPError, OSError) as exc:
            count_error(UNREACHABLE)
            raise ClusterError(f"{method} {path}: reading the answer: {exc}") from exc
        decoded: Any
        try:
            decoded = json.loads(raw) if raw else None
        except ValueError:
            decoded = raw.decode(errors="replace")
        if response.status >= 400:
            raise ApiError(response.status, method, path, decoded)
        return decoded

    def get(self, path: str, **query: Any) -> Any:
        return self.request("GET", path, query=query)

    def stream_lines(
        self,
        path: str,
        *,
        query: Mapping[str, Any] | None = None,
        timeout: tuple[float, float],
        on_open: Callable[[Any], None] | None = None,
    ) -> Iterator[bytes]:
        """GET a streaming answer (watch) and yield its lines.

        The read timeout is the inactivity timeout: a stream silent for that long raises
        :class:`ClusterError` (urllib3's ReadTimeoutError) instead of hanging forever.
        """
        response = self._send(
            "GET", path, query=query, body=None, content_type=JSON, timeout=timeout
        )
        raw = response.response
        if on_open is not None:
            on_open(raw)  # lets another thread shut the stream down (urllib3 shutdown())
        try:
            if response.status >= 400:
                data = raw.read()
                try:
                    body: Any = json.loads(data)
                except ValueError:
                    body = data.decode(errors="replace")
                raise ApiError(response.status, "GET", path, body)
            buffer = b""
            try:
                for chunk in raw.stream(65536, decode_content=True):
                    buffer += chunk
                    *lines, buffer = buffer.split(b"\n")
                    for line in lines:
                        if line.strip():
                            yield line
            except (urllib3.exceptions.HTTPError, OSError) as exc:
                raise ClusterError(f"watch {path}: {exc}") from exc
            if buffer.strip():
                yield buffer
        finally:
            raw.release_conn()
            raw.close()


T = TypeVar("T")


def transient(exc: BaseException) -> bool:
    """Worth retrying: no answer at all, 429, or a 5xx from the API server."""
    if isinstance(exc, ClusterError):
        return True
    return isinstance(exc, ApiError) and (exc.status == 429 or exc.status >= 500)


def retry_transient(
    call: Callable[[], T],
    *,
    timeout: float,
    what: str,
    stop: Callable[[], bool] = lambda: False,
) -> T:
    """``call()``, retried with backoff while it fails transiently, for up to ``timeout`` s.

    Used where giving up would lose work: the final status of a build that ran while the API
    server was restarting must still be written once it is back.
    """
    deadline = time.monotonic() + timeout
    delay = 0.2
    while True:
        try:
            return call()
        except (ApiError, ClusterError) as exc:
            if not transient(exc) or time.monotonic() + delay > deadline or stop():
                raise
            logger.warning("%s: %s; retrying in %.1f s", what, exc, delay)
            time.sleep(delay)
            delay = min(delay * 2, 5.0)


def _query_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def quote(segment: str) -> str:
    """One path segment, quoted (names are validated by the API server, but never trusted)."""
    return urllib.parse.quote(segment, safe="")
