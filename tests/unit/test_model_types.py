"""The typed model reads every Docker-strategy field and writes back exactly what it read."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest

from securebuild.model import Build, BuildConfig, ModelError, load_object
from securebuild.model.types import DockerBuildStrategy

# A Build as `oc get build -o yaml` shows it, with every field of reference sections 1.2 to 1.5
# and 2.3 set.
FULL_BUILD: dict[str, Any] = {
    "apiVersion": "build.openshift.io/v1",
    "kind": "Build",
    "metadata": {
        "name": "web-7",
        "namespace": "team-a",
        "uid": "0b0e4c1e-1111-2222-3333-444455556666",
        "resourceVersion": "12345",
        "generation": 2,
        "creationTimestamp": "2024-03-04T10:11:12Z",
        "labels": {"openshift.io/build-config.name": "web", "buildconfig": "web"},
        "annotations": {"openshift.io/build.number": "7"},
        "ownerReferences": [
            {
                "apiVersion": "build.openshift.io/v1",
                "kind": "BuildConfig",
                "name": "web",
                "uid": "bc-uid",
                "controller": True,
            }
        ],
        "managedFields": [{"manager": "openshift-apiserver"}],
    },
    "spec": {
        "serviceAccount": "builder",
        "source": {
            "type": "Git",
            "git": {
                "uri": "https://git.example.com/web.git",
                "ref": "main",
                "httpProxy": "http://proxy:3128",
                "httpsProxy": "http://proxy:3128",
                "noProxy": ".cluster.local",
            },
            "contextDir": "app",
            "sourceSecret": {"name": "git-creds"},
            "dockerfile": "FROM busybox\n",
            "images": [
                {
                    "from": {"kind": "DockerImage", "name": "quay.io/x/tools:1"},
                    "as": ["tools"],
                    "paths": [{"sourcePath": "/usr/bin/.", "destinationDir": "bin"}],
                    "pullSecret": {"name": "quay"},
                }
            ],
            "secrets": [{"secret": {"name": "s1"}, "destinationDir": "secrets"}],
            "configMaps": [{"configMap": {"name": "c1"}, "destinationDir": "config"}],
        },
        "revision": {
            "type": "Git",
            "git": {
                "commit": "3f2c9a0d",
                "author": {"name": "Jane Doe", "email": "jane@example.com"},
                "committer": {"name": "Jane Doe", "email": "jane@example.com"},
                "message": "Fix login",
            },
        },
        "strategy": {
            "type": "Docker",
            "dockerStrategy": {
                "from": {"kind": "DockerImage", "name": "busybox:1.36"},
                "pullSecret": {"name": "pull"},
                "noCache": True,
                "env": [
                    {"name": "FOO", "value": "bar"},
                    {"name": "TOKEN", "valueFrom": {"secretKeyRef": {"name": "s", "key": "k"}}},
                ],
                "forcePull": False,
                "dockerfilePath": "Dockerfile.prod",
                "buildArgs": [{"name": "VERSION", "value": "1"}],
                "imageOptimizationPolicy": "SkipLayers",
                "volumes": [
                    {
                        "name": "cache",
                        "source": {"type": "Secret", "secret": {"secretName": "cache"}},
                        "mounts": [{"destinationPath": "/var/cache/x"}],
                    }
                ],
            },
        },
        "output": {
            "to": {"kind": "ImageStreamTag", "name": "web:latest"},
            "pushSecret": {"name": "builder-dockercfg-abcde"},
            "imageLabels": [{"name": "vendor", "value": "Acme"}],
        },
        "resources": {"limits": {"cpu": "1", "memory": "1Gi"}},
        "postCommit": {"script": "npm test", "args": ["--ci"]},
        "completionDeadlineSeconds": 1800,
        "nodeSelector": {"kubernetes.io/os": "linux"},
        "mountTrustedCA": True,
        "triggeredBy": [
            {"message": "Manually triggered"},
            {
                "message": "Image change",
                "imageChangeBuild": {
                    "imageID": "quay.io/x@sha256:1",
                    "fromRef": {"kind": "ImageStreamTag", "name": "nodejs:18"},
                },
            },
            {"message": "GitHub WebHook", "githubWebHook": {"revision": {}, "secret": "<secret>"}},
        ],
    },
    "status": {
        "phase": "Failed",
        "cancelled": False,
        "reason": "DockerBuildFailed",
        "message": "Dockerfile build strategy has failed.",
        "startTimestamp": "2024-03-04T10:11:12Z",
        "completionTimestamp": "2024-03-04T10:12:13Z",
        "duration": 61000000000,
        "outputDockerImageReference": "registry:5000/team-a/web:latest",
        "config": {"kind": "BuildConfig", "name": "web", "namespace": "team-a"},
        "output": {"to": {"imageDigest": "sha256:abc"}},
        "stages": [
            {
                "name": "FetchInputs",
                "startTime": "2024-03-04T10:11:12Z",
                "durationMilliseconds": 900,
                "steps": [
                    {
                        "name": "FetchGitSource",
                        "startTime": "2024-03-04T10:11:12Z",
                        "durationMilliseconds": 900,
                    }
                ],
            }
        ],
        "logSnippet": "error: build error: exit status 1",
        "conditions": [
            {
                "type": "Failed",
                "status": "True",
                "lastUpdateTime": "2024-03-04T10:12:13Z",
                "lastTransitionTime": "2024-03-04T10:12:13Z",
                "reason": "DockerBuildFailed",
                "message": "Dockerfile build strategy has failed.",
            }
        ],
    },
}


def test_full_build_round_trips_exactly() -> None:
    build = Build.from_json(FULL_BUILD)
    assert build.to_json() == FULL_BUILD


def test_full_build_fields_are_typed() -> None:
    build = Build.from_json(FULL_BUILD)
    spec = build.spec
    assert spec.source.git is not None and spec.source.git.no_proxy == ".cluster.local"
    assert spec.source.images[0].as_ == ("tools",)
    assert spec.source.images[0].paths[0].source_path == "/usr/bin/."
    assert spec.source.config_maps[0].config_map.name == "c1"
    docker = spec.strategy.docker
    assert docker.from_ is not None and docker.from_.name == "busybox:1.36"
    assert docker.env[1].value_from is not None
    assert docker.env[1].value_from["secretKeyRef"]["key"] == "k"
    assert docker.volumes[0].mounts[0].destination_path == "/var/cache/x"
    assert spec.output.image_labels[0].value == "Acme"
    assert spec.post_commit.args == ("--ci",)
    assert spec.mount_trusted_ca is True
    assert spec.triggered_by[1].image_change_build is not None
    assert spec.triggered_by[1].image_change_build.image_id == "quay.io/x@sha256:1"
    assert spec.revision is not None and spec.revision.git is not None
    assert spec.revision.git.author is not None and spec.revision.git.author.email
    assert build.status.duration == 61_000_000_000
    assert build.status.stages[0].steps[0].name == "FetchGitSource"
    assert build.metadata.extra["managedFields"][0]["manager"] == "openshift-apiserver"


def test_objects_are_immutable() -> None:
    build = Build.from_json(FULL_BUILD)
    with pytest.raises(dataclasses.FrozenInstanceError):
        build.spec.source.context_dir = "elsewhere"  # type: ignore[misc]
    with pytest.raises(TypeError):
        build.metadata.labels["x"] = "y"  # type: ignore[index]


@pytest.mark.parametrize(
    "doc",
    [
        {"kind": "Build", "apiVersion": "build.openshift.io/v1", "metadata": {"name": "a"}},
        {"kind": "Build", "spec": {"output": {}, "postCommit": {}, "source": {"binary": {}}}},
        {"kind": "Build", "spec": {"source": {"contextDir": ""}, "mountTrustedCA": False}},
        {"kind": "Build", "unknownTopLevel": {"x": [1, {"y": None}]}},
    ],
)
def test_minimal_documents_round_trip(doc: dict[str, Any]) -> None:
    assert Build.from_json(doc).to_json() == doc


def test_strategy_without_docker_strategy_defaults_to_empty() -> None:
    build = Build.from_json({"kind": "Build", "spec": {"strategy": {"type": "Docker"}}})
    assert build.spec.strategy.docker == DockerBuildStrategy()


def test_build_config_round_trips() -> None:
    doc = {
        "apiVersion": "build.openshift.io/v1",
        "kind": "BuildConfig",
        "metadata": {"name": "web", "namespace": "team-a"},
        "spec": {
            "runPolicy": "SerialLatestOnly",
            "successfulBuildsHistoryLimit": 5,
            "failedBuildsHistoryLimit": 5,
            "triggers": [{"type": "ConfigChange"}],
            **{k: v for k, v in FULL_BUILD["spec"].items() if k != "triggeredBy"},
        },
        "status": {"lastVersion": 6},
    }
    bc = BuildConfig.from_json(doc)
    assert bc.status.last_version == 6
    assert bc.to_json() == doc


@pytest.mark.parametrize(
    ("doc", "path", "words"),
    [
        ({"spec": {"source": {"contextDir": 3}}}, "spec.source.contextDir", "must be a string"),
        ({"spec": {"source": {"images": "x"}}}, "spec.source.images", "must be a list"),
        ({"spec": {"postCommit": {"args": [1]}}}, "spec.postCommit.args[0]", "must be a string"),
        (
            {"spec": {"completionDeadlineSeconds": True}},
            "spec.completionDeadlineSeconds",
            "integer",
        ),
        ({"spec": {"mountTrustedCA": "yes"}}, "spec.mountTrustedCA", "true or false"),
        ({"metadata": {"labels": {"a": 1}}}, "metadata.labels.a", "must be a string"),
        ({"spec": []}, "spec", "must be an object"),
    ],
)
def test_wrong_types_are_problems_naming_the_field(
    doc: dict[str, Any], path: str, words: str
) -> None:
    with pytest.raises(ModelError) as info:
        Build.from_json({"kind": "Build", **doc})
    assert [p.path for p in info.value.problems] == [path]
    assert words in info.value.problems[0].message


def test_yaml_keeps_timestamps_and_templates_as_strings() -> None:
    build = load_object(
        "kind: Build\n"
        "metadata: {name: a, creationTimestamp: 2024-03-04T10:11:12Z}\n"
        "spec:\n  strategy:\n    dockerStrategy:\n"
        '      env: [{name: A, value: \'{{ lookup("pipe", "id") }}\'}]\n'
    )
    assert isinstance(build, Build)
    assert build.metadata.creation_timestamp == "2024-03-04T10:11:12Z"
    assert build.spec.strategy.docker.env[0].value == '{{ lookup("pipe", "id") }}'


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ("a: &x [1]\nb: *x\nkind: Build", "aliases are not allowed"),
        ("kind: [", "is not valid YAML"),
        ("kind: Build\n---\nkind: Build", "exactly one object"),
        ("- kind: Build", "must be a mapping"),
        ("kind: Pod", "expected Build or BuildConfig"),
        ("[" * 5000, "(document)"),
    ],
)
def test_bad_documents_are_one_clear_error(text: str, words: str) -> None:
    with pytest.raises(ModelError) as info:
        load_object(text, source="x.yaml")
    assert words in str(info.value)
    assert "\n" not in str(info.value)
