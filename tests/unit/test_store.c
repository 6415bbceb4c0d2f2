/* SPDX-License-Identifier: MIT */
/* Unit tests for node/store: open modes, schema, meta, contacts and their
 * alias index, name resolution, events, group commit and durability.  Each
 * test works in its own temporary directory under /tmp. */
#include "fixtures.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "node/contact.h"
#include "node/store.h"

#define SET(dst, s) snprintf((dst), sizeof(dst), "%s", (s))

struct fixture {
    char tmp[64];
    char dir[128]; /* tmp/store, not created yet */
    struct tf_node_store *st;
};

static int setup(void **state)
{
    struct fixture *f = calloc(1, sizeof *f);
    if (f == NULL)
        return -1;
    SET(f->tmp, "/tmp/tf-store-XXXXXX");
    if (mkdtemp(f->tmp) == NULL) {
        free(f);
        return -1;
    }
    snprintf(f->dir, sizeof f->dir, "%s/store", f->tmp);
    *state = f;
    return 0;
}

/* Removes everything under path (the tests make at most one level of
 * directories below tmp). */
static void remove_tree(const char *path)
{
    DIR *d = opendir(path);
    struct dirent *e;
    if (d == NULL) {
        unlink(path);
        return;
    }
    while ((e = readdir(d)) != NULL) {
        char sub[1024];
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
            continue;
        if (snprintf(sub, sizeof sub, "%s/%s", path, e->d_name) < (int)sizeof sub)
            remove_tree(sub);
    }
    closedir(d);
    rmdir(path);
}

static int teardown(void **state)
{
    struct fixture *f = *state;
    tf_node_store_close(f->st);
    remove_tree(f->tmp);
    free(f);
    return 0;
}

static void reopen(struct fixture *f, enum tf_node_store_mode mode)
{
    tf_node_store_close(f->st);
    f->st = NULL;
    assert_ok(tf_node_store_open(f->dir, mode, &f->st));
    assert_non_null(f->st);
}

static void sub_path(const struct fixture *f, const char *leaf, char *out, size_t cap)
{
    snprintf(out, cap, "%s/%s", f->tmp, leaf);
}

/* Identities from a counter, so tests can make as many contacts as they
 * need. */
static void seed_identity(uint32_t n, struct tf_proto_identity *id)
{
    uint8_t seed[TF_PROTO_SEED_LEN];
    memset(seed, 0x77, sizeof seed);
    for (int i = 0; i < 4; i++)
        seed[i] = (uint8_t)(n >> (8 * i));
    assert_ok(tf_proto_identity_from_seed(id, seed));
}

static void make_contact(uint32_t n, struct tf_node_contact *c)
{
    struct tf_proto_identity id;
    struct tf_proto_buf card;
    seed_identity(n, &id);
    fx_card_sign(&id, "Contact", 1, &card);
    assert_ok(tf_node_contact_from_card(c, card.data, card.len));
    tf_proto_buf_free(&card);
    tf_proto_identity_deinit(&id);
}

static void put_contact(struct fixture *f, uint32_t n, const char *alias,
                        struct tf_node_contact *out)
{
    struct tf_node_contact c;
    make_contact(n, &c);
    SET(c.alias, alias);
    assert_ok(tf_node_store_contact_put(f->st, &c));
    if (out != NULL)
        *out = c;
    else
        tf_node_contact_deinit(&c);
}

static void text_id(const struct tf_node_contact *c, char id[static TF_PROTO_TEXT_ID_SIZE])
{
    tf_proto_text_id_encode(c->pk, id);
}

/* Asserts that name resolves to the contact with key pk. */
static void assert_finds(struct fixture *f, const char *name, const uint8_t *pk)
{
    struct tf_node_contact got;
    assert_ok(tf_node_store_contact_find(f->st, name, &got));
    assert_memory_equal(got.pk, pk, TF_PROTO_KEY_LEN);
    tf_node_contact_deinit(&got);
}

static void assert_find_fails(struct fixture *f, const char *name, int want)
{
    struct tf_node_contact got;
    assert_rc(tf_node_store_contact_find(f->st, name, &got), want);
    assert_null(got.card.data);
}

static void assert_absent(struct fixture *f, const uint8_t *pk)
{
    struct tf_node_contact got;
    assert_rc(tf_node_store_contact_get(f->st, pk, &got), TF_E_NOT_FOUND);
    assert_null(got.card.data);
}

static void assert_counts(struct fixture *f, uint64_t contacts, uint64_t events)
{
    struct tf_node_store_stat s;
    assert_ok(tf_node_store_stat(f->st, &s));
    assert_int_equal(s.contacts, contacts);
    assert_int_equal(s.events, events);
}

static void assert_meta(struct fixture *f, const char *key, const void *want, size_t len)
{
    struct tf_proto_buf got;
    assert_ok(tf_node_store_meta_get(f->st, key, &got));
    assert_int_equal(got.len, len);
    assert_non_null(got.data);
    if (len > 0)
        assert_memory_equal(got.data, want, len);
    tf_proto_buf_free(&got);
}

static void put_schema(struct fixture *f, const void *val, size_t len)
{
    reopen(f, TF_NODE_STORE_OPEN);
    assert_ok(tf_node_store_meta_put(f->st, "schema", val, len));
    assert_ok(tf_node_store_commit(f->st));
    tf_node_store_close(f->st);
    f->st = NULL;
}

static void test_open_modes(void **state)
{
    struct fixture *f = *state;
    struct tf_node_store *st = (struct tf_node_store *)f;
    struct stat sb;
    char path[256];

    assert_rc(tf_node_store_open(f->dir, TF_NODE_STORE_OPEN, &st), TF_E_NOT_FOUND);
    assert_null(st);
    assert_rc(tf_node_store_open(f->dir, TF_NODE_STORE_READONLY, &st), TF_E_NOT_FOUND);
    assert_rc(tf_node_store_open(f->dir, (enum tf_node_store_mode)9, &st), TF_E_INVALID_ARG);

    assert_ok(tf_node_store_open(f->dir, TF_NODE_STORE_CREATE, &f->st));
    assert_int_equal(stat(f->dir, &sb), 0);
    assert_int_equal(sb.st_mode & 07777, 0700);
    snprintf(path, sizeof path, "%s/data.mdb", f->dir);
    assert_int_equal(stat(path, &sb), 0);
    assert_int_equal(sb.st_mode & 077, 0);
    assert_false(tf_node_store_dirty(f->st));
    assert_meta(f, "schema", "\0\0\0\1", 4);

    /* the store is there now, open or closed */
    assert_rc(tf_node_store_open(f->dir, TF_NODE_STORE_CREATE, &st), TF_E_EXISTS);
    tf_node_store_close(f->st);
    f->st = NULL;
    assert_rc(tf_node_store_open(f->dir, TF_NODE_STORE_CREATE, &st), TF_E_EXISTS);
    reopen(f, TF_NODE_STORE_OPEN);
    reopen(f, TF_NODE_STORE_READONLY);
    tf_node_store_close(NULL);

    /* CREATE accepts an existing empty directory */
    sub_path(f, "empty", path, sizeof path);
    assert_int_equal(mkdir(path, 0700), 0);
    assert_ok(tf_node_store_open(path, TF_NODE_STORE_CREATE, &st));
    tf_node_store_close(st);

    /* a missing parent is not created */
    sub_path(f, "no/such", path, sizeof path);
    assert_rc(tf_node_store_open(path, TF_NODE_STORE_CREATE, &st), -ENOENT);
}

static void test_readonly_refuses_writes(void **state)
{
    struct fixture *f = *state;
    struct tf_node_contact c;
    struct tf_node_store_stat s;
    uint64_t seq = 99;
    assert_ok(tf_node_store_open(f->dir, TF_NODE_STORE_CREATE, &f->st));
    put_contact(f, 1, "one", &c);
    assert_ok(tf_node_store_meta_put(f->st, "k", (const uint8_t *)"v", 1));
    assert_ok(tf_node_store_commit(f->st));

    reopen(f, TF_NODE_STORE_READONLY);
    assert_meta(f, "k", "v", 1);
    assert_finds(f, "one", c.pk);
    assert_rc(tf_node_store_meta_put(f->st, "k", (const uint8_t *)"w", 1), -EROFS);
    assert_rc(tf_node_store_contact_put(f->st, &c), -EROFS);
    assert_rc(tf_node_store_contact_del(f->st, c.pk), -EROFS);
    assert_rc(tf_node_store_event_append(f->st, (const uint8_t *)"e", 1, &seq), -EROFS);
    assert_true(seq == 99);
    assert_false(tf_node_store_dirty(f->st));
    assert_ok(tf_node_store_commit(f->st));
    assert_ok(tf_node_store_stat(f->st, &s));
    assert_int_equal(s.contacts, 1);
    assert_int_equal(s.commits, 0);
    tf_node_contact_deinit(&c);
}

/* A read-only open in another process (the CLI) while the node holds the
 * store read-write with a write transaction open. */
static void test_readonly_alongside_writer(void **state)
{
    struct fixture *f = *state;
    struct tf_node_contact a, b;
    assert_ok(tf_node_store_open(f->dir, TF_NODE_STORE_CREATE, &f->st));
    put_contact(f, 1, "a", &a);
    assert_ok(tf_node_store_commit(f->st));
    put_contact(f, 2, "b", &b);
    assert_true(tf_node_store_dirty(f->st));

    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        /* Only plain checks here: cmocka belongs to the parent. */
        struct tf_node_store *ro;
        struct tf_node_contact got;
        struct tf_node_store_stat s;
        int code = 0;
        if (tf_node_store_open(f->dir, TF_NODE_STORE_READONLY, &ro) != TF_OK)
            _exit(10);
        if (tf_node_store_contact_get(ro, a.pk, &got) != TF_OK)
            code = 11;
        tf_node_contact_deinit(&got);
        if (tf_node_store_contact_get(ro, b.pk, &got) != TF_E_NOT_FOUND)
            code = 12;
        if (tf_node_store_meta_put(ro, "x", (const uint8_t *)"y", 1) != -EROFS)
            code = 13;
        if (tf_node_store_stat(ro, &s) != TF_OK || s.contacts != 1)
            code = 14;
        tf_node_store_close(ro);
        _exit(code);
    }
    int status;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFEXITED(status));
    assert_int_equal(WEXITSTATUS(status), 0);

    assert_ok(tf_node_store_commit(f->st));
    assert_finds(f, "b", b.pk);
    tf_node_contact_deinit(&a);
    tf_node_contact_deinit(&b);
}

static void test_schema_newer(void **state)
{
    struct fixture *f = *state;
    struct tf_node_store *st = NULL;
    assert_ok(tf_node_store_open(f->dir, TF_NODE_STORE_CREATE, &f->st));
    put_schema(f, "\0\0\0\2", 4);
    assert_rc(tf_node_store_open(f->dir, TF_NODE_STORE_OPEN, &st), TF_E_VERSION);
    assert_rc(tf_node_store_open(f->dir, TF_NODE_STORE_READONLY, &st), TF_E_VERSION);
    assert_null(st);
}

static void test_schema_bad(void **state)
{
    struct fixture *f = *state;
    struct tf_node_store *st = NULL;
    /* schema 0 never existed, so no migration leads from it */
    assert_ok(tf_node_store_open(f->dir, TF_NODE_STORE_CREATE, &f->st));
    put_schema(f, "\0\0\0\0", 4);
    assert_rc(tf_node_store_open(f->dir, TF_NODE_STORE_OPEN, &st), TF_E_CORRUPT);
    assert_rc(tf_node_store_open(f->dir, TF_NODE_STORE_READONLY, &st), TF_E_CORRUPT);

    char dir[256];
    sub_path(f, "short", dir, sizeof dir);
    assert_ok(tf_node_store_open(dir, TF_NODE_STORE_CREATE, &st));
    assert_ok(tf_node_store_meta_put(st, "schema", (const uint8_t *)"\0\0\1", 3));
    assert_ok(tf_node_store_commit(st));
    tf_node_store_close(st);
    assert_rc(tf_node_store_open(dir, TF_NODE_STORE_OPEN, &st), TF_E_CORRUPT);
    assert_null(st);
}

/* A data.mdb that is not a store: empty (LMDB makes an environment, but it
 * has no schema, and nothing is committed) or not LMDB at all. */
static void test_not_a_store(void **state)
{
    struct fixture *f = *state;
    struct tf_node_store *st = NULL;
    char path[256];
    uint8_t junk[8192];
    assert_int_equal(mkdir(f->dir, 0700), 0);
    snprintf(path, sizeof path, "%s/data.mdb", f->dir);
    int fd = open(path, O_WRONLY | O_CREAT | O_EXCL, 0600);
    assert_true(fd >= 0);
    assert_int_equal(close(fd), 0);
    assert_rc(tf_node_store_open(f->dir, TF_NODE_STORE_OPEN, &st), TF_E_CORRUPT);
    assert_rc(tf_node_store_open(f->dir, TF_NODE_STORE_OPEN, &st), TF_E_CORRUPT);
    assert_null(st);

    memset(junk, 0x55, sizeof junk);
    fd = open(path, O_WRONLY | O_TRUNC);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, junk, sizeof junk), (ssize_t)sizeof junk);
    assert_int_equal(close(fd), 0);
    assert_rc(tf_node_store_open(f->dir, TF_NODE_STORE_OPEN, &st), TF_E_CORRUPT);
    assert_rc(tf_node_store_open(f->dir, TF_NODE_STORE_READONLY, &st), TF_E_CORRUPT);
    assert_null(st);
}

static void test_meta(void **state)
{
    struct fixture *f = *state;
    struct tf_proto_buf got = {(uint8_t *)f, 3};
    char long_key[66];
    assert_ok(tf_node_store_open(f->dir, TF_NODE_STORE_CREATE, &f->st));
    assert_rc(tf_node_store_meta_get(f->st, "listen", &got), TF_E_NOT_FOUND);
    assert_null(got.data);
    assert_int_equal(got.len, 0);

    assert_ok(tf_node_store_meta_put(f->st, "listen", (const uint8_t *)"127.0.0.1:7451", 14));
    assert_meta(f, "listen", "127.0.0.1:7451", 14);
    assert_ok(tf_node_store_meta_put(f->st, "listen", (const uint8_t *)"[::1]:1", 7));
    assert_meta(f, "listen", "[::1]:1", 7);
    assert_ok(tf_node_store_meta_put(f->st, "empty", NULL, 0));
    assert_meta(f, "empty", "", 0);
    assert_ok(tf_node_store_commit(f->st));
    reopen(f, TF_NODE_STORE_OPEN);
    assert_meta(f, "listen", "[::1]:1", 7);
    assert_meta(f, "empty", "", 0);

    memset(long_key, 'k', sizeof long_key - 1);
    long_key[sizeof long_key - 1] = '\0';
    assert_rc(tf_node_store_meta_put(f->st, "", (const uint8_t *)"v", 1), TF_E_INVALID_ARG);
    assert_rc(tf_node_store_meta_put(f->st, long_key, (const uint8_t *)"v", 1), TF_E_INVALID_ARG);
    assert_rc(tf_node_store_meta_put(f->st, "k", NULL, 1), TF_E_INVALID_ARG);
    assert_rc(tf_node_store_meta_get(f->st, "", &got), TF_E_INVALID_ARG);
    long_key[64] = '\0'; /* 64 is the longest key */
    assert_ok(tf_node_store_meta_put(f->st, long_key, (const uint8_t *)"v", 1));
    assert_meta(f, long_key, "v", 1);
}

/* Alice (seed 1) with every field set. */
static void full_contact(struct tf_node_contact *c)
{
    make_contact(1, c);
    SET(c->alias, "alice");
    c->trust = TF_NODE_TRUST_CLOSE;
    c->n_tags = 2;
    SET(c->tags[0], "rust");
    SET(c->tags[1], "ai-safety");
    c->has_introducer = true;
    memset(c->introduced_by, 0x33, sizeof c->introduced_by);
    memset(c->intro, 0x44, sizeof c->intro);
    c->added = 1700000000u;
    c->updated = 1700000999u;
    c->blocked = true;
}

static void assert_same(const struct tf_node_contact *got, const struct tf_node_contact *want)
{
    struct tf_proto_buf a, b;
    assert_ok(tf_node_contact_encode(got, &a));
    assert_ok(tf_node_contact_encode(want, &b));
    assert_int_equal(a.len, b.len);
    assert_memory_equal(a.data, b.data, a.len);
    tf_proto_buf_free(&a);
    tf_proto_buf_free(&b);
    /* the views are into got's own card */
    assert_true(got->fields.name.ptr >= got->card.data &&
                got->fields.name.ptr + got->fields.name.len <= got->card.data + got->card.len);
    assert_memory_equal(got->fields.sign_pk, got->pk, TF_PROTO_KEY_LEN);
}

static void test_contact_round_trip(void **state)
{
    struct fixture *f = *state;
    struct tf_node_contact c, got;
    full_contact(&c);
    assert_ok(tf_node_store_open(f->dir, TF_NODE_STORE_CREATE, &f->st));
    assert_ok(tf_node_store_contact_put(f->st, &c));
    assert_true(tf_node_store_dirty(f->st));
    assert_ok(tf_node_store_contact_get(f->st, c.pk, &got)); /* through the write txn */
    assert_same(&got, &c);
    tf_node_contact_deinit(&got);
    assert_ok(tf_node_store_commit(f->st));
    assert_false(tf_node_store_dirty(f->st));
    assert_ok(tf_node_store_contact_get(f->st, c.pk, &got)); /* a read txn of its own */
    assert_same(&got, &c);
    tf_node_contact_deinit(&got);

    /* replace: every field can change */
    c.trust = TF_NODE_TRUST_NONE;
    c.n_tags = 0;
    c.has_introducer = false;
    c.blocked = false;
    c.updated++;
    assert_ok(tf_node_store_contact_put(f->st, &c));
    assert_ok(tf_node_store_commit(f->st));
    reopen(f, TF_NODE_STORE_OPEN);
    assert_ok(tf_node_store_contact_get(f->st, c.pk, &got));
    assert_same(&got, &c);
    assert_false(got.has_introducer);
    tf_node_contact_deinit(&got);
    assert_counts(f, 1, 0);

    /* an invalid contact is refused before anything is written */
    SET(c.alias, "tf1x");
    assert_rc(tf_node_store_contact_put(f->st, &c), TF_E_BAD_VALUE);
    assert_false(tf_node_store_dirty(f->st));
    tf_node_contact_deinit(&c);
}

static void test_contact_missing_and_del(void **state)
{
    struct fixture *f = *state;
    struct tf_node_contact a, b;
    assert_ok(tf_node_store_open(f->dir, TF_NODE_STORE_CREATE, &f->st));
    make_contact(1, &a);
    assert_absent(f, a.pk);
    assert_rc(tf_node_store_contact_del(f->st, a.pk), TF_E_NOT_FOUND);
    tf_node_contact_deinit(&a);

    put_contact(f, 1, "alice", &a);
    assert_ok(tf_node_store_commit(f->st));
    assert_ok(tf_node_store_contact_del(f->st, a.pk));
    assert_absent(f, a.pk);
    assert_find_fails(f, "alice", TF_E_NOT_FOUND);
    assert_rc(tf_node_store_contact_del(f->st, a.pk), TF_E_NOT_FOUND);
    /* the alias is free again */
    put_contact(f, 2, "alice", &b);
    assert_ok(tf_node_store_commit(f->st));
    reopen(f, TF_NODE_STORE_OPEN);
    assert_absent(f, a.pk);
    assert_finds(f, "alice", b.pk);
    assert_counts(f, 1, 0);
    tf_node_contact_deinit(&a);
    tf_node_contact_deinit(&b);
}

static void test_alias_unique(void **state)
{
    struct fixture *f = *state;
    struct tf_node_contact a, b, got;
    assert_ok(tf_node_store_open(f->dir, TF_NODE_STORE_CREATE, &f->st));
    put_contact(f, 1, "alice", &a);
    assert_ok(tf_node_store_commit(f->st));

    make_contact(2, &b);
    SET(b.alias, "alice");
    assert_rc(tf_node_store_contact_put(f->st, &b), TF_E_EXISTS);
    assert_absent(f, b.pk);
    assert_finds(f, "alice", a.pk);
    assert_ok(tf_node_store_commit(f->st));
    assert_counts(f, 1, 0);

    /* an existing contact cannot take it either, and keeps its record */
    SET(b.alias, "bob");
    assert_ok(tf_node_store_contact_put(f->st, &b));
    SET(b.alias, "alice");
    b.trust = TF_NODE_TRUST_CLOSE;
    assert_rc(tf_node_store_contact_put(f->st, &b), TF_E_EXISTS);
    assert_ok(tf_node_store_contact_get(f->st, b.pk, &got));
    assert_string_equal(got.alias, "bob");
    assert_int_equal(got.trust, TF_NODE_TRUST_NONE);
    tf_node_contact_deinit(&got);
    assert_finds(f, "bob", b.pk);
    assert_finds(f, "alice", a.pk);

    /* uncommitted aliases count too */
    struct tf_node_contact c;
    put_contact(f, 3, "carol", &c);
    SET(b.alias, "carol");
    assert_rc(tf_node_store_contact_put(f->st, &b), TF_E_EXISTS);
    /* a contact may keep its own alias */
    SET(c.alias, "carol");
    c.trust = TF_NODE_TRUST_KNOWN;
    assert_ok(tf_node_store_contact_put(f->st, &c));
    assert_ok(tf_node_store_commit(f->st));
    assert_counts(f, 3, 0);
    tf_node_contact_deinit(&a);
    tf_node_contact_deinit(&b);
    tf_node_contact_deinit(&c);
}

static void test_alias_change(void **state)
{
    struct fixture *f = *state;
    struct tf_node_contact a, b, c;
    assert_ok(tf_node_store_open(f->dir, TF_NODE_STORE_CREATE, &f->st));
    put_contact(f, 1, "one", &a);
    assert_ok(tf_node_store_commit(f->st));
    SET(a.alias, "two");
    assert_ok(tf_node_store_contact_put(f->st, &a));
    assert_find_fails(f, "one", TF_E_NOT_FOUND);
    assert_finds(f, "two", a.pk);
    put_contact(f, 2, "one", &b); /* the old alias is free */
    assert_ok(tf_node_store_commit(f->st));

    a.alias[0] = '\0'; /* cleared */
    assert_ok(tf_node_store_contact_put(f->st, &a));
    assert_find_fails(f, "two", TF_E_NOT_FOUND);
    put_contact(f, 3, "two", &c);
    assert_ok(tf_node_store_commit(f->st));

    reopen(f, TF_NODE_STORE_READONLY);
    assert_finds(f, "one", b.pk);
    assert_finds(f, "two", c.pk);
    struct tf_node_contact got;
    assert_ok(tf_node_store_contact_get(f->st, a.pk, &got));
    assert_string_equal(got.alias, "");
    tf_node_contact_deinit(&got);
    tf_node_contact_deinit(&a);
    tf_node_contact_deinit(&b);
    tf_node_contact_deinit(&c);
}

static void upper(char *s)
{
    for (; *s != '\0'; s++)
        if (*s >= 'a' && *s <= 'z')
            *s = (char)(*s - 'a' + 'A');
}

static void test_find(void **state)
{
    struct fixture *f = *state;
    struct tf_node_contact a, b, c;
    char id[TF_PROTO_TEXT_ID_SIZE], name[80];
    assert_ok(tf_node_store_open(f->dir, TF_NODE_STORE_CREATE, &f->st));
    put_contact(f, 1, "alice", &a);
    put_contact(f, 2, "", &b);
    make_contact(3, &c); /* not stored */
    assert_ok(tf_node_store_commit(f->st));

    assert_finds(f, "alice", a.pk);
    assert_find_fails(f, "Alice", TF_E_NOT_FOUND); /* aliases are exact */
    text_id(&b, id);
    assert_finds(f, id, b.pk);
    upper(id);
    assert_finds(f, id, b.pk);
    text_id(&b, id);
    for (size_t len = 6; len <= TF_PROTO_TEXT_ID_LEN; len++) {
        snprintf(name, sizeof name, "%.*s", (int)len, id);
        assert_finds(f, name, b.pk);
    }
    for (size_t len = 0; len < 6; len++) {
        snprintf(name, sizeof name, "%.*s", (int)len, id);
        assert_find_fails(f, name, TF_E_NOT_FOUND);
    }
    snprintf(name, sizeof name, "%sq", id); /* longer than any id */
    assert_find_fails(f, name, TF_E_NOT_FOUND);
    text_id(&c, id);
    assert_find_fails(f, id, TF_E_NOT_FOUND);
    id[10] = '\0';
    assert_find_fails(f, id, TF_E_NOT_FOUND);
    assert_find_fails(f, "zzzzzzzz", TF_E_NOT_FOUND);
    assert_find_fails(f, "tf1!!!!!", TF_E_NOT_FOUND);
    tf_node_contact_deinit(&a);
    tf_node_contact_deinit(&b);
    tf_node_contact_deinit(&c);
}

/* Two identities whose ids share their first 6 characters: "tf1" and three
 * bech32 characters, 32768 buckets, so a collision comes after a few hundred
 * seeds (the birthday bound). */
static void colliding_pair(uint32_t *x, uint32_t *y)
{
    enum { BUCKETS = 32 * 32 * 32 };
    static const char charset[] = "qpzry9x8gf2tvdw0s3jn54khce6mua7l";
    uint32_t *seen = calloc(BUCKETS, sizeof *seen);
    assert_non_null(seen);
    for (uint32_t n = 1000;; n++) {
        struct tf_proto_identity id;
        char text[TF_PROTO_TEXT_ID_SIZE];
        seed_identity(n, &id);
        tf_proto_text_id_encode(id.sign_pk, text);
        tf_proto_identity_deinit(&id);
        size_t bucket = 0;
        for (int i = 3; i < 6; i++)
            bucket = bucket * 32 + (size_t)(strchr(charset, text[i]) - charset);
        if (seen[bucket] != 0) {
            *x = seen[bucket];
            *y = n;
            break;
        }
        seen[bucket] = n;
    }
    free(seen);
}

static void test_find_ambiguous(void **state)
{
    struct fixture *f = *state;
    struct tf_node_contact a, b;
    char ida[TF_PROTO_TEXT_ID_SIZE], idb[TF_PROTO_TEXT_ID_SIZE], name[80];
    uint32_t x, y;
    colliding_pair(&x, &y);
    assert_ok(tf_node_store_open(f->dir, TF_NODE_STORE_CREATE, &f->st));
    put_contact(f, x, "", &a);
    put_contact(f, y, "", &b);
    text_id(&a, ida);
    text_id(&b, idb);
    assert_memory_equal(ida, idb, 6);
    size_t d = 6;
    while (ida[d] == idb[d])
        d++;
    /* uncommitted, then committed */
    for (int round = 0; round < 2; round++) {
        for (size_t len = 6; len <= d; len++) {
            snprintf(name, sizeof name, "%.*s", (int)len, ida);
            assert_find_fails(f, name, TF_E_AMBIGUOUS);
        }
        snprintf(name, sizeof name, "%.*s", (int)d + 1, ida);
        assert_finds(f, name, a.pk);
        snprintf(name, sizeof name, "%.*s", (int)d + 1, idb);
        assert_finds(f, name, b.pk);
        assert_finds(f, ida, a.pk);
        assert_ok(tf_node_store_commit(f->st));
    }
    tf_node_contact_deinit(&a);
    tf_node_contact_deinit(&b);
}

struct seen_events {
    size_t n;
    uint64_t seq[16];
    char rec[16][8];
    size_t len[16];
    size_t stop_after; /* return 7 after this many (0: never) */
};

static int event_cb(uint64_t seq, const uint8_t *rec, size_t len, void *arg)
{
    struct seen_events *s = arg;
    assert_true(s->n < 16 && len < 8);
    s->seq[s->n] = seq;
    s->len[s->n] = len;
    if (len > 0)
        memcpy(s->rec[s->n], rec, len);
    s->rec[s->n][len] = '\0';
    s->n++;
    return s->n == s->stop_after ? 7 : 0;
}

static void append(struct fixture *f, const char *rec, uint64_t want_seq)
{
    uint64_t seq = 0;
    assert_ok(tf_node_store_event_append(f->st, (const uint8_t *)rec, strlen(rec), &seq));
    assert_true(seq == want_seq);
}

static void assert_events(struct fixture *f, uint64_t after, uint64_t first, size_t n)
{
    struct seen_events s = {0};
    assert_ok(tf_node_store_event_foreach(f->st, after, event_cb, &s));
    assert_int_equal(s.n, n);
    for (size_t i = 0; i < n; i++) {
        char want[8];
        snprintf(want, sizeof want, "e%u", (unsigned)(first + i));
        assert_true(s.seq[i] == first + i);
        assert_string_equal(s.rec[i], want);
    }
}

static void test_events(void **state)
{
    struct fixture *f = *state;
    char rec[8];
    assert_ok(tf_node_store_open(f->dir, TF_NODE_STORE_CREATE, &f->st));
    assert_events(f, 0, 1, 0);
    for (uint64_t i = 1; i <= 3; i++) {
        snprintf(rec, sizeof rec, "e%u", (unsigned)i);
        append(f, rec, i);
    }
    assert_ok(tf_node_store_commit(f->st));
    append(f, "e4", 4);
    append(f, "e5", 5);
    assert_events(f, 0, 1, 5); /* the uncommitted ones too */
    assert_events(f, 3, 4, 2);
    assert_events(f, 5, 6, 0);
    assert_events(f, UINT64_MAX, 0, 0);
    assert_counts(f, 0, 5);

    struct seen_events s = {.stop_after = 2};
    assert_int_equal(tf_node_store_event_foreach(f->st, 0, event_cb, &s), 7);
    assert_int_equal(s.n, 2);

    /* abort forgets 4 and 5; the next event is 4 again */
    tf_node_store_abort(f->st);
    assert_events(f, 0, 1, 3);
    append(f, "e4", 4);
    assert_ok(tf_node_store_commit(f->st));
    reopen(f, TF_NODE_STORE_OPEN);
    assert_events(f, 2, 3, 2);
    assert_ok(tf_node_store_event_append(f->st, NULL, 0, NULL)); /* 5, empty */
    append(f, "e6", 6);
    struct seen_events all = {0};
    assert_ok(tf_node_store_event_foreach(f->st, 4, event_cb, &all));
    assert_int_equal(all.n, 2);
    assert_int_equal(all.len[0], 0);
    assert_string_equal(all.rec[1], "e6");
    assert_rc(tf_node_store_event_append(f->st, NULL, 1, NULL), TF_E_INVALID_ARG);
}

struct seen_contacts {
    size_t n;
    uint8_t pk[8][TF_PROTO_KEY_LEN];
    size_t stop_after;
    int stop_value;
    struct tf_node_store *st; /* commit from the callback if set */
    uint32_t put_seed;        /* put a contact from the callback if non-zero */
};

static int contact_cb(const struct tf_node_contact *c, void *arg)
{
    struct seen_contacts *s = arg;
    assert_true(s->n < 8);
    assert_memory_equal(c->fields.sign_pk, c->pk, TF_PROTO_KEY_LEN);
    memcpy(s->pk[s->n++], c->pk, TF_PROTO_KEY_LEN);
    if (s->st != NULL && s->put_seed != 0) {
        struct tf_node_contact extra;
        make_contact(s->put_seed++, &extra);
        assert_ok(tf_node_store_contact_put(s->st, &extra));
        tf_node_contact_deinit(&extra);
    } else if (s->st != NULL) {
        assert_ok(tf_node_store_commit(s->st));
    }
    return s->n == s->stop_after ? s->stop_value : 0;
}

static void test_contact_foreach(void **state)
{
    struct fixture *f = *state;
    assert_ok(tf_node_store_open(f->dir, TF_NODE_STORE_CREATE, &f->st));
    for (uint32_t n = 1; n <= 5; n++)
        put_contact(f, n, "", NULL);
    for (int round = 0; round < 2; round++) { /* through the write txn, then not */
        struct seen_contacts s = {0};
        assert_ok(tf_node_store_contact_foreach(f->st, contact_cb, &s));
        assert_int_equal(s.n, 5);
        for (size_t i = 1; i < s.n; i++)
            assert_true(memcmp(s.pk[i - 1], s.pk[i], TF_PROTO_KEY_LEN) < 0);
        struct seen_contacts stop = {.stop_after = 3, .stop_value = -5};
        assert_int_equal(tf_node_store_contact_foreach(f->st, contact_cb, &stop), -5);
        assert_int_equal(stop.n, 3);
        stop = (struct seen_contacts){.stop_after = 1, .stop_value = 1};
        assert_int_equal(tf_node_store_contact_foreach(f->st, contact_cb, &stop), 1);
        assert_ok(tf_node_store_commit(f->st));
    }
}

static void test_foreach_callback_writes(void **state)
{
    struct fixture *f = *state;
    assert_ok(tf_node_store_open(f->dir, TF_NODE_STORE_CREATE, &f->st));
    put_contact(f, 1, "", NULL);
    put_contact(f, 2, "", NULL);

    /* committing from the callback ends the transaction the walk uses */
    struct seen_contacts s = {.st = f->st};
    assert_rc(tf_node_store_contact_foreach(f->st, contact_cb, &s), TF_E_BAD_STATE);
    assert_int_equal(s.n, 1);
    assert_false(tf_node_store_dirty(f->st));
    assert_counts(f, 2, 0);

    /* with no write transaction open, the walk reads a snapshot and the
     * callback's writes go into a new write transaction */
    s = (struct seen_contacts){.st = f->st, .put_seed = 100};
    assert_ok(tf_node_store_contact_foreach(f->st, contact_cb, &s));
    assert_int_equal(s.n, 2);
    assert_true(tf_node_store_dirty(f->st));
    assert_counts(f, 4, 0);
    assert_ok(tf_node_store_commit(f->st));
    reopen(f, TF_NODE_STORE_OPEN);
    assert_counts(f, 4, 0);
}

static void test_uncommitted_reads_and_abort(void **state)
{
    struct fixture *f = *state;
    struct tf_node_contact a, got;
    struct seen_contacts s = {0};
    assert_ok(tf_node_store_open(f->dir, TF_NODE_STORE_CREATE, &f->st));
    assert_false(tf_node_store_dirty(f->st));
    put_contact(f, 1, "alice", &a);
    assert_ok(tf_node_store_meta_put(f->st, "k", (const uint8_t *)"v", 1));
    append(f, "e1", 1);
    assert_true(tf_node_store_dirty(f->st));
    assert_ok(tf_node_store_contact_get(f->st, a.pk, &got));
    tf_node_contact_deinit(&got);
    assert_finds(f, "alice", a.pk);
    assert_ok(tf_node_store_contact_foreach(f->st, contact_cb, &s));
    assert_int_equal(s.n, 1);
    assert_meta(f, "k", "v", 1);
    assert_counts(f, 1, 1);

    tf_node_store_abort(f->st);
    assert_false(tf_node_store_dirty(f->st));
    assert_absent(f, a.pk);
    assert_find_fails(f, "alice", TF_E_NOT_FOUND);
    struct tf_proto_buf v;
    assert_rc(tf_node_store_meta_get(f->st, "k", &v), TF_E_NOT_FOUND);
    assert_counts(f, 0, 0);
    tf_node_store_abort(f->st); /* nothing open: no-op */
    assert_ok(tf_node_store_commit(f->st));

    struct tf_node_store_stat st;
    assert_ok(tf_node_store_stat(f->st, &st));
    assert_int_equal(st.commits, 0);
    tf_node_contact_deinit(&a);
}

static void test_close_discards_and_commit_persists(void **state)
{
    struct fixture *f = *state;
    struct tf_node_contact a, b, got;
    struct tf_node_store_stat st;
    assert_ok(tf_node_store_open(f->dir, TF_NODE_STORE_CREATE, &f->st));
    put_contact(f, 1, "alice", &a);
    assert_ok(tf_node_store_meta_put(f->st, "k", (const uint8_t *)"v", 1));
    append(f, "e1", 1);
    assert_ok(tf_node_store_commit(f->st));
    put_contact(f, 2, "bob", &b);
    append(f, "e2", 2);
    reopen(f, TF_NODE_STORE_OPEN); /* closes without commit */

    assert_ok(tf_node_store_contact_get(f->st, a.pk, &got));
    assert_same(&got, &a);
    tf_node_contact_deinit(&got);
    assert_finds(f, "alice", a.pk);
    assert_meta(f, "k", "v", 1);
    assert_events(f, 0, 1, 1);
    assert_absent(f, b.pk);
    assert_find_fails(f, "bob", TF_E_NOT_FOUND);
    assert_ok(tf_node_store_stat(f->st, &st));
    assert_int_equal(st.contacts, 1);
    assert_int_equal(st.events, 1);
    assert_int_equal(st.commits, 0);
    assert_true(st.size_bytes > 0);
    tf_node_contact_deinit(&a);
    tf_node_contact_deinit(&b);
}

struct order {
    size_t n;
    uint8_t last[TF_PROTO_KEY_LEN];
    bool sorted;
};

static int order_cb(const struct tf_node_contact *c, void *arg)
{
    struct order *o = arg;
    if (o->n > 0 && memcmp(o->last, c->pk, TF_PROTO_KEY_LEN) >= 0)
        o->sorted = false;
    memcpy(o->last, c->pk, TF_PROTO_KEY_LEN);
    o->n++;
    return 0;
}

static void test_many_contacts(void **state)
{
    struct fixture *f = *state;
    struct tf_node_store_stat st;
    struct order o = {.sorted = true};
    enum { N = 2000, BATCH = 250 };
    assert_ok(tf_node_store_open(f->dir, TF_NODE_STORE_CREATE, &f->st));
    for (uint32_t n = 0; n < N; n++) {
        char alias[16];
        snprintf(alias, sizeof alias, "c%u", (unsigned)n);
        put_contact(f, n, alias, NULL);
        if ((n + 1) % BATCH == 0)
            assert_ok(tf_node_store_commit(f->st));
    }
    assert_ok(tf_node_store_stat(f->st, &st));
    assert_int_equal(st.contacts, N);
    assert_int_equal(st.events, 0);
    assert_int_equal(st.commits, N / BATCH);
    assert_true(st.size_bytes >= 4096 && st.size_bytes % 4096 == 0);
    assert_ok(tf_node_store_contact_foreach(f->st, order_cb, &o));
    assert_int_equal(o.n, N);
    assert_true(o.sorted);

    reopen(f, TF_NODE_STORE_READONLY);
    assert_counts(f, N, 0);
    struct tf_node_contact c;
    make_contact(1234, &c);
    assert_finds(f, "c1234", c.pk);
    tf_node_contact_deinit(&c);
}

/* More than the initial 64 MiB map: the map grows (MDB_MAP_FULL, grow,
 * replay the transaction) without losing a write. */
struct big {
    size_t n;
    bool ok;
};

#define BIG_LEN ((size_t)1 << 20)
#define BIG_COUNT 100

static int big_cb(uint64_t seq, const uint8_t *rec, size_t len, void *arg)
{
    struct big *b = arg;
    b->n++;
    if (seq != b->n || len != BIG_LEN || rec[0] != (uint8_t)seq || rec[len - 1] != (uint8_t)seq)
        b->ok = false;
    return 0;
}

static void test_map_growth(void **state)
{
    struct fixture *f = *state;
    struct tf_node_store_stat st;
    uint8_t *rec = malloc(BIG_LEN);
    assert_non_null(rec);
    assert_ok(tf_node_store_open(f->dir, TF_NODE_STORE_CREATE, &f->st));
    for (uint64_t i = 1; i <= BIG_COUNT; i++) {
        uint64_t seq;
        memset(rec, (int)(uint8_t)i, BIG_LEN);
        assert_ok(tf_node_store_event_append(f->st, rec, BIG_LEN, &seq));
        assert_true(seq == i);
        if (i == BIG_COUNT / 2 || i == BIG_COUNT)
            assert_ok(tf_node_store_commit(f->st));
    }
    free(rec);
    assert_ok(tf_node_store_stat(f->st, &st));
    assert_int_equal(st.events, BIG_COUNT);
    assert_int_equal(st.commits, 2);
    assert_true(st.size_bytes > ((uint64_t)64 << 20));

    struct big b = {0, true};
    assert_ok(tf_node_store_event_foreach(f->st, 0, big_cb, &b));
    assert_int_equal(b.n, BIG_COUNT);
    assert_true(b.ok);
    reopen(f, TF_NODE_STORE_READONLY);
    b = (struct big){0, true};
    assert_ok(tf_node_store_event_foreach(f->st, 0, big_cb, &b));
    assert_int_equal(b.n, BIG_COUNT);
    assert_true(b.ok);
    reopen(f, TF_NODE_STORE_OPEN);
    append(f, "e", BIG_COUNT + 1);
    assert_ok(tf_node_store_commit(f->st));
}

/* While a walk holds a read transaction the map cannot grow, so a write of
 * its callback that needs more room loses the whole write transaction; the
 * store refuses further writes and commit reports the loss. */
struct filler {
    struct tf_node_store *st;
    uint8_t *rec;
    int first_err, next_err;
    uint64_t written;
};

static int filler_cb(const struct tf_node_contact *c, void *arg)
{
    struct filler *fl = arg;
    (void)c;
    for (int i = 0; i < 2 * BIG_COUNT && fl->first_err == TF_OK; i++) {
        fl->first_err = tf_node_store_event_append(fl->st, fl->rec, BIG_LEN, NULL);
        if (fl->first_err == TF_OK)
            fl->written++;
    }
    fl->next_err = tf_node_store_event_append(fl->st, fl->rec, 1, NULL);
    return 0;
}

static void test_lost_txn_is_reported(void **state)
{
    struct fixture *f = *state;
    struct filler fl = {.rec = calloc(1, BIG_LEN)};
    assert_non_null(fl.rec);
    assert_ok(tf_node_store_open(f->dir, TF_NODE_STORE_CREATE, &f->st));
    fl.st = f->st;
    put_contact(f, 1, "", NULL);
    assert_ok(tf_node_store_commit(f->st));

    assert_ok(tf_node_store_contact_foreach(f->st, filler_cb, &fl));
    assert_rc(fl.first_err, -ENOSPC);
    assert_rc(fl.next_err, -ENOSPC);
    assert_true(fl.written > 10 && fl.written < 64);
    assert_true(tf_node_store_dirty(f->st));
    assert_rc(tf_node_store_commit(f->st), -ENOSPC);
    assert_false(tf_node_store_dirty(f->st));
    assert_counts(f, 1, 0);

    /* with no reader open the map grows again */
    for (uint64_t i = 1; i <= 70; i++)
        assert_ok(tf_node_store_event_append(f->st, fl.rec, BIG_LEN, NULL));
    assert_ok(tf_node_store_commit(f->st));
    assert_counts(f, 1, 70);
    free(fl.rec);
}

int main(void)
{
    if (sodium_init() < 0)
        return 1;
#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)
    const struct CMUnitTest tests[] = {
        T(test_open_modes),
        T(test_readonly_refuses_writes),
        T(test_readonly_alongside_writer),
        T(test_schema_newer),
        T(test_schema_bad),
        T(test_not_a_store),
        T(test_meta),
        T(test_contact_round_trip),
        T(test_contact_missing_and_del),
        T(test_alias_unique),
        T(test_alias_change),
        T(test_find),
        T(test_find_ambiguous),
        T(test_events),
        T(test_contact_foreach),
        T(test_foreach_callback_writes),
        T(test_uncommitted_reads_and_abort),
        T(test_close_discards_and_commit_persists),
        T(test_many_contacts),
        T(test_map_growth),
        T(test_lost_txn_is_reported),
    };
#undef T
    return cmocka_run_group_tests(tests, NULL, NULL);
}
