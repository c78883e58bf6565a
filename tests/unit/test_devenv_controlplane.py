"""Pieces of the dev control plane that need no running service."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from cryptography import x509
from cryptography.x509.oid import ExtendedKeyUsageOID

from securebuild.devenv import controlplane
from securebuild.devenv.controlplane import ControlPlane, ControlPlaneError, KubeBinaries
from securebuild.devenv.testca import TestCA

ROOT = Path(__file__).resolve().parents[2]


def test_generated_crds_are_up_to_date() -> None:
    result = subprocess.run(
        [sys.executable, str(ROOT / "deploy" / "crds" / "generate.py"), "--check"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr


def test_kube_version_is_the_same_everywhere() -> None:
    script = (ROOT / "scripts" / "setup.d" / "20-kube-binaries.sh").read_text()
    go_mod = (ROOT / "scripts" / "kube-binaries" / "go.mod").read_text()
    match = re.search(r"^KUBE_VERSION=(v[\d.]+)", script, re.MULTILINE)
    assert match is not None
    version = match.group(1)
    assert version == controlplane.KUBE_VERSION
    assert re.search(rf"^\s*k8s\.io/kubernetes {re.escape(version)}\b", go_mod, re.MULTILINE)
    staging = "v0." + version.split(".", 1)[1]
    replaced = re.findall(r"=> (k8s\.io/\S+) (v\S+)", go_mod)
    assert replaced, "staging modules must be replaced by their published versions"
    assert {v for _, v in replaced} == {staging}


def test_missing_binaries_name_the_fix(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KUBEBUILDER_ASSETS", str(tmp_path))
    with pytest.raises(ControlPlaneError, match="KUBEBUILDER_ASSETS") as error:
        controlplane.find_binaries()
    assert "make setup" in str(error.value)


def test_kubebuilder_assets_win_over_the_cache(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in ("kube-apiserver", "etcd"):
        (tmp_path / name).write_text("#!/bin/sh\n")
        (tmp_path / name).chmod(0o755)
    monkeypatch.setenv("KUBEBUILDER_ASSETS", str(tmp_path))
    assert controlplane.find_binaries() == KubeBinaries(
        tmp_path / "kube-apiserver", tmp_path / "etcd"
    )


def test_tokens_survive_a_restart(tmp_path: Path) -> None:
    path = tmp_path / "tokens.csv"
    first = ControlPlane._load_or_create_tokens(path)
    second = ControlPlane._load_or_create_tokens(path)
    assert first == second
    assert set(first) == {"admin", "alice", "bob", "daemon"}
    assert len({i.token for i in first.values()}) == 4
    assert path.stat().st_mode & 0o077 == 0
    # kube-apiserver's format: token,user,uid,"group1,group2"
    assert f"{first['daemon'].token},system:serviceaccount:securebuild:securebuild,daemon," in (
        path.read_text()
    )


def test_test_ca_signs_and_is_reused(tmp_path: Path) -> None:
    ca = TestCA(tmp_path)
    files = ca.server("srv", ("127.0.0.1", "localhost"))
    cert = x509.load_pem_x509_certificate(files.cert.read_bytes())
    ca_cert = x509.load_pem_x509_certificate(ca.files.cert.read_bytes())
    cert.verify_directly_issued_by(ca_cert)
    sans = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert [str(ip) for ip in sans.get_values_for_type(x509.IPAddress)] == ["127.0.0.1"]
    assert sans.get_values_for_type(x509.DNSName) == ["localhost"]
    assert files.key.stat().st_mode & 0o077 == 0
    assert TestCA(tmp_path).files.cert.read_bytes() == ca.files.cert.read_bytes()

    both = ca.server("etcd", ("127.0.0.1",), also_client=True)
    etcd = x509.load_pem_x509_certificate(both.cert.read_bytes())
    etcd.verify_directly_issued_by(ca_cert)
    usages = etcd.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert set(usages) == {ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH}
    client = x509.load_pem_x509_certificate(ca.client("c").cert.read_bytes())
    client_usages = client.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert list(client_usages) == [ExtendedKeyUsageOID.CLIENT_AUTH]


def test_manifests_put_namespaces_and_crds_first() -> None:
    plane = ControlPlane.__new__(ControlPlane)
    plane.manifest_dirs = controlplane.DEFAULT_MANIFEST_DIRS
    kinds = [doc["kind"] for doc in plane.manifests()]
    assert kinds.index("CustomResourceDefinition") > kinds.index("Namespace")
    last_namespace = max(i for i, k in enumerate(kinds) if k == "Namespace")
    first_binding = min(i for i, k in enumerate(kinds) if k.endswith("Binding"))
    assert last_namespace < first_binding
    for doc in plane.manifests():
        controlplane._resource_path(doc)  # every kind used in deploy/ is supported


def test_crds_name_the_openshift_groups() -> None:
    crds = {
        doc["metadata"]["name"]: doc
        for path in (ROOT / "deploy" / "crds").glob("*.yaml")
        for doc in yaml.safe_load_all(path.read_text())
        if doc
    }
    assert set(crds) == {
        "builds.build.openshift.io",
        "buildconfigs.build.openshift.io",
        "imagestreams.image.openshift.io",
    }
    for crd in crds.values():
        version = crd["spec"]["versions"][0]
        assert crd["spec"]["scope"] == "Namespaced"
        assert version["name"] == "v1"
        assert version["subresources"] == {"status": {}}
    status = crds["builds.build.openshift.io"]["spec"]["versions"][0]["schema"]["openAPIV3Schema"][
        "properties"
    ]["status"]["properties"]
    assert status["duration"] == {"type": "integer", "format": "int64"}
    assert status["phase"]["enum"] == [
        "New",
        "Pending",
        "Running",
        "Complete",
        "Failed",
        "Error",
        "Cancelled",
    ]


def test_unsupported_manifest_kind_is_an_error() -> None:
    with pytest.raises(ControlPlaneError, match="Deployment"):
        controlplane._resource_path({"kind": "Deployment", "metadata": {"name": "x"}})
