"""Issuing the three kinds of certificates a project needs, with cryptography.

Everything is ECDSA P-256 with SHA-256: supported by Go's crypto/tls (dockerd), OpenSSL (Python
clients, curl) and small. Profiles follow RFC 5280 closely enough for cryptography's own path
validator (``cryptography.x509.verification``) to accept them, which the tests use:

- CA: ``basicConstraints CA:TRUE, pathlen:0`` (critical), ``keyUsage keyCertSign, cRLSign``
  (critical), subject key identifier.
- dockerd server: ``extendedKeyUsage serverAuth``, ``subjectAltName`` with every DNS name and IP,
  ``keyUsage digitalSignature`` (critical), not a CA.
- control-side client: ``extendedKeyUsage clientAuth``, same key usage, not a CA.

``not_before`` is set a few minutes in the past so that a VM whose clock lags slightly behind the
control side still accepts a certificate issued a moment ago.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
from collections.abc import Iterable
from dataclasses import dataclass

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from securebuild.pki.names import IPAddress

CLOCK_SKEW = dt.timedelta(minutes=5)
ORGANIZATION = "securebuild"


@dataclass(frozen=True)
class Issued:
    """A certificate and its private key, both in memory."""

    cert: x509.Certificate
    key: ec.EllipticCurvePrivateKey

    def cert_pem(self) -> bytes:
        return self.cert.public_bytes(serialization.Encoding.PEM)

    def key_pem(self) -> bytes:
        return key_to_pem(self.key)


def key_to_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    """PKCS#8, unencrypted: dockerd cannot read an encrypted key, the file mode protects it."""
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def new_key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


def _name(common_name: str, unit: str) -> x509.Name:
    """``CN=<project>,OU=<role>,O=securebuild``: the CN is the project (at most 63 characters,
    within X.520's 64), the role goes in OU."""
    return x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, ORGANIZATION),
            x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, unit),
            x509.NameAttribute(NameOID.COMMON_NAME, common_name),
        ]
    )


def issue_ca(project: str, *, now: dt.datetime, lifetime: dt.timedelta) -> Issued:
    """A self-signed CA that signs only this project's leaves (path length 0)."""
    key = new_key()
    subject = _name(project, "securebuild project CA")
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - CLOCK_SKEW)
        .not_valid_after(now + lifetime)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=False,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )
    return Issued(cert, key)


def _leaf_builder(
    ca: Issued,
    key: ec.EllipticCurvePrivateKey,
    subject: x509.Name,
    *,
    usage: x509.ObjectIdentifier,
    now: dt.datetime,
    lifetime: dt.timedelta,
) -> x509.CertificateBuilder:
    # A leaf never outlives its CA: a certificate valid past its issuer's expiry is useless
    # and makes "days left" lie.
    not_after = min(now + lifetime, ca.cert.not_valid_after_utc)
    ca_ski = ca.cert.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value
    return (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(ca.cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - CLOCK_SKEW)
        .not_valid_after(not_after)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=False,
                crl_sign=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ca_ski),
            critical=False,
        )
    )


def san_entries(hosts: Iterable[str | IPAddress]) -> list[x509.GeneralName]:
    """Turn parsed hosts into SAN entries, IPs as ``IPAddress`` (never as DNS names)."""
    entries: list[x509.GeneralName] = []
    for host in hosts:
        if isinstance(host, ipaddress.IPv4Address | ipaddress.IPv6Address):
            entries.append(x509.IPAddress(host))
        else:
            entries.append(x509.DNSName(host))
    return entries


def issue_server(
    ca: Issued,
    project: str,
    hosts: Iterable[str | IPAddress],
    *,
    now: dt.datetime,
    lifetime: dt.timedelta,
) -> Issued:
    """dockerd's certificate for the project's VM, valid for exactly ``hosts``."""
    key = new_key()
    sans = san_entries(hosts)
    cert = (
        _leaf_builder(
            ca,
            key,
            _name(project, "dockerd"),
            usage=ExtendedKeyUsageOID.SERVER_AUTH,
            now=now,
            lifetime=lifetime,
        )
        .add_extension(x509.SubjectAlternativeName(sans), critical=False)
        .sign(ca.key, hashes.SHA256())
    )
    return Issued(cert, key)


def issue_client(ca: Issued, project: str, *, now: dt.datetime, lifetime: dt.timedelta) -> Issued:
    """The control side's client certificate: the only key that can drive the VM's dockerd."""
    key = new_key()
    cert = (
        _leaf_builder(
            ca,
            key,
            _name(project, "controller"),
            usage=ExtendedKeyUsageOID.CLIENT_AUTH,
            now=now,
            lifetime=lifetime,
        )
        # RFC 5280 profiles (cryptography's client verifier among them) want a SAN on every
        # leaf; a URI names the identity without being usable as a host name.
        .add_extension(
            x509.SubjectAlternativeName([x509.UniformResourceIdentifier(client_uri(project))]),
            critical=False,
        )
        .sign(ca.key, hashes.SHA256())
    )
    return Issued(cert, key)


def client_uri(project: str) -> str:
    """The client certificate's identity, e.g. ``urn:securebuild:project:demo:controller``."""
    return f"urn:securebuild:project:{project}:controller"


def signed_by(cert: x509.Certificate, ca: x509.Certificate) -> bool:
    """True when ``ca`` issued ``cert`` (issuer name and signature both match)."""
    try:
        cert.verify_directly_issued_by(ca)
    except (ValueError, TypeError, InvalidSignature):
        return False
    return True


def key_matches(cert: x509.Certificate, key: ec.EllipticCurvePrivateKey) -> bool:
    return cert.public_key() == key.public_key()


def server_hosts_of(cert: x509.Certificate) -> list[str | IPAddress]:
    """The DNS names and IPs a server certificate is valid for."""
    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return []
    hosts: list[str | IPAddress] = []
    hosts.extend(san.get_values_for_type(x509.DNSName))
    for ip in san.get_values_for_type(x509.IPAddress):
        if isinstance(ip, ipaddress.IPv4Address | ipaddress.IPv6Address):
            hosts.append(ip)
    return hosts
