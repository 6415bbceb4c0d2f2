# SPDX-License-Identifier: MIT
"""./dev demo's story (tests/demo/demo.sh) with --keep: the echoed commands
keep their quotes and run as printed; the three nodes stay up and the printed
commands talk to them and stop them.  Usage: test_demo.py BUILD_DIR."""
import os
import re
import shlex
import subprocess
import sys
import time
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
BUILD = os.path.abspath(sys.argv[1])
del sys.argv[1]


def alive(pid):
    try:
        with open("/proc/%d/stat" % pid) as f:
            return f.read().split(") ", 1)[1][0] != "Z"
    except FileNotFoundError:
        return False


class Keep(unittest.TestCase):
    def test_keep(self):
        r = subprocess.run([os.path.join(HERE, "demo.sh"), BUILD, "--keep"],
                           capture_output=True, text=True, timeout=300,
                           stdin=subprocess.DEVNULL)
        out = r.stdout
        stop = re.search(r"^  (kill ([\d ]+) && sleep 1 && rm -rf \"(.+)\")$", out, re.M)
        self.assertIsNotNone(stop, out + r.stderr)
        pids = [int(p) for p in stop.group(2).split()]
        root = stop.group(3)
        try:
            self.assertEqual(r.returncode, 0, out + r.stderr)
            self.assertEqual(len(pids), 3)
            self.assertTrue(all(alive(p) for p in pids), "the nodes did not stay up")
            self.assertRegex(out, r"\(the story took \d+\.\d s\)")
            # Bob listens nowhere and got Alice's note through his mailbox.
            self.assertRegex(out, r"listening: no; addresses on your card: 1\n.*\n  carol .* yes ")
            self.assertRegex(out, r"(?m)^  .+ +in +\S+ +received +Hello Bob, when shall we meet\?$")
            setup = re.findall(r"^  ((?:D|PATH)=\S+)$", out, re.M)
            self.assertEqual(len(setup), 2, out)
            # Echoed commands keep their quotes: shell words as they were given.
            echoed = [line[2:] for line in out.splitlines() if line.startswith("$ twofold ")]
            self.assertGreaterEqual(len(echoed), 15, out)
            decline = [shlex.split(c) for c in echoed if " decline " in c]
            self.assertEqual(decline[0][-2:], ["--reason", "I already have a tax adviser."])
            propose = [shlex.split(c) for c in echoed if " propose " in c][1]
            self.assertIn("Bob is buying his first flat and needs a lawyer.", propose)
            # ... and run as printed, with the printed D and PATH.
            def sh(cmd):
                return subprocess.run(["bash", "-c", "; ".join(setup + [cmd])],
                                      capture_output=True, text=True, timeout=60)
            for cmd in echoed:
                if " intros" in cmd or " contact list" in cmd:
                    res = sh(cmd)
                    self.assertEqual(res.returncode, 0, cmd + res.stderr)
            self.assertIn("introduced", sh([c for c in echoed if " intros" in c][0]).stdout)
            # The printed commands talk to the nodes that stayed up.
            talk = re.findall(r"^  (twofold --home .+)$", out, re.M)
            self.assertGreaterEqual(len(talk), 3, out)
            res = sh(talk[0])
            self.assertEqual(res.returncode, 0, res.stderr)
            self.assertIn("Bob", res.stdout)
            msg = [t for t in talk if " message " in t][0]
            self.assertEqual(sh(msg).returncode, 0)
        finally:
            # The printed way to stop them, whatever happened above.
            res = subprocess.run(["bash", "-c", stop.group(1)], capture_output=True, text=True,
                                 timeout=60)
        self.assertEqual(res.returncode, 0, res.stderr)
        deadline = time.monotonic() + 20
        while any(alive(p) for p in pids) and time.monotonic() < deadline:
            time.sleep(0.05)
        self.assertFalse([p for p in pids if alive(p)], "nodes still running after the stop")
        self.assertFalse(os.path.exists(root))


if __name__ == "__main__":
    unittest.main()
