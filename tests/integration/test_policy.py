# SPDX-License-Identifier: MIT
"""Integration tests for the owner's policy: real nodes answer proposals by
themselves, name the rule that decided, count limits durably, drop blocked
connectors, and keep the old rules when a new file is broken."""
import json
import os
import signal
import socket
import struct
import sys
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import NodeTestCase, free_port, wait_for  # noqa: E402

LAWYER = """# the real-estate lawyer of docs/POLICY.md
decline when connector is unknown
accept  when connector trust >= known and topic is real-estate-law
ask
"""


class Policy(NodeTestCase):
    def start(self, name, policy=None, **config):
        n = self.node(name, port=True)
        n.init()
        n.write_config(retry_max_ms=2000, **config)
        if policy is not None:
            with open(os.path.join(n.home, "policy"), "w") as f:
                f.write(policy)
        n.start()
        return n

    def knows(self, a, b, alias, *extra):
        a.cli("contact", "add", b.card(), "--alias", alias, *extra)

    def propose(self, connector, a, b, topic):
        return connector.json("propose", a, b, "--topic", topic)["id"]

    def item(self, n, iid):
        def find():
            for i in n.json("inbox", "--all"):
                if i["id"] == iid:
                    return i
            return None
        return find()

    def wait_item(self, n, iid, state):
        return wait_for("%s: intro %s %s" % (n.name, iid[:8], state),
                        lambda: (lambda i: i if i and i["state"] == state else None)(
                            self.item(n, iid)), 20)

    def ctl(self, n, verb, args=None):
        """One raw control request (for verbs the test checks below the CLI)."""
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.settimeout(20)
        s.connect(n.socket_path())
        import msgpack  # Debian's python3-msgpack
        body = msgpack.packb({"id": 1, "verb": verb, "args": args or {}})
        s.sendall(struct.pack(">I", len(body)) + body)
        head = s.recv(4, socket.MSG_WAITALL)
        (size,) = struct.unpack(">I", head)
        data = b""
        while len(data) < size:
            data += s.recv(size - len(data))
        s.close()
        return msgpack.unpackb(data, raw=False)

    def test_lawyer_accepts_known_declines_strangers(self):
        carol = self.start("carol")
        alice = self.start("alice", LAWYER)
        bob = self.start("bob")
        eve = self.start("eve")
        dave = self.start("dave")
        self.knows(carol, alice, "alice")
        self.knows(carol, bob, "bob")
        self.knows(carol, dave, "dave")
        self.knows(alice, carol, "carol")  # trust known (the default)
        self.knows(bob, carol, "carol")
        self.knows(eve, alice, "alice")
        self.knows(eve, bob, "bob")
        # A known connector on her topic: accepted at once, by rule 3.
        iid = self.propose(carol, "alice", "bob", "real-estate-law")
        item = self.wait_item(alice, iid, "accepted")
        self.assertEqual(item["decided_by"], "policy:3")
        self.wait_item(bob, iid, "pending")
        bob.cli("accept", iid)
        # The intro materialises without Alice touching anything.
        self.wait_item(alice, iid, "introduced")
        wait_for("carol: introduced",
                 lambda: carol.json("show", iid)["state"] == "introduced", 20)
        # A stranger's proposal: declined at once by rule 2.  The reply does
        # not name the rule (the owner has not opted in), and Alice keeps no
        # inbox item for it, only a tombstone (the log says which rule).
        iid2 = self.propose(eve, "alice", "bob", "real-estate-law")
        intro = wait_for("eve: declined",
                         lambda: (lambda o: o if o["state"] == "declined" else None)(
                             eve.json("show", iid2)), 20)
        self.assertEqual((intro["a"]["state"], intro["a"]["reason"]), ("declined", None))
        alice.wait_log("proposal %s from stranger" % iid2[:16], 20)
        self.assertIn("declined by policy:2; not kept", alice.log())
        self.assertIsNone(self.item(alice, iid2))
        # Another topic from Carol: put to Alice (rule 4, ask).
        iid3 = self.propose(carol, "alice", "dave", "tax-law")
        item = self.wait_item(alice, iid3, "pending")
        self.assertIsNone(item["decided_by"])

    def test_decline_names_the_rule_only_when_the_owner_opts_in(self):
        """docs/POLICY.md: a policy decline tells the connector nothing about
        the rule unless policy_decline_reason = 1."""
        for reveal, want in ((0, None), (1, "declined by policy rule 1")):
            carol = self.start("carol%d" % reveal)
            alice = self.start("alice%d" % reveal, "decline when topic is spam\nask\n",
                               policy_decline_reason=reveal)
            bob = self.start("bob%d" % reveal)
            self.knows(carol, alice, "alice")
            self.knows(carol, bob, "bob")
            self.knows(alice, carol, "carol")  # a contact: the item is kept
            iid = self.propose(carol, "alice", "bob", "spam")
            item = self.wait_item(alice, iid, "declined")
            self.assertEqual(item["decided_by"], "policy:1")
            intro = wait_for("carol: declined",
                             lambda: (lambda o: o if o["state"] == "declined" else None)(
                                 carol.json("show", iid)), 20)
            self.assertEqual(intro["a"]["reason"], want)

    def test_policy_test_has_no_side_effects(self):
        alice = self.start("alice", "accept when connector is known limit 1 per 1d\nask\n")
        carol = self.start("carol")
        self.knows(alice, carol, "carol")
        for _ in range(3):  # testing never uses up the limit
            r = self.ctl(alice, "policy.test", {"connector": "carol", "topic": "x"})
            self.assertTrue(r["ok"], r)
            self.assertEqual((r["result"]["action"], r["result"]["rule"]),
                             ("accept", "policy:1"))
        r = self.ctl(alice, "policy.test", {"connector": "unknown", "topic": "x"})
        self.assertEqual((r["result"]["action"], r["result"]["rule"]), ("ask", "policy:2"))

    def test_limit_lets_two_through_then_asks_and_survives_restart(self):
        alice = self.start("alice", "accept when connector is known limit 2 per 1d\nask\n")
        carol = self.start("carol")
        bob = self.start("bob")
        dave = self.start("dave")
        frank = self.start("frank")
        for other, alias in ((bob, "bob"), (dave, "dave"), (frank, "frank"), (alice, "alice")):
            self.knows(carol, other, alias)
        self.knows(alice, carol, "carol")
        first = self.propose(carol, "alice", "bob", "t1")
        self.wait_item(alice, first, "accepted")
        second = self.propose(carol, "alice", "dave", "t2")
        self.wait_item(alice, second, "accepted")
        # The counters are durable: a restart does not reset them.
        self.assertEqual(alice.stop(), 0)
        alice.start()
        third = self.propose(carol, "frank", "alice", "t3")
        item = self.wait_item(alice, third, "pending")
        self.assertIsNone(item["decided_by"])

    def test_quota_counts_each_connector_apart(self):
        alice = self.start("alice",
                           "accept when connector is known limit 1 per 1w each connector\nask\n")
        carol = self.start("carol")
        dave = self.start("dave")
        bob = self.start("bob")
        frank = self.start("frank")
        for c in (carol, dave):
            self.knows(c, alice, "alice")
            self.knows(c, bob, "bob")
            self.knows(alice, c, c.name)
        self.knows(carol, frank, "frank")
        a1 = self.propose(carol, "alice", "bob", "t1")
        self.wait_item(alice, a1, "accepted")
        a2 = self.propose(dave, "alice", "bob", "t2")
        self.wait_item(alice, a2, "accepted")  # Dave has his own quota
        a3 = self.propose(carol, "frank", "alice", "t3")
        self.wait_item(alice, a3, "pending")  # Carol's is used up

    def test_blocked_connector_leaves_no_trace(self):
        alice = self.start("alice", "accept when connector is known\n")
        carol = self.start("carol")
        bob = self.start("bob")
        self.knows(carol, alice, "alice")
        self.knows(carol, bob, "bob")
        self.knows(alice, carol, "carol")
        alice.cli("contact", "set", "carol", "--block")
        iid = self.propose(carol, "alice", "bob", "t1")
        alice.wait_log("proposal from blocked connector", 20)
        self.assertIsNone(self.item(alice, iid))
        # Carol's envelope was acknowledged: nothing waits in her outbox for
        # Alice (only Bob's proposal may still be queued).
        wait_for("carol's envelope to alice acknowledged",
                 lambda: all(e["alias"] != "alice" for e in carol.json("outbox")), 20)

    def test_broken_file_keeps_the_old_policy(self):
        alice = self.start("alice", "decline when connector is unknown\nask\n")
        path = os.path.join(alice.home, "policy")
        with open(path, "w") as f:
            f.write("decline when connector is unknown\naccept when topic is\n")
        r = alice.cli("policy", "reload", check=False)
        self.assertEqual(r.returncode, 1, r.stderr)
        self.assertIn("policy:2:", r.stderr)
        shown = self.ctl(alice, "policy.show")["result"]
        self.assertEqual([x["text"] for x in shown["rules"]],
                         ["decline when connector is unknown", "ask"])
        # SIGHUP too: the error is logged, the old rules stay.
        alice.proc.send_signal(signal.SIGHUP)
        alice.wait_log("keeping the old rules", 20)
        shown = self.ctl(alice, "policy.show")["result"]
        self.assertEqual(len(shown["rules"]), 2)
        # A fixed file is taken.
        with open(path, "w") as f:
            f.write("ask\n")
        alice.cli("policy", "reload")
        self.assertEqual(len(self.ctl(alice, "policy.show")["result"]["rules"]), 1)

    def test_topic_in_offers_uses_the_owners_card(self):
        alice = self.start("alice", "accept when connector is known and topic in offers\nask\n")
        carol = self.start("carol")
        bob = self.start("bob")
        dave = self.start("dave")
        for other, alias in ((alice, "alice"), (bob, "bob"), (dave, "dave")):
            self.knows(carol, other, alias)
        self.knows(alice, carol, "carol")
        r = self.ctl(alice, "profile.set", {"offers": ["real-estate-law"]})
        self.assertTrue(r["ok"], r)
        self.assertEqual(r["result"]["offers"], ["real-estate-law"])
        self.assertGreater(r["result"]["seq"], 1)  # a re-issued card outranks the first
        iid = self.propose(carol, "alice", "bob", "real-estate-law")
        self.assertEqual(self.wait_item(alice, iid, "accepted")["decided_by"], "policy:1")
        iid2 = self.propose(carol, "alice", "dave", "tax-law")
        self.assertIsNone(self.wait_item(alice, iid2, "pending")["decided_by"])

    def test_card_update_carries_a_new_address(self):
        a = self.start("a")
        b = self.start("b")
        self.knows(a, b, "b")
        self.knows(b, a, "a")
        new = "127.0.0.1:%d" % free_port()
        r = self.ctl(b, "profile.set", {"name": "B moved", "advertise": [new], "listen": new})
        self.assertTrue(r["ok"], r)
        shown = wait_for("a holds b's new card",
                         lambda: (lambda c: c if c["seq"] == r["result"]["seq"] else None)(
                             a.json("contact", "show", "b")), 20)
        self.assertEqual((shown["name"], shown["addrs"], shown["alias"]),
                         ("B moved", [new], "b"))
        # B moves: it now listens on the new address, and A finds it there.
        self.assertEqual(b.stop(), 0)
        b.start()
        out = a.cli("ping", "b").stdout
        self.assertIn(new, out)
        # An older card is not taken back.
        self.assertEqual(a.json("contact", "show", "b")["seq"], r["result"]["seq"])

    def test_one_connector_cannot_fill_the_inbox(self):
        alice = self.node("alice", port=True)
        alice.init()
        alice.write_config(retry_max_ms=2000, max_pending_per_connector=2)
        alice.start()
        carol = self.start("carol")
        others = [self.start(n) for n in ("bob", "dave", "frank")]
        self.knows(carol, alice, "alice")
        for o in others:
            self.knows(carol, o, o.name)
        ids = [self.propose(carol, "alice", o.name, "t%d" % i) for i, o in enumerate(others)]
        self.wait_item(alice, ids[0], "pending")
        self.wait_item(alice, ids[1], "pending")
        alice.wait_log("max_pending_per_connector reached (2)", 20)
        self.assertIsNone(self.item(alice, ids[2]))
        # Answering one frees a place (Carol retries only until she is told
        # no, so a fresh proposal is needed).
        alice.cli("decline", ids[0])
        more = self.start("erin")
        self.knows(carol, more, "erin")
        iid = self.propose(carol, "alice", "erin", "t9")
        self.wait_item(alice, iid, "pending")

    def test_broken_file_refuses_the_start(self):
        alice = self.node("alice", port=True)
        alice.init()
        with open(os.path.join(alice.home, "policy"), "w") as f:
            f.write("accept when connector trust >= best\n")
        alice.start(expect_ready=False)
        self.assertEqual(alice.wait_exit(), 1)
        self.assertIn("policy:1:", alice.log())
        self.assertIn("refusing to start", alice.log())


if __name__ == "__main__":
    unittest.main()
