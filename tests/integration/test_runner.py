"""The runner adapter with real ansible-runner and ansible-playbook against localhost.

Playbooks live in tests/data/runner/. Every run goes through ``PlaybookRun`` exactly as the
daemon will use it, with the log store as the line sink.
"""

from __future__ import annotations

import json
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from securebuild.logs import BuildLog, LogStore
from securebuild.runner import PlaybookRun, RunResult, RunSpec
from securebuild.runner.privdir import RUN_ENV

DATA = Path(__file__).resolve().parents[1] / "data" / "runner"
PAYLOAD = "{{ lookup('pipe','id') }}"
SECRET = "s3cr3t-T0KEN-4711"
INVENTORY = {
    "all": {
        "hosts": {
            "localhost": {
                "ansible_connection": "local",
                "ansible_python_interpreter": sys.executable,
            }
        }
    }
}


@dataclass
class Harness:
    tmp: Path
    store: LogStore
    base_dir: Path
    out: Path
    counter: list[int] = field(default_factory=lambda: [0])

    def spec(self, playbook: str, **kwargs: Any) -> RunSpec:
        self.counter[0] += 1
        trusted = {"out_dir": str(self.out), **kwargs.pop("trusted_vars", {})}
        return RunSpec(
            build_uid=f"0a1b2c3d-{self.counter[0]}",
            attempt=kwargs.pop("attempt", 0),
            project_dir=DATA,
            playbook=playbook,
            inventory=INVENTORY,
            trusted_vars=trusted,
            **kwargs,
        )

    def start(
        self, spec: RunSpec, before_removal: Callable[[Path], None] | None = None
    ) -> tuple[PlaybookRun, BuildLog]:
        log = self.store.log("team-a", f"build-{self.counter[0]}")
        log.start()
        run = PlaybookRun(
            spec, base_dir=self.base_dir, on_line=log.append, before_removal=before_removal
        )
        return run, log

    def run(
        self, spec: RunSpec, before_removal: Callable[[Path], None] | None = None
    ) -> tuple[RunResult, BuildLog, PlaybookRun]:
        run, log = self.start(spec, before_removal)
        result = run.run()
        log.finish()
        assert not run.private_dir.exists(), "private data dir must be removed after the run"
        return result, log, run


@pytest.fixture
def h(tmp_path: Path) -> Harness:
    out = tmp_path / "out"
    out.mkdir()
    return Harness(tmp_path, LogStore(tmp_path / "logs"), tmp_path / "runs", out)


def run_processes(name: str) -> list[int]:
    marker = f"{RUN_ENV}={name}".encode()
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if marker in (entry / "environ").read_bytes().split(b"\0"):
                    found.append(int(entry.name))
            except OSError:
                continue
    return found


def sleep_processes() -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if (entry / "cmdline").read_bytes() == b"sleep\x00300\x00":
                    found.append(int(entry.name))
            except OSError:
                continue
    return found


def alive(pid: int) -> bool:
    """Running (a zombie waiting for PID 1 to reap it is not running)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(") ", 1)[1].split()[0] != "Z"


def files_under(path: Path) -> Iterator[Path]:
    return (p for p in path.rglob("*") if p.is_file())


def test_tenant_values_arrive_literally(h: Harness) -> None:
    tenant = {
        "tenant_value": PAYLOAD,
        "tenant_nested": {"list": ["{{ 7*7 }}", PAYLOAD], "map": {"key": PAYLOAD}},
    }
    result, log, _ = h.run(h.spec("unsafe.yml", tenant_vars=tenant))
    assert result.succeeded, log.read()
    assert (h.out / "argv.txt").read_text() == PAYLOAD
    assert (h.out / "copy.txt").read_text() == PAYLOAD
    assert (h.out / "template.txt").read_text() == (
        f"template={PAYLOAD}\nlist={{{{ 7*7 }}}},{PAYLOAD}\n"
    )
    assert (h.out / "nested.txt").read_text() == f"{PAYLOAD}\n{PAYLOAD}\n{{{{ 7*7 }}}}/suffix"
    assert log.read() == [PAYLOAD]  # printed live through set_fact + securebuild_live_command
    everything = "".join(p.read_text() for p in h.out.iterdir()) + "\n".join(log.read())
    assert "uid=" not in everything and "49" not in everything


def test_secrets_are_private_files_and_never_logged(h: Harness) -> None:
    seen: dict[str, Any] = {}

    def inspect(pdd: Path) -> None:
        seen["dir_mode"] = pdd.stat().st_mode & 0o777
        seen["files"] = {
            str(p.relative_to(pdd)): p.read_bytes()
            for p in files_under(pdd)
            if p.parts[len(pdd.parts)] not in ("secrets",) and p.name != "live.log"
        }
        seen["artifacts"] = sorted(str(p.relative_to(pdd)) for p in files_under(pdd / "artifacts"))

    result, log, _ = h.run(h.spec("secrets.yml", secrets={"token": SECRET}), inspect)
    assert result.succeeded, log.read()
    # modes seen by the playbook while it ran: secret file 0600, private data dir 0700
    assert (h.out / "modes.txt").read_text() == "0600 0700"
    assert seen["dir_mode"] == 0o700
    assert log.read() == ["using token *****", "secrets done"]
    for name, content in seen["files"].items():
        assert SECRET.encode() not in content, f"secret found in {name}"
    assert not any("job_events/" in a for a in seen["artifacts"]), seen["artifacts"]
    assert "main/stdout" not in seen["artifacts"]
    assert SECRET not in "\n".join(log.read())
    assert list(h.base_dir.iterdir()) == []


def test_live_lines_reach_the_store_while_the_task_runs(h: Harness) -> None:
    run, log = h.start(h.spec("live.yml"))
    box: dict[str, RunResult] = {}
    thread = threading.Thread(target=lambda: box.update(result=run.run()))
    started = time.monotonic()
    thread.start()
    first_seen = None
    while thread.is_alive():
        lines = log.read()
        if "first line" in lines:
            first_seen = time.monotonic()
            assert "second line" not in lines
            break
        time.sleep(0.02)
    thread.join(timeout=60)
    ended = time.monotonic()
    assert first_seen is not None, "first line never reached the store while the task ran"
    assert ended - first_seen > 3.5, "first line should be visible ~5 s before the task ends"
    assert box["result"].succeeded
    assert log.read() == ["first line", "second line"]
    assert first_seen - started < 10


def test_in_process_python_step_streams_live_and_writes_its_parameters(h: Harness) -> None:
    """securebuild_live_python: the entry point runs in the task's worker, lines arrive live."""
    run, log = h.start(h.spec("live_python.yml", envvars={"PYTHONPATH": str(DATA)}))
    box: dict[str, RunResult] = {}
    thread = threading.Thread(target=lambda: box.update(result=run.run()))
    thread.start()
    first_seen = None
    while thread.is_alive():
        lines = log.read()
        if "first line from python" in lines:
            first_seen = time.monotonic()
            assert "second line" not in lines
            break
        time.sleep(0.02)
    thread.join(timeout=60)
    assert first_seen is not None, "first line never reached the store while the task ran"
    assert time.monotonic() - first_seen > 3.5
    assert box["result"].succeeded
    assert log.read() == ["first line from python", "second line"]
    assert json.loads((h.out / "params.json").read_text()) == {"answer": 42}
    assert [s.name for s in box["result"].stages] == ["Build"]


def test_in_process_python_step_failure_keeps_its_reason(h: Harness) -> None:
    spec = h.spec(
        "live_python.yml",
        envvars={"PYTHONPATH": str(DATA)},
        trusted_vars={"pause": 0, "status": 3},
    )
    result, log, _ = h.run(spec)
    assert result.reason == "DockerBuildFailed"
    assert log.read() == [
        "first line from python",
        "second line",
        "error: Run the entry point: live_entry exited with status 3",
    ]


def test_cancel_kills_the_task_within_seconds(h: Harness) -> None:
    spec = h.spec("cancel.yml", cleanup_playbook="cleanup.yml")
    run, _log = h.start(spec)
    box: dict[str, RunResult] = {}
    thread = threading.Thread(target=lambda: box.update(result=run.run()))
    thread.start()
    deadline = time.monotonic() + 60
    ours: list[int] = []
    while not ours and time.monotonic() < deadline:
        ours = [pid for pid in sleep_processes() if pid in run_processes(run.name)]
        time.sleep(0.05)
    assert ours, "the sleep task never started"
    all_pids = run_processes(run.name)
    cancelled_at = time.monotonic()
    run.cancel()
    while any(alive(pid) for pid in ours):
        assert time.monotonic() - cancelled_at < 5, "sleep 300 still running 5 s after cancel"
        time.sleep(0.05)
    killed_after = time.monotonic() - cancelled_at
    thread.join(timeout=60)
    result = box["result"]
    assert result.status == "canceled"
    assert result.phase == "Cancelled"
    assert result.reason == "CancelledBuild"
    assert result.message == "The build was cancelled by the user."
    assert result.cleanup_status == "successful"
    assert (h.out / "cleanup.txt").read_text() == f"cleaned {run.name}\n"
    # the interrupted task's step is recorded up to the cancel
    [stage] = result.stages
    assert (stage.name, [s.name for s in stage.steps]) == ("Build", ["DockerBuild"])
    assert [pid for pid in run_processes(run.name) if alive(pid)] == []
    assert not run.private_dir.exists()
    ansible_tmp = Path.home() / ".ansible" / "tmp"
    for pid in all_pids:  # the killed task's module payload (its arguments) is gone too
        assert not list(ansible_tmp.glob(f"ansible-tmp-*-{pid}-*"))
    print(f"sleep killed {killed_after:.2f} s after cancel()")


@pytest.mark.parametrize(
    ("fail_at", "reason", "message", "stages"),
    [
        (
            "FetchGitSource",
            "FetchSourceFailed",
            "Failed to fetch the input source.",
            ["FetchInputs"],
        ),
        (
            "DockerBuild",
            "DockerBuildFailed",
            "Dockerfile build strategy has failed.",
            ["FetchInputs", "PullImages", "Build"],
        ),
        (
            "PushDockerImage",
            "PushImageToRegistryFailed",
            "Failed to push the image to the registry.",
            ["FetchInputs", "PullImages", "Build", "PushImage"],
        ),
    ],
)
def test_failed_task_maps_to_its_reason(
    h: Harness, fail_at: str, reason: str, message: str, stages: list[str]
) -> None:
    spec = h.spec("stages.yml", trusted_vars={"fail_at": fail_at}, cleanup_playbook="cleanup.yml")
    result, log, _ = h.run(spec)
    assert result.status == "failed"
    assert result.phase == "Failed"
    assert (result.reason, result.message) == (reason, message)
    assert [s.name for s in result.stages] == stages
    assert result.cleanup_status == "successful"
    task = {"FetchGitSource": "Clone", "DockerBuild": "Build", "PushDockerImage": "Push"}[fail_at]
    assert log.read()[-1].startswith(f"error: {task}: ")
    assert result.failed_task == task


def test_stages_are_recorded_with_durations(h: Harness) -> None:
    result, log, _ = h.run(h.spec("stages.yml"))
    assert result.succeeded, log.read()
    assert result.reason is None and result.message is None
    api = result.stages_api()
    assert [(s["name"], [st["name"] for st in s["steps"]]) for s in api] == [
        ("FetchInputs", ["FetchGitSource"]),
        ("PullImages", ["PullBaseImage"]),
        ("Build", ["DockerBuild"]),
        ("PushImage", ["PushDockerImage"]),
    ]
    minimum = {"FetchInputs": 300, "PullImages": 200, "Build": 400, "PushImage": 200}
    for stage in api:
        assert stage["durationMilliseconds"] >= minimum[stage["name"]]
        assert stage["steps"][0]["durationMilliseconds"] == stage["durationMilliseconds"]
        assert stage["startTime"].endswith("Z") and "T" in stage["startTime"]
    starts = [s.start_time or "" for s in result.stages]
    assert starts == sorted(starts)
    assert log.read() == ["Cloning", "Pulling", "STEP 1/1"]


def test_leftovers_of_an_earlier_attempt_are_removed(h: Harness) -> None:
    spec = h.spec("live.yml", trusted_vars={"pause": 0})
    run, _log = h.start(spec)
    leftover = run.private_dir
    (leftover / "env").mkdir(parents=True)
    (leftover / "env" / "extravars").write_text('{"stale": true}')
    result = run.run()
    assert result.succeeded
    assert not leftover.exists()


def test_a_broken_playbook_fails_generically_with_ansible_message(h: Harness) -> None:
    result, log, _ = h.run(h.spec("no-such-playbook.yml"))
    assert result.status == "failed"
    assert result.reason == "GenericBuildFailed"
    assert result.message == "Generic Build failure - check logs for details."
    assert log.read()[-1].startswith("error: the playbook run ended failed")


def test_a_failing_no_log_task_shows_no_output(h: Harness) -> None:
    result, log, _ = h.run(h.spec("nolog_fail.yml", secrets={"token": SECRET}))
    assert result.reason == "PushImageToRegistryFailed"
    assert result.message == "Failed to push the image to the registry."
    assert log.read() == ["error: Log in with the secret: (output hidden: no_log)"]
    assert result.failure_msg == "(output hidden: no_log)"


def test_block_tags_are_inherited(h: Harness) -> None:
    result, _log, _ = h.run(h.spec("block_tags.yml"))
    assert result.reason == "DockerBuildFailed"
    assert [(s.name, [st.name for st in s.steps]) for s in result.stages] == [
        ("Build", ["DockerBuild"])
    ]
