# SPDX-License-Identifier: MIT
"""Delivery on the open internet (issue 12): the ACK rules for envelopes that
do not decode or carry an unknown type, duplicates detected per sender after
the envelope is authenticated, the outbox, seen-id and messages budgets (and
the counts behind them across restarts, ACKs and refusals), the messages'
retention, the bounded dials to a stranger's address, and no card updates to
blocked contacts.

Raw peers are played by tf-delivery (tests/integration/tf_delivery.c) from
the identity of a home on which no daemon runs.
"""
import hashlib
import os
import re
import socket
import struct
import subprocess
import sys
import threading
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import NodeTestCase, wait_for  # noqa: E402

DELIVERY = os.environ.get("TF_DELIVERY", "tf-delivery")
EVIL = os.environ.get("TF_EVIL", "tf-evil")


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
                     "inner-type-10=1/8", "inner-type-0=1/8", "no-msg-id=none", "link=alive"):
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


class CountingListener:
    """A listener that never answers: it takes each connection and closes it
    at once (the node's dial fails fast), counting them."""

    def __init__(self):
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(64)
        self.sock.settimeout(0.1)
        self.addr = "127.0.0.1:%d" % self.sock.getsockname()[1]
        self.count = 0
        self.done = threading.Event()
        self.thread = threading.Thread(target=self.run, daemon=True)
        self.thread.start()

    def run(self):
        while not self.done.is_set():
            try:
                conn, _ = self.sock.accept()
            except socket.timeout:
                continue
            except OSError:
                return
            self.count += 1
            conn.close()

    def close(self):
        self.done.set()
        self.thread.join(5)
        self.sock.close()


class Budgets(DeliveryTestCase):
    def setUp(self):
        super().setUp()
        self.listeners = []

    def tearDown(self):
        for lst in self.listeners:
            lst.close()
        super().tearDown()

    def stranger_proposes(self, stranger, card_addr, party, name):
        """stranger (a home, no daemon) proposes intro `name` to party (side
        a) with tf-evil; its card says it is at card_addr.  The intro id."""
        other = self.identity(name.lower() + "-other")
        work = os.path.join(self.root, "evil-" + name)
        os.makedirs(work, exist_ok=True)
        cmd = [EVIL, "propose", "--home", stranger.home, "--listen", card_addr, "--dir", work,
               "--intro", name, "--a", party.card(), "--a-addr", party.listen,
               "--b", other.card(), "--b-addr", "127.0.0.1:9", "--ask", "a"]
        r = subprocess.run(cmd, capture_output=True, text=True, timeout=60)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        m = re.search(r"^intro %s id ([0-9a-f]{64})$" % name, r.stdout, re.M)
        self.assertIsNotNone(m, r.stdout)
        return m.group(1)

    def test_stranger_address_is_dialled_a_bounded_number_of_times(self):
        """A reply to a stranger is dialled at most stranger_dials_max times
        at the address in its card (here a listener that never answers),
        then waits for the stranger to connect, and goes out when it does."""
        dials_max = 2
        bob = self.listening("bob", config={"retry_max_ms": 1000,
                                            "stranger_dials_max": dials_max})
        mallory = self.identity("mallory")
        hole = CountingListener()
        self.listeners.append(hole)
        iid = self.stranger_proposes(mallory, hole.addr, bob, "X")
        bob.cli("decline", iid, "--reason", "no thanks")
        # Unbounded, the node dials about once a second (retry_max_ms 1000).
        bob.wait_log("waiting for it to connect", 20)
        time.sleep(5)
        self.assertGreaterEqual(hole.count, 1)
        self.assertLessEqual(hole.count, dials_max)
        out = bob.json("outbox")
        self.assertEqual(len(out), 1, out)
        self.assertIn("waiting for it to connect", out[0]["last_error"])
        # The stranger connects: the reply goes out on its link.
        r = delivery("take", bob.listen, "--home", mallory.home, "--hold-ms", 3000)
        self.assertTrue(r.stdout.startswith("took 1 "), r.stdout + r.stderr)
        wait_for("bob's outbox to empty", lambda: bob.json("outbox") == [], 10)
        self.assertLessEqual(hole.count, dials_max)

    def test_the_outbox_is_listed_a_page_at_a_time(self):
        """outbox.list pages like the other listings: --limit, --after and
        --before a msg_id, soonest first by (next_try, msg_id); a full page
        says how to get the next; a cursor that has left the outbox, or is
        not a msg_id, is an error that changes nothing."""
        # Replies to strangers who are never dialled (and never connect
        # again: one identity each) wait a day each: an outbox that holds
        # still while it is paged.
        bob = self.listening("bob", config={"stranger_dials_max": 0,
                                            "retry_max_ms": 86400000})
        for i in range(7):
            stranger = self.identity("mallory%d" % i)
            bob.cli("decline", self.stranger_proposes(stranger, "127.0.0.1:9", bob, "P%d" % i))
        wait_for("7 replies waiting for the strangers to connect",
                 lambda: [("waiting for it to connect" in (e["last_error"] or ""))
                          for e in bob.json("outbox")] == [True] * 7, 30, 0.2)
        everything = bob.json("outbox")
        order = [(e["next_try"], e["msg_id"]) for e in everything]
        self.assertEqual(order, sorted(order))
        ids = [e["msg_id"] for e in everything]
        self.assertEqual(len(set(ids)), 7)

        self.assertEqual([e["msg_id"] for e in bob.json("outbox", "--limit", "3")], ids[:3])
        self.assertEqual([e["msg_id"] for e in bob.json("outbox", "--limit", "3",
                                                        "--after", ids[2])], ids[3:6])
        self.assertEqual([e["msg_id"] for e in bob.json("outbox", "--limit", "3",
                                                        "--after", ids[5])], ids[6:])
        self.assertEqual([e["msg_id"] for e in bob.json("outbox", "--limit", "2",
                                                        "--before", ids[4])], ids[2:4])
        self.assertEqual([e["msg_id"] for e in bob.json("outbox", "--before", ids[2])],
                         ids[:2])
        self.assertEqual(bob.json("outbox", "--before", ids[0]), [])
        self.assertEqual(bob.json("outbox", "--after", ids[6]), [])

        # For a person: a full page ends with the command for the next one.
        r = bob.cli("outbox", "--limit", "3")
        self.assertIn("more: twofold outbox --after %s" % ids[2], r.stderr)
        self.assertEqual(len([ln for ln in r.stdout.splitlines() if "reply" in ln]), 3)

        # Bad cursors and limits: clear errors, and nothing changes.
        r = bob.cli("outbox", "--after", "00" * 16, check=False)
        self.assertNotEqual(r.returncode, 0)
        self.assertIn("no longer in the outbox", r.stderr)
        for bad in (["--after", "abc"], ["--before", "zz" * 16], ["--limit", "0"],
                    ["--limit", "1001"], ["--after", ids[0], "--before", ids[1]], ["extra"]):
            r = bob.cli("outbox", *bad, check=False)
            self.assertNotEqual(r.returncode, 0, bad)
            self.assertTrue(r.stderr.strip(), bad)
        self.assertEqual([e["msg_id"] for e in bob.json("outbox")], ids)

    def test_accept_and_decline_replies_are_the_same_size(self):
        """Padding (docs/PROTOCOL.md section 7): the envelope of an accept
        (a card and a note) and of a decline (a short reason) arrive at the
        connector with the same length."""
        bob = self.listening("bob", config={"stranger_dials_max": 0})
        mallory = self.identity("mallory")
        x = self.stranger_proposes(mallory, "127.0.0.1:9", bob, "X")
        y = self.stranger_proposes(mallory, "127.0.0.1:9", bob, "Y")
        bob.cli("accept", x, "--note", "Hello! I would be glad to meet you, any day next week.")
        bob.cli("decline", y, "--reason", "no")
        r = delivery("take", bob.listen, "--home", mallory.home, "--hold-ms", 3000)
        m = re.match(r"took 2 sizes (\d+),(\d+)$", r.stdout.strip())
        self.assertIsNotNone(m, r.stdout + r.stderr)
        self.assertEqual(m.group(1), m.group(2))
        self.assertGreater(int(m.group(1)), 4096)

    def test_outbox_budget_for_strangers_together(self):
        """outbox_max_strangers: replies to non-contacts together are
        bounded; beyond it the owner's decline is refused with an error and
        nothing more is queued."""
        bob = self.listening("bob", config={"outbox_max_strangers": 2,
                                            "stranger_dials_max": 0})
        iids = []
        for name in ("P", "Q", "R"):
            stranger = self.identity("m" + name.lower())
            iids.append(self.stranger_proposes(stranger, "127.0.0.1:9", bob, name))
        bob.cli("decline", iids[0], "--reason", "no")
        bob.cli("decline", iids[1], "--reason", "no")
        self.assertEqual(len(bob.json("outbox")), 2)
        r = bob.cli("decline", iids[2], "--reason", "no", check=False)
        self.assertNotEqual(r.returncode, 0, r.stdout + r.stderr)
        self.assertEqual(len(bob.json("outbox")), 2)
        self.assertIn("outbox_max_strangers", bob.log())

    def test_stranger_count_follows_contacts(self):
        """The strangers' count is looked up again when a contact is added
        or removed: entries for a stranger who becomes a contact leave it
        (room for another stranger's), and come back when it is removed."""
        bob = self.listening("bob", config={"outbox_max_strangers": 2,
                                            "stranger_dials_max": 0})
        strangers, iids = [], []
        for name in ("P", "Q", "R"):
            strangers.append(self.identity("m" + name.lower()))
            iids.append(self.stranger_proposes(strangers[-1], "127.0.0.1:9", bob, name))
        bob.cli("decline", iids[0], "--reason", "no")
        bob.cli("decline", iids[1], "--reason", "no")
        r = bob.cli("decline", iids[2], "--reason", "no", check=False)
        self.assertNotEqual(r.returncode, 0, r.stdout + r.stderr)
        bob.cli("contact", "add", strangers[0].card(), "--alias", "mp")
        bob.cli("decline", iids[2], "--reason", "no")
        self.assertEqual(len(bob.json("outbox")), 3)
        # mp is a stranger again: three strangers' entries, over the budget
        # (nothing queued is dropped), so a fourth is refused.
        bob.cli("contact", "rm", "mp")
        s = self.identity("ms")
        iid = self.stranger_proposes(s, "127.0.0.1:9", bob, "S")
        r = bob.cli("decline", iid, "--reason", "no", check=False)
        self.assertNotEqual(r.returncode, 0, r.stdout + r.stderr)
        self.assertEqual(len(bob.json("outbox")), 3)
        self.assertEqual(bob.log().count("(outbox_max_strangers)"), 2)

    def test_outbox_budget_per_recipient(self):
        """outbox_max_per_peer: a contact that is never reachable gets at
        most that many queued envelopes; the next note is refused."""
        alice = self.listening("alice", config={"outbox_max_per_peer": 3})
        bob = self.node("bob", port=True)  # never started
        bob.init()
        alice.cli("contact", "add", bob.card(), "--alias", "bob")
        for i in range(3):
            alice.cli("message", "bob", "note %d" % i)
        r = alice.cli("message", "bob", "one too many", check=False)
        self.assertNotEqual(r.returncode, 0, r.stdout + r.stderr)
        self.assertEqual(len(alice.json("outbox")), 3)
        self.assertIn("outbox_max_per_peer", alice.log())

    def test_seen_budget(self):
        """seen_max: once that many msg ids are remembered, a new envelope
        is not taken (no ACK: its sender tries later); a duplicate of one
        remembered is still acknowledged."""
        bob = self.listening("bob", config={"seen_max": 2})
        alice = self.identity("alice")
        bob.cli("contact", "add", alice.card(), "--alias", "alice")
        acks = []
        for i in range(3):
            r = delivery("note", bob.listen, "--home", alice.home, "--msg-id", "%032x" % (i + 1),
                         "--text", "note %d" % i, "--timeout-ms", 1500)
            acks.append(r.stdout.strip())
        self.assertEqual(acks, ["ack 0/0", "ack 0/0", "no ack"])
        self.assertEqual(notes_in(bob), ["note 0", "note 1"])
        r = delivery("note", bob.listen, "--home", alice.home, "--msg-id", "%032x" % 1,
                     "--text", "note 0")
        self.assertEqual(r.stdout.strip(), "ack 0/0")
        self.assertIn("seen_max", bob.log())


class OutboxCounts(DeliveryTestCase):
    def test_counts_stay_right_across_restart_ack_and_refusal(self):
        """The outbox budgets are checked against counts kept in memory:
        built from the store at start, taken down when an envelope is
        acknowledged or refused, so that outbox_max_per_peer admits exactly
        that many each time."""
        alice = self.listening("alice", config={"outbox_max_per_peer": 2})
        bob = self.node("bob", port=True)
        bob.init()
        alice.cli("contact", "add", bob.card(), "--alias", "bob")
        bob.start()
        bob.cli("contact", "add", alice.card(), "--alias", "alice")
        bob.stop()

        def fill(tag):
            for i in range(2):
                alice.cli("message", "bob", "%s %d" % (tag, i))
            r = alice.cli("message", "bob", "%s one too many" % tag, check=False)
            self.assertNotEqual(r.returncode, 0, r.stdout + r.stderr)
            self.assertEqual(len(alice.json("outbox")), 2)

        fill("first")
        # Restart: the counts are built again from the outbox.
        alice.stop()
        alice.start()
        self.assertIn("counts: 1 identities", alice.log())
        r = alice.cli("message", "bob", "still too many", check=False)
        self.assertNotEqual(r.returncode, 0, r.stdout + r.stderr)
        # ACKed: the count goes back to zero and two fit again.
        bob.start()
        wait_for("alice's outbox to empty", lambda: alice.json("outbox") == [], 20)
        self.assertEqual(notes_in(bob), ["first 0", "first 1"])
        # Refused (bob blocks alice: ACK 7): the count goes back to zero too.
        bob.cli("contact", "set", "alice", "--block")
        bob.stop()
        fill("second")
        bob.start()
        wait_for("alice's outbox to empty", lambda: alice.json("outbox") == [], 20)
        failed = [m for m in alice.json("messages") if m["state"] == "failed"]
        self.assertEqual(len(failed), 2, failed)
        bob.stop()
        fill("third")
        self.assertEqual(alice.log().count("(outbox_max_per_peer)"), 4)

    def test_counts_stay_right_across_expiry(self):
        """An envelope that expires undelivered leaves the count too (the
        shortest note_ttl_s, 60 s, makes this test a minute long)."""
        alice = self.listening("alice", config={"outbox_max_per_peer": 2, "note_ttl_s": 60,
                                                "retry_max_ms": 1000})
        bob = self.node("bob", port=True)  # never started
        bob.init()
        alice.cli("contact", "add", bob.card(), "--alias", "bob")
        for i in range(2):
            alice.cli("message", "bob", "note %d" % i)
        r = alice.cli("message", "bob", "one too many", check=False)
        self.assertNotEqual(r.returncode, 0, r.stdout + r.stderr)
        alice.wait_log("expired after", 90, count=2)
        wait_for("alice's outbox to empty", lambda: alice.json("outbox") == [], 10)
        for i in range(2):
            alice.cli("message", "bob", "again %d" % i)
        r = alice.cli("message", "bob", "one too many again", check=False)
        self.assertNotEqual(r.returncode, 0, r.stdout + r.stderr)
        states = sorted(m["state"] for m in alice.json("messages"))
        self.assertEqual(states, ["failed", "failed", "queued", "queued"])


class Messages(DeliveryTestCase):
    def test_received_notes_per_contact_between_real_nodes(self):
        """messages_max_per_contact: bob stores that many notes from alice;
        the next gets no ACK and stays queued at alice (not failed, not
        lost), while nothing bob acknowledged is dropped."""
        alice = self.listening("alice")
        bob = self.listening("bob", config={"messages_max_per_contact": 2})
        alice.cli("contact", "add", bob.card(), "--alias", "bob")
        bob.cli("contact", "add", alice.card(), "--alias", "alice")
        for i in range(3):
            alice.cli("message", "bob", "note %d" % i)
        bob.wait_log("(messages_max_per_contact)", 20)
        wait_for("two notes at bob", lambda: len(notes_in(bob)) == 2, 10)
        self.assertEqual(notes_in(bob), ["note 0", "note 1"])
        out = alice.json("outbox")
        self.assertEqual(len(out), 1, out)
        states = sorted(m["state"] for m in alice.json("messages"))
        self.assertEqual(states, ["delivered", "delivered", "queued"])

    def test_received_notes_in_all_and_after_restart(self):
        """messages_max bounds the notes of all contacts together, and the
        counts survive a restart (built from the store)."""
        bob = self.listening("bob", config={"messages_max_per_contact": 2, "messages_max": 3})
        alice, carol = self.identity("alice"), self.identity("carol")
        bob.cli("contact", "add", alice.card(), "--alias", "alice")
        bob.cli("contact", "add", carol.card(), "--alias", "carol")

        def send(who, n):
            r = delivery("note", bob.listen, "--home", who.home, "--msg-id", "%032x" % n,
                         "--text", "%s %d" % (who.name, n), "--timeout-ms", 1500)
            return r.stdout.strip()

        self.assertEqual([send(alice, i) for i in (1, 2, 3)], ["ack 0/0", "ack 0/0", "no ack"])
        self.assertIn("(messages_max_per_contact)", bob.log())
        self.assertEqual([send(carol, i) for i in (4, 5)], ["ack 0/0", "no ack"])
        self.assertIn("(messages_max)", bob.log())
        bob.stop()
        bob.start()
        self.assertIn("3 notes received", bob.log())
        self.assertEqual(send(carol, 6), "no ack")
        self.assertEqual(notes_in(bob), ["alice 1", "alice 2", "carol 4"])

    def test_retention(self):
        """messages_retention_s: notes received, and sent notes whose delivery
        ended, are collected once older; the room they leave counts again."""
        bob = self.listening("bob", config={"messages_max_per_contact": 1,
                                            "messages_retention_s": 2})
        alice = self.identity("alice")
        bob.cli("contact", "add", alice.card(), "--alias", "alice")

        def send(n):
            r = delivery("note", bob.listen, "--home", alice.home, "--msg-id", "%032x" % n,
                         "--text", "note %d" % n, "--timeout-ms", 1500)
            return r.stdout.strip()

        self.assertEqual(send(1), "ack 0/0")
        self.assertEqual(send(2), "no ack")
        bob.cli("message", "alice", "from bob")
        r = delivery("take", bob.listen, "--home", alice.home, "--hold-ms", 2000)
        self.assertTrue(r.stdout.startswith("took 1 "), r.stdout + r.stderr)
        wait_for("bob's note to be delivered",
                 lambda: [m["state"] for m in bob.json("messages") if m["direction"] == "out"]
                 == ["delivered"], 10)
        wait_for("the notes to be collected", lambda: bob.json("messages") == [], 15)
        self.assertIn("collected (messages_retention_s)", bob.log())
        self.assertEqual(send(3), "ack 0/0")
        self.assertEqual(notes_in(bob), ["note 3"])


class CardUpdates(DeliveryTestCase):
    def test_blocked_contacts_get_no_card_update(self):
        bob = self.listening("bob")
        alice, carol = self.identity("alice"), self.identity("carol")
        bob.cli("contact", "add", alice.card(), "--alias", "alice")
        bob.cli("contact", "add", carol.card(), "--alias", "carol")
        bob.cli("contact", "set", "carol", "--block")
        bob.cli("profile", "set", "--name", "Bob Moved")
        out = bob.json("outbox")
        self.assertEqual([(e["alias"], e["type"]) for e in out], [("alice", "card-update")])


# seenkeys ---------------------------------------------------------------
class SeenKeys(DeliveryTestCase):
    """The seen table is keyed by BLAKE2b-128(sender_pk) || msg_id (schema
    12); rows the code before wrote (BLAKE2b-128(sender_pk || msg_id), 16
    bytes) go on making replays duplicates after the upgrade, until they
    expire."""

    @staticmethod
    def h16(data):
        return hashlib.blake2b(data, digest_size=16).digest()

    def test_keys_and_upgrade(self):
        import lmdb  # python3-lmdb (./dev installs it)
        bob = self.listening("bob")
        alice = self.identity("alice")
        bob.cli("contact", "add", alice.card(), "--alias", "alice")
        kept, expired = "0190aa" + "11" * 13, "0190ab" + "22" * 13
        for msg_id, text in ((kept, "kept"), (expired, "expired")):
            r = delivery("note", bob.listen, "--home", alice.home, "--msg-id", msg_id,
                         "--text", text)
            self.assertEqual(r.stdout.strip(), "ack 0/0", r.stdout + r.stderr)
        bob.stop()
        path = os.path.join(bob.home, "store")
        env = lmdb.open(path, max_dbs=64, subdir=True)
        meta, contacts = env.open_db(b"meta"), env.open_db(b"contacts")
        seen, seen_exp = env.open_db(b"seen"), env.open_db(b"seen_exp")
        with env.begin(write=True) as txn:
            alice_pk = [k for k, _ in txn.cursor(db=contacts)]
            self.assertEqual(len(alice_pk), 1)
            alice_pk = alice_pk[0]
            rows = dict(txn.cursor(db=seen))
            want = {self.h16(alice_pk) + bytes.fromhex(m) for m in (kept, expired)}
            self.assertEqual(set(rows), want)
            self.assertEqual(len(list(txn.cursor(db=seen_exp))), 2)
            # Make the store as the code before schema 12 left it, the
            # second note's row expired a minute ago.
            for k in [k for k, _ in txn.cursor(db=seen_exp)]:
                txn.delete(k, db=seen_exp)
            for key, val in rows.items():
                txn.delete(key, db=seen)
                old = self.h16(alice_pk + key[16:])
                if key[16:] == bytes.fromhex(expired):
                    val = struct.pack(">Q", int(time.time()) - 60)
                txn.put(old, val, db=seen)
                txn.put(val + old, b"", db=seen_exp)
                if key[16:] == bytes.fromhex(kept):
                    until = val
            txn.put(b"schema", b"\0\0\0\x0b", db=meta)  # 11: before seenkeys
        env.close()

        bob.start()
        # Migrated: the old rows kept, and until when they are looked up.
        env = lmdb.open(path, max_dbs=64, subdir=True, readonly=True, lock=False)
        with env.begin() as txn:
            self.assertEqual(txn.get(b"seen-legacy-until", db=env.open_db(b"meta", txn=txn)),
                             until)
        env.close()
        r = delivery("note", bob.listen, "--home", alice.home, "--msg-id", kept,
                     "--text", "kept, replayed")
        self.assertEqual(r.stdout.strip(), "ack 0/0", r.stdout + r.stderr)
        self.assertEqual(notes_in(bob), ["expired", "kept"])

        # The expired row is collected (the sweep runs every second); then
        # the same msg id is new again.
        def seen_rows():
            e = lmdb.open(path, max_dbs=64, subdir=True, readonly=True)
            try:
                with e.begin() as t:
                    return t.stat(e.open_db(b"seen", txn=t))["entries"]
            finally:
                e.close()
        wait_for("the expired seen row to be collected", lambda: seen_rows() == 1, 15)
        r = delivery("note", bob.listen, "--home", alice.home, "--msg-id", expired,
                     "--text", "expired, sent again")
        self.assertEqual(r.stdout.strip(), "ack 0/0", r.stdout + r.stderr)
        self.assertEqual(notes_in(bob), ["expired", "expired, sent again", "kept"])
        r = delivery("note", bob.listen, "--home", alice.home, "--msg-id", kept,
                     "--text", "kept, replayed again")
        self.assertEqual(r.stdout.strip(), "ack 0/0", r.stdout + r.stderr)
        self.assertEqual(len(notes_in(bob)), 3)


if __name__ == "__main__":
    unittest.main()
