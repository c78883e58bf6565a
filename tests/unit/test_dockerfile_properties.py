"""Properties: the rewriter and the validator never crash, and no value escapes its instruction.

"Escape" is checked the strong way: the rewritten Dockerfile is parsed back with dockerfile-parse
and must have exactly the instructions the rewriter meant to write, with exactly the values it
generated; hostile values (newlines, quotes, backslashes, Unicode separators, template syntax)
come from hypothesis.
"""

from __future__ import annotations

import json
import os
import re
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from securebuild.dockerfile import DockerfileError, SourceInfo, rewrite_dockerfile
from securebuild.dockerfile.quote import docker_unquote, go_quote, render_pairs
from securebuild.dockerfile.syntax import parse_instructions, serialize
from securebuild.model import Build, ModelError, validate
from tests.unit.contract_data import build

SETTINGS = settings(
    max_examples=int(os.environ.get("SECUREBUILD_HYPOTHESIS_EXAMPLES", "150")),
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
ALIAS = "appimage" + "0" * 32
# Characters that break naive Dockerfile and shell handling, plus anything at all.
NASTY = st.sampled_from(list("\n\r\\\"'$`{}#[]= \t\x00\x0b\x0c\x1c\x85\u2028\u2029\ud800é中😀"))
VALUES = st.text(st.one_of(NASTY, st.characters(blacklist_categories=("Cs",))), max_size=40)
DOCKERFILE_TEXT = st.lists(
    st.one_of(
        NASTY,
        st.sampled_from(["FROM ", "RUN ", "ENV ", "ARG ", "COPY --from=", " AS ", "\\\n", "\n#"]),
        st.characters(blacklist_categories=("Cs",)),
    ),
    max_size=80,
).map("".join)


@SETTINGS
@given(text=DOCKERFILE_TEXT, value=VALUES, script=VALUES)
def test_rewriter_never_crashes_and_output_reparses_identically(
    text: str, value: str, script: str
) -> None:
    b = build(
        spec__strategy__dockerStrategy__env=[{"name": "V", "value": value}],
        spec__postCommit={"script": script} if script else None,
    )
    try:
        out = rewrite_dockerfile(text, b, SourceInfo(message=value), hook_alias=ALIAS)
    except DockerfileError:
        return  # a clear refusal (e.g. an escape directive) is allowed; a crash is not
    out.encode("utf-8")  # printable as UTF-8, whatever the input held
    reparsed = parse_instructions(out)
    assert serialize(reparsed) == out
    assert len(reparsed) == out.count("\n")


@SETTINGS
@given(
    env=st.lists(st.tuples(st.sampled_from(["A", "B", "my.var", "x-y"]), VALUES), max_size=3),
    labels=st.lists(st.tuples(st.sampled_from(["vendor", "example.com/k"]), VALUES), max_size=3),
    script=VALUES.filter(bool),
    info=st.fixed_dictionaries(
        {},
        optional={
            key: VALUES
            for key in ("location", "ref", "commit_id", "date", "author_name", "author_email")
        },
    ),
)
def test_no_value_escapes_its_instruction(
    env: list[tuple[str, str]],
    labels: list[tuple[str, str]],
    script: str,
    info: dict[str, str],
) -> None:
    b = build(
        spec__strategy__dockerStrategy__env=[{"name": k, "value": v} for k, v in env],
        spec__output__imageLabels=[{"name": k, "value": v} for k, v in labels],
        spec__postCommit={"script": script},
    )
    out = rewrite_dockerfile("FROM base\nRUN make\n", b, SourceInfo(**info), hook_alias=ALIAS)
    out.encode("utf-8")
    reparsed = parse_instructions(out)
    keywords = [ins.keyword for ins in reparsed]
    with_env = ["ENV"] if env else []
    assert keywords == [
        "FROM",
        *with_env,
        "RUN",
        "ENV",
        "LABEL",
        "FROM",
        *with_env,
        "RUN",
        "FROM",
        *with_env,
    ]
    if env:
        assert reparsed[1].value == render_pairs(env)
    label_line = next(ins for ins in reparsed if ins.keyword == "LABEL")
    assert label_line.value.endswith(render_pairs(labels)) if labels else True
    hook = reparsed[-2 if not env else -3]
    expected_command = f"/bin/sh -ic '{script}'"
    if hook.value.startswith("["):
        lossless = re.sub("[\ud800-\udfff]", "\ufffd", expected_command)
        assert json.loads(hook.value) == ["/bin/sh", "-c", lossless]
    else:
        assert hook.value == expected_command


@SETTINGS
@given(value=VALUES)
def test_go_quote_is_one_line_and_docker_reads_printable_values_back(value: str) -> None:
    quoted = go_quote(value)
    assert not any(ch in quoted for ch in "\n\r\x00\x85\u2028\u2029")
    assert not quoted[1:-1].replace('\\"', "").count('"')
    if value.isprintable():
        assert docker_unquote(quoted) == value


JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | VALUES,
    lambda children: (
        st.lists(children, max_size=4)
        | st.dictionaries(
            st.sampled_from(["name", "value", "git", "uri", "from", "as", "kind"]) | VALUES,
            children,
            max_size=4,
        )
    ),
    max_leaves=25,
)
SPEC_KEYS = st.sampled_from(
    ["source", "strategy", "output", "postCommit", "revision", "triggeredBy", "nodeSelector"]
)


@SETTINGS
@given(spec=st.dictionaries(SPEC_KEYS, JSON, max_size=5), metadata=JSON)
def test_validator_never_crashes(spec: dict[str, Any], metadata: Any) -> None:
    doc = {"kind": "Build", "metadata": metadata, "spec": spec}
    try:
        obj = Build.from_json(doc)
    except ModelError as exc:
        assert exc.problems
        assert all(p.path and p.message and str(p).isprintable() for p in exc.problems)
        return
    problems = validate(obj)
    assert all(p.path and p.message and "\n" not in str(p) for p in problems)
    assert Build.from_json(obj.to_json()) == obj


@SETTINGS
@given(value=VALUES)
def test_values_are_data_through_the_model(value: str) -> None:
    b = build(spec__strategy__dockerStrategy__env=[{"name": "A", "value": value}])
    assert b.spec.strategy.docker.env[0].value == value
    assert Build.from_json(b.to_json()).spec.strategy.docker.env[0].value == value
    assert validate(b) == []
