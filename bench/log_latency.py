"""Log latency: line produced by a task -> line in the log store -> line seen by a follower.

Runs tests/data/runner/latency.yml (a task printing its clock, one line every ``--gap`` s)
through the real runner adapter ``--runs`` times and prints the median, p90 and max of:

- produce -> store: the line was appended to the build's log (``BuildLog.append`` returned);
- produce -> follower: a ``BuildLog.follow()`` reader in another thread yielded it.

Usage: .venv/bin/python bench/log_latency.py [--runs 5] [--lines 20] [--gap 0.1]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

from securebuild.logs import BuildLog, LogStore
from securebuild.runner import PlaybookRun, RunSpec

DATA = Path(__file__).resolve().parents[1] / "tests" / "data" / "runner"
INVENTORY = {
    "all": {
        "hosts": {
            "localhost": {
                "ansible_connection": "local",
                "ansible_python_interpreter": sys.executable,
            }
        }
    }
}


def one_run(tmp: Path, index: int, lines: int, gap: float) -> tuple[list[float], list[float]]:
    store = LogStore(tmp / "logs")
    log = store.log("bench", f"run-{index}")
    log.start()
    to_store: list[float] = []
    to_follower: list[float] = []

    def on_line(line: str) -> None:
        log.append(line)
        to_store.append(time.time() - float(line))

    def follow(reader: BuildLog) -> None:
        for line in reader.follow(wait_for_start=60):
            to_follower.append(time.time() - float(line))

    follower = threading.Thread(target=follow, args=(store.log("bench", f"run-{index}"),))
    follower.start()
    spec = RunSpec(
        build_uid=f"bench-{index}",
        attempt=0,
        project_dir=DATA,
        playbook="latency.yml",
        inventory=INVENTORY,
        trusted_vars={"lines": lines, "gap": gap},
    )
    result = PlaybookRun(spec, base_dir=tmp / "runs", on_line=on_line).run()
    log.finish()
    follower.join()
    if not result.succeeded:
        raise SystemExit(f"run {index} failed: {result.failure_msg} {log.read()}")
    return to_store, to_follower


def summary(label: str, values: list[float]) -> str:
    ms = sorted(v * 1000 for v in values)
    p90 = ms[min(len(ms) - 1, int(len(ms) * 0.9))]
    return (
        f"{label:22} n={len(ms):4d}  median {statistics.median(ms):7.1f} ms"
        f"  p90 {p90:7.1f} ms  max {ms[-1]:7.1f} ms"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--lines", type=int, default=20)
    parser.add_argument("--gap", type=float, default=0.1)
    args = parser.parse_args()
    store_all: list[float] = []
    follow_all: list[float] = []
    with tempfile.TemporaryDirectory(prefix="sb-bench-") as tmp:
        for index in range(args.runs):
            to_store, to_follower = one_run(Path(tmp), index, args.lines, args.gap)
            store_all += to_store
            follow_all += to_follower
            print(f"run {index}: store median {statistics.median(to_store) * 1000:.1f} ms")
    print(summary("produce -> store", store_all))
    print(summary("produce -> follower", follow_all))


if __name__ == "__main__":
    main()
