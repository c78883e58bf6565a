"""Strategy env as the controller hands it to the builder: valueFrom resolved, $(VAR) expanded.

The controller resolves ``valueFrom`` (Secret/ConfigMap keys, field refs) and expands ``$(VAR)``
references to earlier entries with Kubernetes' rules before the values reach the Dockerfile
``ENV`` (reference 1.3). Resolution needs the cluster, so the caller passes the resolved values;
the expansion is here, pure: ``$(NAME)`` of an earlier entry is replaced, ``$$`` is a literal
``$``, an unknown or unterminated reference stays as written. Nothing else in a value is special.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from securebuild.model.problems import ModelError, Problem
from securebuild.model.types import EnvVar


def expand(value: str, variables: Mapping[str, str]) -> str:
    """Kubernetes' ``expansion.Expand`` with ``MappingFuncFor(variables)``."""
    out: list[str] = []
    i = 0
    while i < len(value):
        ch = value[i]
        if ch != "$" or i + 1 >= len(value):
            out.append(ch)
            i += 1
            continue
        nxt = value[i + 1]
        if nxt == "$":
            out.append("$")
            i += 2
        elif nxt == "(":
            end = value.find(")", i + 2)
            if end == -1:
                out.append("$(")
                i += 2
            else:
                name = value[i + 2 : end]
                out.append(variables.get(name, f"$({name})"))
                i = end + 1
        else:
            out.append("$" + nxt)
            i += 2
    return "".join(out)


def resolve_env(
    env: Iterable[EnvVar], resolved: Mapping[str, str] | None = None, *, path: str = "env"
) -> tuple[EnvVar, ...]:
    """Plain ``name``/``value`` entries; ``resolved`` maps names of ``valueFrom`` entries."""
    resolved = resolved or {}
    known: dict[str, str] = {}
    out: list[EnvVar] = []
    problems: list[Problem] = []
    for index, var in enumerate(env):
        name = var.name or ""
        if var.value_from is not None and not var.value:
            if name not in resolved:
                problems.append(Problem(f"{path}[{index}].valueFrom", "could not be resolved"))
                continue
            value = resolved[name]
        else:
            value = expand(var.value or "", known)
        known[name] = value
        out.append(EnvVar(name=name, value=value))
    if problems:
        raise ModelError(problems)
    return tuple(out)
