"""OpenShift's Dockerfile rewriting (reference 3.1), as one pure function.

Steps, in OpenShift's order: inline Dockerfile; replace the image of the last FROM with
``dockerStrategy.from`` (alias kept, daemon-minimal name); append the build-info ENV and LABEL;
add the post-commit stage; insert the strategy env as one ENV after every FROM; replace
``source.images[].as`` names. Every generated value is Go-quoted (ENV, LABEL) or JSON-encoded
(a post-commit command that shell form cannot carry), so no tenant value can end its instruction
or add one.
"""

from __future__ import annotations

import logging
import re
import uuid
from dataclasses import dataclass, field

from securebuild.dockerfile.baseimages import leading_args, substitute
from securebuild.dockerfile.buildinfo import build_info_env, build_labels
from securebuild.dockerfile.errors import DockerfileError
from securebuild.dockerfile.quote import render_pairs
from securebuild.dockerfile.sourceinfo import SourceInfo
from securebuild.dockerfile.syntax import (
    FromLine,
    Instruction,
    go_json,
    hoist_leading_args,
    parse_instructions,
    serialize,
    split_flags,
)
from securebuild.model.imageref import daemon_minimal
from securebuild.model.types import Build, BuildPostCommitSpec

logger = logging.getLogger(__name__)

HOOK_ALIAS_PREFIX = "appimage"
#: Characters that cannot stay in a shell-form RUN line as they are.
_UNSAFE_FOR_SHELL_FORM = re.compile("[\x00-\x1f\x7f\x85\u2028\u2029\ud800-\udfff]")


@dataclass(frozen=True)
class RewriteResult:
    dockerfile: str
    #: Lines OpenShift's ``manage-dockerfile`` prints (``Replaced Dockerfile FROM image ...``).
    log: tuple[str, ...] = field(default=())


def new_hook_alias() -> str:
    """``appimage`` + 32 hex digits, as OpenShift names the post-commit base stage."""
    return HOOK_ALIAS_PREFIX + uuid.uuid4().hex


def post_commit_command(post: BuildPostCommitSpec) -> str:
    """The command line of reference 3.5 (script, command + args, or args alone)."""
    if post.script:
        return "/bin/sh -ic '" + " ".join([post.script, *post.args]) + "'"
    return " ".join([*post.command, *post.args])


def run_instruction(command: str) -> Instruction:
    """``RUN <command>`` in shell form when it survives as one line, else exec form via sh -c.

    Both run ``/bin/sh -c <command>``; exec form JSON-encodes the command, so newlines or a
    trailing backslash in a hook script cannot add instructions to the Dockerfile.
    """
    stripped = command.strip()
    if (
        stripped
        and stripped == command
        and not _UNSAFE_FOR_SHELL_FORM.search(command)
        and not command.endswith("\\")
        and not command.startswith("[")
    ):
        return Instruction("RUN", command)
    return Instruction("RUN", go_json(["/bin/sh", "-c", command]))


def _strategy_env(build: Build) -> list[tuple[str, str]]:
    pairs = []
    for var in build.spec.strategy.docker.env:
        if var.value_from is not None and not var.value:
            raise DockerfileError(
                f"strategy env {var.name!r} uses valueFrom, which must be resolved to a value "
                "before the Dockerfile is rewritten"
            )
        pairs.append((var.name or "", var.value or ""))
    return pairs


def _image_source_map(build: Build) -> dict[str, str]:
    mapping: dict[str, str] = {}
    for image in build.spec.source.images:
        if image.from_.kind == "DockerImage" and image.from_.name:
            for name in image.as_:
                mapping[name] = image.from_.name
    return mapping


def rewrite(
    text: str, build: Build, source_info: SourceInfo, *, hook_alias: str | None = None
) -> RewriteResult:
    """Rewrite ``text`` for ``build``; ``spec.source.dockerfile``, when set, replaces ``text``."""
    if build.spec.source.dockerfile is not None:
        text = build.spec.source.dockerfile
    docker = build.spec.strategy.docker
    log: list[str] = []
    instructions = hoist_leading_args(parse_instructions(text))
    from_indexes = [i for i, ins in enumerate(instructions) if ins.keyword == "FROM"]

    # 2. FROM override of the last FROM only.
    replacement = docker.from_
    if replacement and replacement.kind == "DockerImage" and replacement.name and from_indexes:
        last = FromLine.parse(instructions[from_indexes[-1]].value)
        log.append(f"Replaced Dockerfile FROM image {last.image}")
        new_from = last.with_image(daemon_minimal(replacement.name))
        instructions[from_indexes[-1]] = new_from.instruction()

    # 3. and 4. build information.
    instructions.append(Instruction("ENV", render_pairs(build_info_env(build, source_info))))
    labels = build_labels(build, source_info)
    if labels:
        instructions.append(Instruction("LABEL", render_pairs(labels)))

    # 5. post-commit stage: FROM <alias> / RUN <cmd> / FROM <alias>.
    post = build.spec.post_commit
    if post.is_set and from_indexes:
        last = FromLine.parse(instructions[from_indexes[-1]].value)
        alias = last.alias
        if alias is None:
            alias = hook_alias or new_hook_alias()
            instructions[from_indexes[-1]] = last.with_alias(alias).instruction()
        instructions.append(Instruction("FROM", alias))
        instructions.append(run_instruction(post_commit_command(post)))
        instructions.append(Instruction("FROM", alias))

    # 6. strategy env after every FROM.
    env = _strategy_env(build)
    if env:
        env_instruction = Instruction("ENV", render_pairs(env))
        with_env: list[Instruction] = []
        for ins in instructions:
            with_env.append(ins)
            if ins.keyword == "FROM":
                with_env.append(env_instruction)
        instructions = with_env

    # 7. image-source "as" replacement.
    mapping = _image_source_map(build)
    if mapping:
        instructions = _replace_image_sources(instructions, mapping, build_args(build))

    result = serialize(instructions)
    for line in log:
        logger.info("%s", line)
    return RewriteResult(result, tuple(log))


def rewrite_dockerfile(
    text: str, build: Build, source_info: SourceInfo, *, hook_alias: str | None = None
) -> str:
    """The rewritten Dockerfile text (see :func:`rewrite` for the log lines as well)."""
    return rewrite(text, build, source_info, hook_alias=hook_alias).dockerfile


def build_args(build: Build) -> dict[str, str]:
    """``dockerStrategy.buildArgs`` as a mapping (``valueFrom`` is ignored, as by OpenShift)."""
    return {arg.name: arg.value or "" for arg in build.spec.strategy.docker.build_args if arg.name}


def _replace_image_sources(
    instructions: list[Instruction], mapping: dict[str, str], args: dict[str, str]
) -> list[Instruction]:
    top_args = leading_args(instructions, args)
    stage_names = {
        alias.lower()
        for ins in instructions
        if ins.keyword == "FROM" and (alias := FromLine.parse(ins.value).alias)
    }
    out: list[Instruction] = []
    for ins in instructions:
        if ins.keyword == "FROM":
            line = FromLine.parse(ins.value)
            image = substitute(line.image, top_args)
            if image in mapping:
                ins = line.with_image(mapping[image]).instruction()
        elif ins.keyword == "COPY":
            flags, rest = split_flags(ins.value)
            changed = False
            for i, flag in enumerate(flags):
                if flag.startswith("--from="):
                    source = flag.removeprefix("--from=")
                    if source.lower() not in stage_names and source in mapping:
                        flags[i] = "--from=" + mapping[source]
                        changed = True
            if changed:
                ins = Instruction("COPY", " ".join([*flags, rest]))
        out.append(ins)
    return out
