/* SPDX-License-Identifier: MIT */
/* Unit tests for proto/mp: the canonical msgpack writer and bounded reader. */
#include "fixtures.h"

#include "proto/mp.h"

/* Reads one value of a given kind with the loosest bounds. */
enum kind { K_UINT, K_STR, K_BIN, K_ARRAY, K_MAP, K_BOOL, K_NIL };

static int read_kind(enum kind k, const uint8_t *buf, size_t len)
{
    struct tf_proto_mp_reader r;
    struct tf_proto_bytes v;
    uint64_t u;
    uint32_t n;
    bool b;
    tf_proto_mp_reader_init(&r, buf, len);
    switch (k) {
    case K_UINT:
        return tf_proto_mp_read_uint(&r, &u);
    case K_STR:
        return tf_proto_mp_read_str(&r, 0, SIZE_MAX, TF_PROTO_TEXT_LINE, &v);
    case K_BIN:
        return tf_proto_mp_read_bin(&r, 0, SIZE_MAX, &v);
    case K_ARRAY:
        return tf_proto_mp_read_array(&r, UINT32_MAX, &n);
    case K_MAP:
        return tf_proto_mp_read_map(&r, UINT32_MAX, &n);
    case K_BOOL:
        return tf_proto_mp_read_bool(&r, &b);
    case K_NIL:
        return tf_proto_mp_read_nil(&r);
    }
    return TF_E_INVALID_ARG;
}

/* A header followed by `payload` bytes of 'a' (a valid str byte and a
 * positive fixint, so it also serves as array elements and map pairs). */
static uint8_t *with_payload(const uint8_t *hdr, size_t hlen, size_t payload, size_t *len)
{
    uint8_t *p = malloc(hlen + payload + 1);
    assert_non_null(p);
    memcpy(p, hdr, hlen);
    memset(p + hlen, 'a', payload);
    *len = hlen + payload;
    return p;
}

static void write_value(struct tf_proto_mp_writer *w, enum kind k, uint64_t n, const uint8_t *fill)
{
    switch (k) {
    case K_UINT:
        tf_proto_mp_write_uint(w, n);
        break;
    case K_STR:
        tf_proto_mp_write_str(w, (const char *)fill, (size_t)n);
        break;
    case K_BIN:
        tf_proto_mp_write_bin(w, fill, (size_t)n);
        break;
    case K_ARRAY:
        tf_proto_mp_write_array(w, (uint32_t)n);
        for (uint64_t i = 0; i < n; i++)
            tf_proto_mp_write_uint(w, 1);
        break;
    case K_MAP:
        tf_proto_mp_write_map(w, (uint32_t)n);
        for (uint64_t i = 0; i < 2 * n; i++)
            tf_proto_mp_write_uint(w, 1);
        break;
    case K_BOOL:
        tf_proto_mp_write_bool(w, n != 0);
        break;
    case K_NIL:
        tf_proto_mp_write_nil(w);
        break;
    }
}

/* Writes one value, checks its header size, reads it back and checks the
 * value and that nothing is left. */
struct rt_case {
    enum kind kind;
    uint64_t n; /* value, length or count */
    size_t header;
};

static void round_trip(const struct rt_case *c, const uint8_t *fill)
{
    struct tf_proto_mp_writer w;
    struct tf_proto_buf out;
    struct tf_proto_mp_reader r;
    struct tf_proto_bytes v;
    uint64_t u = 0;
    uint32_t n = 0;
    bool b = false;
    uint64_t per_entry = c->kind == K_MAP ? 2u : 1u; /* values per element */
    tf_proto_mp_writer_init(&w);
    write_value(&w, c->kind, c->n, fill);
    fx_finish(&w, &out);
    tf_proto_mp_reader_init(&r, out.data, out.len);
    switch (c->kind) {
    case K_UINT:
        assert_int_equal(out.len, c->header);
        assert_ok(tf_proto_mp_read_uint(&r, &u));
        assert_true(u == c->n);
        break;
    case K_STR:
    case K_BIN:
        assert_int_equal(out.len, c->header + c->n);
        if (c->kind == K_STR)
            assert_ok(tf_proto_mp_read_str(&r, c->n, c->n, TF_PROTO_TEXT_LINE, &v));
        else
            assert_ok(tf_proto_mp_read_bin(&r, c->n, c->n, &v));
        assert_int_equal(v.len, c->n);
        assert_ptr_equal(v.ptr, out.data + c->header);
        assert_memory_equal(v.ptr, fill, c->n);
        break;
    case K_ARRAY:
    case K_MAP:
        assert_int_equal(out.len, c->header + per_entry * c->n);
        if (c->kind == K_ARRAY)
            assert_ok(tf_proto_mp_read_array(&r, (uint32_t)c->n, &n));
        else
            assert_ok(tf_proto_mp_read_map(&r, (uint32_t)c->n, &n));
        assert_int_equal(n, c->n);
        for (uint64_t i = 0; i < per_entry * c->n; i++)
            assert_ok(tf_proto_mp_read_uint(&r, &u));
        break;
    case K_BOOL:
        assert_int_equal(out.len, 1);
        assert_ok(tf_proto_mp_read_bool(&r, &b));
        assert_int_equal(b, c->n != 0);
        break;
    case K_NIL:
        assert_int_equal(out.len, 1);
        assert_true(tf_proto_mp_peek_nil(&r));
        assert_ok(tf_proto_mp_read_nil(&r));
        assert_false(tf_proto_mp_peek_nil(&r));
        break;
    }
    assert_ok(tf_proto_mp_read_end(&r));
    assert_ok(tf_proto_mp_check(out.data, out.len, TF_PROTO_MP_MAX_DEPTH));
    tf_proto_buf_free(&out);
}

static void test_round_trip_every_type_and_width(void **state)
{
    (void)state;
    static const struct rt_case cases[] = {
        {K_UINT, 0, 1},
        {K_UINT, 127, 1},
        {K_UINT, 128, 2},
        {K_UINT, 255, 2},
        {K_UINT, 256, 3},
        {K_UINT, 0xffff, 3},
        {K_UINT, 0x10000, 5},
        {K_UINT, 0xffffffffu, 5},
        {K_UINT, 0x100000000ull, 9},
        {K_UINT, UINT64_MAX, 9},
        {K_STR, 0, 1},
        {K_STR, 31, 1},
        {K_STR, 32, 2},
        {K_STR, 255, 2},
        {K_STR, 256, 3},
        {K_STR, 0xffff, 3},
        {K_STR, 0x10000, 5},
        {K_BIN, 0, 2},
        {K_BIN, 255, 2},
        {K_BIN, 256, 3},
        {K_BIN, 0xffff, 3},
        {K_BIN, 0x10000, 5},
        {K_ARRAY, 0, 1},
        {K_ARRAY, 15, 1},
        {K_ARRAY, 16, 3},
        {K_ARRAY, 0xffff, 3},
        {K_ARRAY, 0x10000, 5},
        {K_MAP, 0, 1},
        {K_MAP, 15, 1},
        {K_MAP, 16, 3},
        {K_MAP, 0xffff, 3},
        {K_MAP, 0x10000, 5},
        {K_BOOL, 0, 1},
        {K_BOOL, 1, 1},
        {K_NIL, 0, 1},
    };
    uint8_t *fill = malloc(0x10000);
    assert_non_null(fill);
    memset(fill, 'x', 0x10000);
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
        round_trip(&cases[i], fill);
    free(fill);
}

static void test_writer_text_and_finish(void **state)
{
    (void)state;
    struct tf_proto_mp_writer w;
    struct tf_proto_buf out;
    static const uint8_t want[] = {0x92, 0xa0, 0xa2, 'h', 'i'};
    tf_proto_mp_writer_init(&w);
    tf_proto_mp_write_array(&w, 2);
    tf_proto_mp_write_text(&w, fx_bytes(NULL, 0)); /* nil view: empty string */
    tf_proto_mp_write_text(&w, fx_str("hi"));
    fx_finish(&w, &out);
    assert_int_equal(out.len, sizeof want);
    assert_memory_equal(out.data, want, sizeof want);
    /* finish hands the bytes over and leaves an empty, reusable writer */
    assert_null(w.data);
    assert_int_equal(w.len, 0);
    tf_proto_mp_write_nil(&w);
    tf_proto_mp_writer_deinit(&w);
    assert_null(w.data);
    tf_proto_buf_free(&out);
    assert_null(out.data);
    assert_int_equal(out.len, 0);
    tf_proto_buf_free(&out); /* safe twice */
    tf_proto_buf_free(NULL);
}

struct bad_case {
    const char *what;
    enum kind kind;
    uint8_t hdr[9];
    size_t hlen;
    size_t payload;
    int want;
};

static void check_bad_cases(const struct bad_case *cases, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        size_t len;
        uint8_t *p = with_payload(cases[i].hdr, cases[i].hlen, cases[i].payload, &len);
        int rc = read_kind(cases[i].kind, p, len);
        free(p);
        if (rc != cases[i].want)
            fail_msg("%s: got %s, want %s", cases[i].what, tf_err_name(rc),
                     tf_err_name(cases[i].want));
    }
}

static void test_noncanonical_rejected(void **state)
{
    (void)state;
    static const struct bad_case cases[] = {
        {"uint8 holding 5", K_UINT, {0xcc, 5}, 2, 0, TF_E_NONCANONICAL},
        {"uint8 holding 127", K_UINT, {0xcc, 0x7f}, 2, 0, TF_E_NONCANONICAL},
        {"uint16 holding 255", K_UINT, {0xcd, 0, 0xff}, 3, 0, TF_E_NONCANONICAL},
        {"uint32 holding 0xffff", K_UINT, {0xce, 0, 0, 0xff, 0xff}, 5, 0, TF_E_NONCANONICAL},
        {"uint64 holding 0xffffffff",
         K_UINT,
         {0xcf, 0, 0, 0, 0, 0xff, 0xff, 0xff, 0xff},
         9,
         0,
         TF_E_NONCANONICAL},
        {"str8 holding 3", K_STR, {0xd9, 3}, 2, 3, TF_E_NONCANONICAL},
        {"str8 holding 31", K_STR, {0xd9, 31}, 2, 31, TF_E_NONCANONICAL},
        {"str16 holding 255", K_STR, {0xda, 0, 0xff}, 3, 255, TF_E_NONCANONICAL},
        {"str32 holding 0xffff", K_STR, {0xdb, 0, 0, 0xff, 0xff}, 5, 0xffff, TF_E_NONCANONICAL},
        {"bin16 holding 10", K_BIN, {0xc5, 0, 10}, 3, 10, TF_E_NONCANONICAL},
        {"bin32 holding 255", K_BIN, {0xc6, 0, 0, 0, 0xff}, 5, 255, TF_E_NONCANONICAL},
        {"array16 holding 2", K_ARRAY, {0xdc, 0, 2}, 3, 2, TF_E_NONCANONICAL},
        {"array16 holding 15", K_ARRAY, {0xdc, 0, 15}, 3, 15, TF_E_NONCANONICAL},
        {"array32 holding 0xffff", K_ARRAY, {0xdd, 0, 0, 0xff, 0xff}, 5, 0xffff, TF_E_NONCANONICAL},
        {"map16 holding 1", K_MAP, {0xde, 0, 1}, 3, 2, TF_E_NONCANONICAL},
        {"map32 holding 0xffff", K_MAP, {0xdf, 0, 0, 0xff, 0xff}, 5, 0x1fffe, TF_E_NONCANONICAL},
        /* the shortest forms at the same sizes are accepted */
        {"uint8 holding 128", K_UINT, {0xcc, 0x80}, 2, 0, TF_OK},
        {"str8 holding 32", K_STR, {0xd9, 32}, 2, 32, TF_OK},
        {"bin8 holding 0", K_BIN, {0xc4, 0}, 2, 0, TF_OK},
        {"array16 holding 16", K_ARRAY, {0xdc, 0, 16}, 3, 16, TF_OK},
        {"map16 holding 16", K_MAP, {0xde, 0, 16}, 3, 32, TF_OK},
    };
    check_bad_cases(cases, sizeof cases / sizeof cases[0]);
}

static void test_wrong_type(void **state)
{
    (void)state;
    static const struct bad_case cases[] = {
        {"uint from fixstr", K_UINT, {0xa1, 'a'}, 2, 0, TF_E_TYPE},
        {"uint from nil", K_UINT, {0xc0}, 1, 0, TF_E_TYPE},
        {"uint from negative fixint", K_UINT, {0xff}, 1, 0, TF_E_TYPE},
        {"uint from int8", K_UINT, {0xd0, 5}, 2, 0, TF_E_TYPE},
        {"uint from float32", K_UINT, {0xca, 0, 0, 0, 0}, 5, 0, TF_E_TYPE},
        {"uint from 0xc1", K_UINT, {0xc1}, 1, 0, TF_E_TYPE},
        {"str from bin8", K_STR, {0xc4, 1, 'a'}, 3, 0, TF_E_TYPE},
        {"str from fixint", K_STR, {0x01}, 1, 0, TF_E_TYPE},
        {"bin from fixstr", K_BIN, {0xa1, 'a'}, 2, 0, TF_E_TYPE},
        {"bin from str8", K_BIN, {0xd9, 32}, 2, 32, TF_E_TYPE},
        {"bin from ext8", K_BIN, {0xc7, 1, 1, 0}, 4, 0, TF_E_TYPE},
        {"array from fixmap", K_ARRAY, {0x81, 1, 1}, 3, 0, TF_E_TYPE},
        {"array from map16", K_ARRAY, {0xde, 0, 16}, 3, 32, TF_E_TYPE},
        {"map from fixarray", K_MAP, {0x91, 1}, 2, 0, TF_E_TYPE},
        {"map from array16", K_MAP, {0xdc, 0, 16}, 3, 16, TF_E_TYPE},
        {"bool from fixint", K_BOOL, {0x01}, 1, 0, TF_E_TYPE},
        {"bool from nil", K_BOOL, {0xc0}, 1, 0, TF_E_TYPE},
        {"nil from false", K_NIL, {0xc2}, 1, 0, TF_E_TYPE},
    };
    check_bad_cases(cases, sizeof cases / sizeof cases[0]);

    uint8_t not_nil = 0xc2;
    struct tf_proto_mp_reader r;
    tf_proto_mp_reader_init(&r, &not_nil, 1);
    assert_false(tf_proto_mp_peek_nil(&r));
    tf_proto_mp_reader_init(&r, &not_nil, 0);
    assert_false(tf_proto_mp_peek_nil(&r));
}

/* A sample object using every reader: [uint64, str8, bin16, {1: true, 2: nil},
 * array16 of 20 uints, multi-byte UTF-8 text]. */
#define SAMPLE_TEXT "d\xc3\xa9j\xc3\xa0 vu \xe2\x82\xac \xf0\x9d\x84\x9e"

static void build_sample(struct tf_proto_buf *out)
{
    uint8_t blob[300];
    char s40[40];
    memset(s40, 's', sizeof s40);
    for (size_t i = 0; i < sizeof blob; i++)
        blob[i] = (uint8_t)i;
    struct tf_proto_mp_writer w;
    tf_proto_mp_writer_init(&w);
    tf_proto_mp_write_array(&w, 6);
    tf_proto_mp_write_uint(&w, 0x0123456789abcdefull);
    tf_proto_mp_write_str(&w, s40, sizeof s40);
    tf_proto_mp_write_bin(&w, blob, sizeof blob);
    tf_proto_mp_write_map(&w, 2);
    tf_proto_mp_write_uint(&w, 1);
    tf_proto_mp_write_bool(&w, true);
    tf_proto_mp_write_uint(&w, 2);
    tf_proto_mp_write_nil(&w);
    tf_proto_mp_write_array(&w, 20);
    for (uint64_t i = 0; i < 20; i++)
        tf_proto_mp_write_uint(&w, i * 1000);
    tf_proto_mp_write_str(&w, SAMPLE_TEXT, strlen(SAMPLE_TEXT));
    fx_finish(&w, out);
}

static int read_sample(const uint8_t *buf, size_t len, void *ctx)
{
    (void)ctx;
    struct tf_proto_mp_reader r;
    struct tf_proto_bytes v;
    uint64_t u;
    uint32_t n;
    bool b;
    int64_t prev = -1;
    int rc;
    tf_proto_mp_reader_init(&r, buf, len);
    if ((rc = tf_proto_mp_read_array_exact(&r, 6)) != TF_OK ||
        (rc = tf_proto_mp_read_uint(&r, &u)) != TF_OK ||
        (rc = tf_proto_mp_read_str(&r, 40, 40, TF_PROTO_TEXT_LINE, &v)) != TF_OK ||
        (rc = tf_proto_mp_read_bin(&r, 300, 300, &v)) != TF_OK ||
        (rc = tf_proto_mp_read_map(&r, 2, &n)) != TF_OK ||
        (rc = tf_proto_mp_read_key(&r, &prev, 1)) != TF_OK ||
        (rc = tf_proto_mp_read_bool(&r, &b)) != TF_OK ||
        (rc = tf_proto_mp_read_key(&r, &prev, 2)) != TF_OK ||
        (rc = tf_proto_mp_read_nil(&r)) != TF_OK ||
        (rc = tf_proto_mp_read_array(&r, 20, &n)) != TF_OK)
        return rc;
    for (uint32_t i = 0; i < n; i++)
        if ((rc = tf_proto_mp_read_uint(&r, &u)) != TF_OK)
            return rc;
    if ((rc = tf_proto_mp_read_str(&r, 0, 100, TF_PROTO_TEXT_LINE, &v)) != TF_OK)
        return rc;
    return tf_proto_mp_read_end(&r);
}

static int check_sample(const uint8_t *buf, size_t len, void *ctx)
{
    (void)ctx;
    return tf_proto_mp_check(buf, len, TF_PROTO_MP_MAX_DEPTH);
}

static void test_truncated_at_every_prefix_and_trailing(void **state)
{
    (void)state;
    struct tf_proto_buf s;
    build_sample(&s);
    fx_assert_whole_ok_and_trailing(s.data, s.len, read_sample, NULL);
    fx_assert_prefixes_truncated(s.data, s.len, read_sample, NULL);
    fx_assert_whole_ok_and_trailing(s.data, s.len, check_sample, NULL);
    fx_assert_prefixes_truncated(s.data, s.len, check_sample, NULL);
    tf_proto_buf_free(&s);
}

static void test_hostile_lengths_truncated(void **state)
{
    (void)state;
    /* Declared sizes far beyond the bytes present: rejected before any
     * element is read (no allocation is possible in the reader). */
    static const struct bad_case cases[] = {
        {"array32 of 0xffffffff", K_ARRAY, {0xdd, 0xff, 0xff, 0xff, 0xff}, 5, 0, TF_E_TRUNCATED},
        {"array16 of 0xffff", K_ARRAY, {0xdc, 0xff, 0xff}, 3, 100, TF_E_TRUNCATED},
        {"fixarray of 3, 2 present", K_ARRAY, {0x93}, 1, 2, TF_E_TRUNCATED},
        {"map32 of 0xffffffff", K_MAP, {0xdf, 0xff, 0xff, 0xff, 0xff}, 5, 0, TF_E_TRUNCATED},
        {"fixmap of 2, 3 bytes", K_MAP, {0x82}, 1, 3, TF_E_TRUNCATED},
        {"str32 of 0xffffffff", K_STR, {0xdb, 0xff, 0xff, 0xff, 0xff}, 5, 10, TF_E_TRUNCATED},
        {"str8 of 40, 39 present", K_STR, {0xd9, 40}, 2, 39, TF_E_TRUNCATED},
        {"fixstr of 5, 4 present", K_STR, {0xa5}, 1, 4, TF_E_TRUNCATED},
        {"bin32 of 0xffffffff", K_BIN, {0xc6, 0xff, 0xff, 0xff, 0xff}, 5, 10, TF_E_TRUNCATED},
        {"bin16 of 300, 299 present", K_BIN, {0xc5, 0x01, 0x2c}, 3, 299, TF_E_TRUNCATED},
    };
    check_bad_cases(cases, sizeof cases / sizeof cases[0]);

    static const uint8_t arr32[] = {0xdd, 0xff, 0xff, 0xff, 0xff};
    struct tf_proto_mp_reader r;
    tf_proto_mp_reader_init(&r, arr32, sizeof arr32);
    assert_rc(tf_proto_mp_read_array_exact(&r, 0xffffffffu), TF_E_TRUNCATED);
    assert_rc(tf_proto_mp_check(arr32, sizeof arr32, TF_PROTO_MP_MAX_DEPTH), TF_E_TRUNCATED);
}

static void test_over_max_and_bad_length(void **state)
{
    (void)state;
    static const uint8_t arr3[] = {0x93, 1, 2, 3};
    static const uint8_t map3[] = {0x83, 1, 1, 2, 2, 3, 3};
    static const uint8_t str5[] = {0xa5, 'h', 'e', 'l', 'l', 'o'};
    static const uint8_t bin5[] = {0xc4, 5, 1, 2, 3, 4, 5};
    struct tf_proto_mp_reader r;
    struct tf_proto_bytes v;
    uint32_t n = 99;
    uint8_t dst[6];

    tf_proto_mp_reader_init(&r, arr3, sizeof arr3);
    assert_rc(tf_proto_mp_read_array(&r, 2, &n), TF_E_TOO_LONG);
    assert_rc(tf_proto_mp_read_array_exact(&r, 2), TF_E_COUNT);
    assert_rc(tf_proto_mp_read_array_exact(&r, 4), TF_E_COUNT);
    assert_ok(tf_proto_mp_read_array(&r, 3, &n));
    assert_int_equal(n, 3);

    tf_proto_mp_reader_init(&r, map3, sizeof map3);
    assert_rc(tf_proto_mp_read_map(&r, 2, &n), TF_E_TOO_LONG);
    assert_ok(tf_proto_mp_read_map(&r, 3, &n));
    assert_int_equal(n, 3);

    tf_proto_mp_reader_init(&r, str5, sizeof str5);
    assert_rc(tf_proto_mp_read_str(&r, 0, 4, TF_PROTO_TEXT_LINE, &v), TF_E_TOO_LONG);
    assert_rc(tf_proto_mp_read_str(&r, 6, 10, TF_PROTO_TEXT_LINE, &v), TF_E_BAD_LENGTH);
    assert_ok(tf_proto_mp_read_str(&r, 5, 5, TF_PROTO_TEXT_LINE, &v));

    tf_proto_mp_reader_init(&r, bin5, sizeof bin5);
    assert_rc(tf_proto_mp_read_bin(&r, 0, 4, &v), TF_E_TOO_LONG);
    assert_rc(tf_proto_mp_read_bin(&r, 6, 10, &v), TF_E_BAD_LENGTH);
    assert_rc(tf_proto_mp_read_bin_fixed(&r, dst, 4), TF_E_BAD_LENGTH);
    assert_rc(tf_proto_mp_read_bin_fixed(&r, dst, 6), TF_E_BAD_LENGTH);
    assert_ok(tf_proto_mp_read_bin_fixed(&r, dst, 5));
    assert_memory_equal(dst, bin5 + 2, 5);
    assert_ok(tf_proto_mp_read_end(&r));
}

/* Runs read_key over the keys of a map body (keys and values are fixints;
 * values are skipped) and returns the first error. */
static int read_keys(const uint8_t *pairs, size_t len, const uint64_t *expected, size_t n)
{
    struct tf_proto_mp_reader r;
    int64_t prev = -1;
    uint64_t v;
    int rc;
    tf_proto_mp_reader_init(&r, pairs, len);
    for (size_t i = 0; i < n; i++) {
        if ((rc = tf_proto_mp_read_key(&r, &prev, expected[i])) != TF_OK)
            return rc;
        assert_int_equal(prev, (int64_t)expected[i]);
        if ((rc = tf_proto_mp_read_uint(&r, &v)) != TF_OK)
            return rc;
    }
    return tf_proto_mp_read_end(&r);
}

static void test_read_key(void **state)
{
    (void)state;
    /* Keys run 1, 2, 3; each value here is the fixint 9. */
    static const uint64_t want[] = {1, 2, 3};
    static const uint8_t in_order[] = {1, 9, 2, 9, 3, 9};
    static const uint8_t repeat_first[] = {1, 9, 1, 9, 3, 9};
    static const uint8_t repeat_second[] = {1, 9, 2, 9, 2, 9};
    static const uint8_t earlier_key[] = {1, 9, 2, 9, 1, 9}; /* seen, so a duplicate */
    static const uint8_t skipped[] = {1, 9, 3, 9, 2, 9};
    static const uint8_t zero_first[] = {0, 9, 1, 9, 2, 9};
    static const uint8_t str_key[] = {1, 9, 0xa1, '2', 9, 3, 9};
    static const uint8_t neg_key[] = {1, 9, 0xff, 9, 3, 9};
    static const uint8_t nil_key[] = {1, 9, 0xc0, 9, 3, 9};
    static const uint8_t long_key[] = {1, 9, 0xcc, 2, 9, 3, 9};
    static const uint8_t cut_key[] = {1, 9, 0xcd, 0};
    assert_ok(read_keys(in_order, sizeof in_order, want, 3));
    assert_rc(read_keys(repeat_first, sizeof repeat_first, want, 3), TF_E_DUP_KEY);
    assert_rc(read_keys(repeat_second, sizeof repeat_second, want, 3), TF_E_DUP_KEY);
    assert_rc(read_keys(earlier_key, sizeof earlier_key, want, 3), TF_E_DUP_KEY);
    assert_rc(read_keys(skipped, sizeof skipped, want, 3), TF_E_BAD_KEY);
    assert_rc(read_keys(zero_first, sizeof zero_first, want, 3), TF_E_BAD_KEY);
    assert_rc(read_keys(str_key, sizeof str_key, want, 3), TF_E_BAD_KEY);
    assert_rc(read_keys(neg_key, sizeof neg_key, want, 3), TF_E_BAD_KEY);
    assert_rc(read_keys(nil_key, sizeof nil_key, want, 3), TF_E_BAD_KEY);
    assert_rc(read_keys(long_key, sizeof long_key, want, 3), TF_E_NONCANONICAL);
    assert_rc(read_keys(cut_key, sizeof cut_key, want, 3), TF_E_TRUNCATED);

    /* A failed read_key consumes nothing and leaves prev alone. */
    struct tf_proto_mp_reader r;
    int64_t prev = 2;
    tf_proto_mp_reader_init(&r, repeat_second + 4, 2);
    assert_rc(tf_proto_mp_read_key(&r, &prev, 3), TF_E_DUP_KEY);
    assert_int_equal(prev, 2);
    assert_int_equal(r.pos, 0);
}

/* Wraps s in a str header and reads it as text. */
static int read_text(const char *s, size_t n, enum tf_proto_text text)
{
    struct tf_proto_mp_writer w;
    struct tf_proto_buf b;
    struct tf_proto_mp_reader r;
    struct tf_proto_bytes v;
    tf_proto_mp_writer_init(&w);
    tf_proto_mp_write_str(&w, s, n);
    fx_finish(&w, &b);
    tf_proto_mp_reader_init(&r, b.data, b.len);
    int rc = tf_proto_mp_read_str(&r, 0, 64, text, &v);
    tf_proto_buf_free(&b);
    return rc;
}

struct utf8_case {
    const char *what;
    const char *s;
    size_t n;
    bool valid;
};

#define U8(what, s, valid)                                                                         \
    {                                                                                              \
        what, s, sizeof(s) - 1, valid                                                              \
    }

static void test_utf8(void **state)
{
    (void)state;
    static const struct utf8_case cases[] = {
        U8("empty", "", true),
        U8("ascii", "hello", true),
        U8("2-byte", "\xc3\xa9", true),
        U8("3-byte", "\xe2\x82\xac", true),
        U8("4-byte", "\xf0\x9d\x84\x9e", true),
        U8("U+0080", "\xc2\x80", true),
        U8("U+07FF", "\xdf\xbf", true),
        U8("U+0800", "\xe0\xa0\x80", true),
        U8("U+D7FF", "\xed\x9f\xbf", true),
        U8("U+E000", "\xee\x80\x80", true),
        U8("U+FFFF", "\xef\xbf\xbf", true),
        U8("U+10000", "\xf0\x90\x80\x80", true),
        U8("U+10FFFF", "\xf4\x8f\xbf\xbf", true),
        U8("overlong NUL", "\xc0\x80", false),
        U8("overlong 2-byte", "\xc1\xbf", false),
        U8("overlong 3-byte", "\xe0\x80\x80", false),
        U8("overlong U+07FF", "\xe0\x9f\xbf", false),
        U8("overlong 4-byte", "\xf0\x80\x80\x80", false),
        U8("overlong U+FFFF", "\xf0\x8f\xbf\xbf", false),
        U8("surrogate D800", "\xed\xa0\x80", false),
        U8("surrogate DBFF", "\xed\xaf\xbf", false),
        U8("surrogate DC00", "\xed\xb0\x80", false),
        U8("surrogate DFFF", "\xed\xbf\xbf", false),
        U8("U+110000", "\xf4\x90\x80\x80", false),
        U8("F5 lead", "\xf5\x80\x80\x80", false),
        U8("F7 lead", "\xf7\xbf\xbf\xbf", false),
        U8("5-byte", "\xf8\x88\x80\x80\x80", false),
        U8("FE", "\xfe", false),
        U8("FF", "\xff", false),
        U8("truncated 2-byte", "\xc3", false),
        U8("truncated 3-byte", "\xe2\x82", false),
        U8("truncated 4-byte", "\xf0\x9d\x84", false),
        U8("truncated at end", "abc\xe2\x82", false),
        U8("lone continuation", "\x80", false),
        U8("continuation after ascii", "a\xbf", false),
        U8("bad continuation", "\xc3\x41", false),
        U8("bad 3rd byte", "\xe2\x82\x41", false),
        U8("bad 4th byte", "\xf0\x9d\x84\xc0", false),
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        const struct utf8_case *c = &cases[i];
        if (tf_proto_utf8_is_valid((const uint8_t *)c->s, c->n) != c->valid)
            fail_msg("utf8_is_valid(%s) != %d", c->what, c->valid);
        int rc = read_text(c->s, c->n, TF_PROTO_TEXT_MULTILINE);
        if (rc != (c->valid ? TF_OK : TF_E_BAD_UTF8))
            fail_msg("read_str(%s): got %s", c->what, tf_err_name(rc));
    }
}

static void test_control_characters(void **state)
{
    (void)state;
    static const struct {
        const char *s;
        size_t n;
        int line, multiline;
    } cases[] = {
        {"a\nb", 3, TF_E_BAD_TEXT, TF_OK},
        {"a\tb", 3, TF_E_BAD_TEXT, TF_OK},
        {"a\rb", 3, TF_E_BAD_TEXT, TF_E_BAD_TEXT},
        {"a\0b", 3, TF_E_BAD_TEXT, TF_E_BAD_TEXT},
        {"\x01", 1, TF_E_BAD_TEXT, TF_E_BAD_TEXT},
        {"\x1b[0m", 4, TF_E_BAD_TEXT, TF_E_BAD_TEXT},
        {"\x1f", 1, TF_E_BAD_TEXT, TF_E_BAD_TEXT},
        {"a\x7f", 2, TF_E_BAD_TEXT, TF_E_BAD_TEXT},
        {" ~", 2, TF_OK, TF_OK},
        {"\xc3\xa9", 2, TF_OK, TF_OK},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        assert_rc(read_text(cases[i].s, cases[i].n, TF_PROTO_TEXT_LINE), cases[i].line);
        assert_rc(read_text(cases[i].s, cases[i].n, TF_PROTO_TEXT_MULTILINE), cases[i].multiline);
    }
    /* checked in this order: length, UTF-8, control characters */
    struct tf_proto_mp_reader r;
    struct tf_proto_bytes v;
    static const uint8_t bad_all[] = {0xa3, 0x01, 0xc0, 0x80};
    tf_proto_mp_reader_init(&r, bad_all, sizeof bad_all);
    assert_rc(tf_proto_mp_read_str(&r, 0, 2, TF_PROTO_TEXT_LINE, &v), TF_E_TOO_LONG);
    assert_rc(tf_proto_mp_read_str(&r, 4, 9, TF_PROTO_TEXT_LINE, &v), TF_E_BAD_LENGTH);
    assert_rc(tf_proto_mp_read_str(&r, 0, 9, TF_PROTO_TEXT_LINE, &v), TF_E_BAD_UTF8);
}

/* depth arrays nested in one another, the innermost holding one fixint. */
static uint8_t *nested(size_t depth, uint8_t open, size_t *len)
{
    uint8_t *p = malloc(2 * depth + 1);
    assert_non_null(p);
    size_t o = 0;
    for (size_t i = 0; i < depth; i++) {
        p[o++] = open;
        if (open == 0x81)
            p[o++] = 0x01; /* the map's key; the value is the next level */
    }
    p[o++] = 0x01;
    *len = o;
    return p;
}

static int check_nested(size_t depth, uint8_t open, unsigned max_depth)
{
    size_t len;
    uint8_t *p = nested(depth, open, &len);
    int rc = tf_proto_mp_check(p, len, max_depth);
    free(p);
    return rc;
}

static void test_check_depth(void **state)
{
    (void)state;
    static const uint8_t opens[] = {0x91, 0x81};
    for (size_t i = 0; i < sizeof opens; i++) {
        assert_ok(check_nested(TF_PROTO_MP_MAX_DEPTH, opens[i], TF_PROTO_MP_MAX_DEPTH));
        assert_rc(check_nested(TF_PROTO_MP_MAX_DEPTH + 1, opens[i], TF_PROTO_MP_MAX_DEPTH),
                  TF_E_TOO_DEEP);
        assert_ok(check_nested(3, opens[i], 3));
        assert_rc(check_nested(4, opens[i], 3), TF_E_TOO_DEEP);
        assert_ok(check_nested(0, opens[i], 0));
        /* a larger limit is clamped to TF_PROTO_MP_MAX_DEPTH */
        assert_rc(check_nested(TF_PROTO_MP_MAX_DEPTH + 1, opens[i], 1000), TF_E_TOO_DEEP);
        /* far deeper than the limit: still rejected, with O(1) stack */
        assert_rc(check_nested(100000, opens[i], TF_PROTO_MP_MAX_DEPTH), TF_E_TOO_DEEP);
    }
    /* An empty container opens a level too: [[[]]] is three deep. */
    static const uint8_t empty3[] = {0x91, 0x91, 0x90};
    assert_ok(tf_proto_mp_check(empty3, sizeof empty3, 3));
    assert_rc(tf_proto_mp_check(empty3, sizeof empty3, 2), TF_E_TOO_DEEP);
    static const uint8_t empty_map2[] = {0x81, 0x01, 0x80};
    assert_rc(tf_proto_mp_check(empty_map2, sizeof empty_map2, 1), TF_E_TOO_DEEP);
}

static int check_bytes(const uint8_t *p, size_t n)
{
    return tf_proto_mp_check(p, n, TF_PROTO_MP_MAX_DEPTH);
}

static void test_check_every_type(void **state)
{
    (void)state;
    /* One array holding every msgpack type once. */
    static const uint8_t all[] = {
        0xdc, 0x00, 0x22,                                  /* array16 of 34 */
        0x05, 0xe0,                                        /* fixints */
        0xc0, 0xc2, 0xc3,                                  /* nil, false, true */
        0x80, 0x90, 0xa0,                                  /* {}, [], "" */
        0xc4, 0x01, 0x00,                                  /* bin8 */
        0xc5, 0x00, 0x01, 0x00,                            /* bin16 */
        0xc6, 0x00, 0x00, 0x00, 0x01, 0x00,                /* bin32 */
        0xc7, 0x01, 0x07, 0x00,                            /* ext8 */
        0xc8, 0x00, 0x01, 0x07, 0x00,                      /* ext16 */
        0xc9, 0x00, 0x00, 0x00, 0x01, 0x07, 0x00,          /* ext32 */
        0xca, 0,    0,    0,    0,                         /* float32 */
        0xcb, 0,    0,    0,    0,    0,    0,    0, 0,    /* float64 */
        0xcc, 0,    0xcd, 0,    0,    0xce, 0,    0, 0, 0, /* uint8..32 */
        0xcf, 0,    0,    0,    0,    0,    0,    0, 0,    /* uint64 */
        0xd0, 0,    0xd1, 0,    0,    0xd2, 0,    0, 0, 0, /* int8..32 */
        0xd3, 0,    0,    0,    0,    0,    0,    0, 0,    /* int64 */
        0xd4, 7,    0,    0xd5, 7,    0,    0,             /* fixext1, 2 */
        0xd6, 7,    0,    0,    0,    0,                   /* fixext4 */
        0xd7, 7,    0,    0,    0,    0,    0,    0, 0, 0, /* fixext8 */
        0xd8, 7,    0,    0,    0,    0,    0,    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, /* fixext16 */
        0xd9, 0x01, 'a',                                                           /* str8 */
        0xda, 0x00, 0x01, 'a',                                                     /* str16 */
        0xdb, 0x00, 0x00, 0x00, 0x01, 'a',                                         /* str32 */
        0xdd, 0x00, 0x00, 0x00, 0x01, 0x01,                                        /* array32 */
        0xdf, 0x00, 0x00, 0x00, 0x01, 0x01, 0x01,                                  /* map32 */
    };
    assert_ok(check_bytes(all, sizeof all));
    fx_assert_prefixes_truncated(all, sizeof all, check_sample, NULL);
}

static void test_check_rejections(void **state)
{
    (void)state;
    static const uint8_t c1[] = {0xc1};
    static const uint8_t c1_nested[] = {0x92, 0x01, 0xc1};
    static const uint8_t arr32[] = {0xdd, 0xff, 0xff, 0xff, 0xff};
    static const uint8_t map32[] = {0xdf, 0xff, 0xff, 0xff, 0xff, 0x01};
    static const uint8_t map16[] = {0xde, 0x00, 0x02, 0x01, 0x01, 0x01};
    static const uint8_t str32[] = {0xdb, 0xff, 0xff, 0xff, 0xff, 'a'};
    static const uint8_t bin32[] = {0xc6, 0xff, 0xff, 0xff, 0xff, 0x00};
    static const uint8_t ext32[] = {0xc9, 0xff, 0xff, 0xff, 0xff, 0x07};
    static const uint8_t ext8_no_type[] = {0xc7, 0x00};
    static const uint8_t fixext16_short[] = {0xd8, 0x07, 0x00};
    static const uint8_t two_values[] = {0x01, 0x02};
    static const uint8_t trailing_after_array[] = {0x91, 0x01, 0xc0};
    assert_rc(check_bytes(c1, sizeof c1), TF_E_TYPE);
    assert_rc(check_bytes(c1_nested, sizeof c1_nested), TF_E_TYPE);
    assert_rc(check_bytes(arr32, sizeof arr32), TF_E_TRUNCATED);
    assert_rc(check_bytes(map32, sizeof map32), TF_E_TRUNCATED);
    assert_rc(check_bytes(map16, sizeof map16), TF_E_TRUNCATED);
    assert_rc(check_bytes(str32, sizeof str32), TF_E_TRUNCATED);
    assert_rc(check_bytes(bin32, sizeof bin32), TF_E_TRUNCATED);
    assert_rc(check_bytes(ext32, sizeof ext32), TF_E_TRUNCATED);
    assert_rc(check_bytes(ext8_no_type, sizeof ext8_no_type), TF_E_TRUNCATED);
    assert_rc(check_bytes(fixext16_short, sizeof fixext16_short), TF_E_TRUNCATED);
    assert_rc(check_bytes(two_values, sizeof two_values), TF_E_TRAILING);
    assert_rc(check_bytes(trailing_after_array, sizeof trailing_after_array), TF_E_TRAILING);
    assert_rc(check_bytes(c1, 0), TF_E_TRUNCATED);
}

static void test_writer_cstr_or_nil(void **state)
{
    (void)state;
    struct tf_proto_mp_writer w;
    struct tf_proto_buf out;
    tf_proto_mp_writer_init(&w);
    tf_proto_mp_write_cstr_or_nil(&w, NULL);
    tf_proto_mp_write_cstr_or_nil(&w, "");
    tf_proto_mp_write_cstr_or_nil(&w, "ab");
    assert_int_equal(tf_proto_mp_writer_finish(&w, &out), TF_OK);
    static const uint8_t want[] = {0xc0, 0xc0, 0xa2, 'a', 'b'};
    assert_int_equal(out.len, sizeof want);
    assert_memory_equal(out.data, want, sizeof want);
    tf_proto_buf_free(&out);
}

int main(void)
{
    if (sodium_init() < 0)
        return 1;
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_round_trip_every_type_and_width),
        cmocka_unit_test(test_writer_text_and_finish),
        cmocka_unit_test(test_writer_cstr_or_nil),
        cmocka_unit_test(test_noncanonical_rejected),
        cmocka_unit_test(test_wrong_type),
        cmocka_unit_test(test_truncated_at_every_prefix_and_trailing),
        cmocka_unit_test(test_hostile_lengths_truncated),
        cmocka_unit_test(test_over_max_and_bad_length),
        cmocka_unit_test(test_read_key),
        cmocka_unit_test(test_utf8),
        cmocka_unit_test(test_control_characters),
        cmocka_unit_test(test_check_depth),
        cmocka_unit_test(test_check_every_type),
        cmocka_unit_test(test_check_rejections),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
