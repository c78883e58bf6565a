"""Running securebuild daemons in tests, with the localhost test playbook as executor.

The executor is the real :class:`PlaybookExecutor` running a real ansible-runner playbook
(tests/data/daemon/build.yml) on localhost instead of ``playbooks/build.yml`` in a VM; the VM
path is covered by the e2e tests.
"""

from __future__ import annotations

import dataclasses
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import yaml

from securebuild.cluster import ClusterAccess, Kube
from securebuild.daemon import Daemon, DaemonConfig, PlaybookExecutor
from securebuild.daemon.config import ApiConfig, ClusterConfig, Limits, Timeouts
from securebuild.devenv.controlplane import ControlPlane

DATA = Path(__file__).resolve().parents[1] / "data" / "daemon"


def test_executor(state_dir: Path) -> PlaybookExecutor:
    return PlaybookExecutor(
        project_dir=DATA,
        playbook="build.yml",
        inventory=DATA / "inventory.yml",
        base_dir=state_dir,
    )


def daemon_config(
    plane: ControlPlane,
    state_dir: Path,
    identity: str,
    *,
    lease: float = 5.0,
    max_builds: int = 4,
    per_project: int = 1,
    api: ApiConfig | None = None,
    **extra: Any,
) -> DaemonConfig:
    return DaemonConfig(
        **extra,
        api=api or ApiConfig(),
        cluster=ClusterConfig(kubeconfig=plane.kubeconfig("daemon")),
        identity=identity,
        limits=Limits(max_concurrent_builds=max_builds, builds_per_project=per_project),
        timeouts=Timeouts(lease_seconds=lease, watch_inactivity_seconds=20, request_seconds=10),
        state_dir=state_dir,
    )


@contextmanager
def running_daemon(
    plane: ControlPlane, state_dir: Path, identity: str, **kwargs: Any
) -> Iterator[Daemon]:
    config = daemon_config(plane, state_dir, identity, **kwargs)
    kube = Kube.from_access(ClusterAccess(kubeconfig=config.cluster.kubeconfig))
    daemon = Daemon(config, kube=kube, executor=test_executor(state_dir), tick=0.2)
    daemon.start()
    try:
        assert daemon.wait_ready(20), daemon.build_reflector.stats.last_error
        yield daemon
    finally:
        daemon.stop()


def write_config_file(config: DaemonConfig, path: Path) -> Path:
    """The YAML file ``securebuild daemon --config`` reads, for ``config`` and the test executor."""
    data = {
        "cluster": {"kubeconfig": str(config.cluster.kubeconfig)},
        "identity": config.identity,
        "inventory": str(DATA / "inventory.yml"),
        "executor": {
            "mode": "playbook",
            "project_dir": str(DATA),
            "playbook": "build.yml",
            "cleanup_playbook": None,
        },
        "limits": dataclasses.asdict(config.limits),
        "timeouts": dataclasses.asdict(config.timeouts),
        "state_dir": str(config.state_dir),
    }
    path.write_text(yaml.safe_dump(data))
    return path


class DaemonProcess:
    """``securebuild daemon --config FILE`` as a child process (to SIGKILL it)."""

    def __init__(self, config_file: Path, log: Path) -> None:
        self.config_file = config_file
        self.log = log
        self.popen: subprocess.Popen[bytes] | None = None

    def start(self) -> DaemonProcess:
        with self.log.open("ab") as out:
            self.popen = subprocess.Popen(
                [sys.executable, "-m", "securebuild", "daemon", "--config", str(self.config_file)],
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        return self

    def kill(self) -> None:
        """SIGKILL the daemon only (its runs' processes are left as a crash leaves them)."""
        assert self.popen is not None
        self.popen.send_signal(signal.SIGKILL)
        self.popen.wait(10)

    def stop(self) -> None:
        if self.popen is None or self.popen.poll() is not None:
            return
        self.popen.send_signal(signal.SIGTERM)
        try:
            self.popen.wait(30)
        except subprocess.TimeoutExpired:
            os.killpg(self.popen.pid, signal.SIGKILL)
            self.popen.wait(10)
