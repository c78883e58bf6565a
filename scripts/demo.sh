#!/usr/bin/env bash
# `make demo`: the main job on the embedded default (inventories/local). The build pipeline
# (issue "The build pipeline") fills this in; until then it stops after the setup and says so.
set -euo pipefail
echo "securebuild demo: setup is complete; the build pipeline (securebuild run) is not built yet." >&2
exit 1
