# SPDX-License-Identifier: MIT
"""Performance behaviour that tests can state without timing anything
(docs/PERFORMANCE.md "Third round"): real twofoldd processes on loopback, in
temporary homes, driven by the real twofold CLI.

- An intro's state changes write only the index keys that change: the
  store's per-table write counters (`status {tables: true}`) show exactly
  the keys an intro needs, on the connector and on each party, and every
  index still answers (paging, the pending cap, expiry).
"""
import os
import sys
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from test_intro import IntroTestCase  # noqa: E402


class IndexWrites(IntroTestCase):
    def tables(self, n):
        reply = self.raw_request(n, "status", {"tables": True})
        self.assertIn("result", reply, reply)
        t = reply["result"]["tables"]
        for name in ("intro_sched", "intro_expiry", "intro_pending", "intros_out", "intros_in"):
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
        self.assertEqual(d["carol"]["intros_out"], 3, d["carol"])
        self.assertEqual(d["carol"]["intro_sched"], 3, d["carol"])
        self.assertEqual(d["carol"]["intro_expiry"], 2, d["carol"])
        for p in ("alice", "bob"):
            # Party: received (pending), accepted, introduced.  Its keys:
            # 'r', 'f', 'b' and 'x' when it comes; 'x' -> 'a' when
            # accepted; 'a' and 'b' go when introduced (a contact's
            # introduced item is not counted); the pending key in and out.
            self.assertEqual(d[p]["intros_in"], 3, d[p])
            self.assertEqual(d[p]["intro_sched"], 8, d[p])
            self.assertEqual(d[p]["intro_pending"], 2, d[p])
        # The indexes answer: the pair is free again for the same topic
        # (intro_pairs names a finished intro), paging lists it.
        self.assertEqual([o["id"] for o in carol.json("intros")], [iid])
        iid2 = self.propose(carol, "alice", "bob", "--topic", "pages-2")
        for n in (alice, bob):
            self.wait_inbox(n, iid2, "pending")
        self.assertEqual([it["id"] for it in alice.json("inbox")], [iid2])
        self.assertEqual(sorted(self.inbox(alice)), sorted([iid, iid2]))


if __name__ == "__main__":
    unittest.main()
