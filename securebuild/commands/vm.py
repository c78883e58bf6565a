"""``securebuild vm list|stop|destroy|reset PROJECT``: operators' handle on project VMs.

Everything goes through the fleet (:class:`securebuild.fleet.vms.Fleet`), as the daemon does:
the project's build host comes from its placement record in the state dir, and the same
playbooks an operator would run by hand (DESIGN section 6) run with
``-e securebuild_build_host=<host>``, after checking the project is a DNS-1123 label::

    stop     playbooks/vm-ensure.yml  -e securebuild_vm_state=stopped  (disks kept)
    reset    playbooks/vm-ensure.yml  -e securebuild_vm_reset=true     (root disk rebuilt)
    destroy  playbooks/vm-destroy.yml                                   (domain and disks gone)

``list`` shows the VMs of the state dir and every ``sb-<project>`` domain on this machine's
libvirt; the state of a VM on a remote build host is ``unknown`` (not asked, not guessed).
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import Any

from securebuild.fleet.vms import Fleet, check_project

PROJECT_ROOT = Path(__file__).resolve().parents[2]
ACTIONS = {
    "stop": "shut a project's VM down (disks kept)",
    "reset": "rebuild a project's VM from the golden image (cache disk kept)",
    "destroy": "remove a project's VM and its disks",
}


def fleet_arguments(parser: argparse.ArgumentParser) -> None:
    """``--inventory`` and ``--state-dir``: where the build hosts and the VMs' records are
    (shared by ``securebuild vm`` and ``securebuild run``)."""
    parser.add_argument(
        "-i",
        "--inventory",
        type=Path,
        default=PROJECT_ROOT / "inventories" / "local",
        help="Ansible inventory (default inventories/local)",
    )
    parser.add_argument(
        "--state-dir",
        type=Path,
        default=Path(
            os.environ.get("SECUREBUILD_STATE_DIR") or Path.home() / ".cache/securebuild/state"
        ),
        help="control-side state: SSH keys, pinned host keys, PKI, VM records",
    )


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser("vm", help="list, stop, reset or destroy project VMs")
    actions = parser.add_subparsers(dest="vm_action", metavar="ACTION", required=True)
    listing = actions.add_parser("list", help="project VMs, their build host and state")
    fleet_arguments(listing)
    listing.set_defaults(func=vm_list)
    for action, text in ACTIONS.items():
        sub = actions.add_parser(action, help=text)
        sub.add_argument("project", metavar="PROJECT")
        fleet_arguments(sub)
        sub.set_defaults(func=vm_action, action=action)


def _fleet(args: Any) -> Fleet:
    return Fleet(inventory=args.inventory, state_dir=args.state_dir, project_dir=PROJECT_ROOT)


def vm_list(args: Any) -> int:
    fleet = _fleet(args)
    states = fleet.states()
    print(f"{'PROJECT':30} {'HOST':30} STATE")
    for project, state in sorted(states.items()):
        host = fleet.host_of(project) or "-"
        print(f"{project:30} {host:30} {state}")
    return 0


def vm_action(args: Any) -> int:
    check_project(args.project)  # tenant-influenced: checked before anything runs
    fleet = _fleet(args)
    getattr(fleet, args.action)(args.project)
    print(f"securebuild: {args.action} of the VM of project {args.project}: done", file=sys.stderr)
    return 0
