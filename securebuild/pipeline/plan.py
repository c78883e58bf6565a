"""A Build (API JSON) and its secrets -> the variables and secret files of one build run.

Why a separate, pure step: everything tenant controlled is checked here, in Python, before any
program runs (DESIGN section 9): names, git URI and ref, paths (relative, no ``..``), file names,
image references, build-arg and label names. What passes is handed to Ansible only as data that
the runner marks unsafe; secret values only as files in the run's private data dir. Nothing in
the plan is ever part of a shell string.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import PurePosixPath
from typing import Any

from securebuild.errors import SecurebuildError

_DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$")
_DNS_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?$")
_ENV_NAME = re.compile(r"^[-._a-zA-Z][-._a-zA-Z0-9]*$")
_LABEL_NAME = re.compile(
    r"^([a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?/)?[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?$"
)
_SECRET_KEY = re.compile(r"^[-._a-zA-Z0-9]{1,253}$")
_GIT_REF = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9._/@+^~-]{0,254}$")
_COMMIT = re.compile(r"^[0-9a-fA-F]{4,64}$")
_URL = re.compile(r"^(https?|ssh)://[^\s\x00-\x1f\x7f]+$")
_SCP_LIKE = re.compile(r"^[A-Za-z0-9._-]+@[A-Za-z0-9.-]+:[^\s\x00-\x1f\x7f]+$")
_IMAGE_REF = re.compile(
    r"^(?:[a-zA-Z0-9.-]+(?::[0-9]+)?/)?[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*"
    r"(?:/[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*)*(?::[\w][\w.-]{0,127})?(?:@sha256:[0-9a-f]{64})?$"
)
_PROXY = re.compile(r"^https?://[^\s\x00-\x1f\x7f]+$")
MAX_INLINE_DOCKERFILE = 60000
DEFAULT_HOOK_TIMEOUT = 600


class PlanError(SecurebuildError):
    """The Build cannot run as given; the message names the field."""


@dataclass(frozen=True)
class SecretData:
    """A Secret or ConfigMap as key -> bytes (local runs: read from a directory)."""

    name: str
    data: Mapping[str, bytes]


@dataclass(frozen=True)
class BuildPlan:
    namespace: str
    name: str
    tenant: dict[str, Any]  # the value of the single tenant variable ``securebuild_build``
    secrets: dict[str, bytes] = field(default_factory=dict)  # runner secret files
    output_ref: str | None = None
    binary_path: str | None = None  # control-side file sent to the VM as the binary input


def _fail(path: str, problem: str) -> PlanError:
    return PlanError(f"{path}: {problem}")


def _str(value: Any, path: str, *, required: bool = False) -> str:
    if value is None or value == "":
        if required:
            raise _fail(path, "is required")
        return ""
    if not isinstance(value, str):
        raise _fail(path, "must be a string")
    if any(ord(ch) < 32 and ch not in "\t\n" for ch in value) or "\x7f" in value:
        raise _fail(path, "must not contain control characters")
    return value


def relative_path(value: Any, path: str) -> str:
    """A relative path without ``..`` (contextDir, dockerfilePath, destinationDir)."""
    text = _str(value, path)
    if not text:
        return ""
    pure = PurePosixPath(text)
    if pure.is_absolute() or ".." in pure.parts or "\n" in text or "\t" in text:
        raise _fail(path, f"must be a relative path without '..', got {text!r}")
    cleaned = str(pure)
    return "" if cleaned == "." else cleaned


def plain_file_name(value: Any, path: str) -> str:
    text = _str(value, path)
    if text in ("", ".", "..") or "/" in text or "\n" in text:
        raise _fail(path, f"must be a plain file name, got {text!r}")
    return text


def git_uri(value: Any, path: str) -> str:
    text = _str(value, path, required=True)
    if text.startswith("-") or not (_URL.match(text) or _SCP_LIKE.match(text)):
        raise _fail(path, f"is not a git URL: {text!r}")
    return text


def image_ref(value: Any, path: str) -> str:
    text = _str(value, path, required=True)
    if not _IMAGE_REF.match(text):
        raise _fail(path, f"is not an image reference: {text!r}")
    return text


def registry_of(reference: str) -> str:
    """The registry host[:port] of an image reference (Docker Hub's name when none)."""
    first, sep, _rest = reference.partition("/")
    if sep and ("." in first or ":" in first or first == "localhost"):
        return first
    return "docker.io"


def docker_auths(secret: SecretData, path: str) -> dict[str, dict[str, str]]:
    """Registry credentials of a dockercfg / dockerconfigjson secret, by registry host[:port]."""
    raw: Any
    if ".dockerconfigjson" in secret.data:
        raw = json.loads(secret.data[".dockerconfigjson"]).get("auths", {})
    elif ".dockercfg" in secret.data:
        raw = json.loads(secret.data[".dockercfg"])
    else:
        raise _fail(path, f"secret {secret.name} holds no .dockerconfigjson or .dockercfg")
    auths: dict[str, dict[str, str]] = {}
    for registry, entry in raw.items():
        host = re.sub(r"^https?://", "", str(registry)).split("/")[0]
        username = str(entry.get("username") or "")
        password = str(entry.get("password") or "")
        if not username and entry.get("auth"):
            try:
                decoded = base64.b64decode(str(entry["auth"])).decode()
            except (binascii.Error, UnicodeDecodeError) as exc:
                raise _fail(path, f"secret {secret.name}: bad auth for {host}") from exc
            username, _, password = decoded.partition(":")
        if username:
            auths[host] = {"username": username, "password": password}
    return auths


class _Secrets:
    """Collects runner secret files: VM-bound ones get ids ``vm-N``; values are kept for masking."""

    def __init__(self) -> None:
        self.files: dict[str, bytes] = {}

    def add(self, data: bytes, prefix: str = "vm") -> str:
        ident = f"{prefix}-{len(self.files)}"
        self.files[ident] = data
        return ident


def _lookup(
    store: Mapping[str, SecretData], name: Any, path: str, kind: str, missing: list[str]
) -> SecretData | None:
    text = _str(name, path, required=True)
    if not _DNS_SUBDOMAIN.match(text):
        raise _fail(path, f"is not a valid {kind} name: {text!r}")
    found = store.get(text)
    if found is None:
        missing.append(text)
    return found


def _secret_auths(
    secrets: Mapping[str, SecretData], ref: Any, path: str, missing: list[str]
) -> dict[str, dict[str, str]] | None:
    """Registry credentials of the dockercfg secret that ``ref`` (at ``path``) names.

    None when the secret does not exist (it is added to ``missing``).
    """
    found = _lookup(secrets, (ref or {}).get("name"), f"{path}.name", "secret", missing)
    return None if found is None else docker_auths(found, path)


def _source_inputs(
    items: Any,
    list_path: str,
    ref_key: str,
    objects: Mapping[str, SecretData],
    missing: list[str],
    content: Callable[[bytes], str],
) -> list[dict[str, Any]]:
    """``spec.source.secrets`` or ``configMaps``: each named object's keys as files.

    ``content`` turns a value into what the playbook gets (a secret file id, or the text of a
    config map). Keys starting with ``..`` (a mounted volume's internals) and keys that are no
    valid key names are left out; unknown objects are added to ``missing``.
    """
    kind = "secret" if ref_key == "secret" else "config map"
    result: list[dict[str, Any]] = []
    for i, item in enumerate(items or []):
        path = f"{list_path}[{i}]"
        found = _lookup(
            objects, (item.get(ref_key) or {}).get("name"), f"{path}.{ref_key}.name", kind, missing
        )
        if found is None:
            continue
        result.append(
            {
                "name": found.name,
                "destinationDir": relative_path(
                    item.get("destinationDir"), f"{path}.destinationDir"
                ),
                "files": {
                    key: content(value)
                    for key, value in sorted(found.data.items())
                    if not key.startswith("..") and _SECRET_KEY.match(key)
                },
            }
        )
    return result


def make_plan(
    build: Mapping[str, Any],
    *,
    secrets: Mapping[str, SecretData],
    config_maps: Mapping[str, SecretData],
    binary_path: str | None = None,
    binary_as_file: str | None = None,
    hook_timeout: int = DEFAULT_HOOK_TIMEOUT,
) -> BuildPlan:
    """Check ``build`` (a Build's JSON) and produce the run's data and secret files."""
    meta = build.get("metadata") or {}
    name = _str(meta.get("name"), "metadata.name", required=True)
    namespace = _str(meta.get("namespace"), "metadata.namespace", required=True)
    if not _DNS_SUBDOMAIN.match(name):
        raise _fail("metadata.name", f"is not a DNS-1123 subdomain: {name!r}")
    if not _DNS_LABEL.match(namespace):
        raise _fail("metadata.namespace", f"is not a DNS-1123 label: {namespace!r}")
    spec = build.get("spec") or {}
    strategy = spec.get("strategy") or {}
    if strategy.get("type") not in (None, "Docker"):
        raise _fail("spec.strategy.type", f"must be Docker, got {strategy.get('type')!r}")
    docker = strategy.get("dockerStrategy") or {}
    source = spec.get("source") or {}
    store = _Secrets()
    missing_secrets: list[str] = []
    missing_cms: list[str] = []

    # -- source -------------------------------------------------------------------------
    git = source.get("git")
    binary = source.get("binary")
    inline = source.get("dockerfile")
    images = source.get("images") or []
    if binary_path is not None:
        binary = {"asFile": binary_as_file} if binary_as_file else dict(binary or {})
        git = None  # the generator clears git for binary requests (reference 5.1)
    elif binary is not None:
        raise _fail(
            "spec.source.binary",
            "a binary build needs its input: --from-dir, --from-archive or --from-file",
        )
    if git and binary is not None:
        raise _fail("spec.source", "git and binary are mutually exclusive")
    if not (git or binary is not None or inline is not None or images):
        raise _fail(
            "spec.source",
            "must provide a value for at least one of source, binary, images, or dockerfile",
        )
    params: dict[str, Any] = {
        "contextDir": relative_path(source.get("contextDir"), "spec.source.contextDir"),
        "dockerfilePath": relative_path(
            docker.get("dockerfilePath"), "spec.strategy.dockerStrategy.dockerfilePath"
        )
        or "Dockerfile",
        "git": None,
        "binary": None,
        "dockerfile": None,
        "commit": "",
        "sourceSecret": {},
        "secrets": [],
        "configMaps": [],
        "images": [],
    }
    if git:
        params["git"] = {
            "uri": git_uri(git.get("uri"), "spec.source.git.uri"),
            "ref": _str(git.get("ref"), "spec.source.git.ref"),
            "httpProxy": _str(git.get("httpProxy"), "spec.source.git.httpProxy"),
            "httpsProxy": _str(git.get("httpsProxy"), "spec.source.git.httpsProxy"),
            "noProxy": _str(git.get("noProxy"), "spec.source.git.noProxy"),
        }
        ref = params["git"]["ref"]
        if ref and not _GIT_REF.match(ref):
            raise _fail("spec.source.git.ref", f"is not a valid git ref: {ref!r}")
        for key in ("httpProxy", "httpsProxy"):
            if params["git"][key] and not _PROXY.match(params["git"][key]):
                raise _fail(f"spec.source.git.{key}", "must be an http(s) URL")
        commit = ((spec.get("revision") or {}).get("git") or {}).get("commit")
        if commit:
            if not _COMMIT.match(str(commit)):
                raise _fail("spec.revision.git.commit", f"is not a commit id: {commit!r}")
            params["commit"] = str(commit)
        if source.get("sourceSecret"):
            found = _lookup(
                secrets,
                (source["sourceSecret"] or {}).get("name"),
                "spec.source.sourceSecret.name",
                "secret",
                missing_secrets,
            )
            if found is not None:
                known = ("username", "password", "token", "ssh-privatekey", "known_hosts")
                for key in (*known, "ca.crt", ".gitconfig"):
                    if key in found.data:
                        params["sourceSecret"][key] = store.add(found.data[key])
    if binary is not None:
        as_file = binary.get("asFile")
        params["binary"] = {
            "asFile": plain_file_name(as_file, "spec.source.binary.asFile") if as_file else ""
        }
    if inline is not None:
        text = _str(inline, "spec.source.dockerfile")
        if len(text.encode()) > MAX_INLINE_DOCKERFILE:
            raise _fail("spec.source.dockerfile", "is longer than 60000 bytes")
        if not (binary is not None and params["binary"]["asFile"] == "Dockerfile"):
            params["dockerfile"] = text
    pull_auths: dict[str, dict[str, str]] = {}
    if docker.get("pullSecret"):
        pull_auths = (
            _secret_auths(
                secrets,
                docker["pullSecret"],
                "spec.strategy.dockerStrategy.pullSecret",
                missing_secrets,
            )
            or {}
        )
    for i, image in enumerate(images):
        path = f"spec.source.images[{i}]"
        ref_obj = image.get("from") or {}
        if ref_obj.get("kind") not in (None, "DockerImage"):
            raise _fail(f"{path}.from.kind", "only DockerImage can be resolved without a cluster")
        entry: dict[str, Any] = {
            "from": image_ref(ref_obj.get("name"), f"{path}.from.name"),
            "as": [_str(a, f"{path}.as") for a in image.get("as") or []],
            "paths": [],
            "pullAuths": {},
        }
        for j, item in enumerate(image.get("paths") or []):
            src_path = _str(item.get("sourcePath"), f"{path}.paths[{j}].sourcePath", required=True)
            if not src_path.startswith("/") or ".." in PurePosixPath(src_path).parts:
                raise _fail(f"{path}.paths[{j}].sourcePath", "must be an absolute path")
            entry["paths"].append(
                {
                    "sourcePath": src_path,
                    "destinationDir": relative_path(
                        item.get("destinationDir"), f"{path}.paths[{j}].destinationDir"
                    ),
                }
            )
        if image.get("pullSecret"):
            auths = _secret_auths(
                secrets, image["pullSecret"], f"{path}.pullSecret", missing_secrets
            )
            if auths is not None:
                entry["pullAuths"] = {"id": store.add(json.dumps(auths).encode(), "ctl")}
        params["images"].append(entry)
    params["secrets"] = _source_inputs(
        source.get("secrets"),
        "spec.source.secrets",
        "secret",
        secrets,
        missing_secrets,
        store.add,
    )
    params["configMaps"] = _source_inputs(
        source.get("configMaps"),
        "spec.source.configMaps",
        "configMap",
        config_maps,
        missing_cms,
        lambda value: value.decode("utf-8", "replace"),
    )

    # -- output --------------------------------------------------------------------------
    output = spec.get("output") or {}
    to = output.get("to") or {}
    output_ref: str | None = None
    push_auth: dict[str, str] | None = None
    if to.get("name"):
        if to.get("kind") not in (None, "DockerImage"):
            raise _fail(
                "spec.output.to.kind",
                f"{to.get('kind')} needs a cluster to resolve; "
                "use kind DockerImage for a local run",
            )
        output_ref = image_ref(to.get("name"), "spec.output.to.name")
        if "@" in output_ref:
            raise _fail("spec.output.to.name", "must be a tag, not a digest")
        if output.get("pushSecret"):
            auths = _secret_auths(
                secrets, output["pushSecret"], "spec.output.pushSecret", missing_secrets
            )
            if auths is not None:
                push_auth = auths.get(registry_of(output_ref))
    for i, label in enumerate(output.get("imageLabels") or []):
        lname = _str(label.get("name"), f"spec.output.imageLabels[{i}].name", required=True)
        if not _LABEL_NAME.match(lname):
            raise _fail(f"spec.output.imageLabels[{i}].name", f"is not a qualified name: {lname!r}")

    if missing_secrets or missing_cms:
        raise PlanError(
            "These resources do not exist: "
            + " ".join(
                part
                for part in (
                    f"ConfigMaps [{', '.join(missing_cms)}]" if missing_cms else "",
                    f"Secrets [{', '.join(missing_secrets)}]" if missing_secrets else "",
                )
                if part
            )
        )

    # -- strategy ------------------------------------------------------------------------
    build_args = []
    for i, arg in enumerate(docker.get("buildArgs") or []):
        aname = _str(
            arg.get("name"), f"spec.strategy.dockerStrategy.buildArgs[{i}].name", required=True
        )
        if not _ENV_NAME.match(aname):
            raise _fail(
                f"spec.strategy.dockerStrategy.buildArgs[{i}].name", f"invalid name {aname!r}"
            )
        build_args.append({"name": aname, "value": _str(arg.get("value"), "buildArgs.value")})
    for i, env in enumerate(docker.get("env") or []):
        ename = _str(env.get("name"), f"spec.strategy.dockerStrategy.env[{i}].name", required=True)
        if not _ENV_NAME.match(ename):
            raise _fail(f"spec.strategy.dockerStrategy.env[{i}].name", f"invalid name {ename!r}")
        if env.get("valueFrom"):
            raise _fail(
                f"spec.strategy.dockerStrategy.env[{i}].valueFrom",
                "is resolved by the cluster; give a value for a local run",
            )
    from_ref = docker.get("from") or {}
    if from_ref.get("name"):
        if from_ref.get("kind") not in (None, "DockerImage"):
            raise _fail(
                "spec.strategy.dockerStrategy.from.kind",
                f"{from_ref.get('kind')} needs a cluster to resolve; use kind DockerImage",
            )
        image_ref(from_ref.get("name"), "spec.strategy.dockerStrategy.from.name")

    hook_env = {"OPENSHIFT_BUILD_NAME": name, "OPENSHIFT_BUILD_NAMESPACE": namespace}
    if params["git"]:
        hook_env["OPENSHIFT_BUILD_SOURCE"] = params["git"]["uri"]
        if params["git"]["ref"]:
            hook_env["OPENSHIFT_BUILD_REFERENCE"] = params["git"]["ref"]
    params["hooks"] = {"timeout": hook_timeout, "env": hook_env, "image": output_ref or ""}

    secret_files = dict(store.files)
    if pull_auths:
        secret_files["ctl-pull-auths"] = json.dumps(pull_auths).encode()
        for n, entry in enumerate(pull_auths.values()):
            secret_files[f"mask-pull-{n}"] = entry["password"].encode()
    if push_auth:
        secret_files["ctl-push-auth"] = json.dumps(push_auth).encode()
        secret_files["mask-push"] = push_auth["password"].encode()

    tenant = {
        "build": dict(build),
        "params": params,
        "output": output_ref or "",
        "buildArgs": build_args,
        "noCache": bool(docker.get("noCache")),
        "forcePull": bool(docker.get("forcePull")),
    }
    return BuildPlan(
        namespace=namespace,
        name=name,
        tenant=tenant,
        secrets=secret_files,
        output_ref=output_ref,
        binary_path=binary_path,
    )
