"""Which Builds may start now: run policies and concurrency limits (DESIGN section 3 step 3).

Pure functions over the daemon's cache of non-terminal Builds, so the rules are unit-tested
without a cluster. OpenShift's rules (reference section 8):

* ``Serial``: one build of a BuildConfig at a time, in build-number order: a build waits while
  an older build of its BuildConfig is not terminal.
* ``SerialLatestOnly``: as Serial, and queued (New) builds that have a newer queued build of
  the same BuildConfig are cancelled (``status.cancelled=true``).
* ``Parallel``: no ordering. Builds that do not come from a BuildConfig are always runnable.

A Build whose output cannot be resolved yet waits in New unclaimed; the daemon that tried it
passes it as ``deferred`` until its back-off ends (it still counts for Serial ordering).

On top, securebuild limits how many builds run at once per namespace (the project's VM runs one
build at a time by default; counted over all daemons through live claims), per daemon, and per
build host (the inventory's ``securebuild_host_max_builds``, for projects whose VM is placed;
a project not placed yet is placed when its build starts).
"""

from __future__ import annotations

import datetime as dt
from collections import Counter
from collections.abc import Callable, Collection, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from securebuild.cluster.claims import Claim

LABEL_BC = "openshift.io/build-config.name"
LABEL_POLICY = "openshift.io/build.start-policy"
ANNOTATION_NUMBER = "openshift.io/build.number"
SERIAL = "Serial"
SERIAL_LATEST_ONLY = "SerialLatestOnly"
PARALLEL = "Parallel"


@dataclass(frozen=True)
class Candidate:
    """The facts about one cached Build that scheduling needs."""

    key: str
    namespace: str
    name: str
    phase: str
    cancelled: bool
    bc: str | None
    policy: str
    number: int
    created: str
    claim: Claim | None

    @classmethod
    def of(cls, build: Mapping[str, Any]) -> Candidate:
        meta = build.get("metadata") or {}
        labels = meta.get("labels") or {}
        annotations = meta.get("annotations") or {}
        status = build.get("status") or {}
        bc = labels.get(LABEL_BC) or annotations.get(LABEL_BC)
        try:
            number = int(annotations.get(ANNOTATION_NUMBER, "0"))
        except ValueError:
            number = 0
        return cls(
            key=f"{meta.get('namespace')}/{meta.get('name')}",
            namespace=str(meta.get("namespace")),
            name=str(meta.get("name")),
            phase=str(status.get("phase") or "New"),
            cancelled=bool(status.get("cancelled")),
            bc=bc,
            policy=str(labels.get(LABEL_POLICY) or SERIAL),
            number=number,
            created=str(meta.get("creationTimestamp") or ""),
            claim=Claim.of(build),
        )

    def live_claim(self, now: dt.datetime) -> bool:
        return self.claim is not None and not self.claim.expired(now)

    def claimable_by(self, identity: str, now: dt.datetime) -> bool:
        return self.claim is None or self.claim.holder == identity or self.claim.expired(now)


@dataclass(frozen=True)
class Plan:
    start: list[Candidate]  # claim and run, in this order
    finish_cancelled: list[Candidate]  # claim and mark Cancelled (no slot needed)
    supersede: list[Candidate]  # SerialLatestOnly: set status.cancelled=true


def plan(
    builds: Iterable[Candidate],
    *,
    identity: str,
    running_here: set[str],
    max_here: int,
    per_project: int,
    now: dt.datetime,
    deferred: Collection[str] = frozenset(),
    host_of: Callable[[str], str | None] = lambda _namespace: None,
    per_host: Mapping[str, int] | None = None,
) -> Plan:
    candidates = list(builds)
    by_bc: dict[tuple[str, str], list[Candidate]] = {}
    for c in candidates:
        if c.bc:
            by_bc.setdefault((c.namespace, c.bc), []).append(c)
    occupied: Counter[str] = Counter()
    on_host: Counter[str] = Counter()
    free: list[Candidate] = []
    for c in candidates:
        held_by_other = c.claim is not None and c.claim.holder != identity and now < c.claim.expires
        if held_by_other or c.key in running_here:
            # Runs here, or a live claim of another daemon. Our own claim on a build that does
            # not run here yet (a binary upload claims its Build at creation) is no occupant:
            # it is the build waiting for the slot.
            occupied[c.namespace] += 1
            on_host[host_of(c.namespace) or ""] += 1
        else:
            free.append(c)
    supersede: list[Candidate] = []
    finish: list[Candidate] = []
    waiting: list[Candidate] = []
    for c in free:
        if c.cancelled:
            finish.append(c)
            continue
        if c.bc and c.policy in (SERIAL, SERIAL_LATEST_ONLY):
            siblings = by_bc[(c.namespace, c.bc)]
            if c.policy == SERIAL_LATEST_ONLY and c.phase == "New":
                newer = [s for s in siblings if s.number > c.number and s.phase == "New"]
                if newer and not c.live_claim(now):
                    supersede.append(c)
                    continue
            if any(s.number < c.number for s in siblings):
                continue  # an older build of the BuildConfig is not terminal yet
        waiting.append(c)

    # Takeovers first (they were running), then oldest first.
    waiting.sort(key=lambda c: (c.phase == "New", c.created, c.number, c.key))
    start: list[Candidate] = []
    slots = max_here - len(running_here)
    for c in waiting:
        if slots <= 0:
            break
        if c.key in deferred:
            continue
        if occupied[c.namespace] >= per_project:
            continue
        host = host_of(c.namespace)
        if host and per_host and host in per_host and on_host[host] >= per_host[host]:
            continue
        start.append(c)
        occupied[c.namespace] += 1
        on_host[host or ""] += 1
        slots -= 1
    return Plan(start=start, finish_cancelled=finish, supersede=supersede)
