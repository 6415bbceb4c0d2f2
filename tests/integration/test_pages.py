# SPDX-License-Identifier: MIT
"""Performance behaviour that tests can state without timing anything
(docs/PERFORMANCE.md "Third round"): real twofoldd processes on loopback, in
temporary homes, driven by the real twofold CLI.

- An intro's state changes write only the index keys that change: the
  store's per-table write counters (`status {tables: true}`) show exactly
  the keys an intro needs, on the connector and on each party, and every
  index still answers (paging, the pending cap, expiry).
- intro_sched's 'f', 'b', 's' and 'q' keys carry their record's time
  (schema 10), and a store written before (schema 8, keys without it) is
  rewritten at start to exactly the keys a new store has.
- The intro records sit under time-ordered keys (schema 11): a record's
  state changes rewrite it in place (its id -> order index entry is written
  once), and a store written before is rewritten at start with the same
  records.
- The connector is not slowed by its slowest party: with one party stopped
  (SIGSTOP: its link stays up but it reads and answers nothing) and more
  envelopes queued for it than its link's window takes, intros between the
  other parties keep completing, long before the stopped party's link could
  be declared dead; and once it runs again its intros complete too.
"""
import os
import shutil
import signal
import subprocess
import sys
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from test_intro import IntroTestCase  # noqa: E402


class IndexWrites(IntroTestCase):
    def tables(self, n):
        reply = self.raw_request(n, "status", {"tables": True})
        self.assertIn("result", reply, reply)
        t = reply["result"]["tables"]
        for name in ("intro_sched", "intro_expiry", "intro_pending", "intros_out_seq",
                     "intros_out_ids", "intros_in_seq", "intros_in_ids"):
            self.assertIn(name, t)
            self.assertEqual(set(t[name]), {"writes", "entries", "depth", "branch_pages",
                                            "leaf_pages", "overflow_pages"})
        return {name: v["writes"] for name, v in t.items()}

    def delta(self, before, after):
        return {k: after[k] - before.get(k, 0) for k in after if after[k] != before.get(k, 0)}

    def test_status_tables_argument(self):
        carol = self.node("carol")
        carol.init()
        carol.start()
        reply = self.raw_request(carol, "status", {"tables": "yes"})
        self.assertIn("error", reply)
        self.assertIn("tables", reply["error"]["message"])
        reply = self.raw_request(carol, "status", {})
        self.assertNotIn("tables", reply["result"])
        self.assertIn("events", self.tables(carol))

    def test_an_intro_writes_each_index_key_once(self):
        """One intro, proposed, accepted by both, introduced.  The connector
        writes its three intro_sched keys (newest-first paging, and one per
        party) once, not again at each reply, and its expiry key once and
        its removal; each party writes its keys as its item changes state
        and no key twice.  Every index still does its job afterwards."""
        carol, alice, bob = self.cast()
        self.ids = {n.name: n.text_id() for n in (carol, alice, bob)}
        before = {n.name: self.tables(n) for n in (carol, alice, bob)}
        iid = self.propose(carol, "alice", "bob", "--topic", "pages")
        for n in (alice, bob):
            self.wait_inbox(n, iid, "pending")
            n.cli("accept", iid[:10])
        self.wait_intro(carol, iid, "introduced")
        for n in (alice, bob):
            self.wait_inbox(n, iid, "introduced")
        for n in (carol, alice, bob):
            self.wait_outbox_empty(n)
        d = {n.name: self.delta(before[n.name], self.tables(n)) for n in (carol, alice, bob)}
        # Connector: the record at each of its three changes (asking, a
        # accepted, introduced); 'p' and the two 'q' keys once; the expiry
        # key put while asking and deleted when introduced.
        # introkeys: the record is rewritten where it is (one index entry,
        # put when the intro began).
        self.assertEqual(d["carol"]["intros_out_seq"], 3, d["carol"])
        self.assertEqual(d["carol"]["intros_out_ids"], 1, d["carol"])
        self.assertEqual(d["carol"]["intro_sched"], 3, d["carol"])
        self.assertEqual(d["carol"]["intro_expiry"], 2, d["carol"])
        for p in ("alice", "bob"):
            # Party: received (pending), accepted, introduced.  Its keys:
            # 'r', 'f', 'b' and 'x' when it comes; 'x' -> 'a' when
            # accepted; 'a' and 'b' go when introduced (a contact's
            # introduced item is not counted); the pending key in and out.
            self.assertEqual(d[p]["intros_in_seq"], 3, d[p])
            self.assertEqual(d[p]["intros_in_ids"], 1, d[p])
            self.assertEqual(d[p]["intro_sched"], 8, d[p])
            self.assertEqual(d[p]["intro_pending"], 2, d[p])
            self.assertEqual(d[p]["contacts"], 1, d[p])  # the other party, added
        # The indexes answer: paging lists it, the pending index and the
        # inbox show the next one.
        self.assertEqual([o["id"] for o in carol.json("intros")], [iid])
        before = {n.name: self.tables(n) for n in (carol, alice, bob)}
        iid2 = self.propose(carol, "alice", "bob", "--topic", "pages-2")
        for n in (alice, bob):
            self.wait_inbox(n, iid2, "pending")
        self.assertEqual([it["id"] for it in alice.json("inbox")], [iid2])
        self.assertEqual(sorted(self.inbox(alice)), sorted([iid, iid2]))
        # Introduced again to a contact who already has an introducer and
        # no newer card: the contact record is not rewritten.
        for n in (alice, bob):
            n.cli("accept", iid2[:10])
        self.wait_intro(carol, iid2, "introduced")
        for n in (alice, bob):
            self.wait_inbox(n, iid2, "introduced")
            self.assertEqual(self.contact_entries(n, self.ids["bob" if n is alice else "alice"])[0]
                             ["intro"], iid)  # the first provenance stays
        d = {n.name: self.delta(before[n.name], self.tables(n)) for n in (alice, bob)}
        for p in ("alice", "bob"):
            self.assertNotIn("contacts", d[p], d[p])
            self.assertEqual(d[p]["intro_sched"], 8, d[p])
        self.assertEqual(sorted(o["id"] for o in carol.json("intros")), sorted([iid2, iid]))


def dump_tables(store):
    """{table: [(key, value)]} of an LMDB environment (lmdb-utils' text
    dump: per table a header, then key and value lines in hex with one
    leading space, then DATA=END), and the header lines of each table."""
    out = subprocess.run(["mdb_dump", "-a", store], check=True, capture_output=True,
                         text=True).stdout
    tables, headers = {}, {}
    for section in out.split("DATA=END\n")[:-1]:
        lines = section.splitlines()
        name = next(l.split("=", 1)[1] for l in lines if l.startswith("database="))
        headers[name] = [l for l in lines if not l.startswith(" ")]
        data = [bytes.fromhex(l.strip()) for l in lines if l.startswith(" ")]
        tables[name] = list(zip(data[0::2], data[1::2]))
    return tables, headers


def load_tables(store, tables, headers):
    """Writes tables (as dump_tables returns them) into a new environment at
    store."""
    text = "".join("\n".join(headers[name] + [" " + x.hex() for kv in pairs for x in kv]) +
                   "\nDATA=END\n" for name, pairs in tables.items())
    shutil.rmtree(store)
    os.mkdir(store, 0o700)
    subprocess.run(["mdb_load", "-f", "/dev/stdin", store], input=text, check=True, text=True,
                   capture_output=True)


def intro_tables_before_11(tables, headers):
    """Rewrites the intro records of tables (as dump_tables returns them)
    as schemas before 11 kept them: in intros_out and intros_in under the
    intro id alone, without the id -> order indexes (introkeys)."""
    for name in ("intros_out", "intros_in"):
        seq = tables.pop(name + "_seq")
        del tables[name + "_ids"]
        tables[name] = sorted((k[8:], v) for k, v in seq)
        headers[name] = ["database=" + name if l.startswith("database=") else l
                         for l in headers.pop(name + "_seq")]
        del headers[name + "_ids"]


def intro_ids(tables):
    """{table: sorted intro ids} of the intro records of a schema 11 store,
    checking that each record has exactly one index entry naming its order."""
    ids = {}
    for name in ("intros_out", "intros_in"):
        recs = tables.get(name + "_seq", [])
        index = dict(tables.get(name + "_ids", []))
        if len(index) != len(recs) or any(index.get(k[8:]) != k[:8] for k, _ in recs):
            raise AssertionError("%s: records and index entries differ" % name)
        ids[name] = sorted(k[8:] for k, _ in recs)
    return ids


def old_form(key):
    """An intro_sched key as schema 8 wrote it: 'f', 'b' and 'q' keys of
    records without the u64be time after the pk, 's' keys without it after
    the kind; tombstones' keys (already without) and other kinds as they
    are."""
    kind = key[:1]
    if kind in (b"f", b"b", b"q") and len(key) == 73:
        return key[:33] + key[41:]
    if kind == b"s" and len(key) == 41:
        return key[:1] + key[9:]
    return key


class TimedKeys(IntroTestCase):
    def test_schema_8_store_is_rewritten_to_the_same_keys(self):
        carol, alice, bob = self.cast()
        done = self.propose(carol, "alice", "bob", "--topic", "done")
        for n in (alice, bob):
            self.wait_inbox(n, done, "pending")
            n.cli("accept", done[:10])
        self.wait_intro(carol, done, "introduced")
        half = self.propose(carol, "alice", "bob", "--topic", "half")
        for n in (alice, bob):
            self.wait_inbox(n, half, "pending")
        alice.cli("accept", half[:10])
        self.wait_side(carol, half, "a", "accepted")
        for n in (carol, alice, bob):
            self.wait_outbox_empty(n)
        want, records = {}, {}
        for n in (carol, alice, bob):
            n.stop()
            store = os.path.join(n.home, "store")
            tables, headers = dump_tables(store)
            sched = tables["intro_sched"]
            want[n.name] = sorted(sched)
            timed = [k for k, _ in sched if k[:1] in (b"f", b"b", b"q", b"s")]
            self.assertTrue(timed, n.name)
            self.assertTrue(all(len(k) == (41 if k[:1] == b"s" else 73) for k in timed), timed)
            # Schema 8: the keys without their time, the schema and the
            # meta key that said the indexes were built.
            tables["intro_sched"] = sorted((old_form(k), v) for k, v in sched)
            meta = [(k, v) for k, v in tables["meta"] if k != b"intro-indexes-9"]
            meta = [(k, b"\0\0\0\x08" if k == b"schema" else v) for k, v in meta]
            tables["meta"] = sorted(meta + [(b"intro-indexes-6", b"1")])
            records[n.name] = intro_ids(tables)
            intro_tables_before_11(tables, headers)
            load_tables(store, tables, headers)
            self.assertNotEqual(sorted(dump_tables(store)[0]["intro_sched"]), want[n.name])
        for n in (carol, alice, bob):
            n.start()
        carol.wait_log("indexed 2 intros and 0 inbox items", 20)
        for n in (alice, bob):
            n.wait_log("indexed 0 intros and 2 inbox items", 20)
        # The rest of the half-done intro runs on the rewritten keys.
        bob.cli("accept", half[:10])
        self.wait_intro(carol, half, "introduced")
        for n in (alice, bob):
            self.wait_inbox(n, half, "introduced")
        for n in (carol, alice, bob):
            self.wait_outbox_empty(n)
            n.stop()
            tables, _ = dump_tables(os.path.join(n.home, "store"))
            self.assertEqual(tables["meta"][[k for k, _ in tables["meta"]].index(b"schema")][1],
                             b"\0\0\0\x0c")  # the current schema (12)
            # introkeys: the same intro records, in time order again.
            self.assertEqual(intro_ids(tables), records[n.name], n.name)
            self.assertNotIn("intros_out", tables)
            self.assertNotIn("intros_in", tables)
            got = sorted(tables["intro_sched"])
            # What changed since: the half-done intro's keys, as a new store
            # writes them; everything else exactly as before the downgrade.
            self.assertEqual([kv for kv in got if half.encode() not in kv[0].hex().encode()],
                             [kv for kv in want[n.name]
                              if half.encode() not in kv[0].hex().encode()], n.name)
            self.assertFalse([k for k, _ in got if k[:1] in (b"f", b"b", b"q")
                              and len(k) == 65], n.name)


PARTY_POLICY = "accept when connector trust >= close\n"
WINDOW = 4        # the connector's max_in_flight: envelopes on a link without an ACK
STUCK = 3 * WINDOW  # intros with the stopped party: most wait off the wire
FREE = 12         # intros between the running parties, made while it is stopped
BOUND = 45.0      # seconds for FREE intros; the stopped party's link lives 300 s


class SlowParty(IntroTestCase):
    def cast_auto(self):
        """Carol (connector) with parties p0, p1, p2 whose policy accepts
        what Carol (a close contact) proposes."""
        carol = self.node("carol", port=True)
        carol.init()
        carol.write_config(retry_max_ms=2000, max_in_flight=WINDOW, dead_link_ms=300000)
        carol.start()
        parties = []
        for name in ("p0", "p1", "p2"):
            n = self.node(name, port=True)
            n.init()
            n.write_config(retry_max_ms=2000, dead_link_ms=300000)
            with open(os.path.join(n.home, "policy"), "w") as f:
                f.write(PARTY_POLICY)
            n.start()
            parties.append(n)
        for n in parties:
            carol.cli("contact", "add", n.card(), "--alias", n.name)
            n.cli("contact", "add", carol.card(), "--alias", "carol", "--trust", "close")
        return carol, parties

    def introduced(self, carol, ids):
        states = {o["id"]: o["state"] for o in carol.json("intros", "--limit", "500")}
        return [i for i in ids if states.get(i) == "introduced"]

    def test_a_stopped_party_does_not_hold_up_the_others(self):
        carol, (p0, p1, p2) = self.cast_auto()
        # Every link up first: one intro per pair.
        warm = [self.propose(carol, a, b, "--topic", "warm-%s-%s" % (a, b))
                for a, b in (("p0", "p1"), ("p0", "p2"), ("p1", "p2"))]
        wait_for_all = time.monotonic() + 60
        while len(self.introduced(carol, warm)) < len(warm):
            self.assertLess(time.monotonic(), wait_for_all, "the warm-up intros did not complete")
            self.assert_alive()
            time.sleep(0.1)

        p2.proc.send_signal(signal.SIGSTOP)
        try:
            stuck = [self.propose(carol, "p0" if k % 2 else "p1", "p2", "--topic", "stuck-%d" % k)
                     for k in range(STUCK)]
            t0 = time.monotonic()
            free = [self.propose(carol, "p0", "p1", "--topic", "free-%d" % k)
                    for k in range(FREE)]
            while len(self.introduced(carol, free)) < FREE:
                self.assertLess(time.monotonic() - t0, BOUND,
                                "intros between p0 and p1 waited for the stopped p2: %d of %d "
                                "introduced" % (len(self.introduced(carol, free)), FREE))
                self.assert_alive()
                time.sleep(0.1)
            for n in (p0, p1):
                self.assertEqual(sorted(i for i in free if self.inbox(n).get(i, {}).get("state")
                                        == "introduced"), sorted(free))
            # Nothing of p2's moved meanwhile: its side of each stuck intro
            # is still pending at the connector.
            self.assertEqual(self.introduced(carol, stuck), [])
            queued = [e for e in carol.json("outbox") if e["to"] == p2.text_id()]
            self.assertGreater(len(queued), WINDOW)
        finally:
            p2.proc.send_signal(signal.SIGCONT)
        # Running again, p2 takes what waited for it, and its intros finish.
        deadline = time.monotonic() + 90
        while len(self.introduced(carol, stuck)) < STUCK:
            self.assertLess(time.monotonic(), deadline, "p2's intros did not complete: %d of %d" % (
                len(self.introduced(carol, stuck)), STUCK))
            self.assert_alive()
            time.sleep(0.2)


if __name__ == "__main__":
    unittest.main()
