# SPDX-License-Identifier: MIT
"""Integration tests for mailboxes (docs/PROTOCOL.md "Mailboxes",
docs/CONTROL.md "Mailboxes"): real twofoldd processes on loopback.

The cast: Mallory runs an always-on mailbox ("mbox") and hosts Alice and Bob;
Carol, the connector, listens.  Alice and Bob run with no listening socket
(config no_listen = 1), as behind a NAT: Alice's card still names an address
where nothing listens, Bob's names none at all.  Each lists the mailbox on
its card (`mailbox use`), so everything sent to them goes through it.
"""
import os
import signal
import sys
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import NodeTestCase, flood, free_port, wait_for, watch_events  # noqa: E402

WAIT = 20.0
FAST = {"retry_max_ms": 2000, "mailbox_retry_max_ms": 2000}


class MailboxTestCase(NodeTestCase):
    def cast(self, mbox_config=None, start_bob=True, hosted=("alice", "bob"), mbox_env=None):
        """mbox, carol (listening), alice and bob (not listening), cards
        exchanged: carol has alice and bob; they have carol; mbox hosts both."""
        mbox = self.node("mbox", port=True)
        carol = self.node("carol", port=True)
        alice = self.node("alice", listen="127.0.0.1:%d" % free_port())
        bob = self.node("bob", listen="127.0.0.1:%d" % free_port())
        for n in (mbox, carol, alice, bob):
            n.init()
        mbox.write_config(**dict(FAST, **(mbox_config or {})))
        carol.write_config(**FAST)
        for n in (alice, bob):
            n.write_config(no_listen=1, **FAST)
        for n in (mbox, carol, alice, bob):
            if n is not bob or start_bob:
                n.start(env=mbox_env if n is mbox else None)
        self.assertIn("listen=-", alice.log())
        if not start_bob:
            bob.start()
        # Bob's card names no address of his own.
        bob.cli("profile", "set", "--advertise", "")
        for n in (alice, bob):
            mbox.cli("contact", "add", n.card(), "--alias", n.name)
            if n.name in hosted:
                mbox.cli("mailbox", "host", n.name)
            st = n.json("mailbox", "use", mbox.card())
            self.assertEqual(len(st["mailboxes"]), 1)
            self.assertFalse(st["listening"])
        for n in (alice, bob):
            wait_for("%s linked to its mailbox" % n.name,
                     lambda n=n: n.json("mailbox", "status")["mailboxes"][0]["connected"], WAIT)
        self.assertEqual(bob.json("mailbox", "status")["direct_addrs"], 0)
        for n in (alice, bob):
            carol.cli("contact", "add", n.card(), "--alias", n.name)
            n.cli("contact", "add", carol.card(), "--alias", "carol")
        if not start_bob:
            self.assertEqual(bob.stop(), 0)
        self.ids = {n.name: n.text_id() for n in (mbox, carol, alice, bob)}
        return mbox, carol, alice, bob

    def inbox(self, n):
        return {it["id"]: it for it in n.json("inbox", "--all")}

    def wait_inbox(self, n, iid, state):
        return wait_for("%s's inbox item %.12s to be %s" % (n.name, iid, state),
                        lambda: (self.inbox(n).get(iid) or {}).get("state") == state, WAIT)

    def wait_outbox_empty(self, n):
        wait_for("%s's outbox to empty" % n.name, lambda: n.json("outbox") == [], WAIT)

    def notes(self, n, to, count, prefix="note"):
        for i in range(count):
            n.cli("message", to, "%s %d" % (prefix, i))

    def held(self, mbox, who):
        return self.tenants(mbox)[who]["envelopes"]

    def notes_in(self, n):
        return sorted(m["text"] for m in n.json("messages") if m["direction"] == "in")

    def tenants(self, mbox):
        return {t["alias"]: t for t in mbox.json("mailbox", "list")["tenants"]}

    def events(self, n):
        """Every event of n's log (watch --since 0 up to status's latest)."""
        last = n.json("status")["events"]
        out, finished, rc = watch_events(n, lambda evs: evs[-1]["seq"] >= last, 10)
        self.assertTrue(finished and rc == 0, out)
        return out

    def introduce(self, carol, alice, bob, topic):
        iid = carol.json("propose", "alice", "bob", "--topic", topic)["id"]
        self.wait_inbox(alice, iid, "pending")
        self.wait_inbox(bob, iid, "pending")
        alice.cli("accept", iid)
        bob.cli("accept", iid)
        wait_for("intro introduced", lambda: carol.json("show", iid)["state"] == "introduced",
                 WAIT)
        self.wait_inbox(alice, iid, "introduced")
        self.wait_inbox(bob, iid, "introduced")
        return iid


class ThroughAMailbox(MailboxTestCase):
    def test_intro_note_and_card_update_reach_parties_without_a_listener(self):
        mbox, carol, alice, bob = self.cast()
        iid = self.introduce(carol, alice, bob, "real-estate-law")
        # Each party holds the other once, with the mailbox on the card.
        for me, other in ((alice, bob), (bob, alice)):
            cs = [c for c in me.json("contact", "list") if c["id"] == self.ids[other.name]]
            self.assertEqual(len(cs), 1, cs)
            self.assertEqual(cs[0]["intro"], iid)
        self.wait_outbox_empty(carol)
        self.assertIn("holding", mbox.log())
        # A note from Alice to Bob: neither listens; it goes through the mailbox.
        alice.cli("message", bob_alias(alice, self.ids["bob"]), "hello through the mailbox")
        wait_for("bob's note", lambda: [m["text"] for m in bob.json("messages")
                                        if m["direction"] == "in"] ==
                 ["hello through the mailbox"], WAIT)
        wait_for("alice's note delivered",
                 lambda: [m["state"] for m in alice.json("messages")] == ["delivered"], WAIT)
        # A card update from Bob reaches Alice and Carol.
        bob.cli("profile", "set", "--name", "Bob Two")
        for n in (alice, carol):
            wait_for("%s sees Bob's new name" % n.name,
                     lambda n=n: [c["name"] for c in n.json("contact", "list")
                                  if c["id"] == self.ids["bob"]] == ["Bob Two"], WAIT)
        # The mailbox deleted everything once its tenants had it.
        wait_for("the mailbox to hold nothing",
                 lambda: all(t["envelopes"] == 0 and t["bytes"] == 0
                             for t in self.tenants(mbox).values()), WAIT)
        t = self.tenants(mbox)
        self.assertEqual(sorted(t), ["alice", "bob"])
        self.assertTrue(t["alice"]["connected"])
        self.assertIsNotNone(t["alice"]["last_seen"])

    def test_party_away_then_back_gets_intros_once_even_after_mailbox_kill9(self):
        mbox, carol, alice, bob = self.cast(start_bob=False)
        # Bob is away: Carol's proposal for him is deposited at the mailbox
        # (custody: it leaves Carol's outbox).
        iid = carol.json("propose", "alice", "bob", "--topic", "music")["id"]
        self.wait_inbox(alice, iid, "pending")
        self.wait_outbox_empty(carol)
        held = wait_for("the mailbox to hold Bob's proposal",
                        lambda: self.tenants(mbox)["bob"]["envelopes"], WAIT)
        self.assertEqual(held, 1)
        # kill -9 of the mailbox while it holds it: nothing is lost.
        mbox.kill9()
        time.sleep(0.5)
        mbox.start()
        self.assertEqual(self.tenants(mbox)["bob"]["envelopes"], 1)
        bob.start()
        self.wait_inbox(bob, iid, "pending")
        wait_for("the mailbox to drop what Bob has",
                 lambda: self.tenants(mbox)["bob"]["envelopes"] == 0, WAIT)
        alice.cli("accept", iid)
        bob.cli("accept", iid)
        self.wait_inbox(alice, iid, "introduced")
        self.wait_inbox(bob, iid, "introduced")
        # Exactly once: one inbox item, one "received" event on Bob's node.
        self.assertEqual([i for i in self.inbox(bob)], [iid])
        received = [e for e in self.events(bob)
                    if e.get("id") == iid and e["type"] == "inbox.received"]
        self.assertEqual(len(received), 1, received)


class Budgets(MailboxTestCase):
    """What a mailbox keeps is bounded: only hosted tenants, quotas per
    tenant (envelopes, bytes) and per uploader, and a holding time."""


    def test_upload_for_someone_not_hosted_is_refused_and_stores_nothing(self):
        mbox, carol, alice, bob = self.cast(hosted=("alice",))
        carol.cli("message", "bob", "for bob")
        out = wait_for("carol's outbox to show the refusal",
                       lambda: [e for e in carol.json("outbox")
                                if "does not host" in (e["last_error"] or "")], WAIT)
        self.assertEqual(len(out), 1)
        self.assertIn("not hosted here", mbox.log())
        self.assertEqual(sorted(self.tenants(mbox)), ["alice"])
        self.assertEqual(self.held(mbox, "alice"), 0)
        self.assertEqual(mbox.json("status")["outbox"], 0)
        # Once hosted, the same envelope goes through.
        mbox.cli("mailbox", "host", "bob")
        wait_for("bob's note", lambda: [m["text"] for m in bob.json("messages")
                                        if m["direction"] == "in"] == ["for bob"], WAIT)

    def test_tenant_envelope_quota_refuses_then_delivers_when_drained(self):
        mbox, carol, alice, bob = self.cast(mbox_config={"mailbox_tenant_envelopes": 2},
                                            start_bob=False)
        self.notes(carol, "bob", 3)
        wait_for("an over-quota refusal in carol's outbox",
                 lambda: [e for e in carol.json("outbox") if "over quota" in (e["last_error"] or "")],
                 WAIT)
        self.assertEqual(self.held(mbox, "bob"), 2)
        self.assertEqual(len(carol.json("outbox")), 1)
        self.assertIn("mailbox_tenant_envelopes", mbox.log())
        # The refusal is temporary: once Bob drains his mailbox, the third
        # is deposited and delivered too, each exactly once.
        bob.start()
        wait_for("bob's three notes",
                 lambda: sorted(m["text"] for m in bob.json("messages")
                                if m["direction"] == "in") == ["note 0", "note 1", "note 2"],
                 WAIT)
        self.wait_outbox_empty(carol)

    def test_tenant_byte_quota(self):
        mbox, carol, alice, bob = self.cast(start_bob=False)
        mbox.cli("mailbox", "host", "bob", "--quota", "65000")
        carol.cli("message", "bob", "x" * 3000)
        wait_for("one held", lambda: self.held(mbox, "bob") == 1, WAIT)
        size = self.tenants(mbox)["bob"]["bytes"]
        fit = 65000 // size
        self.assertGreater(fit, 1)
        self.notes(carol, "bob", fit, "y" * 2990)
        wait_for("an over-quota refusal in carol's outbox",
                 lambda: [e for e in carol.json("outbox") if "over quota" in (e["last_error"] or "")],
                 WAIT)
        t = self.tenants(mbox)["bob"]
        self.assertEqual(t["envelopes"], fit)
        self.assertLessEqual(t["bytes"], 65000)
        self.assertEqual(t["quota_bytes"], 65000)
        self.assertIn("bytes held for the tenant", mbox.log())

    def test_per_uploader_quota_leaves_room_for_others(self):
        mbox, carol, alice, bob = self.cast(mbox_config={"mailbox_uploader_envelopes": 1},
                                            start_bob=False)
        alice.cli("contact", "add", bob.card(), "--alias", "bob")
        self.notes(carol, "bob", 2)
        wait_for("an over-quota refusal in carol's outbox",
                 lambda: [e for e in carol.json("outbox") if "over quota" in (e["last_error"] or "")],
                 WAIT)
        self.assertIn("mailbox_uploader_envelopes", mbox.log())
        alice.cli("message", "bob", "from alice")
        wait_for("alice's note held too", lambda: self.held(mbox, "bob") == 2, WAIT)
        self.assertEqual(len(carol.json("outbox")), 1)
        self.wait_outbox_empty(alice)

    def test_a_msg_id_held_from_another_uploader_is_not_a_duplicate(self):
        """Msg ids are unique per sender only.  An upload whose (to_pk,
        msg id) is held already is idempotent when it comes from the same
        uploader (ok, nothing stored again); from another it is deferred
        (status 2, reason 11), so that someone who learnt the id (another
        mailbox of the tenant) cannot make the real envelope be answered
        "held" and lost.  Before, both were answered ok."""
        mbox, carol, alice, bob = self.cast(start_bob=False)
        mid = "5a" * 16
        first, other = "01" * 32, "02" * 32

        def upload(seed):
            r = flood("upload", "--target", mbox.listen, "--tenant", self.ids["bob"],
                      "--msg-id", mid, "--seed", seed)
            self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
            return r.stdout.strip()
        self.assertEqual(upload(first), "ack 0/0")
        self.assertEqual(self.held(mbox, "bob"), 1)
        self.assertEqual(upload(first), "ack 0/0")  # the same uploader again
        self.assertEqual(upload(other), "ack 2/11")
        self.assertEqual(self.held(mbox, "bob"), 1)
        self.assertIn("held from another uploader", mbox.log())

    def test_expired_envelopes_are_collected(self):
        mbox, carol, alice, bob = self.cast(mbox_config={"mailbox_ttl_max_s": 2},
                                            start_bob=False)
        carol.cli("message", "bob", "short-lived")
        wait_for("one held", lambda: self.held(mbox, "bob") == 1, WAIT)
        wait_for("the expired one collected",
                 lambda: self.tenants(mbox)["bob"]["envelopes"] == 0
                 and self.tenants(mbox)["bob"]["bytes"] == 0, WAIT)
        self.assertIn("expired and were collected", mbox.log())

    def test_unhost_while_pushes_wait_frees_their_link_slots(self):
        """Pushes in flight to a tenant when its owner unhosts it are
        dropped; their ACKs then match nothing, so the link's in-flight
        count must fall with them.  Before, it stayed up, and the link
        later counted as dead for want of those ACKs."""
        mbox, carol, alice, bob = self.cast()
        os.kill(bob.proc.pid, signal.SIGSTOP)  # linked, but reads nothing
        try:
            self.notes(carol, "bob", 2)
            wait_for("two pushes in flight to bob",
                     lambda: self.bob_link(mbox)["in_flight"] == 2, WAIT)
            self.assertEqual(mbox.json("mailbox", "unhost", "bob")["purged_envelopes"], 2)
            self.assertEqual(self.bob_link(mbox)["in_flight"], 0)
        finally:
            os.kill(bob.proc.pid, signal.SIGCONT)
        wait_for("bob's two notes", lambda: len(self.notes_in(bob)) == 2, WAIT)
        self.assertEqual(self.bob_link(mbox)["in_flight"], 0)

    def bob_link(self, mbox):
        """The mailbox's link to Bob (status peers)."""
        links = [p for p in mbox.json("status")["peers"] if p["alias"] == "bob"]
        self.assertEqual(len(links), 1, links)
        return links[0]

    def test_unhost_drops_what_is_held(self):
        mbox, carol, alice, bob = self.cast(start_bob=False)
        self.notes(carol, "bob", 2)
        wait_for("two held", lambda: self.held(mbox, "bob") == 2, WAIT)
        r = mbox.json("mailbox", "unhost", "bob")
        self.assertEqual(r["purged_envelopes"], 2)
        self.assertEqual(sorted(self.tenants(mbox)), ["alice"])
        # Human output of the list.
        out = mbox.cli("mailbox", "list").stdout
        self.assertIn("alice", out)
        self.assertNotIn("bob", out)


HOOKS = os.environ.get("TF_TEST_HOOKS_BUILT") == "ON"


@unittest.skipUnless(HOOKS, "the hostile mailbox is a daemon test hook: this build has "
                     "TF_TEST_HOOKS off")
class HostileMailbox(MailboxTestCase):
    """A mailbox that misbehaves (TWOFOLD_TEST_MAILBOX, node/mailbox.c):
    pushes each envelope twice, never deletes (so it replays everything on
    each new link), pushes the newest first, and adds a truncated and a
    forged copy of each.  The tenant takes each envelope exactly once and
    nothing forged; a mailbox that never answers is left for another."""

    def test_duplicates_replays_reorders_truncations_and_forgeries_change_nothing(self):
        env = {"TWOFOLD_TEST_MAILBOX": "dup,replay,reorder,truncate,forge"}
        mbox, carol, alice, bob = self.cast(start_bob=False, mbox_env=env)
        self.assertIn("a hostile mailbox", mbox.log())
        iid = carol.json("propose", "alice", "bob", "--topic", "music")["id"]
        self.notes(carol, "bob", 3)
        wait_for("four held for bob", lambda: self.held(mbox, "bob") == 4, WAIT)
        want = ["note 0", "note 1", "note 2"]
        for round_ in range(2):  # the second link gets everything replayed
            bob.start()
            wait_for("bob's notes", lambda: self.notes_in(bob) == want, WAIT)
            self.wait_inbox(bob, iid, "pending")
            wait_for("the copies refused",
                     lambda: bob.log().count("malformed envelope") +
                     bob.log().count("envelope rejected") >= 8 * (round_ + 1), WAIT)
            wait_for("all pushes in", lambda: bob.json("status")["stats"]
                     ["envelopes_received"] >= 16, WAIT)
            self.assertEqual(bob.stop(), 0)
        bob.start()
        self.assertEqual(self.notes_in(bob), want)
        self.assertEqual(list(self.inbox(bob)), [iid])
        received = [e for e in self.events(bob)
                    if e.get("id") == iid and e["type"] == "inbox.received"]
        self.assertEqual(len(received), 1, received)
        # The forged and truncated copies were refused for what they are.
        log = bob.log()
        self.assertIn("malformed envelope", log)
        self.assertTrue("does not open" in log or "bad signature" in log, log[-2000:])
        # Bob's node accepted and answered the intro normally.
        bob.cli("accept", iid)
        alice.cli("accept", iid)
        self.wait_inbox(bob, iid, "introduced")

    def test_sender_falls_back_from_a_mute_mailbox_to_the_next(self):
        mute = self.node("mute", port=True)
        mute.init()
        mute.write_config(**FAST)
        mute.start(env={"TWOFOLD_TEST_MAILBOX": "mute"})
        mbox, carol, alice, bob = self.cast(start_bob=False)
        # Bob lists the mute mailbox first: senders try it first.
        bob.start()
        mute.cli("contact", "add", bob.card(), "--alias", "bob")
        mute.cli("mailbox", "host", "bob")
        st = bob.json("mailbox", "use", mute.card())
        st = bob.json("mailbox", "use", mbox.card())
        self.assertEqual(len(st["mailboxes"]), 2)
        self.assertEqual(self.stop_and_share(bob, carol), 0)
        carol.stop()
        carol.write_config(dead_link_ms=1000, **FAST)
        carol.start()
        # Only the mute mailbox is up at first: the upload gets no answer.
        self.assertEqual(mbox.stop(), 0)
        carol.cli("message", "bob", "around the mute one")
        wait_for("carol to give up on the mute mailbox",
                 lambda: "no ACK for envelopes in flight" in carol.log(), WAIT)
        self.assertEqual(len(carol.json("outbox")), 1)
        mbox.start()
        wait_for("the note held by the honest mailbox", lambda: self.held(mbox, "bob") == 1,
                 WAIT)
        self.wait_outbox_empty(carol)
        bob.start()
        wait_for("bob's note", lambda: self.notes_in(bob) == ["around the mute one"], WAIT)

    def stop_and_share(self, bob, carol):
        """Gives Carol Bob's newest card (with both mailboxes), stops Bob."""
        wait_for("carol holds bob's card with two mailboxes",
                 lambda: carol.json("contact", "show", "bob").get("card") == bob.card(), WAIT)
        return bob.stop()


@unittest.skipUnless(HOOKS, "the crash points are daemon test hooks: this build has "
                     "TF_TEST_HOOKS off")
class CrashWindows(MailboxTestCase):
    """TWOFOLD_TEST_CRASH=after-receive-commit: the node dies by SIGKILL
    right after committing what it received, before its ACK leaves."""
    CRASH = {"TWOFOLD_TEST_CRASH": "after-receive-commit"}

    def test_mailbox_killed_after_its_commit_holds_the_retry_once(self):
        mbox, carol, alice, bob = self.cast(start_bob=False, mbox_env=self.CRASH)
        carol.cli("message", "bob", "once")
        self.assertEqual(mbox.wait_exit(WAIT), -9)
        mbox.start()
        # Carol had no ACK: she uploads again; the mailbox answers that it
        # holds it already, and holds it once.
        self.wait_outbox_empty(carol)
        self.assertEqual(self.held(mbox, "bob"), 1)
        bob.start()
        wait_for("bob's note", lambda: self.notes_in(bob) == ["once"], WAIT)
        wait_for("the mailbox to drop it", lambda: self.held(mbox, "bob") == 0, WAIT)

    def test_tenant_killed_after_its_commit_gets_the_push_again_and_keeps_one(self):
        mbox, carol, alice, bob = self.cast(start_bob=False)
        carol.cli("message", "bob", "once")
        wait_for("one held", lambda: self.held(mbox, "bob") == 1, WAIT)
        bob.start(env=self.CRASH)
        self.assertEqual(bob.wait_exit(WAIT), -9)
        self.assertEqual(self.held(mbox, "bob"), 1)  # no ACK came: still held
        bob.start()
        wait_for("the mailbox to drop it", lambda: self.held(mbox, "bob") == 0, WAIT)
        self.assertEqual(self.notes_in(bob), ["once"])


def bob_alias(node, bob_id):
    """The alias (or id) under which node holds Bob."""
    for c in node.json("contact", "list"):
        if c["id"] == bob_id:
            return c.get("alias") or c["id"]
    raise AssertionError("no contact %s" % bob_id)


if __name__ == "__main__":
    unittest.main()
