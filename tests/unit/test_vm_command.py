"""``securebuild vm``: tenant-influenced project names are checked before any playbook runs."""

from __future__ import annotations

import pytest

from securebuild.cli import main


@pytest.mark.parametrize("project", ["Bad_Name", "-x", "a/b", "x" * 64])
def test_invalid_project_names_are_refused(
    project: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["vm", "destroy", "--", project]) == 1
    err = capsys.readouterr().err
    assert f"project {project!r}: must" in err
