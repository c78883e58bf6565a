"""The Dockerfile step, on the control side, on the text read from the VM.

Why on the control side: :mod:`securebuild.dockerfile` is pure Python with no side effects (a
parser and a printer), so running it on untrusted text here executes nothing of the tenant's,
keeps the VM helper to the standard library, and means one version of the rewriter (the
daemon's) is in use everywhere. The text is bounded (4 MiB) by the VM helper before it is sent,
and the commit information it uses was read in the VM by ``git show``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from securebuild.dockerfile import SourceInfo, base_images, rewrite
from securebuild.model import Build, object_from_dict


def typed_build(build: Mapping[str, Any]) -> Build:
    obj = object_from_dict(build)
    if not isinstance(obj, Build):
        raise TypeError("the run's object is not a Build")
    return obj


def source_info(info: Mapping[str, str] | None) -> SourceInfo:
    """The VM helper's sourceinfo.json (``git`` output) as the rewriter's SourceInfo."""
    if not info:
        return SourceInfo()
    return SourceInfo(
        location=info.get("location", ""),
        ref=info.get("ref", ""),
        commit_id=info.get("commit", ""),
        date=info.get("date", ""),
        author_name=info.get("author_name", ""),
        author_email=info.get("author_email", ""),
        message=info.get("message", ""),
    )


def rewrite_for_build(
    text: str, build: Mapping[str, Any], info: Mapping[str, str] | None
) -> tuple[str, list[str]]:
    """The rewritten Dockerfile and the log lines OpenShift prints for it."""
    result = rewrite(text, typed_build(build), source_info(info))
    return result.dockerfile, list(result.log)


def images_to_pull(text: str, build_args: Mapping[str, str]) -> list[str]:
    """Every FROM and ``COPY --from`` image of the rewritten Dockerfile (reference 3.8)."""
    return list(base_images(text, build_args))
