"""``securebuild run``: spec.completionDeadlineSeconds cancels the run and fails the build.

The deadline logic (:func:`securebuild.commands.run.supervise`) drives a real ansible-runner
run of tests/data/runner/ playbooks on localhost; ``run_plan`` in the project's VM is replaced
by that local run, since the VM path adds nothing to how the deadline cancels a run (the
e2e tests cover cancelling in the VM).
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from pathlib import Path

from securebuild.commands.run import supervise
from securebuild.pipeline.execute import BuildOutcome
from securebuild.runner import PlaybookRun, RunSpec
from tests.integration.test_runner import DATA, INVENTORY


def _local(
    tmp_path: Path, playbook: str, lines: list[str]
) -> Callable[[Callable[[PlaybookRun], None]], BuildOutcome]:
    spec = RunSpec(
        build_uid=str(uuid.uuid4()),
        attempt=0,
        project_dir=DATA,
        playbook=playbook,
        inventory=INVENTORY,
        trusted_vars={"out_dir": str(tmp_path)},
    )

    def execute(on_start: Callable[[PlaybookRun], None]) -> BuildOutcome:
        run = PlaybookRun(spec, base_dir=tmp_path / "runs", on_line=lines.append)
        on_start(run)
        result = run.run()
        return BuildOutcome(
            namespace="team",
            name="app-1",
            phase=result.phase,
            reason=result.reason,
            message=result.message,
            output_ref=None,
            digest=None,
            stages=result.stages_api(),
            result=result,
        )

    return execute


def test_completion_deadline_cancels_the_run_and_fails_the_build(tmp_path: Path) -> None:
    lines: list[str] = []
    started = time.monotonic()
    outcome = supervise(
        _local(tmp_path, "cancel.yml", lines), deadline_seconds=3, on_line=lines.append
    )
    elapsed = time.monotonic() - started
    assert outcome.result.status == "canceled"  # the 300 s sleep was stopped
    assert 3 <= elapsed < 30, elapsed
    assert (outcome.phase, outcome.reason, outcome.message) == (
        "Failed",
        "GenericBuildFailed",
        "Generic Build failure - check logs for details.",
    )
    assert lines[-1] == "error: the build exceeded its completion deadline of 3 seconds"
    assert [s["name"] for s in outcome.stages] == ["Build"]  # the interrupted step is kept
    assert outcome.summary() == (
        "securebuild: build team/app-1 Failed, reason GenericBuildFailed: "
        "Generic Build failure - check logs for details."
    )
    print(f"deadline 3 s: run ended after {elapsed:.1f} s")


def test_a_run_within_its_deadline_is_unchanged(tmp_path: Path) -> None:
    lines: list[str] = []
    outcome = supervise(
        _local(tmp_path, "stages.yml", lines), deadline_seconds=120, on_line=lines.append
    )
    assert outcome.phase == "Complete" and outcome.reason is None
    assert not any("deadline" in line for line in lines)
