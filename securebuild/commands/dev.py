"""``securebuild dev ...``: local services for development.

``securebuild dev controlplane [--dir D]`` runs etcd + kube-apiserver with OpenShift's build and
image types in the foreground until Ctrl-C and prints the kubeconfig of each identity. With
``--dir`` the state survives, and the next run starts on the same data, CA and tokens.

Each subcommand is one ``_register_<name>`` function below; more (``dev up``/``dev down``) plug in
the same way.
"""

from __future__ import annotations

import argparse
import signal
import threading
import time
from pathlib import Path
from typing import Any

from securebuild.devenv.controlplane import ControlPlane


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


def _run_controlplane(args: argparse.Namespace) -> int:
    directory: Path | None = args.dir.resolve() if args.dir else None
    plane = ControlPlane(directory, watch_cache=args.watch_cache)
    stop = threading.Event()
    # SIGTERM ends the run like Ctrl-C does: both stop the services before exiting.
    signal.signal(signal.SIGTERM, lambda _signo, _frame: stop.set())
    started = time.monotonic()
    with plane:
        print(f"API server {plane.api_url} ready in {time.monotonic() - started:.1f} s")
        print(f"CA certificate   {plane.ca_file}")
        for name in plane.identities:
            print(f"kubeconfig {name:7}  {plane.kubeconfig(name)}")
        print(f"logs             {plane.log_dir}")
        print("Ctrl-C stops it.", flush=True)
        try:
            while not stop.wait(1.0):
                pass
        except KeyboardInterrupt:
            pass
        print("stopping", flush=True)
    return 0
