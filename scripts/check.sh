#!/usr/bin/env bash
# Runs exactly what CI runs, minus installing system packages.
set -euo pipefail
cd "$(dirname "$0")/.."
LOUPE_SKIP_INSTALL=1 exec bash .ci/run
