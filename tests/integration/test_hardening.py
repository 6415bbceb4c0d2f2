# SPDX-License-Identifier: MIT
"""Local hardening of twofoldd (issue 12, item 6): the control socket path is
checked by the node itself, the home and key must be the running user's, the
process is not dumpable and has no core dumps, the crash hook exists only in
test builds, and an over-long config line is an error.

The ownership tests need root (they chown to uid 65534, "nobody"); they are
skipped otherwise."""
import json
import os
import socket
import struct
import subprocess
import sys
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import (TWOFOLDD, Node, NodeTestCase, recv_frame, wait_for,  # noqa: E402
                     watch_events)

SOURCE = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SUN_PATH_MAX = 107  # sizeof(sockaddr_un.sun_path) - 1 on Linux
SOCKET_LEAF = "/control.sock"
NOBODY = 65534
CONFIG_LINE_MAX = 510  # node/config.h TF_NODE_CONFIG_LINE_MAX


def long_dir(root, total):
    """A path under root exactly total bytes long (made of 50-byte parts)."""
    path = root
    while len(path) < total:
        part = min(50, total - len(path) - 1)
        if part < 1:  # one byte left: fold it into the last part
            path = path[:-1] + "yy"
            continue
        path = os.path.join(path, "d" * part)
    assert len(path) == total, (len(path), total)
    return path


def socket_message(home):
    return ("the control socket path %s/control.sock is longer than a Unix socket allows "
            "(%d bytes); use a shorter --home" % (home, SUN_PATH_MAX))


def sockets_under(top):
    found = []
    for d, _, files in os.walk(top):
        found += [os.path.join(d, f) for f in files if f.startswith("control.so")]
    return found


class SocketPath(NodeTestCase):
    def test_node_refuses_a_home_whose_socket_path_is_too_long(self):
        # A home made where it fits, then moved one byte too deep: before,
        # libuv truncated the path and the socket landed beside the home.
        a = self.node("a", port=True)
        a.init()
        deep = long_dir(self.root, SUN_PATH_MAX - len(SOCKET_LEAF) + 1)
        os.makedirs(os.path.dirname(deep))
        os.rename(a.home, deep)
        a.home = deep
        a.start(expect_ready=False)
        self.assertEqual(a.wait_exit(), 1)
        self.assertIn(socket_message(deep), a.log())
        self.assertEqual(sockets_under(self.root), [])
        # The CLI says the same.
        r = a.cli("status", check=False)
        self.assertEqual(r.returncode, 4)
        self.assertIn(socket_message(deep), r.stderr)

    def test_node_starts_when_the_socket_path_just_fits(self):
        a = self.node("a", port=True)
        a.init()
        deep = long_dir(self.root, SUN_PATH_MAX - len(SOCKET_LEAF))
        os.makedirs(os.path.dirname(deep))
        os.rename(a.home, deep)
        a.home = deep
        a.start()
        self.assertEqual(len(a.socket_path()), SUN_PATH_MAX)
        self.assertEqual(sockets_under(self.root), [a.socket_path()])
        self.assertEqual(a.json("status")["contacts"], 0)

    def test_init_refuses_a_home_whose_socket_path_is_too_long(self):
        deep = long_dir(self.root, SUN_PATH_MAX - len(SOCKET_LEAF) + 1)
        a = Node(self.root, "a")
        a.home = deep
        r = a.cli("init", "--name", "A", check=False)
        self.assertEqual(r.returncode, 4, r.stderr)
        self.assertIn(socket_message(deep), r.stderr)
        self.assertFalse(os.path.exists(deep))  # nothing made


@unittest.skipUnless(os.geteuid() == 0, "needs root to chown to another user")
class Ownership(NodeTestCase):
    def refused(self, node, needle):
        node.start(expect_ready=False)
        self.assertEqual(node.wait_exit(), 1)
        self.assertIn(needle, node.log())
        self.assertNotIn("ready id=", node.log())
        self.assertFalse(os.path.exists(node.socket_path()))

    def test_home_owned_by_another_user_is_refused(self):
        a = self.node("a", port=True)
        a.init()
        os.chown(a.home, NOBODY, -1)
        self.refused(a, "home %s is owned by uid %d, not by the user running twofoldd (uid 0)"
                     % (a.home, NOBODY))
        os.chown(a.home, 0, -1)  # given back, it starts
        a.start()

    def test_key_owned_by_another_user_is_refused(self):
        a = self.node("a", port=True)
        a.init()
        key = os.path.join(a.home, "identity.key")
        os.chown(key, NOBODY, -1)
        self.refused(a, "%s is owned by uid %d, not by the running user (uid 0)" % (key, NOBODY))

    def test_node_is_not_dumpable_and_has_no_core_dumps(self):
        # Run as nobody, in a home nobody owns: /proc/PID of a process that
        # is not dumpable belongs to root, not to the process's user.
        os.chmod(self.root, 0o755)
        a = self.node("a", port=True)
        a.init()
        for d, dirs, files in os.walk(a.home):
            for p in [d] + [os.path.join(d, f) for f in files]:
                os.chown(p, NOBODY, NOBODY)
        log = open(a.log_path, "ab")
        proc = subprocess.Popen([TWOFOLDD, "--home", a.home], stdout=log, stderr=log,
                                user=NOBODY, group=NOBODY)
        try:
            wait_for("the ready line", lambda: "ready id=" in a.log() or proc.poll() is not None,
                     20)
            self.assertIn("ready id=", a.log())
            status = open("/proc/%d/status" % proc.pid).read()
            uid_line = [x for x in status.splitlines() if x.startswith("Uid:")][0]
            self.assertEqual(uid_line.split()[1:], [str(NOBODY)] * 4)
            self.assertEqual(os.stat("/proc/%d/status" % proc.pid).st_uid, 0)
            limits = open("/proc/%d/limits" % proc.pid).read()
            core = [x for x in limits.splitlines() if x.startswith("Max core file size")][0]
            self.assertEqual(core.split()[4:6], ["0", "0"], core)
        finally:
            proc.terminate()
            rc = proc.wait(20)
            log.close()
        self.assertEqual(rc, 0, a.log())


class TestHooks(NodeTestCase):
    def test_version_says_whether_the_build_has_test_hooks(self):
        out = subprocess.run([TWOFOLDD, "--version"], capture_output=True, text=True,
                             timeout=10).stdout
        want = os.environ.get("TF_TEST_HOOKS_BUILT")
        self.assertIn(want, ("ON", "OFF"), "ctest passes the CMake option")
        self.assertIn("(test hooks: %s)" % want.lower(), out)
        # Compiled out, not merely disabled: the variable's name is not in
        # the binary of a build without hooks.
        with open(TWOFOLDD, "rb") as f:
            has_name = b"TWOFOLD_TEST_CRASH" in f.read()
        self.assertEqual(has_name, want == "ON")

    def test_release_preset_turns_the_hooks_off(self):
        with open(os.path.join(SOURCE, "CMakePresets.json")) as f:
            presets = {p["name"]: p for p in json.load(f)["configurePresets"]}
        self.assertEqual(presets["release"]["cacheVariables"]["TF_TEST_HOOKS"], "OFF")
        self.assertEqual(presets["release"]["cacheVariables"]["CMAKE_BUILD_TYPE"], "Release")
        self.assertEqual(presets["dev"]["cacheVariables"]["TF_TEST_HOOKS"], "ON")


class ConfigLines(NodeTestCase):
    def write(self, node, text):
        with open(os.path.join(node.home, "config"), "w") as f:
            f.write(text)

    def test_over_long_line_is_an_error_with_its_number(self):
        a = self.node("a", port=True)
        a.init()
        # Split at the parser's buffer, the tail of this comment would read
        # as a setting of its own.
        tail = "max_connections = 1\n"
        comment = "# " + "x" * (CONFIG_LINE_MAX + 1 - 2) + tail
        self.write(a, "idle_timeout_ms = 60000\n" + comment)
        a.start(expect_ready=False)
        self.assertEqual(a.wait_exit(), 1)
        self.assertIn("config:2: line is longer than %d bytes" % CONFIG_LINE_MAX, a.log())

    def test_line_of_the_maximum_length_is_read_whole(self):
        a = self.node("a", port=True)
        a.init()
        comment = "# " + "x" * (CONFIG_LINE_MAX - 2)
        self.assertEqual(len(comment), CONFIG_LINE_MAX)
        value = "max_connections = " + "0" * (CONFIG_LINE_MAX - len("max_connections = 7")) + "7"
        self.assertEqual(len(value), CONFIG_LINE_MAX)
        self.write(a, comment + "\n" + value + "\n")
        a.start()
        self.assertEqual(a.json("status")["contacts"], 0)

    def test_over_long_line_on_reload_keeps_the_old_config(self):
        a = self.node("a", port=True)
        a.init()
        a.start()
        self.write(a, "# " + "x" * CONFIG_LINE_MAX + "\n")
        a.proc.send_signal(1)  # SIGHUP
        a.wait_log("configuration refused, keeping the old one", 10)
        self.assertIn("config:1: line is longer than %d bytes" % CONFIG_LINE_MAX, a.log())
        time.sleep(0.1)
        self.assertEqual(a.json("status")["contacts"], 0)  # still serving


class Control:
    """A raw control connection that pipelines requests (python3-msgpack)."""

    def __init__(self, node):
        import msgpack
        self.mp = msgpack
        self.sock = node.raw_connect()
        self.next_id = 0

    def send(self, verb, **args):
        self.next_id += 1
        body = self.mp.packb({"id": self.next_id, "verb": verb, "args": args})
        self.sock.sendall(struct.pack(">I", len(body)) + body)
        return self.next_id

    def recv(self):
        body = recv_frame(self.sock)
        return None if body is None else self.mp.unpackb(body, raw=False)

    def call(self, verb, **args):
        want = self.send(verb, **args)
        while True:
            m = self.recv()
            if m.get("id") == want:
                if not m["ok"]:
                    raise AssertionError("%s failed: %r" % (verb, m))
                return m["result"]

    def close(self):
        self.sock.close()


def contact_updates(ctl, n, batch=200):
    """n contact.updated events for contact "bob", pipelined by batches."""
    trusts = ("known", "close")
    done = 0
    while done < n:
        k = min(batch, n - done)
        ids = [ctl.send("contact.set", name="bob", trust=trusts[(done + i) % 2])
               for i in range(k)]
        got = 0
        while got < k:
            m = ctl.recv()
            assert m["ok"], m
            if m["id"] in ids:
                got += 1
        done += k


def node_with_bob(tc, **config):
    """Node a, started with config, with contact bob (b, never started):
    two events, node.started and contact.added."""
    a = tc.node("a", port=True)
    b = tc.node("b", port=True)
    a.init()
    b.init("Bob")
    a.write_config(**config)
    a.start()
    a.cli("contact", "add", "--alias", "bob", b.card())
    return a


class EventBudget(NodeTestCase):
    def node_with_bob(self, **config):
        return node_with_bob(self, **config)

    def test_event_log_keeps_at_most_events_max_the_newest(self):
        budget = 25
        a = self.node_with_bob(events_max=budget)
        ctl = Control(a)
        try:
            for _ in range(4):
                contact_updates(ctl, 30)
                st = ctl.call("status")
                self.assertLessEqual(st["events"], budget)
            self.assertEqual(st["events"], budget)
            last = ctl.call("watch")["seq"]
        finally:
            ctl.close()
        # 1 node.started + 1 contact.added + 120 updates.
        self.assertEqual(last, 122)
        events, finished, _ = watch_events(a, lambda evs: len(evs) >= budget)
        self.assertTrue(finished, events)
        self.assertEqual([e["seq"] for e in events], list(range(last - budget + 1, last + 1)))
        self.assertTrue(all(e["type"] == "contact.updated" for e in events))
        # The budget holds across a restart, and seq numbers go on.
        a.stop()
        a.start()
        self.assertEqual(a.json("status")["events"], budget)
        events, finished, _ = watch_events(a, lambda evs: len(evs) >= budget)
        self.assertEqual(events[-1]["seq"], last + 1)
        self.assertEqual(events[-1]["type"], "node.started")

    def test_lowered_budget_is_reached_at_start(self):
        a = self.node_with_bob()
        ctl = Control(a)
        try:
            contact_updates(ctl, 300)
        finally:
            ctl.close()
        self.assertEqual(a.json("status")["events"], 302)
        a.stop()
        a.write_config(events_max=40)
        a.start()
        a.wait_log("collected", 10)
        wait_for("the budget", lambda: a.json("status")["events"] == 40, 10)

    def test_events_past_their_retention_are_collected(self):
        a = self.node_with_bob(events_retention_s=2)
        ctl = Control(a)
        try:
            contact_updates(ctl, 50)
            self.assertEqual(ctl.call("status")["events"], 52)
            time.sleep(3.1)
            # Each append collects a few old ones; the sweep at start all.
            contact_updates(ctl, 5)
            self.assertEqual(ctl.call("status")["events"], 57 - 5 * 2)
        finally:
            ctl.close()
        a.stop()
        a.start()
        wait_for("old events collected",
                 lambda: a.json("status")["events"] <= 6, 10)
        seqs = [e["seq"] for e in watch_events(a, lambda evs: False, timeout=2)[0]]
        self.assertEqual(seqs[-1], 58)  # the restart's node.started
        self.assertTrue(all(s >= 53 for s in seqs), seqs)


PAGE = 256  # node/ctl.h TF_NODE_CTL_EVENTS_PAGE


class WatchPages(NodeTestCase):
    def test_backlog_is_paged_and_waits_for_a_slow_reader(self):
        n = 20000
        a = node_with_bob(self)
        ctl = Control(a)
        try:
            contact_updates(ctl, n)
        finally:
            ctl.close()
        total = n + 2
        # A watcher that does not read: the node replays a page at a time
        # and stops once the unread output is above its low-water mark.
        w = Control(a)
        w.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        w.send("watch", since=0)
        time.sleep(1.0)
        pages_stalled = a.log().count("backlog page")
        self.assertGreater(pages_stalled, 0)
        self.assertLess(pages_stalled, total // PAGE // 2, "the node read ahead of its reader")
        self.assertEqual(a.json("status")["events"], total)  # still serving
        # Live events made meanwhile come after the backlog, once each.
        extra = Control(a)
        try:
            contact_updates(extra, 10)
        finally:
            extra.close()
        seqs = []
        w.sock.settimeout(20)
        while len(seqs) < total + 10:
            m = w.recv()
            self.assertIsNotNone(m, "watch closed after %d events" % len(seqs))
            if "event" in m:
                seqs.append(m["event"]["seq"])
        w.close()
        self.assertEqual(seqs, list(range(1, total + 11)))
        pages = a.log().count("backlog page")
        self.assertGreaterEqual(pages, total // PAGE)


class ListingPages(NodeTestCase):
    """contact.list and message.list answer pages (docs/CONTROL.md)."""
    N = 25

    def setUp(self):
        super().setUp()
        self.a = self.node("a", port=True)
        self.a.init()
        cards = []
        for i in range(self.N):
            p = self.node("p%02d" % i, port=True)
            p.init("Peer %d" % i)
            cards.append(p.card())
        self.a.start()
        self.ctl = Control(self.a)
        for i, card in enumerate(cards):
            self.ctl.call("contact.add", card=card, alias="p%02d" % i)

    def tearDown(self):
        self.ctl.close()
        super().tearDown()

    def refused(self, verb, name, **args):
        want = self.ctl.send(verb, **args)
        m = self.ctl.recv()
        self.assertEqual(m["id"], want)
        self.assertFalse(m["ok"], m)
        self.assertEqual(m["error"]["name"], name, m)
        return m["error"]["message"]

    def test_contact_list_pages(self):
        full = self.ctl.call("contact.list", limit=1000)
        ids = [c["id"] for c in full]
        self.assertEqual(len(ids), self.N)
        self.assertEqual(self.ctl.call("contact.list"), full)  # default page: 100
        got, after = [], None
        while True:
            args = {"limit": 10}
            if after:
                args["after"] = after
            page = self.ctl.call("contact.list", **args)
            self.assertLessEqual(len(page), 10)
            got += [c["id"] for c in page]
            if len(page) < 10:
                break
            after = page[-1]["id"]
        self.assertEqual(got, ids)
        self.assertEqual([c["id"] for c in self.ctl.call("contact.list", limit=10,
                                                         before=ids[10])], ids[:10])
        self.assertEqual([c["id"] for c in self.ctl.call("contact.list", limit=2,
                                                         before=ids[3])], ids[1:3])
        self.assertEqual(self.ctl.call("contact.list", limit=5, before=ids[0]), [])
        self.assertEqual(self.ctl.call("contact.list", after=ids[-1]), [])
        # A cursor need not be a contact any more.
        self.ctl.call("contact.rm", name=ids[5])
        self.assertEqual([c["id"] for c in self.ctl.call("contact.list", limit=3,
                                                         after=ids[5])], ids[6:9])
        self.refused("contact.list", "E_BAD_VALUE", limit=0)
        self.refused("contact.list", "E_BAD_VALUE", limit=1001)
        self.refused("contact.list", "E_BAD_REQUEST", limit="ten")
        self.refused("contact.list", "E_BAD_REQUEST", after=ids[0], before=ids[1])
        self.assertIn("text id", self.refused("contact.list", "E_BAD_VALUE", after="tf1nope"))

    def test_message_list_pages(self):
        for i in range(self.N):
            self.ctl.send("message.send", name="p%02d" % (i % 3), text="note %d" % i)
        for _ in range(self.N):
            self.assertTrue(self.ctl.recv()["ok"])
        full = self.ctl.call("message.list", limit=1000)
        self.assertEqual(len(full), self.N)
        keys = [(m["time"], bytes.fromhex(m["id"])) for m in full]
        self.assertEqual(keys, sorted(keys))
        ids = [m["id"] for m in full]
        # Without a cursor, the newest page, oldest first.
        self.assertEqual([m["id"] for m in self.ctl.call("message.list", limit=10)], ids[-10:])
        self.assertEqual([m["id"] for m in self.ctl.call("message.list", limit=10,
                                                         before=ids[-10])], ids[-20:-10])
        self.assertEqual([m["id"] for m in self.ctl.call("message.list", limit=10,
                                                         before=ids[5])], ids[:5])
        self.assertEqual([m["id"] for m in self.ctl.call("message.list", limit=10,
                                                         after=ids[4])], ids[5:15])
        self.assertEqual(self.ctl.call("message.list", after=ids[-1]), [])
        # With a contact: only theirs, paged the same way.
        theirs = [m["id"] for m in full if m["alias"] == "p01"]
        self.assertEqual([m["id"] for m in self.ctl.call("message.list", name="p01",
                                                         limit=3)], theirs[-3:])
        self.assertEqual([m["id"] for m in self.ctl.call("message.list", name="p01", limit=3,
                                                         after=theirs[0])], theirs[1:4])
        self.refused("message.list", "E_BAD_VALUE", after="xyz")
        self.refused("message.list", "E_NOT_FOUND", before="00" * 16)
        self.refused("message.list", "E_BAD_VALUE", limit=1001)


if __name__ == "__main__":
    unittest.main()
