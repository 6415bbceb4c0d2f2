# SPDX-License-Identifier: MIT
"""Real twofoldd processes for the torture run: temporary homes on loopback,
the real CLI, and a chaos thread that kill -9s, restarts and SIGSTOPs them.
In power-loss mode each home is on its own tf-plfs mount
(tests/powerloss/plfs.c) and every kill is a power cut: what the node had
not synced is lost, the file system is remounted on what survived and the
node restarted on it.

Standard library only (Debian's /usr/bin/python3).  Binaries come from
TF_TWOFOLDD / TF_TWOFOLD, as for the integration tests.
"""
import json
import os
import signal
import subprocess
import sys
import threading
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "integration"))
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "powerloss"))
from harness import TWOFOLD, TWOFOLDD, free_port  # noqa: E402
from plfs import Plfs, PlfsError  # noqa: E402

READY_TIMEOUT = 20.0  # a (re)start must log "ready" within this
CLI_TIMEOUT = 30.0  # longer than any SIGSTOP the run inflicts
EXIT_REFUSED = 1  # the node refused (cli/args.h)
EXIT_NODE = 3  # the node is not running or the link to it broke
CRASH_HOOK = {"TWOFOLD_TEST_CRASH": "after-receive-commit"}  # node/node.c
# Power cuts that wait for the node's next commit and land inside it
# (tests/powerloss/plfs.c counts data.mdb's syncs): with the data pages
# written but not synced (the last write torn), between the data sync and
# the meta page, or with the meta page durable but before anything leaves.
# If no commit comes within ARMED_WAIT seconds, the power goes at once.
ARMED_CUTS = {"at-data-sync": "arm cut-before fsync data.mdb 1 tear",
              "between-syncs": "arm cut-before syncwrite data.mdb 1",
              "after-meta": "arm cut-after syncwrite data.mdb 1"}
ARMED_WAIT = 1.0


class Refused(Exception):
    """The node answered with an error (exit 1); .name is the stable name."""

    def __init__(self, verb, name, message):
        super().__init__("%s: %s: %s" % (verb, name, message))
        self.name = name
        self.message = message


class Unavailable(Exception):
    """The node could not be asked (down, killed mid-call, or hung)."""


class NodeFailure(Exception):
    """A node misbehaved: exited when it should not have, did not restart,
    or did not stop cleanly.  Always a finding."""


class TortureNode:
    """One home directory and the twofoldd process on it.  The process is
    owned by the chaos thread once the run starts; the CLI may be used from
    any thread at any time (it fails with Unavailable while the node is
    down)."""

    def __init__(self, root, name, power_seed=None, log_level="info"):
        self.name = name
        self.log_level = log_level
        self.fs = None  # the tf-plfs mount holding the home, in power-loss mode
        if power_seed is not None:
            self.fs = Plfs(os.path.join(root, name + ".disk"),
                           os.path.join(root, name + ".mnt"),
                           os.path.join(root, name + ".ctl"), seed=power_seed)
            self.fs.mount()
            self.home = os.path.join(self.fs.mnt, name)
        else:
            self.home = os.path.join(root, name)
        self.power_cuts = 0
        self.armed_cuts = 0  # of them, cuts that landed inside a commit
        self.listen = "127.0.0.1:%d" % free_port()
        self.log_path = os.path.join(root, name + ".log")
        self.proc = None
        self.armed = False  # started with the crash-after-receive hook
        self.lock = threading.Lock()
        self.text_id = None

    # CLI ---------------------------------------------------------------
    def run_cli(self, *args, timeout=CLI_TIMEOUT, stdin=None):
        """Runs `twofold --home HOME ARGS`; returns the CompletedProcess."""
        cmd = [TWOFOLD, "--home", self.home] + [str(a) for a in args]
        return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, input=stdin)

    def call(self, *args):
        """`twofold --json ARGS` once: the parsed result, Refused for a node
        error, Unavailable when the node could not answer."""
        try:
            r = self.run_cli("--json", *args)
        except subprocess.TimeoutExpired:
            raise Unavailable("%s: %s timed out" % (self.name, args[0]))
        if r.returncode == 0:
            return json.loads(r.stdout) if r.stdout.strip() else None
        if r.returncode == EXIT_REFUSED:
            try:
                err = json.loads(r.stdout)["error"]
            except (ValueError, KeyError, TypeError):
                raise Unavailable("%s: %s: %s" % (self.name, args[0], r.stderr.strip()))
            raise Refused(args[0], err.get("name"), err.get("message"))
        raise Unavailable("%s: %s exit %d: %s" % (self.name, args[0], r.returncode,
                                                  r.stderr.strip()))

    def call_retry(self, *args, deadline):
        """call(), retried while the node is unavailable, until deadline
        (time.monotonic()); Unavailable after that."""
        while True:
            try:
                return self.call(*args)
            except Unavailable:
                if time.monotonic() >= deadline:
                    raise
                time.sleep(0.1)

    PAGE = 1000  # the node's largest page (intro.list, inbox.list)

    def list_all(self, *args, deadline):
        """Every item of a listing verb (intros, inbox), page by page, each
        page asked with call_retry."""
        items = []
        before = ()
        while True:
            page = self.call_retry(*args, "--limit", str(self.PAGE), *before, deadline=deadline)
            items += page
            if len(page) < self.PAGE:
                return items
            before = ("--before", page[-1]["id"])

    def must(self, *args):
        """A setup step that must succeed: the CLI's plain output."""
        r = self.run_cli(*args)
        if r.returncode != 0:
            raise NodeFailure("%s: twofold %s failed (%d): %s" % (
                self.name, " ".join(map(str, args)), r.returncode, r.stderr.strip()))
        return r.stdout

    # Home --------------------------------------------------------------
    def init(self, config):
        self.must("init", "--name", self.name.upper(), "--listen", self.listen)
        with open(os.path.join(self.home, "config"), "w") as f:
            for key, value in config.items():
                f.write("%s = %d\n" % (key, value))
        self.text_id = json.loads(self.must("--json", "id"))["id"]
        self.checkpoint()

    def write_policy(self, text):
        with open(os.path.join(self.home, "policy"), "w") as f:
            f.write(text)
        self.checkpoint()

    def checkpoint(self):
        """Power-loss mode: makes what the test wrote by hand (config,
        policy) durable, as an installer would."""
        if self.fs is not None:
            self.fs.ctl("sync")

    def card(self):
        return self.must("card").strip()

    def log_count(self, text):
        """How many lines of the node's log (all its runs) contain text."""
        try:
            with open(self.log_path, "r", errors="replace") as f:
                return sum(1 for line in f if text in line)
        except FileNotFoundError:
            return 0

    # Process -----------------------------------------------------------
    def _log_size(self):
        try:
            return os.path.getsize(self.log_path)
        except FileNotFoundError:
            return 0

    def start(self, armed=False):
        """Starts twofoldd and waits for its "ready" line (NodeFailure if it
        exits or stays silent)."""
        with self.lock:
            offset = self._log_size()
            env = dict(os.environ)
            if armed:
                env.update(CRASH_HOOK)
            with open(self.log_path, "ab") as log:
                self.proc = subprocess.Popen(
                    [TWOFOLDD, "--home", self.home, "--log-level", self.log_level],
                    stdout=log, stderr=log, env=env)
            self.armed = armed
            proc = self.proc
        deadline = time.monotonic() + READY_TIMEOUT
        while time.monotonic() < deadline:
            with open(self.log_path, "rb") as f:
                f.seek(offset)
                if b"ready id=" in f.read():
                    return
            if proc.poll() is not None:
                raise NodeFailure("%s exited (%d) while starting; see %s" % (
                    self.name, proc.returncode, self.log_path))
            time.sleep(0.02)
        raise NodeFailure("%s did not log 'ready' within %.0fs; see %s" % (
            self.name, READY_TIMEOUT, self.log_path))

    def kill9(self, power_mode="all"):
        """kill -9; in power-loss mode a power cut in power_mode first (see
        tests/powerloss/plfs.c), then power back on (the file system
        remounted on what survived)."""
        with self.lock:
            if self.fs is not None:
                self._cut(power_mode)
            self.proc.kill()
            self.proc.wait()
            self.proc = None
            self.power_on()

    def _cut(self, mode):
        if mode not in ARMED_CUTS:
            self.fs.cut(mode)
            return
        self.fs.ctl(ARMED_CUTS[mode])
        deadline = time.monotonic() + ARMED_WAIT
        while time.monotonic() < deadline:
            if self.fs.stats()["dead"]:
                self.armed_cuts += 1
                return
            time.sleep(0.01)
        self.fs.ctl("disarm")
        try:
            self.fs.cut("all")
        except PlfsError:  # the armed cut fired after all
            self.armed_cuts += 1

    def power_on(self):
        """Power-loss mode: after the node died, every unsynced write is lost
        (unless a cut already dropped them), and the file system comes back
        on what survived."""
        if self.fs is None:
            return
        if not self.fs.stats()["dead"]:
            self.fs.cut("all")
        self.fs.unmount()
        self.fs.mount()
        self.power_cuts += 1

    def unmount(self):
        if self.fs is not None:
            self.fs.unmount()

    def signal(self, sig):
        with self.lock:
            self.proc.send_signal(sig)

    def exited(self):
        """The exit status if the process ended by itself, else None."""
        with self.lock:
            if self.proc is None:
                return None
            return self.proc.poll()

    def forget(self):
        """The process exited by itself: forgets it (and, in power-loss mode,
        its unsynced writes, as if the power had failed at that moment)."""
        with self.lock:
            self.proc = None
            self.power_on()

    def stop(self, timeout=20.0):
        """SIGTERM, then the exit status (NodeFailure if it hangs)."""
        with self.lock:
            proc, self.proc = self.proc, None
        if proc is None:
            return None
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
                raise NodeFailure("%s did not stop within %.0fs of SIGTERM" % (self.name, timeout))
        return proc.returncode

    def log_tail(self, lines=30):
        try:
            with open(self.log_path, "r", errors="replace") as f:
                return "".join(f.readlines()[-lines:])
        except FileNotFoundError:
            return ""


class Chaos(threading.Thread):
    """Kills and restarts nodes at the planned moments, SIGSTOPs one node
    for a while (a hung peer), and restarts nodes that crashed on the test
    hook.  Any other exit of a node is recorded as a failure.

    schedule: sorted list of (t, kind, node_index, param) with kind "kill"
    (param: downtime in s, and whether the restart arms the crash hook) or
    "stop" (param: seconds stopped), t in seconds from start()."""

    def __init__(self, nodes, schedule, log):
        super().__init__(name="chaos", daemon=True)
        self.nodes = nodes
        self.schedule = list(schedule)
        self.log = log
        self.kills = 0
        self.stops = 0
        self.stopped_s = 0.0
        self.hook_crashes = 0
        self.failures = []  # texts: node exits nobody asked for, failed restarts
        self.stopped = None  # the node now SIGSTOPped, if any
        self.broken = False  # a node could not be restarted: the run cannot go on
        self.schedule_done = threading.Event()
        self._quit = threading.Event()
        self.t0 = None

    def quit(self):
        """Ends supervision (after the schedule, which always completes)."""
        self._quit.set()
        self.join(120)

    def run(self):
        self.t0 = time.monotonic()
        try:
            for t, kind, idx, param in self.schedule:
                while time.monotonic() - self.t0 < t:
                    self._supervise()
                    time.sleep(0.05)
                node = self.nodes[idx]
                if kind == "kill":
                    self._kill_restart(node, *param)
                else:
                    self._stop_cont(node, param)
            self.schedule_done.set()
            while not self._quit.is_set():
                self._supervise()
                time.sleep(0.05)
        except NodeFailure as e:
            self.failures.append(str(e))
            self.broken = True
        finally:
            self.schedule_done.set()

    def _kill_restart(self, node, downtime, armed, power_mode="all"):
        self._supervise()
        node.kill9(power_mode)
        self.kills += 1
        self.log("chaos: %s %s (#%d), down %.2fs%s" % (
            "power cut (%s) on" % power_mode if node.fs is not None else "kill -9",
            node.name, self.kills, downtime, ", restart with crash hook" if armed else ""))
        time.sleep(downtime)
        node.start(armed=armed)

    def _stop_cont(self, node, seconds):
        self._supervise()
        self.log("chaos: SIGSTOP %s for %.1fs" % (node.name, seconds))
        self.stopped = node
        node.signal(signal.SIGSTOP)
        time.sleep(seconds)
        node.signal(signal.SIGCONT)
        self.stopped = None
        self.stops += 1
        self.stopped_s += seconds

    def _supervise(self):
        """Restarts a node that the crash hook killed; records any other
        exit as a failure (and restarts it too, so the run can go on)."""
        for node in self.nodes:
            rc = node.exited()
            if rc is None:
                continue
            node.forget()
            if node.armed and rc == -signal.SIGKILL:
                self.hook_crashes += 1
                self.log("chaos: %s died on the crash-after-receive hook; restarting" % node.name)
            else:
                msg = "%s exited by itself with status %d; log tail:\n%s" % (
                    node.name, rc, node.log_tail())
                self.failures.append(msg)
                self.log("chaos: FAILURE " + msg)
            node.start(armed=False)
