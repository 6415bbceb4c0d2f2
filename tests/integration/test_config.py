# SPDX-License-Identifier: MIT
"""twofold config (cli/config.c) with and without a node, checked with the
node's own rules; listen and advertise addresses as DNS names and bracketed
IPv6 literals (node/addr.c, node/net.c); twofoldd's messages about a home it
cannot read."""
import os
import pwd
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import TWOFOLDD, Node, NodeTestCase, free_port, wait_for  # noqa: E402
from test_hardening import SOCKET_LEAF, SUN_PATH_MAX, long_dir, socket_message  # noqa: E402

EXIT_FAIL, EXIT_USAGE, EXIT_LOCAL = 1, 2, 4
LOOPBACK_WARNING = "a loopback address: other machines cannot connect"


def ipv6_loopback():
    try:
        s = socket.socket(socket.AF_INET6, socket.SOCK_STREAM)
        s.bind(("::1", 0))
        s.close()
        return True
    except OSError:
        return False


def free_port6():
    s = socket.socket(socket.AF_INET6, socket.SOCK_STREAM)
    try:
        s.bind(("::1", 0))
        return s.getsockname()[1]
    finally:
        s.close()


class Offline(NodeTestCase):
    def test_list_get_set_unset_without_a_node(self):
        a = self.node("alice", port=True)
        a.init()
        os.remove(os.path.join(a.home, "config"))
        every = a.json("config", "list")
        self.assertEqual(every["listen"], a.listen)
        self.assertEqual(every["advertise"], [a.listen])
        self.assertEqual(every["max_frame"], 65535)
        self.assertEqual(every["close_delay_min_s"], 3600)
        self.assertEqual(a.cli("config", "get", "idle_timeout_ms").stdout, "300000\n")
        a.cli("config", "set", "max_frame", "4096")
        a.cli("config", "set", "close_delay_min_s", "0")
        a.cli("config", "set", "close_delay_max_s", "1")
        self.assertEqual(a.json("config", "get", "max_frame"), {"max_frame": 4096})
        text = a.cli("config", "list").stdout
        self.assertIn("max_frame                  4096  (default 65535)", text)
        # Other lines (comments too) are kept; a set key is replaced in place.
        path = os.path.join(a.home, "config")
        with open(path, "a") as f:
            f.write("# mine\n")
        a.cli("config", "set", "max_frame", "2048")
        with open(path) as f:
            lines = f.read().splitlines()
        self.assertEqual(lines, ["max_frame = 2048", "close_delay_min_s = 0",
                                 "close_delay_max_s = 1", "# mine"])
        a.cli("config", "unset", "max_frame")
        self.assertEqual(a.json("config", "get", "max_frame"), {"max_frame": 65535})
        # The node takes the file the CLI wrote.
        a.cli("config", "set", "max_in_flight", "7")
        a.start()
        self.assertNotIn("configuration refused", a.log())
        # With the node running, set still works and says when it applies.
        r = a.cli("config", "set", "max_in_flight", "8")
        self.assertIn("reads it on SIGHUP or when it restarts", r.stdout)

    def test_refusals_change_nothing(self):
        a = self.node("alice", port=True)
        a.init()
        path = os.path.join(a.home, "config")
        before = open(path).read()
        cases = [
            (("max_frame", "5"), "max_frame must be a whole number from 1024 to 65535"),
            (("max_frame", "12abc"), "whole number"),
            (("no_such_key", "1"), "unknown setting 'no_such_key'"),
            (("listen", "nonsense"), "listen address 'nonsense' is not HOST:PORT"),
            (("listen", "[::1]7451"), "is not HOST:PORT"),
            (("advertise", "0.0.0.0:7451"), "is not an address others can reach"),
            (("advertise", ",".join(["h%d.example:1" % i for i in range(9)])),
             "advertise 1 to 8 addresses"),
        ]
        for args, message in cases:
            r = a.cli("config", "set", *args, check=False)
            self.assertEqual(r.returncode, EXIT_USAGE, (args, r.stderr))
            self.assertIn(message, r.stderr, args)
        # A value fine alone but not with the rest of the file (the node's
        # file-level rule): refused whole, the file as it was.
        r = a.cli("config", "set", "close_delay_min_s", "5", check=False)
        self.assertEqual(r.returncode, EXIT_FAIL, r.stderr)
        self.assertIn("close_delay_min_s must not exceed close_delay_max_s", r.stderr)
        self.assertEqual(open(path).read(), before)
        self.assertFalse(os.path.exists(path + ".new"))
        self.assertEqual(a.json("config", "get", "listen"), {"listen": a.listen})
        self.assertEqual(a.json("card")["seq"], 1)
        # A file the node would refuse is reported as the node would.
        with open(path, "a") as f:
            f.write("bogus = 1\n")
        r = a.cli("config", "list", check=False)
        self.assertEqual(r.returncode, EXIT_FAIL)
        self.assertIn("unknown setting 'bogus'", r.stderr)
        r = a.cli("config", "unset", "listen", check=False)
        self.assertEqual(r.returncode, EXIT_USAGE)

    def test_taken_port_is_changed_offline(self):
        """The node cannot listen (another program holds the port): it says
        how to change it, and the change needs no running node."""
        holder = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        holder.bind(("127.0.0.1", 0))
        holder.listen(1)
        self.addCleanup(holder.close)
        taken = "127.0.0.1:%d" % holder.getsockname()[1]
        a = self.node("alice", listen=taken)
        a.init()
        a.start(expect_ready=False)
        self.assertEqual(a.wait_exit(), 1)
        self.assertIn("cannot listen on %s" % taken, a.log())
        self.assertIn("twofold config set listen HOST:PORT", a.log())
        new = "127.0.0.1:%d" % free_port()
        r = a.cli("config", "set", "listen", new)
        self.assertIn("twofoldd listens on %s from its next start" % new, r.stdout)
        a.start()
        self.assertEqual(a.json("status")["listen"], new)
        # While the node runs, listen goes through it, for its next start.
        newer = "127.0.0.1:%d" % free_port()
        a.cli("config", "set", "listen", newer)
        self.assertEqual(a.json("config", "get", "listen"), {"listen": newer})
        self.assertEqual(a.stop(), 0)
        a.start()
        self.assertEqual(a.json("status")["listen"], newer)

    def test_loopback_listen_with_public_advertise_warns(self):
        a = self.node("alice")
        port = free_port()
        r = a.cli("init", "--name", "A", "--listen", "127.0.0.1:%d" % port,
                  "--advertise", "alice.example.org:%d" % port)
        self.assertIn("warning: your card advertises alice.example.org:%d but the node "
                      "listens on 127.0.0.1:%d, %s" % (port, port, LOOPBACK_WARNING), r.stderr)
        r = a.cli("config", "set", "listen", "0.0.0.0:%d" % port)
        self.assertNotIn("warning", r.stderr)
        r = a.cli("config", "set", "listen", "localhost:%d" % port)
        self.assertIn(LOOPBACK_WARNING, r.stderr)
        r = a.cli("config", "set", "advertise", "localhost:%d" % port)
        self.assertNotIn("warning", r.stderr)
        r = a.cli("config", "set", "advertise", "[2001:db8::7]:%d" % port)
        self.assertIn(LOOPBACK_WARNING, r.stderr)
        # The node says it too, at each start.
        a.cli("config", "set", "listen", "127.0.0.1:%d" % port)
        a.start()
        self.assertIn(LOOPBACK_WARNING, a.log())
        # No warning when both are loopback (init's own default).
        b = self.node("bob", port=True)
        self.assertNotIn("warning", b.init().stderr)

    def test_home_too_long_for_a_socket_is_refused(self):
        a = self.node("alice", port=True)
        a.init()
        deep = long_dir(self.root, SUN_PATH_MAX - len(SOCKET_LEAF) + 1)
        os.makedirs(os.path.dirname(deep))
        os.rename(a.home, deep)
        a.home = deep
        for args in (("set", "max_frame", "4096"), ("set", "listen", a.listen), ("list",)):
            r = a.cli("config", *args, check=False)
            self.assertEqual(r.returncode, EXIT_LOCAL, r.stderr)
            self.assertIn(socket_message(deep), r.stderr)

    def test_advertise_changed_offline_reaches_contacts_at_start(self):
        """Alice changes her card's address while her node is stopped, to a
        DNS name: her node sends the new card when it starts; Bob then dials
        her by that name."""
        a, b = self.node("alice", port=True), self.node("bob", port=True)
        a.init()
        b.init()
        a.start()
        b.start()
        a.cli("contact", "add", b.card(), "--alias", "bob")
        b.cli("contact", "add", a.card(), "--alias", "alice")
        self.assertEqual(a.stop(), 0)
        named = "localhost:%d" % a.port()
        r = a.cli("config", "set", "advertise", named)
        # The new number is at least the time (it outranks any card issued
        # from a store restored from a backup).
        seq = a.json("card")["seq"]
        self.assertGreater(seq, 1)
        self.assertIn("card re-issued as number %d; twofoldd sends it to your contacts when it "
                      "starts" % seq, r.stdout)
        self.assertEqual(a.json("card")["addrs"], [named])
        a.start()
        self.assertIn("card %d was issued while the node was stopped" % seq, a.log())
        wait_for("Bob to hold Alice's new card",
                 lambda: b.json("contact", "show", "alice")["addrs"] == [named], 30)
        # Bob dials the name (resolved afresh at each dial).
        self.assertEqual(b.stop(), 0)
        self.assertEqual(a.stop(), 0)
        a.start()
        b.start()
        r = b.cli("ping", "alice")
        self.assertIn("alice", r.stdout)
        # A restart pushes nothing more: the card went out.
        self.assertEqual(a.stop(), 0)
        a.start()
        self.assertEqual(a.log().count("was issued while the node was stopped"), 1)


class Names(NodeTestCase):
    def test_listen_on_a_name(self):
        a = self.node("alice", listen="localhost:%d" % free_port())
        a.init()
        a.start()
        self.assertEqual(a.json("status")["listen"], a.listen)
        socket.create_connection(("127.0.0.1", a.port()), timeout=5).close()

    @unittest.skipUnless(ipv6_loopback(), "no IPv6 loopback (::1) on this machine")
    def test_ipv6_literal_listen_advertise_and_dial(self):
        a = self.node("alice", listen="[::1]:%d" % free_port6())
        b = self.node("bob", port=True)
        a.init()
        b.init()
        self.assertEqual(a.json("card")["addrs"], [a.listen])
        a.start()
        b.start()
        socket.create_connection(("::1", a.port()), timeout=5).close()
        b.cli("contact", "add", a.card(), "--alias", "alice")
        a.cli("contact", "add", b.card(), "--alias", "bob")
        self.assertIn("alice", b.cli("ping", "alice").stdout)

    def test_unresolvable_listen_name_is_said(self):
        a = self.node("alice", listen="no-such-host.invalid:%d" % free_port())
        a.init()
        a.start(expect_ready=False)
        self.assertEqual(a.wait_exit(), 1)
        self.assertIn("cannot resolve the listen address %s" % a.listen, a.log())

    def test_every_address_of_a_name_is_tried(self):
        """A card name that resolves to ::1 first and 127.0.0.1 second, and
        a node that listens on 127.0.0.1 only: the dial tries the second
        address.  The name lives in a private /etc/hosts (a mount namespace,
        needs root)."""
        hosts = os.path.join(self.root, "hosts")
        with open(hosts, "w") as f:
            f.write("127.0.0.1 localhost\n::1 twofold-multi.test\n"
                    "127.0.0.1 twofold-multi.test\n")
        probe = subprocess.run(["unshare", "-m", "sh", "-c",
                                'mount --bind "$0" /etc/hosts && getent ahosts '
                                'twofold-multi.test', hosts],
                               capture_output=True, text=True, timeout=30)
        if probe.returncode != 0:
            self.skipTest("cannot mount a private /etc/hosts: %s" % probe.stderr.strip())
        order = [line.split()[0] for line in probe.stdout.splitlines() if "STREAM" in line]
        self.assertEqual(order, ["::1", "127.0.0.1"], probe.stdout)
        a, b = self.node("alice", port=True), self.node("bob")
        name = "twofold-multi.test:%d" % a.port()
        a.cli("init", "--name", "Alice", "--listen", a.listen, "--advertise", name)
        a.write_config()
        b.listen = "127.0.0.1:%d" % free_port()
        b.init()
        a.start()
        # Bob's node and CLI run where the name resolves so.
        ns = ["unshare", "-m", "sh", "-c",
              'mount --bind "$0" /etc/hosts && exec "$@"', hosts]
        b.log_file = open(b.log_path, "ab")
        b.proc = subprocess.Popen(ns + [TWOFOLDD, "--home", b.home, "--log-level", "debug"],
                                  stdout=b.log_file, stderr=b.log_file)
        b.wait_log("ready id=", 20)
        b.cli("contact", "add", a.card(), "--alias", "alice")
        a.cli("contact", "add", b.card(), "--alias", "bob")
        self.assertIn("alice", b.cli("ping", "alice").stdout)
        self.assertIn("connecting to ::1 (address 1 the name resolved to)", b.log())
        self.assertIn("connecting to 127.0.0.1 (address 2 the name resolved to)", b.log())


@unittest.skipUnless(os.geteuid() == 0, "needs root to run twofoldd as nobody")
class UnreadableHome(unittest.TestCase):
    """twofoldd says what is wrong with a home it cannot read, not that it is
    not initialised (the checks a root user would pass: run as nobody)."""

    def setUp(self):
        self.root = tempfile.mkdtemp(prefix="tf-it-")
        self.addCleanup(shutil.rmtree, self.root, True)
        self.nobody = pwd.getpwnam("nobody")

    def run_as_nobody(self, home):
        return subprocess.run(["runuser", "-u", "nobody", "--", TWOFOLDD, "--home", home],
                              capture_output=True, text=True, timeout=30)

    def test_home_it_cannot_enter(self):
        a = Node(self.root, "alice", "127.0.0.1:%d" % free_port())
        a.init()
        for dirpath, _, files in os.walk(a.home):
            os.chown(dirpath, self.nobody.pw_uid, self.nobody.pw_gid)
            for f in files:
                os.chown(os.path.join(dirpath, f), self.nobody.pw_uid, self.nobody.pw_gid)
        os.chmod(self.root, 0o755)
        os.chmod(a.home, 0o600)  # its owner may not enter it
        r = self.run_as_nobody(a.home)
        self.assertEqual(r.returncode, 1, r.stderr)
        self.assertNotIn("not initialised", r.stderr)
        self.assertIn("cannot read the home %s: Permission denied" % a.home, r.stderr)
        os.chmod(self.root, 0o700)  # and a home it cannot even reach
        r = self.run_as_nobody(a.home)
        self.assertEqual(r.returncode, 1, r.stderr)
        self.assertIn("cannot reach the home %s: Permission denied" % a.home, r.stderr)
        self.assertNotIn("does not exist", r.stderr)


# mailbox: twofoldd.8 lists every setting with the node's own default.
class Documented(NodeTestCase):
    MAN = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "docs",
                       "twofoldd.8")
    STORED = ("listen", "advertise")  # in the store, described apart

    def test_every_setting_is_in_the_manual_with_its_default(self):
        a = self.node("alice", port=True)
        a.init()
        os.remove(os.path.join(a.home, "config"))
        defaults = a.json("config", "list")
        with open(self.MAN) as f:
            man = f.read()
        documented = {}
        for m in re.finditer(r"^\.TP\n\.B ([a-z_0-9]+)\n((?:(?!\.TP\n|\.SH ).*\n)*)", man,
                             re.M):
            d = re.search(r"^Default (\d+);", m.group(2), re.M)
            if d:
                documented[m.group(1)] = int(d.group(1))
        keys = [k for k in defaults if k not in self.STORED]
        self.assertGreater(len(keys), 50)
        self.assertEqual([k for k in keys if k not in documented], [],
                         "settings missing from docs/twofoldd.8")
        self.assertEqual({k: documented[k] for k in keys}, {k: defaults[k] for k in keys})
        self.assertEqual(sorted(k for k in documented if k not in defaults), [],
                         "docs/twofoldd.8 documents settings the node does not have")


if __name__ == "__main__":
    unittest.main()
