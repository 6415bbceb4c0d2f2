/* SPDX-License-Identifier: MIT */
/* The hex-id lookup of intros and requests (node/verbs.c): whole ids and
 * unique prefixes of 8 to 64 digits, odd lengths included. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <sodium.h>

#include "fixtures.h"
#include "node/internal.h"
#include "node/node.h"
#include "node/store.h"

struct fx {
    char dir[64];
    struct tf_node node;
};

static void put_id(struct tf_node_store *st, const char *hex)
{
    uint8_t id[32];
    assert_int_equal(sodium_hex2bin(id, sizeof id, hex, 64, NULL, NULL, NULL), 0);
    assert_ok(tf_node_store_kv_put(st, TF_NODE_STORE_REQUESTS, id, 32, (const uint8_t *)"x", 1));
}

/* Resolves prefix; returns the rc and the id found in hex. */
static int lookup(struct tf_node *node, const char *prefix, char hex[65])
{
    msgpack_object_kv kv;
    kv.key.type = MSGPACK_OBJECT_STR;
    kv.key.via.str.ptr = "id";
    kv.key.via.str.size = 2;
    kv.val.type = MSGPACK_OBJECT_STR;
    kv.val.via.str.ptr = prefix;
    kv.val.via.str.size = (uint32_t)strlen(prefix);
    msgpack_object args = {.type = MSGPACK_OBJECT_MAP};
    args.via.map.size = 1;
    args.via.map.ptr = &kv;
    uint8_t id[32];
    char why[256];
    int rc = tf_node__resolve_hex_id(node, TF_NODE_STORE_REQUESTS, &args, "id", "request", id, why,
                                     sizeof why);
    hex[0] = '\0';
    if (rc == TF_OK)
        sodium_bin2hex(hex, 65, id, 32);
    return rc;
}

#define A "0102030400000000000000000000000000000000000000000000000000000000"
#define B "01020304f0000000000000000000000000000000000000000000000000000000"
#define C "01020304f1000000000000000000000000000000000000000000000000000000"
#define D "0102030511000000000000000000000000000000000000000000000000000000"

static void test_prefixes(void **state)
{
    (void)state;
    struct fx f;
    memset(&f, 0, sizeof f);
    snprintf(f.dir, sizeof f.dir, "/tmp/tf-hexid-XXXXXX");
    assert_non_null(mkdtemp(f.dir));
    char store_dir[96], hex[65];
    snprintf(store_dir, sizeof store_dir, "%s/store", f.dir);
    assert_ok(tf_node_store_open(store_dir, TF_NODE_STORE_CREATE, &f.node.store));
    put_id(f.node.store, A);
    put_id(f.node.store, B);
    put_id(f.node.store, D);
    assert_ok(tf_node_store_commit(f.node.store));
    /* An odd prefix whose whole bytes match a smaller key first (A). */
    assert_ok(lookup(&f.node, "01020304f", hex));
    assert_string_equal(hex, B);
    assert_ok(lookup(&f.node, "010203040", hex));
    assert_string_equal(hex, A);
    assert_ok(lookup(&f.node, "010203051", hex));
    assert_string_equal(hex, D);
    assert_rc(lookup(&f.node, "01020304a", hex), TF_E_NOT_FOUND);
    assert_rc(lookup(&f.node, "01020304", hex), TF_E_AMBIGUOUS);
    assert_ok(lookup(&f.node, B, hex));
    assert_string_equal(hex, B);
    /* Two keys under the odd prefix: ambiguous. */
    put_id(f.node.store, C);
    assert_ok(tf_node_store_commit(f.node.store));
    assert_rc(lookup(&f.node, "01020304f", hex), TF_E_AMBIGUOUS);
    assert_ok(lookup(&f.node, "01020304f1", hex));
    assert_string_equal(hex, C);
    assert_rc(lookup(&f.node, "0102030", hex), TF_E_BAD_REQUEST);
    assert_rc(lookup(&f.node, "01020304g", hex), TF_E_BAD_REQUEST);
    tf_node_store_close(f.node.store);
    char cmd[160];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", f.dir);
    assert_int_equal(system(cmd), 0);
}

int main(void)
{
    if (sodium_init() < 0)
        return 1;
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_prefixes),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
