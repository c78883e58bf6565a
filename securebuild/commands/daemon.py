"""``securebuild daemon --config FILE``: run the build daemon in the foreground.

Stops cleanly on SIGTERM or SIGINT: watching and scheduling end, running builds are abandoned
with their claims, which another daemon (or this one after a restart) takes over when the lease
runs out.
"""

from __future__ import annotations

import logging
import signal
import threading
from pathlib import Path
from types import FrameType
from typing import Any

from securebuild.cluster import ClusterAccess, Kube
from securebuild.daemon import Daemon, DaemonConfig, Executor, PlaybookExecutor, load_config
from securebuild.daemon.vm_executor import VMExecutor
from securebuild.fleet.vms import Fleet

logger = logging.getLogger(__name__)

#: The source tree (or installed package root) holding playbooks/ and inventories/.
PROJECT_ROOT = Path(__file__).resolve().parents[2]


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "daemon",
        help="run the build daemon (watch, claim, run, report)",
        description="Watch Builds in opted-in namespaces and run them in project VMs.",
    )
    parser.add_argument("--config", type=Path, required=True, metavar="FILE", help="YAML config")
    parser.add_argument(
        "--check", action="store_true", help="validate the config and exit (no cluster access)"
    )
    parser.set_defaults(func=run)


def make_executor(config: DaemonConfig, kube: Kube) -> tuple[Executor, Fleet | None]:
    """The executor the config asks for, and the fleet of project VMs behind it (mode vm)."""
    project_dir = config.executor.project_dir or PROJECT_ROOT
    inventory = config.inventory or PROJECT_ROOT / "inventories" / "local"
    if config.executor.mode == "playbook":
        return (
            PlaybookExecutor(
                project_dir=project_dir,
                playbook=config.executor.playbook,
                cleanup_playbook=config.executor.cleanup_playbook,
                inventory=inventory,
                base_dir=config.state_dir,
            ),
            None,
        )
    fleet = Fleet(inventory=inventory, state_dir=config.state_dir, project_dir=project_dir)
    executor = VMExecutor(
        kube=kube,
        fleet=fleet,
        base_dir=config.state_dir,
        registry_cas={k: str(v) for k, v in config.executor.registry_cas.items()},
        hook_timeout=config.executor.hook_timeout_seconds,
    )
    return executor, fleet


def make_daemon(config: DaemonConfig, kube: Kube) -> Daemon:
    """The daemon with its executor; with VMs, the fleet also places projects on build hosts,
    reaps idle VMs and destroys the VM of a deleted project."""
    executor, fleet = make_executor(config, kube)
    return Daemon(
        config,
        kube=kube,
        executor=executor,
        project_cleanup=fleet.destroy if fleet is not None else None,
        housekeeping=fleet.reap_idle if fleet is not None else None,
        placement=fleet,
    )


def run(args: Any) -> int:
    config = load_config(args.config)
    if args.check:
        print(f"{args.config}: valid (identity {config.identity})")
        return 0
    if logging.getLogger().level > logging.INFO:
        logging.getLogger().setLevel(logging.INFO)
    kube = Kube.from_access(
        ClusterAccess(
            kubeconfig=config.cluster.kubeconfig,
            context=config.cluster.context,
            in_cluster=config.cluster.in_cluster,
            proxy=config.cluster.proxy,
        ),
        timeout=(5.0, config.timeouts.request_seconds),
    )
    config.state_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    daemon = make_daemon(config, kube)
    stop = threading.Event()

    def on_signal(signum: int, _frame: FrameType | None) -> None:
        logger.info("signal %d: stopping", signum)
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    # The API first: claims carry its URL, so other replicas can forward log requests.
    api = daemon.start_api() if config.api.listen else None
    daemon.start()
    print(f"securebuild daemon {config.identity} running", flush=True)
    try:
        stop.wait()
    finally:
        if api is not None:
            api.stop()
        daemon.stop()
    return 0
