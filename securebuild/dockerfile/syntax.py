"""Parsing a Dockerfile into instructions and writing it back the way OpenShift does.

``dockerfile-parse`` does the parsing. The result is re-serialised as OpenShift re-serialises its
AST (reference section 3): comments and blank lines disappear, keywords are upper-cased, line
continuations are collapsed so every instruction is exactly one line, JSON-form arguments are
re-encoded, and ``ARG`` instructions before the first ``FROM`` move to the top.

Two inputs are refused because their meaning would change silently: an ``escape`` parser
directive other than the default backslash (the generated quoting assumes it), and text that is
not valid UTF-8 (checked by the caller that reads bytes).
"""

from __future__ import annotations

import io
import json
import re
from dataclasses import dataclass

from dockerfile_parse import DockerfileParser

from securebuild.dockerfile.errors import DockerfileError

_ESCAPE_DIRECTIVE = re.compile(r"^\s*#\s*escape\s*=\s*(\S*)\s*$", re.IGNORECASE)
_DIRECTIVE = re.compile(r"^\s*#\s*[A-Za-z]+\s*=")
_SURROGATE = re.compile("[\ud800-\udfff]")
#: Instructions whose arguments may be a JSON array (Docker's ``parseMaybeJSON[ToList]``).
JSON_CAPABLE = frozenset({"RUN", "CMD", "ENTRYPOINT", "SHELL", "COPY", "ADD", "VOLUME"})


@dataclass(frozen=True)
class Instruction:
    """One instruction on one line: ``keyword`` upper-case, ``value`` without line breaks."""

    keyword: str
    value: str

    def render(self) -> str:
        return f"{self.keyword} {self.value}" if self.value else self.keyword


def _split_directives(lines: list[str]) -> tuple[list[str], list[str]]:
    """Parser directives (only valid on the first lines) and the rest; refuse unusual escapes."""
    count = 0
    for line in lines:
        if not _DIRECTIVE.match(line):
            break
        match = _ESCAPE_DIRECTIVE.match(line)
        if match and match.group(1) != "\\":
            raise DockerfileError(
                f"the parser directive 'escape={match.group(1)}' is not supported; "
                "remove it and use the default escape character '\\'"
            )
        count += 1
    return lines[:count], lines[count:]


def _prepare(text: str) -> str:
    """Lines as Docker's parser sees them.

    Blank lines are dropped (inside a continuation Docker skips them, dockerfile-parse would end
    the instruction there); a bare ``#`` line after the real directives stops dockerfile-parse
    from taking a later ``# escape=`` comment for a directive once blank lines are gone; and a
    continuation at the very end of the file ends its instruction, as in Docker.
    """
    directives, body = _split_directives(text.split("\n"))
    kept = [line for line in body if line.strip()]
    # The final empty line ends a continuation left open at the end of the file.
    return "".join(line + "\n" for line in [*directives, "#", *kept, ""])


def go_json(args: list[str]) -> str:
    """``json.Marshal([]string)``: compact, HTML-safe escapes, non-ASCII kept."""
    # A lone surrogate is not UTF-8: Go's JSON decoder turns it into U+FFFD, and so do we.
    args = [_SURROGATE.sub("\ufffd", arg) for arg in args]
    encoded = json.dumps(args, ensure_ascii=False, separators=(",", ":"))
    for raw, escaped in (
        ("<", "\\u003c"),
        (">", "\\u003e"),
        ("&", "\\u0026"),
        ("\u2028", "\\u2028"),
        ("\u2029", "\\u2029"),
    ):
        encoded = encoded.replace(raw, escaped)
    return encoded


def split_flags(value: str) -> tuple[list[str], str]:
    """Leading ``--flag[=x]`` words and the rest, as Docker's ``extractBuilderFlags`` splits."""
    flags: list[str] = []
    rest = value.strip()
    while rest.startswith("--"):
        word, _, rest = rest.partition(" ")
        flags.append(word)
        rest = rest.strip()
    return flags, rest


def _normalise(keyword: str, value: str) -> str:
    value = value.strip()
    if keyword not in JSON_CAPABLE:
        return value
    flags, rest = split_flags(value)
    if not rest.startswith("["):
        return value
    try:
        decoded = json.loads(rest)
    except ValueError:
        return value
    if not isinstance(decoded, list) or not all(isinstance(a, str) for a in decoded):
        return value
    return " ".join([*flags, go_json(decoded)])


#: Shell-form instructions that exec form can carry unchanged through ``/bin/sh -c``.
_SHELL_FORM = frozenset({"RUN", "CMD", "ENTRYPOINT"})


def _one_line(keyword: str, value: str) -> Instruction | None:
    """Make sure the rendered line cannot end in a continuation backslash.

    A trailing backslash would join the next line (ours) to this instruction. Docker cannot
    express such a value on one line, so a shell-form RUN/CMD/ENTRYPOINT becomes the equivalent
    exec form via ``/bin/sh -c``; anything else loses the trailing backslashes (Docker would
    have glued the next line to it, which no valid Dockerfile relies on at its end).
    """
    keyword = keyword.rstrip("\\")
    if not keyword:
        return None
    if value.rstrip().endswith("\\"):
        flags, rest = split_flags(value)
        if keyword in _SHELL_FORM and not flags and not rest.startswith("["):
            return Instruction(keyword, go_json(["/bin/sh", "-c", value]))
        while value.rstrip().endswith("\\"):
            value = value.rstrip().rstrip("\\")
        value = value.strip()
    return Instruction(keyword, value)


def parse_instructions(text: str) -> list[Instruction]:
    """The instructions of a Dockerfile, in file order, comments dropped."""
    try:
        data = _prepare(text).encode("utf-8")
    except UnicodeEncodeError as exc:
        raise DockerfileError(f"the Dockerfile is not valid Unicode text: {exc.reason}") from exc
    parser = DockerfileParser(fileobj=io.BytesIO(data))
    out: list[Instruction] = []
    for item in parser.structure:
        keyword = str(item["instruction"]).upper()
        if keyword == "COMMENT":
            continue
        instruction = _one_line(keyword, _normalise(keyword, str(item["value"] or "")))
        if instruction is not None:
            out.append(instruction)
    return out


def hoist_leading_args(instructions: list[Instruction]) -> list[Instruction]:
    """ARGs before the first FROM first, then the other pre-FROM instructions, then the rest."""
    first_from = next(
        (i for i, ins in enumerate(instructions) if ins.keyword == "FROM"), len(instructions)
    )
    head = instructions[:first_from]
    args = [ins for ins in head if ins.keyword == "ARG"]
    others = [ins for ins in head if ins.keyword != "ARG"]
    return [*args, *others, *instructions[first_from:]]


def serialize(instructions: list[Instruction]) -> str:
    return "".join(ins.render() + "\n" for ins in instructions)


@dataclass(frozen=True)
class FromLine:
    """``FROM [--flags] image [AS alias]`` as whitespace-separated words (Docker's view)."""

    words: tuple[str, ...]
    image_index: int

    @classmethod
    def parse(cls, value: str) -> FromLine:
        words = tuple(value.split())
        index = 0
        while index < len(words) and words[index].startswith("--"):
            index += 1
        if index >= len(words):
            raise DockerfileError(f"FROM without an image: 'FROM {value}'")
        return cls(words, index)

    @property
    def image(self) -> str:
        return self.words[self.image_index]

    @property
    def alias(self) -> str | None:
        rest = self.words[self.image_index + 1 :]
        if len(rest) == 2 and rest[0].lower() == "as":
            return rest[1]
        return None

    def with_image(self, image: str) -> FromLine:
        words = list(self.words)
        words[self.image_index] = image
        return FromLine(tuple(words), self.image_index)

    def with_alias(self, alias: str) -> FromLine:
        return FromLine((*self.words[: self.image_index + 1], "as", alias), self.image_index)

    def instruction(self) -> Instruction:
        return Instruction("FROM", " ".join(self.words))
