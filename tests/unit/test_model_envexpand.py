"""$(VAR) expansion and valueFrom resolution of strategy env (reference 1.3)."""

from __future__ import annotations

import pytest

from securebuild.model import ModelError
from securebuild.model.envexpand import expand, resolve_env
from securebuild.model.types import EnvVar


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("$(A)", "1"),
        ("x$(A)y$(B)", "x1y2"),
        ("$$(A)", "$(A)"),
        ("$(UNKNOWN)", "$(UNKNOWN)"),
        ("$(A", "$(A"),
        ("$A ${A} $", "$A ${A} $"),
        ("{{ $(A) }}", "{{ 1 }}"),
        ("$$$$", "$$"),
    ],
)
def test_expand_matches_kubernetes(value: str, expected: str) -> None:
    assert expand(value, {"A": "1", "B": "2"}) == expected


def test_resolve_env_expands_earlier_entries_only() -> None:
    env = (
        EnvVar(name="A", value="a"),
        EnvVar(name="B", value="$(A)-$(C)"),
        EnvVar(name="C", value_from={"secretKeyRef": {"name": "s", "key": "k"}}),
        EnvVar(name="D", value="$(C)"),
    )
    resolved = resolve_env(env, {"C": "secret"})
    assert [(v.name, v.value) for v in resolved] == [
        ("A", "a"),
        ("B", "a-$(C)"),
        ("C", "secret"),
        ("D", "secret"),
    ]
    assert all(v.value_from is None for v in resolved)


def test_unresolved_value_from_is_a_problem() -> None:
    env = (EnvVar(name="C", value_from={"configMapKeyRef": {"name": "c", "key": "k"}}),)
    with pytest.raises(ModelError) as info:
        resolve_env(env, path="spec.strategy.dockerStrategy.env")
    assert str(info.value.problems[0]) == (
        "spec.strategy.dockerStrategy.env[0].valueFrom: could not be resolved"
    )
