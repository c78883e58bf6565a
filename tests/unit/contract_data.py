"""Builds for the contract tests: a valid baseline and a way to change one field of it."""

from __future__ import annotations

import copy
from typing import Any

from securebuild.model import Build, BuildConfig

BASE_BUILD: dict[str, Any] = {
    "apiVersion": "build.openshift.io/v1",
    "kind": "Build",
    "metadata": {"name": "web-7", "namespace": "team-a"},
    "spec": {
        "source": {
            "type": "Git",
            "git": {"uri": "https://git.example.com/web.git", "ref": "main"},
            "contextDir": "app",
        },
        "strategy": {"type": "Docker", "dockerStrategy": {}},
        "output": {"to": {"kind": "ImageStreamTag", "name": "web:latest"}},
    },
}


def set_path(doc: dict[str, Any], path: str, value: Any) -> None:
    """``set_path(d, "spec.source.contextDir", "x")``; ``None`` deletes the key."""
    *parents, last = path.split(".")
    node = doc
    for key in parents:
        node = node.setdefault(key, {})
    if value is None:
        node.pop(last, None)
    else:
        node[last] = value


def build_doc(**changes: Any) -> dict[str, Any]:
    """The baseline Build document with ``changes`` applied (``__`` separates path parts)."""
    doc = copy.deepcopy(BASE_BUILD)
    for key, value in changes.items():
        set_path(doc, key.replace("__", "."), value)
    return doc


def build(**changes: Any) -> Build:
    return Build.from_json(build_doc(**changes))


def build_config_doc(**changes: Any) -> dict[str, Any]:
    doc = copy.deepcopy(BASE_BUILD)
    doc["kind"] = "BuildConfig"
    doc["metadata"] = {"name": "web", "namespace": "team-a", "uid": "bc-uid-1"}
    for key, value in changes.items():
        set_path(doc, key.replace("__", "."), value)
    return doc


def build_config(**changes: Any) -> BuildConfig:
    return BuildConfig.from_json(build_config_doc(**changes))
