"""``status.logSnippet``: the tail of a failed build's output, folded like OpenShift does.

The controller keeps the last 5 lines of the termination message and folds each line longer than
120 characters to its first 58 + ``...`` + last 59 (reference 2.3). Go measures lines in bytes,
so this does too; a multi-byte character cut in half becomes U+FFFD per byte, as Go's JSON
encoder writes it.
"""

from __future__ import annotations

import codecs

MAX_LINES = 5
MAX_LINE_LENGTH = 120
HEAD = 58
TAIL = 59
ELLIPSIS = "..."


def _replace_per_byte(exc: UnicodeError) -> tuple[str, int]:
    if not isinstance(exc, UnicodeDecodeError):
        raise exc
    return "\ufffd" * (exc.end - exc.start), exc.end


codecs.register_error("securebuild-go-replace", _replace_per_byte)


def fold_line(line: str) -> str:
    raw = line.encode("utf-8", errors="surrogateescape")
    if len(raw) <= MAX_LINE_LENGTH:
        return line
    head = raw[:HEAD].decode("utf-8", errors="securebuild-go-replace")
    tail = raw[-TAIL:].decode("utf-8", errors="securebuild-go-replace")
    return head + ELLIPSIS + tail


def log_snippet(text: str) -> str:
    """The snippet for a termination message or log tail; empty text gives ``""``."""
    trimmed = text.rstrip("\n")
    if not trimmed:
        return ""
    lines = trimmed.split("\n")[-MAX_LINES:]
    return "\n".join(fold_line(line) for line in lines)
