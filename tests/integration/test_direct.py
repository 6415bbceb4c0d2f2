# SPDX-License-Identifier: MIT
"""Integration tests for direct envelopes (docs/PROTOCOL.md §9, the "direct"
HELLO feature): real twofoldd processes on loopback, each with the op-count
shim (tests/bench/opcount.c) preloaded, so that every libsodium
crypto_sign_detached, crypto_sign_verify_detached, crypto_box_seal and
crypto_box_seal_open a node makes is counted.

Between nodes that both list the feature, an envelope to the link's peer
itself goes as DIRECT: no seal, no envelope signature.  A node with
direct_envelopes = 0 behaves as a node without the feature: everything to
and from it is sealed and signed, and everything still arrives.  What goes
through a mailbox stays sealed and signed.
"""
import os
import struct
import subprocess
import sys
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import test_mailbox  # noqa: E402
from harness import free_port, wait_for  # noqa: E402

SHIM = os.environ.get("TF_BENCH_OPCOUNT", "")
WAIT = 60.0
OPS = ("sign", "verify", "seal", "open")
# struct tf_bench_opcount (tests/bench/opcount.h): magic, then one u64 each.
MAGIC = 0x74666F7073636E74
FAST = {"retry_max_ms": 1000, "mailbox_retry_max_ms": 2000}


@unittest.skipUnless(SHIM and os.access(SHIM, os.R_OK), "no op-counting shim built")
class DirectTestCase(test_mailbox.MailboxTestCase):
    def start(self, n, **config):
        """Inits and starts n with the shim preloaded and config."""
        n.init()
        return self.restart(n, **config)

    def restart(self, n, **config):
        """Starts n (inited, stopped) with config and its counts at zero."""
        n.write_config(**dict(FAST, **config))
        n.ops_path = n.home + ".ops"
        with open(n.ops_path, "wb") as f:
            f.write(b"\0" * 40)
        asan = os.environ.get("ASAN_OPTIONS", "")
        n.start(env={"LD_PRELOAD": SHIM, "TF_BENCH_OPS_FILE": n.ops_path,
                     "ASAN_OPTIONS": (asan + ":" if asan else "") +
                     "verify_asan_link_order=0"})
        return n

    def ops(self, n):
        with open(n.ops_path, "rb") as f:
            magic, *counts = struct.unpack("<5Q", f.read(40))
        self.assertEqual(magic, MAGIC, "%s: the shim is not loaded" % n.name)
        return dict(zip(OPS, counts))

    def delta(self, before, nodes):
        """The ops each node made since before (name -> counts), and their sum."""
        out = {n.name: {k: self.ops(n)[k] - before[n.name][k] for k in OPS} for n in nodes}
        out["all"] = {k: sum(out[n.name][k] for n in nodes) for k in OPS}
        return out

    def snap(self, nodes):
        return {n.name: self.ops(n) for n in nodes}

    def cast(self, alice_config=None):
        carol = self.start(self.node("carol", port=True))
        alice = self.start(self.node("alice", port=True), **(alice_config or {}))
        bob = self.start(self.node("bob", port=True))
        carol.cli("contact", "add", alice.card(), "--alias", "alice")
        carol.cli("contact", "add", bob.card(), "--alias", "bob")
        alice.cli("contact", "add", carol.card(), "--alias", "carol")
        bob.cli("contact", "add", carol.card(), "--alias", "carol")
        # Links up before counting: a handshake verifies the peer's card.
        for a, b in ((carol, "alice"), (carol, "bob")):
            wait_for("%s -> %s link" % (a.name, b),
                     lambda a=a, b=b: a.cli("ping", b, check=False).returncode == 0, WAIT)
        return carol, alice, bob

    def introduce(self, carol, alice, bob, topic):
        iid = super().introduce(carol, alice, bob, topic)
        for n in (carol, alice, bob):
            wait_for("%s's outbox to empty" % n.name, lambda n=n: n.json("outbox") == [], WAIT)
        return iid

    def alias_of(self, n, other):
        """n's alias for other (added by an introduction)."""
        ids = [c for c in n.json("contact", "list") if c["id"] == other.text_id()]
        self.assertEqual(len(ids), 1, ids)
        return ids[0]["alias"] or ids[0]["id"]

    def note(self, frm, to, text):
        frm.cli("message", self.alias_of(frm, to), text)
        wait_for("%s's note to %s" % (frm.name, to.name),
                 lambda: text in [m["text"] for m in to.json("messages")
                                  if m["direction"] == "in"], WAIT)
        wait_for("%s's note delivered" % frm.name,
                 lambda: [m["state"] for m in frm.json("messages")
                          if m["direction"] == "out" and m["text"] == text] == ["delivered"],
                 WAIT)


class Direct(DirectTestCase):
    def test_intro_note_and_card_between_direct_nodes_seal_nothing(self):
        carol, alice, bob = self.cast()
        nodes = (carol, alice, bob)
        before = self.snap(nodes)
        self.introduce(carol, alice, bob, "direct-links")
        d = self.delta(before, nodes)
        # No envelope sealed or opened; the only signatures are the
        # statements': 2 proposals, 2 replies, 1 introduction.
        self.assertEqual(d["all"]["seal"], 0, d)
        self.assertEqual(d["all"]["open"], 0, d)
        self.assertEqual(d["all"]["sign"], 5, d)
        self.assertEqual((d["carol"]["sign"], d["alice"]["sign"], d["bob"]["sign"]), (3, 1, 1), d)
        # The statements are still verified: each party checks its proposal
        # and the introduction (and the other side's card and reply), the
        # connector each reply.
        self.assertGreaterEqual(d["alice"]["verify"], 4, d)
        self.assertGreaterEqual(d["bob"]["verify"], 4, d)
        self.assertGreaterEqual(d["carol"]["verify"], 2, d)
        # A note between the introduced parties, and a card update: direct
        # too once their link is up.
        self.note(alice, bob, "hello on a direct link")
        before = self.snap(nodes)
        self.note(bob, alice, "and back")
        bob.cli("profile", "set", "--name", "Bob Direct")
        for n in (alice, carol):
            wait_for("%s sees Bob's new name" % n.name,
                     lambda n=n: [c["name"] for c in n.json("contact", "list")
                                  if c["id"] == bob.text_id()] == ["Bob Direct"], WAIT)
        for n in nodes:
            wait_for("%s's outbox to empty" % n.name, lambda n=n: n.json("outbox") == [], WAIT)
        d = self.delta(before, nodes)
        self.assertEqual(d["all"]["seal"], 0, d)
        self.assertEqual(d["all"]["open"], 0, d)
        self.assertEqual(d["bob"]["sign"], 1, d)  # the card itself, nothing else

    def test_an_entry_sealed_before_is_sent_as_it_is(self):
        # Carol queues a note for Alice while Alice is away and Carol runs
        # without the feature: the outbox holds only the sealed envelope, as
        # every record of schema 8 did.  Carol restarts with the feature:
        # the note goes as it was sealed, with no new seal or signature.
        carol, alice, bob = self.cast()
        self.assertEqual(alice.stop(), 0)
        self.assertEqual(carol.stop(), 0)
        self.restart(carol, direct_envelopes=0)
        carol.cli("message", "alice", "sealed before")
        wait_for("carol's note queued", lambda: len(carol.json("outbox")) == 1, WAIT)
        self.assertEqual(self.ops(carol)["seal"], 1)
        self.assertEqual(carol.stop(), 0)
        self.restart(carol)
        self.restart(alice)
        wait_for("alice's note", lambda: ["sealed before"] == [
            m["text"] for m in alice.json("messages") if m["direction"] == "in"], WAIT)
        wait_for("carol's outbox to empty", lambda: carol.json("outbox") == [], WAIT)
        self.assertEqual((self.ops(carol)["seal"], self.ops(carol)["sign"]), (0, 0))
        self.assertEqual(self.ops(alice)["open"], 1)

    def test_msg_ids_are_time_ordered(self):
        # u48be(unix ms) then 10 random bytes: ids sort in the order they
        # were made, and their prefix is the sender's clock.
        carol, alice, bob = self.cast()
        t0 = int(time.time() * 1000)
        for i in range(5):
            carol.cli("message", "alice", "note %d" % i)
        t1 = int(time.time() * 1000)
        out = [m for m in carol.json("messages") if m["direction"] == "out"]
        self.assertEqual([m["text"] for m in sorted(out, key=lambda m: m["id"])],
                         ["note %d" % i for i in range(5)])
        for m in out:
            self.assertTrue(t0 - 1000 <= int(m["id"][:12], 16) <= t1 + 1000, m["id"])
        self.assertEqual(len({m["id"][12:] for m in out}), 5)

    def test_a_node_without_the_feature_gets_everything_sealed_both_ways(self):
        carol, alice, bob = self.cast(alice_config={"direct_envelopes": 0})
        nodes = (carol, alice, bob)
        before = self.snap(nodes)
        self.introduce(carol, alice, bob, "mixed-links")
        d = self.delta(before, nodes)
        # Alice's three envelopes (the proposal to her, her reply, the
        # introduction to her) are sealed and signed; Bob's go direct.
        self.assertEqual((d["carol"]["seal"], d["alice"]["seal"], d["bob"]["seal"]), (2, 1, 0), d)
        self.assertEqual((d["carol"]["open"], d["alice"]["open"], d["bob"]["open"]), (1, 2, 0), d)
        self.assertEqual(d["all"]["sign"], 5 + 3, d)
        # Notes both ways and a card update from each: all delivered, and
        # everything to or from Alice sealed.
        before = self.snap(nodes)
        self.note(alice, bob, "from the old node")
        self.note(bob, alice, "to the old node")
        d = self.delta(before, nodes)
        self.assertEqual((d["alice"]["seal"], d["bob"]["seal"]), (1, 1), d)
        self.assertEqual((d["alice"]["open"], d["bob"]["open"]), (1, 1), d)
        before = self.snap(nodes)
        alice.cli("profile", "set", "--name", "Alice Old")
        bob.cli("profile", "set", "--name", "Bob New")
        for n, who, name in ((bob, alice, "Alice Old"), (carol, alice, "Alice Old"),
                             (alice, bob, "Bob New"), (carol, bob, "Bob New")):
            wait_for("%s sees %s" % (n.name, name),
                     lambda n=n, who=who, name=name: [
                         c["name"] for c in n.json("contact", "list")
                         if c["id"] == who.text_id()] == [name], WAIT)
        for n in nodes:
            wait_for("%s's outbox to empty" % n.name, lambda n=n: n.json("outbox") == [], WAIT)
        d = self.delta(before, nodes)
        # Alice's card to Carol and Bob: sealed; Bob's to Alice sealed, to
        # Carol direct.
        self.assertEqual((d["alice"]["seal"], d["bob"]["seal"], d["carol"]["seal"]), (2, 1, 0), d)
        self.assertEqual((d["alice"]["open"], d["bob"]["open"], d["carol"]["open"]), (1, 1, 1), d)

    def test_a_sealed_envelope_is_sealed_once_however_often_it_is_sent(self):
        # Alice (without the feature) takes one note from Bob and no more
        # (messages_max = 1): Bob's next notes get no ACK and are sent
        # again and again, each time the same sealed bytes.
        carol, alice, bob = self.cast(alice_config={"direct_envelopes": 0, "messages_max": 1})
        self.introduce(carol, alice, bob, "retries")
        nodes = (alice, bob)
        self.note(bob, alice, "taken")
        before = self.snap(nodes)
        to = self.alias_of(bob, alice)
        for i in range(2):
            bob.cli("message", to, "refused %d" % i)
        wait_for("Bob's two notes tried 3 times each",
                 lambda: [e["attempts"] >= 3 for e in bob.json("outbox")] == [True, True], WAIT)
        d = self.delta(before, nodes)
        self.assertEqual(d["bob"]["seal"], 2, d)
        self.assertEqual(d["bob"]["sign"], 2, d)
        self.assertGreaterEqual(d["alice"]["open"], 6, d)


class ThroughAMailbox(DirectTestCase):
    def test_what_a_mailbox_holds_is_sealed_and_signed(self):
        mbox = self.start(self.node("mbox", port=True))
        carol = self.start(self.node("carol", port=True))
        alice = self.start(self.node("alice", listen="127.0.0.1:%d" % free_port()),
                           no_listen=1)
        mbox.cli("contact", "add", alice.card(), "--alias", "alice")
        mbox.cli("mailbox", "host", "alice")
        alice.json("mailbox", "use", mbox.card())
        wait_for("alice linked to her mailbox",
                 lambda: alice.json("mailbox", "status")["mailboxes"][0]["connected"], WAIT)
        carol.cli("contact", "add", alice.card(), "--alias", "alice")
        alice.cli("contact", "add", carol.card(), "--alias", "carol")
        nodes = (mbox, carol, alice)
        before = self.snap(nodes)
        carol.cli("message", "alice", "through the mailbox")
        wait_for("alice's note", lambda: ["through the mailbox"] == [
            m["text"] for m in alice.json("messages") if m["direction"] == "in"], WAIT)
        d = self.delta(before, nodes)
        # Carol sealed and signed it for Alice; the mailbox held it unread;
        # Alice opened and verified it.
        self.assertEqual((d["carol"]["seal"], d["carol"]["sign"]), (1, 1), d)
        self.assertEqual((d["mbox"]["seal"], d["mbox"]["open"]), (0, 0), d)
        self.assertEqual(d["alice"]["open"], 1, d)
        self.assertIn("holding", mbox.log())

    def test_a_node_without_the_feature_refuses_direct_even_when_the_peer_lists_it(self):
        """R61 from the side whose own HELLO lacked `direct`: a peer that
        lists the feature and sends DIRECT anyway gets ERROR 1 and the link
        closes; nothing is stored."""
        hostile = os.environ.get("TF_HOSTILE", "")
        self.assertTrue(hostile and os.access(hostile, os.X_OK), "TF_HOSTILE is not set")
        bob = self.start(self.node("bob", port=True), direct_envelopes=0)
        people = {}
        for name in ("carol", "dave", "mallory"):
            people[name] = self.node(name)
            people[name].init()
        homes = {name: n.home for name, n in people.items()}
        bob.cli("contact", "add", people["carol"].card(), "--alias", "carol")
        r = subprocess.run([hostile, "run", "setup-direct-note", "--target", bob.listen,
                            "--victim", bob.home, "--mallory", homes["mallory"],
                            "--carol", homes["carol"], "--dave", homes["dave"],
                            "--file", os.path.join(self.root, "hostile.state")],
                           capture_output=True, text=True, timeout=120)
        self.assertIn("; observed error 1, closed", r.stdout, r.stdout + r.stderr)
        self.assertEqual(bob.json("messages"), [])
        self.assertIn("DIRECT without the direct feature", bob.log())


if __name__ == "__main__":
    unittest.main()
