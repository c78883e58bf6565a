"""Mask known secret values in output lines before they reach the log store.

Why: a tool may echo a credential (a git URL with a token, a failing ``docker login``), and
``no_log`` only covers task arguments and results, not a process's own output. Every line the
adapter appends goes through :meth:`SecretMasker.mask`.
"""

from __future__ import annotations

from collections.abc import Iterable

MASK = "*****"
MIN_SECRET_LEN = 4  # shorter fragments would mask ordinary words; such secrets are not secret


class SecretMasker:
    def __init__(self, secrets: Iterable[str | bytes] = ()) -> None:
        values: set[str] = set()
        for secret in secrets:
            text = secret.decode("utf-8", "replace") if isinstance(secret, bytes) else secret
            candidates = [text, text.strip(), *text.splitlines()]
            values.update(c.strip() for c in candidates if len(c.strip()) >= MIN_SECRET_LEN)
        self._values = sorted(values, key=len, reverse=True)  # longest first: no partial reveal

    def __bool__(self) -> bool:
        return bool(self._values)

    def mask(self, line: str) -> str:
        for value in self._values:
            if value in line:
                line = line.replace(value, MASK)
        return line
