"""What every launcher shares: free ports, a supervised child process, readiness polling.

The child's stdout and stderr go to a log file in the service's temp dir; when the service does
not become ready, the error quotes the end of that log, because "timed out" alone sends the
developer hunting.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import socket
import subprocess
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from types import TracebackType
from typing import Self

from securebuild.errors import SecurebuildError

logger = logging.getLogger(__name__)

LOOPBACK = "127.0.0.1"
UNSHARE_BIN = "/usr/bin/unshare"
# Bind each (source, target) pair given before "--", then exec the rest: the positional
# parameters are paths and argv, never parsed by a shell.
_BIND_AND_EXEC = (
    'while [ "$1" != -- ]; do mount --bind "$1" "$2" || exit 1; shift 2; done; shift; exec "$@"'
)


def with_private_binds(binds: Sequence[tuple[Path, Path]], argv: Sequence[str]) -> list[str]:
    """``argv`` run in a mount namespace of its own with each source bound over its target.

    Services that read fixed paths (dockerd's /etc/docker and /etc/hosts, libvirtd's network
    autostart directory) get private copies this way, and the host's files stay untouched.
    """
    pairs = [str(path) for bind in binds for path in bind]
    return [
        UNSHARE_BIN,
        "--mount",
        "--propagation",
        "slave",
        "--",
        "/bin/sh",
        "-c",
        _BIND_AND_EXEC,
        "sh",
        *pairs,
        "--",
        *argv,
    ]


class ServiceError(SecurebuildError):
    """A local service could not be started or stopped; the message says how to fix it."""


def free_port(host: str = LOOPBACK) -> int:
    """A TCP port that was free on ``host`` a moment ago (the caller retries on a race)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def log_tail(path: Path, lines: int = 30) -> str:
    try:
        text = path.read_text(errors="replace")
    except OSError:
        return "(no log)"
    return "\n".join(text.splitlines()[-lines:])


class ManagedProcess:
    """A child process whose output goes to ``log_path``, stopped with SIGTERM then SIGKILL."""

    def __init__(
        self,
        name: str,
        argv: Sequence[str],
        log_path: Path,
        *,
        env: Mapping[str, str] | None = None,
        cwd: Path | None = None,
    ) -> None:
        self.name = name
        self.argv = list(argv)
        self.log_path = log_path
        self.env = dict(env) if env is not None else None
        self.cwd = cwd
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def pid(self) -> int | None:
        return self.proc.pid if self.proc else None

    def start(self) -> None:
        logger.debug("starting %s: %s", self.name, self.argv)
        with self.log_path.open("ab") as log:
            try:
                self.proc = subprocess.Popen(
                    self.argv,
                    stdin=subprocess.DEVNULL,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    env=self.env,
                    cwd=self.cwd,
                    start_new_session=True,  # a Ctrl-C in the terminal does not reach it
                )
            except OSError as exc:
                raise ServiceError(f"cannot run {self.argv[0]} for {self.name}: {exc}") from exc

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def wait_ready(self, check: Callable[[], bool], timeout: float, hint: str) -> float:
        """Poll ``check`` until true; return seconds waited. Fails early if the child exits."""
        start = time.monotonic()
        delay = 0.02
        while True:
            if not self.alive():
                code = self.proc.returncode if self.proc else None
                raise ServiceError(
                    f"{self.name} exited with code {code} before it was ready; {hint}\n"
                    f"--- {self.log_path} (end) ---\n{log_tail(self.log_path)}"
                )
            with contextlib.suppress(Exception):
                if check():
                    return time.monotonic() - start
            if time.monotonic() - start > timeout:
                self.stop()
                raise ServiceError(
                    f"{self.name} was not ready after {timeout:.0f} s; {hint}\n"
                    f"--- {self.log_path} (end) ---\n{log_tail(self.log_path)}"
                )
            time.sleep(delay)
            delay = min(delay * 1.5, 0.25)

    def stop(self, timeout: float = 20.0) -> None:
        """SIGTERM, wait, then SIGKILL; only this child (by its pid), never by name."""
        proc = self.proc
        if proc is None or proc.poll() is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.kill(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            logger.warning("%s (pid %d) ignored SIGTERM; killing it", self.name, proc.pid)
            with contextlib.suppress(ProcessLookupError):
                os.kill(proc.pid, signal.SIGKILL)
            proc.wait(10)


class Service:
    """Base of the launchers: ``with Launcher(...) as service:`` starts it and always stops it."""

    def start(self) -> Self:
        raise NotImplementedError

    def stop(self) -> None:
        raise NotImplementedError

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
