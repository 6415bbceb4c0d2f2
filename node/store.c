/* SPDX-License-Identifier: MIT */
#include "node/store.h"

#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include <lmdb.h>
#include <sodium.h>

#include "node/home.h"
#include "proto/envelope.h"
#include "proto/identity.h"
#include "proto/statement.h"

/* Sparse: the file grows with the data, not with the map. */
#define INITIAL_MAPSIZE ((size_t)64 << 20)
#define META_KEY_MAX 64
#define SEQ_LEN 8
#define SCHEMA_KEY "schema"
/* Shortest id prefix contact_find resolves ("tf1" and three characters). */
#define FIND_PREFIX_MIN 6
#define MSG_ID_LEN TF_PROTO_MSG_ID_LEN
/* A time index key: u64be(time) || msg_id, so LMDB's byte order is time order. */
#define TIME_KEY_LEN (SEQ_LEN + MSG_ID_LEN)
/* Records of the outbox and messages tables (node/store.h). */
#define OUTBOX_FIELDS 8
#define MESSAGE_FIELDS 7
#define ERROR_LEN_MAX (TF_NODE_OUTBOX_ERROR_MAX - 1)
/* seen_gc forgets ids in batches of this many keys. */
#define GC_BATCH 256
/* seenkeys: the seen table's keys (node/store.h), the keys of its expiry
 * index, the longest time index key, and the 16-byte keys of rows older code
 * wrote, kept under 16 zero bytes || the old key since schema 12. */
#define SEEN_KEY_LEN TF_NODE_STORE_SEEN_KEY_LEN
#define SEEN_EXP_LEN (SEQ_LEN + SEEN_KEY_LEN)
#define TIME_KEY_MAX SEEN_EXP_LEN
#define LEGACY_KEY_LEN 16
#define SEEN_KEYS_SCHEMA 12
#define SEEN_LEGACY_KEY "seen-legacy-until"

static_assert(MSG_ID_LEN == 16, "store.h spells msg ids as 16 bytes");
static_assert(SEEN_KEY_LEN == 2 * LEGACY_KEY_LEN,
              "an old seen key fits the new form's second half");

enum dbi {
    DBI_META,
    DBI_CONTACTS,
    DBI_ALIASES,
    DBI_EVENTS,
    DBI_OUTBOX,
    DBI_OUTBOX_DUE,
    DBI_SEEN,
    DBI_SEEN_EXP,
    DBI_MESSAGES,
    DBI_INTROS_OUT,
    DBI_INTROS_IN,
    DBI_CARDS,
    DBI_POLICY_HITS,
    DBI_INTRO_PAIRS,
    DBI_INTRO_EXPIRY,
    DBI_INTRO_PENDING,
    DBI_INTRO_SCHED,
    /* requests (schema 7) */
    DBI_REQUESTS,
    DBI_REQUEST_INDEX,
    DBI_INTRO_STATS,
    /* mailbox (schema 8) */
    DBI_MBOX_TENANTS,
    DBI_MBOX_ENVS,
    DBI_MBOX_EXPIRY,
    /* introkeys (schema 11): the intro records under time-ordered keys and
     * their id -> order indexes (node/store.h); they replace intros_out and
     * intros_in. */
    DBI_INTROS_OUT_SEQ,
    DBI_INTROS_OUT_IDS,
    DBI_INTROS_IN_SEQ,
    DBI_INTROS_IN_IDS,
    DBI_COUNT
};

/* Each table with the schema that added it. */
static const struct {
    const char *name;
    uint32_t since;
} tables[DBI_COUNT] = {
    [DBI_META] = {"meta", 1},
    [DBI_CONTACTS] = {"contacts", 1},
    [DBI_ALIASES] = {"aliases", 1},
    [DBI_EVENTS] = {"events", 1},
    [DBI_OUTBOX] = {"outbox", 2},
    [DBI_OUTBOX_DUE] = {"outbox_due", 2},
    [DBI_SEEN] = {"seen", 2},
    [DBI_SEEN_EXP] = {"seen_exp", 2},
    [DBI_MESSAGES] = {"messages", 2},
    [DBI_INTROS_OUT] = {"intros_out", 3}, /* introkeys: until schema 11 */
    [DBI_INTROS_IN] = {"intros_in", 3},
    [DBI_CARDS] = {"cards", 3},
    [DBI_POLICY_HITS] = {"policy_hits", 4},
    [DBI_INTRO_PAIRS] = {"intro_pairs", 5},
    [DBI_INTRO_EXPIRY] = {"intro_expiry", 5},
    [DBI_INTRO_PENDING] = {"intro_pending", 5},
    [DBI_INTRO_SCHED] = {"intro_sched", 6},
    /* requests (schema 7) */
    [DBI_REQUESTS] = {"requests", 7},
    [DBI_REQUEST_INDEX] = {"request_index", 7},
    [DBI_INTRO_STATS] = {"intro_stats", 7},
    /* mailbox (schema 8) */
    [DBI_MBOX_TENANTS] = {"mbox_tenants", 8},
    [DBI_MBOX_ENVS] = {"mbox_envs", 8},
    [DBI_MBOX_EXPIRY] = {"mbox_expiry", 8},
    /* introkeys (schema 11) */
    [DBI_INTROS_OUT_SEQ] = {"intros_out_seq", 11},
    [DBI_INTROS_OUT_IDS] = {"intros_out_ids", 11},
    [DBI_INTROS_IN_SEQ] = {"intros_in_seq", 11},
    [DBI_INTROS_IN_IDS] = {"intros_in_ids", 11},
};

/* The value of keys that carry none (index entries).  Not NULL: write_op
 * reads a NULL value as "delete". */
static const uint8_t no_value[1];

/* One write of the open transaction.  MDB_MAP_FULL leaves a write
 * transaction unusable, so every write is journalled: after the map has grown
 * the journal is replayed into a new transaction and no earlier write of the
 * loop iteration is lost. */
static_assert(DBI_COUNT <= UINT8_MAX, "struct op keeps a table in a byte");

struct op {
    MDB_dbi dbi;
    uint8_t table; /* enum dbi: which of st->table_writes it counts in */
    bool del;
    unsigned flags; /* mdb_put flags */
    size_t klen, vlen;
    uint8_t bytes[]; /* key, then value */
};

struct tf_node_store {
    MDB_env *env;
    MDB_dbi dbi[DBI_COUNT];
    /* The layout of the open store: tables[i].since > schema means table i
     * is absent (a read-only open of an older store) and reads as empty. */
    uint32_t schema;
    bool readonly;
    MDB_txn *txn;     /* the group-commit write transaction, or NULL */
    uint64_t txn_gen; /* counts write transactions begun, to detect a replaced txn */
    int failed;       /* why the write transaction was lost; reported by commit */
    unsigned readers; /* our own read transactions open right now */
    struct op **ops;  /* journal of txn */
    size_t n_ops, cap_ops;
    uint64_t commits;
    /* For modules that keep counts of stored rows in memory (node/delivery.c):
     * the lowest journal position whose writes were discarded since the last
     * tf_node_store_undo_take (SIZE_MAX: none), journals ended, and contacts
     * created or deleted. */
    size_t undone_from;
    uint64_t batches;
    uint64_t contacts_gen;
    /* pages (issue 17): puts and deletes committed, per table. */
    uint64_t table_writes[DBI_COUNT];
    /* seenkeys: until when seen_check also looks up old keys (node/store.h). */
    uint64_t seen_legacy_until;
    /* introkeys: the order prefix the next new intro record gets. */
    uint64_t intro_seq;
};

/*
 * The one place LMDB results become twofold codes.  Internal helpers return
 * "raw" codes: 0, an MDB_* code, a positive errno from LMDB, or a code that is
 * already final (TF_E_* or -errno), which passes through unchanged.
 */
static int lmdb_err(int rc)
{
    switch (rc) {
    case MDB_SUCCESS:
        return TF_OK;
    case MDB_NOTFOUND:
        return TF_E_NOT_FOUND;
    case MDB_KEYEXIST:
        return TF_E_EXISTS;
    case MDB_CORRUPTED:
    case MDB_PAGE_NOTFOUND:
    case MDB_INVALID:
    case MDB_INCOMPATIBLE:
        return TF_E_CORRUPT;
    case MDB_VERSION_MISMATCH:
        return TF_E_VERSION;
    case MDB_MAP_FULL:
    case MDB_DBS_FULL:
    case MDB_TXN_FULL:
    case MDB_CURSOR_FULL:
    case MDB_PAGE_FULL:
        return -ENOSPC;
    case MDB_READERS_FULL:
    case MDB_TLS_FULL:
    case MDB_MAP_RESIZED:
        return -EAGAIN;
    case MDB_BAD_RSLOT:
    case MDB_BAD_TXN:
    case MDB_BAD_VALSIZE:
    case MDB_BAD_DBI:
        return -EINVAL;
    case MDB_PANIC:
        return -EIO;
    }
    if (rc > 0)
        return -rc; /* LMDB reports system errors as positive errno values */
    if (rc >= MDB_KEYEXIST && rc <= MDB_LAST_ERRCODE)
        return -EIO; /* an MDB_* code newer than this list */
    return rc;
}

/* LMDB takes non-const pointers even for bytes it only reads. */
static MDB_val mval(const void *p, size_t n)
{
    MDB_val v = {n, (void *)(uintptr_t)p};
    return v;
}

static void store_be64(uint8_t out[static SEQ_LEN], uint64_t v)
{
    for (int i = 0; i < SEQ_LEN; i++)
        out[i] = (uint8_t)(v >> (56 - 8 * i));
}

static uint64_t load_be(const uint8_t *p, size_t n)
{
    uint64_t v = 0;
    for (size_t i = 0; i < n; i++)
        v = (v << 8) | p[i];
    return v;
}

/* Doubles the map.  LMDB allows this only while no transaction of this
 * process is open: a read transaction's pages would move under it. */
static int grow_map(struct tf_node_store *st)
{
    MDB_envinfo info;
    int rc;
    if (st->txn != NULL || st->readers > 0)
        return MDB_MAP_FULL;
    if ((rc = mdb_env_info(st->env, &info)) != 0)
        return rc;
    if (info.me_mapsize > SIZE_MAX / 2)
        return MDB_MAP_FULL;
    return mdb_env_set_mapsize(st->env, info.me_mapsize * 2);
}

/* Begins a transaction, retrying once after freeing the reader slots of dead
 * processes (MDB_READERS_FULL) or adopting a map another process has grown
 * (MDB_MAP_RESIZED).  *txn is NULL on failure. */
static int txn_begin(struct tf_node_store *st, unsigned flags, MDB_txn **txn)
{
    int rc = mdb_txn_begin(st->env, NULL, flags, txn);
    if (rc == MDB_READERS_FULL) {
        int dead;
        if (mdb_reader_check(st->env, &dead) == 0)
            rc = mdb_txn_begin(st->env, NULL, flags, txn);
    } else if (rc == MDB_MAP_RESIZED && st->txn == NULL && st->readers == 0) {
        if ((rc = mdb_env_set_mapsize(st->env, 0)) == 0)
            rc = mdb_txn_begin(st->env, NULL, flags, txn);
    }
    if (rc != 0)
        *txn = NULL;
    return rc;
}

/* Reads go through the open write transaction, so that they see its
 * uncommitted writes; otherwise through a read transaction of their own
 * (*own), which read_end ends before the public function returns. */
static int read_begin(struct tf_node_store *st, MDB_txn **txn, bool *own)
{
    *own = st->txn == NULL;
    if (!*own) {
        *txn = st->txn;
        return 0;
    }
    int rc = txn_begin(st, MDB_RDONLY, txn);
    if (rc == 0)
        st->readers++;
    return rc;
}

static void read_end(struct tf_node_store *st, MDB_txn *txn, bool own)
{
    if (own) {
        mdb_txn_abort(txn);
        st->readers--;
    }
}

static void journal_clear(struct tf_node_store *st)
{
    for (size_t i = 0; i < st->n_ops; i++)
        free(st->ops[i]);
    st->n_ops = 0;
    st->batches++;
}

/* The writes of the journal from sp on are discarded (not committed). */
static void journal_undone(struct tf_node_store *st, size_t sp)
{
    if (sp < st->n_ops && sp < st->undone_from)
        st->undone_from = sp;
}

static int journal_reserve(struct tf_node_store *st)
{
    if (st->n_ops < st->cap_ops)
        return 0;
    size_t cap = st->cap_ops == 0 ? 16 : st->cap_ops;
    if (cap > SIZE_MAX / 2 / sizeof *st->ops)
        return TF_E_NOMEM;
    struct op **ops = realloc(st->ops, 2 * cap * sizeof *ops);
    if (ops == NULL)
        return TF_E_NOMEM;
    st->ops = ops;
    st->cap_ops = 2 * cap;
    return 0;
}

static int op_apply(MDB_txn *txn, const struct op *op)
{
    MDB_val k = mval(op->bytes, op->klen), v = mval(op->bytes + op->klen, op->vlen);
    return op->del ? mdb_del(txn, op->dbi, &k, NULL) : mdb_put(txn, op->dbi, &k, &v, op->flags);
}

/* The write transaction is lost: end it and remember why, so that commit
 * reports it (callers were already told that its earlier writes succeeded). */
static int fail_txn(struct tf_node_store *st, int rc)
{
    if (st->txn != NULL) {
        mdb_txn_abort(st->txn);
        st->txn = NULL;
    }
    journal_undone(st, 0);
    journal_clear(st);
    st->failed = lmdb_err(rc);
    return st->failed;
}

static int write_begin(struct tf_node_store *st)
{
    if (st->readonly)
        return -EROFS;
    if (st->failed != 0)
        return st->failed;
    if (st->txn != NULL)
        return 0;
    int rc = txn_begin(st, 0, &st->txn);
    if (rc == 0)
        st->txn_gen++;
    return rc;
}

static int regrow(struct tf_node_store *st, const struct op *extra);

size_t tf_node_store_savepoint(const struct tf_node_store *st)
{
    return st->txn != NULL ? st->n_ops : 0;
}

int tf_node_store_rollback(struct tf_node_store *st, size_t sp)
{
    if (st->failed != 0)
        return st->failed;
    if (st->txn == NULL || sp >= st->n_ops)
        return TF_OK;
    /* LMDB cannot undo part of a transaction: end it and replay the journal
     * up to the savepoint into a new one. */
    mdb_txn_abort(st->txn);
    st->txn = NULL;
    journal_undone(st, sp);
    for (size_t i = sp; i < st->n_ops; i++)
        free(st->ops[i]);
    st->n_ops = sp;
    if (sp == 0)
        return TF_OK;
    int rc = write_begin(st);
    for (size_t i = 0; rc == 0 && i < st->n_ops; i++)
        rc = op_apply(st->txn, st->ops[i]);
    if (rc == MDB_MAP_FULL)
        rc = regrow(st, NULL);
    return rc != 0 ? fail_txn(st, rc) : TF_OK;
}

/* After MDB_MAP_FULL: ends the unusable transaction, grows the map and
 * replays the journal, then `extra` if given, into a new one.  On failure no
 * transaction is open. */
static int regrow(struct tf_node_store *st, const struct op *extra)
{
    int rc;
    if (st->txn != NULL) {
        mdb_txn_abort(st->txn);
        st->txn = NULL;
    }
    if ((rc = grow_map(st)) != 0 || (rc = write_begin(st)) != 0)
        return rc;
    for (size_t i = 0; rc == 0 && i < st->n_ops; i++)
        rc = op_apply(st->txn, st->ops[i]);
    if (rc == 0 && extra != NULL)
        rc = op_apply(st->txn, extra);
    if (rc != 0) {
        mdb_txn_abort(st->txn);
        st->txn = NULL;
    }
    return rc;
}

/* Applies one write (val NULL: delete key) in the write transaction, opening
 * it if needed.  Every failure after the transaction is open loses the whole
 * transaction (fail_txn), so a half-done compound change is never committed. */
static int write_op(struct tf_node_store *st, enum dbi dbi, const void *key, size_t klen,
                    const void *val, size_t vlen, unsigned flags)
{
    struct op *op = NULL;
    int rc = write_begin(st);
    if (rc != 0)
        return rc;
    if (vlen <= SIZE_MAX - sizeof *op - klen)
        op = malloc(sizeof *op + klen + vlen);
    if (op == NULL || journal_reserve(st) != 0) {
        free(op);
        return fail_txn(st, TF_E_NOMEM);
    }
    op->dbi = st->dbi[dbi];
    op->table = (uint8_t)dbi;
    op->del = val == NULL;
    op->flags = flags;
    op->klen = klen;
    op->vlen = vlen;
    memcpy(op->bytes, key, klen);
    if (vlen > 0)
        memcpy(op->bytes + klen, val, vlen);
    rc = op_apply(st->txn, op);
    if (rc == MDB_MAP_FULL)
        rc = regrow(st, op);
    if (rc != 0) {
        free(op);
        return fail_txn(st, rc);
    }
    st->ops[st->n_ops++] = op;
    return 0;
}

/* introkeys: the schema that dropped table dbi, 0 if it is still in use. */
static uint32_t dropped_by(enum dbi dbi)
{
    return dbi == DBI_INTROS_OUT || dbi == DBI_INTROS_IN ? 11 : 0;
}

/* True if a store of schema `schema` has table dbi. */
static bool in_schema(enum dbi dbi, uint32_t schema)
{
    return tables[dbi].since <= schema && (dropped_by(dbi) == 0 || schema < dropped_by(dbi));
}

/* True if the open store has table dbi (see tf_node_store.schema). */
static bool has(const struct tf_node_store *st, enum dbi dbi)
{
    return in_schema(dbi, st->schema);
}

/* *val views LMDB memory, valid until txn's next write or its end.  An absent
 * table holds nothing. */
static int get(struct tf_node_store *st, MDB_txn *txn, enum dbi dbi, const void *key, size_t klen,
               MDB_val *val)
{
    MDB_val k = mval(key, klen);
    return has(st, dbi) ? mdb_get(txn, st->dbi[dbi], &k, val) : MDB_NOTFOUND;
}

/* Visits one entry of a walk.  Returns 0 to go on; anything else stops the
 * walk and is returned as is: a raw error, or (with *stopped set) a value the
 * visitor chose, such as a callback's. */
typedef int visit_fn(const MDB_val *key, const MDB_val *val, void *ctx, bool *stopped);

/* Walks dbi in key order from the first key >= *from (or the first key). */
static int walk(struct tf_node_store *st, MDB_txn *txn, enum dbi dbi, const MDB_val *from,
                visit_fn *visit, void *ctx, bool *stopped)
{
    MDB_cursor *cur;
    MDB_val k = from != NULL ? *from : mval(NULL, 0), v;
    MDB_cursor_op op = from != NULL ? MDB_SET_RANGE : MDB_FIRST;
    bool in_write = txn == st->txn;
    uint64_t gen = st->txn_gen;
    int rc;
    *stopped = false;
    if (!has(st, dbi))
        return 0;
    if ((rc = mdb_cursor_open(txn, st->dbi[dbi], &cur)) != 0)
        return rc;
    while ((rc = mdb_cursor_get(cur, &k, &v, op)) == 0) {
        op = MDB_NEXT;
        rc = visit(&k, &v, ctx, stopped);
        /* A callback that committed, aborted or (by growing the map) replaced
         * the write transaction has also freed this cursor with it. */
        if (in_write && (st->txn != txn || st->txn_gen != gen))
            return rc != 0 ? rc : TF_E_BAD_STATE;
        if (rc != 0)
            break;
    }
    mdb_cursor_close(cur);
    return rc == MDB_NOTFOUND && !*stopped ? 0 : rc;
}

/* Walks dbi in a read transaction for a public foreach: the callback's own
 * value passes through untranslated.  *txn_slot, unless NULL, gets the
 * walk's transaction first, for a visitor that reads other tables. */
static int walk_public_txn(struct tf_node_store *st, enum dbi dbi, const MDB_val *from,
                           visit_fn *visit, void *ctx, MDB_txn **txn_slot)
{
    MDB_txn *txn;
    bool own, stopped = false;
    int rc = read_begin(st, &txn, &own);
    if (rc == 0) {
        if (txn_slot != NULL)
            *txn_slot = txn;
        rc = walk(st, txn, dbi, from, visit, ctx, &stopped);
        read_end(st, txn, own);
    }
    return stopped ? rc : lmdb_err(rc);
}

static int walk_public(struct tf_node_store *st, enum dbi dbi, const MDB_val *from, visit_fn *visit,
                       void *ctx)
{
    return walk_public_txn(st, dbi, from, visit, ctx, NULL);
}

/* Opens the tables that schemas first..last added and that a store of
 * schema last has (not the ones a later schema dropped), creating them if
 * flags has MDB_CREATE.  A missing table is corruption: each schema's tables
 * are created together, when the store is created or by its migration. */
static int open_tables(struct tf_node_store *st, MDB_txn *txn, uint32_t first, uint32_t last,
                       unsigned flags)
{
    int rc = 0;
    for (int i = 0; rc == 0 && i < DBI_COUNT; i++)
        if (tables[i].since >= first && in_schema((enum dbi)i, last))
            rc = mdb_dbi_open(txn, tables[i].name, flags, &st->dbi[i]);
    return rc == MDB_NOTFOUND ? TF_E_CORRUPT : rc;
}

/* Migrations: migrations[v] upgrades a store from schema v to v + 1.  They
 * run at a read-write open, inside the transaction that opens the databases,
 * one after another up to TF_NODE_STORE_SCHEMA; the schema value is written
 * after the last.  To change the layout, bump TF_NODE_STORE_SCHEMA and add
 * the migration from the old version here.  Entry 0 stays empty: no store was
 * ever written with schema 0, so such a store is corrupt.
 *
 * A migration that only adds tables is additive: this code reads the older
 * store correctly as it is, the tables it lacks as empty, so a read-only open
 * (which cannot migrate) accepts it.  Past any other migration a read-only
 * open of the older store fails with TF_E_VERSION. */
typedef int migrate_fn(struct tf_node_store *st, MDB_txn *txn);

/* Schema 2 adds the outbox, seen and messages tables with their indexes. */
static int migrate_1_to_2(struct tf_node_store *st, MDB_txn *txn)
{
    return open_tables(st, txn, 2, 2, MDB_CREATE);
}

/* Schema 3 adds the intro tables (intros_out, intros_in) and cards. */
static int migrate_2_to_3(struct tf_node_store *st, MDB_txn *txn)
{
    return open_tables(st, txn, 3, 3, MDB_CREATE);
}

/* Schema 4 adds policy_hits (the policy's limit counters). */
static int migrate_3_to_4(struct tf_node_store *st, MDB_txn *txn)
{
    return open_tables(st, txn, 4, 4, MDB_CREATE);
}

/* Schema 5 adds the intro indexes (intro_pairs, intro_expiry,
 * intro_pending).  node/intro.c fills them from the intro tables at its start
 * (it alone can read those records), in the same transaction as the meta key
 * that says it did. */
static int migrate_4_to_5(struct tf_node_store *st, MDB_txn *txn)
{
    return open_tables(st, txn, 5, 5, MDB_CREATE);
}

/* Schema 6 adds intro_sched (node/intro.c's schedules, budgets and
 * tombstones).  node/intro.c fills it from the intro tables at its start, as
 * for schema 5. */
static int migrate_5_to_6(struct tf_node_store *st, MDB_txn *txn)
{
    return open_tables(st, txn, 6, 6, MDB_CREATE);
}

/* requests: schema 7 adds requests (request id -> record), request_index
 * (node/request.c's budgets, schedules and answered-by index) and
 * intro_stats (feedback and per-contact intro statistics). */
static int migrate_6_to_7(struct tf_node_store *st, MDB_txn *txn)
{
    return open_tables(st, txn, 7, 7, MDB_CREATE);
}

/* mailbox: schema 8 adds node/mailbox.c's tables (mbox_tenants, mbox_envs,
 * mbox_expiry), empty. */
static int migrate_7_to_8(struct tf_node_store *st, MDB_txn *txn)
{
    return open_tables(st, txn, 8, 8, MDB_CREATE);
}

/* direct: schema 9 lets an outbox record carry the envelope's body (a 9th
 * field) and leave the envelope empty until it is sealed.  Every schema 8
 * record is a valid schema 9 record (it is sent sealed, as before), so
 * nothing is rewritten: the new number only keeps older code, which cannot
 * read 9-field records, from opening the store. */
static int migrate_8_to_9(struct tf_node_store *st, MDB_txn *txn)
{
    (void)st;
    (void)txn;
    return 0;
}

/* pages: schema 10 changes the form of some intro_sched keys (node/intro.c
 * rewrites them at its start, as for schemas 5 and 6: it alone knows them);
 * the store's tables are unchanged.  The bump keeps older code, which would
 * mix the two forms, from opening the store. */
static int migrate_9_to_10(struct tf_node_store *st, MDB_txn *txn)
{
    (void)st;
    (void)txn;
    return 0;
}

/* introkeys: schema 11 keeps the intro records (intros_out, intros_in)
 * under u64be(order) || intro id in intros_out_seq and intros_in_seq, with
 * the indexes intros_out_ids and intros_in_ids (intro id -> u64be(order)),
 * and drops the old tables, all in this one transaction: a crash before its
 * commit leaves the schema 10 store as it was, and the next open migrates it
 * again from the start.  The records are opaque here (node/intro.c owns their
 * format), so the old ones get their order from a counter, in id order, the
 * out table's first: the order only decides which records share leaves, not
 * what any read returns.  The old table's keys and values are views of clean
 * mapped pages, which no write to the new tables moves (LMDB copies a page on
 * write, and this transaction writes none of the old table's pages before
 * dropping it). */
static int migrate_intros(struct tf_node_store *st, MDB_txn *txn, enum dbi old, enum dbi seq,
                          enum dbi ids, uint64_t *next)
{
    uint8_t key[SEQ_LEN + 512]; /* LMDB's largest key is 511 bytes */
    MDB_cursor *cur;
    MDB_val k, v;
    int rc = mdb_cursor_open(txn, st->dbi[old], &cur);
    if (rc != 0)
        return rc;
    for (MDB_cursor_op op = MDB_FIRST; (rc = mdb_cursor_get(cur, &k, &v, op)) == 0; op = MDB_NEXT) {
        store_be64(key, (*next)++);
        memcpy(key + SEQ_LEN, k.mv_data, k.mv_size);
        MDB_val order = mval(key, SEQ_LEN), sk = mval(key, SEQ_LEN + k.mv_size);
        /* Both in key order into empty tables: appended, leaves full. */
        if ((rc = mdb_put(txn, st->dbi[ids], &k, &order, MDB_APPEND)) != 0 ||
            (rc = mdb_put(txn, st->dbi[seq], &sk, &v, MDB_APPEND)) != 0)
            break;
    }
    mdb_cursor_close(cur);
    if (rc == MDB_NOTFOUND)
        rc = mdb_drop(txn, st->dbi[old], 1);
    return rc;
}

static int migrate_10_to_11(struct tf_node_store *st, MDB_txn *txn)
{
    uint64_t next = 1;
    int rc = open_tables(st, txn, 11, 11, MDB_CREATE);
    if (rc == 0)
        rc = migrate_intros(st, txn, DBI_INTROS_OUT, DBI_INTROS_OUT_SEQ, DBI_INTROS_OUT_IDS, &next);
    if (rc == 0)
        rc = migrate_intros(st, txn, DBI_INTROS_IN, DBI_INTROS_IN_SEQ, DBI_INTROS_IN_IDS, &next);
    return rc;
}

/* seenkeys: moves the row under old (old_len bytes) of dbi to its new key:
 * the first `at` bytes of old, LEGACY_KEY_LEN zero bytes, the rest; the
 * value is unchanged (copied first: the put may move the page it is on). */
static int widen_key(MDB_txn *txn, MDB_dbi dbi, const uint8_t *old, size_t old_len, size_t at)
{
    uint8_t key[TIME_KEY_MAX] = {0};
    MDB_val k = mval(old, old_len), v;
    memcpy(key, old, at);
    memcpy(key + at + LEGACY_KEY_LEN, old + at, old_len - at);
    int rc = mdb_get(txn, dbi, &k, &v);
    if (rc != 0)
        return rc;
    uint8_t *val = malloc(v.mv_size + 1); /* + 1: an index entry's value is empty */
    if (val == NULL)
        return TF_E_NOMEM;
    memcpy(val, v.mv_data, v.mv_size);
    MDB_val nk = mval(key, old_len + LEGACY_KEY_LEN), nv = mval(val, v.mv_size);
    if ((rc = mdb_del(txn, dbi, &k, NULL)) == 0)
        rc = mdb_put(txn, dbi, &nk, &nv, 0);
    free(val);
    return rc;
}

/* seenkeys: widens every old_len-byte key of dbi (widen_key), in batches
 * copied out, since writing under a cursor would move it.  A widened key
 * sorts before the next old key (at most right after its own old key, when
 * the old key's bytes from `at` are all zero), so each batch resumes from the
 * last old key of the one before and skips the keys already widened.
 * *moved counts the keys widened, and last (old_len bytes) is the greatest. */
static int widen_keys(MDB_txn *txn, MDB_dbi dbi, size_t old_len, size_t at,
                      uint8_t last[static TIME_KEY_LEN], size_t *moved)
{
    uint8_t batch[GC_BATCH][TIME_KEY_LEN];
    size_t n, flen = 0;
    int rc;
    *moved = 0;
    assert(old_len <= TIME_KEY_LEN && at <= old_len);
    do {
        MDB_cursor *cur;
        MDB_val k = mval(last, flen), v;
        if ((rc = mdb_cursor_open(txn, dbi, &cur)) != 0)
            return rc;
        n = 0;
        rc = mdb_cursor_get(cur, &k, &v, flen > 0 ? MDB_SET_RANGE : MDB_FIRST);
        while (rc == 0 && n < GC_BATCH) {
            if (k.mv_size == old_len)
                memcpy(batch[n++], k.mv_data, old_len);
            else if (k.mv_size != old_len + LEGACY_KEY_LEN)
                rc = TF_E_CORRUPT;
            if (rc == 0)
                rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT);
        }
        mdb_cursor_close(cur);
        if (rc == MDB_NOTFOUND)
            rc = 0;
        for (size_t i = 0; rc == 0 && i < n; i++)
            rc = widen_key(txn, dbi, batch[i], old_len, at);
        if (n > 0)
            memcpy(last, batch[n - 1], flen = old_len);
        *moved += n;
    } while (rc == 0 && n == GC_BATCH);
    return rc;
}

/* seenkeys: schema 12 keys the seen table by BLAKE2b-128(sender_pk) ||
 * msg_id (32 bytes).  The old rows' keys are hashes of what they name and
 * cannot be rebuilt in that form, yet they must go on protecting against
 * replays until they expire: each is kept, with its expiry, under 16 zero
 * bytes || its old key (and its index key as u64be(expires) || that), and
 * meta "seen-legacy-until" records the latest expiry among them, the time
 * until which seen_check also looks old keys up (none: no old rows).  In the
 * open transaction, so all or nothing; a store at schema 12 never comes here
 * again. */
static int migrate_11_to_12(struct tf_node_store *st, MDB_txn *txn)
{
    uint8_t last[TIME_KEY_LEN];
    size_t rows, index_keys;
    int rc;
    if ((rc = widen_keys(txn, st->dbi[DBI_SEEN], LEGACY_KEY_LEN, 0, last, &rows)) != 0 ||
        (rc = widen_keys(txn, st->dbi[DBI_SEEN_EXP], TIME_KEY_LEN, SEQ_LEN, last, &index_keys)) !=
            0 ||
        index_keys == 0)
        return rc;
    /* The greatest old index key names the latest expiry. */
    MDB_val k = mval(SEEN_LEGACY_KEY, strlen(SEEN_LEGACY_KEY)), v = mval(last, SEQ_LEN);
    return mdb_put(txn, st->dbi[DBI_META], &k, &v, 0);
}

static const struct {
    migrate_fn *fn;
    bool additive;
} migrations[TF_NODE_STORE_SCHEMA] = {
    [1] = {migrate_1_to_2, true},
    [2] = {migrate_2_to_3, true},
    [3] = {migrate_3_to_4, true},
    [4] = {migrate_4_to_5, true},
    [5] = {migrate_5_to_6, true},
    /* requests */
    [6] = {migrate_6_to_7, true},
    /* mailbox */
    [7] = {migrate_7_to_8, true},
    /* direct */
    [8] = {migrate_8_to_9, true},
    /* pages: a read-only open reads an older store's intro_sched as it is
     * (it counts no budgets) */
    [9] = {migrate_9_to_10, true},
    /* introkeys: not only additive (it drops the old intro tables), but a
     * read-only open reads an older store's intros_out and intros_in as
     * they are (the kv functions fall back to them), so it may open one */
    [10] = {migrate_10_to_11, true},
    /* seenkeys: a read-only open reads an older store's seen rows as they are
     * (see tf_node_store_seen_check) */
    [11] = {migrate_11_to_12, true},
};

static int put_schema(struct tf_node_store *st, MDB_txn *txn)
{
    uint8_t v[4] = {0, 0, 0, TF_NODE_STORE_SCHEMA};
    static_assert(TF_NODE_STORE_SCHEMA < 256, "schema is written as its low byte");
    MDB_val k = mval(SCHEMA_KEY, strlen(SCHEMA_KEY)), val = mval(v, sizeof v);
    return mdb_put(txn, st->dbi[DBI_META], &k, &val, 0);
}

/* Reads the schema of an existing store and checks that this code can open
 * it: newer -> TF_E_VERSION; missing, malformed or with no migration path ->
 * TF_E_CORRUPT; older past a migration that is not additive, read-only ->
 * TF_E_VERSION. */
static int read_schema(struct tf_node_store *st, MDB_txn *txn, uint32_t *schema)
{
    MDB_val k = mval(SCHEMA_KEY, strlen(SCHEMA_KEY)), v;
    int rc = mdb_get(txn, st->dbi[DBI_META], &k, &v); /* before get(): st->schema is not known */
    if (rc == MDB_NOTFOUND || (rc == 0 && v.mv_size != 4))
        return TF_E_CORRUPT;
    if (rc != 0)
        return rc;
    uint64_t s = load_be(v.mv_data, 4);
    if (s > TF_NODE_STORE_SCHEMA)
        return TF_E_VERSION;
    for (uint64_t from = s; from < TF_NODE_STORE_SCHEMA; from++) {
        if (migrations[from].fn == NULL)
            return TF_E_CORRUPT;
        if (st->readonly && !migrations[from].additive)
            rc = TF_E_VERSION;
    }
    *schema = (uint32_t)s;
    return rc;
}

/* seenkeys: until when seen_check looks old keys up: "seen-legacy-until",
 * absent when the store had no old rows (0: never), and always for a
 * read-only open of a store older than schema 12, whose rows are all old. */
static int load_legacy_until(struct tf_node_store *st, MDB_txn *txn)
{
    MDB_val k = mval(SEEN_LEGACY_KEY, strlen(SEEN_LEGACY_KEY)), v;
    st->seen_legacy_until = st->schema < SEEN_KEYS_SCHEMA ? UINT64_MAX : 0;
    if (st->schema < SEEN_KEYS_SCHEMA)
        return 0;
    int rc = mdb_get(txn, st->dbi[DBI_META], &k, &v);
    if (rc == 0 && v.mv_size != SEQ_LEN)
        return TF_E_CORRUPT;
    if (rc == 0)
        st->seen_legacy_until = load_be(v.mv_data, SEQ_LEN);
    return rc == MDB_NOTFOUND ? 0 : rc;
}

/* introkeys: the next order prefix is one past the highest in either
 * ordered table, found again at each open (nothing stores it).  Orders that
 * a rolled-back or lost transaction used are skipped, and one that a deleted
 * last record used may be used again: either is harmless, since the intro id
 * completes every key. */
static int intro_seq_init(struct tf_node_store *st, MDB_txn *txn)
{
    static const enum dbi seqs[] = {DBI_INTROS_OUT_SEQ, DBI_INTROS_IN_SEQ};
    int rc = 0;
    st->intro_seq = 1;
    for (size_t i = 0; rc == 0 && i < sizeof seqs / sizeof seqs[0]; i++) {
        MDB_cursor *cur;
        MDB_val k, v;
        if ((rc = mdb_cursor_open(txn, st->dbi[seqs[i]], &cur)) != 0)
            break;
        rc = mdb_cursor_get(cur, &k, &v, MDB_LAST);
        mdb_cursor_close(cur);
        if (rc == MDB_NOTFOUND)
            rc = 0;
        else if (rc == 0 && k.mv_size < SEQ_LEN)
            rc = TF_E_CORRUPT;
        else if (rc == 0) {
            uint64_t last = load_be(k.mv_data, SEQ_LEN);
            if (last >= st->intro_seq)
                st->intro_seq = last < UINT64_MAX ? last + 1 : last;
        }
    }
    return rc;
}

/* Opens the tables and writes (CREATE) or checks the schema, migrating an
 * older store in the read-write modes, in one transaction, committed so that
 * the handles stay valid until the environment closes. */
static int open_txn(struct tf_node_store *st, enum tf_node_store_mode mode)
{
    unsigned create = mode == TF_NODE_STORE_CREATE ? MDB_CREATE : 0;
    uint32_t schema = TF_NODE_STORE_SCHEMA;
    MDB_txn *txn;
    int rc = txn_begin(st, st->readonly ? MDB_RDONLY : 0, &txn);
    if (rc != 0)
        return rc;
    /* meta alone first: which other tables exist depends on its schema */
    if ((rc = mdb_dbi_open(txn, tables[DBI_META].name, create, &st->dbi[DBI_META])) == MDB_NOTFOUND)
        rc = TF_E_CORRUPT; /* an empty environment: not a store */
    if (rc == 0 && !create)
        rc = read_schema(st, txn, &schema);
    if (rc == 0)
        rc = open_tables(st, txn, 1, schema, create);
    for (uint32_t from = schema; rc == 0 && !st->readonly && from < TF_NODE_STORE_SCHEMA; from++)
        rc = migrations[from].fn(st, txn);
    if (rc == 0 && (create || (!st->readonly && schema < TF_NODE_STORE_SCHEMA)))
        rc = put_schema(st, txn);
    if (rc == 0 && !st->readonly)
        rc = intro_seq_init(st, txn);
    if (rc != 0) {
        mdb_txn_abort(txn);
        return rc;
    }
    st->schema = st->readonly ? schema : TF_NODE_STORE_SCHEMA;
    if ((rc = load_legacy_until(st, txn)) != 0) {
        mdb_txn_abort(txn);
        return rc;
    }
    return mdb_txn_commit(txn);
}

/* Makes dir (0700) and claims data.mdb in it: O_EXCL makes "a store is
 * already there" race-free.  LMDB initialises the empty file. */
static int create_data_file(const char *dir, const char *data)
{
    if (mkdir(dir, 0700) != 0 && errno != EEXIST)
        return -errno;
    int fd = open(data, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (fd < 0)
        return errno == EEXIST ? TF_E_EXISTS : -errno;
    if (close(fd) != 0)
        return -errno;
    return 0;
}

static int env_open(struct tf_node_store *st, const char *dir, enum tf_node_store_mode mode)
{
    int rc;
    if ((rc = mdb_env_create(&st->env)) != 0) {
        st->env = NULL;
        return rc;
    }
    /* An existing store keeps the map size recorded in it (LMDB's default
     * when none is set); a new one starts at INITIAL_MAPSIZE. */
    if ((rc = mdb_env_set_maxdbs(st->env, DBI_COUNT)) != 0 ||
        (mode == TF_NODE_STORE_CREATE && (rc = mdb_env_set_mapsize(st->env, INITIAL_MAPSIZE)) != 0))
        return rc;
    /* MDB_NOTLS: read transactions are not tied to the thread, and one may
     * stay open (in a foreach) while the write transaction works. */
    return mdb_env_open(st->env, dir, MDB_NOTLS | (st->readonly ? MDB_RDONLY : 0), 0600);
}

int tf_node_store_open(const char *dir, enum tf_node_store_mode mode, struct tf_node_store **out)
{
    char data[TF_NODE_PATH_MAX], lock[TF_NODE_PATH_MAX];
    struct tf_node_store *st = NULL;
    bool made = false;
    struct stat sb;
    int rc = TF_E_INVALID_ARG;

    *out = NULL;
    if (tf_node_home_path(dir, "data.mdb", data, sizeof data) != 0 ||
        tf_node_home_path(dir, "lock.mdb", lock, sizeof lock) != 0)
        return -ENAMETOOLONG;
    switch (mode) {
    case TF_NODE_STORE_CREATE:
        rc = create_data_file(dir, data);
        made = rc == 0;
        break;
    case TF_NODE_STORE_OPEN:
    case TF_NODE_STORE_READONLY:
        rc = stat(data, &sb) == 0 ? 0 : errno == ENOENT ? TF_E_NOT_FOUND : -errno;
        break;
    }
    if (rc != 0)
        return rc;
    if ((st = calloc(1, sizeof *st)) == NULL) {
        rc = TF_E_NOMEM;
        goto fail;
    }
    st->readonly = mode == TF_NODE_STORE_READONLY;
    st->undone_from = SIZE_MAX;
    if ((rc = env_open(st, dir, mode)) == 0)
        rc = open_txn(st, mode);
    /* A migration that rewrites tables (schema 11, introkeys) may need the
     * map to grow more than once: it writes a copy of them. */
    for (int i = 0; i < 8 && rc == MDB_MAP_FULL && (rc = grow_map(st)) == 0; i++)
        rc = open_txn(st, mode);
    if (rc == 0) {
        *out = st;
        return TF_OK;
    }
fail:
    tf_node_store_close(st);
    if (made) {
        unlink(data);
        unlink(lock);
    }
    return lmdb_err(rc);
}

void tf_node_store_close(struct tf_node_store *st)
{
    if (st == NULL)
        return;
    tf_node_store_abort(st);
    free(st->ops);
    mdb_env_close(st->env);
    free(st);
}

int tf_node_store_commit(struct tf_node_store *st)
{
    int rc = st->failed;
    if (rc != 0) {
        st->failed = 0;
        return rc;
    }
    if (st->txn == NULL)
        return TF_OK;
    rc = mdb_txn_commit(st->txn);
    st->txn = NULL; /* gone, committed or not */
    if (rc == MDB_MAP_FULL && (rc = regrow(st, NULL)) == 0) {
        rc = mdb_txn_commit(st->txn);
        st->txn = NULL;
    }
    if (rc != 0)
        journal_undone(st, 0);
    for (size_t i = 0; rc == 0 && i < st->n_ops; i++) /* pages: writes per table */
        st->table_writes[st->ops[i]->table]++;
    journal_clear(st);
    if (rc == 0)
        st->commits++;
    return lmdb_err(rc);
}

void tf_node_store_abort(struct tf_node_store *st)
{
    if (st->txn != NULL) {
        mdb_txn_abort(st->txn);
        st->txn = NULL;
    }
    journal_undone(st, 0);
    journal_clear(st);
    st->failed = 0;
}

size_t tf_node_store_undo_take(struct tf_node_store *st)
{
    size_t from = st->undone_from;
    st->undone_from = SIZE_MAX;
    return from;
}

uint64_t tf_node_store_batches(const struct tf_node_store *st)
{
    return st->batches;
}

uint64_t tf_node_store_contacts_gen(const struct tf_node_store *st)
{
    return st->contacts_gen;
}

bool tf_node_store_dirty(const struct tf_node_store *st)
{
    return st->txn != NULL || st->failed != 0;
}

/* Copies n bytes (LMDB memory, or a view into it) into *out, whose data is
 * never NULL, even for n == 0. */
static int copy_bytes(struct tf_proto_buf *out, const void *p, size_t n)
{
    if ((out->data = malloc(n > 0 ? n : 1)) == NULL)
        return TF_E_NOMEM;
    if (n > 0)
        memcpy(out->data, p, n);
    out->len = n;
    return 0;
}

static bool meta_key_is_valid(const char *key)
{
    size_t len = strnlen(key, META_KEY_MAX + 1);
    return len >= 1 && len <= META_KEY_MAX;
}

int tf_node_store_meta_get(struct tf_node_store *st, const char *key, struct tf_proto_buf *out)
{
    MDB_txn *txn;
    MDB_val v;
    bool own;
    int rc;
    memset(out, 0, sizeof *out);
    if (!meta_key_is_valid(key))
        return TF_E_INVALID_ARG;
    if ((rc = read_begin(st, &txn, &own)) != 0)
        return lmdb_err(rc);
    if ((rc = get(st, txn, DBI_META, key, strlen(key), &v)) == 0)
        rc = copy_bytes(out, v.mv_data, v.mv_size);
    read_end(st, txn, own);
    return lmdb_err(rc);
}

int tf_node_store_meta_put(struct tf_node_store *st, const char *key, const uint8_t *val,
                           size_t len)
{
    if (!meta_key_is_valid(key) || (val == NULL && len > 0))
        return TF_E_INVALID_ARG;
    return lmdb_err(write_op(st, DBI_META, key, strlen(key), val != NULL ? val : no_value, len, 0));
}

/* pk: TF_PROTO_KEY_LEN bytes. */
static int contact_get(struct tf_node_store *st, MDB_txn *txn, const void *pk,
                       struct tf_node_contact *out)
{
    MDB_val v;
    int rc = get(st, txn, DBI_CONTACTS, pk, TF_PROTO_KEY_LEN, &v);
    if (rc != 0)
        return rc;
    return tf_node_contact_decode(pk, v.mv_data, v.mv_size, out);
}

static int alias_get(struct tf_node_store *st, MDB_txn *txn, const char *alias,
                     uint8_t pk[static TF_PROTO_KEY_LEN])
{
    MDB_val v;
    int rc = get(st, txn, DBI_ALIASES, alias, strlen(alias), &v);
    if (rc != 0)
        return rc;
    if (v.mv_size != TF_PROTO_KEY_LEN)
        return TF_E_CORRUPT;
    memcpy(pk, v.mv_data, TF_PROTO_KEY_LEN);
    return 0;
}

/* Finds one alias entry naming pk (for a contact whose record is unreadable,
 * so its alias is not known). */
struct alias_of {
    const uint8_t *pk;
    uint8_t key[512]; /* LMDB's largest key is 511 bytes */
    size_t klen;
};

static int visit_alias_of(const MDB_val *k, const MDB_val *v, void *ctx, bool *stopped)
{
    struct alias_of *a = ctx;
    if (v->mv_size != TF_PROTO_KEY_LEN || sodium_memcmp(v->mv_data, a->pk, TF_PROTO_KEY_LEN) != 0)
        return 0;
    if (k->mv_size > sizeof a->key)
        return TF_E_CORRUPT;
    memcpy(a->key, k->mv_data, k->mv_size);
    a->klen = k->mv_size;
    *stopped = true;
    return 1;
}

/* Removes pk's alias entries from the index: the one named `alias` ("" for
 * none) if it names pk, or, with alias NULL, every entry naming pk. */
static int drop_alias(struct tf_node_store *st, const uint8_t pk[static TF_PROTO_KEY_LEN],
                      const char *alias)
{
    uint8_t owner[TF_PROTO_KEY_LEN];
    int rc;
    if (alias != NULL) {
        if (alias[0] == '\0')
            return 0;
        rc = alias_get(st, st->txn, alias, owner);
        if (rc == MDB_NOTFOUND || (rc == 0 && sodium_memcmp(owner, pk, TF_PROTO_KEY_LEN) != 0))
            return 0; /* the index lacks it: nothing to undo */
        if (rc != 0)
            return rc;
        return write_op(st, DBI_ALIASES, alias, strlen(alias), NULL, 0, 0);
    }
    for (;;) {
        struct alias_of a = {.pk = pk};
        bool found;
        if ((rc = walk(st, st->txn, DBI_ALIASES, NULL, visit_alias_of, &a, &found)) != 0 && !found)
            return rc;
        if (!found)
            return 0;
        if ((rc = write_op(st, DBI_ALIASES, a.key, a.klen, NULL, 0, 0)) != 0)
            return rc;
    }
}

int tf_node_store_contact_put(struct tf_node_store *st, const struct tf_node_contact *c)
{
    struct tf_proto_buf rec = {0};
    struct tf_node_contact old;
    uint8_t owner[TF_PROTO_KEY_LEN];
    int rc;

    memset(&old, 0, sizeof old);
    if ((rc = tf_node_contact_encode(c, &rec)) != TF_OK || (rc = write_begin(st)) != 0)
        goto cleanup;
    /* Every check comes before the first write, so a refusal writes nothing. */
    if (c->alias[0] != '\0') {
        rc = alias_get(st, st->txn, c->alias, owner);
        if (rc == 0 && sodium_memcmp(owner, c->pk, TF_PROTO_KEY_LEN) != 0)
            rc = TF_E_EXISTS;
        if (rc != 0 && rc != MDB_NOTFOUND)
            goto cleanup;
    }
    rc = contact_get(st, st->txn, c->pk, &old);
    if (rc == 0 && strcmp(old.alias, c->alias) != 0)
        rc = drop_alias(st, c->pk, old.alias);
    else if (rc == TF_E_CORRUPT) /* replaced below; its alias is unknown */
        rc = drop_alias(st, c->pk, NULL);
    else if (rc == MDB_NOTFOUND) {
        rc = 0;
        st->contacts_gen++; /* a new contact */
    }
    if (rc == 0 && c->alias[0] != '\0')
        rc = write_op(st, DBI_ALIASES, c->alias, strlen(c->alias), c->pk, TF_PROTO_KEY_LEN, 0);
    if (rc == 0)
        rc = write_op(st, DBI_CONTACTS, c->pk, TF_PROTO_KEY_LEN, rec.data, rec.len, 0);
cleanup:
    tf_node_contact_deinit(&old);
    tf_proto_buf_free(&rec);
    return lmdb_err(rc);
}

/* Looks a contact up by key (a pk for contact_get, a name for find). */
typedef int lookup_fn(struct tf_node_store *st, MDB_txn *txn, const void *key,
                      struct tf_node_contact *out);

/* Runs a lookup in a read transaction; *out is zeroed unless it succeeds. */
static int lookup(struct tf_node_store *st, lookup_fn *fn, const void *key,
                  struct tf_node_contact *out)
{
    MDB_txn *txn;
    bool own;
    memset(out, 0, sizeof *out);
    int rc = read_begin(st, &txn, &own);
    if (rc == 0) {
        rc = fn(st, txn, key, out);
        read_end(st, txn, own);
    }
    return lmdb_err(rc);
}

int tf_node_store_contact_get(struct tf_node_store *st, const uint8_t pk[static 32],
                              struct tf_node_contact *out)
{
    return lookup(st, contact_get, pk, out);
}

/* Matches a typed prefix against contacts' text ids. */
struct prefix {
    const char *name;
    size_t len;
    size_t matches;
    uint8_t pk[TF_PROTO_KEY_LEN];
};

static char lower(char c)
{
    return c >= 'A' && c <= 'Z' ? (char)(c - 'A' + 'a') : c;
}

static int visit_prefix(const MDB_val *k, const MDB_val *v, void *ctx, bool *stopped)
{
    struct prefix *p = ctx;
    char id[TF_PROTO_TEXT_ID_SIZE];
    (void)v;
    (void)stopped;
    if (k->mv_size != TF_PROTO_KEY_LEN)
        return TF_E_CORRUPT;
    tf_proto_text_id_encode(k->mv_data, id);
    /* Text ids are lower case; like tf_proto_text_id_decode, accept upper. */
    for (size_t i = 0; i < p->len; i++)
        if (lower(p->name[i]) != id[i])
            return 0;
    if (++p->matches > 1)
        return TF_E_AMBIGUOUS;
    memcpy(p->pk, k->mv_data, TF_PROTO_KEY_LEN);
    return 0;
}

/* name: a NUL-terminated string. */
static int find(struct tf_node_store *st, MDB_txn *txn, const void *name_arg,
                struct tf_node_contact *out)
{
    const char *name = name_arg;
    struct prefix p = {.name = name, .len = strlen(name)};
    uint8_t pk[TF_PROTO_KEY_LEN];
    bool stopped;
    int rc;
    if (tf_node_alias_is_valid(name)) {
        rc = alias_get(st, txn, name, pk);
        if (rc == 0) {
            rc = contact_get(st, txn, pk, out);
            return rc == MDB_NOTFOUND ? TF_E_CORRUPT : rc; /* the index is out of step */
        }
        if (rc != MDB_NOTFOUND)
            return rc;
    }
    if (tf_proto_text_id_decode(name, p.len, pk, NULL) == TF_OK)
        return contact_get(st, txn, pk, out);
    if (p.len < FIND_PREFIX_MIN || p.len > TF_PROTO_TEXT_ID_LEN)
        return MDB_NOTFOUND;
    if ((rc = walk(st, txn, DBI_CONTACTS, NULL, visit_prefix, &p, &stopped)) != 0)
        return rc;
    if (p.matches == 0)
        return MDB_NOTFOUND;
    return contact_get(st, txn, p.pk, out);
}

int tf_node_store_contact_find(struct tf_node_store *st, const char *name,
                               struct tf_node_contact *out)
{
    return lookup(st, find, name, out);
}

int tf_node_store_contact_del(struct tf_node_store *st, const uint8_t pk[static 32])
{
    struct tf_node_contact old;
    int rc;
    memset(&old, 0, sizeof old);
    if ((rc = write_begin(st)) == 0)
        rc = contact_get(st, st->txn, pk, &old);
    /* A corrupt record can still be deleted, with every alias naming it. */
    if (rc == 0 || rc == TF_E_CORRUPT)
        rc = drop_alias(st, pk, rc == 0 ? old.alias : NULL);
    if (rc == 0)
        rc = write_op(st, DBI_CONTACTS, pk, TF_PROTO_KEY_LEN, NULL, 0, 0);
    if (rc == 0)
        st->contacts_gen++;
    tf_node_contact_deinit(&old);
    return lmdb_err(rc);
}

/* The caller's callback for a public foreach. */
/* Generic tables: the records belong to their modules (node/intro.c). */

static enum dbi kv_dbi(enum tf_node_store_table t)
{
    switch (t) {
    case TF_NODE_STORE_INTROS_OUT:
        return DBI_INTROS_OUT;
    case TF_NODE_STORE_INTROS_IN:
        return DBI_INTROS_IN;
    case TF_NODE_STORE_CARDS:
        return DBI_CARDS;
    case TF_NODE_STORE_POLICY_HITS:
        return DBI_POLICY_HITS;
    case TF_NODE_STORE_INTRO_PAIRS:
        return DBI_INTRO_PAIRS;
    case TF_NODE_STORE_INTRO_EXPIRY:
        return DBI_INTRO_EXPIRY;
    case TF_NODE_STORE_INTRO_PENDING:
        return DBI_INTRO_PENDING;
    case TF_NODE_STORE_INTRO_SCHED:
        return DBI_INTRO_SCHED;
    /* requests */
    case TF_NODE_STORE_REQUESTS:
        return DBI_REQUESTS;
    case TF_NODE_STORE_REQUEST_INDEX:
        return DBI_REQUEST_INDEX;
    case TF_NODE_STORE_INTRO_STATS:
        return DBI_INTRO_STATS;
    case TF_NODE_STORE_MBOX_TENANTS:
        return DBI_MBOX_TENANTS;
    case TF_NODE_STORE_MBOX_ENVS:
        return DBI_MBOX_ENVS;
    case TF_NODE_STORE_MBOX_EXPIRY:
        return DBI_MBOX_EXPIRY;
    }
    return DBI_COUNT;
}

#define KV_KEY_MAX 256

static bool kv_ok(enum tf_node_store_table t, const uint8_t *key, size_t klen)
{
    return kv_dbi(t) != DBI_COUNT && key != NULL && klen >= 1 && klen <= KV_KEY_MAX;
}

/*
 * introkeys: intros_out and intros_in in time order (schema 11).  A record
 * lives at u64be(order) || id in its `seq` table, and its `ids` table maps
 * id -> u64be(order): a read looks the order up first, a walk goes through
 * `ids` (id order, as the contract says).  A record's order is given at its
 * first put and kept until it is deleted, so the records of intros begun
 * together share leaves and a batch's rewrites of recent intros dirty a few
 * leaves at the end of the table instead of one random leaf each.
 */
struct ordered {
    enum dbi seq, ids;
};

/* True if t is kept in time order in the open store (a read-only open of an
 * older store reads the old tables through kv_dbi instead). */
static bool ordered_dbis(const struct tf_node_store *st, enum tf_node_store_table t,
                         struct ordered *o)
{
    if (t == TF_NODE_STORE_INTROS_OUT)
        *o = (struct ordered){DBI_INTROS_OUT_SEQ, DBI_INTROS_OUT_IDS};
    else if (t == TF_NODE_STORE_INTROS_IN)
        *o = (struct ordered){DBI_INTROS_IN_SEQ, DBI_INTROS_IN_IDS};
    else
        return false;
    return has(st, o->ids);
}

/* The record key of id, u64be(order) || id, from its order. */
static size_t seq_key(const uint8_t order[static SEQ_LEN], const void *id, size_t idlen,
                      uint8_t key[static SEQ_LEN + KV_KEY_MAX])
{
    memcpy(key, order, SEQ_LEN);
    memcpy(key + SEQ_LEN, id, idlen);
    return SEQ_LEN + idlen;
}

/* Finds id's record key in *key (*klen): MDB_NOTFOUND without an index
 * entry, TF_E_CORRUPT for one that is not an order. */
static int ordered_key(struct tf_node_store *st, MDB_txn *txn, const struct ordered *o,
                       const void *id, size_t idlen, uint8_t key[static SEQ_LEN + KV_KEY_MAX],
                       size_t *klen)
{
    MDB_val v;
    int rc = get(st, txn, o->ids, id, idlen, &v);
    if (rc == 0 && v.mv_size != SEQ_LEN)
        rc = TF_E_CORRUPT;
    if (rc == 0)
        *klen = seq_key(v.mv_data, id, idlen, key);
    return rc;
}

/* id's record (a view, as get's); TF_E_CORRUPT if the index names none. */
static int ordered_get(struct tf_node_store *st, MDB_txn *txn, const struct ordered *o,
                       const void *id, size_t idlen, MDB_val *val)
{
    uint8_t key[SEQ_LEN + KV_KEY_MAX];
    size_t klen;
    int rc = ordered_key(st, txn, o, id, idlen, key, &klen);
    if (rc == 0 && (rc = get(st, txn, o->seq, key, klen, val)) == MDB_NOTFOUND)
        rc = TF_E_CORRUPT;
    return rc;
}

/* True if key sorts after every key of the seq table (which LMDB's
 * MDB_APPEND requires, or it fails the write).  It does whenever this
 * process is the only writer of the intro tables, which it is (the node's
 * home lock): the counter starts past the highest order stored. */
static bool seq_sorts_last(struct tf_node_store *st, enum dbi seq, const uint8_t *key, size_t klen)
{
    MDB_cursor *cur;
    MDB_val k = mval(key, klen), last, v;
    if (mdb_cursor_open(st->txn, st->dbi[seq], &cur) != 0)
        return false;
    int rc = mdb_cursor_get(cur, &last, &v, MDB_LAST);
    mdb_cursor_close(cur);
    return rc == MDB_NOTFOUND || (rc == 0 && mdb_cmp(st->txn, st->dbi[seq], &k, &last) > 0);
}

/* A put of a known id rewrites its record where it is; a new id takes the
 * next order (the index entry first, then the record, both journalled, so
 * a replay after MDB_MAP_FULL or a rollback repeats exactly these writes).
 * The new record is appended: MDB_APPEND splits a full last leaf by starting
 * a new one, where an ordinary put would leave it half full (two 1 KB
 * records a leaf instead of three, one 1.8 KB record instead of two). */
static int ordered_put(struct tf_node_store *st, const struct ordered *o, const uint8_t *id,
                       size_t idlen, const uint8_t *val, size_t vlen)
{
    uint8_t key[SEQ_LEN + KV_KEY_MAX], order[SEQ_LEN];
    size_t klen = 0;
    unsigned flags = 0;
    int rc = write_begin(st);
    if (rc == 0 && (rc = ordered_key(st, st->txn, o, id, idlen, key, &klen)) == MDB_NOTFOUND) {
        store_be64(order, st->intro_seq);
        if (st->intro_seq < UINT64_MAX)
            st->intro_seq++;
        klen = seq_key(order, id, idlen, key);
        flags = seq_sorts_last(st, o->seq, key, klen) ? MDB_APPEND : 0;
        rc = write_op(st, o->ids, id, idlen, order, SEQ_LEN, 0);
    }
    if (rc == 0)
        rc = write_op(st, o->seq, key, klen, val, vlen, flags);
    return rc;
}

/* Deletes id's record and its index entry (the entry alone if it names no
 * record, or is not an order). */
static int ordered_del(struct tf_node_store *st, const struct ordered *o, const uint8_t *id,
                       size_t idlen)
{
    uint8_t key[SEQ_LEN + KV_KEY_MAX];
    size_t klen;
    MDB_val v;
    int rc = write_begin(st);
    if (rc != 0)
        return rc;
    if ((rc = ordered_key(st, st->txn, o, id, idlen, key, &klen)) == 0) {
        if ((rc = get(st, st->txn, o->seq, key, klen, &v)) == 0)
            rc = write_op(st, o->seq, key, klen, NULL, 0, 0);
        else if (rc == MDB_NOTFOUND)
            rc = 0;
    } else if (rc == TF_E_CORRUPT) {
        rc = 0;
    }
    return rc != 0 ? rc : write_op(st, o->ids, id, idlen, NULL, 0, 0);
}

int tf_node_store_kv_get(struct tf_node_store *st, enum tf_node_store_table t, const uint8_t *key,
                         size_t klen, struct tf_proto_buf *out)
{
    struct ordered o;
    MDB_txn *txn;
    MDB_val v;
    bool own;
    int rc;
    memset(out, 0, sizeof *out);
    if (!kv_ok(t, key, klen))
        return TF_E_INVALID_ARG;
    if ((rc = read_begin(st, &txn, &own)) != 0)
        return lmdb_err(rc);
    rc = ordered_dbis(st, t, &o) ? ordered_get(st, txn, &o, key, klen, &v)
                                 : get(st, txn, kv_dbi(t), key, klen, &v);
    if (rc == 0)
        rc = copy_bytes(out, v.mv_data, v.mv_size);
    read_end(st, txn, own);
    return lmdb_err(rc);
}

int tf_node_store_kv_put(struct tf_node_store *st, enum tf_node_store_table t, const uint8_t *key,
                         size_t klen, const uint8_t *val, size_t vlen)
{
    struct ordered o;
    if (!kv_ok(t, key, klen) || (val == NULL && vlen > 0))
        return TF_E_INVALID_ARG;
    if (st->readonly)
        return -EROFS;
    if (val == NULL)
        val = no_value;
    if (ordered_dbis(st, t, &o))
        return lmdb_err(ordered_put(st, &o, key, klen, val, vlen));
    return lmdb_err(write_op(st, kv_dbi(t), key, klen, val, vlen, 0));
}

int tf_node_store_kv_del(struct tf_node_store *st, enum tf_node_store_table t, const uint8_t *key,
                         size_t klen)
{
    struct ordered o;
    MDB_val v;
    if (!kv_ok(t, key, klen))
        return TF_E_INVALID_ARG;
    if (st->readonly)
        return -EROFS;
    if (ordered_dbis(st, t, &o))
        return lmdb_err(ordered_del(st, &o, key, klen));
    int rc = write_begin(st);
    if (rc == 0 && (rc = get(st, st->txn, kv_dbi(t), key, klen, &v)) == 0)
        rc = write_op(st, kv_dbi(t), key, klen, NULL, 0, 0);
    return lmdb_err(rc);
}

struct kv_walk {
    tf_node_store_kv_cb *cb;
    void *arg;
    /* introkeys: for a table in time order, the walk goes through its ids
     * and reads each record in txn. */
    struct tf_node_store *st;
    const struct ordered *o;
    MDB_txn *txn;
};

static int visit_kv(const MDB_val *k, const MDB_val *v, void *ctx, bool *stopped)
{
    struct kv_walk *w = ctx;
    MDB_val rec = *v;
    int rc = w->o != NULL ? ordered_get(w->st, w->txn, w->o, k->mv_data, k->mv_size, &rec) : 0;
    if (rc != 0)
        return rc;
    rc = w->cb(k->mv_data, k->mv_size, rec.mv_data, rec.mv_size, w->arg);
    *stopped = rc != 0;
    return rc;
}

/* Walks table t from the first key >= *from (NULL: the first key). */
static int kv_walk_public(struct tf_node_store *st, enum tf_node_store_table t, const MDB_val *from,
                          tf_node_store_kv_cb *cb, void *arg)
{
    struct ordered o;
    struct kv_walk w = {cb, arg, st, NULL, NULL};
    if (!ordered_dbis(st, t, &o))
        return walk_public(st, kv_dbi(t), from, visit_kv, &w);
    w.o = &o;
    return walk_public_txn(st, o.ids, from, visit_kv, &w, &w.txn);
}

int tf_node_store_kv_foreach(struct tf_node_store *st, enum tf_node_store_table t,
                             tf_node_store_kv_cb *cb, void *arg)
{
    if (kv_dbi(t) == DBI_COUNT)
        return TF_E_INVALID_ARG;
    return kv_walk_public(st, t, NULL, cb, arg);
}

int tf_node_store_kv_foreach_from(struct tf_node_store *st, enum tf_node_store_table t,
                                  const uint8_t *from, size_t flen, tf_node_store_kv_cb *cb,
                                  void *arg)
{
    if (!kv_ok(t, from, flen))
        return TF_E_INVALID_ARG;
    MDB_val k = mval(from, flen);
    return kv_walk_public(st, t, &k, cb, arg);
}

struct user_cb {
    union {
        tf_node_store_contact_cb *contact;
        tf_node_store_event_cb *event;
        tf_node_store_outbox_cb *outbox;
        tf_node_store_recipient_cb *recipient;
        tf_node_store_message_cb *message;
    } cb;
    void *arg;
};

static int visit_contact(const MDB_val *k, const MDB_val *v, void *ctx, bool *stopped)
{
    struct user_cb *u = ctx;
    struct tf_node_contact c;
    if (k->mv_size != TF_PROTO_KEY_LEN)
        return TF_E_CORRUPT;
    int rc = tf_node_contact_decode(k->mv_data, v->mv_data, v->mv_size, &c);
    if (rc != TF_OK)
        return rc;
    rc = u->cb.contact(&c, u->arg);
    tf_node_contact_deinit(&c);
    *stopped = rc != 0;
    return rc;
}

int tf_node_store_contact_foreach(struct tf_node_store *st, tf_node_store_contact_cb *cb, void *arg)
{
    struct user_cb u = {.cb.contact = cb, .arg = arg};
    return walk_public(st, DBI_CONTACTS, NULL, visit_contact, &u);
}

int tf_node_store_event_append(struct tf_node_store *st, const uint8_t *rec, size_t len,
                               uint64_t *seq)
{
    uint8_t key[SEQ_LEN];
    uint64_t last = 0;
    MDB_cursor *cur;
    MDB_val k, v;
    int rc;
    if (rec == NULL && len > 0)
        return TF_E_INVALID_ARG;
    if ((rc = write_begin(st)) != 0)
        return lmdb_err(rc);
    if ((rc = mdb_cursor_open(st->txn, st->dbi[DBI_EVENTS], &cur)) != 0)
        return lmdb_err(rc);
    rc = mdb_cursor_get(cur, &k, &v, MDB_LAST);
    if (rc == 0 && k.mv_size != SEQ_LEN)
        rc = TF_E_CORRUPT;
    else if (rc == 0)
        last = load_be(k.mv_data, SEQ_LEN);
    else if (rc == MDB_NOTFOUND)
        rc = 0;
    mdb_cursor_close(cur);
    if (rc == 0 && last == UINT64_MAX)
        rc = -EOVERFLOW;
    if (rc != 0)
        return lmdb_err(rc);
    store_be64(key, last + 1);
    rc = write_op(st, DBI_EVENTS, key, SEQ_LEN, rec != NULL ? rec : no_value, len, MDB_APPEND);
    if (rc == 0 && seq != NULL)
        *seq = last + 1;
    return lmdb_err(rc);
}

/* The time of an event record: the value of its first pair, "time" (see
 * tf_node_store_event_trim); 0 for a record that does not start so. */
static uint64_t event_time(const MDB_val *v)
{
    struct tf_proto_mp_reader r;
    struct tf_proto_bytes k;
    uint32_t n;
    uint64_t t;
    tf_proto_mp_reader_init(&r, v->mv_data, v->mv_size);
    if (tf_proto_mp_read_map(&r, UINT32_MAX, &n) != TF_OK || n == 0 ||
        tf_proto_mp_read_str(&r, 4, 4, TF_PROTO_TEXT_LINE, &k) != TF_OK ||
        memcmp(k.ptr, "time", 4) != 0 || tf_proto_mp_read_uint(&r, &t) != TF_OK)
        return 0;
    return t;
}

/* Reads the oldest event: its key (copied), its time, and how many events
 * there are.  MDB_NOTFOUND when there are none. */
static int oldest_event(struct tf_node_store *st, uint8_t key[static SEQ_LEN], uint64_t *time,
                        uint64_t *count)
{
    MDB_cursor *cur;
    MDB_stat ms;
    MDB_val k, v;
    int rc = mdb_stat(st->txn, st->dbi[DBI_EVENTS], &ms);
    if (rc != 0)
        return rc;
    *count = ms.ms_entries;
    if ((rc = mdb_cursor_open(st->txn, st->dbi[DBI_EVENTS], &cur)) != 0)
        return rc;
    rc = mdb_cursor_get(cur, &k, &v, MDB_FIRST);
    if (rc == 0 && k.mv_size != SEQ_LEN)
        rc = TF_E_CORRUPT;
    if (rc == 0) {
        memcpy(key, k.mv_data, SEQ_LEN);
        *time = event_time(&v);
    }
    mdb_cursor_close(cur);
    return rc;
}

int tf_node_store_event_trim(struct tf_node_store *st, uint64_t max_count, uint64_t before,
                             size_t limit, size_t *deleted)
{
    uint8_t key[SEQ_LEN];
    uint64_t time, count;
    int rc = 0;
    *deleted = 0;
    while (*deleted < limit) {
        /* Each delete may replace the transaction (to grow the map): no
         * cursor is kept across it. */
        if ((rc = write_begin(st)) != 0 || (rc = oldest_event(st, key, &time, &count)) != 0)
            break;
        if (count <= 1 || (count <= max_count && time >= before))
            break;
        if ((rc = write_op(st, DBI_EVENTS, key, SEQ_LEN, NULL, 0, 0)) != 0)
            break;
        (*deleted)++;
    }
    return rc == MDB_NOTFOUND ? TF_OK : lmdb_err(rc);
}

int tf_node_store_event_last(struct tf_node_store *st, uint64_t *seq)
{
    MDB_txn *txn;
    MDB_cursor *cur;
    MDB_val k, v;
    bool own;
    *seq = 0;
    int rc = read_begin(st, &txn, &own);
    if (rc != 0)
        return lmdb_err(rc);
    if ((rc = mdb_cursor_open(txn, st->dbi[DBI_EVENTS], &cur)) == 0) {
        rc = mdb_cursor_get(cur, &k, &v, MDB_LAST);
        if (rc == 0 && k.mv_size != SEQ_LEN)
            rc = TF_E_CORRUPT;
        else if (rc == 0)
            *seq = load_be(k.mv_data, SEQ_LEN);
        mdb_cursor_close(cur);
    }
    read_end(st, txn, own);
    return rc == MDB_NOTFOUND ? TF_OK : lmdb_err(rc);
}

static int visit_event(const MDB_val *k, const MDB_val *v, void *ctx, bool *stopped)
{
    struct user_cb *u = ctx;
    if (k->mv_size != SEQ_LEN)
        return TF_E_CORRUPT;
    int rc = u->cb.event(load_be(k->mv_data, SEQ_LEN), v->mv_data, v->mv_size, u->arg);
    *stopped = rc != 0;
    return rc;
}

int tf_node_store_event_foreach(struct tf_node_store *st, uint64_t after,
                                tf_node_store_event_cb *cb, void *arg)
{
    struct user_cb u = {.cb.event = cb, .arg = arg};
    uint8_t key[SEQ_LEN];
    if (after == UINT64_MAX)
        return TF_OK;
    store_be64(key, after + 1);
    MDB_val from = mval(key, sizeof key);
    return walk_public(st, DBI_EVENTS, &from, visit_event, &u);
}

/*
 * Outbox, seen ids and messages.  The outbox and seen tables each have a time
 * index (u64be(time) || the entry's key -> empty: TIME_KEY_LEN keys for the
 * outbox's msg ids, SEEN_EXP_LEN for seen keys) that every write keeps in
 * step with the table: one index key per entry, naming the entry's time.
 */

/* The length of an index's keys. */
static size_t time_key_len(enum dbi index)
{
    return index == DBI_SEEN_EXP ? SEEN_EXP_LEN : TIME_KEY_LEN;
}

static void time_key(uint8_t key[static TIME_KEY_LEN], uint64_t t,
                     const uint8_t id[static MSG_ID_LEN])
{
    store_be64(key, t);
    memcpy(key + SEQ_LEN, id, MSG_ID_LEN);
}

/* Removes the index entry (t, id) if it is there (deleting a missing key
 * would lose the write transaction).  In the write transaction. */
static int index_drop(struct tf_node_store *st, enum dbi dbi, uint64_t t, const uint8_t *id)
{
    uint8_t key[TIME_KEY_MAX];
    size_t len = time_key_len(dbi);
    MDB_val v;
    store_be64(key, t);
    memcpy(key + SEQ_LEN, id, len - SEQ_LEN);
    int rc = get(st, st->txn, dbi, key, len, &v);
    if (rc != 0)
        return rc == MDB_NOTFOUND ? 0 : rc;
    return write_op(st, dbi, key, len, NULL, 0, 0);
}

/* Finds one index key (len bytes) naming id. */
struct index_of {
    const uint8_t *id;
    size_t len;
    uint8_t key[TIME_KEY_MAX];
};

static int visit_index_of(const MDB_val *k, const MDB_val *v, void *ctx, bool *stopped)
{
    struct index_of *x = ctx;
    (void)v;
    if (k->mv_size != x->len ||
        memcmp((const uint8_t *)k->mv_data + SEQ_LEN, x->id, x->len - SEQ_LEN) != 0)
        return 0;
    memcpy(x->key, k->mv_data, x->len);
    *stopped = true;
    return 1;
}

/* Removes every index entry naming id: for an entry whose record does not
 * decode, so that its time is not known.  In the write transaction. */
static int index_drop_all(struct tf_node_store *st, enum dbi dbi, const uint8_t *id)
{
    for (;;) {
        struct index_of x = {.id = id, .len = time_key_len(dbi)};
        bool found;
        int rc = walk(st, st->txn, dbi, NULL, visit_index_of, &x, &found);
        if (!found)
            return rc;
        if ((rc = write_op(st, dbi, x.key, x.len, NULL, 0, 0)) != 0)
            return rc;
    }
}

/* The first keys of an index, up to a time, copied out so that the caller
 * may write (or commit) between them. */
struct time_keys {
    uint64_t last; /* collect keys whose time is <= last */
    size_t max;    /* and at most this many */
    size_t n, cap;
    size_t len;                    /* each key's length (set by collect) */
    uint8_t (*keys)[TIME_KEY_MAX]; /* malloc'ed; the caller frees it */
};

static int visit_collect(const MDB_val *k, const MDB_val *v, void *ctx, bool *stopped)
{
    struct time_keys *c = ctx;
    if (k->mv_size != c->len || v->mv_size != 0)
        return TF_E_CORRUPT;
    if (c->n == c->max || load_be(k->mv_data, SEQ_LEN) > c->last) {
        *stopped = true;
        return 1;
    }
    if (c->n == c->cap) {
        /* Grown as keys come, never pre-sized from max. */
        size_t cap = c->cap == 0 ? (c->max < 64 ? c->max : 64) : 2 * c->cap;
        if (c->cap > SIZE_MAX / 2 / TIME_KEY_MAX)
            return TF_E_NOMEM;
        uint8_t(*keys)[TIME_KEY_MAX] = realloc(c->keys, cap * TIME_KEY_MAX);
        if (keys == NULL)
            return TF_E_NOMEM;
        c->keys = keys;
        c->cap = cap;
    }
    memcpy(c->keys[c->n++], k->mv_data, c->len);
    return 0;
}

/* Collects keys of dbi into *c (see struct time_keys), in a read transaction
 * that has ended when it returns. */
static int collect(struct tf_node_store *st, enum dbi dbi, struct time_keys *c)
{
    MDB_txn *txn;
    bool own, stopped = false;
    int rc = read_begin(st, &txn, &own);
    c->len = time_key_len(dbi);
    if (rc == 0) {
        rc = walk(st, txn, dbi, NULL, visit_collect, c, &stopped);
        read_end(st, txn, own);
    }
    return stopped ? 0 : rc;
}

/* Decodes a record stored under the key id, into out. */
typedef int decode_fn(const uint8_t *id, const MDB_val *v, void *out);

/* Reads and decodes the record under key in a read transaction. */
static int read_record(struct tf_node_store *st, enum dbi dbi, const uint8_t *key, size_t klen,
                       decode_fn *decode, void *out)
{
    MDB_txn *txn;
    MDB_val v;
    bool own;
    int rc = read_begin(st, &txn, &own);
    if (rc != 0)
        return lmdb_err(rc);
    if ((rc = get(st, txn, dbi, key, klen, &v)) == 0)
        rc = decode(key, &v, out);
    read_end(st, txn, own);
    return lmdb_err(rc);
}

/* Reads a LINE str of at most max bytes into dst (max + 1 bytes) as a C
 * string (a LINE str holds no NUL). */
static int read_line(struct tf_proto_mp_reader *r, size_t max, char *dst)
{
    struct tf_proto_bytes s;
    int rc = tf_proto_mp_read_str(r, 0, max, TF_PROTO_TEXT_LINE, &s);
    if (rc != TF_OK)
        return rc;
    if (s.len > 0)
        memcpy(dst, s.ptr, s.len);
    dst[s.len] = '\0';
    return TF_OK;
}

/* Parses a record into *out (a struct tf_node_outbox_entry or message): every
 * field but the key and one variable-length field, which *view views in rec. */
typedef int parse_fn(const uint8_t *rec, size_t len, void *out, struct tf_proto_bytes *view);

/* Finishes an encoder's record and checks it with the decoder's parser (into
 * scratch), so that the store only ever writes records it can read back. */
static int finish_record(struct tf_proto_mp_writer *w, parse_fn *parse, void *scratch,
                         struct tf_proto_buf *out)
{
    struct tf_proto_bytes view;
    int rc = tf_proto_mp_writer_finish(w, out);
    if (rc != TF_OK || parse(out->data, out->len, scratch, &view) == TF_OK)
        return rc;
    tf_proto_buf_free(out);
    return TF_E_BAD_VALUE;
}

/* Decodes rec into *out (size bytes) with parse, copying the viewed field into
 * *owned (a member of *out).  TF_E_CORRUPT on any parse failure; *out is
 * zeroed unless it succeeds.  The caller sets the key. */
static int decode_record(parse_fn *parse, const uint8_t *rec, size_t len, void *out, size_t size,
                         struct tf_proto_buf *owned)
{
    struct tf_proto_bytes view;
    int rc = TF_E_CORRUPT;
    memset(out, 0, size);
    if (parse(rec, len, out, &view) == TF_OK && (rc = copy_bytes(owned, view.ptr, view.len)) == 0)
        return TF_OK;
    memset(out, 0, size);
    return rc;
}

/* direct (schema 9): an outbox record has OUTBOX_FIELDS fields, and a 9th,
 * the body, when the entry keeps what it needs to be sent unsealed; its
 * envelope may then be empty (not sealed yet).  A record of 8 fields (all of
 * them before schema 9) holds a sealed envelope only. */
#define OUTBOX_FIELDS_BODY (OUTBOX_FIELDS + 1)

/* Parses an outbox record: every field but the key and the two of variable
 * length, which *envelope and *body view in rec (body empty when the record
 * has none). */
static int outbox_parse_views(const uint8_t *rec, size_t len, struct tf_node_outbox_entry *e,
                              struct tf_proto_bytes *envelope, struct tf_proto_bytes *body)
{
    struct tf_proto_mp_reader r;
    uint64_t type, attempts;
    uint32_t n;
    int rc;
    memset(body, 0, sizeof *body);
    tf_proto_mp_reader_init(&r, rec, len);
    if ((rc = tf_proto_mp_read_array(&r, OUTBOX_FIELDS_BODY, &n)) != TF_OK)
        return rc;
    if (n != OUTBOX_FIELDS && n != OUTBOX_FIELDS_BODY)
        return TF_E_COUNT;
    if ((rc = tf_proto_mp_read_bin_fixed(&r, e->to_pk, sizeof e->to_pk)) != TF_OK ||
        (rc = tf_proto_mp_read_uint(&r, &type)) != TF_OK ||
        (rc = tf_proto_mp_read_bin(&r, n == OUTBOX_FIELDS ? 1 : 0, TF_PROTO_ENVELOPE_MAX,
                                   envelope)) != TF_OK ||
        (rc = tf_proto_mp_read_uint(&r, &e->created)) != TF_OK ||
        (rc = tf_proto_mp_read_uint(&r, &e->expires)) != TF_OK ||
        (rc = tf_proto_mp_read_uint(&r, &attempts)) != TF_OK ||
        (rc = tf_proto_mp_read_uint(&r, &e->next_try_ms)) != TF_OK ||
        (rc = read_line(&r, ERROR_LEN_MAX, e->last_error)) != TF_OK)
        return rc;
    if (n == OUTBOX_FIELDS_BODY &&
        (rc = tf_proto_mp_read_bin(&r, 1, TF_PROTO_BODY_MAX, body)) != TF_OK)
        return rc;
    if ((rc = tf_proto_mp_read_end(&r)) != TF_OK)
        return rc;
    if (!tf_proto_msg_type_is_valid(type) || attempts > UINT32_MAX)
        return TF_E_BAD_VALUE;
    e->type = (uint16_t)type; /* a valid type fits */
    e->attempts = (uint32_t)attempts;
    return TF_OK;
}

/* A parse_fn: the envelope is the viewed field. */
static int outbox_parse(const uint8_t *rec, size_t len, void *out, struct tf_proto_bytes *envelope)
{
    struct tf_proto_bytes body;
    return outbox_parse_views(rec, len, out, envelope, &body);
}

int tf_node_outbox_entry_encode(const struct tf_node_outbox_entry *e, struct tf_proto_buf *out)
{
    struct tf_proto_mp_writer w;
    struct tf_node_outbox_entry check;
    bool body = e->body.len > 0;
    memset(out, 0, sizeof *out);
    /* What the writer would read out of bounds; the rest is checked below. */
    if (memchr(e->last_error, '\0', sizeof e->last_error) == NULL ||
        (e->envelope.len > 0 && e->envelope.data == NULL) || (body && e->body.data == NULL) ||
        e->envelope.len > TF_PROTO_ENVELOPE_MAX || e->body.len > TF_PROTO_BODY_MAX)
        return TF_E_BAD_VALUE;
    tf_proto_mp_writer_init(&w);
    tf_proto_mp_write_array(&w, body ? OUTBOX_FIELDS_BODY : OUTBOX_FIELDS);
    tf_proto_mp_write_bin(&w, e->to_pk, sizeof e->to_pk);
    tf_proto_mp_write_uint(&w, e->type);
    tf_proto_mp_write_bin(&w, e->envelope.data, e->envelope.len);
    tf_proto_mp_write_uint(&w, e->created);
    tf_proto_mp_write_uint(&w, e->expires);
    tf_proto_mp_write_uint(&w, e->attempts);
    tf_proto_mp_write_uint(&w, e->next_try_ms);
    tf_proto_mp_write_cstr(&w, e->last_error);
    if (body)
        tf_proto_mp_write_bin(&w, e->body.data, e->body.len);
    return finish_record(&w, outbox_parse, &check, out);
}

int tf_node_outbox_entry_decode(const uint8_t msg_id[static 16], const uint8_t *rec, size_t len,
                                struct tf_node_outbox_entry *e)
{
    struct tf_proto_bytes envelope, body;
    memset(e, 0, sizeof *e);
    if (outbox_parse_views(rec, len, e, &envelope, &body) != TF_OK) {
        memset(e, 0, sizeof *e);
        return TF_E_CORRUPT;
    }
    /* An empty envelope or body is kept as none (NULL). */
    if ((envelope.len > 0 && copy_bytes(&e->envelope, envelope.ptr, envelope.len) != 0) ||
        (body.len > 0 && copy_bytes(&e->body, body.ptr, body.len) != 0)) {
        tf_node_outbox_entry_deinit(e);
        return TF_E_NOMEM;
    }
    memcpy(e->msg_id, msg_id, MSG_ID_LEN);
    return TF_OK;
}

void tf_node_outbox_entry_deinit(struct tf_node_outbox_entry *e)
{
    tf_proto_buf_free(&e->envelope);
    tf_proto_buf_free(&e->body);
    memset(e, 0, sizeof *e);
}

static int decode_outbox(const uint8_t *id, const MDB_val *v, void *out)
{
    return tf_node_outbox_entry_decode(id, v->mv_data, v->mv_size, out);
}

/* Removes the due index entry of the stored entry for id (every one naming
 * id if its record does not decode).  MDB_NOTFOUND if there is no entry. */
static int outbox_unindex(struct tf_node_store *st, const uint8_t *id)
{
    struct tf_node_outbox_entry e;
    struct tf_proto_bytes envelope;
    MDB_val v;
    int rc = write_begin(st);
    if (rc == 0)
        rc = get(st, st->txn, DBI_OUTBOX, id, MSG_ID_LEN, &v);
    if (rc != 0)
        return rc;
    if (outbox_parse(v.mv_data, v.mv_size, &e, &envelope) != TF_OK)
        return index_drop_all(st, DBI_OUTBOX_DUE, id);
    return index_drop(st, DBI_OUTBOX_DUE, e.next_try_ms, id);
}

int tf_node_store_outbox_put(struct tf_node_store *st, const struct tf_node_outbox_entry *e)
{
    struct tf_proto_buf rec;
    uint8_t key[TIME_KEY_LEN];
    int rc = tf_node_outbox_entry_encode(e, &rec);
    if (rc != TF_OK)
        return rc;
    if ((rc = outbox_unindex(st, e->msg_id)) == MDB_NOTFOUND)
        rc = 0;
    time_key(key, e->next_try_ms, e->msg_id);
    if (rc == 0)
        rc = write_op(st, DBI_OUTBOX_DUE, key, sizeof key, no_value, 0, 0);
    if (rc == 0)
        rc = write_op(st, DBI_OUTBOX, e->msg_id, MSG_ID_LEN, rec.data, rec.len, 0);
    tf_proto_buf_free(&rec);
    return lmdb_err(rc);
}

int tf_node_store_outbox_get(struct tf_node_store *st, const uint8_t msg_id[static 16],
                             struct tf_node_outbox_entry *out)
{
    memset(out, 0, sizeof *out);
    return read_record(st, DBI_OUTBOX, msg_id, MSG_ID_LEN, decode_outbox, out);
}

int tf_node_store_outbox_del(struct tf_node_store *st, const uint8_t msg_id[static 16])
{
    int rc = outbox_unindex(st, msg_id);
    if (rc == 0)
        rc = write_op(st, DBI_OUTBOX, msg_id, MSG_ID_LEN, NULL, 0, 0);
    return lmdb_err(rc);
}

static int visit_outbox(const MDB_val *k, const MDB_val *v, void *ctx, bool *stopped)
{
    struct user_cb *u = ctx;
    struct tf_node_outbox_entry e;
    int rc = k->mv_size == MSG_ID_LEN ? decode_outbox(k->mv_data, v, &e) : TF_E_CORRUPT;
    if (rc != TF_OK)
        return rc;
    rc = u->cb.outbox(&e, u->arg);
    tf_node_outbox_entry_deinit(&e);
    *stopped = rc != 0;
    return rc;
}

int tf_node_store_outbox_foreach(struct tf_node_store *st, tf_node_store_outbox_cb *cb, void *arg)
{
    struct user_cb u = {.cb.outbox = cb, .arg = arg};
    return walk_public(st, DBI_OUTBOX, NULL, visit_outbox, &u);
}

/* Reads only the recipient of an outbox record: no copy of the envelope. */
static int visit_recipient(const MDB_val *k, const MDB_val *v, void *ctx, bool *stopped)
{
    struct user_cb *u = ctx;
    struct tf_proto_mp_reader r;
    uint8_t to_pk[32];
    int rc = k->mv_size == MSG_ID_LEN ? TF_OK : TF_E_CORRUPT;
    tf_proto_mp_reader_init(&r, v->mv_data, v->mv_size);
    uint32_t n = 0;
    if (rc == TF_OK &&
        (tf_proto_mp_read_array(&r, OUTBOX_FIELDS_BODY, &n) != TF_OK || n < OUTBOX_FIELDS ||
         tf_proto_mp_read_bin_fixed(&r, to_pk, sizeof to_pk) != TF_OK))
        rc = TF_E_CORRUPT;
    if (rc != TF_OK)
        return rc;
    rc = u->cb.recipient(to_pk, u->arg);
    *stopped = rc != 0;
    return rc;
}

int tf_node_store_outbox_recipients(struct tf_node_store *st, tf_node_store_recipient_cb *cb,
                                    void *arg)
{
    struct user_cb u = {.cb.recipient = cb, .arg = arg};
    return walk_public(st, DBI_OUTBOX, NULL, visit_recipient, &u);
}

/* Fetches the entry a collected due key names, in a read transaction of its
 * own.  MDB_NOTFOUND if the key is gone: an earlier callback of the walk moved
 * or deleted the entry. */
static int due_entry(struct tf_node_store *st, const uint8_t key[static TIME_KEY_LEN],
                     struct tf_node_outbox_entry *e)
{
    const uint8_t *id = key + SEQ_LEN;
    MDB_txn *txn;
    MDB_val v;
    bool own;
    int rc = read_begin(st, &txn, &own);
    if (rc != 0)
        return rc;
    if ((rc = get(st, txn, DBI_OUTBOX_DUE, key, TIME_KEY_LEN, &v)) == 0) {
        /* The index names only stored entries, at their next_try_ms. */
        if ((rc = get(st, txn, DBI_OUTBOX, id, MSG_ID_LEN, &v)) == MDB_NOTFOUND)
            rc = TF_E_CORRUPT;
        else if (rc == 0 && (rc = decode_outbox(id, &v, e)) == 0 &&
                 e->next_try_ms != load_be(key, SEQ_LEN)) {
            tf_node_outbox_entry_deinit(e);
            rc = TF_E_CORRUPT;
        }
    }
    read_end(st, txn, own);
    return rc;
}

int tf_node_store_outbox_due(struct tf_node_store *st, uint64_t now_ms, size_t max,
                             tf_node_store_outbox_cb *cb, void *arg)
{
    struct time_keys due = {.last = now_ms, .max = max};
    bool stopped = false;
    int rc = collect(st, DBI_OUTBOX_DUE, &due);
    /* No transaction of ours is open while cb runs, so it may write, commit
     * or abort, and the map may grow. */
    for (size_t i = 0; rc == 0 && !stopped && i < due.n; i++) {
        struct tf_node_outbox_entry e;
        if ((rc = due_entry(st, due.keys[i], &e)) == MDB_NOTFOUND) {
            rc = 0;
            continue;
        }
        if (rc == 0) {
            rc = cb(&e, arg);
            stopped = rc != 0;
            tf_node_outbox_entry_deinit(&e);
        }
    }
    free(due.keys);
    return stopped ? rc : lmdb_err(rc);
}

int tf_node_store_outbox_next_due(struct tf_node_store *st, uint64_t *next_ms)
{
    struct time_keys first = {.last = UINT64_MAX, .max = 1};
    int rc = collect(st, DBI_OUTBOX_DUE, &first);
    if (rc == 0 && first.n == 0)
        rc = MDB_NOTFOUND;
    if (rc == 0)
        *next_ms = load_be(first.keys[0], SEQ_LEN);
    free(first.keys);
    return lmdb_err(rc);
}

/* ackdefer: next_due, skipping the entries skip names. */
int tf_node_store_outbox_next_due_skip(struct tf_node_store *st, size_t max,
                                       tf_node_store_skip_cb *skip, void *arg, uint64_t *next_ms)
{
    struct time_keys keys = {.last = UINT64_MAX, .max = max};
    int rc = collect(st, DBI_OUTBOX_DUE, &keys);
    size_t i = 0;
    while (rc == 0 && i < keys.n && skip(keys.keys[i] + SEQ_LEN, arg))
        i++;
    if (rc == 0 && i == keys.n)
        rc = MDB_NOTFOUND;
    if (rc == 0)
        *next_ms = load_be(keys.keys[i], SEQ_LEN);
    free(keys.keys);
    return lmdb_err(rc);
}

/* A seen entry's value: u64be(expires). */
static int decode_expiry(const uint8_t *id, const MDB_val *v, void *out)
{
    (void)id;
    if (v->mv_size != SEQ_LEN)
        return TF_E_CORRUPT;
    *(uint64_t *)out = load_be(v->mv_data, SEQ_LEN);
    return 0;
}

int tf_node_store_seen_check(struct tf_node_store *st, const uint8_t key[static SEEN_KEY_LEN],
                             const uint8_t legacy[static LEGACY_KEY_LEN], uint64_t now)
{
    uint8_t old[SEEN_KEY_LEN] = {0};
    uint64_t expires;
    int rc = read_record(st, DBI_SEEN, key, SEEN_KEY_LEN, decode_expiry, &expires);
    if (rc != TF_E_NOT_FOUND || now > st->seen_legacy_until)
        return rc;
    /* seenkeys: a row older code wrote for the same envelope. */
    if (st->schema < SEEN_KEYS_SCHEMA) /* read-only, in an older store: as stored */
        return read_record(st, DBI_SEEN, legacy, LEGACY_KEY_LEN, decode_expiry, &expires);
    memcpy(old + SEEN_KEY_LEN - LEGACY_KEY_LEN, legacy, LEGACY_KEY_LEN);
    return read_record(st, DBI_SEEN, old, SEEN_KEY_LEN, decode_expiry, &expires);
}

int tf_node_store_seen_add(struct tf_node_store *st, const uint8_t key[static SEEN_KEY_LEN],
                           uint64_t expires)
{
    uint8_t ekey[SEEN_EXP_LEN], val[SEQ_LEN];
    uint64_t old;
    MDB_val v;
    int rc = write_begin(st);
    if (rc == 0 && (rc = get(st, st->txn, DBI_SEEN, key, SEEN_KEY_LEN, &v)) == 0) {
        if (decode_expiry(key, &v, &old) != 0)
            rc = index_drop_all(st, DBI_SEEN_EXP, key); /* replaced below */
        else if (old >= expires)
            return TF_OK; /* already remembered at least that long */
        else
            rc = index_drop(st, DBI_SEEN_EXP, old, key);
    } else if (rc == MDB_NOTFOUND) {
        rc = 0;
    }
    store_be64(ekey, expires);
    memcpy(ekey + SEQ_LEN, key, SEEN_KEY_LEN);
    store_be64(val, expires);
    if (rc == 0)
        rc = write_op(st, DBI_SEEN_EXP, ekey, sizeof ekey, no_value, 0, 0);
    if (rc == 0)
        rc = write_op(st, DBI_SEEN, key, SEEN_KEY_LEN, val, sizeof val, 0);
    return lmdb_err(rc);
}

/* Forgets the seen key that an expiry index key names: the index entry, and
 * the seen entry if it expires at that time (or does not decode).  In the
 * write transaction. */
static int forget(struct tf_node_store *st, const uint8_t key[static SEEN_EXP_LEN])
{
    const uint8_t *id = key + SEQ_LEN;
    uint64_t t = load_be(key, SEQ_LEN), expires;
    MDB_val v;
    int rc = index_drop(st, DBI_SEEN_EXP, t, id);
    if (rc == 0 && (rc = get(st, st->txn, DBI_SEEN, id, SEEN_KEY_LEN, &v)) == 0 &&
        (decode_expiry(id, &v, &expires) != 0 || expires == t))
        rc = write_op(st, DBI_SEEN, id, SEEN_KEY_LEN, NULL, 0, 0);
    return rc == MDB_NOTFOUND ? 0 : rc;
}

int tf_node_store_clear_dead_readers(struct tf_node_store *st, int *dead)
{
    *dead = 0;
    return lmdb_err(mdb_reader_check(st->env, dead));
}

int tf_node_store_seen_count(struct tf_node_store *st, uint64_t *count)
{
    MDB_txn *txn;
    MDB_stat ms;
    bool own;
    *count = 0;
    if (!has(st, DBI_SEEN))
        return TF_OK;
    int rc = read_begin(st, &txn, &own);
    if (rc != 0)
        return lmdb_err(rc);
    if ((rc = mdb_stat(txn, st->dbi[DBI_SEEN], &ms)) == 0)
        *count = ms.ms_entries;
    read_end(st, txn, own);
    return lmdb_err(rc);
}

int tf_node_store_seen_gc(struct tf_node_store *st, uint64_t now, size_t max, size_t *removed)
{
    int rc = 0;
    *removed = 0;
    if (st->readonly)
        return -EROFS;
    /* Batches of keys copied out first: deleting under a cursor would move
     * it.  Each batch is deleted before the next is collected. */
    while (rc == 0 && now > 0 && *removed < max) {
        size_t want = max - *removed < GC_BATCH ? max - *removed : GC_BATCH;
        struct time_keys batch = {.last = now - 1, .max = want};
        if ((rc = collect(st, DBI_SEEN_EXP, &batch)) == 0 && batch.n > 0)
            rc = write_begin(st);
        for (size_t i = 0; rc == 0 && i < batch.n; i++)
            if ((rc = forget(st, batch.keys[i])) == 0)
                (*removed)++;
        free(batch.keys);
        if (batch.n < want)
            break;
    }
    return lmdb_err(rc);
}

const char *tf_node_message_state_name(enum tf_node_message_state s)
{
    switch (s) {
    case TF_NODE_MESSAGE_QUEUED:
        return "queued";
    case TF_NODE_MESSAGE_DELIVERED:
        return "delivered";
    case TF_NODE_MESSAGE_FAILED:
        return "failed";
    case TF_NODE_MESSAGE_RECEIVED:
        return "received";
    }
    return "invalid";
}

/* A parse_fn: the text is the viewed field. */
static int message_parse(const uint8_t *rec, size_t len, void *out, struct tf_proto_bytes *text)
{
    struct tf_node_message *m = out;
    struct tf_proto_mp_reader r;
    uint64_t state;
    int rc;
    tf_proto_mp_reader_init(&r, rec, len);
    if ((rc = tf_proto_mp_read_array_exact(&r, MESSAGE_FIELDS)) != TF_OK ||
        (rc = tf_proto_mp_read_bool(&r, &m->outgoing)) != TF_OK ||
        (rc = tf_proto_mp_read_bin_fixed(&r, m->contact, sizeof m->contact)) != TF_OK ||
        (rc = tf_proto_mp_read_str(&r, 0, TF_NODE_MESSAGE_TEXT_MAX, TF_PROTO_TEXT_MULTILINE,
                                   text)) != TF_OK ||
        (rc = tf_proto_mp_read_uint(&r, &m->time)) != TF_OK ||
        (rc = tf_proto_mp_read_uint(&r, &m->updated)) != TF_OK ||
        (rc = tf_proto_mp_read_uint(&r, &state)) != TF_OK ||
        (rc = read_line(&r, ERROR_LEN_MAX, m->error)) != TF_OK ||
        (rc = tf_proto_mp_read_end(&r)) != TF_OK)
        return rc;
    /* Incoming messages, and only they, are RECEIVED. */
    if (state > TF_NODE_MESSAGE_RECEIVED || m->outgoing == (state == TF_NODE_MESSAGE_RECEIVED))
        return TF_E_BAD_VALUE;
    m->state = (enum tf_node_message_state)state;
    return TF_OK;
}

int tf_node_message_encode(const struct tf_node_message *m, struct tf_proto_buf *out)
{
    struct tf_proto_mp_writer w;
    struct tf_node_message check;
    struct tf_proto_bytes text = {m->text.data, m->text.len};
    memset(out, 0, sizeof *out);
    /* What the writer would read out of bounds; the rest is checked below. */
    if (memchr(m->error, '\0', sizeof m->error) == NULL || (text.ptr == NULL && text.len > 0) ||
        text.len > TF_NODE_MESSAGE_TEXT_MAX)
        return TF_E_BAD_VALUE;
    tf_proto_mp_writer_init(&w);
    tf_proto_mp_write_array(&w, MESSAGE_FIELDS);
    tf_proto_mp_write_bool(&w, m->outgoing);
    tf_proto_mp_write_bin(&w, m->contact, sizeof m->contact);
    tf_proto_mp_write_text(&w, text);
    tf_proto_mp_write_uint(&w, m->time);
    tf_proto_mp_write_uint(&w, m->updated);
    tf_proto_mp_write_uint(&w, (uint64_t)m->state);
    tf_proto_mp_write_cstr(&w, m->error);
    return finish_record(&w, message_parse, &check, out);
}

int tf_node_message_decode(const uint8_t id[static 16], const uint8_t *rec, size_t len,
                           struct tf_node_message *m)
{
    int rc = decode_record(message_parse, rec, len, m, sizeof *m, &m->text);
    if (rc == TF_OK)
        memcpy(m->id, id, MSG_ID_LEN);
    return rc;
}

void tf_node_message_deinit(struct tf_node_message *m)
{
    tf_proto_buf_free(&m->text);
    memset(m, 0, sizeof *m);
}

static int decode_message(const uint8_t *id, const MDB_val *v, void *out)
{
    return tf_node_message_decode(id, v->mv_data, v->mv_size, out);
}

int tf_node_store_message_put(struct tf_node_store *st, const struct tf_node_message *m)
{
    struct tf_proto_buf rec;
    int rc = tf_node_message_encode(m, &rec);
    if (rc != TF_OK)
        return rc;
    rc = write_op(st, DBI_MESSAGES, m->id, MSG_ID_LEN, rec.data, rec.len, 0);
    tf_proto_buf_free(&rec);
    return lmdb_err(rc);
}

int tf_node_store_message_del(struct tf_node_store *st, const uint8_t id[static 16])
{
    MDB_val v;
    int rc = write_begin(st);
    /* Deleting an absent key would lose the transaction (write_op). */
    if (rc == 0 && (rc = get(st, st->txn, DBI_MESSAGES, id, MSG_ID_LEN, &v)) == 0)
        rc = write_op(st, DBI_MESSAGES, id, MSG_ID_LEN, NULL, 0, 0);
    return lmdb_err(rc);
}

int tf_node_store_message_get(struct tf_node_store *st, const uint8_t id[static 16],
                              struct tf_node_message *out)
{
    memset(out, 0, sizeof *out);
    return read_record(st, DBI_MESSAGES, id, MSG_ID_LEN, decode_message, out);
}

static int visit_message(const MDB_val *k, const MDB_val *v, void *ctx, bool *stopped)
{
    struct user_cb *u = ctx;
    struct tf_node_message m;
    int rc = k->mv_size == MSG_ID_LEN ? decode_message(k->mv_data, v, &m) : TF_E_CORRUPT;
    if (rc != TF_OK)
        return rc;
    rc = u->cb.message(&m, u->arg);
    tf_node_message_deinit(&m);
    *stopped = rc != 0;
    return rc;
}

int tf_node_store_message_foreach(struct tf_node_store *st, tf_node_store_message_cb *cb, void *arg)
{
    struct user_cb u = {.cb.message = cb, .arg = arg};
    return walk_public(st, DBI_MESSAGES, NULL, visit_message, &u);
}

int tf_node_store_stat(struct tf_node_store *st, struct tf_node_store_stat *out)
{
    const struct {
        enum dbi dbi;
        uint64_t *n;
    } counts[] = {
        {DBI_CONTACTS, &out->contacts}, {DBI_EVENTS, &out->events},     {DBI_OUTBOX, &out->outbox},
        {DBI_SEEN, &out->seen},         {DBI_MESSAGES, &out->messages},
    };
    MDB_stat ms, env;
    MDB_envinfo info;
    MDB_txn *txn;
    bool own;
    memset(out, 0, sizeof *out);
    int rc = read_begin(st, &txn, &own);
    if (rc != 0)
        return lmdb_err(rc);
    for (size_t i = 0; rc == 0 && i < sizeof counts / sizeof counts[0]; i++)
        if (has(st, counts[i].dbi) && (rc = mdb_stat(txn, st->dbi[counts[i].dbi], &ms)) == 0)
            *counts[i].n = ms.ms_entries;
    read_end(st, txn, own);
    if (rc == 0 && (rc = mdb_env_info(st->env, &info)) == 0 &&
        (rc = mdb_env_stat(st->env, &env)) == 0) {
        out->size_bytes = (uint64_t)(info.me_last_pgno + 1) * env.ms_psize;
        out->pages = (uint64_t)info.me_last_pgno + 1; /* perf */
        out->commits = st->commits;
        out->map_bytes = info.me_mapsize;
    }
    const char *path;
    struct statvfs sv;
    if (rc == 0 && mdb_env_get_path(st->env, &path) == 0 && statvfs(path, &sv) == 0) {
        out->disk_free_bytes = (uint64_t)sv.f_bavail * sv.f_frsize;
        out->disk_total_bytes = (uint64_t)sv.f_blocks * sv.f_frsize;
    }
    if (rc != 0)
        memset(out, 0, sizeof *out);
    return lmdb_err(rc);
}

/* pages (issue 17): a table's shape (mdb_stat) and its committed writes.
 * introkeys: the tables a later schema dropped are left out, so i counts the
 * tables this code writes. */
int tf_node_store_table_stat(struct tf_node_store *st, size_t i,
                             struct tf_node_store_table_stat *out)
{
    MDB_txn *txn;
    MDB_stat ms;
    bool own;
    size_t d = 0;
    memset(out, 0, sizeof *out);
    for (; d < DBI_COUNT; d++)
        if (dropped_by((enum dbi)d) == 0 && i-- == 0)
            break;
    if (d >= DBI_COUNT)
        return TF_E_NOT_FOUND;
    out->name = tables[d].name;
    out->writes = st->table_writes[d];
    if (!has(st, (enum dbi)d))
        return TF_OK;
    int rc = read_begin(st, &txn, &own);
    if (rc != 0)
        return lmdb_err(rc);
    if ((rc = mdb_stat(txn, st->dbi[d], &ms)) == 0) {
        out->entries = ms.ms_entries;
        out->depth = ms.ms_depth;
        out->branch_pages = ms.ms_branch_pages;
        out->leaf_pages = ms.ms_leaf_pages;
        out->overflow_pages = ms.ms_overflow_pages;
    }
    read_end(st, txn, own);
    return lmdb_err(rc);
}

/* Backup (issue 16, ux).  MDB_CP_COMPACT copies under a read transaction
 * alone (a plain copy takes the writer's lock for a moment) and leaves out
 * free pages. */
int tf_node_store_copy_fd(struct tf_node_store *st, int fd)
{
    int rc = mdb_env_copyfd2(st->env, fd, MDB_CP_COMPACT);
    /* The running node grew the map since this process opened it: adopt
     * the new size (nothing else is open here) and copy again from the
     * start. */
    if (rc == MDB_MAP_RESIZED && st->txn == NULL && st->readers == 0 &&
        (rc = mdb_env_set_mapsize(st->env, 0)) == 0) {
        if (ftruncate(fd, 0) != 0 || lseek(fd, 0, SEEK_SET) != 0)
            return -errno;
        rc = mdb_env_copyfd2(st->env, fd, MDB_CP_COMPACT);
    }
    return lmdb_err(rc);
}
