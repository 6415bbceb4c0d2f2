#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""A commit whose write or sync fails: nothing of that batch leaves (no ACK,
no reply, no event), the node stops with exit status 74 and a clear message,
and a restart recovers from what is on disk.

Two ways to fail the sync: the test hook TWOFOLD_TEST_CRASH=eio-on-receive-
commit (any machine), and a real EIO from fsync injected by tf-plfs (skipped,
saying so, where tf-plfs cannot run)."""
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(HERE, "..", "integration"))
from harness import TWOFOLDD, Node, free_port, wait_for, watch_events  # noqa: E402
from plfs import unavailable  # noqa: E402
from test_node_powerloss import CONFIG, PowerNode, messages  # noqa: E402

EXIT_STORE = 74  # node/node.h TF_NODE_EXIT_STORE
EXIT_NODE = 3  # the CLI: the node is not running or the link to it broke
MESSAGE = "commit failed: Input/output error"


def has_hooks():
    """True if twofoldd was built with its test hooks (not in Release)."""
    out = subprocess.run([TWOFOLDD, "--version"], capture_output=True, text=True).stdout
    return "test hooks: on" in out


class FailingSyncTest(unittest.TestCase):
    def setUp(self):
        self.root = tempfile.mkdtemp(prefix="tf-eio-")
        self.nodes = []

    def tearDown(self):
        for n in self.nodes:
            if n.proc is not None:
                n.stop()
            if getattr(n, "fs", None) is not None:
                n.fs.unmount()
        shutil.rmtree(self.root, ignore_errors=True)

    def pair(self, power, bob_env=None):
        """alice (plain home) and bob (on tf-plfs if power), started (bob with
        bob_env), contacts."""
        a = Node(self.root, "alice", "127.0.0.1:%d" % free_port())
        a.init()
        a.write_config(**CONFIG)
        if power:
            b = PowerNode(self.root, "bob", 1)
            b.setup()
        else:
            b = Node(self.root, "bob", "127.0.0.1:%d" % free_port())
            b.init()
            b.write_config(**CONFIG)
        self.nodes += [a, b]
        a.start()
        b.start(env=bob_env)
        a.cli("contact", "add", b.card(), "--alias", "bob")
        b.cli("contact", "add", a.card(), "--alias", "alice")
        return a, b

    def check_stop_and_recovery(self, a, b, msg_id):
        """bob exited 74 with the message; alice got no ACK; after a restart
        the message arrives exactly once."""
        rc = b.wait_exit(30)
        self.assertEqual(rc, EXIT_STORE, b.log()[-3000:])
        log = b.log()
        self.assertIn(MESSAGE, log)
        self.assertIn("stopping with exit status 74 without sending anything of this turn", log)
        self.assertIn("stopped after a store failure (exit status 74)", log)
        # No ACK left: alice still holds the envelope.
        out = [m for m in messages(a) if m["id"] == msg_id]
        self.assertEqual(out[0]["state"], "queued")
        self.assertEqual(len(a.json("outbox")), 1)
        b.start()
        wait_for("delivery after the restart", lambda: [
            m for m in messages(a) if m["id"] == msg_id and m["state"] == "delivered"], 30, 0.1)
        got = [m for m in messages(b) if m["id"] == msg_id]
        self.assertEqual(len(got), 1)
        self.assertEqual(got[0]["text"], "will fail")

    @unittest.skipUnless(has_hooks(), "twofoldd was built without its test hooks")
    def test_hook_failed_commit_sends_nothing_and_stops(self):
        a, b = self.pair(power=False, bob_env={"TWOFOLD_TEST_CRASH": "eio-on-receive-commit"})
        # A watcher on bob: the batch's event must never reach it.
        seen = []
        t = threading.Thread(target=lambda: seen.append(watch_events(b, lambda e: False, 25)),
                             daemon=True)
        t.start()
        time.sleep(0.5)
        msg_id = a.json("message", "bob", "will fail")["id"]
        self.check_stop_and_recovery(a, b, msg_id)
        t.join(30)
        events = seen[0][0]
        self.assertEqual([e for e in events if e.get("type") == "message.received"], [])

    @unittest.skipIf(unavailable() is not None, "tf-plfs: %s" % unavailable())
    def test_shim_eio_on_fsync(self):
        """tf-plfs fails bob's next fsync of data.mdb with EIO (its dirty
        pages then never reach the disk, as on Linux)."""
        a, b = self.pair(power=True)
        b.fs.ctl("arm eio fsync data.mdb 1")
        msg_id = a.json("message", "bob", "will fail")["id"]
        self.check_stop_and_recovery(a, b, msg_id)
        self.assertGreater(b.fs.stats()["fsyncs"], 0)

    @unittest.skipIf(unavailable() is not None, "tf-plfs: %s" % unavailable())
    def test_shim_eio_control_request(self):
        """bob's own `message` verb commits in a batch whose fsync fails: the
        CLI gets no reply (the connection closes, exit 3), bob exits 74, and
        after a power cycle the message is either not there or there once,
        never sent twice."""
        a, b = self.pair(power=True)
        b.fs.ctl("arm eio fsync data.mdb 1")
        r = b.cli("--json", "message", "alice", "from a failed batch", check=False)
        self.assertEqual(r.returncode, EXIT_NODE, r.stdout + r.stderr)
        self.assertEqual(b.wait_exit(30), EXIT_STORE)
        self.assertIn(MESSAGE, b.log())
        b.fs.power_cycle()
        b.start()
        time.sleep(2)  # anything bob would send has had time to go
        got = [m for m in messages(a) if m["text"] == "from a failed batch"]
        self.assertLessEqual(len(got), 1)
        sent = [m for m in messages(b) if m["text"] == "from a failed batch"]
        self.assertEqual(len(sent), 0, "the failed batch's pages never reached the disk")


if __name__ == "__main__":
    unittest.main(verbosity=2)
