#!/usr/bin/env bash
# kube-apiserver and etcd for the integration tests (issue 3), in the envtest layout: one
# directory holding both binaries, usable as KUBEBUILDER_ASSETS.
#
# - KUBEBUILDER_ASSETS set and holding both binaries: use them, build nothing.
# - Otherwise kube-apiserver is built from the Go module proxy (pinned in scripts/kube-binaries/
#   go.mod, hashes in go.sum) into ~/.cache/securebuild/kube/<version>/, once per version.
# - etcd: Debian's etcd-server (3.4.23) works with this API server, so it is linked into the same
#   directory instead of building etcd 3.5 (saves a long build).
#
# The Go module and build caches live under ~/.cache/securebuild/go so that a rerun after a version
# bump reuses them. sum.golang.org is not reachable from here: GOSUMDB=off, and go.sum in the
# module directory (committed) is what verifies every downloaded module.
set -euo pipefail

KUBE_VERSION=v1.34.4 # keep in step with scripts/kube-binaries/go.mod
here="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cache="${SECUREBUILD_CACHE:-$HOME/.cache/securebuild}"
dest="$cache/kube/$KUBE_VERSION"

log() { printf 'kube-binaries: %s\n' "$*" >&2; }

if [[ -n "${KUBEBUILDER_ASSETS:-}" ]]; then
  if [[ -x "$KUBEBUILDER_ASSETS/kube-apiserver" && -x "$KUBEBUILDER_ASSETS/etcd" ]]; then
    log "using KUBEBUILDER_ASSETS=$KUBEBUILDER_ASSETS (nothing built)"
    exit 0
  fi
  log "KUBEBUILDER_ASSETS=$KUBEBUILDER_ASSETS lacks an executable kube-apiserver and etcd"
  exit 1
fi

mkdir -p "$dest"
# Several worktrees (and CI) may run setup at once: one build per version at a time; a waiter
# finds the binary present when it gets the lock.
exec 9>"$dest/.lock"
flock 9

if [[ ! -x "$dest/etcd" ]]; then
  etcd_bin="$(command -v etcd || true)"
  if [[ -z "$etcd_bin" ]]; then
    log "etcd not found: install the Debian package etcd-server (scripts/setup.sh does)"
    exit 1
  fi
  ln -sf "$etcd_bin" "$dest/etcd"
fi

if [[ -x "$dest/kube-apiserver" ]]; then
  log "kube-apiserver $KUBE_VERSION: cached in $dest"
  exit 0
fi

go_min=1.24 # the `go` line of k8s.io/kubernetes' go.mod
go_have="$(go env GOVERSION 2>/dev/null || true)"
go_have="${go_have#go}"
if [[ -z "$go_have" ]] || [[ "$(printf '%s\n%s\n' "$go_min" "$go_have" | sort -V | head -n1)" != "$go_min" ]]; then
  log "building kube-apiserver $KUBE_VERSION needs Go >= $go_min on PATH (found: ${go_have:-none});"
  log "install it from go.dev/dl, or set KUBEBUILDER_ASSETS to a directory with kube-apiserver and etcd"
  exit 1
fi

log "building kube-apiserver $KUBE_VERSION with $(go version | cut -d' ' -f3) (about 5 min on 2 cores from an empty cache)"
start=$(date +%s)
major="${KUBE_VERSION#v}"
major="${major%%.*}"
minor="${KUBE_VERSION#v*.}"
minor="${minor%%.*}"
pkg=k8s.io/component-base/version
ldflags="-s -w -X $pkg.gitVersion=$KUBE_VERSION -X $pkg.gitMajor=$major -X $pkg.gitMinor=$minor"
ldflags+=" -X $pkg.gitTreeState=clean -X $pkg.buildDate=$(date -u +%Y-%m-%dT%H:%M:%SZ)"
tmp="$dest/kube-apiserver.tmp.$$"
trap 'rm -f "$tmp"' EXIT
(
  cd "$here/scripts/kube-binaries"
  export GOMODCACHE="$cache/go/mod" GOCACHE="$cache/go/build" GOSUMDB=off \
    GOTOOLCHAIN=local CGO_ENABLED=0 GOPROXY="${GOPROXY:-https://proxy.golang.org}"
  go build -trimpath -ldflags "$ldflags" -o "$tmp" k8s.io/kubernetes/cmd/kube-apiserver
)
"$tmp" --version >/dev/null
mv "$tmp" "$dest/kube-apiserver"
log "kube-apiserver $KUBE_VERSION built in $(($(date +%s) - start)) s -> $dest"
