# SPDX-License-Identifier: MIT
"""Helpers for the web page's tests: start `twofold web` for a node, sign in
as a browser would, and call the page's API with http.client (standard
library only; runs under Debian's /usr/bin/python3).

TF_TWOFOLD (set by ctest) is the CLI; `twofold web` starts twofold-web from
the same directory.
"""
import http.client
import json
import os
import select
import signal
import subprocess
import sys
import time
import urllib.parse

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                "..", "integration"))
from harness import TWOFOLD  # noqa: E402

START_TIMEOUT = 20.0


class Web:
    """One `twofold web` process serving one node's page."""

    def __init__(self, node, *extra, env=None):
        self.node = node
        self.proc = subprocess.Popen(
            [TWOFOLD, "--home", node.home, "web", *extra],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
        self._set_url(self._read_url())
        self.origin = "http://" + self.hostport
        self.cookie = None
        self.token = None

    def _set_url(self, url):
        self.url = url
        u = urllib.parse.urlsplit(self.url)
        self.hostport = u.netloc
        self.host = u.hostname
        self.port = u.port
        self.secret = urllib.parse.parse_qs(u.query)["k"][0]

    def new_link(self):
        """Asks for a new sign-in link (SIGUSR1) and reads it; each link
        signs in once.  Returns the new URL."""
        self.proc.send_signal(signal.SIGUSR1)
        self._set_url(self._read_url())
        return self.url

    def _read_url(self):
        deadline = time.monotonic() + START_TIMEOUT
        line = ""
        while time.monotonic() < deadline and not line.endswith("\n"):
            r, _, _ = select.select([self.proc.stdout], [], [], 0.2)
            if r:
                c = self.proc.stdout.readline()
                if c == "":
                    break
                line += c
        if not line.startswith("http://"):
            self.proc.kill()
            raise AssertionError("twofold web printed no address: %r\n%s" % (
                line, self.proc.stderr.read()))
        return line.strip()

    def stop(self):
        """Stops the server with SIGTERM; returns its exit status."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
                raise AssertionError("twofold web did not stop on SIGTERM")
        self.proc.stdout.close()
        err = self.proc.stderr.read()
        self.proc.stderr.close()
        self.stderr = err
        return self.proc.returncode

    # Raw HTTP ------------------------------------------------------------
    def request(self, method, path, body=None, headers=None, timeout=30):
        """Sends one request on a fresh connection; returns (status,
        headers as a dict with lower-case names, body bytes)."""
        conn = http.client.HTTPConnection(self.host, self.port, timeout=timeout)
        try:
            h = {"Host": self.hostport}
            h.update(headers or {})
            h = {k: v for k, v in h.items() if v is not None}
            conn.request(method, path, body=body, headers=h)
            r = conn.getresponse()
            data = r.read()
            return r.status, {k.lower(): v for k, v in r.getheaders()}, data
        finally:
            conn.close()

    def login(self):
        """Exchanges the secret for the cookie and the token, as a browser
        following the printed link does.  Returns the 303's headers."""
        status, h, _ = self.request("GET", "/?k=" + self.secret)
        if status != 303:
            raise AssertionError("sign-in answered %d" % status)
        self.cookie = h["set-cookie"].split(";", 1)[0]
        self.token = h["location"].split("#t=", 1)[1]
        return h

    def api_headers(self, **over):
        h = {"Cookie": self.cookie, "X-Twofold-Token": self.token,
             "Origin": self.origin, "Content-Type": "application/json"}
        h.update(over)
        return h

    def post(self, verb, args=None, timeout=30, **over):
        """POST /api/call/VERB; over replaces headers (None drops one).
        Returns (status, body bytes)."""
        body = json.dumps(args or {}).encode()
        status, _, data = self.request("POST", "/api/call/" + verb, body,
                                       self.api_headers(**over), timeout=timeout)
        return status, data

    def call(self, verb, args=None):
        """A call that must succeed: returns its result."""
        status, data = self.post(verb, args)
        if status != 200:
            raise AssertionError("%s answered %d: %r" % (verb, status, data))
        reply = json.loads(data)
        if not reply["ok"]:
            raise AssertionError("%s refused: %r" % (verb, reply["error"]))
        return reply["result"]
