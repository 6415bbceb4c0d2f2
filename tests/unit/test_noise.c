/* SPDX-License-Identifier: MIT */
/*
 * Noise handshake tests: the published vectors in tests/vectors/noise/ (three
 * independent implementations), then tampering, truncation, low-order keys,
 * prologue mismatch, misuse of the state machine and nonce exhaustion.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <jansson.h>
#include <sodium.h>

#include "proto/card.h"
#include "proto/identity.h"
#include "proto/link.h"
#include "proto/noise.h"

#define VECTOR_DIR TF_SOURCE_DIR "/tests/vectors/noise/"
#define KEY TF_PROTO_NOISE_KEY_LEN

/* ---- helpers --------------------------------------------------------------- */

/* Decodes the hex string field `key` of obj into a malloc'ed buffer (at least
 * one byte, so an empty field still gives a valid pointer). */
static uint8_t *hex_field(const json_t *obj, const char *key, size_t *len)
{
    const char *hex = json_string_value(json_object_get(obj, key));
    assert_non_null(hex);
    size_t hex_len = strlen(hex);
    assert_int_equal(hex_len % 2, 0);
    uint8_t *bin = malloc(hex_len / 2 + 1);
    assert_non_null(bin);
    size_t bin_len = 0;
    assert_int_equal(sodium_hex2bin(bin, hex_len / 2 + 1, hex, hex_len, NULL, &bin_len, NULL), 0);
    assert_int_equal(bin_len, hex_len / 2);
    *len = bin_len;
    return bin;
}

static void hex_key(const json_t *obj, const char *key, uint8_t out[KEY])
{
    size_t len;
    uint8_t *bin = hex_field(obj, key, &len);
    assert_int_equal(len, KEY);
    memcpy(out, bin, KEY);
    free(bin);
}

static void init_side(struct tf_proto_noise_handshake *hs, enum tf_proto_noise_pattern pattern,
                      enum tf_proto_noise_role role, const uint8_t *prologue, size_t prologue_len,
                      const uint8_t s_sk[KEY], const uint8_t e_sk[KEY], const uint8_t *rs_pk)
{
    struct tf_proto_noise_config cfg = {
        .pattern = pattern,
        .role = role,
        .prologue = prologue,
        .prologue_len = prologue_len,
        .s_sk = s_sk,
        .e_sk = e_sk,
        .rs_pk = rs_pk,
    };
    assert_int_equal(tf_proto_noise_handshake_init(hs, &cfg), TF_OK);
}

static unsigned handshake_messages(enum tf_proto_noise_pattern pattern)
{
    return pattern == TF_PROTO_NOISE_PATTERN_XX ? 3 : 2;
}

static bool all_zero(const void *p, size_t len)
{
    return sodium_is_zero(p, len) == 1;
}

/* ---- published vectors ------------------------------------------------------ */

static void run_vector(const json_t *v, enum tf_proto_noise_pattern pattern)
{
    uint8_t is[KEY], ie[KEY], rs[KEY], re[KEY], is_pk[KEY], rs_pk[KEY], irs[KEY];
    size_t ip_len, rp_len;
    hex_key(v, "init_static", is);
    hex_key(v, "init_ephemeral", ie);
    hex_key(v, "resp_static", rs);
    hex_key(v, "resp_ephemeral", re);
    assert_int_equal(crypto_scalarmult_base(is_pk, is), 0);
    assert_int_equal(crypto_scalarmult_base(rs_pk, rs), 0);
    uint8_t *ip = hex_field(v, "init_prologue", &ip_len);
    uint8_t *rp = hex_field(v, "resp_prologue", &rp_len);
    const uint8_t *init_rs = NULL;
    if (pattern == TF_PROTO_NOISE_PATTERN_IK) {
        hex_key(v, "init_remote_static", irs);
        assert_memory_equal(irs, rs_pk, KEY);
        init_rs = irs;
    }

    struct tf_proto_noise_handshake ini, res;
    init_side(&ini, pattern, TF_PROTO_NOISE_ROLE_INITIATOR, ip, ip_len, is, ie, init_rs);
    init_side(&res, pattern, TF_PROTO_NOISE_ROLE_RESPONDER, rp, rp_len, rs, re, NULL);
    struct tf_proto_noise_cipher ini_send, ini_recv, res_send, res_recv;

    const json_t *msgs = json_object_get(v, "messages");
    assert_true(json_is_array(msgs));
    size_t n_msgs = json_array_size(msgs);
    unsigned n_hs = handshake_messages(pattern);
    assert_true(n_msgs > n_hs);
    static uint8_t buf[TF_PROTO_NOISE_MSG_MAX], out[TF_PROTO_NOISE_MSG_MAX];
    for (size_t i = 0; i < n_msgs; i++) {
        const json_t *m = json_array_get(msgs, i);
        size_t pl_len, ct_len, len, out_len;
        uint8_t *pl = hex_field(m, "payload", &pl_len);
        uint8_t *ct = hex_field(m, "ciphertext", &ct_len);
        bool from_init = i % 2 == 0;
        if (i < n_hs) {
            struct tf_proto_noise_handshake *w = from_init ? &ini : &res;
            struct tf_proto_noise_handshake *r = from_init ? &res : &ini;
            assert_int_equal(tf_proto_noise_handshake_state(w), TF_PROTO_NOISE_STATE_WRITE);
            assert_int_equal(tf_proto_noise_handshake_write(w, pl, pl_len, buf, sizeof buf, &len),
                             TF_OK);
            assert_int_equal(len, ct_len);
            assert_memory_equal(buf, ct, ct_len);
            assert_int_equal(tf_proto_noise_handshake_read(r, buf, len, out, sizeof out, &out_len),
                             TF_OK);
            assert_int_equal(out_len, pl_len);
            assert_memory_equal(out, pl, pl_len);
            if (i + 1 == n_hs) {
                assert_int_equal(tf_proto_noise_handshake_state(&ini), TF_PROTO_NOISE_STATE_SPLIT);
                assert_int_equal(tf_proto_noise_handshake_state(&res), TF_PROTO_NOISE_STATE_SPLIT);
                uint8_t hi[TF_PROTO_NOISE_HASH_LEN], hr[TF_PROTO_NOISE_HASH_LEN];
                assert_int_equal(tf_proto_noise_handshake_hash(&ini, hi), TF_OK);
                assert_int_equal(tf_proto_noise_handshake_hash(&res, hr), TF_OK);
                assert_memory_equal(hi, hr, sizeof hi);
                if (json_object_get(v, "handshake_hash") != NULL) {
                    size_t hh_len;
                    uint8_t *hh = hex_field(v, "handshake_hash", &hh_len);
                    assert_int_equal(hh_len, sizeof hi);
                    assert_memory_equal(hi, hh, hh_len);
                    free(hh);
                }
                assert_memory_equal(tf_proto_noise_handshake_remote_static(&ini), rs_pk, KEY);
                assert_memory_equal(tf_proto_noise_handshake_remote_static(&res), is_pk, KEY);
                assert_int_equal(tf_proto_noise_handshake_split(&ini, &ini_send, &ini_recv), TF_OK);
                assert_int_equal(tf_proto_noise_handshake_split(&res, &res_send, &res_recv), TF_OK);
            }
        } else {
            struct tf_proto_noise_cipher *send = from_init ? &ini_send : &res_send;
            struct tf_proto_noise_cipher *recv = from_init ? &res_recv : &ini_recv;
            assert_int_equal(tf_proto_noise_cipher_encrypt(send, pl, pl_len, buf, sizeof buf, &len),
                             TF_OK);
            assert_int_equal(len, ct_len);
            assert_memory_equal(buf, ct, ct_len);
            assert_int_equal(
                tf_proto_noise_cipher_decrypt(recv, buf, len, out, sizeof out, &out_len), TF_OK);
            assert_int_equal(out_len, pl_len);
            assert_memory_equal(out, pl, pl_len);
        }
        free(pl);
        free(ct);
    }
    tf_proto_noise_handshake_deinit(&ini);
    tf_proto_noise_handshake_deinit(&res);
    tf_proto_noise_cipher_deinit(&ini_send);
    tf_proto_noise_cipher_deinit(&ini_recv);
    tf_proto_noise_cipher_deinit(&res_send);
    tf_proto_noise_cipher_deinit(&res_recv);
    free(ip);
    free(rp);
}

/* Runs every vector in the file whose protocol name ("protocol_name", or
 * "name" in noise-c's format) is one this module implements. */
static void test_vector_file(void **state)
{
    const char *file = *state;
    char path[512];
    int n = snprintf(path, sizeof path, "%s%s", VECTOR_DIR, file);
    assert_true(n > 0 && (size_t)n < sizeof path);
    json_error_t err;
    json_t *root = json_load_file(path, 0, &err);
    if (root == NULL)
        fail_msg("%s:%d: %s", path, err.line, err.text);
    const json_t *vectors = json_object_get(root, "vectors");
    assert_true(json_is_array(vectors));
    unsigned ran = 0;
    for (size_t i = 0; i < json_array_size(vectors); i++) {
        const json_t *v = json_array_get(vectors, i);
        const char *name = json_string_value(json_object_get(v, "protocol_name"));
        if (name == NULL)
            name = json_string_value(json_object_get(v, "name"));
        assert_non_null(name);
        if (strcmp(name, tf_proto_noise_protocol_name(TF_PROTO_NOISE_PATTERN_XX)) == 0)
            run_vector(v, TF_PROTO_NOISE_PATTERN_XX);
        else if (strcmp(name, tf_proto_noise_protocol_name(TF_PROTO_NOISE_PATTERN_IK)) == 0)
            run_vector(v, TF_PROTO_NOISE_PATTERN_IK);
        else
            fail_msg("%s: unexpected protocol %s", file, name);
        ran++;
    }
    assert_true(ran > 0);
    printf("[ VECTORS  ] %s: %u passed\n", file, ran);
    json_decref(root);
}

/* ---- a pair of handshakes with fixed keys ------------------------------------ */

struct pair {
    enum tf_proto_noise_pattern pattern;
    bool msg1_payload; /* XX: send a payload in message 1 anyway */
    struct tf_proto_noise_handshake ini, res;
    uint8_t is[KEY], ie[KEY], rs[KEY], re[KEY], is_pk[KEY], rs_pk[KEY];
};

static const uint8_t PROLOGUE[] = TF_PROTO_NOISE_PROLOGUE;
static const uint8_t OTHER_PROLOGUE[] = "twofold/v2/noise";

/* Fixed keys unless `random` (the tamper tests replay identical handshakes). */
static void pair_keys(struct pair *p, bool random)
{
    if (random) {
        randombytes_buf(p->is, KEY);
        randombytes_buf(p->ie, KEY);
        randombytes_buf(p->rs, KEY);
        randombytes_buf(p->re, KEY);
    } else {
        memset(p->is, 0x11, KEY);
        memset(p->ie, 0x22, KEY);
        memset(p->rs, 0x33, KEY);
        memset(p->re, 0x44, KEY);
    }
    assert_int_equal(crypto_scalarmult_base(p->is_pk, p->is), 0);
    assert_int_equal(crypto_scalarmult_base(p->rs_pk, p->rs), 0);
}

static void pair_start(struct pair *p, enum tf_proto_noise_pattern pattern, bool random,
                       const uint8_t *ini_prologue, const uint8_t *res_prologue)
{
    memset(p, 0, sizeof *p);
    p->pattern = pattern;
    pair_keys(p, random);
    bool ik = pattern == TF_PROTO_NOISE_PATTERN_IK;
    init_side(&p->ini, pattern, TF_PROTO_NOISE_ROLE_INITIATOR, ini_prologue,
              TF_PROTO_NOISE_PROLOGUE_LEN, p->is, p->ie, ik ? p->rs_pk : NULL);
    init_side(&p->res, pattern, TF_PROTO_NOISE_ROLE_RESPONDER, res_prologue,
              TF_PROTO_NOISE_PROLOGUE_LEN, p->rs, p->re, NULL);
}

static void pair_end(struct pair *p)
{
    tf_proto_noise_handshake_deinit(&p->ini);
    tf_proto_noise_handshake_deinit(&p->res);
    sodium_memzero(p, sizeof *p);
}

static struct tf_proto_noise_handshake *writer_of(struct pair *p, unsigned m)
{
    return m % 2 == 0 ? &p->ini : &p->res;
}

static struct tf_proto_noise_handshake *reader_of(struct pair *p, unsigned m)
{
    return m % 2 == 0 ? &p->res : &p->ini;
}

/* The payload of handshake message m: empty for XX message 1, as twofold
 * sends it (it is cleartext), unless p->msg1_payload; otherwise a few bytes so
 * that payload bytes are tampered with too. */
static size_t payload_of(const struct pair *p, unsigned m, uint8_t out[16])
{
    if (p->pattern == TF_PROTO_NOISE_PATTERN_XX && m == 0 && !p->msg1_payload)
        return 0;
    for (unsigned i = 0; i < 16; i++)
        out[i] = (uint8_t)(0xa0 + m * 16 + i);
    return 16;
}

/* Writes and reads handshake message m unmodified. */
static void pass_message(struct pair *p, unsigned m)
{
    static uint8_t buf[TF_PROTO_NOISE_MSG_MAX], out[TF_PROTO_NOISE_MSG_MAX];
    uint8_t pl[16];
    size_t pl_len = payload_of(p, m, pl), len, out_len;
    assert_int_equal(
        tf_proto_noise_handshake_write(writer_of(p, m), pl, pl_len, buf, sizeof buf, &len), TF_OK);
    assert_int_equal(
        tf_proto_noise_handshake_read(reader_of(p, m), buf, len, out, sizeof out, &out_len), TF_OK);
    assert_int_equal(out_len, pl_len);
    assert_memory_equal(out, pl, pl_len);
}

/* Asserts the handshake is dead and holds no secrets. */
static void assert_failed(const struct tf_proto_noise_handshake *hs)
{
    assert_int_equal(tf_proto_noise_handshake_state(hs), TF_PROTO_NOISE_STATE_FAILED);
    assert_null(tf_proto_noise_handshake_remote_static(hs));
    assert_true(all_zero(hs->ck, sizeof hs->ck));
    assert_true(all_zero(hs->cs.k, sizeof hs->cs.k));
    assert_true(all_zero(hs->s_sk, sizeof hs->s_sk));
    assert_true(all_zero(hs->e_sk, sizeof hs->e_sk));
}

/* Mutators change a handshake message in place and return false once
 * `index` is past the last mutation. */
static bool flip_low_bit(uint8_t *msg, size_t *len, size_t index)
{
    if (index >= *len)
        return false;
    msg[index] ^= 0x01;
    return true;
}

/* The top bit matters: X25519 ignores bit 255 of a public key, but the
 * transcript hash does not. */
static bool flip_high_bit(uint8_t *msg, size_t *len, size_t index)
{
    if (index >= *len)
        return false;
    msg[index] ^= 0x80;
    return true;
}

static bool truncate_to(uint8_t *msg, size_t *len, size_t index)
{
    (void)msg;
    if (index >= *len)
        return false;
    *len = index;
    return true;
}

/* For every mutation of handshake message m, replays the handshake up to m,
 * mutates m and checks that the handshake fails.  XX message 1 has no MAC
 * (it is only hashed), so its reader cannot notice; the initiator then fails
 * reading message 2.  Returns the number of mutations tried. */
static unsigned tamper_message(enum tf_proto_noise_pattern pattern, bool msg1_payload, unsigned m,
                               bool (*mutate)(uint8_t *msg, size_t *len, size_t index))
{
    static uint8_t buf[TF_PROTO_NOISE_MSG_MAX], out[TF_PROTO_NOISE_MSG_MAX];
    unsigned tried = 0;
    for (size_t index = 0;; index++) {
        struct pair p;
        pair_start(&p, pattern, false, PROLOGUE, PROLOGUE);
        p.msg1_payload = msg1_payload;
        for (unsigned i = 0; i < m; i++)
            pass_message(&p, i);
        uint8_t pl[16];
        size_t pl_len = payload_of(&p, m, pl), len, out_len;
        assert_int_equal(
            tf_proto_noise_handshake_write(writer_of(&p, m), pl, pl_len, buf, sizeof buf, &len),
            TF_OK);
        if (!mutate(buf, &len, index)) {
            pair_end(&p);
            break;
        }
        tried++;
        struct tf_proto_noise_handshake *r = reader_of(&p, m);
        int rc = tf_proto_noise_handshake_read(r, buf, len, out, sizeof out, &out_len);
        if (pattern == TF_PROTO_NOISE_PATTERN_XX && m == 0 && rc == TF_OK) {
            /* Only the payload or e changed: caught by the next MAC. */
            assert_int_equal(tf_proto_noise_handshake_write(&p.res, NULL, 0, buf, sizeof buf, &len),
                             TF_OK);
            rc = tf_proto_noise_handshake_read(&p.ini, buf, len, out, sizeof out, &out_len);
            r = &p.ini;
        }
        if (rc != TF_E_DECRYPT && rc != TF_E_TRUNCATED)
            fail_msg("message %u mutation %zu: rc %d", m + 1, index, rc);
        assert_int_equal(out_len, 0);
        assert_failed(r);
        pair_end(&p);
    }
    return tried;
}

static void tamper_all(bool (*mutate)(uint8_t *msg, size_t *len, size_t index), const char *what)
{
    const struct {
        enum tf_proto_noise_pattern pattern;
        bool msg1_payload;
    } cases[] = {
        {TF_PROTO_NOISE_PATTERN_XX, false},
        {TF_PROTO_NOISE_PATTERN_XX, true},
        {TF_PROTO_NOISE_PATTERN_IK, false},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        for (unsigned m = 0; m < handshake_messages(cases[i].pattern); m++) {
            unsigned n = tamper_message(cases[i].pattern, cases[i].msg1_payload, m, mutate);
            assert_true(n >= KEY);
            printf("[ TAMPER   ] %s%s message %u: %u %s rejected\n",
                   tf_proto_noise_protocol_name(cases[i].pattern),
                   cases[i].msg1_payload ? " (payload in msg 1)" : "", m + 1, n, what);
        }
    }
}

static void test_flip_every_byte(void **state)
{
    (void)state;
    tamper_all(flip_low_bit, "bit-0 flips");
    tamper_all(flip_high_bit, "bit-7 flips");
}

static void test_truncated(void **state)
{
    (void)state;
    tamper_all(truncate_to, "truncations");

    /* The shortest lengths give TF_E_TRUNCATED exactly. */
    static uint8_t buf[TF_PROTO_NOISE_MSG_MAX], out[TF_PROTO_NOISE_MSG_MAX];
    size_t len, out_len;
    struct pair p;
    pair_start(&p, TF_PROTO_NOISE_PATTERN_XX, false, PROLOGUE, PROLOGUE);
    assert_int_equal(tf_proto_noise_handshake_write(&p.ini, NULL, 0, buf, sizeof buf, &len), TF_OK);
    assert_int_equal(len, KEY);
    assert_int_equal(tf_proto_noise_handshake_read(&p.res, buf, KEY - 1, out, sizeof out, &out_len),
                     TF_E_TRUNCATED);
    assert_failed(&p.res);
    pair_end(&p);

    pair_start(&p, TF_PROTO_NOISE_PATTERN_XX, false, PROLOGUE, PROLOGUE);
    pass_message(&p, 0);
    assert_int_equal(tf_proto_noise_handshake_write(&p.res, NULL, 0, buf, sizeof buf, &len), TF_OK);
    assert_int_equal(len, KEY + KEY + 16 + 16);
    assert_int_equal(tf_proto_noise_handshake_read(&p.ini, buf, len - 1, out, sizeof out, &out_len),
                     TF_E_TRUNCATED);
    assert_failed(&p.ini);
    pair_end(&p);

    /* A message longer than Noise allows. */
    pair_start(&p, TF_PROTO_NOISE_PATTERN_XX, false, PROLOGUE, PROLOGUE);
    static uint8_t big[TF_PROTO_NOISE_MSG_MAX + 1];
    assert_int_equal(
        tf_proto_noise_handshake_read(&p.res, big, sizeof big, out, sizeof out, &out_len),
        TF_E_TOO_LONG);
    assert_failed(&p.res);
    pair_end(&p);
}

static void test_wrong_prologue(void **state)
{
    (void)state;
    static uint8_t buf[TF_PROTO_NOISE_MSG_MAX], out[TF_PROTO_NOISE_MSG_MAX];
    size_t len, out_len;
    for (int side = 0; side < 2; side++) {
        const uint8_t *ip = side == 0 ? OTHER_PROLOGUE : PROLOGUE;
        const uint8_t *rp = side == 0 ? PROLOGUE : OTHER_PROLOGUE;
        struct pair p;

        /* XX: message 1 is not authenticated; the initiator fails on 2. */
        pair_start(&p, TF_PROTO_NOISE_PATTERN_XX, true, ip, rp);
        pass_message(&p, 0);
        assert_int_equal(tf_proto_noise_handshake_write(&p.res, NULL, 0, buf, sizeof buf, &len),
                         TF_OK);
        assert_int_equal(tf_proto_noise_handshake_read(&p.ini, buf, len, out, sizeof out, &out_len),
                         TF_E_DECRYPT);
        assert_failed(&p.ini);
        pair_end(&p);

        /* IK: the responder fails on message 1. */
        pair_start(&p, TF_PROTO_NOISE_PATTERN_IK, true, ip, rp);
        assert_int_equal(tf_proto_noise_handshake_write(&p.ini, NULL, 0, buf, sizeof buf, &len),
                         TF_OK);
        assert_int_equal(tf_proto_noise_handshake_read(&p.res, buf, len, out, sizeof out, &out_len),
                         TF_E_DECRYPT);
        assert_failed(&p.res);
        pair_end(&p);
    }
}

/* Points of order 1, 2, 4 and 8, with and without bit 255 set, and
 * non-canonical encodings (p-1, p, p+1, 2^255-1) of small-order points. */
static const char *const LOW_ORDER[] = {
    "0000000000000000000000000000000000000000000000000000000000000000",
    "0100000000000000000000000000000000000000000000000000000000000000",
    "e0eb7a7c3b41b8ae1656e3faf19fc46ada098deb9c32b1fd866205165f49b800",
    "5f9c95bca3508c24b1d0b1559c83ef5b04445cc4581c8e86d8224eddd09f1157",
    "ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f",
    "edffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f",
    "eeffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f",
    "0000000000000000000000000000000000000000000000000000000000000080",
    "0100000000000000000000000000000000000000000000000000000000000080",
    "e0eb7a7c3b41b8ae1656e3faf19fc46ada098deb9c32b1fd866205165f49b880",
    "5f9c95bca3508c24b1d0b1559c83ef5b04445cc4581c8e86d8224eddd09f11d7",
    "edffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff",
};

static void low_order(size_t i, uint8_t out[KEY])
{
    assert_int_equal(sodium_hex2bin(out, KEY, LOW_ORDER[i], 2 * KEY, NULL, NULL, NULL), 0);
}

static void test_low_order(void **state)
{
    (void)state;
    static uint8_t buf[TF_PROTO_NOISE_MSG_MAX], out[TF_PROTO_NOISE_MSG_MAX];
    size_t len, out_len;
    for (size_t i = 0; i < sizeof LOW_ORDER / sizeof LOW_ORDER[0]; i++) {
        uint8_t bad[KEY];
        low_order(i, bad);
        struct pair p;

        /* XX message 1: the responder accepts the bytes (no DH yet) and fails
         * at its first DH (ee), when writing message 2. */
        pair_start(&p, TF_PROTO_NOISE_PATTERN_XX, true, PROLOGUE, PROLOGUE);
        assert_int_equal(tf_proto_noise_handshake_write(&p.ini, NULL, 0, buf, sizeof buf, &len),
                         TF_OK);
        memcpy(buf, bad, KEY);
        assert_int_equal(tf_proto_noise_handshake_read(&p.res, buf, len, out, sizeof out, &out_len),
                         TF_OK);
        assert_int_equal(tf_proto_noise_handshake_write(&p.res, NULL, 0, buf, sizeof buf, &len),
                         TF_E_LOW_ORDER);
        assert_int_equal(len, 0);
        assert_failed(&p.res);
        pair_end(&p);

        /* XX message 2: the initiator fails at ee while reading. */
        pair_start(&p, TF_PROTO_NOISE_PATTERN_XX, true, PROLOGUE, PROLOGUE);
        pass_message(&p, 0);
        assert_int_equal(tf_proto_noise_handshake_write(&p.res, NULL, 0, buf, sizeof buf, &len),
                         TF_OK);
        memcpy(buf, bad, KEY);
        assert_int_equal(tf_proto_noise_handshake_read(&p.ini, buf, len, out, sizeof out, &out_len),
                         TF_E_LOW_ORDER);
        assert_failed(&p.ini);
        pair_end(&p);

        /* IK message 1: the responder fails at es while reading. */
        pair_start(&p, TF_PROTO_NOISE_PATTERN_IK, true, PROLOGUE, PROLOGUE);
        assert_int_equal(tf_proto_noise_handshake_write(&p.ini, NULL, 0, buf, sizeof buf, &len),
                         TF_OK);
        memcpy(buf, bad, KEY);
        assert_int_equal(tf_proto_noise_handshake_read(&p.res, buf, len, out, sizeof out, &out_len),
                         TF_E_LOW_ORDER);
        assert_failed(&p.res);
        pair_end(&p);

        /* IK with a low-order pre-known responder key: the initiator fails at
         * es while writing message 1. */
        struct tf_proto_noise_handshake hs;
        uint8_t s[KEY], e[KEY];
        randombytes_buf(s, KEY);
        randombytes_buf(e, KEY);
        init_side(&hs, TF_PROTO_NOISE_PATTERN_IK, TF_PROTO_NOISE_ROLE_INITIATOR, NULL, 0, s, e,
                  bad);
        assert_int_equal(tf_proto_noise_handshake_write(&hs, NULL, 0, buf, sizeof buf, &len),
                         TF_E_LOW_ORDER);
        assert_failed(&hs);
        tf_proto_noise_handshake_deinit(&hs);
    }
}

/* Runs a full handshake, checking the remote static keys along the way, and
 * splits both sides. */
static void handshake(struct pair *p, struct tf_proto_noise_cipher *ini_send,
                      struct tf_proto_noise_cipher *ini_recv,
                      struct tf_proto_noise_cipher *res_send,
                      struct tf_proto_noise_cipher *res_recv)
{
    bool xx = p->pattern == TF_PROTO_NOISE_PATTERN_XX;
    assert_null(tf_proto_noise_handshake_remote_static(&p->res));
    if (xx)
        assert_null(tf_proto_noise_handshake_remote_static(&p->ini));
    else
        assert_memory_equal(tf_proto_noise_handshake_remote_static(&p->ini), p->rs_pk, KEY);
    for (unsigned m = 0; m < handshake_messages(p->pattern); m++) {
        pass_message(p, m);
        /* XX: the initiator learns rs from message 2, the responder learns
         * the initiator's from message 3.  IK: the responder from message 1. */
        if (m == 1)
            assert_memory_equal(tf_proto_noise_handshake_remote_static(&p->ini), p->rs_pk, KEY);
        if (xx && m < 2)
            assert_null(tf_proto_noise_handshake_remote_static(&p->res));
        else
            assert_memory_equal(tf_proto_noise_handshake_remote_static(&p->res), p->is_pk, KEY);
    }
    uint8_t hi[TF_PROTO_NOISE_HASH_LEN], hr[TF_PROTO_NOISE_HASH_LEN];
    assert_int_equal(tf_proto_noise_handshake_hash(&p->ini, hi), TF_OK);
    assert_int_equal(tf_proto_noise_handshake_hash(&p->res, hr), TF_OK);
    assert_memory_equal(hi, hr, sizeof hi);
    assert_int_equal(tf_proto_noise_handshake_split(&p->ini, ini_send, ini_recv), TF_OK);
    assert_int_equal(tf_proto_noise_handshake_split(&p->res, res_send, res_recv), TF_OK);
    assert_int_equal(tf_proto_noise_handshake_state(&p->ini), TF_PROTO_NOISE_STATE_DONE);
    /* Split wiped the handshake secrets but keeps h and rs. */
    assert_true(all_zero(p->ini.ck, sizeof p->ini.ck));
    assert_true(all_zero(p->ini.s_sk, sizeof p->ini.s_sk));
    assert_true(all_zero(p->ini.e_sk, sizeof p->ini.e_sk));
    assert_true(all_zero(p->res.cs.k, sizeof p->res.cs.k));
    assert_int_equal(tf_proto_noise_handshake_hash(&p->ini, hi), TF_OK);
    assert_memory_equal(hi, hr, sizeof hi);
    assert_memory_equal(tf_proto_noise_handshake_remote_static(&p->ini), p->rs_pk, KEY);
    assert_memory_equal(tf_proto_noise_handshake_remote_static(&p->res), p->is_pk, KEY);
}

static void transport_one(struct tf_proto_noise_cipher *send, struct tf_proto_noise_cipher *recv,
                          size_t len)
{
    static uint8_t plain[TF_PROTO_NOISE_PLAINTEXT_MAX], msg[TF_PROTO_NOISE_MSG_MAX],
        out[TF_PROTO_NOISE_MSG_MAX];
    randombytes_buf(plain, len);
    size_t msg_len, out_len;
    assert_int_equal(tf_proto_noise_cipher_encrypt(send, plain, len, msg, sizeof msg, &msg_len),
                     TF_OK);
    assert_int_equal(msg_len, len + TF_PROTO_NOISE_TAG_LEN);
    assert_int_equal(tf_proto_noise_cipher_decrypt(recv, msg, msg_len, out, sizeof out, &out_len),
                     TF_OK);
    assert_int_equal(out_len, len);
    assert_memory_equal(out, plain, len);
}

static void test_round_trip(void **state)
{
    (void)state;
    const enum tf_proto_noise_pattern patterns[] = {TF_PROTO_NOISE_PATTERN_XX,
                                                    TF_PROTO_NOISE_PATTERN_IK};
    for (size_t i = 0; i < sizeof patterns / sizeof patterns[0]; i++) {
        for (int round = 0; round < 8; round++) {
            struct pair p;
            struct tf_proto_noise_cipher is, ir, rsend, rrecv;
            pair_start(&p, patterns[i], true, PROLOGUE, PROLOGUE);
            handshake(&p, &is, &ir, &rsend, &rrecv);
            const size_t sizes[] = {0, 1, 100, TF_PROTO_NOISE_PLAINTEXT_MAX};
            for (size_t k = 0; k < sizeof sizes / sizeof sizes[0]; k++) {
                transport_one(&is, &rrecv, sizes[k]);
                transport_one(&rsend, &ir, sizes[k]);
                transport_one(&rsend, &ir, sizes[k]);
            }
            assert_int_equal(is.n, 4);
            assert_int_equal(rrecv.n, 4);
            assert_int_equal(rsend.n, 8);
            /* Directions use different keys. */
            assert_true(sodium_memcmp(is.k, ir.k, KEY) != 0);
            pair_end(&p);
            tf_proto_noise_cipher_deinit(&is);
            tf_proto_noise_cipher_deinit(&ir);
            tf_proto_noise_cipher_deinit(&rsend);
            tf_proto_noise_cipher_deinit(&rrecv);
            assert_true(all_zero(&is, sizeof is));
        }
    }
}

/* In-place encryption and decryption, as the header allows. */
static void test_in_place(void **state)
{
    (void)state;
    struct pair p;
    struct tf_proto_noise_cipher is, ir, rs, rr;
    pair_start(&p, TF_PROTO_NOISE_PATTERN_XX, true, PROLOGUE, PROLOGUE);
    handshake(&p, &is, &ir, &rs, &rr);
    uint8_t buf[64 + TF_PROTO_NOISE_TAG_LEN], plain[64];
    randombytes_buf(plain, sizeof plain);
    memcpy(buf, plain, sizeof plain);
    size_t len, out_len;
    assert_int_equal(tf_proto_noise_cipher_encrypt(&is, buf, sizeof plain, buf, sizeof buf, &len),
                     TF_OK);
    assert_int_equal(tf_proto_noise_cipher_decrypt(&rr, buf, len, buf, sizeof buf, &out_len),
                     TF_OK);
    assert_int_equal(out_len, sizeof plain);
    assert_memory_equal(buf, plain, sizeof plain);
    pair_end(&p);
    tf_proto_noise_cipher_deinit(&is);
    tf_proto_noise_cipher_deinit(&ir);
    tf_proto_noise_cipher_deinit(&rs);
    tf_proto_noise_cipher_deinit(&rr);
}

static void test_transport_tamper(void **state)
{
    (void)state;
    struct pair p;
    struct tf_proto_noise_cipher is, ir, rs, rr;
    pair_start(&p, TF_PROTO_NOISE_PATTERN_XX, true, PROLOGUE, PROLOGUE);
    handshake(&p, &is, &ir, &rs, &rr);
    transport_one(&is, &rr, 10); /* advance the counters first */

    uint8_t plain[40], msg[40 + TF_PROTO_NOISE_TAG_LEN], bad[sizeof msg], out[sizeof msg];
    randombytes_buf(plain, sizeof plain);
    size_t len, out_len;
    assert_int_equal(tf_proto_noise_cipher_encrypt(&is, plain, sizeof plain, msg, sizeof msg, &len),
                     TF_OK);
    for (size_t j = 0; j < len; j++) {
        for (unsigned bit = 0; bit < 8; bit++) {
            memcpy(bad, msg, len);
            bad[j] ^= (uint8_t)(1u << bit);
            assert_int_equal(
                tf_proto_noise_cipher_decrypt(&rr, bad, len, out, sizeof out, &out_len),
                TF_E_DECRYPT);
            assert_int_equal(out_len, 0);
            assert_true(all_zero(out, sizeof plain));
            assert_int_equal(rr.n, 1); /* a failed decryption does not advance */
        }
    }
    for (size_t l = 0; l < len; l++) {
        assert_int_equal(tf_proto_noise_cipher_decrypt(&rr, msg, l, out, sizeof out, &out_len),
                         l < TF_PROTO_NOISE_TAG_LEN ? TF_E_TRUNCATED : TF_E_DECRYPT);
    }
    /* The wrong direction's key does not open it. */
    assert_int_equal(tf_proto_noise_cipher_decrypt(&ir, msg, len, out, sizeof out, &out_len),
                     TF_E_DECRYPT);
    /* The genuine message still decrypts, exactly once (no replay). */
    assert_int_equal(tf_proto_noise_cipher_decrypt(&rr, msg, len, out, sizeof out, &out_len),
                     TF_OK);
    assert_memory_equal(out, plain, sizeof plain);
    assert_int_equal(tf_proto_noise_cipher_decrypt(&rr, msg, len, out, sizeof out, &out_len),
                     TF_E_DECRYPT);
    /* Sizes. */
    static uint8_t big[TF_PROTO_NOISE_MSG_MAX + 1];
    assert_int_equal(tf_proto_noise_cipher_decrypt(&rr, big, sizeof big, big, sizeof big, &out_len),
                     TF_E_TOO_LONG);
    assert_int_equal(tf_proto_noise_cipher_encrypt(&is, big, TF_PROTO_NOISE_PLAINTEXT_MAX + 1, big,
                                                   sizeof big, &len),
                     TF_E_TOO_LONG);
    assert_int_equal(
        tf_proto_noise_cipher_encrypt(&is, plain, sizeof plain, msg, sizeof msg - 1, &len),
        TF_E_INVALID_ARG);
    assert_int_equal(is.n, 2);
    pair_end(&p);
    tf_proto_noise_cipher_deinit(&is);
    tf_proto_noise_cipher_deinit(&ir);
    tf_proto_noise_cipher_deinit(&rs);
    tf_proto_noise_cipher_deinit(&rr);
}

static void test_nonce_exhaustion(void **state)
{
    (void)state;
    struct pair p;
    struct tf_proto_noise_cipher is, ir, rs, rr;
    pair_start(&p, TF_PROTO_NOISE_PATTERN_XX, true, PROLOGUE, PROLOGUE);
    handshake(&p, &is, &ir, &rs, &rr);
    /* Test-only: jump to the last usable nonce, 2^64 - 2. */
    is.n = UINT64_MAX - 1;
    rr.n = UINT64_MAX - 1;
    transport_one(&is, &rr, 5);
    assert_int_equal(is.n, UINT64_MAX);
    uint8_t plain[5] = {0}, msg[5 + TF_PROTO_NOISE_TAG_LEN];
    size_t len;
    assert_int_equal(tf_proto_noise_cipher_encrypt(&is, plain, sizeof plain, msg, sizeof msg, &len),
                     TF_E_NONCE_EXHAUSTED);
    assert_int_equal(is.n, UINT64_MAX);
    memset(msg, 0, sizeof msg);
    assert_int_equal(tf_proto_noise_cipher_decrypt(&rr, msg, sizeof msg, plain, sizeof plain, &len),
                     TF_E_NONCE_EXHAUSTED);
    pair_end(&p);
    tf_proto_noise_cipher_deinit(&is);
    tf_proto_noise_cipher_deinit(&ir);
    tf_proto_noise_cipher_deinit(&rs);
    tf_proto_noise_cipher_deinit(&rr);
}

static void test_state_misuse(void **state)
{
    (void)state;
    static uint8_t buf[TF_PROTO_NOISE_MSG_MAX], out[TF_PROTO_NOISE_MSG_MAX];
    size_t len, out_len;
    uint8_t s[KEY], e[KEY], h[TF_PROTO_NOISE_HASH_LEN];
    randombytes_buf(s, KEY);
    randombytes_buf(e, KEY);
    struct tf_proto_noise_handshake hs;
    struct tf_proto_noise_cipher c1, c2;
    memset(&c1, 0x5a, sizeof c1);

    /* Bad configurations. */
    struct tf_proto_noise_config cfg = {.pattern = TF_PROTO_NOISE_PATTERN_XX,
                                        .role = TF_PROTO_NOISE_ROLE_INITIATOR,
                                        .s_sk = s,
                                        .e_sk = e};
    cfg.s_sk = NULL;
    assert_int_equal(tf_proto_noise_handshake_init(&hs, &cfg), TF_E_INVALID_ARG);
    assert_int_equal(tf_proto_noise_handshake_state(&hs), TF_PROTO_NOISE_STATE_NONE);
    cfg.s_sk = s;
    cfg.e_sk = NULL;
    assert_int_equal(tf_proto_noise_handshake_init(&hs, &cfg), TF_E_INVALID_ARG);
    cfg.e_sk = e;
    cfg.rs_pk = s; /* XX takes no pre-known key */
    assert_int_equal(tf_proto_noise_handshake_init(&hs, &cfg), TF_E_INVALID_ARG);
    cfg.rs_pk = NULL;
    cfg.pattern = TF_PROTO_NOISE_PATTERN_IK; /* IK initiator needs one */
    assert_int_equal(tf_proto_noise_handshake_init(&hs, &cfg), TF_E_INVALID_ARG);
    cfg.pattern = TF_PROTO_NOISE_PATTERN_XX;
    cfg.prologue_len = 3; /* with a NULL prologue */
    assert_int_equal(tf_proto_noise_handshake_init(&hs, &cfg), TF_E_INVALID_ARG);
    assert_true(all_zero(&hs, sizeof hs));
    cfg.prologue_len = 0;

    /* Calls out of turn leave the state unchanged. */
    assert_int_equal(tf_proto_noise_handshake_init(&hs, &cfg), TF_OK);
    assert_int_equal(tf_proto_noise_handshake_state(&hs), TF_PROTO_NOISE_STATE_WRITE);
    assert_int_equal(tf_proto_noise_handshake_read(&hs, buf, KEY, out, sizeof out, &out_len),
                     TF_E_BAD_STATE);
    assert_int_equal(tf_proto_noise_handshake_split(&hs, &c1, &c2), TF_E_BAD_STATE);
    assert_int_equal(c1.n, 0x5a5a5a5a5a5a5a5aULL); /* untouched */
    assert_int_equal(tf_proto_noise_handshake_hash(&hs, h), TF_E_BAD_STATE);
    /* Output too small or too long: refused, state unchanged. */
    assert_int_equal(tf_proto_noise_handshake_write(&hs, NULL, 0, buf, KEY - 1, &len),
                     TF_E_INVALID_ARG);
    assert_int_equal(tf_proto_noise_handshake_write(&hs, buf, TF_PROTO_NOISE_MSG_MAX - KEY + 1,
                                                    buf + KEY, sizeof buf - KEY, &len),
                     TF_E_TOO_LONG);
    assert_int_equal(tf_proto_noise_handshake_state(&hs), TF_PROTO_NOISE_STATE_WRITE);
    /* The largest possible message 1 is accepted. */
    static uint8_t big[TF_PROTO_NOISE_MSG_MAX];
    assert_int_equal(tf_proto_noise_handshake_write(&hs, big, TF_PROTO_NOISE_MSG_MAX - KEY, buf,
                                                    sizeof buf, &len),
                     TF_OK);
    assert_int_equal(len, TF_PROTO_NOISE_MSG_MAX);
    assert_int_equal(tf_proto_noise_handshake_state(&hs), TF_PROTO_NOISE_STATE_READ);
    assert_int_equal(tf_proto_noise_handshake_write(&hs, NULL, 0, buf, sizeof buf, &len),
                     TF_E_BAD_STATE);
    assert_int_equal(tf_proto_noise_handshake_state(&hs), TF_PROTO_NOISE_STATE_READ);

    /* A failed handshake refuses everything. */
    assert_int_equal(tf_proto_noise_handshake_read(&hs, buf, 3, out, sizeof out, &out_len),
                     TF_E_TRUNCATED);
    assert_failed(&hs);
    assert_int_equal(tf_proto_noise_handshake_read(&hs, buf, 100, out, sizeof out, &out_len),
                     TF_E_BAD_STATE);
    assert_int_equal(tf_proto_noise_handshake_write(&hs, NULL, 0, buf, sizeof buf, &len),
                     TF_E_BAD_STATE);
    assert_int_equal(tf_proto_noise_handshake_split(&hs, &c1, &c2), TF_E_BAD_STATE);
    tf_proto_noise_handshake_deinit(&hs);
    assert_int_equal(tf_proto_noise_handshake_state(&hs), TF_PROTO_NOISE_STATE_NONE);
    assert_true(all_zero(&hs, sizeof hs));
    tf_proto_noise_handshake_deinit(&hs); /* idempotent */
    tf_proto_noise_handshake_deinit(NULL);

    /* A zeroed cipher state has no key. */
    struct tf_proto_noise_cipher none;
    memset(&none, 0, sizeof none);
    assert_int_equal(tf_proto_noise_cipher_encrypt(&none, s, KEY, buf, sizeof buf, &len),
                     TF_E_INVALID_ARG);
    assert_int_equal(tf_proto_noise_cipher_decrypt(&none, buf, KEY, out, sizeof out, &out_len),
                     TF_E_INVALID_ARG);

    /* After split: no more handshake messages, no second split. */
    struct pair p;
    struct tf_proto_noise_cipher is, ir, rs, rr;
    pair_start(&p, TF_PROTO_NOISE_PATTERN_XX, true, PROLOGUE, PROLOGUE);
    handshake(&p, &is, &ir, &rs, &rr);
    assert_int_equal(tf_proto_noise_handshake_write(&p.ini, NULL, 0, buf, sizeof buf, &len),
                     TF_E_BAD_STATE);
    assert_int_equal(tf_proto_noise_handshake_split(&p.ini, &c1, &c2), TF_E_BAD_STATE);
    pair_end(&p);
    tf_proto_noise_cipher_deinit(&is);
    tf_proto_noise_cipher_deinit(&ir);
    tf_proto_noise_cipher_deinit(&rs);
    tf_proto_noise_cipher_deinit(&rr);
    sodium_memzero(s, sizeof s);
    sodium_memzero(e, sizeof e);
}

static void test_names(void **state)
{
    (void)state;
    assert_int_equal(TF_PROTO_NOISE_PROLOGUE_LEN, 16);
    assert_string_equal(tf_proto_noise_protocol_name(TF_PROTO_NOISE_PATTERN_XX),
                        "Noise_XX_25519_ChaChaPoly_SHA256");
    assert_string_equal(tf_proto_noise_protocol_name(TF_PROTO_NOISE_PATTERN_IK),
                        "Noise_IK_25519_ChaChaPoly_SHA256");
    assert_string_equal(tf_proto_noise_state_name(TF_PROTO_NOISE_STATE_SPLIT), "split");
    assert_string_equal(tf_proto_noise_state_name(TF_PROTO_NOISE_STATE_FAILED), "failed");
}

/* A static public key passed in (the node computes it once) gives the
 * same handshake as one computed from the secret key. */
static void test_static_pk_given(void **state)
{
    (void)state;
    uint8_t s[KEY], e[KEY], pk[KEY], out1[256], out2[256];
    size_t n1, n2;
    memset(s, 0x33, KEY);
    memset(e, 0x44, KEY);
    assert_int_equal(crypto_scalarmult_base(pk, s), 0);
    struct tf_proto_noise_handshake a, b;
    struct tf_proto_noise_config cfg = {
        .pattern = TF_PROTO_NOISE_PATTERN_XX,
        .role = TF_PROTO_NOISE_ROLE_INITIATOR,
        .prologue = PROLOGUE,
        .prologue_len = TF_PROTO_NOISE_PROLOGUE_LEN,
        .s_sk = s,
        .e_sk = e,
    };
    assert_int_equal(tf_proto_noise_handshake_init(&a, &cfg), TF_OK);
    cfg.s_pk = pk;
    assert_int_equal(tf_proto_noise_handshake_init(&b, &cfg), TF_OK);
    assert_memory_equal(a.s_pk, b.s_pk, KEY);
    assert_int_equal(tf_proto_noise_handshake_write(&a, NULL, 0, out1, sizeof out1, &n1), TF_OK);
    assert_int_equal(tf_proto_noise_handshake_write(&b, NULL, 0, out2, sizeof out2, &n2), TF_OK);
    assert_int_equal(n1, n2);
    assert_memory_equal(out1, out2, n1);
    tf_proto_noise_handshake_deinit(&a);
    tf_proto_noise_handshake_deinit(&b);
}

/* A signed card with name and n_addrs addresses of addr_len bytes. */
static void make_card(const char *name, size_t n_addrs, size_t addr_len, struct tf_proto_buf *out)
{
    static char addrs[TF_PROTO_CARD_ADDRS_MAX][TF_PROTO_CARD_ADDR_MAX + 1];
    uint8_t seed[TF_PROTO_SEED_LEN];
    struct tf_proto_identity id;
    struct tf_proto_card c;
    memset(seed, (int)n_addrs + 1, sizeof seed);
    assert_int_equal(tf_proto_identity_from_seed(&id, seed), TF_OK);
    memset(&c, 0, sizeof c);
    memcpy(c.sign_pk, id.sign_pk, TF_PROTO_KEY_LEN);
    memcpy(c.noise_pk, id.noise_pk, TF_PROTO_KEY_LEN);
    memcpy(c.box_pk, id.box_pk, TF_PROTO_KEY_LEN);
    c.name = (struct tf_proto_bytes){(const uint8_t *)name, strlen(name)};
    for (size_t i = 0; i < n_addrs; i++) {
        /* "h<i>xxxx...:9" of addr_len bytes */
        snprintf(addrs[i], sizeof addrs[i], "h%zu%0*d:9", i, (int)(addr_len - 4), 0);
        c.addrs[i] = (struct tf_proto_bytes){(const uint8_t *)addrs[i], strlen(addrs[i])};
    }
    c.n_addrs = n_addrs;
    c.issued = 1700000000;
    c.seq = 1;
    assert_int_equal(tf_proto_card_sign(&id, &c, out), TF_OK);
    tf_proto_identity_deinit(&id);
}

/* Handshake payloads: a small card and the largest one give messages 2 and
 * 3 of the same length, the reader finds the card in either, and rejects
 * non-zero padding; an unpadded card (an older peer) is still read. */
static void test_hs_payload_padding(void **state)
{
    (void)state;
    struct tf_proto_buf small, big;
    make_card("A", 1, 14, &small);
    char name[TF_PROTO_CARD_NAME_MAX + 1];
    memset(name, 'n', TF_PROTO_CARD_NAME_MAX);
    name[TF_PROTO_CARD_NAME_MAX] = '\0';
    make_card(name, TF_PROTO_CARD_ADDRS_MAX, 100, &big);
    assert_true(big.len > small.len + 700);
    size_t msg_len[2][2];
    for (int k = 0; k < 2; k++) {
        const struct tf_proto_buf *card = k == 0 ? &small : &big;
        static uint8_t padded[TF_PROTO_LINK_HS_PAYLOAD_LEN], got[TF_PROTO_NOISE_MSG_MAX];
        static uint8_t msg[TF_PROTO_NOISE_MSG_MAX];
        assert_int_equal(tf_proto_link_hs_payload_pad(card->data, card->len, padded), TF_OK);
        struct pair p;
        pair_start(&p, TF_PROTO_NOISE_PATTERN_XX, true, PROLOGUE, PROLOGUE);
        size_t n, plen, card_len;
        assert_int_equal(tf_proto_noise_handshake_write(&p.ini, NULL, 0, msg, sizeof msg, &n),
                         TF_OK);
        assert_int_equal(tf_proto_noise_handshake_read(&p.res, msg, n, got, sizeof got, &plen),
                         TF_OK);
        for (int m = 0; m < 2; m++) {
            struct tf_proto_noise_handshake *w = m == 0 ? &p.res : &p.ini;
            struct tf_proto_noise_handshake *r = m == 0 ? &p.ini : &p.res;
            assert_int_equal(
                tf_proto_noise_handshake_write(w, padded, sizeof padded, msg, sizeof msg, &n),
                TF_OK);
            msg_len[k][m] = n;
            assert_int_equal(tf_proto_noise_handshake_read(r, msg, n, got, sizeof got, &plen),
                             TF_OK);
            assert_int_equal(plen, TF_PROTO_LINK_HS_PAYLOAD_LEN);
            assert_int_equal(tf_proto_link_hs_payload_card(got, plen, &card_len), TF_OK);
            assert_int_equal(card_len, card->len);
            struct tf_proto_card c;
            assert_int_equal(tf_proto_card_verify(got, card_len, &c), TF_OK);
        }
        pair_end(&p);
        /* Unpadded: card_len is the whole payload. */
        assert_int_equal(tf_proto_link_hs_payload_card(card->data, card->len, &card_len), TF_OK);
        assert_int_equal(card_len, card->len);
        /* Any non-zero padding byte is refused, wherever it is. */
        size_t spots[] = {card->len, card->len + 1, TF_PROTO_LINK_HS_PAYLOAD_LEN - 1};
        for (size_t i = 0; i < sizeof spots / sizeof spots[0]; i++) {
            padded[spots[i]] = 0x01;
            assert_int_equal(tf_proto_link_hs_payload_card(padded, sizeof padded, &card_len),
                             TF_E_TRAILING);
            padded[spots[i]] = 0;
        }
        /* A payload that does not start with a signed statement. */
        assert_int_not_equal(
            tf_proto_link_hs_payload_card(padded + 1, sizeof padded - 1, &card_len), TF_OK);
    }
    /* The same length for both cards: the card's size does not show. */
    assert_int_equal(msg_len[0][0], msg_len[1][0]);
    assert_int_equal(msg_len[0][1], msg_len[1][1]);
    /* Message 2: e, s (48), payload + tag; message 3: s (48), payload + tag. */
    assert_int_equal(msg_len[0][0], 32 + 48 + TF_PROTO_LINK_HS_PAYLOAD_LEN + 16);
    assert_int_equal(msg_len[0][1], 48 + TF_PROTO_LINK_HS_PAYLOAD_LEN + 16);
    /* A card longer than the padded size cannot be padded. */
    static uint8_t out[TF_PROTO_LINK_HS_PAYLOAD_LEN], in[TF_PROTO_LINK_HS_PAYLOAD_LEN + 1];
    assert_int_equal(tf_proto_link_hs_payload_pad(in, sizeof in, out), TF_E_TOO_LONG);
    tf_proto_buf_free(&small);
    tf_proto_buf_free(&big);
}

int main(void)
{
    if (sodium_init() < 0)
        return 1;
    const struct CMUnitTest tests[] = {
        {"vectors_noise_c_basic_xx", test_vector_file, NULL, NULL, (void *)"noise-c-basic-xx.json"},
        {"vectors_cacophony_xx", test_vector_file, NULL, NULL, (void *)"noise-cacophony-xx.json"},
        {"vectors_snow_xx", test_vector_file, NULL, NULL, (void *)"noise-snow-xx.json"},
        {"vectors_noise_c_basic_ik", test_vector_file, NULL, NULL, (void *)"noise-c-basic-ik.json"},
        {"vectors_cacophony_ik", test_vector_file, NULL, NULL, (void *)"noise-cacophony-ik.json"},
        {"vectors_snow_ik", test_vector_file, NULL, NULL, (void *)"noise-snow-ik.json"},
        cmocka_unit_test(test_names),
        cmocka_unit_test(test_round_trip),
        cmocka_unit_test(test_in_place),
        cmocka_unit_test(test_flip_every_byte),
        cmocka_unit_test(test_truncated),
        cmocka_unit_test(test_wrong_prologue),
        cmocka_unit_test(test_low_order),
        cmocka_unit_test(test_transport_tamper),
        cmocka_unit_test(test_nonce_exhaustion),
        cmocka_unit_test(test_state_misuse),
        cmocka_unit_test(test_static_pk_given),
        cmocka_unit_test(test_hs_payload_padding),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
