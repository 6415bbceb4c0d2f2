/* SPDX-License-Identifier: MIT */
/* Unit tests for proto/identity: key derivation, text ids, fingerprints. */
#include "fixtures.h"

#include "proto/identity.h"

static const char ALPHABET[] = "qpzry9x8gf2tvdw0s3jn54khce6mua7l";

/* A reference bech32m (BIP-350) encoder, written from the BIP, with hrp "tf". */
static uint32_t ref_polymod(const uint8_t *v, size_t n)
{
    static const uint32_t gen[5] = {0x3b6a57b2u, 0x26508e6du, 0x1ea119fau, 0x3d4233ddu,
                                    0x2a1462b3u};
    uint32_t chk = 1;
    for (size_t i = 0; i < n; i++) {
        uint32_t top = chk >> 25;
        chk = ((chk & 0x1ffffffu) << 5) ^ v[i];
        for (unsigned k = 0; k < 5; k++)
            if ((top >> k) & 1u)
                chk ^= gen[k];
    }
    return chk;
}

/* Encodes 52 five-bit data values as a text id with a valid checksum. */
static void ref_encode_values(const uint8_t data[52], char out[TF_PROTO_TEXT_ID_SIZE])
{
    /* hrp expansion of "tf": high bits, 0, low bits; then data, then 6 zeros */
    uint8_t v[5 + 52 + 6] = {'t' >> 5, 'f' >> 5, 0, 't' & 31, 'f' & 31};
    memcpy(v + 5, data, 52);
    uint32_t pm = ref_polymod(v, sizeof v) ^ 0x2bc830a3u;
    memcpy(out, "tf1", 3);
    for (size_t i = 0; i < 52; i++)
        out[3 + i] = ALPHABET[data[i]];
    for (size_t i = 0; i < 6; i++)
        out[55 + i] = ALPHABET[(pm >> (5 * (5 - i))) & 31u];
    out[61] = '\0';
}

static void ref_to_values(const uint8_t pk[32], uint8_t data[52])
{
    for (size_t i = 0; i < 52; i++) {
        uint8_t v = 0;
        for (size_t b = 0; b < 5; b++) {
            size_t bit = i * 5 + b;
            unsigned x = 0;
            if (bit < 256)
                x = (unsigned)(pk[bit / 8] >> (7 - bit % 8)) & 1u;
            v = (uint8_t)((unsigned)(v << 1) | x);
        }
        data[i] = v;
    }
}

static int decode(const char *text, uint8_t pk[TF_PROTO_KEY_LEN], size_t *where)
{
    return tf_proto_text_id_decode(text, strlen(text), pk, where);
}

static void test_from_seed_deterministic(void **state)
{
    (void)state;
    struct tf_proto_identity a1, a2, b;
    fx_identity(&a1, FX_A);
    fx_identity(&a2, FX_A);
    fx_identity(&b, FX_B);
    assert_memory_equal(a1.sign_pk, a2.sign_pk, TF_PROTO_KEY_LEN);
    assert_memory_equal(a1.noise_pk, a2.noise_pk, TF_PROTO_KEY_LEN);
    assert_memory_equal(a1.box_pk, a2.box_pk, TF_PROTO_KEY_LEN);
    assert_memory_not_equal(a1.sign_pk, b.sign_pk, TF_PROTO_KEY_LEN);
    assert_memory_not_equal(a1.noise_pk, b.noise_pk, TF_PROTO_KEY_LEN);
    assert_memory_not_equal(a1.box_pk, b.box_pk, TF_PROTO_KEY_LEN);
    /* three independent keys per identity */
    assert_memory_not_equal(a1.sign_pk, a1.noise_pk, TF_PROTO_KEY_LEN);
    assert_memory_not_equal(a1.sign_pk, a1.box_pk, TF_PROTO_KEY_LEN);
    assert_memory_not_equal(a1.noise_pk, a1.box_pk, TF_PROTO_KEY_LEN);

    /* Deterministic signatures that verify with sign_pk. */
    static const uint8_t msg[] = "message";
    uint8_t s1[TF_PROTO_SIG_LEN], s2[TF_PROTO_SIG_LEN];
    assert_ok(tf_proto_identity_sign(&a1, msg, sizeof msg, s1));
    assert_ok(tf_proto_identity_sign(&a2, msg, sizeof msg, s2));
    assert_memory_equal(s1, s2, TF_PROTO_SIG_LEN);
    assert_int_equal(crypto_sign_verify_detached(s1, msg, sizeof msg, a1.sign_pk), 0);
    assert_int_not_equal(crypto_sign_verify_detached(s1, msg, sizeof msg, b.sign_pk), 0);
    tf_proto_identity_deinit(&a1);
    tf_proto_identity_deinit(&a2);
    tf_proto_identity_deinit(&b);
}

static void test_derivation_matches_kdf(void **state)
{
    (void)state;
    /* sign = Ed25519 from kdf subkey 1, noise = X25519 base of subkey 2,
     * box = X25519 base of subkey 3, context "twofold1". */
    static const char ctx[crypto_kdf_CONTEXTBYTES] = {'t', 'w', 'o', 'f', 'o', 'l', 'd', '1'};
    uint8_t seed[TF_PROTO_SEED_LEN], sub[32], pk[32], sk[crypto_sign_SECRETKEYBYTES];
    struct tf_proto_identity id;
    fx_seed(FX_C, seed);
    fx_identity(&id, FX_C);

    assert_int_equal(crypto_kdf_derive_from_key(sub, 32, 1, ctx, seed), 0);
    assert_int_equal(crypto_sign_seed_keypair(pk, sk, sub), 0);
    assert_memory_equal(pk, id.sign_pk, 32);

    assert_int_equal(crypto_kdf_derive_from_key(sub, 32, 2, ctx, seed), 0);
    assert_int_equal(crypto_scalarmult_base(pk, sub), 0);
    assert_memory_equal(pk, id.noise_pk, 32);
    assert_memory_equal(tf_proto_identity_noise_sk(&id), sub, 32);

    assert_int_equal(crypto_kdf_derive_from_key(sub, 32, 3, ctx, seed), 0);
    assert_int_equal(crypto_scalarmult_base(pk, sub), 0);
    assert_memory_equal(pk, id.box_pk, 32);
    tf_proto_identity_deinit(&id);
}

static void test_unseal(void **state)
{
    (void)state;
    struct tf_proto_identity a, b;
    static const uint8_t msg[] = "sealed for a";
    uint8_t c[sizeof msg + crypto_box_SEALBYTES], m[sizeof msg];
    fx_identity(&a, FX_A);
    fx_identity(&b, FX_B);
    assert_int_equal(crypto_box_seal(c, msg, sizeof msg, a.box_pk), 0);
    assert_ok(tf_proto_identity_unseal(&a, m, c, sizeof c));
    assert_memory_equal(m, msg, sizeof msg);
    assert_rc(tf_proto_identity_unseal(&b, m, c, sizeof c), TF_E_BAD_SEAL);
    c[sizeof c - 1] ^= 1;
    assert_rc(tf_proto_identity_unseal(&a, m, c, sizeof c), TF_E_BAD_SEAL);
    assert_rc(tf_proto_identity_unseal(&a, m, c, crypto_box_SEALBYTES - 1), TF_E_BAD_SEAL);
    assert_rc(tf_proto_identity_unseal(&a, m, c, 0), TF_E_BAD_SEAL);
    tf_proto_identity_deinit(&a);
    tf_proto_identity_deinit(&b);
}

static void test_deinit(void **state)
{
    (void)state;
    struct tf_proto_identity id, zero;
    uint8_t sig[TF_PROTO_SIG_LEN], c[crypto_box_SEALBYTES + 1], m[1] = {0};
    memset(&zero, 0, sizeof zero);
    fx_identity(&id, FX_A);
    assert_int_equal(crypto_box_seal(c, m, 1, id.box_pk), 0);
    tf_proto_identity_deinit(&id);
    assert_null(id.sec);
    assert_null(tf_proto_identity_noise_sk(&id));
    assert_rc(tf_proto_identity_sign(&id, m, 1, sig), TF_E_INVALID_ARG);
    assert_rc(tf_proto_identity_unseal(&id, m, c, sizeof c), TF_E_INVALID_ARG);
    tf_proto_identity_deinit(&id); /* twice is safe */
    tf_proto_identity_deinit(&zero);
    assert_rc(tf_proto_identity_sign(&zero, m, 1, sig), TF_E_INVALID_ARG);
}

static void test_text_id_round_trip(void **state)
{
    (void)state;
    for (int who = 0; who < FX_COUNT; who++) {
        struct tf_proto_identity id;
        char text[TF_PROTO_TEXT_ID_SIZE], ref[TF_PROTO_TEXT_ID_SIZE];
        uint8_t pk[TF_PROTO_KEY_LEN], values[52];
        size_t where = 999;
        fx_identity(&id, (enum fx_who)who);
        tf_proto_text_id_encode(id.sign_pk, text);
        assert_int_equal(strlen(text), TF_PROTO_TEXT_ID_LEN);
        assert_memory_equal(text, "tf1", 3);
        for (size_t i = 3; i < TF_PROTO_TEXT_ID_LEN; i++)
            assert_non_null(memchr(ALPHABET, text[i], 32));
        /* identical to an independent bech32m encoder */
        ref_to_values(id.sign_pk, values);
        ref_encode_values(values, ref);
        assert_string_equal(text, ref);
        assert_ok(decode(text, pk, &where));
        assert_memory_equal(pk, id.sign_pk, TF_PROTO_KEY_LEN);
        assert_int_equal(where, 999);
        assert_ok(tf_proto_text_id_decode(text, strlen(text), pk, NULL));
        tf_proto_identity_deinit(&id);
    }
    /* all-zero and all-one keys */
    uint8_t k[TF_PROTO_KEY_LEN], pk[TF_PROTO_KEY_LEN];
    char text[TF_PROTO_TEXT_ID_SIZE];
    for (int fill = 0; fill < 256; fill += 255) {
        memset(k, fill, sizeof k);
        tf_proto_text_id_encode(k, text);
        assert_ok(decode(text, pk, NULL));
        assert_memory_equal(pk, k, sizeof k);
    }
}

/* Decoding must fail with `want` and leave pk untouched. */
static void expect_reject(const char *text, int want)
{
    uint8_t pk[TF_PROTO_KEY_LEN], untouched[TF_PROTO_KEY_LEN];
    memset(pk, 0xaa, sizeof pk);
    memset(untouched, 0xaa, sizeof untouched);
    int rc = decode(text, pk, NULL);
    if (rc != want)
        fail_msg("decode(\"%s\"): got %s, want %s", text, tf_err_name(rc), tf_err_name(want));
    assert_memory_equal(pk, untouched, sizeof pk);
}

static void sample_text_id(char text[TF_PROTO_TEXT_ID_SIZE])
{
    struct tf_proto_identity id;
    fx_identity(&id, FX_A);
    tf_proto_text_id_encode(id.sign_pk, text);
    tf_proto_identity_deinit(&id);
}

static void test_text_id_every_substitution(void **state)
{
    (void)state;
    char good[TF_PROTO_TEXT_ID_SIZE], t[TF_PROTO_TEXT_ID_SIZE];
    sample_text_id(good);
    for (size_t pos = 0; pos < TF_PROTO_TEXT_ID_LEN; pos++) {
        for (size_t k = 0; k < 32; k++) {
            if (ALPHABET[k] == good[pos])
                continue;
            memcpy(t, good, sizeof t);
            t[pos] = ALPHABET[k];
            /* the first three characters are the fixed prefix "tf1" */
            expect_reject(t, pos < 3 ? TF_E_BAD_PREFIX : TF_E_BAD_CHECKSUM);
        }
    }
}

static void test_text_id_adjacent_transpositions(void **state)
{
    (void)state;
    char good[TF_PROTO_TEXT_ID_SIZE], t[TF_PROTO_TEXT_ID_SIZE];
    size_t tried = 0;
    sample_text_id(good);
    for (size_t pos = 0; pos + 1 < TF_PROTO_TEXT_ID_LEN; pos++) {
        if (good[pos] == good[pos + 1])
            continue;
        memcpy(t, good, sizeof t);
        t[pos] = good[pos + 1];
        t[pos + 1] = good[pos];
        expect_reject(t, pos < 3 ? TF_E_BAD_PREFIX : TF_E_BAD_CHECKSUM);
        tried++;
    }
    assert_true(tried > 40);
}

static void test_text_id_prefix_length_case(void **state)
{
    (void)state;
    char good[TF_PROTO_TEXT_ID_SIZE], t[TF_PROTO_TEXT_ID_SIZE + 1];
    uint8_t pk[TF_PROTO_KEY_LEN], want[TF_PROTO_KEY_LEN];
    sample_text_id(good);
    assert_ok(decode(good, want, NULL));

    expect_reject("", TF_E_BAD_PREFIX);
    expect_reject("tf", TF_E_BAD_PREFIX);
    expect_reject("tf1", TF_E_BAD_LENGTH);
    memcpy(t, good, sizeof good);
    memcpy(t, "tx1", 3);
    expect_reject(t, TF_E_BAD_PREFIX);
    memcpy(t, "tf2", 3);
    expect_reject(t, TF_E_BAD_PREFIX);
    memcpy(t, "bc1", 3);
    expect_reject(t, TF_E_BAD_PREFIX);

    /* one character short, one too many */
    memcpy(t, good, sizeof good);
    t[TF_PROTO_TEXT_ID_LEN - 1] = '\0';
    expect_reject(t, TF_E_BAD_LENGTH);
    memcpy(t, good, sizeof good);
    t[TF_PROTO_TEXT_ID_LEN] = 'q';
    t[TF_PROTO_TEXT_ID_LEN + 1] = '\0';
    expect_reject(t, TF_E_BAD_LENGTH);

    /* all upper case is accepted and decodes to the same key */
    for (size_t i = 0; i < TF_PROTO_TEXT_ID_LEN; i++)
        t[i] = (good[i] >= 'a' && good[i] <= 'z') ? (char)(good[i] - 32) : good[i];
    t[TF_PROTO_TEXT_ID_LEN] = '\0';
    assert_ok(decode(t, pk, NULL));
    assert_memory_equal(pk, want, sizeof pk);

    /* mixed case: one lower-case letter in an upper-case id, and the reverse */
    size_t letter = 3;
    while (!(good[letter] >= 'a' && good[letter] <= 'z'))
        letter++;
    t[letter] = good[letter];
    expect_reject(t, TF_E_MIXED_CASE);
    memcpy(t, good, sizeof good);
    t[letter] = (char)(good[letter] - 32);
    expect_reject(t, TF_E_MIXED_CASE);
    memcpy(t, good, sizeof good);
    memcpy(t, "TF1", 3);
    expect_reject(t, TF_E_MIXED_CASE);
}

static void test_text_id_bad_char_position(void **state)
{
    (void)state;
    static const char bad[] = {'b', '1', 'i', 'o', '-', ' ', '\0', (char)0xc3};
    static const size_t positions[] = {3, 10, 33, 54, 55, 60};
    char good[TF_PROTO_TEXT_ID_SIZE], t[TF_PROTO_TEXT_ID_SIZE];
    uint8_t pk[TF_PROTO_KEY_LEN];
    sample_text_id(good);
    for (size_t i = 0; i < sizeof bad; i++) {
        for (size_t j = 0; j < sizeof positions / sizeof positions[0]; j++) {
            size_t where = 999;
            memcpy(t, good, sizeof t);
            t[positions[j]] = bad[i];
            assert_rc(tf_proto_text_id_decode(t, TF_PROTO_TEXT_ID_LEN, pk, &where), TF_E_BAD_CHAR);
            assert_int_equal(where, positions[j]);
            assert_rc(tf_proto_text_id_decode(t, TF_PROTO_TEXT_ID_LEN, pk, NULL), TF_E_BAD_CHAR);
        }
    }
    /* in an upper-case id too, and the first bad character is reported */
    size_t where = 999;
    for (size_t i = 0; i < TF_PROTO_TEXT_ID_LEN; i++)
        t[i] = (good[i] >= 'a' && good[i] <= 'z') ? (char)(good[i] - 32) : good[i];
    t[20] = 'B';
    t[40] = 'O';
    assert_rc(tf_proto_text_id_decode(t, TF_PROTO_TEXT_ID_LEN, pk, &where), TF_E_BAD_CHAR);
    assert_int_equal(where, 20);
}

static void test_text_id_nonzero_padding(void **state)
{
    (void)state;
    /* 52 groups carry 260 bits; the last 4 must be zero even when the
     * checksum is valid. */
    uint8_t values[52];
    char t[TF_PROTO_TEXT_ID_SIZE];
    struct tf_proto_identity id;
    fx_identity(&id, FX_B);
    ref_to_values(id.sign_pk, values);
    tf_proto_identity_deinit(&id);
    for (uint8_t pad = 1; pad < 16; pad++) {
        uint8_t v[52];
        memcpy(v, values, sizeof v);
        v[51] = (uint8_t)((v[51] & 0x10u) | pad);
        ref_encode_values(v, t);
        expect_reject(t, TF_E_BAD_CHECKSUM);
    }
}

static bool is_hex(char c)
{
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f');
}

static void test_fingerprint(void **state)
{
    (void)state;
    struct tf_proto_identity a, b;
    char fa[TF_PROTO_FINGERPRINT_SIZE], fa2[TF_PROTO_FINGERPRINT_SIZE];
    char fb[TF_PROTO_FINGERPRINT_SIZE], want[TF_PROTO_FINGERPRINT_SIZE];
    fx_identity(&a, FX_A);
    fx_identity(&b, FX_B);
    tf_proto_fingerprint(a.sign_pk, fa);
    tf_proto_fingerprint(a.sign_pk, fa2);
    tf_proto_fingerprint(b.sign_pk, fb);
    assert_string_equal(fa, fa2);
    assert_string_not_equal(fa, fb);
    assert_int_equal(strlen(fa), TF_PROTO_FINGERPRINT_SIZE - 1);
    for (size_t i = 0; i < TF_PROTO_FINGERPRINT_SIZE - 1; i++) {
        if (i % 5 == 4)
            assert_int_equal(fa[i], '-');
        else
            assert_true(is_hex(fa[i]));
    }
    /* the first 8 bytes of BLAKE2b-256("twofold/v1/fingerprint" || 0 || pk) */
    static const char tag[] = "twofold/v1/fingerprint";
    uint8_t msg[sizeof tag + TF_PROTO_KEY_LEN], h[32];
    memcpy(msg, tag, sizeof tag); /* includes the NUL separator */
    memcpy(msg + sizeof tag, a.sign_pk, TF_PROTO_KEY_LEN);
    assert_int_equal(crypto_generichash(h, sizeof h, msg, sizeof msg, NULL, 0), 0);
    size_t o = 0;
    for (size_t i = 0; i < 8; i++) {
        if (i > 0 && i % 2 == 0)
            want[o++] = '-';
        want[o++] = "0123456789abcdef"[h[i] >> 4];
        want[o++] = "0123456789abcdef"[h[i] & 15];
    }
    want[o] = '\0';
    assert_string_equal(fa, want);
    tf_proto_identity_deinit(&a);
    tf_proto_identity_deinit(&b);
}

int main(void)
{
    if (sodium_init() < 0)
        return 1;
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_from_seed_deterministic),
        cmocka_unit_test(test_derivation_matches_kdf),
        cmocka_unit_test(test_unseal),
        cmocka_unit_test(test_deinit),
        cmocka_unit_test(test_text_id_round_trip),
        cmocka_unit_test(test_text_id_every_substitution),
        cmocka_unit_test(test_text_id_adjacent_transpositions),
        cmocka_unit_test(test_text_id_prefix_length_case),
        cmocka_unit_test(test_text_id_bad_char_position),
        cmocka_unit_test(test_text_id_nonzero_padding),
        cmocka_unit_test(test_fingerprint),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
