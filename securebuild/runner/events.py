"""ansible-runner events -> build log lines, OpenShift stages and the failure that ended a run.

Tasks declare what they are with tags (documented for role authors in docs/development.md):

- ``stage:<Stage>`` and ``step:<Step>``: the task's run time is a step of that stage in
  ``status.stages`` (``stage:FetchInputs`` + ``step:FetchGitSource`` ...). Consecutive stage-tagged
  tasks with the same stage and step form one step; a skipped task records nothing.
- ``reason:<Reason>``: if this task fails (and its failure is not ignored or rescued), the
  build fails with that OpenShift reason and its message (:mod:`securebuild.runner.reasons`).
- ``log``: the task's result (``msg`` of ``debug``, else ``stdout_lines``) is appended to the
  build log when it ends. Output of ``securebuild_live_command`` reaches the log live instead.

Event data does not carry tags, so the ``securebuild_task_meta`` callback writes them to a side
file joined here by ``task_uuid``.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from securebuild.model.status import record_step
from securebuild.model.types import StageInfo

logger = logging.getLogger(__name__)

CENSORED_LINE = "(output hidden: no_log)"


def _parse_time(value: Any) -> dt.datetime:
    if isinstance(value, str):
        try:
            parsed = dt.datetime.fromisoformat(value)
        except ValueError:
            parsed = dt.datetime.now(dt.UTC)
    else:
        parsed = dt.datetime.now(dt.UTC)
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=dt.UTC)
    return parsed


@dataclass
class _Span:
    """One step while the run goes on: consecutive tasks and further hosts extend its end."""

    stage: str
    step: str
    start: dt.datetime
    end: dt.datetime

    @property
    def duration_ms(self) -> int:
        return max(0, round((self.end - self.start).total_seconds() * 1000))


@dataclass(frozen=True)
class TaskTags:
    stage: str | None = None
    step: str | None = None
    reason: str | None = None
    log: bool = False

    @classmethod
    def parse(cls, tags: list[str]) -> TaskTags:
        values: dict[str, str] = {}
        for tag in tags:
            key, sep, value = tag.partition(":")
            if sep and key in ("stage", "step", "reason") and value:
                values[key] = value
        return cls(
            stage=values.get("stage"),
            step=values.get("step"),
            reason=values.get("reason"),
            log="log" in tags,
        )


@dataclass(frozen=True)
class Failure:
    task: str
    reason: str | None
    msg: str


class TaskMetaReader:
    """Reads the side file the callback plugin writes (task uuid -> tags), incrementally."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._offset = 0
        self._tags: dict[str, TaskTags] = {}

    def _refresh(self) -> None:
        try:
            with self.path.open("rb") as handle:
                handle.seek(self._offset)
                data = handle.read()
        except FileNotFoundError:
            return
        end = data.rfind(b"\n") + 1
        self._offset += end
        for raw in data[:end].splitlines():
            try:
                record = json.loads(raw)
                self._tags[str(record["uuid"])] = TaskTags.parse([str(t) for t in record["tags"]])
            except (ValueError, KeyError, TypeError):
                logger.warning("ignoring malformed task meta record %r", raw[:200])

    def tags(self, task_uuid: str) -> TaskTags:
        if task_uuid not in self._tags:
            self._refresh()
        return self._tags.get(task_uuid, TaskTags())


def _as_lines(value: Any) -> list[str]:
    if value is None:
        return []
    if isinstance(value, list):
        return [str(item) for item in value]
    return str(value).splitlines()


class EventProcessor:
    """Consumes ansible-runner events (one thread) and keeps stages and the last failure."""

    def __init__(self, meta: TaskMetaReader, emit: Callable[[list[str]], None]) -> None:
        self._meta = meta
        self._emit = emit
        self._starts: dict[str, dt.datetime] = {}
        self._recorded: dict[str, _Span] = {}
        self._spans: list[_Span] = []
        self._open: str | None = None  # the task started last, while it has no result
        self.failure: Failure | None = None
        # ansible-playbook's own messages (syntax errors, bad inventory): shown when a run
        # fails without a task failure, since nothing else would explain it.
        self.verbose_tail: deque[str] = deque(maxlen=20)

    def handle(self, event: Mapping[str, Any]) -> None:
        kind = str(event.get("event", ""))
        data = event.get("event_data") or {}
        created = _parse_time(event.get("created"))
        task_uuid = str(data.get("task_uuid") or "")
        if kind == "verbose":
            self.verbose_tail.extend(_as_lines(event.get("stdout")))
            return
        if kind == "playbook_on_task_start":
            self._starts[task_uuid] = created
            self._open = task_uuid
            return
        if kind not in ("runner_on_ok", "runner_on_failed", "runner_on_unreachable"):
            return
        tags = self._meta.tags(task_uuid)
        self._record_step(task_uuid, tags, created)
        self._open = None
        res = data.get("res") or {}
        task = str(data.get("task") or "task")
        censored = "censored" in res
        if kind == "runner_on_ok":
            if tags.log and not censored:
                shown = _as_lines(res.get("msg")) if "msg" in res else []
                self._emit(shown or _as_lines(res.get("stdout_lines")))
            return
        if kind == "runner_on_failed" and data.get("ignore_errors"):
            return
        msg = CENSORED_LINE if censored else str(res.get("msg") or "failed")
        lines: list[str] = []
        if not censored and not res.get("securebuild_live"):
            lines += _as_lines(res.get("stdout_lines")) + _as_lines(res.get("stderr_lines"))
        lines.append(f"error: {task}: {msg}")
        self._emit(lines)
        self.failure = Failure(task=task, reason=tags.reason, msg=msg)

    @property
    def stages(self) -> tuple[StageInfo, ...]:
        """``status.stages`` so far (reference 2.4), built with the model's :func:`record_step`."""
        stages: tuple[StageInfo, ...] = ()
        for span in self._spans:
            stages = record_step(stages, span.stage, span.step, span.start, span.duration_ms)
        return stages

    def _record_step(self, task_uuid: str, tags: TaskTags, end: dt.datetime) -> None:
        if not tags.stage:
            return
        step_name = tags.step or tags.stage
        existing = self._recorded.get(task_uuid)
        if existing is not None:  # another host's result for the same task
            existing.end = max(existing.end, end)
            return
        last = self._spans[-1] if self._spans else None
        if last is not None and (last.stage, last.step) == (tags.stage, step_name):
            last.end = max(last.end, end)  # consecutive tasks of one step
            span = last
        else:
            span = _Span(tags.stage, step_name, self._starts.get(task_uuid, end), end)
            self._spans.append(span)
        self._recorded[task_uuid] = span

    def close_open_task(self, end: dt.datetime) -> None:
        """Record the step of a task that never ended (the run was cancelled or killed)."""
        if self._open is not None:
            self._record_step(self._open, self._meta.tags(self._open), end)
            self._open = None
