"""securebuild.cluster against a real kube-apiserver + etcd (the controlplane fixture).

Watch robustness (410, restart, frozen server), claims (races, takeover), the status writer
(conflicts, transition rules, conditions) and events, all as the daemon's own identity, so the
RBAC of deploy/rbac/daemon.yaml is exercised too.
"""

from __future__ import annotations

import os
import signal
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from prometheus_client import REGISTRY

from securebuild.cluster import (
    ApiError,
    ClaimLost,
    Claims,
    ClusterAccess,
    ClusterError,
    EventRecorder,
    InvalidTransition,
    Kube,
    ObjectCache,
    Reflector,
    SecretLookup,
    StatusChange,
    StatusWriter,
    WatchTimeouts,
    paths,
)
from securebuild.cluster.claims import Claim
from securebuild.devenv.controlplane import ControlPlane
from securebuild.model.status import GENERIC_BUILD_FAILED, Phase
from tests.helpers.cluster import (
    build_events,
    create_build,
    create_namespace,
    get_build,
    kube_for,
    unique,
    wait_for,
)


@pytest.fixture(scope="module")
def admin(controlplane: ControlPlane) -> Kube:
    return kube_for(controlplane, "admin")


@pytest.fixture(scope="module")
def daemon_kube(controlplane: ControlPlane) -> Kube:
    return kube_for(controlplane, "daemon")


@pytest.fixture
def namespace(admin: Kube) -> str:
    return create_namespace(admin, unique("cl"))


FAST = WatchTimeouts(connect=2.0, request=5.0, inactivity=3.0, backoff_initial=0.1, backoff_max=1.0)


@pytest.fixture
def watched(daemon_kube: Kube) -> Iterator[tuple[Reflector, ObjectCache]]:
    cache = ObjectCache()
    reflector = Reflector(daemon_kube, paths.builds(), cache, timeouts=FAST, name="builds")
    reflector.start()
    assert reflector.wait_synced(15), reflector.stats.last_error
    yield reflector, cache
    reflector.stop()


def test_tls_and_proxy_ignore_the_environment(
    controlplane: ControlPlane, monkeypatch: pytest.MonkeyPatch, tmp_path: Any
) -> None:
    bogus = tmp_path / "bogus-ca.pem"
    bogus.write_text("not a certificate\n")
    for var in ("REQUESTS_CA_BUNDLE", "SSL_CERT_FILE", "CURL_CA_BUNDLE"):
        monkeypatch.setenv(var, str(bogus))
    monkeypatch.setenv("SSL_CERT_DIR", str(tmp_path))
    monkeypatch.setenv("HTTPS_PROXY", "http://127.0.0.1:9")  # nothing listens there
    monkeypatch.setenv("https_proxy", "http://127.0.0.1:9")
    kube = kube_for(controlplane, "daemon")
    assert kube.configuration.proxy is None
    answer = kube.get(paths.builds())
    assert answer["kind"] == "BuildList"


def test_watch_sees_changes(
    admin: Kube, namespace: str, watched: tuple[Reflector, ObjectCache]
) -> None:
    _reflector, cache = watched
    create_build(admin, namespace, "b1")
    wait_for("b1 in cache", lambda: cache.get(f"{namespace}/b1"))
    admin.request("DELETE", paths.build(namespace, "b1"))
    wait_for("b1 gone from cache", lambda: cache.get(f"{namespace}/b1") is None)


def test_watch_relists_after_410_and_survives_apiserver_restart(
    controlplane: ControlPlane, admin: Kube, namespace: str, watched: tuple[Reflector, ObjectCache]
) -> None:
    reflector, cache = watched
    create_build(admin, namespace, "before")
    wait_for("before in cache", lambda: cache.get(f"{namespace}/before"))
    gone_before, lists_before = reflector.stats.gone, reflector.stats.lists
    # Advance etcd's revision with writes the build watch does not see, then compact: the
    # reflector's resourceVersion is now older than etcd's history.
    for i in range(3):
        admin.request(
            "POST",
            f"/api/v1/namespaces/{namespace}/configmaps",
            body={"metadata": {"name": f"cm{i}"}, "data": {"k": "v"}},
        )
    controlplane.compact_etcd()
    controlplane.stop_apiserver()
    time.sleep(1.0)  # the reflector now fails to reconnect and backs off
    controlplane.start_apiserver()
    # Deleted while the reflector was not watching: only the re-list can notice.
    admin.request("DELETE", paths.build(namespace, "before"))
    create_build(admin, namespace, "after")
    wait_for("after in cache", lambda: cache.get(f"{namespace}/after"), timeout=30)
    wait_for("before gone", lambda: cache.get(f"{namespace}/before") is None, timeout=30)
    assert reflector.stats.gone > gone_before, reflector.stats
    assert reflector.stats.lists > lists_before
    assert reflector.stats.errors > 0  # the outage was seen and retried


def _api_errors(code: str) -> float:
    return REGISTRY.get_sample_value("securebuild_cluster_api_errors_total", {"code": code}) or 0


def test_failed_requests_are_counted_by_status(
    controlplane: ControlPlane, admin: Kube, namespace: str, tmp_path: Path
) -> None:
    """/metrics shows a daemon that the API server refuses or that cannot reach it."""
    before = {code: _api_errors(code) for code in ("403", "404", "unreachable")}
    with pytest.raises(ApiError) as refused:
        kube_for(controlplane, "bob").get(paths.builds(namespace))
    assert refused.value.status == 403
    with pytest.raises(ApiError) as missing:
        admin.get(paths.build(namespace, "no-such-build"))
    assert missing.value.status == 404
    kubeconfig = yaml.safe_load(controlplane.kubeconfig("admin").read_text())
    kubeconfig["clusters"][0]["cluster"]["server"] = "https://127.0.0.1:9"  # nothing listens
    away = tmp_path / "away.kubeconfig"
    away.write_text(yaml.safe_dump(kubeconfig))
    with pytest.raises(ClusterError):
        Kube.from_access(ClusterAccess(kubeconfig=away), timeout=(2.0, 2.0)).get(paths.builds())
    assert _api_errors("403") == before["403"] + 1
    assert _api_errors("404") == before["404"] + 1
    assert _api_errors("unreachable") == before["unreachable"] + 1


def test_watch_recovers_from_a_frozen_apiserver(
    controlplane: ControlPlane, admin: Kube, namespace: str, watched: tuple[Reflector, ObjectCache]
) -> None:
    reflector, cache = watched
    timeouts_before = reflector.stats.inactivity_timeouts
    pid = next(pid for name, pid in controlplane.processes() if name == "kube-apiserver")
    os.kill(pid, signal.SIGSTOP)  # TCP stays open, nothing is answered: a silent stream
    try:
        wait_for(
            "an inactivity timeout",
            lambda: reflector.stats.inactivity_timeouts > timeouts_before,
            timeout=FAST.inactivity * 4,
        )
    finally:
        os.kill(pid, signal.SIGCONT)
    create_build(admin, namespace, "thawed")
    wait_for("thawed in cache", lambda: cache.get(f"{namespace}/thawed"), timeout=30)


def test_two_claimants_exactly_one_wins(
    controlplane: ControlPlane, admin: Kube, namespace: str
) -> None:
    names = [f"race{i}" for i in range(10)]
    snapshots = [create_build(admin, namespace, n) for n in names]
    a = Claims(kube_for(controlplane, "daemon"), "daemon-a", 30)
    b = Claims(kube_for(controlplane, "daemon"), "daemon-b", 30)
    winners: dict[str, list[str]] = {n: [] for n in names}
    barrier = threading.Barrier(2)

    def race(claims: Claims) -> None:
        barrier.wait()
        for snap in snapshots:
            if claims.try_claim(snap) is not None:
                winners[snap["metadata"]["name"]].append(claims.identity)

    threads = [threading.Thread(target=race, args=(c,)) for c in (a, b)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for name in names:
        assert len(winners[name]) == 1, winners
        claim = Claim.of(get_build(admin, namespace, name))
        assert claim is not None and claim.holder == winners[name][0]


def test_lease_takeover_fences_the_old_holder(
    daemon_kube: Kube, admin: Kube, namespace: str
) -> None:
    build = create_build(admin, namespace, "lease")
    old = Claims(daemon_kube, "daemon-old", 1.0)
    new = Claims(daemon_kube, "daemon-new", 30.0)
    claimed = old.try_claim(build)
    assert claimed is not None and claimed[0].attempt == 1
    assert new.try_claim(get_build(admin, namespace, "lease")) is None  # lease still valid
    old.renew(namespace, "lease")
    time.sleep(1.2)
    taken = new.try_claim(get_build(admin, namespace, "lease"))
    assert taken is not None
    assert taken[0].holder == "daemon-new" and taken[0].attempt == 2
    with pytest.raises(ClaimLost):
        old.renew(namespace, "lease")
    old_writer = StatusWriter(daemon_kube, "daemon-old", EventRecorder(daemon_kube))
    with pytest.raises(ClaimLost):
        old_writer.write(namespace, "lease", StatusChange(phase=Phase.RUNNING))
    assert (get_build(admin, namespace, "lease").get("status") or {}).get("phase") is None


class _InterferingKube(Kube):
    """Before each of the first ``n`` status patches, another writer changes the Build."""

    def __init__(self, inner: Kube, other: Kube, n: int) -> None:
        super().__init__(inner.configuration)
        self.other = other
        self.remaining = n

    def request(self, method: str, path: str, **kwargs: Any) -> Any:
        if method == "PATCH" and path.endswith("/status") and self.remaining > 0:
            self.remaining -= 1
            self.other.request(
                "PATCH",
                path.removesuffix("/status"),
                body={"metadata": {"labels": {"touched": str(self.remaining)}}},
                content_type="application/merge-patch+json",
            )
        return super().request(method, path, **kwargs)


def test_status_writer_retries_conflicts_and_records_events(
    daemon_kube: Kube, admin: Kube, namespace: str
) -> None:
    build = create_build(admin, namespace, "st")
    claims = Claims(daemon_kube, "daemon-st", 30)
    assert claims.try_claim(build) is not None
    kube = _InterferingKube(daemon_kube, admin, n=3)
    writer = StatusWriter(kube, "daemon-st", EventRecorder(daemon_kube))
    writer.write(namespace, "st", StatusChange(phase=Phase.PENDING))
    stored = writer.write(
        namespace,
        "st",
        StatusChange(phase=Phase.RUNNING, fields={"startTimestamp": "2026-01-01T00:00:00Z"}),
    )
    assert writer.conflicts == 3
    assert stored["status"]["phase"] == "Running"
    assert stored["metadata"]["labels"]["touched"] == "0"  # the other writer's change is kept
    stored = writer.write(
        namespace,
        "st",
        StatusChange(
            phase=Phase.FAILED,
            reason=GENERIC_BUILD_FAILED.reason,
            message=GENERIC_BUILD_FAILED.message,
        ),
    )
    status = stored["status"]
    assert status["reason"] == "GenericBuildFailed"
    assert status["message"] == "Generic Build failure - check logs for details."
    conditions = {c["type"]: c for c in status["conditions"]}
    assert set(conditions) == {"Pending", "Running", "Failed"}
    assert conditions["Failed"]["status"] == "True"
    assert conditions["Failed"]["reason"] == "GenericBuildFailed"
    assert conditions["Running"]["status"] == "False"
    # Terminal phases never change.
    with pytest.raises(InvalidTransition):
        writer.write(namespace, "st", StatusChange(phase=Phase.RUNNING))
    with pytest.raises(InvalidTransition):
        writer.write(namespace, "st", StatusChange(phase=Phase.COMPLETE))
    events = build_events(admin, namespace, "st")
    # Same second: the order of creationTimestamp is not defined, compare as a sorted list.
    assert sorted((e["reason"], e["message"], e["type"]) for e in events) == [
        ("BuildFailed", f"Build {namespace}/st failed", "Normal"),
        ("BuildStarted", f"Build {namespace}/st is now running", "Normal"),
    ]
    assert all(e["source"]["component"] == "build-controller" for e in events)
    assert all(e["involvedObject"]["uid"] == build["metadata"]["uid"] for e in events)


def test_secret_lookup(daemon_kube: Kube, admin: Kube, namespace: str) -> None:
    admin.request(
        "POST",
        f"/api/v1/namespaces/{namespace}/secrets",
        body={"metadata": {"name": "push"}, "stringData": {"token": "s3cret"}},
    )
    secret = SecretLookup(daemon_kube).get(namespace, "push")
    assert secret is not None and secret.data == {"token": b"s3cret"}
    assert "s3cret" not in repr(secret)
    assert SecretLookup(daemon_kube).get(namespace, "absent") is None
