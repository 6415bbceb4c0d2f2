/* SPDX-License-Identifier: MIT */
/* Unit tests for proto/card: signing, strict decoding, text form, validators. */
#include "fixtures.h"

#include "proto/card.h"

static int setup(void **state)
{
    struct fx_pair *f = fx_pair_new();
    fx_card_sign(&f->a, "Alice", 1, &f->obj); /* Alice's card, seq 1 */
    *state = f;
    return 0;
}

static bool bytes_eq(struct tf_proto_bytes a, struct tf_proto_bytes b)
{
    return a.len == b.len && (a.len == 0 || memcmp(a.ptr, b.ptr, a.len) == 0);
}

static void assert_list_eq(const struct tf_proto_bytes *a, size_t na,
                           const struct tf_proto_bytes *b, size_t nb)
{
    assert_int_equal(na, nb);
    for (size_t i = 0; i < na; i++)
        assert_true(bytes_eq(a[i], b[i]));
}

static void assert_card_eq(const struct tf_proto_card *got, const struct tf_proto_card *want)
{
    assert_memory_equal(got->sign_pk, want->sign_pk, TF_PROTO_KEY_LEN);
    assert_memory_equal(got->noise_pk, want->noise_pk, TF_PROTO_KEY_LEN);
    assert_memory_equal(got->box_pk, want->box_pk, TF_PROTO_KEY_LEN);
    assert_true(bytes_eq(got->name, want->name));
    assert_list_eq(got->addrs, got->n_addrs, want->addrs, want->n_addrs);
    assert_list_eq(got->offers, got->n_offers, want->offers, want->n_offers);
    assert_list_eq(got->seeks, got->n_seeks, want->seeks, want->n_seeks);
    assert_true(got->issued == want->issued);
    assert_true(got->seq == want->seq);
    assert_int_equal(got->n_mailboxes, want->n_mailboxes);
    for (size_t i = 0; i < want->n_mailboxes; i++) {
        assert_memory_equal(got->mailboxes[i].sign_pk, want->mailboxes[i].sign_pk,
                            TF_PROTO_KEY_LEN);
        assert_list_eq(got->mailboxes[i].addrs, got->mailboxes[i].n_addrs, want->mailboxes[i].addrs,
                       want->mailboxes[i].n_addrs);
    }
}

static bool views_into(struct tf_proto_bytes v, const struct tf_proto_buf *b)
{
    return v.ptr >= b->data && v.ptr + v.len <= b->data + b->len;
}

static void test_round_trip_all_fields(void **state)
{
    struct fx_pair *f = *state;
    struct tf_proto_card want, got;
    fx_card_fields(&f->a, "Alice", 1, &want);
    assert_ok(tf_proto_card_verify(f->obj.data, f->obj.len, &got));
    assert_card_eq(&got, &want);
    assert_true(views_into(got.name, &f->obj));
    assert_true(views_into(got.addrs[1], &f->obj));
    assert_true(views_into(got.seeks[0], &f->obj));

    /* the decoded body is the same card */
    struct tf_proto_statement st;
    assert_ok(tf_proto_statement_parse(f->obj.data, f->obj.len, &st));
    assert_ok(tf_proto_card_decode_body(st.body.ptr, st.body.len, &got));
    assert_card_eq(&got, &want);

    /* extremes: empty lists, full lists, 64-byte name, huge numbers */
    static const char *const tags[16] = {"a", "b", "c", "d", "e", "f", "g", "h",
                                         "i", "j", "k", "l", "m", "n", "o", "p"};
    char name[TF_PROTO_CARD_NAME_MAX];
    struct tf_proto_buf s;
    memset(name, 'n', sizeof name);
    want.name = fx_bytes((const uint8_t *)name, sizeof name);
    want.n_addrs = TF_PROTO_CARD_ADDRS_MAX;
    for (size_t i = 0; i < TF_PROTO_CARD_ADDRS_MAX; i++)
        want.addrs[i] = fx_str("h.example:65535");
    want.n_offers = TF_PROTO_CARD_TAGS_MAX;
    want.n_seeks = 0;
    for (size_t i = 0; i < TF_PROTO_CARD_TAGS_MAX; i++)
        want.offers[i] = fx_str(tags[i]);
    want.issued = UINT64_MAX;
    want.seq = 0;
    assert_ok(tf_proto_card_sign(&f->a, &want, &s));
    assert_ok(tf_proto_card_verify(s.data, s.len, &got));
    assert_card_eq(&got, &want);
    tf_proto_buf_free(&s);
}

static size_t find(const uint8_t *hay, size_t n, const char *needle);

/* Mailboxes (key 11): a card lists up to 3, each with 1..2 addresses; a
 * card without any has no key 11 and is the version-1 encoding byte for
 * byte; the decoder refuses an empty list, a duplicate, the owner itself and
 * bad addresses, and the signer refuses what the decoder would. */
static void test_mailboxes(void **state)
{
    struct fx_pair *f = *state;
    struct tf_proto_card want, got;
    struct tf_proto_buf s, plain;
    fx_card_fields(&f->a, "Alice", 1, &want);
    assert_ok(tf_proto_card_sign(&f->a, &want, &plain));
    /* Without mailboxes: a map of 10 (0x8a) right after the bin header. */
    struct tf_proto_statement st;
    assert_ok(tf_proto_statement_parse(plain.data, plain.len, &st));
    assert_int_equal(st.body.ptr[0], 0x8a);

    want.n_mailboxes = 2;
    memcpy(want.mailboxes[0].sign_pk, f->b.sign_pk, TF_PROTO_KEY_LEN);
    want.mailboxes[0].n_addrs = 2;
    want.mailboxes[0].addrs[0] = fx_str("192.0.2.7:7452");
    want.mailboxes[0].addrs[1] = fx_str("[2001:db8::7]:7452");
    memset(want.mailboxes[1].sign_pk, 0x5a, TF_PROTO_KEY_LEN);
    want.mailboxes[1].n_addrs = 1;
    want.mailboxes[1].addrs[0] = fx_str("mbox.example:1");
    assert_ok(tf_proto_card_sign(&f->a, &want, &s));
    assert_ok(tf_proto_card_verify(s.data, s.len, &got));
    assert_card_eq(&got, &want);
    assert_true(views_into(got.mailboxes[0].addrs[1], &s));
    assert_int_equal(tf_proto_card_mailbox_index(&got, f->b.sign_pk), 0);
    assert_int_equal(tf_proto_card_mailbox_index(&got, f->a.sign_pk), -1);
    assert_ok(tf_proto_statement_parse(s.data, s.len, &st));
    assert_int_equal(st.body.ptr[0], 0x8b);
    /* The body ends with key 11: 0b 92 92 c4 20 <B's key> 92 ae "192.0.2.7:7452" ... */
    size_t k = find(st.body.ptr, st.body.len, "192.0.2.7:7452");
    assert_true(k >= 39);
    assert_memory_equal(st.body.ptr + k - 39, "\x0b\x92\x92\xc4\x20", 5);
    assert_memory_equal(st.body.ptr + k - 34, f->b.sign_pk, TF_PROTO_KEY_LEN);
    assert_memory_equal(st.body.ptr + k - 2, "\x92\xae", 2);
    tf_proto_buf_free(&s);
    tf_proto_buf_free(&plain);

    /* What the signer (and so the decoder) refuses. */
    struct tf_proto_card c = want;
    c.n_mailboxes = 4;
    c.mailboxes[2] = want.mailboxes[1];
    c.mailboxes[2].sign_pk[0] = 1;
    assert_rc(tf_proto_card_sign(&f->a, &c, &s), TF_E_TOO_LONG);
    c = want;
    memcpy(c.mailboxes[1].sign_pk, f->b.sign_pk, TF_PROTO_KEY_LEN);
    assert_rc(tf_proto_card_sign(&f->a, &c, &s), TF_E_BAD_VALUE);
    c = want;
    memcpy(c.mailboxes[1].sign_pk, f->a.sign_pk, TF_PROTO_KEY_LEN);
    assert_rc(tf_proto_card_sign(&f->a, &c, &s), TF_E_BAD_VALUE);
    c = want;
    c.mailboxes[1].n_addrs = 0;
    assert_rc(tf_proto_card_sign(&f->a, &c, &s), TF_E_BAD_LENGTH);
    c = want;
    c.mailboxes[1].n_addrs = 3; /* checked before any address is read */
    assert_rc(tf_proto_card_sign(&f->a, &c, &s), TF_E_TOO_LONG);
    c = want;
    c.mailboxes[1].addrs[0] = fx_str("mbox.example:0");
    assert_rc(tf_proto_card_sign(&f->a, &c, &s), TF_E_BAD_VALUE);
    /* A signed card may not pass 4096 bytes: 8 long addresses, 32 long tags
     * and 3 mailboxes of 2 long addresses do. */
    char addr[TF_PROTO_CARD_ADDR_MAX + 1], tag[TF_PROTO_CARD_TAGS_MAX][TF_PROTO_TAG_MAX + 1];
    memset(addr, 'h', sizeof addr);
    memcpy(addr + TF_PROTO_CARD_ADDR_MAX - 6, ":65535", 7);
    c = want;
    c.n_addrs = TF_PROTO_CARD_ADDRS_MAX;
    for (size_t i = 0; i < c.n_addrs; i++)
        c.addrs[i] = fx_str(addr);
    c.n_offers = c.n_seeks = TF_PROTO_CARD_TAGS_MAX;
    for (size_t i = 0; i < TF_PROTO_CARD_TAGS_MAX; i++) {
        memset(tag[i], 'a' + (int)i, TF_PROTO_TAG_MAX);
        tag[i][TF_PROTO_TAG_MAX] = '\0';
        c.offers[i] = c.seeks[i] = fx_str(tag[i]);
    }
    c.n_mailboxes = 3;
    c.mailboxes[2] = want.mailboxes[1];
    c.mailboxes[2].sign_pk[0] ^= 1;
    for (size_t i = 0; i < 3; i++) {
        c.mailboxes[i].n_addrs = 2;
        c.mailboxes[i].addrs[0] = c.mailboxes[i].addrs[1] = fx_str(addr);
    }
    assert_rc(tf_proto_card_sign(&f->a, &c, &s), TF_E_TOO_LONG);
}

/* A card body written by hand from card.h, so any single field, key or count
 * can be wrong while the signature (by the right key) is good. */
struct spec {
    uint32_t map_count;
    uint64_t keys[20];
    size_t n_keys;
    uint64_t version;
    size_t sign_pk_len;
    struct tf_proto_card c;
    const struct tf_proto_bytes *list[3]; /* addrs, offers, seeks */
    size_t n[3];
    bool trailing;
};

static void spec_default(const struct tf_proto_identity *id, struct spec *s)
{
    memset(s, 0, sizeof *s);
    s->map_count = 10;
    s->n_keys = 10;
    for (size_t i = 0; i < 10; i++)
        s->keys[i] = i + 1;
    s->version = TF_PROTO_CARD_VERSION;
    s->sign_pk_len = TF_PROTO_KEY_LEN;
    fx_card_fields(id, "Alice", 1, &s->c);
    s->list[0] = s->c.addrs;
    s->n[0] = s->c.n_addrs;
    s->list[1] = s->c.offers;
    s->n[1] = s->c.n_offers;
    s->list[2] = s->c.seeks;
    s->n[2] = s->c.n_seeks;
}

static void write_field(struct tf_proto_mp_writer *w, const struct spec *s, uint64_t key)
{
    switch (key) {
    case 1:
        tf_proto_mp_write_uint(w, s->version);
        break;
    case 2:
        tf_proto_mp_write_bin(w, s->c.sign_pk, s->sign_pk_len);
        break;
    case 3:
        tf_proto_mp_write_bin(w, s->c.noise_pk, TF_PROTO_KEY_LEN);
        break;
    case 4:
        tf_proto_mp_write_bin(w, s->c.box_pk, TF_PROTO_KEY_LEN);
        break;
    case 5:
        tf_proto_mp_write_text(w, s->c.name);
        break;
    case 6:
    case 7:
    case 8:
        tf_proto_mp_write_array(w, (uint32_t)s->n[key - 6]);
        for (size_t i = 0; i < s->n[key - 6]; i++)
            tf_proto_mp_write_text(w, s->list[key - 6][i]);
        break;
    case 9:
        tf_proto_mp_write_uint(w, s->c.issued);
        break;
    case 10:
        tf_proto_mp_write_uint(w, s->c.seq);
        break;
    default:
        tf_proto_mp_write_nil(w);
        break;
    }
}

static void spec_sign(const struct tf_proto_identity *id, const struct spec *s,
                      struct tf_proto_buf *out)
{
    struct tf_proto_mp_writer w;
    struct tf_proto_buf body;
    tf_proto_mp_writer_init(&w);
    tf_proto_mp_write_map(&w, s->map_count);
    for (size_t i = 0; i < s->n_keys; i++) {
        tf_proto_mp_write_uint(&w, s->keys[i]);
        write_field(&w, s, s->keys[i]);
    }
    if (s->trailing)
        tf_proto_mp_write_nil(&w);
    fx_finish(&w, &body);
    assert_ok(tf_proto_statement_sign(id, TF_PROTO_DOMAIN_CARD, body.data, body.len, out));
    tf_proto_buf_free(&body);
}

static void test_hand_encoding_matches(void **state)
{
    struct fx_pair *f = *state;
    struct spec s;
    struct tf_proto_buf out;
    spec_default(&f->a, &s);
    spec_sign(&f->a, &s, &out);
    assert_int_equal(out.len, f->obj.len);
    assert_memory_equal(out.data, f->obj.data, out.len);
    tf_proto_buf_free(&out);
}

/* Mutations of a valid body, each breaking exactly one thing. */
static const struct tf_proto_bytes MANY_TAGS[17] = {
    {(const uint8_t *)"t1", 2},  {(const uint8_t *)"t2", 2},  {(const uint8_t *)"t3", 2},
    {(const uint8_t *)"t4", 2},  {(const uint8_t *)"t5", 2},  {(const uint8_t *)"t6", 2},
    {(const uint8_t *)"t7", 2},  {(const uint8_t *)"t8", 2},  {(const uint8_t *)"t9", 2},
    {(const uint8_t *)"t10", 3}, {(const uint8_t *)"t11", 3}, {(const uint8_t *)"t12", 3},
    {(const uint8_t *)"t13", 3}, {(const uint8_t *)"t14", 3}, {(const uint8_t *)"t15", 3},
    {(const uint8_t *)"t16", 3}, {(const uint8_t *)"t17", 3},
};
static const struct tf_proto_bytes MANY_ADDRS[9] = {
    {(const uint8_t *)"a1:1", 4}, {(const uint8_t *)"a2:1", 4}, {(const uint8_t *)"a3:1", 4},
    {(const uint8_t *)"a4:1", 4}, {(const uint8_t *)"a5:1", 4}, {(const uint8_t *)"a6:1", 4},
    {(const uint8_t *)"a7:1", 4}, {(const uint8_t *)"a8:1", 4}, {(const uint8_t *)"a9:1", 4},
};
static const char LONG65[] = "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";
static const char LONG64[] = "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";

static void m_dup_key5(struct spec *s)
{
    s->keys[5] = 5; /* 1,2,3,4,5,5,7,... */
}
static void m_swap_5_6(struct spec *s)
{
    s->keys[4] = 6;
    s->keys[5] = 5;
}
static void m_key0_first(struct spec *s)
{
    s->keys[0] = 0;
}
static void m_skip_key(struct spec *s)
{
    s->keys[2] = 4; /* 1,2,4,4,... : 3 is missing, reported where it is expected */
}
static void m_missing_seq(struct spec *s)
{
    s->map_count = 9;
    s->n_keys = 9;
}
static void m_extra_key(struct spec *s)
{
    s->map_count = 11;
    s->keys[s->n_keys++] = 11;
}
static void m_no_keys(struct spec *s)
{
    s->map_count = 0;
    s->n_keys = 0;
}
static void m_key2_again(struct spec *s)
{
    s->keys[5] = 2; /* 1,2,3,4,5,2: seen before, though not the last key */
}
static void m_version2(struct spec *s)
{
    s->version = 2;
}
static void m_version0(struct spec *s)
{
    s->version = 0;
}
static void m_short_sign_pk(struct spec *s)
{
    s->sign_pk_len = 31;
}
static void m_name_empty(struct spec *s)
{
    s->c.name = fx_str("");
}
static void m_name_65(struct spec *s)
{
    s->c.name = fx_str(LONG65);
}
static void m_name_64(struct spec *s)
{
    s->c.name = fx_str(LONG64);
}
static void m_name_newline(struct spec *s)
{
    s->c.name = fx_str("Ali\nce");
}
static void m_name_bad_utf8(struct spec *s)
{
    s->c.name = fx_str("Ali\xc0\x80");
}
static void m_9_addrs(struct spec *s)
{
    s->list[0] = MANY_ADDRS;
    s->n[0] = 9;
}
static void m_8_addrs(struct spec *s)
{
    s->list[0] = MANY_ADDRS;
    s->n[0] = 8;
}
static void m_17_offers(struct spec *s)
{
    s->list[1] = MANY_TAGS;
    s->n[1] = 17;
}
static void m_16_offers(struct spec *s)
{
    s->list[1] = MANY_TAGS;
    s->n[1] = 16;
}
static void m_17_seeks(struct spec *s)
{
    s->list[2] = MANY_TAGS;
    s->n[2] = 17;
}
static void m_bad_addr(struct spec *s)
{
    s->c.addrs[1] = fx_str("example.org");
}
static void m_bad_offer(struct spec *s)
{
    s->c.offers[0] = fx_str("Rust");
}
static void m_bad_seek(struct spec *s)
{
    s->c.seeks[1] = fx_str("c11-");
}
static void m_empty_tag(struct spec *s)
{
    s->c.seeks[1] = fx_str("");
}
static void m_long_tag(struct spec *s)
{
    s->c.offers[0] = fx_str(LONG65);
}
static void m_trailing(struct spec *s)
{
    s->trailing = true;
}
static void m_key5_again(struct spec *s)
{
    s->keys[8] = 5; /* key 5 (a string) where 9 is due: seen before */
}

static void test_body_rejections(void **state)
{
    struct fx_pair *f = *state;
    static const struct {
        const char *what;
        void (*mutate)(struct spec *);
        int want;
    } cases[] = {
        {"duplicate key 5", m_dup_key5, TF_E_DUP_KEY},
        {"keys 6 before 5", m_swap_5_6, TF_E_BAD_KEY},
        {"key 0 first", m_key0_first, TF_E_BAD_KEY},
        {"key 3 skipped", m_skip_key, TF_E_BAD_KEY},
        {"key 5 again where 9 is due", m_key5_again, TF_E_DUP_KEY},
        {"key 2 again where 6 is due", m_key2_again, TF_E_DUP_KEY},
        {"9 keys", m_missing_seq, TF_E_COUNT},
        /* Key 11 (mailboxes) is optional: an 11th key is read as it. */
        {"11 keys, key 11 not an array", m_extra_key, TF_E_TYPE},
        {"0 keys", m_no_keys, TF_E_COUNT},
        {"version 2", m_version2, TF_E_VERSION},
        {"version 0", m_version0, TF_E_VERSION},
        {"31-byte sign_pk", m_short_sign_pk, TF_E_BAD_LENGTH},
        {"empty name", m_name_empty, TF_E_BAD_LENGTH},
        {"65-byte name", m_name_65, TF_E_TOO_LONG},
        {"64-byte name", m_name_64, TF_OK},
        {"name with newline", m_name_newline, TF_E_BAD_TEXT},
        {"name with overlong NUL", m_name_bad_utf8, TF_E_BAD_UTF8},
        {"9 addresses", m_9_addrs, TF_E_TOO_LONG},
        {"8 addresses", m_8_addrs, TF_OK},
        {"17 offers", m_17_offers, TF_E_TOO_LONG},
        {"16 offers", m_16_offers, TF_OK},
        {"17 seeks", m_17_seeks, TF_E_TOO_LONG},
        {"address without port", m_bad_addr, TF_E_BAD_VALUE},
        {"upper-case offer", m_bad_offer, TF_E_BAD_VALUE},
        {"seek ending in '-'", m_bad_seek, TF_E_BAD_VALUE},
        {"empty tag", m_empty_tag, TF_E_BAD_LENGTH},
        {"65-byte tag", m_long_tag, TF_E_TOO_LONG},
        {"trailing byte in body", m_trailing, TF_E_TRAILING},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        struct spec s;
        struct tf_proto_buf out;
        struct tf_proto_card c;
        spec_default(&f->a, &s);
        cases[i].mutate(&s);
        spec_sign(&f->a, &s, &out);
        int rc = tf_proto_card_verify(out.data, out.len, &c);
        tf_proto_buf_free(&out);
        if (rc != cases[i].want)
            fail_msg("%s: got %s, want %s", cases[i].what, tf_err_name(rc),
                     tf_err_name(cases[i].want));
    }
}

/* PROTOCOL.md section 2: "A map with another number of entries than
 * expected is E_COUNT (checked on its header)", whatever the number, once the
 * entries fit in the bytes left. */
static void test_map_of_12_or_more_entries_is_count(void **state)
{
    struct fx_pair *f = *state;
    static const size_t counts[] = {12, 16, 20};
    for (size_t i = 0; i < sizeof counts / sizeof counts[0]; i++) {
        struct spec s;
        struct tf_proto_buf out;
        struct tf_proto_card c;
        spec_default(&f->a, &s);
        s.map_count = (uint32_t)counts[i];
        while (s.n_keys < counts[i]) {
            s.keys[s.n_keys] = s.n_keys + 1;
            s.n_keys++;
        }
        spec_sign(&f->a, &s, &out);
        int rc = tf_proto_card_verify(out.data, out.len, &c);
        tf_proto_buf_free(&out);
        if (rc != TF_E_COUNT)
            fail_msg("map of %zu entries: got %s, want E_COUNT", counts[i], tf_err_name(rc));
    }
}

/* Offset of the first occurrence of needle in hay (which must hold it). */
static size_t find(const uint8_t *hay, size_t n, const char *needle)
{
    size_t k = strlen(needle);
    for (size_t i = 0; i + k <= n; i++)
        if (memcmp(hay + i, needle, k) == 0)
            return i;
    fail_msg("\"%s\" not found", needle);
    return 0;
}

static void test_bad_signature(void **state)
{
    struct fx_pair *f = *state;
    struct tf_proto_card c;
    struct tf_proto_buf s;

    /* a byte of the body (a letter of the name) */
    uint8_t *p = fx_dup(f->obj.data, f->obj.len, 0);
    size_t at = find(p, f->obj.len, "Alice");
    p[at] = 'B';
    assert_rc(tf_proto_card_verify(p, f->obj.len, &c), TF_E_BAD_SIG);
    free(p);

    /* every byte of the signature */
    p = fx_dup(f->obj.data, f->obj.len, 0);
    for (size_t i = f->obj.len - TF_PROTO_SIG_LEN; i < f->obj.len; i++) {
        p[i] ^= 0x04;
        assert_rc(tf_proto_card_verify(p, f->obj.len, &c), TF_E_BAD_SIG);
        p[i] ^= 0x04;
    }
    free(p);

    /* the same body in another domain, or signed by another key */
    fx_resign(&f->a, TF_PROTO_DOMAIN_PROPOSAL, &f->obj, &s);
    assert_rc(tf_proto_card_verify(s.data, s.len, &c), TF_E_BAD_SIG);
    tf_proto_buf_free(&s);
    fx_resign(&f->b, TF_PROTO_DOMAIN_CARD, &f->obj, &s);
    assert_rc(tf_proto_card_verify(s.data, s.len, &c), TF_E_BAD_SIG);
    tf_proto_buf_free(&s);
}

/* A known card skips only the signature check, and only for the very bytes
 * the caller vouches for. */
static void test_verify_known(void **state)
{
    struct fx_pair *f = *state;
    struct tf_proto_card c, want;
    struct tf_proto_known none = {NULL, 0}, good = {f->obj.data, f->obj.len};
    assert_ok(tf_proto_card_verify(f->obj.data, f->obj.len, &want));
    assert_ok(tf_proto_card_verify_known(f->obj.data, f->obj.len, good, &c));
    assert_card_eq(&c, &want);
    assert_ok(tf_proto_card_verify_known(f->obj.data, f->obj.len, none, &c));
    assert_true(tf_proto_known_matches(good, f->obj.data, f->obj.len));
    assert_false(tf_proto_known_matches(none, f->obj.data, f->obj.len));
    assert_false(tf_proto_known_matches(good, f->obj.data, f->obj.len - 1));

    uint8_t *p = fx_dup(f->obj.data, f->obj.len, 0);
    p[f->obj.len - 1] ^= 0x04; /* a forged signature */
    struct tf_proto_known forged = {p, f->obj.len};
    assert_rc(tf_proto_card_verify_known(p, f->obj.len, good, &c), TF_E_BAD_SIG);
    assert_rc(tf_proto_card_verify_known(p, f->obj.len, none, &c), TF_E_BAD_SIG);
    /* Vouching for bytes is the caller's promise: they are not checked. */
    assert_ok(tf_proto_card_verify_known(p, f->obj.len, forged, &c));
    /* The format is checked whatever is known. */
    struct tf_proto_known trunc = {p, f->obj.len - 1};
    assert_int_not_equal(tf_proto_card_verify_known(p, f->obj.len - 1, trunc, &c), TF_OK);
    free(p);
}

static void test_text_round_trip(void **state)
{
    struct fx_pair *f = *state;
    char *text = NULL;
    struct tf_proto_buf back;
    struct tf_proto_card c, want;
    fx_card_fields(&f->a, "Alice", 1, &want);
    assert_ok(tf_proto_card_to_text(f->obj.data, f->obj.len, &text));
    assert_non_null(text);
    assert_memory_equal(text, "tfcard1:", 8);
    for (const char *q = text + 8; *q; q++)
        assert_non_null(
            strchr("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_", *q));
    assert_int_equal(strlen(text), 8 + (f->obj.len * 4 + 2) / 3);

    assert_ok(tf_proto_card_from_text(text, strlen(text), &back, &c));
    assert_int_equal(back.len, f->obj.len);
    assert_memory_equal(back.data, f->obj.data, back.len);
    assert_card_eq(&c, &want);
    assert_true(views_into(c.name, &back));
    tf_proto_buf_free(&back);

    /* surrounding whitespace is trimmed */
    size_t n = strlen(text);
    char *padded = malloc(n + 9);
    assert_non_null(padded);
    memcpy(padded, " \t\r\n", 4);
    memcpy(padded + 4, text, n);
    memcpy(padded + 4 + n, "\n\r\t ", 4);
    assert_ok(tf_proto_card_from_text(padded, n + 8, &back, &c));
    assert_memory_equal(back.data, f->obj.data, back.len);
    tf_proto_buf_free(&back);
    free(padded);
    free(text);
}

static int from_text(const char *text)
{
    struct tf_proto_buf back = {NULL, 0};
    struct tf_proto_card c;
    int rc = tf_proto_card_from_text(text, strlen(text), &back, &c);
    tf_proto_buf_free(&back);
    return rc;
}

/* The card's text with text[at] replaced by c (at < 0 counts from the end),
 * or with s inserted at `at` when s is non-NULL. */
static char *edited_text(const struct fx_pair *f, long at, char c, const char *ins)
{
    char *text;
    assert_ok(tf_proto_card_to_text(f->obj.data, f->obj.len, &text));
    size_t n = strlen(text), extra = ins ? strlen(ins) : 0;
    size_t pos = at < 0 ? n - (size_t)-at : (size_t)at;
    char *out = malloc(n + extra + 1);
    assert_non_null(out);
    memcpy(out, text, pos);
    memcpy(out + pos, ins ? ins : "", extra);
    memcpy(out + pos + extra, text + pos, n - pos + 1);
    if (!ins)
        out[pos] = out[pos] == c ? (char)(c + 1) : c;
    free(text);
    return out;
}

static void test_text_errors(void **state)
{
    struct fx_pair *f = *state;
    static const struct {
        long at;
        char c;
        const char *ins;
        int want;
    } cases[] = {
        {-20, 'A', NULL, TF_E_BAD_SIG},        /* a signature character */
        {-40, 'z', NULL, TF_E_BAD_SIG},        /* another one */
        {0, 'T', NULL, TF_E_BAD_PREFIX},       /* "Tfcard1:" */
        {6, '2', NULL, TF_E_BAD_PREFIX},       /* "tfcard2:" */
        {7, ';', NULL, TF_E_BAD_PREFIX},       /* "tfcard1;" */
        {20, '!', NULL, TF_E_BAD_ENCODING},    /* not base64 */
        {20, '+', NULL, TF_E_BAD_ENCODING},    /* standard, not url-safe, alphabet */
        {20, 0, " ", TF_E_BAD_ENCODING},       /* whitespace inside */
        {20, 0, "\n", TF_E_BAD_ENCODING},      /* line break inside */
        {-1, 0, "=", TF_E_BAD_ENCODING},       /* padding */
        {8, 0, "tfcard1:", TF_E_BAD_ENCODING}, /* prefix twice */
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char *t = edited_text(f, cases[i].at, cases[i].c, cases[i].ins);
        int rc = from_text(t);
        if (rc != cases[i].want)
            fail_msg("case %zu (%s): got %s, want %s", i, t, tf_err_name(rc),
                     tf_err_name(cases[i].want));
        free(t);
    }
    assert_rc(from_text(""), TF_E_BAD_PREFIX);
    assert_rc(from_text("   "), TF_E_BAD_PREFIX);
    assert_rc(from_text("tfcard1"), TF_E_BAD_PREFIX);
    assert_rc(from_text("tfcard1:@@@@"), TF_E_BAD_ENCODING);

    /* a byte outside ASCII (libsodium 1.0.18 alone would take some) */
    char *t = edited_text(f, 20, 0, "\xc3\xa9");
    assert_rc(from_text(t), TF_E_BAD_ENCODING);
    free(t);

    /* a huge text is refused before it is decoded */
    size_t n = 8 + 4 * TF_PROTO_CARD_SIGNED_MAX;
    char *big = malloc(n + 1);
    assert_non_null(big);
    memcpy(big, "tfcard1:", 8);
    memset(big + 8, 'A', n - 8);
    big[n] = '\0';
    assert_rc(from_text(big), TF_E_TOO_LONG);
    free(big);
}

/* The last character of a text whose length is not a multiple of 3 bytes
 * carries unused low bits; they must be zero. */
static void test_text_padding_bits(void **state)
{
    struct fx_pair *f = *state;
    static const char B64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    static const char *const names[] = {"A", "AB", "ABC"};
    size_t tried = 0;
    for (size_t i = 0; i < 3; i++) {
        struct tf_proto_buf card;
        char *text;
        fx_card_sign(&f->a, names[i], 1, &card);
        assert_ok(tf_proto_card_to_text(card.data, card.len, &text));
        if (card.len % 3 != 0) {
            char *last = text + strlen(text) - 1;
            size_t v = (size_t)(strchr(B64, *last) - B64);
            assert_int_equal(v & 1u, 0);
            *last = B64[v | 1u];
            assert_rc(from_text(text), TF_E_BAD_ENCODING);
            tried++;
        }
        free(text);
        tf_proto_buf_free(&card);
    }
    assert_true(tried >= 2);
}

/* PROTOCOL.md section 6: "text longer than the base64 of 4096 bytes is
 * E_TOO_LONG" (the next check, the alphabet, is never reached).  The base64
 * of 4096 bytes is 5462 characters. */
static void test_text_longer_than_base64_of_4096_bytes(void **state)
{
    (void)state;
    size_t max = (TF_PROTO_CARD_SIGNED_MAX * 4 + 2) / 3;
    char *t = malloc(8 + max + 2);
    assert_int_equal(max, 5462);
    assert_non_null(t);
    memcpy(t, "tfcard1:", 8);
    memset(t + 8, 'A', max);
    t[8 + max] = '\0';
    /* exactly the limit: decoded (4096 zero bytes are not a statement) */
    int at_limit = from_text(t);
    /* one more character, not even base64 */
    t[8 + max] = '!';
    t[8 + max + 1] = '\0';
    int over = from_text(t);
    free(t);
    assert_rc(at_limit, TF_E_TYPE);
    assert_rc(over, TF_E_TOO_LONG);
}

static void test_size_limits(void **state)
{
    (void)state;
    uint8_t *big = calloc(1, TF_PROTO_CARD_SIGNED_MAX + 1);
    struct tf_proto_card c;
    char *text = NULL;
    assert_non_null(big);
    assert_rc(tf_proto_card_verify(big, TF_PROTO_CARD_SIGNED_MAX + 1, &c), TF_E_TOO_LONG);
    assert_rc(tf_proto_card_to_text(big, TF_PROTO_CARD_SIGNED_MAX + 1, &text), TF_E_TOO_LONG);
    assert_null(text);
    free(big);
}

static int sign_with(const struct tf_proto_identity *id, const struct tf_proto_card *c)
{
    struct tf_proto_buf out = {NULL, 0};
    int rc = tf_proto_card_sign(id, c, &out);
    if (rc != TF_OK)
        assert_null(out.data);
    tf_proto_buf_free(&out);
    return rc;
}

static void test_sign_rejections(void **state)
{
    struct fx_pair *f = *state;
    struct tf_proto_card c;

    fx_card_fields(&f->a, "Alice", 1, &c);
    assert_ok(sign_with(&f->a, &c));
    assert_rc(sign_with(&f->b, &c), TF_E_KEY_MISMATCH);
    memcpy(c.noise_pk, f->b.noise_pk, TF_PROTO_KEY_LEN);
    assert_rc(sign_with(&f->a, &c), TF_E_KEY_MISMATCH);
    fx_card_fields(&f->a, "Alice", 1, &c);
    memcpy(c.box_pk, f->b.box_pk, TF_PROTO_KEY_LEN);
    assert_rc(sign_with(&f->a, &c), TF_E_KEY_MISMATCH);

    static const struct {
        const char *name;
        size_t field; /* 0 name, 1 addr, 2 offer, 3 seek, 4..6 counts */
        const char *value;
        int want;
    } cases[] = {
        {"empty name", 0, "", TF_E_BAD_VALUE},
        {"65-byte name", 0, LONG65, TF_E_BAD_VALUE},
        {"invalid UTF-8 name", 0, "\xed\xa0\x80", TF_E_BAD_VALUE},
        {"name with tab", 0, "a\tb", TF_E_BAD_TEXT},
        {"name with DEL", 0, "a\x7f", TF_E_BAD_TEXT},
        {"address port 0", 1, "example.org:0", TF_E_BAD_VALUE},
        {"offer with space", 2, "a b", TF_E_BAD_VALUE},
        {"seek starting with '-'", 3, "-ai", TF_E_BAD_VALUE},
        {"9 addresses", 4, NULL, TF_E_TOO_LONG},
        {"17 offers", 5, NULL, TF_E_TOO_LONG},
        {"17 seeks", 6, NULL, TF_E_TOO_LONG},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        fx_card_fields(&f->a, "Alice", 1, &c);
        switch (cases[i].field) {
        case 0:
            c.name = fx_str(cases[i].value);
            break;
        case 1:
            c.addrs[0] = fx_str(cases[i].value);
            break;
        case 2:
            c.offers[0] = fx_str(cases[i].value);
            break;
        case 3:
            c.seeks[0] = fx_str(cases[i].value);
            break;
        case 4:
            c.n_addrs = TF_PROTO_CARD_ADDRS_MAX + 1;
            break;
        case 5:
            c.n_offers = TF_PROTO_CARD_TAGS_MAX + 1;
            break;
        default:
            c.n_seeks = TF_PROTO_CARD_TAGS_MAX + 1;
            break;
        }
        int rc = sign_with(&f->a, &c);
        if (rc != cases[i].want)
            fail_msg("%s: got %s, want %s", cases[i].name, tf_err_name(rc),
                     tf_err_name(cases[i].want));
    }
}

static void test_supersedes(void **state)
{
    struct fx_pair *f = *state;
    struct tf_proto_card held, newer, same, older, other;
    fx_card_fields(&f->a, "Alice", 5, &held);
    fx_card_fields(&f->a, "Alice", 6, &newer);
    fx_card_fields(&f->a, "Alice B.", 5, &same);
    fx_card_fields(&f->a, "Alice", 4, &older);
    fx_card_fields(&f->b, "Bob", 9, &other);
    assert_ok(tf_proto_card_supersedes(&newer, &held));
    assert_rc(tf_proto_card_supersedes(&same, &held), TF_E_STALE);
    assert_rc(tf_proto_card_supersedes(&older, &held), TF_E_STALE);
    assert_rc(tf_proto_card_supersedes(&other, &held), TF_E_KEY_MISMATCH);
    assert_rc(tf_proto_card_supersedes(&held, &newer), TF_E_STALE);
}

struct str_case {
    const char *s;
    bool valid;
};

static void check_validator(bool (*fn)(const uint8_t *, size_t), const struct str_case *cases,
                            size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (fn((const uint8_t *)cases[i].s, strlen(cases[i].s)) != cases[i].valid)
            fail_msg("\"%s\": want %s", cases[i].s, cases[i].valid ? "valid" : "invalid");
}

static void test_tag_is_valid(void **state)
{
    (void)state;
    static const struct str_case cases[] = {
        {"a", true},
        {"rust", true},
        {"ai-safety", true},
        {"c11", true},
        {"0", true},
        {"a-b-c", true},
        {LONG64, true},
        {"", false},
        {LONG65, false},
        {"-a", false},
        {"a-", false},
        {"-", false},
        {"Rust", false},
        {"a b", false},
        {"a_b", false},
        {"a.b", false},
        {"caf\xc3\xa9", false},
        {"a\n", false},
        {"a/b", false},
        {"a:b", false},
    };
    check_validator(tf_proto_tag_is_valid, cases, sizeof cases / sizeof cases[0]);
    assert_false(tf_proto_tag_is_valid((const uint8_t *)"a\0b", 3));
}

/* A re-issued card outranks every card issued before it, even from a store
 * restored from an older backup: max(prev + 1, now in ms). */
static void test_next_seq(void **state)
{
    (void)state;
    assert_int_equal(tf_proto_card_next_seq(1, 1796591172000ull), 1796591172000ull);
    /* Two cards in one millisecond, or a clock that went back. */
    assert_int_equal(tf_proto_card_next_seq(1796591172000ull, 1796591172000ull), 1796591172001ull);
    assert_int_equal(tf_proto_card_next_seq(1796591172500ull, 5), 1796591172501ull);
    /* No clock: still one more than the last. */
    assert_int_equal(tf_proto_card_next_seq(7, 0), 8);
}

static void test_addr_is_valid(void **state)
{
    (void)state;
    static const struct str_case cases[] = {
        {"example.org:7451", true},
        {"127.0.0.1:1", true},
        {"[::1]:65535", true},
        {"[2001:db8::1]:443", true},
        {"[::ffff:192.0.2.1]:80", true},
        {"a:1", true},
        {"Host-1.Example.ORG:8080", true},
        {"localhost:65535", true},
        {"example.org", false},
        {"example.org:", false},
        {"example.org:0", false},
        {"example.org:65536", false},
        {"example.org:99999", false},
        {"example.org:123456", false},
        {"example.org:07451", false},
        {"example.org:00", false},
        {"example.org:+80", false},
        {"example.org:-1", false},
        {"example.org:80a", false},
        {"example.org: 80", false},
        {":7451", false},
        {"exa mple.org:7451", false},
        {" example.org:7451", false},
        {"example.org:7451 ", false},
        {"exa_mple.org:7451", false},
        {"-example.org:7451", false},
        {".example.org:7451", false},
        {"::1:80", false},
        {"[::1]", false},
        {"[]:80", false},
        {"[::1:80", false},
        {"::1]:80", false},
        {"[::1]x:80", false},
        {"[fe80::1%eth0]:80", false},
        {"[::g]:80", false},
        {"user@example.org:80", false},
        {"caf\xc3\xa9.example:80", false},
        {"", false},
        {":", false},
    };
    check_validator(tf_proto_addr_is_valid, cases, sizeof cases / sizeof cases[0]);

    /* 128 bytes is the limit */
    char a[TF_PROTO_CARD_ADDR_MAX + 2];
    memset(a, 'h', sizeof a);
    memcpy(a + TF_PROTO_CARD_ADDR_MAX - 2, ":1", 2);
    assert_true(tf_proto_addr_is_valid((const uint8_t *)a, TF_PROTO_CARD_ADDR_MAX));
    memset(a, 'h', sizeof a);
    memcpy(a + TF_PROTO_CARD_ADDR_MAX - 1, ":1", 2);
    assert_false(tf_proto_addr_is_valid((const uint8_t *)a, TF_PROTO_CARD_ADDR_MAX + 1));
}

int main(void)
{
    if (sodium_init() < 0)
        return 1;
#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, fx_pair_teardown)
    const struct CMUnitTest tests[] = {
        T(test_round_trip_all_fields),
        T(test_hand_encoding_matches),
        T(test_body_rejections),
        T(test_map_of_12_or_more_entries_is_count),
        T(test_mailboxes),
        T(test_bad_signature),
        T(test_verify_known),
        T(test_text_round_trip),
        T(test_text_errors),
        T(test_text_padding_bits),
        cmocka_unit_test(test_text_longer_than_base64_of_4096_bytes),
        cmocka_unit_test(test_size_limits),
        T(test_sign_rejections),
        T(test_supersedes),
        cmocka_unit_test(test_tag_is_valid),
        cmocka_unit_test(test_addr_is_valid),
        cmocka_unit_test(test_next_seq),
    };
#undef T
    return cmocka_run_group_tests(tests, NULL, NULL);
}
