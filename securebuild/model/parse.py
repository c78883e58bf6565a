"""Reading Build and BuildConfig documents from YAML or JSON text and files.

Tenant documents are untrusted: YAML aliases (the "billion laughs" expansion) are refused,
timestamps stay strings (as the API serves them), the size is bounded, and every failure is a
:class:`~securebuild.model.problems.ModelError` with one clear sentence, never a traceback.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml

from securebuild.model.problems import ModelError, Problem
from securebuild.model.types import KIND_BUILD, KIND_BUILD_CONFIG, Build, BuildConfig

#: Larger than any object etcd accepts (1.5 MiB), small enough to read at once.
MAX_DOCUMENT_BYTES = 4 * 1024 * 1024


class _SafeLoader(yaml.SafeLoader):
    """SafeLoader without aliases and without the implicit timestamp type."""

    def compose_node(self, parent: Any, index: Any) -> Any:
        if self.check_event(yaml.AliasEvent):
            event: Any = self.peek_event()  # type: ignore[no-untyped-call]
            raise yaml.composer.ComposerError(
                None, None, "YAML aliases are not allowed", event.start_mark
            )
        return super().compose_node(parent, index)


_SafeLoader.yaml_implicit_resolvers = {
    key: [(tag, rx) for tag, rx in resolvers if tag != "tag:yaml.org,2002:timestamp"]
    for key, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}


def load_document(text: str, *, source: str = "") -> Mapping[str, Any]:
    """Decode one YAML (or JSON) document into a mapping."""
    try:
        documents = [d for d in yaml.load_all(text, Loader=_SafeLoader) if d is not None]
    except yaml.YAMLError as exc:
        detail = _yaml_error(exc)
        raise ModelError(
            [Problem("(document)", f"is not valid YAML: {detail}")], source=source
        ) from exc
    except RecursionError as exc:
        raise ModelError([Problem("(document)", "is nested too deeply")], source=source) from exc
    if len(documents) != 1:
        raise ModelError(
            [Problem("(document)", f"must hold exactly one object, found {len(documents)}")],
            source=source,
        )
    document = documents[0]
    if not isinstance(document, Mapping):
        raise ModelError([Problem("(document)", "must be a mapping (an object)")], source=source)
    return document


def _yaml_error(exc: yaml.YAMLError) -> str:
    if isinstance(exc, yaml.MarkedYAMLError) and exc.problem_mark is not None:
        mark = exc.problem_mark
        return f"line {mark.line + 1}, column {mark.column + 1}: {exc.problem}"
    return " ".join(str(exc).split())


def object_from_dict(data: Mapping[str, Any], *, source: str = "") -> Build | BuildConfig:
    """A Build or BuildConfig by its ``kind``; any other kind is a clear error."""
    kind = data.get("kind")
    try:
        if kind == KIND_BUILD:
            return Build.from_json(data)
        if kind == KIND_BUILD_CONFIG:
            return BuildConfig.from_json(data)
    except ModelError as exc:
        raise ModelError(exc.problems, source=source) from exc
    except RecursionError as exc:
        raise ModelError([Problem("(document)", "is nested too deeply")], source=source) from exc
    shown = repr(kind) if isinstance(kind, str) else "missing"
    raise ModelError(
        [Problem("kind", f"is {shown}; expected {KIND_BUILD} or {KIND_BUILD_CONFIG}")],
        source=source,
    )


def load_object(text: str, *, source: str = "") -> Build | BuildConfig:
    return object_from_dict(load_document(text, source=source), source=source)


def read_text(path: Path, *, what: str = "file") -> str:
    """Read a UTF-8 file with a size bound; errors become one-line ModelErrors."""
    try:
        with path.open("rb") as handle:
            data = handle.read(MAX_DOCUMENT_BYTES + 1)
    except OSError as exc:
        reason = exc.strerror or str(exc)
        raise ModelError([Problem(str(path), f"cannot read the {what}: {reason}")]) from exc
    if len(data) > MAX_DOCUMENT_BYTES:
        raise ModelError(
            [Problem(str(path), f"the {what} is larger than {MAX_DOCUMENT_BYTES} bytes")]
        )
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ModelError(
            [Problem(str(path), f"the {what} is not UTF-8 text ({exc.reason})")]
        ) from exc


def load_file(path: Path) -> Build | BuildConfig:
    return load_object(read_text(path), source=str(path))
