"""The daemon running Builds in the project VM: ``securebuild start-build`` -> terminal phase.

Everything is real: the API server with OpenShift's CRDs, ``securebuild daemon --config`` as a
child process (executor mode ``vm``: the fleet finds the shared project VM warm, the pipeline
runs ``playbooks/build.yml`` in it), its HTTPS log API, the registry the VM pushes to and the git
server it clones from. What cannot run here is OpenShift's own build controller; the daemon
stands in for it (owner mode), which is what these tests check. The namespace is the shared
VM's project, so no second VM is made.
"""

from __future__ import annotations

import base64
import itertools
import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from securebuild.cluster import Kube, paths
from securebuild.cluster.claims import Claim
from securebuild.devenv.controlplane import ControlPlane
from securebuild.devenv.gitserver import GitServer
from securebuild.devenv.process import free_port
from securebuild.devenv.registry import Registry
from securebuild.devenv.testca import TestCA
from securebuild.devenv.vmregistry import MANIFEST_V2, image_config
from tests.fixtures.pipeline import SYSTEM_CA_BUNDLE, Pipeline
from tests.helpers.cluster import (
    ended_build_events,
    get_build,
    kube_for,
    phase,
    wait_for,
)
from tests.helpers.daemon import DaemonProcess

ROOT = Path(__file__).resolve().parents[2]
TERMINAL = ("Complete", "Failed", "Error", "Cancelled")
OPT_IN = "securebuild.appuio.ch/enabled"


@dataclass
class VMDaemon:
    admin: Kube
    namespace: str
    pipeline: Pipeline
    config_file: Path
    env: dict[str, str]
    log: Path
    process: DaemonProcess | None = None

    def start(self, identity: str = "vm-daemon") -> None:
        """Start ``securebuild daemon``; a restarted daemon gets a new identity, as the default
        identity (host name and a random suffix) does in production."""
        config = yaml.safe_load(self.config_file.read_text())
        config["identity"] = identity
        self.config_file.write_text(yaml.safe_dump(config))
        self.process = DaemonProcess(self.config_file, self.log).start()

    def kill(self) -> None:
        assert self.process is not None
        self.process.kill()

    def stop(self) -> None:
        if self.process is not None:
            self.process.stop()

    def cli(self, *argv: str, timeout: float = 600) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "securebuild", *argv, "-n", self.namespace],
            env=self.env,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )

    def buildconfig(self, name: str, spec: dict[str, Any]) -> None:
        body = {
            "apiVersion": "build.openshift.io/v1",
            "kind": "BuildConfig",
            "metadata": {"name": name, "namespace": self.namespace},
            "spec": {"runPolicy": "Serial", **spec},
        }
        self.admin.request("POST", paths.buildconfigs(self.namespace), body=body)

    def wait(self, name: str, phases: tuple[str, ...], timeout: float = 600) -> dict[str, Any]:
        result: dict[str, Any] = wait_for(
            f"{self.namespace}/{name} in {phases}",
            lambda: (b := get_build(self.admin, self.namespace, name)) and phase(b) in phases and b,
            timeout=timeout,
            interval=0.5,
        )
        return result

    def daemon_log(self) -> str:
        return self.log.read_text(errors="replace")[-6000:]


def _secret(admin: Kube, namespace: str, name: str, kind: str, data: dict[str, bytes]) -> None:
    admin.request(
        "POST",
        f"/api/v1/namespaces/{namespace}/secrets",
        body={
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {"name": name},
            "type": kind,
            "data": {k: base64.b64encode(v).decode() for k, v in data.items()},
        },
    )


@pytest.fixture(scope="module")
def vm_daemon(
    controlplane: ControlPlane,
    pipeline: Pipeline,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[VMDaemon]:
    tmp = tmp_path_factory.mktemp("vm-daemon")
    admin = kube_for(controlplane, "admin")
    namespace = pipeline.vm.project
    admin.request(
        "POST",
        paths.namespaces(),
        body={"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": namespace}},
    )
    admin.request(
        "PATCH",
        paths.namespace(namespace),
        body={"metadata": {"labels": {OPT_IN: "true"}}},
        content_type="application/merge-patch+json",
    )
    registry = pipeline.registry
    auth = base64.b64encode(f"{registry.username}:{registry.password}".encode()).decode()
    dockerconfig = {"auths": {registry.address: {"auth": auth}}}
    _secret(
        admin,
        namespace,
        "registry-auth",
        "kubernetes.io/dockerconfigjson",
        {".dockerconfigjson": json.dumps(dockerconfig).encode()},
    )
    cert = TestCA(tmp / "api-pki").server("api", ("127.0.0.1", "localhost"))
    inventory = _inventory_without_reaping(tmp / "inventory")
    config = {
        "cluster": {"kubeconfig": str(controlplane.kubeconfig("daemon"))},
        "identity": "vm-daemon",
        "inventory": str(inventory),
        "executor": {"mode": "vm", "registry_cas": {registry.address: str(registry.ca_cert)}},
        "timeouts": {"lease_seconds": 15, "watch_inactivity_seconds": 30, "request_seconds": 10},
        # the shared VM's state: its record, SSH key, pinned host key and project PKI
        "state_dir": str(pipeline.vm.state_dir),
        "log_dir": str(tmp / "logs"),
        "output_registry": registry.address,
        "record_imagestream_tags": True,
        "api": {
            "listen": f"127.0.0.1:{free_port()}",
            "tls_cert": str(cert.cert),
            "tls_key": str(cert.key),
        },
    }
    config_file = tmp / "daemon.yaml"
    config_file.write_text(yaml.safe_dump(config))
    env = {
        **os.environ,
        "KUBECONFIG": str(controlplane.kubeconfig("admin")),
        "SECUREBUILD_API_CA": str(tmp / "api-pki" / "ca.crt"),
        "REQUESTS_CA_BUNDLE": SYSTEM_CA_BUNDLE,
    }
    daemon = VMDaemon(admin, namespace, pipeline, config_file, env, tmp / "daemon.log")
    daemon.start()
    try:
        url = wait_for(
            "the daemon's API URL in its claims log line",
            lambda: _api_url(daemon.log),
            timeout=60,
            interval=0.5,
        )
        daemon.env["SECUREBUILD_API"] = url
        yield daemon
    finally:
        daemon.stop()


def _inventory_without_reaping(directory: Path) -> Path:
    """inventories/local with the idle reaper off: the shared VM is used by other test modules
    behind this daemon's back, so its idle clock here says nothing (test_fleet tests reaping)."""
    local = ROOT / "inventories" / "local"
    (directory / "group_vars").mkdir(parents=True)
    (directory / "hosts.yml").symlink_to(local / "hosts.yml")
    (directory / "group_vars" / "all.yml").symlink_to(local / "group_vars" / "all.yml")
    host_vars = yaml.safe_load((local / "group_vars" / "build_hosts.yml").read_text())
    host_vars.update(securebuild_stop_after_idle="never", securebuild_destroy_after_idle="never")
    (directory / "group_vars" / "build_hosts.yml").write_text(yaml.safe_dump(host_vars))
    return directory


def _manifest_digest(registry: Registry, repository: str, tag: str) -> str:
    response = registry.session().head(
        f"https://127.0.0.1:{registry.port}/v2/{repository}/manifests/{tag}",
        headers={"Accept": MANIFEST_V2},
        timeout=30,
    )
    response.raise_for_status()
    return str(response.headers["Docker-Content-Digest"])


def _api_url(log: Path) -> str | None:
    if not log.exists():
        return None
    for line in log.read_text(errors="replace").splitlines():
        if "API listening on " in line:
            return line.rsplit("API listening on ", 1)[1].strip()
    return None


def test_start_build_from_git_completes_in_the_vm(
    vm_daemon: VMDaemon, git_server: GitServer
) -> None:
    ns, admin, registry = vm_daemon.namespace, vm_daemon.admin, vm_daemon.pipeline.registry
    commit = git_server.create_repo(
        "daemon-app", {"Dockerfile": "FROM busybox\nRUN echo built by $FROM_SECRET\n"}
    )
    _secret(
        admin,
        ns,
        "git-auth",
        "kubernetes.io/basic-auth",
        {
            "username": git_server.username.encode(),
            "password": git_server.token.encode(),
            "ca.crt": git_server.ca_cert.read_bytes(),
        },
    )
    _secret(admin, ns, "app-env", "Opaque", {"value": b"valueFrom-works"})
    admin.request(
        "POST",
        paths.imagestreams(ns),
        body={
            "apiVersion": "image.openshift.io/v1",
            "kind": "ImageStream",
            "metadata": {"name": "app"},
        },
    )
    vm_daemon.buildconfig(
        "app",
        {
            "source": {
                "type": "Git",
                "git": {"uri": git_server.url("daemon-app"), "ref": "main"},
                "sourceSecret": {"name": "git-auth"},
            },
            "strategy": {
                "type": "Docker",
                "dockerStrategy": {
                    "from": {"kind": "DockerImage", "name": f"{registry.address}/busybox:latest"},
                    "pullSecret": {"name": "registry-auth"},
                    "env": [
                        {
                            "name": "FROM_SECRET",
                            "valueFrom": {"secretKeyRef": {"name": "app-env", "key": "value"}},
                        }
                    ],
                },
            },
            "output": {
                "to": {"kind": "ImageStreamTag", "name": "app:latest"},
                "pushSecret": {"name": "registry-auth"},
                "imageLabels": [{"name": "org.example.team", "value": "daemon"}],
            },
        },
    )
    started = vm_daemon.cli("start-build", "app", "-F")
    assert started.returncode == 0, started.stdout + started.stderr + vm_daemon.daemon_log()
    assert "build.build.openshift.io/app-1 started" in started.stdout
    assert "built by valueFrom-works" in started.stdout
    build = vm_daemon.wait("app-1", TERMINAL)
    status = build["status"]
    assert status["phase"] == "Complete", (status, vm_daemon.daemon_log())
    reference = f"{registry.address}/{ns}/app:latest"
    assert status["outputDockerImageReference"] == reference
    digest = status["output"]["to"]["imageDigest"]
    assert _manifest_digest(registry, f"{ns}/app", "latest") == digest
    config = image_config(registry, f"{ns}/app", "latest")["config"]
    labels = config["Labels"]
    assert labels["io.openshift.build.name"] == "app-1"
    assert labels["io.openshift.build.namespace"] == ns
    assert labels["io.openshift.build.commit.id"] == commit
    assert labels["org.example.team"] == "daemon"
    assert "FROM_SECRET=valueFrom-works" in config["Env"]
    assert build["spec"]["revision"]["git"]["commit"] == commit
    assert [s["name"] for s in status["stages"]][:1] == ["FetchInputs"]
    assert "PushImage" in [s["name"] for s in status["stages"]]
    reasons = sorted(e["reason"] for e in ended_build_events(admin, ns, "app-1"))
    assert reasons == ["BuildCompleted", "BuildStarted"]
    stream = admin.get(paths.imagestream(ns, "app"))
    tags = {t["tag"]: t["items"][0]["image"] for t in stream["status"]["tags"]}
    assert tags == {"latest": digest}


def test_binary_build_failing_run_is_failed_with_snippet(
    vm_daemon: VMDaemon, tmp_path: Path
) -> None:
    registry = vm_daemon.pipeline.registry
    vm_daemon.buildconfig(
        "broken",
        {
            "source": {"type": "Binary", "binary": {}},
            "strategy": {"type": "Docker", "dockerStrategy": {}},
            "output": {
                "to": {"kind": "DockerImage", "name": f"{registry.address}/e2e/broken:latest"},
                "pushSecret": {"name": "registry-auth"},
            },
        },
    )
    context = tmp_path / "ctx"
    context.mkdir()
    (context / "Dockerfile").write_text("FROM busybox\nRUN echo about to fail && exit 3\n")
    started = vm_daemon.cli("start-build", "broken", "--from-dir", str(context), "--wait")
    assert started.returncode != 0, started.stdout
    status = vm_daemon.wait("broken-1", TERMINAL)["status"]
    assert status["phase"] == "Failed", (status, vm_daemon.daemon_log())
    assert status["reason"] == "DockerBuildFailed"
    assert status["message"] == "Dockerfile build strategy has failed."
    assert "about to fail" in vm_daemon.cli("logs", "broken-1").stdout
    assert status.get("logSnippet")
    reasons = sorted(
        e["reason"] for e in ended_build_events(vm_daemon.admin, vm_daemon.namespace, "broken-1")
    )
    assert reasons == ["BuildFailed", "BuildStarted"]


def test_missing_secret_fails_before_the_vm_is_used(vm_daemon: VMDaemon) -> None:
    vm_daemon.buildconfig(
        "nosecret",
        {
            "source": {"type": "Dockerfile", "dockerfile": "FROM busybox\n"},
            "strategy": {"type": "Docker", "dockerStrategy": {"pullSecret": {"name": "nope"}}},
        },
    )
    assert vm_daemon.cli("start-build", "nosecret").returncode == 0
    status = vm_daemon.wait("nosecret-1", TERMINAL, timeout=120)["status"]
    assert status["phase"] == "Failed"
    assert status["message"] == "These resources do not exist: Secrets [nope]"


def _sleeping_build(vm_daemon: VMDaemon, name: str, seconds: int) -> None:
    vm_daemon.buildconfig(
        name,
        {
            "source": {
                "type": "Dockerfile",
                "dockerfile": f"FROM busybox\nRUN echo sleeping && sleep {seconds} && echo woke\n",
            },
            "strategy": {"type": "Docker", "dockerStrategy": {}},
        },
    )
    assert vm_daemon.cli("start-build", name).returncode == 0


def _wait_log(vm_daemon: VMDaemon, build: str, needle: str, timeout: float = 600) -> None:
    try:
        wait_for(
            f"{needle!r} in the log of {build}",
            lambda: needle in vm_daemon.cli("logs", build, timeout=60).stdout,
            timeout=timeout,
            interval=2,
        )
    except AssertionError as exc:
        status = get_build(vm_daemon.admin, vm_daemon.namespace, build).get("status")
        logs = vm_daemon.cli("logs", build, timeout=60)
        raise AssertionError(
            f"{exc}\nstatus: {status}\nlogs: {logs.stdout}{logs.stderr}\n"
            f"daemon: {vm_daemon.daemon_log()}"
        ) from exc


def test_cancel_stops_the_build_in_the_vm(vm_daemon: VMDaemon) -> None:
    _sleeping_build(vm_daemon, "sleepy", 600)
    _wait_log(vm_daemon, "sleepy-1", "sleeping")
    cancelled = vm_daemon.cli("cancel-build", "sleepy-1")
    assert cancelled.returncode == 0, cancelled.stderr
    status = vm_daemon.wait("sleepy-1", TERMINAL, timeout=180)["status"]
    assert status["phase"] == "Cancelled"
    assert status["reason"] == "CancelledBuild"
    docker = vm_daemon.pipeline.vm.docker
    wait_for(
        "no container left in the VM",
        lambda: not docker.containers(all=True),
        timeout=120,
        interval=2,
    )
    procs = vm_daemon.pipeline.vm.ssh("pgrep", "-f", "sleep 600")
    assert procs.stdout.strip() == "", procs.stdout


def test_sigkill_of_the_daemon_mid_build_is_taken_over(vm_daemon: VMDaemon) -> None:
    _sleeping_build(vm_daemon, "crashy", 20)
    _wait_log(vm_daemon, "crashy-1", "sleeping")
    vm_daemon.kill()
    killed_at = time.monotonic()
    vm_daemon.start(identity="vm-daemon-restarted")
    build = vm_daemon.wait("crashy-1", TERMINAL, timeout=900)
    assert build["status"]["phase"] == "Complete", (build["status"], vm_daemon.daemon_log())
    claim = Claim.of(build)
    assert claim is not None and claim.attempt == 2 and claim.holder == "vm-daemon-restarted"
    assert time.monotonic() - killed_at >= 15  # not before the lease ran out
    reasons = [
        e["reason"] for e in ended_build_events(vm_daemon.admin, vm_daemon.namespace, "crashy-1")
    ]
    assert reasons.count("BuildCompleted") == 1 and "BuildFailed" not in reasons
    assert "took over this build (attempt 2)" in vm_daemon.cli("logs", "crashy-1").stdout
    # attempt 1's work directory (source, secret files) is gone from the VM too
    runs = vm_daemon.pipeline.vm.ssh(
        "sudo", "-n", "find", "/var/lib/securebuild/runs", "-mindepth", "1", "-maxdepth", "1"
    )
    assert runs.returncode == 0 and runs.stdout.strip() == "", runs.stdout + runs.stderr


def test_apiserver_restart_mid_build_in_the_vm_still_completes(
    vm_daemon: VMDaemon, controlplane: ControlPlane
) -> None:
    _sleeping_build(vm_daemon, "restarty", 20)
    _wait_log(vm_daemon, "restarty-1", "sleeping")
    controlplane.stop_apiserver()
    try:
        time.sleep(5)  # the build goes on in the VM; claim renewals fail and are retried
    finally:
        controlplane.start_apiserver()
    build = vm_daemon.wait("restarty-1", TERMINAL, timeout=600)
    assert build["status"]["phase"] == "Complete", (build["status"], vm_daemon.daemon_log())
    claim = Claim.of(build)
    assert claim is not None and claim.attempt == 1  # never lost, never run again
    reasons = [
        e["reason"] for e in ended_build_events(vm_daemon.admin, vm_daemon.namespace, "restarty-1")
    ]
    assert sorted(reasons) == ["BuildCompleted", "BuildStarted"]
    assert "woke" in vm_daemon.cli("logs", "restarty-1").stdout


def test_two_daemons_on_one_state_dir_run_each_build_once_in_the_vm(
    vm_daemon: VMDaemon, tmp_path: Path
) -> None:
    """Two replicas as the Deployment runs them: one state dir (VM record, CA, locks, logs),
    each Build claimed by one of them, one build at a time in the project's VM.

    Which replica runs which build is not asserted: the one whose build just ended learns it
    first and usually takes the next (in the runs seen here, all four). What is asserted is
    that the other, live and watching the queued Builds all along, never starts one while a
    build of the project runs (claims and the project's build slot, securebuild.daemon.slots).
    """
    config = yaml.safe_load(vm_daemon.config_file.read_text())
    config["identity"] = "vm-daemon-b"
    config["api"]["listen"] = f"127.0.0.1:{free_port()}"
    second_config = tmp_path / "daemon-b.yaml"
    second_config.write_text(yaml.safe_dump(config))
    second = DaemonProcess(second_config, tmp_path / "daemon-b.log").start()
    try:
        vm_daemon.buildconfig(
            "pair",
            {
                "runPolicy": "Parallel",
                "source": {
                    "type": "Dockerfile",
                    "dockerfile": "FROM busybox\nRUN echo ran $MARK\n",
                },
                "strategy": {"type": "Docker", "dockerStrategy": {}},
            },
        )
        names = [f"pair-{n}" for n in range(1, 5)]
        for name in names:  # started in order: pair-1 first
            started = vm_daemon.cli("start-build", "pair", "-e", f"MARK=mark-{name}")
            assert started.returncode == 0, started.stderr
        builds = [vm_daemon.wait(name, TERMINAL, timeout=900) for name in names]
    finally:
        second.stop()
    holders = []
    for name, build in zip(names, builds, strict=True):
        status = build["status"]
        assert status["phase"] == "Complete", (name, status, vm_daemon.daemon_log())
        claim = Claim.of(build)
        assert claim is not None and claim.attempt == 1, (name, claim)
        holders.append(claim.holder)
        reasons = [
            e["reason"] for e in ended_build_events(vm_daemon.admin, vm_daemon.namespace, name)
        ]
        assert sorted(reasons) == ["BuildCompleted", "BuildStarted"], (name, reasons)
        assert f"ran mark-{name}" in vm_daemon.cli("logs", name).stdout  # either replica's
    assert set(holders) <= {"vm-daemon-restarted", "vm-daemon", "vm-daemon-b"}, holders
    print(f"builds claimed by: {holders}")
    # builds_per_project 1, counted over both daemons: the runs never overlapped
    spans = sorted(
        (b["status"]["startTimestamp"], b["status"]["completionTimestamp"]) for b in builds
    )
    for (_, end), (start, _) in itertools.pairwise(spans):
        assert end <= start, spans
