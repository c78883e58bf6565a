"""REST paths of the objects securebuild reads and writes."""

from __future__ import annotations

from securebuild.cluster.client import quote

BUILD_API = "/apis/build.openshift.io/v1"
IMAGE_API = "/apis/image.openshift.io/v1"


def builds(namespace: str | None = None) -> str:
    if namespace is None:
        return f"{BUILD_API}/builds"
    return f"{BUILD_API}/namespaces/{quote(namespace)}/builds"


def build(namespace: str, name: str) -> str:
    return f"{builds(namespace)}/{quote(name)}"


def build_status(namespace: str, name: str) -> str:
    return f"{build(namespace, name)}/status"


def buildconfigs(namespace: str) -> str:
    return f"{BUILD_API}/namespaces/{quote(namespace)}/buildconfigs"


def buildconfig(namespace: str, name: str) -> str:
    return f"{buildconfigs(namespace)}/{quote(name)}"


def namespaces() -> str:
    return "/api/v1/namespaces"


def namespace(name: str) -> str:
    return f"/api/v1/namespaces/{quote(name)}"


def secret(namespace: str, name: str) -> str:
    return f"/api/v1/namespaces/{quote(namespace)}/secrets/{quote(name)}"


def events(namespace: str) -> str:
    return f"/api/v1/namespaces/{quote(namespace)}/events"


def imagestreams(namespace: str | None = None) -> str:
    if namespace is None:
        return f"{IMAGE_API}/imagestreams"
    return f"{IMAGE_API}/namespaces/{quote(namespace)}/imagestreams"


def imagestream(namespace: str, name: str) -> str:
    return f"{imagestreams(namespace)}/{quote(name)}"


def configmap(namespace: str, name: str) -> str:
    return f"/api/v1/namespaces/{quote(namespace)}/configmaps/{quote(name)}"
