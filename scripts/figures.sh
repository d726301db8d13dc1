#!/usr/bin/env bash
# The README's figures, reproduced: set-up (packages, build), then every benchmark that feeds
# them, into bench/figures/YYYY-MM-DD-<commit>.md (bench/figures.ts; --quick for a smoke test,
# --compare A B to set two tables side by side).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
exec node dist/bench/figures.js "$@"
