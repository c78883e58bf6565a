"""The failure reasons a playbook task may name with a ``reason:<Reason>`` tag.

Reasons and messages are ``securebuild.model``'s (OpenShift's exact strings, reference section
2.2); this module only says which of them a build run can end with. A reason not in this table
is treated as GenericBuildFailed when the result is built: it would reach the Build object.
"""

from __future__ import annotations

from typing import Final

from securebuild.model import status
from securebuild.model.status import StatusReason

CANCELLED_BUILD: Final = status.CANCELLED_BUILD.reason
GENERIC_BUILD_FAILED: Final = status.GENERIC_BUILD_FAILED.reason

_RUN_REASONS: Final[tuple[StatusReason, ...]] = (
    status.FETCH_SOURCE_FAILED,
    status.INVALID_CONTEXT_DIRECTORY,
    status.FETCH_IMAGE_CONTENT_FAILED,
    status.MANAGE_DOCKERFILE_FAILED,
    status.PULL_BUILDER_IMAGE_FAILED,
    status.DOCKER_BUILD_FAILED,
    status.PUSH_IMAGE_TO_REGISTRY_FAILED,
    status.GENERIC_BUILD_FAILED,
    status.CANCELLED_BUILD,
    status.PRE_BUILD_HOOK_FAILED,
    status.POST_BUILD_HOOK_FAILED,
)

MESSAGES: Final[dict[str, str]] = {r.reason: r.message for r in _RUN_REASONS}


def message_for(reason: str) -> str:
    """OpenShift's message for ``reason`` (GenericBuildFailed's for an unknown one)."""
    return MESSAGES.get(reason, MESSAGES[GENERIC_BUILD_FAILED])
