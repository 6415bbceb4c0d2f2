# SPDX-License-Identifier: MIT
"""Mailboxes through a real NAT (docs/PROTOCOL.md "Mailboxes"): twofoldd nodes
in network namespaces, the parties behind a router that masquerades.

Topology (names carry this process's pid, so parallel runs do not collide):

    home namespace              router namespace             public namespace
    alice, bob, dave  ──veth──  192.168.77.1 | 10.78.0.1 ──veth── carol (connector)
    192.168.77.2                nft masquerade out,            mbox (mailbox)
    (no_listen = 1)             forward: only replies in       10.78.0.2

Nothing from the public side can open a connection to the home network (no
route to it, and the router forwards only replies inward): the parties are
reachable only through the links they open to their mailbox.  Every party
lists the mailbox on its card; the mailbox hosts them all.

Scenarios: every intro between the three parties completes, with a note and
a card update; then a party stopped while an intro is proposed gets it exactly
once when it starts again, after a kill -9 of the mailbox that held it.

Needs root, iproute2 (`ip`) and nftables (`nft`); otherwise it exits 77, which
ctest reports as skipped, after printing why ("netns: SKIPPED: ...").  Run:

    sudo env TF_TWOFOLDD=build/node/twofoldd TF_TWOFOLD=build/cli/twofold \\
        /usr/bin/python3 tests/netns/test_nat.py -v
"""
import os
import subprocess
import sys
import tempfile
import time
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "integration"))
sys.path.insert(0, os.path.join(HERE, "..", "netfault"))
from harness import NodeTestCase, wait_for  # noqa: E402
from test_netfault import NsNode, find_tool, run  # noqa: E402

IP = find_tool("ip")
NFT = find_tool("nft")
SKIP = 77
WAIT = 30.0
FAST = {"retry_max_ms": 2000, "mailbox_retry_max_ms": 2000, "close_delay_min_s": 0,
        "close_delay_max_s": 1}
HOME_IP, ROUTER_HOME_IP = "192.168.77.2", "192.168.77.1"
PUBLIC_IP, ROUTER_PUBLIC_IP = "10.78.0.2", "10.78.0.1"
NS_PREFIX = "tfmb"

NAT_RULES = """
table ip tfnat {
    chain masq {
        type nat hook postrouting priority 100; policy accept;
        oifname "pub0" masquerade
    }
    chain forward_in {
        type filter hook forward priority 0; policy drop;
        ct state established,related accept
        iifname "home0" oifname "pub0" accept
    }
}
"""


def note(fmt, *args):
    sys.stderr.write("netns: " + (fmt % args) + "\n")
    sys.stderr.flush()


def probe():
    """None if this machine can run the test, else why not."""
    if os.geteuid() != 0:
        return "needs root (network namespaces, veth, nftables)"
    if IP is None:
        return "no `ip` binary (Debian package iproute2)"
    if NFT is None:
        return "no `nft` binary (Debian package nftables)"
    ns = "%s%d-probe" % (NS_PREFIX, os.getpid())
    r = run(IP, "netns", "add", ns, check=False)
    if r.returncode != 0:
        return "`ip netns add` failed: %s" % r.stderr.strip()
    try:
        r = run(IP, "netns", "exec", ns, NFT, "add", "table", "ip", "tfprobe", check=False)
        if r.returncode != 0:
            return "nftables does not work in a namespace: %s" % r.stderr.strip()
    finally:
        run(IP, "netns", "del", ns, check=False)
    return None


class Nat:
    """The three namespaces and the router's NAT."""

    def __init__(self):
        base = "%s%d" % (NS_PREFIX, os.getpid())
        self.home, self.router, self.public = base + "-home", base + "-rtr", base + "-pub"
        self.created = []

    def build(self):
        for ns in (self.home, self.router, self.public):
            run(IP, "netns", "add", ns)
            self.created.append(ns)
            run(IP, "-n", ns, "link", "set", "lo", "up")
        run(IP, "-n", self.router, "link", "add", "home0", "type", "veth", "peer", "name", "eth0",
            "netns", self.home)
        run(IP, "-n", self.router, "link", "add", "pub0", "type", "veth", "peer", "name", "eth0",
            "netns", self.public)
        for ns, dev, addr in ((self.router, "home0", ROUTER_HOME_IP + "/24"),
                              (self.router, "pub0", ROUTER_PUBLIC_IP + "/24"),
                              (self.home, "eth0", HOME_IP + "/24"),
                              (self.public, "eth0", PUBLIC_IP + "/24")):
            run(IP, "-n", ns, "addr", "add", addr, "dev", dev)
            run(IP, "-n", ns, "link", "set", dev, "up")
        # Home goes out through the router; the public side has no route
        # back to the home network at all.
        run(IP, "-n", self.home, "route", "add", "default", "via", ROUTER_HOME_IP)
        run(IP, "netns", "exec", self.router, "sh", "-c",
            "echo 1 > /proc/sys/net/ipv4/ip_forward")
        subprocess.run([IP, "netns", "exec", self.router, NFT, "-f", "-"],
                       input=NAT_RULES, text=True, check=True, timeout=20)

    def destroy(self):
        for ns in reversed(self.created):
            for p in run(IP, "netns", "pids", ns, check=False).stdout.split():
                try:
                    os.kill(int(p), 9)
                except (ProcessLookupError, ValueError):
                    pass
            run(IP, "netns", "del", ns, check=False)
        self.created = []


class NatCase(NodeTestCase):
    def setUp(self):
        self.root = tempfile.mkdtemp(prefix="tf-netns-%d-" % os.getpid())
        self.nodes = []
        self.net = Nat()
        self.addCleanup(self.net.destroy)
        self.addCleanup(self.stop_quietly)
        self.net.build()
        self.carol = self.ns_node("carol", self.net.public, PUBLIC_IP, 7000, {})
        self.mbox = self.ns_node("mbox", self.net.public, PUBLIC_IP, 7001, {})
        self.parties = [self.ns_node(name, self.net.home, HOME_IP, 7100 + i, {"no_listen": 1})
                        for i, name in enumerate(("alice", "bob", "dave"))]
        mcard = self.mbox.card()
        for p in self.parties:
            self.mbox.cli("contact", "add", p.card(), "--alias", p.name)
            self.mbox.cli("mailbox", "host", p.name)
            p.cli("mailbox", "use", mcard)
        for p in self.parties:
            wait_for("%s linked to its mailbox" % p.name,
                     lambda p=p: p.json("mailbox", "status")["mailboxes"][0]["connected"], WAIT)
        ccard = self.carol.card()
        for p in self.parties:
            self.carol.cli("contact", "add", p.card(), "--alias", p.name)
            p.cli("contact", "add", ccard, "--alias", "carol")
        self.ids = {n.name: n.text_id() for n in self.nodes}

    def ns_node(self, name, netns, ip, port, config):
        n = NsNode(self.root, name, "%s:%d" % (ip, port), netns)
        self.nodes.append(n)
        n.init(name.capitalize())
        n.write_config(**dict(FAST, **config))
        n.start()
        return n

    def stop_quietly(self):
        for n in self.nodes:
            if n.proc is not None:
                try:
                    n.stop()
                except Exception:  # noqa: BLE001 - cleanup after a failed setUp
                    pass

    def inbox(self, n):
        return {it["id"]: it for it in n.json("inbox", "--all")}

    def wait_inbox(self, n, iid, state):
        wait_for("%s's inbox item %.12s to be %s" % (n.name, iid, state),
                 lambda: (self.inbox(n).get(iid) or {}).get("state") == state, WAIT)

    def held(self, who):
        return {t["alias"]: t for t in self.mbox.json("mailbox", "list")["tenants"]}[who][
            "envelopes"]

    def introduce(self, a, b, topic):
        iid = self.carol.json("propose", a.name, b.name, "--topic", topic)["id"]
        for p in (a, b):
            self.wait_inbox(p, iid, "pending")
        for p in (a, b):
            p.cli("accept", iid)
        for p in (a, b):
            self.wait_inbox(p, iid, "introduced")
        return iid


class BehindNat(NatCase):
    def test_no_way_in_from_the_public_side(self):
        # The mailbox sees its tenants' links come from the router's public
        # address: they are masqueraded.
        self.assertIn("%s:" % ROUTER_PUBLIC_IP, self.mbox.log())
        self.assertNotIn(HOME_IP, self.mbox.log())
        r = run(IP, "netns", "exec", self.net.public, "/usr/bin/python3", "-c",
                "import socket; s = socket.socket(); s.settimeout(2); "
                "print(s.connect_ex(('%s', 7100)))" % HOME_IP, check=False)
        self.assertNotEqual(r.stdout.strip(), "0", r.stdout + r.stderr)

    def test_every_intro_note_and_card_update_completes(self):
        alice, bob, dave = self.parties
        t0 = time.monotonic()
        for a, b, topic in ((alice, bob, "one"), (alice, dave, "two"), (bob, dave, "three")):
            self.introduce(a, b, topic)
        note("3 intros through the NAT and the mailbox in %.1f s", time.monotonic() - t0)
        for me in self.parties:
            others = sorted(self.ids[p.name] for p in self.parties if p is not me)
            got = sorted(c["id"] for c in me.json("contact", "list")
                         if c["id"] != self.ids["carol"])
            self.assertEqual(got, others)
        alias = [c.get("alias") or c["id"] for c in alice.json("contact", "list")
                 if c["id"] == self.ids["bob"]][0]
        alice.cli("message", alias, "across the NAT")
        wait_for("bob's note", lambda: [m["text"] for m in bob.json("messages")
                                        if m["direction"] == "in"] == ["across the NAT"], WAIT)
        dave.cli("profile", "set", "--name", "Dave Two")
        for n in (alice, bob, self.carol):
            wait_for("%s sees Dave's new name" % n.name,
                     lambda n=n: [c["name"] for c in n.json("contact", "list")
                                  if c["id"] == self.ids["dave"]] == ["Dave Two"], WAIT)

    def test_party_away_gets_the_intro_once_after_mailbox_kill9(self):
        alice, bob, dave = self.parties
        self.assertEqual(dave.stop(), 0)
        iid = self.carol.json("propose", "alice", "dave", "--topic", "away")["id"]
        self.wait_inbox(alice, iid, "pending")
        wait_for("the mailbox to hold dave's proposal", lambda: self.held("dave") >= 1, WAIT)
        self.mbox.kill9()
        self.mbox.start()
        self.assertGreaterEqual(self.held("dave"), 1)
        dave.start()
        self.wait_inbox(dave, iid, "pending")
        alice.cli("accept", iid)
        dave.cli("accept", iid)
        self.wait_inbox(alice, iid, "introduced")
        self.wait_inbox(dave, iid, "introduced")
        self.assertEqual(list(self.inbox(dave)), [iid])
        wait_for("the mailbox to hold nothing for dave", lambda: self.held("dave") == 0, WAIT)


if __name__ == "__main__":
    why = probe()
    if why is not None:
        note("SKIPPED: %s", why)
        sys.exit(SKIP)
    unittest.main()
