# SPDX-License-Identifier: MIT
"""The page with N intros of each kind and N contacts (TF_WEB_LOAD_N, 10,000
by default; ctest runs 2,000 as web_load, and 10,000 as web_load_10k with
`ctest -C bench -R web_load_10k`): every item
is reachable through the page's paging, and the figures (API latency per
page, and in Chromium when it is available, the time to draw each view and
to page) are printed.  Figures, not timed assertions: the machine may be
loaded.

Setup: one node (Sam).  N contacts (cards from `twofold-bench
--print-cards`) and N intros Sam proposes (contact i with contact i+1) go in
over the control socket, pipelined; N proposals to Sam come from 100
stranger identities (tf-flood), with the budgets raised in HOME/config.
"""
import json
import os
import socket
import statistics
import struct
import subprocess
import sys
import time
import unittest

import msgpack

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from webharness import Web  # noqa: E402
from harness import NodeTestCase, flood, recv_frame  # noqa: E402

N = int(os.environ.get("TF_WEB_LOAD_N", "10000"))
BENCH = os.environ.get("TF_BENCH", "twofold-bench")
WINDOW = 256


def bulk(node, verb, args_list):
    """Sends verb once per args in args_list on one control connection, at
    most WINDOW unanswered; returns the error replies."""
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(120)
    s.connect(node.socket_path())
    errors, sent, got = [], 0, 0
    try:
        while got < len(args_list):
            while sent < len(args_list) and sent - got < WINDOW:
                body = msgpack.packb({"id": sent + 1, "verb": verb, "args": args_list[sent]})
                s.sendall(struct.pack(">I", len(body)) + body)
                sent += 1
            reply = msgpack.unpackb(recv_frame(s), raw=False)
            got += 1
            if not reply["ok"]:
                errors.append(reply["error"])
    finally:
        s.close()
    return errors


def figures(name, samples_ms):
    s = sorted(samples_ms)
    return "%-34s n=%-4d median %6.1f ms  p95 %6.1f ms  max %6.1f ms" % (
        name, len(s), statistics.median(s), s[int(0.95 * (len(s) - 1))], s[-1])


class WebLoad(NodeTestCase):
    def test_many_of_each(self):
        sam = self.node("sam", port=True)
        sam.init()
        sam.write_config(max_stranger_intros=2 * N, max_pending_per_connector=1000,
                         max_intros_per_connector=1000, accept_rate_per_s=100000,
                         accept_rate_per_prefix=100000)
        sam.start()
        t0 = time.monotonic()
        cards = subprocess.run([BENCH, "--print-cards", str(N)], capture_output=True,
                               text=True, check=True, timeout=300).stdout.split()
        self.assertEqual(len(cards), N)
        self.assertEqual(bulk(sam, "contact.add", [{"card": c} for c in cards]), [])
        t_contacts = time.monotonic() - t0
        # Contact i with contact i+1 (ids from pages of 1000, wrapping).
        allids = []
        after = None
        while True:
            page = sam.json("contact", "list", "--limit", "1000",
                            *(["--after", after] if after else []))
            allids += [c["id"] for c in page]
            if len(page) < 1000:
                break
            after = page[-1]["id"]
        self.assertEqual(len(allids), N)
        t1 = time.monotonic()
        errs = bulk(sam, "intro.propose", [
            {"a": allids[i], "b": allids[(i + 1) % N], "topic": "load"} for i in range(N)])
        self.assertEqual(errs, [])
        t_intros = time.monotonic() - t1
        t2 = time.monotonic()
        r = flood("proposals", "--target", sam.listen, "--victim", sam.home,
                  "--identities", 100, "--per", N // 100, timeout=1800)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        t_inbox = time.monotonic() - t2
        print("setup: %d contacts in %.1f s, %d proposed intros in %.1f s, "
              "%d inbox items in %.1f s" % (N, t_contacts, N, t_intros, N, t_inbox, ))

        web = Web(sam)
        try:
            web.login()
            self.page_through(web)
            web.new_link()  # the browser signs in with a link of its own
            self.browser(web)
        finally:
            web.stop()

    def page_through(self, web):
        """Every item through the page's API, a page at a time as the page
        asks; prints the latency of each kind of page."""
        for verb, limit, cursor, key in (("inbox.list", 50, "before", "id"),
                                         ("intro.list", 50, "before", "id"),
                                         ("contact.list", 100, "after", "id")):
            seen, times, args = set(), [], {"limit": limit}
            while True:
                t = time.monotonic()
                page = web.call(verb, args)
                times.append((time.monotonic() - t) * 1000)
                seen.update(x[key] for x in page)
                if len(page) < limit:
                    break
                args = {"limit": limit, cursor: page[-1][key]}
            self.assertEqual(len(seen), N, verb)
            print(figures("API %s (%d a page)" % (verb, limit), times))

    def browser(self, web):
        """The views in Chromium, when the browser test's tools are there."""
        sys.path.insert(0, HERE)
        import test_web_browser as tb
        try:
            npm_dir = tb.prepare()
        except SystemExit:
            print("browser figures skipped: no Chromium, node, npm or registry")
            return
        cfg = os.path.join(self.root, "load.json")
        with open(cfg, "w") as f:
            json.dump({"chromium": tb.CHROMIUM, "url": web.url, "n": N,
                       "artifacts": tb.ARTIFACTS}, f)
        r = subprocess.run(["node", os.path.join(npm_dir, "load.mjs"), cfg], cwd=npm_dir,
                           capture_output=True, text=True, timeout=900)
        print(r.stdout)
        print(r.stderr, file=sys.stderr)
        self.assertEqual(r.returncode, 0, "the browser load run failed")


if __name__ == "__main__":
    unittest.main()
