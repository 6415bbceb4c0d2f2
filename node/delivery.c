/* SPDX-License-Identifier: MIT */
#include "node/delivery.h"

#include <assert.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>
#include <uv.h>

#include "node/internal.h"
#include "node/intro.h"
#include "node/profile.h"
#include "node/request.h"
#include "node/log.h"
#include "node/mailbox.h"
#include "node/net.h"
#include "node/node.h"
#include "node/store.h"
#include "proto/envelope.h"

#define DUE_BATCH 256
#define READY_MAX 64
#define SWEEP_BATCH 1000 /* messages the retention sweep collects per turn */
#define SWEEP_PERIOD_MAX_S 3600
#define MSG_ID_RANDOM 10 /* random bytes of a msg id, after its 6 of time */

/*
 * The budgets' counts, kept in memory so that checking one is O(1) (before,
 * every enqueue scanned the whole outbox): per identity, the outbox entries
 * queued for it and the notes received from it that are stored, with the
 * totals.  Built from the store at start; updated by this module's own
 * writes (enqueue, finish, a note stored, the retention sweep).  A count
 * change waits in `pending` until its batch commits: if the store discards
 * the write (a rollback, a lost transaction, a failed commit) the change is
 * taken back (sync).  Whether a recipient is a contact is looked up again
 * whenever a contact is created or deleted.
 */
struct tally {
    uint8_t pk[32];
    uint32_t outbox;   /* entries queued for pk */
    uint32_t received; /* notes from pk stored */
    bool used;
    bool stranger; /* pk is not a contact: its entries count as strangers' */
};

struct tallies {
    struct tally *slots; /* open addressing, linear probing; cap a power of 2 */
    size_t cap, n;
    uint8_t key[crypto_shorthash_KEYBYTES]; /* a random hash key: peers choose their keys */
    uint64_t outbox_strangers;              /* sum of outbox over strangers */
    uint64_t received;                      /* sum of received */
};

/* A count change whose write is not committed yet. */
struct delta {
    size_t sp; /* tf_node_store_savepoint just before the write */
    uint8_t pk[32];
    int8_t outbox, received;
};

/*
 * ackdefer: outbox entries acknowledged whose deletes are not committed yet.
 * A commit that would hold nothing but such deletes promises nothing to
 * anyone: losing it in a crash only makes the node send the envelope again,
 * which its receiver takes as a duplicate and acknowledges again.  So an ACK
 * marks the entry here, and the deletes are written into the next write
 * transaction the node commits for any other reason, or by themselves
 * ack_defer_ms after the first of them, or at once when ack_defer_max are
 * waiting.  A marked entry is never sent again, listed or counted as queued.
 * Notes are not deferred: their outcome is an event for the owner.
 *
 * The deletes are written only right before a commit (tf_node_delivery_flush)
 * and nothing runs between that and the commit, so after the commit every
 * entry here is either written and committed (forgotten) or, when the commit
 * failed, not written (kept, to be written again).  Each msg id is here at
 * most once: a dense array with an index by msg id (open addressing on the
 * id's random last bytes, never deleted from but cleared whole).
 */
struct acked {
    uint8_t msg_id[16];
    uint8_t to_pk[32];
    uint16_t type;
    bool written; /* its delete is in the open write transaction */
    size_t slot;  /* its place in the index */
};

struct acks {
    struct acked *items;
    size_t n, cap_items, n_written;
    uint32_t *index; /* 0: empty, else 1 + the item's place in items */
    size_t cap;      /* a power of 2, at least twice n */
};

static size_t acks_home(const struct acks *a, const uint8_t msg_id[16])
{
    uint64_t h;
    memcpy(&h, msg_id + 8, sizeof h); /* our own ids: random there */
    return (size_t)(h ^ (h >> 29)) & (a->cap - 1);
}

/* The item for msg_id, or NULL. */
static struct acked *acks_find(const struct acks *a, const uint8_t msg_id[16])
{
    if (a->n == 0)
        return NULL;
    for (size_t i = acks_home(a, msg_id);; i = (i + 1) & (a->cap - 1)) {
        if (a->index[i] == 0)
            return NULL;
        struct acked *x = &a->items[a->index[i] - 1];
        if (memcmp(x->msg_id, msg_id, 16) == 0)
            return x;
    }
}

/* Indexes items[k]. */
static void acks_place(struct acks *a, size_t k)
{
    size_t i = acks_home(a, a->items[k].msg_id);
    while (a->index[i] != 0)
        i = (i + 1) & (a->cap - 1);
    a->index[i] = (uint32_t)(k + 1);
    a->items[k].slot = i;
}

/* Adds an entry that acks_find does not hold. */
static int acks_add(struct acks *a, const uint8_t msg_id[16], const uint8_t to_pk[32],
                    uint16_t type)
{
    if (a->n >= UINT32_MAX - 1 ||
        tf_node__grow((void **)&a->items, &a->cap_items, a->n, sizeof *a->items) != TF_OK)
        return TF_E_NOMEM;
    if ((a->n + 1) * 2 > a->cap) {
        size_t cap = a->cap == 0 ? 64 : 2 * a->cap;
        uint32_t *index = calloc(cap, sizeof *index);
        if (index == NULL)
            return TF_E_NOMEM;
        free(a->index);
        a->index = index;
        a->cap = cap;
        for (size_t k = 0; k < a->n; k++)
            acks_place(a, k);
    }
    struct acked *x = &a->items[a->n];
    memset(x, 0, sizeof *x);
    memcpy(x->msg_id, msg_id, 16);
    memcpy(x->to_pk, to_pk, 32);
    x->type = type;
    acks_place(a, a->n++);
    return TF_OK;
}

/* Keeps only the items not written (all of them when keep_written). */
static void acks_keep(struct acks *a, bool keep_written)
{
    for (size_t k = 0; k < a->n; k++)
        a->index[a->items[k].slot] = 0;
    size_t n = 0;
    for (size_t k = 0; k < a->n; k++) {
        if (a->items[k].written && !keep_written)
            continue;
        a->items[n] = a->items[k];
        a->items[n].written = false;
        acks_place(a, n++);
    }
    a->n = n;
    a->n_written = 0;
}

/* An envelope sent on a link and not yet acknowledged. */
struct inflight {
    struct inflight *next;
    uint8_t msg_id[16];
    struct tf_node_link *link;
    bool upload; /* sent as UPLOAD to one of the recipient's mailboxes */
};

/* mailbox: a mailbox that refused (or lost) an envelope for a recipient is
 * not used for that recipient until `until` (loop clock), so the next try
 * goes another way: another mailbox, or direct.  A small ring. */
#define REFUSALS 32
/* mailbox: a mailbox dialled on a recipient's behalf: when its link comes
 * up, the recipient's queue is sent through it.  A small ring. */
#define MBOX_WAITS 64

struct tf_node_delivery {
    struct tf_node *node;
    uv_timer_t timer;
    bool due; /* the timer fired or new envelopes were queued */
    bool closing;
    struct inflight *inflight;
    /* Peers whose queued envelopes should go out now (link up, or an ACK
     * freed room on their link). */
    uint8_t ready[READY_MAX][32];
    size_t n_ready;
    /* The last dial failure of a few recent peers, for outbox entries'
     * last_error (a small ring: oldest overwritten). */
    struct dial_error {
        uint8_t pk[32];
        char text[TF_NODE_OUTBOX_ERROR_MAX];
    } dial_errors[8];
    size_t next_dial_error;
    struct refusal {
        uint8_t to[32], mailbox[32];
        uint64_t until;
        char why[64]; /* for the outbox's last_error */
    } refusals[REFUSALS];
    size_t next_refusal;
    struct mbox_wait {
        uint8_t mailbox[32], to[32];
        bool used;
    } waits[MBOX_WAITS];
    size_t next_wait;
    uv_timer_t sweep; /* the messages' retention */
    /* Random bytes for msg ids and the retry jitter, drawn from the OS a
     * batch at a time (random_take); random_used of them are spent. */
    uint8_t random[256];
    size_t random_used;
    int open_handles;
    struct tallies tallies;
    struct delta *pending;
    size_t n_pending, cap_pending;
    bool stale;            /* the counts must be built again from the store */
    size_t floor;          /* the savepoint at that build (writes below it were counted) */
    uint64_t batches;      /* tf_node_store_batches at the last sync */
    uint64_t contacts_gen; /* tf_node_store_contacts_gen at the last sync */
    /* ackdefer: the writes (journal entries) that outbox deletes after ACKs
     * made in batch ack_batch (tf_node_store_batches), to tell a commit that
     * holds nothing else (tf_node_delivery_acks_only). */
    size_t ack_ops;
    uint64_t ack_batch;
    struct acks acks;
    uv_timer_t flush; /* ack_defer_ms after the first pending delete */
    bool flush_now;   /* write the pending deletes before this turn's commit */
    bool have_sweep;  /* the sweep timer was initialised */
    bool have_flush;  /* the flush timer was initialised */
};

static struct tally *tally_find(struct tallies *t, const uint8_t pk[32])
{
    if (t->cap == 0)
        return NULL;
    uint64_t h;
    crypto_shorthash((uint8_t *)&h, pk, 32, t->key);
    for (size_t i = (size_t)h & (t->cap - 1);; i = (i + 1) & (t->cap - 1)) {
        if (!t->slots[i].used)
            return NULL;
        if (memcmp(t->slots[i].pk, pk, 32) == 0)
            return &t->slots[i];
    }
}

/* The empty slot where pk goes (the table has room). */
static struct tally *tally_slot(struct tallies *t, const uint8_t pk[32])
{
    uint64_t h;
    crypto_shorthash((uint8_t *)&h, pk, 32, t->key);
    size_t i = (size_t)h & (t->cap - 1);
    while (t->slots[i].used)
        i = (i + 1) & (t->cap - 1);
    return &t->slots[i];
}

/* Keeps the table at most 3/4 full. */
static int tally_reserve(struct tallies *t)
{
    if ((t->n + 1) * 4 <= t->cap * 3)
        return TF_OK;
    size_t cap = t->cap == 0 ? 64 : 2 * t->cap;
    struct tally *slots = calloc(cap, sizeof *slots);
    if (slots == NULL)
        return TF_E_NOMEM;
    struct tallies next = *t;
    next.slots = slots;
    next.cap = cap;
    for (size_t i = 0; i < t->cap; i++)
        if (t->slots[i].used)
            *tally_slot(&next, t->slots[i].pk) = t->slots[i];
    free(t->slots);
    *t = next;
    return TF_OK;
}

/* Removes slot (linear probing: the entries after it move back). */
static void tally_remove(struct tallies *t, struct tally *slot)
{
    size_t i = (size_t)(slot - t->slots), mask = t->cap - 1;
    t->slots[i].used = false;
    t->n--;
    for (size_t j = (i + 1) & mask; t->slots[j].used; j = (j + 1) & mask) {
        uint64_t h;
        crypto_shorthash((uint8_t *)&h, t->slots[j].pk, 32, t->key);
        size_t home = (size_t)h & mask;
        /* The entry at j may move to the hole at i unless its home lies
         * cyclically in (i, j]. */
        if ((j > i && (home <= i || home > j)) || (j < i && home <= i && home > j)) {
            t->slots[i] = t->slots[j];
            t->slots[j].used = false;
            i = j;
        }
    }
}

/* Adds the changes to pk's counts; a new identity is a stranger or not as
 * given. */
static int tally_add(struct tallies *t, const uint8_t pk[32], int outbox, int received,
                     bool stranger)
{
    struct tally *x = tally_find(t, pk);
    if (x == NULL) {
        if (outbox < 0 || received < 0)
            return TF_E_BAD_STATE;
        int rc = tally_reserve(t);
        if (rc != TF_OK)
            return rc;
        x = tally_slot(t, pk);
        memset(x, 0, sizeof *x);
        memcpy(x->pk, pk, 32);
        x->used = true;
        x->stranger = stranger;
        t->n++;
    }
    if ((outbox < 0 && x->outbox < (uint32_t)-outbox) ||
        (received < 0 && x->received < (uint32_t)-received))
        return TF_E_BAD_STATE;
    x->outbox = (uint32_t)((int64_t)x->outbox + outbox);
    x->received = (uint32_t)((int64_t)x->received + received);
    if (x->stranger)
        t->outbox_strangers = (uint64_t)((int64_t)t->outbox_strangers + outbox);
    t->received = (uint64_t)((int64_t)t->received + received);
    if (x->outbox == 0 && x->received == 0)
        tally_remove(t, x);
    return TF_OK;
}

static const char *dial_error_of(const struct tf_node_delivery *d, const uint8_t pk[32])
{
    for (size_t i = 0; i < sizeof d->dial_errors / sizeof d->dial_errors[0]; i++)
        if (d->dial_errors[i].text[0] != '\0' && memcmp(d->dial_errors[i].pk, pk, 32) == 0)
            return d->dial_errors[i].text;
    return NULL;
}

static uint64_t now_ms(void)
{
    uv_timeval64_t tv;
    if (uv_gettimeofday(&tv) != 0)
        return 0;
    return (uint64_t)tv.tv_sec * 1000u + (uint64_t)tv.tv_usec / 1000u;
}

/* n (at most sizeof d->random) random bytes from the OS, fetched a batch
 * at a time: each envelope sent needs a msg id and a retry time, which took
 * a system call each (docs/PERFORMANCE.md "Fourth round").  What they are used for is
 * public (msg ids) or hides nothing (jitter), so bytes waiting in memory
 * for their turn tell nothing; each is used once and wiped. */
static void random_take(struct tf_node_delivery *d, void *out, size_t n)
{
    assert(n <= sizeof d->random);
    if (n > sizeof d->random - d->random_used) {
        randombytes_buf(d->random, sizeof d->random);
        d->random_used = 0;
    }
    memcpy(out, d->random + d->random_used, n);
    sodium_memzero(d->random + d->random_used, n);
    d->random_used += n;
}

/* The next of the retry jitter's numbers in [0, 1000]: a 64-bit draw
 * reduced modulo 1001, uniform to within 2^-54. */
static uint32_t jitter_permille(struct tf_node_delivery *d)
{
    uint64_t r;
    random_take(d, &r, sizeof r);
    return (uint32_t)(r % 1001);
}

/* 1 s doubling to the cap, times a random factor in [0.5, 1.0]. */
static uint64_t backoff_ms(struct tf_node_delivery *d, uint32_t attempts)
{
    uint64_t cap = d->node->config.retry_max_ms;
    uint64_t base = attempts >= 30 ? cap : (uint64_t)1000 << (attempts > 0 ? attempts - 1 : 0);
    if (base > cap)
        base = cap;
    return base / 2 + base * jitter_permille(d) / 2000;
}

/* True if pk is a contact (blocked or not); *err gets a store failure. */
static bool is_contact(struct tf_node *node, const uint8_t pk[32], int *err)
{
    struct tf_node_contact c;
    memset(&c, 0, sizeof c);
    int rc = tf_node_store_contact_get(node->store, pk, &c);
    tf_node_contact_deinit(&c);
    if (rc != TF_OK && rc != TF_E_NOT_FOUND)
        *err = rc;
    return rc == TF_OK;
}

static int count_recipient_cb(const uint8_t to_pk[static 32], void *arg)
{
    /* Strangers or not is decided after the walk (look_up_strangers). */
    return tally_add(arg, to_pk, 1, 0, false);
}

static int count_message_cb(const struct tf_node_message *m, void *arg)
{
    return m->outgoing ? 0 : tally_add(arg, m->contact, 0, 1, false);
}

/* Looks up again which identities are contacts, and the strangers' total. */
static int look_up_strangers(struct tf_node_delivery *d)
{
    struct tallies *t = &d->tallies;
    int rc = TF_OK;
    t->outbox_strangers = 0;
    for (size_t i = 0; i < t->cap && rc == TF_OK; i++) {
        struct tally *x = &t->slots[i];
        if (!x->used)
            continue;
        x->stranger = !is_contact(d->node, x->pk, &rc);
        if (x->stranger)
            t->outbox_strangers += x->outbox;
    }
    return rc;
}

/* Builds the counts from the store: one walk of the outbox's recipients and
 * one of the messages (at start, and after a change this module could not
 * take back precisely). */
static int rebuild(struct tf_node_delivery *d)
{
    struct tf_node_store *st = d->node->store;
    struct tallies *t = &d->tallies;
    free(t->slots);
    t->slots = NULL;
    t->cap = t->n = 0;
    t->outbox_strangers = t->received = 0;
    d->n_pending = 0;
    (void)tf_node_store_undo_take(st); /* what it reports is read below */
    d->floor = tf_node_store_savepoint(st);
    d->batches = tf_node_store_batches(st);
    d->contacts_gen = tf_node_store_contacts_gen(st);
    int rc = tf_node_store_outbox_recipients(st, count_recipient_cb, t);
    if (rc == TF_OK)
        rc = tf_node_store_message_foreach(st, count_message_cb, t);
    if (rc == TF_OK)
        rc = look_up_strangers(d);
    d->stale = rc != TF_OK;
    return rc;
}

/* Brings the counts up to date with the store: takes back the changes whose
 * writes were discarded, forgets the committed ones, and looks contacts up
 * again when some were created or deleted. */
static int sync_counts(struct tf_node_delivery *d)
{
    struct tf_node_store *st = d->node->store;
    size_t from = tf_node_store_undo_take(st);
    bool look_again = from != SIZE_MAX;
    if (from < d->floor)
        d->stale = true; /* writes counted by the last build are gone */
    while (!d->stale && d->n_pending > 0 && d->pending[d->n_pending - 1].sp >= from) {
        const struct delta *x = &d->pending[--d->n_pending];
        if (tally_add(&d->tallies, x->pk, -x->outbox, -x->received, false) != TF_OK)
            d->stale = true;
    }
    uint64_t b = tf_node_store_batches(st);
    if (b != d->batches) {
        d->batches = b;
        d->n_pending = 0; /* committed */
        d->floor = 0;
    }
    uint64_t g = tf_node_store_contacts_gen(st);
    if (g != d->contacts_gen) {
        d->contacts_gen = g;
        look_again = true;
    }
    if (d->stale)
        return rebuild(d);
    return look_again ? look_up_strangers(d) : TF_OK;
}

/* Counts a write this module just made, begun at savepoint sp. */
static void count_write(struct tf_node_delivery *d, size_t sp, const uint8_t pk[32], int outbox,
                        int received, bool stranger)
{
    if (d->stale)
        return; /* the next sync builds the counts afresh */
    if (tf_node__grow((void **)&d->pending, &d->cap_pending, d->n_pending, sizeof *d->pending) !=
            TF_OK ||
        tally_add(&d->tallies, pk, outbox, received, stranger) != TF_OK) {
        d->stale = true;
        return;
    }
    struct delta *x = &d->pending[d->n_pending++];
    x->sp = sp;
    memcpy(x->pk, pk, 32);
    x->outbox = (int8_t)outbox;
    x->received = (int8_t)received;
}

static void timer_cb(uv_timer_t *t)
{
    struct tf_node_delivery *d = t->data;
    /* Work happens after the next commit (tf_node_delivery_run). */
    d->due = true;
}

/* The messages' retention: notes received, and notes sent whose delivery
 * ended, older than messages_retention_s (0: kept). */
struct sweep_scan {
    uint64_t before; /* collected if their time is below this */
    struct swept {
        uint8_t id[16];
        uint8_t contact[32];
        bool outgoing;
    } items[SWEEP_BATCH];
    size_t n;
};

static int sweep_cb(const struct tf_node_message *m, void *arg)
{
    struct sweep_scan *x = arg;
    bool old = m->outgoing ? m->state != TF_NODE_MESSAGE_QUEUED && m->updated < x->before
                           : m->time < x->before;
    if (!old)
        return 0;
    struct swept *it = &x->items[x->n++];
    memcpy(it->id, m->id, 16);
    memcpy(it->contact, m->contact, 32);
    it->outgoing = m->outgoing;
    return x->n == SWEEP_BATCH ? 1 : 0;
}

static uint64_t sweep_period_ms(const struct tf_node_delivery *d)
{
    uint64_t s = d->node->config.messages_retention_s;
    if (s == 0 || s > SWEEP_PERIOD_MAX_S)
        s = SWEEP_PERIOD_MAX_S;
    return s * 1000u;
}

static void sweep_timer_cb(uv_timer_t *t)
{
    struct tf_node_delivery *d = t->data;
    struct tf_node *node = d->node;
    uint64_t keep = node->config.messages_retention_s, now = tf_node_now(node);
    uint64_t next_ms = sweep_period_ms(d);
    struct sweep_scan *x = NULL;
    int rc = TF_OK;
    if (keep != 0 && now > keep && (x = calloc(1, sizeof *x)) == NULL)
        rc = TF_E_NOMEM;
    if (x != NULL) {
        x->before = now - keep;
        rc = tf_node_store_message_foreach(node->store, sweep_cb, x);
        if (rc == 1)
            rc = TF_OK;
    }
    if (rc == TF_OK && x != NULL && x->n > 0 && (rc = sync_counts(d)) == TF_OK) {
        for (size_t i = 0; i < x->n && rc == TF_OK; i++) {
            size_t sp = tf_node_store_savepoint(node->store);
            rc = tf_node_store_message_del(node->store, x->items[i].id);
            if (rc == TF_OK && !x->items[i].outgoing)
                count_write(d, sp, x->items[i].contact, 0, -1, false);
            else if (rc == TF_E_NOT_FOUND)
                rc = TF_OK;
        }
        tf_node_log(TF_NODE_LOG_INFO, "delivery",
                    "%zu notes older than %llu s collected (messages_retention_s)", x->n,
                    (unsigned long long)keep);
        if (x->n == SWEEP_BATCH)
            next_ms = 0; /* more to collect: go on after this turn's commit */
    }
    if (rc != TF_OK)
        tf_node_log(TF_NODE_LOG_ERROR, "delivery", "messages' retention: %s", tf_strerror(rc));
    free(x);
    uv_timer_start(&d->sweep, sweep_timer_cb, next_ms, 0);
}

int tf_node_delivery_start(struct tf_node *node, struct tf_node_delivery **out)
{
    struct tf_node_delivery *d = calloc(1, sizeof *d);
    if (d == NULL)
        return TF_E_NOMEM;
    d->node = node;
    randombytes_buf(d->tallies.key, sizeof d->tallies.key);
    d->random_used = sizeof d->random; /* drawn at the first use */
    int rc = rebuild(d);
    if (rc != TF_OK) {
        free(d->tallies.slots);
        free(d);
        return rc;
    }
    tf_node_log(TF_NODE_LOG_INFO, "delivery",
                "counts: %zu identities, %llu queued for non-contacts, %llu notes received",
                d->tallies.n, (unsigned long long)d->tallies.outbox_strangers,
                (unsigned long long)d->tallies.received);
    if ((rc = uv_timer_init(node->loop, &d->timer)) != 0) {
        free(d->tallies.slots);
        free(d);
        return rc;
    }
    d->timer.data = d;
    d->open_handles = 1;
    if ((rc = uv_timer_init(node->loop, &d->sweep)) != 0) {
        tf_node_delivery_stop(d); /* frees d once the timer has closed */
        return rc;
    }
    d->sweep.data = d;
    d->open_handles = 2;
    d->have_sweep = true;
    if ((rc = uv_timer_init(node->loop, &d->flush)) != 0) { /* ackdefer */
        tf_node_delivery_stop(d);
        return rc;
    }
    d->flush.data = d;
    d->open_handles = 3;
    d->have_flush = true;
    uv_timer_start(&d->sweep, sweep_timer_cb, 0, 0); /* once at start */
    d->due = true;                                   /* look at the outbox once at start */
    *out = d;
    return TF_OK;
}

static void free_cb(uv_handle_t *h)
{
    struct tf_node_delivery *d = h->data;
    if (--d->open_handles > 0)
        return;
    free(d->tallies.slots);
    free(d->pending);
    free(d->acks.items); /* ackdefer */
    free(d->acks.index);
    struct inflight *f = d->inflight;
    while (f != NULL) {
        struct inflight *next = f->next;
        free(f);
        f = next;
    }
    free(d);
}

void tf_node_delivery_stop(struct tf_node_delivery *d)
{
    if (d == NULL || d->closing)
        return;
    d->closing = true;
    uv_close((uv_handle_t *)&d->timer, free_cb);
    if (d->have_sweep)
        uv_close((uv_handle_t *)&d->sweep, free_cb);
    if (d->have_flush)
        uv_close((uv_handle_t *)&d->flush, free_cb);
}

static struct inflight **find_inflight(struct tf_node_delivery *d, const uint8_t msg_id[16])
{
    for (struct inflight **pp = &d->inflight; *pp != NULL; pp = &(*pp)->next)
        if (memcmp((*pp)->msg_id, msg_id, 16) == 0)
            return pp;
    return NULL;
}

static void mark_ready(struct tf_node_delivery *d, const uint8_t pk[32])
{
    for (size_t i = 0; i < d->n_ready; i++)
        if (memcmp(d->ready[i], pk, 32) == 0)
            return;
    if (d->n_ready < READY_MAX)
        memcpy(d->ready[d->n_ready++], pk, 32);
    else
        d->due = true; /* too many at once: the due scan will get to them */
}

/* mailbox: the recipient's card (a contact's, or a correspondent's who is
 * not a contact), in *c; *stranger says which.  TF_E_NOT_FOUND if none. */
static int recipient_card(struct tf_node *node, const uint8_t pk[32], struct tf_node_contact *c,
                          bool *stranger)
{
    memset(c, 0, sizeof *c);
    int rc = tf_node_store_contact_get(node->store, pk, c);
    *stranger = rc == TF_E_NOT_FOUND;
    if (*stranger) {
        struct tf_proto_buf card = {0};
        rc = tf_node_intro_peer_card(node, pk, &card);
        if (rc == TF_OK)
            rc = tf_node_contact_from_verified_card(c, card.data, card.len);
        tf_proto_buf_free(&card);
    }
    return rc;
}

static uint64_t loop_ms(const struct tf_node_delivery *d)
{
    return uv_now(d->node->loop);
}

static bool refused(const struct tf_node_delivery *d, const uint8_t to[32],
                    const uint8_t mailbox[32])
{
    uint64_t now = loop_ms(d);
    for (size_t i = 0; i < REFUSALS; i++) {
        const struct refusal *r = &d->refusals[i];
        if (r->until > now && memcmp(r->to, to, 32) == 0 && memcmp(r->mailbox, mailbox, 32) == 0)
            return true;
    }
    return false;
}

/* The reason of the latest live refusal for `to`, or NULL. */
static const char *refusal_of(const struct tf_node_delivery *d, const uint8_t to[32])
{
    const struct refusal *best = NULL;
    uint64_t now = loop_ms(d);
    for (size_t i = 0; i < REFUSALS; i++) {
        const struct refusal *r = &d->refusals[i];
        if (r->until > now && memcmp(r->to, to, 32) == 0 &&
            (best == NULL || r->until > best->until))
            best = r;
    }
    return best != NULL ? best->why : NULL;
}

static void add_refusal(struct tf_node_delivery *d, const uint8_t to[32], const uint8_t mailbox[32],
                        uint64_t for_ms, const char *why)
{
    struct refusal *r = NULL;
    for (size_t i = 0; i < REFUSALS && r == NULL; i++)
        if (memcmp(d->refusals[i].to, to, 32) == 0 &&
            memcmp(d->refusals[i].mailbox, mailbox, 32) == 0)
            r = &d->refusals[i];
    if (r == NULL)
        r = &d->refusals[d->next_refusal++ % REFUSALS];
    memcpy(r->to, to, 32);
    memcpy(r->mailbox, mailbox, 32);
    r->until = loop_ms(d) + for_ms;
    snprintf(r->why, sizeof r->why, "%s", why);
}

/* The link an envelope for `to` goes on through a mailbox: an up link, in
 * the card's order, to one of its mailboxes that speaks the mailbox
 * protocol and has not refused `to` lately; NULL if none. */
static struct tf_node_link *mailbox_route(struct tf_node_delivery *d, const uint8_t to[32])
{
    struct tf_node *node = d->node;
    struct tf_node_contact c;
    bool stranger;
    struct tf_node_link *link = NULL;
    if (recipient_card(node, to, &c, &stranger) == TF_OK) {
        for (size_t i = 0; i < c.fields.n_mailboxes && link == NULL; i++) {
            const uint8_t *m = c.fields.mailboxes[i].sign_pk;
            struct tf_node_link *l = tf_node_net_find(node->net, m);
            if (l != NULL && tf_node_link_mailbox(l) && !refused(d, to, m))
                link = l;
        }
    }
    tf_node_contact_deinit(&c);
    return link;
}

/* The link for `to` now, in the sender order (docs/PROTOCOL.md
 * "Mailboxes"): its own, else one to its first usable mailbox. */
static struct tf_node_link *route(struct tf_node_delivery *d, const uint8_t to[32], bool *upload)
{
    struct tf_node_link *link = tf_node_net_find(d->node->net, to);
    *upload = false;
    if (link == NULL && (link = mailbox_route(d, to)) != NULL)
        *upload = true;
    return link;
}

/* Dials the mailboxes of `to` (those that have not refused it lately),
 * remembering for whom, once a dial to `to` itself has failed. */
static void dial_mailboxes(struct tf_node_delivery *d, const uint8_t to[32])
{
    struct tf_node *node = d->node;
    struct tf_node_contact c;
    bool stranger;
    if (recipient_card(node, to, &c, &stranger) == TF_OK) {
        for (size_t i = 0; i < c.fields.n_mailboxes; i++) {
            const struct tf_proto_card_mailbox *m = &c.fields.mailboxes[i];
            if (refused(d, to, m->sign_pk) || tf_node_net_find(node->net, m->sign_pk) != NULL ||
                sodium_memcmp(m->sign_pk, node->id.sign_pk, 32) == 0)
                continue; /* this node itself: deposit_here holds it */
            struct mbox_wait *w = NULL;
            for (size_t j = 0; j < MBOX_WAITS && w == NULL; j++)
                if (d->waits[j].used && memcmp(d->waits[j].mailbox, m->sign_pk, 32) == 0 &&
                    memcmp(d->waits[j].to, to, 32) == 0)
                    w = &d->waits[j];
            if (w == NULL)
                w = &d->waits[d->next_wait++ % MBOX_WAITS];
            memcpy(w->mailbox, m->sign_pk, 32);
            memcpy(w->to, to, 32);
            w->used = true;
            tf_node_net_dial_as(node->net, m->sign_pk, m->addrs, m->n_addrs, stranger);
        }
    }
    tf_node_contact_deinit(&c);
}

/* mailbox: when the recipient names this node as one of its mailboxes and
 * is not connected, the envelope is held here, as an upload of ours would
 * be: custody passes to our own mailbox tables in this transaction.  True
 * if that ended e's delivery; false if e is still to be sent (not ours to
 * hold, or refused here: e.last_error says why). */
static bool deposit_here(struct tf_node_delivery *d, struct tf_node_outbox_entry *e);

/* Copies len bytes into *out (owned; none, NULL, when len is 0). */
static int buf_copy(struct tf_proto_buf *out, const uint8_t *p, size_t len)
{
    out->data = NULL;
    out->len = 0;
    if (len == 0)
        return TF_OK;
    if ((out->data = malloc(len)) == NULL)
        return TF_E_NOMEM;
    memcpy(out->data, p, len);
    out->len = len;
    return TF_OK;
}

/*
 * direct: a new envelope's msg id, time-ordered: u48be(unix milliseconds)
 * followed by 10 random bytes.  The receiver's dedupe needs only that a
 * sender never reuses an id (80 random bits within one millisecond); the
 * time prefix makes the outbox (and the notes, kept under the same id) grow
 * at the end of its B-tree instead of at a random leaf, so a commit dirties
 * fewer pages.  What it tells: the sender's clock when the envelope was made,
 * to the millisecond, to whoever sees the id (the recipient; a mailbox, on
 * the outer part of a sealed envelope), which the envelope's arrival and its
 * expiry already tell to within its retries and its lifetime.
 */
static void new_msg_id(struct tf_node_delivery *d, uint8_t msg_id[static 16])
{
    uint64_t t = now_ms();
    for (int i = 0; i < 6; i++)
        msg_id[i] = (uint8_t)(t >> (40 - 8 * i));
    random_take(d, msg_id + 6, MSG_ID_RANDOM);
}

/*
 * The outbox budgets (docs/THREAT-MODEL.md): at most outbox_max_per_peer
 * entries for one recipient, and outbox_max_strangers for all recipients
 * that are not contacts together.  Beyond either, the new envelope is
 * refused (TF_E_TOO_LONG, logged with the budget's name): the state change
 * that wanted it fails, and nothing already queued is dropped (an
 * introduction dropped on one side would break agreement).
 */
static void acks_count(struct tf_node_delivery *d, const uint8_t pk[32], uint64_t *for_pk,
                       uint64_t *strangers);

static int check_budgets(struct tf_node_delivery *d, const uint8_t to_pk[32], bool *stranger)
{
    struct tf_node *node = d->node;
    int rc = sync_counts(d);
    if (rc != TF_OK)
        return rc;
    *stranger = !is_contact(node, to_pk, &rc);
    if (rc != TF_OK)
        return rc;
    const struct tally *x = tally_find(&d->tallies, to_pk);
    uint64_t mine = x != NULL ? x->outbox : 0, strangers = d->tallies.outbox_strangers;
    if (mine >= node->config.outbox_max_per_peer ||
        (*stranger && strangers >= node->config.outbox_max_strangers)) {
        /* ackdefer: entries acknowledged are not queued any more; their
         * deletes go with this turn's commit. */
        uint64_t acked_mine, acked_strangers;
        acks_count(d, to_pk, &acked_mine, &acked_strangers);
        mine -= acked_mine < mine ? acked_mine : mine;
        strangers -= acked_strangers < strangers ? acked_strangers : strangers;
        d->flush_now = d->flush_now || acked_mine > 0 || acked_strangers > 0;
    }
    char tid[TF_PROTO_TEXT_ID_SIZE];
    if (mine >= node->config.outbox_max_per_peer) {
        tf_proto_text_id_encode(to_pk, tid);
        tf_node_log(TF_NODE_LOG_WARN, "delivery",
                    "%s: envelope refused: %llu already queued for it (outbox_max_per_peer)", tid,
                    (unsigned long long)mine);
        return TF_E_TOO_LONG;
    }
    if (*stranger && strangers >= node->config.outbox_max_strangers) {
        tf_proto_text_id_encode(to_pk, tid);
        tf_node_log(TF_NODE_LOG_WARN, "delivery",
                    "%s: envelope refused: %llu already queued for non-contacts "
                    "(outbox_max_strangers)",
                    tid, (unsigned long long)strangers);
        return TF_E_TOO_LONG;
    }
    return TF_OK;
}

int tf_node_delivery_enqueue(struct tf_node_delivery *d, const struct tf_node_contact *to,
                             uint16_t type, const uint8_t *body, size_t len, uint64_t expires,
                             uint8_t msg_id[static 16])
{
    struct tf_node_outbox_entry e;
    memset(&e, 0, sizeof e);
    bool stranger;
    int rc = check_budgets(d, to->pk, &stranger);
    if (rc != TF_OK)
        return rc;
    if (!tf_proto_msg_type_is_valid(type))
        return TF_E_BAD_VALUE;
    if (len > TF_PROTO_BODY_MAX)
        return TF_E_TOO_LONG;
    new_msg_id(d, e.msg_id);
    if (d->node->config.direct_envelopes != 0 && len > 0) {
        /* direct: the body is kept and the envelope sealed only when a
         * sealed one is needed (ensure_sealed): on a direct link to the
         * recipient it goes unsealed and unsigned. */
        if ((rc = buf_copy(&e.body, body, len)) != TF_OK)
            return rc;
    } else {
        rc = tf_proto_envelope_seal(&d->node->id, to->pk, to->fields.box_pk, e.msg_id, expires,
                                    type, body, len, &e.envelope);
        if (rc != TF_OK)
            return rc;
    }
    memcpy(e.to_pk, to->pk, 32);
    e.type = type;
    e.created = tf_node_now(d->node);
    e.expires = expires;
    e.next_try_ms = now_ms();
    size_t sp = tf_node_store_savepoint(d->node->store);
    rc = tf_node_store_outbox_put(d->node->store, &e);
    if (rc == TF_OK) {
        count_write(d, sp, to->pk, 1, 0, stranger);
        memcpy(msg_id, e.msg_id, 16);
        d->due = true;
    }
    tf_node_outbox_entry_deinit(&e);
    return rc;
}

/* Records the end of an outgoing note's delivery. */
static void note_outcome(struct tf_node_delivery *d, const uint8_t msg_id[16],
                         enum tf_node_message_state state, const char *error)
{
    struct tf_node *node = d->node;
    struct tf_node_message m;
    memset(&m, 0, sizeof m);
    if (tf_node_store_message_get(node->store, msg_id, &m) != TF_OK)
        return;
    m.state = state;
    m.updated = tf_node_now(node);
    snprintf(m.error, sizeof m.error, "%s", error ? error : "");
    int rc = tf_node_store_message_put(node->store, &m);
    if (rc == TF_OK) {
        char tid[TF_PROTO_TEXT_ID_SIZE], hex[33];
        tf_proto_text_id_encode(m.contact, tid);
        sodium_bin2hex(hex, sizeof hex, msg_id, 16);
        struct tf_proto_mp_writer w;
        struct tf_proto_buf rec;
        tf_proto_mp_writer_init(&w);
        tf_proto_mp_write_map(&w, state == TF_NODE_MESSAGE_FAILED ? 5 : 4);
        tf_proto_mp_write_cstr(&w, "time");
        tf_proto_mp_write_uint(&w, m.updated);
        tf_proto_mp_write_cstr(&w, "type");
        tf_proto_mp_write_cstr(&w, state == TF_NODE_MESSAGE_FAILED ? "message.failed"
                                                                   : "message.delivered");
        tf_proto_mp_write_cstr(&w, "contact");
        tf_proto_mp_write_cstr(&w, tid);
        tf_proto_mp_write_cstr(&w, "id");
        tf_proto_mp_write_cstr(&w, hex);
        if (state == TF_NODE_MESSAGE_FAILED) {
            tf_proto_mp_write_cstr(&w, "reason");
            tf_proto_mp_write_cstr(&w, error ? error : "");
        }
        if (tf_proto_mp_writer_finish(&w, &rec) == TF_OK) {
            rc = tf_node_event(node, &rec);
            tf_proto_buf_free(&rec);
        }
    }
    if (rc != TF_OK)
        tf_node_log(TF_NODE_LOG_ERROR, "delivery", "cannot record a delivery outcome: %s",
                    tf_strerror(rc));
    tf_node_message_deinit(&m);
}

/* Ends delivery of an outbox entry (ACKed, rejected or expired).  False if
 * its delete could not be written (logged): the entry is still there. */
static bool finish(struct tf_node_delivery *d, const struct tf_node_outbox_entry *e,
                   enum tf_node_message_state state, const char *error)
{
    if (sync_counts(d) != TF_OK)
        d->stale = true; /* logged by the next check that needs them */
    size_t sp = tf_node_store_savepoint(d->node->store);
    int rc;
#ifdef TF_TEST_HOOKS
    if (d->node->test_fail_outbox_delete) {
        d->node->test_fail_outbox_delete = false;
        tf_node_log(TF_NODE_LOG_WARN, "delivery", "test hook: failing an outbox delete with EIO");
        rc = -EIO;
    } else
#endif
        rc = tf_node_store_outbox_del(d->node->store, e->msg_id);
    if (rc != TF_OK && rc != TF_E_NOT_FOUND) {
        tf_node_log(TF_NODE_LOG_ERROR, "delivery", "cannot remove a delivered envelope: %s",
                    tf_strerror(rc));
        return false;
    }
    if (rc == TF_OK)
        count_write(d, sp, e->to_pk, -1, 0, false);
    if (rc == TF_OK && e->type == TF_PROTO_MSG_TYPE_NOTE)
        note_outcome(d, e->msg_id, state, error);
    if (rc == TF_OK && e->type == TF_PROTO_MSG_TYPE_REQUEST &&
        (rc = tf_node_request_envelope_done(d->node, e->msg_id, -1)) != TF_OK)
        tf_node_log(TF_NODE_LOG_ERROR, "delivery", "cannot record a request's delivery: %s",
                    tf_strerror(rc));
    return true;
}

/* Ends delivery of an entry its recipient refused for good (requests:
 * the asker's request closes as "refused"). */
static void finish_refused(struct tf_node_delivery *d, const struct tf_node_outbox_entry *e,
                           enum tf_proto_ack_reason reason)
{
    int rc = e->type == TF_PROTO_MSG_TYPE_REQUEST
                 ? tf_node_request_envelope_done(d->node, e->msg_id, (int)reason)
                 : TF_OK;
    if (rc != TF_OK)
        tf_node_log(TF_NODE_LOG_ERROR, "delivery", "cannot close a refused request: %s",
                    tf_strerror(rc));
    finish(d, e, TF_NODE_MESSAGE_FAILED, tf_proto_ack_reason_name(reason));
}

/*
 * direct: makes e's sealed envelope when it has none yet.  An entry that
 * kept its body is sealed and signed only where a sealed envelope is needed
 * (an upload to a mailbox, a peer without the direct feature, this node's
 * own mailbox tables), and once: the caller writes the entry back with it,
 * so every later try sends the same bytes (a mailbox sees one envelope,
 * however often it is uploaded) and costs no seal.  The recipient's box key
 * comes from its card as known now.  TF_E_NOT_FOUND when the recipient is no
 * longer known; the sealer's error otherwise.
 */
static int ensure_sealed(struct tf_node_delivery *d, struct tf_node_outbox_entry *e)
{
    if (e->envelope.len > 0)
        return TF_OK;
    struct tf_node_contact c;
    bool stranger;
    int rc = recipient_card(d->node, e->to_pk, &c, &stranger);
    if (rc == TF_OK)
        rc = tf_proto_envelope_seal(&d->node->id, e->to_pk, c.fields.box_pk, e->msg_id, e->expires,
                                    e->type, e->body.data, e->body.len, &e->envelope);
    tf_node_contact_deinit(&c);
    return rc;
}

/* After ensure_sealed failed with rc: true if e cannot be sealed (the
 * recipient is gone, or its card's box key is unusable), in which case
 * nothing will deliver it and its delivery is ended as failed. */
static bool unsealable(struct tf_node_delivery *d, struct tf_node_outbox_entry *e, int rc)
{
    if (rc != TF_E_NOT_FOUND && rc != TF_E_BAD_VALUE)
        return false;
    char why[TF_NODE_OUTBOX_ERROR_MAX];
    snprintf(why, sizeof why, "cannot seal: %s", tf_strerror(rc));
    tf_node_log(TF_NODE_LOG_WARN, "delivery", "envelope dropped: %s", why);
    finish(d, e, TF_NODE_MESSAGE_FAILED, why);
    return true;
}

/* The link message that carries e on link: DIRECT when link is to the
 * recipient itself, negotiated the feature and e kept its body; else the
 * sealed envelope (made now if need be) as ENVELOPE, or as UPLOAD when link
 * is to one of the recipient's mailboxes. */
static int entry_msg(struct tf_node_delivery *d, struct tf_node_link *link,
                     struct tf_node_outbox_entry *e, bool upload, struct tf_proto_buf *msg)
{
    if (!upload && e->body.len > 0 && tf_node_link_direct(link) &&
        sodium_memcmp(tf_node_link_peer(link), e->to_pk, 32) == 0) {
        struct tf_proto_buf direct;
        int rc = tf_proto_envelope_direct_encode(e->msg_id, e->expires, e->type, e->body.data,
                                                 e->body.len, &direct);
        if (rc == TF_OK) {
            rc = tf_proto_link_envelope_as(TF_PROTO_LINK_DIRECT, direct.data, direct.len, msg);
            tf_proto_buf_free(&direct);
        }
        return rc;
    }
    int rc = ensure_sealed(d, e);
    if (rc != TF_OK)
        return rc;
    return tf_proto_link_envelope_as(upload ? TF_PROTO_LINK_UPLOAD : TF_PROTO_LINK_ENVELOPE,
                                     e->envelope.data, e->envelope.len, msg);
}

/* Sends e on link (as UPLOAD when link is to one of the recipient's
 * mailboxes) and reschedules it in case no ACK comes. */
static int send_entry(struct tf_node_delivery *d, struct tf_node_link *link,
                      struct tf_node_outbox_entry *e, bool upload)
{
    struct tf_proto_buf msg;
    struct inflight *f = calloc(1, sizeof *f);
    if (f == NULL)
        return TF_E_NOMEM;
    int rc = entry_msg(d, link, e, upload, &msg);
    if (rc == TF_OK) {
        /* Held until this turn's commit (the node commits right after
         * delivery runs), with the state change that queued it. */
        rc = tf_node_net_send(link, &msg, true);
        tf_proto_buf_free(&msg);
    } else if (unsealable(d, e, rc)) {
        free(f);
        return TF_OK;
    }
    if (rc != TF_OK) {
        free(f);
        return rc;
    }
    d->node->stats.envelopes_sent++;
    memcpy(f->msg_id, e->msg_id, 16);
    f->link = link;
    f->upload = upload;
    f->next = d->inflight;
    d->inflight = f;
    tf_node_link_set_in_flight(link, tf_node_link_in_flight(link) + 1);
    e->attempts++;
    e->next_try_ms = now_ms() + backoff_ms(d, e->attempts);
    e->last_error[0] = '\0';
    return tf_node_store_outbox_put(d->node->store, e);
}

/* Asks net for a link to e's recipient and backs the entry off meanwhile. */
static int need_link(struct tf_node_delivery *d, struct tf_node_outbox_entry *e)
{
    struct tf_node *node = d->node;
    struct tf_node_contact c;
    bool stranger;
    /* A correspondent who is not a contact (a connector): their card. */
    int rc = recipient_card(node, e->to_pk, &c, &stranger);
    if (rc == TF_E_NOT_FOUND) {
        /* The recipient was removed: nobody to deliver to. */
        finish(d, e, TF_NODE_MESSAGE_FAILED, "no longer a contact");
        return TF_OK;
    }
    if (rc != TF_OK)
        return rc;
    if (stranger && e->attempts >= node->config.stranger_dials_max) {
        /* The address comes from a stranger's card: it is dialled only
         * stranger_dials_max times per entry (every attempt counts, sends
         * included).  From then on the entry waits for the stranger to
         * connect (link_up sends it) and looks again only to expire. */
        tf_node_contact_deinit(&c);
        if (e->attempts == node->config.stranger_dials_max) {
            char tid[TF_PROTO_TEXT_ID_SIZE];
            tf_proto_text_id_encode(e->to_pk, tid);
            tf_node_log(TF_NODE_LOG_INFO, "delivery",
                        "%s: not a contact, dialled %u times: waiting for it to connect", tid,
                        e->attempts);
            e->attempts++; /* logged once */
        }
        snprintf(e->last_error, sizeof e->last_error,
                 "not a contact: waiting for it to connect (stranger_dials_max)");
        dial_mailboxes(d, e->to_pk); /* its mailboxes, under the stranger dial budgets */
        e->next_try_ms = now_ms() + node->config.retry_max_ms;
        return tf_node_store_outbox_put(node->store, e);
    }
    tf_node_net_dial(node->net, c.pk, c.fields.addrs, c.fields.n_addrs);
    tf_node_contact_deinit(&c);
    const char *why = dial_error_of(d, e->to_pk), *mbox = refusal_of(d, e->to_pk);
    if (why != NULL && mbox != NULL)
        snprintf(e->last_error, sizeof e->last_error, "%s; mailbox: %s", why, mbox);
    else if (why != NULL || mbox != NULL)
        snprintf(e->last_error, sizeof e->last_error, "%s%s",
                 why != NULL ? why : "mailbox: ", why != NULL ? "" : mbox);
    e->attempts++;
    e->next_try_ms = now_ms() + backoff_ms(d, e->attempts);
    return tf_node_store_outbox_put(node->store, e);
}

static bool deposit_here(struct tf_node_delivery *d, struct tf_node_outbox_entry *e)
{
    struct tf_node *node = d->node;
    struct tf_node_contact c;
    bool stranger, mine = false;
    if (recipient_card(node, e->to_pk, &c, &stranger) == TF_OK)
        mine = tf_proto_card_mailbox_index(&c.fields, node->id.sign_pk) >= 0;
    tf_node_contact_deinit(&c);
    /* direct: what a mailbox holds is sealed (kept in e once made). */
    int rc = mine ? ensure_sealed(d, e) : TF_OK;
    if (rc != TF_OK)
        return unsealable(d, e, rc);
    enum tf_proto_ack_status status;
    enum tf_proto_ack_reason reason;
    if (!mine || tf_node_mailbox_deposit(node->mailbox, e->envelope.data, e->envelope.len, &status,
                                         &reason) != TF_OK)
        return false;
    if (status == TF_PROTO_ACK_DEFERRED) {
        snprintf(e->last_error, sizeof e->last_error, "this node's mailbox: %s",
                 tf_proto_ack_reason_name(reason));
        return false;
    }
    if (status == TF_PROTO_ACK_OK)
        finish(d, e, TF_NODE_MESSAGE_DELIVERED, NULL);
    else
        finish_refused(d, e, reason);
    return true;
}

/* Ends delivery of an entry whose envelope expired undelivered. */
static void expire_entry(struct tf_node_delivery *d, const struct tf_node_outbox_entry *e)
{
    char tid[TF_PROTO_TEXT_ID_SIZE];
    tf_proto_text_id_encode(e->to_pk, tid);
    tf_node_log(TF_NODE_LOG_INFO, "delivery", "envelope to %s expired after %u attempts", tid,
                e->attempts);
    finish(d, e, TF_NODE_MESSAGE_FAILED, "expired undelivered");
}

struct due_ctx {
    struct tf_node_delivery *d;
    uint64_t now_s;
    uint64_t deferred; /* entries put back for a full link, in scan order */
    int err;
    size_t visited, acked; /* ackdefer: entries seen, and acknowledged ones */
};

/* The timer's scan: entries whose next try has come, for any peer. */
static int due_cb(const struct tf_node_outbox_entry *ce, void *arg)
{
    struct due_ctx *x = arg;
    struct tf_node_delivery *d = x->d;
    x->visited++;
    if (acks_find(&d->acks, ce->msg_id) != NULL) {
        /* ackdefer: acknowledged, its delete not written yet: never sent
         * again (nor does it make the timer fire: arm_timer). */
        x->acked++;
        return 0;
    }
    struct tf_node_outbox_entry e;
    memset(&e, 0, sizeof e);
    /* A private copy: the callback's entry is only valid during the call, and
     * we write the entry back. */
    e = *ce;
    e.envelope = (struct tf_proto_buf){0};
    e.body = (struct tf_proto_buf){0};
    int rc = buf_copy(&e.envelope, ce->envelope.data, ce->envelope.len);
    if (rc == TF_OK)
        rc = buf_copy(&e.body, ce->body.data, ce->body.len);
    if (rc != TF_OK) {
        tf_node_outbox_entry_deinit(&e);
        x->err = rc;
        return 1;
    }
    if (x->now_s > e.expires) {
        expire_entry(d, &e);
    } else {
        struct inflight **pp = find_inflight(d, e.msg_id);
        if (pp != NULL) {
            /* Due again without an ACK: the receiver may have dropped it (a
             * failed commit never ACKs).  Send it again. */
            struct inflight *f = *pp;
            *pp = f->next;
            uint32_t n = tf_node_link_in_flight(f->link);
            tf_node_link_set_in_flight(f->link, n > 0 ? n - 1 : 0);
            free(f);
        }
        bool upload;
        struct tf_node_link *link = route(d, e.to_pk, &upload);
        if (link != NULL && tf_node_link_in_flight(link) < d->node->config.max_in_flight) {
            rc = send_entry(d, link, &e, upload);
        } else if (link == NULL) {
            if (!deposit_here(d, &e))
                rc = need_link(d, &e);
        } else {
            /* A full link: the ACK that opens it sends this peer's queue in
             * order (send_pending); look again in a second in any case
             * (never spin on a due entry). */
            e.next_try_ms = now_ms() + 1000 + x->deferred++; /* keeps their order */
            rc = tf_node_store_outbox_put(d->node->store, &e);
        }
    }
    tf_node_outbox_entry_deinit(&e);
    if (rc != TF_OK) {
        x->err = rc;
        return 1;
    }
    return 0;
}

/* One peer's queued envelopes that are not on the wire, oldest first. */
struct queued {
    uint64_t created, next_try_ms;
    uint8_t msg_id[16];
};

struct queue_scan {
    struct tf_node_delivery *d;
    const uint8_t *pk;
    struct queued *items;
    size_t n, cap;
};

static int queue_cb(const struct tf_node_outbox_entry *e, void *arg)
{
    struct queue_scan *q = arg;
    if (memcmp(e->to_pk, q->pk, 32) != 0 || find_inflight(q->d, e->msg_id) != NULL ||
        acks_find(&q->d->acks, e->msg_id) != NULL) /* ackdefer: acknowledged */
        return 0;
    if (tf_node__grow((void **)&q->items, &q->cap, q->n, sizeof *q->items) != TF_OK)
        return TF_E_NOMEM;
    struct queued *it = &q->items[q->n++];
    it->created = e->created;
    it->next_try_ms = e->next_try_ms;
    memcpy(it->msg_id, e->msg_id, 16);
    return 0;
}

/* Creation order (seconds), then the order they were queued or last tried
 * in: an envelope is never overtaken by one queued a second later. */
static int queued_cmp(const void *pa, const void *pb)
{
    const struct queued *a = pa, *b = pb;
    if (a->created != b->created)
        return a->created < b->created ? -1 : 1;
    if (a->next_try_ms != b->next_try_ms)
        return a->next_try_ms < b->next_try_ms ? -1 : 1;
    return memcmp(a->msg_id, b->msg_id, 16);
}

/* Sends what is queued for pk (its link is up, or an ACK opened its full
 * window), oldest first, until the window is full again. */
static int send_pending(struct tf_node_delivery *d, const uint8_t pk[32])
{
    struct tf_node *node = d->node;
    bool upload;
    struct tf_node_link *link = route(d, pk, &upload);
    if (link == NULL)
        return TF_OK;
    struct queue_scan q = {d, pk, NULL, 0, 0};
    int rc = tf_node_store_outbox_foreach(node->store, queue_cb, &q);
    if (rc == TF_OK && q.n > 1)
        qsort(q.items, q.n, sizeof *q.items, queued_cmp);
    uint64_t now_s = tf_node_now(node);
    for (size_t i = 0; rc == TF_OK && i < q.n; i++) {
        if (tf_node_link_in_flight(link) >= node->config.max_in_flight)
            break;
        struct tf_node_outbox_entry e;
        memset(&e, 0, sizeof e);
        rc = tf_node_store_outbox_get(node->store, q.items[i].msg_id, &e);
        if (rc == TF_E_NOT_FOUND) {
            rc = TF_OK;
            continue;
        }
        if (rc == TF_OK) {
            if (now_s > e.expires)
                expire_entry(d, &e);
            else
                rc = send_entry(d, link, &e, upload);
        }
        tf_node_outbox_entry_deinit(&e);
    }
    free(q.items);
    return rc;
}

static bool acked_cb(const uint8_t msg_id[static 16], void *arg)
{
    return acks_find(arg, msg_id) != NULL;
}

/* Arms the timer for the outbox's next due entry (stops it when the outbox
 * is empty). */
static void arm_timer(struct tf_node_delivery *d)
{
    uint64_t next;
    /* ackdefer: acknowledged entries are due no more, however early their
     * next try: the earliest due key that is not one of them (a walk of at
     * most one key more than there are of them). */
    int rc = d->acks.n == 0 ? tf_node_store_outbox_next_due(d->node->store, &next)
                            : tf_node_store_outbox_next_due_skip(d->node->store, d->acks.n + 1,
                                                                 acked_cb, &d->acks, &next);
    if (rc == TF_OK) {
        uint64_t now = now_ms();
        uv_timer_start(&d->timer, timer_cb, next > now ? next - now : 0, 0);
    } else {
        uv_timer_stop(&d->timer);
    }
}

void tf_node_delivery_run(struct tf_node_delivery *d)
{
    if (d == NULL || d->closing)
        return;
    struct tf_node *node = d->node;
    int rc = TF_OK;
    while (d->n_ready > 0 && rc == TF_OK) {
        uint8_t pk[32];
        memcpy(pk, d->ready[--d->n_ready], 32);
        rc = send_pending(d, pk);
    }
    if (d->due && rc == TF_OK) {
        d->due = false;
        struct due_ctx x = {d, tf_node_now(node), 0, TF_OK, 0, 0};
        rc = tf_node_store_outbox_due(node->store, now_ms(), DUE_BATCH, due_cb, &x);
        if (rc == TF_OK)
            rc = x.err;
        /* ackdefer: a batch full of acknowledged entries would be read again
         * and again until their deletes are written: write them now. */
        if (x.acked > 0 && x.visited == DUE_BATCH)
            d->flush_now = true;
    }
    if (rc != TF_OK)
        tf_node_log(TF_NODE_LOG_ERROR, "delivery", "outbox: %s", tf_strerror(rc));
    arm_timer(d);
}

void tf_node_delivery_link_up(struct tf_node_delivery *d, struct tf_node_link *link)
{
    for (size_t i = 0; i < sizeof d->dial_errors / sizeof d->dial_errors[0]; i++)
        if (memcmp(d->dial_errors[i].pk, tf_node_link_peer(link), 32) == 0)
            d->dial_errors[i].text[0] = '\0';
    mark_ready(d, tf_node_link_peer(link));
    /* A mailbox dialled for some recipients: their queues go through it. */
    for (size_t i = 0; i < MBOX_WAITS; i++) {
        struct mbox_wait *w = &d->waits[i];
        if (w->used && memcmp(w->mailbox, tf_node_link_peer(link), 32) == 0) {
            w->used = false;
            mark_ready(d, w->to);
        }
    }
}

void tf_node_delivery_link_closed(struct tf_node_delivery *d, struct tf_node_link *link)
{
    struct inflight **pp = &d->inflight;
    while (*pp != NULL) {
        if ((*pp)->link == link) {
            struct inflight *f = *pp;
            *pp = f->next;
            if (f->upload) {
                /* The mailbox took it and said nothing: the next try goes
                 * another way (another mailbox, or direct) for a while. */
                struct tf_node_outbox_entry e;
                memset(&e, 0, sizeof e);
                if (tf_node_store_outbox_get(d->node->store, f->msg_id, &e) == TF_OK)
                    add_refusal(d, e.to_pk, tf_node_link_peer(link), backoff_ms(d, e.attempts + 1),
                                "no answer from the mailbox");
                tf_node_outbox_entry_deinit(&e);
            }
            free(f);
        } else {
            pp = &(*pp)->next;
        }
    }
}

void tf_node_delivery_dial_failed(struct tf_node_delivery *d, const uint8_t pk[32], int err)
{
    char tid[TF_PROTO_TEXT_ID_SIZE];
    tf_proto_text_id_encode(pk, tid);
    tf_node_log(TF_NODE_LOG_DEBUG, "delivery", "cannot reach %s: %s; will retry", tid,
                tf_strerror(err));
    /* Sender order: the recipient's own addresses first, then its
     * mailboxes. */
    if (d->node->net != NULL)
        dial_mailboxes(d, pk);
    const size_t n = sizeof d->dial_errors / sizeof d->dial_errors[0];
    struct dial_error *slot = NULL;
    for (size_t i = 0; i < n && slot == NULL; i++)
        if (memcmp(d->dial_errors[i].pk, pk, 32) == 0)
            slot = &d->dial_errors[i];
    if (slot == NULL)
        slot = &d->dial_errors[d->next_dial_error++ % n];
    memcpy(slot->pk, pk, 32);
    snprintf(slot->text, sizeof slot->text, "cannot reach it: %s", tf_strerror(err));
}

/* ackdefer: counts the writes an outbox delete after an ACK made since
 * savepoint sp in batch b. */
static void count_ack_ops(struct tf_node_delivery *d, uint64_t b, size_t sp)
{
    struct tf_node_store *st = d->node->store;
    size_t now = tf_node_store_savepoint(st);
    if (tf_node_store_batches(st) != b || now < sp)
        return; /* the batch was lost meanwhile */
    if (d->ack_batch != b) {
        d->ack_batch = b;
        d->ack_ops = 0;
    }
    d->ack_ops += now - sp;
}

static void flush_timer_cb(uv_timer_t *t)
{
    struct tf_node_delivery *d = t->data;
    d->flush_now = true; /* written before this turn's commit */
}

/* ackdefer: marks e acknowledged, its delete to go with a later commit
 * (struct acks); false when it is to be deleted now: a note, deferring off
 * (ack_defer_max 0), or ack_defer_max deletes already waiting, which then
 * go with this turn's commit. */
static bool defer_ack(struct tf_node_delivery *d, const struct tf_node_outbox_entry *e)
{
    struct tf_node *node = d->node;
    if (e->type == TF_PROTO_MSG_TYPE_NOTE || node->config.ack_defer_max == 0)
        return false;
    if (d->acks.n >= node->config.ack_defer_max) {
        tf_node_log(TF_NODE_LOG_DEBUG, "delivery",
                    "%zu outbox deletes wait (ack_defer_max): writing them now", d->acks.n);
        node->stats.ack_defer_full++;
        d->flush_now = true;
        return false;
    }
    if (acks_add(&d->acks, e->msg_id, e->to_pk, e->type) != TF_OK)
        return false;
    node->stats.acks_deferred++;
    if (d->acks.n == 1)
        uv_timer_start(&d->flush, flush_timer_cb, node->config.ack_defer_ms, 0);
    return true;
}

/* ackdefer: how many of the waiting deletes are for pk, and for
 * non-contacts (as the budgets count them). */
static void acks_count(struct tf_node_delivery *d, const uint8_t pk[32], uint64_t *for_pk,
                       uint64_t *strangers)
{
    *for_pk = *strangers = 0;
    for (size_t k = 0; k < d->acks.n; k++) {
        const struct acked *x = &d->acks.items[k];
        if (x->written)
            continue;
        const struct tally *t = tally_find(&d->tallies, x->to_pk);
        *for_pk += memcmp(x->to_pk, pk, 32) == 0;
        *strangers += t != NULL && t->stranger;
    }
}

void tf_node_delivery_flush(struct tf_node_delivery *d, bool force)
{
    if (d == NULL || d->closing || d->acks.n == d->acks.n_written)
        return;
    struct tf_node_store *st = d->node->store;
    if (!force && !d->flush_now && !tf_node_store_dirty(st))
        return;
    uint64_t b = tf_node_store_batches(st);
    size_t sp = tf_node_store_savepoint(st);
    for (size_t k = 0; k < d->acks.n; k++) {
        struct acked *x = &d->acks.items[k];
        if (x->written)
            continue;
        struct tf_node_outbox_entry e;
        memset(&e, 0, sizeof e);
        memcpy(e.msg_id, x->msg_id, 16);
        memcpy(e.to_pk, x->to_pk, 32);
        e.type = x->type;
        /* A delete that could not be written waits for the next flush:
         * marking it written would let the entry be sent again. */
        if (!finish(d, &e, TF_NODE_MESSAGE_DELIVERED, NULL))
            continue;
        x->written = true;
        d->acks.n_written++;
    }
    count_ack_ops(d, b, sp);
    d->flush_now = false;
    if (d->acks.n_written < d->acks.n) /* a delete failed: try again later */
        uv_timer_start(&d->flush, flush_timer_cb, d->node->config.ack_defer_ms, 0);
    else
        uv_timer_stop(&d->flush);
    arm_timer(d); /* the entries just deleted are due no more */
}

void tf_node_delivery_committed(struct tf_node_delivery *d, int rc)
{
    if (d == NULL || d->closing || d->acks.n_written == 0)
        return;
    /* Written deletes are committed, or lost with their batch: then they
     * wait again (the store's counts were taken back with them). */
    acks_keep(&d->acks, rc != TF_OK);
    if (d->acks.n == 0)
        uv_timer_stop(&d->flush);
    else
        uv_timer_start(&d->flush, flush_timer_cb, d->node->config.ack_defer_ms, 0);
}

bool tf_node_delivery_acked(const struct tf_node_delivery *d, const uint8_t msg_id[static 16])
{
    return d != NULL && acks_find(&d->acks, msg_id) != NULL;
}

size_t tf_node_delivery_acks_pending(const struct tf_node_delivery *d)
{
    return d != NULL ? d->acks.n - d->acks.n_written : 0;
}

bool tf_node_delivery_acks_only(const struct tf_node_delivery *d)
{
    if (d == NULL)
        return false;
    struct tf_node_store *st = d->node->store;
    return tf_node_store_dirty(st) && d->ack_batch == tf_node_store_batches(st) && d->ack_ops > 0 &&
           tf_node_store_savepoint(st) == d->ack_ops;
}

void tf_node_delivery_ack(struct tf_node_delivery *d, struct tf_node_link *link,
                          const struct tf_proto_link_msg *m)
{
    struct inflight **pp = find_inflight(d, m->msg_id);
    if (pp == NULL || (*pp)->link != link) {
        /* An ACK for something not in flight here (a late duplicate): the
         * outbox may still hold it if it was sent on another link. */
        if (pp == NULL) {
            char tid[TF_PROTO_TEXT_ID_SIZE];
            tf_proto_text_id_encode(tf_node_link_peer(link), tid);
            tf_node_log(TF_NODE_LOG_DEBUG, "delivery", "%s: ACK for an envelope not in flight",
                        tid);
        }
    }
    /* Only an ACK that opens a full window leaves queued envelopes for this
     * peer that nothing else will send (the due scan sends the rest). */
    bool was_full = tf_node_link_in_flight(link) >= d->node->config.max_in_flight;
    bool upload = false;
    if (pp != NULL) {
        struct inflight *f = *pp;
        *pp = f->next;
        upload = f->upload && f->link == link;
        uint32_t n = tf_node_link_in_flight(f->link);
        tf_node_link_set_in_flight(f->link, n > 0 ? n - 1 : 0);
        free(f);
    }
    struct tf_node_outbox_entry e;
    memset(&e, 0, sizeof e);
    int rc = tf_node_store_outbox_get(d->node->store, m->msg_id, &e);
    if (rc == TF_OK && acks_find(&d->acks, m->msg_id) != NULL)
        rc = TF_E_NOT_FOUND; /* ackdefer: acknowledged already, its delete waits */
    char tid[TF_PROTO_TEXT_ID_SIZE];
    if (rc == TF_OK && !upload && memcmp(e.to_pk, tf_node_link_peer(link), 32) != 0) {
        /* Only the recipient, or the mailbox it was uploaded to on this
         * link, may acknowledge an envelope. */
        tf_node_log(TF_NODE_LOG_WARN, "delivery", "ACK from a peer that is not the recipient");
    } else if (rc == TF_OK && upload && m->status == TF_PROTO_ACK_DEFERRED) {
        /* mailbox: refused here (not hosted, over quota): kept, and tried
         * again at once another way, this mailbox left out for a while. */
        char mid[TF_PROTO_TEXT_ID_SIZE];
        tf_proto_text_id_encode(e.to_pk, tid);
        tf_proto_text_id_encode(tf_node_link_peer(link), mid);
        tf_node_log(TF_NODE_LOG_WARN, "delivery", "envelope to %s: mailbox %s refused it: %s", tid,
                    mid, tf_proto_ack_reason_name(m->reason));
        add_refusal(d, e.to_pk, tf_node_link_peer(link), backoff_ms(d, e.attempts + 1),
                    tf_proto_ack_reason_name(m->reason));
        snprintf(e.last_error, sizeof e.last_error, "mailbox %.16s...: %s", mid,
                 tf_proto_ack_reason_name(m->reason));
        e.next_try_ms = now_ms();
        rc = tf_node_store_outbox_put(d->node->store, &e);
        if (rc != TF_OK)
            tf_node_log(TF_NODE_LOG_ERROR, "delivery", "outbox: %s", tf_strerror(rc));
        d->due = true;
    } else if (rc == TF_OK) {
        if (m->status == TF_PROTO_ACK_OK) {
            /* From a mailbox, a custody transfer: it holds the envelope
             * until the recipient has it (docs/PROTOCOL.md "Mailboxes"). */
            struct tf_node_store *st = d->node->store;
            size_t sp = tf_node_store_savepoint(st);
            uint64_t b = tf_node_store_batches(st);
            if (!defer_ack(d, &e)) {
                finish(d, &e, TF_NODE_MESSAGE_DELIVERED, NULL);
                if (e.type != TF_PROTO_MSG_TYPE_NOTE) /* a note's outcome is an event */
                    count_ack_ops(d, b, sp);
            }
        } else {
            const char *why = tf_proto_ack_reason_name(m->reason);
            tf_proto_text_id_encode(e.to_pk, tid);
            tf_node_log(TF_NODE_LOG_WARN, "delivery", "envelope to %s rejected: %s", tid, why);
            finish_refused(d, &e, (enum tf_proto_ack_reason)m->reason);
        }
    }
    tf_node_outbox_entry_deinit(&e);
    if (was_full)
        mark_ready(d, tf_node_link_peer(link));
}

/* Receive path. */

/* Queues an ACK; it waits for the commit if anything was written. */
static void send_ack(struct tf_node_delivery *d, struct tf_node_link *link,
                     const uint8_t msg_id[16], enum tf_proto_ack_reason reason)
{
    struct tf_proto_buf msg;
    int rc = tf_proto_link_ack(
        msg_id, reason == TF_PROTO_ACK_REASON_NONE ? TF_PROTO_ACK_OK : TF_PROTO_ACK_REJECTED,
        reason, &msg);
    if (rc == TF_OK) {
        rc = tf_node_net_send(link, &msg, tf_node_store_dirty(d->node->store));
        tf_proto_buf_free(&msg);
    }
    if (rc != TF_OK)
        tf_node_log(TF_NODE_LOG_WARN, "delivery", "cannot send an ACK: %s", tf_strerror(rc));
}

bool tf_node_note_is_valid(const uint8_t *text, size_t len)
{
    if (len < 1 || len > TF_NODE_MESSAGE_TEXT_MAX || !tf_proto_utf8_is_valid(text, len))
        return false;
    for (size_t i = 0; i < len; i++)
        if ((text[i] < 0x20 && text[i] != '\n' && text[i] != '\t') || text[i] == 0x7f)
            return false;
    return true;
}

/*
 * The messages budgets (docs/THREAT-MODEL.md): at most
 * messages_max_per_contact notes received from one contact, and messages_max
 * in all, are stored.  Beyond, a new note is not taken: no ACK, so its sender
 * keeps it and retries (and its owner sees it fail if it expires first).
 * Nothing already acknowledged is dropped to make room: the owner's notes go
 * only by the documented retention (messages_retention_s).
 */
static bool messages_full(struct tf_node_delivery *d, const uint8_t from_pk[32])
{
    const struct tf_node_config *cfg = &d->node->config;
    char tid[TF_PROTO_TEXT_ID_SIZE];
    tf_proto_text_id_encode(from_pk, tid);
    int rc = sync_counts(d);
    if (rc != TF_OK) {
        tf_node_log(TF_NODE_LOG_ERROR, "delivery", "cannot count the messages: %s",
                    tf_strerror(rc));
        return true;
    }
    const struct tally *x = tally_find(&d->tallies, from_pk);
    uint64_t mine = x != NULL ? x->received : 0;
    if (mine >= cfg->messages_max_per_contact) {
        tf_node_log(TF_NODE_LOG_WARN, "delivery",
                    "%s: note not taken: %llu notes from it stored (messages_max_per_contact); "
                    "its sender will retry",
                    tid, (unsigned long long)mine);
        return true;
    }
    if (d->tallies.received >= cfg->messages_max) {
        tf_node_log(TF_NODE_LOG_WARN, "delivery",
                    "%s: note not taken: %llu notes stored (messages_max); its sender will retry",
                    tid, (unsigned long long)d->tallies.received);
        return true;
    }
    return false;
}

/* What the receive path takes from an envelope once it is authenticated:
 * opened (sealed, signed), or DIRECT from the link's peer itself. */
struct taken {
    uint8_t msg_id[16];
    uint64_t expires;
    const uint8_t *from_pk; /* 32 bytes */
    uint16_t type;
    struct tf_proto_bytes body;
};

/* The seen table's keys for an envelope (node/store.h).  Duplicates are
 * found per sender and only once the envelope is authenticated, so nobody
 * can pin or pre-empt another sender's ids.
 *
 * key = BLAKE2b-128(sender_pk) || msg_id: one sender's rows share a prefix,
 * and the msg ids twofoldd makes start with the time (PROTOCOL section 7),
 * so each new row lands at the end of its sender's range, in a leaf page that
 * the last commit already wrote, instead of in a random one.  Two envelopes
 * get the same key only for the same msg_id from senders whose keys have
 * the same BLAKE2b-128: taking another sender's place needs a second
 * preimage of the 128-bit hash of a given key (about 2^128 key pairs to
 * try), and a pair of colliding keys one holds (about 2^64) only makes one's
 * own envelopes duplicates of each other, as with the key before.  A sender
 * whose msg ids are not time-ordered only spreads its own rows (the seen_max
 * budget bounds them all the same).
 *
 * legacy = BLAKE2b-128(sender_pk || msg_id), the key before schema 12, still
 * looked up while rows of that form can live; it also names a note whose
 * msg_id another message already has (receive_note). */
struct seen_keys {
    uint8_t key[TF_NODE_STORE_SEEN_KEY_LEN];
    uint8_t legacy[16];
};

static void seen_keys(const uint8_t from_pk[static 32], const uint8_t msg_id[static 16],
                      struct seen_keys *out)
{
    uint8_t in[32 + 16];
    static_assert(sizeof out->key == 16 + 16, "a sender hash, then the msg id");
    crypto_generichash(out->key, 16, from_pk, 32, NULL, 0);
    memcpy(out->key + 16, msg_id, 16);
    memcpy(in, from_pk, 32);
    memcpy(in + 32, msg_id, 16);
    crypto_generichash(out->legacy, sizeof out->legacy, in, sizeof in, NULL, 0);
}

/* Stores a note from a contact. */
static enum tf_proto_ack_reason receive_note(struct tf_node_delivery *d, const struct taken *o,
                                             const struct seen_keys *seen)
{
    struct tf_node *node = d->node;
    struct tf_node_contact c;
    memset(&c, 0, sizeof c);
    int rc = tf_node_store_contact_get(node->store, o->from_pk, &c);
    bool ok = rc == TF_OK && !c.blocked;
    tf_node_contact_deinit(&c);
    if (!ok)
        return TF_PROTO_ACK_REASON_REFUSED;
    if (!tf_node_note_is_valid(o->body.ptr, o->body.len))
        return TF_PROTO_ACK_REASON_INVALID;
    if (messages_full(d, o->from_pk))
        return (enum tf_proto_ack_reason) - 1; /* no ACK: its sender retries */
    size_t sp = tf_node_store_savepoint(node->store);
    struct tf_node_message m;
    memset(&m, 0, sizeof m);
    /* The note is kept under its msg_id, unless a message already has that
     * id (another sender chose the same one, or it is one of ours): then
     * under BLAKE2b-128(sender_pk || msg_id), unique per (sender, msg_id). */
    rc = tf_node_store_message_get(node->store, o->msg_id, &m);
    tf_node_message_deinit(&m);
    memset(&m, 0, sizeof m);
    if (rc != TF_OK && rc != TF_E_NOT_FOUND) {
        /* Not stored: no ACK at all, so the sender retries. */
        tf_node_log(TF_NODE_LOG_ERROR, "delivery", "cannot read the messages: %s", tf_strerror(rc));
        return (enum tf_proto_ack_reason) - 1;
    }
    memcpy(m.id, rc == TF_OK ? seen->legacy : o->msg_id, 16);
    memcpy(m.contact, o->from_pk, 32);
    m.outgoing = false;
    m.time = m.updated = tf_node_now(node);
    m.state = TF_NODE_MESSAGE_RECEIVED;
    m.text.data = (uint8_t *)(uintptr_t)o->body.ptr;
    m.text.len = o->body.len;
    char tid[TF_PROTO_TEXT_ID_SIZE], hex[33];
    tf_proto_text_id_encode(o->from_pk, tid);
    sodium_bin2hex(hex, sizeof hex, m.id, 16);
    struct tf_proto_mp_writer w;
    struct tf_proto_buf rec = {0};
    tf_proto_mp_writer_init(&w);
    tf_proto_mp_write_map(&w, 5);
    tf_proto_mp_write_cstr(&w, "time");
    tf_proto_mp_write_uint(&w, m.time);
    tf_proto_mp_write_cstr(&w, "type");
    tf_proto_mp_write_cstr(&w, "message.received");
    tf_proto_mp_write_cstr(&w, "contact");
    tf_proto_mp_write_cstr(&w, tid);
    tf_proto_mp_write_cstr(&w, "id");
    tf_proto_mp_write_cstr(&w, hex);
    tf_proto_mp_write_cstr(&w, "text");
    tf_proto_mp_write_str(&w, (const char *)o->body.ptr, o->body.len);
    if ((rc = tf_proto_mp_writer_finish(&w, &rec)) == TF_OK &&
        (rc = tf_node_store_message_put(node->store, &m)) == TF_OK &&
        (rc = tf_node_store_seen_add(node->store, seen->key, o->expires)) == TF_OK)
        rc = tf_node_event(node, &rec);
    tf_proto_buf_free(&rec);
    if (rc != TF_OK) {
        /* Not stored: no ACK at all, so the sender retries. */
        tf_node_log(TF_NODE_LOG_ERROR, "delivery", "cannot store a note from %s: %s", tid,
                    tf_strerror(rc));
        return (enum tf_proto_ack_reason) - 1;
    }
    count_write(d, sp, o->from_pk, 0, 1, false);
    tf_node_log(TF_NODE_LOG_INFO, "delivery", "note from %s stored", tid);
    if (node->test_crash_after_receive)
        node->test_crash_armed = true;
    return TF_PROTO_ACK_REASON_NONE;
}

/* The seen budget (seen_max ids): when it is full, a new envelope is not
 * taken (no ACK, so its sender tries again later; expired ids are collected
 * by the sweep).  Logged. */
static bool seen_full(struct tf_node_delivery *d, struct tf_node_link *link)
{
    uint64_t seen;
    int rc = tf_node_store_seen_count(d->node->store, &seen);
    if (rc != TF_OK) {
        tf_node_log(TF_NODE_LOG_ERROR, "delivery", "cannot count the seen ids: %s",
                    tf_strerror(rc));
        return true;
    }
    if (seen < d->node->config.seen_max)
        return false;
    char tid[TF_PROTO_TEXT_ID_SIZE];
    tf_proto_text_id_encode(tf_node_link_peer(link), tid);
    tf_node_log(TF_NODE_LOG_WARN, "delivery",
                "%s: envelope not taken: %llu msg ids remembered (seen_max); try later", tid,
                (unsigned long long)seen);
    return true;
}

/* An ENVELOPE whose outer part does not decode: refused for good (reason 1)
 * when its msg_id can be found, so its sender stops retrying; otherwise
 * there is nothing to acknowledge and it is dropped. */
static void refuse_malformed(struct tf_node_delivery *d, struct tf_node_link *link,
                             const uint8_t *buf, size_t len, int why)
{
    uint8_t msg_id[16];
    char tid[TF_PROTO_TEXT_ID_SIZE];
    tf_proto_text_id_encode(tf_node_link_peer(link), tid);
    if (tf_proto_envelope_peek_id(buf, len, msg_id) != TF_OK) {
        tf_node_log(TF_NODE_LOG_WARN, "delivery",
                    "%s: malformed envelope (%s) without a msg id dropped", tid, tf_strerror(why));
        return;
    }
    tf_node_log(TF_NODE_LOG_WARN, "delivery", "%s: malformed envelope (%s) refused", tid,
                tf_strerror(why));
    send_ack(d, link, msg_id, TF_PROTO_ACK_REASON_MALFORMED);
}

/* Why an envelope that does not open is refused.  tf_proto_envelope_open
 * returns TF_E_BAD_VALUE only for an unknown inner type. */
static enum tf_proto_ack_reason open_failure_reason(int rc)
{
    return rc == TF_E_BAD_VALUE ? TF_PROTO_ACK_REASON_UNSUPPORTED : tf_proto_ack_reason_for(rc);
}

/*
 * Takes an envelope whose sender is known: t, or nothing when open_rc (the
 * reason it could not be opened or read) is not TF_OK, in which case only
 * t->msg_id is set.  Duplicates are found on (sender, msg_id) whichever way
 * the envelope came (direct, sealed on the sender's link, pushed by a
 * mailbox), so it is taken once.  relayed: pushed by a mailbox, when its
 * sender need not be the link's peer.  now: the time the caller checked the
 * expiry against (read once, so that an envelope at its expiry is not
 * refused as malformed by a second reading a second later).  Then the ACK
 * is queued.
 */
static void take(struct tf_node_delivery *d, struct tf_node_link *link, const struct taken *t,
                 int open_rc, bool relayed, uint64_t now)
{
    struct tf_node *node = d->node;
    enum tf_proto_ack_reason reason;
    struct tf_node_savepoint sp = tf_node_savepoint(node);
    struct seen_keys keys;
    int rc = open_rc;
    if (rc == TF_OK) {
        seen_keys(t->from_pk, t->msg_id, &keys);
        rc = tf_node_store_seen_check(node->store, keys.key, keys.legacy, now);
        if (rc == TF_OK) {
            /* A duplicate of an envelope this sender had delivered. */
            send_ack(d, link, t->msg_id, TF_PROTO_ACK_REASON_NONE);
            return;
        }
        if (rc != TF_E_NOT_FOUND) {
            tf_node_log(TF_NODE_LOG_ERROR, "delivery", "seen check failed: %s", tf_strerror(rc));
            return;
        }
        rc = TF_OK;
    }
    if (rc != TF_OK) {
        reason = open_failure_reason(rc);
    } else if (t->expires > now + TF_NODE_DELIVERY_TTL_MAX_S) {
        /* Its id would be kept (seen) until then: a sender may not pin rows
         * in this store for longer than any envelope needs to live. */
        reason = TF_PROTO_ACK_REASON_MALFORMED;
    } else if (!relayed && sodium_memcmp(t->from_pk, tf_node_link_peer(link), 32) != 0) {
        reason = TF_PROTO_ACK_REASON_NOT_PEER;
    } else if (seen_full(d, link)) {
        reason = (enum tf_proto_ack_reason) - 1; /* no ACK: taken later */
    } else if (t->type == TF_PROTO_MSG_TYPE_NOTE) {
        reason = receive_note(d, t, &keys);
    } else {
        node->receive_may_wait = false; /* waitcommit: the handler may set it */
        int r = t->type == TF_PROTO_MSG_TYPE_CARD_UPDATE
                    ? tf_node_profile_card_update(node, t->from_pk, t->body.ptr, t->body.len)
                    : tf_node_intro_receive(node, t->type, t->from_pk, t->body.ptr, t->body.len);
        /* An envelope that changed nothing (a proposal already known, a
         * close for an item already closed, a card no newer than ours)
         * leaves no seen row: processing it again would change nothing
         * again, and remembering it would let one peer fill the seen budget
         * with free copies of one proposal under fresh msg ids, after which
         * nobody's new envelopes would be taken. */
        struct tf_node_savepoint after = tf_node_savepoint(node);
        bool changed = after.store != sp.store || after.events != sp.events;
        if (r == TF_PROTO_ACK_REASON_NONE && changed) {
            int rc2 = tf_node_store_seen_add(node->store, keys.key, t->expires);
            if (rc2 != TF_OK) {
                tf_node_log(TF_NODE_LOG_ERROR, "delivery", "cannot record a msg id: %s",
                            tf_strerror(rc2));
                r = -1;
            } else if (node->test_crash_after_receive) {
                node->test_crash_armed = true;
            }
        }
        /* waitcommit: a change that sends nothing (the handler said so)
         * may wait for the next commit, its seen row and ACK with it. */
        if (r == TF_PROTO_ACK_REASON_NONE && node->receive_may_wait)
            tf_node_commit_may_wait(node, sp);
        node->receive_may_wait = false;
        reason = (enum tf_proto_ack_reason)r;
    }
    if (reason != TF_PROTO_ACK_REASON_NONE) {
        tf_node_rollback(node, sp); /* refused or failed: it changed nothing */
        /* What the refusal itself must keep (a refused proposal's tombstone)
         * is written after the rollback, in this batch, before the ACK. */
        tf_node_intro_save_refusals(node);
    }
    if ((int)reason < 0)
        return;
    if (reason != TF_PROTO_ACK_REASON_NONE) {
        char tid[TF_PROTO_TEXT_ID_SIZE];
        tf_proto_text_id_encode(tf_node_link_peer(link), tid);
        tf_node_log(TF_NODE_LOG_WARN, "delivery", "%s: envelope rejected: %s", tid,
                    tf_proto_ack_reason_name(reason));
    }
    send_ack(d, link, t->msg_id, reason);
}

/* An envelope from link: sent by the link's peer itself, or (relayed) held
 * for us by a mailbox and PUSHed, when its sender may be anyone. */
static void receive(struct tf_node_delivery *d, struct tf_node_link *link, const uint8_t *buf,
                    size_t len, bool relayed)
{
    struct tf_node *node = d->node;
    struct tf_proto_envelope env;
    struct tf_proto_envelope_opened o;
    struct tf_proto_buf plain = {0};
    node->stats.envelopes_received++;
    int rc = tf_proto_envelope_decode(buf, len, &env);
    if (rc != TF_OK) {
        refuse_malformed(d, link, buf, len, rc);
        return;
    }
    uint64_t now = tf_node_now(node);
    rc = tf_proto_envelope_open(&node->id, buf, len, now, &plain, &o);
    struct taken t = {.expires = env.expires};
    memcpy(t.msg_id, env.msg_id, 16);
    if (rc == TF_OK) {
        t.from_pk = o.from_pk;
        t.type = o.type;
        t.body = o.body;
    }
    take(d, link, &t, rc, relayed, now);
    tf_proto_buf_free(&plain);
}

void tf_node_delivery_envelope(struct tf_node_delivery *d, struct tf_node_link *link,
                               const uint8_t *buf, size_t len)
{
    receive(d, link, buf, len, false);
}

void tf_node_delivery_pushed(struct tf_node_delivery *d, struct tf_node_link *link,
                             const uint8_t *buf, size_t len)
{
    receive(d, link, buf, len, true);
}

void tf_node_delivery_direct(struct tf_node_delivery *d, struct tf_node_link *link,
                             const uint8_t *buf, size_t len)
{
    struct tf_node *node = d->node;
    struct tf_proto_envelope_direct m;
    node->stats.envelopes_received++;
    memset(&m, 0, sizeof m);
    int rc = tf_proto_envelope_direct_decode(buf, len, &m);
    if (rc != TF_OK && rc != TF_E_BAD_VALUE) {
        /* node/net.c closes the link on such a message before it comes
         * here; should one come, it is dropped unacknowledged. */
        char tid[TF_PROTO_TEXT_ID_SIZE];
        tf_proto_text_id_encode(tf_node_link_peer(link), tid);
        tf_node_log(TF_NODE_LOG_WARN, "delivery", "%s: malformed DIRECT message (%s) dropped", tid,
                    tf_strerror(rc));
        return;
    }
    /* Its sender is the link's authenticated peer, its recipient this
     * node; from here it is taken exactly as an opened envelope. */
    struct taken t = {
        .expires = m.expires, .from_pk = tf_node_link_peer(link), .type = m.type, .body = m.body};
    memcpy(t.msg_id, m.msg_id, 16);
    uint64_t now = tf_node_now(node);
    if (rc == TF_OK && now > m.expires)
        rc = TF_E_EXPIRED;
    take(d, link, &t, rc, false, now);
}
