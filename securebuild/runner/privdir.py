"""The private data directory of one run: created fresh (0700), removed afterwards.

Why so strict: ansible-runner writes ``env/*`` and artifacts into it and never removes them,
and keeps stale ``env`` files when a directory is reused (security reference 2.3). So the name
is derived from the Build's uid and attempt (a re-run after a crash finds and removes its
leftovers, including processes still running from it), the directory is created with
``O_EXCL`` semantics (``mkdir`` fails if it exists), secrets are files in it (0600), and it is
deleted in ``finally`` after every run.

Processes of a run carry ``SECUREBUILD_RUN=<dir name>`` in their environment, so
:func:`kill_run_processes` finds every one of them (ansible-playbook, workers, modules and the
programs they started) even if they left the process group.
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import shutil
import signal
from pathlib import Path

from securebuild.errors import SecurebuildError

logger = logging.getLogger(__name__)

RUN_ENV = "SECUREBUILD_RUN"
_UID = re.compile(r"^[A-Za-z0-9-]{1,64}$")


class PrivateDirError(SecurebuildError):
    """The private data directory cannot be created or removed."""


def run_name(build_uid: str, attempt: int) -> str:
    if not _UID.match(build_uid):
        raise PrivateDirError(f"build uid {build_uid!r} is not a Kubernetes uid")
    if attempt < 0:
        raise PrivateDirError(f"attempt {attempt} is negative")
    return f"sb-{build_uid}-{attempt}"


def kill_run_processes(name: str) -> list[int]:
    """SIGKILL every process whose environment holds ``SECUREBUILD_RUN=<name>``."""
    marker = f"{RUN_ENV}={name}".encode() + b"\0"
    killed: list[int] = []
    me = os.getpid()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == me:
            continue
        try:
            environ = (entry / "environ").read_bytes()
        except OSError:  # gone, or not ours to read
            continue
        if marker in b"\0" + environ or environ.startswith(marker):
            with contextlib.suppress(ProcessLookupError):
                os.kill(int(entry.name), signal.SIGKILL)
                killed.append(int(entry.name))
    if killed:
        logger.info("killed leftover processes of run %s: %s", name, killed)
        remove_ansible_tmp(killed)
    return killed


def remove_ansible_tmp(pids: list[int], home: Path | None = None) -> None:
    """Remove ``~/.ansible/tmp/ansible-tmp-<time>-<pid>-<n>`` left by killed processes.

    A killed task never deletes its module payload (module arguments included) from the
    local remote_tmp; ansible names the directory after the ansible-playbook process's pid.
    """
    root = (home or Path.home()) / ".ansible" / "tmp"
    if not root.is_dir():
        return
    for pid in pids:
        for path in root.glob(f"ansible-tmp-*-{pid}-*"):
            logger.info("removing ansible tmp dir %s of killed process %d", path, pid)
            shutil.rmtree(path, ignore_errors=True)


def _remove_tree(path: Path) -> None:
    def onerror(func: object, target: str, exc_info: tuple[type, BaseException, object]) -> None:
        exc = exc_info[1]
        if not isinstance(exc, FileNotFoundError):
            raise PrivateDirError(f"cannot remove {target}: {exc}") from exc

    shutil.rmtree(path, onerror=onerror)


def remove_leftovers(base_dir: Path, name: str) -> bool:
    """Kill processes of a previous run with this name and remove its directory."""
    kill_run_processes(name)
    path = base_dir / name
    if path.exists():
        logger.warning("removing leftover private data dir %s", path)
        _remove_tree(path)
        return True
    return False


def create(base_dir: Path, name: str) -> Path:
    """Create ``base_dir/name`` (0700) with ``env/`` and ``secrets/`` (0700), fresh."""
    base_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    remove_leftovers(base_dir, name)
    path = base_dir / name
    try:
        path.mkdir(mode=0o700)
    except FileExistsError as exc:
        raise PrivateDirError(f"private data dir {path} appeared while creating it") from exc
    path.chmod(0o700)  # mkdir's mode is filtered by the umask
    for sub in ("env", "secrets", "inventory"):
        (path / sub).mkdir(mode=0o700)
        (path / sub).chmod(0o700)
    return path


def write_private(path: Path, content: str | bytes) -> Path:
    """Create ``path`` exclusively with mode 0600 and write ``content``."""
    data = content.encode() if isinstance(content, str) else content
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600)
    try:
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view) :]
    finally:
        os.close(fd)
    return path


def remove(path: Path) -> None:
    _remove_tree(path)
