"""securebuild.fleet.docker_tls against the real mTLS dockerd, with a hostile environment.

These machines set REQUESTS_CA_BUNDLE (and the SDK reads ~/.docker/config.json); the client must
verify dockerd with the project's CA only and send nothing from the host's Docker config.
"""

from __future__ import annotations

import io
import json
import os
import tarfile
from pathlib import Path

import docker
import docker.errors
import docker.tls
import pytest

from securebuild.devenv.baseimages import BaseImages
from securebuild.devenv.dockerd import Dockerd
from securebuild.devenv.registry import Registry
from securebuild.fleet.docker_tls import DockerTLSError, IsolatedAPIClient, docker_api_client


def test_tls_client_ignores_requests_environment(
    dockerd: Dockerd, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """REQUESTS_CA_BUNDLE (set on these machines) would make a plain SDK client fail."""
    unrelated = tmp_path / "unrelated-bundle.pem"
    unrelated.write_bytes(dockerd.foreign_pki.ca_cert.read_bytes())
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(unrelated))
    monkeypatch.setenv("CURL_CA_BUNDLE", str(unrelated))
    # the SDK as documented: verification against our CA is silently replaced by the env's
    with pytest.raises(docker.errors.DockerException, match=r"(?i)certificate verify failed"):
        docker.APIClient(
            base_url=dockerd.host,
            tls=docker.tls.TLSConfig(
                client_cert=(str(dockerd.client_cert), str(dockerd.client_key)),
                ca_cert=str(dockerd.ca_cert),
                verify=True,
            ),
            timeout=10,
        )

    # more of the environment that must not matter
    monkeypatch.setenv("HTTPS_PROXY", "http://127.0.0.1:9")  # discard port: nothing answers
    docker_config = tmp_path / "docker-config"
    docker_config.mkdir()
    (docker_config / "config.json").write_text(
        json.dumps(
            {
                "auths": {"registry.example": {"auth": "dXNlcjpob3N0LXNlY3JldA=="}},
                "proxies": {"default": {"httpProxy": "http://proxy.example:3128"}},
            }
        )
    )
    monkeypatch.setenv("DOCKER_CONFIG", str(docker_config))

    client = docker_api_client(
        dockerd.host,
        ca=dockerd.ca_cert,
        cert=dockerd.client_cert,
        key=dockerd.client_key,
        timeout=10,
    )
    try:
        assert client.ping()
        assert client.version()["ApiVersion"]
        # nothing from the host's Docker config leaks into requests to the VM
        assert client.registry_auths == {}
        assert client._auth_configs.get_all_credentials() == {}
        assert client._proxy_configs.get_environment() == {}
    finally:
        client.close()
    assert os.environ["REQUESTS_CA_BUNDLE"] == str(unrelated)


def test_missing_tls_files_are_a_clear_error(dockerd: Dockerd, tmp_path: Path) -> None:
    with pytest.raises(DockerTLSError, match=r"client key .* does not exist"):
        docker_api_client(
            dockerd.host, ca=dockerd.ca_cert, cert=dockerd.client_cert, key=tmp_path / "nope"
        )


def _build(client: IsolatedAPIClient, base: str) -> list[dict[str, object]]:
    context = io.BytesIO()
    with tarfile.open(fileobj=context, mode="w") as tar:
        data = f"FROM {base}\nRUN true\n".encode()
        info = tarfile.TarInfo("Dockerfile")
        info.size = len(data)
        tar.addfile(info, io.BytesIO(data))
    context.seek(0)
    return list(
        client.build(
            fileobj=context,
            custom_context=True,
            pull=True,  # always ask the registry, even though the image is local
            rm=True,
            network_mode="host",
            decode=True,
        )
    )


def test_build_pulls_base_image_with_per_client_credentials(
    dockerd: Dockerd, registry: Registry, base_images: BaseImages
) -> None:
    """Credentials for base-image pulls come from the client, never from a config file."""
    client = dockerd.client()
    try:
        before = dockerd.log_path.stat().st_size
        events = _build(client, base_images.registry_busybox)
        assert any("error" in event for event in events), events  # no credentials: refused
        with dockerd.log_path.open("rb") as log:
            log.seek(before)
            # the 401 (the error event shows dockerd's plain-HTTP retry for 127.0.0.0/8)
            assert b"no basic auth credentials" in log.read()
        client.registry_auths = {registry.address: registry.auth_config}
        events = _build(client, base_images.registry_busybox)
        assert not any("error" in event for event in events), events
        assert any("Successfully built" in str(event.get("stream", "")) for event in events)
    finally:
        client.close()
