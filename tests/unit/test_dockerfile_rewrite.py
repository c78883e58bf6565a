"""Dockerfile rewriting, case by case from the reference (section 3)."""

from __future__ import annotations

import re
from typing import Any

import pytest

from securebuild.dockerfile import (
    DockerfileError,
    SourceInfo,
    base_images,
    rewrite,
    rewrite_dockerfile,
)
from securebuild.dockerfile.rewrite import run_instruction
from tests.unit.contract_data import build

ALIAS = "appimage0123456789abcdef0123456789abcdef"
GIT_INFO = SourceInfo(
    location="https://git.example.com/web.git",
    ref="main",
    commit_id="3f2c9a0d1e",
    date="Mon Mar 4 10:11:12 2024 +0100",
    author_name="Jane Doe",
    author_email="jane@example.com",
    message="Fix login\n\nLonger body that is not part of the subject.\n",
)
IST_DIGEST = "image-registry.openshift-image-registry.svc:5000/openshift/nodejs@sha256:" + "ab" * 32
NAME_ENV = '"OPENSHIFT_BUILD_NAME"="web-7" "OPENSHIFT_BUILD_NAMESPACE"="team-a"'
GIT_ENV = (
    f'ENV {NAME_ENV} "OPENSHIFT_BUILD_SOURCE"="https://git.example.com/web.git" '
    '"OPENSHIFT_BUILD_REFERENCE"="main"'
)
MIN_LABEL = (
    'LABEL "io.openshift.build.commit.ref"="main" "io.openshift.build.name"="web-7" '
    '"io.openshift.build.namespace"="team-a" "io.openshift.build.source-context-dir"="app"'
)


def lines(text: str) -> list[str]:
    return text.split("\n")[:-1]


def test_reference_example_3_7() -> None:
    """The worked example of reference 3.7, line for line."""
    b = build(
        spec__strategy__dockerStrategy={
            "from": {"kind": "DockerImage", "name": IST_DIGEST},
            "env": [{"name": "FOO", "value": "bar"}],
        },
        spec__output__imageLabels=[{"name": "vendor", "value": "Acme"}],
        spec__postCommit={"script": "npm test"},
    )
    original = (
        "FROM registry.access.redhat.com/ubi9/nodejs-18\n"
        "COPY . /opt/app-root/src\n"
        "RUN npm install\n"
        'CMD ["npm","start"]\n'
    )
    result = rewrite(original, b, GIT_INFO, hook_alias=ALIAS)
    assert result.log == (
        "Replaced Dockerfile FROM image registry.access.redhat.com/ubi9/nodejs-18",
    )
    assert lines(result.dockerfile) == [
        f"FROM {IST_DIGEST} as {ALIAS}",
        'ENV "FOO"="bar"',
        "COPY . /opt/app-root/src",
        "RUN npm install",
        'CMD ["npm","start"]',
        f'ENV {NAME_ENV} "OPENSHIFT_BUILD_SOURCE"="https://git.example.com/web.git" '
        '"OPENSHIFT_BUILD_REFERENCE"="main" "OPENSHIFT_BUILD_COMMIT"="3f2c9a0d1e"',
        'LABEL "io.openshift.build.commit.author"="Jane Doe <jane@example.com>" '
        '"io.openshift.build.commit.date"="Mon Mar 4 10:11:12 2024 +0100" '
        '"io.openshift.build.commit.id"="3f2c9a0d1e" '
        '"io.openshift.build.commit.message"="Fix login" '
        '"io.openshift.build.commit.ref"="main" "io.openshift.build.name"="web-7" '
        '"io.openshift.build.namespace"="team-a" "io.openshift.build.source-context-dir"="app" '
        '"io.openshift.build.source-location"="https://git.example.com/web.git" "vendor"="Acme"',
        f"FROM {ALIAS}",
        'ENV "FOO"="bar"',
        "RUN /bin/sh -ic 'npm test'",
        f"FROM {ALIAS}",
        'ENV "FOO"="bar"',
    ]


# (name, Build changes, source info, Dockerfile, expected lines)
CASES: list[tuple[str, dict[str, Any], SourceInfo, str, list[str]]] = [
    (
        "single stage, no from override, no source info",
        {},
        SourceInfo(),
        "from busybox\nrun echo hi\n",
        ["FROM busybox", "RUN echo hi", GIT_ENV, MIN_LABEL],
    ),
    (
        "comments, blank lines and continuations are collapsed",
        {},
        SourceInfo(),
        "# a comment\n\nFROM busybox\nRUN echo a \\\n    && echo b \\\n# inner comment\n\n"
        "    && echo c\n\n",
        ["FROM busybox", "RUN echo a     && echo b     && echo c", GIT_ENV, MIN_LABEL],
    ),
    (
        "multi-stage: only the last FROM is replaced, alias kept",
        {
            "spec__strategy__dockerStrategy__from": {
                "kind": "DockerImage",
                "name": "docker.io/library/debian:latest",
            }
        },
        SourceInfo(),
        "FROM golang:1.22 AS build\nRUN go build\nFROM alpine AS final\n"
        "COPY --from=build /app /app\n",
        [
            "FROM golang:1.22 AS build",
            "RUN go build",
            "FROM debian AS final",
            "COPY --from=build /app /app",
            GIT_ENV,
            MIN_LABEL,
        ],
    ),
    (
        "from override: daemon-minimal name, platform flag kept",
        {
            "spec__strategy__dockerStrategy__from": {
                "kind": "DockerImage",
                "name": "index.docker.io/myorg/app:latest",
            }
        },
        SourceInfo(),
        "FROM --platform=linux/amd64 ubuntu\n",
        ["FROM --platform=linux/amd64 myorg/app", GIT_ENV, MIN_LABEL],
    ),
    (
        "from override only for kind DockerImage",
        {"spec__strategy__dockerStrategy__from": {"kind": "ImageStreamTag", "name": "n:1"}},
        SourceInfo(),
        "FROM ubuntu\n",
        ["FROM ubuntu", GIT_ENV, MIN_LABEL],
    ),
    (
        "binary build: only NAME and NAMESPACE, context dir label kept",
        {"spec__source__git": None, "spec__source__binary": {"asFile": "app.jar"}},
        SourceInfo(),
        "FROM busybox\n",
        [
            "FROM busybox",
            f"ENV {NAME_ENV}",
            'LABEL "io.openshift.build.name"="web-7" "io.openshift.build.namespace"="team-a" '
            '"io.openshift.build.source-context-dir"="app"',
        ],
    ),
    (
        "imageLabels come after auto labels and so override them",
        {
            "spec__source__contextDir": None,
            "spec__source__git__ref": None,
            "spec__output__imageLabels": [
                {"name": "io.openshift.build.name", "value": "mine"},
                {"name": "a", "value": "1"},
                {"name": "a", "value": "2"},
            ],
        },
        SourceInfo(),
        "FROM busybox\n",
        [
            "FROM busybox",
            f'ENV {NAME_ENV} "OPENSHIFT_BUILD_SOURCE"="https://git.example.com/web.git"',
            'LABEL "io.openshift.build.name"="web-7" "io.openshift.build.namespace"="team-a" '
            '"io.openshift.build.name"="mine" "a"="1" "a"="2"',
        ],
    ),
    (
        "commit from spec.revision when the clone reported none; ref label from git",
        {"spec__revision": {"type": "Git", "git": {"commit": "abcdef12"}}},
        SourceInfo(ref="detached-ignored"),
        "FROM busybox\n",
        ["FROM busybox", GIT_ENV + ' "OPENSHIFT_BUILD_COMMIT"="abcdef12"', MIN_LABEL],
    ),
    (
        "ref label from the clone when spec has no ref",
        {"spec__source__git__ref": None},
        SourceInfo(ref="HEAD", commit_id="c0ffee"),
        "FROM busybox\n",
        [
            "FROM busybox",
            f'ENV {NAME_ENV} "OPENSHIFT_BUILD_SOURCE"="https://git.example.com/web.git" '
            '"OPENSHIFT_BUILD_COMMIT"="c0ffee"',
            'LABEL "io.openshift.build.commit.id"="c0ffee" "io.openshift.build.commit.ref"="HEAD" '
            '"io.openshift.build.name"="web-7" "io.openshift.build.namespace"="team-a" '
            '"io.openshift.build.source-context-dir"="app"',
        ],
    ),
    (
        "post-commit command + args, last FROM alias reused",
        {"spec__postCommit": {"command": ["/bin/check", "--fast"], "args": ["a b", "c"]}},
        SourceInfo(),
        "FROM busybox AS app\n",
        [
            "FROM busybox AS app",
            GIT_ENV,
            MIN_LABEL,
            "FROM app",
            "RUN /bin/check --fast a b c",
            "FROM app",
        ],
    ),
    (
        "post-commit args only",
        {"spec__postCommit": {"args": ["make", "test"]}},
        SourceInfo(),
        "FROM busybox\n",
        [
            f"FROM busybox as {ALIAS}",
            GIT_ENV,
            MIN_LABEL,
            f"FROM {ALIAS}",
            "RUN make test",
            f"FROM {ALIAS}",
        ],
    ),
    (
        "post-commit script with args",
        {"spec__postCommit": {"script": "./test.sh", "args": ["--ci"]}},
        SourceInfo(),
        "FROM busybox\n",
        [
            f"FROM busybox as {ALIAS}",
            GIT_ENV,
            MIN_LABEL,
            f"FROM {ALIAS}",
            "RUN /bin/sh -ic './test.sh --ci'",
            f"FROM {ALIAS}",
        ],
    ),
    (
        "multi-line post-commit script becomes one exec-form RUN",
        {"spec__postCommit": {"script": "set -e\nmake test\nFROM evil"}},
        SourceInfo(),
        "FROM busybox\n",
        [
            f"FROM busybox as {ALIAS}",
            GIT_ENV,
            MIN_LABEL,
            f"FROM {ALIAS}",
            'RUN ["/bin/sh","-c","/bin/sh -ic \'set -e\\nmake test\\nFROM evil\'"]',
            f"FROM {ALIAS}",
        ],
    ),
    (
        "strategy env after every FROM, including the post-commit ones",
        {
            "spec__strategy__dockerStrategy__env": [
                {"name": "A", "value": "1"},
                {"name": "B", "value": 'say "hi"'},
            ],
            "spec__postCommit": {"script": "true"},
        },
        SourceInfo(),
        "FROM a AS one\nRUN x\nFROM b\n",
        [
            "FROM a AS one",
            'ENV "A"="1" "B"="say \\"hi\\""',
            "RUN x",
            f"FROM b as {ALIAS}",
            'ENV "A"="1" "B"="say \\"hi\\""',
            GIT_ENV,
            MIN_LABEL,
            f"FROM {ALIAS}",
            'ENV "A"="1" "B"="say \\"hi\\""',
            "RUN /bin/sh -ic 'true'",
            f"FROM {ALIAS}",
            'ENV "A"="1" "B"="say \\"hi\\""',
        ],
    ),
    (
        "ARGs before the first FROM stay at the top, other pre-FROM instructions follow",
        {},
        SourceInfo(),
        "LABEL early=1\nARG BASE=busybox\nARG TAG\nFROM ${BASE}:${TAG}\nARG LATE\n",
        [
            "ARG BASE=busybox",
            "ARG TAG",
            "LABEL early=1",
            "FROM ${BASE}:${TAG}",
            "ARG LATE",
            GIT_ENV,
            MIN_LABEL,
        ],
    ),
    (
        "inline Dockerfile replaces the given text",
        {"spec__source__dockerfile": "FROM scratch\nCOPY a /a\n"},
        SourceInfo(),
        "FROM ignored\n",
        ["FROM scratch", "COPY a /a", GIT_ENV, MIN_LABEL],
    ),
    (
        "image-source as: FROM and COPY --from replaced, stage names left alone",
        {
            "spec__source__images": [
                {"from": {"kind": "DockerImage", "name": "quay.io/x/tools:1"}, "as": ["tools"]},
                {"from": {"kind": "DockerImage", "name": "quay.io/x/base:2"}, "as": ["base"]},
            ]
        },
        SourceInfo(),
        "FROM base AS builder\nCOPY --from=tools /bin/t /t\nFROM busybox\n"
        "COPY --from=builder /out /out\n",
        [
            "FROM quay.io/x/base:2 AS builder",
            "COPY --from=quay.io/x/tools:1 /bin/t /t",
            "FROM busybox",
            "COPY --from=builder /out /out",
            GIT_ENV,
            MIN_LABEL,
        ],
    ),
    (
        "image-source as applies after the from override (only if it names the new image)",
        {
            "spec__strategy__dockerStrategy__from": {"kind": "DockerImage", "name": "new:1"},
            "spec__source__images": [
                {"from": {"kind": "DockerImage", "name": "repl:1"}, "as": ["old", "new:1"]}
            ],
        },
        SourceInfo(),
        "FROM old\n",
        ["FROM repl:1", GIT_ENV, MIN_LABEL],
    ),
    (
        "image-source as with build args applied",
        {
            "spec__strategy__dockerStrategy__buildArgs": [{"name": "B", "value": "tools"}],
            "spec__source__images": [
                {"from": {"kind": "DockerImage", "name": "quay.io/t:1"}, "as": ["tools"]}
            ],
        },
        SourceInfo(),
        "ARG B=other\nFROM $B\n",
        ["ARG B=other", "FROM quay.io/t:1", GIT_ENV, MIN_LABEL],
    ),
    (
        "JSON form re-encoded compactly, Go-style HTML escapes, unicode kept",
        {},
        SourceInfo(),
        'FROM busybox\nCMD [ "echo", "<ü> & done" ]\nCOPY --chown=1:1 [ "a b", "/c" ]\n',
        [
            "FROM busybox",
            'CMD ["echo","\\u003cü\\u003e \\u0026 done"]',
            'COPY --chown=1:1 ["a b","/c"]',
            GIT_ENV,
            MIN_LABEL,
        ],
    ),
    (
        "ENV and LABEL of the tenant keep their text; keywords upper-cased",
        {},
        SourceInfo(),
        'from busybox\nenv A="x y" B=z\nlabel "k"="v"\nhealthcheck CMD true\n',
        [
            "FROM busybox",
            'ENV A="x y" B=z',
            'LABEL "k"="v"',
            "HEALTHCHECK CMD true",
            GIT_ENV,
            MIN_LABEL,
        ],
    ),
    (
        "unicode and quotes in every generated value",
        {
            "metadata__name": "web-7",
            "spec__strategy__dockerStrategy__env": [
                {"name": "GREETING", "value": 'héllo "wörld" \\ 中'}
            ],
            "spec__output__imageLabels": [{"name": "x", "value": "tab\there\nnew\u2028line"}],
        },
        SourceInfo(author_name='Zoë "Z" O\'Brien', author_email="z@ex.ample", message="Ünïcode ✓"),
        "FROM busybox\n",
        [
            "FROM busybox",
            'ENV "GREETING"="héllo \\"wörld\\" \\\\ 中"',
            GIT_ENV,
            'LABEL "io.openshift.build.commit.author"="Zoë \\"Z\\" O\'Brien <z@ex.ample>" '
            '"io.openshift.build.commit.message"="Ünïcode ✓" '
            '"io.openshift.build.commit.ref"="main" '
            '"io.openshift.build.name"="web-7" "io.openshift.build.namespace"="team-a" '
            '"io.openshift.build.source-context-dir"="app" "x"="tab\\there\\nnew\\u2028line"',
        ],
    ),
    (
        "templating syntax stays literal",
        {
            "spec__strategy__dockerStrategy__env": [
                {"name": "T", "value": "{{ lookup('pipe','id') }}"}
            ]
        },
        SourceInfo(),
        "FROM busybox\nRUN echo '{{ x }}'\n",
        [
            "FROM busybox",
            "ENV \"T\"=\"{{ lookup('pipe','id') }}\"",
            "RUN echo '{{ x }}'",
            GIT_ENV,
            MIN_LABEL,
        ],
    ),
]


@pytest.mark.parametrize(
    ("changes", "info", "dockerfile", "expected"),
    [case[1:] for case in CASES],
    ids=[case[0] for case in CASES],
)
def test_rewrite_cases(
    changes: dict[str, Any], info: SourceInfo, dockerfile: str, expected: list[str]
) -> None:
    assert (
        lines(rewrite_dockerfile(dockerfile, build(**changes), info, hook_alias=ALIAS)) == expected
    )


def test_generated_hook_alias_is_appimage_and_32_hex() -> None:
    text = rewrite_dockerfile(
        "FROM busybox\n", build(spec__postCommit={"script": "true"}), SourceInfo()
    )
    aliases = set(re.findall(r"appimage[0-9a-f]+", text))
    assert len(aliases) == 1
    assert re.fullmatch(r"appimage[0-9a-f]{32}", aliases.pop())


@pytest.mark.parametrize(
    ("message", "expected"),
    [
        ("Fix login", "Fix login"),
        ("  padded subject  \n", "padded subject"),
        ("first line\nsecond line\n\nbody", "first line second line"),
        ("x" * 80, "x" * 80),
        ("x" * 81, "x" * 78 + ".."),
        ("中" * 41, "中" * 39 + ".."),
        ("", ""),
    ],
)
def test_commit_message_label_is_git_subject_cut_to_80_columns(message: str, expected: str) -> None:
    text = rewrite_dockerfile("FROM a\n", build(), SourceInfo(message=message))
    found = re.search(r'"io\.openshift\.build\.commit\.message"="([^"]*)"', text)
    assert (found.group(1) if found else "") == expected


def test_author_label_needs_a_name() -> None:
    text = rewrite_dockerfile("FROM a\n", build(), SourceInfo(author_email="only@mail"))
    assert "commit.author" not in text


def test_unresolved_value_from_is_refused() -> None:
    b = build(
        spec__strategy__dockerStrategy__env=[
            {"name": "T", "valueFrom": {"secretKeyRef": {"name": "s", "key": "k"}}}
        ]
    )
    with pytest.raises(DockerfileError, match="valueFrom"):
        rewrite_dockerfile("FROM a\n", b, SourceInfo())


@pytest.mark.parametrize("directive", ["# escape=`", "#escape = `"])
def test_backtick_escape_directive_is_refused(directive: str) -> None:
    with pytest.raises(DockerfileError, match="escape"):
        rewrite_dockerfile(f"{directive}\nFROM a\n", build(), SourceInfo())


def test_escape_comment_after_a_blank_line_is_a_comment() -> None:
    text = rewrite_dockerfile("\n# escape=`\nFROM a\nRUN echo \\\n  b\n", build(), SourceInfo())
    assert lines(text)[:2] == ["FROM a", "RUN echo   b"]


def test_syntax_directive_is_dropped() -> None:
    """A ``# syntax=`` line would pick a BuildKit frontend; OpenShift drops comments."""
    text = rewrite_dockerfile("# syntax=evil/frontend\nFROM a\n", build(), SourceInfo())
    assert "syntax" not in text


def test_trailing_continuation_at_end_of_file() -> None:
    text = rewrite_dockerfile("FROM a\nRUN echo hi \\", build(), SourceInfo())
    assert lines(text)[1] == "RUN echo hi"


def test_dockerfile_without_from_is_left_for_docker_to_refuse() -> None:
    """OpenShift fails such builds in docker-build with "no FROM image in Dockerfile"."""
    text = rewrite_dockerfile("RUN true\n", build(spec__postCommit={"script": "x"}), SourceInfo())
    assert lines(text) == ["RUN true", GIT_ENV, MIN_LABEL]


@pytest.mark.parametrize(
    ("command", "expected"),
    [
        ("make test", "RUN make test"),
        ("a\\", 'RUN ["/bin/sh","-c","a\\\\"]'),
        ('["x"]', 'RUN ["/bin/sh","-c","[\\"x\\"]"]'),
        (" lead", 'RUN ["/bin/sh","-c"," lead"]'),
        ("a\rb", 'RUN ["/bin/sh","-c","a\\rb"]'),
    ],
)
def test_run_instruction_falls_back_to_exec_form(command: str, expected: str) -> None:
    assert run_instruction(command).render() == expected


@pytest.mark.parametrize(
    ("dockerfile", "args", "expected"),
    [
        ("FROM busybox\n", {}, ["busybox"]),
        ("FROM scratch\nCOPY a /\n", {}, []),
        (
            "FROM golang AS build\nFROM build AS test\nFROM alpine\nCOPY --from=build /a /a\n"
            "COPY --from=quay.io/x/y:1 /b /b\nCOPY --from=0 /c /c\n",
            {},
            ["golang", "alpine", "quay.io/x/y:1"],
        ),
        ("ARG V=1.0\nFROM img:${V}\nFROM img:$V\n", {}, ["img:1.0"]),
        ("ARG V=1.0\nFROM img:${V}\n", {"V": "2.0"}, ["img:2.0"]),
        ("ARG V\nFROM img:${V:-3}\n", {}, ["img:3"]),
        ("FROM img:$UNDECLARED\n", {"UNDECLARED": "x"}, ["img:"]),
        ("FROM --platform=linux/arm64 a\n", {}, ["a"]),
    ],
)
def test_base_images(dockerfile: str, args: dict[str, str], expected: list[str]) -> None:
    assert base_images(dockerfile, args) == expected


def test_base_images_of_a_rewritten_dockerfile() -> None:
    b = build(
        spec__strategy__dockerStrategy__from={"kind": "DockerImage", "name": "debian:12"},
        spec__postCommit={"script": "true"},
    )
    text = rewrite_dockerfile("FROM golang AS b\nFROM busybox\n", b, SourceInfo())
    assert base_images(text) == ["golang", "debian:12"]
