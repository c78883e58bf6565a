"""Project VMs on the build hosts: ensure (warm or cold), use, stop, reset, destroy, reap.

One :class:`Fleet` per daemon (or per ``securebuild run``/``securebuild vm`` command), and
several of them on one state dir at once: the daemon's replicas, an operator's ``securebuild vm``
and ``securebuild run``. So every lock is a file lock in the state dir (``securebuild.filelock``),
which the threads of one process and other processes alike respect: a lifecycle step of a
project (ensure, stop, reset, destroy) holds the project's lifecycle lock, a build holds its
in-use lock shared for as long as it runs, and the idle reaper acts only on a VM whose both locks
it gets without waiting. Different projects proceed in parallel. The VM state the fleet keeps
itself lives in the control-side state dir beside the VM record, so a restart keeps placements
and idle clocks::

    <state_dir>/vms/<project>/vm.json          written by the project_vm role (endpoints)
    <state_dir>/vms/<project>/placement.json   the build host (securebuild.fleet.placement)
    <state_dir>/vms/<project>/idle.json        last use (epoch seconds) and whether it is stopped
    <state_dir>/locks/<project>.{lifecycle,in-use,record}, placement, host-<host>   (flock)

Warm path: the record exists and the VM answers ``true`` over SSH with its pinned host key, so
no playbook runs. Cold path: placement, ``host-provision.yml`` once per host and Fleet,
the project's PKI, ``vm-ensure.yml``. Stopping, resetting and destroying run the same
playbooks operators run by hand, with ``-e securebuild_build_host=<host>``.
"""

from __future__ import annotations

import contextlib
import json
import logging
import subprocess
import threading
import time
import urllib.parse
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path

from securebuild import filelock
from securebuild.fleet import metrics
from securebuild.fleet.errors import FleetError
from securebuild.fleet.inventory import BuildHost, InventoryWatch
from securebuild.fleet.placement import (
    forget_placement,
    place,
    placed_projects,
    read_placement,
    write_json_atomically,
    write_placement,
)
from securebuild.fleet.playbooks import REPO_ROOT, PlaybookResult, PlaybookRunner, clean_env
from securebuild.fleet.records import VMEndpoints, read_endpoints, vm_dir
from securebuild.fleet.target import VMTarget
from securebuild.model.names import dns1123_label
from securebuild.pki import PKIError, ProjectPKI

logger = logging.getLogger(__name__)

DOMAIN_PREFIX = "sb-"
#: Names dockerd's certificate must carry: the control side reaches it on a loopback forward.
SERVER_HOSTS = ("127.0.0.1", "localhost")
#: The project_vm role names domains and bridges after the project; it allows 50 characters.
MAX_PROJECT_LENGTH = 50
IDLE_FILE = "idle.json"
SSH_PROBE_TIMEOUT = 30

OnLine = Callable[[str], None] | None


def check_project(project: str) -> str:
    """``project`` if it is a DNS-1123 label the VM can be named after; FleetError otherwise."""
    problem = dns1123_label(project) if isinstance(project, str) else "must be a string"
    if problem is None and len(project) > MAX_PROJECT_LENGTH:
        problem = f"must be at most {MAX_PROJECT_LENGTH} characters (the VM is named after it)"
    if problem is not None:
        raise FleetError(f"project {project!r}: {problem}")
    return project


class Fleet:
    """The project VMs of one inventory, seen from one control-side state dir.

    Safe to use from several threads and processes on one state dir (file locks, see the module
    docstring); different projects proceed in parallel. The inventory is read on first need
    (:meth:`hosts`, a cold start, reaping, :meth:`states`) and re-read after edits; an unusable
    inventory at that point is a :class:`FleetError`.
    """

    def __init__(
        self,
        *,
        inventory: Path,
        state_dir: Path,
        project_dir: Path = REPO_ROOT,
        watch_interval: float = 5.0,
    ) -> None:
        # absolute: the playbooks run with the checkout as working directory
        inventory = inventory.absolute()
        state_dir = state_dir.absolute()
        self.inventory_path = inventory
        self.state_dir = state_dir
        self.project_dir = project_dir.absolute()
        self._watch_interval = watch_interval
        self._watch_instance: InventoryWatch | None = None
        self._watch_lock = threading.Lock()
        self._runner = PlaybookRunner(
            inventory=inventory, state_dir=state_dir, project_dir=project_dir
        )
        self._provisioned: set[str] = set()

    # -- inventory ---------------------------------------------------------------------------

    @property
    def _watch(self) -> InventoryWatch:
        """The inventory, read on first need: the warm path of ``securebuild run`` needs none."""
        with self._watch_lock:
            if self._watch_instance is None:
                self._watch_instance = InventoryWatch(
                    self.inventory_path, interval=self._watch_interval
                )
            return self._watch_instance

    def hosts(self) -> tuple[BuildHost, ...]:
        """The build hosts of the inventory as it is now (re-read after an edit)."""
        return self._watch.current().hosts

    def host_of(self, project: str) -> str | None:
        """The build host the project's VM is placed on, or None if it has none."""
        return read_placement(self.state_dir, check_project(project))

    # -- ensure and use ----------------------------------------------------------------------

    def ensure(self, project: str, *, on_line: OnLine = None) -> VMTarget:
        """A running VM of ``project`` that answers SSH: warm if it does already, else cold."""
        check_project(project)
        say = on_line or (lambda line: None)
        with self._lock(project):
            self._reset_if_due(project, say)
            start = time.monotonic()
            endpoints = self._probe(project)
            if endpoints is not None:
                metrics.VM_START_SECONDS.labels(path="warm").observe(time.monotonic() - start)
                self._touch(project, stopped=False)
                return VMTarget.from_record(endpoints)
            recorded = (vm_dir(self.state_dir, project) / "vm.json").is_file()
            host = self._place(project)
            why = "the recorded VM does not answer SSH" if recorded else "no VM yet"
            say(
                f"securebuild: starting the VM of project {project} on host {host} "
                f"(cold start: {why})"
            )
            try:
                self._provision(host)
                self._ensure_pki(project)
                self._playbook("playbooks/vm-ensure.yml", project, host)
                endpoints = read_endpoints(self.state_dir, project)
            except FleetError:
                if not (vm_dir(self.state_dir, project) / "vm.json").is_file():
                    forget_placement(self.state_dir, project)  # no VM: no slot taken
                raise
            seconds = time.monotonic() - start
            metrics.VM_START_SECONDS.labels(path="cold").observe(seconds)
            self._touch(project, stopped=False)
            say(
                f"securebuild: the VM of project {project} runs on host {host} "
                f"({endpoints.accel}, {seconds:.0f} s)"
            )
            return VMTarget.from_record(endpoints)

    @contextmanager
    def in_use(self, project: str) -> Iterator[None]:
        """Mark the VM busy (never reaped, by this process or another) for the block, which is
        one build: its idle clock restarts at the end and its build count goes up
        (``securebuild_reset_after_builds``)."""
        check_project(project)
        try:
            with filelock.held(self._lock_file(project, "in-use"), shared=True):
                yield
        finally:
            self._touch(project, built=True)

    def busy(self, project: str) -> bool:
        """Whether a build of any process on this state dir is using the VM now."""
        check_project(project)
        with filelock.attempt(self._lock_file(project, "in-use")) as free:
            return not free

    # -- operator actions --------------------------------------------------------------------

    def stop(self, project: str) -> None:
        """Shut the VM down (disks kept; the next ensure starts it again)."""
        check_project(project)
        with self._lock(project):
            self._stop_locked(project)

    def reset(self, project: str) -> None:
        """Rebuild the VM's root disk from the golden image (the docker cache disk is kept)."""
        check_project(project)
        with self._lock(project):
            host = self._known_host(project)
            self._ensure_pki(project)
            self._playbook("playbooks/vm-ensure.yml", project, host, securebuild_vm_reset=True)
            self._touch(project, stopped=False, builds=0)

    def destroy(self, project: str) -> None:
        """Remove the VM, its disks and its control-side record (the PKI is kept)."""
        check_project(project)
        with self._lock(project):
            self._destroy_locked(project)

    def states(self) -> dict[str, str]:
        """project -> running | stopped | absent | unknown (or libvirt's word, e.g. paused).

        Local build hosts are asked (``virsh domstate``), including VMs made with another state
        dir; for a VM on a remote host the fleet does not guess: ``unknown``.
        """
        inventory = self._watch.current()
        local = [h for h in inventory.hosts if h.local]
        states: dict[str, str] = {}
        for project, host_name in placed_projects(self.state_dir).items():
            host = inventory.host(host_name)
            states[project] = (
                _domstate(host.libvirt_uri, project)
                if host is not None and host.local
                else "unknown"
            )
        for host in local:
            for project in _local_domains(host.libvirt_uri):
                if project not in states:
                    states[project] = _domstate(host.libvirt_uri, project)
        metrics.set_vm_states(dict(Counter(states.values())))
        return states

    # -- idle policy -------------------------------------------------------------------------

    def reap_idle(self, now: float | None = None) -> list[tuple[str, str]]:
        """Stop VMs idle longer than their host's stop-after, destroy those past destroy-after.

        A VM in use (:meth:`in_use`) or busy with another lifecycle step is never touched. A
        failure is logged and the next VM is looked at; the result lists what was done:
        ``(project, "stopped" | "destroyed")``.
        """
        inventory = self._watch.current()
        done: list[tuple[str, str]] = []
        for project, host_name in placed_projects(self.state_dir).items():
            host = inventory.host(host_name)
            if host is None:
                continue
            with (
                filelock.attempt(self._lock_file(project, "lifecycle")) as steady,
                filelock.attempt(self._lock_file(project, "in-use")) as unused,
            ):
                # not steady: ensure/stop/destroy running; not unused: a build runs. Holding
                # both, a build that starts now waits for the reaper, then starts the VM again.
                if not (steady and unused):
                    continue
                idle = (now if now is not None else time.time()) - self._last_used(project)
                action = self._reap_action(project, host, idle)
                if action is None:
                    continue
                logger.info(
                    "project %s idle for %.0f s on %s: %s", project, idle, host.name, action
                )
                try:
                    if action == "destroyed":
                        self._destroy_locked(project)
                    else:
                        self._stop_locked(project)
                except FleetError as exc:
                    logger.error("cannot reap the VM of project %s: %s", project, exc)
                    continue
                metrics.VMS_REAPED.labels(action=action).inc()
                done.append((project, action))
        if done:
            self.states()
        return done

    def _reap_action(self, project: str, host: BuildHost, idle: float) -> str | None:
        if host.destroy_after_idle is not None and idle >= host.destroy_after_idle:
            return "destroyed"
        if host.stop_after_idle is not None and idle >= host.stop_after_idle:
            running = (
                _domstate(host.libvirt_uri, project) == "running"
                if host.local
                else not self._idle_record(project).get("stopped", False)
            )
            return "stopped" if running else None
        return None

    # -- internals ---------------------------------------------------------------------------

    def _lock_file(self, project: str, what: str) -> Path:
        return filelock.in_state_dir(self.state_dir, f"{project}.{what}")

    def _lock(self, project: str) -> AbstractContextManager[None]:
        """The project's lifecycle lock: one ensure/stop/reset/destroy at a time, over all
        processes on this state dir."""
        return filelock.held(self._lock_file(project, "lifecycle"))

    def _probe(self, project: str) -> VMEndpoints | None:
        """The VM's endpoints if its record exists and it answers ``true`` over SSH."""
        try:
            endpoints = read_endpoints(self.state_dir, project)
        except FleetError:
            return None
        argv = endpoints.ssh_argv("true")
        argv[1:1] = ["-o", "ConnectTimeout=10"]
        try:
            probe = subprocess.run(
                argv,
                capture_output=True,
                env=clean_env(self.state_dir, self.project_dir),
                timeout=SSH_PROBE_TIMEOUT,
                check=False,
            )
        except (OSError, subprocess.TimeoutExpired) as exc:
            logger.info("the VM of project %s does not answer SSH: %s", project, exc)
            return None
        if probe.returncode != 0:
            logger.info(
                "the VM of project %s does not answer SSH (rc %d): %s",
                project,
                probe.returncode,
                probe.stderr.decode(errors="replace").strip()[-300:],
            )
            return None
        return endpoints

    def _place(self, project: str) -> str:
        """The project's host: its recorded one, else a new placement (recorded now)."""
        with filelock.held(
            filelock.in_state_dir(self.state_dir, "placement")
        ):  # one choice at a time
            hosts = self.hosts()
            current = read_placement(self.state_dir, project)
            counts = Counter(h for p, h in placed_projects(self.state_dir).items() if p != project)
            host = place(project, hosts, counts, current=current)
            if current is None:
                write_placement(self.state_dir, project, host)
                logger.info("placed the VM of project %s on build host %s", project, host)
            return host

    def _known_host(self, project: str) -> str:
        host = read_placement(self.state_dir, project)
        if host is None:
            raise FleetError(f"project {project} has no VM (no placement under {self.state_dir})")
        return host

    def _provision(self, host: str) -> None:
        """host-provision.yml on ``host``, once per Fleet (libvirtd answering, SSH key, image)."""
        # one run per host at a time over all processes; one host does not hold up another
        lock = filelock.in_state_dir(self.state_dir, f"host-{urllib.parse.quote(host, safe='')}")
        with filelock.held(lock):
            if host in self._provisioned:
                return
            self._runner.run(
                "playbooks/host-provision.yml",
                what=f"build host {host}",
                limit=host,
                extra_vars=self._base_vars(),
            )
            self._provisioned.add(host)

    def _ensure_pki(self, project: str) -> ProjectPKI:
        try:
            return ProjectPKI.ensure(self.state_dir, project, server_hosts=SERVER_HOSTS)
        except PKIError as exc:
            raise FleetError(f"the PKI of project {project}: {exc}") from exc

    def _playbook(self, playbook: str, project: str, host: str, **extra: object) -> PlaybookResult:
        return self._runner.run(
            playbook,
            what=f"project {project} on build host {host}",
            extra_vars={
                **self._base_vars(),
                "securebuild_project": project,
                "securebuild_build_host": host,
                **extra,
            },
        )

    def _base_vars(self) -> dict[str, object]:
        """The fleet's state dir is the control side's: the playbooks must use the same."""
        return {
            "securebuild_state_dir": str(self.state_dir),
            "securebuild_pki_dir": str(self.state_dir / "pki"),
        }

    def _stop_locked(self, project: str) -> None:
        host = self._known_host(project)
        self._playbook("playbooks/vm-ensure.yml", project, host, securebuild_vm_state="stopped")
        self._touch(project, stopped=True, keep_time=True)

    def _destroy_locked(self, project: str) -> None:
        host = read_placement(self.state_dir, project)
        if host is None:  # a VM made before placement was recorded: the playbooks' default host
            hosts = self.hosts()
            host = hosts[0].name
        self._playbook("playbooks/vm-destroy.yml", project, host)
        forget_placement(self.state_dir, project)
        (vm_dir(self.state_dir, project) / IDLE_FILE).unlink(missing_ok=True)
        with contextlib.suppress(OSError):  # not empty, or already gone (the role removes it)
            vm_dir(self.state_dir, project).rmdir()

    def _idle_record(self, project: str) -> dict[str, object]:
        try:
            data = json.loads((vm_dir(self.state_dir, project) / IDLE_FILE).read_text())
        except (OSError, ValueError):
            return {}
        return data if isinstance(data, dict) else {}

    def _last_used(self, project: str) -> float:
        """When the VM was last used; without a record, when its vm.json was written."""
        value = self._idle_record(project).get("last_used")
        if isinstance(value, int | float):
            return float(value)
        try:
            return (vm_dir(self.state_dir, project) / "vm.json").stat().st_mtime
        except OSError:
            return time.time()

    def _reset_if_due(self, project: str, say: Callable[[str], None]) -> None:
        """Rebuild the root disk from the golden image once the VM ran its host's
        ``securebuild_reset_after_builds`` builds: whatever builds left in the guest (outside
        the docker cache disk) does not pile up forever. Called with the project's lock held."""
        host_name = read_placement(self.state_dir, project)
        host = self._watch.current().host(host_name) if host_name else None
        builds = self._idle_record(project).get("builds", 0)
        if host is None or not host.reset_after_builds or not isinstance(builds, int):
            return
        if builds < host.reset_after_builds:
            return
        say(
            f"securebuild: rebuilding the VM of project {project} from the golden image "
            f"after {builds} builds (securebuild_reset_after_builds)"
        )
        self._ensure_pki(project)
        self._playbook("playbooks/vm-ensure.yml", project, host.name, securebuild_vm_reset=True)
        self._touch(project, stopped=False, builds=0)

    def _touch(
        self,
        project: str,
        *,
        stopped: bool | None = None,
        keep_time: bool = False,
        built: bool = False,
        builds: int | None = None,
    ) -> None:
        """Persist the idle clock (now, unless ``keep_time``), the stopped flag and the count
        of builds since the root disk was made (``built`` adds one, ``builds`` sets it)."""
        with filelock.held(self._lock_file(project, "record")):  # read, change, write: one
            if not vm_dir(self.state_dir, project).is_dir():
                return  # destroyed meanwhile: no clock to keep
            record = self._idle_record(project)
            if not keep_time or "last_used" not in record:
                record["last_used"] = time.time()
            if stopped is not None:
                record["stopped"] = stopped
            count = record.get("builds")
            if builds is not None:
                record["builds"] = builds
            elif built:
                record["builds"] = (count if isinstance(count, int) else 0) + 1
            write_json_atomically(vm_dir(self.state_dir, project) / IDLE_FILE, record)


def _virsh(uri: str, *args: str) -> subprocess.CompletedProcess[str] | None:
    try:
        return subprocess.run(
            ["virsh", "-c", uri, *args],
            capture_output=True,
            text=True,
            env=clean_env(),
            timeout=30,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        logger.warning("virsh -c %s %s: %s", uri, " ".join(args), exc)
        return None


def _domstate(uri: str, project: str) -> str:
    """running | stopped | absent | unknown, or libvirt's own word for other states."""
    proc = _virsh(uri, "domstate", DOMAIN_PREFIX + project)
    if proc is None:
        return "unknown"
    if proc.returncode != 0:
        text = proc.stderr.lower()
        return "absent" if "failed to get domain" in text or "not found" in text else "unknown"
    state = proc.stdout.strip()
    return {"running": "running", "shut off": "stopped"}.get(state, state or "unknown")


def _local_domains(uri: str) -> list[str]:
    """Projects with an ``sb-`` domain on this machine's libvirt (any state dir)."""
    proc = _virsh(uri, "list", "--all", "--name")
    if proc is None or proc.returncode != 0:
        return []
    return sorted(
        name.removeprefix(DOMAIN_PREFIX)
        for name in proc.stdout.split()
        if name.startswith(DOMAIN_PREFIX)
    )
