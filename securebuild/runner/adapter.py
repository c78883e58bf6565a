"""Run one playbook for one build through ansible-runner: the only way the daemon runs Ansible.

What a run guarantees (DESIGN sections 3 step 5 and 4, security reference 2.3):

- a fresh private data dir ``<base_dir>/sb-<build uid>-<attempt>`` (0700), removed after the
  run whatever happens (success, failure, cancel, exception); leftovers of an earlier attempt
  with the same name are killed and removed first;
- ``env/extravars``, ``env/envvars``, ``env/settings`` written by us (0600; ansible-runner's
  ``dump_artifacts`` never sees them, so nothing is kept or passed on the command line); tenant
  values are marked unsafe (:mod:`securebuild.runner.extravars`); secrets are files under
  ``secrets/`` (0600) whose *paths* are in ``securebuild_secret_files``, never their values;
- no verbosity flags, ``ANSIBLE_DEBUG`` forced off, job events not written to disk
  (``event_handler`` returns False), no stdout artifact, ``rotate_artifacts=1``;
- output lines reach ``on_line`` as they are produced: lines appended by tasks to
  ``securebuild_live_log`` are followed live, failures come from the events; every line has
  the known secret values masked first;
- :meth:`PlaybookRun.cancel` stops ansible-runner within ~0.2 s (its ``pexpect_timeout``), kills
  every process of the run, and runs the caller's cleanup playbook.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import logging
import os
import re
import shutil
import sys
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import ansible_runner

from securebuild.errors import SecurebuildError
from securebuild.model.types import StageInfo
from securebuild.runner import privdir, reasons
from securebuild.runner.ansible import ACTION_DIR, CALLBACK_DIR, MODULES_DIR
from securebuild.runner.events import EventProcessor, TaskMetaReader
from securebuild.runner.extravars import build_extravars, dumps
from securebuild.runner.follower import DEFAULT_INTERVAL, LiveLogFollower
from securebuild.runner.masking import SecretMasker

logger = logging.getLogger(__name__)

PEXPECT_TIMEOUT = 0.2  # how often ansible-runner asks cancel_callback; bounds cancel latency
_SECRET_NAME = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,63}$")
RESERVED_VARS = ("securebuild_live_log", "securebuild_secret_files", "securebuild_run_name")


class RunnerError(SecurebuildError):
    """A playbook run could not be set up or cleaned up."""


def ansible_playbook_binary() -> str:
    """ansible-playbook of this Python environment (the daemon's venv), else the one on PATH."""
    beside = Path(sys.executable).parent / "ansible-playbook"
    if beside.is_file():
        return str(beside)
    found = shutil.which("ansible-playbook")
    if found is None:
        raise RunnerError("ansible-playbook not found beside the Python interpreter or on PATH")
    return found


@dataclass(frozen=True)
class RunSpec:
    """What to run. Only ``tenant_vars`` and ``secrets`` may hold tenant-controlled data."""

    build_uid: str
    attempt: int
    project_dir: Path  # ansible-playbook's working directory; playbooks are relative to it
    playbook: str
    inventory: Path | Mapping[str, Any]  # a path, or an inventory as data (written to JSON)
    trusted_vars: Mapping[str, Any] = field(default_factory=dict)
    tenant_vars: Mapping[str, Any] = field(default_factory=dict)
    secrets: Mapping[str, str | bytes] = field(default_factory=dict)
    envvars: Mapping[str, str] = field(default_factory=dict)  # trusted, operator-set only
    cleanup_playbook: str | None = None  # run when the main run did not succeed
    timeout: int | None = None  # seconds for the whole run (ansible-runner job_timeout)
    cleanup_timeout: int = 120


@dataclass(frozen=True)
class RunResult:
    status: str  # ansible-runner's: successful, failed, canceled, timeout
    rc: int | None
    reason: str | None  # OpenShift reason, None on success
    message: str | None  # OpenShift message for ``reason``
    stages: tuple[StageInfo, ...]
    failed_task: str | None = None
    failure_msg: str | None = None  # the module's msg (masked), for the log and debugging
    cleanup_status: str | None = None  # status of the cleanup playbook if it ran

    @property
    def succeeded(self) -> bool:
        return self.status == "successful"

    @property
    def phase(self) -> str:
        if self.succeeded:
            return "Complete"
        return "Cancelled" if self.status == "canceled" else "Failed"

    def stages_api(self) -> list[dict[str, Any]]:
        return [stage.to_json() for stage in self.stages]


class PlaybookRun:
    """One run. Call :meth:`run` once (blocking); :meth:`cancel` from any thread."""

    def __init__(
        self,
        spec: RunSpec,
        *,
        base_dir: Path,
        on_line: Callable[[str], None],
        follow_interval: float = DEFAULT_INTERVAL,
        before_removal: Callable[[Path], None] | None = None,
    ) -> None:
        self.spec = spec
        self.base_dir = base_dir
        self.name = privdir.run_name(spec.build_uid, spec.attempt)
        self.private_dir = base_dir / self.name
        self._on_line = on_line
        self._follow_interval = follow_interval
        self._before_removal = before_removal  # tests inspect the dir before it goes
        self._masker = SecretMasker(spec.secrets.values())
        self._cancel = threading.Event()
        self._sink_lock = threading.Lock()
        self._started = False
        self.finished_at: dt.datetime | None = None
        for name in spec.secrets:
            if not _SECRET_NAME.match(name):
                raise RunnerError(f"invalid secret name {name!r}")
        for var in RESERVED_VARS:
            if var in spec.trusted_vars or var in spec.tenant_vars:
                raise RunnerError(f"extra variable {var} is set by the runner")

    # -- public --------------------------------------------------------------------------
    def cancel(self) -> None:
        """Ask the run to stop; ansible-runner kills ansible-playbook at its next check."""
        logger.info("cancelling run %s", self.name)
        self._cancel.set()

    @property
    def cancelled(self) -> bool:
        return self._cancel.is_set()

    def run(self) -> RunResult:
        if self._started:
            raise RunnerError(f"run {self.name} was already started")
        self._started = True
        pdd = privdir.create(self.base_dir, self.name)
        follower: LiveLogFollower | None = None
        try:
            extravars = self._prepare(pdd)
            follower = LiveLogFollower(
                pdd / "live.log", self._append, interval=self._follow_interval
            )
            follower.start()
            result = self._execute(pdd, extravars, follower)
            follower.stop()
            follower = None
            return result
        finally:
            if follower is not None:
                follower.stop()
            privdir.kill_run_processes(self.name)  # nothing of a run outlives it
            try:
                if self._before_removal is not None:
                    self._before_removal(pdd)
            finally:
                privdir.remove(pdd)

    # -- internals -----------------------------------------------------------------------
    def _append(self, lines: list[str]) -> None:
        with self._sink_lock:
            for line in lines:
                self._on_line(self._masker.mask(line) if self._masker else line)

    def _prepare(self, pdd: Path) -> dict[str, Any]:
        secret_files: dict[str, str] = {}
        for name, content in self.spec.secrets.items():
            path = privdir.write_private(pdd / "secrets" / name, content)
            secret_files[name] = str(path)
        live_log = privdir.write_private(pdd / "live.log", b"")
        if isinstance(self.spec.inventory, Path):
            inventory = str(self.spec.inventory)
        else:
            inventory = str(
                privdir.write_private(
                    pdd / "inventory" / "hosts.json", json.dumps(self.spec.inventory)
                )
            )
        trusted = dict(self.spec.trusted_vars)
        trusted.update(
            securebuild_live_log=str(live_log),
            securebuild_secret_files=secret_files,
            securebuild_run_name=self.name,
        )
        extravars = build_extravars(trusted, self.spec.tenant_vars)
        privdir.write_private(pdd / "env" / "extravars", dumps(extravars))
        tmp = pdd / "tmp"
        tmp.mkdir(mode=0o700)
        env = {
            **self.spec.envvars,
            privdir.RUN_ENV: self.name,
            # ansible-runner runs "ansible-playbook" from PATH: use the one of this environment
            "PATH": os.pathsep.join(
                (str(Path(ansible_playbook_binary()).parent), os.environ.get("PATH", os.defpath))
            ),
            "SECUREBUILD_TASK_META": str(pdd / "task_meta.jsonl"),
            "ANSIBLE_LIBRARY": os.pathsep.join(
                p for p in (str(MODULES_DIR), self.spec.envvars.get("ANSIBLE_LIBRARY")) if p
            ),
            "ANSIBLE_ACTION_PLUGINS": os.pathsep.join(
                p for p in (str(ACTION_DIR), self.spec.envvars.get("ANSIBLE_ACTION_PLUGINS")) if p
            ),
            "ANSIBLE_CALLBACK_PLUGINS": os.pathsep.join(
                p
                for p in (str(CALLBACK_DIR), self.spec.envvars.get("ANSIBLE_CALLBACK_PLUGINS"))
                if p
            ),
            "ANSIBLE_CALLBACKS_ENABLED": "securebuild_task_meta",
            "ANSIBLE_LOCAL_TEMP": str(tmp),
            "ANSIBLE_NOCOLOR": "1",
            "ANSIBLE_DEBUG": "0",
            "ANSIBLE_VERBOSITY": "0",
            "ANSIBLE_DISPLAY_ARGS_TO_STDOUT": "0",
            "ANSIBLE_KEEP_REMOTE_FILES": "0",
            "ANSIBLE_RETRY_FILES_ENABLED": "0",
        }
        privdir.write_private(pdd / "env" / "envvars", json.dumps(env))
        settings = {"pexpect_timeout": PEXPECT_TIMEOUT, "suppress_output_file": True}
        privdir.write_private(pdd / "env" / "settings", json.dumps(settings))
        self._inventory = inventory
        return extravars

    def _runner_kwargs(self, pdd: Path, ident: str) -> dict[str, Any]:
        return {
            "private_data_dir": str(pdd),
            "project_dir": str(self.spec.project_dir),
            "inventory": self._inventory,
            "ident": ident,
            "rotate_artifacts": 1,
            "quiet": True,
            "suppress_output_file": True,
        }

    def _execute(
        self, pdd: Path, extravars: dict[str, Any], follower: LiveLogFollower
    ) -> RunResult:
        meta = TaskMetaReader(pdd / "task_meta.jsonl")

        def emit(lines: list[str]) -> None:
            follower.drain()  # live output of the task comes before its error line
            self._append(lines)

        events = EventProcessor(meta, emit)

        def event_handler(event: dict[str, Any]) -> bool:
            try:
                events.handle(event)
            except Exception:
                logger.exception("run %s: cannot handle event %s", self.name, event.get("event"))
            return False  # never write job events to disk: they may hold task output

        def finished(_runner: Any) -> None:
            self.finished_at = dt.datetime.now(dt.UTC)

        logger.info("run %s: %s starting", self.name, self.spec.playbook)
        runner = ansible_runner.run(
            playbook=self.spec.playbook,
            event_handler=event_handler,
            cancel_callback=self._cancel.is_set,
            finished_callback=finished,
            timeout=self.spec.timeout,
            **self._runner_kwargs(pdd, "main"),
        )
        status = str(runner.status)
        rc = runner.rc if isinstance(runner.rc, int) else None
        logger.info("run %s: ansible-runner status %s rc %s", self.name, status, rc)
        if status != "successful":
            privdir.kill_run_processes(self.name)
            events.close_open_task(dt.datetime.now(dt.UTC))
            if events.failure is None and not self.cancelled:
                tail = [line for line in events.verbose_tail if line.strip()]
                emit([*tail, f"error: the playbook run ended {status} (exit status {rc})"])
        cleanup_status = None
        if status != "successful" and self.spec.cleanup_playbook:
            cleanup_status = self._cleanup(pdd)
        return self._result(status, rc, events, cleanup_status)

    def _cleanup(self, pdd: Path) -> str:
        """Run the caller's cleanup playbook (same vars and secrets); its output is not logged."""
        assert self.spec.cleanup_playbook is not None
        logger.info("run %s: cleanup %s", self.name, self.spec.cleanup_playbook)
        with contextlib.suppress(FileNotFoundError):
            (pdd / "task_meta.jsonl").unlink()
        runner = ansible_runner.run(
            playbook=self.spec.cleanup_playbook,
            event_handler=lambda _event: False,
            timeout=self.spec.cleanup_timeout,
            **self._runner_kwargs(pdd, "cleanup"),
        )
        privdir.kill_run_processes(self.name)
        status = str(runner.status)
        if status != "successful":
            logger.error("run %s: cleanup playbook ended %s", self.name, status)
        return status

    def _result(
        self, status: str, rc: int | None, events: EventProcessor, cleanup_status: str | None
    ) -> RunResult:
        failure = events.failure
        common: dict[str, Any] = {
            "status": status,
            "rc": rc,
            "stages": events.stages,
            "cleanup_status": cleanup_status,
            "failed_task": failure.task if failure else None,
            "failure_msg": self._masker.mask(failure.msg) if failure else None,
        }
        if status == "successful":
            return RunResult(reason=None, message=None, **common)
        if self.cancelled or status == "canceled":
            common["status"] = "canceled"
            reason = reasons.CANCELLED_BUILD
        elif failure is not None and failure.reason in reasons.MESSAGES:
            reason = failure.reason
        else:
            if failure is not None and failure.reason:
                logger.warning("run %s: unknown reason tag %r", self.name, failure.reason)
            reason = reasons.GENERIC_BUILD_FAILED
        return RunResult(reason=reason, message=reasons.message_for(reason), **common)
