"""The project VM launcher's own logic: name validation, remote quoting, the VM record."""

from __future__ import annotations

import json
import shlex
from pathlib import Path

import pytest

from securebuild.devenv.project_vm import ProjectVM, ProjectVMError


@pytest.mark.parametrize(
    "name", ["", "A", "-a", "a-", "a_b", "a b", "a;rm -rf /", "x" * 51, "ä", "a\nb"]
)
def test_project_names_that_are_not_dns_labels_are_refused(name: str, tmp_path: Path) -> None:
    with pytest.raises(ProjectVMError, match="DNS-1123"):
        ProjectVM(name, state_dir=tmp_path)


def test_endpoints_come_from_the_vm_record_and_quote_remote_commands(tmp_path: Path) -> None:
    vm = ProjectVM("demo", state_dir=tmp_path)
    vm.ensure_pki()
    record_dir = tmp_path / "vms" / "demo"
    record_dir.mkdir(parents=True)
    (record_dir / "vm.json").write_text(
        json.dumps(
            {
                "project": "demo",
                "domain": "sb-demo",
                "accel": "tcg",
                "image_version": "bookworm-r1",
                "ssh": {"host": "127.0.0.1", "port": 40022, "user": "securebuild"},
                "docker": {"host": "127.0.0.1", "port": 42376},
                "known_hosts": str(record_dir / "known_hosts"),
                "ssh_key": str(tmp_path / "ssh" / "id_ed25519"),
            }
        )
    )
    endpoints = vm.read_endpoints()
    assert endpoints.docker_url == "https://127.0.0.1:42376"
    assert endpoints.pki.ca_cert.is_file()
    argv = endpoints.ssh_argv("stat", "-c", "%n %a", "/etc/x y")
    assert argv[argv.index("-p") + 1] == "40022"
    assert "StrictHostKeyChecking=yes" in argv
    assert argv[-2:] == ["--", "stat -c '%n %a' '/etc/x y'"]
    assert shlex.split(argv[-1]) == ["stat", "-c", "%n %a", "/etc/x y"]


def test_a_missing_record_is_an_error_that_names_the_file(tmp_path: Path) -> None:
    with pytest.raises(ProjectVMError, match=r"vm\.json"):
        ProjectVM("demo", state_dir=tmp_path).read_endpoints()
