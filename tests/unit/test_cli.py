"""The CLI contract: help, version, and one-line errors instead of tracebacks."""

from __future__ import annotations

import argparse
import subprocess
import sys

import pytest

from securebuild import __version__, cli
from securebuild.errors import SecurebuildError


def run_cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "securebuild", *args],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_help_lists_the_program() -> None:
    result = run_cli("--help")
    assert result.returncode == 0
    assert "usage: securebuild" in result.stdout


def test_version_matches_package() -> None:
    result = run_cli("--version")
    assert result.returncode == 0
    assert result.stdout.strip() == f"securebuild {__version__}"


def test_unknown_command_is_a_usage_error() -> None:
    result = run_cli("no-such-command")
    assert result.returncode == 2
    assert "Traceback" not in result.stderr


def _fail_with(exc: Exception) -> None:
    raise exc


@pytest.mark.parametrize(
    ("exc", "expected"),
    [
        (SecurebuildError("the file x.yaml is unreadable"), "securebuild: error: the file x.yaml"),
        (ValueError("boom"), "securebuild: internal error: ValueError: boom"),
    ],
)
def test_errors_are_one_line(
    exc: Exception,
    expected: str,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    real_build_parser = cli.build_parser

    def build_parser_with_explode() -> argparse.ArgumentParser:
        parser = real_build_parser()
        subparsers = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
        subparsers.add_parser("explode").set_defaults(func=lambda _args: _fail_with(exc))
        return parser

    monkeypatch.setattr(cli, "build_parser", build_parser_with_explode)
    assert cli.main(["explode"]) == cli.EXIT_ERROR
    err = capsys.readouterr().err
    assert err.startswith(expected)
    assert err.count("\n") == 1
    assert "Traceback" not in err
