# SPDX-License-Identifier: MIT
"""Delivery on the open internet (issue 12): the ACK rules for envelopes that
do not decode or carry an unknown type, duplicates detected per sender after
the envelope is authenticated, the outbox and seen-id budgets, the bounded
dials to a stranger's address, and no card updates to blocked contacts.

Raw peers are played by tf-delivery (tests/integration/tf_delivery.c) from
the identity of a home on which no daemon runs.
"""
import os
import socket
import subprocess
import sys
import threading
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import NodeTestCase, wait_for  # noqa: E402

DELIVERY = os.environ.get("TF_DELIVERY", "tf-delivery")


def delivery(*args, timeout=60):
    return subprocess.run([DELIVERY] + [str(a) for a in args], capture_output=True,
                          text=True, timeout=timeout)


def notes_in(node):
    return sorted(m["text"] for m in node.json("messages") if m["direction"] == "in")


class DeliveryTestCase(NodeTestCase):
    def listening(self, name, config=None):
        n = self.node(name, port=True)
        n.init()
        if config:
            n.write_config(**config)
        n.start()
        return n

    def identity(self, name):
        """A home with an identity and no daemon (tf-delivery speaks as it)."""
        n = self.node(name)
        n.init()
        return n


class AckRules(DeliveryTestCase):
    def test_malformed_and_unknown_types_are_refused_for_good(self):
        """An envelope whose outer part does not decode gets ACK rejected/1
        when its msg_id can be read (before: no ACK, retried until expiry);
        an unknown inner type gets 8, "unsupported type"; bytes without a
        msg_id get no ACK and leave the link up."""
        bob = self.listening("bob")
        mallory = self.identity("mallory")
        r = delivery("acks", bob.listen, "--home", mallory.home)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        for want in ("version-2=1/1", "sealed-48-bytes=1/1", "six-fields=1/1",
                     "inner-type-7=1/8", "inner-type-0=1/8", "no-msg-id=none", "link=alive"):
            self.assertIn(want, r.stdout)
        self.assertIn("without a msg id dropped", bob.log())


class Dedup(DeliveryTestCase):
    def test_same_msg_id_from_two_senders_is_delivered_twice(self):
        """Duplicates are (sender, msg_id): Carol's note is not taken for a
        copy of Alice's because it has the same msg_id, while Alice's own
        copy is still a duplicate (ACKed ok, stored once)."""
        bob = self.listening("bob")
        alice, carol = self.identity("alice"), self.identity("carol")
        bob.cli("contact", "add", alice.card(), "--alias", "alice")
        bob.cli("contact", "add", carol.card(), "--alias", "carol")
        msg_id = "5a" * 16
        for who, text in ((alice, "from alice"), (carol, "from carol"), (alice, "alice again")):
            r = delivery("note", bob.listen, "--home", who.home, "--msg-id", msg_id,
                         "--text", text)
            self.assertEqual(r.stdout.strip(), "ack 0/0", r.stdout + r.stderr)
        self.assertEqual(notes_in(bob), ["from alice", "from carol"])

    def test_a_stranger_cannot_preempt_a_contacts_msg_id(self):
        """A stranger's envelope with the msg_id a contact will use is
        refused (7) and does not make the contact's envelope a duplicate."""
        bob = self.listening("bob")
        alice, mallory = self.identity("alice"), self.identity("mallory")
        bob.cli("contact", "add", alice.card(), "--alias", "alice")
        msg_id = "c3" * 16
        r = delivery("note", bob.listen, "--home", mallory.home, "--msg-id", msg_id,
                     "--text", "first")
        self.assertEqual(r.stdout.strip(), "ack 1/7", r.stdout + r.stderr)
        r = delivery("note", bob.listen, "--home", alice.home, "--msg-id", msg_id,
                     "--text", "the real one")
        self.assertEqual(r.stdout.strip(), "ack 0/0", r.stdout + r.stderr)
        self.assertEqual(notes_in(bob), ["the real one"])


if __name__ == "__main__":
    unittest.main()
