/* SPDX-License-Identifier: MIT */
/* Unit tests for proto/envelope: sealed, signed end-to-end messages. */
#include "fixtures.h"

#include "proto/envelope.h"
#include "proto/intro.h"

#define EXPIRES (FX_NOW + 3600u)
static const uint8_t MSG_ID[TF_PROTO_MSG_ID_LEN] = {1, 2,  3,  4,  5,  6,  7,  8,
                                                    9, 10, 11, 12, 13, 14, 15, 16};
static const char BODY[] = "hello Bob";

struct fixture {
    struct tf_proto_identity id[FX_COUNT];
    struct tf_proto_buf env; /* A -> B, NOTE, BODY, expires EXPIRES */
};

static int setup(void **state)
{
    struct fixture *f = calloc(1, sizeof *f);
    if (f == NULL)
        return -1;
    for (int i = 0; i < FX_COUNT; i++)
        fx_identity(&f->id[i], (enum fx_who)i);
    assert_ok(tf_proto_envelope_seal(&f->id[FX_A], f->id[FX_B].sign_pk, f->id[FX_B].box_pk, MSG_ID,
                                     EXPIRES, TF_PROTO_MSG_TYPE_NOTE, (const uint8_t *)BODY,
                                     strlen(BODY), &f->env));
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fixture *f = *state;
    for (int i = 0; i < FX_COUNT; i++)
        tf_proto_identity_deinit(&f->id[i]);
    tf_proto_buf_free(&f->env);
    free(f);
    return 0;
}

/* Opens buf as `who` at `now` and returns the verdict. */
static int open_as(const struct fixture *f, enum fx_who who, const uint8_t *buf, size_t len,
                   uint64_t now)
{
    struct tf_proto_buf plain = {NULL, 0};
    struct tf_proto_envelope_opened o;
    int rc = tf_proto_envelope_open(&f->id[who], buf, len, now, &plain, &o);
    if (rc != TF_OK)
        assert_null(plain.data);
    tf_proto_buf_free(&plain);
    return rc;
}

/* The outer part, written by hand so any field can be changed. */
struct outer {
    uint32_t count;
    uint64_t version;
    struct tf_proto_bytes msg_id, to_pk, sealed;
    uint64_t expires;
};

static void outer_of(const struct tf_proto_buf *env, struct outer *o)
{
    struct tf_proto_envelope e;
    static uint8_t msg_id[TF_PROTO_MSG_ID_LEN], to_pk[TF_PROTO_KEY_LEN];
    assert_ok(tf_proto_envelope_decode(env->data, env->len, &e));
    memcpy(msg_id, e.msg_id, sizeof msg_id);
    memcpy(to_pk, e.to_pk, sizeof to_pk);
    o->count = 5;
    o->version = TF_PROTO_ENVELOPE_VERSION;
    o->msg_id = fx_bytes(msg_id, sizeof msg_id);
    o->to_pk = fx_bytes(to_pk, sizeof to_pk);
    o->expires = e.expires;
    o->sealed = e.sealed;
}

static void outer_write(const struct outer *o, struct tf_proto_buf *out)
{
    struct tf_proto_mp_writer w;
    tf_proto_mp_writer_init(&w);
    tf_proto_mp_write_array(&w, o->count);
    for (uint32_t i = 0; i < o->count; i++) {
        switch (i) {
        case 0:
            tf_proto_mp_write_uint(&w, o->version);
            break;
        case 1:
            tf_proto_mp_write_bin(&w, o->msg_id.ptr, o->msg_id.len);
            break;
        case 2:
            tf_proto_mp_write_bin(&w, o->to_pk.ptr, o->to_pk.len);
            break;
        case 3:
            tf_proto_mp_write_uint(&w, o->expires);
            break;
        case 4:
            tf_proto_mp_write_bin(&w, o->sealed.ptr, o->sealed.len);
            break;
        default:
            tf_proto_mp_write_nil(&w);
            break;
        }
    }
    fx_finish(&w, out);
}

static int open_outer(const struct fixture *f, enum fx_who who, const struct outer *o, uint64_t now)
{
    struct tf_proto_buf b;
    outer_write(o, &b);
    int rc = open_as(f, who, b.data, b.len, now);
    tf_proto_buf_free(&b);
    return rc;
}

static int decode_outer(const struct outer *o)
{
    struct tf_proto_buf b;
    struct tf_proto_envelope e;
    outer_write(o, &b);
    int rc = tf_proto_envelope_decode(b.data, b.len, &e);
    tf_proto_buf_free(&b);
    return rc;
}

static void test_round_trip(void **state)
{
    struct fixture *f = *state;
    struct tf_proto_envelope e;
    struct tf_proto_buf plain;
    struct tf_proto_envelope_opened o;

    assert_ok(tf_proto_envelope_decode(f->env.data, f->env.len, &e));
    assert_memory_equal(e.msg_id, MSG_ID, sizeof MSG_ID);
    assert_memory_equal(e.to_pk, f->id[FX_B].sign_pk, TF_PROTO_KEY_LEN);
    assert_true(e.expires == EXPIRES);
    /* inner = [bin32 from, fixint type, bin8 body, bin8 sig], then zero
     * padding to the smallest class */
    size_t inner_len = 1 + 2 + 32 + 1 + 2 + strlen(BODY) + 2 + 64;
    assert_int_equal(e.sealed.len, TF_PROTO_ENVELOPE_PAD_MIN + crypto_box_SEALBYTES);
    assert_ptr_equal(e.sealed.ptr + e.sealed.len, f->env.data + f->env.len);

    assert_ok(tf_proto_envelope_open(&f->id[FX_B], f->env.data, f->env.len, FX_NOW, &plain, &o));
    assert_memory_equal(o.from_pk, f->id[FX_A].sign_pk, TF_PROTO_KEY_LEN);
    assert_int_equal(o.type, TF_PROTO_MSG_TYPE_NOTE);
    assert_int_equal(o.body.len, strlen(BODY));
    assert_memory_equal(o.body.ptr, BODY, strlen(BODY));
    assert_int_equal(plain.len, TF_PROTO_ENVELOPE_PAD_MIN);
    assert_true(sodium_is_zero(plain.data + inner_len, plain.len - inner_len));
    assert_true(o.body.ptr >= plain.data && o.body.ptr + o.body.len <= plain.data + plain.len);
    tf_proto_buf_free(&plain);
}

static void test_padding_classes(void **state)
{
    (void)state;
    static const struct {
        size_t inner, padded;
    } cases[] = {
        {0, 4096},      {1, 4096},      {4096, 4096},   {4097, 8192},   {8192, 8192}, {8193, 16384},
        {16385, 32768}, {32768, 32768}, {32769, 53248}, {53248, 53248}, {53249, 0},   {SIZE_MAX, 0},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
        assert_int_equal(tf_proto_envelope_padded_len(cases[i].inner), cases[i].padded);
}

/* direct: encodes body as a direct message, checks it reads back, and
 * returns its length. */
static size_t direct_len(uint16_t type, const struct tf_proto_buf *body)
{
    struct tf_proto_buf msg;
    struct tf_proto_envelope_direct d;
    assert_ok(tf_proto_envelope_direct_encode(MSG_ID, EXPIRES, type, body->data, body->len, &msg));
    assert_ok(tf_proto_envelope_direct_decode(msg.data, msg.len, &d));
    assert_int_equal(d.type, type);
    assert_int_equal(d.body.len, body->len);
    size_t n = msg.len;
    tf_proto_buf_free(&msg);
    return n;
}

/* Seals body (type, signed by A for B) and returns the envelope's length. */
static size_t sealed_len(const struct fixture *f, uint16_t type, const struct tf_proto_buf *body)
{
    struct tf_proto_buf env, plain;
    struct tf_proto_envelope_opened o;
    assert_ok(tf_proto_envelope_seal(&f->id[FX_A], f->id[FX_B].sign_pk, f->id[FX_B].box_pk, MSG_ID,
                                     EXPIRES, type, body->data, body->len, &env));
    assert_ok(tf_proto_envelope_open(&f->id[FX_B], env.data, env.len, FX_NOW, &plain, &o));
    assert_int_equal(o.body.len, body->len);
    size_t n = env.len;
    tf_proto_buf_free(&plain);
    tf_proto_buf_free(&env);
    return n;
}

/* A card as full as real ones get: the longest name, three addresses (a
 * long DNS name, IPv6, IPv4) and eight tags. */
static void full_card(const struct tf_proto_identity *id, struct tf_proto_buf *out)
{
    struct tf_proto_card c;
    fx_card_fields(id, "Alexandra Maria Konstantinopoulou-Vandenberghe, Avocate (Paris)", 7, &c);
    c.n_addrs = 3;
    c.addrs[0] = fx_str("twofold.konstantinopoulou-vandenberghe.example.org:7451");
    c.addrs[1] = fx_str("[2001:db8:1234:5678:9abc:def0:1234:5678]:7451");
    c.addrs[2] = fx_str("203.0.113.200:7451");
    c.n_offers = 4;
    c.offers[0] = fx_str("real-estate-law");
    c.offers[1] = fx_str("contract-review");
    c.offers[2] = fx_str("mediation");
    c.offers[3] = fx_str("french-translation");
    c.n_seeks = 4;
    c.seeks[0] = fx_str("accountant");
    c.seeks[1] = fx_str("notary");
    c.seeks[2] = fx_str("architect");
    c.seeks[3] = fx_str("tax-advice");
    assert_ok(tf_proto_card_sign(id, &c, out));
}

/* n bytes of note text. */
static struct tf_proto_bytes note_of(size_t n)
{
    static char text[TF_PROTO_NOTE_MAX];
    assert_true(n <= sizeof text);
    memset(text, 'n', sizeof text);
    return fx_bytes((const uint8_t *)text, n);
}

/*
 * What padding is for (docs/PROTOCOL.md section 7): on the wire an accept
 * reply is as long as a decline, and an introduction as long as a close,
 * for cards as full as real ones get and notes of a few hundred bytes.
 */
static void test_padding_hides_the_answer(void **state)
{
    struct fixture *f = *state;
    uint8_t intro_id[TF_PROTO_INTRO_ID_LEN], salt[TF_PROTO_SALT_LEN];
    memset(salt, 0x22, sizeof salt);
    struct tf_proto_buf card_a, card_b, accept_a, accept_b, decline, close, intro, core_bytes;
    struct tf_proto_intro_core core;
    memset(&core, 0, sizeof core);
    memcpy(core.connector_pk, f->id[FX_C].sign_pk, TF_PROTO_KEY_LEN);
    core.topic = fx_str("real-estate-law-in-the-south-of-france");
    core.created = FX_NOW;
    core.expires = FX_NOW + 365u * 86400u;
    assert_ok(tf_proto_intro_core_encode(&core, &core_bytes));
    tf_proto_intro_id(core_bytes.data, core_bytes.len, intro_id);
    full_card(&f->id[FX_A], &card_a);
    full_card(&f->id[FX_B], &card_b);

    struct tf_proto_reply r;
    memset(&r, 0, sizeof r);
    memcpy(r.intro_id, intro_id, sizeof r.intro_id);
    r.time = FX_NOW;
    r.decision = TF_PROTO_DECISION_ACCEPT;
    r.side = TF_PROTO_SIDE_A;
    r.card = fx_view(&card_a);
    r.note = note_of(600);
    assert_ok(tf_proto_reply_sign(&f->id[FX_A], &r, &accept_a));
    r.side = TF_PROTO_SIDE_B;
    r.card = fx_view(&card_b);
    assert_ok(tf_proto_reply_sign(&f->id[FX_B], &r, &accept_b));
    memset(&r, 0, sizeof r);
    memcpy(r.intro_id, intro_id, sizeof r.intro_id);
    r.time = FX_NOW;
    r.decision = TF_PROTO_DECISION_DECLINE;
    r.reason = note_of(0);
    assert_ok(tf_proto_reply_sign(&f->id[FX_A], &r, &decline));

    struct tf_proto_introduction in;
    memset(&in, 0, sizeof in);
    memcpy(in.intro_id, intro_id, sizeof in.intro_id);
    in.core_bytes = fx_view(&core_bytes);
    memcpy(in.salt_a, salt, sizeof salt);
    memcpy(in.salt_b, salt, sizeof salt);
    in.reply_a = fx_view(&accept_a);
    in.reply_b = fx_view(&accept_b);
    in.note = note_of(400);
    in.time = FX_NOW;
    assert_ok(tf_proto_introduction_sign(&f->id[FX_C], &in, &intro));
    assert_ok(tf_proto_close_sign(&f->id[FX_C], intro_id, &close));

    /* Worth checking at all: the bodies differ a lot in size. */
    assert_true(accept_a.len > decline.len + 1000);
    assert_true(intro.len > close.len + 3000);
    size_t one_class = sealed_len(f, TF_PROTO_MSG_TYPE_CLOSE, &close);
    assert_int_equal(sealed_len(f, TF_PROTO_MSG_TYPE_INTRODUCTION, &intro), one_class);
    assert_int_equal(sealed_len(f, TF_PROTO_MSG_TYPE_REPLY, &accept_a), one_class);
    assert_int_equal(sealed_len(f, TF_PROTO_MSG_TYPE_REPLY, &decline), one_class);
    /* A decline with the longest reason, too. */
    tf_proto_buf_free(&decline);
    r.reason = note_of(TF_PROTO_REASON_MAX);
    assert_ok(tf_proto_reply_sign(&f->id[FX_A], &r, &decline));
    assert_int_equal(sealed_len(f, TF_PROTO_MSG_TYPE_REPLY, &decline), one_class);
    /* direct: the same on a direct link, where nothing is sealed. */
    size_t direct_class = direct_len(TF_PROTO_MSG_TYPE_CLOSE, &close);
    assert_int_equal(direct_class, TF_PROTO_ENVELOPE_PAD_MIN);
    assert_int_equal(direct_len(TF_PROTO_MSG_TYPE_INTRODUCTION, &intro), direct_class);
    assert_int_equal(direct_len(TF_PROTO_MSG_TYPE_REPLY, &accept_a), direct_class);
    assert_int_equal(direct_len(TF_PROTO_MSG_TYPE_REPLY, &accept_b), direct_class);
    assert_int_equal(direct_len(TF_PROTO_MSG_TYPE_REPLY, &decline), direct_class);

    tf_proto_buf_free(&card_a);
    tf_proto_buf_free(&card_b);
    tf_proto_buf_free(&accept_a);
    tf_proto_buf_free(&accept_b);
    tf_proto_buf_free(&decline);
    tf_proto_buf_free(&close);
    tf_proto_buf_free(&intro);
    tf_proto_buf_free(&core_bytes);
}

/* Seals inner (the plaintext as given: padded or not) from A to B. */
static int open_inner(const struct fixture *f, const uint8_t *inner, size_t len)
{
    uint8_t *sealed = malloc(len + crypto_box_SEALBYTES);
    assert_non_null(sealed);
    assert_int_equal(crypto_box_seal(sealed, inner, len, f->id[FX_B].box_pk), 0);
    struct outer o;
    outer_of(&f->env, &o);
    o.sealed = fx_bytes(sealed, len + crypto_box_SEALBYTES);
    int rc = open_outer(f, FX_B, &o, FX_NOW);
    free(sealed);
    return rc;
}

static void test_padding_read(void **state)
{
    struct fixture *f = *state;
    struct tf_proto_buf plain;
    struct tf_proto_envelope_opened o;
    assert_ok(tf_proto_envelope_open(&f->id[FX_B], f->env.data, f->env.len, FX_NOW, &plain, &o));
    size_t inner_len = (size_t)(o.body.ptr + o.body.len - plain.data) + 2 + TF_PROTO_SIG_LEN;
    assert_ok(open_inner(f, plain.data, plain.len));
    /* Any length of zero padding is read, none included (envelopes sealed
     * before padding existed) */
    assert_ok(open_inner(f, plain.data, inner_len));
    assert_ok(open_inner(f, plain.data, inner_len + 1));
    assert_ok(open_inner(f, plain.data, plain.len - 1));
    /* but not a byte of it that is not zero */
    size_t at[] = {inner_len, inner_len + 1, plain.len / 2, plain.len - 1};
    for (size_t i = 0; i < sizeof at / sizeof at[0]; i++) {
        plain.data[at[i]] = 0x01;
        assert_rc(open_inner(f, plain.data, plain.len), TF_E_TRAILING);
        plain.data[at[i]] = 0x80;
        assert_rc(open_inner(f, plain.data, plain.len), TF_E_TRAILING);
        plain.data[at[i]] = 0x00;
    }
    assert_ok(open_inner(f, plain.data, plain.len));
    tf_proto_buf_free(&plain);
}

static void test_peek_id(void **state)
{
    struct fixture *f = *state;
    uint8_t id[TF_PROTO_MSG_ID_LEN];
    assert_ok(tf_proto_envelope_peek_id(f->env.data, f->env.len, id));
    assert_memory_equal(id, MSG_ID, sizeof id);
    /* The id is read from envelopes that do not decode. */
    struct outer o;
    outer_of(&f->env, &o);
    const struct {
        uint32_t count;
        uint64_t version;
        size_t sealed_len;
    } readable[] = {{5, 2, 100}, {2, 1, 100}, {6, 1, 100}, {5, 1, crypto_box_SEALBYTES}};
    for (size_t i = 0; i < sizeof readable / sizeof readable[0]; i++) {
        struct tf_proto_buf b;
        o.count = readable[i].count;
        o.version = readable[i].version;
        o.sealed.len = readable[i].sealed_len;
        outer_write(&o, &b);
        memset(id, 0, sizeof id);
        assert_true(decode_outer(&o) != TF_OK);
        assert_ok(tf_proto_envelope_peek_id(b.data, b.len, id));
        assert_memory_equal(id, MSG_ID, sizeof id);
        tf_proto_buf_free(&b);
    }
    /* and not where there is none */
    static const uint8_t one[] = {0x91, 0x01};
    static const uint8_t not_array[] = {0xc4, 0x01, 0x00};
    static const uint8_t short_id[] = {0x92, 0x01, 0xc4, 0x02, 0xaa, 0xbb};
    static const uint8_t str_version[] = {0x92, 0xa1, 0x31, 0xc4, 0x10, 1,  2,  3,  4,  5, 6,
                                          7,    8,    9,    10,   11,   12, 13, 14, 15, 16};
    assert_rc(tf_proto_envelope_peek_id(one, sizeof one, id), TF_E_COUNT);
    assert_rc(tf_proto_envelope_peek_id(not_array, sizeof not_array, id), TF_E_TYPE);
    assert_rc(tf_proto_envelope_peek_id(short_id, sizeof short_id, id), TF_E_BAD_LENGTH);
    assert_rc(tf_proto_envelope_peek_id(str_version, sizeof str_version, id), TF_E_TYPE);
    assert_rc(tf_proto_envelope_peek_id(short_id, 3, id), TF_E_TRUNCATED);
}

static void test_types_and_sizes(void **state)
{
    struct fixture *f = *state;
    uint8_t *big = malloc(TF_PROTO_BODY_MAX + 1);
    assert_non_null(big);
    memset(big, 'x', TF_PROTO_BODY_MAX + 1);
    static const struct {
        uint64_t type;
        size_t len;
        int want;
    } cases[] = {
        {TF_PROTO_MSG_TYPE_NOTE, 0, TF_OK},
        {TF_PROTO_MSG_TYPE_PROPOSAL, 1, TF_OK},
        {TF_PROTO_MSG_TYPE_REPLY, 300, TF_OK},
        {TF_PROTO_MSG_TYPE_INTRODUCTION, 70000 / 2, TF_OK},
        {TF_PROTO_MSG_TYPE_CLOSE, 5, TF_OK},
        {TF_PROTO_MSG_TYPE_CARD_UPDATE, TF_PROTO_BODY_MAX, TF_OK},
        {TF_PROTO_MSG_TYPE_NOTE, TF_PROTO_BODY_MAX + 1, TF_E_TOO_LONG},
        {0, 5, TF_E_BAD_VALUE},
        {10, 5, TF_E_BAD_VALUE}, /* the first unknown type (requests took 7-9) */
        {0xffff, 5, TF_E_BAD_VALUE},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        struct tf_proto_buf env = {NULL, 0}, plain;
        struct tf_proto_envelope_opened o;
        assert_rc(tf_proto_envelope_seal(&f->id[FX_A], f->id[FX_B].sign_pk, f->id[FX_B].box_pk,
                                         MSG_ID, EXPIRES, (uint16_t)cases[i].type, big,
                                         cases[i].len, &env),
                  cases[i].want);
        if (cases[i].want != TF_OK) {
            assert_null(env.data);
            continue;
        }
        assert_true(env.len <= TF_PROTO_ENVELOPE_MAX);
        assert_ok(tf_proto_envelope_open(&f->id[FX_B], env.data, env.len, FX_NOW, &plain, &o));
        assert_int_equal(o.type, cases[i].type);
        assert_int_equal(o.body.len, cases[i].len);
        assert_memory_equal(o.body.ptr, big, cases[i].len);
        tf_proto_buf_free(&plain);
        tf_proto_buf_free(&env);
    }
    free(big);
    assert_false(tf_proto_msg_type_is_valid(0));
    for (uint64_t t = 1; t <= 9; t++) /* 7-9: requests */
        assert_true(tf_proto_msg_type_is_valid(t));
    assert_false(tf_proto_msg_type_is_valid(10));
    assert_false(tf_proto_msg_type_is_valid(0x10001));
}

static void test_not_for_me(void **state)
{
    struct fixture *f = *state;
    assert_rc(open_as(f, FX_C, f->env.data, f->env.len, FX_NOW), TF_E_NOT_FOR_ME);
    assert_rc(open_as(f, FX_A, f->env.data, f->env.len, FX_NOW), TF_E_NOT_FOR_ME);
    assert_ok(open_as(f, FX_B, f->env.data, f->env.len, FX_NOW));
}

static void test_expiry(void **state)
{
    struct fixture *f = *state;
    assert_ok(open_as(f, FX_B, f->env.data, f->env.len, 0));
    assert_ok(open_as(f, FX_B, f->env.data, f->env.len, EXPIRES));
    assert_rc(open_as(f, FX_B, f->env.data, f->env.len, EXPIRES + 1), TF_E_EXPIRED);
    assert_rc(open_as(f, FX_B, f->env.data, f->env.len, UINT64_MAX), TF_E_EXPIRED);
}

static void test_msg_id_altered(void **state)
{
    struct fixture *f = *state;
    struct outer o;
    uint8_t id[TF_PROTO_MSG_ID_LEN];
    outer_of(&f->env, &o);
    assert_ok(open_outer(f, FX_B, &o, FX_NOW));
    for (size_t i = 0; i < TF_PROTO_MSG_ID_LEN; i++) {
        memcpy(id, MSG_ID, sizeof id);
        id[i] ^= 0x01;
        o.msg_id = fx_bytes(id, sizeof id);
        assert_rc(open_outer(f, FX_B, &o, FX_NOW), TF_E_BAD_SIG);
    }
}

static void test_expiry_altered(void **state)
{
    struct fixture *f = *state;
    static const uint64_t changed[] = {EXPIRES + 1, EXPIRES - 1, EXPIRES + 0x100000000ull,
                                       UINT64_MAX, FX_NOW};
    struct outer o;
    outer_of(&f->env, &o);
    for (size_t i = 0; i < sizeof changed / sizeof changed[0]; i++) {
        o.expires = changed[i];
        /* now is before both expiries: only the signature can object */
        assert_rc(open_outer(f, FX_B, &o, FX_NOW), TF_E_BAD_SIG);
    }
}

static void test_sealed_bytes_flipped(void **state)
{
    struct fixture *f = *state;
    struct tf_proto_envelope e;
    assert_ok(tf_proto_envelope_decode(f->env.data, f->env.len, &e));
    size_t at = (size_t)(e.sealed.ptr - f->env.data);
    size_t offsets[] = {0, 31, 32, 47, 48, e.sealed.len / 2, e.sealed.len - 1};
    uint8_t *p = fx_dup(f->env.data, f->env.len, 0);
    for (size_t i = 0; i < sizeof offsets / sizeof offsets[0]; i++) {
        p[at + offsets[i]] ^= 0x20;
        assert_rc(open_as(f, FX_B, p, f->env.len, FX_NOW), TF_E_BAD_SEAL);
        p[at + offsets[i]] ^= 0x20;
    }
    free(p);
}

static void test_sealed_to_another_box_key(void **state)
{
    struct fixture *f = *state;
    struct tf_proto_buf env;
    /* names B as the recipient, but sealed to C's box key */
    assert_ok(tf_proto_envelope_seal(&f->id[FX_A], f->id[FX_B].sign_pk, f->id[FX_C].box_pk, MSG_ID,
                                     EXPIRES, TF_PROTO_MSG_TYPE_NOTE, (const uint8_t *)BODY,
                                     strlen(BODY), &env));
    assert_rc(open_as(f, FX_B, env.data, env.len, FX_NOW), TF_E_BAD_SEAL);
    assert_rc(open_as(f, FX_C, env.data, env.len, FX_NOW), TF_E_NOT_FOR_ME);
    tf_proto_buf_free(&env);
}

static void test_replayed_to_another_recipient(void **state)
{
    struct fixture *f = *state;
    struct tf_proto_buf plain;
    struct tf_proto_envelope_opened op;
    struct outer o;
    /* B opens A's message and re-seals the same inner bytes to C */
    assert_ok(tf_proto_envelope_open(&f->id[FX_B], f->env.data, f->env.len, FX_NOW, &plain, &op));
    uint8_t *sealed = malloc(plain.len + crypto_box_SEALBYTES);
    assert_non_null(sealed);
    assert_int_equal(crypto_box_seal(sealed, plain.data, plain.len, f->id[FX_C].box_pk), 0);
    outer_of(&f->env, &o);
    o.to_pk = fx_bytes(f->id[FX_C].sign_pk, TF_PROTO_KEY_LEN);
    o.sealed = fx_bytes(sealed, plain.len + crypto_box_SEALBYTES);
    assert_rc(open_outer(f, FX_C, &o, FX_NOW), TF_E_BAD_SIG);
    free(sealed);
    tf_proto_buf_free(&plain);
}

static void test_version(void **state)
{
    struct fixture *f = *state;
    struct outer o;
    outer_of(&f->env, &o);
    static const uint64_t versions[] = {0, 2, 255};
    for (size_t i = 0; i < sizeof versions / sizeof versions[0]; i++) {
        o.version = versions[i];
        assert_rc(decode_outer(&o), TF_E_VERSION);
        assert_rc(open_outer(f, FX_B, &o, FX_NOW), TF_E_VERSION);
    }
}

static int decode_fn(const uint8_t *buf, size_t len, void *ctx)
{
    (void)ctx;
    struct tf_proto_envelope e;
    return tf_proto_envelope_decode(buf, len, &e);
}

static int open_fn(const uint8_t *buf, size_t len, void *ctx)
{
    return open_as(ctx, FX_B, buf, len, FX_NOW);
}

static void test_truncated_trailing(void **state)
{
    struct fixture *f = *state;
    fx_assert_prefixes_truncated(f->env.data, f->env.len, decode_fn, NULL);
    fx_assert_whole_ok_and_trailing(f->env.data, f->env.len, decode_fn, NULL);
    fx_assert_prefixes_truncated(f->env.data, f->env.len, open_fn, f);
    fx_assert_whole_ok_and_trailing(f->env.data, f->env.len, open_fn, f);
}

static void test_decode_rejections(void **state)
{
    struct fixture *f = *state;
    struct outer o;
    uint8_t zeros[TF_PROTO_ENVELOPE_MAX];
    memset(zeros, 0, sizeof zeros);

    outer_of(&f->env, &o);
    o.count = 4;
    assert_rc(decode_outer(&o), TF_E_COUNT);
    o.count = 6;
    assert_rc(decode_outer(&o), TF_E_COUNT);

    outer_of(&f->env, &o);
    o.msg_id.len = TF_PROTO_MSG_ID_LEN - 1;
    assert_rc(decode_outer(&o), TF_E_BAD_LENGTH);
    o.msg_id = fx_bytes(zeros, TF_PROTO_MSG_ID_LEN + 1);
    assert_rc(decode_outer(&o), TF_E_BAD_LENGTH);

    outer_of(&f->env, &o);
    o.to_pk.len = TF_PROTO_KEY_LEN - 1;
    assert_rc(decode_outer(&o), TF_E_BAD_LENGTH);

    outer_of(&f->env, &o);
    o.sealed = fx_bytes(zeros, crypto_box_SEALBYTES);
    assert_rc(decode_outer(&o), TF_E_BAD_LENGTH);
    o.sealed = fx_bytes(zeros, crypto_box_SEALBYTES + 1);
    assert_ok(decode_outer(&o));
    assert_rc(open_outer(f, FX_B, &o, FX_NOW), TF_E_BAD_SEAL);

    /* the whole envelope is bounded before anything is read */
    o.sealed = fx_bytes(zeros, TF_PROTO_ENVELOPE_MAX - 100);
    assert_ok(decode_outer(&o));
    o.sealed = fx_bytes(zeros, TF_PROTO_ENVELOPE_MAX);
    assert_rc(decode_outer(&o), TF_E_TOO_LONG);

    static const uint8_t not_array[] = {0xc4, 0x01, 0x00};
    struct tf_proto_envelope e;
    assert_rc(tf_proto_envelope_decode(not_array, sizeof not_array, &e), TF_E_TYPE);
}

/* An envelope assembled by hand from the layout in envelope.h. */
struct inner_spec {
    enum fx_who signer;
    const uint8_t *from_pk;
    uint32_t count;
    uint64_t type, signed_type;
    uint64_t signed_expires;
    const uint8_t *signed_to;
    size_t sig_len;
};

static void store_be(uint8_t *p, uint64_t v, size_t n)
{
    for (size_t i = 0; i < n; i++)
        p[n - 1 - i] = (uint8_t)(v >> (8 * i));
}

static int open_crafted(const struct fixture *f, const struct inner_spec *s)
{
    size_t blen = strlen(BODY);
    uint8_t m[32 + 16 + 8 + 2 + sizeof BODY], sig[TF_PROTO_SIG_LEN + 1] = {0};
    memcpy(m, s->signed_to, 32);
    memcpy(m + 32, MSG_ID, 16);
    store_be(m + 48, s->signed_expires, 8);
    store_be(m + 56, s->signed_type, 2);
    memcpy(m + 58, BODY, blen);
    assert_ok(tf_proto_sign_tagged(&f->id[s->signer], TF_PROTO_DOMAIN_ENVELOPE, m, 58 + blen, sig));

    struct tf_proto_mp_writer w;
    struct tf_proto_buf inner;
    tf_proto_mp_writer_init(&w);
    tf_proto_mp_write_array(&w, s->count);
    tf_proto_mp_write_bin(&w, s->from_pk, TF_PROTO_KEY_LEN);
    tf_proto_mp_write_uint(&w, s->type);
    tf_proto_mp_write_bin(&w, (const uint8_t *)BODY, blen);
    tf_proto_mp_write_bin(&w, sig, s->sig_len);
    for (uint32_t i = 4; i < s->count; i++)
        tf_proto_mp_write_nil(&w);
    fx_finish(&w, &inner);

    uint8_t *sealed = malloc(inner.len + crypto_box_SEALBYTES);
    assert_non_null(sealed);
    assert_int_equal(crypto_box_seal(sealed, inner.data, inner.len, f->id[FX_B].box_pk), 0);
    struct outer o = {
        .count = 5,
        .version = TF_PROTO_ENVELOPE_VERSION,
        .msg_id = fx_bytes(MSG_ID, sizeof MSG_ID),
        .to_pk = fx_bytes(f->id[FX_B].sign_pk, TF_PROTO_KEY_LEN),
        .sealed = fx_bytes(sealed, inner.len + crypto_box_SEALBYTES),
        .expires = EXPIRES,
    };
    int rc = open_outer(f, FX_B, &o, FX_NOW);
    free(sealed);
    tf_proto_buf_free(&inner);
    return rc;
}

static void test_crafted_inner(void **state)
{
    struct fixture *f = *state;
    const uint8_t *a_pk = f->id[FX_A].sign_pk;
    const uint8_t *b_pk = f->id[FX_B].sign_pk;
    const uint8_t *c_pk = f->id[FX_C].sign_pk;
    const uint64_t note = TF_PROTO_MSG_TYPE_NOTE;
    const struct {
        const char *what;
        struct inner_spec s;
        int want;
    } cases[] = {
        {"as documented", {FX_A, a_pk, 4, note, note, EXPIRES, b_pk, 64}, TF_OK},
        {"unknown type 10", {FX_A, a_pk, 4, 10, 10, EXPIRES, b_pk, 64}, TF_E_BAD_VALUE},
        {"unknown type 0", {FX_A, a_pk, 4, 0, 0, EXPIRES, b_pk, 64}, TF_E_BAD_VALUE},
        {"signed by another key", {FX_D, a_pk, 4, note, note, EXPIRES, b_pk, 64}, TF_E_BAD_SIG},
        {"type not the signed one", {FX_A, a_pk, 4, note, 2, EXPIRES, b_pk, 64}, TF_E_BAD_SIG},
        {"expiry not the signed one",
         {FX_A, a_pk, 4, note, note, EXPIRES + 1, b_pk, 64},
         TF_E_BAD_SIG},
        {"signed for another recipient",
         {FX_A, a_pk, 4, note, note, EXPIRES, c_pk, 64},
         TF_E_BAD_SIG},
        {"five fields", {FX_A, a_pk, 5, note, note, EXPIRES, b_pk, 64}, TF_E_COUNT},
        {"63-byte signature", {FX_A, a_pk, 4, note, note, EXPIRES, b_pk, 63}, TF_E_BAD_LENGTH},
        {"65-byte signature", {FX_A, a_pk, 4, note, note, EXPIRES, b_pk, 65}, TF_E_TOO_LONG},
        /* the type is checked as it is read, before the fields after it */
        {"type 10 and a short signature",
         {FX_A, a_pk, 4, 10, 10, EXPIRES, b_pk, 63},
         TF_E_BAD_VALUE},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        int rc = open_crafted(f, &cases[i].s);
        if (rc != cases[i].want)
            fail_msg("%s: got %s, want %s", cases[i].what, tf_err_name(rc),
                     tf_err_name(cases[i].want));
    }
}

/* direct (issue 17) */

/* The length of a direct inner part with a body of n bytes (EXPIRES takes a
 * uint32: 5 bytes). */
static size_t direct_inner_len(size_t n)
{
    size_t bin_head = n < 256 ? 2 : n < 65536 ? 3 : 5;
    return 1 + 2 + TF_PROTO_MSG_ID_LEN + 5 + 1 + bin_head + n;
}

static void test_direct_round_trip(void **state)
{
    (void)state;
    for (uint16_t type = TF_PROTO_MSG_TYPE_NOTE; type <= TF_PROTO_MSG_TYPE_FEEDBACK; type++) {
        struct tf_proto_buf msg;
        struct tf_proto_envelope_direct d;
        assert_ok(tf_proto_envelope_direct_encode(MSG_ID, EXPIRES, type, (const uint8_t *)BODY,
                                                  strlen(BODY), &msg));
        assert_int_equal(msg.len, TF_PROTO_ENVELOPE_PAD_MIN);
        /* The documented layout, byte for byte, then zeros. */
        assert_int_equal(msg.data[0], 0x94);
        assert_memory_equal(msg.data + 1, "\xc4\x10", 2);
        assert_memory_equal(msg.data + 3, MSG_ID, sizeof MSG_ID);
        assert_int_equal(msg.data[19], 0xce);
        assert_int_equal(msg.data[24], type);
        assert_int_equal(msg.data[25], 0xc4);
        assert_int_equal(msg.data[26], strlen(BODY));
        assert_memory_equal(msg.data + 27, BODY, strlen(BODY));
        assert_true(sodium_is_zero(msg.data + 27 + strlen(BODY), msg.len - 27 - strlen(BODY)));
        assert_ok(tf_proto_envelope_direct_decode(msg.data, msg.len, &d));
        assert_memory_equal(d.msg_id, MSG_ID, sizeof MSG_ID);
        assert_int_equal(d.expires, EXPIRES);
        assert_int_equal(d.type, type);
        assert_int_equal(d.body.len, strlen(BODY));
        assert_memory_equal(d.body.ptr, BODY, strlen(BODY));
        tf_proto_buf_free(&msg);
    }
    /* An empty body is valid too. */
    struct tf_proto_buf msg;
    struct tf_proto_envelope_direct d;
    assert_ok(
        tf_proto_envelope_direct_encode(MSG_ID, EXPIRES, TF_PROTO_MSG_TYPE_CLOSE, NULL, 0, &msg));
    assert_ok(tf_proto_envelope_direct_decode(msg.data, msg.len, &d));
    assert_int_equal(d.body.len, 0);
    tf_proto_buf_free(&msg);
}

/* Every class is reached, at its exact boundary: a body one byte longer goes
 * to the next class. */
static void test_direct_classes(void **state)
{
    (void)state;
    static const size_t classes[] = TF_PROTO_ENVELOPE_CLASSES;
    uint8_t *body = malloc(TF_PROTO_BODY_MAX + 1);
    assert_non_null(body);
    memset(body, 0xa5, TF_PROTO_BODY_MAX + 1);
    size_t seen = 0;
    for (size_t c = 0; c < sizeof classes / sizeof classes[0]; c++) {
        /* The longest body whose inner part fits class c. */
        size_t n = 0;
        while (n < TF_PROTO_BODY_MAX && direct_inner_len(n + 1) <= classes[c])
            n++;
        size_t tries[] = {n, n + 1};
        for (size_t i = 0; i < 2; i++) {
            if (tries[i] > TF_PROTO_BODY_MAX)
                continue;
            struct tf_proto_buf msg;
            struct tf_proto_envelope_direct d;
            assert_ok(tf_proto_envelope_direct_encode(MSG_ID, EXPIRES, TF_PROTO_MSG_TYPE_NOTE, body,
                                                      tries[i], &msg));
            assert_int_equal(msg.len, tf_proto_envelope_padded_len(direct_inner_len(tries[i])));
            if (i == 0) {
                assert_int_equal(msg.len, classes[c]);
                seen++;
            } else {
                assert_true(msg.len > classes[c]);
            }
            assert_ok(tf_proto_envelope_direct_decode(msg.data, msg.len, &d));
            assert_int_equal(d.body.len, tries[i]);
            tf_proto_buf_free(&msg);
        }
    }
    assert_int_equal(seen, sizeof classes / sizeof classes[0]);
    /* The largest body has a class; one more byte is refused. */
    struct tf_proto_buf msg;
    assert_ok(tf_proto_envelope_direct_encode(MSG_ID, EXPIRES, TF_PROTO_MSG_TYPE_NOTE, body,
                                              TF_PROTO_BODY_MAX, &msg));
    assert_int_equal(msg.len, TF_PROTO_ENVELOPE_PAD_MAX);
    tf_proto_buf_free(&msg);
    assert_rc(tf_proto_envelope_direct_encode(MSG_ID, EXPIRES, TF_PROTO_MSG_TYPE_NOTE, body,
                                              TF_PROTO_BODY_MAX + 1, &msg),
              TF_E_TOO_LONG);
    assert_rc(tf_proto_envelope_direct_encode(MSG_ID, EXPIRES, 0, body, 1, &msg), TF_E_BAD_VALUE);
    assert_rc(tf_proto_envelope_direct_encode(MSG_ID, EXPIRES, 10, body, 1, &msg), TF_E_BAD_VALUE);
    free(body);
}

/* A direct inner part written by hand: count fields, a msg_id of id_len
 * bytes, type, a body of 9 bytes; then padded with zeros to pad_to bytes
 * (0: the class of the inner part).  *out owned by the caller. */
static void crafted_direct(uint32_t count, size_t id_len, uint64_t type, size_t pad_to,
                           struct tf_proto_buf *out)
{
    struct tf_proto_mp_writer w;
    struct tf_proto_buf inner;
    uint8_t id[32];
    memset(id, 0x42, sizeof id);
    tf_proto_mp_writer_init(&w);
    tf_proto_mp_write_array(&w, count);
    tf_proto_mp_write_bin(&w, id, id_len);
    tf_proto_mp_write_uint(&w, EXPIRES);
    tf_proto_mp_write_uint(&w, type);
    tf_proto_mp_write_bin(&w, (const uint8_t *)BODY, strlen(BODY));
    for (uint32_t i = 4; i < count; i++)
        tf_proto_mp_write_uint(&w, 0);
    assert_ok(tf_proto_mp_writer_finish(&w, &inner));
    size_t len = pad_to != 0 ? pad_to : tf_proto_envelope_padded_len(inner.len);
    assert_true(len >= inner.len);
    out->data = calloc(1, len);
    assert_non_null(out->data);
    memcpy(out->data, inner.data, inner.len);
    out->len = len;
    tf_proto_buf_free(&inner);
}

static int direct_decode_crafted(uint32_t count, size_t id_len, uint64_t type, size_t pad_to)
{
    struct tf_proto_buf msg;
    struct tf_proto_envelope_direct d;
    crafted_direct(count, id_len, type, pad_to, &msg);
    int rc = tf_proto_envelope_direct_decode(msg.data, msg.len, &d);
    tf_proto_buf_free(&msg);
    return rc;
}

static void test_direct_rejections(void **state)
{
    (void)state;
    const uint64_t note = TF_PROTO_MSG_TYPE_NOTE;
    assert_ok(direct_decode_crafted(4, 16, note, 0));
    assert_rc(direct_decode_crafted(5, 16, note, 0), TF_E_COUNT);
    assert_rc(direct_decode_crafted(4, 15, note, 0), TF_E_BAD_LENGTH);
    assert_rc(direct_decode_crafted(4, 17, note, 0), TF_E_BAD_LENGTH);
    /* padded to a class, but not the smallest that holds it */
    assert_rc(direct_decode_crafted(4, 16, note, 8192), TF_E_BAD_LENGTH);
    /* not padded at all, or short of its class */
    assert_rc(direct_decode_crafted(4, 16, note, 1 + 2 + 16 + 5 + 1 + 2 + strlen(BODY)),
              TF_E_BAD_LENGTH);
    assert_rc(direct_decode_crafted(4, 16, note, 4095), TF_E_BAD_LENGTH);
    assert_rc(direct_decode_crafted(4, 16, note, 4097), TF_E_BAD_LENGTH);
    /* oversize, whatever it holds */
    assert_rc(direct_decode_crafted(4, 16, note, TF_PROTO_ENVELOPE_PAD_MAX + 1), TF_E_TOO_LONG);

    /* Unknown types: TF_E_BAD_VALUE, with the msg_id and expiry read. */
    const uint64_t unknown[] = {0, 10, 65535, 65536, UINT64_MAX};
    for (size_t i = 0; i < sizeof unknown / sizeof unknown[0]; i++) {
        struct tf_proto_buf msg;
        struct tf_proto_envelope_direct d;
        memset(&d, 0, sizeof d);
        crafted_direct(4, 16, unknown[i], 0, &msg);
        assert_rc(tf_proto_envelope_direct_decode(msg.data, msg.len, &d), TF_E_BAD_VALUE);
        assert_int_equal(d.msg_id[0], 0x42);
        assert_int_equal(d.expires, EXPIRES);
        tf_proto_buf_free(&msg);
    }

    /* Every byte of padding must be zero; every truncation is refused. */
    struct tf_proto_buf msg;
    struct tf_proto_envelope_direct d;
    assert_ok(tf_proto_envelope_direct_encode(MSG_ID, EXPIRES, TF_PROTO_MSG_TYPE_NOTE,
                                              (const uint8_t *)BODY, strlen(BODY), &msg));
    size_t inner_len = direct_inner_len(strlen(BODY));
    size_t at[] = {inner_len, inner_len + 1, msg.len / 2, msg.len - 1};
    for (size_t i = 0; i < sizeof at / sizeof at[0]; i++) {
        msg.data[at[i]] = 0x01;
        assert_rc(tf_proto_envelope_direct_decode(msg.data, msg.len, &d), TF_E_TRAILING);
        msg.data[at[i]] = 0x80;
        assert_rc(tf_proto_envelope_direct_decode(msg.data, msg.len, &d), TF_E_TRAILING);
        msg.data[at[i]] = 0x00;
    }
    for (size_t n = 0; n < msg.len; n++)
        assert_true(tf_proto_envelope_direct_decode(msg.data, n, &d) != TF_OK);
    /* one zero byte more is not the class either */
    uint8_t *longer = calloc(1, msg.len + 1);
    assert_non_null(longer);
    memcpy(longer, msg.data, msg.len);
    assert_rc(tf_proto_envelope_direct_decode(longer, msg.len + 1, &d), TF_E_BAD_LENGTH);
    free(longer);
    assert_ok(tf_proto_envelope_direct_decode(msg.data, msg.len, &d));
    tf_proto_buf_free(&msg);
}

int main(void)
{
    if (sodium_init() < 0)
        return 1;
#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)
    const struct CMUnitTest tests[] = {
        T(test_round_trip),
        T(test_padding_classes),
        T(test_padding_hides_the_answer),
        T(test_padding_read),
        T(test_peek_id),
        T(test_types_and_sizes),
        T(test_not_for_me),
        T(test_expiry),
        T(test_msg_id_altered),
        T(test_expiry_altered),
        T(test_sealed_bytes_flipped),
        T(test_sealed_to_another_box_key),
        T(test_replayed_to_another_recipient),
        T(test_version),
        T(test_truncated_trailing),
        T(test_decode_rejections),
        T(test_crafted_inner),
        /* direct */
        T(test_direct_round_trip),
        T(test_direct_classes),
        T(test_direct_rejections),
    };
#undef T
    return cmocka_run_group_tests(tests, NULL, NULL);
}
