"""libvirtd (+ virtlogd) for ``qemu:///system`` on a machine without systemd.

If ``qemu:///system`` already answers, the launcher uses it and stops nothing; otherwise it starts
virtlogd (unless its socket answers) and libvirtd in the foreground, and stops exactly those
processes (by pid) afterwards.

No NAT network: Debian defines libvirt's ``default`` network (virbr0, dnsmasq, iptables
masquerading), and libvirtd starts every network marked autostart when it starts. The launcher
runs libvirtd in its own mount namespace with an empty directory bound on
``/etc/libvirt/qemu/networks/autostart``, so no network is autostarted whatever the host's
configuration says (an ``net-autostart`` done while it runs lands in that temp directory).
VMs in tests use user-mode networking, which needs no libvirt network at all.
"""

from __future__ import annotations

import logging
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path

from securebuild.devenv.process import (
    UNSHARE_BIN,
    ManagedProcess,
    Service,
    ServiceError,
    with_private_binds,
)

logger = logging.getLogger(__name__)

URI = "qemu:///system"
LIBVIRTD_BIN = "/usr/sbin/libvirtd"
VIRTLOGD_BIN = "/usr/sbin/virtlogd"
VIRSH_BIN = "/usr/bin/virsh"
VIRTLOGD_SOCKET = Path("/run/libvirt/virtlogd-sock")
AUTOSTART_DIR = Path("/etc/libvirt/qemu/networks/autostart")
START_TIMEOUT = 60.0


def virsh(*args: str, timeout: float = 30.0) -> subprocess.CompletedProcess[str]:
    """Run ``virsh -c qemu:///system ARGS`` and return the result (not checked)."""
    return subprocess.run(
        [VIRSH_BIN, "-c", URI, *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def _answers(path: Path) -> bool:
    if not path.exists():
        return False
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.settimeout(2)
        try:
            sock.connect(str(path))
        except OSError:
            return False
    return True


def system_libvirt_usable() -> bool:
    try:
        return virsh("list", "--all", timeout=10).returncode == 0
    except subprocess.TimeoutExpired:
        return False


class Libvirtd(Service):
    """``qemu:///system`` available for the duration of the block."""

    uri = URI

    def __init__(self, *, workdir: Path | None = None) -> None:
        self._own_workdir = workdir is None
        self.workdir = workdir or Path(tempfile.mkdtemp(prefix="sb-libvirtd-"))
        self.started_libvirtd = False
        self.started_virtlogd = False
        self.startup_seconds = 0.0
        self._libvirtd: ManagedProcess | None = None
        self._virtlogd: ManagedProcess | None = None

    def start(self) -> Libvirtd:
        started = time.monotonic()
        if system_libvirt_usable():
            logger.info("libvirtd already running; using it and leaving it alone")
            return self
        for program in (LIBVIRTD_BIN, VIRTLOGD_BIN, VIRSH_BIN, UNSHARE_BIN):
            if not Path(program).exists():
                raise ServiceError(
                    f"{program} is missing; install libvirt-daemon-system and libvirt-clients "
                    "(or run scripts/setup.sh)"
                )
        if not _answers(VIRTLOGD_SOCKET):
            self._virtlogd = ManagedProcess(
                "virtlogd", [VIRTLOGD_BIN], self.workdir / "virtlogd.log"
            )
            self._virtlogd.start()
            self.started_virtlogd = True
            self._virtlogd.wait_ready(
                lambda: _answers(VIRTLOGD_SOCKET),
                START_TIMEOUT,
                hint="is another virtlogd holding /run/virtlogd.pid?",
            )
        if not AUTOSTART_DIR.is_dir():
            raise ServiceError(
                f"{AUTOSTART_DIR} is missing; reinstall libvirt-daemon-system "
                "(it is the mount point that keeps libvirt networks from autostarting)"
            )
        empty = self.workdir / "no-autostart"
        empty.mkdir(mode=0o700, exist_ok=True)
        self._libvirtd = ManagedProcess(
            "libvirtd",
            with_private_binds([(empty, AUTOSTART_DIR)], [LIBVIRTD_BIN]),
            self.workdir / "libvirtd.log",
        )
        self._libvirtd.start()
        self.started_libvirtd = True
        try:
            self._libvirtd.wait_ready(
                system_libvirt_usable,
                START_TIMEOUT,
                hint="is another libvirtd holding /run/libvirtd.pid, or a stale socket in "
                "/run/libvirt?",
            )
        except ServiceError:
            self.stop()
            raise
        self.startup_seconds = time.monotonic() - started
        logger.info("libvirtd started in %.2f s", self.startup_seconds)
        return self

    def stop(self) -> None:
        """Stop what this launcher started (by pid), nothing else."""
        if self._libvirtd is not None:
            self._libvirtd.stop(timeout=30)
            self._libvirtd = None
        if self._virtlogd is not None:
            self._virtlogd.stop()
            self._virtlogd = None
        if self._own_workdir:
            shutil.rmtree(self.workdir, ignore_errors=True)
