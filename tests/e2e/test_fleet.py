"""The fleet's VM lifecycle against ONE real project VM of its own (TCG, minutes).

Everything happens on one VM in one test, because a cold start costs minutes on this machine:
cold ensure -> warm ensure -> ``vm list`` -> idle reaping stops it -> ensure starts it again ->
``vm reset`` rebuilds the root disk -> ``vm destroy`` removes domain, disks and records. The
inventory is a temp copy of ``inventories/local`` so the test can edit the idle policy and see
the fleet's watchdog pick the edit up.
"""

from __future__ import annotations

import os
import secrets
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
from prometheus_client import REGISTRY

from securebuild.devenv.libvirtd import Libvirtd
from securebuild.fleet.records import read_endpoints
from securebuild.fleet.vms import Fleet

ROOT = Path(__file__).resolve().parents[2]
MARKER_EXISTS = "test -e ~/fleet-marker"
POOL = Path(os.environ.get("SECUREBUILD_CACHE_DIR") or Path.home() / ".cache/securebuild") / "pool"


def samples(path: str) -> float:
    value = REGISTRY.get_sample_value("securebuild_vm_start_seconds_count", {"path": path})
    return value or 0.0


def domstate(project: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["virsh", "-c", "qemu:///system", "domstate", f"sb-{project}"],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )


def cli(*args: str) -> str:
    proc = subprocess.run(
        [sys.executable, "-m", "securebuild", *args],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert proc.returncode == 0, f"securebuild {' '.join(args)}: {proc.stderr}"
    return proc.stdout


def listed_state(project: str, inventory: Path, state: Path) -> str:
    out = cli("vm", "list", "--inventory", str(inventory), "--state-dir", str(state))
    rows = [line.split() for line in out.splitlines() if line.split()[:1] == [project]]
    assert len(rows) == 1, out
    assert rows[0][1] == "localhost", out
    return rows[0][2]


def ssh(state: Path, project: str, *command: str) -> subprocess.CompletedProcess[str]:
    endpoints = read_endpoints(state, project)
    return subprocess.run(
        endpoints.ssh_argv(*command), capture_output=True, text=True, timeout=120, check=False
    )


def set_idle_policy(inventory: Path, stop_after: str) -> None:
    path = inventory / "group_vars" / "build_hosts.yml"
    lines = [
        line
        for line in path.read_text().splitlines()
        if not line.startswith("securebuild_stop_after_idle:")
    ]
    before = path.stat().st_mtime_ns
    path.write_text("\n".join([*lines, f"securebuild_stop_after_idle: {stop_after}", ""]))
    os.utime(path, ns=(before + 2_000_000_000,) * 2)  # a change even within one clock tick


@pytest.mark.timeout(900)  # target 12 min; cold start alone took 5 min at load 7
def test_one_vm_through_its_whole_lifecycle(libvirtd: Libvirtd, tmp_path: Path) -> None:
    inventory = tmp_path / "inventory"
    shutil.copytree(ROOT / "inventories" / "local", inventory)
    with (inventory / "group_vars" / "build_hosts.yml").open("a") as extra:
        # the TCG guest takes about a minute to power down on ACPI; the test does not need to
        # wait for it (the marker file below is synced), so power off after 10 s
        extra.write("project_vm_shutdown_timeout: 10\n")
    state = tmp_path / "state"
    project = f"fleet-{secrets.token_hex(3)}"
    fleet = Fleet(inventory=inventory, state_dir=state, project_dir=ROOT, watch_interval=0)
    vm_dir = state / "vms" / project
    timings: dict[str, float] = {}
    try:
        # cold: placement, host-provision, PKI, vm-ensure
        cold_before, warm_before = samples("cold"), samples("warm")
        lines: list[str] = []
        start = time.monotonic()
        target = fleet.ensure(project, on_line=lines.append)
        timings["cold"] = time.monotonic() - start
        assert (vm_dir / "vm.json").is_file()
        assert fleet.host_of(project) == "localhost"
        assert any("on host localhost (cold start: no VM yet)" in line for line in lines), lines
        assert samples("cold") == cold_before + 1
        assert target.name == f"sb-{project}"

        # warm: no playbook runs (no line, the vm.json is not rewritten); its speed is
        # bench/vm_lifecycle.py's to measure, the timings are only printed
        record_mtime = (vm_dir / "vm.json").stat().st_mtime_ns
        lines.clear()
        start = time.monotonic()
        assert fleet.ensure(project, on_line=lines.append) == target
        timings["warm"] = time.monotonic() - start
        assert lines == []
        assert (vm_dir / "vm.json").stat().st_mtime_ns == record_mtime
        assert samples("warm") == warm_before + 1
        assert samples("cold") == cold_before + 1
        assert listed_state(project, inventory, state) == "running"
        assert fleet.states()[project] == "running"

        # a file in the VM's root fs (the admin user's home), on disk
        marker = ssh(state, project, "sh", "-c", "echo x > ~/fleet-marker && sync")
        assert marker.returncode == 0, marker.stderr

        # idle policy edited to 0: never while in use, then stopped
        set_idle_policy(inventory, "0")
        with fleet.in_use(project):
            assert fleet.reap_idle() == []
            assert domstate(project).stdout.strip() == "running"
        start = time.monotonic()
        assert fleet.reap_idle() == [(project, "stopped")]
        timings["stop"] = time.monotonic() - start
        assert domstate(project).stdout.strip() == "shut off"
        assert listed_state(project, inventory, state) == "stopped"
        assert fleet.reap_idle() == []  # already stopped, destroy-after not reached
        set_idle_policy(inventory, "10m")

        # ensure starts the stopped VM again (its disks kept)
        start = time.monotonic()
        fleet.ensure(project)
        timings["restart"] = time.monotonic() - start
        assert ssh(state, project, "true").returncode == 0
        assert fleet.states()[project] == "running"

        # reset: the file in the root fs (kept across stop and start) is gone after
        assert ssh(state, project, "sh", "-c", MARKER_EXISTS).returncode == 0
        start = time.monotonic()
        cli("vm", "reset", project, "--inventory", str(inventory), "--state-dir", str(state))
        timings["reset"] = time.monotonic() - start
        gone = ssh(state, project, "sh", "-c", MARKER_EXISTS)
        assert gone.returncode == 1, gone.stderr
        assert listed_state(project, inventory, state) == "running"

        # destroy: domain, disks and records gone
        start = time.monotonic()
        cli("vm", "destroy", project, "--inventory", str(inventory), "--state-dir", str(state))
        timings["destroy"] = time.monotonic() - start
        assert domstate(project).returncode != 0
        assert not (POOL / f"sb-{project}").exists()
        assert not (vm_dir / "vm.json").exists()
        assert fleet.host_of(project) is None
        assert project not in fleet.states()
    finally:
        print(f"fleet e2e timings (s): {timings}")
        if domstate(project).returncode == 0:
            fleet.destroy(project)
