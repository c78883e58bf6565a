"""Ansible callback: write each task's uuid and tags to the file named by SECUREBUILD_TASK_META.

Why: ansible-runner's events carry a task's name and uuid but not its tags, and the adapter
reads stages, steps and failure reasons from tags (``stage:Build``, ``step:DockerBuild``,
``reason:DockerBuildFailed``; see docs/development.md). One JSON object per line, written
before the task runs, so the adapter can join it to the events by ``task_uuid``.
"""

from __future__ import annotations

import json
import os
from typing import Any

from ansible.plugins.callback import CallbackBase

DOCUMENTATION = """
name: securebuild_task_meta
type: notification
short_description: record task tags for the securebuild runner adapter
description: Appends {"uuid", "tags", "name"} per task to the file in SECUREBUILD_TASK_META.
requirements: [SECUREBUILD_TASK_META in the environment]
"""


class CallbackModule(CallbackBase):  # type: ignore[misc]
    CALLBACK_VERSION = 2.0
    CALLBACK_TYPE = "notification"
    CALLBACK_NAME = "securebuild_task_meta"
    CALLBACK_NEEDS_ENABLED = True

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._path = os.environ.get("SECUREBUILD_TASK_META")

    def _record(self, task: Any) -> None:
        if not self._path:
            return
        try:
            tags = [str(tag) for tag in (task.tags or [])]
        except Exception:  # tags that fail to resolve must not break the play
            tags = []
        record = {"uuid": str(task._uuid), "tags": tags, "name": task.get_name()}
        fd = os.open(self._path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        try:
            os.write(fd, (json.dumps(record) + "\n").encode())
        finally:
            os.close(fd)

    def v2_playbook_on_task_start(self, task: Any, is_conditional: Any) -> None:
        self._record(task)

    def v2_playbook_on_handler_task_start(self, task: Any) -> None:
        self._record(task)
