"""Reporting a build's progress to its Build object (DESIGN sections 3 step 7 and 7).

:class:`Reporter` is the one interface between the daemon and the cluster's view of a build, so
that owner mode (securebuild writes everything OpenShift's build controller would; this module)
and the later relay mode (OpenShift's controller owns phases, securebuild only adds details)
share the daemon unchanged.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from typing import Any, Protocol

from securebuild.cluster.status import StatusChange, StatusWriter
from securebuild.daemon.executor import Outcome
from securebuild.model.status import (
    CANCELLED_BUILD,
    Phase,
    StatusReason,
    duration_ns,
    format_timestamp,
)


class Reporter(Protocol):
    def waiting(self, namespace: str, name: str, why: StatusReason) -> None: ...

    def pending(self, namespace: str, name: str, output_reference: str | None) -> None: ...

    def running(self, namespace: str, name: str) -> None: ...

    def finished(self, namespace: str, name: str, outcome: Outcome, snippet: str) -> None: ...

    def cancelled_before_start(self, namespace: str, name: str) -> None: ...


def _completion(status: Mapping[str, Any], now: str) -> dict[str, Any]:
    """completionTimestamp, and startTimestamp if the build never started; then duration."""
    start = status.get("startTimestamp") or now
    fields: dict[str, Any] = {"completionTimestamp": now, "duration": duration_ns(start, now)}
    if not status.get("startTimestamp"):
        fields["startTimestamp"] = start
    return fields


class OwnerReporter:
    """Owner mode: phases, timestamps, reasons, stages, digest, snippet and events."""

    def __init__(self, writer: StatusWriter) -> None:
        self.writer = writer

    def waiting(self, namespace: str, name: str, why: StatusReason) -> None:
        """The Build stays New, with the reason it cannot start yet (reference 2.1)."""
        self.writer.write(namespace, name, StatusChange(reason=why.reason, message=why.message))

    def pending(self, namespace: str, name: str, output_reference: str | None) -> None:
        fields: dict[str, Any] = {}
        if output_reference:
            fields["outputDockerImageReference"] = output_reference
        self.writer.write(
            namespace,
            name,
            StatusChange(phase=Phase.PENDING, reason=None, message=None, fields=fields),
        )

    def running(self, namespace: str, name: str) -> None:
        now = format_timestamp(dt.datetime.now(dt.UTC))
        self.writer.write(
            namespace,
            name,
            StatusChange(phase=Phase.RUNNING, defaults={"startTimestamp": now}),
        )

    def finished(self, namespace: str, name: str, outcome: Outcome, snippet: str) -> None:
        fields: dict[str, Any] = {}
        if outcome.stages:
            fields["stages"] = outcome.stages
        if outcome.image_digest:
            fields["output"] = {"to": {"imageDigest": outcome.image_digest}}
        if outcome.phase in (Phase.FAILED, Phase.ERROR) and snippet:
            fields["logSnippet"] = snippet
        self.writer.write(
            namespace,
            name,
            StatusChange(
                phase=outcome.phase,
                reason=outcome.reason,
                message=outcome.message,
                fields=fields,
                compute=_completion,
            ),
        )

    def cancelled_before_start(self, namespace: str, name: str) -> None:
        self.writer.write(
            namespace,
            name,
            StatusChange(
                phase=Phase.CANCELLED,
                reason=CANCELLED_BUILD.reason,
                message=CANCELLED_BUILD.message,
                compute=_completion,
            ),
        )
