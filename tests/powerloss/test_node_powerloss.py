#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""Nodes whose homes are on tf-plfs lose power at named points and at random
moments; after each cut the file system is remounted on what survived and
the node restarted.  Nothing a node acknowledged (an ACK to a peer, a
control reply) may be lost, and nothing may be delivered twice.

Named points (on the receiver's data.mdb, counted by the shim):
  before-data-sync   the commit's pages are written, not yet fsynced (the
                     last write torn at page granularity)
  between-syncs      the data fsync done, the meta page not yet written
  after-meta         the meta page written (the commit is durable), the
                     node never sees it: no ACK leaves
  after-ack          the sender saw the ACK, then the receiver loses power
  after-reply        the sender's `message` verb returned, then it loses power

Skips (exit 77, saying why) where tf-plfs cannot run."""
import os
import random
import shutil
import sys
import tempfile
import time
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(HERE, "..", "integration"))
from harness import Node, free_port, wait_for  # noqa: E402
from plfs import SKIP, Plfs, PlfsError, unavailable  # noqa: E402

DELIVERY_TIMEOUT = 30.0
CONFIG = {"retry_max_ms": 1000}


class PowerNode(Node):
    """A node whose home is on its own tf-plfs mount; its log is not."""

    def __init__(self, root, name, seed):
        self.fs = Plfs(os.path.join(root, name + ".disk"), os.path.join(root, name + ".mnt"),
                       os.path.join(root, name + ".ctl"), seed=seed)
        self.fs.mount()
        super().__init__(self.fs.mnt, name, "127.0.0.1:%d" % free_port())
        self.log_path = os.path.join(root, name + ".log")

    def setup(self):
        self.init()
        self.write_config(**CONFIG)
        self.fs.ctl("sync")  # the home as init left it is on the disk

    def power_cut(self, mode="all"):
        """Power loss (unless an armed cut already happened), then power back
        on: the node is killed, the file system remounted and the node
        restarted on what survived.  Returns the node's exit status if it had
        exited by itself before the kill, else None."""
        if not self.fs.stats()["dead"]:
            self.fs.cut(mode)
        rc = self.proc.poll() if self.proc is not None else None
        if self.proc is not None:
            self.kill9()
        self.fs.unmount()
        self.fs.mount()
        self.start()
        return rc

    def wait_dead(self, timeout=20.0):
        """Waits for an armed cut to fire."""
        wait_for("%s's armed power cut" % self.name, lambda: self.fs.stats()["dead"], timeout)


def messages(node):
    return node.json("messages", "--limit", "1000")


class PowerLossTest(unittest.TestCase):
    def setUp(self):
        self.root = tempfile.mkdtemp(prefix="tf-power-")
        self.seed = int(os.environ.get("TF_POWER_SEED", random.randrange(1, 2 ** 31)))
        print("seed %d" % self.seed, file=sys.stderr)
        self.rng = random.Random(self.seed)
        self.nodes = []
        self.a = self.power_node("alice")
        self.b = self.power_node("bob")
        self.a.cli("contact", "add", self.b.card(), "--alias", "bob")
        self.b.cli("contact", "add", self.a.card(), "--alias", "alice")
        for n in self.nodes:
            n.fs.ctl("sync")

    def power_node(self, name):
        n = PowerNode(self.root, name, self.seed + len(self.nodes))
        self.nodes.append(n)
        n.setup()
        n.start()
        return n

    def tearDown(self):
        failed = any(t is self for t, _ in self._outcome.result.failures +
                     self._outcome.result.errors) if hasattr(self, "_outcome") else False
        unclean = []
        for n in self.nodes:
            try:
                if n.proc is not None and n.stop() != 0:
                    unclean.append(n.name)
            except AssertionError:
                unclean.append(n.name)
            n.fs.unmount()
        if failed or unclean:
            for n in self.nodes:
                print("\n----- log of %s -----\n%s" % (n.name, n.log()[-6000:]))
        shutil.rmtree(self.root, ignore_errors=True)
        if unclean and not failed:
            self.fail("node(s) did not exit cleanly: %s" % ", ".join(unclean))

    def send(self, a, to, text):
        r = a.json("message", to, text)
        self.assertEqual(r["state"], "queued")
        return r["id"]

    def wait_delivered(self, a, ids, timeout=DELIVERY_TIMEOUT):
        ids = set(ids)

        def done():
            states = {m["id"]: m["state"] for m in messages(a) if m["id"] in ids}
            return states if len(states) == len(ids) and set(states.values()) == {
                "delivered"} else None
        return wait_for("%s's %d messages delivered" % (a.name, len(ids)), done,
                        DELIVERY_TIMEOUT)

    def assert_received_once(self, b, sent):
        """sent: {msg id: text}; each is on b exactly once, as received."""
        got = [m for m in messages(b) if m["direction"] == "in"]
        for msg_id, text in sent.items():
            copies = [m for m in got if m["id"] == msg_id]
            self.assertEqual(len(copies), 1, "%s: want one copy of %s on %s, have %r" % (
                text, msg_id, b.name, copies))
            self.assertEqual(copies[0]["text"], text)

    def named_cut(self, arm, mode_note):
        """Arms a cut on bob, sends him a message, waits for the cut, powers
        bob back on, and checks the message arrives exactly once."""
        self.b.fs.ctl(arm)
        text = "across %s" % mode_note
        msg_id = self.send(self.a, "bob", text)
        self.b.wait_dead()
        self.b.power_cut()
        self.wait_delivered(self.a, [msg_id])
        self.assert_received_once(self.b, {msg_id: text})
        with open(self.b.fs.log_path) as f:
            self.assertIn("power cut", f.read())

    def test_cut_before_data_sync_torn(self):
        self.named_cut("arm cut-before fsync data.mdb 1 tear", "a torn data write")

    def test_cut_between_data_sync_and_meta_sync(self):
        self.named_cut("arm cut-before syncwrite data.mdb 1", "the gap between the syncs")

    def test_cut_after_meta_page_before_ack(self):
        self.named_cut("arm cut-after syncwrite data.mdb 1", "a commit with no ACK")

    def test_cut_after_ack(self):
        """The sender saw the ACK: the receiver must have the message after
        any later power cut, however little of its unsynced state survives."""
        sent = {}
        for i, mode in enumerate(("all", "tear", "any 50")):
            text = "acked %d" % i
            msg_id = self.send(self.a, "bob", text)
            sent[msg_id] = text
            self.wait_delivered(self.a, [msg_id])
            self.b.power_cut(mode)
            self.assert_received_once(self.b, sent)

    def test_cut_after_reply(self):
        """The `message` verb's reply promises the message is stored: the
        sender loses power right after it, and the message still goes."""
        self.b.stop()
        msg_id = self.send(self.a, "bob", "queued before the cut")
        self.a.power_cut("all")
        out = [m for m in messages(self.a) if m["id"] == msg_id]
        self.assertEqual(len(out), 1)
        self.b.start()
        self.wait_delivered(self.a, [msg_id])
        self.assert_received_once(self.b, {msg_id: "queued before the cut"})

    def test_random_cuts(self):
        """Both nodes send while one or the other loses power at random
        moments, in random modes; in the end every message the CLI accepted
        is delivered once."""
        rounds = int(os.environ.get("TF_POWER_ROUNDS", "6"))
        sent = {"alice": {}, "bob": {}}
        names = {"alice": self.a, "bob": self.b}
        for r in range(rounds):
            for who, to in (("alice", "bob"), ("bob", "alice")):
                for i in range(3):
                    text = "%s round %d #%d" % (who, r, i)
                    sent[who][self.send(names[who], to, text)] = text
            time.sleep(self.rng.uniform(0, 0.4))
            victim = self.rng.choice(self.nodes)
            mode = self.rng.choice(("all", "tear", "any 30", "any 90"))
            print("round %d: power cut on %s (%s)" % (r, victim.name, mode), file=sys.stderr)
            victim.power_cut(mode)
            for who, ids in sent.items():
                have = {m["id"] for m in messages(names[who]) if m["direction"] == "out"}
                self.assertLessEqual(set(ids), have, "%s lost messages it had queued" % who)
        self.wait_delivered(self.a, sent["alice"])
        self.wait_delivered(self.b, sent["bob"])
        self.assert_received_once(self.b, sent["alice"])
        self.assert_received_once(self.a, sent["bob"])


if __name__ == "__main__":
    why = unavailable()
    if why:
        print("SKIP: " + why)
        sys.exit(SKIP)
    probe_root = tempfile.mkdtemp(prefix="tf-plfs-probe-")
    try:
        probe = Plfs(*(os.path.join(probe_root, d) for d in ("b", "m", "ctl")))
        probe.mount()
        probe.unmount()
    except PlfsError as e:
        print("SKIP: cannot mount a FUSE file system here: %s" % e)
        sys.exit(SKIP)
    finally:
        shutil.rmtree(probe_root, ignore_errors=True)
    unittest.main(verbosity=2)
