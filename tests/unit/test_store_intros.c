/* SPDX-License-Identifier: MIT */
/* Unit tests for node/store's intro tables in time order (introkeys, store
 * schema 11): intros_out and intros_in keep their kv contract (get, put, del,
 * foreach in id order, foreach_from) over many random ids while the records
 * sit under u64be(order) || id with an id -> order index; a rewrite stays in
 * place; the MAP_FULL replay and rollbacks reproduce both tables' writes; a
 * batch rewriting the newest records dirties a few leaves, not one per
 * record; and a store written in the schema 10 layout (built with LMDB
 * directly, old_store.h, since the store cannot write it any more) is
 * migrated once, all or nothing, also when the process is killed during the
 * migration.
 *
 * This file uses LMDB itself only to build and inspect stores in a layout
 * the store module no longer writes. */
#include "fixtures.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define STORE_FIXTURE_NAME "intros"
#include "store_fixture.h"

#include "node/store.h"
#include "old_store.h"

#define ID_LEN 32
#define SEQ_LEN 8
#define MANY 600

static void store_close(struct fixture *f)
{
    tf_node_store_close(f->st);
    f->st = NULL;
}

/* A record: a random-looking id (BLAKE2b of its number and table) and a
 * value of len bytes derived from n. */
struct rec {
    uint8_t id[ID_LEN];
    uint32_t n;
    size_t len;
    uint8_t gen; /* changes the value when the record is rewritten */
};

static void rec_make(struct rec *r, uint32_t n, uint8_t table, size_t len)
{
    uint8_t in[5] = {table, (uint8_t)n, (uint8_t)(n >> 8), (uint8_t)(n >> 16), (uint8_t)(n >> 24)};
    crypto_generichash(r->id, ID_LEN, in, sizeof in, NULL, 0);
    r->n = n;
    r->len = len;
    r->gen = 0;
}

static void rec_value(const struct rec *r, uint8_t *out)
{
    for (size_t i = 0; i < r->len; i++)
        out[i] = (uint8_t)(r->n * 7 + r->gen * 31 + i);
}

static void rec_put(struct tf_node_store *st, enum tf_node_store_table t, const struct rec *r)
{
    uint8_t v[4096];
    assert_true(r->len <= sizeof v);
    rec_value(r, v);
    assert_ok(tf_node_store_kv_put(st, t, r->id, ID_LEN, v, r->len));
}

static void rec_assert(struct tf_node_store *st, enum tf_node_store_table t, const struct rec *r)
{
    uint8_t v[4096];
    struct tf_proto_buf got = {0};
    rec_value(r, v);
    assert_ok(tf_node_store_kv_get(st, t, r->id, ID_LEN, &got));
    assert_int_equal(got.len, r->len);
    assert_memory_equal(got.data, v, r->len);
    tf_proto_buf_free(&got);
}

static void rec_assert_absent(struct tf_node_store *st, enum tf_node_store_table t,
                              const struct rec *r)
{
    struct tf_proto_buf got = {0};
    assert_rc(tf_node_store_kv_get(st, t, r->id, ID_LEN, &got), TF_E_NOT_FOUND);
}

static int rec_cmp(const void *a, const void *b)
{
    return memcmp(((const struct rec *)a)->id, ((const struct rec *)b)->id, ID_LEN);
}

/* What a walk saw, checked against the expected records in id order. */
struct seen {
    const struct rec *want; /* sorted by id */
    size_t n_want, n, stop_at;
    bool ok;
};

static int seen_cb(const uint8_t *key, size_t klen, const uint8_t *val, size_t vlen, void *arg)
{
    struct seen *s = arg;
    uint8_t v[4096];
    if (s->n >= s->n_want || klen != ID_LEN || memcmp(key, s->want[s->n].id, ID_LEN) != 0 ||
        vlen != s->want[s->n].len) {
        s->ok = false;
        return 1;
    }
    rec_value(&s->want[s->n], v);
    if (memcmp(val, v, vlen) != 0)
        s->ok = false;
    return ++s->n == s->stop_at ? 2 : 0;
}

/* foreach (from == NULL) or foreach_from sees exactly want[0..n), in id
 * order, with their values. */
static void assert_walk(struct tf_node_store *st, enum tf_node_store_table t, const uint8_t *from,
                        size_t flen, const struct rec *want, size_t n)
{
    struct seen s = {want, n, 0, SIZE_MAX, true};
    if (from == NULL)
        assert_ok(tf_node_store_kv_foreach(st, t, seen_cb, &s));
    else
        assert_ok(tf_node_store_kv_foreach_from(st, t, from, flen, seen_cb, &s));
    assert_true(s.ok);
    assert_int_equal(s.n, n);
}

/* The records of t in the open store: every one readable, the walk in id
 * order (recs is sorted here). */
static void assert_table(struct tf_node_store *st, enum tf_node_store_table t, struct rec *recs,
                         size_t n)
{
    qsort(recs, n, sizeof *recs, rec_cmp);
    for (size_t i = 0; i < n; i++)
        rec_assert(st, t, &recs[i]);
    assert_walk(st, t, NULL, 0, recs, n);
}

/* The table_stat entry named name. */
static void table_stat(struct tf_node_store *st, const char *name,
                       struct tf_node_store_table_stat *out)
{
    for (size_t i = 0; tf_node_store_table_stat(st, i, out) == TF_OK; i++)
        if (strcmp(out->name, name) == 0)
            return;
    fail_msg("no table %s in tf_node_store_table_stat", name);
}

static uint64_t entries(struct tf_node_store *st, const char *name)
{
    struct tf_node_store_table_stat ts;
    table_stat(st, name, &ts);
    return ts.entries;
}

static void assert_entries(struct tf_node_store *st, const char *table, uint64_t n)
{
    char name[64];
    snprintf(name, sizeof name, "%s_seq", table);
    assert_int_equal(entries(st, name), n);
    snprintf(name, sizeof name, "%s_ids", table);
    assert_int_equal(entries(st, name), n);
}

/* The contract over many random ids: get, put, rewrite in place, del,
 * foreach in id order, foreach_from from any key, the two tables apart. */
static void test_kv_contract_many_ids(void **state)
{
    struct fixture *f = *state;
    static struct rec out[MANY], in[MANY / 2];
    reopen(f, TF_NODE_STORE_CREATE);
    for (uint32_t i = 0; i < MANY; i++) {
        rec_make(&out[i], i, 'o', 1 + (i * 37) % 1500);
        rec_put(f->st, TF_NODE_STORE_INTROS_OUT, &out[i]);
        if (i % 50 == 49)
            assert_ok(tf_node_store_commit(f->st));
    }
    for (uint32_t i = 0; i < MANY / 2; i++) {
        rec_make(&in[i], i, 'i', 1 + (i * 53) % 2000);
        rec_put(f->st, TF_NODE_STORE_INTROS_IN, &in[i]);
    }
    /* Uncommitted writes read back in the same batch. */
    rec_assert(f->st, TF_NODE_STORE_INTROS_IN, &in[MANY / 2 - 1]);
    assert_ok(tf_node_store_commit(f->st));
    assert_table(f->st, TF_NODE_STORE_INTROS_OUT, out, MANY);
    assert_table(f->st, TF_NODE_STORE_INTROS_IN, in, MANY / 2);
    assert_entries(f->st, "intros_out", MANY);
    assert_entries(f->st, "intros_in", MANY / 2);
    /* The tables are apart: an out id is not an in id. */
    rec_assert_absent(f->st, TF_NODE_STORE_INTROS_IN, &out[0]);

    /* foreach_from: from a full id (present or not) and from a prefix, as
     * resolve_id and the listings' cursors use it. */
    for (size_t i = 0; i < MANY; i += 37) {
        uint8_t from[ID_LEN];
        assert_walk(f->st, TF_NODE_STORE_INTROS_OUT, out[i].id, ID_LEN, out + i, MANY - i);
        memcpy(from, out[i].id, ID_LEN);
        from[ID_LEN - 1]++; /* just past out[i] (unless it wrapped) */
        if (from[ID_LEN - 1] != 0)
            assert_walk(f->st, TF_NODE_STORE_INTROS_OUT, from, ID_LEN, out + i + 1, MANY - i - 1);
        /* a 3-byte prefix: the first id >= it */
        size_t first = 0;
        while (first < MANY && memcmp(out[first].id, out[i].id, 3) < 0)
            first++;
        assert_walk(f->st, TF_NODE_STORE_INTROS_OUT, out[i].id, 3, out + first, MANY - first);
    }
    uint8_t top[ID_LEN];
    memset(top, 0xff, sizeof top);
    assert_walk(f->st, TF_NODE_STORE_INTROS_OUT, top, ID_LEN, NULL, 0);
    /* A callback's non-zero value stops the walk and is returned. */
    struct seen s = {out, MANY, 0, 5, true};
    assert_int_equal(tf_node_store_kv_foreach(f->st, TF_NODE_STORE_INTROS_OUT, seen_cb, &s), 2);
    assert_int_equal(s.n, 5);
    assert_true(s.ok);

    /* Rewrites in place: new values, still one record and one index entry
     * each, and the record keeps its key. */
    for (size_t i = 0; i < MANY; i += 3) {
        out[i].gen = 1;
        out[i].len = 2000 - i;
        rec_put(f->st, TF_NODE_STORE_INTROS_OUT, &out[i]);
    }
    assert_ok(tf_node_store_commit(f->st));
    assert_table(f->st, TF_NODE_STORE_INTROS_OUT, out, MANY);
    assert_entries(f->st, "intros_out", MANY);

    /* del removes the record and its index entry; a second del finds
     * nothing. */
    struct rec again = out[0]; /* deleted below */
    for (size_t i = 0; i < MANY; i += 4)
        assert_ok(tf_node_store_kv_del(f->st, TF_NODE_STORE_INTROS_OUT, out[i].id, ID_LEN));
    assert_rc(tf_node_store_kv_del(f->st, TF_NODE_STORE_INTROS_OUT, out[0].id, ID_LEN),
              TF_E_NOT_FOUND);
    assert_rc(tf_node_store_kv_del(f->st, TF_NODE_STORE_INTROS_IN, out[1].id, ID_LEN),
              TF_E_NOT_FOUND);
    assert_ok(tf_node_store_commit(f->st));
    size_t kept = 0;
    for (size_t i = 0; i < MANY; i++) {
        if (i % 4 == 0)
            rec_assert_absent(f->st, TF_NODE_STORE_INTROS_OUT, &out[i]);
        else
            out[kept++] = out[i];
    }
    assert_table(f->st, TF_NODE_STORE_INTROS_OUT, out, kept);
    assert_entries(f->st, "intros_out", kept);
    /* A deleted id put again is a new record. */
    again.gen = 3;
    again.len = 10;
    rec_put(f->st, TF_NODE_STORE_INTROS_OUT, &again);
    out[kept++] = again;
    assert_ok(tf_node_store_commit(f->st));
    assert_table(f->st, TF_NODE_STORE_INTROS_OUT, out, kept);
    assert_entries(f->st, "intros_out", kept);

    /* The contract survives a reopen, read-only too. */
    reopen(f, TF_NODE_STORE_READONLY);
    assert_table(f->st, TF_NODE_STORE_INTROS_OUT, out, kept);
    assert_table(f->st, TF_NODE_STORE_INTROS_IN, in, MANY / 2);
    assert_rc(tf_node_store_kv_put(f->st, TF_NODE_STORE_INTROS_OUT, out[1].id, ID_LEN, NULL, 0),
              -EROFS);
    assert_rc(tf_node_store_kv_del(f->st, TF_NODE_STORE_INTROS_OUT, out[1].id, ID_LEN), -EROFS);
}

/* A callback may rewrite or delete the record it is given (the sweeps do):
 * the walk goes on in id order and sees every record once. */
struct sweep {
    struct tf_node_store *st;
    size_t n;
    int err;
};

static int sweep_cb(const uint8_t *key, size_t klen, const uint8_t *val, size_t vlen, void *arg)
{
    struct sweep *s = arg;
    (void)val;
    (void)vlen;
    int rc = s->n % 2 == 0 ? tf_node_store_kv_del(s->st, TF_NODE_STORE_INTROS_OUT, key, klen)
                           : tf_node_store_kv_put(s->st, TF_NODE_STORE_INTROS_OUT, key, klen,
                                                  (const uint8_t *)"kept", 4);
    if (rc != TF_OK && s->err == TF_OK)
        s->err = rc;
    s->n++;
    return 0;
}

static void test_walk_callback_writes(void **state)
{
    struct fixture *f = *state;
    static struct rec out[100];
    reopen(f, TF_NODE_STORE_CREATE);
    for (uint32_t i = 0; i < 100; i++) {
        rec_make(&out[i], i, 'o', 700);
        rec_put(f->st, TF_NODE_STORE_INTROS_OUT, &out[i]);
    }
    assert_ok(tf_node_store_commit(f->st));
    qsort(out, 100, sizeof *out, rec_cmp);
    /* Walked in the write transaction (one is open: the first write opens
     * it before the walk). */
    assert_ok(tf_node_store_kv_put(f->st, TF_NODE_STORE_CARDS, out[0].id, ID_LEN, NULL, 0));
    struct sweep s = {f->st, 0, TF_OK};
    assert_ok(tf_node_store_kv_foreach(f->st, TF_NODE_STORE_INTROS_OUT, sweep_cb, &s));
    assert_ok(s.err);
    assert_int_equal(s.n, 100);
    assert_ok(tf_node_store_commit(f->st));
    assert_entries(f->st, "intros_out", 50);
    for (size_t i = 0; i < 100; i++) {
        struct tf_proto_buf got = {0};
        if (i % 2 == 0) {
            rec_assert_absent(f->st, TF_NODE_STORE_INTROS_OUT, &out[i]);
            continue;
        }
        assert_ok(tf_node_store_kv_get(f->st, TF_NODE_STORE_INTROS_OUT, out[i].id, ID_LEN, &got));
        assert_int_equal(got.len, 4);
        assert_memory_equal(got.data, "kept", 4);
        tf_proto_buf_free(&got);
    }
}

/* A rollback to a savepoint undoes both tables' writes of a new id, a
 * rewrite and a delete; the batch goes on and commits. */
static void test_rollback(void **state)
{
    struct fixture *f = *state;
    struct rec r[4];
    reopen(f, TF_NODE_STORE_CREATE);
    for (uint32_t i = 0; i < 3; i++) {
        rec_make(&r[i], i, 'o', 300);
        rec_put(f->st, TF_NODE_STORE_INTROS_OUT, &r[i]);
    }
    assert_ok(tf_node_store_commit(f->st));
    rec_make(&r[3], 3, 'o', 300);
    rec_put(f->st, TF_NODE_STORE_INTROS_IN, &r[3]);
    size_t sp = tf_node_store_savepoint(f->st);
    rec_put(f->st, TF_NODE_STORE_INTROS_OUT, &r[3]);
    r[0].gen = 9;
    rec_put(f->st, TF_NODE_STORE_INTROS_OUT, &r[0]);
    assert_ok(tf_node_store_kv_del(f->st, TF_NODE_STORE_INTROS_OUT, r[1].id, ID_LEN));
    assert_ok(tf_node_store_rollback(f->st, sp));
    r[0].gen = 0;
    rec_assert(f->st, TF_NODE_STORE_INTROS_OUT, &r[0]);
    rec_assert(f->st, TF_NODE_STORE_INTROS_OUT, &r[1]);
    rec_assert_absent(f->st, TF_NODE_STORE_INTROS_OUT, &r[3]);
    rec_assert(f->st, TF_NODE_STORE_INTROS_IN, &r[3]); /* before the savepoint: kept */
    assert_ok(tf_node_store_commit(f->st));
    assert_table(f->st, TF_NODE_STORE_INTROS_OUT, r, 3);
    assert_entries(f->st, "intros_out", 3);
    assert_entries(f->st, "intros_in", 1);
}

/* MDB_MAP_FULL in a batch that wrote intro records (new, rewritten,
 * deleted): the map grows and the journal replays both tables' writes. */
#define BIG_LEN ((size_t)1 << 20)
#define BIG_COUNT 80 /* more than the initial 64 MiB map */

static void test_map_full_replay(void **state)
{
    struct fixture *f = *state;
    static struct rec out[200];
    struct tf_node_store_stat before, after;
    uint8_t *big = calloc(1, BIG_LEN);
    assert_non_null(big);
    reopen(f, TF_NODE_STORE_CREATE);
    for (uint32_t i = 0; i < 100; i++) {
        rec_make(&out[i], i, 'o', 900);
        rec_put(f->st, TF_NODE_STORE_INTROS_OUT, &out[i]);
    }
    assert_ok(tf_node_store_commit(f->st));
    assert_ok(tf_node_store_stat(f->st, &before));
    /* One batch: 100 new ids, every old one rewritten or deleted, then more
     * than the map holds, then more intro writes after the growth. */
    for (uint32_t i = 100; i < 200; i++) {
        rec_make(&out[i], i, 'o', 900);
        rec_put(f->st, TF_NODE_STORE_INTROS_OUT, &out[i]);
    }
    for (uint32_t i = 0; i < 100; i++) {
        if (i % 2 == 0) {
            assert_ok(tf_node_store_kv_del(f->st, TF_NODE_STORE_INTROS_OUT, out[i].id, ID_LEN));
        } else {
            out[i].gen = 1;
            rec_put(f->st, TF_NODE_STORE_INTROS_OUT, &out[i]);
        }
    }
    for (uint64_t i = 0; i < BIG_COUNT; i++)
        assert_ok(tf_node_store_event_append(f->st, big, BIG_LEN, NULL));
    for (uint32_t i = 150; i < 200; i++) {
        out[i].gen = 2;
        rec_put(f->st, TF_NODE_STORE_INTROS_OUT, &out[i]);
    }
    assert_ok(tf_node_store_commit(f->st));
    free(big);
    assert_ok(tf_node_store_stat(f->st, &after));
    assert_true(after.map_bytes > before.map_bytes); /* it did grow */
    assert_int_equal(after.events, BIG_COUNT);
    size_t kept = 0;
    for (size_t i = 0; i < 200; i++)
        if (i >= 100 || i % 2 == 1)
            out[kept++] = out[i];
    reopen(f, TF_NODE_STORE_OPEN);
    assert_table(f->st, TF_NODE_STORE_INTROS_OUT, out, kept);
    assert_entries(f->st, "intros_out", kept);
}

/* New records are appended (MDB_APPEND) only when their key sorts last: a
 * record another writer added meanwhile (another process; the node's home
 * lock prevents it, but the store does not rely on that) has the order this
 * handle's counter gives next, and an id below it must still go in. */
static void test_new_id_after_another_writer(void **state)
{
    struct fixture *f = *state;
    struct rec mine, theirs, next;
    rec_make(&mine, 1, 'o', 600);
    rec_make(&theirs, 2, 'o', 600);
    rec_make(&next, 3, 'o', 600);
    memset(mine.id, 0x00, ID_LEN);
    memset(theirs.id, 0xff, ID_LEN);
    reopen(f, TF_NODE_STORE_CREATE);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        /* Only plain checks here: cmocka belongs to the parent. */
        struct tf_node_store *other;
        uint8_t v[600];
        rec_value(&theirs, v);
        int code = tf_node_store_open(f->dir, TF_NODE_STORE_OPEN, &other) != TF_OK ? 10
                   : tf_node_store_kv_put(other, TF_NODE_STORE_INTROS_OUT, theirs.id, ID_LEN, v,
                                          sizeof v) != TF_OK
                       ? 11
                   : tf_node_store_commit(other) != TF_OK ? 12
                                                          : 0;
        tf_node_store_close(other);
        _exit(code);
    }
    int status;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFEXITED(status));
    assert_int_equal(WEXITSTATUS(status), 0);
    /* Order 1 again, below theirs (1 || ff..): a plain put. */
    rec_put(f->st, TF_NODE_STORE_INTROS_OUT, &mine);
    rec_put(f->st, TF_NODE_STORE_INTROS_OUT, &next);
    assert_ok(tf_node_store_commit(f->st));
    struct rec all[] = {mine, theirs, next};
    assert_table(f->st, TF_NODE_STORE_INTROS_OUT, all, 3);
    assert_entries(f->st, "intros_out", 3);
}

/* Bytes this thread passed to write-family calls (the kernel's wchar): a
 * commit writes each dirty page (4 KiB) once, plus under a page of meta. */
static uint64_t wchar(void)
{
    char buf[1024];
    int fd = open("/proc/thread-self/io", O_RDONLY | O_CLOEXEC);
    assert_true(fd >= 0);
    ssize_t n = read(fd, buf, sizeof buf - 1);
    close(fd);
    assert_true(n > 0);
    buf[n] = '\0';
    const char *p = strstr(buf, "wchar:");
    assert_non_null(p);
    return strtoull(p + 6, NULL, 10);
}

static uint64_t commit_pages(struct tf_node_store *st)
{
    uint64_t w0 = wchar();
    assert_ok(tf_node_store_commit(st));
    return (wchar() - w0) / 4096;
}

/* The point of the layout: a batch that rewrites the newest records (the
 * intros in flight) dirties the few leaves at the end of the table.  Cards,
 * keyed directly by random ids as intros_out was before schema 11, hold the
 * same records for comparison: the same rewrites dirty a leaf each. */
#define CL_N 8000
#define CL_M 64
#define CL_LEN 1000

static void test_recent_rewrites_share_leaves(void **state)
{
    struct fixture *f = *state;
    static struct rec recs[CL_N];
    reopen(f, TF_NODE_STORE_CREATE);
    for (uint32_t i = 0; i < CL_N; i++) {
        rec_make(&recs[i], i, 'o', CL_LEN);
        rec_put(f->st, TF_NODE_STORE_INTROS_OUT, &recs[i]);
        rec_put(f->st, TF_NODE_STORE_CARDS, &recs[i]);
        if (i % 200 == 199)
            assert_ok(tf_node_store_commit(f->st));
    }
    assert_ok(tf_node_store_commit(f->st));
    struct tf_node_store_table_stat seq, cards;
    table_stat(f->st, "intros_out_seq", &seq);
    table_stat(f->st, "cards", &cards);
    assert_true(seq.leaf_pages > 20 * CL_M); /* many leaves: position matters */
    assert_true(seq.depth >= 3);
    /* The newest CL_M records, rewritten in one batch; then the same in
     * cards.  Each commit also writes the free list and the catalog. */
    for (uint32_t i = CL_N - CL_M; i < CL_N; i++) {
        recs[i].gen = 1;
        rec_put(f->st, TF_NODE_STORE_INTROS_OUT, &recs[i]);
    }
    uint64_t ordered = commit_pages(f->st);
    for (uint32_t i = CL_N - CL_M; i < CL_N; i++)
        rec_put(f->st, TF_NODE_STORE_CARDS, &recs[i]);
    uint64_t random = commit_pages(f->st);
    print_message("rewriting the newest %d of %d records: %llu pages in time order, %llu "
                  "keyed by random id\n",
                  CL_M, CL_N, (unsigned long long)ordered, (unsigned long long)random);
    /* Three records a leaf (1,048 bytes each with key and node header, the
     * leaves filled by appending): 22 leaves, a branch page or two and the
     * commit's own few (free list, catalog); by random id one leaf each and
     * most branch pages.  Measured: 27 and 107. */
    assert_true(ordered >= CL_M * CL_LEN / 4096);
    assert_true(ordered <= CL_M / 2);
    assert_true(random >= CL_M);
    assert_true(3 * ordered <= random);
    assert_entries(f->st, "intros_out", CL_N);
}

/* Stores in the schema 10 layout (old_store.h), and what LMDB says of a
 * store. */
static const char *const new_tables[] = {"intros_out_seq", "intros_out_ids", "intros_in_seq",
                                         "intros_in_ids"};

#define raw_open fx_lmdb_open

/* The store's schema as stored (the meta table's u32be). */
static uint32_t raw_schema(const char *dir)
{
    MDB_env *env = raw_open(dir);
    MDB_txn *txn;
    MDB_dbi meta;
    MDB_val k = {6, (void *)"schema"}, v;
    assert_int_equal(mdb_txn_begin(env, NULL, MDB_RDONLY, &txn), 0);
    assert_int_equal(mdb_dbi_open(txn, "meta", 0, &meta), 0);
    assert_int_equal(mdb_get(txn, meta, &k, &v), 0);
    assert_int_equal(v.mv_size, 4);
    const uint8_t *p = v.mv_data;
    uint32_t s = (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
    mdb_txn_abort(txn);
    mdb_env_close(env);
    return s;
}

/* Entries of a named table, or -1 if the environment has none of that
 * name. */
static long raw_entries(const char *dir, const char *name)
{
    MDB_env *env = raw_open(dir);
    MDB_txn *txn;
    MDB_dbi dbi;
    MDB_stat ms;
    long n = -1;
    assert_int_equal(mdb_txn_begin(env, NULL, MDB_RDONLY, &txn), 0);
    if (mdb_dbi_open(txn, name, 0, &dbi) == 0) {
        assert_int_equal(mdb_stat(txn, dbi, &ms), 0);
        n = (long)ms.ms_entries;
    }
    mdb_txn_abort(txn);
    mdb_env_close(env);
    return n;
}

static uint64_t raw_last_txnid(const char *dir)
{
    MDB_env *env = raw_open(dir);
    MDB_envinfo info;
    assert_int_equal(mdb_env_info(env, &info), 0);
    mdb_env_close(env);
    return info.me_last_txnid;
}

/* The orders of a _seq table's keys, in key order, checking each key is
 * u64be(order) || a 32-byte id that the _ids table maps to that order. */
static size_t raw_orders(const char *dir, const char *table, uint64_t *orders, size_t cap)
{
    char seq_name[64], ids_name[64];
    MDB_env *env = raw_open(dir);
    MDB_txn *txn;
    MDB_dbi seq, ids;
    MDB_cursor *cur;
    MDB_val k, v, o;
    size_t n = 0;
    snprintf(seq_name, sizeof seq_name, "%s_seq", table);
    snprintf(ids_name, sizeof ids_name, "%s_ids", table);
    assert_int_equal(mdb_txn_begin(env, NULL, MDB_RDONLY, &txn), 0);
    assert_int_equal(mdb_dbi_open(txn, seq_name, 0, &seq), 0);
    assert_int_equal(mdb_dbi_open(txn, ids_name, 0, &ids), 0);
    assert_int_equal(mdb_cursor_open(txn, seq, &cur), 0);
    for (MDB_cursor_op op = MDB_FIRST; mdb_cursor_get(cur, &k, &v, op) == 0; op = MDB_NEXT) {
        assert_int_equal(k.mv_size, SEQ_LEN + ID_LEN);
        MDB_val id = {ID_LEN, (uint8_t *)k.mv_data + SEQ_LEN};
        assert_int_equal(mdb_get(txn, ids, &id, &o), 0);
        assert_int_equal(o.mv_size, SEQ_LEN);
        assert_memory_equal(o.mv_data, k.mv_data, SEQ_LEN);
        uint64_t order = 0;
        for (int i = 0; i < SEQ_LEN; i++)
            order = order << 8 | ((const uint8_t *)k.mv_data)[i];
        assert_true(n < cap);
        orders[n++] = order;
    }
    mdb_cursor_close(cur);
    mdb_txn_abort(txn);
    mdb_env_close(env);
    return n;
}

/* Makes dir a schema 10 store holding out[] in intros_out and in[] in
 * intros_in. */
static void make_old_store(struct fixture *f, const struct rec *out, size_t n_out,
                           const struct rec *in, size_t n_in)
{
    static uint8_t v[4096];
    MDB_env *env;
    reopen(f, TF_NODE_STORE_CREATE);
    store_close(f);
    MDB_txn *txn = fx_old_store_begin(f->dir, 10, &env);
    for (size_t i = 0; i < n_out; i++) {
        rec_value(&out[i], v);
        fx_old_store_put(txn, "intros_out", out[i].id, ID_LEN, v, out[i].len);
    }
    for (size_t i = 0; i < n_in; i++) {
        rec_value(&in[i], v);
        fx_old_store_put(txn, "intros_in", in[i].id, ID_LEN, v, in[i].len);
    }
    fx_old_store_end(env, txn);
}

static void assert_old_layout(const char *dir, size_t n_out, size_t n_in)
{
    assert_int_equal(raw_schema(dir), 10);
    assert_int_equal(raw_entries(dir, "intros_out"), (long)n_out);
    assert_int_equal(raw_entries(dir, "intros_in"), (long)n_in);
    for (size_t i = 0; i < sizeof new_tables / sizeof new_tables[0]; i++)
        assert_int_equal(raw_entries(dir, new_tables[i]), -1);
}

static void assert_new_layout(const char *dir, size_t n_out, size_t n_in)
{
    assert_int_equal(raw_schema(dir), TF_NODE_STORE_SCHEMA);
    assert_int_equal(raw_entries(dir, "intros_out"), -1);
    assert_int_equal(raw_entries(dir, "intros_in"), -1);
    assert_int_equal(raw_entries(dir, "intros_out_seq"), (long)n_out);
    assert_int_equal(raw_entries(dir, "intros_out_ids"), (long)n_out);
    assert_int_equal(raw_entries(dir, "intros_in_seq"), (long)n_in);
    assert_int_equal(raw_entries(dir, "intros_in_ids"), (long)n_in);
}

#define OLD_OUT 500
#define OLD_IN 300

static void make_old_recs(struct rec *out, size_t n_out, struct rec *in, size_t n_in)
{
    for (uint32_t i = 0; i < n_out; i++)
        rec_make(&out[i], i, 'o', 1 + (i * 41) % 1200);
    for (uint32_t i = 0; i < n_in; i++)
        rec_make(&in[i], i, 'i', 1 + (i * 43) % 1900);
}

static void test_migration_from_schema_10(void **state)
{
    struct fixture *f = *state;
    static struct rec out[OLD_OUT + 1], in[OLD_IN];
    static uint64_t orders[OLD_OUT + OLD_IN + 1];
    make_old_recs(out, OLD_OUT, in, OLD_IN);
    make_old_store(f, out, OLD_OUT, in, OLD_IN);
    assert_old_layout(f->dir, OLD_OUT, OLD_IN);

    /* Read-only, the old tables are read as they are (nothing migrates). */
    reopen(f, TF_NODE_STORE_READONLY);
    assert_table(f->st, TF_NODE_STORE_INTROS_OUT, out, OLD_OUT);
    assert_table(f->st, TF_NODE_STORE_INTROS_IN, in, OLD_IN);
    assert_walk(f->st, TF_NODE_STORE_INTROS_OUT, out[OLD_OUT / 2].id, ID_LEN, out + OLD_OUT / 2,
                OLD_OUT - OLD_OUT / 2);
    assert_entries(f->st, "intros_out", 0); /* the new tables, absent, report zeros */
    store_close(f);
    assert_old_layout(f->dir, OLD_OUT, OLD_IN);

    /* Read-write: migrated in the opening transaction. */
    reopen(f, TF_NODE_STORE_OPEN);
    assert_false(tf_node_store_dirty(f->st));
    assert_table(f->st, TF_NODE_STORE_INTROS_OUT, out, OLD_OUT);
    assert_table(f->st, TF_NODE_STORE_INTROS_IN, in, OLD_IN);
    assert_entries(f->st, "intros_out", OLD_OUT);
    assert_entries(f->st, "intros_in", OLD_IN);
    struct tf_node_store_table_stat ts;
    for (size_t i = 0; tf_node_store_table_stat(f->st, i, &ts) == TF_OK; i++) {
        assert_string_not_equal(ts.name, "intros_out"); /* dropped: not listed */
        assert_string_not_equal(ts.name, "intros_in");
    }
    store_close(f);
    assert_new_layout(f->dir, OLD_OUT, OLD_IN);
    /* The old records got orders 1.. in id order, intros_out's first. */
    assert_int_equal(raw_orders(f->dir, "intros_out", orders, OLD_OUT), OLD_OUT);
    for (size_t i = 0; i < OLD_OUT; i++)
        assert_int_equal(orders[i], i + 1);
    assert_int_equal(raw_orders(f->dir, "intros_in", orders, OLD_IN), OLD_IN);
    for (size_t i = 0; i < OLD_IN; i++)
        assert_int_equal(orders[i], OLD_OUT + i + 1);

    /* A second open migrates nothing: not a single transaction commits. */
    uint64_t txnid = raw_last_txnid(f->dir);
    reopen(f, TF_NODE_STORE_OPEN);
    store_close(f);
    assert_int_equal(raw_last_txnid(f->dir), txnid);
    assert_new_layout(f->dir, OLD_OUT, OLD_IN);

    /* A new record comes after every migrated one. */
    reopen(f, TF_NODE_STORE_OPEN);
    rec_make(&out[OLD_OUT], OLD_OUT, 'o', 50);
    rec_put(f->st, TF_NODE_STORE_INTROS_OUT, &out[OLD_OUT]);
    assert_ok(tf_node_store_commit(f->st));
    store_close(f);
    size_t n = raw_orders(f->dir, "intros_out", orders, OLD_OUT + 1);
    assert_int_equal(n, OLD_OUT + 1);
    assert_int_equal(orders[OLD_OUT], OLD_OUT + OLD_IN + 1);
    reopen(f, TF_NODE_STORE_READONLY);
    assert_table(f->st, TF_NODE_STORE_INTROS_OUT, out, OLD_OUT + 1);
}

/* A migration that fails part way (here: an old key too long to take its
 * order prefix, LMDB's keys being at most 511 bytes, after hundreds of
 * records were copied) leaves the store exactly as it was. */
static void test_migration_is_all_or_nothing(void **state)
{
    struct fixture *f = *state;
    static struct rec out[OLD_OUT], in[OLD_IN];
    uint8_t long_key[505];
    make_old_recs(out, OLD_OUT, in, OLD_IN);
    make_old_store(f, out, OLD_OUT, in, OLD_IN);
    memset(long_key, 0xff, sizeof long_key); /* the last key of intros_in */
    MDB_env *env = raw_open(f->dir);
    MDB_txn *txn;
    assert_int_equal(mdb_txn_begin(env, NULL, 0, &txn), 0);
    fx_old_store_put(txn, "intros_in", long_key, sizeof long_key, "x", 1);
    assert_int_equal(mdb_txn_commit(txn), 0);
    mdb_env_close(env);
    uint64_t txnid = raw_last_txnid(f->dir);

    assert_rc(tf_node_store_open(f->dir, TF_NODE_STORE_OPEN, &f->st), -EINVAL);
    assert_null(f->st);
    assert_int_equal(raw_last_txnid(f->dir), txnid);
    assert_old_layout(f->dir, OLD_OUT, OLD_IN + 1);
    reopen(f, TF_NODE_STORE_READONLY);
    assert_table(f->st, TF_NODE_STORE_INTROS_OUT, out, OLD_OUT);
    store_close(f);

    /* Without the bad key it migrates. */
    env = raw_open(f->dir);
    MDB_dbi dbi;
    MDB_val k = {sizeof long_key, long_key};
    assert_int_equal(mdb_txn_begin(env, NULL, 0, &txn), 0);
    assert_int_equal(mdb_dbi_open(txn, "intros_in", 0, &dbi), 0);
    assert_int_equal(mdb_del(txn, dbi, &k, NULL), 0);
    assert_int_equal(mdb_txn_commit(txn), 0);
    mdb_env_close(env);
    reopen(f, TF_NODE_STORE_OPEN);
    assert_table(f->st, TF_NODE_STORE_INTROS_OUT, out, OLD_OUT);
    assert_table(f->st, TF_NODE_STORE_INTROS_IN, in, OLD_IN);
    store_close(f);
    assert_new_layout(f->dir, OLD_OUT, OLD_IN);
}

/* A migration that outgrows the map (it writes a copy of the intro tables
 * before the old pages are freed) grows it and starts again. */
#define GROW_OUT 18000 /* 1,500-byte records: over 40 MB of the 64 MB map */

static void test_migration_grows_the_map(void **state)
{
    struct fixture *f = *state;
    static struct rec out[GROW_OUT];
    struct tf_node_store_stat st;
    make_old_recs(out, GROW_OUT, NULL, 0);
    for (size_t i = 0; i < GROW_OUT; i++)
        out[i].len = 1500;
    make_old_store(f, out, GROW_OUT, NULL, 0);
    reopen(f, TF_NODE_STORE_OPEN);
    assert_ok(tf_node_store_stat(f->st, &st));
    assert_true(st.map_bytes > ((uint64_t)64 << 20));
    assert_table(f->st, TF_NODE_STORE_INTROS_OUT, out, GROW_OUT);
    store_close(f);
    assert_new_layout(f->dir, GROW_OUT, 0);
}

/* kill -9 during the migration: whenever it lands, the store is the old
 * layout, untouched, or the new one, complete; every record reads back
 * either way, and the next open finishes the job. */
#define KILL_OUT 6000
#define KILL_IN 3000

static void copy_file(const char *from, const char *to)
{
    static uint8_t buf[1 << 16];
    int in = open(from, O_RDONLY | O_CLOEXEC);
    int out = open(to, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    ssize_t n;
    assert_true(in >= 0 && out >= 0);
    while ((n = read(in, buf, sizeof buf)) > 0)
        assert_int_equal(write(out, buf, (size_t)n), n);
    assert_int_equal(n, 0);
    close(in);
    assert_int_equal(close(out), 0);
}

static void test_migration_killed(void **state)
{
    struct fixture *f = *state;
    static struct rec out[KILL_OUT], in[KILL_IN];
    char tmpl[192], data[192], lock[192];
    /* -1: not killed, it finishes */
    static const long delays_us[] = {0, 2000, 10000, 30000, 80000, 200000, -1};
    size_t old_seen = 0, new_seen = 0;
    make_old_recs(out, KILL_OUT, in, KILL_IN);
    make_old_store(f, out, KILL_OUT, in, KILL_IN);
    snprintf(tmpl, sizeof tmpl, "%s/template.mdb", f->tmp);
    snprintf(data, sizeof data, "%s/data.mdb", f->dir);
    snprintf(lock, sizeof lock, "%s/lock.mdb", f->dir);
    copy_file(data, tmpl);
    for (size_t d = 0; d < sizeof delays_us / sizeof delays_us[0]; d++) {
        copy_file(tmpl, data);
        unlink(lock);
        pid_t pid = fork();
        assert_true(pid >= 0);
        if (pid == 0) {
            struct tf_node_store *st;
            _exit(tf_node_store_open(f->dir, TF_NODE_STORE_OPEN, &st) == TF_OK ? 0 : 1);
        }
        if (delays_us[d] >= 0) {
            struct timespec ts = {0, delays_us[d] * 1000};
            nanosleep(&ts, NULL);
            kill(pid, SIGKILL);
        }
        int status;
        assert_int_equal(waitpid(pid, &status, 0), pid);
        assert_true(WIFSIGNALED(status) || (WIFEXITED(status) && WEXITSTATUS(status) == 0));
        if (raw_schema(f->dir) == 10) {
            assert_old_layout(f->dir, KILL_OUT, KILL_IN);
            old_seen++;
        } else {
            assert_new_layout(f->dir, KILL_OUT, KILL_IN);
            new_seen++;
        }
        reopen(f, TF_NODE_STORE_READONLY);
        assert_table(f->st, TF_NODE_STORE_INTROS_OUT, out, KILL_OUT);
        assert_table(f->st, TF_NODE_STORE_INTROS_IN, in, KILL_IN);
        reopen(f, TF_NODE_STORE_OPEN);
        assert_table(f->st, TF_NODE_STORE_INTROS_IN, in, KILL_IN);
        store_close(f);
        assert_new_layout(f->dir, KILL_OUT, KILL_IN);
    }
    print_message("killed during the migration: old layout %zu times, new %zu\n", old_seen,
                  new_seen);
    assert_int_equal(old_seen + new_seen, sizeof delays_us / sizeof delays_us[0]);
    /* The last run finishes; the first is killed before it can commit. */
    assert_true(old_seen >= 1);
    assert_true(new_seen >= 1);
}

int main(void)
{
    if (sodium_init() < 0)
        return 1;
#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)
    const struct CMUnitTest tests[] = {
        T(test_kv_contract_many_ids),
        T(test_walk_callback_writes),
        T(test_rollback),
        T(test_map_full_replay),
        T(test_new_id_after_another_writer),
        T(test_recent_rewrites_share_leaves),
        T(test_migration_from_schema_10),
        T(test_migration_is_all_or_nothing),
        T(test_migration_grows_the_map),
        T(test_migration_killed),
    };
#undef T
    return cmocka_run_group_tests(tests, NULL, NULL);
}
