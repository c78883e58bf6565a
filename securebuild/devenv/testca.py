"""A CA for the local test services (API server, etcd), kept as PEM files in one directory.

The certificates come from :mod:`securebuild.pki.certs` (the same profiles as the per-project
CAs: ECDSA P-256, SHA-256, RFC 5280 extensions) under the pseudo-project ``securebuild-dev``;
this module only adds persistence, so that a control plane restarted on the same directory keeps
its CA and every client that trusts it keeps working.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID

from securebuild.pki.certs import Issued, issue_ca, issue_client, issue_server, key_to_pem, new_key
from securebuild.pki.files import CERT_MODE, KEY_MODE, ensure_private_dir, write_atomic
from securebuild.pki.names import IPAddress

#: Long enough for a developer's control plane kept across weeks, short enough to be obviously
#: a test credential.
LIFETIME = dt.timedelta(days=365)
PROJECT = "securebuild-dev"


@dataclass(frozen=True)
class CertFiles:
    """Paths of one PEM certificate and its private key."""

    cert: Path
    key: Path


def _load_key(path: Path) -> ec.EllipticCurvePrivateKey:
    key = serialization.load_pem_private_key(path.read_bytes(), password=None)
    if not isinstance(key, ec.EllipticCurvePrivateKey):
        raise TypeError(f"{path}: expected an EC private key")
    return key


def _write(files: CertFiles, issued: Issued) -> None:
    write_atomic(files.key, issued.key_pem(), KEY_MODE)
    write_atomic(files.cert, issued.cert_pem(), CERT_MODE)


def _hosts(hosts: tuple[str, ...]) -> list[str | IPAddress]:
    parsed: list[str | IPAddress] = []
    for host in hosts:
        try:
            parsed.append(ipaddress.ip_address(host))
        except ValueError:
            parsed.append(host)
    return parsed


class TestCA:
    """``ca.crt``/``ca.key`` in ``directory``, created on first use and reused afterwards."""

    __test__ = False  # not a pytest test class despite the name

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.files = CertFiles(directory / "ca.crt", directory / "ca.key")
        ensure_private_dir(directory)
        if self.files.cert.exists() and self.files.key.exists():
            cert = x509.load_pem_x509_certificate(self.files.cert.read_bytes())
            self._ca = Issued(cert, _load_key(self.files.key))
        else:
            self._ca = issue_ca(PROJECT, now=dt.datetime.now(dt.UTC), lifetime=LIFETIME)
            _write(self.files, self._ca)

    def _files(self, name: str) -> tuple[CertFiles, bool]:
        files = CertFiles(self.directory / f"{name}.crt", self.directory / f"{name}.key")
        return files, files.cert.exists() and files.key.exists()

    def server(self, name: str, hosts: tuple[str, ...], *, also_client: bool = False) -> CertFiles:
        """``<name>.crt``/``.key`` for a TLS server reachable as ``hosts`` (IPs or DNS names).

        ``also_client``: the certificate may authenticate a client too. etcd needs that: its
        JSON gateway dials etcd's own gRPC port with the server certificate, and with
        ``--client-cert-auth`` a serverAuth-only certificate is refused there.
        """
        files, present = self._files(name)
        if not present:
            now = dt.datetime.now(dt.UTC)
            issued = issue_server(self._ca, PROJECT, _hosts(hosts), now=now, lifetime=LIFETIME)
            if also_client:
                issued = self._add_client_usage(issued)
            _write(files, issued)
        return files

    def _add_client_usage(self, issued: Issued) -> Issued:
        """Re-sign ``issued`` with extendedKeyUsage serverAuth + clientAuth, all else equal."""
        cert = issued.cert
        builder = (
            x509.CertificateBuilder()
            .subject_name(cert.subject)
            .issuer_name(cert.issuer)
            .public_key(issued.key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(cert.not_valid_before_utc)
            .not_valid_after(cert.not_valid_after_utc)
        )
        for extension in cert.extensions:
            value = extension.value
            if isinstance(value, x509.ExtendedKeyUsage):
                value = x509.ExtendedKeyUsage(
                    [ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH]
                )
            builder = builder.add_extension(value, critical=extension.critical)
        return Issued(builder.sign(self._ca.key, hashes.SHA256()), issued.key)

    def client(self, name: str) -> CertFiles:
        """``<name>.crt``/``.key`` for a TLS client (the service only checks the chain)."""
        files, present = self._files(name)
        if not present:
            now = dt.datetime.now(dt.UTC)
            _write(files, issue_client(self._ca, PROJECT, now=now, lifetime=LIFETIME))
        return files


def write_signing_key(path: Path) -> Path:
    """Write an EC private key (service-account token signing) unless present; return its path."""
    if not path.exists():
        write_atomic(path, key_to_pem(new_key()), KEY_MODE)
    return path


def write_public_key(private_key: Path, path: Path) -> Path:
    """Write the public half of ``private_key`` as PEM (the API server verifies tokens with it)."""
    public = _load_key(private_key).public_key()
    pem = public.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    write_atomic(path, pem, CERT_MODE)
    return path
