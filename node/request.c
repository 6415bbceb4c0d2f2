/* SPDX-License-Identifier: MIT */
#include "node/request.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>
#include <uv.h>

#include "node/contact.h"
#include "node/delivery.h"
#include "node/internal.h"
#include "node/intro.h"
#include "node/log.h"
#include "node/node.h"
#include "node/policy.h"
#include "node/store.h"
#include "node/verbs.h"
#include "proto/ctl.h"
#include "proto/envelope.h"
#include "proto/request.h"

#define WHY(...) snprintf(why, why_cap, __VA_ARGS__)
#define SWEEP_MS 1000
#define SWEEP_BATCH 256
#define REQUEST_EXPIRES_DEFAULT_S (14u * 86400u)
/* A request's envelopes outlive it by this much (clock skew, a slow link). */
#define ENVELOPE_GRACE_S 86400u

/*
 * The record (table requests, key: the request id):
 *   [role, state, signed request bin, received, closed, intro bin32|nil,
 *    stranger bool, decided_by str(, hidden bool)]
 * received: when this node made or took it; closed: when it left open (0
 * while open); intro: the intro that answered it; stranger: the asker was
 * not a contact when it arrived (role received); decided_by: who closed it
 * ("owner", "asker", "connector", "policy:N", "expiry"); hidden (9th field,
 * only when true): the asker was blocked: the record only holds the asker's
 * budgets, as any other request would, so that its ACKs do not tell the
 * block; it is never listed, shown, answered or evented, and expires and is
 * collected like the others.
 */
struct req {
    uint8_t id[32];
    struct tf_proto_req m; /* role, state, expires, closed */
    struct tf_proto_buf signed_req;
    struct tf_proto_request q; /* views into signed_req */
    uint64_t received;
    bool has_intro;
    uint8_t intro[32];
    bool stranger;
    char decided_by[32];
    bool hidden;
};

/* request_index kinds (one byte first):
 *   'd' u64be(due) id     when the sweep next steps the record
 *   'o' asker id          received and open (max_open_requests_per_asker)
 *   'k' asker id          received, kept (max_requests_per_asker)
 *   's' id                received from a stranger, open (max_stranger_requests)
 *   'x' u64be(closed) id  received from a stranger, closed and kept: at most
 *                         max_stranger_requests, the oldest forgotten first
 *   'i' intro id -> side || request id: the intro answers it (connector)
 *   'm' msg id -> request id: the envelope that carries a sent request
 *   'R' -> u64be(retention): the request_retention_s the 'd' keys were
 *                         computed with (a change makes the sweep redo them)
 * A stranger's request that is withdrawn or expires is forgotten at once:
 * closed records of strangers must not hold the budget of open ones. */
#define KEYS_MAX 5
struct keyset {
    uint8_t key[KEYS_MAX][1 + 32 + 32];
    size_t len[KEYS_MAX];
    size_t n;
};

static void put_u64be(uint64_t v, uint8_t out[8])
{
    for (int i = 7; i >= 0; i--, v >>= 8)
        out[i] = (uint8_t)v;
}

static uint64_t get_u64be(const uint8_t in[8])
{
    uint64_t v = 0;
    for (int i = 0; i < 8; i++)
        v = v << 8 | in[i];
    return v;
}

static void ks_add(struct keyset *ks, uint8_t kind, const uint8_t *a, size_t alen, const uint8_t *b,
                   size_t blen)
{
    uint8_t *k = ks->key[ks->n];
    k[0] = kind;
    memcpy(k + 1, a, alen);
    if (blen > 0)
        memcpy(k + 1 + alen, b, blen);
    ks->len[ks->n++] = 1 + alen + blen;
}

static void req_keys(const struct tf_node *node, const struct req *r, struct keyset *ks)
{
    ks->n = 0;
    uint64_t due = tf_proto_req_deadline(&r->m, node->config.request_retention_s);
    uint8_t at[8];
    put_u64be(due, at);
    ks_add(ks, 'd', at, 8, r->id, 32);
    if (r->m.role != TF_PROTO_REQ_ROLE_RECEIVED)
        return;
    if (r->m.state == TF_PROTO_REQ_OPEN)
        ks_add(ks, 'o', r->q.asker_pk, 32, r->id, 32);
    ks_add(ks, 'k', r->q.asker_pk, 32, r->id, 32);
    if (r->stranger && r->m.state == TF_PROTO_REQ_OPEN) {
        ks_add(ks, 's', r->id, 32, NULL, 0);
    } else if (r->stranger) {
        put_u64be(r->m.closed, at);
        ks_add(ks, 'x', at, 8, r->id, 32);
    }
}

static bool ks_has(const struct keyset *ks, const uint8_t *key, size_t len)
{
    for (size_t i = 0; i < ks->n; i++)
        if (ks->len[i] == len && memcmp(ks->key[i], key, len) == 0)
            return true;
    return false;
}

/* Removes old's keys that new lacks (new NULL: all), then puts new's. */
static int ks_apply(struct tf_node *node, const struct keyset *old, const struct keyset *new)
{
    int rc = TF_OK;
    for (size_t i = 0; rc == TF_OK && old != NULL && i < old->n; i++)
        if (new == NULL || !ks_has(new, old->key[i], old->len[i])) {
            rc = tf_node_store_kv_del(node->store, TF_NODE_STORE_REQUEST_INDEX, old->key[i],
                                      old->len[i]);
            if (rc == TF_E_NOT_FOUND)
                rc = TF_OK;
        }
    for (size_t i = 0; rc == TF_OK && new != NULL &&i < new->n; i++)
        if (old == NULL || !ks_has(old, new->key[i], new->len[i]))
            rc = tf_node_store_kv_put(node->store, TF_NODE_STORE_REQUEST_INDEX, new->key[i],
                                      new->len[i], NULL, 0);
    return rc;
}

/* Record codec. */

static int buf_set(struct tf_proto_buf *dst, const uint8_t *p, size_t n)
{
    uint8_t *d = malloc(n > 0 ? n : 1);
    if (d == NULL)
        return TF_E_NOMEM;
    if (n > 0)
        memcpy(d, p, n);
    dst->data = d;
    dst->len = n;
    return TF_OK;
}

static void req_free(struct req *r)
{
    tf_proto_buf_free(&r->signed_req);
}

static int req_encode(const struct req *r, struct tf_proto_buf *out)
{
    struct tf_proto_mp_writer w;
    tf_proto_mp_writer_init(&w);
    tf_proto_mp_write_array(&w, r->hidden ? 9 : 8);
    tf_proto_mp_write_uint(&w, (uint64_t)r->m.role);
    tf_proto_mp_write_uint(&w, (uint64_t)r->m.state);
    tf_proto_mp_write_bin(&w, r->signed_req.data, r->signed_req.len);
    tf_proto_mp_write_uint(&w, r->received);
    tf_proto_mp_write_uint(&w, r->m.closed);
    if (r->has_intro)
        tf_proto_mp_write_bin(&w, r->intro, 32);
    else
        tf_proto_mp_write_nil(&w);
    tf_proto_mp_write_bool(&w, r->stranger);
    tf_proto_mp_write_cstr(&w, r->decided_by);
    if (r->hidden)
        tf_proto_mp_write_bool(&w, true);
    return tf_proto_mp_writer_finish(&w, out);
}

static int req_decode(const uint8_t id[32], const uint8_t *p, size_t n, struct req *r)
{
    struct tf_proto_mp_reader rd;
    struct tf_proto_bytes sreq, by;
    uint64_t role, state;
    uint32_t fields = 0;
    memset(r, 0, sizeof *r);
    tf_proto_mp_reader_init(&rd, p, n);
    if (tf_proto_mp_read_array(&rd, 9, &fields) != TF_OK || fields < 8 ||
        tf_proto_mp_read_uint(&rd, &role) != TF_OK || role > TF_PROTO_REQ_ROLE_RECEIVED ||
        tf_proto_mp_read_uint(&rd, &state) != TF_OK || state > TF_PROTO_REQ_REFUSED ||
        tf_proto_mp_read_bin(&rd, 1, TF_PROTO_BODY_MAX, &sreq) != TF_OK ||
        tf_proto_mp_read_uint(&rd, &r->received) != TF_OK ||
        tf_proto_mp_read_uint(&rd, &r->m.closed) != TF_OK)
        return TF_E_CORRUPT;
    if (tf_proto_mp_peek_nil(&rd)) {
        if (tf_proto_mp_read_nil(&rd) != TF_OK)
            return TF_E_CORRUPT;
    } else if (tf_proto_mp_read_bin_fixed(&rd, r->intro, 32) != TF_OK) {
        return TF_E_CORRUPT;
    } else {
        r->has_intro = true;
    }
    if (tf_proto_mp_read_bool(&rd, &r->stranger) != TF_OK ||
        tf_proto_mp_read_str(&rd, 0, sizeof r->decided_by - 1, TF_PROTO_TEXT_LINE, &by) != TF_OK ||
        (fields == 9 && tf_proto_mp_read_bool(&rd, &r->hidden) != TF_OK) ||
        tf_proto_mp_read_end(&rd) != TF_OK)
        return TF_E_CORRUPT;
    memcpy(r->decided_by, by.ptr, by.len);
    r->decided_by[by.len] = '\0';
    r->m.role = (enum tf_proto_req_role)role;
    r->m.state = (enum tf_proto_req_state)state;
    r->m.exists = true;
    if (buf_set(&r->signed_req, sreq.ptr, sreq.len) != TF_OK)
        return TF_E_NOMEM;
    if (tf_proto_request_decode(r->signed_req.data, r->signed_req.len, &r->q) != TF_OK ||
        memcmp(r->q.id, id, 32) != 0) {
        req_free(r);
        return TF_E_CORRUPT;
    }
    memcpy(r->id, id, 32);
    r->m.expires = r->q.expires;
    return TF_OK;
}

static int req_load(struct tf_node *node, const uint8_t id[32], struct req *r)
{
    struct tf_proto_buf v = {0};
    int rc = tf_node_store_kv_get(node->store, TF_NODE_STORE_REQUESTS, id, 32, &v);
    if (rc == TF_OK) {
        rc = req_decode(id, v.data, v.len, r);
        if (rc == TF_E_CORRUPT)
            tf_node_log(TF_NODE_LOG_ERROR, "request", "a stored request record is corrupt");
    }
    tf_proto_buf_free(&v);
    return rc;
}

/* req_load for the owner's verbs: a hidden record is not there. */
static int req_load_visible(struct tf_node *node, const uint8_t id[32], struct req *r)
{
    int rc = req_load(node, id, r);
    if (rc == TF_OK && r->hidden) {
        req_free(r);
        rc = TF_E_NOT_FOUND;
    }
    return rc;
}

/* Events: {time, type, id, k1: v1, k2: v2} where v2 is the string s2, or
 * the bool b2 when s2 is NULL. */
static int event5(struct tf_node *node, const char *type, const uint8_t id[32], const char *k1,
                  const char *v1, const char *k2, const char *s2, bool b2)
{
    char hex[65];
    sodium_bin2hex(hex, sizeof hex, id, 32);
    struct tf_proto_mp_writer w;
    struct tf_proto_buf rec;
    tf_proto_mp_writer_init(&w);
    tf_proto_mp_write_map(&w, 5);
    tf_proto_mp_write_cstr(&w, "time");
    tf_proto_mp_write_uint(&w, tf_node_now(node));
    tf_proto_mp_write_cstr(&w, "type");
    tf_proto_mp_write_cstr(&w, type);
    tf_proto_mp_write_cstr(&w, "id");
    tf_proto_mp_write_cstr(&w, hex);
    tf_proto_mp_write_cstr(&w, k1);
    tf_proto_mp_write_cstr(&w, v1);
    tf_proto_mp_write_cstr(&w, k2);
    if (s2 != NULL)
        tf_proto_mp_write_cstr(&w, s2);
    else
        tf_proto_mp_write_bool(&w, b2);
    int rc = tf_proto_mp_writer_finish(&w, &rec);
    if (rc == TF_OK) {
        rc = tf_node_event(node, &rec);
        tf_proto_buf_free(&rec);
    }
    return rc;
}

/* request.<sent|received|answered|...>: {id, role, seeking}. */
static int req_event(struct tf_node *node, const struct req *r)
{
    char type[40], seeking[TF_PROTO_TAG_MAX + 1];
    if (r->hidden)
        return TF_OK;
    const char *what = r->m.role == TF_PROTO_REQ_ROLE_SENT ? "sent" : "received";
    snprintf(type, sizeof type, "request.%s",
             r->m.state == TF_PROTO_REQ_OPEN ? what : tf_proto_req_state_name(r->m.state));
    snprintf(seeking, sizeof seeking, "%.*s", (int)r->q.seeking.len,
             (const char *)r->q.seeking.ptr);
    return event5(node, type, r->id, "role", what, "seeking", seeking, false);
}

/* Sends body to pk (a contact, or a correspondent whose card this node
 * holds).  TF_E_NOT_FOUND when neither: nothing is sent. */
static int send_to(struct tf_node *node, const uint8_t pk[32], uint16_t type,
                   const struct tf_proto_buf *body, uint64_t expires, uint8_t msg_id[16])
{
    struct tf_node_contact c;
    struct tf_proto_buf card = {0};
    memset(&c, 0, sizeof c);
    uint64_t until = expires + ENVELOPE_GRACE_S;
    int rc = tf_node_store_contact_get(node->store, pk, &c);
    if (rc == TF_E_NOT_FOUND && (rc = tf_node_intro_peer_card(node, pk, &card)) == TF_OK) {
        rc = tf_node_contact_from_verified_card(&c, card.data, card.len);
        /* Not a contact: given up after a day, not the 90 days a request
         * may ask for (TF_NODE_DELIVERY_STRANGER_TTL_S). */
        uint64_t cap = tf_node_now(node) + TF_NODE_DELIVERY_STRANGER_TTL_S;
        if (until > cap)
            until = cap;
    }
    if (rc == TF_OK)
        rc = tf_node_delivery_enqueue(node->delivery, &c, type, body->data, body->len, until,
                                      msg_id);
    tf_proto_buf_free(&card);
    tf_node_contact_deinit(&c);
    return rc;
}

static int send_close(struct tf_node *node, const struct req *r,
                      enum tf_proto_request_action action, const uint8_t to[32], uint64_t now)
{
    struct tf_proto_request_close c = {.action = action, .time = now};
    struct tf_proto_buf signed_c;
    memcpy(c.id, r->id, 32);
    int rc = tf_proto_request_close_sign(&node->id, &c, &signed_c);
    if (rc != TF_OK)
        return rc;
    uint8_t msg_id[16];
    rc = send_to(node, to, TF_PROTO_MSG_TYPE_REQUEST_CLOSE, &signed_c, r->q.expires, msg_id);
    tf_proto_buf_free(&signed_c);
    if (rc == TF_E_NOT_FOUND) {
        /* A stranger's card is not held: its request closes here, and
         * expires there. */
        tf_node_log(TF_NODE_LOG_INFO, "request", "no card for the asker: the decline stays local");
        rc = TF_OK;
    }
    return rc;
}

/* Removes r's record and its keys (old: as they were stored). */
static int req_forget(struct tf_node *node, const struct req *r, const struct keyset *old)
{
    int rc = tf_node_store_kv_del(node->store, TF_NODE_STORE_REQUESTS, r->id, 32);
    if (rc == TF_OK)
        rc = ks_apply(node, old, NULL);
    if (rc == TF_OK && r->m.role == TF_PROTO_REQ_ROLE_RECEIVED) {
        uint8_t k[33] = {'s'};
        memcpy(k + 1, r->id, 32); /* an 's' key stored while it was open */
        rc = tf_node_store_kv_del(node->store, TF_NODE_STORE_REQUEST_INDEX, k, sizeof k);
        if (rc == TF_E_NOT_FOUND)
            rc = TF_OK;
    }
    if (rc == TF_OK && r->has_intro && r->m.role == TF_PROTO_REQ_ROLE_RECEIVED) {
        uint8_t k[33] = {'i'};
        memcpy(k + 1, r->intro, 32);
        rc = tf_node_store_kv_del(node->store, TF_NODE_STORE_REQUEST_INDEX, k, sizeof k);
        if (rc == TF_E_NOT_FOUND)
            rc = TF_OK;
    }
    return rc;
}

static int count_prefix(struct tf_node *node, uint8_t kind, const uint8_t *pk, uint64_t max,
                        uint64_t *n);

struct first_key {
    uint8_t key[41];
    bool found;
};

static int first_x_cb(const uint8_t *key, size_t klen, const uint8_t *val, size_t vlen, void *arg)
{
    (void)val;
    (void)vlen;
    struct first_key *f = arg;
    if (klen == 41 && key[0] == 'x') {
        memcpy(f->key, key, 41);
        f->found = true;
    }
    return 1;
}

/* Keeps at most max_stranger_requests closed strangers' records: the
 * oldest closed is forgotten first. */
static int evict_strangers(struct tf_node *node)
{
    uint64_t max = node->config.max_stranger_requests, n = 0;
    int rc = count_prefix(node, 'x', NULL, max + 1, &n);
    for (; rc == TF_OK && n > max; n--) {
        struct first_key f = {.found = false};
        const uint8_t kind = 'x';
        rc = tf_node_store_kv_foreach_from(node->store, TF_NODE_STORE_REQUEST_INDEX, &kind, 1,
                                           first_x_cb, &f);
        if (rc != TF_OK && rc != 1)
            break;
        rc = TF_OK;
        if (!f.found)
            break;
        struct req victim;
        struct keyset ks;
        int lr = req_load(node, f.key + 9, &victim);
        if (lr == TF_OK) {
            req_keys(node, &victim, &ks);
            rc = req_forget(node, &victim, &ks);
            req_free(&victim);
        }
        if (rc == TF_OK) { /* the key itself, whatever became of its record */
            rc = tf_node_store_kv_del(node->store, TF_NODE_STORE_REQUEST_INDEX, f.key, 41);
            if (rc == TF_E_NOT_FOUND)
                rc = TF_OK;
        }
    }
    return rc;
}

/*
 * The executor: steps r's machine with ev and carries out the actions under
 * a savepoint (all or nothing).  old: the record's keys before (NULL for a
 * new record).  by: who decided, kept when the step closes the request.
 * Returns the machine's result (TF_OK, TF_E_BAD_STATE, TF_E_EXPIRED) or a
 * store error.
 */
static int req_run(struct tf_node *node, struct req *r, enum tf_proto_req_event ev, uint64_t now,
                   const char *by)
{
    struct tf_proto_req_out out;
    struct keyset old, new;
    bool existed = r->m.exists;
    if (existed)
        req_keys(node, r, &old);
    tf_proto_req_step(&r->m, ev, now, node->config.request_retention_s, &out);
    if (out.rc != TF_OK || out.actions == 0)
        return out.rc;
    struct tf_node_savepoint sp = tf_node_savepoint(node);
    enum tf_proto_req_state was = r->m.state;
    int rc = TF_OK;
    bool forget = false;
    if (out.actions & TF_PROTO_REQ_ACT_COLLECT) {
        rc = req_forget(node, r, &old);
        goto done;
    }
    r->m = out.next;
    /* A stranger's request that its asker withdraws, or that expires, is
     * forgotten at once (after its event): see the index kinds above. */
    forget = r->m.role == TF_PROTO_REQ_ROLE_RECEIVED && r->stranger && r->m.state != was &&
             (r->m.state == TF_PROTO_REQ_WITHDRAWN || r->m.state == TF_PROTO_REQ_EXPIRED);
    if (r->m.state != was && r->m.state != TF_PROTO_REQ_OPEN && by != NULL)
        snprintf(r->decided_by, sizeof r->decided_by, "%s", by);
    if (out.actions & TF_PROTO_REQ_ACT_SEND_REQUEST) {
        /* 'm' msg id -> request id: a refusing ACK closes the request. */
        uint8_t k[17] = {'m'};
        rc = send_to(node, r->q.connector_pk, TF_PROTO_MSG_TYPE_REQUEST, &r->signed_req,
                     r->q.expires, k + 1);
        if (rc == TF_OK)
            rc = tf_node_store_kv_put(node->store, TF_NODE_STORE_REQUEST_INDEX, k, sizeof k, r->id,
                                      32);
    }
    if (rc == TF_OK && (out.actions & TF_PROTO_REQ_ACT_SEND_WITHDRAW))
        rc = send_close(node, r, TF_PROTO_REQUEST_ACTION_WITHDRAW, r->q.connector_pk, now);
    if (rc == TF_OK && (out.actions & TF_PROTO_REQ_ACT_SEND_DECLINE))
        rc = send_close(node, r, TF_PROTO_REQUEST_ACTION_DECLINE, r->q.asker_pk, now);
    if (rc == TF_OK && forget) {
        rc = req_forget(node, r, &old);
    } else if (rc == TF_OK && (out.actions & TF_PROTO_REQ_ACT_SAVE)) {
        struct tf_proto_buf rec;
        if ((rc = req_encode(r, &rec)) == TF_OK) {
            rc = tf_node_store_kv_put(node->store, TF_NODE_STORE_REQUESTS, r->id, 32, rec.data,
                                      rec.len);
            tf_proto_buf_free(&rec);
        }
        req_keys(node, r, &new);
        if (rc == TF_OK)
            rc = ks_apply(node, existed ? &old : NULL, &new);
        if (rc == TF_OK && r->stranger && r->m.state != TF_PROTO_REQ_OPEN && r->m.state != was)
            rc = evict_strangers(node);
    }
    if (rc == TF_OK && (out.actions & TF_PROTO_REQ_ACT_EMIT))
        rc = req_event(node, r);
done:
    if (rc != TF_OK) {
        tf_node_rollback(node, sp);
        return rc;
    }
    if ((out.actions & TF_PROTO_REQ_ACT_COLLECT) || forget) {
        char hex[17];
        sodium_bin2hex(hex, sizeof hex, r->id, 8);
        tf_node_log(TF_NODE_LOG_DEBUG, "request", "%s collected", hex);
    } else if (!existed || r->m.state != was) {
        char hex[17];
        sodium_bin2hex(hex, sizeof hex, r->id, 8);
        tf_node_log(TF_NODE_LOG_INFO, "request", "%s %s: %s -> %s", hex,
                    r->m.role == TF_PROTO_REQ_ROLE_SENT ? "sent" : "received",
                    existed ? tf_proto_req_state_name(was) : "new",
                    tf_proto_req_state_name(r->m.state));
    }
    return TF_OK;
}

/* Budgets: counts the request_index keys that start with prefix, up to max. */
struct count {
    const uint8_t *prefix;
    size_t plen;
    uint64_t n, max;
};

static int count_cb(const uint8_t *key, size_t klen, const uint8_t *val, size_t vlen, void *arg)
{
    (void)val;
    (void)vlen;
    struct count *c = arg;
    if (klen < c->plen || memcmp(key, c->prefix, c->plen) != 0)
        return 1;
    return ++c->n >= c->max ? 1 : 0;
}

static int count_prefix(struct tf_node *node, uint8_t kind, const uint8_t *pk, uint64_t max,
                        uint64_t *n)
{
    uint8_t prefix[33] = {kind};
    size_t plen = 1;
    if (pk != NULL) {
        memcpy(prefix + 1, pk, 32);
        plen = 33;
    }
    struct count c = {prefix, plen, 0, max};
    *n = 0;
    if (max == 0)
        return TF_OK;
    int rc = tf_node_store_kv_foreach_from(node->store, TF_NODE_STORE_REQUEST_INDEX, prefix, plen,
                                           count_cb, &c);
    *n = c.n;
    return rc == 1 ? TF_OK : rc;
}

/* The owner's policy over received requests (docs/POLICY.md "Requests"). */

static bool cand_better(const struct tf_node_request_offer *a,
                        const struct tf_node_request_offer *b)
{
    if (a->trust != b->trust)
        return a->trust > b->trust;
    if (a->issued != b->issued)
        return a->issued > b->issued;
    return memcmp(a->pk, b->pk, 32) < 0;
}

struct offer_scan {
    const uint8_t *requester;
    struct tf_proto_bytes topic;
    struct tf_node_request_offer *out;
    size_t n, max;
};

static int offer_cb(const struct tf_node_contact *c, void *arg)
{
    struct offer_scan *s = arg;
    enum tf_proto_policy_trust trust = tf_node_policy_trust(c->trust);
    if (c->blocked || trust == TF_PROTO_POLICY_TRUST_NONE ||
        (s->requester != NULL && memcmp(c->pk, s->requester, 32) == 0))
        return 0;
    bool offers = false;
    for (size_t i = 0; i < c->fields.n_offers && !offers; i++)
        offers = c->fields.offers[i].len == s->topic.len &&
                 memcmp(c->fields.offers[i].ptr, s->topic.ptr, s->topic.len) == 0;
    if (!offers)
        return 0;
    struct tf_node_request_offer o = {.trust = trust, .issued = c->fields.issued};
    memcpy(o.pk, c->pk, 32);
    /* Insertion into the best-first list of at most max. */
    size_t at = s->n;
    while (at > 0 && cand_better(&o, &s->out[at - 1]))
        at--;
    if (at >= s->max)
        return 0;
    size_t last = s->n < s->max ? s->n : s->max - 1;
    memmove(&s->out[at + 1], &s->out[at], (last - at) * sizeof o);
    s->out[at] = o;
    if (s->n < s->max)
        s->n++;
    return 0;
}

int tf_node_request_offers(struct tf_node *node, const uint8_t *requester,
                           struct tf_proto_bytes topic, struct tf_node_request_offer *out,
                           size_t max, size_t *n)
{
    struct offer_scan s = {requester, topic, out, 0, max};
    *n = 0;
    if (max == 0)
        return TF_OK;
    int rc = tf_node_store_contact_foreach(node->store, offer_cb, &s);
    *n = s.n;
    return rc;
}

/* Sets a string pair of a map object of msgpack-c's (for calling a verb
 * from here). */
static void kv_str(msgpack_object_kv *kv, const char *key, const char *val)
{
    kv->key.type = MSGPACK_OBJECT_STR;
    kv->key.via.str.ptr = key;
    kv->key.via.str.size = (uint32_t)strlen(key);
    kv->val.type = MSGPACK_OBJECT_STR;
    kv->val.via.str.ptr = val;
    kv->val.via.str.size = (uint32_t)strlen(val);
}

/* Proposes cand and the asker of r, answering r, exactly as the owner's
 * intro.propose would; under a savepoint (all or nothing).  why says why
 * not. */
static int propose_for(struct tf_node *node, const struct req *r, const uint8_t cand[32], char *why,
                       size_t why_cap)
{
    char a[TF_PROTO_TEXT_ID_SIZE], b[TF_PROTO_TEXT_ID_SIZE], id[65];
    tf_proto_text_id_encode(cand, a);
    tf_proto_text_id_encode(r->q.asker_pk, b);
    sodium_bin2hex(id, sizeof id, r->id, 32);
    msgpack_object_kv kv[3];
    kv_str(&kv[0], "a", a);
    kv_str(&kv[1], "b", b);
    kv_str(&kv[2], "answers", id);
    msgpack_object args = {.type = MSGPACK_OBJECT_MAP};
    args.via.map.size = 3;
    args.via.map.ptr = kv;
    struct tf_proto_mp_writer w;
    tf_proto_mp_writer_init(&w);
    bool handled;
    struct tf_node_savepoint sp = tf_node_savepoint(node);
    why[0] = '\0';
    int rc = tf_node_intro_verb(node, "intro.propose", 13, &args, &w, why, why_cap, &handled);
    tf_proto_mp_writer_deinit(&w);
    if (rc != TF_OK)
        tf_node_rollback(node, sp);
    return rc;
}

/* Keeps by as who decided request id (already closed by its step). */
static int set_decided_by(struct tf_node *node, const uint8_t id[32], const char *by)
{
    struct req r;
    struct tf_proto_buf rec;
    int rc = req_load(node, id, &r);
    if (rc != TF_OK)
        return rc;
    snprintf(r.decided_by, sizeof r.decided_by, "%s", by);
    if ((rc = req_encode(&r, &rec)) == TF_OK) {
        rc = tf_node_store_kv_put(node->store, TF_NODE_STORE_REQUESTS, r.id, 32, rec.data, rec.len);
        tf_proto_buf_free(&rec);
    }
    req_free(&r);
    return rc;
}

#define PROPOSE_TRIES 8

/* Runs the owner's request rules on r, just received: decline it, propose
 * the best contact who offers its topic (the next best when an intro of
 * that pair about the topic already exists, up to PROPOSE_TRIES), or leave
 * it open for the owner.  Store errors are returned; a proposal that cannot
 * be made is logged and leaves the request open.
 *
 * A blocked contact's request (hidden) goes through the same rules, so
 * that a block does not change what the asker gets back (R49a): a rule's
 * decline is sent to it, without an event, and frees its open slot, as
 * before the block.  Where a rule would propose, nothing is proposed (the
 * owner blocked the asker) and the request stays open, as under a rule
 * that asks the owner: the missing proposal, which no node can fake, is
 * then the only difference, and the budgets fill as they do for an asker
 * whose requests wait for the owner. */
static int decide_request(struct tf_node *node, struct req *r, uint64_t now)
{
    struct tf_node_request_offer cands[PROPOSE_TRIES];
    size_t n = 0;
    int rc = tf_node_request_offers(node, r->q.asker_pk, r->q.seeking, cands, PROPOSE_TRIES, &n);
    if (rc != TF_OK)
        return rc;
    struct tf_node_policy_facts facts = {
        .is_request = true, .offer_trust = n > 0 ? cands[0].trust : TF_PROTO_POLICY_TRUST_NONE};
    struct tf_proto_policy_decision d;
    if ((rc = tf_node_policy_decide_ex(node, r->q.asker_pk, r->q.seeking,
                                       TF_PROTO_INTRO_MODE_PARALLEL, &facts, true, &d)) != TF_OK)
        return rc;
    if (!d.matched || d.action == TF_PROTO_POLICY_ACTION_ASK)
        return TF_OK;
    char by[32], hex[17];
    snprintf(by, sizeof by, "policy:%zu", d.line);
    sodium_bin2hex(hex, sizeof hex, r->id, 8);
    if (d.action == TF_PROTO_POLICY_ACTION_DECLINE) {
        rc = req_run(node, r, TF_PROTO_REQ_EV_DECLINE, now, by);
        if (rc == TF_OK)
            tf_node_log(TF_NODE_LOG_INFO, "request", "%s declined by %s", hex, by);
        return rc;
    }
    if (d.action != TF_PROTO_POLICY_ACTION_PROPOSE)
        return TF_OK;
    if (r->hidden)
        return TF_OK; /* never proposed for a blocked asker: it stays open */
    char why[256];
    for (size_t i = 0; i < n; i++) {
        rc = propose_for(node, r, cands[i].pk, why, sizeof why);
        if (rc == TF_OK) {
            char tid[TF_PROTO_TEXT_ID_SIZE];
            tf_proto_text_id_encode(cands[i].pk, tid);
            tf_node_log(TF_NODE_LOG_INFO, "request", "%s answered by %s: proposed %s", hex, by,
                        tid);
            return set_decided_by(node, r->id, by);
        }
        char esc[300];
        tf_node_log(TF_NODE_LOG_INFO, "request", "%s: %s could not propose candidate %zu: %s", hex,
                    by, i + 1, tf_node_log_escape(why, strlen(why), esc, sizeof esc));
        if (rc != TF_E_EXISTS)
            break; /* the next candidate would fail the same way */
    }
    return TF_OK;
}

/* Receiving. */

static int on_request(struct tf_node *node, const uint8_t from[32], const uint8_t *body, size_t len)
{
    struct req r;
    char tid[TF_PROTO_TEXT_ID_SIZE];
    uint64_t now = tf_node_now(node);
    memset(&r, 0, sizeof r);
    tf_proto_text_id_encode(from, tid);
    int rc = tf_proto_request_verify(node->id.sign_pk, from, body, len, now, TF_PROTO_SKEW_DEFAULT,
                                     &r.q);
    if (rc != TF_OK) {
        tf_node_log(TF_NODE_LOG_WARN, "request", "request from %s refused: %s (%s)", tid,
                    tf_err_name(rc), tf_strerror(rc));
        return rc == TF_E_EXPIRED ? TF_PROTO_ACK_REASON_EXPIRED : TF_PROTO_ACK_REASON_INVALID;
    }
    struct req known;
    rc = req_load(node, r.q.id, &known);
    if (rc == TF_OK) { /* the same request again */
        req_free(&known);
        return TF_PROTO_ACK_REASON_NONE;
    }
    if (rc != TF_E_NOT_FOUND)
        return -1;
    struct tf_node_contact c;
    memset(&c, 0, sizeof c);
    rc = tf_node_store_contact_get(node->store, from, &c);
    bool stranger = rc == TF_E_NOT_FOUND, blocked = rc == TF_OK && c.blocked;
    tf_node_contact_deinit(&c);
    if (rc != TF_OK && rc != TF_E_NOT_FOUND)
        return -1;
    /* A blocked contact's request counts against the same budgets and gets
     * the same ACKs as anyone's, so that the asker cannot tell the block;
     * it is kept hidden (never listed, shown or evented) until collected. */
    uint64_t open = 0, kept = 0, strangers = 0;
    /* A stranger has one open request at a time. */
    uint64_t open_max = stranger ? 1 : node->config.max_open_requests_per_asker;
    if ((rc = count_prefix(node, 'o', from, open_max, &open)) != TF_OK ||
        (rc = count_prefix(node, 'k', from, node->config.max_requests_per_asker, &kept)) != TF_OK ||
        (stranger && (rc = count_prefix(node, 's', NULL, node->config.max_stranger_requests,
                                        &strangers)) != TF_OK))
        return -1;
    const char *full = NULL;
    uint64_t count = 0;
    if (open >= open_max)
        full = stranger ? "one open request per stranger" : "max_open_requests_per_asker",
        count = open;
    else if (kept >= node->config.max_requests_per_asker)
        full = "max_requests_per_asker", count = kept;
    else if (stranger && strangers >= node->config.max_stranger_requests)
        full = "max_stranger_requests", count = strangers;
    if (full != NULL) {
        tf_node_log(TF_NODE_LOG_WARN, "request", "request from %s refused: %s reached (%llu)", tid,
                    full, (unsigned long long)count);
        return TF_PROTO_ACK_REASON_REFUSED;
    }
    memcpy(r.id, r.q.id, 32);
    r.m = (struct tf_proto_req){.role = TF_PROTO_REQ_ROLE_RECEIVED,
                                .state = TF_PROTO_REQ_OPEN,
                                .exists = false,
                                .expires = r.q.expires};
    r.received = now;
    r.stranger = stranger;
    r.hidden = blocked;
    if (blocked)
        tf_node_log(TF_NODE_LOG_INFO, "request", "request from blocked contact %s kept hidden",
                    tid);
    if ((rc = buf_set(&r.signed_req, body, len)) != TF_OK ||
        (rc = tf_proto_request_decode(r.signed_req.data, r.signed_req.len, &r.q)) != TF_OK) {
        req_free(&r);
        return -1;
    }
    rc = req_run(node, &r, TF_PROTO_REQ_EV_CREATE, now, NULL);
    if (rc == TF_OK)
        rc = decide_request(node, &r, now); /* the owner's request rules, hidden or not */
    req_free(&r);
    return rc == TF_OK          ? TF_PROTO_ACK_REASON_NONE
           : rc == TF_E_EXPIRED ? TF_PROTO_ACK_REASON_EXPIRED
                                : -1;
}

static int on_request_close(struct tf_node *node, const uint8_t from[32], const uint8_t *body,
                            size_t len)
{
    struct tf_proto_request_close c;
    struct req r;
    char tid[TF_PROTO_TEXT_ID_SIZE];
    tf_proto_text_id_encode(from, tid);
    int rc = tf_proto_request_close_verify(from, body, len, &c);
    if (rc != TF_OK) {
        tf_node_log(TF_NODE_LOG_WARN, "request", "request close from %s refused: %s", tid,
                    tf_err_name(rc));
        return TF_PROTO_ACK_REASON_INVALID;
    }
    rc = req_load(node, c.id, &r);
    if (rc == TF_E_NOT_FOUND) /* collected, or never here: nothing to close */
        return TF_PROTO_ACK_REASON_NONE;
    if (rc != TF_OK)
        return -1;
    /* Only the asker withdraws, only the connector declines. */
    bool withdraw = c.action == TF_PROTO_REQUEST_ACTION_WITHDRAW;
    const uint8_t *who = withdraw ? r.q.asker_pk : r.q.connector_pk;
    enum tf_proto_req_event ev = withdraw ? TF_PROTO_REQ_EV_WITHDRAWN : TF_PROTO_REQ_EV_DECLINED;
    int result = TF_PROTO_ACK_REASON_NONE;
    if (sodium_memcmp(who, from, 32) != 0) {
        tf_node_log(TF_NODE_LOG_WARN, "request", "request close from %s refused: not its %s", tid,
                    withdraw ? "asker" : "connector");
        result = TF_PROTO_ACK_REASON_INVALID;
    } else {
        rc = req_run(node, &r, ev, tf_node_now(node), withdraw ? "asker" : "connector");
        if (rc == TF_E_BAD_STATE || rc == TF_E_EXPIRED)
            tf_node_log(TF_NODE_LOG_INFO, "request", "request close from %s changes nothing: %s",
                        tid, tf_strerror(rc));
        else if (rc != TF_OK)
            result = -1;
    }
    req_free(&r);
    return result;
}

/* Feedback and statistics (table intro_stats, docs/CONTROL.md "Feedback").
 *   'c' pk              -> [proposed, accepted, declined, helpful, unhelpful,
 *                           connector_helped, connector_unhelpful]
 *   'S' intro id        -> [helped, note, time]   feedback this node sent
 *   'F' intro id pk     -> [helped, note, time]   feedback received from pk */

enum {
    ST_PROPOSED,
    ST_ACCEPTED,
    ST_DECLINED,
    ST_HELPFUL,
    ST_UNHELPFUL,
    ST_CONNECTOR_HELPED,
    ST_CONNECTOR_UNHELPFUL,
    ST_COUNT
};
#define FEEDBACK_TTL_S (29u * 86400u)

static int stats_load(struct tf_node *node, const uint8_t pk[32], uint64_t v[ST_COUNT])
{
    uint8_t key[33] = {'c'};
    struct tf_proto_buf b = {0};
    memcpy(key + 1, pk, 32);
    memset(v, 0, ST_COUNT * sizeof v[0]);
    int rc = tf_node_store_kv_get(node->store, TF_NODE_STORE_INTRO_STATS, key, sizeof key, &b);
    if (rc == TF_E_NOT_FOUND)
        return TF_OK;
    if (rc != TF_OK)
        return rc;
    struct tf_proto_mp_reader r;
    tf_proto_mp_reader_init(&r, b.data, b.len);
    rc = tf_proto_mp_read_array_exact(&r, ST_COUNT) == TF_OK ? TF_OK : TF_E_CORRUPT;
    for (int i = 0; rc == TF_OK && i < ST_COUNT; i++)
        if (tf_proto_mp_read_uint(&r, &v[i]) != TF_OK)
            rc = TF_E_CORRUPT;
    if (rc == TF_OK && tf_proto_mp_read_end(&r) != TF_OK)
        rc = TF_E_CORRUPT;
    tf_proto_buf_free(&b);
    return rc;
}

static int stats_add(struct tf_node *node, const uint8_t pk[32], int which)
{
    uint64_t v[ST_COUNT];
    int rc = stats_load(node, pk, v);
    if (rc == TF_E_CORRUPT) {
        tf_node_log(TF_NODE_LOG_ERROR, "request", "statistics record corrupt: started again");
        memset(v, 0, sizeof v);
    } else if (rc != TF_OK) {
        return rc;
    }
    v[which]++;
    struct tf_proto_mp_writer w;
    struct tf_proto_buf b;
    tf_proto_mp_writer_init(&w);
    tf_proto_mp_write_array(&w, ST_COUNT);
    for (int i = 0; i < ST_COUNT; i++)
        tf_proto_mp_write_uint(&w, v[i]);
    if ((rc = tf_proto_mp_writer_finish(&w, &b)) != TF_OK)
        return rc;
    uint8_t key[33] = {'c'};
    memcpy(key + 1, pk, 32);
    rc = tf_node_store_kv_put(node->store, TF_NODE_STORE_INTRO_STATS, key, sizeof key, b.data,
                              b.len);
    tf_proto_buf_free(&b);
    return rc;
}

int tf_node_request_count_intro(struct tf_node *node, enum tf_proto_im_emit e,
                                const uint8_t parties[2][32], int side)
{
    switch (e) {
    case TF_PROTO_IM_EMIT_INTRO_PROPOSED: {
        int rc = stats_add(node, parties[0], ST_PROPOSED);
        return rc == TF_OK ? stats_add(node, parties[1], ST_PROPOSED) : rc;
    }
    case TF_PROTO_IM_EMIT_INTRO_REPLIED:
        return side >= 0 && side <= 1 ? stats_add(node, parties[side], ST_ACCEPTED) : TF_OK;
    case TF_PROTO_IM_EMIT_INTRO_DECLINED:
        return side >= 0 && side <= 1 ? stats_add(node, parties[side], ST_DECLINED) : TF_OK;
    case TF_PROTO_IM_EMIT_INTRO_INTRODUCED:
    case TF_PROTO_IM_EMIT_INTRO_WITHDRAWN:
    case TF_PROTO_IM_EMIT_INTRO_EXPIRED:
    case TF_PROTO_IM_EMIT_INBOX_RECEIVED:
    case TF_PROTO_IM_EMIT_INBOX_ACCEPTED:
    case TF_PROTO_IM_EMIT_INBOX_DECLINED:
    case TF_PROTO_IM_EMIT_INBOX_INTRODUCED:
    case TF_PROTO_IM_EMIT_INBOX_LATE_REVOCATION:
    case TF_PROTO_IM_EMIT_INBOX_CLOSED:
    case TF_PROTO_IM_EMIT_INBOX_EXPIRED:
        break;
    }
    return TF_OK;
}

int tf_node_request_write_stats(struct tf_node *node, const uint8_t pk[32],
                                struct tf_proto_mp_writer *w)
{
    static const char *const names[ST_COUNT] = {
        "proposed",  "accepted",         "declined",           "helpful",
        "unhelpful", "connector_helped", "connector_unhelpful"};
    uint64_t v[ST_COUNT];
    int rc = stats_load(node, pk, v);
    if (rc == TF_E_CORRUPT)
        memset(v, 0, sizeof v);
    else if (rc != TF_OK)
        return rc;
    char summary[200];
    snprintf(summary, sizeof summary,
             "proposed %llu, accepted %llu, declined %llu, helpful %llu of %llu reported",
             (unsigned long long)v[ST_PROPOSED], (unsigned long long)v[ST_ACCEPTED],
             (unsigned long long)v[ST_DECLINED], (unsigned long long)v[ST_HELPFUL],
             (unsigned long long)(v[ST_HELPFUL] + v[ST_UNHELPFUL]));
    tf_proto_mp_write_cstr(w, "intro_stats");
    tf_proto_mp_write_map(w, ST_COUNT);
    for (int i = 0; i < ST_COUNT; i++) {
        tf_proto_mp_write_cstr(w, names[i]);
        tf_proto_mp_write_uint(w, v[i]);
    }
    tf_proto_mp_write_cstr(w, "intros_summary");
    tf_proto_mp_write_cstr(w, summary);
    return TF_OK;
}

int tf_node_request_connector_helped(struct tf_node *node, const uint8_t connector[32], uint64_t *n)
{
    uint64_t v[ST_COUNT];
    int rc = stats_load(node, connector, v);
    *n = rc == TF_OK ? v[ST_CONNECTOR_HELPED] : 0;
    return rc == TF_E_CORRUPT ? TF_OK : rc;
}

static int feedback_record(bool helped, struct tf_proto_bytes note, uint64_t time,
                           struct tf_proto_buf *out)
{
    struct tf_proto_mp_writer w;
    tf_proto_mp_writer_init(&w);
    tf_proto_mp_write_array(&w, 3);
    tf_proto_mp_write_bool(&w, helped);
    tf_proto_mp_write_text(&w, note);
    tf_proto_mp_write_uint(&w, time);
    return tf_proto_mp_writer_finish(&w, out);
}

static int feedback_event(struct tf_node *node, const char *type, const uint8_t intro_id[32],
                          const uint8_t who[32], bool helped)
{
    char tid[TF_PROTO_TEXT_ID_SIZE];
    tf_proto_text_id_encode(who, tid);
    return event5(node, type, intro_id, type[9] == 's' ? "connector" : "party", tid, "helped", NULL,
                  helped);
}

static int on_feedback(struct tf_node *node, const uint8_t from[32], const uint8_t *body,
                       size_t len)
{
    struct tf_proto_feedback f;
    char tid[TF_PROTO_TEXT_ID_SIZE];
    tf_proto_text_id_encode(from, tid);
    int rc = tf_proto_feedback_verify(node->id.sign_pk, from, body, len, &f);
    if (rc != TF_OK) {
        tf_node_log(TF_NODE_LOG_WARN, "request", "feedback from %s refused: %s", tid,
                    tf_err_name(rc));
        return TF_PROTO_ACK_REASON_INVALID;
    }
    uint8_t parties[2][32];
    bool introduced = false;
    rc = tf_node_intro_out_parties(node, f.intro_id, parties, &introduced);
    if (rc != TF_OK && rc != TF_E_NOT_FOUND && rc != TF_E_CORRUPT)
        return -1;
    const char *no =
        rc != TF_OK   ? "not an intro of this node"
        : !introduced ? "the intro was not introduced"
        : sodium_memcmp(parties[0], from, 32) != 0 && sodium_memcmp(parties[1], from, 32) != 0
            ? "the sender is not a party of the intro"
            : NULL;
    if (no != NULL) {
        tf_node_log(TF_NODE_LOG_WARN, "request", "feedback from %s refused: %s", tid, no);
        return TF_PROTO_ACK_REASON_INVALID;
    }
    uint8_t key[65] = {'F'};
    struct tf_proto_buf held = {0}, rec;
    memcpy(key + 1, f.intro_id, 32);
    memcpy(key + 33, from, 32);
    rc = tf_node_store_kv_get(node->store, TF_NODE_STORE_INTRO_STATS, key, sizeof key, &held);
    tf_proto_buf_free(&held);
    if (rc == TF_OK) { /* once per party and intro: a second one changes nothing */
        tf_node_log(TF_NODE_LOG_INFO, "request", "feedback from %s again: kept the first", tid);
        return TF_PROTO_ACK_REASON_NONE;
    }
    if (rc != TF_E_NOT_FOUND)
        return -1;
    if ((rc = feedback_record(f.helped, f.note, f.time, &rec)) != TF_OK)
        return -1;
    rc = tf_node_store_kv_put(node->store, TF_NODE_STORE_INTRO_STATS, key, sizeof key, rec.data,
                              rec.len);
    tf_proto_buf_free(&rec);
    if (rc == TF_OK)
        rc = stats_add(node, from, f.helped ? ST_HELPFUL : ST_UNHELPFUL);
    if (rc == TF_OK)
        rc = feedback_event(node, "feedback.received", f.intro_id, from, f.helped);
    return rc == TF_OK ? TF_PROTO_ACK_REASON_NONE : -1;
}

int tf_node_request_forget_feedback(struct tf_node *node, const uint8_t id[32],
                                    const uint8_t (*parties)[32])
{
    uint8_t key[65];
    int rc = TF_OK;
    if (parties == NULL) {
        key[0] = 'S';
        memcpy(key + 1, id, 32);
        rc = tf_node_store_kv_del(node->store, TF_NODE_STORE_INTRO_STATS, key, 33);
        return rc == TF_E_NOT_FOUND ? TF_OK : rc;
    }
    for (int x = 0; x < 2 && rc == TF_OK; x++) {
        key[0] = 'F';
        memcpy(key + 1, id, 32);
        memcpy(key + 33, parties[x], 32);
        rc = tf_node_store_kv_del(node->store, TF_NODE_STORE_INTRO_STATS, key, sizeof key);
        if (rc == TF_E_NOT_FOUND)
            rc = TF_OK;
    }
    return rc;
}

static int verb_feedback(struct tf_node *node, const msgpack_object *args,
                         struct tf_proto_mp_writer *w, char *why, size_t why_cap)
{
    struct tf_proto_feedback f;
    bool introduced = false;
    const char *p;
    size_t n;
    memset(&f, 0, sizeof f);
    if (tf_proto_ctl_get_bool(args, "helped", &f.helped) != TF_OK) {
        WHY("argument 'helped' must be true or false");
        return TF_E_BAD_REQUEST;
    }
    int rc = tf_proto_ctl_get_str(args, "note", &p, &n);
    if (rc == TF_OK) {
        if (n > TF_PROTO_FEEDBACK_NOTE_MAX || !tf_proto_utf8_is_valid((const uint8_t *)p, n)) {
            WHY("the note must be UTF-8 text of at most %u bytes", TF_PROTO_FEEDBACK_NOTE_MAX);
            return TF_E_BAD_VALUE;
        }
        for (size_t i = 0; i < n; i++)
            if (((unsigned char)p[i] < 0x20 && p[i] != '\n' && p[i] != '\t') || p[i] == 0x7f) {
                WHY("the note contains control characters");
                return TF_E_BAD_VALUE;
            }
        f.note = (struct tf_proto_bytes){(const uint8_t *)p, n};
    } else if (rc != TF_E_NOT_FOUND) {
        WHY("argument 'note' must be a string");
        return TF_E_BAD_REQUEST;
    }
    if ((rc = tf_node_intro_inbox_lookup(node, args, f.intro_id, f.connector_pk, &introduced, why,
                                         why_cap)) != TF_OK)
        return rc;
    if (!introduced) {
        WHY("feedback is for an intro that introduced you; this one did not (yet)");
        return TF_E_BAD_STATE;
    }
    uint8_t key[33] = {'S'}, msg_id[16];
    struct tf_proto_buf held = {0}, signed_f = {0}, rec = {0};
    memcpy(key + 1, f.intro_id, 32);
    rc = tf_node_store_kv_get(node->store, TF_NODE_STORE_INTRO_STATS, key, sizeof key, &held);
    tf_proto_buf_free(&held);
    if (rc == TF_OK) {
        WHY("you already sent feedback on this intro (once per intro)");
        return TF_E_EXISTS;
    }
    if (rc != TF_E_NOT_FOUND)
        return rc;
    uint64_t now = tf_node_now(node);
    f.time = now;
    if ((rc = tf_proto_feedback_sign(&node->id, &f, &signed_f)) == TF_OK &&
        (rc = send_to(node, f.connector_pk, TF_PROTO_MSG_TYPE_FEEDBACK, &signed_f,
                      now + FEEDBACK_TTL_S, msg_id)) == TF_OK &&
        (rc = feedback_record(f.helped, f.note, now, &rec)) == TF_OK &&
        (rc = tf_node_store_kv_put(node->store, TF_NODE_STORE_INTRO_STATS, key, sizeof key,
                                   rec.data, rec.len)) == TF_OK &&
        (rc = stats_add(node, f.connector_pk,
                        f.helped ? ST_CONNECTOR_HELPED : ST_CONNECTOR_UNHELPFUL)) == TF_OK)
        rc = feedback_event(node, "feedback.sent", f.intro_id, f.connector_pk, f.helped);
    tf_proto_buf_free(&signed_f);
    tf_proto_buf_free(&rec);
    if (rc != TF_OK) {
        WHY("cannot send the feedback: %s", tf_strerror(rc));
        return rc;
    }
    char hex[65], tid[TF_PROTO_TEXT_ID_SIZE];
    sodium_bin2hex(hex, sizeof hex, f.intro_id, 32);
    tf_proto_text_id_encode(f.connector_pk, tid);
    tf_proto_mp_write_map(w, 3);
    tf_proto_mp_write_cstr(w, "id");
    tf_proto_mp_write_cstr(w, hex);
    tf_proto_mp_write_cstr(w, "connector");
    tf_proto_mp_write_cstr(w, tid);
    tf_proto_mp_write_cstr(w, "helped");
    tf_proto_mp_write_bool(w, f.helped);
    return TF_OK;
}

int tf_node_request_receive(struct tf_node *node, uint16_t type, const uint8_t from_pk[32],
                            const uint8_t *body, size_t len)
{
    switch (type) {
    case TF_PROTO_MSG_TYPE_REQUEST:
        return on_request(node, from_pk, body, len);
    case TF_PROTO_MSG_TYPE_REQUEST_CLOSE:
        return on_request_close(node, from_pk, body, len);
    case TF_PROTO_MSG_TYPE_FEEDBACK:
        return on_feedback(node, from_pk, body, len);
    default:
        return TF_PROTO_ACK_REASON_UNSUPPORTED;
    }
}

int tf_node_request_envelope_done(struct tf_node *node, const uint8_t msg_id[16], int reason)
{
    uint8_t k[17] = {'m'};
    struct tf_proto_buf v = {0};
    memcpy(k + 1, msg_id, 16);
    int rc = tf_node_store_kv_get(node->store, TF_NODE_STORE_REQUEST_INDEX, k, sizeof k, &v);
    if (rc == TF_E_NOT_FOUND)
        return TF_OK;
    if (rc == TF_OK)
        rc = tf_node_store_kv_del(node->store, TF_NODE_STORE_REQUEST_INDEX, k, sizeof k);
    struct req r;
    if (rc == TF_OK && reason >= 0 && v.len == 32 && (rc = req_load(node, v.data, &r)) == TF_OK) {
        char hex[17];
        sodium_bin2hex(hex, sizeof hex, r.id, 8);
        rc = req_run(node, &r, TF_PROTO_REQ_EV_REFUSED, tf_node_now(node), "connector");
        if (rc == TF_OK)
            tf_node_log(TF_NODE_LOG_INFO, "request", "%s refused by the connector's node: %s", hex,
                        tf_proto_ack_reason_name((enum tf_proto_ack_reason)reason));
        else if (rc == TF_E_BAD_STATE || rc == TF_E_EXPIRED)
            rc = TF_OK; /* closed meanwhile: nothing to tell */
        req_free(&r);
    }
    tf_proto_buf_free(&v);
    return rc == TF_E_NOT_FOUND ? TF_OK : rc;
}

/* The intro hooks. */

static int resolve(struct tf_node *node, const msgpack_object *args, const char *key,
                   uint8_t id[32], char *why, size_t why_cap);

int tf_node_request_check_answer(struct tf_node *node, const msgpack_object *args,
                                 const uint8_t a[32], const uint8_t b[32], int *side,
                                 uint8_t request_id[32], char *why, size_t why_cap)
{
    const char *p;
    size_t n;
    if (tf_proto_ctl_get_str(args, "answers", &p, &n) == TF_E_NOT_FOUND)
        return TF_E_NOT_FOUND;
    struct req r;
    int rc = resolve(node, args, "answers", request_id, why, why_cap);
    if (rc != TF_OK)
        return rc == TF_E_NOT_FOUND ? TF_E_BAD_VALUE : rc;
    if ((rc = req_load_visible(node, request_id, &r)) != TF_OK) {
        WHY("cannot read the request: %s", tf_strerror(rc));
        return rc == TF_E_NOT_FOUND ? TF_E_BAD_VALUE : rc;
    }
    uint64_t now = tf_node_now(node);
    if (r.m.role != TF_PROTO_REQ_ROLE_RECEIVED) {
        WHY("that is a request you sent; only its connector answers it");
        rc = TF_E_BAD_STATE;
    } else if (r.m.state != TF_PROTO_REQ_OPEN || now > r.q.expires) {
        WHY("that request is %s; only an open request can be answered",
            r.m.state == TF_PROTO_REQ_OPEN ? "expired" : tf_proto_req_state_name(r.m.state));
        rc = TF_E_BAD_STATE;
    } else if (sodium_memcmp(r.q.asker_pk, a, 32) == 0) {
        *side = 0;
    } else if (sodium_memcmp(r.q.asker_pk, b, 32) == 0) {
        *side = 1;
    } else {
        WHY("the request's asker is neither A nor B");
        rc = TF_E_BAD_VALUE;
    }
    req_free(&r);
    return rc;
}

int tf_node_request_topic(struct tf_node *node, const msgpack_object *args, char *topic, size_t cap,
                          char *why, size_t why_cap)
{
    const char *p;
    size_t n;
    uint8_t id[32];
    struct req r;
    if (tf_proto_ctl_get_str(args, "answers", &p, &n) == TF_E_NOT_FOUND)
        return TF_E_NOT_FOUND;
    int rc = resolve(node, args, "answers", id, why, why_cap);
    if (rc != TF_OK)
        return rc == TF_E_NOT_FOUND ? TF_E_BAD_VALUE : rc;
    if ((rc = req_load_visible(node, id, &r)) != TF_OK) {
        WHY("cannot read the request: %s", tf_strerror(rc));
        return rc == TF_E_NOT_FOUND ? TF_E_BAD_VALUE : rc;
    }
    if (r.q.seeking.len >= cap) {
        rc = TF_E_TOO_LONG;
    } else {
        memcpy(topic, r.q.seeking.ptr, r.q.seeking.len);
        topic[r.q.seeking.len] = '\0';
    }
    req_free(&r);
    return rc;
}

int tf_node_request_answered(struct tf_node *node, const uint8_t request_id[32],
                             const uint8_t intro_id[32], int side, const char *by)
{
    struct req r;
    int rc = req_load(node, request_id, &r);
    if (rc != TF_OK)
        return rc;
    r.has_intro = true;
    memcpy(r.intro, intro_id, 32);
    rc = req_run(node, &r, TF_PROTO_REQ_EV_ANSWER, tf_node_now(node), by);
    if (rc == TF_OK) {
        uint8_t k[33] = {'i'}, v[33] = {(uint8_t)side};
        memcpy(k + 1, intro_id, 32);
        memcpy(v + 1, request_id, 32);
        rc = tf_node_store_kv_put(node->store, TF_NODE_STORE_REQUEST_INDEX, k, sizeof k, v,
                                  sizeof v);
    }
    req_free(&r);
    return rc;
}

int tf_node_request_fill_proposal(struct tf_node *node, const uint8_t intro_id[32], int side,
                                  struct tf_proto_proposal *p)
{
    uint8_t k[33] = {'i'};
    struct tf_proto_buf v = {0};
    memcpy(k + 1, intro_id, 32);
    p->has_request = false;
    int rc = tf_node_store_kv_get(node->store, TF_NODE_STORE_REQUEST_INDEX, k, sizeof k, &v);
    if (rc == TF_E_NOT_FOUND)
        return TF_OK;
    if (rc == TF_OK && v.len == 33 && v.data[0] == (uint8_t)side) {
        p->has_request = true;
        memcpy(p->request_id, v.data + 1, 32);
    } else if (rc == TF_OK && v.len != 33) {
        rc = TF_E_CORRUPT;
    }
    tf_proto_buf_free(&v);
    return rc;
}

int tf_node_request_on_proposal(struct tf_node *node, const struct tf_proto_proposal *p,
                                bool *answers)
{
    struct req r;
    char hex[17];
    *answers = false;
    if (!p->has_request)
        return TF_OK;
    sodium_bin2hex(hex, sizeof hex, p->request_id, 8);
    int rc = req_load(node, p->request_id, &r);
    if (rc == TF_E_NOT_FOUND) {
        tf_node_log(TF_NODE_LOG_WARN, "request",
                    "a proposal claims to answer request %s, which this node never made", hex);
        return TF_OK;
    }
    if (rc != TF_OK)
        return rc;
    if (r.m.role != TF_PROTO_REQ_ROLE_SENT ||
        sodium_memcmp(r.q.connector_pk, p->core.connector_pk, 32) != 0) {
        tf_node_log(TF_NODE_LOG_WARN, "request",
                    "a proposal claims to answer request %s, which is not this node's own "
                    "request to that connector",
                    hex);
        req_free(&r);
        return TF_OK;
    }
    r.has_intro = true;
    memcpy(r.intro, p->intro_id, 32);
    rc = req_run(node, &r, TF_PROTO_REQ_EV_ANSWERED, tf_node_now(node), "connector");
    if (rc == TF_OK) {
        *answers = true;
    } else if (rc == TF_E_BAD_STATE || rc == TF_E_EXPIRED) {
        tf_node_log(TF_NODE_LOG_WARN, "request",
                    "a proposal claims to answer request %s, which is %s: not an answer", hex,
                    rc == TF_E_EXPIRED ? "expired" : tf_proto_req_state_name(r.m.state));
        rc = TF_OK;
    }
    req_free(&r);
    return rc;
}

/* The sweep: steps each record whose due time has come with TICK. */

struct due {
    uint64_t now;
    uint8_t keys[SWEEP_BATCH][41];
    size_t n;
};

static int due_cb(const uint8_t *key, size_t klen, const uint8_t *val, size_t vlen, void *arg)
{
    (void)val;
    (void)vlen;
    struct due *d = arg;
    if (klen < 1 || key[0] != 'd')
        return 1;
    if (klen != 41)
        return 0;
    if (get_u64be(key + 1) > d->now)
        return 1; /* in time order: nothing later is due */
    memcpy(d->keys[d->n++], key, 41);
    return d->n == SWEEP_BATCH ? 1 : 0;
}

struct dkeys {
    uint8_t (*keys)[41];
    size_t n, cap;
};

static int dkeys_cb(const uint8_t *key, size_t klen, const uint8_t *val, size_t vlen, void *arg)
{
    (void)val;
    (void)vlen;
    struct dkeys *d = arg;
    if (klen < 1 || key[0] != 'd')
        return 1;
    if (klen != 41)
        return 0;
    if (d->n == d->cap && tf_node__grow((void **)&d->keys, &d->cap, d->n, sizeof d->keys[0]) != 0)
        return TF_E_NOMEM;
    memcpy(d->keys[d->n++], key, 41);
    return 0;
}

/* When request_retention_s differs from the one the 'd' keys were computed
 * with (a restart or SIGHUP changed it), recomputes every record's keys: a
 * raised retention would otherwise leave keys due whose TICK does nothing
 * (and that hold the sweep's batch), a lowered one records kept too long. */
static int rekey_if_retention_changed(struct tf_node *node)
{
    const uint8_t rk = 'R';
    uint8_t want[8];
    struct tf_proto_buf v = {0};
    put_u64be(node->config.request_retention_s, want);
    int rc = tf_node_store_kv_get(node->store, TF_NODE_STORE_REQUEST_INDEX, &rk, 1, &v);
    bool same = rc == TF_OK && v.len == 8 && memcmp(v.data, want, 8) == 0;
    tf_proto_buf_free(&v);
    if (same || (rc != TF_OK && rc != TF_E_NOT_FOUND))
        return rc == TF_E_NOT_FOUND ? TF_OK : rc;
    struct dkeys d = {NULL, 0, 0};
    const uint8_t kind = 'd';
    rc = tf_node_store_kv_foreach_from(node->store, TF_NODE_STORE_REQUEST_INDEX, &kind, 1, dkeys_cb,
                                       &d);
    if (rc == 1)
        rc = TF_OK;
    for (size_t i = 0; rc == TF_OK && i < d.n; i++) {
        struct req r;
        struct keyset cur;
        int lr = req_load(node, d.keys[i] + 9, &r);
        bool stale = lr != TF_OK;
        if (lr == TF_OK) {
            req_keys(node, &r, &cur);
            stale = !ks_has(&cur, d.keys[i], 41);
            if (stale)
                rc = ks_apply(node, NULL, &cur);
            req_free(&r);
        }
        if (rc == TF_OK && stale)
            rc = tf_node_store_kv_del(node->store, TF_NODE_STORE_REQUEST_INDEX, d.keys[i], 41);
    }
    free(d.keys);
    if (rc == TF_OK)
        rc = tf_node_store_kv_put(node->store, TF_NODE_STORE_REQUEST_INDEX, &rk, 1, want, 8);
    if (rc == TF_OK && d.n > 0) /* a node with no requests says nothing of them */
        tf_node_log(TF_NODE_LOG_INFO, "request", "request_retention_s is %llu: schedule redone",
                    (unsigned long long)node->config.request_retention_s);
    return rc;
}

static void sweep_timer_cb(uv_timer_t *t)
{
    struct tf_node *node = t->data;
    struct due d;
    d.now = tf_node_now(node);
    d.n = 0;
    const uint8_t kind = 'd';
    struct tf_node_savepoint sp = tf_node_savepoint(node);
    int rc = rekey_if_retention_changed(node);
    if (rc != TF_OK) {
        tf_node_rollback(node, sp);
        tf_node_log(TF_NODE_LOG_ERROR, "request", "cannot redo the schedule: %s", tf_strerror(rc));
    }
    rc = tf_node_store_kv_foreach_from(node->store, TF_NODE_STORE_REQUEST_INDEX, &kind, 1, due_cb,
                                       &d);
    if (rc != TF_OK && rc != 1) {
        tf_node_log(TF_NODE_LOG_ERROR, "request", "cannot read the schedule: %s", tf_strerror(rc));
        return;
    }
    for (size_t i = 0; i < d.n; i++) {
        struct req r;
        rc = req_load(node, d.keys[i] + 9, &r);
        if (rc == TF_E_NOT_FOUND || rc == TF_E_CORRUPT) {
            /* A key left by a record that is gone (or unreadable): dropped,
             * so that the sweep does not meet it again. */
            rc = tf_node_store_kv_del(node->store, TF_NODE_STORE_REQUEST_INDEX, d.keys[i], 41);
            if (rc != TF_OK)
                tf_node_log(TF_NODE_LOG_ERROR, "request", "cannot drop a schedule key: %s",
                            tf_strerror(rc));
            continue;
        }
        if (rc == TF_OK) {
            rc = req_run(node, &r, TF_PROTO_REQ_EV_TICK, d.now, "expiry");
            req_free(&r);
        }
        if (rc != TF_OK)
            tf_node_log(TF_NODE_LOG_ERROR, "request", "sweep failed for one request: %s",
                        tf_strerror(rc));
    }
}

int tf_node_request_start(struct tf_node *node)
{
    int rc = uv_timer_init(node->loop, &node->request_sweep);
    if (rc != 0)
        return rc;
    node->request_sweep.data = node;
    return uv_timer_start(&node->request_sweep, sweep_timer_cb, 0, SWEEP_MS);
}

void tf_node_request_stop(struct tf_node *node)
{
    if (node->request_sweep.loop != NULL && !uv_is_closing((uv_handle_t *)&node->request_sweep))
        uv_close((uv_handle_t *)&node->request_sweep, NULL);
}

/* Verbs. */

/* Resolves args[key]: a request id in hex, whole or a unique prefix of at
 * least 8 digits. */
static int resolve(struct tf_node *node, const msgpack_object *args, const char *key,
                   uint8_t id[32], char *why, size_t why_cap)
{
    return tf_node__resolve_hex_id(node, TF_NODE_STORE_REQUESTS, args, key, "request", id, why,
                                   why_cap);
}

static void write_text_id(struct tf_proto_mp_writer *w, const uint8_t pk[32])
{
    char tid[TF_PROTO_TEXT_ID_SIZE];
    tf_proto_text_id_encode(pk, tid);
    tf_proto_mp_write_cstr(w, tid);
}

static void write_req(struct tf_node *node, struct tf_proto_mp_writer *w, const struct req *r)
{
    char hex[65];
    const uint8_t *other = r->m.role == TF_PROTO_REQ_ROLE_SENT ? r->q.connector_pk : r->q.asker_pk;
    sodium_bin2hex(hex, sizeof hex, r->id, 32);
    tf_proto_mp_write_map(w, 14);
    tf_proto_mp_write_cstr(w, "id");
    tf_proto_mp_write_cstr(w, hex);
    tf_proto_mp_write_cstr(w, "role");
    tf_proto_mp_write_cstr(w, r->m.role == TF_PROTO_REQ_ROLE_SENT ? "sent" : "received");
    tf_proto_mp_write_cstr(w, "state");
    tf_proto_mp_write_cstr(w, tf_proto_req_state_name(r->m.state));
    tf_proto_mp_write_cstr(w, "asker");
    write_text_id(w, r->q.asker_pk);
    tf_proto_mp_write_cstr(w, "connector");
    write_text_id(w, r->q.connector_pk);
    tf_proto_mp_write_cstr(w, "alias");
    tf_node__write_alias(node, other, w);
    tf_proto_mp_write_cstr(w, "seeking");
    tf_proto_mp_write_text(w, r->q.seeking);
    tf_proto_mp_write_cstr(w, "note");
    tf_proto_mp_write_text(w, r->q.note);
    tf_proto_mp_write_cstr(w, "created");
    tf_proto_mp_write_uint(w, r->q.created);
    tf_proto_mp_write_cstr(w, "expires");
    tf_proto_mp_write_uint(w, r->q.expires);
    tf_proto_mp_write_cstr(w, "closed");
    tf_proto_mp_write_uint(w, r->m.closed);
    tf_proto_mp_write_cstr(w, "intro");
    if (r->has_intro) {
        sodium_bin2hex(hex, sizeof hex, r->intro, 32);
        tf_proto_mp_write_cstr(w, hex);
    } else {
        tf_proto_mp_write_nil(w);
    }
    tf_proto_mp_write_cstr(w, "stranger");
    tf_proto_mp_write_bool(w, r->stranger);
    tf_proto_mp_write_cstr(w, "decided_by");
    tf_proto_mp_write_cstr_or_nil(w, r->decided_by[0] ? r->decided_by : NULL);
}

static int verb_ask(struct tf_node *node, const msgpack_object *args, struct tf_proto_mp_writer *w,
                    char *why, size_t why_cap)
{
    struct tf_node_contact c = {0};
    struct req r;
    const char *p;
    size_t n;
    uint64_t expires_s = REQUEST_EXPIRES_DEFAULT_S;
    memset(&r, 0, sizeof r);
    int rc = tf_node__find_contact(node, args, "connector", &c, why, why_cap);
    if (rc != TF_OK)
        return rc;
    if (tf_proto_ctl_get_str(args, "seeking", &p, &n) != TF_OK ||
        !tf_proto_tag_is_valid((const uint8_t *)p, n)) {
        WHY("'seeking' must be a topic tag (1-64 of a-z, 0-9 and '-')");
        rc = TF_E_BAD_VALUE;
        goto out;
    }
    r.q.seeking = (struct tf_proto_bytes){(const uint8_t *)p, n};
    rc = tf_proto_ctl_get_str(args, "note", &p, &n);
    if (rc == TF_OK) {
        if (n > TF_PROTO_REQUEST_NOTE_MAX || !tf_proto_utf8_is_valid((const uint8_t *)p, n)) {
            WHY("the note must be UTF-8 text of at most %u bytes", TF_PROTO_REQUEST_NOTE_MAX);
            rc = TF_E_BAD_VALUE;
            goto out;
        }
        for (size_t i = 0; i < n; i++) {
            unsigned char ch = (unsigned char)p[i];
            if ((ch < 0x20 && ch != '\n' && ch != '\t') || ch == 0x7f) {
                WHY("the note contains control characters");
                rc = TF_E_BAD_VALUE;
                goto out;
            }
        }
        r.q.note = (struct tf_proto_bytes){(const uint8_t *)p, n};
    } else if (rc != TF_E_NOT_FOUND) {
        WHY("argument 'note' must be a string");
        rc = TF_E_BAD_REQUEST;
        goto out;
    }
    rc = tf_proto_ctl_get_uint(args, "expires_s", &expires_s);
    if ((rc != TF_OK && rc != TF_E_NOT_FOUND) || expires_s < 1 ||
        expires_s > TF_PROTO_REQUEST_EXPIRES_MAX_S) {
        WHY("argument 'expires_s' must be 1 to %u seconds", TF_PROTO_REQUEST_EXPIRES_MAX_S);
        rc = TF_E_BAD_VALUE;
        goto out;
    }
    if (c.blocked) {
        WHY("that contact is blocked");
        rc = TF_E_BAD_STATE;
        goto out;
    }
    uint64_t now = tf_node_now(node);
    memcpy(r.q.asker_pk, node->id.sign_pk, 32);
    memcpy(r.q.connector_pk, c.pk, 32);
    r.q.created = now;
    r.q.expires = now + expires_s;
    randombytes_buf(r.q.nonce, sizeof r.q.nonce);
    if ((rc = tf_proto_request_sign(&node->id, &r.q, &r.signed_req, r.id)) != TF_OK ||
        (rc = tf_proto_request_decode(r.signed_req.data, r.signed_req.len, &r.q)) != TF_OK) {
        WHY("cannot sign the request: %s", tf_strerror(rc));
        goto out;
    }
    r.m = (struct tf_proto_req){.role = TF_PROTO_REQ_ROLE_SENT, .expires = r.q.expires};
    r.received = now;
    if ((rc = req_run(node, &r, TF_PROTO_REQ_EV_CREATE, now, NULL)) != TF_OK) {
        WHY("cannot record the request: %s", tf_strerror(rc));
        goto out;
    }
    write_req(node, w, &r);
out:
    req_free(&r);
    tf_node_contact_deinit(&c);
    return rc;
}

struct list {
    struct tf_node *node;
    struct tf_proto_mp_writer *items;
    uint32_t n, limit;
    bool has_after;
    uint8_t after[32];
};

static int list_cb(const uint8_t *key, size_t klen, const uint8_t *val, size_t vlen, void *arg)
{
    struct list *l = arg;
    struct req r;
    if (klen != 32 || (l->has_after && memcmp(key, l->after, 32) <= 0))
        return 0;
    int rc = req_decode(key, val, vlen, &r);
    if (rc == TF_E_CORRUPT)
        return 0; /* skipped, as lists skip corrupt records */
    if (rc != TF_OK)
        return rc;
    if (r.hidden) {
        req_free(&r);
        return 0;
    }
    write_req(l->node, l->items, &r);
    req_free(&r);
    return ++l->n == l->limit ? 1 : 0;
}

/* request.list: a page of at most `limit` requests in id order, those after
 * the id `after` (docs/PROTOCOL.md §13 listing page). */
static int verb_list(struct tf_node *node, const msgpack_object *args, struct tf_proto_mp_writer *w,
                     char *why, size_t why_cap)
{
    struct tf_proto_mp_writer items;
    struct tf_proto_buf b;
    struct list l = {.node = node, .items = &items, .n = 0};
    uint64_t limit = TF_NODE_VERBS_PAGE_DEFAULT;
    const char *p;
    size_t plen;
    int rc = tf_proto_ctl_get_uint(args, "limit", &limit);
    if ((rc != TF_OK && rc != TF_E_NOT_FOUND) || limit < 1 || limit > TF_NODE_VERBS_PAGE_MAX) {
        WHY("argument 'limit' must be a whole number from 1 to %d", TF_NODE_VERBS_PAGE_MAX);
        return rc == TF_E_TYPE ? TF_E_BAD_REQUEST : TF_E_BAD_VALUE;
    }
    l.limit = (uint32_t)limit;
    rc = tf_proto_ctl_get_str(args, "after", &p, &plen);
    if (rc == TF_OK) {
        if (plen != 64 || sodium_hex2bin(l.after, 32, p, plen, NULL, NULL, NULL) != 0) {
            WHY("argument 'after' must be a request id (64 hex digits)");
            return TF_E_BAD_VALUE;
        }
        l.has_after = true;
    } else if (rc != TF_E_NOT_FOUND) {
        WHY("argument 'after' must be a string");
        return TF_E_BAD_REQUEST;
    }
    tf_proto_mp_writer_init(&items);
    rc = l.has_after ? tf_node_store_kv_foreach_from(node->store, TF_NODE_STORE_REQUESTS, l.after,
                                                     32, list_cb, &l)
                     : tf_node_store_kv_foreach(node->store, TF_NODE_STORE_REQUESTS, list_cb, &l);
    if (rc == 1)
        rc = TF_OK;
    if (rc == TF_OK)
        rc = tf_proto_mp_writer_finish(&items, &b);
    else
        tf_proto_mp_writer_deinit(&items);
    if (rc != TF_OK) {
        WHY("cannot read the requests: %s", tf_strerror(rc));
        return rc;
    }
    tf_proto_mp_write_array(w, l.n);
    tf_proto_mp_write_raw(w, b.data, b.len);
    tf_proto_buf_free(&b);
    return TF_OK;
}

/* request.show, request.decline, request.withdraw. */
static int verb_one(struct tf_node *node, const msgpack_object *args, struct tf_proto_mp_writer *w,
                    char *why, size_t why_cap, int which)
{
    uint8_t id[32];
    struct req r;
    int rc = resolve(node, args, "id", id, why, why_cap);
    if (rc != TF_OK)
        return rc;
    if ((rc = req_load_visible(node, id, &r)) != TF_OK) {
        WHY("cannot read the request: %s", tf_strerror(rc));
        return rc;
    }
    if (which != 0) {
        enum tf_proto_req_event ev =
            which == 1 ? TF_PROTO_REQ_EV_DECLINE : TF_PROTO_REQ_EV_WITHDRAW;
        rc = req_run(node, &r, ev, tf_node_now(node), "owner");
        if (rc == TF_E_BAD_STATE && which == 1 && r.m.role == TF_PROTO_REQ_ROLE_SENT)
            WHY("this is your own request: withdraw it instead");
        else if (rc == TF_E_BAD_STATE && which == 2 && r.m.role == TF_PROTO_REQ_ROLE_RECEIVED)
            WHY("this request was sent to you: decline it instead");
        else if (rc == TF_E_BAD_STATE)
            WHY("this request is %s", tf_proto_req_state_name(r.m.state));
        else if (rc == TF_E_EXPIRED)
            WHY("this request has expired");
        else if (rc != TF_OK)
            WHY("cannot change the request: %s", tf_strerror(rc));
    }
    if (rc == TF_OK)
        write_req(node, w, &r);
    req_free(&r);
    return rc;
}

/* suggest: pairs of contacts where one seeks what the other offers
 * (docs/CONTROL.md "Suggestions").  Read-only. */

#define SUGGEST_LIMIT_DEFAULT 50
#define SUGGEST_LIMIT_MAX 1000
#define SUGGEST_CONTACTS_MAX 20000
#define SUGGEST_DECLINED_WINDOW_S (90u * 86400u)

struct sg_contact {
    uint8_t pk[32];
    char tid[TF_PROTO_TEXT_ID_SIZE];
    char alias[TF_NODE_ALIAS_MAX + 1];
    unsigned trust;
    uint64_t issued;
    size_t n_offers, n_seeks;
    char offers[TF_PROTO_CARD_TAGS_MAX][TF_PROTO_TAG_MAX + 1];
    char seeks[TF_PROTO_CARD_TAGS_MAX][TF_PROTO_TAG_MAX + 1];
};

struct sg_request {
    uint8_t asker[32];
    char seeking[TF_PROTO_TAG_MAX + 1];
    uint8_t id[32];
};

struct sg_pick {
    uint64_t score;
    size_t seeker, offerer;
    const char *topic;
    const struct sg_request *req;
};

struct sg {
    struct tf_node *node;
    uint64_t now;
    struct sg_contact *c;
    size_t n, cap;
    struct sg_request *r;
    size_t nr, rcap;
    bool too_many;
};

static int sg_contact_cb(const struct tf_node_contact *c, void *arg)
{
    struct sg *g = arg;
    if (c->blocked)
        return 0;
    if (g->n == SUGGEST_CONTACTS_MAX) {
        g->too_many = true;
        return 1;
    }
    if (g->n == g->cap && tf_node__grow((void **)&g->c, &g->cap, g->n, sizeof *g->c) != TF_OK)
        return TF_E_NOMEM;
    struct sg_contact *s = &g->c[g->n];
    memset(s, 0, sizeof *s);
    memcpy(s->pk, c->pk, 32);
    tf_proto_text_id_encode(c->pk, s->tid);
    snprintf(s->alias, sizeof s->alias, "%s", c->alias);
    s->trust = (unsigned)c->trust;
    s->issued = c->fields.issued;
    s->n_offers = c->fields.n_offers;
    s->n_seeks = c->fields.n_seeks;
    for (size_t i = 0; i < s->n_offers; i++)
        memcpy(s->offers[i], c->fields.offers[i].ptr, c->fields.offers[i].len);
    for (size_t i = 0; i < s->n_seeks; i++)
        memcpy(s->seeks[i], c->fields.seeks[i].ptr, c->fields.seeks[i].len);
    g->n++;
    return 0;
}

static int sg_request_cb(const uint8_t *key, size_t klen, const uint8_t *val, size_t vlen,
                         void *arg)
{
    struct sg *g = arg;
    struct req r;
    if (klen != 32 || req_decode(key, val, vlen, &r) != TF_OK)
        return 0;
    if (r.m.role == TF_PROTO_REQ_ROLE_RECEIVED && r.m.state == TF_PROTO_REQ_OPEN && !r.hidden &&
        g->now <= r.q.expires) {
        if (g->nr == g->rcap && tf_node__grow((void **)&g->r, &g->rcap, g->nr, sizeof *g->r) != 0) {
            req_free(&r);
            return TF_E_NOMEM;
        }
        struct sg_request *q = &g->r[g->nr++];
        memset(q, 0, sizeof *q);
        memcpy(q->asker, r.q.asker_pk, 32);
        memcpy(q->seeking, r.q.seeking.ptr, r.q.seeking.len);
        memcpy(q->id, r.id, 32);
    }
    req_free(&r);
    return 0;
}

/* What a card's issue time adds to the score: fresh cards first. */
static uint64_t sg_recency(uint64_t now, uint64_t issued)
{
    uint64_t age = now > issued ? now - issued : 0;
    return age <= 30u * 86400u ? 5 : age <= 180u * 86400u ? 2 : 0;
}

/* True if a ranks before b. */
static bool sg_before(const struct sg *g, const struct sg_pick *a, const struct sg_pick *b)
{
    if (a->score != b->score)
        return a->score > b->score;
    int t = strcmp(a->topic, b->topic);
    if (t != 0)
        return t < 0;
    t = strcmp(g->c[a->seeker].tid, g->c[b->seeker].tid);
    if (t != 0)
        return t < 0;
    return strcmp(g->c[a->offerer].tid, g->c[b->offerer].tid) < 0;
}

static void write_name(struct tf_proto_mp_writer *w, const struct sg_contact *c)
{
    tf_proto_mp_write_cstr(w, c->alias[0] ? c->alias : c->tid);
}

static int verb_suggest(struct tf_node *node, const msgpack_object *args,
                        struct tf_proto_mp_writer *w, char *why, size_t why_cap)
{
    struct sg g = {.node = node, .now = tf_node_now(node)};
    struct sg_pick *top = NULL;
    uint64_t limit = SUGGEST_LIMIT_DEFAULT;
    const char *topic = NULL, *p;
    size_t tlen = 0, n_top = 0;
    int for_idx = -1;
    uint8_t for_pk[32];
    bool has_for = false;
    int rc = tf_proto_ctl_get_uint(args, "limit", &limit);
    if ((rc != TF_OK && rc != TF_E_NOT_FOUND) || limit < 1 || limit > SUGGEST_LIMIT_MAX) {
        WHY("argument 'limit' must be 1 to %u", SUGGEST_LIMIT_MAX);
        return TF_E_BAD_VALUE;
    }
    if (tf_proto_ctl_get_str(args, "topic", &topic, &tlen) == TF_OK &&
        !tf_proto_tag_is_valid((const uint8_t *)topic, tlen)) {
        WHY("'topic' must be a tag (1-64 of a-z, 0-9 and '-')");
        return TF_E_BAD_VALUE;
    }
    size_t plen;
    if (tf_proto_ctl_get_str(args, "for", &p, &plen) == TF_OK) {
        struct tf_node_contact fc = {0};
        if ((rc = tf_node__find_contact(node, args, "for", &fc, why, why_cap)) != TF_OK)
            return rc;
        memcpy(for_pk, fc.pk, 32);
        tf_node_contact_deinit(&fc);
        has_for = true;
    }
    if ((rc = tf_node_store_contact_foreach(node->store, sg_contact_cb, &g)) != TF_OK && rc != 1)
        goto out;
    if ((rc = tf_node_store_kv_foreach(node->store, TF_NODE_STORE_REQUESTS, sg_request_cb, &g)) !=
        TF_OK)
        goto out;
    for (size_t i = 0; has_for && i < g.n; i++)
        if (memcmp(g.c[i].pk, for_pk, 32) == 0)
            for_idx = (int)i;
    if (has_for && for_idx < 0) { /* blocked */
        rc = TF_OK;
        g.n = 0;
    }
    top = calloc((size_t)limit, sizeof *top);
    if (top == NULL) {
        rc = TF_E_NOMEM;
        goto out;
    }
    uint64_t declined_since =
        g.now > SUGGEST_DECLINED_WINDOW_S ? g.now - SUGGEST_DECLINED_WINDOW_S : 0;
    rc = TF_OK;
    for (size_t x = 0; rc == TF_OK && x < g.n; x++)
        for (size_t k = 0; rc == TF_OK && k < g.c[x].n_seeks; k++) {
            const char *t = g.c[x].seeks[k];
            if (topic != NULL && (strlen(t) != tlen || memcmp(t, topic, tlen) != 0))
                continue;
            const struct sg_request *req = NULL;
            for (size_t i = 0; i < g.nr && req == NULL; i++)
                if (memcmp(g.r[i].asker, g.c[x].pk, 32) == 0 && strcmp(g.r[i].seeking, t) == 0)
                    req = &g.r[i];
            for (size_t y = 0; rc == TF_OK && y < g.n; y++) {
                if (y == x || (for_idx >= 0 && (size_t)for_idx != x && (size_t)for_idx != y))
                    continue;
                bool offers = false;
                for (size_t j = 0; j < g.c[y].n_offers && !offers; j++)
                    offers = strcmp(g.c[y].offers[j], t) == 0;
                if (!offers)
                    continue;
                struct sg_pick pick = {
                    .score = (req ? 100u : 0u) + 10u * (g.c[x].trust + g.c[y].trust) +
                             sg_recency(g.now, g.c[x].issued) + sg_recency(g.now, g.c[y].issued),
                    .seeker = x,
                    .offerer = y,
                    .topic = t,
                    .req = req};
                size_t at = n_top;
                while (at > 0 && sg_before(&g, &pick, &top[at - 1]))
                    at--;
                if (at >= limit)
                    continue;
                /* Only a pair that would be listed is looked up. */
                enum tf_node_intro_pair st;
                if ((rc = tf_node_intro_pair_status(node, g.c[x].pk, g.c[y].pk, declined_since,
                                                    &st)) != TF_OK)
                    break;
                if (st != TF_NODE_INTRO_PAIR_NONE)
                    continue;
                size_t last = n_top < limit ? n_top : (size_t)limit - 1;
                memmove(&top[at + 1], &top[at], (last - at) * sizeof *top);
                top[at] = pick;
                if (n_top < limit)
                    n_top++;
            }
        }
    if (rc != TF_OK)
        goto out;
    tf_proto_mp_write_array(w, (uint32_t)n_top);
    for (size_t i = 0; i < n_top; i++) {
        const struct sg_contact *x = &g.c[top[i].seeker], *y = &g.c[top[i].offerer];
        char cmd[512], hex[65] = "";
        if (top[i].req != NULL)
            sodium_bin2hex(hex, sizeof hex, top[i].req->id, 32);
        snprintf(cmd, sizeof cmd, "twofold propose %s %s --topic %s%s%.16s",
                 x->alias[0] ? x->alias : x->tid, y->alias[0] ? y->alias : y->tid, top[i].topic,
                 top[i].req ? " --answers " : "", hex);
        tf_proto_mp_write_map(w, 9);
        tf_proto_mp_write_cstr(w, "score");
        tf_proto_mp_write_uint(w, top[i].score);
        tf_proto_mp_write_cstr(w, "topic");
        tf_proto_mp_write_cstr(w, top[i].topic);
        tf_proto_mp_write_cstr(w, "seeker");
        tf_proto_mp_write_cstr(w, x->tid);
        tf_proto_mp_write_cstr(w, "seeker_name");
        write_name(w, x);
        tf_proto_mp_write_cstr(w, "offerer");
        tf_proto_mp_write_cstr(w, y->tid);
        tf_proto_mp_write_cstr(w, "offerer_name");
        write_name(w, y);
        tf_proto_mp_write_cstr(w, "request");
        tf_proto_mp_write_cstr_or_nil(w, top[i].req ? hex : NULL);
        tf_proto_mp_write_cstr(w, "trust");
        tf_proto_mp_write_uint(w, x->trust + y->trust);
        tf_proto_mp_write_cstr(w, "command");
        tf_proto_mp_write_cstr(w, cmd);
    }
    if (g.too_many)
        tf_node_log(TF_NODE_LOG_WARN, "request", "suggest looked at the first %u contacts only",
                    SUGGEST_CONTACTS_MAX);
out:
    if (rc != TF_OK)
        WHY("cannot make suggestions: %s", tf_strerror(rc));
    free(top);
    free(g.c);
    free(g.r);
    return rc;
}

int tf_node_request_verb(struct tf_node *node, const char *verb, size_t verb_len,
                         const msgpack_object *args, struct tf_proto_mp_writer *w, char *why,
                         size_t why_cap, bool *handled)
{
    static const char *const names[] = {"request.ask",     "request.list",     "request.show",
                                        "request.decline", "request.withdraw", "suggest",
                                        "feedback.send"};
    int which = -1;
    for (int i = 0; i < (int)(sizeof names / sizeof names[0]); i++)
        if (strlen(names[i]) == verb_len && memcmp(names[i], verb, verb_len) == 0)
            which = i;
    *handled = which >= 0;
    switch (which) {
    case 0:
        return verb_ask(node, args, w, why, why_cap);
    case 1:
        return verb_list(node, args, w, why, why_cap);
    case 2:
    case 3:
    case 4:
        return verb_one(node, args, w, why, why_cap, which - 2);
    case 5:
        return verb_suggest(node, args, w, why, why_cap);
    case 6:
        return verb_feedback(node, args, w, why, why_cap);
    default:
        return TF_E_UNKNOWN_VERB;
    }
}
