"""Writing key material safely: exact modes from creation, atomic replacement, one writer.

Keys are created with their final mode by ``os.open`` (never written first and chmod-ed after, so
no window where a key is world-readable) and renamed into place, so a reader sees either the old
or the new file, never a half-written one. Because files are replaced and not rewritten, keys can
be 0400 even though rotation "changes" them. A lock file serialises concurrent ``ensure`` calls
(daemon workers, an operator's ``securebuild ca rotate``) on one project.
"""

from __future__ import annotations

import contextlib
import logging
import os
import secrets
from pathlib import Path

from securebuild import filelock
from securebuild.pki.errors import PKIError

logger = logging.getLogger(__name__)

DIR_MODE = 0o700
KEY_MODE = 0o400
CERT_MODE = 0o444


def ensure_private_dir(path: Path) -> None:
    """Create ``path`` (and missing parents) as 0700; tighten it if it exists looser.

    Parents that already exist are left as they are (the state directory may be shared with
    other parts of securebuild); parents created here are 0700 too.
    """
    missing: list[Path] = []
    cursor = path
    while not cursor.exists():
        missing.append(cursor)
        cursor = cursor.parent
    for directory in reversed(missing):
        with contextlib.suppress(FileExistsError):
            directory.mkdir(mode=DIR_MODE)
    if not path.is_dir():
        raise PKIError(f"{path} exists and is not a directory")
    mode = path.stat().st_mode & 0o777
    if mode != DIR_MODE:
        logger.warning("tightening mode of %s from %o to %o", path, mode, DIR_MODE)
        path.chmod(DIR_MODE)


def write_atomic(path: Path, data: bytes, mode: int) -> None:
    """Write ``data`` to ``path`` with ``mode`` from the first byte, replacing it atomically."""
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(6)}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, mode)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        tmp.chmod(mode)  # the umask may have removed bits we asked for (e.g. 0444)
        tmp.replace(path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    dir_fd = os.open(path.parent, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)


def locked(directory: Path) -> contextlib.AbstractContextManager[None]:
    """Hold an exclusive lock on ``directory/.lock`` for the duration of the block."""
    return filelock.held(directory / ".lock")
