# SPDX-License-Identifier: MIT
"""A reply that sends nothing waits for the next commit (waitcommit, issue 17).

When the connector takes the first of an intro's two replies, nothing leaves
because of it but its ACK: the batch may wait up to commit_wait_ms to share
the commit of the second reply, which sends the introductions
(docs/PROTOCOL.md R65, docs/RELIABILITY.md).  These tests show that such a
batch does wait (status.stats.commits_waited), that the second reply does
not, that nothing is acknowledged before it is durable (a kill -9 at the
deadline, before the commit: the party still holds its reply and delivers it
again), and that a control request does not wait for the deadline (it
commits the waiting batch with its reply).

It also shows that a reply to an intro the other party has already
declined waits alike (one commit, one wait): its ACK's timing must not tell
the party that the intro is over before the delayed close does (R31).

The cast is test_intro.py's: Carol (the connector) introduces Alice and Bob,
who answer by hand (no policy: ask).  Test builds only:
TWOFOLD_TEST_CRASH=before-waited-commit kills a node when a batch that
waited is to be committed because its deadline came, and
TWOFOLD_TEST_COMMIT_WAIT_MS sets a wait longer than the config allows, so
that requests sent while a reply waits never race its deadline.
"""
import os
import signal
import struct
import sys
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import flood, recv_frame, wait_for  # noqa: E402
from test_intro import IntroTestCase  # noqa: E402

WAIT = 15.0
HOOK = {"TWOFOLD_TEST_CRASH": "before-waited-commit"}
LONG_WAIT = dict(HOOK, TWOFOLD_TEST_COMMIT_WAIT_MS="60000")


class WaitCommit(IntroTestCase):
    def cast_waiting(self, wait_ms, carol_env=None, **carol_config):
        """test_intro.py's cast, Carol with commit_wait_ms = wait_ms (and
        carol_config) and started with carol_env."""
        return self.cast(config={"carol": dict(carol_config, commit_wait_ms=wait_ms)},
                         env={"carol": carol_env})

    def stats(self, n):
        reply = self.raw_request(n, "status", {})
        self.assertIn("result", reply, reply)
        return reply["result"]["stats"]

    def asked(self, carol, alice, bob):
        """A proposal both parties hold, every envelope so far acknowledged
        and the deletes after those ACKs written (no commit of their own
        comes later); Carol's stats then."""
        iid = self.propose(carol, "alice", "bob", "--topic", "chess")
        self.wait_inbox(alice, iid, "pending")
        self.wait_inbox(bob, iid, "pending")
        self.wait_outbox_empty(carol)
        wait_for("Carol's outbox deletes", lambda: self.stats(carol)["acks_pending"] == 0, WAIT)
        return iid, self.stats(carol)

    def alice_replies(self, carol, alice, iid, before):
        """Alice accepts (nothing asks Carol anything meanwhile); returns how
        many commits Carol made for it, and how many of them waited."""
        alice.cli("accept", iid)
        # Her ACK comes once Carol's commit of her reply is on disk.
        self.wait_outbox_empty(alice)
        after = self.stats(carol)
        return (after["commits"] - before["commits"],
                after["commits_waited"] - before["commits_waited"])

    def bob_accepts(self, carol, alice, bob, iid):
        """Bob accepts last: the intro ends introduced exactly once."""
        bob.cli("accept", iid)
        self.wait_inbox(alice, iid, "introduced")
        self.wait_inbox(bob, iid, "introduced")
        for n in (carol, alice, bob):
            self.wait_outbox_empty(n)
        self.assert_introduced_once(carol, alice, bob, iid)

    def first_reply_waits(self, wait_ms):
        """Alice's reply, then Bob's; returns how many of Carol's commits
        waited for each (nothing asks Carol anything while Alice's waits)."""
        carol, alice, bob = self.cast_waiting(wait_ms)
        iid, before = self.asked(carol, alice, bob)
        commits, waited_a = self.alice_replies(carol, alice, iid, before)
        self.assertEqual(commits, 1)
        self.assertEqual(self.intro(carol, iid)["a"]["state"], "accepted")
        after_a = self.stats(carol)
        self.bob_accepts(carol, alice, bob, iid)
        after_b = self.stats(carol)
        return waited_a, after_b["commits_waited"] - after_a["commits_waited"]

    def test_the_first_reply_waits_the_second_does_not(self):
        """The first reply sends nothing: its batch waits (one commit that
        waited); the second sends the introductions: it commits at once."""
        self.assertEqual(self.first_reply_waits(200), (1, 0))

    def test_a_reply_to_an_intro_already_over_waits_alike(self):
        """Bob declines first: the intro is over and Carol's close to Alice
        waits its random delay (an hour at least).  Alice's reply is then
        taken as it would be if Bob had not answered: one commit, which
        waits, so her ACK comes no sooner; and it is kept."""
        carol, alice, bob = self.cast_waiting(200, close_delay_min_s=3600,
                                              close_delay_max_s=3600)
        iid, _ = self.asked(carol, alice, bob)
        bob.cli("decline", iid)
        self.wait_intro(carol, iid, "declined")
        self.wait_outbox_empty(bob)
        wait_for("Carol's outbox deletes", lambda: self.stats(carol)["acks_pending"] == 0, WAIT)
        before = self.stats(carol)
        self.assertEqual(self.alice_replies(carol, alice, iid, before), (1, 1))
        o = self.intro(carol, iid)
        self.assertEqual(o["state"], "declined")
        self.assertEqual(self.inbox(alice)[iid]["state"], "accepted")

    def test_a_second_acceptance_is_refused_once_over_too(self):
        """R26: a second, different acceptance from a party is refused while
        the intro asks; after the other party declined it is refused alike
        (before, it was taken, which told its sender that the intro is
        over before the delayed close did).  The stored acceptance stands."""
        carol, alice, bob = self.cast_waiting(5, close_delay_min_s=3600,
                                              close_delay_max_s=3600)
        iid, _ = self.asked(carol, alice, bob)
        alice.cli("accept", iid)
        self.wait_side(carol, iid, "a", "accepted")
        bob.cli("decline", iid)
        self.wait_intro(carol, iid, "declined")
        stored = self.intro(carol, iid)["a"]
        r = flood("reply", "--target", carol.listen, "--party", alice.home, "--connector",
                  carol.home, "--intro", iid, "--side", "a", "--time-offset", 7)
        self.assertEqual((r.returncode, r.stdout.strip()), (0, "ack 1/9"), r.stderr)
        carol.wait_log("refused: a second, different acceptance (R26)", WAIT)
        o = self.intro(carol, iid)
        self.assertEqual((o["state"], o["a"]), ("declined", stored))

    def bob_declined_first(self):
        """Bob declines while Alice has not answered; Carol's close to Alice
        waits its delay (an hour).  Returns Carol, Alice, the intro and
        alice_sends(time_offset, decision): a reply of Alice's own signing,
        sent by tf-flood, and the ACK it got ("ack STATUS/REASON")."""
        carol, alice, bob = self.cast_waiting(5, close_delay_min_s=3600,
                                              close_delay_max_s=3600)
        iid, _ = self.asked(carol, alice, bob)
        bob.cli("decline", iid)
        self.wait_intro(carol, iid, "declined")

        def alice_sends(offset, decision):
            r = flood("reply", "--target", carol.listen, "--party", alice.home, "--connector",
                      carol.home, "--intro", iid, "--side", "a", "--time-offset", offset,
                      "--decision", decision)
            self.assertEqual(r.returncode, 0, r.stderr)
            return r.stdout.strip()
        return carol, alice, iid, alice_sends

    def replied(self, n, iid):
        """(side, decision) of each intro.replied event of iid at n."""
        return [(e["side"], e["decision"]) for e in self.intro_events(n, iid, "intro.replied")]

    def test_a_first_acceptance_after_the_decline_is_kept(self):
        """R31: while the close to Alice waits, her replies are taken as if
        the intro still asked.  Alice had not answered when Bob declined: her
        first acceptance is kept, and a second, different one is refused, as
        it would be before Bob's decline (before, the first changed nothing
        and the second was taken, which told her the intro was over)."""
        carol, alice, iid, alice_sends = self.bob_declined_first()
        self.assertEqual(alice_sends(5, "accept"), "ack 0/0")
        self.assertEqual(self.intro(carol, iid)["a"]["state"], "accepted")
        self.assertEqual(alice_sends(7, "accept"), "ack 1/9")
        time.sleep(1.0)  # a close sent at once would be there by now
        self.assertEqual(self.inbox(alice)[iid]["state"], "pending")  # no close yet
        # Carol is told of the reply she keeps, once, and counts it.
        self.assertEqual(self.replied(carol, iid), [("a", "accept")])
        self.assertEqual(carol.json("contact", "show", "alice")["intro_stats"]["accepted"], 1)

    def test_a_decline_after_the_other_drops_the_delayed_close(self):
        """R31: Alice declines after Bob did, while her delayed close waits.
        As when her decline ends an open intro, she is sent no close (she
        knows), and a later reply from her is answered with a close at once:
        whether Bob declined first does not show.  Before, her close kept
        waiting its delay (an hour here), where it would have come at once
        had she declined first."""
        carol, alice, iid, alice_sends = self.bob_declined_first()
        self.assertEqual(alice_sends(5, "decline"), "ack 0/0")
        o = self.intro(carol, iid)
        self.assertEqual((o["state"], o["a"]["state"]), ("declined", "declined"))
        time.sleep(1.0)  # a close sent at once would be there by now
        self.assertEqual(self.inbox(alice)[iid]["state"], "pending")  # no close for a decline
        self.assertEqual(alice_sends(7, "accept"), "ack 0/0")
        self.wait_inbox(alice, iid, "closed")
        # Carol is told of Alice's decline, as a reply (Bob's ended the
        # intro), once, and counts it; the acceptance after it is not kept.
        self.assertEqual(self.replied(carol, iid), [("a", "decline")])
        self.assertEqual([e["side"] for e in self.intro_events(carol, iid, "intro.declined")],
                         ["b"])
        stats = carol.json("contact", "show", "alice")["intro_stats"]
        self.assertEqual((stats["accepted"], stats["declined"]), (0, 1))

    def test_a_sequential_first_party_never_waits(self):
        """Sequential mode: while Bob is not asked, no second reply can come
        to share the commit of Alice's, so her decline commits at the end of
        its turn (before, it waited the whole commit_wait_ms, 200 ms here,
        for nothing)."""
        carol, alice, bob = self.cast_waiting(200)
        iid = self.propose(carol, "alice", "bob", "--topic", "chess", "--sequential")
        self.wait_inbox(alice, iid, "pending")
        self.wait_outbox_empty(carol)
        wait_for("Carol's outbox deletes", lambda: self.stats(carol)["acks_pending"] == 0, WAIT)
        before = self.stats(carol)
        alice.cli("decline", iid)
        self.wait_intro(carol, iid, "declined")
        self.wait_outbox_empty(alice)
        after = self.stats(carol)
        self.assertEqual(after["commits_waited"] - before["commits_waited"], 0)
        self.assertEqual(self.intro(carol, iid)["b"]["state"], "not_asked")

    def test_no_wait_when_turned_off(self):
        """commit_wait_ms = 0: every batch commits at the end of its turn."""
        self.assertEqual(self.first_reply_waits(0), (0, 0))

    def test_kill9_before_the_waited_commit(self):
        """Carol dies when the deadline of the batch holding Alice's reply
        comes, before its commit: no ACK left, so Alice still holds her reply
        and delivers it again to the restarted Carol; the intro ends
        introduced exactly once."""
        carol, alice, bob = self.cast_waiting(200, carol_env=HOOK)
        iid, _ = self.asked(carol, alice, bob)
        alice.cli("accept", iid)
        self.assertEqual(carol.wait_exit(WAIT), -signal.SIGKILL)
        self.assertIn("test hook: crashing before the commit of a batch that waited", carol.log())
        self.assertIn(self.ids["carol"], [e["to"] for e in alice.json("outbox")])
        carol.start()
        self.wait_side(carol, iid, "a", "accepted")
        self.wait_outbox_empty(alice)
        self.bob_accepts(carol, alice, bob, iid)

    def test_a_control_request_does_not_wait(self):
        """While Alice's reply waits, requests keep coming to Carol over one
        connection: the first that finds the batch waiting commits it with
        its reply, so the deadline never comes (the hook would kill Carol)
        and the reply's answer is durable (it survives a kill -9 right
        after)."""
        import msgpack  # Debian's python3-msgpack
        carol, alice, bob = self.cast_waiting(5, carol_env=LONG_WAIT)
        iid, before = self.asked(carol, alice, bob)
        s = carol.raw_connect()
        try:
            alice.cli("accept", iid)
            deadline = time.monotonic() + WAIT
            seq = 0
            while True:
                seq += 1
                body = msgpack.packb({"id": seq, "verb": "intro.show", "args": {"id": iid}})
                s.sendall(struct.pack(">I", len(body)) + body)
                reply = msgpack.unpackb(recv_frame(s), raw=False)
                self.assertEqual(reply["id"], seq)
                if reply["result"]["a"]["state"] == "accepted":
                    break
                self.assertLess(time.monotonic(), deadline, "Alice's reply never reached Carol")
                time.sleep(0.005)
        finally:
            s.close()
        carol.kill9()
        self.assertNotIn("test hook: crashing before", carol.log())
        carol.start()
        self.assertEqual(self.intro(carol, iid)["a"]["state"], "accepted")
        self.assertEqual(self.stats(carol)["commits_waited"], 0)  # counted since start
        self.wait_outbox_empty(alice)


    def test_a_watch_reply_waits_for_the_commit(self):
        """A `watch` reply tells the last event's seq: while Alice's reply
        waits, it is held until the commit, and asking commits the batch.
        So the seq a watcher is told survives a kill -9 right after, as the
        event of Alice's reply."""
        carol, alice, bob = self.cast_waiting(5, carol_env=LONG_WAIT)
        iid, _ = self.asked(carol, alice, bob)
        seq0 = self.raw_request(carol, "watch", {})["result"]["seq"]
        alice.cli("accept", iid)
        deadline = time.monotonic() + WAIT
        seq = seq0
        while seq == seq0:
            self.assertLess(time.monotonic(), deadline, "Alice's reply never reached Carol")
            time.sleep(0.005)
            seq = self.raw_request(carol, "watch", {})["result"]["seq"]
        carol.kill9()
        self.assertNotIn("test hook: crashing before", carol.log())
        carol.start()
        told = [e for e in self.events(carol) if e["seq"] == seq]
        self.assertEqual(len(told), 1)
        self.assertEqual(told[0].get("id"), iid, told[0])
        self.assertEqual(self.intro(carol, iid)["a"]["state"], "accepted")

    def test_a_watcher_is_told_each_event_once(self):
        """A `watch` without `since` that comes while Alice's reply waits is
        told the seq of that reply's event, read through the open batch; its
        commit then broadcasts that event, which this watcher must not get
        live too ("only new events, each once"): the next event it gets is
        the one after."""
        import msgpack  # Debian's python3-msgpack
        carol, alice, bob = self.cast_waiting(5, carol_env=LONG_WAIT)
        iid, before = self.asked(carol, alice, bob)
        seq0 = self.raw_request(carol, "watch", {})["result"]["seq"]
        alice.cli("accept", iid)
        deadline = time.monotonic() + WAIT
        while True:  # watch until a watcher is told Alice's event
            s = carol.raw_connect()
            body = msgpack.packb({"id": 1, "verb": "watch", "args": {}})
            s.sendall(struct.pack(">I", len(body)) + body)
            seq = msgpack.unpackb(recv_frame(s), raw=False)["result"]["seq"]
            if seq > seq0:
                break
            s.close()
            self.assertLess(time.monotonic(), deadline, "Alice's reply never reached Carol")
            time.sleep(0.005)
        try:
            # The batch was waiting when that watch read it (the watch
            # committed it), so its event was broadcast after the reply.
            self.assertEqual(self.stats(carol)["commits_waited"] - before["commits_waited"], 1)
            bob.cli("accept", iid)
            ev = msgpack.unpackb(recv_frame(s), raw=False)["event"]
            self.assertEqual(ev["seq"], seq + 1, ev)
        finally:
            s.close()

    def test_an_error_reply_waits_for_the_commit(self):
        """An error may follow from a change that waits (withdrawing an
        intro whose first reply declined it): while Alice's reply waits, an
        error reply is held until the commit too, and asking commits the
        batch, so her ACK comes long before the (minute-long) deadline."""
        carol, alice, bob = self.cast_waiting(5, carol_env=LONG_WAIT)
        iid, _ = self.asked(carol, alice, bob)
        alice.cli("accept", iid)
        deadline = time.monotonic() + WAIT
        while alice.json("outbox") != []:
            self.assertLess(time.monotonic(), deadline, "no error reply committed Alice's reply")
            err = self.raw_request(carol, "no.such.verb", {})
            self.assertEqual(err["error"]["name"], "E_UNKNOWN_VERB")
        self.assertNotIn("test hook: crashing before", carol.log())
        self.assertEqual(self.intro(carol, iid)["a"]["state"], "accepted")

    def test_a_ping_does_not_wait(self):
        """Link messages that promise nothing (a PING, its PONG) still leave
        at the end of their loop turn while a reply waits: Carol pings Bob
        and gets his answer while Alice's reply is still uncommitted (her
        ACK has not come; the wait is a minute).  (A PING to Alice would
        queue behind her held ACK: a link keeps its messages in order.)"""
        carol, alice, bob = self.cast_waiting(5, carol_env=LONG_WAIT)
        iid, before = self.asked(carol, alice, bob)
        alice.cli("accept", iid)
        # Alice's reply reaches Carol (her log says so; nothing asks Carol
        # anything meanwhile).
        carol.wait_log("-> asking (a accepted, b pending)", WAIT)
        start = time.monotonic()
        pong = carol.json("ping", "bob")
        self.assertGreaterEqual(pong["rtt_us"], 0)
        self.assertLess(time.monotonic() - start, 30)
        self.assertEqual(len(alice.json("outbox")), 1)  # still not acknowledged
        # A request commits the batch (the reply to this one was made before).
        self.stats(carol)
        self.wait_outbox_empty(alice)
        self.assertEqual(self.stats(carol)["commits_waited"] - before["commits_waited"], 1)


if __name__ == "__main__":
    unittest.main()
