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
#include "node/request.h" /* requests */
#include "node/store.h"
#include "proto/ctl.h"
#include "proto/envelope.h"
#include "proto/intro.h"
#include "proto/intro_machine.h"

#define WHY(...) snprintf(why, why_cap, __VA_ARGS__)
#define SWEEP_MS 1000
#define EXPIRES_DEFAULT_S (14u * 86400u)
#define EXPIRES_MAX_S TF_PROTO_INTRO_EXPIRES_MAX_S
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
    /* When the close to each side is due (0: none waiting).  A close caused
     * by a decline or a withdrawal waits a random delay (docs/PROTOCOL.md
     * §8); records written before it was kept have 21 fields. */
    uint64_t close_at[2];
};

/* Party side. */

enum in_state { IN_PENDING, IN_ACCEPTED, IN_DECLINED, IN_INTRODUCED, IN_CLOSED, IN_EXPIRED };

static const char *in_state_name(uint64_t s)
{
    static const char *const names[] = {"pending",    "accepted", "declined",
                                        "introduced", "closed",   "expired"};
    return s <= IN_EXPIRED ? names[s] : "?";
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
    /* The connector was not a contact when the proposal came: the record
     * counts against the strangers' budget (11th field; false before). */
    bool stranger;
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
    tf_proto_mp_write_array(&w, 23);
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
    tf_proto_mp_write_uint(&w, o->close_at[0]);
    tf_proto_mp_write_uint(&w, o->close_at[1]);
    return tf_proto_mp_writer_finish(&w, out);
}

static int out_decode(const uint8_t id[32], const uint8_t *p, size_t n, struct intro_out *o)
{
    struct tf_proto_mp_reader r;
    uint32_t fields = 0;
    int rc;
    memset(o, 0, sizeof *o);
    memcpy(o->id, id, 32);
    tf_proto_mp_reader_init(&r, p, n);
    if ((rc = tf_proto_mp_read_array(&r, 23, &fields)) != TF_OK || (fields != 21 && fields != 23) ||
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
        (fields == 23 && ((rc = tf_proto_mp_read_uint(&r, &o->close_at[0])) != TF_OK ||
                          (rc = tf_proto_mp_read_uint(&r, &o->close_at[1])) != TF_OK)) ||
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
    tf_proto_mp_write_array(&w, 11);
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
    tf_proto_mp_write_bool(&w, r->stranger);
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
    if ((rc = tf_proto_mp_read_array(&rd, 11, &fields)) != TF_OK || fields < 9 ||
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
        (fields >= 10 && (rc = r_bin(&rd, &r->introduction, TF_PROTO_BODY_MAX)) != TF_OK) ||
        (fields == 11 && (rc = tf_proto_mp_read_bool(&rd, &r->stranger)) != TF_OK) ||
        (rc = tf_proto_mp_read_end(&rd)) != TF_OK || r->state > IN_EXPIRED)
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
static void put_u64be(uint64_t v, uint8_t out[8])
{
    for (int i = 0; i < 8; i++)
        out[i] = (uint8_t)(v >> (56 - 8 * i));
}

static uint64_t get_u64be(const uint8_t in[8])
{
    uint64_t v = 0;
    for (int i = 0; i < 8; i++)
        v = v << 8 | in[i];
    return v;
}

static void expiry_key(uint64_t expires, const uint8_t id[32], uint8_t key[40])
{
    put_u64be(expires, key);
    memcpy(key + 8, id, 32);
}

static uint64_t add_sat(uint64_t a, uint64_t b)
{
    return a > UINT64_MAX - b ? UINT64_MAX : a + b;
}

static uint64_t max_u64(uint64_t a, uint64_t b)
{
    return a > b ? a : b;
}

/*
 * intro_sched (schema 6): the schedules, budget indexes and tombstones of
 * both sides in one table, told apart by a kind byte first.  Times are
 * u64be, so each timed kind walks in time order:
 *   'x' u64be(expires) id           a pending inbox item expires then
 *   'a' u64be(expires + grace) id   an accepted one, once no introduction
 *                                   can arrive any more
 *   'i' u64be(at) id                a finished inbox item is collected at `at`
 *   'c' u64be(at) id                an intro's delayed close is due at `at`
 *   'o' u64be(at) id                a finished intro is collected at `at`
 *   't' u64be(at) id                a tombstone is collected at `at`
 *   'f' connector u64be(received) id   every inbox item, by connector (what
 *                                   refers to the connector's card); a
 *                                   tombstone's is 'f' connector id
 *   'b' connector u64be(received) id   the same but introduced items: what
 *                                   counts against the connector's budget
 *                                   (a tombstone's: 'b' connector id)
 *   's' u64be(received) id          every open or introduced one of those a
 *                                   stranger caused (what max_stranger_intros
 *                                   refuses proposals on)
 *   'z' u64be(collect_at) id        every finished (declined, closed, expired)
 *                                   inbox item and tombstone a stranger
 *                                   caused, oldest first: at most
 *                                   max_stranger_intros are kept (R58)
 *   'q' party u64be(created) id     every intro, by party (their card is kept)
 *   'r' u64be(~received) id         inbox items, newest first (paging)
 *   'p' u64be(~created) id          intros, newest first (paging)
 *   'T' id -> u64be(collect_at) || connector || stranger (1 byte): a tombstone
 * Every value but the tombstone's is empty.  A record's keys are computed
 * from the record alone (sched keys below); saving it removes the keys of its
 * previous version that it no longer has, so each record has exactly its
 * keys.  A timed key whose record no longer has it (stale: the retention
 * setting changed) is dropped by the sweep that meets it.
 *
 * pages: 'f', 'b', 's' and 'q' are only ever counted by prefix (kind, or
 * kind || pk), so what follows the prefix is free: a record's keys carry its
 * (never changing) time before the id, so that the keys a batch of new
 * intros writes, and later deletes, sit together at the end of their
 * prefix's range instead of one random leaf each (docs/PERFORMANCE.md).
 * Stores written before have them without the time; build_indexes rewrites
 * them once (INDEXED_META_KEY).
 */
#define SK_MAX 73
#define SK_KEYS 8
struct keyset {
    uint8_t key[SK_KEYS][SK_MAX];
    size_t len[SK_KEYS], n;
};

static void ks_time(struct keyset *ks, uint8_t kind, uint64_t t, const uint8_t id[32])
{
    assert(ks->n < SK_KEYS);
    uint8_t *k = ks->key[ks->n];
    k[0] = kind;
    put_u64be(t, k + 1);
    memcpy(k + 9, id, 32);
    ks->len[ks->n++] = 41;
}

/* kind || pk || [u64be(t)] || id: pk NULL leaves it out, and timed false the
 * time. */
static void ks_key(struct keyset *ks, uint8_t kind, const uint8_t *pk, bool timed, uint64_t t,
                   const uint8_t id[32])
{
    assert(ks->n < SK_KEYS);
    uint8_t *k = ks->key[ks->n];
    size_t n = 1;
    k[0] = kind;
    if (pk != NULL) {
        memcpy(k + 1, pk, 32);
        n += 32;
    }
    if (timed) {
        put_u64be(t, k + n);
        n += 8;
    }
    memcpy(k + n, id, 32);
    ks->len[ks->n++] = n + 32;
}

/* kind || pk || id, or kind || id when pk is NULL (tombstones). */
static void ks_pk(struct keyset *ks, uint8_t kind, const uint8_t *pk, const uint8_t id[32])
{
    ks_key(ks, kind, pk, false, 0, id);
}

/* kind || pk || u64be(t) || id, or kind || u64be(t) || id (records). */
static void ks_pk_time(struct keyset *ks, uint8_t kind, const uint8_t *pk, uint64_t t,
                       const uint8_t id[32])
{
    ks_key(ks, kind, pk, true, t, id);
}

static bool ks_has(const struct keyset *ks, const uint8_t *key, size_t len)
{
    for (size_t i = 0; i < ks->n; i++)
        if (ks->len[i] == len && memcmp(ks->key[i], key, len) == 0)
            return true;
    return false;
}

/* True if new has a key of kind that old lacks. */
static bool ks_gains(const struct keyset *old, const struct keyset *new, uint8_t kind)
{
    for (size_t i = 0; i < new->n; i++)
        if (new->key[i][0] == kind && !ks_has(old, new->key[i], new->len[i]))
            return true;
    return false;
}

/* Removes the keys of old that new lacks, then puts those of new that old
 * lacks.  A key both have is left alone: rewriting it would dirty its leaf
 * (and the branch pages above it) for nothing, and the 'q', 'f' and 'b' keys
 * are spread over the table by their random ids (docs/PERFORMANCE.md). */
static int ks_apply(struct tf_node *node, const struct keyset *old, const struct keyset *new)
{
    int rc = TF_OK;
    for (size_t i = 0; rc == TF_OK && i < old->n; i++)
        if (!ks_has(new, old->key[i], old->len[i]))
            rc = index_set(node, TF_NODE_STORE_INTRO_SCHED, old->key[i], old->len[i], false);
    for (size_t i = 0; rc == TF_OK && i < new->n; i++)
        if (!ks_has(old, new->key[i], new->len[i]))
            rc = index_set(node, TF_NODE_STORE_INTRO_SCHED, new->key[i], new->len[i], true);
    return rc;
}

/* When a finished inbox item is collected: after the retention, and not
 * while its proposal could still be delivered (until it expires) or, once
 * accepted, while an introduction could still arrive. */
static uint64_t in_collect_at(const struct tf_node *node, const struct intro_in *r,
                              const struct tf_proto_proposal *p)
{
    uint64_t until = add_sat(p->core.expires, r->my_accept.len ? ENVELOPE_GRACE_S : 0);
    return max_u64(add_sat(r->updated, node->config.retention_s), until);
}

/* Pending, accepted or introduced: what the owner is still asked about, or
 * holds as a contact's proof.  The others are over. */
static bool in_is_live(const struct intro_in *r)
{
    return r->state == IN_PENDING || r->state == IN_ACCEPTED || r->state == IN_INTRODUCED;
}

static void in_keys(const struct tf_node *node, const struct intro_in *r, struct keyset *ks)
{
    struct tf_proto_proposal p;
    ks->n = 0;
    if (tf_proto_proposal_decode(r->proposal.data, r->proposal.len, &p) != TF_OK)
        return;
    ks_time(ks, 'r', ~r->received, r->id);
    ks_pk_time(ks, 'f', p.core.connector_pk, r->received, r->id);
    /* An introduced item from a contact is not the connector's to spend: it
     * exists because the owner (or the owner's policy) and the other party
     * both said yes, and it is the proof behind a contact, kept for good.
     * Counting it would lock a long-standing connector out after its 200th
     * introduction.  A stranger's still counts: with a policy that accepts
     * strangers, one could otherwise mint contacts without end (it signs
     * its sybils' acceptances itself). */
    if (r->state != IN_INTRODUCED || r->stranger) {
        ks_pk_time(ks, 'b', p.core.connector_pk, r->received, r->id);
        if (r->stranger && in_is_live(r))
            ks_pk_time(ks, 's', NULL, r->received, r->id);
        else if (r->stranger)
            ks_time(ks, 'z', in_collect_at(node, r, &p), r->id);
    }
    if (r->state == IN_PENDING)
        ks_time(ks, 'x', p.core.expires, r->id);
    else if (r->state == IN_ACCEPTED)
        ks_time(ks, 'a', add_sat(p.core.expires, ENVELOPE_GRACE_S), r->id);
    else if (r->state != IN_INTRODUCED)
        ks_time(ks, 'i', in_collect_at(node, r, &p), r->id);
}

/* The earliest delayed close of o, 0 when none waits. */
static uint64_t close_due(const struct intro_out *o)
{
    uint64_t a = o->close_at[0], b = o->close_at[1];
    return a == 0 ? b : b == 0 ? a : (a < b ? a : b);
}

static bool out_finished(const struct intro_out *o)
{
    return o->state == OUT_DECLINED || o->state == OUT_WITHDRAWN || o->state == OUT_EXPIRED;
}

static void out_keys(const struct tf_node *node, const struct intro_out *o, struct keyset *ks)
{
    ks->n = 0;
    ks_time(ks, 'p', ~o->created, o->id);
    ks_pk_time(ks, 'q', o->pk[0], o->created, o->id);
    ks_pk_time(ks, 'q', o->pk[1], o->created, o->id);
    uint64_t due = close_due(o);
    if (due != 0)
        ks_time(ks, 'c', due, o->id);
    else if (out_finished(o))
        ks_time(ks, 'o', add_sat(o->updated, node->config.retention_s), o->id);
}

/* Saves o with its index keys.  reindex: the keys may be missing (the
 * indexes are being built), so every key is written, not only the ones
 * that changed. */
static int out_save(struct tf_node *node, const struct intro_out *o, bool reindex)
{
    struct tf_proto_buf v = {0};
    struct keyset old = {.n = 0}, new;
    struct intro_out prev;
    uint8_t key[40];
    bool indexed = false; /* the previous version's expiry key is this one */
    int rc = tf_node_store_kv_get(node->store, TF_NODE_STORE_INTROS_OUT, o->id, 32, &v);
    if (rc == TF_OK && !reindex && out_decode(o->id, v.data, v.len, &prev) == TF_OK) {
        out_keys(node, &prev, &old);
        indexed = prev.state == OUT_ASKING && prev.expires == o->expires;
        out_free(&prev);
    }
    tf_proto_buf_free(&v);
    if (rc != TF_OK && rc != TF_E_NOT_FOUND)
        return rc;
    out_keys(node, o, &new);
    rc = put_record(node, TF_NODE_STORE_INTROS_OUT, o->id, out_encode(o, &v), &v);
    expiry_key(o->expires, o->id, key);
    /* Only an open intro can expire; an unchanged key is not rewritten. */
    if (rc == TF_OK && !(indexed && o->state == OUT_ASKING))
        rc = index_set(node, TF_NODE_STORE_INTRO_EXPIRY, key, sizeof key, o->state == OUT_ASKING);
    if (rc == TF_OK)
        rc = ks_apply(node, &old, &new);
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

/* intro_pending key: connector || id, while the owner has not answered. */
static int pending_index_set(struct tf_node *node, const struct intro_in *r, bool present)
{
    struct tf_proto_proposal p;
    uint8_t key[64];
    int rc = tf_proto_proposal_decode(r->proposal.data, r->proposal.len, &p);
    if (rc == TF_OK) {
        memcpy(key, p.core.connector_pk, 32);
        memcpy(key + 32, r->id, 32);
        rc = index_set(node, TF_NODE_STORE_INTRO_PENDING, key, sizeof key, present);
    }
    return rc;
}

static int stranger_trim(struct tf_node *node, const uint8_t except[32]);

/* Saves r with its index keys; reindex as for out_save. */
static int in_save(struct tf_node *node, const struct intro_in *r, bool reindex)
{
    struct tf_proto_buf v = {0};
    struct keyset old = {.n = 0}, new;
    struct intro_in prev;
    bool was_pending = false; /* the pending key is there already */
    int rc = tf_node_store_kv_get(node->store, TF_NODE_STORE_INTROS_IN, r->id, 32, &v);
    if (rc == TF_OK && !reindex && in_decode(r->id, v.data, v.len, &prev) == TF_OK) {
        in_keys(node, &prev, &old);
        was_pending = prev.state == IN_PENDING; /* same proposal: same key */
        in_free(&prev);
    }
    tf_proto_buf_free(&v);
    if (rc != TF_OK && rc != TF_E_NOT_FOUND)
        return rc;
    in_keys(node, r, &new);
    rc = put_record(node, TF_NODE_STORE_INTROS_IN, r->id, in_encode(r, &v), &v);
    if (rc == TF_OK && !(was_pending && r->state == IN_PENDING))
        rc = pending_index_set(node, r, r->state == IN_PENDING);
    if (rc == TF_OK)
        rc = ks_apply(node, &old, &new);
    if (rc == TF_OK && ks_gains(&old, &new, 'z')) /* a stranger's record just finished */
        rc = stranger_trim(node, r->id);
    return rc;
}

/* Counts the intro_sched keys that start with kind || pk (kind alone when pk
 * is NULL), up to max. */
struct prefix_count {
    uint8_t prefix[33];
    size_t plen;
    uint64_t n, max;
};

static int prefix_count_cb(const uint8_t *key, size_t klen, const uint8_t *val, size_t vlen,
                           void *arg)
{
    (void)val;
    (void)vlen;
    struct prefix_count *pc = arg;
    if (klen < pc->plen || memcmp(key, pc->prefix, pc->plen) != 0)
        return 1; /* past the prefix */
    return ++pc->n >= pc->max ? 1 : 0;
}

static int prefix_count(struct tf_node *node, uint8_t kind, const uint8_t *pk, uint64_t max,
                        uint64_t *n)
{
    struct prefix_count pc = {.plen = pk ? 33 : 1, .n = 0, .max = max};
    pc.prefix[0] = kind;
    if (pk != NULL)
        memcpy(pc.prefix + 1, pk, 32);
    *n = 0;
    if (max == 0)
        return TF_OK;
    int rc = tf_node_store_kv_foreach_from(node->store, TF_NODE_STORE_INTRO_SCHED, pc.prefix,
                                           pc.plen, prefix_count_cb, &pc);
    *n = pc.n;
    return rc == 1 ? TF_OK : rc;
}

/* Forgets the card of pk (kept for a correspondent who is not a contact)
 * once no inbox item, tombstone or intro refers to pk. */
static int card_gc(struct tf_node *node, const uint8_t pk[32])
{
    uint64_t from = 0, party = 0;
    int rc = prefix_count(node, 'f', pk, 1, &from);
    if (rc == TF_OK)
        rc = prefix_count(node, 'q', pk, 1, &party);
    if (rc == TF_OK && from == 0 && party == 0)
        rc = index_set(node, TF_NODE_STORE_CARDS, pk, 32, false);
    return rc;
}

static int out_remove(struct tf_node *node, const struct intro_out *o)
{
    struct keyset keys, none = {.n = 0};
    uint8_t key[PAIR_KEY_MAX];
    struct tf_proto_buf id = {0};
    out_keys(node, o, &keys);
    int rc = index_set(node, TF_NODE_STORE_INTROS_OUT, o->id, 32, false);
    if (rc == TF_OK)
        rc = ks_apply(node, &keys, &none);
    expiry_key(o->expires, o->id, key);
    if (rc == TF_OK)
        rc = index_set(node, TF_NODE_STORE_INTRO_EXPIRY, key, 40, false);
    /* The pair's index entry, if it still names this intro. */
    size_t klen = pair_key(o->pk[0], o->pk[1], o->topic.data, o->topic.len, key);
    if (rc == TF_OK &&
        (rc = tf_node_store_kv_get(node->store, TF_NODE_STORE_INTRO_PAIRS, key, klen, &id)) ==
            TF_OK &&
        id.len == 32 && memcmp(id.data, o->id, 32) == 0)
        rc = index_set(node, TF_NODE_STORE_INTRO_PAIRS, key, klen, false);
    tf_proto_buf_free(&id);
    if (rc == TF_E_NOT_FOUND)
        rc = TF_OK;
    for (int x = 0; x < 2 && rc == TF_OK; x++)
        rc = card_gc(node, o->pk[x]);
    if (rc == TF_OK) /* what its parties reported goes with it */
        rc = tf_node_request_forget_feedback(node, o->id, o->pk);
    return rc;
}

static int in_remove(struct tf_node *node, const struct intro_in *r)
{
    struct keyset keys, none = {.n = 0};
    struct tf_proto_proposal p;
    in_keys(node, r, &keys);
    int rc = index_set(node, TF_NODE_STORE_INTROS_IN, r->id, 32, false);
    if (rc == TF_OK)
        rc = ks_apply(node, &keys, &none);
    if (rc == TF_OK && tf_proto_proposal_decode(r->proposal.data, r->proposal.len, &p) == TF_OK &&
        (rc = pending_index_set(node, r, false)) == TF_OK)
        rc = card_gc(node, p.core.connector_pk);
    if (rc == TF_OK) /* what this node reported on it goes with it */
        rc = tf_node_request_forget_feedback(node, r->id, NULL);
    return rc;
}

/* Tombstones: what is left of a proposal the node did not keep (a stranger's
 * that the policy declined, a blocked connector's, one it refused after
 * verifying it).  Enough to answer the proposal again and its close the same
 * way as the first time, and to count against the connector's budgets.  The
 * value: forget-at (u64be), connector (32), flags (TOMB_*). */
#define TOMB_VAL_LEN 41
#define TOMB_STRANGER 1 /* the connector was not a contact ('z' key, R58) */
#define TOMB_REFUSED 2  /* the proposal was refused (reason 9): say so again */
static void tomb_key(const uint8_t id[32], uint8_t key[33])
{
    key[0] = 'T';
    memcpy(key + 1, id, 32);
}

static void tomb_keys(const uint8_t id[32], const uint8_t val[TOMB_VAL_LEN], struct keyset *ks)
{
    ks->n = 0;
    ks_pk(ks, 'f', val + 8, id);
    ks_pk(ks, 'b', val + 8, id);
    if (val[40] & TOMB_STRANGER)
        ks_time(ks, 'z', get_u64be(val), id);
    ks_time(ks, 't', get_u64be(val), id);
}

/* TF_OK with the connector, TF_E_NOT_FOUND, or a store error. */
static int tomb_get(struct tf_node *node, const uint8_t id[32], uint8_t val[TOMB_VAL_LEN])
{
    uint8_t key[33];
    struct tf_proto_buf v = {0};
    tomb_key(id, key);
    int rc = tf_node_store_kv_get(node->store, TF_NODE_STORE_INTRO_SCHED, key, sizeof key, &v);
    if (rc == TF_OK && v.len != TOMB_VAL_LEN)
        rc = TF_E_CORRUPT;
    if (rc == TF_OK)
        memcpy(val, v.data, TOMB_VAL_LEN);
    tf_proto_buf_free(&v);
    return rc;
}

static int tomb_put(struct tf_node *node, const uint8_t id[32], const uint8_t connector[32],
                    uint8_t flags)
{
    uint8_t key[33], val[TOMB_VAL_LEN];
    struct keyset keys, none = {.n = 0};
    put_u64be(add_sat(tf_node_now(node), node->config.retention_s), val);
    memcpy(val + 8, connector, 32);
    val[40] = flags;
    tomb_key(id, key);
    tomb_keys(id, val, &keys);
    int rc = tf_node_store_kv_put(node->store, TF_NODE_STORE_INTRO_SCHED, key, sizeof key, val,
                                  sizeof val);
    if (rc == TF_OK)
        rc = ks_apply(node, &none, &keys);
    return rc == TF_OK && (flags & TOMB_STRANGER) ? stranger_trim(node, id) : rc;
}

static int tomb_remove(struct tf_node *node, const uint8_t id[32], const uint8_t val[TOMB_VAL_LEN])
{
    uint8_t key[33];
    struct keyset keys, none = {.n = 0};
    tomb_key(id, key);
    tomb_keys(id, val, &keys);
    int rc = index_set(node, TF_NODE_STORE_INTRO_SCHED, key, sizeof key, false);
    if (rc == TF_OK)
        rc = ks_apply(node, &keys, &none);
    return rc == TF_OK ? card_gc(node, val + 8) : rc;
}

/* The first two 'z' keys (finished records strangers caused, oldest first). */
struct oldest_z {
    uint8_t id[2][32];
    uint64_t at[2];
    size_t n;
};

static int oldest_z_cb(const uint8_t *key, size_t klen, const uint8_t *val, size_t vlen, void *arg)
{
    (void)val;
    (void)vlen;
    struct oldest_z *o = arg;
    if (klen < 1 || key[0] != 'z')
        return 1;
    if (klen != 41)
        return 0;
    o->at[o->n] = get_u64be(key + 1);
    memcpy(o->id[o->n], key + 9, 32);
    return ++o->n == 2 ? 1 : 0;
}

/*
 * R58: the finished records strangers caused (declined, closed or expired
 * inbox items, and tombstones) are kept at most max_stranger_intros (at least
 * one: the record just finished, `except`, is never the one collected), the
 * oldest collected early.  Unlike open ones they never make the node refuse
 * a proposal: identities cost nothing, and records that are over would
 * otherwise lock every stranger out for retention_s.
 */
static int stranger_trim(struct tf_node *node, const uint8_t except[32])
{
    const uint64_t max = node->config.max_stranger_intros;
    for (int round = 0; round < 8; round++) {
        uint64_t n = 0;
        uint8_t kind = 'z';
        struct oldest_z o = {.n = 0};
        int rc = prefix_count(node, 'z', NULL, max + 1, &n);
        if (rc != TF_OK || n <= max)
            return rc;
        rc = tf_node_store_kv_foreach_from(node->store, TF_NODE_STORE_INTRO_SCHED, &kind, 1,
                                           oldest_z_cb, &o);
        if (rc != TF_OK && rc != 1)
            return rc;
        size_t i = o.n > 0 && memcmp(o.id[0], except, 32) == 0 ? 1 : 0;
        if (i >= o.n)
            return TF_OK;
        uint8_t val[TOMB_VAL_LEN];
        struct intro_in r;
        if ((rc = tomb_get(node, o.id[i], val)) == TF_OK) {
            rc = tomb_remove(node, o.id[i], val);
        } else if (rc == TF_E_NOT_FOUND && (rc = in_load(node, o.id[i], &r)) == TF_OK) {
            rc = in_remove(node, &r);
            in_free(&r);
        }
        /* The key itself, in case it was stale (named no record, or not the
         * record's own). */
        struct keyset ks = {.n = 0};
        ks_time(&ks, 'z', o.at[i], o.id[i]);
        if (rc == TF_OK || rc == TF_E_NOT_FOUND)
            rc = index_set(node, TF_NODE_STORE_INTRO_SCHED, ks.key[0], ks.len[0], false);
        if (rc != TF_OK)
            return rc;
        char hex[17];
        sodium_bin2hex(hex, sizeof hex, o.id[i], 8);
        tf_node_log(TF_NODE_LOG_INFO, "intro",
                    "finished record %s of a stranger collected early: %llu such records are "
                    "kept at most (max_stranger_intros)",
                    hex, (unsigned long long)max);
    }
    return TF_OK;
}

/* Events: {time, type, id} plus the string fields given. */
struct event_field {
    const char *key, *val;
};

static int intro_event(struct tf_node *node, const char *type, const uint8_t id[32],
                       const struct event_field *fields, size_t n_fields)
{
    char hex[65];
    sodium_bin2hex(hex, sizeof hex, id, 32);
    struct tf_proto_mp_writer w;
    struct tf_proto_buf rec;
    tf_proto_mp_writer_init(&w);
    tf_proto_mp_write_map(&w, (uint32_t)(3 + n_fields));
    tf_proto_mp_write_cstr(&w, "time");
    tf_proto_mp_write_uint(&w, tf_node_now(node));
    tf_proto_mp_write_cstr(&w, "type");
    tf_proto_mp_write_cstr(&w, type);
    tf_proto_mp_write_cstr(&w, "id");
    tf_proto_mp_write_cstr(&w, hex);
    for (size_t i = 0; i < n_fields; i++) {
        tf_proto_mp_write_cstr(&w, fields[i].key);
        tf_proto_mp_write_cstr(&w, fields[i].val);
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
    /* requests: the proposal to an asker names the request it answers. */
    int rc = tf_node_request_fill_proposal(node, o->id, x, &p);
    if (rc == TF_OK)
        rc = tf_proto_proposal_sign(&node->id, &p, &signed_p);
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

/* The connector's executor: every change to an intro_out goes through
 * conn_run, which carries out what the pure machine (proto/intro_machine.h)
 * decides.  The callers (the reply handler, the withdraw and propose verbs,
 * the sweep) only reduce their input to the machine's predicates. */

static_assert(OUT_ASKING == (int)TF_PROTO_IM_CONN_ASKING &&
                  OUT_INTRODUCED == (int)TF_PROTO_IM_CONN_INTRODUCED &&
                  OUT_DECLINED == (int)TF_PROTO_IM_CONN_DECLINED &&
                  OUT_WITHDRAWN == (int)TF_PROTO_IM_CONN_WITHDRAWN &&
                  OUT_EXPIRED == (int)TF_PROTO_IM_CONN_EXPIRED,
              "the record's states are the machine's");
static_assert(SIDE_NOT_ASKED == (int)TF_PROTO_IM_SIDE_NOT_ASKED &&
                  SIDE_PENDING == (int)TF_PROTO_IM_SIDE_PENDING &&
                  SIDE_ACCEPTED == (int)TF_PROTO_IM_SIDE_ACCEPTED &&
                  SIDE_DECLINED == (int)TF_PROTO_IM_SIDE_DECLINED,
              "the record's side states are the machine's");

/* The protocol part of o, as the machine sees it (close_at 0: none). */
static struct tf_proto_im_conn conn_of(const struct intro_out *o)
{
    struct tf_proto_im_conn c;
    memset(&c, 0, sizeof c);
    c.state = (enum tf_proto_im_conn_state)o->state;
    for (int x = 0; x < 2; x++) {
        c.side[x] = (enum tf_proto_im_side_state)o->side[x];
        c.close_at[x] = o->close_at[x] == 0 ? TF_PROTO_IM_NEVER : o->close_at[x];
    }
    c.expires = o->expires;
    return c;
}

/* The one place that changes an intro_out's protocol state: copies next in
 * and logs each change of state. */
static void out_enter_state(struct intro_out *o, bool created, const struct tf_proto_im_conn *next,
                            uint64_t now)
{
    bool changed = created || o->state != (uint64_t)next->state;
    for (int x = 0; x < 2; x++)
        changed |= o->side[x] != (uint64_t)next->side[x];
    if (changed) {
        char hex[65];
        sodium_bin2hex(hex, sizeof hex, o->id, 32);
        tf_node_log(TF_NODE_LOG_INFO, "intro", "intro %.16s: %s (a %s, b %s) -> %s (a %s, b %s)",
                    hex, created ? "new" : out_state_name(o->state), side_state_name(o->side[0]),
                    side_state_name(o->side[1]), tf_proto_im_conn_state_name(next->state),
                    tf_proto_im_side_state_name(next->side[0]),
                    tf_proto_im_side_state_name(next->side[1]));
        o->updated = now; /* not for a close that only left on time */
    }
    o->state = (uint64_t)next->state;
    for (int x = 0; x < 2; x++) {
        o->side[x] = (uint64_t)next->side[x];
        o->close_at[x] = next->close_at[x] == TF_PROTO_IM_NEVER ? 0 : next->close_at[x];
    }
}

/* What the connector's actions need beyond the record: a reply's bytes
 * (STORE_REPLY) and its decline reason. */
struct conn_ctx {
    const uint8_t *reply;
    size_t reply_len;
    struct tf_proto_bytes reason;
};

/* What either machine's EMIT writes to the event log: the event's type and
 * its one extra pair, if any.  side ("a"/"b"), decided_by and other (a key)
 * are the values the events that carry them need. */
struct emit_args {
    const char *side, *decided_by;
    const uint8_t *other;
    const char *decision; /* intro.replied: "accept" or "decline" */
};

static int emit_event(struct tf_node *node, const uint8_t id[32], enum tf_proto_im_emit e,
                      const struct emit_args *x)
{
    char tid[TF_PROTO_TEXT_ID_SIZE];
    const char *type = tf_proto_im_emit_name(e);
    struct event_field f[2];
    size_t n = 0;
    switch (e) {
    case TF_PROTO_IM_EMIT_INTRO_REPLIED:
        f[n++] = (struct event_field){"side", x->side};
        f[n++] = (struct event_field){"decision", x->decision};
        break;
    case TF_PROTO_IM_EMIT_INTRO_DECLINED:
        f[n++] = (struct event_field){"side", x->side};
        break;
    case TF_PROTO_IM_EMIT_INBOX_ACCEPTED:
    case TF_PROTO_IM_EMIT_INBOX_DECLINED:
        f[n++] = (struct event_field){"decided_by", x->decided_by ? x->decided_by : "owner"};
        break;
    case TF_PROTO_IM_EMIT_INBOX_INTRODUCED:
        if (x->other == NULL)
            return TF_E_INVALID_ARG;
        tf_proto_text_id_encode(x->other, tid);
        f[n++] = (struct event_field){"other", tid};
        break;
    case TF_PROTO_IM_EMIT_INTRO_PROPOSED:
    case TF_PROTO_IM_EMIT_INTRO_INTRODUCED:
    case TF_PROTO_IM_EMIT_INTRO_WITHDRAWN:
    case TF_PROTO_IM_EMIT_INTRO_EXPIRED:
    case TF_PROTO_IM_EMIT_INBOX_RECEIVED:
    case TF_PROTO_IM_EMIT_INBOX_LATE_REVOCATION:
    case TF_PROTO_IM_EMIT_INBOX_CLOSED:
    case TF_PROTO_IM_EMIT_INBOX_EXPIRED:
        break;
    }
    for (size_t i = 0; i < n; i++)
        if (f[i].val == NULL)
            return TF_E_INVALID_ARG;
    return intro_event(node, type, id, f, n);
}

/* The introduction of o (both acceptances stored), signed at now. */
static int sign_introduction(struct tf_node *node, const struct intro_out *o, uint64_t now,
                             struct tf_proto_buf *out)
{
    struct tf_proto_introduction in;
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
    in.time = now;
    return tf_proto_introduction_sign(&node->id, &in, out);
}

static int conn_send(struct tf_node *node, const struct intro_out *o,
                     const struct tf_proto_im_action *a, uint64_t now,
                     struct tf_proto_buf *introduction)
{
    switch (a->msg) {
    case TF_PROTO_IM_MSG_PROPOSAL:
        return send_proposal(node, o, a->side);
    case TF_PROTO_IM_MSG_CLOSE:
        return send_close(node, o, a->side);
    case TF_PROTO_IM_MSG_INTRODUCTION: {
        /* One introduction, signed once, for both sides. */
        int rc = introduction->len == 0 ? sign_introduction(node, o, now, introduction) : TF_OK;
        return rc == TF_OK ? send_to(node, o->pk[a->side], TF_PROTO_MSG_TYPE_INTRODUCTION,
                                     introduction, o->expires)
                           : rc;
    }
    case TF_PROTO_IM_MSG_DECLINE:
        break;
    }
    return TF_E_INVALID_ARG; /* a party's message from the connector's machine */
}

/* Carries out out's actions on o, in order, under a savepoint: on an error
 * nothing of them stays (and o may be half changed: the caller drops it).
 * next is the machine's new state, in->side the side of a reply. */
static int conn_exec(struct tf_node *node, struct intro_out *o, bool created,
                     const struct tf_proto_im_conn *next, const struct tf_proto_im_out *out,
                     int side, uint64_t now, const struct conn_ctx *ctx)
{
    struct tf_node_savepoint sp = tf_node_savepoint(node);
    struct tf_proto_buf introduction = {0};
    int rc = TF_OK;
    for (size_t k = 0; k < out->n && rc == TF_OK; k++) {
        const struct tf_proto_im_action *a = &out->a[k];
        switch (a->kind) {
        case TF_PROTO_IM_ACT_STORE_REPLY:
            rc = ctx != NULL ? set_buf(&o->reply[a->side], ctx->reply, ctx->reply_len)
                             : TF_E_INVALID_ARG;
            break;
        case TF_PROTO_IM_ACT_SEND:
            rc = conn_send(node, o, a, now, &introduction);
            break;
        case TF_PROTO_IM_ACT_SCHEDULE_CLOSE:
        case TF_PROTO_IM_ACT_DROP_CLOSE:
            break; /* next's close_at (set or cleared), kept by STORE; the sweep sends it */
        case TF_PROTO_IM_ACT_EMIT: {
            /* intro.replied carries the reply's decision: a decline is one
             * only once the intro is over (R31); while it asks, a decline
             * ends it (intro.declined).  Either counts as what it says in
             * the per-contact statistics (requests). */
            bool declined = side >= 0 && next->side[side] == TF_PROTO_IM_SIDE_DECLINED;
            rc = emit_event(node, o->id, a->emit,
                            &(struct emit_args){.side = side == 1 ? "b" : "a",
                                                .decision = declined ? "decline" : "accept"});
            enum tf_proto_im_emit counted = a->emit == TF_PROTO_IM_EMIT_INTRO_REPLIED && declined
                                                ? TF_PROTO_IM_EMIT_INTRO_DECLINED
                                                : a->emit;
            if (rc == TF_OK)
                rc = tf_node_request_count_intro(node, counted, o->pk, side);
            break;
        }
        case TF_PROTO_IM_ACT_STORE:
            /* A decline's reason is kept with the side that declined. */
            if (ctx != NULL && side >= 0 && next->side[side] == TF_PROTO_IM_SIDE_DECLINED &&
                o->side[side] != SIDE_DECLINED)
                rc = set_buf(&o->reason[side], ctx->reason.ptr, ctx->reason.len);
            if (rc == TF_OK) {
                out_enter_state(o, created, next, now);
                rc = out_save(node, o, false);
            }
            break;
        case TF_PROTO_IM_ACT_SIGN_ACCEPT:
        case TF_PROTO_IM_ACT_RESEND_ACCEPT:
        case TF_PROTO_IM_ACT_ADD_CONTACT:
        case TF_PROTO_IM_ACT_REMEMBER_REFUSED:
            rc = TF_E_INVALID_ARG; /* a party's action from the connector's machine */
            break;
        }
    }
    tf_proto_buf_free(&introduction);
    if (rc != TF_OK)
        tf_node_rollback(node, sp);
    return rc;
}

/* The random delays of the closes a step may schedule, one per side, each
 * drawn uniformly from [close_delay_min_s, close_delay_max_s] on its own: a
 * close caused by a decline and one caused by a withdrawal leave alike, so
 * their timing does not tell a party which happened (R31). */
static void close_delays(const struct tf_node *node, uint64_t delay[2])
{
    uint64_t lo = node->config.close_delay_min_s;
    uint64_t span = node->config.close_delay_max_s - lo; /* config: min <= max <= 30 days */
    /* One system call for both: 64 random bits each, reduced modulo at
     * most 30 days of seconds (under 2^22), are uniform to within 2^-42. */
    uint64_t r[2];
    randombytes_buf(r, sizeof r);
    for (int x = 0; x < 2; x++)
        delay[x] = lo + r[x] % (span + 1);
}

/* Steps o's machine with in and carries out the result (*out). */
static int conn_run(struct tf_node *node, struct intro_out *o,
                    const struct tf_proto_im_conn_input *in, const struct conn_ctx *ctx,
                    struct tf_proto_im_out *out)
{
    struct tf_proto_im_conn s = conn_of(o), next;
    tf_proto_im_conn_step(&s, in, &next, out);
    int side = in->event == TF_PROTO_IM_CONN_REPLY ? in->side : -1;
    return conn_exec(node, o, false, &next, out, side, in->now, ctx);
}

/* The sweep's tick of one intro (its expiry, or a delayed close due). */
static int conn_tick(struct tf_node *node, struct intro_out *o, uint64_t now)
{
    struct tf_proto_im_conn_input in;
    struct tf_proto_im_out out;
    memset(&in, 0, sizeof in);
    in.event = TF_PROTO_IM_CONN_TICK;
    in.now = now;
    return conn_run(node, o, &in, NULL, &out);
}

/* True if out sends a message now. */
static bool im_out_sends(const struct tf_proto_im_out *out)
{
    for (size_t k = 0; k < out->n; k++)
        if (out->a[k].kind == TF_PROTO_IM_ACT_SEND)
            return true;
    return false;
}

static int on_reply(struct tf_node *node, const uint8_t from[32], const uint8_t *body, size_t len)
{
    struct tf_proto_statement st;
    struct tf_proto_reply r;
    struct intro_out o;
    char hex[65];
    int rc = tf_proto_reply_decode(body, len, &st, &r);
    if (rc != TF_OK) {
        tf_node_log(TF_NODE_LOG_WARN, "intro", "reply refused: %s (%s)", tf_err_name(rc),
                    tf_strerror(rc));
        return TF_PROTO_ACK_REASON_INVALID;
    }
    sodium_bin2hex(hex, sizeof hex, r.intro_id, 32);
    if ((rc = out_load(node, r.intro_id, &o)) != TF_OK) {
        if (rc == TF_E_NOT_FOUND)
            tf_node_log(TF_NODE_LOG_WARN, "intro", "reply for %.16s refused: no such intro", hex);
        return rc == TF_E_NOT_FOUND ? TF_PROTO_ACK_REASON_INVALID : -1;
    }
    int x = sodium_memcmp(o.pk[0], from, 32) == 0   ? 0
            : sodium_memcmp(o.pk[1], from, 32) == 0 ? 1
                                                    : -1;
    int result = TF_PROTO_ACK_REASON_INVALID;
    if (x < 0) {
        tf_node_log(TF_NODE_LOG_WARN, "intro", "reply for %.16s refused: its sender is no party",
                    hex);
        goto out;
    }
    /* The party's card as held with the intro (verified when stored). */
    struct tf_proto_buf held = {0};
    if ((rc = tf_node_intro_peer_card(node, from, &held)) != TF_OK && rc != TF_E_NOT_FOUND) {
        result = -1;
        goto out;
    }
    rc = tf_proto_reply_verify_known(from, o.id, (enum tf_proto_side)x, body, len,
                                     (struct tf_proto_known){held.data, held.len}, &r);
    tf_proto_buf_free(&held);
    if (rc != TF_OK) {
        tf_node_log(TF_NODE_LOG_WARN, "intro", "reply for %.16s refused: %s (%s)", hex,
                    tf_err_name(rc), tf_strerror(rc));
        goto out;
    }
    /* The reply, reduced to what the machine decides on. */
    struct tf_proto_im_conn_input in;
    struct tf_proto_im_out res;
    struct conn_ctx ctx = {body, len, r.reason};
    memset(&in, 0, sizeof in);
    in.event = TF_PROTO_IM_CONN_REPLY;
    in.now = tf_node_now(node);
    in.side = x;
    in.accept = r.decision == TF_PROTO_DECISION_ACCEPT;
    in.same_as_stored = o.reply[x].len == len && memcmp(o.reply[x].data, body, len) == 0;
    in.signed_late = r.time > o.expires && r.time - o.expires > TF_PROTO_SKEW_DEFAULT;
    close_delays(node, in.close_delay);
    if ((rc = conn_run(node, &o, &in, &ctx, &res)) != TF_OK) {
        result = -1;
        goto out;
    }
    switch (res.ack) {
    case TF_PROTO_IM_ACK_OK:
        result = TF_PROTO_ACK_REASON_NONE;
        /* A reply to an intro that ended meanwhile (declined, withdrawn,
         * expired) while the close to its sender waits for its delay is
         * taken by the machine as one to an open intro is (kept, and
         * committed), so that neither its ACK nor its timing tells the
         * party that the intro is over before the delayed close does (R31).
         *
         * waitcommit: a reply after which nothing is sent now (the other
         * side has not answered, a close waits for its delay, or the intro
         * is over) promises nothing to anyone but its sender's ACK: it may
         * wait to share the commit of the other reply, which usually follows
         * at once.  Not when the other side was never asked (sequential
         * mode, side a): no other reply can come, and an acceptance there
         * sends b's proposal at once, so a's replies never wait. */
        node->receive_may_wait = !im_out_sends(&res) && o.side[1 - x] != SIDE_NOT_ASKED;
        break;
    case TF_PROTO_IM_ACK_LATE:
        result = TF_PROTO_ACK_REASON_EXPIRED;
        break;
    case TF_PROTO_IM_ACK_REFUSE:
        result = TF_PROTO_ACK_REASON_INVALID;
        break;
    case TF_PROTO_IM_ACK_RETRY:
    case TF_PROTO_IM_ACK_NONE:
        result = -1;
        break;
    }
    if (result != TF_PROTO_ACK_REASON_NONE)
        tf_node_log(TF_NODE_LOG_WARN, "intro", "reply for %.16s from side %c refused: %s", hex,
                    x ? 'b' : 'a', res.why ? res.why : tf_proto_im_ack_name(res.ack));
out:
    out_free(&o);
    return result;
}

/* Party: proposals, introductions, closes. */

/* Signs this party's reply to the proposal p at now. */
static int sign_reply(struct tf_node *node, const struct tf_proto_proposal *p, bool accept,
                      const char *text, uint64_t now, struct tf_proto_buf *out)
{
    struct tf_proto_reply reply;
    memset(&reply, 0, sizeof reply);
    memcpy(reply.intro_id, p->intro_id, 32);
    reply.side = p->side;
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
    reply.time = now;
    return tf_proto_reply_sign(&node->id, &reply, out);
}

/* The party's executor: every change to an intro_in goes through party_run,
 * which carries out what the pure machine decides (as conn_run does for the
 * connector's). */

static_assert(IN_PENDING + 1 == (int)TF_PROTO_IM_PARTY_PENDING &&
                  IN_ACCEPTED + 1 == (int)TF_PROTO_IM_PARTY_ACCEPTED &&
                  IN_DECLINED + 1 == (int)TF_PROTO_IM_PARTY_DECLINED &&
                  IN_INTRODUCED + 1 == (int)TF_PROTO_IM_PARTY_INTRODUCED &&
                  IN_CLOSED + 1 == (int)TF_PROTO_IM_PARTY_CLOSED &&
                  IN_EXPIRED + 1 == (int)TF_PROTO_IM_PARTY_EXPIRED,
              "the record's states are the machine's, after UNKNOWN");

/* The protocol part of r (NULL: no record), as the machine sees it. */
static struct tf_proto_im_party party_of(const struct intro_in *r,
                                         const struct tf_proto_proposal *p)
{
    struct tf_proto_im_party s;
    memset(&s, 0, sizeof s);
    s.state = TF_PROTO_IM_PARTY_UNKNOWN;
    if (r != NULL) {
        s.state = (enum tf_proto_im_party_state)(r->state + 1);
        s.has_accept = r->my_accept.len > 0;
        s.expires = p->core.expires;
        s.grace = ENVELOPE_GRACE_S;
    }
    return s;
}

/* The one place that changes an intro_in's state: logs the change. */
static void in_enter_state(struct intro_in *r, const struct tf_proto_im_party *next, uint64_t now)
{
    assert(next->state != TF_PROTO_IM_PARTY_UNKNOWN);
    uint64_t to = (uint64_t)next->state - 1;
    bool created = r->received == 0;
    if (created || r->state != to) {
        char hex[65];
        sodium_bin2hex(hex, sizeof hex, r->id, 32);
        tf_node_log(TF_NODE_LOG_INFO, "intro", "inbox %.16s: %s -> %s", hex,
                    created ? "new" : in_state_name(r->state), in_state_name(to));
        r->updated = now;
    }
    if (created)
        r->received = now;
    r->state = to;
}

/* What the party's actions need beyond the record. */
struct party_ctx {
    const struct tf_proto_proposal *p;     /* r's proposal */
    const char *text;                      /* a reply's note (accept) or reason (decline) */
    const char *decided_by;                /* who answered: "owner" or "policy:N" */
    const struct tf_proto_materialised *m; /* ADD_CONTACT: the checked introduction */
    const uint8_t *body;                   /* ... and its bytes */
    size_t len;
    bool resent; /* out: the stored acceptance went again */
};

static int add_introduced(struct tf_node *node, const struct tf_proto_materialised *m);

/* Signs this party's reply (accept or decline, with ctx's text), sends it
 * to the connector, and keeps an acceptance as my_accept. */
static int party_reply(struct tf_node *node, struct intro_in *r, bool accept, uint64_t now,
                       const struct party_ctx *ctx)
{
    struct tf_proto_buf signed_r = {0};
    int rc = sign_reply(node, ctx->p, accept, ctx->text ? ctx->text : "", now, &signed_r);
    if (rc == TF_OK)
        rc = send_to(node, ctx->p->core.connector_pk, TF_PROTO_MSG_TYPE_REPLY, &signed_r,
                     ctx->p->core.expires);
    if (rc == TF_OK && accept)
        rc = set_buf(&r->my_accept, signed_r.data, signed_r.len);
    if (rc == TF_OK)
        rc = set_str(&r->decided_by, ctx->decided_by ? ctx->decided_by : "owner");
    tf_proto_buf_free(&signed_r);
    return rc;
}

static int party_action(struct tf_node *node, struct intro_in *r,
                        const struct tf_proto_im_party *next, const struct tf_proto_im_action *a,
                        uint64_t now, struct party_ctx *ctx)
{
    int rc;
    switch (a->kind) {
    case TF_PROTO_IM_ACT_SIGN_ACCEPT:
        return party_reply(node, r, true, now, ctx);
    case TF_PROTO_IM_ACT_SEND:
        return a->msg == TF_PROTO_IM_MSG_DECLINE ? party_reply(node, r, false, now, ctx)
                                                 : TF_E_INVALID_ARG;
    case TF_PROTO_IM_ACT_RESEND_ACCEPT:
        /* The same signed acceptance again: the connector may have lost
         * it, and a second, different one could disagree with the first. */
        ctx->resent = true;
        return send_to(node, ctx->p->core.connector_pk, TF_PROTO_MSG_TYPE_REPLY, &r->my_accept,
                       ctx->p->core.expires);
    case TF_PROTO_IM_ACT_ADD_CONTACT:
        if (ctx->m == NULL)
            return TF_E_INVALID_ARG;
        r->late_revocation = r->state == IN_DECLINED;
        r->has_other = true;
        memcpy(r->other, ctx->m->other.sign_pk, 32);
        if ((rc = set_buf(&r->other_note, ctx->m->other_note.ptr, ctx->m->other_note.len)) ==
                TF_OK &&
            (rc = set_buf(&r->introduction, ctx->body, ctx->len)) == TF_OK)
            rc = add_introduced(node, ctx->m);
        return rc;
    case TF_PROTO_IM_ACT_EMIT:
        return emit_event(node, r->id, a->emit,
                          &(struct emit_args){.decided_by = ctx->decided_by,
                                              .other = r->has_other ? r->other : NULL});
    case TF_PROTO_IM_ACT_STORE:
        in_enter_state(r, next, now);
        return in_save(node, r, false);
    case TF_PROTO_IM_ACT_STORE_REPLY:
    case TF_PROTO_IM_ACT_SCHEDULE_CLOSE:
    case TF_PROTO_IM_ACT_DROP_CLOSE:
    case TF_PROTO_IM_ACT_REMEMBER_REFUSED: /* refused proposals never reach the machine */
        break;
    }
    return TF_E_INVALID_ARG;
}

/* Steps r's machine (s: its state, UNKNOWN for a new record) with in and
 * carries out the actions in order under a savepoint: on an error nothing
 * of them stays (r may be half changed: the caller drops it). */
static int party_run(struct tf_node *node, struct intro_in *r, const struct tf_proto_im_party *s,
                     const struct tf_proto_im_party_input *in, struct party_ctx *ctx,
                     struct tf_proto_im_out *out)
{
    struct tf_proto_im_party next;
    tf_proto_im_party_step(s, in, &next, out);
    struct tf_node_savepoint sp = tf_node_savepoint(node);
    int rc = TF_OK;
    for (size_t k = 0; k < out->n && rc == TF_OK; k++)
        rc = party_action(node, r, &next, &out->a[k], in->now, ctx);
    if (rc != TF_OK)
        tf_node_rollback(node, sp);
    return rc;
}

/* A party machine's input: event at now, the rest zero. */
static struct tf_proto_im_party_input party_input(enum tf_proto_im_party_event e, uint64_t now)
{
    struct tf_proto_im_party_input in;
    memset(&in, 0, sizeof in);
    in.event = e;
    in.now = now;
    return in;
}

/* An envelope's answer from the party machine's ACK. */
static int party_ack(const struct tf_proto_im_out *out)
{
    switch (out->ack) {
    case TF_PROTO_IM_ACK_OK:
        return TF_PROTO_ACK_REASON_NONE;
    case TF_PROTO_IM_ACK_REFUSE:
        return TF_PROTO_ACK_REASON_INVALID;
    case TF_PROTO_IM_ACK_LATE:
        return TF_PROTO_ACK_REASON_EXPIRED;
    case TF_PROTO_IM_ACK_RETRY:
    case TF_PROTO_IM_ACK_NONE:
        break;
    }
    return -1;
}

/* The owner's or the policy's answer to r (its proposal p): TF_OK (and
 * ctx->resent if the stored acceptance went again), a verb refusal
 * (TF_E_BAD_STATE, why says why), or a store or signing error. */
static int answer(struct tf_node *node, struct intro_in *r, const struct tf_proto_proposal *p,
                  bool accept, struct party_ctx *ctx, char *why, size_t why_cap)
{
    struct tf_proto_im_party s = party_of(r, p);
    struct tf_proto_im_party_input in = party_input(
        accept ? TF_PROTO_IM_PARTY_ACCEPT : TF_PROTO_IM_PARTY_DECLINE, tf_node_now(node));
    struct tf_proto_im_out out;
    int rc = party_run(node, r, &s, &in, ctx, &out);
    if (rc == TF_OK && out.verb_rc != TF_OK) {
        const char *verb = accept ? "accepted" : "declined";
        if (r->state == IN_INTRODUCED || r->state == IN_CLOSED || r->state == IN_EXPIRED)
            WHY("this intro is %s; it can no longer be %s", in_state_name(r->state), verb);
        else
            WHY("%s", out.why ? out.why : "refused");
        rc = out.verb_rc;
    } else if (rc != TF_OK) {
        WHY("cannot answer: %s", tf_strerror(rc));
    }
    return rc;
}

/* A stranger's proposal that the policy declines leaves only a tombstone:
 * the decline is sent over the link the proposal came on (the stranger's
 * card is not kept, so it is never dialled), and given up after a day. */
static int decline_to_stranger(struct tf_node *node, const struct tf_proto_proposal *p,
                               const char *reason)
{
    struct tf_proto_buf signed_r = {0};
    struct tf_node_contact c;
    uint8_t msg_id[16];
    uint64_t now = tf_node_now(node);
    uint64_t expires = add_sat(p->core.expires, ENVELOPE_GRACE_S);
    if (expires > now + TF_NODE_DELIVERY_STRANGER_TTL_S)
        expires = now + TF_NODE_DELIVERY_STRANGER_TTL_S;
    int rc = tf_node_contact_from_verified_card(&c, p->connector_card.ptr, p->connector_card.len);
    if (rc != TF_OK)
        return rc;
    if ((rc = sign_reply(node, p, false, reason, now, &signed_r)) == TF_OK)
        rc = tf_node_delivery_enqueue(node->delivery, &c, TF_PROTO_MSG_TYPE_REPLY, signed_r.data,
                                      signed_r.len, expires, msg_id);
    tf_proto_buf_free(&signed_r);
    tf_node_contact_deinit(&c);
    return rc;
}

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
 * from is its connector); returns reason.
 *
 * A proposal that verified (signed by from, for this node: refused because
 * it had expired, came from the future or would stay open too long) is also
 * kept as a tombstone, so that its close is acknowledged after a restart
 * too.  The receive path rolls back whatever a refused envelope wrote
 * (node/delivery.c), so the tombstone cannot be written here: the slot is
 * marked unsaved, and the receive path calls tf_node_intro_save_refusals
 * after its rollback, in the same batch as the refusal's ACK.  Refusals of
 * unverified proposals, and any the tombstone budgets leave no room for,
 * stay in the ring only (lost on restart). */
static int refuse_proposal(struct tf_node *node, const uint8_t from[32], const uint8_t *body,
                           size_t len, int reason, bool verified, bool stranger)
{
    struct tf_proto_proposal p;
    const size_t n = sizeof node->refused_intros / sizeof node->refused_intros[0];
    if (tf_proto_proposal_decode(body, len, &p) == TF_OK &&
        sodium_memcmp(p.core.connector_pk, from, 32) == 0) {
        struct tf_node_refused_intro *slot = &node->refused_intros[node->next_refused_intro++ % n];
        memcpy(slot->id, p.intro_id, 32);
        memcpy(slot->connector, from, 32);
        slot->stranger = stranger;
        slot->unsaved = verified;
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
    uint8_t tomb[TOMB_VAL_LEN];
    char tid[TF_PROTO_TEXT_ID_SIZE];
    /* The sender's card as held (verified when stored), so that the same
     * card inside the proposal is not verified again. */
    struct tf_node_contact c;
    struct tf_proto_buf held = {0};
    memset(&c, 0, sizeof c);
    int rc = tf_node_store_contact_get(node->store, from, &c);
    bool blocked = rc == TF_OK && c.blocked, stranger = rc == TF_E_NOT_FOUND;
    if (rc == TF_E_NOT_FOUND)
        rc = tf_node_intro_peer_card(node, from, &held);
    if (rc != TF_OK && rc != TF_E_NOT_FOUND) {
        tf_node_contact_deinit(&c);
        return -1;
    }
    struct tf_proto_known known = {c.card.len ? c.card.data : held.data,
                                   c.card.len ? c.card.len : held.len};
    uint64_t now = tf_node_now(node);
    rc = tf_proto_proposal_verify_known(node->id.sign_pk, body, len, now, TF_PROTO_SKEW_DEFAULT,
                                        known, &p);
    tf_node_contact_deinit(&c);
    tf_proto_buf_free(&held);
    if (rc != TF_OK) {
        tf_proto_text_id_encode(from, tid);
        tf_node_log(TF_NODE_LOG_WARN, "intro", "proposal from %s refused: %s (%s)", tid,
                    tf_err_name(rc), tf_strerror(rc));
        /* These two are checked last: the proposal is the connector's own,
         * for this node. */
        bool verified = rc == TF_E_EXPIRED || rc == TF_E_FROM_FUTURE;
        return refuse_proposal(node, from, body, len, TF_PROTO_ACK_REASON_INVALID, verified,
                               stranger);
    }
    if (sodium_memcmp(p.core.connector_pk, from, 32) != 0)
        return TF_PROTO_ACK_REASON_NOT_PEER;
    struct tf_proto_im_party_input in = party_input(TF_PROTO_IM_PARTY_PROPOSAL, now);
    struct tf_proto_im_out res;
    struct party_ctx ctx = {.p = &p};
    in.expires = p.core.expires;
    in.grace = ENVELOPE_GRACE_S;
    rc = in_load(node, p.intro_id, &r);
    if (rc == TF_OK) { /* already known: the machine says what a duplicate does */
        struct tf_proto_im_party s = party_of(&r, &p);
        rc = party_run(node, &r, &s, &in, &ctx, &res);
        in_free(&r);
        return rc == TF_OK ? party_ack(&res) : -1;
    }
    if (rc == TF_E_NOT_FOUND)
        rc = tomb_get(node, p.intro_id, tomb);
    if (rc == TF_OK) /* already answered, and forgotten but for this: the same answer */
        return tomb[40] & TOMB_REFUSED ? TF_PROTO_ACK_REASON_INVALID : TF_PROTO_ACK_REASON_NONE;
    if (rc != TF_E_NOT_FOUND)
        return -1;
    if (!tf_proto_intro_expiry_is_valid(&p.core, now, TF_PROTO_SKEW_DEFAULT)) {
        tf_proto_text_id_encode(from, tid);
        tf_node_log(TF_NODE_LOG_WARN, "intro",
                    "proposal from %s refused: its expiry is not after its creation, or it "
                    "would stay open longer than %u days",
                    tid, EXPIRES_MAX_S / 86400u);
        return refuse_proposal(node, from, body, len, TF_PROTO_ACK_REASON_INVALID, true, stranger);
    }
    /* Budgets (docs/CONTROL.md "Settings"): one connector may not fill the
     * inbox, open proposals or any others (each record it caused counts,
     * tombstones too, but introduced items: see in_keys), and strangers
     * together have a budget of their own. */
    struct pending_scan ps = {from, 0, node->config.max_pending_per_connector};
    rc = tf_node_store_kv_foreach_from(node->store, TF_NODE_STORE_INTRO_PENDING, from, 32,
                                       pending_cb, &ps);
    uint64_t mine = 0, strangers = 0;
    if ((rc == TF_OK || rc == 1) &&
        (rc = prefix_count(node, 'b', from, node->config.max_intros_per_connector, &mine)) ==
            TF_OK &&
        stranger)
        rc = prefix_count(node, 's', NULL, node->config.max_stranger_intros, &strangers);
    if (rc != TF_OK && rc != 1)
        return -1;
    const char *full = NULL;
    uint64_t count = 0;
    if (ps.n >= node->config.max_pending_per_connector)
        full = "max_pending_per_connector", count = ps.n;
    else if (mine >= node->config.max_intros_per_connector)
        full = "max_intros_per_connector", count = mine;
    else if (stranger && strangers >= node->config.max_stranger_intros)
        full = "max_stranger_intros", count = strangers;
    if (full != NULL) {
        tf_proto_text_id_encode(from, tid);
        tf_node_log(TF_NODE_LOG_WARN, "intro", "proposal from %s refused: %s reached (%llu)", tid,
                    full, (unsigned long long)count);
        return refuse_proposal(node, from, body, len, TF_PROTO_ACK_REASON_REFUSED, false, stranger);
    }
    if (blocked) {
        /* Kept as a tombstone only; the ACK (ok) is the one any proposal
         * gets, and so are the answers to its duplicates and closes. */
        tf_proto_text_id_encode(from, tid);
        tf_node_log(TF_NODE_LOG_INFO, "intro", "proposal from blocked connector %s dropped", tid);
        return tomb_put(node, p.intro_id, from, 0) == TF_OK ? TF_PROTO_ACK_REASON_NONE : -1;
    }
    /* requests: a proposal that answers this node's own open request. */
    bool answers_request = false;
    if (tf_node_request_on_proposal(node, &p, &answers_request) != TF_OK)
        return -1;
    /* The owner's policy may answer at once (docs/POLICY.md). */
    struct tf_proto_policy_decision d;
    struct tf_node_policy_facts facts = {.answers_request = answers_request}; /* requests */
    if (tf_node_policy_decide_ex(node, from, p.core.topic, p.core.mode, &facts, true, &d) != TF_OK)
        return -1;
    char by[32], reason[64] = "";
    snprintf(by, sizeof by, "policy:%zu", d.line);
    if (node->config.policy_decline_reason)
        snprintf(reason, sizeof reason, "declined by policy rule %zu", d.line);
    char hex[65];
    sodium_bin2hex(hex, sizeof hex, p.intro_id, 32);
    if (stranger && d.action == TF_PROTO_POLICY_ACTION_DECLINE) {
        if ((rc = tomb_put(node, p.intro_id, from, TOMB_STRANGER)) == TF_OK)
            rc = decline_to_stranger(node, &p, reason);
        if (rc == TF_OK) {
            tf_proto_text_id_encode(from, tid);
            tf_node_log(TF_NODE_LOG_INFO, "intro",
                        "proposal %.16s from stranger %s declined by %s; not kept", hex, tid, by);
        }
        return rc == TF_OK ? TF_PROTO_ACK_REASON_NONE : -1;
    }
    memset(&r, 0, sizeof r);
    memcpy(r.id, p.intro_id, 32);
    r.stranger = stranger; /* received: set when it enters its first state */
    in.policy = d.action == TF_PROTO_POLICY_ACTION_ACCEPT    ? TF_PROTO_IM_POLICY_ACCEPT
                : d.action == TF_PROTO_POLICY_ACTION_DECLINE ? TF_PROTO_IM_POLICY_DECLINE
                                                             : TF_PROTO_IM_POLICY_ASK;
    ctx.text = in.policy == TF_PROTO_IM_POLICY_DECLINE ? reason : "";
    ctx.decided_by = by;
    struct tf_proto_im_party unknown = party_of(NULL, &p);
    if ((rc = set_buf(&r.proposal, body, len)) == TF_OK &&
        (rc = remember_card(node, &p.connector_card, &p.card)) == TF_OK)
        rc = party_run(node, &r, &unknown, &in, &ctx, &res);
    if (rc == TF_OK && in.policy != TF_PROTO_IM_POLICY_ASK)
        tf_node_log(TF_NODE_LOG_INFO, "intro", "proposal %.16s %s by %s", hex,
                    in.policy == TF_PROTO_IM_POLICY_ACCEPT ? "accepted" : "declined", by);
    in_free(&r);
    return rc == TF_OK ? party_ack(&res) : -1;
}

/* Adds the other party as a contact (or notes the provenance, or a newer
 * card, on an existing one; an existing contact with an introducer and no
 * newer card is left as it is). */
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
        bool newer = tf_proto_card_supersedes(&c.fields, &old.fields) == TF_OK;
        if (!newer && old.has_introducer)
            goto out; /* nothing to note: rewriting it would only move `updated` */
        if ((rc = tf_node_contact_copy(&keep, &old)) != TF_OK)
            goto out;
        if (newer) {
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
    struct tf_proto_introduction intro;
    struct tf_proto_materialised m;
    struct intro_in r;
    struct tf_proto_proposal p;
    char hex[65];
    int rc = tf_proto_introduction_decode(body, len, &st, &intro);
    if (rc != TF_OK) {
        tf_node_log(TF_NODE_LOG_WARN, "intro", "introduction refused: %s (%s)", tf_err_name(rc),
                    tf_strerror(rc));
        return TF_PROTO_ACK_REASON_INVALID;
    }
    sodium_bin2hex(hex, sizeof hex, intro.intro_id, 32);
    rc = in_load(node, intro.intro_id, &r);
    if (rc == TF_E_NOT_FOUND) {
        tf_node_log(TF_NODE_LOG_WARN, "intro",
                    "introduction %.16s refused: an intro never proposed to us", hex);
        return TF_PROTO_ACK_REASON_INVALID;
    }
    if (rc != TF_OK)
        return -1;
    int result = TF_PROTO_ACK_REASON_INVALID;
    if ((rc = tf_proto_proposal_decode(r.proposal.data, r.proposal.len, &p)) != TF_OK) {
        tf_node_log(TF_NODE_LOG_WARN, "intro", "introduction %.16s refused: our record: %s (%s)",
                    hex, tf_err_name(rc), tf_strerror(rc));
        goto out;
    }
    if (sodium_memcmp(p.core.connector_pk, from, 32) != 0) {
        tf_node_log(TF_NODE_LOG_WARN, "intro",
                    "introduction %.16s refused: its sender is not the intro's connector", hex);
        goto out;
    }
    /* The introduction, reduced to the materialisation check's verdict
     * (only where the machine may use it). */
    struct tf_proto_im_party s = party_of(&r, &p);
    struct tf_proto_im_party_input in =
        party_input(TF_PROTO_IM_PARTY_INTRODUCTION, tf_node_now(node));
    struct tf_proto_im_out res;
    struct party_ctx ctx = {&p, NULL, NULL, &m, body, len, false};
    int check = TF_OK;
    if (r.state != IN_INTRODUCED && r.my_accept.len > 0) {
        check = tf_proto_intro_materialise_check_own(node->id.sign_pk, r.my_accept.data,
                                                     r.my_accept.len, body, len,
                                                     TF_PROTO_SKEW_DEFAULT, &m);
        in.materialises = check == TF_OK;
    }
    if (party_run(node, &r, &s, &in, &ctx, &res) != TF_OK) {
        result = -1;
        goto out;
    }
    result = party_ack(&res);
    if (result != TF_PROTO_ACK_REASON_NONE && check != TF_OK) {
        /* The check that failed, by name. */
        tf_node_log(TF_NODE_LOG_WARN, "intro", "introduction %.16s refused, nothing added: %s (%s)",
                    hex, tf_err_name(check), tf_strerror(check));
    } else if (result != TF_PROTO_ACK_REASON_NONE) {
        tf_node_log(TF_NODE_LOG_WARN, "intro", "introduction %.16s refused, nothing added: %s", hex,
                    res.why ? res.why : tf_proto_im_ack_name(res.ack));
    } else if (r.state == IN_INTRODUCED && s.state != TF_PROTO_IM_PARTY_INTRODUCED) {
        char tid[TF_PROTO_TEXT_ID_SIZE];
        tf_proto_text_id_encode(r.other, tid);
        tf_node_log(TF_NODE_LOG_INFO, "intro", "introduction %.16s materialised: %s added%s", hex,
                    tid, r.late_revocation ? " (our revocation came too late)" : "");
    }
out:
    in_free(&r);
    return result;
}

static int on_close(struct tf_node *node, const uint8_t from[32], const uint8_t *body, size_t len)
{
    uint8_t id[32], tomb[TOMB_VAL_LEN];
    struct intro_in r;
    struct tf_proto_proposal p;
    char hex[65];
    int rc = tf_proto_close_verify(from, body, len, id);
    if (rc != TF_OK) {
        tf_node_log(TF_NODE_LOG_WARN, "intro", "close refused: %s (%s)", tf_err_name(rc),
                    tf_strerror(rc));
        return TF_PROTO_ACK_REASON_INVALID;
    }
    sodium_bin2hex(hex, sizeof hex, id, 32);
    struct tf_proto_im_party_input in = party_input(TF_PROTO_IM_PARTY_CLOSE, tf_node_now(node));
    struct tf_proto_im_out res;
    struct party_ctx ctx = {.p = NULL};
    rc = in_load(node, id, &r);
    if (rc == TF_E_NOT_FOUND) {
        /* Not heard of yet: envelopes may arrive out of order (a proposal
         * queued while we were down can follow the close sent after the
         * other side declined), so the machine leaves it unacknowledged
         * (the connector sends it again, and it applies once the proposal
         * is here), unless the proposal will not come: it is kept only as
         * a tombstone (a stranger's declined by the policy, a blocked
         * connector's, a refused one), or was refused lately.  Whether the
         * sender is blocked changes none of these answers. */
        if ((rc = tomb_get(node, id, tomb)) == TF_OK && sodium_memcmp(tomb + 8, from, 32) != 0) {
            tf_node_log(TF_NODE_LOG_WARN, "intro",
                        "close %.16s refused: its sender is not the intro's connector", hex);
            return TF_PROTO_ACK_REASON_INVALID;
        }
        if (rc != TF_OK && rc != TF_E_NOT_FOUND)
            return -1;
        in.refused = rc == TF_OK || was_refused(node, id, from);
        struct tf_proto_im_party unknown = party_of(NULL, NULL), next;
        tf_proto_im_party_step(&unknown, &in, &next, &res); /* no record: nothing to do */
        return party_ack(&res);
    }
    if (rc != TF_OK)
        return -1;
    int result = TF_PROTO_ACK_REASON_INVALID;
    if ((rc = tf_proto_proposal_decode(r.proposal.data, r.proposal.len, &p)) != TF_OK ||
        sodium_memcmp(p.core.connector_pk, from, 32) != 0) {
        tf_node_log(TF_NODE_LOG_WARN, "intro",
                    "close %.16s refused: its sender is not the intro's connector", hex);
        goto out;
    }
    struct tf_proto_im_party s = party_of(&r, &p);
    ctx.p = &p;
    result = party_run(node, &r, &s, &in, &ctx, &res) == TF_OK ? party_ack(&res) : -1;
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
    default: /* requests: requests, their closes and feedback */
        return tf_node_request_receive(node, type, from_pk, body, len);
    }
}

/* The sweep (every SWEEP_MS): expires the connector's open intros
 * (intro_expiry) and runs what intro_sched says is due, at most SWEEP_BATCH
 * of each kind per tick.  Each item is handled under its own savepoint, so a
 * failure leaves that item as it was (it is tried again next tick) and the
 * others' changes stand. */
#define SWEEP_BATCH 256

struct due {
    uint8_t kind; /* the intro_sched kind, or 0 for intro_expiry */
    uint64_t now;
    uint8_t ids[SWEEP_BATCH][32];
    uint64_t at[SWEEP_BATCH];
    size_t n;
};

static int due_cb(const uint8_t *key, size_t klen, const uint8_t *val, size_t vlen, void *arg)
{
    (void)val;
    (void)vlen;
    struct due *d = arg;
    size_t off = d->kind != 0 ? 1 : 0;
    if (d->kind != 0 && (klen < 1 || key[0] != d->kind))
        return 1; /* past this kind */
    if (klen != off + 40)
        return 0;
    uint64_t at = get_u64be(key + off);
    /* Expiries happen once the time is past; the rest are due at it. */
    bool expiry = d->kind == 0 || d->kind == 'x' || d->kind == 'a';
    if (expiry ? at >= d->now : at > d->now)
        return 1;
    memcpy(d->ids[d->n], key + off + 8, 32);
    d->at[d->n] = at;
    return ++d->n >= SWEEP_BATCH ? 1 : 0;
}

/* True if ks (a record's keys) has kind || at || id: the key the sweep met
 * is the record's own, not a stale one. */
static bool owns_key(const struct keyset *ks, uint8_t kind, uint64_t at, const uint8_t id[32])
{
    struct keyset mine = {.n = 0};
    ks_time(&mine, kind, at, id);
    return ks_has(ks, mine.key[0], mine.len[0]);
}

static int drop_key(struct tf_node *node, uint8_t kind, uint64_t at, const uint8_t id[32])
{
    struct keyset ks = {.n = 0};
    ks_time(&ks, kind, at, id);
    return index_set(node, TF_NODE_STORE_INTRO_SCHED, ks.key[0], ks.len[0], false);
}

static int expire_out(struct tf_node *node, const uint8_t id[32], uint64_t now)
{
    struct intro_out o;
    int rc = out_load(node, id, &o);
    if (rc != TF_OK)
        return rc == TF_E_CORRUPT ? TF_OK : rc;
    if (o.state == OUT_ASKING) /* else a stale index entry */
        rc = conn_tick(node, &o, now);
    out_free(&o);
    return rc;
}

static int due_in(struct tf_node *node, uint8_t kind, const uint8_t id[32], uint64_t at,
                  uint64_t now)
{
    struct intro_in r;
    struct keyset ks;
    int rc = in_load(node, id, &r);
    if (rc != TF_OK)
        return rc == TF_E_NOT_FOUND ? drop_key(node, kind, at, id) : rc;
    in_keys(node, &r, &ks);
    if (!owns_key(&ks, kind, at, id)) {
        rc = drop_key(node, kind, at, id);
    } else if (kind == 'i') {
        rc = in_remove(node, &r);
    } else {
        /* Pending past its expiry, or accepted past the last moment an
         * introduction could arrive: the machine's tick. */
        struct tf_proto_proposal p;
        struct tf_proto_im_party_input in = party_input(TF_PROTO_IM_PARTY_TICK, now);
        struct tf_proto_im_out res;
        struct party_ctx ctx = {.p = &p};
        if ((rc = tf_proto_proposal_decode(r.proposal.data, r.proposal.len, &p)) == TF_OK) {
            struct tf_proto_im_party s = party_of(&r, &p);
            rc = party_run(node, &r, &s, &in, &ctx, &res);
        }
    }
    in_free(&r);
    return rc;
}

static int due_out(struct tf_node *node, uint8_t kind, const uint8_t id[32], uint64_t at,
                   uint64_t now)
{
    struct intro_out o;
    struct keyset ks;
    int rc = out_load(node, id, &o);
    if (rc != TF_OK)
        return rc == TF_E_NOT_FOUND ? drop_key(node, kind, at, id) : rc;
    out_keys(node, &o, &ks);
    if (!owns_key(&ks, kind, at, id)) {
        rc = drop_key(node, kind, at, id);
    } else if (kind == 'o') {
        rc = out_remove(node, &o);
    } else {
        rc = conn_tick(node, &o, now); /* the delayed closes that are due */
    }
    out_free(&o);
    return rc;
}

static int due_tomb(struct tf_node *node, const uint8_t id[32], uint64_t at)
{
    uint8_t val[TOMB_VAL_LEN];
    int rc = tomb_get(node, id, val);
    if (rc == TF_E_NOT_FOUND || (rc == TF_OK && get_u64be(val) != at))
        return drop_key(node, 't', at, id);
    return rc == TF_OK ? tomb_remove(node, id, val) : rc;
}

static int due_one(struct tf_node *node, uint8_t kind, const uint8_t id[32], uint64_t at,
                   uint64_t now)
{
    switch (kind) {
    case 0:
        return expire_out(node, id, now);
    case 'x':
    case 'a':
    case 'i':
        return due_in(node, kind, id, at, now);
    case 'c':
    case 'o':
        return due_out(node, kind, id, at, now);
    case 't':
        return due_tomb(node, id, at);
    default:
        return TF_E_INVALID_ARG;
    }
}

static void sweep_kind(struct tf_node *node, uint8_t kind, uint64_t now)
{
    struct due d; /* about 10 KiB */
    d.kind = kind;
    d.now = now;
    d.n = 0;
    int rc = kind == 0
                 ? tf_node_store_kv_foreach(node->store, TF_NODE_STORE_INTRO_EXPIRY, due_cb, &d)
                 : tf_node_store_kv_foreach_from(node->store, TF_NODE_STORE_INTRO_SCHED, &kind, 1,
                                                 due_cb, &d);
    if (rc != TF_OK && rc != 1) {
        tf_node_log(TF_NODE_LOG_ERROR, "intro", "cannot read the intro schedule: %s",
                    tf_strerror(rc));
        return;
    }
    for (size_t i = 0; i < d.n; i++) {
        struct tf_node_savepoint sp = tf_node_savepoint(node);
        rc = due_one(node, kind, d.ids[i], d.at[i], now);
        if (rc != TF_OK) {
            tf_node_rollback(node, sp);
            tf_node_log(TF_NODE_LOG_ERROR, "intro", "sweep (%c) failed for one intro: %s",
                        kind ? kind : 'e', tf_strerror(rc));
        }
    }
}

/* Keeps one refusal as a tombstone (see refuse_proposal), unless the intro
 * is known by now or the connector's tombstone budgets are full (R35). */
static int save_refusal(struct tf_node *node, const struct tf_node_refused_intro *ref)
{
    struct intro_in r;
    uint8_t tomb[TOMB_VAL_LEN];
    int rc = in_load(node, ref->id, &r);
    if (rc == TF_OK)
        in_free(&r);
    if (rc != TF_E_NOT_FOUND)
        return rc;
    if ((rc = tomb_get(node, ref->id, tomb)) != TF_E_NOT_FOUND)
        return rc;
    /* A stranger's tombstone is not refused for the strangers' budget: it
     * takes the place of the oldest finished record a stranger caused (R58). */
    uint64_t mine = 0;
    rc = prefix_count(node, 'f', ref->connector, node->config.max_intros_per_connector, &mine);
    if (rc != TF_OK)
        return rc;
    if (mine >= node->config.max_intros_per_connector) {
        char tid[TF_PROTO_TEXT_ID_SIZE];
        tf_proto_text_id_encode(ref->connector, tid);
        tf_node_log(TF_NODE_LOG_INFO, "intro",
                    "refusal of a proposal from %s kept in memory only: its budget is full", tid);
        return TF_OK;
    }
    return tomb_put(node, ref->id, ref->connector,
                    (uint8_t)(TOMB_REFUSED | (ref->stranger ? TOMB_STRANGER : 0)));
}

void tf_node_intro_save_refusals(struct tf_node *node)
{
    const size_t n = sizeof node->refused_intros / sizeof node->refused_intros[0];
    for (size_t i = 0; i < n; i++) {
        struct tf_node_refused_intro *ref = &node->refused_intros[i];
        if (!ref->unsaved)
            continue;
        ref->unsaved = false;
        struct tf_node_savepoint sp = tf_node_savepoint(node);
        int rc = save_refusal(node, ref);
        if (rc != TF_OK) {
            tf_node_rollback(node, sp);
            tf_node_log(TF_NODE_LOG_ERROR, "intro", "cannot keep a refusal: %s", tf_strerror(rc));
        }
    }
}

static void sweep_timer_cb(uv_timer_t *t)
{
    struct tf_node *node = t->data;
    uint64_t now = tf_node_now(node);
    /* Housekeeping rides on the same tick: forget message ids whose
     * envelopes have expired (a bounded batch per tick). */
    size_t removed = 0;
    int grc = tf_node_store_seen_gc(node->store, now, 1000, &removed);
    if (grc != TF_OK)
        tf_node_log(TF_NODE_LOG_WARN, "delivery", "seen-id cleanup failed: %s", tf_strerror(grc));
    else if (removed > 0)
        tf_node_log(TF_NODE_LOG_DEBUG, "delivery", "forgot %zu expired message ids", removed);
    int dead = 0;
    if (tf_node_store_clear_dead_readers(node->store, &dead) == TF_OK && dead > 0)
        tf_node_log(TF_NODE_LOG_INFO, "store",
                    "freed %d read slot(s) of processes that died reading the store", dead);
    static const uint8_t kinds[] = {0, 'x', 'a', 'c', 'i', 'o', 't'};
    for (size_t i = 0; i < sizeof kinds; i++)
        sweep_kind(node, kinds[i], now);
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

/* pages: the intro_sched keys of some kinds, copied out (up to KEYS_BATCH at
 * a time) so that they can be deleted or read after the walk. */
#define KEYS_BATCH 1024
struct key_list {
    uint8_t kind;
    size_t n;
    uint8_t key[KEYS_BATCH][SK_MAX];
    size_t len[KEYS_BATCH];
    uint8_t val[KEYS_BATCH][TOMB_VAL_LEN]; /* 'T' keys' values */
};

static int key_list_cb(const uint8_t *key, size_t klen, const uint8_t *val, size_t vlen, void *arg)
{
    struct key_list *l = arg;
    if (klen < 1 || key[0] != l->kind || l->n == KEYS_BATCH)
        return 1; /* past the kind, or a full batch */
    if (klen > SK_MAX || (l->kind == 'T' && vlen != TOMB_VAL_LEN))
        return TF_E_CORRUPT;
    memcpy(l->key[l->n], key, klen);
    l->len[l->n] = klen;
    if (l->kind == 'T')
        memcpy(l->val[l->n], val, TOMB_VAL_LEN);
    l->n++;
    return 0;
}

/* Deletes every intro_sched key of the kinds 'f', 'b', 's' and 'q' (whatever
 * their form), then puts back the tombstones' ('T' says which): what stores
 * written before keys carried a time need before their records' keys are
 * put again (build_indexes). */
static int drop_counted_keys(struct tf_node *node)
{
    static const uint8_t kinds[] = {'f', 'b', 's', 'q'};
    struct key_list *l = malloc(sizeof *l);
    int rc = l != NULL ? TF_OK : TF_E_NOMEM;
    for (size_t k = 0; rc == TF_OK && k < sizeof kinds; k++) {
        do {
            l->kind = kinds[k];
            l->n = 0;
            rc = tf_node_store_kv_foreach_from(node->store, TF_NODE_STORE_INTRO_SCHED, &l->kind, 1,
                                               key_list_cb, l);
            rc = rc == 1 ? TF_OK : rc;
            for (size_t i = 0; rc == TF_OK && i < l->n; i++)
                rc = index_set(node, TF_NODE_STORE_INTRO_SCHED, l->key[i], l->len[i], false);
        } while (rc == TF_OK && l->n == KEYS_BATCH);
    }
    uint8_t from[33] = {'T'};
    for (bool more = true; rc == TF_OK && more;) {
        l->kind = 'T';
        l->n = 0;
        rc = tf_node_store_kv_foreach_from(node->store, TF_NODE_STORE_INTRO_SCHED, from,
                                           sizeof from, key_list_cb, l);
        rc = rc == 1 ? TF_OK : rc;
        more = l->n == KEYS_BATCH;
        for (size_t i = 0; rc == TF_OK && i < l->n; i++) {
            struct keyset keys, none = {.n = 0};
            if (l->len[i] != 33) {
                rc = TF_E_CORRUPT;
                break;
            }
            tomb_keys(l->key[i] + 1, l->val[i], &keys);
            rc = ks_apply(node, &none, &keys);
        }
        if (more) { /* the next batch starts just after the last key seen */
            memcpy(from, l->key[l->n - 1], sizeof from);
            int j = 32;
            while (j >= 1 && ++from[j] == 0)
                j--;
            more = j >= 1; /* past the last id there is nothing more */
        }
    }
    free(l);
    return rc;
}

/* Fills the indexes from the intro tables, once: a store made before schema
 * 5 (or 6) has intros but empty indexes (or no intro_sched keys), and one
 * made before schema 10 has the 'f', 'b', 's' and 'q' keys without their time
 * (pages) and the finished records of strangers under 's' instead of 'z'
 * (R58).  The meta key that records it is written in the same transaction,
 * so a crash before the commit only means the work is done again. */
#define INDEXED_META_KEY "intro-indexes-9"
static int build_indexes(struct tf_node *node)
{
    struct tf_proto_buf v = {0};
    int rc = tf_node_store_meta_get(node->store, INDEXED_META_KEY, &v);
    tf_proto_buf_free(&v);
    if (rc != TF_E_NOT_FOUND)
        return rc;
    struct id_list out = {0}, in = {0};
    rc = drop_counted_keys(node);
    if (rc == TF_OK)
        rc = tf_node_store_kv_foreach(node->store, TF_NODE_STORE_INTROS_OUT, collect_cb, &out);
    if (rc == TF_OK)
        rc = tf_node_store_kv_foreach(node->store, TF_NODE_STORE_INTROS_IN, collect_cb, &in);
    for (size_t i = 0; rc == TF_OK && i < out.n; i++) {
        struct intro_out o;
        int lrc = out_load(node, out.ids[i], &o);
        if (lrc == TF_OK) {
            if ((rc = out_save(node, &o, true)) == TF_OK)
                rc = pair_index_put(node, &o);
            out_free(&o);
        }
    }
    for (size_t i = 0; rc == TF_OK && i < in.n; i++) {
        struct intro_in r;
        if (in_load(node, in.ids[i], &r) == TF_OK) {
            rc = in_save(node, &r, true);
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
    /* requests: without a topic, an answer is about what the request seeks. */
    if (topic[0] == '\0' &&
        (rc = tf_node_request_topic(node, args, topic, sizeof topic, why, why_cap)) != TF_OK &&
        rc != TF_E_NOT_FOUND)
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
    /* requests: "answers" names an open request of A's or B's. */
    int asker_side = -1;
    uint8_t request_id[32];
    rc = tf_node_request_check_answer(node, args, ca.pk, cb.pk, &asker_side, request_id, why,
                                      why_cap);
    if (rc != TF_OK && rc != TF_E_NOT_FOUND)
        goto out;
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
        /* What the other side is told about x: only what the connector
         * wrote (x's display name would tell them who, before x agrees). */
        if ((rc = set_str(&o.about[x], tmp)) != TF_OK)
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
    o.created = o.updated = core.created;
    o.expires = core.expires;
    struct tf_proto_im_conn next;
    struct tf_proto_im_out res;
    tf_proto_im_conn_propose(sequential, o.expires, &next, &res);
    /* requests: recorded before the proposals are signed, which name it. */
    if (asker_side >= 0 &&
        (rc = tf_node_request_answered(node, request_id, o.id, asker_side, "owner")) != TF_OK) {
        WHY("cannot record the answer to the request: %s", tf_strerror(rc));
        goto out;
    }
    if ((rc = conn_exec(node, &o, true, &next, &res, -1, core.created, NULL)) != TF_OK ||
        (rc = pair_index_put(node, &o)) != TF_OK) {
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

/* Resolves args[key]: the full hex id or a unique prefix of >= 8 digits
 * (requests: shared with node/request.c, node/verbs.c). */
static int resolve_arg(struct tf_node *node, enum tf_node_store_table table,
                       const msgpack_object *args, const char *key, uint8_t id[32], char *why,
                       size_t why_cap)
{
    return tf_node__resolve_hex_id(node, table, args, key, "intro", id, why, why_cap);
}

static int resolve_id(struct tf_node *node, enum tf_node_store_table table,
                      const msgpack_object *args, uint8_t id[32], char *why, size_t why_cap)
{
    return resolve_arg(node, table, args, "id", id, why, why_cap);
}

/* The intro (or inbox item) args["id"] names, loaded into *o (*r). */
static int out_load_arg(struct tf_node *node, const msgpack_object *args, struct intro_out *o,
                        char *why, size_t why_cap)
{
    uint8_t id[32];
    int rc = resolve_id(node, TF_NODE_STORE_INTROS_OUT, args, id, why, why_cap);
    return rc == TF_OK ? out_load(node, id, o) : rc;
}

static int in_load_arg(struct tf_node *node, const msgpack_object *args, struct intro_in *r,
                       char *why, size_t why_cap)
{
    uint8_t id[32];
    int rc = resolve_id(node, TF_NODE_STORE_INTROS_IN, args, id, why, why_cap);
    return rc == TF_OK ? in_load(node, id, r) : rc;
}

/*
 * Listing pages (intro.list, inbox.list): newest first, at most `limit`
 * items (1..PAGE_MAX, default PAGE_DEFAULT), starting after the item
 * `before` names.  The walk follows intro_sched's 'p' (intros) or 'r'
 * (inbox) keys and loads one record at a time, so a page costs at most the
 * records walked and `limit` held, whatever the store holds.
 */
#define PAGE_DEFAULT 50
#define PAGE_MAX 1000

static void write_in(struct tf_node *node, struct tf_proto_mp_writer *w, const struct intro_in *r,
                     int resent);

struct page {
    struct tf_node *node;
    bool in;    /* inbox items, else intros */
    int filter; /* intros: a state or -1; inbox: IN_PENDING or -1 */
    bool open;  /* inbox (issue 16, ux): pending, or accepted by a policy rule and not over */
    bool has_before;
    uint8_t before[32];
    uint64_t limit;
    struct intro_out *outs;
    struct intro_in *ins;
    size_t n;
};

/* Readable by a person (issue 16, ux): an item the owner should see in
 * the default inbox: one waiting for an answer, or one a policy rule
 * accepted on the owner's behalf whose outcome is still open. */
static bool in_is_open(const struct intro_in *r)
{
    static const char policy[] = "policy:";
    return r->state == IN_PENDING ||
           (r->state == IN_ACCEPTED && r->decided_by.len >= sizeof policy - 1 &&
            memcmp(r->decided_by.data, policy, sizeof policy - 1) == 0);
}

static int page_cb(const uint8_t *key, size_t klen, const uint8_t *val, size_t vlen, void *arg)
{
    (void)val;
    (void)vlen;
    struct page *pg = arg;
    if (klen != 41 || key[0] != (pg->in ? 'r' : 'p'))
        return 1; /* past this kind */
    const uint8_t *id = key + 9;
    if (pg->has_before && memcmp(id, pg->before, 32) == 0)
        return 0;
    if (pg->in) {
        struct intro_in *r = &pg->ins[pg->n];
        if (in_load(pg->node, id, r) != TF_OK)
            return 0;
        if ((pg->filter >= 0 && r->state != (uint64_t)pg->filter) || (pg->open && !in_is_open(r))) {
            in_free(r);
            return 0;
        }
    } else {
        struct intro_out *o = &pg->outs[pg->n];
        if (out_load(pg->node, id, o) != TF_OK)
            return 0;
        if (pg->filter >= 0 && o->state != (uint64_t)pg->filter) {
            out_free(o);
            return 0;
        }
    }
    return ++pg->n >= pg->limit ? 1 : 0;
}

/* Reads limit and before from args, walks the page into pg, writes it as an
 * array, frees it. */
static int write_page(struct tf_node *node, struct page *pg, const msgpack_object *args,
                      struct tf_proto_mp_writer *w, char *why, size_t why_cap)
{
    uint8_t from[41];
    uint64_t t = 0;
    pg->node = node;
    pg->limit = PAGE_DEFAULT;
    pg->n = 0;
    int rc = tf_proto_ctl_get_uint(args, "limit", &pg->limit);
    if ((rc != TF_OK && rc != TF_E_NOT_FOUND) || pg->limit < 1 || pg->limit > PAGE_MAX) {
        WHY("argument 'limit' must be 1 to %u", PAGE_MAX);
        return TF_E_BAD_VALUE;
    }
    pg->has_before = tf_proto_ctl_get(args, "before") != NULL;
    if (pg->has_before) {
        enum tf_node_store_table table =
            pg->in ? TF_NODE_STORE_INTROS_IN : TF_NODE_STORE_INTROS_OUT;
        if ((rc = resolve_arg(node, table, args, "before", pg->before, why, why_cap)) != TF_OK)
            return rc;
        if (pg->in) {
            struct intro_in r;
            if ((rc = in_load(node, pg->before, &r)) == TF_OK)
                t = r.received, in_free(&r);
        } else {
            struct intro_out o;
            if ((rc = out_load(node, pg->before, &o)) == TF_OK)
                t = o.created, out_free(&o);
        }
        if (rc != TF_OK)
            return rc;
    }
    from[0] = pg->in ? 'r' : 'p';
    put_u64be(~t, from + 1);
    memcpy(from + 9, pg->before, 32);
    pg->ins = pg->in ? calloc((size_t)pg->limit, sizeof *pg->ins) : NULL;
    pg->outs = pg->in ? NULL : calloc((size_t)pg->limit, sizeof *pg->outs);
    if (pg->ins == NULL && pg->outs == NULL)
        return TF_E_NOMEM;
    rc = tf_node_store_kv_foreach_from(node->store, TF_NODE_STORE_INTRO_SCHED, from,
                                       pg->has_before ? sizeof from : 1, page_cb, pg);
    if (rc == TF_OK || rc == 1) {
        rc = TF_OK;
        tf_proto_mp_write_array(w, (uint32_t)pg->n);
        for (size_t i = 0; i < pg->n; i++)
            if (pg->in)
                write_in(node, w, &pg->ins[i], -1);
            else
                write_out(node, w, &pg->outs[i]);
    }
    for (size_t i = 0; i < pg->n; i++)
        if (pg->in)
            in_free(&pg->ins[i]);
        else
            out_free(&pg->outs[i]);
    free(pg->ins);
    free(pg->outs);
    return rc;
}

static int verb_list(struct tf_node *node, const msgpack_object *args, struct tf_proto_mp_writer *w,
                     char *why, size_t why_cap)
{
    struct page pg = {.in = false, .filter = -1};
    char state[16];
    int rc = opt_str(args, "state", state, sizeof state, false, why, why_cap);
    if (rc != TF_OK)
        return rc;
    if (state[0]) {
        for (int i = 0; i <= OUT_EXPIRED; i++)
            if (strcmp(state, out_state_name((uint64_t)i)) == 0)
                pg.filter = i;
        if (pg.filter < 0) {
            WHY("state must be asking, introduced, declined, withdrawn or expired");
            return TF_E_BAD_VALUE;
        }
    }
    return write_page(node, &pg, args, w, why, why_cap);
}

static int verb_show(struct tf_node *node, const msgpack_object *args, struct tf_proto_mp_writer *w,
                     char *why, size_t why_cap)
{
    struct intro_out o;
    int rc = out_load_arg(node, args, &o, why, why_cap);
    if (rc != TF_OK)
        return rc;
    write_out(node, w, &o);
    out_free(&o);
    return TF_OK;
}

static int verb_withdraw(struct tf_node *node, const msgpack_object *args,
                         struct tf_proto_mp_writer *w, char *why, size_t why_cap)
{
    struct intro_out o;
    int rc = out_load_arg(node, args, &o, why, why_cap);
    if (rc != TF_OK)
        return rc;
    struct tf_proto_im_conn_input in;
    struct tf_proto_im_out res;
    memset(&in, 0, sizeof in);
    in.event = TF_PROTO_IM_CONN_WITHDRAW;
    in.now = tf_node_now(node);
    close_delays(node, in.close_delay);
    if ((rc = conn_run(node, &o, &in, NULL, &res)) != TF_OK) {
        WHY("cannot withdraw: %s", tf_strerror(rc));
        goto out;
    }
    if (res.verb_rc != TF_OK) {
        /* (The state after the due tick: an intro past its expiry is
         * expired, not asking.) */
        WHY("this intro is %s; %s", out_state_name(o.state), res.why);
        rc = res.verb_rc;
        goto out;
    }
    write_out(node, w, &o);
out:
    out_free(&o);
    return rc;
}

/* Inbox. */

/* One inbox item; with resent >= 0 also "resent" (the accept verb's). */
static void write_in(struct tf_node *node, struct tf_proto_mp_writer *w, const struct intro_in *r,
                     int resent)
{
    struct tf_proto_proposal p;
    char hex[65], tid[TF_PROTO_TEXT_ID_SIZE];
    bool ok = tf_proto_proposal_decode(r->proposal.data, r->proposal.len, &p) == TF_OK;
    sodium_bin2hex(hex, sizeof hex, r->id, 32);
    tf_proto_mp_write_map(w, resent >= 0 ? 17 : 16);
    tf_proto_mp_write_cstr(w, "id");
    tf_proto_mp_write_cstr(w, hex);
    if (resent >= 0) {
        tf_proto_mp_write_cstr(w, "resent");
        tf_proto_mp_write_bool(w, resent > 0);
    }
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

static int verb_inbox(struct tf_node *node, const msgpack_object *args,
                      struct tf_proto_mp_writer *w, char *why, size_t why_cap)
{
    struct page pg = {.in = true, .filter = IN_PENDING};
    bool all = false;
    int rc = tf_proto_ctl_get_bool(args, "all", &all);
    if (rc != TF_OK && rc != TF_E_NOT_FOUND) {
        WHY("argument 'all' must be true or false");
        return TF_E_BAD_REQUEST;
    }
    if (all)
        pg.filter = -1;
    /* Readable by a person (issue 16, ux): "open" adds what a policy
     * accepted and is not over yet. */
    bool open = false;
    rc = tf_proto_ctl_get_bool(args, "open", &open);
    if (rc != TF_OK && rc != TF_E_NOT_FOUND) {
        WHY("argument 'open' must be true or false");
        return TF_E_BAD_REQUEST;
    }
    if (open && all) {
        WHY("give 'all' or 'open', not both");
        return TF_E_BAD_REQUEST;
    }
    if (open) {
        pg.filter = -1;
        pg.open = true;
    }
    return write_page(node, &pg, args, w, why, why_cap);
}

/* inbox.show (issue 16, ux): one inbox item, for `twofold show` on the
 * party's side. */
static int verb_inbox_show(struct tf_node *node, const msgpack_object *args,
                           struct tf_proto_mp_writer *w, char *why, size_t why_cap)
{
    struct intro_in r;
    int rc = in_load_arg(node, args, &r, why, why_cap);
    if (rc != TF_OK)
        return rc;
    write_in(node, w, &r, -1);
    in_free(&r);
    return TF_OK;
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
    struct tf_proto_proposal p;
    struct party_ctx ctx = {&p, text, "owner", NULL, NULL, 0, false};
    if ((rc = tf_proto_proposal_decode(r.proposal.data, r.proposal.len, &p)) != TF_OK) {
        WHY("cannot answer: %s", tf_strerror(rc));
        goto out;
    }
    if ((rc = answer(node, &r, &p, accept, &ctx, why, why_cap)) != TF_OK)
        goto out;
    /* resent: already accepted, and the stored acceptance went again. */
    write_in(node, w, &r, ctx.resent ? 1 : 0);
out:
    in_free(&r);
    return rc;
}

/* intro.rm: forgets an intro that is over.  Not one still asking (withdraw
 * it first), nor one whose delayed closes have not left yet. */
static int verb_rm_out(struct tf_node *node, const msgpack_object *args,
                       struct tf_proto_mp_writer *w, char *why, size_t why_cap)
{
    struct intro_out o;
    int rc = out_load_arg(node, args, &o, why, why_cap);
    if (rc != TF_OK)
        return rc;
    if (o.state == OUT_ASKING) {
        WHY("this intro is still asking; withdraw it first");
        rc = TF_E_BAD_STATE;
    } else if (close_due(&o) != 0) {
        WHY("this intro's closes have not been sent yet (by %llu); remove it after that",
            (unsigned long long)(o.close_at[0] > o.close_at[1] ? o.close_at[0] : o.close_at[1]));
        rc = TF_E_BAD_STATE;
    } else if ((rc = out_remove(node, &o)) != TF_OK ||
               (rc = intro_event(node, "intro.removed", o.id, NULL, 0)) != TF_OK) {
        WHY("cannot remove: %s", tf_strerror(rc));
    } else {
        write_out(node, w, &o);
    }
    out_free(&o);
    return rc;
}

/* inbox.rm: forgets an inbox item that is over (the other person stays a
 * contact if it was introduced).  Not one waiting for an answer, nor one
 * this party accepted while an introduction could still come: removing it
 * would refuse that introduction while the other party has it.  What is
 * left is a tombstone, so the connector's close is still acknowledged. */
static int verb_rm_in(struct tf_node *node, const msgpack_object *args,
                      struct tf_proto_mp_writer *w, char *why, size_t why_cap)
{
    struct intro_in r;
    struct tf_proto_proposal p;
    int rc = in_load_arg(node, args, &r, why, why_cap);
    if (rc != TF_OK)
        return rc;
    if (tf_proto_proposal_decode(r.proposal.data, r.proposal.len, &p) != TF_OK) {
        rc = TF_E_CORRUPT;
    } else if (r.state == IN_PENDING) {
        WHY("this intro waits for your answer; decline it first");
        rc = TF_E_BAD_STATE;
    } else if ((r.state == IN_ACCEPTED || r.state == IN_DECLINED) && r.my_accept.len > 0 &&
               tf_node_now(node) <= add_sat(p.core.expires, ENVELOPE_GRACE_S)) {
        WHY("you accepted this intro and its introduction may still come; it can be removed "
            "once it is introduced, closed or expired");
        rc = TF_E_BAD_STATE;
    } else if ((rc = in_remove(node, &r)) != TF_OK ||
               (rc = tomb_put(node, r.id, p.core.connector_pk, r.stranger ? TOMB_STRANGER : 0)) !=
                   TF_OK ||
               (rc = intro_event(node, "inbox.removed", r.id, NULL, 0)) != TF_OK) {
        WHY("cannot remove: %s", tf_strerror(rc));
    } else {
        write_in(node, w, &r, -1);
    }
    in_free(&r);
    return rc;
}

int tf_node_intro_verb(struct tf_node *node, const char *verb, size_t verb_len,
                       const msgpack_object *args, struct tf_proto_mp_writer *w, char *why,
                       size_t why_cap, bool *handled)
{
    static const char *const names[] = {
        "intro.propose", "intro.list",    "intro.show", "intro.withdraw", "inbox.list",
        "intro.accept",  "intro.decline", "intro.rm",   "inbox.rm",       "inbox.show"};
    int which = -1;
    for (int i = 0; i < (int)(sizeof names / sizeof names[0]); i++)
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
    case 7:
        return verb_rm_out(node, args, w, why, why_cap);
    case 8:
        return verb_rm_in(node, args, w, why, why_cap);
    case 9:
        return verb_inbox_show(node, args, w, why, why_cap);
    default:
        return TF_E_UNKNOWN_VERB;
    }
}

/* requests: what this connector's intros say about a pair (for suggest). */

struct pair_walk {
    uint8_t prefix[PAIR_KEY_MAX]; /* the first 64 bytes: the pair */
    uint8_t ids[64][32];
    size_t n;
};

static int pair_walk_cb(const uint8_t *key, size_t klen, const uint8_t *val, size_t vlen, void *arg)
{
    struct pair_walk *pw = arg;
    if (klen < 64 || memcmp(key, pw->prefix, 64) != 0)
        return 1; /* past this pair's keys */
    if (vlen == 32 && pw->n < sizeof pw->ids / sizeof pw->ids[0])
        memcpy(pw->ids[pw->n++], val, 32);
    return 0;
}

int tf_node_intro_pair_status(struct tf_node *node, const uint8_t a[32], const uint8_t b[32],
                              uint64_t declined_since, enum tf_node_intro_pair *out)
{
    struct pair_walk pw;
    pw.n = 0;
    pair_key(a, b, NULL, 0, pw.prefix);
    *out = TF_NODE_INTRO_PAIR_NONE;
    int rc = tf_node_store_kv_foreach_from(node->store, TF_NODE_STORE_INTRO_PAIRS, pw.prefix, 64,
                                           pair_walk_cb, &pw);
    if (rc != TF_OK && rc != 1)
        return rc;
    for (size_t i = 0; i < pw.n; i++) {
        struct intro_out o;
        rc = out_load(node, pw.ids[i], &o);
        if (rc == TF_E_NOT_FOUND || rc == TF_E_CORRUPT)
            continue; /* an index entry for a removed intro */
        if (rc != TF_OK)
            return rc;
        enum tf_node_intro_pair s = o.state == OUT_INTRODUCED ? TF_NODE_INTRO_PAIR_INTRODUCED
                                    : o.state == OUT_ASKING   ? TF_NODE_INTRO_PAIR_OPEN
                                    : o.state == OUT_DECLINED && o.updated >= declined_since
                                        ? TF_NODE_INTRO_PAIR_DECLINED
                                        : TF_NODE_INTRO_PAIR_NONE;
        out_free(&o);
        if (s > *out)
            *out = s;
    }
    return TF_OK;
}

/* requests: what feedback needs of the intro records. */

int tf_node_intro_inbox_lookup(struct tf_node *node, const msgpack_object *args,
                               uint8_t intro_id[32], uint8_t connector[32], bool *introduced,
                               char *why, size_t why_cap)
{
    struct intro_in r;
    struct tf_proto_proposal p;
    int rc = in_load_arg(node, args, &r, why, why_cap);
    if (rc != TF_OK)
        return rc;
    if (tf_proto_proposal_decode(r.proposal.data, r.proposal.len, &p) != TF_OK) {
        rc = TF_E_CORRUPT;
    } else {
        memcpy(intro_id, r.id, 32);
        memcpy(connector, p.core.connector_pk, 32);
        *introduced = r.state == IN_INTRODUCED;
    }
    in_free(&r);
    return rc;
}

int tf_node_intro_out_parties(struct tf_node *node, const uint8_t intro_id[32],
                              uint8_t parties[2][32], bool *introduced)
{
    struct intro_out o;
    int rc = out_load(node, intro_id, &o);
    if (rc != TF_OK)
        return rc;
    memcpy(parties[0], o.pk[0], 32);
    memcpy(parties[1], o.pk[1], 32);
    *introduced = o.state == OUT_INTRODUCED;
    out_free(&o);
    return TF_OK;
}
