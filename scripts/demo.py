"""`make demo`: one OpenShift Docker build of examples/hello/ in the project VM of `demo`.

Starts a registry on 127.0.0.1 (TLS + htpasswd; the VM sees it as 10.0.2.2), ensures the VM
(cold start the first time), seeds busybox, runs `securebuild run` on examples/hello/ (a
multi-stage Dockerfile, both .d2i hooks, a buildArg, imageLabels) and prints the OpenShift
labels and environment of the pushed image, read back from the registry.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from securebuild.commands.run import _vm_target
from securebuild.devenv.vmregistry import (
    dockerconfig_dir,
    guest_registry,
    image_config,
    seed_busybox,
    trust_in_vm,
)
from securebuild.fleet.docker_tls import docker_api_client

ROOT = Path(__file__).resolve().parents[1]
PROJECT = os.environ.get("SECUREBUILD_DEMO_PROJECT", "demo")


def main() -> int:
    for var in ("REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE"):
        os.environ.pop(var, None)  # our clients pin their CA; subprocesses get a clean env
    state = Path(
        os.environ.get("SECUREBUILD_STATE_DIR") or Path.home() / ".cache/securebuild/state"
    )
    started = time.monotonic()
    with guest_registry() as registry, tempfile.TemporaryDirectory(prefix="sb-demo-") as tmp:
        print(f"demo: registry on 127.0.0.1:{registry.port} (the VM sees {registry.address})")

        class Args:
            state_dir = state
            inventory = ROOT / "inventories" / "local"

        vm = _vm_target(Args(), PROJECT)  # type: ignore[arg-type]
        print(f"demo: VM of project {PROJECT} ready ({time.monotonic() - started:.0f} s)")
        from securebuild.devenv.project_vm import ProjectVM

        endpoints = ProjectVM(PROJECT, state_dir=state).read_endpoints()
        trust_in_vm(endpoints, registry)
        client = docker_api_client(
            vm.docker_url, ca=vm.docker_ca, cert=vm.docker_cert, key=vm.docker_key
        )
        seed_busybox(client, registry)
        secret = dockerconfig_dir(registry, Path(tmp) / "registry-auth")
        build = Path(tmp) / "build.yaml"
        build.write_text(
            (ROOT / "examples/hello/build.yaml").read_text().replace("REGISTRY", registry.address)
        )
        argv = [
            str(ROOT / ".venv/bin/securebuild"),
            "run",
            str(build),
            "--from-dir",
            str(ROOT / "examples/hello"),
            "--secret",
            f"registry-auth={secret}",
            "--registry-ca",
            f"{registry.address}={registry.ca_cert}",
            "--state-dir",
            str(state),
            "-n",
            PROJECT,
        ]
        print("demo: $ securebuild run examples/hello/build.yaml --from-dir examples/hello ...")
        rc = subprocess.run(argv, check=False).returncode
        if rc != 0:
            print("demo: the build did not complete", file=sys.stderr)
            return rc
        config = image_config(registry, "demo/hello", "latest")["config"]
        print("demo: labels of the pushed image, read back from the registry:")
        for key, value in sorted((config.get("Labels") or {}).items()):
            print(f"  {key}={value}")
        print("demo: OpenShift environment of the pushed image:")
        for item in config.get("Env") or []:
            if item.startswith("OPENSHIFT_BUILD_"):
                print(f"  {item}")
        print(
            f"demo: done in {time.monotonic() - started:.0f} s; the VM stays warm. Remove it with:"
        )
        print(
            "  .venv/bin/ansible-playbook -i inventories/local playbooks/vm-destroy.yml "
            f"-e securebuild_project={PROJECT}"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
