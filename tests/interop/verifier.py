#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""An independent second implementation of the twofold v1 wire format.

Written from docs/PROTOCOL.md (sections 1-8) alone, without reading the C
sources, to keep the specification honest.  Every decision the spec leaves
open is marked "SPEC GAP" below, with the reading this file takes.

    verifier.py check FILE.json [--doc PROTOCOL.md]
        Verify every identity and every "valid"/"invalid" case in FILE.json
        with this implementation; print one line per mismatch and finally
        "N passed, M failed".  Exit 0 only if M == 0 and N > 0.
        With --doc, also check the worked examples in PROTOCOL.md.

    verifier.py emit FILE.json [--seeds twofold-v1.json]
        Build and sign fresh objects in Python (same identities, new data)
        and write them as a vectors file for the C check_vectors program.

    verifier.py probe FILE.json [--seeds twofold-v1.json]
        Write cases where the spec is ambiguous, each labelled with the
        answer this implementation chose; run the C checker on the file to
        see where the two implementations read the spec differently.

Needs python3-nacl and python3-msgpack (msgpack is used only to encode; all
decoding goes through the strict Reader below).
"""

import io
import json
import os
import sys

import msgpack
import nacl.bindings as sodium
from nacl.exceptions import BadSignatureError, CryptoError

HERE = os.path.dirname(os.path.abspath(__file__))
DEFAULT_VECTORS = os.path.join(HERE, "..", "vectors", "twofold-v1.json")

# --------------------------------------------------------------------------
# Section 1: notation and primitives

TAG_CARD = "twofold/v1/card"
TAG_PROPOSAL = "twofold/v1/proposal"
TAG_REPLY = "twofold/v1/reply"
TAG_INTRODUCTION = "twofold/v1/introduction"
TAG_CLOSE = "twofold/v1/close"
TAG_ENVELOPE = "twofold/v1/envelope"
TAG_INTRO_ID = "twofold/v1/intro"
TAG_COMMIT = "twofold/v1/commit"
TAG_FINGERPRINT = "twofold/v1/fingerprint"
TAG_REQUEST = "twofold/v1/request"
TAG_REQUEST_CLOSE = "twofold/v1/request-close"
TAG_REQUEST_ID = "twofold/v1/request-id"
REQUEST_EXPIRES_MAX = 90 * 86400

KEY_LEN = 32
SIG_LEN = 64
SEAL_OVERHEAD = 48
DEFAULT_SKEW = 300


class ProtoError(Exception):
    """A verification failure; .code is the section 3 error name."""

    def __init__(self, code, detail=""):
        super().__init__(code + (": " + detail if detail else ""))
        self.code = code


def fail(code, detail=""):
    raise ProtoError(code, detail)


class Obj:
    """A decoded object: its fields as attributes."""

    def __init__(self, **kw):
        self.__dict__.update(kw)


def tagged(tag, m):
    """tag ‖ 0x00 ‖ m"""
    return tag.encode("ascii") + b"\x00" + m


def H(tag, m):
    """BLAKE2b-256, no key, over tag ‖ 0x00 ‖ m."""
    return sodium.crypto_generichash_blake2b_salt_personal(tagged(tag, m), digest_size=32)


def sign(sign_sk, tag, m):
    return sodium.crypto_sign(tagged(tag, m), sign_sk)[:SIG_LEN]


def sig_ok(pk, tag, m, sig):
    try:
        sodium.crypto_sign_open(sig + tagged(tag, m), pk)
        return True
    except (BadSignatureError, CryptoError, ValueError, TypeError):
        return False


def u64be(n):
    return n.to_bytes(8, "big")


def u16be(n):
    return n.to_bytes(2, "big")


# --------------------------------------------------------------------------
# Section 2: canonical msgpack, strict bounded reader

def check_text(raw, multiline):
    """UTF-8 (E_BAD_UTF8), then control characters (E_BAD_TEXT).

    SPEC GAP: section 2 does not say whether UTF-8 validity is checked before
    the control-character rule when a string breaks both; we check UTF-8
    over the whole string first.
    """
    try:
        text = raw.decode("utf-8", "strict")  # rejects overlongs, surrogates, > U+10FFFF
    except UnicodeDecodeError:
        fail("E_BAD_UTF8")
    for byte in raw:
        if byte == 0x7F or (byte < 0x20 and not (multiline and byte in (0x09, 0x0A))):
            fail("E_BAD_TEXT", "control byte 0x%02x" % byte)
    return text


class Reader:
    """A strict, bounded msgpack reader over one buffer.

    Generic rules applied to every value: the type byte must be there
    (E_TRUNCATED) and of the wanted type (E_TYPE); the header must be the
    shortest (E_NONCANONICAL); a declared length or count must fit in the
    bytes left (E_TRUNCATED).  Field-specific bounds (E_TOO_LONG,
    E_BAD_LENGTH, E_COUNT) are checked after that.

    SPEC GAP: section 2 does not order "declared length passes the end"
    (E_TRUNCATED) against "length above the field's maximum" (E_TOO_LONG) or
    "wrong element count" (E_COUNT).  We check against the bytes left first,
    because section 2 says a length is checked against the bytes left
    "before using it".
    """

    _STR = (0xA0, 0xBF, {0xD9: (1, 32), 0xDA: (2, 1 << 8), 0xDB: (4, 1 << 16)})
    _BIN = (None, None, {0xC4: (1, 0), 0xC5: (2, 1 << 8), 0xC6: (4, 1 << 16)})
    _ARRAY = (0x90, 0x9F, {0xDC: (2, 16), 0xDD: (4, 1 << 16)})
    # SPEC GAP: section 2 gives the shortest-header rule for str, bin and
    # array but not for map; we apply the same rule (fixmap < 16, map16 <
    # 2^16, map32).
    _MAP = (0x80, 0x8F, {0xDE: (2, 16), 0xDF: (4, 1 << 16)})
    _UINT = {0xCC: (1, 1 << 7), 0xCD: (2, 1 << 8), 0xCE: (4, 1 << 16), 0xCF: (8, 1 << 32)}

    def __init__(self, data):
        self.data = bytes(data)
        self.pos = 0

    # -- raw access
    def left(self):
        return len(self.data) - self.pos

    def _peek(self):
        if self.left() < 1:
            fail("E_TRUNCATED", "value expected at offset %d" % self.pos)
        return self.data[self.pos]

    def _take(self, n):
        if n > self.left():
            fail("E_TRUNCATED", "%d bytes wanted, %d left" % (n, self.left()))
        out = self.data[self.pos:self.pos + n]
        self.pos += n
        return out

    def _be(self, n):
        return int.from_bytes(self._take(n), "big")

    def _header(self, form, what):
        fix_lo, fix_hi, wide = form
        b = self._peek()
        if fix_lo is not None and fix_lo <= b <= fix_hi:
            self.pos += 1
            return b - fix_lo
        if b in wide:
            nbytes, minimum = wide[b]
            self.pos += 1
            n = self._be(nbytes)
            if n < minimum:
                fail("E_NONCANONICAL", "%s length %d in a longer header" % (what, n))
            return n
        fail("E_TYPE", "%s expected, type byte 0x%02x" % (what, b))

    # -- generic values
    def uint(self):
        b = self._peek()
        if b <= 0x7F:
            self.pos += 1
            return b
        if b in self._UINT:
            nbytes, minimum = self._UINT[b]
            self.pos += 1
            v = self._be(nbytes)
            if v < minimum:
                fail("E_NONCANONICAL", "uint %d in %d bytes" % (v, nbytes))
            return v
        fail("E_TYPE", "uint expected, type byte 0x%02x" % b)

    def nil(self):
        if self._peek() != 0xC0:
            fail("E_TYPE", "nil expected, type byte 0x%02x" % self._peek())
        self.pos += 1

    def _sized(self, form, what):
        n = self._header(form, what)
        if n > self.left():
            fail("E_TRUNCATED", "%s of %d bytes, %d left" % (what, n, self.left()))
        return n

    def raw_bin(self):
        return self._take(self._sized(self._BIN, "bin"))

    def raw_str(self):
        return self._take(self._sized(self._STR, "str"))

    def array_header(self):
        n = self._header(self._ARRAY, "array")
        if n > self.left():  # every element takes at least one byte
            fail("E_TRUNCATED", "array of %d, %d bytes left" % (n, self.left()))
        return n

    def map_header(self):
        n = self._header(self._MAP, "map")
        if 2 * n > self.left():  # every entry takes at least two bytes
            fail("E_TRUNCATED", "map of %d, %d bytes left" % (n, self.left()))
        return n

    def done(self):
        if self.left() != 0:
            fail("E_TRAILING", "%d bytes after the value" % self.left())

    # -- field helpers with the section 2 error rules
    def array(self, count):
        n = self.array_header()
        if n != count:
            fail("E_COUNT", "array of %d, want %d" % (n, count))

    def array_max(self, maximum):
        n = self.array_header()
        if n > maximum:
            fail("E_TOO_LONG", "array of %d, max %d" % (n, maximum))
        return n

    def fixed(self, size):
        b = self.raw_bin()
        if len(b) != size:
            fail("E_BAD_LENGTH", "bin of %d, want %d" % (len(b), size))
        return b

    def bin(self, lo=0, hi=None):
        # SPEC GAP: section 2 names the error for a *string* below its
        # minimum (E_BAD_LENGTH) but not for a variable bin below its
        # minimum (the statement body 1..49152, sealed 49..65000); we use
        # E_BAD_LENGTH for those too.
        b = self.raw_bin()
        if hi is not None and len(b) > hi:
            fail("E_TOO_LONG", "bin of %d, max %d" % (len(b), hi))
        if len(b) < lo:
            fail("E_BAD_LENGTH", "bin of %d, min %d" % (len(b), lo))
        return b

    def sig(self):
        b = self.raw_bin()
        if len(b) > SIG_LEN:
            fail("E_TOO_LONG", "signature of %d bytes" % len(b))
        if len(b) < SIG_LEN:
            fail("E_BAD_LENGTH", "signature of %d bytes" % len(b))
        return b

    def text(self, lo, hi, multiline=False):
        # SPEC GAP: the order of the length bounds against UTF-8 and text
        # checks is not stated; we check the length first (it is known from
        # the header).
        raw = self.raw_str()
        if len(raw) > hi:
            fail("E_TOO_LONG", "text of %d bytes, max %d" % (len(raw), hi))
        if len(raw) < lo:
            fail("E_BAD_LENGTH", "text of %d bytes, min %d" % (len(raw), lo))
        return check_text(raw, multiline)

    def tag(self):
        # SPEC GAP: section 6 says tag "violations are E_BAD_VALUE", while
        # section 2 makes an over-long field E_TOO_LONG and a too-short
        # string E_BAD_LENGTH.  We apply section 2 to the length (a tag is
        # read as line text of 1..64 bytes) and E_BAD_VALUE to the rest.
        t = self.text(1, 64)
        if not valid_tag(t):
            fail("E_BAD_VALUE", "bad tag %r" % t)
        return t

    def any(self):
        """Any canonical value (used to prove that what we encode is canonical)."""
        b = self._peek()
        if b == 0xC0:
            self.pos += 1
            return None
        if b <= 0x7F or b in self._UINT:
            return self.uint()
        if 0xA0 <= b <= 0xBF or b in self._STR[2]:
            return self.raw_str().decode("utf-8")  # text rules are the fields' business
        if b in self._BIN[2]:
            return self.raw_bin()
        if 0x90 <= b <= 0x9F or b in self._ARRAY[2]:
            return [self.any() for _ in range(self.array_header())]
        if 0x80 <= b <= 0x8F or b in self._MAP[2]:
            out = {}
            for _ in range(self.map_header()):
                k = self.uint()
                if k in out:
                    fail("E_DUP_KEY")
                if out and k < max(out):
                    fail("E_BAD_KEY")
                out[k] = self.any()
            return out
        fail("E_TYPE", "type byte 0x%02x" % b)


def enc(obj):
    """Canonical msgpack encoding; proven canonical by re-reading it strictly."""
    out = msgpack.packb(obj, use_bin_type=True)
    r = Reader(out)
    if r.any() != obj:
        raise AssertionError("msgpack round trip differs")
    r.done()
    return out


# --------------------------------------------------------------------------
# Section 4: identities, text ids, fingerprints

KDF_CONTEXT = b"twofold1"
BECH32_ALPHABET = "qpzry9x8gf2tvdw0s3jn54khce6mua7l"
BECH32M_CONST = 0x2BC830A3
TEXT_ID_HRP = "tf"
TEXT_ID_LEN = 61


def kdf(seed, subkey_id):
    """libsodium crypto_kdf_derive_from_key(32, id, "twofold1", seed)."""
    return sodium.crypto_generichash_blake2b_salt_personal(
        b"", digest_size=32, key=seed,
        salt=subkey_id.to_bytes(8, "little") + bytes(8),
        person=KDF_CONTEXT + bytes(8))


class Identity:
    def __init__(self, name, seed):
        if len(seed) != 32:
            raise ValueError("seed must be 32 bytes")
        self.name = name
        self.seed = seed
        self.sign_pk, self.sign_sk = sodium.crypto_sign_seed_keypair(kdf(seed, 1))
        self.noise_pk = sodium.crypto_scalarmult_base(kdf(seed, 2))
        self.box_sk = kdf(seed, 3)
        self.box_pk = sodium.crypto_scalarmult_base(self.box_sk)

    @property
    def text_id(self):
        return text_id_encode(self.sign_pk)

    @property
    def fingerprint(self):
        return fingerprint(self.sign_pk)


def bech32_polymod(values):
    gen = (0x3B6A57B2, 0x26508E6D, 0x1EA119FA, 0x3D4233DD, 0x2A1462B3)
    chk = 1
    for v in values:
        top = chk >> 25
        chk = ((chk & 0x1FFFFFF) << 5) ^ v
        for i in range(5):
            if (top >> i) & 1:
                chk ^= gen[i]
    return chk


def bech32_hrp_expand(hrp):
    return [ord(c) >> 5 for c in hrp] + [0] + [ord(c) & 31 for c in hrp]


def to_five_bit(data):
    acc, bits, out = 0, 0, []
    for byte in data:
        acc = (acc << 8) | byte
        bits += 8
        while bits >= 5:
            bits -= 5
            out.append((acc >> bits) & 31)
    if bits:
        out.append((acc << (5 - bits)) & 31)
    return out


def text_id_from_values(values):
    """tf1 + data values + bech32m checksum (used for well-formed ids and test mutants)."""
    poly = bech32_polymod(bech32_hrp_expand(TEXT_ID_HRP) + values + [0] * 6) ^ BECH32M_CONST
    checksum = [(poly >> 5 * (5 - i)) & 31 for i in range(6)]
    return TEXT_ID_HRP + "1" + "".join(BECH32_ALPHABET[v] for v in values + checksum)


def text_id_encode(sign_pk):
    return text_id_from_values(to_five_bit(sign_pk))


def verify_text_id(text):
    """Parse a text id (section 4) and return the 32-byte sign_pk."""
    # SPEC GAP: lengths and positions are counted in bytes of the UTF-8
    # string (a C implementation sees bytes); section 4 does not say.
    raw = text.encode("utf-8", "surrogatepass")
    has_upper = any(0x41 <= b <= 0x5A for b in raw)
    has_lower = any(0x61 <= b <= 0x7A for b in raw)
    if has_upper and has_lower:
        fail("E_MIXED_CASE")
    raw = bytes(b + 32 if 0x41 <= b <= 0x5A else b for b in raw)
    if not raw.startswith(b"tf1"):
        fail("E_BAD_PREFIX")
    if len(raw) != TEXT_ID_LEN:
        fail("E_BAD_LENGTH", "%d characters" % len(raw))
    values = []
    for pos in range(3, TEXT_ID_LEN):
        i = BECH32_ALPHABET.encode().find(raw[pos:pos + 1])
        if i < 0:
            fail("E_BAD_CHAR", "position %d" % pos)
        values.append(i)
    if bech32_polymod(bech32_hrp_expand(TEXT_ID_HRP) + values) != BECH32M_CONST:
        fail("E_BAD_CHECKSUM")
    data = values[:-6]  # 52 values = 260 bits
    acc = 0
    for v in data:
        acc = (acc << 5) | v
    if acc & 0xF:
        fail("E_BAD_CHECKSUM", "non-zero padding bits")
    return (acc >> 4).to_bytes(32, "big")


def fingerprint(sign_pk):
    h = H(TAG_FINGERPRINT, sign_pk)[:8].hex()
    return "-".join(h[i:i + 4] for i in range(0, 16, 4))


# --------------------------------------------------------------------------
# Section 5: signed statements

MAX_STATEMENT_BODY = 49152


def parse_statement(data):
    """[ body: bin (1..49152), sig: bin 64 ] -> (body, sig)."""
    r = Reader(data)
    r.array(2)
    body = r.bin(1, MAX_STATEMENT_BODY)
    sig = r.sig()
    r.done()
    return body, sig


def build_statement(body, sig):
    return enc([body, sig])


def sign_statement(ident, tag, body):
    return build_statement(body, sign(ident.sign_sk, tag, body))


# --------------------------------------------------------------------------
# Section 6: contact cards

MAX_CARD = 4096
CARD_TEXT_PREFIX = "tfcard1:"
TAG_CHARS = set("abcdefghijklmnopqrstuvwxyz0123456789-")
HOST_CHARS = set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789.-")
IPV6_CHARS = set("0123456789abcdefABCDEF:.")


def valid_tag(t):
    return 1 <= len(t.encode()) <= 64 and set(t) <= TAG_CHARS and t[0] != "-" and t[-1] != "-"


def valid_address(a):
    """host:port per section 6.

    SPEC GAP: section 6 does not say whether the bracketed IPv6 host may be
    empty ("[]") or use upper-case hex; we require at least one character
    and accept both cases ("hex").
    """
    if a.startswith("["):
        end = a.find("]")
        if end < 0:
            return False
        host, rest = a[1:end], a[end + 1:]
        if not host or not set(host) <= IPV6_CHARS:
            return False
    else:
        colon = a.find(":")
        if colon < 0:
            return False
        host, rest = a[:colon], a[colon:]
        if not host or not set(host) <= HOST_CHARS or host[0] in "-.":
            return False
    if not rest.startswith(":"):
        return False
    port = rest[1:]
    if not port or not set(port) <= set("0123456789") or port[0] == "0":
        return False
    return 1 <= int(port) <= 65535


def _card_version(r):
    v = r.uint()
    if v != 1:
        fail("E_VERSION", "card version %d" % v)
    return v


def _card_addrs(r):
    out = []
    for _ in range(r.array_max(8)):
        a = r.text(1, 128)
        if not valid_address(a):
            fail("E_BAD_VALUE", "bad address %r" % a)
        out.append(a)
    return out


def _card_tags(r):
    return [r.tag() for _ in range(r.array_max(16))]


def _card_mailboxes(r):
    """Key 11 (optional): array (1..3) of [sign_pk bin 32, addrs (1..2)]."""
    n = r.array_max(3)
    if n < 1:
        fail("E_BAD_LENGTH", "empty mailbox list")
    out = []
    for _ in range(n):
        if r.array_header() != 2:
            fail("E_COUNT", "mailbox entry is not a pair")
        pk = r.fixed(KEY_LEN)
        m = r.array_max(2)
        if m < 1:
            fail("E_BAD_LENGTH", "mailbox without an address")
        addrs = []
        for _ in range(m):
            a = r.text(1, 128)
            if not valid_address(a):
                fail("E_BAD_VALUE", "bad address %r" % a)
            addrs.append(a)
        out.append((pk, addrs))
    return out


CARD_FIELDS = [
    (1, "version", _card_version),
    (2, "sign_pk", lambda r: r.fixed(KEY_LEN)),
    (3, "noise_pk", lambda r: r.fixed(KEY_LEN)),
    (4, "box_pk", lambda r: r.fixed(KEY_LEN)),
    (5, "name", lambda r: r.text(1, 64)),
    (6, "addrs", _card_addrs),
    (7, "offers", _card_tags),
    (8, "seeks", _card_tags),
    (9, "issued", lambda r: r.uint()),
    (10, "seq", lambda r: r.uint()),
]


def decode_card_body(body):
    """The card map (section 2 and 6): keys 1..10, all present, in order,
    then the optional key 11 (mailboxes).

    The entry count is checked on the map header (E_COUNT).  A key already
    seen (1 up to the previous key) is E_DUP_KEY; any other key than the next
    expected one, including a key that is not an unsigned integer, is
    E_BAD_KEY.
    """
    r = Reader(body)
    entries = r.map_header()
    if entries not in (len(CARD_FIELDS), len(CARD_FIELDS) + 1):
        fail("E_COUNT", "card map of %d entries" % entries)
    fields = {"mailboxes": []}
    prev = 0
    wanted = CARD_FIELDS + ([(11, "mailboxes", _card_mailboxes)]
                            if entries > len(CARD_FIELDS) else [])
    for expected, name, read in wanted:
        try:
            key = r.uint()
        except ProtoError as e:
            if e.code == "E_TYPE":
                fail("E_BAD_KEY", "key is not an unsigned integer")
            raise
        if 1 <= key <= prev:
            fail("E_DUP_KEY", "key %d repeated" % key)
        if key != expected:
            fail("E_BAD_KEY", "key %d where %d expected" % (key, expected))
        prev = key
        fields[name] = read(r)
    r.done()
    for i, (pk, _) in enumerate(fields["mailboxes"]):
        if pk == fields["sign_pk"] or any(pk == q for q, _ in fields["mailboxes"][:i]):
            fail("E_BAD_VALUE", "mailbox is the owner or named twice")
    return Obj(**fields)


def verify_card(data):
    """Section 6 verification of a signed card; returns the Card."""
    # SPEC GAP: section 6 does not say whether the 4096-byte limit is
    # checked before parsing; we check it first (a size check is cheapest).
    if len(data) > MAX_CARD:
        fail("E_TOO_LONG", "card of %d bytes" % len(data))
    body, sig = parse_statement(data)
    card = decode_card_body(body)
    if not sig_ok(card.sign_pk, TAG_CARD, body, sig):
        fail("E_BAD_SIG", "card signature")
    card.signed = bytes(data)
    return card


def build_card_body(ident, name, addrs, offers, seeks, issued, seq):
    return enc({1: 1, 2: ident.sign_pk, 3: ident.noise_pk, 4: ident.box_pk, 5: name,
                6: addrs, 7: offers, 8: seeks, 9: issued, 10: seq})


B64URL = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
# Section 6: space, tab, CR and LF around the card text are ignored.
WHITESPACE = " \t\n\r"


def b64url_encode(data):
    out, acc, bits = [], 0, 0
    for byte in data:
        acc = (acc << 8) | byte
        bits += 8
        while bits >= 6:
            bits -= 6
            out.append(B64URL[(acc >> bits) & 63])
    if bits:
        out.append(B64URL[(acc << (6 - bits)) & 63])
    return "".join(out)


def b64url_decode(text):
    """Strict unpadded base64url: alphabet, length and zero padding bits.

    SPEC GAP: section 6 says "unpadded" but not what a padded input ("=")
    is; we treat "=" as outside the alphabet (E_BAD_ENCODING).
    """
    if len(text) % 4 == 1:
        fail("E_BAD_ENCODING", "impossible length")
    acc, bits, out = 0, 0, bytearray()
    for ch in text:
        v = B64URL.find(ch)
        if v < 0 or len(ch.encode("utf-8", "surrogatepass")) != 1:
            fail("E_BAD_ENCODING", "character %r" % ch)
        acc = (acc << 6) | v
        bits += 6
        if bits >= 8:
            bits -= 8
            out.append((acc >> bits) & 0xFF)
            acc &= (1 << bits) - 1
    if acc:
        fail("E_BAD_ENCODING", "non-zero padding bits")
    return bytes(out)


def card_to_text(signed):
    return CARD_TEXT_PREFIX + b64url_encode(signed)


def verify_card_text(text):
    """Text form -> (signed card bytes, Card)."""
    t = text.strip(WHITESPACE)
    if not t.startswith(CARD_TEXT_PREFIX):
        fail("E_BAD_PREFIX", "no tfcard1: prefix")
    payload = t[len(CARD_TEXT_PREFIX):]
    if len(payload.encode("utf-8")) > (MAX_CARD * 4 + 2) // 3:
        fail("E_TOO_LONG", "card text longer than the base64 of %d bytes" % MAX_CARD)
    signed = b64url_decode(payload)
    return signed, verify_card(signed)


# --------------------------------------------------------------------------
# Section 7: sealed envelopes

MAX_ENVELOPE = 65000
ENVELOPE_TYPES = {1: "note", 2: "proposal", 3: "reply", 4: "introduction", 5: "close",
                  6: "card update", 7: "request", 8: "request close", 9: "feedback"}
# Section 7: inner || padding is the smallest of these that holds inner.
PAD_CLASSES = (4096, 8192, 16384, 32768, 53248)


def padded_len(n):
    for size in PAD_CLASSES:
        if n <= size:
            return size
    fail("E_TOO_LONG", "inner of %d bytes has no size class" % n)


def envelope_signed_bytes(to_pk, msg_id, expires, etype, body):
    return to_pk + msg_id + u64be(expires) + u16be(etype) + body


def open_envelope(me, data, now):
    """Open an envelope for identity `me` at time `now` (section 7 order)."""
    # SPEC GAP: like the card limit, we check the 65000-byte limit before
    # parsing.
    if len(data) > MAX_ENVELOPE:
        fail("E_TOO_LONG", "envelope of %d bytes" % len(data))
    r = Reader(data)
    r.array(5)
    version = r.uint()
    if version != 1:
        fail("E_VERSION", "envelope version %d" % version)
    msg_id = r.fixed(16)
    to_pk = r.fixed(KEY_LEN)
    expires = r.uint()
    sealed = r.bin(SEAL_OVERHEAD + 1, MAX_ENVELOPE)
    r.done()
    if to_pk != me.sign_pk:
        fail("E_NOT_FOR_ME")
    if now > expires:
        fail("E_EXPIRED")
    try:
        inner = sodium.crypto_box_seal_open(sealed, me.box_pk, me.box_sk)
    except (CryptoError, ValueError):
        fail("E_BAD_SEAL")
    r = Reader(inner)
    r.array(4)
    from_pk = r.fixed(KEY_LEN)
    etype = r.uint()
    if etype not in ENVELOPE_TYPES:  # checked as it is read (section 7)
        fail("E_BAD_VALUE", "envelope type %d" % etype)
    body = r.bin(0, MAX_STATEMENT_BODY)
    sig = r.sig()
    # Padding: any number of zero bytes (none included); nothing else.
    if any(inner[r.pos:]):
        fail("E_TRAILING", "non-zero padding after the inner array")
    if not sig_ok(from_pk, TAG_ENVELOPE,
                  envelope_signed_bytes(to_pk, msg_id, expires, etype, body), sig):
        fail("E_BAD_SIG", "envelope signature")
    return Obj(msg_id=msg_id, to_pk=to_pk, expires=expires, from_pk=from_pk,
                    type=etype, body=body, padded_len=len(inner))


def build_envelope(sender, recipient_sign_pk, recipient_box_pk, msg_id, expires, etype, body,
                   signer=None, inner=None, version=1, pad=True):
    """Seal an envelope (signer/inner/version/pad overrides exist to make test mutants)."""
    signer = signer or sender
    if inner is None:
        sig = sign(signer.sign_sk, TAG_ENVELOPE,
                   envelope_signed_bytes(recipient_sign_pk, msg_id, expires, etype, body))
        inner = enc([sender.sign_pk, etype, body, sig])
    if pad:
        inner = inner + bytes(padded_len(len(inner)) - len(inner))
    sealed = sodium.crypto_box_seal(inner, recipient_box_pk)
    return enc([version, msg_id, recipient_sign_pk, expires, sealed])


# --------------------------------------------------------------------------
# Section 9: DIRECT link messages (the "direct" HELLO feature)

LINK_DIRECT = 10
LINK_ARRAY_MAX = 4  # the longest link message has 4 fields


def read_direct_link(data, now):
    """Read a whole DIRECT link message [10, bin] at `now`: the link message,
    then its content (msg_id, expires, type, body, zero padding to exactly
    its class), then the expiry."""
    r = Reader(data)
    n = r.array_max(LINK_ARRAY_MAX)
    if n < 1:
        fail("E_COUNT", "empty link message")
    ltype = r.uint()
    if ltype != LINK_DIRECT:
        fail("E_BAD_VALUE", "link message type %d, not DIRECT" % ltype)
    if n != 2:
        fail("E_COUNT", "DIRECT of %d fields" % n)
    content = r.bin(1, PAD_CLASSES[-1])
    r.done()
    r = Reader(content)
    r.array(4)
    msg_id = r.fixed(16)
    expires = r.uint()
    etype = r.uint()
    if etype not in ENVELOPE_TYPES:  # checked as it is read, as in an envelope
        fail("E_BAD_VALUE", "type %d" % etype)
    body = r.bin(0, MAX_STATEMENT_BODY)
    if any(content[r.pos:]):
        fail("E_TRAILING", "non-zero padding")
    if len(content) != padded_len(r.pos):
        fail("E_BAD_LENGTH", "%d bytes for an inner part of %d" % (len(content), r.pos))
    if now > expires:
        fail("E_EXPIRED")
    return Obj(msg_id=msg_id, expires=expires, type=etype, body=body, padded_len=len(content))


def build_direct_link(msg_id, expires, etype, body, pad_to=None):
    """A DIRECT link message (pad_to overrides the class, to make mutants)."""
    inner = enc([msg_id, expires, etype, body])
    size = padded_len(len(inner)) if pad_to is None else pad_to
    return enc([LINK_DIRECT, inner + bytes(size - len(inner))])


# --------------------------------------------------------------------------
# Section 8: introductions

def decode_core(core_bytes):
    """core = [version, connector_pk, commit_a, commit_b, topic, created, expires, mode].

    Section 2's check order: each field as it is read, expires > created
    right after expires, trailing bytes last.
    """
    r = Reader(core_bytes)
    r.array(8)
    version = r.uint()
    if version != 1:
        fail("E_VERSION", "core version %d" % version)
    connector_pk = r.fixed(KEY_LEN)
    commit_a = r.fixed(32)
    commit_b = r.fixed(32)
    topic = r.tag()
    created = r.uint()
    expires = r.uint()
    if expires <= created:
        fail("E_BAD_VALUE", "expires <= created")
    mode = r.uint()
    if mode not in (0, 1):
        fail("E_BAD_VALUE", "mode %d" % mode)
    r.done()
    return Obj(connector_pk=connector_pk, commits=(commit_a, commit_b), topic=topic,
               created=created, expires=expires, mode=mode)


def _side(r):
    side = r.uint()
    if side not in (0, 1):
        fail("E_BAD_VALUE", "side %d" % side)
    return side


def commitment(pk, salt):
    return H(TAG_COMMIT, pk + salt)


def intro_id_of(core_bytes):
    return H(TAG_INTRO_ID, core_bytes)


def decode_proposal(data):
    """Format of a proposal: wrapper, body, then its core.

    SPEC GAP: "format: wrapper, body, core" is read as: the whole proposal
    body (including side and both texts) before the core it carries.
    """
    body, sig = parse_statement(data)
    r = Reader(body)
    n = r.array_header()
    if n not in (7, 8):  # the eighth field names the request answered (section 8)
        fail("E_COUNT", "proposal of %d fields" % n)
    p = Obj(intro_id=r.fixed(32), core_bytes=r.bin(), side=_side(r), salt=r.fixed(32),
            connector_card=r.bin(0, MAX_CARD), about_other=r.text(0, 2000, True),
            note=r.text(0, 2000, True))
    p.request_id = r.fixed(32) if n == 8 else None
    r.done()
    p.core = decode_core(p.core_bytes)
    p.body, p.sig = body, sig
    return p


def verify_proposal(my_pk, data, now, skew):
    p = decode_proposal(data)
    if not sig_ok(p.core.connector_pk, TAG_PROPOSAL, p.body, p.sig):
        fail("E_BAD_SIG", "proposal signature")
    if intro_id_of(p.core_bytes) != p.intro_id:
        fail("E_INTRO_ID")
    card = verify_card(p.connector_card)
    if card.sign_pk != p.core.connector_pk:
        fail("E_CONNECTOR")
    if commitment(my_pk, p.salt) != p.core.commits[p.side]:
        fail("E_COMMITMENT")
    if now > p.core.expires:
        fail("E_EXPIRED")
    if p.core.created > now + skew:
        fail("E_FROM_FUTURE")
    return p


def decode_reply(data):
    """Format of a reply (wrapper and body); card_x is a bin of 1..4096."""
    body, sig = parse_statement(data)
    r = Reader(body)
    r.array(7)
    intro_id = r.fixed(32)
    side = _side(r)
    decision = r.uint()
    if decision not in (0, 1):
        fail("E_BAD_VALUE", "decision %d" % decision)
    if decision == 1:
        card_x = r.bin(1, MAX_CARD)
        note = r.text(0, 2000, True)
        r.nil()
        reason = None
    else:
        r.nil()
        r.nil()
        card_x = note = None
        reason = r.text(0, 500, True)
    time = r.uint()
    r.done()
    return Obj(intro_id=intro_id, side=side, decision=decision, card_x=card_x, note=note,
               reason=reason, time=time, body=body, sig=sig, signed=bytes(data))


def verify_reply(pk_x, intro_id, side, data):
    """Verification by the connector, who knows pk_x for this intro."""
    rep = decode_reply(data)
    if not sig_ok(pk_x, TAG_REPLY, rep.body, rep.sig):
        fail("E_REPLY_SIG")
    if rep.intro_id != intro_id:
        fail("E_REPLY_INTRO")
    if rep.side != side:
        fail("E_REPLY_SIDE")
    if rep.decision == 1 and verify_card(rep.card_x).sign_pk != pk_x:
        fail("E_KEY_MISMATCH")
    return rep


def decode_introduction(data):
    body, sig = parse_statement(data)
    r = Reader(body)
    r.array(8)
    i = Obj(intro_id=r.fixed(32), core_bytes=r.bin(), salts=(r.fixed(32), r.fixed(32)),
            reply_bytes=(r.bin(), r.bin()), note=r.text(0, 2000, True), time=r.uint())
    r.done()
    i.core = decode_core(i.core_bytes)
    i.replies = tuple(decode_reply(rb) for rb in i.reply_bytes)
    i.body, i.sig = body, sig
    return i


def materialise_check(my_pk, my_reply, data, skew):
    """The materialisation check; returns the other side's Card."""
    i = decode_introduction(data)                                        # 1
    if not sig_ok(i.core.connector_pk, TAG_INTRODUCTION, i.body, i.sig):  # 2
        fail("E_BAD_SIG", "introduction signature")
    if intro_id_of(i.core_bytes) != i.intro_id:                          # 3
        fail("E_INTRO_ID")
    cards = []
    for x in (0, 1):                                                     # 4
        rep = i.replies[x]
        if rep.decision != 1:
            fail("E_REPLY_DECLINE", "side %d" % x)
        card = verify_card(rep.card_x)
        if commitment(card.sign_pk, i.salts[x]) != i.core.commits[x]:
            fail("E_COMMITMENT", "side %d" % x)
        if not sig_ok(card.sign_pk, TAG_REPLY, rep.body, rep.sig):
            fail("E_REPLY_SIG", "side %d" % x)
        if rep.intro_id != i.intro_id:
            fail("E_REPLY_INTRO", "side %d" % x)
        if rep.side != x:
            fail("E_REPLY_SIDE", "side %d" % x)
        if rep.time > i.core.expires + skew:
            fail("E_SIGNED_LATE", "reply of side %d" % x)
        cards.append(card)
    if cards[0].sign_pk == cards[1].sign_pk:                             # 5
        fail("E_SAME_PARTY")
    # 6. A my_reply that does not decode is not the reply I sent either.
    try:
        mine = decode_reply(my_reply)
    except ProtoError:
        fail("E_NOT_MY_REPLY", "my stored reply does not decode")
    if i.reply_bytes[mine.side] != bytes(my_reply) or cards[mine.side].sign_pk != my_pk:
        fail("E_NOT_MY_REPLY")
    if i.time > i.core.expires + skew:                                   # 7
        fail("E_SIGNED_LATE", "introduction")
    return cards[1 - mine.side]


def verify_close(connector_pk, data):
    body, sig = parse_statement(data)
    r = Reader(body)
    r.array(1)
    intro_id = r.fixed(32)
    r.done()
    if not sig_ok(connector_pk, TAG_CLOSE, body, sig):
        fail("E_BAD_SIG", "close signature")
    return intro_id


def verify_request(my_pk, from_pk, data, now, skew):
    """request = [version, asker_pk, connector_pk, seeking, note, created,
    expires, nonce16], signed by the asker; each field checked as it is read."""
    body, sig = parse_statement(data)
    r = Reader(body)
    r.array(8)
    version = r.uint()
    if version != 1:
        fail("E_VERSION", "request version %d" % version)
    asker = r.fixed(KEY_LEN)
    connector = r.fixed(KEY_LEN)
    seeking = r.tag()
    note = r.text(0, 2000, True)
    created = r.uint()
    expires = r.uint()
    if expires <= created or expires - created > REQUEST_EXPIRES_MAX:
        fail("E_BAD_VALUE", "request lifetime")
    r.fixed(16)
    r.done()
    if not sig_ok(asker, TAG_REQUEST, body, sig):
        fail("E_BAD_SIG", "request signature")
    if asker != from_pk:
        fail("E_KEY_MISMATCH", "request not from its asker")
    if connector != my_pk:
        fail("E_NOT_FOR_ME", "request for another connector")
    if now > expires:
        fail("E_EXPIRED")
    if created > now + skew:
        fail("E_FROM_FUTURE")
    return Obj(id=H(TAG_REQUEST_ID, body), seeking=seeking, note=note)


def verify_request_close(signer_pk, data):
    """request_close = [version, request_id, action (0 withdraw, 1 decline), time]."""
    body, sig = parse_statement(data)
    r = Reader(body)
    r.array(4)
    version = r.uint()
    if version != 1:
        fail("E_VERSION", "request close version %d" % version)
    rid = r.fixed(32)
    action = r.uint()
    if action not in (0, 1):
        fail("E_BAD_VALUE", "action %d" % action)
    r.uint()
    r.done()
    if not sig_ok(signer_pk, TAG_REQUEST_CLOSE, body, sig):
        fail("E_BAD_SIG", "request close signature")
    return Obj(id=rid, action=action)


def build_core(connector, pk_a, salt_a, pk_b, salt_b, topic, created, expires, mode):
    return enc([1, connector.sign_pk, commitment(pk_a, salt_a), commitment(pk_b, salt_b),
                topic, created, expires, mode])


def build_proposal_body(core_bytes, side, salt, connector_card, about_other, note,
                        intro_id=None):
    return enc([intro_id or intro_id_of(core_bytes), core_bytes, side, salt, connector_card,
                about_other, note])


def build_reply_body(intro_id, side, card_x, note, time, reason=None, decision=None):
    if decision is None:
        decision = 1 if card_x is not None else 0
    return enc([intro_id, side, decision, card_x, note, reason, time])


def build_introduction_body(core_bytes, salt_a, salt_b, reply_a, reply_b, note, time,
                            intro_id=None):
    return enc([intro_id or intro_id_of(core_bytes), core_bytes, salt_a, salt_b, reply_a,
                reply_b, note, time])


def build_close_body(intro_id):
    return enc([intro_id])


# --------------------------------------------------------------------------
# Vectors: check

def load_identities(doc):
    return {name: Identity(name, bytes.fromhex(o["seed"]))
            for name, o in doc["identities"].items()}


def run_case(ids, c):
    """Run one case; return (None, outputs_mismatch_list) or raise ProtoError."""
    kind = c["kind"]
    bad = []

    def expect(field, got):
        if field in c and c[field] != got:
            bad.append("%s: want %r, got %r" % (field, c[field], got))

    def person(field):
        return ids[c[field]]

    if kind == "text_id":
        expect("pk", verify_text_id(c["text"]).hex())
    elif kind == "card":
        signed = bytes.fromhex(c["signed"])
        verify_card(signed)
        if "text" in c:
            if card_to_text(signed) != c["text"]:
                bad.append("text: encoding of the card differs")
            if verify_card_text(c["text"])[0] != signed:
                bad.append("text: decodes to other bytes")
    elif kind == "card_text":
        verify_card_text(c["text"])
    elif kind == "envelope":
        e = open_envelope(person("recipient"), bytes.fromhex(c["envelope"]), c["now"])
        if "from" in c and ids[c["from"]].sign_pk != e.from_pk:
            bad.append("from: not %s" % c["from"])
        expect("type", e.type)
        expect("body", e.body.hex())
        expect("msg_id", e.msg_id.hex())
        expect("expires", e.expires)
        expect("padded_len", e.padded_len)
    elif kind == "direct":
        d = read_direct_link(bytes.fromhex(c["link"]), c["now"])
        expect("type", d.type)
        expect("body", d.body.hex())
        expect("msg_id", d.msg_id.hex())
        expect("expires", d.expires)
        expect("padded_len", d.padded_len)
    elif kind == "proposal":
        p = verify_proposal(person("recipient").sign_pk, bytes.fromhex(c["proposal"]),
                            c["now"], c.get("skew", DEFAULT_SKEW))
        expect("intro_id", p.intro_id.hex())
        expect("side", p.side)
        expect("topic", p.core.topic)
    elif kind == "reply":
        rep = verify_reply(person("signer").sign_pk, bytes.fromhex(c["intro_id"]), c["side"],
                           bytes.fromhex(c["reply"]))
        expect("decision", rep.decision)
    elif kind == "introduction":
        other = materialise_check(person("me").sign_pk, bytes.fromhex(c["my_reply"]),
                                  bytes.fromhex(c["introduction"]), c.get("skew", DEFAULT_SKEW))
        if "other" in c and ids[c["other"]].sign_pk != other.sign_pk:
            bad.append("other: not %s" % c["other"])
    elif kind == "close":
        iid = verify_close(person("connector").sign_pk, bytes.fromhex(c["close"]))
        expect("intro_id", iid.hex())
    elif kind == "request":
        q = verify_request(person("recipient").sign_pk, person("from").sign_pk,
                           bytes.fromhex(c["request"]), c["now"], c.get("skew", DEFAULT_SKEW))
        expect("request_id", q.id.hex())
        expect("seeking", q.seeking)
    elif kind == "request_close":
        rc = verify_request_close(person("signer").sign_pk, bytes.fromhex(c["request_close"]))
        expect("request_id", rc.id.hex())
        expect("action", rc.action)
    else:
        raise ValueError("unknown kind %r" % kind)
    return bad


def check_identity(name, o, ident):
    bad = []
    for field, got in (("sign_pk", ident.sign_pk.hex()), ("noise_pk", ident.noise_pk.hex()),
                       ("box_pk", ident.box_pk.hex()), ("text_id", ident.text_id),
                       ("fingerprint", ident.fingerprint)):
        if field in o and o[field] != got:
            bad.append("%s: want %s, derived %s" % (field, o[field], got))
    if "card" in o:
        try:
            card = verify_card(bytes.fromhex(o["card"]))
            if (card.sign_pk, card.noise_pk, card.box_pk) != (ident.sign_pk, ident.noise_pk,
                                                              ident.box_pk):
                bad.append("card: keys are not the derived ones")
        except ProtoError as e:
            bad.append("card: %s" % e)
    if "text_id" in o:
        try:
            if verify_text_id(o["text_id"]) != ident.sign_pk:
                bad.append("text_id: parses to another key")
        except ProtoError as e:
            bad.append("text_id: %s" % e)
    return bad


def check_chain(chain, ids):
    """The "chain" block: the core, its id, the commitments and the embedded core."""
    bad = []
    core_bytes = bytes.fromhex(chain["core"])
    core = decode_core(core_bytes)
    iid = intro_id_of(core_bytes)
    if iid.hex() != chain.get("intro_id"):
        bad.append("intro_id is not H(core)")
    for x, salt in ((0, "salt_a"), (1, "salt_b")):
        if salt in chain and not any(commitment(i.sign_pk, bytes.fromhex(chain[salt]))
                                     == core.commits[x] for i in ids.values()):
            bad.append("%s opens commit for no identity" % salt)
    for part in ("proposal_a", "proposal_b", "introduction"):
        if part in chain:
            obj = (decode_proposal if part != "introduction" else decode_introduction)(
                bytes.fromhex(chain[part]))
            if obj.core_bytes != core_bytes or obj.intro_id != iid:
                bad.append("%s carries another core" % part)
    for part in ("reply_a", "reply_b"):
        if part in chain and decode_reply(bytes.fromhex(chain[part])).intro_id != iid:
            bad.append("%s is for another intro" % part)
    if "close" in chain and verify_close(core.connector_pk, bytes.fromhex(chain["close"])) != iid:
        bad.append("close is for another intro")
    return bad


def doc_blocks(path):
    """The ```hex id=NAME blocks of PROTOCOL.md, as bytes."""
    blocks, name, buf = {}, None, []
    with open(path, encoding="utf-8") as f:
        for line in f:
            s = line.strip()
            if name is None and s.startswith("```hex id="):
                name, buf = s[len("```hex id="):], []
            elif name is not None and s == "```":
                blocks[name] = bytes.fromhex("".join(buf))
                name = None
            elif name is not None:
                buf.append(s)
    return blocks


def check_doc(path, doc, ids):
    """The worked examples in PROTOCOL.md, checked by this implementation."""
    bad = []
    blocks = doc_blocks(path)
    alice, carol = ids.get("alice"), ids.get("carol")
    if "alice-card" in blocks:
        card = verify_card(blocks["alice-card"])
        if alice and card.sign_pk != alice.sign_pk:
            bad.append("alice-card: not Alice's key")
        if (card.name, card.issued, len(blocks["alice-card"])) != ("Alice Avocat", 1799913600,
                                                                   236):
            bad.append("alice-card: fields differ from the byte-by-byte table")
    if "core" in blocks:
        core = decode_core(blocks["core"])
        if alice and core.commits[0] != commitment(alice.sign_pk, b"\x31" * 32):
            bad.append("core: commit_a is not Alice's with salt 0x31")
        if "bob" in ids and core.commits[1] != commitment(ids["bob"].sign_pk, b"\x32" * 32):
            bad.append("core: commit_b is not Bob's with salt 0x32")
        if (core.topic, core.created, core.expires - core.created, core.mode) != (
                "real-estate-law", 1799999900, 14 * 86400, 0):
            bad.append("core: fields differ from the prose")
        if "intro-id" in blocks and intro_id_of(blocks["core"]) != blocks["intro-id"]:
            bad.append("intro-id is not H(core)")
        if carol and core.connector_pk != carol.sign_pk:
            bad.append("core: connector is not Carol")
    if "close" in blocks and carol:
        if verify_close(carol.sign_pk, blocks["close"]) != blocks.get("intro-id"):
            bad.append("close: another intro id")
    text = open(path, encoding="utf-8").read()
    if alice and alice.text_id not in text:
        bad.append("Alice's text id in section 4 differs")
    if alice and alice.fingerprint not in text:
        bad.append("the fingerprint example in section 4 is not Alice's")
    return bad


def cmd_check(path, doc_path=None, out=None):
    out = out or sys.stdout
    with open(path, encoding="utf-8") as f:
        doc = json.load(f)
    ids = load_identities(doc)
    passed = failed = 0

    def record(label, bad):
        nonlocal passed, failed
        if bad:
            failed += 1
            for b in bad:
                print("FAIL %s: %s" % (label, b), file=out)
        else:
            passed += 1

    for name, o in doc["identities"].items():
        record("identity %s" % name, check_identity(name, o, ids[name]))
    if "chain" in doc:
        try:
            record("chain", check_chain(doc["chain"], ids))
        except ProtoError as e:
            record("chain", ["%s" % e])
    if doc_path:
        try:
            record("doc %s" % os.path.basename(doc_path), check_doc(doc_path, doc, ids))
        except ProtoError as e:
            record("doc", ["%s" % e])
    for section in ("valid", "invalid"):
        for c in doc.get(section, []):
            want = "OK" if section == "valid" else c.get("error", "?")
            label = '%s %s "%s"' % (section, c.get("kind"), c.get("name"))
            try:
                bad = run_case(ids, c)
                got, detail = "OK", ""
            except ProtoError as e:
                bad, got, detail = [], e.code, str(e)
            except Exception as e:  # a bug here, or a malformed case
                bad, got, detail = [], "EXCEPTION", "%s: %s" % (type(e).__name__, e)
            if got != want:
                record(label, ["expected %s, got %s (%s)" % (want, got, detail)])
            else:
                record(label, ["outputs differ: " + b for b in bad])
    print("%d passed, %d failed" % (passed, failed), file=out)
    return 0 if failed == 0 and passed > 0 else 1


# --------------------------------------------------------------------------
# Vectors: emit (fresh objects built and signed here)

NAMES = ("carol", "alice", "bob", "dave", "mallory")

NOW = 1893456000  # 2030-01-01T00:00:00Z
ISSUED = NOW - 86400 * 30


def flip(data, index=-1):
    b = bytearray(data)
    b[index] ^= 0x01
    return bytes(b)


def card_body_raw(entries):
    """A card map from pre-encoded (key, value) pieces, for mutants."""
    n = len(entries)
    header = bytes([0x80 + n]) if n < 16 else b"\xde" + u16be(n)
    return header + b"".join(enc(k) + v for k, v in entries)


def card_entries(ident, name, addrs, offers, seeks, issued, seq):
    return [(1, enc(1)), (2, enc(ident.sign_pk)), (3, enc(ident.noise_pk)),
            (4, enc(ident.box_pk)), (5, enc(name)), (6, enc(addrs)), (7, enc(offers)),
            (8, enc(seeks)), (9, enc(issued)), (10, enc(seq))]


CARD_DATA = {
    "carol": ("Carol Q. Connector", ["connector.example.org:443", "[2001:db8::7]:7451"],
              ["introductions", "tax-law"], [], 3),
    "alice": ("Alice Zoë Avocat", ["10.0.0.2:7452"], ["family-law", "real-estate-law"],
              ["accounting"], 2),
    "bob": ("Bob Bücher", [], ["accounting", "bookkeeping-2"], ["family-law"], 5),
    "dave": ("Dave Δ Developer", ["dave-box.local:65535"], [], [], 1),
    "mallory": ("Mallory", ["m.example:1"], ["family-law"], [], 9),
}


class Emitter:
    def __init__(self, seeds_doc):
        self.ids = {n: Identity(n, bytes.fromhex(seeds_doc["identities"][n]["seed"]))
                    for n in NAMES}
        self.cards = {n: self.card(n) for n in NAMES}
        self.valid, self.invalid = [], []

    def card(self, n, **over):
        name, addrs, offers, seeks, seq = CARD_DATA[n]
        f = dict(name=name, addrs=addrs, offers=offers, seeks=seeks, issued=ISSUED, seq=seq)
        f.update(over)
        ident = self.ids[n]
        return sign_statement(ident, TAG_CARD, build_card_body(ident, **f))

    def add(self, case, error=None):
        if error:
            case["error"] = error
            self.invalid.append(case)
        else:
            self.valid.append(case)

    # -- identities, text ids, cards
    def identities(self):
        return {n: {"seed": i.seed.hex(), "sign_pk": i.sign_pk.hex(), "noise_pk": i.noise_pk.hex(),
                    "box_pk": i.box_pk.hex(), "text_id": i.text_id, "fingerprint": i.fingerprint,
                    "card": self.cards[n].hex()} for n, i in self.ids.items()}

    def text_ids(self):
        for n in NAMES:
            self.add({"kind": "text_id", "name": "%s (python)" % n, "text": self.ids[n].text_id,
                      "pk": self.ids[n].sign_pk.hex()})
        t = self.ids["bob"].text_id
        self.add({"kind": "text_id", "name": "bob upper case (python)", "text": t.upper(),
                  "pk": self.ids["bob"].sign_pk.hex()})
        bad = [
            ("last checksum character changed", t[:-1] + ("q" if t[-1] != "q" else "p"),
             "E_BAD_CHECKSUM"),
            ("data character changed", t[:10] + ("q" if t[10] != "q" else "p") + t[11:],
             "E_BAD_CHECKSUM"),
            ("prefix tf2", "tf2" + t[3:], "E_BAD_PREFIX"),
            ("empty", "", "E_BAD_PREFIX"),
            ("one character too many", t + "q", "E_BAD_LENGTH"),
            ("letter o is not in the alphabet", t[:20] + "o" + t[21:], "E_BAD_CHAR"),
            ("digit 1 in the data part", t[:30] + "1" + t[31:], "E_BAD_CHAR"),
            ("one capital letter", "T" + t[1:], "E_MIXED_CASE"),
            ("mixed case checked before the prefix", "XF1" + t[3:], "E_MIXED_CASE"),
        ]
        # A well-formed bech32m string whose last data value has non-zero padding bits.
        values = to_five_bit(self.ids["bob"].sign_pk)
        values[-1] |= 1
        bad.append(("non-zero padding bits, valid checksum", text_id_from_values(values),
                    "E_BAD_CHECKSUM"))
        for name, text, err in bad:
            self.add({"kind": "text_id", "name": name, "text": text}, err)

    def card_cases(self):
        for n in NAMES:
            self.add({"kind": "card", "name": "%s (python)" % n, "signed": self.cards[n].hex(),
                      "text": card_to_text(self.cards[n])})
        alice = self.ids["alice"]
        self.add({"kind": "card_text", "name": "surrounded by whitespace",
                  "text": " \n\t" + card_to_text(self.cards["dave"]) + "\r\n "})

        def mutant(name, err, entries=None, body=None, signed=None, signer=None, tag=TAG_CARD):
            if signed is None:
                if body is None:
                    body = card_body_raw(entries)
                signed = sign_statement(signer or alice, tag, body)
            self.add({"kind": "card", "name": name, "signed": signed.hex()}, err)

        base = card_entries(alice, *CARD_DATA["alice"][:4], ISSUED, 2)

        def with_(key, value_bytes):
            return [(k, value_bytes if k == key else v) for k, v in base]

        good = self.cards["alice"]
        mutant("last signature byte flipped", "E_BAD_SIG", signed=flip(good))
        mutant("issued changed after signing", "E_BAD_SIG",
               signed=build_statement(card_body_raw(with_(9, enc(ISSUED + 1))),
                                      parse_statement(good)[1]))
        mutant("signed by bob", "E_BAD_SIG", base, signer=self.ids["bob"])
        mutant("signed in the envelope domain", "E_BAD_SIG", base, tag=TAG_ENVELOPE)
        mutant("version 3", "E_VERSION", with_(1, enc(3)))
        mutant("version 0 (version checked before later fields)", "E_VERSION",
               with_(1, enc(0))[:5] + [(6, b"\xc0")] + base[6:])
        mutant("key 10 before key 9", "E_BAD_KEY", base[:8] + [base[9], base[8]])
        mutant("key 7 repeated in place of 8", "E_DUP_KEY",
               base[:7] + [(7, enc([]))] + base[8:])
        mutant("name of 65 bytes", "E_TOO_LONG", with_(5, enc("é" * 32 + "x")))
        mutant("64-byte name; a sign_pk byte changed after signing", "E_BAD_SIG",
               signed=flip(sign_statement(alice, TAG_CARD,
                                          card_body_raw(with_(5, enc("n" * 64)))), 30))
        mutant("empty name", "E_BAD_LENGTH", with_(5, enc("")))
        mutant("name with a tab", "E_BAD_TEXT", with_(5, enc("Alice\tAvocat")))
        mutant("name with DEL", "E_BAD_TEXT", with_(5, enc("Alice\x7f")))
        mutant("name with a UTF-8 surrogate", "E_BAD_UTF8",
               with_(5, b"\xa8Alice\xed\xa0\x80"))
        mutant("name with a code point above U+10FFFF", "E_BAD_UTF8",
               with_(5, b"\xa9Alice\xf4\x90\x80\x80"))
        mutant("name as str8 under 32 bytes", "E_NONCANONICAL", with_(5, b"\xd9\x05Alice"))
        mutant("issued as uint64", "E_NONCANONICAL", with_(9, b"\xcf" + u64be(ISSUED)))
        mutant("seq 200 as uint16", "E_NONCANONICAL", with_(10, b"\xcd\x00\xc8"))
        mutant("negative seq", "E_TYPE", with_(10, b"\xff"))
        mutant("version as a string", "E_TYPE", with_(1, enc("1")))
        mutant("sign_pk of 31 bytes", "E_BAD_LENGTH", with_(2, enc(alice.sign_pk[:31])))
        mutant("box_pk of 33 bytes", "E_BAD_LENGTH", with_(4, enc(alice.box_pk + b"\x00")))
        mutant("sign_pk as a string", "E_TYPE", with_(2, b"\xd9\x20" + b"a" * 32))
        for addr, why in (("example.org:0", "port 0"), ("example.org:65536", "port 65536"),
                          ("example.org:07452", "port with a leading zero"),
                          ("-example.org:7452", "host starting with -"),
                          (".example.org:7452", "host starting with ."),
                          ("exa_mple.org:7452", "underscore in host"),
                          ("[2001:db8::g]:7452", "g in an IPv6 host"),
                          ("[::1]7452", "no colon after ]"),
                          ("example.org:", "empty port"), (":7452", "empty host"),
                          ("example.org:+80", "signed port")):
            mutant("address with %s" % why, "E_BAD_VALUE", with_(6, enc([addr])))
        mutant("nine addresses", "E_TOO_LONG", with_(6, enc(["h%d:1" % i for i in range(9)])))
        mutant("address of 129 bytes", "E_TOO_LONG", with_(6, enc(["h" * 124 + ":7452"])))
        mutant("seventeen offers", "E_TOO_LONG",
               with_(7, enc(["t%d" % i for i in range(17)])))
        for tag, why in (("tax-", "ending with -"), ("-tax", "starting with -"),
                         ("tax_law", "with _"), ("Tax", "with a capital")):
            mutant("seek tag %s" % why, "E_BAD_VALUE", with_(8, enc([tag])))
        mutant("offer tag of 65 bytes", "E_TOO_LONG", with_(7, enc(["t" * 65])))
        # statement wrapper
        body, sig = parse_statement(good)
        mutant("signature of 63 bytes", "E_BAD_LENGTH", signed=enc([body, sig[:63]]))
        mutant("signature of 65 bytes", "E_TOO_LONG", signed=enc([body, sig + b"\x00"]))
        mutant("statement of 3 elements", "E_COUNT", signed=enc([body, sig, 0]))
        mutant("body as a str", "E_TYPE",
               signed=b"\x92\xd9" + bytes([len(body)]) + body + enc(sig))
        mutant("two statements back to back", "E_TRAILING", signed=good + good)
        mutant("cut inside the signature", "E_TRUNCATED", signed=good[:-1])
        mutant("body length passes the end", "E_TRUNCATED",
               signed=b"\x92\xc5" + u16be(len(good) + 100) + good[3:])
        mutant("trailing byte inside the body", "E_TRAILING", body=card_body_raw(base) + b"\x00")
        mutant("body is an array", "E_TYPE", body=enc([1, 2]))
        # card text
        text = card_to_text(good)
        payload = text[len(CARD_TEXT_PREFIX):]
        for name, t, err in (
                ("prefix in capitals", "TFCARD1:" + payload, "E_BAD_PREFIX"),
                ("standard base64 '+' character", text[:20] + "+" + text[21:], "E_BAD_ENCODING"),
                ("inner space", text[:40] + " " + text[40:], "E_BAD_ENCODING"),
                ("length 1 mod 4", text + "A" * ((1 - len(payload)) % 4), "E_BAD_ENCODING"),
        ):
            self.add({"kind": "card_text", "name": name, "text": t}, err)
        # non-zero padding bits: pick a card whose length is not a multiple of 3
        for n in NAMES:
            p = card_to_text(self.cards[n])[len(CARD_TEXT_PREFIX):]
            if len(p) % 4:
                last = B64URL.find(p[-1]) | 1
                self.add({"kind": "card_text", "name": "non-zero padding bits (%s)" % n,
                          "text": CARD_TEXT_PREFIX + p[:-1] + B64URL[last]}, "E_BAD_ENCODING")
                break
        self.add({"kind": "card_text", "name": "decodes to a card with a bad signature",
                  "text": card_to_text(flip(good))}, "E_BAD_SIG")

    # -- envelopes
    def envelope_cases(self):
        alice, bob, carol, dave, mallory = (self.ids[n] for n in
                                            ("alice", "bob", "carol", "dave", "mallory"))
        msg_id = bytes(range(0x10, 0x20))
        expires = NOW + 7200
        note = "Bonjour Bob,\nje suis Alice. 🥑".encode()

        def env(**kw):
            a = dict(sender=alice, recipient_sign_pk=bob.sign_pk, recipient_box_pk=bob.box_pk,
                     msg_id=msg_id, expires=expires, etype=1, body=note)
            a.update(kw)
            return build_envelope(**a)

        good = env()
        case = {"kind": "envelope", "recipient": "bob", "now": NOW, "envelope": good.hex(),
                "from": "alice", "type": 1, "body": note.hex(), "msg_id": msg_id.hex(),
                "expires": expires, "padded_len": 4096}
        self.add(dict(case, name="python-sealed note from alice to bob"))
        unpadded = env(pad=False)
        self.add(dict(case, name="inner not padded", envelope=unpadded.hex(),
                      padded_len=len(unpadded) - 2 - 18 - 34 - 5 - 2 - SEAL_OVERHEAD))
        self.add(dict(case, name="opened at the second of expiry", now=expires))
        upd_id = bytes(16)
        card_env = build_envelope(carol, alice.sign_pk, alice.box_pk, upd_id, NOW + 60, 6,
                                  self.cards["carol"])
        self.add({"kind": "envelope", "name": "card update from carol to alice",
                  "recipient": "alice", "now": NOW, "envelope": card_env.hex(),
                  "from": "carol", "type": 6, "body": self.cards["carol"].hex(),
                  "msg_id": upd_id.hex(), "expires": NOW + 60})
        empty = env(body=b"", etype=5, msg_id=b"\xff" * 16)
        self.add({"kind": "envelope", "name": "empty body", "recipient": "bob", "now": NOW,
                  "envelope": empty.hex(), "from": "alice", "type": 5, "body": "",
                  "msg_id": "ff" * 16, "expires": expires})

        def bad(name, err, data, recipient="bob", now=NOW):
            self.add({"kind": "envelope", "name": name, "recipient": recipient, "now": now,
                      "envelope": data.hex()}, err)

        bad("for dave", "E_NOT_FOR_ME", good, recipient="dave")
        bad("one second after expiry", "E_EXPIRED", good, now=expires + 1)
        bad("type 10", "E_BAD_VALUE", env(etype=10))
        bad("type 0", "E_BAD_VALUE", env(etype=0))
        bad("inner signed by mallory as alice", "E_BAD_SIG", env(signer=mallory))
        sig = sign(alice.sign_sk, TAG_ENVELOPE,
                   envelope_signed_bytes(dave.sign_pk, msg_id, expires, 1, note))
        bad("signature made for dave, replayed to bob", "E_BAD_SIG",
            env(inner=enc([alice.sign_pk, 1, note, sig])))
        sig = sign(alice.sign_sk, TAG_ENVELOPE,
                   envelope_signed_bytes(bob.sign_pk, msg_id, expires, 1, note))
        bad("type changed after signing", "E_BAD_SIG",
            env(inner=enc([alice.sign_pk, 2, note, sig])))
        bad("sealed to dave's box key", "E_BAD_SEAL", env(recipient_box_pk=dave.box_pk))
        bad("last sealed byte flipped", "E_BAD_SEAL", flip(good))
        bad("version 2", "E_VERSION", env(version=2))
        bad("msg id of 15 bytes", "E_BAD_LENGTH",
            good[:2] + b"\xc4\x0f" + good[4:19] + good[20:])
        bad("four fields", "E_COUNT", b"\x94" + good[1:])
        bad("cut in the middle", "E_TRUNCATED", good[:len(good) // 2])
        bad("trailing byte", "E_TRAILING", good + b"\x00")
        bad("inner of five fields", "E_COUNT",
            env(inner=enc([alice.sign_pk, 1, note, sig, 0])))
        bad("trailing byte after the inner array", "E_TRAILING",
            env(inner=enc([alice.sign_pk, 1, note, sig]) + b"\xc0"))
        bad("inner from_pk of 31 bytes", "E_BAD_LENGTH",
            env(inner=enc([alice.sign_pk[:31], 1, note, sig])))
        inner = enc([alice.sign_pk, 1, note, sig])
        bad("a padding byte of 1", "E_TRAILING",
            env(inner=inner + bytes(100) + b"\x01" + bytes(3000), pad=False))
        bad("type 10 with a non-zero padding byte (the type is checked first)", "E_BAD_VALUE",
            env(inner=enc([alice.sign_pk, 10, note, sig]) + b"\x01"))
        bad("inner signature of 65 bytes", "E_TOO_LONG",
            env(inner=enc([alice.sign_pk, 1, note, sig + b"\x00"])))
        bad("over 65000 bytes", "E_TOO_LONG",
            enc([1, msg_id, bob.sign_pk, expires, bytes(65000)]))

    # -- DIRECT link messages
    def direct_cases(self):
        msg_id = bytes(range(0x30, 0x40))
        expires = NOW + 600
        note = "Salut Bob, en direct. 🥑".encode()
        good = build_direct_link(msg_id, expires, 1, note)
        case = {"kind": "direct", "now": NOW, "link": good.hex(), "type": 1,
                "body": note.hex(), "msg_id": msg_id.hex(), "expires": expires,
                "padded_len": 4096}
        self.add(dict(case, name="python: a direct note"))
        self.add(dict(case, name="python: read at the second of expiry", now=expires))
        intro = bytes(range(256)) * 20  # 5120 bytes: class 8192
        self.add({"kind": "direct", "name": "python: an introduction-sized body", "now": NOW,
                  "link": build_direct_link(msg_id, expires, 4, intro).hex(), "type": 4,
                  "body": intro.hex(), "msg_id": msg_id.hex(), "expires": expires,
                  "padded_len": 8192})

        def bad(name, err, data, now=NOW):
            self.add({"kind": "direct", "name": name, "now": now, "link": data.hex()}, err)

        bad("python: expired", "E_EXPIRED", good, now=expires + 1)
        bad("python: padded to 8192 though it fits 4096", "E_BAD_LENGTH",
            build_direct_link(msg_id, expires, 1, note, pad_to=8192))
        inner = enc([msg_id, expires, 1, note])
        bad("python: not padded", "E_BAD_LENGTH", enc([LINK_DIRECT, inner]))
        bad("python: a padding byte of 1", "E_TRAILING",
            enc([LINK_DIRECT, inner + bytes(100) + b"\x01" + bytes(4096 - len(inner) - 101)]))
        bad("python: type 0", "E_BAD_VALUE", build_direct_link(msg_id, expires, 0, note))
        bad("python: five fields", "E_COUNT",
            enc([LINK_DIRECT, enc([msg_id, expires, 1, note, 0]) + bytes(4000)]))
        bad("python: msg id of 17 bytes", "E_BAD_LENGTH",
            build_direct_link(msg_id + b"\x00", expires, 1, note))
        bad("python: link message of three fields", "E_COUNT",
            enc([LINK_DIRECT, bytes(4096), 0]))
        bad("python: content over the largest class", "E_TOO_LONG",
            enc([LINK_DIRECT, bytes(PAD_CLASSES[-1] + 1)]))

    # -- the introduction chain
    def intro_cases(self):
        ids = self.ids
        carol, alice, bob, dave, mallory = (ids[n] for n in NAMES)
        salt_a = bytes(range(0xA0, 0xC0))
        salt_b = bytes(range(0xC0, 0xE0))
        created = NOW - 3600
        expires = created + 7 * 86400
        topic = "family-law"

        def core_of(pk_a=alice.sign_pk, pk_b=bob.sign_pk, connector=carol, **kw):
            a = dict(salt_a=salt_a, salt_b=salt_b, topic=topic, created=created, expires=expires,
                     mode=1)
            a.update(kw)
            return build_core(connector, pk_a, a["salt_a"], pk_b, a["salt_b"], a["topic"],
                              a["created"], a["expires"], a["mode"])

        core = core_of()
        iid = intro_id_of(core)
        about_b = "Bob runs a small bookshop in Lyon\nand needs help with a lease."
        about_a = "Alice is a family lawyer;\n\tshe answers quickly."

        def proposal(side, core_bytes=core, salt=None, signer=carol, tag=TAG_PROPOSAL,
                     connector_card=None, intro_id=None, about=None, note="Hello from Carol."):
            body = build_proposal_body(core_bytes, side, salt or (salt_a, salt_b)[side],
                                       connector_card or self.cards["carol"],
                                       about if about is not None else (about_b, about_a)[side],
                                       note, intro_id=intro_id)
            return sign_statement(signer, tag, body)

        prop_a, prop_b = proposal(0), proposal(1)

        def pcase(name, data, recipient="alice", now=NOW, err=None, side=0):
            c = {"kind": "proposal", "name": name, "recipient": recipient, "now": now,
                 "skew": DEFAULT_SKEW, "proposal": data.hex()}
            if not err:
                c.update(intro_id=iid.hex(), side=side, topic=topic)
            self.add(c, err)

        pcase("python proposal to alice (side a)", prop_a)
        pcase("python proposal to bob (side b)", prop_b, recipient="bob", side=1)
        pcase("opened at the second of expiry", prop_a, now=expires)
        pcase("created exactly skew seconds ahead", prop_a, now=created - DEFAULT_SKEW)
        pcase("to dave", prop_a, recipient="dave", err="E_COMMITMENT")
        pcase("side a proposal presented to bob", prop_a, recipient="bob", err="E_COMMITMENT")
        pcase("salt of side b", proposal(0, salt=salt_b), err="E_COMMITMENT")
        pcase("one second after expiry", prop_a, now=expires + 1, err="E_EXPIRED")
        pcase("created skew+1 seconds ahead", prop_a, now=created - DEFAULT_SKEW - 1,
              err="E_FROM_FUTURE")
        pcase("signed by mallory", proposal(0, signer=mallory), err="E_BAD_SIG")
        pcase("signed in the reply domain", proposal(0, tag=TAG_REPLY), err="E_BAD_SIG")
        pcase("signature byte flipped", flip(prop_a, -10), err="E_BAD_SIG")
        pcase("intro id of another core", proposal(0, intro_id=H(TAG_INTRO_ID, b"other")),
              err="E_INTRO_ID")
        pcase("connector card is dave's", proposal(0, connector_card=self.cards["dave"]),
              err="E_CONNECTOR")
        pcase("connector card with a bad signature",
              proposal(0, connector_card=flip(self.cards["carol"])), err="E_BAD_SIG")
        pcase("side 2", proposal(2, salt=salt_a, about=""), err="E_BAD_VALUE")
        pcase("about_other with a carriage return", proposal(0, about="a\r\nb"),
              err="E_BAD_TEXT")
        pcase("about_other of 2001 bytes", proposal(0, about="x" * 2001), err="E_TOO_LONG")
        pcase("about_other of 2000 bytes, signed by dave", proposal(0, about="x" * 2000,
                                                                     signer=dave),
              err="E_BAD_SIG")
        pcase("core version 3", proposal(0, core_bytes=core[:1] + b"\x03" + core[2:]),
              err="E_VERSION")
        pcase("core mode 2", proposal(0, core_bytes=core_of(mode=2)), err="E_BAD_VALUE")
        pcase("core expires before created",
              proposal(0, core_bytes=core_of(expires=created - 1)), err="E_BAD_VALUE")
        pcase("core topic with a space", proposal(0, core_bytes=core_of(topic="family law")),
              err="E_BAD_VALUE")
        pcase("core of seven fields", proposal(0, core_bytes=b"\x97" + core[1:-1]),
              err="E_COUNT")
        pcase("core with a trailing byte", proposal(0, core_bytes=core + b"\x00"),
              err="E_TRAILING")
        pcase("cut short", prop_a[:-5], err="E_TRUNCATED")

        # replies
        t_a, t_b = NOW + 600, NOW + 1200

        def reply(signer, side, card=None, note="Happy to talk.", time=t_a, reason=None,
                  intro_id=iid, decision=None, tag=TAG_REPLY):
            return sign_statement(signer, tag, build_reply_body(intro_id, side, card, note, time,
                                                                reason, decision))

        rep_a = reply(alice, 0, self.cards["alice"], "Bob, call me on Monday.\n-- A.")
        rep_b = reply(bob, 1, self.cards["bob"], "", t_b)
        dec_b = reply(bob, 1, None, None, t_b, reason="I found someone else.")

        def rcase(name, data, signer="alice", side=0, err=None, decision=1, intro_id=iid):
            c = {"kind": "reply", "name": name, "signer": signer, "intro_id": intro_id.hex(),
                 "side": side, "reply": data.hex()}
            if not err:
                c["decision"] = decision
            self.add(c, err)

        rcase("python: alice accepts", rep_a)
        rcase("python: bob accepts with an empty note", rep_b, "bob", 1)
        rcase("python: bob declines", dec_b, "bob", 1, decision=0)
        rcase("bob's reply claimed by dave", rep_b, "dave", 1, err="E_REPLY_SIG")
        rcase("signed in the proposal domain", reply(alice, 0, self.cards["alice"],
                                                     tag=TAG_PROPOSAL), err="E_REPLY_SIG")
        rcase("for another intro", rep_a, intro_id=H(TAG_INTRO_ID, b"x"), err="E_REPLY_INTRO")
        rcase("for the other side", rep_a, side=1, err="E_REPLY_SIDE")
        rcase("alice accepts with bob's card", reply(alice, 0, self.cards["bob"]),
              err="E_KEY_MISMATCH")
        rcase("alice accepts with a broken card", reply(alice, 0, flip(self.cards["alice"])),
              err="E_BAD_SIG")
        rcase("accept with a nil card", reply(alice, 0, None, "hi", decision=1), err="E_TYPE")
        rcase("decline with a card", reply(bob, 1, self.cards["bob"], None, reason="no",
                                           decision=0), "bob", 1, err="E_TYPE")
        rcase("decline with a note", reply(bob, 1, None, "hi", reason="no", decision=0), "bob",
              1, err="E_TYPE")
        rcase("accept with a reason", reply(alice, 0, self.cards["alice"], "hi", reason="x"),
              err="E_TYPE")
        rcase("decision 2", reply(alice, 0, self.cards["alice"], decision=2),
              err="E_BAD_VALUE")
        rcase("side 2", reply(alice, 2, self.cards["alice"]), side=2, err="E_BAD_VALUE")
        rcase("reason of 501 bytes", reply(bob, 1, None, None, reason="r" * 501), "bob", 1,
              err="E_TOO_LONG")
        rcase("note of 2001 bytes", reply(alice, 0, self.cards["alice"], "n" * 2001),
              err="E_TOO_LONG")
        rcase("time as uint64", sign_statement(alice, TAG_REPLY, build_reply_body(
            iid, 0, self.cards["alice"], "hi", 0)[:-1] + b"\xcf" + u64be(t_a)),
            err="E_NONCANONICAL")

        # introductions
        t_i = NOW + 1800
        salts = (salt_a, salt_b)

        def intro(reply_a=rep_a, reply_b=rep_b, core_bytes=core, salts=salts, signer=carol,
                  time=t_i, intro_id=None, note="Alice, meet Bob.\nBob, meet Alice."):
            return sign_statement(signer, TAG_INTRODUCTION, build_introduction_body(
                core_bytes, salts[0], salts[1], reply_a, reply_b, note, time, intro_id=intro_id))

        good = intro()

        def icase(name, data, me="alice", my_reply=None, err=None, other=None):
            c = {"kind": "introduction", "name": name, "me": me,
                 "my_reply": (my_reply or (rep_a if me == "alice" else rep_b)).hex(),
                 "introduction": data.hex(), "skew": DEFAULT_SKEW}
            if not err:
                c["other"] = other
            self.add(c, err)

        icase("python: alice materialises bob", good, other="bob")
        icase("python: bob materialises alice", good, "bob", other="alice")
        icase("introduction signed at expiry + skew",
              intro(time=expires + DEFAULT_SKEW), other="bob")
        late_b = reply(bob, 1, self.cards["bob"], "", expires + DEFAULT_SKEW)
        icase("bob accepted at expiry + skew", intro(reply_b=late_b), other="bob")
        icase("replies swapped", intro(rep_b, rep_a), err="E_COMMITMENT")
        icase("salts swapped", intro(salts=(salt_b, salt_a)), err="E_COMMITMENT")
        icase("bob's decline in place of his accept", intro(reply_b=dec_b), err="E_REPLY_DECLINE")
        icase("signed by mallory", intro(signer=mallory), err="E_BAD_SIG")
        icase("signature byte flipped", flip(good), "bob", err="E_BAD_SIG")
        icase("intro id not H(core)", intro(intro_id=bytes(32)), err="E_INTRO_ID")
        icase("bob's reply re-signed by mallory",
              intro(reply_b=reply(mallory, 1, self.cards["bob"], "", t_b)), err="E_REPLY_SIG")
        icase("bob's reply for another intro",
              intro(reply_b=reply(bob, 1, self.cards["bob"], "", t_b, intro_id=bytes(32))),
              err="E_REPLY_INTRO")
        icase("bob's reply claims side a",
              intro(reply_b=reply(bob, 0, self.cards["bob"], "", t_b)), err="E_REPLY_SIDE")
        icase("bob accepted one second after expiry + skew",
              intro(reply_b=reply(bob, 1, self.cards["bob"], "", expires + DEFAULT_SKEW + 1)),
              err="E_SIGNED_LATE")
        icase("introduction signed one second after expiry + skew",
              intro(time=expires + DEFAULT_SKEW + 1), err="E_SIGNED_LATE")
        icase("alice's reply carries a broken card",
              intro(reply_a=reply(alice, 0, flip(self.cards["alice"]), "x")), err="E_BAD_SIG")
        icase("dave is not a party", good, "dave", my_reply=rep_a, err="E_NOT_MY_REPLY")
        other_rep_a = reply(alice, 0, self.cards["alice"], "A different note.")
        icase("alice's stored reply differs from the embedded one", good,
              my_reply=other_rep_a, err="E_NOT_MY_REPLY")
        icase("bob checks with alice's reply", good, "bob", my_reply=rep_a,
              err="E_NOT_MY_REPLY")
        # both sides alice
        core_aa = core_of(pk_b=alice.sign_pk)
        iid_aa = intro_id_of(core_aa)
        aa_a = reply(alice, 0, self.cards["alice"], "a", intro_id=iid_aa)
        aa_b = reply(alice, 1, self.cards["alice"], "b", intro_id=iid_aa)
        icase("alice on both sides", intro(aa_a, aa_b, core_bytes=core_aa), my_reply=aa_a,
              err="E_SAME_PARTY")
        icase("trailing byte", good + b"\x00", err="E_TRAILING")
        icase("cut short", good[:100], err="E_TRUNCATED")
        icase("embedded reply b cut short",
              intro(reply_b=rep_b[:-1]), err="E_TRUNCATED")
        icase("nine fields", sign_statement(carol, TAG_INTRODUCTION, enc(
            [iid, core, salt_a, salt_b, rep_a, rep_b, "n", t_i, 0])), err="E_COUNT")

        # close
        close = sign_statement(carol, TAG_CLOSE, build_close_body(iid))
        self.add({"kind": "close", "name": "python: carol closes", "connector": "carol",
                  "close": close.hex(), "intro_id": iid.hex()})
        for name, who, data, err in (
                ("claimed by mallory", "mallory", close, "E_BAD_SIG"),
                ("signed by mallory", "carol", sign_statement(mallory, TAG_CLOSE,
                                                              build_close_body(iid)), "E_BAD_SIG"),
                ("signed in the card domain", "carol",
                 sign_statement(carol, TAG_CARD, build_close_body(iid)), "E_BAD_SIG"),
                ("two fields", "carol", sign_statement(carol, TAG_CLOSE, enc([iid, 0])),
                 "E_COUNT"),
                ("intro id of 31 bytes", "carol",
                 sign_statement(carol, TAG_CLOSE, enc([iid[:31]])), "E_BAD_LENGTH")):
            self.add({"kind": "close", "name": name, "connector": who, "close": data.hex()}, err)

    def document(self):
        self.text_ids()
        self.card_cases()
        self.envelope_cases()
        self.direct_cases()  # direct (issue 17)
        self.intro_cases()
        return {
            "description": "twofold v1 vectors built and signed by the independent Python "
                           "implementation (tests/interop/verifier.py emit); see docs/PROTOCOL.md. "
                           "Each invalid case names the first error a verifier must report.",
            "generator": "tests/interop/verifier.py",
            "now": NOW,
            "skew": DEFAULT_SKEW,
            "identities": self.identities(),
            "valid": self.valid,
            "invalid": self.invalid,
        }


# --------------------------------------------------------------------------
# Probes: cases where the spec leaves the answer open

def probe_document(seeds_doc):
    """Each case carries the answer this file chose; a C failure marks a divergent reading."""
    e = Emitter(seeds_doc)
    alice = e.ids["alice"]
    base = card_entries(alice, *CARD_DATA["alice"][:4], ISSUED, 2)

    def with_(key, value_bytes):
        return [(k, value_bytes if k == key else v) for k, v in base]

    def card(name, err, body=None, signed=None):
        if signed is None:
            signed = sign_statement(alice, TAG_CARD, body)
        e.add({"kind": "card", "name": name, "signed": signed.hex()}, err)

    # Key 11 (mailboxes) is optional: an 11th entry is read as it.
    card("map of 11 entries, key 11 not an array", "E_TYPE",
         card_body_raw(base + [(11, enc(0))]))
    card("map of 11 entries, key 3 repeated at the end", "E_DUP_KEY",
         card_body_raw(base + [(3, enc(alice.noise_pk))]))
    card("map of 11 entries, empty mailbox list", "E_BAD_LENGTH",
         card_body_raw(base + [(11, enc([]))]))
    card("map of 11 entries, the owner as its own mailbox", "E_BAD_VALUE",
         card_body_raw(base + [(11, enc([[alice.sign_pk, ["192.0.2.1:7452"]]]))]))
    card("map of 11 entries, a mailbox without addresses", "E_BAD_LENGTH",
         card_body_raw(base + [(11, enc([[bytes(32), []]]))]))
    card("map of 11 entries, two mailboxes", None,
         card_body_raw(base + [(11, enc([[bytes(32), ["192.0.2.1:7452", "[2001:db8::1]:1"]],
                                          [bytes([1]) * 32, ["mbox.example:7452"]]]))]))
    card("map of 12 entries", "E_COUNT",
         card_body_raw(base + [(11, enc([[bytes(32), ["192.0.2.1:7452"]]])), (12, enc(0))]))
    card("map of 9 entries (key 10 missing), body otherwise fine", "E_COUNT",
         card_body_raw(base[:9]))
    card("map of 9 entries (key 9 missing)", "E_COUNT", card_body_raw(base[:8] + base[9:]))
    card("map of 9 entries, but name is empty", "E_COUNT",
         card_body_raw(with_(5, enc(""))[:9]))
    card("key 6 repeated in place of key 10 (not adjacent)", "E_DUP_KEY",
         card_body_raw(base[:9] + [(6, enc([]))]))
    card("string key '1'", "E_BAD_KEY", b"\x8a" + enc("1") + base[0][1]
         + b"".join(enc(k) + v for k, v in base[1:]))
    card("map header as map16 with 10 entries", "E_NONCANONICAL",
         b"\xde\x00\x0a" + card_body_raw(base)[1:])
    card("empty tag in offers", "E_BAD_LENGTH", card_body_raw(with_(7, enc([""]))))
    card("name of 65 bytes with an invalid UTF-8 byte", "E_TOO_LONG",
         card_body_raw(with_(5, b"\xd9\x41" + b"\xff" + b"a" * 64)))
    card("name with a control byte and then invalid UTF-8", "E_BAD_UTF8",
         card_body_raw(with_(5, b"\xa3\x01a\xff")))
    card("bad offer tag, then seeks of the wrong type", "E_BAD_VALUE",
         card_body_raw(with_(7, enc(["Bad"]))[:7] + [(8, b"\xc0")] + base[8:]))
    card("bad address, then offers of the wrong type", "E_BAD_VALUE",
         card_body_raw(with_(6, enc(["nope"]))[:6] + [(7, b"\xc0")] + base[7:]))
    card("addr '[]:80'", "E_BAD_VALUE", card_body_raw(with_(6, enc(["[]:80"]))))
    card("addr '[::1]:80' accepted", None, card_body_raw(with_(6, enc(["[::1]:80"]))))
    card("addr '[FE80::1]:80' accepted", None, card_body_raw(with_(6, enc(["[FE80::1]:80"]))))
    card("addr 'a..b:1' accepted (dots only restricted at the start)", None,
         card_body_raw(with_(6, enc(["a..b:1"]))))
    card("addr 'host-:1' accepted (only the start is restricted)", None,
         card_body_raw(with_(6, enc(["host-:1"]))))
    card("array header of addrs as array16 with 1 entry", "E_NONCANONICAL",
         card_body_raw(with_(6, b"\xdc\x00\x01" + enc("a:1"))))
    card("statement body of 0 bytes", "E_BAD_LENGTH", signed=enc([b"", bytes(64)]))
    e.add({"kind": "envelope", "name": "sealed box of 48 bytes", "recipient": "bob", "now": NOW,
           "envelope": enc([1, bytes(16), e.ids["bob"].sign_pk, NOW, bytes(48)]).hex()},
          "E_BAD_LENGTH")
    sig = sign(alice.sign_sk, TAG_CARD, card_body_raw(base))
    big = card_body_raw(base) + bytes(4100)
    card("card over 4096 bytes with trailing bytes in its body", "E_TOO_LONG",
         signed=enc([big, sig]))
    card("array declares 2^16 elements in a short buffer", "E_TRUNCATED",
         signed=b"\xdd\x00\x01\x00\x00" + enc(b"x"))
    card("wrapper array of 3 declared in a 1-byte buffer", "E_TRUNCATED", signed=b"\x93")
    card("wrapper array of 3 with enough bytes", "E_COUNT", signed=b"\x93\x01\x01\x01")
    card("name str8 declares 200 bytes past the end", "E_TRUNCATED",
         card_body_raw(with_(5, b"\xd9\xc8abc")))
    at = card_to_text(e.cards["alice"])
    for text, err, why in ((at + "==", "E_BAD_ENCODING", "with '=' padding"),
                           ("\u00a0" + at, "E_BAD_PREFIX", "leading no-break space"),
                           (at[:30] + "\u00e9" + at[31:], "E_BAD_ENCODING",
                            "U+00E9 (2-byte UTF-8) inside the base64url"),
                           (at[:-1] + "\u0080", "E_BAD_ENCODING",
                            "U+0080 (2-byte UTF-8) as the last character"),
                           (at[:30] + "\u20ac" + at[31:], "E_BAD_ENCODING",
                            "U+20AC (3-byte UTF-8) inside the base64url")):
        e.add({"kind": "card_text", "name": why, "text": text}, err)
    # reply card_x over 4096 bytes: format bound or card-check bound?
    iid = bytes(32)
    big_card = e.cards["alice"] + bytes(4100 - len(e.cards["alice"]))
    rep = sign_statement(e.ids["mallory"], TAG_REPLY, build_reply_body(iid, 0, big_card, "", 1))
    e.add({"kind": "reply", "name": "card_x over 4096 bytes, signed by the wrong key",
           "signer": "alice", "intro_id": iid.hex(), "side": 0, "reply": rep.hex()},
          "E_TOO_LONG")
    # core: bad mode followed by trailing bytes
    core = build_core(e.ids["carol"], alice.sign_pk, bytes(32), e.ids["bob"].sign_pk,
                      bytes(32), "x", 1, 2, 2) + b"\x00"
    prop = sign_statement(e.ids["carol"], TAG_PROPOSAL, build_proposal_body(
        core, 0, bytes(32), e.cards["carol"], "", ""))
    e.add({"kind": "proposal", "name": "core mode 2 plus trailing byte", "recipient": "alice",
           "now": NOW, "skew": DEFAULT_SKEW, "proposal": prop.hex()}, "E_BAD_VALUE")
    for why, kw in (("version 2", dict(version=2)), ("topic 'X'", dict(topic="X")),
                    ("expires == created", dict(expires=1))):
        f = dict(version=1, topic="x", expires=2)
        f.update(kw)
        core = enc([f["version"], e.ids["carol"].sign_pk, bytes(32), bytes(32), f["topic"], 1,
                    f["expires"], 0]) + b"\x00"
        prop = sign_statement(e.ids["carol"], TAG_PROPOSAL, build_proposal_body(
            core, 0, bytes(32), e.cards["carol"], "", ""))
        e.add({"kind": "proposal", "name": "core %s plus trailing byte" % why,
               "recipient": "alice", "now": NOW, "skew": DEFAULT_SKEW, "proposal": prop.hex()},
              "E_BAD_VALUE" if "version" not in kw else "E_VERSION")
    core = enc([1, e.ids["carol"].sign_pk, bytes(32), bytes(32), "X", 1, 2, "zero"])
    prop = sign_statement(e.ids["carol"], TAG_PROPOSAL, build_proposal_body(
        core, 0, bytes(32), e.cards["carol"], "", ""))
    e.add({"kind": "proposal", "name": "core topic 'X', then mode of the wrong type",
           "recipient": "alice", "now": NOW, "skew": DEFAULT_SKEW, "proposal": prop.hex()},
          "E_BAD_VALUE")
    for why, body in (("side 2", [iid, 2, 1, e.cards["alice"], "", None, 1]),
                      ("decision 2", [iid, 0, 2, e.cards["alice"], "", None, 1])):
        rep = sign_statement(alice, TAG_REPLY, enc(body) + b"\x00")
        e.add({"kind": "reply", "name": "%s plus trailing byte in the body" % why,
               "signer": "alice", "intro_id": iid.hex(), "side": 0, "reply": rep.hex()},
              "E_BAD_VALUE")
    # materialisation: times near 2^64 (does expires + skew wrap around?)
    carol, bob = e.ids["carol"], e.ids["bob"]
    created, expires = (1 << 64) - 1000, (1 << 64) - 100
    core = build_core(carol, alice.sign_pk, bytes(32), bob.sign_pk, b"\x01" * 32, "x", created,
                      expires, 0)
    big_iid = intro_id_of(core)
    rep_a = sign_statement(alice, TAG_REPLY, build_reply_body(big_iid, 0, e.cards["alice"], "",
                                                              expires + 50))
    rep_b = sign_statement(bob, TAG_REPLY, build_reply_body(big_iid, 1, e.cards["bob"], "",
                                                            expires))
    intro = sign_statement(carol, TAG_INTRODUCTION, build_introduction_body(
        core, bytes(32), b"\x01" * 32, rep_a, rep_b, "", expires))
    e.add({"kind": "introduction", "name": "expires near 2^64, reply at expires + 50",
           "me": "alice", "my_reply": rep_a.hex(), "introduction": intro.hex(),
           "skew": DEFAULT_SKEW, "other": "bob"})
    # materialisation: my_reply that does not decode
    e.add({"kind": "introduction", "name": "my_reply is one byte",
           "me": "alice", "my_reply": "92", "introduction": intro.hex(),
           "skew": DEFAULT_SKEW}, "E_NOT_MY_REPLY")
    # envelope over 65000 bytes that is also version 2
    e.add({"kind": "envelope", "name": "over 65000 bytes and version 2", "recipient": "bob",
           "now": NOW, "envelope": enc([2, bytes(16), bob.sign_pk, NOW, bytes(65000)]).hex()},
          "E_TOO_LONG")
    # proposal: side 2 and a bad core: body first or core first?
    prop = sign_statement(e.ids["carol"], TAG_PROPOSAL, build_proposal_body(
        b"\x00", 2, bytes(32), e.cards["carol"], "", ""))
    e.add({"kind": "proposal", "name": "side 2 and a core that is not an array",
           "recipient": "alice", "now": NOW, "skew": DEFAULT_SKEW, "proposal": prop.hex()},
          "E_BAD_VALUE")
    return {"description": "ambiguity probes from tests/interop/verifier.py probe; each "
                           "expected result is the Python reading of an open point",
            "generator": "tests/interop/verifier.py probe", "now": NOW, "skew": DEFAULT_SKEW,
            "identities": e.identities(), "valid": e.valid, "invalid": e.invalid}


# --------------------------------------------------------------------------

def main(argv):
    if len(argv) < 3 or argv[1] not in ("check", "emit", "probe"):
        sys.stderr.write(__doc__)
        return 2
    cmd, path = argv[1], argv[2]
    opts = dict(zip(argv[3::2], argv[4::2]))
    if cmd == "check":
        return cmd_check(path, opts.get("--doc"))
    with open(opts.get("--seeds", DEFAULT_VECTORS), encoding="utf-8") as f:
        seeds = json.load(f)
    out = Emitter(seeds).document() if cmd == "emit" else probe_document(seeds)
    with open(path, "w", encoding="utf-8") as f:
        json.dump(out, f, indent=1, ensure_ascii=False)
        f.write("\n")
    print("%s: wrote %d valid and %d invalid cases" % (path, len(out["valid"]),
                                                       len(out["invalid"])))
    if cmd == "probe":
        return 0
    # Everything emitted must also pass this implementation's own check.
    log = io.StringIO()
    rc = cmd_check(path, out=log)
    if rc != 0:
        sys.stderr.write("emit: the file fails its own check:\n" + log.getvalue())
    return rc


if __name__ == "__main__":
    sys.exit(main(sys.argv))
