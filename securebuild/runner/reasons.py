"""OpenShift build failure reasons and their exact messages (reference section 2.2).

TODO(model): import these from ``securebuild.model`` once it lands; this is the one place the
runner keeps them until then. Playbook tasks name a reason with a ``reason:<Reason>`` tag; a
reason not in this table is refused when the result is built (it would reach the Build object).
"""

from __future__ import annotations

from typing import Final

FETCH_SOURCE_FAILED: Final = "FetchSourceFailed"
INVALID_CONTEXT_DIRECTORY: Final = "InvalidContextDirectory"
FETCH_IMAGE_CONTENT_FAILED: Final = "FetchImageContentFailed"
MANAGE_DOCKERFILE_FAILED: Final = "ManageDockerfileFailed"
PULL_BUILDER_IMAGE_FAILED: Final = "PullBuilderImageFailed"
DOCKER_BUILD_FAILED: Final = "DockerBuildFailed"
PUSH_IMAGE_TO_REGISTRY_FAILED: Final = "PushImageToRegistryFailed"
GENERIC_BUILD_FAILED: Final = "GenericBuildFailed"
CANCELLED_BUILD: Final = "CancelledBuild"
# Hooks: OpenShift's API defines PostCommitHookFailed but never emits it; securebuild's hooks
# (DESIGN section 5) use these two, with messages in OpenShift's style.
PRE_BUILD_HOOK_FAILED: Final = "PreBuildHookFailed"
POST_BUILD_HOOK_FAILED: Final = "PostBuildHookFailed"

MESSAGES: Final[dict[str, str]] = {
    FETCH_SOURCE_FAILED: "Failed to fetch the input source.",
    INVALID_CONTEXT_DIRECTORY: "The supplied context directory does not exist.",
    FETCH_IMAGE_CONTENT_FAILED: "Failed to extract image content.",
    MANAGE_DOCKERFILE_FAILED: "Failed to prepare the dockerfile for the build.",
    PULL_BUILDER_IMAGE_FAILED: "Failed pulling builder image.",
    DOCKER_BUILD_FAILED: "Dockerfile build strategy has failed.",
    PUSH_IMAGE_TO_REGISTRY_FAILED: "Failed to push the image to the registry.",
    GENERIC_BUILD_FAILED: "Generic Build failure - check logs for details.",
    CANCELLED_BUILD: "The build was cancelled by the user.",
    PRE_BUILD_HOOK_FAILED: "The pre_build hook has failed.",
    POST_BUILD_HOOK_FAILED: "The post_build hook has failed.",
}


def message_for(reason: str) -> str:
    """OpenShift's message for ``reason`` (GenericBuildFailed's for an unknown one)."""
    return MESSAGES.get(reason, MESSAGES[GENERIC_BUILD_FAILED])
