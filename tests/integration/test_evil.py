# SPDX-License-Identifier: MIT
"""A malicious connector against real nodes (docs/PROTOCOL.md §8, "The
materialisation check"; §11, the party's "introduction").

Mallory is a home with no daemon: tf-evil (tests/integration/tf_evil.c) plays
her with her key, as a connector that cheats.  Alice, Bob and Dave are real
twofoldd nodes on free loopback ports, each holding Mallory's card as a
contact.  Mallory proposes

  X = (a: Alice, b: Bob)    to both,
  Y = (a: Alice, b: Dave)   to both, with Alice's salt of X (the same
                            commitment to Alice in both intros),
  Z = (a: Dave,  b: Bob)    to Bob only, with Bob's salt of X,

and everyone accepts; then Bob revokes his acceptance of X (a decline).
tf-evil's listener keeps every reply the nodes deliver to Mallory's address.
Mallory then sends introductions built from them, one at a time:

  (a) X to Alice with a Bob acceptance Mallory signed herself  -> E_REPLY_SIG
  (b) X to Alice with Bob's acceptance of Z                    -> E_REPLY_INTRO
  (c) X to Alice with the two acceptances swapped              -> E_COMMITMENT
  (d) X to Alice with Bob's decline in place of his accept     -> E_REPLY_DECLINE
  (e) Y to Dave with Alice's acceptance of X                   -> E_REPLY_INTRO

(the first failing check in the order of §8).  Each must be ACKed rejected
with reason 9 (invalid body), add nobody to the victim's contacts, leave the
inbox item "accepted", and be logged with its reason.  Finally the correct
introductions of X (to Alice) and Y (to Dave) must materialise, with Mallory
as introducer: the refusals were for the reasons tested, not a broken tool.
"""
import os
import re
import signal
import subprocess
import sys
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import NodeTestCase, wait_for  # noqa: E402

EVIL = os.environ.get("TF_EVIL", "tf-evil")
WAIT = 15.0
ACK_RE = re.compile(r"ack (\d+)/(\d+) ")
REJECTED, INVALID_BODY = 1, 9
REFUSED = "refused, nothing added: "


class EvilConnectorTest(NodeTestCase):
    def setUp(self):
        super().setUp()
        self.listener = None
        self.listener_out = None

    def tearDown(self):
        self.stop_listener()
        super().tearDown()

    # tf-evil -----------------------------------------------------------
    def evil(self, verb, *args):
        cmd = [EVIL, verb, "--home", self.mallory.home, "--listen", self.mallory.listen,
               "--dir", self.work] + [str(a) for a in args]
        r = subprocess.run(cmd, capture_output=True, text=True, timeout=60)
        self.assertEqual(r.returncode, 0, "%s failed (%d):\nstdout: %s\nstderr: %s\n%s" % (
            " ".join(cmd[:2]), r.returncode, r.stdout, r.stderr, self.listener_log()))
        return r.stdout

    def start_listener(self):
        self.listener_out = os.path.join(self.root, "evil-listener.out")
        with open(self.listener_out, "wb") as out:
            self.listener = subprocess.Popen(
                [EVIL, "listen", "--home", self.mallory.home, "--listen", self.mallory.listen,
                 "--dir", self.work], stdout=out, stderr=subprocess.STDOUT)
        wait_for("tf-evil to listen", lambda: "listening" in self.listener_log()
                 or self.listener.poll() is not None, 10)
        self.assertIsNone(self.listener.poll(), self.listener_log())

    def stop_listener(self):
        if self.listener is None:
            return None
        if self.listener.poll() is None:
            self.listener.send_signal(signal.SIGTERM)
            try:
                self.listener.wait(10)
            except subprocess.TimeoutExpired:
                self.listener.kill()
                self.listener.wait()
        rc = self.listener.returncode
        self.listener = None
        return rc

    def listener_log(self):
        if self.listener_out is None or not os.path.exists(self.listener_out):
            return ""
        with open(self.listener_out, errors="replace") as f:
            return "----- tf-evil listener -----\n" + f.read()

    def propose(self, name, a, b, *extra):
        out = self.evil("propose", "--intro", name,
                        "--a", a.card(), "--a-addr", a.listen,
                        "--b", b.card(), "--b-addr", b.listen, *extra)
        m = re.search(r"^intro %s id ([0-9a-f]{64})$" % name, out, re.M)
        self.assertIsNotNone(m, out)
        self.assertNotIn("ack 1/", out)
        return m.group(1)

    def wait_reply(self, iid, side, decision):
        path = os.path.join(self.work, "reply-%s-%s-%s.bin" % (iid, side, decision))
        wait_for("Mallory to receive the %s of side %s of %s" % (decision, side, iid[:16]),
                 lambda: os.path.exists(path), WAIT)

    def introduce(self, name, to, reply_a, reply_b):
        """Sends an introduction of intro name to its side `to`; returns the
        ACK (status, reason) and tf-evil's line."""
        out = self.evil("introduce", "--intro", name, "--to", to,
                        "--reply-a", reply_a, "--reply-b", reply_b)
        m = ACK_RE.search(out)
        self.assertIsNotNone(m, out)
        return (int(m.group(1)), int(m.group(2))), out.strip()

    # The victims' view --------------------------------------------------
    @staticmethod
    def contacts(node):
        return {c["id"]: c for c in node.json("contact", "list")}

    @staticmethod
    def inbox_state(node, iid):
        items = [i for i in node.json("inbox", "--all") if i["id"] == iid]
        return items[0] if items else None

    def assert_refused(self, what, victim, name, to, reply_a, reply_b, iid, err, other):
        """One malicious introduction: ACK rejected/9, the reason logged,
        nobody added, the inbox item still only accepted."""
        before = victim.log().count(REFUSED)
        contacts_before = set(self.contacts(victim))
        ack, line = self.introduce(name, to, reply_a, reply_b)
        line = "%s: %s" % (what, line)
        self.assertEqual(ack, (REJECTED, INVALID_BODY),
                         "%s: want ACK rejected/invalid body\n%s" % (line, self.listener_log()))
        needle = "introduction %s %s%s (" % (iid[:16], REFUSED, err)
        victim.wait_log(needle, 5)
        self.assertEqual(victim.log().count(REFUSED), before + 1,
                         "%s: want exactly one more refusal logged" % line)
        after = self.contacts(victim)
        self.assertEqual(set(after), contacts_before, line)
        self.assertNotIn(other, after, "%s: %s materialised" % (line, other))
        item = self.inbox_state(victim, iid)
        self.assertEqual(item["state"], "accepted", "%s: %r" % (line, item))
        self.assertIsNone(item["other"], line)

    def assert_introduced(self, what, victim, name, to, reply_a, reply_b, iid, other):
        ack, line = self.introduce(name, to, reply_a, reply_b)
        line = "%s: %s" % (what, line)
        self.assertEqual(ack, (0, 0), "%s: the correct introduction was refused\n%s" % (
            line, victim.log()))
        c = self.contacts(victim).get(other)
        self.assertIsNotNone(c, "%s: %s not added" % (line, other))
        self.assertEqual(c["introduced_by"], self.ids["mallory"], "%s: %r" % (line, c))
        self.assertEqual(c["intro"], iid, "%s: %r" % (line, c))
        item = self.inbox_state(victim, iid)
        self.assertEqual(item["state"], "introduced", "%s: %r" % (line, item))
        self.assertEqual(item["other"], other, "%s: %r" % (line, item))

    # The test ------------------------------------------------------------
    def test_malicious_connector(self):
        t0 = time.monotonic()
        self.mallory = self.node("mallory", port=True)
        self.mallory.init("Mallory")
        victims = []
        for name in ("alice", "bob", "dave"):
            n = self.node(name, port=True)
            n.init()
            # A redelivery to Mallory's listener comes within about 2 s.
            with open(os.path.join(n.home, "config"), "w") as f:
                f.write("retry_max_ms = 2000\n")
            n.start()
            n.cli("contact", "add", self.mallory.card(), "--alias", "mallory")
            victims.append(n)
        alice, bob, dave = victims
        self.ids = {n.name: n.text_id() for n in [self.mallory] + victims}
        self.work = os.path.join(self.root, "evil")
        os.mkdir(self.work)
        self.start_listener()

        # Mallory proposes; everyone accepts; Bob then revokes X.
        x = self.propose("X", alice, bob)
        y = self.propose("Y", alice, dave, "--salt-a", "X:a")
        z = self.propose("Z", dave, bob, "--salt-b", "X:b", "--ask", "b")
        self.assertEqual(len({x, y, z}), 3)
        for victim, iid in ((alice, x), (alice, y), (bob, x), (bob, z), (dave, y)):
            wait_for("%s to receive %s" % (victim.name, iid[:16]),
                     lambda: self.inbox_state(victim, iid), WAIT)
            victim.cli("accept", iid, "--note", "hi from %s" % victim.name)
        for iid, side in ((x, "a"), (x, "b"), (y, "a"), (y, "b"), (z, "b")):
            self.wait_reply(iid, side, "accept")
        bob.cli("decline", x, "--reason", "changed my mind")
        self.wait_reply(x, "b", "decline")
        self.assertEqual(set(self.contacts(alice)), {self.ids["mallory"]})
        self.assertEqual(set(self.contacts(dave)), {self.ids["mallory"]})

        bob_id, alice_id = self.ids["bob"], self.ids["alice"]
        # (Plain asserts, not subTest: the harness dumps the node logs only
        # when the test itself fails.)
        self.assert_refused("(a) fabricated acceptance", alice, "X", "a",
                            "accept:X:a", "forge:X:b", x, "E_REPLY_SIG", bob_id)
        self.assert_refused("(b) a reply for another intro", alice, "X", "a",
                            "accept:X:a", "accept:Z:b", x, "E_REPLY_INTRO", bob_id)
        self.assert_refused("(c) replies swapped", alice, "X", "a",
                            "accept:X:b", "accept:X:a", x, "E_COMMITMENT", bob_id)
        self.assert_refused("(d) a decline presented as an accept", alice, "X", "a",
                            "accept:X:a", "decline:X:b", x, "E_REPLY_DECLINE", bob_id)
        self.assert_refused("(e) a reply reused for another pair", dave, "Y", "b",
                            "accept:X:a", "accept:Y:b", y, "E_REPLY_INTRO", alice_id)

        # Controls: the same tool, the real acceptances.
        self.assert_introduced("control: X to Alice", alice, "X", "a",
                               "accept:X:a", "accept:X:b", x, bob_id)
        self.assert_introduced("control: Y to Dave", dave, "Y", "b",
                               "accept:Y:a", "accept:Y:b", y, alice_id)

        self.assertEqual(self.stop_listener(), 0, self.listener_log())
        print("\nmalicious connector: 5 refusals and 2 controls in %.1f s" % (
            time.monotonic() - t0), file=sys.stderr)


if __name__ == "__main__":
    unittest.main()
