"""The daemon's one YAML config file (DESIGN section 6), validated on start.

Every problem names its key (``limits.max_concurrent_builds: must be an integer >= 1``), all
problems are reported at once, unknown keys are errors (a typo must not silently fall back to a
default). Relative paths are relative to the config file's directory.

Example (every key optional except ``cluster``)::

    cluster:
      kubeconfig: /etc/securebuild/kubeconfig   # or: in_cluster: true
      context: null
      proxy: null                # explicit; HTTPS_PROXY in the environment is never used
    identity: null               # default: <hostname>-<random>, new on every start
    namespace_selector: securebuild.appuio.ch/enabled=true
    inventory: /etc/securebuild/inventory
    executor:
      # vm: each build runs playbooks/build.yml in its project's VM, placed and started by the
      # fleet on the inventory's build hosts. playbook: `playbook` runs on `inventory` as it is
      # (a stand-in build for tests and for trying the daemon without VMs).
      mode: vm
      project_dir: /usr/share/securebuild       # holds playbooks/, roles/
      playbook: playbooks/build.yml             # mode playbook only
      cleanup_playbook: playbooks/build-cleanup.yml   # mode playbook only; null: no cleanup run
      hook_timeout_seconds: 600                 # each .d2i hook in the VM
      registry_cas:                             # CA the VMs' dockerd trusts, per registry
        registry.example.net:5000: /etc/securebuild/registry-ca.crt
    limits:
      max_concurrent_builds: 4   # on this daemon
      builds_per_project: 1      # running at once in one namespace, over all daemons
    timeouts:
      lease_seconds: 60
      watch_inactivity_seconds: 70
      request_seconds: 30
      default_completion_deadline_seconds: 604800
    state_dir: /var/lib/securebuild
    log_dir: null                # default: <state_dir>/logs
    log_retention_days: 7
    output_registry: null        # host[:port] ImageStreamTag outputs are pushed to
    # Record pushed images in ImageStream status tags. Only for a plain registry: OpenShift's
    # integrated registry does it itself on push (reference 7.2), never turn it on there.
    record_imagestream_tags: false
    api:
      listen: 127.0.0.1:8443     # null: no HTTPS API
      tls_cert: null
      tls_key: null
      advertise_url: null        # e.g. https://${POD_IP}:8443: replicas forward log requests
      peer_ca: null              # CA of the other replicas' API certificates (default tls_cert)
"""

from __future__ import annotations

import os
import secrets
import socket
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from securebuild.errors import SecurebuildError

DEFAULT_SELECTOR = "securebuild.appuio.ch/enabled=true"


class ConfigError(SecurebuildError):
    """The config file is unreadable or invalid; the message lists every problem by key."""


@dataclass(frozen=True)
class ClusterConfig:
    kubeconfig: Path | None = None
    context: str | None = None
    in_cluster: bool = False
    proxy: str | None = None


EXECUTOR_MODES = ("vm", "playbook")


@dataclass(frozen=True)
class ExecutorConfig:
    mode: str = "vm"
    project_dir: Path | None = None
    playbook: str = "playbooks/build.yml"
    cleanup_playbook: str | None = "playbooks/build-cleanup.yml"
    hook_timeout_seconds: int = 600
    registry_cas: Mapping[str, Path] = field(default_factory=dict)


@dataclass(frozen=True)
class Limits:
    max_concurrent_builds: int = 4
    builds_per_project: int = 1


@dataclass(frozen=True)
class Timeouts:
    lease_seconds: float = 60.0
    watch_inactivity_seconds: float = 70.0
    request_seconds: float = 30.0
    default_completion_deadline_seconds: int = 604800


@dataclass(frozen=True)
class ApiConfig:
    listen: str | None = None
    tls_cert: Path | None = None
    tls_key: Path | None = None
    #: How other replicas reach this one (``${VAR}`` from the environment, e.g. a pod IP).
    advertise_url: str | None = None
    #: Trust anchor for other replicas' API certificates (default: tls_cert, shared by all).
    peer_ca: Path | None = None


@dataclass(frozen=True)
class DaemonConfig:
    cluster: ClusterConfig
    identity: str = ""
    namespace_selector: str = DEFAULT_SELECTOR
    inventory: Path | None = None
    executor: ExecutorConfig = field(default_factory=ExecutorConfig)
    limits: Limits = field(default_factory=Limits)
    timeouts: Timeouts = field(default_factory=Timeouts)
    state_dir: Path = Path("/var/lib/securebuild")
    log_dir: Path | None = None
    log_retention_days: float = 7.0
    output_registry: str | None = None
    record_imagestream_tags: bool = False
    api: ApiConfig = field(default_factory=ApiConfig)

    @property
    def logs(self) -> Path:
        return self.log_dir or self.state_dir / "logs"


def default_identity() -> str:
    return f"{socket.gethostname()}-{secrets.token_hex(4)}"


class _Reader:
    """Typed reads from one mapping that collect problems instead of raising."""

    def __init__(self, data: Mapping[str, Any], prefix: str, base: Path, problems: list[str]):
        self.data = data
        self.prefix = prefix
        self.base = base
        self.problems = problems
        self.used: set[str] = set()

    def key(self, name: str) -> str:
        return f"{self.prefix}{name}"

    def _get(self, name: str) -> Any:
        self.used.add(name)
        return self.data.get(name)

    def problem(self, name: str, text: str) -> None:
        self.problems.append(f"{self.key(name)}: {text}")

    def string(self, name: str, default: str | None = None) -> str | None:
        value = self._get(name)
        if value is None:
            return default
        if not isinstance(value, str) or not value.strip():
            self.problem(name, "must be a non-empty string")
            return default
        return value

    def path(self, name: str, default: Path | None = None) -> Path | None:
        value = self.string(name)
        if value is None:
            return default
        path = Path(value).expanduser()
        return path if path.is_absolute() else (self.base / path)

    def path_map(self, name: str) -> dict[str, Path]:
        """A mapping of names to existing files (relative to the config file's directory)."""
        value = self._get(name)
        if value is None:
            return {}
        if not isinstance(value, Mapping):
            self.problem(name, "must be a mapping of name: file")
            return {}
        result = {}
        for key, item in value.items():
            if not isinstance(item, str) or not item.strip():
                self.problem(f"{name}.{key}", "must be a file path")
                continue
            path = Path(item).expanduser()
            path = path if path.is_absolute() else self.base / path
            if not path.is_file():
                self.problem(f"{name}.{key}", f"no such file {path}")
                continue
            result[str(key)] = path
        return result

    def boolean(self, name: str, default: bool) -> bool:
        value = self._get(name)
        if value is None:
            return default
        if not isinstance(value, bool):
            self.problem(name, "must be true or false")
            return default
        return value

    def number(self, name: str, default: float, *, minimum: float, integer: bool = False) -> float:
        value = self._get(name)
        if value is None:
            return default
        ok = isinstance(value, int) if integer else isinstance(value, int | float)
        if isinstance(value, bool) or not ok or value < minimum:
            kind = "an integer" if integer else "a number"
            self.problem(name, f"must be {kind} >= {minimum:g}")
            return default
        return float(value)

    def section(self, name: str) -> _Reader:
        value = self._get(name)
        if value is None:
            value = {}
        elif not isinstance(value, Mapping):
            self.problem(name, "must be a mapping")
            value = {}
        return _Reader(value, f"{self.key(name)}.", self.base, self.problems)

    def finish(self) -> None:
        for unknown in sorted(set(self.data) - self.used, key=str):
            self.problems.append(f"{self.key(str(unknown))}: unknown key")


def _listen_problem(value: str) -> str | None:
    host, sep, port = value.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        return "must be host:port, e.g. 127.0.0.1:8443"
    return None


def _selector_problem(value: str) -> str | None:
    for part in value.split(","):
        key, sep, _val = part.partition("=")
        if not sep or not key.strip():
            return "must be label=value[,label=value...]"
    return None


def parse_config(data: Any, base: Path) -> DaemonConfig:
    problems: list[str] = []
    if not isinstance(data, Mapping):
        raise ConfigError("the config file must be a YAML mapping of keys")
    top = _Reader(data, "", base, problems)

    c = top.section("cluster")
    if "cluster" not in data:
        problems.append("cluster: required (kubeconfig: PATH or in_cluster: true)")
    cluster = ClusterConfig(
        kubeconfig=c.path("kubeconfig"),
        context=c.string("context"),
        in_cluster=c.boolean("in_cluster", False),
        proxy=c.string("proxy"),
    )
    if "cluster" in data:
        if cluster.kubeconfig is None and not cluster.in_cluster:
            problems.append("cluster.kubeconfig: required unless cluster.in_cluster is true")
        if cluster.kubeconfig is not None and cluster.in_cluster:
            problems.append("cluster.kubeconfig: not allowed with cluster.in_cluster: true")
        if cluster.kubeconfig is not None and not cluster.kubeconfig.is_file():
            problems.append(f"cluster.kubeconfig: no such file {cluster.kubeconfig}")
    c.finish()

    selector = top.string("namespace_selector", DEFAULT_SELECTOR) or DEFAULT_SELECTOR
    if (problem := _selector_problem(selector)) is not None:
        top.problem("namespace_selector", problem)

    e = top.section("executor")
    e.used.add("cleanup_playbook")
    mode = e.string("mode", "vm") or "vm"
    if mode not in EXECUTOR_MODES:
        e.problem("mode", f"must be one of {', '.join(EXECUTOR_MODES)}")
    executor = ExecutorConfig(
        mode=mode,
        project_dir=e.path("project_dir"),
        playbook=e.string("playbook", "playbooks/build.yml") or "playbooks/build.yml",
        cleanup_playbook=e.string("cleanup_playbook", "playbooks/build-cleanup.yml")
        if e.data.get("cleanup_playbook", "") is not None
        else None,  # an explicit null turns the cleanup run off
        hook_timeout_seconds=int(e.number("hook_timeout_seconds", 600, minimum=1, integer=True)),
        registry_cas=e.path_map("registry_cas"),
    )
    e.finish()

    lim = top.section("limits")
    limits = Limits(
        max_concurrent_builds=int(lim.number("max_concurrent_builds", 4, minimum=1, integer=True)),
        builds_per_project=int(lim.number("builds_per_project", 1, minimum=1, integer=True)),
    )
    lim.finish()

    t = top.section("timeouts")
    timeouts = Timeouts(
        lease_seconds=t.number("lease_seconds", 60, minimum=1),
        watch_inactivity_seconds=t.number("watch_inactivity_seconds", 70, minimum=1),
        request_seconds=t.number("request_seconds", 30, minimum=1),
        default_completion_deadline_seconds=int(
            t.number("default_completion_deadline_seconds", 604800, minimum=1, integer=True)
        ),
    )
    t.finish()

    a = top.section("api")
    advertise = a.string("advertise_url")
    api = ApiConfig(
        listen=a.string("listen"),
        tls_cert=a.path("tls_cert"),
        tls_key=a.path("tls_key"),
        advertise_url=os.path.expandvars(advertise) if advertise else None,
        peer_ca=a.path("peer_ca"),
    )
    if api.advertise_url and not api.advertise_url.startswith("https://"):
        a.problem("advertise_url", "must be an https:// URL")
    if api.listen is not None and (problem := _listen_problem(api.listen)) is not None:
        a.problem("listen", problem)
    if api.listen is not None and (api.tls_cert is None or api.tls_key is None):
        problems.append("api.tls_cert: api.tls_cert and api.tls_key are required with api.listen")
    for name, path in (("tls_cert", api.tls_cert), ("tls_key", api.tls_key)):
        if path is not None and not path.is_file():
            a.problem(name, f"no such file {path}")
    a.finish()

    config = DaemonConfig(
        cluster=cluster,
        identity=top.string("identity", "") or default_identity(),
        namespace_selector=selector,
        inventory=top.path("inventory"),
        executor=executor,
        limits=limits,
        timeouts=timeouts,
        state_dir=top.path("state_dir", Path("/var/lib/securebuild"))
        or Path("/var/lib/securebuild"),
        log_dir=top.path("log_dir"),
        log_retention_days=top.number("log_retention_days", 7, minimum=0),
        output_registry=top.string("output_registry"),
        record_imagestream_tags=top.boolean("record_imagestream_tags", False),
        api=api,
    )
    if config.inventory is not None and not config.inventory.exists():
        problems.append(f"inventory: no such file or directory {config.inventory}")
    top.finish()
    if problems:
        raise ConfigError("invalid daemon config:\n  " + "\n  ".join(problems))
    return config


def load_config(path: Path) -> DaemonConfig:
    try:
        text = path.read_text()
    except OSError as exc:
        raise ConfigError(f"cannot read daemon config {path}: {exc.strerror}") from exc
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ConfigError(f"daemon config {path} is not valid YAML: {exc}") from exc
    try:
        return parse_config(data, path.resolve().parent)
    except ConfigError as exc:
        raise ConfigError(f"{path}: {exc}") from exc
