# SPDX-License-Identifier: MIT
"""Integration tests for the link layer and delivery (docs/PROTOCOL.md §9, §10):
real twofoldd processes on loopback, in temporary homes, driven by the real
twofold CLI; hostile peers played by tf-testtool.

The Noise test vectors live in the proto unit tests; here the handshake runs
between real nodes.  Every node listens on a free loopback port picked by the
harness (free_port: bind to port 0, read it, close; an accepted race).

Retries: the first retry delays are 1 s, 2 s, 4 s... times a jitter factor in
[0.5, 1.0]; senders get `retry_max_ms = 2000` in their config to keep waits
short.
"""
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import TESTTOOL, NodeTestCase, testtool, wait_for, watch_events  # noqa: E402

EXIT_FAIL = 1
DELIVERY_TIMEOUT = 15.0


def received_order(node, n):
    """The msg ids of the first n notes node received, in the order it
    stored them (its event log)."""
    def received(evs):
        return [e["id"] for e in evs if e.get("type") == "message.received"]
    events, _, _ = watch_events(node, lambda evs: len(received(evs)) >= n)
    return received(events)[:n]


def messages(node, direction=None):
    lst = node.json("messages")
    return [m for m in lst if direction is None or m["direction"] == direction]


def outbox(node):
    return node.json("outbox")


def out_state(node, msg_id):
    for m in messages(node, "out"):
        if m["id"] == msg_id:
            return m
    return None


def read_line(stream, timeout):
    result = []
    t = threading.Thread(target=lambda: result.append(stream.readline()), daemon=True)
    t.start()
    t.join(timeout)
    if not result or not result[0]:
        raise AssertionError("no line within %ss" % timeout)
    return result[0]


class TransportTestCase(NodeTestCase):
    def nodes_up(self, *names, config=None, start=True):
        """Initialised nodes listening on free ports; config maps a name to
        its <home>/config settings."""
        config = config or {}
        out = []
        for name in names:
            n = self.node(name, port=True)
            n.init()
            if name in config:
                n.write_config(**config[name])
            if start:
                n.start()
            out.append(n)
        return out

    def befriend(self, a, b):
        """Each adds the other's card, aliased by node name."""
        a.cli("contact", "add", b.card(), "--alias", b.name)
        b.cli("contact", "add", a.card(), "--alias", a.name)

    def send(self, a, to, text):
        r = a.json("message", to, text)
        self.assertEqual(r["state"], "queued")
        self.assertRegex(r["id"], "^[0-9a-f]{32}$")
        return r["id"]

    def assert_nodes_alive(self):
        """Fails at once, with the exit status, if a started node died."""
        for n in self.nodes:
            if n.proc is not None and n.proc.poll() is not None:
                raise AssertionError("%s exited unexpectedly (status %d)" % (
                    n.name, n.proc.returncode))

    def wait_out_state(self, a, msg_id, state, timeout=DELIVERY_TIMEOUT):
        seen = []

        def check():
            self.assert_nodes_alive()
            m = out_state(a, msg_id)
            seen[:] = [m and m["state"]]
            return m if m is not None and m["state"] == state else None
        try:
            return wait_for("%s's message %s to become %s" % (a.name, msg_id, state), check,
                            timeout, 0.1)
        except AssertionError as e:
            raise AssertionError("%s; it is %r; outbox: %r" % (
                e, seen[0] if seen else None, a.cli("--json", "outbox", check=False).stdout))

    def assert_received_once(self, b, sender, msg_id, text):
        copies = [m for m in messages(b) if m["id"] == msg_id]
        self.assertEqual(len(copies), 1, "want exactly one copy on %s: %r" % (b.name, copies))
        m = copies[0]
        self.assertEqual(m["direction"], "in")
        self.assertEqual(m["state"], "received")
        self.assertEqual(m["text"], text)
        self.assertEqual(m["contact"], sender.text_id())
        self.assertIsNone(m["error"])

    def ping_ok(self, a, name):
        """`twofold ping NAME` succeeds; returns its stdout."""
        r = a.cli("ping", name)
        self.assertRegex(r.stdout, r"^pong from %s \(tf1[0-9a-z]+\.\.\.\) at \S+ in \d+ ms" %
                         re.escape(name))
        return r.stdout


class Handshake(TransportTestCase):
    def test_ping_round_trip(self):
        a, b = self.nodes_up("alice", "bob")
        self.befriend(a, b)
        out = self.ping_ok(a, "bob")
        self.assertIn("at %s in" % b.listen, out)
        # Both ends authenticated the other: the link is up with the right ids.
        peers = a.json("status")["peers"]
        self.assertEqual([(p["id"], p["alias"], p["direction"], p["state"]) for p in peers],
                         [(b.text_id(), "bob", "out", "up")])
        bpeers = b.json("status")["peers"]
        self.assertEqual([(p["id"], p["alias"], p["direction"], p["state"]) for p in bpeers],
                         [(a.text_id(), "alice", "in", "up")])
        # JSON form, and the other direction (over the same link).
        j = b.json("ping", "alice")
        self.assertEqual(j["id"], a.text_id())
        self.assertIsInstance(j["rtt_us"], int)
        self.assertIsInstance(j["rtt_ms"], int)
        self.assertLess(j["rtt_ms"], 5000)
        self.assertIn("up with %s (outbound)" % b.text_id(), a.log())
        self.assertIn("up with %s (inbound)" % a.text_id(), b.log())

    def test_wrong_static_key_is_rejected(self):
        """Alice holds a card for Bob (signed with Bob's real key) that points
        at Carol's node: the handshake authenticates Carol's static key and
        card, which are not Bob's."""
        a, b, c = self.nodes_up("alice", "bob", "carol", config={"alice": {"retry_max_ms": 2000}})
        a.cli("contact", "add", b.card(), "--alias", "bob")
        b.stop()  # Bob is not needed (and not reachable) from here on
        seq = a.json("contact", "show", "bob")["seq"] + 1
        forged = testtool("card", b.home, "--seq", seq, "--name", "Bob", "--addr", c.listen)
        self.assertEqual(forged.returncode, 0, forged.stderr)
        a.cli("contact", "add", forged.stdout.strip())
        self.assertEqual(a.json("contact", "show", "bob")["addrs"], [c.listen])
        r = a.cli("ping", "bob", check=False)
        self.assertEqual(r.returncode, EXIT_FAIL, r.stdout + r.stderr)
        self.assertIn("the node at %s is not bob" % c.listen, r.stderr)
        self.assertIn("peer's card refused", a.log())
        self.assertEqual([p for p in a.json("status")["peers"] if p["state"] == "up"], [])
        # A note for Bob is not handed to Carol: it stays queued on Alice.
        msg_id = self.send(a, "bob", "for bob only")
        wait_for("two delivery attempts", lambda: outbox(a) and outbox(a)[0]["attempts"] >= 2,
                 10)
        self.assertEqual(out_state(a, msg_id)["state"], "queued")
        self.assertEqual(messages(c), [])

    def test_ping_node_down(self):
        a, b = self.nodes_up("alice", "bob")
        self.befriend(a, b)
        b.stop()
        r = a.cli("ping", "bob", check=False)
        self.assertEqual(r.returncode, EXIT_FAIL, r.stdout + r.stderr)
        self.assertIn("connection refused", r.stderr)
        self.assertIn(b.listen, r.stderr)

    def test_ping_silent_listener_times_out(self):
        """Something accepts TCP at Bob's address but never answers the
        handshake: the ping fails after Alice's handshake timeout."""
        a, b = self.nodes_up("alice", "bob", config={"alice": {"handshake_timeout_ms": 500}},
                             start=False)
        a.start()
        a.cli("contact", "add", b.card(), "--alias", "bob")
        silent = socket.socket()
        silent.bind(("127.0.0.1", b.port()))
        silent.listen(8)  # the kernel completes connects; nobody reads
        try:
            t0 = time.monotonic()
            r = a.cli("ping", "bob", check=False)
            dt = time.monotonic() - t0
        finally:
            silent.close()
        self.assertEqual(r.returncode, EXIT_FAIL, r.stdout + r.stderr)
        self.assertIn("timed out", r.stderr)
        self.assertLess(dt, 5)
        self.assertIn("handshake timed out", a.log())


class Messages(TransportTestCase):
    def test_exchange_between_two_nodes(self):
        a, b = self.nodes_up("alice", "bob")
        self.befriend(a, b)
        r = a.cli("message", "bob", "hi")
        m = re.search(r"queued note to bob \(id ([0-9a-f]{32})\)", r.stdout)
        self.assertIsNotNone(m, r.stdout)
        hi = m.group(1)
        sent = self.wait_out_state(a, hi, "delivered")
        self.assertEqual((sent["text"], sent["contact"], sent["alias"], sent["error"]),
                         ("hi", b.text_id(), "bob", None))
        self.assert_received_once(b, a, hi, "hi")
        self.assertEqual(messages(b, "in")[0]["alias"], "alice")
        # The other way, with text that must survive byte for byte.
        text = "h\u00e9llo back\nsecond line \u2764"
        back = self.send(b, "alice", text)
        self.wait_out_state(b, back, "delivered")
        self.assert_received_once(a, b, back, text)
        for n in (a, b):
            self.assertEqual(outbox(n), [])
            st = n.json("status")
            self.assertEqual((st["outbox"], st["messages"]), (0, 2))
            # The counters: one note each way (a resend would add to them).
            s = st["stats"]
            self.assertGreaterEqual(s["envelopes_sent"], 1, s)
            self.assertGreaterEqual(s["envelopes_received"], 1, s)
            self.assertGreaterEqual(s["frames_sent"], s["envelopes_sent"] + 1, s)  # + HELLO, ACK
            self.assertGreaterEqual(s["frames_received"], s["envelopes_received"] + 1, s)
            self.assertGreaterEqual(s["commits"], 2, s)
            self.assertGreaterEqual(s["writes"], 1, s)
            self.assertGreater(s["commit_us"], 0, s)

    def test_both_send_at_once(self):
        """No link yet and both sides send at the same moment: both may dial
        (two links between the same pair); every note arrives once."""
        a, b = self.nodes_up("alice", "bob")
        self.befriend(a, b)
        sent = {a.name: {}, b.name: {}}

        def burst(src, dst):
            for i in range(5):
                text = "%s to %s %d" % (src.name, dst.name, i)
                sent[src.name][self.send(src, dst.name, text)] = text

        threads = [threading.Thread(target=burst, args=(a, b)),
                   threading.Thread(target=burst, args=(b, a))]
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
        for src, dst in ((a, b), (b, a)):
            self.assertEqual(len(sent[src.name]), 5)
            for msg_id, text in sent[src.name].items():
                self.wait_out_state(src, msg_id, "delivered")
                self.assert_received_once(dst, src, msg_id, text)
            self.assertEqual(len(messages(dst, "in")), 5)

    def test_note_from_non_contact_is_refused(self):
        a, c = self.nodes_up("alice", "carol")
        a.cli("contact", "add", c.card(), "--alias", "carol")  # Carol does not know Alice
        msg_id = self.send(a, "carol", "hello stranger")
        failed = self.wait_out_state(a, msg_id, "failed")
        self.assertIn("refused", failed["error"])
        self.assertEqual(outbox(a), [])  # a rejection ends delivery at once
        self.assertEqual(messages(c), [])
        self.assertIn("envelope rejected: refused", c.log())

    def test_note_from_blocked_contact_is_refused(self):
        a, b = self.nodes_up("alice", "bob")
        self.befriend(a, b)
        b.cli("contact", "set", "alice", "--block")
        msg_id = self.send(a, "bob", "let me in")
        failed = self.wait_out_state(a, msg_id, "failed")
        self.assertIn("refused", failed["error"])
        self.assertEqual(messages(b), [])


class Retry(TransportTestCase):
    def test_receiver_down_then_up_delivered_once(self):
        a, b = self.nodes_up("alice", "bob", config={"alice": {"retry_max_ms": 2000}})
        self.befriend(a, b)
        self.assertEqual(b.stop(), 0)
        msg_id = self.send(a, "bob", "while you were out")
        self.assertEqual(a.json("status")["outbox"], 1)
        first = wait_for("a retry", lambda: [e["attempts"] for e in outbox(a)
                                            if e["attempts"] >= 2], 10)[0]
        wait_for("attempts to grow past %d" % first,
                 lambda: outbox(a)[0]["attempts"] > first, 10)
        ob = outbox(a)
        self.assertEqual(len(ob), 1)
        self.assertEqual((ob[0]["msg_id"], ob[0]["to"], ob[0]["type"]),
                         (msg_id, b.text_id(), "note"))
        # Why it is still queued: Bob's port refuses connections.
        wait_for("the dial failure in last_error",
                 lambda: (outbox(a)[0]["last_error"] or "").startswith("cannot reach it:"), 10)
        self.assertIn("refused", outbox(a)[0]["last_error"])
        self.assertEqual(out_state(a, msg_id)["state"], "queued")
        b.start()
        self.wait_out_state(a, msg_id, "delivered")
        self.assertEqual(outbox(a), [])
        self.assertEqual(a.json("status")["outbox"], 0)
        time.sleep(1.0)  # room for a late duplicate to show up
        self.assert_received_once(b, a, msg_id, "while you were out")
        self.assertEqual(len(messages(b)), 1)


    def test_unacknowledged_envelope_is_resent_on_a_live_link(self):
        """§10: without an ACK ("no connection, connection lost, no answer")
        the sender retries with backoff.  The peer here (tf-testtool
        no-ack-peer, holding Quinn's identity) keeps the link up, answers
        HELLO and PING, takes the envelope and never ACKs it: Alice must send
        it again on that link (it is the receiver's way to make the sender
        retry when its commit failed: node/net.h tf_node_net_committed)."""
        (a,) = self.nodes_up("alice", config={"alice": {"retry_max_ms": 2000}})
        (q,) = self.nodes_up("quinn", start=False)
        a.cli("contact", "add", q.card(), "--alias", "quinn")
        peer = subprocess.Popen([TESTTOOL, "no-ack-peer", q.listen, "--home", q.home,
                                 "--hold-ms", "7000"],
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        try:
            self.assertEqual(read_line(peer.stdout, 20).strip(), "listening")
            msg_id = self.send(a, "quinn", "hello?")
            out, err = peer.communicate(timeout=30)
        finally:
            if peer.poll() is None:
                peer.kill()
                peer.wait()
        self.assertEqual(peer.returncode, 0, out + err)
        m = re.search(r"(\d+) connections, (\d+) envelopes, (\d+) distinct msg ids, "
                      r"at most (\d+) copies", out)
        self.assertIsNotNone(m, out)
        self.assertEqual(int(m.group(3)), 1, out)
        self.assert_nodes_alive()
        self.assertGreaterEqual(int(m.group(4)), 2,
                                "an envelope sent on a link that stays up and never ACKs it "
                                "is not sent again (7 s, retry_max_ms = 2000): " + out.strip()
                                + "; outbox: " + a.cli("--json", "outbox", check=False).stdout)
        self.assertEqual(out_state(a, msg_id)["state"], "queued")

    def test_frozen_receiver(self):
        """Bob is frozen (SIGSTOP) while the link is up: Alice's idle timeout
        drops the link, her dials time out in the handshake, she keeps
        retrying; once Bob runs again the note arrives exactly once (Bob may
        also read the copy sent on the dead link)."""
        a, b = self.nodes_up("alice", "bob", config={"alice": {
            "retry_max_ms": 2000, "idle_timeout_ms": 1000, "handshake_timeout_ms": 500}})
        self.befriend(a, b)
        self.ping_ok(a, "bob")  # the link is up
        os.kill(b.proc.pid, signal.SIGSTOP)
        try:
            msg_id = self.send(a, "bob", "wake up")
            a.wait_log("idle timeout", 10)
            wait_for("retries", lambda: outbox(a) and outbox(a)[0]["attempts"] >= 3, 15)
            self.assertEqual(out_state(a, msg_id)["state"], "queued")
        finally:
            os.kill(b.proc.pid, signal.SIGCONT)
        self.wait_out_state(a, msg_id, "delivered")
        time.sleep(0.5)
        self.assert_received_once(b, a, msg_id, "wake up")
        self.assertEqual(len(messages(b)), 1)

    def test_dead_link_no_ack(self):
        """Bob freezes (SIGSTOP) with the link up: the note Alice sends gets
        no ACK, so she closes the link within dead_link_ms (and not before),
        though the idle timeout is far; her redials time out in the
        handshake; once Bob runs again the note arrives exactly once."""
        dead = 1500
        a, b = self.nodes_up("alice", "bob", config={"alice": {
            "dead_link_ms": dead, "retry_max_ms": 2000, "handshake_timeout_ms": 500}})
        self.befriend(a, b)
        self.ping_ok(a, "bob")  # the link is up
        os.kill(b.proc.pid, signal.SIGSTOP)
        try:
            t0 = time.monotonic()
            msg_id = self.send(a, "bob", "are you there")
            a.wait_log("no ACK for envelopes in flight within %d ms (dead_link_ms)" % dead, 10)
            elapsed = (time.monotonic() - t0) * 1000
            self.assertGreaterEqual(elapsed, dead - 100)
            self.assertLess(elapsed, dead + 2000, "the dead link was closed late")
            self.assertNotIn("idle timeout", a.log())
            self.assertEqual(out_state(a, msg_id)["state"], "queued")
        finally:
            os.kill(b.proc.pid, signal.SIGCONT)
        self.wait_out_state(a, msg_id, "delivered")
        time.sleep(0.5)
        self.assert_received_once(b, a, msg_id, "are you there")
        self.assertGreaterEqual(a.json("status")["limits"]["dead"], 1)

    def test_dead_link_no_pong(self):
        """A quiet link gets a keepalive PING after a third of the idle
        timeout; Bob is frozen, so no PONG comes and Alice closes the link
        dead_link_ms later, before the idle timeout would.  After Bob runs
        again, a ping reaches him over a new link."""
        dead = 1500
        a, b = self.nodes_up("alice", "bob", config={"alice": {
            "dead_link_ms": dead, "idle_timeout_ms": 3000, "handshake_timeout_ms": 500}})
        self.befriend(a, b)
        self.ping_ok(a, "bob")
        os.kill(b.proc.pid, signal.SIGSTOP)
        try:
            t0 = time.monotonic()
            a.wait_log("no PONG to our PING within %d ms (dead_link_ms)" % dead, 10)
            elapsed = (time.monotonic() - t0) * 1000
            # Keepalive after 1 s of silence, then dead_link_ms for its PONG.
            self.assertLess(elapsed, 1000 + dead + 1500, "the dead link was closed late")
            self.assertNotIn("idle timeout", a.log())
        finally:
            os.kill(b.proc.pid, signal.SIGCONT)
        self.ping_ok(a, "bob")

    def test_blocked_contact_link_is_a_strangers(self):
        """Bob blocks Alice while her link is up: from his next timer tick
        the link is a stranger's, so with no envelope for stranger_idle_ms
        it is closed (a contact's link is not)."""
        a, b = self.nodes_up("alice", "bob", config={"bob": {
            "stranger_idle_ms": 1000, "idle_timeout_ms": 3000}})
        self.befriend(a, b)
        self.ping_ok(a, "bob")
        time.sleep(2.5)  # two of Bob's ticks: a contact's quiet link stays
        self.assertNotIn("stranger sent no envelope", b.log())
        self.assertEqual(b.json("status")["limits"]["links_in"], 1)
        b.cli("contact", "set", "alice", "--block")
        b.wait_log("stranger sent no envelope", 5)
        self.assertEqual(b.json("status")["limits"]["stranger_idle"], 1)

    def test_in_flight_window_of_one(self):
        """max_in_flight = 1: each ACK releases the next envelope."""
        a, b = self.nodes_up("alice", "bob", config={"alice": {"max_in_flight": 1}})
        self.befriend(a, b)
        ids = {}
        for i in range(10):
            ids[self.send(a, "bob", "window %d" % i)] = "window %d" % i
        for msg_id in ids:
            self.wait_out_state(a, msg_id, "delivered")
        for msg_id, text in ids.items():
            self.assert_received_once(b, a, msg_id, text)
        self.assertEqual(outbox(a), [])

    def test_older_envelopes_go_first(self):
        """A queue drains oldest first (by the second it was queued in):
        newer envelopes never overtake older ones, so none waits for ever
        behind a busy peer's window."""
        a, b = self.nodes_up("alice", "bob", config={"alice": {"max_in_flight": 1,
                                                               "retry_max_ms": 2000}})
        self.befriend(a, b)
        self.assertEqual(b.stop(), 0)
        old = [self.send(a, "bob", "old %d" % i) for i in range(5)]
        time.sleep(1.1)
        new = [self.send(a, "bob", "new %d" % i) for i in range(5)]
        b.start()
        for msg_id in old + new:
            self.wait_out_state(a, msg_id, "delivered")
        got = received_order(b, 10)
        self.assertEqual(sorted(got[:5]), sorted(old), got)
        self.assertEqual(sorted(got[5:]), sorted(new), got)


class Crash(TransportTestCase):
    def test_kill9_sender_right_after_queueing(self):
        a, b = self.nodes_up("alice", "bob", config={"alice": {"retry_max_ms": 2000}})
        self.befriend(a, b)
        self.assertEqual(b.stop(), 0)  # so the note cannot leave before the kill
        msg_id = self.send(a, "bob", "queued, then killed")
        a.kill9()
        a.start()
        ob = outbox(a)
        self.assertEqual([e["msg_id"] for e in ob], [msg_id])
        self.assertEqual(out_state(a, msg_id)["state"], "queued")
        b.start()
        self.wait_out_state(a, msg_id, "delivered")
        self.assertEqual(outbox(a), [])
        self.assert_received_once(b, a, msg_id, "queued, then killed")

    def test_kill9_sender_mid_burst_to_a_live_receiver(self):
        """The receiver is up: some notes may be stored (and even ACKed)
        before the kill; after the restart each arrives exactly once."""
        a, b = self.nodes_up("alice", "bob", config={"alice": {"retry_max_ms": 2000}})
        self.befriend(a, b)
        ids = {}
        for i in range(6):
            text = "burst %d" % i
            ids[self.send(a, "bob", text)] = text
        a.kill9()
        a.start()
        for msg_id in ids:
            self.wait_out_state(a, msg_id, "delivered")
        self.assertEqual(outbox(a), [])
        time.sleep(0.5)
        for msg_id, text in ids.items():
            self.assert_received_once(b, a, msg_id, text)
        self.assertEqual(len(messages(b)), len(ids))

    def test_kill9_receiver_after_commit_before_ack(self):
        a, b = self.nodes_up("alice", "bob", config={"alice": {"retry_max_ms": 2000}})
        self.befriend(a, b)
        b.stop()
        b.start(env={"TWOFOLD_TEST_CRASH": "after-receive-commit"})
        msg_id = self.send(a, "bob", "crash after commit")
        rc = b.wait_exit(20)
        self.assertEqual(rc, -9, "bob should have SIGKILLed itself")
        self.assertIn("test hook: crashing after the commit", b.log())
        # No ACK went out: Alice still holds the note.
        self.assertEqual([e["msg_id"] for e in outbox(a)], [msg_id])
        self.assertEqual(out_state(a, msg_id)["state"], "queued")
        b.start()  # without the hook
        self.wait_out_state(a, msg_id, "delivered")
        self.assertEqual(outbox(a), [])
        time.sleep(0.5)
        self.assert_received_once(b, a, msg_id, "crash after commit")
        # Stored once, by the first run; the retry was only ACKed.
        self.assertEqual(b.log().count("note from %s stored" % a.text_id()), 1, b.log())


class Hostile(TransportTestCase):
    """tf-testtool plays the hostile peer against Bob's listener; each is cut
    off, Bob keeps running, and afterwards Alice's ping still reaches Bob over
    a new inbound link (Alice has no link to Bob before: a ping reuses an up
    link, which would prove nothing)."""

    def target(self, **config):
        a, b = self.nodes_up("alice", "bob", config={"bob": config} if config else None)
        self.befriend(a, b)
        return a, b

    def hostile(self, b, mode, *args, home=None):
        extra = ["--home", home] if home else []
        r = testtool("hostile", b.listen, *extra, mode, *args)
        self.assertEqual(r.returncode, 0, "tf-testtool hostile %s: %s%s" % (
            mode, r.stdout, r.stderr))
        self.assertIsNone(b.proc.poll(), "bob died")
        return r.stdout

    def still_serves(self, a, b):
        ups = b.log().count("up with %s (inbound)" % a.text_id())
        self.ping_ok(a, "bob")
        self.assertEqual(b.log().count("up with %s (inbound)" % a.text_id()), ups + 1)

    def test_random_bytes(self):
        a, b = self.target()
        for _ in range(3):
            out = self.hostile(b, "random")  # mostly an oversized length header
            self.assertIn("node closed the connection", out)
        # In one frame of acceptable length: reaches the Noise layer.
        out = self.hostile(b, "random", "--framed", "--count", 100)
        self.assertIn("node closed the connection", out)
        self.assertIn("unexpected payload in handshake message 1", b.log())
        out = self.hostile(b, "random", "--framed", "--count", 20)  # shorter than e
        self.assertIn("node closed the connection", out)
        self.still_serves(a, b)

    def test_half_handshake_times_out(self):
        a, b = self.target(handshake_timeout_ms=500)
        out = self.hostile(b, "half-handshake", "--timeout-ms", 10000)
        m = re.search(r"got message 2 \(\d+ bytes\); node closed the connection after (\d+) ms",
                      out)
        self.assertIsNotNone(m, out)
        self.assertGreaterEqual(int(m.group(1)), 400, out)
        self.assertLess(int(m.group(1)), 3000, out)
        self.assertIn("handshake timed out", b.log())
        self.still_serves(a, b)

    def test_huge_length_prefix(self):
        a, b = self.target()
        out = self.hostile(b, "huge-frame")
        self.assertIn("node closed the connection", out)
        self.assertIn("frame length refused", b.log())
        self.still_serves(a, b)

    def test_garbage_after_valid_handshake(self):
        a, b = self.target()
        (mallory,) = self.nodes_up("mallory", start=False)  # a stranger's identity
        out = self.hostile(b, "garbage-after-handshake", home=mallory.home)
        self.assertIn("link up with %s" % b.text_id(), out)
        self.assertIn("undecryptable frame: node closed", out)
        self.assertIn("undecodable message: ERROR (reason 1), node closed", out)
        log = b.log()
        self.assertIn("up with %s (inbound)" % mallory.text_id(), log)
        self.assertIn("frame does not decrypt", log)
        self.assertIn("bad link message", log)
        self.still_serves(a, b)

    def test_envelopes_refused_with_reasons(self):
        """Mallory (a stranger) completes a real handshake, then sends
        envelopes Bob must refuse, each ACKed with its §9 reason: one sealed
        and signed by Alice (a contact of Bob's) but sent over Mallory's link
        (6), her own note (7, not a contact), expired (3), addressed to
        herself (2), a type Bob does not take (8).  Nothing is stored."""
        a, b = self.target()
        (mallory,) = self.nodes_up("mallory", start=False)
        out = self.hostile(b, "bad-envelopes", "--from-home", a.home, home=mallory.home)
        self.assertEqual(out.strip(), "bad-envelopes: not-peer=1/6 not-a-contact=1/7 "
                         "expired=1/3 not-for-me=1/2 invalid-body=1/9")
        self.assertEqual(messages(b), [])
        self.assertEqual(b.json("status")["messages"], 0)
        self.still_serves(a, b)

    def test_peer_vanishing_mid_reply(self):
        """A peer sends PINGs and closes without reading the PONGs: writing
        to the closed connection must only end that link (EPIPE), not kill
        the node (SIGPIPE, exit -13)."""
        a, b = self.target()
        (mallory,) = self.nodes_up("mallory", start=False)
        r = testtool("hostile", b.listen, "--home", mallory.home, "ping-and-vanish",
                     "--count", 20)
        time.sleep(0.2)
        self.assertIsNone(b.proc.poll(), "bob died (exit %s) when a peer closed a link "
                          "it was writing to; tf-testtool: %s%s" % (
                              b.proc.poll(), r.stdout, r.stderr))
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        self.still_serves(a, b)

    def test_connection_flood(self):
        """100 connections held open against max_connections_per_ip = 8: the
        excess is closed at once.  The flood comes from 127.0.0.2 (loopback
        takes all of 127.0.0.0/8), so Alice's ping, which reaches Bob from
        127.0.0.1, is not under the flood's per-address cap and must get
        through while the flood is held."""
        probe = socket.socket()
        try:
            probe.bind(("127.0.0.2", 0))
        except OSError as e:
            self.skipTest("cannot bind 127.0.0.2: %s" % e)
        finally:
            probe.close()
        a, b = self.target(max_connections_per_ip=8)
        flood = subprocess.Popen([TESTTOOL, "hostile", b.listen, "flood", "--count", "100",
                                  "--source-ip", "127.0.0.2", "--hold-ms", "4000",
                                  "--expect-open", "8"],
                                 stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        try:
            line = read_line(flood.stdout, 20)
            self.assertEqual(line.strip(), "connected 100")
            self.still_serves(a, b)  # during the flood
            out, err = flood.communicate(timeout=30)
        finally:
            if flood.poll() is None:
                flood.kill()
                flood.wait()
        self.assertEqual(flood.returncode, 0, out + err)
        m = re.search(r"node closed (\d+) \(the last after (\d+) ms\), (\d+) still open", out)
        self.assertIsNotNone(m, out)
        self.assertEqual((int(m.group(1)), int(m.group(3))), (92, 8), out)
        self.assertLess(int(m.group(2)), 2000, "the excess was not closed at once: " + out)
        # Over the per-address cap, the oldest handshake from that address
        # makes room (a newcomer from behind the same address may be a
        # contact); the accept rate refuses the rest of the burst.
        self.assertIn("max_connections_per_ip full: closed to make room", b.log())
        self.assertIn("refused: over the accept rate", b.log())
        self.assertIsNone(b.proc.poll())
        self.ping_ok(a, "bob")  # and after it
        # Each of the 92 was closed by one budget: the accept rate (at most
        # 40 at once from one address) or the per-address cap.
        limits = b.json("status")["limits"]
        self.assertEqual(limits["accept_limited"] + limits["evicted"], 92, limits)
        self.assertGreaterEqual(limits["accept_limited"], 1, limits)
        self.assertGreaterEqual(limits["evicted"], 1, limits)

    def test_handshake_flood(self):
        """30 connections that never start the handshake, against
        max_inbound_handshakes = 8 (and a per-address cap out of the way):
        the oldest handshakes are closed as new ones arrive, 8 stay open,
        and Alice, who connects during the flood, gets a slot and her ping
        is answered."""
        probe = socket.socket()
        try:
            probe.bind(("127.0.0.2", 0))
        except OSError as e:
            self.skipTest("cannot bind 127.0.0.2: %s" % e)
        finally:
            probe.close()
        a, b = self.target(max_inbound_handshakes=8, max_connections_per_ip=100)
        flood = subprocess.Popen([TESTTOOL, "hostile", b.listen, "flood", "--count", "30",
                                  "--source-ip", "127.0.0.2", "--hold-ms", "4000",
                                  "--expect-open", "7"],
                                 stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        try:
            line = read_line(flood.stdout, 20)
            self.assertEqual(line.strip(), "connected 30")
            self.ping_ok(a, "bob")  # during the flood: evicts one more handshake
            out, err = flood.communicate(timeout=30)
        finally:
            if flood.poll() is None:
                flood.kill()
                flood.wait()
        m = re.search(r"node closed (\d+) \(the last after (\d+) ms\), (\d+) still open", out)
        self.assertIsNotNone(m, out + err)
        # 22 closed as the flood arrived, one more for Alice's connection.
        self.assertEqual((int(m.group(1)), int(m.group(3))), (23, 7), out)
        self.assertIn("max_inbound_handshakes full: closed to make room", b.log())
        self.assertGreaterEqual(b.json("status")["limits"]["evicted"], 23)


if __name__ == "__main__":
    unittest.main()
