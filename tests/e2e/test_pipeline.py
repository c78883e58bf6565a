"""The whole build pipeline in a real project VM: `securebuild run` -> playbooks/build.yml.

Real: the shared project VM (TCG here), its dockerd over mutual TLS, a registry with TLS and
htpasswd auth reached by the VM as 10.0.2.2, a git smart-HTTP server with token auth, the
runner adapter and ansible-runner. ``REQUESTS_CA_BUNDLE`` is set for every run. Contexts are
tiny and use the seeded busybox so a warm build takes seconds of docker time.
"""

from __future__ import annotations

import re
import threading
import time
from pathlib import Path

import pytest

from securebuild.devenv.gitserver import GitServer
from securebuild.devenv.vmregistry import image_config
from tests.fixtures.pipeline import Pipeline

PAYLOAD = "{{ lookup('pipe','id') }}"


def _write(root: Path, files: dict[str, str]) -> Path:
    for rel, content in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(content)
        if rel.startswith(".d2i/"):
            path.chmod(0o755)
    return root


def _vm_clean(pipeline: Pipeline, *needles: str) -> None:
    """No run directory left, and none of ``needles`` anywhere we could have written them."""
    runs = pipeline.vm.ssh("sudo", "-n", "find", "/var/lib/securebuild/runs", "-mindepth", "1")
    assert runs.stdout.strip() == "", f"leftovers in the VM: {runs.stdout}"
    argv = ["sudo", "-n", "grep", "-rlsF"]
    for needle in needles:
        argv += ["-e", needle]
    dirs = [
        "/var/lib/securebuild",
        "/etc",
        "/root",
        "/home",
        "/tmp",
        "/var/tmp",
        "/run",
        "/var/lib/docker",
    ]
    found = pipeline.vm.ssh(*argv, *dirs, timeout=600)
    assert found.stdout.strip() == "", f"secret material on the VM's disk: {found.stdout}"


def test_binary_build_with_hooks_secrets_and_unsafe_build_arg(
    pipeline: Pipeline, tmp_path: Path
) -> None:
    registry = pipeline.registry.address
    secret_value = "s3cr3t-" + "x" * 12
    context = _write(
        tmp_path / "ctx",
        {
            "Dockerfile": (
                "FROM busybox AS base\n"
                "RUN echo base > /base.txt\n"
                "FROM busybox\n"
                "ARG PAYLOAD\n"
                "COPY --from=base /base.txt /base.txt\n"
                "COPY app.txt /app.txt\n"
                'RUN echo "payload=$PAYLOAD"\n'
                'LABEL payload="$PAYLOAD"\n'
            ),
            "app.txt": "app\n",
            ".d2i/pre_build": (
                "#!/bin/sh\n"
                'test -f secrets/token.txt && echo "pre_build: secret present"\n'
                'echo "pre_build: args $1 $2 user $(id -un)"\n'
                'echo "pre_build: name=$OPENSHIFT_BUILD_NAME ns=$OPENSHIFT_BUILD_NAMESPACE"\n'
                'test -z "$DOCKER_CONFIG$REGISTRY_AUTH" && echo "pre_build: no credentials"\n'
            ),
            ".d2i/post_build": '#!/bin/sh\necho "post_build: done $2"\n',
        },
    )
    build = pipeline.build(
        "bin-1",
        {
            "source": {
                "type": "Binary",
                "binary": {},
                "secrets": [{"secret": {"name": "app-secret"}, "destinationDir": "secrets"}],
            },
            "strategy": {
                "type": "Docker",
                "dockerStrategy": {
                    "from": {"kind": "DockerImage", "name": f"{registry}/busybox:latest"},
                    "pullSecret": {"name": "registry-auth"},
                    "buildArgs": [{"name": "PAYLOAD", "value": PAYLOAD}],
                    "env": [{"name": "FOO", "value": "bar"}],
                },
            },
            "output": {
                "to": {"kind": "DockerImage", "name": f"{registry}/e2e/bin:latest"},
                "pushSecret": {"name": "registry-auth"},
                "imageLabels": [{"name": "org.example.team", "value": "e2e"}],
            },
        },
    )
    result = pipeline.run(
        build,
        "--from-dir",
        str(context),
        "--secret",
        pipeline.secret_dir("app-secret", {"token.txt": secret_value}),
    )
    assert result.rc == 0, result.text + result.stderr
    assert re.fullmatch(
        rf"securebuild: build {pipeline.vm.project}/bin-1 Complete, pushed "
        rf"{re.escape(registry)}/e2e/bin@sha256:[0-9a-f]{{64}}",
        result.summary,
    ), result.summary
    text = result.text
    assert "pre_build: secret present" in text
    assert "pre_build: args /var/lib/securebuild/runs/" in text and "user sbbuild" in text
    assert f"pre_build: name=bin-1 ns={pipeline.vm.project}" in text
    assert "pre_build: no credentials" in text
    assert f"post_build: done {registry}/e2e/bin:latest" in text
    assert f"payload={PAYLOAD}" in text  # the RUN saw the literal value
    assert text.index("pre_build:") < text.index("Step 1/") < text.index("post_build:")
    assert text.index("post_build:") < text.index("Pushing image")
    assert [s["name"] for s in result.outcome["stages"]] == ["PullImages", "Build", "PushImage"]

    config = image_config(pipeline.registry, "e2e/bin", "latest")["config"]
    labels = config["Labels"]
    assert labels["payload"] == PAYLOAD
    assert labels["io.openshift.build.name"] == "bin-1"
    assert labels["io.openshift.build.namespace"] == pipeline.vm.project
    assert labels["org.example.team"] == "e2e"
    assert "OPENSHIFT_BUILD_NAME=bin-1" in config["Env"]
    assert f"OPENSHIFT_BUILD_NAMESPACE={pipeline.vm.project}" in config["Env"]
    assert "FOO=bar" in config["Env"]
    manifest = pipeline.registry.session().head(
        f"https://127.0.0.1:{pipeline.registry.port}/v2/e2e/bin/manifests/latest",
        headers={"Accept": "application/vnd.docker.distribution.manifest.v2+json"},
        timeout=30,
    )
    assert manifest.headers["Docker-Content-Digest"] == result.outcome["digest"]
    _vm_clean(pipeline, secret_value, pipeline.registry.password)


def test_git_https_with_token(pipeline: Pipeline, git_server: GitServer) -> None:
    commit = git_server.create_repo(
        "app",
        {
            "app/Dockerfile": "FROM busybox\nCOPY hello.txt /hello.txt\nRUN cat /hello.txt\n",
            "app/hello.txt": "hello from git\n",
        },
    )
    uri = git_server.url("app")
    build = pipeline.build(
        "git-1",
        {
            "source": {
                "type": "Git",
                "git": {"uri": uri, "ref": "main"},
                "contextDir": "app",
                "sourceSecret": {"name": "git-auth"},
            },
        },
    )
    secret = pipeline.secret_dir(
        "git-auth",
        {
            "username": git_server.username,
            "password": git_server.token,
            "ca.crt": git_server.ca_cert.read_bytes(),
        },
    )
    result = pipeline.run(build, "--secret", secret)
    assert result.rc == 0, result.text + result.stderr
    text = result.text
    assert f'Cloning "{uri}" ...' in text
    assert f"\tCommit:\t{commit} (Initial commit of app)" in text
    assert "hello from git" in text
    assert "Build complete, no image push requested" in text
    assert (
        result.summary
        == f"securebuild: build {pipeline.vm.project}/git-1 Complete, no image push requested"
    )
    assert result.outcome["stages"][0]["name"] == "FetchInputs"
    image = pipeline.vm.docker.inspect_image(result.outcome["details"]["image_id"])
    labels = image["Config"]["Labels"]
    assert labels["io.openshift.build.commit.id"] == commit
    assert labels["io.openshift.build.commit.ref"] == "main"
    assert labels["io.openshift.build.commit.author"] == "Jane Doe <jane@example.com>"
    assert labels["io.openshift.build.commit.message"] == "Initial commit of app"
    assert labels["io.openshift.build.source-location"] == uri
    assert labels["io.openshift.build.source-context-dir"] == "app"
    env = image["Config"]["Env"]
    assert f"OPENSHIFT_BUILD_SOURCE={uri}" in env
    assert "OPENSHIFT_BUILD_REFERENCE=main" in env
    assert f"OPENSHIFT_BUILD_COMMIT={commit}" in env
    _vm_clean(pipeline, git_server.token)


def test_git_wrong_token_fails_fetch(pipeline: Pipeline, git_server: GitServer) -> None:
    git_server.create_repo("private", {"Dockerfile": "FROM busybox\n"})
    build = pipeline.build(
        "git-2",
        {"source": {"git": {"uri": git_server.url("private")}, "sourceSecret": {"name": "bad"}}},
    )
    secret = pipeline.secret_dir(
        "bad", {"token": "not-the-token", "ca.crt": git_server.ca_cert.read_bytes()}
    )
    result = pipeline.run(build, "--secret", secret)
    assert result.rc == 1
    assert result.outcome["reason"] == "FetchSourceFailed"
    assert result.summary.endswith("reason FetchSourceFailed: Failed to fetch the input source.")
    assert "not-the-token" not in result.text


def test_as_file_inline_dockerfile_config_map_and_post_commit(
    pipeline: Pipeline, tmp_path: Path
) -> None:
    upload = tmp_path / "greeting.txt"
    upload.write_text("uploaded greeting\n")
    build = pipeline.build(
        "file-1",
        {
            "source": {
                "type": "Binary",
                "binary": {},
                "dockerfile": (
                    "FROM busybox\nCOPY greeting.txt /g.txt\nCOPY conf/ /conf/\n"
                    "RUN cat /g.txt /conf/settings\n"
                ),
                "configMaps": [{"configMap": {"name": "app-config"}, "destinationDir": "conf"}],
            },
            "postCommit": {"script": "echo post-commit-ran"},
        },
    )
    result = pipeline.run(
        build,
        "--from-file",
        str(upload),
        "--config-map",
        pipeline.secret_dir("app-config", {"settings": "mode=e2e\n"}),
    )
    assert result.rc == 0, result.text + result.stderr
    assert "Receiving source from STDIN as file greeting.txt" in result.text
    assert "uploaded greeting" in result.text
    assert "mode=e2e" in result.text
    assert "post-commit-ran" in result.text
    assert "Build complete, no image push requested" in result.text


def test_image_source_paths(pipeline: Pipeline) -> None:
    registry = pipeline.registry.address
    build = pipeline.build(
        "images-1",
        {
            "source": {
                "type": "Dockerfile",
                "dockerfile": "FROM busybox\nCOPY tools/ /tools/\nRUN ls -l /tools/passwd\n",
                "images": [
                    {
                        "from": {"kind": "DockerImage", "name": f"{registry}/busybox:latest"},
                        "paths": [{"sourcePath": "/etc/passwd", "destinationDir": "tools"}],
                        "pullSecret": {"name": "registry-auth"},
                    }
                ],
            }
        },
    )
    result = pipeline.run(build)
    assert result.rc == 0, result.text + result.stderr
    assert "Copied /etc/passwd from" in result.text
    assert re.search(r"-rw.* /tools/passwd", result.text), result.text


def test_missing_context_dir(pipeline: Pipeline, tmp_path: Path) -> None:
    context = _write(tmp_path / "ctx", {"Dockerfile": "FROM busybox\n"})
    build = pipeline.build("ctx-1", {"source": {"binary": {}, "contextDir": "nope"}})
    result = pipeline.run(build, "--from-dir", str(context))
    assert result.outcome["reason"] == "InvalidContextDirectory"
    assert "provided context directory does not exist: nope" in result.text


def test_failing_hook(pipeline: Pipeline, tmp_path: Path) -> None:
    context = _write(
        tmp_path / "ctx",
        {"Dockerfile": "FROM busybox\n", ".d2i/pre_build": "#!/bin/sh\necho hook-ran\nexit 3\n"},
    )
    build = pipeline.build("hook-1", {"source": {"binary": {}}})
    result = pipeline.run(build, "--from-dir", str(context))
    assert result.rc == 1
    assert "hook-ran" in result.text
    assert "hook .d2i/pre_build failed with exit status 3" in result.text
    assert result.outcome["reason"] == "PreBuildHookFailed"
    assert result.summary.endswith("reason PreBuildHookFailed: The pre_build hook has failed.")
    assert "Step 1/" not in result.text


def test_failing_run(pipeline: Pipeline) -> None:
    build = pipeline.build(
        "run-1", {"source": {"dockerfile": "FROM busybox\nRUN echo about-to-fail && exit 7\n"}}
    )
    result = pipeline.run(build)
    assert result.rc == 1
    assert "about-to-fail" in result.text
    assert "error: build error:" in result.text
    assert result.outcome["reason"] == "DockerBuildFailed"
    assert result.summary.endswith(
        "reason DockerBuildFailed: Dockerfile build strategy has failed."
    )


def test_unreachable_registry(pipeline: Pipeline) -> None:
    build = pipeline.build(
        "push-1",
        {
            "source": {"dockerfile": "FROM busybox\nRUN true\n"},
            "output": {"to": {"kind": "DockerImage", "name": "10.0.2.2:1/e2e/nowhere:latest"}},
        },
    )
    result = pipeline.run(build)
    assert result.rc == 1
    assert result.text.count("Warning: Push failed, retrying in 5s ...") == 2
    assert "Failed to push image: After retrying 2 times" in result.text
    assert result.outcome["reason"] == "PushImageToRegistryFailed"


def test_cancel_mid_run(pipeline: Pipeline) -> None:
    build = pipeline.build(
        "cancel-1",
        {"source": {"dockerfile": "FROM busybox\nRUN echo started-sleeping && sleep 600\n"}},
    )
    sent: dict[str, float] = {}

    def on_line(line: str, proc: object) -> None:
        if "started-sleeping" in line and "at" not in sent:
            sent["at"] = time.monotonic()
            threading.Timer(1.0, pipeline.interrupt, args=(proc,)).start()

    result = pipeline.run(build, on_line=on_line)
    assert "at" in sent, result.text
    stopped = time.monotonic() - sent["at"]
    assert result.rc == 1
    assert result.outcome["phase"] == "Cancelled"
    assert result.summary.endswith("reason CancelledBuild: The build was cancelled by the user.")
    assert stopped < 60, f"cancellation took {stopped:.1f} s"
    deadline = time.monotonic() + 30
    while (
        pipeline.vm.docker.containers(filters={"status": "running"}) and time.monotonic() < deadline
    ):
        time.sleep(1)
    assert pipeline.vm.docker.containers(filters={"status": "running"}) == []


@pytest.mark.parametrize("field", ["contextDir", "dockerfilePath"])
def test_path_escape_is_refused_before_anything_runs(pipeline: Pipeline, field: str) -> None:
    spec: dict[str, object] = {"source": {"dockerfile": "FROM busybox\n"}}
    if field == "contextDir":
        spec["source"] = {"dockerfile": "FROM busybox\n", "contextDir": "../etc"}
    else:
        spec["strategy"] = {"type": "Docker", "dockerStrategy": {"dockerfilePath": "../x"}}
    result = pipeline.run(pipeline.build(f"esc-{field.lower()}", spec))
    assert result.rc == 1
    assert "securebuild: error:" in result.stderr


def test_cancel_during_hook_kills_it_in_the_vm(pipeline: Pipeline, tmp_path: Path) -> None:
    context = _write(
        tmp_path / "ctx",
        {
            "Dockerfile": "FROM busybox\n",
            ".d2i/pre_build": "#!/bin/sh\necho hook-sleeping\nsleep 600\n",
        },
    )
    sent: dict[str, float] = {}

    def on_line(line: str, proc: object) -> None:
        if "hook-sleeping" in line and "at" not in sent:
            sent["at"] = time.monotonic()
            threading.Timer(1.0, pipeline.interrupt, args=(proc,)).start()

    result = pipeline.run(
        pipeline.build("cancel-2", {"source": {"binary": {}}}),
        "--from-dir",
        str(context),
        on_line=on_line,
    )
    assert "at" in sent, result.text
    assert result.outcome["phase"] == "Cancelled"
    left = pipeline.vm.ssh("pgrep", "-u", "sbbuild", "-a")
    assert left.stdout.strip() == "", f"hook processes left in the VM: {left.stdout}"
    runs = pipeline.vm.ssh("sudo", "-n", "find", "/var/lib/securebuild/runs", "-mindepth", "1")
    assert runs.stdout.strip() == ""


def test_git_over_ssh_with_key_and_known_hosts(pipeline: Pipeline, tmp_path: Path) -> None:
    """git over SSH with the source secret's key, host key checked against its known_hosts.

    The host has no SSH server to offer, so the VM's own sshd serves the repository on the
    VM's 127.0.0.1, as a separate user whose key may only run git-shell (test VM only).
    """
    import subprocess

    key = tmp_path / "id_ed25519"
    subprocess.run(
        ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "e2e", "-f", str(key)], check=True
    )
    public = (tmp_path / "id_ed25519.pub").read_text().strip()
    setup = (
        "set -e; id gitsrv >/dev/null 2>&1 || useradd -m -s /usr/bin/git-shell gitsrv; "
        "usermod -p '*' gitsrv; "  # not locked: sshd without PAM refuses locked accounts
        "cd /home/gitsrv; rm -rf app.git work; mkdir -p .ssh work; "
        f"echo 'restrict {public}' > .ssh/authorized_keys; "
        "cd work; git init -q -b main; printf 'FROM busybox\\nRUN echo via-ssh\\n' > Dockerfile; "
        "git add Dockerfile; git -c user.name=Jane -c user.email=j@example.com commit -qm ssh; "
        "cd ..; git clone -q --bare work app.git; rm -rf work; "
        "chown -R gitsrv:gitsrv /home/gitsrv; chmod 700 .ssh; "
        # the VM's sshd allows only the admin user: a second one, for gitsrv, on 127.0.0.1:2222
        "printf 'ListenAddress 127.0.0.1\\nPort 2222\\nAllowUsers gitsrv\\n"
        "HostKey /etc/ssh/ssh_host_ed25519_key\\nPidFile /run/sb-e2e-sshd.pid\\n"
        "PasswordAuthentication no\\nUsePAM no\\n' > /run/sb-e2e-sshd.conf; "
        "test -f /run/sb-e2e-sshd.pid && kill $(cat /run/sb-e2e-sshd.pid) || true; "
        "mkdir -p /run/sshd; /usr/sbin/sshd -f /run/sb-e2e-sshd.conf; sleep 1; "
        "ssh-keyscan -p 2222 -t ed25519 127.0.0.1 2>/dev/null"
    )
    made = pipeline.vm.ssh("sudo", "-n", "sh", "-s", stdin=setup)
    assert made.returncode == 0, made.stderr
    known_hosts = made.stdout
    assert "ssh-ed25519" in known_hosts
    build = pipeline.build(
        "ssh-1",
        {
            "source": {
                "git": {"uri": "ssh://gitsrv@127.0.0.1:2222/home/gitsrv/app.git"},
                "sourceSecret": {"name": "ssh-auth"},
            }
        },
    )
    secret = pipeline.secret_dir(
        "ssh-auth", {"ssh-privatekey": key.read_bytes(), "known_hosts": known_hosts}
    )
    try:
        result = pipeline.run(build, "--secret", secret)
    finally:
        pipeline.vm.ssh("sudo", "-n", "sh", "-s", stdin="kill $(cat /run/sb-e2e-sshd.pid)")
    assert result.rc == 0, result.text + result.stderr
    assert "via-ssh" in result.text
    assert "\tCommit:\t" in result.text
    key_lines = key.read_text().splitlines()
    _vm_clean(pipeline, key_lines[len(key_lines) // 2])  # a line only this key has
