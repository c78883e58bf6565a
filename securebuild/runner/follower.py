"""Follow the run's live log file and hand each complete line on as soon as it appears.

Tasks (``securebuild_live_command``) append output lines to ``<private dir>/live.log``; this
thread polls the file every ``interval`` seconds (default 20 ms: one ``read`` on a local file,
negligible CPU) and passes new complete lines to ``sink``. A poll rather than inotify because
the file is local, tiny, and polling bounds latency without a watch per run.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from pathlib import Path

logger = logging.getLogger(__name__)

DEFAULT_INTERVAL = 0.02


class LiveLogFollower:
    def __init__(
        self, path: Path, sink: Callable[[list[str]], None], *, interval: float = DEFAULT_INTERVAL
    ) -> None:
        self.path = path
        self._sink = sink
        self._interval = interval
        self._offset = 0
        self._partial = b""
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="live-log-follower", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def drain(self, *, final: bool = False) -> None:
        """Pass on every complete line written so far (``final``: the incomplete one too)."""
        with self._lock:
            try:
                with self.path.open("rb") as handle:
                    handle.seek(self._offset)
                    data = handle.read()
            except FileNotFoundError:
                data = b""
            self._offset += len(data)
            data = self._partial + data
            *complete, self._partial = data.split(b"\n")
            if final and self._partial:
                complete.append(self._partial)
                self._partial = b""
            if complete:
                self._sink([raw.decode("utf-8", "replace").rstrip("\r") for raw in complete])

    def _loop(self) -> None:
        while not self._stop.wait(self._interval):
            try:
                self.drain()
            except Exception:  # a sink error must not kill following silently
                logger.exception("following %s failed", self.path)

    def stop(self) -> None:
        """Stop the thread and pass on everything left, incomplete last line included."""
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join()
        self.drain(final=True)
