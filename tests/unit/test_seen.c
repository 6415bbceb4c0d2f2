/* SPDX-License-Identifier: MIT */
/* Unit tests for node/store's seen table (seenkeys): duplicates found on
 * (sender, msg id) through keys BLAKE2b-128(sender_pk) || msg_id, one
 * sender's time-ordered rows written at the end of its range (fewer pages
 * per commit than random keys), and the migration of the 16-byte rows older
 * code wrote, which go on protecting against replays until they expire.
 * The old rows are written straight into LMDB, as that code wrote them. */
#include "fixtures.h"

#define STORE_FIXTURE_NAME "seen"
#include "store_fixture.h"

#include <inttypes.h>
#include <stdbool.h>

#include <lmdb.h>

#include "node/store.h"
#include "old_store.h"

#define KEY_LEN TF_NODE_STORE_SEEN_KEY_LEN
/* The schema of the code before seenkeys and its introkeys sibling. */
#define OLD_SCHEMA 10

static void closed(struct fixture *f)
{
    tf_node_store_close(f->st);
    f->st = NULL;
}

/* A sender's public key from a number. */
static void sender_pk(uint32_t s, uint8_t pk[static 32])
{
    memset(pk, 0x51, 32);
    for (int i = 0; i < 4; i++)
        pk[i] = (uint8_t)(s >> (24 - 8 * i));
}

/* A time-ordered msg id, as twofoldd makes them: u48be(ms) || 10 bytes. */
static void msg_id(uint64_t ms, uint8_t id[static 16])
{
    memset(id, 0xa7, 16);
    for (int i = 0; i < 6; i++)
        id[i] = (uint8_t)(ms >> (40 - 8 * i));
}

/* The keys node/delivery.c gives msg id `ms` from sender s: the seen key
 * and the one code before schema 12 used. */
static void keys_of(uint32_t s, uint64_t ms, uint8_t key[static KEY_LEN], uint8_t legacy[static 16])
{
    uint8_t in[48];
    sender_pk(s, in);
    msg_id(ms, in + 32);
    crypto_generichash(key, 16, in, 32, NULL, 0);
    memcpy(key + 16, in + 32, 16);
    crypto_generichash(legacy, 16, in, sizeof in, NULL, 0);
}

static int check(struct fixture *f, uint32_t s, uint64_t ms, uint64_t now)
{
    uint8_t key[KEY_LEN], legacy[16];
    keys_of(s, ms, key, legacy);
    return tf_node_store_seen_check(f->st, key, legacy, now);
}

static void add(struct fixture *f, uint32_t s, uint64_t ms, uint64_t expires)
{
    uint8_t key[KEY_LEN], legacy[16];
    keys_of(s, ms, key, legacy);
    assert_ok(tf_node_store_seen_add(f->st, key, expires));
}

static uint64_t seen_count(struct fixture *f)
{
    struct tf_node_store_stat s;
    assert_ok(tf_node_store_stat(f->st, &s));
    return s.seen;
}

static void gc(struct fixture *f, uint64_t now, size_t want)
{
    size_t removed = 12345;
    assert_ok(tf_node_store_seen_gc(f->st, now, SIZE_MAX, &removed));
    assert_int_equal(removed, want);
}

/* Duplicates are the pair (sender, msg id): not the msg id alone, not the
 * sender alone; the count is the rows'; gc forgets by expiry. */
static void test_pairs(void **state)
{
    struct fixture *f = *state;
    assert_ok(tf_node_store_open(f->dir, TF_NODE_STORE_CREATE, &f->st));
    add(f, 1, 1000, 50);
    add(f, 1, 1001, 60);
    add(f, 2, 1000, 70);
    assert_rc(check(f, 1, 1000, 0), TF_OK);
    assert_rc(check(f, 1, 1001, 0), TF_OK);
    assert_rc(check(f, 2, 1000, 0), TF_OK);
    assert_rc(check(f, 2, 1001, 0), TF_E_NOT_FOUND); /* the same msg id, another sender */
    assert_rc(check(f, 3, 1000, 0), TF_E_NOT_FOUND);
    assert_rc(check(f, 1, 1002, 0), TF_E_NOT_FOUND); /* the same sender, another msg id */
    assert_int_equal(seen_count(f), 3);
    add(f, 1, 1000, 40); /* again, earlier: nothing changes */
    assert_int_equal(seen_count(f), 3);
    assert_ok(tf_node_store_commit(f->st));

    reopen(f, TF_NODE_STORE_OPEN);
    assert_rc(check(f, 2, 1000, 0), TF_OK);
    gc(f, 60, 1); /* (1, 1000) expired at 50 */
    assert_rc(check(f, 1, 1000, 0), TF_E_NOT_FOUND);
    assert_rc(check(f, 1, 1001, 0), TF_OK);
    assert_int_equal(seen_count(f), 2);
    gc(f, 71, 2);
    assert_int_equal(seen_count(f), 0);
    assert_ok(tf_node_store_commit(f->st));
}

/* Bytes this thread has passed to write calls (Linux's per-thread I/O
 * accounting): what a commit writes, LMDB writing from the committing
 * thread. */
static uint64_t written(void)
{
    FILE *fp = fopen("/proc/thread-self/io", "r");
    char line[128];
    uint64_t v = 0;
    bool found = false;
    assert_non_null(fp);
    while (fgets(line, sizeof line, fp) != NULL)
        if (sscanf(line, "wchar: %" SCNu64, &v) == 1)
            found = true;
    fclose(fp);
    assert_true(found);
    return v;
}

#define SENDERS 4
#define ROWS_PER_SENDER 2500
#define BATCH 25 /* per sender */

/* The seen key of (s, n): as node/delivery.c makes it (ordered), or a random
 * one, as the key before schema 12 was (BLAKE2b-128(sender_pk || msg_id)). */
static void some_key(uint32_t s, uint64_t n, bool ordered, uint8_t key[static KEY_LEN])
{
    uint8_t legacy[16];
    keys_of(s, 1000000 + n, key, legacy);
    if (!ordered)
        memcpy(key, legacy, 16);
}

/* Fills a new store at dir with ROWS_PER_SENDER rows of each of SENDERS
 * senders, in msg id order as envelopes come in (expiring in that order
 * too), then returns the bytes written by the commit of BATCH more rows of
 * each. */
static uint64_t batch_bytes(const char *dir, bool ordered)
{
    struct tf_node_store *st;
    struct tf_node_store_stat stat;
    uint8_t key[KEY_LEN];
    assert_ok(tf_node_store_open(dir, TF_NODE_STORE_CREATE, &st));
    for (uint64_t n = 0; n < ROWS_PER_SENDER + BATCH; n++) {
        for (uint32_t s = 1; s <= SENDERS; s++) {
            some_key(s, n, ordered, key);
            assert_ok(tf_node_store_seen_add(st, key, 100000 + n));
        }
        if (n % 250 == 249 || n == ROWS_PER_SENDER - 1)
            assert_ok(tf_node_store_commit(st));
    }
    uint64_t before = written();
    assert_ok(tf_node_store_commit(st));
    uint64_t bytes = written() - before;
    assert_ok(tf_node_store_stat(st, &stat));
    assert_int_equal(stat.seen, SENDERS * (ROWS_PER_SENDER + BATCH));
    tf_node_store_close(st);
    return bytes;
}

/* One sender's rows with increasing msg ids land at the end of its range:
 * a batch of them dirties a few leaves, where as many random keys dirty one
 * leaf each.  Measured as the bytes each commit writes. */
static void test_appends(void **state)
{
    struct fixture *f = *state;
    char dir[160];
    uint64_t ordered = batch_bytes(f->dir, true);
    snprintf(dir, sizeof dir, "%s/random", f->tmp);
    uint64_t random = batch_bytes(dir, false);
    print_message("seen: the commit of %d rows wrote %" PRIu64 " bytes in time order, %" PRIu64
                  " with random keys\n",
                  SENDERS * BATCH, ordered, random);
    assert_true(ordered > 0);
    /* Measured: 20 pages against 89. */
    assert_true(ordered * 3 < random);
}

/* The store's LMDB environment, opened directly to write what older code
 * wrote.  The store must be closed (one environment per process). */
struct raw {
    MDB_env *env;
    MDB_txn *txn;
};

static void raw_open(struct fixture *f, struct raw *r)
{
    assert_null(f->st);
    assert_int_equal(mdb_env_create(&r->env), 0);
    assert_int_equal(mdb_env_set_maxdbs(r->env, 64), 0);
    assert_int_equal(mdb_env_open(r->env, f->dir, 0, 0600), 0);
    assert_int_equal(mdb_txn_begin(r->env, NULL, 0, &r->txn), 0);
}

/* The same, the store rewritten into the layout of schema OLD_SCHEMA
 * (old_store.h: the intro tables as they were), schema included. */
static void raw_open_old(struct fixture *f, struct raw *r)
{
    assert_null(f->st);
    r->txn = fx_old_store_begin(f->dir, OLD_SCHEMA, &r->env);
}

static MDB_dbi raw_dbi(struct raw *r, const char *name)
{
    MDB_dbi dbi;
    assert_int_equal(mdb_dbi_open(r->txn, name, 0, &dbi), 0);
    return dbi;
}

static void raw_put(struct raw *r, const char *table, const void *k, size_t klen, const void *v,
                    size_t vlen)
{
    MDB_val key = {klen, (void *)(uintptr_t)k}, val = {vlen, (void *)(uintptr_t)v};
    assert_int_equal(mdb_put(r->txn, raw_dbi(r, table), &key, &val, 0), 0);
}

static int raw_get(struct raw *r, const char *table, const void *k, size_t klen, MDB_val *val)
{
    MDB_val key = {klen, (void *)(uintptr_t)k};
    return mdb_get(r->txn, raw_dbi(r, table), &key, val);
}

static void raw_close(struct raw *r, bool commit)
{
    if (commit)
        assert_int_equal(mdb_txn_commit(r->txn), 0);
    else
        mdb_txn_abort(r->txn);
    mdb_env_close(r->env);
}

static void be64(uint8_t out[static 8], uint64_t v)
{
    for (int i = 0; i < 8; i++)
        out[i] = (uint8_t)(v >> (56 - 8 * i));
}

/* A seen row as code before schema 12 wrote it: key (16) -> u64be(expires),
 * and its index key u64be(expires) || key. */
static void raw_old_row(struct raw *r, const uint8_t key[static 16], uint64_t expires)
{
    uint8_t val[8], ikey[24];
    be64(val, expires);
    memcpy(ikey, val, 8);
    memcpy(ikey + 8, key, 16);
    raw_put(r, "seen", key, 16, val, sizeof val);
    raw_put(r, "seen_exp", ikey, sizeof ikey, "", 0);
}

#define OLD_ROWS 600 /* more than one batch of the migration */
#define LATEST 5000  /* the latest expiry of the old rows */

/* Old rows: (1, 1000) expires at 100, (1, 1001) at LATEST, (2, 1000) at 300;
 * a row keyed on a msg id alone (older still) at 200, a row whose key is 16
 * zero bytes at 400 (its new key sorts right after it), and OLD_ROWS rows of
 * senders 10.. at 1000 + n. */
static void write_old_store(struct fixture *f)
{
    struct raw r;
    uint8_t key[KEY_LEN], legacy[16], zero[16] = {0};
    assert_ok(tf_node_store_open(f->dir, TF_NODE_STORE_CREATE, &f->st));
    closed(f);
    raw_open_old(f, &r);
    keys_of(1, 1000, key, legacy);
    raw_old_row(&r, legacy, 100);
    keys_of(1, 1001, key, legacy);
    raw_old_row(&r, legacy, LATEST);
    keys_of(2, 1000, key, legacy);
    raw_old_row(&r, legacy, 300);
    raw_old_row(&r, key + 16, 200); /* msg id 1000 alone */
    raw_old_row(&r, zero, 400);
    for (uint32_t n = 0; n < OLD_ROWS; n++) {
        keys_of(10 + n, 1000, key, legacy);
        raw_old_row(&r, legacy, 1000 + n);
    }
    raw_close(&r, true);
}

#define ALL_OLD (OLD_ROWS + 5)

/* An envelope taken before the upgrade is still a duplicate after it, until
 * its row expires; the old rows count against the budget and expire; the
 * migration runs once. */
static void test_migration(void **state)
{
    struct fixture *f = *state;
    uint8_t key[KEY_LEN], legacy[16], until[8];
    struct tf_proto_buf got;
    struct raw r;
    MDB_val v;
    write_old_store(f);

    /* Read-only, the old store is read as it is. */
    reopen(f, TF_NODE_STORE_READONLY);
    assert_rc(check(f, 1, 1000, 100), TF_OK);
    assert_rc(check(f, 1, 1001, 1), TF_OK);
    assert_rc(check(f, 3, 1000, 1), TF_E_NOT_FOUND);
    assert_int_equal(seen_count(f), ALL_OLD);

    reopen(f, TF_NODE_STORE_OPEN);
    assert_false(tf_node_store_dirty(f->st)); /* migrated in the open transaction */
    assert_ok(tf_node_store_meta_get(f->st, "seen-legacy-until", &got));
    be64(until, LATEST);
    assert_int_equal(got.len, 8);
    assert_memory_equal(got.data, until, 8);
    tf_proto_buf_free(&got);
    assert_int_equal(seen_count(f), ALL_OLD);
    /* Each old (sender, msg id) is a duplicate, and nothing else is. */
    assert_rc(check(f, 1, 1000, 100), TF_OK);
    assert_rc(check(f, 1, 1001, LATEST), TF_OK);
    assert_rc(check(f, 2, 1000, 100), TF_OK);
    assert_rc(check(f, 3, 1000, 100), TF_E_NOT_FOUND);
    assert_rc(check(f, 1, 1002, 100), TF_E_NOT_FOUND);
    for (uint32_t n = 0; n < OLD_ROWS; n += 7)
        assert_rc(check(f, 10 + n, 1000, 1000), TF_OK);
    /* The zero key moved too (it looks up as an old key of zeros). */
    memset(legacy, 0, sizeof legacy);
    memset(key, 0x99, sizeof key);
    assert_ok(tf_node_store_seen_check(f->st, key, legacy, 1));
    /* New rows beside them, counted together. */
    add(f, 3, 1000, 250);
    add(f, 1, 1002, 6000);
    assert_rc(check(f, 3, 1000, 100), TF_OK);
    assert_int_equal(seen_count(f), ALL_OLD + 2);
    assert_ok(tf_node_store_commit(f->st));

    /* Expired old rows are forgotten with the new ones, earliest first:
     * (1, 1000) at 100, the msg-id-only row at 200, (3, 1000) at 250. */
    gc(f, 251, 3);
    assert_rc(check(f, 1, 1000, 251), TF_E_NOT_FOUND);
    assert_rc(check(f, 3, 1000, 251), TF_E_NOT_FOUND);
    assert_rc(check(f, 2, 1000, 251), TF_OK);
    assert_int_equal(seen_count(f), ALL_OLD - 1);
    assert_ok(tf_node_store_commit(f->st));

    /* Past the latest old expiry the old keys are not looked up, even for a
     * row not yet collected. */
    assert_rc(check(f, 1, 1001, LATEST), TF_OK);
    assert_rc(check(f, 1, 1001, LATEST + 1), TF_E_NOT_FOUND);
    assert_rc(check(f, 1, 1002, LATEST + 1), TF_OK); /* a new row still is */

    /* A second open migrates nothing: an old-form row written now stays as
     * it is. */
    closed(f);
    raw_open(f, &r);
    raw_put(&r, "seen", "sixteen byte key", 16, until, sizeof until);
    raw_close(&r, true);
    reopen(f, TF_NODE_STORE_OPEN);
    assert_false(tf_node_store_dirty(f->st));
    assert_ok(tf_node_store_meta_get(f->st, "seen-legacy-until", &got));
    assert_memory_equal(got.data, until, 8);
    tf_proto_buf_free(&got);
    closed(f);
    raw_open(f, &r);
    assert_int_equal(raw_get(&r, "seen", "sixteen byte key", 16, &v), 0);
    raw_close(&r, false);

    /* Everything expires. */
    raw_open(f, &r);
    MDB_val k = {16, (void *)(uintptr_t) "sixteen byte key"};
    assert_int_equal(mdb_del(r.txn, raw_dbi(&r, "seen"), &k, NULL), 0);
    raw_close(&r, true);
    reopen(f, TF_NODE_STORE_OPEN);
    gc(f, 6001, ALL_OLD - 1);
    assert_int_equal(seen_count(f), 0);
    assert_ok(tf_node_store_commit(f->st));
}

/* A store without seen rows gets no "seen-legacy-until". */
static void test_migration_empty(void **state)
{
    struct fixture *f = *state;
    struct tf_proto_buf got;
    struct raw r;
    assert_ok(tf_node_store_open(f->dir, TF_NODE_STORE_CREATE, &f->st));
    closed(f);
    raw_open_old(f, &r);
    raw_close(&r, true);
    reopen(f, TF_NODE_STORE_OPEN);
    assert_rc(tf_node_store_meta_get(f->st, "seen-legacy-until", &got), TF_E_NOT_FOUND);
    assert_rc(check(f, 1, 1000, 1), TF_E_NOT_FOUND);
    add(f, 1, 1000, 10);
    assert_rc(check(f, 1, 1000, 1), TF_OK);
}

int main(void)
{
    if (sodium_init() < 0)
        return 1;
#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)
    const struct CMUnitTest tests[] = {
        T(test_pairs),
        T(test_appends),
        T(test_migration),
        T(test_migration_empty),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
