"""The production executor: a claimed Build runs in its project's VM (DESIGN section 3, 4-6).

For each Job: the Build's cluster references are resolved as OpenShift's controller resolves
them for the build pod (``securebuild.cluster.references``), the Secrets and ConfigMaps it names
are read from the cluster, ``securebuild.pipeline.plan`` checks everything tenant controlled,
the fleet makes sure the project's VM runs (warm: one SSH probe; cold: ``vm-ensure.yml``), and
``securebuild.pipeline.execute.run_plan`` runs ``playbooks/build.yml`` in it. Nothing here knows
how a VM is made or where it lives; that is the fleet's job, behind :class:`VMProvider`.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Mapping
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Any, Protocol

from securebuild.cluster.client import ApiError, ClusterError, Kube
from securebuild.cluster.references import UnresolvedEnv, UnresolvedImage, resolve_build
from securebuild.cluster.secrets import SecretLookup
from securebuild.daemon.executor import Job, Outcome, kill_leftovers, relay_cancel
from securebuild.errors import SecurebuildError
from securebuild.model.status import (
    GENERIC_BUILD_FAILED,
    INVALID_IMAGE_REFERENCE,
    Phase,
    missing_resources,
    unresolvable_environment_variable,
)
from securebuild.pipeline.execute import VMTarget, run_plan
from securebuild.pipeline.plan import DEFAULT_HOOK_TIMEOUT, PlanError, SecretData, make_plan

logger = logging.getLogger(__name__)


class VMProvider(Protocol):
    """What the executor needs of ``securebuild.fleet.Fleet``."""

    def ensure(self, project: str, *, on_line: Callable[[str], None] | None = None) -> VMTarget:
        """The project's running VM (started, or made and placed, when needed)."""

    def in_use(self, project: str) -> AbstractContextManager[None]:
        """Marks the VM busy for the block (the idle reaper leaves it alone)."""


def referenced_names(build: Mapping[str, Any]) -> tuple[set[str], set[str]]:
    """Names of the Secrets and ConfigMaps a Build refers to (what the plan will look up)."""
    spec = build.get("spec") or {}
    source = spec.get("source") or {}
    docker = (spec.get("strategy") or {}).get("dockerStrategy") or {}
    refs = [
        source.get("sourceSecret"),
        docker.get("pullSecret"),
        (spec.get("output") or {}).get("pushSecret"),
        *(image.get("pullSecret") for image in source.get("images") or []),
        *(item.get("secret") for item in source.get("secrets") or []),
    ]
    secrets = {str(ref["name"]) for ref in refs if isinstance(ref, Mapping) and ref.get("name")}
    config_maps = {
        str((item.get("configMap") or {}).get("name"))
        for item in source.get("configMaps") or []
        if (item.get("configMap") or {}).get("name")
    }
    return secrets, config_maps


class _Refused(SecurebuildError):
    """The Build cannot run; carries the Outcome's reason and message."""

    def __init__(self, reason: str, message: str, line: str) -> None:
        super().__init__(line)
        self.reason = reason
        self.message = message


class VMExecutor:
    """Runs each Job with ``playbooks/build.yml`` in its project's VM."""

    def __init__(
        self,
        *,
        kube: Kube,
        fleet: VMProvider,
        base_dir: Path,
        registry_cas: Mapping[str, str] | None = None,
        hook_timeout: int = DEFAULT_HOOK_TIMEOUT,
    ) -> None:
        self.kube = kube
        self.fleet = fleet
        self.runs = base_dir / "runs"
        self.registry_cas = dict(registry_cas or {})
        self.hook_timeout = hook_timeout
        self.secrets = SecretLookup(kube)

    def run(self, job: Job, cancel: threading.Event) -> Outcome:
        self.runs.mkdir(mode=0o700, parents=True, exist_ok=True)
        kill_leftovers(self.runs, job.uid, job.attempt)
        try:
            plan = self._plan(job)
        except _Refused as exc:
            job.on_line(f"error: {exc}")
            return Outcome(Phase.FAILED, exc.reason, exc.message)
        if cancel.is_set():
            return Outcome(Phase.CANCELLED)
        with self.fleet.in_use(plan.namespace):
            try:
                vm = self.fleet.ensure(plan.namespace, on_line=job.on_line)
            except SecurebuildError as exc:
                logger.error("build %s/%s: no VM: %s", job.namespace, job.name, exc)
                job.on_line(f"error: the build VM of project {plan.namespace} is not available")
                return Outcome(
                    Phase.ERROR, GENERIC_BUILD_FAILED.reason, GENERIC_BUILD_FAILED.message
                )
            if cancel.is_set():
                return Outcome(Phase.CANCELLED)
            relays: list[Callable[[], None]] = []
            try:
                outcome = run_plan(
                    plan,
                    vm,
                    on_line=job.on_line,
                    base_dir=self.runs,
                    build_uid=job.uid,
                    attempt=job.attempt,
                    registry_cas=self.registry_cas,
                    on_start=lambda run: relays.append(relay_cancel(cancel, run, job.name)),
                )
            finally:
                for stop_relay in relays:
                    stop_relay()
        phase = Phase(outcome.phase)
        reason, message = outcome.reason, outcome.message
        if phase == Phase.FAILED and not reason:
            reason, message = GENERIC_BUILD_FAILED.reason, GENERIC_BUILD_FAILED.message
        return Outcome(
            phase=phase,
            reason=reason,
            message=message,
            stages=outcome.stages,
            image_digest=outcome.digest,
            revision=_revision(outcome.details.get("sourceinfo")),
        )

    def _plan(self, job: Job) -> Any:
        """Resolve, look up and check everything before a VM is touched."""
        try:
            build = resolve_build(self.kube, job.build, job.output_reference)
        except UnresolvedImage as exc:
            raise _Refused(
                INVALID_IMAGE_REFERENCE.reason, INVALID_IMAGE_REFERENCE.message, str(exc)
            ) from exc
        except UnresolvedEnv as exc:
            reason = unresolvable_environment_variable(str(exc))
            raise _Refused(reason.reason, reason.message, str(exc)) from exc
        secret_names, config_map_names = referenced_names(build)
        try:
            secrets = _fetch(self.secrets.get, job.namespace, secret_names)
            config_maps = _fetch(self.secrets.config_map, job.namespace, config_map_names)
        except (ApiError, ClusterError) as exc:
            raise _Refused(
                GENERIC_BUILD_FAILED.reason,
                f"Error while checking Secrets: {exc}",
                f"reading the build's secrets failed: {exc}",
            ) from exc
        missing = missing_resources(
            sorted(config_map_names - set(config_maps)), sorted(secret_names - set(secrets))
        )
        if secret_names - set(secrets) or config_map_names - set(config_maps):
            raise _Refused(missing.reason, missing.message, missing.message)
        binary = job.binary_file
        as_file = ((build["spec"].get("source") or {}).get("binary") or {}).get("asFile")
        try:
            return make_plan(
                build,
                secrets=secrets,
                config_maps=config_maps,
                binary_path=str(binary) if binary is not None else None,
                binary_as_file=as_file or None,
                hook_timeout=self.hook_timeout,
            )
        except PlanError as exc:
            raise _Refused(
                GENERIC_BUILD_FAILED.reason, GENERIC_BUILD_FAILED.message, str(exc)
            ) from exc


def _fetch(
    get: Callable[[str, str], Any], namespace: str, names: set[str]
) -> dict[str, SecretData]:
    found = {}
    for name in sorted(names):
        obj = get(namespace, name)
        if obj is not None:
            found[name] = SecretData(name=name, data=obj.data)
    return found


def _revision(info: Any) -> dict[str, Any] | None:
    """``spec.revision`` from the commit the VM checked out (OpenShift's git-clone sets it)."""
    if not isinstance(info, Mapping) or not info.get("commit"):
        return None
    git: dict[str, Any] = {"commit": str(info["commit"])}
    for role in ("author", "committer"):
        name, email = info.get(f"{role}_name"), info.get(f"{role}_email")
        if name or email:
            git[role] = {"name": str(name or ""), "email": str(email or "")}
    if info.get("message"):
        git["message"] = str(info["message"]).strip()
    return {"type": "Git", "git": git}
