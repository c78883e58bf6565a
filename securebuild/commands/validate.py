"""``securebuild validate FILE``: is this Build or BuildConfig acceptable to securebuild?

Exit 0 when valid; otherwise exit 1 with one ``<field>: <problem>`` line per problem on stderr.
A file that cannot be read, is not YAML or holds another kind is one ``securebuild: error:``
line (exit 1), never a traceback.
"""

from __future__ import annotations

import argparse
import sys

from securebuild.commands._files import OBJECT_KINDS, read_object_document
from securebuild.model.parse import object_from_dict
from securebuild.model.problems import ModelError, Problem
from securebuild.model.validation import validate

EXIT_INVALID = 1


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "validate",
        help="check a Build or BuildConfig (YAML or JSON) against securebuild's rules",
        description=(
            "Check a Build or BuildConfig against OpenShift's validation rules and the rules of "
            "a multi-tenant builder. Prints one line per problem on stderr, naming the field."
        ),
    )
    parser.add_argument("file", metavar="FILE", help="YAML or JSON file ('-' reads stdin)")
    parser.set_defaults(func=run)


def report(problems: list[Problem] | tuple[Problem, ...]) -> int:
    for problem in problems:
        print(str(problem), file=sys.stderr)
    return EXIT_INVALID


def run(args: argparse.Namespace) -> int:
    document = read_object_document(args.file, kinds=OBJECT_KINDS)
    try:
        obj = object_from_dict(document)
    except ModelError as exc:
        return report(exc.problems)
    problems = validate(obj)
    if problems:
        return report(problems)
    where = f"{obj.namespace}/{obj.name}" if obj.namespace else obj.name
    print(f"{args.file}: valid {obj.kind} {where}")
    return 0
