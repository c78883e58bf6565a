"""Build hosts read from real inventories with the real ``ansible-inventory`` (no services).

Each test writes a small inventory in a temp dir; the watchdog tests edit it and check that the
edit is picked up, and that a broken edit keeps the last good inventory.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from securebuild.fleet.errors import FleetError
from securebuild.fleet.inventory import InventoryWatch, read_inventory

ROOT = Path(__file__).resolve().parents[2]

HOSTS = """\
---
all:
  children:
    build_hosts:
      hosts:
        build-01:
          ansible_host: 192.0.2.11
        build-02:
          ansible_host: 192.0.2.12
          securebuild_host_max_vms: 3
          securebuild_stop_after_idle: 3600
"""
GROUP_VARS = """\
---
securebuild_host_max_vms: 6
securebuild_host_max_builds: 2
securebuild_stop_after_idle: 30m
securebuild_destroy_after_idle: 14d
"""


def make(tmp_path: Path, hosts: str = HOSTS, group_vars: str = GROUP_VARS) -> Path:
    inv = tmp_path / "inv"
    (inv / "group_vars").mkdir(parents=True, exist_ok=True)
    (inv / "hosts.yml").write_text(hosts)
    (inv / "group_vars" / "build_hosts.yml").write_text(group_vars)
    return inv


def edit(path: Path, text: str) -> None:
    """Write ``text``; the mtime is moved on so the change shows even within one clock tick."""
    before = path.stat().st_mtime_ns
    path.write_text(text)
    os.utime(path, ns=(before + 2_000_000_000, before + 2_000_000_000))


def test_two_hosts_with_group_and_host_limits(tmp_path: Path) -> None:
    inventory = read_inventory(make(tmp_path))
    one, two = inventory.hosts
    assert (one.name, one.max_vms, one.max_builds) == ("build-01", 6, 2)
    assert (one.stop_after_idle, one.destroy_after_idle) == (1800.0, 14 * 86400.0)
    assert (two.name, two.max_vms, two.stop_after_idle) == ("build-02", 3, 3600.0)
    assert not one.local
    assert inventory.host("build-02") == two


def test_defaults_apply_without_variables(tmp_path: Path) -> None:
    inventory = read_inventory(make(tmp_path, group_vars="---\n{}\n"))
    host = inventory.hosts[0]
    assert (host.max_vms, host.max_builds) == (10, 4)
    assert (host.stop_after_idle, host.destroy_after_idle) == (1800.0, 14 * 86400.0)


def test_the_shipped_inventories_parse() -> None:
    local = read_inventory(ROOT / "inventories" / "local")
    assert [h.name for h in local.hosts] == ["localhost"]
    assert local.hosts[0].local
    production = read_inventory(ROOT / "inventories" / "example-production")
    assert [h.name for h in production.hosts] == ["build-01.example.net", "build-02.example.net"]
    assert production.hosts[0].stop_after_idle == 1800.0


@pytest.mark.parametrize(
    ("group_vars", "message"),
    [
        ("securebuild_host_max_vms: lots\n", r"securebuild_host_max_vms of build host build-01"),
        ("securebuild_host_max_builds: 0\n", r"securebuild_host_max_builds of build host build-01"),
        ("securebuild_destroy_after_idle: soon\n", r"securebuild_destroy_after_idle of build host"),
    ],
)
def test_bad_values_name_the_variable_and_host(
    tmp_path: Path, group_vars: str, message: str
) -> None:
    with pytest.raises(FleetError, match=message):
        read_inventory(make(tmp_path, group_vars=group_vars))


def test_broken_yaml_and_missing_group_are_errors(tmp_path: Path) -> None:
    with pytest.raises(FleetError, match="cannot read the inventory"):
        read_inventory(make(tmp_path, hosts="all: [broken\n"))
    with pytest.raises(FleetError, match="no hosts in group build_hosts"):
        read_inventory(make(tmp_path, hosts="---\nall:\n  hosts:\n    x: {}\n"))


def test_the_watchdog_picks_an_edit_up_and_keeps_the_last_good_on_a_broken_one(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    now = [0.0]
    inv = make(tmp_path)
    watch = InventoryWatch(inv, interval=10, clock=lambda: now[0])
    assert watch.current().hosts[0].max_vms == 6

    edit(inv / "group_vars" / "build_hosts.yml", GROUP_VARS.replace("max_vms: 6", "max_vms: 8"))
    now[0] = 5.0  # within the interval: not looked at yet
    assert watch.current().hosts[0].max_vms == 6
    now[0] = 11.0
    assert watch.current().hosts[0].max_vms == 8

    edit(inv / "hosts.yml", HOSTS + "  broken: [\n")
    now[0] = 22.0
    assert watch.current().hosts[0].max_vms == 8  # last good kept
    assert watch.last_error is not None and "cannot read the inventory" in watch.last_error
    assert "keeping the last good inventory" in caplog.text

    edit(inv / "hosts.yml", HOSTS.replace("build-02:", "build-03:"))
    now[0] = 33.0
    assert [h.name for h in watch.current().hosts] == ["build-01", "build-03"]
    assert watch.last_error is None


def test_a_new_file_under_the_inventory_is_a_change(tmp_path: Path) -> None:
    now = [0.0]
    inv = make(tmp_path)
    watch = InventoryWatch(inv, interval=1, clock=lambda: now[0])
    (inv / "host_vars").mkdir()
    (inv / "host_vars" / "build-01.yml").write_text("securebuild_host_max_builds: 1\n")
    now[0] = 2.0
    assert watch.current().hosts[0].max_builds == 1
