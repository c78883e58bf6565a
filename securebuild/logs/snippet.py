"""``status.logSnippet`` as OpenShift's build controller computes it.

TODO(model): replace with ``securebuild.model``'s logSnippet once that package lands; this
copy exists only so the log store is usable before it does (reference 2.3: last <= 5 lines,
lines longer than 120 characters become the first 58 + ``...`` + the last 59).
"""

from __future__ import annotations

from collections.abc import Sequence

SNIPPET_LINES = 5
MAX_LINE = 120
HEAD = 58
TAIL = 59


def fold_line(line: str) -> str:
    """Shorten one line the way OpenShift does (kept at exactly 120 characters)."""
    if len(line) <= MAX_LINE:
        return line
    return line[:HEAD] + "..." + line[-TAIL:]


def log_snippet(lines: Sequence[str]) -> str:
    """The last five lines of ``lines``, folded, joined by newlines (empty for no lines)."""
    return "\n".join(fold_line(line) for line in lines[-SNIPPET_LINES:])
