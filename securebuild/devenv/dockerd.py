"""Debian's dockerd with ``--tlsverify`` on a loopback TCP port, fully private to its owner.

Everything lives in one temp dir: data root, exec root (dockerd starts its own containerd there),
pid file, unix socket, the PKI (server and client certificates from a CA made with
:mod:`securebuild.pki`, plus a client certificate from a *foreign* CA for negative tests) and a
private ``/etc/docker``.

``extra_hosts`` (name -> IP) are added to a private copy of ``/etc/hosts`` bound the same way.

Why a private ``/etc/docker``: dockerd 20.10 reads registry CAs only from
``/etc/docker/certs.d/<host:port>/ca.crt`` (there is no flag; ``$DOCKER_CERT_PATH`` is the
client's) and creates ``/etc/docker/key.json``. The launcher runs dockerd in its own mount
namespace (``unshare --mount --propagation slave``) with a temp directory bind-mounted on
``/etc/docker``, so registry CAs are trusted by this dockerd only and the host's ``/etc`` is never
written. The namespace also keeps overlay mounts out of the host's mount table; it disappears
with dockerd. ``/etc/docker`` must exist as a mount point (the docker.io package creates it).

Note: dockerd always treats registries in 127.0.0.0/8 as insecure (TLS without verification,
moby's ``registry/config.go``), so for a registry on 127.0.0.1 ``certs.d`` is configured but not
what makes the pull work; for other addresses (a VM reaching 10.0.2.2) it is. Tests prove it with
a registry on ``::1`` named through ``extra_hosts`` (references cannot hold IPv6 literals).

No bridge, no iptables, no masquerading: containers that need a network (``RUN`` steps that
download) use ``network_mode="host"``.
"""

from __future__ import annotations

import json
import logging
import shutil
import tempfile
import time
from collections.abc import Mapping
from pathlib import Path

from securebuild.devenv.process import (
    LOOPBACK,
    UNSHARE_BIN,
    ManagedProcess,
    Service,
    ServiceError,
    free_port,
    log_tail,
    with_private_binds,
)
from securebuild.fleet.docker_tls import IsolatedAPIClient, docker_api_client
from securebuild.pki import ProjectPKI

logger = logging.getLogger(__name__)

DOCKERD_BIN = "/usr/sbin/dockerd"
ETC_DOCKER = Path("/etc/docker")
START_TIMEOUT = 90.0
STORAGE_DRIVERS = ("overlay2", "vfs")


class Dockerd(Service):
    """A dockerd reachable at ``tcp://127.0.0.1:<port>`` with mutual TLS only."""

    def __init__(
        self,
        *,
        registry_cas: Mapping[str, Path] | None = None,
        extra_hosts: Mapping[str, str] | None = None,
        storage_drivers: tuple[str, ...] = STORAGE_DRIVERS,
        workdir: Path | None = None,
    ) -> None:
        self._own_workdir = workdir is None
        # short path: the containerd socket under the exec root must fit in 108 bytes
        self.workdir = workdir or Path(tempfile.mkdtemp(prefix="sb-dockerd-", dir="/tmp"))
        self.registry_cas = dict(registry_cas or {})
        self.extra_hosts = dict(extra_hosts or {})
        self.storage_drivers = storage_drivers
        self.storage_driver = ""
        self.port = 0
        self.startup_seconds = 0.0
        self._process: ManagedProcess | None = None
        state = self.workdir / "pki-state"
        self.pki = ProjectPKI.ensure(state, "dockerd-test")
        self.foreign_pki = ProjectPKI.ensure(state, "foreign")

    # -- what clients need ---------------------------------------------------------------------

    @property
    def host(self) -> str:
        return f"tcp://{LOOPBACK}:{self.port}"

    @property
    def socket_path(self) -> Path:
        return self.workdir / "exec" / "docker.sock"

    @property
    def log_path(self) -> Path:
        return self.workdir / "dockerd.log"

    @property
    def ca_cert(self) -> Path:
        return self.pki.ca_cert

    @property
    def client_cert(self) -> Path:
        return self.pki.client_cert

    @property
    def client_key(self) -> Path:
        return self.pki.client_key

    @property
    def foreign_client_cert(self) -> Path:
        return self.foreign_pki.client_cert

    @property
    def foreign_client_key(self) -> Path:
        return self.foreign_pki.client_key

    @property
    def cli_cert_dir(self) -> Path:
        """``$DOCKER_CERT_PATH`` for the docker CLI: ca.pem, cert.pem, key.pem."""
        return self.workdir / "cli-certs"

    def cli_env(self) -> dict[str, str]:
        """Environment for the ``docker`` CLI to talk to this daemon over mTLS."""
        return {
            "DOCKER_HOST": self.host,
            "DOCKER_TLS_VERIFY": "1",
            "DOCKER_CERT_PATH": str(self.cli_cert_dir),
            "DOCKER_CONFIG": str(self.workdir / "cli-config"),
        }

    def client(self, *, timeout: float = 120.0) -> IsolatedAPIClient:
        return docker_api_client(
            self.host,
            ca=self.ca_cert,
            cert=self.client_cert,
            key=self.client_key,
            timeout=timeout,
        )

    # -- lifecycle ----------------------------------------------------------------------------

    def _prepare(self) -> Path:
        for program in (DOCKERD_BIN, UNSHARE_BIN):
            if not Path(program).exists():
                raise ServiceError(
                    f"{program} is missing; install docker.io and util-linux "
                    "(or run scripts/setup.sh)"
                )
        if not ETC_DOCKER.is_dir():
            raise ServiceError(
                f"{ETC_DOCKER} does not exist; it is the mount point for this dockerd's private "
                "configuration (reinstall docker.io, or create it: mkdir /etc/docker)"
            )
        etc = self.workdir / "etc-docker"
        etc.mkdir(mode=0o700, exist_ok=True)
        (etc / "daemon.json").write_text("{}\n")
        hosts = Path("/etc/hosts").read_text() if Path("/etc/hosts").exists() else ""
        hosts += "".join(f"{ip} {name}\n" for name, ip in self.extra_hosts.items())
        (self.workdir / "hosts").write_text(hosts)
        for registry, ca in self.registry_cas.items():
            directory = etc / "certs.d" / registry
            directory.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(ca, directory / "ca.crt")
        cli = self.cli_cert_dir
        cli.mkdir(mode=0o700, exist_ok=True)
        for source, name in (
            (self.ca_cert, "ca.pem"),
            (self.client_cert, "cert.pem"),
            (self.client_key, "key.pem"),
        ):
            (cli / name).unlink(missing_ok=True)
            shutil.copyfile(source, cli / name)
            (cli / name).chmod(0o600 if name == "key.pem" else 0o644)
        (self.workdir / "cli-config").mkdir(mode=0o700, exist_ok=True)
        (self.workdir / "cli-config" / "config.json").write_text(json.dumps({"auths": {}}))
        for sub in ("data", "exec"):
            (self.workdir / sub).mkdir(mode=0o700, exist_ok=True)
        return etc

    def _argv(self, etc: Path, driver: str) -> list[str]:
        binds = [(etc, ETC_DOCKER), (self.workdir / "hosts", Path("/etc/hosts"))]
        return with_private_binds(
            binds,
            [
                DOCKERD_BIN,
                "--config-file",
                "/etc/docker/daemon.json",  # the private one, inside the namespace
                "--data-root",
                str(self.workdir / "data"),
                "--exec-root",
                str(self.workdir / "exec"),
                "--pidfile",
                str(self.workdir / "dockerd.pid"),
                "--host",
                f"unix://{self.socket_path}",
                "--host",
                f"tcp://{LOOPBACK}:{self.port}",
                "--tlsverify",
                "--tlscacert",
                str(self.ca_cert),
                "--tlscert",
                str(self.pki.server_cert),
                "--tlskey",
                str(self.pki.server_key),
                "--bridge=none",
                "--iptables=false",
                "--ip6tables=false",
                "--ip-masq=false",
                "--storage-driver",
                driver,
                "--log-level",
                "info",
            ],
        )

    def _ready(self) -> bool:
        client = self.client(timeout=3)
        try:
            return bool(client.ping())
        finally:
            client.close()

    def start(self) -> Dockerd:
        started = time.monotonic()
        etc = self._prepare()
        failures: list[str] = []
        for driver in self.storage_drivers:
            for _attempt in range(3):  # a free port can be taken before dockerd binds it
                self.port = free_port()
                self.log_path.write_bytes(b"")
                self._process = ManagedProcess("dockerd", self._argv(etc, driver), self.log_path)
                self._process.start()
                try:
                    self._process.wait_ready(
                        self._ready,
                        START_TIMEOUT,
                        hint=f"dockerd with storage driver {driver} did not answer over mTLS",
                    )
                except ServiceError as exc:
                    self._process.stop()
                    if "address already in use" in log_tail(self.log_path, 200):
                        continue
                    failures.append(str(exc))
                    break
                self.storage_driver = driver
                self.startup_seconds = time.monotonic() - started
                if driver != self.storage_drivers[0]:
                    logger.warning(
                        "dockerd runs with storage driver %s because %s failed (see above)",
                        driver,
                        self.storage_drivers[0],
                    )
                logger.info(
                    "dockerd ready at %s (storage %s) in %.2f s",
                    self.host,
                    driver,
                    self.startup_seconds,
                )
                return self
            else:
                failures.append(f"dockerd with {driver}: port kept being taken")
            logger.warning("dockerd failed with storage driver %s", driver)
        self.stop()
        raise ServiceError(
            "dockerd did not start with any storage driver "
            f"({', '.join(self.storage_drivers)}):\n" + "\n\n".join(failures)
        )

    def stop(self) -> None:
        if self._process is not None:
            self._process.stop(timeout=30)
            self._process = None
        if self._own_workdir:
            # overlay mounts lived in dockerd's private namespace and are gone with it
            shutil.rmtree(self.workdir, ignore_errors=True)
