"""List+watch of one resource type with the robustness controllers need (security reference 2.2).

A :class:`Reflector` keeps a local view of every object of a collection and tells a handler about
each change. It

* lists (in pages) and then watches from the list's ``resourceVersion``, remembering the last
  resourceVersion seen (events and bookmarks) so a reconnect resumes without a gap;
* re-lists on ``410 Gone`` (an HTTP 410 or an in-stream ``ERROR`` with code 410, also for an
  expired ``continue`` token) and then tells the handler the full new state, so objects deleted
  while it was not watching disappear;
* closes a stream that has been silent for ``inactivity_timeout`` seconds (the read timeout of
  the request), because a half-open TCP connection never ends on its own;
* gives every request a connect and read timeout, and backs off exponentially (with jitter) on
  errors, so an API server that is down or restarting is retried, never hammered.

The handler runs on the reflector's thread; it must be quick (the daemon only updates a cache
and wakes its scheduler).
"""

from __future__ import annotations

import contextlib
import json
import logging
import random
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from securebuild.cluster.client import ApiError, ClusterError, Kube

logger = logging.getLogger(__name__)

ADDED = "ADDED"
MODIFIED = "MODIFIED"
DELETED = "DELETED"


class WatchHandler(Protocol):
    def replace(self, objects: list[dict[str, Any]]) -> None:
        """The complete current state after a (re-)list."""

    def event(self, kind: str, obj: dict[str, Any]) -> None:
        """One ADDED, MODIFIED or DELETED event."""


@dataclass
class WatchStats:
    """Counters for tests, logs and metrics."""

    lists: int = 0
    gone: int = 0
    reconnects: int = 0
    errors: int = 0
    inactivity_timeouts: int = 0
    events: int = 0
    last_error: str = ""
    synced: threading.Event = field(default_factory=threading.Event)


@dataclass(frozen=True)
class WatchTimeouts:
    connect: float = 5.0
    request: float = 30.0  # read timeout of list calls
    inactivity: float = 70.0  # read timeout of watch streams (kopf's default)
    server_timeout: int = 290  # timeoutSeconds asked of the server for one watch
    page_size: int = 500
    backoff_initial: float = 0.2
    backoff_max: float = 10.0


class _Gone(Exception):
    """The resourceVersion we hold is too old: re-list."""


class Reflector:
    """List+watch ``path`` (a collection URL) on a thread of its own; see the module docstring."""

    def __init__(
        self,
        kube: Kube,
        path: str,
        handler: WatchHandler,
        *,
        label_selector: str | None = None,
        field_selector: str | None = None,
        timeouts: WatchTimeouts | None = None,
        name: str | None = None,
        bookmarks: bool = True,
    ) -> None:
        self.kube = kube
        self.path = path
        self.handler = handler
        self.label_selector = label_selector
        self.field_selector = field_selector
        self.timeouts = timeouts or WatchTimeouts()
        self.name = name or path
        self.bookmarks = bookmarks
        self.resource_version: str | None = None
        self.stats = WatchStats()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._stream: Any = None

    # -- lifecycle -----------------------------------------------------------------------
    def start(self) -> Reflector:
        self._thread = threading.Thread(target=self._run, name=f"watch {self.name}", daemon=True)
        self._thread.start()
        return self

    def stop(self, timeout: float = 10.0) -> None:
        self._stop.set()
        stream = self._stream
        if stream is not None:
            with contextlib.suppress(Exception):
                stream.shutdown()  # unblocks the watch thread's read at once
        if self._thread is not None:
            self._thread.join(timeout)

    def wait_synced(self, timeout: float) -> bool:
        return self.stats.synced.wait(timeout)

    # -- the loop ------------------------------------------------------------------------
    def _run(self) -> None:
        backoff = self.timeouts.backoff_initial
        need_list = True
        while not self._stop.is_set():
            try:
                if need_list:
                    self._list()
                    need_list = False
                    backoff = self.timeouts.backoff_initial
                self._watch_once()
                backoff = self.timeouts.backoff_initial  # a stream ended normally
            except _Gone:
                self.stats.gone += 1
                logger.info(
                    "watch %s: resourceVersion %s gone, re-listing",
                    self.name,
                    self.resource_version,
                )
                need_list = True
            except (ApiError, ClusterError, ValueError) as exc:
                self.stats.errors += 1
                self.stats.last_error = str(exc)
                if isinstance(exc, ClusterError) and "timed out" in str(exc).lower():
                    # Expected on a quiet cluster (nothing changed for the inactivity timeout):
                    # counted in stats, not worth a line every minute at INFO.
                    self.stats.inactivity_timeouts += 1
                    logger.debug("watch %s: %s; reconnecting", self.name, exc)
                else:
                    logger.warning("watch %s: %s; retrying in %.1f s", self.name, exc, backoff)
                if isinstance(exc, ApiError) and exc.gone:
                    need_list = True
                self._stop.wait(backoff * random.uniform(0.8, 1.2))  # noqa: S311 (jitter)
                backoff = min(backoff * 2, self.timeouts.backoff_max)
            except Exception:  # a handler bug must not end the watch forever
                self.stats.errors += 1
                logger.exception("watch %s: unexpected error; re-listing", self.name)
                need_list = True
                self._stop.wait(backoff)
                backoff = min(backoff * 2, self.timeouts.backoff_max)
            if not self._stop.is_set():
                self.stats.reconnects += 1

    def _selectors(self) -> dict[str, Any]:
        return {"labelSelector": self.label_selector, "fieldSelector": self.field_selector}

    def _list(self) -> None:
        objects: list[dict[str, Any]] = []
        token: str | None = None
        timeout = (self.timeouts.connect, self.timeouts.request)
        while True:
            try:
                page = self.kube.request(
                    "GET",
                    self.path,
                    query={
                        **self._selectors(),
                        "limit": self.timeouts.page_size,
                        "continue": token,
                    },
                    timeout=timeout,
                )
            except ApiError as exc:
                if exc.gone and token:  # continue token expired: start the list over
                    logger.info("watch %s: list continue token expired; listing again", self.name)
                    objects, token = [], None
                    continue
                raise
            objects.extend(page.get("items") or [])
            metadata = page.get("metadata") or {}
            token = metadata.get("continue") or None
            if not token:
                self.resource_version = metadata.get("resourceVersion")
                break
        self.stats.lists += 1
        self.handler.replace(objects)
        self.stats.synced.set()
        logger.debug("watch %s: listed %d at %s", self.name, len(objects), self.resource_version)

    def _watch_once(self) -> None:
        query = {
            **self._selectors(),
            "watch": True,
            "resourceVersion": self.resource_version,
            "allowWatchBookmarks": self.bookmarks,
            "timeoutSeconds": self.timeouts.server_timeout,
        }
        lines = self.kube.stream_lines(
            self.path,
            query=query,
            timeout=(self.timeouts.connect, self.timeouts.inactivity),
            on_open=self._opened,
        )
        try:
            for line in lines:
                if self._stop.is_set():
                    return
                self._handle_line(line)
        except ApiError as exc:
            if exc.gone:
                raise _Gone from exc
            raise
        except ClusterError:
            if self._stop.is_set():
                return  # our own shutdown() ended the read
            raise
        finally:
            self._stream = None

    def _opened(self, stream: Any) -> None:
        self._stream = stream
        if self._stop.is_set():
            with contextlib.suppress(Exception):
                stream.shutdown()

    def _handle_line(self, line: bytes) -> None:
        event = json.loads(line)
        kind = event.get("type")
        obj = event.get("object") or {}
        if kind == "ERROR":
            code = obj.get("code")
            if code == 410:
                raise _Gone
            raise ApiError(int(code or 500), "WATCH", self.path, obj)
        rv = (obj.get("metadata") or {}).get("resourceVersion")
        if kind == "BOOKMARK":
            if rv:
                self.resource_version = rv
            return
        if kind not in (ADDED, MODIFIED, DELETED):
            logger.warning("watch %s: unknown event type %r skipped", self.name, kind)
            return
        self.stats.events += 1
        self.handler.event(kind, obj)
        if rv:
            self.resource_version = rv


class CallbackHandler:
    """A :class:`WatchHandler` made of two callables (handy for small users and tests)."""

    def __init__(
        self,
        replace: Callable[[list[dict[str, Any]]], None],
        event: Callable[[str, dict[str, Any]], None],
    ) -> None:
        self._replace = replace
        self._event = event

    def replace(self, objects: list[dict[str, Any]]) -> None:
        self._replace(objects)

    def event(self, kind: str, obj: dict[str, Any]) -> None:
        self._event(kind, obj)


class ObjectCache:
    """A thread-safe ``namespace/name -> object`` view fed by a reflector."""

    def __init__(
        self,
        keep: Callable[[Mapping[str, Any]], bool] = lambda _obj: True,
        on_change: Callable[[], None] = lambda: None,
        transform: Callable[[dict[str, Any]], dict[str, Any]] = lambda obj: obj,
    ) -> None:
        self._keep = keep
        self._on_change = on_change
        self._transform = transform  # what to keep of an object (memory)
        self._lock = threading.Lock()
        self._objects: dict[str, dict[str, Any]] = {}

    @staticmethod
    def key(obj: Mapping[str, Any]) -> str:
        meta = obj.get("metadata") or {}
        namespace = meta.get("namespace")
        return f"{namespace}/{meta.get('name')}" if namespace else str(meta.get("name"))

    def replace(self, objects: list[dict[str, Any]]) -> None:
        with self._lock:
            self._objects = {self.key(o): self._transform(o) for o in objects if self._keep(o)}
        self._on_change()

    def event(self, kind: str, obj: dict[str, Any]) -> None:
        key = self.key(obj)
        with self._lock:
            if kind == DELETED or not self._keep(obj):
                self._objects.pop(key, None)
            else:
                self._objects[key] = self._transform(obj)
        self._on_change()

    def get(self, key: str) -> dict[str, Any] | None:
        with self._lock:
            return self._objects.get(key)

    def values(self) -> list[dict[str, Any]]:
        with self._lock:
            return list(self._objects.values())

    def items(self) -> list[tuple[str, dict[str, Any]]]:
        with self._lock:
            return list(self._objects.items())

    def keys(self) -> set[str]:
        with self._lock:
            return set(self._objects)

    def __len__(self) -> int:
        with self._lock:
            return len(self._objects)
