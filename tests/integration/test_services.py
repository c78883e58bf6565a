"""The local services do real work: registry push/pull with auth, builds over mTLS, refusals.

Everything runs against the real programs started by tests/fixtures/services.py.
"""

from __future__ import annotations

import io
import json
import socket
import ssl
import subprocess
import sys
import tarfile
import uuid
from pathlib import Path

import docker
import docker.errors
import pytest
import requests

from securebuild.devenv.baseimages import BaseImages, import_busybox, push
from securebuild.devenv.dockerd import Dockerd
from securebuild.devenv.libvirtd import Libvirtd, virsh
from securebuild.devenv.process import ServiceError
from securebuild.devenv.registry import Registry
from securebuild.fleet.docker_tls import DockerTLSError, IsolatedAPIClient, docker_api_client

DOCKER_CLI = "/usr/bin/docker"  # Debian's docker.io client, same version as the daemon


def context_tar(files: dict[str, str]) -> io.BytesIO:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        for name, text in files.items():
            data = text.encode()
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    buffer.seek(0)
    return buffer


def run_and_logs(client: IsolatedAPIClient, image: str, command: list[str] | None = None) -> str:
    container = client.create_container(
        image, command=command, host_config=client.create_host_config(network_mode="none")
    )
    try:
        client.start(container)
        assert client.wait(container, timeout=60)["StatusCode"] == 0
        logs: bytes = client.logs(container)
        return logs.decode()
    finally:
        client.remove_container(container, force=True)


# -- registry -----------------------------------------------------------------------------------


def test_registry_tls_is_verified_against_its_ca(registry: Registry) -> None:
    assert registry.session().get(f"{registry.url}/v2/", timeout=10).status_code == 200
    system_trust = requests.Session()
    system_trust.trust_env = False  # verify=True: the public CA bundle, which lacks the test CA
    with pytest.raises(requests.exceptions.SSLError):
        system_trust.get(f"{registry.url}/v2/", timeout=10)


def test_registry_refuses_missing_and_wrong_credentials(registry: Registry) -> None:
    anonymous = registry.session(authenticated=False).get(f"{registry.url}/v2/_catalog", timeout=10)
    assert anonymous.status_code == 401
    assert "basic" in anonymous.headers.get("WWW-Authenticate", "").lower()
    wrong = registry.session(authenticated=False)
    wrong.auth = (registry.username, "not-the-password")
    assert wrong.get(f"{registry.url}/v2/_catalog", timeout=10).status_code == 401


def test_push_and_pull_with_auth(
    docker_client: IsolatedAPIClient, dockerd: Dockerd, base_images: BaseImages, registry: Registry
) -> None:
    # the seeded base image is in the registry
    catalog = registry.session().get(f"{registry.url}/v2/_catalog", timeout=10).json()
    assert "busybox" in catalog["repositories"]

    # build, push, delete locally, pull back, run
    marker = uuid.uuid4().hex
    repository = f"{registry.address}/tests/pushpull"
    tag = marker[:12]
    image_id = None
    for event in docker_client.build(
        fileobj=context_tar({"Dockerfile": f"FROM busybox\nLABEL marker={marker}\n"}),
        custom_context=True,
        tag=f"{repository}:{tag}",
        rm=True,
        decode=True,
    ):
        assert "error" not in event, event
        image_id = (event.get("aux") or {}).get("ID", image_id)
    assert image_id
    digest = push(docker_client, f"{repository}:{tag}", registry.auth_config)
    assert digest.startswith("sha256:")
    manifest = registry.session().get(
        f"{registry.url}/v2/tests/pushpull/manifests/{tag}",
        headers={"Accept": "application/vnd.docker.distribution.manifest.v2+json"},
        timeout=10,
    )
    assert manifest.status_code == 200
    assert manifest.headers["Docker-Content-Digest"] == digest

    docker_client.remove_image(f"{repository}:{tag}", force=True)
    assert_pull_refused(docker_client, dockerd, f"{repository}:{tag}")
    docker_client.pull(repository, tag=tag, auth_config=registry.auth_config)
    assert docker_client.inspect_image(f"{repository}:{tag}")["Id"] == image_id
    labels = docker_client.inspect_image(f"{repository}:{tag}")["Config"]["Labels"]
    assert labels["marker"] == marker


def assert_pull_refused(client: IsolatedAPIClient, dockerd: Dockerd, reference: str) -> None:
    """A pull without credentials fails because the registry wants them.

    dockerd treats 127.0.0.0/8 registries as insecure: after the 401 over HTTPS it retries in
    plain HTTP, and the error returned is that retry's ("connection reset"). The 401 itself is
    in dockerd's log, which is where this checks it.
    """
    repository, _, tag = reference.rpartition(":")
    before = dockerd.log_path.stat().st_size
    with pytest.raises(docker.errors.APIError):
        client.pull(repository, tag=tag)
    with dockerd.log_path.open("rb") as log:
        log.seek(before)
        new_lines = log.read().decode(errors="replace")
    host, _, name = repository.partition("/")
    assert f"https://{host}/v2/{name}/manifests/{tag}" in new_lines
    assert "no basic auth credentials" in new_lines


def test_unauthenticated_pull_of_base_image_is_refused(
    docker_client: IsolatedAPIClient, dockerd: Dockerd, base_images: BaseImages
) -> None:
    assert_pull_refused(docker_client, dockerd, base_images.registry_busybox)
    with pytest.raises(docker.errors.ImageNotFound):
        docker_client.inspect_image("127.0.0.1:1/never-pulled:latest")


# -- dockerd over mTLS --------------------------------------------------------------------------


def test_build_over_mtls_runs_a_run_step(
    docker_client: IsolatedAPIClient, base_images: BaseImages
) -> None:
    marker = uuid.uuid4().hex
    dockerfile = (
        "FROM busybox\n"
        f"RUN echo {marker} > /proof && cat /proof && wc -c /proof\n"
        'CMD ["cat", "/proof"]\n'
    )
    output = []
    image_id = None
    for event in docker_client.build(
        fileobj=context_tar({"Dockerfile": dockerfile}),
        custom_context=True,
        tag="tests/run-step:latest",
        rm=True,
        network_mode="host",  # --bridge=none: RUN containers need the host network
        decode=True,
    ):
        assert "error" not in event, event
        output.append(event.get("stream", ""))
        image_id = (event.get("aux") or {}).get("ID", image_id)
    text = "".join(output)
    assert f"{marker}\n" in text  # the RUN step's own output, streamed back
    assert "33 /proof" in text
    assert image_id
    assert run_and_logs(docker_client, "tests/run-step:latest").strip() == marker


def test_docker_cli_build_over_mtls(
    dockerd: Dockerd, base_images: BaseImages, tmp_path: Path
) -> None:
    (tmp_path / "Dockerfile").write_text("FROM busybox\nCOPY hello.txt /\nRUN cat /hello.txt\n")
    (tmp_path / "hello.txt").write_text("hello from the CLI\n")
    env = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), "DOCKER_BUILDKIT": "0"}
    env.update(dockerd.cli_env())
    result = subprocess.run(
        [DOCKER_CLI, "build", "--network", "host", "-t", "tests/cli-build", str(tmp_path)],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert "hello from the CLI" in result.stdout
    assert "Successfully tagged tests/cli-build:latest" in result.stdout


def test_foreign_ca_client_is_refused(dockerd: Dockerd) -> None:
    with pytest.raises(docker.errors.DockerException) as refused:
        docker_api_client(
            dockerd.host,
            ca=dockerd.ca_cert,
            cert=dockerd.foreign_client_cert,
            key=dockerd.foreign_client_key,
            timeout=10,
        )
    assert "ssl" in str(refused.value).lower() or "certificate" in str(refused.value).lower()
    # the same handshake by hand: dockerd aborts it with a TLS alert
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.load_verify_locations(cafile=dockerd.ca_cert)
    context.load_cert_chain(dockerd.foreign_client_cert, dockerd.foreign_client_key)
    with (
        socket.create_connection(("127.0.0.1", dockerd.port), timeout=10) as raw,
        pytest.raises(ssl.SSLError, match=r"(?i)certificate|alert"),
        context.wrap_socket(raw, server_hostname="127.0.0.1") as tls,
    ):
        tls.sendall(b"GET /_ping HTTP/1.1\r\nHost: docker\r\n\r\n")
        tls.recv(100)


def test_client_without_certificate_is_refused(dockerd: Dockerd) -> None:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.load_verify_locations(cafile=dockerd.ca_cert)
    with (
        socket.create_connection(("127.0.0.1", dockerd.port), timeout=10) as raw,
        pytest.raises(ssl.SSLError, match=r"(?i)certificate|alert"),
        context.wrap_socket(raw, server_hostname="127.0.0.1") as tls,
    ):
        tls.sendall(b"GET /_ping HTTP/1.1\r\nHost: docker\r\n\r\n")
        tls.recv(100)


def test_plain_tcp_is_refused(dockerd: Dockerd) -> None:
    with socket.create_connection(("127.0.0.1", dockerd.port), timeout=10) as raw:
        raw.sendall(b"GET /_ping HTTP/1.0\r\n\r\n")
        answer = raw.recv(200)
    assert b"200 OK" not in answer
    assert answer.startswith(b"HTTP/1.0 400") or answer == b""
    plain = docker.APIClient(base_url=f"tcp://127.0.0.1:{dockerd.port}", version="1.41")
    with pytest.raises((docker.errors.APIError, requests.exceptions.RequestException)):
        plain.ping()
    with pytest.raises(DockerTLSError):
        docker_api_client(
            f"http://127.0.0.1:{dockerd.port}",
            ca=dockerd.ca_cert,
            cert=dockerd.client_cert,
            key=dockerd.client_key,
        )


def test_dockerd_is_private_and_has_no_bridge(
    dockerd: Dockerd, docker_client: IsolatedAPIClient, registry: Registry
) -> None:
    info = docker_client.info()
    assert info["DockerRootDir"] == str(dockerd.workdir / "data")
    assert info["Driver"] == dockerd.storage_driver
    assert {n["Name"] for n in docker_client.networks()} == {"host", "none"}
    # the registry CA is trusted by this dockerd only: it sees a private /etc/docker
    pid = int((dockerd.workdir / "dockerd.pid").read_text())
    private = Path(f"/proc/{pid}/root/etc/docker/certs.d/{registry.address}/ca.crt")
    assert private.read_bytes() == registry.ca_cert.read_bytes()
    assert not Path(f"/etc/docker/certs.d/{registry.address}").exists()
    # listening on loopback only
    listening = subprocess.run(
        ["ss", "-Htlnp"], capture_output=True, text=True, timeout=10, check=True
    ).stdout
    ours = [line for line in listening.splitlines() if f"pid={pid}," in line]
    assert ours, listening
    assert all(f"127.0.0.1:{dockerd.port}" in line for line in ours)


# -- libvirt ------------------------------------------------------------------------------------


def test_virsh_lists_domains(libvirtd: Libvirtd) -> None:
    result = virsh("list", "--all")
    assert result.returncode == 0, result.stderr
    assert result.stdout.split()[:3] == ["Id", "Name", "State"]
    active = virsh("net-list", "--name")
    assert active.returncode == 0, active.stderr
    assert "default" not in active.stdout.split()  # no NAT network on this machine
    assert not Path("/sys/class/net/virbr0").exists()


def test_storage_driver_falls_back_and_says_so(caplog: pytest.LogCaptureFixture) -> None:
    """If the first storage driver cannot start, the next one is used, with a warning."""
    with Dockerd(storage_drivers=("no-such-driver", "vfs")) as fallback:
        assert fallback.storage_driver == "vfs"
        client = fallback.client()
        try:
            assert client.info()["Driver"] == "vfs"
        finally:
            client.close()
    assert "storage driver vfs because no-such-driver failed" in caplog.text


def test_debian_base_image_builds_offline(
    docker_client: IsolatedAPIClient, debian_image: tuple[str, str], registry: Registry
) -> None:
    local, remote = debian_image
    name, _, tag = remote.partition("/")[2].partition(":")
    manifest = registry.session().head(
        f"{registry.url}/v2/{name}/manifests/{tag}",
        headers={"Accept": "application/vnd.docker.distribution.manifest.v2+json"},
        timeout=10,
    )
    assert manifest.status_code == 200
    dockerfile = f"FROM {local}\nRUN echo debian=$(cat /etc/debian_version) && dpkg -s dash\n"
    output = []
    for event in docker_client.build(
        fileobj=context_tar({"Dockerfile": dockerfile}),
        custom_context=True,
        tag="tests/debian-run:latest",
        rm=True,
        network_mode="host",
        decode=True,
    ):
        assert "error" not in event, event
        output.append(event.get("stream", ""))
    text = "".join(output)
    assert "debian=12." in text
    assert "Status: install ok installed" in text


def test_registry_ca_is_trusted_through_private_certs_d() -> None:
    """dockerd verifies a registry with the CA in its private certs.d, and only with it.

    Registries in 127.0.0.0/8 are never verified by dockerd, so this registry listens on ::1
    under a name that only dockerd's private /etc/hosts knows.
    """
    name = "registry-v6.securebuild.test"
    with Registry(host="::1", hostname=name) as registry6:
        reference = f"{registry6.address}/busybox:v6"
        for trusted in (True, False):
            cas = {registry6.address: registry6.ca_cert} if trusted else {}
            with Dockerd(registry_cas=cas, extra_hosts={name: "::1"}) as daemon:
                client = daemon.client()
                try:
                    import_busybox(client)
                    client.tag("busybox:latest", reference.rpartition(":")[0], tag="v6")
                    if trusted:
                        assert push(client, reference, registry6.auth_config).startswith("sha256:")
                    else:
                        with pytest.raises(
                            ServiceError, match="x509: certificate signed by unknown"
                        ):
                            push(client, reference, registry6.auth_config)
                finally:
                    client.close()
        assert not Path(f"/etc/docker/certs.d/{registry6.address}").exists()
        assert name not in Path("/etc/hosts").read_text()


_LAUNCHER_PROBE = """
import json, os, sys
from pathlib import Path
from securebuild.devenv.libvirtd import AUTOSTART_DIR, Libvirtd, virsh
report = {"autostart_configured": sorted(os.listdir(AUTOSTART_DIR))}
with Libvirtd() as service:
    report["started"] = [service.started_virtlogd, service.started_libvirtd]
    pids = [p.pid for p in (service._virtlogd, service._libvirtd) if p is not None]
    report["list_rc"] = virsh("list", "--all").returncode
    report["active_networks"] = virsh("net-list", "--name").stdout.split()
    report["virbr0"] = Path("/sys/class/net/virbr0").exists()
report["alive_after_stop"] = [pid for pid in pids if Path(f"/proc/{pid}").exists()]
report["usable_after_stop"] = virsh("list", timeout=10).returncode == 0
print(json.dumps(report))
"""


def test_libvirtd_launcher_starts_its_own_without_nat_network(tmp_path: Path) -> None:
    """The start path, even where a libvirtd already runs: in a throw-away mount and network
    namespace with an empty /run, and with the ``default`` network marked autostart."""
    autostart = tmp_path / "autostart"
    autostart.mkdir()
    (autostart / "default.xml").symlink_to("/etc/libvirt/qemu/networks/default.xml")
    setup = (
        "mount -t tmpfs none /run && mkdir -p /run/libvirt /run/lock && "
        'mount --bind "$1" /etc/libvirt/qemu/networks/autostart && ip link set lo up && '
        'exec "$2" -c "$3"'
    )
    result = subprocess.run(
        [
            "unshare",
            "--mount",
            "--net",
            "--propagation",
            "private",
            "--",
            "/bin/sh",
            "-c",
            setup,
            "sh",
            str(autostart),
            sys.executable,
            _LAUNCHER_PROBE,
        ],
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout.splitlines()[-1])
    assert report["autostart_configured"] == ["default.xml"]
    assert report["started"] == [True, True]
    assert report["list_rc"] == 0
    assert report["active_networks"] == []
    assert report["virbr0"] is False
    assert report["alive_after_stop"] == []
    assert report["usable_after_stop"] is False
