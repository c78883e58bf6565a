"""Run policies and limits of the scheduler (pure functions over cached Builds)."""

from __future__ import annotations

import datetime as dt
from typing import Any

from securebuild.cluster.claims import Claim
from securebuild.daemon.scheduler import Candidate, plan

NOW = dt.datetime(2026, 1, 1, 12, 0, tzinfo=dt.UTC)


def build(
    name: str,
    *,
    ns: str = "p",
    bc: str | None = "app",
    number: int = 0,
    policy: str = "Serial",
    phase: str | None = None,
    cancelled: bool = False,
    holder: str | None = None,
    expired: bool = False,
) -> Candidate:
    meta: dict[str, Any] = {
        "name": name,
        "namespace": ns,
        "creationTimestamp": f"2026-01-01T11:00:{number:02d}Z",
        "labels": {"openshift.io/build.start-policy": policy},
        "annotations": {"openshift.io/build.number": str(number)},
    }
    if bc:
        meta["labels"]["openshift.io/build-config.name"] = bc
    if holder:
        renewed = NOW - dt.timedelta(seconds=120 if expired else 1)
        meta["annotations"]["securebuild.appuio.ch/claim"] = Claim(
            holder, renewed, 60, 1
        ).to_annotation()
    status: dict[str, Any] = {}
    if phase:
        status["phase"] = phase
    if cancelled:
        status["cancelled"] = True
    return Candidate.of({"metadata": meta, "status": status})


def names(cands: list[Candidate]) -> list[str]:
    return [c.name for c in cands]


def run(builds: list[Candidate], **kwargs: Any) -> Any:
    args: dict[str, Any] = {
        "identity": "me",
        "running_here": set(),
        "max_here": 10,
        "per_project": 10,
        "now": NOW,
    }
    args.update(kwargs)
    return plan(builds, **args)


def test_serial_runs_the_oldest_only() -> None:
    p = run([build("app-2", number=2), build("app-1", number=1), build("app-3", number=3)])
    assert names(p.start) == ["app-1"]


def test_parallel_runs_all() -> None:
    p = run([build(f"app-{n}", number=n, policy="Parallel") for n in (1, 2, 3)])
    assert names(p.start) == ["app-1", "app-2", "app-3"]


def test_serial_latest_only_supersedes_older_queued() -> None:
    p = run([build(f"app-{n}", number=n, policy="SerialLatestOnly") for n in (1, 2, 3)])
    assert names(p.supersede) == ["app-1", "app-2"]
    assert p.start == []  # app-3 waits until the older ones are terminal


def test_per_project_limit_counts_live_claims_of_other_daemons() -> None:
    other = build("x-1", bc=None, phase="Running", holder="other")
    waiting = build("y-1", bc=None)
    elsewhere = build("z-1", bc=None, ns="q")
    p = run([other, waiting, elsewhere], per_project=1)
    assert names(p.start) == ["z-1"]


def test_expired_claim_is_taken_over_first() -> None:
    dead = build("x-1", bc=None, phase="Running", holder="dead", expired=True, number=5)
    fresh = build("y-1", bc=None, number=1)
    p = run([fresh, dead], per_project=1)
    assert names(p.start) == ["x-1"]


def test_live_claim_of_another_daemon_is_left_alone() -> None:
    p = run([build("x-1", bc=None, phase="Pending", holder="other")])
    assert p.start == [] and p.finish_cancelled == []


def test_cancelled_builds_are_finished_without_a_slot() -> None:
    p = run([build("x-1", bc=None, cancelled=True)], max_here=0)
    assert names(p.finish_cancelled) == ["x-1"] and p.start == []


def test_global_limit() -> None:
    p = run(
        [build(f"b-{n}", bc=None, ns=f"n{n}", number=n) for n in range(5)],
        max_here=3,
        running_here={"n9/other"},
    )
    assert names(p.start) == ["b-0", "b-1"]


def test_per_host_limit_counts_builds_of_all_projects_on_the_host() -> None:
    hosts = {"a": "host-1", "b": "host-1", "c": "host-2"}
    builds = [
        build("a-1", ns="a", bc=None, holder="other", number=1),  # running on host-1
        build("b-1", ns="b", bc=None, number=2),
        build("c-1", ns="c", bc=None, number=3),
        build("d-1", ns="d", bc=None, number=4),  # not placed yet: no host limit applies
    ]
    p = run(builds, host_of=hosts.get, per_host={"host-1": 1, "host-2": 1})
    assert names(p.start) == ["c-1", "d-1"]
    p = run(builds, host_of=hosts.get, per_host={"host-1": 2, "host-2": 1})
    assert names(p.start) == ["b-1", "c-1", "d-1"]


def test_deferred_build_waits_but_still_blocks_serial_successors() -> None:
    """A Build waiting for its output (back-off) does not start, and holds its BuildConfig."""
    builds = [build("app-1", number=1), build("app-2", number=2), build("other", bc=None)]
    p = run(builds, deferred={"p/app-1"})
    assert names(p.start) == ["other"]


def test_deferred_build_that_is_cancelled_is_finished() -> None:
    p = run([build("app-1", number=1, cancelled=True)], deferred={"p/app-1"})
    assert names(p.finish_cancelled) == ["app-1"]
