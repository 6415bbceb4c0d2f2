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
        self.lookups = []  # contact.show requests the CLI made to name an id
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
                # The CLI's own lookups of names for ids (cli/names.c: a
                # contact.show of a full text id) are kept apart.
                name = req.get("args", {}).get("name", "")
                if req["verb"] == "contact.show" and len(name) == 61 and name.startswith("tf1"):
                    self.lookups.append(req)
                else:
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
    expect("--help lists the intro verbs", run("--help"), 0,
           out_has=("propose ", "intros ", "show ", "withdraw ", "inbox ", "accept ",
                    "decline "))
    expect("propose --help", run("propose", "--help"), 0,
           out_has=("usage: twofold propose A B --topic TOPIC", "--expires DURATION", "--wait",
                    "--sequential", "--about-a TEXT"))
    for verb in (["init"], ["id"], ["card"], ["status"], ["watch"], ["contact"],
                 ["contact", "add"], ["contact", "list"], ["contact", "show"],
                 ["contact", "set"], ["contact", "rm"], ["ping"], ["message"], ["messages"],
                 ["outbox"], ["propose"], ["intros"], ["show"], ["withdraw"], ["inbox"],
                 ["accept"], ["decline"], ["contact", "block"], ["contact", "unblock"],
                 ["policy"], ["policy", "check"], ["policy", "reload"], ["policy", "show"],
                 ["policy", "test"]):
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
    # backup and restore: what is refused before anything is read.
    expect("backup --help", run("backup", "--help"), 0,
           out_has=("usage: twofold backup FILE", "--passphrase-file FILE", "--force"))
    expect("restore --help", run("restore", "-h"), 0,
           out_has=("usage: twofold restore FILE [HOME]", "must not", "stop the old node"))
    expect("backup without FILE", run("backup"), 2, err_has=("missing FILE",))
    expect("backup, two files", run("backup", "a", "b"), 2, err_has=("unexpected argument 'b'",))
    expect("backup, two passphrase sources", run("backup", "f", "--passphrase-file", "x",
                                                 "--passphrase-env", "Y"), 2,
           err_has=("give --passphrase-file or --passphrase-env, not both",))
    expect("restore without FILE", run("restore"), 2, err_has=("missing FILE",))
    expect("restore, HOME twice", run("--home", "/tmp/x", "restore", "f", "/tmp/y"), 2,
           err_has=("give the new home once: as HOME or --home",))
    code, out, _ = run("--json", "restore", "f", "/tmp/y", "--passphrase-env", "TF_NO_SUCH_VAR")
    check("restore, unset variable", code == 2 and json.loads(out)["error"]["message"] ==
          "the variable TF_NO_SUCH_VAR is not set", repr((code, out)))
    # help, and suggestions for what was misspelt.
    code, top, _ = run("--help")
    expect("help", run("help"), 0, out_has=(top,))
    expect("help VERB", run("help", "propose"), 0, out_has=(run("propose", "--help")[1],))
    expect("help GROUP VERB", run("help", "contact", "add"), 0,
           out_has=(run("contact", "add", "--help")[1],))
    expect("help GROUP", run("help", "contact"), 0,
           out_has=("usage: twofold contact [--home DIR]", "contact add ", "contact block "))
    expect("help help", run("help", "help"), 0, out_has=("usage: twofold help [VERB ...]",))
    expect("help, listed", run("--help"), 0, out_has=("help ", "backup ", "restore "))
    expect("help, unknown", run("help", "contcat"), 2,
           err_has=("unknown verb 'contcat' (did you mean 'contact'?)",))
    expect("help, no such sub-verb", run("help", "propose", "x"), 2,
           err_has=("'propose' has no verbs under it",))
    expect("did you mean a verb", run("contcat", "list"), 2,
           err_has=("twofold: unknown verb 'contcat' (did you mean 'contact'?)",))
    expect("did you mean a sub-verb", run("contact", "lsit"), 2,
           err_has=("twofold contact: unknown verb 'lsit' (did you mean 'list'?)",))
    expect("did you mean one of two", run("mesages"), 2,
           err_has=("(did you mean 'message' or 'messages'?)",))
    expect("no suggestion when nothing is near", run("zzzzzz"), 2,
           err_has=("unknown verb 'zzzzzz' (try",))
    expect("did you mean an option", run("contact", "list", "--limt", "3"), 2,
           err_has=("unknown option '--limt' (did you mean '--limit'?)",))
    expect("did you mean a global option", run("status", "--jsno"), 2,
           err_has=("unknown option '--jsno' (did you mean '--json'?)",))
    # Every failure under --json prints one error object on stdout.
    for name, args, rc, err_name in (
            ("unknown verb", ["--json", "frob"], 2, "E_USAGE"),
            ("unknown verb, --json after it", ["frob", "--json"], 2, "E_USAGE"),
            ("unknown option", ["contact", "list", "--frob", "--json"], 2, "E_USAGE"),
            ("missing argument", ["--json", "ping"], 2, "E_USAGE"),
            ("bad topic", ["--json", "propose", "a", "b", "--topic", "Bad"], 2, "E_USAGE"),
            ("no home", ["--json", "--home", "/nonexistent/x", "status"], 4, "E_LOCAL"),
            ("no identity", ["--json", "--home", "/nonexistent/x", "id"], 4, "E_LOCAL")):
        code, out, err = run(*args)
        try:
            obj = json.loads(out)
        except ValueError:
            obj = None
        check("--json error object: " + name, code == rc and obj is not None and
              obj["error"]["name"] == err_name and obj["error"]["exit"] == rc and
              obj["error"]["message"] in err and out.count("\n") == 1,
              repr((code, out, err)))


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
    # A home whose control socket path would not fit in sun_path (107 bytes)
    # is refused by init, and nothing is made; one that just fits is taken.
    too_long = os.path.join(tmp, "l" * (107 - len("/control.sock") - len(tmp)))
    fits, too_long = too_long[:-1], too_long
    expect("init refuses a home too deep for its socket", run("--home", too_long, "init",
                                                              "--name", "L"), 4,
           err_has=("the control socket path %s/control.sock is longer than a Unix socket "
                    "allows (107 bytes); use a shorter --home" % too_long,))
    check("init made nothing for a home too deep", not os.path.exists(too_long))
    expect("init takes a home whose socket just fits", run("--home", fits, "init", "--name", "F"),
           0, out_has=("created",))
    os.mkdir(too_long)
    expect("status for a home too deep gives the same message",
           run("--home", too_long, "status"), 4,
           err_has=("the control socket path %s/control.sock is longer than a Unix socket "
                    "allows (107 bytes); use a shorter --home" % too_long,))
    return a, card_b


def test_not_running(home):
    expect("status, node not running", run("--home", home, "status"), 3,
           err_has=("twofoldd is not running for %s" % home, "twofoldd --home %s" % home))
    expect("status, no home", run("--home", home + "-missing", "status"), 4,
           err_has=("no twofold home",))
    code, out, err = run("--home", home, "--json", "status")
    check("--json error object: node not running", code == 3 and json.loads(out) == {
        "error": {"name": "E_NODE", "exit": 3, "message": err.split(": ", 1)[1].strip()}},
        repr((code, out, err)))


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
            if args["name"] == ID_B:
                return ok(req, dict(contacts[0], card="tfcard1:bob"))
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
        check("list names who introduced", lines[0].endswith("INTRODUCED BY") and
              lines[2].endswith("bob") and lines[1].endswith("-"), out)
        check("list looks up the introducer", [r["args"]["name"] for r in node.lookups] == [ID_B],
              repr(node.lookups))
        expect("no colour in a pipe", run("--home", home, "contact", "list"), 0,
               out_lacks=("\x1b[1m",))
        check("contact list asks for the default page",
              node.requests[-1].get("args") == {"limit": 100}, repr(node.requests[-1]))
        # A full page says how to get the next one, in its direction.
        for cursor, given, hint in (("after", ID_B, "more: twofold contact list --after " + ID_E),
                                    ("before", ID_E,
                                     "earlier: twofold contact list --before " + ID_B)):
            expect("contact list --%s" % cursor, run("--home", home, "contact", "list",
                                                     "--limit", "2", "--" + cursor, given), 0,
                   err_has=("(2 shown; %s)" % hint,))
            check("contact list --%s args" % cursor,
                  node.requests[-1].get("args") == {"limit": 2, cursor: given},
                  repr(node.requests[-1]))
        code, _, err = expect("contact list under a page", run("--home", home, "contact",
                                                               "list", "--limit", "3"), 0)
        check("contact list no hint under a page", "shown" not in err, err)
        expect("contact list bad limit", run("--home", home, "contact", "list", "--limit", "x"),
               2, err_has=("--limit wants a number from 1 to 1000, not 'x'",))
        expect("contact list two cursors", run("--home", home, "contact", "list", "--after",
                                               ID_B, "--before", ID_E), 2,
               err_has=("give --after or --before, not both",))

        expect("contact show", run("--home", home, "contact", "show", "tf1eee"), 0,
               out_has=("introduced by bob\n", "intro abababababab\n", "blocked yes",
                        "tfcard1:xyz"),
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
        # A card wrapped as mail clients do (76 or 80 columns, CRLF, an
        # indented or quoted-looking layout) is the same card.
        def wrap(text, width, sep):
            return sep.join(text[i:i + width] for i in range(0, len(text), width))
        for name, wrapped in (("76", wrap(card_b, 76, "\n")), ("80", wrap(card_b, 80, "\n")),
                              ("80 CRLF", wrap(card_b, 80, "\r\n") + "\r\n"),
                              ("indented", "  " + wrap(card_b, 40, "\n\t  ") + " \n")):
            expect("wrapped card (%s)" % name, run("--home", home, "contact", "add", wrapped), 0,
                   out_has=("added Bob",))
            check("wrapped card (%s) request" % name,
                  node.requests[-1]["args"] == {"card": card_b}, repr(node.requests[-1]))
            expect("wrapped card (%s) from stdin" % name,
                   run("--home", home, "contact", "add", "-", stdin=wrapped.encode()), 0)
            check("wrapped card (%s) from stdin request" % name,
                  node.requests[-1]["args"] == {"card": card_b}, repr(node.requests[-1]))
        n = len(node.requests)
        wrapped = wrap(card_b, 76, "\n")
        bad = wrapped[:90] + ("A" if wrapped[90] != "A" else "B") + wrapped[91:]
        expect("wrapped altered card refused locally", run("--home", home, "contact", "add",
                                                           bad), 1, err_has=("card refused",))
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
                check(name + " names contacts", "contact=bob " in got[0] and ID_B not in got[0],
                      repr(got))
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
            {"id": req["id"], "verb": "message.list", "args": {"limit": 100}}),
            repr(node.raw[-1]))
        code, out, _ = expect("messages --json", run("--home", home, "--json", "messages"), 0)
        check("messages --json passthrough", json.loads(out) == sent["message.list"], out)
        expect("messages NAME", run("--home", home, "messages", "bob"), 0, out_has=("bob",))
        req = node.requests[-1]
        check("messages NAME request bytes", node.raw[-1] == mp_encode(
            {"id": req["id"], "verb": "message.list", "args": {"name": "bob", "limit": 100}}),
            repr(node.raw[-1]))
        # Pages: a full one says how to get the one before (the default page
        # holds the newest messages).
        first_id = messages()[0]["id"]
        expect("messages --limit 3 hint", run("--home", home, "messages", "--limit", "3"), 0,
               err_has=("(3 shown; earlier: twofold messages --before %s)" % first_id,))
        check("messages --limit args", node.requests[-1]["args"] == {"limit": 3},
              repr(node.requests[-1]))
        last_id = messages()[2]["id"]
        expect("messages --after hint", run("--home", home, "messages", "--limit", "3",
                                            "--after", "ab" * 16), 0,
               err_has=("(3 shown; more: twofold messages --after %s)" % last_id,))
        check("messages --after args", node.requests[-1]["args"] == {"limit": 3,
                                                                     "after": "ab" * 16})
        code, _, err = expect("messages, a page not full", run("--home", home, "messages",
                                                               "--limit", "4"), 0)
        check("no hint under a page", "shown" not in err, err)
        code, _, err = expect("messages --json --limit 3", run("--home", home, "--json",
                                                               "messages", "--limit", "3"), 0)
        check("no hint with --json", err == "", err)
        expect("messages bad limit", run("--home", home, "messages", "--limit", "1001"), 2,
               err_has=("--limit wants a number from 1 to 1000",))

        expect("outbox", run("--home", home, "outbox"), 0,
               out_has=("TO  TYPE  ATTEMPTS  NEXT TRY  EXPIRES  LAST ERROR",
                        "bob  note  0  now  in 6 days  -\n",
                        "tf1eeeeeeeee  proposal  3  in 4 s  in 2 h  connection refused by "
                        "10.0.0.5:7451\n"))
        req = node.requests[-1]
        check("outbox request bytes", node.raw[-1] == mp_encode(
            {"id": req["id"], "verb": "outbox.list", "args": {"limit": 100}}),
            repr(node.raw[-1]))
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


ID_C = "tf1" + "c" * 58
INTRO_1 = "1a2b3c4d5e6f" + "0" * 52
INTRO_2 = "f" * 64
INTRO_NEW = "0123456789abcdef" * 4
# propose A ... --wait: the intro each A gets, whose states the fake node moves
# on at each intro.show.
INTRO_WAIT = {"walt": "a1" * 32, "dora": "d0" * 32, "sam": "5a" * 32}


def side(contact_, alias, name, state, **kw):
    s = {"contact": contact_, "alias": alias, "name": name, "state": state, "reason": None}
    s.update(kw)
    return s


def test_intros(home):
    """propose (and --wait), intros, show, withdraw, inbox, accept, decline."""
    evil = "Eve\x1b[31m\u202eevil\x07"
    sent = {}

    def intros():
        now = int(time.time())
        return [
            {"id": INTRO_1, "state": "asking", "topic": "real-estate-law", "mode": "parallel",
             "created": now - 7260, "expires": now + 13 * 86400 + 60, "updated": now - 60,
             "a": side(ID_A, "alice", "Alice", "accepted", note="hi alice\nline two",
                       about="Alice sells houses"),
             "b": side(ID_E, None, evil, "pending")},
            {"id": INTRO_2, "state": "declined", "topic": "hiring", "mode": "sequential",
             "created": now - 3 * 86400 - 60, "expires": now + 86400, "updated": now - 600,
             "a": side(ID_B, "bob", "Bob", "declined", reason="not now \x1b[31mred\nreally"),
             "b": side(ID_E, None, evil, "not_asked")}]

    def inbox():
        now = int(time.time())
        item = {"id": "3c" * 32, "connector": ID_C, "connector_alias": "carol",
                "connector_name": "Carol", "topic": "real-estate-law", "mode": "parallel",
                "about_other": "Dave, a lawyer \x1b[2J\u202e" + "y" * 80 + "\nsecond line",
                "note": "you two should talk", "state": "pending", "decided_by": None,
                "received": now - 3660, "updated": now - 3600, "expires": now + 13 * 86400,
                "other": None, "other_note": None, "late_revocation": False}
        return [item, dict(item, id="4d" * 32, connector=ID_E, connector_alias=None,
                           connector_name="Zed\x07", topic="hiring", about_other="Bob",
                           state="introduced", decided_by="owner", received=now - 2 * 86400 - 60,
                           other=ID_B)]

    polls = {}  # intro id -> how many times intro.show asked for it

    def waiting(id_):
        """The intro of propose --wait at its polls[id_]-th intro.show."""
        n = polls[id_] = polls.get(id_, 0) + 1
        a, b, state = "pending", "pending", "asking"
        if id_ == INTRO_WAIT["walt"]:
            a = "accepted" if n >= 2 else a
            b, state = ("accepted", "introduced") if n >= 3 else (b, state)
        elif id_ == INTRO_WAIT["dora"] and n >= 2:
            b, state = "declined", "declined"
        alias = [k for k, v in INTRO_WAIT.items() if v == id_][0]
        return {"id": id_, "state": state, "topic": "x", "mode": "parallel", "created": NOW,
                "expires": NOW + 86400, "updated": NOW, "a": side(ID_A, alias, "A", a),
                "b": side(ID_B, "bob", "Bob", b)}

    def handler(req):
        verb, args = req["verb"], req.get("args", {})
        if verb == "intro.propose":
            if args["a"] == "nobody":
                return refuse(req, -10070, "E_NOT_FOUND", "no contact called 'nobody'")
            if args["a"] == "carol":
                return refuse(req, -10071, "E_EXISTS",
                              "an intro of carol and dave is open already")
            if args["a"] in INTRO_WAIT:
                polls.pop(INTRO_WAIT[args["a"]], None)
                return ok(req, {"id": INTRO_WAIT[args["a"]]})
            return ok(req, {"id": INTRO_NEW})
        if verb == "intro.list":
            sent[verb] = [i for i in intros() if args.get("state", i["state"]) == i["state"]]
            return ok(req, sent[verb])
        if verb == "intro.show":
            if args["id"] in INTRO_WAIT.values():
                return ok(req, waiting(args["id"]))
            if INTRO_1.startswith(args["id"]):
                sent[verb] = intros()[0]
                return ok(req, sent[verb])
            return refuse(req, -10070, "E_NOT_FOUND", "no intro %s here" % args["id"])
        if verb == "intro.withdraw":
            if args["id"] == INTRO_2:
                return refuse(req, -10090, "E_BAD_STATE", "the intro is declined already")
            return ok(req, dict(intros()[0], state="withdrawn"))
        if verb == "inbox.list":
            sent[verb] = inbox() if args.get("all") else inbox()[:1]
            return ok(req, sent[verb])
        if verb == "inbox.show":
            found = [i for i in inbox() if i["id"].startswith(args["id"])]
            if not found:
                return refuse(req, -10070, "E_NOT_FOUND", "no intro %s here" % args["id"])
            sent[verb] = found[0]
            return ok(req, sent[verb])
        if verb == "contact.show" and args.get("name") == ID_B:
            return ok(req, {"id": ID_B, "alias": "bob", "name": "Bob"})
        if verb in ("intro.accept", "intro.decline"):
            state = "accepted" if verb == "intro.accept" else "declined"
            sent[verb] = dict(inbox()[0 if args["id"].startswith("3c") else 1], state=state)
            return ok(req, sent[verb])
        return refuse(req, -10075, "E_UNKNOWN_VERB", "unknown verb")

    def request_is(name, verb, args=None):
        req = node.requests[-1]
        want = {"id": req["id"], "verb": verb}
        if args is not None:
            want["args"] = args
        check(name + " request bytes", node.raw[-1] == mp_encode(want), repr(node.raw[-1]))

    def tw(*args, **kw):
        return run("--home", home, *args, **kw)

    node = FakeNode(home, handler)
    try:
        # propose
        expect("propose", tw("propose", "alice", "bob", "--topic", "real-estate-law"), 0)
        check("propose says what happens next", tw("propose", "alice", "bob", "--topic", "x")[1] ==
              "proposed intro 0123456789ab: alice and bob are each asked privately, and are "
              "introduced only if both accept (follow it with: twofold show 0123456789ab)\n")
        request_is("propose", "intro.propose", {"a": "alice", "b": "bob", "topic": "x"})
        expect("propose, all options",
               tw("propose", "alice", "bob", "--topic", "law", "--note-a", "to A\nhi",
                  "--note-b", "to B", "--about-a", "Alice sells", "--about-b", "Bob b\u00fcys",
                  "--sequential", "--expires", "2w"), 0,
               out_has=("proposed intro 0123456789ab: alice is asked first and bob only once "
                        "alice accepts",))
        request_is("propose, all options", "intro.propose", {
            "a": "alice", "b": "bob", "topic": "law", "note_a": "to A\nhi", "note_b": "to B",
            "about_a": "Alice sells", "about_b": "Bob b\u00fcys", "sequential": True,
            "expires_s": 14 * 86400})
        expect("propose --note", tw("propose", "tf1aaaaaa", "bob", "--note", "meet",
                                    "--topic=x"), 0)
        request_is("propose --note", "intro.propose",
                   {"a": "tf1aaaaaa", "b": "bob", "topic": "x", "note": "meet"})
        code, out, _ = expect("propose --json", tw("--json", "propose", "a", "b", "--topic",
                                                   "x"), 0)
        check("propose --json passthrough", json.loads(out) == {"id": INTRO_NEW}, out)

        n = len(node.requests)
        long_note = "\u00e9" * 1000 + "x"  # 2001 bytes
        for name, args, msg in (
                ("one contact", ["alice", "--topic", "x"], "missing A and B"),
                ("three contacts", ["a", "b", "c", "--topic", "x"], "unexpected argument 'c'"),
                ("A = B", ["bob", "bob", "--topic", "x"], "A and B are both 'bob'"),
                ("empty name", ["", "bob", "--topic", "x"], "the name is empty"),
                ("no topic", ["a", "b"], "missing --topic TOPIC"),
                ("empty topic", ["a", "b", "--topic", ""], "'' is not a topic"),
                ("bad topic", ["a", "b", "--topic", "Real Estate"], "'Real Estate' is not a topic"),
                ("topic ending in -", ["a", "b", "--topic", "law-"], "is not a topic"),
                ("--note and --note-a", ["a", "b", "--topic", "x", "--note", "n", "--note-a",
                                         "m"], "give --note (to both), or --note-a and --note-b"),
                ("--note and --note-b", ["a", "b", "--topic", "x", "--note-b", "m", "--note",
                                         "n"], "not both"),
                ("blank note", ["a", "b", "--topic", "x", "--note", " \n"], "--note is empty"),
                ("long --about-b", ["a", "b", "--topic", "x", "--about-b", long_note],
                 "--about-b is longer than 2000 bytes"),
                ("unknown option", ["a", "b", "--topic", "x", "--notes", "n"],
                 "unknown option '--notes'")):
            expect("propose refused locally: " + name, tw("propose", *args), 2, err_has=(msg,))
        expect("propose, note of 2000 bytes", tw("propose", "a", "b", "--topic", "x",
                                                 "--note", long_note[:-1]), 0)
        check("propose refusals not sent", len(node.requests) == n + 1)
        expect("propose, unknown contact", tw("propose", "nobody", "bob", "--topic", "x"), 1,
               err_has=("twofold propose: no contact called 'nobody'\n",))
        code, out, _ = expect("propose, open already",
                              tw("--json", "propose", "carol", "dave", "--topic", "x"), 1,
                              err_has=("an intro of carol and dave is open already",))
        check("propose --json refusal", json.loads(out)["error"]["name"] == "E_EXISTS", out)

        for arg, secs in (("1s", 1), ("3600s", 3600), ("90m", 5400), ("12h", 43200),
                          ("14d", 14 * 86400), ("2w", 14 * 86400), ("365d", 365 * 86400),
                          ("52w", 52 * 7 * 86400), ("31536000s", 365 * 86400)):
            code, _, err = tw("propose", "a", "b", "--topic", "x", "--expires", arg)
            check("--expires %s" % arg, code == 0 and
                  node.requests[-1]["args"].get("expires_s") == secs,
                  "rc=%d %r %r" % (code, err, node.requests[-1]))
        n = len(node.requests)
        for arg, msg in (("0d", "more than 0"), ("0s", "more than 0"), ("366d", "at most 365"),
                         ("53w", "at most 365"), ("31536001s", "at most 365"),
                         ("99999999999999999999w", "wants a duration"),
                         ("18446744073709551615w", "at most 365"), ("14", "wants a duration"),
                         ("d", "wants a duration"), ("1x", "wants a duration"),
                         ("-1d", "wants a duration"), (" 1d", "wants a duration"),
                         ("+1d", "wants a duration"), ("1.5d", "wants a duration"),
                         ("14dd", "wants a duration"), ("1D", "wants a duration"),
                         ("", "wants a duration")):
            expect("--expires %r refused" % arg,
                   tw("propose", "a", "b", "--topic", "x", "--expires", arg), 2, err_has=(msg,))
        check("bad --expires not sent", len(node.requests) == n)

        # intros
        code, out, _ = expect("intros", tw("intros"), 0, out_has=(
            "ID  STATE  TOPIC  A  B  CREATED\n",
            "1a2b3c4d5e6f  asking  real-estate-law  alice (accepted)  "
            "\"Eve?[31m?evil?\" tf1eeeeeeeee (pending)  2 h ago\n",
            "ffffffffffff  declined  hiring  bob (declined)  "
            "\"Eve?[31m?evil?\" tf1eeeeeeeee (not_asked)  3 days ago\n"), out_lacks=("\x1b",))
        lines = out.splitlines()
        check("intros table aligned", len(lines) == 3 and
              lines[0].index("CREATED") == lines[1].index("2 h") == lines[2].index("3 days"), out)
        request_is("intros", "intro.list")
        code, out, _ = expect("intros --json", tw("intros", "--json"), 0)
        check("intros --json passthrough", json.loads(out) == sent["intro.list"], out)
        check("intros --json keys", all(
            {"id", "state", "topic", "mode", "a", "b"} <= set(i) and
            {"contact", "state"} <= set(i["a"]) and {"contact", "state"} <= set(i["b"])
            for i in json.loads(out)), out)
        expect("intros --state", tw("intros", "--state", "declined"), 0,
               out_has=("ffffffffffff",), out_lacks=("1a2b3c4d5e6f",))
        request_is("intros --state", "intro.list", {"state": "declined"})
        expect("intros, none", tw("intros", "--state", "expired"), 0,
               out_has=("no intros are expired\n",), out_lacks=("ID",))
        expect("intros, bad state", tw("intros", "--state", "open"), 2,
               err_has=("state 'open' is not asking, introduced",))

        # show
        code, out, _ = expect("show", tw("show", "1A2B3C4D"), 0, out_has=(
            "id " + INTRO_1 + "\n", "state asking\n", "topic real-estate-law\n",
            "mode parallel\n", "created 2 h ago\n", "expires in 13 days\n",
            "a alice (\"Alice\" %s)\n" % ID_A[:12], "a state accepted\n",
            "note to a hi alice\n line two\n", "about a Alice sells houses\n",
            "b \"Eve?[31m?evil?\" %s (stranger)\n" % ID_E[:12], "b state pending\n"),
            out_lacks=("\x1b", "\u202e", "a reason", "b reason", "note to b"))
        check("show continues a note under its value", "\n" + " " * 15 + "line two\n" in out, out)
        request_is("show", "intro.show", {"id": "1a2b3c4d"})
        code, out, _ = expect("show --json", tw("show", INTRO_1, "--json"), 0)
        check("show --json passthrough", json.loads(out) == sent["intro.show"], out)
        request_is("show, full id", "intro.show", {"id": INTRO_1})
        expect("show, unknown", tw("show", "99999999"), 1,
               err_has=("twofold show: no intro 99999999 here",))
        check("show, unknown asks both sides", [r["verb"] for r in node.requests[-2:]] ==
              ["intro.show", "inbox.show"], repr(node.requests[-2:]))
        code, out, _ = expect("show, unknown --json", tw("--json", "show", "99999999"), 1)
        check("show, unknown --json: one error object",
              json.loads(out)["error"]["name"] == "E_NOT_FOUND", out)
        # An intro proposed to you: the party's view.
        code, out, _ = expect("show, received", tw("show", "4d4d4d4d"), 0, out_has=(
            "id " + "4d" * 32 + "\n", "proposed by \"Zed?\" tf1eeeeeeeee (stranger)\n", "topic hiring\n",
            "state introduced\n", "decided by owner\n", "note to you you two should talk\n",
            "about them Bob\n", "introduced to bob\n", "expires in 13 days\n",
            "the other side's answer stays private"), out_lacks=("\x07",))
        request_is("show, received", "inbox.show", {"id": "4d4d4d4d"})
        code, out, _ = expect("show, received --json", tw("--json", "show", "4d4d4d4d"), 0)
        check("show, received --json passthrough", json.loads(out) == sent["inbox.show"], out)
        n = len(node.requests)
        for name, arg in (("7 digits", "1a2b3c4"), ("65 digits", INTRO_1 + "0"),
                          ("not hex", "1a2b3c4g"), ("empty", ""), ("an alias", "alice")):
            expect("show refused locally: " + name, tw("show", arg), 2,
                   err_has=("is not an intro: give its id (64 hex digits) or its first 8",))
        expect("show without INTRO", tw("show"), 2, err_has=("missing INTRO",))
        expect("show, two", tw("show", INTRO_1, INTRO_2), 2, err_has=("unexpected argument",))
        expect("show --note", tw("show", INTRO_1, "--note", "x"), 2,
               err_has=("unknown option '--note'",))
        check("show refusals not sent", len(node.requests) == n)

        # withdraw
        expect("withdraw", tw("withdraw", INTRO_1), 0, out_has=(
            "withdrew intro 1a2b3c4d5e6f between alice and \"Eve?[31m?evil?\" tf1eeeeeeeee "
            "(stranger) on real-estate-law\n",))
        request_is("withdraw", "intro.withdraw", {"id": INTRO_1})
        code, out, _ = expect("withdraw --json", tw("withdraw", INTRO_1, "--json"), 0)
        check("withdraw --json passthrough", json.loads(out)["state"] == "withdrawn", out)
        expect("withdraw, closed", tw("withdraw", INTRO_2), 1,
               err_has=("twofold withdraw: the intro is declined already",))

        # the declined intro's private reason, shown to the connector only
        sent_intros = intros()

        def show_declined(req):
            return ok(req, sent_intros[1]) if req["verb"] == "intro.show" else handler(req)
        node.handler = show_declined
        expect("show, declined", tw("show", INTRO_2), 0, out_has=(
            "state declined\n", "mode sequential\n", "a state declined\n",
            "a reason not now ?[31mred\n really\n", "b state not_asked\n"),
            out_lacks=("\x1b",))
        node.handler = handler

        # inbox
        code, out, _ = expect("inbox", tw("inbox"), 0, out_has=(
            "ID  FROM  TOPIC  STATE  DECIDED BY  NOTE  ABOUT  RECEIVED\n",
            "3c3c3c3c3c3c  carol  real-estate-law  pending  -  you two should talk  "
            "Dave, a lawyer ?[2J?yyy"),
            out_lacks=("\x1b", "\u202e", "second line", "Zed", "ff"))
        lines = out.splitlines()
        check("inbox ABOUT cut to 30 columns", len(lines) == 2 and "y... 1 h ago" in
              re.sub(" +", " ", lines[1]) and
              len(lines[1][lines[0].index("ABOUT"):lines[0].index("RECEIVED")].rstrip()) == 30,
              out)
        request_is("inbox", "inbox.list", {"open": True})
        code, out, _ = expect("inbox --all", tw("inbox", "--all"), 0, out_has=(
            "4d4d4d4d4d4d  \"Zed?\" tf1eeeeeeeee (stranger)  hiring  introduced  owner  "
            "you two should talk  Bob  "
            "2 days ago\n",))
        request_is("inbox --all", "inbox.list", {"all": True})
        code, out, _ = expect("inbox --all --json", tw("--json", "inbox", "--all"), 0)
        check("inbox --json passthrough", json.loads(out) == sent["inbox.list"], out)
        check("inbox --json keys", all({"id", "connector", "topic", "about_other", "note",
                                        "state", "decided_by"} <= set(i)
                                       for i in json.loads(out)), out)
        expect("inbox argument", tw("inbox", "x"), 2, err_has=("unexpected argument 'x'",))
        expect("inbox --all=1", tw("inbox", "--all=1"), 2, err_has=("takes no value",))

        # accept, decline
        expect("accept", tw("accept", "3C3C3C3C3C3C"), 0,
               out_has=("accepted intro 3c3c3c3c3c3c from carol on real-estate-law\n",))
        request_is("accept", "intro.accept", {"id": "3c3c3c3c3c3c"})
        expect("accept --note", tw("accept", "3c" * 32, "--note", "hello\nDave"), 0)
        request_is("accept --note", "intro.accept", {"id": "3c" * 32, "note": "hello\nDave"})
        code, out, _ = expect("accept --json", tw("--json", "accept", "3c3c3c3c"), 0)
        check("accept --json passthrough", json.loads(out) == sent["intro.accept"], out)
        expect("decline", tw("decline", "4d4d4d4d", "--reason", "busy"), 0,
               out_has=("declined intro 4d4d4d4d4d4d from \"Zed?\" tf1eeeeeeeee (stranger) on "
                        "hiring\n",))
        request_is("decline", "intro.decline", {"id": "4d4d4d4d", "reason": "busy"})
        expect("decline, no reason", tw("decline", "3c3c3c3c"), 0)
        request_is("decline, no reason", "intro.decline", {"id": "3c3c3c3c"})
        n = len(node.requests)
        expect("decline, reason of 501 bytes", tw("decline", "3c3c3c3c", "--reason", "r" * 501),
               2, err_has=("--reason is longer than 500 bytes",))
        expect("accept, note of 2001 bytes", tw("accept", "3c3c3c3c", "--note", long_note), 2,
               err_has=("--note is longer than 2000 bytes",))
        expect("accept, empty note", tw("accept", "3c3c3c3c", "--note", ""), 2,
               err_has=("--note is empty",))
        expect("accept --reason", tw("accept", "3c3c3c3c", "--reason", "x"), 2,
               err_has=("unknown option '--reason'",))
        expect("decline --note", tw("decline", "3c3c3c3c", "--note", "x"), 2,
               err_has=("unknown option '--note'",))
        expect("accept, bad id", tw("accept", "carol"), 2, err_has=("'carol' is not an intro",))
        check("refused answers not sent", len(node.requests) == n)

        # propose --wait
        start = time.time()
        expect("propose --wait, introduced", tw("propose", "walt", "bob", "--topic", "x",
                                                "--wait"), 0)
        took = time.time() - start
        code, out, err = tw("propose", "walt", "bob", "--topic", "x", "--wait")
        check("propose --wait prints each change", code == 0 and out == (
            "proposed intro a1a1a1a1a1a1: walt and bob are each asked privately, and are "
            "introduced only if both accept (follow it with: twofold show a1a1a1a1a1a1)\n"
            "walt: pending\nbob: pending\nintro: asking\n"
            "walt: pending \u2192 accepted\n"
            "bob: pending \u2192 accepted\nintro: asking \u2192 introduced\n"), repr((out, err)))
        shows = [r for r in node.requests[-4:] if r["verb"] == "intro.show"]
        check("propose --wait asks intro.show", len(shows) == 3 and all(
            r["args"] == {"id": INTRO_WAIT["walt"]} for r in shows), repr(node.requests[-4:]))
        check("propose --wait asks every 0.5 s", 0.9 < took < 5, "took %.2f s" % took)
        code, out, err = tw("propose", "dora", "bob", "--topic", "x", "--wait")
        check("propose --wait, declined", code == 1 and out.endswith(
            "bob: pending \u2192 declined\nintro: asking \u2192 declined\n") and
            "twofold propose: the intro is declined" in err, repr((code, out, err)))
        code, out, err = tw("--json", "propose", "walt", "bob", "--topic", "x", "--wait")
        docs = [json.loads(x) for x in out.splitlines()]
        check("propose --wait --json", code == 0 and len(docs) == 4 and
              docs[0] == {"id": INTRO_WAIT["walt"]} and
              [d["state"] for d in docs[1:]] == ["asking", "asking", "introduced"] and
              docs[2]["a"]["state"] == "accepted", repr((out, err)))

        p = subprocess.Popen([TWOFOLD, "--home", home, "propose", "sam", "bob", "--topic", "x",
                              "--wait"], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        got = [p.stdout.readline().decode() for _ in range(4)]
        time.sleep(0.7)
        p.send_signal(signal.SIGINT)
        rc = p.wait(timeout=10)
        rest, err = p.communicate()
        check("propose --wait, Ctrl-C", rc == 0 and got[1:] == [
            "sam: pending\n", "bob: pending\n", "intro: asking\n"] and rest == b"" and
            err.decode() == "stopped waiting; the intro goes on\n", repr((rc, got, rest, err)))
        check("propose --wait polled on", polls[INTRO_WAIT["sam"]] >= 2, repr(polls))
    finally:
        node.close()

    node = FakeNode(home, lambda req: ok(req, {"a": 1}))
    try:
        for verb in (["intros"], ["inbox"]):
            expect(verb[0] + ", not a list", tw(*verb), 3, err_has=("malformed",))
        expect("propose, no id", tw("propose", "a", "b", "--topic", "x"), 3,
               err_has=("malformed intro id",))
    finally:
        node.close()


def test_policy(tmp, home):
    """policy check (offline), policy reload/show/test and contact block/unblock."""
    tw = lambda *a, **kw: run("--home", home, *a, **kw)
    expect("--help lists the policy verbs", run("--help"), 0,
           out_has=("policy check ", "policy reload ", "policy show ", "policy test ",
                    "contact block ", "contact unblock "))
    expect("contact --help lists block", run("contact", "--help"), 0,
           out_has=("contact block ", "contact unblock "))
    expect("policy --help", run("policy", "--help"), 0,
           out_has=("policy check ", "policy test "))
    expect("policy test --help", run("policy", "test", "--help"), 0,
           out_has=("usage: twofold policy test --connector NAME|ID|unknown --topic TOPIC",
                    "--mode MODE"))
    expect("policy check --help", run("policy", "check", "-h"), 0,
           out_has=("usage: twofold policy check [FILE]",))

    # policy check: offline, against the real parser.
    good = os.path.join(tmp, "good.policy")
    with open(good, "w") as f:
        f.write("# strangers: no\ndecline when connector is unknown\n\n"
                "accept  when connector trust >= known and topic in offers limit 5 per 7d\n"
                "ask\n")
    expect("policy check good", run("policy", "check", good), 0,
           out_has=("%s: 3 rules, OK\n" % good,))
    code, out, _ = expect("policy check good --json", run("--json", "policy", "check", good), 0)
    check("policy check --json", json.loads(out) == {"file": good, "loaded": True, "rules": 3},
          out)
    one = os.path.join(tmp, "one.policy")
    with open(one, "w") as f:
        f.write("ask\n")
    expect("policy check one rule", run("policy", "check", one), 0,
           out_has=("%s: 1 rule, OK\n" % one,))
    bad = os.path.join(tmp, "bad.policy")
    with open(bad, "w") as f:
        f.write("decline when connector is unknown\n# fine\n"
                "accept when connector trust >= known and topic in offerz\n")
    code, out, err = run("policy", "check", bad)
    check("policy check bad", code == 1 and out == "" and err == (
        "%s:3:51: expected 'offers' or 'seeks' after 'topic in', found 'offerz'\n" % bad),
        repr((code, out, err)))
    with open(bad, "w") as f:
        f.write("Accept\n")
    code, out, err = run("policy", "check", bad)
    check("policy check bad keyword", code == 1 and
          err == "%s:1:1: keywords are lowercase, found 'Accept'\n" % bad, repr((code, out, err)))
    with open(bad, "w") as f:
        f.write("ask when\n")
    code, out, err = run("--json", "policy", "check", bad)
    msg = "%s:1:9: expected a condition (connector, topic, mode, answers, requester or a contact), found end of line" % bad
    check("policy check bad --json", code == 1 and err == msg + "\n" and json.loads(out) == {
        "error": {"code": -10020, "name": "E_BAD_VALUE", "message": msg, "line": 1,
                  "column": 9}}, repr((code, out, err)))
    with open(bad, "w") as f:
        f.write("ask # caf\u00e9 ok\nask when topic is \x1b[31m\n")
    code, out, err = run("policy", "check", bad)
    check("policy check bad text is cleaned", code == 1 and err.startswith(bad + ":2:")
          and "\x1b" not in err, repr((code, out, err)))
    big = os.path.join(tmp, "big.policy")
    with open(big, "w") as f:
        f.write("#" * (1 << 20) + "\n")
    expect("policy check over 1 MiB", run("policy", "check", big), 1,
           err_has=("twofold policy check: %s is larger than 1 MiB" % big,))
    with open(big, "w") as f:
        rest = (1 << 20) - 4
        f.write("ask\n" + ("#" * 99 + "\n") * (rest // 100) + "#" * (rest % 100 - 1) + "\n")
    check("policy file of exactly 1 MiB", os.path.getsize(big) == 1 << 20)
    expect("policy check at 1 MiB", run("policy", "check", big), 0, out_has=("1 rule, OK",))
    os.unlink(big)
    expect("policy check endless input", run("policy", "check", "/dev/zero"), 1,
           err_has=("/dev/zero is larger than 1 MiB",))
    expect("policy check missing file", run("policy", "check", os.path.join(tmp, "nope")), 1,
           err_has=("cannot open %s: No such file" % os.path.join(tmp, "nope"),))
    expect("policy check directory", run("policy", "check", tmp), 1,
           err_has=("it is a directory",))
    expect("policy check two files", run("policy", "check", good, bad), 2,
           err_has=("unexpected argument",))
    pol = os.path.join(home, "policy")
    check("no default policy yet", not os.path.exists(pol))
    code, out, err = tw("policy", "check")
    check("policy check, no default file", code == 0 and out ==
          "no policy file at %s: every proposal is put to you (ask)\n" % pol and err == "",
          repr((code, out, err)))
    code, out, _ = tw("--json", "policy", "check")
    check("policy check, no default file --json", code == 0 and json.loads(out) == {
        "file": pol, "loaded": False, "rules": 0}, out)
    shutil.copy(good, pol)
    expect("policy check, default file", tw("policy", "check"), 0,
           out_has=("%s: 3 rules, OK" % pol,))
    with open(pol, "w") as f:
        f.write("ask\ndecline when mode is both\n")
    code, out, err = tw("policy", "check")
    check("policy check, default file bad", code == 1 and
          err.startswith(pol + ":2:22: ") and "'both'" in err, repr((code, out, err)))
    os.unlink(pol)

    # The node verbs, against the fake node.
    state = {"loaded": True, "reload_fails": False}

    def handler(req):
        verb, args = req["verb"], req.get("args", {})
        if verb == "policy.reload":
            if state["reload_fails"]:
                return refuse(req, -10020, "E_BAD_VALUE",
                              pol + ":3:23: conditions go before 'limit', found 'when'")
            return ok(req, {"file": pol, "rules": 3})
        if verb == "policy.show":
            if not state["loaded"]:
                return ok(req, {"file": pol, "loaded": False, "rules": []})
            return ok(req, {"file": pol, "loaded": True, "rules": [
                {"line": 2, "text": "decline when connector is unknown"},
                {"line": 4, "text": "accept when connector trust >= known and topic in offers "
                                    "limit 5 per 7d"},
                {"line": 5, "text": "ask \x1b[2J"}]})
        if verb == "policy.test":
            if args["connector"] == "nobody":
                return refuse(req, -10070, "E_NOT_FOUND", "no contact called 'nobody'")
            if args["topic"] == "law":
                return ok(req, {"action": "accept", "rule": "policy:2", "line": 2,
                                "file": pol})
            return ok(req, {"action": "ask", "rule": None, "line": None, "file": pol})
        if verb == "contact.set":
            if args["name"] == "nobody":
                return refuse(req, -10070, "E_NOT_FOUND", "no contact called 'nobody'")
            alias = None if args["name"] == "tf1bbbbbb" else "bob"
            return ok(req, contact(ID_B, alias, "Bob \x1b[1mSmith", blocked=args["blocked"]))
        return refuse(req, -10075, "E_UNKNOWN_VERB", "unknown verb")

    node = FakeNode(home, handler)
    try:
        expect("policy reload", tw("policy", "reload"), 0,
               out_has=("policy reloaded: 3 rules from %s\n" % pol,))
        req = node.requests[-1]
        check("policy reload request bytes", node.raw[-1] == mp_encode(
            {"id": req["id"], "verb": "policy.reload"}), repr(node.raw[-1]))
        code, out, _ = expect("policy reload --json", tw("--json", "policy", "reload"), 0)
        check("policy reload --json", json.loads(out) == {"file": pol, "rules": 3}, out)
        state["reload_fails"] = True
        code, out, err = tw("policy", "reload")
        check("policy reload refused", code == 1 and out == "" and err ==
              "twofold policy reload: %s:3:23: conditions go before 'limit', found 'when'\n"
              % pol, repr((code, out, err)))
        code, out, _ = tw("--json", "policy", "reload")
        check("policy reload refused --json", code == 1 and
              json.loads(out)["error"]["name"] == "E_BAD_VALUE", out)
        expect("policy reload argument", tw("policy", "reload", "x"), 2,
               err_has=("unexpected argument 'x'",))

        code, out, err = tw("policy", "show")
        check("policy show", code == 0 and out ==
              "2: decline when connector is unknown\n"
              "4: accept when connector trust >= known and topic in offers limit 5 per 7d\n"
              "5: ask ?[2J\n", repr((code, out, err)))
        req = node.requests[-1]
        check("policy show request bytes", node.raw[-1] == mp_encode(
            {"id": req["id"], "verb": "policy.show"}), repr(node.raw[-1]))
        code, out, _ = expect("policy show --json", tw("policy", "show", "--json"), 0)
        j = json.loads(out)
        check("policy show --json", j["loaded"] is True and j["rules"][1]["line"] == 4
              and j["rules"][2]["text"] == "ask \x1b[2J", out)
        state["loaded"] = False
        code, out, err = tw("policy", "show")
        check("policy show, no file", code == 0 and
              out == "no policy file: every proposal is put to you\n", repr((code, out, err)))

        expect("policy test accept", tw("policy", "test", "--connector", "bob", "--topic", "law",
                                        "--mode", "sequential"), 0,
               out_has=("accept (policy:2)\n",))
        req = node.requests[-1]
        check("policy test request bytes", node.raw[-1] == mp_encode(
            {"id": req["id"], "verb": "policy.test",
             "args": {"connector": "bob", "topic": "law", "mode": "sequential"}}),
            repr(node.raw[-1]))
        code, out, err = tw("policy", "test", "--connector", "unknown", "--topic", "tax")
        check("policy test default", code == 0 and
              out == "ask (no rule matched: the default)\n", repr((code, out, err)))
        check("policy test request without mode", node.requests[-1]["args"] == {
            "connector": "unknown", "topic": "tax"}, repr(node.requests[-1]))
        code, out, _ = expect("policy test --json", tw("policy", "test", "--json", "--connector",
                                                       "bob", "--topic", "law"), 0)
        check("policy test --json", json.loads(out) == {"action": "accept", "rule": "policy:2",
                                                        "line": 2, "file": pol}, out)
        expect("policy test refused", tw("policy", "test", "--connector", "nobody", "--topic",
                                         "law"), 1,
               err_has=("twofold policy test: no contact called 'nobody'",))
        n = len(node.requests)
        for name, argv, msg in (
                ("no connector", ["--topic", "law"], "missing --connector"),
                ("no topic", ["--connector", "bob"], "missing --topic"),
                ("bad topic", ["--connector", "bob", "--topic", "Law"], "not a topic"),
                ("bad mode", ["--connector", "bob", "--topic", "law", "--mode", "both"],
                 "mode 'both' is not parallel or sequential"),
                ("empty connector", ["--connector", "", "--topic", "law"], "the name is empty"),
                ("argument", ["--connector", "bob", "--topic", "law", "x"],
                 "unexpected argument 'x'")):
            expect("policy test " + name, tw("policy", "test", *argv), 2, err_has=(msg,))
        check("policy test usage errors not sent", len(node.requests) == n)

        code, out, err = tw("contact", "block", "bob")
        check("contact block", code == 0 and
              out == "blocked bob: their proposals are now dropped\n", repr((code, out, err)))
        req = node.requests[-1]
        check("contact block request bytes", node.raw[-1] == mp_encode(
            {"id": req["id"], "verb": "contact.set", "args": {"name": "bob", "blocked": True}}),
            repr(node.raw[-1]))
        code, out, err = tw("contact", "unblock", "tf1bbbbbb")
        check("contact unblock (no alias: their name)", code == 0 and
              out == "unblocked Bob ?[1mSmith\n", repr((code, out, err)))
        req = node.requests[-1]
        check("contact unblock request bytes", node.raw[-1] == mp_encode(
            {"id": req["id"], "verb": "contact.set",
             "args": {"name": "tf1bbbbbb", "blocked": False}}), repr(node.raw[-1]))
        code, out, _ = expect("contact block --json", tw("--json", "contact", "block", "bob"), 0)
        check("contact block --json", json.loads(out)["blocked"] is True, out)
        expect("contact block refused", tw("contact", "block", "nobody"), 1,
               err_has=("twofold contact block: no contact called 'nobody'",))
        expect("contact block no name", tw("contact", "block"), 2, err_has=("missing NAME|ID",))
        expect("contact unblock two names", tw("contact", "unblock", "a", "b"), 2,
               err_has=("unexpected argument 'b'",))
        expect("contact block empty name", tw("contact", "block", ""), 2,
               err_has=("the name is empty",))
    finally:
        node.close()

    node = FakeNode(home, lambda req: ok(req, {"a": 1}))
    try:
        for verb in (["policy", "reload"], ["policy", "show"],
                     ["policy", "test", "--connector", "bob", "--topic", "law"]):
            expect(" ".join(verb[:2]) + ", malformed reply", tw(*verb), 3,
                   err_has=("malformed",))
    finally:
        node.close()
    expect("policy reload, node not running", tw("policy", "reload"), 3,
           err_has=("twofoldd is not running",))


def test_profile(home):
    tw = lambda *a, **kw: run("--home", home, *a, **kw)
    expect("--help lists profile", run("--help"), 0, out_has=("profile ", "profile set "))
    expect("profile --help", run("profile", "--help"), 0, out_has=("usage: twofold profile",))
    expect("profile set --help", run("profile", "set", "-h"), 0,
           out_has=("usage: twofold profile set [--name NAME]", "--offers TAG,...", "--listen"))
    prof = {"id": ID_B, "name": "Bob \x1b[1mB", "addrs": ["bob.example:7451"],
            "offers": ["law", "tax"], "seeks": [], "seq": 3, "issued": NOW - 7200,
            "listen": "0.0.0.0:7451", "card": "tfcard1:xyz"}

    def handler(req):
        if req["verb"] == "profile.show":
            return ok(req, prof)
        if req["verb"] == "profile.set":
            if req["args"].get("name") == "Nobody":
                return refuse(req, 9, "E_BAD_VALUE", "name refused")
            return ok(req, dict(prof, seq=4, **{k: v for k, v in req["args"].items()
                                               if k in ("name", "offers", "seeks")}))
        return refuse(req, 1, "E_UNKNOWN_VERB", "no")

    node = FakeNode(home, handler)
    try:
        code, out, err = expect("profile", tw("profile"), 0,
                                out_has=("id " + ID_B, "name Bob ?[1mB",
                                         "addresses bob.example:7451", "offers law, tax",
                                         "card number 3", "issued 2 h ago",
                                         "listen 0.0.0.0:7451", "card tfcard1:xyz"))
        req = node.requests[-1]
        check("profile request bytes", node.raw[-1] == mp_encode(
            {"id": req["id"], "verb": "profile.show"}), repr(node.raw[-1]))
        code, out, _ = expect("profile --json", tw("profile", "--json"), 0)
        check("profile --json passthrough", json.loads(out) == prof, out)
        expect("profile argument", tw("profile", "x"), 2, err_has=("unexpected argument 'x'",))

        code, out, err = expect("profile set", tw("profile", "set", "--name", "Robert",
                                                  "--offers", "law,tax-2", "--seeks", "",
                                                  "--advertise", "a.example:1,[::1]:7451",
                                                  "--listen", "0.0.0.0:7452"), 0,
                                out_has=("card re-issued as number 4 and sent to your contacts\n",
                                         "name Robert", "offers law, tax-2",
                                         "takes effect when twofoldd restarts"))
        req = node.requests[-1]
        check("profile set request bytes", node.raw[-1] == mp_encode(
            {"id": req["id"], "verb": "profile.set",
             "args": {"name": "Robert", "offers": ["law", "tax-2"], "seeks": [],
                      "advertise": ["a.example:1", "[::1]:7451"], "listen": "0.0.0.0:7452"}}),
            repr(node.raw[-1]))
        code, out, err = expect("profile set only seeks", tw("profile", "set", "--seeks", "x"), 0,
                                out_lacks=("restarts",))
        req = node.requests[-1]
        check("profile set only seeks bytes", node.raw[-1] == mp_encode(
            {"id": req["id"], "verb": "profile.set", "args": {"seeks": ["x"]}}),
            repr(node.raw[-1]))
        code, out, _ = expect("profile set --json", tw("--json", "profile", "set", "--offers",
                                                       ""), 0, out_lacks=("re-issued",))
        check("profile set --json", json.loads(out)["offers"] == [] and
              json.loads(out)["seq"] == 4, out)
        expect("profile set refused", tw("profile", "set", "--name", "Nobody"), 1,
               err_has=("name refused",))
        n = len(node.requests)
        for name, argv, msg in (
                ("nothing", [], "nothing to change"),
                ("bad tag", ["--offers", "law,Tax"], "'Tax' is not a tag"),
                ("empty tag", ["--seeks", "a,,b"], "'' is not a tag"),
                ("bad address", ["--advertise", "nope"], "'nope' is not an address"),
                ("bad port", ["--advertise", "a.example:0"], "is not an address"),
                ("bad listen", ["--listen", "x"], "--listen 'x' is not an address"),
                ("empty name", ["--name", ""], "1 to 64 bytes"),
                ("long name", ["--name", "x" * 65], "1 to 64 bytes"),
                ("control name", ["--name", "a\x1bb"], "1 to 64 bytes"),
                ("too many tags", ["--offers", ",".join("t%d" % i for i in range(17))],
                 "at most 16"),
                ("argument", ["--name", "A", "x"], "unexpected argument 'x'")):
            expect("profile set " + name, tw("profile", "set", *argv), 2, err_has=(msg,))
        check("profile set usage errors not sent", len(node.requests) == n)
    finally:
        node.close()
    expect("profile, node not running", tw("profile"), 3, err_has=("twofoldd is not running",))


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
        test_intros(home)
        test_policy(tmp, home)
        test_profile(home)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    print("%d passed, %d failed" % (RESULTS["passed"], RESULTS["failed"]))
    sys.exit(1 if RESULTS["failed"] else 0)


if __name__ == "__main__":
    main()
