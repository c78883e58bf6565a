"""Kubernetes Events on Builds, as OpenShift's build controller records them (reference 7.1).

``core/v1`` Events with source component ``build-controller`` and the Build as involvedObject,
so ``oc describe build`` and ``kubectl get events`` show exactly what OpenShift would show.
Posting an event is best effort: a failure is logged, never fails the build.
"""

from __future__ import annotations

import datetime as dt
import logging
import secrets
from collections.abc import Mapping
from typing import Any

from securebuild.cluster import paths
from securebuild.cluster.client import ApiError, ClusterError, Kube
from securebuild.model.events import SOURCE_COMPONENT, BuildEvent
from securebuild.model.status import format_timestamp

logger = logging.getLogger(__name__)


class EventRecorder:
    def __init__(self, kube: Kube, *, host: str | None = None) -> None:
        self.kube = kube
        self.host = host

    def record(self, build: Mapping[str, Any], event: BuildEvent) -> dict[str, Any] | None:
        meta = build["metadata"]
        now = format_timestamp(dt.datetime.now(dt.UTC))
        source: dict[str, str] = {"component": SOURCE_COMPONENT}
        if self.host:
            source["host"] = self.host
        body = {
            "apiVersion": "v1",
            "kind": "Event",
            "metadata": {
                # client-go's recorder: <object name>.<unique hex suffix>
                "name": f"{meta['name']}.{secrets.token_hex(8)}",
                "namespace": meta["namespace"],
            },
            "involvedObject": {
                "apiVersion": build.get("apiVersion", "build.openshift.io/v1"),
                "kind": build.get("kind", "Build"),
                "namespace": meta["namespace"],
                "name": meta["name"],
                "uid": meta.get("uid"),
                "resourceVersion": meta.get("resourceVersion"),
            },
            "reason": event.reason,
            "message": event.message,
            "type": str(event.type),
            "source": source,
            "firstTimestamp": now,
            "lastTimestamp": now,
            "count": 1,
            "reportingComponent": SOURCE_COMPONENT,
        }
        try:
            result: dict[str, Any] = self.kube.request(
                "POST", paths.events(meta["namespace"]), body=body
            )
            return result
        except (ApiError, ClusterError) as exc:
            logger.warning(
                "event %s on %s/%s not recorded: %s",
                event.reason,
                meta["namespace"],
                meta["name"],
                exc,
            )
            return None
