"""``securebuild dockerfile rewrite``: OpenShift's Dockerfile rewriting for one Build.

``securebuild dockerfile rewrite --build BUILD.yaml [--source-info INFO.json] [DOCKERFILE]``
prints the rewritten Dockerfile on stdout (UTF-8). INFO.json is what the clone found
(``location, ref, commit_id, date, author_name, author_email, message``, any missing; ``{}`` for
binary builds). With ``spec.source.dockerfile`` set, that is the input and DOCKERFILE may be
omitted (if given, it is ignored, as OpenShift overwrites the repository's Dockerfile).
The Build is validated first: a Build securebuild would refuse is not rewritten.
"""

from __future__ import annotations

import argparse
import sys

from securebuild.commands._files import (
    read_input,
    read_json_object,
    read_object_document,
    write_stdout,
)
from securebuild.commands.validate import report
from securebuild.dockerfile import SourceInfo, rewrite
from securebuild.errors import SecurebuildError
from securebuild.model.parse import object_from_dict
from securebuild.model.problems import ModelError
from securebuild.model.types import KIND_BUILD, Build
from securebuild.model.validation import validate


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "dockerfile",
        help="Dockerfile tools (rewrite as OpenShift does)",
        description="Dockerfile tools.",
    )
    actions = parser.add_subparsers(dest="dockerfile_action", metavar="ACTION", required=True)
    rewrite_parser = actions.add_parser(
        "rewrite",
        help="print a Dockerfile rewritten for a Build, as OpenShift's Docker builder does",
        description=(
            "Print DOCKERFILE rewritten for the Build: FROM override, build-info ENV and LABEL, "
            "post-commit stage, strategy env after every FROM, image-source replacements."
        ),
    )
    rewrite_parser.add_argument(
        "--build", required=True, metavar="BUILD.yaml", help="the Build (YAML or JSON)"
    )
    rewrite_parser.add_argument(
        "--source-info",
        metavar="INFO.json",
        help="what the clone found: location, ref, commit_id, date, author_name, author_email, "
        "message (any may be missing; omit or {} for binary builds)",
    )
    rewrite_parser.add_argument(
        "dockerfile",
        metavar="DOCKERFILE",
        nargs="?",
        help="the Dockerfile ('-' reads stdin); optional when the Build has spec.source.dockerfile",
    )
    rewrite_parser.set_defaults(func=run_rewrite)


def run_rewrite(args: argparse.Namespace) -> int:
    document = read_object_document(args.build, kinds=(KIND_BUILD,))
    try:
        build = object_from_dict(document)
    except ModelError as exc:
        return report(exc.problems)
    assert isinstance(build, Build)
    problems = validate(build)
    if problems:
        return report(problems)
    info = SourceInfo()
    if args.source_info:
        try:
            info = SourceInfo.from_dict(read_json_object(args.source_info, what="source info"))
        except SecurebuildError as exc:
            raise SecurebuildError(f"{args.source_info}: {exc}") from exc
    if build.spec.source.dockerfile is not None:
        if args.dockerfile:
            print(
                f"note: {args.dockerfile} ignored: the Build has spec.source.dockerfile",
                file=sys.stderr,
            )
        text = ""
    elif args.dockerfile:
        text = read_input(args.dockerfile, what="Dockerfile")
    else:
        raise SecurebuildError(
            "no Dockerfile: give DOCKERFILE or set spec.source.dockerfile in the Build"
        )
    result = rewrite(text, build, info)
    for line in result.log:
        print(line, file=sys.stderr)
    write_stdout(result.dockerfile)
    return 0
