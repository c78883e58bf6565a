"""Warm-path overhead of the build pipeline and log latency (a benchmark, not a timed test).

    .venv/bin/python bench/pipeline_overhead.py [--runs 5]
    # reuse a running VM instead of a cold one:
    SECUREBUILD_BENCH_VM_STATE=/path/state SECUREBUILD_BENCH_VM_PROJECT=proj .venv/bin/python ...

Overhead: wall time of ``run_plan`` (one ansible-runner invocation of playbooks/build.yml, what
``securebuild run`` does after the VM is up) minus the time dockerd spent building the same
context in the same VM, measured two ways: the ``docker build`` request inside the run, and a
direct mTLS API build of the same context (``noCache`` so every run really builds). Median of
``--runs`` runs, in seconds and as a ratio of the total.

Log latency: a pre_build hook prints its guest clock (``date +%s.%N``) ten times; each line's
arrival in the log store (a real ``securebuild.logs.BuildLog``) minus that time, corrected for
the guest clock offset measured over SSH (error bound: half the SSH round trip, printed).
"""

from __future__ import annotations

import argparse
import io
import os
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path

from securebuild.devenv.project_vm import ProjectVM
from securebuild.devenv.vmregistry import guest_registry, seed_busybox, trust_in_vm
from securebuild.fleet.docker_tls import docker_api_client
from securebuild.logs import LogStore
from securebuild.pipeline.execute import VMTarget, run_plan
from securebuild.pipeline.plan import make_plan
from securebuild.pipeline.steps import ssh_argv

DOCKERFILE = "FROM busybox\nRUN echo bench > /bench.txt\nCOPY hello.txt /hello.txt\n"
HOOK = (
    '#!/bin/sh\nfor i in 1 2 3 4 5 6 7 8 9 10; do echo "LATENCY $(date +%s.%N)"; sleep 0.2; done\n'
)


def context_dir(root: Path) -> Path:
    ctx = root / "ctx"
    (ctx / ".d2i").mkdir(parents=True)
    (ctx / "Dockerfile").write_text(DOCKERFILE)
    (ctx / "hello.txt").write_text("hello\n")
    hook = ctx / ".d2i" / "pre_build"
    hook.write_text(HOOK)
    hook.chmod(0o755)
    return ctx


def archive(ctx: Path) -> Path:
    path = ctx.parent / "ctx.tar"
    with tarfile.open(path, "w") as tar:
        for entry in sorted(ctx.iterdir()):
            tar.add(str(entry), arcname=entry.name)
    return path


def clock_offset(vm: VMTarget, samples: int = 20) -> tuple[float, float]:
    """(guest - host) seconds and the error bound (half the best round trip).

    Uses the pipeline's shared SSH master connection, so a round trip is one channel open,
    not a handshake: the bound is tens of milliseconds rather than a second.
    """
    best = (0.0, 1e9)
    for _ in range(samples):
        sent = time.time()
        out = subprocess.run(
            ssh_argv(vm.as_vars(), "date", "+%s.%N"), capture_output=True, text=True, check=True
        ).stdout
        received = time.time()
        rtt = received - sent
        if rtt < best[1]:
            best = (float(out) - (sent + received) / 2, rtt)
    return best[0], best[1] / 2


def direct_build_seconds(client: object, tar_path: Path) -> float:
    started = time.monotonic()
    for event in client.build(  # type: ignore[attr-defined]
        fileobj=io.BytesIO(tar_path.read_bytes()),
        custom_context=True,
        nocache=True,
        rm=True,
        forcerm=True,
        decode=True,
        tag="bench/direct:latest",
    ):
        if "error" in event:
            raise RuntimeError(event["error"])
    return time.monotonic() - started


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    for var in ("REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE"):
        os.environ.pop(var, None)
    state = os.environ.get("SECUREBUILD_BENCH_VM_STATE")
    project = os.environ.get("SECUREBUILD_BENCH_VM_PROJECT", "bench")
    launcher = ProjectVM(project, state_dir=Path(state) if state else None)
    endpoints = launcher.read_endpoints() if state else launcher.start().endpoints
    assert endpoints is not None
    vm = VMTarget.from_record(endpoints)
    client = docker_api_client(
        vm.docker_url, ca=vm.docker_ca, cert=vm.docker_cert, key=vm.docker_key, timeout=600
    )
    try:
        with guest_registry() as registry, tempfile.TemporaryDirectory(prefix="sb-bench-") as tmp:
            trust_in_vm(endpoints, registry)
            seed_busybox(client, registry)
            ctx = context_dir(Path(tmp))
            tar_path = archive(ctx)
            store = LogStore(Path(tmp) / "logs")
            offset, error = clock_offset(vm)
            totals, in_run, direct, latencies = [], [], [], []
            for i in range(args.runs):
                build = {
                    "kind": "Build",
                    "metadata": {"name": f"bench-{i + 1}", "namespace": project},
                    "spec": {
                        "source": {"binary": {}},
                        "strategy": {"type": "Docker", "dockerStrategy": {"noCache": True}},
                    },
                }
                plan = make_plan(build, secrets={}, config_maps={}, binary_path=str(tar_path))
                log = store.log(project, f"bench-{i + 1}")
                log.start(truncate=True)
                arrivals: list[float] = []

                def on_line(line: str, log: object = log, arrivals: list[float] = arrivals) -> None:
                    log.append_lines([line])  # type: ignore[attr-defined]
                    if line.startswith("LATENCY "):
                        arrivals.append(time.time() - (float(line.split()[1]) - offset))

                started = time.monotonic()
                outcome = run_plan(plan, vm, on_line=on_line, base_dir=Path(tmp) / "runs")
                total = time.monotonic() - started
                log.finish()
                if outcome.phase != "Complete":
                    print(f"run {i + 1}: {outcome.summary()}", file=sys.stderr)
                    return 1
                build_s = float(outcome.details.get("build_seconds", 0.0))
                direct_s = direct_build_seconds(client, tar_path)
                totals.append(total)
                in_run.append(build_s)
                direct.append(direct_s)
                latencies.extend(arrivals)
                print(
                    f"run {i + 1}: total {total:.2f} s, docker build in run {build_s:.2f} s, "
                    f"direct API build {direct_s:.2f} s, log latency median "
                    f"{statistics.median(arrivals) * 1000:.0f} ms"
                )
            total_m = statistics.median(totals)
            for label, builds in (("in-run build request", in_run), ("direct API build", direct)):
                overhead = total_m - statistics.median(builds)
                print(
                    f"overhead vs {label}: median {overhead:.2f} s of {total_m:.2f} s total "
                    f"(ratio {overhead / total_m:.2f}; "
                    f"total/build {total_m / statistics.median(builds):.1f}x)"
                )
            print(
                "log latency VM line -> log store: median "
                f"{statistics.median(latencies) * 1000:.0f} ms, "
                f"max {max(latencies) * 1000:.0f} ms over {len(latencies)} lines "
                f"(guest clock offset {offset * 1000:.0f} ms +/- {error * 1000:.0f} ms)"
            )
    finally:
        if not state:
            launcher.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
