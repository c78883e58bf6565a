"""How the control side reaches one project VM: SSH with a pinned host key and dockerd on mTLS.

The daemon's workers, ``securebuild run`` and the pipeline all take a :class:`VMTarget`; the
fleet makes it from the VM's record (vm.json, see :mod:`securebuild.fleet.records`), so the
pipeline never reads VM state itself.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from securebuild.pki import ProjectPKI


class VMRecord(Protocol):
    """What a VM launcher records about a running VM (``fleet.records.VMEndpoints``)."""

    @property
    def domain(self) -> str: ...
    @property
    def ssh_host(self) -> str: ...
    @property
    def ssh_port(self) -> int: ...
    @property
    def ssh_user(self) -> str: ...
    @property
    def ssh_key(self) -> Path: ...
    @property
    def known_hosts(self) -> Path: ...
    @property
    def docker_url(self) -> str: ...
    @property
    def pki(self) -> ProjectPKI: ...


@dataclass(frozen=True)
class VMTarget:
    """How the control side reaches one project VM (from the VM's record, vm.json)."""

    name: str  # inventory host name (the libvirt domain)
    ssh_host: str
    ssh_port: int
    ssh_user: str
    ssh_key: Path
    known_hosts: Path
    docker_url: str
    docker_ca: Path
    docker_cert: Path
    docker_key: Path

    @classmethod
    def from_record(cls, record: VMRecord) -> VMTarget:
        """The target of a VM as its launcher recorded it (the controller's client cert)."""
        return cls(
            name=record.domain,
            ssh_host=record.ssh_host,
            ssh_port=record.ssh_port,
            ssh_user=record.ssh_user,
            ssh_key=record.ssh_key,
            known_hosts=record.known_hosts,
            docker_url=record.docker_url,
            docker_ca=record.pki.ca_cert,
            docker_cert=record.pki.client_cert,
            docker_key=record.pki.client_key,
        )

    @property
    def ssh_common_args(self) -> str:
        return (
            f"-o StrictHostKeyChecking=yes -o UserKnownHostsFile={self.known_hosts} "
            "-o IdentitiesOnly=yes -o BatchMode=yes"
        )

    def as_vars(self) -> dict[str, str]:
        return {
            "ssh_host": self.ssh_host,
            "ssh_port": str(self.ssh_port),
            "ssh_user": self.ssh_user,
            "ssh_key": str(self.ssh_key),
            "ssh_common_args": self.ssh_common_args,
            "docker_url": self.docker_url,
            "docker_ca": str(self.docker_ca),
            "docker_cert": str(self.docker_cert),
            "docker_key": str(self.docker_key),
        }

    def inventory(self) -> dict[str, Any]:
        host = {
            "ansible_host": self.ssh_host,
            "ansible_port": self.ssh_port,
            "ansible_user": self.ssh_user,
            "ansible_connection": "ssh",
            "ansible_python_interpreter": "/usr/bin/python3",
            "ansible_ssh_private_key_file": str(self.ssh_key),
            "ansible_ssh_common_args": self.ssh_common_args,
        }
        return {"all": {"children": {"project_vms": {"hosts": {self.name: host}}}}}
