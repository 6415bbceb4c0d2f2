/* SPDX-License-Identifier: MIT */
/* Unit tests for proto/statement: domain tags, tagged hashes, signed
 * statements. */
#include "fixtures.h"

#include "proto/statement.h"

#define N_DOMAINS 9

static const struct {
    enum tf_proto_domain domain;
    const char *tag;
} DOMAINS[N_DOMAINS] = {
    {TF_PROTO_DOMAIN_CARD, "twofold/v1/card"},
    {TF_PROTO_DOMAIN_PROPOSAL, "twofold/v1/proposal"},
    {TF_PROTO_DOMAIN_REPLY, "twofold/v1/reply"},
    {TF_PROTO_DOMAIN_INTRODUCTION, "twofold/v1/introduction"},
    {TF_PROTO_DOMAIN_CLOSE, "twofold/v1/close"},
    {TF_PROTO_DOMAIN_ENVELOPE, "twofold/v1/envelope"},
    {TF_PROTO_DOMAIN_REQUEST, "twofold/v1/request"},
    {TF_PROTO_DOMAIN_REQUEST_CLOSE, "twofold/v1/request-close"},
    {TF_PROTO_DOMAIN_FEEDBACK, "twofold/v1/feedback"},
};

static const uint8_t BODY[] = {0x93, 0x01, 0xa3, 'a', 'b', 'c', 0xc4, 0x02, 0xde, 0xad};

/* BODY signed by A as a reply. */
static int setup(void **state)
{
    struct fx_pair *f = fx_pair_new();
    assert_ok(tf_proto_statement_sign(&f->a, TF_PROTO_DOMAIN_REPLY, BODY, sizeof BODY, &f->obj));
    *state = f;
    return 0;
}

/* Parses and verifies buf as a reply signed by pk. */
static int parse_verify(const uint8_t *buf, size_t len, const uint8_t *pk)
{
    struct tf_proto_statement st;
    int rc = tf_proto_statement_parse(buf, len, &st);
    if (rc != TF_OK)
        return rc;
    return tf_proto_statement_verify(&st, TF_PROTO_DOMAIN_REPLY, pk);
}

static void test_domain_tags(void **state)
{
    (void)state;
    for (size_t i = 0; i < N_DOMAINS; i++) {
        assert_string_equal(tf_proto_domain_tag(DOMAINS[i].domain), DOMAINS[i].tag);
        for (size_t j = 0; j < i; j++)
            assert_string_not_equal(tf_proto_domain_tag(DOMAINS[i].domain),
                                    tf_proto_domain_tag(DOMAINS[j].domain));
    }
}

static void test_sign_verify_round_trip(void **state)
{
    struct fx_pair *f = *state;
    struct tf_proto_statement st;
    const struct tf_proto_buf *s = &f->obj;
    /* wire form: [bin8 body, bin8 sig] */
    assert_int_equal(s->len, 1 + 2 + sizeof BODY + 2 + TF_PROTO_SIG_LEN);
    assert_int_equal(s->data[0], 0x92);
    assert_int_equal(s->data[1], 0xc4);
    assert_int_equal(s->data[2], sizeof BODY);
    assert_memory_equal(s->data + 3, BODY, sizeof BODY);
    assert_int_equal(s->data[3 + sizeof BODY], 0xc4);
    assert_int_equal(s->data[4 + sizeof BODY], TF_PROTO_SIG_LEN);

    assert_ok(tf_proto_statement_parse(s->data, s->len, &st));
    assert_ptr_equal(st.body.ptr, s->data + 3);
    assert_int_equal(st.body.len, sizeof BODY);
    assert_ptr_equal(st.sig, s->data + 5 + sizeof BODY);
    assert_ok(tf_proto_statement_verify(&st, TF_PROTO_DOMAIN_REPLY, f->a.sign_pk));

    /* the signature is plain Ed25519 over tag || 0x00 || body */
    static const char tag[] = "twofold/v1/reply";
    uint8_t m[sizeof tag + sizeof BODY];
    memcpy(m, tag, sizeof tag);
    memcpy(m + sizeof tag, BODY, sizeof BODY);
    assert_int_equal(crypto_sign_verify_detached(st.sig, m, sizeof m, f->a.sign_pk), 0);

    /* and sign_tagged / verify_tagged agree with it */
    uint8_t sig[TF_PROTO_SIG_LEN];
    assert_ok(tf_proto_sign_tagged(&f->a, TF_PROTO_DOMAIN_REPLY, BODY, sizeof BODY, sig));
    assert_memory_equal(sig, st.sig, TF_PROTO_SIG_LEN);
    assert_ok(tf_proto_verify_tagged(TF_PROTO_DOMAIN_REPLY, f->a.sign_pk, BODY, sizeof BODY, sig));
    /* an empty message can be signed too */
    assert_ok(tf_proto_sign_tagged(&f->a, TF_PROTO_DOMAIN_CLOSE, NULL, 0, sig));
    assert_ok(tf_proto_verify_tagged(TF_PROTO_DOMAIN_CLOSE, f->a.sign_pk, NULL, 0, sig));
}

static void test_wrong_domain(void **state)
{
    struct fx_pair *f = *state;
    for (size_t i = 0; i < N_DOMAINS; i++) {
        struct tf_proto_buf s;
        struct tf_proto_statement st;
        assert_ok(tf_proto_statement_sign(&f->a, DOMAINS[i].domain, BODY, sizeof BODY, &s));
        assert_ok(tf_proto_statement_parse(s.data, s.len, &st));
        for (size_t j = 0; j < N_DOMAINS; j++)
            assert_rc(tf_proto_statement_verify(&st, DOMAINS[j].domain, f->a.sign_pk),
                      i == j ? TF_OK : TF_E_BAD_SIG);
        tf_proto_buf_free(&s);
    }
}

static void test_flipped_bytes(void **state)
{
    struct fx_pair *f = *state;
    const struct tf_proto_buf *s = &f->obj;
    size_t body_at = 3, sig_at = 5 + sizeof BODY;
    uint8_t *p = fx_dup(s->data, s->len, 0);
    for (size_t i = 0; i < sizeof BODY; i++) {
        p[body_at + i] ^= 0x01;
        assert_rc(parse_verify(p, s->len, f->a.sign_pk), TF_E_BAD_SIG);
        p[body_at + i] ^= 0x01;
    }
    for (size_t i = 0; i < TF_PROTO_SIG_LEN; i++) {
        p[sig_at + i] ^= 0x80;
        assert_rc(parse_verify(p, s->len, f->a.sign_pk), TF_E_BAD_SIG);
        p[sig_at + i] ^= 0x80;
    }
    assert_ok(parse_verify(p, s->len, f->a.sign_pk));
    free(p);
}

static void test_wrong_key(void **state)
{
    struct fx_pair *f = *state;
    uint8_t sig[TF_PROTO_SIG_LEN];
    assert_rc(parse_verify(f->obj.data, f->obj.len, f->b.sign_pk), TF_E_BAD_SIG);
    assert_ok(tf_proto_sign_tagged(&f->b, TF_PROTO_DOMAIN_CARD, BODY, sizeof BODY, sig));
    assert_rc(tf_proto_verify_tagged(TF_PROTO_DOMAIN_CARD, f->a.sign_pk, BODY, sizeof BODY, sig),
              TF_E_BAD_SIG);
}

static int parse_only(const uint8_t *buf, size_t len, void *ctx)
{
    (void)ctx;
    struct tf_proto_statement st;
    return tf_proto_statement_parse(buf, len, &st);
}

static void test_parse_truncated_trailing(void **state)
{
    struct fx_pair *f = *state;
    fx_assert_prefixes_truncated(f->obj.data, f->obj.len, parse_only, NULL);
    fx_assert_whole_ok_and_trailing(f->obj.data, f->obj.len, parse_only, NULL);
}

/* Builds [bin body, bin sig] (or other shapes) by hand. */
static void build(uint32_t count, size_t body_len, size_t sig_len, bool body_as_str,
                  struct tf_proto_buf *out)
{
    struct tf_proto_mp_writer w;
    uint8_t *zeros = calloc(1, body_len + sig_len + 1);
    assert_non_null(zeros);
    tf_proto_mp_writer_init(&w);
    tf_proto_mp_write_array(&w, count);
    if (body_as_str)
        tf_proto_mp_write_str(&w, (const char *)zeros, body_len);
    else
        tf_proto_mp_write_bin(&w, zeros, body_len);
    if (count > 1)
        tf_proto_mp_write_bin(&w, zeros, sig_len);
    for (uint32_t i = 2; i < count; i++)
        tf_proto_mp_write_nil(&w);
    fx_finish(&w, out);
    free(zeros);
}

static int parse_built(uint32_t count, size_t body_len, size_t sig_len, bool body_as_str)
{
    struct tf_proto_buf b;
    build(count, body_len, sig_len, body_as_str, &b);
    int rc = parse_only(b.data, b.len, NULL);
    tf_proto_buf_free(&b);
    return rc;
}

static void test_parse_rejections(void **state)
{
    (void)state;
    assert_ok(parse_built(2, 10, 64, false));
    assert_rc(parse_built(3, 10, 64, false), TF_E_COUNT);
    assert_rc(parse_built(1, 10, 64, false), TF_E_COUNT);
    assert_rc(parse_built(2, 10, 63, false), TF_E_BAD_LENGTH);
    assert_rc(parse_built(2, 10, 0, false), TF_E_BAD_LENGTH);
    assert_rc(parse_built(2, 10, 65, false), TF_E_TOO_LONG);
    assert_rc(parse_built(2, 0, 64, false), TF_E_BAD_LENGTH);
    assert_ok(parse_built(2, TF_PROTO_BODY_MAX, 64, false));
    assert_rc(parse_built(2, TF_PROTO_BODY_MAX + 1, 64, false), TF_E_TOO_LONG);
    assert_rc(parse_built(2, 10, 64, true), TF_E_TYPE);

    static const uint8_t map[] = {0x82, 0x01, 0x01, 0x02, 0x02};
    assert_rc(parse_only(map, sizeof map, NULL), TF_E_TYPE);
}

static void test_sign_limits(void **state)
{
    struct fx_pair *f = *state;
    struct tf_proto_buf out = {NULL, 0};
    struct tf_proto_identity gone;
    uint8_t *big = calloc(1, TF_PROTO_BODY_MAX + 1);
    uint8_t sig[TF_PROTO_SIG_LEN];
    assert_non_null(big);
    assert_rc(
        tf_proto_statement_sign(&f->a, TF_PROTO_DOMAIN_CARD, big, TF_PROTO_BODY_MAX + 1, &out),
        TF_E_TOO_LONG);
    assert_null(out.data);
    assert_ok(tf_proto_statement_sign(&f->a, TF_PROTO_DOMAIN_CARD, big, TF_PROTO_BODY_MAX, &out));
    assert_ok(parse_only(out.data, out.len, NULL));
    tf_proto_buf_free(&out);
    free(big);

    fx_identity(&gone, FX_D);
    tf_proto_identity_deinit(&gone);
    assert_rc(tf_proto_statement_sign(&gone, TF_PROTO_DOMAIN_CARD, BODY, sizeof BODY, &out),
              TF_E_INVALID_ARG);
    assert_rc(tf_proto_sign_tagged(&gone, TF_PROTO_DOMAIN_CARD, BODY, sizeof BODY, sig),
              TF_E_INVALID_ARG);
}

static void test_hash_tagged(void **state)
{
    (void)state;
    static const uint8_t ab[] = "hello world";
    uint8_t h1[TF_PROTO_HASH_LEN], h2[TF_PROTO_HASH_LEN], want[TF_PROTO_HASH_LEN];
    static const char tag[] = "twofold/v1/test";
    uint8_t m[sizeof tag + sizeof ab];

    /* BLAKE2b-256(tag || 0x00 || a || b) */
    memcpy(m, tag, sizeof tag);
    memcpy(m + sizeof tag, ab, sizeof ab);
    assert_int_equal(crypto_generichash(want, sizeof want, m, sizeof m, NULL, 0), 0);
    tf_proto_hash_tagged(h1, tag, ab, sizeof ab, NULL, 0);
    assert_memory_equal(h1, want, sizeof want);
    /* how the input is split between a and b does not matter */
    tf_proto_hash_tagged(h2, tag, ab, 5, ab + 5, sizeof ab - 5);
    assert_memory_equal(h2, want, sizeof want);
    tf_proto_hash_tagged(h2, tag, NULL, 0, ab, sizeof ab);
    assert_memory_equal(h2, want, sizeof want);

    /* the NUL separates a tag from a longer tag it prefixes */
    tf_proto_hash_tagged(h1, "twofold/v1/intro", (const uint8_t *)"duction", 7, NULL, 0);
    tf_proto_hash_tagged(h2, "twofold/v1/introduction", NULL, 0, NULL, 0);
    assert_memory_not_equal(h1, h2, TF_PROTO_HASH_LEN);
    tf_proto_hash_tagged(h1, "twofold/v1/a", ab, sizeof ab, NULL, 0);
    tf_proto_hash_tagged(h2, "twofold/v1/b", ab, sizeof ab, NULL, 0);
    assert_memory_not_equal(h1, h2, TF_PROTO_HASH_LEN);
}

int main(void)
{
    if (sodium_init() < 0)
        return 1;
#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, fx_pair_teardown)
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_domain_tags),
        T(test_sign_verify_round_trip),
        T(test_wrong_domain),
        T(test_flipped_bytes),
        T(test_wrong_key),
        T(test_parse_truncated_trailing),
        cmocka_unit_test(test_parse_rejections),
        T(test_sign_limits),
        cmocka_unit_test(test_hash_tagged),
    };
#undef T
    return cmocka_run_group_tests(tests, NULL, NULL);
}
