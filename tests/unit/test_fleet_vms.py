"""The Fleet's own bookkeeping, without a VM: name checks, idle clocks that survive a restart.

What needs a VM (warm/cold ensure, reaping, stop/reset/destroy) is in tests/e2e/test_fleet.py.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from securebuild.fleet.errors import FleetError
from securebuild.fleet.placement import write_placement
from securebuild.fleet.vms import Fleet

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def fleet(tmp_path: Path) -> Fleet:
    return Fleet(
        inventory=ROOT / "inventories" / "local", state_dir=tmp_path / "state", project_dir=ROOT
    )


def test_bad_project_names_are_refused_before_anything_runs(fleet: Fleet) -> None:
    for call in (fleet.ensure, fleet.stop, fleet.reset, fleet.destroy, fleet.host_of):
        with pytest.raises(FleetError, match=r"project 'Bad_Name': must"):
            call("Bad_Name")
    assert not (fleet.state_dir / "vms").exists()


def test_hosts_carry_the_inventory_limits(fleet: Fleet) -> None:
    (host,) = fleet.hosts()
    assert (host.name, host.max_builds, host.max_vms) == ("localhost", 2, 4)


def test_in_use_marks_busy_and_persists_the_idle_clock(fleet: Fleet, tmp_path: Path) -> None:
    write_placement(fleet.state_dir, "demo", "localhost")
    before = time.time()
    with fleet.in_use("demo"):
        assert fleet.busy("demo")
        with fleet.in_use("demo"):
            pass
        assert fleet.busy("demo")  # still held by the outer block
    assert not fleet.busy("demo")
    idle = json.loads((fleet.state_dir / "vms" / "demo" / "idle.json").read_text())
    assert idle["last_used"] >= before
    restarted = Fleet(
        inventory=ROOT / "inventories" / "local", state_dir=fleet.state_dir, project_dir=ROOT
    )
    assert restarted.host_of("demo") == "localhost"
    # idle for less than the local stop-after (10m): nothing to reap, no playbook runs
    assert restarted.reap_idle(now=idle["last_used"] + 60) == []


def test_stop_of_a_project_without_a_vm_is_a_clear_error(fleet: Fleet) -> None:
    with pytest.raises(FleetError, match="project nothing has no VM"):
        fleet.stop("nothing")
