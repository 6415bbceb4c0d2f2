# SPDX-License-Identifier: MIT
"""The torture run's independent checker.

It knows only the ledger (what the driver planned and did: each intro's
connector, parties, topic, mode, the answer each side gave, whether the
withdrawal went through) and reads every node's state itself:

- through the CLI (`twofold --json intros`, `inbox --all`, `contact list`,
  `outbox`) while the nodes run, and
- from the LMDB store read-only with `mdb_dump` after they stopped: the
  connector's and the parties' intro records (with the signed objects they
  hold) and the event log.

Signatures are verified with tests/interop/verifier.py, the independent
Python implementation of the wire format (docs/PROTOCOL.md §8).

Invariants (issue 8):
 1. No party stores an introduced contact unless both parties' valid signed
    acceptances of that intro exist: the connector's record holds both
    replies, each an accept signed by the party committed to in the core;
    the party's record holds the same signed acceptance it sent, the
    proposal it answered verifies, and the introduction it stored as its
    proof passes the materialisation check again (in Python).
 2. Every intro both sides accepted is materialised on both sides exactly
    once: introduced at the connector, both inbox items introduced naming
    the other, the other a contact with the provenance, one
    inbox.introduced / intro.introduced event each.
 3. A party's closed item for an intro the other side declined looks the
    same as one for a withdrawn or expired intro (same keys, value types,
    no other, no note, no late revocation; the same events).

The record layouts read here are the node's (node/intro.c in_encode and
out_encode); a layout change makes the checker fail loudly, not pass.
"""
import os
import subprocess
import sys

import msgpack

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "interop"))
import verifier as v  # noqa: E402

OUT_STATES = ("asking", "introduced", "declined", "withdrawn", "expired")
SIDE_STATES = ("not_asked", "pending", "accepted", "declined")
IN_STATES = ("pending", "accepted", "declined", "introduced", "closed", "expired")
# A party's item ends closed by the connector or expired by its own node,
# whichever comes first (docs/CONTROL.md).
FINAL_IN = ("introduced", "closed", "declined", "expired")
PROOF_SKEW = 300  # seconds, as TF_PROTO_SKEW_DEFAULT


# ---------------------------------------------------------------------------
# Reading a store

def mdb_table(store_dir, table):
    """{key bytes: value bytes} of one named LMDB table, via mdb_dump."""
    r = subprocess.run(["mdb_dump", "-s", table, store_dir], capture_output=True, text=True,
                       timeout=60)
    if r.returncode != 0:
        raise RuntimeError("mdb_dump -s %s %s: %s" % (table, store_dir, r.stderr.strip()))
    lines = r.stdout.split("\n")
    start = lines.index("HEADER=END") + 1
    end = lines.index("DATA=END")
    data = [bytes.fromhex(x.strip()) for x in lines[start:end]]
    return dict(zip(data[0::2], data[1::2]))


def decode_out(raw):
    """A connector record (node/intro.c out_encode)."""
    f = msgpack.unpackb(raw, raw=True, strict_map_key=False)
    if len(f) not in (21, 23):  # 23: with the delayed closes' times
        raise ValueError("intros_out record of %d fields" % len(f))
    sides = []
    for x in range(2):
        s = f[1 + 7 * x: 8 + 7 * x]
        sides.append({"salt": s[0], "pk": s[1], "reason": s[4].decode(), "reply": s[5],
                      "state": SIDE_STATES[s[6]]})
    return {"core": f[0], "sides": sides, "mode": f[15], "topic": f[16].decode(),
            "state": OUT_STATES[f[17]]}


def decode_in(raw):
    """A party record (node/intro.c in_encode)."""
    f = msgpack.unpackb(raw, raw=True, strict_map_key=False)
    if len(f) not in (10, 11):  # 11: with the stranger flag
        raise ValueError("intros_in record of %d fields" % len(f))
    return {"proposal": f[0], "state": IN_STATES[f[1]], "decided_by": f[2].decode(),
            "my_accept": f[3], "other": f[4], "other_note": f[5].decode(),
            "late_revocation": f[6], "introduction": f[9]}


def intro_records(store_dir, table):
    """{intro id bytes: record bytes} of intros_out or intros_in: since store
    schema 11 the records sit in <table>_seq under u64be(order) || id, and
    <table>_ids holds id -> order, exactly one entry per record."""
    recs = mdb_table(store_dir, table + "_seq")
    index = mdb_table(store_dir, table + "_ids")
    by_id = {k[8:]: val for k, val in recs.items()}
    if len(index) != len(recs) or any(index.get(k[8:]) != k[:8] for k in recs):
        raise ValueError("%s: the records and their id index differ" % table)
    return by_id


def read_store(home):
    """The intro records and events of a stopped node's store."""
    store = os.path.join(home, "store")
    outs = {k.hex(): decode_out(val) for k, val in intro_records(store, "intros_out").items()}
    ins = {k.hex(): decode_in(val) for k, val in intro_records(store, "intros_in").items()}
    events = [msgpack.unpackb(val, raw=False)
              for _, val in sorted(mdb_table(store, "events").items())]
    return {"outs": outs, "ins": ins, "events": events}


# ---------------------------------------------------------------------------
# The model: what must have happened to each intro

def expected_outcome(d):
    """The connector's final state the ledger entry d warrants."""
    if d["withdrew"]:
        return "withdrawn"
    ans = d["answer"]
    sides = (0, 1)
    if d["mode"] == "parallel" and "decline" in ans:
        return "declined"
    for x in sides:
        if ans[x] == "decline":
            return "declined"
        if ans[x] == "hold":
            return "withdrawn"  # only if the withdrawal went through (else a mismatch)
        if ans[x] == "ignore":
            return "expired"
    return "introduced"


class Report:
    """Counters and the first few findings of each kind."""

    KINDS = ("lost", "duplicated", "unwarranted", "wrong_outcome", "unsettled",
             "policy_mismatch", "distinguishable", "bad_record")

    def __init__(self):
        self.counts = {k: 0 for k in self.KINDS}
        self.findings = []
        self.stats = {"intros_checked": 0, "acceptances_verified": 0, "proofs_verified": 0,
                      "contacts_checked": 0, "closed_items_compared": 0}
        self._flagged = set()

    def add(self, kind, key, text):
        """One finding; each (kind, key) counts once."""
        if (kind, key) in self._flagged:
            return
        self._flagged.add((kind, key))
        self.counts[kind] += 1
        if len(self.findings) < 200:
            self.findings.append("%s: %s" % (kind, text))

    def ok(self):
        return all(n == 0 for n in self.counts.values())


# ---------------------------------------------------------------------------

class Checker:
    """Checks one run.  ids: name -> text id; initial: name -> names known
    at the start; cli: name -> {intros, inbox, contacts, outbox}; stores:
    name -> read_store(); ledger: the driver's results()."""

    def __init__(self, ids, initial, cli, stores, ledger):
        self.ids = ids
        self.name_of = {t: n for n, t in ids.items()}
        self.pk = {n: v.verify_text_id(t) for n, t in ids.items()}
        self.name_of_pk = {p: n for n, p in self.pk.items()}
        self.initial = initial
        self.cli = cli
        self.stores = stores
        self.ledger = [d for d in ledger if d["id"] is not None]
        self.by_id = {d["id"]: d for d in self.ledger}
        self.r = Report()
        self.outcomes = {s: 0 for s in OUT_STATES}
        self.verified_intros = {}  # intro id -> problem or None (invariant 1, connector)
        self.verified_parties = {}  # (party, intro id) -> problem or None (invariant 1, party)

    def run(self):
        self._index()
        self.check_settled()
        for d in self.ledger:
            self.check_intro(d)
        self.check_strays()
        for n in self.ids:
            self.check_contacts(n)
        self.check_indistinguishable()
        return self.r

    # Helpers -----------------------------------------------------------
    def events(self, node, iid, type_=None):
        """node's events about intro iid (of one type, or all)."""
        return [e for e in self._events[node].get(iid, ()) if type_ is None or e["type"] == type_]

    def inbox_item(self, node, iid):
        """node's inbox items with id iid (one, unless duplicated)."""
        return self._inbox[node].get(iid, [])

    def connector_intros(self, node, topic):
        """node's intros (as the connector) with this topic."""
        return self._by_topic[node].get(topic, [])

    def _index(self):
        self._events, self._inbox, self._by_topic = {}, {}, {}
        for n in self.ids:
            ev, ib, bt = {}, {}, {}
            for e in self.stores[n]["events"]:
                if "id" in e:
                    ev.setdefault(e["id"], []).append(e)
            for i in self.cli[n]["inbox"]:
                ib.setdefault(i["id"], []).append(i)
            for o in self.cli[n]["intros"]:
                bt.setdefault(o["topic"], []).append(o)
            self._events[n], self._inbox[n], self._by_topic[n] = ev, ib, bt

    # Liveness ------------------------------------------------------------
    def check_settled(self):
        for n, c in self.cli.items():
            if c["outbox"]:
                self.r.add("unsettled", ("outbox", n), "%s's outbox still holds %d envelopes: %s" % (
                    n, len(c["outbox"]), [(e["type"], e.get("alias")) for e in c["outbox"][:5]]))

    # Invariant 1 at the connector -----------------------------------------
    def verify_connector_record(self, connector, iid):
        """Both signed acceptances of intro iid, as the connector holds them,
        verified independently.  Returns a problem text or None."""
        if iid in self.verified_intros:
            return self.verified_intros[iid]
        problem = None
        rec = self.stores[connector]["outs"].get(iid)
        try:
            if rec is None:
                raise v.ProtoError("NO_RECORD", "the connector has no record of it")
            core = v.decode_core(rec["core"])
            if v.intro_id_of(rec["core"]).hex() != iid:
                raise v.ProtoError("E_INTRO_ID", "the record's core is not this intro's")
            if core.connector_pk != self.pk[connector]:
                raise v.ProtoError("E_CONNECTOR", "the core names another connector")
            for x in (0, 1):
                s = rec["sides"][x]
                if v.commitment(s["pk"], s["salt"]) != core.commits[x]:
                    raise v.ProtoError("E_COMMITMENT", "side %d" % x)
                if not s["reply"]:
                    raise v.ProtoError("NO_REPLY", "no signed reply stored for side %d" % x)
                rep = v.verify_reply(s["pk"], bytes.fromhex(iid), x, s["reply"])
                if rep.decision != 1:
                    raise v.ProtoError("E_REPLY_DECLINE", "side %d's stored reply" % x)
                self.r.stats["acceptances_verified"] += 1
        except (v.ProtoError, ValueError, KeyError, IndexError) as e:
            problem = "intro %.12s at %s: %s" % (iid, connector, e)
        self.verified_intros[iid] = problem
        return problem

    def verify_party_record(self, party, iid, connector):
        """The party's own signed acceptance and the proposal it answered.
        Returns a problem text or None."""
        if (party, iid) not in self.verified_parties:
            self.verified_parties[(party, iid)] = self._verify_party_record(party, iid, connector)
        return self.verified_parties[(party, iid)]

    def _verify_party_record(self, party, iid, connector):
        rec = self.stores[party]["ins"].get(iid)
        out = self.stores[connector]["outs"].get(iid)
        try:
            if rec is None:
                raise v.ProtoError("NO_RECORD", "the party has no record of it")
            p = v.decode_proposal(rec["proposal"])
            if not v.sig_ok(self.pk[connector], v.TAG_PROPOSAL, p.body, p.sig):
                raise v.ProtoError("E_BAD_SIG", "stored proposal")
            if p.intro_id.hex() != iid or v.intro_id_of(p.core_bytes).hex() != iid:
                raise v.ProtoError("E_INTRO_ID", "stored proposal")
            if v.commitment(self.pk[party], p.salt) != p.core.commits[p.side]:
                raise v.ProtoError("E_COMMITMENT", "stored proposal")
            rep = v.verify_reply(self.pk[party], bytes.fromhex(iid), p.side, rec["my_accept"])
            if rep.decision != 1:
                raise v.ProtoError("E_REPLY_DECLINE", "the party's stored acceptance")
            if out is None or out["sides"][p.side]["reply"] != rec["my_accept"]:
                raise v.ProtoError("E_NOT_MY_REPLY",
                                   "the connector holds another acceptance for this side")
            if rec["state"] == "introduced":
                # The party's own proof: the introduction it verified, with
                # both signed acceptances, checked again here independently.
                if not rec["introduction"]:
                    raise v.ProtoError("NO_PROOF", "introduced without a stored introduction")
                other = v.materialise_check(self.pk[party], rec["my_accept"],
                                            rec["introduction"], PROOF_SKEW)
                if rec["other"] != other.sign_pk:
                    raise v.ProtoError("E_OTHER", "the stored proof names another party")
                self.r.stats["proofs_verified"] += 1
            self.r.stats["acceptances_verified"] += 1
        except (v.ProtoError, ValueError, KeyError, IndexError) as e:
            return "intro %.12s at %s: %s" % (iid, party, e)
        return None

    # Invariant 2: each intro ------------------------------------------------
    def check_intro(self, d):
        iid, topic, c = d["id"], d["topic"], d["connector"]
        key = topic
        self.r.stats["intros_checked"] += 1
        same = self.connector_intros(c, topic)
        if len(same) > 1:
            self.r.add("duplicated", key, "%s: the connector holds %d intros" % (topic, len(same)))
        mine = [o for o in same if o["id"] == iid]
        if not mine:
            self.r.add("lost", key, "%s: the connector has no intro %.12s" % (topic, iid))
            return
        o = mine[0]
        state = o["state"]
        self.outcomes[state] = self.outcomes.get(state, 0) + 1
        want = expected_outcome(d)
        if state == "asking":
            self.r.add("unsettled", key, "%s: still asking at the connector" % topic)
        elif state != want:
            if want == "introduced":
                self.r.add("lost", key, "%s: %s, but both sides accepted" % (topic, state))
            elif state == "introduced":
                self.r.add("unwarranted", key, "%s: introduced, but the plan says %s" % (
                    topic, want))
            else:
                self.r.add("wrong_outcome", key, "%s: %s, the plan says %s (answers %s, "
                           "withdraw %s)" % (topic, state, want, d["answer"], d["withdrew"]))
        n_ev = len(self.events(c, iid, "intro.introduced"))
        if n_ev > (1 if state == "introduced" else 0):
            kind = "duplicated" if state == "introduced" else "unwarranted"
            self.r.add(kind, key, "%s: %d intro.introduced events" % (topic, n_ev))
        if state == "introduced":
            problem = self.verify_connector_record(c, iid)
            if problem:
                self.r.add("unwarranted", key, "invariant 1: " + problem)
        rec = self.stores[c]["outs"].get(iid)
        if rec is None:
            self.r.add("bad_record", key, "%s: CLI lists it, the store has no record" % topic)
            return
        for x in (0, 1):
            self.check_side(d, o, rec, x, state)

    def check_side(self, d, o, rec, x, state):
        """Party x of intro d: its item and events agree with the
        connector's final state, and its policy decided as planned."""
        iid, topic = d["id"], d["topic"]
        party, other = d["parties"][x], d["parties"][1 - x]
        asked = rec["sides"][x]["state"] != "not_asked"
        items = self.inbox_item(party, iid)
        key = (topic, x)
        if len(items) > 1:
            self.r.add("duplicated", key, "%s: %s lists it %d times" % (topic, party, len(items)))
        n_recv = len(self.events(party, iid, "inbox.received"))
        if n_recv > 1:
            self.r.add("duplicated", key, "%s: %s received it %d times" % (topic, party, n_recv))
        if not asked:
            if items:
                self.r.add("wrong_outcome", key, "%s: %s has an item but was never asked" % (
                    topic, party))
            return
        if not items:
            self.r.add("lost" if state == "introduced" else "unsettled", key,
                       "%s: %s was asked but holds no item" % (topic, party))
            return
        it = items[0]
        n_intro = len(self.events(party, iid, "inbox.introduced"))
        if state == "introduced":
            if it["state"] != "introduced" or it["other"] != self.ids[other]:
                self.r.add("lost", topic, "%s: introduced, but %s's item is %s (other %s)" % (
                    topic, party, it["state"], it["other"]))
            elif n_intro != 1:
                self.r.add("duplicated" if n_intro > 1 else "lost", topic,
                           "%s: %s logged inbox.introduced %d times" % (topic, party, n_intro))
            else:
                problem = self.verify_party_record(party, iid, d["connector"])
                if problem:
                    self.r.add("unwarranted", topic, "invariant 1: " + problem)
            # The note is the one the other side signed (owner accepts only).
            if d["policy"][1 - x] == "ask" and it["other_note"] != d["notes"][1 - x]:
                self.r.add("bad_record", key, "%s: %s got note %r" % (topic, party,
                                                                     it["other_note"]))
        else:
            if it["state"] == "introduced" or n_intro:
                self.r.add("unwarranted", topic, "%s: %s is introduced, the connector says %s" % (
                    topic, party, state))
            elif it["state"] not in FINAL_IN:
                self.r.add("unsettled", key, "%s: %s's item is still %s (connector: %s)" % (
                    topic, party, it["state"], state))
            elif it["state"] == "declined" and d["answer"][x] != "decline":
                self.r.add("wrong_outcome", key, "%s: %s declined, not planned" % (topic, party))
        self.check_decided_by(d, it, x)

    def check_decided_by(self, d, it, x):
        """The answer recorded on the item is the planned one: the policy
        rule's line for automatic answers, "owner" for the driver's."""
        pol, ans = d["policy"][x], d["answer"][x]
        got = it["decided_by"]
        if pol in ("accept", "decline"):
            want = d["policy_line"][x]
        elif ans in ("accept", "decline"):
            want = "owner"
            if got is None and it["state"] in ("closed", "expired"):
                return  # closed or expired before the driver could answer
        else:
            want = None  # held or ignored: never answered
        if got != want:
            self.r.add("policy_mismatch", (d["topic"], x), "%s: %s decided_by %r, planned %r" % (
                d["topic"], d["parties"][x], got, want))

    # Strays: records nobody planned ---------------------------------------
    def check_strays(self):
        for n in self.ids:
            st = self.stores[n]
            for iid, rec in st["outs"].items():
                if iid not in self.by_id:
                    self.r.add("unwarranted" if rec["state"] == "introduced" else "duplicated",
                               ("stray-out", iid), "%s holds an intro nobody proposed: %s %s" % (
                                   n, rec["topic"], rec["state"]))
            for iid, rec in st["ins"].items():
                d = self.by_id.get(iid)
                if d is None or n not in d["parties"]:
                    self.r.add("unwarranted", ("stray-in", iid),
                               "%s holds an inbox record for an unknown intro %.12s (%s)" % (
                                   n, iid, rec["state"]))
                elif rec["state"] == "introduced":
                    # Every materialised intro, not only the contact's first.
                    c = d["connector"]
                    problem = self.verify_connector_record(c, iid) or \
                        self.verify_party_record(n, iid, c)
                    if problem:
                        self.r.add("unwarranted", d["topic"], "invariant 1: " + problem)
                    if rec["other"] is None or self.name_of_pk.get(rec["other"]) != \
                            d["parties"][1 - d["parties"].index(n)]:
                        self.r.add("unwarranted", d["topic"], "%s: %s's record names the wrong "
                                   "other party" % (d["topic"], n))

    # Invariants 1 and 2 on the contact lists ------------------------------
    def check_contacts(self, n):
        contacts = self.cli[n]["contacts"]
        seen = {}
        for ct in contacts:
            seen[ct["id"]] = seen.get(ct["id"], 0) + 1
        for tid, count in seen.items():
            if count > 1:
                self.r.add("duplicated", ("contact", n, tid), "%s lists contact %s %d times" % (
                    n, self.name_of.get(tid, tid), count))
        introduced = {}  # other name -> ids of intros of the pair that were introduced
        for d in self.ledger:
            if n in d["parties"]:
                o = [i for i in self.connector_intros(d["connector"], d["topic"])
                     if i["id"] == d["id"]]
                if o and o[0]["state"] == "introduced":
                    other = d["parties"][1 - d["parties"].index(n)]
                    introduced.setdefault(other, set()).add(d["id"])
        by_name = {self.name_of.get(ct["id"]): ct for ct in contacts}
        for ct in contacts:
            self.r.stats["contacts_checked"] += 1
            q = self.name_of.get(ct["id"])
            if q is None:
                self.r.add("unwarranted", ("contact", n, ct["id"]),
                           "%s holds a contact from outside the run: %s" % (n, ct["id"]))
                continue
            if ct["intro"] is None:
                if q not in self.initial[n]:
                    self.r.add("unwarranted", ("contact", n, q),
                               "%s holds %s without an introduction" % (n, q))
                continue
            d = self.by_id.get(ct["intro"])
            c = self.name_of.get(ct["introduced_by"])
            if d is None or c != d["connector"] or q not in d["parties"] or n not in d["parties"]:
                self.r.add("unwarranted", ("contact", n, q),
                           "%s holds %s introduced by %s in intro %.12s, which is no intro of "
                           "theirs" % (n, q, c, ct["intro"]))
                continue
            problem = self.verify_connector_record(c, ct["intro"]) or \
                self.verify_party_record(n, ct["intro"], c)
            if problem:
                self.r.add("unwarranted", ("contact", n, q), "invariant 1: " + problem)
        for q, iids in introduced.items():
            ct = by_name.get(q)
            if ct is None or ct["intro"] not in iids:
                self.r.add("lost", ("contact", n, q), "%s was introduced to %s (%d intros) but "
                           "holds %s" % (n, q, len(iids), "no contact" if ct is None else
                                         "provenance %r" % ct["intro"]))

    # Invariant 3 ------------------------------------------------------------
    def check_indistinguishable(self):
        """Closed items of the side that did not decline, grouped by why the
        intro ended: same keys and value types, nothing about the other, the
        same events, and never the decliner's reason."""
        shapes = {}  # cause -> set of shapes
        compared = {}  # cause -> closed items
        event_shapes = {}
        for d in self.ledger:
            c = d["connector"]
            rec = self.stores[c]["outs"].get(d["id"])
            if rec is None or rec["state"] not in ("declined", "withdrawn", "expired"):
                continue
            for x in (0, 1):
                if rec["sides"][x]["state"] in ("declined", "not_asked"):
                    continue
                party = d["parties"][x]
                items = self.inbox_item(party, d["id"])
                if not items or items[0]["state"] != "closed":
                    continue
                it = items[0]
                self.r.stats["closed_items_compared"] += 1
                cause = rec["state"]
                compared[cause] = compared.get(cause, 0) + 1
                shape = (tuple(sorted(it)), tuple(sorted((k, type(val).__name__)
                                                         for k, val in it.items()
                                                         if k != "decided_by")))
                shapes.setdefault(cause, set()).add(shape)
                if it["other"] is not None or it["other_note"] is not None or \
                        it["late_revocation"]:
                    self.r.add("distinguishable", (d["topic"], x),
                               "%s: %s's closed item tells about the other: %r" % (
                                   d["topic"], party, it))
                evs = [e for e in self.events(party, d["id"])
                       if e["type"] not in ("inbox.received", "inbox.accepted", "inbox.declined")]
                event_shapes.setdefault(cause, set()).add(
                    tuple((e["type"], tuple(sorted(e))) for e in evs))
                text = repr(it) + repr(evs)
                for y in (0, 1):
                    if d["reasons"][y] in text:
                        self.r.add("distinguishable", (d["topic"], x), "%s: %s sees the decline "
                                   "reason" % (d["topic"], party))
        self.invariant3 = {"closed_items": compared,
                           "shapes": {k: len(s) for k, s in shapes.items()}}
        all_shapes = set().union(*shapes.values()) if shapes else set()
        all_events = set().union(*event_shapes.values()) if event_shapes else set()
        if len(all_shapes) > 1:
            self.r.add("distinguishable", "shapes", "closed items differ in shape by cause: %r" % (
                shapes,))
        if len(all_events) > 1:
            self.r.add("distinguishable", "events", "closed items' events differ by cause: %r" % (
                event_shapes,))


# ---------------------------------------------------------------------------
# Self-test: the checker must see planted faults

def _first(items, pred):
    for x in items:
        if pred(x):
            return x
    return None


def mutations(ids, cli, stores, ledger):
    """(name, expected counter, mutate(cli, stores, ledger)) for faults
    planted in copies of a passing run's state."""
    def introduced(d, cli_):
        return any(o["id"] == d["id"] and o["state"] == "introduced"
                   for o in cli_[d["connector"]]["intros"])

    def forge_reply(cli_, stores_, ledger_):
        d = _first(ledger_, lambda d: introduced(d, cli_))
        side = stores_[d["connector"]]["outs"][d["id"]]["sides"][1]
        side["reply"] = side["reply"][:-1] + bytes([side["reply"][-1] ^ 1])

    def forge_proof(cli_, stores_, ledger_):
        d = _first(ledger_, lambda d: introduced(d, cli_))
        rec = stores_[d["parties"][0]]["ins"][d["id"]]
        proof = rec["introduction"]
        rec["introduction"] = proof[:-1] + bytes([proof[-1] ^ 1])

    def drop_contact(cli_, stores_, ledger_):
        d = _first(ledger_, lambda d: introduced(d, cli_))
        p, q = d["parties"]
        cli_[p]["contacts"] = [c for c in cli_[p]["contacts"] if c["id"] != ids[q]]

    def declined_but_introduced(cli_, stores_, ledger_):
        d = _first(ledger_, lambda d: introduced(d, cli_) and d["policy"][0] == "ask")
        d["answer"][0] = "decline"

    def replayed_event(cli_, stores_, ledger_):
        d = _first(ledger_, lambda d: introduced(d, cli_))
        evs = stores_[d["parties"][0]]["events"]
        evs.append(_first(evs, lambda e: e.get("id") == d["id"]
                          and e["type"] == "inbox.introduced"))

    def leaky_close(cli_, stores_, ledger_):
        for d in ledger_:
            out = stores_[d["connector"]]["outs"].get(d["id"])
            if out and out["state"] == "declined":
                for x in (0, 1):
                    if out["sides"][x]["state"] in ("pending", "accepted"):
                        item = _first(cli_[d["parties"][x]]["inbox"],
                                      lambda i: i["id"] == d["id"])
                        if item and item["state"] == "closed":
                            item["declined_by_other"] = True
                            return
        raise KeyError("no closed item of a declined intro")

    def half_introduced(cli_, stores_, ledger_):
        d = _first(ledger_, lambda d: introduced(d, cli_))
        item = _first(cli_[d["parties"][1]]["inbox"], lambda i: i["id"] == d["id"])
        item["state"], item["other"] = "accepted", None

    def contact_from_nowhere(cli_, stores_, ledger_):
        p = _first(ids, lambda n: len(cli_[n]["contacts"]) > 0)
        fake = dict(cli_[p]["contacts"][0])
        stranger = _first(ids, lambda n: n != p and all(c["id"] != ids[n]
                                                        for c in cli_[p]["contacts"]))
        if stranger is None:  # everyone is a contact already: a duplicate entry then
            cli_[p]["contacts"].append(fake)
            return
        fake["id"], fake["intro"], fake["introduced_by"] = ids[stranger], None, None
        cli_[p]["contacts"].append(fake)

    return [("a connector's stored acceptance with a broken signature", "unwarranted",
             forge_reply),
            ("a party's stored introduction (its proof) with a broken signature",
             "unwarranted", forge_proof),
            ("an introduced party without the other as a contact", "lost", drop_contact),
            ("an intro introduced though the driver declined it", "unwarranted",
             declined_but_introduced),
            ("an introduction logged twice", "duplicated", replayed_event),
            ("a closed item that says the other declined", "distinguishable", leaky_close),
            ("an intro introduced on one side only", "lost", half_introduced),
            ("a contact that no introduction made", None, contact_from_nowhere)]


def self_test(ids, initial, cli, stores, ledger):
    """Plants each fault in a copy of a run's state and checks the checker
    counts it.  Returns (caught, total, [names missed])."""
    import copy
    caught, missed = 0, []
    for name, kind, mutate in mutations(ids, cli, stores, ledger):
        c2, s2, l2 = copy.deepcopy(cli), copy.deepcopy(stores), copy.deepcopy(ledger)
        try:
            mutate(c2, s2, l2)
        except (TypeError, KeyError, AttributeError):
            missed.append(name + " (no case to plant it in)")
            continue
        counts = Checker(ids, initial, c2, s2, l2).run().counts
        hit = counts[kind] > 0 if kind else (counts["unwarranted"] + counts["duplicated"]) > 0
        if hit:
            caught += 1
        else:
            missed.append(name)
    return caught, len(mutations(ids, cli, stores, ledger)), missed
