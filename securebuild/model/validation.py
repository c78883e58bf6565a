"""Validation of Builds and BuildConfigs: OpenShift's rules plus those of a multi-tenant builder.

Every problem names its field and says in one sentence what is wrong. Values are data: a value is
only checked for what would let it change the meaning of where it goes (a path that escapes the
source tree, a git argument that reads as an option, a name that is not a name); its content is
otherwise free, so ``{{ ... }}`` in an env value or a label is legal and is never interpreted.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

from securebuild.model import imageref, names
from securebuild.model.problems import Problem, join_path
from securebuild.model.types import (
    API_VERSION,
    KIND_BUILD,
    KIND_BUILD_CONFIG,
    Build,
    BuildConfig,
    BuildOutput,
    BuildSource,
    CommonSpec,
    DockerBuildStrategy,
    EnvVar,
    LocalObjectReference,
    ObjectMeta,
    ObjectReference,
)

#: Reference 1.2: ``source.dockerfile`` larger than this is rejected.
MAX_INLINE_DOCKERFILE_BYTES = 60_000
ACCEPTED_API_VERSIONS = (API_VERSION, "v1")
STRATEGY_DOCKER = "Docker"
IMAGE_OPTIMIZATION_POLICIES = ("None", "SkipLayers", "SkipLayersAndWarn")
RUN_POLICIES = ("Serial", "SerialLatestOnly", "Parallel")
IMAGE_KINDS = ("ImageStreamTag", "ImageStreamImage", "DockerImage")
VOLUME_SOURCE_TYPES = ("Secret", "ConfigMap", "CSI")
PHASES = ("New", "Pending", "Running", "Complete", "Failed", "Error", "Cancelled")
#: Reference 1.2: the builder refuses a Docker build that has none of these.
NO_SOURCE_MESSAGE = "must provide a value for at least one of source, binary, images, or dockerfile"


class _Checker:
    """Collects problems; ``check`` runs one name rule on an optional value."""

    def __init__(self) -> None:
        self.problems: list[Problem] = []

    def add(self, path: str, message: str) -> None:
        self.problems.append(Problem(path, message))

    def check(self, path: str, value: str | None, rule: Callable[[str], str | None]) -> None:
        if value is None:
            return
        message = rule(value)
        if message is not None:
            self.add(path, message)

    def require(self, path: str, value: str | None, rule: Callable[[str], str | None]) -> None:
        if not value:
            self.add(path, "is required")
            return
        self.check(path, value, rule)


def validate(obj: Build | BuildConfig) -> list[Problem]:
    """All problems of a Build or BuildConfig, in document order; empty when valid."""
    c = _Checker()
    expected_kind = KIND_BUILD if isinstance(obj, Build) else KIND_BUILD_CONFIG
    if obj.kind != expected_kind:
        c.add("kind", f"must be {expected_kind}")
    if obj.api_version not in ACCEPTED_API_VERSIONS:
        c.add("apiVersion", f"must be {API_VERSION}")
    _metadata(c, obj.metadata)
    _common_spec(c, "spec", obj.spec)
    if isinstance(obj, Build):
        _build_status(c, obj)
    else:
        _build_config_spec(c, obj)
    return c.problems


def _metadata(c: _Checker, meta: ObjectMeta) -> None:
    c.require("metadata.name", meta.name, names.dns1123_subdomain)
    c.check("metadata.namespace", meta.namespace, names.dns1123_label)
    for key, value in meta.labels.items():
        path = join_path("metadata.labels", key)
        c.check(path, key, _key_rule)
        c.check(path, value, names.label_value)
    for key in meta.annotations:
        c.check(join_path("metadata.annotations", key), key, _key_rule)


def _key_rule(key: str) -> str | None:
    message = names.qualified_name(key)
    return None if message is None else f"is not a valid key: {message}"


def _common_spec(c: _Checker, path: str, spec: CommonSpec) -> None:
    c.check(join_path(path, "serviceAccount"), spec.service_account, names.dns1123_subdomain)
    _source(c, join_path(path, "source"), spec.source)
    if spec.revision is not None and spec.revision.git is not None:
        c.check(join_path(path, "revision.git.commit"), spec.revision.git.commit, names.git_commit)
    _strategy(c, join_path(path, "strategy"), spec)
    _output(c, join_path(path, "output"), spec.output)
    post = spec.post_commit
    if post.script and post.command:
        c.add(join_path(path, "postCommit"), "cannot have both script and command")
    deadline = spec.completion_deadline_seconds
    if deadline is not None and deadline <= 0:
        c.add(join_path(path, "completionDeadlineSeconds"), "must be greater than zero")
    for key, value in (spec.node_selector or {}).items():
        selector_path = join_path(join_path(path, "nodeSelector"), key)
        c.check(selector_path, key, _key_rule)
        c.check(selector_path, value, names.label_value)


def _source(c: _Checker, path: str, source: BuildSource) -> None:
    git, binary = source.git, source.binary
    if git is not None and binary is not None:
        c.add(path, "cannot have both git and binary (they are mutually exclusive)")
    if git is None and binary is None and source.dockerfile is None and not source.images:
        c.add(path, NO_SOURCE_MESSAGE)
    if git is not None:
        gpath = join_path(path, "git")
        c.require(join_path(gpath, "uri"), git.uri, names.git_uri)
        c.check(join_path(gpath, "ref"), git.ref, names.git_ref)
        c.check(join_path(gpath, "httpProxy"), git.http_proxy, _proxy_url)
        c.check(join_path(gpath, "httpsProxy"), git.https_proxy, _proxy_url)
        c.check(join_path(gpath, "noProxy"), git.no_proxy, _no_proxy)
    if binary is not None and binary.as_file:
        c.check(join_path(path, "binary.asFile"), binary.as_file, names.plain_file_name)
    if source.dockerfile is not None:
        size = len(source.dockerfile.encode("utf-8", errors="surrogatepass"))
        if size > MAX_INLINE_DOCKERFILE_BYTES:
            c.add(
                join_path(path, "dockerfile"),
                f"is {size} bytes; an inline Dockerfile may be at most "
                f"{MAX_INLINE_DOCKERFILE_BYTES} bytes",
            )
    c.check(join_path(path, "contextDir"), source.context_dir, names.relative_path)
    _secret_ref(c, join_path(path, "sourceSecret"), source.source_secret)
    seen_as: dict[str, str] = {}
    for i, image in enumerate(source.images):
        ipath = join_path(join_path(path, "images"), i)
        _image_ref(c, join_path(ipath, "from"), image.from_, required=True)
        _secret_ref(c, join_path(ipath, "pullSecret"), image.pull_secret)
        if not image.paths and not image.as_:
            c.add(ipath, "must have at least one of paths or as")
        for j, name in enumerate(image.as_):
            apath = join_path(join_path(ipath, "as"), j)
            if not name or any(ch.isspace() for ch in name) or names.has_control_characters(name):
                c.add(apath, "must be a non-empty name without spaces or control characters")
            elif name in seen_as:
                c.add(apath, f"{name!r} is already replaced by {seen_as[name]}")
            else:
                seen_as[name] = ipath
        for j, item in enumerate(image.paths):
            ppath = join_path(join_path(ipath, "paths"), j)
            c.require(join_path(ppath, "sourcePath"), item.source_path, names.absolute_path)
            c.check(join_path(ppath, "destinationDir"), item.destination_dir, names.relative_path)
    for i, secret in enumerate(source.secrets):
        spath = join_path(join_path(path, "secrets"), i)
        c.require(join_path(spath, "secret.name"), secret.secret.name, names.dns1123_subdomain)
        c.check(join_path(spath, "destinationDir"), secret.destination_dir, names.relative_path)
    for i, cm in enumerate(source.config_maps):
        cpath = join_path(join_path(path, "configMaps"), i)
        c.require(join_path(cpath, "configMap.name"), cm.config_map.name, names.dns1123_subdomain)
        c.check(join_path(cpath, "destinationDir"), cm.destination_dir, names.relative_path)


def _proxy_url(value: str) -> str | None:
    if not value.startswith(("http://", "https://")) or names.has_control_characters(value):
        return "must be an http:// or https:// URL"
    if any(ch.isspace() for ch in value):
        return "must not contain spaces"
    return None


def _no_proxy(value: str) -> str | None:
    if names.has_control_characters(value) or any(ch.isspace() for ch in value):
        return "must be a comma-separated list of hosts without spaces or control characters"
    return None


def _secret_ref(c: _Checker, path: str, ref: LocalObjectReference | None) -> None:
    if ref is not None:
        c.require(join_path(path, "name"), ref.name, names.dns1123_subdomain)


def _image_ref(c: _Checker, path: str, ref: ObjectReference | None, *, required: bool) -> None:
    if ref is None:
        if required:
            c.add(path, "is required")
        return
    kind = ref.kind or "ImageStreamTag"
    if kind not in IMAGE_KINDS:
        c.add(join_path(path, "kind"), f"must be one of {', '.join(IMAGE_KINDS)}")
        return
    c.check(join_path(path, "namespace"), ref.namespace, names.dns1123_label)
    name_path = join_path(path, "name")
    if not ref.name:
        c.add(name_path, "is required")
    elif kind == "DockerImage":
        try:
            imageref.parse_image_reference(ref.name)
        except imageref.ImageReferenceError as exc:
            c.add(name_path, f"is not a valid image reference: {exc}")
    elif kind == "ImageStreamTag":
        c.check(name_path, ref.name, imageref.image_stream_tag_problem)
    else:
        c.check(name_path, ref.name, imageref.image_stream_image_problem)


def _strategy(c: _Checker, path: str, spec: CommonSpec) -> None:
    strategy = spec.strategy
    if strategy.type != STRATEGY_DOCKER:
        c.add(join_path(path, "type"), f"must be {STRATEGY_DOCKER}: securebuild runs Docker builds")
    for other in ("source_strategy", "custom_strategy", "jenkins_pipeline_strategy"):
        if getattr(strategy, other) is not None:
            key = "".join(p if i == 0 else p.title() for i, p in enumerate(other.split("_")))
            c.add(join_path(path, key), "must not be set: only dockerStrategy is supported")
    _docker_strategy(c, join_path(path, "dockerStrategy"), strategy.docker)


def _docker_strategy(c: _Checker, path: str, docker: DockerBuildStrategy) -> None:
    _image_ref(c, join_path(path, "from"), docker.from_, required=False)
    _secret_ref(c, join_path(path, "pullSecret"), docker.pull_secret)
    c.check(join_path(path, "dockerfilePath"), docker.dockerfile_path, names.relative_path)
    _env_list(c, join_path(path, "env"), docker.env, allow_value_from=True)
    _env_list(c, join_path(path, "buildArgs"), docker.build_args, allow_value_from=True)
    policy = docker.image_optimization_policy
    if policy is not None and policy not in IMAGE_OPTIMIZATION_POLICIES:
        c.add(
            join_path(path, "imageOptimizationPolicy"),
            f"must be one of {', '.join(IMAGE_OPTIMIZATION_POLICIES)}",
        )
    seen: set[str] = set()
    for i, volume in enumerate(docker.volumes):
        vpath = join_path(join_path(path, "volumes"), i)
        c.require(join_path(vpath, "name"), volume.name, names.dns1123_label)
        if volume.name in seen:
            c.add(join_path(vpath, "name"), f"{volume.name!r} is used by another volume")
        seen.add(volume.name or "")
        if volume.source.type not in VOLUME_SOURCE_TYPES:
            c.add(
                join_path(vpath, "source.type"), f"must be one of {', '.join(VOLUME_SOURCE_TYPES)}"
            )
        if not volume.mounts:
            c.add(join_path(vpath, "mounts"), "must have at least one mount")
        for j, mount in enumerate(volume.mounts):
            mpath = join_path(join_path(join_path(vpath, "mounts"), j), "destinationPath")
            c.require(mpath, mount.destination_path, names.absolute_path)
            if mount.destination_path and ":" in mount.destination_path:
                c.add(mpath, "must not contain ':'")


def _env_list(c: _Checker, path: str, env: Iterable[EnvVar], *, allow_value_from: bool) -> None:
    for i, var in enumerate(env):
        vpath = join_path(path, i)
        c.require(join_path(vpath, "name"), var.name, names.env_var_name)
        if var.value_from is not None:
            if not allow_value_from:
                c.add(join_path(vpath, "valueFrom"), "is not supported here")
            elif var.value:
                c.add(vpath, "cannot have both value and valueFrom")
            elif "resourceFieldRef" in var.value_from:
                c.add(join_path(vpath, "valueFrom.resourceFieldRef"), "is not supported in builds")


def _output(c: _Checker, path: str, output: BuildOutput) -> None:
    if output.to is not None:
        to = output.to
        if to.kind not in ("ImageStreamTag", "DockerImage"):
            c.add(join_path(path, "to.kind"), "must be ImageStreamTag or DockerImage")
        else:
            if to.kind == "DockerImage" and to.namespace:
                c.add(join_path(path, "to.namespace"), "must not be set for a DockerImage")
            _image_ref(c, join_path(path, "to"), to, required=True)
    _secret_ref(c, join_path(path, "pushSecret"), output.push_secret)
    seen: set[str] = set()
    for i, label in enumerate(output.image_labels):
        lpath = join_path(join_path(join_path(path, "imageLabels"), i), "name")
        c.require(lpath, label.name, _key_rule)
        if label.name in seen:
            c.add(lpath, f"duplicate label name {label.name!r}")
        seen.add(label.name or "")


def _build_status(c: _Checker, build: Build) -> None:
    phase = build.status.phase
    if phase is not None and phase not in PHASES:
        c.add("status.phase", f"must be one of {', '.join(PHASES)}")


def _build_config_spec(c: _Checker, bc: BuildConfig) -> None:
    spec = bc.spec
    if spec.run_policy is not None and spec.run_policy not in RUN_POLICIES:
        c.add("spec.runPolicy", f"must be one of {', '.join(RUN_POLICIES)}")
    for key in ("successful_builds_history_limit", "failed_builds_history_limit"):
        value = getattr(spec, key)
        if value is not None and value < 0:
            name = "".join(p if i == 0 else p.title() for i, p in enumerate(key.split("_")))
            c.add(f"spec.{name}", "must not be negative")
