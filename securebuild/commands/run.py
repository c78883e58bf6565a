"""``securebuild run BUILD.yaml``: one Build (or BuildConfig, instantiated) through the pipeline.

The local way to run a build exactly as the daemon will: the project's VM is ensured on the
configured inventory (default ``inventories/local``), ``playbooks/build.yml`` runs through the
runner adapter, the build log streams to stdout as it is produced, and the last line says how it
ended. Exit status 0 only for ``Complete``. Ctrl-C cancels the build in the VM (hook processes
killed, the docker build request closed) and ends ``Cancelled``; ``completionDeadlineSeconds``
cancels it the same way when it passes and ends it ``Failed``/``GenericBuildFailed``.

Secrets and config maps of a local run come from directories, one file per key, as
``oc create secret generic NAME --from-file=DIR`` would take them: ``--secret NAME=DIR``,
``--config-map NAME=DIR``. A registry secret is a directory holding ``.dockerconfigjson`` (or
``.dockercfg``). Looking them up in a cluster is the daemon's job.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import os
import signal
import sys
import tarfile
import tempfile
import threading
import uuid
from collections.abc import Callable
from pathlib import Path
from types import FrameType
from typing import Any

from securebuild.commands.vm import fleet_arguments
from securebuild.errors import SecurebuildError
from securebuild.fleet.vms import Fleet
from securebuild.model import BuildConfig, ModelError, load_document, object_from_dict, validate
from securebuild.model.generate import generate_build
from securebuild.model.parse import read_text
from securebuild.model.status import GENERIC_BUILD_FAILED, Phase
from securebuild.pipeline.execute import REPO_ROOT, BuildOutcome, VMTarget, run_plan
from securebuild.pipeline.plan import PlanError, SecretData, make_plan
from securebuild.runner import PlaybookRun

logger = logging.getLogger(__name__)

_EXCLUDE_GIT = ".git"


class RunError(SecurebuildError):
    """``securebuild run`` cannot start the build."""


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "run",
        help="run one Build or BuildConfig through the pipeline in its project's VM",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("build", type=Path, help="Build or BuildConfig YAML/JSON file")
    source = parser.add_mutually_exclusive_group()
    source.add_argument("--from-dir", type=Path, help="directory sent as the binary input")
    source.add_argument("--from-archive", type=Path, help="archive sent as the binary input")
    source.add_argument("--from-file", type=Path, help="single file sent as the binary input")
    parser.add_argument("-n", "--namespace", help="namespace (project) of the build")
    parser.add_argument(
        "--secret",
        action="append",
        default=[],
        metavar="NAME=DIR",
        help="a Secret for the build: one file per key in DIR (repeatable)",
    )
    parser.add_argument(
        "--config-map",
        action="append",
        default=[],
        metavar="NAME=DIR",
        help="a ConfigMap for the build: one file per key in DIR (repeatable)",
    )
    parser.add_argument(
        "--registry-ca",
        action="append",
        default=[],
        metavar="REGISTRY=FILE",
        help="CA certificate the VM's dockerd trusts for REGISTRY (host:port; operator setting)",
    )
    fleet_arguments(parser)
    parser.add_argument(
        "--hook-timeout", type=int, default=600, help="seconds each .d2i hook may run (600)"
    )
    parser.add_argument("--json", action="store_true", help="print the outcome as JSON at the end")
    parser.set_defaults(func=run)


def _read_dir(spec: str, what: str) -> SecretData:
    name, sep, directory = spec.partition("=")
    if not sep or not name or not directory:
        raise RunError(f"--{what} expects NAME=DIR, got {spec!r}")
    path = Path(directory)
    if not path.is_dir():
        raise RunError(f"--{what} {name}: {path} is not a directory")
    data = {
        entry.name: entry.read_bytes()
        for entry in sorted(path.iterdir())
        if entry.is_file() and not entry.name.startswith("..")
    }
    return SecretData(name=name, data=data)


def _load_build(path: Path, namespace: str | None) -> dict[str, Any]:
    """The Build to run: the file's Build, or the Build ``instantiate`` makes of its BuildConfig.

    Validated with OpenShift's rules (securebuild.model) before anything else happens.
    """
    try:
        document = dict(load_document(read_text(path, what="build file"), source=str(path)))
        meta = dict(document.get("metadata") or {})
        if namespace:
            meta["namespace"] = namespace
        meta.setdefault("namespace", "default")
        document["metadata"] = meta
        obj = object_from_dict(document, source=str(path))
        problems = validate(obj)
        if problems:
            raise ModelError(problems, source=str(path))
        if isinstance(obj, BuildConfig):
            obj = generate_build(obj)
    except ModelError as exc:
        raise RunError(str(exc)) from exc
    build = obj.to_json()
    build.setdefault("metadata", {})
    if not build["metadata"].get("uid"):
        build["metadata"]["uid"] = str(uuid.uuid4())
    return build


def _archive_dir(directory: Path) -> Path:
    """tar.gz of ``directory`` without .git (``oc start-build --from-dir``'s default exclude)."""
    if not directory.is_dir():
        raise RunError(f"--from-dir {directory} is not a directory")
    handle, name = tempfile.mkstemp(prefix="securebuild-binary-", suffix=".tar.gz")
    os.close(handle)
    Path(name).chmod(0o600)

    def keep(info: tarfile.TarInfo) -> tarfile.TarInfo | None:
        parts = Path(info.name).parts
        return None if _EXCLUDE_GIT in parts else info

    with tarfile.open(name, "w:gz") as tar:
        for entry in sorted(directory.iterdir()):
            tar.add(str(entry), arcname=entry.name, filter=keep)
    return Path(name)


def run(args: argparse.Namespace) -> int:
    build = _load_build(args.build, args.namespace)
    secrets = {s.name: s for s in (_read_dir(x, "secret") for x in args.secret)}
    config_maps = {c.name: c for c in (_read_dir(x, "config-map") for x in args.config_map)}
    registry_cas: dict[str, str] = {}
    for item in args.registry_ca:
        registry, sep, ca = item.partition("=")
        if not sep or not Path(ca).is_file():
            raise RunError(
                f"--registry-ca expects REGISTRY=FILE with an existing file, got {item!r}"
            )
        registry_cas[registry] = str(Path(ca).resolve())
    binary: Path | None = None
    temp_binary: Path | None = None
    as_file: str | None = None
    if args.from_dir is not None:
        temp_binary = binary = _archive_dir(args.from_dir)
        print(f'Uploading directory "{args.from_dir}" as binary input for the build ...')
    elif args.from_archive is not None:
        binary = args.from_archive
        print(f'Uploading archive file "{args.from_archive}" as binary input for the build ...')
    elif args.from_file is not None:
        binary = args.from_file
        as_file = args.from_file.name
        print(f'Uploading file "{args.from_file}" as binary input for the build ...')
    if binary is not None and not binary.is_file():
        raise RunError(f"binary input {binary} is not a file")
    try:
        try:
            plan = make_plan(
                build,
                secrets=secrets,
                config_maps=config_maps,
                binary_path=str(binary.resolve()) if binary else None,
                binary_as_file=as_file,
                hook_timeout=args.hook_timeout,
            )
        except PlanError as exc:
            raise RunError(str(exc)) from exc
        fleet = Fleet(inventory=args.inventory, state_dir=args.state_dir, project_dir=REPO_ROOT)
        # in use while it runs: a daemon's idle reaper on the same state dir leaves it alone
        with fleet.in_use(plan.namespace):
            # warm when the VM answers SSH, else a cold start
            vm = fleet.ensure(
                plan.namespace, on_line=lambda line: print(line, file=sys.stderr, flush=True)
            )
            outcome = _run_with_cancel(plan, vm, args, registry_cas)
    finally:
        if temp_binary is not None:
            temp_binary.unlink(missing_ok=True)
    if args.json:
        print(
            json.dumps(
                {
                    "phase": outcome.phase,
                    "reason": outcome.reason,
                    "message": outcome.message,
                    "digest": outcome.digest,
                    "output": outcome.output_ref,
                    "stages": outcome.stages,
                    "details": outcome.details,
                }
            )
        )
    print(outcome.summary())
    return 0 if outcome.phase == "Complete" else 1


def _run_with_cancel(
    plan: Any, vm: VMTarget, args: argparse.Namespace, registry_cas: dict[str, str]
) -> BuildOutcome:
    """Run the plan in the VM, cancelled by the first SIGINT/SIGTERM or by its deadline."""

    def on_line(line: str) -> None:
        print(line, flush=True)

    return supervise(
        lambda on_start: run_plan(
            plan,
            vm,
            on_line=on_line,
            base_dir=args.state_dir / "runs",
            registry_cas=registry_cas,
            on_start=on_start,
        ),
        deadline_seconds=(plan.tenant["build"].get("spec") or {}).get("completionDeadlineSeconds"),
        on_line=on_line,
    )


def supervise(
    execute: Callable[[Callable[[PlaybookRun], None]], BuildOutcome],
    *,
    deadline_seconds: int | None,
    on_line: Callable[[str], None],
) -> BuildOutcome:
    """``execute(on_start)``, cancelling its run on the first SIGINT/SIGTERM or at the deadline.

    ``spec.completionDeadlineSeconds`` counts from the start of the run (OpenShift: the pod's
    ``activeDeadlineSeconds``, from the pod's start). When it passes, the run is cancelled in
    the VM like Ctrl-C does, and the build ends ``Failed``/``GenericBuildFailed`` with the log
    line the daemon writes. Without a deadline a local run has none (the daemon's one-week
    default is for unattended builds).
    """
    holder: dict[str, PlaybookRun] = {}
    cancelled = threading.Event()
    exceeded = threading.Event()
    lock = threading.Lock()

    def cancel() -> None:
        with lock:
            if "run" in holder:
                holder["run"].cancel()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        if not cancelled.is_set() and not exceeded.is_set():
            cancelled.set()
            print("securebuild: cancelling the build ...", file=sys.stderr, flush=True)
            cancel()

    def on_deadline() -> None:
        if not cancelled.is_set():
            exceeded.set()
            cancel()

    timer: threading.Timer | None = None

    def on_start(run: PlaybookRun) -> None:
        nonlocal timer
        with lock:
            holder["run"] = run
        if deadline_seconds:
            timer = threading.Timer(float(deadline_seconds), on_deadline)
            timer.daemon = True
            timer.start()

    previous = {sig: signal.signal(sig, on_signal) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        outcome = execute(on_start)
    finally:
        if timer is not None:
            timer.cancel()
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    if not exceeded.is_set() or outcome.phase != Phase.CANCELLED.value:
        return outcome  # ended on its own before the cancel took effect
    on_line(f"error: the build exceeded its completion deadline of {deadline_seconds} seconds")
    return dataclasses.replace(
        outcome,
        phase=Phase.FAILED.value,
        reason=GENERIC_BUILD_FAILED.reason,
        message=GENERIC_BUILD_FAILED.message,
        digest=None,
    )
