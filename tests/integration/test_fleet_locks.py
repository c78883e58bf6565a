"""Several processes on one state dir: daemon replicas, ``securebuild vm``, ``securebuild run``.

Each Fleet here lives in a process of its own, as it does in production; the locks are real
``flock`` locks in the shared state dir. Real ``ansible-playbook`` and ``ansible-inventory`` run
stand-ins for ``vm-ensure.yml`` and ``vm-destroy.yml`` that only record when they ran: what is
checked is what the Fleets decide when another process holds a VM (the real playbooks are in
tests/e2e/test_fleet.py).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from securebuild.fleet.vms import Fleet
from tests.helpers.cluster import wait_for
from tests.helpers.fleet import local_fleet_files

ROOT = Path(__file__).resolve().parents[2]
PROJECT = "demo"
FAR_FUTURE = time.time() + 365 * 86400

RECORDING_PLAYBOOK = """\
- name: Record when it ran (stand-in for {name})
  hosts: "{{{{ securebuild_build_host }}}}"
  gather_facts: false
  tasks:
    - name: Record the start
      ansible.builtin.shell: >-
        echo '{{"playbook": "{name}", "event": "start", "t": '$(date +%s.%N)'}}'
        >> {{{{ securebuild_state_dir }}}}/calls.jsonl
      changed_when: true
    - name: Take a while, as a real VM step does
      ansible.builtin.wait_for:
        timeout: {seconds}
    - name: Record the end
      ansible.builtin.shell: >-
        echo '{{"playbook": "{name}", "event": "end", "t": '$(date +%s.%N)'}}'
        >> {{{{ securebuild_state_dir }}}}/calls.jsonl
      changed_when: true
"""

#: Run in a child process: a Fleet on the same state dir doing one thing, then waiting to be
#: killed (``in_use``) or exiting (``stop``).
CHILD = """\
import sys, time
from pathlib import Path
from securebuild.fleet.vms import Fleet
inventory, state, project_dir, action = sys.argv[1:5]
fleet = Fleet(inventory=Path(inventory), state_dir=Path(state), project_dir=Path(project_dir))
if action == "in_use":
    with fleet.in_use("demo"):
        print("in use", flush=True)
        time.sleep(600)
else:
    fleet.stop("demo")
    print("stopped", flush=True)
"""


@pytest.fixture
def setup(tmp_path: Path) -> tuple[Path, Path, Path]:
    """(inventory, state dir, project dir) with stand-in playbooks and an idle policy that
    reaps at once: every decision below is the locks', not the clock's."""
    playbooks = {
        name: RECORDING_PLAYBOOK.format(name=name, seconds=seconds)
        for name, seconds in (("vm-ensure.yml", 3), ("vm-destroy.yml", 0))
    }
    idle = {"securebuild_stop_after_idle": "0", "securebuild_destroy_after_idle": "0"}
    return local_fleet_files(tmp_path, playbooks, idle, PROJECT)


def _child(setup: tuple[Path, Path, Path], action: str) -> subprocess.Popen[str]:
    inventory, state, project_dir = setup
    return subprocess.Popen(
        [sys.executable, "-c", CHILD, str(inventory), str(state), str(project_dir), action],
        stdout=subprocess.PIPE,
        text=True,
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )


def _calls(state: Path) -> list[dict[str, object]]:
    path = state / "calls.jsonl"
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_a_build_in_another_process_keeps_the_reaper_away(
    setup: tuple[Path, Path, Path],
) -> None:
    inventory, state, project_dir = setup
    fleet = Fleet(inventory=inventory, state_dir=state, project_dir=project_dir)
    child = _child(setup, "in_use")
    try:
        assert child.stdout is not None
        assert child.stdout.readline().strip() == "in use"
        assert fleet.busy(PROJECT)
        assert fleet.reap_idle(now=FAR_FUTURE) == []
        assert _calls(state) == []
        assert fleet.host_of(PROJECT) == "localhost"
    finally:
        child.send_signal(signal.SIGKILL)  # a crashed daemon: its lock goes with it
        child.wait(timeout=30)
    assert not fleet.busy(PROJECT)
    assert fleet.reap_idle(now=FAR_FUTURE) == [(PROJECT, "destroyed")]
    assert [(c["playbook"], c["event"]) for c in _calls(state)] == [
        ("vm-destroy.yml", "start"),
        ("vm-destroy.yml", "end"),
    ]
    assert fleet.host_of(PROJECT) is None


def test_lifecycle_steps_of_two_processes_never_overlap(setup: tuple[Path, Path, Path]) -> None:
    inventory, state, project_dir = setup
    fleet = Fleet(inventory=inventory, state_dir=state, project_dir=project_dir)
    child = _child(setup, "stop")
    try:
        wait_for("the other process's stop to start", lambda: _calls(state), timeout=60)
        # the other process is stopping the VM: the reaper does not touch it meanwhile ...
        assert fleet.reap_idle(now=FAR_FUTURE) == []
        # ... and this process's own stop waits for it to finish
        fleet.stop(PROJECT)
        assert child.stdout is not None
        assert child.stdout.read().strip() == "stopped"
    finally:
        child.kill()
        child.wait(timeout=30)
    calls = _calls(state)
    assert [(c["playbook"], c["event"]) for c in calls] == [
        ("vm-ensure.yml", "start"),
        ("vm-ensure.yml", "end"),
    ] * 2
    first_end, second_start = float(str(calls[1]["t"])), float(str(calls[2]["t"]))
    assert first_end <= second_start, calls
