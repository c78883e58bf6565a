"""Benchmark of a project VM's lifecycle on this machine (not a timed test).

cold start: VM absent -> `vm-ensure.yml` returns with SSH (pinned host key) and dockerd on
mutual TLS verified ready; warm ensure: the VM already runs and nothing changes. Medians of
several runs, printed with the accelerator (KVM or TCG) the build host uses.

    .venv/bin/python bench/vm_lifecycle.py [--cold 3] [--warm 5]
"""

from __future__ import annotations

import argparse
import secrets
import statistics

from securebuild.devenv.libvirtd import Libvirtd
from securebuild.devenv.project_vm import ProjectVM


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cold", type=int, default=3, help="cold starts to time")
    parser.add_argument("--warm", type=int, default=5, help="warm ensures to time")
    args = parser.parse_args()

    libvirtd = Libvirtd()
    libvirtd.start()  # uses a running libvirtd, or starts one and stops it at the end
    vm = ProjectVM(f"bench-{secrets.token_hex(3)}")
    cold: list[float] = []
    warm: list[float] = []
    try:
        vm.provision_host()
        vm.ensure_pki()
        for i in range(args.cold):
            if i:
                vm.destroy()
            cold.append(vm.ensure().seconds)
            print(f"cold start {i + 1}: {cold[-1]:.1f} s", flush=True)
        for i in range(args.warm):
            result = vm.ensure()
            assert result.changed == 0, "a warm ensure changed something"
            warm.append(result.seconds)
            print(f"warm ensure {i + 1}: {warm[-1]:.2f} s", flush=True)
        accel = vm.endpoints.accel.upper() if vm.endpoints else "?"
    finally:
        vm.stop()
        libvirtd.stop()
    print(
        f"accelerator {accel}: cold start median {statistics.median(cold):.1f} s "
        f"(n={len(cold)}, min {min(cold):.1f}, max {max(cold):.1f}); "
        f"warm ensure median {statistics.median(warm):.2f} s "
        f"(n={len(warm)}, min {min(warm):.2f}, max {max(warm):.2f})"
    )


if __name__ == "__main__":
    main()
