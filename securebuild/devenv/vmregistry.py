"""The local registry as a project VM sees it, for ``make demo``, the e2e tests and the bench.

A VM on user-mode networking reaches the host's 127.0.0.1 as ``10.0.2.2``, so the registry is
started with that name in its certificate and image references (``10.0.2.2:<port>/...``); the
host side still talks to it on 127.0.0.1. The VM's dockerd trusts the registry's CA through
``/etc/docker/certs.d/10.0.2.2:<port>/ca.crt``; ``busybox`` is imported into the VM's dockerd
(no internet) and pushed to the registry, so ``FROM busybox`` and ``FROM <registry>/busybox``
both resolve.
"""

from __future__ import annotations

import base64
import json
import subprocess
from pathlib import Path
from typing import Any, Protocol

import yaml

from securebuild.devenv.baseimages import import_busybox, push
from securebuild.devenv.process import ServiceError
from securebuild.devenv.registry import Registry
from securebuild.pki import ProjectPKI

GUEST_HOST_ALIAS = "10.0.2.2"  # qemu user-mode networking: the host's loopback, seen from a guest
MANIFEST_V2 = "application/vnd.docker.distribution.manifest.v2+json"


class _SSHTarget(Protocol):
    def ssh_argv(self, *command: str) -> list[str]: ...


class GuestRegistry(Registry):
    """A registry listening on 127.0.0.1 whose certificate and address name ``10.0.2.2``.

    (``Registry(hostname=...)`` would also listen on that name, which does not exist here.)
    """

    @property
    def address(self) -> str:
        return f"{GUEST_HOST_ALIAS}:{self.port}"

    def _prepare(self) -> Path:
        config = super()._prepare()
        self._pki = ProjectPKI.ensure(
            self.workdir / "state", "registry", server_hosts=[self.host, GUEST_HOST_ALIAS]
        )
        data = yaml.safe_load(config.read_text())
        data["http"]["addr"] = f"{self.host}:{self.port}"
        config.write_text(yaml.safe_dump(data))
        return config


def guest_registry() -> Registry:
    """A registry (not started) whose address is the one guests use."""
    return GuestRegistry()


def trust_in_vm(vm: _SSHTarget, registry: Registry) -> None:
    """Install the registry's CA for the VM's dockerd (read per request: no restart)."""
    directory = f"/etc/docker/certs.d/{registry.address}"
    for argv, data in (
        (vm.ssh_argv("sudo", "-n", "mkdir", "-p", directory), None),
        (vm.ssh_argv("sudo", "-n", "tee", f"{directory}/ca.crt"), registry.ca_cert.read_bytes()),
    ):
        proc = subprocess.run(argv, input=data, capture_output=True, timeout=120, check=False)
        if proc.returncode != 0:
            raise ServiceError(f"cannot install the registry CA in the VM: {proc.stderr!r}")


def seed_busybox(client: Any, registry: Registry) -> str:
    """``busybox:latest`` in the VM's dockerd and ``<registry>/busybox:latest``; returns digest."""
    import_busybox(client)
    client.tag("busybox:latest", f"{registry.address}/busybox", tag="latest")
    return push(client, f"{registry.address}/busybox:latest", registry.auth_config)


def dockerconfig_dir(registry: Registry, directory: Path) -> Path:
    """A secret directory holding ``.dockerconfigjson`` for the registry (``--secret NAME=DIR``)."""
    directory.mkdir(mode=0o700, parents=True, exist_ok=True)
    auth = base64.b64encode(f"{registry.username}:{registry.password}".encode()).decode()
    path = directory / ".dockerconfigjson"
    path.write_text(json.dumps({"auths": {registry.address: {"auth": auth}}}))
    path.chmod(0o600)
    return directory


def image_config(registry: Registry, repository: str, reference: str) -> dict[str, Any]:
    """The image config (``config.Labels``, ``config.Env`` ...) read back from the registry."""
    session = registry.session()
    base = f"https://127.0.0.1:{registry.port}/v2/{repository}"
    manifest = session.get(
        f"{base}/manifests/{reference}", headers={"Accept": MANIFEST_V2}, timeout=30
    )
    manifest.raise_for_status()
    digest = manifest.json()["config"]["digest"]
    blob = session.get(f"{base}/blobs/{digest}", timeout=30)
    blob.raise_for_status()
    config: dict[str, Any] = blob.json()
    return config
