# SPDX-License-Identifier: MIT
"""Integration tests of what a person reads without --json (docs/twofold.1):
`show` of an intro proposed to you, the inbox's open items (an intro the
policy accepted stays in view until it is over), names instead of ids in
contact list/show and watch, and propose's sentence.  Real twofoldd
processes on loopback, driven by the real CLI.
"""
import json
import os
import re
import signal
import subprocess
import sys
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import TWOFOLD, NodeTestCase, wait_for  # noqa: E402

WAIT = 20.0


def squeeze(text):
    return re.sub(" +", " ", text)


class ReadableTestCase(NodeTestCase):
    def test_a_person_reads_an_intro_from_both_sides(self):
        carol, alice, bob = self.cast3()
        with open(os.path.join(bob.home, "policy"), "w") as f:
            f.write("accept when connector trust >= known\nask\n")
        bob.cli("policy", "reload")

        out = carol.cli("propose", "alice", "bob", "--topic", "law", "--note-a",
                        "Bob needs a lawyer.", "--note-b", "Alice is one.").stdout
        m = re.fullmatch(r"proposed intro ([0-9a-f]{12}): alice and bob are each asked "
                         r"privately, and are introduced only if both accept \(follow it with: "
                         r"twofold show \1\)\n", out)
        self.assertIsNotNone(m, out)
        short = m.group(1)
        iid = carol.json("show", short)["id"]

        # Bob's policy accepted: his default inbox still shows it, with the rule.
        wait_for("Bob's item", lambda: bob.json("inbox"), WAIT)
        item = bob.json("inbox")[0]
        self.assertEqual((item["id"], item["state"], item["decided_by"]),
                         (iid, "accepted", "policy:1"))
        text = squeeze(bob.cli("inbox").stdout)
        self.assertIn("%s carol law accepted policy:1 Alice is one." % short, text)
        # Alice's waits for her; once she answers it leaves her default inbox.
        wait_for("Alice's item", lambda: alice.json("inbox"), WAIT)
        text = squeeze(alice.cli("inbox").stdout)
        self.assertIn("%s carol law pending - Bob needs a lawyer." % short, text)
        show = squeeze(alice.cli("show", short).stdout)
        for line in ("id %s\n" % iid, "proposed by carol\n", "state pending\n",
                     "note to you Bob needs a lawyer.\n", "expires in 1"):
            self.assertIn(line, show)
        alice.cli("accept", short, "--note", "Happy to help")
        self.assertEqual(alice.json("inbox"), [])
        self.assertEqual(len(alice.json("inbox", "--all")), 1)

        wait_for("introduced at Bob", lambda: bob.json("show", short)["state"] == "introduced",
                 WAIT)
        show = squeeze(bob.cli("show", short).stdout)
        for line in ("state introduced\n", "decided by policy:1\n", "their note Happy to help\n",
                     "introduced to \"Alice\" %s\n" % alice.text_id()[:12]):
            self.assertIn(line, show)
        self.assertEqual(bob.json("inbox"), [])  # over: only with --all
        # Names, not ids: who introduced whom, and the watch.
        alice_id = alice.text_id()
        lines = bob.cli("contact", "list").stdout.splitlines()
        self.assertTrue(lines[0].endswith("INTRODUCED BY"), lines)
        self.assertTrue(any(" Alice " in l and l.endswith("carol") for l in lines), lines)
        show = squeeze(bob.cli("contact", "show", alice_id).stdout)
        self.assertIn("introduced by carol\n", show)
        self.assertIn("intro %s\n" % short, show)
        w = subprocess.Popen([TWOFOLD, "--home", bob.home, "watch", "--since", "0"],
                             stdout=subprocess.PIPE, text=True)
        try:
            deadline = time.monotonic() + WAIT
            got = ""
            while time.monotonic() < deadline and "inbox.introduced" not in got:
                got += w.stdout.readline()
        finally:
            w.send_signal(signal.SIGINT)
            w.wait(10)
            w.stdout.close()
        self.assertIn("inbox.introduced  id=%s  other=\"Alice\" %s" % (short, alice_id[:12]), got)
        self.assertIn("contact.added  contact=carol", got)
        self.assertNotIn(alice_id, got)

    def test_a_name_a_peer_chose_never_reads_as_an_alias(self):
        # Mallory calls itself "carol", the alias Alice gave the real Carol,
        # and proposes an intro to Alice as a stranger.
        carol, alice, bob = self.cast3()
        mallory = self.node("mallory", port=True)
        mallory.init("carol")
        mallory.start()
        mallory.cli("contact", "add", alice.card(), "--alias", "alice")
        mallory.cli("contact", "add", bob.card(), "--alias", "bob")
        m_id = mallory.text_id()[:12]
        real = carol.json("propose", "alice", "bob", "--topic", "law")["id"][:12]
        fake = mallory.json("propose", "alice", "bob", "--topic", "tax")["id"][:12]
        wait_for("both items", lambda: len(alice.json("inbox")) == 2, WAIT)

        lines = squeeze(alice.cli("inbox").stdout).splitlines()
        self.assertIn("%s carol law pending" % real, "\n".join(lines))
        row = [l for l in lines if l.startswith(fake)]
        self.assertEqual(len(row), 1, lines)
        self.assertTrue(row[0].startswith('%s "carol" %s (stranger, not your carol) tax pending '
                                          % (fake, m_id)), row)
        show = squeeze(alice.cli("show", fake).stdout)
        self.assertIn('proposed by "carol" %s (stranger, not your carol)\n' % m_id, show)
        self.assertIn("proposed by carol\n", squeeze(alice.cli("show", real).stdout))

        # Added without an alias, Mallory is a contact, but its name still
        # is not Alice's "carol".
        alice.cli("contact", "add", mallory.card())
        row = [l for l in squeeze(alice.cli("inbox").stdout).splitlines() if l.startswith(fake)]
        self.assertEqual(len(row), 1, row)
        self.assertTrue(row[0].startswith('%s "carol" %s (not your carol) tax pending ' %
                                          (fake, m_id)), row)
        out = alice.cli("decline", fake).stdout
        self.assertEqual(out, 'declined intro %s from "carol" %s (not your carol) on tax\n'
                         % (fake, m_id))

    def test_a_misspelt_alias_gets_a_suggestion(self):
        carol, alice, bob = self.cast3()
        r = carol.cli("--json", "propose", "alcie", "bob", "--topic", "law", check=False)
        self.assertEqual(r.returncode, 1)
        self.assertIn("no contact called 'alcie' (did you mean 'alice'? see: twofold contact "
                      "list)", r.stderr)
        err = json.loads(r.stdout)["error"]
        self.assertEqual((err["name"], err["exit"]), ("E_NOT_FOUND", 1))
        r = carol.cli("contact", "show", "bbo", check=False)
        self.assertIn("(did you mean 'bob'?", r.stderr)
        r = carol.cli("contact", "show", "zzzzzz", check=False)
        self.assertIn("no contact called 'zzzzzz' (see: twofold contact list)", r.stderr)
        self.assertEqual(carol.json("intros"), [])


if __name__ == "__main__":
    unittest.main()
