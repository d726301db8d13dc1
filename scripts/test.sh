#!/usr/bin/env bash
# The whole test suite: set-up, then unit tests (no root) and lab tests (root,
# network namespaces on this machine). One node:test run so CI reads one result line.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
exec node --test --test-concurrency=1 --test-reporter=spec \
  'dist/src/**/*.test.js' 'dist/test/**/*.test.js'
