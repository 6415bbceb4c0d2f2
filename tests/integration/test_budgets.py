# SPDX-License-Identifier: MIT
"""Bounded intro state (issue 12, item 1; docs/CONTROL.md "Settings"): what
strangers and connectors can make a party's node keep, and how it is
collected, against real nodes.

tf-flood (tests/integration/tf_flood.c) plays many stranger identities, each
over its own real Noise link, proposing intros to the victim.  The store is
read with lmdb-utils' mdb_stat and mdb_dump while the node runs (LMDB allows
concurrent readers).

Budgets under test, with their defaults: max_pending_per_connector (100),
max_intros_per_connector (200: inbox items and tombstones one connector
caused, any state), max_stranger_intros (1000: the same for every
non-contact together), retention_s (30 days: finished items are collected
after it).
"""
import os
import re
import shutil
import subprocess
import sys
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import NodeTestCase, flood, wait_for, watch_events  # noqa: E402
from test_intro import IntroTestCase  # noqa: E402

WAIT = 20.0
# What one kept proposal may cost the store at most: the record (the signed
# proposal with the connector's card, about 1 KiB), its index keys, its
# event, and LMDB's page overhead.  A budget of N records is at most N times
# this (measured: about 2 KiB each, see the test output).
BYTES_PER_RECORD = 4096
# A queued envelope: padded to the 4096-byte class (docs/PROTOCOL.md §7), a
# 4,206-byte envelope whose outbox record takes two 4 KiB LMDB overflow pages,
# plus its due-index key.
BYTES_PER_QUEUED_ENVELOPE = 2 * 4096 + 256


def table_entries(home):
    """{table: entries} for every table of home's store (mdb_stat -a)."""
    out = subprocess.run(["mdb_stat", "-a", os.path.join(home, "store")], check=True,
                         capture_output=True, text=True).stdout
    counts, name = {}, None
    for line in out.splitlines():
        m = re.match(r"Status of (\S+)", line)
        if m:
            name = m.group(1)
        m = re.match(r"\s+Entries: (\d+)", line)
        if m and name is not None:
            counts[name] = int(m.group(1))
    return counts


def sched_kinds(home):
    """{kind character: count} of intro_sched's keys (node/intro.c)."""
    out = subprocess.run(["mdb_dump", "-s", "intro_sched", os.path.join(home, "store")],
                         check=True, capture_output=True, text=True).stdout
    data = [line.strip() for line in out.splitlines() if line.startswith(" ")]
    kinds = {}
    for key in data[0::2]:
        k = chr(int(key[:2], 16))
        kinds[k] = kinds.get(k, 0) + 1
    return kinds


def parse_flood(r):
    m = re.match(r"ok=(\d+) refused=(\d+) other=(\d+) noack=(\d+)", r.stdout)
    if m is None:
        raise AssertionError("tf-flood said %r (stderr %r)" % (r.stdout, r.stderr))
    return tuple(int(x) for x in m.groups())


@unittest.skipIf(shutil.which("mdb_stat") is None or shutil.which("mdb_dump") is None,
                 "needs lmdb-utils")
class Budgets(NodeTestCase):
    def victim(self, policy=None, **config):
        """Alice (the victim) and Carol (her contact, a connector) and Bob
        (Carol's other contact), running."""
        nodes = {}
        for name in ("alice", "carol", "bob"):
            n = self.node(name, port=True)
            n.init()
            n.write_config(retry_max_ms=2000, **(config if name == "alice" else {}))
            if name == "alice" and policy is not None:
                with open(os.path.join(n.home, "policy"), "w") as f:
                    f.write(policy)
            n.start()
            nodes[name] = n
        alice, carol, bob = nodes["alice"], nodes["carol"], nodes["bob"]
        carol.cli("contact", "add", alice.card(), "--alias", "alice")
        carol.cli("contact", "add", bob.card(), "--alias", "bob")
        alice.cli("contact", "add", carol.card(), "--alias", "carol")
        bob.cli("contact", "add", carol.card(), "--alias", "carol")
        return alice, carol, bob

    def contact_still_served(self, alice, carol, state="pending"):
        """A contact's proposal still gets in after the flood."""
        iid = carol.json("propose", "alice", "bob", "--topic", "after-the-flood")["id"]
        wait_for("Carol's proposal in Alice's inbox",
                 lambda: any(i["id"] == iid and i["state"] == state
                             for i in alice.json("inbox", "--all", "--limit", "5")), WAIT)
        return iid

    def test_many_strangers_without_a_policy(self):
        alice, carol, bob = self.victim()
        before = alice.json("status")["store_bytes"]
        t0 = time.monotonic()
        r = flood("proposals", "--target", alice.listen, "--victim", alice.home,
                  "--identities", 50, "--per", 200)
        took = time.monotonic() - t0
        ok, refused, other, noack = parse_flood(r)
        print("\n50 x 200 stranger proposals, no policy: ok=%d refused=%d in %.1f s"
              % (ok, refused, took))
        # Each stranger may have 100 pending (max_pending_per_connector), all
        # strangers together 1000 records (max_stranger_intros).
        self.assertEqual((ok, refused, other, noack), (1000, 9000, 0, 0), r.stderr)
        t = table_entries(alice.home)
        self.assertEqual(t["intros_in_seq"], 1000)
        self.assertEqual(sched_kinds(alice.home).get("s"), 1000)
        self.assertLessEqual(t["cards"], 10)  # the ten strangers that got in
        grown = alice.json("status")["store_bytes"] - before
        print("store grew by %d bytes (%.0f per record)" % (grown, grown / 1000))
        self.assertLessEqual(grown, 1000 * BYTES_PER_RECORD)
        # The listing pages instead of returning everything.
        self.assertEqual(len(alice.json("inbox")), 50)
        # A contact has a budget of its own.
        self.contact_still_served(alice, carol)
        self.assertEqual(table_entries(alice.home)["intros_in_seq"], 1001)

    def introduce(self, alice, carol, bob, topics):
        """Carol introduces Alice (who accepts by policy) and Bob (who
        accepts by hand), once per topic, each waited for."""
        for topic in topics:
            iid = carol.json("propose", "alice", "bob", "--topic", topic)["id"]
            wait_for("Bob's item on " + topic,
                     lambda: any(x["id"] == iid for x in bob.json("inbox")), WAIT)
            bob.cli("accept", iid)
            wait_for("the intro on %s introduced at Alice" % topic,
                     lambda: any(x["id"] == iid and x["state"] == "introduced"
                                 for x in alice.json("inbox", "--all", "--limit", "10")), WAIT)

    def test_introduced_items_do_not_use_up_the_connectors_budget(self):
        # Alice keeps at most 3 records per connector, and accepts Carol's
        # intros by policy (Bob by hand).  Introduced items are the owner's
        # own consent, kept for good: a fourth and fifth intro from Carol
        # still get in once the first three are introduced.
        alice, carol, bob = self.victim("accept when connector is known\n",
                                        max_intros_per_connector=3)
        self.introduce(alice, carol, bob, ["t%d" % i for i in range(5)])
        # Open records still count: three pending (the policy now asks)
        # fill the budget, and a fourth is refused.
        with open(os.path.join(alice.home, "policy"), "w") as f:
            f.write("ask\n")
        alice.cli("policy", "reload")
        pend = [carol.json("propose", "alice", "bob", "--topic", "p%d" % i)["id"]
                for i in range(4)]
        wait_for("three pending at Alice",
                 lambda: sum(1 for x in alice.json("inbox") if x["id"] in pend) == 3, WAIT)
        wait_for("the fourth refused",
                 lambda: "max_intros_per_connector reached" in alice.log(), WAIT)

    def test_a_strangers_introduced_items_still_count(self):
        # Carol is a stranger to Alice, whose policy accepts anyone: each
        # introduction would add a contact, so a stranger's introduced items
        # stay in its budget (3 here) and the fourth proposal is refused.
        alice, carol, bob = self.victim("accept\n", max_intros_per_connector=3)
        alice.cli("contact", "rm", "carol")
        self.introduce(alice, carol, bob, ["s%d" % i for i in range(3)])
        carol.json("propose", "alice", "bob", "--topic", "s3")
        wait_for("the fourth refused",
                 lambda: "max_intros_per_connector reached" in alice.log(), WAIT)

    def test_many_strangers_declined_by_policy(self):
        alice, carol, bob = self.victim("decline when connector is unknown\nask\n")
        before = alice.json("status")["store_bytes"]
        r = flood("proposals", "--target", alice.listen, "--victim", alice.home,
                  "--identities", 50, "--per", 200)
        ok, refused, other, noack = parse_flood(r)
        print("\n50 x 200 stranger proposals, declined by policy: ok=%d refused=%d"
              % (ok, refused))
        # Each stranger may cause 200 records (max_intros_per_connector): a
        # tombstone is one.  Tombstones are finished records, which never
        # refuse a proposal (R58): strangers together keep at most 1000 of
        # them (max_stranger_intros), the oldest collected early, so every
        # proposal is answered.
        self.assertEqual((ok, refused, other, noack), (10000, 0, 0, 0), r.stderr)
        t = table_entries(alice.home)
        kinds = sched_kinds(alice.home)
        # Nothing but tombstones: no inbox item, no stranger's card.
        self.assertEqual(t.get("intros_in_seq", 0), 0)
        self.assertEqual(t.get("cards", 0), 0)
        self.assertEqual((kinds.get("T"), kinds.get("z"), kinds.get("t"), kinds.get("s")),
                         (1000, 1000, 1000, None))
        self.assertLessEqual(kinds.get("b"), 1000)
        grown = alice.json("status")["store_bytes"] - before
        print("store grew by %d bytes (%.0f per tombstone and its queued decline)"
              % (grown, grown / 1000))
        # Each tombstone's decline waits in the outbox (at most a day), at
        # most outbox_max_strangers (2000) of them.
        self.assertLessEqual(grown, 1000 * BYTES_PER_RECORD + 2000 * BYTES_PER_QUEUED_ENVELOPE)
        # The declines are not kept for a year: with the strangers gone and
        # their cards not kept, nothing is left to deliver.
        wait_for("Alice's outbox to empty", lambda: alice.json("outbox") == [], 60, 0.5)
        self.contact_still_served(alice, carol)

    def test_finished_items_are_collected_after_the_retention(self):
        alice, carol, bob = self.victim(retention_s=2)
        for n in (carol, bob):
            n.stop()
            n.write_config(retry_max_ms=2000, retention_s=2)
            n.start()
        # Strangers' proposals that expire unanswered, and Carol's intro
        # that expires too.
        r = flood("proposals", "--target", alice.listen, "--victim", alice.home,
                  "--identities", 3, "--per", 5, "--expires-s", 3)
        self.assertEqual(parse_flood(r), (15, 0, 0, 0), r.stderr)
        iid = carol.json("propose", "alice", "bob", "--topic", "short", "--expires", "3s")["id"]
        # And one that Bob declines: Carol's intro ends declined, Alice's
        # item closed, Bob's declined.
        jid = carol.json("propose", "alice", "bob", "--topic", "no", "--expires", "4s")["id"]
        wait_for("Bob's item", lambda: any(i["id"] == jid for i in bob.json("inbox")), WAIT)
        bob.cli("decline", jid)
        wait_for("Alice to hold 17 items", lambda: table_entries(alice.home)["intros_in_seq"] == 17,
                 WAIT)
        self.assertEqual(table_entries(alice.home)["cards"], 4)  # 3 strangers and Carol
        wait_for("Alice's items to expire",
                 lambda: {i["state"] for i in alice.json("inbox", "--all", "--limit", "100")}
                 <= {"expired", "closed"}, WAIT)
        # Expired at 3 s, collected 2 s after (retention_s = 2).
        wait_for("Alice's items to be collected",
                 lambda: table_entries(alice.home).get("intros_in_seq", 0) == 0, WAIT, 0.2)
        self.assertEqual(alice.json("inbox", "--all"), [])
        self.assertEqual(table_entries(alice.home).get("cards", 0), 0)
        kinds = sched_kinds(alice.home)
        self.assertEqual({k: v for k, v in kinds.items() if k in "xaifsr"}, {}, kinds)
        wait_for("Bob's declined item to be collected",
                 lambda: table_entries(bob.home).get("intros_in_seq", 0) == 0, WAIT, 0.2)
        # Carol's expired and declined intros are collected too, with every
        # key of them.
        wait_for("Carol's intros to be collected",
                 lambda: table_entries(carol.home).get("intros_out_seq", 0) == 0, WAIT, 0.2)
        self.assertEqual(carol.json("intros"), [])
        self.assertEqual(sched_kinds(carol.home), {})
        self.assertEqual(table_entries(carol.home).get("intro_expiry", 0), 0)
        for i in (iid, jid):
            self.assertNotIn(i, carol.cli("--json", "intros").stdout)
        # The budget is free again: the same strangers may propose anew.
        r = flood("proposals", "--target", alice.listen, "--victim", alice.home,
                  "--identities", 3, "--per", 5)
        self.assertEqual(parse_flood(r), (15, 0, 0, 0), r.stderr)

    def test_tombstones_are_collected_after_the_retention(self):
        alice, carol, bob = self.victim("decline when connector is unknown\nask\n",
                                        retention_s=2, max_stranger_intros=10)
        r = flood("proposals", "--target", alice.listen, "--victim", alice.home,
                  "--identities", 2, "--per", 10)
        # Tombstones do not refuse (R58): the oldest ten are collected early.
        self.assertEqual(parse_flood(r), (20, 0, 0, 0), r.stderr)
        self.assertEqual(sched_kinds(alice.home).get("T"), 10)
        wait_for("the tombstones to be collected",
                 lambda: "T" not in sched_kinds(alice.home), WAIT, 0.2)
        self.assertEqual(sched_kinds(alice.home), {})
        r = flood("proposals", "--target", alice.listen, "--victim", alice.home,
                  "--identities", 1, "--per", 10)
        self.assertEqual(parse_flood(r), (10, 0, 0, 0), r.stderr)

    def test_finished_stranger_records_never_lock_strangers_out(self):
        """R58: open proposals from strangers fill max_stranger_intros and
        then refuse; finished ones (declined by hand here) do not count: at
        most max_stranger_intros of them are kept, the oldest collected
        early, and strangers get in again."""
        alice, carol, bob = self.victim("ask\n", max_stranger_intros=3)

        def stranger_proposes():
            return parse_flood(flood("proposals", "--target", alice.listen, "--victim",
                                     alice.home, "--identities", 1, "--per", 1))

        def pending():
            return [x["id"] for x in alice.json("inbox", "--limit", "100")]

        for _ in range(3):
            self.assertEqual(stranger_proposes(), (1, 0, 0, 0))
        self.assertEqual(stranger_proposes(), (0, 1, 0, 0))  # three open: full
        first = pending()
        self.assertEqual(len(first), 3)
        for iid in first:
            alice.cli("decline", iid)
        self.assertEqual({k: v for k, v in sched_kinds(alice.home).items() if k in "sz"},
                         {"z": 3})
        # Three finished records do not refuse a fourth stranger; a fourth
        # finished one takes the place of the oldest.
        for _ in range(3):
            self.assertEqual(stranger_proposes(), (1, 0, 0, 0))
        second = pending()
        self.assertEqual(len(second), 3)
        time.sleep(1.1)  # times are in seconds: the second three end later
        for iid in second:
            alice.cli("decline", iid)
        kinds = sched_kinds(alice.home)
        self.assertEqual((kinds.get("s"), kinds.get("z")), (None, 3))
        kept = [x["id"] for x in alice.json("inbox", "--all", "--limit", "100")]
        self.assertEqual(sorted(kept), sorted(second))
        alice.wait_log("collected early", WAIT)
        # Open records still hold the budget.
        for _ in range(3):
            self.assertEqual(stranger_proposes(), (1, 0, 0, 0))
        self.assertEqual(stranger_proposes(), (0, 1, 0, 0))
        # A restart keeps every count.
        alice.stop()
        alice.start()
        self.assertEqual(stranger_proposes(), (0, 1, 0, 0))
        kinds = sched_kinds(alice.home)
        self.assertEqual((kinds.get("s"), kinds.get("z")), (3, 3))
        self.contact_still_served(alice, carol)

    def test_a_store_from_before_r58_is_reindexed(self):
        """Before R58 a finished record a stranger caused had an 's' key (and
        counted against max_stranger_intros).  A node started on such a store
        gives it its 'z' key instead, once, and strangers get in again."""
        import lmdb  # python3-lmdb (./dev installs it)
        alice, carol, bob = self.victim("decline when connector is unknown\nask\n",
                                        max_stranger_intros=2)
        r = flood("proposals", "--target", alice.listen, "--victim", alice.home,
                  "--identities", 2, "--per", 1)
        self.assertEqual(parse_flood(r), (2, 0, 0, 0), r.stderr)
        self.assertEqual(sched_kinds(alice.home).get("z"), 2)
        alice.stop()
        # Make the store as the code before R58 left it: the tombstones'
        # 's' || id keys, no 'z' keys, and the indexes not yet rebuilt.
        env = lmdb.open(os.path.join(alice.home, "store"), max_dbs=64, subdir=True)
        sched, meta = env.open_db(b"intro_sched"), env.open_db(b"meta")
        with env.begin(write=True) as txn:
            zs = [k for k, _ in txn.cursor(db=sched) if k[:1] == b"z"]
            self.assertEqual(len(zs), 2)
            for k in zs:
                txn.delete(k, db=sched)
                txn.put(b"s" + k[9:], b"", db=sched)
            txn.delete(b"intro-indexes-9", db=meta)  # a store before R58 lacks it
        env.close()
        self.assertEqual((sched_kinds(alice.home).get("s"), sched_kinds(alice.home).get("z")),
                         (2, None))
        alice.start()
        # With policy "ask" a stranger's proposal is open: it gets in.
        with open(os.path.join(alice.home, "policy"), "w") as f:
            f.write("ask\n")
        alice.cli("policy", "reload")
        r = flood("proposals", "--target", alice.listen, "--victim", alice.home,
                  "--identities", 1, "--per", 1)
        self.assertEqual(parse_flood(r), (1, 0, 0, 0), r.stderr)
        kinds = sched_kinds(alice.home)
        self.assertEqual((kinds.get("s"), kinds.get("z"), kinds.get("T")), (1, 2, 2))

    def test_proposal_open_too_long_is_refused(self):
        alice, carol, bob = self.victim()
        # The protocol's maximum is 365 days.
        r = flood("proposals", "--target", alice.listen, "--victim", alice.home,
                  "--identities", 1, "--per", 1, "--expires-s", 366 * 86400)
        self.assertEqual(parse_flood(r), (0, 0, 1, 0), r.stderr)  # INVALID
        alice.wait_log("would stay open longer than 365 days", WAIT)
        self.assertEqual(table_entries(alice.home).get("intros_in_seq", 0), 0)
        # Only a tombstone is kept (its 'f', 'b', 's' and 't' index keys
        # too), so that the connector's close is acknowledged after a
        # restart; it counts against the connector's budget ('b').
        self.assertEqual(sched_kinds(alice.home), {"T": 1, "b": 1, "f": 1, "z": 1, "t": 1})
        r = flood("proposals", "--target", alice.listen, "--victim", alice.home,
                  "--identities", 1, "--per", 1, "--expires-s", 365 * 86400)
        self.assertEqual(parse_flood(r), (1, 0, 0, 0), r.stderr)


    def test_refusals_kept_within_the_tombstone_budgets(self):
        """A refused proposal that verified leaves a tombstone (R36), but no
        more of them than the budgets allow: a stranger's takes the place of
        the oldest finished record strangers caused past max_stranger_intros
        (R58); past max_intros_per_connector the refusal is remembered in
        memory only (R35)."""
        alice, carol, bob = self.victim(max_stranger_intros=5, max_intros_per_connector=3)
        r = flood("proposals", "--target", alice.listen, "--victim", alice.home,
                  "--identities", 2, "--per", 10, "--expires-s", 366 * 86400)
        self.assertEqual(parse_flood(r), (0, 0, 20, 0), r.stderr)  # all INVALID
        # Each identity keeps at most 3 (its own budget), and the strangers
        # together 5: a refusal past 5 takes the place of the oldest.  Every
        # refusal is kept, collected early or remembered in memory only.
        kinds = sched_kinds(alice.home)
        self.assertEqual((kinds.get("T"), kinds.get("z")), (5, 5))
        in_memory = alice.log().count("kept in memory only: its budget is full")
        early = alice.log().count("collected early")
        self.assertGreaterEqual(early, 1)
        self.assertGreaterEqual(in_memory, 20 - 2 * 3 - early)
        self.assertEqual(5 + early + in_memory, 20)
        self.assertEqual(table_entries(alice.home).get("intros_in_seq", 0), 0)
        # A contact's budget is its own.
        self.contact_still_served(alice, carol)


class RemoveAndPage(IntroTestCase):
    def pages(self, n, *verb, limit):
        """Every item of a listing, page by page: (pages, ids)."""
        pages, ids, before = 0, [], []
        while pages < 20:
            page = n.json(*verb, "--limit", limit, *before)
            if not page:
                break
            self.assertLessEqual(len(page), limit)
            pages += 1
            ids += [i["id"] for i in page]
            before = ["--before", page[-1]["id"]]
        return pages, ids

    def test_pages_cover_everything_once_newest_first(self):
        carol, alice, bob = self.cast()
        iids = [carol.json("propose", "alice", "bob", "--topic", "t%d" % i)["id"]
                for i in range(5)]
        full = carol.json("intros", "--limit", 1000)
        self.assertEqual(sorted(i["id"] for i in full), sorted(iids))
        self.assertEqual([i["created"] for i in full],
                         sorted((i["created"] for i in full), reverse=True))
        pages, ids = self.pages(carol, "intros", limit=2)
        self.assertEqual((pages, ids), (3, [i["id"] for i in full]))
        wait_for("Alice's inbox", lambda: len(alice.json("inbox")) == 5, WAIT)
        pages, ids = self.pages(alice, "inbox", "--all", limit=2)
        self.assertEqual((pages, sorted(ids)), (3, sorted(iids)))
        for bad in ("0", "1001", "x"):
            r = carol.cli("intros", "--limit", bad, check=False)
            self.assertEqual(r.returncode, 2, r.stderr)

    def test_rm(self):
        carol, alice, bob = self.cast()
        carol.stop()
        carol.write_config(retry_max_ms=2000, close_delay_min_s=3, close_delay_max_s=3)
        carol.start()
        iid = carol.json("propose", "alice", "bob", "--topic", "rm")["id"]
        wait_for("both inboxes", lambda: all(
            any(i["id"] == iid for i in n.json("inbox")) for n in (alice, bob)), WAIT)
        self.refused(carol, "intros", "rm", iid, name="E_BAD_STATE",
                     text="still asking; withdraw it first")
        self.refused(alice, "inbox", "rm", iid, name="E_BAD_STATE", text="waits for your answer")
        alice.cli("accept", iid)
        self.refused(alice, "inbox", "rm", iid, name="E_BAD_STATE",
                     text="its introduction may still come")
        carol.cli("withdraw", iid)
        # Its closes wait 3 s (close_delay_min_s): not removable before.
        self.refused(carol, "intros", "rm", iid, name="E_BAD_STATE",
                     text="closes have not been sent yet")
        wait_for("Bob's item to close",
                 lambda: [i for i in bob.json("inbox", "--all") if i["state"] == "closed"], WAIT)
        self.assertIn("removed intro", carol.cli("intros", "rm", iid[:12]).stdout)
        self.assertEqual(carol.json("intros"), [])
        events, done, _ = watch_events(
            carol, lambda evs: any(e["type"] == "intro.removed" for e in evs), 10)
        self.assertTrue(done, events)
        bob.cli("inbox", "rm", iid)
        self.assertEqual(bob.json("inbox", "--all"), [])
        self.refused(bob, "inbox", "rm", iid, name="E_NOT_FOUND", text="no intro")
        # Alice's accepted item closed too; now it can go.
        wait_for("Alice's item to close",
                 lambda: [i for i in alice.json("inbox", "--all") if i["state"] == "closed"], WAIT)
        alice.cli("inbox", "rm", iid)
        self.assertEqual(alice.json("inbox", "--all"), [])


if __name__ == "__main__":
    unittest.main()
