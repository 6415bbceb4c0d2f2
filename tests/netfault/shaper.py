# SPDX-License-Identifier: MIT
"""A user-space netem for kernels without sch_netem: runs in the router
namespace of tests/netfault/test_netfault.py, owns a TUN device through which
the router's policy routing sends every forwarded packet, and writes each one
back (to be forwarded for real) after the delay, or drops it, as configured per
host link.  Standard library only (Debian's /usr/bin/python3).

Usage (inside the router namespace):  shaper.py TUN_NAME SUBNET_PREFIX
where SUBNET_PREFIX is e.g. "10.77." and host N's link is 10.77.N.0/24.

Commands, one per line on stdin; each is answered by one line on stdout
("ok ..." or "error ..."):

    set N LOSS_PERCENT DELAY_MS    impair host link N (both directions)
    clear N                        no impairment on link N
    stats                          "ok fwd=F drop=D"
    quit

A packet between hosts X and Y crosses link X and link Y: it is dropped with
each link's loss (independently) and delayed by the sum of their delays.
Packets keep their order on each path (a fixed delay, released in order).
Setting a link's loss to 100% also drops the packets already delayed on it
(in flight on the wire).
"""
import fcntl
import heapq
import os
import random
import select
import struct
import sys
import threading
import time

TUNSETIFF = 0x400454CA
IFF_TUN = 0x0001
IFF_NO_PI = 0x1000


def open_tun(name):
    fd = os.open("/dev/net/tun", os.O_RDWR)
    ifr = struct.pack("16sH22x", name.encode(), IFF_TUN | IFF_NO_PI)
    fcntl.ioctl(fd, TUNSETIFF, ifr)
    os.set_blocking(fd, False)
    return fd


class Shaper:
    def __init__(self, fd, prefix):
        self.fd = fd
        self.prefix = tuple(int(x) for x in prefix.strip(".").split("."))
        self.rules = {}  # link number -> (loss fraction, delay seconds)
        self.lock = threading.Lock()
        self.queue = []  # (release time, seq, packet)
        self.seq = 0
        self.fwd = 0
        self.drop = 0
        self.cut = None  # a link just blackholed: drop what is queued on it
        self.rng = random.Random(int(os.environ.get("TF_NETFAULT_SEED", "0")) or None)
        # Wakes the packet loop when the rules change.
        self.wake_r, self.wake_w = os.pipe()

    def link_of(self, addr):
        if tuple(addr[:len(self.prefix)]) != self.prefix:
            return None
        return addr[len(self.prefix)]

    def verdict(self, pkt):
        """(drop, delay seconds) for one IPv4 packet."""
        if len(pkt) < 20 or pkt[0] >> 4 != 4:
            return False, 0.0
        delay = 0.0
        with self.lock:
            for addr in (pkt[12:16], pkt[16:20]):
                rule = self.rules.get(self.link_of(addr))
                if rule is None:
                    continue
                loss, d = rule
                if loss > 0 and (loss >= 1.0 or self.rng.random() < loss):
                    return True, 0.0
                delay += d
        return False, delay

    def crosses(self, pkt, n):
        return len(pkt) >= 20 and n in (self.link_of(pkt[12:16]), self.link_of(pkt[16:20]))

    def run(self):
        while True:
            with self.lock:
                cut, self.cut = self.cut, None
            if cut is not None:
                # Packets "on the wire" of a link that goes dark are lost too.
                kept = [q for q in self.queue if not self.crosses(q[2], cut)]
                self.drop += len(self.queue) - len(kept)
                heapq.heapify(kept)
                self.queue = kept
            now = time.monotonic()
            while self.queue and self.queue[0][0] <= now:
                _, _, pkt = heapq.heappop(self.queue)
                self.write(pkt)
            timeout = None
            if self.queue:
                timeout = max(0.0, self.queue[0][0] - time.monotonic())
            r, _, _ = select.select([self.fd, self.wake_r], [], [], timeout)
            if self.wake_r in r:
                os.read(self.wake_r, 4096)
            if self.fd not in r:
                continue
            for _ in range(256):
                try:
                    pkt = os.read(self.fd, 65536)
                except BlockingIOError:
                    break
                except OSError:
                    return
                drop, delay = self.verdict(pkt)
                if drop:
                    self.drop += 1
                elif delay <= 0 and not self.queue:
                    self.write(pkt)
                else:
                    self.seq += 1
                    heapq.heappush(self.queue, (time.monotonic() + delay, self.seq, pkt))

    def write(self, pkt):
        try:
            os.write(self.fd, pkt)
            self.fwd += 1
        except OSError:
            self.drop += 1

    def command(self, line):
        words = line.split()
        if not words:
            return "error empty"
        try:
            if words[0] == "set" and len(words) == 4:
                n, loss, delay = int(words[1]), float(words[2]), float(words[3])
                with self.lock:
                    self.rules[n] = (loss / 100.0, delay / 1000.0)
                    if loss >= 100:
                        self.cut = n
            elif words[0] == "clear" and len(words) == 2:
                with self.lock:
                    self.rules.pop(int(words[1]), None)
            elif words[0] == "stats":
                return "ok fwd=%d drop=%d" % (self.fwd, self.drop)
            elif words[0] == "quit":
                return None
            else:
                return "error unknown command %r" % line
        except ValueError as e:
            return "error %s" % e
        os.write(self.wake_w, b"x")
        return "ok"


def main():
    name, prefix = sys.argv[1], sys.argv[2]
    try:
        fd = open_tun(name)
    except OSError as e:
        print("error cannot open a TUN device: %s" % e, flush=True)
        return 1
    shaper = Shaper(fd, prefix)
    t = threading.Thread(target=shaper.run, daemon=True)
    t.start()
    print("ready", flush=True)
    for line in sys.stdin:
        reply = shaper.command(line.strip())
        if reply is None:
            break
        print(reply, flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
