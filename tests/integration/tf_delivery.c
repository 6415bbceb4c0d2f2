/* SPDX-License-Identifier: MIT */
/*
 * tf-delivery: a raw peer for test_delivery_budgets.py (ACK rules and
 * duplicate detection, docs/PROTOCOL.md sections 9 and 10).  It opens a real
 * link (Noise XX, HELLO) to a node as the identity of a home on which no
 * daemon runs, presenting a card it signs itself (address 127.0.0.1:9).
 *
 *   tf-delivery acks HOST:PORT --home HOME [--timeout-ms MS]
 *       sends envelopes whose outer part does not decode, but whose msg_id
 *       can be read (version 2, a sealed part of 48 bytes, six fields), each
 *       of which must get ACK rejected/1; envelopes of unknown inner types
 *       (7 and 0, signed by HOME), which must get rejected/8; and bytes with
 *       no msg_id at all, which get no ACK, after which the link must still
 *       answer a PING.  Prints "acks: NAME=S/R ..." ("none" where no ACK
 *       came); exit 0 when every answer is the expected one.
 *
 *   tf-delivery note HOST:PORT --home HOME --msg-id HEX --text TEXT
 *       sends a note signed by HOME with that msg_id (32 hex digits) and
 *       prints "ack S/R" (or "no ack"); exit 0 when an ACK came.
 *
 *   tf-delivery take HOST:PORT --home HOME [--hold-ms MS]
 *       keeps a link up for --hold-ms (default 3000), acknowledging (ok)
 *       every envelope the node sends on it; prints "took N sizes L1,L2,..."
 *       (each envelope's length in bytes, as received); exit 0.
 *
 * Exit 2 for a usage error, 1 otherwise.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <sodium.h>

#include "hostile/peer.h"
#include "proto/envelope.h"
#include "proto/link.h"

#define DEFAULT_TIMEOUT_MS 5000

struct opts {
    const char *target, *home, *msg_id, *text;
    long timeout_ms;
};

/* Sends env (bytes as given) in an ENVELOPE and waits for the ACK of
 * msg_id until the deadline: "S/R" in out, or "none". */
static void send_and_ack(struct hp_session *s, const uint8_t *env, size_t len,
                         const uint8_t msg_id[TF_PROTO_MSG_ID_LEN], long timeout_ms, char *out,
                         size_t cap)
{
    static uint8_t buf[TF_PROTO_NOISE_MSG_MAX];
    struct tf_proto_buf msg = {0};
    struct tf_proto_link_msg m;
    snprintf(out, cap, "none");
    if (hp_send_built(s, tf_proto_link_envelope(env, len, &msg), &msg) != 0) {
        snprintf(out, cap, "send-failed");
        return;
    }
    uint64_t deadline = hp_now_ms() + (uint64_t)timeout_ms;
    while (hp_recv_msg(s, buf, &m, deadline) == HP_OK) {
        if (m.type == TF_PROTO_LINK_ACK && msg_id != NULL &&
            memcmp(m.msg_id, msg_id, TF_PROTO_MSG_ID_LEN) == 0) {
            snprintf(out, cap, "%llu/%llu", (unsigned long long)m.status,
                     (unsigned long long)m.reason);
            return;
        }
    }
}

/* True if the link answers a PING with its PONG before the deadline. */
static bool link_alive(struct hp_session *s, long timeout_ms)
{
    static uint8_t buf[TF_PROTO_NOISE_MSG_MAX];
    struct tf_proto_buf msg = {0};
    struct tf_proto_link_msg m;
    uint64_t nonce = 4242;
    if (hp_send_built(s, tf_proto_link_ping(TF_PROTO_LINK_PING, nonce, &msg), &msg) != 0)
        return false;
    uint64_t deadline = hp_now_ms() + (uint64_t)timeout_ms;
    while (hp_recv_msg(s, buf, &m, deadline) == HP_OK)
        if (m.type == TF_PROTO_LINK_PONG && m.nonce == nonce)
            return true;
    return false;
}

static int open_link(const struct opts *o, struct tf_proto_identity *id, struct tf_proto_buf *card,
                     struct hp_session *s)
{
    struct hp_target t;
    if (hp_parse_target(o->target, &t) != 0) {
        fprintf(stderr, "tf-delivery: bad target %s\n", o->target);
        return -1;
    }
    if (hp_load_identity(o->home, id) != 0)
        return -1;
    if (hp_sign_card(id, "Tester", "127.0.0.1:9", (uint64_t)time(NULL), 1, card) != TF_OK ||
        hp_open(&t, id, card, s, hp_now_ms() + (uint64_t)o->timeout_ms) != HP_OK) {
        fprintf(stderr, "tf-delivery: no link to %s\n", o->target);
        return -1;
    }
    s->auto_pong = true;
    return 0;
}

/* An envelope from id to the node, built by hp_envelope_build. */
static void base_envelope(const struct tf_proto_identity *id, const struct hp_session *s,
                          uint64_t type, const char *text, struct hp_envelope *e)
{
    memset(e, 0, sizeof *e);
    e->version = TF_PROTO_ENVELOPE_VERSION;
    randombytes_buf(e->msg_id, sizeof e->msg_id);
    e->to_pk = s->peer_sign_pk;
    e->box_pk = s->peer_box_pk;
    e->expires = (uint64_t)time(NULL) + 3600;
    e->signer = id;
    e->type = type;
    e->body = (const uint8_t *)text;
    e->body_len = strlen(text);
}

static int mode_acks(const struct opts *o)
{
    struct tf_proto_identity id = {0};
    struct tf_proto_buf card = {0};
    struct hp_session s = {.fd = -1};
    if (open_link(o, &id, &card, &s) != 0) {
        tf_proto_buf_free(&card);
        tf_proto_identity_deinit(&id);
        return 1;
    }
    static const uint8_t short_sealed[crypto_box_SEALBYTES] = {0};
    struct {
        const char *name, *want;
        uint64_t version, type;
        bool short_sealed, six_fields, no_id;
    } cases[] = {
        {"version-2", "1/1", 2, TF_PROTO_MSG_TYPE_NOTE, false, false, false},
        {"sealed-48-bytes", "1/1", 1, TF_PROTO_MSG_TYPE_NOTE, true, false, false},
        {"six-fields", "1/1", 1, TF_PROTO_MSG_TYPE_NOTE, false, true, false},
        {"inner-type-10", "1/8", 1, 10, false, false, false}, /* requests took 7-9 */
        {"inner-type-0", "1/8", 1, 0, false, false, false},
        {"no-msg-id", "none", 1, TF_PROTO_MSG_TYPE_NOTE, false, false, true},
    };
    bool ok = true;
    printf("acks:");
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        struct hp_envelope e;
        struct tf_proto_buf env = {0};
        char got[32];
        base_envelope(&id, &s, cases[i].type, "a test", &e);
        e.version = cases[i].version;
        if (cases[i].short_sealed) {
            e.sealed_raw = short_sealed;
            e.sealed_raw_len = sizeof short_sealed;
        }
        int rc = hp_envelope_build(&e, &env);
        if (rc == TF_OK && cases[i].six_fields) {
            /* fixarray 5 -> 6, and a nil after the sealed part */
            uint8_t *p = realloc(env.data, env.len + 1);
            rc = p != NULL ? TF_OK : TF_E_NOMEM;
            if (p != NULL) {
                env.data = p;
                env.data[0] = 0x96;
                env.data[env.len++] = 0xc0;
            }
        }
        if (rc == TF_OK && cases[i].no_id) {
            /* [1] alone: an array with a version and no msg_id */
            env.data[0] = 0x91;
            env.len = 2;
        }
        if (rc != TF_OK) {
            snprintf(got, sizeof got, "build-failed");
        } else {
            /* Where no ACK is expected, a shorter wait will do. */
            long wait = cases[i].no_id ? 1000 : o->timeout_ms;
            send_and_ack(&s, env.data, env.len, e.msg_id, wait, got, sizeof got);
        }
        bool good = strcmp(got, cases[i].want) == 0;
        ok = ok && good;
        printf(" %s=%s%s", cases[i].name, got, good ? "" : "(WRONG)");
        tf_proto_buf_free(&env);
    }
    bool alive = link_alive(&s, o->timeout_ms);
    printf(" link=%s\n", alive ? "alive" : "DEAD");
    hp_session_close(&s);
    tf_proto_buf_free(&card);
    tf_proto_identity_deinit(&id);
    return ok && alive ? 0 : 1;
}

static int mode_note(const struct opts *o)
{
    uint8_t msg_id[TF_PROTO_MSG_ID_LEN];
    size_t n = 0;
    if (o->msg_id == NULL || o->text == NULL ||
        sodium_hex2bin(msg_id, sizeof msg_id, o->msg_id, strlen(o->msg_id), NULL, &n, NULL) != 0 ||
        n != sizeof msg_id) {
        fprintf(stderr, "tf-delivery: note needs --msg-id (32 hex digits) and --text\n");
        return 2;
    }
    struct tf_proto_identity id = {0};
    struct tf_proto_buf card = {0}, env = {0};
    struct hp_session s = {.fd = -1};
    int status = 1;
    if (open_link(o, &id, &card, &s) == 0) {
        struct hp_envelope e;
        char got[32];
        base_envelope(&id, &s, TF_PROTO_MSG_TYPE_NOTE, o->text, &e);
        memcpy(e.msg_id, msg_id, sizeof msg_id);
        if (hp_envelope_build(&e, &env) == TF_OK) {
            send_and_ack(&s, env.data, env.len, msg_id, o->timeout_ms, got, sizeof got);
            if (strcmp(got, "none") == 0) {
                printf("no ack\n");
            } else {
                printf("ack %s\n", got);
                status = 0;
            }
        }
    }
    hp_session_close(&s);
    tf_proto_buf_free(&env);
    tf_proto_buf_free(&card);
    tf_proto_identity_deinit(&id);
    return status;
}

static int mode_take(const struct opts *o, long hold_ms)
{
    static uint8_t buf[TF_PROTO_NOISE_MSG_MAX];
    struct tf_proto_identity id = {0};
    struct tf_proto_buf card = {0};
    struct hp_session s = {.fd = -1};
    unsigned took = 0;
    char sizes[512] = "";
    size_t used = 0;
    int status = 1;
    if (open_link(o, &id, &card, &s) == 0) {
        status = 0;
        uint64_t deadline = hp_now_ms() + (uint64_t)hold_ms;
        struct tf_proto_link_msg m;
        struct tf_proto_envelope e;
        while (hp_recv_msg(&s, buf, &m, deadline) == HP_OK) {
            if (m.type != TF_PROTO_LINK_ENVELOPE ||
                tf_proto_envelope_decode(m.envelope.ptr, m.envelope.len, &e) != TF_OK)
                continue;
            struct tf_proto_buf ack = {0};
            int rc = tf_proto_link_ack(e.msg_id, TF_PROTO_ACK_OK, TF_PROTO_ACK_REASON_NONE, &ack);
            if (hp_send_built(&s, rc, &ack) == 0)
                took++;
            int n = snprintf(sizes + used, sizeof sizes - used, "%s%zu", used > 0 ? "," : "",
                             m.envelope.len);
            if (n > 0 && (size_t)n < sizeof sizes - used)
                used += (size_t)n;
        }
    }
    printf("took %u sizes %s\n", took, sizes);
    hp_session_close(&s);
    tf_proto_buf_free(&card);
    tf_proto_identity_deinit(&id);
    return status;
}

static int usage(void)
{
    fprintf(stderr, "usage: tf-delivery acks HOST:PORT --home HOME [--timeout-ms MS]\n"
                    "       tf-delivery note HOST:PORT --home HOME --msg-id HEX --text TEXT\n"
                    "       tf-delivery take HOST:PORT --home HOME [--hold-ms MS]\n");
    return 2;
}

int main(int argc, char **argv)
{
    if (sodium_init() < 0 || argc < 3)
        return usage();
    struct opts o = {.target = argv[2], .timeout_ms = DEFAULT_TIMEOUT_MS};
    long hold_ms = 3000;
    for (int i = 3; i < argc; i++) {
        if (i + 1 >= argc)
            return usage();
        const char *v = argv[++i];
        if (strcmp(argv[i - 1], "--home") == 0)
            o.home = v;
        else if (strcmp(argv[i - 1], "--msg-id") == 0)
            o.msg_id = v;
        else if (strcmp(argv[i - 1], "--text") == 0)
            o.text = v;
        else if (strcmp(argv[i - 1], "--timeout-ms") == 0)
            o.timeout_ms = strtol(v, NULL, 10);
        else if (strcmp(argv[i - 1], "--hold-ms") == 0)
            hold_ms = strtol(v, NULL, 10);
        else
            return usage();
    }
    if (o.home == NULL || o.timeout_ms <= 0)
        return usage();
    if (strcmp(argv[1], "acks") == 0)
        return mode_acks(&o);
    if (strcmp(argv[1], "note") == 0)
        return mode_note(&o);
    if (strcmp(argv[1], "take") == 0 && hold_ms > 0)
        return mode_take(&o, hold_ms);
    return usage();
}
