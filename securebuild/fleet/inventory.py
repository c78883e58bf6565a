"""The build hosts of an Ansible inventory, their limits and idle policy, kept current.

The inventory is the operators' one source of truth for build hosts (the playbooks read it
too), so the fleet reads it with ``ansible-inventory --list`` rather than parsing YAML itself:
group_vars, host_vars, INI or YAML, all resolved the way the playbooks will see them. Variables
read here, per host (usually set in ``group_vars/build_hosts.yml``):

``securebuild_host_max_vms`` (10)      project VMs placed on the host at most
``securebuild_host_max_builds`` (4)    builds running on the host at once (the daemon's limit)
``securebuild_stop_after_idle`` (30m)  a VM unused this long is stopped (disks kept)
``securebuild_destroy_after_idle`` (14d)  ... and destroyed, cache disk included
``securebuild_reset_after_builds`` (0)  a VM's root disk is rebuilt from the golden image
                                       before its next build after this many (0: never)

:class:`InventoryWatch` re-reads the inventory when a file under its path changes, so an edit
applies without a restart; a broken edit keeps the last good inventory and logs why.
"""

from __future__ import annotations

import json
import logging
import subprocess
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from securebuild.fleet.durations import parse_duration
from securebuild.fleet.errors import FleetError
from securebuild.fleet.playbooks import REPO_ROOT, ansible_binary, clean_env

logger = logging.getLogger(__name__)

GROUP = "build_hosts"
DEFAULT_MAX_VMS = 10
DEFAULT_MAX_BUILDS = 4
DEFAULT_STOP_AFTER_IDLE = "30m"
DEFAULT_DESTROY_AFTER_IDLE = "14d"
DEFAULT_LIBVIRT_URI = "qemu:///system"
_LOCAL_NAMES = ("localhost", "127.0.0.1", "::1")


@dataclass(frozen=True)
class BuildHost:
    """One build host: its limits and idle policy (seconds; ``None`` = never)."""

    name: str
    max_vms: int
    max_builds: int
    stop_after_idle: float | None
    destroy_after_idle: float | None
    local: bool  # this machine (ansible_connection local): its libvirt can be asked directly
    libvirt_uri: str = DEFAULT_LIBVIRT_URI
    reset_after_builds: int = 0  # 0: never


@dataclass(frozen=True)
class Inventory:
    """The build hosts of one inventory, in inventory order."""

    path: Path
    hosts: tuple[BuildHost, ...]

    def host(self, name: str) -> BuildHost | None:
        return next((h for h in self.hosts if h.name == name), None)


def _int_var(hostvars: Mapping[str, Any], variable: str, host: str, default: int, low: int) -> int:
    value = hostvars.get(variable, default)
    if isinstance(value, str) and value.strip().isdigit():
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int) or value < low:
        raise FleetError(
            f"{variable} of build host {host}: expected an integer >= {low}, got {value!r}"
        )
    return value


def hosts_from_listing(listing: Mapping[str, Any]) -> tuple[BuildHost, ...]:
    """The build hosts of an ``ansible-inventory --list`` document (validated)."""
    group = listing.get(GROUP)
    names: list[str] = list(group.get("hosts") or []) if isinstance(group, Mapping) else []
    # hosts of child groups of build_hosts belong to it too
    pending = list(group.get("children") or []) if isinstance(group, Mapping) else []
    while pending:
        child = listing.get(pending.pop(0))
        if isinstance(child, Mapping):
            names += [n for n in child.get("hosts") or [] if n not in names]
            pending += list(child.get("children") or [])
    if not names:
        raise FleetError(f"the inventory has no hosts in group {GROUP}")
    allvars = listing.get("_meta", {}).get("hostvars", {})
    hosts = []
    for name in names:
        hv: Mapping[str, Any] = allvars.get(name) or {}
        stop = parse_duration(
            hv.get("securebuild_stop_after_idle", DEFAULT_STOP_AFTER_IDLE),
            variable="securebuild_stop_after_idle",
            host=name,
        )
        destroy = parse_duration(
            hv.get("securebuild_destroy_after_idle", DEFAULT_DESTROY_AFTER_IDLE),
            variable="securebuild_destroy_after_idle",
            host=name,
        )
        uri = hv.get("project_vm_libvirt_uri", DEFAULT_LIBVIRT_URI)
        if not isinstance(uri, str) or "{{" in uri:
            uri = DEFAULT_LIBVIRT_URI  # templated: only the playbooks can render it
        hosts.append(
            BuildHost(
                name=name,
                max_vms=_int_var(hv, "securebuild_host_max_vms", name, DEFAULT_MAX_VMS, 0),
                max_builds=_int_var(hv, "securebuild_host_max_builds", name, DEFAULT_MAX_BUILDS, 1),
                stop_after_idle=stop,
                destroy_after_idle=destroy,
                local=hv.get("ansible_connection") == "local" or name in _LOCAL_NAMES,
                libvirt_uri=uri,
                reset_after_builds=_int_var(hv, "securebuild_reset_after_builds", name, 0, 0),
            )
        )
    return tuple(hosts)


def read_inventory(path: Path) -> Inventory:
    """Run ``ansible-inventory --list`` on ``path``; any source it cannot parse is an error."""
    env = clean_env()
    env["ANSIBLE_INVENTORY_ANY_UNPARSED_IS_FAILED"] = "true"
    env["ANSIBLE_INVENTORY_UNPARSED_WARNING"] = "true"
    argv = [ansible_binary("ansible-inventory"), "-i", str(path), "--list"]
    try:
        proc = subprocess.run(
            argv, cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=120, check=False
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise FleetError(f"cannot read the inventory {path}: {exc}") from exc
    if proc.returncode != 0:
        errors = [ln for ln in proc.stderr.splitlines() if "ERROR" in ln] or [proc.stderr[-1500:]]
        raise FleetError(
            f"cannot read the inventory {path} (ansible-inventory rc {proc.returncode}): "
            + " ".join(e.strip() for e in errors)[-2000:]
        )
    try:
        listing = json.loads(proc.stdout)
    except ValueError as exc:
        raise FleetError(f"ansible-inventory gave no JSON for {path}: {exc}") from exc
    try:
        return Inventory(path=path, hosts=hosts_from_listing(listing))
    except FleetError as exc:
        raise FleetError(f"inventory {path}: {exc}") from exc


def fingerprint(path: Path) -> tuple[tuple[str, int, int], ...]:
    """(name, mtime_ns, size) of every file under ``path`` (or of ``path`` itself)."""
    files = [path] if not path.is_dir() else sorted(p for p in path.rglob("*") if p.is_file())
    out = []
    for item in files:
        try:
            st = item.stat()
        except OSError:
            continue
        out.append((str(item), st.st_mtime_ns, st.st_size))
    return tuple(out)


class InventoryWatch:
    """The current inventory: re-read when a file under it changed, checked every ``interval`` s.

    The first read must succeed (:class:`FleetError` otherwise). Later, a broken inventory keeps
    the last good one in effect; the error is logged once per change and kept in
    :attr:`last_error` until a good read replaces it.
    """

    def __init__(
        self,
        path: Path,
        *,
        interval: float = 5.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.path = path
        self.interval = interval
        self._clock = clock
        self._lock = threading.Lock()
        self._print = fingerprint(path)
        self._inventory = read_inventory(path)
        self._checked = clock()
        self.last_error: str | None = None

    def current(self) -> Inventory:
        with self._lock:
            now = self._clock()
            if now - self._checked < self.interval:
                return self._inventory
            self._checked = now
            seen = fingerprint(self.path)
            if seen == self._print:
                return self._inventory
            self._print = seen
            try:
                fresh = read_inventory(self.path)
            except FleetError as exc:
                self.last_error = str(exc)
                logger.error("keeping the last good inventory: %s", exc)
                return self._inventory
            if fresh != self._inventory:
                logger.info(
                    "inventory %s changed: build hosts %s",
                    self.path,
                    ", ".join(f"{h.name} (max {h.max_vms} VMs)" for h in fresh.hosts),
                )
            self._inventory = fresh
            self.last_error = None
            return fresh
