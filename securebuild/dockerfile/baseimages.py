"""The images a Dockerfile pulls, for the pre-pull step (reference 3.8).

Every ``FROM`` image after build-arg substitution, except ``scratch`` and names of earlier
stages, plus every ``COPY --from=<image>`` that is not a stage; in order, without duplicates.
Only ARGs declared before the first FROM count, with build args overriding their defaults, as in
Docker.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

from dockerfile_parse.util import WordSplitter

from securebuild.dockerfile.syntax import FromLine, Instruction, parse_instructions, split_flags

_VARIABLE = re.compile(
    r"\$(?:\{(?P<braced>[A-Za-z_][A-Za-z0-9_]*)(?::(?P<op>[-+])(?P<word>[^}]*))?\}"
    r"|(?P<plain>[A-Za-z_][A-Za-z0-9_]*))"
)


def leading_args(instructions: list[Instruction], build_args: Mapping[str, str]) -> dict[str, str]:
    """ARGs before the first FROM, defaults overridden by ``build_args``."""
    values: dict[str, str] = {}
    for ins in instructions:
        if ins.keyword == "FROM":
            break
        if ins.keyword != "ARG":
            continue
        for word in WordSplitter(ins.value).split(dequote=False):
            key, has_default, default = word.partition("=")
            if key in build_args:
                values[key] = build_args[key]
            elif has_default:
                values[key] = WordSplitter(default).dequote()
    return values


def substitute(word: str, variables: Mapping[str, str]) -> str:
    """``$A``, ``${A}``, ``${A:-x}``, ``${A:+x}`` in one word, then quotes removed."""

    def replace(match: re.Match[str]) -> str:
        name = match.group("braced") or match.group("plain")
        value = variables.get(name, "")
        op = match.group("op")
        if op == "-":
            return value or match.group("word")
        if op == "+":
            return match.group("word") if value else ""
        return value

    return _VARIABLE.sub(replace, word).replace('"', "").replace("'", "")


def base_images(dockerfile: str, build_args: Mapping[str, str] | None = None) -> list[str]:
    """Images to pull before building ``dockerfile`` (normally the rewritten one)."""
    instructions = parse_instructions(dockerfile)
    variables = leading_args(instructions, build_args or {})
    stages: set[str] = set()
    images: list[str] = []

    def add(image: str) -> None:
        if image and image not in images:
            images.append(image)

    for ins in instructions:
        if ins.keyword == "FROM":
            line = FromLine.parse(ins.value)
            image = substitute(line.image, variables)
            if image.lower() != "scratch" and image.lower() not in stages:
                add(image)
            if line.alias:
                stages.add(line.alias.lower())
        elif ins.keyword == "COPY":
            flags, _rest = split_flags(ins.value)
            for flag in flags:
                if flag.startswith("--from="):
                    source = flag.removeprefix("--from=")
                    if source.lower() not in stages and not source.isdigit():
                        add(source)
    return images
