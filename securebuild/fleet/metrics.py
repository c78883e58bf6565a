"""Prometheus metrics of the fleet, in the default registry (the daemon's /metrics serves it).

DESIGN section 6 asks for cold and warm start latency and VMs per state; reaping is counted so
an operator sees what the idle policy did.
"""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

VM_START_SECONDS = Histogram(
    "securebuild_vm_start_seconds",
    "Seconds until a project VM answered: warm (running, SSH probe) or cold (playbooks ran)",
    ["path"],
    buckets=(0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 180, 300, 600),
)
VMS = Gauge("securebuild_vms", "Project VMs known to this fleet, by state", ["state"])
VMS_REAPED = Counter(
    "securebuild_vms_reaped_total", "Idle project VMs stopped or destroyed", ["action"]
)
#: The states the gauge always exports (0 when none), so dashboards see every series.
STATES = ("running", "stopped", "absent", "unknown")


def set_vm_states(counts: dict[str, int]) -> None:
    for state in sorted(set(STATES) | set(counts)):
        VMS.labels(state=state).set(counts.get(state, 0))
