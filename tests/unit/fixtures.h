/* SPDX-License-Identifier: MIT */
/*
 * Shared helpers for the proto unit tests: an assertion that names error
 * codes, exact-size heap copies (so ASan catches any over-read), prefix and
 * trailing-byte sweeps, deterministic identities and cards, and hand-written
 * encoders of the intro objects (built from the documented wire format, so a
 * test can sign exactly the variant it needs with tf_proto_statement_sign).
 *
 * Everything is static inline so each test file uses only what it needs.
 */
#ifndef TF_TESTS_UNIT_FIXTURES_H
#define TF_TESTS_UNIT_FIXTURES_H

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "proto/card.h"
#include "proto/err.h"
#include "proto/identity.h"
#include "proto/intro.h"
#include "proto/mp.h"
#include "proto/statement.h"

/* Asserts that expr returns exactly `want`, printing both codes by name. */
#define assert_rc(expr, want)                                                                      \
    do {                                                                                           \
        int rc_ = (expr);                                                                          \
        int want_ = (want);                                                                        \
        if (rc_ != want_)                                                                          \
            fail_msg("%s:%d: %s\n  got  %s (%d)\n  want %s (%d)", __FILE__, __LINE__, #expr,       \
                     tf_err_name(rc_), rc_, tf_err_name(want_), want_);                            \
    } while (0)

#define assert_ok(expr) assert_rc((expr), TF_OK)

static inline struct tf_proto_bytes fx_bytes(const uint8_t *p, size_t n)
{
    struct tf_proto_bytes b = {p, n};
    return b;
}

static inline struct tf_proto_bytes fx_str(const char *s)
{
    return fx_bytes((const uint8_t *)s, strlen(s));
}

static inline struct tf_proto_bytes fx_view(const struct tf_proto_buf *b)
{
    return fx_bytes(b->data, b->len);
}

/* A malloc'ed copy of p[0..n) followed by `extra` bytes of 0xc0 (nil). */
static inline uint8_t *fx_dup(const uint8_t *p, size_t n, size_t extra)
{
    uint8_t *d = malloc(n + extra + 1);
    assert_non_null(d);
    if (n > 0)
        memcpy(d, p, n);
    memset(d + n, 0xc0, extra);
    return d;
}

/* A parser under test: returns its verdict on buf[0..len). */
typedef int (*fx_parse_fn)(const uint8_t *buf, size_t len, void *ctx);

/* Every strict prefix of a valid object is TF_E_TRUNCATED; each prefix is
 * given to the parser in a buffer of exactly that size. */
static inline void fx_assert_prefixes_truncated(const uint8_t *buf, size_t len, fx_parse_fn fn,
                                                void *ctx)
{
    for (size_t n = 0; n < len; n++) {
        uint8_t *p = fx_dup(buf, n, 0);
        int rc = fn(p, n, ctx);
        free(p);
        if (rc != TF_E_TRUNCATED)
            fail_msg("prefix of %zu/%zu bytes: got %s, want E_TRUNCATED", n, len, tf_err_name(rc));
    }
}

/* The object itself passes and the object plus one byte is TF_E_TRAILING. */
static inline void fx_assert_whole_ok_and_trailing(const uint8_t *buf, size_t len, fx_parse_fn fn,
                                                   void *ctx)
{
    uint8_t *p = fx_dup(buf, len, 1);
    assert_rc(fn(p, len, ctx), TF_OK);
    assert_rc(fn(p, len + 1, ctx), TF_E_TRAILING);
    free(p);
}

static inline void fx_finish(struct tf_proto_mp_writer *w, struct tf_proto_buf *out)
{
    assert_ok(tf_proto_mp_writer_finish(w, out));
}

/* Identities and cards. */

enum fx_who { FX_C, FX_A, FX_B, FX_D, FX_COUNT };

static inline void fx_seed(enum fx_who who, uint8_t seed[static TF_PROTO_SEED_LEN])
{
    memset(seed, 0x41 + (int)who, TF_PROTO_SEED_LEN);
}

static inline void fx_identity(struct tf_proto_identity *id, enum fx_who who)
{
    uint8_t seed[TF_PROTO_SEED_LEN];
    fx_seed(who, seed);
    assert_ok(tf_proto_identity_from_seed(id, seed));
}

static const char *const fx_names[FX_COUNT] = {"Carol Connector", "Alice", "Bob", "Dave"};

/* A card of id with every field set (views into static strings). */
static inline void fx_card_fields(const struct tf_proto_identity *id, const char *name,
                                  uint64_t seq, struct tf_proto_card *c)
{
    memset(c, 0, sizeof *c);
    memcpy(c->sign_pk, id->sign_pk, TF_PROTO_KEY_LEN);
    memcpy(c->noise_pk, id->noise_pk, TF_PROTO_KEY_LEN);
    memcpy(c->box_pk, id->box_pk, TF_PROTO_KEY_LEN);
    c->name = fx_str(name);
    c->n_addrs = 2;
    c->addrs[0] = fx_str("127.0.0.1:7451");
    c->addrs[1] = fx_str("[::1]:7451");
    c->n_offers = 1;
    c->offers[0] = fx_str("rust");
    c->n_seeks = 2;
    c->seeks[0] = fx_str("ai-safety");
    c->seeks[1] = fx_str("c11");
    c->issued = 1700000000u;
    c->seq = seq;
}

static inline void fx_card_sign(const struct tf_proto_identity *id, const char *name, uint64_t seq,
                                struct tf_proto_buf *out)
{
    struct tf_proto_card c;
    fx_card_fields(id, name, seq, &c);
    assert_ok(tf_proto_card_sign(id, &c, out));
}

/* Identities A and B and one signed object: the fixture of the statement
 * and card tests, which sign their object after fx_pair_new. */
struct fx_pair {
    struct tf_proto_identity a, b;
    struct tf_proto_buf obj;
};

static inline struct fx_pair *fx_pair_new(void)
{
    struct fx_pair *f = calloc(1, sizeof *f);
    assert_non_null(f);
    fx_identity(&f->a, FX_A);
    fx_identity(&f->b, FX_B);
    return f;
}

static inline int fx_pair_teardown(void **state)
{
    struct fx_pair *f = *state;
    tf_proto_identity_deinit(&f->a);
    tf_proto_identity_deinit(&f->b);
    tf_proto_buf_free(&f->obj);
    free(f);
    return 0;
}

struct fx_world {
    struct tf_proto_identity id[FX_COUNT];
    struct tf_proto_buf card[FX_COUNT];
};

static inline void fx_world_init(struct fx_world *w)
{
    for (int i = 0; i < FX_COUNT; i++) {
        fx_identity(&w->id[i], (enum fx_who)i);
        fx_card_sign(&w->id[i], fx_names[i], 1, &w->card[i]);
    }
}

static inline void fx_world_deinit(struct fx_world *w)
{
    for (int i = 0; i < FX_COUNT; i++) {
        tf_proto_identity_deinit(&w->id[i]);
        tf_proto_buf_free(&w->card[i]);
    }
}

/* Re-signs the body of a signed statement with id in another domain. */
static inline void fx_resign(const struct tf_proto_identity *id, enum tf_proto_domain domain,
                             const struct tf_proto_buf *in, struct tf_proto_buf *out)
{
    struct tf_proto_statement st;
    assert_ok(tf_proto_statement_parse(in->data, in->len, &st));
    assert_ok(tf_proto_statement_sign(id, domain, st.body.ptr, st.body.len, out));
}

/* The intro objects, hand-encoded from intro.h.  Each spec is filled with the
 * values of a valid object by fx_*_default; a test changes one field, then
 * signs with fx_*_sign. */

#define FX_CREATED 1700000000u
#define FX_EXPIRES (FX_CREATED + 7u * 86400u)
#define FX_NOW (FX_CREATED + 60u)
#define FX_REPLY_TIME (FX_CREATED + 100u)
#define FX_INTRO_TIME (FX_CREATED + 200u)
#define FX_SKEW ((uint64_t)TF_PROTO_SKEW_DEFAULT)

struct fx_core_spec {
    uint64_t version;
    const uint8_t *connector_pk;
    uint8_t commit_a[TF_PROTO_HASH_LEN];
    uint8_t commit_b[TF_PROTO_HASH_LEN];
    const char *topic;
    uint64_t created, expires, mode;
};

static inline void fx_core_write(const struct fx_core_spec *s, struct tf_proto_buf *out)
{
    struct tf_proto_mp_writer w;
    tf_proto_mp_writer_init(&w);
    tf_proto_mp_write_array(&w, 8);
    tf_proto_mp_write_uint(&w, s->version);
    tf_proto_mp_write_bin(&w, s->connector_pk, TF_PROTO_KEY_LEN);
    tf_proto_mp_write_bin(&w, s->commit_a, TF_PROTO_HASH_LEN);
    tf_proto_mp_write_bin(&w, s->commit_b, TF_PROTO_HASH_LEN);
    tf_proto_mp_write_str(&w, s->topic, strlen(s->topic));
    tf_proto_mp_write_uint(&w, s->created);
    tf_proto_mp_write_uint(&w, s->expires);
    tf_proto_mp_write_uint(&w, s->mode);
    fx_finish(&w, out);
}

struct fx_proposal_spec {
    enum fx_who signer;
    enum tf_proto_domain domain;
    const uint8_t *intro_id;
    struct tf_proto_bytes core;
    uint64_t side;
    const uint8_t *salt;
    struct tf_proto_bytes connector_card;
    const char *about_other, *note;
};

static inline void fx_proposal_sign(const struct fx_world *w, const struct fx_proposal_spec *s,
                                    struct tf_proto_buf *out)
{
    struct tf_proto_mp_writer mw;
    struct tf_proto_buf body;
    tf_proto_mp_writer_init(&mw);
    tf_proto_mp_write_array(&mw, 7);
    tf_proto_mp_write_bin(&mw, s->intro_id, TF_PROTO_INTRO_ID_LEN);
    tf_proto_mp_write_bin(&mw, s->core.ptr, s->core.len);
    tf_proto_mp_write_uint(&mw, s->side);
    tf_proto_mp_write_bin(&mw, s->salt, TF_PROTO_SALT_LEN);
    tf_proto_mp_write_bin(&mw, s->connector_card.ptr, s->connector_card.len);
    tf_proto_mp_write_str(&mw, s->about_other, strlen(s->about_other));
    tf_proto_mp_write_str(&mw, s->note, strlen(s->note));
    fx_finish(&mw, &body);
    assert_ok(tf_proto_statement_sign(&w->id[s->signer], s->domain, body.data, body.len, out));
    tf_proto_buf_free(&body);
}

struct fx_reply_spec {
    enum fx_who signer;
    enum tf_proto_domain domain;
    const uint8_t *intro_id;
    uint64_t side;
    uint64_t decision;
    struct tf_proto_bytes card; /* accept only */
    const char *note;           /* accept only */
    const char *reason;         /* decline only */
    uint64_t time;
    bool swap_layout; /* write the other decision's fields (card, note, reason) */
};

static inline void fx_reply_sign(const struct fx_world *w, const struct fx_reply_spec *s,
                                 struct tf_proto_buf *out)
{
    struct tf_proto_mp_writer mw;
    struct tf_proto_buf body;
    tf_proto_mp_writer_init(&mw);
    tf_proto_mp_write_array(&mw, 7);
    tf_proto_mp_write_bin(&mw, s->intro_id, TF_PROTO_INTRO_ID_LEN);
    tf_proto_mp_write_uint(&mw, s->side);
    tf_proto_mp_write_uint(&mw, s->decision);
    if ((s->decision == TF_PROTO_DECISION_ACCEPT) != s->swap_layout) {
        tf_proto_mp_write_bin(&mw, s->card.ptr, s->card.len);
        tf_proto_mp_write_str(&mw, s->note, strlen(s->note));
        tf_proto_mp_write_nil(&mw);
    } else {
        tf_proto_mp_write_nil(&mw);
        tf_proto_mp_write_nil(&mw);
        tf_proto_mp_write_str(&mw, s->reason, strlen(s->reason));
    }
    tf_proto_mp_write_uint(&mw, s->time);
    fx_finish(&mw, &body);
    assert_ok(tf_proto_statement_sign(&w->id[s->signer], s->domain, body.data, body.len, out));
    tf_proto_buf_free(&body);
}

struct fx_introduction_spec {
    enum fx_who signer;
    enum tf_proto_domain domain;
    const uint8_t *intro_id;
    struct tf_proto_bytes core;
    const uint8_t *salt_a, *salt_b;
    struct tf_proto_bytes reply_a, reply_b;
    const char *note;
    uint64_t time;
};

static inline void fx_introduction_sign(const struct fx_world *w,
                                        const struct fx_introduction_spec *s,
                                        struct tf_proto_buf *out)
{
    struct tf_proto_mp_writer mw;
    struct tf_proto_buf body;
    tf_proto_mp_writer_init(&mw);
    tf_proto_mp_write_array(&mw, 8);
    tf_proto_mp_write_bin(&mw, s->intro_id, TF_PROTO_INTRO_ID_LEN);
    tf_proto_mp_write_bin(&mw, s->core.ptr, s->core.len);
    tf_proto_mp_write_bin(&mw, s->salt_a, TF_PROTO_SALT_LEN);
    tf_proto_mp_write_bin(&mw, s->salt_b, TF_PROTO_SALT_LEN);
    tf_proto_mp_write_bin(&mw, s->reply_a.ptr, s->reply_a.len);
    tf_proto_mp_write_bin(&mw, s->reply_b.ptr, s->reply_b.len);
    tf_proto_mp_write_str(&mw, s->note, strlen(s->note));
    tf_proto_mp_write_uint(&mw, s->time);
    fx_finish(&mw, &body);
    assert_ok(tf_proto_statement_sign(&w->id[s->signer], s->domain, body.data, body.len, out));
    tf_proto_buf_free(&body);
}

/* One intro by Carol between parties a and b, built with the proto signers
 * (the hand encoders above are checked against them in test_intro.c). */
struct fx_intro {
    enum fx_who a, b;
    uint8_t salt_a[TF_PROTO_SALT_LEN];
    uint8_t salt_b[TF_PROTO_SALT_LEN];
    struct fx_core_spec core_spec;
    struct tf_proto_buf core;
    uint8_t intro_id[TF_PROTO_INTRO_ID_LEN];
    struct tf_proto_buf proposal_a, proposal_b;
    struct tf_proto_buf reply_a, reply_b;
    struct tf_proto_buf introduction;
};

#define FX_TOPIC "ai-safety"
#define FX_ABOUT_A "Alice builds verifiers."
#define FX_ABOUT_B "Bob runs a\nreading group."
#define FX_NOTE_TO_A "You two should talk."
#define FX_NOTE_TO_B "Worth a coffee?"
#define FX_NOTE_FROM_A "Hi Bob,\nhappy to chat."
#define FX_NOTE_FROM_B "Hello Alice!"
#define FX_INTRO_NOTE "Meet each other."

static inline const char *fx_note_from(enum tf_proto_side side)
{
    return side == TF_PROTO_SIDE_A ? FX_NOTE_FROM_A : FX_NOTE_FROM_B;
}

/* The core of an intro by Carol between a and b with the given salts. */
static inline void fx_core_default(const struct fx_world *w, enum fx_who a, enum fx_who b,
                                   const uint8_t *salt_a, const uint8_t *salt_b,
                                   struct fx_core_spec *s)
{
    s->version = TF_PROTO_INTRO_VERSION;
    s->connector_pk = w->id[FX_C].sign_pk;
    tf_proto_intro_commit(w->id[a].sign_pk, salt_a, s->commit_a);
    tf_proto_intro_commit(w->id[b].sign_pk, salt_b, s->commit_b);
    s->topic = FX_TOPIC;
    s->created = FX_CREATED;
    s->expires = FX_EXPIRES;
    s->mode = TF_PROTO_INTRO_MODE_PARALLEL;
}

static inline void fx_intro_proposal_default(const struct fx_world *w, const struct fx_intro *in,
                                             enum tf_proto_side side, struct fx_proposal_spec *s)
{
    bool is_a = side == TF_PROTO_SIDE_A;
    s->signer = FX_C;
    s->domain = TF_PROTO_DOMAIN_PROPOSAL;
    s->intro_id = in->intro_id;
    s->core = fx_view(&in->core);
    s->side = side;
    s->salt = is_a ? in->salt_a : in->salt_b;
    s->connector_card = fx_view(&w->card[FX_C]);
    s->about_other = is_a ? FX_ABOUT_B : FX_ABOUT_A;
    s->note = is_a ? FX_NOTE_TO_A : FX_NOTE_TO_B;
}

static inline void fx_intro_reply_default(const struct fx_world *w, const struct fx_intro *in,
                                          enum tf_proto_side side, struct fx_reply_spec *s)
{
    s->signer = side == TF_PROTO_SIDE_A ? in->a : in->b;
    s->domain = TF_PROTO_DOMAIN_REPLY;
    s->intro_id = in->intro_id;
    s->side = side;
    s->decision = TF_PROTO_DECISION_ACCEPT;
    s->card = fx_view(&w->card[s->signer]);
    s->note = fx_note_from(side);
    s->reason = "";
    s->time = FX_REPLY_TIME;
    s->swap_layout = false;
}

static inline void fx_intro_introduction_default(const struct fx_intro *in,
                                                 struct fx_introduction_spec *s)
{
    s->signer = FX_C;
    s->domain = TF_PROTO_DOMAIN_INTRODUCTION;
    s->intro_id = in->intro_id;
    s->core = fx_view(&in->core);
    s->salt_a = in->salt_a;
    s->salt_b = in->salt_b;
    s->reply_a = fx_view(&in->reply_a);
    s->reply_b = fx_view(&in->reply_b);
    s->note = FX_INTRO_NOTE;
    s->time = FX_INTRO_TIME;
}

/* Builds the whole chain with tf_proto_*_sign. */
static inline void fx_intro_build(const struct fx_world *w, enum fx_who a, enum fx_who b,
                                  uint8_t salt_byte, struct fx_intro *in)
{
    memset(in, 0, sizeof *in);
    in->a = a;
    in->b = b;
    memset(in->salt_a, salt_byte, TF_PROTO_SALT_LEN);
    memset(in->salt_b, salt_byte + 1, TF_PROTO_SALT_LEN);
    fx_core_default(w, a, b, in->salt_a, in->salt_b, &in->core_spec);

    struct tf_proto_intro_core core = {
        .topic = fx_str(in->core_spec.topic),
        .created = in->core_spec.created,
        .expires = in->core_spec.expires,
        .mode = TF_PROTO_INTRO_MODE_PARALLEL,
    };
    memcpy(core.connector_pk, in->core_spec.connector_pk, TF_PROTO_KEY_LEN);
    memcpy(core.commit_a, in->core_spec.commit_a, TF_PROTO_HASH_LEN);
    memcpy(core.commit_b, in->core_spec.commit_b, TF_PROTO_HASH_LEN);
    assert_ok(tf_proto_intro_core_encode(&core, &in->core));
    tf_proto_intro_id(in->core.data, in->core.len, in->intro_id);

    for (int i = 0; i < 2; i++) {
        enum tf_proto_side side = (enum tf_proto_side)i;
        struct fx_proposal_spec ps;
        fx_intro_proposal_default(w, in, side, &ps);
        struct tf_proto_proposal p = {
            .core_bytes = ps.core,
            .side = side,
            .connector_card = ps.connector_card,
            .about_other = fx_str(ps.about_other),
            .note = fx_str(ps.note),
        };
        memcpy(p.intro_id, in->intro_id, TF_PROTO_INTRO_ID_LEN);
        memcpy(p.salt, ps.salt, TF_PROTO_SALT_LEN);
        assert_ok(
            tf_proto_proposal_sign(&w->id[FX_C], &p, i == 0 ? &in->proposal_a : &in->proposal_b));

        struct fx_reply_spec rs;
        fx_intro_reply_default(w, in, side, &rs);
        struct tf_proto_reply r = {
            .side = side,
            .decision = TF_PROTO_DECISION_ACCEPT,
            .card = rs.card,
            .note = fx_str(rs.note),
            .time = rs.time,
        };
        memcpy(r.intro_id, in->intro_id, TF_PROTO_INTRO_ID_LEN);
        assert_ok(tf_proto_reply_sign(&w->id[rs.signer], &r, i == 0 ? &in->reply_a : &in->reply_b));
    }

    struct tf_proto_introduction intro = {
        .core_bytes = fx_view(&in->core),
        .reply_a = fx_view(&in->reply_a),
        .reply_b = fx_view(&in->reply_b),
        .note = fx_str(FX_INTRO_NOTE),
        .time = FX_INTRO_TIME,
    };
    memcpy(intro.intro_id, in->intro_id, TF_PROTO_INTRO_ID_LEN);
    memcpy(intro.salt_a, in->salt_a, TF_PROTO_SALT_LEN);
    memcpy(intro.salt_b, in->salt_b, TF_PROTO_SALT_LEN);
    assert_ok(tf_proto_introduction_sign(&w->id[FX_C], &intro, &in->introduction));
}

static inline void fx_intro_free(struct fx_intro *in)
{
    tf_proto_buf_free(&in->core);
    tf_proto_buf_free(&in->proposal_a);
    tf_proto_buf_free(&in->proposal_b);
    tf_proto_buf_free(&in->reply_a);
    tf_proto_buf_free(&in->reply_b);
    tf_proto_buf_free(&in->introduction);
}

#endif
