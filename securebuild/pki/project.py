"""One project's PKI on disk: its own CA, dockerd's server certificate and our client certificate.

Each OpenShift project gets its own CA, so dockerd in project A's VM trusts only certificates
from A's CA: a client key leaked from project B cannot drive A's daemon (dockerd has no CN
allow-list; the CA *is* the grant, see reference/security-robustness.md 2.1).

Layout under ``<state_dir>/pki/<project>/`` (directories 0700, keys 0400, certificates 0444)::

    current -> g-20261203T160000-1a2b3c    (symlink, switched atomically)
    g-20261203T160000-1a2b3c/
        ca.crt ca.key server.crt server.key client.crt client.key

Every change writes a complete new generation directory and then replaces the ``current``
symlink with one rename, so a crash in the middle of a rotation leaves either the old set or the
new set, never a CA with leaves it did not sign. The previous generation is kept (for rollback
or to inspect what a VM still has); older ones are removed. The public paths
(``ca_cert`` ...) go through ``current`` and so never change.

Renewal policy (checked by every :meth:`ProjectPKI.ensure`):

- leaves (server, client) are reissued with new keys when missing, unreadable, not signed by the
  current CA, not matching their key, with less than :data:`RENEW_BEFORE` left, or (server) when
  the requested host names differ from the certificate's SANs;
- the CA is replaced on request (:meth:`ProjectPKI.rotate` with ``ca=True``), and automatically
  only when it has less than :data:`RENEW_BEFORE` left, because then no leaf could be issued that
  lasts (a leaf never outlives its CA). A warning is logged from :data:`CA_WARN_BEFORE` on.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import secrets
import shutil
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID

from securebuild.pki import certs
from securebuild.pki.errors import PKIError
from securebuild.pki.files import (
    CERT_MODE,
    KEY_MODE,
    ensure_private_dir,
    locked,
    write_atomic,
)
from securebuild.pki.names import IPAddress, parse_host, validate_project

logger = logging.getLogger(__name__)

CA_LIFETIME = dt.timedelta(days=5 * 365 + 1)
LEAF_LIFETIME = dt.timedelta(days=365)
RENEW_BEFORE = dt.timedelta(days=30)
CA_WARN_BEFORE = dt.timedelta(days=180)

#: Host names every server certificate carries: the control side reaches a VM's dockerd through
#: a port forward on the loopback interface.
DEFAULT_SERVER_HOSTS: tuple[str, ...] = ("localhost", "127.0.0.1")

_CURRENT = "current"
_FILES = {
    "ca_cert": "ca.crt",
    "ca_key": "ca.key",
    "server_cert": "server.crt",
    "server_key": "server.key",
    "client_cert": "client.crt",
    "client_key": "client.key",
}


def utcnow() -> dt.datetime:
    """The clock every decision uses (a function so tests can move time)."""
    return dt.datetime.now(dt.UTC)


def _normalise_hosts(hosts: Iterable[str | IPAddress]) -> list[str | IPAddress]:
    """Parse, de-duplicate (keeping order) and append the defaults."""
    seen: list[str | IPAddress] = []
    for host in [*hosts, *DEFAULT_SERVER_HOSTS]:
        parsed = host if not isinstance(host, str) else parse_host(host)
        if parsed not in seen:
            seen.append(parsed)
    return seen


def _fingerprint(cert: x509.Certificate) -> str:
    return cert.fingerprint(hashes.SHA256()).hex(":").upper()


def _has_eku(cert: x509.Certificate, oid: x509.ObjectIdentifier) -> bool:
    try:
        eku = cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    except x509.ExtensionNotFound:
        return False
    return oid in eku


@dataclass(frozen=True)
class _Set:
    """The six objects of one generation, as far as they could be read."""

    ca: certs.Issued | None
    server: certs.Issued | None
    client: certs.Issued | None


class ProjectPKI:
    """Paths and lifecycle of one project's certificates.

    Obtain one with :meth:`ensure` (create or renew as needed) or :meth:`load` (read only, for
    ``securebuild ca show``). The path attributes are stable across rotations.
    """

    ca_cert: Path
    ca_key: Path
    server_cert: Path
    server_key: Path
    client_cert: Path
    client_key: Path

    def __init__(self, state_dir: Path, project: str) -> None:
        self.project = validate_project(project)
        self.state_dir = Path(state_dir)
        self.directory = self.state_dir / "pki" / self.project
        current = self.directory / _CURRENT
        for attribute, filename in _FILES.items():
            setattr(self, attribute, current / filename)

    def __repr__(self) -> str:
        return f"ProjectPKI(project={self.project!r}, directory={str(self.directory)!r})"

    # -- public API -------------------------------------------------------------------------

    @classmethod
    def ensure(
        cls, state_dir: Path, project: str, *, server_hosts: Sequence[str] = ()
    ) -> ProjectPKI:
        """Create the project's PKI, or renew what needs renewing; return its paths.

        ``server_hosts`` are the DNS names and IPs dockerd is reached at; ``localhost`` and
        ``127.0.0.1`` are always added. When ``server_hosts`` is empty the existing server
        certificate's names are kept (so a caller that only needs the client certificate never
        narrows the server certificate); a non-empty list is the exact set wanted, and a
        certificate with a different set is reissued.
        """
        pki = cls(state_dir, project)
        wanted = _normalise_hosts(server_hosts) if server_hosts else None
        ensure_private_dir(pki.directory)
        with locked(pki.directory):
            pki._ensure_locked(wanted, rotate_ca=False, rotate_leaves=False)
        return pki

    @classmethod
    def load(cls, state_dir: Path, project: str) -> ProjectPKI:
        """The paths of an existing PKI; :class:`PKIError` if the project has none yet."""
        pki = cls(state_dir, project)
        if not pki.ca_cert.exists():
            raise PKIError(
                f"project {project!r} has no PKI under {pki.directory} "
                f"(create it with: securebuild ca init {project})"
            )
        return pki

    def rotate(self, *, ca: bool = False) -> None:
        """Reissue the server and client certificates with new keys (and the CA if ``ca``).

        After a CA rotation every VM of the project must receive the new CA and server
        certificate (re-run ``vm-ensure``) before the new client certificate is accepted.
        """
        ensure_private_dir(self.directory)
        with locked(self.directory):
            self._ensure_locked(None, rotate_ca=ca, rotate_leaves=True)

    @property
    def server_hosts(self) -> list[str]:
        """The names and IPs in the current server certificate's SAN."""
        cert = self._read_cert(self.server_cert)
        return [str(host) for host in certs.server_hosts_of(cert)]

    def describe(self) -> dict[str, object]:
        """Subjects, validity, fingerprints and paths, for ``securebuild ca show``."""
        now = utcnow()
        result: dict[str, object] = {
            "project": self.project,
            "directory": str(self.directory),
            "generation": str((self.directory / _CURRENT).readlink())
            if (self.directory / _CURRENT).is_symlink()
            else None,
        }
        for role, cert_path, key_path in (
            ("ca", self.ca_cert, self.ca_key),
            ("server", self.server_cert, self.server_key),
            ("client", self.client_cert, self.client_key),
        ):
            cert = self._read_cert(cert_path)
            entry: dict[str, object] = {
                "subject": cert.subject.rfc4514_string(),
                "issuer": cert.issuer.rfc4514_string(),
                "serial": format(cert.serial_number, "x"),
                "not_before": cert.not_valid_before_utc.isoformat(),
                "not_after": cert.not_valid_after_utc.isoformat(),
                "days_left": (cert.not_valid_after_utc - now).days,
                "sha256": _fingerprint(cert),
                "cert": str(cert_path),
                "key": str(key_path),
            }
            if role == "server":
                entry["hosts"] = [str(host) for host in certs.server_hosts_of(cert)]
            result[role] = entry
        return result

    # -- internals ----------------------------------------------------------------------------

    def _read_cert(self, path: Path) -> x509.Certificate:
        try:
            return x509.load_pem_x509_certificate(path.read_bytes())
        except FileNotFoundError as exc:
            raise PKIError(f"{path} is missing (run: securebuild ca init {self.project})") from exc
        except ValueError as exc:
            raise PKIError(f"{path} is not a PEM certificate: {exc}") from exc

    @staticmethod
    def _try_read(cert_path: Path, key_path: Path) -> certs.Issued | None:
        """A certificate and its key, or None if either is missing, unreadable or mismatched."""
        try:
            cert = x509.load_pem_x509_certificate(cert_path.read_bytes())
            key = serialization.load_pem_private_key(key_path.read_bytes(), password=None)
        except (OSError, ValueError, TypeError) as exc:
            logger.debug("cannot use %s / %s: %s", cert_path, key_path, exc)
            return None
        if not isinstance(key, ec.EllipticCurvePrivateKey) or not certs.key_matches(cert, key):
            logger.warning("%s does not match its key %s", cert_path, key_path)
            return None
        return certs.Issued(cert, key)

    def _read_set(self) -> _Set:
        return _Set(
            ca=self._try_read(self.ca_cert, self.ca_key),
            server=self._try_read(self.server_cert, self.server_key),
            client=self._try_read(self.client_cert, self.client_key),
        )

    def _leaf_reason(
        self, leaf: certs.Issued | None, ca: certs.Issued, usage: x509.ObjectIdentifier
    ) -> str | None:
        """Why a leaf must be reissued, or None if it is fine."""
        if leaf is None:
            return "missing or unreadable"
        if not certs.signed_by(leaf.cert, ca.cert):
            return "not signed by the current CA"
        if not _has_eku(leaf.cert, usage):
            return "wrong extended key usage"
        left = leaf.cert.not_valid_after_utc - utcnow()
        if left < RENEW_BEFORE:
            return f"expires in {left.days} days"
        return None

    def _ensure_locked(
        self,
        wanted_hosts: list[str | IPAddress] | None,
        *,
        rotate_ca: bool,
        rotate_leaves: bool,
    ) -> None:
        now = utcnow()
        current = self._read_set()
        ca_exists = self.ca_cert.exists()
        if ca_exists and current.ca is None and not rotate_ca:
            # Never replace a CA silently because its key went missing: VMs trust it.
            raise PKIError(
                f"{self.ca_cert} exists but it or its key {self.ca_key} is unreadable or "
                f"they do not match; replace the CA explicitly with: "
                f"securebuild ca rotate --ca {self.project}"
            )

        changes: list[str] = []
        ca = current.ca
        if ca is None:
            changes.append("new CA")
        elif rotate_ca:
            changes.append("CA rotated on request")
            ca = None
        else:
            left = ca.cert.not_valid_after_utc - now
            if left < RENEW_BEFORE:
                logger.warning(
                    "project %s: CA expires in %d days; replacing it (VMs need the new CA)",
                    self.project,
                    left.days,
                )
                changes.append(f"CA expires in {left.days} days")
                ca = None
            elif left < CA_WARN_BEFORE:
                logger.warning(
                    "project %s: CA expires in %d days; rotate it with "
                    "`securebuild ca rotate --ca %s`",
                    self.project,
                    left.days,
                    self.project,
                )
        if ca is None:
            ca = certs.issue_ca(self.project, now=now, lifetime=CA_LIFETIME)

        old_hosts = certs.server_hosts_of(current.server.cert) if current.server else []
        hosts = wanted_hosts if wanted_hosts is not None else _normalise_hosts(old_hosts)

        server = current.server
        reason = "rotated on request" if rotate_leaves else None
        reason = reason or self._leaf_reason(server, ca, ExtendedKeyUsageOID.SERVER_AUTH)
        if reason is None and server is not None and set(old_hosts) != set(hosts):
            reason = f"hosts changed from {sorted(map(str, old_hosts))}"
        if reason is not None or server is None:
            changes.append(f"server certificate ({reason})")
            server = certs.issue_server(ca, self.project, hosts, now=now, lifetime=LEAF_LIFETIME)

        client = current.client
        reason = "rotated on request" if rotate_leaves else None
        reason = reason or self._leaf_reason(client, ca, ExtendedKeyUsageOID.CLIENT_AUTH)
        if reason is not None or client is None:
            changes.append(f"client certificate ({reason})")
            client = certs.issue_client(ca, self.project, now=now, lifetime=LEAF_LIFETIME)

        if changes:
            self._write_generation(ca, server, client)
            logger.info("project %s PKI updated: %s", self.project, "; ".join(changes))
        else:
            self._fix_modes()

    def _write_generation(
        self, ca: certs.Issued, server: certs.Issued, client: certs.Issued
    ) -> None:
        stamp = utcnow().strftime("%Y%m%dT%H%M%S")
        name = f"g-{stamp}-{secrets.token_hex(3)}"
        generation = self.directory / name
        generation.mkdir(mode=0o700)
        for issued, cert_name, key_name in (
            (ca, "ca.crt", "ca.key"),
            (server, "server.crt", "server.key"),
            (client, "client.crt", "client.key"),
        ):
            write_atomic(generation / key_name, issued.key_pem(), KEY_MODE)
            write_atomic(generation / cert_name, issued.cert_pem(), CERT_MODE)
        link = self.directory / _CURRENT
        previous = str(link.readlink()) if link.is_symlink() else None
        tmp_link = self.directory / f".{_CURRENT}.{secrets.token_hex(3)}"
        tmp_link.symlink_to(name)
        tmp_link.replace(link)  # rename(2): the switch to the new set is atomic
        dir_fd = os.open(self.directory, os.O_RDONLY | os.O_DIRECTORY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)
        keep = {name, previous}
        for old in self.directory.glob("g-*"):
            if old.name not in keep:
                shutil.rmtree(old)

    def _fix_modes(self) -> None:
        """Put back modes someone loosened (the files are ours; the modes are the policy)."""
        for attribute, filename in _FILES.items():
            path: Path = getattr(self, attribute)
            want = KEY_MODE if filename.endswith(".key") else CERT_MODE
            mode = path.stat().st_mode & 0o777
            if mode != want:
                logger.warning("restoring mode %o of %s (was %o)", want, path, mode)
                path.chmod(want)
