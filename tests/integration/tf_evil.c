/* SPDX-License-Identifier: MIT */
/*
 * tf-evil: a malicious connector for the integration tests (test_evil.py).
 * It speaks the real protocol (docs/PROTOCOL.md §7-§9) as the identity of a
 * home on which no daemon runs, with plain blocking POSIX sockets, and builds
 * introductions a node must refuse.  State is kept in files in a work
 * directory (--dir), so the test can drive it step by step:
 *
 *   tf-evil propose --home HOME --listen ADDR --dir DIR --intro NAME
 *                   --a CARD --a-addr HOST:PORT --b CARD --b-addr HOST:PORT
 *                   [--salt-a NAME2:SIDE] [--salt-b NAME2:SIDE]
 *                   [--ask a|b|ab] [--topic TAG]
 *       builds intro NAME (connector: HOME's identity, side a and side b
 *       given by their cards), stores it as DIR/intro-NAME.mp, prints
 *       "intro NAME id HEX" and sends a signed proposal to each side in
 *       --ask (default ab) at its address, printing the ACK of each.  A salt
 *       may be taken from an intro made before (--salt-a X:a: the salt of X's
 *       side a), so that a party's commitment is the same in both.  Exit 0
 *       when every proposal was ACKed ok.
 *
 *   tf-evil listen --home HOME --listen ADDR --dir DIR [--hold-ms MS]
 *       listens on ADDR as HOME's identity (prints "listening"), answers the
 *       nodes' handshakes with its card, takes their envelopes, ACKs them and
 *       keeps each reply it opens as DIR/reply-<intro id hex>-<a|b>-<accept|
 *       decline>.bin (the signed reply, as received), printing a line for
 *       each.  Runs until SIGTERM or SIGINT (or --hold-ms), then exits 0.
 *
 *   tf-evil introduce --home HOME --listen ADDR --dir DIR --intro NAME
 *                     --to a|b --reply-a SPEC --reply-b SPEC [--note TEXT]
 *       signs an introduction of intro NAME carrying the replies SPEC and
 *       sends it to the party on side --to, printing "... ack S/R (...)".
 *       SPEC is one of
 *         accept:NAME2:SIDE   the acceptance received for NAME2's SIDE
 *         decline:NAME2:SIDE  the decline received for NAME2's SIDE
 *         forge:NAME2:SIDE    an acceptance for NAME2's SIDE carrying that
 *                             party's card, but signed by HOME's key
 *       Exit 0 when an ACK came (whatever it said), 1 otherwise.
 *
 * Every subcommand presents a card it signs itself (name "Mallory", the
 * --listen address, seq 1).  While a link it opened is up, the tool also
 * takes envelopes the node sends on it (as the listener does).
 */
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <sodium.h>

#include "hostile/peer.h"
#include "node/home.h"
#include "node/keys.h"
#include "proto/card.h"
#include "proto/envelope.h"
#include "proto/intro.h"
#include "proto/link.h"
#include "proto/noise.h"
#include "proto/statement.h"

#define EVIL_NAME "Mallory"
#define EVIL_TIMEOUT_MS 10000
#define EVIL_CONNS_MAX 16
#define EVIL_INTRO_NAME_MAX 32
/* Intros live a week; envelopes carrying intro objects 30 days longer (§11). */
#define EVIL_INTRO_TTL (7 * 86400)
#define EVIL_ENVELOPE_EXTRA (30 * 86400)

/* Options, all subcommands. */
struct opts {
    const char *home, *listen, *dir, *intro, *topic, *ask, *to, *note;
    const char *card[2], *addr[2], *salt_from[2], *reply[2];
    long hold_ms, timeout_ms;
};

/* What every subcommand works with. */
struct ctx {
    struct tf_proto_identity id;
    struct tf_proto_buf card; /* our signed card */
    const char *dir;
    long timeout_ms;
    unsigned replies; /* replies saved */
};

/* One link with a node, either direction. */
struct conn {
    int fd;
    int stage; /* responder: 0 wants msg 1, 1 wants msg 3, 2 wants HELLO, 3 up */
    struct tf_proto_noise_handshake hs;
    struct tf_proto_noise_cipher tx, rx;
    uint8_t peer_pk[TF_PROTO_KEY_LEN];
    char peer[TF_PROTO_TEXT_ID_SIZE];
};

/* An intro as stored by propose. */
struct intro_state {
    struct tf_proto_buf raw; /* the file; the views point into it */
    struct tf_proto_bytes core_bytes;
    struct tf_proto_intro_core core;
    uint8_t id[TF_PROTO_INTRO_ID_LEN];
    char hex[2 * TF_PROTO_INTRO_ID_LEN + 1];
    uint8_t salt[2][TF_PROTO_SALT_LEN];
    struct tf_proto_bytes card[2]; /* signed cards of side a and b */
    struct tf_proto_card fields[2];
    char addr[2][TF_PROTO_CARD_ADDR_MAX + 1];
};

static volatile sig_atomic_t stop_flag;

static void on_signal(int sig)
{
    (void)sig;
    stop_flag = 1;
}

static uint64_t now_s(void)
{
    return (uint64_t)time(NULL);
}

static char side_char(int side)
{
    return side == 0 ? 'a' : 'b';
}

/* Sockets and frames. */

/* Files. */

static int write_file(const char *dir, const char *leaf, const uint8_t *p, size_t n)
{
    char path[TF_NODE_PATH_MAX], tmp[TF_NODE_PATH_MAX];
    if (snprintf(path, sizeof path, "%s/%s", dir, leaf) >= (int)sizeof path ||
        snprintf(tmp, sizeof tmp, "%s/.%s.tmp", dir, leaf) >= (int)sizeof tmp)
        return -1;
    FILE *f = fopen(tmp, "wb");
    if (f == NULL)
        return -1;
    bool ok = fwrite(p, 1, n, f) == n;
    ok = fclose(f) == 0 && ok;
    if (!ok || rename(tmp, path) != 0) {
        (void)unlink(tmp);
        return -1;
    }
    return 0;
}

/* Reads DIR/leaf into *out (owned by the caller).  -1 if it cannot. */
static int read_file(const char *dir, const char *leaf, struct tf_proto_buf *out)
{
    char path[TF_NODE_PATH_MAX];
    memset(out, 0, sizeof *out);
    if (snprintf(path, sizeof path, "%s/%s", dir, leaf) >= (int)sizeof path)
        return -1;
    FILE *f = fopen(path, "rb");
    if (f == NULL)
        return -1;
    size_t cap = 4096, len = 0;
    uint8_t *data = malloc(cap);
    while (data != NULL) {
        len += fread(data + len, 1, cap - len, f);
        if (len < cap)
            break;
        uint8_t *bigger = cap < (1u << 20) ? realloc(data, cap * 2) : NULL;
        if (bigger == NULL) {
            free(data);
            data = NULL;
            break;
        }
        data = bigger;
        cap *= 2;
    }
    bool ok = data != NULL && !ferror(f);
    fclose(f);
    if (!ok) {
        free(data);
        return -1;
    }
    out->data = data;
    out->len = len;
    return 0;
}

/* Identity and card. */

static int ctx_init(struct ctx *x, const struct opts *o)
{
    char key[TF_NODE_PATH_MAX], why[512] = "cannot build the key path";
    memset(x, 0, sizeof *x);
    x->dir = o->dir;
    x->timeout_ms = o->timeout_ms;
    if (tf_node_home_path(o->home, TF_NODE_HOME_KEY, key, sizeof key) != 0 ||
        tf_node_keys_load(key, &x->id, why, sizeof why) != 0) {
        fprintf(stderr, "tf-evil: %s\n", why);
        return -1;
    }
    struct tf_proto_card c;
    memset(&c, 0, sizeof c);
    memcpy(c.sign_pk, x->id.sign_pk, TF_PROTO_KEY_LEN);
    memcpy(c.noise_pk, x->id.noise_pk, TF_PROTO_KEY_LEN);
    memcpy(c.box_pk, x->id.box_pk, TF_PROTO_KEY_LEN);
    c.name = (struct tf_proto_bytes){(const uint8_t *)EVIL_NAME, strlen(EVIL_NAME)};
    c.n_addrs = 1;
    c.addrs[0] = (struct tf_proto_bytes){(const uint8_t *)o->listen, strlen(o->listen)};
    c.issued = now_s();
    c.seq = 1;
    int rc = tf_proto_card_sign(&x->id, &c, &x->card);
    if (rc != TF_OK) {
        fprintf(stderr, "tf-evil: cannot sign my card: %s\n", tf_strerror(rc));
        tf_proto_identity_deinit(&x->id);
        return -1;
    }
    return 0;
}

static void ctx_deinit(struct ctx *x)
{
    tf_proto_buf_free(&x->card);
    tf_proto_identity_deinit(&x->id);
}

/* Links. */

static void conn_init(struct conn *c)
{
    memset(c, 0, sizeof *c);
    c->fd = -1;
}

static void conn_close(struct conn *c)
{
    if (c->fd >= 0)
        close(c->fd);
    tf_proto_noise_handshake_deinit(&c->hs);
    tf_proto_noise_cipher_deinit(&c->tx);
    tf_proto_noise_cipher_deinit(&c->rx);
    conn_init(c);
}

static int conn_send(struct conn *c, const struct tf_proto_buf *msg)
{
    static uint8_t ct[TF_PROTO_NOISE_MSG_MAX];
    size_t n;
    int rc = tf_proto_noise_cipher_encrypt(&c->tx, msg->data, msg->len, ct, sizeof ct, &n);
    if (rc != TF_OK)
        return rc;
    return hp_send_frame(c->fd, ct, n) == 0 ? TF_OK : TF_E_BAD_STATE;
}

/* Sends a link message built by one of the tf_proto_link_* encoders (rc is
 * what the encoder returned). */
static int conn_send_built(struct conn *c, int rc, struct tf_proto_buf *msg)
{
    if (rc == TF_OK)
        rc = conn_send(c, msg);
    tf_proto_buf_free(msg);
    return rc;
}

/* Decrypts and decodes one transport frame in place. */
static int conn_decode(struct conn *c, uint8_t *buf, size_t n, struct tf_proto_link_msg *m)
{
    size_t plen;
    int rc = tf_proto_noise_cipher_decrypt(&c->rx, buf, n, buf, n, &plen);
    return rc == TF_OK ? tf_proto_link_decode(buf, plen, m) : rc;
}

/* Starts an XX handshake in the given role with our noise key. */
static int hs_start(struct conn *c, const struct ctx *x, enum tf_proto_noise_role role)
{
    uint8_t e[TF_PROTO_NOISE_KEY_LEN];
    randombytes_buf(e, sizeof e);
    struct tf_proto_noise_config cfg = {
        .pattern = TF_PROTO_NOISE_PATTERN_XX,
        .role = role,
        .prologue = (const uint8_t *)TF_PROTO_NOISE_PROLOGUE,
        .prologue_len = TF_PROTO_NOISE_PROLOGUE_LEN,
        .s_sk = tf_proto_identity_noise_sk(&x->id),
        .e_sk = e,
    };
    int rc = tf_proto_noise_handshake_init(&c->hs, &cfg);
    sodium_memzero(e, sizeof e);
    return rc;
}

/* Checks the card a handshake message carried: it verifies and names the
 * remote static key; records the peer. */
static int hs_peer_card(struct conn *c, const uint8_t *payload, size_t len)
{
    struct tf_proto_card card;
    size_t card_len; /* the card, then zero padding (docs/PROTOCOL.md §9) */
    int rc = tf_proto_link_hs_payload_card(payload, len, &card_len);
    if (rc == TF_OK)
        rc = tf_proto_card_verify(payload, card_len, &card);
    if (rc != TF_OK)
        return rc;
    const uint8_t *rs = tf_proto_noise_handshake_remote_static(&c->hs);
    if (rs == NULL || sodium_memcmp(rs, card.noise_pk, TF_PROTO_KEY_LEN) != 0)
        return TF_E_KEY_MISMATCH;
    memcpy(c->peer_pk, card.sign_pk, TF_PROTO_KEY_LEN);
    tf_proto_text_id_encode(card.sign_pk, c->peer);
    return TF_OK;
}

static int send_ack(struct conn *c, const uint8_t msg_id[TF_PROTO_MSG_ID_LEN],
                    enum tf_proto_ack_reason reason)
{
    struct tf_proto_buf ack = {0};
    int rc =
        tf_proto_link_ack(msg_id, reason ? TF_PROTO_ACK_REJECTED : TF_PROTO_ACK_OK, reason, &ack);
    return conn_send_built(c, rc, &ack);
}

/* Keeps a reply from the peer: verified as the connector would (signed by the
 * sender, for the intro and side it names), saved under DIR.  Returns the ACK
 * reason. */
static enum tf_proto_ack_reason keep_reply(struct ctx *x, struct conn *c,
                                           const struct tf_proto_envelope_opened *o)
{
    struct tf_proto_statement st;
    struct tf_proto_reply r;
    uint8_t intro_id[TF_PROTO_INTRO_ID_LEN];
    int rc = tf_proto_reply_decode(o->body.ptr, o->body.len, &st, &r);
    if (rc == TF_OK) {
        memcpy(intro_id, r.intro_id, sizeof intro_id);
        rc = tf_proto_reply_verify(o->from_pk, intro_id, r.side, o->body.ptr, o->body.len, &r);
    }
    if (rc != TF_OK) {
        printf("reply from %s refused: %s\n", c->peer, tf_err_name(rc));
        fflush(stdout);
        return TF_PROTO_ACK_REASON_INVALID;
    }
    char hex[2 * TF_PROTO_INTRO_ID_LEN + 1], leaf[128];
    sodium_bin2hex(hex, sizeof hex, r.intro_id, sizeof r.intro_id);
    const char *decision = r.decision == TF_PROTO_DECISION_ACCEPT ? "accept" : "decline";
    snprintf(leaf, sizeof leaf, "reply-%s-%c-%s.bin", hex, side_char((int)r.side), decision);
    if (write_file(x->dir, leaf, o->body.ptr, o->body.len) != 0) {
        printf("reply from %s: cannot save %s/%s: %s\n", c->peer, x->dir, leaf, strerror(errno));
        fflush(stdout);
        return (enum tf_proto_ack_reason) - 1;
    }
    x->replies++;
    printf("reply intro=%s side=%c decision=%s from=%s saved=%s\n", hex, side_char((int)r.side),
           decision, c->peer, leaf);
    fflush(stdout);
    return TF_PROTO_ACK_REASON_NONE;
}

/* An ENVELOPE from the peer: opened, kept if it is a reply, ACKed. */
static int on_envelope(struct ctx *x, struct conn *c, struct tf_proto_bytes env)
{
    struct tf_proto_envelope e;
    struct tf_proto_envelope_opened o;
    struct tf_proto_buf plain = {0};
    enum tf_proto_ack_reason reason;
    if (tf_proto_envelope_decode(env.ptr, env.len, &e) != TF_OK)
        return 0; /* no msg id: nothing to ACK */
    int rc = tf_proto_envelope_open(&x->id, env.ptr, env.len, now_s(), &plain, &o);
    if (rc != TF_OK)
        reason = tf_proto_ack_reason_for(rc);
    else if (sodium_memcmp(o.from_pk, c->peer_pk, TF_PROTO_KEY_LEN) != 0)
        reason = TF_PROTO_ACK_REASON_NOT_PEER;
    else if (o.type == TF_PROTO_MSG_TYPE_REPLY)
        reason = keep_reply(x, c, &o);
    else
        reason = TF_PROTO_ACK_REASON_NONE;
    if (rc == TF_OK && o.type != TF_PROTO_MSG_TYPE_REPLY) {
        printf("envelope of type %u from %s taken\n", (unsigned)o.type, c->peer);
        fflush(stdout);
    }
    tf_proto_buf_free(&plain);
    if ((int)reason < 0)
        return 0; /* not kept: no ACK, the node retries */
    return send_ack(c, e.msg_id, reason) == TF_OK ? 0 : -1;
}

/* A link message on an up link.  Returns -1 when the link should close. */
static int on_link_msg(struct ctx *x, struct conn *c, const struct tf_proto_link_msg *m)
{
    struct tf_proto_buf out = {0};
    switch (m->type) {
    case TF_PROTO_LINK_PING:
        return conn_send_built(c, tf_proto_link_ping(TF_PROTO_LINK_PONG, m->nonce, &out), &out) ==
                       TF_OK
                   ? 0
                   : -1;
    case TF_PROTO_LINK_ENVELOPE:
        return on_envelope(x, c, m->envelope);
    case TF_PROTO_LINK_BYE:
    case TF_PROTO_LINK_ERROR:
        return -1;
    default:
        return 0; /* HELLO again, PONG, a stray ACK: ignored */
    }
}

/* Dials addr as initiator, completes the handshake (the node's card must
 * name expect_pk) and the HELLO exchange.  Prints why on failure. */
static int conn_dial(struct conn *c, const struct ctx *x, const char *addr,
                     const uint8_t expect_pk[TF_PROTO_KEY_LEN])
{
    static uint8_t buf[TF_PROTO_NOISE_MSG_MAX], payload[TF_PROTO_NOISE_MSG_MAX];
    uint64_t deadline = hp_now_ms() + (uint64_t)x->timeout_ms;
    struct hp_target t;
    struct tf_proto_link_msg m;
    struct tf_proto_buf hello = {0};
    size_t len, plen;
    const char *what = "connect";
    int rc = TF_OK, one = 1;
    conn_init(c);
    if (hp_parse_target(addr, &t) != 0) {
        printf("cannot reach %s: not an IP:PORT address\n", addr);
        return -1;
    }
    c->fd = socket(t.addr.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (c->fd < 0 || connect(c->fd, (const struct sockaddr *)&t.addr, t.addr_len) != 0) {
        printf("cannot reach %s: %s\n", addr, strerror(errno));
        conn_close(c);
        return -1;
    }
    (void)setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    what = "noise message 1";
    rc = hs_start(c, x, TF_PROTO_NOISE_ROLE_INITIATOR);
    if (rc == TF_OK)
        rc = tf_proto_noise_handshake_write(&c->hs, NULL, 0, buf, sizeof buf, &len);
    if (rc == TF_OK && hp_send_frame(c->fd, buf, len) != 0)
        rc = TF_E_BAD_STATE;
    long n = -1;
    if (rc == TF_OK) {
        what = "noise message 2";
        n = hp_recv_frame_len(c->fd, buf, deadline);
        rc = n < 0 ? TF_E_TRUNCATED : TF_OK;
    }
    if (rc == TF_OK)
        rc = tf_proto_noise_handshake_read(&c->hs, buf, (size_t)n, payload, sizeof payload, &plen);
    if (rc == TF_OK) {
        what = "the node's card";
        rc = hs_peer_card(c, payload, plen);
    }
    if (rc == TF_OK && sodium_memcmp(c->peer_pk, expect_pk, TF_PROTO_KEY_LEN) != 0)
        rc = TF_E_KEY_MISMATCH;
    if (rc == TF_OK) {
        what = "noise message 3";
        rc = tf_proto_noise_handshake_write(&c->hs, x->card.data, x->card.len, buf, sizeof buf,
                                            &len);
    }
    if (rc == TF_OK && hp_send_frame(c->fd, buf, len) != 0)
        rc = TF_E_BAD_STATE;
    if (rc == TF_OK)
        rc = tf_proto_noise_handshake_split(&c->hs, &c->tx, &c->rx);
    tf_proto_noise_handshake_deinit(&c->hs);
    if (rc == TF_OK) {
        what = "HELLO";
        rc = conn_send_built(c, tf_proto_link_hello(NULL, 0, &hello), &hello);
    }
    if (rc == TF_OK) {
        what = "the node's HELLO";
        n = hp_recv_frame_len(c->fd, buf, deadline);
        rc = n < 0 ? TF_E_TRUNCATED : conn_decode(c, buf, (size_t)n, &m);
        if (rc == TF_OK && (m.type != TF_PROTO_LINK_HELLO || m.version != TF_PROTO_LINK_VERSION))
            rc = TF_E_BAD_VALUE;
    }
    if (rc != TF_OK) {
        printf("cannot set up a link with %s (%s: %s)\n", addr, what, tf_err_name(rc));
        conn_close(c);
        return -1;
    }
    return 0;
}

/* Says BYE and closes. */
static void conn_bye(struct conn *c)
{
    struct tf_proto_buf bye = {0};
    (void)conn_send_built(c, tf_proto_link_bye(&bye), &bye);
    conn_close(c);
}

/* Seals body (of the given type) to the identity named by card, sends it on
 * a fresh link to addr and waits for its ACK, serving whatever else the node
 * sends meanwhile.  *status and *reason get the ACK's fields; -1 if no ACK
 * came. */
static int deliver(struct ctx *x, const char *addr, const struct tf_proto_card *to, uint16_t type,
                   const struct tf_proto_buf *body, uint64_t expires, uint64_t *status,
                   uint64_t *reason)
{
    static uint8_t buf[TF_PROTO_NOISE_MSG_MAX];
    uint8_t msg_id[TF_PROTO_MSG_ID_LEN];
    struct tf_proto_buf env = {0}, msg = {0};
    struct conn c;
    randombytes_buf(msg_id, sizeof msg_id);
    int rc = tf_proto_envelope_seal(&x->id, to->sign_pk, to->box_pk, msg_id, expires, type,
                                    body->data, body->len, &env);
    if (rc == TF_OK)
        rc = tf_proto_link_envelope(env.data, env.len, &msg);
    tf_proto_buf_free(&env);
    if (rc != TF_OK) {
        printf("cannot seal the envelope: %s\n", tf_err_name(rc));
        tf_proto_buf_free(&msg);
        return -1;
    }
    if (conn_dial(&c, x, addr, to->sign_pk) != 0) {
        tf_proto_buf_free(&msg);
        return -1;
    }
    rc = conn_send_built(&c, TF_OK, &msg);
    uint64_t deadline = hp_now_ms() + (uint64_t)x->timeout_ms;
    bool acked = false;
    while (rc == TF_OK && !acked) {
        struct tf_proto_link_msg m;
        long n = hp_recv_frame_len(c.fd, buf, deadline);
        if (n < 0 || conn_decode(&c, buf, (size_t)n, &m) != TF_OK)
            break;
        if (m.type == TF_PROTO_LINK_ACK && memcmp(m.msg_id, msg_id, sizeof msg_id) == 0) {
            *status = m.status;
            *reason = m.reason;
            acked = true;
        } else if (on_link_msg(x, &c, &m) != 0) {
            break;
        }
    }
    if (!acked)
        printf("no ACK from %s\n", addr);
    conn_bye(&c);
    return acked ? 0 : -1;
}

/* Intro state files. */

static bool intro_name_ok(const char *name)
{
    size_t n = strlen(name);
    if (n < 1 || n > EVIL_INTRO_NAME_MAX)
        return false;
    for (size_t i = 0; i < n; i++) {
        char ch = name[i];
        if (!((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
              ch == '-' || ch == '_'))
            return false;
    }
    return true;
}

static void intro_free(struct intro_state *s)
{
    tf_proto_buf_free(&s->raw);
    memset(s, 0, sizeof *s);
}

/* Loads DIR/intro-NAME.mp.  Prints why on failure. */
static int intro_load(const char *dir, const char *name, struct intro_state *s)
{
    char leaf[64];
    memset(s, 0, sizeof *s);
    if (!intro_name_ok(name)) {
        fprintf(stderr, "tf-evil: bad intro name '%s'\n", name);
        return -1;
    }
    snprintf(leaf, sizeof leaf, "intro-%s.mp", name);
    if (read_file(dir, leaf, &s->raw) != 0) {
        fprintf(stderr, "tf-evil: no intro %s in %s (propose it first)\n", name, dir);
        return -1;
    }
    struct tf_proto_mp_reader r;
    struct tf_proto_bytes addr;
    tf_proto_mp_reader_init(&r, s->raw.data, s->raw.len);
    int rc = tf_proto_mp_read_array_exact(&r, 7);
    if (rc == TF_OK)
        rc = tf_proto_mp_read_bin(&r, 1, TF_PROTO_BODY_MAX, &s->core_bytes);
    for (int i = 0; i < 2 && rc == TF_OK; i++)
        rc = tf_proto_mp_read_bin_fixed(&r, s->salt[i], TF_PROTO_SALT_LEN);
    for (int i = 0; i < 2 && rc == TF_OK; i++)
        rc = tf_proto_mp_read_bin(&r, 1, TF_PROTO_CARD_SIGNED_MAX, &s->card[i]);
    for (int i = 0; i < 2 && rc == TF_OK; i++) {
        rc = tf_proto_mp_read_str(&r, 1, TF_PROTO_CARD_ADDR_MAX, TF_PROTO_TEXT_LINE, &addr);
        if (rc == TF_OK) {
            memcpy(s->addr[i], addr.ptr, addr.len);
            s->addr[i][addr.len] = '\0';
        }
    }
    if (rc == TF_OK)
        rc = tf_proto_mp_read_end(&r);
    if (rc == TF_OK)
        rc = tf_proto_intro_core_decode(s->core_bytes.ptr, s->core_bytes.len, &s->core);
    for (int i = 0; i < 2 && rc == TF_OK; i++)
        rc = tf_proto_card_verify(s->card[i].ptr, s->card[i].len, &s->fields[i]);
    if (rc != TF_OK) {
        fprintf(stderr, "tf-evil: intro %s in %s is corrupt: %s\n", name, dir, tf_err_name(rc));
        intro_free(s);
        return -1;
    }
    tf_proto_intro_id(s->core_bytes.ptr, s->core_bytes.len, s->id);
    sodium_bin2hex(s->hex, sizeof s->hex, s->id, sizeof s->id);
    return 0;
}

/* "NAME:SIDE" -> the intro (loaded into *s) and the side.  Prints why on
 * failure. */
static int intro_side_arg(const char *dir, const char *arg, struct intro_state *s, int *side)
{
    char name[EVIL_INTRO_NAME_MAX + 1];
    const char *colon = strrchr(arg, ':');
    size_t n = colon != NULL ? (size_t)(colon - arg) : 0;
    if (colon == NULL || n == 0 || n > EVIL_INTRO_NAME_MAX ||
        (strcmp(colon + 1, "a") != 0 && strcmp(colon + 1, "b") != 0)) {
        fprintf(stderr, "tf-evil: '%s' is not NAME:a or NAME:b\n", arg);
        return -1;
    }
    memcpy(name, arg, n);
    name[n] = '\0';
    *side = colon[1] == 'a' ? 0 : 1;
    return intro_load(dir, name, s);
}

/* propose */

static int propose(const struct opts *o)
{
    if (o->dir == NULL || o->intro == NULL || o->card[0] == NULL || o->card[1] == NULL ||
        o->addr[0] == NULL || o->addr[1] == NULL || !intro_name_ok(o->intro))
        return 2;
    const char *ask = o->ask != NULL ? o->ask : "ab";
    bool asked[2] = {strchr(ask, 'a') != NULL, strchr(ask, 'b') != NULL};
    if (strspn(ask, "ab") != strlen(ask) || (!asked[0] && !asked[1]))
        return 2;
    const char *topic = o->topic != NULL ? o->topic : "real-estate-law";
    struct ctx x;
    if (ctx_init(&x, o) != 0)
        return 1;
    struct tf_proto_buf card_buf[2] = {{0}}, core = {0}, file = {0};
    struct tf_proto_card card[2];
    uint8_t salt[2][TF_PROTO_SALT_LEN];
    int ret = 1, rc = TF_OK;
    for (int i = 0; i < 2; i++) {
        rc = tf_proto_card_from_text(o->card[i], strlen(o->card[i]), &card_buf[i], &card[i]);
        if (rc != TF_OK) {
            fprintf(stderr, "tf-evil: the card of side %c: %s\n", side_char(i), tf_err_name(rc));
            goto out;
        }
        randombytes_buf(salt[i], TF_PROTO_SALT_LEN);
        if (o->salt_from[i] != NULL) {
            struct intro_state from;
            int from_side;
            if (intro_side_arg(o->dir, o->salt_from[i], &from, &from_side) != 0)
                goto out;
            memcpy(salt[i], from.salt[from_side], TF_PROTO_SALT_LEN);
            intro_free(&from);
        }
    }
    uint64_t now = now_s();
    struct tf_proto_intro_core c = {
        .topic = {(const uint8_t *)topic, strlen(topic)},
        .created = now,
        .expires = now + EVIL_INTRO_TTL,
        .mode = TF_PROTO_INTRO_MODE_PARALLEL,
    };
    memcpy(c.connector_pk, x.id.sign_pk, TF_PROTO_KEY_LEN);
    tf_proto_intro_commit(card[0].sign_pk, salt[0], c.commit_a);
    tf_proto_intro_commit(card[1].sign_pk, salt[1], c.commit_b);
    if ((rc = tf_proto_intro_core_encode(&c, &core)) != TF_OK) {
        fprintf(stderr, "tf-evil: core: %s\n", tf_err_name(rc));
        goto out;
    }
    uint8_t id[TF_PROTO_INTRO_ID_LEN];
    char hex[2 * TF_PROTO_INTRO_ID_LEN + 1], leaf[64];
    tf_proto_intro_id(core.data, core.len, id);
    sodium_bin2hex(hex, sizeof hex, id, sizeof id);

    struct tf_proto_mp_writer w;
    tf_proto_mp_writer_init(&w);
    tf_proto_mp_write_array(&w, 7);
    tf_proto_mp_write_bin(&w, core.data, core.len);
    tf_proto_mp_write_bin(&w, salt[0], TF_PROTO_SALT_LEN);
    tf_proto_mp_write_bin(&w, salt[1], TF_PROTO_SALT_LEN);
    tf_proto_mp_write_bin(&w, card_buf[0].data, card_buf[0].len);
    tf_proto_mp_write_bin(&w, card_buf[1].data, card_buf[1].len);
    tf_proto_mp_write_cstr(&w, o->addr[0]);
    tf_proto_mp_write_cstr(&w, o->addr[1]);
    snprintf(leaf, sizeof leaf, "intro-%s.mp", o->intro);
    if ((rc = tf_proto_mp_writer_finish(&w, &file)) != TF_OK ||
        write_file(o->dir, leaf, file.data, file.len) != 0) {
        fprintf(stderr, "tf-evil: cannot save %s/%s\n", o->dir, leaf);
        goto out;
    }
    printf("intro %s id %s\n", o->intro, hex);
    fflush(stdout);

    ret = 0;
    for (int i = 0; i < 2; i++) {
        if (!asked[i])
            continue;
        static const char about[] = "someone you really should meet";
        static const char note[] = "trust me";
        struct tf_proto_proposal p = {
            .core_bytes = {core.data, core.len},
            .side = (enum tf_proto_side)i,
            .connector_card = {x.card.data, x.card.len},
            .about_other = {(const uint8_t *)about, sizeof about - 1},
            .note = {(const uint8_t *)note, sizeof note - 1},
        };
        memcpy(p.intro_id, id, sizeof id);
        memcpy(p.salt, salt[i], TF_PROTO_SALT_LEN);
        struct tf_proto_buf signed_p = {0};
        uint64_t status = 0, reason = 0;
        rc = tf_proto_proposal_sign(&x.id, &p, &signed_p);
        if (rc != TF_OK) {
            fprintf(stderr, "tf-evil: proposal: %s\n", tf_err_name(rc));
            ret = 1;
            continue;
        }
        int d = deliver(&x, o->addr[i], &card[i], TF_PROTO_MSG_TYPE_PROPOSAL, &signed_p,
                        c.expires + EVIL_ENVELOPE_EXTRA, &status, &reason);
        tf_proto_buf_free(&signed_p);
        if (d != 0) {
            printf("proposal %s side %c to %s: no ACK\n", o->intro, side_char(i), o->addr[i]);
            ret = 1;
            continue;
        }
        printf("proposal %s side %c to %s: ack %llu/%llu (%s)\n", o->intro, side_char(i),
               o->addr[i], (unsigned long long)status, (unsigned long long)reason,
               tf_proto_ack_reason_name(reason));
        if (status != TF_PROTO_ACK_OK)
            ret = 1;
    }
out:
    sodium_memzero(salt, sizeof salt);
    tf_proto_buf_free(&file);
    tf_proto_buf_free(&core);
    tf_proto_buf_free(&card_buf[0]);
    tf_proto_buf_free(&card_buf[1]);
    ctx_deinit(&x);
    return ret;
}

/* introduce */

/* Builds the reply a SPEC names into *out.  Prints why on failure. */
static int reply_from_spec(const struct ctx *x, const char *spec, struct tf_proto_buf *out)
{
    static const char forged_note[] = "hello from the other side";
    struct intro_state s;
    int side;
    const char *arg = strchr(spec, ':');
    memset(out, 0, sizeof *out);
    if (arg == NULL) {
        fprintf(stderr, "tf-evil: '%s' is not accept:, decline: or forge:NAME:SIDE\n", spec);
        return -1;
    }
    size_t kind = (size_t)(arg - spec);
    if (intro_side_arg(x->dir, arg + 1, &s, &side) != 0)
        return -1;
    int ret = -1;
    if ((kind == 6 && strncmp(spec, "accept", kind) == 0) ||
        (kind == 7 && strncmp(spec, "decline", kind) == 0)) {
        char leaf[128];
        snprintf(leaf, sizeof leaf, "reply-%s-%c-%.*s.bin", s.hex, side_char(side), (int)kind,
                 spec);
        if (read_file(x->dir, leaf, out) != 0)
            fprintf(stderr, "tf-evil: no %.*s received for %s (%s)\n", (int)kind, spec, arg + 1,
                    leaf);
        else
            ret = 0;
    } else if (kind == 5 && strncmp(spec, "forge", kind) == 0) {
        /* The party's card, but our signature. */
        struct tf_proto_reply r = {
            .side = (enum tf_proto_side)side,
            .decision = TF_PROTO_DECISION_ACCEPT,
            .card = s.card[side],
            .note = {(const uint8_t *)forged_note, sizeof forged_note - 1},
            .time = now_s(),
        };
        memcpy(r.intro_id, s.id, sizeof s.id);
        int rc = tf_proto_reply_sign(&x->id, &r, out);
        if (rc != TF_OK)
            fprintf(stderr, "tf-evil: cannot forge a reply: %s\n", tf_err_name(rc));
        else
            ret = 0;
    } else {
        fprintf(stderr, "tf-evil: '%s' is not accept:, decline: or forge:NAME:SIDE\n", spec);
    }
    intro_free(&s);
    return ret;
}

static int introduce(const struct opts *o)
{
    if (o->dir == NULL || o->intro == NULL || o->to == NULL || o->reply[0] == NULL ||
        o->reply[1] == NULL || (strcmp(o->to, "a") != 0 && strcmp(o->to, "b") != 0))
        return 2;
    int to = o->to[0] == 'a' ? 0 : 1;
    static const char default_note[] = "you two should talk";
    const char *note = o->note != NULL ? o->note : default_note;
    struct ctx x;
    struct intro_state s;
    struct tf_proto_buf reply[2] = {{0}}, signed_in = {0};
    if (ctx_init(&x, o) != 0)
        return 1;
    if (intro_load(o->dir, o->intro, &s) != 0) {
        ctx_deinit(&x);
        return 1;
    }
    int ret = 1;
    if (reply_from_spec(&x, o->reply[0], &reply[0]) != 0 ||
        reply_from_spec(&x, o->reply[1], &reply[1]) != 0)
        goto out;
    struct tf_proto_introduction in = {
        .core_bytes = s.core_bytes,
        .reply_a = {reply[0].data, reply[0].len},
        .reply_b = {reply[1].data, reply[1].len},
        .note = {(const uint8_t *)note, strlen(note)},
        .time = now_s(),
    };
    memcpy(in.intro_id, s.id, sizeof s.id);
    memcpy(in.salt_a, s.salt[0], TF_PROTO_SALT_LEN);
    memcpy(in.salt_b, s.salt[1], TF_PROTO_SALT_LEN);
    int rc = tf_proto_introduction_sign(&x.id, &in, &signed_in);
    if (rc != TF_OK) {
        fprintf(stderr, "tf-evil: introduction: %s\n", tf_err_name(rc));
        goto out;
    }
    uint64_t status = 0, reason = 0;
    if (deliver(&x, s.addr[to], &s.fields[to], TF_PROTO_MSG_TYPE_INTRODUCTION, &signed_in,
                s.core.expires + EVIL_ENVELOPE_EXTRA, &status, &reason) != 0) {
        printf("introduction %s to %c at %s (a=%s b=%s): no ACK\n", o->intro, side_char(to),
               s.addr[to], o->reply[0], o->reply[1]);
        goto out;
    }
    printf("introduction %s to %c at %s (a=%s b=%s): ack %llu/%llu (%s)\n", o->intro, side_char(to),
           s.addr[to], o->reply[0], o->reply[1], (unsigned long long)status,
           (unsigned long long)reason, tf_proto_ack_reason_name(reason));
    ret = 0;
out:
    tf_proto_buf_free(&signed_in);
    tf_proto_buf_free(&reply[0]);
    tf_proto_buf_free(&reply[1]);
    intro_free(&s);
    ctx_deinit(&x);
    return ret;
}

/* listen */

/* Handles one frame on a link the node opened.  Returns -1 when it should
 * close. */
static int listen_frame(struct ctx *x, struct conn *c)
{
    static uint8_t buf[TF_PROTO_NOISE_MSG_MAX], out[TF_PROTO_NOISE_MSG_MAX];
    long n = hp_recv_frame_len(c->fd, buf, hp_now_ms() + (uint64_t)x->timeout_ms);
    size_t len;
    int rc;
    if (n < 0)
        return -1;
    if (c->stage == 0) {
        rc = hs_start(c, x, TF_PROTO_NOISE_ROLE_RESPONDER);
        if (rc == TF_OK)
            rc = tf_proto_noise_handshake_read(&c->hs, buf, (size_t)n, out, sizeof out, &len);
        if (rc == TF_OK)
            rc = tf_proto_noise_handshake_write(&c->hs, x->card.data, x->card.len, out, sizeof out,
                                                &len);
        if (rc != TF_OK || hp_send_frame(c->fd, out, len) != 0)
            return -1;
        c->stage = 1;
        return 0;
    }
    if (c->stage == 1) {
        struct tf_proto_buf hello = {0};
        rc = tf_proto_noise_handshake_read(&c->hs, buf, (size_t)n, out, sizeof out, &len);
        if (rc == TF_OK)
            rc = hs_peer_card(c, out, len);
        if (rc == TF_OK)
            rc = tf_proto_noise_handshake_split(&c->hs, &c->tx, &c->rx);
        tf_proto_noise_handshake_deinit(&c->hs);
        if (rc == TF_OK)
            rc = conn_send_built(c, tf_proto_link_hello(NULL, 0, &hello), &hello);
        if (rc != TF_OK) {
            printf("handshake refused: %s\n", tf_err_name(rc));
            fflush(stdout);
            return -1;
        }
        printf("link up with %s\n", c->peer);
        fflush(stdout);
        c->stage = 2;
        return 0;
    }
    struct tf_proto_link_msg m;
    if (conn_decode(c, buf, (size_t)n, &m) != TF_OK)
        return -1;
    if (c->stage == 2) {
        if (m.type != TF_PROTO_LINK_HELLO)
            return -1;
        c->stage = 3;
        return 0;
    }
    return on_link_msg(x, c, &m);
}

static int listen_cmd(const struct opts *o)
{
    if (o->dir == NULL)
        return 2;
    struct hp_target t;
    if (hp_parse_target(o->listen, &t) != 0) {
        fprintf(stderr, "tf-evil: bad --listen %s (want IP:PORT)\n", o->listen);
        return 2;
    }
    struct ctx x;
    if (ctx_init(&x, o) != 0)
        return 1;
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    (void)sigaction(SIGTERM, &sa, NULL);
    (void)sigaction(SIGINT, &sa, NULL);
    int lfd = socket(t.addr.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0), one = 1;
    if (lfd < 0 || setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) != 0 ||
        bind(lfd, (const struct sockaddr *)&t.addr, t.addr_len) != 0 || listen(lfd, 16) != 0) {
        fprintf(stderr, "tf-evil: cannot listen on %s: %s\n", o->listen, strerror(errno));
        if (lfd >= 0)
            close(lfd);
        ctx_deinit(&x);
        return 1;
    }
    printf("listening on %s\n", o->listen);
    fflush(stdout);
    static struct conn conns[EVIL_CONNS_MAX];
    for (size_t i = 0; i < EVIL_CONNS_MAX; i++)
        conn_init(&conns[i]);
    unsigned accepted = 0;
    uint64_t end = o->hold_ms > 0 ? hp_now_ms() + (uint64_t)o->hold_ms : 0;
    while (!stop_flag) {
        uint64_t now = hp_now_ms();
        if (end != 0 && now >= end)
            break;
        struct pollfd pf[EVIL_CONNS_MAX + 1];
        int map[EVIL_CONNS_MAX + 1];
        nfds_t k = 0;
        pf[k] = (struct pollfd){.fd = lfd, .events = POLLIN};
        map[k++] = -1;
        for (int i = 0; i < EVIL_CONNS_MAX; i++) {
            if (conns[i].fd >= 0) {
                pf[k] = (struct pollfd){.fd = conns[i].fd, .events = POLLIN};
                map[k++] = i;
            }
        }
        int wait = end != 0 ? (int)(end - now) : 1000;
        int r = poll(pf, k, wait < 1000 ? wait : 1000);
        if (r <= 0)
            continue;
        for (nfds_t j = 0; j < k; j++) {
            if (pf[j].revents == 0)
                continue;
            if (map[j] >= 0) {
                if (listen_frame(&x, &conns[map[j]]) != 0)
                    conn_close(&conns[map[j]]);
                continue;
            }
            int fd = accept(lfd, NULL, NULL);
            if (fd < 0)
                continue;
            int slot = -1;
            for (int i = 0; i < EVIL_CONNS_MAX && slot < 0; i++)
                if (conns[i].fd < 0)
                    slot = i;
            if (slot < 0) {
                close(fd);
                continue;
            }
            (void)fcntl(fd, F_SETFD, FD_CLOEXEC);
            conns[slot].fd = fd;
            conns[slot].stage = 0;
            accepted++;
        }
    }
    for (int i = 0; i < EVIL_CONNS_MAX; i++) {
        if (conns[i].fd >= 0 && conns[i].stage == 3)
            conn_bye(&conns[i]);
        else
            conn_close(&conns[i]);
    }
    close(lfd);
    printf("listener done: %u connections, %u replies kept\n", accepted, x.replies);
    ctx_deinit(&x);
    return 0;
}

/* main */

static int parse_opts(int argc, char **argv, struct opts *o)
{
    struct {
        const char *name;
        const char **dst;
    } strs[] = {
        {"--home", &o->home},
        {"--listen", &o->listen},
        {"--dir", &o->dir},
        {"--intro", &o->intro},
        {"--topic", &o->topic},
        {"--ask", &o->ask},
        {"--to", &o->to},
        {"--note", &o->note},
        {"--a", &o->card[0]},
        {"--b", &o->card[1]},
        {"--a-addr", &o->addr[0]},
        {"--b-addr", &o->addr[1]},
        {"--salt-a", &o->salt_from[0]},
        {"--salt-b", &o->salt_from[1]},
        {"--reply-a", &o->reply[0]},
        {"--reply-b", &o->reply[1]},
    };
    memset(o, 0, sizeof *o);
    o->timeout_ms = EVIL_TIMEOUT_MS;
    for (int i = 0; i < argc; i++) {
        bool found = false;
        if (i + 1 >= argc)
            return -1;
        for (size_t j = 0; j < sizeof strs / sizeof strs[0] && !found; j++) {
            if (strcmp(argv[i], strs[j].name) == 0) {
                *strs[j].dst = argv[++i];
                found = true;
            }
        }
        if (found)
            continue;
        if (strcmp(argv[i], "--hold-ms") == 0)
            o->hold_ms = strtol(argv[++i], NULL, 10);
        else if (strcmp(argv[i], "--timeout-ms") == 0)
            o->timeout_ms = strtol(argv[++i], NULL, 10);
        else
            return -1;
    }
    if (o->home == NULL || o->listen == NULL || o->timeout_ms <= 0 || o->hold_ms < 0)
        return -1;
    return 0;
}

static const char USAGE[] =
    "usage: tf-evil propose --home HOME --listen ADDR --dir DIR --intro NAME\n"
    "               --a CARD --a-addr HOST:PORT --b CARD --b-addr HOST:PORT\n"
    "               [--salt-a NAME:SIDE] [--salt-b NAME:SIDE] [--ask a|b|ab] [--topic TAG]\n"
    "       tf-evil listen --home HOME --listen ADDR --dir DIR [--hold-ms MS]\n"
    "       tf-evil introduce --home HOME --listen ADDR --dir DIR --intro NAME --to a|b\n"
    "               --reply-a SPEC --reply-b SPEC [--note TEXT]\n"
    "       SPEC: accept:NAME:SIDE, decline:NAME:SIDE or forge:NAME:SIDE\n"
    "       every subcommand also takes --timeout-ms MS (default 10000)\n";

int main(int argc, char **argv)
{
    struct opts o;
    int rc = 2;
    if (sodium_init() < 0)
        return 1;
    signal(SIGPIPE, SIG_IGN);
    setvbuf(stdout, NULL, _IOLBF, 0);
    if (argc >= 2 && parse_opts(argc - 2, argv + 2, &o) == 0) {
        if (strcmp(argv[1], "propose") == 0)
            rc = propose(&o);
        else if (strcmp(argv[1], "introduce") == 0)
            rc = introduce(&o);
        else if (strcmp(argv[1], "listen") == 0)
            rc = listen_cmd(&o);
    }
    if (rc == 2)
        fputs(USAGE, stderr);
    return rc;
}
