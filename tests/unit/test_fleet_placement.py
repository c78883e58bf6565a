"""Placement of project VMs on build hosts, durations of the idle policy, the placement record."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from securebuild.fleet.durations import parse_duration
from securebuild.fleet.errors import FleetError
from securebuild.fleet.inventory import BuildHost
from securebuild.fleet.placement import (
    place,
    placed_projects,
    read_placement,
    write_placement,
)
from securebuild.fleet.vms import check_project


def host(name: str, max_vms: int = 10) -> BuildHost:
    return BuildHost(
        name=name,
        max_vms=max_vms,
        max_builds=4,
        stop_after_idle=1800.0,
        destroy_after_idle=None,
        local=False,
    )


def test_a_placed_project_stays_on_its_host_even_when_another_has_more_room() -> None:
    hosts = [host("a", 2), host("b", 10)]
    assert place("p", hosts, {"a": 2, "b": 0}, current="a") == "a"


def test_a_new_project_goes_to_the_host_with_most_free_slots() -> None:
    hosts = [host("a", 10), host("b", 4), host("c", 10)]
    assert place("p", hosts, {"a": 7, "b": 0, "c": 5}) == "c"  # free: a 3, b 4, c 5


def test_ties_are_broken_by_host_name() -> None:
    hosts = [host("zeta", 5), host("alpha", 5), host("mid", 5)]
    assert place("p", hosts, {}) == "alpha"
    assert place("p", hosts, {"alpha": 1}) == "mid"


def test_no_room_is_an_error_that_shows_the_usage() -> None:
    hosts = [host("a", 1), host("b", 0)]
    with pytest.raises(FleetError, match=r"no build host has room.*a 1/1, b 0/0"):
        place("p", hosts, {"a": 1})


def test_a_vm_on_a_host_gone_from_the_inventory_is_an_error() -> None:
    with pytest.raises(FleetError, match="no longer in the inventory"):
        place("p", [host("a")], {}, current="gone")


def test_the_placement_record_survives_and_falls_back_to_the_vm_record(tmp_path: Path) -> None:
    assert read_placement(tmp_path, "p") is None
    write_placement(tmp_path, "p", "build-01")
    assert read_placement(tmp_path, "p") == "build-01"
    assert not [f for f in (tmp_path / "vms" / "p").iterdir() if f.name.startswith(".")]
    legacy = tmp_path / "vms" / "old"
    legacy.mkdir(parents=True)
    (legacy / "vm.json").write_text(json.dumps({"build_host": "localhost"}))
    assert placed_projects(tmp_path) == {"old": "localhost", "p": "build-01"}


@pytest.mark.parametrize(
    ("value", "seconds"),
    [
        ("30m", 1800.0),
        ("14d", 14 * 86400.0),
        ("3600", 3600.0),
        (3600, 3600.0),
        (0, 0.0),
        ("0", 0.0),
        ("1h30m", 5400.0),
        ("2w", 14 * 86400.0),
        ("45s", 45.0),
        ("never", None),
        (False, None),
    ],
)
def test_durations(value: object, seconds: float | None) -> None:
    assert parse_duration(value, variable="v", host="h") == seconds


@pytest.mark.parametrize("value", ["30 minutes", "m30", "", "-5", -5, True, "1.5h", None, [1]])
def test_bad_durations_name_the_variable_and_host(value: object) -> None:
    with pytest.raises(FleetError, match=r"securebuild_stop_after_idle of build host b-1"):
        parse_duration(value, variable="securebuild_stop_after_idle", host="b-1")


@pytest.mark.parametrize("name", ["", "A", "-a", "a-", "a_b", "a b", "a;rm -rf /", "x" * 51])
def test_project_names_that_cannot_name_a_vm_are_refused(name: str) -> None:
    with pytest.raises(FleetError, match=r"project .*: must"):
        check_project(name)
