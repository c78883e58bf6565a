"""Control-side steps of ``playbooks/build.yml``: ``python -m securebuild.pipeline.steps``.

Usage: ``python -m securebuild.pipeline.steps STEP BUILD_JSON [HOOK]``.

The roles run each step as a ``securebuild_live_command`` task delegated to localhost, so every
line printed here reaches the build log the moment it is printed. ``FILE`` is the run's
``build.json`` in the private data dir (written by the ``build_source`` role from the unsafe
extra vars): tenant data, the VM's SSH and dockerd endpoints, and the *paths* of secret files.

What runs where:

- in the VM, through SSH with the pinned host key and a fixed argv
  (``sudo -n /usr/local/sbin/securebuild-vm-helper COMMAND RUN``): fetching the source,
  checks against symlink escapes, hooks, the tar of the context;
- here, against the VM's dockerd over mutual TLS: base image pulls, ``docker build`` fed with
  the context streamed out of the VM, and the push. Registry credentials are sent per request
  (``X-Registry-Config`` for the build, ``X-Registry-Auth`` for pull and push) and never written
  in the VM.

Exit statuses map to OpenShift reasons in the roles (``EXIT_*`` here and in the VM helper).
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import os
import re
import secrets as pysecrets
import shlex
import subprocess
import sys
import tarfile
import tempfile
import time
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import IO, Any

HELPER = "/usr/local/sbin/securebuild-vm-helper"
EXIT_PULL = 30  # PullBuilderImageFailed
EXIT_BUILD = 31  # DockerBuildFailed
EXIT_PUSH = 32  # PushImageToRegistryFailed
EXIT_IMAGE_CONTENT = 14  # FetchImageContentFailed (same as the VM helper)
EXIT_DOCKERFILE = 12  # ManageDockerfileFailed (same as the VM helper)
RETRIES = 2
RETRY_DELAY = 5.0
CHUNK = 256 * 1024


_NOISE = ("sudo: unable to resolve host",)


def say(line: str) -> None:
    if line.startswith(_NOISE):
        return
    sys.stdout.write(line + "\n")
    sys.stdout.flush()


class Context:
    """The run's build.json plus helpers to reach the VM."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.data: dict[str, Any] = json.loads(path.read_text())
        self.run: str = self.data["run"]
        self.vm: dict[str, Any] = self.data["vm"]
        self.tenant: dict[str, Any] = self.data["tenant"]
        self.params: dict[str, Any] = self.tenant["params"]
        self.secret_files: dict[str, str] = self.data.get("secret_files") or {}
        self.workdir = path.parent
        # Tags the fetch step's hand-over line (random per step process; only fetch uses it).
        # Even a forged line could only claim a Dockerfile and commit the tenant controls.
        self.marker = "SECUREBUILD-" + pysecrets.token_hex(12)

    # -- secrets -------------------------------------------------------------------------
    def secret(self, name: str) -> bytes | None:
        path = self.secret_files.get(name)
        return Path(path).read_bytes() if path else None

    def pull_auths(self) -> dict[str, dict[str, str]]:
        raw = self.secret("ctl-pull-auths")
        return json.loads(raw) if raw else {}

    def push_auth(self) -> dict[str, str] | None:
        raw = self.secret("ctl-push-auth")
        return json.loads(raw) if raw else None

    # -- ssh -----------------------------------------------------------------------------
    @property
    def control_path(self) -> str:
        """One SSH connection to the VM shared by all steps (and runs): see :func:`control_path`."""
        return control_path(self.vm)

    def ssh_argv(self, *remote: str, tty: bool = False) -> list[str]:
        """argv running the VM helper with ``remote`` as its (trusted, fixed) arguments."""
        helper = str(self.vm.get("helper") or HELPER)
        return ssh_argv(self.vm, "sudo", "-n", helper, *remote, tty=tty)

    def helper(
        self,
        *args: str,
        stdin: IO[bytes] | bytes | None = None,
        capture: bool = False,
        tty: bool = False,
    ) -> subprocess.CompletedProcess[bytes]:
        """Run the VM helper; its output is passed through line by line unless ``capture``."""
        argv = self.ssh_argv(args[0], self.run, *args[1:], tty=tty)
        env = _clean_env()
        if capture:
            return subprocess.run(
                argv,
                input=stdin if isinstance(stdin, bytes) else None,
                stdin=None if isinstance(stdin, bytes) else stdin,
                capture_output=True,
                env=env,
                check=False,
            )
        proc = subprocess.Popen(
            argv,
            stdin=subprocess.PIPE if isinstance(stdin, bytes) else (stdin or subprocess.DEVNULL),
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            env=env,
        )
        if isinstance(stdin, bytes):
            assert proc.stdin is not None
            proc.stdin.write(stdin)
            proc.stdin.close()
        assert proc.stdout is not None
        for raw in iter(proc.stdout.readline, b""):
            say(raw.decode("utf-8", "replace").rstrip("\n").rstrip("\r"))
        rc = proc.wait()
        return subprocess.CompletedProcess(argv, rc, b"", b"")

    # -- docker --------------------------------------------------------------------------
    def docker(self, *, timeout: float = 3600) -> Any:
        from securebuild.fleet.docker_tls import docker_api_client

        vm = self.vm
        return docker_api_client(
            str(vm["docker_url"]),
            ca=Path(vm["docker_ca"]),
            cert=Path(vm["docker_cert"]),
            key=Path(vm["docker_key"]),
            timeout=timeout,
            registry_auths=self.pull_auths(),
        )

    def result(self, **values: Any) -> None:
        path = Path(self.data["result_file"])
        current = json.loads(path.read_text()) if path.exists() else {}
        current.update(values)
        path.write_text(json.dumps(current))


def ssh_argv(vm: Mapping[str, Any], *remote: str, tty: bool = False) -> list[str]:
    """ssh to the VM with its pinned host key, sharing the VM's master connection."""
    argv = [
        "ssh",
        "-q",
        *shlex.split(str(vm.get("ssh_common_args") or "")),
        "-o",
        "BatchMode=yes",
        "-o",
        "ControlMaster=auto",
        "-o",
        f"ControlPath={control_path(vm)}",
        "-o",
        "ControlPersist=120",
        "-i",
        str(vm["ssh_key"]),
        "-p",
        str(vm["ssh_port"]),
    ]
    if tty:
        argv.append("-tt")  # a hung-up session sends SIGHUP to the hook (cancellation)
    return [*argv, f"{vm['ssh_user']}@{vm['ssh_host']}", "--", *remote]


def control_path(vm: Mapping[str, Any]) -> str:
    """The SSH ControlPath for a VM: one master connection, reused by every step of a run.

    ``run_plan`` gives each run a private (0700) directory, ``ssh_control_dir``: nobody else
    can plant or reach the socket, and ``run_plan`` ends the master with the run
    (:func:`stop_master`). Without one (tools such as the
    benchmark's clock probe) the socket is per VM in the temp dir, short because sun_path is
    limited to 108 bytes.
    """
    private = vm.get("ssh_control_dir")
    if private:
        return str(Path(str(private)) / "cm")
    key = f"{vm['ssh_user']}@{vm['ssh_host']}:{vm['ssh_port']}:{vm.get('ssh_key')}"
    digest = hashlib.sha256(key.encode()).hexdigest()[:16]
    return str(Path(tempfile.gettempdir()) / f"sbssh-{digest}")


def stop_master(vm: Mapping[str, Any]) -> None:
    """End the master connection of ``vm``'s control path, if one is listening.

    Needed at the end of a run: the master outlives its ``ssh`` client (ControlPersist) and
    cannot be found by the run's environment marker, since ssh writes its process title
    ("ssh: ... [mux]") over its environment.
    """
    path = control_path(vm)
    if not Path(path).exists():
        return
    target = f"{vm['ssh_user']}@{vm['ssh_host']}"
    with contextlib.suppress(subprocess.TimeoutExpired, OSError):
        subprocess.run(
            ["ssh", "-o", f"ControlPath={path}", "-O", "exit", target],
            capture_output=True,
            timeout=30,
            env=_clean_env(),
            check=False,
        )


def _clean_env() -> dict[str, str]:
    """No CA or proxy overrides from the environment reach ssh or its children."""
    drop = (
        "REQUESTS_CA_BUNDLE",
        "CURL_CA_BUNDLE",
        "SSL_CERT_FILE",
        "SSL_CERT_DIR",
        "SSH_AUTH_SOCK",
    )
    return {k: v for k, v in os.environ.items() if k not in drop}


# --- fetch ------------------------------------------------------------------------------


def _add_bytes(tar: tarfile.TarFile, name: str, data: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    info.mode = 0o600
    tar.addfile(info, io.BytesIO(data))


def _input_stream(ctx: Context, write: IO[bytes]) -> None:
    with tarfile.open(fileobj=write, mode="w|") as tar:
        params = {**ctx.params, "marker": ctx.marker}
        _add_bytes(tar, "params.json", json.dumps(params).encode())
        for name, path in sorted(ctx.secret_files.items()):
            if name.startswith("vm-"):
                _add_bytes(tar, f"secrets/{name}", Path(path).read_bytes())
        binary = ctx.data.get("binary_file")
        if binary:
            tar.add(str(binary), arcname="binary/input", recursive=False)


_HOSTS_FIX = (
    'h="$(hostname)"; grep -qE "[[:space:]]$h([[:space:]]|$)" /etc/hosts '
    '|| echo "127.0.1.1 $h" >> /etc/hosts'
)


HELPER_LIB = "/usr/local/lib/securebuild/sb_vm_helper.py"


def helper_launcher(lib: str = HELPER_LIB) -> bytes:
    """The installed entry point: imports the helper so its bytecode is cached in the VM.

    A Python start in an emulated guest is slow; compiling the 650-line helper on every call
    (a script's code is never cached) and importing ``site`` made it slower still (measured
    with bench/task_timings.py). ``-I -S``: no environment, user or site packages either.
    """
    return (
        "#!/usr/bin/python3 -IS\n"
        '"""securebuild VM helper launcher (installed by securebuild.pipeline.steps)."""\n'
        "import sys\n"
        f"sys.path.insert(0, {str(Path(lib).parent)!r})\n"
        "import sb_vm_helper\n"
        "sys.exit(sb_vm_helper.main(sys.argv[1:]))\n"
    ).encode()


def _install(ctx: Context, data: bytes, target: str, mode: str) -> bool:
    install = subprocess.run(
        [
            *ssh_argv(ctx.vm),
            "sudo",
            "-n",
            "install",
            "-D",
            "-o",
            "root",
            "-g",
            "root",
            "-m",
            mode,
            "/dev/stdin",
            target,
        ],
        input=data,
        capture_output=True,
        env=_clean_env(),
        check=False,
    )
    if install.returncode != 0:
        say(
            "error: cannot install the securebuild helper in the VM: "
            + install.stderr.decode().strip()
        )
    return install.returncode == 0


def ensure_helper(ctx: Context) -> int:
    """Install the VM helper (shipped in the build_source role) when its content differs.

    Two files: the helper as a module (root's first import caches its bytecode beside it) and
    a small launcher at the helper path. One probe (``sha256sum`` of both, no sudo, no Python)
    per run when they are current.
    """
    data = Path(ctx.data["helper_source"]).read_bytes()
    launcher = helper_launcher()
    target = str(ctx.vm.get("helper") or HELPER)
    base = ssh_argv(ctx.vm)
    probe = subprocess.run(
        [*base, "sha256sum", HELPER_LIB, target], capture_output=True, env=_clean_env(), check=False
    )
    found = [line.split(b" ")[0].decode() for line in probe.stdout.splitlines()]
    if probe.returncode == 0 and found == [
        hashlib.sha256(data).hexdigest(),
        hashlib.sha256(launcher).hexdigest(),
    ]:
        return 0
    # Once per VM (with the first install): sudo resolves the VM's own host name on every call;
    # an image without it in /etc/hosts costs a DNS timeout per sudo (seconds, without network).
    # (the script goes on stdin: ssh joins argv into one line the far side's shell parses)
    subprocess.run(
        [*base, "sudo", "-n", "sh", "-s"],
        input=_HOSTS_FIX.encode(),
        capture_output=True,
        env=_clean_env(),
        check=False,
    )
    # the launcher last: a half-done install fails the probe and is redone by the next run
    if _install(ctx, data, HELPER_LIB, "0644") and _install(ctx, launcher, target, "0755"):
        return 0
    return 1


WRITTEN = "dockerfile-written.json"  # how the fetch call's Dockerfile write ended


def step_fetch(ctx: Context) -> int:
    """Fetch in the VM; when the helper hands the Dockerfile over, rewrite it here and send it
    back in the same call, which writes it with the build secrets and config maps.

    That saves the dockerfile step its own SSH + sudo + Python start in the guest. The write's
    outcome (and its output lines, if it failed) is left in ``WRITTEN`` for the dockerfile step
    to report, so a failed write keeps its own reason.
    """
    installed = ensure_helper(ctx)
    if installed != 0:
        return installed
    argv = ctx.ssh_argv("fetch", ctx.run)
    proc = subprocess.Popen(
        argv,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        env=_clean_env(),
    )
    assert proc.stdin is not None and proc.stdout is not None
    import threading

    def feed() -> None:
        assert proc.stdin is not None
        with contextlib.suppress(BrokenPipeError):
            _input_stream(ctx, proc.stdin)
            proc.stdin.flush()

    feeder = threading.Thread(target=feed, daemon=True)
    feeder.start()
    prefix = ctx.marker + " "
    sent = False
    after: list[str] = []  # the write's lines: shown by this step, or by the dockerfile step
    for raw in iter(proc.stdout.readline, b""):
        line = raw.decode("utf-8", "replace").rstrip("\n").rstrip("\r")
        if line.startswith(prefix) and not sent:
            handed = line[len(prefix) :]
            (ctx.workdir / "dockerfile.json").write_text(handed)
            feeder.join()
            text = _rewrite(ctx, handed.encode(), quiet=True)
            if text is not None:
                data = text.encode()
                with contextlib.suppress(BrokenPipeError):
                    proc.stdin.write(f"{len(data)}\n".encode() + data)
                    proc.stdin.flush()
                    sent = True
            with contextlib.suppress(BrokenPipeError):
                proc.stdin.close()
            continue
        if sent:
            after.append(line)
        else:
            say(line)
    feeder.join()
    with contextlib.suppress(BrokenPipeError):
        proc.stdin.close()
    rc = proc.wait()
    if not sent:
        return rc
    if rc == 0:
        for line in after:
            say(line)
    (ctx.workdir / WRITTEN).write_text(json.dumps({"rc": rc, "lines": [] if rc == 0 else after}))
    return 0


# --- Dockerfile -------------------------------------------------------------------------


def _rewrite(ctx: Context, raw: bytes, *, quiet: bool = False) -> str | None:
    """The rewritten Dockerfile (and sourceinfo/hooks in the result file); None on error.

    ``quiet``: nothing is printed on error (the dockerfile step redoes it and reports).
    """
    from securebuild.pipeline.rewrite import rewrite_for_build

    try:
        payload = json.loads(raw)
        text, log = rewrite_for_build(
            payload["dockerfile"], ctx.tenant["build"], payload.get("sourceinfo")
        )
    except Exception as exc:
        if not quiet:
            say(f"error: {exc}")
        return None
    for line in log:
        say(line)
    (ctx.workdir / "Dockerfile.rewritten").write_text(text)
    info = payload.get("sourceinfo")
    ctx.result(sourceinfo=info, hooks=list(payload.get("hooks") or []))
    return text


def step_dockerfile(ctx: Context) -> int:
    written = ctx.workdir / WRITTEN
    if written.exists():  # rewritten and written by the fetch call
        state = json.loads(written.read_text())
        for line in state["lines"]:
            say(line)
        return int(state["rc"])
    handed = ctx.workdir / "dockerfile.json"
    if handed.exists():  # sent by the fetch step (see the VM helper's cmd_fetch)
        raw = handed.read_bytes()
    else:
        read = ctx.helper("dockerfile-read", capture=True)
        if read.returncode != 0:
            say(read.stdout.decode("utf-8", "replace").strip())
            return read.returncode
        raw = read.stdout
    text = _rewrite(ctx, raw)
    if text is None:
        return EXIT_DOCKERFILE
    return ctx.helper("dockerfile-write", stdin=text.encode()).returncode


# --- image content (source.images paths) ------------------------------------------------


def _strip_first(stream: Iterator[bytes], dest: IO[bytes], contents_only: bool) -> None:
    """Re-emit the archive docker returns; for ``/.`` sources drop the top directory."""
    raw = _IterReader(stream)
    with tarfile.open(fileobj=raw, mode="r|") as src, tarfile.open(fileobj=dest, mode="w|") as out:
        for member in src:
            if contents_only:
                parts = member.name.split("/", 1)
                if len(parts) == 1:
                    continue
                member.name = parts[1]
            data = src.extractfile(member) if member.isfile() else None
            out.addfile(member, data)


class _IterReader(io.RawIOBase):
    def __init__(self, chunks: Iterator[bytes]) -> None:
        self._chunks = chunks
        self._buf = b""

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        while not self._buf:
            try:
                self._buf = next(self._chunks)
            except StopIteration:
                return 0
        n = min(len(buffer), len(self._buf))
        buffer[:n] = self._buf[:n]
        self._buf = self._buf[n:]
        return n


def step_image_content(ctx: Context) -> int:
    client = ctx.docker()
    for i, image in enumerate(ctx.params.get("images") or []):
        if not image.get("paths"):
            continue
        ref = image["from"]
        auths = ctx.pull_auths()
        ident = (image.get("pullAuths") or {}).get("id")
        if ident:
            auths.update(json.loads(ctx.secret(ident) or b"{}"))
        say(f"Pulling image {ref} ...")
        if not _pull(client, ref, auths, force=bool(ctx.tenant.get("forcePull"))):
            return EXIT_IMAGE_CONTENT
        container = client.create_container(ref, command=["true"])["Id"]
        try:
            for j, entry in enumerate(image["paths"]):
                source = entry["sourcePath"]
                contents_only = source.endswith("/.")
                path = source[:-2] or "/" if contents_only else source
                try:
                    chunks, _stat = client.get_archive(container, path)
                except Exception as exc:
                    say(
                        f"error: error copying source path {source} to "
                        f"{entry['destinationDir']}: {exc}"
                    )
                    return EXIT_IMAGE_CONTENT
                proc = subprocess.Popen(
                    ctx.ssh_argv("image-content", ctx.run, str(i), str(j)),
                    stdin=subprocess.PIPE,
                    env=_clean_env(),
                )
                assert proc.stdin is not None
                try:
                    _strip_first(iter(chunks), proc.stdin, contents_only)
                finally:
                    proc.stdin.close()
                if proc.wait() != 0:
                    return EXIT_IMAGE_CONTENT
                say(f"Copied {source} from {ref} to {entry['destinationDir'] or '.'}")
        finally:
            client.remove_container(container, force=True)
    return 0


# --- pull, build, push ------------------------------------------------------------------


def _registry(reference: str) -> str:
    from securebuild.pipeline.plan import registry_of

    return registry_of(reference)


def _image_exists(client: Any, ref: str) -> bool:
    import docker.errors

    try:
        client.inspect_image(ref)
    except docker.errors.ImageNotFound:
        return False
    return True


def _pull(client: Any, ref: str, auths: Mapping[str, Mapping[str, str]], *, force: bool) -> bool:
    if not force and _image_exists(client, ref):
        return True
    repository, tag = _split_tag(ref)
    auth = auths.get(_registry(ref))

    def once() -> str:
        error = ""
        try:
            for event in client.pull(
                repository,
                tag=tag,
                stream=True,
                decode=True,
                auth_config=dict(auth) if auth else None,
            ):
                if "error" in event:
                    error = str(event["error"])
                elif event.get("status") and not event.get("progressDetail"):
                    say(str(event["status"]) + (f" {event['id']}" if event.get("id") else ""))
        except Exception as exc:
            error = str(exc)
        return error

    error = _with_retries("Pull", once)
    if not error:
        return True
    say(
        f"error: failed to pull image: After retrying {RETRIES} times, "
        f"Pull image still failed due to error: {error}"
    )
    return False


def _with_retries(verb: str, once: Callable[[], str]) -> str:
    """Run ``once`` up to 1 + RETRIES times, RETRY_DELAY apart; the last error, "" on success.

    OpenShift's builder retries pulls and pushes the same way (DefaultPushOrPullRetryCount = 2,
    5 s apart) and logs the same warning between attempts.
    """
    error = ""
    for attempt in range(RETRIES + 1):
        error = once()
        if not error:
            return ""
        if attempt < RETRIES:
            say(f"Warning: {verb} failed, retrying in {RETRY_DELAY:.0f}s ...")
            time.sleep(RETRY_DELAY)
    return error


def _split_tag(ref: str) -> tuple[str, str | None]:
    if "@" in ref:
        repository, _, digest = ref.partition("@")
        return repository, digest
    last = ref.rsplit("/", 1)[-1]
    if ":" in last:
        repository, _, tag = ref.rpartition(":")
        return repository, tag
    return ref, "latest"


def step_pull(ctx: Context) -> int:
    from securebuild.pipeline.rewrite import images_to_pull

    text = (ctx.workdir / "Dockerfile.rewritten").read_text()
    args = {a["name"]: a["value"] for a in ctx.tenant.get("buildArgs") or []}
    client = ctx.docker()
    auths = ctx.pull_auths()
    force = bool(ctx.tenant.get("forcePull"))
    for ref in images_to_pull(text, args):
        if not force and _image_exists(client, ref):
            continue
        say(f"Pulling image {ref} ...")
        if not _pull(client, ref, auths, force=True):
            return EXIT_PULL
    return 0


def _context_chunks(proc: subprocess.Popen[bytes]) -> Iterator[bytes]:
    assert proc.stdout is not None
    while True:
        chunk = (
            proc.stdout.read1(CHUNK) if hasattr(proc.stdout, "read1") else proc.stdout.read(CHUNK)
        )
        if not chunk:
            return
        yield chunk


def temp_tag(ctx: Context) -> str:
    build = ctx.tenant["build"]["metadata"]
    return (
        f"temp.builder.openshift.io/{build['namespace']}/{build['name']}:{pysecrets.token_hex(4)}"
    )


def step_build(ctx: Context) -> int:
    client = ctx.docker()
    tag = ctx.tenant.get("output") or temp_tag(ctx)
    # with no post_build hook left, the context call also cleans the VM up (one call less)
    final = not post_build_pending(ctx)
    tar = subprocess.Popen(
        ctx.ssh_argv("context-final" if final else "context", ctx.run),
        stdout=subprocess.PIPE,
        stdin=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        env=_clean_env(),
    )
    error = ""
    image_id = ""
    started = time.monotonic()
    try:
        stream = client.build(
            fileobj=_context_chunks(tar),
            custom_context=True,
            dockerfile=str(ctx.params.get("dockerfilePath") or "Dockerfile"),
            tag=tag,
            buildargs={a["name"]: a["value"] for a in ctx.tenant.get("buildArgs") or []},
            nocache=bool(ctx.tenant.get("noCache")),
            pull=bool(ctx.tenant.get("forcePull")),
            rm=True,
            forcerm=True,
            decode=True,
        )
        partial = ""
        for event in stream:
            if "stream" in event:
                partial += str(event["stream"])
                *lines, partial = partial.split("\n")
                for line in lines:
                    say(line.rstrip("\r"))
            if "error" in event:
                error = str(event.get("error"))
            aux = event.get("aux") or {}
            if aux.get("ID"):
                image_id = str(aux["ID"])
        if partial:
            say(partial)
    except Exception as exc:
        error = error or f"{type(exc).__name__}: {exc}"
    finally:
        if final and not error:  # the helper may still be cleaning up after the stream ended
            with contextlib.suppress(subprocess.TimeoutExpired):
                tar.wait(timeout=60)
        if tar.poll() is None:
            tar.kill()
        tar.wait()
        assert tar.stderr is not None
        for raw in tar.stderr.read().decode("utf-8", "replace").splitlines():
            say(raw)
        if final and tar.returncode == 0:
            mark_vm_clean(ctx)
    ctx.result(build_seconds=time.monotonic() - started, image_id=image_id, tag=tag)
    if error:
        say(f"error: build error: {error.strip()}")
        return EXIT_BUILD
    return 0


def step_push(ctx: Context) -> int:
    ref = ctx.tenant.get("output") or ""
    if not ref:
        say("Build complete, no image push requested")
        return 0
    client = ctx.docker()
    auth = ctx.push_auth()
    repository, tag = _split_tag(ref)
    say(f"Pushing image {ref} ...")
    digest = ""

    def once() -> str:
        nonlocal digest
        error = ""
        try:
            for event in client.push(
                repository,
                tag=tag,
                stream=True,
                decode=True,
                auth_config=dict(auth) if auth else None,
            ):
                if "error" in event:
                    error = str(event["error"])
                aux = event.get("aux") or {}
                digest = str(aux.get("Digest") or digest)
        except Exception as exc:
            error = f"{type(exc).__name__}: {exc}"
        if not error and not digest:
            error = "the registry returned no digest"
        return error

    error = _with_retries("Push", once)
    if error:
        say(
            f"error: Failed to push image: After retrying {RETRIES} times, "
            f"Push image still failed due to error: {error}"
        )
        return EXIT_PUSH
    say(f"Successfully pushed {repository}@{digest}")
    say("Push successful")
    ctx.result(digest=digest, pushed=ref)
    return 0


def step_trust_cas(ctx: Context, pairs: list[str]) -> int:
    """Install registry CAs (operator setting ``REGISTRY=FILE``) for the VM's dockerd.

    Over the shared SSH connection rather than an Ansible module in the VM (a Python start in
    an emulated guest costs seconds); skipped per registry when the VM has the same file.
    """
    base = ssh_argv(ctx.vm)
    for pair in pairs:
        registry, _, ca_file = pair.partition("=")
        if not re.fullmatch(r"[A-Za-z0-9.-]+(:[0-9]+)?", registry):
            say(f"error: invalid registry name {registry!r}")
            return 2
        data = Path(ca_file).read_bytes()
        target = f"/etc/docker/certs.d/{registry}/ca.crt"
        probe = subprocess.run(
            [*base, "sha256sum", target], capture_output=True, env=_clean_env(), check=False
        )
        if probe.stdout.split(b" ")[0].decode() == hashlib.sha256(data).hexdigest():
            continue
        install = subprocess.run(
            [*base, "sudo", "-n", "install", "-D", "-m", "0644", "/dev/stdin", target],
            input=data,
            capture_output=True,
            env=_clean_env(),
            check=False,
        )
        if install.returncode != 0:
            say(f"error: cannot install the CA of {registry}: {install.stderr.decode().strip()}")
            return install.returncode
    return 0


EXIT_NO_POST_BUILD = 5  # the VM helper's "pre_build done, no post_build hook"
VM_CLEAN = "vm-clean"  # flag file in the private data dir: the VM's run directory is gone


def _hooks(ctx: Context) -> set[str] | None:
    """The hooks of the context (from the Dockerfile hand-over, updated after pre_build)."""
    path = Path(ctx.data["result_file"])
    if not path.exists():
        return None
    hooks = json.loads(path.read_text()).get("hooks")
    return None if hooks is None else set(hooks)


def post_build_pending(ctx: Context) -> bool:
    hooks = _hooks(ctx)
    return hooks is None or "post_build" in hooks


def mark_vm_clean(ctx: Context) -> None:
    (ctx.workdir / VM_CLEAN).write_text("")


def step_hook(ctx: Context, name: str) -> int:
    """Run a hook in the VM; skip the SSH round trip when the context has no such hook.

    After pre_build the helper says whether a post_build hook exists (a pre_build hook may
    create it); the post_build call also cleans the VM up (``hook-final``), which saves the
    cleanup step its own SSH + sudo + Python start in the guest.
    """
    found = _hooks(ctx)
    if name == "pre_build":
        if found is not None and name not in found:
            return 0
        rc = ctx.helper("hook", name, tty=True).returncode
        if rc in (0, EXIT_NO_POST_BUILD) and found is not None:
            post = {"post_build"} if rc == 0 else set()
            ctx.result(hooks=sorted((found - {"post_build"}) | post))
        return 0 if rc == EXIT_NO_POST_BUILD else rc
    if found is not None and name not in found:
        return 0
    rc = ctx.helper("hook-final", name, tty=True).returncode
    if rc == 0:
        mark_vm_clean(ctx)
    return rc


def step_cleanup(ctx: Context) -> int:
    if (ctx.workdir / VM_CLEAN).exists():  # done by the last step in the VM
        return 0
    rc = ctx.helper("cleanup", capture=True).returncode
    return rc


def main(argv: list[str]) -> int:
    if len(argv) < 2:
        say("usage: python -m securebuild.pipeline.steps STEP BUILD_JSON [HOOK]")
        return 64
    step, path = argv[0], Path(argv[1])
    ctx = Context(path)
    steps = {
        "fetch": step_fetch,
        "dockerfile": step_dockerfile,
        "image-content": step_image_content,
        "pull": step_pull,
        "build": step_build,
        "push": step_push,
        "cleanup": step_cleanup,
    }
    if step == "hook" and len(argv) == 3 and argv[2] in ("pre_build", "post_build"):
        return step_hook(ctx, argv[2])
    if step == "trust-cas":
        return step_trust_cas(ctx, argv[2:])
    if step not in steps:
        say(f"unknown step {step!r}")
        return 64
    return steps[step](ctx)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
