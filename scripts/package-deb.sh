#!/usr/bin/env bash
# Builds a Debian package of fwlb from this repository (dpkg-deb, no debhelper):
#
#   bash scripts/package-deb.sh [OUT_DIR]        -> OUT_DIR/fwlb_<version>_<arch>.deb (default: ./build)
#
# What it holds:
#   /usr/lib/fwlb/            the build (dist/src without its tests), package.json, the
#                             production node modules (npm prune --omit=dev of the locked tree)
#                             and the examples (`fwlb demo` and `fwlb lab` run them)
#   /usr/bin/fwlb             the CLI (a wrapper that runs node on /usr/lib/fwlb; it finds its
#                             tree relative to itself, so an unpacked package runs in place)
#   /etc/fwlb/cluster.yaml.example   examples/lab.yaml; the unit reads /etc/fwlb/cluster.yaml
#   /lib/systemd/system/fwlb.service examples/fwlb.service (Type=notify; not enabled)
#   /usr/share/doc/fwlb/      README.md and the examples
# Depends on Debian's nodejs where it is 20 or later (Debian 12's is 18: install Node.js 20
# from NodeSource or another source of a `nodejs` package >= 20), and on nftables, conntrack
# and iproute2. Needs the build (`npm run build`, done by scripts/setup.sh) and dpkg-deb.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
out=${1:-build}
mkdir -p "$out"
out=$(cd "$out" && pwd)

[ -f dist/src/cli/main.js ] || { echo "package-deb: no build in dist/ (run: npm run build)" >&2; exit 1; }
command -v dpkg-deb >/dev/null || { echo "package-deb: dpkg-deb is missing (apt-get install dpkg)" >&2; exit 1; }

pkgver=$(node -p 'require("./package.json").version')
rev=$(git rev-parse --short=12 HEAD 2>/dev/null || echo unknown)
dirty=$([ -n "$(git status --porcelain --untracked-files=no 2>/dev/null)" ] && echo .dirty || true)
version="${pkgver}+git${rev}${dirty}"
arch=$(dpkg --print-architecture)

stage=$(mktemp -d "${TMPDIR:-/tmp}/fwlb-deb.XXXXXX")
trap 'rm -rf "$stage"' EXIT
lib="$stage/usr/lib/fwlb"
mkdir -p "$lib" "$stage/usr/bin" "$stage/etc/fwlb" "$stage/lib/systemd/system" "$stage/usr/share/doc/fwlb/examples" "$stage/DEBIAN"

# The build without its tests, and the production modules of the locked tree (no network:
# the development modules pruned from a copy).
mkdir -p "$lib/dist"
tar -C dist --exclude='*.test.js' --exclude='*.d.ts' --exclude='*.map' -cf - src | tar -C "$lib/dist" -xf -
cp package.json package-lock.json "$lib/"
# `fwlb lab` and `fwlb demo` read the examples beside dist/ (src/lab/paths.ts).
cp -r examples "$lib/examples"
cp -a node_modules "$lib/node_modules"
(cd "$lib" && npm prune --omit=dev --no-audit --no-fund --loglevel=error >/dev/null && rm -f package-lock.json)

cat > "$stage/usr/bin/fwlb" <<'EOF'
#!/bin/sh
# fwlb: the CLI of the fwlb package; runs the build under /usr/lib/fwlb next to this file's
# directory (also from an unpacked package). The daemon wants V8's collector on its own
# threads (--single-threaded-gc: src/adapters/reexec.ts).
here=$(dirname "$(readlink -f "$0")")
exec node --single-threaded-gc "$here/../lib/fwlb/dist/src/cli/main.js" "$@"
EOF
chmod 0755 "$stage/usr/bin/fwlb"

cp examples/lab.yaml "$stage/etc/fwlb/cluster.yaml.example"
cp examples/fwlb.service "$stage/lib/systemd/system/fwlb.service"
cp README.md "$stage/usr/share/doc/fwlb/"
cp examples/*.yaml "$stage/usr/share/doc/fwlb/examples/"

size=$(du -sk --exclude=DEBIAN "$stage" | cut -f1)
cat > "$stage/DEBIAN/control" <<EOF
Package: fwlb
Version: $version
Architecture: $arch
Maintainer: fwlb developers <fwlb@example.invalid>
Installed-Size: $size
Depends: nodejs (>= 20), nftables, libnftables1, conntrack, iproute2
Recommends: systemd
Section: net
Priority: optional
Homepage: https://example.invalid/fwlb
Description: redundant, load-balancing, stateful firewall cluster
 Two or more Linux machines run one daemon and one config file and act as one
 firewall: stateful filtering with nftables, load-balanced services with health
 checks, VRRP failover in well under a second, and connection-state sync so
 that established sessions survive a failover. Replaces keepalived + conntrackd
 + nftables scripts.
EOF
echo "/etc/fwlb/cluster.yaml.example" > "$stage/DEBIAN/conffiles"

deb="$out/fwlb_${version}_${arch}.deb"
dpkg-deb --root-owner-group --build "$stage" "$deb" >/dev/null
echo "$deb"
