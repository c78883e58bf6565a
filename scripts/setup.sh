#!/usr/bin/env bash
# Idempotent setup for a fresh Debian 12 machine (run as root): Debian packages, the Python
# virtualenv in .venv/, then every step in scripts/setup.d/ in name order (heavy artifacts such
# as the kube-apiserver binaries and the golden VM image, cached under ~/.cache/securebuild/).
# A second run only checks: packages already installed and an unchanged lock are skipped.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$here"

log() { printf 'setup: %s\n' "$*" >&2; }

# Debian packages the project and its tests run. Keep in sync with docs/operators.md.
packages=(
  docker.io docker-registry containerd runc
  qemu-system-x86 qemu-utils libvirt-daemon-system libvirt-clients libvirt-dev pkg-config
  debootstrap e2fsprogs genisoimage
  etcd-server apache2-utils openssl git rsync iproute2 make gcc python3-venv python3-dev
  busybox-static
)

missing=()
for pkg in "${packages[@]}"; do
  status="$(dpkg-query -W -f='${db:Status-Status}' "$pkg" 2>/dev/null || true)"
  [[ "$status" == installed ]] || missing+=("$pkg")
done
if ((${#missing[@]})); then
  if [[ $(id -u) -ne 0 ]]; then
    log "missing Debian packages: ${missing[*]}; run this setup as root"
    exit 1
  fi
  log "installing Debian packages: ${missing[*]}"
  apt-get update -q
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${missing[@]}"
else
  log "Debian packages: all ${#packages[@]} present"
fi

# The virtualenv is keyed by the hash of everything that decides its content.
stamp_file=.venv/.securebuild-stamp
stamp="$(cat constraints.txt requirements.in requirements-dev.in setup.py | sha256sum | cut -c1-64)"
if [[ -f "$stamp_file" && "$(cat "$stamp_file")" == "$stamp" ]]; then
  log "virtualenv .venv: up to date"
else
  log "virtualenv .venv: installing pinned dependencies"
  python3 -m venv .venv
  .venv/bin/pip install -q --upgrade pip
  .venv/bin/pip install -q -r requirements.in -r requirements-dev.in -c constraints.txt
  .venv/bin/pip install -q --no-deps -e .
  echo "$stamp" >"$stamp_file"
fi

for step in scripts/setup.d/*.sh; do
  [[ -e "$step" ]] || continue
  log "step $(basename "$step")"
  bash "$step"
done
log "done"
