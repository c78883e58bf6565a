"""Run one planned build through ``playbooks/build.yml`` with the runner adapter.

Used by ``securebuild run`` (and meant for the daemon's workers): the VM is given as a
:class:`VMTarget` (its SSH and dockerd endpoints); the inventory is passed to ansible-runner as
data with just that VM in ``project_vms``, so the warm path costs one ansible-runner invocation
and no inventory lookups. The digest, the source information and dockerd's own build time are
read from the run's result file just before the private data dir is removed.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import subprocess
import tempfile
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

# VMTarget's home is the fleet; re-exported for callers that import it from here.
from securebuild.fleet.target import VMRecord as VMRecord
from securebuild.fleet.target import VMTarget as VMTarget
from securebuild.pipeline.plan import BuildPlan
from securebuild.pipeline.steps import HELPER, ssh_argv, stop_master
from securebuild.runner import PlaybookRun, RunResult, RunSpec, privdir

logger = logging.getLogger(__name__)

REPO_ROOT = Path(__file__).resolve().parents[2]
PLAYBOOK = "playbooks/build.yml"
CLEANUP_PLAYBOOK = "playbooks/build-cleanup.yml"


@dataclass(frozen=True)
class BuildOutcome:
    namespace: str
    name: str
    phase: str
    reason: str | None
    message: str | None
    output_ref: str | None
    digest: str | None
    stages: list[dict[str, Any]]
    result: RunResult
    details: dict[str, Any] = field(default_factory=dict)  # result.json of the run

    def summary(self) -> str:
        """The last line of ``securebuild run``."""
        head = f"securebuild: build {self.namespace}/{self.name} {self.phase}"
        if self.phase == "Complete":
            if self.output_ref and self.digest:
                repository = self.output_ref
                last = repository.rsplit("/", 1)[-1]
                if ":" in last:
                    repository = repository.rsplit(":", 1)[0]
                return f"{head}, pushed {repository}@{self.digest}"
            return f"{head}, no image push requested"
        return f"{head}, reason {self.reason}: {self.message}"


def run_plan(
    plan: BuildPlan,
    vm: VMTarget,
    *,
    on_line: Callable[[str], None],
    base_dir: Path,
    build_uid: str | None = None,
    attempt: int = 0,
    registry_cas: Mapping[str, str] | None = None,
    on_start: Callable[[PlaybookRun], None] | None = None,
    timeout: int | None = None,
) -> BuildOutcome:
    """Run ``plan`` in ``vm``; blocks until the playbook (and cleanup, if needed) ended."""
    uid = build_uid or str((plan.tenant["build"].get("metadata") or {}).get("uid") or uuid.uuid4())
    details: dict[str, Any] = {}

    def before_removal(pdd: Path) -> None:
        result = pdd / "result.json"
        if result.exists():
            details.update(json.loads(result.read_text()))

    envvars = {
        "ANSIBLE_ROLES_PATH": str(REPO_ROOT / "roles"),
        "ANSIBLE_PIPELINING": "True",
        "ANSIBLE_HOST_KEY_CHECKING": "True",
        "ANSIBLE_SSH_ARGS": "-o ControlMaster=auto -o ControlPersist=60s",
        "ANSIBLE_TIMEOUT": "30",
        "ANSIBLE_CALLBACK_RESULT_FORMAT": "json",
    }
    # The steps' SSH master socket: private to this run (0700), short for sun_path.
    control_dir = tempfile.mkdtemp(prefix="sbssh-")
    spec = RunSpec(
        build_uid=uid,
        attempt=attempt,
        project_dir=REPO_ROOT,
        playbook=PLAYBOOK,
        inventory=vm.inventory(),
        trusted_vars={
            "securebuild_vm": {**vm.as_vars(), "ssh_control_dir": control_dir},
            "securebuild_binary_file": plan.binary_path or "",
            "securebuild_registry_cas": dict(registry_cas or {}),
        },
        tenant_vars={"securebuild_build": plan.tenant},
        secrets=plan.secrets,
        envvars=envvars,
        cleanup_playbook=CLEANUP_PLAYBOOK,
        timeout=timeout,
    )
    warmup: subprocess.Popen[bytes] | None = None
    try:
        base_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        run = PlaybookRun(spec, base_dir=base_dir, on_line=on_line, before_removal=before_removal)
        if on_start is not None:
            on_start(run)
        _remove_earlier_attempts(spec.trusted_vars["securebuild_vm"], uid, attempt)
        warmup = _warm_up_ssh(spec.trusted_vars["securebuild_vm"], run.name)
        result = run.run()
    finally:
        if warmup is not None:
            if warmup.poll() is None:
                warmup.kill()
            warmup.wait()
        stop_master(spec.trusted_vars["securebuild_vm"])
        shutil.rmtree(control_dir, ignore_errors=True)
    return BuildOutcome(
        namespace=plan.namespace,
        name=plan.name,
        phase=result.phase,
        reason=result.reason,
        message=result.message,
        output_ref=plan.output_ref,
        digest=details.get("digest") if result.succeeded else None,
        stages=result.stages_api(),
        result=result,
        details=details,
    )


def _remove_earlier_attempts(vm_vars: Mapping[str, Any], build_uid: str, attempt: int) -> None:
    """On a takeover, what earlier attempts left in the VM goes before this attempt runs.

    A daemon that died mid-build never ran the cleanup playbook: its run's work directory
    (source, secret files) is still in the VM, and hook processes may still run. The helper's
    ``cleanup`` stops the build user's processes and removes the directory, found by the run
    name derived from the Build's uid and the attempt (security reference 2.2).
    """
    for earlier in range(1, attempt):
        name = privdir.run_name(build_uid, earlier)
        try:
            proc = subprocess.run(
                ssh_argv(vm_vars, "sudo", "-n", HELPER, "cleanup", name),
                stdin=subprocess.DEVNULL,
                capture_output=True,
                timeout=300,
                check=False,
            )
        except subprocess.TimeoutExpired:
            logger.warning("removing %s from the VM timed out", name)
            continue
        if proc.returncode != 0:
            logger.warning(
                "removing %s from the VM failed (exit status %d): %s",
                name,
                proc.returncode,
                proc.stderr.decode("utf-8", "replace")[-500:],
            )


def _warm_up_ssh(vm_vars: Mapping[str, Any], run_name: str) -> subprocess.Popen[bytes] | None:
    """Open the run's SSH master while ansible-playbook starts (the handshake with an emulated
    guest takes about a second; the first step would otherwise wait for it).

    ``run_plan`` ends the master after the run (``stop_master``). A failure here only means
    the first step connects itself.
    """
    env = {k: v for k, v in os.environ.items() if k != "SSH_AUTH_SOCK"}
    env[privdir.RUN_ENV] = run_name
    try:
        return subprocess.Popen(
            ssh_argv(vm_vars, "true"),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            env=env,
        )
    except OSError as exc:
        logger.warning("run %s: cannot start the SSH master early: %s", run_name, exc)
        return None


def default_base_dir() -> Path:
    """Private data dirs of runs: under the state dir, never world readable."""
    state = os.environ.get("SECUREBUILD_STATE_DIR") or str(
        Path.home() / ".cache" / "securebuild" / "state"
    )
    return Path(state) / "runs"
