"""The one exception of the Dockerfile layer."""

from securebuild.errors import SecurebuildError


class DockerfileError(SecurebuildError):
    """The Dockerfile or the rewrite inputs cannot be used; maps to ``ManageDockerfileFailed``."""
