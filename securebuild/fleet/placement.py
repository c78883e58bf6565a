"""Which build host a project's VM lives on, and the record of that choice.

A project keeps its VM (and the VM's docker layer cache) on one host, so once placed it stays;
a new project goes to the host with the most free VM slots (``securebuild_host_max_vms`` minus
the VMs placed there), ties broken by host name so the choice is reproducible. The record
(``<state_dir>/vms/<project>/placement.json``) is written atomically: a crash never leaves half a
host name, and the playbooks receive the host as ``-e securebuild_build_host=<host>``.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path

from securebuild.fleet.errors import FleetError
from securebuild.fleet.inventory import BuildHost
from securebuild.fleet.records import vm_dir

PLACEMENT_FILE = "placement.json"


def place(
    project: str,
    hosts: Sequence[BuildHost],
    vms_per_host: Mapping[str, int],
    *,
    current: str | None = None,
) -> str:
    """The host for ``project``'s VM. ``current``: where its VM already is (it stays there)."""
    names = {h.name for h in hosts}
    if current is not None:
        if current not in names:
            raise FleetError(
                f"the VM of project {project} is on build host {current}, which is no longer in "
                f"the inventory (build hosts: {', '.join(sorted(names)) or 'none'}); put the host "
                f"back, or forget the VM with: securebuild vm destroy {project}"
            )
        return current
    free = sorted(((h.max_vms - vms_per_host.get(h.name, 0), h.name) for h in hosts), key=_order)
    if not free or free[0][0] <= 0:
        usage = ", ".join(f"{h.name} {vms_per_host.get(h.name, 0)}/{h.max_vms}" for h in hosts)
        raise FleetError(
            f"no build host has room for the VM of project {project} "
            f"(VMs/securebuild_host_max_vms: {usage or 'no build hosts'}); raise "
            "securebuild_host_max_vms, add a build host, or destroy idle VMs"
        )
    return free[0][1]


def _order(item: tuple[int, str]) -> tuple[int, str]:
    free, name = item
    return (-free, name)


def placement_path(state_dir: Path, project: str) -> Path:
    return vm_dir(state_dir, project) / PLACEMENT_FILE


def read_placement(state_dir: Path, project: str) -> str | None:
    """The recorded host of ``project``'s VM, else the ``build_host`` of its vm.json, else None."""
    for path, key in (
        (placement_path(state_dir, project), "host"),
        (vm_dir(state_dir, project) / "vm.json", "build_host"),
    ):
        try:
            host = json.loads(path.read_text()).get(key)
        except (OSError, ValueError, AttributeError):
            continue
        if isinstance(host, str) and host:
            return host
    return None


def write_placement(state_dir: Path, project: str, host: str) -> None:
    write_json_atomically(placement_path(state_dir, project), {"host": host})


def forget_placement(state_dir: Path, project: str) -> None:
    placement_path(state_dir, project).unlink(missing_ok=True)


def placed_projects(state_dir: Path) -> dict[str, str]:
    """project -> host of every VM the state dir knows of."""
    root = state_dir / "vms"
    out: dict[str, str] = {}
    if not root.is_dir():
        return out
    for entry in sorted(root.iterdir()):
        if entry.is_dir():
            host = read_placement(state_dir, entry.name)
            if host is not None:
                out[entry.name] = host
    return out


def write_json_atomically(path: Path, data: object) -> None:
    """Write ``data`` as JSON to ``path`` through a temp file and rename (never half a file)."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    handle, name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(handle, "w") as out:
            json.dump(data, out)
            out.write("\n")
            out.flush()
            os.fsync(out.fileno())
        Path(name).replace(path)
    except BaseException:
        Path(name).unlink(missing_ok=True)
        raise
