"""The control-side record of a project VM (``<state_dir>/vms/<project>/vm.json``).

The ``project_vm`` role writes vm.json when it starts a VM (endpoints, pinned host key, image
version); the fleet, the devenv launcher and the tools read it here, one parser for all.
"""

from __future__ import annotations

import json
import shlex
from dataclasses import dataclass, field
from pathlib import Path

from securebuild.fleet.errors import FleetError
from securebuild.pki import PKIError, ProjectPKI


def vm_dir(state_dir: Path, project: str) -> Path:
    """The project VM's control-side directory (the role removes it on destroy)."""
    return state_dir / "vms" / project


@dataclass(frozen=True)
class VMEndpoints:
    """How the control side reaches the VM, as recorded by the project_vm role (vm.json)."""

    project: str
    domain: str
    accel: str
    image_version: str
    ssh_host: str
    ssh_port: int
    ssh_user: str
    ssh_key: Path
    known_hosts: Path
    docker_host: str
    docker_port: int
    pki: ProjectPKI = field(compare=False)

    @property
    def docker_url(self) -> str:
        return f"https://{self.docker_host}:{self.docker_port}"

    def ssh_argv(self, *command: str) -> list[str]:
        """argv for running ``command`` in the VM over SSH with the pinned host key.

        sshd hands the command to the remote shell as one string, so it is quoted here: each
        element arrives as one argument, whatever it contains.
        """
        return [
            "ssh",
            "-o",
            "StrictHostKeyChecking=yes",
            "-o",
            f"UserKnownHostsFile={self.known_hosts}",
            "-o",
            "IdentitiesOnly=yes",
            "-o",
            "BatchMode=yes",
            "-i",
            str(self.ssh_key),
            "-p",
            str(self.ssh_port),
            f"{self.ssh_user}@{self.ssh_host}",
            "--",
            shlex.join(command),
        ]


def read_endpoints(state_dir: Path, project: str) -> VMEndpoints:
    """The VM's endpoints from its record; :class:`FleetError` naming the file if unusable."""
    record_path = vm_dir(state_dir, project) / "vm.json"
    try:
        record = json.loads(record_path.read_text())
        return VMEndpoints(
            project=record["project"],
            domain=record["domain"],
            accel=record["accel"],
            image_version=record["image_version"],
            ssh_host=record["ssh"]["host"],
            ssh_port=int(record["ssh"]["port"]),
            ssh_user=record["ssh"]["user"],
            ssh_key=Path(record["ssh_key"]),
            known_hosts=Path(record["known_hosts"]),
            docker_host=record["docker"]["host"],
            docker_port=int(record["docker"]["port"]),
            pki=ProjectPKI.load(state_dir, project),
        )
    except (OSError, ValueError, KeyError, TypeError, PKIError) as exc:
        raise FleetError(f"cannot read the VM record {record_path}: {exc}") from exc
