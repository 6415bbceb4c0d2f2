/* SPDX-License-Identifier: MIT */
/* direct (issue 17): unit tests for the outbox record of schema 9 (node/store.h):
 * an entry that keeps its body to go unsealed on a direct link, its envelope
 * empty until sealed; records of schema 8 (a sealed envelope only) read as
 * they are, and a schema 8 store opens, migrated, with its entries intact. */
#include "fixtures.h"

#define STORE_FIXTURE_NAME "outbox"
#include "store_fixture.h"

#include "node/store.h"
#include "old_store.h"
#include "proto/envelope.h"
#include "proto/statement.h"

/* An entry n with an envelope of env_len bytes and a body of body_len bytes
 * (0: none). */
static void make(uint8_t n, size_t env_len, size_t body_len, struct tf_node_outbox_entry *e)
{
    memset(e, 0, sizeof *e);
    memset(e->msg_id, n, sizeof e->msg_id);
    memset(e->to_pk, 0x40 + n, sizeof e->to_pk);
    e->type = TF_PROTO_MSG_TYPE_PROPOSAL;
    e->created = 1700000000u + n;
    e->expires = e->created + 86400;
    e->attempts = n;
    e->next_try_ms = 1000u * n;
    if (env_len > 0) {
        e->envelope.data = malloc(env_len);
        assert_non_null(e->envelope.data);
        memset(e->envelope.data, 0xe0 + n, env_len);
        e->envelope.len = env_len;
    }
    if (body_len > 0) {
        e->body.data = malloc(body_len);
        assert_non_null(e->body.data);
        memset(e->body.data, 0xb0 + n, body_len);
        e->body.len = body_len;
    }
}

static void assert_same(const struct tf_node_outbox_entry *got,
                        const struct tf_node_outbox_entry *want)
{
    assert_memory_equal(got->msg_id, want->msg_id, 16);
    assert_memory_equal(got->to_pk, want->to_pk, 32);
    assert_int_equal(got->type, want->type);
    assert_int_equal(got->created, want->created);
    assert_int_equal(got->expires, want->expires);
    assert_int_equal(got->attempts, want->attempts);
    assert_int_equal(got->next_try_ms, want->next_try_ms);
    assert_string_equal(got->last_error, want->last_error);
    assert_int_equal(got->envelope.len, want->envelope.len);
    if (want->envelope.len > 0)
        assert_memory_equal(got->envelope.data, want->envelope.data, want->envelope.len);
    assert_int_equal(got->body.len, want->body.len);
    if (want->body.len > 0)
        assert_memory_equal(got->body.data, want->body.data, want->body.len);
}

/* Encodes e, checks the record's field count, decodes it back. */
static void round_trip(const struct tf_node_outbox_entry *e, uint8_t fields)
{
    struct tf_proto_buf rec;
    struct tf_node_outbox_entry got;
    assert_ok(tf_node_outbox_entry_encode(e, &rec));
    assert_int_equal(rec.data[0], 0x90 | fields);
    assert_ok(tf_node_outbox_entry_decode(e->msg_id, rec.data, rec.len, &got));
    assert_same(&got, e);
    tf_node_outbox_entry_deinit(&got);
    tf_proto_buf_free(&rec);
}

static void test_records(void **state)
{
    (void)state;
    struct tf_node_outbox_entry e;
    /* A sealed envelope only: the schema 8 record, 8 fields. */
    make(1, 4200, 0, &e);
    round_trip(&e, 8);
    tf_node_outbox_entry_deinit(&e);
    /* A body only (not sealed yet): 9 fields, an empty envelope. */
    make(2, 0, 300, &e);
    round_trip(&e, 9);
    tf_node_outbox_entry_deinit(&e);
    /* Both (sealed once, for a mailbox), the largest body. */
    make(3, TF_PROTO_ENVELOPE_MAX, TF_PROTO_BODY_MAX, &e);
    round_trip(&e, 9);

    /* What a record cannot hold. */
    struct tf_proto_buf rec;
    struct tf_node_outbox_entry bad = e;
    bad.body.len = TF_PROTO_BODY_MAX + 1;
    assert_rc(tf_node_outbox_entry_encode(&bad, &rec), TF_E_BAD_VALUE);
    bad.body.len = 0;
    bad.envelope.len = 0; /* nothing to send */
    assert_rc(tf_node_outbox_entry_encode(&bad, &rec), TF_E_BAD_VALUE);
    bad = e;
    bad.body.data = NULL;
    assert_rc(tf_node_outbox_entry_encode(&bad, &rec), TF_E_BAD_VALUE);
    tf_node_outbox_entry_deinit(&e);
}

/* Records written by hand: the decoder takes 8 or 9 fields and nothing else. */
static void test_crafted_records(void **state)
{
    (void)state;
    static const uint8_t id[16] = {9};
    uint8_t pk[32], blob[5] = {1, 2, 3, 4, 5};
    memset(pk, 0x42, sizeof pk);
    const struct {
        uint32_t fields;
        size_t env_len, body_len;
        int want;
    } cases[] = {
        {8, 5, 0, TF_OK},         {9, 0, 5, TF_OK}, {9, 5, 5, TF_OK},
        {8, 0, 0, TF_E_CORRUPT},  /* schema 8: the envelope is all there is */
        {9, 5, 0, TF_E_CORRUPT},  /* a body field holds a body */
        {9, 0, 0, TF_E_CORRUPT},  /* nothing to send */
        {10, 5, 5, TF_E_CORRUPT}, /* an unknown 10th field */
        {7, 5, 0, TF_E_CORRUPT},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        struct tf_proto_mp_writer w;
        struct tf_proto_buf rec;
        struct tf_node_outbox_entry got;
        tf_proto_mp_writer_init(&w);
        tf_proto_mp_write_array(&w, cases[i].fields);
        tf_proto_mp_write_bin(&w, pk, sizeof pk);
        tf_proto_mp_write_uint(&w, TF_PROTO_MSG_TYPE_NOTE);
        tf_proto_mp_write_bin(&w, blob, cases[i].env_len);
        for (int k = 0; k < 4; k++)
            tf_proto_mp_write_uint(&w, 7);
        if (cases[i].fields > 7) /* seven fields: no last_error */
            tf_proto_mp_write_cstr(&w, "");
        if (cases[i].fields > 8)
            tf_proto_mp_write_bin(&w, blob, cases[i].body_len);
        if (cases[i].fields > 9)
            tf_proto_mp_write_uint(&w, 0);
        assert_ok(tf_proto_mp_writer_finish(&w, &rec));
        int rc = tf_node_outbox_entry_decode(id, rec.data, rec.len, &got);
        if (rc != cases[i].want)
            fail_msg("case %zu: got %s, want %s", i, tf_err_name(rc), tf_err_name(cases[i].want));
        if (rc == TF_OK) {
            assert_int_equal(got.envelope.len, cases[i].env_len);
            assert_int_equal(got.body.len, cases[i].body_len);
        }
        tf_node_outbox_entry_deinit(&got);
        tf_proto_buf_free(&rec);
    }
}

/* The store holds an entry equal to want. */
static void assert_stored(struct fixture *f, const struct tf_node_outbox_entry *want)
{
    struct tf_node_outbox_entry got;
    assert_ok(tf_node_store_outbox_get(f->st, want->msg_id, &got));
    assert_same(&got, want);
    tf_node_outbox_entry_deinit(&got);
}

/* A schema 8 store (made here by setting its schema back, and its intro
 * tables to their old form: old_store.h) holding a sealed entry: READONLY
 * reads it as it is; OPEN migrates it to the current schema without
 * touching the entry, and entries with bodies go in beside it. */
static void test_schema_8_store(void **state)
{
    struct fixture *f = *state;
    struct tf_node_outbox_entry old, fresh;
    struct tf_proto_buf v;
    MDB_env *env;
    make(1, 4200, 0, &old);
    make(2, 0, 300, &fresh);
    assert_ok(tf_node_store_open(f->dir, TF_NODE_STORE_CREATE, &f->st));
    assert_ok(tf_node_store_outbox_put(f->st, &old));
    assert_ok(tf_node_store_commit(f->st));

    tf_node_store_close(f->st);
    MDB_txn *txn = fx_old_store_begin(f->dir, 8, &env);
    fx_old_store_end(env, txn);
    assert_ok(tf_node_store_open(f->dir, TF_NODE_STORE_READONLY, &f->st));
    assert_stored(f, &old);

    tf_node_store_close(f->st);
    assert_ok(tf_node_store_open(f->dir, TF_NODE_STORE_OPEN, &f->st));
    assert_ok(tf_node_store_meta_get(f->st, "schema", &v));
    assert_int_equal(v.len, 4);
    assert_memory_equal(v.data, ((const uint8_t[]){0, 0, 0, TF_NODE_STORE_SCHEMA}), 4);
    tf_proto_buf_free(&v);
    assert_ok(tf_node_store_outbox_put(f->st, &fresh));
    assert_ok(tf_node_store_commit(f->st));
    tf_node_store_close(f->st);
    assert_ok(tf_node_store_open(f->dir, TF_NODE_STORE_READONLY, &f->st));
    assert_stored(f, &old);
    assert_stored(f, &fresh);
    tf_node_outbox_entry_deinit(&old);
    tf_node_outbox_entry_deinit(&fresh);
}

int main(void)
{
    if (sodium_init() < 0)
        return 1;
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_records),
        cmocka_unit_test(test_crafted_records),
        cmocka_unit_test_setup_teardown(test_schema_8_store, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
