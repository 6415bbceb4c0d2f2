#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Black-box tests of the twofold CLI.

The offline verbs (init, id, card) run for real.  Verbs that need the node run
against a fake node: a Unix socket in a temporary home that answers each
request with canned frames, so the CLI's framing, request building, JSON
rendering, error handling and exit statuses are checked without twofoldd.

Standard library only (msgpack is encoded and decoded by hand below).
Usage: test_cli.py PATH/TO/twofold
"""

import json
import os
import re
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time

TWOFOLD = None
RESULTS = {"passed": 0, "failed": 0}


# --- msgpack, the subset the control protocol uses -------------------------

def mp_encode(v):
    if v is None:
        return b"\xc0"
    if v is True:
        return b"\xc3"
    if v is False:
        return b"\xc2"
    if isinstance(v, float):
        return b"\xcb" + struct.pack(">d", v)
    if isinstance(v, int):
        if 0 <= v < 128:
            return bytes([v])
        if v >= 0:
            for tag, fmt, lim in ((0xCC, ">B", 1 << 8), (0xCD, ">H", 1 << 16),
                                  (0xCE, ">I", 1 << 32), (0xCF, ">Q", 1 << 64)):
                if v < lim:
                    return bytes([tag]) + struct.pack(fmt, v)
        if v >= -32:
            return struct.pack(">b", v)
        return b"\xd3" + struct.pack(">q", v)
    if isinstance(v, str):
        b = v.encode("utf-8", "surrogateescape")
        if len(b) < 32:
            return bytes([0xA0 | len(b)]) + b
        if len(b) < 256:
            return b"\xd9" + bytes([len(b)]) + b
        return b"\xda" + struct.pack(">H", len(b)) + b
    if isinstance(v, bytes):  # raw str bytes (for invalid UTF-8)
        return b"\xd9" + bytes([len(v)]) + v
    if isinstance(v, list):
        out = bytes([0x90 | len(v)]) if len(v) < 16 else b"\xdc" + struct.pack(">H", len(v))
        return out + b"".join(mp_encode(x) for x in v)
    if isinstance(v, dict):
        out = bytes([0x80 | len(v)]) if len(v) < 16 else b"\xde" + struct.pack(">H", len(v))
        return out + b"".join(mp_encode(k) + mp_encode(x) for k, x in v.items())
    raise TypeError(v)


def mp_decode(b, i=0):
    t = b[i]
    if t < 0x80:
        return t, i + 1
    if 0x80 <= t <= 0x8F or t in (0xDE, 0xDF):
        if t <= 0x8F:
            n, i = t & 15, i + 1
        elif t == 0xDE:
            n, i = struct.unpack_from(">H", b, i + 1)[0], i + 3
        else:
            n, i = struct.unpack_from(">I", b, i + 1)[0], i + 5
        d = {}
        for _ in range(n):
            k, i = mp_decode(b, i)
            d[k], i = mp_decode(b, i)
        return d, i
    if 0x90 <= t <= 0x9F or t in (0xDC, 0xDD):
        if t <= 0x9F:
            n, i = t & 15, i + 1
        elif t == 0xDC:
            n, i = struct.unpack_from(">H", b, i + 1)[0], i + 3
        else:
            n, i = struct.unpack_from(">I", b, i + 1)[0], i + 5
        out = []
        for _ in range(n):
            x, i = mp_decode(b, i)
            out.append(x)
        return out, i
    if 0xA0 <= t <= 0xBF or t in (0xD9, 0xDA, 0xDB):
        if t <= 0xBF:
            n, i = t & 31, i + 1
        elif t == 0xD9:
            n, i = b[i + 1], i + 2
        elif t == 0xDA:
            n, i = struct.unpack_from(">H", b, i + 1)[0], i + 3
        else:
            n, i = struct.unpack_from(">I", b, i + 1)[0], i + 5
        return b[i:i + n].decode("utf-8"), i + n
    if t == 0xC0:
        return None, i + 1
    if t in (0xC2, 0xC3):
        return t == 0xC3, i + 1
    for tag, fmt, size in ((0xCC, ">B", 1), (0xCD, ">H", 2), (0xCE, ">I", 4), (0xCF, ">Q", 8),
                           (0xD0, ">b", 1), (0xD1, ">h", 2), (0xD2, ">i", 4), (0xD3, ">q", 8)):
        if t == tag:
            return struct.unpack_from(fmt, b, i + 1)[0], i + 1 + size
    if t >= 0xE0:
        return t - 256, i + 1
    raise ValueError("msgpack type 0x%02x" % t)


def frame(obj):
    body = obj if isinstance(obj, bytes) else mp_encode(obj)
    return struct.pack(">I", len(body)) + body


# --- the fake node ----------------------------------------------------------

class FakeNode:
    """Listens on HOME/control.sock.  handler(request) returns a list of
    frames (dicts, or raw bytes) to send, or None to close the connection."""

    def __init__(self, home, handler):
        self.requests = []
        self.raw = []  # the request bodies, byte for byte
        self.handler = handler
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.path = os.path.join(home, "control.sock")
        self.sock.bind(self.path)
        self.sock.listen(4)
        self.sock.settimeout(0.2)
        self.stopping = False
        self.thread = threading.Thread(target=self.serve, daemon=True)
        self.thread.start()

    def serve(self):
        while not self.stopping:
            try:
                conn, _ = self.sock.accept()
            except socket.timeout:
                continue
            except OSError:
                return
            threading.Thread(target=self.client, args=(conn,), daemon=True).start()

    def client(self, conn):
        conn.settimeout(20)
        try:
            while True:
                hdr = self.recv_exact(conn, 4)
                if hdr is None:
                    return
                n = struct.unpack(">I", hdr)[0]
                body = self.recv_exact(conn, n)
                req, _ = mp_decode(body)
                self.raw.append(body)
                self.requests.append(req)
                frames = self.handler(req)
                if frames is None:
                    return
                for f in frames:
                    if isinstance(f, float):
                        time.sleep(f)
                    else:
                        conn.sendall(frame(f))
        except OSError:
            pass
        finally:
            conn.close()

    @staticmethod
    def recv_exact(conn, n):
        buf = b""
        while len(buf) < n:
            chunk = conn.recv(n - len(buf))
            if not chunk:
                return None
            buf += chunk
        return buf

    def close(self):
        self.stopping = True
        self.sock.close()
        self.thread.join()
        os.unlink(self.path)


def ok(req, result):
    return [{"id": req["id"], "ok": True, "result": result}]


def refuse(req, code, name, message):
    return [{"id": req["id"], "ok": False,
             "error": {"code": code, "name": name, "message": message}}]


# --- helpers ----------------------------------------------------------------

def run(*args, stdin=None, env=None):
    e = dict(os.environ)
    e.pop("NO_COLOR", None)
    e.update(env or {})
    p = subprocess.run([TWOFOLD, *args], input=stdin, capture_output=True, timeout=30, env=e)
    return p.returncode, p.stdout.decode("utf-8", "replace"), p.stderr.decode("utf-8", "replace")


def check(name, cond, detail=""):
    if cond:
        RESULTS["passed"] += 1
        print("ok   %s" % name)
    else:
        RESULTS["failed"] += 1
        print("FAIL %s %s" % (name, detail))


def expect(name, got, rc, out_has=(), err_has=(), out_lacks=()):
    """out_has strings match with runs of spaces taken as one (column widths
    are the CLI's business)."""
    code, out, err = got
    squeezed = re.sub(" +", " ", out)
    good = code == rc and all(re.sub(" +", " ", s) in squeezed for s in out_has) \
        and all(s in err for s in err_has) and not any(s in out for s in out_lacks)
    check(name, good, "\n  rc=%d want %d\n  stdout=%r\n  stderr=%r" % (code, rc, out[:600], err[:600]))
    return got


NOW = int(time.time())


def contact(id_, alias, name, **kw):
    c = {"id": id_, "fingerprint": "0123-4567-89ab-cdef", "name": name, "alias": alias,
         "trust": "known", "tags": [], "introduced_by": None, "intro": None,
         "addrs": ["127.0.0.1:7451"], "offers": [], "seeks": [], "seq": 1,
         "added": NOW - 7200, "updated": NOW - 7200, "blocked": False}
    c.update(kw)
    return c


ID_B = "tf1" + "b" * 58
ID_E = "tf1" + "e" * 58


# --- tests ------------------------------------------------------------------

def test_usage():
    expect("--help", run("--help"), 0, out_has=("contact add", "watch", "--json"))
    expect("--version", run("--version"), 0, out_has=("twofold ",))
    expect("no verb", run(), 2, err_has=("usage:",))
    expect("unknown verb", run("frobnicate"), 2, err_has=("unknown verb 'frobnicate'", "--help"))
    expect("unknown option", run("--frob"), 2, err_has=("unknown option '--frob'",))
    expect("unknown sub-verb", run("contact", "frob"), 2, err_has=("twofold contact: unknown verb",))
    expect("--help lists the message verbs", run("--help"), 0,
           out_has=("ping ", "message ", "messages ", "outbox "))
    for verb in (["init"], ["id"], ["card"], ["status"], ["watch"], ["contact"],
                 ["contact", "add"], ["contact", "list"], ["contact", "show"],
                 ["contact", "set"], ["contact", "rm"], ["ping"], ["message"], ["messages"],
                 ["outbox"]):
        expect("%s --help" % " ".join(verb), run(*verb, "--help"), 0, out_has=("usage:",))
        expect("%s -h" % " ".join(verb), run(*verb, "-h"), 0, out_has=("usage:",))
    expect("bad trust", run("contact", "add", "--trust", "best", "x"), 2,
           err_has=("trust 'best'",))
    expect("bad alias", run("contact", "add", "--alias", "tf1x", "x"), 2, err_has=("not an alias",))
    expect("bad tag", run("contact", "add", "--tag", "Bad", "x"), 2, err_has=("not a tag",))
    expect("missing card", run("contact", "add"), 2, err_has=("missing CARD",))
    expect("extra arg", run("contact", "show", "a", "b"), 2, err_has=("unexpected argument 'b'",))
    expect("missing value", run("contact", "add", "--alias"), 2, err_has=("needs a value",))
    expect("set nothing", run("contact", "set", "bob"), 2, err_has=("nothing to change",))
    expect("set conflict", run("contact", "set", "bob", "--block", "--unblock"), 2)
    expect("set mix tags", run("contact", "set", "bob", "--tag", "a", "--add-tag", "b"), 2)
    expect("init without name", run("--home", "/nonexistent/x", "init"), 2,
           err_has=("--name",))
    expect("init control char", run("--home", "/nonexistent/x", "init", "--name", "a\x1bb"), 2)
    expect("watch bad since", run("watch", "--since", "x"), 2)
    expect("ping --help", run("ping", "--help"), 0, out_has=("usage: twofold ping NAME|ID",))
    expect("message --help", run("message", "-h"), 0, out_has=("TEXT|-", "4000 bytes"))
    expect("ping without name", run("ping"), 2, err_has=("missing NAME|ID",))
    expect("ping two names", run("ping", "a", "b"), 2, err_has=("unexpected argument 'b'",))
    expect("ping empty name", run("ping", ""), 2, err_has=("the name is empty",))
    expect("message without text", run("message", "bob"), 2, err_has=("missing NAME|ID and TEXT",))
    expect("messages two names", run("messages", "a", "b"), 2, err_has=("unexpected argument",))
    expect("outbox argument", run("outbox", "x"), 2, err_has=("unexpected argument 'x'",))


def test_offline(tmp):
    a, b = os.path.join(tmp, "a"), os.path.join(tmp, "b")
    expect("init", run("--home", a, "init", "--name", "Alice"), 0,
           out_has=("created", "tf1", "twofoldd --home"))
    expect("init again refused", run("--home", a, "init", "--name", "Alice"), 1,
           err_has=("refusing to overwrite",))
    expect("init bad listen", run("--home", b, "init", "--name", "B", "--listen", "nope"), 2)
    code, out, _ = expect("init --json", run("--home", b, "--json", "init", "--name", "Bob"), 0)
    j = json.loads(out)
    check("init --json fields", j["id"].startswith("tf1") and j["card"].startswith("tfcard1:")
          and j["name"] == "Bob" and j["home"] == b, out)
    code, out, _ = expect("id --json", run("id", "--json", "--home", a), 0)
    ida = json.loads(out)
    check("id --json fields", ida["id"].startswith("tf1") and ida["name"] == "Alice"
          and ida["listen"] == "127.0.0.1:7451", out)
    expect("id", run("--home", a, "id"), 0, out_has=(ida["id"], "fingerprint", "Alice"))
    code, out, _ = expect("card", run("--home", a, "card"), 0, out_has=("tfcard1:",))
    check("card is one line", out.count("\n") == 1 and out.startswith("tfcard1:"), out)
    code, qr, err = run("--home", a, "card", "--qr")
    check("card --qr", (code == 0 and "\u2588" in qr and out.strip() in qr) or
          (code == 1 and "without QR support" in err), err)
    expect("card --qr --json", run("--home", a, "card", "--qr", "--json"), 2)
    expect("id without home", run("--home", os.path.join(tmp, "none"), "id"), 4,
           err_has=("no twofold home", "init --name"))
    os.mkdir(os.path.join(tmp, "empty"))
    expect("card without identity", run("--home", os.path.join(tmp, "empty"), "card"), 4,
           err_has=("no twofold identity",))
    card_b = json.loads(run("--home", b, "--json", "card")[1])["card"]
    return a, card_b


def test_not_running(home):
    expect("status, node not running", run("--home", home, "status"), 3,
           err_has=("twofoldd is not running for %s" % home, "twofoldd --home %s" % home))
    expect("status, no home", run("--home", home + "-missing", "status"), 4,
           err_has=("no twofold home",))


def test_with_node(home, card_b):
    evil = "Eve\x1b[31m\u202eevil\x07"
    contacts = [contact(ID_B, "bob", "Bob Ünïcode", tags=["work", "chess"], trust="close"),
                contact(ID_E, None, evil, introduced_by=ID_B, intro="ab" * 32, blocked=True,
                        added=NOW - 3 * 86400)]

    def handler(req):
        verb, args = req["verb"], req.get("args", {})
        if verb == "status":
            return ok(req, {"id": ID_B, "fingerprint": "0123-4567-89ab-cdef", "name": "Alice",
                            "listen": "127.0.0.1:7451", "version": "0.1.0", "pid": 42,
                            "started": NOW - 3700, "uptime_s": 3700, "store_bytes": 3 << 20,
                            "contacts": 2, "events": 5})
        if verb == "contact.list":
            return ok(req, contacts)
        if verb == "contact.show":
            if args["name"] == "nobody":
                return refuse(req, -10070, "E_NOT_FOUND",
                              "no contact called 'nobody' (see: twofold contact list)")
            return ok(req, dict(contacts[1], card="tfcard1:xyz"))
        if verb == "contact.add":
            return ok(req, contact(ID_B, args.get("alias"), "Bob", added=NOW, updated=NOW))
        if verb == "contact.set":
            return ok(req, contact(ID_B, "bobby", "Bob", updated=NOW))
        if verb == "contact.rm":
            return ok(req, {"removed": ID_B})
        if verb == "watch":
            ev = lambda seq, typ: {"event": {"seq": seq, "time": NOW, "type": typ,
                                             "contact": ID_B, "name": "Bob Smith"}}
            return ok(req, {"seq": 7}) + [ev(8, "contact.added"), 0.2, ev(9, "contact.removed"),
                                          30.0]
        return refuse(req, -10075, "E_UNKNOWN_VERB", "unknown verb")

    node = FakeNode(home, handler)
    try:
        code, out, _ = expect("status --json", run("--home", home, "status", "--json"), 0)
        st = json.loads(out)
        check("status --json fields", st["id"] == ID_B and st["listen"] == "127.0.0.1:7451", out)
        check("request framing", node.requests[-1].get("verb") == "status"
              and isinstance(node.requests[-1].get("id"), int), repr(node.requests[-1]))
        expect("status", run("--home", home, "status"), 0,
               out_has=("uptime 1 h", "3.0 MiB", "127.0.0.1:7451"))

        code, out, _ = expect("contact list --json", run("--home", home, "--json", "contact",
                                                         "list"), 0)
        lst = json.loads(out)
        check("list --json keys", all(set(("id", "alias", "name", "trust", "tags",
                                           "introduced_by", "intro")) <= set(c) for c in lst), out)
        check("list --json values", lst[1]["name"] == evil and lst[1]["alias"] is None
              and lst[0]["introduced_by"] is None and lst[1]["introduced_by"] == ID_B, out)
        check("list --json not ASCII-escaped", "Ünïcode" in out and "\\u001b" in out.lower(), out)

        code, out, _ = expect("contact list", run("--home", home, "contact", "list"), 0,
                              out_has=("ALIAS", "Bob Ünïcode", "work, chess", "close",
                                       "known, blocked", "2 h ago", "3 days ago"),
                              out_lacks=("\x1b", "\u202e", "\x07"))
        lines = out.splitlines()
        check("list table aligned", len(lines) == 3 and
              lines[0].index("TRUST") == lines[1].index("close") == lines[2].index("known"), out)
        check("list sanitised", "Eve?[31m?evil?" in out, out)
        expect("no colour in a pipe", run("--home", home, "contact", "list"), 0,
               out_lacks=("\x1b[1m",))

        expect("contact show", run("--home", home, "contact", "show", "tf1eee"), 0,
               out_has=("introduced by", ID_B, "blocked yes", "tfcard1:xyz"),
               out_lacks=("\x1b",))
        check("show request", node.requests[-1] == {"id": node.requests[-1]["id"],
                                                    "verb": "contact.show",
                                                    "args": {"name": "tf1eee"}},
              repr(node.requests[-1]))
        expect("refused", run("--home", home, "contact", "show", "nobody"), 1,
               err_has=("twofold contact show: no contact called 'nobody'",))
        code, out, _ = expect("refused --json", run("--home", home, "--json", "contact", "show",
                                                    "nobody"), 1)
        check("refused --json error", json.loads(out)["error"]["name"] == "E_NOT_FOUND", out)

        expect("contact add", run("--home", home, "contact", "add", card_b, "--alias", "bob",
                                  "--trust", "close", "--tag", "work", "--tag", "chess"), 0,
               out_has=("added Bob", "as bob"))
        args = node.requests[-1]["args"]
        check("add request", args == {"card": card_b, "alias": "bob", "trust": "close",
                                      "tags": ["work", "chess"]}, repr(args))
        expect("contact add from stdin", run("--home", home, "contact", "add", "-",
                                             stdin=("\n  " + card_b + "\n").encode()), 0)
        check("add stdin request", node.requests[-1]["args"] == {"card": card_b},
              repr(node.requests[-1]))
        n = len(node.requests)
        bad = card_b[:20] + ("A" if card_b[20] != "A" else "B") + card_b[21:]
        expect("bad card refused locally", run("--home", home, "contact", "add", bad), 1,
               err_has=("card refused", "nothing was stored"))
        check("bad card not sent", len(node.requests) == n)

        expect("contact set", run("--home", home, "contact", "set", "bob", "--no-alias",
                                  "--add-tag", "x", "--rm-tag", "y", "--block",
                                  "--trust", "acquaintance"), 0, out_has=("updated Bob",))
        args = node.requests[-1]["args"]
        check("set request", args == {"name": "bob", "alias": "", "trust": "acquaintance",
                                      "add_tags": ["x"], "rm_tags": ["y"], "blocked": True},
              repr(args))
        run("--home", home, "contact", "set", "bob", "--no-tags", "--unblock")
        args = node.requests[-1]["args"]
        check("set --no-tags", args == {"name": "bob", "tags": [], "blocked": False}, repr(args))

        expect("contact rm", run("--home", home, "contact", "rm", "bob"), 0,
               out_has=("removed " + ID_B,))
        code, out, _ = expect("contact rm --json", run("--home", home, "contact", "rm", "bob",
                                                       "--json"), 0)
        check("rm --json", json.loads(out) == {"removed": ID_B}, out)

        for human in (False, True):
            name = "watch" if human else "watch --json"
            cmd = [TWOFOLD, "--home", home, "watch", "--since", "3"] + ([] if human else ["--json"])
            p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
            got = [p.stdout.readline().decode(), p.stdout.readline().decode()]
            p.send_signal(signal.SIGINT)
            rc = p.wait(timeout=10)
            check(name + " exits 0 on SIGINT", rc == 0, "rc=%d %r" % (rc, p.stderr.read()))
            if human:
                check(name + " lines", "#8  contact.added" in got[0] and 'name="Bob Smith"' in got[0]
                      and "contact.removed" in got[1], repr(got))
            else:
                evs = [json.loads(x) for x in got]
                check(name + " lines", evs[0]["seq"] == 8 and evs[1]["type"] == "contact.removed",
                      repr(got))
            check(name + " request", node.requests[-1]["args"] == {"since": 3},
                  repr(node.requests[-1]))
    finally:
        node.close()

    # A node that misbehaves.
    for name, handler, rc, msg in (
            ("closes without reply", lambda req: None, 3, "closed the connection"),
            ("replies to another id", lambda req: [{"id": req["id"] + 5, "ok": True, "result": 1}],
             3, "malformed reply"),
            ("sends a non-map", lambda req: [[1, 2]], 3, "malformed reply"),
            ("sends invalid msgpack", lambda req: [b"\xc1"], 3, "malformed reply"),
            ("sends a list that is not one", lambda req: ok(req, {"a": 1}), 3, "malformed"),
            ("answers frame errors with id 0",
             lambda req: refuse({"id": 0}, -10074, "E_BAD_REQUEST", "bad request"), 1,
             "bad request")):
        node = FakeNode(home, handler)
        try:
            expect("node " + name, run("--home", home, "contact", "list"), rc, err_has=(msg,))
        finally:
            node.close()


ID_A = "tf1" + "a" * 58


def test_messaging(tmp, home):
    """ping, message, messages, outbox and the new status fields."""
    now_ms = lambda: int(time.time() * 1000)
    evil = "hi \x1b[2J\u202e" + "x" * 80 + "\nsecond line"

    # Times are taken when the fake node answers, so that "just now" and
    # "in 6 days" hold however slowly the suite runs (under valgrind, say);
    # sent[verb] keeps the last answer for the --json checks.
    sent = {}

    def messages():
        now = int(time.time())
        return [
            {"id": "01" * 16, "direction": "out", "contact": ID_B, "alias": "bob",
             "text": "hello\nbob", "state": "delivered", "time": now - 7200,
             "updated": now - 7000, "error": None},
            {"id": "02" * 16, "direction": "in", "contact": ID_E, "alias": None, "text": evil,
             "state": "received", "time": now - 3 * 86400, "updated": now - 3 * 86400,
             "error": None},
            {"id": "03" * 16, "direction": "out", "contact": ID_E, "alias": None,
             "text": "short", "state": "failed", "time": now - 30, "updated": now - 10,
             "error": "expired"}]
    peers = [{"id": ID_B, "alias": "bob", "addr": "127.0.0.1:7452", "direction": "out",
              "state": "up", "in_flight": 2},
             {"id": ID_E, "alias": None, "addr": "10.0.0.5:40012", "direction": "in",
              "state": "handshake", "in_flight": 0}]
    state = {"empty": False}

    def outbox():
        now = int(time.time())
        return [{"msg_id": "03" * 16, "to": ID_B, "alias": "bob", "type": "note", "attempts": 0,
                 "next_try": now_ms() - 5000, "created": now, "expires": now + 6 * 86400 + 60,
                 "last_error": None},
                {"msg_id": "04" * 16, "to": ID_E, "alias": None, "type": "proposal",
                 "attempts": 3, "next_try": now_ms() + 3300, "created": now - 600,
                 "expires": now + 2 * 3600 + 60,
                 "last_error": "connection refused by 10.0.0.5:7451"}]

    def handler(req):
        verb, args = req["verb"], req.get("args", {})
        if verb == "ping":
            name = args["name"]
            if name == "alice":
                return ok(req, {"id": ID_A, "addr": "127.0.0.1:7451", "rtt_ms": 1.234})
            if name == "tf1aaaaaa":
                return ok(req, {"id": ID_A, "addr": "127.0.0.1:7451", "rtt_ms": 3})
            if name == "mallory":
                return refuse(req, -10081, "E_KEY_MISMATCH",
                              "the node at 127.0.0.1:7451 is not mallory")
            if name == "down":
                return refuse(req, -111, "ECONNREFUSED", "connection refused by 127.0.0.1:7451")
            return refuse(req, -10070, "E_NOT_FOUND", "no contact called '%s'" % name)
        if verb == "message.send":
            if args["name"] == "nobody":
                return refuse(req, -10070, "E_NOT_FOUND", "no contact called 'nobody'")
            return ok(req, {"id": "ab" * 16, "contact": ID_B, "state": "queued"})
        if verb == "message.list":
            sent[verb] = [] if state["empty"] else messages()[:1 if "name" in args else 3]
            return ok(req, sent[verb])
        if verb == "outbox.list":
            sent[verb] = [] if state["empty"] else outbox()
            return ok(req, sent[verb])
        if verb == "status":
            return ok(req, {"id": ID_A, "listen": "127.0.0.1:7451", "uptime_s": 60,
                            "contacts": 2, "events": 5, "outbox": 2, "messages": 3,
                            "peers": [] if state["empty"] else peers})
        return refuse(req, -10075, "E_UNKNOWN_VERB", "unknown verb")

    # Slow answers, on a node of their own so that they cannot interleave with
    # the requests checked below: ping waits up to 30 s for its answer, every
    # other verb 10 s.  Both run in the background while the rest goes on.
    slow_home = os.path.join(tmp, "slow")
    os.mkdir(slow_home, 0o700)
    slow = FakeNode(slow_home, lambda req: [11.0] + (
        ok(req, {"id": ID_A, "addr": "127.0.0.1:7451", "rtt_ms": 10999.5})
        if req["verb"] == "ping" else ok(req, [])))
    env = dict(os.environ)
    env.pop("NO_COLOR", None)
    slow_runs = [subprocess.Popen([TWOFOLD, "--home", slow_home] + args, stdout=subprocess.PIPE,
                                  stderr=subprocess.PIPE, env=env)
                 for args in (["ping", "alice"], ["outbox"])]

    node = FakeNode(home, handler)
    try:
        expect("ping", run("--home", home, "ping", "alice"), 0,
               out_has=("pong from alice (tf1aaaaaaaaa...) at 127.0.0.1:7451 in 1.2 ms\n",))
        req = node.requests[-1]
        check("ping request bytes", node.raw[-1] == mp_encode(
            {"id": req["id"], "verb": "ping", "args": {"name": "alice"}}), repr(node.raw[-1]))
        code, out, _ = expect("ping --json", run("--home", home, "--json", "ping", "alice"), 0)
        check("ping --json passthrough", json.loads(out) == {
            "id": ID_A, "addr": "127.0.0.1:7451", "rtt_ms": 1.234}, out)
        expect("ping, integer rtt", run("--home", home, "ping", "tf1aaaaaa"), 0,
               out_has=("pong from tf1aaaaaa (tf1aaaaaaaaa...) at 127.0.0.1:7451 in 3 ms",))
        expect("ping, wrong key", run("--home", home, "ping", "mallory"), 1,
               err_has=("twofold ping: the node at 127.0.0.1:7451 is not mallory\n",))
        expect("ping, refused", run("--home", home, "ping", "down"), 1,
               err_has=("twofold ping: connection refused by 127.0.0.1:7451\n",))
        code, out, _ = expect("ping --json, refused",
                              run("--home", home, "--json", "ping", "down"), 1)
        check("ping --json error", json.loads(out)["error"]["name"] == "ECONNREFUSED", out)

        expect("message", run("--home", home, "message", "bob", "hello\nthere"), 0,
               out_has=("queued note to bob (id " + "ab" * 16 + ")\n",))
        req = node.requests[-1]
        check("message request bytes", node.raw[-1] == mp_encode(
            {"id": req["id"], "verb": "message.send",
             "args": {"name": "bob", "text": "hello\nthere"}}), repr(node.raw[-1]))
        code, out, _ = expect("message --json", run("--home", home, "message", "bob", "hi",
                                                     "--json"), 0)
        check("message --json passthrough", json.loads(out) == {
            "id": "ab" * 16, "contact": ID_B, "state": "queued"}, out)
        expect("message from stdin", run("--home", home, "message", "bob", "-",
                                         stdin="two\nlines\r\n\n".encode()), 0)
        check("message stdin request", node.requests[-1]["args"] ==
              {"name": "bob", "text": "two\nlines"}, repr(node.requests[-1]))
        longest = "\u00e9" * 2000  # 4000 bytes
        expect("message of 4000 bytes", run("--home", home, "message", "bob", longest), 0)
        check("message of 4000 bytes sent", node.requests[-1]["args"]["text"] == longest)
        expect("message of 4000 bytes from stdin",
               run("--home", home, "message", "bob", "-", stdin=(longest + "\n").encode()), 0)
        check("message of 4000 bytes from stdin sent",
              node.requests[-1]["args"]["text"] == longest)
        n = len(node.requests)
        for name, args, stdin, msg in (
                ("empty", [""], None, "the message is empty"),
                ("blank", [" \n\t"], None, "the message is empty"),
                ("empty stdin", ["-"], b"", "the message is empty"),
                ("stdin of line breaks", ["-"], b"\n\r\n", "the message is empty"),
                ("4001 bytes", ["x" + longest], None, "longer than 4000 bytes"),
                ("4001 bytes from stdin", ["-"], ("x" + longest).encode(), "longer than 4000"),
                ("long stdin", ["-"], b"y" * 100000, "longer than 4000 bytes"),
                ("line breaks hiding the rest", ["-"], b"a" + b"\n" * 5000 + b"b",
                 "longer than 4000 bytes"),
                ("invalid UTF-8", ["-"], b"caf\xe9", "not UTF-8"),
                ("NUL byte", ["-"], b"a\0b", "not UTF-8")):
            expect("message refused locally: " + name,
                   run("--home", home, "message", "bob", *args, stdin=stdin), 2, err_has=(msg,))
        check("refused messages not sent", len(node.requests) == n)
        expect("message to nobody", run("--home", home, "message", "nobody", "hi"), 1,
               err_has=("twofold message: no contact called 'nobody'",))

        code, out, _ = expect("messages", run("--home", home, "messages"), 0,
                              out_has=("TIME  DIR  CONTACT  STATE  TEXT",
                                       "2 h ago  out  bob  delivered  hello...",
                                       "3 days ago  in  tf1eeeeeeeee  received  hi ?[2J?xxx",
                                       "just now  out  tf1eeeeeeeee  failed  short\n"),
                              out_lacks=("\x1b", "\u202e", "second line", "bob\n"))
        lines = out.splitlines()
        text_at = lines[0].index("TEXT")
        check("messages table aligned", len(lines) == 4 and all(
            l[text_at - 2:text_at] == "  " and l[text_at] != " " for l in lines), out)
        check("messages text cut to 60 columns", len(lines[2][text_at:]) == 60
              and lines[2].endswith("x..."), repr(lines[2]))
        req = node.requests[-1]
        check("messages request bytes", node.raw[-1] == mp_encode(
            {"id": req["id"], "verb": "message.list"}), repr(node.raw[-1]))
        code, out, _ = expect("messages --json", run("--home", home, "--json", "messages"), 0)
        check("messages --json passthrough", json.loads(out) == sent["message.list"], out)
        expect("messages NAME", run("--home", home, "messages", "bob"), 0, out_has=("bob",))
        req = node.requests[-1]
        check("messages NAME request bytes", node.raw[-1] == mp_encode(
            {"id": req["id"], "verb": "message.list", "args": {"name": "bob"}}),
            repr(node.raw[-1]))

        expect("outbox", run("--home", home, "outbox"), 0,
               out_has=("TO  TYPE  ATTEMPTS  NEXT TRY  EXPIRES  LAST ERROR",
                        "bob  note  0  now  in 6 days  -\n",
                        "tf1eeeeeeeee  proposal  3  in 4 s  in 2 h  connection refused by "
                        "10.0.0.5:7451\n"))
        req = node.requests[-1]
        check("outbox request bytes", node.raw[-1] == mp_encode(
            {"id": req["id"], "verb": "outbox.list"}), repr(node.raw[-1]))
        code, out, _ = expect("outbox --json", run("--home", home, "outbox", "--json"), 0)
        check("outbox --json passthrough", json.loads(out) == sent["outbox.list"], out)

        code, out, _ = expect("status with peers", run("--home", home, "status"), 0,
                              out_has=("outbox 2\n", "messages 3\n", "peers 2\n",
                                       "PEER  ADDR  DIR  STATE  IN FLIGHT",
                                       "bob  127.0.0.1:7452  out  up  2\n",
                                       "tf1eeeeeeeee  10.0.0.5:40012  in  handshake  0\n"))
        code, out, _ = expect("status --json with peers", run("--home", home, "--json",
                                                              "status"), 0)
        check("status --json passthrough", json.loads(out)["peers"] == peers
              and json.loads(out)["outbox"] == 2, out)

        state["empty"] = True
        expect("messages, none", run("--home", home, "messages"), 0,
               out_has=("no messages yet",), out_lacks=("TIME",))
        expect("messages NAME, none", run("--home", home, "messages", "bob"), 0,
               out_has=("no messages with bob",))
        expect("outbox, empty", run("--home", home, "outbox"), 0,
               out_has=("the outbox is empty",))
        expect("status without peers", run("--home", home, "status"), 0,
               out_has=("peers 0",), out_lacks=("PEER ",))
    finally:
        node.close()

    node = FakeNode(home, lambda req: ok(req, {"a": 1}))
    try:
        for verb in ("messages", "outbox"):
            expect(verb + ", not a list", run("--home", home, verb), 3, err_has=("malformed",))
    finally:
        node.close()

    (ping_out, ping_err), (outbox_out, outbox_err) = [p.communicate(timeout=40)
                                                      for p in slow_runs]
    check("ping waits for a node answering after 11 s", slow_runs[0].returncode == 0 and
          b"pong from alice" in ping_out and b"in 10999.5 ms" in ping_out, repr(ping_err))
    check("other verbs give up after 10 s", slow_runs[1].returncode == 3 and
          b"did not answer within 10 s" in outbox_err, repr(outbox_err))
    slow.close()


def main():
    global TWOFOLD
    if len(sys.argv) != 2:
        sys.exit("usage: test_cli.py PATH/TO/twofold")
    TWOFOLD = os.path.abspath(sys.argv[1])
    # Short: the control socket path must fit in sockaddr_un.
    tmp = tempfile.mkdtemp(prefix="tfcli")
    try:
        test_usage()
        home, card_b = test_offline(tmp)
        test_not_running(home)
        test_with_node(home, card_b)
        test_messaging(tmp, home)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    print("%d passed, %d failed" % (RESULTS["passed"], RESULTS["failed"]))
    sys.exit(1 if RESULTS["failed"] else 0)


if __name__ == "__main__":
    main()
