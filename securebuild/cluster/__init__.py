"""The OpenShift API as securebuild uses it: list+watch, claims, status, events, secrets.

- :mod:`.client`: :class:`Kube`, raw JSON calls over the ``kubernetes`` client's transport
  with explicit timeouts, TLS and proxy settings immune to the environment;
- :mod:`.watch`: :class:`Reflector` (list+watch, 410 re-list, inactivity timeout, backoff) and
  :class:`ObjectCache`;
- :mod:`.claims`: claim, renew and take over Builds with a resourceVersion precondition;
- :mod:`.status`: the status writer (transition rules, conflict retries, conditions, events);
- :mod:`.events`, :mod:`.secrets`: Events on Builds, Secret lookup.
"""

from securebuild.cluster import paths
from securebuild.cluster.claims import CLAIM_ANNOTATION, Claim, ClaimLost, Claims, claimable_by
from securebuild.cluster.client import ApiError, ClusterAccess, ClusterError, Kube
from securebuild.cluster.events import EventRecorder
from securebuild.cluster.secrets import SecretData, SecretLookup
from securebuild.cluster.status import InvalidTransition, StatusChange, StatusWriter
from securebuild.cluster.watch import ObjectCache, Reflector, WatchTimeouts

__all__ = [
    "CLAIM_ANNOTATION",
    "ApiError",
    "Claim",
    "ClaimLost",
    "Claims",
    "ClusterAccess",
    "ClusterError",
    "EventRecorder",
    "InvalidTransition",
    "Kube",
    "ObjectCache",
    "Reflector",
    "SecretData",
    "SecretLookup",
    "StatusChange",
    "StatusWriter",
    "WatchTimeouts",
    "claimable_by",
    "paths",
]
