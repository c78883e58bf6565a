#!/usr/bin/env bash
# A minimal Debian bookworm root file system (debootstrap --variant=minbase) as a tar, for the
# test registry's `debian:bookworm` image, so `FROM debian:bookworm` builds need no Docker Hub.
# Cached under ~/.cache/securebuild/baseimages/, keyed by suite, variant and this script's
# version; skipped when present. Packages come from the Debian mirror in apt's sources.
set -euo pipefail

version=1
suite=bookworm
mirror="${SECUREBUILD_DEBIAN_MIRROR:-http://deb.debian.org/debian}"
cache="${HOME}/.cache/securebuild/baseimages"
out="${cache}/debian-${suite}-minbase-v${version}.tar"

log() { printf 'setup: baseimage-debian: %s\n' "$*" >&2; }

if [[ -s "$out" ]]; then
  log "cached: $out"
  exit 0
fi
if [[ $(id -u) -ne 0 ]]; then
  log "debootstrap needs root; skipped (tests that need debian:${suite} will say so)"
  exit 0
fi

mkdir -p "$cache/debootstrap-cache"
work="$(mktemp -d /var/tmp/sb-debian-rootfs.XXXXXX)"
trap 'rm -rf "$work"' EXIT
start=$(date +%s)
log "building ${suite} minbase root file system (a few minutes from an empty cache)"
debootstrap --variant=minbase --cache-dir="$cache/debootstrap-cache" "$suite" "$work/root" \
  "$mirror" >"$work/debootstrap.log" 2>&1 || {
  tail -n 30 "$work/debootstrap.log" >&2
  exit 1
}
# what a container image does not need: package lists and caches
rm -rf "$work/root/var/lib/apt/lists/"* "$work/root/var/cache/apt/"*.bin \
  "$work/root/var/cache/apt/archives/"*.deb
tar -C "$work/root" --numeric-owner --sort=name --mtime='2000-01-01 00:00:00Z' \
  -cf "$out.tmp" .
mv "$out.tmp" "$out"
log "built $out ($(du -h "$out" | cut -f1)) in $(($(date +%s) - start)) s"
