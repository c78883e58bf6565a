"""A project VM on this machine, made and removed with the project's own playbooks.

Tests, benchmarks and ``securebuild dev up`` need a real project VM with dockerd on mutual TLS.
Rather than a second way to make one, this class runs the operators' playbooks
(``host-provision.yml``, ``vm-ensure.yml``, ``vm-destroy.yml``) against ``inventories/local``
with ``ansible-playbook``, so every use exercises the code that production runs. The state
directory (SSH key, pinned host key, PKI) is private to the instance unless given.
"""

from __future__ import annotations

import json
import logging
import os
import re
import shlex
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Self

from securebuild.devenv.process import Service, ServiceError
from securebuild.pki import ProjectPKI

logger = logging.getLogger(__name__)

#: The checkout holding playbooks/, roles/ and inventories/ (the package is installed editable).
REPO_ROOT = Path(__file__).resolve().parents[2]

#: Environment variables that would make TLS clients trust another CA than the one given.
TLS_ENV_OVERRIDES = (
    "REQUESTS_CA_BUNDLE",
    "CURL_CA_BUNDLE",
    "SSL_CERT_FILE",
    "SSL_CERT_DIR",
    "DOCKER_CERT_PATH",
    "DOCKER_TLS_VERIFY",
    "DOCKER_HOST",
)

#: Names dockerd's certificate must carry: the control side reaches it on a loopback forward.
SERVER_HOSTS = ("127.0.0.1", "localhost")

_PROJECT_RE = re.compile(r"^[a-z0-9]([-a-z0-9]{0,48}[a-z0-9])?$")


class ProjectVMError(ServiceError):
    """A playbook run for a project VM failed; the message carries the end of its output."""


@dataclass(frozen=True)
class PlaybookResult:
    """Outcome of one ansible-playbook run: per-host stats and how long it took."""

    changed: int
    failed: int
    seconds: float
    output: str


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

    # -- playbooks ---------------------------------------------------------------------------

    def env(self) -> dict[str, str]:
        """Environment for ansible-playbook: our config and state dir, no CA overrides."""
        env = {k: v for k, v in os.environ.items() if k not in TLS_ENV_OVERRIDES}
        env["ANSIBLE_CONFIG"] = str(REPO_ROOT / "ansible.cfg")
        env["ANSIBLE_STDOUT_CALLBACK"] = "ansible.posix.json"
        env["SECUREBUILD_STATE_DIR"] = str(self.state_dir)
        return env

    def run_playbook(self, playbook: str, **extra_vars: object) -> PlaybookResult:
        """Run ``playbook`` (relative to the checkout) and return its stats; raise on failure."""
        ansible_playbook = str(Path(sys.executable).parent / "ansible-playbook")
        if not Path(ansible_playbook).exists():
            ansible_playbook = shutil.which("ansible-playbook") or "ansible-playbook"
        argv = [
            ansible_playbook,
            "-i",
            str(self.inventory),
            str(REPO_ROOT / playbook),
            "-e",
            json.dumps({"securebuild_project": self.project, **extra_vars}),
        ]
        start = time.monotonic()
        proc = subprocess.run(
            argv, cwd=REPO_ROOT, env=self.env(), capture_output=True, text=True, check=False
        )
        seconds = time.monotonic() - start
        try:
            stats = json.loads(proc.stdout)["stats"]
        except (ValueError, KeyError):
            stats = {}
        changed = sum(int(s.get("changed", 0)) for s in stats.values())
        failed = sum(
            int(s.get("failures", 0)) + int(s.get("unreachable", 0)) for s in stats.values()
        )
        if proc.returncode != 0 or failed or not stats:
            raise ProjectVMError(
                f"{playbook} for project {self.project} failed (rc {proc.returncode}):\n"
                f"{_failures(proc.stdout)}{proc.stderr[-3000:]}"
            )
        logger.info("%s for %s: changed=%d in %.1f s", playbook, self.project, changed, seconds)
        return PlaybookResult(changed=changed, failed=failed, seconds=seconds, output=proc.stdout)

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
        record_path = self.state_dir / "vms" / self.project / "vm.json"
        try:
            record = json.loads(record_path.read_text())
        except (OSError, ValueError) as exc:
            raise ProjectVMError(f"cannot read the VM record {record_path}: {exc}") from exc
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
            pki=ProjectPKI.load(self.state_dir, self.project),
        )

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


def _failures(stdout: str) -> str:
    """The failed tasks' messages from the json callback output, for error messages."""
    try:
        plays = json.loads(stdout)["plays"]
    except (ValueError, KeyError):
        return stdout[-3000:] + "\n"
    lines = []
    for play in plays:
        for task in play.get("tasks", []):
            for host, res in task.get("hosts", {}).items():
                if res.get("failed") or res.get("unreachable"):
                    msg = res.get("msg") or res.get("stderr") or ""
                    lines.append(f"  {task['task']['name']} on {host}: {str(msg)[-1500:]}")
    return "\n".join(lines) + "\n"
