"""Problems found in a Build or BuildConfig, each tied to the field that causes it.

A problem is data, not an exception: validation collects every problem in one pass so a tenant
sees all of them at once (as ``oc`` does), and callers decide whether to fail, report or log.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from dataclasses import dataclass

from securebuild.errors import SecurebuildError


@dataclass(frozen=True)
class Problem:
    """One thing wrong with one field: ``path`` is JSON-path-like (``spec.source.git.uri``)."""

    path: str
    message: str

    def __str__(self) -> str:
        return f"{self.path}: {self.message}"


class ModelError(SecurebuildError):
    """An object could not be read as a Build or BuildConfig; carries every problem found."""

    def __init__(self, problems: Iterable[Problem], *, source: str = "") -> None:
        self.problems: tuple[Problem, ...] = tuple(problems)
        self.source = source
        prefix = f"{source}: " if source else ""
        first = str(self.problems[0]) if self.problems else "invalid object"
        more = f" (and {len(self.problems) - 1} more)" if len(self.problems) > 1 else ""
        super().__init__(f"{prefix}{first}{more}")


_PLAIN_KEY = re.compile(r"[A-Za-z0-9_.-]+")


def join_path(base: str, key: str | int) -> str:
    """Extend a field path: ``spec`` + ``source`` -> ``spec.source``; ints index.

    A key that is not a plain word (a label key such as ``example.com/tier``, or anything a
    tenant typed) is written JSON-quoted in brackets, ``labels["a\\nb"]``, so a path is always one
    printable line.
    """
    if isinstance(key, int):
        return f"{base}[{key}]"
    if not _PLAIN_KEY.fullmatch(key):
        return f"{base}[{json.dumps(key)}]"
    return f"{base}.{key}" if base else key
