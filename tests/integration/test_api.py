"""securebuild's HTTPS API against the real API server: TokenReview + SubjectAccessReview.

alice administers alice-project and bob bob-project (deploy/dev/tenants.yaml); their tokens are
real static tokens of the test API server, checked by it, and RBAC decides every access.
"""

from __future__ import annotations

import json
import ssl
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import urllib3

from securebuild.api import ApiServer
from securebuild.cli import main as cli_main
from securebuild.cluster import Kube, paths
from securebuild.cluster.claims import Claim
from securebuild.daemon import Daemon
from securebuild.daemon.config import ApiConfig
from securebuild.devenv.controlplane import ControlPlane
from securebuild.devenv.testca import TestCA
from tests.helpers.cluster import (
    build_body,
    create_namespace,
    get_build,
    kube_for,
    phase,
    unique,
    wait_for,
)
from tests.helpers.daemon import running_daemon

TERMINAL = ("Complete", "Failed", "Error", "Cancelled")


@pytest.fixture(scope="module")
def admin(controlplane: ControlPlane) -> Kube:
    kube = kube_for(controlplane, "admin")
    for ns in ("alice-project", "bob-project"):
        kube.request(
            "PATCH",
            paths.namespace(ns),
            body={"metadata": {"labels": {"securebuild.appuio.ch/enabled": "true"}}},
            content_type="application/merge-patch+json",
        )
    return kube


@pytest.fixture(scope="module")
def served(
    controlplane: ControlPlane, admin: Kube, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[Daemon, ApiServer, TestCA]]:
    tmp = tmp_path_factory.mktemp("api")
    ca = TestCA(tmp / "pki")
    cert = ca.server("api", ("127.0.0.1",))
    api = ApiConfig(listen="127.0.0.1:0", tls_cert=cert.cert, tls_key=cert.key)
    with running_daemon(controlplane, tmp / "state", "daemon-api", api=api) as daemon:
        server = daemon.start_api()
        try:
            yield daemon, server, ca
        finally:
            server.stop()


def https(ca: TestCA) -> urllib3.PoolManager:
    context = ssl.create_default_context(cafile=str(ca.files.cert))
    return urllib3.PoolManager(ssl_context=context, retries=False, timeout=30)


def call(
    served: tuple[Daemon, ApiServer, TestCA],
    method: str,
    path: str,
    token: str | None,
    **kwargs: Any,
) -> urllib3.BaseHTTPResponse:
    _daemon, server, ca = served
    headers = dict(kwargs.pop("headers", {}))
    if token is not None:
        headers["Authorization"] = f"Bearer {token}"
    return https(ca).request(method, server.url + path, headers=headers, **kwargs)


def log_path(ns: str, name: str, follow: bool = False) -> str:
    suffix = "?follow=true" if follow else ""
    return f"/apis/build.openshift.io/v1/namespaces/{ns}/builds/{name}/log{suffix}"


def create(kube: Kube, ns: str, name: str, env: dict[str, str]) -> None:
    body = build_body(ns, name)
    body["spec"]["strategy"]["dockerStrategy"]["env"] = [
        {"name": k, "value": v} for k, v in env.items()
    ]
    kube.request("POST", paths.builds(ns), body=body)


def test_health_ready_metrics(served: tuple[Daemon, ApiServer, TestCA]) -> None:
    assert call(served, "GET", "/healthz", None).status == 200
    assert call(served, "GET", "/readyz", None).status == 200
    metrics = call(served, "GET", "/metrics", None)
    assert metrics.status == 200
    for family in (
        b"securebuild_queue_wait_seconds",
        b"securebuild_builds_total",
        b"securebuild_build_stage_seconds",
        b"securebuild_api_errors_total",
        b"securebuild_cluster_api_errors_total",
    ):
        assert b"# TYPE " + family in metrics.data, family


def test_alice_follows_her_log_and_cannot_read_bobs(
    served: tuple[Daemon, ApiServer, TestCA], controlplane: ControlPlane, admin: Kube
) -> None:
    alice = kube_for(controlplane, "alice")
    bob = kube_for(controlplane, "bob")
    create(alice, "alice-project", "a-log-1", {"SLEEP": "2"})
    create(bob, "bob-project", "b-log-1", {})
    # Follow from the start: lines arrive while the build runs, the stream ends with it.
    response = call(
        served,
        "GET",
        log_path("alice-project", "a-log-1", follow=True),
        controlplane.token("alice"),
        preload_content=False,
    )
    assert response.status == 200
    text = b"".join(response.stream(1024)).decode()
    assert "Cloning source for alice-project/a-log-1" in text
    assert "Pushing image" in text  # the last step: the follow lasted until the end
    assert (
        phase(
            wait_for(
                "a-log-1 done",
                lambda: (
                    (b := get_build(admin, "alice-project", "a-log-1"))
                    and phase(b) in TERMINAL
                    and b
                ),
            )
        )
        == "Complete"
    )

    wait_for(
        "b-log-1 done",
        lambda: phase(get_build(admin, "bob-project", "b-log-1")) in TERMINAL,
        timeout=60,
    )
    denied = call(served, "GET", log_path("bob-project", "b-log-1"), controlplane.token("alice"))
    assert denied.status == 403
    status = json.loads(denied.data)
    assert status["reason"] == "Forbidden"
    assert 'User "alice" cannot get resource "builds/log"' in status["message"]
    assert b"Cloning source" not in denied.data
    denied = call(served, "GET", log_path("alice-project", "a-log-1"), controlplane.token("bob"))
    assert denied.status == 403
    own = call(served, "GET", log_path("bob-project", "b-log-1"), controlplane.token("bob"))
    assert own.status == 200 and b"Cloning source for bob-project/b-log-1" in own.data


def test_unauthenticated_callers_get_401(
    served: tuple[Daemon, ApiServer, TestCA], controlplane: ControlPlane
) -> None:
    assert call(served, "GET", log_path("alice-project", "x"), None).status == 401
    assert call(served, "GET", log_path("alice-project", "x"), "not-a-token").status == 401
    # The API server's own token of another identity is a valid user, but RBAC says no.
    daemon_token = controlplane.token("bob")
    assert call(served, "GET", log_path("alice-project", "x"), daemon_token).status == 403


def test_binary_upload_starts_a_build(
    served: tuple[Daemon, ApiServer, TestCA], controlplane: ControlPlane, admin: Kube
) -> None:
    alice = kube_for(controlplane, "alice")
    bc = {
        "apiVersion": "build.openshift.io/v1",
        "kind": "BuildConfig",
        "metadata": {"name": "upload", "namespace": "alice-project"},
        "spec": {
            "source": {"type": "Binary", "binary": {}},
            "strategy": {"type": "Docker", "dockerStrategy": {}},
            "output": {"to": {"kind": "DockerImage", "name": "127.0.0.1:5000/alice/upload:latest"}},
        },
    }
    alice.request("POST", paths.buildconfigs("alice-project"), body=bc)
    path = (
        "/apis/build.openshift.io/v1/namespaces/alice-project/buildconfigs/upload"
        "/instantiatebinary?asFile=Dockerfile"
    )
    content = b"FROM busybox\nRUN echo hello\n"
    denied = call(served, "POST", path, controlplane.token("bob"), body=content)
    assert denied.status == 403
    response = call(served, "POST", path, controlplane.token("alice"), body=content)
    assert response.status == 201, response.data
    build = json.loads(response.data)
    assert build["metadata"]["name"] == "upload-1"
    assert build["spec"]["source"]["binary"]["asFile"] == "Dockerfile"
    assert build["metadata"]["annotations"]["securebuild.appuio.ch/requested-by"] == "alice"
    done = wait_for(
        "upload-1 done",
        lambda: (b := get_build(admin, "alice-project", "upload-1")) and phase(b) in TERMINAL and b,
        timeout=60,
    )
    assert phase(done) == "Complete"
    daemon = served[0]
    log = "\n".join(daemon.log_store.log("alice-project", "upload-1").read())
    assert f"Uploaded input: {len(content)} bytes" in log
    assert not daemon.upload_path(build["metadata"]["uid"]).exists()  # removed after the run
    second = call(served, "POST", path, controlplane.token("alice"), body=b"x")
    assert json.loads(second.data)["metadata"]["name"] == "upload-2"


# -- the user CLI (start-build, logs, cancel-build) against the same daemon and API ----------


def cli(
    served: tuple[Daemon, ApiServer, TestCA],
    controlplane: ControlPlane,
    capsys: pytest.CaptureFixture[str],
    *argv: str,
    user: str = "alice",
) -> tuple[int, str, str]:
    _daemon, server, ca = served
    common = [
        "-n",
        f"{user}-project",
        "--kubeconfig",
        str(controlplane.kubeconfig(user)),
        "--api",
        server.url,
        "--api-ca",
        str(ca.files.cert),
    ]
    code = cli_main([*argv, *common])
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture(scope="module")
def cli_bc(controlplane: ControlPlane, admin: Kube) -> str:
    alice = kube_for(controlplane, "alice")
    bc = {
        "apiVersion": "build.openshift.io/v1",
        "kind": "BuildConfig",
        "metadata": {"name": "cli", "namespace": "alice-project"},
        "spec": {
            "runPolicy": "Parallel",
            "source": {"type": "Dockerfile", "dockerfile": "FROM busybox\n"},
            "strategy": {"type": "Docker", "dockerStrategy": {}},
            "output": {"to": {"kind": "DockerImage", "name": "127.0.0.1:5000/alice/cli:latest"}},
        },
    }
    alice.request("POST", paths.buildconfigs("alice-project"), body=bc)
    return "cli"


def test_cli_start_build_follow_wait_and_logs(
    served: tuple[Daemon, ApiServer, TestCA],
    controlplane: ControlPlane,
    capsys: pytest.CaptureFixture[str],
    cli_bc: str,
) -> None:
    code, out, err = cli(served, controlplane, capsys, "start-build", cli_bc, "-F", "-w")
    assert code == 0, err
    lines = out.splitlines()
    assert lines[0] == "build.build.openshift.io/cli-1 started"
    assert "Cloning source for alice-project/cli-1" in out and "Pushing image" in out
    code, out, err = cli(served, controlplane, capsys, "logs", f"bc/{cli_bc}")
    assert code == 0, err
    assert "Cloning source for alice-project/cli-1" in out
    # bob may not read alice's log through the CLI either
    _daemon, server, ca = served
    code = cli_main(
        [
            "logs",
            "cli-1",
            "-n",
            "alice-project",
            "--kubeconfig",
            str(controlplane.kubeconfig("bob")),
            "--api",
            server.url,
            "--api-ca",
            str(ca.files.cert),
        ]
    )
    _out, err = capsys.readouterr()
    assert code == 1 and "403" in err and "cannot get resource" in err


def test_cli_failed_build_and_cancel(
    served: tuple[Daemon, ApiServer, TestCA],
    controlplane: ControlPlane,
    admin: Kube,
    capsys: pytest.CaptureFixture[str],
    cli_bc: str,
) -> None:
    code, out, err = cli(served, controlplane, capsys, "start-build", cli_bc, "-e", "FAIL=1", "-w")
    name = out.split()[0].split("/")[1]
    assert code == 1
    assert f'the build alice-project/{name} status is "Failed"' in err
    code, out, err = cli(served, controlplane, capsys, "start-build", cli_bc, "-e", "SLEEP=60")
    assert code == 0, err
    name = out.split()[0].split("/")[1]
    wait_for(
        f"{name} running",
        lambda: phase(get_build(admin, "alice-project", name)) == "Running",
        timeout=60,
    )
    code, out, err = cli(served, controlplane, capsys, "cancel-build", name)
    assert code == 0, err
    assert out.splitlines() == [
        f"build.build.openshift.io/{name} marked for cancellation, waiting to be cancelled",
        f"build.build.openshift.io/{name} cancelled",
    ]


def test_log_requests_are_forwarded_to_the_replica_that_ran_the_build(
    served: tuple[Daemon, ApiServer, TestCA],
    controlplane: ControlPlane,
    admin: Kube,
    tmp_path: Path,
) -> None:
    alice = kube_for(controlplane, "alice")
    create(alice, "alice-project", "a-fwd-1", {})
    wait_for(
        "a-fwd-1 done",
        lambda: phase(get_build(admin, "alice-project", "a-fwd-1")) in TERMINAL,
        timeout=60,
    )
    _daemon, _server, ca = served
    cert = ca.server("api-b", ("127.0.0.1",))
    api = ApiConfig(
        listen="127.0.0.1:0", tls_cert=cert.cert, tls_key=cert.key, peer_ca=ca.files.cert
    )
    with running_daemon(controlplane, tmp_path / "b", "daemon-b", api=api) as other:
        server_b = other.start_api()
        try:
            assert not other.log_store.log("alice-project", "a-fwd-1").exists
            pool = https(ca)
            path = log_path("alice-project", "a-fwd-1")
            mine = pool.request(
                "GET",
                server_b.url + path,
                headers={"Authorization": f"Bearer {controlplane.token('alice')}"},
            )
            assert mine.status == 200, mine.data
            assert b"Cloning source for alice-project/a-fwd-1" in mine.data
            theirs = pool.request(
                "GET",
                server_b.url + path,
                headers={"Authorization": f"Bearer {controlplane.token('bob')}"},
            )
            assert theirs.status == 403 and b"Cloning source" not in theirs.data
        finally:
            server_b.stop()


def test_a_replica_on_the_shared_state_dir_serves_the_log_of_a_replica_that_is_gone(
    served: tuple[Daemon, ApiServer, TestCA],
    controlplane: ControlPlane,
    admin: Kube,
    tmp_path: Path,
) -> None:
    """The Deployment's replicas share their state dir, so a log outlives the replica that
    wrote it. A label of its own keeps the module's daemon away from this namespace."""
    label = "securebuild.test/shared-logs"
    ns = create_namespace(admin, unique("shared-logs"), opted_in=False, labels={label: "true"})
    _daemon, _server, ca = served
    cert = ca.server("api-shared", ("127.0.0.1",))
    api = ApiConfig(listen="127.0.0.1:0", tls_cert=cert.cert, tls_key=cert.key)
    shared = tmp_path / "shared-state"
    selector = {"namespace_selector": f"{label}=true"}
    with running_daemon(controlplane, shared, "replica-a", api=api, **selector):
        create(admin, ns, "gone-1", {})
        build = wait_for(
            "gone-1 done",
            lambda: (b := get_build(admin, ns, "gone-1")) and phase(b) in TERMINAL and b,
            timeout=60,
        )
    claim = Claim.of(build)
    assert phase(build) == "Complete" and claim is not None and claim.holder == "replica-a"
    # replica-a is gone, its API with it; replica-b on the same state dir answers
    with running_daemon(controlplane, shared, "replica-b", api=api, **selector) as other:
        server_b = other.start_api()
        try:
            answer = https(ca).request(
                "GET",
                server_b.url + log_path(ns, "gone-1"),
                headers={"Authorization": f"Bearer {controlplane.token('admin')}"},
            )
        finally:
            server_b.stop()
    assert answer.status == 200, answer.data
    assert f"Cloning source for {ns}/gone-1".encode() in answer.data
    assert b"Pushing image" in answer.data
