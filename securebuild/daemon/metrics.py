"""Prometheus metrics of the daemon (DESIGN section 6), served by ``securebuild.api``."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

BUILDS = Counter(
    "securebuild_builds_total",
    "Builds that reached a terminal phase, by phase and reason",
    ["phase", "reason"],
)
QUEUE_WAIT = Histogram(
    "securebuild_queue_wait_seconds",
    "Time from Build creation to its claim by a daemon",
    buckets=(0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 1800),
)
QUEUED = Gauge("securebuild_builds_queued", "Builds in phase New in opted-in namespaces")
STAGE_SECONDS = Histogram(
    "securebuild_build_stage_seconds",
    "Duration of the stages of finished builds (FetchInputs, PullImages, Build, PushImage)",
    ["stage"],
    buckets=(1, 5, 15, 30, 60, 120, 300, 600, 1800, 3600),
)
RUNNING = Gauge("securebuild_builds_running", "Builds this daemon is running now")
