"""OpenShift's build status semantics: phases, transitions, reasons, stages, timing.

Everything here is an exact string or rule from the reference (sections 2.1 to 2.4), so that a
Build run by securebuild is indistinguishable from one run by OpenShift's own controller.
"""

from __future__ import annotations

import datetime as dt
import enum
from collections.abc import Iterable
from dataclasses import dataclass, replace

from securebuild.model.types import StageInfo, StepInfo


class Phase(enum.StrEnum):
    NEW = "New"
    PENDING = "Pending"
    RUNNING = "Running"
    COMPLETE = "Complete"
    FAILED = "Failed"
    ERROR = "Error"
    CANCELLED = "Cancelled"

    @property
    def is_terminal(self) -> bool:
        return self in TERMINAL_PHASES


TERMINAL_PHASES = frozenset({Phase.COMPLETE, Phase.FAILED, Phase.ERROR, Phase.CANCELLED})

#: What the apiserver answers when a terminal phase would change (reference 2.1).
TERMINAL_PHASE_MESSAGE = "phase cannot be updated from a terminal state"


def can_transition(old: Phase | str | None, new: Phase | str) -> bool:
    """The controller's valid-transition rule (reference 2.1).

    Terminal phases never change; Pending never goes back to New; Running never goes back to
    New or Pending. Staying in the same phase is always allowed (a status update that only
    changes other fields).
    """
    old_phase = Phase(old) if old else Phase.NEW
    new_phase = Phase(new)
    if old_phase == new_phase:
        return True
    if old_phase.is_terminal:
        return False
    if old_phase == Phase.PENDING and new_phase == Phase.NEW:
        return False
    return not (old_phase == Phase.RUNNING and new_phase in (Phase.NEW, Phase.PENDING))


@dataclass(frozen=True)
class StatusReason:
    """A reason and its exact message, as OpenShift writes them to ``status``."""

    reason: str
    message: str


# --- builder-set, always with phase Failed (reference 2.2) ---
FETCH_SOURCE_FAILED = StatusReason("FetchSourceFailed", "Failed to fetch the input source.")
INVALID_CONTEXT_DIRECTORY = StatusReason(
    "InvalidContextDirectory", "The supplied context directory does not exist."
)
FETCH_IMAGE_CONTENT_FAILED = StatusReason(
    "FetchImageContentFailed", "Failed to extract image content."
)
MANAGE_DOCKERFILE_FAILED = StatusReason(
    "ManageDockerfileFailed", "Failed to prepare the dockerfile for the build."
)
PULL_BUILDER_IMAGE_FAILED = StatusReason("PullBuilderImageFailed", "Failed pulling builder image.")
DOCKER_BUILD_FAILED = StatusReason("DockerBuildFailed", "Dockerfile build strategy has failed.")
PUSH_IMAGE_TO_REGISTRY_FAILED = StatusReason(
    "PushImageToRegistryFailed", "Failed to push the image to the registry."
)

# --- controller-set (reference 2.2) ---
INVALID_OUTPUT_REFERENCE = StatusReason(
    "InvalidOutputReference", "Output image could not be resolved."
)
INVALID_IMAGE_REFERENCE = StatusReason(
    "InvalidImageReference", "Referenced image could not be resolved."
)
CANNOT_RETRIEVE_SERVICE_ACCOUNT = StatusReason(
    "CannotRetrieveServiceAccount",
    "Unable to look up the service account secrets for this build.",
)
GENERIC_BUILD_FAILED = StatusReason(
    "GenericBuildFailed", "Generic Build failure - check logs for details."
)
CANNOT_CREATE_CA_CONFIG_MAP = StatusReason(
    "CannotCreateCAConfigMap", "Failed creating build certificate authority configMap."
)
CANNOT_CREATE_GLOBAL_CA_CONFIG_MAP = StatusReason(
    "CannotCreateGlobalCAConfigMap", "Failed creating build proxy certificate authority configMap."
)
CANNOT_CREATE_BUILD_SYS_CONFIG_MAP = StatusReason(
    "CannotCreateBuildSysConfigMap", "Failed creating build system config configMap."
)
BUILD_POD_EXISTS = StatusReason(
    "BuildPodExists", "The pod for this build already exists and is older than the build."
)
MISSING_PUSH_SECRET = StatusReason("MissingPushSecret", "Missing push secret.")
BUILD_POD_DELETED = StatusReason(
    "BuildPodDeleted", "The pod for this build was deleted before the build completed."
)
NO_BUILD_CONTAINER_STATUS = StatusReason(
    "NoBuildContainerStatus",
    "The pod for this build has no container statuses indicating success or failure.",
)
FAILED_CONTAINER = StatusReason(
    "FailedContainer",
    "The pod for this build has at least one container with a non-zero exit status.",
)
OUT_OF_MEMORY_KILLED = StatusReason(
    "OutOfMemoryKilled", "The build pod was killed due to an out of memory condition."
)
CANCELLED_BUILD = StatusReason("CancelledBuild", "The build was cancelled by the user.")

# securebuild's own: the .d2i hooks of DESIGN section 5 have no OpenShift counterpart
# (OpenShift defines PostCommitHookFailed but never emits it), so they get reasons and messages
# in OpenShift's style.
PRE_BUILD_HOOK_FAILED = StatusReason("PreBuildHookFailed", "The pre_build hook has failed.")
POST_BUILD_HOOK_FAILED = StatusReason("PostBuildHookFailed", "The post_build hook has failed.")

#: Reasons whose message carries a detail; see the functions below for the message.
REASON_GENERIC_BUILD_FAILED = GENERIC_BUILD_FAILED.reason
REASON_CANNOT_CREATE_BUILD_POD_SPEC = "CannotCreateBuildPodSpec"
REASON_CANNOT_CREATE_BUILD_POD = "CannotCreateBuildPod"
REASON_UNRESOLVABLE_ENVIRONMENT_VARIABLE = "UnresolvableEnvironmentVariable"
REASON_BUILD_POD_EVICTED = "BuildPodEvicted"
#: Defined by the API but never set by the current builder or controller (reference 2.2).
REASON_ERROR = "Error"
REASON_CANCEL_BUILD_FAILED = "CancelBuildFailed"
REASON_EXCEEDED_RETRY_TIMEOUT = "ExceededRetryTimeout"
REASON_POST_COMMIT_HOOK_FAILED = "PostCommitHookFailed"


def missing_resources(config_maps: Iterable[str] = (), secrets: Iterable[str] = ()) -> StatusReason:
    """``These resources do not exist: ConfigMaps [a, b] Secrets [c]`` (phase stays New)."""
    parts = []
    for kind, items in (("ConfigMaps", list(config_maps)), ("Secrets", list(secrets))):
        if items:
            parts.append(f"{kind} [{', '.join(items)}]")
    return StatusReason(
        REASON_GENERIC_BUILD_FAILED, "These resources do not exist: " + " ".join(parts)
    )


def cannot_create_build_pod_spec(error: str) -> StatusReason:
    return StatusReason(REASON_CANNOT_CREATE_BUILD_POD_SPEC, f"Failed to create pod spec: {error}")


def cannot_create_build_pod(error: str) -> StatusReason:
    return StatusReason(REASON_CANNOT_CREATE_BUILD_POD, f"Failed creating build pod: {error}")


def unresolvable_environment_variable(error: str) -> StatusReason:
    return StatusReason(
        REASON_UNRESOLVABLE_ENVIRONMENT_VARIABLE,
        f"Unable to resolve build environment variable reference., {error}",
    )


def build_pod_evicted(pod_message: str) -> StatusReason:
    return StatusReason(REASON_BUILD_POD_EVICTED, pod_message)


def can_change_reason(phase: Phase | str | None, old_reason: str | None, new_reason: str) -> bool:
    """Once Failed, the reason sticks, except that ``OutOfMemoryKilled`` may replace it."""
    if phase != Phase.FAILED or not old_reason:
        return True
    return new_reason in (old_reason, OUT_OF_MEMORY_KILLED.reason)


# --- stages and steps (reference 2.4) ---
class StageName(enum.StrEnum):
    FETCH_INPUTS = "FetchInputs"
    PULL_IMAGES = "PullImages"
    BUILD = "Build"
    PUSH_IMAGE = "PushImage"
    POST_COMMIT = "PostCommit"


class StepName(enum.StrEnum):
    FETCH_GIT_SOURCE = "FetchGitSource"
    PULL_BASE_IMAGE = "PullBaseImage"
    DOCKER_BUILD = "DockerBuild"
    PUSH_DOCKER_IMAGE = "PushDockerImage"
    RUN_POST_COMMIT_HOOK = "RunPostCommitHook"
    PULL_INPUT_IMAGE = "PullInputImage"
    PUSH_IMAGE = "PushImage"


#: The step each stage records for a Docker build, in order.
DOCKER_BUILD_STEPS = (
    (StageName.FETCH_INPUTS, StepName.FETCH_GIT_SOURCE),
    (StageName.PULL_IMAGES, StepName.PULL_BASE_IMAGE),
    (StageName.BUILD, StepName.DOCKER_BUILD),
    (StageName.PUSH_IMAGE, StepName.PUSH_DOCKER_IMAGE),
)


def record_step(
    stages: tuple[StageInfo, ...],
    stage: StageName | str,
    step: StepName | str,
    start: dt.datetime,
    duration_ms: int,
) -> tuple[StageInfo, ...]:
    """Add one step: appended to its stage (created if new), the stage extended to cover it."""
    step_info = StepInfo(
        name=str(step), start_time=format_timestamp(start), duration_milliseconds=duration_ms
    )
    end = start + dt.timedelta(milliseconds=duration_ms)
    for i, existing in enumerate(stages):
        if existing.name == str(stage):
            stage_start = parse_timestamp(existing.start_time) if existing.start_time else start
            stage_start = min(stage_start, start)
            stage_end = max(
                stage_start + dt.timedelta(milliseconds=existing.duration_milliseconds or 0), end
            )
            updated = replace(
                existing,
                start_time=format_timestamp(stage_start),
                duration_milliseconds=int((stage_end - stage_start) / dt.timedelta(milliseconds=1)),
                steps=(*existing.steps, step_info),
            )
            return (*stages[:i], updated, *stages[i + 1 :])
    new_stage = StageInfo(
        name=str(stage),
        start_time=step_info.start_time,
        duration_milliseconds=duration_ms,
        steps=(step_info,),
    )
    return (*stages, new_stage)


# --- timestamps and duration (reference 2.3) ---
def format_timestamp(when: dt.datetime) -> str:
    """RFC 3339 in UTC with second precision, as Kubernetes serialises ``metav1.Time``."""
    if when.tzinfo is None:
        raise ValueError("timestamps must be timezone-aware")
    return when.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_timestamp(value: str) -> dt.datetime:
    """Read an RFC 3339 timestamp (``Z`` or an offset, optional fraction)."""
    parsed = dt.datetime.fromisoformat(value.replace("Z", "+00:00").replace("z", "+00:00"))
    if parsed.tzinfo is None:
        raise ValueError(f"timestamp {value!r} has no time zone")
    return parsed


def duration_ns(start: dt.datetime | str, completion: dt.datetime | str) -> int:
    """``status.duration``: completion - start, both truncated to seconds, in nanoseconds."""
    start_dt = parse_timestamp(start) if isinstance(start, str) else start
    end_dt = parse_timestamp(completion) if isinstance(completion, str) else completion
    seconds = int(end_dt.replace(microsecond=0).timestamp()) - int(
        start_dt.replace(microsecond=0).timestamp()
    )
    return seconds * 1_000_000_000
