"""``securebuild ca init|show|rotate PROJECT``: the per-project PKI from the command line.

``init`` is idempotent (it is :meth:`ProjectPKI.ensure`: creates what is missing, renews what is
due, adds ``--host`` names to the server certificate). ``show`` only reads. ``rotate`` reissues
the leaves, and the CA too with ``--ca``.
"""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path
from typing import Any

from securebuild.pki import ProjectPKI

#: Where securebuild keeps its state unless told otherwise.
DEFAULT_STATE_DIR = Path("/var/lib/securebuild")
STATE_DIR_ENV = "SECUREBUILD_STATE_DIR"


def default_state_dir() -> Path:
    """``$SECUREBUILD_STATE_DIR`` if set and non-empty, else ``/var/lib/securebuild``."""
    return Path(os.environ.get(STATE_DIR_ENV) or DEFAULT_STATE_DIR)


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "ca",
        help="per-project certificate authority (dockerd TLS)",
        description="Create, inspect and rotate a project's CA, dockerd server certificate and "
        "the control side's client certificate.",
    )
    actions = parser.add_subparsers(dest="ca_action", metavar="ACTION", required=True)

    def common(sub: argparse.ArgumentParser) -> None:
        sub.add_argument("project", metavar="PROJECT", help="OpenShift project (namespace)")
        sub.add_argument(
            "--state-dir",
            type=Path,
            default=None,
            help=f"state directory (default: ${STATE_DIR_ENV} or {DEFAULT_STATE_DIR})",
        )

    init = actions.add_parser("init", help="create the PKI, or renew what is due (idempotent)")
    common(init)
    init.add_argument(
        "--host",
        action="append",
        default=[],
        metavar="H",
        help="DNS name or IP of the project's dockerd (repeatable; localhost and 127.0.0.1 "
        "are always included; without --host the existing names are kept)",
    )
    init.set_defaults(func=_init)

    show = actions.add_parser("show", help="print subjects, validity and fingerprints")
    common(show)
    show.add_argument("--json", action="store_true", help="machine-readable output")
    show.set_defaults(func=_show)

    rotate = actions.add_parser("rotate", help="reissue server and client certificates")
    common(rotate)
    rotate.add_argument("--ca", action="store_true", help="replace the CA as well")
    rotate.set_defaults(func=_rotate)


def _state_dir(args: argparse.Namespace) -> Path:
    return args.state_dir if args.state_dir is not None else default_state_dir()


def _print(description: dict[str, object]) -> None:
    print(f"project:   {description['project']}")
    print(f"directory: {description['directory']}")
    for role in ("ca", "server", "client"):
        entry = description[role]
        assert isinstance(entry, dict)
        print(f"{role}:")
        print(f"  subject:  {entry['subject']}")
        if role != "ca":
            print(f"  issuer:   {entry['issuer']}")
        print(f"  valid:    {entry['not_before']} .. {entry['not_after']}")
        print(f"  left:     {entry['days_left']} days")
        print(f"  sha256:   {entry['sha256']}")
        if "hosts" in entry:
            print(f"  hosts:    {', '.join(entry['hosts'])}")
        print(f"  cert:     {entry['cert']}")
        print(f"  key:      {entry['key']}")


def _init(args: argparse.Namespace) -> int:
    pki = ProjectPKI.ensure(_state_dir(args), args.project, server_hosts=args.host)
    _print(pki.describe())
    return 0


def _show(args: argparse.Namespace) -> int:
    description = ProjectPKI.load(_state_dir(args), args.project).describe()
    if args.json:
        print(json.dumps(description, indent=2))
    else:
        _print(description)
    return 0


def _rotate(args: argparse.Namespace) -> int:
    pki = ProjectPKI.load(_state_dir(args), args.project)
    pki.rotate(ca=args.ca)
    _print(pki.describe())
    if args.ca:
        print("note: the CA changed; re-run vm-ensure for this project so its VMs trust it")
    return 0
