# SPDX-License-Identifier: MIT
"""Helpers for integration tests: temporary homes, real twofoldd processes,
the real CLI.  Standard library only (runs under Debian's /usr/bin/python3).

Binaries come from the environment (set by ctest): TF_TWOFOLDD, TF_TWOFOLD,
TF_TESTTOOL.
"""
import json
import os
import shutil
import signal
import socket
import struct
import subprocess
import tempfile
import threading
import time
import unittest

TWOFOLDD = os.environ.get("TF_TWOFOLDD", "twofoldd")
TWOFOLD = os.environ.get("TF_TWOFOLD", "twofold")
TESTTOOL = os.environ.get("TF_TESTTOOL", "tf-testtool")
FLOOD = os.environ.get("TF_FLOOD", "tf-flood")

READY_TIMEOUT = 20.0
CLI_TIMEOUT = 30.0

# Settings every test home gets (node/config.h) unless a test says otherwise:
# closes caused by a decline or a withdrawal wait 0-1 s instead of 1-24 h.
TEST_CONFIG = {"close_delay_min_s": 0, "close_delay_max_s": 1}


class Node:
    """One home directory and (when started) the twofoldd process on it."""

    def __init__(self, root, name, listen=None):
        self.name = name
        self.home = os.path.join(root, name)
        self.listen = listen
        self.proc = None
        self.log_path = os.path.join(root, name + ".log")
        self.log_file = None

    # CLI ---------------------------------------------------------------
    def cli(self, *args, check=True, input=None, timeout=CLI_TIMEOUT):
        cmd = [TWOFOLD, "--home", self.home] + [str(a) for a in args]
        r = subprocess.run(cmd, input=input, capture_output=True, text=True,
                           timeout=timeout)
        if check and r.returncode != 0:
            raise AssertionError("%s failed (%d):\nstdout: %s\nstderr: %s" % (
                " ".join(cmd), r.returncode, r.stdout, r.stderr))
        return r

    def json(self, *args):
        r = self.cli("--json", *args)
        return json.loads(r.stdout)

    def init(self, display_name=None, *extra):
        args = ["init", "--name", display_name or self.name.capitalize()]
        if self.listen:
            args += ["--listen", self.listen]
        r = self.cli(*args, *extra)
        self.write_config()
        return r

    def card(self):
        return self.cli("card").stdout.strip()

    def text_id(self):
        return self.json("id")["id"]

    def write_config(self, **settings):
        """Writes <home>/config (node/config.h): TEST_CONFIG, then settings
        over it; read when the node starts."""
        merged = dict(TEST_CONFIG)
        merged.update(settings)
        with open(os.path.join(self.home, "config"), "w") as f:
            for key, value in merged.items():
                f.write("%s = %d\n" % (key, value))

    def port(self):
        """The port of the listen address given at init."""
        return int(self.listen.rsplit(":", 1)[1])

    # Daemon ------------------------------------------------------------
    def start(self, expect_ready=True, extra=(), env=None):
        """Starts twofoldd; env (a dict) is added to this process's
        environment, e.g. {"TWOFOLD_TEST_CRASH": "after-receive-commit"}."""
        # The log is appended across restarts: wait for one more ready line.
        readies = self.log().count("ready id=")
        self.log_file = open(self.log_path, "ab")
        full_env = None
        if env:
            full_env = dict(os.environ)
            full_env.update(env)
        self.proc = subprocess.Popen(
            [TWOFOLDD, "--home", self.home, "--log-level", "debug", *extra],
            stdout=self.log_file, stderr=self.log_file, env=full_env)
        if expect_ready:
            self.wait_log("ready id=", READY_TIMEOUT, readies + 1)
        return self.proc

    def log(self):
        try:
            with open(self.log_path, "r", errors="replace") as f:
                return f.read()
        except FileNotFoundError:
            return ""

    def wait_log(self, needle, timeout, count=1):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.log().count(needle) >= count:
                return
            if self.proc is not None and self.proc.poll() is not None:
                raise AssertionError("%s exited (%d) before logging %r:\n%s" % (
                    self.name, self.proc.returncode, needle, self.log()))
            time.sleep(0.02)
        raise AssertionError("%s did not log %r within %.0fs:\n%s" % (
            self.name, needle, timeout, self.log()))

    def stop(self, timeout=20):
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
                raise AssertionError("%s did not stop on SIGTERM" % self.name)
        rc = self.proc.returncode
        self.proc = None
        self.log_file.close()
        return rc

    def wait_exit(self, timeout=20):
        """Waits for a node that is expected to exit by itself; returns its
        exit status."""
        rc = self.proc.wait(timeout)
        self.proc = None
        self.log_file.close()
        return rc

    def kill9(self):
        self.proc.kill()
        self.proc.wait()
        self.proc = None
        self.log_file.close()

    # Raw control socket -------------------------------------------------
    def socket_path(self):
        return os.path.join(self.home, "control.sock")

    def raw_connect(self):
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.settimeout(10)
        s.connect(self.socket_path())
        return s


def watch_events(node, done, timeout=20):
    """Reads node's whole event log with `twofold --json watch --since 0`
    until done(events) is true or timeout seconds pass, then interrupts the
    watch.  Returns (events, finished, watch exit status)."""
    w = subprocess.Popen([TWOFOLD, "--home", node.home, "--json", "watch", "--since", "0"],
                         stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    events = []

    def reader():
        for line in w.stdout:
            ev = json.loads(line)
            events.append(ev.get("event", ev))
            if done(events):
                return
    t = threading.Thread(target=reader, daemon=True)
    t.start()
    t.join(timeout)
    w.send_signal(signal.SIGINT)
    try:
        w.wait(10)
    except subprocess.TimeoutExpired:
        w.kill()
        w.wait()
    w.stdout.close()
    return events, not t.is_alive(), w.returncode


def free_port(host="127.0.0.1"):
    """A TCP port that is free right now (bind to port 0, read it, close).
    Someone else may take it before the node binds it: an accepted race."""
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        s.bind((host, 0))
        return s.getsockname()[1]
    finally:
        s.close()


def wait_for(what, predicate, timeout, interval=0.05):
    """Polls predicate() until it returns a true value (returned), or fails
    the test after timeout seconds, naming what was awaited and the last
    value seen."""
    deadline = time.monotonic() + timeout
    last = None
    while True:
        last = predicate()
        if last:
            return last
        if time.monotonic() >= deadline:
            raise AssertionError("timed out after %.0fs waiting for %s (last: %r)" % (
                timeout, what, last))
        time.sleep(interval)


def testtool(*args, timeout=60):
    """Runs tf-testtool; returns the CompletedProcess (text)."""
    return subprocess.run([TESTTOOL] + [str(a) for a in args], capture_output=True,
                          text=True, timeout=timeout)


def flood(*args, timeout=300):
    """Runs tf-flood (tests/integration/tf_flood.c); returns the
    CompletedProcess (text)."""
    return subprocess.run([FLOOD] + [str(a) for a in args], capture_output=True, text=True,
                          timeout=timeout)


def recv_frame(sock):
    """Reads one control frame body (bytes), or None at EOF."""
    head = recv_exact(sock, 4)
    if head is None:
        return None
    (n,) = struct.unpack(">I", head)
    return recv_exact(sock, n)


def recv_exact(sock, n):
    buf = b""
    while len(buf) < n:
        chunk = sock.recv(n - len(buf))
        if not chunk:
            return None if not buf else buf
        buf += chunk
    return buf


class NodeTestCase(unittest.TestCase):
    """Creates a temporary root per test; stops every node and dumps the
    logs of all nodes when a test fails."""

    def setUp(self):
        self.root = tempfile.mkdtemp(prefix="tf-it-")
        self.nodes = []

    def node(self, name, listen=None, port=False):
        """A node named name; port=True gives it a free loopback port to
        listen on (passed to init)."""
        if port and listen is None:
            listen = "127.0.0.1:%d" % free_port()
        n = Node(self.root, name, listen)
        self.nodes.append(n)
        return n

    def cast3(self, **config):
        """Carol, Alice and Bob, running on free loopback ports with config
        added to their homes: Carol has Alice and Bob as contacts ("alice",
        "bob"), each of them has Carol ("carol")."""
        nodes = []
        for name in ("carol", "alice", "bob"):
            n = self.node(name, port=True)
            n.init()
            if config:
                n.write_config(**config)
            n.start()
            nodes.append(n)
        carol, alice, bob = nodes
        carol.cli("contact", "add", alice.card(), "--alias", "alice")
        carol.cli("contact", "add", bob.card(), "--alias", "bob")
        alice.cli("contact", "add", carol.card(), "--alias", "carol")
        bob.cli("contact", "add", carol.card(), "--alias", "carol")
        return carol, alice, bob

    def tearDown(self):
        failed = self._outcome_failed()
        unclean = []
        for n in self.nodes:
            try:
                # A node must always shut down cleanly (exit 0): under the
                # sanitizers this also catches leaks and memory errors.
                if n.proc is not None and n.stop() != 0:
                    unclean.append(n.name)
            except AssertionError:
                unclean.append(n.name)
        if unclean:
            failed = True
        if failed:
            for n in self.nodes:
                print("\n----- log of %s -----\n%s" % (n.name, n.log()))
        shutil.rmtree(self.root, ignore_errors=True)
        if unclean and not self._outcome_failed():
            self.fail("node(s) did not exit cleanly: %s" % ", ".join(unclean))

    def _outcome_failed(self):
        outcome = getattr(self, "_outcome", None)
        if outcome is None:
            return False
        result = getattr(outcome, "result", None)
        if result is None:
            return False
        return any(t is self for t, _ in result.failures + result.errors)
