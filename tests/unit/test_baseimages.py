"""The busybox root file system tar: complete enough for RUN steps, and reproducible."""

from __future__ import annotations

import io
import tarfile

from securebuild.devenv.baseimages import busybox_rootfs_tar


def test_busybox_rootfs_has_a_shell_and_is_reproducible() -> None:
    data = busybox_rootfs_tar()
    assert data == busybox_rootfs_tar()  # same bytes: same layer digest everywhere
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        members = {m.name: m for m in tar.getmembers()}
    assert members["bin/busybox"].isfile() and members["bin/busybox"].mode == 0o755
    for applet in ("bin/sh", "bin/cat", "bin/echo", "usr/bin/wget", "bin/tar"):
        assert members[applet].issym() and members[applet].linkname == "/bin/busybox", applet
    assert members["tmp"].mode == 0o1777
    assert {m.uid for m in members.values()} == {0}
    assert "etc/passwd" in members
