"""Debian's Docker registry (distribution 2.8) on 127.0.0.1 with TLS and htpasswd (bcrypt) auth.

The TLS certificate comes from a CA made with :mod:`securebuild.pki` (a throw-away "project"
named ``registry`` in the temp dir), so clients must be given :attr:`Registry.ca_cert`; nothing
is added to the system trust store.
"""

from __future__ import annotations

import logging
import secrets
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

import requests
import yaml

from securebuild.devenv.process import LOOPBACK, ManagedProcess, Service, ServiceError, free_port
from securebuild.pki import ProjectPKI

logger = logging.getLogger(__name__)

REGISTRY_BIN = "/usr/bin/docker-registry"
#: dockerd treats 127.0.0.0/8 registries as insecure (no TLS verification); one on ::1, named
#: by a host name that resolves to ::1 only (docker 20.10 references cannot hold IPv6
#: literals), is verified against certs.d like a remote one: that is how tests prove the trust.
LOOPBACK_HOSTS = (LOOPBACK, "::1")
HTPASSWD_BIN = "/usr/bin/htpasswd"
START_TIMEOUT = 30.0


def tls_session(ca_cert: Path) -> requests.Session:
    """A requests session that trusts ``ca_cert`` only, whatever REQUESTS_CA_BUNDLE says."""
    session = requests.Session()
    session.trust_env = False
    session.verify = str(ca_cert)
    return session


class Registry(Service):
    """A registry with TLS and basic auth; ``username``/``password`` are generated."""

    def __init__(
        self,
        *,
        host: str = LOOPBACK,
        hostname: str | None = None,
        username: str = "securebuild",
        workdir: Path | None = None,
    ) -> None:
        if host not in LOOPBACK_HOSTS:
            raise ServiceError(f"the test registry listens on loopback only, not {host!r}")
        self.host = host
        #: name clients use instead of the IP (it must resolve to ``host`` for them)
        self.hostname = hostname
        self.username = username
        self.password = secrets.token_urlsafe(18)
        self._own_workdir = workdir is None
        self.workdir = workdir or Path(tempfile.mkdtemp(prefix="sb-registry-"))
        self.port = 0
        self.startup_seconds = 0.0
        self._process: ManagedProcess | None = None
        self._pki: ProjectPKI | None = None

    # -- what clients need ---------------------------------------------------------------------

    @property
    def address(self) -> str:
        """``127.0.0.1:<port>`` (or ``[::1]:<port>``): the registry part of an image reference."""
        if self.hostname:
            return f"{self.hostname}:{self.port}"
        return f"{self.host}:{self.port}"

    @property
    def url(self) -> str:
        return f"https://{self.address}"

    @property
    def ca_cert(self) -> Path:
        assert self._pki is not None, "registry not started"
        return self._pki.ca_cert

    @property
    def auth_config(self) -> dict[str, str]:
        """For docker SDK ``pull``/``push(auth_config=...)``."""
        return {"username": self.username, "password": self.password}

    @property
    def log_path(self) -> Path:
        return self.workdir / "registry.log"

    def session(self, *, authenticated: bool = True) -> requests.Session:
        session = tls_session(self.ca_cert)
        if authenticated:
            session.auth = (self.username, self.password)
        return session

    # -- lifecycle ----------------------------------------------------------------------------

    def _prepare(self) -> Path:
        for program in (REGISTRY_BIN, HTPASSWD_BIN):
            if not Path(program).exists():
                raise ServiceError(
                    f"{program} is missing; install it with: apt-get install docker-registry "
                    "apache2-utils (or run scripts/setup.sh)"
                )
        names = [self.host, *([self.hostname] if self.hostname else [])]
        self._pki = ProjectPKI.ensure(self.workdir / "state", "registry", server_hosts=names)
        htpasswd = self.workdir / "htpasswd"
        # -i: the password comes on stdin, not in argv where `ps` would show it
        subprocess.run(
            [HTPASSWD_BIN, "-B", "-i", "-c", str(htpasswd), self.username],
            input=self.password.encode(),
            check=True,
            capture_output=True,
            timeout=30,
        )
        (self.workdir / "data").mkdir(exist_ok=True)
        config = {
            "version": 0.1,
            "log": {"level": "info", "formatter": "text"},
            "storage": {
                "filesystem": {"rootdirectory": str(self.workdir / "data")},
                "delete": {"enabled": True},
            },
            "http": {
                "addr": f"[{self.host}]:{self.port}" if ":" in self.host else self.address,
                "tls": {
                    "certificate": str(self._pki.server_cert),
                    "key": str(self._pki.server_key),
                },
                "headers": {"X-Content-Type-Options": ["nosniff"]},
            },
            "auth": {"htpasswd": {"realm": "securebuild-test", "path": str(htpasswd)}},
            "health": {"storagedriver": {"enabled": False}},
        }
        path = self.workdir / "config.yml"
        path.write_text(yaml.safe_dump(config))
        return path

    def _ready(self) -> bool:
        host = f"[{self.host}]" if ":" in self.host else self.host
        response = self.session(authenticated=False).get(
            f"https://{host}:{self.port}/v2/", timeout=2
        )
        return response.status_code == 401

    def start(self) -> Registry:
        started = time.monotonic()
        for attempt in range(3):  # a free port can be taken between choosing and binding it
            self.port = free_port(self.host)
            config = self._prepare()
            self._process = ManagedProcess(
                "docker-registry", [REGISTRY_BIN, "serve", str(config)], self.log_path
            )
            self._process.start()
            try:
                self._process.wait_ready(
                    self._ready,
                    START_TIMEOUT,
                    hint="see the registry log below; is docker-registry installed?",
                )
                break
            except ServiceError:
                if attempt == 2 or "address already in use" not in self.log_path.read_text():
                    raise
                logger.info("registry port %d was taken; retrying", self.port)
        self.startup_seconds = time.monotonic() - started
        logger.info("registry ready at %s in %.2f s", self.url, self.startup_seconds)
        return self

    def stop(self) -> None:
        if self._process is not None:
            self._process.stop()
            self._process = None
        if self._own_workdir:
            shutil.rmtree(self.workdir, ignore_errors=True)
