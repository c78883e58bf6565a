"""Validation of the names that end up in paths and certificates.

A project name is tenant data (it comes from an OpenShift namespace), and it becomes a directory
name under the state directory and a certificate subject. Kubernetes already restricts namespace
names to DNS-1123 labels; checking the same rule here means a hostile or corrupted value can never
walk out of ``<state_dir>/pki/`` (``..``, ``/``) or smuggle odd bytes into a subject.
"""

from __future__ import annotations

import ipaddress
import re

from securebuild.pki.errors import InvalidName

#: Kubernetes' DNS-1123 label: what a namespace (so an OpenShift project) name may be.
_DNS1123_LABEL = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?")
_DNS1123_LABEL_MAX = 63
#: RFC 1123 host name label (case-insensitive; normalised to lower case).
_HOST_LABEL = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?")
_HOST_MAX = 253

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


def validate_project(project: str) -> str:
    """Return ``project`` if it is a DNS-1123 label, else raise :class:`InvalidName`."""
    if not isinstance(project, str):
        raise InvalidName(f"project name must be a string, not {type(project).__name__}")
    if len(project) > _DNS1123_LABEL_MAX or not _DNS1123_LABEL.fullmatch(project):
        raise InvalidName(
            f"invalid project name {project!r}: must be a DNS-1123 label (at most 63 characters: "
            "lower-case letters, digits and '-', starting and ending with a letter or digit)"
        )
    return project


def parse_host(host: str) -> str | IPAddress:
    """Classify a server host as an IP address or a DNS name (lower case), or raise.

    Wildcards are refused: a server certificate names exactly the VM's addresses, nothing more.
    """
    if not isinstance(host, str) or not host:
        raise InvalidName(f"invalid server host {host!r}: empty")
    candidate = host.strip("[]") if host.startswith("[") else host
    try:
        return ipaddress.ip_address(candidate)
    except ValueError:
        pass
    name = host.lower().rstrip(".")
    labels = name.split(".")
    if (
        len(name) > _HOST_MAX
        or not all(len(label) <= _DNS1123_LABEL_MAX for label in labels)
        or not all(_HOST_LABEL.fullmatch(label) for label in labels)
    ):
        raise InvalidName(
            f"invalid server host {host!r}: must be an IP address or a DNS name "
            "(letters, digits, '-' and '.', no wildcards)"
        )
    return name
