/* SPDX-License-Identifier: MIT */
/* Unit tests for node/contact: trust names, aliases, the stored record codec
 * (strict decoding, every failure TF_E_CORRUPT) and deep copies. */
#include "fixtures.h"

#include <stdio.h>

#include "node/contact.h"

/* Sets a char array (no strcpy: STYLE.md). */
#define SET(dst, s) snprintf((dst), sizeof(dst), "%s", (s))

struct fixture {
    struct tf_proto_identity a, b;
    struct tf_proto_buf card_a, card_b;
};

static int setup(void **state)
{
    struct fixture *f = calloc(1, sizeof *f);
    if (f == NULL)
        return -1;
    fx_identity(&f->a, FX_A);
    fx_identity(&f->b, FX_B);
    fx_card_sign(&f->a, "Alice", 1, &f->card_a);
    fx_card_sign(&f->b, "Bob", 1, &f->card_b);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fixture *f = *state;
    tf_proto_identity_deinit(&f->a);
    tf_proto_identity_deinit(&f->b);
    tf_proto_buf_free(&f->card_a);
    tf_proto_buf_free(&f->card_b);
    free(f);
    return 0;
}

/* Alice's contact with every field set. */
static void full_contact(const struct fixture *f, struct tf_node_contact *c)
{
    assert_ok(tf_node_contact_from_card(c, f->card_a.data, f->card_a.len));
    SET(c->alias, "alice.w");
    c->trust = TF_NODE_TRUST_CLOSE;
    c->n_tags = 2;
    SET(c->tags[0], "rust");
    SET(c->tags[1], "ai-safety");
    c->has_introducer = true;
    memcpy(c->introduced_by, f->b.sign_pk, TF_PROTO_KEY_LEN);
    memset(c->intro, 0x5a, sizeof c->intro);
    c->added = 1700000000u;
    c->updated = 1700000123u;
    c->blocked = true;
}

static bool views_into(struct tf_proto_bytes v, const struct tf_proto_buf *b)
{
    return v.ptr >= b->data && v.ptr + v.len <= b->data + b->len;
}

static void assert_fields_in_own_card(const struct tf_node_contact *c)
{
    assert_true(views_into(c->fields.name, &c->card));
    for (size_t i = 0; i < c->fields.n_addrs; i++)
        assert_true(views_into(c->fields.addrs[i], &c->card));
    for (size_t i = 0; i < c->fields.n_seeks; i++)
        assert_true(views_into(c->fields.seeks[i], &c->card));
    assert_memory_equal(c->fields.sign_pk, c->pk, TF_PROTO_KEY_LEN);
}

static void assert_contact_eq(const struct tf_node_contact *got, const struct tf_node_contact *want)
{
    assert_memory_equal(got->pk, want->pk, TF_PROTO_KEY_LEN);
    assert_int_equal(got->card.len, want->card.len);
    assert_memory_equal(got->card.data, want->card.data, want->card.len);
    assert_string_equal(got->alias, want->alias);
    assert_int_equal(got->trust, want->trust);
    assert_int_equal(got->n_tags, want->n_tags);
    for (size_t i = 0; i < want->n_tags; i++)
        assert_string_equal(got->tags[i], want->tags[i]);
    assert_int_equal(got->has_introducer, want->has_introducer);
    if (want->has_introducer) {
        assert_memory_equal(got->introduced_by, want->introduced_by, TF_PROTO_KEY_LEN);
        assert_memory_equal(got->intro, want->intro, sizeof want->intro);
    }
    assert_true(got->added == want->added);
    assert_true(got->updated == want->updated);
    assert_int_equal(got->blocked, want->blocked);
    assert_int_equal(got->fields.seq, want->fields.seq);
    assert_int_equal(got->fields.name.len, want->fields.name.len);
    assert_memory_equal(got->fields.name.ptr, want->fields.name.ptr, want->fields.name.len);
    assert_fields_in_own_card(got);
}

static bool is_zeroed(const struct tf_node_contact *c)
{
    static const struct tf_node_contact zero;
    return memcmp(c, &zero, sizeof zero) == 0;
}

static void test_trust_names(void **state)
{
    (void)state;
    static const char *const names[] = {"none", "acquaintance", "known", "close"};
    for (int t = 0; t < 4; t++) {
        enum tf_node_trust got;
        assert_string_equal(tf_node_trust_name((enum tf_node_trust)t), names[t]);
        assert_ok(tf_node_trust_parse(names[t], &got));
        assert_int_equal(got, t);
    }
    enum tf_node_trust got = TF_NODE_TRUST_KNOWN;
    assert_rc(tf_node_trust_parse("Close", &got), TF_E_BAD_VALUE);
    assert_rc(tf_node_trust_parse("", &got), TF_E_BAD_VALUE);
    assert_rc(tf_node_trust_parse("closer", &got), TF_E_BAD_VALUE);
    assert_int_equal(got, TF_NODE_TRUST_KNOWN);
    assert_string_equal(tf_node_trust_name((enum tf_node_trust)7), "invalid");
}

static void test_alias_validity(void **state)
{
    (void)state;
    static const struct {
        const char *s;
        bool ok;
    } cases[] = {
        {"a", true},
        {"Z", true},
        {"7", true},
        {"bob", true},
        {"Bob.Smith_2-x", true},
        {"tf", true},
        {"tf2abc", true},
        {"t1", true},
        {"xtf1", true},
        {"abcdefghijklmnopqrstuvwxyz012345", true}, /* 32 */
        {"", false},
        {"abcdefghijklmnopqrstuvwxyz0123456", false}, /* 33 */
        {"-bob", false},
        {".bob", false},
        {"_bob", false},
        {"tf1", false},
        {"tf1abc", false},
        {"TF1abc", false},
        {"Tf1", false},
        {"bob smith", false},
        {"bob/x", false},
        {"bob:x", false},
        {"b\xc3\xa9", false},
        {"bob\n", false},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
        if (tf_node_alias_is_valid(cases[i].s) != cases[i].ok)
            fail_msg("alias \"%s\": want %s", cases[i].s, cases[i].ok ? "valid" : "invalid");
}

static void test_from_card(void **state)
{
    struct fixture *f = *state;
    struct tf_node_contact c;
    assert_ok(tf_node_contact_from_card(&c, f->card_a.data, f->card_a.len));
    assert_memory_equal(c.pk, f->a.sign_pk, TF_PROTO_KEY_LEN);
    assert_true(c.card.data != f->card_a.data);
    assert_int_equal(c.card.len, f->card_a.len);
    assert_memory_equal(c.card.data, f->card_a.data, f->card_a.len);
    assert_fields_in_own_card(&c);
    assert_int_equal(c.fields.name.len, 5);
    assert_memory_equal(c.fields.name.ptr, "Alice", 5);
    assert_string_equal(c.alias, "");
    assert_int_equal(c.trust, TF_NODE_TRUST_NONE);
    assert_int_equal(c.n_tags, 0);
    assert_false(c.has_introducer);
    assert_false(c.blocked);
    assert_true(c.added == 0 && c.updated == 0);
    tf_node_contact_deinit(&c);
    assert_true(is_zeroed(&c));
}

static void test_from_card_rejects(void **state)
{
    struct fixture *f = *state;
    struct tf_node_contact c;
    uint8_t *bad = fx_dup(f->card_a.data, f->card_a.len, 0);
    bad[f->card_a.len - 1] ^= 1; /* last byte of the signature */
    memset(&c, 0xee, sizeof c);
    assert_rc(tf_node_contact_from_card(&c, bad, f->card_a.len), TF_E_BAD_SIG);
    assert_true(is_zeroed(&c));
    free(bad);
    static const uint8_t junk[] = {0x92, 0xc4, 0x01, 0x00};
    assert_rc(tf_node_contact_from_card(&c, junk, sizeof junk), TF_E_TRUNCATED);
    assert_true(is_zeroed(&c));
    assert_rc(tf_node_contact_from_card(&c, junk, 0), TF_E_TRUNCATED);
    tf_node_contact_deinit(&c);
}

static void test_round_trip_full(void **state)
{
    struct fixture *f = *state;
    struct tf_node_contact c, d;
    struct tf_proto_buf rec, again;
    full_contact(f, &c);
    assert_ok(tf_node_contact_encode(&c, &rec));
    assert_ok(tf_node_contact_decode(c.pk, rec.data, rec.len, &d));
    assert_contact_eq(&d, &c);
    /* canonical: the decoded contact encodes to the same bytes */
    assert_ok(tf_node_contact_encode(&d, &again));
    assert_int_equal(again.len, rec.len);
    assert_memory_equal(again.data, rec.data, rec.len);
    tf_proto_buf_free(&again);
    tf_proto_buf_free(&rec);
    tf_node_contact_deinit(&d);
    tf_node_contact_deinit(&c);
}

static void test_round_trip_minimal(void **state)
{
    struct fixture *f = *state;
    struct tf_node_contact c, d;
    struct tf_proto_buf rec;
    assert_ok(tf_node_contact_from_card(&c, f->card_b.data, f->card_b.len));
    c.trust = TF_NODE_TRUST_ACQUAINTANCE;
    c.added = c.updated = UINT64_MAX;
    assert_ok(tf_node_contact_encode(&c, &rec));
    assert_ok(tf_node_contact_decode(f->b.sign_pk, rec.data, rec.len, &d));
    assert_contact_eq(&d, &c);
    /* the decoder copies: the record may go away */
    tf_proto_buf_free(&rec);
    assert_fields_in_own_card(&d);
    assert_memory_equal(d.fields.name.ptr, "Bob", 3);
    tf_node_contact_deinit(&d);
    tf_node_contact_deinit(&c);
}

static void test_copy(void **state)
{
    struct fixture *f = *state;
    struct tf_node_contact c, d;
    full_contact(f, &c);
    assert_ok(tf_node_contact_copy(&d, &c));
    assert_true(d.card.data != c.card.data);
    assert_contact_eq(&d, &c);
    tf_node_contact_deinit(&c);
    /* d's views must not point into c's freed card (ASan checks this) */
    assert_memory_equal(d.fields.name.ptr, "Alice", 5);
    assert_fields_in_own_card(&d);

    struct tf_node_contact empty, e;
    memset(&empty, 0, sizeof empty);
    SET(empty.alias, "x");
    assert_ok(tf_node_contact_copy(&e, &empty));
    assert_null(e.card.data);
    assert_string_equal(e.alias, "x");
    tf_node_contact_deinit(&e);
    tf_node_contact_deinit(&d);
}

static void test_deinit_zeroed(void **state)
{
    (void)state;
    struct tf_node_contact c;
    memset(&c, 0, sizeof c);
    tf_node_contact_deinit(&c);
    tf_node_contact_deinit(&c);
    assert_true(is_zeroed(&c));
}

static void test_encode_rejects(void **state)
{
    struct fixture *f = *state;
    struct tf_node_contact c;
    struct tf_proto_buf rec = {0};
    full_contact(f, &c);

    SET(c.alias, "tf1alice");
    assert_rc(tf_node_contact_encode(&c, &rec), TF_E_BAD_VALUE);
    memset(c.alias, 'a', sizeof c.alias); /* not terminated */
    assert_rc(tf_node_contact_encode(&c, &rec), TF_E_BAD_VALUE);
    SET(c.alias, "alice");

    c.trust = (enum tf_node_trust)4;
    assert_rc(tf_node_contact_encode(&c, &rec), TF_E_BAD_VALUE);
    c.trust = TF_NODE_TRUST_KNOWN;

    SET(c.tags[1], "Not-A-Tag");
    assert_rc(tf_node_contact_encode(&c, &rec), TF_E_BAD_VALUE);
    SET(c.tags[1], "ok");
    c.n_tags = TF_NODE_TAGS_MAX + 1;
    assert_rc(tf_node_contact_encode(&c, &rec), TF_E_BAD_VALUE);
    c.n_tags = 2;

    memcpy(c.pk, f->b.sign_pk, TF_PROTO_KEY_LEN);
    assert_rc(tf_node_contact_encode(&c, &rec), TF_E_KEY_MISMATCH);
    memcpy(c.pk, f->a.sign_pk, TF_PROTO_KEY_LEN);

    assert_ok(tf_node_contact_encode(&c, &rec));
    assert_non_null(rec.data);
    tf_proto_buf_free(&rec);
    tf_node_contact_deinit(&c);
}

/* Decodes buf[0..len) for pk from an exact-size copy and expects `want`; a
 * failed decode leaves the contact zeroed. */
static void assert_decode(const uint8_t *pk, const uint8_t *buf, size_t len, int want)
{
    struct tf_node_contact c;
    uint8_t *p = fx_dup(buf, len, 0);
    memset(&c, 0xee, sizeof c);
    int rc = tf_node_contact_decode(pk, p, len, &c);
    free(p);
    assert_rc(rc, want);
    if (rc != TF_OK)
        assert_true(is_zeroed(&c));
    tf_node_contact_deinit(&c);
}

static void test_decode_prefixes_and_trailing(void **state)
{
    struct fixture *f = *state;
    struct tf_node_contact c;
    struct tf_proto_buf rec;
    full_contact(f, &c);
    assert_ok(tf_node_contact_encode(&c, &rec));
    for (size_t n = 0; n < rec.len; n++)
        assert_decode(f->a.sign_pk, rec.data, n, TF_E_CORRUPT);
    uint8_t *more = fx_dup(rec.data, rec.len, 1);
    assert_decode(f->a.sign_pk, more, rec.len, TF_OK);
    assert_decode(f->a.sign_pk, more, rec.len + 1, TF_E_CORRUPT);
    free(more);
    /* a record stored under another key: the card names someone else */
    assert_decode(f->b.sign_pk, rec.data, rec.len, TF_E_CORRUPT);
    tf_proto_buf_free(&rec);
    tf_node_contact_deinit(&c);
}

static void test_decode_garbage(void **state)
{
    struct fixture *f = *state;
    uint8_t buf[256] = {0};
    for (size_t len = 0; len <= sizeof buf; len += 17) {
        for (size_t i = 0; i < len; i++)
            buf[i] = (uint8_t)(i * 131 + len * 7 + 0x99);
        assert_decode(f->a.sign_pk, buf, len, TF_E_CORRUPT);
    }
}

/* A record written field by field, to break one field at a time. */
struct rec_spec {
    uint32_t n_fields;
    struct tf_proto_bytes card;
    const char *alias;
    uint64_t trust;
    size_t n_tags;
    const char *tags[TF_NODE_TAGS_MAX + 2];
    bool by, intro;
    uint64_t added, updated;
    bool blocked_nil;
};

static void rec_default(const struct fixture *f, struct rec_spec *s)
{
    memset(s, 0, sizeof *s);
    s->n_fields = 9;
    s->card = fx_view(&f->card_a);
    s->alias = "alice";
    s->trust = 2;
    s->n_tags = 1;
    s->tags[0] = "rust";
    s->by = s->intro = true;
    s->added = 5;
    s->updated = 6;
}

static void rec_write(const struct rec_spec *s, struct tf_proto_buf *out)
{
    static const uint8_t key[TF_PROTO_KEY_LEN] = {1};
    struct tf_proto_mp_writer w;
    tf_proto_mp_writer_init(&w);
    tf_proto_mp_write_array(&w, s->n_fields);
    tf_proto_mp_write_bin(&w, s->card.ptr, s->card.len);
    tf_proto_mp_write_cstr(&w, s->alias);
    tf_proto_mp_write_uint(&w, s->trust);
    tf_proto_mp_write_array(&w, (uint32_t)s->n_tags);
    for (size_t i = 0; i < s->n_tags; i++)
        tf_proto_mp_write_cstr(&w, s->tags[i]);
    if (s->by)
        tf_proto_mp_write_bin(&w, key, sizeof key);
    else
        tf_proto_mp_write_nil(&w);
    if (s->intro)
        tf_proto_mp_write_bin(&w, key, sizeof key);
    else
        tf_proto_mp_write_nil(&w);
    tf_proto_mp_write_uint(&w, s->added);
    tf_proto_mp_write_uint(&w, s->updated);
    if (s->n_fields >= 9) {
        if (s->blocked_nil)
            tf_proto_mp_write_nil(&w);
        else
            tf_proto_mp_write_bool(&w, false);
    }
    if (s->n_fields >= 10)
        tf_proto_mp_write_nil(&w);
    fx_finish(&w, out);
}

static void assert_spec(const struct fixture *f, const struct rec_spec *s, int want)
{
    struct tf_proto_buf rec;
    rec_write(s, &rec);
    assert_decode(f->a.sign_pk, rec.data, rec.len, want);
    tf_proto_buf_free(&rec);
}

static void test_decode_bad_fields(void **state)
{
    struct fixture *f = *state;
    struct rec_spec s;
    static const char *const many[TF_NODE_TAGS_MAX + 1] = {
        "a", "b", "c", "d", "e", "f", "g", "h", "i", "j", "k", "l", "m", "n", "o", "p", "q"};
    static const uint8_t not_a_card[] = {0x92, 0xc4, 0x01, 0x00, 0xc4, 0x00};

    rec_default(f, &s);
    assert_spec(f, &s, TF_OK);
    s.n_tags = 0;
    s.by = s.intro = false;
    s.alias = "";
    s.trust = 0;
    assert_spec(f, &s, TF_OK);

#define BAD(field, value)                                                                          \
    do {                                                                                           \
        rec_default(f, &s);                                                                        \
        s.field = value;                                                                           \
        assert_spec(f, &s, TF_E_CORRUPT);                                                          \
    } while (0)
    BAD(n_fields, 8);
    BAD(n_fields, 10);
    BAD(card, fx_view(&f->card_b)); /* names Bob, stored under Alice */
    BAD(card, fx_bytes(not_a_card, sizeof not_a_card));
    BAD(card, fx_bytes(not_a_card, 0));
    BAD(alias, "tf1alice");
    BAD(alias, "-alice");
    BAD(alias, "abcdefghijklmnopqrstuvwxyz0123456");
    BAD(alias, "ali\tce");
    BAD(trust, 4);
    BAD(tags[0], "Rust");
    BAD(tags[0], "");
    BAD(by, false); /* intro id without its connector */
    BAD(intro, false);
    BAD(blocked_nil, true);
#undef BAD

    rec_default(f, &s);
    s.n_tags = TF_NODE_TAGS_MAX;
    memcpy(s.tags, many, TF_NODE_TAGS_MAX * sizeof many[0]);
    assert_spec(f, &s, TF_OK);
    s.n_tags = TF_NODE_TAGS_MAX + 1;
    memcpy(s.tags, many, sizeof many);
    assert_spec(f, &s, TF_E_CORRUPT);
}

static void test_decode_noncanonical(void **state)
{
    struct fixture *f = *state;
    struct rec_spec s;
    struct tf_proto_buf rec;
    rec_default(f, &s);
    rec_write(&s, &rec);
    /* The record ends with added (5), updated (6) and false; spell added as
     * uint8 instead of a positive fixint. */
    assert_memory_equal(rec.data + rec.len - 3, "\x05\x06\xc2", 3);
    uint8_t *p = malloc(rec.len + 1);
    assert_non_null(p);
    memcpy(p, rec.data, rec.len - 3);
    memcpy(p + rec.len - 3, "\xcc\x05\x06\xc2", 4);
    assert_decode(f->a.sign_pk, p, rec.len + 1, TF_E_CORRUPT);
    free(p);
    tf_proto_buf_free(&rec);
}

int main(void)
{
    if (sodium_init() < 0)
        return 1;
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_trust_names),
        cmocka_unit_test(test_alias_validity),
        cmocka_unit_test_setup_teardown(test_from_card, setup, teardown),
        cmocka_unit_test_setup_teardown(test_from_card_rejects, setup, teardown),
        cmocka_unit_test_setup_teardown(test_round_trip_full, setup, teardown),
        cmocka_unit_test_setup_teardown(test_round_trip_minimal, setup, teardown),
        cmocka_unit_test_setup_teardown(test_copy, setup, teardown),
        cmocka_unit_test(test_deinit_zeroed),
        cmocka_unit_test_setup_teardown(test_encode_rejects, setup, teardown),
        cmocka_unit_test_setup_teardown(test_decode_prefixes_and_trailing, setup, teardown),
        cmocka_unit_test_setup_teardown(test_decode_garbage, setup, teardown),
        cmocka_unit_test_setup_teardown(test_decode_bad_fields, setup, teardown),
        cmocka_unit_test_setup_teardown(test_decode_noncanonical, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
