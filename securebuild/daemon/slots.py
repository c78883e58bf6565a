"""A project's build slots, as lock files in the state dir that all daemons on it share.

Why: ``limits.builds_per_project`` is first counted from the live claims a daemon sees
(``scheduler.plan``), but a count is not a lock. Two replicas that decide in the same instant
on *different* builds of one namespace would both start theirs, and the project's VM would run
two builds at once. So a daemon also takes one of the project's ``builds_per_project`` slots
(``<state_dir>/locks/<namespace>.build-slot-<n>``, flock, see ``securebuild.filelock``)
before it claims a build, without waiting, and holds it until its worker ends. A daemon that
dies loses its slots with its file descriptors.

Takeovers do not take a slot: the build's previous holder stopped renewing its claim, but a
frozen (not dead) process would still hold the slot, and waiting for it would leave the build
stuck instead of ending it.
"""

from __future__ import annotations

import contextlib
from pathlib import Path

from securebuild import filelock


class ProjectSlots:
    """The build slots of each project under one state dir."""

    def __init__(self, state_dir: Path, per_project: int) -> None:
        self.state_dir = state_dir
        self.per_project = per_project

    def path(self, namespace: str, slot: int) -> Path:
        return filelock.in_state_dir(self.state_dir, f"{namespace}.build-slot-{slot}")

    def take(self, namespace: str) -> contextlib.ExitStack | None:
        """A free slot of the project, held until the returned stack is closed; None if every
        slot is held (by this process or another)."""
        for slot in range(self.per_project):
            stack = contextlib.ExitStack()
            if stack.enter_context(filelock.attempt(self.path(namespace, slot))):
                return stack
            stack.close()
        return None
