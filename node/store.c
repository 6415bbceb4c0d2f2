/* SPDX-License-Identifier: MIT */
#include "node/store.h"

#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <lmdb.h>
#include <sodium.h>

#include "node/home.h"
#include "proto/identity.h"

/* Sparse: the file grows with the data, not with the map. */
#define INITIAL_MAPSIZE ((size_t)64 << 20)
#define META_KEY_MAX 64
#define SEQ_LEN 8
#define SCHEMA_KEY "schema"
/* Shortest id prefix contact_find resolves ("tf1" and three characters). */
#define FIND_PREFIX_MIN 6

enum dbi { DBI_META, DBI_CONTACTS, DBI_ALIASES, DBI_EVENTS, DBI_COUNT };

static const char *const dbi_names[DBI_COUNT] = {"meta", "contacts", "aliases", "events"};

/* One write of the open transaction.  MDB_MAP_FULL leaves a write
 * transaction unusable, so every write is journalled: after the map has grown
 * the journal is replayed into a new transaction and no earlier write of the
 * loop iteration is lost. */
struct op {
    MDB_dbi dbi;
    bool del;
    unsigned flags; /* mdb_put flags */
    size_t klen, vlen;
    uint8_t bytes[]; /* key, then value */
};

struct tf_node_store {
    MDB_env *env;
    MDB_dbi dbi[DBI_COUNT];
    bool readonly;
    MDB_txn *txn;     /* the group-commit write transaction, or NULL */
    uint64_t txn_gen; /* counts write transactions begun, to detect a replaced txn */
    int failed;       /* why the write transaction was lost; reported by commit */
    unsigned readers; /* our own read transactions open right now */
    struct op **ops;  /* journal of txn */
    size_t n_ops, cap_ops;
    uint64_t commits;
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

/* *val views LMDB memory, valid until txn's next write or its end. */
static int get(MDB_txn *txn, MDB_dbi dbi, const void *key, size_t klen, MDB_val *val)
{
    MDB_val k = mval(key, klen);
    return mdb_get(txn, dbi, &k, val);
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
    int rc = mdb_cursor_open(txn, st->dbi[dbi], &cur);
    *stopped = false;
    if (rc != 0)
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
 * value passes through untranslated. */
static int walk_public(struct tf_node_store *st, enum dbi dbi, const MDB_val *from, visit_fn *visit,
                       void *ctx)
{
    MDB_txn *txn;
    bool own, stopped = false;
    int rc = read_begin(st, &txn, &own);
    if (rc == 0) {
        rc = walk(st, txn, dbi, from, visit, ctx, &stopped);
        read_end(st, txn, own);
    }
    return stopped ? rc : lmdb_err(rc);
}

/* Migrations: migrations[v] upgrades a store from schema v to v + 1.  They
 * run at open, in read-write mode, inside the transaction that opens the
 * databases, one after another up to TF_NODE_STORE_SCHEMA; the schema value is
 * written after the last.  To change the layout, bump TF_NODE_STORE_SCHEMA and
 * add the function for the old version here.  Entry 0 stays NULL: no store was
 * ever written with schema 0, so such a store is corrupt. */
typedef int migrate_fn(struct tf_node_store *st, MDB_txn *txn);
static migrate_fn *const migrations[TF_NODE_STORE_SCHEMA] = {NULL};

static int put_schema(struct tf_node_store *st, MDB_txn *txn)
{
    uint8_t v[4] = {0, 0, 0, TF_NODE_STORE_SCHEMA};
    static_assert(TF_NODE_STORE_SCHEMA < 256, "schema is written as its low byte");
    MDB_val k = mval(SCHEMA_KEY, strlen(SCHEMA_KEY)), val = mval(v, sizeof v);
    return mdb_put(txn, st->dbi[DBI_META], &k, &val, 0);
}

static int check_schema(struct tf_node_store *st, MDB_txn *txn)
{
    MDB_val v;
    int rc = get(txn, st->dbi[DBI_META], SCHEMA_KEY, strlen(SCHEMA_KEY), &v);
    if (rc == MDB_NOTFOUND)
        return TF_E_CORRUPT;
    if (rc != 0)
        return rc;
    if (v.mv_size != 4)
        return TF_E_CORRUPT;
    uint64_t schema = load_be(v.mv_data, 4);
    if (schema > TF_NODE_STORE_SCHEMA)
        return TF_E_VERSION;
    if (schema == TF_NODE_STORE_SCHEMA)
        return 0;
    if (migrations[schema] == NULL)
        return TF_E_CORRUPT;
    if (st->readonly)
        return TF_E_VERSION; /* a read-write open must migrate it first */
    for (; schema < TF_NODE_STORE_SCHEMA; schema++)
        if ((rc = migrations[schema](st, txn)) != 0)
            return rc;
    return put_schema(st, txn);
}

/* Opens the named databases and writes (CREATE) or checks the schema, in one
 * transaction, committed so that the handles stay valid until the
 * environment closes. */
static int open_txn(struct tf_node_store *st, enum tf_node_store_mode mode)
{
    MDB_txn *txn;
    int rc = txn_begin(st, st->readonly ? MDB_RDONLY : 0, &txn);
    if (rc != 0)
        return rc;
    for (int i = 0; rc == 0 && i < DBI_COUNT; i++)
        rc = mdb_dbi_open(txn, dbi_names[i], st->readonly ? 0 : MDB_CREATE, &st->dbi[i]);
    if (rc == MDB_NOTFOUND)
        rc = TF_E_CORRUPT; /* read-only, and a database is missing */
    if (rc == 0)
        rc = mode == TF_NODE_STORE_CREATE ? put_schema(st, txn) : check_schema(st, txn);
    if (rc != 0) {
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
    if ((rc = env_open(st, dir, mode)) == 0 && (rc = open_txn(st, mode)) == MDB_MAP_FULL &&
        (rc = grow_map(st)) == 0)
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
    journal_clear(st);
    st->failed = 0;
}

bool tf_node_store_dirty(const struct tf_node_store *st)
{
    return st->txn != NULL || st->failed != 0;
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
    if ((rc = get(txn, st->dbi[DBI_META], key, strlen(key), &v)) == 0) {
        /* Never NULL, even for an empty value. */
        if ((out->data = malloc(v.mv_size > 0 ? v.mv_size : 1)) == NULL) {
            rc = TF_E_NOMEM;
        } else {
            if (v.mv_size > 0)
                memcpy(out->data, v.mv_data, v.mv_size);
            out->len = v.mv_size;
        }
    }
    read_end(st, txn, own);
    return lmdb_err(rc);
}

int tf_node_store_meta_put(struct tf_node_store *st, const char *key, const uint8_t *val,
                           size_t len)
{
    static const uint8_t empty[1];
    if (!meta_key_is_valid(key) || (val == NULL && len > 0))
        return TF_E_INVALID_ARG;
    return lmdb_err(write_op(st, DBI_META, key, strlen(key), val != NULL ? val : empty, len, 0));
}

/* pk: TF_PROTO_KEY_LEN bytes. */
static int contact_get(struct tf_node_store *st, MDB_txn *txn, const void *pk,
                       struct tf_node_contact *out)
{
    MDB_val v;
    int rc = get(txn, st->dbi[DBI_CONTACTS], pk, TF_PROTO_KEY_LEN, &v);
    if (rc != 0)
        return rc;
    return tf_node_contact_decode(pk, v.mv_data, v.mv_size, out);
}

static int alias_get(struct tf_node_store *st, MDB_txn *txn, const char *alias,
                     uint8_t pk[static TF_PROTO_KEY_LEN])
{
    MDB_val v;
    int rc = get(txn, st->dbi[DBI_ALIASES], alias, strlen(alias), &v);
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
    else if (rc == MDB_NOTFOUND)
        rc = 0;
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
    tf_node_contact_deinit(&old);
    return lmdb_err(rc);
}

/* The caller's callback for a public foreach. */
struct user_cb {
    union {
        tf_node_store_contact_cb *contact;
        tf_node_store_event_cb *event;
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
    static const uint8_t empty[1];
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
    rc = write_op(st, DBI_EVENTS, key, SEQ_LEN, rec != NULL ? rec : empty, len, MDB_APPEND);
    if (rc == 0 && seq != NULL)
        *seq = last + 1;
    return lmdb_err(rc);
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

int tf_node_store_stat(struct tf_node_store *st, struct tf_node_store_stat *out)
{
    MDB_stat contacts, events, env;
    MDB_envinfo info;
    MDB_txn *txn;
    bool own;
    memset(out, 0, sizeof *out);
    int rc = read_begin(st, &txn, &own);
    if (rc != 0)
        return lmdb_err(rc);
    if ((rc = mdb_stat(txn, st->dbi[DBI_CONTACTS], &contacts)) == 0)
        rc = mdb_stat(txn, st->dbi[DBI_EVENTS], &events);
    read_end(st, txn, own);
    if (rc == 0 && (rc = mdb_env_info(st->env, &info)) == 0 &&
        (rc = mdb_env_stat(st->env, &env)) == 0) {
        out->contacts = contacts.ms_entries;
        out->events = events.ms_entries;
        out->size_bytes = (uint64_t)(info.me_last_pgno + 1) * env.ms_psize;
        out->commits = st->commits;
    }
    return lmdb_err(rc);
}
