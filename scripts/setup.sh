#!/usr/bin/env bash
# Installs everything fwlb needs on a fresh Debian 12 machine: system packages,
# node modules, and the build. Idempotent: a second run only checks.
set -euo pipefail
cd "$(dirname "$0")/.."

need_root() { if [ "$(id -u)" != 0 ]; then echo "setup: run as root (apt-get, namespaces, nftables)" >&2; exit 1; fi; }

# System packages: the data plane (nftables, conntrack), the lab (iproute2),
# the peers and load generators the benchmarks run beside fwlb, and systemd-analyze
# (package systemd) to check the unit, Chromium for the status page's browser test, and
# BIRD 2 (bird2), the routing daemon fwlb drives for BGP (issue 26).
pkgs=(nftables conntrack iproute2 procps keepalived conntrackd wrk curl systemd chromium fonts-dejavu-core bird2)
missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ! command -v node >/dev/null 2>&1; then missing+=(nodejs npm); fi
if [ ${#missing[@]} -gt 0 ]; then
  need_root
  echo "setup: installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
# keepalived/conntrackd are benchmark peers and BIRD runs only inside the labs:
# never let the packages' own services run on this machine.
for s in keepalived conntrackd bird; do
  systemctl disable --now "$s" >/dev/null 2>&1 || true
done

major=$(node -p 'process.versions.node.split(".")[0]')
if [ "$major" -lt 20 ]; then
  echo "setup: fwlb needs Node.js 20 or later (found $(node --version)); Debian 12's nodejs package is 18" >&2
  exit 1
fi

# Node modules, exactly as locked, then the build.
if [ ! -d node_modules ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  npm ci --no-audit --no-fund --loglevel=error
fi
npm run -s build
