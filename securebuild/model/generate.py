"""BuildConfig -> Build, as OpenShift's generator does on ``instantiate`` (reference 1.1, 1.6).

Pure: the caller passes the next build number and anything resolved against the cluster (the
strategy's ``from`` image as a ``DockerImage``); nothing here talks to an API server.
"""

from __future__ import annotations

import dataclasses
import types
from collections.abc import Iterable, Mapping

from securebuild.model.problems import ModelError, Problem
from securebuild.model.types import (
    API_VERSION,
    KIND_BUILD_CONFIG,
    BinaryBuildSource,
    Build,
    BuildCondition,
    BuildConfig,
    BuildSpec,
    BuildStatus,
    BuildTriggerCause,
    CommonSpec,
    EnvVar,
    ObjectMeta,
    ObjectReference,
    OwnerReference,
    SourceRevision,
)

ANNOTATION_BUILD_CONFIG_NAME = "openshift.io/build-config.name"
ANNOTATION_BUILD_NUMBER = "openshift.io/build.number"
ANNOTATION_BUILD_CLONE_OF = "openshift.io/build.clone-of"
ANNOTATION_BUILD_POD_NAME = "openshift.io/build.pod-name"
ANNOTATION_PAUSED = "openshift.io/build-config.paused"
LABEL_BUILD_CONFIG_NAME = "openshift.io/build-config.name"
LABEL_BUILD_CONFIG_DEPRECATED = "buildconfig"
LABEL_START_POLICY = "openshift.io/build.start-policy"
DEFAULT_RUN_POLICY = "Serial"
MANUALLY_TRIGGERED = "Manually triggered"
#: ``triggeredBy`` messages OpenShift writes (reference 1.5).
TRIGGER_MESSAGES = (
    MANUALLY_TRIGGERED,
    "Build configuration change",
    "Image change",
    "GitHub WebHook",
    "Generic WebHook",
    "GitLab WebHook",
    "Bitbucket WebHook",
)
PAUSED_MESSAGE = "BuildConfig is paused"
NAME_MAX_LENGTH = 253
LABEL_VALUE_MAX_LENGTH = 63


@dataclasses.dataclass(frozen=True, kw_only=True)
class BuildRequest:
    """What ``oc start-build`` / ``instantiate[binary]`` may add to a BuildConfig's spec."""

    env: tuple[EnvVar, ...] = ()
    build_args: tuple[EnvVar, ...] = ()
    no_cache: bool | None = None
    binary: BinaryBuildSource | None = None
    revision: SourceRevision | None = None
    triggered_by: tuple[BuildTriggerCause, ...] = ()
    labels: Mapping[str, str] = dataclasses.field(default_factory=dict)
    annotations: Mapping[str, str] = dataclasses.field(default_factory=dict)
    #: The strategy's ``from`` resolved by the caller to ``kind: DockerImage``.
    resolved_from: ObjectReference | None = None


def _fnv32a(data: str) -> str:
    value = 0x811C9DC5
    for byte in data.encode("utf-8"):
        value = ((value ^ byte) * 0x01000193) & 0xFFFFFFFF
    return f"{value:08x}"


def build_name(bc_name: str, number: int, max_length: int = NAME_MAX_LENGTH) -> str:
    """``<bc>-<N>``, hashed and truncated like ``naming.GetName`` when too long."""
    suffix = str(number)
    name = f"{bc_name}-{suffix}"
    if len(name) <= max_length:
        return name
    base_length = max_length - 10 - len(suffix)
    if base_length < 0:
        prefix = bc_name[: max(0, max_length - 9)]
        return f"{prefix}-{_fnv32a(name)}"[:max_length]
    return f"{bc_name[:base_length]}-{_fnv32a(bc_name)}-{suffix}"


def label_value(value: str) -> str:
    """Cut to a valid label value (63 characters, ending in a letter or digit)."""
    return value[:LABEL_VALUE_MAX_LENGTH].rstrip("-_.")


def merge_env(base: Iterable[EnvVar], overrides: Iterable[EnvVar]) -> tuple[EnvVar, ...]:
    """Request entries replace same-named ones in place; new names are appended (1.6)."""
    merged = list(base)
    for override in overrides:
        for i, existing in enumerate(merged):
            if existing.name == override.name:
                merged[i] = override
                break
        else:
            merged.append(override)
    return tuple(merged)


def generate_build(
    bc: BuildConfig,
    *,
    number: int | None = None,
    request: BuildRequest | None = None,
    now: str | None = None,
) -> Build:
    """The Build that ``instantiate`` creates for ``bc``; ``number`` defaults to lastVersion+1."""
    request = request or BuildRequest()
    if bc.metadata.annotations.get(ANNOTATION_PAUSED, "").lower() == "true":
        raise ModelError([Problem("metadata.annotations", PAUSED_MESSAGE)])
    if number is None:
        number = (bc.status.last_version or 0) + 1
    name = build_name(bc.name, number)
    run_policy = bc.spec.run_policy or DEFAULT_RUN_POLICY

    labels = dict(bc.metadata.labels)
    labels.update(request.labels)
    labels[LABEL_BUILD_CONFIG_NAME] = label_value(bc.name)
    labels[LABEL_BUILD_CONFIG_DEPRECATED] = label_value(bc.name)
    labels[LABEL_START_POLICY] = run_policy
    annotations = dict(request.annotations)
    annotations[ANNOTATION_BUILD_CONFIG_NAME] = bc.name
    annotations[ANNOTATION_BUILD_NUMBER] = str(number)

    common = {f.name: getattr(bc.spec, f.name) for f in dataclasses.fields(CommonSpec)}
    spec = BuildSpec(
        **common,
        triggered_by=request.triggered_by or (BuildTriggerCause(message=MANUALLY_TRIGGERED),),
    )
    spec = _apply_request(spec, request)

    return Build(
        api_version=API_VERSION,
        metadata=ObjectMeta(
            name=name,
            namespace=bc.metadata.namespace,
            labels=types.MappingProxyType(labels),
            annotations=types.MappingProxyType(annotations),
            owner_references=(
                OwnerReference(
                    api_version=API_VERSION,
                    kind=KIND_BUILD_CONFIG,
                    name=bc.name,
                    uid=bc.metadata.uid,
                    controller=True,
                ),
            ),
        ),
        spec=spec,
        status=BuildStatus(
            phase="New",
            config=ObjectReference(
                kind=KIND_BUILD_CONFIG, name=bc.name, namespace=bc.metadata.namespace
            ),
            conditions=(
                BuildCondition(
                    type="New", status="True", last_update_time=now, last_transition_time=now
                ),
            ),
        ),
    )


def _apply_request(spec: BuildSpec, request: BuildRequest) -> BuildSpec:
    docker = spec.strategy.docker
    docker = dataclasses.replace(
        docker,
        env=merge_env(docker.env, request.env),
        build_args=merge_env(docker.build_args, request.build_args),
        no_cache=docker.no_cache if request.no_cache is None else request.no_cache,
        from_=request.resolved_from or docker.from_,
    )
    strategy = dataclasses.replace(spec.strategy, docker_strategy=docker)
    source = spec.source
    if request.binary is not None:
        dockerfile = None if request.binary.as_file == "Dockerfile" else source.dockerfile
        source = dataclasses.replace(
            source,
            git=None,
            binary=request.binary,
            dockerfile=dockerfile,
            type="Binary" if source.type in (None, "Git") else source.type,
        )
    revision = request.revision or spec.revision
    return dataclasses.replace(spec, strategy=strategy, source=source, revision=revision)
