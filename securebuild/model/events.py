"""Event reasons and messages of OpenShift's build controller (reference 7.1).

Events are recorded with source component ``build-controller`` on the Build (or the BuildConfig
for the two ``BuildConfig*`` reasons). Only the functions' output is user-visible, so each one
formats exactly the string OpenShift writes.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

SOURCE_COMPONENT = "build-controller"


class EventType(enum.StrEnum):
    NORMAL = "Normal"
    WARNING = "Warning"


@dataclass(frozen=True)
class BuildEvent:
    reason: str
    type: EventType
    message: str


BUILD_STARTED = "BuildStarted"
BUILD_COMPLETED = "BuildCompleted"
BUILD_FAILED = "BuildFailed"
BUILD_CANCELLED = "BuildCancelled"
FAILED_CREATE = "FailedCreate"
INVALID_OUTPUT = "InvalidOutput"
UNEXPECTED_POD_PHASE = "UnexpectedPodPhase"
LOCAL_REF_IMAGE_STREAM_TAG_UNAVAILABLE = "LocalRefImageStreamTagUnavailable"
BUILD_CONFIG_INSTANTIATE_FAILED = "BuildConfigInstantiateFailed"
BUILD_CONFIG_TRIGGER_FAILED = "BuildConfigTriggerFailed"

INVALID_OUTPUT_MESSAGE = (
    "Error starting build: an image stream cannot be used as build output because the "
    "integrated container image registry is not configured"
)


def build_started(namespace: str, name: str) -> BuildEvent:
    return BuildEvent(BUILD_STARTED, EventType.NORMAL, f"Build {namespace}/{name} is now running")


def build_completed(namespace: str, name: str) -> BuildEvent:
    return BuildEvent(
        BUILD_COMPLETED, EventType.NORMAL, f"Build {namespace}/{name} completed successfully"
    )


def build_failed(namespace: str, name: str) -> BuildEvent:
    """For both phase Failed and phase Error."""
    return BuildEvent(BUILD_FAILED, EventType.NORMAL, f"Build {namespace}/{name} failed")


def build_cancelled(namespace: str, name: str) -> BuildEvent:
    return BuildEvent(
        BUILD_CANCELLED, EventType.NORMAL, f"Build {namespace}/{name} has been cancelled"
    )


def for_phase(phase: str, namespace: str, name: str) -> BuildEvent | None:
    """The event of a transition into ``phase`` (``Running`` included), or None."""
    makers = {
        "Running": build_started,
        "Complete": build_completed,
        "Failed": build_failed,
        "Error": build_failed,
        "Cancelled": build_cancelled,
    }
    maker = makers.get(phase)
    return maker(namespace, name) if maker else None


def failed_create_pod(error: str) -> BuildEvent:
    return BuildEvent(FAILED_CREATE, EventType.WARNING, f"Error creating build pod: {error}")


def pod_already_exists(namespace: str, pod: str) -> BuildEvent:
    return BuildEvent(FAILED_CREATE, EventType.WARNING, f"Pod already exists: {namespace}/{pod}")


def invalid_output() -> BuildEvent:
    return BuildEvent(INVALID_OUTPUT, EventType.WARNING, INVALID_OUTPUT_MESSAGE)


def unexpected_pod_phase(namespace: str, name: str, phase: str) -> BuildEvent:
    return BuildEvent(
        UNEXPECTED_POD_PHASE,
        EventType.WARNING,
        f"Build {namespace}/{name} received a pod in pending phase event while in {phase} phase",
    )


def failed_create_ca_config_map(error: str) -> BuildEvent:
    return BuildEvent(
        FAILED_CREATE,
        EventType.WARNING,
        f"Error creating build certificate authority configMap: {error}",
    )


def failed_create_global_ca_config_map(error: str) -> BuildEvent:
    return BuildEvent(
        FAILED_CREATE,
        EventType.WARNING,
        f"Error creating build proxy certificate authority configMap: {error}",
    )


def failed_create_sys_config_map(error: str) -> BuildEvent:
    return BuildEvent(
        FAILED_CREATE, EventType.WARNING, f"Error creating build system config configMap: {error}"
    )
