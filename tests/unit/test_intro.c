/* SPDX-License-Identifier: MIT */
/*
 * Unit tests for proto/intro: Carol (C) introduces Alice (A) and Bob (B); Dave
 * (D) is a bystander and impostor.  Every rejection reason of the proposal,
 * reply, materialisation and close checks is produced by changing exactly one
 * thing in an otherwise valid object (see fixtures.h for the builders).
 */
#include "fixtures.h"

#include "proto/intro.h"

struct fixture {
    struct fx_world w;
    struct fx_intro x; /* C introduces A and B */
};

static int setup(void **state)
{
    struct fixture *f = calloc(1, sizeof *f);
    if (f == NULL)
        return -1;
    fx_world_init(&f->w);
    fx_intro_build(&f->w, FX_A, FX_B, 0x51, &f->x);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fixture *f = *state;
    fx_intro_free(&f->x);
    fx_world_deinit(&f->w);
    free(f);
    return 0;
}

static const uint8_t *pk(const struct fixture *f, enum fx_who who)
{
    return f->w.id[who].sign_pk;
}

static bool text_is(struct tf_proto_bytes v, const char *s)
{
    return v.len == strlen(s) && memcmp(v.ptr, s, v.len) == 0;
}

static bool bytes_are(struct tf_proto_bytes v, const struct tf_proto_buf *b)
{
    return v.len == b->len && memcmp(v.ptr, b->data, v.len) == 0;
}

/* Re-signs a statement's body followed by one extra byte (nil). */
static void resign_with_trailing(const struct tf_proto_identity *id, enum tf_proto_domain domain,
                                 const struct tf_proto_buf *in, struct tf_proto_buf *out)
{
    struct tf_proto_statement st;
    assert_ok(tf_proto_statement_parse(in->data, in->len, &st));
    uint8_t *body = fx_dup(st.body.ptr, st.body.len, 1);
    assert_ok(tf_proto_statement_sign(id, domain, body, st.body.len + 1, out));
    free(body);
}

/* A copy of a signed statement with one byte of its signature flipped. */
static void flip_sig(const struct tf_proto_buf *in, struct tf_proto_buf *out)
{
    out->data = fx_dup(in->data, in->len, 0);
    out->len = in->len;
    out->data[in->len - 10] ^= 0x01;
}

/* Proposals. */

static int verify_proposal(const struct fixture *f, enum fx_who me, const struct tf_proto_buf *b,
                           uint64_t now, uint64_t skew)
{
    struct tf_proto_proposal p;
    int rc = tf_proto_proposal_verify(pk(f, me), b->data, b->len, now, skew, &p);
    /* Knowing the connector's genuine card changes the cost, never the
     * verdict. */
    struct tf_proto_known card = {f->w.card[FX_C].data, f->w.card[FX_C].len};
    assert_rc(tf_proto_proposal_verify_known(pk(f, me), b->data, b->len, now, skew, card, &p), rc);
    return rc;
}

/* Signs a proposal spec and verifies it as A at FX_NOW. */
static int verify_proposal_spec(const struct fixture *f, const struct fx_proposal_spec *s)
{
    struct tf_proto_buf b;
    fx_proposal_sign(&f->w, s, &b);
    int rc = verify_proposal(f, FX_A, &b, FX_NOW, FX_SKEW);
    tf_proto_buf_free(&b);
    return rc;
}

/* The default proposal to A (a valid one). */
static void proposal_spec(const struct fixture *f, struct fx_proposal_spec *s)
{
    fx_intro_proposal_default(&f->w, &f->x, TF_PROTO_SIDE_A, s);
}

/* X's intro id with one bit changed: the id of some other intro. */
static const uint8_t *other_intro_id(const struct fixture *f,
                                     uint8_t id[static TF_PROTO_INTRO_ID_LEN])
{
    memcpy(id, f->x.intro_id, TF_PROTO_INTRO_ID_LEN);
    id[0] ^= 1;
    return id;
}

/* Writes a core from spec; intro_id is set to its hash. */
static void core_with_id(const struct fx_core_spec *cs, struct tf_proto_buf *core,
                         uint8_t intro_id[static TF_PROTO_INTRO_ID_LEN])
{
    fx_core_write(cs, core);
    tf_proto_intro_id(core->data, core->len, intro_id);
}

static void test_happy_path(void **state)
{
    struct fixture *f = *state;
    const struct fx_intro *x = &f->x;
    struct tf_proto_proposal p;
    struct tf_proto_reply r;
    struct tf_proto_materialised m;

    /* A and B each check the proposal sent to them. */
    for (int i = 0; i < 2; i++) {
        bool is_a = i == 0;
        const struct tf_proto_buf *b = is_a ? &x->proposal_a : &x->proposal_b;
        assert_ok(tf_proto_proposal_verify(pk(f, is_a ? FX_A : FX_B), b->data, b->len, FX_NOW,
                                           FX_SKEW, &p));
        assert_memory_equal(p.intro_id, x->intro_id, TF_PROTO_INTRO_ID_LEN);
        assert_true(bytes_are(p.core_bytes, &x->core));
        assert_int_equal(p.side, is_a ? TF_PROTO_SIDE_A : TF_PROTO_SIDE_B);
        assert_memory_equal(p.salt, is_a ? x->salt_a : x->salt_b, TF_PROTO_SALT_LEN);
        assert_memory_equal(p.core.connector_pk, pk(f, FX_C), TF_PROTO_KEY_LEN);
        assert_memory_equal(p.core.commit_a, x->core_spec.commit_a, TF_PROTO_HASH_LEN);
        assert_memory_equal(p.core.commit_b, x->core_spec.commit_b, TF_PROTO_HASH_LEN);
        assert_true(text_is(p.core.topic, FX_TOPIC));
        assert_true(p.core.created == FX_CREATED);
        assert_true(p.core.expires == FX_EXPIRES);
        assert_int_equal(p.core.mode, TF_PROTO_INTRO_MODE_PARALLEL);
        assert_true(bytes_are(p.connector_card, &f->w.card[FX_C]));
        assert_memory_equal(p.card.sign_pk, pk(f, FX_C), TF_PROTO_KEY_LEN);
        assert_true(text_is(p.about_other, is_a ? FX_ABOUT_B : FX_ABOUT_A));
        assert_true(text_is(p.note, is_a ? FX_NOTE_TO_A : FX_NOTE_TO_B));
    }

    /* C checks both acceptances. */
    for (int i = 0; i < 2; i++) {
        enum tf_proto_side side = (enum tf_proto_side)i;
        enum fx_who who = i == 0 ? FX_A : FX_B;
        const struct tf_proto_buf *b = i == 0 ? &x->reply_a : &x->reply_b;
        assert_ok(tf_proto_reply_verify(pk(f, who), x->intro_id, side, b->data, b->len, &r));
        assert_memory_equal(r.intro_id, x->intro_id, TF_PROTO_INTRO_ID_LEN);
        assert_int_equal(r.side, side);
        assert_int_equal(r.decision, TF_PROTO_DECISION_ACCEPT);
        assert_true(bytes_are(r.card, &f->w.card[who]));
        assert_memory_equal(r.card_fields.sign_pk, pk(f, who), TF_PROTO_KEY_LEN);
        assert_true(text_is(r.note, fx_note_from(side)));
        assert_int_equal(r.reason.len, 0);
        assert_true(r.time == FX_REPLY_TIME);
    }

    /* Both materialise, each learning the other. */
    for (int i = 0; i < 2; i++) {
        bool is_a = i == 0;
        enum fx_who me = is_a ? FX_A : FX_B, other = is_a ? FX_B : FX_A;
        const struct tf_proto_buf *mine = is_a ? &x->reply_a : &x->reply_b;
        memset(&m, 0, sizeof m);
        assert_ok(tf_proto_intro_materialise_check(pk(f, me), mine->data, mine->len,
                                                   x->introduction.data, x->introduction.len,
                                                   FX_SKEW, &m));
        assert_memory_equal(m.intro_id, x->intro_id, TF_PROTO_INTRO_ID_LEN);
        assert_memory_equal(m.connector_pk, pk(f, FX_C), TF_PROTO_KEY_LEN);
        assert_true(text_is(m.topic, FX_TOPIC));
        assert_int_equal(m.my_side, is_a ? TF_PROTO_SIDE_A : TF_PROTO_SIDE_B);
        assert_true(bytes_are(m.other_card, &f->w.card[other]));
        assert_memory_equal(m.other.sign_pk, pk(f, other), TF_PROTO_KEY_LEN);
        assert_true(text_is(m.other.name, fx_names[other]));
        assert_true(text_is(m.other_note, is_a ? FX_NOTE_FROM_B : FX_NOTE_FROM_A));
        assert_true(text_is(m.connector_note, FX_INTRO_NOTE));
        /* views point into the introduction */
        assert_true(m.other_card.ptr > x->introduction.data &&
                    m.other_card.ptr < x->introduction.data + x->introduction.len);
    }
}

static void assert_same(const struct tf_proto_buf *a, const struct tf_proto_buf *b)
{
    assert_int_equal(a->len, b->len);
    assert_memory_equal(a->data, b->data, a->len);
}

/* The hand encoders follow intro.h; with deterministic Ed25519 their output
 * must equal the proto signers' byte for byte. */
static void test_wire_format_matches_header(void **state)
{
    struct fixture *f = *state;
    const struct fx_intro *x = &f->x;
    struct tf_proto_buf b;

    fx_core_write(&x->core_spec, &b);
    assert_same(&b, &x->core);
    tf_proto_buf_free(&b);
    for (int i = 0; i < 2; i++) {
        enum tf_proto_side side = (enum tf_proto_side)i;
        struct fx_proposal_spec ps;
        struct fx_reply_spec rs;
        fx_intro_proposal_default(&f->w, x, side, &ps);
        fx_proposal_sign(&f->w, &ps, &b);
        assert_same(&b, i == 0 ? &x->proposal_a : &x->proposal_b);
        tf_proto_buf_free(&b);
        fx_intro_reply_default(&f->w, x, side, &rs);
        fx_reply_sign(&f->w, &rs, &b);
        assert_same(&b, i == 0 ? &x->reply_a : &x->reply_b);
        tf_proto_buf_free(&b);
    }
    struct fx_introduction_spec is;
    fx_intro_introduction_default(x, &is);
    fx_introduction_sign(&f->w, &is, &b);
    assert_same(&b, &x->introduction);
    tf_proto_buf_free(&b);

    /* a decline: [intro_id, side, 0, nil, nil, reason, time] */
    struct tf_proto_reply d = {.side = TF_PROTO_SIDE_B,
                               .decision = TF_PROTO_DECISION_DECLINE,
                               .card = fx_view(&f->w.card[FX_B]), /* ignored */
                               .note = fx_str("ignored"),
                               .reason = fx_str("busy"),
                               .time = 42};
    struct fx_reply_spec rs;
    struct tf_proto_buf want;
    memcpy(d.intro_id, x->intro_id, TF_PROTO_INTRO_ID_LEN);
    assert_ok(tf_proto_reply_sign(&f->w.id[FX_B], &d, &b));
    fx_intro_reply_default(&f->w, x, TF_PROTO_SIDE_B, &rs);
    rs.decision = TF_PROTO_DECISION_DECLINE;
    rs.reason = "busy";
    rs.time = 42;
    fx_reply_sign(&f->w, &rs, &want);
    assert_same(&b, &want);
    tf_proto_buf_free(&b);
    tf_proto_buf_free(&want);
}

static void test_commit_and_intro_id(void **state)
{
    struct fixture *f = *state;
    uint8_t h[TF_PROTO_HASH_LEN], want[TF_PROTO_HASH_LEN];
    tf_proto_intro_commit(pk(f, FX_A), f->x.salt_a, h);
    tf_proto_hash_tagged(want, "twofold/v1/commit", pk(f, FX_A), TF_PROTO_KEY_LEN, f->x.salt_a,
                         TF_PROTO_SALT_LEN);
    assert_memory_equal(h, want, sizeof h);
    assert_memory_equal(h, f->x.core_spec.commit_a, sizeof h);
    tf_proto_intro_commit(pk(f, FX_B), f->x.salt_a, h);
    assert_memory_not_equal(h, want, sizeof h);

    tf_proto_intro_id(f->x.core.data, f->x.core.len, h);
    tf_proto_hash_tagged(want, "twofold/v1/intro", f->x.core.data, f->x.core.len, NULL, 0);
    assert_memory_equal(h, want, sizeof h);
    assert_memory_equal(h, f->x.intro_id, sizeof h);
}

static int decode_core(const uint8_t *buf, size_t len, void *ctx)
{
    (void)ctx;
    struct tf_proto_intro_core c;
    return tf_proto_intro_core_decode(buf, len, &c);
}

/* Decodes the core of cs followed by `extra` trailing bytes. */
static int decode_core_spec_extra(const struct fx_core_spec *cs, size_t extra)
{
    struct tf_proto_buf b;
    fx_core_write(cs, &b);
    uint8_t *p = fx_dup(b.data, b.len, extra);
    int rc = decode_core(p, b.len + extra, NULL);
    free(p);
    tf_proto_buf_free(&b);
    return rc;
}

static int decode_core_spec(const struct fx_core_spec *cs)
{
    return decode_core_spec_extra(cs, 0);
}

static void test_core_codec(void **state)
{
    struct fixture *f = *state;
    struct tf_proto_intro_core c;
    struct fx_core_spec cs = f->x.core_spec;
    struct tf_proto_buf b = {NULL, 0};

    assert_ok(tf_proto_intro_core_decode(f->x.core.data, f->x.core.len, &c));
    fx_assert_prefixes_truncated(f->x.core.data, f->x.core.len, decode_core, NULL);
    fx_assert_whole_ok_and_trailing(f->x.core.data, f->x.core.len, decode_core, NULL);

    cs.mode = TF_PROTO_INTRO_MODE_SEQUENTIAL;
    assert_ok(decode_core_spec(&cs));
    cs.mode = 2;
    assert_rc(decode_core_spec(&cs), TF_E_BAD_VALUE);
    cs = f->x.core_spec;
    cs.version = 2;
    assert_rc(decode_core_spec(&cs), TF_E_VERSION);
    cs.version = 0;
    assert_rc(decode_core_spec(&cs), TF_E_VERSION);
    cs = f->x.core_spec;
    cs.expires = cs.created;
    assert_rc(decode_core_spec(&cs), TF_E_BAD_VALUE);
    cs.expires = cs.created - 1;
    assert_rc(decode_core_spec(&cs), TF_E_BAD_VALUE);
    cs.expires = cs.created + 1;
    assert_ok(decode_core_spec(&cs));
    cs = f->x.core_spec;
    cs.topic = "AI";
    assert_rc(decode_core_spec(&cs), TF_E_BAD_VALUE);
    cs.topic = "";
    assert_rc(decode_core_spec(&cs), TF_E_BAD_LENGTH);

    /* each field is checked as it is read, before anything after it */
    cs = f->x.core_spec;
    assert_rc(decode_core_spec_extra(&cs, 1), TF_E_TRAILING);
    cs.topic = "AI";
    assert_rc(decode_core_spec_extra(&cs, 1), TF_E_BAD_VALUE);
    cs = f->x.core_spec;
    cs.expires = cs.created;
    cs.mode = 7;
    assert_rc(decode_core_spec_extra(&cs, 1), TF_E_BAD_VALUE);
    cs = f->x.core_spec;
    cs.mode = 7;
    assert_rc(decode_core_spec_extra(&cs, 1), TF_E_BAD_VALUE);
    cs = f->x.core_spec;
    cs.version = 2;
    cs.topic = "AI";
    assert_rc(decode_core_spec(&cs), TF_E_VERSION);

    /* the encoder validates as the decoder does */
    c.expires = c.created;
    assert_rc(tf_proto_intro_core_encode(&c, &b), TF_E_BAD_VALUE);
    assert_ok(tf_proto_intro_core_decode(f->x.core.data, f->x.core.len, &c));
    c.mode = (enum tf_proto_intro_mode)2;
    assert_rc(tf_proto_intro_core_encode(&c, &b), TF_E_BAD_VALUE);
    assert_ok(tf_proto_intro_core_decode(f->x.core.data, f->x.core.len, &c));
    c.topic = fx_str("not a tag");
    assert_rc(tf_proto_intro_core_encode(&c, &b), TF_E_BAD_VALUE);
    assert_null(b.data);
}

static void test_proposal_bad_connector_signature(void **state)
{
    struct fixture *f = *state;
    struct fx_proposal_spec s;
    struct tf_proto_buf b;
    proposal_spec(f, &s);
    s.signer = FX_D; /* the core still names C */
    assert_rc(verify_proposal_spec(f, &s), TF_E_BAD_SIG);
    flip_sig(&f->x.proposal_a, &b);
    assert_rc(verify_proposal(f, FX_A, &b, FX_NOW, FX_SKEW), TF_E_BAD_SIG);
    tf_proto_buf_free(&b);
}

static void test_proposal_wrong_domain(void **state)
{
    struct fixture *f = *state;
    struct fx_proposal_spec s;
    static const enum tf_proto_domain others[] = {
        TF_PROTO_DOMAIN_REPLY, TF_PROTO_DOMAIN_INTRODUCTION, TF_PROTO_DOMAIN_CARD,
        TF_PROTO_DOMAIN_CLOSE, TF_PROTO_DOMAIN_ENVELOPE};
    proposal_spec(f, &s);
    for (size_t i = 0; i < sizeof others / sizeof others[0]; i++) {
        s.domain = others[i];
        assert_rc(verify_proposal_spec(f, &s), TF_E_BAD_SIG);
    }
}

static int proposal_as_a(const uint8_t *buf, size_t len, void *ctx)
{
    const struct fixture *f = ctx;
    struct tf_proto_proposal p;
    return tf_proto_proposal_verify(pk(f, FX_A), buf, len, FX_NOW, FX_SKEW, &p);
}

static void test_proposal_truncated_trailing(void **state)
{
    struct fixture *f = *state;
    struct tf_proto_buf b;
    fx_assert_prefixes_truncated(f->x.proposal_a.data, f->x.proposal_a.len, proposal_as_a, f);
    fx_assert_whole_ok_and_trailing(f->x.proposal_a.data, f->x.proposal_a.len, proposal_as_a, f);
    resign_with_trailing(&f->w.id[FX_C], TF_PROTO_DOMAIN_PROPOSAL, &f->x.proposal_a, &b);
    assert_rc(proposal_as_a(b.data, b.len, f), TF_E_TRAILING);
    tf_proto_buf_free(&b);
}

static void test_proposal_expired(void **state)
{
    struct fixture *f = *state;
    const struct tf_proto_buf *b = &f->x.proposal_a;
    assert_ok(verify_proposal(f, FX_A, b, FX_EXPIRES, FX_SKEW));
    assert_rc(verify_proposal(f, FX_A, b, FX_EXPIRES + 1, FX_SKEW), TF_E_EXPIRED);
    assert_rc(verify_proposal(f, FX_A, b, UINT64_MAX, FX_SKEW), TF_E_EXPIRED);
}

static void test_proposal_from_future(void **state)
{
    struct fixture *f = *state;
    const struct tf_proto_buf *b = &f->x.proposal_a;
    assert_ok(verify_proposal(f, FX_A, b, FX_CREATED, 0));
    assert_ok(verify_proposal(f, FX_A, b, FX_CREATED - FX_SKEW, FX_SKEW));
    assert_rc(verify_proposal(f, FX_A, b, FX_CREATED - FX_SKEW - 1, FX_SKEW), TF_E_FROM_FUTURE);
    assert_rc(verify_proposal(f, FX_A, b, FX_CREATED - 1, 0), TF_E_FROM_FUTURE);
    assert_rc(verify_proposal(f, FX_A, b, 0, FX_SKEW), TF_E_FROM_FUTURE);
}

static void test_proposal_wrong_salt(void **state)
{
    struct fixture *f = *state;
    struct fx_proposal_spec s;
    uint8_t salt[TF_PROTO_SALT_LEN];
    proposal_spec(f, &s);
    memcpy(salt, f->x.salt_a, sizeof salt);
    salt[7] ^= 0x01;
    s.salt = salt;
    assert_rc(verify_proposal_spec(f, &s), TF_E_COMMITMENT);
    s.salt = f->x.salt_b;
    assert_rc(verify_proposal_spec(f, &s), TF_E_COMMITMENT);
}

static void test_proposal_wrong_party(void **state)
{
    struct fixture *f = *state;
    struct fx_proposal_spec s;
    /* A's proposal presented to B or D; B's to A */
    assert_rc(verify_proposal(f, FX_B, &f->x.proposal_a, FX_NOW, FX_SKEW), TF_E_COMMITMENT);
    assert_rc(verify_proposal(f, FX_D, &f->x.proposal_a, FX_NOW, FX_SKEW), TF_E_COMMITMENT);
    assert_rc(verify_proposal(f, FX_A, &f->x.proposal_b, FX_NOW, FX_SKEW), TF_E_COMMITMENT);
    assert_ok(verify_proposal(f, FX_B, &f->x.proposal_b, FX_NOW, FX_SKEW));
    /* A's salt, but claiming side b: commit_b is B's */
    proposal_spec(f, &s);
    s.side = TF_PROTO_SIDE_B;
    assert_rc(verify_proposal_spec(f, &s), TF_E_COMMITMENT);
}

static void test_proposal_intro_id_mismatch(void **state)
{
    struct fixture *f = *state;
    struct fx_proposal_spec s;
    uint8_t id[TF_PROTO_INTRO_ID_LEN];
    proposal_spec(f, &s);
    s.intro_id = other_intro_id(f, id);
    assert_rc(verify_proposal_spec(f, &s), TF_E_INTRO_ID);
}

static void test_proposal_connector_card_of_someone_else(void **state)
{
    struct fixture *f = *state;
    struct fx_proposal_spec s;
    proposal_spec(f, &s);
    s.connector_card = fx_view(&f->w.card[FX_D]);
    assert_rc(verify_proposal_spec(f, &s), TF_E_CONNECTOR);
    s.connector_card = fx_view(&f->w.card[FX_A]);
    assert_rc(verify_proposal_spec(f, &s), TF_E_CONNECTOR);
}

static void test_proposal_connector_card_invalid(void **state)
{
    struct fixture *f = *state;
    struct fx_proposal_spec s;
    struct tf_proto_buf bad;
    proposal_spec(f, &s);
    flip_sig(&f->w.card[FX_C], &bad);
    s.connector_card = fx_view(&bad);
    assert_rc(verify_proposal_spec(f, &s), TF_E_BAD_SIG);
    s.connector_card = fx_bytes(bad.data, bad.len - 1);
    assert_rc(verify_proposal_spec(f, &s), TF_E_TRUNCATED);
    tf_proto_buf_free(&bad);
}

/* A proposal to A whose core is cs (intro_id matching it). */
static int proposal_with_core(const struct fixture *f, const struct fx_core_spec *cs)
{
    struct fx_proposal_spec s;
    struct tf_proto_buf core;
    uint8_t id[TF_PROTO_INTRO_ID_LEN];
    core_with_id(cs, &core, id);
    proposal_spec(f, &s);
    s.core = fx_view(&core);
    s.intro_id = id;
    int rc = verify_proposal_spec(f, &s);
    tf_proto_buf_free(&core);
    return rc;
}

static void test_proposal_core_version(void **state)
{
    struct fixture *f = *state;
    struct fx_core_spec cs = f->x.core_spec;
    assert_ok(proposal_with_core(f, &cs));
    cs.version = 2;
    assert_rc(proposal_with_core(f, &cs), TF_E_VERSION);
}

static void test_proposal_core_expires_not_after_created(void **state)
{
    struct fixture *f = *state;
    struct fx_core_spec cs = f->x.core_spec;
    cs.expires = cs.created;
    assert_rc(proposal_with_core(f, &cs), TF_E_BAD_VALUE);
    cs.expires = cs.created - 1;
    assert_rc(proposal_with_core(f, &cs), TF_E_BAD_VALUE);
}

static void test_proposal_field_limits(void **state)
{
    struct fixture *f = *state;
    struct fx_proposal_spec s;
    char *long_note = malloc(TF_PROTO_NOTE_MAX + 2);
    assert_non_null(long_note);
    memset(long_note, 'n', TF_PROTO_NOTE_MAX + 1);
    long_note[TF_PROTO_NOTE_MAX + 1] = '\0';

    proposal_spec(f, &s);
    s.side = 2;
    assert_rc(verify_proposal_spec(f, &s), TF_E_BAD_VALUE);
    proposal_spec(f, &s);
    s.note = "\x1b[31mred";
    assert_rc(verify_proposal_spec(f, &s), TF_E_BAD_TEXT);
    s.note = long_note;
    assert_rc(verify_proposal_spec(f, &s), TF_E_TOO_LONG);
    long_note[TF_PROTO_NOTE_MAX] = '\0';
    assert_ok(verify_proposal_spec(f, &s));
    proposal_spec(f, &s);
    s.about_other = "\xed\xa0\x80";
    assert_rc(verify_proposal_spec(f, &s), TF_E_BAD_UTF8);
    free(long_note);
}

/* When several things are wrong, the first check in the documented order
 * decides. */
static void test_proposal_check_order(void **state)
{
    struct fixture *f = *state;
    struct fx_proposal_spec s;
    uint8_t id[TF_PROTO_INTRO_ID_LEN];
    other_intro_id(f, id);

    /* signature before intro id */
    proposal_spec(f, &s);
    s.signer = FX_D;
    s.intro_id = id;
    assert_rc(verify_proposal_spec(f, &s), TF_E_BAD_SIG);
    /* intro id before connector card */
    proposal_spec(f, &s);
    s.intro_id = id;
    s.connector_card = fx_view(&f->w.card[FX_D]);
    assert_rc(verify_proposal_spec(f, &s), TF_E_INTRO_ID);
    /* connector card before commitment */
    proposal_spec(f, &s);
    s.connector_card = fx_view(&f->w.card[FX_D]);
    s.salt = f->x.salt_b;
    assert_rc(verify_proposal_spec(f, &s), TF_E_CONNECTOR);
    /* commitment before expiry */
    assert_rc(verify_proposal(f, FX_B, &f->x.proposal_a, FX_EXPIRES + 1, FX_SKEW), TF_E_COMMITMENT);
}

static void test_proposal_sign_rejections(void **state)
{
    struct fixture *f = *state;
    struct tf_proto_buf out = {NULL, 0};
    struct tf_proto_proposal p;
    char *long_note = calloc(1, TF_PROTO_NOTE_MAX + 2);
    assert_non_null(long_note);
    memset(long_note, 'n', TF_PROTO_NOTE_MAX + 1);

    assert_ok(tf_proto_proposal_verify(pk(f, FX_A), f->x.proposal_a.data, f->x.proposal_a.len,
                                       FX_NOW, FX_SKEW, &p));
    p.intro_id[0] ^= 1;
    assert_rc(tf_proto_proposal_sign(&f->w.id[FX_C], &p, &out), TF_E_INTRO_ID);
    p.intro_id[0] ^= 1;
    p.side = (enum tf_proto_side)2;
    assert_rc(tf_proto_proposal_sign(&f->w.id[FX_C], &p, &out), TF_E_BAD_VALUE);
    p.side = TF_PROTO_SIDE_A;
    p.note = fx_str(long_note);
    assert_rc(tf_proto_proposal_sign(&f->w.id[FX_C], &p, &out), TF_E_TOO_LONG);
    p.note = fx_str("");
    p.about_other = fx_str(long_note);
    assert_rc(tf_proto_proposal_sign(&f->w.id[FX_C], &p, &out), TF_E_TOO_LONG);
    assert_null(out.data);
    free(long_note);
}

/* Replies (the connector's check). */

static int verify_reply(const struct fixture *f, enum fx_who signer, const uint8_t *intro_id,
                        enum tf_proto_side side, const struct tf_proto_buf *b)
{
    struct tf_proto_reply r;
    int rc = tf_proto_reply_verify(pk(f, signer), intro_id, side, b->data, b->len, &r);
    /* Knowing the signer's genuine card (as the connector does) changes
     * the cost, never the verdict. */
    struct tf_proto_known card = {f->w.card[signer].data, f->w.card[signer].len};
    assert_rc(tf_proto_reply_verify_known(pk(f, signer), intro_id, side, b->data, b->len, card, &r),
              rc);
    return rc;
}

/* Signs a reply spec and has C verify it as A's reply for side a. */
static int verify_reply_spec(const struct fixture *f, const struct fx_reply_spec *s)
{
    struct tf_proto_buf b;
    fx_reply_sign(&f->w, s, &b);
    int rc = verify_reply(f, FX_A, f->x.intro_id, TF_PROTO_SIDE_A, &b);
    tf_proto_buf_free(&b);
    return rc;
}

static void reply_spec(const struct fixture *f, struct fx_reply_spec *s)
{
    fx_intro_reply_default(&f->w, &f->x, TF_PROTO_SIDE_A, s);
}

static void test_reply_decline(void **state)
{
    struct fixture *f = *state;
    struct fx_reply_spec s;
    struct tf_proto_buf b;
    struct tf_proto_reply r;
    reply_spec(f, &s);
    s.decision = TF_PROTO_DECISION_DECLINE;
    s.reason = "not now\nmaybe later";
    fx_reply_sign(&f->w, &s, &b);
    assert_ok(
        tf_proto_reply_verify(pk(f, FX_A), f->x.intro_id, TF_PROTO_SIDE_A, b.data, b.len, &r));
    assert_int_equal(r.decision, TF_PROTO_DECISION_DECLINE);
    assert_true(text_is(r.reason, "not now\nmaybe later"));
    assert_int_equal(r.card.len, 0);
    assert_int_equal(r.note.len, 0);
    tf_proto_buf_free(&b);
}

static void test_reply_signed_by_someone_else(void **state)
{
    struct fixture *f = *state;
    struct fx_reply_spec s;
    assert_rc(verify_reply(f, FX_D, f->x.intro_id, TF_PROTO_SIDE_A, &f->x.reply_a), TF_E_REPLY_SIG);
    reply_spec(f, &s);
    s.signer = FX_D; /* carrying A's card */
    assert_rc(verify_reply_spec(f, &s), TF_E_REPLY_SIG);
}

static void test_reply_wrong_domain(void **state)
{
    struct fixture *f = *state;
    struct fx_reply_spec s;
    reply_spec(f, &s);
    s.domain = TF_PROTO_DOMAIN_PROPOSAL;
    assert_rc(verify_reply_spec(f, &s), TF_E_REPLY_SIG);
    s.domain = TF_PROTO_DOMAIN_CARD;
    assert_rc(verify_reply_spec(f, &s), TF_E_REPLY_SIG);
}

static void test_reply_for_another_intro(void **state)
{
    struct fixture *f = *state;
    uint8_t id[TF_PROTO_INTRO_ID_LEN];
    assert_rc(verify_reply(f, FX_A, other_intro_id(f, id), TF_PROTO_SIDE_A, &f->x.reply_a),
              TF_E_REPLY_INTRO);
}

static void test_reply_for_the_wrong_side(void **state)
{
    struct fixture *f = *state;
    assert_rc(verify_reply(f, FX_A, f->x.intro_id, TF_PROTO_SIDE_B, &f->x.reply_a),
              TF_E_REPLY_SIDE);
    assert_rc(verify_reply(f, FX_B, f->x.intro_id, TF_PROTO_SIDE_A, &f->x.reply_b),
              TF_E_REPLY_SIDE);
}

static void test_reply_card_of_someone_else(void **state)
{
    struct fixture *f = *state;
    struct fx_reply_spec s;
    struct tf_proto_buf bad;
    reply_spec(f, &s);
    s.card = fx_view(&f->w.card[FX_D]);
    assert_rc(verify_reply_spec(f, &s), TF_E_KEY_MISMATCH);
    /* a card that does not verify */
    flip_sig(&f->w.card[FX_A], &bad);
    s.card = fx_view(&bad);
    assert_rc(verify_reply_spec(f, &s), TF_E_BAD_SIG);
    tf_proto_buf_free(&bad);
}

static int reply_by_a(const uint8_t *buf, size_t len, void *ctx)
{
    const struct fixture *f = ctx;
    struct tf_proto_reply r;
    return tf_proto_reply_verify(pk(f, FX_A), f->x.intro_id, TF_PROTO_SIDE_A, buf, len, &r);
}

static void test_reply_format(void **state)
{
    struct fixture *f = *state;
    struct fx_reply_spec s;
    struct tf_proto_buf b;
    fx_assert_prefixes_truncated(f->x.reply_a.data, f->x.reply_a.len, reply_by_a, f);
    fx_assert_whole_ok_and_trailing(f->x.reply_a.data, f->x.reply_a.len, reply_by_a, f);
    resign_with_trailing(&f->w.id[FX_A], TF_PROTO_DOMAIN_REPLY, &f->x.reply_a, &b);
    assert_rc(reply_by_a(b.data, b.len, f), TF_E_TRAILING);
    tf_proto_buf_free(&b);

    reply_spec(f, &s);
    s.decision = 2;
    assert_rc(verify_reply_spec(f, &s), TF_E_BAD_VALUE);
    reply_spec(f, &s);
    s.side = 2;
    assert_rc(verify_reply_spec(f, &s), TF_E_BAD_VALUE);
    reply_spec(f, &s);
    s.note = "a\rb";
    assert_rc(verify_reply_spec(f, &s), TF_E_BAD_TEXT);
    /* a misplaced nil: an accept laid out as a decline, and the reverse */
    reply_spec(f, &s);
    s.swap_layout = true;
    assert_rc(verify_reply_spec(f, &s), TF_E_TYPE);
    s.decision = TF_PROTO_DECISION_DECLINE;
    assert_rc(verify_reply_spec(f, &s), TF_E_TYPE);
}

static void test_reply_sign_rejections(void **state)
{
    struct fixture *f = *state;
    struct tf_proto_buf out = {NULL, 0};
    struct tf_proto_reply r;
    const struct tf_proto_identity *a = &f->w.id[FX_A];
    char *long_text = calloc(1, TF_PROTO_NOTE_MAX + 2);
    assert_non_null(long_text);

    assert_ok(tf_proto_reply_verify(pk(f, FX_A), f->x.intro_id, TF_PROTO_SIDE_A, f->x.reply_a.data,
                                    f->x.reply_a.len, &r));
    r.decision = (enum tf_proto_decision)2;
    assert_rc(tf_proto_reply_sign(a, &r, &out), TF_E_BAD_VALUE);
    r.decision = TF_PROTO_DECISION_ACCEPT;
    r.side = (enum tf_proto_side)2;
    assert_rc(tf_proto_reply_sign(a, &r, &out), TF_E_BAD_VALUE);
    r.side = TF_PROTO_SIDE_A;
    r.card = fx_bytes(NULL, 0);
    assert_rc(tf_proto_reply_sign(a, &r, &out), TF_E_BAD_VALUE);
    r.card = fx_view(&f->w.card[FX_A]);
    memset(long_text, 'x', TF_PROTO_NOTE_MAX + 1);
    r.note = fx_str(long_text);
    assert_rc(tf_proto_reply_sign(a, &r, &out), TF_E_TOO_LONG);
    r.decision = TF_PROTO_DECISION_DECLINE; /* the note is ignored now */
    long_text[TF_PROTO_REASON_MAX + 1] = '\0';
    r.reason = fx_str(long_text);
    assert_rc(tf_proto_reply_sign(a, &r, &out), TF_E_TOO_LONG);
    assert_null(out.data);
    long_text[TF_PROTO_REASON_MAX] = '\0';
    r.reason = fx_str(long_text);
    assert_ok(tf_proto_reply_sign(a, &r, &out));
    tf_proto_buf_free(&out);
    free(long_text);
}

/* Materialisation. */

static int materialise(const struct fixture *f, enum fx_who me, const struct tf_proto_buf *mine,
                       const uint8_t *intro, size_t intro_len, uint64_t skew)
{
    struct tf_proto_materialised m;
    int rc = tf_proto_intro_materialise_check(pk(f, me), mine->data, mine->len, intro, intro_len,
                                              skew, &m);
    /* The node's variant, which does not re-verify its own reply, reaches
     * the same verdict whenever mine really is the party's own reply. */
    if (mine == &f->x.reply_a || mine == &f->x.reply_b)
        assert_rc(tf_proto_intro_materialise_check_own(pk(f, me), mine->data, mine->len, intro,
                                                       intro_len, skew, &m),
                  rc);
    return rc;
}

/* Signs an introduction spec and runs `me`'s check with my reply `mine`. */
static int materialise_spec(const struct fixture *f, const struct fx_introduction_spec *s,
                            enum fx_who me, const struct tf_proto_buf *mine)
{
    struct tf_proto_buf b;
    fx_introduction_sign(&f->w, s, &b);
    int rc = materialise(f, me, mine, b.data, b.len, FX_SKEW);
    tf_proto_buf_free(&b);
    return rc;
}

/* Both parties' verdicts on an introduction spec. */
static void expect_both(const struct fixture *f, const struct fx_introduction_spec *s, int want)
{
    assert_rc(materialise_spec(f, s, FX_A, &f->x.reply_a), want);
    assert_rc(materialise_spec(f, s, FX_B, &f->x.reply_b), want);
}

static void intro_spec(const struct fixture *f, struct fx_introduction_spec *s)
{
    fx_intro_introduction_default(&f->x, s);
}

/* A reply like the default one for `side`, changed by the caller through
 * the returned spec before signing. */
static void reply_for(const struct fixture *f, enum tf_proto_side side, struct fx_reply_spec *s)
{
    fx_intro_reply_default(&f->w, &f->x, side, s);
}

static void test_mat_bad_connector_signature(void **state)
{
    struct fixture *f = *state;
    struct fx_introduction_spec s;
    struct tf_proto_buf b;
    intro_spec(f, &s);
    s.signer = FX_D;
    expect_both(f, &s, TF_E_BAD_SIG);
    s.signer = FX_A;
    expect_both(f, &s, TF_E_BAD_SIG);
    flip_sig(&f->x.introduction, &b);
    assert_rc(materialise(f, FX_A, &f->x.reply_a, b.data, b.len, FX_SKEW), TF_E_BAD_SIG);
    tf_proto_buf_free(&b);
}

static void test_mat_wrong_domain(void **state)
{
    struct fixture *f = *state;
    struct fx_introduction_spec s;
    intro_spec(f, &s);
    s.domain = TF_PROTO_DOMAIN_PROPOSAL;
    expect_both(f, &s, TF_E_BAD_SIG);
    s.domain = TF_PROTO_DOMAIN_CLOSE;
    expect_both(f, &s, TF_E_BAD_SIG);
}

static int materialise_as_a(const uint8_t *buf, size_t len, void *ctx)
{
    const struct fixture *f = ctx;
    return materialise(f, FX_A, &f->x.reply_a, buf, len, FX_SKEW);
}

static void test_mat_truncated_trailing(void **state)
{
    struct fixture *f = *state;
    struct fx_introduction_spec s;
    struct tf_proto_buf b;
    const struct tf_proto_buf *in = &f->x.introduction;
    fx_assert_prefixes_truncated(in->data, in->len, materialise_as_a, f);
    fx_assert_whole_ok_and_trailing(in->data, in->len, materialise_as_a, f);
    resign_with_trailing(&f->w.id[FX_C], TF_PROTO_DOMAIN_INTRODUCTION, in, &b);
    assert_rc(materialise_as_a(b.data, b.len, f), TF_E_TRAILING);
    tf_proto_buf_free(&b);

    /* an embedded reply cut short, or with a byte after it */
    intro_spec(f, &s);
    s.reply_b.len--;
    expect_both(f, &s, TF_E_TRUNCATED);
    uint8_t *longer = fx_dup(f->x.reply_b.data, f->x.reply_b.len, 1);
    s.reply_b = fx_bytes(longer, f->x.reply_b.len + 1);
    expect_both(f, &s, TF_E_TRAILING);
    free(longer);
}

static void test_mat_intro_id_mismatch(void **state)
{
    struct fixture *f = *state;
    struct fx_introduction_spec s;
    uint8_t id[TF_PROTO_INTRO_ID_LEN];
    intro_spec(f, &s);
    s.intro_id = other_intro_id(f, id);
    expect_both(f, &s, TF_E_INTRO_ID);
}

static void test_mat_swapped_replies(void **state)
{
    struct fixture *f = *state;
    struct fx_introduction_spec s;
    intro_spec(f, &s);
    s.reply_a = fx_view(&f->x.reply_b);
    s.reply_b = fx_view(&f->x.reply_a);
    expect_both(f, &s, TF_E_COMMITMENT);
    intro_spec(f, &s);
    s.salt_a = f->x.salt_b;
    s.salt_b = f->x.salt_a;
    expect_both(f, &s, TF_E_COMMITMENT);
}

static void test_mat_decline(void **state)
{
    struct fixture *f = *state;
    for (int i = 0; i < 2; i++) {
        enum tf_proto_side side = (enum tf_proto_side)i;
        struct fx_reply_spec rs;
        struct fx_introduction_spec s;
        struct tf_proto_buf decline;
        reply_for(f, side, &rs);
        rs.decision = TF_PROTO_DECISION_DECLINE;
        rs.reason = "no thanks";
        fx_reply_sign(&f->w, &rs, &decline);
        intro_spec(f, &s);
        if (side == TF_PROTO_SIDE_A)
            s.reply_a = fx_view(&decline);
        else
            s.reply_b = fx_view(&decline);
        expect_both(f, &s, TF_E_REPLY_DECLINE);
        tf_proto_buf_free(&decline);
    }
}

/* Replaces side a's reply by a variant and checks both parties' verdicts
 * (B's stored reply is still the one in the introduction). */
static int mat_with_reply_a(const struct fixture *f, const struct fx_reply_spec *rs)
{
    struct fx_introduction_spec s;
    struct tf_proto_buf r;
    fx_reply_sign(&f->w, rs, &r);
    intro_spec(f, &s);
    s.reply_a = fx_view(&r);
    int rc = materialise_spec(f, &s, FX_B, &f->x.reply_b);
    assert_rc(materialise_spec(f, &s, FX_A, &r), rc);
    tf_proto_buf_free(&r);
    return rc;
}

static void test_mat_reply_signed_by_someone_else(void **state)
{
    struct fixture *f = *state;
    struct fx_reply_spec rs;
    reply_for(f, TF_PROTO_SIDE_A, &rs);
    rs.signer = FX_D; /* still carrying A's card */
    assert_rc(mat_with_reply_a(f, &rs), TF_E_REPLY_SIG);
    reply_for(f, TF_PROTO_SIDE_A, &rs);
    rs.domain = TF_PROTO_DOMAIN_PROPOSAL;
    assert_rc(mat_with_reply_a(f, &rs), TF_E_REPLY_SIG);
}

static void test_mat_reply_for_another_intro(void **state)
{
    struct fixture *f = *state;
    struct fx_reply_spec rs;
    uint8_t id[TF_PROTO_INTRO_ID_LEN];
    reply_for(f, TF_PROTO_SIDE_A, &rs);
    rs.intro_id = other_intro_id(f, id);
    assert_rc(mat_with_reply_a(f, &rs), TF_E_REPLY_INTRO);
}

static void test_mat_reply_for_the_wrong_side(void **state)
{
    struct fixture *f = *state;
    struct fx_reply_spec rs;
    reply_for(f, TF_PROTO_SIDE_A, &rs);
    rs.side = TF_PROTO_SIDE_B;
    assert_rc(mat_with_reply_a(f, &rs), TF_E_REPLY_SIDE);
}

static void test_mat_not_my_reply(void **state)
{
    struct fixture *f = *state;
    struct fx_reply_spec rs;
    struct fx_introduction_spec s;
    struct tf_proto_buf second;
    static const uint8_t junk[] = {0x92, 0x01};
    struct tf_proto_buf garbage = {(uint8_t *)(uintptr_t)junk, sizeof junk};

    /* A accepted twice with different notes; C used the first. */
    reply_for(f, TF_PROTO_SIDE_A, &rs);
    rs.note = "second thoughts, still yes";
    fx_reply_sign(&f->w, &rs, &second);
    intro_spec(f, &s);
    assert_rc(materialise_spec(f, &s, FX_A, &second), TF_E_NOT_MY_REPLY);
    assert_ok(materialise_spec(f, &s, FX_B, &f->x.reply_b));
    /* ... or the second, while A kept the first. */
    s.reply_a = fx_view(&second);
    assert_rc(materialise_spec(f, &s, FX_A, &f->x.reply_a), TF_E_NOT_MY_REPLY);
    assert_ok(materialise_spec(f, &s, FX_A, &second));
    tf_proto_buf_free(&second);

    /* someone else's reply, or one that does not decode */
    intro_spec(f, &s);
    assert_rc(materialise_spec(f, &s, FX_B, &f->x.reply_a), TF_E_NOT_MY_REPLY);
    assert_rc(materialise_spec(f, &s, FX_A, &f->x.reply_b), TF_E_NOT_MY_REPLY);
    assert_rc(materialise_spec(f, &s, FX_D, &f->x.reply_a), TF_E_NOT_MY_REPLY);
    assert_rc(materialise_spec(f, &s, FX_A, &garbage), TF_E_NOT_MY_REPLY);
}

static void test_mat_reply_reused_for_another_pair(void **state)
{
    struct fixture *f = *state;
    struct fx_intro y; /* C introduces A and D */
    struct fx_introduction_spec s;
    fx_intro_build(&f->w, FX_A, FX_D, 0x61, &y);
    assert_ok(materialise(f, FX_D, &y.reply_b, y.introduction.data, y.introduction.len, FX_SKEW));
    /* A's acceptance of intro X (with B) put into intro Y (with D) */
    fx_intro_introduction_default(&y, &s);
    s.reply_a = fx_view(&f->x.reply_a);
    s.salt_a = f->x.salt_a;
    assert_rc(materialise_spec(f, &s, FX_D, &y.reply_b), TF_E_COMMITMENT);
    s.salt_a = y.salt_a; /* commit_a of Y opens to A with Y's salt */
    assert_rc(materialise_spec(f, &s, FX_D, &y.reply_b), TF_E_REPLY_INTRO);
    assert_rc(materialise_spec(f, &s, FX_A, &f->x.reply_a), TF_E_REPLY_INTRO);
    fx_intro_free(&y);
}

static void test_mat_reply_signed_late(void **state)
{
    struct fixture *f = *state;
    struct fx_reply_spec rs;
    reply_for(f, TF_PROTO_SIDE_A, &rs);
    rs.time = FX_EXPIRES + FX_SKEW;
    assert_ok(mat_with_reply_a(f, &rs));
    rs.time = FX_EXPIRES + FX_SKEW + 1;
    assert_rc(mat_with_reply_a(f, &rs), TF_E_SIGNED_LATE);
    rs.time = UINT64_MAX;
    assert_rc(mat_with_reply_a(f, &rs), TF_E_SIGNED_LATE);

    /* with no skew allowed, one second late is late; B's side too */
    struct fx_introduction_spec s;
    struct tf_proto_buf late, intro;
    reply_for(f, TF_PROTO_SIDE_B, &rs);
    rs.time = FX_EXPIRES + 1;
    fx_reply_sign(&f->w, &rs, &late);
    intro_spec(f, &s);
    s.reply_b = fx_view(&late);
    fx_introduction_sign(&f->w, &s, &intro);
    assert_ok(materialise(f, FX_A, &f->x.reply_a, intro.data, intro.len, 1));
    assert_rc(materialise(f, FX_A, &f->x.reply_a, intro.data, intro.len, 0), TF_E_SIGNED_LATE);
    assert_rc(materialise(f, FX_B, &late, intro.data, intro.len, 0), TF_E_SIGNED_LATE);
    tf_proto_buf_free(&late);
    tf_proto_buf_free(&intro);
}

static void test_mat_intro_signed_late(void **state)
{
    struct fixture *f = *state;
    struct fx_introduction_spec s;
    intro_spec(f, &s);
    s.time = FX_EXPIRES + FX_SKEW;
    expect_both(f, &s, TF_OK);
    s.time = FX_EXPIRES + FX_SKEW + 1;
    expect_both(f, &s, TF_E_SIGNED_LATE);
    s.time = UINT64_MAX;
    expect_both(f, &s, TF_E_SIGNED_LATE);
}

static void test_mat_same_party(void **state)
{
    struct fixture *f = *state;
    struct fx_intro aa;
    struct fx_introduction_spec s;
    struct fx_reply_spec rs;
    struct tf_proto_buf reply_a, reply_b;
    /* an intro of A to A: both commitments open to A */
    memset(&aa, 0, sizeof aa);
    memset(aa.salt_a, 0x71, TF_PROTO_SALT_LEN);
    memset(aa.salt_b, 0x72, TF_PROTO_SALT_LEN);
    fx_core_default(&f->w, FX_A, FX_A, aa.salt_a, aa.salt_b, &aa.core_spec);
    core_with_id(&aa.core_spec, &aa.core, aa.intro_id);
    aa.a = FX_A;
    aa.b = FX_A;
    fx_intro_reply_default(&f->w, &aa, TF_PROTO_SIDE_A, &rs);
    fx_reply_sign(&f->w, &rs, &reply_a);
    fx_intro_reply_default(&f->w, &aa, TF_PROTO_SIDE_B, &rs);
    fx_reply_sign(&f->w, &rs, &reply_b);
    fx_intro_introduction_default(&aa, &s);
    s.reply_a = fx_view(&reply_a);
    s.reply_b = fx_view(&reply_b);
    assert_rc(materialise_spec(f, &s, FX_A, &reply_a), TF_E_SAME_PARTY);
    assert_rc(materialise_spec(f, &s, FX_A, &reply_b), TF_E_SAME_PARTY);
    tf_proto_buf_free(&reply_a);
    tf_proto_buf_free(&reply_b);
    tf_proto_buf_free(&aa.core);
}

/* An introduction of X's replies under another core (with a matching id). */
static void expect_core(const struct fixture *f, const struct fx_core_spec *cs, int want)
{
    struct fx_introduction_spec s;
    struct tf_proto_buf core;
    uint8_t id[TF_PROTO_INTRO_ID_LEN];
    core_with_id(cs, &core, id);
    intro_spec(f, &s);
    s.core = fx_view(&core);
    s.intro_id = id;
    expect_both(f, &s, want);
    tf_proto_buf_free(&core);
}

static void test_mat_core_version(void **state)
{
    struct fixture *f = *state;
    struct fx_core_spec cs = f->x.core_spec;
    expect_core(f, &cs, TF_OK);
    cs.version = 2;
    expect_core(f, &cs, TF_E_VERSION);
}

static void test_mat_core_expires_not_after_created(void **state)
{
    struct fixture *f = *state;
    struct fx_core_spec cs = f->x.core_spec;
    cs.expires = cs.created;
    expect_core(f, &cs, TF_E_BAD_VALUE);
    cs.expires = 0;
    expect_core(f, &cs, TF_E_BAD_VALUE);
}

static void test_mat_check_order(void **state)
{
    struct fixture *f = *state;
    struct fx_introduction_spec s;
    struct fx_reply_spec rs;
    struct tf_proto_buf decline_b, other_side_a;
    uint8_t id[TF_PROTO_INTRO_ID_LEN];
    other_intro_id(f, id);

    /* 2 before 3: a bad signature hides a wrong id */
    intro_spec(f, &s);
    s.signer = FX_D;
    s.intro_id = id;
    expect_both(f, &s, TF_E_BAD_SIG);
    /* 3 before 4 */
    intro_spec(f, &s);
    s.intro_id = id;
    s.salt_a = f->x.salt_b;
    expect_both(f, &s, TF_E_INTRO_ID);
    /* side a before side b */
    reply_for(f, TF_PROTO_SIDE_B, &rs);
    rs.decision = TF_PROTO_DECISION_DECLINE;
    fx_reply_sign(&f->w, &rs, &decline_b);
    reply_for(f, TF_PROTO_SIDE_A, &rs);
    rs.side = TF_PROTO_SIDE_B;
    fx_reply_sign(&f->w, &rs, &other_side_a);
    intro_spec(f, &s);
    s.reply_a = fx_view(&other_side_a);
    s.reply_b = fx_view(&decline_b);
    expect_both(f, &s, TF_E_REPLY_SIDE);
    /* within a side: commitment before the reply's signature */
    reply_for(f, TF_PROTO_SIDE_A, &rs);
    rs.signer = FX_D;
    tf_proto_buf_free(&other_side_a);
    fx_reply_sign(&f->w, &rs, &other_side_a);
    intro_spec(f, &s);
    s.reply_a = fx_view(&other_side_a);
    s.salt_a = f->x.salt_b;
    expect_both(f, &s, TF_E_COMMITMENT);
    /* 4 before 7: a late introduction with a declined side */
    intro_spec(f, &s);
    s.reply_b = fx_view(&decline_b);
    s.time = UINT64_MAX;
    expect_both(f, &s, TF_E_REPLY_DECLINE);
    /* 6 before 7 */
    intro_spec(f, &s);
    s.time = UINT64_MAX;
    assert_rc(materialise_spec(f, &s, FX_A, &f->x.reply_b), TF_E_NOT_MY_REPLY);
    tf_proto_buf_free(&decline_b);
    tf_proto_buf_free(&other_side_a);
}

/* PROTOCOL.md, materialisation step 1 covers the embedded replies' wrapper
 * and body only; their cards are verified at step 4.2, after the connector's
 * signature (step 2). */
static void test_mat_cards_checked_at_step_4(void **state)
{
    struct fixture *f = *state;
    struct fx_reply_spec rs;
    struct fx_introduction_spec s;
    struct tf_proto_buf r;
    static const uint8_t not_a_card[] = {0x01};
    reply_for(f, TF_PROTO_SIDE_A, &rs);
    rs.card = fx_bytes(not_a_card, sizeof not_a_card);
    fx_reply_sign(&f->w, &rs, &r);
    intro_spec(f, &s);
    s.reply_a = fx_view(&r);
    assert_rc(materialise_spec(f, &s, FX_B, &f->x.reply_b), TF_E_TYPE);
    s.signer = FX_D;
    assert_rc(materialise_spec(f, &s, FX_B, &f->x.reply_b), TF_E_BAD_SIG);
    tf_proto_buf_free(&r);
}

/* Close. */

static void test_close_round_trip(void **state)
{
    struct fixture *f = *state;
    struct tf_proto_buf c;
    uint8_t id[TF_PROTO_INTRO_ID_LEN];
    assert_ok(tf_proto_close_sign(&f->w.id[FX_C], f->x.intro_id, &c));
    memset(id, 0, sizeof id);
    assert_ok(tf_proto_close_verify(pk(f, FX_C), c.data, c.len, id));
    assert_memory_equal(id, f->x.intro_id, sizeof id);
    tf_proto_buf_free(&c);
}

static int close_from_c(const uint8_t *buf, size_t len, void *ctx)
{
    const struct fixture *f = ctx;
    uint8_t id[TF_PROTO_INTRO_ID_LEN];
    return tf_proto_close_verify(pk(f, FX_C), buf, len, id);
}

/* Signs a close-like body [bin intro_id of id_len bytes, extra nils] and
 * verifies it as a close from C. */
static int close_variant(const struct fixture *f, enum fx_who signer, uint32_t count, size_t id_len)
{
    struct tf_proto_mp_writer w;
    struct tf_proto_buf body, c;
    uint8_t id[TF_PROTO_INTRO_ID_LEN + 1] = {0};
    tf_proto_mp_writer_init(&w);
    tf_proto_mp_write_array(&w, count);
    tf_proto_mp_write_bin(&w, id, id_len);
    for (uint32_t i = 1; i < count; i++)
        tf_proto_mp_write_nil(&w);
    fx_finish(&w, &body);
    assert_ok(
        tf_proto_statement_sign(&f->w.id[signer], TF_PROTO_DOMAIN_CLOSE, body.data, body.len, &c));
    int rc = close_from_c(c.data, c.len, (void *)(uintptr_t)f);
    tf_proto_buf_free(&body);
    tf_proto_buf_free(&c);
    return rc;
}

static void test_close_rejections(void **state)
{
    struct fixture *f = *state;
    struct tf_proto_buf c, other;
    uint8_t id[TF_PROTO_INTRO_ID_LEN], untouched[TF_PROTO_INTRO_ID_LEN];
    assert_ok(tf_proto_close_sign(&f->w.id[FX_C], f->x.intro_id, &c));
    memset(id, 0xee, sizeof id);
    memset(untouched, 0xee, sizeof untouched);
    assert_rc(tf_proto_close_verify(pk(f, FX_D), c.data, c.len, id), TF_E_BAD_SIG);
    assert_rc(tf_proto_close_verify(pk(f, FX_A), c.data, c.len, id), TF_E_BAD_SIG);
    assert_memory_equal(id, untouched, sizeof id);

    fx_resign(&f->w.id[FX_C], TF_PROTO_DOMAIN_INTRODUCTION, &c, &other);
    assert_rc(close_from_c(other.data, other.len, f), TF_E_BAD_SIG);
    tf_proto_buf_free(&other);
    flip_sig(&c, &other);
    assert_rc(close_from_c(other.data, other.len, f), TF_E_BAD_SIG);
    tf_proto_buf_free(&other);

    fx_assert_prefixes_truncated(c.data, c.len, close_from_c, f);
    fx_assert_whole_ok_and_trailing(c.data, c.len, close_from_c, f);
    resign_with_trailing(&f->w.id[FX_C], TF_PROTO_DOMAIN_CLOSE, &c, &other);
    assert_rc(close_from_c(other.data, other.len, f), TF_E_TRAILING);
    tf_proto_buf_free(&other);

    assert_ok(close_variant(f, FX_C, 1, TF_PROTO_INTRO_ID_LEN));
    assert_rc(close_variant(f, FX_C, 2, TF_PROTO_INTRO_ID_LEN), TF_E_COUNT);
    assert_rc(close_variant(f, FX_C, 1, TF_PROTO_INTRO_ID_LEN - 1), TF_E_BAD_LENGTH);
    assert_rc(close_variant(f, FX_C, 1, TF_PROTO_INTRO_ID_LEN + 1), TF_E_BAD_LENGTH);
    /* the format is checked before the signature */
    assert_rc(close_variant(f, FX_D, 1, TF_PROTO_INTRO_ID_LEN), TF_E_BAD_SIG);
    assert_rc(close_variant(f, FX_D, 2, TF_PROTO_INTRO_ID_LEN), TF_E_COUNT);
    tf_proto_buf_free(&c);
}

/* The party's check on how long an intro may stay open (docs/PROTOCOL.md
 * §8): at most TF_PROTO_INTRO_EXPIRES_MAX_S from created, and from now (plus
 * skew). */
static void test_expiry_bound(void **state)
{
    (void)state;
    const uint64_t max = TF_PROTO_INTRO_EXPIRES_MAX_S, now = 1700000000, skew = 300;
    struct tf_proto_intro_core c;
    memset(&c, 0, sizeof c);
    c.created = now;
    c.expires = now + max;
    assert_true(tf_proto_intro_expiry_is_valid(&c, now, skew));
    c.expires = now + max + 1; /* a lifetime one second too long */
    assert_false(tf_proto_intro_expiry_is_valid(&c, now, skew));
    /* Created in the future within the skew: still bounded from now. */
    c.created = now + skew;
    c.expires = now + skew + max;
    assert_true(tf_proto_intro_expiry_is_valid(&c, now, skew));
    c.created = now + skew + 1;
    c.expires = now + skew + 1 + max;
    assert_false(tf_proto_intro_expiry_is_valid(&c, now, skew));
    /* Already expired: the bound does not apply (verify refuses it). */
    c.created = now - 10;
    c.expires = now - 5;
    assert_true(tf_proto_intro_expiry_is_valid(&c, now, skew));
    c.expires = c.created;
    assert_false(tf_proto_intro_expiry_is_valid(&c, now, skew));
    c.created = 0;
    c.expires = UINT64_MAX;
    assert_false(tf_proto_intro_expiry_is_valid(&c, now, skew));
}

int main(void)
{
    if (sodium_init() < 0)
        return 1;
#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)
    const struct CMUnitTest tests[] = {
        T(test_happy_path),
        T(test_wire_format_matches_header),
        T(test_commit_and_intro_id),
        T(test_core_codec),
        T(test_proposal_bad_connector_signature),
        T(test_proposal_wrong_domain),
        T(test_proposal_truncated_trailing),
        T(test_proposal_expired),
        T(test_proposal_from_future),
        T(test_proposal_wrong_salt),
        T(test_proposal_wrong_party),
        T(test_proposal_intro_id_mismatch),
        T(test_proposal_connector_card_of_someone_else),
        T(test_proposal_connector_card_invalid),
        T(test_proposal_core_version),
        T(test_proposal_core_expires_not_after_created),
        T(test_proposal_field_limits),
        T(test_proposal_check_order),
        T(test_proposal_sign_rejections),
        T(test_reply_decline),
        T(test_reply_signed_by_someone_else),
        T(test_reply_wrong_domain),
        T(test_reply_for_another_intro),
        T(test_reply_for_the_wrong_side),
        T(test_reply_card_of_someone_else),
        T(test_reply_format),
        T(test_reply_sign_rejections),
        T(test_mat_bad_connector_signature),
        T(test_mat_wrong_domain),
        T(test_mat_truncated_trailing),
        T(test_mat_intro_id_mismatch),
        T(test_mat_swapped_replies),
        T(test_mat_decline),
        T(test_mat_reply_signed_by_someone_else),
        T(test_mat_reply_for_another_intro),
        T(test_mat_reply_for_the_wrong_side),
        T(test_mat_not_my_reply),
        T(test_mat_reply_reused_for_another_pair),
        T(test_mat_reply_signed_late),
        T(test_mat_intro_signed_late),
        T(test_mat_same_party),
        T(test_mat_core_version),
        T(test_mat_core_expires_not_after_created),
        T(test_mat_check_order),
        T(test_mat_cards_checked_at_step_4),
        T(test_close_round_trip),
        T(test_close_rejections),
        T(test_expiry_bound),
    };
#undef T
    return cmocka_run_group_tests(tests, NULL, NULL);
}
