"""BuildConfig -> Build generation (reference 1.1 and 1.6)."""

from __future__ import annotations

import pytest

from securebuild.model import ModelError, validate
from securebuild.model.generate import BuildRequest, build_name, generate_build, merge_env
from securebuild.model.types import (
    BinaryBuildSource,
    BuildTriggerCause,
    EnvVar,
    ObjectReference,
)
from tests.unit.contract_data import build_config


def test_generated_build_carries_openshift_metadata() -> None:
    bc = build_config(
        metadata__labels={"app": "web"},
        spec__runPolicy="SerialLatestOnly",
        status={"lastVersion": 6},
    )
    b = generate_build(bc, now="2024-03-04T10:11:12Z")
    assert b.name == "web-7"
    assert b.namespace == "team-a"
    assert dict(b.metadata.labels) == {
        "app": "web",
        "openshift.io/build-config.name": "web",
        "buildconfig": "web",
        "openshift.io/build.start-policy": "SerialLatestOnly",
    }
    assert dict(b.metadata.annotations) == {
        "openshift.io/build-config.name": "web",
        "openshift.io/build.number": "7",
    }
    owner = b.metadata.owner_references[0]
    assert (owner.kind, owner.name, owner.uid, owner.controller) == (
        "BuildConfig",
        "web",
        "bc-uid-1",
        True,
    )
    assert b.status.phase == "New"
    assert b.status.config == ObjectReference(kind="BuildConfig", name="web", namespace="team-a")
    assert b.status.conditions[0].type == "New"
    assert b.spec.triggered_by == (BuildTriggerCause(message="Manually triggered"),)
    assert b.spec.source == bc.spec.source
    assert validate(b) == []
    assert b.to_json()["metadata"]["ownerReferences"][0]["apiVersion"] == "build.openshift.io/v1"


def test_request_overrides_env_build_args_and_no_cache() -> None:
    bc = build_config(
        spec__strategy__dockerStrategy={
            "env": [{"name": "A", "value": "1"}, {"name": "B", "value": "2"}],
            "buildArgs": [{"name": "X", "value": "x"}],
            "noCache": False,
        }
    )
    request = BuildRequest(
        env=(EnvVar(name="B", value="two"), EnvVar(name="C", value="3")),
        build_args=(EnvVar(name="Y", value="y"), EnvVar(name="X", value="xx")),
        no_cache=True,
        labels={"openshift.io/build-config.name": "spoof", "extra": "yes"},
        triggered_by=(BuildTriggerCause(message="Generic WebHook"),),
    )
    b = generate_build(bc, number=3, request=request)
    docker = b.spec.strategy.docker
    assert [(e.name, e.value) for e in docker.env] == [("A", "1"), ("B", "two"), ("C", "3")]
    assert [(e.name, e.value) for e in docker.build_args] == [("X", "xx"), ("Y", "y")]
    assert docker.no_cache is True
    assert b.metadata.labels["openshift.io/build-config.name"] == "web"  # system keys win
    assert b.metadata.labels["extra"] == "yes"
    assert b.spec.triggered_by[0].message == "Generic WebHook"
    assert b.name == "web-3"


def test_binary_request_clears_git() -> None:
    bc = build_config(spec__source__dockerfile="FROM a\n")
    b = generate_build(bc, request=BuildRequest(binary=BinaryBuildSource(as_file="Dockerfile")))
    assert b.spec.source.git is None
    assert b.spec.source.binary == BinaryBuildSource(as_file="Dockerfile")
    assert b.spec.source.dockerfile is None  # the uploaded Dockerfile wins
    assert b.spec.source.type == "Binary"
    kept = generate_build(bc, request=BuildRequest(binary=BinaryBuildSource()))
    assert kept.spec.source.dockerfile == "FROM a\n"


def test_resolved_from_replaces_the_strategy_image() -> None:
    bc = build_config(spec__strategy__dockerStrategy__from={"name": "nodejs:18"})
    resolved = ObjectReference(
        kind="DockerImage", name="registry/openshift/nodejs@sha256:" + "a" * 64
    )
    b = generate_build(bc, request=BuildRequest(resolved_from=resolved))
    assert b.spec.strategy.docker.from_ == resolved


def test_paused_build_config_refuses() -> None:
    bc = build_config(metadata__annotations={"openshift.io/build-config.paused": "true"})
    with pytest.raises(ModelError, match="BuildConfig is paused"):
        generate_build(bc)


@pytest.mark.parametrize(
    ("bc_name", "number", "expected_length"),
    [("web", 1, 5), ("a" * 250, 12, 253), ("b" * 253, 1, 253)],
)
def test_build_name_fits(bc_name: str, number: int, expected_length: int) -> None:
    name = build_name(bc_name, number)
    assert len(name) == expected_length
    assert name.endswith(f"-{number}")
    assert build_name(bc_name, number) == name  # deterministic


def test_long_build_config_name_truncates_label_value() -> None:
    bc = build_config(metadata__name="a" * 62 + "-b")
    b = generate_build(bc)
    value = b.metadata.labels["openshift.io/build-config.name"]
    assert value == "a" * 62
    assert b.metadata.annotations["openshift.io/build-config.name"] == "a" * 62 + "-b"


def test_merge_env_keeps_order() -> None:
    merged = merge_env([EnvVar(name="A", value="1")], [EnvVar(name="A", value="2")])
    assert merged == (EnvVar(name="A", value="2"),)
