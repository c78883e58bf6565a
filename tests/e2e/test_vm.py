"""A project VM as the pipeline will use it: pinned SSH, dockerd on mutual TLS, lifecycle.

Runs against the session's shared VM (tests/fixtures/vm.py), which the project's own playbooks
made on inventories/local. REQUESTS_CA_BUNDLE and friends stay set in the environment: the
clients here must not depend on them.
"""

from __future__ import annotations

import io
import json
import secrets
import socket
import ssl
import subprocess
import tarfile
from pathlib import Path

import pytest

from securebuild.devenv.project_vm import ProjectVM, VMEndpoints
from securebuild.fleet.docker_tls import docker_api_client
from securebuild.pki import ProjectPKI


def tls_ping(vm: VMEndpoints, client: ProjectPKI | None) -> bytes:
    """GET /_ping over TLS that verifies the server with the project's CA; return the reply."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.load_verify_locations(cafile=str(vm.pki.ca_cert))
    if client is not None:
        ctx.load_cert_chain(str(client.client_cert), str(client.client_key))
    with (
        socket.create_connection((vm.docker_host, vm.docker_port), timeout=30) as raw,
        ctx.wrap_socket(raw, server_hostname=vm.docker_host) as conn,
    ):
        conn.sendall(b"GET /_ping HTTP/1.1\r\nHost: docker\r\nConnection: close\r\n\r\n")
        return conn.recv(4096)


def test_ssh_works_with_the_pinned_host_key(project_vm: VMEndpoints) -> None:
    out = subprocess.run(
        project_vm.ssh_argv("cat", "/etc/hostname"),
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    assert out.stdout.strip() == project_vm.domain
    pinned = project_vm.known_hosts.read_text().split()
    served = subprocess.run(
        project_vm.ssh_argv("cat", "/etc/ssh/ssh_host_ed25519_key.pub"),
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    ).stdout.split()
    assert pinned[1:3] == served[0:2]


def test_ssh_refuses_a_host_key_that_is_not_pinned(project_vm: VMEndpoints, tmp_path: Path) -> None:
    wrong = tmp_path / "known_hosts"
    subprocess.run(
        ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(tmp_path / "k")], check=True
    )
    pub = (tmp_path / "k.pub").read_text().split()
    wrong.write_text(f"[{project_vm.ssh_host}]:{project_vm.ssh_port} {pub[0]} {pub[1]}\n")
    argv = [a.replace(str(project_vm.known_hosts), str(wrong)) for a in project_vm.ssh_argv("true")]
    proc = subprocess.run(argv, capture_output=True, text=True, timeout=60, check=False)
    assert proc.returncode == 255
    assert "HOST IDENTIFICATION HAS CHANGED" in proc.stderr


def test_dockerd_answers_over_mtls_and_builds_with_a_run_step(project_vm: VMEndpoints) -> None:
    assert tls_ping(project_vm, project_vm.pki).endswith(b"OK")
    client = docker_api_client(
        project_vm.docker_url,
        ca=project_vm.pki.ca_cert,
        cert=project_vm.pki.client_cert,
        key=project_vm.pki.client_key,
        timeout=300,
    )
    assert client.ping()
    # A base image without a registry: busybox-static from the golden image, imported over TLS.
    busybox = subprocess.run(
        project_vm.ssh_argv("cat", "/bin/busybox"), capture_output=True, timeout=120, check=True
    ).stdout
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        info = tarfile.TarInfo("bin/busybox")
        info.size, info.mode = len(busybox), 0o755
        tar.addfile(info, io.BytesIO(busybox))
        link = tarfile.TarInfo("bin/sh")
        link.type, link.linkname = tarfile.SYMTYPE, "busybox"
        tar.addfile(link)
    client.import_image_from_data(buf.getvalue(), repository="sb-e2e-busybox", tag="latest")
    marker = secrets.token_hex(8)
    dockerfile = f"FROM sb-e2e-busybox:latest\nRUN echo built-{marker} > /marker && cat /marker\n"
    logs = client.build(
        fileobj=io.BytesIO(dockerfile.encode()), tag="sb-e2e-run:latest", rm=True, decode=True
    )
    output = "".join(str(chunk.get("stream", "")) + str(chunk.get("error", "")) for chunk in logs)
    assert f"built-{marker}" in output, output
    assert "sb-e2e-run:latest" in client.inspect_image("sb-e2e-run:latest")["RepoTags"]


def test_a_client_certificate_from_another_projects_ca_is_refused(
    project_vm: VMEndpoints, foreign_pki: ProjectPKI
) -> None:
    with pytest.raises((ssl.SSLError, ConnectionResetError, BrokenPipeError)):
        reply = tls_ping(project_vm, foreign_pki)
        # TLS 1.3 reports the refusal at the first read; an empty reply is a closed connection.
        if not reply:
            raise ConnectionResetError("closed without a reply")
        pytest.fail(f"dockerd answered a foreign client certificate: {reply[:80]!r}")


def test_no_client_certificate_and_plain_tcp_are_refused(project_vm: VMEndpoints) -> None:
    with pytest.raises((ssl.SSLError, ConnectionResetError, BrokenPipeError)):
        if not tls_ping(project_vm, None):
            raise ConnectionResetError("closed without a reply")
    with socket.create_connection((project_vm.docker_host, project_vm.docker_port), 30) as s:
        s.sendall(b"GET /_ping HTTP/1.0\r\n\r\n")
        reply = s.recv(4096)
    assert b"200 OK" not in reply
    assert not reply.endswith(b"OK") or b"HTTPS" in reply


def test_key_modes_in_the_vm(project_vm: VMEndpoints) -> None:
    out = subprocess.run(
        project_vm.ssh_argv(
            "sudo",
            "stat",
            "-c",
            "%n %a %U:%G",
            "/etc/docker/tls/ca.pem",
            "/etc/docker/tls/server-cert.pem",
            "/etc/docker/tls/server-key.pem",
            "/etc/docker/daemon.json",
        ),
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    ).stdout.split("\n")
    assert out[:4] == [
        "/etc/docker/tls/ca.pem 444 root:root",
        "/etc/docker/tls/server-cert.pem 444 root:root",
        "/etc/docker/tls/server-key.pem 400 root:root",
        "/etc/docker/daemon.json 644 root:root",
    ]


def test_vm_ensure_a_second_time_changes_nothing(
    project_vm_launcher: ProjectVM, project_vm: VMEndpoints
) -> None:
    result = project_vm_launcher.ensure()
    assert result.changed == 0, result.output[-2000:]
    assert project_vm_launcher.endpoints == project_vm


def test_destroy_removes_domain_and_disks(project_vm_launcher: ProjectVM) -> None:
    # A second project made but not booted (state stopped): destroying it needs no cold start.
    other = ProjectVM(f"e2e-gone-{secrets.token_hex(3)}", state_dir=project_vm_launcher.state_dir)
    other.ensure_pki()
    other.run_playbook("playbooks/vm-ensure.yml", securebuild_vm_state="stopped")
    record = json.loads((other.state_dir / "vms" / other.project / "vm.json").read_text())
    pool = Path.home() / ".cache" / "securebuild" / "pool" / record["domain"]
    assert (pool / "root.qcow2").exists()
    assert (pool / "docker.qcow2").exists()
    assert _domstate(record["domain"]) == "shut off"
    other.destroy()
    assert _domstate(record["domain"]) is None
    assert not pool.exists()
    assert not (other.state_dir / "vms" / other.project).exists()


def _domstate(domain: str) -> str | None:
    proc = subprocess.run(
        ["virsh", "-c", "qemu:///system", "domstate", domain],
        capture_output=True,
        text=True,
        check=False,
    )
    return proc.stdout.strip() if proc.returncode == 0 else None
