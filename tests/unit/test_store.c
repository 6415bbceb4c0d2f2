/* SPDX-License-Identifier: MIT */
/* Unit tests for node/store: open modes, schema and migration, meta,
 * contacts and their alias index, name resolution, events, the outbox and its
 * due index, seen ids and their expiry index, messages, record codecs, group
 * commit and durability.  Each test works in its own temporary directory under
 * /tmp. */
#include "fixtures.h"

#define STORE_FIXTURE_NAME "store"
#include "store_fixture.h"

#include <assert.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "node/contact.h"
#include "node/store.h"
#include "proto/envelope.h"

#define SET(dst, s) snprintf((dst), sizeof(dst), "%s", (s))

/* The current schema and the one after it, as stored (u32be). */
static_assert(TF_NODE_STORE_SCHEMA < 255, "schema fits one byte");
#define SCHEMA_BYTES(v) ((const char[]){0, 0, 0, (char)(v)})
#define SCHEMA_NOW SCHEMA_BYTES(TF_NODE_STORE_SCHEMA)
#define SCHEMA_NEXT SCHEMA_BYTES(TF_NODE_STORE_SCHEMA + 1)

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

/* Message ids from a counter, big-endian first so that id order is n order. */
static void msg_id(uint32_t n, uint8_t id[static 16])
{
    memset(id, 0xa5, 16);
    for (int i = 0; i < 4; i++)
        id[i] = (uint8_t)(n >> (24 - 8 * i));
}

static uint32_t msg_num(const uint8_t id[static 16])
{
    return (uint32_t)id[0] << 24 | (uint32_t)id[1] << 16 | (uint32_t)id[2] << 8 | id[3];
}

/* Outbox entry n, due at next_try, with a small envelope of its own. */
static void make_entry(uint32_t n, uint64_t next_try, struct tf_node_outbox_entry *e)
{
    memset(e, 0, sizeof *e);
    msg_id(n, e->msg_id);
    memset(e->to_pk, 0x40, sizeof e->to_pk);
    e->to_pk[0] = (uint8_t)n;
    e->type = TF_PROTO_MSG_TYPE_NOTE;
    e->envelope.len = 32 + n % 16;
    e->envelope.data = malloc(e->envelope.len);
    assert_non_null(e->envelope.data);
    memset(e->envelope.data, (int)(uint8_t)n, e->envelope.len);
    e->created = 1700000000u + n;
    e->expires = e->created + 86400;
    e->attempts = n % 5;
    e->next_try_ms = next_try;
    SET(e->last_error, n % 2 ? "connection refused" : "");
}

static void put_entry(struct fixture *f, uint32_t n, uint64_t next_try)
{
    struct tf_node_outbox_entry e;
    make_entry(n, next_try, &e);
    assert_ok(tf_node_store_outbox_put(f->st, &e));
    tf_node_outbox_entry_deinit(&e);
}

static void assert_entry_equal(const struct tf_node_outbox_entry *got,
                               const struct tf_node_outbox_entry *want)
{
    assert_memory_equal(got->msg_id, want->msg_id, 16);
    assert_memory_equal(got->to_pk, want->to_pk, 32);
    assert_int_equal(got->type, want->type);
    assert_int_equal(got->envelope.len, want->envelope.len);
    assert_memory_equal(got->envelope.data, want->envelope.data, want->envelope.len);
    assert_true(got->created == want->created);
    assert_true(got->expires == want->expires);
    assert_int_equal(got->attempts, want->attempts);
    assert_true(got->next_try_ms == want->next_try_ms);
    assert_string_equal(got->last_error, want->last_error);
}

static void assert_no_entry(struct fixture *f, uint32_t n)
{
    struct tf_node_outbox_entry got;
    uint8_t id[16];
    msg_id(n, id);
    assert_rc(tf_node_store_outbox_get(f->st, id, &got), TF_E_NOT_FOUND);
    assert_null(got.envelope.data);
}

static void assert_next_due(struct fixture *f, int want_rc, uint64_t want)
{
    uint64_t next = 12345;
    assert_rc(tf_node_store_outbox_next_due(f->st, &next), want_rc);
    assert_true(next == (want_rc == TF_OK ? want : 12345));
}

static void assert_new_counts(struct fixture *f, uint64_t outbox, uint64_t seen, uint64_t messages)
{
    struct tf_node_store_stat s;
    assert_ok(tf_node_store_stat(f->st, &s));
    assert_int_equal(s.outbox, outbox);
    assert_int_equal(s.seen, seen);
    assert_int_equal(s.messages, messages);
}

/* What outbox_due calls back with, and what the callback then does. */
enum due_action { DUE_LOOK, DUE_DELETE, DUE_REPUT, DUE_DELETE_OTHER, DUE_COMMIT };

#define DUE_MAX 2048

struct due_log {
    size_t n;
    uint32_t ids[DUE_MAX];
    uint64_t times[DUE_MAX];
    struct tf_node_store *st;
    enum due_action action;
    uint64_t reput_at; /* DUE_REPUT: the new next_try_ms */
    uint32_t other;    /* DUE_DELETE_OTHER: the entry to delete */
    size_t stop_after;
    int stop_value;
};

static int due_cb(const struct tf_node_outbox_entry *e, void *arg)
{
    struct due_log *d = arg;
    struct tf_node_outbox_entry next;
    uint8_t other[16];
    assert_true(d->n < DUE_MAX);
    d->ids[d->n] = msg_num(e->msg_id);
    d->times[d->n++] = e->next_try_ms;
    switch (d->action) {
    case DUE_LOOK:
        break;
    case DUE_DELETE:
        assert_ok(tf_node_store_outbox_del(d->st, e->msg_id));
        break;
    case DUE_REPUT:
        next = *e; /* borrows e's envelope for the put */
        next.attempts++;
        next.next_try_ms = d->reput_at;
        SET(next.last_error, "timeout");
        assert_ok(tf_node_store_outbox_put(d->st, &next));
        break;
    case DUE_DELETE_OTHER:
        msg_id(d->other, other);
        assert_ok(tf_node_store_outbox_del(d->st, other));
        d->action = DUE_LOOK;
        break;
    case DUE_COMMIT:
        assert_ok(tf_node_store_commit(d->st));
        break;
    }
    return d->n == d->stop_after ? d->stop_value : 0;
}

/* Asserts that due(now, max) calls back with exactly the entries ids[0..n). */
static void assert_due(struct fixture *f, uint64_t now, size_t max, const uint32_t *ids, size_t n)
{
    struct due_log d = {0};
    assert_ok(tf_node_store_outbox_due(f->st, now, max, due_cb, &d));
    assert_int_equal(d.n, n);
    for (size_t i = 0; i < n; i++)
        assert_int_equal(d.ids[i], ids[i]);
}

/* Message n, with an owned copy of text. */
static void make_message(uint32_t n, enum tf_node_message_state state, const char *text,
                         struct tf_node_message *m)
{
    memset(m, 0, sizeof *m);
    msg_id(n, m->id);
    m->outgoing = state != TF_NODE_MESSAGE_RECEIVED;
    memset(m->contact, 0x33, sizeof m->contact);
    m->text.len = strlen(text);
    m->text.data = malloc(m->text.len + 1);
    assert_non_null(m->text.data);
    memcpy(m->text.data, text, m->text.len + 1);
    m->time = 1700000000u + n;
    m->updated = m->time;
    m->state = state;
}

static void assert_message_equal(const struct tf_node_message *got,
                                 const struct tf_node_message *want)
{
    assert_memory_equal(got->id, want->id, 16);
    assert_int_equal(got->outgoing, want->outgoing);
    assert_memory_equal(got->contact, want->contact, 32);
    assert_non_null(got->text.data);
    assert_int_equal(got->text.len, want->text.len);
    if (want->text.len > 0)
        assert_memory_equal(got->text.data, want->text.data, want->text.len);
    assert_true(got->time == want->time);
    assert_true(got->updated == want->updated);
    assert_int_equal(got->state, want->state);
    assert_string_equal(got->error, want->error);
}

static void assert_message(struct fixture *f, const struct tf_node_message *want)
{
    struct tf_node_message got;
    assert_ok(tf_node_store_message_get(f->st, want->id, &got));
    assert_message_equal(&got, want);
    tf_node_message_deinit(&got);
}

static void seen_add(struct fixture *f, uint32_t n, uint64_t expires);
static void assert_seen(struct fixture *f, uint32_t n, int want);
static void seen_key(uint32_t sender, uint32_t n, uint8_t key[static TF_NODE_STORE_SEEN_KEY_LEN]);

/* Every write to the new tables fails in a read-only store. */
static void refuse_new_writes(struct fixture *f)
{
    struct tf_node_outbox_entry e;
    struct tf_node_message m;
    uint8_t key[TF_NODE_STORE_SEEN_KEY_LEN];
    size_t removed = 7;
    make_entry(1, 1, &e);
    make_message(1, TF_NODE_MESSAGE_QUEUED, "hi", &m);
    seen_key(1, 1, key);
    assert_rc(tf_node_store_outbox_put(f->st, &e), -EROFS);
    assert_rc(tf_node_store_outbox_del(f->st, e.msg_id), -EROFS);
    assert_rc(tf_node_store_seen_add(f->st, key, 1), -EROFS);
    assert_rc(tf_node_store_seen_gc(f->st, 100, 10, &removed), -EROFS);
    assert_int_equal(removed, 0);
    assert_rc(tf_node_store_message_put(f->st, &m), -EROFS);
    tf_node_outbox_entry_deinit(&e);
    tf_node_message_deinit(&m);
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
    assert_meta(f, "schema", SCHEMA_NOW, 4);

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
    refuse_new_writes(f);
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
    put_schema(f, SCHEMA_NEXT, 4);
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

/* Appends an event record {"time": t, "n": n} as tf_node_event writes them. */
static void append_timed(struct fixture *f, uint64_t t, uint64_t n)
{
    struct tf_proto_mp_writer w;
    struct tf_proto_buf rec;
    tf_proto_mp_writer_init(&w);
    tf_proto_mp_write_map(&w, 2);
    tf_proto_mp_write_cstr(&w, "time");
    tf_proto_mp_write_uint(&w, t);
    tf_proto_mp_write_cstr(&w, "n");
    tf_proto_mp_write_uint(&w, n);
    assert_ok(tf_proto_mp_writer_finish(&w, &rec));
    uint64_t seq;
    assert_ok(tf_node_store_event_append(f->st, rec.data, rec.len, &seq));
    assert_true(seq == n);
    tf_proto_buf_free(&rec);
}

struct first_event {
    uint64_t seq, count;
};

static int first_cb(uint64_t seq, const uint8_t *rec, size_t len, void *arg)
{
    struct first_event *e = arg;
    (void)rec;
    (void)len;
    if (e->count++ == 0)
        e->seq = seq;
    return 0;
}

/* Asserts the log holds exactly the events first..last. */
static void assert_event_range(struct fixture *f, uint64_t first, uint64_t last)
{
    struct first_event e = {0, 0};
    uint64_t newest;
    assert_ok(tf_node_store_event_foreach(f->st, 0, first_cb, &e));
    assert_ok(tf_node_store_event_last(f->st, &newest));
    assert_true(e.seq == first);
    assert_true(newest == last);
    assert_true(e.count == last - first + 1);
    assert_counts(f, 0, last - first + 1);
}

static void test_events_trim(void **state)
{
    struct fixture *f = *state;
    size_t deleted = 99;
    uint64_t last = 99;
    assert_ok(tf_node_store_open(f->dir, TF_NODE_STORE_CREATE, &f->st));
    assert_ok(tf_node_store_event_last(f->st, &last));
    assert_true(last == 0);
    assert_ok(tf_node_store_event_trim(f->st, 10, 0, 100, &deleted));
    assert_int_equal(deleted, 0);
    /* Events 1..100 at times 1001..1100. */
    for (uint64_t i = 1; i <= 100; i++)
        append_timed(f, 1000 + i, i);
    assert_ok(tf_node_store_commit(f->st));
    assert_event_range(f, 1, 100);

    /* By count: the oldest go first, at most `limit` per call. */
    assert_ok(tf_node_store_event_trim(f->st, 50, 0, 20, &deleted));
    assert_int_equal(deleted, 20);
    assert_event_range(f, 21, 100);
    assert_ok(tf_node_store_event_trim(f->st, 50, 0, 1000, &deleted));
    assert_int_equal(deleted, 30);
    assert_event_range(f, 51, 100);
    assert_ok(tf_node_store_event_trim(f->st, 50, 0, 1000, &deleted));
    assert_int_equal(deleted, 0);

    /* By age: events with time < before go (time 1060 is event 60). */
    assert_ok(tf_node_store_event_trim(f->st, 1000, 1060, 1000, &deleted));
    assert_int_equal(deleted, 9);
    assert_event_range(f, 60, 100);
    assert_ok(tf_node_store_commit(f->st));
    reopen(f, TF_NODE_STORE_OPEN);
    assert_event_range(f, 60, 100);

    /* The newest stays whatever the budget, so seq numbers never repeat. */
    assert_ok(tf_node_store_event_trim(f->st, 0, UINT64_MAX, 1000, &deleted));
    assert_int_equal(deleted, 40);
    assert_event_range(f, 100, 100);
    append_timed(f, 2000, 101);
    assert_event_range(f, 100, 101);

    /* A record without a leading "time" counts as the oldest time. */
    uint64_t seq;
    assert_ok(tf_node_store_event_append(f->st, (const uint8_t *)"\x80", 1, &seq));
    assert_true(seq == 102);
    append_timed(f, 2001, 103);
    assert_ok(tf_node_store_event_trim(f->st, 1000, 1, 1000, &deleted));
    assert_int_equal(deleted, 0); /* the oldest (100) is kept: the walk stops there */
    assert_ok(tf_node_store_event_trim(f->st, 1000, 2001, 2, &deleted));
    assert_int_equal(deleted, 2); /* 100, 101: the limit */
    assert_event_range(f, 102, 103);
    assert_ok(tf_node_store_event_trim(f->st, 1000, 2001, 10, &deleted));
    assert_int_equal(deleted, 1); /* 102, time 0; 103 is not older than 2001 */
    assert_ok(tf_node_store_commit(f->st));
    assert_event_range(f, 103, 103);
    append_timed(f, 2002, 104);
    assert_ok(tf_node_store_commit(f->st));
    assert_event_range(f, 103, 104);

    /* A rolled-back trim leaves the events. */
    size_t sp = tf_node_store_savepoint(f->st);
    assert_ok(tf_node_store_event_trim(f->st, 1, 0, 10, &deleted));
    assert_int_equal(deleted, 1);
    assert_ok(tf_node_store_rollback(f->st, sp));
    assert_ok(tf_node_store_commit(f->st));
    assert_event_range(f, 103, 104);

    /* Read-only stores cannot trim. */
    reopen(f, TF_NODE_STORE_READONLY);
    assert_rc(tf_node_store_event_trim(f->st, 1, 0, 10, &deleted), -EROFS);
    assert_ok(tf_node_store_event_last(f->st, &last));
    assert_true(last == 104);
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

/* Writes to the outbox, seen and messages tables, replayed with the rest of
 * their transaction when the map grows. */
static void put_small_records(struct fixture *f)
{
    struct tf_node_message m;
    for (uint32_t n = 1; n <= 20; n++) {
        put_entry(f, n, 1000 - n);
        seen_add(f, n, 100 + n);
    }
    put_entry(f, 20, 5); /* moves its due key */
    make_message(7, TF_NODE_MESSAGE_RECEIVED, "kept across the replay", &m);
    assert_ok(tf_node_store_message_put(f->st, &m));
    tf_node_message_deinit(&m);
}

static void assert_small_records(struct fixture *f)
{
    struct tf_node_message m;
    struct due_log d = {0};
    assert_new_counts(f, 20, 20, 1);
    assert_next_due(f, TF_OK, 5);
    assert_ok(tf_node_store_outbox_due(f->st, UINT64_MAX, SIZE_MAX, due_cb, &d));
    assert_int_equal(d.n, 20);
    for (uint32_t i = 0; i < 20; i++)
        assert_int_equal(d.ids[i], i == 0 ? 20 : 20 - i);
    assert_seen(f, 13, TF_OK);
    make_message(7, TF_NODE_MESSAGE_RECEIVED, "kept across the replay", &m);
    assert_message(f, &m);
    tf_node_message_deinit(&m);
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
        if (i == BIG_COUNT / 2 + 1) /* the transaction that outgrows the map */
            put_small_records(f);
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
    assert_small_records(f);
    reopen(f, TF_NODE_STORE_OPEN);
    append(f, "e", BIG_COUNT + 1);
    assert_ok(tf_node_store_commit(f->st));
}

/* Deletes are replayed too (ackdefer): outbox entries acknowledged in an
 * earlier batch are deleted in the transaction that outgrows the map, some
 * before the growth (replayed into the new transaction) and some after it,
 * with a seen GC in between.  None of them comes back, and the survivors
 * keep their due order, after the commit and after a reopen. */
static void assert_after_deletes(struct fixture *f)
{
    struct tf_node_outbox_entry e;
    struct due_log d = {0};
    assert_new_counts(f, 5, 10, 0);
    assert_ok(tf_node_store_outbox_due(f->st, UINT64_MAX, SIZE_MAX, due_cb, &d));
    assert_int_equal(d.n, 5);
    for (uint32_t i = 0; i < 5; i++)
        assert_int_equal(d.ids[i], 20 - i); /* entry n is due at 1000 - n */
    assert_next_due(f, TF_OK, 980);
    for (uint32_t n = 1; n <= 20; n++) {
        uint8_t id[16];
        msg_id(n, id);
        int rc = tf_node_store_outbox_get(f->st, id, &e);
        assert_rc(rc, n <= 15 ? TF_E_NOT_FOUND : TF_OK);
        tf_node_outbox_entry_deinit(&e);
        assert_seen(f, n, n <= 10 ? TF_E_NOT_FOUND : TF_OK);
    }
}

static void test_map_growth_deletes(void **state)
{
    struct fixture *f = *state;
    struct tf_node_store_stat st;
    uint8_t *rec = malloc(BIG_LEN);
    assert_non_null(rec);
    assert_ok(tf_node_store_open(f->dir, TF_NODE_STORE_CREATE, &f->st));
    for (uint32_t n = 1; n <= 20; n++) {
        put_entry(f, n, 1000 - n);
        seen_add(f, n, 100 + n); /* 1..10 expire before 111 */
    }
    assert_ok(tf_node_store_commit(f->st));
    for (uint32_t n = 1; n <= 10; n++) { /* acknowledged: deletes before the growth */
        uint8_t id[16];
        msg_id(n, id);
        assert_ok(tf_node_store_outbox_del(f->st, id));
    }
    size_t removed = 0;
    assert_ok(tf_node_store_seen_gc(f->st, 111, SIZE_MAX, &removed));
    assert_int_equal(removed, 10);
    for (uint64_t i = 1; i <= BIG_COUNT; i++) { /* 100 MiB: outgrows the 64 MiB map */
        uint64_t seq;
        memset(rec, (int)(uint8_t)i, BIG_LEN);
        assert_ok(tf_node_store_event_append(f->st, rec, BIG_LEN, &seq));
    }
    free(rec);
    for (uint32_t n = 11; n <= 15; n++) { /* and after it, as a flush before the commit */
        uint8_t id[16];
        msg_id(n, id);
        assert_ok(tf_node_store_outbox_del(f->st, id));
    }
    assert_ok(tf_node_store_commit(f->st));
    assert_ok(tf_node_store_stat(f->st, &st));
    assert_int_equal(st.events, BIG_COUNT);
    assert_true(st.size_bytes > ((uint64_t)64 << 20));
    assert_after_deletes(f);
    reopen(f, TF_NODE_STORE_READONLY);
    assert_after_deletes(f);
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

static void test_outbox_round_trip(void **state)
{
    struct fixture *f = *state;
    struct tf_node_outbox_entry a, b, got, bad;
    assert_ok(tf_node_store_open(f->dir, TF_NODE_STORE_CREATE, &f->st));
    make_entry(1, 5000, &a);
    make_entry(2, 6000, &b);
    assert_no_entry(f, 1);
    assert_rc(tf_node_store_outbox_del(f->st, a.msg_id), TF_E_NOT_FOUND);
    assert_ok(tf_node_store_outbox_put(f->st, &a));
    assert_ok(tf_node_store_outbox_put(f->st, &b));
    assert_ok(tf_node_store_outbox_get(f->st, a.msg_id, &got));
    assert_entry_equal(&got, &a);
    tf_node_outbox_entry_deinit(&got);
    assert_new_counts(f, 2, 0, 0);
    assert_ok(tf_node_store_commit(f->st));

    reopen(f, TF_NODE_STORE_OPEN);
    assert_ok(tf_node_store_outbox_get(f->st, b.msg_id, &got));
    assert_entry_equal(&got, &b);
    tf_node_outbox_entry_deinit(&got);
    assert_ok(tf_node_store_outbox_del(f->st, a.msg_id));
    assert_no_entry(f, 1);
    assert_rc(tf_node_store_outbox_del(f->st, a.msg_id), TF_E_NOT_FOUND);
    assert_new_counts(f, 1, 0, 0);
    assert_next_due(f, TF_OK, 6000);
    assert_ok(tf_node_store_commit(f->st));
    reopen(f, TF_NODE_STORE_READONLY);
    assert_no_entry(f, 1);
    assert_next_due(f, TF_OK, 6000);

    /* what a record cannot hold is refused before anything is written */
    reopen(f, TF_NODE_STORE_OPEN);
    bad = a;
    bad.type = 0;
    assert_rc(tf_node_store_outbox_put(f->st, &bad), TF_E_BAD_VALUE);
    bad.type = TF_PROTO_MSG_TYPE_FEEDBACK + 1; /* requests: the last type */
    assert_rc(tf_node_store_outbox_put(f->st, &bad), TF_E_BAD_VALUE);
    bad = a;
    bad.envelope.len = 0;
    assert_rc(tf_node_store_outbox_put(f->st, &bad), TF_E_BAD_VALUE);
    bad.envelope.data = NULL;
    assert_rc(tf_node_store_outbox_put(f->st, &bad), TF_E_BAD_VALUE);
    bad.envelope.len = TF_PROTO_ENVELOPE_MAX + 1;
    assert_rc(tf_node_store_outbox_put(f->st, &bad), TF_E_BAD_VALUE);
    bad = a;
    SET(bad.last_error, "two\nlines");
    assert_rc(tf_node_store_outbox_put(f->st, &bad), TF_E_BAD_VALUE);
    SET(bad.last_error, "\xff");
    assert_rc(tf_node_store_outbox_put(f->st, &bad), TF_E_BAD_VALUE);
    memset(bad.last_error, 'x', sizeof bad.last_error); /* unterminated */
    assert_rc(tf_node_store_outbox_put(f->st, &bad), TF_E_BAD_VALUE);
    bad.last_error[TF_NODE_OUTBOX_ERROR_MAX - 1] = '\0'; /* 127 bytes: the most */
    bad.type = TF_PROTO_MSG_TYPE_CARD_UPDATE;
    bad.attempts = UINT32_MAX;
    bad.next_try_ms = UINT64_MAX;
    assert_ok(tf_node_store_outbox_put(f->st, &bad));
    assert_ok(tf_node_store_outbox_get(f->st, a.msg_id, &got));
    assert_entry_equal(&got, &bad);
    tf_node_outbox_entry_deinit(&got);
    assert_new_counts(f, 2, 0, 0);
    tf_node_outbox_entry_deinit(&a);
    tf_node_outbox_entry_deinit(&b);
    tf_node_outbox_entry_deinit(&got); /* again: a no-op */
}

static void test_outbox_put_moves_due(void **state)
{
    struct fixture *f = *state;
    uint8_t id[16];
    assert_ok(tf_node_store_open(f->dir, TF_NODE_STORE_CREATE, &f->st));
    put_entry(f, 1, 100);
    put_entry(f, 2, 200);
    put_entry(f, 3, 300);
    assert_due(f, 1000, SIZE_MAX, (const uint32_t[]){1, 2, 3}, 3);
    put_entry(f, 1, 400); /* later */
    assert_next_due(f, TF_OK, 200);
    assert_due(f, 150, SIZE_MAX, NULL, 0); /* its old due key is gone */
    assert_due(f, 1000, SIZE_MAX, (const uint32_t[]){2, 3, 1}, 3);
    put_entry(f, 3, 50);  /* earlier */
    put_entry(f, 2, 200); /* the same time */
    assert_next_due(f, TF_OK, 50);
    assert_due(f, 1000, SIZE_MAX, (const uint32_t[]){3, 2, 1}, 3);
    assert_ok(tf_node_store_commit(f->st));
    reopen(f, TF_NODE_STORE_OPEN);
    assert_due(f, 1000, SIZE_MAX, (const uint32_t[]){3, 2, 1}, 3);
    msg_id(3, id);
    assert_ok(tf_node_store_outbox_del(f->st, id));
    assert_due(f, 1000, SIZE_MAX, (const uint32_t[]){2, 1}, 2);
    assert_new_counts(f, 2, 0, 0);
}

static void test_outbox_due(void **state)
{
    struct fixture *f = *state;
    assert_ok(tf_node_store_open(f->dir, TF_NODE_STORE_CREATE, &f->st));
    assert_due(f, UINT64_MAX, SIZE_MAX, NULL, 0);
    put_entry(f, 5, 3000);
    put_entry(f, 4, 1000);
    put_entry(f, 3, 2000);
    put_entry(f, 2, 2000); /* ties go in msg id order */
    put_entry(f, 1, 0);
    assert_due(f, 0, SIZE_MAX, (const uint32_t[]){1}, 1);
    assert_due(f, 999, SIZE_MAX, (const uint32_t[]){1}, 1);
    assert_due(f, 1000, SIZE_MAX, (const uint32_t[]){1, 4}, 2); /* <= now */
    assert_due(f, 2000, SIZE_MAX, (const uint32_t[]){1, 4, 2, 3}, 4);
    assert_due(f, UINT64_MAX, SIZE_MAX, (const uint32_t[]){1, 4, 2, 3, 5}, 5);
    assert_due(f, UINT64_MAX, 2, (const uint32_t[]){1, 4}, 2);
    assert_due(f, UINT64_MAX, 0, NULL, 0);

    struct due_log d = {.stop_after = 3, .stop_value = -7};
    assert_int_equal(tf_node_store_outbox_due(f->st, UINT64_MAX, SIZE_MAX, due_cb, &d), -7);
    assert_int_equal(d.n, 3);
    d = (struct due_log){.stop_after = 1, .stop_value = 1};
    assert_int_equal(tf_node_store_outbox_due(f->st, UINT64_MAX, SIZE_MAX, due_cb, &d), 1);
    assert_int_equal(d.n, 1);

    /* the same from committed data, outside the write transaction */
    assert_ok(tf_node_store_commit(f->st));
    assert_false(tf_node_store_dirty(f->st));
    assert_due(f, 2000, 3, (const uint32_t[]){1, 4, 2}, 3);
    assert_false(tf_node_store_dirty(f->st));
}

static void test_outbox_due_callback_writes(void **state)
{
    struct fixture *f = *state;
    struct tf_node_outbox_entry got;
    uint8_t id[16];
    assert_ok(tf_node_store_open(f->dir, TF_NODE_STORE_CREATE, &f->st));
    for (uint32_t n = 1; n <= 6; n++)
        put_entry(f, n, 100 * n);
    assert_ok(tf_node_store_commit(f->st));

    /* delete each entry it is given */
    struct due_log d = {.st = f->st, .action = DUE_DELETE};
    assert_ok(tf_node_store_outbox_due(f->st, 200, SIZE_MAX, due_cb, &d));
    assert_int_equal(d.n, 2);
    assert_no_entry(f, 1);
    assert_no_entry(f, 2);
    assert_next_due(f, TF_OK, 300);
    assert_new_counts(f, 4, 0, 0);

    /* put it back later: each entry is called once, even when the new time
     * is still due */
    d = (struct due_log){.st = f->st, .action = DUE_REPUT, .reput_at = 350};
    assert_ok(tf_node_store_outbox_due(f->st, 400, SIZE_MAX, due_cb, &d));
    assert_int_equal(d.n, 2);
    assert_int_equal(d.ids[0], 3);
    assert_int_equal(d.ids[1], 4);
    assert_due(f, 400, SIZE_MAX, (const uint32_t[]){3, 4}, 2);
    assert_due(f, 349, SIZE_MAX, NULL, 0);
    msg_id(4, id);
    assert_ok(tf_node_store_outbox_get(f->st, id, &got));
    assert_true(got.next_try_ms == 350);
    assert_int_equal(got.attempts, 4 % 5 + 1);
    assert_string_equal(got.last_error, "timeout");
    tf_node_outbox_entry_deinit(&got);

    /* delete a later due entry: the walk skips it */
    d = (struct due_log){.st = f->st, .action = DUE_DELETE_OTHER, .other = 5};
    assert_ok(tf_node_store_outbox_due(f->st, 1000, SIZE_MAX, due_cb, &d));
    assert_int_equal(d.n, 3);
    assert_int_equal(d.ids[2], 6);
    assert_no_entry(f, 5);

    /* commit from the callback: the walk goes on */
    d = (struct due_log){.st = f->st, .action = DUE_COMMIT};
    assert_ok(tf_node_store_outbox_due(f->st, 1000, SIZE_MAX, due_cb, &d));
    assert_int_equal(d.n, 3);
    assert_false(tf_node_store_dirty(f->st));
    reopen(f, TF_NODE_STORE_OPEN);
    assert_due(f, 1000, SIZE_MAX, (const uint32_t[]){3, 4, 6}, 3);
    assert_new_counts(f, 3, 0, 0);
}

static void test_outbox_next_due(void **state)
{
    struct fixture *f = *state;
    uint8_t id[16];
    assert_ok(tf_node_store_open(f->dir, TF_NODE_STORE_CREATE, &f->st));
    assert_next_due(f, TF_E_NOT_FOUND, 0);
    put_entry(f, 1, 700);
    assert_next_due(f, TF_OK, 700);
    put_entry(f, 2, 300);
    put_entry(f, 3, 900);
    assert_next_due(f, TF_OK, 300);
    msg_id(2, id);
    assert_ok(tf_node_store_outbox_del(f->st, id));
    assert_next_due(f, TF_OK, 700);
    assert_ok(tf_node_store_commit(f->st));
    reopen(f, TF_NODE_STORE_READONLY);
    assert_next_due(f, TF_OK, 700);
    reopen(f, TF_NODE_STORE_OPEN);
    for (uint32_t n = 1; n <= 3; n += 2) {
        msg_id(n, id);
        assert_ok(tf_node_store_outbox_del(f->st, id));
    }
    assert_next_due(f, TF_E_NOT_FOUND, 0);
    put_entry(f, 4, 0);
    assert_next_due(f, TF_OK, 0);
}

static void gc(struct fixture *f, uint64_t now, size_t max, size_t want)
{
    size_t removed = 12345;
    assert_ok(tf_node_store_seen_gc(f->st, now, max, &removed));
    assert_int_equal(removed, want);
}

/* seenkeys: the seen key of msg id n from sender s: a stand-in for the
 * sender's hash (s first), then the msg id, as node/delivery.c makes it. */
static void seen_key(uint32_t sender, uint32_t n, uint8_t key[static TF_NODE_STORE_SEEN_KEY_LEN])
{
    memset(key, 0x5e, 16);
    for (int i = 0; i < 4; i++)
        key[i] = (uint8_t)(sender >> (24 - 8 * i));
    msg_id(n, key + 16);
}

/* An old (16-byte) key that no test writes. */
static const uint8_t no_legacy[16] = {0xee, 0xee, 0xee, 0xee, 0xee, 0xee, 0xee, 0xee,
                                      0xee, 0xee, 0xee, 0xee, 0xee, 0xee, 0xee, 0xee};

static void assert_seen(struct fixture *f, uint32_t n, int want)
{
    uint8_t key[TF_NODE_STORE_SEEN_KEY_LEN];
    seen_key(1, n, key);
    assert_rc(tf_node_store_seen_check(f->st, key, no_legacy, 0), want);
}

static void seen_add(struct fixture *f, uint32_t n, uint64_t expires)
{
    uint8_t key[TF_NODE_STORE_SEEN_KEY_LEN];
    seen_key(1, n, key);
    assert_ok(tf_node_store_seen_add(f->st, key, expires));
}

static void test_seen(void **state)
{
    struct fixture *f = *state;
    assert_ok(tf_node_store_open(f->dir, TF_NODE_STORE_CREATE, &f->st));
    assert_seen(f, 1, TF_E_NOT_FOUND);
    gc(f, UINT64_MAX, SIZE_MAX, 0);
    seen_add(f, 1, 10);
    seen_add(f, 2, 20);
    seen_add(f, 3, 30);
    seen_add(f, 4, 40);
    assert_seen(f, 1, TF_OK);
    seen_add(f, 1, 10); /* again */
    seen_add(f, 1, 5);  /* an earlier expiry keeps the later one */
    assert_new_counts(f, 0, 4, 0);

    gc(f, 10, SIZE_MAX, 0); /* expires 10 is not before now 10 */
    gc(f, 0, SIZE_MAX, 0);
    gc(f, 11, SIZE_MAX, 1);
    assert_seen(f, 1, TF_E_NOT_FOUND);
    assert_seen(f, 2, TF_OK);
    seen_add(f, 2, 50); /* a later expiry moves it */
    gc(f, 35, 1, 1);    /* at most one: the earliest, 3 (2 has moved) */
    assert_seen(f, 2, TF_OK);
    assert_seen(f, 3, TF_E_NOT_FOUND);
    assert_seen(f, 4, TF_OK);
    gc(f, 35, SIZE_MAX, 0);
    gc(f, UINT64_MAX, 0, 0);
    assert_new_counts(f, 0, 2, 0);
    assert_ok(tf_node_store_commit(f->st));

    reopen(f, TF_NODE_STORE_OPEN);
    assert_seen(f, 2, TF_OK);
    assert_seen(f, 4, TF_OK);
    seen_add(f, 1, 10); /* a forgotten id can be recorded again */
    assert_seen(f, 1, TF_OK);
    gc(f, 45, SIZE_MAX, 2); /* 1 and 4, not 2 (50) */
    assert_seen(f, 2, TF_OK);

    /* more than one batch, in a committed store (the first batch is read
     * outside the write transaction) */
    for (uint32_t n = 100; n < 700; n++)
        seen_add(f, n, 1000 + n % 300);
    assert_ok(tf_node_store_commit(f->st));
    gc(f, 1250, SIZE_MAX, 501); /* 2 (50), then expiries 1000..1249: two ids each */
    assert_seen(f, 2, TF_E_NOT_FOUND);
    assert_new_counts(f, 0, 100, 0);
    gc(f, 2000, 60, 60);
    gc(f, 2000, SIZE_MAX, 40);
    assert_new_counts(f, 0, 0, 0);
    assert_ok(tf_node_store_commit(f->st));

    reopen(f, TF_NODE_STORE_OPEN);
    assert_new_counts(f, 0, 0, 0);
    seen_add(f, 9, 9);
    assert_ok(tf_node_store_commit(f->st));
    reopen(f, TF_NODE_STORE_READONLY);
    assert_seen(f, 9, TF_OK);
    size_t removed;
    assert_rc(tf_node_store_seen_gc(f->st, 0, SIZE_MAX, &removed), -EROFS);
}

static void test_messages(void **state)
{
    struct fixture *f = *state;
    struct tf_node_message in, out, empty, bad, got;
    char long_text[TF_NODE_MESSAGE_TEXT_MAX + 2];
    assert_ok(tf_node_store_open(f->dir, TF_NODE_STORE_CREATE, &f->st));
    make_message(3, TF_NODE_MESSAGE_RECEIVED,
                 "Hello,\n\tsee you at the caf\xc3\xa9 \xf0\x9f\x99\x82", &in);
    make_message(1, TF_NODE_MESSAGE_QUEUED, "first line\nsecond line\n", &out);
    make_message(2, TF_NODE_MESSAGE_QUEUED, "", &empty);
    assert_rc(tf_node_store_message_get(f->st, in.id, &got), TF_E_NOT_FOUND);
    assert_null(got.text.data);
    assert_ok(tf_node_store_message_put(f->st, &in));
    assert_ok(tf_node_store_message_put(f->st, &out));
    assert_ok(tf_node_store_message_put(f->st, &empty));
    assert_message(f, &in);
    assert_message(f, &out);
    assert_message(f, &empty); /* the text is not NULL, though empty */
    assert_new_counts(f, 0, 0, 3);
    assert_ok(tf_node_store_commit(f->st));

    /* a state change is a put of the updated message */
    reopen(f, TF_NODE_STORE_OPEN);
    out.state = TF_NODE_MESSAGE_DELIVERED;
    out.updated += 60;
    assert_ok(tf_node_store_message_put(f->st, &out));
    assert_message(f, &out);
    empty.state = TF_NODE_MESSAGE_FAILED;
    SET(empty.error, "expired");
    assert_ok(tf_node_store_message_put(f->st, &empty));
    assert_message(f, &empty);
    assert_new_counts(f, 0, 0, 3);
    assert_ok(tf_node_store_commit(f->st));
    reopen(f, TF_NODE_STORE_READONLY);
    assert_message(f, &out);
    assert_message(f, &empty);
    reopen(f, TF_NODE_STORE_OPEN);

    /* what a record cannot hold */
    bad = in;
    bad.outgoing = true; /* outgoing but received */
    assert_rc(tf_node_store_message_put(f->st, &bad), TF_E_BAD_VALUE);
    bad = out;
    bad.outgoing = false; /* incoming but delivered */
    assert_rc(tf_node_store_message_put(f->st, &bad), TF_E_BAD_VALUE);
    bad.state = (enum tf_node_message_state)4;
    assert_rc(tf_node_store_message_put(f->st, &bad), TF_E_BAD_VALUE);
    bad = out;
    SET(bad.error, "a\tb");
    assert_rc(tf_node_store_message_put(f->st, &bad), TF_E_BAD_VALUE);
    memset(bad.error, 'e', sizeof bad.error);
    assert_rc(tf_node_store_message_put(f->st, &bad), TF_E_BAD_VALUE);
    bad = out;
    bad.text.data = (uint8_t *)"crlf\r\n";
    bad.text.len = 6;
    assert_rc(tf_node_store_message_put(f->st, &bad), TF_E_BAD_VALUE);
    bad.text.data = (uint8_t *)"\xc3(";
    bad.text.len = 2;
    assert_rc(tf_node_store_message_put(f->st, &bad), TF_E_BAD_VALUE);
    bad.text.data = NULL;
    assert_rc(tf_node_store_message_put(f->st, &bad), TF_E_BAD_VALUE);
    memset(long_text, 'x', sizeof long_text);
    bad.text.data = (uint8_t *)long_text;
    bad.text.len = TF_NODE_MESSAGE_TEXT_MAX + 1;
    assert_rc(tf_node_store_message_put(f->st, &bad), TF_E_BAD_VALUE);
    bad.text.len = TF_NODE_MESSAGE_TEXT_MAX;
    assert_ok(tf_node_store_message_put(f->st, &bad));
    assert_message(f, &bad);
    assert_new_counts(f, 0, 0, 3);

    assert_string_equal(tf_node_message_state_name(TF_NODE_MESSAGE_QUEUED), "queued");
    assert_string_equal(tf_node_message_state_name(TF_NODE_MESSAGE_DELIVERED), "delivered");
    assert_string_equal(tf_node_message_state_name(TF_NODE_MESSAGE_FAILED), "failed");
    assert_string_equal(tf_node_message_state_name(TF_NODE_MESSAGE_RECEIVED), "received");
    assert_string_equal(tf_node_message_state_name((enum tf_node_message_state)9), "invalid");
    tf_node_message_deinit(&in);
    tf_node_message_deinit(&out);
    tf_node_message_deinit(&empty);
}

struct seen_messages {
    size_t n;
    uint32_t ids[8];
    size_t stop_after;
};

static int message_cb(const struct tf_node_message *m, void *arg)
{
    struct seen_messages *s = arg;
    assert_true(s->n < 8);
    assert_non_null(m->text.data);
    s->ids[s->n++] = msg_num(m->id);
    return s->n == s->stop_after ? -3 : 0;
}

static int outbox_cb(const struct tf_node_outbox_entry *e, void *arg)
{
    struct seen_messages *s = arg;
    assert_true(s->n < 8);
    s->ids[s->n++] = msg_num(e->msg_id);
    return s->n == s->stop_after ? -3 : 0;
}

static void test_messages_and_outbox_foreach(void **state)
{
    struct fixture *f = *state;
    struct tf_node_message m;
    assert_ok(tf_node_store_open(f->dir, TF_NODE_STORE_CREATE, &f->st));
    for (int round = 0; round < 2; round++) { /* through the write txn, then not */
        struct seen_messages s = {0};
        assert_ok(tf_node_store_message_foreach(f->st, message_cb, &s));
        assert_int_equal(s.n, 0);
        assert_ok(tf_node_store_outbox_foreach(f->st, outbox_cb, &s));
        assert_int_equal(s.n, 0);
        assert_ok(tf_node_store_commit(f->st));
    }
    for (uint32_t n = 5; n >= 1; n--) {
        make_message(n, n % 2 ? TF_NODE_MESSAGE_RECEIVED : TF_NODE_MESSAGE_QUEUED, "note", &m);
        assert_ok(tf_node_store_message_put(f->st, &m));
        tf_node_message_deinit(&m);
        put_entry(f, n, 10 - n);
    }
    for (int round = 0; round < 2; round++) {
        struct seen_messages s = {0}, o = {0};
        assert_ok(tf_node_store_message_foreach(f->st, message_cb, &s));
        assert_ok(tf_node_store_outbox_foreach(f->st, outbox_cb, &o));
        assert_int_equal(s.n, 5);
        assert_int_equal(o.n, 5);
        for (uint32_t i = 0; i < 5; i++) {
            assert_int_equal(s.ids[i], i + 1); /* id order */
            assert_int_equal(o.ids[i], i + 1);
        }
        s = (struct seen_messages){.stop_after = 2};
        assert_int_equal(tf_node_store_message_foreach(f->st, message_cb, &s), -3);
        assert_int_equal(s.n, 2);
        s = (struct seen_messages){.stop_after = 4};
        assert_int_equal(tf_node_store_outbox_foreach(f->st, outbox_cb, &s), -3);
        assert_int_equal(s.n, 4);
        assert_ok(tf_node_store_commit(f->st));
    }
}

/* A record decoder under test: decodes rec[0..len) and frees the result. */
typedef int decode_fn(const uint8_t *rec, size_t len);

static const uint8_t codec_id[16] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16};

static int decode_outbox_rec(const uint8_t *rec, size_t len)
{
    struct tf_node_outbox_entry e;
    int rc = tf_node_outbox_entry_decode(codec_id, rec, len, &e);
    if (rc != TF_OK)
        assert_null(e.envelope.data);
    tf_node_outbox_entry_deinit(&e);
    return rc;
}

static int decode_message_rec(const uint8_t *rec, size_t len)
{
    struct tf_node_message m;
    int rc = tf_node_message_decode(codec_id, rec, len, &m);
    if (rc != TF_OK)
        assert_null(m.text.data);
    tf_node_message_deinit(&m);
    return rc;
}

/* Every strict prefix, the record with a byte more, and the record with byte
 * off set to val are corrupt; each is decoded from a buffer of exactly its
 * size. */
static void assert_corrupt_variants(decode_fn *decode, const struct tf_proto_buf *rec,
                                    const size_t *offs, const uint8_t *vals, size_t n_patches)
{
    uint8_t *buf;
    for (size_t n = 0; n < rec->len; n++) {
        buf = fx_dup(rec->data, n, 0);
        assert_rc(decode(buf, n), TF_E_CORRUPT);
        free(buf);
    }
    buf = fx_dup(rec->data, rec->len, 1);
    assert_rc(decode(buf, rec->len + 1), TF_E_CORRUPT);
    assert_ok(decode(buf, rec->len));
    for (size_t i = 0; i < n_patches; i++) {
        uint8_t keep = buf[offs[i]];
        buf[offs[i]] = vals[i];
        assert_rc(decode(buf, rec->len), TF_E_CORRUPT);
        buf[offs[i]] = keep;
    }
    free(buf);
}

static void test_record_codecs(void **state)
{
    struct tf_node_outbox_entry e, eg;
    struct tf_node_message m, mg;
    struct tf_proto_buf rec;
    (void)state;

    make_entry(7, 1234, &e);
    memcpy(e.msg_id, codec_id, 16);
    SET(e.last_error, "");
    assert_ok(tf_node_outbox_entry_encode(&e, &rec));
    assert_ok(tf_node_outbox_entry_decode(codec_id, rec.data, rec.len, &eg));
    assert_entry_equal(&eg, &e);
    tf_node_outbox_entry_deinit(&eg);
    /* [0x98, 0xc4 0x20 to_pk, type at 35, 0xc4 len envelope, ..., last_error
     * "" at the end]: count, to_pk length, type, envelope length, last_error */
    assert_int_equal(rec.data[0], 0x98);
    assert_int_equal(rec.data[35], TF_PROTO_MSG_TYPE_NOTE);
    assert_int_equal(rec.data[37], e.envelope.len);
    const size_t o_offs[] = {0, 0, 2, 35, 35, 37, rec.len - 1, rec.len - 1};
    const uint8_t o_vals[] = {0x97, 0x99, 0x1f, 0x00, 0x0a, 0x00, 0xa1, 0xc0};
    assert_corrupt_variants(decode_outbox_rec, &rec, o_offs, o_vals, 8);
    tf_proto_buf_free(&rec);

    make_message(9, TF_NODE_MESSAGE_QUEUED, "abc", &m);
    assert_ok(tf_node_message_encode(&m, &rec));
    memcpy(m.id, codec_id, 16);
    assert_ok(tf_node_message_decode(codec_id, rec.data, rec.len, &mg));
    assert_message_equal(&mg, &m);
    tf_node_message_deinit(&mg);
    /* [0x97, true, 0xc4 0x20 contact, 0xa3 "abc" at 36, time, updated,
     * state, ""]: count, direction, text, state, error */
    assert_int_equal(rec.data[36], 0xa3);
    assert_int_equal(rec.data[rec.len - 2], TF_NODE_MESSAGE_QUEUED);
    const size_t m_offs[] = {0, 1, 1, 37, 37, rec.len - 2, rec.len - 2, rec.len - 1};
    const uint8_t m_vals[] = {0x96, 0xc2, 0xc0, '\r', 0x80, 0x03, 0x04, 0xa1};
    assert_corrupt_variants(decode_message_rec, &rec, m_offs, m_vals, 8);
    tf_proto_buf_free(&rec);

    tf_node_outbox_entry_deinit(&e);
    tf_node_message_deinit(&m);
}

/* Sets byte off of every copy of rec in the closed store's data file to val
 * (LMDB keeps small values inline, and has no checksums). */
static void patch_data_file(const struct fixture *f, const struct tf_proto_buf *rec, size_t off,
                            uint8_t val)
{
    char path[256];
    struct stat sb;
    size_t copies = 0;
    snprintf(path, sizeof path, "%s/data.mdb", f->dir);
    int fd = open(path, O_RDWR);
    assert_true(fd >= 0);
    assert_int_equal(fstat(fd, &sb), 0);
    uint8_t *data = malloc((size_t)sb.st_size);
    assert_non_null(data);
    assert_int_equal(pread(fd, data, (size_t)sb.st_size, 0), sb.st_size);
    for (size_t i = 0; i + rec->len <= (size_t)sb.st_size; i++) {
        if (memcmp(data + i, rec->data, rec->len) != 0)
            continue;
        assert_int_equal(pwrite(fd, &val, 1, (off_t)(i + off)), 1);
        copies++;
    }
    assert_true(copies >= 1);
    assert_int_equal(close(fd), 0);
    free(data);
}

static void test_corrupt_records_in_store(void **state)
{
    struct fixture *f = *state;
    struct tf_node_outbox_entry a, b, got;
    struct tf_node_message m, mg;
    struct tf_proto_buf rec_a, rec_b, rec_m;
    struct seen_messages s = {0};
    assert_ok(tf_node_store_open(f->dir, TF_NODE_STORE_CREATE, &f->st));
    make_entry(1, 100, &a);
    make_entry(2, 200, &b);
    make_message(3, TF_NODE_MESSAGE_RECEIVED, "a note that will be damaged", &m);
    assert_ok(tf_node_store_outbox_put(f->st, &a));
    assert_ok(tf_node_store_outbox_put(f->st, &b));
    assert_ok(tf_node_store_message_put(f->st, &m));
    assert_ok(tf_node_store_commit(f->st));
    tf_node_store_close(f->st);
    f->st = NULL;
    assert_ok(tf_node_outbox_entry_encode(&a, &rec_a));
    assert_ok(tf_node_outbox_entry_encode(&b, &rec_b));
    assert_ok(tf_node_message_encode(&m, &rec_m));
    patch_data_file(f, &rec_a, 0, 0x97);             /* 7 fields, not 8 */
    patch_data_file(f, &rec_b, rec_b.len - 1, 0xc0); /* last_error: nil, not str */
    patch_data_file(f, &rec_m, 40, 0x01);            /* a control character in the text */

    reopen(f, TF_NODE_STORE_OPEN);
    assert_rc(tf_node_store_outbox_get(f->st, a.msg_id, &got), TF_E_CORRUPT);
    assert_null(got.envelope.data);
    assert_rc(tf_node_store_outbox_foreach(f->st, outbox_cb, &s), TF_E_CORRUPT);
    assert_rc(tf_node_store_outbox_due(f->st, 1000, SIZE_MAX, due_cb, &(struct due_log){0}),
              TF_E_CORRUPT);
    assert_next_due(f, TF_OK, 100); /* the index itself is fine */
    assert_rc(tf_node_store_message_get(f->st, m.id, &mg), TF_E_CORRUPT);
    assert_null(mg.text.data);
    assert_rc(tf_node_store_message_foreach(f->st, message_cb, &s), TF_E_CORRUPT);
    assert_new_counts(f, 2, 0, 1);

    /* a corrupt entry can be replaced or deleted, with its due key */
    a.next_try_ms = 500;
    assert_ok(tf_node_store_outbox_put(f->st, &a));
    assert_ok(tf_node_store_outbox_get(f->st, a.msg_id, &got));
    assert_entry_equal(&got, &a);
    tf_node_outbox_entry_deinit(&got);
    assert_next_due(f, TF_OK, 200);
    assert_ok(tf_node_store_outbox_del(f->st, b.msg_id));
    assert_due(f, 1000, SIZE_MAX, (const uint32_t[]){1}, 1);
    assert_next_due(f, TF_OK, 500);
    assert_ok(tf_node_store_message_put(f->st, &m));
    assert_message(f, &m);
    assert_ok(tf_node_store_commit(f->st));
    reopen(f, TF_NODE_STORE_OPEN);
    assert_new_counts(f, 1, 0, 1);
    assert_due(f, 1000, SIZE_MAX, (const uint32_t[]){1}, 1);
    tf_proto_buf_free(&rec_a);
    tf_proto_buf_free(&rec_b);
    tf_proto_buf_free(&rec_m);
    tf_node_outbox_entry_deinit(&a);
    tf_node_outbox_entry_deinit(&b);
    tf_node_message_deinit(&m);
}

/* A schema 1 store (as the code before the outbox wrote it, made here by
 * setting its schema back): READONLY reads it as it is, the tables schema 2
 * added reading as empty; OPEN migrates it. */
static void test_schema_migration(void **state)
{
    struct fixture *f = *state;
    struct tf_node_contact c;
    struct tf_node_message m;
    struct tf_node_outbox_entry got;
    struct seen_messages s = {0};
    uint8_t id[16];
    assert_ok(tf_node_store_open(f->dir, TF_NODE_STORE_CREATE, &f->st));
    put_contact(f, 1, "alice", &c);
    put_entry(f, 1, 100);
    seen_add(f, 2, 50);
    make_message(3, TF_NODE_MESSAGE_QUEUED, "hi", &m);
    assert_ok(tf_node_store_message_put(f->st, &m));
    assert_ok(tf_node_store_meta_put(f->st, "schema", (const uint8_t *)"\0\0\0\1", 4));
    assert_ok(tf_node_store_commit(f->st));

    reopen(f, TF_NODE_STORE_READONLY);
    assert_meta(f, "schema", "\0\0\0\1", 4);
    assert_finds(f, "alice", c.pk);
    assert_counts(f, 1, 0);
    assert_new_counts(f, 0, 0, 0);
    assert_no_entry(f, 1);
    assert_next_due(f, TF_E_NOT_FOUND, 0);
    assert_due(f, UINT64_MAX, SIZE_MAX, NULL, 0);
    assert_ok(tf_node_store_outbox_foreach(f->st, outbox_cb, &s));
    assert_ok(tf_node_store_message_foreach(f->st, message_cb, &s));
    assert_int_equal(s.n, 0);
    assert_seen(f, 2, TF_E_NOT_FOUND);
    assert_rc(tf_node_store_message_get(f->st, m.id, &(struct tf_node_message){0}), TF_E_NOT_FOUND);
    refuse_new_writes(f);

    reopen(f, TF_NODE_STORE_OPEN);
    assert_meta(f, "schema", SCHEMA_NOW, 4);
    assert_false(tf_node_store_dirty(f->st)); /* migrated in the open transaction */
    assert_finds(f, "alice", c.pk);
    assert_new_counts(f, 1, 1, 1);
    put_entry(f, 4, 50);
    assert_due(f, 100, SIZE_MAX, (const uint32_t[]){4, 1}, 2);
    msg_id(4, id);
    assert_ok(tf_node_store_outbox_get(f->st, id, &got));
    assert_true(got.next_try_ms == 50);
    tf_node_outbox_entry_deinit(&got);
    seen_add(f, 5, 60);
    assert_ok(tf_node_store_commit(f->st));
    reopen(f, TF_NODE_STORE_READONLY);
    assert_meta(f, "schema", SCHEMA_NOW, 4);
    assert_new_counts(f, 2, 2, 1);
    assert_message(f, &m);
    assert_seen(f, 5, TF_OK);
    tf_node_contact_deinit(&c);
    tf_node_message_deinit(&m);
}

static void test_new_tables_uncommitted_and_abort(void **state)
{
    struct fixture *f = *state;
    struct tf_node_message m;
    struct seen_messages s = {0};
    assert_ok(tf_node_store_open(f->dir, TF_NODE_STORE_CREATE, &f->st));
    put_entry(f, 1, 100);
    put_entry(f, 2, 50);
    seen_add(f, 3, 10);
    make_message(4, TF_NODE_MESSAGE_RECEIVED, "hello", &m);
    assert_ok(tf_node_store_message_put(f->st, &m));
    assert_true(tf_node_store_dirty(f->st));
    assert_new_counts(f, 2, 1, 1);
    assert_next_due(f, TF_OK, 50);
    assert_due(f, 100, SIZE_MAX, (const uint32_t[]){2, 1}, 2);
    assert_seen(f, 3, TF_OK);
    assert_message(f, &m);
    assert_ok(tf_node_store_message_foreach(f->st, message_cb, &s));
    assert_ok(tf_node_store_outbox_foreach(f->st, outbox_cb, &s));
    assert_int_equal(s.n, 3);
    gc(f, 11, SIZE_MAX, 1);
    assert_seen(f, 3, TF_E_NOT_FOUND);
    seen_add(f, 3, 10);

    tf_node_store_abort(f->st);
    assert_false(tf_node_store_dirty(f->st));
    assert_new_counts(f, 0, 0, 0);
    assert_no_entry(f, 1);
    assert_next_due(f, TF_E_NOT_FOUND, 0);
    assert_due(f, UINT64_MAX, SIZE_MAX, NULL, 0);
    assert_seen(f, 3, TF_E_NOT_FOUND);
    assert_rc(tf_node_store_message_get(f->st, m.id, &(struct tf_node_message){0}), TF_E_NOT_FOUND);
    gc(f, UINT64_MAX, SIZE_MAX, 0);
    assert_false(tf_node_store_dirty(f->st)); /* nothing to forget: no write */

    /* and close without commit discards too */
    put_entry(f, 1, 100);
    seen_add(f, 3, 10);
    assert_ok(tf_node_store_message_put(f->st, &m));
    reopen(f, TF_NODE_STORE_OPEN);
    assert_new_counts(f, 0, 0, 0);
    tf_node_message_deinit(&m);
}

static void test_many_outbox(void **state)
{
    struct fixture *f = *state;
    enum { N = 2000, BATCH = 500 };
    static struct due_log d;
    uint64_t lowest = UINT64_MAX;
    assert_ok(tf_node_store_open(f->dir, TF_NODE_STORE_CREATE, &f->st));
    for (uint32_t n = 0; n < N; n++) {
        /* a scrambled order, with ties */
        uint64_t t = (uint64_t)(n * 7919u % 1009u) * 1000u;
        put_entry(f, n, t);
        if (t < lowest)
            lowest = t;
        if ((n + 1) % BATCH == 0)
            assert_ok(tf_node_store_commit(f->st));
    }
    put_entry(f, 17, 5); /* moved, in a new transaction */
    assert_new_counts(f, N, 0, 0);
    assert_next_due(f, TF_OK, 0);

    memset(&d, 0, sizeof d);
    assert_ok(tf_node_store_outbox_due(f->st, UINT64_MAX, SIZE_MAX, due_cb, &d));
    assert_int_equal(d.n, N);
    for (size_t i = 1; i < N; i++)
        assert_true(d.times[i - 1] < d.times[i] ||
                    (d.times[i - 1] == d.times[i] && d.ids[i - 1] < d.ids[i]));
    assert_true(d.times[0] == lowest);

    memset(&d, 0, sizeof d);
    assert_ok(tf_node_store_outbox_due(f->st, 500000, 100, due_cb, &d));
    assert_int_equal(d.n, 100);
    assert_true(d.times[99] <= 500000);

    /* deliver everything up to a time, and commit */
    memset(&d, 0, sizeof d);
    d.st = f->st;
    d.action = DUE_DELETE;
    assert_ok(tf_node_store_outbox_due(f->st, 499999, SIZE_MAX, due_cb, &d));
    assert_ok(tf_node_store_commit(f->st));
    assert_new_counts(f, N - d.n, 0, 0);
    assert_next_due(f, TF_OK, 500000);
    size_t first = d.n;
    memset(&d, 0, sizeof d);
    d.st = f->st;
    d.action = DUE_DELETE;
    assert_ok(tf_node_store_outbox_due(f->st, UINT64_MAX, SIZE_MAX, due_cb, &d));
    assert_int_equal(first + d.n, N);
    assert_ok(tf_node_store_commit(f->st));
    assert_new_counts(f, 0, 0, 0);
    assert_next_due(f, TF_E_NOT_FOUND, 0);
}

static int count_kv(const uint8_t *key, size_t klen, const uint8_t *val, size_t vlen, void *arg)
{
    (void)key;
    (void)val;
    (void)vlen;
    size_t *n = arg;
    assert_int_equal(klen, 32);
    (*n)++;
    return *n == 2 ? 7 : 0; /* stop at the second entry with a value of our own */
}

static void test_kv_tables(void **state)
{
    struct fixture *f = *state;
    struct tf_proto_buf got = {0};
    uint8_t k1[32], k2[32];
    memset(k1, 1, 32);
    memset(k2, 2, 32);
    assert_ok(tf_node_store_open(f->dir, TF_NODE_STORE_CREATE, &f->st));
    assert_rc(tf_node_store_kv_get(f->st, TF_NODE_STORE_INTROS_OUT, k1, 32, &got), TF_E_NOT_FOUND);
    assert_ok(
        tf_node_store_kv_put(f->st, TF_NODE_STORE_INTROS_OUT, k1, 32, (const uint8_t *)"one", 3));
    assert_ok(
        tf_node_store_kv_put(f->st, TF_NODE_STORE_INTROS_OUT, k2, 32, (const uint8_t *)"two", 3));
    /* Tables are separate. */
    assert_rc(tf_node_store_kv_get(f->st, TF_NODE_STORE_INTROS_IN, k1, 32, &got), TF_E_NOT_FOUND);
    /* Uncommitted writes are visible in the same transaction. */
    assert_ok(tf_node_store_kv_get(f->st, TF_NODE_STORE_INTROS_OUT, k1, 32, &got));
    assert_int_equal(got.len, 3);
    assert_memory_equal(got.data, "one", 3);
    tf_proto_buf_free(&got);
    assert_ok(tf_node_store_commit(f->st));
    size_t n = 0;
    assert_int_equal(tf_node_store_kv_foreach(f->st, TF_NODE_STORE_INTROS_OUT, count_kv, &n), 7);
    assert_int_equal(n, 2);
    assert_ok(tf_node_store_kv_del(f->st, TF_NODE_STORE_INTROS_OUT, k1, 32));
    assert_rc(tf_node_store_kv_del(f->st, TF_NODE_STORE_INTROS_OUT, k1, 32), TF_E_NOT_FOUND);
    tf_node_store_abort(f->st);
    /* The abort brought k1 back. */
    assert_ok(tf_node_store_kv_get(f->st, TF_NODE_STORE_INTROS_OUT, k1, 32, &got));
    tf_proto_buf_free(&got);
    assert_rc(tf_node_store_kv_put(f->st, TF_NODE_STORE_CARDS, k1, 0, NULL, 0), TF_E_INVALID_ARG);
}

static void test_savepoint_rollback(void **state)
{
    struct fixture *f = *state;
    struct tf_proto_buf got = {0};
    uint8_t k1[32], k2[32], k3[32];
    memset(k1, 1, 32);
    memset(k2, 2, 32);
    memset(k3, 3, 32);
    assert_ok(tf_node_store_open(f->dir, TF_NODE_STORE_CREATE, &f->st));
    /* Nothing open: the savepoint is 0 and rolling back to it is a no-op. */
    assert_int_equal(tf_node_store_savepoint(f->st), 0);
    assert_ok(tf_node_store_rollback(f->st, 0));
    assert_ok(tf_node_store_kv_put(f->st, TF_NODE_STORE_CARDS, k1, 32, (const uint8_t *)"a", 1));
    size_t sp = tf_node_store_savepoint(f->st);
    assert_ok(tf_node_store_kv_put(f->st, TF_NODE_STORE_CARDS, k2, 32, (const uint8_t *)"b", 1));
    assert_ok(tf_node_store_kv_del(f->st, TF_NODE_STORE_CARDS, k1, 32));
    assert_ok(tf_node_store_rollback(f->st, sp));
    /* The write before the savepoint stays, the ones after are gone. */
    assert_ok(tf_node_store_kv_get(f->st, TF_NODE_STORE_CARDS, k1, 32, &got));
    tf_proto_buf_free(&got);
    assert_rc(tf_node_store_kv_get(f->st, TF_NODE_STORE_CARDS, k2, 32, &got), TF_E_NOT_FOUND);
    /* The batch goes on and commits. */
    assert_ok(tf_node_store_kv_put(f->st, TF_NODE_STORE_CARDS, k3, 32, (const uint8_t *)"c", 1));
    assert_ok(tf_node_store_commit(f->st));
    assert_ok(tf_node_store_kv_get(f->st, TF_NODE_STORE_CARDS, k3, 32, &got));
    tf_proto_buf_free(&got);
    assert_rc(tf_node_store_kv_get(f->st, TF_NODE_STORE_CARDS, k2, 32, &got), TF_E_NOT_FOUND);
    /* Rolling back the whole batch leaves nothing open. */
    sp = tf_node_store_savepoint(f->st);
    assert_int_equal(sp, 0);
    assert_ok(tf_node_store_kv_put(f->st, TF_NODE_STORE_CARDS, k2, 32, (const uint8_t *)"b", 1));
    assert_ok(tf_node_store_rollback(f->st, sp));
    assert_false(tf_node_store_dirty(f->st));
    assert_rc(tf_node_store_kv_get(f->st, TF_NODE_STORE_CARDS, k2, 32, &got), TF_E_NOT_FOUND);
}

/* What a module that keeps counts in memory learns about its writes:
 * the lowest discarded savepoint, batches ended, contacts created or
 * deleted. */
static void test_undo_reports(void **state)
{
    struct fixture *f = *state;
    struct tf_node_message m;
    assert_ok(tf_node_store_open(f->dir, TF_NODE_STORE_CREATE, &f->st));
    assert_int_equal(tf_node_store_undo_take(f->st), SIZE_MAX);
    uint64_t b0 = tf_node_store_batches(f->st), g0 = tf_node_store_contacts_gen(f->st);
    /* A committed batch: nothing undone, one batch ended. */
    make_message(1, TF_NODE_MESSAGE_RECEIVED, "one", &m);
    assert_ok(tf_node_store_message_put(f->st, &m));
    tf_node_message_deinit(&m);
    assert_ok(tf_node_store_commit(f->st));
    assert_int_equal(tf_node_store_undo_take(f->st), SIZE_MAX);
    assert_int_equal(tf_node_store_batches(f->st), b0 + 1);
    /* A rollback reports the lowest savepoint whose writes went, once. */
    make_message(2, TF_NODE_MESSAGE_RECEIVED, "two", &m);
    assert_ok(tf_node_store_message_put(f->st, &m));
    tf_node_message_deinit(&m);
    size_t sp = tf_node_store_savepoint(f->st);
    assert_int_equal(sp, 1);
    make_message(3, TF_NODE_MESSAGE_RECEIVED, "three", &m);
    assert_ok(tf_node_store_message_put(f->st, &m));
    tf_node_message_deinit(&m);
    size_t sp2 = tf_node_store_savepoint(f->st);
    msg_id(3, m.id);
    assert_ok(tf_node_store_message_del(f->st, m.id));
    assert_ok(tf_node_store_rollback(f->st, sp2));
    assert_ok(tf_node_store_rollback(f->st, sp));
    assert_int_equal(tf_node_store_undo_take(f->st), sp);
    assert_int_equal(tf_node_store_undo_take(f->st), SIZE_MAX);
    /* A rollback that drops nothing reports nothing. */
    assert_ok(tf_node_store_rollback(f->st, tf_node_store_savepoint(f->st)));
    assert_int_equal(tf_node_store_undo_take(f->st), SIZE_MAX);
    /* An abort loses the whole batch: from 0. */
    tf_node_store_abort(f->st);
    assert_int_equal(tf_node_store_undo_take(f->st), 0);
    assert_int_equal(tf_node_store_batches(f->st), b0 + 2);
    /* Contacts: created and deleted move the generation, updated does not. */
    struct tf_node_contact c;
    put_contact(f, 1, "one", &c);
    assert_int_equal(tf_node_store_contacts_gen(f->st), g0 + 1);
    SET(c.alias, "uno");
    assert_ok(tf_node_store_contact_put(f->st, &c));
    assert_int_equal(tf_node_store_contacts_gen(f->st), g0 + 1);
    assert_ok(tf_node_store_contact_del(f->st, c.pk));
    assert_int_equal(tf_node_store_contacts_gen(f->st), g0 + 2);
    tf_node_contact_deinit(&c);
    /* message_del: the message goes; an absent one is TF_E_NOT_FOUND and
     * does not lose the batch. */
    msg_id(1, m.id);
    assert_ok(tf_node_store_message_del(f->st, m.id));
    assert_rc(tf_node_store_message_get(f->st, m.id, &m), TF_E_NOT_FOUND);
    assert_rc(tf_node_store_message_del(f->st, m.id), TF_E_NOT_FOUND);
    assert_ok(tf_node_store_commit(f->st));
    assert_int_equal(tf_node_store_undo_take(f->st), SIZE_MAX);
    assert_rc(tf_node_store_message_get(f->st, m.id, &m), TF_E_NOT_FOUND);
}

/* Backup (issue 16, ux): a copy taken through a read-only store is a whole,
 * consistent store, also when another process (the running node) grew the
 * map after this one opened it (MDB_MAP_RESIZED, adopted and copied again). */
static void test_copy_fd(void **state)
{
    struct fixture *f = *state;
    char copy_dir[160], copy[200];
    assert_ok(tf_node_store_open(f->dir, TF_NODE_STORE_CREATE, &f->st));
    append(f, "one", 1);
    append(f, "two", 2);
    assert_ok(tf_node_store_commit(f->st));
    reopen(f, TF_NODE_STORE_READONLY);

    /* Another process outgrows the 64 MiB map meanwhile. */
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        struct tf_node_store *rw = NULL;
        uint8_t *rec = malloc(BIG_LEN);
        int ok = rec != NULL && tf_node_store_open(f->dir, TF_NODE_STORE_OPEN, &rw) == TF_OK;
        for (uint64_t i = 3; ok && i < 3 + 70; i++) {
            memset(rec, (int)(uint8_t)i, BIG_LEN);
            ok = tf_node_store_event_append(rw, rec, BIG_LEN, NULL) == TF_OK;
        }
        ok = ok && tf_node_store_commit(rw) == TF_OK;
        tf_node_store_close(rw);
        free(rec);
        _exit(ok ? 0 : 1);
    }
    int status = 0;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);

    snprintf(copy_dir, sizeof copy_dir, "%s/copy", f->tmp);
    snprintf(copy, sizeof copy, "%s/data.mdb", copy_dir);
    assert_int_equal(mkdir(copy_dir, 0700), 0);
    int fd = open(copy, O_RDWR | O_CREAT | O_EXCL, 0600);
    assert_true(fd >= 0);
    assert_ok(tf_node_store_copy_fd(f->st, fd));
    assert_int_equal(close(fd), 0);

    struct tf_node_store *c = NULL;
    struct tf_node_store_stat st;
    assert_ok(tf_node_store_open(copy_dir, TF_NODE_STORE_READONLY, &c));
    assert_ok(tf_node_store_stat(c, &st));
    assert_int_equal(st.events, 72);
    tf_node_store_close(c);
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
        T(test_events_trim),
        T(test_contact_foreach),
        T(test_foreach_callback_writes),
        T(test_uncommitted_reads_and_abort),
        T(test_close_discards_and_commit_persists),
        T(test_many_contacts),
        T(test_map_growth),
        T(test_map_growth_deletes),
        T(test_lost_txn_is_reported),
        T(test_outbox_round_trip),
        T(test_outbox_put_moves_due),
        T(test_outbox_due),
        T(test_outbox_due_callback_writes),
        T(test_outbox_next_due),
        T(test_seen),
        T(test_messages),
        T(test_messages_and_outbox_foreach),
        T(test_record_codecs),
        T(test_corrupt_records_in_store),
        T(test_schema_migration),
        T(test_kv_tables),
        T(test_savepoint_rollback),
        T(test_undo_reports),
        T(test_new_tables_uncommitted_and_abort),
        T(test_many_outbox),
        T(test_copy_fd),
    };
#undef T
    return cmocka_run_group_tests(tests, NULL, NULL);
}
