"""Durations as operators write them in the inventory: ``30m``, ``14d``, ``1h30m``, ``3600``.

A bare number is seconds (YAML may hand it over as an int); units are s, m, h, d and w.
``never`` (or ``false``) switches a policy off. Errors name the variable and the host, because
the operator has to find the line to fix among many group_vars files.
"""

from __future__ import annotations

import re

from securebuild.fleet.errors import FleetError

_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}
_PART = re.compile(r"(\d+)([smhdw])")
_WHOLE = re.compile(r"(?:\d+[smhdw])+")


def parse_duration(value: object, *, variable: str, host: str) -> float | None:
    """Seconds of ``value``; ``None`` for never. :class:`FleetError` if it is not a duration."""
    if value is False or (isinstance(value, str) and value.strip().lower() in ("never", "false")):
        return None
    if isinstance(value, bool):
        raise FleetError(f"{variable} of build host {host}: expected a duration, got true")
    if isinstance(value, int | float):
        if value < 0:
            raise FleetError(f"{variable} of build host {host}: {value} is negative")
        return float(value)
    if isinstance(value, str):
        text = value.strip().lower()
        if text.isdigit():
            return float(text)
        if _WHOLE.fullmatch(text):
            return float(sum(int(n) * _UNITS[unit] for n, unit in _PART.findall(text)))
    raise FleetError(
        f"{variable} of build host {host}: {value!r} is not a duration "
        "(seconds, or a number with a unit s, m, h, d or w such as 30m, 14d, 1h30m; or never)"
    )
