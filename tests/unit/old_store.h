/* SPDX-License-Identifier: MIT */
/*
 * introkeys: stores in the layout of schema 10 and before, for the tests of
 * migrations.  The store module cannot write that layout any more, so these
 * helpers make it with LMDB directly from a store this code wrote (and
 * closed): schema 11's intro tables (intros_out_seq, intros_out_ids,
 * intros_in_seq, intros_in_ids) dropped, the old intros_out and intros_in
 * (intro id -> record) created, and the schema set back, in one transaction
 * in which the test adds what rows it needs (fx_old_store_put).  Include
 * after fixtures.h (cmocka).
 */
#ifndef TF_TESTS_UNIT_OLD_STORE_H
#define TF_TESTS_UNIT_OLD_STORE_H

#include <stdint.h>

#include <lmdb.h>

/* Opens the environment of dir with LMDB (the store must be closed). */
static inline MDB_env *fx_lmdb_open(const char *dir)
{
    MDB_env *env;
    assert_int_equal(mdb_env_create(&env), 0);
    assert_int_equal(mdb_env_set_maxdbs(env, 64), 0);
    assert_int_equal(mdb_env_open(env, dir, 0, 0600), 0);
    return env;
}

/* Puts key -> val into the named table (creating it) in txn. */
static inline void fx_old_store_put(MDB_txn *txn, const char *table, const void *key, size_t klen,
                                    const void *val, size_t vlen)
{
    MDB_dbi dbi;
    MDB_val k = {klen, (void *)(uintptr_t)key}, v = {vlen, (void *)(uintptr_t)val};
    assert_int_equal(mdb_dbi_open(txn, table, MDB_CREATE, &dbi), 0);
    assert_int_equal(mdb_put(txn, dbi, &k, &v, 0), 0);
}

/* Begins rewriting the closed store at dir into the layout of `schema`
 * (3..10: the intro tables exist, empty, in their old form).  Returns the
 * transaction, to finish with fx_old_store_end. */
static inline MDB_txn *fx_old_store_begin(const char *dir, uint32_t schema, MDB_env **env)
{
    static const char *const new_tables[] = {"intros_out_seq", "intros_out_ids", "intros_in_seq",
                                             "intros_in_ids"};
    const uint8_t v[4] = {0, 0, 0, (uint8_t)schema};
    MDB_txn *txn;
    MDB_dbi dbi;
    assert_true(schema >= 3 && schema <= 10);
    *env = fx_lmdb_open(dir);
    assert_int_equal(mdb_txn_begin(*env, NULL, 0, &txn), 0);
    for (size_t i = 0; i < sizeof new_tables / sizeof new_tables[0]; i++) {
        assert_int_equal(mdb_dbi_open(txn, new_tables[i], 0, &dbi), 0);
        assert_int_equal(mdb_drop(txn, dbi, 1), 0);
    }
    assert_int_equal(mdb_dbi_open(txn, "intros_out", MDB_CREATE, &dbi), 0);
    assert_int_equal(mdb_dbi_open(txn, "intros_in", MDB_CREATE, &dbi), 0);
    fx_old_store_put(txn, "meta", "schema", 6, v, sizeof v);
    return txn;
}

static inline void fx_old_store_end(MDB_env *env, MDB_txn *txn)
{
    assert_int_equal(mdb_txn_commit(txn), 0);
    mdb_env_close(env);
}

#endif
