"""Extra variables for playbooks, with every tenant string marked unsafe.

Why: extra vars are *trusted* by Ansible, even on ansible-core 2.19 after the trust inversion: a
plain string ``{{ lookup('pipe','id') }}`` passed in ``-e @file`` is rendered (verified here on
2.19.14: it ran ``id``). A string wrapped as ``{"__ansible_unsafe": "..."}`` in the JSON vars
file is loaded by ``AnsibleJSONDecoder`` as untrusted and stays literal wherever it flows: argv
lists, ``copy: content``, templates, ``set_fact``, string concatenation, ``to_json``.

Dict *keys* cannot carry the marker (JSON keys are strings); 2.19.14 does not template keys
(verified), but role authors should still prefer lists of ``{name, value}`` for tenant maps.
``_ANSIBLE_TEMPLAR_UNTRUSTED_TEMPLATE_BEHAVIOR=error`` is not usable: it makes every *use* of an
unsafe value containing ``{{`` fail, which is exactly the legitimate case.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any

from securebuild.errors import SecurebuildError

UNSAFE_KEY = "__ansible_unsafe"
_VAR_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


class ExtravarsError(SecurebuildError):
    """Extra variables that cannot be handed to Ansible safely."""


def mark_unsafe(value: Any) -> Any:
    """Return ``value`` with every string (recursively in dicts, lists, tuples) marked unsafe."""
    if isinstance(value, str):
        return {UNSAFE_KEY: value}
    if isinstance(value, Mapping):
        out: dict[str, Any] = {}
        for key, item in value.items():
            if not isinstance(key, str):
                raise ExtravarsError(f"tenant mapping key {key!r} is not a string")
            out[key] = mark_unsafe(item)
        return out
    if isinstance(value, list | tuple):
        return [mark_unsafe(item) for item in value]
    if value is None or isinstance(value, bool | int | float):
        return value
    raise ExtravarsError(f"unsupported tenant value of type {type(value).__name__}")


def _check_plain(value: Any, where: str) -> None:
    """Trusted values must be JSON data, and must not contain the marker key themselves."""
    if isinstance(value, Mapping):
        for key, item in value.items():
            if not isinstance(key, str):
                raise ExtravarsError(f"{where}: key {key!r} is not a string")
            _check_plain(item, f"{where}.{key}")
    elif isinstance(value, list | tuple):
        for i, item in enumerate(value):
            _check_plain(item, f"{where}[{i}]")
    elif not (value is None or isinstance(value, str | bool | int | float)):
        raise ExtravarsError(f"{where}: unsupported value of type {type(value).__name__}")


def build_extravars(trusted: Mapping[str, Any], tenant: Mapping[str, Any]) -> dict[str, Any]:
    """Merge operator values (as is) and tenant values (all strings unsafe) into extra vars.

    Top-level names must be valid Ansible variable names and may not appear in both.
    """
    for name in (*trusted, *tenant):
        if not _VAR_NAME.match(name):
            raise ExtravarsError(f"invalid extra variable name {name!r}")
    clash = sorted(set(trusted) & set(tenant))
    if clash:
        raise ExtravarsError(f"extra variables given as both trusted and tenant: {clash}")
    for name, value in trusted.items():
        _check_plain(value, name)
    result: dict[str, Any] = {name: value for name, value in trusted.items()}
    for name, value in tenant.items():
        result[name] = mark_unsafe(value)
    return result


def dumps(extravars: Mapping[str, Any]) -> str:
    """The JSON text for ``env/extravars`` (JSON, so ansible's JSON decoder sees the markers)."""
    return json.dumps(extravars, sort_keys=True)
