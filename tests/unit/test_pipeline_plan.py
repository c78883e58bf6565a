"""securebuild.pipeline.plan: what a Build becomes before anything runs (pure Python)."""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest

from securebuild.pipeline.execute import BuildOutcome
from securebuild.pipeline.plan import PlanError, SecretData, docker_auths, make_plan

REGISTRY = "10.0.2.2:5000"


def _build(**spec: Any) -> dict[str, Any]:
    return {
        "kind": "Build",
        "metadata": {"name": "app-1", "namespace": "team"},
        "spec": {"strategy": {"type": "Docker", "dockerStrategy": {}}, **spec},
    }


def _registry_secret(name: str = "reg") -> SecretData:
    auth = base64.b64encode(b"user:pa55word").decode()
    config = {"auths": {f"https://{REGISTRY}": {"auth": auth}}}
    return SecretData(name, {".dockerconfigjson": json.dumps(config).encode()})


def test_git_source_secret_files_are_vm_secrets_and_values_are_not_in_tenant_data() -> None:
    secret = SecretData("git", {"username": b"bob", "token": b"t0ken-value", "ca.crt": b"CA"})
    plan = make_plan(
        _build(
            source={
                "git": {"uri": "https://git.example.com/a.git", "ref": "main"},
                "sourceSecret": {"name": "git"},
                "contextDir": "./app/",
            }
        ),
        secrets={"git": secret},
        config_maps={},
    )
    params = plan.tenant["params"]
    assert params["contextDir"] == "app"
    assert set(params["sourceSecret"]) == {"username", "token", "ca.crt"}
    assert {plan.secrets[i] for i in params["sourceSecret"].values()} == {
        b"bob",
        b"t0ken-value",
        b"CA",
    }
    assert all(ident.startswith("vm-") for ident in params["sourceSecret"].values())
    assert "t0ken-value" not in json.dumps(plan.tenant)
    assert params["hooks"]["env"] == {
        "OPENSHIFT_BUILD_NAME": "app-1",
        "OPENSHIFT_BUILD_NAMESPACE": "team",
        "OPENSHIFT_BUILD_SOURCE": "https://git.example.com/a.git",
        "OPENSHIFT_BUILD_REFERENCE": "main",
    }


def test_push_and_pull_credentials_stay_on_the_control_side() -> None:
    plan = make_plan(
        _build(
            source={"dockerfile": "FROM busybox\n"},
            strategy={"type": "Docker", "dockerStrategy": {"pullSecret": {"name": "reg"}}},
            output={
                "to": {"kind": "DockerImage", "name": f"{REGISTRY}/team/app:v1"},
                "pushSecret": {"name": "reg"},
            },
        ),
        secrets={"reg": _registry_secret()},
        config_maps={},
    )
    assert json.loads(plan.secrets["ctl-push-auth"]) == {"username": "user", "password": "pa55word"}
    assert json.loads(plan.secrets["ctl-pull-auths"]) == {
        REGISTRY: {"username": "user", "password": "pa55word"}
    }
    assert not any(k.startswith("vm-") for k in plan.secrets)  # nothing goes to the VM
    assert plan.secrets["mask-push"] == b"pa55word"
    assert plan.output_ref == f"{REGISTRY}/team/app:v1"


def test_templating_payloads_are_kept_as_data() -> None:
    payload = "{{ lookup('pipe','id') }}"
    plan = make_plan(
        _build(
            source={"dockerfile": "FROM busybox\n"},
            strategy={
                "type": "Docker",
                "dockerStrategy": {"buildArgs": [{"name": "X", "value": payload}]},
            },
        ),
        secrets={},
        config_maps={},
    )
    assert plan.tenant["buildArgs"] == [{"name": "X", "value": payload}]


@pytest.mark.parametrize(
    ("source", "strategy", "fragment"),
    [
        ({"dockerfile": "FROM x", "contextDir": "../etc"}, {}, "spec.source.contextDir"),
        ({"dockerfile": "FROM x"}, {"dockerfilePath": "/etc/passwd"}, "dockerfilePath"),
        ({"git": {"uri": "--upload-pack=touch /tmp/x"}}, {}, "spec.source.git.uri"),
        ({"git": {"uri": "https://h/r.git", "ref": "-c core.x=y"}}, {}, "spec.source.git.ref"),
        ({"git": {"uri": "https://h/r.git", "ref": "a b"}}, {}, "spec.source.git.ref"),
        ({"dockerfile": "FROM x"}, {"buildArgs": [{"name": "A B", "value": "1"}]}, "buildArgs"),
        ({}, {}, "must provide a value for at least one of source"),
        (
            {"dockerfile": "FROM x", "secrets": [{"secret": {"name": "missing"}}]},
            {},
            "These resources do not exist: Secrets [missing]",
        ),
    ],
)
def test_bad_builds_are_refused_with_the_field(
    source: dict[str, Any], strategy: dict[str, Any], fragment: str
) -> None:
    build = _build(source=source, strategy={"type": "Docker", "dockerStrategy": strategy})
    with pytest.raises(PlanError, match=None) as info:
        make_plan(build, secrets={}, config_maps={})
    assert fragment in str(info.value)


def test_binary_input_replaces_git_and_as_file_drops_inline_dockerfile() -> None:
    plan = make_plan(
        _build(source={"git": {"uri": "https://h/r.git"}, "dockerfile": "FROM x\n"}),
        secrets={},
        config_maps={},
        binary_path="/tmp/upload",
        binary_as_file="Dockerfile",
    )
    params = plan.tenant["params"]
    assert params["git"] is None
    assert params["binary"] == {"asFile": "Dockerfile"}
    assert params["dockerfile"] is None
    assert plan.binary_path == "/tmp/upload"


def test_dockercfg_auth_forms() -> None:
    legacy = SecretData(
        "old",
        {
            ".dockercfg": json.dumps(
                {"reg.example.com": {"username": "u", "password": "p"}}
            ).encode()
        },
    )
    assert docker_auths(legacy, "x") == {"reg.example.com": {"username": "u", "password": "p"}}
    with pytest.raises(PlanError):
        docker_auths(SecretData("none", {"token": b"x"}), "x")


def test_summary_line() -> None:
    def outcome(phase: str, **kw: Any) -> BuildOutcome:
        base: dict[str, Any] = {"reason": None, "message": None, "output_ref": None, "digest": None}
        base.update(kw)
        return BuildOutcome(
            namespace="team", name="app-1", phase=phase, stages=[], result=None, **base
        )  # type: ignore[arg-type]

    digest = "sha256:" + "a" * 64
    assert outcome("Complete", output_ref=f"{REGISTRY}/team/app:v1", digest=digest).summary() == (
        f"securebuild: build team/app-1 Complete, pushed {REGISTRY}/team/app@{digest}"
    )
    assert outcome("Complete").summary() == (
        "securebuild: build team/app-1 Complete, no image push requested"
    )
    assert outcome(
        "Failed", reason="DockerBuildFailed", message="Dockerfile build strategy has failed."
    ).summary() == (
        "securebuild: build team/app-1 Failed, reason DockerBuildFailed: "
        "Dockerfile build strategy has failed."
    )


def test_build_secrets_and_config_maps_become_files_under_their_destination() -> None:
    plan = make_plan(
        _build(
            source={
                "dockerfile": "FROM x",
                "secrets": [{"secret": {"name": "s"}, "destinationDir": "./etc/s/"}],
                "configMaps": [{"configMap": {"name": "c"}}],
            }
        ),
        secrets={"s": SecretData("s", {"pw": b"hunter2", "..data": b"internal"})},
        config_maps={"c": SecretData("c", {"app.conf": b"a=1\n", "bad key": b"x"})},
    )
    params = plan.tenant["params"]
    [secret] = params["secrets"]
    assert (secret["name"], secret["destinationDir"], list(secret["files"])) == (
        "s",
        "etc/s",
        ["pw"],
    )
    assert plan.secrets[secret["files"]["pw"]] == b"hunter2"
    assert "hunter2" not in json.dumps(plan.tenant)
    assert params["configMaps"] == [
        {"name": "c", "destinationDir": "", "files": {"app.conf": "a=1\n"}}
    ]


def test_missing_secrets_and_config_maps_are_named_together() -> None:
    build = _build(
        source={
            "dockerfile": "FROM x",
            "secrets": [{"secret": {"name": "s1"}}],
            "configMaps": [{"configMap": {"name": "c1"}}],
        }
    )
    with pytest.raises(PlanError) as info:
        make_plan(build, secrets={}, config_maps={})
    assert "These resources do not exist: ConfigMaps [c1] Secrets [s1]" in str(info.value)
