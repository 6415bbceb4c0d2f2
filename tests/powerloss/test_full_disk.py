#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""A full disk (tf-plfs's quota: writes past it fail with ENOSPC, statfs
reports the quota's free space): the node warns before it is full, then
refuses changes with a clear error (E_FULL to control requests, no ACK to
peers, who retry), acknowledges nothing it did not store, keeps serving
reads, and resumes by itself when space returns; `status` shows the map
size, the free space and the full state.

Skips (exit 77, saying why) where tf-plfs cannot run."""
import json
import os
import shutil
import sys
import tempfile
import time
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(HERE, "..", "integration"))
from harness import Node, free_port, wait_for  # noqa: E402
from plfs import SKIP, unavailable  # noqa: E402
from test_node_powerloss import CONFIG, PowerNode, messages  # noqa: E402

WARN = "the disk is nearly full"
FULL = "the disk is full (commit failed: No space left on device"
ROOM = "there is room again"
NOTES = 30


def served(node, *args, tries=100):
    """A read through the CLI (JSON).  While the disk is full, a read that
    shares a loop turn with a refused change is answered E_FULL (its answer
    could have shown what was not stored) and is asked again; it must be
    served within `tries`."""
    for _ in range(tries):
        r = node.cli("--json", *args, check=False)
        if r.returncode == 0:
            return json.loads(r.stdout)
        if '"E_FULL"' not in r.stdout or "ask again" not in r.stdout:
            raise AssertionError("%s: %s %s" % (args, r.stdout, r.stderr))
        time.sleep(0.05)
    raise AssertionError("%s not served in %d tries" % (args, tries))


class FullDiskTest(unittest.TestCase):
    def setUp(self):
        self.root = tempfile.mkdtemp(prefix="tf-full-")
        self.a = Node(self.root, "alice", "127.0.0.1:%d" % free_port())
        self.a.init()
        self.a.write_config(**CONFIG)
        self.b = PowerNode(self.root, "bob", 1)
        self.b.setup()
        self.a.start()
        self.b.start()
        self.a.cli("contact", "add", self.b.card(), "--alias", "bob")
        self.b.cli("contact", "add", self.a.card(), "--alias", "alice")

    def tearDown(self):
        for n in (self.a, self.b):
            if n.proc is not None:
                rc = n.stop()
                if rc != 0:
                    print(n.log()[-4000:])
                    self.fail("%s exited %s" % (n.name, rc))
        self.b.fs.unmount()
        shutil.rmtree(self.root, ignore_errors=True)

    def test_full_disk_refuses_then_resumes(self):
        a, b = self.a, self.b
        st = b.json("status")
        self.assertGreater(st["store_map_bytes"], 0)
        self.assertGreater(st["disk_total_bytes"], 0)
        self.assertFalse(st["store_full"])
        self.assertNotIn(WARN, b.log())
        # Room for a few more pages only: the next commits hit the quota.
        b.fs.ctl("quota %d" % (b.fs.stats()["used"] + 3 * 4096))
        self.assertLessEqual(b.json("status")["disk_free_bytes"], 3 * 4096)
        # The first commit that still fits warns (free < 64 MiB, the default).
        b.cli("contact", "set", "alice", "--add-tag", "friend")
        wait_for("the low-space warning", lambda: WARN in b.log(), 10)
        ids = [a.json("message", "bob", "note %d %s" % (i, "x" * 2000))["id"]
               for i in range(NOTES)]
        wait_for("bob full", lambda: served(b, "status")["store_full"], 20, 0.1)
        time.sleep(2)  # alice keeps retrying meanwhile
        # Control requests that change something: E_FULL, nothing stored.
        r = b.cli("--json", "message", "alice", "while full", check=False)
        self.assertEqual(r.returncode, 1, r.stdout + r.stderr)
        self.assertIn('"E_FULL"', r.stdout)
        self.assertIn("the disk is full", r.stdout)
        # Reads are served.
        self.assertEqual(len(served(b, "contact", "list")), 1)
        bob_msgs = served(b, "messages", "--limit", "1000")
        stored = {m["id"] for m in bob_msgs if m["direction"] == "in"}
        self.assertLess(len(stored), NOTES, "the quota did not bite")
        self.assertNotIn("while full", [m["text"] for m in bob_msgs])
        # Nothing acknowledged that is not stored.
        acked = {m["id"] for m in messages(a) if m["state"] == "delivered"}
        self.assertLessEqual(acked, stored)
        self.assertEqual(b.log().count(FULL), 1, "one error line per episode")
        self.assertTrue(served(b, "status")["store_full"])
        self.assertEqual(b.proc.poll(), None, "a full disk must not stop the node")
        # Space returns: the node resumes by itself, everything arrives once.
        b.fs.ctl("quota 0")
        wait_for("all delivered", lambda: len(
            [m for m in messages(a) if m["id"] in ids and m["state"] == "delivered"]) == NOTES,
            60, 0.2)
        got = [m["id"] for m in messages(b) if m["direction"] == "in"]
        self.assertEqual(sorted(got), sorted(ids))
        self.assertIn(ROOM, b.log())
        self.assertFalse(b.json("status")["store_full"])
        self.assertEqual(b.json("message", "alice", "after")["state"], "queued")


if __name__ == "__main__":
    why = unavailable()
    if why:
        print("SKIP: " + why)
        sys.exit(SKIP)
    unittest.main(verbosity=2)
