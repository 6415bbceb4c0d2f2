/* SPDX-License-Identifier: MIT */
#include "node/mailbox.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>
#include <uv.h>

#include "node/contact.h"
#include "node/delivery.h"
#include "node/internal.h"
#include "node/log.h"
#include "node/net.h"
#include "node/node.h"
#include "node/profile.h"
#include "node/store.h"
#include "proto/card.h"
#include "proto/ctl.h"
#include "proto/envelope.h"

#define WHY(...) snprintf(why, why_cap, __VA_ARGS__)

#define PK_LEN 32
#define ID_LEN TF_PROTO_MSG_ID_LEN
#define ENV_KEY_LEN (PK_LEN + ID_LEN)
#define EXP_KEY_LEN (8 + ENV_KEY_LEN)
#define TENANT_FIELDS 6
#define ENV_FIELDS 4
/* Pushes in flight to one tenant: the tenant ACKs each after its commit. */
#define PUSH_WINDOW 16
#define READY_MAX 64
#define SWEEP_BATCH 1000
#define SWEEP_PERIOD_MAX_S 600
#define DIAL_TICK_MS 1000

struct tenant {
    uint64_t quota_bytes, quota_envs, added, last_seen, bytes, envs;
};

/* An envelope pushed to a tenant and not yet acknowledged. */
struct push {
    struct push *next;
    uint8_t tenant[PK_LEN];
    uint8_t msg_id[ID_LEN];
    struct tf_node_link *link;
};

/* A push is answered (or dropped): its slot on its link frees. */
static void push_settled(const struct push *p)
{
    uint32_t n = tf_node_link_in_flight(p->link);
    tf_node_link_set_in_flight(p->link, n > 0 ? n - 1 : 0);
}

/* The tenant side: one of the mailboxes the own card names. */
struct own_mailbox {
    uint8_t pk[PK_LEN];
    uint32_t failures;
    uint64_t next_ms; /* next dial no sooner than this (loop clock) */
    char last_error[96];
};

/* Test hook (TWOFOLD_TEST_MAILBOX, builds with TF_TEST_HOOKS only): a
 * hostile mailbox for the tests, as a set of misbehaviours. */
enum hostile {
    HOSTILE_MUTE = 1 << 0,     /* never answer an UPLOAD (and store nothing) */
    HOSTILE_DUP = 1 << 1,      /* push every envelope twice */
    HOSTILE_REPLAY = 1 << 2,   /* never delete: push again on each new link */
    HOSTILE_REORDER = 1 << 3,  /* push the newest first */
    HOSTILE_TRUNCATE = 1 << 4, /* also push a truncated copy */
    HOSTILE_FORGE = 1 << 5,    /* also push a copy with its last byte changed */
};

struct tf_node_mailbox {
    struct tf_node *node;
    unsigned hostile;
    uv_timer_t sweep;
    uv_timer_t dial;
    int open_handles;
    bool closing;
    struct push *pushes;
    uint8_t ready[READY_MAX][PK_LEN]; /* tenants to push to at the next run */
    size_t n_ready;
    bool all_ready; /* too many: look at every connected tenant */
    struct own_mailbox own[TF_PROTO_CARD_MAILBOXES_MAX];
};

static void store_be64(uint8_t *p, uint64_t v)
{
    for (int i = 7; i >= 0; i--) {
        p[i] = (uint8_t)v;
        v >>= 8;
    }
}

static uint64_t load_be64(const uint8_t *p)
{
    uint64_t v = 0;
    for (int i = 0; i < 8; i++)
        v = v << 8 | p[i];
    return v;
}

/* Records. */

static int tenant_encode(const struct tenant *t, struct tf_proto_buf *out)
{
    struct tf_proto_mp_writer w;
    tf_proto_mp_writer_init(&w);
    tf_proto_mp_write_array(&w, TENANT_FIELDS);
    tf_proto_mp_write_uint(&w, t->quota_bytes);
    tf_proto_mp_write_uint(&w, t->quota_envs);
    tf_proto_mp_write_uint(&w, t->added);
    tf_proto_mp_write_uint(&w, t->last_seen);
    tf_proto_mp_write_uint(&w, t->bytes);
    tf_proto_mp_write_uint(&w, t->envs);
    return tf_proto_mp_writer_finish(&w, out);
}

static int tenant_decode(const uint8_t *p, size_t n, struct tenant *t)
{
    struct tf_proto_mp_reader r;
    tf_proto_mp_reader_init(&r, p, n);
    int rc = tf_proto_mp_read_array_exact(&r, TENANT_FIELDS);
    uint64_t *f[] = {&t->quota_bytes, &t->quota_envs, &t->added,
                     &t->last_seen,   &t->bytes,      &t->envs};
    for (size_t i = 0; i < TENANT_FIELDS && rc == TF_OK; i++)
        rc = tf_proto_mp_read_uint(&r, f[i]);
    if (rc == TF_OK)
        rc = tf_proto_mp_read_end(&r);
    return rc == TF_OK ? TF_OK : TF_E_CORRUPT;
}

static int tenant_get(struct tf_node *node, const uint8_t pk[PK_LEN], struct tenant *t)
{
    struct tf_proto_buf v = {0};
    int rc = tf_node_store_kv_get(node->store, TF_NODE_STORE_MBOX_TENANTS, pk, PK_LEN, &v);
    if (rc == TF_OK)
        rc = tenant_decode(v.data, v.len, t);
    tf_proto_buf_free(&v);
    return rc;
}

static int tenant_put(struct tf_node *node, const uint8_t pk[PK_LEN], const struct tenant *t)
{
    struct tf_proto_buf v;
    int rc = tenant_encode(t, &v);
    if (rc == TF_OK) {
        rc = tf_node_store_kv_put(node->store, TF_NODE_STORE_MBOX_TENANTS, pk, PK_LEN, v.data,
                                  v.len);
        tf_proto_buf_free(&v);
    }
    return rc;
}

/* A held envelope's record; envelope views into the decoded bytes. */
struct held {
    uint8_t uploader[PK_LEN];
    uint64_t received, held_until;
    struct tf_proto_bytes envelope;
};

static int held_decode(const uint8_t *p, size_t n, struct held *h)
{
    struct tf_proto_mp_reader r;
    tf_proto_mp_reader_init(&r, p, n);
    int rc = tf_proto_mp_read_array_exact(&r, ENV_FIELDS);
    if (rc == TF_OK)
        rc = tf_proto_mp_read_bin_fixed(&r, h->uploader, PK_LEN);
    if (rc == TF_OK)
        rc = tf_proto_mp_read_uint(&r, &h->received);
    if (rc == TF_OK)
        rc = tf_proto_mp_read_uint(&r, &h->held_until);
    if (rc == TF_OK)
        rc = tf_proto_mp_read_bin(&r, 1, TF_PROTO_ENVELOPE_MAX, &h->envelope);
    if (rc == TF_OK)
        rc = tf_proto_mp_read_end(&r);
    return rc == TF_OK ? TF_OK : TF_E_CORRUPT;
}

static void env_key(const uint8_t tenant[PK_LEN], const uint8_t msg_id[ID_LEN],
                    uint8_t key[ENV_KEY_LEN])
{
    memcpy(key, tenant, PK_LEN);
    memcpy(key + PK_LEN, msg_id, ID_LEN);
}

static void exp_key(uint64_t until, const uint8_t tenant[PK_LEN], const uint8_t msg_id[ID_LEN],
                    uint8_t key[EXP_KEY_LEN])
{
    store_be64(key, until);
    env_key(tenant, msg_id, key + 8);
}

/* Deletes a held envelope, its expiry key and its share of the tenant's
 * counts, in the write transaction.  TF_E_NOT_FOUND if it is not held. */
static int held_delete(struct tf_node *node, const uint8_t tenant[PK_LEN],
                       const uint8_t msg_id[ID_LEN])
{
    uint8_t key[ENV_KEY_LEN], ekey[EXP_KEY_LEN];
    struct tf_proto_buf v = {0};
    struct held h;
    struct tenant t;
    env_key(tenant, msg_id, key);
    int rc = tf_node_store_kv_get(node->store, TF_NODE_STORE_MBOX_ENVS, key, sizeof key, &v);
    if (rc != TF_OK)
        return rc;
    /* A row that does not decode loses its expiry key later: the sweep
     * finds the key without its row and drops it. */
    bool counted = held_decode(v.data, v.len, &h) == TF_OK;
    size_t len = counted ? h.envelope.len : 0;
    if (counted) {
        exp_key(h.held_until, tenant, msg_id, ekey);
        rc = tf_node_store_kv_del(node->store, TF_NODE_STORE_MBOX_EXPIRY, ekey, sizeof ekey);
        if (rc == TF_E_NOT_FOUND)
            rc = TF_OK;
    }
    tf_proto_buf_free(&v);
    if (rc == TF_OK)
        rc = tf_node_store_kv_del(node->store, TF_NODE_STORE_MBOX_ENVS, key, sizeof key);
    if (rc == TF_OK && tenant_get(node, tenant, &t) == TF_OK) {
        t.envs -= t.envs > 0 ? 1 : 0;
        t.bytes -= t.bytes >= len ? len : t.bytes;
        rc = tenant_put(node, tenant, &t);
    }
    return rc;
}

/* The module. */

static uint64_t loop_ms(const struct tf_node_mailbox *mb)
{
    return uv_now(mb->node->loop);
}

static void mark_ready(struct tf_node_mailbox *mb, const uint8_t pk[PK_LEN])
{
    for (size_t i = 0; i < mb->n_ready; i++)
        if (memcmp(mb->ready[i], pk, PK_LEN) == 0)
            return;
    if (mb->n_ready < READY_MAX)
        memcpy(mb->ready[mb->n_ready++], pk, PK_LEN);
    else
        mb->all_ready = true;
}

static size_t pushes_to(const struct tf_node_mailbox *mb, const uint8_t tenant[PK_LEN])
{
    size_t n = 0;
    for (const struct push *p = mb->pushes; p != NULL; p = p->next)
        n += memcmp(p->tenant, tenant, PK_LEN) == 0;
    return n;
}

static bool pushed(const struct tf_node_mailbox *mb, const uint8_t tenant[PK_LEN],
                   const uint8_t msg_id[ID_LEN])
{
    for (const struct push *p = mb->pushes; p != NULL; p = p->next)
        if (memcmp(p->tenant, tenant, PK_LEN) == 0 && memcmp(p->msg_id, msg_id, ID_LEN) == 0)
            return true;
    return false;
}

/* What one tenant's walk collects to push: copies of up to `room` held
 * envelopes not in flight. */
struct to_push {
    struct tf_node_mailbox *mb;
    const uint8_t *tenant;
    size_t n, room;
    struct push_item {
        uint8_t msg_id[ID_LEN];
        struct tf_proto_buf env;
    } items[PUSH_WINDOW];
};

static int collect_cb(const uint8_t *key, size_t klen, const uint8_t *val, size_t vlen, void *arg)
{
    struct to_push *x = arg;
    if (klen != ENV_KEY_LEN || memcmp(key, x->tenant, PK_LEN) != 0)
        return 1; /* past this tenant's rows */
    if (pushed(x->mb, x->tenant, key + PK_LEN))
        return 0;
    struct held h;
    if (held_decode(val, vlen, &h) != TF_OK)
        return 0; /* a corrupt row: left for the expiry sweep or unhost */
    uint8_t *copy = malloc(h.envelope.len);
    if (copy == NULL)
        return TF_E_NOMEM;
    memcpy(copy, h.envelope.ptr, h.envelope.len);
    memcpy(x->items[x->n].msg_id, key + PK_LEN, ID_LEN);
    x->items[x->n].env.data = copy;
    x->items[x->n].env.len = h.envelope.len;
    return ++x->n == x->room ? 1 : 0;
}

/* The test hook's extra pushes of env (duplicate, truncated, forged). */
static int push_hostile(struct tf_node_mailbox *mb, struct tf_node_link *link,
                        const struct tf_proto_buf *env)
{
    struct tf_proto_buf msg, copy = {NULL, 0};
    int rc = TF_OK;
    if ((mb->hostile & HOSTILE_DUP) &&
        (rc = tf_proto_link_envelope_as(TF_PROTO_LINK_PUSH, env->data, env->len, &msg)) == TF_OK) {
        rc = tf_node_net_send(link, &msg, true);
        tf_proto_buf_free(&msg);
    }
    if (rc == TF_OK && (mb->hostile & (HOSTILE_TRUNCATE | HOSTILE_FORGE)) &&
        (copy.data = malloc(env->len)) == NULL)
        rc = TF_E_NOMEM;
    for (int k = 0; k < 2 && rc == TF_OK && copy.data != NULL; k++) {
        unsigned bit = k == 0 ? HOSTILE_TRUNCATE : HOSTILE_FORGE;
        if (!(mb->hostile & bit))
            continue;
        memcpy(copy.data, env->data, env->len);
        copy.len = k == 0 ? env->len / 2 : env->len;
        if (k == 1)
            copy.data[env->len - 1] ^= 0x01;
        if ((rc = tf_proto_link_envelope_as(TF_PROTO_LINK_PUSH, copy.data, copy.len, &msg)) ==
            TF_OK) {
            rc = tf_node_net_send(link, &msg, true);
            tf_proto_buf_free(&msg);
        }
    }
    free(copy.data);
    return rc;
}

/* Pushes what is held for tenant if its link is up and speaks mailbox. */
static int push_tenant(struct tf_node_mailbox *mb, const uint8_t tenant[PK_LEN])
{
    struct tf_node *node = mb->node;
    struct tf_node_link *link = node->net != NULL ? tf_node_net_find(node->net, tenant) : NULL;
    if (link == NULL || !tf_node_link_mailbox(link))
        return TF_OK;
    size_t busy = pushes_to(mb, tenant);
    if (busy >= PUSH_WINDOW)
        return TF_OK;
    struct to_push *x = calloc(1, sizeof *x);
    if (x == NULL)
        return TF_E_NOMEM;
    x->mb = mb;
    x->tenant = tenant;
    x->room = PUSH_WINDOW - busy;
    int rc = tf_node_store_kv_foreach_from(node->store, TF_NODE_STORE_MBOX_ENVS, tenant, PK_LEN,
                                           collect_cb, x);
    if (rc == 1)
        rc = TF_OK;
    if (mb->hostile & HOSTILE_REORDER) {
        for (size_t i = 0; i < x->n / 2; i++) {
            struct push_item tmp = x->items[i];
            x->items[i] = x->items[x->n - 1 - i];
            x->items[x->n - 1 - i] = tmp;
        }
    }
    for (size_t i = 0; i < x->n; i++) {
        struct tf_proto_buf msg;
        struct push *p = NULL;
        if (rc == TF_OK && mb->hostile != 0)
            rc = push_hostile(mb, link, &x->items[i].env);
        if (rc == TF_OK && (p = calloc(1, sizeof *p)) == NULL)
            rc = TF_E_NOMEM;
        if (rc == TF_OK && (rc = tf_proto_link_envelope_as(TF_PROTO_LINK_PUSH, x->items[i].env.data,
                                                           x->items[i].env.len, &msg)) == TF_OK) {
            /* Held: a push of an envelope uploaded in this turn leaves only
             * after the commit that stored it. */
            rc = tf_node_net_send(link, &msg, true);
            tf_proto_buf_free(&msg);
        }
        if (rc == TF_OK) {
            memcpy(p->tenant, tenant, PK_LEN);
            memcpy(p->msg_id, x->items[i].msg_id, ID_LEN);
            p->link = link;
            p->next = mb->pushes;
            mb->pushes = p;
            tf_node_link_set_in_flight(link, tf_node_link_in_flight(link) + 1);
            node->stats.envelopes_sent++;
        } else {
            free(p);
        }
        tf_proto_buf_free(&x->items[i].env);
    }
    free(x);
    return rc;
}

static int ready_tenant_cb(const uint8_t *key, size_t klen, const uint8_t *val, size_t vlen,
                           void *arg)
{
    (void)val;
    (void)vlen;
    if (klen == PK_LEN)
        mark_ready(arg, key);
    return 0;
}

void tf_node_mailbox_run(struct tf_node_mailbox *mb)
{
    if (mb == NULL || mb->closing)
        return;
    int rc = TF_OK;
    if (mb->all_ready) {
        mb->all_ready = false;
        mb->n_ready = 0;
        rc = tf_node_store_kv_foreach(mb->node->store, TF_NODE_STORE_MBOX_TENANTS, ready_tenant_cb,
                                      mb);
    }
    while (mb->n_ready > 0 && rc == TF_OK) {
        uint8_t pk[PK_LEN];
        memcpy(pk, mb->ready[--mb->n_ready], PK_LEN);
        rc = push_tenant(mb, pk);
    }
    if (rc != TF_OK)
        tf_node_log(TF_NODE_LOG_ERROR, "mailbox", "cannot push: %s", tf_strerror(rc));
}

/* Expiry. */

struct sweep_scan {
    uint64_t now;
    size_t n;
    uint8_t keys[SWEEP_BATCH][EXP_KEY_LEN];
};

static int sweep_cb(const uint8_t *key, size_t klen, const uint8_t *val, size_t vlen, void *arg)
{
    (void)val;
    (void)vlen;
    struct sweep_scan *x = arg;
    if (klen != EXP_KEY_LEN || load_be64(key) >= x->now)
        return 1;
    memcpy(x->keys[x->n++], key, EXP_KEY_LEN);
    return x->n == SWEEP_BATCH ? 1 : 0;
}

static uint64_t sweep_period_ms(const struct tf_node_mailbox *mb)
{
    uint64_t s = mb->node->config.mailbox_ttl_max_s / 2;
    if (s < 1)
        s = 1;
    if (s > SWEEP_PERIOD_MAX_S)
        s = SWEEP_PERIOD_MAX_S;
    return s * 1000u;
}

static void sweep_timer_cb(uv_timer_t *t)
{
    struct tf_node_mailbox *mb = t->data;
    struct tf_node *node = mb->node;
    uint64_t next_ms = sweep_period_ms(mb);
    struct sweep_scan *x = calloc(1, sizeof *x);
    int rc = x == NULL ? TF_E_NOMEM : TF_OK;
    if (x != NULL) {
        x->now = tf_node_now(node);
        rc = tf_node_store_kv_foreach(node->store, TF_NODE_STORE_MBOX_EXPIRY, sweep_cb, x);
        if (rc == 1)
            rc = TF_OK;
    }
    size_t collected = 0;
    for (size_t i = 0; x != NULL && i < x->n && rc == TF_OK; i++) {
        const uint8_t *tenant = x->keys[i] + 8, *msg_id = x->keys[i] + 8 + PK_LEN;
        if (pushed(mb, tenant, msg_id))
            continue; /* its ACK may be on the way: collected at the next sweep */
        rc = held_delete(node, tenant, msg_id);
        if (rc == TF_E_NOT_FOUND) /* an index key without its row */
            rc = tf_node_store_kv_del(node->store, TF_NODE_STORE_MBOX_EXPIRY, x->keys[i],
                                      EXP_KEY_LEN);
        collected += rc == TF_OK;
    }
    if (collected > 0)
        tf_node_log(TF_NODE_LOG_INFO, "mailbox",
                    "%zu held envelopes expired and were collected (mailbox_ttl_max_s %llu)",
                    collected, (unsigned long long)node->config.mailbox_ttl_max_s);
    if (rc != TF_OK)
        tf_node_log(TF_NODE_LOG_ERROR, "mailbox", "expiry sweep: %s", tf_strerror(rc));
    if (x != NULL && x->n == SWEEP_BATCH && collected > 0 && rc == TF_OK)
        next_ms = 0; /* more may be due; not when nothing could be collected (all pushed) */
    free(x);
    uv_timer_start(&mb->sweep, sweep_timer_cb, next_ms, 0);
}

/* Tenant side: dial the own mailboxes that have no link. */

static struct own_mailbox *own_slot(struct tf_node_mailbox *mb, const uint8_t pk[PK_LEN])
{
    const struct tf_proto_card *card = &mb->node->card_fields;
    int i = tf_proto_card_mailbox_index(card, pk);
    if (i < 0)
        return NULL;
    struct own_mailbox *o = &mb->own[i];
    if (memcmp(o->pk, pk, PK_LEN) != 0) { /* the card changed: start afresh */
        memset(o, 0, sizeof *o);
        memcpy(o->pk, pk, PK_LEN);
    }
    return o;
}

static uint64_t redial_ms(const struct tf_node_mailbox *mb, uint32_t failures)
{
    uint64_t cap = mb->node->config.mailbox_retry_max_ms;
    uint64_t base = failures >= 30 ? cap : (uint64_t)1000 << (failures > 0 ? failures - 1 : 0);
    if (base > cap)
        base = cap;
    return base / 2 + base * randombytes_uniform(1001) / 2000;
}

static void dial_timer_cb(uv_timer_t *t)
{
    struct tf_node_mailbox *mb = t->data;
    struct tf_node *node = mb->node;
    const struct tf_proto_card *card = &node->card_fields;
    if (node->net == NULL || node->stopping)
        return;
    uint64_t now = loop_ms(mb);
    for (size_t i = 0; i < card->n_mailboxes; i++) {
        const struct tf_proto_card_mailbox *m = &card->mailboxes[i];
        struct own_mailbox *o = own_slot(mb, m->sign_pk);
        if (o == NULL || tf_node_net_find(node->net, m->sign_pk) != NULL || now < o->next_ms)
            continue;
        /* The next dial waits until this one has had its chance; a failure
         * (tf_node_mailbox_dial_failed) moves it by the backoff. */
        o->next_ms = now + redial_ms(mb, o->failures + 1);
        tf_node_net_dial_as(node->net, m->sign_pk, m->addrs, m->n_addrs, false);
    }
}

int tf_node_mailbox_start(struct tf_node *node, struct tf_node_mailbox **out)
{
    struct tf_node_mailbox *mb = calloc(1, sizeof *mb);
    if (mb == NULL)
        return TF_E_NOMEM;
    mb->node = node;
#ifdef TF_TEST_HOOKS
    const char *h = getenv("TWOFOLD_TEST_MAILBOX");
    static const struct {
        const char *name;
        unsigned bit;
    } modes[] = {{"mute", HOSTILE_MUTE},         {"dup", HOSTILE_DUP},
                 {"replay", HOSTILE_REPLAY},     {"reorder", HOSTILE_REORDER},
                 {"truncate", HOSTILE_TRUNCATE}, {"forge", HOSTILE_FORGE}};
    for (size_t i = 0; h != NULL && i < sizeof modes / sizeof modes[0]; i++)
        if (strstr(h, modes[i].name) != NULL)
            mb->hostile |= modes[i].bit;
    if (mb->hostile != 0)
        tf_node_log(TF_NODE_LOG_WARN, "mailbox", "test hook: a hostile mailbox (%s)", h);
#endif
    int rc = uv_timer_init(node->loop, &mb->sweep);
    if (rc != 0) {
        free(mb);
        return rc;
    }
    mb->sweep.data = mb;
    mb->open_handles = 1;
    if ((rc = uv_timer_init(node->loop, &mb->dial)) != 0) {
        tf_node_mailbox_stop(mb);
        return rc;
    }
    mb->dial.data = mb;
    mb->open_handles = 2;
    uv_timer_start(&mb->sweep, sweep_timer_cb, 0, 0);
    uv_timer_start(&mb->dial, dial_timer_cb, 0, DIAL_TICK_MS);
    *out = mb;
    return TF_OK;
}

static void free_cb(uv_handle_t *h)
{
    struct tf_node_mailbox *mb = h->data;
    if (--mb->open_handles > 0)
        return;
    while (mb->pushes != NULL) {
        struct push *p = mb->pushes;
        mb->pushes = p->next;
        free(p);
    }
    free(mb);
}

void tf_node_mailbox_stop(struct tf_node_mailbox *mb)
{
    if (mb == NULL || mb->closing)
        return;
    mb->closing = true;
    bool dial = mb->open_handles == 2;
    uv_close((uv_handle_t *)&mb->sweep, free_cb);
    if (dial)
        uv_close((uv_handle_t *)&mb->dial, free_cb);
}

/* Links. */

void tf_node_mailbox_link_up(struct tf_node_mailbox *mb, struct tf_node_link *link)
{
    if (mb == NULL)
        return;
    struct tf_node *node = mb->node;
    const uint8_t *pk = tf_node_link_peer(link);
    struct own_mailbox *o = own_slot(mb, pk);
    if (o != NULL) {
        o->failures = 0;
        o->last_error[0] = '\0';
    }
    struct tenant t;
    if (tenant_get(node, pk, &t) != TF_OK)
        return;
    t.last_seen = tf_node_now(node);
    int rc = tenant_put(node, pk, &t);
    if (rc != TF_OK)
        tf_node_log(TF_NODE_LOG_ERROR, "mailbox", "cannot record a tenant's visit: %s",
                    tf_strerror(rc));
    if (!tf_node_link_mailbox(link)) {
        char tid[TF_PROTO_TEXT_ID_SIZE];
        tf_proto_text_id_encode(pk, tid);
        tf_node_log(TF_NODE_LOG_INFO, "mailbox",
                    "%s: tenant's link does not speak mailbox; holding %llu envelopes", tid,
                    (unsigned long long)t.envs);
        return;
    }
    mark_ready(mb, pk);
}

void tf_node_mailbox_link_closed(struct tf_node_mailbox *mb, struct tf_node_link *link)
{
    if (mb == NULL)
        return;
    /* Unacknowledged pushes stay held and go again on the next link. */
    struct push **pp = &mb->pushes;
    bool any = false;
    uint8_t tenant[PK_LEN];
    while (*pp != NULL) {
        if ((*pp)->link == link) {
            struct push *p = *pp;
            memcpy(tenant, p->tenant, PK_LEN);
            any = true;
            *pp = p->next;
            free(p);
        } else {
            pp = &(*pp)->next;
        }
    }
    /* Another link to the same tenant may be up already. */
    if (any)
        mark_ready(mb, tenant);
}

void tf_node_mailbox_dial_failed(struct tf_node_mailbox *mb, const uint8_t pk[32], int err)
{
    struct own_mailbox *o = mb != NULL ? own_slot(mb, pk) : NULL;
    if (o == NULL)
        return;
    o->failures++;
    o->next_ms = loop_ms(mb) + redial_ms(mb, o->failures);
    snprintf(o->last_error, sizeof o->last_error, "cannot reach it: %s", tf_strerror(err));
    char tid[TF_PROTO_TEXT_ID_SIZE];
    tf_proto_text_id_encode(pk, tid);
    tf_node_log(o->failures == 1 ? TF_NODE_LOG_WARN : TF_NODE_LOG_DEBUG, "mailbox",
                "own mailbox %s: %s; next try in %llu ms", tid, o->last_error,
                (unsigned long long)(o->next_ms - loop_ms(mb)));
}

bool tf_node_mailbox_ack(struct tf_node_mailbox *mb, struct tf_node_link *link,
                         const struct tf_proto_link_msg *m)
{
    if (mb == NULL)
        return false;
    struct push **pp = &mb->pushes;
    while (*pp != NULL && !((*pp)->link == link && memcmp((*pp)->msg_id, m->msg_id, ID_LEN) == 0))
        pp = &(*pp)->next;
    if (*pp == NULL)
        return false;
    struct push *p = *pp;
    push_settled(p);
    if (mb->hostile & HOSTILE_REPLAY)
        return true; /* kept, record and all: pushed again on the next link */
    *pp = p->next;
    char tid[TF_PROTO_TEXT_ID_SIZE];
    tf_proto_text_id_encode(p->tenant, tid);
    if (m->status == TF_PROTO_ACK_DEFERRED) {
        /* Not a tenant's answer: kept, pushed again on its next link. */
        tf_node_log(TF_NODE_LOG_WARN, "mailbox", "%s: tenant deferred a push; kept", tid);
    } else {
        /* Taken, or refused for good by the tenant: either way it is no
         * longer this mailbox's to hold. */
        int rc = held_delete(mb->node, p->tenant, p->msg_id);
        if (rc != TF_OK && rc != TF_E_NOT_FOUND)
            tf_node_log(TF_NODE_LOG_ERROR, "mailbox", "%s: cannot delete a delivered envelope: %s",
                        tid, tf_strerror(rc));
        if (m->status != TF_PROTO_ACK_OK)
            tf_node_log(TF_NODE_LOG_WARN, "mailbox", "%s: tenant refused a held envelope: %s", tid,
                        tf_proto_ack_reason_name(m->reason));
        mark_ready(mb, p->tenant);
    }
    free(p);
    return true;
}

/* Upload. */

static void send_ack(struct tf_node_mailbox *mb, struct tf_node_link *link,
                     const uint8_t msg_id[ID_LEN], enum tf_proto_ack_status status,
                     enum tf_proto_ack_reason reason)
{
    struct tf_proto_buf msg;
    int rc = tf_proto_link_ack(msg_id, status, reason, &msg);
    if (rc == TF_OK) {
        /* Held when anything was written: the ACK is a custody transfer. */
        rc = tf_node_net_send(link, &msg, tf_node_store_dirty(mb->node->store));
        tf_proto_buf_free(&msg);
    }
    if (rc != TF_OK)
        tf_node_log(TF_NODE_LOG_WARN, "mailbox", "cannot send an ACK: %s", tf_strerror(rc));
}

struct uploader_count {
    const uint8_t *tenant, *uploader;
    uint64_t n;
};

static int uploader_cb(const uint8_t *key, size_t klen, const uint8_t *val, size_t vlen, void *arg)
{
    struct uploader_count *x = arg;
    if (klen != ENV_KEY_LEN || memcmp(key, x->tenant, PK_LEN) != 0)
        return 1;
    struct held h;
    if (held_decode(val, vlen, &h) == TF_OK && sodium_memcmp(h.uploader, x->uploader, PK_LEN) == 0)
        x->n++;
    return 0;
}

/* Why an upload is refused for lack of room (NULL: there is room). */
static const char *over_quota(struct tf_node_mailbox *mb, const struct tenant *t,
                              const uint8_t tenant[PK_LEN], const uint8_t uploader[PK_LEN],
                              size_t len, int *err)
{
    const struct tf_node_config *c = &mb->node->config;
    if (t->envs >= t->quota_envs)
        return "envelopes held for the tenant (mailbox_tenant_envelopes)";
    if (t->bytes + len > t->quota_bytes)
        return "bytes held for the tenant (its quota)";
    if (t->envs < c->mailbox_uploader_envelopes)
        return NULL; /* no uploader can have more than are held in all */
    struct uploader_count x = {tenant, uploader, 0};
    int rc = tf_node_store_kv_foreach_from(mb->node->store, TF_NODE_STORE_MBOX_ENVS, tenant, PK_LEN,
                                           uploader_cb, &x);
    if (rc != TF_OK && rc != 1) {
        *err = rc;
        return "cannot count";
    }
    if (x.n >= c->mailbox_uploader_envelopes)
        return "envelopes from one uploader (mailbox_uploader_envelopes)";
    return NULL;
}

/* What hold() decided: an ACK to send (status, reason) for msg_id, or none
 * (ack false: a local failure, the sender tries again). */
struct verdict {
    bool ack;
    enum tf_proto_ack_status status;
    enum tf_proto_ack_reason reason;
    uint8_t msg_id[ID_LEN];
};

static void decide(struct verdict *v, enum tf_proto_ack_status status,
                   enum tf_proto_ack_reason reason)
{
    v->ack = true;
    v->status = status;
    v->reason = reason;
}

/* Takes custody of an envelope uploaded by `uploader` for one of our
 * tenants, in the write transaction, or says why not. */
static void hold(struct tf_node_mailbox *mb, const uint8_t uploader[PK_LEN], const uint8_t *buf,
                 size_t len, struct verdict *v)
{
    struct tf_node *node = mb->node;
    struct tf_proto_envelope env;
    char tid[TF_PROTO_TEXT_ID_SIZE], to[TF_PROTO_TEXT_ID_SIZE];
    tf_proto_text_id_encode(uploader, tid);
    memset(v, 0, sizeof *v);
    int rc = tf_proto_envelope_decode(buf, len, &env);
    if (rc != TF_OK) {
        tf_node_log(TF_NODE_LOG_WARN, "mailbox", "%s: malformed upload (%s)", tid, tf_strerror(rc));
        if (tf_proto_envelope_peek_id(buf, len, v->msg_id) == TF_OK)
            decide(v, TF_PROTO_ACK_REJECTED, TF_PROTO_ACK_REASON_MALFORMED);
        return;
    }
    memcpy(v->msg_id, env.msg_id, ID_LEN);
    tf_proto_text_id_encode(env.to_pk, to);
    uint64_t now = tf_node_now(node);
    struct tenant t;
    rc = tenant_get(node, env.to_pk, &t);
    if (rc == TF_E_NOT_FOUND) {
        tf_node_log(TF_NODE_LOG_INFO, "mailbox", "%s: upload for %s refused: not hosted here", tid,
                    to);
        decide(v, TF_PROTO_ACK_DEFERRED, TF_PROTO_ACK_REASON_NOT_HOSTED);
        return;
    }
    if (rc != TF_OK) {
        tf_node_log(TF_NODE_LOG_ERROR, "mailbox", "cannot read a tenant: %s", tf_strerror(rc));
        return; /* no ACK: the sender tries again */
    }
    if (env.expires < now) {
        decide(v, TF_PROTO_ACK_REJECTED, TF_PROTO_ACK_REASON_EXPIRED);
        return;
    }
    if (env.expires - now > TF_NODE_DELIVERY_TTL_MAX_S) {
        decide(v, TF_PROTO_ACK_REJECTED, TF_PROTO_ACK_REASON_MALFORMED);
        return;
    }
    uint8_t key[ENV_KEY_LEN], ekey[EXP_KEY_LEN];
    struct tf_proto_buf old = {0};
    env_key(env.to_pk, env.msg_id, key);
    rc = tf_node_store_kv_get(node->store, TF_NODE_STORE_MBOX_ENVS, key, sizeof key, &old);
    if (rc == TF_OK) {
        /* Held already: from this uploader (it did not get our ACK), an
         * idempotent upload.  From another, it is not a duplicate: msg ids
         * are unique per sender only, and one who knows an id (another
         * mailbox of the tenant) must not make the real envelope be
         * answered as held and lost.  Deferred: the slot frees when the
         * tenant collects the one held, and the sender may go elsewhere. */
        struct held h;
        bool same = held_decode(old.data, old.len, &h) == TF_OK &&
                    sodium_memcmp(h.uploader, uploader, PK_LEN) == 0;
        tf_proto_buf_free(&old);
        if (same) {
            decide(v, TF_PROTO_ACK_OK, TF_PROTO_ACK_REASON_NONE);
        } else {
            tf_node_log(TF_NODE_LOG_WARN, "mailbox",
                        "%s: upload for %s deferred: its msg id is held from another uploader", tid,
                        to);
            decide(v, TF_PROTO_ACK_DEFERRED, TF_PROTO_ACK_REASON_OVER_QUOTA);
        }
        return;
    }
    tf_proto_buf_free(&old);
    int err = TF_OK;
    const char *full = over_quota(mb, &t, env.to_pk, uploader, len, &err);
    if (err != TF_OK) {
        tf_node_log(TF_NODE_LOG_ERROR, "mailbox", "cannot count uploads: %s", tf_strerror(err));
        return;
    }
    if (full != NULL) {
        tf_node_log(TF_NODE_LOG_WARN, "mailbox", "%s: upload for %s refused: over quota (%s)", tid,
                    to, full);
        decide(v, TF_PROTO_ACK_DEFERRED, TF_PROTO_ACK_REASON_OVER_QUOTA);
        return;
    }
    uint64_t until = env.expires;
    if (until > now + node->config.mailbox_ttl_max_s)
        until = now + node->config.mailbox_ttl_max_s;
    struct tf_proto_mp_writer w;
    struct tf_proto_buf rec;
    tf_proto_mp_writer_init(&w);
    tf_proto_mp_write_array(&w, ENV_FIELDS);
    tf_proto_mp_write_bin(&w, uploader, PK_LEN);
    tf_proto_mp_write_uint(&w, now);
    tf_proto_mp_write_uint(&w, until);
    tf_proto_mp_write_bin(&w, buf, len);
    struct tf_node_savepoint sp = tf_node_savepoint(node);
    exp_key(until, env.to_pk, env.msg_id, ekey);
    t.envs++;
    t.bytes += len;
    if ((rc = tf_proto_mp_writer_finish(&w, &rec)) == TF_OK) {
        if ((rc = tf_node_store_kv_put(node->store, TF_NODE_STORE_MBOX_ENVS, key, sizeof key,
                                       rec.data, rec.len)) == TF_OK &&
            (rc = tf_node_store_kv_put(node->store, TF_NODE_STORE_MBOX_EXPIRY, ekey, sizeof ekey,
                                       NULL, 0)) == TF_OK)
            rc = tenant_put(node, env.to_pk, &t);
        tf_proto_buf_free(&rec);
    }
    if (rc != TF_OK) {
        tf_node_rollback(node, sp);
        tf_node_log(TF_NODE_LOG_ERROR, "mailbox", "cannot hold an envelope for %s: %s", to,
                    tf_strerror(rc));
        return; /* no ACK: the sender keeps it */
    }
    tf_node_log(TF_NODE_LOG_DEBUG, "mailbox", "%s: holding %zu bytes for %s (%llu held)", tid, len,
                to, (unsigned long long)t.envs);
    decide(v, TF_PROTO_ACK_OK, TF_PROTO_ACK_REASON_NONE);
    mark_ready(mb, env.to_pk);
}

void tf_node_mailbox_upload(struct tf_node_mailbox *mb, struct tf_node_link *link,
                            const uint8_t *buf, size_t len)
{
    if (mb == NULL)
        return;
    struct verdict v;
    mb->node->stats.envelopes_received++;
    if (mb->hostile & HOSTILE_MUTE)
        return;
    hold(mb, tf_node_link_peer(link), buf, len, &v);
    if (!v.ack)
        return;
    send_ack(mb, link, v.msg_id, v.status, v.reason);
    if (v.status == TF_PROTO_ACK_OK && mb->node->test_crash_after_receive)
        mb->node->test_crash_armed = true;
}

int tf_node_mailbox_deposit(struct tf_node_mailbox *mb, const uint8_t *env, size_t len,
                            enum tf_proto_ack_status *status, enum tf_proto_ack_reason *reason)
{
    if (mb == NULL)
        return TF_E_BAD_STATE;
    struct verdict v;
    hold(mb, mb->node->id.sign_pk, env, len, &v);
    if (!v.ack)
        return TF_E_AGAIN;
    *status = v.status;
    *reason = v.reason;
    return TF_OK;
}

/* Verbs. */

static void write_tenant(struct tf_node *node, struct tf_proto_mp_writer *w,
                         const uint8_t pk[PK_LEN], const struct tenant *t)
{
    char tid[TF_PROTO_TEXT_ID_SIZE];
    tf_proto_text_id_encode(pk, tid);
    tf_proto_mp_write_map(w, 9);
    tf_proto_mp_write_cstr(w, "id");
    tf_proto_mp_write_cstr(w, tid);
    tf_proto_mp_write_cstr(w, "alias");
    tf_node__write_alias(node, pk, w);
    tf_proto_mp_write_cstr(w, "envelopes");
    tf_proto_mp_write_uint(w, t->envs);
    tf_proto_mp_write_cstr(w, "bytes");
    tf_proto_mp_write_uint(w, t->bytes);
    tf_proto_mp_write_cstr(w, "quota_bytes");
    tf_proto_mp_write_uint(w, t->quota_bytes);
    tf_proto_mp_write_cstr(w, "quota_envelopes");
    tf_proto_mp_write_uint(w, t->quota_envs);
    tf_proto_mp_write_cstr(w, "added");
    tf_proto_mp_write_uint(w, t->added);
    tf_proto_mp_write_cstr(w, "last_seen");
    if (t->last_seen != 0)
        tf_proto_mp_write_uint(w, t->last_seen);
    else
        tf_proto_mp_write_nil(w);
    tf_proto_mp_write_cstr(w, "connected");
    tf_proto_mp_write_bool(w, node->net != NULL && tf_node_net_find(node->net, pk) != NULL);
}

static int verb_host(struct tf_node *node, const msgpack_object *args, struct tf_proto_mp_writer *w,
                     char *why, size_t why_cap)
{
    struct tf_node_contact c = {0};
    struct tenant t;
    uint64_t quota = node->config.mailbox_tenant_bytes;
    int rc = tf_proto_ctl_get_uint(args, "quota_bytes", &quota);
    if (rc != TF_OK && rc != TF_E_NOT_FOUND) {
        WHY("quota_bytes must be a number of bytes");
        return TF_E_BAD_REQUEST;
    }
    if (quota < TF_PROTO_ENVELOPE_MAX) {
        WHY("a quota below %d bytes could not hold one envelope", TF_PROTO_ENVELOPE_MAX);
        return TF_E_BAD_VALUE;
    }
    if ((rc = tf_node__find_contact(node, args, "name", &c, why, why_cap)) != TF_OK)
        return rc;
    rc = tenant_get(node, c.pk, &t);
    if (rc == TF_E_NOT_FOUND) {
        memset(&t, 0, sizeof t);
        t.added = tf_node_now(node);
        rc = TF_OK;
    }
    if (rc == TF_OK) {
        t.quota_bytes = quota;
        t.quota_envs = node->config.mailbox_tenant_envelopes;
        rc = tenant_put(node, c.pk, &t);
    }
    if (rc != TF_OK) {
        WHY("cannot store the tenant: %s", tf_strerror(rc));
    } else {
        char tid[TF_PROTO_TEXT_ID_SIZE];
        tf_proto_text_id_encode(c.pk, tid);
        tf_node_log(TF_NODE_LOG_INFO, "mailbox", "hosting %s (quota %llu bytes)", tid,
                    (unsigned long long)quota);
        write_tenant(node, w, c.pk, &t);
        mark_ready(node->mailbox, c.pk);
    }
    tf_node_contact_deinit(&c);
    return rc;
}

struct purge {
    const uint8_t *tenant;
    size_t n;
    uint8_t (*ids)[ID_LEN];
    size_t cap;
};

static int purge_cb(const uint8_t *key, size_t klen, const uint8_t *val, size_t vlen, void *arg)
{
    (void)val;
    (void)vlen;
    struct purge *x = arg;
    if (klen != ENV_KEY_LEN || memcmp(key, x->tenant, PK_LEN) != 0)
        return 1;
    if (tf_node__grow((void **)&x->ids, &x->cap, x->n, ID_LEN) != TF_OK)
        return TF_E_NOMEM;
    memcpy(x->ids[x->n++], key + PK_LEN, ID_LEN);
    return 0;
}

static int verb_unhost(struct tf_node *node, const msgpack_object *args,
                       struct tf_proto_mp_writer *w, char *why, size_t why_cap)
{
    struct tf_node_contact c = {0};
    struct tenant t;
    int rc = tf_node__find_contact(node, args, "name", &c, why, why_cap);
    if (rc != TF_OK)
        return rc;
    if ((rc = tenant_get(node, c.pk, &t)) == TF_E_NOT_FOUND) {
        WHY("you do not host this contact (see: twofold mailbox list)");
        tf_node_contact_deinit(&c);
        return rc;
    }
    /* Everything held for the tenant goes with it. */
    struct purge x = {c.pk, 0, NULL, 0};
    if (rc == TF_OK) {
        rc = tf_node_store_kv_foreach_from(node->store, TF_NODE_STORE_MBOX_ENVS, c.pk, PK_LEN,
                                           purge_cb, &x);
        if (rc == 1)
            rc = TF_OK;
    }
    for (size_t i = 0; i < x.n && rc == TF_OK; i++)
        rc = held_delete(node, c.pk, x.ids[i]);
    if (rc == TF_OK)
        rc = tf_node_store_kv_del(node->store, TF_NODE_STORE_MBOX_TENANTS, c.pk, PK_LEN);
    free(x.ids);
    if (rc != TF_OK) {
        WHY("cannot remove the tenant: %s", tf_strerror(rc));
    } else {
        struct push **pp = &node->mailbox->pushes;
        while (*pp != NULL) { /* their ACKs no longer delete anything */
            if (memcmp((*pp)->tenant, c.pk, PK_LEN) == 0) {
                struct push *p = *pp;
                *pp = p->next;
                push_settled(p); /* nor will they free its slot */
                free(p);
            } else {
                pp = &(*pp)->next;
            }
        }
        tf_proto_mp_write_map(w, 1);
        tf_proto_mp_write_cstr(w, "purged_envelopes");
        tf_proto_mp_write_uint(w, x.n);
    }
    tf_node_contact_deinit(&c);
    return rc;
}

struct tenant_list {
    struct tf_node *node;
    struct tf_proto_mp_writer items;
    uint32_t n;
};

static int list_cb(const uint8_t *key, size_t klen, const uint8_t *val, size_t vlen, void *arg)
{
    struct tenant_list *l = arg;
    struct tenant t;
    if (klen != PK_LEN || tenant_decode(val, vlen, &t) != TF_OK)
        return 0;
    write_tenant(l->node, &l->items, key, &t);
    l->n++;
    return 0;
}

static int verb_list(struct tf_node *node, const msgpack_object *args, struct tf_proto_mp_writer *w,
                     char *why, size_t why_cap)
{
    (void)args;
    struct tenant_list l = {.node = node};
    struct tf_proto_buf items;
    tf_proto_mp_writer_init(&l.items);
    int rc = tf_node_store_kv_foreach(node->store, TF_NODE_STORE_MBOX_TENANTS, list_cb, &l);
    if (rc == TF_OK)
        rc = tf_proto_mp_writer_finish(&l.items, &items);
    else
        tf_proto_mp_writer_deinit(&l.items);
    if (rc != TF_OK) {
        WHY("cannot read the tenants: %s", tf_strerror(rc));
        return rc;
    }
    tf_proto_mp_write_map(w, 1);
    tf_proto_mp_write_cstr(w, "tenants");
    tf_proto_mp_write_array(w, l.n);
    tf_proto_mp_write_raw(w, items.data, items.len);
    tf_proto_buf_free(&items);
    return TF_OK;
}

static int verb_status(struct tf_node *node, const msgpack_object *args,
                       struct tf_proto_mp_writer *w, char *why, size_t why_cap)
{
    (void)args;
    (void)why;
    (void)why_cap;
    const struct tf_proto_card *card = &node->card_fields;
    tf_proto_mp_write_map(w, 3);
    tf_proto_mp_write_cstr(w, "listening");
    tf_proto_mp_write_bool(w, node->listen[0] != '\0' && node->config.no_listen == 0);
    tf_proto_mp_write_cstr(w, "direct_addrs");
    tf_proto_mp_write_uint(w, card->n_addrs);
    tf_proto_mp_write_cstr(w, "mailboxes");
    tf_proto_mp_write_array(w, (uint32_t)card->n_mailboxes);
    for (size_t i = 0; i < card->n_mailboxes; i++) {
        const struct tf_proto_card_mailbox *m = &card->mailboxes[i];
        const struct own_mailbox *o = own_slot(node->mailbox, m->sign_pk);
        char tid[TF_PROTO_TEXT_ID_SIZE];
        tf_proto_text_id_encode(m->sign_pk, tid);
        tf_proto_mp_write_map(w, 5);
        tf_proto_mp_write_cstr(w, "id");
        tf_proto_mp_write_cstr(w, tid);
        tf_proto_mp_write_cstr(w, "alias");
        tf_node__write_alias(node, m->sign_pk, w);
        tf_proto_mp_write_cstr(w, "addrs");
        tf_proto_mp_write_array(w, (uint32_t)m->n_addrs);
        for (size_t j = 0; j < m->n_addrs; j++)
            tf_proto_mp_write_text(w, m->addrs[j]);
        tf_proto_mp_write_cstr(w, "connected");
        tf_proto_mp_write_bool(w, node->net != NULL &&
                                      tf_node_net_find(node->net, m->sign_pk) != NULL);
        tf_proto_mp_write_cstr(w, "last_error");
        tf_proto_mp_write_cstr_or_nil(w, o != NULL && o->last_error[0] ? o->last_error : NULL);
    }
    return TF_OK;
}

/* mailbox.use: the card of a mailbox (text) is listed on the own card,
 * which is issued anew and sent to every contact.  With remove: true, the
 * mailbox that card names is taken off instead. */
static int verb_use(struct tf_node *node, const msgpack_object *args, struct tf_proto_mp_writer *w,
                    char *why, size_t why_cap)
{
    const char *text;
    size_t text_len;
    bool remove = false;
    struct tf_proto_buf signed_card = {0};
    struct tf_proto_card mcard;
    if (tf_proto_ctl_get_str(args, "card", &text, &text_len) != TF_OK) {
        WHY("missing argument 'card' (the mailbox node's card, from: twofold card)");
        return TF_E_BAD_REQUEST;
    }
    int rc = tf_proto_ctl_get_bool(args, "remove", &remove);
    if (rc != TF_OK && rc != TF_E_NOT_FOUND) {
        WHY("argument 'remove' must be true or false");
        return TF_E_BAD_REQUEST;
    }
    if ((rc = tf_proto_card_from_text(text, text_len, &signed_card, &mcard)) != TF_OK) {
        WHY("card refused: %s; nothing was changed", tf_strerror(rc));
        return rc;
    }
    struct tf_proto_card c = node->card_fields; /* views into node->card */
    int at = tf_proto_card_mailbox_index(&c, mcard.sign_pk);
    if (sodium_memcmp(mcard.sign_pk, node->id.sign_pk, PK_LEN) == 0) {
        WHY("that is your own card: a node cannot be its own mailbox");
        rc = TF_E_INVALID_ARG;
    } else if (remove && at < 0) {
        WHY("your card does not list that mailbox");
        rc = TF_E_NOT_FOUND;
    } else if (remove) {
        for (size_t i = (size_t)at; i + 1 < c.n_mailboxes; i++)
            c.mailboxes[i] = c.mailboxes[i + 1];
        c.n_mailboxes--;
    } else if (mcard.n_addrs == 0) {
        WHY("that card lists no address: a mailbox must be reachable");
        rc = TF_E_INVALID_ARG;
    } else if (at < 0 && c.n_mailboxes >= TF_PROTO_CARD_MAILBOXES_MAX) {
        WHY("your card lists %d mailboxes already (the most it may)", TF_PROTO_CARD_MAILBOXES_MAX);
        rc = TF_E_TOO_LONG;
    } else {
        size_t i = at >= 0 ? (size_t)at : c.n_mailboxes++;
        struct tf_proto_card_mailbox *m = &c.mailboxes[i];
        memcpy(m->sign_pk, mcard.sign_pk, PK_LEN);
        m->n_addrs = mcard.n_addrs < TF_PROTO_CARD_MAILBOX_ADDRS_MAX
                         ? mcard.n_addrs
                         : TF_PROTO_CARD_MAILBOX_ADDRS_MAX;
        for (size_t j = 0; j < m->n_addrs; j++)
            m->addrs[j] = mcard.addrs[j];
    }
    if (rc == TF_OK && (rc = tf_node_profile_publish(node, &c, NULL, why, why_cap)) == TF_OK) {
        char tid[TF_PROTO_TEXT_ID_SIZE];
        tf_proto_text_id_encode(mcard.sign_pk, tid);
        tf_node_log(TF_NODE_LOG_INFO, "mailbox", "%s mailbox %s; card %llu sent to contacts",
                    remove ? "no longer using" : "using", tid,
                    (unsigned long long)node->card_fields.seq);
        uv_timer_again(&node->mailbox->dial); /* dial it at the next tick */
        rc = verb_status(node, args, w, why, why_cap);
    }
    tf_proto_buf_free(&signed_card);
    return rc;
}

int tf_node_mailbox_verb(struct tf_node *node, const char *verb, size_t verb_len,
                         const msgpack_object *args, struct tf_proto_mp_writer *w, char *why,
                         size_t why_cap, bool *handled)
{
    static const struct {
        const char *name;
        int (*fn)(struct tf_node *, const msgpack_object *, struct tf_proto_mp_writer *, char *,
                  size_t);
    } verbs[] = {
        {"mailbox.host", verb_host}, {"mailbox.unhost", verb_unhost}, {"mailbox.list", verb_list},
        {"mailbox.use", verb_use},   {"mailbox.status", verb_status},
    };
    *handled = true;
    for (size_t i = 0; i < sizeof verbs / sizeof verbs[0]; i++)
        if (strlen(verbs[i].name) == verb_len && memcmp(verbs[i].name, verb, verb_len) == 0)
            return verbs[i].fn(node, args, w, why, why_cap);
    *handled = false;
    return TF_E_UNKNOWN_VERB;
}
