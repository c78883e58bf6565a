"""The ground the daemon stands on is real: a kube-apiserver with OpenShift's build types as CRDs.

Each test asserts an API-server behaviour the daemon depends on (watch, 409, 410, the status
subresource, RBAC between tenants, TokenReview/SubjectAccessReview, restart on the same data).
"""

from __future__ import annotations

import json
import socket
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import kubernetes
import pytest
import urllib3
import yaml
from kubernetes.dynamic.exceptions import ConflictError, ForbiddenError
from openshift.dynamic import DynamicClient

from securebuild.devenv import controlplane as controlplane_module
from securebuild.devenv.controlplane import ControlPlane

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "examples" / "openshift-docker-build.yaml"
BUILDS = "/apis/build.openshift.io/v1/namespaces/{ns}/builds"


def client(plane: ControlPlane, identity: str) -> DynamicClient:
    """The `openshift` DynamicClient, configured from the identity's kubeconfig file."""
    api = kubernetes.config.new_client_from_config(config_file=str(plane.kubeconfig(identity)))
    return DynamicClient(api)


def builds(dyn: DynamicClient) -> Any:
    return dyn.resources.get(api_version="build.openshift.io/v1", kind="Build")


def new_build(name: str | None = None, **spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": "build.openshift.io/v1",
        "kind": "Build",
        "metadata": {"name": name or f"b-{uuid.uuid4().hex[:8]}"},
        "spec": {
            "strategy": {"type": "Docker", "dockerStrategy": {}},
            "source": {"type": "Dockerfile", "dockerfile": "FROM busybox\n"},
            **spec,
        },
    }


def missing_fields(expected: Any, actual: Any, path: str = "") -> list[str]:
    """Paths where ``actual`` lacks or differs from ``expected`` (null values are not sent)."""
    if isinstance(expected, dict):
        if not isinstance(actual, dict):
            return [f"{path}: {actual!r} is not a mapping"]
        problems: list[str] = []
        for key, value in expected.items():
            if value is None:
                continue
            problems += missing_fields(value, actual.get(key), f"{path}.{key}")
        return problems
    if isinstance(expected, list):
        if not isinstance(actual, list) or len(actual) != len(expected):
            return [f"{path}: {actual!r} differs from {expected!r}"]
        return [
            p for i, e in enumerate(expected) for p in missing_fields(e, actual[i], f"{path}[{i}]")
        ]
    return [] if expected == actual else [f"{path}: {actual!r} != {expected!r}"]


def test_dynamic_client_lists_and_watches_builds(controlplane: ControlPlane) -> None:
    api = builds(client(controlplane, "alice"))
    first = api.create(body=new_build(), namespace="alice-project")
    listed = api.get(namespace="alice-project")
    assert first.metadata.name in [item.metadata.name for item in listed.items]

    second = api.create(body=new_build(), namespace="alice-project")
    events = []
    for event in api.watch(
        namespace="alice-project", resource_version=listed.metadata.resourceVersion, timeout=10
    ):
        events.append((event["type"], event["object"].metadata.name))
        if event["object"].metadata.name == second.metadata.name:
            break
    assert ("ADDED", second.metadata.name) in events


def test_openshift_yaml_applies_unchanged_with_strict_validation(
    controlplane: ControlPlane,
) -> None:
    """Every field of an OpenShift BuildConfig/Build/ImageStream is known to the CRDs."""
    docs = [d for d in yaml.safe_load_all(EXAMPLE.read_text()) if d]
    assert {d["kind"] for d in docs} == {"ImageStream", "BuildConfig", "Build"}
    suffix = uuid.uuid4().hex[:6]
    for doc in docs:
        doc["metadata"]["name"] += f"-{suffix}"
        group_version, plural = {
            "ImageStream": ("image.openshift.io/v1", "imagestreams"),
            "BuildConfig": ("build.openshift.io/v1", "buildconfigs"),
            "Build": ("build.openshift.io/v1", "builds"),
        }[doc["kind"]]
        path = f"/apis/{group_version}/namespaces/alice-project/{plural}"
        # Strict field validation (kubectl's default) rejects any field the schema lacks.
        status, created = controlplane.api_request(
            "POST", path + "?fieldValidation=Strict", identity="alice", body=doc
        )
        assert status == 201, created
        status, fetched = controlplane.api_request(
            "GET", f"{path}/{doc['metadata']['name']}", identity="alice"
        )
        assert status == 200
        assert missing_fields(doc["spec"], fetched["spec"]) == []
        assert missing_fields(doc["metadata"]["labels"], fetched["metadata"]["labels"]) == []

    # The check has teeth: a field OpenShift does not have is refused.
    bogus = new_build()
    bogus["spec"]["strategy"]["dockerStrategy"]["noSuchField"] = True
    status, answer = controlplane.api_request(
        "POST",
        BUILDS.format(ns="alice-project") + "?fieldValidation=Strict",
        identity="alice",
        body=bogus,
    )
    assert status == 400
    assert "noSuchField" in answer["message"]


def test_the_daemon_deployment_is_valid_for_the_api_server(controlplane: ControlPlane) -> None:
    """deploy/daemon/daemon.yaml as the operator applies it: every object passes the API
    server's strict validation and admission (server-side dry run: nothing is created)."""
    status, _ = controlplane.api_request(
        "POST",
        "/api/v1/namespaces",
        identity="admin",
        body={"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "securebuild"}},
    )
    assert status in (201, 409)
    docs = [d for d in yaml.safe_load_all((ROOT / "deploy/daemon/daemon.yaml").read_text()) if d]
    collections = {
        "ConfigMap": "/api/v1/namespaces/securebuild/configmaps",
        "PersistentVolumeClaim": "/api/v1/namespaces/securebuild/persistentvolumeclaims",
        "Deployment": "/apis/apps/v1/namespaces/securebuild/deployments",
        "Service": "/api/v1/namespaces/securebuild/services",
    }
    assert sorted(d["kind"] for d in docs) == sorted(collections)
    for doc in docs:
        status, answer = controlplane.api_request(
            "POST",
            collections[doc["kind"]] + "?dryRun=All&fieldValidation=Strict",
            identity="admin",
            body=doc,
        )
        assert status == 201, (doc["kind"], answer)
    deployment = next(d for d in docs if d["kind"] == "Deployment")
    volumes = {v["name"]: v for v in deployment["spec"]["template"]["spec"]["volumes"]}
    # the replicas share one state dir (VM records, CAs, locks, logs)
    claim = volumes["state"]["persistentVolumeClaim"]["claimName"]
    pvc = next(d for d in docs if d["kind"] == "PersistentVolumeClaim")
    assert claim == pvc["metadata"]["name"] and pvc["spec"]["accessModes"] == ["ReadWriteMany"]


def test_status_round_trips_every_field(controlplane: ControlPlane) -> None:
    api = builds(client(controlplane, "daemon"))
    build = builds(client(controlplane, "alice")).create(
        body=new_build(), namespace="alice-project"
    )
    status = {
        "phase": "Failed",
        "cancelled": False,
        "reason": "DockerBuildFailed",
        "message": "Dockerfile build strategy has failed.",
        "startTimestamp": "2026-01-02T03:04:05Z",
        "completionTimestamp": "2026-01-02T03:05:10Z",
        "duration": 65000000000,
        "outputDockerImageReference": "registry.example.com/alice-project/hello:latest",
        "config": {"kind": "BuildConfig", "name": "hello", "namespace": "alice-project"},
        "output": {"to": {"imageDigest": "sha256:" + "ab" * 32}},
        "stages": [
            {
                "name": "FetchInputs",
                "startTime": "2026-01-02T03:04:06Z",
                "durationMilliseconds": 1234,
                "steps": [
                    {
                        "name": "FetchGitSource",
                        "startTime": "2026-01-02T03:04:06Z",
                        "durationMilliseconds": 1200,
                    }
                ],
            }
        ],
        "logSnippet": "step 3/4 : RUN make\nmake: *** [all] Error 2",
        "conditions": [
            {
                "type": "Failed",
                "status": "True",
                "lastUpdateTime": "2026-01-02T03:05:10Z",
                "lastTransitionTime": "2026-01-02T03:05:10Z",
                "reason": "DockerBuildFailed",
                "message": "Dockerfile build strategy has failed.",
            }
        ],
    }
    body = build.to_dict()
    body["status"] = status
    updated = api.status.replace(body=body)
    assert missing_fields(status, updated.to_dict()["status"]) == []


def test_status_subresource_separates_spec_and_status(controlplane: ControlPlane) -> None:
    alice = builds(client(controlplane, "alice"))
    daemon = builds(client(controlplane, "daemon"))
    build = alice.create(body=new_build(), namespace="alice-project").to_dict()

    # Through /status, a changed spec is ignored and the status is written.
    body = json.loads(json.dumps(build))
    body["spec"]["serviceAccount"] = "changed-through-status"
    body["status"] = {"phase": "Running"}
    after_status = daemon.status.replace(body=body).to_dict()
    assert after_status["status"]["phase"] == "Running"
    assert "serviceAccount" not in after_status["spec"]

    # Through the main resource, a changed status is ignored and the spec is written.
    body = json.loads(json.dumps(after_status))
    body["status"]["phase"] = "Complete"
    body["spec"]["serviceAccount"] = "builder"
    after_main = daemon.replace(body=body).to_dict()
    assert after_main["status"]["phase"] == "Running"
    assert after_main["spec"]["serviceAccount"] == "builder"


def test_update_with_stale_resource_version_is_409(controlplane: ControlPlane) -> None:
    api = builds(client(controlplane, "daemon"))
    created = builds(client(controlplane, "alice")).create(
        body=new_build(), namespace="alice-project"
    )
    stale = created.to_dict()
    fresh = json.loads(json.dumps(stale))
    fresh["metadata"].setdefault("annotations", {})["securebuild.io/claim"] = "daemon-a"
    api.replace(body=fresh)

    stale["metadata"].setdefault("annotations", {})["securebuild.io/claim"] = "daemon-b"
    with pytest.raises(ConflictError) as conflict:
        api.replace(body=stale)
    assert conflict.value.status == 409
    current = api.get(name=created.metadata.name, namespace="alice-project")
    assert current.metadata.annotations["securebuild.io/claim"] == "daemon-a"


def _watch_events(plane: ControlPlane, path: str, identity: str) -> Iterator[dict[str, Any]]:
    """Raw watch stream, one decoded event per line."""
    pool = plane.api_pool()
    response = pool.request(
        "GET",
        plane.api_url + path,
        headers={"Authorization": f"Bearer {plane.token(identity)}"},
        preload_content=False,
        timeout=urllib3.Timeout(connect=5, read=15),
    )
    assert response.status == 200, response.data
    try:
        buffer = b""
        for chunk in response.stream(1024):
            buffer += chunk
            while b"\n" in buffer:
                line, buffer = buffer.split(b"\n", 1)
                yield json.loads(line)
    finally:
        response.release_conn()


def test_watch_from_compacted_resource_version_is_410(controlplane: ControlPlane) -> None:
    api = builds(client(controlplane, "daemon"))
    alice = builds(client(controlplane, "alice"))
    old = alice.create(body=new_build(), namespace="alice-project").metadata.resourceVersion
    for _ in range(3):
        alice.create(body=new_build(), namespace="alice-project")
    controlplane.compact_etcd()

    path = BUILDS.format(ns="alice-project") + f"?watch=1&resourceVersion={old}"
    event = next(_watch_events(controlplane, path, "daemon"))
    assert event["type"] == "ERROR"
    assert event["object"]["code"] == 410
    assert event["object"]["reason"] in ("Expired", "Gone")

    # A fresh list gives a resourceVersion that can be watched again (the daemon's recovery).
    rv = api.get(namespace="alice-project").metadata.resourceVersion
    marker = alice.create(body=new_build(), namespace="alice-project").metadata.name
    names = []
    for item in _watch_events(
        controlplane, BUILDS.format(ns="alice-project") + f"?watch=1&resourceVersion={rv}", "daemon"
    ):
        names.append(item["object"]["metadata"]["name"])
        if names[-1] == marker:
            break
    assert marker in names


def test_tenants_see_only_their_own_project(controlplane: ControlPlane) -> None:
    alice = builds(client(controlplane, "alice"))
    bob = builds(client(controlplane, "bob"))
    bob.create(body=new_build(), namespace="bob-project")
    assert alice.get(namespace="alice-project").kind == "BuildList"

    with pytest.raises(ForbiddenError) as forbidden:
        alice.get(namespace="bob-project")
    assert forbidden.value.status == 403
    with pytest.raises(ForbiddenError):
        alice.get()  # all namespaces
    with pytest.raises(ForbiddenError):
        bob.create(body=new_build(), namespace="alice-project")


def _review(plane: ControlPlane, kind: str, spec: dict[str, Any]) -> dict[str, Any]:
    group = "authentication.k8s.io" if kind == "TokenReview" else "authorization.k8s.io"
    plural = "tokenreviews" if kind == "TokenReview" else "subjectaccessreviews"
    status, body = plane.api_request(
        "POST",
        f"/apis/{group}/v1/{plural}",
        identity="daemon",  # the daemon's own RBAC must allow both reviews
        body={"apiVersion": f"{group}/v1", "kind": kind, "spec": spec},
    )
    assert status == 201, body
    result: dict[str, Any] = body["status"]
    return result


def test_token_review_and_subject_access_review_answer_for_alice(
    controlplane: ControlPlane,
) -> None:
    review = _review(controlplane, "TokenReview", {"token": controlplane.token("alice")})
    assert review["authenticated"] is True
    assert review["user"]["username"] == "alice"
    assert "system:authenticated" in review["user"]["groups"]

    bad = _review(controlplane, "TokenReview", {"token": "not-a-token"})
    assert not bad.get("authenticated")

    def may_read_log(namespace: str) -> bool:
        answer = _review(
            controlplane,
            "SubjectAccessReview",
            {
                "user": review["user"]["username"],
                "groups": review["user"]["groups"],
                "resourceAttributes": {
                    "namespace": namespace,
                    "verb": "get",
                    "group": "build.openshift.io",
                    "resource": "builds",
                    "subresource": "log",
                    "name": "hello-1",
                },
            },
        )
        return bool(answer["allowed"])

    assert may_read_log("alice-project") is True
    assert may_read_log("bob-project") is False


def test_service_account_tokens_authenticate(controlplane: ControlPlane) -> None:
    name = f"sa-{uuid.uuid4().hex[:6]}"
    status, body = controlplane.api_request(
        "POST",
        "/api/v1/namespaces/alice-project/serviceaccounts",
        body={"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": name}},
    )
    assert status == 201, body
    status, body = controlplane.api_request(
        "POST",
        f"/api/v1/namespaces/alice-project/serviceaccounts/{name}/token",
        body={
            "apiVersion": "authentication.k8s.io/v1",
            "kind": "TokenRequest",
            "spec": {"expirationSeconds": 3600},
        },
    )
    assert status == 201, body
    review = _review(controlplane, "TokenReview", {"token": body["status"]["token"]})
    assert review["authenticated"] is True
    assert review["user"]["username"] == f"system:serviceaccount:alice-project:{name}"


def test_daemon_has_least_privilege(controlplane: ControlPlane) -> None:
    def allowed(verb: str, resource: str, namespace: str = "", group: str = "") -> bool:
        attributes = {"verb": verb, "resource": resource, "group": group}
        if namespace:
            attributes["namespace"] = namespace
        status, body = controlplane.api_request(
            "POST",
            "/apis/authorization.k8s.io/v1/subjectaccessreviews",
            body={
                "apiVersion": "authorization.k8s.io/v1",
                "kind": "SubjectAccessReview",
                "spec": {
                    "user": controlplane.identities["daemon"].user,
                    "groups": list(controlplane.identities["daemon"].groups),
                    "resourceAttributes": attributes,
                },
            },
        )
        assert status == 201, body
        return bool(body["status"]["allowed"])

    assert allowed("watch", "builds", group="build.openshift.io")
    assert allowed("update", "builds/status", "bob-project", "build.openshift.io")
    assert allowed("get", "secrets", "bob-project")
    assert allowed("create", "events", "bob-project")
    assert not allowed("delete", "builds", "bob-project", "build.openshift.io")
    assert not allowed("list", "secrets", "bob-project")
    assert not allowed("create", "pods", "bob-project")


def test_printer_columns_match_oc_get_builds(controlplane: ControlPlane) -> None:
    builds(client(controlplane, "alice")).create(body=new_build(), namespace="alice-project")
    pool = controlplane.api_pool()
    response = pool.request(
        "GET",
        controlplane.api_url + BUILDS.format(ns="alice-project"),
        headers={
            "Authorization": f"Bearer {controlplane.token('alice')}",
            "Accept": "application/json;as=Table;v=v1;g=meta.k8s.io",
        },
    )
    table = json.loads(response.data)
    names = [c["name"] for c in table["columnDefinitions"]]
    assert names[:5] == ["Name", "Type", "From", "Status", "Started"]
    assert table["rows"][0]["cells"][1] == "Docker"


def test_restart_on_the_same_data_dir_keeps_data(tmp_path: Path) -> None:
    started = time.monotonic()
    plane = ControlPlane(tmp_path / "cp").start()
    first_start = time.monotonic() - started
    try:
        api = builds(client(plane, "alice"))
        created = api.create(body=new_build(serviceAccount="keep-me"), namespace="alice-project")

        plane.stop_apiserver()
        plane.start_apiserver()
        again = builds(client(plane, "alice")).get(
            name=created.metadata.name, namespace="alice-project"
        )
        assert again.metadata.uid == created.metadata.uid
    finally:
        plane.stop()

    started = time.monotonic()
    with ControlPlane(tmp_path / "cp") as second:
        restart = time.monotonic() - started
        # Same tokens and CA: the old kubeconfig of alice still works (port may differ).
        fetched = builds(client(second, "alice")).get(
            name=created.metadata.name, namespace="alice-project"
        )
        assert fetched.metadata.uid == created.metadata.uid
        assert fetched.spec.serviceAccount == "keep-me"
    print(f"\ncontrol plane start {first_start:.1f} s, restart on same data {restart:.1f} s")
    assert first_start < 30
    assert restart < 30


def test_a_port_taken_in_between_is_retried(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Another program binding the chosen port before etcd does costs a retry, not a failure."""
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", 0))
        squatter.listen()
        taken = squatter.getsockname()[1]
        real_free_port = controlplane_module.free_port
        ports = iter([taken])
        monkeypatch.setattr(
            controlplane_module, "free_port", lambda: next(ports, None) or real_free_port()
        )
        with ControlPlane(tmp_path / "cp") as plane:
            assert plane.etcd_port != taken
            assert "address already in use" in (plane.log_dir / "etcd.log").read_text()
            status, _ = plane.api_request("GET", BUILDS.format(ns="alice-project"))
            assert status == 200
