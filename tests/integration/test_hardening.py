# SPDX-License-Identifier: MIT
"""Local hardening of twofoldd (issue 12, item 6): the control socket path is
checked by the node itself, the home and key must be the running user's, the
process is not dumpable and has no core dumps, the crash hook exists only in
test builds, and an over-long config line is an error.

The ownership tests need root (they chown to uid 65534, "nobody"); they are
skipped otherwise."""
import json
import os
import subprocess
import sys
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import TWOFOLDD, Node, NodeTestCase, wait_for  # noqa: E402

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


if __name__ == "__main__":
    unittest.main()
