"""Run the operators' VM playbooks with ``ansible-playbook``, one argv, a clean environment.

The fleet (daemon, ``securebuild run``, ``securebuild vm``) and the devenv launcher (tests,
``securebuild dev up``) both make, stop and destroy project VMs with exactly the playbooks
operators run by hand (``host-provision.yml``, ``vm-ensure.yml``, ``vm-destroy.yml``); this module
is the one place that runs them. Extra variables go as one JSON ``-e`` argument (data, never a
shell string); the environment drops the variables that would make TLS clients trust another CA.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from securebuild.fleet.errors import FleetError

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


@dataclass(frozen=True)
class PlaybookResult:
    """Outcome of one ansible-playbook run: per-host stats and how long it took."""

    changed: int
    failed: int
    seconds: float
    output: str


def ansible_binary(name: str) -> str:
    """``ansible-playbook``/``ansible-inventory`` of this Python environment, else from PATH."""
    beside = Path(sys.executable).parent / name
    if beside.is_file():
        return str(beside)
    found = shutil.which(name)
    if found is None:
        raise FleetError(f"{name} not found beside the Python interpreter or on PATH")
    return found


def clean_env(state_dir: Path | None = None, project_dir: Path = REPO_ROOT) -> dict[str, str]:
    """Environment for Ansible: our ansible.cfg and state dir, no CA overrides."""
    env = {k: v for k, v in os.environ.items() if k not in TLS_ENV_OVERRIDES}
    env["ANSIBLE_CONFIG"] = str(project_dir / "ansible.cfg")
    if state_dir is not None:
        env["SECUREBUILD_STATE_DIR"] = str(state_dir)
    return env


class PlaybookRunner:
    """Runs playbooks of the checkout against one inventory with one control-side state dir."""

    def __init__(self, *, inventory: Path, state_dir: Path, project_dir: Path = REPO_ROOT) -> None:
        self.inventory = inventory
        self.state_dir = state_dir
        self.project_dir = project_dir

    def env(self) -> dict[str, str]:
        env = clean_env(self.state_dir, self.project_dir)
        env["ANSIBLE_STDOUT_CALLBACK"] = "ansible.posix.json"
        return env

    def run(
        self,
        playbook: str,
        *,
        what: str,
        limit: str | None = None,
        extra_vars: Mapping[str, object] | None = None,
    ) -> PlaybookResult:
        """Run ``playbook`` (relative to the checkout) and return its stats; raise on failure.

        ``what`` names the subject in messages ("project demo"); the error carries the failed
        tasks' messages, so the person reading it does not need the whole output.
        """
        argv = [ansible_binary("ansible-playbook"), "-i", str(self.inventory)]
        if limit is not None:
            argv += ["--limit", limit]
        argv += [str(self.project_dir / playbook)]
        if extra_vars:
            argv += ["-e", json.dumps(dict(extra_vars))]
        start = time.monotonic()
        proc = subprocess.run(
            argv,
            cwd=self.project_dir,
            env=self.env(),
            capture_output=True,
            text=True,
            check=False,
        )
        seconds = time.monotonic() - start
        try:
            stats = json.loads(proc.stdout)["stats"]
        except (ValueError, KeyError, TypeError):
            stats = {}
        changed = sum(int(s.get("changed", 0)) for s in stats.values())
        failed = sum(
            int(s.get("failures", 0)) + int(s.get("unreachable", 0)) for s in stats.values()
        )
        if proc.returncode != 0 or failed or not stats:
            raise FleetError(
                f"{playbook} for {what} failed (rc {proc.returncode}):\n"
                f"{failures(proc.stdout)}{proc.stderr[-3000:]}"
            )
        logger.info("%s for %s: changed=%d in %.1f s", playbook, what, changed, seconds)
        return PlaybookResult(changed=changed, failed=failed, seconds=seconds, output=proc.stdout)


def failures(stdout: str) -> str:
    """The failed tasks' messages from the json callback output, for error messages."""
    try:
        plays = json.loads(stdout)["plays"]
    except (ValueError, KeyError, TypeError):
        return stdout[-3000:] + "\n"
    lines = []
    for play in plays:
        for task in play.get("tasks", []):
            for host, res in task.get("hosts", {}).items():
                if res.get("failed") or res.get("unreachable"):
                    msg = res.get("msg") or res.get("stderr") or ""
                    lines.append(f"  {task['task']['name']} on {host}: {str(msg)[-1500:]}")
    return "\n".join(lines) + "\n"
