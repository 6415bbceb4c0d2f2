/* SPDX-License-Identifier: MIT */
/*
 * tf-flood: signed intro objects from many identities, against a running
 * twofoldd, for the budget and agreement tests (test_budgets.py,
 * test_intro.py).  Built on tests/hostile/peer.c (real Noise_XX links).
 *
 *   tf-flood proposals --target IP:PORT --victim HOME --identities N --per M
 *                      [--expires-s S] [--addr IP:PORT] [--seed HEX]
 *       N fresh identities (strangers to the victim, derived from a random
 *       or given seed), each opening one link and proposing M intros to the
 *       victim (side a; side b is a made-up key), pipelined, then reading
 *       their ACKs.  Each card advertises --addr (default 127.0.0.1:9).
 *       Prints "ok=K refused=R other=O noack=A" (O: any other reason) and
 *       exits 0 when every envelope got an ACK, 1 otherwise.
 *
 *   tf-flood reply --target IP:PORT --party HOME --connector HOME --intro HEX
 *                  --side a|b --time-offset SECONDS [--decision accept|decline]
 *       As the party (its key read from HOME), signs an acceptance (or a
 *       decline) of intro HEX for side a or b whose time is now + SECONDS,
 *       sends it to the connector over a new link and prints
 *       "ack STATUS/REASON" (exit 0), or "no-ack" (exit 1).
 *
 *   tf-flood proposals ... --request HEX
 *       The same, each proposal naming request HEX as the one it answers
 *       (requests: the eighth field, proto/intro.h).
 *
 *   tf-flood requests --target IP:PORT --victim HOME --identities N
 *                     [--seed HEX]
 *       N fresh identities (strangers), each sending the victim one request
 *       for an introduction; prints and exits as proposals does.
 *
 *   tf-flood feedback --target IP:PORT --party HOME --connector HOME --intro HEX
 *       As the party, sends the connector feedback ("helped") on intro HEX
 *       and prints the ACK as reply does (requests: feedback's tests).
 *
 *   tf-flood upload --target IP:PORT --tenant TEXT_ID --msg-id HEX [--seed HEX]
 *       As the identity from seed (32 bytes in hex; default random), uploads
 *       to the mailbox at IP:PORT one envelope for TEXT_ID with msg id HEX
 *       (16 bytes): an outer part that decodes, a day to live, random sealed
 *       bytes.  Prints "ack STATUS/REASON" (exit 0) or "no-ack" (exit 1)
 *       (mailbox: the duplicate check per uploader).
 *
 *   tf-flood cards [--seed HEX] < SPEC
 *       One signed card (text form) per SPEC line "NAME OFFERS SEEKS ISSUED"
 *       (OFFERS and SEEKS: comma-separated tags, or - for none), line i
 *       signed by identity H(seed || i) (requests: suggest's tests).
 *
 * Exit 2 for a usage error, 3 when a link could not be opened.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <sodium.h>

#include "peer.h"
#include "proto/card.h"
#include "proto/envelope.h"
#include "proto/intro.h"
#include "proto/link.h"
#include "proto/request.h"
#include "proto/statement.h"

#define LINK_MS 10000
#define ACK_MS 20000
#define PER_MAX 100000

static uint64_t now_s(void)
{
    return (uint64_t)time(NULL);
}

struct opts {
    const char *target, *victim, *party, *connector, *intro, *addr, *seed, *request, *tenant,
        *msg_id;
    bool requests; /* send requests rather than proposals */
    bool feedback; /* reply mode: send feedback (helped) rather than a reply */
    bool decline;  /* reply mode: a decline rather than an acceptance */
    long identities, per, expires_s, time_offset;
    int side;
};

/* A proposal from conn to victim (side a), signed; *out owned by the caller. */
static int build_proposal(const struct tf_proto_identity *conn, const struct tf_proto_buf *card,
                          const uint8_t victim_pk[32], uint64_t expires_s, const char *request,
                          struct tf_proto_buf *out)
{
    struct tf_proto_intro_core c;
    struct tf_proto_proposal p;
    struct tf_proto_buf core = {0};
    uint8_t salt[2][32], other[32];
    memset(&c, 0, sizeof c);
    memset(&p, 0, sizeof p);
    randombytes_buf(salt, sizeof salt);
    randombytes_buf(other, sizeof other);
    memcpy(c.connector_pk, conn->sign_pk, 32);
    tf_proto_intro_commit(victim_pk, salt[0], c.commit_a);
    tf_proto_intro_commit(other, salt[1], c.commit_b);
    c.topic = (struct tf_proto_bytes){(const uint8_t *)"flood", 5};
    c.created = now_s();
    c.expires = c.created + expires_s;
    c.mode = TF_PROTO_INTRO_MODE_PARALLEL;
    int rc = tf_proto_intro_core_encode(&c, &core);
    if (rc != TF_OK)
        return rc;
    tf_proto_intro_id(core.data, core.len, p.intro_id);
    p.core_bytes = (struct tf_proto_bytes){core.data, core.len};
    p.side = TF_PROTO_SIDE_A;
    memcpy(p.salt, salt[0], 32);
    p.connector_card = (struct tf_proto_bytes){card->data, card->len};
    p.about_other = (struct tf_proto_bytes){(const uint8_t *)"", 0};
    p.note = (struct tf_proto_bytes){(const uint8_t *)"a flood", 7};
    if (request != NULL) {
        p.has_request = true;
        if (sodium_hex2bin(p.request_id, sizeof p.request_id, request, strlen(request), NULL, NULL,
                           NULL) != 0)
            rc = TF_E_BAD_VALUE;
    }
    if (rc == TF_OK)
        rc = tf_proto_proposal_sign(conn, &p, out);
    tf_proto_buf_free(&core);
    return rc;
}

/* A request from asker to victim, signed; *out owned by the caller. */
static int build_request(const struct tf_proto_identity *asker, const uint8_t victim_pk[32],
                         struct tf_proto_buf *out)
{
    struct tf_proto_request q;
    memset(&q, 0, sizeof q);
    memcpy(q.asker_pk, asker->sign_pk, 32);
    memcpy(q.connector_pk, victim_pk, 32);
    q.seeking = (struct tf_proto_bytes){(const uint8_t *)"flood", 5};
    q.note = (struct tf_proto_bytes){(const uint8_t *)"", 0};
    q.created = now_s();
    q.expires = q.created + 86400;
    randombytes_buf(q.nonce, sizeof q.nonce);
    return tf_proto_request_sign(asker, &q, out, NULL);
}

/* Seals body (type) from `from` to `to` and sends it; msg_id is its id. */
static int send_body(struct hp_session *s, const struct tf_proto_identity *from,
                     const struct tf_proto_identity *to, uint64_t type,
                     const struct tf_proto_buf *body, uint8_t msg_id[16])
{
    struct hp_envelope e;
    struct tf_proto_buf env = {0}, msg = {0};
    memset(&e, 0, sizeof e);
    e.version = TF_PROTO_ENVELOPE_VERSION;
    randombytes_buf(e.msg_id, sizeof e.msg_id);
    memcpy(msg_id, e.msg_id, 16);
    e.to_pk = to->sign_pk;
    e.box_pk = to->box_pk;
    e.expires = now_s() + 3600;
    e.signer = from;
    e.type = type;
    e.body = body->data;
    e.body_len = body->len;
    int rc = hp_envelope_build(&e, &env);
    if (rc == TF_OK)
        rc = tf_proto_link_envelope(env.data, env.len, &msg);
    tf_proto_buf_free(&env);
    return rc == TF_OK ? hp_send_built(s, rc, &msg) : rc;
}

/* Reads ACKs until n arrived or the deadline; counts them by reason. */
struct tally {
    long ok, refused, other, acks;
};

static void read_acks(struct hp_session *s, long n, struct tally *t)
{
    static uint8_t buf[TF_PROTO_FRAME_MAX];
    uint64_t deadline = hp_now_ms() + ACK_MS;
    while (t->acks < n) {
        struct tf_proto_link_msg m;
        int rc = hp_recv_msg(s, buf, &m, deadline);
        if (rc != HP_OK)
            return;
        if (m.type != TF_PROTO_LINK_ACK)
            continue;
        t->acks++;
        if (m.status == TF_PROTO_ACK_OK)
            t->ok++;
        else if (m.reason == TF_PROTO_ACK_REASON_REFUSED)
            t->refused++;
        else
            t->other++;
    }
}

static int flood(const struct opts *o)
{
    struct hp_target target;
    struct tf_proto_identity victim = {0};
    uint8_t seed[32];
    if (o->victim == NULL || o->target == NULL || o->identities < 1 || o->per < 1 ||
        o->per > PER_MAX || hp_parse_target(o->target, &target) != 0)
        return 2;
    if (o->seed != NULL) {
        if (sodium_hex2bin(seed, sizeof seed, o->seed, strlen(o->seed), NULL, NULL, NULL) != 0)
            return 2;
    } else {
        randombytes_buf(seed, sizeof seed);
    }
    if (hp_load_identity(o->victim, &victim) != 0)
        return 3;
    struct tally t = {0, 0, 0, 0};
    int result = 0;
    for (long i = 0; i < o->identities && result == 0; i++) {
        struct tf_proto_identity id = {0};
        struct tf_proto_buf card = {0};
        struct hp_session s;
        uint8_t my_seed[32], msg_id[16];
        /* Identity i: H(seed || i). */
        crypto_generichash_state h;
        crypto_generichash_init(&h, NULL, 0, sizeof my_seed);
        crypto_generichash_update(&h, seed, sizeof seed);
        crypto_generichash_update(&h, (const uint8_t *)&i, sizeof i);
        crypto_generichash_final(&h, my_seed, sizeof my_seed);
        if (tf_proto_identity_from_seed(&id, my_seed) != TF_OK ||
            hp_sign_card(&id, "Flood", o->addr ? o->addr : "127.0.0.1:9", now_s(), 1, &card) !=
                TF_OK) {
            tf_proto_identity_deinit(&id);
            result = 3;
            break;
        }
        sodium_memzero(my_seed, sizeof my_seed);
        if (hp_open(&target, &id, &card, &s, hp_now_ms() + LINK_MS) != HP_OK) {
            fprintf(stderr, "tf-flood: link %ld could not be opened\n", i);
            hp_session_close(&s);
            result = 3;
        }
        s.auto_pong = true;
        long sent = 0;
        for (long k = 0; result == 0 && k < o->per; k++) {
            struct tf_proto_buf p = {0};
            int rc = o->requests
                         ? build_request(&id, victim.sign_pk, &p)
                         : build_proposal(&id, &card, victim.sign_pk,
                                          o->expires_s > 0 ? (uint64_t)o->expires_s : 7 * 86400,
                                          o->request, &p);
            if (rc == TF_OK)
                rc = send_body(&s, &id, &victim,
                               o->requests ? TF_PROTO_MSG_TYPE_REQUEST : TF_PROTO_MSG_TYPE_PROPOSAL,
                               &p, msg_id);
            tf_proto_buf_free(&p);
            if (rc != TF_OK)
                break; /* the node may cut a flood short; count what it answered */
            sent++;
        }
        if (result == 0) {
            struct tally mine = {0, 0, 0, 0};
            read_acks(&s, sent, &mine);
            t.ok += mine.ok;
            t.refused += mine.refused;
            t.other += mine.other;
            t.acks += mine.acks;
            if (mine.acks < o->per)
                result = 1;
            hp_session_close(&s);
        }
        tf_proto_buf_free(&card);
        tf_proto_identity_deinit(&id);
    }
    tf_proto_identity_deinit(&victim);
    printf("ok=%ld refused=%ld other=%ld noack=%ld\n", t.ok, t.refused, t.other,
           o->identities * o->per - t.acks);
    return result;
}

/* Splits a comma-separated list (or "-") into views of s. */
static size_t split_tags(char *s, struct tf_proto_bytes *out, size_t max)
{
    size_t n = 0;
    if (strcmp(s, "-") == 0)
        return 0;
    for (char *p = s; *p != '\0' && n < max;) {
        char *comma = strchr(p, ',');
        size_t len = comma ? (size_t)(comma - p) : strlen(p);
        out[n++] = (struct tf_proto_bytes){(const uint8_t *)p, len};
        p += len + (comma ? 1 : 0);
    }
    return n;
}

static int cards(const struct opts *o)
{
    uint8_t seed[32];
    char line[2048];
    memset(seed, 0x42, sizeof seed);
    if (o->seed != NULL &&
        sodium_hex2bin(seed, sizeof seed, o->seed, strlen(o->seed), NULL, NULL, NULL) != 0)
        return 2;
    for (long i = 0; fgets(line, sizeof line, stdin) != NULL; i++) {
        char name[128], offers[1024], seeks[1024];
        unsigned long long issued;
        if (sscanf(line, "%127s %1023s %1023s %llu", name, offers, seeks, &issued) != 4)
            return 2;
        struct tf_proto_identity id = {0};
        uint8_t my_seed[32];
        crypto_generichash_state h;
        crypto_generichash_init(&h, NULL, 0, sizeof my_seed);
        crypto_generichash_update(&h, seed, sizeof seed);
        crypto_generichash_update(&h, (const uint8_t *)&i, sizeof i);
        crypto_generichash_final(&h, my_seed, sizeof my_seed);
        struct tf_proto_card c;
        struct tf_proto_buf card = {0};
        char *text = NULL;
        memset(&c, 0, sizeof c);
        int rc = tf_proto_identity_from_seed(&id, my_seed);
        if (rc == TF_OK) {
            memcpy(c.sign_pk, id.sign_pk, 32);
            memcpy(c.noise_pk, id.noise_pk, 32);
            memcpy(c.box_pk, id.box_pk, 32);
            c.name = (struct tf_proto_bytes){(const uint8_t *)name, strlen(name)};
            c.n_addrs = 1;
            c.addrs[0] = (struct tf_proto_bytes){(const uint8_t *)"127.0.0.1:9", 11};
            c.n_offers = split_tags(offers, c.offers, TF_PROTO_CARD_TAGS_MAX);
            c.n_seeks = split_tags(seeks, c.seeks, TF_PROTO_CARD_TAGS_MAX);
            c.issued = issued;
            c.seq = 1;
            rc = tf_proto_card_sign(&id, &c, &card);
        }
        if (rc == TF_OK)
            rc = tf_proto_card_to_text(card.data, card.len, &text);
        if (rc == TF_OK)
            printf("%s\n", text);
        free(text);
        tf_proto_buf_free(&card);
        tf_proto_identity_deinit(&id);
        if (rc != TF_OK) {
            fprintf(stderr, "tf-flood: card %ld: %s\n", i, tf_strerror(rc));
            return 2;
        }
    }
    return 0;
}

/* Waits on s (NULL: nothing was sent) for the ACK of msg_id and prints
 * "ack STATUS/REASON" (returns 0), or "no-ack" (returns 1). */
static int print_ack(struct hp_session *s, const uint8_t msg_id[16])
{
    static uint8_t buf[TF_PROTO_FRAME_MAX];
    uint64_t deadline = hp_now_ms() + ACK_MS;
    struct tf_proto_link_msg m;
    while (s != NULL && hp_recv_msg(s, buf, &m, deadline) == HP_OK)
        if (m.type == TF_PROTO_LINK_ACK && memcmp(m.msg_id, msg_id, 16) == 0) {
            printf("ack %llu/%llu\n", (unsigned long long)m.status, (unsigned long long)m.reason);
            return 0;
        }
    printf("no-ack\n");
    return 1;
}

static int reply(const struct opts *o)
{
    struct hp_target target;
    struct tf_proto_identity party = {0}, conn = {0};
    struct tf_proto_reply r;
    struct tf_proto_buf card = {0}, signed_r = {0};
    struct hp_session s;
    uint8_t msg_id[16];
    int result = 3;
    memset(&r, 0, sizeof r);
    if (o->target == NULL || o->party == NULL || o->connector == NULL || o->intro == NULL ||
        o->side < 0 || hp_parse_target(o->target, &target) != 0 ||
        sodium_hex2bin(r.intro_id, sizeof r.intro_id, o->intro, strlen(o->intro), NULL, NULL,
                       NULL) != 0)
        return 2;
    if (hp_load_identity(o->party, &party) != 0 || hp_load_identity(o->connector, &conn) != 0)
        goto out;
    if (hp_sign_card(&party, "Party", "127.0.0.1:9", now_s(), 1000, &card) != TF_OK)
        goto out;
    r.side = o->side ? TF_PROTO_SIDE_B : TF_PROTO_SIDE_A;
    r.decision = o->decline ? TF_PROTO_DECISION_DECLINE : TF_PROTO_DECISION_ACCEPT;
    r.reason = (struct tf_proto_bytes){(const uint8_t *)"", 0};
    r.card = (struct tf_proto_bytes){card.data, card.len};
    r.note = (struct tf_proto_bytes){(const uint8_t *)"late", 4};
    r.time = (uint64_t)((int64_t)now_s() + o->time_offset);
    if (o->feedback) {
        struct tf_proto_feedback f = {.helped = true, .time = now_s()};
        memcpy(f.intro_id, r.intro_id, 32);
        memcpy(f.connector_pk, conn.sign_pk, 32);
        f.note = (struct tf_proto_bytes){(const uint8_t *)"", 0};
        if (tf_proto_feedback_sign(&party, &f, &signed_r) != TF_OK)
            goto out;
    } else if (tf_proto_reply_sign(&party, &r, &signed_r) != TF_OK) {
        goto out;
    }
    if (hp_open(&target, &party, &card, &s, hp_now_ms() + LINK_MS) != HP_OK) {
        hp_session_close(&s);
        goto out;
    }
    s.auto_pong = true;
    result = send_body(&s, &party, &conn,
                       o->feedback ? TF_PROTO_MSG_TYPE_FEEDBACK : TF_PROTO_MSG_TYPE_REPLY,
                       &signed_r, msg_id) == TF_OK
                 ? print_ack(&s, msg_id)
                 : print_ack(NULL, msg_id);
    hp_session_close(&s);
out:
    tf_proto_buf_free(&card);
    tf_proto_buf_free(&signed_r);
    tf_proto_identity_deinit(&party);
    tf_proto_identity_deinit(&conn);
    return result;
}

static int upload(const struct opts *o)
{
    struct hp_target target;
    struct tf_proto_identity id = {0};
    struct tf_proto_buf card = {0}, env = {0}, msg = {0};
    struct hp_session s;
    uint8_t seed[32], tenant[32], msg_id[16], sealed[49];
    int result = 3;
    if (o->target == NULL || o->tenant == NULL || o->msg_id == NULL ||
        hp_parse_target(o->target, &target) != 0 ||
        tf_proto_text_id_decode(o->tenant, strlen(o->tenant), tenant, NULL) != TF_OK ||
        sodium_hex2bin(msg_id, sizeof msg_id, o->msg_id, strlen(o->msg_id), NULL, NULL, NULL) !=
            0 ||
        (o->seed != NULL &&
         sodium_hex2bin(seed, sizeof seed, o->seed, strlen(o->seed), NULL, NULL, NULL) != 0))
        return 2;
    if (o->seed == NULL)
        randombytes_buf(seed, sizeof seed);
    randombytes_buf(sealed, sizeof sealed);
    if (tf_proto_identity_from_seed(&id, seed) != TF_OK ||
        hp_sign_card(&id, "Uploader", "127.0.0.1:9", now_s(), 1, &card) != TF_OK)
        goto out;
    /* The outer part of a sealed envelope (PROTOCOL.md section 7). */
    struct tf_proto_mp_writer w;
    tf_proto_mp_writer_init(&w);
    tf_proto_mp_write_array(&w, 5);
    tf_proto_mp_write_uint(&w, 1);
    tf_proto_mp_write_bin(&w, msg_id, sizeof msg_id);
    tf_proto_mp_write_bin(&w, tenant, sizeof tenant);
    tf_proto_mp_write_uint(&w, now_s() + 86400);
    tf_proto_mp_write_bin(&w, sealed, sizeof sealed);
    if (tf_proto_mp_writer_finish(&w, &env) != TF_OK ||
        tf_proto_link_envelope_as(TF_PROTO_LINK_UPLOAD, env.data, env.len, &msg) != TF_OK)
        goto out;
    if (hp_open(&target, &id, &card, &s, hp_now_ms() + LINK_MS) != HP_OK) {
        hp_session_close(&s);
        goto out;
    }
    s.auto_pong = true;
    int src = hp_send_built(&s, TF_OK, &msg); /* frees msg */
    msg = (struct tf_proto_buf){0};
    result = print_ack(src == TF_OK ? &s : NULL, msg_id);
    hp_session_close(&s);
out:
    tf_proto_buf_free(&card);
    tf_proto_buf_free(&env);
    tf_proto_buf_free(&msg);
    tf_proto_identity_deinit(&id);
    sodium_memzero(seed, sizeof seed);
    return result;
}

static const char USAGE[] =
    "usage: tf-flood proposals --target IP:PORT --victim HOME --identities N --per M\n"
    "                          [--expires-s S] [--addr IP:PORT] [--seed HEX]\n"
    "       tf-flood reply --target IP:PORT --party HOME --connector HOME --intro HEX\n"
    "                      --side a|b --time-offset SECONDS [--decision accept|decline]\n"
    "       tf-flood requests --target IP:PORT --victim HOME --identities N [--seed HEX]\n"
    "       tf-flood upload --target IP:PORT --tenant TEXT_ID --msg-id HEX [--seed HEX]\n";

int main(int argc, char **argv)
{
    struct opts o = {.side = -1};
    if (sodium_init() < 0)
        return 1;
    if (argc < 2)
        return fputs(USAGE, stderr), 2;
    for (int i = 2; i + 1 < argc; i += 2) {
        const char *k = argv[i], *v = argv[i + 1];
        if (strcmp(k, "--target") == 0)
            o.target = v;
        else if (strcmp(k, "--victim") == 0)
            o.victim = v;
        else if (strcmp(k, "--party") == 0)
            o.party = v;
        else if (strcmp(k, "--connector") == 0)
            o.connector = v;
        else if (strcmp(k, "--intro") == 0)
            o.intro = v;
        else if (strcmp(k, "--addr") == 0)
            o.addr = v;
        else if (strcmp(k, "--seed") == 0)
            o.seed = v;
        else if (strcmp(k, "--request") == 0)
            o.request = v;
        else if (strcmp(k, "--tenant") == 0)
            o.tenant = v;
        else if (strcmp(k, "--msg-id") == 0)
            o.msg_id = v;
        else if (strcmp(k, "--identities") == 0)
            o.identities = strtol(v, NULL, 10);
        else if (strcmp(k, "--per") == 0)
            o.per = strtol(v, NULL, 10);
        else if (strcmp(k, "--expires-s") == 0)
            o.expires_s = strtol(v, NULL, 10);
        else if (strcmp(k, "--time-offset") == 0)
            o.time_offset = strtol(v, NULL, 10);
        else if (strcmp(k, "--side") == 0)
            o.side = strcmp(v, "a") == 0 ? 0 : strcmp(v, "b") == 0 ? 1 : -1;
        else if (strcmp(k, "--decision") == 0 &&
                 (strcmp(v, "accept") == 0 || strcmp(v, "decline") == 0))
            o.decline = strcmp(v, "decline") == 0;
        else
            return fputs(USAGE, stderr), 2;
    }
    if (strcmp(argv[1], "requests") == 0) {
        o.requests = true;
        o.per = 1;
    }
    if (strcmp(argv[1], "cards") == 0)
        return cards(&o);
    if (strcmp(argv[1], "upload") == 0) {
        int urc = upload(&o);
        if (urc == 2)
            fputs(USAGE, stderr);
        return urc;
    }
    if (strcmp(argv[1], "feedback") == 0) {
        o.feedback = true;
        o.side = 0;
        return reply(&o);
    }
    int rc = strcmp(argv[1], "proposals") == 0 || o.requests ? flood(&o)
             : strcmp(argv[1], "reply") == 0                 ? reply(&o)
                                                             : 2;
    if (rc == 2)
        fputs(USAGE, stderr);
    return rc;
}
