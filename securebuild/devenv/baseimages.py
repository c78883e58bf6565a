"""Base images for tests without the internet, made from Debian packages.

``debian:bookworm``: the tar of a ``debootstrap --variant=minbase`` root file system that
``scripts/setup.d/40-baseimage-debian.sh`` caches; imported only by tests that ask for it
(:func:`seed_debian`), because it is ~100 MB.

``busybox``: a root file system holding Debian's statically linked ``/bin/busybox``
(busybox-static) and one symlink per applet, imported into a dockerd as an image and pushed to
the test registry. ``FROM busybox`` then resolves with no access to Docker Hub, and ``RUN`` steps
have a shell and the usual tools (sh, echo, wget, tar, ...).

The tar is built in memory with fixed owners and timestamps, so its layer digest is the same on
every machine with the same busybox-static version.
"""

from __future__ import annotations

import io
import logging
import subprocess
import tarfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import docker

from securebuild.devenv.process import ServiceError

logger = logging.getLogger(__name__)

BUSYBOX_BIN = Path("/bin/busybox")
#: Made by scripts/setup.d/40-baseimage-debian.sh (debootstrap --variant=minbase).
DEBIAN_ROOTFS_TAR = Path.home() / ".cache/securebuild/baseimages/debian-bookworm-minbase-v1.tar"
_MTIME = 0

_PASSWD = "root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n"  # noqa: S105 (an /etc/passwd file, no password in it)
_GROUP = "root:x:0:\nnogroup:x:65534:\n"


def _busybox_version(busybox: Path) -> str:
    out = subprocess.run(
        [str(busybox)], capture_output=True, text=True, timeout=10, check=False
    ).stdout
    first = out.splitlines()[0] if out else "BusyBox unknown"
    return first.split("(")[0].strip()


def busybox_rootfs_tar(busybox: Path = BUSYBOX_BIN) -> bytes:
    """A root file system tar: busybox, its applet links, /etc/passwd and group, /tmp."""
    if not busybox.exists():
        raise ServiceError(
            f"{busybox} is missing; install busybox-static (apt-get install busybox-static, "
            "or run scripts/setup.sh)"
        )
    applets = subprocess.run(
        [str(busybox), "--list-full"], capture_output=True, text=True, timeout=10, check=True
    ).stdout.split()
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.PAX_FORMAT) as tar:

        def add_dir(name: str, mode: int = 0o755) -> None:
            info = tarfile.TarInfo(name)
            info.type = tarfile.DIRTYPE
            info.mode = mode
            info.mtime = _MTIME
            tar.addfile(info)

        def add_file(name: str, data: bytes, mode: int = 0o644) -> None:
            info = tarfile.TarInfo(name)
            info.size = len(data)
            info.mode = mode
            info.mtime = _MTIME
            tar.addfile(info, io.BytesIO(data))

        for directory in ("bin", "sbin", "usr", "usr/bin", "usr/sbin", "etc", "root", "var"):
            add_dir(directory, 0o700 if directory == "root" else 0o755)
        add_dir("tmp", 0o1777)
        add_file("bin/busybox", busybox.read_bytes(), 0o755)
        add_file("etc/passwd", _PASSWD.encode())
        add_file("etc/group", _GROUP.encode())
        for applet in sorted(set(applets)):
            if applet in ("bin/busybox", "") or "/" not in applet:
                continue
            link = tarfile.TarInfo(applet)
            link.type = tarfile.SYMTYPE
            link.linkname = "/bin/busybox"
            link.mode = 0o777
            link.mtime = _MTIME
            tar.addfile(link)
    return buffer.getvalue()


@dataclass(frozen=True)
class BaseImages:
    """References of the seeded images: local tags in the dockerd and in the registry."""

    busybox: str  # "busybox:latest" in the dockerd
    registry_busybox: str  # "127.0.0.1:<port>/busybox:latest"
    busybox_id: str


def import_busybox(
    client: docker.APIClient, *, repository: str = "busybox", tag: str = "latest"
) -> str:
    """Import the busybox root file system into ``client``'s dockerd; return the image id."""
    data = busybox_rootfs_tar()
    result = client.import_image_from_data(
        data,
        repository=repository,
        tag=tag,
        changes=['CMD ["sh"]'],
    )
    logger.debug("docker import: %s", result)
    image_id: str = client.inspect_image(f"{repository}:{tag}")["Id"]
    logger.info("imported %s:%s (%s, %s)", repository, tag, _busybox_version(BUSYBOX_BIN), image_id)
    return image_id


def push(client: docker.APIClient, reference: str, auth_config: Mapping[str, str]) -> str:
    """Push ``reference`` with per-request credentials; return the digest the registry gave."""
    repository, _, tag = reference.rpartition(":")
    digest = ""
    for event in client.push(
        repository, tag=tag, auth_config=dict(auth_config), stream=True, decode=True
    ):
        if "error" in event:
            raise ServiceError(f"push of {reference} failed: {event['error']}")
        aux = event.get("aux") or {}
        digest = aux.get("Digest", digest)
    if not digest:
        raise ServiceError(f"push of {reference} reported no digest")
    return digest


def seed(
    client: docker.APIClient, registry_address: str, auth_config: Mapping[str, str]
) -> BaseImages:
    """Make ``busybox:latest`` in the dockerd and push it to the registry under the same name."""
    image_id = import_busybox(client)
    remote = f"{registry_address}/busybox:latest"
    client.tag("busybox:latest", f"{registry_address}/busybox", tag="latest")
    push(client, remote, auth_config)
    return BaseImages(busybox="busybox:latest", registry_busybox=remote, busybox_id=image_id)


def seed_debian(
    client: docker.APIClient,
    registry_address: str,
    auth_config: Mapping[str, str],
    *,
    rootfs_tar: Path = DEBIAN_ROOTFS_TAR,
) -> tuple[str, str]:
    """Import ``debian:bookworm`` and push it; return (local reference, registry reference)."""
    if not rootfs_tar.is_file():
        raise ServiceError(
            f"{rootfs_tar} is missing; build it with: bash scripts/setup.d/40-baseimage-debian.sh"
        )
    client.import_image_from_file(
        str(rootfs_tar), repository="debian", tag="bookworm", changes=['CMD ["bash"]']
    )
    remote = f"{registry_address}/debian:bookworm"
    client.tag("debian:bookworm", f"{registry_address}/debian", tag="bookworm")
    push(client, remote, auth_config)
    return "debian:bookworm", remote
