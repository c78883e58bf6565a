#!/usr/bin/env bash
# `make demo` (after `make setup`, which builds the golden image if missing): a local registry
# on 127.0.0.1, the `demo` project's VM, and `securebuild run` on examples/hello/. See
# scripts/demo.py.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$here"
exec .venv/bin/python scripts/demo.py "$@"
