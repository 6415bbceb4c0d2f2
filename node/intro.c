/* SPDX-License-Identifier: MIT */
#include "node/intro.h"

#include <assert.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>
#include <uv.h>

#include "node/contact.h"
#include "node/delivery.h"
#include "node/internal.h"
#include "node/log.h"
#include "node/node.h"
#include "node/policy.h"
#include "node/store.h"
#include "proto/ctl.h"
#include "proto/envelope.h"
#include "proto/intro.h"

#define WHY(...) snprintf(why, why_cap, __VA_ARGS__)
#define SWEEP_MS 1000
#define EXPIRES_DEFAULT_S (14u * 86400u)
#define EXPIRES_MAX_S (365u * 86400u)
/* An envelope carrying an intro object outlives the intro by this much, so
 * a late but valid introduction still arrives (docs/PROTOCOL.md §8). */
#define ENVELOPE_GRACE_S (30u * 86400u)
static_assert(EXPIRES_MAX_S + ENVELOPE_GRACE_S <= TF_NODE_DELIVERY_TTL_MAX_S,
              "every intro envelope is accepted by its receiver");

/* Connector side. */

enum out_state { OUT_ASKING, OUT_INTRODUCED, OUT_DECLINED, OUT_WITHDRAWN, OUT_EXPIRED };
enum side_state { SIDE_NOT_ASKED, SIDE_PENDING, SIDE_ACCEPTED, SIDE_DECLINED };

static const char *out_state_name(uint64_t s)
{
    static const char *const names[] = {"asking", "introduced", "declined", "withdrawn", "expired"};
    return s < 5 ? names[s] : "?";
}

static const char *side_state_name(uint64_t s)
{
    static const char *const names[] = {"not_asked", "pending", "accepted", "declined"};
    return s < 4 ? names[s] : "?";
}

/* Text fields are owned copies. */
struct intro_out {
    uint8_t id[32];
    struct tf_proto_buf core;
    uint8_t salt[2][32];
    uint8_t pk[2][32];
    uint64_t mode;
    struct tf_proto_buf topic, about[2], note[2], reason[2], reply[2];
    uint64_t state, side[2];
    uint64_t created, expires, updated;
};

/* Party side. */

enum in_state { IN_PENDING, IN_ACCEPTED, IN_DECLINED, IN_INTRODUCED, IN_CLOSED };

static const char *in_state_name(uint64_t s)
{
    static const char *const names[] = {"pending", "accepted", "declined", "introduced", "closed"};
    return s < 5 ? names[s] : "?";
}

struct intro_in {
    uint8_t id[32];
    struct tf_proto_buf proposal; /* signed, verified on arrival */
    uint64_t state;
    struct tf_proto_buf decided_by;
    struct tf_proto_buf my_accept; /* the signed acceptance sent, kept after a revocation */
    bool has_other;
    uint8_t other[32];
    struct tf_proto_buf other_note;
    bool late_revocation;
    uint64_t received, updated;
    /* The signed introduction that materialised it: both parties' signed
     * acceptances, kept as the proof (empty before; and in records written
     * before it was kept, which have 9 fields). */
    struct tf_proto_buf introduction;
};

static void buf_free_all(struct tf_proto_buf *b, size_t n)
{
    for (size_t i = 0; i < n; i++)
        tf_proto_buf_free(&b[i]);
}

static void out_free(struct intro_out *o)
{
    tf_proto_buf_free(&o->core);
    tf_proto_buf_free(&o->topic);
    buf_free_all(o->about, 2);
    buf_free_all(o->note, 2);
    buf_free_all(o->reason, 2);
    buf_free_all(o->reply, 2);
}

static void in_free(struct intro_in *r)
{
    tf_proto_buf_free(&r->proposal);
    tf_proto_buf_free(&r->decided_by);
    tf_proto_buf_free(&r->my_accept);
    tf_proto_buf_free(&r->other_note);
    tf_proto_buf_free(&r->introduction);
}

static int set_buf(struct tf_proto_buf *dst, const void *p, size_t n)
{
    uint8_t *d = malloc(n ? n : 1);
    if (d == NULL)
        return TF_E_NOMEM;
    if (n)
        memcpy(d, p, n);
    tf_proto_buf_free(dst);
    dst->data = d;
    dst->len = n;
    return TF_OK;
}

static int set_str(struct tf_proto_buf *dst, const char *s)
{
    return set_buf(dst, s, strlen(s));
}

/* Record codecs: canonical msgpack arrays, strict decode (TF_E_CORRUPT). */

static void w_buf(struct tf_proto_mp_writer *w, const struct tf_proto_buf *b, bool bin)
{
    if (bin)
        tf_proto_mp_write_bin(w, b->data, b->len);
    else
        tf_proto_mp_write_str(w, b->len ? (const char *)b->data : "", b->len);
}

static int r_bin(struct tf_proto_mp_reader *r, struct tf_proto_buf *dst, size_t max)
{
    struct tf_proto_bytes v;
    int rc = tf_proto_mp_read_bin(r, 0, max, &v);
    return rc != TF_OK ? rc : set_buf(dst, v.ptr, v.len);
}

static int r_str(struct tf_proto_mp_reader *r, struct tf_proto_buf *dst, size_t max)
{
    struct tf_proto_bytes v;
    int rc = tf_proto_mp_read_str(r, 0, max, TF_PROTO_TEXT_MULTILINE, &v);
    return rc != TF_OK ? rc : set_buf(dst, v.ptr, v.len);
}

/* A record that does not decode is skipped by lists and sweeps, never
 * silently: each time it is met, this says which. */
static void corrupt_record(const char *table, const uint8_t id[32])
{
    char hex[65];
    sodium_bin2hex(hex, sizeof hex, id, 32);
    tf_node_log(TF_NODE_LOG_ERROR, "intro", "corrupt %s record %.16s skipped", table, hex);
}

static int out_encode(const struct intro_out *o, struct tf_proto_buf *out)
{
    struct tf_proto_mp_writer w;
    tf_proto_mp_writer_init(&w);
    tf_proto_mp_write_array(&w, 21);
    w_buf(&w, &o->core, true);
    for (int x = 0; x < 2; x++) {
        tf_proto_mp_write_bin(&w, o->salt[x], 32);
        tf_proto_mp_write_bin(&w, o->pk[x], 32);
        w_buf(&w, &o->about[x], false);
        w_buf(&w, &o->note[x], false);
        w_buf(&w, &o->reason[x], false);
        w_buf(&w, &o->reply[x], true);
        tf_proto_mp_write_uint(&w, o->side[x]);
    }
    tf_proto_mp_write_uint(&w, o->mode);
    w_buf(&w, &o->topic, false);
    tf_proto_mp_write_uint(&w, o->state);
    tf_proto_mp_write_uint(&w, o->created);
    tf_proto_mp_write_uint(&w, o->expires);
    tf_proto_mp_write_uint(&w, o->updated);
    return tf_proto_mp_writer_finish(&w, out);
}

static int out_decode(const uint8_t id[32], const uint8_t *p, size_t n, struct intro_out *o)
{
    struct tf_proto_mp_reader r;
    int rc;
    memset(o, 0, sizeof *o);
    memcpy(o->id, id, 32);
    tf_proto_mp_reader_init(&r, p, n);
    if ((rc = tf_proto_mp_read_array_exact(&r, 21)) != TF_OK ||
        (rc = r_bin(&r, &o->core, TF_PROTO_BODY_MAX)) != TF_OK)
        goto fail;
    for (int x = 0; x < 2 && rc == TF_OK; x++) {
        if ((rc = tf_proto_mp_read_bin_fixed(&r, o->salt[x], 32)) != TF_OK ||
            (rc = tf_proto_mp_read_bin_fixed(&r, o->pk[x], 32)) != TF_OK ||
            (rc = r_str(&r, &o->about[x], TF_PROTO_NOTE_MAX)) != TF_OK ||
            (rc = r_str(&r, &o->note[x], TF_PROTO_NOTE_MAX)) != TF_OK ||
            (rc = r_str(&r, &o->reason[x], TF_PROTO_REASON_MAX)) != TF_OK ||
            (rc = r_bin(&r, &o->reply[x], TF_PROTO_BODY_MAX)) != TF_OK ||
            (rc = tf_proto_mp_read_uint(&r, &o->side[x])) != TF_OK)
            goto fail;
    }
    if ((rc = tf_proto_mp_read_uint(&r, &o->mode)) != TF_OK ||
        (rc = r_str(&r, &o->topic, TF_PROTO_TAG_MAX)) != TF_OK ||
        (rc = tf_proto_mp_read_uint(&r, &o->state)) != TF_OK ||
        (rc = tf_proto_mp_read_uint(&r, &o->created)) != TF_OK ||
        (rc = tf_proto_mp_read_uint(&r, &o->expires)) != TF_OK ||
        (rc = tf_proto_mp_read_uint(&r, &o->updated)) != TF_OK ||
        (rc = tf_proto_mp_read_end(&r)) != TF_OK)
        goto fail;
    if (o->state > OUT_EXPIRED || o->side[0] > SIDE_DECLINED || o->side[1] > SIDE_DECLINED)
        goto fail;
    return TF_OK;
fail:
    out_free(o);
    corrupt_record("intros_out", id);
    return TF_E_CORRUPT;
}

static int in_encode(const struct intro_in *r, struct tf_proto_buf *out)
{
    struct tf_proto_mp_writer w;
    tf_proto_mp_writer_init(&w);
    tf_proto_mp_write_array(&w, 10);
    w_buf(&w, &r->proposal, true);
    tf_proto_mp_write_uint(&w, r->state);
    w_buf(&w, &r->decided_by, false);
    w_buf(&w, &r->my_accept, true);
    if (r->has_other)
        tf_proto_mp_write_bin(&w, r->other, 32);
    else
        tf_proto_mp_write_nil(&w);
    w_buf(&w, &r->other_note, false);
    tf_proto_mp_write_bool(&w, r->late_revocation);
    tf_proto_mp_write_uint(&w, r->received);
    tf_proto_mp_write_uint(&w, r->updated);
    w_buf(&w, &r->introduction, true);
    return tf_proto_mp_writer_finish(&w, out);
}

static int in_decode(const uint8_t id[32], const uint8_t *p, size_t n, struct intro_in *r)
{
    struct tf_proto_mp_reader rd;
    int rc;
    memset(r, 0, sizeof *r);
    memcpy(r->id, id, 32);
    uint32_t fields;
    tf_proto_mp_reader_init(&rd, p, n);
    if ((rc = tf_proto_mp_read_array(&rd, 10, &fields)) != TF_OK || fields < 9 ||
        (rc = r_bin(&rd, &r->proposal, TF_PROTO_BODY_MAX)) != TF_OK ||
        (rc = tf_proto_mp_read_uint(&rd, &r->state)) != TF_OK ||
        (rc = r_str(&rd, &r->decided_by, 64)) != TF_OK ||
        (rc = r_bin(&rd, &r->my_accept, TF_PROTO_BODY_MAX)) != TF_OK)
        goto fail;
    if (tf_proto_mp_peek_nil(&rd)) {
        rc = tf_proto_mp_read_nil(&rd);
    } else {
        rc = tf_proto_mp_read_bin_fixed(&rd, r->other, 32);
        r->has_other = true;
    }
    if (rc != TF_OK || (rc = r_str(&rd, &r->other_note, TF_PROTO_NOTE_MAX)) != TF_OK ||
        (rc = tf_proto_mp_read_bool(&rd, &r->late_revocation)) != TF_OK ||
        (rc = tf_proto_mp_read_uint(&rd, &r->received)) != TF_OK ||
        (rc = tf_proto_mp_read_uint(&rd, &r->updated)) != TF_OK ||
        (fields == 10 && (rc = r_bin(&rd, &r->introduction, TF_PROTO_BODY_MAX)) != TF_OK) ||
        (rc = tf_proto_mp_read_end(&rd)) != TF_OK || r->state > IN_CLOSED)
        goto fail;
    return TF_OK;
fail:
    in_free(r);
    corrupt_record("intros_in", id);
    return TF_E_CORRUPT;
}

/* Stores an encoded record (encode_rc is the encoder's result) and frees it. */
static int put_record(struct tf_node *node, enum tf_node_store_table t, const uint8_t id[32],
                      int encode_rc, struct tf_proto_buf *v)
{
    int rc = encode_rc;
    if (rc == TF_OK)
        rc = tf_node_store_kv_put(node->store, t, id, 32, v->data, v->len);
    tf_proto_buf_free(v);
    return rc;
}

static int out_load(struct tf_node *node, const uint8_t id[32], struct intro_out *o)
{
    struct tf_proto_buf v = {0};
    int rc = tf_node_store_kv_get(node->store, TF_NODE_STORE_INTROS_OUT, id, 32, &v);
    if (rc == TF_OK)
        rc = out_decode(id, v.data, v.len, o);
    tf_proto_buf_free(&v);
    return rc;
}

/* The indexes (node/store.h, schema 5).  Each holds one key per indexed
 * record and is written in the same transaction as the record. */

/* Puts key into table t when present is true, else removes it if there. */
static int index_set(struct tf_node *node, enum tf_node_store_table t, const uint8_t *key,
                     size_t klen, bool present)
{
    if (present)
        return tf_node_store_kv_put(node->store, t, key, klen, NULL, 0);
    int rc = tf_node_store_kv_del(node->store, t, key, klen);
    return rc == TF_E_NOT_FOUND ? TF_OK : rc;
}

/* intro_pairs key: the two parties' keys in byte order, then the topic. */
#define PAIR_KEY_MAX (64 + TF_PROTO_TAG_MAX)
static size_t pair_key(const uint8_t a[32], const uint8_t b[32], const uint8_t *topic,
                       size_t topic_len, uint8_t key[static PAIR_KEY_MAX])
{
    bool a_first = memcmp(a, b, 32) < 0;
    memcpy(key, a_first ? a : b, 32);
    memcpy(key + 32, a_first ? b : a, 32);
    if (topic_len > 0)
        memcpy(key + 64, topic, topic_len);
    return 64 + topic_len;
}

static int pair_index_put(struct tf_node *node, const struct intro_out *o)
{
    uint8_t key[PAIR_KEY_MAX];
    size_t klen = pair_key(o->pk[0], o->pk[1], o->topic.data, o->topic.len, key);
    return tf_node_store_kv_put(node->store, TF_NODE_STORE_INTRO_PAIRS, key, klen, o->id, 32);
}

/* intro_expiry key: u64be(expires) || id. */
static void expiry_key(uint64_t expires, const uint8_t id[32], uint8_t key[40])
{
    for (int i = 0; i < 8; i++)
        key[i] = (uint8_t)(expires >> (56 - 8 * i));
    memcpy(key + 8, id, 32);
}

static int out_save(struct tf_node *node, const struct intro_out *o)
{
    struct tf_proto_buf v = {0};
    uint8_t key[40];
    int rc = put_record(node, TF_NODE_STORE_INTROS_OUT, o->id, out_encode(o, &v), &v);
    expiry_key(o->expires, o->id, key);
    if (rc == TF_OK) /* only an open intro can expire */
        rc = index_set(node, TF_NODE_STORE_INTRO_EXPIRY, key, sizeof key, o->state == OUT_ASKING);
    return rc;
}

static int in_load(struct tf_node *node, const uint8_t id[32], struct intro_in *r)
{
    struct tf_proto_buf v = {0};
    int rc = tf_node_store_kv_get(node->store, TF_NODE_STORE_INTROS_IN, id, 32, &v);
    if (rc == TF_OK)
        rc = in_decode(id, v.data, v.len, r);
    tf_proto_buf_free(&v);
    return rc;
}

static int in_save(struct tf_node *node, const struct intro_in *r)
{
    struct tf_proto_buf v = {0};
    struct tf_proto_proposal p;
    uint8_t key[64];
    int rc = put_record(node, TF_NODE_STORE_INTROS_IN, r->id, in_encode(r, &v), &v);
    /* intro_pending key: connector || id, while the owner has not answered. */
    if (rc == TF_OK &&
        (rc = tf_proto_proposal_decode(r->proposal.data, r->proposal.len, &p)) == TF_OK) {
        memcpy(key, p.core.connector_pk, 32);
        memcpy(key + 32, r->id, 32);
        rc = index_set(node, TF_NODE_STORE_INTRO_PENDING, key, sizeof key, r->state == IN_PENDING);
    }
    return rc;
}

/* Events: {time, type, id} plus one optional string pair. */
static int intro_event(struct tf_node *node, const char *type, const uint8_t id[32],
                       const char *key, const char *val)
{
    char hex[65];
    sodium_bin2hex(hex, sizeof hex, id, 32);
    struct tf_proto_mp_writer w;
    struct tf_proto_buf rec;
    tf_proto_mp_writer_init(&w);
    tf_proto_mp_write_map(&w, key ? 4 : 3);
    tf_proto_mp_write_cstr(&w, "time");
    tf_proto_mp_write_uint(&w, tf_node_now(node));
    tf_proto_mp_write_cstr(&w, "type");
    tf_proto_mp_write_cstr(&w, type);
    tf_proto_mp_write_cstr(&w, "id");
    tf_proto_mp_write_cstr(&w, hex);
    if (key) {
        tf_proto_mp_write_cstr(&w, key);
        tf_proto_mp_write_cstr(&w, val);
    }
    int rc = tf_proto_mp_writer_finish(&w, &rec);
    if (rc == TF_OK) {
        rc = tf_node_event(node, &rec);
        tf_proto_buf_free(&rec);
    }
    return rc;
}

/* Recipients: a contact, or a correspondent whose card we hold. */
static int recipient(struct tf_node *node, const uint8_t pk[32], struct tf_node_contact *c)
{
    memset(c, 0, sizeof *c);
    int rc = tf_node_store_contact_get(node->store, pk, c);
    if (rc != TF_E_NOT_FOUND)
        return rc;
    struct tf_proto_buf card = {0};
    if ((rc = tf_node_intro_peer_card(node, pk, &card)) == TF_OK)
        rc = tf_node_contact_from_verified_card(c, card.data, card.len);
    tf_proto_buf_free(&card);
    return rc;
}

static int send_to(struct tf_node *node, const uint8_t pk[32], uint16_t type,
                   const struct tf_proto_buf *body, uint64_t intro_expires)
{
    struct tf_node_contact c;
    uint8_t msg_id[16];
    int rc = recipient(node, pk, &c);
    if (rc == TF_OK)
        rc = tf_node_delivery_enqueue(node->delivery, &c, type, body->data, body->len,
                                      intro_expires + ENVELOPE_GRACE_S, msg_id);
    tf_node_contact_deinit(&c);
    return rc;
}

int tf_node_intro_peer_card(struct tf_node *node, const uint8_t pk[32], struct tf_proto_buf *out)
{
    return tf_node_store_kv_get(node->store, TF_NODE_STORE_CARDS, pk, 32, out);
}

/* Connector: proposals, replies, introductions, closes. */

static int send_proposal(struct tf_node *node, const struct intro_out *o, int x)
{
    struct tf_proto_proposal p;
    struct tf_proto_buf signed_p;
    memset(&p, 0, sizeof p);
    memcpy(p.intro_id, o->id, 32);
    p.core_bytes.ptr = o->core.data;
    p.core_bytes.len = o->core.len;
    p.side = (enum tf_proto_side)x;
    memcpy(p.salt, o->salt[x], 32);
    p.connector_card.ptr = node->card.data;
    p.connector_card.len = node->card.len;
    /* x is told about the other side. */
    p.about_other.ptr = o->about[1 - x].data;
    p.about_other.len = o->about[1 - x].len;
    p.note.ptr = o->note[x].data;
    p.note.len = o->note[x].len;
    int rc = tf_proto_proposal_sign(&node->id, &p, &signed_p);
    if (rc == TF_OK) {
        rc = send_to(node, o->pk[x], TF_PROTO_MSG_TYPE_PROPOSAL, &signed_p, o->expires);
        tf_proto_buf_free(&signed_p);
    }
    return rc;
}

static int send_close(struct tf_node *node, const struct intro_out *o, int x)
{
    struct tf_proto_buf c;
    int rc = tf_proto_close_sign(&node->id, o->id, &c);
    if (rc == TF_OK) {
        rc = send_to(node, o->pk[x], TF_PROTO_MSG_TYPE_CLOSE, &c, o->expires);
        tf_proto_buf_free(&c);
    }
    return rc;
}

/* Closes the intro for every side that was asked. */
static int close_asked(struct tf_node *node, const struct intro_out *o, int except)
{
    int rc = TF_OK;
    for (int x = 0; x < 2 && rc == TF_OK; x++)
        if (x != except && (o->side[x] == SIDE_PENDING || o->side[x] == SIDE_ACCEPTED))
            rc = send_close(node, o, x);
    return rc;
}

static int introduce(struct tf_node *node, struct intro_out *o)
{
    struct tf_proto_introduction in;
    struct tf_proto_buf signed_in;
    memset(&in, 0, sizeof in);
    memcpy(in.intro_id, o->id, 32);
    in.core_bytes.ptr = o->core.data;
    in.core_bytes.len = o->core.len;
    memcpy(in.salt_a, o->salt[0], 32);
    memcpy(in.salt_b, o->salt[1], 32);
    in.reply_a.ptr = o->reply[0].data;
    in.reply_a.len = o->reply[0].len;
    in.reply_b.ptr = o->reply[1].data;
    in.reply_b.len = o->reply[1].len;
    in.time = tf_node_now(node);
    int rc = tf_proto_introduction_sign(&node->id, &in, &signed_in);
    for (int x = 0; x < 2 && rc == TF_OK; x++)
        rc = send_to(node, o->pk[x], TF_PROTO_MSG_TYPE_INTRODUCTION, &signed_in, o->expires);
    tf_proto_buf_free(&signed_in);
    if (rc == TF_OK) {
        o->state = OUT_INTRODUCED;
        rc = intro_event(node, "intro.introduced", o->id, NULL, NULL);
    }
    return rc;
}

static int on_reply(struct tf_node *node, const uint8_t from[32], const uint8_t *body, size_t len)
{
    struct tf_proto_statement st;
    struct tf_proto_reply r;
    struct intro_out o;
    int rc = tf_proto_reply_decode(body, len, &st, &r);
    if (rc != TF_OK)
        return TF_PROTO_ACK_REASON_INVALID;
    if ((rc = out_load(node, r.intro_id, &o)) != TF_OK)
        return rc == TF_E_NOT_FOUND ? TF_PROTO_ACK_REASON_INVALID : -1;
    int x = sodium_memcmp(o.pk[0], from, 32) == 0   ? 0
            : sodium_memcmp(o.pk[1], from, 32) == 0 ? 1
                                                    : -1;
    int result = TF_PROTO_ACK_REASON_INVALID;
    /* The party's card as held with the intro (verified when stored). */
    struct tf_proto_buf held = {0};
    if (x >= 0 && (rc = tf_node_intro_peer_card(node, from, &held)) != TF_OK &&
        rc != TF_E_NOT_FOUND) {
        result = -1;
        goto out;
    }
    rc = x < 0 ? TF_E_INVALID_ARG
               : tf_proto_reply_verify_known(from, o.id, (enum tf_proto_side)x, body, len,
                                             (struct tf_proto_known){held.data, held.len}, &r);
    tf_proto_buf_free(&held);
    if (rc != TF_OK || o.side[x] == SIDE_NOT_ASKED)
        goto out;
    result = -1;
    bool accept = r.decision == TF_PROTO_DECISION_ACCEPT;
    uint64_t now = tf_node_now(node);
    if (o.state == OUT_ASKING && now > o.expires) {
        /* Expired before the sweep got to it: expire it now, then answer
         * this reply as any late one (with a close). */
        o.state = OUT_EXPIRED;
        o.updated = now;
        if ((rc = close_asked(node, &o, x)) != TF_OK || (rc = out_save(node, &o)) != TF_OK ||
            (rc = intro_event(node, "intro.expired", o.id, NULL, NULL)) != TF_OK)
            goto out;
    }
    if (o.state == OUT_ASKING) {
        if (accept && o.side[x] == SIDE_ACCEPTED && o.reply[x].len == len &&
            memcmp(o.reply[x].data, body, len) == 0) {
            result = TF_PROTO_ACK_REASON_NONE; /* the same acceptance again */
            goto out;
        }
        o.updated = now;
        if (accept) {
            o.side[x] = SIDE_ACCEPTED;
            if ((rc = set_buf(&o.reply[x], body, len)) != TF_OK ||
                (rc = intro_event(node, "intro.replied", o.id, "side", x ? "b" : "a")) != TF_OK)
                goto out;
            if (o.side[0] == SIDE_ACCEPTED && o.side[1] == SIDE_ACCEPTED)
                rc = introduce(node, &o);
            else if (o.mode == TF_PROTO_INTRO_MODE_SEQUENTIAL && x == 0 &&
                     o.side[1] == SIDE_NOT_ASKED) {
                o.side[1] = SIDE_PENDING;
                rc = send_proposal(node, &o, 1);
            }
        } else {
            /* A decline, or a revocation before both acceptances: the
             * intro will not go ahead. */
            o.side[x] = SIDE_DECLINED;
            o.state = OUT_DECLINED;
            if ((rc = set_buf(&o.reason[x], r.reason.ptr, r.reason.len)) == TF_OK &&
                (rc = close_asked(node, &o, x)) == TF_OK)
                rc = intro_event(node, "intro.declined", o.id, "side", x ? "b" : "a");
        }
        if (rc == TF_OK)
            rc = out_save(node, &o);
    } else if (o.state != OUT_INTRODUCED) {
        /* Declined, withdrawn or expired: the answer is a close. */
        rc = send_close(node, &o, x);
    } else {
        rc = TF_OK; /* introduced: a late decline is too late */
    }
    result = rc == TF_OK ? TF_PROTO_ACK_REASON_NONE : -1;
out:
    out_free(&o);
    return result;
}

/* Party: proposals, introductions, closes. */

static int answer(struct tf_node *node, struct intro_in *r, bool accept, const char *text,
                  const char *decided_by);

static int remember_card(struct tf_node *node, const struct tf_proto_bytes *card,
                         const struct tf_proto_card *fields)
{
    struct tf_proto_buf held = {0};
    int rc = tf_node_store_kv_get(node->store, TF_NODE_STORE_CARDS, fields->sign_pk, 32, &held);
    if (rc == TF_OK) {
        /* The held card was verified when it was stored. */
        struct tf_proto_card old;
        struct tf_proto_known known = {held.data, held.len};
        bool newer = !tf_proto_known_matches(known, card->ptr, card->len) &&
                     (tf_proto_card_verify_known(held.data, held.len, known, &old) != TF_OK ||
                      tf_proto_card_supersedes(fields, &old) == TF_OK);
        tf_proto_buf_free(&held);
        if (!newer)
            return TF_OK;
    } else if (rc != TF_E_NOT_FOUND) {
        return rc;
    }
    return tf_node_store_kv_put(node->store, TF_NODE_STORE_CARDS, fields->sign_pk, 32, card->ptr,
                                card->len);
}

/* Counts a connector's pending proposals (intro_pending), up to max. */
struct pending_scan {
    const uint8_t *connector;
    uint64_t n, max;
};

static int pending_cb(const uint8_t *key, size_t klen, const uint8_t *val, size_t vlen, void *arg)
{
    (void)val;
    (void)vlen;
    struct pending_scan *ps = arg;
    if (klen != 64 || memcmp(key, ps->connector, 32) != 0)
        return 1; /* past this connector's keys */
    return ++ps->n >= ps->max ? 1 : 0;
}

/* Remembers a refused proposal of from's (if its intro id can be read and
 * from is its connector); returns reason. */
static int refuse_proposal(struct tf_node *node, const uint8_t from[32], const uint8_t *body,
                           size_t len, int reason)
{
    struct tf_proto_proposal p;
    const size_t n = sizeof node->refused_intros / sizeof node->refused_intros[0];
    if (tf_proto_proposal_decode(body, len, &p) == TF_OK &&
        sodium_memcmp(p.core.connector_pk, from, 32) == 0) {
        struct tf_node_refused_intro *slot = &node->refused_intros[node->next_refused_intro++ % n];
        memcpy(slot->id, p.intro_id, 32);
        memcpy(slot->connector, from, 32);
    }
    return reason;
}

static bool was_refused(const struct tf_node *node, const uint8_t id[32], const uint8_t from[32])
{
    const size_t n = sizeof node->refused_intros / sizeof node->refused_intros[0];
    for (size_t i = 0; i < n; i++)
        if (memcmp(node->refused_intros[i].id, id, 32) == 0 &&
            memcmp(node->refused_intros[i].connector, from, 32) == 0)
            return true;
    return false;
}

static int on_proposal(struct tf_node *node, const uint8_t from[32], const uint8_t *body,
                       size_t len)
{
    struct tf_proto_proposal p;
    struct intro_in r;
    /* The sender's card as held (verified when stored), so that the same
     * card inside the proposal is not verified again. */
    struct tf_node_contact c;
    struct tf_proto_buf held = {0};
    memset(&c, 0, sizeof c);
    int rc = tf_node_store_contact_get(node->store, from, &c);
    bool blocked = rc == TF_OK && c.blocked;
    if (rc == TF_E_NOT_FOUND)
        rc = tf_node_intro_peer_card(node, from, &held);
    if (rc != TF_OK && rc != TF_E_NOT_FOUND) {
        tf_node_contact_deinit(&c);
        return -1;
    }
    struct tf_proto_known known = {c.card.len ? c.card.data : held.data,
                                   c.card.len ? c.card.len : held.len};
    rc = tf_proto_proposal_verify_known(node->id.sign_pk, body, len, tf_node_now(node),
                                        TF_PROTO_SKEW_DEFAULT, known, &p);
    tf_node_contact_deinit(&c);
    tf_proto_buf_free(&held);
    if (rc != TF_OK) {
        tf_node_log(TF_NODE_LOG_WARN, "intro", "proposal refused: %s", tf_strerror(rc));
        return refuse_proposal(node, from, body, len, TF_PROTO_ACK_REASON_INVALID);
    }
    if (sodium_memcmp(p.core.connector_pk, from, 32) != 0)
        return TF_PROTO_ACK_REASON_NOT_PEER;
    if (blocked) {
        /* Dropped without a trace but this line; the ACK (ok) only stops the
         * connector's retries and tells it nothing. */
        char tid[TF_PROTO_TEXT_ID_SIZE];
        tf_proto_text_id_encode(from, tid);
        tf_node_log(TF_NODE_LOG_INFO, "intro", "proposal from blocked connector %s dropped", tid);
        return TF_PROTO_ACK_REASON_NONE;
    }
    rc = in_load(node, p.intro_id, &r);
    if (rc == TF_OK) {
        in_free(&r);
        return TF_PROTO_ACK_REASON_NONE; /* already known */
    }
    if (rc != TF_E_NOT_FOUND)
        return -1;
    /* One connector may not fill the inbox: refuse beyond the cap of open
     * (pending) proposals from it. */
    struct pending_scan ps = {from, 0, node->config.max_pending_per_connector};
    rc = ps.max == 0 ? 1
                     : tf_node_store_kv_foreach_from(node->store, TF_NODE_STORE_INTRO_PENDING, from,
                                                     32, pending_cb, &ps);
    if (rc != TF_OK && rc != 1)
        return -1;
    if (ps.n >= node->config.max_pending_per_connector) {
        char tid[TF_PROTO_TEXT_ID_SIZE];
        tf_proto_text_id_encode(from, tid);
        tf_node_log(TF_NODE_LOG_WARN, "intro",
                    "proposal from %s refused: %llu proposals from it are already pending", tid,
                    (unsigned long long)ps.n);
        return refuse_proposal(node, from, body, len, TF_PROTO_ACK_REASON_REFUSED);
    }
    memset(&r, 0, sizeof r);
    memcpy(r.id, p.intro_id, 32);
    r.state = IN_PENDING;
    r.received = r.updated = tf_node_now(node);
    if ((rc = set_buf(&r.proposal, body, len)) == TF_OK &&
        (rc = remember_card(node, &p.connector_card, &p.card)) == TF_OK &&
        (rc = in_save(node, &r)) == TF_OK)
        rc = intro_event(node, "inbox.received", r.id, NULL, NULL);
    /* The owner's policy may answer at once (docs/POLICY.md). */
    struct tf_proto_policy_decision d;
    if (rc == TF_OK)
        rc = tf_node_policy_decide(node, from, p.core.topic, p.core.mode, true, &d);
    if (rc == TF_OK && d.action != TF_PROTO_POLICY_ACTION_ASK) {
        char by[32], reason[64];
        snprintf(by, sizeof by, "policy:%zu", d.line);
        snprintf(reason, sizeof reason, "declined by policy rule %zu", d.line);
        bool accept = d.action == TF_PROTO_POLICY_ACTION_ACCEPT;
        rc = answer(node, &r, accept, accept ? "" : reason, by);
        char hex[65];
        sodium_bin2hex(hex, sizeof hex, r.id, 32);
        tf_node_log(TF_NODE_LOG_INFO, "intro", "proposal %.16s %s by %s", hex,
                    accept ? "accepted" : "declined", by);
    }
    in_free(&r);
    return rc == TF_OK ? TF_PROTO_ACK_REASON_NONE : -1;
}

/* Adds the other party as a contact (or notes the provenance on an existing
 * one). */
static int add_introduced(struct tf_node *node, const struct tf_proto_materialised *m)
{
    struct tf_node_contact c, old;
    memset(&old, 0, sizeof old);
    /* The materialisation check has just verified this card. */
    int rc = tf_node_contact_from_verified_card(&c, m->other_card.ptr, m->other_card.len);
    if (rc != TF_OK)
        return rc;
    rc = tf_node_store_contact_get(node->store, c.pk, &old);
    uint64_t now = tf_node_now(node);
    if (rc == TF_OK) {
        /* Keep what the owner already said about them. */
        struct tf_node_contact keep;
        if ((rc = tf_node_contact_copy(&keep, &old)) != TF_OK)
            goto out;
        if (tf_proto_card_supersedes(&c.fields, &old.fields) == TF_OK) {
            tf_node_contact_deinit(&keep);
            rc = tf_node_contact_copy(&keep, &c);
            if (rc != TF_OK)
                goto out;
            memcpy(keep.alias, old.alias, sizeof keep.alias);
            keep.trust = old.trust;
            keep.n_tags = old.n_tags;
            memcpy(keep.tags, old.tags, sizeof keep.tags);
            keep.blocked = old.blocked;
            keep.added = old.added;
            keep.has_introducer = old.has_introducer;
            memcpy(keep.introduced_by, old.introduced_by, 32);
            memcpy(keep.intro, old.intro, 32);
        }
        if (!keep.has_introducer) {
            keep.has_introducer = true;
            memcpy(keep.introduced_by, m->connector_pk, 32);
            memcpy(keep.intro, m->intro_id, 32);
        }
        keep.updated = now;
        rc = tf_node_store_contact_put(node->store, &keep);
        tf_node_contact_deinit(&keep);
    } else if (rc == TF_E_NOT_FOUND) {
        c.trust = TF_NODE_TRUST_ACQUAINTANCE;
        c.has_introducer = true;
        memcpy(c.introduced_by, m->connector_pk, 32);
        memcpy(c.intro, m->intro_id, 32);
        c.added = c.updated = now;
        rc = tf_node_store_contact_put(node->store, &c);
    }
out:
    tf_node_contact_deinit(&c);
    tf_node_contact_deinit(&old);
    return rc;
}

static int on_introduction(struct tf_node *node, const uint8_t from[32], const uint8_t *body,
                           size_t len)
{
    struct tf_proto_statement st;
    struct tf_proto_introduction in;
    struct tf_proto_materialised m;
    struct intro_in r;
    struct tf_proto_proposal p;
    if (tf_proto_introduction_decode(body, len, &st, &in) != TF_OK)
        return TF_PROTO_ACK_REASON_INVALID;
    int rc = in_load(node, in.intro_id, &r);
    if (rc == TF_E_NOT_FOUND) {
        tf_node_log(TF_NODE_LOG_WARN, "intro", "introduction for an intro never proposed to us");
        return TF_PROTO_ACK_REASON_INVALID;
    }
    if (rc != TF_OK)
        return -1;
    int result = TF_PROTO_ACK_REASON_INVALID;
    if (tf_proto_proposal_decode(r.proposal.data, r.proposal.len, &p) != TF_OK ||
        sodium_memcmp(p.core.connector_pk, from, 32) != 0)
        goto out;
    if (r.state == IN_INTRODUCED) {
        result = TF_PROTO_ACK_REASON_NONE; /* a second delivery changes nothing */
        goto out;
    }
    if (r.my_accept.len == 0) {
        tf_node_log(TF_NODE_LOG_WARN, "intro", "introduction for an intro we never accepted");
        goto out;
    }
    rc = tf_proto_intro_materialise_check_own(node->id.sign_pk, r.my_accept.data, r.my_accept.len,
                                              body, len, TF_PROTO_SKEW_DEFAULT, &m);
    if (rc != TF_OK) {
        char hex[65];
        sodium_bin2hex(hex, sizeof hex, in.intro_id, 32);
        tf_node_log(TF_NODE_LOG_WARN, "intro", "introduction %.16s refused, nothing added: %s (%s)",
                    hex, tf_err_name(rc), tf_strerror(rc));
        goto out;
    }
    result = -1;
    r.late_revocation = r.state == IN_DECLINED;
    r.state = IN_INTRODUCED;
    r.has_other = true;
    memcpy(r.other, m.other.sign_pk, 32);
    r.updated = tf_node_now(node);
    char tid[TF_PROTO_TEXT_ID_SIZE];
    tf_proto_text_id_encode(r.other, tid);
    if ((rc = set_buf(&r.other_note, m.other_note.ptr, m.other_note.len)) == TF_OK &&
        (rc = set_buf(&r.introduction, body, len)) == TF_OK &&
        (rc = add_introduced(node, &m)) == TF_OK && (rc = in_save(node, &r)) == TF_OK &&
        (rc = intro_event(node, "inbox.introduced", r.id, "other", tid)) == TF_OK &&
        r.late_revocation)
        rc = intro_event(node, "inbox.late_revocation", r.id, NULL, NULL);
    if (rc == TF_OK) {
        char hex[65];
        sodium_bin2hex(hex, sizeof hex, r.id, 32);
        tf_node_log(TF_NODE_LOG_INFO, "intro", "introduction %.16s materialised: %s added%s", hex,
                    tid, r.late_revocation ? " (our revocation came too late)" : "");
        result = TF_PROTO_ACK_REASON_NONE;
    }
out:
    in_free(&r);
    return result;
}

static int on_close(struct tf_node *node, const uint8_t from[32], const uint8_t *body, size_t len)
{
    uint8_t id[32];
    struct intro_in r;
    struct tf_proto_proposal p;
    if (tf_proto_close_verify(from, body, len, id) != TF_OK)
        return TF_PROTO_ACK_REASON_INVALID;
    int rc = in_load(node, id, &r);
    if (rc == TF_E_NOT_FOUND) {
        /* Not heard of yet: envelopes may arrive out of order (a proposal
         * queued while we were down can follow the close sent after the
         * other side declined).  Without an ACK the connector sends the
         * close again, and it applies once the proposal is here.  A blocked
         * connector's proposals are dropped, so its closes are too, and so
         * is the close of a proposal refused lately (it will not come). */
        if (was_refused(node, id, from))
            return TF_PROTO_ACK_REASON_NONE;
        struct tf_node_contact c;
        memset(&c, 0, sizeof c);
        rc = tf_node_store_contact_get(node->store, from, &c);
        bool blocked = rc == TF_OK && c.blocked;
        tf_node_contact_deinit(&c);
        return blocked ? TF_PROTO_ACK_REASON_NONE : -1;
    }
    if (rc != TF_OK)
        return -1;
    int result = TF_PROTO_ACK_REASON_INVALID;
    if (tf_proto_proposal_decode(r.proposal.data, r.proposal.len, &p) != TF_OK ||
        sodium_memcmp(p.core.connector_pk, from, 32) != 0)
        goto out;
    result = TF_PROTO_ACK_REASON_NONE;
    if (r.state == IN_INTRODUCED || r.state == IN_CLOSED)
        goto out;
    r.state = IN_CLOSED;
    r.updated = tf_node_now(node);
    if ((rc = in_save(node, &r)) != TF_OK ||
        (rc = intro_event(node, "inbox.closed", r.id, NULL, NULL)) != TF_OK)
        result = -1;
out:
    in_free(&r);
    return result;
}

int tf_node_intro_receive(struct tf_node *node, uint16_t type, const uint8_t from_pk[32],
                          const uint8_t *body, size_t len)
{
    switch (type) {
    case TF_PROTO_MSG_TYPE_PROPOSAL:
        return on_proposal(node, from_pk, body, len);
    case TF_PROTO_MSG_TYPE_REPLY:
        return on_reply(node, from_pk, body, len);
    case TF_PROTO_MSG_TYPE_INTRODUCTION:
        return on_introduction(node, from_pk, body, len);
    case TF_PROTO_MSG_TYPE_CLOSE:
        return on_close(node, from_pk, body, len);
    default:
        return TF_PROTO_ACK_REASON_UNSUPPORTED;
    }
}

/* Expiry sweep (connector side). */

/* Collects the open intros that expired before now (intro_expiry is in
 * expiry order, so the walk stops at the first that has not). */
struct sweep {
    struct tf_node *node;
    uint64_t now;
    uint8_t (*ids)[32];
    size_t n, cap;
};

static int sweep_cb(const uint8_t *key, size_t klen, const uint8_t *val, size_t vlen, void *arg)
{
    (void)val;
    (void)vlen;
    struct sweep *s = arg;
    if (klen != 40)
        return 0;
    uint64_t expires = 0;
    for (int i = 0; i < 8; i++)
        expires = expires << 8 | key[i];
    if (expires >= s->now)
        return 1;
    if (tf_node__grow((void **)&s->ids, &s->cap, s->n, sizeof *s->ids) != TF_OK)
        return 1;
    memcpy(s->ids[s->n++], key + 8, 32);
    return 0;
}

static void sweep_timer_cb(uv_timer_t *t)
{
    struct tf_node *node = t->data;
    struct sweep s = {node, tf_node_now(node), NULL, 0, 0};
    /* Housekeeping rides on the same tick: forget message ids whose
     * envelopes have expired (a bounded batch per tick). */
    size_t removed = 0;
    int grc = tf_node_store_seen_gc(node->store, s.now, 1000, &removed);
    if (grc != TF_OK)
        tf_node_log(TF_NODE_LOG_WARN, "delivery", "seen-id cleanup failed: %s", tf_strerror(grc));
    else if (removed > 0)
        tf_node_log(TF_NODE_LOG_DEBUG, "delivery", "forgot %zu expired message ids", removed);
    int src = tf_node_store_kv_foreach(node->store, TF_NODE_STORE_INTRO_EXPIRY, sweep_cb, &s);
    if (src != TF_OK && src != 1)
        s.n = 0;
    for (size_t i = 0; i < s.n; i++) {
        struct intro_out o;
        if (out_load(node, s.ids[i], &o) != TF_OK)
            continue;
        if (o.state != OUT_ASKING) { /* a stale index entry */
            out_free(&o);
            continue;
        }
        o.state = OUT_EXPIRED;
        o.updated = s.now;
        int rc = close_asked(node, &o, -1);
        if (rc == TF_OK)
            rc = out_save(node, &o);
        if (rc == TF_OK)
            rc = intro_event(node, "intro.expired", o.id, NULL, NULL);
        if (rc != TF_OK)
            tf_node_log(TF_NODE_LOG_ERROR, "intro", "cannot expire an intro: %s", tf_strerror(rc));
        out_free(&o);
    }
    free(s.ids);
}

/* Collects every key of a table of intro records. */
struct id_list {
    uint8_t (*ids)[32];
    size_t n, cap;
};

static int collect_cb(const uint8_t *key, size_t klen, const uint8_t *val, size_t vlen, void *arg)
{
    (void)val;
    (void)vlen;
    struct id_list *l = arg;
    if (klen != 32)
        return 0;
    if (tf_node__grow((void **)&l->ids, &l->cap, l->n, sizeof *l->ids) != TF_OK)
        return TF_E_NOMEM;
    memcpy(l->ids[l->n++], key, 32);
    return 0;
}

/* Fills the indexes from the intro tables, once: a store made before schema
 * 5 has intros but empty indexes.  The meta key that records it is written
 * in the same transaction, so a crash before the commit only means the work
 * is done again. */
#define INDEXED_META_KEY "intro-indexes"
static int build_indexes(struct tf_node *node)
{
    struct tf_proto_buf v = {0};
    int rc = tf_node_store_meta_get(node->store, INDEXED_META_KEY, &v);
    tf_proto_buf_free(&v);
    if (rc != TF_E_NOT_FOUND)
        return rc;
    struct id_list out = {0}, in = {0};
    rc = tf_node_store_kv_foreach(node->store, TF_NODE_STORE_INTROS_OUT, collect_cb, &out);
    if (rc == TF_OK)
        rc = tf_node_store_kv_foreach(node->store, TF_NODE_STORE_INTROS_IN, collect_cb, &in);
    for (size_t i = 0; rc == TF_OK && i < out.n; i++) {
        struct intro_out o;
        int lrc = out_load(node, out.ids[i], &o);
        if (lrc == TF_OK) {
            if ((rc = out_save(node, &o)) == TF_OK)
                rc = pair_index_put(node, &o);
            out_free(&o);
        }
    }
    for (size_t i = 0; rc == TF_OK && i < in.n; i++) {
        struct intro_in r;
        if (in_load(node, in.ids[i], &r) == TF_OK) {
            rc = in_save(node, &r);
            in_free(&r);
        }
    }
    if (rc == TF_OK)
        rc = tf_node_store_meta_put(node->store, INDEXED_META_KEY, (const uint8_t *)"1", 1);
    if (rc == TF_OK && out.n + in.n > 0)
        tf_node_log(TF_NODE_LOG_INFO, "intro", "indexed %zu intros and %zu inbox items", out.n,
                    in.n);
    free(out.ids);
    free(in.ids);
    return rc;
}

int tf_node_intro_start(struct tf_node *node)
{
    int rc = build_indexes(node);
    if (rc != TF_OK) {
        tf_node_log(TF_NODE_LOG_ERROR, "intro", "cannot index the intro tables: %s",
                    tf_strerror(rc));
        return rc;
    }
    rc = uv_timer_init(node->loop, &node->intro_sweep);
    if (rc != 0)
        return rc;
    node->intro_sweep.data = node;
    /* The first sweep runs before any link is up, so an intro that expired
     * while the node was down is expired before a late reply can arrive. */
    return uv_timer_start(&node->intro_sweep, sweep_timer_cb, 0, SWEEP_MS);
}

void tf_node_intro_stop(struct tf_node *node)
{
    if (node->intro_sweep.loop != NULL && !uv_is_closing((uv_handle_t *)&node->intro_sweep))
        uv_close((uv_handle_t *)&node->intro_sweep, NULL);
}

/* Verbs. */

/* Copies the optional string argument key (NUL-terminated) into buf. */
static int opt_str(const msgpack_object *args, const char *key, char *buf, size_t cap,
                   bool multiline, char *why, size_t why_cap)
{
    const char *p;
    size_t n;
    buf[0] = '\0';
    int rc = tf_proto_ctl_get_str(args, key, &p, &n);
    if (rc == TF_E_NOT_FOUND)
        return TF_OK;
    if (rc != TF_OK) {
        WHY("argument '%s' must be a string", key);
        return TF_E_BAD_REQUEST;
    }
    if (tf_proto_ctl_strcpy(buf, cap, p, n) != TF_OK ||
        !tf_proto_utf8_is_valid((const uint8_t *)p, n)) {
        WHY("argument '%s' must be text of at most %zu bytes", key, cap - 1);
        return TF_E_BAD_VALUE;
    }
    for (size_t i = 0; i < n; i++) {
        unsigned char ch = (unsigned char)p[i];
        if ((ch < 0x20 && !(multiline && (ch == '\n' || ch == '\t'))) || ch == 0x7f) {
            WHY("argument '%s' contains control characters", key);
            return TF_E_BAD_VALUE;
        }
    }
    return TF_OK;
}

/* The open or introduced intro this connector made for the pair a, b about
 * topic: its state + 1, or 0 if there is none (a closed one does not count:
 * the connector may ask again). */
static int pair_lookup(struct tf_node *node, const uint8_t a[32], const uint8_t b[32],
                       const char *topic, int *found)
{
    uint8_t key[PAIR_KEY_MAX];
    struct tf_proto_buf id = {0};
    struct intro_out o;
    size_t klen = pair_key(a, b, (const uint8_t *)topic, strlen(topic), key);
    *found = 0;
    int rc = tf_node_store_kv_get(node->store, TF_NODE_STORE_INTRO_PAIRS, key, klen, &id);
    if (rc == TF_E_NOT_FOUND)
        return TF_OK;
    if (rc == TF_OK && id.len == 32 && (rc = out_load(node, id.data, &o)) == TF_OK) {
        if (o.state == OUT_ASKING || o.state == OUT_INTRODUCED)
            *found = (int)o.state + 1;
        out_free(&o);
    } else if (rc == TF_OK) {
        rc = TF_E_CORRUPT;
    }
    tf_proto_buf_free(&id);
    return rc == TF_E_NOT_FOUND ? TF_OK : rc; /* an index entry for a removed intro */
}

static int verb_propose(struct tf_node *node, const msgpack_object *args,
                        struct tf_proto_mp_writer *w, char *why, size_t why_cap)
{
    struct tf_node_contact ca = {0}, cb = {0};
    struct intro_out o;
    char topic[TF_PROTO_TAG_MAX + 1], note[TF_PROTO_NOTE_MAX + 1], tmp[TF_PROTO_NOTE_MAX + 1];
    bool sequential = false;
    uint64_t expires_s = EXPIRES_DEFAULT_S;
    int rc;
    memset(&o, 0, sizeof o);
    if ((rc = opt_str(args, "topic", topic, sizeof topic, false, why, why_cap)) != TF_OK)
        return rc;
    if (!tf_proto_tag_is_valid((const uint8_t *)topic, strlen(topic))) {
        WHY(topic[0] ? "'%s' is not a topic tag (1-64 of a-z, 0-9 and '-')"
                     : "a topic is required%s",
            topic);
        return TF_E_BAD_VALUE;
    }
    rc = tf_proto_ctl_get_bool(args, "sequential", &sequential);
    if (rc != TF_OK && rc != TF_E_NOT_FOUND) {
        WHY("argument 'sequential' must be true or false");
        return TF_E_BAD_REQUEST;
    }
    rc = tf_proto_ctl_get_uint(args, "expires_s", &expires_s);
    if ((rc != TF_OK && rc != TF_E_NOT_FOUND) || expires_s < 1 || expires_s > EXPIRES_MAX_S) {
        WHY("argument 'expires_s' must be 1 to %u seconds", EXPIRES_MAX_S);
        return TF_E_BAD_VALUE;
    }
    if ((rc = tf_node__find_contact(node, args, "a", &ca, why, why_cap)) != TF_OK ||
        (rc = tf_node__find_contact(node, args, "b", &cb, why, why_cap)) != TF_OK)
        goto out;
    if (sodium_memcmp(ca.pk, cb.pk, 32) == 0) {
        WHY("A and B are the same person");
        rc = TF_E_SAME_PARTY;
        goto out;
    }
    int found;
    if ((rc = pair_lookup(node, ca.pk, cb.pk, topic, &found)) != TF_OK)
        goto out;
    if (found) {
        WHY(found == OUT_INTRODUCED + 1 ? "you already introduced these two about %s"
                                        : "an intro for these two about %s is already open",
            topic);
        rc = TF_E_EXISTS;
        goto out;
    }
    /* Texts. */
    const struct tf_node_contact *cs[2] = {&ca, &cb};
    const char *note_keys[2] = {"note_a", "note_b"}, *about_keys[2] = {"about_a", "about_b"};
    if ((rc = opt_str(args, "note", note, sizeof note, true, why, why_cap)) != TF_OK)
        goto out;
    for (int x = 0; x < 2; x++) {
        if ((rc = opt_str(args, note_keys[x], tmp, sizeof tmp, true, why, why_cap)) != TF_OK ||
            (rc = set_str(&o.note[x], tmp[0] ? tmp : note)) != TF_OK ||
            (rc = opt_str(args, about_keys[x], tmp, sizeof tmp, true, why, why_cap)) != TF_OK)
            goto out;
        if (tmp[0])
            rc = set_str(&o.about[x], tmp);
        else
            rc = set_buf(&o.about[x], cs[x]->fields.name.ptr, cs[x]->fields.name.len);
        if (rc != TF_OK)
            goto out;
        memcpy(o.pk[x], cs[x]->pk, 32);
        randombytes_buf(o.salt[x], 32);
        /* Keep their cards with the intro: it must reach both sides even if
         * the owner removes one of them as a contact meanwhile. */
        struct tf_proto_bytes card = {cs[x]->card.data, cs[x]->card.len};
        if ((rc = remember_card(node, &card, &cs[x]->fields)) != TF_OK)
            goto out;
    }
    /* The core and its id. */
    struct tf_proto_intro_core core;
    memcpy(core.connector_pk, node->id.sign_pk, 32);
    tf_proto_intro_commit(o.pk[0], o.salt[0], core.commit_a);
    tf_proto_intro_commit(o.pk[1], o.salt[1], core.commit_b);
    core.topic.ptr = (const uint8_t *)topic;
    core.topic.len = strlen(topic);
    core.created = tf_node_now(node);
    core.expires = core.created + expires_s;
    core.mode = sequential ? TF_PROTO_INTRO_MODE_SEQUENTIAL : TF_PROTO_INTRO_MODE_PARALLEL;
    if ((rc = tf_proto_intro_core_encode(&core, &o.core)) != TF_OK ||
        (rc = set_str(&o.topic, topic)) != TF_OK)
        goto out;
    tf_proto_intro_id(o.core.data, o.core.len, o.id);
    o.mode = core.mode;
    o.state = OUT_ASKING;
    o.created = o.updated = core.created;
    o.expires = core.expires;
    o.side[0] = SIDE_PENDING;
    o.side[1] = sequential ? SIDE_NOT_ASKED : SIDE_PENDING;
    if ((rc = send_proposal(node, &o, 0)) != TF_OK ||
        (!sequential && (rc = send_proposal(node, &o, 1)) != TF_OK) ||
        (rc = out_save(node, &o)) != TF_OK || (rc = pair_index_put(node, &o)) != TF_OK ||
        (rc = intro_event(node, "intro.proposed", o.id, NULL, NULL)) != TF_OK) {
        WHY("cannot record the intro: %s", tf_strerror(rc));
        goto out;
    }
    char hex[65];
    sodium_bin2hex(hex, sizeof hex, o.id, 32);
    tf_proto_mp_write_map(w, 1);
    tf_proto_mp_write_cstr(w, "id");
    tf_proto_mp_write_cstr(w, hex);
out:
    out_free(&o);
    tf_node_contact_deinit(&ca);
    tf_node_contact_deinit(&cb);
    return rc;
}

static void write_text(struct tf_proto_mp_writer *w, const struct tf_proto_buf *b)
{
    tf_proto_mp_write_str(w, b->len ? (const char *)b->data : "", b->len);
}

static void write_text_or_nil(struct tf_proto_mp_writer *w, const struct tf_proto_buf *b)
{
    if (b->len)
        write_text(w, b);
    else
        tf_proto_mp_write_nil(w);
}

static void write_out(struct tf_node *node, struct tf_proto_mp_writer *w, const struct intro_out *o)
{
    char hex[65], tid[TF_PROTO_TEXT_ID_SIZE];
    sodium_bin2hex(hex, sizeof hex, o->id, 32);
    tf_proto_mp_write_map(w, 9);
    tf_proto_mp_write_cstr(w, "id");
    tf_proto_mp_write_cstr(w, hex);
    tf_proto_mp_write_cstr(w, "state");
    tf_proto_mp_write_cstr(w, out_state_name(o->state));
    tf_proto_mp_write_cstr(w, "topic");
    write_text(w, &o->topic);
    tf_proto_mp_write_cstr(w, "mode");
    tf_proto_mp_write_cstr(w,
                           o->mode == TF_PROTO_INTRO_MODE_SEQUENTIAL ? "sequential" : "parallel");
    tf_proto_mp_write_cstr(w, "created");
    tf_proto_mp_write_uint(w, o->created);
    tf_proto_mp_write_cstr(w, "expires");
    tf_proto_mp_write_uint(w, o->expires);
    tf_proto_mp_write_cstr(w, "updated");
    tf_proto_mp_write_uint(w, o->updated);
    for (int x = 0; x < 2; x++) {
        struct tf_node_contact c = {0};
        tf_proto_mp_write_cstr(w, x ? "b" : "a");
        tf_proto_mp_write_map(w, 7);
        tf_proto_mp_write_cstr(w, "contact");
        tf_proto_text_id_encode(o->pk[x], tid);
        tf_proto_mp_write_cstr(w, tid);
        tf_proto_mp_write_cstr(w, "alias");
        tf_node__write_alias(node, o->pk[x], w);
        tf_proto_mp_write_cstr(w, "name");
        if (tf_node_store_contact_get(node->store, o->pk[x], &c) == TF_OK)
            tf_proto_mp_write_text(w, c.fields.name);
        else
            write_text(w, &o->about[x]);
        tf_node_contact_deinit(&c);
        tf_proto_mp_write_cstr(w, "state");
        tf_proto_mp_write_cstr(w, side_state_name(o->side[x]));
        tf_proto_mp_write_cstr(w, "reason");
        write_text_or_nil(w, &o->reason[x]);
        tf_proto_mp_write_cstr(w, "note");
        write_text(w, &o->note[x]);
        tf_proto_mp_write_cstr(w, "about");
        write_text(w, &o->about[x]);
    }
}

/* Resolves args["id"]: the full hex id or a unique prefix of >= 8 digits. */
struct id_scan {
    char prefix[65];
    size_t n;
    uint8_t id[32];
    int matches;
};

static int id_cb(const uint8_t *key, size_t klen, const uint8_t *val, size_t vlen, void *arg)
{
    (void)val;
    (void)vlen;
    struct id_scan *s = arg;
    char hex[65];
    if (klen != 32)
        return 0;
    sodium_bin2hex(hex, sizeof hex, key, 32);
    if (strncmp(hex, s->prefix, s->n) != 0)
        return 1; /* keys are in order: past the prefix */
    memcpy(s->id, key, 32);
    return ++s->matches > 1 ? 1 : 0;
}

static int resolve_id(struct tf_node *node, enum tf_node_store_table table,
                      const msgpack_object *args, uint8_t id[32], char *why, size_t why_cap)
{
    struct id_scan s = {.matches = 0};
    const char *p;
    size_t n;
    if (tf_proto_ctl_get_str(args, "id", &p, &n) != TF_OK || n < 8 || n > 64) {
        WHY("give the intro id (at least its first 8 hex digits)");
        return TF_E_BAD_REQUEST;
    }
    for (size_t i = 0; i < n; i++) {
        char ch = p[i];
        if (ch >= 'A' && ch <= 'F')
            ch = (char)(ch + 32);
        if (!((ch >= '0' && ch <= '9') || (ch >= 'a' && ch <= 'f'))) {
            WHY("an intro id is hex digits");
            return TF_E_BAD_REQUEST;
        }
        s.prefix[i] = ch;
    }
    s.n = n;
    /* Walk from the first key with the prefix's whole bytes. */
    uint8_t from[32];
    size_t flen = 0;
    if (sodium_hex2bin(from, sizeof from, s.prefix, n & ~(size_t)1, NULL, &flen, NULL) != 0)
        return TF_E_BAD_REQUEST;
    int rc = tf_node_store_kv_foreach_from(node->store, table, from, flen, id_cb, &s);
    if (rc != TF_OK && rc != 1)
        return rc;
    if (s.matches == 0) {
        WHY("no intro %.*s here", (int)n, s.prefix);
        return TF_E_NOT_FOUND;
    }
    if (s.matches > 1) {
        WHY("%.*s matches several intros; give more digits", (int)n, s.prefix);
        return TF_E_AMBIGUOUS;
    }
    memcpy(id, s.id, 32);
    return TF_OK;
}

struct list_out {
    struct tf_node *node;
    int filter; /* state, or -1 */
    struct intro_out *items;
    size_t n, cap;
};

static int list_out_cb(const uint8_t *key, size_t klen, const uint8_t *val, size_t vlen, void *arg)
{
    struct list_out *l = arg;
    struct intro_out o;
    if (klen != 32 || out_decode(key, val, vlen, &o) != TF_OK)
        return 0;
    if (l->filter >= 0 && o.state != (uint64_t)l->filter) {
        out_free(&o);
        return 0;
    }
    if (tf_node__grow((void **)&l->items, &l->cap, l->n, sizeof *l->items) != TF_OK) {
        out_free(&o);
        return 1;
    }
    l->items[l->n++] = o;
    return 0;
}

static int newest_out_first(const void *a, const void *b)
{
    const struct intro_out *x = a, *y = b;
    return x->created == y->created ? memcmp(x->id, y->id, 32) : (x->created > y->created ? -1 : 1);
}

static int verb_list(struct tf_node *node, const msgpack_object *args, struct tf_proto_mp_writer *w,
                     char *why, size_t why_cap)
{
    struct list_out l = {node, -1, NULL, 0, 0};
    char state[16];
    int rc = opt_str(args, "state", state, sizeof state, false, why, why_cap);
    if (rc != TF_OK)
        return rc;
    if (state[0]) {
        for (int i = 0; i <= OUT_EXPIRED; i++)
            if (strcmp(state, out_state_name((uint64_t)i)) == 0)
                l.filter = i;
        if (l.filter < 0) {
            WHY("state must be asking, introduced, declined, withdrawn or expired");
            return TF_E_BAD_VALUE;
        }
    }
    rc = tf_node_store_kv_foreach(node->store, TF_NODE_STORE_INTROS_OUT, list_out_cb, &l);
    if (rc == TF_OK) {
        if (l.n > 1)
            qsort(l.items, l.n, sizeof *l.items, newest_out_first);
        tf_proto_mp_write_array(w, (uint32_t)l.n);
        for (size_t i = 0; i < l.n; i++)
            write_out(node, w, &l.items[i]);
    }
    for (size_t i = 0; i < l.n; i++)
        out_free(&l.items[i]);
    free(l.items);
    return rc;
}

static int verb_show(struct tf_node *node, const msgpack_object *args, struct tf_proto_mp_writer *w,
                     char *why, size_t why_cap)
{
    uint8_t id[32];
    struct intro_out o;
    int rc = resolve_id(node, TF_NODE_STORE_INTROS_OUT, args, id, why, why_cap);
    if (rc != TF_OK)
        return rc;
    if ((rc = out_load(node, id, &o)) != TF_OK)
        return rc;
    write_out(node, w, &o);
    out_free(&o);
    return TF_OK;
}

static int verb_withdraw(struct tf_node *node, const msgpack_object *args,
                         struct tf_proto_mp_writer *w, char *why, size_t why_cap)
{
    uint8_t id[32];
    struct intro_out o;
    int rc = resolve_id(node, TF_NODE_STORE_INTROS_OUT, args, id, why, why_cap);
    if (rc != TF_OK)
        return rc;
    if ((rc = out_load(node, id, &o)) != TF_OK)
        return rc;
    if (o.state != OUT_ASKING) {
        WHY("this intro is %s; only an intro that is still asking can be withdrawn",
            out_state_name(o.state));
        rc = TF_E_BAD_STATE;
        goto out;
    }
    o.state = OUT_WITHDRAWN;
    o.updated = tf_node_now(node);
    if ((rc = close_asked(node, &o, -1)) != TF_OK || (rc = out_save(node, &o)) != TF_OK ||
        (rc = intro_event(node, "intro.withdrawn", o.id, NULL, NULL)) != TF_OK) {
        WHY("cannot withdraw: %s", tf_strerror(rc));
        goto out;
    }
    write_out(node, w, &o);
out:
    out_free(&o);
    return rc;
}

/* Inbox. */

static void write_in(struct tf_node *node, struct tf_proto_mp_writer *w, const struct intro_in *r)
{
    struct tf_proto_proposal p;
    char hex[65], tid[TF_PROTO_TEXT_ID_SIZE];
    bool ok = tf_proto_proposal_decode(r->proposal.data, r->proposal.len, &p) == TF_OK;
    sodium_bin2hex(hex, sizeof hex, r->id, 32);
    tf_proto_mp_write_map(w, 16);
    tf_proto_mp_write_cstr(w, "id");
    tf_proto_mp_write_cstr(w, hex);
    tf_proto_mp_write_cstr(w, "connector");
    if (ok) {
        tf_proto_text_id_encode(p.core.connector_pk, tid);
        tf_proto_mp_write_cstr(w, tid);
    } else {
        tf_proto_mp_write_nil(w);
    }
    tf_proto_mp_write_cstr(w, "connector_alias");
    tf_node__write_alias(node, ok ? p.core.connector_pk : NULL, w);
    tf_proto_mp_write_cstr(w, "connector_name");
    if (ok)
        tf_proto_mp_write_text(w, p.card.name);
    else
        tf_proto_mp_write_nil(w);
    tf_proto_mp_write_cstr(w, "topic");
    if (ok)
        tf_proto_mp_write_text(w, p.core.topic);
    else
        tf_proto_mp_write_nil(w);
    tf_proto_mp_write_cstr(w, "mode");
    tf_proto_mp_write_cstr(w, ok && p.core.mode == TF_PROTO_INTRO_MODE_SEQUENTIAL ? "sequential"
                                                                                  : "parallel");
    tf_proto_mp_write_cstr(w, "about_other");
    if (ok)
        tf_proto_mp_write_text(w, p.about_other);
    else
        tf_proto_mp_write_nil(w);
    tf_proto_mp_write_cstr(w, "note");
    if (ok)
        tf_proto_mp_write_text(w, p.note);
    else
        tf_proto_mp_write_nil(w);
    tf_proto_mp_write_cstr(w, "state");
    tf_proto_mp_write_cstr(w, in_state_name(r->state));
    tf_proto_mp_write_cstr(w, "decided_by");
    write_text_or_nil(w, &r->decided_by);
    tf_proto_mp_write_cstr(w, "received");
    tf_proto_mp_write_uint(w, r->received);
    tf_proto_mp_write_cstr(w, "updated");
    tf_proto_mp_write_uint(w, r->updated);
    tf_proto_mp_write_cstr(w, "expires");
    tf_proto_mp_write_uint(w, ok ? p.core.expires : 0);
    tf_proto_mp_write_cstr(w, "other");
    if (r->has_other) {
        tf_proto_text_id_encode(r->other, tid);
        tf_proto_mp_write_cstr(w, tid);
    } else {
        tf_proto_mp_write_nil(w);
    }
    tf_proto_mp_write_cstr(w, "other_note");
    if (r->state == IN_INTRODUCED)
        write_text(w, &r->other_note);
    else
        tf_proto_mp_write_nil(w);
    tf_proto_mp_write_cstr(w, "late_revocation");
    tf_proto_mp_write_bool(w, r->late_revocation);
}

struct list_in {
    bool all;
    struct intro_in *items;
    size_t n, cap;
};

static int list_in_cb(const uint8_t *key, size_t klen, const uint8_t *val, size_t vlen, void *arg)
{
    struct list_in *l = arg;
    struct intro_in r;
    if (klen != 32 || in_decode(key, val, vlen, &r) != TF_OK)
        return 0;
    if (!l->all && r.state != IN_PENDING) {
        in_free(&r);
        return 0;
    }
    if (tf_node__grow((void **)&l->items, &l->cap, l->n, sizeof *l->items) != TF_OK) {
        in_free(&r);
        return 1;
    }
    l->items[l->n++] = r;
    return 0;
}

static int newest_in_first(const void *a, const void *b)
{
    const struct intro_in *x = a, *y = b;
    return x->received == y->received ? memcmp(x->id, y->id, 32)
                                      : (x->received > y->received ? -1 : 1);
}

static int verb_inbox(struct tf_node *node, const msgpack_object *args,
                      struct tf_proto_mp_writer *w, char *why, size_t why_cap)
{
    (void)why;
    (void)why_cap;
    struct list_in l = {false, NULL, 0, 0};
    int rc = tf_proto_ctl_get_bool(args, "all", &l.all);
    if (rc != TF_OK && rc != TF_E_NOT_FOUND)
        return TF_E_BAD_REQUEST;
    rc = tf_node_store_kv_foreach(node->store, TF_NODE_STORE_INTROS_IN, list_in_cb, &l);
    if (rc == TF_OK) {
        if (l.n > 1)
            qsort(l.items, l.n, sizeof *l.items, newest_in_first);
        tf_proto_mp_write_array(w, (uint32_t)l.n);
        for (size_t i = 0; i < l.n; i++)
            write_in(node, w, &l.items[i]);
    }
    for (size_t i = 0; i < l.n; i++)
        in_free(&l.items[i]);
    free(l.items);
    return rc;
}

/* Signs and sends this party's reply to the connector. */
static int answer(struct tf_node *node, struct intro_in *r, bool accept, const char *text,
                  const char *decided_by)
{
    struct tf_proto_proposal p;
    struct tf_proto_reply reply;
    struct tf_proto_buf signed_r = {0};
    int rc = tf_proto_proposal_decode(r->proposal.data, r->proposal.len, &p);
    if (rc != TF_OK)
        return TF_E_CORRUPT;
    memset(&reply, 0, sizeof reply);
    memcpy(reply.intro_id, r->id, 32);
    reply.side = p.side;
    reply.decision = accept ? TF_PROTO_DECISION_ACCEPT : TF_PROTO_DECISION_DECLINE;
    reply.card.ptr = node->card.data;
    reply.card.len = node->card.len;
    if (accept) {
        reply.note.ptr = (const uint8_t *)text;
        reply.note.len = strlen(text);
    } else {
        reply.reason.ptr = (const uint8_t *)text;
        reply.reason.len = strlen(text);
    }
    reply.time = tf_node_now(node);
    if ((rc = tf_proto_reply_sign(&node->id, &reply, &signed_r)) != TF_OK ||
        (rc = send_to(node, p.core.connector_pk, TF_PROTO_MSG_TYPE_REPLY, &signed_r,
                      p.core.expires)) != TF_OK)
        goto out;
    if (accept)
        rc = set_buf(&r->my_accept, signed_r.data, signed_r.len);
    if (rc == TF_OK)
        rc = set_str(&r->decided_by, decided_by);
    r->state = accept ? IN_ACCEPTED : IN_DECLINED;
    r->updated = reply.time;
    if (rc == TF_OK)
        rc = in_save(node, r);
    if (rc == TF_OK)
        rc = intro_event(node, accept ? "inbox.accepted" : "inbox.declined", r->id, "decided_by",
                         decided_by);
out:
    tf_proto_buf_free(&signed_r);
    return rc;
}

static int verb_answer(struct tf_node *node, const msgpack_object *args,
                       struct tf_proto_mp_writer *w, char *why, size_t why_cap, bool accept)
{
    uint8_t id[32];
    struct intro_in r;
    char text[TF_PROTO_NOTE_MAX + 1];
    int rc = resolve_id(node, TF_NODE_STORE_INTROS_IN, args, id, why, why_cap);
    if (rc != TF_OK)
        return rc;
    if ((rc = opt_str(args, accept ? "note" : "reason", text,
                      accept ? sizeof text : TF_PROTO_REASON_MAX + 1, true, why, why_cap)) != TF_OK)
        return rc;
    if ((rc = in_load(node, id, &r)) != TF_OK)
        return rc;
    if (r.state == IN_INTRODUCED || r.state == IN_CLOSED) {
        WHY("this intro is %s; it can no longer be %s", in_state_name(r.state),
            accept ? "accepted" : "declined");
        rc = TF_E_BAD_STATE;
        goto out;
    }
    if (accept && r.state == IN_ACCEPTED) {
        WHY("you already accepted this intro");
        rc = TF_E_BAD_STATE;
        goto out;
    }
    if (!accept && r.state == IN_DECLINED) {
        WHY("you already declined this intro");
        rc = TF_E_BAD_STATE;
        goto out;
    }
    if ((rc = answer(node, &r, accept, text, "owner")) != TF_OK) {
        WHY("cannot answer: %s", tf_strerror(rc));
        goto out;
    }
    write_in(node, w, &r);
out:
    in_free(&r);
    return rc;
}

int tf_node_intro_verb(struct tf_node *node, const char *verb, size_t verb_len,
                       const msgpack_object *args, struct tf_proto_mp_writer *w, char *why,
                       size_t why_cap, bool *handled)
{
    static const char *const names[] = {"intro.propose",  "intro.list", "intro.show",
                                        "intro.withdraw", "inbox.list", "intro.accept",
                                        "intro.decline"};
    int which = -1;
    for (int i = 0; i < 7; i++)
        if (strlen(names[i]) == verb_len && memcmp(names[i], verb, verb_len) == 0)
            which = i;
    *handled = which >= 0;
    switch (which) {
    case 0:
        return verb_propose(node, args, w, why, why_cap);
    case 1:
        return verb_list(node, args, w, why, why_cap);
    case 2:
        return verb_show(node, args, w, why, why_cap);
    case 3:
        return verb_withdraw(node, args, w, why, why_cap);
    case 4:
        return verb_inbox(node, args, w, why, why_cap);
    case 5:
        return verb_answer(node, args, w, why, why_cap, true);
    case 6:
        return verb_answer(node, args, w, why, why_cap, false);
    default:
        return TF_E_UNKNOWN_VERB;
    }
}
