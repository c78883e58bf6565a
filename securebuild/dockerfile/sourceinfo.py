"""What the clone found (``/tmp/build/sourceinfo.json`` on OpenShift), and git's formatting of it.

The pipeline reads these values in the VM, raw as git reports them; this module applies the
formatting OpenShift gets from git itself, so the labels match: the commit subject is the first
paragraph of the message on one line, cut like ``%<(80,trunc)%s`` to 80 display columns ending
in ``..``, then trimmed.
"""

from __future__ import annotations

import json
import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass, fields

from securebuild.dockerfile.errors import DockerfileError

SUBJECT_WIDTH = 80


@dataclass(frozen=True, kw_only=True)
class SourceInfo:
    """Every field may be empty: ``SourceInfo()`` is a binary build (nothing was cloned)."""

    location: str = ""
    ref: str = ""
    commit_id: str = ""
    date: str = ""
    author_name: str = ""
    author_email: str = ""
    message: str = ""

    @classmethod
    def from_dict(cls, data: object) -> SourceInfo:
        """Read the INFO.json mapping; unknown keys and non-string values are errors."""
        if not isinstance(data, Mapping):
            raise DockerfileError("source info must be a JSON object")
        known = {f.name for f in fields(cls)}
        unknown = sorted(json.dumps(str(k)) for k in data if k not in known)
        if unknown:
            raise DockerfileError(
                f"source info has unknown keys {', '.join(unknown)}; "
                f"known keys are {', '.join(sorted(known))}"
            )
        for key, value in data.items():
            if not isinstance(value, str):
                raise DockerfileError(f"source info key {json.dumps(str(key))} must be a string")
        return cls(**{str(k): str(v) for k, v in data.items()})

    @property
    def subject(self) -> str:
        return commit_subject(self.message)


def _width(ch: str) -> int:
    if unicodedata.category(ch) in ("Mn", "Me", "Cf", "Cc"):
        return 0
    return 2 if unicodedata.east_asian_width(ch) in ("W", "F") else 1


def commit_subject(message: str) -> str:
    """git's ``%s`` (first paragraph, lines joined by spaces) as ``%<(80,trunc)``, trimmed."""
    lines = message.replace("\r\n", "\n").split("\n")
    while lines and not lines[0].strip():
        lines.pop(0)
    paragraph: list[str] = []
    for line in lines:
        if not line.strip():
            break
        paragraph.append(line.strip())
    subject = " ".join(paragraph)
    if sum(_width(ch) for ch in subject) > SUBJECT_WIDTH:
        # strbuf_utf8_replace(sb, 78, len, ".."): characters starting at column 78 or later
        # are replaced by ".." (zero-width ones are kept, as git does).
        out: list[str] = []
        column = 0
        replaced = False
        for ch in subject:
            width = _width(ch)
            if width and column >= SUBJECT_WIDTH - 2:
                if not replaced:
                    out.append("..")
                    replaced = True
                column += width
                continue
            out.append(ch)
            column += width
        subject = "".join(out)
    return subject.strip()
