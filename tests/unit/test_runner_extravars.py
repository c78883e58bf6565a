"""Extra variables: every tenant string marked unsafe, trusted values unchanged; masking."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from securebuild.runner import build_extravars, mark_unsafe
from securebuild.runner.extravars import UNSAFE_KEY, ExtravarsError, dumps
from securebuild.runner.masking import MASK, SecretMasker

PAYLOAD = "{{ lookup('pipe','id') }}"


def test_nested_tenant_strings_are_all_marked() -> None:
    tenant = {"args": [PAYLOAD, {"k": PAYLOAD}], "n": 3, "flag": True, "none": None}
    result = build_extravars({"out": "/tmp/x", "count": 2}, {"tenant": tenant})
    assert result["out"] == "/tmp/x"
    assert result["count"] == 2
    assert result["tenant"] == {
        "args": [{UNSAFE_KEY: PAYLOAD}, {"k": {UNSAFE_KEY: PAYLOAD}}],
        "n": 3,
        "flag": True,
        "none": None,
    }
    assert json.loads(dumps(result)) == result


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(), inner, max_size=3),
    max_leaves=10,
)


def _strings_unmarked(value: Any) -> list[str]:
    """Strings that are not the content of an unsafe marker."""
    if isinstance(value, str):
        return [value]
    if isinstance(value, dict):
        if set(value) == {UNSAFE_KEY}:
            return []
        return [s for item in value.values() for s in _strings_unmarked(item)]
    if isinstance(value, list):
        return [s for item in value for s in _strings_unmarked(item)]
    return []


@given(json_values)
def test_no_tenant_string_is_left_unmarked(value: Any) -> None:
    assert _strings_unmarked(mark_unsafe(value)) == []


def test_names_are_checked() -> None:
    with pytest.raises(ExtravarsError, match="both trusted and tenant"):
        build_extravars({"a": 1}, {"a": "x"})
    with pytest.raises(ExtravarsError, match="invalid extra variable name"):
        build_extravars({}, {"a-b": "x"})
    with pytest.raises(ExtravarsError, match="not a string"):
        mark_unsafe({1: "x"})
    with pytest.raises(ExtravarsError, match="unsupported"):
        mark_unsafe({"x": object()})
    with pytest.raises(ExtravarsError, match="unsupported"):
        build_extravars({"x": {1, 2}}, {})


def test_masker_hides_secrets_and_their_lines() -> None:
    key = b"-----BEGIN KEY-----\nAAAABBBBCCCC\n-----END KEY-----\n"
    masker = SecretMasker(["s3cr3t-token", key])
    assert masker.mask("url https://u:s3cr3t-token@git") == f"url https://u:{MASK}@git"
    assert masker.mask("key AAAABBBBCCCC here") == f"key {MASK} here"
    assert masker.mask("nothing") == "nothing"
    assert not SecretMasker(["ab", ""])  # too short to mask meaningfully
