"""Container image references: parse, validate and reduce to the daemon-minimal form.

The grammar is the one of ``distribution/reference`` (what Docker and buildah accept); the
reduction is OpenShift's ``DaemonMinimal`` (reference 1.3): ``docker.io`` and ``index.docker.io``
are dropped, then ``library/`` when no registry is left, then the ``latest`` tag. Parsing is
strict so that a value that is not an image reference never reaches a ``FROM`` line.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

_DOMAIN_COMPONENT = r"(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])"
_DOMAIN = re.compile(
    rf"(?:{_DOMAIN_COMPONENT}(?:\.{_DOMAIN_COMPONENT})*|\[[0-9A-Fa-f:]+\])(?::[0-9]+)?"
)
_PATH_COMPONENT = re.compile(r"[a-z0-9]+(?:(?:[._]|__|[-]*)[a-z0-9]+)*")
_TAG = re.compile(r"[\w][\w.-]{0,127}")
_DIGEST = re.compile(r"[A-Za-z][A-Za-z0-9]*(?:[-_+.][A-Za-z][A-Za-z0-9]*)*:[0-9a-fA-F]{32,}")
NAME_MAX_LENGTH = 255

DOCKER_HUB_REGISTRIES = ("docker.io", "index.docker.io")
DOCKER_HUB_NAMESPACE = "library"
DEFAULT_TAG = "latest"


class ImageReferenceError(ValueError):
    """Not a valid image reference; the message says which part is wrong."""


@dataclass(frozen=True)
class ImageReference:
    registry: str
    path: str
    tag: str = ""
    digest: str = ""

    def __str__(self) -> str:
        out = f"{self.registry}/{self.path}" if self.registry else self.path
        if self.tag:
            out += f":{self.tag}"
        if self.digest:
            out += f"@{self.digest}"
        return out

    def daemon_minimal(self) -> ImageReference:
        """OpenShift's ``DaemonMinimal``: drop what Docker assumes by default."""
        registry = "" if self.registry in DOCKER_HUB_REGISTRIES else self.registry
        path = self.path
        head, _, rest = path.partition("/")
        if not registry and head == DOCKER_HUB_NAMESPACE and rest and "/" not in rest:
            path = rest
        tag = "" if self.tag == DEFAULT_TAG else self.tag
        return ImageReference(registry, path, tag, self.digest)


def parse_image_reference(value: str) -> ImageReference:
    """Parse ``[registry/]path[:tag][@digest]``; raise :class:`ImageReferenceError`."""
    if not value:
        raise ImageReferenceError("must not be empty")
    if value != value.strip() or any(c.isspace() or ord(c) < 0x20 for c in value):
        raise ImageReferenceError("must not contain spaces or control characters")
    rest, _, digest = value.partition("@")
    if digest and not _DIGEST.fullmatch(digest):
        raise ImageReferenceError(f"has an invalid digest {digest!r}")
    name, tag = rest, ""
    last_slash = rest.rfind("/")
    colon = rest.rfind(":")
    if colon > last_slash:
        name, tag = rest[:colon], rest[colon + 1 :]
        if not _TAG.fullmatch(tag):
            raise ImageReferenceError(f"has an invalid tag {tag!r}")
    if len(name) > NAME_MAX_LENGTH:
        raise ImageReferenceError(f"has a name longer than {NAME_MAX_LENGTH} characters")
    registry = ""
    first, slash, remainder = name.partition("/")
    if slash and ("." in first or ":" in first or first == "localhost" or first != first.lower()):
        if not _DOMAIN.fullmatch(first):
            raise ImageReferenceError(f"has an invalid registry {first!r}")
        registry, name = first, remainder
    if not name:
        raise ImageReferenceError("has no repository name")
    for component in name.split("/"):
        if not _PATH_COMPONENT.fullmatch(component):
            raise ImageReferenceError(
                f"has an invalid repository name component {component!r} (lower case "
                "letters, digits and separators '.', '_', '__', '-')"
            )
    return ImageReference(registry, name, tag, digest)


def daemon_minimal(value: str) -> str:
    """``docker.io/library/busybox:latest`` -> ``busybox``; invalid input is returned as is."""
    try:
        return str(parse_image_reference(value).daemon_minimal())
    except ImageReferenceError:
        return value


def image_stream_tag_problem(value: str) -> str | None:
    """``ImageStreamTag`` names are ``<stream>:<tag>``."""
    stream, colon, tag = value.partition(":")
    if not colon or not stream or not tag:
        return "must be '<imagestream>:<tag>'"
    if not _PATH_COMPONENT.fullmatch(stream) or len(stream) > 253:
        return f"has an invalid image stream name {stream!r}"
    if not _TAG.fullmatch(tag):
        return f"has an invalid tag {tag!r}"
    return None


def image_stream_image_problem(value: str) -> str | None:
    """``ImageStreamImage`` names are ``<stream>@<image id>``."""
    stream, at, image = value.partition("@")
    if not at or not stream or not image:
        return "must be '<imagestream>@<image id>'"
    if not _PATH_COMPONENT.fullmatch(stream):
        return f"has an invalid image stream name {stream!r}"
    if not _DIGEST.fullmatch(image) and not re.fullmatch(r"[0-9a-f]{6,64}", image):
        return f"has an invalid image id {image!r}"
    return None
