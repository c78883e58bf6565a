"""Small helpers for tests that talk to the test control plane (tests/fixtures/controlplane.py)."""

from __future__ import annotations

import secrets
import time
from collections.abc import Callable
from typing import Any

from securebuild.cluster import ClusterAccess, Kube, paths
from securebuild.devenv.controlplane import ControlPlane

OPT_IN_LABEL = "securebuild.appuio.ch/enabled"


def kube_for(plane: ControlPlane, identity: str, **kwargs: Any) -> Kube:
    return Kube.from_access(ClusterAccess(kubeconfig=plane.kubeconfig(identity)), **kwargs)


def unique(prefix: str) -> str:
    return f"{prefix}-{secrets.token_hex(3)}"


def create_namespace(
    admin: Kube, name: str, *, opted_in: bool = True, labels: dict[str, str] | None = None
) -> str:
    """``name`` with the default opt-in label (unless not ``opted_in``) and ``labels``."""
    labels = {**({OPT_IN_LABEL: "true"} if opted_in else {}), **(labels or {})}
    admin.request(
        "POST",
        paths.namespaces(),
        body={
            "apiVersion": "v1",
            "kind": "Namespace",
            "metadata": {"name": name, "labels": labels},
        },
    )
    return name


def build_body(
    namespace: str,
    name: str,
    *,
    bc: str | None = None,
    number: int | None = None,
    policy: str | None = None,
    strategy: str = "Docker",
    deadline: int | None = None,
    output: str = "127.0.0.1:5000/test/app:latest",
) -> dict[str, Any]:
    labels: dict[str, str] = {}
    annotations: dict[str, str] = {}
    if bc:
        labels["openshift.io/build-config.name"] = bc
        labels["buildconfig"] = bc
        annotations["openshift.io/build-config.name"] = bc
    if number is not None:
        annotations["openshift.io/build.number"] = str(number)
    if policy:
        labels["openshift.io/build.start-policy"] = policy
    strategy_body: dict[str, Any] = {"type": strategy}
    if strategy == "Docker":
        strategy_body["dockerStrategy"] = {}
    else:
        strategy_body["sourceStrategy"] = {"from": {"kind": "DockerImage", "name": "x"}}
    spec: dict[str, Any] = {
        "source": {"type": "Dockerfile", "dockerfile": "FROM busybox\nRUN true\n"},
        "strategy": strategy_body,
        "output": {"to": {"kind": "DockerImage", "name": output}},
    }
    if deadline is not None:
        spec["completionDeadlineSeconds"] = deadline
    return {
        "apiVersion": "build.openshift.io/v1",
        "kind": "Build",
        "metadata": {
            "name": name,
            "namespace": namespace,
            "labels": labels,
            "annotations": annotations,
        },
        "spec": spec,
    }


def create_build(kube: Kube, namespace: str, name: str, **kwargs: Any) -> dict[str, Any]:
    body = build_body(namespace, name, **kwargs)
    result: dict[str, Any] = kube.request("POST", paths.builds(namespace), body=body)
    return result


def get_build(kube: Kube, namespace: str, name: str) -> dict[str, Any]:
    result: dict[str, Any] = kube.get(paths.build(namespace, name))
    return result


def build_events(kube: Kube, namespace: str, name: str) -> list[dict[str, Any]]:
    items = kube.get(paths.events(namespace), fieldSelector=f"involvedObject.name={name}").get(
        "items", []
    )
    return sorted(items, key=lambda e: e["metadata"]["creationTimestamp"])


#: The events of the terminal phases (OpenShift's build controller, and ours, send one of them).
END_EVENTS = ("BuildCompleted", "BuildFailed", "BuildCancelled")


def ended_build_events(
    kube: Kube, namespace: str, name: str, timeout: float = 30.0
) -> list[dict[str, Any]]:
    """The events of a Build that has reached a terminal phase, once its end event is there.

    The daemon records an event after the status write that changed the phase (as OpenShift's
    controller does), so a test that has just seen the terminal phase may list the events
    before the last one exists. After ``timeout`` without an end event, the events as they are:
    the caller's assertion then says what is missing.
    """
    deadline = time.monotonic() + timeout
    while True:
        events = build_events(kube, namespace, name)
        if any(e.get("reason") in END_EVENTS for e in events) or time.monotonic() >= deadline:
            return events
        time.sleep(0.2)


def wait_for(
    what: str, check: Callable[[], Any], timeout: float = 30.0, interval: float = 0.1
) -> Any:
    """Poll ``check`` until it returns something truthy; fail with ``what`` on timeout."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        last = check()
        if last:
            return last
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what} (last: {last!r})")


def phase(build: dict[str, Any]) -> str:
    return str((build.get("status") or {}).get("phase") or "New")
