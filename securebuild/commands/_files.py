"""Reading the CLI's input files with one-line errors (shared by the contract commands)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

from securebuild.errors import SecurebuildError
from securebuild.model.parse import MAX_DOCUMENT_BYTES, load_document, read_text
from securebuild.model.types import KIND_BUILD, KIND_BUILD_CONFIG


def read_input(name: str, *, what: str) -> str:
    """A file's UTF-8 text, ``-`` meaning stdin; size-bounded."""
    if name == "-":
        data = sys.stdin.buffer.read(MAX_DOCUMENT_BYTES + 1)
        if len(data) > MAX_DOCUMENT_BYTES:
            raise SecurebuildError(f"stdin: the {what} is larger than {MAX_DOCUMENT_BYTES} bytes")
        try:
            return data.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise SecurebuildError(f"stdin: the {what} is not UTF-8 text") from exc
    return read_text(Path(name), what=what)


def read_object_document(name: str, *, kinds: tuple[str, ...]) -> dict[str, object]:
    """The decoded document of a Build/BuildConfig file whose kind is one of ``kinds``."""
    source = "stdin" if name == "-" else name
    document = load_document(read_input(name, what="file"), source=source)
    kind = document.get("kind")
    if kind not in kinds:
        shown = f"kind {kind!r}" if isinstance(kind, str) else "no kind"
        expected = " or ".join(kinds)
        raise SecurebuildError(f"{source}: the document has {shown}; expected {expected}")
    return dict(document)


def read_json_object(name: str, *, what: str) -> object:
    text = read_input(name, what=what)
    try:
        return json.loads(text)
    except ValueError as exc:
        raise SecurebuildError(f"{name}: the {what} is not valid JSON: {exc}") from exc


OBJECT_KINDS = (KIND_BUILD, KIND_BUILD_CONFIG)


def write_stdout(text: str) -> None:
    """UTF-8 whatever the locale: a Dockerfile with unicode must not fail under LANG=C."""
    sys.stdout.flush()
    sys.stdout.buffer.write(text.encode("utf-8"))
    sys.stdout.buffer.flush()
