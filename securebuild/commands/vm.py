"""``securebuild vm list|stop|destroy|reset PROJECT``: operators' handle on project VMs.

``list`` reads libvirt (domains named ``sb-<project>``, as the ``project_vm`` role names them);
the others run the same playbooks an operator would run by hand (DESIGN section 6), with the
project as an extra variable after checking it is a valid project name (DNS-1123 label)::

    stop     playbooks/vm-ensure.yml  -e securebuild_vm_state=stopped  (disks kept)
    reset    playbooks/vm-ensure.yml  -e securebuild_vm_reset=true     (root disk rebuilt)
    destroy  playbooks/vm-destroy.yml                                   (domain and disks gone)
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

from securebuild.errors import SecurebuildError
from securebuild.model.names import dns1123_label
from securebuild.runner.adapter import ansible_playbook_binary

PROJECT_ROOT = Path(__file__).resolve().parents[2]
DOMAIN_PREFIX = "sb-"
ACTIONS: dict[str, tuple[str, dict[str, Any]]] = {
    "stop": ("playbooks/vm-ensure.yml", {"securebuild_vm_state": "stopped"}),
    "reset": ("playbooks/vm-ensure.yml", {"securebuild_vm_reset": True}),
    "destroy": ("playbooks/vm-destroy.yml", {}),
}


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser("vm", help="list, stop, reset or destroy project VMs")
    actions = parser.add_subparsers(dest="vm_action", metavar="ACTION", required=True)
    listing = actions.add_parser("list", help="project VMs on this build host and their state")
    listing.add_argument("--libvirt-uri", default="qemu:///system")
    listing.set_defaults(func=vm_list)
    for action, (playbook, _extra) in ACTIONS.items():
        sub = actions.add_parser(action, help=f"{action} a project's VM ({playbook})")
        sub.add_argument("project", metavar="PROJECT")
        sub.add_argument(
            "-i",
            "--inventory",
            type=Path,
            default=PROJECT_ROOT / "inventories" / "local",
            help="Ansible inventory (default inventories/local)",
        )
        sub.set_defaults(func=vm_action, action=action)


def vm_list(args: Any) -> int:
    try:
        names = subprocess.run(
            ["virsh", "-c", args.libvirt_uri, "list", "--all", "--name"],
            capture_output=True,
            text=True,
            check=True,
            timeout=30,
        ).stdout.split()
    except (OSError, subprocess.SubprocessError) as exc:
        raise SecurebuildError(f"cannot list libvirt domains at {args.libvirt_uri}: {exc}") from exc
    rows = []
    for name in sorted(n for n in names if n.startswith(DOMAIN_PREFIX)):
        state = subprocess.run(
            ["virsh", "-c", args.libvirt_uri, "domstate", name],
            capture_output=True,
            text=True,
            check=False,
            timeout=30,
        ).stdout.strip()
        rows.append((name.removeprefix(DOMAIN_PREFIX), name, state or "unknown"))
    print(f"{'PROJECT':30} {'DOMAIN':33} STATE")
    for project, domain, state in rows:
        print(f"{project:30} {domain:33} {state}")
    return 0


def vm_action(args: Any) -> int:
    problem = dns1123_label(args.project)
    if problem is not None:
        raise SecurebuildError(f"project {args.project!r}: {problem}")
    playbook, extra = ACTIONS[args.action]
    if not (PROJECT_ROOT / playbook).is_file():
        raise SecurebuildError(f"{playbook} is not installed in {PROJECT_ROOT}")
    variables = {"securebuild_project": args.project, **extra}
    argv = [
        ansible_playbook_binary(),
        "-i",
        str(args.inventory),
        playbook,
        "-e",
        json.dumps(variables),
    ]
    result = subprocess.run(argv, cwd=PROJECT_ROOT, check=False)
    if result.returncode != 0:
        raise SecurebuildError(f"{playbook} failed (exit status {result.returncode})")
    return 0
