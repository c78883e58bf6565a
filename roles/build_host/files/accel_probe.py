#!/usr/bin/env python3
"""Decide between KVM and TCG by running a guest, not by trusting /dev/kvm.

A 512-byte boot sector (``mov al,1; out 0xf4,al; hlt``) exits qemu through isa-debug-exit
(exit status 3). It is booted under TCG and under KVM with a time limit each. KVM is chosen only
if its run finishes and is not slower than TCG's: a KVM that cannot really run guests (nested
virtualisation without support, as on the development machines) either hangs or crawls, and a
full guest then never boots. Prints one JSON object.
"""

import json
import subprocess
import sys
import time
from pathlib import Path


def probe(accel: str, image: str, timeout: float) -> float | None:
    argv = [
        "qemu-system-x86_64",
        "-accel",
        accel,
        "-nodefaults",
        "-no-user-config",
        "-display",
        "none",
        "-m",
        "16",
        "-device",
        "isa-debug-exit,iobase=0xf4,iosize=0x04",
        "-drive",
        f"file={image},format=raw,if=ide",
    ]
    start = time.monotonic()
    try:
        rc = subprocess.run(argv, capture_output=True, timeout=timeout, check=False).returncode
    except subprocess.TimeoutExpired:
        return None
    return round(time.monotonic() - start, 3) if rc == 3 else None


def main() -> None:
    image, timeout = sys.argv[1], float(sys.argv[2])
    has_kvm = Path("/dev/kvm").exists()
    tcg = probe("tcg", image, timeout)
    kvm = probe("kvm", image, timeout) if has_kvm else None
    if not has_kvm:
        accel, reason = "tcg", "/dev/kvm missing"
    elif kvm is None:
        accel, reason = "tcg", f"probe guest did not finish under KVM within {timeout:g} s"
    elif tcg is not None and kvm > 2 * tcg + 0.5:
        accel, reason = "tcg", "KVM runs the probe guest slower than TCG"
    else:
        accel, reason = "kvm", "probe guest finished under KVM at least as fast as TCG"
    result = {"accel": accel, "reason": reason, "kvm_seconds": kvm, "tcg_seconds": tcg}
    print(json.dumps(result))  # noqa: T201 (the result goes to Ansible on stdout)


if __name__ == "__main__":
    main()
