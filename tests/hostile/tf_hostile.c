/* SPDX-License-Identifier: MIT */
/*
 * tf-hostile: a hostile peer against a running twofoldd (issue 8, "Hostile
 * input").  Each run plays one case: it dials the node, usually completes a
 * real Noise_XX handshake (as a stranger or as one of the node's contacts),
 * sends one bad input and reports what the node did, compared with what
 * docs/PROTOCOL.md says it must do.
 *
 *   tf-hostile list
 *       prints the cases, one a line: NAME TAB EXPECTED TAB STATE TAB WHAT.
 *       STATE says what the store may do: "same" (nothing changes), "seen"
 *       (only the seen-id tables: an envelope ACKed ok records its msg id),
 *       "changed" (a setup step that must change state).
 *
 *   tf-hostile run CASE --target IP:PORT --victim HOME --mallory HOME
 *                  --carol HOME --dave HOME [--file PATH]
 *                  [--hs-timeout-ms MS] [--idle-timeout-ms MS] [--count N]
 *       plays CASE against the node of --victim (whose public keys are read
 *       from its key file) listening at --target.  Mallory and Dave are
 *       strangers to the victim, Carol is its contact; none of them runs a
 *       node.  --file keeps what a setup case made for a later case (an
 *       accepted envelope for the replay, a pending intro).  The timeouts are
 *       the victim's handshake_timeout_ms and idle_timeout_ms (its config).
 *       Prints "CASE: expected E; observed O" and exits 0 when O is E, 1 when
 *       not, 2 for a usage error, 3 when the case could not be played (a
 *       link that did not come up, a missing file).
 *
 * Observations: "ack S/R" (the ACK's status and reason), "no-ack, alive" (no
 * ACK within 3 s; the link still answers a PING), "error R, closed" (an
 * ERROR link message with reason R, then the node closed), "closed" (closed
 * without ERROR), "closed (timeout)" (closed by the node's handshake or idle
 * timer), "alive" (the link still answers a PING), "N pongs", and
 * combinations such as "3x ack 0/0".
 */
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <sodium.h>

#include "peer.h"
#include "proto/card.h"
#include "proto/envelope.h"
#include "proto/intro.h"
#include "proto/link.h"
#include "proto/noise.h"
#include "proto/statement.h"

#define ACK_WAIT_MS 3000
#define CLOSE_WAIT_MS 3000
#define SETUP_MS 5000
#define HOUR 3600u
#define WEEK (7u * 86400u)
#define FILE_MAX 70000

struct ctx {
    struct hp_target target;
    struct tf_proto_identity victim, mallory, carol, dave;
    struct tf_proto_buf mcard, ccard, dcard;
    const char *file;
    long count;
    long hs_timeout_ms, idle_timeout_ms;
};

static uint64_t now_s(void)
{
    return (uint64_t)time(NULL);
}

/* Observations. */

#define OBS(...) snprintf(obs, cap, __VA_ARGS__)

/* Link setup failures make the case unplayable, not failed. */
static int setup_failed;

static int open_as(struct ctx *x, const struct tf_proto_identity *id,
                   const struct tf_proto_buf *card, struct hp_session *s)
{
    int rc = hp_open(&x->target, id, card, s, hp_now_ms() + SETUP_MS);
    if (rc != HP_OK) {
        fprintf(stderr, "tf-hostile: link setup failed (%d: %s)\n", rc,
                rc == HP_TIMEOUT  ? "timeout"
                : rc == HP_CLOSED ? "closed"
                                  : tf_strerror(rc));
        hp_session_close(s);
        setup_failed = 1;
        return -1;
    }
    return 0;
}

static int open_mallory(struct ctx *x, struct hp_session *s)
{
    return open_as(x, &x->mallory, &x->mcard, s);
}

static int open_carol(struct ctx *x, struct hp_session *s)
{
    return open_as(x, &x->carol, &x->ccard, s);
}

/* Reads until the node closes or timeout_ms pass; notes an ERROR. */
static void observe_end(struct hp_session *s, long timeout_ms, char *obs, size_t cap)
{
    static uint8_t buf[TF_PROTO_FRAME_MAX];
    uint64_t deadline = hp_now_ms() + (uint64_t)timeout_ms;
    long err = -1;
    for (;;) {
        struct tf_proto_link_msg m;
        int rc = hp_recv_msg(s, buf, &m, deadline);
        if (rc == HP_OK) {
            if (m.type == TF_PROTO_LINK_ERROR && err < 0)
                err = (long)m.reason;
            continue;
        }
        const char *end = rc == HP_CLOSED ? "closed" : rc == HP_TIMEOUT ? "open" : "garbled";
        if (err >= 0)
            OBS("error %ld, %s", err, end);
        else
            OBS("%s", end);
        return;
    }
}

/* Sends a PING and waits for its PONG. */
static void observe_alive(struct hp_session *s, char *obs, size_t cap)
{
    static uint8_t buf[TF_PROTO_FRAME_MAX];
    struct tf_proto_buf ping;
    const uint64_t nonce = 0x5eed;
    int rc = tf_proto_link_ping(TF_PROTO_LINK_PING, nonce, &ping);
    if (hp_send_built(s, rc, &ping) != TF_OK) {
        OBS("closed");
        return;
    }
    uint64_t deadline = hp_now_ms() + CLOSE_WAIT_MS;
    for (;;) {
        struct tf_proto_link_msg m;
        rc = hp_recv_msg(s, buf, &m, deadline);
        if (rc == HP_OK && m.type == TF_PROTO_LINK_PONG && m.nonce == nonce) {
            OBS("alive");
            return;
        }
        if (rc == HP_OK && m.type == TF_PROTO_LINK_ERROR) {
            OBS("error %llu, closed", (unsigned long long)m.reason);
            return;
        }
        if (rc != HP_OK) {
            OBS("%s", rc == HP_CLOSED ? "closed" : "no pong");
            return;
        }
    }
}

/* A timeout observation: closed within [lo, hi] ms of t0. */
static void observe_timeout(struct hp_session *s, uint64_t t0, long timeout_ms, char *obs,
                            size_t cap)
{
    int rc = hp_wait_closed(s->fd, t0 + (uint64_t)(3 * timeout_ms + 2000));
    uint64_t dt = hp_now_ms() - t0;
    if (rc != HP_CLOSED)
        OBS("open after %llu ms", (unsigned long long)dt);
    else if (dt + 100 >= (uint64_t)timeout_ms && dt <= (uint64_t)(2 * timeout_ms + 1000))
        OBS("closed (timeout)");
    else
        OBS("closed after %llu ms", (unsigned long long)dt);
}

/* Sends one plaintext link message (any bytes) and observes the end. */
static int send_raw_then_end(struct ctx *x, const uint8_t *p, size_t n, char *obs, size_t cap)
{
    struct hp_session s;
    if (open_mallory(x, &s) != 0)
        return -1;
    if (hp_send_plain(&s, p, n) != 0)
        OBS("closed while sending");
    else
        observe_end(&s, CLOSE_WAIT_MS, obs, cap);
    hp_session_close(&s);
    return 0;
}

/* Sends a built link message and checks the link is still alive. */
static int send_built_then_alive(struct ctx *x, int rc, struct tf_proto_buf *msg, char *obs,
                                 size_t cap)
{
    struct hp_session s;
    if (open_mallory(x, &s) != 0) {
        tf_proto_buf_free(msg);
        return -1;
    }
    if (hp_send_built(&s, rc, msg) != TF_OK)
        OBS("closed while sending");
    else
        observe_alive(&s, obs, cap);
    hp_session_close(&s);
    return 0;
}

/* Envelopes. */

static void env_init(struct ctx *x, struct hp_envelope *e, const struct tf_proto_identity *signer,
                     uint64_t type, const uint8_t *body, size_t len)
{
    memset(e, 0, sizeof *e);
    e->version = TF_PROTO_ENVELOPE_VERSION;
    randombytes_buf(e->msg_id, sizeof e->msg_id);
    e->to_pk = x->victim.sign_pk;
    e->box_pk = x->victim.box_pk;
    e->expires = now_s() + HOUR;
    e->signer = signer;
    e->type = type;
    e->body = body;
    e->body_len = len;
}

/* Sends bytes in a link message of type (ENVELOPE, or direct: DIRECT) on s
 * and waits for the ACK of msg_id. */
static void send_link_bytes(struct hp_session *s, enum tf_proto_link_type type, const uint8_t *env,
                            size_t len, const uint8_t msg_id[16], char *obs, size_t cap)
{
    static uint8_t buf[TF_PROTO_FRAME_MAX];
    struct tf_proto_buf msg;
    int rc = tf_proto_link_envelope_as(type, env, len, &msg);
    if (rc != TF_OK) {
        OBS("cannot encode: %s", tf_err_name(rc));
        return;
    }
    if (hp_send_built(s, rc, &msg) != TF_OK) {
        OBS("closed while sending");
        return;
    }
    uint64_t deadline = hp_now_ms() + ACK_WAIT_MS;
    for (;;) {
        struct tf_proto_link_msg m;
        rc = hp_recv_msg(s, buf, &m, deadline);
        if (rc == HP_OK && m.type == TF_PROTO_LINK_ACK && memcmp(m.msg_id, msg_id, 16) == 0) {
            OBS("ack %llu/%llu", (unsigned long long)m.status, (unsigned long long)m.reason);
            return;
        }
        if (rc == HP_OK && m.type == TF_PROTO_LINK_ERROR) {
            OBS("error %llu, closed", (unsigned long long)m.reason);
            return;
        }
        if (rc == HP_TIMEOUT) {
            char alive[64];
            observe_alive(s, alive, sizeof alive);
            OBS("no-ack, %s", alive);
            return;
        }
        if (rc != HP_OK) {
            OBS("%s", rc == HP_CLOSED ? "closed" : "garbled");
            return;
        }
    }
}

/* Sends env (bytes) on s and waits for the ACK of msg_id. */
static void send_envelope_bytes(struct hp_session *s, const uint8_t *env, size_t len,
                                const uint8_t msg_id[16], char *obs, size_t cap)
{
    send_link_bytes(s, TF_PROTO_LINK_ENVELOPE, env, len, msg_id, obs, cap);
}

static void send_envelope(struct hp_session *s, const struct hp_envelope *e, char *obs, size_t cap)
{
    struct tf_proto_buf env;
    int rc = hp_envelope_build(e, &env);
    if (rc != TF_OK) {
        OBS("cannot build: %s", tf_err_name(rc));
        return;
    }
    send_envelope_bytes(s, env.data, env.len, e->msg_id, obs, cap);
    tf_proto_buf_free(&env);
}

/* Opens a link as `as` (mallory or carol) and sends e. */
static int envelope_case(struct ctx *x, const struct tf_proto_identity *as,
                         const struct hp_envelope *e, char *obs, size_t cap)
{
    struct hp_session s;
    if (open_as(x, as,
                as == &x->carol  ? &x->ccard
                : as == &x->dave ? &x->dcard
                                 : &x->mcard,
                &s) != 0)
        return -1;
    send_envelope(&s, e, obs, cap);
    hp_session_close(&s);
    return 0;
}

/* Files (a setup case leaves something for a later one). */

static int write_file(const char *path, const uint8_t *p, size_t n)
{
    FILE *f = path != NULL ? fopen(path, "wb") : NULL;
    if (f == NULL)
        return -1;
    bool ok = fwrite(p, 1, n, f) == n;
    return fclose(f) == 0 && ok ? 0 : -1;
}

static long read_file(const char *path, uint8_t *p, size_t cap)
{
    FILE *f = path != NULL ? fopen(path, "rb") : NULL;
    if (f == NULL) {
        fprintf(stderr, "tf-hostile: cannot read %s\n", path ? path : "(no --file)");
        setup_failed = 1;
        return -1;
    }
    size_t n = fread(p, 1, cap, f);
    fclose(f);
    return (long)n;
}

/* Intro objects. */

struct intro {
    uint8_t id[32];
    uint8_t salt[2][32];
    struct tf_proto_buf core;
};

/* What a proposal may get wrong. */
struct prop_opts {
    const struct tf_proto_identity *connector; /* core.connector_pk; default carol */
    const struct tf_proto_identity *signer;    /* default: the connector */
    const struct tf_proto_buf *card;           /* connector card; default the connector's */
    int side;
    int64_t created_off, expires_off; /* relative to now */
    bool bad_commit;                  /* the salt does not open my commitment */
    bool bad_intro_id;
};

static void intro_free(struct intro *in)
{
    tf_proto_buf_free(&in->core);
}

/* Builds a core (a: the victim, b: dave) and a proposal to side o->side. */
static int build_proposal(struct ctx *x, const struct prop_opts *o, struct intro *in,
                          struct tf_proto_buf *out)
{
    const struct tf_proto_identity *conn = o->connector != NULL ? o->connector : &x->carol;
    const struct tf_proto_identity *signer = o->signer != NULL ? o->signer : conn;
    const struct tf_proto_buf *card = o->card != NULL     ? o->card
                                      : conn == &x->carol ? &x->ccard
                                      : conn == &x->dave  ? &x->dcard
                                                          : &x->mcard;
    struct tf_proto_intro_core c;
    memset(&c, 0, sizeof c);
    memset(in, 0, sizeof *in);
    randombytes_buf(in->salt, sizeof in->salt);
    memcpy(c.connector_pk, conn->sign_pk, 32);
    tf_proto_intro_commit(x->victim.sign_pk, in->salt[0], c.commit_a);
    tf_proto_intro_commit(x->dave.sign_pk, in->salt[1], c.commit_b);
    c.topic = (struct tf_proto_bytes){(const uint8_t *)"hostile-test", 12};
    c.created = (uint64_t)((int64_t)now_s() + o->created_off);
    c.expires = (uint64_t)((int64_t)now_s() + (o->expires_off != 0 ? o->expires_off : WEEK));
    c.mode = TF_PROTO_INTRO_MODE_PARALLEL;
    int rc = tf_proto_intro_core_encode(&c, &in->core);
    if (rc != TF_OK)
        return rc;
    tf_proto_intro_id(in->core.data, in->core.len, in->id);
    uint8_t id[32], salt[32];
    memcpy(id, in->id, 32);
    if (o->bad_intro_id)
        id[0] ^= 0x80;
    memcpy(salt, in->salt[o->side], 32);
    if (o->bad_commit)
        salt[31] ^= 0x01;
    struct tf_proto_mp_writer w;
    struct tf_proto_buf body;
    tf_proto_mp_writer_init(&w);
    tf_proto_mp_write_array(&w, 7);
    tf_proto_mp_write_bin(&w, id, 32);
    tf_proto_mp_write_bin(&w, in->core.data, in->core.len);
    tf_proto_mp_write_uint(&w, (uint64_t)o->side);
    tf_proto_mp_write_bin(&w, salt, 32);
    tf_proto_mp_write_bin(&w, card->data, card->len);
    tf_proto_mp_write_cstr(&w, "Dave, who does not exist");
    tf_proto_mp_write_cstr(&w, "you two should talk");
    if ((rc = tf_proto_mp_writer_finish(&w, &body)) != TF_OK)
        return rc;
    rc = tf_proto_statement_sign(signer, TF_PROTO_DOMAIN_PROPOSAL, body.data, body.len, out);
    tf_proto_buf_free(&body);
    return rc;
}

/* Sends a proposal from `as` (the link and the envelope's sender). */
static int proposal_case(struct ctx *x, const struct tf_proto_identity *as,
                         const struct prop_opts *o, char *obs, size_t cap)
{
    struct intro in;
    struct tf_proto_buf p;
    int rc = build_proposal(x, o, &in, &p);
    intro_free(&in);
    if (rc != TF_OK) {
        OBS("cannot build: %s", tf_err_name(rc));
        return 0;
    }
    struct hp_envelope e;
    env_init(x, &e, as, TF_PROTO_MSG_TYPE_PROPOSAL, p.data, p.len);
    rc = envelope_case(x, as, &e, obs, cap);
    tf_proto_buf_free(&p);
    return rc;
}

/* Saves an intro as id, salts, core. */
static int intro_save(const char *path, const struct intro *in)
{
    uint8_t buf[96 + 4096];
    if (in->core.len > 4096)
        return -1;
    memcpy(buf, in->id, 32);
    memcpy(buf + 32, in->salt, 64);
    memcpy(buf + 96, in->core.data, in->core.len);
    return write_file(path, buf, 96 + in->core.len);
}

static int intro_load(const char *path, struct intro *in)
{
    static uint8_t buf[96 + 4096];
    memset(in, 0, sizeof *in);
    long n = read_file(path, buf, sizeof buf);
    if (n <= 96)
        return -1;
    memcpy(in->id, buf, 32);
    memcpy(in->salt, buf + 32, 64);
    in->core.data = malloc((size_t)n - 96);
    if (in->core.data == NULL)
        return -1;
    memcpy(in->core.data, buf + 96, (size_t)n - 96);
    in->core.len = (size_t)n - 96;
    return 0;
}

/* A decline by signer for intro id, side: a well-formed reply. */
static int sign_decline(const struct tf_proto_identity *signer, const uint8_t id[32], int side,
                        struct tf_proto_buf *out)
{
    struct tf_proto_reply r;
    memset(&r, 0, sizeof r);
    memcpy(r.intro_id, id, 32);
    r.side = side ? TF_PROTO_SIDE_B : TF_PROTO_SIDE_A;
    r.decision = TF_PROTO_DECISION_DECLINE;
    r.reason = (struct tf_proto_bytes){(const uint8_t *)"no", 2};
    r.time = now_s();
    return tf_proto_reply_sign(signer, &r, out);
}

/* An introduction of in, signed by signer, carrying two well-formed
 * replies (signed by carol: they cannot be the parties'). */
static int build_introduction(struct ctx *x, const struct tf_proto_identity *signer,
                              const struct intro *in, struct tf_proto_buf *out)
{
    struct tf_proto_buf ra = {0}, rb = {0}, body = {0};
    int rc = sign_decline(&x->carol, in->id, 0, &ra);
    if (rc == TF_OK)
        rc = sign_decline(&x->carol, in->id, 1, &rb);
    if (rc == TF_OK) {
        struct tf_proto_mp_writer w;
        tf_proto_mp_writer_init(&w);
        tf_proto_mp_write_array(&w, 8);
        tf_proto_mp_write_bin(&w, in->id, 32);
        tf_proto_mp_write_bin(&w, in->core.data, in->core.len);
        tf_proto_mp_write_bin(&w, in->salt[0], 32);
        tf_proto_mp_write_bin(&w, in->salt[1], 32);
        tf_proto_mp_write_bin(&w, ra.data, ra.len);
        tf_proto_mp_write_bin(&w, rb.data, rb.len);
        tf_proto_mp_write_cstr(&w, "meet each other");
        tf_proto_mp_write_uint(&w, now_s());
        rc = tf_proto_mp_writer_finish(&w, &body);
    }
    if (rc == TF_OK)
        rc =
            tf_proto_statement_sign(signer, TF_PROTO_DOMAIN_INTRODUCTION, body.data, body.len, out);
    tf_proto_buf_free(&ra);
    tf_proto_buf_free(&rb);
    tf_proto_buf_free(&body);
    return rc;
}

/* A random intro that no node has heard of. */
static int unknown_intro(struct ctx *x, struct intro *in)
{
    struct prop_opts o = {0};
    struct tf_proto_buf p;
    int rc = build_proposal(x, &o, in, &p);
    tf_proto_buf_free(&p);
    return rc;
}

/* Sends body of type from `as` on a link as `as`. */
static int object_case(struct ctx *x, const struct tf_proto_identity *as, uint16_t type,
                       const struct tf_proto_buf *body, char *obs, size_t cap)
{
    struct hp_envelope e;
    env_init(x, &e, as, type, body->data, body->len);
    return envelope_case(x, as, &e, obs, cap);
}

/* ------------------------------------------------------------------ */
/* The cases.                                                          */

typedef int case_fn(struct ctx *x, char *obs, size_t cap);

/* Before the handshake. */

static int c_hs_huge_length(struct ctx *x, char *obs, size_t cap)
{
    uint8_t b[2 + 100] = {0xff, 0xff};
    randombytes_buf(b + 2, 100);
    int fd = hp_dial(&x->target);
    if (fd < 0)
        return setup_failed = 1, -1;
    (void)hp_send_all(fd, b, sizeof b);
    OBS("%s", hp_wait_closed(fd, hp_now_ms() + CLOSE_WAIT_MS) == HP_CLOSED ? "closed" : "open");
    close(fd);
    return 0;
}

static int c_hs_zero_length(struct ctx *x, char *obs, size_t cap)
{
    uint8_t b[2] = {0, 0};
    int fd = hp_dial(&x->target);
    if (fd < 0)
        return setup_failed = 1, -1;
    (void)hp_send_all(fd, b, sizeof b);
    OBS("%s", hp_wait_closed(fd, hp_now_ms() + CLOSE_WAIT_MS) == HP_CLOSED ? "closed" : "open");
    close(fd);
    return 0;
}

static int c_hs_msg1_payload(struct ctx *x, char *obs, size_t cap)
{
    /* 32 bytes of e and 50 of payload: the node's Noise reads a payload
     * message 1 must not carry. */
    uint8_t b[82];
    randombytes_buf(b, sizeof b);
    int fd = hp_dial(&x->target);
    if (fd < 0)
        return setup_failed = 1, -1;
    (void)hp_send_frame(fd, b, sizeof b);
    OBS("%s", hp_wait_closed(fd, hp_now_ms() + CLOSE_WAIT_MS) == HP_CLOSED ? "closed" : "open");
    close(fd);
    return 0;
}

static int c_hs_short_msg1(struct ctx *x, char *obs, size_t cap)
{
    uint8_t b[20];
    randombytes_buf(b, sizeof b);
    int fd = hp_dial(&x->target);
    if (fd < 0)
        return setup_failed = 1, -1;
    (void)hp_send_frame(fd, b, sizeof b);
    OBS("%s", hp_wait_closed(fd, hp_now_ms() + CLOSE_WAIT_MS) == HP_CLOSED ? "closed" : "open");
    close(fd);
    return 0;
}

/* Message 3 carries payload instead of a matching card. */
static int hs_bad_msg3(struct ctx *x, const uint8_t *payload, size_t len, char *obs, size_t cap)
{
    struct hp_session s;
    struct hp_handshake_opts o = {
        .id = &x->mallory, .msg3_payload = payload, .msg3_payload_len = len};
    int rc = hp_handshake(&x->target, &o, &s, hp_now_ms() + SETUP_MS);
    if (rc != HP_OK) {
        hp_session_close(&s);
        return setup_failed = 1, -1;
    }
    /* The node must not send its HELLO: it closes at once. */
    observe_end(&s, CLOSE_WAIT_MS, obs, cap);
    hp_session_close(&s);
    return 0;
}

static int c_hs_card_not_a_card(struct ctx *x, char *obs, size_t cap)
{
    uint8_t junk[300];
    randombytes_buf(junk, sizeof junk);
    return hs_bad_msg3(x, junk, sizeof junk, obs, cap);
}

static int c_hs_card_other_key(struct ctx *x, char *obs, size_t cap)
{
    /* Carol's genuine card over Mallory's Noise key. */
    return hs_bad_msg3(x, x->ccard.data, x->ccard.len, obs, cap);
}

static int c_hs_no_card(struct ctx *x, char *obs, size_t cap)
{
    static const uint8_t none[1] = {0};
    return hs_bad_msg3(x, none, 0, obs, cap);
}

static int c_hs_stall_after_msg2(struct ctx *x, char *obs, size_t cap)
{
    static uint8_t buf[TF_PROTO_NOISE_MSG_MAX];
    struct tf_proto_noise_handshake hs;
    uint8_t e[32];
    size_t len;
    memset(&hs, 0, sizeof hs);
    randombytes_buf(e, sizeof e);
    struct tf_proto_noise_config c = {
        .pattern = TF_PROTO_NOISE_PATTERN_XX,
        .role = TF_PROTO_NOISE_ROLE_INITIATOR,
        .prologue = (const uint8_t *)TF_PROTO_NOISE_PROLOGUE,
        .prologue_len = TF_PROTO_NOISE_PROLOGUE_LEN,
        .s_sk = tf_proto_identity_noise_sk(&x->mallory),
        .e_sk = e,
    };
    int rc = tf_proto_noise_handshake_init(&hs, &c);
    if (rc == TF_OK)
        rc = tf_proto_noise_handshake_write(&hs, NULL, 0, buf, sizeof buf, &len);
    tf_proto_noise_handshake_deinit(&hs);
    struct hp_session s = {.fd = hp_dial(&x->target)};
    if (rc != TF_OK || s.fd < 0)
        return setup_failed = 1, -1;
    uint64_t t0 = hp_now_ms();
    (void)hp_send_frame(s.fd, buf, len);
    observe_timeout(&s, t0, x->hs_timeout_ms, obs, cap);
    close(s.fd);
    return 0;
}

static int c_hs_slow_bytes(struct ctx *x, char *obs, size_t cap)
{
    /* Message 1 (34 bytes with its header), one byte every 250 ms: 8.5 s,
     * far beyond the handshake timeout. */
    static uint8_t buf[TF_PROTO_NOISE_MSG_MAX];
    struct tf_proto_noise_handshake hs;
    uint8_t e[32], frame[2 + 64];
    size_t len;
    memset(&hs, 0, sizeof hs);
    randombytes_buf(e, sizeof e);
    struct tf_proto_noise_config c = {
        .pattern = TF_PROTO_NOISE_PATTERN_XX,
        .role = TF_PROTO_NOISE_ROLE_INITIATOR,
        .prologue = (const uint8_t *)TF_PROTO_NOISE_PROLOGUE,
        .prologue_len = TF_PROTO_NOISE_PROLOGUE_LEN,
        .s_sk = tf_proto_identity_noise_sk(&x->mallory),
        .e_sk = e,
    };
    int rc = tf_proto_noise_handshake_init(&hs, &c);
    if (rc == TF_OK)
        rc = tf_proto_noise_handshake_write(&hs, NULL, 0, buf, sizeof buf, &len);
    tf_proto_noise_handshake_deinit(&hs);
    int fd = hp_dial(&x->target);
    if (rc != TF_OK || fd < 0 || len > 64)
        return setup_failed = 1, -1;
    tf_proto_frame_header(frame, (uint16_t)len);
    memcpy(frame + 2, buf, len);
    uint64_t t0 = hp_now_ms();
    bool cut = false;
    for (size_t i = 0; i < len + 2 && !cut; i++) {
        if (hp_send_all(fd, frame + i, 1) != 0 ||
            hp_wait_closed(fd, hp_now_ms() + 250) == HP_CLOSED)
            cut = true;
    }
    uint64_t dt = hp_now_ms() - t0;
    if (!cut)
        OBS("not cut off: all %zu bytes sent in %llu ms", len + 2, (unsigned long long)dt);
    else if (dt + 100 >= (uint64_t)x->hs_timeout_ms &&
             dt <= (uint64_t)(2 * x->hs_timeout_ms + 1000))
        OBS("closed (timeout)");
    else
        OBS("closed after %llu ms", (unsigned long long)dt);
    close(fd);
    return 0;
}

/* After the handshake: frames. */

static int c_link_undecryptable(struct ctx *x, char *obs, size_t cap)
{
    struct hp_session s;
    uint8_t junk[200];
    if (open_mallory(x, &s) != 0)
        return -1;
    randombytes_buf(junk, sizeof junk);
    (void)hp_send_frame(s.fd, junk, sizeof junk);
    observe_end(&s, CLOSE_WAIT_MS, obs, cap);
    hp_session_close(&s);
    return 0;
}

static int c_link_zero_frame(struct ctx *x, char *obs, size_t cap)
{
    struct hp_session s;
    uint8_t hdr[2] = {0, 0};
    if (open_mallory(x, &s) != 0)
        return -1;
    (void)hp_send_all(s.fd, hdr, sizeof hdr);
    observe_end(&s, CLOSE_WAIT_MS, obs, cap);
    hp_session_close(&s);
    return 0;
}

static int c_link_huge_frame(struct ctx *x, char *obs, size_t cap)
{
    /* The victim's max_frame is below 65535 (its config). */
    struct hp_session s;
    uint8_t b[2 + 64] = {0xff, 0xff};
    if (open_mallory(x, &s) != 0)
        return -1;
    (void)hp_send_all(s.fd, b, sizeof b);
    observe_end(&s, CLOSE_WAIT_MS, obs, cap);
    hp_session_close(&s);
    return 0;
}

static int c_link_truncated_frame(struct ctx *x, char *obs, size_t cap)
{
    struct hp_session s;
    uint8_t b[2 + 50] = {0x00, 200};
    if (open_mallory(x, &s) != 0)
        return -1;
    randombytes_buf(b + 2, 50);
    uint64_t t0 = hp_now_ms();
    (void)hp_send_all(s.fd, b, sizeof b);
    observe_timeout(&s, t0, x->idle_timeout_ms, obs, cap);
    hp_session_close(&s);
    return 0;
}

static int c_link_slow_bytes(struct ctx *x, char *obs, size_t cap)
{
    /* A PING, encrypted, sent one byte every 300 ms (7 s in all): the node
     * hears no whole frame and its idle timer must cut the link. */
    static uint8_t ct[TF_PROTO_NOISE_MSG_MAX];
    uint8_t frame[2 + 64];
    struct hp_session s;
    struct tf_proto_buf ping;
    size_t len;
    if (open_mallory(x, &s) != 0)
        return -1;
    int rc = tf_proto_link_ping(TF_PROTO_LINK_PING, 7, &ping);
    if (rc == TF_OK)
        rc = tf_proto_noise_cipher_encrypt(&s.tx, ping.data, ping.len, ct, sizeof ct, &len);
    if (rc == TF_OK)
        tf_proto_buf_free(&ping);
    if (rc != TF_OK || len > 64) {
        hp_session_close(&s);
        return setup_failed = 1, -1;
    }
    tf_proto_frame_header(frame, (uint16_t)len);
    memcpy(frame + 2, ct, len);
    uint64_t t0 = hp_now_ms();
    bool cut = false;
    for (size_t i = 0; i < len + 2 && !cut; i++) {
        if (hp_send_all(s.fd, frame + i, 1) != 0 ||
            hp_wait_closed(s.fd, hp_now_ms() + 300) == HP_CLOSED)
            cut = true;
    }
    uint64_t dt = hp_now_ms() - t0;
    if (!cut)
        OBS("not cut off: all %zu bytes sent in %llu ms", len + 2, (unsigned long long)dt);
    else if (dt + 100 >= (uint64_t)x->idle_timeout_ms &&
             dt <= (uint64_t)(2 * x->idle_timeout_ms + 1000))
        OBS("closed (timeout)");
    else
        OBS("closed after %llu ms", (unsigned long long)dt);
    hp_session_close(&s);
    return 0;
}

/* After the handshake: link messages. */

#define RAW_CASE(fname, ...)                                                                       \
    static int fname(struct ctx *x, char *obs, size_t cap)                                         \
    {                                                                                              \
        static const uint8_t msg[] = {__VA_ARGS__};                                                \
        return send_raw_then_end(x, msg, sizeof msg, obs, cap);                                    \
    }

RAW_CASE(c_msg_not_msgpack, 0xc1, 0x00, 0xff, 0x42)
RAW_CASE(c_msg_unknown_type, 0x91, 0x08)
RAW_CASE(c_msg_type_zero, 0x91, 0x00)
RAW_CASE(c_msg_huge_type, 0x91, 0xcf, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff)
RAW_CASE(c_msg_wrong_count, 0x91, 0x04)
RAW_CASE(c_msg_noncanonical, 0x92, 0x04, 0xcd, 0x00, 0x05)
RAW_CASE(c_msg_trailing, 0x92, 0x04, 0x05, 0x00)
RAW_CASE(c_msg_empty_array, 0x90)
RAW_CASE(c_msg_not_array, 0x04)
RAW_CASE(c_msg_negative_nonce, 0x92, 0x04, 0xff)
RAW_CASE(c_msg_envelope_not_bin, 0x92, 0x02, 0xa3, 'a', 'b', 'c')
RAW_CASE(c_msg_hello_again, 0x93, 0x01, 0x01, 0x90)
RAW_CASE(c_msg_ack_short_id, 0x94, 0x03, 0xc4, 0x02, 0x01, 0x02, 0x00, 0x00)
RAW_CASE(c_msg_error_text_control, 0x93, 0x06, 0x01, 0xa2, 'a', 0x07)
/* Two PINGs in one plaintext: a message never spans or shares a frame. */
RAW_CASE(c_msg_two_in_one, 0x92, 0x04, 0x01, 0x92, 0x04, 0x02)
/* An array that claims 65535 elements in 3 bytes. */
RAW_CASE(c_msg_huge_count, 0xdc, 0xff, 0xff)

/* Sends plaintext p right after the handshake, before any HELLO. */
static int before_hello(struct ctx *x, const uint8_t *p, size_t n, char *obs, size_t cap)
{
    struct hp_session s;
    struct hp_handshake_opts o = {.id = &x->mallory, .card = &x->mcard};
    if (hp_handshake(&x->target, &o, &s, hp_now_ms() + SETUP_MS) != HP_OK) {
        hp_session_close(&s);
        return setup_failed = 1, -1;
    }
    if (hp_send_plain(&s, p, n) != 0)
        OBS("closed while sending");
    else
        observe_end(&s, CLOSE_WAIT_MS, obs, cap);
    hp_session_close(&s);
    return 0;
}

static int c_ping_before_hello(struct ctx *x, char *obs, size_t cap)
{
    static const uint8_t ping[] = {0x92, 0x04, 0x01};
    return before_hello(x, ping, sizeof ping, obs, cap);
}

/* Sends content (built with rc, freed here) in a link message of type
 * right after the handshake, before any HELLO. */
static int before_hello_as(struct ctx *x, enum tf_proto_link_type type, int rc,
                           struct tf_proto_buf *content, char *obs, size_t cap)
{
    struct tf_proto_buf msg;
    if (rc == TF_OK) {
        rc = tf_proto_link_envelope_as(type, content->data, content->len, &msg);
        tf_proto_buf_free(content);
    }
    if (rc != TF_OK)
        return setup_failed = 1, -1;
    rc = before_hello(x, msg.data, msg.len, obs, cap);
    tf_proto_buf_free(&msg);
    return rc;
}

static int c_envelope_before_hello(struct ctx *x, char *obs, size_t cap)
{
    struct hp_envelope e;
    struct tf_proto_buf env;
    static const char text[] = "too early";
    env_init(x, &e, &x->mallory, TF_PROTO_MSG_TYPE_NOTE, (const uint8_t *)text, sizeof text - 1);
    return before_hello_as(x, TF_PROTO_LINK_ENVELOPE, hp_envelope_build(&e, &env), &env, obs, cap);
}

static int c_hello_version_2(struct ctx *x, char *obs, size_t cap)
{
    static const uint8_t hello2[] = {0x93, 0x01, 0x02, 0x90};
    return before_hello(x, hello2, sizeof hello2, obs, cap);
}

static int c_hello_too_many_features(struct ctx *x, char *obs, size_t cap)
{
    /* [1, 1, array16 of 17 one-letter features] */
    uint8_t m[6 + 17 * 2];
    size_t n = 0;
    m[n++] = 0x93;
    m[n++] = 0x01;
    m[n++] = 0x01;
    m[n++] = 0xdc;
    m[n++] = 0x00;
    m[n++] = 0x11;
    for (int i = 0; i < 17 && n + 2 <= sizeof m; i++) {
        m[n++] = 0xa1;
        m[n++] = (uint8_t)('a' + i);
    }
    return before_hello(x, m, n, obs, cap);
}

static int c_hello_unknown_features(struct ctx *x, char *obs, size_t cap)
{
    /* Unknown features are ignored: the link comes up (a control case). */
    static const char *const features[] = {"x-future", "relay"};
    struct hp_session s;
    struct hp_handshake_opts o = {.id = &x->mallory, .card = &x->mcard};
    struct tf_proto_buf hello;
    static uint8_t buf[TF_PROTO_FRAME_MAX];
    struct tf_proto_link_msg m;
    if (hp_handshake(&x->target, &o, &s, hp_now_ms() + SETUP_MS) != HP_OK) {
        hp_session_close(&s);
        return setup_failed = 1, -1;
    }
    int rc = tf_proto_link_hello(features, 2, &hello);
    if (hp_send_built(&s, rc, &hello) != TF_OK ||
        hp_recv_msg(&s, buf, &m, hp_now_ms() + SETUP_MS) != HP_OK || m.type != TF_PROTO_LINK_HELLO)
        OBS("no HELLO from the node");
    else
        observe_alive(&s, obs, cap);
    hp_session_close(&s);
    return 0;
}

static int c_peer_error(struct ctx *x, char *obs, size_t cap)
{
    struct tf_proto_buf msg;
    struct hp_session s;
    if (open_mallory(x, &s) != 0)
        return -1;
    int rc = tf_proto_link_error(TF_PROTO_LINK_ERROR_PROTOCOL, "you are wrong", &msg);
    if (hp_send_built(&s, rc, &msg) != TF_OK)
        OBS("closed while sending");
    else
        observe_end(&s, CLOSE_WAIT_MS, obs, cap);
    hp_session_close(&s);
    return 0;
}

static int c_peer_bye(struct ctx *x, char *obs, size_t cap)
{
    struct tf_proto_buf msg;
    struct hp_session s;
    if (open_mallory(x, &s) != 0)
        return -1;
    int rc = tf_proto_link_bye(&msg);
    if (hp_send_built(&s, rc, &msg) != TF_OK)
        OBS("closed while sending");
    else
        observe_end(&s, CLOSE_WAIT_MS, obs, cap);
    hp_session_close(&s);
    return 0;
}

static int c_ack_unknown_id(struct ctx *x, char *obs, size_t cap)
{
    uint8_t id[16];
    struct tf_proto_buf msg;
    randombytes_buf(id, sizeof id);
    int rc = tf_proto_link_ack(id, TF_PROTO_ACK_OK, TF_PROTO_ACK_REASON_NONE, &msg);
    return send_built_then_alive(x, rc, &msg, obs, cap);
}

static int c_ack_rejected_unknown_id(struct ctx *x, char *obs, size_t cap)
{
    uint8_t id[16];
    struct tf_proto_buf msg;
    randombytes_buf(id, sizeof id);
    int rc = tf_proto_link_ack(id, TF_PROTO_ACK_REJECTED, TF_PROTO_ACK_REASON_BAD_SIG, &msg);
    return send_built_then_alive(x, rc, &msg, obs, cap);
}

static int c_ack_unknown_reason(struct ctx *x, char *obs, size_t cap)
{
    /* [3, id, 1, 200]: a reason no version defines. */
    struct tf_proto_buf msg = {malloc(23), 23};
    if (msg.data == NULL)
        return setup_failed = 1, -1;
    msg.data[0] = 0x94;
    msg.data[1] = 0x03;
    msg.data[2] = 0xc4;
    msg.data[3] = 0x10;
    randombytes_buf(msg.data + 4, 16);
    msg.data[20] = 0x01;
    msg.data[21] = 0xcc;
    msg.data[22] = 200;
    return send_built_then_alive(x, TF_OK, &msg, obs, cap);
}

static int c_unsolicited_pong(struct ctx *x, char *obs, size_t cap)
{
    struct tf_proto_buf msg;
    int rc = tf_proto_link_ping(TF_PROTO_LINK_PONG, 12345, &msg);
    return send_built_then_alive(x, rc, &msg, obs, cap);
}

/* PINGs are rate-limited per link (ping_rate_per_s, ping_burst; defaults
 * 10 and 50): a burst is answered, and the PING beyond it closes the link
 * with ERROR 2.  The PONGs must number at least the burst and at most what
 * the rate allows over the time the flood took. */
#define PING_RATE 10
#define PING_BURST 50

static int c_ping_flood(struct ctx *x, char *obs, size_t cap)
{
    static uint8_t buf[TF_PROTO_FRAME_MAX];
    long n = x->count > 0 ? x->count : 2000;
    struct hp_session s;
    if (open_mallory(x, &s) != 0)
        return -1;
    uint64_t t0 = hp_now_ms();
    long sent = 0, got = 0, err = -1;
    for (long i = 0; i < n; i++) {
        struct tf_proto_buf ping;
        int rc = tf_proto_link_ping(TF_PROTO_LINK_PING, (uint64_t)i + 1000, &ping);
        if (hp_send_built(&s, rc, &ping) != TF_OK)
            break;
        sent++;
    }
    uint64_t deadline = hp_now_ms() + 15000;
    int rc;
    for (;;) {
        struct tf_proto_link_msg m;
        if ((rc = hp_recv_msg(&s, buf, &m, deadline)) != HP_OK)
            break;
        if (m.type == TF_PROTO_LINK_PONG && m.nonce >= 1000 && m.nonce < (uint64_t)(1000 + n))
            got++;
        if (m.type == TF_PROTO_LINK_ERROR && err < 0)
            err = (long)m.reason;
    }
    long allowed = PING_BURST + (long)((hp_now_ms() - t0) * PING_RATE / 1000) + 1;
    const char *end = rc == HP_CLOSED ? "closed" : rc == HP_TIMEOUT ? "open" : "garbled";
    if (got >= PING_BURST && got <= allowed)
        OBS("pongs within the budget, error %ld, %s", err, end);
    else
        OBS("%ld pongs of %ld sent (allowed %d..%ld), error %ld, %s", got, sent, PING_BURST,
            allowed, err, end);
    hp_session_close(&s);
    return 0;
}

/* Envelopes: the outer part. */

static int c_env_outer_garbage(struct ctx *x, char *obs, size_t cap)
{
    static const uint8_t junk[] = {'n', 'o', 't', ' ', 'a', 'n', ' ', 'e', 'n', 'v'};
    struct hp_session s;
    uint8_t id[16] = {0};
    if (open_mallory(x, &s) != 0)
        return -1;
    send_envelope_bytes(&s, junk, sizeof junk, id, obs, cap);
    hp_session_close(&s);
    return 0;
}

static int c_env_outer_version(struct ctx *x, char *obs, size_t cap)
{
    static const char text[] = "from the future";
    struct hp_envelope e;
    env_init(x, &e, &x->carol, TF_PROTO_MSG_TYPE_NOTE, (const uint8_t *)text, sizeof text - 1);
    e.version = 2;
    return envelope_case(x, &x->carol, &e, obs, cap);
}

static int c_env_sealed_too_short(struct ctx *x, char *obs, size_t cap)
{
    static const uint8_t sealed[48] = {1};
    struct hp_envelope e;
    env_init(x, &e, &x->carol, TF_PROTO_MSG_TYPE_NOTE, NULL, 0);
    e.sealed_raw = sealed;
    e.sealed_raw_len = sizeof sealed;
    return envelope_case(x, &x->carol, &e, obs, cap);
}

static int c_env_not_for_me(struct ctx *x, char *obs, size_t cap)
{
    static const char text[] = "for dave";
    struct hp_envelope e;
    env_init(x, &e, &x->carol, TF_PROTO_MSG_TYPE_NOTE, (const uint8_t *)text, sizeof text - 1);
    e.to_pk = x->dave.sign_pk;
    e.box_pk = x->dave.box_pk;
    return envelope_case(x, &x->carol, &e, obs, cap);
}

static int c_env_expired(struct ctx *x, char *obs, size_t cap)
{
    static const char text[] = "too late";
    struct hp_envelope e;
    env_init(x, &e, &x->carol, TF_PROTO_MSG_TYPE_NOTE, (const uint8_t *)text, sizeof text - 1);
    e.expires = now_s() - 60;
    return envelope_case(x, &x->carol, &e, obs, cap);
}

static int c_env_expires_zero(struct ctx *x, char *obs, size_t cap)
{
    static const char text[] = "epoch";
    struct hp_envelope e;
    env_init(x, &e, &x->carol, TF_PROTO_MSG_TYPE_NOTE, (const uint8_t *)text, sizeof text - 1);
    e.expires = 0;
    e.signed_expires = 0;
    return envelope_case(x, &x->carol, &e, obs, cap);
}

static int c_env_bad_seal(struct ctx *x, char *obs, size_t cap)
{
    static const char text[] = "sealed for dave";
    struct hp_envelope e;
    env_init(x, &e, &x->carol, TF_PROTO_MSG_TYPE_NOTE, (const uint8_t *)text, sizeof text - 1);
    e.box_pk = x->dave.box_pk;
    return envelope_case(x, &x->carol, &e, obs, cap);
}

static int c_env_sealed_random(struct ctx *x, char *obs, size_t cap)
{
    uint8_t sealed[120];
    struct hp_envelope e;
    randombytes_buf(sealed, sizeof sealed);
    env_init(x, &e, &x->carol, TF_PROTO_MSG_TYPE_NOTE, NULL, 0);
    e.sealed_raw = sealed;
    e.sealed_raw_len = sizeof sealed;
    return envelope_case(x, &x->carol, &e, obs, cap);
}

/* Envelopes: the inner part. */

static int c_env_inner_garbage(struct ctx *x, char *obs, size_t cap)
{
    static const uint8_t inner[] = {0xc1, 0xc1, 0xc1, 0x01};
    struct hp_envelope e;
    env_init(x, &e, &x->carol, TF_PROTO_MSG_TYPE_NOTE, NULL, 0);
    e.inner_raw = inner;
    e.inner_raw_len = sizeof inner;
    return envelope_case(x, &x->carol, &e, obs, cap);
}

static int c_env_inner_unknown_type(struct ctx *x, char *obs, size_t cap)
{
    static const char text[] = "type 10";
    struct hp_envelope e;
    env_init(x, &e, &x->carol, 10, (const uint8_t *)text, sizeof text - 1); /* requests took 7-9 */
    return envelope_case(x, &x->carol, &e, obs, cap);
}

static int c_env_inner_type_zero(struct ctx *x, char *obs, size_t cap)
{
    static const char text[] = "type 0";
    struct hp_envelope e;
    env_init(x, &e, &x->carol, 0, (const uint8_t *)text, sizeof text - 1);
    return envelope_case(x, &x->carol, &e, obs, cap);
}

static int c_env_bad_sig(struct ctx *x, char *obs, size_t cap)
{
    static const char text[] = "forged";
    struct hp_envelope e;
    env_init(x, &e, &x->carol, TF_PROTO_MSG_TYPE_NOTE, (const uint8_t *)text, sizeof text - 1);
    e.flip_sig = true;
    return envelope_case(x, &x->carol, &e, obs, cap);
}

static int c_env_wrong_sender_key(struct ctx *x, char *obs, size_t cap)
{
    /* Claims to be from Carol (on Carol's link) but Mallory signed it. */
    static const char text[] = "it's me, carol";
    struct hp_envelope e;
    env_init(x, &e, &x->mallory, TF_PROTO_MSG_TYPE_NOTE, (const uint8_t *)text, sizeof text - 1);
    e.from_pk = x->carol.sign_pk;
    return envelope_case(x, &x->carol, &e, obs, cap);
}

static int c_env_tampered_expiry(struct ctx *x, char *obs, size_t cap)
{
    static const char text[] = "stretched";
    struct hp_envelope e;
    env_init(x, &e, &x->carol, TF_PROTO_MSG_TYPE_NOTE, (const uint8_t *)text, sizeof text - 1);
    e.signed_expires = e.expires;
    e.expires += 86400;
    return envelope_case(x, &x->carol, &e, obs, cap);
}

static int c_env_tampered_type(struct ctx *x, char *obs, size_t cap)
{
    /* Signed as a note, delivered as a card update: the signature binds
     * the type.  (Built by hand: sign for type 1, write type 6.) */
    static const char text[] = "retyped";
    struct hp_envelope e;
    struct tf_proto_buf inner;
    env_init(x, &e, &x->carol, TF_PROTO_MSG_TYPE_NOTE, (const uint8_t *)text, sizeof text - 1);
    uint8_t m[32 + 16 + 8 + 2 + sizeof text];
    memcpy(m, e.to_pk, 32);
    memcpy(m + 32, e.msg_id, 16);
    for (int i = 0; i < 8; i++)
        m[48 + i] = (uint8_t)(e.expires >> (8 * (7 - i)));
    m[56] = 0;
    m[57] = TF_PROTO_MSG_TYPE_NOTE;
    memcpy(m + 58, text, sizeof text - 1);
    uint8_t sig[64];
    if (tf_proto_sign_tagged(&x->carol, TF_PROTO_DOMAIN_ENVELOPE, m, 58 + sizeof text - 1, sig) !=
        TF_OK)
        return setup_failed = 1, -1;
    struct tf_proto_mp_writer w;
    tf_proto_mp_writer_init(&w);
    tf_proto_mp_write_array(&w, 4);
    tf_proto_mp_write_bin(&w, x->carol.sign_pk, 32);
    tf_proto_mp_write_uint(&w, TF_PROTO_MSG_TYPE_CARD_UPDATE);
    tf_proto_mp_write_bin(&w, (const uint8_t *)text, sizeof text - 1);
    tf_proto_mp_write_bin(&w, sig, sizeof sig);
    if (tf_proto_mp_writer_finish(&w, &inner) != TF_OK)
        return setup_failed = 1, -1;
    e.inner_raw = inner.data;
    e.inner_raw_len = inner.len;
    int rc = envelope_case(x, &x->carol, &e, obs, cap);
    tf_proto_buf_free(&inner);
    return rc;
}

static int c_env_not_peer(struct ctx *x, char *obs, size_t cap)
{
    /* Genuinely from Carol, but sent over Mallory's link (no relays in v1). */
    static const char text[] = "relayed";
    struct hp_envelope e;
    env_init(x, &e, &x->carol, TF_PROTO_MSG_TYPE_NOTE, (const uint8_t *)text, sizeof text - 1);
    return envelope_case(x, &x->mallory, &e, obs, cap);
}

/* Notes. */

static int note_case(struct ctx *x, const struct tf_proto_identity *as, const uint8_t *text,
                     size_t len, char *obs, size_t cap)
{
    struct hp_envelope e;
    env_init(x, &e, as, TF_PROTO_MSG_TYPE_NOTE, text, len);
    return envelope_case(x, as, &e, obs, cap);
}

static int c_note_from_stranger(struct ctx *x, char *obs, size_t cap)
{
    static const char text[] = "hello, you don't know me";
    return note_case(x, &x->mallory, (const uint8_t *)text, sizeof text - 1, obs, cap);
}

static int c_note_empty(struct ctx *x, char *obs, size_t cap)
{
    return note_case(x, &x->carol, (const uint8_t *)"", 0, obs, cap);
}

static int c_note_control_chars(struct ctx *x, char *obs, size_t cap)
{
    static const char text[] = "bell\x07 and escape\x1b[2J";
    return note_case(x, &x->carol, (const uint8_t *)text, sizeof text - 1, obs, cap);
}

static int c_note_bad_utf8(struct ctx *x, char *obs, size_t cap)
{
    static const uint8_t text[] = {'o', 'k', 0xc0, 0xaf, 0xed, 0xa0, 0x80};
    return note_case(x, &x->carol, text, sizeof text, obs, cap);
}

static int c_note_too_long(struct ctx *x, char *obs, size_t cap)
{
    static uint8_t text[4001];
    memset(text, 'a', sizeof text);
    return note_case(x, &x->carol, text, sizeof text, obs, cap);
}

/* Setup: a valid proposal from Mallory (a stranger: stored), its body kept
 * for the copies below. */
static int c_setup_proposal(struct ctx *x, char *obs, size_t cap)
{
    struct prop_opts o = {.connector = &x->mallory};
    struct intro in;
    struct tf_proto_buf p;
    struct hp_session s;
    struct hp_envelope e;
    if (build_proposal(x, &o, &in, &p) != TF_OK)
        return setup_failed = 1, -1;
    intro_free(&in);
    if (write_file(x->file, p.data, p.len) != 0 || open_mallory(x, &s) != 0) {
        tf_proto_buf_free(&p);
        return setup_failed = 1, -1;
    }
    env_init(x, &e, &x->mallory, TF_PROTO_MSG_TYPE_PROPOSAL, p.data, p.len);
    send_envelope(&s, &e, obs, cap);
    hp_session_close(&s);
    tf_proto_buf_free(&p);
    return 0;
}

/* The saved proposal again, 50 times, each in a new envelope with a fresh
 * msg id and an expiry 399 days away: each is ACKed ok (already known) and
 * none may leave a seen row (they would fill the seen budget for free). */
static int c_proposal_copies(struct ctx *x, char *obs, size_t cap)
{
    static uint8_t body[FILE_MAX];
    long n = read_file(x->file, body, sizeof body), ok = 0;
    struct hp_session s;
    char last[128] = "";
    if (n <= 0)
        return setup_failed = 1, -1;
    if (open_mallory(x, &s) != 0)
        return -1;
    for (int i = 0; i < 50; i++) {
        struct hp_envelope e;
        env_init(x, &e, &x->mallory, TF_PROTO_MSG_TYPE_PROPOSAL, body, (size_t)n);
        e.expires = now_s() + 399u * 86400u;
        send_envelope(&s, &e, last, sizeof last);
        ok += strcmp(last, "ack 0/0") == 0;
    }
    hp_session_close(&s);
    OBS("%ldx ack 0/0", ok);
    return 0;
}

/* Setup: a valid note from Carol (stored), kept for the replay. */
static int c_setup_note(struct ctx *x, char *obs, size_t cap)
{
    static const char text[] = "a perfectly good note";
    struct hp_envelope e;
    struct tf_proto_buf env;
    struct hp_session s;
    env_init(x, &e, &x->carol, TF_PROTO_MSG_TYPE_NOTE, (const uint8_t *)text, sizeof text - 1);
    if (hp_envelope_build(&e, &env) != TF_OK || write_file(x->file, env.data, env.len) != 0) {
        fprintf(stderr, "tf-hostile: cannot save the envelope to %s\n",
                x->file ? x->file : "(no --file)");
        return setup_failed = 1, -1;
    }
    if (open_carol(x, &s) != 0) {
        tf_proto_buf_free(&env);
        return -1;
    }
    send_envelope_bytes(&s, env.data, env.len, e.msg_id, obs, cap);
    hp_session_close(&s);
    tf_proto_buf_free(&env);
    return 0;
}

/* Replays the envelope c_setup_note saved: a duplicate, ACKed ok. */
static int replay(struct ctx *x, const struct tf_proto_identity *as, char *obs, size_t cap)
{
    static uint8_t env[FILE_MAX];
    struct tf_proto_envelope d;
    struct hp_session s;
    long n = read_file(x->file, env, sizeof env);
    if (n <= 0 || tf_proto_envelope_decode(env, (size_t)n, &d) != TF_OK)
        return setup_failed = 1, -1;
    if (open_as(x, as, as == &x->carol ? &x->ccard : &x->mcard, &s) != 0)
        return -1;
    send_envelope_bytes(&s, env, (size_t)n, d.msg_id, obs, cap);
    hp_session_close(&s);
    return 0;
}

static int c_replay_note(struct ctx *x, char *obs, size_t cap)
{
    return replay(x, &x->carol, obs, cap);
}

static int c_replay_note_by_stranger(struct ctx *x, char *obs, size_t cap)
{
    /* The same bytes over Mallory's link: the msg id was seen, so it is a
     * duplicate (ACKed ok, nothing stored) before anything else is looked at. */
    return replay(x, &x->mallory, obs, cap);
}

/* Proposals. */

static int c_proposal_garbage(struct ctx *x, char *obs, size_t cap)
{
    static const uint8_t junk[] = {0x92, 0xc4, 0x01, 0x00, 0xc4, 0x01, 0x00};
    struct tf_proto_buf b = {(uint8_t *)(uintptr_t)junk, sizeof junk};
    return object_case(x, &x->carol, TF_PROTO_MSG_TYPE_PROPOSAL, &b, obs, cap);
}

static int c_proposal_bad_commitment(struct ctx *x, char *obs, size_t cap)
{
    struct prop_opts o = {.bad_commit = true};
    return proposal_case(x, &x->carol, &o, obs, cap);
}

static int c_proposal_wrong_side(struct ctx *x, char *obs, size_t cap)
{
    /* Side b's salt and side: commit_b is Dave's, not the victim's. */
    struct prop_opts o = {.side = 1};
    return proposal_case(x, &x->carol, &o, obs, cap);
}

static int c_proposal_bad_signature(struct ctx *x, char *obs, size_t cap)
{
    struct prop_opts o = {.signer = &x->mallory};
    return proposal_case(x, &x->carol, &o, obs, cap);
}

static int c_proposal_bad_intro_id(struct ctx *x, char *obs, size_t cap)
{
    struct prop_opts o = {.bad_intro_id = true};
    return proposal_case(x, &x->carol, &o, obs, cap);
}

static int c_proposal_foreign_card(struct ctx *x, char *obs, size_t cap)
{
    struct prop_opts o = {.card = &x->dcard};
    return proposal_case(x, &x->carol, &o, obs, cap);
}

static int c_proposal_expired(struct ctx *x, char *obs, size_t cap)
{
    struct prop_opts o = {.created_off = -2 * (int64_t)WEEK, .expires_off = -3600};
    return proposal_case(x, &x->carol, &o, obs, cap);
}

static int c_proposal_from_future(struct ctx *x, char *obs, size_t cap)
{
    struct prop_opts o = {.created_off = 3600, .expires_off = 2 * (int64_t)WEEK};
    return proposal_case(x, &x->carol, &o, obs, cap);
}

static int c_proposal_connector_not_sender(struct ctx *x, char *obs, size_t cap)
{
    /* Dave's genuine proposal, in an envelope from Carol. */
    struct prop_opts o = {.connector = &x->dave};
    return proposal_case(x, &x->carol, &o, obs, cap);
}

static int c_proposal_stranger_bad_commitment(struct ctx *x, char *obs, size_t cap)
{
    struct prop_opts o = {.connector = &x->mallory, .bad_commit = true};
    return proposal_case(x, &x->mallory, &o, obs, cap);
}

/* Setup: fills Carol's quota of pending proposals (--count, the victim's
 * max_pending_per_connector) and keeps the first intro in --file. */
static int c_setup_fill_cap(struct ctx *x, char *obs, size_t cap)
{
    long n = x->count > 0 ? x->count : 3, ok = 0, other = 0;
    struct hp_session s;
    char last[128] = "";
    if (open_carol(x, &s) != 0)
        return -1;
    for (long i = 0; i < n; i++) {
        struct prop_opts o = {0};
        struct intro in;
        struct tf_proto_buf p;
        struct hp_envelope e;
        if (build_proposal(x, &o, &in, &p) != TF_OK) {
            intro_free(&in);
            break;
        }
        if (i == 0 && intro_save(x->file, &in) != 0) {
            fprintf(stderr, "tf-hostile: cannot save the intro to %s\n",
                    x->file ? x->file : "(no --file)");
            tf_proto_buf_free(&p);
            intro_free(&in);
            hp_session_close(&s);
            return setup_failed = 1, -1;
        }
        env_init(x, &e, &x->carol, TF_PROTO_MSG_TYPE_PROPOSAL, p.data, p.len);
        send_envelope(&s, &e, last, sizeof last);
        tf_proto_buf_free(&p);
        intro_free(&in);
        if (strcmp(last, "ack 0/0") == 0)
            ok++;
        else
            other++;
    }
    if (other == 0)
        OBS("%ldx ack 0/0", ok);
    else
        OBS("%ldx ack 0/0, %ld other (last: %s)", ok, other, last);
    hp_session_close(&s);
    return 0;
}

static int c_proposal_over_cap(struct ctx *x, char *obs, size_t cap)
{
    long n = x->count > 0 ? x->count : 5, refused = 0;
    struct hp_session s;
    char last[128] = "", first_other[128] = "";
    if (open_carol(x, &s) != 0)
        return -1;
    for (long i = 0; i < n; i++) {
        struct prop_opts o = {0};
        struct intro in;
        struct tf_proto_buf p;
        struct hp_envelope e;
        int rc = build_proposal(x, &o, &in, &p);
        intro_free(&in);
        if (rc != TF_OK)
            break;
        env_init(x, &e, &x->carol, TF_PROTO_MSG_TYPE_PROPOSAL, p.data, p.len);
        send_envelope(&s, &e, last, sizeof last);
        tf_proto_buf_free(&p);
        if (strcmp(last, "ack 1/7") == 0)
            refused++;
        else if (!first_other[0])
            snprintf(first_other, sizeof first_other, "%s", last);
    }
    if (refused == n)
        OBS("%ldx ack 1/7", refused);
    else
        OBS("%ldx ack 1/7, %ld other (%s)", refused, n - refused, first_other);
    hp_session_close(&s);
    return 0;
}

/* Replies, introductions, closes. */

static int c_reply_unknown_intro(struct ctx *x, char *obs, size_t cap)
{
    struct intro in;
    struct tf_proto_reply r;
    struct tf_proto_buf b;
    if (unknown_intro(x, &in) != TF_OK)
        return setup_failed = 1, -1;
    memset(&r, 0, sizeof r);
    memcpy(r.intro_id, in.id, 32);
    r.side = TF_PROTO_SIDE_A;
    r.decision = TF_PROTO_DECISION_ACCEPT;
    r.card = (struct tf_proto_bytes){x->ccard.data, x->ccard.len};
    r.note = (struct tf_proto_bytes){(const uint8_t *)"yes", 3};
    r.time = now_s();
    int rc = tf_proto_reply_sign(&x->carol, &r, &b);
    intro_free(&in);
    if (rc != TF_OK)
        return setup_failed = 1, -1;
    rc = object_case(x, &x->carol, TF_PROTO_MSG_TYPE_REPLY, &b, obs, cap);
    tf_proto_buf_free(&b);
    return rc;
}

static int c_reply_garbage(struct ctx *x, char *obs, size_t cap)
{
    static const uint8_t junk[] = {0x91, 0x01};
    struct tf_proto_buf b = {(uint8_t *)(uintptr_t)junk, sizeof junk};
    return object_case(x, &x->carol, TF_PROTO_MSG_TYPE_REPLY, &b, obs, cap);
}

static int c_introduction_unknown_intro(struct ctx *x, char *obs, size_t cap)
{
    struct intro in;
    struct tf_proto_buf b;
    if (unknown_intro(x, &in) != TF_OK)
        return setup_failed = 1, -1;
    int rc = build_introduction(x, &x->carol, &in, &b);
    intro_free(&in);
    if (rc != TF_OK)
        return setup_failed = 1, -1;
    rc = object_case(x, &x->carol, TF_PROTO_MSG_TYPE_INTRODUCTION, &b, obs, cap);
    tf_proto_buf_free(&b);
    return rc;
}

static int c_introduction_garbage(struct ctx *x, char *obs, size_t cap)
{
    uint8_t junk[64];
    randombytes_buf(junk, sizeof junk);
    struct tf_proto_buf b = {junk, sizeof junk};
    return object_case(x, &x->carol, TF_PROTO_MSG_TYPE_INTRODUCTION, &b, obs, cap);
}

/* An introduction of the pending intro c_setup_fill_cap kept. */
static int introduction_of_pending(struct ctx *x, const struct tf_proto_identity *as, char *obs,
                                   size_t cap)
{
    struct intro in;
    struct tf_proto_buf b;
    if (intro_load(x->file, &in) != 0) {
        intro_free(&in);
        return setup_failed = 1, -1;
    }
    int rc = build_introduction(x, as, &in, &b);
    intro_free(&in);
    if (rc != TF_OK)
        return setup_failed = 1, -1;
    rc = object_case(x, as, TF_PROTO_MSG_TYPE_INTRODUCTION, &b, obs, cap);
    tf_proto_buf_free(&b);
    return rc;
}

static int c_introduction_not_accepted(struct ctx *x, char *obs, size_t cap)
{
    return introduction_of_pending(x, &x->carol, obs, cap);
}

static int c_introduction_not_connector(struct ctx *x, char *obs, size_t cap)
{
    return introduction_of_pending(x, &x->mallory, obs, cap);
}

static int close_case(struct ctx *x, const struct tf_proto_identity *as,
                      const struct tf_proto_identity *signer, const uint8_t id[32],
                      uint64_t expires, char *obs, size_t cap)
{
    struct tf_proto_buf b;
    struct hp_envelope e;
    if (tf_proto_close_sign(signer, id, &b) != TF_OK)
        return setup_failed = 1, -1;
    env_init(x, &e, as, TF_PROTO_MSG_TYPE_CLOSE, b.data, b.len);
    if (expires != 0)
        e.expires = expires;
    int rc = envelope_case(x, as, &e, obs, cap);
    tf_proto_buf_free(&b);
    return rc;
}

static int c_close_not_connector(struct ctx *x, char *obs, size_t cap)
{
    struct intro in;
    if (intro_load(x->file, &in) != 0) {
        intro_free(&in);
        return setup_failed = 1, -1;
    }
    int rc = close_case(x, &x->mallory, &x->mallory, in.id, 0, obs, cap);
    intro_free(&in);
    return rc;
}

static int c_close_bad_signature(struct ctx *x, char *obs, size_t cap)
{
    /* Carol's intro, Carol's link, Mallory's signature on the close. */
    struct intro in;
    if (intro_load(x->file, &in) != 0) {
        intro_free(&in);
        return setup_failed = 1, -1;
    }
    int rc = close_case(x, &x->carol, &x->mallory, in.id, 0, obs, cap);
    intro_free(&in);
    return rc;
}

static int c_close_garbage(struct ctx *x, char *obs, size_t cap)
{
    static const uint8_t junk[] = {0x92, 0xc4, 0x00, 0xc4, 0x00};
    struct tf_proto_buf b = {(uint8_t *)(uintptr_t)junk, sizeof junk};
    return object_case(x, &x->carol, TF_PROTO_MSG_TYPE_CLOSE, &b, obs, cap);
}

static int c_close_unknown_intro(struct ctx *x, char *obs, size_t cap)
{
    uint8_t id[32];
    randombytes_buf(id, sizeof id);
    return close_case(x, &x->carol, &x->carol, id, 0, obs, cap);
}

static int c_close_unknown_far_future(struct ctx *x, char *obs, size_t cap)
{
    /* From a stranger, expiring at the end of time. */
    uint8_t id[32];
    randombytes_buf(id, sizeof id);
    return close_case(x, &x->mallory, &x->mallory, id, UINT64_MAX, obs, cap);
}

/* Card updates. */

static int c_card_update_not_a_card(struct ctx *x, char *obs, size_t cap)
{
    static const char text[] = "tfcard1:not really";
    struct tf_proto_buf b = {(uint8_t *)(uintptr_t)text, sizeof text - 1};
    return object_case(x, &x->carol, TF_PROTO_MSG_TYPE_CARD_UPDATE, &b, obs, cap);
}

static int c_card_update_other_identity(struct ctx *x, char *obs, size_t cap)
{
    struct tf_proto_buf card;
    if (hp_sign_card(&x->dave, "Carol (really Dave)", "127.0.0.1:9", now_s(), 99, &card) != TF_OK)
        return setup_failed = 1, -1;
    int rc = object_case(x, &x->carol, TF_PROTO_MSG_TYPE_CARD_UPDATE, &card, obs, cap);
    tf_proto_buf_free(&card);
    return rc;
}

static int c_card_update_bad_signature(struct ctx *x, char *obs, size_t cap)
{
    struct tf_proto_buf card;
    if (hp_sign_card(&x->carol, "Carol", "127.0.0.1:9", now_s(), 99, &card) != TF_OK)
        return setup_failed = 1, -1;
    card.data[card.len - 5] ^= 0x10;
    int rc = object_case(x, &x->carol, TF_PROTO_MSG_TYPE_CARD_UPDATE, &card, obs, cap);
    tf_proto_buf_free(&card);
    return rc;
}

static int c_card_update_stale(struct ctx *x, char *obs, size_t cap)
{
    /* Sequence 1 again (the victim holds Carol's card 1): not newer. */
    struct tf_proto_buf card;
    if (hp_sign_card(&x->carol, "Carol Stale", "127.0.0.1:9", now_s(), 1, &card) != TF_OK)
        return setup_failed = 1, -1;
    int rc = object_case(x, &x->carol, TF_PROTO_MSG_TYPE_CARD_UPDATE, &card, obs, cap);
    tf_proto_buf_free(&card);
    return rc;
}

static int c_card_update_from_stranger(struct ctx *x, char *obs, size_t cap)
{
    struct tf_proto_buf card;
    if (hp_sign_card(&x->mallory, "Mallory", "127.0.0.1:9", now_s(), 7, &card) != TF_OK)
        return setup_failed = 1, -1;
    int rc = object_case(x, &x->mallory, TF_PROTO_MSG_TYPE_CARD_UPDATE, &card, obs, cap);
    tf_proto_buf_free(&card);
    return rc;
}

/* The table. */

/* direct (issue 17): DIRECT messages, an envelope's content without seal or
 * envelope signature, taken only from the link's peer on a link whose HELLOs
 * both list "direct". */

/* How direct_case mangles a valid direct message. */
enum direct_fault {
    DIRECT_OK,
    DIRECT_NONZERO_PAD, /* the last padding byte 0x01 */
    DIRECT_TRUNCATED,   /* one byte short of its class */
    DIRECT_TRAILING,    /* one zero byte past its class */
    DIRECT_WRONG_CLASS, /* padded to 8192 though it fits 4096 */
};

/* Encodes a direct message (msg_id, type, body, expires) and applies fault;
 * *out owned by the caller. */
static int direct_build(const uint8_t msg_id[16], uint64_t expires, uint16_t type,
                        const uint8_t *body, size_t len, enum direct_fault fault,
                        struct tf_proto_buf *out)
{
    struct tf_proto_buf d;
    int rc = tf_proto_envelope_direct_encode(msg_id, expires, type, body, len, &d);
    if (rc != TF_OK)
        return rc;
    size_t n = fault == DIRECT_TRUNCATED     ? d.len - 1
               : fault == DIRECT_TRAILING    ? d.len + 1
               : fault == DIRECT_WRONG_CLASS ? 8192
                                             : d.len;
    out->data = calloc(1, n);
    if (out->data == NULL) {
        tf_proto_buf_free(&d);
        return TF_E_NOMEM;
    }
    memcpy(out->data, d.data, n < d.len ? n : d.len);
    out->len = n;
    if (fault == DIRECT_NONZERO_PAD)
        out->data[n - 1] = 0x01;
    tf_proto_buf_free(&d);
    return TF_OK;
}

/* A direct message with an inner type that no node knows (10): written by
 * hand, since the encoder refuses it. */
static int direct_build_type(const uint8_t msg_id[16], uint64_t type, struct tf_proto_buf *out)
{
    struct tf_proto_mp_writer w;
    struct tf_proto_buf inner;
    tf_proto_mp_writer_init(&w);
    tf_proto_mp_write_array(&w, 4);
    tf_proto_mp_write_bin(&w, msg_id, 16);
    tf_proto_mp_write_uint(&w, now_s() + HOUR);
    tf_proto_mp_write_uint(&w, type);
    tf_proto_mp_write_bin(&w, (const uint8_t *)"x", 1);
    int rc = tf_proto_mp_writer_finish(&w, &inner);
    if (rc != TF_OK)
        return rc;
    out->len = tf_proto_envelope_padded_len(inner.len);
    out->data = calloc(1, out->len);
    if (out->data != NULL)
        memcpy(out->data, inner.data, inner.len);
    tf_proto_buf_free(&inner);
    return out->data != NULL ? TF_OK : TF_E_NOMEM;
}

/* Sends the direct message d as DIRECT on a link opened as `as`, whose HELLO
 * lists "direct" when negotiate is set, and observes the answer (the ACK of
 * msg_id, or an ERROR and the close). */
static int direct_send(struct ctx *x, const struct tf_proto_identity *as, bool negotiate,
                       const struct tf_proto_buf *d, const uint8_t msg_id[16], char *obs,
                       size_t cap)
{
    static const char *const features[] = {TF_PROTO_LINK_FEATURE_DIRECT};
    struct hp_session s;
    struct hp_handshake_opts o = {.id = as, .card = as == &x->carol ? &x->ccard : &x->mcard};
    int rc = hp_handshake(&x->target, &o, &s, hp_now_ms() + SETUP_MS);
    if (rc == HP_OK)
        rc = hp_hello_features(&s, features, negotiate ? 1 : 0, hp_now_ms() + SETUP_MS);
    if (rc != HP_OK) {
        hp_session_close(&s);
        return setup_failed = 1, -1;
    }
    send_link_bytes(&s, TF_PROTO_LINK_DIRECT, d->data, d->len, msg_id, obs, cap);
    hp_session_close(&s);
    return 0;
}

/* A note from as (DIRECT, negotiated or not), with fault and expires (0: an
 * hour from now). */
static int direct_note_case(struct ctx *x, const struct tf_proto_identity *as, bool negotiate,
                            enum direct_fault fault, uint64_t expires, char *obs, size_t cap)
{
    static const char text[] = "a note on a direct link";
    uint8_t msg_id[16];
    struct tf_proto_buf d;
    randombytes_buf(msg_id, sizeof msg_id);
    if (direct_build(msg_id, expires != 0 ? expires : now_s() + HOUR, TF_PROTO_MSG_TYPE_NOTE,
                     (const uint8_t *)text, sizeof text - 1, fault, &d) != TF_OK)
        return setup_failed = 1, -1;
    int rc = direct_send(x, as, negotiate, &d, msg_id, obs, cap);
    tf_proto_buf_free(&d);
    return rc;
}

static int c_direct_before_hello(struct ctx *x, char *obs, size_t cap)
{
    static const char text[] = "too early";
    uint8_t msg_id[16] = {1};
    struct tf_proto_buf d;
    int rc = direct_build(msg_id, now_s() + HOUR, TF_PROTO_MSG_TYPE_NOTE, (const uint8_t *)text,
                          sizeof text - 1, DIRECT_OK, &d);
    return before_hello_as(x, TF_PROTO_LINK_DIRECT, rc, &d, obs, cap);
}

static int c_direct_not_negotiated(struct ctx *x, char *obs, size_t cap)
{
    return direct_note_case(x, &x->carol, false, DIRECT_OK, 0, obs, cap);
}

static int c_direct_nonzero_padding(struct ctx *x, char *obs, size_t cap)
{
    return direct_note_case(x, &x->carol, true, DIRECT_NONZERO_PAD, 0, obs, cap);
}

static int c_direct_truncated(struct ctx *x, char *obs, size_t cap)
{
    return direct_note_case(x, &x->carol, true, DIRECT_TRUNCATED, 0, obs, cap);
}

static int c_direct_trailing(struct ctx *x, char *obs, size_t cap)
{
    return direct_note_case(x, &x->carol, true, DIRECT_TRAILING, 0, obs, cap);
}

static int c_direct_wrong_class(struct ctx *x, char *obs, size_t cap)
{
    return direct_note_case(x, &x->carol, true, DIRECT_WRONG_CLASS, 0, obs, cap);
}

static int c_direct_expired(struct ctx *x, char *obs, size_t cap)
{
    return direct_note_case(x, &x->carol, true, DIRECT_OK, now_s() - 60, obs, cap);
}

static int c_direct_far_future(struct ctx *x, char *obs, size_t cap)
{
    return direct_note_case(x, &x->carol, true, DIRECT_OK, now_s() + 401u * 86400u, obs, cap);
}

static int c_direct_from_stranger(struct ctx *x, char *obs, size_t cap)
{
    return direct_note_case(x, &x->mallory, true, DIRECT_OK, 0, obs, cap);
}

static int c_direct_unknown_type(struct ctx *x, char *obs, size_t cap)
{
    uint8_t msg_id[16];
    struct tf_proto_buf d;
    randombytes_buf(msg_id, sizeof msg_id);
    if (direct_build_type(msg_id, 10, &d) != TF_OK)
        return setup_failed = 1, -1;
    int rc = direct_send(x, &x->carol, true, &d, msg_id, obs, cap);
    tf_proto_buf_free(&d);
    return rc;
}

/* A proposal from Carol signed by Mallory, sent DIRECT: the statements
 * inside are verified as in a sealed envelope. */
static int c_direct_proposal_bad_signature(struct ctx *x, char *obs, size_t cap)
{
    struct prop_opts o = {.signer = &x->mallory};
    struct intro in;
    struct tf_proto_buf p, d;
    uint8_t msg_id[16];
    randombytes_buf(msg_id, sizeof msg_id);
    int rc = build_proposal(x, &o, &in, &p);
    intro_free(&in);
    if (rc != TF_OK)
        return setup_failed = 1, -1;
    rc = direct_build(msg_id, now_s() + HOUR, TF_PROTO_MSG_TYPE_PROPOSAL, p.data, p.len, DIRECT_OK,
                      &d);
    tf_proto_buf_free(&p);
    if (rc != TF_OK)
        return setup_failed = 1, -1;
    rc = direct_send(x, &x->carol, true, &d, msg_id, obs, cap);
    tf_proto_buf_free(&d);
    return rc;
}

/* Setup: a valid DIRECT note from Carol (stored); its msg id, expiry and
 * text are kept (msg_id || u64be(expires)) for the replays below. */
#define DIRECT_NOTE "a good note, sent direct"
static int c_setup_direct_note(struct ctx *x, char *obs, size_t cap)
{
    uint8_t saved[24];
    struct tf_proto_buf d;
    uint64_t expires = now_s() + HOUR;
    randombytes_buf(saved, 16);
    for (int i = 0; i < 8; i++)
        saved[16 + i] = (uint8_t)(expires >> (56 - 8 * i));
    if (write_file(x->file, saved, sizeof saved) != 0 ||
        direct_build(saved, expires, TF_PROTO_MSG_TYPE_NOTE, (const uint8_t *)DIRECT_NOTE,
                     strlen(DIRECT_NOTE), DIRECT_OK, &d) != TF_OK)
        return setup_failed = 1, -1;
    int rc = direct_send(x, &x->carol, true, &d, saved, obs, cap);
    tf_proto_buf_free(&d);
    return rc;
}

/* The note c_setup_direct_note sent, again: as DIRECT, or sealed and signed
 * by Carol under the same msg id (as a mailbox would push it).  Either way
 * a duplicate on (Carol, msg_id): ACKed ok, nothing stored. */
static int direct_replay(struct ctx *x, bool sealed, char *obs, size_t cap)
{
    uint8_t saved[24];
    uint64_t expires = 0;
    if (read_file(x->file, saved, sizeof saved) != (long)sizeof saved)
        return setup_failed = 1, -1;
    for (int i = 0; i < 8; i++)
        expires = expires << 8 | saved[16 + i];
    if (sealed) {
        struct hp_envelope e;
        env_init(x, &e, &x->carol, TF_PROTO_MSG_TYPE_NOTE, (const uint8_t *)DIRECT_NOTE,
                 strlen(DIRECT_NOTE));
        memcpy(e.msg_id, saved, 16);
        e.expires = expires;
        return envelope_case(x, &x->carol, &e, obs, cap);
    }
    struct tf_proto_buf d;
    if (direct_build(saved, expires, TF_PROTO_MSG_TYPE_NOTE, (const uint8_t *)DIRECT_NOTE,
                     strlen(DIRECT_NOTE), DIRECT_OK, &d) != TF_OK)
        return setup_failed = 1, -1;
    int rc = direct_send(x, &x->carol, true, &d, saved, obs, cap);
    tf_proto_buf_free(&d);
    return rc;
}

static int c_replay_direct_note(struct ctx *x, char *obs, size_t cap)
{
    return direct_replay(x, false, obs, cap);
}

static int c_replay_direct_note_sealed(struct ctx *x, char *obs, size_t cap)
{
    return direct_replay(x, true, obs, cap);
}

static const struct {
    const char *name, *expect, *state;
    case_fn *fn;
    const char *what;
} CASES[] = {
    /* Before and during the handshake. */
    {"hs-huge-length", "closed", "same", c_hs_huge_length,
     "handshake frame declaring 65535 bytes (over max_handshake_frame)"},
    {"hs-zero-length", "closed", "same", c_hs_zero_length, "handshake frame of length 0"},
    {"hs-msg1-payload", "closed", "same", c_hs_msg1_payload, "Noise message 1 carrying a payload"},
    {"hs-msg1-short", "closed", "same", c_hs_short_msg1, "Noise message 1 shorter than a key"},
    {"hs-card-not-a-card", "closed", "same", c_hs_card_not_a_card,
     "message 3 whose payload is no card"},
    {"hs-card-other-key", "closed", "same", c_hs_card_other_key,
     "message 3 with Carol's card over Mallory's Noise key"},
    {"hs-no-card", "closed", "same", c_hs_no_card, "message 3 without a card"},
    {"hs-stall-after-msg2", "closed (timeout)", "same", c_hs_stall_after_msg2,
     "message 1, then silence (handshake timeout)"},
    {"hs-slow-bytes", "closed (timeout)", "same", c_hs_slow_bytes,
     "message 1 one byte every 250 ms (handshake timeout)"},
    /* Frames on an authenticated link (Mallory, a stranger). */
    {"link-undecryptable", "closed", "same", c_link_undecryptable, "a frame that does not decrypt"},
    {"link-zero-frame", "error 2, closed", "same", c_link_zero_frame, "a frame of length 0"},
    {"link-huge-frame", "error 2, closed", "same", c_link_huge_frame,
     "a frame declaring 65535 bytes (over max_frame)"},
    {"link-truncated-frame", "closed (timeout)", "same", c_link_truncated_frame,
     "a frame declaring 200 bytes, 50 sent, then silence (idle timeout)"},
    {"link-slow-bytes", "closed (timeout)", "same", c_link_slow_bytes,
     "a PING one byte every 300 ms (idle timeout)"},
    /* Link messages. */
    {"msg-not-msgpack", "error 1, closed", "same", c_msg_not_msgpack, "plaintext c1 00 ff 42"},
    {"msg-unknown-type", "error 1, closed", "same", c_msg_unknown_type, "[8]"},
    {"msg-type-zero", "error 1, closed", "same", c_msg_type_zero, "[0]"},
    {"msg-huge-type", "error 1, closed", "same", c_msg_huge_type, "[2^64-1]"},
    {"msg-wrong-count", "error 1, closed", "same", c_msg_wrong_count, "[4] (PING, no nonce)"},
    {"msg-noncanonical", "error 1, closed", "same", c_msg_noncanonical, "[4, 5] with 5 as uint16"},
    {"msg-trailing", "error 1, closed", "same", c_msg_trailing, "[4, 5] and a trailing byte"},
    {"msg-two-in-one", "error 1, closed", "same", c_msg_two_in_one, "two PINGs in one frame"},
    {"msg-empty-array", "error 1, closed", "same", c_msg_empty_array, "[]"},
    {"msg-not-array", "error 1, closed", "same", c_msg_not_array, "the integer 4"},
    {"msg-huge-count", "error 1, closed", "same", c_msg_huge_count,
     "array16 claiming 65535 elements, none there"},
    {"msg-negative-nonce", "error 1, closed", "same", c_msg_negative_nonce, "[4, -1]"},
    {"msg-envelope-not-bin", "error 1, closed", "same", c_msg_envelope_not_bin,
     "[2, \"abc\"] (ENVELOPE with a str)"},
    {"msg-ack-short-id", "error 1, closed", "same", c_msg_ack_short_id, "ACK with a 2-byte msg id"},
    {"msg-error-control-text", "error 1, closed", "same", c_msg_error_text_control,
     "ERROR whose text holds a control character"},
    {"msg-hello-twice", "error 1, closed", "same", c_msg_hello_again, "a second HELLO"},
    {"ping-before-hello", "error 1, closed", "same", c_ping_before_hello, "PING before HELLO"},
    {"envelope-before-hello", "error 1, closed", "same", c_envelope_before_hello,
     "ENVELOPE before HELLO"},
    {"hello-version-2", "error 3, closed", "same", c_hello_version_2, "HELLO with version 2"},
    {"hello-17-features", "error 1, closed", "same", c_hello_too_many_features,
     "HELLO with 17 features (max 16)"},
    {"hello-unknown-features", "alive", "same", c_hello_unknown_features,
     "HELLO with unknown features (ignored; control case)"},
    {"peer-error", "closed", "same", c_peer_error, "ERROR from the peer"},
    {"peer-bye", "closed", "same", c_peer_bye, "BYE from the peer"},
    {"ack-unknown-id", "alive", "same", c_ack_unknown_id, "ACK ok for an id never sent"},
    {"ack-rejected-unknown-id", "alive", "same", c_ack_rejected_unknown_id,
     "ACK rejected/5 for an id never sent"},
    {"ack-unknown-reason", "alive", "same", c_ack_unknown_reason, "ACK rejected with reason 200"},
    {"pong-unsolicited", "alive", "same", c_unsolicited_pong, "PONG nobody asked for"},
    {"ping-flood", "pongs within the budget, error 2, closed", "same", c_ping_flood,
     "2000 PINGs in a burst: the burst is answered, then ERROR 2"},
    /* Envelopes: outer part (refused with reason 1 when the msg id can be
     * read; dropped when there is none to ACK). */
    {"env-outer-garbage", "no-ack, alive", "same", c_env_outer_garbage,
     "ENVELOPE whose bytes are no envelope"},
    {"env-outer-version-2", "ack 1/1", "same", c_env_outer_version, "envelope version 2"},
    {"env-sealed-too-short", "ack 1/1", "same", c_env_sealed_too_short,
     "sealed part of 48 bytes (min 49)"},
    {"env-not-for-me", "ack 1/2", "same", c_env_not_for_me, "addressed to Dave"},
    {"env-expired", "ack 1/3", "same", c_env_expired, "expired a minute ago"},
    {"env-expires-zero", "ack 1/3", "same", c_env_expires_zero, "expires 0"},
    {"env-bad-seal", "ack 1/4", "same", c_env_bad_seal, "sealed to Dave's box key"},
    {"env-sealed-random", "ack 1/4", "same", c_env_sealed_random, "sealed part random bytes"},
    {"env-inner-garbage", "ack 1/1", "same", c_env_inner_garbage, "inner part not msgpack"},
    {"env-inner-type-10", "ack 1/8", "same", c_env_inner_unknown_type, "inner type 10"},
    {"env-inner-type-0", "ack 1/8", "same", c_env_inner_type_zero, "inner type 0"},
    {"env-bad-signature", "ack 1/5", "same", c_env_bad_sig, "signature with a flipped bit"},
    {"env-wrong-sender-key", "ack 1/5", "same", c_env_wrong_sender_key,
     "from_pk Carol, signed by Mallory"},
    {"env-tampered-expiry", "ack 1/5", "same", c_env_tampered_expiry,
     "outer expiry a day later than signed"},
    {"env-tampered-type", "ack 1/5", "same", c_env_tampered_type,
     "signed as a note, typed as a card update"},
    {"env-not-peer", "ack 1/6", "same", c_env_not_peer, "Carol's genuine note over Mallory's link"},
    /* Notes. */
    {"note-from-stranger", "ack 1/7", "same", c_note_from_stranger, "a note from Mallory"},
    {"note-empty", "ack 1/9", "same", c_note_empty, "an empty note from Carol"},
    {"note-control-chars", "ack 1/9", "same", c_note_control_chars,
     "a note with BEL and ESC from Carol"},
    {"note-bad-utf8", "ack 1/9", "same", c_note_bad_utf8, "a note with invalid UTF-8"},
    {"note-too-long", "ack 1/9", "same", c_note_too_long, "a note of 4001 bytes"},
    {"setup-proposal", "ack 0/0", "changed", c_setup_proposal,
     "SETUP: a valid proposal from Mallory, kept for the copies"},
    {"proposal-copies", "50x ack 0/0", "same", c_proposal_copies,
     "the same proposal in 50 new envelopes (fresh ids, 399 days): no seen rows"},
    {"setup-note", "ack 0/0", "changed", c_setup_note,
     "SETUP: a valid note from Carol, kept for the replay"},
    {"replay-note", "ack 0/0", "same", c_replay_note,
     "the accepted note again (duplicate: ok, nothing changes)"},
    {"replay-note-by-stranger", "ack 0/0", "same", c_replay_note_by_stranger,
     "the accepted note again, over Mallory's link"},
    /* Proposals (Carol, a contact, unless said). */
    {"proposal-garbage", "ack 1/9", "same", c_proposal_garbage, "a proposal that is no proposal"},
    {"proposal-bad-commitment", "ack 1/9", "same", c_proposal_bad_commitment,
     "salt does not open my commitment"},
    {"proposal-wrong-side", "ack 1/9", "same", c_proposal_wrong_side,
     "asks me as side b (Dave's commitment)"},
    {"proposal-bad-signature", "ack 1/9", "same", c_proposal_bad_signature,
     "connector Carol, signed by Mallory"},
    {"proposal-bad-intro-id", "ack 1/9", "same", c_proposal_bad_intro_id,
     "intro id is not H(core)"},
    {"proposal-foreign-card", "ack 1/9", "same", c_proposal_foreign_card,
     "connector card is Dave's"},
    {"proposal-expired", "ack 1/9", "tomb", c_proposal_expired, "intro expired an hour ago"},
    {"proposal-from-future", "ack 1/9", "tomb", c_proposal_from_future,
     "intro created an hour from now"},
    {"proposal-connector-not-sender", "ack 1/6", "same", c_proposal_connector_not_sender,
     "Dave's proposal in Carol's envelope"},
    {"proposal-stranger-bad-commitment", "ack 1/9", "same", c_proposal_stranger_bad_commitment,
     "Mallory's proposal with a bad commitment"},
    {"setup-fill-cap", "3x ack 0/0", "changed", c_setup_fill_cap,
     "SETUP: 3 valid proposals from Carol (max_pending_per_connector = 3)"},
    {"proposal-over-cap", "5x ack 1/7", "same", c_proposal_over_cap,
     "5 more valid proposals from Carol: over the cap"},
    /* Replies, introductions, closes. */
    {"reply-unknown-intro", "ack 1/9", "same", c_reply_unknown_intro,
     "an accept for an intro I never proposed"},
    {"reply-garbage", "ack 1/9", "same", c_reply_garbage, "a reply that is no reply"},
    {"introduction-unknown-intro", "ack 1/9", "same", c_introduction_unknown_intro,
     "an introduction for an intro never proposed to me"},
    {"introduction-garbage", "ack 1/9", "same", c_introduction_garbage,
     "an introduction of random bytes"},
    {"introduction-not-accepted", "ack 1/9", "same", c_introduction_not_accepted,
     "Carol introduces a pending intro I never accepted"},
    {"introduction-not-connector", "ack 1/9", "same", c_introduction_not_connector,
     "Mallory introduces Carol's pending intro"},
    {"close-not-connector", "ack 1/9", "same", c_close_not_connector,
     "Mallory closes Carol's pending intro"},
    {"close-bad-signature", "ack 1/9", "same", c_close_bad_signature,
     "close of Carol's intro signed by Mallory, from Carol"},
    {"close-garbage", "ack 1/9", "same", c_close_garbage, "a close that is no close"},
    {"close-unknown-intro", "no-ack, alive", "same", c_close_unknown_intro,
     "Carol closes an intro I never heard of (not ACKed: its proposal may still come)"},
    {"close-unknown-far-future", "ack 1/1", "same", c_close_unknown_far_future,
     "Mallory closes an unknown intro in an envelope expiring at 2^64-1 (its id would be "
     "kept that long)"},
    /* Card updates. */
    {"card-update-not-a-card", "ack 1/9", "same", c_card_update_not_a_card,
     "card update whose body is no card"},
    {"card-update-other-identity", "ack 1/9", "same", c_card_update_other_identity,
     "Carol sends Dave's card"},
    {"card-update-bad-signature", "ack 1/9", "same", c_card_update_bad_signature,
     "Carol's card 99 with a broken signature"},
    {"card-update-stale", "ack 0/0", "seen", c_card_update_stale,
     "Carol's card with seq 1 again (not newer: nothing to do)"},
    {"card-update-from-stranger", "ack 1/7", "same", c_card_update_from_stranger,
     "Mallory's card: not a contact"},
    /* direct (issue 17) */
    {"direct-before-hello", "error 1, closed", "same", c_direct_before_hello,
     "DIRECT before HELLO"},
    {"direct-not-negotiated", "error 1, closed", "same", c_direct_not_negotiated,
     "DIRECT from Carol on a link whose HELLO did not list \"direct\""},
    {"direct-nonzero-padding", "error 1, closed", "same", c_direct_nonzero_padding,
     "DIRECT whose last padding byte is 1"},
    {"direct-truncated", "error 1, closed", "same", c_direct_truncated,
     "DIRECT one byte short of its size class"},
    {"direct-trailing", "error 1, closed", "same", c_direct_trailing,
     "DIRECT with one zero byte past its size class"},
    {"direct-wrong-class", "error 1, closed", "same", c_direct_wrong_class,
     "DIRECT padded to 8192 bytes though it fits 4096"},
    {"direct-unknown-type", "ack 1/8", "same", c_direct_unknown_type, "DIRECT of inner type 10"},
    {"direct-expired", "ack 1/3", "same", c_direct_expired, "DIRECT expired a minute ago"},
    {"direct-far-future", "ack 1/1", "same", c_direct_far_future,
     "DIRECT that expires in 401 days"},
    {"direct-from-stranger", "ack 1/7", "same", c_direct_from_stranger,
     "a DIRECT note from Mallory: its sender is the link's peer, not a contact"},
    {"direct-proposal-bad-signature", "ack 1/9", "same", c_direct_proposal_bad_signature,
     "a DIRECT proposal from Carol signed by Mallory"},
    {"setup-direct-note", "ack 0/0", "changed", c_setup_direct_note,
     "a good DIRECT note from Carol (stored)"},
    {"replay-direct-note", "ack 0/0", "same", c_replay_direct_note,
     "the same DIRECT again: a duplicate"},
    {"replay-direct-note-sealed", "ack 0/0", "same", c_replay_direct_note_sealed,
     "the same note sealed and signed under the same msg id: a duplicate"},
};

#define N_CASES (sizeof CASES / sizeof CASES[0])

/* Floods (issue 12): budgets under load, driven by test_hostile.py budgets.
 * Each prints one line of figures that the driver checks against the
 * victim's config. */

static int load(const char *home, struct tf_proto_identity *id);

struct flood {
    struct ctx *x;
    long count;
    long seconds;
    const char *sources[16]; /* source IPs, used in turn */
    size_t n_sources;
    const char *card_addr;
    long per_identity; /* strangers: links each identity opens */
};

/* A fresh stranger identity and its card (one address, addr). */
static int stranger_new(struct tf_proto_identity *id, struct tf_proto_buf *card, const char *addr)
{
    uint8_t seed[TF_PROTO_SEED_LEN];
    randombytes_buf(seed, sizeof seed);
    int rc = tf_proto_identity_from_seed(id, seed);
    sodium_memzero(seed, sizeof seed);
    if (rc == TF_OK)
        rc = hp_sign_card(id, "Stranger", addr, now_s(), 1, card);
    return rc;
}

/* One stranger link that never reads and sends PINGs until the node closes
 * it, count PINGs are sent or seconds pass (sends time out after 1 s when
 * the node has stopped reading). */
static int f_pings_no_read(struct flood *f)
{
    struct tf_proto_identity id;
    struct tf_proto_buf card = {0};
    struct hp_session s;
    if (stranger_new(&id, &card, "127.0.0.1:9") != TF_OK)
        return 3;
    struct hp_target t = f->x->target;
    t.rcvbuf = 4096;
    int rc = hp_open(&t, &id, &card, &s, hp_now_ms() + SETUP_MS);
    tf_proto_buf_free(&card);
    tf_proto_identity_deinit(&id);
    if (rc != HP_OK) {
        hp_session_close(&s);
        return 3;
    }
    struct timeval tv = {.tv_sec = 1};
    (void)setsockopt(s.fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
    uint64_t t0 = hp_now_ms(), end = t0 + (uint64_t)f->seconds * 1000;
    long sent = 0;
    bool cut = false;
    while (sent < f->count && hp_now_ms() < end) {
        struct tf_proto_buf ping;
        rc = tf_proto_link_ping(TF_PROTO_LINK_PING, (uint64_t)sent, &ping);
        if (hp_send_built(&s, rc, &ping) != TF_OK) {
            cut = true;
            break;
        }
        sent++;
    }
    /* Blocked or cut: is the connection closed by the node?  (Reading now
     * drains what it wrote before it closed.) */
    bool closed = hp_wait_closed(s.fd, hp_now_ms() + 5000) == HP_CLOSED;
    printf("pings-no-read: sent %ld pings in %llu ms; %s%s\n", sent,
           (unsigned long long)(hp_now_ms() - t0), closed ? "closed by the node" : "still open",
           cut ? "" : " (never blocked)");
    hp_session_close(&s);
    return 0;
}

/* count fresh stranger identities each open a link (source addresses in
 * turn) and hold them for seconds, answering the node's PINGs; then reports
 * how many came up and how many the node closed meanwhile. */
static int f_strangers(struct flood *f)
{
    static uint8_t buf[TF_PROTO_FRAME_MAX];
    long n = f->count;
    struct hp_session *ss = calloc((size_t)n, sizeof *ss);
    if (ss == NULL)
        return 3;
    long up = 0, failed = 0, closed = 0;
    uint64_t t0 = hp_now_ms(), end = t0 + (uint64_t)f->seconds * 1000;
    struct tf_proto_identity id = {0};
    struct tf_proto_buf card = {0};
    for (long i = 0; i < n; i++) {
        struct hp_target t = f->x->target;
        ss[i].fd = -1;
        if (f->n_sources > 0)
            t.source_ip = f->sources[(size_t)i % f->n_sources];
        if (i % f->per_identity == 0) {
            tf_proto_buf_free(&card);
            tf_proto_identity_deinit(&id);
            if (stranger_new(&id, &card, "127.0.0.1:9") != TF_OK) {
                free(ss);
                return 3;
            }
        }
        int rc = hp_open(&t, &id, &card, &ss[i], hp_now_ms() + 2000);
        if (rc == HP_OK) {
            up++;
        } else {
            failed++;
            hp_session_close(&ss[i]);
        }
    }
    tf_proto_buf_free(&card);
    tf_proto_identity_deinit(&id);
    uint64_t opened_ms = hp_now_ms() - t0;
    printf("opened\n");
    fflush(stdout);
    while (hp_now_ms() < end) {
        struct pollfd pf[1024];
        long idx[1024];
        nfds_t m = 0;
        for (long i = 0; i < n && m < 1024; i++) {
            if (ss[i].fd < 0)
                continue;
            pf[m] = (struct pollfd){.fd = ss[i].fd, .events = POLLIN};
            idx[m++] = i;
        }
        if (m == 0)
            break;
        if (poll(pf, m, 200) <= 0)
            continue;
        for (nfds_t k = 0; k < m; k++) {
            if (pf[k].revents == 0)
                continue;
            struct tf_proto_link_msg msg;
            int rc = hp_recv_msg(&ss[idx[k]], buf, &msg, hp_now_ms() + 500);
            if (rc != HP_OK && rc != HP_TIMEOUT) {
                closed++;
                hp_session_close(&ss[idx[k]]);
            }
        }
    }
    long open_now = 0;
    for (long i = 0; i < n; i++) {
        open_now += ss[i].fd >= 0;
        hp_session_close(&ss[i]);
    }
    free(ss);
    printf("strangers: %ld tried, %ld up, %ld failed, %ld closed by the node, %ld open after "
           "%ld s (opening took %llu ms)\n",
           n, up, failed, closed, open_now, f->seconds, (unsigned long long)opened_ms);
    return 0;
}

/* count fresh stranger identities each send the victim a proposal whose
 * connector card gives card_addr, over their own link, wait for the ACK and
 * close the link (so any answer must be dialled). */
static int f_proposals(struct flood *f)
{
    struct ctx *x = f->x;
    long acked = 0, other = 0;
    char last[128] = "";
    uint64_t end = hp_now_ms() + (uint64_t)f->seconds * 1000;
    for (long i = 0; i < f->count && hp_now_ms() < end; i++) {
        struct tf_proto_identity id;
        struct tf_proto_buf card = {0}, p = {0};
        struct hp_session s;
        struct intro in;
        struct hp_target t = x->target;
        if (f->n_sources > 0)
            t.source_ip = f->sources[(size_t)i % f->n_sources];
        if (stranger_new(&id, &card, f->card_addr) != TF_OK)
            return 3;
        struct prop_opts o = {.connector = &id, .card = &card};
        int rc = build_proposal(x, &o, &in, &p);
        intro_free(&in);
        if (rc == TF_OK && hp_open(&t, &id, &card, &s, hp_now_ms() + SETUP_MS) == HP_OK) {
            struct hp_envelope e;
            env_init(x, &e, &id, TF_PROTO_MSG_TYPE_PROPOSAL, p.data, p.len);
            send_envelope(&s, &e, last, sizeof last);
            if (strcmp(last, "ack 0/0") == 0)
                acked++;
            else
                other++;
        } else {
            other++;
            snprintf(last, sizeof last, "link failed");
        }
        hp_session_close(&s);
        tf_proto_buf_free(&p);
        tf_proto_buf_free(&card);
        tf_proto_identity_deinit(&id);
    }
    printf("proposals: %ld acked 0/0, %ld other (last: %s)\n", acked, other, last);
    return 0;
}

static const struct {
    const char *name;
    int (*fn)(struct flood *f);
} FLOODS[] = {
    {"pings-no-read", f_pings_no_read},
    {"strangers", f_strangers},
    {"proposals", f_proposals},
};

static int flood(int argc, char **argv)
{
    struct ctx x;
    struct flood f;
    const char *name = argc > 0 ? argv[0] : "", *target = NULL, *victim = NULL, *dave = NULL;
    memset(&x, 0, sizeof x);
    memset(&f, 0, sizeof f);
    f.x = &x;
    f.count = 1000;
    f.seconds = 10;
    f.card_addr = "127.0.0.1:9";
    f.per_identity = 1;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        bool has = i + 1 < argc;
        if (strcmp(a, "--target") == 0 && has)
            target = argv[++i];
        else if (strcmp(a, "--victim") == 0 && has)
            victim = argv[++i];
        else if (strcmp(a, "--dave") == 0 && has)
            dave = argv[++i];
        else if (strcmp(a, "--count") == 0 && has)
            f.count = strtol(argv[++i], NULL, 10);
        else if (strcmp(a, "--seconds") == 0 && has)
            f.seconds = strtol(argv[++i], NULL, 10);
        else if (strcmp(a, "--per-identity") == 0 && has)
            f.per_identity = strtol(argv[++i], NULL, 10);
        else if (strcmp(a, "--card-addr") == 0 && has)
            f.card_addr = argv[++i];
        else if (strcmp(a, "--source-ip") == 0 && has && f.n_sources < 16)
            f.sources[f.n_sources++] = argv[++i];
        else
            return 2;
    }
    if (target == NULL || hp_parse_target(target, &x.target) != 0 || f.count < 1 ||
        f.count > 10000000 || f.seconds < 1 || f.seconds > 600 || f.per_identity < 1)
        return 2;
    int ret = 2;
    for (size_t i = 0; i < sizeof FLOODS / sizeof FLOODS[0]; i++) {
        if (strcmp(FLOODS[i].name, name) != 0)
            continue;
        ret = 3;
        if (load(victim, &x.victim) == 0 && load(dave, &x.dave) == 0)
            ret = FLOODS[i].fn(&f);
    }
    tf_proto_identity_deinit(&x.victim);
    tf_proto_identity_deinit(&x.dave);
    return ret;
}

static const char USAGE[] =
    "usage: tf-hostile list\n"
    "       tf-hostile run CASE --target IP:PORT --victim HOME --mallory HOME --carol HOME\n"
    "                  --dave HOME [--file PATH] [--hs-timeout-ms MS] [--idle-timeout-ms MS]\n"
    "                  [--count N]\n"
    "       tf-hostile flood pings-no-read|strangers|proposals --target IP:PORT --victim HOME\n"
    "                  --dave HOME [--count N] [--seconds S] [--source-ip IP]... [--card-addr A]\n"
    "                  [--per-identity K]\n";

static int load(const char *home, struct tf_proto_identity *id)
{
    if (home == NULL) {
        fputs(USAGE, stderr);
        return -1;
    }
    return hp_load_identity(home, id);
}

static int run(int argc, char **argv)
{
    struct ctx x;
    const char *name = NULL, *target = NULL, *homes[4] = {NULL, NULL, NULL, NULL};
    memset(&x, 0, sizeof x);
    x.hs_timeout_ms = 10000;
    x.idle_timeout_ms = 300000;
    for (int i = 0; i < argc; i++) {
        const char *a = argv[i];
        bool has = i + 1 < argc;
        if (strcmp(a, "--target") == 0 && has)
            target = argv[++i];
        else if (strcmp(a, "--victim") == 0 && has)
            homes[0] = argv[++i];
        else if (strcmp(a, "--mallory") == 0 && has)
            homes[1] = argv[++i];
        else if (strcmp(a, "--carol") == 0 && has)
            homes[2] = argv[++i];
        else if (strcmp(a, "--dave") == 0 && has)
            homes[3] = argv[++i];
        else if (strcmp(a, "--file") == 0 && has)
            x.file = argv[++i];
        else if (strcmp(a, "--count") == 0 && has)
            x.count = strtol(argv[++i], NULL, 10);
        else if (strcmp(a, "--hs-timeout-ms") == 0 && has)
            x.hs_timeout_ms = strtol(argv[++i], NULL, 10);
        else if (strcmp(a, "--idle-timeout-ms") == 0 && has)
            x.idle_timeout_ms = strtol(argv[++i], NULL, 10);
        else if (a[0] != '-' && name == NULL)
            name = a;
        else
            return 2;
    }
    size_t which = N_CASES;
    for (size_t i = 0; name != NULL && i < N_CASES; i++)
        if (strcmp(CASES[i].name, name) == 0)
            which = i;
    if (which == N_CASES || target == NULL || hp_parse_target(target, &x.target) != 0) {
        fprintf(stderr, "tf-hostile: unknown case or bad --target\n");
        return 2;
    }
    int ret = 3;
    if (load(homes[0], &x.victim) != 0 || load(homes[1], &x.mallory) != 0 ||
        load(homes[2], &x.carol) != 0 || load(homes[3], &x.dave) != 0)
        goto out;
    uint64_t issued = now_s();
    if (hp_sign_card(&x.mallory, "Mallory", "127.0.0.1:9", issued, 1, &x.mcard) != TF_OK ||
        hp_sign_card(&x.carol, "Carol", "127.0.0.1:9", issued, 1, &x.ccard) != TF_OK ||
        hp_sign_card(&x.dave, "Dave", "127.0.0.1:9", issued, 1, &x.dcard) != TF_OK)
        goto out;
    char obs[256] = "";
    setup_failed = 0;
    int rc = CASES[which].fn(&x, obs, sizeof obs);
    if (rc != 0 || setup_failed) {
        printf("%s: expected %s; could not be played\n", CASES[which].name, CASES[which].expect);
        goto out;
    }
    bool ok = strcmp(obs, CASES[which].expect) == 0;
    printf("%s: expected %s; observed %s\n", CASES[which].name, CASES[which].expect, obs);
    ret = ok ? 0 : 1;
out:
    tf_proto_buf_free(&x.mcard);
    tf_proto_buf_free(&x.ccard);
    tf_proto_buf_free(&x.dcard);
    tf_proto_identity_deinit(&x.victim);
    tf_proto_identity_deinit(&x.mallory);
    tf_proto_identity_deinit(&x.carol);
    tf_proto_identity_deinit(&x.dave);
    return ret;
}

int main(int argc, char **argv)
{
    if (sodium_init() < 0)
        return 3;
    signal(SIGPIPE, SIG_IGN);
    if (argc == 2 && strcmp(argv[1], "list") == 0) {
        for (size_t i = 0; i < N_CASES; i++)
            printf("%s\t%s\t%s\t%s\n", CASES[i].name, CASES[i].expect, CASES[i].state,
                   CASES[i].what);
        return 0;
    }
    int rc = 2;
    if (argc >= 2 && strcmp(argv[1], "run") == 0)
        rc = run(argc - 2, argv + 2);
    else if (argc >= 3 && strcmp(argv[1], "flood") == 0)
        rc = flood(argc - 2, argv + 2);
    if (rc == 2)
        fputs(USAGE, stderr);
    return rc;
}
