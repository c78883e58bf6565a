"""A git smart-HTTP server over TLS with token auth on 127.0.0.1 (``git http-backend``).

Tests fetch git sources inside a project VM from it (the VM sees the host's loopback as
``10.0.2.2``, which is in the certificate), with a username and token checked as HTTP basic
auth, as a hosted git service would. ``git http-backend`` runs as a CGI per request, so pushes
and fetches behave exactly as with a real server; repositories live in a temp directory.
"""

from __future__ import annotations

import base64
import hmac
import logging
import os
import secrets
import shutil
import ssl
import subprocess
import tempfile
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from securebuild.devenv.process import LOOPBACK, Service, ServiceError
from securebuild.pki import ProjectPKI

logger = logging.getLogger(__name__)

GUEST_HOST_ALIAS = "10.0.2.2"


def _backend() -> str:
    out = subprocess.run(
        ["git", "--exec-path"], capture_output=True, text=True, check=True, timeout=10
    ).stdout.strip()
    return str(Path(out) / "git-http-backend")


class GitServer(Service):
    """``https://10.0.2.2:<port>/<repo>.git`` for guests, ``https://127.0.0.1:<port>`` here."""

    def __init__(self, *, username: str = "tenant") -> None:
        self.username = username
        self.token = secrets.token_urlsafe(24)
        self.workdir = Path(tempfile.mkdtemp(prefix="sb-git-"))
        self.root = self.workdir / "repos"
        self.root.mkdir()
        self.port = 0
        self.requests: list[str] = []
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self._pki: ProjectPKI | None = None

    @property
    def ca_cert(self) -> Path:
        assert self._pki is not None, "git server not started"
        return self._pki.ca_cert

    def url(self, repo: str, *, host: str = GUEST_HOST_ALIAS) -> str:
        return f"https://{host}:{self.port}/{repo}.git"

    def create_repo(self, name: str, files: dict[str, str | bytes], *, branch: str = "main") -> str:
        """A bare repository ``name.git`` with one commit of ``files``; returns the commit id."""
        work = self.workdir / "work" / name
        work.mkdir(parents=True)
        env = {
            **os.environ,
            "GIT_AUTHOR_NAME": "Jane Doe",
            "GIT_AUTHOR_EMAIL": "jane@example.com",
            "GIT_COMMITTER_NAME": "Jane Doe",
            "GIT_COMMITTER_EMAIL": "jane@example.com",
            "GIT_CONFIG_NOSYSTEM": "1",
            "HOME": str(self.workdir),
        }
        for rel, content in files.items():
            path = work / rel
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(content.encode() if isinstance(content, str) else content)
            if rel.startswith(".d2i/") or rel.endswith(".sh"):
                path.chmod(0o755)

        def git(*args: str, cwd: Path = work) -> str:
            return subprocess.run(
                ["git", *args],
                cwd=cwd,
                env=env,
                capture_output=True,
                text=True,
                check=True,
                timeout=60,
            ).stdout.strip()

        git("init", "-q", "-b", branch)
        git("add", "-A")
        git("commit", "-q", "-m", f"Initial commit of {name}\n\nWith a body line.")
        bare = self.root / f"{name}.git"
        git("clone", "-q", "--bare", str(work), str(bare), cwd=self.workdir)
        git("config", "http.receivepack", "false", cwd=bare)
        return git("rev-parse", "HEAD")

    def start(self) -> GitServer:
        self._pki = ProjectPKI.ensure(
            self.workdir / "state", "gitserver", server_hosts=[LOOPBACK, GUEST_HOST_ALIAS]
        )
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: object) -> None:
                logger.debug("git server: %s", format % args)

            def _authorized(self) -> bool:
                header = self.headers.get("Authorization", "")
                if not header.startswith("Basic "):
                    return False
                try:
                    user, _, token = base64.b64decode(header[6:]).decode().partition(":")
                except ValueError:
                    return False
                return user == server.username and hmac.compare_digest(token, server.token)

            def _handle(self) -> None:
                server.requests.append(f"{self.command} {self.path}")
                if not self._authorized():
                    self.send_response(401)
                    self.send_header("WWW-Authenticate", 'Basic realm="git"')
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                path, _, query = self.path.partition("?")
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                env = {
                    "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
                    "GIT_PROJECT_ROOT": str(server.root),
                    "GIT_HTTP_EXPORT_ALL": "1",
                    "REQUEST_METHOD": self.command,
                    "PATH_INFO": path,
                    "QUERY_STRING": query,
                    "CONTENT_TYPE": self.headers.get("Content-Type", ""),
                    "CONTENT_LENGTH": str(len(body)),
                    "REMOTE_USER": server.username,
                    "REMOTE_ADDR": self.client_address[0],
                    "GIT_CONFIG_NOSYSTEM": "1",
                    "HOME": str(server.workdir),
                }
                proc = subprocess.run(
                    [_backend()],
                    input=body,
                    env=env,
                    capture_output=True,
                    check=False,
                    timeout=120,
                )
                head, _, payload = proc.stdout.partition(b"\r\n\r\n")
                status = 200
                headers = []
                for line in head.decode("latin-1").split("\r\n"):
                    key, _, value = line.partition(":")
                    if key.lower() == "status":
                        status = int(value.strip().split()[0])
                    elif key:
                        headers.append((key, value.strip()))
                self.send_response(status)
                for key, value in headers:
                    self.send_header(key, value)
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            do_GET = _handle
            do_POST = _handle

        httpd = ThreadingHTTPServer((LOOPBACK, 0), Handler)
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(str(self._pki.server_cert), str(self._pki.server_key))
        httpd.socket = context.wrap_socket(httpd.socket, server_side=True)
        self.port = httpd.server_address[1]
        self._server = httpd
        self._thread = threading.Thread(target=httpd.serve_forever, daemon=True)
        self._thread.start()
        if shutil.which("git") is None:
            raise ServiceError("git is missing: apt-get install git")
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        shutil.rmtree(self.workdir, ignore_errors=True)
