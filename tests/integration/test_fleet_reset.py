"""``securebuild_reset_after_builds``: the Fleet rebuilds a VM after that many builds.

Real ``ansible-playbook`` and ``ansible-inventory`` with a stand-in ``vm-ensure.yml`` that only
records the variables it was run with: what is checked is the Fleet's decision and the
variables it hands the operators' playbook (the real reset is in tests/e2e/test_fleet.py).
"""

from __future__ import annotations

import json
from pathlib import Path

from securebuild.fleet.vms import Fleet
from tests.helpers.fleet import local_fleet_files, recording_playbook

RECORDING_PLAYBOOK = recording_playbook(
    "vm-ensure.yml",
    "{'project': securebuild_project, 'reset': securebuild_vm_reset | default(false)} | to_json",
    "calls.jsonl",
)


def _fleet(tmp_path: Path, reset_after: int) -> Fleet:
    inventory, state, project_dir = local_fleet_files(
        tmp_path,
        {"vm-ensure.yml": RECORDING_PLAYBOOK},
        {"securebuild_reset_after_builds": reset_after},
        "demo",
    )
    return Fleet(inventory=inventory, state_dir=state, project_dir=project_dir)


def _calls(fleet: Fleet) -> list[dict[str, object]]:
    path = fleet.state_dir / "calls.jsonl"
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_the_vm_is_reset_before_the_build_after_the_limit(tmp_path: Path) -> None:
    fleet = _fleet(tmp_path, reset_after=2)
    lines: list[str] = []
    for _ in range(2):
        fleet._reset_if_due("demo", lines.append)  # the decision under test
        with fleet.in_use("demo"):
            pass
    assert _calls(fleet) == [] and lines == []  # two builds: no reset yet
    fleet._reset_if_due("demo", lines.append)
    assert _calls(fleet) == [{"project": "demo", "reset": True}]
    assert lines == [
        "securebuild: rebuilding the VM of project demo from the golden image after 2 builds "
        "(securebuild_reset_after_builds)"
    ]
    idle = json.loads((fleet.state_dir / "vms" / "demo" / "idle.json").read_text())
    assert idle["builds"] == 0  # the count starts again


def test_zero_means_never(tmp_path: Path) -> None:
    fleet = _fleet(tmp_path, reset_after=0)
    for _ in range(3):
        with fleet.in_use("demo"):
            pass
    fleet._reset_if_due("demo", lambda line: None)
    assert _calls(fleet) == []
    assert json.loads((fleet.state_dir / "vms" / "demo" / "idle.json").read_text())["builds"] == 3
