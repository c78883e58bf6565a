"""The daemon end to end against the real API server, with a real ansible-runner executor.

The executor runs tests/data/daemon/build.yml on localhost (no VM): it has the four stages,
live output, a failure switch and a result file, so everything the daemon does with a run is
real. The VM path (playbooks/build.yml) is covered by the e2e tests.
"""

from __future__ import annotations

import itertools
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from securebuild.cluster import Kube, paths
from securebuild.cluster.claims import Claim
from securebuild.commands.daemon import make_daemon
from securebuild.daemon import Daemon
from securebuild.daemon.config import ExecutorConfig
from securebuild.daemon.slots import ProjectSlots
from securebuild.devenv.controlplane import ControlPlane
from securebuild.fleet.placement import read_placement, write_placement
from securebuild.pki import ProjectPKI
from tests.helpers.cluster import (
    build_body,
    build_events,
    create_namespace,
    ended_build_events,
    get_build,
    kube_for,
    phase,
    unique,
    wait_for,
)
from tests.helpers.daemon import DaemonProcess, daemon_config, running_daemon, write_config_file
from tests.helpers.fleet import local_fleet_files, recording_playbook

TERMINAL = ("Complete", "Failed", "Error", "Cancelled")


@pytest.fixture(scope="module")
def admin(controlplane: ControlPlane) -> Kube:
    return kube_for(controlplane, "admin")


@pytest.fixture
def runs_file(tmp_path: Path) -> Path:
    path = tmp_path / "runs.txt"
    path.touch()
    return path


@pytest.fixture
def daemon(controlplane: ControlPlane, tmp_path: Path) -> Iterator[Daemon]:
    with running_daemon(controlplane, tmp_path / "state", "daemon-one", per_project=2) as d:
        yield d


def make_build(
    admin: Kube,
    namespace: str,
    name: str,
    runs_file: Path,
    *,
    env: dict[str, str] | None = None,
    spec: dict[str, Any] | None = None,
    **kwargs: Any,
) -> dict[str, Any]:
    body = build_body(namespace, name, **kwargs)
    body["spec"].update(spec or {})
    variables = {"RUNS_FILE": str(runs_file), **(env or {})}
    body["spec"]["strategy"]["dockerStrategy"]["env"] = [
        {"name": k, "value": v} for k, v in variables.items()
    ]
    result: dict[str, Any] = admin.request("POST", paths.builds(namespace), body=body)
    return result


def wait_phase(
    admin: Kube, ns: str, name: str, phases: tuple[str, ...], timeout: float = 60
) -> Any:
    return wait_for(
        f"{ns}/{name} in {phases}",
        lambda: (b := get_build(admin, ns, name)) and phase(b) in phases and b,
        timeout=timeout,
        interval=0.2,
    )


def runs(runs_file: Path) -> list[tuple[str, str, float]]:
    result = []
    for line in runs_file.read_text().splitlines():
        what, key, when = line.split()
        result.append((what, key, float(when)))
    return result


def test_build_completes_with_status_and_events(
    daemon: Daemon, admin: Kube, runs_file: Path
) -> None:
    ns = create_namespace(admin, unique("ok"))
    created = make_build(admin, ns, "app-1", runs_file, output="127.0.0.1:5000/ok/app:v1")
    build = wait_phase(admin, ns, "app-1", TERMINAL)
    status = build["status"]
    assert status["phase"] == "Complete", status
    assert "reason" not in status and "message" not in status and "logSnippet" not in status
    assert status["outputDockerImageReference"] == "127.0.0.1:5000/ok/app:v1"
    assert status["output"]["to"]["imageDigest"] == "sha256:" + "0" * 63 + "7"
    assert status["startTimestamp"] <= status["completionTimestamp"]
    assert isinstance(status["duration"], int) and status["duration"] % 1_000_000_000 == 0
    assert [s["name"] for s in status["stages"]] == ["FetchInputs", "Build", "PushImage"]
    assert [s["steps"][0]["name"] for s in status["stages"]] == [
        "FetchGitSource",
        "DockerBuild",
        "PushDockerImage",
    ]
    conditions = {c["type"]: c["status"] for c in status["conditions"]}
    assert conditions == {"Pending": "False", "Running": "False", "Complete": "True"}
    claim = Claim.of(build)
    assert claim is not None and claim.holder == "daemon-one" and claim.attempt == 1
    events = sorted((e["reason"], e["message"]) for e in ended_build_events(admin, ns, "app-1"))
    assert events == [
        ("BuildCompleted", f"Build {ns}/app-1 completed successfully"),
        ("BuildStarted", f"Build {ns}/app-1 is now running"),
    ]
    log = daemon.log_store.log(ns, "app-1")
    assert log.finished
    text = "\n".join(log.read())
    assert f"Cloning source for {ns}/app-1" in text and "STEP 2/2: RUN make" in text
    assert [(w, k) for w, k, _ in runs(runs_file)] == [
        ("start", f"{ns}/app-1"),
        ("done", f"{ns}/app-1"),
    ]
    assert created["metadata"]["uid"] == build["metadata"]["uid"]


def test_failing_build_is_failed_with_reason_and_snippet(
    daemon: Daemon, admin: Kube, runs_file: Path
) -> None:
    ns = create_namespace(admin, unique("fail"))
    make_build(admin, ns, "app-1", runs_file, env={"FAIL": "1"})
    status = wait_phase(admin, ns, "app-1", TERMINAL)["status"]
    assert status["phase"] == "Failed"
    assert status["reason"] == "DockerBuildFailed"
    assert status["message"] == "Dockerfile build strategy has failed."
    assert "make: *** [all] Error 2" in status["logSnippet"]
    assert len(status["logSnippet"].splitlines()) <= 5
    assert [s["name"] for s in status["stages"]] == ["FetchInputs", "Build"]
    assert "output" not in status
    events = sorted(e["reason"] for e in ended_build_events(admin, ns, "app-1"))
    assert events == ["BuildFailed", "BuildStarted"]


def test_cancel_stops_the_run(daemon: Daemon, admin: Kube, runs_file: Path) -> None:
    ns = create_namespace(admin, unique("cancel"))
    make_build(admin, ns, "app-1", runs_file, env={"SLEEP": "60"})
    wait_for("the run to start", lambda: runs(runs_file), timeout=60)
    started = time.monotonic()
    admin.request(
        "PATCH",
        paths.build_status(ns, "app-1"),
        body={"status": {"cancelled": True}},
        content_type="application/merge-patch+json",
    )
    status = wait_phase(admin, ns, "app-1", TERMINAL, timeout=30)["status"]
    assert time.monotonic() - started < 15
    assert status["phase"] == "Cancelled"
    assert status["reason"] == "CancelledBuild"
    assert status["message"] == "The build was cancelled by the user."
    assert "completionTimestamp" in status
    assert [w for w, _k, _t in runs(runs_file)] == ["start"]  # never reached the push
    events = sorted(e["reason"] for e in ended_build_events(admin, ns, "app-1"))
    assert events == ["BuildCancelled", "BuildStarted"]


def test_cancelled_before_start_never_runs(
    controlplane: ControlPlane, admin: Kube, runs_file: Path, tmp_path: Path
) -> None:
    ns = create_namespace(admin, unique("precancel"))
    make_build(admin, ns, "app-1", runs_file)
    admin.request(
        "PATCH",
        paths.build_status(ns, "app-1"),
        body={"status": {"cancelled": True}},
        content_type="application/merge-patch+json",
    )
    with running_daemon(controlplane, tmp_path / "state", "daemon-pre"):
        status = wait_phase(admin, ns, "app-1", TERMINAL)["status"]
    assert status["phase"] == "Cancelled" and status["reason"] == "CancelledBuild"
    assert runs(runs_file) == []


def test_completion_deadline_fails_the_build(daemon: Daemon, admin: Kube, runs_file: Path) -> None:
    ns = create_namespace(admin, unique("deadline"))
    make_build(admin, ns, "app-1", runs_file, env={"SLEEP": "60"}, deadline=3)
    status = wait_phase(admin, ns, "app-1", TERMINAL, timeout=40)["status"]
    assert status["phase"] == "Failed"
    assert status["reason"] == "GenericBuildFailed"
    assert status["message"] == "Generic Build failure - check logs for details."
    assert "exceeded its completion deadline of 3 seconds" in status["logSnippet"]


def test_only_opted_in_docker_builds_are_run(daemon: Daemon, admin: Kube, runs_file: Path) -> None:
    outside = create_namespace(admin, unique("outside"), opted_in=False)
    inside = create_namespace(admin, unique("inside"))
    make_build(admin, outside, "app-1", runs_file)
    body = build_body(inside, "s2i-1", strategy="Source")
    admin.request("POST", paths.builds(inside), body=body)
    make_build(admin, inside, "app-1", runs_file)
    wait_phase(admin, inside, "app-1", TERMINAL)
    time.sleep(1.0)
    assert phase(get_build(admin, outside, "app-1")) == "New"
    assert phase(get_build(admin, inside, "s2i-1")) == "New"
    # Opting the namespace in later is enough.
    admin.request(
        "PATCH",
        paths.namespace(outside),
        body={"metadata": {"labels": {"securebuild.appuio.ch/enabled": "true"}}},
        content_type="application/merge-patch+json",
    )
    assert phase(wait_phase(admin, outside, "app-1", TERMINAL)) == "Complete"


def test_invalid_build_fails_with_a_clear_log(daemon: Daemon, admin: Kube, runs_file: Path) -> None:
    ns = create_namespace(admin, unique("invalid"))
    body = build_body(ns, "app-1")
    body["spec"]["source"] = {"type": "Git", "git": {"uri": "--upload-pack=touch /tmp/pwned"}}
    admin.request("POST", paths.builds(ns), body=body)
    status = wait_phase(admin, ns, "app-1", TERMINAL)["status"]
    assert status["phase"] == "Failed" and status["reason"] == "GenericBuildFailed"
    assert "not valid" in "\n".join(daemon.log_store.log(ns, "app-1").read())
    assert runs(runs_file) == []


def _intervals(runs_file: Path) -> dict[str, tuple[float, float]]:
    starts = {k: t for w, k, t in runs(runs_file) if w == "start"}
    ends = {k: t for w, k, t in runs(runs_file) if w == "done"}
    return {k: (starts[k], ends[k]) for k in starts}


@pytest.mark.parametrize("policy", ["Serial", "Parallel"])
def test_run_policy_ordering(
    controlplane: ControlPlane, admin: Kube, runs_file: Path, tmp_path: Path, policy: str
) -> None:
    ns = create_namespace(admin, unique(policy.lower()))
    # Created before the daemon starts, so it sees all three at once.
    for number in (1, 2, 3):
        make_build(
            admin,
            ns,
            f"app-{number}",
            runs_file,
            env={"SLEEP": "1.5"},
            bc="app",
            number=number,
            policy=policy,
        )
    with running_daemon(controlplane, tmp_path / "state", f"daemon-{policy}", per_project=3):
        for number in (1, 2, 3):
            assert phase(wait_phase(admin, ns, f"app-{number}", TERMINAL)) == "Complete"
    spans = _intervals(runs_file)
    ordered = [spans[f"{ns}/app-{n}"] for n in (1, 2, 3)]
    if policy == "Serial":
        for (_s1, e1), (s2, _e2) in itertools.pairwise(ordered):
            assert e1 <= s2, spans  # one at a time, in number order
    else:
        latest_start = max(s for s, _ in ordered)
        earliest_end = min(e for _, e in ordered)
        assert latest_start < earliest_end, spans  # all three ran at the same time


def test_serial_latest_only_cancels_older_queued_builds(
    controlplane: ControlPlane, admin: Kube, runs_file: Path, tmp_path: Path
) -> None:
    ns = create_namespace(admin, unique("latest"))
    for number in (1, 2, 3):
        make_build(
            admin,
            ns,
            f"app-{number}",
            runs_file,
            bc="app",
            number=number,
            policy="SerialLatestOnly",
        )
    with running_daemon(controlplane, tmp_path / "state", "daemon-latest"):
        phases = {n: phase(wait_phase(admin, ns, f"app-{n}", TERMINAL)) for n in (1, 2, 3)}
    assert phases == {1: "Cancelled", 2: "Cancelled", 3: "Complete"}
    assert [k for w, k, _ in runs(runs_file) if w == "start"] == [f"{ns}/app-3"]


def test_two_daemons_run_ten_builds_over_three_namespaces_exactly_once(
    controlplane: ControlPlane, admin: Kube, runs_file: Path, tmp_path: Path
) -> None:
    namespaces = [create_namespace(admin, unique(f"ha{i}")) for i in range(3)]
    keys = []
    with (
        running_daemon(controlplane, tmp_path / "a", "daemon-a", max_builds=2) as a,
        running_daemon(controlplane, tmp_path / "b", "daemon-b", max_builds=2) as b,
    ):
        for i in range(10):
            ns = namespaces[i % 3]
            make_build(admin, ns, f"b-{i}", runs_file, env={"SLEEP": "0.3"})
            keys.append((ns, f"b-{i}"))
        holders = Counter()
        for ns, name in keys:
            build = wait_phase(admin, ns, name, TERMINAL, timeout=120)
            assert phase(build) == "Complete"
            claim = Claim.of(build)
            assert claim is not None and claim.attempt == 1
            holders[claim.holder] += 1
        assert a.writer.identity != b.writer.identity
    counted = Counter((w, k) for w, k, _ in runs(runs_file))
    for ns, name in keys:
        assert counted[("start", f"{ns}/{name}")] == 1, counted
        assert counted[("done", f"{ns}/{name}")] == 1, counted
    assert sum(holders.values()) == 10 and set(holders) <= {"daemon-a", "daemon-b"}
    # One build per namespace at a time, over both daemons.
    spans = _intervals(runs_file)
    for ns in namespaces:
        mine = sorted(v for k, v in spans.items() if k.startswith(f"{ns}/"))
        for (_s1, e1), (s2, _e2) in itertools.pairwise(mine):
            assert e1 <= s2, (ns, mine)


def test_a_project_slot_held_elsewhere_keeps_its_builds_new(
    daemon: Daemon, admin: Kube, runs_file: Path
) -> None:
    """builds_per_project over all daemons on one state dir is a lock per slot, not only a
    count of claims: while the project's two slots are held (as another replica holds one
    while it runs a build; flock treats this test's open file like another process's), the
    daemon leaves the project's Build New and unclaimed. Freed, the Build runs."""
    ns = create_namespace(admin, unique("slots"))
    slots = ProjectSlots(daemon.config.state_dir, daemon.config.limits.builds_per_project)
    held = [slots.take(ns), slots.take(ns)]
    assert all(s is not None for s in held)
    try:
        make_build(admin, ns, "app-1", runs_file)
        time.sleep(3)  # many scheduling passes (tick 0.2 s)
        build = get_build(admin, ns, "app-1")
        assert phase(build) == "New" and Claim.of(build) is None
        assert runs(runs_file) == []
    finally:
        for stack in held:
            assert stack is not None
            stack.close()
    build = wait_phase(admin, ns, "app-1", TERMINAL)
    assert phase(build) == "Complete", build["status"]
    assert [(w, k) for w, k, _ in runs(runs_file)] == [
        ("start", f"{ns}/app-1"),
        ("done", f"{ns}/app-1"),
    ]


def test_sigkill_mid_build_is_taken_over_and_ends_terminal(
    controlplane: ControlPlane, admin: Kube, runs_file: Path, tmp_path: Path
) -> None:
    ns = create_namespace(admin, unique("crash"))
    state = tmp_path / "state"
    config = daemon_config(controlplane, state, "daemon-crash-1", lease=3.0)
    first = DaemonProcess(write_config_file(config, tmp_path / "one.yaml"), tmp_path / "one.log")
    first.start()
    second: DaemonProcess | None = None
    try:
        make_build(admin, ns, "app-1", runs_file, env={"SLEEP": "6"})
        wait_phase(admin, ns, "app-1", ("Running",), timeout=60)
        wait_for("the first run to start", lambda: runs(runs_file), timeout=60)
        first.kill()
        restarted = daemon_config(controlplane, state, "daemon-crash-2", lease=3.0)
        second = DaemonProcess(
            write_config_file(restarted, tmp_path / "two.yaml"), tmp_path / "two.log"
        ).start()
        build = wait_phase(admin, ns, "app-1", TERMINAL, timeout=90)
    finally:
        first.stop()
        if second is not None:
            second.stop()
    assert phase(build) == "Complete", (tmp_path / "two.log").read_text()[-3000:]
    claim = Claim.of(build)
    assert claim is not None and claim.holder == "daemon-crash-2" and claim.attempt == 2
    done = [k for w, k, _ in runs(runs_file) if w == "done"]
    assert done == [f"{ns}/app-1"]  # the killed attempt never finished: run to the end once
    events = Counter(e["reason"] for e in ended_build_events(admin, ns, "app-1"))
    assert events == {"BuildStarted": 1, "BuildCompleted": 1}


def test_imagestream_output_is_recorded_and_revision_set(
    controlplane: ControlPlane, admin: Kube, runs_file: Path, tmp_path: Path
) -> None:
    ns = create_namespace(admin, unique("istag"))
    create_imagestream(admin, ns, "app")
    body = build_body(ns, "app-1")
    body["spec"]["output"] = {"to": {"kind": "ImageStreamTag", "name": "app:v1"}}
    body["spec"]["strategy"]["dockerStrategy"]["env"] = [
        {"name": "RUNS_FILE", "value": str(runs_file)}
    ]
    admin.request("POST", paths.builds(ns), body=body)
    with running_daemon(
        controlplane,
        tmp_path / "state",
        "daemon-istag",
        output_registry="registry.test:5000",
        record_imagestream_tags=True,
    ):
        build = wait_phase(admin, ns, "app-1", TERMINAL)
        assert phase(build) == "Complete"
        wait_for(
            "spec.revision",
            lambda: get_build(admin, ns, "app-1")["spec"].get("revision"),
        )
    build = get_build(admin, ns, "app-1")
    digest = "sha256:" + "0" * 63 + "7"
    assert build["status"]["outputDockerImageReference"] == f"registry.test:5000/{ns}/app:v1"
    assert build["spec"]["revision"]["git"]["commit"] == "0" * 39 + "1"
    stream = admin.get(paths.imagestream(ns, "app"))
    tags = {t["tag"]: t for t in stream["status"]["tags"]}
    assert tags["v1"]["items"][0]["dockerImageReference"] == f"registry.test:5000/{ns}/app@{digest}"
    assert tags["v1"]["items"][0]["image"] == digest
    assert stream["status"]["dockerImageRepository"] == f"registry.test:5000/{ns}/app"


def create_imagestream(
    admin: Kube, ns: str, name: str, repository: str | None = None
) -> dict[str, Any]:
    body = {
        "apiVersion": "image.openshift.io/v1",
        "kind": "ImageStream",
        "metadata": {"name": name, "namespace": ns},
    }
    stream: dict[str, Any] = admin.request("POST", paths.imagestreams(ns), body=body)
    if repository:
        stream = admin.request(
            "PATCH",
            paths.imagestream(ns, name) + "/status",
            body={"status": {"dockerImageRepository": repository}},
            content_type="application/merge-patch+json",
        )
    return stream


def test_unresolvable_output_waits_in_new_until_the_stream_exists(
    controlplane: ControlPlane, admin: Kube, runs_file: Path, tmp_path: Path
) -> None:
    ns = create_namespace(admin, unique("waitout"))
    output = {"to": {"kind": "ImageStreamTag", "name": "app:v1"}}
    make_build(admin, ns, "app-1", runs_file, spec={"output": output})
    with running_daemon(
        controlplane, tmp_path / "state", "daemon-wait", output_registry="registry.test:5000"
    ) as daemon:
        daemon.output_retry_seconds = 0.5
        daemon.output_retry_max_seconds = 1.0
        build = wait_for(
            "the reason on the New build",
            lambda: (
                (b := get_build(admin, ns, "app-1")) and (b.get("status") or {}).get("reason") and b
            ),
        )
        status = build["status"]
        assert phase(build) == "New", status
        assert status["reason"] == "InvalidOutputReference"
        assert status["message"] == "Output image could not be resolved."
        time.sleep(3)  # several retries
        build = get_build(admin, ns, "app-1")
        assert phase(build) == "New" and build["status"]["reason"] == "InvalidOutputReference"
        claim = Claim.of(build)  # released between tries (any daemon may retry)
        assert claim is None or claim.holder == "daemon-wait"
        assert build_events(admin, ns, "app-1") == []
        assert runs(runs_file) == []
        # The stream's own repository wins over the configured registry.
        create_imagestream(admin, ns, "app", repository=f"mirror.test:5000/{ns}/app")
        build = wait_phase(admin, ns, "app-1", TERMINAL, timeout=60)
    status = build["status"]
    assert status["phase"] == "Complete", status
    assert "reason" not in status and "message" not in status
    assert status["outputDockerImageReference"] == f"mirror.test:5000/{ns}/app:v1"
    assert sorted(e["reason"] for e in ended_build_events(admin, ns, "app-1")) == [
        "BuildCompleted",
        "BuildStarted",
    ]


def test_waiting_build_starts_when_its_stream_appears_not_after_the_back_off(
    controlplane: ControlPlane, admin: Kube, runs_file: Path, tmp_path: Path
) -> None:
    other = create_namespace(admin, unique("streams"))  # to.namespace: another project
    ns = create_namespace(admin, unique("waitwatch"))
    output = {"to": {"kind": "ImageStreamTag", "name": "app:v2", "namespace": other}}
    make_build(admin, ns, "app-1", runs_file, spec={"output": output})
    with running_daemon(
        controlplane, tmp_path / "state", "daemon-watch", output_registry="registry.test:5000"
    ) as daemon:
        daemon.output_retry_seconds = daemon.output_retry_max_seconds = 600.0
        wait_for(
            "the reason on the New build",
            lambda: (get_build(admin, ns, "app-1").get("status") or {}).get("reason"),
        )
        create_imagestream(admin, ns, "app")  # the wrong namespace: still waits
        time.sleep(2)
        assert phase(get_build(admin, ns, "app-1")) == "New"
        created = time.monotonic()
        create_imagestream(admin, other, "app")
        build = wait_phase(admin, ns, "app-1", TERMINAL, timeout=30)
        took = time.monotonic() - created
    assert phase(build) == "Complete", build["status"]
    assert build["status"]["outputDockerImageReference"] == f"registry.test:5000/{other}/app:v2"
    assert took < 30
    print(f"stream created -> build Complete in {took:.1f} s (back-off 600 s)")


def test_binary_build_with_unresolvable_output_fails(
    daemon: Daemon, admin: Kube, runs_file: Path
) -> None:
    ns = create_namespace(admin, unique("binout"))
    spec = {
        "source": {"type": "Binary", "binary": {}},
        "output": {"to": {"kind": "ImageStreamTag", "name": "missing:v1"}},
    }
    make_build(admin, ns, "app-1", runs_file, spec=spec)
    status = wait_phase(admin, ns, "app-1", TERMINAL)["status"]
    assert status["phase"] == "Failed", status
    assert status["reason"] == "InvalidOutputReference"
    assert status["message"] == "Output image could not be resolved."
    assert runs(runs_file) == []


def test_build_without_output_runs_without_a_push_target(
    daemon: Daemon, admin: Kube, runs_file: Path
) -> None:
    """OpenShift builds an image with no ``output.to`` and does not push it (reference 1.4)."""
    ns = create_namespace(admin, unique("noout"))
    make_build(admin, ns, "app-1", runs_file, spec={"output": {}})
    status = wait_phase(admin, ns, "app-1", TERMINAL)["status"]
    assert status["phase"] == "Complete", status
    assert "outputDockerImageReference" not in status


def test_apiserver_restart_mid_build_still_completes(
    controlplane: ControlPlane, admin: Kube, runs_file: Path, tmp_path: Path
) -> None:
    ns = create_namespace(admin, unique("restart"))
    with running_daemon(controlplane, tmp_path / "state", "daemon-restart", lease=10.0):
        make_build(admin, ns, "app-1", runs_file, env={"SLEEP": "8"})
        wait_for("the run to start", lambda: runs(runs_file), timeout=60)
        controlplane.stop_apiserver()
        time.sleep(3.0)  # the run goes on; renewals fail and are retried
        controlplane.start_apiserver()
        build = wait_phase(admin, ns, "app-1", TERMINAL, timeout=90)
    assert phase(build) == "Complete", build["status"]
    claim = Claim.of(build)
    assert claim is not None and claim.attempt == 1  # never lost, never re-run
    assert [w for w, _k, _t in runs(runs_file)] == ["start", "done"]


RECORD_DESTROY = recording_playbook("vm-destroy.yml", "securebuild_project", "destroyed.txt")


def test_deleted_project_loses_its_vm_and_ca(
    controlplane: ControlPlane, admin: Kube, tmp_path: Path
) -> None:
    """The daemon as ``securebuild daemon`` makes it (executor mode vm, its Fleet): deleting a
    namespace runs vm-destroy.yml for it and removes its placement and CA; opting out is not
    deleting. The playbook is a stand-in that records its call (the real one is in
    tests/e2e/test_fleet.py), so no VM is needed here."""
    ns = create_namespace(admin, unique("gone"))
    kept = create_namespace(admin, unique("kept"))
    inventory, state, project_dir = local_fleet_files(
        tmp_path, {"vm-destroy.yml": RECORD_DESTROY}, {}, ns
    )
    write_placement(state, kept, "localhost")
    pki = ProjectPKI.ensure(state, ns)
    other = ProjectPKI.ensure(state, kept)
    config = daemon_config(
        controlplane,
        state,
        "daemon-gone",
        inventory=inventory,
        executor=ExecutorConfig(mode="vm", project_dir=project_dir),
    )
    daemon = make_daemon(config, kube_for(controlplane, "daemon"))
    daemon.start()
    try:
        assert daemon.wait_ready(20), daemon.build_reflector.stats.last_error
        admin.request(
            "PATCH",
            paths.namespace(kept),
            body={"metadata": {"labels": {"securebuild.appuio.ch/enabled": None}}},
            content_type="application/merge-patch+json",
        )
        admin.request("DELETE", paths.namespace(ns))
        wait_for("the CA of the deleted project to go", lambda: not pki.directory.exists())
        time.sleep(1.0)
    finally:
        daemon.stop()
    assert (state / "destroyed.txt").read_text().split() == [ns]
    assert read_placement(state, ns) is None
    assert read_placement(state, kept) == "localhost" and other.ca_cert.exists()


def test_sigterm_abandons_running_builds_to_the_next_daemon(
    controlplane: ControlPlane, admin: Kube, runs_file: Path, tmp_path: Path
) -> None:
    ns = create_namespace(admin, unique("term"))
    state = tmp_path / "state"
    config = daemon_config(controlplane, state, "daemon-term-1", lease=3.0)
    first = DaemonProcess(write_config_file(config, tmp_path / "one.yaml"), tmp_path / "one.log")
    first.start()
    try:
        make_build(admin, ns, "app-1", runs_file, env={"SLEEP": "30"})
        wait_for("the first run to start", lambda: runs(runs_file), timeout=60)
        started = time.monotonic()
        first.stop()  # SIGTERM
        assert first.popen is not None and first.popen.returncode == 0
        assert time.monotonic() - started < 15
    finally:
        first.stop()
    build = get_build(admin, ns, "app-1")
    assert phase(build) == "Running"  # abandoned, not failed
    with running_daemon(controlplane, state, "daemon-term-2", lease=3.0):
        make_build(admin, ns, "app-2", runs_file)  # queued behind app-1 (one per project)
        done = wait_phase(admin, ns, "app-1", TERMINAL, timeout=120)
        wait_phase(admin, ns, "app-2", TERMINAL, timeout=120)
    assert phase(done) == "Complete"
    claim = Claim.of(done)
    assert claim is not None and claim.holder == "daemon-term-2" and claim.attempt == 2
    assert [k for w, k, _ in runs(runs_file) if w == "done"] == [f"{ns}/app-1", f"{ns}/app-2"]
