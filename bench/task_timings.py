"""Where the time of one warm build goes: per-task timings from ansible-runner's job events.

    SECUREBUILD_BENCH_VM_STATE=/path/state SECUREBUILD_BENCH_VM_PROJECT=proj \
        .venv/bin/python bench/task_timings.py [--runs 2]

Runs the build of ``bench/pipeline_overhead.py`` (binary source, a pre_build hook, noCache)
through ``run_plan`` against a running VM and prints, per run, each task's wall time (from the
runner's ``playbook_on_task_start`` to its result event), the time before the first event
(ansible-runner and ansible-playbook start-up) and after the last one (shutdown, cleanup), and
the cost of the guest-side primitives (SSH channel, sudo, python3 start) over the shared master.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import pipeline_overhead as bench

from securebuild.devenv.project_vm import ProjectVM
from securebuild.devenv.vmregistry import guest_registry, seed_busybox, trust_in_vm
from securebuild.fleet.docker_tls import docker_api_client
from securebuild.pipeline.execute import VMTarget, run_plan
from securebuild.pipeline.plan import make_plan
from securebuild.pipeline.steps import ssh_argv
from securebuild.runner import events as runner_events

RECORDED: list[tuple[float, str, str]] = []
_RESULTS = ("runner_on_ok", "runner_on_failed", "runner_on_skipped", "runner_on_unreachable")
_original = runner_events.EventProcessor.handle


def _recording(self: Any, event: Any) -> None:
    kind = str(event.get("event", ""))
    data = event.get("event_data") or {}
    RECORDED.append((time.time(), kind, str(data.get("task") or "")))
    _original(self, event)


runner_events.EventProcessor.handle = _recording  # type: ignore[method-assign]


def primitives(vm: VMTarget, samples: int = 3) -> None:
    probes = {
        "ssh true (shared master)": ["true"],
        "ssh sudo -n true": ["sudo", "-n", "true"],
        "ssh python3 -c pass": ["python3", "-c", "pass"],
        "ssh python3 -I -S -c pass": ["python3", "-I", "-S", "-c", "pass"],
        "ssh sudo -n helper (usage)": ["sudo", "-n", "/usr/local/sbin/securebuild-vm-helper"],
    }
    for label, remote in probes.items():
        times = []
        for _ in range(samples):
            started = time.monotonic()
            subprocess.run(ssh_argv(vm.as_vars(), *remote), capture_output=True, check=False)
            times.append(time.monotonic() - started)
        print(f"  {label:32s} median {statistics.median(times):.2f} s  ({samples} samples)")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=2)
    args = parser.parse_args()
    for var in ("REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE"):
        os.environ.pop(var, None)
    state = os.environ["SECUREBUILD_BENCH_VM_STATE"]
    project = os.environ["SECUREBUILD_BENCH_VM_PROJECT"]
    endpoints = ProjectVM(project, state_dir=Path(state)).read_endpoints()
    vm = VMTarget.from_record(endpoints)
    client = docker_api_client(
        vm.docker_url, ca=vm.docker_ca, cert=vm.docker_cert, key=vm.docker_key, timeout=600
    )
    print(f"load average {os.getloadavg()}")
    print("guest primitives:")
    primitives(vm)
    with guest_registry() as registry, tempfile.TemporaryDirectory(prefix="sb-timing-") as tmp:
        trust_in_vm(endpoints, registry)
        seed_busybox(client, registry)
        tar_path = bench.archive(bench.context_dir(Path(tmp)))
        for i in range(args.runs):
            build = {
                "kind": "Build",
                "metadata": {"name": f"timing-{i + 1}", "namespace": project},
                "spec": {
                    "source": {"binary": {}},
                    "strategy": {"type": "Docker", "dockerStrategy": {"noCache": True}},
                },
            }
            plan = make_plan(build, secrets={}, config_maps={}, binary_path=str(tar_path))
            RECORDED.clear()
            started = time.time()
            outcome = run_plan(plan, vm, on_line=lambda _l: None, base_dir=Path(tmp) / "runs")
            ended = time.time()
            print(
                f"run {i + 1}: {outcome.phase} total {ended - started:.2f} s, "
                f"docker build {float(outcome.details.get('build_seconds', 0)):.2f} s"
            )
            if not RECORDED:
                continue
            print(f"  {RECORDED[0][0] - started:6.2f} s  start-up until the first event")
            open_task: tuple[float, str] | None = None
            last = RECORDED[0][0]
            for moment, kind, task in RECORDED:
                if kind == "playbook_on_task_start":
                    open_task = (moment, task)
                elif kind in _RESULTS and open_task is not None:
                    status = kind.removeprefix("runner_on_")
                    print(f"  {moment - open_task[0]:6.2f} s  {status:8s} {open_task[1]}")
                    open_task = None
                last = moment
            print(f"  {ended - last:6.2f} s  after the last event (shutdown, removal)")
            stages = ", ".join(
                f"{s['name']} {s['durationMilliseconds']} ms" for s in outcome.stages
            )
            print(f"  stages: {stages}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
