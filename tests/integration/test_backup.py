# SPDX-License-Identifier: MIT
"""Integration tests of `twofold backup` and `twofold restore` (node/backup.h,
docs/twofold.1 BACKUP AND RESTORE): real twofoldd processes on loopback, in
temporary homes, driven by the real CLI.

A backup is taken of Carol's home while she proposes introductions to Alice
and Bob as fast as the CLI goes; it is restored into a fresh home and
started in place of Carol: it holds the same identity, the same contacts, and
every intro she had before the backup began (and none she proposed after it
ended), and it keeps working.  Wrong passphrases, truncated, extended and
altered backups (one bit flipped at many places, header included) are
refused and leave the target as it was.
"""
import json
import os
import random
import shutil
import signal
import struct
import subprocess
import sys
import threading
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import TWOFOLD, NodeTestCase, wait_for  # noqa: E402

EXIT_REFUSED = 1
EXIT_USAGE = 2
HEADER = 64
CHUNK = 65536 + 17  # a sealed chunk (node/backup.h)
PASS = "correct horse battery"


class BackupTestCase(NodeTestCase):
    def setUp(self):
        super().setUp()
        self.pw = os.path.join(self.root, "pw")
        with open(self.pw, "w") as f:
            f.write(PASS + "\n")

    def run_cli(self, *args, env=None):
        """The CLI without a controlling terminal (no passphrase prompt)."""
        full_env = dict(os.environ)
        full_env.update(env or {})
        return subprocess.run([TWOFOLD] + [str(a) for a in args], capture_output=True, text=True,
                              timeout=120, start_new_session=True, stdin=subprocess.DEVNULL,
                              env=full_env)

    def intro_ids(self, n):
        return {i["id"] for i in n.json("intros", "--limit", "1000")}

    def backup(self, home, path, *extra):
        r = self.run_cli("--home", home, "--json", "backup", path, "--passphrase-file", self.pw,
                         *extra)
        self.assertEqual(r.returncode, 0, r.stderr)
        return json.loads(r.stdout)

    def restore_refused(self, path, target, want_text, pw=None, code=EXIT_REFUSED):
        """A restore that must fail and leave target as it was (absent, or an
        empty directory) with no temporary directory left beside it."""
        existed = os.path.isdir(target)
        r = self.run_cli("--json", "restore", path, target, "--passphrase-file", pw or self.pw)
        self.assertEqual(r.returncode, code, "%s: %s" % (path, r.stderr))
        self.assertIn(want_text, r.stderr)
        self.assertEqual(json.loads(r.stdout)["error"]["message"], r.stderr.split(": ", 1)[1]
                         .strip())
        if existed:
            self.assertEqual(os.listdir(target), [])
        else:
            self.assertFalse(os.path.exists(target))
        parent = os.path.dirname(target)
        self.assertEqual([e for e in os.listdir(parent) if ".restore-" in e], [])

    # -------------------------------------------------------------------
    def test_backup_while_proposals_flow_then_restore_and_run(self):
        carol, alice, bob = self.cast3(retry_max_ms=2000)
        # A config big enough that the backup spans several sealed chunks
        # (comments are allowed in the config file).
        with open(os.path.join(carol.home, "config"), "a") as f:
            for i in range(300):
                f.write("# %s\n" % ("padding %03d " % i) * 40)
        with open(os.path.join(carol.home, "policy"), "w") as f:
            f.write("decline when connector is unknown\nask\n")

        stop = threading.Event()
        made = []

        def propose():
            # Paced, and fewer than Alice's 100 pending proposals per
            # connector (max_pending_per_connector): the proposal made after
            # the restore must not be refused by that budget.
            k = 0
            while not stop.wait(0.05) and k < 90:
                r = carol.cli("--json", "propose", "alice", "bob", "--topic", "t%d" % k,
                              "--note", "intro %d" % k, check=False)
                if r.returncode == 0:
                    made.append(json.loads(r.stdout)["id"])
                k += 1
        t = threading.Thread(target=propose)
        t.start()
        try:
            wait_for("a few proposals", lambda: len(made) >= 5, 60)
            before = self.intro_ids(carol)
            path = os.path.join(self.root, "carol.tfb")
            info = self.backup(carol.home, path)
            after = self.intro_ids(carol)
            wait_for("proposals after the backup", lambda: len(made) >= len(after) + 3, 60)
        finally:
            stop.set()
            t.join(120)
        self.assertGreater(info["bytes"], HEADER + 2 * CHUNK)  # several chunks
        self.assertEqual(os.stat(path).st_mode & 0o777, 0o600)
        self.assertTrue(info["config"] and info["policy"])
        contacts = carol.json("contact", "list")
        carol_id = carol.text_id()
        self.assertEqual(carol.stop(), 0)

        home = os.path.join(self.root, "new", "carol2")
        r = self.run_cli("--json", "restore", path, home, "--passphrase-file", self.pw)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(json.loads(r.stdout)["home"], home)
        self.assertEqual(os.stat(home).st_mode & 0o777, 0o700)
        self.assertEqual(os.stat(os.path.join(home, "identity.key")).st_mode & 0o777, 0o600)
        for name in ("config", "policy"):
            with open(os.path.join(home, name)) as a, open(os.path.join(carol.home, name)) as b:
                self.assertEqual(a.read(), b.read())

        # The restored node runs in place of the old one (same address).
        carol.home = home
        carol.start()
        self.assertEqual(carol.text_id(), carol_id)
        self.assertEqual(carol.json("contact", "list"), contacts)
        restored = self.intro_ids(carol)
        self.assertTrue(before <= restored, "intros made before the backup are missing")
        self.assertTrue(restored <= after, "intros made after the backup are present")
        # And it keeps working: a new proposal reaches Alice.
        iid = carol.json("propose", "alice", "bob", "--topic", "after-restore")["id"]
        wait_for("the proposal at Alice",
                 lambda: iid in {i["id"] for i in alice.json("inbox", "--all", "--limit", "1000")},
                 30)

    def test_a_reader_that_died_is_freed_by_the_node(self):
        """A process that dies holding a read transaction on the store (a
        `twofold backup` killed mid-copy) leaves its LMDB reader slot, and
        with it every page it could see kept from reuse: the store grows
        until the node restarts.  The node frees such slots on its sweep."""
        import lmdb  # python3-lmdb (./dev installs it)
        n = self.node("alice", port=True)
        n.init()
        n.start()
        store = os.path.join(n.home, "store")
        code = ("import lmdb, sys, time\n"
                "env = lmdb.open(sys.argv[1], readonly=True, max_dbs=64)\n"
                "txn = env.begin()\n"
                "print('reading', flush=True)\n"
                "time.sleep(120)\n")
        reader = subprocess.Popen(["/usr/bin/python3", "-c", code, store], stdout=subprocess.PIPE,
                                  text=True)
        try:
            self.assertEqual(reader.stdout.readline().strip(), "reading")
            env = lmdb.open(store, readonly=True, max_dbs=64)
            pid = " %d " % reader.pid

            def slots():
                return [line for line in env.readers().splitlines() if pid in line]
            self.assertEqual(len(slots()), 1, env.readers())
        finally:
            reader.kill()
            reader.wait()
        n.wait_log("freed 1 read slot(s) of processes that died reading the store", 30)
        self.assertEqual(slots(), [], env.readers())
        env.close()

    def test_card_changes_after_a_restore_reach_contacts(self):
        """A restored store may be older than the card its contacts hold: the
        next card still outranks it (its sequence number never goes back)."""
        carol, alice, _ = self.cast3(retry_max_ms=2000)
        path = os.path.join(self.root, "carol.tfb")
        self.backup(carol.home, path)
        carol.cli("profile", "set", "--name", "Carol A")
        name_at_alice = lambda: alice.json("contact", "show", "carol")["name"]  # noqa: E731
        wait_for("Carol's new name at Alice", lambda: name_at_alice() == "Carol A", 60)
        self.assertEqual(carol.stop(), 0)

        home = os.path.join(self.root, "carol-restored")
        r = self.run_cli("--json", "restore", path, home, "--passphrase-file", self.pw)
        self.assertEqual(r.returncode, 0, r.stderr)
        carol.home = home
        carol.start()
        carol.cli("profile", "set", "--name", "Carol on a new laptop")
        wait_for("the restored node's card at Alice",
                 lambda: name_at_alice() == "Carol on a new laptop", 120)

    def test_refusals_change_nothing(self):
        carol = self.node("carol", port=True)
        carol.init()
        with open(os.path.join(carol.home, "config"), "a") as f:
            for i in range(200):
                f.write("# %s\n" % ("padding %03d " % i) * 40)
        path = os.path.join(self.root, "b.tfb")
        info = self.backup(carol.home, path)
        size = os.path.getsize(path)
        self.assertEqual(size, info["bytes"])
        self.assertGreater(size, HEADER + CHUNK)
        with open(path, "rb") as f:
            good = f.read()
        target = os.path.join(self.root, "target")

        def variant(name, data):
            p = os.path.join(self.root, name)
            with open(p, "wb") as f:
                f.write(data)
            return p

        # A wrong passphrase.
        wrong = os.path.join(self.root, "wrong")
        with open(wrong, "w") as f:
            f.write(PASS + "!\n")
        self.restore_refused(path, target, "wrong passphrase", pw=wrong)
        # Truncated: inside the header, right after it, inside a chunk, at a
        # chunk boundary, one byte short.
        for cut in (0, 10, HEADER, HEADER + 100, HEADER + CHUNK, size - 1):
            self.restore_refused(variant("cut%d" % cut, good[:cut]), target,
                                 "backup" if cut >= HEADER else "not a twofold backup")
        # Extended.
        self.restore_refused(variant("ext", good + b"\0"), target, "damaged")
        # One bit flipped: every field of the header, the first and last bytes
        # of each chunk, and random places.
        rng = random.Random(16)
        places = [0, 7, 8, 9, 10, 11, 12, 15, 16, 20, 23, 24, 39, 40, 63, HEADER,
                  HEADER + CHUNK - 1, HEADER + CHUNK, size - 17, size - 1]
        places += [rng.randrange(size) for _ in range(8)]
        for pos in places:
            data = bytearray(good)
            data[pos] ^= 1 << rng.randrange(8)
            self.restore_refused(variant("flip", bytes(data)), target, "")
        # Into an empty directory the refusals leave it empty.
        os.mkdir(target)
        self.restore_refused(variant("cut", good[:size - 1]), target, "damaged")
        # A good one still restores there after all that.
        r = self.run_cli("restore", path, target, "--passphrase-file", self.pw)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("Start it with: twofoldd --home %s" % target, r.stdout)
        self.assertEqual(self.run_cli("--home", target, "--json", "id").stdout,
                         carol.cli("--json", "id").stdout)

    def test_restore_never_replaces_a_home(self):
        alice = self.node("alice", port=True)
        alice.init()
        path = os.path.join(self.root, "a.tfb")
        self.backup(alice.home, path)
        # Not over a home with a running node, nor over any non-empty one.
        bob = self.node("bob", port=True)
        bob.init()
        bob.start()
        before = sorted(os.listdir(bob.home))
        r = self.run_cli("restore", path, bob.home, "--passphrase-file", self.pw)
        self.assertEqual(r.returncode, EXIT_REFUSED)
        self.assertIn("a node is running in %s" % bob.home, r.stderr)
        self.assertEqual(sorted(os.listdir(bob.home)), before)
        self.assertEqual(bob.stop(), 0)
        r = self.run_cli("restore", path, bob.home, "--passphrase-file", self.pw)
        self.assertEqual(r.returncode, EXIT_REFUSED)
        self.assertIn("is not empty", r.stderr)
        self.assertNotEqual(self.run_cli("--home", bob.home, "id").stdout,
                            alice.cli("id").stdout)
        # A backup never replaces a file unless --force.
        r = self.run_cli("--home", alice.home, "backup", path, "--passphrase-file", self.pw)
        self.assertEqual(r.returncode, EXIT_REFUSED)
        self.assertIn("already exists", r.stderr)
        self.backup(alice.home, path, "--force")

    def test_a_backup_never_goes_inside_the_home(self):
        alice = self.node("alice", port=True)
        alice.init()
        alice.start()
        key = os.path.join(alice.home, "identity.key")
        store = os.path.join(alice.home, "store", "data.mdb")
        with open(key, "rb") as f:
            seed = f.read()
        home_before = sorted(os.listdir(alice.home))
        store_before = sorted(os.listdir(os.path.join(alice.home, "store")))
        os.symlink(os.path.join(alice.home, "store"), os.path.join(self.root, "via"))
        for path in (key, store, os.path.join(alice.home, "new.tfb"),
                     os.path.join(self.root, "via", "data.mdb"),
                     os.path.join(alice.home, "store", "..", "x.tfb")):
            r = self.run_cli("--home", alice.home, "backup", path, "--force",
                             "--passphrase-file", self.pw)
            self.assertEqual(r.returncode, EXIT_REFUSED, "%s: %s" % (path, r.stderr))
            self.assertIn("is inside the home %s; write the backup outside it" % alice.home,
                          r.stderr)
        with open(key, "rb") as f:
            self.assertEqual(f.read(), seed)
        self.assertEqual(sorted(os.listdir(alice.home)), home_before)
        self.assertEqual(sorted(os.listdir(os.path.join(alice.home, "store"))), store_before)
        self.assertEqual(alice.json("id")["id"], alice.text_id())  # the node still runs
        # Beside the home is fine.
        self.backup(alice.home, alice.home + ".tfb")

    def test_an_interrupted_restore_leaves_no_seed_behind(self):
        alice = self.node("alice", port=True)
        alice.init()
        # A store of some 48 MiB, so that writing it takes long enough to be
        # interrupted while the temporary home exists.
        records = "".join(" %04d\n %s\n" % (i, os.urandom(1 << 19).hex()) for i in range(48))
        subprocess.run(["mdb_load", "-T", "-s", "test-padding", os.path.join(alice.home, "store")],
                       input=records, text=True, check=True, timeout=120)
        path = os.path.join(self.root, "a.tfb")
        self.backup(alice.home, path)
        target = os.path.join(self.root, "r")

        def temp_dirs():
            return sorted(e for e in os.listdir(self.root) if e.startswith(".r.restore-"))

        def interrupt(sig, old):
            p = subprocess.Popen([TWOFOLD, "restore", path, target, "--passphrase-file",
                                  self.pw], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                 stdin=subprocess.DEVNULL, start_new_session=True)
            try:
                # Interrupted once the seed is written (the first record; the
                # store follows).
                deadline = time.monotonic() + 120
                new = []
                while p.poll() is None and not (new and os.path.exists(
                        os.path.join(self.root, new[0], "identity.key"))):
                    self.assertLess(time.monotonic(), deadline)
                    time.sleep(0.002)
                    new = [d for d in temp_dirs() if d not in old]
                self.assertIsNone(p.poll(), "the restore ended before it could be interrupted")
                p.send_signal(sig)
                p.communicate(timeout=120)
            finally:
                if p.poll() is None:
                    p.kill()
                    p.wait()
            self.assertEqual(p.returncode, -sig)
            self.assertFalse(os.path.exists(target))
            return new

        # kill -9 leaves the temporary home (and the seed in it) behind...
        stale = interrupt(signal.SIGKILL, [])
        self.assertEqual(temp_dirs(), stale)
        self.assertTrue(os.path.exists(os.path.join(self.root, stale[0], "identity.key")))
        # ...which the next restore removes; SIGTERM leaves nothing.
        interrupt(signal.SIGTERM, stale)
        self.assertEqual(temp_dirs(), [])
        r = self.run_cli("--json", "restore", path, target, "--passphrase-file", self.pw)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(temp_dirs(), [])
        self.assertEqual(self.run_cli("--home", target, "--json", "id").stdout,
                         alice.cli("--json", "id").stdout)

    def test_new_backups_cost_moderate_and_old_ones_still_restore(self):
        alice = self.node("alice", port=True)
        alice.init()
        path = os.path.join(self.root, "a.tfb")
        self.backup(alice.home, path)
        with open(path, "rb") as f:
            hdr = f.read(HEADER)
        # Argon2id (2) at libsodium's MODERATE: crypto_pwhash_OPSLIMIT_MODERATE
        # (3) passes over crypto_pwhash_MEMLIMIT_MODERATE (256 MiB).
        self.assertEqual((hdr[:8], hdr[8], hdr[9]), (b"TFBACKUP", 1, 2))
        self.assertEqual(struct.unpack(">IQ", hdr[12:24]), (3, 256 << 20))
        # A backup made by an earlier version: 3 passes over 64 MiB, and an
        # 8-byte passphrase.
        old = os.path.join(os.path.dirname(os.path.abspath(__file__)), "data",
                           "backup-v1-argon2-64mib.tfb")
        with open(old, "rb") as f:
            self.assertEqual(struct.unpack(">IQ", f.read(HEADER)[12:24]), (3, 64 << 20))
        pw8 = os.path.join(self.root, "pw8")
        with open(pw8, "w") as f:
            f.write("12345678\n")
        target = os.path.join(self.root, "old")
        r = self.run_cli("--json", "restore", old, target, "--passphrase-file", pw8)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(json.loads(self.run_cli("--home", target, "--json", "id").stdout)["id"],
                         "tf19jxnf8ldaucmqrsqd7l69af3e7klshezj0763djk6lyujf277fpqd30829")
        # ...but a new backup does not take that passphrase.
        r = self.run_cli("--home", target, "backup", os.path.join(self.root, "b.tfb"),
                         "--passphrase-file", pw8)
        self.assertEqual(r.returncode, EXIT_USAGE)
        self.assertIn("give 12 to 1024 bytes", r.stderr)

    def test_passphrase_sources_and_usage(self):
        alice = self.node("alice", port=True)
        alice.init()
        path = os.path.join(self.root, "a.tfb")
        # No terminal and no passphrase option.
        r = self.run_cli("--home", alice.home, "--json", "backup", path)
        self.assertEqual(r.returncode, EXIT_USAGE)
        self.assertIn("no terminal to ask for the passphrase", r.stderr)
        self.assertIn("no terminal", json.loads(r.stdout)["error"]["message"])
        # Too short.
        short = os.path.join(self.root, "short")
        with open(short, "w") as f:
            f.write("12345678901\n")  # 11 bytes: once enough, no more
        r = self.run_cli("--home", alice.home, "backup", path, "--passphrase-file", short)
        self.assertEqual(r.returncode, EXIT_USAGE)
        self.assertIn("the passphrase in the file is 11 bytes: give 12 to 1024 bytes", r.stderr)
        self.assertFalse(os.path.exists(path))
        # From a variable; restore with the same passphrase from a file.
        r = self.run_cli("--home", alice.home, "backup", path, "--passphrase-env", "TF_PW",
                         env={"TF_PW": PASS})
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("backed up %s to %s" % (alice.home, path), r.stdout)
        target = os.path.join(self.root, "r")
        r = self.run_cli("restore", path, target, "--passphrase-file", self.pw)
        self.assertEqual(r.returncode, 0, r.stderr)
        # A home without an identity.
        r = self.run_cli("--home", os.path.join(self.root, "none"), "backup",
                         os.path.join(self.root, "x.tfb"), "--passphrase-file", self.pw)
        self.assertEqual(r.returncode, 4)
        self.assertIn("holds no twofold identity", r.stderr)
        self.assertFalse(os.path.exists(os.path.join(self.root, "x.tfb")))
        # A home too deep for its control socket, as init refuses it.
        deep = os.path.join(self.root, "d" * (107 - len("/control.sock") - len(self.root)))
        r = self.run_cli("restore", path, deep, "--passphrase-file", self.pw)
        self.assertEqual(r.returncode, 4, r.stderr)
        self.assertIn("longer than a Unix socket allows", r.stderr)
        self.assertFalse(os.path.exists(deep))
        # Not a backup at all.
        self.restore_refused(self.pw, os.path.join(self.root, "r2"), "not a twofold backup")


if __name__ == "__main__":
    unittest.main()
