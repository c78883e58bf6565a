"""The daemon's config file: defaults, relative paths, and errors that name the key."""

from __future__ import annotations

from pathlib import Path

import pytest

from securebuild.daemon.config import ConfigError, load_config, parse_config


def test_minimal_config_gets_defaults(tmp_path: Path) -> None:
    (tmp_path / "kubeconfig").write_text("{}")
    config = parse_config({"cluster": {"kubeconfig": "kubeconfig"}}, tmp_path)
    assert config.cluster.kubeconfig == tmp_path / "kubeconfig"
    assert config.namespace_selector == "securebuild.appuio.ch/enabled=true"
    assert config.limits.builds_per_project == 1
    assert config.timeouts.lease_seconds == 60
    assert config.logs == Path("/var/lib/securebuild/logs")
    assert config.identity  # generated


def test_every_problem_is_named_by_its_key(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as info:
        parse_config(
            {
                "cluster": {"kubeconfig": "missing", "in_cluster": "yes"},
                "limits": {"max_concurrent_builds": 0, "builds_per_projekt": 2},
                "timeouts": {"lease_seconds": "long"},
                "namespace_selector": "enabled",
                "api": {"listen": "8443"},
                "surprise": 1,
            },
            tmp_path,
        )
    text = str(info.value)
    for expected in (
        "cluster.in_cluster: must be true or false",
        "cluster.kubeconfig: no such file",
        "limits.max_concurrent_builds: must be an integer >= 1",
        "limits.builds_per_projekt: unknown key",
        "timeouts.lease_seconds: must be a number >= 1",
        "namespace_selector: must be label=value",
        "api.listen: must be host:port",
        "api.tls_cert: api.tls_cert and api.tls_key are required",
        "surprise: unknown key",
    ):
        assert expected in text, text


def test_cluster_is_required(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cluster: required"):
        parse_config({}, tmp_path)


def test_load_config_reports_the_file(tmp_path: Path) -> None:
    path = tmp_path / "daemon.yaml"
    path.write_text("cluster: [\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_config(path)
    path.write_text("cluster: {in_cluster: true}\nlimits: {builds_per_project: -1}\n")
    with pytest.raises(ConfigError, match=r"(?s)daemon.yaml: .*limits.builds_per_project"):
        load_config(path)
    with pytest.raises(ConfigError, match="cannot read"):
        load_config(tmp_path / "absent.yaml")


def test_shipped_deployment_config_uses_only_known_keys(tmp_path: Path) -> None:
    import yaml

    root = Path(__file__).resolve().parents[2]
    docs = list(yaml.safe_load_all((root / "deploy" / "daemon" / "daemon.yaml").read_text()))
    config_map = next(d for d in docs if d["kind"] == "ConfigMap")
    data = yaml.safe_load(config_map["data"]["daemon.yaml"])
    with pytest.raises(ConfigError) as info:
        parse_config(data, tmp_path)
    # Only the files that exist in the pod are missing here.
    problems = [line.strip() for line in str(info.value).splitlines()[1:]]
    assert problems and all("no such file" in p for p in problems), problems


def test_daemon_check_validates_without_the_cluster(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from securebuild.cli import main

    (tmp_path / "kubeconfig").write_text("{}")
    config = tmp_path / "daemon.yaml"
    config.write_text("cluster: {kubeconfig: kubeconfig}\nidentity: d1\n")
    assert main(["daemon", "--config", str(config), "--check"]) == 0
    assert "valid (identity d1)" in capsys.readouterr().out
    config.write_text("cluster: {kubeconfig: kubeconfig}\nlimits: {max_concurrent: 2}\n")
    assert main(["daemon", "--config", str(config), "--check"]) == 1
    assert "limits.max_concurrent: unknown key" in capsys.readouterr().err


def test_cleanup_playbook_can_be_turned_off(tmp_path: Path) -> None:
    base = {"cluster": {"in_cluster": True}}
    assert parse_config(base, tmp_path).executor.cleanup_playbook == "playbooks/build-cleanup.yml"
    off = parse_config({**base, "executor": {"cleanup_playbook": None}}, tmp_path)
    assert off.executor.cleanup_playbook is None
