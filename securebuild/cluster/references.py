"""Resolving what a Build refers to in the cluster, as OpenShift's build controller does.

OpenShift hands the build pod a ``BUILD`` JSON in which image references are already resolved
to pull specs and ``env[].valueFrom`` to plain values (reference sections 2 and 4). The builder
in the VM never talks to the cluster, so the daemon does the same here and gives the pipeline
a Build copy that only holds ``DockerImage`` references and plain values. The Build object in
the API server is not changed.
"""

from __future__ import annotations

import copy
import logging
from collections.abc import Mapping
from typing import Any

from securebuild.cluster import paths
from securebuild.cluster.client import ApiError, Kube
from securebuild.cluster.secrets import SecretLookup
from securebuild.errors import SecurebuildError

logger = logging.getLogger(__name__)


class UnresolvedImage(SecurebuildError):
    """An ImageStreamTag or ImageStreamImage does not resolve to a pull spec (yet)."""


class UnresolvedEnv(SecurebuildError):
    """An ``env[].valueFrom`` cannot be resolved; the message is OpenShift's detail text."""


def _stream(kube: Kube, namespace: str, name: str) -> dict[str, Any] | None:
    try:
        stream: dict[str, Any] = kube.get(paths.imagestream(namespace, name))
    except ApiError as exc:
        if exc.not_found:
            return None
        raise
    return stream


def resolve_image(kube: Kube, ref: Mapping[str, Any], namespace: str) -> str:
    """The pull spec of an ObjectReference (``from``): DockerImage, ImageStreamTag or
    ImageStreamImage. The latest item of a tag's history wins, as in OpenShift."""
    kind = ref.get("kind") or "DockerImage"
    name = str(ref.get("name") or "")
    if kind == "DockerImage":
        return name
    ns = str(ref.get("namespace") or namespace)
    if kind == "ImageStreamTag":
        stream_name, _, tag = name.partition(":")
        stream = _stream(kube, ns, stream_name)
        for entry in ((stream or {}).get("status") or {}).get("tags") or []:
            items = entry.get("items") or []
            if entry.get("tag") == (tag or "latest") and items:
                return str(items[0]["dockerImageReference"])
        for entry in ((stream or {}).get("spec") or {}).get("tags") or []:
            source = entry.get("from") or {}
            if entry.get("name") == (tag or "latest") and source.get("kind") == "DockerImage":
                return str(source["name"])
        raise UnresolvedImage(f"ImageStreamTag {ns}/{name} has no image")
    if kind == "ImageStreamImage":
        stream_name, _, digest = name.partition("@")
        stream = _stream(kube, ns, stream_name)
        repository = ((stream or {}).get("status") or {}).get("dockerImageRepository")
        if not repository or not digest:
            raise UnresolvedImage(f"ImageStreamImage {ns}/{name} cannot be resolved")
        return f"{repository}@{digest}"
    raise UnresolvedImage(f"kind {kind} is not an image reference")


def _env_value(lookup: SecretLookup, namespace: str, item: Mapping[str, Any]) -> str:
    source = item.get("valueFrom") or {}
    for field, getter, what in (
        ("secretKeyRef", lookup.get, "secret"),
        ("configMapKeyRef", lookup.config_map, "configmap"),
    ):
        ref = source.get(field)
        if ref is None:
            continue
        name, key = str(ref.get("name") or ""), str(ref.get("key") or "")
        found = getter(namespace, name)
        if found is None or key not in found.data:
            if ref.get("optional"):
                return ""
            raise UnresolvedEnv(f'{what} "{name}" or its key "{key}" not found')
        return found.data[key].decode("utf-8", "replace")
    raise UnresolvedEnv(f"env {item.get('name')}: only secretKeyRef and configMapKeyRef resolve")


def resolve_build(
    kube: Kube, build: Mapping[str, Any], output_reference: str | None
) -> dict[str, Any]:
    """A copy of ``build`` with every cluster reference resolved (see the module docstring).

    Raises :class:`UnresolvedImage` or :class:`UnresolvedEnv`.
    """
    resolved: dict[str, Any] = copy.deepcopy(dict(build))
    namespace = str(resolved["metadata"]["namespace"])
    spec = resolved.setdefault("spec", {})
    to = (spec.get("output") or {}).get("to")
    if to and to.get("name") and output_reference:
        spec["output"]["to"] = {"kind": "DockerImage", "name": output_reference}
    docker = (spec.get("strategy") or {}).get("dockerStrategy") or {}
    if (docker.get("from") or {}).get("name"):
        docker["from"] = {
            "kind": "DockerImage",
            "name": resolve_image(kube, docker["from"], namespace),
        }
    for image in (spec.get("source") or {}).get("images") or []:
        if (image.get("from") or {}).get("name"):
            image["from"] = {
                "kind": "DockerImage",
                "name": resolve_image(kube, image["from"], namespace),
            }
    lookup = SecretLookup(kube)
    for item in docker.get("env") or []:
        if item.get("valueFrom"):
            item["value"] = _env_value(lookup, namespace, item)
            del item["valueFrom"]
    return resolved
