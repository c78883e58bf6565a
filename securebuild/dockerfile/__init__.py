"""Dockerfile rewriting with OpenShift's semantics, as pure functions.

The pipeline calls :func:`rewrite_dockerfile` (or :func:`rewrite` for the log lines too) with the
Dockerfile text, the Build and what the clone found, and :func:`base_images` for the images to
pull before ``docker build``.
"""

from securebuild.dockerfile.baseimages import base_images
from securebuild.dockerfile.errors import DockerfileError
from securebuild.dockerfile.rewrite import (
    RewriteResult,
    build_args,
    new_hook_alias,
    rewrite,
    rewrite_dockerfile,
)
from securebuild.dockerfile.sourceinfo import SourceInfo

__all__ = [
    "DockerfileError",
    "RewriteResult",
    "SourceInfo",
    "base_images",
    "build_args",
    "new_hook_alias",
    "rewrite",
    "rewrite_dockerfile",
]
