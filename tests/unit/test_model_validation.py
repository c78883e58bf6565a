"""Validation: OpenShift's rules plus a multi-tenant builder's, each problem naming its field."""

from __future__ import annotations

from typing import Any

import pytest

from securebuild.model import Build, validate
from securebuild.model.validation import MAX_INLINE_DOCKERFILE_BYTES, NO_SOURCE_MESSAGE
from tests.unit.contract_data import BASE_BUILD, build, build_config


def paths(**changes: Any) -> list[str]:
    return [p.path for p in validate(build(**changes))]


def test_baseline_build_and_build_config_are_valid() -> None:
    assert validate(build()) == []
    assert validate(build_config()) == []


VALID_CHANGES: list[dict[str, Any]] = [
    {"spec__source__contextDir": "a/b/c"},
    {"spec__source__contextDir": "./app"},
    {"spec__source__contextDir": "{{ lookup('pipe', 'id') }}/app"},
    {"spec__strategy__dockerStrategy__dockerfilePath": "{{ x }}.Dockerfile"},
    {"spec__source__git__uri": "ssh://git@github.com:22/org/repo.git"},
    {"spec__source__git__uri": "git@github.com:org/repo.git"},
    {"spec__source__git__uri": "http://[::1]:8080/repo.git"},
    {"spec__source__git__uri": "https://user:token@git.example.com/a/b"},
    {"spec__source__git__ref": "refs/pull/12/head"},
    {"spec__source__git__ref": "v1.2.3"},
    {"spec__source__git__ref": "3f2c9a0d"},
    {"spec__source__git": None, "spec__source__binary": {}},
    {"spec__source__git": None, "spec__source__binary": {"asFile": "app.jar"}},
    {"spec__source__git": None, "spec__source__dockerfile": "FROM busybox\n"},
    {"spec__source__dockerfile": "x" * MAX_INLINE_DOCKERFILE_BYTES},
    {"spec__strategy__dockerStrategy__env": [{"name": "A", "value": "{{ lookup('pipe','id') }}"}]},
    {"spec__strategy__dockerStrategy__env": [{"name": "my.var-1", "value": "$(OTHER)"}]},
    {"spec__strategy__dockerStrategy__buildArgs": [{"name": "VERSION", "value": "{{ x }}"}]},
    {"spec__strategy__dockerStrategy__from": {"kind": "DockerImage", "name": "busybox"}},
    {"spec__strategy__dockerStrategy__from": {"name": "nodejs:18", "namespace": "openshift"}},
    {
        "spec__strategy__dockerStrategy__from": {
            "kind": "ImageStreamImage",
            "name": "n@sha256:" + "a" * 64,
        }
    },
    {"spec__output__to": {"kind": "DockerImage", "name": "localhost:5000/a/b:c"}},
    {"spec__output__to": None},
    {"spec__output__imageLabels": [{"name": "io.k8s.display-name", "value": "{{ evil }}\n"}]},
    {"spec__output__imageLabels": [{"name": "example.com/vendor", "value": ""}]},
    {"spec__postCommit": {"script": "echo '{{ x }}'\nrm -rf /", "args": ["-x"]}},
    {"spec__postCommit": {"command": ["/bin/true"], "args": ["a"]}},
    {"spec__completionDeadlineSeconds": 60},
    {"spec__source__images": [{"from": {"kind": "DockerImage", "name": "a/b"}, "as": ["x"]}]},
    {"spec__source__secrets": [{"secret": {"name": "s"}, "destinationDir": "etc/s"}]},
    {"metadata__labels": {"app": "web", "example.com/tier": "front"}},
    {"metadata__annotations": {"example.com/note": "{{ anything goes }}\n"}},
]


@pytest.mark.parametrize("changes", VALID_CHANGES)
def test_valid_variations(changes: dict[str, Any]) -> None:
    assert paths(**changes) == []


INVALID_CHANGES: list[tuple[dict[str, Any], str, str]] = [
    # paths: relative, not escaping
    ({"spec__source__contextDir": "/etc"}, "spec.source.contextDir", "relative"),
    ({"spec__source__contextDir": "../other"}, "spec.source.contextDir", ".."),
    ({"spec__source__contextDir": "a/../../b"}, "spec.source.contextDir", ".."),
    ({"spec__source__contextDir": "-rf"}, "spec.source.contextDir", "option"),
    ({"spec__source__contextDir": "a\nb"}, "spec.source.contextDir", "control"),
    (
        {"spec__strategy__dockerStrategy__dockerfilePath": "../Dockerfile"},
        "spec.strategy.dockerStrategy.dockerfilePath",
        "..",
    ),
    (
        {"spec__strategy__dockerStrategy__dockerfilePath": "/Dockerfile"},
        "spec.strategy.dockerStrategy.dockerfilePath",
        "relative",
    ),
    (
        {"spec__source__secrets": [{"secret": {"name": "s"}, "destinationDir": "../.ssh"}]},
        "spec.source.secrets[0].destinationDir",
        "..",
    ),
    (
        {"spec__source__configMaps": [{"configMap": {"name": "c"}, "destinationDir": "/etc"}]},
        "spec.source.configMaps[0].destinationDir",
        "relative",
    ),
    (
        {
            "spec__source__images": [
                {
                    "from": {"kind": "DockerImage", "name": "a"},
                    "paths": [{"sourcePath": "/x", "destinationDir": "../../x"}],
                }
            ]
        },
        "spec.source.images[0].paths[0].destinationDir",
        "..",
    ),
    (
        {
            "spec__source__images": [
                {"from": {"kind": "DockerImage", "name": "a"}, "paths": [{"sourcePath": "rel"}]}
            ]
        },
        "spec.source.images[0].paths[0].sourcePath",
        "absolute",
    ),
    # git URIs
    ({"spec__source__git__uri": "file:///etc"}, "spec.source.git.uri", "scheme"),
    ({"spec__source__git__uri": "ext::sh -c touch% /tmp/pwned"}, "spec.source.git.uri", ""),
    ({"spec__source__git__uri": "fd::17"}, "spec.source.git.uri", "remote helper"),
    ({"spec__source__git__uri": "-uhttps://x/y"}, "spec.source.git.uri", "'-'"),
    ({"spec__source__git__uri": "ssh://-oProxyCommand=id/x"}, "spec.source.git.uri", "host"),
    ({"spec__source__git__uri": "-oProxyCommand=id@h:x"}, "spec.source.git.uri", "'-'"),
    ({"spec__source__git__uri": "git://host/repo"}, "spec.source.git.uri", "scheme"),
    ({"spec__source__git__uri": "/srv/git/repo"}, "spec.source.git.uri", "local paths"),
    ({"spec__source__git__uri": "../repo"}, "spec.source.git.uri", "local paths"),
    ({"spec__source__git__uri": "https://host/a b"}, "spec.source.git.uri", "spaces"),
    ({"spec__source__git__uri": "https:///repo"}, "spec.source.git.uri", "host"),
    ({"spec__source__git__uri": ""}, "spec.source.git.uri", "required"),
    ({"spec__source__git__uri": None}, "spec.source.git.uri", "required"),
    # refs and commits
    ({"spec__source__git__ref": "--upload-pack=touch /tmp/x"}, "spec.source.git.ref", "option"),
    ({"spec__source__git__ref": "-b"}, "spec.source.git.ref", "option"),
    ({"spec__source__git__ref": "a..b"}, "spec.source.git.ref", ".."),
    ({"spec__source__git__ref": "main\n"}, "spec.source.git.ref", "control"),
    ({"spec__source__git__ref": "x:y"}, "spec.source.git.ref", ""),
    ({"spec__revision": {"git": {"commit": "--all"}}}, "spec.revision.git.commit", "hexadecimal"),
    ({"spec__source__git__httpProxy": "socks5://x"}, "spec.source.git.httpProxy", "http"),
    # names
    (
        {"spec__strategy__dockerStrategy__env": [{"name": "A B", "value": "x"}]},
        "spec.strategy.dockerStrategy.env[0].name",
        "letters",
    ),
    (
        {"spec__strategy__dockerStrategy__env": [{"name": "1A", "value": "x"}]},
        "spec.strategy.dockerStrategy.env[0].name",
        "digit",
    ),
    (
        {"spec__strategy__dockerStrategy__env": [{"name": "A=B", "value": "x"}]},
        "spec.strategy.dockerStrategy.env[0].name",
        "",
    ),
    (
        {"spec__strategy__dockerStrategy__env": [{"value": "x"}]},
        "spec.strategy.dockerStrategy.env[0].name",
        "required",
    ),
    (
        {"spec__strategy__dockerStrategy__buildArgs": [{"name": 'X"', "value": "x"}]},
        "spec.strategy.dockerStrategy.buildArgs[0].name",
        "",
    ),
    (
        {
            "spec__strategy__dockerStrategy__env": [
                {"name": "A", "valueFrom": {"resourceFieldRef": {"resource": "limits.cpu"}}}
            ]
        },
        "spec.strategy.dockerStrategy.env[0].valueFrom.resourceFieldRef",
        "not supported",
    ),
    (
        {"spec__output__imageLabels": [{"name": 'a" "b', "value": "x"}]},
        "spec.output.imageLabels[0].name",
        "valid key",
    ),
    (
        {"spec__output__imageLabels": [{"name": "a", "value": "1"}, {"name": "a", "value": "2"}]},
        "spec.output.imageLabels[1].name",
        "duplicate",
    ),
    ({"metadata__name": "Web_7"}, "metadata.name", "DNS-1123"),
    ({"metadata__name": None}, "metadata.name", "required"),
    ({"metadata__name": "a" * 254}, "metadata.name", "253"),
    ({"metadata__namespace": "team.a"}, "metadata.namespace", "DNS-1123 label"),
    ({"metadata__labels": {"a b": "c"}}, 'metadata.labels["a b"]', "valid key"),
    ({"metadata__labels": {"a\nb": "c"}}, 'metadata.labels["a\\nb"]', "valid key"),
    ({"metadata__labels": {"a": "x" * 64}}, "metadata.labels.a", "63"),
    ({"spec__serviceAccount": "Builder!"}, "spec.serviceAccount", "DNS-1123"),
    ({"spec__source__sourceSecret": {"name": "../x"}}, "spec.source.sourceSecret.name", "DNS"),
    # image references
    (
        {"spec__strategy__dockerStrategy__from": {"kind": "DockerImage", "name": "Busy Box"}},
        "spec.strategy.dockerStrategy.from.name",
        "image reference",
    ),
    (
        {"spec__strategy__dockerStrategy__from": {"kind": "DockerImage", "name": "a\nFROM b"}},
        "spec.strategy.dockerStrategy.from.name",
        "image reference",
    ),
    (
        {"spec__strategy__dockerStrategy__from": {"kind": "ImageStreamTag", "name": "nodejs"}},
        "spec.strategy.dockerStrategy.from.name",
        "<imagestream>:<tag>",
    ),
    (
        {"spec__strategy__dockerStrategy__from": {"kind": "Pod", "name": "x"}},
        "spec.strategy.dockerStrategy.from.kind",
        "one of",
    ),
    (
        {"spec__output__to": {"kind": "DockerImage", "name": "a:b", "namespace": "x"}},
        "spec.output.to.namespace",
        "must not be set",
    ),
    (
        {"spec__output__to": {"kind": "DockerImage", "name": "a/UPPER"}},
        "spec.output.to.name",
        "image reference",
    ),
    (
        {"spec__source__images": [{"from": {"kind": "DockerImage", "name": "-x"}, "as": ["a"]}]},
        "spec.source.images[0].from.name",
        "image reference",
    ),
    (
        {"spec__source__images": [{"from": {"kind": "DockerImage", "name": "a"}}]},
        "spec.source.images[0]",
        "paths or as",
    ),
    (
        {
            "spec__source__images": [
                {"from": {"kind": "DockerImage", "name": "a"}, "as": ["x"]},
                {"from": {"kind": "DockerImage", "name": "b"}, "as": ["x"]},
            ]
        },
        "spec.source.images[1].as[0]",
        "already",
    ),
    # binary, inline Dockerfile, post-commit, strategy, exclusivity
    (
        {"spec__source__git": None, "spec__source__binary": {"asFile": "../x"}},
        "spec.source.binary.asFile",
        "plain file name",
    ),
    (
        {"spec__source__git": None, "spec__source__binary": {"asFile": "a/b"}},
        "spec.source.binary.asFile",
        "plain file name",
    ),
    (
        {"spec__source__git": None, "spec__source__binary": {"asFile": ".."}},
        "spec.source.binary.asFile",
        "'..'",
    ),
    (
        {"spec__source__git": None, "spec__source__binary": {"asFile": "-rf"}},
        "spec.source.binary.asFile",
        "option",
    ),
    (
        {"spec__source__dockerfile": "x" * (MAX_INLINE_DOCKERFILE_BYTES + 1)},
        "spec.source.dockerfile",
        "60000",
    ),
    (
        {"spec__source__dockerfile": "é" * (MAX_INLINE_DOCKERFILE_BYTES // 2 + 1)},
        "spec.source.dockerfile",
        "bytes",
    ),
    ({"spec__source__binary": {}}, "spec.source", "mutually exclusive"),
    ({"spec__source": {"contextDir": "app"}}, "spec.source", NO_SOURCE_MESSAGE),
    ({"spec__postCommit": {"script": "a", "command": ["b"]}}, "spec.postCommit", "both"),
    ({"spec__strategy__type": "Source"}, "spec.strategy.type", "Docker"),
    ({"spec__strategy__type": None}, "spec.strategy.type", "Docker"),
    ({"spec__strategy__sourceStrategy": {"from": {}}}, "spec.strategy.sourceStrategy", "only"),
    (
        {"spec__strategy__dockerStrategy__imageOptimizationPolicy": "Fast"},
        "spec.strategy.dockerStrategy.imageOptimizationPolicy",
        "one of",
    ),
    (
        {
            "spec__strategy__dockerStrategy__volumes": [
                {"name": "v", "source": {"type": "Secret"}, "mounts": [{"destinationPath": "a:b"}]}
            ]
        },
        "spec.strategy.dockerStrategy.volumes[0].mounts[0].destinationPath",
        "absolute",
    ),
    ({"spec__completionDeadlineSeconds": 0}, "spec.completionDeadlineSeconds", "greater"),
    ({"kind": "BuildConfig"}, "kind", "Build"),
    ({"apiVersion": "apps/v1"}, "apiVersion", "build.openshift.io/v1"),
    ({"status__phase": "Done"}, "status.phase", "one of"),
]


@pytest.mark.parametrize(("changes", "path", "words"), INVALID_CHANGES)
def test_invalid_variations_name_the_field(changes: dict[str, Any], path: str, words: str) -> None:
    problems = validate(build(**changes))
    assert path in [p.path for p in problems], problems
    message = next(p.message for p in problems if p.path == path)
    assert words in message
    assert message and "\n" not in message


def test_build_config_rules() -> None:
    problems = validate(
        build_config(spec__runPolicy="Sometimes", spec__failedBuildsHistoryLimit=-1)
    )
    assert [p.path for p in problems] == ["spec.runPolicy", "spec.failedBuildsHistoryLimit"]


def test_every_problem_is_reported_at_once() -> None:
    problems = validate(
        build(
            spec__source__contextDir="/abs",
            spec__source__git__ref="-x",
            spec__strategy__dockerStrategy__dockerfilePath="../D",
        )
    )
    assert len(problems) == 3


# Hostile values found in the wild or in advisories, each put into every free-text field:
# none may crash validation, and none is refused merely for its content where content is data.
HOSTILE_STRINGS = [
    "{{ lookup('pipe', 'id') }}",
    "{% raw %}{{ x }}{% endraw %}",
    "$(id)",
    "`id`",
    "a\nFROM scratch\nRUN rm -rf /",
    'x" "OPENSHIFT_BUILD_NAME"="evil',
    "\\",
    "\x00\x01\x7f",
    "\u2028\u2029\x85",
    "\ud800",
    "😀 ünïcödé 中文",
    "-" * 1000,
    "'; rm -rf / #",
    "--upload-pack=touch /tmp/pwned",
]


@pytest.mark.parametrize("value", HOSTILE_STRINGS)
def test_hostile_values_are_data_in_free_text_fields(value: str) -> None:
    problems = validate(
        build(
            spec__strategy__dockerStrategy__env=[{"name": "A", "value": value}],
            spec__strategy__dockerStrategy__buildArgs=[{"name": "B", "value": value}],
            spec__output__imageLabels=[{"name": "vendor", "value": value}],
            spec__postCommit={"script": value, "args": [value]},
            metadata__annotations={"example.com/x": value},
        )
    )
    assert problems == []


def _unsafe_anywhere(value: str) -> bool:
    """Control characters (C0, C1, line separators, surrogates) or an option-like start."""
    return value.startswith("-") or any(
        ord(ch) < 0x20
        or 0x7F <= ord(ch) <= 0x9F
        or ch in "\u2028\u2029"
        or 0xD800 <= ord(ch) <= 0xDFFF
        for ch in value
    )


@pytest.mark.parametrize("value", HOSTILE_STRINGS)
@pytest.mark.parametrize(
    "field", ["spec__source__git__uri", "metadata__name", "metadata__namespace"]
)
def test_hostile_values_in_names_and_uris_are_rejected(field: str, value: str) -> None:
    problems = validate(build(**{field: value}))
    assert field.replace("__", ".") in [p.path for p in problems]


@pytest.mark.parametrize("value", [v for v in HOSTILE_STRINGS if _unsafe_anywhere(v)])
def test_unsafe_values_in_paths_and_refs_are_rejected(value: str) -> None:
    problems = validate(
        build(
            spec__source__contextDir=value,
            spec__source__git__ref=value,
            spec__strategy__dockerStrategy__dockerfilePath=value,
        )
    )
    assert {p.path for p in problems} >= {
        "spec.source.contextDir",
        "spec.source.git.ref",
        "spec.strategy.dockerStrategy.dockerfilePath",
    }


def test_validation_of_an_empty_document_does_not_crash() -> None:
    problems = validate(Build.from_json({"kind": "Build"}))
    assert {"metadata.name", "spec.source", "spec.strategy.type"} <= {p.path for p in problems}
    assert BASE_BUILD["kind"] == "Build"
