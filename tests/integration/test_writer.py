# SPDX-License-Identifier: MIT
"""writer (issue 17): the node commits on a writer thread while its event
loop goes on.  A daemon test hook, TWOFOLD_TEST_COMMIT_DELAY_MS, makes each
commit of that thread take 1.5 s longer, as a slow disk would.  Checked:
a change's reply waits for its commit; a reply produced while a change is
still being committed (here a read, which shows the change) waits for that
commit too and never overtakes the change's reply; and the loop itself did
not wait for the disk (status.stats.commit_wait_us against commit_us)."""
import json
import os
import subprocess
import sys
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import TWOFOLD, NodeTestCase  # noqa: E402

HOOKS = os.environ.get("TF_TEST_HOOKS_BUILT") == "ON"
DELAY_S = 1.5


@unittest.skipUnless(HOOKS, "the slow commit is a daemon test hook: this build has none")
class WriterTest(NodeTestCase):
    def cli_popen(self, node, *args):
        return subprocess.Popen([TWOFOLD, "--home", node.home, "--json"] + list(args),
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)

    def finish(self, proc, timeout=60):
        """Waits for a CLI process (bounded); returns (end time, stdout)."""
        out, err = proc.communicate(timeout=timeout)
        end = time.monotonic()
        self.assertEqual(proc.returncode, 0, out + err)
        return end, out

    def test_outputs_wait_for_their_commit_the_loop_does_not(self):
        a = self.node("alice", port=True)
        a.init()
        a.start(env={"TWOFOLD_TEST_COMMIT_DELAY_MS": str(int(DELAY_S * 1000))})
        b = self.node("bob", port=True)
        b.init()

        # A change's reply leaves after its commit.
        t0 = time.monotonic()
        a.cli("contact", "add", b.card(), "--alias", "bob")
        self.assertGreaterEqual(time.monotonic() - t0, DELAY_S)

        # A change, then a read while its commit is in flight: the read
        # shows the change, and its reply waits for that commit (it never
        # leaves before the change's own reply).
        set_start = time.monotonic()
        change = self.cli_popen(a, "contact", "set", "bob", "--alias", "bobby")
        time.sleep(0.5)
        read = self.cli_popen(a, "contact", "list")
        change_end, _ = self.finish(change)
        read_end, out = self.finish(read)
        self.assertGreaterEqual(change_end - set_start, DELAY_S)
        self.assertGreaterEqual(read_end - set_start, DELAY_S)
        aliases = [c.get("alias") for c in json.loads(out)]
        self.assertEqual(aliases, ["bobby"])

        # The commits took seconds on the writer thread; the loop's own time
        # in the store's commit calls is a small part of that.
        stats = a.json("status")["stats"]
        self.assertGreaterEqual(stats["commit_us"], 2 * DELAY_S * 1e6, stats)
        self.assertLess(stats["commit_wait_us"] * 10, stats["commit_us"], stats)


if __name__ == "__main__":
    unittest.main()
