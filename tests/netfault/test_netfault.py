# SPDX-License-Identifier: MIT
"""Network faults between real hosts (issue 8): twofoldd nodes on separate
network namespaces ("test hosts") joined by veth pairs to a router namespace,
with loss, delay and partitions injected between them, and introductions that
must still complete, on both sides, exactly once.

Topology (one per test; every name carries this process's pid, so parallel
runs do not collide):

    host 1 (connector)  10.77.1.2 ──veth── r1 ┐
    host 2 (parties a*) 10.77.2.2 ──veth── r2 ├ router namespace (forwarding)
    host 3 (parties b*) 10.77.3.2 ──veth── r3 ┘

Carol, the connector, runs on host 1; parties a1..aN on host 2 and b1..bN on
host 3 (one twofoldd each, on their own port).  Every party knows Carol and
has the policy "accept when connector is known" (so nodes answer by
themselves), except where a test says otherwise.  Nodes are started with `ip
netns exec HOST twofoldd`; the CLI reaches them through the control socket in
their home, a filesystem path, from the root namespace.

Faults, on one host's link (both directions):
  - loss and delay: `tc netem` on both ends of the veth when the kernel has
    sch_netem; otherwise a user-space netem (shaper.py, a TUN device in the
    router namespace that every forwarded packet goes through).  Set
    TF_NETFAULT_BACKEND=netem or =shaper to force one.
  - a partition: `ip link set down` of the router's end of the link (the host
    is unreachable at once), or a silent black hole (loss 100%: connections
    hang until the node's own timeouts notice).

Scenarios (each checks, at the end, that every intro is introduced at the
connector and on both parties, each party holding exactly one contact entry
for the other with Carol's provenance, and that every outbox drains):
  Loss                  25% loss + 75 ms delay on both party links, a batch
                        of 16 intros (every a with every b);
  Partition             host 2's link down for 8 s while intros are proposed
                        (the reachable side accepts meanwhile), then healed;
  PartitionMidReply     proposals delivered, then host 2 cut off and its
                        owners accept: the replies wait, and go out on heal;
  Flapping              host 2's link going down and up at random (seeded)
                        for 8 s under a batch of 9 intros;
  BlackholeMidExchange  a 250 ms link turns into a silent black hole during
                        the connect/handshake, while the reply is in flight,
                        while the introduction is in flight; held 5 s, longer
                        than the nodes' handshake and idle timeouts.

Needs root, iproute2 (`ip`, `tc`) and network namespaces; skipped, saying
why ("netfault: SKIPPED: ..."), where any of these is missing.  Completion
times are printed (stderr) as "netfault: ..." lines.  A run killed halfway
leaves namespaces behind: the next run deletes them (and that run's nodes
and homes).  Run alone:

    sudo env TF_TWOFOLDD=build/node/twofoldd TF_TWOFOLD=build/cli/twofold \
        /usr/bin/python3 tests/netfault/test_netfault.py -v [Loss|Partition|...]
or  (cd build && ctest -L netfault -V)
"""
import os
import random
import shutil
import subprocess
import sys
import tempfile
import time
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "integration"))
import harness  # noqa: E402
from harness import Node, NodeTestCase, wait_for  # noqa: E402

PY = "/usr/bin/python3"
SHAPER = os.path.join(HERE, "shaper.py")
PREFIX = "10.77."
CONNECTOR_HOST, A_HOST, B_HOST = 1, 2, 3
NS_PREFIX = "tfnf"
ROOT_PREFIX = "tf-netfault-"
AUTO_ACCEPT = "accept when connector is known\nask\n"
ASK = "ask\n"


def find_tool(name):
    for d in ("/usr/sbin", "/sbin", "/usr/bin", "/bin"):
        p = os.path.join(d, name)
        if os.access(p, os.X_OK):
            return p
    return shutil.which(name)


IP = find_tool("ip")
TC = find_tool("tc")


def run(*cmd, check=True, timeout=20):
    r = subprocess.run([str(c) for c in cmd], capture_output=True, text=True, timeout=timeout)
    if check and r.returncode != 0:
        raise RuntimeError("%s failed (%d): %s" % (" ".join(map(str, cmd)), r.returncode,
                                                    (r.stderr or r.stdout).strip()))
    return r


def note(fmt, *args):
    sys.stderr.write("netfault: " + (fmt % args) + "\n")
    sys.stderr.flush()


def pid_alive(pid):
    try:
        os.kill(pid, 0)
        return True
    except ProcessLookupError:
        return False
    except PermissionError:
        return True


def netns_list():
    r = run(IP, "netns", "list", check=False)
    return [line.split()[0] for line in r.stdout.splitlines() if line.strip()]


def sweep_stale():
    """Deletes namespaces left by an earlier run of this test that was killed
    (tfnf<pid>-...: its pid is gone), ending the twofoldd processes still
    inside them (this test's own leftovers), and that run's temporary homes."""
    for ns in netns_list():
        if not ns.startswith(NS_PREFIX):
            continue
        pid = ns[len(NS_PREFIX):].split("-", 1)[0]
        if not pid.isdigit() or int(pid) == os.getpid() or pid_alive(int(pid)):
            continue
        for p in run(IP, "netns", "pids", ns, check=False).stdout.split():
            try:
                os.kill(int(p), 9)
            except (ProcessLookupError, ValueError):
                pass
        run(IP, "netns", "del", ns, check=False)
    tmp = tempfile.gettempdir()
    for d in os.listdir(tmp):
        if not d.startswith(ROOT_PREFIX):
            continue
        pid = d[len(ROOT_PREFIX):].split("-", 1)[0]
        if pid.isdigit() and int(pid) != os.getpid() and not pid_alive(int(pid)):
            shutil.rmtree(os.path.join(tmp, d), ignore_errors=True)


# Capability probes ------------------------------------------------------

def probe():
    """(backend or None, why): whether this machine can run the test, and
    which loss/delay backend it has."""
    if os.geteuid() != 0:
        return None, "needs root (network namespaces, veth, tc)"
    if IP is None:
        return None, "no `ip` binary (Debian package iproute2)"
    ns = "%s%d-probe" % (NS_PREFIX, os.getpid())
    r = run(IP, "netns", "add", ns, check=False)
    if r.returncode != 0:
        return None, "`ip netns add` failed: %s" % r.stderr.strip()
    try:
        r = run(IP, "-n", ns, "link", "add", "p0", "type", "veth", "peer", "name", "p1",
                check=False)
        if r.returncode != 0:
            return None, "cannot create a veth pair: %s" % r.stderr.strip()
        have_netem, why_netem = False, "no `tc` binary (Debian package iproute2)"
        if TC is not None:
            r = run(TC, "-n", ns, "qdisc", "add", "dev", "p0", "root", "netem", "delay", "1ms",
                    check=False)
            have_netem = r.returncode == 0
            why_netem = "`tc qdisc add ... netem` failed: %s" % r.stderr.strip()
        r = run(IP, "-n", ns, "tuntap", "add", "dev", "t0", "mode", "tun", check=False)
        have_tun = r.returncode == 0 and os.path.exists("/dev/net/tun")
        why_tun = "no TUN device: %s" % (r.stderr.strip() or "/dev/net/tun missing")
    finally:
        run(IP, "netns", "del", ns, check=False)
    want = os.environ.get("TF_NETFAULT_BACKEND", "")
    if want == "netem":
        return ("netem", "") if have_netem else (None, why_netem)
    if want == "shaper":
        return ("shaper", "") if have_tun else (None, why_tun)
    if have_netem:
        return "netem", ""
    if have_tun:
        return "shaper", "(%s; using the user-space shaper)" % why_netem
    return None, "no way to inject loss and delay: %s; %s" % (why_netem, why_tun)


BACKEND = None
# Seeds the shaper's losses and the flapping schedule (netem has its own
# randomness): rerun with TF_NETFAULT_SEED=N to repeat a run.
SEED = int(os.environ.get("TF_NETFAULT_SEED", "0")) or random.SystemRandom().randrange(1, 2**31)


def setUpModule():
    global BACKEND
    backend, why = probe()
    if backend is None:
        note("SKIPPED: %s", why)
        raise unittest.SkipTest(why)
    sweep_stale()
    BACKEND = backend
    note("loss/delay backend: %s %s; seed %d (TF_NETFAULT_SEED)", backend, why, SEED)


# The network ------------------------------------------------------------

class Net:
    """The namespaces, veths and faults of one test."""

    def __init__(self, tag, backend, hosts=(CONNECTOR_HOST, A_HOST, B_HOST)):
        base = "%s%d-%s" % (NS_PREFIX, os.getpid(), tag)
        self.router = base + "-r"
        self.hosts = {h: "%s-h%d" % (base, h) for h in hosts}
        self.backend = backend
        self.shaper = None
        self.created = []

    def ip(self, h):
        return "%s%d.2" % (PREFIX, h)

    def ns(self, h):
        return self.hosts[h]

    def build(self):
        for ns in [self.router] + list(self.hosts.values()):
            run(IP, "netns", "add", ns)
            self.created.append(ns)
            run(IP, "-n", ns, "link", "set", "lo", "up")
        self.sysctl(self.router, "net/ipv4/ip_forward", 1)
        for h, ns in self.hosts.items():
            r = "r%d" % h
            run(IP, "-n", self.router, "link", "add", r, "type", "veth", "peer", "name", "eth0",
                "netns", ns)
            run(IP, "-n", self.router, "addr", "add", "%s%d.1/24" % (PREFIX, h), "dev", r)
            run(IP, "-n", self.router, "link", "set", r, "up")
            run(IP, "-n", ns, "addr", "add", "%s/24" % self.ip(h), "dev", "eth0")
            run(IP, "-n", ns, "link", "set", "eth0", "up")
            run(IP, "-n", ns, "route", "add", "default", "via", "%s%d.1" % (PREFIX, h))
        if self.backend == "shaper":
            self.start_shaper()

    def sysctl(self, ns, key, value):
        run(IP, "netns", "exec", ns, "sh", "-c", "echo %s > /proc/sys/%s" % (value, key))

    def start_shaper(self):
        """Every packet the router forwards from a host link goes to the TUN
        device tfq (policy routing), through shaper.py, and back."""
        env = dict(os.environ, TF_NETFAULT_SEED=str(SEED))
        self.shaper = subprocess.Popen(
            [IP, "netns", "exec", self.router, PY, SHAPER, "tfq", PREFIX],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env=env)
        line = self.shaper.stdout.readline().strip()
        if line != "ready":
            raise RuntimeError("shaper did not start: %r" % line)
        run(IP, "-n", self.router, "link", "set", "tfq", "up")
        run(IP, "-n", self.router, "route", "add", "default", "dev", "tfq", "table", "100")
        for h in self.hosts:
            run(IP, "-n", self.router, "rule", "add", "iif", "r%d" % h, "lookup", "100",
                "pref", "100")
        for dev in ("all", "default", "tfq"):
            self.sysctl(self.router, "net/ipv4/conf/%s/rp_filter" % dev, 0)

    def shaper_cmd(self, line):
        self.shaper.stdin.write(line + "\n")
        self.shaper.stdin.flush()
        reply = self.shaper.stdout.readline().strip()
        if not reply.startswith("ok"):
            raise RuntimeError("shaper: %r -> %r" % (line, reply))
        return reply

    # Faults: on host h's link, both directions.
    def impair(self, h, loss=0, delay_ms=0):
        if self.backend == "shaper":
            self.shaper_cmd("set %d %g %g" % (h, loss, delay_ms))
            return
        spec = ["limit", "10000"]
        if loss:
            spec += ["loss", "%g%%" % loss]
        if delay_ms:
            spec += ["delay", "%gms" % delay_ms]
        for ns, dev in ((self.ns(h), "eth0"), (self.router, "r%d" % h)):
            run(TC, "-n", ns, "qdisc", "replace", "dev", dev, "root", "netem", *spec)

    def clear(self, h):
        if self.backend == "shaper":
            self.shaper_cmd("clear %d" % h)
            return
        for ns, dev in ((self.ns(h), "eth0"), (self.router, "r%d" % h)):
            run(TC, "-n", ns, "qdisc", "del", "dev", dev, "root", check=False)

    def blackhole(self, h):
        """A silent partition: every packet on h's link is lost, also those
        already delayed on it (netem: a new qdisc drops the old one's queue;
        the shaper drops its queue for that link)."""
        if self.backend == "netem":
            self.clear(h)
        self.impair(h, loss=100)

    def link(self, h, up):
        """A hard partition: the router's end of h's link goes down."""
        run(IP, "-n", self.router, "link", "set", "r%d" % h, "up" if up else "down")

    def destroy(self):
        if self.shaper is not None:
            try:
                self.shaper.stdin.write("quit\n")
                self.shaper.stdin.close()
                self.shaper.wait(5)
            except (OSError, subprocess.TimeoutExpired, ValueError):
                self.shaper.kill()
                self.shaper.wait()
            self.shaper.stdout.close()
            self.shaper = None
        for ns in reversed(self.created):
            run(IP, "netns", "del", ns, check=False)
        self.created = []


class NsNode(Node):
    """A node whose twofoldd runs in a network namespace."""

    def __init__(self, root, name, listen, netns):
        super().__init__(root, name, listen)
        self.netns = netns

    def start(self, expect_ready=True, extra=(), env=None):
        readies = self.log().count("ready id=")
        self.log_file = open(self.log_path, "ab")
        self.proc = subprocess.Popen(
            [IP, "netns", "exec", self.netns, harness.TWOFOLDD, "--home", self.home,
             "--log-level", "debug", *extra],
            stdout=self.log_file, stderr=self.log_file)
        if expect_ready:
            self.wait_log("ready id=", harness.READY_TIMEOUT, readies + 1)
        return self.proc


# The tests ---------------------------------------------------------------

class NetFaultCase(NodeTestCase):
    PARTIES = 3            # parties on each party host
    A_POLICY = AUTO_ACCEPT
    B_POLICY = AUTO_ACCEPT
    CONFIG = {"retry_max_ms": 2000}

    def setUp(self):
        # NodeTestCase.setUp, with a root a later run can recognise as stale.
        self.root = tempfile.mkdtemp(prefix="%s%d-" % (ROOT_PREFIX, os.getpid()))
        self.nodes = []
        tag = type(self).__name__.lower()[:12]
        self.net = Net(tag, BACKEND)
        self.addCleanup(self.net.destroy)
        self.addCleanup(self.stop_quietly)  # runs first: nodes stop before their hosts go
        self.net.build()
        self.carol = self.ns_node("carol", CONNECTOR_HOST, 7000, None)
        self.a = [self.ns_node("a%d" % i, A_HOST, 7100 + i, self.A_POLICY)
                  for i in range(1, self.PARTIES + 1)]
        self.b = [self.ns_node("b%d" % i, B_HOST, 7100 + i, self.B_POLICY)
                  for i in range(1, self.PARTIES + 1)]
        self.ids = {n.name: n.text_id() for n in self.nodes}
        carol_card = self.carol.card()
        for p in self.a + self.b:
            self.carol.cli("contact", "add", p.card(), "--alias", p.name)
            p.cli("contact", "add", carol_card, "--alias", "carol")

    def ns_node(self, name, host, port, policy):
        n = NsNode(self.root, name, "%s:%d" % (self.net.ip(host), port), self.net.ns(host))
        self.nodes.append(n)
        n.init(name.capitalize())
        n.write_config(**self.CONFIG)
        if policy is not None:
            with open(os.path.join(n.home, "policy"), "w") as f:
                f.write(policy)
        n.start()
        return n

    def stop_quietly(self):
        for n in self.nodes:
            if n.proc is not None:
                try:
                    n.stop()
                except Exception:  # noqa: BLE001 - cleanup after a failed setUp
                    pass

    # Observation -------------------------------------------------------
    def assert_alive(self):
        for n in self.nodes:
            if n.proc is not None and n.proc.poll() is not None:
                raise AssertionError("%s exited unexpectedly (status %d):\n%s" % (
                    n.name, n.proc.returncode, n.log()[-4000:]))

    def propose(self, a, b, topic="netfault"):
        return self.carol.json("propose", a.name, b.name, "--topic", topic)["id"]

    def intros(self):
        return {o["id"]: o for o in self.carol.json("intros")}

    def inbox(self, n):
        return {it["id"]: it for it in n.json("inbox", "--all")}

    def progress(self, intros):
        """How far each intro (iid -> (a, b)) got: {iid: (connector state,
        a's inbox state, b's inbox state)}."""
        mine = self.intros()
        boxes = {}
        out = {}
        for iid, (a, b) in intros.items():
            for p in (a, b):
                if p.name not in boxes:
                    boxes[p.name] = self.inbox(p)
            o = mine.get(iid, {})
            out[iid] = (o.get("state"), boxes[a.name].get(iid, {}).get("state"),
                        boxes[b.name].get(iid, {}).get("state"))
        return out

    def wait_introduced(self, intros, timeout, what):
        """Waits until every intro is introduced at the connector and on both
        parties; returns the seconds it took."""
        t0 = time.monotonic()
        done = ("introduced", "introduced", "introduced")

        def check():
            self.assert_alive()
            p = self.progress(intros)
            return p if all(v == done for v in p.values()) else None
        try:
            wait_for(what, check, timeout, 0.2)
        except AssertionError:
            self.assert_alive()
            p = self.progress(intros)
            raise AssertionError("%s: not complete after %.0fs: %s\noutboxes: %s" % (
                what, timeout,
                {iid[:12]: v for iid, v in p.items() if v != done},
                {n.name: n.json("outbox") for n in self.nodes}))
        return time.monotonic() - t0

    def assert_introduced_once(self, intros):
        """The connector's intros are introduced with both sides accepted, and
        each party holds exactly one entry for the other with the provenance."""
        mine = self.intros()
        contacts = {n.name: n.json("contact", "list") for n in self.a + self.b}
        for iid, (a, b) in intros.items():
            o = mine[iid]
            self.assertEqual((o["state"], o["a"]["state"], o["b"]["state"]),
                             ("introduced", "accepted", "accepted"), o)
            for me, other in ((a, b), (b, a)):
                entries = [c for c in contacts[me.name] if c["id"] == self.ids[other.name]]
                self.assertEqual(len(entries), 1, "%s's entries for %s: %r" % (
                    me.name, other.name, entries))
                c = entries[0]
                self.assertEqual(c["introduced_by"], self.ids["carol"])
                self.assertEqual(c["addrs"], [other.listen])
                it = self.inbox(me)[iid]
                self.assertEqual((it["state"], it["other"]), ("introduced", self.ids[other.name]))
        # Nothing the connector introduced is left out, nothing extra appears.
        for p in self.a + self.b:
            introduced = sorted(c["id"] for c in contacts[p.name] if c["introduced_by"])
            want = sorted(self.ids[(b if p is a else a).name]
                          for a, b in intros.values() if p in (a, b))
            self.assertEqual(introduced, want, "%s's introduced contacts" % p.name)

    def wait_outboxes_empty(self, timeout=30):
        """Nothing stays stuck in any outbox once the faults are gone."""
        def check():
            self.assert_alive()
            left = {n.name: n.json("outbox") for n in self.nodes}
            return all(not v for v in left.values()) or None
        try:
            wait_for("every outbox to drain", check, timeout, 0.25)
        except AssertionError:
            raise AssertionError("outboxes not drained after %ds: %s" % (
                timeout, {n.name: n.json("outbox") for n in self.nodes}))


class Loss(NetFaultCase):
    """Lossy, slow links to both party hosts: a batch of intros (every a with
    every b) completes."""
    PARTIES = 4
    LOSS = 25
    DELAY_MS = 75

    def test_batch_completes_under_loss_and_delay(self):
        self.net.impair(A_HOST, self.LOSS, self.DELAY_MS)
        self.net.impair(B_HOST, self.LOSS, self.DELAY_MS)
        intros = {}
        for a in self.a:
            for b in self.b:
                intros[self.propose(a, b)] = (a, b)
        took = self.wait_introduced(intros, 90, "%d intros under %d%% loss, %dms delay" % (
            len(intros), self.LOSS, self.DELAY_MS))
        note("%d intros under %d%% loss + %dms delay on each party link (%s): "
             "all introduced on both sides in %.1fs", len(intros), self.LOSS, self.DELAY_MS,
             BACKEND, took)
        self.assert_introduced_once(intros)
        self.wait_outboxes_empty(60)
        self.net.clear(A_HOST)
        self.net.clear(B_HOST)
        if self.net.shaper is not None:
            note("shaper: %s", self.net.shaper_cmd("stats"))


class Partition(NetFaultCase):
    """Host 2 is cut off (link down) while intros are proposed; they complete
    once it heals."""
    PARTIES = 3
    HOLD_S = 8.0

    def test_intros_complete_after_partition_heals(self):
        self.net.link(A_HOST, up=False)
        t_cut = time.monotonic()
        intros = {}
        for a, b in zip(self.a, self.b):
            intros[self.propose(a, b)] = (a, b)

        # The reachable side answers meanwhile; the cut-off side hears nothing.
        def b_accepted():
            self.assert_alive()
            mine = self.intros()
            return all(mine[iid]["b"]["state"] == "accepted" for iid in intros) or None
        wait_for("the reachable parties to accept", b_accepted, 30, 0.2)
        remaining = self.HOLD_S - (time.monotonic() - t_cut)
        if remaining > 0:
            time.sleep(remaining)
        for iid, (a, b) in intros.items():
            self.assertEqual(self.intros()[iid]["state"], "asking")
            self.assertEqual(self.intros()[iid]["a"]["state"], "pending")
            self.assertNotIn(iid, self.inbox(a))
        queued = [e for e in self.carol.json("outbox") if e["type"] == "proposal"]
        self.assertEqual(len(queued), len(intros), queued)
        note("partition of %.1fs: %d proposals queued at the connector, attempts %s, "
             "last error %r", time.monotonic() - t_cut, len(queued),
             sorted(e["attempts"] for e in queued), queued[0]["last_error"])

        self.net.link(A_HOST, up=True)
        took = self.wait_introduced(intros, 45, "intros after the partition healed")
        note("after the heal: %d intros introduced on both sides in %.1fs", len(intros), took)
        self.assert_introduced_once(intros)
        self.wait_outboxes_empty()


class PartitionMidReply(NetFaultCase):
    """Proposals arrive, then host 2 is cut off and its owners accept: the
    replies wait in their outboxes and go out when the partition heals."""
    PARTIES = 2
    A_POLICY = ASK
    HOLD_S = 6.0

    def test_replies_sent_during_partition_arrive_after_heal(self):
        intros = {}
        for a, b in zip(self.a, self.b):
            intros[self.propose(a, b)] = (a, b)
        for iid, (a, b) in intros.items():
            wait_for("%s to receive %.8s" % (a.name, iid),
                     lambda: self.inbox(a).get(iid, {}).get("state") == "pending", 30, 0.1)
        wait_for("the connector's outbox to drain", lambda: not self.carol.json("outbox"),
                 30, 0.1)
        self.net.link(A_HOST, up=False)
        t_cut = time.monotonic()
        for iid, (a, b) in intros.items():
            self.assertEqual(a.json("accept", iid)["state"], "accepted")
        time.sleep(self.HOLD_S)
        for iid, (a, b) in intros.items():
            o = self.intros()[iid]
            self.assertEqual((o["state"], o["a"]["state"], o["b"]["state"]),
                             ("asking", "pending", "accepted"))
            self.assertEqual([e["type"] for e in a.json("outbox")], ["reply"])
        note("partition of %.1fs with accepts queued on the cut-off host",
             time.monotonic() - t_cut)
        self.net.link(A_HOST, up=True)
        took = self.wait_introduced(intros, 45, "replies after the partition healed")
        note("after the heal: %d replies delivered, intros introduced in %.1fs",
             len(intros), took)
        self.assert_introduced_once(intros)
        self.wait_outboxes_empty()


class Flapping(NetFaultCase):
    """Host 2's link goes down and up at random moments while a batch of
    intros is under way; once it stays up, every intro completes."""
    PARTIES = 3
    FLAP_S = 8.0

    def test_intros_complete_over_a_flapping_link(self):
        rng = random.Random(SEED)
        self.net.impair(A_HOST, 5, 20)
        self.net.link(A_HOST, False)
        intros = {}
        for a in self.a:
            for b in self.b:
                intros[self.propose(a, b)] = (a, b)
        t_end = time.monotonic() + self.FLAP_S
        flaps = 0
        up = False
        while time.monotonic() < t_end:
            self.assert_alive()
            # Short ups, longer downs: some exchanges get through, most are cut.
            time.sleep(rng.uniform(0.1, 0.5) if up else rng.uniform(0.3, 1.2))
            up = not up
            self.net.link(A_HOST, up)
            flaps += 1
        self.net.link(A_HOST, True)
        self.net.clear(A_HOST)
        before = sum(v == ("introduced",) * 3 for v in self.progress(intros).values())
        took = self.wait_introduced(intros, 45, "intros after the link stopped flapping")
        note("%d intros over a link that flapped %d times in %.0fs (5%% loss): %d done "
             "while flapping, the rest %.1fs after", len(intros), flaps, self.FLAP_S, before,
             took)
        self.assert_introduced_once(intros)
        self.wait_outboxes_empty()


class BlackholeMidExchange(NetFaultCase):
    """A slow link to host 2 turns into a silent black hole at different
    moments of an exchange: during the TCP connect / Noise handshake, while
    the party's reply is on its way, while the connector's introduction is on
    its way.  Nothing errors, connections just hang, so the nodes' own
    handshake and idle timeouts must notice, and their retries must finish
    the job once the link is back."""
    PARTIES = 4
    DELAY_MS = 250  # each way: room for the CLI to see a moment before it passes
    HOLD_S = 5.0
    CONFIG = {"retry_max_ms": 2000, "handshake_timeout_ms": 3000, "idle_timeout_ms": 4000}

    def test_intros_complete_after_blackhole_at_any_moment(self):
        def after(seconds):
            return "+%.1fs" % seconds, lambda iid, a: time.sleep(seconds) or True

        def proposal_arrived(iid, a):
            # a accepts at once (its policy): its reply is now on the wire.
            return iid in self.inbox(a)

        def introduced_by_connector(iid, a):
            # The introduction is now on its way to a (and b).
            return self.intros()[iid]["state"] == "introduced"
        moments = [after(0.1), after(0.5), ("reply in flight", proposal_arrived),
                   ("introduction in flight", introduced_by_connector)]
        self.net.impair(A_HOST, 0, self.DELAY_MS)
        for (what, trigger), a, b in zip(moments, self.a, self.b):
            iid = self.propose(a, b)
            wait_for("the moment: %s" % what, lambda: trigger(iid, a), 30, 0.01)
            self.net.blackhole(A_HOST)
            phase = self.progress({iid: (a, b)})[iid]
            time.sleep(self.HOLD_S)
            self.net.impair(A_HOST, 0, self.DELAY_MS)
            took = self.wait_introduced({iid: (a, b)}, 45,
                                        "intro %.8s after a black hole (%s)" % (iid, what))
            note("black hole (%s; then: connector %s, %s %s, %s %s), held %.0fs: "
                 "introduced %.1fs after the heal", what, phase[0], a.name, phase[1], b.name,
                 phase[2], self.HOLD_S, took)
        self.assert_introduced_once(self._all_intros())
        self.wait_outboxes_empty()

    def _all_intros(self):
        by_name = {n.name: n for n in self.nodes}
        return {o["id"]: (by_name[o["a"]["alias"]], by_name[o["b"]["alias"]])
                for o in self.carol.json("intros")}


if __name__ == "__main__":
    unittest.main()
