"""securebuild's HTTPS API: build logs, binary uploads, health and metrics (DESIGN section 2).

Paths mirror OpenShift's ``build.openshift.io/v1`` subresources, so a client that knows
OpenShift knows these::

    GET  /apis/build.openshift.io/v1/namespaces/{ns}/builds/{name}/log[?follow=true]
    POST /apis/build.openshift.io/v1/namespaces/{ns}/buildconfigs/{name}/instantiatebinary
         [?asFile=F]
    GET  /healthz   /readyz   /metrics

Standard library ``http.server`` in threads behind ``ssl``: the traffic is a few log streams and
uploads, not worth a framework. Errors are Kubernetes ``Status`` objects.
"""

from __future__ import annotations

import http.client
import json
import logging
import re
import ssl
import threading
import urllib.parse
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Protocol

from prometheus_client import CONTENT_TYPE_LATEST, Counter, generate_latest

from securebuild.api.auth import Action, Authenticator, Authorizer, Post, User
from securebuild.errors import SecurebuildError

logger = logging.getLogger(__name__)

_NAME = r"[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?"
LOG_PATH = re.compile(
    rf"^/apis/build\.openshift\.io/v1/namespaces/(?P<ns>{_NAME})/builds/(?P<name>{_NAME})/log$"
)
UPLOAD_PATH = re.compile(
    rf"^/apis/build\.openshift\.io/v1/namespaces/(?P<ns>{_NAME})/buildconfigs/"
    rf"(?P<name>{_NAME})/instantiatebinary$"
)
MAX_UPLOAD_BYTES = 2 * 1024 * 1024 * 1024
API_ERRORS = Counter("securebuild_api_errors_total", "HTTPS API answers >= 400", ["code"])

#: (namespace, buildconfig, asFile or None, uploaded file, user) -> the created Build
InstantiateBinary = Callable[[str, str, str | None, Path, User], dict[str, Any]]
#: (namespace, name) -> the Build, or None if it does not exist
GetBuild = Callable[[str, str], dict[str, Any] | None]
#: the Build -> base URL of the replica that holds its log, or None if it is here (or nowhere)
LocateLog = Callable[[dict[str, Any]], str | None]
FORWARDED_HEADER = "X-Securebuild-Forwarded"


class BuildLogView(Protocol):
    """What the API reads of a build log (``securebuild.logs.BuildLog``)."""

    @property
    def exists(self) -> bool: ...

    def read(self) -> list[str]: ...

    def follow(self, *, stop: Callable[[], bool] | None = None) -> Iterator[str]: ...


class LogSource(Protocol):
    def log(self, namespace: str, name: str) -> Any: ...


class _Handler(BaseHTTPRequestHandler):
    server: _Server
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:
        logger.debug("api %s: %s", self.client_address[0], format % args)

    # -- plumbing ------------------------------------------------------------------------
    def _send(self, code: int, body: bytes, content_type: str = "text/plain") -> None:
        if code >= 400:
            API_ERRORS.labels(str(code)).inc()
        self.send_response(code)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def _status(self, code: int, message: str, reason: str) -> None:
        body = {
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": message,
            "reason": reason,
            "code": code,
        }
        self._send(code, json.dumps(body).encode(), "application/json")

    def _user(self) -> User | None:
        header = self.headers.get("Authorization", "")
        scheme, _, token = header.partition(" ")
        user = None
        if scheme.lower() == "bearer" and token.strip():
            user = self.server.authn.user(token.strip())
        if user is None:
            self._status(401, "Unauthorized", "Unauthorized")
        return user

    def _authorize(self, user: User, action: Action) -> bool:
        if self.server.authz.allowed(user, action):
            return True
        self._status(403, action.forbidden_message(user), "Forbidden")
        return False

    def _route(self) -> tuple[str, dict[str, list[str]]]:
        parsed = urllib.parse.urlsplit(self.path)
        return parsed.path, urllib.parse.parse_qs(parsed.query)

    # -- GET -----------------------------------------------------------------------------
    def do_GET(self) -> None:
        path, query = self._route()
        try:
            if path == "/healthz":
                self._send(200, b"ok")
            elif path == "/readyz":
                ready = self.server.ready()
                self._send(200 if ready else 503, b"ok" if ready else b"not ready")
            elif path == "/metrics":
                self._send(200, generate_latest(), CONTENT_TYPE_LATEST)
            elif match := LOG_PATH.match(path):
                self._log(match["ns"], match["name"], query)
            else:
                self._status(404, "the server could not find the requested resource", "NotFound")
        except SecurebuildError as exc:  # the cluster is unreachable or answered an error
            logger.warning("api: %s", exc)
            self._status(503, "the cluster API is not available", "ServiceUnavailable")

    def _log(self, namespace: str, name: str, query: dict[str, list[str]]) -> None:
        user = self._user()
        if user is None:
            return
        if not self._authorize(user, Action("get", "builds", "log", namespace, name)):
            return
        build = self.server.get_build(namespace, name)
        if build is None:
            self._status(404, f'builds.build.openshift.io "{name}" not found', "NotFound")
            return
        phase = (build.get("status") or {}).get("phase") or "New"
        log = self.server.log_store.log(namespace, name)
        if not log.exists:
            if phase == "Cancelled":
                self._status(
                    400, f"build {name} was cancelled. No logs are available.", "BadRequest"
                )
                return
            if phase == "Error":
                self._status(
                    400, f"build {name} is in an error state. No logs are available.", "BadRequest"
                )
                return
        if not log.exists and not self.headers.get(FORWARDED_HEADER):
            peer = self.server.locate_log(build)
            if peer is not None:
                self._forward(peer)
                return
        follow = query.get("follow", ["false"])[0] in ("true", "1")
        self.send_response(200)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        lines = log.follow(stop=self.server.stopping.is_set) if follow else _read(log)
        try:
            for line in lines:
                self._chunk((line + "\n").encode())
            self._chunk(b"")
        except (BrokenPipeError, ConnectionResetError):
            logger.debug("log reader of %s/%s went away", namespace, name)

    def _forward(self, peer: str) -> None:
        """The log is on the replica that ran the build: relay the request there.

        The caller's token goes along and the peer checks it again (TokenReview and
        SubjectAccessReview); the peer's certificate is verified against ``peer_ca``.
        """
        url = urllib.parse.urlsplit(peer)
        connection = http.client.HTTPSConnection(
            url.hostname or "", url.port or 443, context=self.server.peer_context, timeout=30
        )
        try:
            connection.request(
                "GET",
                self.path,
                headers={
                    "Authorization": self.headers.get("Authorization", ""),
                    FORWARDED_HEADER: "1",
                },
            )
            answer = connection.getresponse()
            if answer.status != 200:
                body = answer.read()
                self._send(answer.status, body, answer.getheader("Content-Type", "text/plain"))
                return
            connection.sock.settimeout(None)  # a follow may be silent for long
            self.send_response(200)
            self.send_header("Content-Type", "text/plain")
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            while chunk := answer.read1(65536):
                self._chunk(chunk)
            self._chunk(b"")
        except (OSError, http.client.HTTPException) as exc:
            logger.warning("forwarding a log request to %s: %s", peer, exc)
            self._status(503, "the replica holding this log is not reachable", "ServiceUnavailable")
        finally:
            connection.close()

    def _chunk(self, data: bytes) -> None:
        self.wfile.write(f"{len(data):x}\r\n".encode() + data + b"\r\n")
        self.wfile.flush()

    # -- POST ----------------------------------------------------------------------------
    def do_POST(self) -> None:
        path, query = self._route()
        match = UPLOAD_PATH.match(path)
        if match is None:
            self._status(404, "the server could not find the requested resource", "NotFound")
            return
        try:
            self._upload(match["ns"], match["name"], query)
        except SecurebuildError as exc:
            logger.warning("api: %s", exc)
            status = getattr(exc, "status", 503)
            code = status if isinstance(status, int) and 400 <= status < 500 else 503
            self._status(code, str(exc), "BadRequest" if code < 500 else "ServiceUnavailable")

    def _upload(self, namespace: str, name: str, query: dict[str, list[str]]) -> None:
        user = self._user()
        if user is None:
            return
        action = Action("create", "buildconfigs", "instantiatebinary", namespace, name)
        if not self._authorize(user, action):
            return
        if self.server.instantiate_binary is None:
            self._status(501, "binary builds are not enabled on this daemon", "NotImplemented")
            return
        try:
            length = int(self.headers.get("Content-Length", ""))
        except ValueError:
            self._status(411, "a Content-Length is required", "BadRequest")
            return
        if not 0 <= length <= MAX_UPLOAD_BYTES:
            self._status(413, "the upload is too large", "RequestEntityTooLarge")
            return
        as_file = query.get("asFile", [None])[0]
        if as_file is not None and (not as_file or "/" in as_file or as_file in (".", "..")):
            self._status(400, "asFile must be a plain file name", "BadRequest")
            return
        target = self.server.upload_dir / f"upload-{threading.get_ident()}-{id(self)}"
        target.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        remaining = length
        with target.open("wb") as out:
            while remaining:
                chunk = self.rfile.read(min(remaining, 1 << 20))
                if not chunk:
                    break
                out.write(chunk)
                remaining -= len(chunk)
        if remaining:
            target.unlink(missing_ok=True)
            self._status(400, "the upload ended early", "BadRequest")
            return
        build = self.server.instantiate_binary(namespace, name, as_file, target, user)
        self._send(201, json.dumps(build).encode(), "application/json")


def _read(log: Any) -> Any:
    try:
        return iter(log.read())
    except Exception:
        return iter(())


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    get_build: GetBuild
    locate_log: LocateLog
    peer_context: ssl.SSLContext
    authn: Authenticator
    authz: Authorizer
    log_store: LogSource
    ready: Callable[[], bool]
    instantiate_binary: InstantiateBinary | None
    upload_dir: Path
    stopping: threading.Event


class ApiServer:
    """The HTTPS API on its own threads; ``port`` 0 picks a free port (see :attr:`port`)."""

    def __init__(
        self,
        *,
        post: Post,
        get_build: GetBuild,
        log_store: LogSource,
        host: str,
        port: int,
        cert: Path,
        key: Path,
        upload_dir: Path,
        ready: Callable[[], bool] = lambda: True,
        instantiate_binary: InstantiateBinary | None = None,
        locate_log: LocateLog = lambda _build: None,
        peer_ca: Path | None = None,
    ) -> None:
        self._server = _Server((host, port), _Handler)
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.minimum_version = ssl.TLSVersion.TLSv1_2
        context.load_cert_chain(str(cert), str(key))
        self._server.socket = context.wrap_socket(self._server.socket, server_side=True)
        self._server.get_build = get_build
        self._server.locate_log = locate_log
        # Replicas are reached by pod IP, which no certificate names: the chain is checked
        # against the private peer CA (default: our own certificate, shared by all replicas).
        peer_context = ssl.create_default_context(cafile=str(peer_ca or cert))
        peer_context.check_hostname = False
        self._server.peer_context = peer_context
        self._server.authn = Authenticator(post)
        self._server.authz = Authorizer(post)
        self._server.log_store = log_store
        self._server.ready = ready
        self._server.instantiate_binary = instantiate_binary
        self._server.upload_dir = upload_dir
        self._server.stopping = threading.Event()
        self._thread: threading.Thread | None = None

    @property
    def port(self) -> int:
        return int(self._server.server_address[1])

    @property
    def url(self) -> str:
        host = self._server.server_address[0]
        return f"https://{host!s}:{self.port}"

    def start(self) -> ApiServer:
        self._thread = threading.Thread(
            target=self._server.serve_forever, name="https api", daemon=True
        )
        self._thread.start()
        logger.info("HTTPS API listening on %s", self.url)
        return self

    def stop(self) -> None:
        self._server.stopping.set()
        self._server.shutdown()
        self._server.server_close()
        if self._thread is not None:
            self._thread.join(10)
