#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# The seed's story, by policy on every side, with three real nodes on
# loopback: Bob asks Carol for a real-estate lawyer; Alice's card offers
# real-estate-law; Carol's policy proposes Alice; Bob's policy accepts what
# answers his request, Alice's what she offers; both are introduced, each
# with the other's signed acceptance; then Bob tells Carol it helped.
#
#   tests/demo/demo_requests.sh BUILD_DIR
set -euo pipefail

build=${1:?usage: demo_requests.sh BUILD_DIR}
tf="$build/cli/twofold"
tfd="$build/node/twofoldd"
root=$(mktemp -d /tmp/twofold-demo-requests.XXXXXX)
pids=()
cleanup() {
    for pid in "${pids[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
    for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
    rm -rf "$root"
}
trap cleanup EXIT

say() { printf '\n== %s\n' "$*"; }
as() { local who=$1; shift; printf '$ twofold --home %s %s\n' "$who" "$*"; "$tf" --home "$root/$who" "$@" | sed 's/^/  /'; }
json() { local who=$1; shift; "$tf" --home "$root/$who" --json "$@"; }
free_port() { /usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
# Polls a JSON query until the Python expression over it holds (30 s max).
wait_for() {
    local who=$1 expr=$2
    shift 2
    for _ in $(seq 1 300); do
        if json "$who" "$@" 2>/dev/null |
            /usr/bin/python3 -c "import json,sys; d=json.load(sys.stdin); sys.exit(0 if ($expr) else 1)"; then
            return 0
        fi
        sleep 0.1
    done
    echo "demo: timed out waiting on $who: $*" >&2
    exit 1
}

say "Three people with their policies"
mkdir -p "$root"
declare -A policy=(
    [carol]="decline when requester is unknown
propose when requester trust >= known and a contact offers the topic with trust >= close"
    [alice]="accept when topic in offers"
    [bob]="accept when answers my request
ask")
for who in carol alice bob; do
    port=$(free_port)
    name=$(echo "$who" | sed 's/./\U&/')
    "$tf" --home "$root/$who" init --name "$name" --listen "127.0.0.1:$port" >/dev/null
    printf 'retry_max_ms = 2000\n' >"$root/$who/config"
    printf '%s\n' "${policy[$who]}" >"$root/$who/policy"
    "$tfd" --home "$root/$who" 2>"$root/$who.log" &
    pids+=($!)
    echo "  $name's policy:"
    sed 's/^/    /' "$root/$who/policy"
done
for who in carol alice bob; do
    for _ in $(seq 1 50); do [ -S "$root/$who/control.sock" ] && break; sleep 0.1; done
done

say "Alice offers real-estate-law; Carol knows Alice (close) and Bob (known)"
as alice profile set --offers real-estate-law
as carol contact add "$("$tf" --home "$root/alice" card)" --alias alice --trust close
as carol contact add "$("$tf" --home "$root/bob" card)" --alias bob
as alice contact add "$("$tf" --home "$root/carol" card)" --alias carol
as bob contact add "$("$tf" --home "$root/carol" card)" --alias carol
as carol policy test --requester bob --topic real-estate-law

say "Bob asks Carol for a real-estate lawyer"
rid=$(json bob ask carol --seeking real-estate-law --note "buying my first flat" |
    /usr/bin/python3 -c 'import json,sys; print(json.load(sys.stdin)["id"])')
echo "  request ${rid:0:12}"

say "Carol's policy proposes Alice; Bob's and Alice's policies accept"
wait_for carol "any(r['id'] == '$rid' and r['state'] == 'answered' for r in d)" requests
as carol requests
iid=$(json carol requests | /usr/bin/python3 -c "import json,sys; print([r['intro'] for r in json.load(sys.stdin) if r['id'] == '$rid'][0])")
wait_for carol "d['state'] == 'introduced'" show "${iid:0:12}"
wait_for alice "any(i['id'] == '$iid' and i['state'] == 'introduced' for i in d)" inbox --all
wait_for bob "any(i['id'] == '$iid' and i['state'] == 'introduced' for i in d)" inbox --all
as carol show "${iid:0:12}"
as bob requests
as bob inbox --all
as alice inbox --all

say "Bob tells Carol it helped; Carol sees it in her statistics of Bob"
as bob feedback "${iid:0:12}" --helped yes --note "Alice was great."
wait_for carol "d['intro_stats']['helpful'] == 1" contact show bob
"$tf" --home "$root/carol" contact show bob | grep '^intros' | sed 's/^/  /'

say "Done: asked, matched and introduced by policy, with both signed acceptances; feedback closed the loop."
