"""Build creation -> claim latency and daemon memory with many Builds in the cluster.

    .venv/bin/python bench/claim_latency.py [--namespaces 1000] [--builds 10000] [--samples 200]

Starts a real control plane (etcd + kube-apiserver, securebuild.devenv.controlplane), creates
``--builds`` Builds spread over ``--namespaces`` opted-in namespaces directly in the API server
(they need not run: each carries a live claim of another, imaginary daemon, so this daemon keeps
all of them in its cache and weighs them on every scheduling pass, the worst case for memory and
CPU), then starts a daemon in this process (executor: returns Complete at once; the run is not
what is measured) and creates ``--samples`` new Builds one by one in fresh namespaces. Latency is
from just before the create call to the moment the daemon's claim succeeded (both monotonic
clocks of this process). RSS is this process's, i.e. the daemon's, after its caches synced and at
the end. Printed, never asserted.
"""

from __future__ import annotations

import argparse
import datetime as dt
import statistics
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from tempfile import TemporaryDirectory
from typing import Any

from securebuild.cluster import ClusterAccess, Kube, paths
from securebuild.cluster.claims import CLAIM_ANNOTATION, Claim
from securebuild.daemon import Daemon, Job, Outcome
from securebuild.daemon.config import ClusterConfig, DaemonConfig, Limits, Timeouts
from securebuild.devenv.controlplane import ControlPlane
from securebuild.model.status import Phase

LABEL = "securebuild.appuio.ch/enabled"


def rss_mib() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


class InstantExecutor:
    def run(self, job: Job, cancel: threading.Event) -> Outcome:
        return Outcome(Phase.COMPLETE)


def build(namespace: str, name: str, claim: str | None = None) -> dict[str, Any]:
    annotations = {CLAIM_ANNOTATION: claim} if claim else {}
    return {
        "apiVersion": "build.openshift.io/v1",
        "kind": "Build",
        "metadata": {"name": name, "namespace": namespace, "annotations": annotations},
        "spec": {
            "source": {"type": "Dockerfile", "dockerfile": "FROM busybox\n"},
            "strategy": {"type": "Docker", "dockerStrategy": {}},
            "output": {"to": {"kind": "DockerImage", "name": "127.0.0.1:5000/bench/app:latest"}},
        },
    }


def namespace(admin: Kube, name: str) -> None:
    admin.request(
        "POST",
        paths.namespaces(),
        body={"metadata": {"name": name, "labels": {LABEL: "true"}}},
    )


def populate(admin: Kube, namespaces: int, builds: int) -> float:
    started = time.monotonic()
    held = Claim("another-daemon", dt.datetime.now(dt.UTC), 10**8, 1).to_annotation()
    with ThreadPoolExecutor(16) as pool:
        list(pool.map(lambda i: namespace(admin, f"bench-{i}"), range(namespaces)))
        list(
            pool.map(
                lambda i: admin.request(
                    "POST",
                    paths.builds(f"bench-{i % namespaces}"),
                    body=build(f"bench-{i % namespaces}", f"b-{i}", held),
                ),
                range(builds),
            )
        )
    return time.monotonic() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--namespaces", type=int, default=1000)
    parser.add_argument("--builds", type=int, default=10000)
    parser.add_argument("--samples", type=int, default=200)
    parser.add_argument("--interval", type=float, default=0.05, help="seconds between creates")
    args = parser.parse_args()

    with TemporaryDirectory(prefix="sb-bench-") as tmp, ControlPlane() as plane:
        admin = Kube.from_access(ClusterAccess(kubeconfig=plane.kubeconfig("admin")))
        seconds = populate(admin, args.namespaces, args.builds)
        print(f"created {args.builds} Builds in {args.namespaces} namespaces in {seconds:.1f} s")
        config = DaemonConfig(
            cluster=ClusterConfig(kubeconfig=plane.kubeconfig("daemon")),
            identity="bench-daemon",
            limits=Limits(max_concurrent_builds=1000, builds_per_project=1000),
            timeouts=Timeouts(lease_seconds=60),
            state_dir=Path(tmp),
        )
        kube = Kube.from_access(ClusterAccess(kubeconfig=plane.kubeconfig("daemon")))
        rss_before = rss_mib()
        daemon = Daemon(config, kube=kube, executor=InstantExecutor(), tick=0.5)
        claimed: dict[str, float] = {}
        original = daemon.claims.try_claim

        def timed(obj: Any) -> Any:
            result = original(obj)
            if result is not None:
                claimed.setdefault(result[1]["metadata"]["namespace"], time.monotonic())
            return result

        daemon.claims.try_claim = timed  # type: ignore[method-assign]
        started = time.monotonic()
        daemon.start()
        if not daemon.wait_ready(300):
            raise SystemExit("the daemon did not sync")
        synced = time.monotonic() - started
        time.sleep(2)  # a few scheduling passes over the full cache
        rss_synced = rss_mib()
        print(
            f"daemon synced {len(daemon.builds)} active Builds in {synced:.1f} s; "
            f"RSS {rss_before:.0f} MiB before start, {rss_synced:.0f} MiB after sync"
        )
        created: dict[str, float] = {}
        for i in range(args.samples):
            ns = f"sample-{i}"
            namespace(admin, ns)
            time.sleep(args.interval)
            created[ns] = time.monotonic()
            admin.request("POST", paths.builds(ns), body=build(ns, "app-1"))
        deadline = time.monotonic() + 60
        while len([n for n in created if n in claimed]) < len(created):
            if time.monotonic() > deadline:
                break
            time.sleep(0.1)
        latencies = sorted((claimed[n] - created[n]) * 1000 for n in created if n in claimed)
        daemon.stop()
        if not latencies:
            raise SystemExit("no sample was claimed")
        p99 = latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))]
        print(
            f"claim latency over {len(latencies)}/{args.samples} samples: "
            f"p50 {statistics.median(latencies):.0f} ms, p99 {p99:.0f} ms, "
            f"max {latencies[-1]:.0f} ms"
        )
        print(f"daemon RSS at the end: {rss_mib():.0f} MiB")


if __name__ == "__main__":
    main()
