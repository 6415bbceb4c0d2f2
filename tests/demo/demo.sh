#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# The whole story on loopback, with three real nodes in temporary homes:
# Carol knows Alice (a real-estate lawyer looking for clients) and Bob (looking
# for one).  A first proposal (tax law) that Bob declines: Carol sees the
# decline and its private reason, Alice only sees that it will not go ahead.
# Then the real-estate proposal: both accept, and both now have each other as
# contacts "introduced by Carol".  Bob's node takes no connections (no_listen
# = 1, as behind a NAT): Carol's node is his mailbox, and Alice's first note
# to him reaches him through it.
#
# Each command is echoed as it can be typed again: $D stands for the demo's
# directory (printed first) and arguments keep their quotes.  With --keep the
# three nodes stay up afterwards, and the demo prints how to talk to them and
# how to stop them.
#
#   tests/demo/demo.sh BUILD_DIR [--keep]
set -euo pipefail

build=${1:?usage: demo.sh BUILD_DIR [--keep]}
keep=false
case ${2:-} in
--keep) keep=true ;;
"") ;;
*)
    echo "usage: demo.sh BUILD_DIR [--keep]" >&2
    exit 2
    ;;
esac
tf="$build/cli/twofold"
tfd="$build/node/twofoldd"
root=$(mktemp -d /tmp/twofold-demo.XXXXXX)
pids=()
started=$(date +%s%N)
finished=false
cleanup() {
    if $keep && $finished; then return; fi
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
# Quotes each argument as a shell needs it (single quotes around anything
# but plain characters), so that an echoed command can be copied.
quote() {
    local a out=() q="'"
    for a in "$@"; do
        if [[ $a =~ ^[A-Za-z0-9_./:=@%+,-]+$ ]]; then
            out+=("$a")
        else
            out+=("$q${a//$q/$q\\$q$q}$q")
        fi
    done
    printf '%s' "${out[*]}"
}
# as WHO ARGS...: runs twofold in WHO's home, echoing the command first.
as() {
    local who=$1
    shift
    printf '$ twofold --home "$D/%s" %s\n' "$who" "$(quote "$@")"
    "$tf" --home "$root/$who" "$@" | sed 's/^/  /'
}
# add_card WHO OTHER ARGS...: WHO adds OTHER's card (echoed as the command
# that reads the card, not as the card itself).
add_card() {
    local who=$1 other=$2
    shift 2
    printf '$ twofold --home "$D/%s" contact add "$(twofold --home "$D/%s" card)" %s\n' \
        "$who" "$other" "$(quote "$@")"
    "$tf" --home "$root/$who" contact add "$("$tf" --home "$root/$other" card)" "$@" |
        sed 's/^/  /'
}
# use_mailbox WHO MAILBOX: WHO lists MAILBOX's node on its card (echoed as the
# command that reads the card).
use_mailbox() {
    printf '$ twofold --home "$D/%s" mailbox use "$(twofold --home "$D/%s" card)"\n' "$1" "$2"
    "$tf" --home "$root/$1" mailbox use "$("$tf" --home "$root/$2" card)" | sed 's/^/  /'
}
free_port() { /usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
# propose ARGS...: Carol proposes (echoed); sets intro to the new id.
propose() {
    printf '$ twofold --home "$D/carol" propose %s\n' "$(quote "$@")"
    intro=$("$tf" --home "$root/carol" --json propose "$@" |
        /usr/bin/python3 -c 'import json,sys; print(json.load(sys.stdin)["id"])')
    echo "  intro ${intro:0:12}"
}
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
echo "  D=$root   (the demo's directory: the commands below use \$D)"
for who in carol alice bob; do
    port=$(free_port)
    name=$(echo "$who" | sed 's/./\U&/')
    "$tf" --home "$root/$who" init --name "$name" --listen "127.0.0.1:$port" >/dev/null
    # Closes caused by a decline wait 0-1 s here (the default is 1-24 h).
    printf 'retry_max_ms = 2000\nclose_delay_min_s = 0\nclose_delay_max_s = 1\n' >"$root/$who/config"
    # Bob's node opens no listening socket (his card's address stays dead).
    if [ "$who" = bob ]; then printf 'no_listen = 1\nmailbox_retry_max_ms = 2000\n' >>"$root/$who/config"; fi
    "$tfd" --home "$root/$who" >"$root/$who.log" 2>&1 &
    pids+=($!)
    echo "  $name: node on 127.0.0.1:$port, id $("$tf" --home "$root/$who" id | awk '/^id/ {print $2}')"
done
for who in carol alice bob; do
    for _ in $(seq 1 50); do [ -S "$root/$who/control.sock" ] && break; sleep 0.1; done
done

say "Carol knows Alice and Bob; they know Carol, not each other (cards exchanged)"
add_card carol alice --alias alice --tag lawyer
add_card carol bob --alias bob
add_card alice carol --alias carol --trust close
add_card bob carol --alias carol --trust close

say "Bob's node takes no connections (no_listen = 1): Carol's node is his mailbox"
as carol mailbox host bob
use_mailbox bob carol
wait_for bob "all(m['connected'] for m in d['mailboxes'])" mailbox status
as bob mailbox status

say "Carol first suggests they talk tax law; Bob declines (privately)"
propose alice bob --topic tax-law
id1=$intro
wait_for bob "any(i['id'] == '$id1' for i in d)" inbox
as bob inbox
as bob decline "${id1:0:12}" --reason "I already have a tax adviser."
wait_for carol "d['state'] == 'declined'" show "${id1:0:12}"
wait_for alice "any(i['id'] == '$id1' and i['state'] == 'closed' for i in d)" inbox --all
as carol show "${id1:0:12}"
echo "  Alice sees only that it will not go ahead (the same as a withdrawal or an expiry):"
as alice inbox --all

say "Then Carol proposes the introduction that matters: real-estate law"
propose alice bob --topic real-estate-law \
    --about-a "a real-estate lawyer" --about-b "a first-time flat buyer" \
    --note-a "Bob is buying his first flat and needs a lawyer." \
    --note-b "Alice is a real-estate lawyer taking new clients."
id=$intro
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

say "Alice writes to Bob, who listens nowhere: Carol's node carries it as his mailbox"
bob_id=$("$tf" --home "$root/bob" --json id | /usr/bin/python3 -c 'import json,sys; print(json.load(sys.stdin)["id"])')
as alice message "$bob_id" "Hello Bob, when shall we meet?"
wait_for bob "[m['text'] for m in d if m['direction'] == 'in'] == ['Hello Bob, when shall we meet?']" messages
as bob messages

say "Done: one introduction made with both consents verified; one declined privately."
ms=$((($(date +%s%N) - started) / 1000000))
printf '  (the story took %d.%d s)\n' $((ms / 1000)) $((ms % 1000 / 100))
if $keep; then
    finished=true
    cat <<EOF

The three nodes keep running (logs in $root/NAME.log).  Talk to them:
  D=$root
  PATH=$(cd "$build" && pwd)/cli:\$PATH
  twofold --home "\$D/alice" contact list
  twofold --home "\$D/carol" intros
  twofold --home "\$D/alice" message carol 'Thanks for the introduction!'
  twofold --home "\$D/alice" watch
Stop them and remove everything:
  kill ${pids[*]} && sleep 1 && rm -rf "$root"
EOF
fi
