"""On-disk log store: ``<root>/<namespace>/<name>.log``, one line per build output line.

Why files and not a database: a log is written once, in order, by one worker, and read by
followers that want each line as soon as it exists. An append-only file gives that with the
page cache as the hand-over (a ``write`` is visible to every reader at once) and costs nothing
to expire.

Durability policy: every line is written with one ``write`` on an ``O_APPEND`` descriptor (so
followers see it immediately); ``fsync`` runs at most once per ``fsync_interval`` seconds
(default 1 s) and always in :meth:`BuildLog.finish`. A host crash can therefore lose at most
the last second of a running build's log on disk, never a finished one.

Follow policy: a plain poll of the file every ``poll_interval`` seconds (default 0.05 s). It
is portable, needs no inotify watch per follower, and bounds the added latency to 50 ms.

A build is finished when its ``<name>.log.done`` marker exists; followers stop there.
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator
from pathlib import Path

from securebuild.errors import SecurebuildError
from securebuild.model.logsnippet import log_snippet

logger = logging.getLogger(__name__)

_DNS_NAME = re.compile(r"^[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?$")
DEFAULT_FSYNC_INTERVAL = 1.0
DEFAULT_POLL_INTERVAL = 0.05
_READ_CHUNK = 65536


class LogStoreError(SecurebuildError):
    """A log cannot be found, named or written."""


def _check_name(kind: str, value: str) -> str:
    if not _DNS_NAME.match(value):
        raise LogStoreError(f"invalid {kind} {value!r} for a build log (expected a DNS-1123 name)")
    return value


def split_lines(text: str) -> list[str]:
    """Split output into lines: ``\\n`` separates, a trailing ``\\r`` is dropped."""
    return [line.rstrip("\r") for line in text.split("\n")]


class BuildLog:
    """The log of one build. Writing is thread-safe; any number of readers may follow."""

    def __init__(
        self,
        path: Path,
        *,
        fsync_interval: float = DEFAULT_FSYNC_INTERVAL,
        poll_interval: float = DEFAULT_POLL_INTERVAL,
    ) -> None:
        self.path = path
        self.done_path = path.with_name(path.name + ".done")
        self.fsync_interval = fsync_interval
        self.poll_interval = poll_interval
        self._fd: int | None = None
        self._lock = threading.Lock()
        self._last_sync = 0.0

    # -- writing -------------------------------------------------------------------------
    def start(self, *, truncate: bool = False) -> None:
        """Open for appending (a re-run after a takeover appends unless ``truncate``)."""
        with self._lock:
            self.path.parent.mkdir(mode=0o750, parents=True, exist_ok=True)
            self.done_path.unlink(missing_ok=True)
            flags = os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_CLOEXEC
            if truncate:
                flags |= os.O_TRUNC
            if self._fd is not None:
                os.close(self._fd)
            self._fd = os.open(self.path, flags, 0o640)

    def append(self, text: str) -> None:
        """Append one line (text containing newlines becomes several lines)."""
        self.append_lines(split_lines(text))

    def append_lines(self, lines: list[str]) -> None:
        if not lines:
            return
        data = "".join(line + "\n" for line in lines).encode("utf-8", "replace")
        with self._lock:
            if self._fd is None:
                raise LogStoreError(f"log {self.path} is not open for writing (call start())")
            view = memoryview(data)
            while view:
                written = os.write(self._fd, view)
                view = view[written:]
            now = time.monotonic()
            if now - self._last_sync >= self.fsync_interval:
                os.fsync(self._fd)
                self._last_sync = now

    def finish(self) -> None:
        """Sync, close and mark the log complete: followers end after its last line."""
        with self._lock:
            if self._fd is not None:
                os.fsync(self._fd)
                os.close(self._fd)
                self._fd = None
            self.path.parent.mkdir(mode=0o750, parents=True, exist_ok=True)
            self.path.touch(mode=0o640, exist_ok=True)
            self.done_path.touch(mode=0o640, exist_ok=True)

    # -- reading -------------------------------------------------------------------------
    @property
    def exists(self) -> bool:
        return self.path.exists()

    @property
    def finished(self) -> bool:
        return self.done_path.exists()

    def read(self) -> list[str]:
        """All complete lines written so far."""
        try:
            data = self.path.read_bytes()
        except FileNotFoundError:
            raise LogStoreError(f"no log for {self.path.stem!r} at {self.path}") from None
        text = data.decode("utf-8", "replace")
        lines = text.split("\n")
        return lines[:-1]  # the part after the last newline is incomplete (or empty)

    def tail(self, n: int) -> list[str]:
        """The last ``n`` complete lines (reads the file once; logs are modest)."""
        if n <= 0:
            return []
        return list(deque(self.read(), maxlen=n))

    def snippet(self) -> str:
        return log_snippet("\n".join(self.tail(5)))

    def follow(
        self,
        *,
        start_line: int = 0,
        stop: Callable[[], bool] | None = None,
        wait_for_start: float = 30.0,
    ) -> Iterator[str]:
        """Yield lines as they are appended until the build is finished (or ``stop()``).

        Waits up to ``wait_for_start`` seconds for the log to appear. ``start_line`` skips
        that many lines (a reconnecting follower resumes where it was).
        """
        deadline = time.monotonic() + wait_for_start
        while not self.path.exists():
            if self.finished or time.monotonic() > deadline or (stop and stop()):
                return
            time.sleep(self.poll_interval)
        index = 0
        buffer = b""
        with self.path.open("rb") as handle:
            while True:
                done = self.finished  # checked before reading: no line written before it is lost
                chunk = handle.read(_READ_CHUNK)
                if chunk:
                    buffer += chunk
                    *complete, buffer = buffer.split(b"\n")
                    for raw in complete:
                        if index >= start_line:
                            yield raw.decode("utf-8", "replace")
                        index += 1
                    continue
                if done or (stop and stop()):
                    return
                time.sleep(self.poll_interval)


class LogStore:
    """All build logs under one directory."""

    def __init__(
        self,
        root: Path,
        *,
        fsync_interval: float = DEFAULT_FSYNC_INTERVAL,
        poll_interval: float = DEFAULT_POLL_INTERVAL,
    ) -> None:
        self.root = root
        self.fsync_interval = fsync_interval
        self.poll_interval = poll_interval

    def log(self, namespace: str, name: str) -> BuildLog:
        ns = _check_name("namespace", namespace)
        nm = _check_name("build name", name)
        return BuildLog(
            self.root / ns / f"{nm}.log",
            fsync_interval=self.fsync_interval,
            poll_interval=self.poll_interval,
        )

    def expire(self, older_than_days: float, *, now: float | None = None) -> list[Path]:
        """Delete logs not written for ``older_than_days`` days; returns the removed logs."""
        cutoff = (time.time() if now is None else now) - older_than_days * 86400
        removed: list[Path] = []
        if not self.root.is_dir():
            return removed
        for ns_dir in sorted(p for p in self.root.iterdir() if p.is_dir()):
            for path in sorted(ns_dir.glob("*.log")):
                try:
                    if path.stat().st_mtime >= cutoff:
                        continue
                    path.unlink()
                except FileNotFoundError:
                    continue
                path.with_name(path.name + ".done").unlink(missing_ok=True)
                removed.append(path)
                logger.info("removed expired build log %s", path)
            with contextlib.suppress(OSError):
                ns_dir.rmdir()  # only succeeds when empty
        return removed
