"""``securebuild dev ...``: local services for development.

``securebuild dev controlplane [--dir D]`` runs etcd + kube-apiserver with OpenShift's build and
image types in the foreground until Ctrl-C and prints the kubeconfig of each identity. With
``--dir`` the state survives, and the next run starts on the same data, CA and tokens.

``securebuild dev up [--dir .dev]`` runs the whole system on this machine in the foreground: the
control plane, a registry with TLS and auth, and the daemon (with its HTTPS API) on
``inventories/local``; it writes kubeconfigs for admin, alice and bob and an ``env`` file under
the directory and prints how to use them. ``securebuild dev down [--dir .dev]`` stops it.

Each subcommand is one ``_register_<name>`` function below.
"""

from __future__ import annotations

import argparse
import os
import signal
import threading
import time
from pathlib import Path
from typing import Any

from securebuild.devenv.controlplane import ControlPlane
from securebuild.errors import SecurebuildError


def register(subparsers: Any) -> None:
    """Add ``dev`` and its subcommands to the top-level parser."""
    parser = subparsers.add_parser(
        "dev",
        help="local services for development (API server, ...)",
        description="Run local services for development and manual testing, on 127.0.0.1 only.",
    )
    dev_subparsers = parser.add_subparsers(dest="dev_command", metavar="SUBCOMMAND")
    parser.set_defaults(func=lambda _args: _usage(parser))
    _register_controlplane(dev_subparsers)
    _register_up(dev_subparsers)
    _register_down(dev_subparsers)


def _usage(parser: argparse.ArgumentParser) -> int:
    parser.print_help()
    return 2


def _register_controlplane(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "controlplane",
        help="etcd + kube-apiserver with OpenShift's build types, until Ctrl-C",
        description=(
            "Start etcd and kube-apiserver on 127.0.0.1 with the CRDs and RBAC of deploy/, print "
            "a kubeconfig per identity (admin, alice, bob, daemon) and run until Ctrl-C."
        ),
    )
    parser.add_argument(
        "--dir",
        type=Path,
        default=None,
        help="state directory, kept after exit and reused on the next start "
        "(default: a temporary directory, deleted on exit)",
    )
    parser.add_argument(
        "--watch-cache",
        action="store_true",
        help="enable the API server's watch cache (off by default: 410 Gone comes from etcd)",
    )
    parser.set_defaults(func=_run_controlplane)


def _stop_on_sigterm() -> threading.Event:
    """An event that SIGTERM sets: it ends a run like Ctrl-C does (both stop the services)."""
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda _signo, _frame: stop.set())
    return stop


def _wait_until_stopped(stop: threading.Event) -> None:
    """Block until Ctrl-C or ``stop`` is set, then say that the services stop."""
    try:
        while not stop.wait(1.0):
            pass
    except KeyboardInterrupt:
        pass
    print("stopping", flush=True)


def _run_controlplane(args: argparse.Namespace) -> int:
    directory: Path | None = args.dir.resolve() if args.dir else None
    plane = ControlPlane(directory, watch_cache=args.watch_cache)
    stop = _stop_on_sigterm()
    started = time.monotonic()
    with plane:
        print(f"API server {plane.api_url} ready in {time.monotonic() - started:.1f} s")
        print(f"CA certificate   {plane.ca_file}")
        for name in plane.identities:
            print(f"kubeconfig {name:7}  {plane.kubeconfig(name)}")
        print(f"logs             {plane.log_dir}")
        print("Ctrl-C stops it.", flush=True)
        _wait_until_stopped(stop)
    return 0


DEV_DIR = Path(".dev")
PID_FILE = "dev-up.pid"


def _register_up(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "up",
        help="control plane + registry + daemon on inventories/local, until Ctrl-C or dev down",
        description="Run the whole system locally: API server with OpenShift's build types, a "
        "registry, the daemon and its HTTPS API. Kubeconfigs for admin, alice and bob and an env "
        "file are written to --dir.",
    )
    parser.add_argument("--dir", type=Path, default=DEV_DIR, help="state directory (.dev)")
    parser.add_argument(
        "--project-dir",
        type=Path,
        default=None,
        help="directory holding the build playbook (default: the source tree)",
    )
    parser.add_argument(
        "--playbook",
        default=None,
        help="run this playbook on --inventory instead of building in project VMs "
        "(executor mode playbook; for trying the daemon without VMs)",
    )
    parser.add_argument("--inventory", type=Path, default=None, help="default inventories/local")
    parser.set_defaults(func=_run_up)


def _register_down(subparsers: Any) -> None:
    parser = subparsers.add_parser("down", help="stop what `securebuild dev up` started")
    parser.add_argument("--dir", type=Path, default=DEV_DIR, help="state directory (.dev)")
    parser.set_defaults(func=_run_down)


def _run_up(args: argparse.Namespace) -> int:
    # Imported here: only `dev up` needs the daemon and the registry launcher.
    from securebuild.cluster import ClusterAccess, Kube, paths
    from securebuild.commands.daemon import make_daemon
    from securebuild.daemon.config import (
        ApiConfig,
        ClusterConfig,
        DaemonConfig,
        ExecutorConfig,
    )
    from securebuild.devenv.process import free_port
    from securebuild.devenv.registry import Registry
    from securebuild.devenv.testca import TestCA
    from securebuild.devenv.vmregistry import guest_registry

    root = Path(__file__).resolve().parents[2]
    directory: Path = args.dir.resolve()
    directory.mkdir(mode=0o700, parents=True, exist_ok=True)
    pid_file = directory / PID_FILE
    if pid_file.exists() and _alive(int(pid_file.read_text() or 0)):
        raise SecurebuildError(f"securebuild dev up is already running ({pid_file})")
    stop = _stop_on_sigterm()
    started = time.monotonic()
    plane = ControlPlane(directory / "controlplane")
    in_vms = args.playbook is None
    # Builds in VMs push through the VM's dockerd, which reaches the host's loopback as 10.0.2.2.
    registry = guest_registry() if in_vms else Registry(workdir=directory / "registry")
    with plane, registry:
        admin = Kube.from_access(ClusterAccess(kubeconfig=plane.kubeconfig("admin")))
        for namespace in ("alice-project", "bob-project"):
            admin.request(
                "PATCH",
                paths.namespace(namespace),
                body={"metadata": {"labels": {"securebuild.appuio.ch/enabled": "true"}}},
                content_type="application/merge-patch+json",
            )
        cert = TestCA(directory / "api-pki").server("api", ("127.0.0.1", "localhost"))
        port = free_port()
        config = DaemonConfig(
            cluster=ClusterConfig(kubeconfig=plane.kubeconfig("daemon")),
            identity="dev-daemon",
            inventory=args.inventory or root / "inventories" / "local",
            executor=ExecutorConfig(
                mode="vm" if in_vms else "playbook",
                project_dir=(args.project_dir or root).resolve(),
                playbook=args.playbook or "playbooks/build.yml",
                cleanup_playbook=None if args.playbook else "playbooks/build-cleanup.yml",
                registry_cas={registry.address: registry.ca_cert} if in_vms else {},
            ),
            state_dir=directory / "state",
            output_registry=registry.address,
            api=ApiConfig(listen=f"127.0.0.1:{port}", tls_cert=cert.cert, tls_key=cert.key),
        )
        config.state_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        kube = Kube.from_access(ClusterAccess(kubeconfig=config.cluster.kubeconfig))
        daemon = make_daemon(config, kube).start()
        api = daemon.start_api()
        for name in ("admin", "alice", "bob"):
            target = directory / f"{name}.kubeconfig"
            target.write_bytes(plane.kubeconfig(name).read_bytes())
            target.chmod(0o600)
        ca = directory / "api-pki" / "ca.crt"
        env = directory / "env"
        env.write_text(
            f"export SECUREBUILD_API={api.url}\n"
            f"export SECUREBUILD_API_CA={ca}\n"
            f"export KUBECONFIG={directory / 'alice.kubeconfig'}\n"
        )
        pid_file.write_text(str(os.getpid()))
        print(f"securebuild dev up: ready in {time.monotonic() - started:.1f} s")
        print(
            f"  API server   {plane.api_url}  "
            f"(kubeconfigs {directory}/{{admin,alice,bob}}.kubeconfig)"
        )
        print(f"  registry     {registry.address}  (CA {registry.ca_cert})")
        print(f"  daemon API   {api.url}  (CA {ca})")
        print(f"  use it:      . {env}; securebuild start-build BC -n alice-project -F")
        print("  stop it:     Ctrl-C or securebuild dev down", flush=True)
        _wait_until_stopped(stop)
        api.stop()
        daemon.stop()
    pid_file.unlink(missing_ok=True)
    return 0


def _alive(pid: int) -> bool:
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:  # a zombie (exited, not yet reaped by its parent) is not running
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return True
    return state != "Z"


def _run_down(args: argparse.Namespace) -> int:
    pid_file = args.dir.resolve() / PID_FILE
    try:
        pid = int(pid_file.read_text())
    except (OSError, ValueError):
        print(f"securebuild dev up is not running (no {pid_file})")
        return 0
    if not _alive(pid):
        pid_file.unlink(missing_ok=True)
        print("securebuild dev up is not running (stale pid file removed)")
        return 0
    os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + 60
    while _alive(pid) and time.monotonic() < deadline:
        time.sleep(0.2)
    if _alive(pid):
        raise SecurebuildError(f"securebuild dev up (pid {pid}) did not stop within 60 s")
    print("securebuild dev up stopped")
    return 0
