#!/usr/bin/python3
"""securebuild's helper inside a project VM: fetch, check, hooks, context, cleanup.

Installed by the control side (``securebuild.pipeline.steps.ensure_helper``) as the module
/usr/local/lib/securebuild/sb_vm_helper.py, imported (so its bytecode is cached) by the launcher
/usr/local/sbin/securebuild-vm-helper (``python3 -IS``), and run as root over SSH by the control
side with a *fixed* argv: ``sb-vm-helper <command> <run>``.
Every tenant string (git URI, ref, paths, Dockerfile, hook environment) arrives as JSON data in
``params.json`` inside the tar the control side sends on stdin to ``fetch``; nothing tenant
controlled is ever on a command line parsed by a shell. Programs are run with argv lists, as the
unprivileged user ``sbbuild`` where they touch tenant content (git, hooks).

Exit status tells the control side which OpenShift reason applies (see ``EXIT_*``). Only the
Python 3 standard library is used (the golden image has python3, git, tar, coreutils).
"""

from __future__ import annotations

import contextlib
import grp
import json
import os
import pwd
import shutil
import signal
import subprocess
import sys
import tarfile
import time
import urllib.parse
from pathlib import Path

RUNS = Path("/var/lib/securebuild/runs")
USER = "sbbuild"
EXIT_FETCH = 10  # FetchSourceFailed
EXIT_CONTEXT = 11  # InvalidContextDirectory
EXIT_DOCKERFILE = 12  # ManageDockerfileFailed
EXIT_SECRETS = 13  # DockerBuildFailed (secret/configmap copy errors, as OpenShift)
EXIT_IMAGE_CONTENT = 14  # FetchImageContentFailed
EXIT_HOOK = 20  # hook failed
EXIT_HOOK_TIMEOUT = 21  # hook exceeded its time limit
EXIT_NO_POST_BUILD = 5  # success: the pre_build hook is done and no post_build hook exists
EXIT_USAGE = 64
MAX_DOCKERFILE = 4 * 1024 * 1024


class Fail(Exception):
    def __init__(self, code: int, message: str) -> None:
        super().__init__(message)
        self.code = code


def say(line: str) -> None:
    sys.stdout.write(line + "\n")
    sys.stdout.flush()


def run_dir(run: str) -> Path:
    if not run.startswith("sb-") or "/" in run or run in (".", ".."):
        raise Fail(EXIT_USAGE, f"invalid run name {run!r}")
    return RUNS / run


def load_params(rdir: Path) -> dict:
    return json.loads((rdir / "in" / "params.json").read_text())


def ensure_user() -> tuple[int, int]:
    try:
        entry = pwd.getpwnam(USER)
    except KeyError:
        subprocess.run(
            [
                "useradd",
                "--system",
                "--create-home",
                "--home-dir",
                f"/home/{USER}",
                "--shell",
                "/bin/sh",
                USER,
            ],
            check=True,
        )
        entry = pwd.getpwnam(USER)
    with contextlib.suppress(KeyError):
        docker_gid = grp.getgrnam("docker").gr_gid
        if USER not in grp.getgrgid(docker_gid).gr_mem:
            subprocess.run(["usermod", "-aG", "docker", USER], check=True)
    return entry.pw_uid, entry.pw_gid


def as_user(argv: list[str]) -> list[str]:
    """argv run as the unprivileged build user, with its groups, no new privileges."""
    return [
        "setpriv",
        f"--reuid={USER}",
        f"--regid={USER}",
        "--init-groups",
        "--no-new-privs",
        "--",
        *argv,
    ]


def inside(base: Path, candidate: Path) -> bool:
    base_r = os.path.realpath(base)
    cand_r = os.path.realpath(candidate)
    return cand_r == base_r or cand_r.startswith(base_r + os.sep)


def chown_tree(path: Path, uid: int, gid: int) -> None:
    os.lchown(path, uid, gid)
    for root, dirs, files in os.walk(path):
        for name in dirs + files:
            os.lchown(os.path.join(root, name), uid, gid)


def stream(
    argv: list[str],
    env: dict[str, str] | None = None,
    cwd: Path | None = None,
    timeout: float | None = None,
    stdin: Path | None = None,
) -> int:
    """Run argv, passing its merged output through line by line; return the exit status."""
    source = open(stdin, "rb") if stdin is not None else subprocess.DEVNULL  # noqa: SIM115
    proc = subprocess.Popen(
        argv,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        stdin=source,
        env=env,
        cwd=cwd,
        start_new_session=True,
    )
    if stdin is not None:
        source.close()
    deadline = time.monotonic() + timeout if timeout else None
    assert proc.stdout is not None
    os.set_blocking(proc.stdout.fileno(), True)
    import selectors

    sel = selectors.DefaultSelector()
    sel.register(proc.stdout, selectors.EVENT_READ)
    buf = b""
    timed_out = False
    while True:
        wait = None if deadline is None else max(0.0, deadline - time.monotonic())
        if deadline is not None and wait == 0.0:
            timed_out = True
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            break
        events = sel.select(timeout=wait)
        if not events:
            continue
        chunk = os.read(proc.stdout.fileno(), 65536)
        if not chunk:
            break
        buf += chunk
        *lines, buf = buf.split(b"\n")
        for line in lines:
            say(line.decode("utf-8", "replace").rstrip("\r"))
    if buf:
        say(buf.decode("utf-8", "replace"))
    rc = proc.wait()
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)  # nothing of the process group outlives it
    return -9999 if timed_out else rc


# --- fetch ----------------------------------------------------------------------------------


def receive_inputs(rdir: Path) -> None:
    """Extract the control side's tar (params.json, secrets/*, binary/*) into <run>/in."""
    if rdir.exists():
        shutil.rmtree(rdir)
    RUNS.mkdir(parents=True, exist_ok=True)
    os.chmod(RUNS, 0o711)
    rdir.mkdir(mode=0o711)
    inp = rdir / "in"
    inp.mkdir(mode=0o700)
    with tarfile.open(fileobj=sys.stdin.buffer, mode="r|") as tar:
        for member in tar:
            name = member.name
            parts = Path(name).parts
            if (
                not member.isfile()
                or not parts
                or parts[0] not in ("params.json", "secrets", "binary")
                or ".." in parts
                or name.startswith("/")
                or len(parts) > 2
            ):
                raise Fail(EXIT_FETCH, f"unexpected input {name!r}")
            dest = inp / name
            dest.parent.mkdir(mode=0o700, exist_ok=True)
            src = tar.extractfile(member)
            assert src is not None
            fd = os.open(dest, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
            with os.fdopen(fd, "wb") as out:
                shutil.copyfileobj(src, out)


def git_env(rdir: Path, params: dict, uid: int, gid: int) -> tuple[dict[str, str], list[str]]:
    """Environment and ``-c`` options for git from the source secret (reference 1.2)."""
    git = params["git"]
    secret = params.get("sourceSecret") or {}
    sec_in = rdir / "in" / "secrets"
    gdir = rdir / "git"
    gdir.mkdir(mode=0o700, exist_ok=True)
    os.chown(gdir, uid, gid)
    env = {
        "PATH": "/usr/local/bin:/usr/bin:/bin",
        "HOME": str(gdir),
        "GIT_ASKPASS": "true",
        "GIT_TERMINAL_PROMPT": "0",
        "LANG": "C.UTF-8",
        "GIT_CONFIG_NOSYSTEM": "1",
    }
    opts: list[str] = []

    def material(key: str) -> Path | None:
        ident = secret.get(key)
        if not ident:
            return None
        dest = gdir / key.replace(".", "_").lstrip("_")
        shutil.copyfile(sec_in / ident, dest)
        os.chown(dest, uid, gid)
        os.chmod(dest, 0o600)
        return dest

    uri = git["uri"]
    parsed = urllib.parse.urlsplit(uri)
    if parsed.scheme in ("http", "https"):
        token = material("token")
        password = material("password")
        username = material("username")
        cred = token or password
        if cred is not None:
            user = username.read_text().strip() if username else (parsed.username or "builder")
            secret_value = cred.read_text().strip()
            host = parsed.hostname or ""
            if parsed.port:
                host = f"{host}:{parsed.port}"
            store = gdir / "credentials"
            line = (
                f"{parsed.scheme}://{urllib.parse.quote(user, safe='')}:"
                f"{urllib.parse.quote(secret_value, safe='')}@{host}\n"
            )
            fd = os.open(store, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(fd, "w") as out:
                out.write(line)
            os.chown(store, uid, gid)
            for path in (token, password, username):
                if path is not None:
                    path.unlink()
            opts += ["-c", f"credential.helper=store --file={store}"]
        ca = material("ca.crt")
        if ca is not None:
            opts += ["-c", f"http.sslCAInfo={ca}"]
    ssh_key = material("ssh-privatekey")
    if ssh_key is not None:
        known = material("known_hosts")
        checking = (
            f"-o UserKnownHostsFile={known} -o StrictHostKeyChecking=yes"
            if known is not None
            else "-o UserKnownHostsFile=/dev/null -o StrictHostKeyChecking=no"
        )
        env["GIT_SSH_COMMAND"] = (
            f"ssh -i {ssh_key} -o IdentitiesOnly=yes -o BatchMode=yes {checking}"
        )
    gitconfig = material(".gitconfig")
    if gitconfig is not None:
        shutil.move(str(gitconfig), gdir / ".gitconfig")
    if git.get("httpProxy"):
        opts += ["-c", f"http.proxy={git['httpProxy']}"]
    if git.get("httpsProxy"):
        opts += ["-c", f"https.proxy={git['httpsProxy']}"]
    if git.get("noProxy"):
        env["NO_PROXY"] = env["no_proxy"] = git["noProxy"]
    return env, opts


def strip_credentials(uri: str) -> str:
    parsed = urllib.parse.urlsplit(uri)
    if parsed.scheme in ("http", "https") and (parsed.username or parsed.password):
        netloc = parsed.hostname or ""
        if parsed.port:
            netloc += f":{parsed.port}"
        return urllib.parse.urlunsplit(parsed._replace(netloc=netloc))
    return uri


def fetch_git(rdir: Path, params: dict, uid: int, gid: int) -> None:
    git = params["git"]
    src = rdir / "src"
    env, opts = git_env(rdir, params, uid, gid)
    uri = strip_credentials(git["uri"])
    ref = git.get("ref") or ""
    commit = params.get("commit") or ""
    say(f'Cloning "{git["uri"]}" ...')

    def git_cmd(*args: str, cwd: Path | None = None) -> int:
        return stream(as_user(["git", *opts, *args]), env=env, cwd=cwd or rdir)

    src.mkdir(mode=0o755)
    os.chown(src, uid, gid)
    if not ref and not commit:
        rc = git_cmd("clone", "--quiet", "--depth=1", "--recursive", "--", uri, str(src))
        if rc != 0:
            raise Fail(EXIT_FETCH, f'failed to fetch requested repository "{git["uri"]}"')
    else:
        rc = git_cmd("clone", "--quiet", "--", uri, str(src))
        if rc != 0:
            raise Fail(EXIT_FETCH, f'failed to fetch requested repository "{git["uri"]}"')
        target = commit or ref
        if git_cmd("checkout", "--quiet", target, "--", cwd=src) != 0:
            say(f"Fetching {target} from origin")
            if (
                git_cmd("fetch", "--quiet", "origin", target, cwd=src) != 0
                or git_cmd("checkout", "--quiet", "FETCH_HEAD", "--", cwd=src) != 0
            ):
                raise Fail(EXIT_FETCH, f"unable to checkout {target!r}")
        if git_cmd("submodule", "update", "--quiet", "--init", "--recursive", cwd=src) != 0:
            raise Fail(EXIT_FETCH, "unable to update the submodules")
    # Credentials are gone from the VM before any tenant code runs (hooks, build).
    shutil.rmtree(rdir / "git", ignore_errors=True)
    info = source_info(src, ref, env)
    (rdir / "sourceinfo.json").write_text(json.dumps(info))
    subject = (info["message"].split("\n\n")[0].replace("\n", " "))[:80]
    say(f"\tCommit:\t{info['commit']} ({subject})")
    say(f"\tAuthor:\t{info['author_name']} <{info['author_email']}>")
    say(f"\tDate:\t{info['date']}")


def source_info(src: Path, ref: str, env: dict[str, str]) -> dict[str, str]:
    """Commit information as OpenShift's git-clone reads it (reference 3.3)."""

    def out(*args: str) -> str:
        proc = subprocess.run(
            as_user(["git", "-c", f"safe.directory={src}", *args]),
            cwd=src,
            env={**env, "HOME": "/nonexistent"},
            capture_output=True,
            text=True,
            check=False,
        )
        return proc.stdout.strip()

    return {
        "commit": out("rev-parse", "--verify", "HEAD"),
        "author_name": out("show", "-s", "--format=%an", "HEAD"),
        "author_email": out("show", "-s", "--format=%ae", "HEAD"),
        "committer_name": out("show", "-s", "--format=%cn", "HEAD"),
        "committer_email": out("show", "-s", "--format=%ce", "HEAD"),
        "date": out("show", "-s", "--format=%ad", "HEAD"),
        "message": out("show", "-s", "--format=%B", "HEAD"),
        "ref": ref or out("rev-parse", "--abbrev-ref", "HEAD"),
        "location": strip_credentials(out("config", "--get", "remote.origin.url")),
    }


def fetch_binary(rdir: Path, params: dict, uid: int, gid: int) -> None:
    src = rdir / "src"
    src.mkdir(mode=0o755)
    os.chown(src, uid, gid)
    binary = rdir / "in" / "binary" / "input"
    as_file = params["binary"].get("asFile")
    if as_file:
        say(f"Receiving source from STDIN as file {as_file}")
        dest = src / as_file
        shutil.copyfile(binary, dest)
        os.chown(dest, uid, gid)
        os.chmod(dest, 0o664)
    else:
        say("Receiving source from STDIN as archive ...")
        # extracted by the unprivileged user: no owners, devices or paths outside src
        moved = rdir / "binary.input"
        shutil.move(str(binary), moved)
        binary = moved
        os.chown(binary, uid, gid)
        with open(binary, "rb") as handle:
            magic = handle.read(4)
        if magic == b"PK\x03\x04":
            argv = ["busybox", "unzip", "-q", "-o", str(binary), "-d", str(src)]
        else:
            argv = [
                "tar",
                "-x",
                "--no-same-owner",
                "--no-same-permissions",
                "-f",
                str(binary),
                "-C",
                str(src),
            ]
        rc = stream(as_user(argv), cwd=src)
        if rc != 0:
            raise Fail(
                EXIT_FETCH,
                "unable to extract binary build input, must be a zip, tar, or gzipped tar, "
                "or specified as a file",
            )
    binary.unlink()


def context_dir(rdir: Path, params: dict) -> Path:
    src = rdir / "src"
    ctx = src / (params.get("contextDir") or ".")
    if not ctx.is_dir() or not inside(src, ctx):
        raise Fail(
            EXIT_CONTEXT,
            f"provided context directory does not exist: {params.get('contextDir') or '.'}",
        )
    return ctx


def cmd_fetch(run: str) -> None:
    rdir = run_dir(run)
    receive_inputs(rdir)
    params = load_params(rdir)
    uid, gid = ensure_user()
    if params.get("git"):
        fetch_git(rdir, params, uid, gid)
    elif params.get("binary"):
        fetch_binary(rdir, params, uid, gid)
    else:
        (rdir / "src").mkdir(mode=0o755)
        os.chown(rdir / "src", uid, gid)
    ctx = context_dir(rdir, params)
    if params.get("dockerfile") is not None:
        dest = ctx / "Dockerfile"
        if dest.is_symlink() or (dest.exists() and not dest.is_file()):
            raise Fail(EXIT_DOCKERFILE, "the context's Dockerfile is not a regular file")
        dest.write_text(params["dockerfile"])
        os.chmod(dest, 0o660)
        os.chown(dest, uid, gid)
    # Save the control side a round trip (a Python start in the guest): hand over the
    # Dockerfile now, on a line tagged with the run's nonce, unless image content may still
    # add files to the source. Problems are left to dockerfile-read, which reports them.
    # The control side answers on stdin with the rewritten Dockerfile (``<length>\n<bytes>``),
    # written here with the build secrets and config maps: ``dockerfile-write`` without a
    # call of its own. End of input instead: the dockerfile step will do it (or report why).
    marker = params.get("marker")
    if marker and not any(image.get("paths") for image in params.get("images") or []):
        try:
            say(f"{marker} {json.dumps(dockerfile_payload(rdir, params))}")
        except (Fail, OSError, ValueError):
            return
        data = read_frame()
        if data is not None:
            write_dockerfile(rdir, params, data)


def read_frame() -> bytes | None:
    """``<length>\n<bytes>`` from stdin; None at the end of input."""
    header = sys.stdin.buffer.readline(32)
    if not header.strip():
        return None
    size = int(header)
    if size > MAX_DOCKERFILE:
        raise Fail(EXIT_DOCKERFILE, "the rewritten Dockerfile is too large")
    data = sys.stdin.buffer.read(size)
    if len(data) != size:
        raise Fail(EXIT_DOCKERFILE, "the rewritten Dockerfile was cut short")
    return data


# --- Dockerfile and secrets -----------------------------------------------------------------


def dockerfile_path(rdir: Path, params: dict) -> Path:
    ctx = context_dir(rdir, params)
    path = ctx / (params.get("dockerfilePath") or "Dockerfile")
    if not inside(ctx, path) or path.is_symlink() or not path.is_file():
        raise Fail(
            EXIT_DOCKERFILE,
            f"no Dockerfile at {params.get('dockerfilePath') or 'Dockerfile'} in the context "
            "(missing, not a regular file, or outside the context directory)",
        )
    return path


def cmd_dockerfile_read(run: str) -> None:
    rdir = run_dir(run)
    sys.stdout.write(json.dumps(dockerfile_payload(rdir, load_params(rdir))))


def dockerfile_payload(rdir: Path, params: dict) -> dict:
    """The Dockerfile, the commit information and which hooks exist, for the control side."""
    path = dockerfile_path(rdir, params)
    data = path.read_bytes()
    if len(data) > MAX_DOCKERFILE:
        raise Fail(EXIT_DOCKERFILE, "the Dockerfile is larger than 4 MiB")
    info_path = rdir / "sourceinfo.json"
    info = json.loads(info_path.read_text()) if info_path.exists() else None
    ctx = context_dir(rdir, params)
    hooks = [name for name in ("pre_build", "post_build") if (ctx / ".d2i" / name).exists()]
    return {"dockerfile": data.decode("utf-8", "replace"), "sourceinfo": info, "hooks": hooks}


def safe_destination(ctx: Path, rel: str) -> Path:
    dest = ctx / (rel or ".")
    # create each component without following symlinks planted by the tenant
    current = ctx
    for part in Path(rel or ".").parts:
        if part in (".", ""):
            continue
        current = current / part
        if current.is_symlink():
            raise Fail(EXIT_SECRETS, f"destination directory {rel!r} leaves the context (symlink)")
        if not current.exists():
            current.mkdir(mode=0o755)
    if not inside(ctx, dest):
        raise Fail(EXIT_SECRETS, f"destination directory {rel!r} leaves the context")
    return dest


def write_exclusive(dest: Path, data: bytes, uid: int, gid: int) -> None:
    if dest.is_symlink():
        raise Fail(EXIT_SECRETS, f"refusing to write through the symlink {dest.name!r}")
    with contextlib.suppress(FileNotFoundError):
        if dest.is_dir():
            raise Fail(EXIT_SECRETS, f"{dest.name!r} is a directory in the context")
        dest.unlink()
    fd = os.open(dest, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o644)
    with os.fdopen(fd, "wb") as out:
        out.write(data)
    os.chown(dest, uid, gid)


def cmd_dockerfile_write(run: str) -> None:
    """Write the rewritten Dockerfile (stdin), then copy build secrets and config maps in."""
    rdir = run_dir(run)
    params = load_params(rdir)
    data = sys.stdin.buffer.read(MAX_DOCKERFILE + 1)
    if len(data) > MAX_DOCKERFILE:
        raise Fail(EXIT_DOCKERFILE, "the rewritten Dockerfile is too large")
    write_dockerfile(rdir, params, data)


def write_dockerfile(rdir: Path, params: dict, data: bytes) -> None:
    uid, gid = ensure_user()
    path = dockerfile_path(rdir, params)
    write_exclusive(path, data, uid, gid)
    ctx = context_dir(rdir, params)
    placed: list[str] = []
    for item in params.get("secrets") or []:
        dest = safe_destination(ctx, item.get("destinationDir") or "")
        for key, ident in sorted(item["files"].items()):
            write_exclusive(dest / key, (rdir / "in" / "secrets" / ident).read_bytes(), uid, gid)
            placed.append(str((dest / key).relative_to(ctx)))
        say(f"Copied secret {item['name']} into {item.get('destinationDir') or '.'}")
    for item in params.get("configMaps") or []:
        dest = safe_destination(ctx, item.get("destinationDir") or "")
        for key, text in sorted(item["files"].items()):
            write_exclusive(dest / key, text.encode(), uid, gid)
        say(f"Copied config map {item['name']} into {item.get('destinationDir') or '.'}")
    (rdir / "placed-secrets.json").write_text(json.dumps(placed))
    shutil.rmtree(rdir / "in" / "secrets", ignore_errors=True)


# --- image content --------------------------------------------------------------------------


def cmd_image_content(run: str, index: str, pindex: str) -> None:
    """Extract a tar (stdin, the image path read by the control side) into destinationDir."""
    rdir = run_dir(run)
    params = load_params(rdir)
    uid, gid = ensure_user()
    entry = params["images"][int(index)]["paths"][int(pindex)]
    src = rdir / "src"
    dest = safe_destination(src, entry.get("destinationDir") or "")
    os.chown(dest, uid, gid)
    proc = subprocess.run(
        as_user(["tar", "-x", "--no-same-owner", "-C", str(dest)]),
        stdin=sys.stdin.buffer,
        capture_output=True,
        check=False,
    )
    if proc.returncode != 0:
        raise Fail(
            EXIT_IMAGE_CONTENT,
            f"error copying source path {entry.get('sourcePath')} to "
            f"{entry.get('destinationDir')}: " + proc.stderr.decode("utf-8", "replace").strip(),
        )


# --- hooks ----------------------------------------------------------------------------------


def cmd_hook(run: str, name: str) -> None:
    """Run a hook; after pre_build, exit EXIT_NO_POST_BUILD when there is no post_build hook.

    (The control side then skips the post_build call and cleans up with the context: one
    SSH + sudo + Python start less in the guest.)
    """
    if name not in ("pre_build", "post_build"):
        raise Fail(EXIT_USAGE, f"unknown hook {name!r}")
    rdir = run_dir(run)
    params = load_params(rdir)
    ensure_user()
    ctx = context_dir(rdir, params)
    run_hook(ctx, params, name)
    post = ctx / ".d2i" / "post_build"
    if name == "pre_build" and not post.exists() and not post.is_symlink():
        raise SystemExit(EXIT_NO_POST_BUILD)


def cmd_hook_final(run: str, name: str) -> None:
    """The last step in the VM: run the hook, then clean up (see ``cmd_cleanup``) whatever
    the hook did."""
    try:
        cmd_hook(run, name)
    finally:
        cleanup(run)


def run_hook(ctx: Path, params: dict, name: str) -> None:
    hook = ctx / ".d2i" / name
    if not hook.exists() and not hook.is_symlink():
        return
    if not inside(ctx, hook) or not hook.is_file():
        raise Fail(EXIT_HOOK, f"hook .d2i/{name} is not a regular file inside the context")
    if not os.access(hook, os.X_OK):
        raise Fail(EXIT_HOOK, f"hook .d2i/{name} is not executable")
    hooks = params.get("hooks") or {}
    env = {
        "PATH": "/usr/local/bin:/usr/bin:/bin",
        "HOME": f"/home/{USER}",
        "LANG": "C.UTF-8",
        "DOCKER_HOST": "unix:///var/run/docker.sock",
        **{str(k): str(v) for k, v in (hooks.get("env") or {}).items()},
    }
    timeout = float(hooks.get("timeout") or 600)
    dockerfile = str(ctx / (params.get("dockerfilePath") or "Dockerfile"))
    say(f"Running hook .d2i/{name}")
    rc = stream(
        as_user([str(hook), dockerfile, hooks.get("image") or ""]),
        env=env,
        cwd=ctx,
        timeout=timeout,
    )
    if rc == -9999:
        raise Fail(EXIT_HOOK_TIMEOUT, f"hook .d2i/{name} did not finish within {timeout:.0f} s")
    if rc != 0:
        raise Fail(EXIT_HOOK, f"hook .d2i/{name} failed with exit status {rc}")


# --- context and cleanup --------------------------------------------------------------------


def tar_argv(ctx: Path) -> list[str]:
    """The build context as a tar on stdout (symlinks kept as links, not followed)."""
    return ["tar", "-C", str(ctx), "-c", "--numeric-owner", "-f", "-", "."]


def cmd_context(run: str) -> None:
    rdir = run_dir(run)
    ctx = context_dir(rdir, load_params(rdir))
    os.execvp("tar", tar_argv(ctx))


def cmd_context_final(run: str) -> None:
    """The context (as ``context``), then the cleanup: when no post_build hook is left to run.

    stdout is closed as soon as tar is done, so the build does not wait for the cleanup.
    """
    rdir = run_dir(run)
    try:
        ctx = context_dir(rdir, load_params(rdir))
        rc = subprocess.run(tar_argv(ctx), stdin=subprocess.DEVNULL, check=False).returncode
        sys.stdout.flush()
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, 1)  # end of the stream for the control side
        os.close(devnull)
    finally:
        cleanup(run)
    if rc != 0:
        raise SystemExit(rc)  # as ``context``: tar's status, its message went to stderr


def cleanup(run: str) -> Path:
    """Stop every process of the build user and remove the run's directory (secrets included)."""
    with contextlib.suppress(KeyError):
        pwd.getpwnam(USER)
        subprocess.run(["pkill", "-KILL", "-u", USER], check=False)
    rdir = run_dir(run)
    if rdir.exists():
        shutil.rmtree(rdir, ignore_errors=True)
    return rdir


def cmd_cleanup(run: str) -> None:
    say(f"removed {cleanup(run)}")


def main(argv: list[str]) -> int:
    commands = {
        "fetch": (cmd_fetch, 1),
        "dockerfile-read": (cmd_dockerfile_read, 1),
        "dockerfile-write": (cmd_dockerfile_write, 1),
        "image-content": (cmd_image_content, 3),
        "hook": (cmd_hook, 2),
        "hook-final": (cmd_hook_final, 2),
        "context": (cmd_context, 1),
        "context-final": (cmd_context_final, 1),
        "cleanup": (cmd_cleanup, 1),
    }
    if len(argv) < 2 or argv[0] not in commands or len(argv) - 1 != commands[argv[0]][1]:
        sys.stderr.write(f"usage: sb-vm-helper {{{','.join(commands)}}} RUN [ARGS]\n")
        return EXIT_USAGE
    func, _nargs = commands[argv[0]]
    os.umask(0o022)
    try:
        func(*argv[1:])
    except Fail as exc:
        say(f"error: {exc}")
        return exc.code
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
