"""A project VM on this machine, made and removed with the project's own playbooks.

Tests, benchmarks and ``securebuild dev up`` need a real project VM with dockerd on mutual TLS.
Rather than a second way to make one, this class runs the operators' playbooks
(``host-provision.yml``, ``vm-ensure.yml``, ``vm-destroy.yml``) against ``inventories/local``
with ``ansible-playbook``, so every use exercises the code that production runs. The state
directory (SSH key, pinned host key, PKI) is private to the instance unless given.
"""

from __future__ import annotations

import logging
import re
import shutil
import tempfile
from pathlib import Path
from typing import Self

from securebuild.devenv.process import Service, ServiceError
from securebuild.fleet.errors import FleetError
from securebuild.fleet.playbooks import (
    REPO_ROOT,
    TLS_ENV_OVERRIDES,
    PlaybookResult,
    PlaybookRunner,
)
from securebuild.fleet.records import VMEndpoints, read_endpoints
from securebuild.pki import ProjectPKI

logger = logging.getLogger(__name__)

__all__ = [
    "REPO_ROOT",
    "SERVER_HOSTS",
    "TLS_ENV_OVERRIDES",
    "PlaybookResult",
    "ProjectVM",
    "ProjectVMError",
    "VMEndpoints",
]

#: Names dockerd's certificate must carry: the control side reaches it on a loopback forward.
SERVER_HOSTS = ("127.0.0.1", "localhost")

_PROJECT_RE = re.compile(r"^[a-z0-9]([-a-z0-9]{0,48}[a-z0-9])?$")


class ProjectVMError(ServiceError):
    """A playbook run for a project VM failed; the message carries the end of its output."""


class ProjectVM(Service):
    """Ensure (start) and destroy (stop) one project's VM on this machine.

    ``with ProjectVM("demo") as vm:`` makes the VM (``vm.endpoints`` says how to reach it);
    leaving the block destroys the VM and its disks. The golden image must exist
    (``scripts/setup.d/40-golden-image.sh``) and libvirtd must answer or be startable.
    """

    def __init__(
        self,
        project: str,
        *,
        state_dir: Path | None = None,
        inventory: Path | None = None,
        ensure_project_pki: bool = True,
    ) -> None:
        if not _PROJECT_RE.match(project):
            raise ProjectVMError(f"project name {project!r} is not a DNS-1123 label")
        self.project = project
        self._own_state_dir = state_dir is None
        self.state_dir = state_dir or Path(tempfile.mkdtemp(prefix="securebuild-vm-"))
        self.inventory = inventory or REPO_ROOT / "inventories" / "local"
        self.ensure_project_pki = ensure_project_pki
        self.endpoints: VMEndpoints | None = None

    # -- playbooks (the fleet's runner: one way to run them) -------------------------------

    def _runner(self) -> PlaybookRunner:
        return PlaybookRunner(inventory=self.inventory, state_dir=self.state_dir)

    def env(self) -> dict[str, str]:
        """Environment for ansible-playbook: our config and state dir, no CA overrides."""
        return self._runner().env()

    def run_playbook(self, playbook: str, **extra_vars: object) -> PlaybookResult:
        """Run ``playbook`` (relative to the checkout) and return its stats; raise on failure."""
        try:
            return self._runner().run(
                playbook,
                what=f"project {self.project}",
                extra_vars={"securebuild_project": self.project, **extra_vars},
            )
        except FleetError as exc:
            raise ProjectVMError(str(exc)) from exc

    def provision_host(self) -> PlaybookResult:
        return self.run_playbook("playbooks/host-provision.yml")

    def ensure_pki(self) -> ProjectPKI:
        """The project's CA, dockerd server and control-side client certificates (idempotent)."""
        return ProjectPKI.ensure(self.state_dir, self.project, server_hosts=SERVER_HOSTS)

    def ensure(self, **extra_vars: object) -> PlaybookResult:
        result = self.run_playbook("playbooks/vm-ensure.yml", **extra_vars)
        self.endpoints = self.read_endpoints()
        return result

    def destroy(self) -> PlaybookResult:
        result = self.run_playbook("playbooks/vm-destroy.yml")
        self.endpoints = None
        return result

    def read_endpoints(self) -> VMEndpoints:
        try:
            return read_endpoints(self.state_dir, self.project)
        except FleetError as exc:
            raise ProjectVMError(str(exc)) from exc

    # -- lifecycle ---------------------------------------------------------------------------

    def start(self) -> Self:
        """Provision the host (libvirtd, SSH key), the PKI, then ensure the VM is running.

        On failure the VM and the private state are removed again before the error propagates.
        """
        try:
            self.provision_host()
            if self.ensure_project_pki:
                self.ensure_pki()
            self.ensure()
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self) -> None:
        """Destroy the VM and its disks, then the private state directory."""
        try:
            self.destroy()
        finally:
            if self._own_state_dir:
                shutil.rmtree(self.state_dir, ignore_errors=True)
