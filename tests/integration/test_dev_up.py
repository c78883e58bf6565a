"""``securebuild dev up`` / ``dev down``: the whole local system, used through the CLI.

The build playbook is the localhost test playbook (tests/data/daemon/build.yml) so that this
test needs no VM; with the default ``playbooks/build.yml`` builds run in project VMs (e2e).
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from securebuild.cluster import ClusterAccess, Kube, paths
from tests.helpers.cluster import wait_for
from tests.helpers.daemon import DATA


def test_dev_up_runs_builds_and_dev_down_stops_everything(tmp_path: Path) -> None:
    directory = tmp_path / "dev"
    log = tmp_path / "dev-up.log"
    command = [sys.executable, "-m", "securebuild"]
    with log.open("wb") as out:
        up = subprocess.Popen(
            [
                *command,
                "dev",
                "up",
                "--dir",
                str(directory),
                "--project-dir",
                str(DATA),
                "--playbook",
                "build.yml",
                "--inventory",
                str(DATA / "inventory.yml"),
            ],
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        env_file = directory / "env"
        wait_for(
            "dev up to be ready",
            lambda: env_file.exists() or up.poll() is not None,
            timeout=120,
            interval=0.5,
        )
        assert up.poll() is None, log.read_text()
        env = dict(os.environ)
        for line in env_file.read_text().splitlines():
            key, _, value = line.removeprefix("export ").partition("=")
            env[key] = value
        alice = Kube.from_access(ClusterAccess(kubeconfig=directory / "alice.kubeconfig"))
        # The output stream must exist, as in OpenShift (else the Build waits in New).
        alice.request(
            "POST",
            paths.imagestreams("alice-project"),
            body={
                "apiVersion": "image.openshift.io/v1",
                "kind": "ImageStream",
                "metadata": {"name": "hello", "namespace": "alice-project"},
            },
        )
        alice.request(
            "POST",
            paths.buildconfigs("alice-project"),
            body={
                "apiVersion": "build.openshift.io/v1",
                "kind": "BuildConfig",
                "metadata": {"name": "hello", "namespace": "alice-project"},
                "spec": {
                    "source": {"type": "Dockerfile", "dockerfile": "FROM busybox\n"},
                    "strategy": {"type": "Docker", "dockerStrategy": {}},
                    "output": {"to": {"kind": "ImageStreamTag", "name": "hello:latest"}},
                },
            },
        )
        result = subprocess.run(
            [*command, "start-build", "hello", "-n", "alice-project", "-F", "-w"],
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        assert result.returncode == 0, result.stderr + log.read_text()[-2000:]
        assert "build.build.openshift.io/hello-1 started" in result.stdout
        # ImageStreamTag output resolved to the dev registry, as the push target.
        assert "Pushing image 127.0.0.1:" in result.stdout
        assert "/alice-project/hello:latest" in result.stdout
        down = subprocess.run(
            [*command, "dev", "down", "--dir", str(directory)],
            capture_output=True,
            text=True,
            timeout=90,
            check=False,
        )
        assert down.returncode == 0, down.stderr
        assert up.wait(30) == 0, log.read_text()[-2000:]
        assert not (directory / "dev-up.pid").exists()
    finally:
        if up.poll() is None:
            up.kill()
            up.wait(10)
