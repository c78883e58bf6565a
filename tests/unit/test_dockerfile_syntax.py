"""Quoting, JSON re-encoding and image references: the building blocks of the rewrite."""

from __future__ import annotations

import pytest

from securebuild.dockerfile.quote import docker_unquote, go_quote
from securebuild.dockerfile.syntax import go_json, parse_instructions
from securebuild.model.imageref import ImageReferenceError, daemon_minimal, parse_image_reference


@pytest.mark.parametrize(
    ("value", "quoted"),
    [
        ("plain", '"plain"'),
        ("with space", '"with space"'),
        ('q"uote', '"q\\"uote"'),
        ("back\\slash", '"back\\\\slash"'),
        ("nl\ncr\rtab\t", '"nl\\ncr\\rtab\\t"'),
        ("\a\b\f\v", '"\\a\\b\\f\\v"'),
        ("\x00\x1f\x7f", '"\\x00\\x1f\\x7f"'),
        ("\x85\u00a0\u2028", '"\\u0085\\u00a0\\u2028"'),
        ("é中😀", '"é中😀"'),
        ("\U000e0001", '"\\U000e0001"'),
        ("$HOME {{ x }}", '"$HOME {{ x }}"'),
        ("\ud800", '"\ufffd"'),
    ],
)
def test_go_quote_matches_strconv_quote(value: str, quoted: str) -> None:
    assert go_quote(value) == quoted


@pytest.mark.parametrize("value", ['a"b', "a\\b", "\\", '\\"', "é 中"])
def test_docker_reads_quoted_values_back(value: str) -> None:
    assert docker_unquote(go_quote(value)) == value


def test_go_json() -> None:
    assert go_json(["a", "<&>", "é", "\n", "\u2028"]) == (
        '["a","\\u003c\\u0026\\u003e","é","\\n","\\u2028"]'
    )


def test_instructions_keep_unparseable_json_as_text() -> None:
    parsed = parse_instructions('FROM a\nCMD ["unterminated\nRUN [1, 2]\n')
    assert [i.render() for i in parsed] == ["FROM a", 'CMD ["unterminated', "RUN [1, 2]"]


@pytest.mark.parametrize(
    ("ref", "minimal"),
    [
        ("busybox", "busybox"),
        ("busybox:latest", "busybox"),
        ("docker.io/library/busybox:latest", "busybox"),
        ("index.docker.io/library/busybox:1.36", "busybox:1.36"),
        ("docker.io/myorg/app:latest", "myorg/app"),
        ("docker.io/library/a/b:latest", "library/a/b"),
        ("library/busybox", "busybox"),
        ("quay.io/library/busybox:latest", "quay.io/library/busybox"),
        ("localhost:5000/x:latest", "localhost:5000/x"),
        ("r.example/ns/img@sha256:" + "0" * 64, "r.example/ns/img@sha256:" + "0" * 64),
        ("busybox:latest@sha256:" + "0" * 64, "busybox@sha256:" + "0" * 64),
    ],
)
def test_daemon_minimal(ref: str, minimal: str) -> None:
    assert daemon_minimal(ref) == minimal


@pytest.mark.parametrize(
    "ref",
    ["", " a", "a b", "a/B:c", "a:", "a@sha256:123", "-a", "a//b", "a\nb", "a:" + "t" * 129],
)
def test_invalid_image_references(ref: str) -> None:
    with pytest.raises(ImageReferenceError):
        parse_image_reference(ref)


def test_lone_surrogates_in_json_become_replacement_characters() -> None:
    """``CMD ["\\ud800"]`` decodes to a lone surrogate, which is not UTF-8; Go writes U+FFFD."""
    parsed = parse_instructions('FROM a\nCMD ["\\ud800"]\n')
    assert parsed[1].render() == 'CMD ["\ufffd"]'
    parsed[1].render().encode("utf-8")
