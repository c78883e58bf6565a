"""The ``securebuild`` command line.

Errors are one line on stderr and a non-zero exit, never a traceback: a user who mistyped a path
should not have to read Python internals. ``--debug`` restores the traceback for developers.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys
from collections.abc import Sequence

from securebuild import __version__
from securebuild.errors import SecurebuildError

logger = logging.getLogger(__name__)

#: Modules under ``securebuild.commands`` that register subcommands, in ``--help`` order.
COMMAND_MODULES: tuple[str, ...] = (
    "ca",
    "dev",
    "validate",
    "dockerfile",
    "daemon",
    "builds",
    "vm",
    "run",
)

EXIT_USAGE = 2
EXIT_ERROR = 1


def build_parser() -> argparse.ArgumentParser:
    """Assemble the top-level parser and every registered subcommand."""
    parser = argparse.ArgumentParser(
        prog="securebuild",
        description=(
            "Run OpenShift Docker-strategy builds in per-project virtual machines on dedicated "
            "build hosts."
        ),
    )
    parser.add_argument("--version", action="version", version=f"securebuild {__version__}")
    parser.add_argument(
        "--debug", action="store_true", help="show tracebacks and debug logging on errors"
    )
    parser.add_argument(
        "-v", "--verbose", action="store_true", help="log progress to stderr (INFO level)"
    )
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMAND_MODULES:
        importlib.import_module(f"securebuild.commands.{name}").register(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI and return the process exit code."""
    parser = build_parser()
    args = parser.parse_args(argv)
    level = logging.DEBUG if args.debug else logging.INFO if args.verbose else logging.WARNING
    logging.basicConfig(level=level, format="%(levelname)s %(name)s: %(message)s")
    func = getattr(args, "func", None)
    if func is None:
        parser.print_help()
        return EXIT_USAGE
    try:
        code: int = func(args)
    except KeyboardInterrupt:
        print("securebuild: interrupted", file=sys.stderr)
        return 130
    except SecurebuildError as exc:
        if args.debug:
            raise
        print(f"securebuild: error: {exc}", file=sys.stderr)
        return EXIT_ERROR
    except Exception as exc:
        if args.debug:
            raise
        print(
            f"securebuild: internal error: {type(exc).__name__}: {exc} (rerun with --debug)",
            file=sys.stderr,
        )
        return EXIT_ERROR
    return code
