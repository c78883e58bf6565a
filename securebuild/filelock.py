"""Advisory locks on files, shared by the threads of one process and by processes alike.

Why ``flock`` and not ``threading.Lock``: the state dir of a build host's VMs is used by several
processes at once - the daemon's replicas, an operator's ``securebuild vm stop``, a
``securebuild run`` - and a lock only one process knows of protects nothing against the others.
``flock`` locks belong to an open file description, so two threads that each open the file
exclude each other just like two processes do; a process that dies (SIGKILL included) loses its
locks with its file descriptors, so a crash never leaves a VM locked. On shared storage (NFSv4,
CephFS) Linux maps ``flock`` to the file system's own locks, which all its clients see.

The lock files are never removed: unlinking a lock file while another process waits on its old
inode would let a third one lock a new file of the same name. They are empty and few.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
from collections.abc import Iterator
from pathlib import Path


def in_state_dir(state_dir: Path, name: str) -> Path:
    """The lock file ``name`` of a state dir: all of them in its ``locks/`` folder, so that the
    fleet's locks and the daemon's build slots on one state dir are found in one place."""
    return state_dir / "locks" / name


def _open(path: Path) -> int:
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    return os.open(path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)


@contextlib.contextmanager
def held(path: Path, *, shared: bool = False) -> Iterator[None]:
    """Hold the lock on ``path`` (created if need be) for the block, waiting for it."""
    fd = _open(path)
    try:
        fcntl.flock(fd, fcntl.LOCK_SH if shared else fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # closing releases the lock


@contextlib.contextmanager
def attempt(path: Path) -> Iterator[bool]:
    """Try the exclusive lock on ``path`` without waiting; the block learns whether it got it
    (and holds it for its duration if so)."""
    fd = _open(path)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            yield False
        else:
            yield True
    finally:
        os.close(fd)
