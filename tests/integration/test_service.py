# SPDX-License-Identifier: MIT
"""twofoldd as a service: the readiness protocol of systemd's sd_notify
(node/notify.h) heard on a test-owned Unix datagram socket, and the CLI's
wait for a node that is starting (cli/ctl.h, TF_CLI_CTL_START_WAIT_MS)."""
import fcntl
import os
import signal
import socket
import subprocess
import sys
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import TWOFOLD, TWOFOLDD, NodeTestCase, wait_for  # noqa: E402

EXIT_NODE = 3
START_WAIT_S = 10.0  # TF_CLI_CTL_START_WAIT_MS
START_GRACE_S = 1.0  # TF_CLI_CTL_START_GRACE_MS


class Notify(NodeTestCase):
    def notify_socket(self, abstract=False):
        s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        if abstract:
            name = "tf-notify-%d-%d" % (os.getpid(), time.monotonic_ns())
            s.bind("\0" + name)
            addr = "@" + name
        else:
            addr = os.path.join(self.root, "notify.sock")
            s.bind(addr)
        s.settimeout(20)
        self.addCleanup(s.close)
        return s, addr

    def datagrams(self, sock, until):
        """Datagrams received until one holds the line `until`."""
        got = []
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            d = sock.recv(4096).decode()
            got.append(d)
            if until in d.split("\n"):
                return got
        self.fail("no %r within 20 s: %r" % (until, got))

    def run_notify(self, abstract):
        a = self.node("alice", port=True)
        a.init()
        sock, addr = self.notify_socket(abstract)
        a.start(expect_ready=False, env={"NOTIFY_SOCKET": addr})
        got = self.datagrams(sock, "READY=1")
        self.assertEqual(len(got), 1, got)
        self.assertIn("STATUS=ready: control %s, listening on %s" % (a.socket_path(), a.listen),
                      got[0].split("\n"))
        # READY=1 is sent only once both sockets accept: connect to each at
        # once, with no retry.
        c = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        c.connect(a.socket_path())
        c.close()
        host, port = a.listen.rsplit(":", 1)
        socket.create_connection((host, int(port)), timeout=5).close()
        # SIGHUP: RELOADING=1, then READY=1 again once the files are read.
        a.proc.send_signal(signal.SIGHUP)
        got = self.datagrams(sock, "READY=1")
        self.assertEqual(got[0].split("\n"), ["RELOADING=1"], got)
        self.assertIn("STATUS=configuration and policy reloaded", got[-1].split("\n"))
        # A refused policy: the node keeps serving and says so.
        with open(os.path.join(a.home, "policy"), "w") as f:
            f.write("accept when nonsense\n")
        a.proc.send_signal(signal.SIGHUP)
        got = self.datagrams(sock, "READY=1")
        self.assertIn("STATUS=policy refused, the old rules kept", got[-1].split("\n"))
        a.proc.send_signal(signal.SIGTERM)
        got = self.datagrams(sock, "STOPPING=1")
        self.assertEqual(a.wait_exit(), 0)

    def test_ready_reload_stopping_on_a_path(self):
        self.run_notify(abstract=False)

    def test_ready_on_an_abstract_address(self):
        self.run_notify(abstract=True)

    def test_unreachable_notify_socket_is_logged_and_the_node_serves(self):
        a = self.node("alice", port=True)
        a.init()
        a.start(env={"NOTIFY_SOCKET": os.path.join(self.root, "nobody-listens")})
        self.assertIn("cannot notify the service manager", a.log())
        self.assertEqual(a.json("status")["contacts"], 0)

    def test_no_notify_socket_sends_nothing(self):
        """Without NOTIFY_SOCKET the node starts as before (and logs no
        notice failure)."""
        a = self.node("alice", port=True)
        a.init()
        env = dict(os.environ)
        env.pop("NOTIFY_SOCKET", None)
        a.start()
        self.assertNotIn("notify", a.log())


def lock_held(home):
    fd = os.open(os.path.join(home, "twofoldd.lock"), os.O_RDONLY)
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        return False
    except BlockingIOError:
        return True
    finally:
        os.close(fd)


class StartAndUse(NodeTestCase):
    def test_start_and_use_at_once_100_times(self):
        """`twofoldd --home H & twofold --home H status`, as the README's
        block does: the CLI waits for the node that is starting, so none of
        100 runs says "not running"."""
        a = self.node("alice", port=True)
        a.init()
        script = '"$1" --home "$3" >>"$4" 2>&1 & echo $!; exec "$2" --home "$3" --json status'
        for i in range(100):
            r = subprocess.run(["sh", "-c", script, "sh", TWOFOLDD, TWOFOLD, a.home, a.log_path],
                               capture_output=True, text=True, timeout=60)
            pid = int(r.stdout.split("\n", 1)[0])
            try:
                self.assertEqual(r.returncode, 0, "run %d: %s%s" % (i, r.stdout, r.stderr))
                self.assertIn('"contacts": 0', r.stdout, "run %d" % i)
            finally:
                os.kill(pid, signal.SIGTERM)
                # The node is the shell's child, not ours (reaped by init):
                # it has stopped once it said so and let go of its lock.
                wait_for("run %d: twofoldd %d to stop" % (i, pid),
                         lambda: a.log().count("node: stopped") == i + 1 and not lock_held(a.home),
                         20, interval=0.005)
        self.assertEqual(a.log().count("ready id="), 100)
        self.assertNotIn("already running", a.log())


class WaitForStarting(NodeTestCase):
    def hold_lock(self, home):
        fd = os.open(os.path.join(home, "twofoldd.lock"), os.O_RDWR | os.O_CREAT, 0o600)
        fcntl.flock(fd, fcntl.LOCK_EX)
        self.addCleanup(os.close, fd)
        return fd

    def timed_status(self, a):
        t0 = time.monotonic()
        r = a.cli("status", check=False, timeout=60)
        return r, time.monotonic() - t0

    def test_not_running_is_said_at_once(self):
        a = self.node("alice", port=True)
        a.init()
        r, took = self.timed_status(a)
        self.assertEqual(r.returncode, EXIT_NODE, r.stderr)
        self.assertIn("twofoldd is not running for %s" % a.home, r.stderr)
        self.assertGreaterEqual(took, START_GRACE_S)
        self.assertLess(took, START_GRACE_S + 5)

    def test_lock_held_without_socket_waits_the_documented_time(self):
        a = self.node("alice", port=True)
        a.init()
        self.hold_lock(a.home)
        r, took = self.timed_status(a)
        self.assertEqual(r.returncode, EXIT_NODE, r.stderr)
        self.assertIn("holds its lock but did not open its control socket within 10 s",
                      r.stderr)
        self.assertGreaterEqual(took, START_WAIT_S)
        self.assertLess(took, START_WAIT_S + 10)

    def test_socket_that_appears_while_the_lock_is_held_is_used(self):
        """A socket that appears 1 s after the CLI started is connected to:
        this fake node accepts and hangs up, which the CLI reports as a
        closed connection, not as "not running"."""
        a = self.node("alice", port=True)
        a.init()
        self.hold_lock(a.home)
        cli = subprocess.Popen([TWOFOLD, "--home", a.home, "status"], stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True)
        time.sleep(1.0)
        self.assertIsNone(cli.poll(), "the CLI did not wait")
        srv = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.addCleanup(srv.close)
        srv.bind(a.socket_path())
        srv.listen(1)
        srv.settimeout(20)
        conn, _ = srv.accept()
        conn.close()
        out, err = cli.communicate(timeout=30)
        self.assertEqual(cli.returncode, EXIT_NODE, err)
        self.assertIn("closed the connection", err)

    def test_a_starting_node_is_not_refused_by_the_cli_probe(self):
        """The CLI's lock test (a shared lock for an instant, every 10 ms)
        never makes a node that starts at that moment think another node
        runs: 30 starts, each raced by 8 CLIs launched with it.  A CLI is
        served, or (launched before the node reached its lock, on a slow
        machine) says the node is not running; nothing else."""
        a = self.node("alice", port=True)
        a.init()
        served = 0
        for i in range(30):
            readies = a.log().count("ready id=")
            a.start(expect_ready=False)
            probes = [subprocess.Popen([TWOFOLD, "--home", a.home, "status"],
                                       stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                                       text=True)
                      for _ in range(8)]
            for p in probes:
                _, err = p.communicate(timeout=60)
                self.assertIn(p.returncode, (0, EXIT_NODE), "start %d: %s" % (i, err))
                if p.returncode != 0:
                    self.assertIn("twofoldd is not running", err)
                served += p.returncode == 0
            a.wait_log("ready id=", 20, readies + 1)
            self.assertEqual(a.stop(), 0)
        self.assertNotIn("already running", a.log())
        self.assertGreater(served, 0)


if __name__ == "__main__":
    unittest.main()
