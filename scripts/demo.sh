#!/usr/bin/env bash
# The main job: set-up, then `fwlb demo` (a lab cluster, live traffic, a report).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
exec node dist/src/cli/main.js demo "$@"
