"""The Dockerfile rewrite step, on the control side, on the text read from the VM.

Why on the control side: ``securebuild.dockerfile`` is pure Python with no side effects (a
parser and a printer), so running it on untrusted text here executes nothing of the tenant's; it
keeps the VM helper to the standard library and one version of the rewriter (the daemon's) in
use everywhere. The text is bounded (4 MiB) by the VM helper before it is sent.

``securebuild.dockerfile.rewrite_dockerfile`` is the rewriter (OpenShift's exact semantics).
Until it is importable, :func:`_fallback_rewrite` applies the essential part (last FROM
override, ENV and LABEL appended, strategy env after every FROM, image source ``as``) so the
pipeline runs; it does not reserialise the file nor handle post-commit hooks.
"""

from __future__ import annotations

import importlib
import logging
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

logger = logging.getLogger(__name__)

_FROM = re.compile(r"^(\s*FROM\s+)((?:--\S+\s+)*)(\S+)(.*)$", re.IGNORECASE)


@dataclass(frozen=True)
class Rewritten:
    text: str
    log: list[str]
    base_images: list[str]


def _go_quote(value: str) -> str:
    out = ['"']
    for ch in value:
        if ch in ('"', "\\"):
            out.append("\\" + ch)
        elif ch == "\n":
            out.append("\\n")
        elif ch == "\t":
            out.append("\\t")
        elif ord(ch) < 0x20 or ord(ch) == 0x7F:
            out.append(f"\\x{ord(ch):02x}")
        else:
            out.append(ch)
    out.append('"')
    return "".join(out)


def _pairs(items: list[tuple[str, str]]) -> str:
    return " ".join(f"{_go_quote(k)}={_go_quote(v)}" for k, v in items)


def build_info_env(build: Mapping[str, Any], info: Mapping[str, str] | None) -> list[tuple[str, str]]:
    """``OPENSHIFT_BUILD_*`` in OpenShift's order (reference 3.2)."""
    meta = build.get("metadata") or {}
    spec = build.get("spec") or {}
    git = (spec.get("source") or {}).get("git") or {}
    env = [
        ("OPENSHIFT_BUILD_NAME", str(meta.get("name") or "")),
        ("OPENSHIFT_BUILD_NAMESPACE", str(meta.get("namespace") or "")),
    ]
    if git:
        env.append(("OPENSHIFT_BUILD_SOURCE", str(git.get("uri") or "")))
        if git.get("ref"):
            env.append(("OPENSHIFT_BUILD_REFERENCE", str(git["ref"])))
        commit = (info or {}).get("commit") or (
            ((spec.get("revision") or {}).get("git") or {}).get("commit")
        )
        if commit:
            env.append(("OPENSHIFT_BUILD_COMMIT", str(commit)))
    return env


def build_labels(build: Mapping[str, Any], info: Mapping[str, str] | None) -> list[tuple[str, str]]:
    """Auto labels sorted by key, then ``imageLabels`` in order (reference 3.3)."""
    meta = build.get("metadata") or {}
    spec = build.get("spec") or {}
    source = spec.get("source") or {}
    labels: dict[str, str] = {
        "io.openshift.build.name": str(meta.get("name") or ""),
        "io.openshift.build.namespace": str(meta.get("namespace") or ""),
    }
    if source.get("contextDir"):
        labels["io.openshift.build.source-context-dir"] = str(source["contextDir"])
    if info and source.get("git"):
        if info.get("author_name"):
            labels["io.openshift.build.commit.author"] = (
                f"{info['author_name']} <{info.get('author_email', '')}>"
            )
        for key, label in (
            ("date", "io.openshift.build.commit.date"),
            ("commit", "io.openshift.build.commit.id"),
            ("message", "io.openshift.build.commit.message"),
            ("ref", "io.openshift.build.commit.ref"),
            ("location", "io.openshift.build.source-location"),
        ):
            if info.get(key):
                labels[label] = str(info[key])
    result = sorted((k, v) for k, v in labels.items() if v)
    for label in (spec.get("output") or {}).get("imageLabels") or []:
        result.append((str(label.get("name")), str(label.get("value") or "")))
    return result


def _fallback_rewrite(
    text: str, build: Mapping[str, Any], info: Mapping[str, str] | None
) -> tuple[str, list[str]]:
    spec = build.get("spec") or {}
    docker = (spec.get("strategy") or {}).get("dockerStrategy") or {}
    from_name = (docker.get("from") or {}).get("name")
    images = (spec.get("source") or {}).get("images") or []
    replacements = {
        str(alias): str((image.get("from") or {}).get("name"))
        for image in images
        for alias in image.get("as") or []
    }
    env = [(str(e.get("name")), str(e.get("value") or "")) for e in docker.get("env") or []]
    lines = text.splitlines()
    from_idx = [i for i, line in enumerate(lines) if _FROM.match(line)]
    log: list[str] = []
    if from_name and from_idx:
        last = from_idx[-1]
        match = _FROM.match(lines[last])
        assert match is not None
        log.append(f"Replaced Dockerfile FROM image {match.group(3)}")
        lines[last] = f"{match.group(1)}{match.group(2)}{from_name}{match.group(4)}"
    out: list[str] = []
    for line in lines:
        match = _FROM.match(line)
        if match and match.group(3) in replacements:
            line = f"{match.group(1)}{match.group(2)}{replacements[match.group(3)]}{match.group(4)}"
        out.append(line)
        if match and env:
            out.append(f"ENV {_pairs(env)}")
    out.append(f"ENV {_pairs(build_info_env(build, info))}")
    out.append(f"LABEL {_pairs(build_labels(build, info))}")
    return "\n".join(out) + "\n", log


def base_images(text: str, build_args: Mapping[str, str]) -> list[str]:
    """Images the build will pull: every FROM (args expanded) but ``scratch`` and stage names."""
    stages: set[str] = set()
    images: list[str] = []
    arg_defaults: dict[str, str] = {}
    for raw in text.splitlines():
        line = raw.strip()
        upper = line.upper()
        if upper.startswith("ARG ") and not stages and not images:
            name, _, default = line[4:].strip().partition("=")
            arg_defaults[name.strip()] = default.strip().strip('"')
            continue
        match = _FROM.match(line)
        if match:
            image = re.sub(
                r"\$\{?([A-Za-z_][A-Za-z0-9_]*)\}?",
                lambda m: build_args.get(m.group(1), arg_defaults.get(m.group(1), "")),
                match.group(3),
            )
            rest = match.group(4).split()
            if image.lower() != "scratch" and image not in stages and image not in images:
                images.append(image)
            if len(rest) >= 2 and rest[0].lower() == "as":
                stages.add(rest[1])
            continue
        copy_from = re.match(r"^COPY\s+.*--from=(\S+)", line, re.IGNORECASE)
        if copy_from:
            ref = copy_from.group(1)
            if ref not in stages and not ref.isdigit() and ref not in images:
                images.append(ref)
    return images


def rewrite(
    text: str, build: Mapping[str, Any], info: Mapping[str, str] | None
) -> tuple[str, list[str]]:
    """The rewritten Dockerfile and the log lines OpenShift prints for it."""
    try:
        module = importlib.import_module("securebuild.dockerfile")
        func: Any = getattr(module, "rewrite_dockerfile", None)
    except ImportError:
        func = None
    if func is None:
        logger.debug("securebuild.dockerfile.rewrite_dockerfile not available; fallback rewrite")
        return _fallback_rewrite(text, build, info)
    return _adapt(func, text, build, info)


def _adapt(
    func: Any, text: str, build: Mapping[str, Any], info: Mapping[str, str] | None
) -> tuple[str, list[str]]:
    model = importlib.import_module("securebuild.model")
    typed = model.object_from_dict(build)
    result = func(text, typed, info)
    if isinstance(result, str):
        return result, []
    return str(result.text), [str(line) for line in getattr(result, "log", [])]
