# SPDX-License-Identifier: MIT
"""Integration tests for the node (issue: LMDB store, control socket, CLI for
identity and contacts): real twofoldd processes in temporary homes, driven by
the real twofold CLI."""
import json
import os
import pwd
import shutil
import signal
import socket
import stat
import struct
import subprocess
import sys
import threading
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import (TESTTOOL, TWOFOLD, TWOFOLDD, NodeTestCase,  # noqa: E402
                     recv_frame)

EXIT_REFUSED = 1
EXIT_USAGE = 2
EXIT_NOT_RUNNING = 3


def mode(path):
    return stat.S_IMODE(os.lstat(path).st_mode)


class InitAndIdentity(NodeTestCase):
    def test_init_creates_private_home_and_key(self):
        # No node here ever binds the default listen address: with a real
        # node running on this machine it would be taken.  The default is
        # checked offline (test_init_default_listen), this node gets a port
        # from the OS.
        a = self.node("alice", port=True)
        a.init("Alice Avocat")
        self.assertEqual(mode(a.home), 0o700)
        self.assertEqual(mode(os.path.join(a.home, "identity.key")), 0o600)
        tid = a.text_id()
        self.assertTrue(tid.startswith("tf1") and len(tid) == 61, tid)
        card = a.card()
        self.assertTrue(card.startswith("tfcard1:"), card)
        # Offline verbs also work while the node runs, and agree.
        a.start()
        self.assertEqual(mode(a.socket_path()), 0o600)
        self.assertEqual(a.text_id(), tid)
        self.assertEqual(a.card(), card)
        st = a.json("status")
        self.assertEqual(st["id"], tid)
        self.assertEqual(st["listen"], a.listen)
        self.assertEqual(st["contacts"], 0)

    def test_init_default_listen(self):
        """Without --listen, init records the default listen address and puts
        it on the card (read offline: no node binds it)."""
        a = self.node("alice")
        a.init("Alice Avocat")
        self.assertEqual(a.json("id")["listen"], "127.0.0.1:7451")
        self.assertEqual(a.json("card")["addrs"], ["127.0.0.1:7451"])

    def test_init_refuses_to_overwrite(self):
        a = self.node("alice", port=True)
        a.init()
        key = open(os.path.join(a.home, "identity.key"), "rb").read()
        r = a.cli("init", "--name", "Other", check=False)
        self.assertNotEqual(r.returncode, 0)
        self.assertIn("already", r.stderr)
        self.assertEqual(open(os.path.join(a.home, "identity.key"), "rb").read(), key)

    def test_init_listen_and_advertise(self):
        a = self.node("alice", port=True)
        a.cli("init", "--name", "Alice", "--listen", "127.0.0.1:9999",
              "--advertise", "alice.example:9999")
        a.start()
        self.assertEqual(a.json("status")["listen"], "127.0.0.1:9999")
        b = self.node("bob", port=True)
        b.init()
        b.start()
        added = b.json("contact", "add", a.card())
        self.assertEqual(added["addrs"], ["alice.example:9999"])

    def test_init_bad_arguments(self):
        a = self.node("alice", port=True)
        r = a.cli("init", check=False)
        self.assertEqual(r.returncode, EXIT_USAGE)
        r = a.cli("init", "--name", "A", "--listen", "nonsense", check=False)
        self.assertNotEqual(r.returncode, 0)
        self.assertFalse(os.path.exists(os.path.join(a.home, "identity.key")))
        # A directory that holds other files is never taken over or chmodded.
        os.makedirs(a.home, mode=0o755, exist_ok=True)
        os.chmod(a.home, 0o755)
        open(os.path.join(a.home, "notes.txt"), "w").close()
        r = a.cli("init", "--name", "A", check=False)
        self.assertEqual(r.returncode, EXIT_REFUSED)
        self.assertIn("not empty", r.stderr)
        self.assertEqual(mode(a.home), 0o755)
        self.assertFalse(os.path.exists(os.path.join(a.home, "identity.key")))


class Daemon(NodeTestCase):
    def test_status_when_not_running(self):
        a = self.node("alice", port=True)
        a.init()
        r = a.cli("status", check=False)
        self.assertEqual(r.returncode, EXIT_NOT_RUNNING)
        self.assertIn("not running", r.stderr)
        self.assertIn("twofoldd", r.stderr)

    def test_refuses_uninitialised_home(self):
        a = self.node("alice", port=True)
        os.makedirs(a.home, mode=0o700)
        a.start(expect_ready=False)
        self.assertEqual(a.wait_exit(), 1)
        self.assertIn("twofold init", a.log())

    def test_refuses_second_daemon(self):
        a = self.node("alice", port=True)
        a.init()
        a.start()
        second = subprocess.run([TWOFOLDD, "--home", a.home], capture_output=True,
                                text=True, timeout=20)
        self.assertEqual(second.returncode, 1)
        self.assertIn("already running", second.stderr)
        # The first one is unharmed.
        self.assertEqual(a.json("status")["contacts"], 0)

    def test_refuses_readable_key(self):
        a = self.node("alice", port=True)
        a.init()
        os.chmod(os.path.join(a.home, "identity.key"), 0o644)
        a.start(expect_ready=False)
        self.assertEqual(a.wait_exit(), 1)
        self.assertIn("too open", a.log())
        self.assertIn("chmod 600", a.log())

    def test_refuses_newer_schema(self):
        a = self.node("alice", port=True)
        a.init()
        # Bump the schema with the store's own tool-free path: lmdb's mdb_load
        # is not assumed; instead the test tool's sibling, python, cannot write
        # LMDB.  Use mdb_dump/mdb_load when available.
        if shutil.which("mdb_dump") is None or shutil.which("mdb_load") is None:
            self.skipTest("lmdb-utils (mdb_dump, mdb_load) not installed")
        store = os.path.join(a.home, "store")
        dump = subprocess.run(["mdb_dump", "-s", "meta", store], capture_output=True,
                              text=True, check=True).stdout
        lines = dump.splitlines()
        out = []
        i = 0
        while i < len(lines):
            out.append(lines[i])
            if lines[i] == " " + "schema".encode().hex():
                out.append(" 000000ff")
                i += 2
                continue
            i += 1
        self.assertIn(" 000000ff", out, "schema key not found in the meta dump")
        subprocess.run(["mdb_load", "-s", "meta", store], input="\n".join(out) + "\n",
                       text=True, check=True)
        a.start(expect_ready=False)
        self.assertEqual(a.wait_exit(), 1)
        self.assertIn("newer", a.log())

    def test_sigterm_exits_cleanly(self):
        a = self.node("alice", port=True)
        a.init()
        a.start()
        self.assertEqual(a.stop(), 0)
        self.assertFalse(os.path.exists(a.socket_path()))
        a.start()  # and it starts again
        self.assertEqual(a.json("status")["contacts"], 0)

    def test_repeated_sigterm_still_exits_cleanly(self):
        """Stop signals that keep coming while the node stops (an impatient
        supervisor) must not kill it half-way: it still exits 0."""
        a = self.node("alice", port=True)
        a.init()
        a.start()
        proc = a.proc
        deadline = time.monotonic() + 20
        while proc.poll() is None and time.monotonic() < deadline:
            try:
                proc.send_signal(signal.SIGTERM)
            except ProcessLookupError:
                break
            time.sleep(0.0005)
        self.assertEqual(a.wait_exit(), 0)


class Contacts(NodeTestCase):
    def two(self):
        a = self.node("alice", port=True)
        b = self.node("bob", port=True)
        a.init("Alice Avocat")
        b.init("Bob Buyer")
        a.start()
        b.start()
        return a, b

    def test_card_exchange_and_list(self):
        a, b = self.two()
        a.cli("contact", "add", b.card(), "--alias", "bob", "--trust", "close",
              "--tag", "buyer")
        b.cli("contact", "add", a.card(), "--alias", "alice")
        lst = a.json("contact", "list")
        self.assertEqual(len(lst), 1)
        c = lst[0]
        self.assertEqual(c["id"], b.text_id())
        self.assertEqual(c["alias"], "bob")
        self.assertEqual(c["name"], "Bob Buyer")
        self.assertEqual(c["trust"], "close")
        self.assertEqual(c["tags"], ["buyer"])
        self.assertIsNone(c["introduced_by"])
        self.assertIsNone(c["intro"])
        lst = b.json("contact", "list")
        self.assertEqual([x["alias"] for x in lst], ["alice"])
        self.assertEqual(lst[0]["trust"], "known")  # the default
        # Human output names them too.
        self.assertIn("Alice Avocat", b.cli("contact", "list").stdout)

    def test_show_set_rm(self):
        a, b = self.two()
        a.cli("contact", "add", b.card(), "--alias", "bob")
        tid = b.text_id()
        for name in ("bob", tid, tid[:10]):
            self.assertEqual(a.json("contact", "show", name)["id"], tid)
        shown = a.json("contact", "show", "bob")
        self.assertEqual(shown["card"], b.card())
        a.cli("contact", "set", "bob", "--alias", "robert", "--trust", "acquaintance",
              "--tag", "x", "--tag", "y")
        c = a.json("contact", "show", "robert")
        self.assertEqual((c["alias"], c["trust"], c["tags"]), ("robert", "acquaintance",
                                                               ["x", "y"]))
        r = a.cli("contact", "show", "bob", check=False)
        self.assertEqual(r.returncode, EXIT_REFUSED)
        self.assertIn("no contact", r.stderr)
        a.cli("contact", "set", "robert", "--add-tag", "z", "--rm-tag", "x")
        self.assertEqual(a.json("contact", "show", "robert")["tags"], ["y", "z"])
        a.cli("contact", "rm", "robert")
        self.assertEqual(a.json("contact", "list"), [])

    def test_refusals_change_nothing(self):
        a, b = self.two()
        card = b.card()
        # A mistyped card: a changed character breaks the signature or encoding.
        i = len(card) // 2
        bad = card[:i] + ("A" if card[i] != "A" else "B") + card[i + 1:]
        r = a.cli("contact", "add", bad, check=False)
        self.assertEqual(r.returncode, EXIT_REFUSED)
        self.assertIn("refused", r.stderr)
        self.assertEqual(a.json("contact", "list"), [])
        # Bad alias: refused before or by the node.
        r = a.cli("contact", "add", card, "--alias", "bad alias!", check=False)
        self.assertNotEqual(r.returncode, 0)
        self.assertEqual(a.json("contact", "list"), [])
        # Own card.
        r = a.cli("contact", "add", a.card(), check=False)
        self.assertEqual(r.returncode, EXIT_REFUSED)
        self.assertEqual(a.json("contact", "list"), [])
        # Alias clash.
        c = self.node("carol", port=True)
        c.init()
        a.cli("contact", "add", card, "--alias", "friend")
        r = a.cli("contact", "add", c.card(), "--alias", "friend", check=False)
        self.assertEqual(r.returncode, EXIT_REFUSED)
        self.assertEqual(len(a.json("contact", "list")), 1)

    def test_newer_card_updates_older_refused(self):
        a, b = self.two()
        a.cli("contact", "add", b.card(), "--alias", "bob", "--tag", "t1")
        newer = subprocess.run([TESTTOOL, "card", b.home, "--seq", "5", "--name",
                                "Bob Renamed", "--addr", "127.0.0.1:8000"],
                               capture_output=True, text=True, check=True).stdout.strip()
        older = subprocess.run([TESTTOOL, "card", b.home, "--seq", "3"],
                               capture_output=True, text=True, check=True).stdout.strip()
        a.cli("contact", "add", newer)
        c = a.json("contact", "show", "bob")
        self.assertEqual((c["name"], c["seq"], c["addrs"]), ("Bob Renamed", 5,
                                                            ["127.0.0.1:8000"]))
        self.assertEqual((c["alias"], c["tags"]), ("bob", ["t1"]))  # kept
        r = a.cli("contact", "add", older, check=False)
        self.assertEqual(r.returncode, EXIT_REFUSED)
        self.assertIn("not newer", r.stderr)
        self.assertEqual(a.json("contact", "show", "bob")["seq"], 5)

    def test_card_from_stdin(self):
        a, b = self.two()
        a.cli("contact", "add", "-", input=b.card() + "\n")
        self.assertEqual(len(a.json("contact", "list")), 1)

    def test_watch_shows_events(self):
        a, b = self.two()
        w = subprocess.Popen([TWOFOLD, "--home", a.home, "--json", "watch"],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        try:
            time.sleep(0.5)  # let the watch request reach the node
            a.cli("contact", "add", b.card(), "--alias", "bob")
            line = read_line(w.stdout, 20)
            ev = json.loads(line)
            ev = ev.get("event", ev)
            self.assertEqual(ev["type"], "contact.added")
            self.assertEqual(ev["contact"], b.text_id())
        finally:
            w.send_signal(signal.SIGINT)
            w.wait(10)
        self.assertEqual(w.returncode, 0)


def read_line(stream, timeout):
    result = []
    t = threading.Thread(target=lambda: result.append(stream.readline()), daemon=True)
    t.start()
    t.join(timeout)
    if not result or not result[0]:
        raise AssertionError("no line within %ss" % timeout)
    return result[0]


class Durability(NodeTestCase):
    def test_kill9_during_contact_burst(self):
        a = self.node("alice", port=True)
        a.init()
        peers = []
        for i in range(40):
            p = self.node("p%02d" % i, port=True)
            p.init("Peer %d" % i)
            peers.append(p)
        cards = [p.card() for p in peers]
        a.start()
        acked = []
        other = []

        def burst():
            for i, card in enumerate(cards):
                r = a.cli("contact", "add", card, "--alias", "p%02d" % i, check=False)
                if r.returncode == 0:
                    acked.append("p%02d" % i)
                else:
                    other.append((r.returncode, r.stderr))

        t = threading.Thread(target=burst)
        t.start()
        deadline = time.monotonic() + 60
        while len(acked) < 5 and time.monotonic() < deadline and t.is_alive():
            time.sleep(0.005)
        a.kill9()
        t.join(120)
        self.assertGreaterEqual(len(acked), 5)
        self.assertLess(len(acked), len(cards), "the kill came after the burst")
        # Requests after the kill fail with "not running" (or a cut connection).
        for code, err in other:
            self.assertIn(code, (EXIT_NOT_RUNNING, 4, EXIT_REFUSED), err)
        a.start()
        lst = a.json("contact", "list")
        aliases = {c["alias"] for c in lst}
        # Every acknowledged add survived; nothing is torn.
        for alias in acked:
            self.assertIn(alias, aliases)
        for c in lst:
            self.assertTrue(c["id"].startswith("tf1"))
            self.assertTrue(c["name"].startswith("Peer "))
        # The store still takes writes.
        rest = [i for i in range(len(cards)) if "p%02d" % i not in aliases]
        for i in rest:
            a.cli("contact", "add", cards[i], "--alias", "p%02d" % i)
        self.assertEqual(len(a.json("contact", "list")), len(cards))


class ControlSocket(NodeTestCase):
    def started(self):
        a = self.node("alice", port=True)
        a.init()
        a.start()
        return a

    def test_garbage_gets_error_and_node_serves_others(self):
        a = self.started()
        bodies = [b"\xc1", b"\x92\x01", b"\x81\xa2id", b"\x93\x01\x02\x03" + b"x",
                  b"\xdd\xff\xff\xff\xff", b"\x81\x01\x02"]
        for body in bodies:
            s = a.raw_connect()
            s.sendall(struct.pack(">I", len(body)) + body)
            reply = recv_frame(s)
            self.assertIsNotNone(reply, body)
            self.assertIn(b"ok", reply)
            self.assertIn(b"\xc2", reply)  # "ok": false
            s.close()
        self.assertEqual(a.json("status")["contacts"], 0)

    def test_oversized_request_is_cut_off(self):
        a = self.started()
        s = a.raw_connect()
        s.sendall(struct.pack(">I", 1 << 30))
        reply = recv_frame(s)
        self.assertIsNotNone(reply)
        self.assertIn(b"E_TOO_LONG", reply)
        self.assertIsNone(recv_frame(s))  # closed
        s.close()
        # A client that sends half a frame and stalls does not block others.
        stall = a.raw_connect()
        stall.sendall(struct.pack(">I", 100) + b"\x81")
        self.assertEqual(a.json("status")["contacts"], 0)
        stall.close()

    def test_many_clients_at_once(self):
        a = self.started()
        socks = [a.raw_connect() for _ in range(10)]
        results = []

        def run():
            results.append(a.json("status")["id"])

        threads = [threading.Thread(target=run) for _ in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
        self.assertEqual(len(results), 8)
        for s in socks:
            s.close()

    @unittest.skipUnless(os.geteuid() == 0, "needs root to run a command as nobody")
    def test_other_user_cannot_use_the_socket(self):
        a = self.started()
        nobody = pwd.getpwnam("nobody")
        # Through the 0700 home: not even reachable.
        r = subprocess.run(["runuser", "-u", "nobody", "--", TWOFOLD, "--home", a.home,
                            "status"], capture_output=True, text=True, timeout=30)
        self.assertNotEqual(r.returncode, 0)
        # Even with the home and socket opened up, the node checks the uid.
        os.chmod(self.root, 0o711)
        os.chmod(a.home, 0o711)
        os.chmod(a.socket_path(), 0o666)
        try:
            code = ("import socket,struct\n"
                    "s=socket.socket(socket.AF_UNIX)\n"
                    "s.connect(%r)\n"
                    "b=b'\\x82\\xa2id\\x01\\xa4verb\\xa6status'\n"
                    "try:\n"
                    "    s.sendall(struct.pack('>I',len(b))+b)\n"
                    "    print(len(s.recv(100)))\n"
                    "except (BrokenPipeError, ConnectionResetError):\n"
                    "    print(0)\n") % a.socket_path()
            r = subprocess.run(["runuser", "-u", "nobody", "--", "/usr/bin/python3", "-c",
                                code], capture_output=True, text=True, timeout=30)
            self.assertEqual(r.stdout.strip(), "0", r.stderr)  # closed without a reply
            self.assertIn("uid %d is not the node's owner" % nobody.pw_uid, a.log())
        finally:
            os.chmod(self.root, 0o700)
            os.chmod(a.home, 0o700)
            os.chmod(a.socket_path(), 0o600)


class Cli(NodeTestCase):
    def test_help_and_version(self):
        r = subprocess.run([TWOFOLD, "--help"], capture_output=True, text=True)
        self.assertEqual(r.returncode, 0)
        for verb in ("init", "contact", "status", "watch", "card", "id"):
            self.assertIn(verb, r.stdout)
        for verb in (["init"], ["contact", "add"], ["status"], ["watch"]):
            r = subprocess.run([TWOFOLD, *verb, "--help"], capture_output=True, text=True)
            self.assertEqual(r.returncode, 0, verb)
            self.assertIn("usage", r.stdout.lower())
        r = subprocess.run([TWOFOLD, "--version"], capture_output=True, text=True)
        self.assertEqual(r.returncode, 0)
        self.assertIn("twofold", r.stdout)
        r = subprocess.run([TWOFOLD, "frobnicate"], capture_output=True, text=True)
        self.assertEqual(r.returncode, EXIT_USAGE)


if __name__ == "__main__":
    unittest.main()
