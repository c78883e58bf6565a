"""Claiming a Build: who runs it, until when (DESIGN section 3 step 2, security reference 2.2).

A claim is the annotation ``securebuild.appuio.ch/claim`` on the Build, a small JSON document::

    {"holder": "<daemon identity>", "renewTime": "...Z", "leaseSeconds": 60, "attempt": 1}

It is written by a JSON merge patch that carries the ``resourceVersion`` the writer last saw:
the API server refuses it with 409 if anything changed the Build in between, so of two daemons
that race for one Build exactly one wins. The holder renews the claim while it runs the build;
a claim not renewed within ``leaseSeconds`` (its daemon died) may be taken over, and the new
holder counts ``attempt`` up. Like client-go's leader election this assumes clocks that agree
within a fraction of the lease (no fencing by time); the status writer adds fencing by checking
the claim on every write (:mod:`securebuild.cluster.status`).
"""

from __future__ import annotations

import datetime as dt
import json
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from securebuild.cluster import paths
from securebuild.cluster.client import MERGE_PATCH, ApiError, Kube
from securebuild.model.status import format_timestamp, parse_timestamp

logger = logging.getLogger(__name__)

CLAIM_ANNOTATION = "securebuild.appuio.ch/claim"


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


@dataclass(frozen=True)
class Claim:
    holder: str
    renew_time: dt.datetime
    lease_seconds: float
    attempt: int
    #: URL of the holder's HTTPS API: other replicas forward log requests there.
    api: str | None = None
    expires: dt.datetime = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        # Computed once: the scheduler asks every cached claim on every pass.
        expires = self.renew_time + dt.timedelta(seconds=self.lease_seconds)
        object.__setattr__(self, "expires", expires)

    def expired(self, now: dt.datetime | None = None) -> bool:
        return (now or _now()) >= self.expires

    def to_annotation(self) -> str:
        data: dict[str, Any] = {
            "holder": self.holder,
            # Sub-second precision: leases in tests are a few seconds long.
            "renewTime": self.renew_time.astimezone(dt.UTC).isoformat(timespec="milliseconds"),
            "leaseSeconds": self.lease_seconds,
            "attempt": self.attempt,
        }
        if self.api:
            data["api"] = self.api
        return json.dumps(data, sort_keys=True)

    @classmethod
    def of(cls, build: Mapping[str, Any]) -> Claim | None:
        """The claim on a Build, or None (also for an unreadable annotation: it is no claim)."""
        annotations = (build.get("metadata") or {}).get("annotations") or {}
        raw = annotations.get(CLAIM_ANNOTATION)
        if not raw:
            return None
        try:
            data = json.loads(raw)
            return cls(
                holder=str(data["holder"]),
                renew_time=parse_timestamp(str(data["renewTime"])),
                lease_seconds=float(data["leaseSeconds"]),
                attempt=int(data.get("attempt", 1)),
                api=str(data["api"]) if data.get("api") else None,
            )
        except (ValueError, KeyError, TypeError):
            logger.warning("ignoring unreadable claim %r", raw[:200])
            return None


def claimable_by(build: Mapping[str, Any], identity: str, now: dt.datetime | None = None) -> bool:
    """No claim, our own claim, or a claim whose lease ran out."""
    claim = Claim.of(build)
    return claim is None or claim.holder == identity or claim.expired(now)


class ClaimLost(Exception):
    """Someone else holds the Build now (or it is gone): stop working on it."""


class Claims:
    """Claim, renew and check Builds for one daemon identity."""

    def __init__(
        self, kube: Kube, identity: str, lease_seconds: float, *, api: str | None = None
    ) -> None:
        self.kube = kube
        self.identity = identity
        self.lease_seconds = lease_seconds
        self.api = api

    def _patch(self, build: Mapping[str, Any], claim: Claim | None) -> dict[str, Any]:
        """Write ``claim`` (None removes it), if the Build is unchanged since ``build``."""
        meta = build["metadata"]
        body = {
            "metadata": {
                "resourceVersion": meta["resourceVersion"],
                "annotations": {CLAIM_ANNOTATION: claim.to_annotation() if claim else None},
            }
        }
        result: dict[str, Any] = self.kube.request(
            "PATCH",
            paths.build(meta["namespace"], meta["name"]),
            body=body,
            content_type=MERGE_PATCH,
        )
        return result

    def try_claim(self, build: Mapping[str, Any]) -> tuple[Claim, dict[str, Any]] | None:
        """Claim ``build`` as last seen; None if it is held by a live claim or changed meanwhile.

        Returns the claim and the Build as the API server stored it (with its new
        resourceVersion).
        """
        now = _now()
        previous = Claim.of(build)
        if previous is not None and previous.holder != self.identity and not previous.expired(now):
            return None
        if previous is None:
            attempt = 1
        elif previous.holder == self.identity:
            attempt = previous.attempt
        else:
            attempt = previous.attempt + 1
        claim = Claim(self.identity, now, self.lease_seconds, attempt, self.api)
        try:
            stored = self._patch(build, claim)
        except ApiError as exc:
            if exc.conflict or exc.not_found:
                logger.debug("claim of %s lost the race: %s", _key(build), exc)
                return None
            raise
        if previous is not None and previous.holder != self.identity:
            logger.info(
                "took over %s from %s (lease expired %s), attempt %d",
                _key(build),
                previous.holder,
                format_timestamp(previous.expires),
                attempt,
            )
        else:
            logger.info("claimed %s (attempt %d)", _key(build), attempt)
        return claim, stored

    def current(self, namespace: str, name: str) -> dict[str, Any]:
        """The Build now, if we still hold it; else :class:`ClaimLost`."""
        try:
            build: dict[str, Any] = self.kube.get(paths.build(namespace, name))
        except ApiError as exc:
            if exc.not_found:
                raise ClaimLost(f"{namespace}/{name} was deleted") from exc
            raise
        claim = Claim.of(build)
        if claim is None or claim.holder != self.identity:
            holder = claim.holder if claim else "nobody"
            raise ClaimLost(f"{namespace}/{name} is held by {holder} now")
        return build

    def renew(self, namespace: str, name: str, attempts: int = 5) -> Claim:
        """Extend our lease; retries conflicts by re-reading. :class:`ClaimLost` if not ours."""

        def renewed(build: Mapping[str, Any]) -> Claim:
            old = Claim.of(build)
            assert old is not None  # current() checked that it is ours
            return Claim(self.identity, _now(), self.lease_seconds, old.attempt, self.api)

        claim = self._rewrite_own(namespace, name, renewed, "renew", attempts)
        assert claim is not None
        return claim

    def release(self, namespace: str, name: str, attempts: int = 5) -> None:
        """Remove our claim, so that any daemon may claim the Build again.

        For a Build that waits in New (its output cannot be resolved yet): holding it would
        keep every other daemon from retrying it. :class:`ClaimLost` if it is not ours.
        """
        self._rewrite_own(namespace, name, lambda _build: None, "release", attempts)
        logger.info("released %s/%s", namespace, name)

    def _rewrite_own(
        self,
        namespace: str,
        name: str,
        claim_for: Callable[[Mapping[str, Any]], Claim | None],
        what: str,
        attempts: int,
    ) -> Claim | None:
        """Write ``claim_for(build)`` (None: no claim) on a Build we hold, re-reading on 409."""
        for _ in range(attempts):
            build = self.current(namespace, name)
            claim = claim_for(build)
            try:
                self._patch(build, claim)
                return claim
            except ApiError as exc:
                if exc.conflict:
                    continue
                if exc.not_found:
                    raise ClaimLost(f"{namespace}/{name} was deleted") from exc
                raise
        raise ClaimLost(f"{namespace}/{name}: could not {what} after {attempts} conflicts")


def _key(build: Mapping[str, Any]) -> str:
    meta = build.get("metadata") or {}
    return f"{meta.get('namespace')}/{meta.get('name')}"
