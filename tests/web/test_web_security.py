# SPDX-License-Identifier: MIT
"""The web page is as safe as the control socket (cli/web/http.c): only the
holder of the printed secret gets in, every API request needs the cookie,
the token from the sign-in redirect, the right Host and a same-origin
Origin, bodies and connections are bounded, and a refused request changes
nothing on the node (checked through the CLI afterwards).

One running node (Sam) serves the page; Alice's home only provides a card to
add (cards are signed offline).
"""
import json
import os
import re
import socket
import subprocess
import sys
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from webharness import Web  # noqa: E402
from harness import NodeTestCase, TWOFOLD, flood, wait_for  # noqa: E402

BODY_MAX = 32 * 1024          # TF_CLI_WEB_BODY_MAX
CONNECTIONS_MAX = 128         # TF_CLI_WEB_CONNECTIONS_MAX
HEADER_TIMEOUT = 10           # TF_CLI_WEB_HEADER_TIMEOUT_S
OPEN_FILE_S = 10              # TF_CLI_WEB_OPEN_FILE_S
SESSIONS_MAX = 4              # TF_CLI_WEB_SESSIONS_MAX


class WebSecurity(NodeTestCase):
    def setUp(self):
        super().setUp()
        self.sam = self.node("sam", port=True)
        self.sam.init()
        self.sam.start()
        alice = self.node("alice", port=True)
        alice.init()
        self.alice_card = alice.card()
        self.web = Web(self.sam)

    def tearDown(self):
        rc = self.web.stop()
        super().tearDown()
        self.assertEqual(rc, 0, "twofold web exited %d: %s" % (rc, self.web.stderr))

    def contacts(self):
        return self.sam.json("contact", "list")

    def add_args(self):
        return {"card": self.alice_card, "alias": "alice"}

    def assert_refused(self, status, want, what):
        self.assertEqual(status, want, what)
        self.assertEqual(self.contacts(), [], "%s changed the node" % what)

    def raw_post_status(self, length_header):
        """Sends the headers of a signed-in contact.add with length_header
        and no body; returns the status the server answers at once."""
        conn = socket.create_connection((self.web.host, self.web.port), timeout=10)
        try:
            conn.sendall(("POST /api/call/contact.add HTTP/1.1\r\nHost: %s\r\nCookie: %s\r\n"
                          "X-Twofold-Token: %s\r\nOrigin: %s\r\n"
                          "Content-Type: application/json\r\n%s\r\n\r\n" % (
                              self.web.hostport, self.web.cookie, self.web.token,
                              self.web.origin, length_header)).encode())
            return conn.recv(4096).split(b" ")[1]
        finally:
            conn.close()

    # Signing in ------------------------------------------------------------
    def test_no_cookie_or_wrong_secret_is_refused(self):
        for path in ("/", "/index.html", "/app.js", "/api/events"):
            status, h, _ = self.web.request("GET", path)
            self.assertEqual(status, 403, path)
            self.assertNotIn("set-cookie", h)
        status, _, _ = self.web.request("POST", "/api/call/status", b"{}", {
            "Origin": self.web.origin, "Content-Type": "application/json"})
        self.assertEqual(status, 403)
        wrong = ("0" * 64, self.web.secret[:-1], self.web.secret + "0",
                 self.web.secret[::-1], "")
        for k in wrong:
            status, h, _ = self.web.request("GET", "/?k=" + k)
            self.assertEqual(status, 403, k)
            self.assertNotIn("set-cookie", h)
        # A made-up cookie is no better.
        status, _, _ = self.web.request("GET", "/", headers={
            "Cookie": "twofold_web_%d=%s" % (self.web.port, "a" * 64)})
        self.assertEqual(status, 403)

    def test_secret_gives_a_strict_cookie_and_a_url_without_it(self):
        h = self.web.login()
        cookie = h["set-cookie"]
        self.assertIn("HttpOnly", cookie)
        self.assertIn("SameSite=Strict", cookie)
        self.assertNotIn(self.web.secret, h["location"])
        self.assertNotIn(self.web.secret, cookie)
        self.assertRegex(h["location"], r"^/#t=[0-9a-f]{64}$")
        self.assertNotEqual(self.web.token, self.web.cookie.split("=", 1)[1],
                            "the token must not be the cookie")
        status, hh, body = self.web.request("GET", "/", headers={"Cookie": self.web.cookie})
        self.assertEqual(status, 200)
        csp = hh["content-security-policy"]
        self.assertIn("default-src 'self'", csp)
        self.assertIn("script-src 'self'", csp)
        self.assertNotIn("unsafe", csp)
        self.assertIn("frame-ancestors 'none'", csp)
        self.assertEqual(hh["x-content-type-options"], "nosniff")
        self.assertEqual(hh["referrer-policy"], "no-referrer")
        html = body.decode()
        # No inline script or handler the CSP would have to allow.
        for tag in re.findall(r"<script[^>]*>", html):
            self.assertIn("src=", tag)
        self.assertNotRegex(html, r"\son[a-z]+\s*=")
        self.assertNotIn("<style", html)
        # The cookie alone does not open the API: the token is needed too.
        status, _ = self.web.post("status", **{"X-Twofold-Token": None})
        self.assertEqual(status, 403)
        self.assertIn("version", self.web.call("status"))

    def test_secret_signs_in_once_and_each_sign_in_is_new(self):
        first = self.web.login()
        first_cookie, first_token = self.web.cookie, self.web.token
        # The same link again (history, scrollback, another local user) is
        # answered as a wrong secret is, and gets no cookie.
        for _ in range(2):
            status, h, body = self.web.request("GET", "/?k=" + self.web.secret)
            self.assertEqual(status, 403)
            self.assertNotIn("set-cookie", h)
            self.assertIn(b"not valid", body)
        # The browser that used it stays signed in.
        self.assertIn("version", self.web.call("status"))
        # SIGUSR1 prints a new link; the old secret stays dead.
        old_secret = self.web.secret
        self.web.new_link()
        self.assertNotEqual(self.web.secret, old_secret)
        self.assertEqual(self.web.request("GET", "/?k=" + old_secret)[0], 403)
        second = self.web.login()
        self.assertNotEqual(second["set-cookie"], first["set-cookie"])
        self.assertNotEqual(self.web.token, first_token)
        self.assertEqual(self.web.request("GET", "/?k=" + self.web.secret)[0], 403)
        # Both browsers are signed in, each with its own token only.
        self.assertIn("version", self.web.call("status"))
        status, _ = self.web.post("status", Cookie=first_cookie,
                                  **{"X-Twofold-Token": first_token})
        self.assertEqual(status, 200)
        status, _ = self.web.post("status", Cookie=first_cookie)
        self.assertEqual(status, 403, "a token of another session was taken")
        status, _ = self.web.post("status", **{"X-Twofold-Token": first_token})
        self.assertEqual(status, 403, "a token of another session was taken")
        # The table is bounded: the oldest session is signed out once
        # SESSIONS_MAX newer sign-ins happened.
        for _ in range(SESSIONS_MAX - 1):
            self.web.new_link()
            self.web.login()
        status, _ = self.web.post("status", Cookie=first_cookie,
                                  **{"X-Twofold-Token": first_token})
        self.assertEqual(status, 403, "the oldest session outlived the table")
        status, _, _ = self.web.request("GET", "/", headers={"Cookie": first_cookie})
        self.assertEqual(status, 403)
        self.assertIn("version", self.web.call("status"))

    def web_open(self):
        """`twofold web --open` with an xdg-open that copies the file it is
        given; returns (Web, the file, the copy)."""
        bindir = os.path.join(self.root, "bin")
        os.makedirs(bindir, exist_ok=True)
        copy = os.path.join(self.root, "opened.html")
        if os.path.exists(copy):
            os.remove(copy)
        with open(os.path.join(bindir, "xdg-open"), "w") as f:
            f.write('#!/bin/sh\ncp "$1" "%s"\n' % copy)
        os.chmod(os.path.join(bindir, "xdg-open"), 0o755)
        env = dict(os.environ, PATH=bindir + os.pathsep + os.environ["PATH"])
        web = Web(self.sam, "--open", env=env)
        page = os.path.join(self.sam.home, "web-open.html")
        wait_for("xdg-open to be run", lambda: os.path.exists(copy), 20, 0.05)
        with open(copy) as f:
            self.assertIn(web.url, f.read())
        return web, page, copy

    def test_open_file_is_removed_once_read_and_at_exit(self):
        web, page, _ = self.web_open()
        try:
            t = time.monotonic()
            self.assertTrue(os.path.exists(page), "the file went before the browser could read it")
            self.assertEqual(os.stat(page).st_mode & 0o777, 0o600)
            wait_for("the file with the secret to go", lambda: not os.path.exists(page),
                     OPEN_FILE_S + 20, 0.1)
            gone = time.monotonic() - t
            self.assertIsNone(web.proc.poll(), "twofold web stopped")
            print("web-open.html removed %.1f s after xdg-open ran" % gone)
            # Its secret still signs in once (the browser may be slow).
            web.login()
        finally:
            self.assertEqual(web.stop(), 0)
        # Stopped before the delay: the file goes at exit.
        web, page, _ = self.web_open()
        self.assertEqual(web.stop(), 0)
        self.assertFalse(os.path.exists(page), "the file outlived twofold web")

    # State-changing requests ---------------------------------------------------
    def test_forged_requests_change_nothing(self):
        self.web.login()
        cases = [
            ("cross-origin POST", 403, {"Origin": "http://evil.example"}),
            ("Origin on another port", 403,
             {"Origin": "http://127.0.0.1:%d" % (self.web.port + 1)}),
            ("null Origin", 403, {"Origin": "null"}),
            ("no Origin", 403, {"Origin": None}),
            ("wrong Host (DNS rebinding)", 403,
             {"Host": "evil.example:%d" % self.web.port,
              "Origin": "http://evil.example:%d" % self.web.port}),
            ("Host on another port", 403, {"Host": "127.0.0.1:%d" % (self.web.port + 1)}),
            ("no token", 403, {"X-Twofold-Token": None}),
            ("wrong token", 403, {"X-Twofold-Token": "0" * 64}),
            ("token of the wrong length", 403, {"X-Twofold-Token": self.web.token[:-2]}),
            ("the secret as token", 403, {"X-Twofold-Token": self.web.secret}),
            ("no cookie", 403, {"Cookie": None}),
            ("cross-site fetch", 403, {"Sec-Fetch-Site": "cross-site"}),
            ("form content type", 400, {"Content-Type": "text/plain"}),
            ("urlencoded form", 400, {"Content-Type": "application/x-www-form-urlencoded"}),
        ]
        for what, want, over in cases:
            status, _ = self.web.post("contact.add", self.add_args(), **over)
            self.assert_refused(status, want, what)
        # A GET cannot call the API either.
        status, _, _ = self.web.request("GET", "/api/call/contact.add",
                                        headers=self.web.api_headers())
        self.assert_refused(status, 405, "GET on the API")
        # The same request, done right, does change the node: the refusals
        # above were not for some other reason.
        result = self.web.call("contact.add", self.add_args())
        self.assertEqual(result["alias"], "alice")
        self.assertEqual(len(self.contacts()), 1)

    def test_forged_answers_change_nothing(self):
        """A proposal waits in Sam's inbox (from a stranger, tf-flood); forged
        accepts and declines leave it pending, and the node sent nothing."""
        r = flood("proposals", "--target", self.sam.listen, "--victim", self.sam.home,
                  "--identities", 1, "--per", 1)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        inbox = self.sam.json("inbox")
        self.assertEqual(len(inbox), 1)
        iid = inbox[0]["id"]
        self.web.login()
        forged = [{"Origin": "http://evil.example"}, {"X-Twofold-Token": None},
                  {"Cookie": None}, {"Host": "evil.example:%d" % self.web.port},
                  {"Content-Type": "text/plain"}]
        for verb, args in (("intro.accept", {"id": iid, "note": "forged"}),
                           ("intro.decline", {"id": iid, "reason": "forged"})):
            for over in forged:
                status, _ = self.web.post(verb, args, **over)
                self.assertIn(status, (400, 403), "%s %r" % (verb, over))
        after = self.sam.json("inbox", "--all")
        self.assertEqual([(i["id"], i["state"]) for i in after], [(iid, "pending")])
        self.assertEqual(self.sam.json("outbox"), [])
        # Done right, the answer goes through.
        self.assertEqual(self.web.call("intro.decline", {"id": iid})["state"], "declined")

    def test_bodies_and_arguments_are_bounded(self):
        self.web.login()
        pad = "x" * BODY_MAX
        body = json.dumps(dict(self.add_args(), pad=pad)).encode()
        self.assertGreater(len(body), BODY_MAX)
        status, _, _ = self.web.request("POST", "/api/call/contact.add", body,
                                        self.web.api_headers())
        self.assert_refused(status, 413, "an oversized body")
        # A declared length over the limit is refused before any body is
        # sent, and no length at all (chunked) is refused too.
        self.assertEqual(self.raw_post_status("Content-Length: 1000000000"), b"413")
        self.assertEqual(self.raw_post_status("Transfer-Encoding: chunked"), b"411")
        # Headers are bounded too (libmicrohttpd's 32 KiB per connection).
        self.assertEqual(self.raw_post_status("X-Big: " + "a" * 65536), b"431")
        self.assertEqual(self.contacts(), [])
        # Only the page's verbs, with flat arguments.
        for verb in ("watch", "message.send", "profile.set", "no.such.verb"):
            status, data = self.web.post(verb, {"name": "alice", "text": "hi"})
            self.assertEqual(status, 400, verb)
            self.assertEqual(json.loads(data)["error"]["name"], "E_UNKNOWN_VERB")
        for args in ('{"card": {"nested": 1}}', '[1]', '{"card": -1}',
                     '{"card": "a", "card": "b"}', 'not json', '{"tags": [1]}'):
            status, data, = self.web.request("POST", "/api/call/contact.add", args.encode(),
                                             self.web.api_headers())[0::2]
            self.assert_refused(status, 400, args)
        # The node's own refusals come back as {"ok": false}.
        status, data = self.web.post("contact.add", {"card": "tf1garbage"})
        self.assertEqual(status, 200)
        self.assertFalse(json.loads(data)["ok"])
        self.assertEqual(self.contacts(), [])

    def test_connections_are_bounded(self):
        """Connections over the limit wait in the kernel's backlog: the
        server runs one thread per connection it took, never more than
        CONNECTIONS_MAX of them (plus its main and listening threads)."""
        self.web.login()
        task_dir = "/proc/%d/task" % self.web.proc.pid

        def settled():
            """The thread count once it held still for a second."""
            last, since = -1, time.monotonic()
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline:
                n = len(os.listdir(task_dir))
                if n != last:
                    last, since = n, time.monotonic()
                elif time.monotonic() - since >= 1.0:
                    return n
                time.sleep(0.05)
            return last
        socks = []
        try:
            for _ in range(CONNECTIONS_MAX + 16):
                socks.append(socket.create_connection((self.web.host, self.web.port),
                                                      timeout=10))
            busy = settled()
        finally:
            for s in socks:
                s.close()
        idle = settled()
        self.assertLessEqual(busy - idle, CONNECTIONS_MAX)
        self.assertGreaterEqual(busy - idle, CONNECTIONS_MAX - 2,
                                "the server did not take the connections it may")
        # Once they are gone the page answers again.
        wait_for("the page to answer again",
                 lambda: self.web.post("status")[0] == 200, 30, 0.2)
        print("threads: %d idle, %d with %d connections open" % (
            idle, busy, CONNECTIONS_MAX + 16))

    def idle_sockets(self, n):
        """n connections that each sent the start of a request and then
        nothing, as another local user could hold them."""
        socks = []
        for _ in range(n):
            s = socket.create_connection((self.web.host, self.web.port), timeout=10)
            s.sendall(b"GET / HTTP/1.1\r\n")
            socks.append(s)
        return socks

    def test_idle_connections_do_not_lock_the_owner_out(self):
        self.web.login()
        socks = self.idle_sockets(40)
        try:
            # Forty idle connections leave room: a real request is answered
            # at once (a 5 s client timeout).
            t = time.monotonic()
            status, _ = self.web.post("status", timeout=5)
            self.assertEqual(status, 200)
            print("a request past 40 idle connections: %.2f s" % (time.monotonic() - t))
            # An idle connection is closed after the header timeout.
            t = time.monotonic()
            socks[0].settimeout(HEADER_TIMEOUT + 20)
            self.assertEqual(socks[0].recv(4096), b"", "the idle connection got an answer")
            closed = time.monotonic() - t
            self.assertLess(closed, HEADER_TIMEOUT + 15)
            print("an idle connection was closed after %.1f s" % closed)
            # Even with every connection taken, the owner waits at most about
            # the header timeout: the idle ones are closed and the owner's
            # request, queued in the backlog, is served.
            socks += self.idle_sockets(CONNECTIONS_MAX)
            t = time.monotonic()
            status, _ = self.web.post("status", timeout=HEADER_TIMEOUT + 30)
            waited = time.monotonic() - t
            self.assertEqual(status, 200)
            self.assertLess(waited, HEADER_TIMEOUT + 25)
            print("a request past %d new idle connections: %.1f s" % (CONNECTIONS_MAX, waited))
        finally:
            for s in socks:
                s.close()

    # The event stream -------------------------------------------------------------
    def open_stream(self, timeout=20):
        """A signed-in event stream on a raw socket, once it says it is
        watching; returns (socket, bytes read so far)."""
        conn = socket.create_connection((self.web.host, self.web.port), timeout=timeout)
        conn.sendall(("GET /api/events?t=%s HTTP/1.1\r\nHost: %s\r\nCookie: %s\r\n\r\n" % (
            self.web.token, self.web.hostport, self.web.cookie)).encode())
        data = b""
        deadline = time.monotonic() + 20
        while b": watching" not in data and time.monotonic() < deadline:
            data += conn.recv(4096)
        self.assertIn(b": watching", data)
        return conn, data

    def read_until(self, conn, data, what):
        """Reads the stream until what arrives (20 s at most)."""
        deadline = time.monotonic() + 20
        while what not in data and time.monotonic() < deadline:
            chunk = conn.recv(4096)
            self.assertNotEqual(chunk, b"", "the event stream was closed")
            data += chunk
        self.assertIn(what, data)
        return data

    def test_event_stream_needs_the_token_and_carries_node_events(self):
        self.web.login()
        status, _, _ = self.web.request("GET", "/api/events?t=" + "0" * 64,
                                        headers={"Cookie": self.web.cookie})
        self.assertEqual(status, 403)
        conn, data = self.open_stream()
        self.assertIn(b"text/event-stream", data)
        self.sam.cli("contact", "add", self.alice_card, "--alias", "alice")
        data = self.read_until(conn, data, b"contact.added")
        conn.close()
        line = [x for x in data.split(b"\n") if b"contact.added" in x][0]
        ev = json.loads(line[line.index(b"data: ") + 6:])
        self.assertEqual(ev["type"], "contact.added")

    def test_event_stream_outlives_the_header_timeout(self):
        self.web.login()
        conn, data = self.open_stream(timeout=HEADER_TIMEOUT + 30)
        try:
            time.sleep(HEADER_TIMEOUT + 3)
            self.sam.cli("contact", "add", self.alice_card, "--alias", "alice")
            self.read_until(conn, data, b"contact.added")
        finally:
            conn.close()


class WebListenAddress(NodeTestCase):
    def test_every_address_is_refused_even_with_allow_remote(self):
        for addr in ("0.0.0.0:0", "[::]:0", "0.0.0.0:8080"):
            r = subprocess.run([TWOFOLD, "--home", "/nonexistent", "web", "--listen", addr,
                                "--allow-remote"], capture_output=True, text=True, timeout=30)
            self.assertEqual(r.returncode, 2, addr + ": " + r.stderr)
            self.assertIn("concrete address", r.stderr)

    def test_a_loopback_address_is_printed_and_accepted_as_given(self):
        sam = self.node("sam", port=True)
        sam.init()
        sam.start()
        for host in ("127.0.0.5", "localhost"):
            web = Web(sam, "--listen", host + ":0")
            try:
                self.assertTrue(web.url.startswith("http://%s:" % host), web.url)
                self.assertEqual(web.hostport, "%s:%d" % (host, web.port))
                web.login()  # Host: HOST:PORT, as a browser sends it
                self.assertIn("version", web.call("status"))
                status, _ = web.post("status", Host="127.0.0.9:%d" % web.port)
                self.assertEqual(status, 403, "another loopback Host was taken")
            finally:
                self.assertEqual(web.stop(), 0, web.stderr)


class WebListen(unittest.TestCase):
    def test_non_loopback_needs_allow_remote(self):
        for addr in ("0.0.0.0:0", "192.0.2.1:8080", "[::]:0"):
            r = subprocess.run([TWOFOLD, "--home", "/nonexistent", "web", "--listen", addr],
                               capture_output=True, text=True, timeout=30)
            self.assertEqual(r.returncode, 2, r.stderr)
            self.assertIn("--allow-remote", r.stderr)
        for addr in ("127.0.0.1", "127.0.0.1:99999", "example.com:80", "[::1]"):
            r = subprocess.run([TWOFOLD, "--home", "/nonexistent", "web", "--listen", addr],
                               capture_output=True, text=True, timeout=30)
            self.assertEqual(r.returncode, 2, addr + ": " + r.stderr)


if __name__ == "__main__":
    unittest.main()
