"""Creating a Build from a BuildConfig as OpenShift's ``instantiate`` does (reference 1.6, 10).

On the CRD test cluster and plain Kubernetes there is no ``instantiate`` subresource, so
``securebuild start-build`` and the binary upload endpoint do its work: take the next build
number by a conditional update of the BuildConfig's ``status.lastVersion`` (two concurrent
starts never get the same number), generate the Build with :mod:`securebuild.model.generate`,
create it, and write its initial status (phase New and ``status.config``).
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Mapping
from typing import Any

from securebuild.cluster import paths
from securebuild.cluster.client import MERGE_PATCH, ApiError, Kube
from securebuild.model import BuildConfig
from securebuild.model.generate import BuildRequest, generate_build
from securebuild.model.status import format_timestamp

logger = logging.getLogger(__name__)

NUMBER_RETRIES = 10


def next_build_number(kube: Kube, namespace: str, name: str) -> tuple[int, dict[str, Any]]:
    """Increment ``status.lastVersion`` with a resourceVersion precondition; retry conflicts."""
    for _ in range(NUMBER_RETRIES):
        bc: dict[str, Any] = kube.get(paths.buildconfig(namespace, name))
        number = int((bc.get("status") or {}).get("lastVersion") or 0) + 1
        try:
            stored: dict[str, Any] = kube.request(
                "PATCH",
                paths.buildconfig(namespace, name) + "/status",
                body={
                    "metadata": {"resourceVersion": bc["metadata"]["resourceVersion"]},
                    "status": {"lastVersion": number},
                },
                content_type=MERGE_PATCH,
            )
        except ApiError as exc:
            if exc.conflict:
                continue
            raise
        return number, stored
    raise ApiError(409, "PATCH", paths.buildconfig(namespace, name), {"message": "busy"})


def instantiate(
    kube: Kube,
    namespace: str,
    name: str,
    request: BuildRequest | None = None,
    *,
    annotations: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    """Create the next Build of BuildConfig ``namespace/name``; return it as stored."""
    number, bc_json = next_build_number(kube, namespace, name)
    bc = BuildConfig.from_json(bc_json)
    now = format_timestamp(dt.datetime.now(dt.UTC))
    build = generate_build(bc, number=number, request=request, now=now).to_json()
    status = build.pop("status", {})
    if annotations:
        build["metadata"].setdefault("annotations", {}).update(annotations)
    created: dict[str, Any] = kube.request("POST", paths.builds(namespace), body=build)
    try:
        created = kube.request(
            "PATCH",
            paths.build_status(namespace, created["metadata"]["name"]),
            body={"status": status},
            content_type=MERGE_PATCH,
        )
    except ApiError as exc:  # a user without builds/status: the daemon treats no phase as New
        logger.info("initial status of %s/%s not written: %s", namespace, name, exc)
    return created
