# SPDX-License-Identifier: MIT
"""Outbox deletes after ACKs ride on the next commit (ackdefer, issue 17).

An ACK that ends an envelope's delivery marks its outbox entry acknowledged
in memory; the delete is written with the next commit the node makes for
another reason, or by itself ack_defer_ms later, or at once when
ack_defer_max deletes wait (docs/RELIABILITY.md, docs/CONTROL.md).  These
tests show that ACKs alone cause no commit, that an acknowledged entry is
never sent again nor listed while its delete waits, that a kill -9 in that
window only makes the envelope go again (its receiver takes it as a
duplicate), that the budget of waiting deletes holds, and that a clean stop
writes them.

The recipient is played by tf-delivery (tests/integration/tf_delivery.c,
"take": it acknowledges every envelope the node sends on its link) from the
identity of a home on which no daemon runs, so that the ACKs are the only
thing the node receives.  Envelopes are card updates (`twofold profile
set`), one per change for each contact.
"""
import os
import subprocess
import sys
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import wait_for  # noqa: E402
from test_intro import IntroTestCase  # noqa: E402

DELIVERY = os.environ.get("TF_DELIVERY", "tf-delivery")
WAIT = 20.0
LONG_MS = 600000  # a flush timer that never fires during a test


def take(node, identity, hold_ms=1500):
    """Links to node as identity for hold_ms, acknowledging every envelope;
    returns how many came."""
    r = subprocess.run([DELIVERY, "take", node.listen, "--home", identity.home, "--hold-ms",
                        str(hold_ms)], capture_output=True, text=True, timeout=60)
    if r.returncode != 0 or not r.stdout.startswith("took "):
        raise AssertionError("tf-delivery take failed: %s %s" % (r.stdout, r.stderr))
    return int(r.stdout.split()[1])


class AckDefer(IntroTestCase):
    def status(self, n):
        reply = self.raw_request(n, "status", {"tables": True})
        self.assertIn("result", reply, reply)
        return reply["result"]

    def stored_outbox(self, n):
        """Entries in the store's outbox table, acknowledged or not."""
        return self.status(n)["tables"]["outbox"]["entries"]

    def sender(self, n_updates, **config):
        """Bob, running with config, and Alice, an identity without a node
        that is Bob's contact; Bob queued n_updates card updates for her
        (her card has no address: they wait for her to connect)."""
        bob = self.node("bob", port=True)
        bob.init()
        settings = {"retry_max_ms": 1000}
        settings.update(config)
        bob.write_config(**settings)
        bob.start()
        alice = self.node("alice")
        alice.init()
        bob.cli("contact", "add", alice.card(), "--alias", "alice")
        for i in range(n_updates):
            bob.cli("profile", "set", "--name", "Bob %d" % i)
        self.assertEqual(len(bob.json("outbox")), n_updates)
        return bob, alice

    def test_acks_alone_cause_no_commit(self):
        """Five ACKs write nothing by themselves: the entries leave the
        outbox's listing and count at once, stay in the store, are not sent
        again even after their retry time has passed, and their deletes are
        written with the next commit the node makes for another reason."""
        bob, alice = self.sender(5, ack_defer_ms=LONG_MS)
        before = self.status(bob)["stats"]
        self.assertEqual(take(bob, alice), 5)
        wait_for("the ACKs", lambda: self.status(bob)["stats"]["acks_pending"] == 5, WAIT)
        st = self.status(bob)
        self.assertEqual(st["stats"]["commits_acks_only"], before["commits_acks_only"])
        self.assertEqual(st["stats"]["acks_deferred"] - before["acks_deferred"], 5)
        self.assertEqual(st["outbox"], 0)
        self.assertEqual(bob.json("outbox"), [])
        self.assertEqual(st["tables"]["outbox"]["entries"], 5)
        # Their next try (at most retry_max_ms = 1 s after the send) passes:
        # they are neither sent again nor written.
        time.sleep(2.5)
        self.assertEqual(take(bob, alice), 0)
        st = self.status(bob)
        self.assertEqual(st["stats"]["envelopes_sent"] - before["envelopes_sent"], 5)
        self.assertEqual(st["stats"]["acks_pending"], 5)
        self.assertEqual(st["stats"]["commits_acks_only"], before["commits_acks_only"])
        # A change of the owner's commits them.
        carol = self.node("carol")
        carol.init()
        commits = st["stats"]["commits"]
        bob.cli("contact", "add", carol.card(), "--alias", "carol")
        st = self.status(bob)
        self.assertEqual(st["stats"]["acks_pending"], 0)
        self.assertEqual(st["tables"]["outbox"]["entries"], 0)
        self.assertGreater(st["stats"]["commits"], commits)
        self.assertEqual(st["stats"]["commits_acks_only"], before["commits_acks_only"])

    def test_the_timer_writes_them_in_one_commit(self):
        """With nothing else to commit, the waiting deletes are written
        together ack_defer_ms after the first: one commit for five ACKs."""
        bob, alice = self.sender(5, ack_defer_ms=4000)
        before = self.status(bob)["stats"]
        self.assertEqual(take(bob, alice, hold_ms=500), 5)
        wait_for("the deletes", lambda: self.stored_outbox(bob) == 0, WAIT)
        st = self.status(bob)["stats"]
        self.assertEqual(st["acks_pending"], 0)
        self.assertEqual(st["acks_deferred"] - before["acks_deferred"], 5)
        self.assertLessEqual(st["commits_acks_only"] - before["commits_acks_only"], 1)
        self.assertEqual(take(bob, alice, hold_ms=500), 0)

    def test_without_deferral_acks_commit_alone(self):
        """ack_defer_max = 0: every ACK's delete is written at once, and the
        commits holding nothing else are counted (commits_acks_only)."""
        bob, alice = self.sender(3, ack_defer_max=0)
        before = self.status(bob)["stats"]
        self.assertEqual(take(bob, alice, hold_ms=500), 3)
        wait_for("the deletes", lambda: self.stored_outbox(bob) == 0, WAIT)
        st = self.status(bob)["stats"]
        self.assertGreaterEqual(st["commits_acks_only"] - before["commits_acks_only"], 1)
        self.assertEqual(st["acks_deferred"], before["acks_deferred"])

    def test_budget_of_waiting_deletes(self):
        """ack_defer_max = 2: beyond two waiting deletes, an ACK's delete and
        the waiting ones are written at once; all seven entries end
        delivered exactly once, and a clean stop writes what still waits."""
        bob, alice = self.sender(7, ack_defer_max=2, ack_defer_ms=LONG_MS)
        before = self.status(bob)["stats"]
        self.assertEqual(take(bob, alice), 7)

        def taken():
            s = self.status(bob)["stats"]
            return (s["acks_deferred"] - before["acks_deferred"] +
                    s["ack_defer_full"] - before["ack_defer_full"]) == 7
        wait_for("the ACKs", taken, WAIT)
        st = self.status(bob)
        self.assertGreaterEqual(st["stats"]["ack_defer_full"] - before["ack_defer_full"], 1)
        self.assertLessEqual(st["stats"]["acks_pending"], 2)
        self.assertEqual(st["tables"]["outbox"]["entries"], st["stats"]["acks_pending"])
        self.assertEqual(st["outbox"], 0)
        self.assertEqual(bob.json("outbox"), [])
        self.assertEqual(st["stats"]["envelopes_sent"] - before["envelopes_sent"], 7)
        self.assertEqual(bob.stop(), 0)
        bob.start()
        self.assertEqual(self.stored_outbox(bob), 0)
        self.assertEqual(take(bob, alice, hold_ms=500), 0)

    def test_acknowledged_entries_leave_room_in_the_outbox_budget(self):
        """outbox_max_per_peer counts what is still queued: three entries
        acknowledged and waiting for their deletes leave room for a new
        one."""
        bob, alice = self.sender(3, ack_defer_ms=LONG_MS, outbox_max_per_peer=3)
        bob.cli("profile", "set", "--name", "Bob over")
        self.assertEqual(len(bob.json("outbox")), 3)  # full: skipped
        self.assertEqual(take(bob, alice), 3)
        wait_for("the ACKs", lambda: self.status(bob)["stats"]["acks_pending"] == 3, WAIT)
        bob.cli("profile", "set", "--name", "Bob again")
        self.assertEqual(len(bob.json("outbox")), 1)
        self.assertEqual(self.stored_outbox(bob), 1)  # the deletes went with it

    def test_a_delete_that_fails_waits_and_is_not_sent_again(self):
        """The outbox delete of an acknowledged entry fails (a test hook
        makes the first one fail with EIO) when a change of the owner's
        flushes it: the entry stays acknowledged, is not sent again after
        its retry time, and its delete is written with the next commit."""
        bob, alice = self.sender(1, ack_defer_ms=LONG_MS)
        bob.stop()
        bob.start(env={"TWOFOLD_TEST_CRASH": "fail-outbox-delete"})
        before = self.status(bob)["stats"]
        self.assertEqual(take(bob, alice), 1)
        wait_for("the ACK", lambda: self.status(bob)["stats"]["acks_pending"] == 1, WAIT)
        carol = self.node("carol")
        carol.init()
        bob.cli("contact", "add", carol.card(), "--alias", "carol")
        self.assertIn("test hook: failing an outbox delete", bob.log())
        st = self.status(bob)
        self.assertEqual(st["stats"]["acks_pending"], 1)
        self.assertEqual(st["tables"]["outbox"]["entries"], 1)
        self.assertEqual(bob.json("outbox"), [])
        # Past its retry time (retry_max_ms = 1 s): not sent again.
        time.sleep(2.5)
        self.assertEqual(take(bob, alice), 0)
        self.assertEqual(self.status(bob)["stats"]["envelopes_sent"] - before["envelopes_sent"],
                         1)
        bob.cli("contact", "set", "carol", "--trust", "close")
        st = self.status(bob)
        self.assertEqual(st["stats"]["acks_pending"], 0)
        self.assertEqual(st["tables"]["outbox"]["entries"], 0)

    def test_kill9_before_the_deletes_resends_once_as_duplicates(self):
        """Carol's proposals are acknowledged by Alice and Bob; Carol dies
        (kill -9) before their deletes are written.  After her restart she
        sends them again, the parties take them as duplicates (the same
        events and inbox items as before), and her outbox ends empty."""
        carol, alice, bob = self.cast()
        carol.stop()
        carol.write_config(retry_max_ms=2000, ack_defer_ms=LONG_MS)
        carol.start()
        iid = self.propose(carol, "alice", "bob", "--topic", "real-estate-law")
        wait_for("both ACKs", lambda: self.status(carol)["stats"]["acks_pending"] == 2, WAIT)
        self.assertEqual(self.stored_outbox(carol), 2)
        self.assertEqual(carol.json("outbox"), [])
        seen = {n.name: (self.intro_events(n, iid), self.inbox(n)) for n in (alice, bob)}
        received = {n.name: self.status(n)["stats"]["envelopes_received"] for n in (alice, bob)}
        for n in (alice, bob):
            self.assertEqual(len(seen[n.name][1]), 1)
        carol.kill9()
        carol.write_config(retry_max_ms=2000, ack_defer_ms=500)
        carol.start()
        wait_for("carol's outbox to empty", lambda: self.stored_outbox(carol) == 0, WAIT)
        self.assertGreaterEqual(self.status(carol)["stats"]["envelopes_sent"], 2)
        for n in (alice, bob):
            self.assertGreater(self.status(n)["stats"]["envelopes_received"], received[n.name])
            self.assertEqual((self.intro_events(n, iid), self.inbox(n)), seen[n.name])
        self.assertEqual(self.intro(carol, iid)["state"], "asking")


if __name__ == "__main__":
    unittest.main()
