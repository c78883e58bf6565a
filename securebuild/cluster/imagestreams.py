"""Recording a pushed image in its ImageStream (reference 7.2), for plain registries only.

On OpenShift the integrated registry does this itself when the image is pushed (an
ImageStreamMapping), and the build system never writes ImageStreams. A plain registry (the
tests, plain Kubernetes) does not, so without this nothing would update the ImageStreamTag and
nothing triggered by it would fire. The daemon calls this only when its config switch
``record_imagestream_tags`` is on: never turn it on against OpenShift's integrated registry.

What it writes is what OpenShift's API server appends: a TagEvent at the head of
``status.tags[<tag>].items`` with ``dockerImageReference`` ``<registry>/<ns>/<name>@<digest>``
and ``image`` the digest; the stream is created if it does not exist (as the registry would),
and ``status.dockerImageRepository`` is set.
"""

from __future__ import annotations

import datetime as dt
import logging
from typing import Any

from securebuild.cluster import paths
from securebuild.cluster.client import MERGE_PATCH, ApiError, Kube
from securebuild.model.status import format_timestamp

logger = logging.getLogger(__name__)

RETRIES = 10


def record_push(
    kube: Kube, registry: str, namespace: str, stream: str, tag: str, digest: str
) -> dict[str, Any]:
    """Append the pushed image to ``namespace/stream:tag``; return the stored ImageStream."""
    path = paths.imagestream(namespace, stream)
    repository = f"{registry}/{namespace}/{stream}"
    for _ in range(RETRIES):
        try:
            current: dict[str, Any] = kube.get(path)
        except ApiError as exc:
            if not exc.not_found:
                raise
            try:
                current = kube.request(
                    "POST",
                    paths.imagestreams(namespace),
                    body={
                        "apiVersion": "image.openshift.io/v1",
                        "kind": "ImageStream",
                        "metadata": {"name": stream, "namespace": namespace},
                    },
                )
            except ApiError as create_exc:
                if create_exc.status != 409:
                    raise
                continue
        status = dict(current.get("status") or {})
        tags = [dict(t) for t in status.get("tags") or []]
        generation = int((current.get("metadata") or {}).get("generation") or 1)
        event = {
            "created": format_timestamp(dt.datetime.now(dt.UTC)),
            "dockerImageReference": f"{repository}@{digest}",
            "image": digest,
            "generation": generation,
        }
        for entry in tags:
            if entry.get("tag") == tag:
                items = [i for i in entry.get("items") or [] if i.get("image") != digest]
                entry["items"] = [event, *items]
                break
        else:
            tags.append({"tag": tag, "items": [event]})
        body = {
            "metadata": {"resourceVersion": current["metadata"]["resourceVersion"]},
            "status": {"dockerImageRepository": repository, "tags": tags},
        }
        try:
            stored: dict[str, Any] = kube.request(
                "PATCH", path + "/status", body=body, content_type=MERGE_PATCH
            )
            return stored
        except ApiError as exc:
            if not exc.conflict:
                raise
    raise ApiError(409, "PATCH", path + "/status", {"message": "still conflicting"})
