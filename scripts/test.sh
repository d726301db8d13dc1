#!/usr/bin/env bash
# The whole test suite: set-up, then unit tests (no root) and lab tests (root,
# network namespaces on this machine). One node:test run so CI reads one result line.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
mapfile -t unit < <(find dist/src -name '*.test.js' | sort)
mapfile -t lab < <(find dist/test -name '*.test.js' | sort)
# Unit tests first; lab tests one file at a time (each builds its own namespaces).
exec node --test --test-concurrency=1 --test-reporter=spec "${unit[@]}" "${lab[@]}"
