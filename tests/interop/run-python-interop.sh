#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
#
# Interop between the C implementation and the independent Python one
# (tests/interop/verifier.py, written from docs/PROTOCOL.md alone):
#   1. the Python verifier checks the C-generated vectors;
#   2. Python builds and signs fresh vectors, and the C check_vectors checks them;
#   3. edge cases where a reading of the spec could differ: both must agree.
# Usage: run-python-interop.sh CHECK_VECTORS_BINARY REPO_ROOT
# Exit: 0 all passed, 1 any failure, 77 skipped (Python modules missing), 2 usage.
set -euo pipefail

if [ "$#" -ne 2 ]; then
    echo "usage: $0 CHECK_VECTORS_BINARY REPO_ROOT" >&2
    exit 2
fi
check_vectors=$1
root=$2
py=${TWOFOLD_PYTHON:-/usr/bin/python3}  # override only to test the skip path
verifier=$root/tests/interop/verifier.py
vectors=$root/tests/vectors/twofold-v1.json

if [ ! -x "$py" ] || ! "$py" -c 'import nacl.bindings, msgpack' 2>/dev/null; then
    echo "SKIPPED: $py with the nacl and msgpack modules (python3-nacl, python3-msgpack) is needed"
    exit 77
fi

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

status=0
total_passed=0
total_failed=0

# Adds the "N passed, M failed" line at the end of $1 to the totals; a missing
# line counts as one failure.
tally() {
    local line
    line=$(tail -n 1 "$1")
    if [[ $line =~ ^([0-9]+)\ passed,\ ([0-9]+)\ failed$ ]]; then
        total_passed=$((total_passed + BASH_REMATCH[1]))
        total_failed=$((total_failed + BASH_REMATCH[2]))
    else
        total_failed=$((total_failed + 1))
    fi
}

echo "== Python verifier on $vectors"
"$py" "$verifier" check "$vectors" --doc "$root/docs/PROTOCOL.md" | tee "$tmp/check.out" || status=1
tally "$tmp/check.out"

# direct (issue 17): the DIRECT link message's vectors.
direct_vectors=$root/tests/vectors/twofold-direct-v1.json
echo "== Python verifier on $direct_vectors"
"$py" "$verifier" check "$direct_vectors" | tee "$tmp/check-direct.out" || status=1
tally "$tmp/check-direct.out"

echo "== C check_vectors on vectors emitted by Python"
if "$py" "$verifier" emit "$tmp/python.json" --seeds "$vectors"; then
    "$check_vectors" "$tmp/python.json" | tee "$tmp/c.out" || status=1
    tally "$tmp/c.out"
else
    echo "emit failed"
    status=1
    total_failed=$((total_failed + 1))
fi

echo "== Edge cases (verifier.py probe): both implementations must give the spec's answer"
if "$py" "$verifier" probe "$tmp/probe.json" --seeds "$vectors"; then
    "$py" "$verifier" check "$tmp/probe.json" | tee "$tmp/probe-py.out" || status=1
    tally "$tmp/probe-py.out"
    "$check_vectors" "$tmp/probe.json" | tee "$tmp/probe-c.out" || status=1
    tally "$tmp/probe-c.out"
else
    echo "probe failed"
    status=1
    total_failed=$((total_failed + 1))
fi

echo "$total_passed passed, $total_failed failed"
if [ "$status" -ne 0 ] || [ "$total_failed" -ne 0 ] || [ "$total_passed" -eq 0 ]; then
    exit 1
fi
