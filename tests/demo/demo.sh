#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# The whole story on loopback, with three real nodes in temporary homes:
# Carol knows Alice (a real-estate lawyer looking for clients) and Bob (looking
# for one).  A first proposal (tax law) that Bob declines: Carol sees the
# decline and its private reason, Alice only sees that it will not go ahead.
# Then the real-estate proposal: both accept, and both now have each other as
# contacts "introduced by Carol".
#
#   tests/demo/demo.sh BUILD_DIR
set -euo pipefail

build=${1:?usage: demo.sh BUILD_DIR}
tf="$build/cli/twofold"
tfd="$build/node/twofoldd"
root=$(mktemp -d /tmp/twofold-demo.XXXXXX)
pids=()
cleanup() {
    for pid in "${pids[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
    for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
    rm -rf "$root"
}
trap cleanup EXIT

bold= plain=
if [ -t 1 ] && [ -z "${NO_COLOR:-}" ]; then
    bold=$(tput bold 2>/dev/null || true)
    plain=$(tput sgr0 2>/dev/null || true)
fi
say() { printf '\n%s== %s%s\n' "$bold" "$*" "$plain"; }
run() { printf '$ twofold %s\n' "$*"; "$tf" "$@" | sed 's/^/  /'; }
as() { local who=$1; shift; printf '%s$ twofold --home %s %s%s\n' "" "$who" "$*" ""; "$tf" --home "$root/$who" "$@" | sed 's/^/  /'; }
free_port() { /usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
# Polls a JSON query until the Python expression over it holds (10 s max).
wait_for() {
    local who=$1 expr=$2
    shift 2
    for _ in $(seq 1 100); do
        if "$tf" --home "$root/$who" --json "$@" 2>/dev/null |
            /usr/bin/python3 -c "import json,sys; d=json.load(sys.stdin); sys.exit(0 if ($expr) else 1)"; then
            return 0
        fi
        sleep 0.1
    done
    echo "demo: timed out waiting on $who: $*" >&2
    exit 1
}

say "Three people, three nodes (each its own home, keys and contacts)"
for who in carol alice bob; do
    port=$(free_port)
    name=$(echo "$who" | sed 's/./\U&/')
    "$tf" --home "$root/$who" init --name "$name" --listen "127.0.0.1:$port" >/dev/null
    # Closes caused by a decline wait 0-1 s here (the default is 1-24 h).
    printf 'retry_max_ms = 2000\nclose_delay_min_s = 0\nclose_delay_max_s = 1\n' >"$root/$who/config"
    "$tfd" --home "$root/$who" 2>"$root/$who.log" &
    pids+=($!)
    echo "  $name: node on 127.0.0.1:$port, id $("$tf" --home "$root/$who" id | awk '/^id/ {print $2}')"
done
for who in carol alice bob; do
    for _ in $(seq 1 50); do [ -S "$root/$who/control.sock" ] && break; sleep 0.1; done
done

say "Carol knows Alice and Bob; they know Carol, not each other (cards exchanged)"
as carol contact add "$("$tf" --home "$root/alice" card)" --alias alice --tag lawyer
as carol contact add "$("$tf" --home "$root/bob" card)" --alias bob
as alice contact add "$("$tf" --home "$root/carol" card)" --alias carol --trust close
as bob contact add "$("$tf" --home "$root/carol" card)" --alias carol --trust close

say "Carol first suggests they talk tax law; Bob declines (privately)"
id1=$("$tf" --home "$root/carol" --json propose alice bob --topic tax-law |
    /usr/bin/python3 -c 'import json,sys; print(json.load(sys.stdin)["id"])')
echo "  intro ${id1:0:12}"
wait_for bob "any(i['id'] == '$id1' for i in d)" inbox
as bob inbox
as bob decline "${id1:0:12}" --reason "I already have a tax adviser."
wait_for carol "d['state'] == 'declined'" show "${id1:0:12}"
wait_for alice "any(i['id'] == '$id1' and i['state'] == 'closed' for i in d)" inbox --all
as carol show "${id1:0:12}"
echo "  Alice sees only that it will not go ahead (the same as a withdrawal or an expiry):"
as alice inbox --all

say "Then Carol proposes the introduction that matters: real-estate law"
id=$("$tf" --home "$root/carol" --json propose alice bob --topic real-estate-law \
    --about-a "a real-estate lawyer" --about-b "a first-time flat buyer" \
    --note-a "Bob is buying his first flat and needs a lawyer." \
    --note-b "Alice is a real-estate lawyer taking new clients." |
    /usr/bin/python3 -c 'import json,sys; print(json.load(sys.stdin)["id"])')
echo "  intro ${id:0:12}"
wait_for alice "any(i['id'] == '$id' for i in d)" inbox
wait_for bob "any(i['id'] == '$id' for i in d)" inbox
as alice inbox
as bob inbox

say "Both accept (each signs an acceptance)"
as alice accept "${id:0:12}" --note "Happy to help, Bob."
as bob accept "${id:0:12}" --note "Thanks, Alice!"

say "Carol's node sends the introduction; each side checks BOTH signatures itself"
wait_for alice "any(c.get('intro') == '$id' for c in d)" contact list
wait_for bob "any(c.get('intro') == '$id' for c in d)" contact list
as carol intros
as alice contact list
as bob contact list
for who in alice bob; do
    "$tf" --home "$root/$who" --json contact list | /usr/bin/python3 -c '
import json, sys
who, carol = sys.argv[1], sys.argv[2]
for c in json.load(sys.stdin):
    if c["intro"]:
        by = "Carol" if c["introduced_by"] == carol else c["introduced_by"]
        print("  %s now has %s as a contact, introduced by %s (intro %s)"
              % (who.capitalize(), c["name"], by, c["intro"][:12]))
' "$who" "$("$tf" --home "$root/carol" --json id | /usr/bin/python3 -c 'import json,sys; print(json.load(sys.stdin)["id"])')"
done

say "Done: one introduction made with both consents verified; one declined privately."
