"""The build information OpenShift appends to every Dockerfile: one ENV and one LABEL.

Names, order and presence rules are the reference's sections 3.2 and 3.3, to the letter: users'
images and scripts read these variables and labels.
"""

from __future__ import annotations

from securebuild.dockerfile.sourceinfo import SourceInfo
from securebuild.model.types import Build

LABEL_PREFIX = "io.openshift.build."


def build_info_env(build: Build, info: SourceInfo) -> list[tuple[str, str]]:
    """``OPENSHIFT_BUILD_NAME``, ``_NAMESPACE``, then ``_SOURCE``, ``_REFERENCE``, ``_COMMIT``."""
    env = [
        ("OPENSHIFT_BUILD_NAME", build.name),
        ("OPENSHIFT_BUILD_NAMESPACE", build.namespace),
    ]
    git = build.spec.source.git
    if git is not None:
        env.append(("OPENSHIFT_BUILD_SOURCE", git.uri or ""))
        if git.ref:
            env.append(("OPENSHIFT_BUILD_REFERENCE", git.ref))
        commit = info.commit_id
        revision = build.spec.revision
        if not commit and revision is not None and revision.git is not None:
            commit = revision.git.commit or ""
        if commit:
            env.append(("OPENSHIFT_BUILD_COMMIT", commit))
    return env


def build_labels(build: Build, info: SourceInfo) -> list[tuple[str, str]]:
    """Auto labels with a value, sorted by key, then ``output.imageLabels`` in order."""
    git = build.spec.source.git
    author = f"{info.author_name} <{info.author_email}>" if info.author_name else ""
    ref = (git.ref if git is not None and git.ref else "") or info.ref
    auto = {
        "commit.author": author,
        "commit.date": info.date,
        "commit.id": info.commit_id,
        "commit.message": info.subject,
        "commit.ref": ref,
        "name": build.name,
        "namespace": build.namespace,
        "source-context-dir": build.spec.source.context_dir or "",
        "source-location": info.location,
    }
    labels = [(LABEL_PREFIX + key, value) for key, value in sorted(auto.items()) if value]
    labels.extend((label.name or "", label.value or "") for label in build.spec.output.image_labels)
    return labels
