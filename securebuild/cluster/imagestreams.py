"""Resolving a Build's ImageStreamTag output, and recording a pushed image in its ImageStream.

Resolving (reference 1.4 ``to`` and 2.2): OpenShift's build controller pushes an
ImageStreamTag output to ``<stream.status.dockerImageRepository>:<tag>``; the stream must exist
(in ``to.namespace``, else the Build's namespace), or the Build waits in ``New`` with reason
``InvalidOutputReference``. securebuild uses the stream's ``dockerImageRepository`` when it is
set and otherwise the daemon's configured ``output_registry`` (``<registry>/<ns>/<stream>``),
because a plain registry does not fill that field.

Recording (reference 7.2), for plain registries only.

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
from collections.abc import Mapping
from typing import Any

from securebuild.cluster import paths
from securebuild.cluster.client import MERGE_PATCH, ApiError, Kube
from securebuild.errors import SecurebuildError
from securebuild.model.status import format_timestamp

logger = logging.getLogger(__name__)

RETRIES = 10


class UnresolvedOutput(SecurebuildError):
    """The output ImageStreamTag cannot be resolved (yet): the Build waits in New."""

    def __init__(self, message: str, stream: str, *, registry_missing: bool = False) -> None:
        super().__init__(message)
        self.stream = stream  # "namespace/name" of the ImageStream
        #: The stream exists but nothing says where its images go (OpenShift: the integrated
        #: registry is not configured; event ``InvalidOutput``).
        self.registry_missing = registry_missing


def resolve_output(kube: Kube, build: Mapping[str, Any], registry: str | None) -> str | None:
    """``status.outputDockerImageReference`` for ``build``: None when it has no output.

    Raises :class:`UnresolvedOutput` when the output is an ImageStreamTag whose stream does not
    exist, or which has no repository (neither ``status.dockerImageRepository`` nor
    ``registry``).
    """
    to = ((build.get("spec") or {}).get("output") or {}).get("to") or {}
    kind, name = to.get("kind"), to.get("name")
    if not name:
        return None
    if kind != "ImageStreamTag":
        return str(name)  # DockerImage (validation refuses other kinds)
    namespace = str(to.get("namespace") or build["metadata"]["namespace"])
    stream_name, _, tag = str(name).partition(":")
    try:
        stream: dict[str, Any] = kube.get(paths.imagestream(namespace, stream_name))
    except ApiError as exc:
        if exc.not_found:
            raise UnresolvedOutput(
                f"the referenced output image stream {namespace}/{stream_name} does not exist",
                f"{namespace}/{stream_name}",
            ) from exc
        raise
    repository = (stream.get("status") or {}).get("dockerImageRepository")
    if not repository and registry:
        repository = f"{registry}/{namespace}/{stream_name}"
    if not repository:
        raise UnresolvedOutput(
            f"the image stream {namespace}/{stream_name} cannot be used as the output: no "
            "registry is configured (output_registry) and the stream has no "
            "status.dockerImageRepository",
            f"{namespace}/{stream_name}",
            registry_missing=True,
        )
    return f"{repository}:{tag or 'latest'}"


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
