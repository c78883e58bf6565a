"""Per-project PKI: a CA per OpenShift project, dockerd's server certificate, our client one.

Imports no network library (import-linter layer ``pki``); see :mod:`securebuild.pki.project`
for the layout on disk and the renewal policy.
"""

from securebuild.pki.errors import InvalidName, PKIError
from securebuild.pki.names import validate_project
from securebuild.pki.project import (
    CA_LIFETIME,
    DEFAULT_SERVER_HOSTS,
    LEAF_LIFETIME,
    RENEW_BEFORE,
    ProjectPKI,
)

__all__ = [
    "CA_LIFETIME",
    "DEFAULT_SERVER_HOSTS",
    "LEAF_LIFETIME",
    "RENEW_BEFORE",
    "InvalidName",
    "PKIError",
    "ProjectPKI",
    "validate_project",
]
