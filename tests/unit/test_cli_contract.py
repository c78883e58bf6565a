"""The contract CLI, exactly as checks outside the test suite call it (issue 4, item 5)."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.unit.contract_data import build_config_doc, build_doc


def run_cli(
    *args: str, stdin: str | None = None, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "securebuild", *args],
        capture_output=True,
        text=True,
        encoding="utf-8",
        input=stdin,
        timeout=60,
        check=False,
        env={**os.environ, **(env or {})},
    )


def write_yaml(path: Path, doc: dict[str, Any]) -> Path:
    path.write_text(yaml.safe_dump(doc, allow_unicode=True), encoding="utf-8")
    return path


def test_validate_accepts_a_valid_build_and_build_config(tmp_path: Path) -> None:
    for name, doc in (("b.yaml", build_doc()), ("bc.json", build_config_doc())):
        path = tmp_path / name
        path.write_text(json.dumps(doc) if name.endswith(".json") else yaml.safe_dump(doc))
        result = run_cli("validate", str(path))
        assert result.returncode == 0, result.stderr
        assert result.stderr == ""
        assert "valid" in result.stdout


def test_validate_reports_one_line_per_problem_naming_the_field(tmp_path: Path) -> None:
    doc = build_doc(
        spec__source__contextDir="../../etc",
        spec__source__git__uri="ext::sh -c id",
        spec__postCommit={"script": "a", "command": ["b"]},
    )
    result = run_cli("validate", str(write_yaml(tmp_path / "b.yaml", doc)))
    assert result.returncode == 1
    lines = result.stderr.splitlines()
    assert [line.split(":", 1)[0] for line in lines] == [
        "spec.source.git.uri",
        "spec.source.contextDir",
        "spec.postCommit",
    ]
    assert "Traceback" not in result.stderr


def test_validate_reports_wrong_types_as_field_problems(tmp_path: Path) -> None:
    doc = build_doc(spec__completionDeadlineSeconds="soon")
    result = run_cli("validate", str(write_yaml(tmp_path / "b.yaml", doc)))
    assert result.returncode == 1
    assert result.stderr.startswith("spec.completionDeadlineSeconds: must be an integer")


@pytest.mark.parametrize(
    ("content", "words"),
    [
        (None, "cannot read the file"),
        ("kind: [unclosed", "is not valid YAML"),
        ("apiVersion: v1\nkind: Pod\n", "kind 'Pod'; expected Build or BuildConfig"),
        ("just a string", "must be a mapping"),
        ("a: &x [1]\nb: *x\n", "aliases are not allowed"),
        (b"\xff\xfe", "not UTF-8"),
        ("", "exactly one object"),
    ],
)
def test_validate_bad_files_are_one_clear_line(
    tmp_path: Path, content: str | bytes | None, words: str
) -> None:
    path = tmp_path / "input.yaml"
    if isinstance(content, bytes):
        path.write_bytes(content)
    elif content is not None:
        path.write_text(content)
    result = run_cli("validate", str(path))
    assert result.returncode != 0
    assert result.stderr.count("\n") == 1
    assert result.stderr.startswith("securebuild: error: ")
    assert words in result.stderr
    assert "Traceback" not in result.stderr


def test_validate_reads_stdin() -> None:
    result = run_cli("validate", "-", stdin=json.dumps(build_doc()))
    assert result.returncode == 0, result.stderr


SOURCE_INFO = {
    "location": "https://git.example.com/web.git",
    "ref": "main",
    "commit_id": "3f2c9a0d",
    "date": "Mon Mar 4 10:11:12 2024 +0100",
    "author_name": "Jane Doe",
    "author_email": "jane@example.com",
    "message": "Fix login",
}


def test_rewrite_prints_the_rewritten_dockerfile(tmp_path: Path) -> None:
    doc = build_doc(
        spec__strategy__dockerStrategy={
            "from": {"kind": "DockerImage", "name": "docker.io/library/node:20"},
            "env": [{"name": "FOO", "value": "bär {{ x }}"}],
        },
        spec__postCommit={"script": "npm test"},
    )
    build_path = write_yaml(tmp_path / "build.yaml", doc)
    info_path = tmp_path / "info.json"
    info_path.write_text(json.dumps(SOURCE_INFO))
    dockerfile = tmp_path / "Dockerfile"
    dockerfile.write_text("# comment\nFROM node:18\nRUN npm ci\n")
    result = run_cli(
        "dockerfile",
        "rewrite",
        "--build",
        str(build_path),
        "--source-info",
        str(info_path),
        str(dockerfile),
        env={"LANG": "C", "LC_ALL": "C", "PYTHONIOENCODING": ""},
    )
    assert result.returncode == 0, result.stderr
    out = result.stdout.split("\n")
    alias = re.fullmatch(r"FROM node:20 as (appimage[0-9a-f]{32})", out[0])
    assert alias, out[0]
    assert out[1] == 'ENV "FOO"="bär {{ x }}"'
    assert out[2] == "RUN npm ci"
    assert out[3].endswith('"OPENSHIFT_BUILD_COMMIT"="3f2c9a0d"')
    assert '"io.openshift.build.commit.author"="Jane Doe <jane@example.com>"' in out[4]
    assert out[5:] == [
        f"FROM {alias.group(1)}",
        'ENV "FOO"="bär {{ x }}"',
        "RUN /bin/sh -ic 'npm test'",
        f"FROM {alias.group(1)}",
        'ENV "FOO"="bär {{ x }}"',
        "",
    ]
    assert "Replaced Dockerfile FROM image node:18" in result.stderr


def test_rewrite_of_a_binary_build_with_inline_dockerfile(tmp_path: Path) -> None:
    doc = build_doc(
        spec__source={"binary": {}, "dockerfile": "FROM busybox\nRUN true\n"},
    )
    build_path = write_yaml(tmp_path / "build.yaml", doc)
    info_path = tmp_path / "info.json"
    info_path.write_text("{}")
    result = run_cli(
        "dockerfile", "rewrite", "--build", str(build_path), "--source-info", str(info_path)
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout == (
        "FROM busybox\nRUN true\n"
        'ENV "OPENSHIFT_BUILD_NAME"="web-7" "OPENSHIFT_BUILD_NAMESPACE"="team-a"\n'
        'LABEL "io.openshift.build.name"="web-7" "io.openshift.build.namespace"="team-a"\n'
    )


def test_rewrite_reads_the_dockerfile_from_stdin(tmp_path: Path) -> None:
    build_path = write_yaml(tmp_path / "build.yaml", build_doc())
    result = run_cli("dockerfile", "rewrite", "--build", str(build_path), "-", stdin="FROM a\n")
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("FROM a\nENV ")


@pytest.mark.parametrize(
    ("build", "info", "dockerfile", "words"),
    [
        (build_doc(), None, None, "no Dockerfile"),
        (build_doc(), None, "missing", "cannot read the Dockerfile"),
        (build_doc(), '{"commit": "x"}', "FROM a\n", 'unknown keys "commit"'),
        (build_doc(), '{"a\\nb": "x"}', "FROM a\n", 'unknown keys "a\\nb"'),
        (build_doc(), '{"ref": 1}', "FROM a\n", "must be a string"),
        (build_doc(), "[1", "FROM a\n", "not valid JSON"),
        (build_config_doc(), None, "FROM a\n", "expected Build"),
        (build_doc(), None, "# escape=`\nFROM a\n", "escape"),
    ],
)
def test_rewrite_errors_are_one_clear_line(
    tmp_path: Path, build: dict[str, Any], info: str | None, dockerfile: str | None, words: str
) -> None:
    args = ["dockerfile", "rewrite", "--build", str(write_yaml(tmp_path / "b.yaml", build))]
    if info is not None:
        (tmp_path / "info.json").write_text(info)
        args += ["--source-info", str(tmp_path / "info.json")]
    if dockerfile == "missing":
        args.append(str(tmp_path / "nope"))
    elif dockerfile is not None:
        (tmp_path / "Dockerfile").write_text(dockerfile)
        args.append(str(tmp_path / "Dockerfile"))
    result = run_cli(*args)
    assert result.returncode == 1
    assert result.stderr.count("\n") == 1, result.stderr
    assert result.stderr.startswith("securebuild: error: ")
    assert words in result.stderr


def test_rewrite_refuses_an_invalid_build(tmp_path: Path) -> None:
    path = write_yaml(tmp_path / "b.yaml", build_doc(spec__source__contextDir="/etc"))
    (tmp_path / "Dockerfile").write_text("FROM a\n")
    result = run_cli("dockerfile", "rewrite", "--build", str(path), str(tmp_path / "Dockerfile"))
    assert result.returncode == 1
    assert result.stdout == ""
    assert result.stderr.startswith("spec.source.contextDir: ")


def test_dockerfile_without_action_is_a_usage_error() -> None:
    result = run_cli("dockerfile")
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
