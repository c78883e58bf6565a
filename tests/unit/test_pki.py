"""securebuild.pki: modes, SANs, EKUs, renewal and rotation, isolation between projects.

Certificates are checked with cryptography's RFC 5280 path validator and with real TLS
handshakes through Python's ssl module (OpenSSL), not by reading fields alone.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import json
import multiprocessing
import socket
import ssl
import stat
import subprocess
import sys
import threading
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.x509.oid import ExtendedKeyUsageOID
from cryptography.x509.verification import (
    DNSName,
    IPAddress,
    PolicyBuilder,
    Store,
    VerificationError,
)

from securebuild.pki import (
    CA_LIFETIME,
    LEAF_LIFETIME,
    RENEW_BEFORE,
    InvalidName,
    PKIError,
    ProjectPKI,
)
from securebuild.pki import project as pki_project


def load(path: Path) -> x509.Certificate:
    return x509.load_pem_x509_certificate(path.read_bytes())


def fingerprint(path: Path) -> str:
    return load(path).fingerprint(hashes.SHA256()).hex()


def fingerprints(pki: ProjectPKI) -> dict[str, str]:
    return {
        "ca": fingerprint(pki.ca_cert),
        "server": fingerprint(pki.server_cert),
        "client": fingerprint(pki.client_cert),
    }


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def server_verifier(ca: Path, host: str) -> object:
    try:
        subject: DNSName | IPAddress = IPAddress(ipaddress.ip_address(host))
    except ValueError:
        subject = DNSName(host)
    return PolicyBuilder().store(Store([load(ca)])).build_server_verifier(subject)


def verify_server(ca: Path, cert: Path, host: str) -> None:
    verifier = server_verifier(ca, host)
    verifier.verify(load(cert), [])  # type: ignore[attr-defined]


def verify_client(ca: Path, cert: Path) -> None:
    PolicyBuilder().store(Store([load(ca)])).build_client_verifier().verify(load(cert), [])


@pytest.fixture
def state(tmp_path: Path) -> Path:
    return tmp_path / "state"


# -- names --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "name",
    ["", "A", "Demo", "-a", "a-", "a" * 64, "..", "../x", "a/b", "a.b", "a_b", "ä", "a b", "a\n"],
)
def test_invalid_project_names_are_refused(state: Path, name: str) -> None:
    with pytest.raises(InvalidName):
        ProjectPKI.ensure(state, name)
    assert not (state / "pki").exists() or not any((state / "pki").iterdir())


@pytest.mark.parametrize("name", ["a", "demo", "team-1", "0", "a" * 63])
def test_valid_project_names(state: Path, name: str) -> None:
    pki = ProjectPKI.ensure(state, name)
    assert pki.directory == state / "pki" / name
    assert pki.ca_cert.is_file()


@pytest.mark.parametrize("host", ["*.example.com", "a..b", "-x.example", "x_y", "", "a/b"])
def test_invalid_server_hosts_are_refused(state: Path, host: str) -> None:
    with pytest.raises(InvalidName):
        ProjectPKI.ensure(state, "demo", server_hosts=[host])


# -- layout and modes ---------------------------------------------------------------------


def test_modes(state: Path) -> None:
    pki = ProjectPKI.ensure(state, "demo")
    for directory in (state, state / "pki", pki.directory, pki.ca_cert.resolve().parent):
        assert mode(directory) == 0o700, directory
    for key in (pki.ca_key, pki.server_key, pki.client_key):
        assert mode(key) == 0o400, key
    for cert in (pki.ca_cert, pki.server_cert, pki.client_cert):
        assert mode(cert) == 0o444, cert
    # all six files live in one generation directory behind the `current` symlink
    assert (pki.directory / "current").is_symlink()
    assert len({p.resolve().parent for p in (pki.ca_cert, pki.server_key, pki.client_cert)}) == 1


def test_loosened_modes_are_restored(state: Path) -> None:
    pki = ProjectPKI.ensure(state, "demo")
    pki.client_key.chmod(0o644)
    pki.ca_cert.chmod(0o666)
    before = fingerprints(pki)
    ProjectPKI.ensure(state, "demo")
    assert mode(pki.client_key) == 0o400
    assert mode(pki.ca_cert) == 0o444
    assert fingerprints(pki) == before


def test_existing_state_dir_keeps_its_mode(tmp_path: Path) -> None:
    tmp_path.chmod(0o755)
    ProjectPKI.ensure(tmp_path, "demo")
    assert mode(tmp_path) == 0o755
    assert mode(tmp_path / "pki") == 0o700


# -- certificate profiles ----------------------------------------------------------------


def test_profiles_and_validity(state: Path) -> None:
    pki = ProjectPKI.ensure(state, "demo")
    ca, server, client = load(pki.ca_cert), load(pki.server_cert), load(pki.client_cert)
    for cert in (ca, server, client):
        assert cert.signature_hash_algorithm is not None
        assert cert.signature_hash_algorithm.name == "sha256"
        assert cert.public_key().curve.name == "secp256r1"  # type: ignore[union-attr]
    constraints = ca.extensions.get_extension_for_class(x509.BasicConstraints)
    assert constraints.critical and constraints.value.ca and constraints.value.path_length == 0
    ca_life = ca.not_valid_after_utc - ca.not_valid_before_utc
    assert CA_LIFETIME <= ca_life <= CA_LIFETIME + dt.timedelta(minutes=10)
    for leaf in (server, client):
        assert not leaf.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
        life = leaf.not_valid_after_utc - leaf.not_valid_before_utc
        assert LEAF_LIFETIME <= life <= LEAF_LIFETIME + dt.timedelta(minutes=10)
    eku = server.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert list(eku) == [ExtendedKeyUsageOID.SERVER_AUTH]
    eku = client.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert list(eku) == [ExtendedKeyUsageOID.CLIENT_AUTH]


def test_server_sans_cover_given_hosts_and_loopback(state: Path) -> None:
    pki = ProjectPKI.ensure(state, "demo", server_hosts=["VM1.Example.", "10.0.2.15", "::1"])
    san = load(pki.server_cert).extensions.get_extension_for_class(x509.SubjectAlternativeName)
    assert set(san.value.get_values_for_type(x509.DNSName)) == {"vm1.example", "localhost"}
    assert set(san.value.get_values_for_type(x509.IPAddress)) == {
        ipaddress.ip_address("10.0.2.15"),
        ipaddress.ip_address("127.0.0.1"),
        ipaddress.ip_address("::1"),
    }
    for host in ("vm1.example", "localhost", "10.0.2.15", "127.0.0.1", "::1"):
        verify_server(pki.ca_cert, pki.server_cert, host)
    with pytest.raises(VerificationError):
        verify_server(pki.ca_cert, pki.server_cert, "vm2.example")


def test_ekus_are_enforced_by_a_verifier(state: Path) -> None:
    pki = ProjectPKI.ensure(state, "demo")
    verify_client(pki.ca_cert, pki.client_cert)
    with pytest.raises(VerificationError):
        verify_client(pki.ca_cert, pki.server_cert)  # a server cert cannot act as a client
    with pytest.raises(VerificationError):
        verify_server(pki.ca_cert, pki.client_cert, "localhost")


# -- idempotence, renewal, rotation --------------------------------------------------------


def test_ensure_is_idempotent_and_keeps_hosts(state: Path) -> None:
    pki = ProjectPKI.ensure(state, "demo", server_hosts=["vm1.example"])
    first = fingerprints(pki)
    generation = pki.ca_cert.resolve().parent
    assert fingerprints(ProjectPKI.ensure(state, "demo", server_hosts=["vm1.example"])) == first
    # no hosts: keep what the server certificate has rather than narrowing it
    assert fingerprints(ProjectPKI.ensure(state, "demo")) == first
    assert "vm1.example" in pki.server_hosts
    assert pki.ca_cert.resolve().parent == generation


def test_changed_hosts_reissue_only_the_server_certificate(state: Path) -> None:
    pki = ProjectPKI.ensure(state, "demo", server_hosts=["vm1.example"])
    first = fingerprints(pki)
    ProjectPKI.ensure(state, "demo", server_hosts=["vm2.example"])
    second = fingerprints(pki)
    assert second["ca"] == first["ca"]
    assert second["client"] == first["client"]
    assert second["server"] != first["server"]
    assert "vm1.example" not in pki.server_hosts
    verify_server(pki.ca_cert, pki.server_cert, "vm2.example")


def test_rotate_leaves_keeps_ca(state: Path) -> None:
    pki = ProjectPKI.ensure(state, "demo", server_hosts=["vm1.example"])
    first = fingerprints(pki)
    old_key = pki.server_key.read_bytes()
    pki.rotate()
    second = fingerprints(pki)
    assert second["ca"] == first["ca"]
    assert second["server"] != first["server"] and second["client"] != first["client"]
    assert pki.server_key.read_bytes() != old_key  # new key, not a re-signed old one
    assert "vm1.example" in pki.server_hosts
    verify_client(pki.ca_cert, pki.client_cert)


def test_rotate_ca_invalidates_old_chain(state: Path, tmp_path: Path) -> None:
    pki = ProjectPKI.ensure(state, "demo")
    old_ca = tmp_path / "old-ca.crt"
    old_ca.write_bytes(pki.ca_cert.read_bytes())
    first = fingerprints(pki)
    pki.rotate(ca=True)
    second = fingerprints(pki)
    assert all(second[k] != first[k] for k in first)
    verify_client(pki.ca_cert, pki.client_cert)
    verify_server(pki.ca_cert, pki.server_cert, "localhost")
    with pytest.raises(VerificationError):
        verify_client(old_ca, pki.client_cert)
    # the previous generation is kept for rollback; older ones are pruned
    pki.rotate()
    assert len(list(pki.directory.glob("g-*"))) == 2


def _travel(monkeypatch: pytest.MonkeyPatch, delta: dt.timedelta) -> None:
    real = pki_project.utcnow
    monkeypatch.setattr(pki_project, "utcnow", lambda: real() + delta)


def test_leaves_renewed_before_expiry(state: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    pki = ProjectPKI.ensure(state, "demo")
    first = fingerprints(pki)
    _travel(monkeypatch, LEAF_LIFETIME - RENEW_BEFORE - dt.timedelta(days=2))
    assert fingerprints(ProjectPKI.ensure(state, "demo")) == first  # 32 days left: keep
    _travel(monkeypatch, dt.timedelta(days=4))  # now 28 days left
    ProjectPKI.ensure(state, "demo")
    second = fingerprints(pki)
    assert second["ca"] == first["ca"]
    assert second["server"] != first["server"] and second["client"] != first["client"]
    left = load(pki.server_cert).not_valid_after_utc - pki_project.utcnow()
    assert left > LEAF_LIFETIME - dt.timedelta(days=1)


def test_expiring_ca_is_replaced(state: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    pki = ProjectPKI.ensure(state, "demo")
    first = fingerprints(pki)
    _travel(monkeypatch, CA_LIFETIME - RENEW_BEFORE + dt.timedelta(days=1))
    ProjectPKI.ensure(state, "demo")
    second = fingerprints(pki)
    assert all(second[k] != first[k] for k in first)


def test_leaf_never_outlives_its_ca(state: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    pki = ProjectPKI.ensure(state, "demo")
    ca_before = fingerprint(pki.ca_cert)
    ca_end = load(pki.ca_cert).not_valid_after_utc
    _travel(monkeypatch, CA_LIFETIME - dt.timedelta(days=100))
    pki.rotate()
    assert load(pki.server_cert).not_valid_after_utc == ca_end
    assert fingerprint(pki.ca_cert) == ca_before


def test_leaf_from_an_older_ca_is_reissued(state: Path, tmp_path: Path) -> None:
    """A generation whose leaves do not chain to its CA (hand-edited) heals on ensure."""
    pki = ProjectPKI.ensure(state, "demo")
    other = ProjectPKI.ensure(tmp_path / "other", "demo")
    client = pki.client_cert.resolve()
    client.chmod(0o644)
    client.write_bytes(other.client_cert.read_bytes())
    key = pki.client_key.resolve()
    key.chmod(0o600)
    key.write_bytes(other.client_key.read_bytes())
    ProjectPKI.ensure(state, "demo")
    verify_client(pki.ca_cert, pki.client_cert)


def test_missing_ca_key_is_an_error_not_a_new_ca(state: Path) -> None:
    pki = ProjectPKI.ensure(state, "demo")
    pki.ca_key.resolve().unlink()
    with pytest.raises(PKIError, match="rotate --ca"):
        ProjectPKI.ensure(state, "demo")
    pki.rotate(ca=True)  # the explicit way out
    verify_client(pki.ca_cert, pki.client_cert)


def test_load_requires_an_existing_pki(state: Path) -> None:
    with pytest.raises(PKIError, match="ca init demo"):
        ProjectPKI.load(state, "demo")
    ProjectPKI.ensure(state, "demo")
    assert ProjectPKI.load(state, "demo").ca_cert.is_file()


def _ensure_in_child(state: str) -> None:
    ProjectPKI.ensure(Path(state), "demo", server_hosts=["vm1.example"])


def test_concurrent_ensure_creates_one_ca(state: Path) -> None:
    context = multiprocessing.get_context("fork")
    procs = [context.Process(target=_ensure_in_child, args=(str(state),)) for _ in range(4)]
    for proc in procs:
        proc.start()
    for proc in procs:
        proc.join(60)
        assert proc.exitcode == 0
    pki = ProjectPKI.load(state, "demo")
    assert len(list(pki.directory.glob("g-*"))) == 1
    verify_client(pki.ca_cert, pki.client_cert)


# -- isolation between projects, with real TLS handshakes -------------------------------------


def test_other_projects_certificates_do_not_verify(state: Path) -> None:
    a = ProjectPKI.ensure(state, "project-a")
    b = ProjectPKI.ensure(state, "project-b")
    verify_client(a.ca_cert, a.client_cert)
    with pytest.raises(VerificationError):
        verify_client(b.ca_cert, a.client_cert)
    with pytest.raises(VerificationError):
        verify_server(a.ca_cert, b.server_cert, "localhost")


def _handshake(server: ProjectPKI, client_cert: Path, client_key: Path) -> str | None:
    """Mutual TLS over a socket pair, the way dockerd is configured; return the error or None."""
    server_ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server_ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    server_ctx.load_cert_chain(server.server_cert, server.server_key)
    server_ctx.load_verify_locations(cafile=server.ca_cert)
    server_ctx.verify_mode = ssl.CERT_REQUIRED
    client_ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    client_ctx.load_verify_locations(cafile=server.ca_cert)
    client_ctx.load_cert_chain(client_cert, client_key)
    left, right = socket.socketpair()
    errors: list[str] = []

    def serve() -> None:
        try:
            with server_ctx.wrap_socket(left, server_side=True) as tls:
                tls.sendall(b"ok")
        except (ssl.SSLError, OSError) as exc:
            errors.append(f"server: {exc}")

    thread = threading.Thread(target=serve)
    thread.start()
    try:
        with client_ctx.wrap_socket(right, server_hostname="localhost") as tls:
            data = tls.recv(2)  # TLS 1.3: a refused client cert shows up on first read
            if data != b"ok":
                errors.append(f"client: got {data!r}")
    except (ssl.SSLError, OSError) as exc:
        errors.append(f"client: {exc}")
    thread.join(10)
    left.close()
    right.close()
    return "; ".join(errors) or None


def test_mutual_tls_accepts_own_project_and_refuses_another(state: Path) -> None:
    a = ProjectPKI.ensure(state, "project-a")
    b = ProjectPKI.ensure(state, "project-b")
    assert _handshake(b, b.client_cert, b.client_key) is None
    error = _handshake(b, a.client_cert, a.client_key)
    assert error is not None and "certificate" in error.lower()


# -- CLI ----------------------------------------------------------------------------------


def run_cli(*args: str, env_state: Path | None = None) -> subprocess.CompletedProcess[str]:
    env = {"PATH": "/usr/bin:/bin"}
    if env_state is not None:
        env["SECUREBUILD_STATE_DIR"] = str(env_state)
    return subprocess.run(
        [sys.executable, "-m", "securebuild", "ca", *args],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        env=env,
    )


def test_cli_init_show_rotate(state: Path) -> None:
    result = run_cli("init", "demo", "--host", "vm1.example", env_state=state)
    assert result.returncode == 0, result.stderr
    assert "vm1.example, localhost, 127.0.0.1" in result.stdout
    shown = run_cli("show", "demo", "--json", "--state-dir", str(state))
    assert shown.returncode == 0, shown.stderr
    before = json.loads(shown.stdout)
    assert before["server"]["hosts"] == ["vm1.example", "localhost", "127.0.0.1"]
    assert before["ca"]["subject"] == "CN=demo,OU=securebuild project CA,O=securebuild"
    assert run_cli("rotate", "demo", "--ca", env_state=state).returncode == 0
    after = json.loads(run_cli("show", "demo", "--json", env_state=state).stdout)
    assert after["ca"]["sha256"] != before["ca"]["sha256"]
    assert after["server"]["hosts"] == before["server"]["hosts"]


def test_cli_errors_are_one_line(state: Path) -> None:
    result = run_cli("show", "nope", env_state=state)
    assert result.returncode == 1
    assert result.stderr.startswith("securebuild: error: project 'nope' has no PKI")
    result = run_cli("init", "Bad_Name", env_state=state)
    assert result.returncode == 1
    assert "DNS-1123" in result.stderr and "Traceback" not in result.stderr


def test_pki_imports_no_network_library() -> None:
    """The pki layer only computes and writes files (DESIGN.md section 2).

    ``socket`` is not in the list: cryptography pulls it in through ``email.utils``.
    """
    probe = (
        "import sys, securebuild.pki, securebuild.commands.ca; "
        "print(' '.join(sorted(m for m in sys.modules if m.split('.')[0] in "
        "{'ssl', 'http', 'requests', 'urllib3', 'docker', 'kubernetes', 'asyncio', 'aiohttp'})))"
    )
    result = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, timeout=60, check=True
    )
    assert result.stdout.strip() == ""
