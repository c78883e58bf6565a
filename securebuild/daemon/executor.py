"""Executors: what actually runs a claimed Build (DESIGN section 3 step 5).

The daemon hands a :class:`Job` to an :class:`Executor` on a worker thread and gets an
:class:`Outcome` back; setting the ``cancel`` event asks the executor to stop (user cancel,
completion deadline, lost claim). Keeping this an interface lets tests run a real small
playbook on localhost while production runs ``playbooks/build.yml`` in the project's VM, and
keeps the daemon free of any knowledge of VMs.
"""

from __future__ import annotations

import contextlib
import json
import logging
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from securebuild.model.status import GENERIC_BUILD_FAILED, Phase
from securebuild.runner import PlaybookRun, RunSpec, privdir

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Job:
    build: Mapping[str, Any]  # the Build as it was when claimed
    namespace: str
    name: str
    uid: str
    attempt: int
    output_reference: str | None
    on_line: Callable[[str], None]
    binary_file: Path | None = None  # uploaded by instantiatebinary


@dataclass(frozen=True)
class Outcome:
    phase: Phase  # Complete, Failed, Error or Cancelled
    reason: str | None = None
    message: str | None = None
    stages: list[dict[str, Any]] = field(default_factory=list)
    image_digest: str | None = None
    revision: Mapping[str, Any] | None = None


class Executor(Protocol):
    def run(self, job: Job, cancel: threading.Event) -> Outcome:
        """Run ``job`` to its end (blocking); stop early when ``cancel`` is set."""


@dataclass(frozen=True)
class RunInputs:
    """What a playbook run gets: trusted settings, tenant data (marked unsafe), secrets."""

    trusted_vars: Mapping[str, Any] = field(default_factory=dict)
    tenant_vars: Mapping[str, Any] = field(default_factory=dict)
    secrets: Mapping[str, str | bytes] = field(default_factory=dict)


def default_inputs(job: Job) -> RunInputs:
    """The Build itself as tenant data (``securebuild_build``) and the output reference."""
    trusted: dict[str, Any] = {
        "securebuild_output_reference": job.output_reference or "",
        "securebuild_build_namespace": job.namespace,
        "securebuild_build_name": job.name,
    }
    if job.binary_file is not None:
        trusted["securebuild_binary_file"] = str(job.binary_file)
    return RunInputs(
        trusted_vars=trusted,
        tenant_vars={"securebuild_build": dict(job.build)},
    )


def kill_leftovers(runs: Path, uid: str, attempt: int) -> None:
    """On a takeover, kill what earlier attempts of Build ``uid`` left running on this host.

    Run names derive from the Build's uid and attempt (security reference 2.2, idempotence),
    so a new daemon finds the processes and private data dirs of the one that died.
    """
    for earlier in range(1, attempt):
        name = privdir.run_name(uid, earlier)
        killed = privdir.kill_run_processes(name)
        if killed:
            logger.warning("killed %d leftover processes of %s", len(killed), name)
        privdir.remove_leftovers(runs, name)


def relay_cancel(cancel: threading.Event, run: PlaybookRun, name: str) -> Callable[[], None]:
    """Cancel ``run`` as soon as ``cancel`` is set; returns the function that ends the relay.

    A thread rather than a callback: ``cancel`` is a plain Event set by the daemon (user
    cancel, deadline, lost claim) from any thread.
    """
    done = threading.Event()

    def relay() -> None:
        while not done.is_set():
            if cancel.wait(0.2):
                run.cancel()
                return

    thread = threading.Thread(target=relay, name=f"cancel {name}", daemon=True)
    thread.start()

    def stop() -> None:
        done.set()
        thread.join(1.0)

    return stop


class PlaybookExecutor:
    """Runs one playbook per build through :mod:`securebuild.runner` (ansible-runner).

    The playbook may write a JSON object to ``securebuild_result_file`` (a trusted path):
    ``imageDigest`` becomes ``status.output.to.imageDigest``, ``revision`` ``spec.revision``.
    On a takeover (attempt > 1) processes of earlier attempts of the same Build on this host
    are killed first: names derive from the Build's uid (security reference 2.2, idempotence).
    """

    def __init__(
        self,
        *,
        project_dir: Path,
        playbook: str,
        inventory: Path | Mapping[str, Any],
        base_dir: Path,
        cleanup_playbook: str | None = None,
        prepare: Callable[[Job], RunInputs] = default_inputs,
        timeout: int | None = None,
    ) -> None:
        self.project_dir = project_dir
        self.playbook = playbook
        self.inventory = inventory
        self.base_dir = base_dir
        self.cleanup_playbook = cleanup_playbook
        self.prepare = prepare
        self.timeout = timeout

    def run(self, job: Job, cancel: threading.Event) -> Outcome:
        runs = self.base_dir / "runs"
        results = self.base_dir / "results"
        for directory in (runs, results):
            directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        kill_leftovers(runs, job.uid, job.attempt)
        inputs = self.prepare(job)
        result_file = results / f"{privdir.run_name(job.uid, job.attempt)}.json"
        result_file.unlink(missing_ok=True)
        spec = RunSpec(
            build_uid=job.uid,
            attempt=job.attempt,
            project_dir=self.project_dir,
            playbook=self.playbook,
            inventory=self.inventory,
            trusted_vars={**inputs.trusted_vars, "securebuild_result_file": str(result_file)},
            tenant_vars=inputs.tenant_vars,
            secrets=inputs.secrets,
            cleanup_playbook=self.cleanup_playbook,
            timeout=self.timeout,
        )
        run = PlaybookRun(spec, base_dir=runs, on_line=job.on_line)
        stop_relay = relay_cancel(cancel, run, job.name)
        try:
            result = run.run()
        finally:
            stop_relay()
        extra: dict[str, Any] = {}
        with contextlib.suppress(FileNotFoundError, ValueError):
            extra = json.loads(result_file.read_text())
        result_file.unlink(missing_ok=True)
        phase = Phase(result.phase)
        reason: str | None
        message: str | None
        if phase == Phase.FAILED and not result.reason:
            reason, message = GENERIC_BUILD_FAILED.reason, GENERIC_BUILD_FAILED.message
        else:
            reason, message = result.reason, result.message
        digest = extra.get("imageDigest")
        revision = extra.get("revision")
        return Outcome(
            phase=phase,
            reason=reason,
            message=message,
            stages=result.stages_api(),
            image_digest=digest if isinstance(digest, str) else None,
            revision=revision if isinstance(revision, Mapping) else None,
        )
