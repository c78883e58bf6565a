"""Subcommands of the ``securebuild`` CLI, one module per command group.

Each module exposes ``register(subparsers)``, which adds its parser and sets ``func`` (called with
the parsed ``argparse.Namespace``, returning the exit code). ``securebuild.cli`` lists the modules
in ``COMMAND_MODULES``; adding a command is one module and one line there.
"""
