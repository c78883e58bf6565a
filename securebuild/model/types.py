"""Build and BuildConfig (``build.openshift.io/v1``) as frozen dataclasses.

The field set is the one the reference (``openshift-docker-build.md`` sections 1.2 to 1.5 and 2.3)
describes for the Docker strategy; anything else a cluster sends is kept in ``extra`` so it is
written back unchanged. Scalars are ``None`` when absent (so "absent" and "empty" stay distinct,
as Go pointers do); nested objects that are always present in OpenShift's output (``source``,
``strategy``, ``output``, ``postCommit``) default to an empty object. Field types, the JSON
spelling and the round trip are handled by :mod:`securebuild.model.jsonobj`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from securebuild.model.jsonobj import JsonObject, empty_map

API_VERSION = "build.openshift.io/v1"
KIND_BUILD = "Build"
KIND_BUILD_CONFIG = "BuildConfig"


def _json(name: str) -> Any:
    return field(default=None, metadata={"json": name})


# --- shared references ----------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class ObjectReference(JsonObject):
    """``{kind, name, namespace}``: images (``ImageStreamTag``, ``DockerImage``...) and configs."""

    kind: str | None = None
    name: str | None = None
    namespace: str | None = None


@dataclass(frozen=True, kw_only=True)
class LocalObjectReference(JsonObject):
    """A Secret or ConfigMap in the object's own namespace, by name."""

    name: str | None = None


@dataclass(frozen=True, kw_only=True)
class OwnerReference(JsonObject):
    api_version: str | None = None
    kind: str | None = None
    name: str | None = None
    uid: str | None = None
    controller: bool | None = None
    block_owner_deletion: bool | None = None


@dataclass(frozen=True, kw_only=True)
class ObjectMeta(JsonObject):
    name: str | None = None
    generate_name: str | None = None
    namespace: str | None = None
    uid: str | None = None
    resource_version: str | None = None
    generation: int | None = None
    creation_timestamp: str | None = None
    deletion_timestamp: str | None = None
    labels: Mapping[str, str] = empty_map()
    annotations: Mapping[str, str] = empty_map()
    owner_references: tuple[OwnerReference, ...] = ()


# --- spec.source (reference 1.2) --------------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class GitBuildSource(JsonObject):
    uri: str | None = None
    ref: str | None = None
    http_proxy: str | None = None
    https_proxy: str | None = None
    no_proxy: str | None = None


@dataclass(frozen=True, kw_only=True)
class BinaryBuildSource(JsonObject):
    """Uploaded source; ``as_file`` empty means the upload is an archive to extract."""

    as_file: str | None = None


@dataclass(frozen=True, kw_only=True)
class ImageSourcePath(JsonObject):
    source_path: str | None = None
    destination_dir: str | None = None


@dataclass(frozen=True, kw_only=True)
class ImageSource(JsonObject):
    from_: ObjectReference = field(default_factory=ObjectReference)
    as_: tuple[str, ...] = ()
    paths: tuple[ImageSourcePath, ...] = ()
    pull_secret: LocalObjectReference | None = None


@dataclass(frozen=True, kw_only=True)
class SecretBuildSource(JsonObject):
    secret: LocalObjectReference = field(default_factory=LocalObjectReference)
    destination_dir: str | None = None


@dataclass(frozen=True, kw_only=True)
class ConfigMapBuildSource(JsonObject):
    config_map: LocalObjectReference = field(default_factory=LocalObjectReference)
    destination_dir: str | None = None


@dataclass(frozen=True, kw_only=True)
class BuildSource(JsonObject):
    type: str | None = None
    binary: BinaryBuildSource | None = None
    dockerfile: str | None = None
    git: GitBuildSource | None = None
    images: tuple[ImageSource, ...] = ()
    context_dir: str | None = None
    source_secret: LocalObjectReference | None = None
    secrets: tuple[SecretBuildSource, ...] = ()
    config_maps: tuple[ConfigMapBuildSource, ...] = ()


# --- spec.strategy (reference 1.3) ------------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class EnvVar(JsonObject):
    """``value_from`` is kept raw: the cluster layer resolves it before a build runs."""

    name: str | None = None
    value: str | None = None
    value_from: Mapping[str, Any] | None = None


@dataclass(frozen=True, kw_only=True)
class BuildVolumeMount(JsonObject):
    destination_path: str | None = None


@dataclass(frozen=True, kw_only=True)
class BuildVolumeSource(JsonObject):
    type: str | None = None
    secret: Mapping[str, Any] | None = None
    config_map: Mapping[str, Any] | None = None
    csi: Mapping[str, Any] | None = None


@dataclass(frozen=True, kw_only=True)
class BuildVolume(JsonObject):
    name: str | None = None
    source: BuildVolumeSource = field(default_factory=BuildVolumeSource)
    mounts: tuple[BuildVolumeMount, ...] = ()


@dataclass(frozen=True, kw_only=True)
class DockerBuildStrategy(JsonObject):
    from_: ObjectReference | None = None
    pull_secret: LocalObjectReference | None = None
    no_cache: bool | None = None
    env: tuple[EnvVar, ...] = ()
    force_pull: bool | None = None
    dockerfile_path: str | None = None
    build_args: tuple[EnvVar, ...] = ()
    image_optimization_policy: str | None = None
    volumes: tuple[BuildVolume, ...] = ()


@dataclass(frozen=True, kw_only=True)
class BuildStrategy(JsonObject):
    type: str | None = None
    docker_strategy: DockerBuildStrategy | None = None
    source_strategy: Mapping[str, Any] | None = None
    custom_strategy: Mapping[str, Any] | None = None
    jenkins_pipeline_strategy: Mapping[str, Any] | None = None

    @property
    def docker(self) -> DockerBuildStrategy:
        """The Docker strategy; OpenShift defaults a missing one to empty (reference 1.3)."""
        return self.docker_strategy or DockerBuildStrategy()


# --- spec.output (reference 1.4) --------------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class ImageLabel(JsonObject):
    name: str | None = None
    value: str | None = None


@dataclass(frozen=True, kw_only=True)
class BuildOutput(JsonObject):
    to: ObjectReference | None = None
    push_secret: LocalObjectReference | None = None
    image_labels: tuple[ImageLabel, ...] = ()


# --- other CommonSpec fields (reference 1.5) --------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class BuildPostCommitSpec(JsonObject):
    command: tuple[str, ...] = ()
    args: tuple[str, ...] = ()
    script: str | None = None

    @property
    def is_set(self) -> bool:
        return bool(self.command or self.args or self.script)


@dataclass(frozen=True, kw_only=True)
class SourceControlUser(JsonObject):
    name: str | None = None
    email: str | None = None


@dataclass(frozen=True, kw_only=True)
class GitSourceRevision(JsonObject):
    commit: str | None = None
    author: SourceControlUser | None = None
    committer: SourceControlUser | None = None
    message: str | None = None


@dataclass(frozen=True, kw_only=True)
class SourceRevision(JsonObject):
    type: str | None = None
    git: GitSourceRevision | None = None


@dataclass(frozen=True, kw_only=True)
class ImageChangeCause(JsonObject):
    image_id: str | None = _json("imageID")
    from_ref: ObjectReference | None = None


@dataclass(frozen=True, kw_only=True)
class BuildTriggerCause(JsonObject):
    message: str | None = None
    generic_web_hook: Mapping[str, Any] | None = None
    github_web_hook: Mapping[str, Any] | None = None
    gitlab_web_hook: Mapping[str, Any] | None = None
    bitbucket_web_hook: Mapping[str, Any] | None = None
    image_change_build: ImageChangeCause | None = None


@dataclass(frozen=True, kw_only=True)
class CommonSpec(JsonObject):
    """The part of the spec shared by Build and BuildConfig (``CommonSpec`` in Go)."""

    service_account: str | None = None
    source: BuildSource = field(default_factory=BuildSource)
    revision: SourceRevision | None = None
    strategy: BuildStrategy = field(default_factory=BuildStrategy)
    output: BuildOutput = field(default_factory=BuildOutput)
    resources: Mapping[str, Any] = empty_map()
    post_commit: BuildPostCommitSpec = field(default_factory=BuildPostCommitSpec)
    completion_deadline_seconds: int | None = None
    node_selector: Mapping[str, str] | None = None
    mount_trusted_ca: bool | None = _json("mountTrustedCA")


@dataclass(frozen=True, kw_only=True)
class BuildSpec(CommonSpec):
    triggered_by: tuple[BuildTriggerCause, ...] = ()


@dataclass(frozen=True, kw_only=True)
class BuildConfigSpec(CommonSpec):
    triggers: tuple[Mapping[str, Any], ...] = ()
    run_policy: str | None = None
    successful_builds_history_limit: int | None = None
    failed_builds_history_limit: int | None = None


# --- status (reference 2.3, 2.4) --------------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class StepInfo(JsonObject):
    name: str | None = None
    start_time: str | None = None
    duration_milliseconds: int | None = None


@dataclass(frozen=True, kw_only=True)
class StageInfo(JsonObject):
    name: str | None = None
    start_time: str | None = None
    duration_milliseconds: int | None = None
    steps: tuple[StepInfo, ...] = ()


@dataclass(frozen=True, kw_only=True)
class BuildStatusOutputTo(JsonObject):
    image_digest: str | None = None


@dataclass(frozen=True, kw_only=True)
class BuildStatusOutput(JsonObject):
    to: BuildStatusOutputTo | None = None


@dataclass(frozen=True, kw_only=True)
class BuildCondition(JsonObject):
    type: str | None = None
    status: str | None = None
    last_update_time: str | None = None
    last_transition_time: str | None = None
    reason: str | None = None
    message: str | None = None


@dataclass(frozen=True, kw_only=True)
class BuildStatus(JsonObject):
    phase: str | None = None
    cancelled: bool | None = None
    reason: str | None = None
    message: str | None = None
    start_timestamp: str | None = None
    completion_timestamp: str | None = None
    duration: int | None = None
    output_docker_image_reference: str | None = None
    config: ObjectReference | None = None
    output: BuildStatusOutput | None = None
    stages: tuple[StageInfo, ...] = ()
    log_snippet: str | None = None
    conditions: tuple[BuildCondition, ...] = ()


@dataclass(frozen=True, kw_only=True)
class BuildConfigStatus(JsonObject):
    last_version: int | None = None
    image_change_triggers: tuple[Mapping[str, Any], ...] = ()


# --- top-level objects ------------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class Build(JsonObject):
    api_version: str | None = API_VERSION
    kind: str | None = KIND_BUILD
    metadata: ObjectMeta = field(default_factory=ObjectMeta)
    spec: BuildSpec = field(default_factory=BuildSpec)
    status: BuildStatus = field(default_factory=BuildStatus)

    @property
    def name(self) -> str:
        return self.metadata.name or ""

    @property
    def namespace(self) -> str:
        return self.metadata.namespace or ""


@dataclass(frozen=True, kw_only=True)
class BuildConfig(JsonObject):
    api_version: str | None = API_VERSION
    kind: str | None = KIND_BUILD_CONFIG
    metadata: ObjectMeta = field(default_factory=ObjectMeta)
    spec: BuildConfigSpec = field(default_factory=BuildConfigSpec)
    status: BuildConfigStatus = field(default_factory=BuildConfigStatus)

    @property
    def name(self) -> str:
        return self.metadata.name or ""

    @property
    def namespace(self) -> str:
        return self.metadata.namespace or ""
