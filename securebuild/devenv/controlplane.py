"""A real Kubernetes control plane (etcd + kube-apiserver) on 127.0.0.1 with OpenShift's types.

The daemon's job is talking to OpenShift's API, and fakes get exactly the hard parts wrong (watch
expiry, resourceVersion conflicts, the status subresource, RBAC). So development and tests run a
real API server with ``build.openshift.io/v1`` and ``image.openshift.io/v1`` served as CRDs
(``deploy/crds``), the RBAC of ``deploy/rbac`` and the dev tenants of ``deploy/dev``.

Layout of the state directory (kept for a restart on the same data, deleted by ``stop()`` only
when the launcher created it as a temporary directory)::

    pki/            test CA, serving and etcd certificates, service-account signing key
    etcd/           etcd data
    tokens.csv      static tokens (admin, alice, bob, daemon)
    kubeconfigs/    one kubeconfig per identity: admin.kubeconfig, alice.kubeconfig, ...
    logs/           etcd.log, kube-apiserver.log (quoted in the error when a start fails)

Identities (static token file; the API server adds ``system:authenticated`` to each):

* ``admin``: user ``securebuild-admin`` in group ``system:masters``.
* ``alice``, ``bob``: tenants, admins of ``alice-project`` and ``bob-project``.
* ``daemon``: user ``system:serviceaccount:securebuild:securebuild`` with the service-account
  groups. RBAC matches a ServiceAccount subject by that user name, so the daemon's
  ClusterRoleBinding in ``deploy/rbac/daemon.yaml`` is the one a real cluster uses with a real
  service-account token.

Service-account tokens (TokenRequest API) are signed with ``pki/sa.key`` and accepted as well.

Watch cache: off by default (``--watch-cache=false``), so a watch is served by etcd and a watch
from a compacted resourceVersion gets 410 Gone deterministically after :meth:`compact_etcd`.
"""

from __future__ import annotations

import base64
import contextlib
import csv
import json
import logging
import os
import secrets
import shutil
import ssl
import tempfile
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import urllib3
import yaml

from securebuild.devenv.process import ManagedProcess, Service, ServiceError, free_port, log_tail
from securebuild.devenv.testca import CertFiles, TestCA, write_public_key, write_signing_key

logger = logging.getLogger(__name__)

#: The kube-apiserver release built by scripts/setup.d/20-kube-binaries.sh (keep in step).
KUBE_VERSION = "v1.34.4"
DEFAULT_CACHE = Path.home() / ".cache" / "securebuild"
REPO_ROOT = Path(__file__).resolve().parents[2]
#: Manifests applied after every start, in this order (server-side apply, so idempotent).
DEFAULT_MANIFEST_DIRS = (
    REPO_ROOT / "deploy" / "crds",
    REPO_ROOT / "deploy" / "rbac",
    REPO_ROOT / "deploy" / "dev",
)
START_TIMEOUT = 60.0
STOP_TIMEOUT = 15.0
PORT_ATTEMPTS = 3
FIELD_MANAGER = "securebuild-dev"
#: Environment variables that must not reach the services: proxies (gRPC and Go's HTTP client
#: honour them) and CA bundle overrides.
_SCRUBBED_ENV = (
    "HTTP_PROXY",
    "HTTPS_PROXY",
    "ALL_PROXY",
    "NO_PROXY",
    "http_proxy",
    "https_proxy",
    "all_proxy",
    "no_proxy",
    "SSL_CERT_FILE",
    "SSL_CERT_DIR",
)


class ControlPlaneError(ServiceError):
    """The control plane could not start or answer; the message says how to fix it."""


@dataclass(frozen=True)
class Identity:
    """One user of the control plane, authenticated by a static bearer token."""

    name: str
    user: str
    groups: tuple[str, ...]
    token: str


@dataclass(frozen=True)
class KubeBinaries:
    """The two programs the control plane runs."""

    kube_apiserver: Path
    etcd: Path


_IDENTITY_TEMPLATES: tuple[tuple[str, str, tuple[str, ...]], ...] = (
    ("admin", "securebuild-admin", ("system:masters",)),
    ("alice", "alice", ()),
    ("bob", "bob", ()),
    (
        "daemon",
        "system:serviceaccount:securebuild:securebuild",
        ("system:serviceaccounts", "system:serviceaccounts:securebuild"),
    ),
)


def find_binaries(cache: Path = DEFAULT_CACHE) -> KubeBinaries:
    """``$KUBEBUILDER_ASSETS`` if set (envtest convention), else the setup script's cache."""
    assets = os.environ.get("KUBEBUILDER_ASSETS")
    directory = Path(assets) if assets else cache / "kube" / KUBE_VERSION
    binaries = KubeBinaries(directory / "kube-apiserver", directory / "etcd")
    missing = [
        str(p) for p in (binaries.kube_apiserver, binaries.etcd) if not os.access(p, os.X_OK)
    ]
    if missing:
        source = "KUBEBUILDER_ASSETS" if assets else "the setup cache"
        raise ControlPlaneError(
            f"missing executable {', '.join(missing)} ({source}); run `make setup` "
            "(scripts/setup.d/20-kube-binaries.sh builds kube-apiserver) or point "
            "KUBEBUILDER_ASSETS at a directory holding kube-apiserver and etcd"
        )
    return binaries


def _service_env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if k not in _SCRUBBED_ENV}


def _failure(process: ManagedProcess, what: str) -> ControlPlaneError:
    """The error for a service that did not come up, quoting the end of its log."""
    code = process.proc.poll() if process.proc else None
    state = f"exited with {code}" if code is not None else "still running"
    return ControlPlaneError(
        f"{process.name} {what} ({state}); log {process.log_path}:\n{log_tail(process.log_path)}"
    )


def _spawn(name: str, argv: list[str], log: Path) -> ManagedProcess:
    log.parent.mkdir(parents=True, exist_ok=True)
    with log.open("ab") as out:
        out.write(f"--- {time.strftime('%Y-%m-%dT%H:%M:%S')} {' '.join(argv)}\n".encode())
    process = ManagedProcess(name, argv, log, env=_service_env())
    process.start()
    return process


class ControlPlane(Service):
    """etcd + kube-apiserver on 127.0.0.1 with OpenShift's build and image types as CRDs.

    ``directory``: state directory (see the module docstring); a temporary one when ``None``,
    deleted on :meth:`stop`. An existing directory is reused: same CA, tokens and data.
    """

    def __init__(
        self,
        directory: Path | None = None,
        *,
        binaries: KubeBinaries | None = None,
        manifest_dirs: Sequence[Path] = DEFAULT_MANIFEST_DIRS,
        watch_cache: bool = False,
        extra_apiserver_args: Sequence[str] = (),
    ) -> None:
        self._temporary = directory is None
        self.directory = (
            Path(tempfile.mkdtemp(prefix="securebuild-cp-")) if directory is None else directory
        )
        self.binaries = binaries or find_binaries()
        self.manifest_dirs = tuple(manifest_dirs)
        self.watch_cache = watch_cache
        self.extra_apiserver_args = tuple(extra_apiserver_args)
        self.pki_dir = self.directory / "pki"
        self.etcd_dir = self.directory / "etcd"
        self.log_dir = self.directory / "logs"
        self.kubeconfig_dir = self.directory / "kubeconfigs"
        self.api_port = 0
        self.etcd_port = 0
        self._etcd: ManagedProcess | None = None
        self._apiserver: ManagedProcess | None = None
        self.identities: dict[str, Identity] = {}
        self.ca: TestCA | None = None
        self._etcd_client_cert: CertFiles | None = None

    # --- public surface ---------------------------------------------------------------------

    @property
    def api_url(self) -> str:
        return f"https://127.0.0.1:{self.api_port}"

    @property
    def etcd_url(self) -> str:
        return f"https://127.0.0.1:{self.etcd_port}"

    @property
    def ca_file(self) -> Path:
        return self.pki_dir / "ca.crt"

    def kubeconfig(self, name: str) -> Path:
        """Path of the kubeconfig file of identity ``name`` (admin, alice, bob, daemon)."""
        if name not in self.identities:
            raise ControlPlaneError(f"no identity {name!r}; known: {', '.join(self.identities)}")
        return self.kubeconfig_dir / f"{name}.kubeconfig"

    def token(self, name: str) -> str:
        return self.identities[name].token

    def start(self) -> ControlPlane:
        """Start etcd and the API server, apply the manifests; return when builds are served."""
        started = time.monotonic()
        self._prepare()
        for attempt in range(1, PORT_ATTEMPTS + 1):
            # Ports are picked free a moment before the services bind them; another program
            # (other test runs on this machine) may take one in between: then try new ports.
            self.etcd_port = free_port()
            self.api_port = free_port()
            try:
                self._start_etcd()
                self.start_apiserver()
                break
            except ControlPlaneError as exc:
                self._stop_processes()
                if "address already in use" not in str(exc) or attempt == PORT_ATTEMPTS:
                    raise
                logger.warning("port taken while starting (attempt %d), retrying", attempt)
            except BaseException:
                self._stop_processes()
                raise
        try:
            self._apply_manifests()
        except BaseException:
            self._stop_processes()
            raise
        logger.info(
            "control plane up at %s in %.1f s (state in %s)",
            self.api_url,
            time.monotonic() - started,
            self.directory,
        )
        return self

    def stop(self) -> None:
        """Stop both services; delete the state directory if the launcher made it."""
        self._stop_processes()
        if self._temporary:
            shutil.rmtree(self.directory, ignore_errors=True)

    def stop_apiserver(self) -> None:
        """Stop only the API server (etcd and its data stay), e.g. to test a restart."""
        if self._apiserver is not None:
            self._apiserver.stop(STOP_TIMEOUT)
            self._apiserver = None

    def start_apiserver(self) -> None:
        """Start the API server on the same port and data and wait until it is ready."""
        if self._apiserver is not None and self._apiserver.alive():
            return
        self._apiserver = _spawn(
            "kube-apiserver",
            [str(self.binaries.kube_apiserver), *self._apiserver_args()],
            self.log_dir / "kube-apiserver.log",
        )
        self._wait_ready()

    def compact_etcd(self) -> int:
        """Compact etcd up to its current revision; return that revision.

        Afterwards a watch (with the watch cache off) from any older resourceVersion gets 410.
        """
        revision = int(self._etcd_call("/v3/kv/range", {"key": _b64("/")})["header"]["revision"])
        self._etcd_call("/v3/kv/compaction", {"revision": revision, "physical": True})
        return revision

    # --- preparation ------------------------------------------------------------------------

    def _prepare(self) -> None:
        for directory in (self.directory, self.etcd_dir, self.log_dir):
            directory.mkdir(parents=True, exist_ok=True)
        self.directory.chmod(0o700)
        self.etcd_dir.chmod(0o700)
        self.ca = TestCA(self.pki_dir)
        hosts = ("127.0.0.1", "localhost")
        self.ca.server("apiserver", hosts)
        self.ca.server("etcd-server", hosts, also_client=True)
        self._etcd_client_cert = self.ca.client("apiserver-etcd-client")
        write_signing_key(self.pki_dir / "sa.key")
        write_public_key(self.pki_dir / "sa.key", self.pki_dir / "sa.pub")
        self.identities = self._load_or_create_tokens(self.directory / "tokens.csv")

    @staticmethod
    def _load_or_create_tokens(path: Path) -> dict[str, Identity]:
        """Token file format of kube-apiserver: token,user,uid,"group1,group2"."""
        known: dict[str, str] = {}
        if path.exists():
            with path.open(newline="") as handle:
                for row in csv.reader(handle):
                    if len(row) >= 3:
                        known[row[2]] = row[0]
        identities = {
            name: Identity(name, user, groups, known.get(name) or secrets.token_urlsafe(32))
            for name, user, groups in _IDENTITY_TEMPLATES
        }
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", newline="") as handle:
            writer = csv.writer(handle)
            for ident in identities.values():
                row = [ident.token, ident.user, ident.name]
                if ident.groups:
                    row.append(",".join(ident.groups))
                writer.writerow(row)
        return identities

    def _write_kubeconfigs(self) -> None:
        self.kubeconfig_dir.mkdir(parents=True, exist_ok=True)
        for ident in self.identities.values():
            config = {
                "apiVersion": "v1",
                "kind": "Config",
                "clusters": [
                    {
                        "name": "securebuild-dev",
                        "cluster": {
                            "server": self.api_url,
                            "certificate-authority": str(self.ca_file),
                        },
                    }
                ],
                "users": [{"name": ident.name, "user": {"token": ident.token}}],
                "contexts": [
                    {
                        "name": ident.name,
                        "context": {"cluster": "securebuild-dev", "user": ident.name},
                    }
                ],
                "current-context": ident.name,
            }
            path = self.kubeconfig_dir / f"{ident.name}.kubeconfig"
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(fd, "w") as handle:
                yaml.safe_dump(config, handle, sort_keys=False)

    # --- etcd -------------------------------------------------------------------------------

    def _start_etcd(self) -> None:
        if self._etcd is not None and self._etcd.alive():
            return
        pki = self.pki_dir
        peer_port = free_port()
        self._etcd = _spawn(
            "etcd",
            [
                str(self.binaries.etcd),
                "--name=securebuild-dev",
                f"--data-dir={self.etcd_dir}",
                f"--listen-client-urls={self.etcd_url}",
                f"--advertise-client-urls={self.etcd_url}",
                f"--listen-peer-urls=http://127.0.0.1:{peer_port}",
                f"--initial-advertise-peer-urls=http://127.0.0.1:{peer_port}",
                f"--initial-cluster=securebuild-dev=http://127.0.0.1:{peer_port}",
                f"--cert-file={pki / 'etcd-server.crt'}",
                f"--key-file={pki / 'etcd-server.key'}",
                f"--trusted-ca-file={pki / 'ca.crt'}",
                "--client-cert-auth",
                "--listen-metrics-urls=",
                "--log-level=warn",
                "--logger=zap",
                # Tests are not about durability; fsync on every write makes them slow.
                "--unsafe-no-fsync",
            ],
            self.log_dir / "etcd.log",
        )
        deadline = time.monotonic() + START_TIMEOUT
        while True:
            if not self._etcd.alive():
                raise _failure(self._etcd, "did not start")
            with contextlib.suppress(OSError, urllib3.exceptions.HTTPError, ValueError):
                if self._etcd_get("/health").get("health") == "true":
                    return
            if time.monotonic() > deadline:
                raise _failure(self._etcd, f"not healthy after {START_TIMEOUT:.0f} s")
            time.sleep(0.1)

    def _etcd_pool(self, timeout: float = 5.0) -> urllib3.PoolManager:
        assert self._etcd_client_cert is not None
        context = ssl.create_default_context(cafile=str(self.ca_file))
        context.load_cert_chain(str(self._etcd_client_cert.cert), str(self._etcd_client_cert.key))
        return urllib3.PoolManager(ssl_context=context, retries=False, timeout=timeout)

    def _etcd_get(self, path: str) -> dict[str, Any]:
        # Short timeout: while polling, a stranger holding the port must not stall the start.
        response = self._etcd_pool(timeout=1.0).request("GET", self.etcd_url + path)
        result: dict[str, Any] = json.loads(response.data)
        return result

    def _etcd_call(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        """Call etcd's v3 JSON gateway (no etcdctl needed)."""
        response = self._etcd_pool().request(
            "POST", self.etcd_url + path, body=json.dumps(body).encode()
        )
        if response.status != 200:
            raise ControlPlaneError(
                f"etcd {path} answered {response.status}: {response.data[:300]!r}"
            )
        result: dict[str, Any] = json.loads(response.data)
        return result

    # --- kube-apiserver ---------------------------------------------------------------------

    def _apiserver_args(self) -> list[str]:
        pki = self.pki_dir
        assert self._etcd_client_cert is not None
        args = [
            "--bind-address=127.0.0.1",
            "--advertise-address=127.0.0.1",
            f"--secure-port={self.api_port}",
            f"--tls-cert-file={pki / 'apiserver.crt'}",
            f"--tls-private-key-file={pki / 'apiserver.key'}",
            f"--client-ca-file={pki / 'ca.crt'}",
            f"--cert-dir={pki}",
            f"--etcd-servers={self.etcd_url}",
            f"--etcd-cafile={pki / 'ca.crt'}",
            f"--etcd-certfile={self._etcd_client_cert.cert}",
            f"--etcd-keyfile={self._etcd_client_cert.key}",
            f"--token-auth-file={self.directory / 'tokens.csv'}",
            f"--service-account-key-file={pki / 'sa.pub'}",
            f"--service-account-signing-key-file={pki / 'sa.key'}",
            "--service-account-issuer=https://kubernetes.default.svc.cluster.local",
            "--api-audiences=https://kubernetes.default.svc.cluster.local",
            "--authorization-mode=RBAC",
            "--anonymous-auth=false",
            "--service-cluster-ip-range=10.0.0.0/24",
            "--allow-privileged=false",
            "--profiling=false",
            # Nothing here consumes endpoints or flow-control objects; both only cost start time.
            "--endpoint-reconciler-type=none",
            "--enable-priority-and-fairness=false",
            f"--watch-cache={'true' if self.watch_cache else 'false'}",
            "--v=1",
        ]
        return args + list(self.extra_apiserver_args)

    def api_pool(self, timeout: float = 10.0) -> urllib3.PoolManager:
        """A urllib3 pool that trusts the test CA (raw calls such as watch streams).

        Not ``requests``: ``REQUESTS_CA_BUNDLE`` in the environment would override the CA.
        """
        context = ssl.create_default_context(cafile=str(self.ca_file))
        return urllib3.PoolManager(ssl_context=context, retries=False, timeout=timeout)

    def api_request(
        self,
        method: str,
        path: str,
        *,
        identity: str = "admin",
        body: Any = None,
        timeout: float = 10.0,
    ) -> tuple[int, Any]:
        """One raw API call as ``identity``; return (status, decoded JSON or text)."""
        headers = {"Authorization": f"Bearer {self.token(identity)}", "Accept": "application/json"}
        data = None
        if body is not None:
            headers["Content-Type"] = "application/json"
            data = json.dumps(body).encode()
        response = self.api_pool(timeout).request(
            method, self.api_url + path, body=data, headers=headers
        )
        try:
            return response.status, json.loads(response.data)
        except ValueError:
            return response.status, response.data.decode(errors="replace")

    def _wait_ready(self) -> None:
        assert self._apiserver is not None
        self._write_kubeconfigs()
        deadline = time.monotonic() + START_TIMEOUT
        last = ""
        while True:
            if not self._apiserver.alive():
                raise _failure(self._apiserver, "did not start")
            try:
                status, body = self.api_request("GET", "/readyz", timeout=2.0)
                if status == 200:
                    return
                last = f"/readyz {status}: {str(body)[:300]}"
            except (OSError, urllib3.exceptions.HTTPError) as exc:
                last = str(exc)
            if time.monotonic() > deadline:
                raise _failure(
                    self._apiserver, f"not ready after {START_TIMEOUT:.0f} s (last answer: {last})"
                )
            time.sleep(0.2)

    # --- manifests --------------------------------------------------------------------------

    def manifests(self) -> list[dict[str, Any]]:
        """Every document of the manifest directories, namespaces and CRDs first."""
        order = {"Namespace": 0, "CustomResourceDefinition": 1, "ServiceAccount": 2}
        docs: list[dict[str, Any]] = []
        for directory in self.manifest_dirs:
            for path in sorted(directory.glob("*.yaml")):
                docs.extend(d for d in yaml.safe_load_all(path.read_text()) if d)
        return sorted(docs, key=lambda d: order.get(d["kind"], 9))

    def _apply_manifests(self) -> None:
        deadline = time.monotonic() + START_TIMEOUT
        crds = []
        for doc in self.manifests():
            path = _resource_path(doc)
            status, body = self._server_side_apply(path, doc)
            if status not in (200, 201):
                raise ControlPlaneError(
                    f"applying {doc['kind']} {doc['metadata']['name']} failed: {status} {body}"
                )
            if doc["kind"] == "CustomResourceDefinition":
                crds.append(doc)
        for crd in crds:
            spec = crd["spec"]
            list_path = (
                f"/apis/{spec['group']}/{spec['versions'][0]['name']}/{spec['names']['plural']}"
            )
            while True:
                status, body = self.api_request("GET", list_path)
                if status == 200:
                    break
                if time.monotonic() > deadline:
                    raise ControlPlaneError(
                        f"CRD {crd['metadata']['name']} not served after {START_TIMEOUT:.0f} s: "
                        f"{status} {str(body)[:200]}"
                    )
                time.sleep(0.1)

    def _server_side_apply(self, path: str, doc: dict[str, Any]) -> tuple[int, Any]:
        headers = {
            "Authorization": f"Bearer {self.token('admin')}",
            "Accept": "application/json",
            "Content-Type": "application/apply-patch+yaml",
        }
        response = self.api_pool().request(
            "PATCH",
            f"{self.api_url}{path}?fieldManager={FIELD_MANAGER}&force=true",
            body=json.dumps(doc).encode(),
            headers=headers,
        )
        try:
            return response.status, json.loads(response.data)
        except ValueError:
            return response.status, response.data.decode(errors="replace")

    # --- stopping ---------------------------------------------------------------------------

    def _stop_processes(self) -> None:
        for attribute in ("_apiserver", "_etcd"):
            process: ManagedProcess | None = getattr(self, attribute)
            if process is not None:
                process.stop(STOP_TIMEOUT)
                setattr(self, attribute, None)

    def processes(self) -> Iterator[tuple[str, int]]:
        """(name, pid) of the running services, for status output."""
        for process in (self._etcd, self._apiserver):
            pid = process.pid if process is not None else None
            if process is not None and pid is not None and process.alive():
                yield process.name, pid


_CLUSTER_SCOPED_PATHS = {
    "Namespace": "/api/v1/namespaces",
    "CustomResourceDefinition": "/apis/apiextensions.k8s.io/v1/customresourcedefinitions",
    "ClusterRole": "/apis/rbac.authorization.k8s.io/v1/clusterroles",
    "ClusterRoleBinding": "/apis/rbac.authorization.k8s.io/v1/clusterrolebindings",
}
_NAMESPACED_PATHS = {
    "ServiceAccount": "/api/v1/namespaces/{ns}/serviceaccounts",
    "Role": "/apis/rbac.authorization.k8s.io/v1/namespaces/{ns}/roles",
    "RoleBinding": "/apis/rbac.authorization.k8s.io/v1/namespaces/{ns}/rolebindings",
}


def _resource_path(doc: dict[str, Any]) -> str:
    """REST path of one manifest (the kinds the deploy/ manifests use)."""
    kind, meta = doc["kind"], doc["metadata"]
    if kind in _CLUSTER_SCOPED_PATHS:
        return f"{_CLUSTER_SCOPED_PATHS[kind]}/{meta['name']}"
    if kind in _NAMESPACED_PATHS:
        return _NAMESPACED_PATHS[kind].format(ns=meta["namespace"]) + f"/{meta['name']}"
    raise ControlPlaneError(f"manifest kind {kind} is not supported by the dev control plane")


def _b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()
