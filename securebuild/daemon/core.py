"""The daemon: watch -> queue -> workers -> executor -> reporter (DESIGN section 3).

Threads, and why each exists:

* two reflectors (``securebuild.cluster.watch``) keep caches of the opted-in Namespaces and of
  the non-terminal Docker Builds; every change wakes the scheduler; a third watches
  ImageStreams (nothing kept): a stream that appears ends the back-off of the Builds waiting for
  it as their output;
* the scheduler (also woken every ``tick`` seconds, for lease expiries) plans with
  :mod:`securebuild.daemon.scheduler`, claims what it may start and starts a worker for it;
* one worker per running build drives it: Pending, Running, the executor, the terminal status;
* the renewer extends the claims of running builds; a claim that cannot be renewed is lost, and
  its worker stops without writing anything (the new holder owns the Build).

Nothing is lost on a crash: a claimed Build whose daemon died keeps its claim until the lease
runs out; then any daemon (this one after a restart too) takes it over, kills leftovers of the
earlier attempt on this host and runs it again, so it always ends in a terminal phase.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import logging
import shutil
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from securebuild.api import ApiServer, User
from securebuild.cluster import paths
from securebuild.cluster.claims import CLAIM_ANNOTATION, Claim, ClaimLost, Claims
from securebuild.cluster.client import ApiError, ClusterError, Kube, retry_transient
from securebuild.cluster.events import EventRecorder
from securebuild.cluster.imagestreams import UnresolvedOutput, record_push, resolve_output
from securebuild.cluster.instantiate import instantiate
from securebuild.cluster.status import InvalidTransition, StatusChange, StatusWriter
from securebuild.cluster.watch import CallbackHandler, ObjectCache, Reflector, WatchTimeouts
from securebuild.daemon import metrics
from securebuild.daemon.config import DaemonConfig
from securebuild.daemon.executor import Executor, Job, Outcome
from securebuild.daemon.reporter import OwnerReporter, Reporter
from securebuild.daemon.scheduler import Candidate, plan
from securebuild.daemon.slots import ProjectSlots
from securebuild.errors import SecurebuildError
from securebuild.logs import LogStore
from securebuild.model import Build, ModelError, validate
from securebuild.model import events as model_events
from securebuild.model.generate import MANUALLY_TRIGGERED, BuildRequest
from securebuild.model.logsnippet import log_snippet
from securebuild.model.status import (
    CANCELLED_BUILD,
    GENERIC_BUILD_FAILED,
    INVALID_OUTPUT_REFERENCE,
    TERMINAL_PHASES,
    Phase,
    parse_timestamp,
)
from securebuild.model.types import BinaryBuildSource, BuildTriggerCause
from securebuild.pki import ProjectPKI
from securebuild.runner import PlaybookRun, RunSpec

logger = logging.getLogger(__name__)

#: How often build logs older than ``log_retention_days`` are removed (seconds).
LOG_EXPIRY_INTERVAL = 3600.0
#: How often the housekeeping callable (the fleet's idle VM reaper) runs (seconds).
HOUSEKEEPING_INTERVAL = 60.0
#: Back-off of a Build whose output cannot be resolved: first retry, doubling up to the cap (s).
OUTPUT_RETRY_SECONDS = 10.0
OUTPUT_RETRY_MAX_SECONDS = 60.0


def _utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def is_docker_build(build: Mapping[str, Any]) -> bool:
    strategy = (build.get("spec") or {}).get("strategy") or {}
    return strategy.get("type") == "Docker" or (
        strategy.get("type") is None and "dockerStrategy" in strategy
    )


def is_active(build: Mapping[str, Any]) -> bool:
    """A Docker build that is not terminal: the only kind the daemon keeps in memory."""
    phase = (build.get("status") or {}).get("phase") or "New"
    return is_docker_build(build) and phase not in TERMINAL_PHASES


def slim(build: dict[str, Any]) -> dict[str, Any]:
    """What the daemon keeps of a cached Build: metadata (without managedFields) and the
    status fields scheduling reads. Workers read the full Build when they claim it."""
    meta = {k: v for k, v in (build.get("metadata") or {}).items() if k != "managedFields"}
    status = build.get("status") or {}
    return {
        "metadata": meta,
        "spec": {
            "strategy": {"type": ((build.get("spec") or {}).get("strategy") or {}).get("type")}
        },
        "status": {k: status[k] for k in ("phase", "cancelled") if k in status},
    }


def is_binary_build(build: Mapping[str, Any]) -> bool:
    source = (build.get("spec") or {}).get("source") or {}
    return source.get("type") == "Binary" or source.get("binary") is not None


class _NamespaceCache(ObjectCache):
    """Opted-in namespaces; one being deleted (deletionTimestamp, or gone) is reported."""

    def __init__(self, on_change: Callable[[], None], deleted: Callable[[str], None]) -> None:
        super().__init__(
            keep=lambda ns: not (ns.get("metadata") or {}).get("deletionTimestamp"),
            on_change=on_change,
        )
        self._deleted = deleted

    def replace(self, objects: list[dict[str, Any]]) -> None:
        super().replace(objects)
        for obj in objects:
            if (obj.get("metadata") or {}).get("deletionTimestamp"):
                self._deleted(self.key(obj))

    def event(self, kind: str, obj: dict[str, Any]) -> None:
        super().event(kind, obj)
        meta = obj.get("metadata") or {}
        if meta.get("deletionTimestamp") or (kind == "DELETED" and self._really_gone(obj)):
            self._deleted(self.key(obj))

    @staticmethod
    def _really_gone(obj: Mapping[str, Any]) -> bool:
        """DELETED also means "label removed" on a label-selected watch: only a namespace
        whose deletion started counts (the event carries its last state)."""
        return bool((obj.get("metadata") or {}).get("deletionTimestamp")) or (
            (obj.get("status") or {}).get("phase") == "Terminating"
        )


@dataclass
class Worker:
    key: str
    namespace: str
    name: str
    claim: Claim
    build: dict[str, Any]
    cancelled_only: bool = False
    cancel: threading.Event = field(default_factory=threading.Event)
    user_cancelled: bool = False
    deadline_exceeded: bool = False
    lost: bool = False
    thread: threading.Thread | None = None
    #: The project's build slot while the build runs (none for takeovers and cancellations).
    slot: contextlib.ExitStack | None = None


class BuildHostLimit(Protocol):
    @property
    def name(self) -> str: ...
    @property
    def max_builds(self) -> int: ...


class Placement(Protocol):
    """Where projects' VMs live and how many builds each build host takes (the fleet)."""

    def host_of(self, project: str) -> str | None: ...
    def hosts(self) -> Sequence[BuildHostLimit]: ...


class Daemon:
    """One securebuild daemon; see the module docstring."""

    def __init__(
        self,
        config: DaemonConfig,
        *,
        kube: Kube,
        executor: Executor,
        reporter: Reporter | None = None,
        tick: float = 0.5,
        project_cleanup: Callable[[str], None] | None = None,
        housekeeping: Callable[[], object] | None = None,
        placement: Placement | None = None,
        housekeeping_interval: float = HOUSEKEEPING_INTERVAL,
    ) -> None:
        self.config = config
        self.identity = config.identity
        self.kube = kube
        self.executor = executor
        self.claims = Claims(
            kube, self.identity, config.timeouts.lease_seconds, api=config.api.advertise_url
        )
        self.recorder = EventRecorder(kube, host=self.identity)
        self.writer = StatusWriter(kube, self.identity, self.recorder)
        self.reporter: Reporter = reporter or OwnerReporter(self.writer)
        self.log_store = LogStore(config.logs)
        self.tick = tick
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self.workers: dict[str, Worker] = {}
        self.builds = ObjectCache(keep=is_active, on_change=self._wake.set, transform=slim)
        self.namespaces = _NamespaceCache(self._wake.set, self._namespace_deleted)
        self.project_cleanup: Callable[[str], None] = project_cleanup or self._destroy_vm
        self.housekeeping = housekeeping
        self.placement = placement
        self.housekeeping_interval = housekeeping_interval
        self._cleaned: set[str] = set()
        self.slots = ProjectSlots(config.state_dir, config.limits.builds_per_project)
        timeouts = WatchTimeouts(
            request=config.timeouts.request_seconds,
            inactivity=config.timeouts.watch_inactivity_seconds,
        )
        self.build_reflector = Reflector(
            kube, paths.builds(), self.builds, timeouts=timeouts, name="builds"
        )
        self.namespace_reflector = Reflector(
            kube,
            paths.namespaces(),
            self.namespaces,
            label_selector=config.namespace_selector,
            timeouts=timeouts,
            name="namespaces",
        )
        self.stream_reflector = Reflector(
            kube,
            paths.imagestreams(),
            CallbackHandler(self._streams_listed, self._stream_event),
            timeouts=timeouts,
            name="imagestreams",
        )
        self._threads: list[threading.Thread] = []
        self._candidate_cache: dict[str, tuple[str, Candidate]] = {}
        #: Builds waiting for their output: key -> (monotonic time of the next try, back-off,
        #: "namespace/name" of the missing ImageStream).
        self._output_waits: dict[str, tuple[float, float, str]] = {}
        self.output_retry_seconds = OUTPUT_RETRY_SECONDS
        self.output_retry_max_seconds = OUTPUT_RETRY_MAX_SECONDS

    # -- lifecycle -----------------------------------------------------------------------
    def start(self) -> Daemon:
        logger.info("daemon %s starting", self.identity)
        self.namespace_reflector.start()
        self.build_reflector.start()
        self.stream_reflector.start()
        loops = [(self._schedule_loop, "scheduler"), (self._renew_loop, "renewer")]
        if self.housekeeping is not None:
            loops.append((self._housekeeping_loop, "housekeeping"))
        for target, name in loops:
            thread = threading.Thread(target=target, name=name, daemon=True)
            thread.start()
            self._threads.append(thread)
        return self

    @property
    def ready(self) -> bool:
        return self.build_reflector.stats.synced.is_set() and (
            self.namespace_reflector.stats.synced.is_set()
        )

    def wait_ready(self, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        return self.namespace_reflector.wait_synced(timeout) and self.build_reflector.wait_synced(
            max(0.0, deadline - time.monotonic())
        )

    def stop(self, timeout: float = 30.0) -> None:
        """Stop watching and scheduling; running builds are abandoned, not failed.

        Their claims run out and another daemon (or this one after a restart) takes them over.
        """
        logger.info("daemon %s stopping", self.identity)
        self._stop.set()
        self._wake.set()
        with self._lock:
            workers = list(self.workers.values())
        for worker in workers:
            worker.lost = True
            worker.cancel.set()
        for worker in workers:
            if worker.thread is not None:
                worker.thread.join(timeout)
        for thread in self._threads:
            thread.join(timeout)
        self.build_reflector.stop()
        self.namespace_reflector.stop()
        self.stream_reflector.stop()

    # -- deleted projects ----------------------------------------------------------------
    def _namespace_deleted(self, namespace: str) -> None:
        """A watched namespace is being deleted: remove its VM and CA (once, in the background)."""
        with self._lock:
            if namespace in self._cleaned:
                return
            self._cleaned.add(namespace)
        threading.Thread(
            target=self._cleanup_project,
            args=(namespace,),
            name=f"cleanup {namespace}",
            daemon=True,
        ).start()

    def _cleanup_project(self, namespace: str) -> None:
        """The project's VM first (``project_cleanup``), then its CA and certificates."""
        try:
            self.project_cleanup(namespace)
        except Exception:
            logger.exception("destroying the VM of deleted project %s failed", namespace)
            return
        shutil.rmtree(ProjectPKI(self.config.state_dir, namespace).directory, ignore_errors=True)
        logger.info("project %s deleted: VM and CA removed", namespace)

    def _housekeeping_loop(self) -> None:
        """Idle VMs stopped and destroyed (the fleet's reaper), in a thread of its own: a
        VM shutdown takes seconds to minutes and must not delay claim renewals."""
        assert self.housekeeping is not None
        while not self._stop.wait(self.housekeeping_interval):
            try:
                self.housekeeping()
            except Exception:
                logger.exception("housekeeping failed")

    def _destroy_vm(self, namespace: str) -> None:
        """Default VM cleanup without a fleet: ``vm-destroy.yml`` for the project."""
        project_dir = self.config.executor.project_dir or Path(__file__).resolve().parents[2]
        playbook = project_dir / "playbooks" / "vm-destroy.yml"
        if playbook.is_file() and self.config.inventory is not None:
            result = PlaybookRun(
                RunSpec(
                    build_uid=f"cleanup-{namespace}",
                    attempt=1,
                    project_dir=project_dir,
                    playbook="playbooks/vm-destroy.yml",
                    inventory=self.config.inventory,
                    trusted_vars={"securebuild_project": namespace},
                ),
                base_dir=self.config.state_dir / "runs",
                on_line=lambda line: logger.info("vm-destroy %s: %s", namespace, line),
            ).run()
            if not result.succeeded:
                raise RuntimeError(f"vm-destroy.yml for {namespace} ended {result.status}")
        else:
            logger.info("no vm-destroy.yml or inventory: only the CA of %s is removed", namespace)

    # -- binary builds -------------------------------------------------------------------
    def upload_path(self, uid: str) -> Path:
        """Where the uploaded input of Build ``uid`` waits for its run (name from the uid)."""
        return self.config.state_dir / "uploads" / uid

    def instantiate_binary(
        self, namespace: str, name: str, as_file: str | None, upload: Path, user: User
    ) -> dict[str, Any]:
        """``instantiatebinary``: create the Build, claimed by this daemon, which has the input.

        The Build is created with this daemon's claim already on it, so the daemon that holds
        the uploaded file is the one that runs it (another replica has no copy). If this
        daemon dies, the claim expires and the taker-over fails the fetch: the upload is gone,
        as with OpenShift when the build pod dies.
        """
        claim = Claim(
            self.identity, _utcnow(), self.config.timeouts.lease_seconds, 1, self.claims.api
        )
        request = BuildRequest(
            binary=BinaryBuildSource(as_file=as_file),
            triggered_by=(BuildTriggerCause(message=MANUALLY_TRIGGERED),),
            annotations={"securebuild.appuio.ch/requested-by": user.name},
        )
        try:
            build = instantiate(
                self.kube,
                namespace,
                name,
                request,
                annotations={CLAIM_ANNOTATION: claim.to_annotation()},
            )
        except BaseException:
            upload.unlink(missing_ok=True)
            raise
        target = self.upload_path(str(build["metadata"]["uid"]))
        target.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        upload.replace(target)
        self._wake.set()
        return build

    def _get_build(self, namespace: str, name: str) -> dict[str, Any] | None:
        try:
            build: dict[str, Any] = self.kube.get(paths.build(namespace, name))
        except ApiError as exc:
            if exc.not_found:
                return None
            raise
        return build

    def start_api(self) -> ApiServer:
        api = self.config.api
        assert api.listen and api.tls_cert and api.tls_key
        host, _, port = api.listen.rpartition(":")
        server = ApiServer(
            post=lambda path, body: dict(self.kube.request("POST", path, body=body)),
            get_build=self._get_build,
            log_store=self.log_store,
            host=host,
            port=int(port),
            cert=api.tls_cert,
            key=api.tls_key,
            upload_dir=self.config.state_dir / "uploads",
            ready=lambda: self.ready,
            instantiate_binary=self.instantiate_binary,
            locate_log=self._locate_log,
            peer_ca=api.peer_ca,
        )
        if self.claims.api is None and host not in ("0.0.0.0", "::", ""):  # noqa: S104
            self.claims.api = server.url  # advertise where we listen (tests, single host)
        return server.start()

    def _locate_log(self, build: dict[str, Any]) -> str | None:
        """The API of the replica that holds ``build``'s log, if that is not this one."""
        claim = Claim.of(build)
        if claim is None or claim.holder == self.identity or not claim.api:
            return None
        return None if claim.api == self.claims.api else claim.api

    # -- scheduling ----------------------------------------------------------------------
    def _schedule_loop(self) -> None:
        while not self._stop.is_set():
            self._wake.wait(self.tick)
            self._wake.clear()
            if self._stop.is_set():
                return
            if not self.ready:
                continue
            try:
                self.schedule_once()
            except (ApiError, ClusterError) as exc:
                logger.warning("scheduling: %s", exc)
            except Exception:
                logger.exception("scheduling failed")

    def schedule_once(self) -> None:
        now = _utcnow()
        opted_in = {ObjectCache.key(ns) for ns in self.namespaces.values()}
        builds = {key: b for key, b in self.builds.items() if key.partition("/")[0] in opted_in}
        with self._lock:
            running = set(self.workers)
            metrics.RUNNING.set(len(running))
            for key, worker in self.workers.items():
                current = builds.get(key)
                cancelled = bool(current and (current.get("status") or {}).get("cancelled"))
                if cancelled and not worker.user_cancelled and not worker.cancelled_only:
                    logger.info("build %s cancelled by the user", key)
                    worker.user_cancelled = True
                    worker.cancel.set()
        metrics.QUEUED.set(
            sum(1 for b in builds.values() if (b.get("status") or {}).get("phase", "New") == "New")
        )
        decisions = plan(
            self._candidates_of(builds),
            identity=self.identity,
            running_here=running,
            max_here=self.config.limits.max_concurrent_builds,
            per_project=self.config.limits.builds_per_project,
            now=now,
            host_of=self._host_of_cached(),
            per_host=(
                {host.name: host.max_builds for host in self.placement.hosts()}
                if self.placement
                else None
            ),
            deferred=self._deferred(builds),
        )
        for candidate in decisions.supersede:
            self._supersede(candidate)
        for candidate in decisions.finish_cancelled:
            self._claim_and_start(builds[candidate.key], cancelled_only=True)
        for candidate in decisions.start:
            self._claim_and_start(builds[candidate.key], cancelled_only=False)

    def _host_of_cached(self) -> Callable[[str], str | None]:
        """The placement's ``host_of`` (a file read), memoised for one scheduling pass."""
        placement = self.placement
        if placement is None:
            return lambda _namespace: None
        known: dict[str, str | None] = {}

        def host_of(namespace: str) -> str | None:
            if namespace not in known:
                try:
                    known[namespace] = placement.host_of(namespace)
                except SecurebuildError:  # not a valid project name: never placed
                    known[namespace] = None
            return known[namespace]

        return host_of

    def _deferred(self, builds: Mapping[str, Any]) -> set[str]:
        """Builds waiting for their output whose back-off has not ended (forgets gone ones)."""
        clock = time.monotonic()
        with self._lock:
            for key in [k for k in self._output_waits if k not in builds]:
                del self._output_waits[key]
            return {k for k, (at, _, _) in self._output_waits.items() if at > clock}

    def _streams_listed(self, streams: list[dict[str, Any]]) -> None:
        self._streams_changed({ObjectCache.key(s) for s in streams})

    def _stream_event(self, kind: str, stream: dict[str, Any]) -> None:
        if kind != "DELETED":
            self._streams_changed({ObjectCache.key(stream)})

    def _streams_changed(self, keys: set[str]) -> None:
        """Builds waiting for one of these streams are tried again now (no back-off)."""
        with self._lock:
            ready = [k for k, (_, _, stream) in self._output_waits.items() if stream in keys]
            for key in ready:
                _, delay, stream = self._output_waits[key]
                self._output_waits[key] = (0.0, delay, stream)
        if ready:
            logger.info("output streams appeared for %s", ", ".join(sorted(ready)))
            self._wake.set()

    def _candidates_of(self, builds: dict[str, dict[str, Any]]) -> list[Candidate]:
        """Candidates, re-read only for Builds whose resourceVersion changed (10,000 Builds
        cost ~80 ms to read each pass, and a pass runs on every watch event)."""
        cache: dict[str, tuple[str, Candidate]] = {}
        result = []
        for key, build in builds.items():
            rv = str((build.get("metadata") or {}).get("resourceVersion") or "")
            cached = self._candidate_cache.get(key)
            if cached is None or cached[0] != rv or not rv:
                cached = (rv, Candidate.of(build))
            cache[key] = cached
            result.append(cached[1])
        self._candidate_cache = cache
        return result

    def _supersede(self, candidate: Candidate) -> None:
        """SerialLatestOnly: a newer build of the BuildConfig is queued; cancel this one."""
        logger.info("build %s superseded by a newer build (SerialLatestOnly)", candidate.key)
        try:
            self.writer.write(
                candidate.namespace,
                candidate.name,
                StatusChange(fields={"cancelled": True}),
                require_claim=False,
            )
        except (ApiError, InvalidTransition) as exc:
            logger.info("could not cancel superseded %s: %s", candidate.key, exc)

    def _claim_and_start(self, build: Mapping[str, Any], *, cancelled_only: bool) -> None:
        meta = build["metadata"]
        previous = Claim.of(build)
        started = ((build.get("status") or {}).get("phase") or "New") != "New"
        # A takeover: it ran under another holder, or under a process of ours that is gone.
        takeover = started or (previous is not None and previous.holder != self.identity)
        slot = None
        if not cancelled_only and not takeover:  # see securebuild.daemon.slots
            slot = self.slots.take(meta["namespace"])
            if slot is None:
                logger.debug(
                    "%s/%s waits: another process holds the project's build slots",
                    meta["namespace"],
                    meta["name"],
                )
                return
        claimed = None
        try:
            claimed = self.claims.try_claim(build)
        finally:
            if claimed is None and slot is not None:
                slot.close()  # not ours to run: the slot goes back
        if claimed is None:
            return
        claim, stored = claimed
        meta = stored["metadata"]
        key = f"{meta['namespace']}/{meta['name']}"
        created = meta.get("creationTimestamp")
        if created and claim.attempt == 1 and not cancelled_only:
            waited = (_utcnow() - parse_timestamp(created)).total_seconds()
            metrics.QUEUE_WAIT.observe(max(0.0, waited))
        worker = Worker(
            key, meta["namespace"], meta["name"], claim, stored, cancelled_only, slot=slot
        )
        worker.thread = threading.Thread(target=self._work, args=(worker,), name=f"build {key}")
        with self._lock:
            self.workers[key] = worker
        worker.thread.start()

    # -- renewing ------------------------------------------------------------------------
    def _renew_loop(self) -> None:
        interval = max(0.2, self.config.timeouts.lease_seconds / 3)
        next_expiry = 0.0
        while not self._stop.wait(interval):
            if time.monotonic() >= next_expiry:
                next_expiry = time.monotonic() + LOG_EXPIRY_INTERVAL
                try:
                    self.log_store.expire(self.config.log_retention_days)
                except OSError as exc:
                    logger.warning("expiring build logs: %s", exc)
            with self._lock:
                workers = list(self.workers.values())
            for worker in workers:
                if worker.lost:
                    continue
                try:
                    worker.claim = self.claims.renew(worker.namespace, worker.name)
                except ClaimLost as exc:
                    logger.warning("lost build %s: %s; stopping it", worker.key, exc)
                    worker.lost = True
                    worker.cancel.set()
                except (ApiError, ClusterError) as exc:
                    # Keep running: the lease is long enough for the API to come back.
                    logger.warning("renewing %s failed: %s", worker.key, exc)

    # -- one build -----------------------------------------------------------------------
    def _work(self, worker: Worker) -> None:
        try:
            self._drive(worker)
        except ClaimLost as exc:
            logger.warning("build %s: %s; leaving it to its holder", worker.key, exc)
        except InvalidTransition as exc:
            logger.info("build %s: %s", worker.key, exc)
        except Exception as exc:
            logger.exception("build %s failed in the daemon", worker.key)
            if not worker.lost:
                self._fail_quietly(worker, f"securebuild: internal error: {exc}")
        finally:
            if worker.slot is not None:
                worker.slot.close()
            with self._lock:
                self.workers.pop(worker.key, None)
            self._wake.set()

    def _fail_quietly(self, worker: Worker, line: str) -> None:
        try:
            log = self.log_store.log(worker.namespace, worker.name)
            log.start()
            log.append(line)
            log.finish()
            self.reporter.finished(
                worker.namespace,
                worker.name,
                Outcome(Phase.FAILED, GENERIC_BUILD_FAILED.reason, GENERIC_BUILD_FAILED.message),
                log_snippet(line),
            )
        except Exception as exc:  # the API may be down: the build is taken over later
            logger.error("build %s: could not report the failure: %s", worker.key, exc)

    def _drive(self, worker: Worker) -> None:
        ns, name = worker.namespace, worker.name
        if worker.cancelled_only:
            self.reporter.cancelled_before_start(ns, name)
            metrics.BUILDS.labels(Phase.CANCELLED.value, CANCELLED_BUILD.reason).inc()
            return
        build = worker.build
        problems = self._problems(build)
        reference: str | None = None
        unresolved: UnresolvedOutput | None = None
        if not problems:
            try:
                reference = self._output_of(build)
            except UnresolvedOutput as exc:
                phase = (build.get("status") or {}).get("phase") or "New"
                if phase == "New" and not is_binary_build(build):
                    self._wait_for_output(worker, exc)
                    return
                unresolved = exc  # a binary build fails; Pending cannot go back to New
        with self._lock:
            self._output_waits.pop(worker.key, None)
        log = self.log_store.log(ns, name)
        log.start()
        if worker.claim.attempt > 1:
            log.append(
                f"securebuild: {self.identity} took over this build (attempt "
                f"{worker.claim.attempt}): its previous daemon stopped renewing its claim"
            )
        if problems:
            outcome = self._refuse(log, problems)
        elif unresolved is not None:
            log.append(f"error: the output image could not be resolved: {unresolved}")
            outcome = Outcome(
                Phase.FAILED, INVALID_OUTPUT_REFERENCE.reason, INVALID_OUTPUT_REFERENCE.message
            )
        else:
            phase = (build.get("status") or {}).get("phase") or "New"
            if phase == "New":
                self.reporter.pending(ns, name, reference)
            self.reporter.running(ns, name)
            outcome = self._execute(worker, log, reference)
        if worker.lost:
            log.finish()
            return
        log.finish()
        snippet = log_snippet("\n".join(log.tail(5)))
        self.upload_path(str(build["metadata"]["uid"])).unlink(missing_ok=True)
        self.reporter.finished(ns, name, outcome, snippet)
        if outcome.phase == Phase.COMPLETE:
            self._after_success(build, outcome)
        metrics.BUILDS.labels(outcome.phase.value, outcome.reason or "").inc()
        for stage in outcome.stages:
            millis = stage.get("durationMilliseconds")
            if stage.get("name") and isinstance(millis, int):
                metrics.STAGE_SECONDS.labels(stage["name"]).observe(millis / 1000)
        logger.info("build %s/%s ended %s %s", ns, name, outcome.phase.value, outcome.reason or "")

    def _output_of(self, build: Mapping[str, Any]) -> str | None:
        """The push target: as resolved when the build went Pending (a takeover), or now."""
        status = build.get("status") or {}
        if (status.get("phase") or "New") != "New" and status.get("outputDockerImageReference"):
            return str(status["outputDockerImageReference"])
        meta = build["metadata"]
        return retry_transient(
            lambda: resolve_output(self.kube, build, self.config.output_registry),
            timeout=self.config.timeouts.lease_seconds,
            what=f"resolving the output of {meta['namespace']}/{meta['name']}",
        )

    def _wait_for_output(self, worker: Worker, unresolved: UnresolvedOutput) -> None:
        """OpenShift keeps the Build New with ``InvalidOutputReference`` and retries it.

        The reason is written once (a retry that finds it there writes nothing, so no event or
        status churn), the claim is released so that any daemon may retry, and this daemon
        backs off before it tries again itself.
        """
        status = worker.build.get("status") or {}
        why = INVALID_OUTPUT_REFERENCE
        if status.get("reason") != why.reason or status.get("message") != why.message:
            logger.info("build %s waits in New: %s", worker.key, unresolved)
            self.reporter.waiting(worker.namespace, worker.name, why)
            if unresolved.registry_missing:
                self.recorder.record(worker.build, model_events.invalid_output())
        else:
            logger.debug("build %s still waits: %s", worker.key, unresolved)
        self.claims.release(worker.namespace, worker.name)
        with self._lock:
            previous = self._output_waits.get(worker.key, (0.0, 0.0, ""))[1]
            delay = (
                min(previous * 2, self.output_retry_max_seconds)
                if previous
                else self.output_retry_seconds
            )
            self._output_waits[worker.key] = (time.monotonic() + delay, delay, unresolved.stream)

    def _after_success(self, build: Mapping[str, Any], outcome: Outcome) -> None:
        """spec.revision from the clone; the ImageStream tag if the config asks for it."""
        meta = build["metadata"]
        ns, name = meta["namespace"], meta["name"]
        if outcome.revision and not (build.get("spec") or {}).get("revision"):
            try:  # the builder sets it once, like OpenShift's git-clone container
                self.kube.request(
                    "PATCH",
                    paths.build(ns, name),
                    body={"spec": {"revision": dict(outcome.revision)}},
                    content_type="application/merge-patch+json",
                )
            except (ApiError, ClusterError) as exc:
                logger.warning("build %s/%s: spec.revision not written: %s", ns, name, exc)
        to = ((build.get("spec") or {}).get("output") or {}).get("to") or {}
        registry = self.config.output_registry
        if (
            self.config.record_imagestream_tags
            and registry
            and outcome.image_digest
            and to.get("kind") == "ImageStreamTag"
        ):
            stream, _, tag = str(to.get("name")).partition(":")
            try:
                record_push(
                    self.kube,
                    registry,
                    to.get("namespace") or ns,
                    stream,
                    tag or "latest",
                    outcome.image_digest,
                )
            except (ApiError, ClusterError) as exc:
                logger.warning("build %s/%s: ImageStream tag not recorded: %s", ns, name, exc)

    @staticmethod
    def _problems(build: Mapping[str, Any]) -> list[str]:
        try:
            parsed = Build.from_json(build)
        except ModelError as exc:
            return [str(p) for p in exc.problems]
        return [str(p) for p in validate(parsed)]

    @staticmethod
    def _refuse(log: Any, problems: list[str]) -> Outcome:
        log.append("error: the Build is not valid:")
        for problem in problems:
            log.append(f"  {problem}")
        return Outcome(Phase.FAILED, GENERIC_BUILD_FAILED.reason, GENERIC_BUILD_FAILED.message)

    def _execute(self, worker: Worker, log: Any, reference: str | None) -> Outcome:
        current = retry_transient(
            lambda: self.kube.get(paths.build(worker.namespace, worker.name)),
            timeout=self.config.timeouts.lease_seconds,
            what=f"reading {worker.key}",
        )
        status = current.get("status") or {}
        if status.get("cancelled"):
            worker.user_cancelled = True
            return Outcome(Phase.CANCELLED, CANCELLED_BUILD.reason, CANCELLED_BUILD.message)
        deadline_s = (current.get("spec") or {}).get("completionDeadlineSeconds") or (
            self.config.timeouts.default_completion_deadline_seconds
        )
        started = parse_timestamp(status.get("startTimestamp") or _utcnow().isoformat())
        remaining = float(deadline_s) - (_utcnow() - started).total_seconds()

        def deadline() -> None:
            if not worker.cancel.is_set():
                logger.info("build %s exceeded its completion deadline", worker.key)
                worker.deadline_exceeded = True
                worker.cancel.set()

        timer = threading.Timer(max(0.0, remaining), deadline)
        timer.daemon = True
        timer.start()
        upload = self.upload_path(str(current["metadata"]["uid"]))
        job = Job(
            binary_file=upload if upload.exists() else None,
            build=current,
            namespace=worker.namespace,
            name=worker.name,
            uid=str(current["metadata"]["uid"]),
            attempt=worker.claim.attempt,
            output_reference=reference,
            on_line=log.append,
        )
        try:
            outcome = self.executor.run(job, worker.cancel)
        finally:
            timer.cancel()
        if worker.deadline_exceeded:
            log.append(f"error: the build exceeded its completion deadline of {deadline_s} seconds")
            return Outcome(
                Phase.FAILED,
                GENERIC_BUILD_FAILED.reason,
                GENERIC_BUILD_FAILED.message,
                stages=outcome.stages,
            )
        if worker.user_cancelled:
            return Outcome(
                Phase.CANCELLED,
                CANCELLED_BUILD.reason,
                CANCELLED_BUILD.message,
                stages=outcome.stages,
            )
        if outcome.phase == Phase.CANCELLED:  # stopped, but by nobody we know of
            return Outcome(
                Phase.ERROR,
                GENERIC_BUILD_FAILED.reason,
                GENERIC_BUILD_FAILED.message,
                stages=outcome.stages,
            )
        return outcome
