"""Start-up time of the local test services: median of N runs (printed, never asserted).

    .venv/bin/python bench/services_startup.py [--runs 3]

Start-up is from ``start()`` to the first successful readiness check: registry answers 401 on
/v2/ over TLS; dockerd answers /_ping over mTLS; libvirtd answers ``virsh list``. libvirtd is
only measured when it is not already running (the launcher then leaves it alone).
"""

from __future__ import annotations

import argparse
import statistics
import time

from securebuild.devenv.dockerd import Dockerd
from securebuild.devenv.libvirtd import Libvirtd, system_libvirt_usable
from securebuild.devenv.registry import Registry


def measure(runs: int) -> dict[str, list[float]]:
    results: dict[str, list[float]] = {"registry": [], "dockerd": [], "libvirtd": []}
    for _ in range(runs):
        with Registry() as registry:
            results["registry"].append(registry.startup_seconds)
            with Dockerd(registry_cas={registry.address: registry.ca_cert}) as dockerd:
                results["dockerd"].append(dockerd.startup_seconds)
                driver = dockerd.storage_driver
        if not system_libvirt_usable():
            with Libvirtd() as libvirtd:
                results["libvirtd"].append(libvirtd.startup_seconds)
            time.sleep(0.5)
    print(f"dockerd storage driver: {driver}")
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    for name, values in measure(args.runs).items():
        if values:
            print(
                f"{name:10} median {statistics.median(values):6.2f} s  "
                f"runs: {', '.join(f'{v:.2f}' for v in values)}"
            )
        else:
            print(f"{name:10} not measured: already running (left alone)")


if __name__ == "__main__":
    main()
