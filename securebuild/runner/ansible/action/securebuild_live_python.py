"""Ansible action: run a Python entry point in-process, streaming what it prints to a live log.

Why (measured, bench/task_timings.py): a control-side step run as ``securebuild_live_command``
costs two Python starts per task on the controller (the module's AnsiballZ payload, then
``python -m <module>``), about a second per step on a loaded build host. An action plugin runs
in the task's worker process, which ansible-playbook has already forked: the entry point is
imported and called there, so a step costs its own work only.

What it keeps from ``securebuild_live_command``: every line the entry point writes to stdout
is appended to ``live_log`` the moment it is written (the adapter follows that file into the
build log); the result has ``rc``, the last ``tail_lines`` lines in ``stdout_lines`` and
``securebuild_live: true``; a non-zero status fails the task. The worker carries the run's
``SECUREBUILD_RUN`` environment like every process of the run, so cancelling still kills it and
everything it started.

``json_file``/``json_data``: written (0600) before the entry point runs, so a step's parameter
file costs no separate ``copy`` task.
"""

from __future__ import annotations

import contextlib
import importlib
import io
import json
import os
import sys
import traceback
from collections import deque
from typing import Any

from ansible.plugins.action import ActionBase

_ARGS = frozenset(("module", "argv", "live_log", "json_file", "json_data", "tail_lines"))


class _LiveLines(io.TextIOBase):
    """A text stream that appends complete lines to the live log as they are written."""

    def __init__(self, fd: int, tail: deque[str]) -> None:
        self._fd = fd
        self._tail = tail
        self._partial = ""

    def writable(self) -> bool:
        return True

    def write(self, text: str) -> int:
        self._partial += text
        *lines, self._partial = self._partial.split("\n")
        for line in lines:
            self._emit(line)
        return len(text)

    def _emit(self, line: str) -> None:
        os.write(self._fd, line.encode("utf-8", "replace") + b"\n")
        self._tail.append(line.rstrip("\r"))

    def flush(self) -> None:
        pass

    def close_partial(self) -> None:
        if self._partial:
            self._emit(self._partial)
            self._partial = ""


class ActionModule(ActionBase):  # type: ignore[misc]
    TRANSFERS_FILES = False
    _requires_connection = False

    def run(self, tmp: Any = None, task_vars: Any = None) -> dict[str, Any]:
        result: dict[str, Any] = super().run(tmp, task_vars)
        args = self._task.args
        unknown = set(args) - _ARGS
        if unknown or "module" not in args or "live_log" not in args:
            return {
                **result,
                "failed": True,
                "msg": "securebuild_live_python needs module and live_log; unknown: "
                + ", ".join(sorted(unknown)),
            }
        if args.get("json_file"):
            fd = os.open(str(args["json_file"]), os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(fd, "w") as out:
                json.dump(args.get("json_data"), out)
        tail: deque[str] = deque(maxlen=max(int(args.get("tail_lines", 20)), 0))
        log_fd = os.open(str(args["live_log"]), os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        stream = _LiveLines(log_fd, tail)
        try:
            with contextlib.redirect_stdout(stream):
                try:
                    entry = importlib.import_module(str(args["module"]))
                    rc = int(entry.main([str(a) for a in args.get("argv") or []]) or 0)
                except SystemExit as exc:
                    rc = exc.code if isinstance(exc.code, int) else 1
                except Exception:  # the step's crash is the task's failure, with its trace
                    for line in traceback.format_exc().splitlines():
                        stream.write(line + "\n")
                    rc = 1
            stream.close_partial()
        finally:
            os.close(log_fd)
            sys.stdout.flush()
        result.update(rc=rc, stdout_lines=list(tail), securebuild_live=True, changed=True)
        if rc != 0:
            result.update(failed=True, msg=f"{args['module']} exited with status {rc}")
        return result
