"""Docker API clients that trust exactly one CA and nothing from the environment.

The Docker SDK's ``APIClient`` is a ``requests.Session``. With ``trust_env`` on (the default),
requests replaces the CA file given to the session with ``$REQUESTS_CA_BUNDLE`` or
``$CURL_CA_BUNDLE`` on every request (psf/requests#3829), honours ``$HTTPS_PROXY`` and
``~/.netrc``; worse, the SDK version probe runs inside ``__init__``, before a caller could turn
``trust_env`` off. The SDK also reads ``~/.docker/config.json`` of the control host and sends
*every* credential found there with each ``build`` (``X-Registry-Config``) and proxy settings as
build arguments: into a tenant's VM.

:class:`IsolatedAPIClient` closes all of that: ``trust_env`` is always false (so only the
project's CA verifies dockerd, and only the project's client certificate is offered), no Docker
config file is consulted, and registry credentials are only what the caller passes for this
client (:attr:`IsolatedAPIClient.registry_auths`) or per call (``auth_config=`` of pull/push).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import docker
import docker.auth
import docker.errors
import docker.tls
from docker.utils.proxy import ProxyConfig

from securebuild.errors import SecurebuildError

logger = logging.getLogger(__name__)

DEFAULT_TIMEOUT = 60.0


class DockerTLSError(SecurebuildError):
    """The TLS material for a Docker client is missing or unusable."""


class IsolatedAPIClient(docker.APIClient):  # type: ignore[misc]
    """A ``docker.APIClient`` deaf to the environment and to the host's Docker config.

    Construct it through :func:`docker_api_client`.
    """

    def __init__(
        self,
        *args: Any,
        registry_auths: Mapping[str, Mapping[str, str]] | None = None,
        **kwargs: Any,
    ) -> None:
        self._isolated_auths = _auth_config(registry_auths or {})
        super().__init__(*args, **kwargs)

    # requests.Session.__init__ assigns trust_env = True; this property makes that a no-op, so
    # even the version probe in APIClient.__init__ runs without the environment.
    @property
    def trust_env(self) -> bool:
        return False

    @trust_env.setter
    def trust_env(self, value: bool) -> None:
        if value:
            logger.debug("ignoring trust_env=True on an isolated Docker client")

    # The SDK (re)loads ~/.docker/config.json whenever its auth config is empty; these
    # properties keep whatever it loads out of the requests it sends.
    @property
    def _general_configs(self) -> dict[str, Any]:
        return {}

    @_general_configs.setter
    def _general_configs(self, value: object) -> None:
        pass

    @property
    def _proxy_configs(self) -> ProxyConfig:
        return ProxyConfig()

    @_proxy_configs.setter
    def _proxy_configs(self, value: object) -> None:
        pass

    @property
    def _auth_configs(self) -> docker.auth.AuthConfig:
        return self._isolated_auths

    @_auth_configs.setter
    def _auth_configs(self, value: object) -> None:
        pass

    @property
    def registry_auths(self) -> dict[str, dict[str, str]]:
        """Credentials sent with ``build`` (base image pulls), by registry host[:port]."""
        return {
            registry: {k: v for k, v in entry.items() if isinstance(v, str)}
            for registry, entry in self._isolated_auths.auths.items()
        }

    @registry_auths.setter
    def registry_auths(self, value: Mapping[str, Mapping[str, str]]) -> None:
        self._isolated_auths = _auth_config(value)


def _auth_config(auths: Mapping[str, Mapping[str, str]]) -> docker.auth.AuthConfig:
    entries = {
        registry: {
            "username": entry["username"],
            "password": entry["password"],
            "serveraddress": registry,
        }
        for registry, entry in auths.items()
    }
    return docker.auth.AuthConfig({"auths": entries})


def _readable(path: Path, what: str) -> str:
    if not path.is_file():
        raise DockerTLSError(f"{what} {path} does not exist or is not a file")
    try:
        with path.open("rb"):
            pass
    except OSError as exc:
        raise DockerTLSError(f"{what} {path} is not readable: {exc}") from exc
    return str(path)


def docker_api_client(
    base_url: str,
    *,
    ca: Path,
    cert: Path,
    key: Path,
    timeout: float = DEFAULT_TIMEOUT,
    version: str | None = None,
    registry_auths: Mapping[str, Mapping[str, str]] | None = None,
) -> IsolatedAPIClient:
    """An API client for a dockerd with ``--tlsverify``: server checked against ``ca`` only.

    ``base_url`` is ``tcp://host:port`` or ``https://host:port``; plain ``http://`` is refused
    (the point is mutual TLS). ``version`` is the API version; ``None`` asks the server, which
    means a round trip here, so a daemon that is down or refuses our certificate fails now with
    a :class:`docker.errors.DockerException` rather than at first use.
    """
    if base_url.startswith(("http://", "unix://", "http+unix://", "npipe://", "ssh://")):
        raise DockerTLSError(f"refusing non-TLS Docker URL {base_url!r}")
    tls = docker.tls.TLSConfig(
        client_cert=(_readable(cert, "client certificate"), _readable(key, "client key")),
        ca_cert=_readable(ca, "CA certificate"),
        verify=True,
    )
    return IsolatedAPIClient(
        base_url=base_url,
        tls=tls,
        timeout=timeout,
        version=version,
        registry_auths=registry_auths,
    )
