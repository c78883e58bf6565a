"""Writing Build status like OpenShift's build controller (reference 2.1 to 2.3, 7.1).

Every write

* re-reads the Build and checks that this daemon still holds its claim (fencing: a daemon that
  lost its lease never overwrites the new holder's status);
* enforces the controller's transition rules (terminal phases never change, no way back to New
  or Pending) and the sticky reason of a Failed build;
* sends a JSON merge patch to the ``status`` subresource carrying the resourceVersion it read,
  and on 409 Conflict reads again and re-applies the same change (API conventions,
  "Concurrency Control and Consistency");
* maintains ``status.conditions`` (one per phase seen, the current one True), which OpenShift's
  API server does and a CRD does not;
* records the phase's event (BuildStarted, BuildCompleted, BuildFailed, BuildCancelled) once,
  after the write that changed the phase succeeded.
"""

from __future__ import annotations

import datetime as dt
import logging
import random
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from securebuild.cluster import paths
from securebuild.cluster.claims import Claim, ClaimLost
from securebuild.cluster.client import MERGE_PATCH, ApiError, Kube, retry_transient
from securebuild.cluster.events import EventRecorder
from securebuild.errors import SecurebuildError
from securebuild.model import events as model_events
from securebuild.model.status import Phase, can_change_reason, can_transition, format_timestamp

logger = logging.getLogger(__name__)

#: OpenShift's builder: 10 steps from 25 ms, factor 2 (security reference 2.2).
CONFLICT_RETRIES = 10
CONFLICT_BACKOFF = 0.025

_UNSET: Any = object()


class InvalidTransition(SecurebuildError):
    """The Build's phase does not allow the change (someone else moved it on)."""


@dataclass
class StatusChange:
    """What to write. Fields left as ``_UNSET`` are not touched; ``None`` removes a field."""

    phase: Phase | None = None
    reason: str | None = _UNSET
    message: str | None = _UNSET
    fields: dict[str, Any] = field(default_factory=dict)  # other status keys (camelCase)
    #: Keys written only when the Build's status does not have them yet.
    defaults: dict[str, Any] = field(default_factory=dict)
    #: Keys computed from the status as re-read (e.g. duration from startTimestamp).
    compute: Callable[[Mapping[str, Any], str], dict[str, Any]] | None = None

    def apply(self, status: dict[str, Any], now: str) -> dict[str, Any]:
        """The merge-patch ``status`` object for a Build whose status is ``status``."""
        patch: dict[str, Any] = {k: v for k, v in self.defaults.items() if not status.get(k)}
        patch.update(self.fields)
        if self.compute is not None:
            patch.update(self.compute({**status, **patch}, now))
        old_phase = status.get("phase") or Phase.NEW.value
        new_phase = self.phase.value if self.phase else old_phase
        if self.phase is not None:
            patch["phase"] = new_phase
        if self.reason is not _UNSET:
            if can_change_reason(old_phase, status.get("reason"), self.reason or ""):
                patch["reason"] = self.reason
                patch["message"] = self.message
        elif self.message is not _UNSET:
            patch["message"] = self.message
        reason = patch.get("reason", status.get("reason"))
        message = patch.get("message", status.get("message"))
        if new_phase != old_phase or "reason" in patch or not status.get("conditions"):
            patch["conditions"] = _conditions(
                status.get("conditions") or [], new_phase, reason, message, now
            )
        return patch


def _conditions(
    existing: list[Mapping[str, Any]],
    phase: str,
    reason: str | None,
    message: str | None,
    now: str,
) -> list[dict[str, Any]]:
    """One condition per phase seen; the current phase True with reason and message."""
    result: list[dict[str, Any]] = []
    seen = False
    for old in existing:
        cond = dict(old)
        current = cond.get("type") == phase
        seen = seen or current
        status = "True" if current else "False"
        if cond.get("status") != status:
            cond["lastTransitionTime"] = now
        cond["status"] = status
        cond["lastUpdateTime"] = now if current else cond.get("lastUpdateTime", now)
        if current:
            _set_or_drop(cond, "reason", reason)
            _set_or_drop(cond, "message", message)
        else:
            cond.pop("reason", None)
            cond.pop("message", None)
        result.append(cond)
    if not seen:
        cond = {"type": phase, "status": "True", "lastUpdateTime": now, "lastTransitionTime": now}
        _set_or_drop(cond, "reason", reason)
        _set_or_drop(cond, "message", message)
        result.append(cond)
    return result


def _set_or_drop(target: dict[str, Any], key: str, value: str | None) -> None:
    if value:
        target[key] = value
    else:
        target.pop(key, None)


class StatusWriter:
    """Status writes for the Builds this daemon holds."""

    def __init__(
        self,
        kube: Kube,
        identity: str,
        recorder: EventRecorder,
        *,
        transient_timeout: float = 300.0,
    ) -> None:
        self.kube = kube
        self.identity = identity
        self.recorder = recorder
        self.conflicts = 0  # for tests and metrics
        self.transient_timeout = transient_timeout

    def write(
        self,
        namespace: str,
        name: str,
        change: StatusChange,
        *,
        require_claim: bool = True,
    ) -> dict[str, Any]:
        """Apply ``change``; return the stored Build. Raises ClaimLost or InvalidTransition.

        An API server that does not answer (restarting) is retried for ``transient_timeout``
        seconds: the status of a build that ran meanwhile must not be lost.
        """
        return retry_transient(
            lambda: self._write(namespace, name, change, require_claim=require_claim),
            timeout=self.transient_timeout,
            what=f"status of {namespace}/{name}",
        )

    def _write(
        self,
        namespace: str,
        name: str,
        change: StatusChange,
        *,
        require_claim: bool,
    ) -> dict[str, Any]:
        delay = CONFLICT_BACKOFF
        for _ in range(CONFLICT_RETRIES):
            build: dict[str, Any] = self.kube.get(paths.build(namespace, name))
            if require_claim:
                claim = Claim.of(build)
                if claim is None or claim.holder != self.identity:
                    holder = claim.holder if claim else "nobody"
                    raise ClaimLost(f"{namespace}/{name} is held by {holder}; status not written")
            status = build.get("status") or {}
            old_phase = status.get("phase") or Phase.NEW.value
            if change.phase is not None and not can_transition(old_phase, change.phase):
                raise InvalidTransition(
                    f"{namespace}/{name}: phase {old_phase} cannot become {change.phase.value}"
                )
            now = format_timestamp(dt.datetime.now(dt.UTC))
            patch = change.apply(status, now)
            body = {
                "metadata": {"resourceVersion": build["metadata"]["resourceVersion"]},
                "status": patch,
            }
            try:
                stored: dict[str, Any] = self.kube.request(
                    "PATCH",
                    paths.build_status(namespace, name),
                    body=body,
                    content_type=MERGE_PATCH,
                )
            except ApiError as exc:
                if not exc.conflict:
                    raise
                self.conflicts += 1
                logger.debug("status of %s/%s: conflict, re-reading", namespace, name)
                time.sleep(delay * random.uniform(0.9, 1.1))  # noqa: S311 (jitter)
                delay *= 2
                continue
            new_phase = (stored.get("status") or {}).get("phase") or Phase.NEW.value
            if new_phase != old_phase:
                event = model_events.for_phase(new_phase, namespace, name)
                if event is not None:
                    self.recorder.record(stored, event)
            return stored
        raise ApiError(
            409,
            "PATCH",
            paths.build_status(namespace, name),
            {"message": f"still conflicting after {CONFLICT_RETRIES} attempts"},
        )
