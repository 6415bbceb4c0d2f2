#!/bin/sh
# SPDX-License-Identifier: MIT
#
# Builds the libFuzzer targets with clang into build-fuzz/ and fuzzes each one
# in turn for SECONDS (default 30), on a scratch copy of its corpus so the
# committed corpus stays clean.  Prints each target's final exec count and
# fails if any target crashed (artifacts: build-fuzz/fuzz-artifacts/).
#
# usage: tests/fuzz/run-all.sh [-m] [SECONDS] [TARGET...]
#   -m  afterwards merge inputs that add coverage into tests/fuzz/corpus/
#       (libFuzzer -merge=1: only files that add coverage are copied)
set -eu

cd "$(dirname "$0")/../.."
root=$(pwd)
build=$root/build-fuzz
corpus=$root/tests/fuzz/corpus

merge=0
if [ "${1:-}" = "-m" ]; then
    merge=1
    shift
fi
seconds=${1:-30}
[ $# -gt 0 ] && shift
case $seconds in
'' | *[!0-9]*)
    echo "usage: $0 [-m] [SECONDS] [TARGET...]" >&2
    exit 2
    ;;
esac

CC=clang cmake -S . -B "$build" -DTF_FUZZ=ON >/dev/null
cmake --build "$build" --parallel 2 >/dev/null

if [ $# -gt 0 ]; then
    targets=$*
else
    targets=$(ls "$corpus")
fi

# Bugs already reported (tests/fuzz/known-bugs/) must not stop the search.
export TF_FUZZ_TOLERATE_KNOWN_BUGS=${TF_FUZZ_TOLERATE_KNOWN_BUGS:-1}

artifacts=$build/fuzz-artifacts
mkdir -p "$artifacts"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT INT TERM

failed=""
for t in $targets; do
    exe=$build/tests/fuzz/fuzz_$t
    if [ ! -x "$exe" ]; then
        echo "run-all: no fuzz target $t" >&2
        failed="$failed $t"
        continue
    fi
    mkdir -p "$work/$t"
    cp "$corpus/$t"/* "$work/$t/"
    log=$work/$t.log
    start=$(date +%s)
    status=0
    "$exe" -max_total_time="$seconds" -timeout=10 -print_final_stats=1 \
        -artifact_prefix="$artifacts/$t-" "$work/$t" >"$log" 2>&1 || status=$?
    elapsed=$(($(date +%s) - start))
    done_line=$(grep -E '^#[0-9]+[[:space:]]+DONE' "$log" | tail -n 1 || true)
    units=$(grep -E '^stat::number_of_executed_units' "$log" | tail -n 1 || true)
    echo "== fuzz_$t (${elapsed}s): ${done_line:-no DONE line} ${units:+| $units}"
    if [ "$status" -ne 0 ]; then
        echo "run-all: fuzz_$t FAILED (exit $status); last lines of its log:" >&2
        tail -n 40 "$log" >&2
        cp "$log" "$artifacts/$t.log"
        failed="$failed $t"
        continue
    fi
    if [ "$merge" -eq 1 ]; then
        # Edges only (no hit counts) keeps the addition small; known bugs are
        # not tolerated here, so inputs that show one crash and are left out.
        TF_FUZZ_TOLERATE_KNOWN_BUGS=0 "$exe" -merge=1 -use_counters=0 "$corpus/$t" "$work/$t" \
            >"$work/$t.merge.log" 2>&1
        echo "   merged: $(ls "$corpus/$t" | wc -l) files in corpus/$t"
    fi
done

if [ -n "$failed" ]; then
    echo "run-all: crashed or failed:$failed" >&2
    exit 1
fi
echo "run-all: all targets ran ${seconds}s without a crash"
