#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
#
# Live Noise interop: installs npm noise-c.wasm (pinned, integrity-checked)
# into a temporary directory and runs test.mjs there against noise_peer, the
# C side built on proto/noise.h.  Nothing is written inside the repository.
# Usage: run-noise-interop.sh NOISE_PEER_BINARY
# Exit: 0 all passed, 1 any failure, 77 skipped (npm missing or the npm
# registry unreachable), 2 usage.
set -euo pipefail

# The version this test was written and checked against, and the registry's
# integrity hash of its tarball: a changed package fails the test, it does not
# silently test something else.
pkg=noise-c.wasm
version=0.4.0
integrity='sha512-dGkimM3UFKmidIBnI1SKSO+VqFT20xQoCJ194rf25huVIxdfwRf34ZVNsdSYpWYHHUQ4QS1vawvLThJKSMiIFw=='
install_timeout=${TWOFOLD_NPM_TIMEOUT:-180}
# npm's messages when it cannot reach the registry at all.
offline='ENOTFOUND|EAI_AGAIN|ECONNREFUSED|ECONNRESET|ETIMEDOUT|ENETUNREACH|EHOSTUNREACH'
offline+='|ERR_SOCKET_TIMEOUT|network (request|connectivity)'

if [ "$#" -ne 1 ]; then
    echo "usage: $0 NOISE_PEER_BINARY" >&2
    exit 2
fi
peer=$(realpath -m -- "$1")
here=$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")" && pwd)

npm=${TWOFOLD_NPM:-npm} # override only to test the skip path
if ! command -v "$npm" >/dev/null 2>&1 || ! command -v node >/dev/null 2>&1; then
    echo "SKIPPED: npm and node are needed to install and run $pkg"
    exit 77
fi
if [ ! -x "$peer" ]; then
    echo "noise_peer binary not found: $1" >&2
    exit 1
fi

tmp=$(mktemp -d "${TMPDIR:-/tmp}/twofold-noise-interop.XXXXXX")
trap 'rm -rf "$tmp"' EXIT

# A package.json of its own keeps npm from adopting a parent directory as the
# project root.
printf '{ "name": "twofold-noise-interop", "private": true }\n' >"$tmp/package.json"
cp "$here/test.mjs" "$tmp/"

echo "== npm install $pkg@$version"
install_status=0
(cd "$tmp" && timeout "$install_timeout" \
    "$npm" install --no-audit --no-fund --ignore-scripts --save-exact "$pkg@$version") \
    >"$tmp/npm.log" 2>&1 || install_status=$?
if [ "$install_status" -ne 0 ]; then
    if [ "$install_status" -eq 124 ]; then
        echo "SKIPPED: npm install timed out after ${install_timeout}s (registry unreachable?)"
        exit 77
    fi
    if grep -Eq "$offline" "$tmp/npm.log"; then
        echo "SKIPPED: npm registry unreachable: $(grep -m1 -E "$offline" "$tmp/npm.log")"
        exit 77
    fi
    echo "npm install failed (exit $install_status), and not for lack of network:" >&2
    cat "$tmp/npm.log" >&2
    exit 1
fi

got=$(cd "$tmp" && node -e '
const lock = require("./package-lock.json").packages["node_modules/" + process.argv[1]] || {};
console.log(lock.version + " " + lock.integrity);' "$pkg")
if [ "$got" != "$version $integrity" ]; then
    echo "installed $pkg does not match the pin: got '$got', want '$version $integrity'" >&2
    exit 1
fi

echo "== noise_peer vs $pkg $version"
status=0
(cd "$tmp" && node test.mjs "$peer") || status=$?
exit "$status"
