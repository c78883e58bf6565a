#!/usr/bin/env bash
# Golden VM image for project VMs (tests, `make demo`): built by the project's own playbook
# playbooks/image-build.yml on inventories/local, cached under
# ~/.cache/securebuild/images/<version>/ and skipped when that version's manifest exists.
# From empty it takes about 4 minutes (debootstrap from deb.debian.org dominates).
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$here"

cache="${SECUREBUILD_CACHE_DIR:-$HOME/.cache/securebuild}"
version="$(sed -n 's/^securebuild_image_version: *//p' inventories/local/group_vars/all.yml)"
manifest="$cache/images/$version/manifest.json"

if [[ -f "$manifest" ]]; then
  echo "golden-image: $version present ($manifest)" >&2
  exit 0
fi
if [[ $(id -u) -ne 0 ]]; then
  echo "golden-image: building $version needs root (debootstrap); run setup as root" >&2
  exit 1
fi
echo "golden-image: building $version (debootstrap, a few minutes)" >&2
start=$SECONDS
env -u REQUESTS_CA_BUNDLE ANSIBLE_CONFIG="$here/ansible.cfg" \
  .venv/bin/ansible-playbook -i inventories/local playbooks/image-build.yml
echo "golden-image: $version built from empty in $((SECONDS - start)) s" >&2
