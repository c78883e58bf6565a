"""Prometheus metrics of the cluster client, in the default registry (the daemon's /metrics).

DESIGN section 6 asks for API errors: an operator needs to see a daemon that cannot reach the
API server, or that is refused by it (401/403 after a token or RBAC change), without reading its
log. Conflicts (409) are counted too; they are part of the claim protocol, so a dashboard should
watch them as a rate next to the builds, not alert on one.
"""

from __future__ import annotations

from prometheus_client import Counter

CLUSTER_API_ERRORS = Counter(
    "securebuild_cluster_api_errors_total",
    "Kubernetes/OpenShift API requests that failed: by HTTP status, or 'unreachable' (no answer)",
    ["code"],
)

#: The label for a request that got no HTTP answer (connection refused, timeout, TLS failure).
UNREACHABLE = "unreachable"


def count_error(code: int | str) -> None:
    CLUSTER_API_ERRORS.labels(code=str(code)).inc()
