/* SPDX-License-Identifier: MIT */
/*
 * Writes the seed corpus of every fuzz target: tests/fuzz/corpus/<target>/
 * seed-<what>.  Seeds are built from the fixture (fixture.h), so the signed
 * ones reach past the signature checks: valid objects, and objects that are
 * properly signed but fail one specific later check each.
 *
 * Output is deterministic: Ed25519 signing is, and the only randomness used
 * (crypto_box_seal's ephemeral key) comes from a seeded generator installed
 * below.  So --check can regenerate the seeds in memory and compare them with
 * the committed files; ctest runs that to catch a seed corpus that proto/
 * changes have made stale.
 *
 * usage: gen_corpus [--check] CORPUS_DIR
 */
#ifndef FUZZING_BUILD_MODE_UNSAFE_FOR_PRODUCTION
#error "gen_corpus replaces libsodium's randomness; build it only as a fuzzing aid"
#endif

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <sodium.h>

#include "fixture.h"
#include "proto/ctl.h"
#include "proto/envelope.h"
#include "proto/request.h"
#include "proto/statement.h"

static const char *corpus_dir;
static bool check_only;
static int n_written, n_stale;

#define CHECK(expr)                                                                                \
    do {                                                                                           \
        int rc_ = (expr);                                                                          \
        if (rc_ != 0) {                                                                            \
            fprintf(stderr, "gen_corpus: %s:%d: %s: %s\n", __FILE__, __LINE__, #expr,              \
                    tf_strerror(rc_));                                                             \
            exit(1);                                                                               \
        }                                                                                          \
    } while (0)

/* Deterministic randomness (see the file comment). */

static uint64_t det_counter;

static void det_buf(void *const buf, const size_t size)
{
    uint8_t seed[randombytes_SEEDBYTES] = {'t', 'f', '-', 'f', 'u', 'z', 'z'};
    for (size_t i = 0; i < 8; i++)
        seed[16 + i] = (uint8_t)(det_counter >> (8 * i));
    det_counter++;
    randombytes_buf_deterministic(buf, size, seed);
}

static uint32_t det_random(void)
{
    uint8_t b[4];
    det_buf(b, sizeof b);
    return (uint32_t)b[0] | (uint32_t)b[1] << 8 | (uint32_t)b[2] << 16 | (uint32_t)b[3] << 24;
}

static const char *det_name(void)
{
    return "tf-fuzz-deterministic";
}

static randombytes_implementation det_impl = {
    .implementation_name = det_name,
    .random = det_random,
    .buf = det_buf,
};

/* Output. */

static char *path_join(const char *a, const char *b)
{
    size_t n = strlen(a) + 1 + strlen(b) + 1;
    char *p = malloc(n);
    if (p == NULL) {
        fprintf(stderr, "gen_corpus: out of memory\n");
        exit(1);
    }
    snprintf(p, n, "%s/%s", a, b);
    return p;
}

static void make_dir(const char *path)
{
    if (mkdir(path, 0755) != 0 && errno != EEXIST) {
        fprintf(stderr, "gen_corpus: mkdir %s: %s\n", path, strerror(errno));
        exit(1);
    }
}

/* True if the file at path holds exactly data[0..len). */
static bool file_equals(const char *path, const uint8_t *data, size_t len)
{
    FILE *fp = fopen(path, "rb");
    if (fp == NULL)
        return false;
    bool eq = true;
    for (size_t i = 0; i < len && eq; i++) {
        int c = fgetc(fp);
        eq = c != EOF && (uint8_t)c == data[i];
    }
    eq = eq && fgetc(fp) == EOF;
    fclose(fp);
    return eq;
}

static void emit(const char *target, const char *name, const uint8_t *data, size_t len)
{
    char *dir = path_join(corpus_dir, target);
    char file[128];
    snprintf(file, sizeof file, "seed-%s", name);
    char *path = path_join(dir, file);
    if (check_only) {
        if (!file_equals(path, data, len)) {
            fprintf(stderr, "gen_corpus: stale or missing: %s\n", path);
            n_stale++;
        }
    } else {
        make_dir(dir);
        FILE *fp = fopen(path, "wb");
        if (fp == NULL || fwrite(data, 1, len, fp) != len || fclose(fp) != 0) {
            fprintf(stderr, "gen_corpus: write %s: %s\n", path, strerror(errno));
            exit(1);
        }
        n_written++;
    }
    free(path);
    free(dir);
}

static void emit_buf(const char *target, const char *name, const struct tf_proto_buf *b)
{
    emit(target, name, b->data, b->len);
}

static void emit_str(const char *target, const char *name, const char *s)
{
    emit(target, name, (const uint8_t *)s, strlen(s));
}

/* Finishes w and signs its bytes as a statement of domain by id. */
static void sign_writer(const struct tf_proto_identity *id, enum tf_proto_domain domain,
                        struct tf_proto_mp_writer *w, struct tf_proto_buf *out)
{
    struct tf_proto_buf body;
    CHECK(tf_proto_mp_writer_finish(w, &body));
    CHECK(tf_proto_statement_sign(id, domain, body.data, body.len, out));
    tf_proto_buf_free(&body);
}

static struct tf_proto_bytes view_of(const struct tf_proto_buf *b)
{
    struct tf_proto_bytes v = {b->data, b->len};
    return v;
}

static struct tf_proto_bytes text(const char *s)
{
    struct tf_proto_bytes v = {(const uint8_t *)s, strlen(s)};
    return v;
}

/* Copies b and flips one bit of byte i (counted from the end if negative). */
static void corrupt(const struct tf_proto_buf *b, long i, struct tf_proto_buf *out)
{
    out->data = malloc(b->len);
    if (out->data == NULL)
        exit(1);
    memcpy(out->data, b->data, b->len);
    out->len = b->len;
    size_t at = i >= 0 ? (size_t)i : b->len - (size_t)(-i);
    out->data[at] ^= 0x01;
}

/* Encodes an intro core with any field values, valid or not. */
static void core_raw(uint64_t version, const uint8_t *connector_pk, const char *topic,
                     uint64_t created, uint64_t expires, uint64_t mode, struct tf_proto_buf *out)
{
    uint8_t zero[TF_PROTO_HASH_LEN] = {0};
    struct tf_proto_mp_writer w;
    tf_proto_mp_writer_init(&w);
    tf_proto_mp_write_array(&w, 8);
    tf_proto_mp_write_uint(&w, version);
    tf_proto_mp_write_bin(&w, connector_pk, TF_PROTO_KEY_LEN);
    tf_proto_mp_write_bin(&w, zero, sizeof zero);
    tf_proto_mp_write_bin(&w, zero, sizeof zero);
    tf_proto_mp_write_text(&w, text(topic));
    tf_proto_mp_write_uint(&w, created);
    tf_proto_mp_write_uint(&w, expires);
    tf_proto_mp_write_uint(&w, mode);
    CHECK(tf_proto_mp_writer_finish(&w, out));
}

/* A proposal with any intro id (proposal_sign insists on the right one). */
static void proposal_raw(const struct tf_proto_identity *signer, const uint8_t *intro_id,
                         const struct tf_proto_buf *core, enum tf_proto_side side,
                         const uint8_t *salt, const struct tf_proto_buf *card,
                         struct tf_proto_buf *out)
{
    struct tf_proto_mp_writer w;
    tf_proto_mp_writer_init(&w);
    tf_proto_mp_write_array(&w, 7);
    tf_proto_mp_write_bin(&w, intro_id, TF_PROTO_INTRO_ID_LEN);
    tf_proto_mp_write_bin(&w, core->data, core->len);
    tf_proto_mp_write_uint(&w, (uint64_t)side);
    tf_proto_mp_write_bin(&w, salt, TF_PROTO_SALT_LEN);
    tf_proto_mp_write_bin(&w, card->data, card->len);
    tf_proto_mp_write_text(&w, text("they also like coffee"));
    tf_proto_mp_write_text(&w, text("you should meet\n\tsoon"));
    sign_writer(signer, TF_PROTO_DOMAIN_PROPOSAL, &w, out);
}

/* An introduction with any fields (introduction_sign checks the id). */
static void intro_raw(const struct tf_proto_identity *signer, const uint8_t *intro_id,
                      const struct tf_proto_buf *core, const uint8_t *salt_a, const uint8_t *salt_b,
                      const struct tf_proto_buf *ra, const struct tf_proto_buf *rb,
                      const char *note, uint64_t time, struct tf_proto_buf *out)
{
    struct tf_proto_mp_writer w;
    tf_proto_mp_writer_init(&w);
    tf_proto_mp_write_array(&w, 8);
    tf_proto_mp_write_bin(&w, intro_id, TF_PROTO_INTRO_ID_LEN);
    tf_proto_mp_write_bin(&w, core->data, core->len);
    tf_proto_mp_write_bin(&w, salt_a, TF_PROTO_SALT_LEN);
    tf_proto_mp_write_bin(&w, salt_b, TF_PROTO_SALT_LEN);
    tf_proto_mp_write_bin(&w, ra->data, ra->len);
    tf_proto_mp_write_bin(&w, rb->data, rb->len);
    tf_proto_mp_write_text(&w, text(note));
    tf_proto_mp_write_uint(&w, time);
    sign_writer(signer, TF_PROTO_DOMAIN_INTRODUCTION, &w, out);
}

/* Seals arbitrary inner bytes into an envelope (to check inner decoding). */
static void envelope_raw(const uint8_t *inner, size_t len, const uint8_t *to_sign_pk,
                         const uint8_t *to_box_pk, uint64_t expires, struct tf_proto_buf *out)
{
    uint8_t msg_id[TF_PROTO_MSG_ID_LEN];
    memset(msg_id, 0x77, sizeof msg_id);
    size_t slen = len + crypto_box_SEALBYTES;
    uint8_t *sealed = malloc(slen);
    if (sealed == NULL || crypto_box_seal(sealed, inner, len, to_box_pk) != 0)
        exit(1);
    struct tf_proto_mp_writer w;
    tf_proto_mp_writer_init(&w);
    tf_proto_mp_write_array(&w, 5);
    tf_proto_mp_write_uint(&w, TF_PROTO_ENVELOPE_VERSION);
    tf_proto_mp_write_bin(&w, msg_id, sizeof msg_id);
    tf_proto_mp_write_bin(&w, to_sign_pk, TF_PROTO_KEY_LEN);
    tf_proto_mp_write_uint(&w, expires);
    tf_proto_mp_write_bin(&w, sealed, slen);
    CHECK(tf_proto_mp_writer_finish(&w, out));
    free(sealed);
}

/* Prefixes buf with the depth byte fuzz_mp_check reads first. */
static void emit_mp(const char *name, uint8_t depth, const uint8_t *buf, size_t len)
{
    uint8_t *p = malloc(len + 1);
    if (p == NULL)
        exit(1);
    p[0] = depth;
    if (len > 0)
        memcpy(p + 1, buf, len);
    emit("mp_check", name, p, len + 1);
    free(p);
}

/* Seeds, one function per target. */

static void gen_mp_check(const struct tf_fuzz_fixture *f, const struct tf_proto_buf *envelope)
{
    emit_mp("card", TF_PROTO_MP_MAX_DEPTH, f->me_card.data, f->me_card.len);
    emit_mp("reply", TF_PROTO_MP_MAX_DEPTH, f->my_reply.data, f->my_reply.len);
    emit_mp("envelope", 4, envelope->data, envelope->len);

    /* One value of every type, in every width. */
    struct tf_proto_mp_writer w;
    struct tf_proto_buf b;
    uint8_t bin[300];
    memset(bin, 0xee, sizeof bin);
    tf_proto_mp_writer_init(&w);
    tf_proto_mp_write_map(&w, 3);
    tf_proto_mp_write_uint(&w, 1);
    tf_proto_mp_write_array(&w, 12);
    tf_proto_mp_write_nil(&w);
    tf_proto_mp_write_bool(&w, true);
    tf_proto_mp_write_bool(&w, false);
    tf_proto_mp_write_uint(&w, 127);
    tf_proto_mp_write_uint(&w, 200);
    tf_proto_mp_write_uint(&w, 65535);
    tf_proto_mp_write_uint(&w, 70000);
    tf_proto_mp_write_uint(&w, UINT64_MAX);
    tf_proto_mp_write_str(&w, "", 0);
    tf_proto_mp_write_str(&w, "a string longer than thirty-one bytes", 37);
    tf_proto_mp_write_bin(&w, bin, sizeof bin);
    tf_proto_mp_write_array(&w, 0);
    tf_proto_mp_write_str(&w, "k", 1);
    tf_proto_mp_write_map(&w, 0);
    tf_proto_mp_write_array(&w, 1);
    tf_proto_mp_write_map(&w, 1);
    tf_proto_mp_write_uint(&w, 2);
    tf_proto_mp_write_nil(&w);
    tf_proto_mp_write_bool(&w, false);
    CHECK(tf_proto_mp_writer_finish(&w, &b));
    emit_mp("all-types", TF_PROTO_MP_MAX_DEPTH, b.data, b.len);
    tf_proto_buf_free(&b);

    /* The types the writer does not produce: negative ints, floats, ext. */
    static const uint8_t others[] = {
        0x9c, 0xff, 0xe0, 0xd0, 0x80, 0xd1, 0x80, 0x00, 0xd2, 0x80, 0x00, 0x00, 0x00, 0xd3,
        0x80, 0,    0,    0,    0,    0,    0,    0,    0xca, 0x3f, 0x80, 0,    0,    0xcb,
        0x3f, 0xf0, 0,    0,    0,    0,    0,    0,    0xd4, 0x01, 0x02, 0xd8, 0x05, 1,
        2,    3,    4,    5,    6,    7,    8,    9,    10,   11,   12,   13,   14,   15,
        16,   0xc7, 0x03, 0x05, 0xaa, 0xbb, 0xcc, 0xc8, 0x00, 0x01, 0x06, 0xdd};
    emit_mp("ints-floats-ext", TF_PROTO_MP_MAX_DEPTH, others, sizeof others);

    /* Nesting at and past the limit. */
    uint8_t deep[TF_PROTO_MP_MAX_DEPTH + 2];
    memset(deep, 0x91, sizeof deep);
    deep[TF_PROTO_MP_MAX_DEPTH] = 0x01;
    emit_mp("depth-16", TF_PROTO_MP_MAX_DEPTH, deep, TF_PROTO_MP_MAX_DEPTH + 1);
    deep[TF_PROTO_MP_MAX_DEPTH] = 0x91;
    deep[TF_PROTO_MP_MAX_DEPTH + 1] = 0x01;
    emit_mp("depth-17", TF_PROTO_MP_MAX_DEPTH, deep, sizeof deep);
    emit_mp("depth-3-of-16", 3, deep + TF_PROTO_MP_MAX_DEPTH - 1, 3);

    static const uint8_t huge_map[] = {0xdf, 0xff, 0xff, 0xff, 0xff, 0x01, 0x02};
    emit_mp("map32-huge", TF_PROTO_MP_MAX_DEPTH, huge_map, sizeof huge_map);
    static const uint8_t trailing[] = {0x92, 0x01, 0x02, 0x03};
    emit_mp("trailing", TF_PROTO_MP_MAX_DEPTH, trailing, sizeof trailing);
    static const uint8_t str16[] = {0xda, 0x00, 0x03, 'a', 'b', 'c', 0xc1};
    emit_mp("str16-then-c1", TF_PROTO_MP_MAX_DEPTH, str16, 6);
    emit_mp("bad-c1", TF_PROTO_MP_MAX_DEPTH, str16 + 6, 1);
}

static void gen_card(const struct tf_fuzz_fixture *f)
{
    emit_buf("card", "me", &f->me_card);
    emit_buf("card", "other", &f->other_card);
    emit_buf("card", "connector", &f->connector_card);

    /* Every field at its largest. */
    static const char *addrs[TF_PROTO_CARD_ADDRS_MAX] = {"a:1",
                                                         "1.2.3.4:65535",
                                                         "[fe80::1]:443",
                                                         "[::ffff:1.2.3.4]:80",
                                                         "host-name.ex:9",
                                                         "UPPER.example.org:123",
                                                         "x.y.z:8080",
                                                         "10.0.0.1:1"};
    static const char *tags[TF_PROTO_CARD_TAGS_MAX] = {
        "a",   "b-c",    "0",     "rust",  "c11",
        "go",  "zig",    "ocaml", "x-y-z", "lisp",
        "9-9", "coffee", "tea",   "bikes", "a-much-longer-tag-name-that-is-still-fine",
        "z"};
    struct tf_proto_card c;
    memset(&c, 0, sizeof c);
    memcpy(c.sign_pk, f->other.sign_pk, TF_PROTO_KEY_LEN);
    memcpy(c.noise_pk, f->other.noise_pk, TF_PROTO_KEY_LEN);
    memcpy(c.box_pk, f->other.box_pk, TF_PROTO_KEY_LEN);
    c.name = text("\xc3\xa9t\xc3\xa9 \xe2\x98\x95 \xf0\x9f\x98\x80 max name "
                  "0123456789012345678901234567890123456789");
    c.n_addrs = TF_PROTO_CARD_ADDRS_MAX;
    for (size_t i = 0; i < TF_PROTO_CARD_ADDRS_MAX; i++)
        c.addrs[i] = text(addrs[i]);
    c.n_offers = c.n_seeks = TF_PROTO_CARD_TAGS_MAX;
    for (size_t i = 0; i < TF_PROTO_CARD_TAGS_MAX; i++) {
        c.offers[i] = text(tags[i]);
        c.seeks[i] = text(tags[TF_PROTO_CARD_TAGS_MAX - 1 - i]);
    }
    c.issued = UINT64_MAX;
    c.seq = UINT64_C(1) << 32;
    struct tf_proto_buf full;
    CHECK(tf_proto_card_sign(&f->other, &c, &full));
    emit_buf("card", "full", &full);

    struct tf_proto_statement st;
    CHECK(tf_proto_statement_parse(full.data, full.len, &st));
    emit("card", "full-body", st.body.ptr, st.body.len);
    CHECK(tf_proto_statement_parse(f->me_card.data, f->me_card.len, &st));
    emit("card", "me-body", st.body.ptr, st.body.len);

    struct tf_proto_buf bad;
    corrupt(&f->me_card, -1, &bad);
    emit_buf("card", "bad-sig", &bad);
    tf_proto_buf_free(&bad);

    /* card_text: the same cards as text, with the variations it allows. */
    char *t;
    CHECK(tf_proto_card_to_text(f->me_card.data, f->me_card.len, &t));
    emit_str("card_text", "me", t);
    size_t n = strlen(t) + 16;
    char *padded = malloc(n);
    if (padded == NULL)
        exit(1);
    snprintf(padded, n, " \t%s\r\n", t);
    emit_str("card_text", "me-whitespace", padded);
    snprintf(padded, n, "%s=", t);
    emit_str("card_text", "me-padding", padded);
    t[strlen(TF_PROTO_CARD_TEXT_PREFIX) - 2] = '2';
    emit_str("card_text", "bad-prefix", t);
    free(padded);
    free(t);
    CHECK(tf_proto_card_to_text(full.data, full.len, &t));
    emit_str("card_text", "full", t);
    free(t);
    emit_str("card_text", "prefix-only", TF_PROTO_CARD_TEXT_PREFIX);
    tf_proto_buf_free(&full);
}

static void gen_text_id(const struct tf_fuzz_fixture *f)
{
    char id[TF_PROTO_TEXT_ID_SIZE];
    tf_proto_text_id_encode(f->me.sign_pk, id);
    emit_str("text_id", "me", id);
    tf_proto_text_id_encode(f->other.sign_pk, id);
    for (char *p = id; *p; p++)
        if (*p >= 'a' && *p <= 'z')
            *p = (char)(*p - 'a' + 'A');
    emit_str("text_id", "other-upper", id);
    tf_proto_text_id_encode(f->connector.sign_pk, id);
    id[10] = id[10] == 'q' ? 'p' : 'q';
    emit_str("text_id", "bad-checksum", id);
    id[10] = 'b';
    emit_str("text_id", "bad-char", id);
    tf_proto_text_id_encode(f->connector.sign_pk, id);
    id[0] = 'T';
    emit_str("text_id", "mixed-case", id);
    id[0] = 't';
    id[TF_PROTO_TEXT_ID_LEN - 1] = '\0';
    emit_str("text_id", "short", id);
}

static void gen_envelope(const struct tf_fuzz_fixture *f, const struct tf_proto_buf *proposal,
                         const struct tf_proto_buf *intro, const struct tf_proto_buf *close,
                         struct tf_proto_buf *note_env)
{
    const char *target = "envelope";
    uint8_t msg_id[TF_PROTO_MSG_ID_LEN];
    memset(msg_id, 0x10, sizeof msg_id);
    const uint64_t exp = TF_FUZZ_NOW + 3600;
    struct tf_proto_buf e;
    const uint8_t *note = (const uint8_t *)"hello, me";

    CHECK(tf_proto_envelope_seal(&f->other, f->me.sign_pk, f->me.box_pk, msg_id, exp,
                                 TF_PROTO_MSG_TYPE_NOTE, note, 9, note_env));
    emit_buf(target, "note", note_env);
    /* An empty body.  (A NULL body with length 0 is UB in proto/mp.c's
     * append_cb, memcpy from NULL: reported, so not used here.) */
    CHECK(tf_proto_envelope_seal(&f->other, f->me.sign_pk, f->me.box_pk, msg_id, TF_FUZZ_NOW,
                                 TF_PROTO_MSG_TYPE_NOTE, note, 0, &e));
    emit_buf(target, "empty-note-expires-now", &e);
    tf_proto_buf_free(&e);
    CHECK(tf_proto_envelope_seal(&f->connector, f->me.sign_pk, f->me.box_pk, msg_id, exp,
                                 TF_PROTO_MSG_TYPE_PROPOSAL, proposal->data, proposal->len, &e));
    emit_buf(target, "proposal", &e);
    tf_proto_buf_free(&e);
    CHECK(tf_proto_envelope_seal(&f->other, f->me.sign_pk, f->me.box_pk, msg_id, exp,
                                 TF_PROTO_MSG_TYPE_REPLY, f->other_reply.data, f->other_reply.len,
                                 &e));
    emit_buf(target, "reply", &e);
    tf_proto_buf_free(&e);
    CHECK(tf_proto_envelope_seal(&f->connector, f->me.sign_pk, f->me.box_pk, msg_id, exp,
                                 TF_PROTO_MSG_TYPE_INTRODUCTION, intro->data, intro->len, &e));
    emit_buf(target, "introduction", &e);
    tf_proto_buf_free(&e);
    CHECK(tf_proto_envelope_seal(&f->connector, f->me.sign_pk, f->me.box_pk, msg_id, exp,
                                 TF_PROTO_MSG_TYPE_CLOSE, close->data, close->len, &e));
    emit_buf(target, "close", &e);
    tf_proto_buf_free(&e);
    CHECK(tf_proto_envelope_seal(&f->other, f->me.sign_pk, f->me.box_pk, msg_id, exp,
                                 TF_PROTO_MSG_TYPE_CARD_UPDATE, f->other_card.data,
                                 f->other_card.len, &e));
    emit_buf(target, "card-update", &e);
    tf_proto_buf_free(&e);

    /* Failures, in the order envelope_open checks. */
    CHECK(tf_proto_envelope_seal(&f->me, f->other.sign_pk, f->other.box_pk, msg_id, exp,
                                 TF_PROTO_MSG_TYPE_NOTE, note, 9, &e));
    emit_buf(target, "not-for-me", &e);
    tf_proto_buf_free(&e);
    CHECK(tf_proto_envelope_seal(&f->other, f->me.sign_pk, f->me.box_pk, msg_id, TF_FUZZ_NOW - 1,
                                 TF_PROTO_MSG_TYPE_NOTE, note, 9, &e));
    emit_buf(target, "expired", &e);
    tf_proto_buf_free(&e);
    /* Addressed to me but sealed to other's box key: does not open. */
    CHECK(tf_proto_envelope_seal(&f->other, f->me.sign_pk, f->other.box_pk, msg_id, exp,
                                 TF_PROTO_MSG_TYPE_NOTE, note, 9, &e));
    emit_buf(target, "bad-seal", &e);
    tf_proto_buf_free(&e);

    uint8_t sig[TF_PROTO_SIG_LEN] = {0};
    struct tf_proto_mp_writer w;
    struct tf_proto_buf inner;
    /* Inner with an unknown type, then with a signature that does not verify. */
    for (int i = 0; i < 2; i++) {
        tf_proto_mp_writer_init(&w);
        tf_proto_mp_write_array(&w, 4);
        tf_proto_mp_write_bin(&w, f->other.sign_pk, TF_PROTO_KEY_LEN);
        tf_proto_mp_write_uint(&w, i == 0 ? 7 : TF_PROTO_MSG_TYPE_NOTE);
        tf_proto_mp_write_bin(&w, note, 9);
        tf_proto_mp_write_bin(&w, sig, sizeof sig);
        CHECK(tf_proto_mp_writer_finish(&w, &inner));
        envelope_raw(inner.data, inner.len, f->me.sign_pk, f->me.box_pk, exp, &e);
        emit_buf(target, i == 0 ? "inner-bad-type" : "inner-bad-sig", &e);
        tf_proto_buf_free(&e);
        tf_proto_buf_free(&inner);
    }
    /* A valid note whose padding has a byte that is not zero. */
    struct tf_proto_buf plain;
    struct tf_proto_envelope_opened o;
    CHECK(tf_proto_envelope_open(&f->me, note_env->data, note_env->len, TF_FUZZ_NOW, &plain, &o));
    plain.data[plain.len - 1] = 0x01;
    envelope_raw(plain.data, plain.len, f->me.sign_pk, f->me.box_pk, exp, &e);
    emit_buf(target, "padding-not-zero", &e);
    tf_proto_buf_free(&e);
    tf_proto_buf_free(&plain);
    /* Inner that is not even msgpack. */
    envelope_raw(note, 9, f->me.sign_pk, f->me.box_pk, exp, &e);
    emit_buf(target, "inner-garbage", &e);
    tf_proto_buf_free(&e);
}

static void gen_proposal(const struct tf_fuzz_fixture *f, struct tf_proto_buf *valid)
{
    const char *target = "proposal";
    struct tf_proto_proposal p;
    struct tf_proto_buf out, core2, bad_card;
    uint8_t id2[TF_PROTO_INTRO_ID_LEN];
    memset(&p, 0, sizeof p);
    memcpy(p.intro_id, f->intro_id, sizeof p.intro_id);
    p.core_bytes = view_of(&f->core);
    p.side = TF_PROTO_SIDE_A;
    memcpy(p.salt, f->salt_a, sizeof p.salt);
    p.connector_card = view_of(&f->connector_card);
    p.about_other = text("they like coffee too");
    p.note = text("you two should meet\n\tsoon");
    CHECK(tf_proto_proposal_sign(&f->connector, &p, valid));
    emit_buf(target, "valid-side-a", valid);

    /* me as side b of another intro, created right at the skew limit. */
    CHECK(tf_fuzz_core(f->connector.sign_pk, f->other.sign_pk, f->salt_a, f->me.sign_pk, f->salt_b,
                       "tea", TF_FUZZ_NOW + TF_FUZZ_SKEW, TF_FUZZ_NOW + 86400,
                       TF_PROTO_INTRO_MODE_SEQUENTIAL, &core2, id2));
    proposal_raw(&f->connector, id2, &core2, TF_PROTO_SIDE_B, f->salt_b, &f->connector_card, &out);
    emit_buf(target, "valid-side-b", &out);
    tf_proto_buf_free(&out);
    tf_proto_buf_free(&core2);

    /* Failures, in the order proposal_verify checks. */
    proposal_raw(&f->other, f->intro_id, &f->core, TF_PROTO_SIDE_A, f->salt_a, &f->connector_card,
                 &out);
    emit_buf(target, "bad-sig", &out);
    tf_proto_buf_free(&out);
    proposal_raw(&f->connector, f->salt_a, &f->core, TF_PROTO_SIDE_A, f->salt_a, &f->connector_card,
                 &out);
    emit_buf(target, "intro-id", &out);
    tf_proto_buf_free(&out);
    corrupt(&f->connector_card, -1, &bad_card);
    proposal_raw(&f->connector, f->intro_id, &f->core, TF_PROTO_SIDE_A, f->salt_a, &bad_card, &out);
    emit_buf(target, "card-bad-sig", &out);
    tf_proto_buf_free(&out);
    tf_proto_buf_free(&bad_card);
    proposal_raw(&f->connector, f->intro_id, &f->core, TF_PROTO_SIDE_A, f->salt_a, &f->other_card,
                 &out);
    emit_buf(target, "connector-card", &out);
    tf_proto_buf_free(&out);
    proposal_raw(&f->connector, f->intro_id, &f->core, TF_PROTO_SIDE_B, f->salt_b,
                 &f->connector_card, &out);
    emit_buf(target, "commitment", &out);
    tf_proto_buf_free(&out);
    CHECK(tf_fuzz_core(f->connector.sign_pk, f->me.sign_pk, f->salt_a, f->other.sign_pk, f->salt_b,
                       "coffee", TF_FUZZ_NOW - 1000, TF_FUZZ_NOW - 1, TF_PROTO_INTRO_MODE_PARALLEL,
                       &core2, id2));
    proposal_raw(&f->connector, id2, &core2, TF_PROTO_SIDE_A, f->salt_a, &f->connector_card, &out);
    emit_buf(target, "expired", &out);
    tf_proto_buf_free(&out);
    tf_proto_buf_free(&core2);
    CHECK(tf_fuzz_core(f->connector.sign_pk, f->me.sign_pk, f->salt_a, f->other.sign_pk, f->salt_b,
                       "coffee", TF_FUZZ_NOW + TF_FUZZ_SKEW + 1, TF_FUZZ_NOW + 86400,
                       TF_PROTO_INTRO_MODE_PARALLEL, &core2, id2));
    proposal_raw(&f->connector, id2, &core2, TF_PROTO_SIDE_A, f->salt_a, &f->connector_card, &out);
    emit_buf(target, "from-future", &out);
    tf_proto_buf_free(&out);
    tf_proto_buf_free(&core2);
}

static void gen_reply(const struct tf_fuzz_fixture *f)
{
    const char *target = "reply";
    struct tf_proto_buf out, bad_card;
    uint8_t other_id[TF_PROTO_INTRO_ID_LEN];
    memset(other_id, 0x42, sizeof other_id);
    emit_buf(target, "me-accept-a", &f->my_reply);
    emit_buf(target, "other-accept-b", &f->other_reply);
    CHECK(tf_fuzz_reply(&f->me, f->intro_id, TF_PROTO_SIDE_A, NULL, "busy this week", TF_FUZZ_NOW,
                        &out));
    emit_buf(target, "me-decline", &out);
    tf_proto_buf_free(&out);
    CHECK(tf_fuzz_reply(&f->other, f->intro_id, TF_PROTO_SIDE_B, NULL, "", TF_FUZZ_NOW, &out));
    emit_buf(target, "other-decline-empty", &out);
    tf_proto_buf_free(&out);
    /* Failures, in the order reply_verify checks (for me, side a). */
    CHECK(tf_fuzz_reply(&f->connector, f->intro_id, TF_PROTO_SIDE_A, &f->me_card, "x", TF_FUZZ_NOW,
                        &out));
    emit_buf(target, "wrong-signer", &out);
    tf_proto_buf_free(&out);
    CHECK(tf_fuzz_reply(&f->me, other_id, TF_PROTO_SIDE_A, &f->me_card, "x", TF_FUZZ_NOW, &out));
    emit_buf(target, "other-intro", &out);
    tf_proto_buf_free(&out);
    CHECK(tf_fuzz_reply(&f->me, f->intro_id, TF_PROTO_SIDE_B, &f->me_card, "x", TF_FUZZ_NOW, &out));
    emit_buf(target, "other-side", &out);
    tf_proto_buf_free(&out);
    corrupt(&f->me_card, -1, &bad_card);
    CHECK(tf_fuzz_reply(&f->me, f->intro_id, TF_PROTO_SIDE_A, &bad_card, "x", TF_FUZZ_NOW, &out));
    emit_buf(target, "card-bad-sig", &out);
    tf_proto_buf_free(&out);
    tf_proto_buf_free(&bad_card);
    CHECK(tf_fuzz_reply(&f->me, f->intro_id, TF_PROTO_SIDE_A, &f->other_card, "x", TF_FUZZ_NOW,
                        &out));
    emit_buf(target, "card-of-other", &out);
    tf_proto_buf_free(&out);
}

/* Introductions for the materialisation check; the decode target gets the
 * same seeds. */
static void emit_intro(const char *name, const struct tf_proto_buf *b)
{
    emit_buf("materialise", name, b);
    emit_buf("introduction", name, b);
}

static void gen_introductions(const struct tf_fuzz_fixture *f, struct tf_proto_buf *valid)
{
    struct tf_proto_buf out, rb, core2, bad_card;
    uint8_t id2[TF_PROTO_INTRO_ID_LEN], zero[TF_PROTO_SALT_LEN] = {0};
    const uint64_t late = TF_FUZZ_EXPIRES + TF_FUZZ_SKEW + 1;
    const char *note = "you two should talk";

    intro_raw(&f->connector, f->intro_id, &f->core, f->salt_a, f->salt_b, &f->my_reply,
              &f->other_reply, note, TF_FUZZ_NOW, valid);
    emit_intro("valid", valid);
    intro_raw(&f->connector, f->intro_id, &f->core, f->salt_a, f->salt_b, &f->my_reply,
              &f->other_reply, "", late - 1, &out);
    emit_intro("valid-signed-at-limit", &out);
    tf_proto_buf_free(&out);

    /* Step 1: format. */
    static uint8_t junk[] = {0xc0};
    struct tf_proto_buf junk_buf = {junk, sizeof junk};
    intro_raw(&f->connector, f->intro_id, &f->core, f->salt_a, f->salt_b, &junk_buf,
              &f->other_reply, note, TF_FUZZ_NOW, &out);
    emit_intro("reply-a-garbage", &out);
    tf_proto_buf_free(&out);
    /* 2: signature; 3: intro id. */
    intro_raw(&f->other, f->intro_id, &f->core, f->salt_a, f->salt_b, &f->my_reply, &f->other_reply,
              note, TF_FUZZ_NOW, &out);
    emit_intro("bad-sig", &out);
    tf_proto_buf_free(&out);
    intro_raw(&f->connector, zero, &f->core, f->salt_a, f->salt_b, &f->my_reply, &f->other_reply,
              note, TF_FUZZ_NOW, &out);
    emit_intro("intro-id", &out);
    tf_proto_buf_free(&out);
    /* 4: side b's acceptance, check by check. */
    CHECK(tf_fuzz_reply(&f->other, f->intro_id, TF_PROTO_SIDE_B, NULL, "no thanks", TF_FUZZ_NOW,
                        &rb));
    intro_raw(&f->connector, f->intro_id, &f->core, f->salt_a, f->salt_b, &f->my_reply, &rb, note,
              TF_FUZZ_NOW, &out);
    emit_intro("reply-decline", &out);
    tf_proto_buf_free(&out);
    tf_proto_buf_free(&rb);
    corrupt(&f->other_card, -1, &bad_card);
    CHECK(
        tf_fuzz_reply(&f->other, f->intro_id, TF_PROTO_SIDE_B, &bad_card, "hi", TF_FUZZ_NOW, &rb));
    intro_raw(&f->connector, f->intro_id, &f->core, f->salt_a, f->salt_b, &f->my_reply, &rb, note,
              TF_FUZZ_NOW, &out);
    emit_intro("reply-card-bad-sig", &out);
    tf_proto_buf_free(&out);
    tf_proto_buf_free(&rb);
    tf_proto_buf_free(&bad_card);
    intro_raw(&f->connector, f->intro_id, &f->core, f->salt_a, zero, &f->my_reply, &f->other_reply,
              note, TF_FUZZ_NOW, &out);
    emit_intro("commitment", &out);
    tf_proto_buf_free(&out);
    CHECK(tf_fuzz_reply(&f->connector, f->intro_id, TF_PROTO_SIDE_B, &f->other_card, "hi",
                        TF_FUZZ_NOW, &rb));
    intro_raw(&f->connector, f->intro_id, &f->core, f->salt_a, f->salt_b, &f->my_reply, &rb, note,
              TF_FUZZ_NOW, &out);
    emit_intro("reply-sig", &out);
    tf_proto_buf_free(&out);
    tf_proto_buf_free(&rb);
    CHECK(tf_fuzz_reply(&f->other, zero, TF_PROTO_SIDE_B, &f->other_card, "hi", TF_FUZZ_NOW, &rb));
    intro_raw(&f->connector, f->intro_id, &f->core, f->salt_a, f->salt_b, &f->my_reply, &rb, note,
              TF_FUZZ_NOW, &out);
    emit_intro("reply-intro", &out);
    tf_proto_buf_free(&out);
    tf_proto_buf_free(&rb);
    CHECK(tf_fuzz_reply(&f->other, f->intro_id, TF_PROTO_SIDE_A, &f->other_card, "hi", TF_FUZZ_NOW,
                        &rb));
    intro_raw(&f->connector, f->intro_id, &f->core, f->salt_a, f->salt_b, &f->my_reply, &rb, note,
              TF_FUZZ_NOW, &out);
    emit_intro("reply-side", &out);
    tf_proto_buf_free(&out);
    tf_proto_buf_free(&rb);
    CHECK(tf_fuzz_reply(&f->other, f->intro_id, TF_PROTO_SIDE_B, &f->other_card, "hi", late, &rb));
    intro_raw(&f->connector, f->intro_id, &f->core, f->salt_a, f->salt_b, &f->my_reply, &rb, note,
              TF_FUZZ_NOW, &out);
    emit_intro("reply-late", &out);
    tf_proto_buf_free(&out);
    tf_proto_buf_free(&rb);
    /* 5: the same person on both sides. */
    CHECK(tf_fuzz_core(f->connector.sign_pk, f->me.sign_pk, f->salt_a, f->me.sign_pk, f->salt_b,
                       "coffee", TF_FUZZ_CREATED, TF_FUZZ_EXPIRES, TF_PROTO_INTRO_MODE_PARALLEL,
                       &core2, id2));
    struct tf_proto_buf ra2;
    CHECK(tf_fuzz_reply(&f->me, id2, TF_PROTO_SIDE_A, &f->me_card, "a", TF_FUZZ_NOW, &ra2));
    CHECK(tf_fuzz_reply(&f->me, id2, TF_PROTO_SIDE_B, &f->me_card, "b", TF_FUZZ_NOW, &rb));
    intro_raw(&f->connector, id2, &core2, f->salt_a, f->salt_b, &ra2, &rb, note, TF_FUZZ_NOW, &out);
    emit_intro("same-party", &out);
    tf_proto_buf_free(&out);
    tf_proto_buf_free(&rb);
    tf_proto_buf_free(&ra2);
    tf_proto_buf_free(&core2);
    /* 6: a valid acceptance by me, but not the one I stored. */
    CHECK(tf_fuzz_reply(&f->me, f->intro_id, TF_PROTO_SIDE_A, &f->me_card, "not what I sent",
                        TF_FUZZ_NOW, &ra2));
    intro_raw(&f->connector, f->intro_id, &f->core, f->salt_a, f->salt_b, &ra2, &f->other_reply,
              note, TF_FUZZ_NOW, &out);
    emit_intro("not-my-reply", &out);
    tf_proto_buf_free(&out);
    tf_proto_buf_free(&ra2);
    /* 7: the introduction signed too late. */
    intro_raw(&f->connector, f->intro_id, &f->core, f->salt_a, f->salt_b, &f->my_reply,
              &f->other_reply, note, late, &out);
    emit_intro("intro-late", &out);
    tf_proto_buf_free(&out);
}

/* requests: a valid request from me to the connector (created at the fuzz
 * target's time), one signed by another key, and a valid decline. */
static void gen_request(const struct tf_fuzz_fixture *f)
{
    struct tf_proto_request q;
    struct tf_proto_buf out;
    memset(&q, 0, sizeof q);
    memcpy(q.asker_pk, f->me.sign_pk, TF_PROTO_KEY_LEN);
    memcpy(q.connector_pk, f->connector.sign_pk, TF_PROTO_KEY_LEN);
    q.seeking = (struct tf_proto_bytes){(const uint8_t *)"real-estate-law", 15};
    q.note = (struct tf_proto_bytes){(const uint8_t *)"buying a flat", 13};
    q.created = 1700000000u;
    q.expires = q.created + 86400u;
    memset(q.nonce, 0x5a, sizeof q.nonce);
    CHECK(tf_proto_request_sign(&f->me, &q, &out, NULL));
    emit_buf("request", "valid", &out);
    tf_proto_buf_free(&out);
    memcpy(q.asker_pk, f->other.sign_pk, TF_PROTO_KEY_LEN);
    CHECK(tf_proto_request_sign(&f->other, &q, &out, NULL));
    emit_buf("request", "other-asker", &out);
    tf_proto_buf_free(&out);
    struct tf_proto_request_close c = {.action = TF_PROTO_REQUEST_ACTION_DECLINE,
                                       .time = 1700000000u};
    memset(c.id, 0x33, sizeof c.id);
    CHECK(tf_proto_request_close_sign(&f->connector, &c, &out));
    emit_buf("request", "close-decline", &out);
    tf_proto_buf_free(&out);
}

static void gen_close(const struct tf_fuzz_fixture *f, struct tf_proto_buf *valid)
{
    struct tf_proto_buf out;
    CHECK(tf_proto_close_sign(&f->connector, f->intro_id, valid));
    emit_buf("close", "valid", valid);
    CHECK(tf_proto_close_sign(&f->other, f->intro_id, &out));
    emit_buf("close", "bad-sig", &out);
    tf_proto_buf_free(&out);
    struct tf_proto_mp_writer w;
    tf_proto_mp_writer_init(&w);
    tf_proto_mp_write_array(&w, 2);
    tf_proto_mp_write_bin(&w, f->intro_id, TF_PROTO_INTRO_ID_LEN);
    tf_proto_mp_write_nil(&w);
    sign_writer(&f->connector, TF_PROTO_DOMAIN_CLOSE, &w, &out);
    emit_buf("close", "two-fields", &out);
    tf_proto_buf_free(&out);
}

static void gen_core(const struct tf_fuzz_fixture *f)
{
    struct tf_proto_buf out;
    uint8_t id[TF_PROTO_INTRO_ID_LEN];
    char tag64[TF_PROTO_TAG_MAX + 1];
    memset(tag64, '7', TF_PROTO_TAG_MAX);
    tag64[0] = 'a';
    tag64[TF_PROTO_TAG_MAX - 2] = '-';
    tag64[TF_PROTO_TAG_MAX] = '\0';
    emit_buf("core", "fixture", &f->core);
    CHECK(tf_fuzz_core(f->connector.sign_pk, f->me.sign_pk, f->salt_a, f->other.sign_pk, f->salt_b,
                       tag64, 0, UINT64_MAX, TF_PROTO_INTRO_MODE_SEQUENTIAL, &out, id));
    emit_buf("core", "extremes", &out);
    tf_proto_buf_free(&out);
    core_raw(2, f->connector.sign_pk, "coffee", 1, 2, 0, &out);
    emit_buf("core", "version-2", &out);
    tf_proto_buf_free(&out);
    core_raw(1, f->connector.sign_pk, "coffee", 5, 5, 0, &out);
    emit_buf("core", "expires-eq-created", &out);
    tf_proto_buf_free(&out);
    core_raw(1, f->connector.sign_pk, "coffee", 1, 2, 2, &out);
    emit_buf("core", "mode-2", &out);
    tf_proto_buf_free(&out);
    core_raw(1, f->connector.sign_pk, "Not-A-Tag", 1, 2, 0, &out);
    emit_buf("core", "bad-topic", &out);
    tf_proto_buf_free(&out);
}

/* Prefixes msg with the selector byte fuzz_noise reads first. */
static void emit_noise(const char *name, uint8_t selector, const uint8_t *msg, size_t len)
{
    uint8_t *p = malloc(len + 1);
    if (p == NULL)
        exit(1);
    p[0] = selector;
    if (len > 0)
        memcpy(p + 1, msg, len);
    emit("noise", name, p, len + 1);
    free(p);
}

static void gen_noise(const struct tf_fuzz_fixture *f)
{
    struct tf_fuzz_noise_xx *xx = malloc(sizeof *xx);
    if (xx == NULL)
        exit(1);
    CHECK(tf_fuzz_noise_xx(f, xx));
    emit_noise("xx-msg1", 0, xx->msg[0], xx->len[0]);
    emit_noise("xx-msg2", 1, xx->msg[1], xx->len[1]);
    emit_noise("xx-msg3", 2, xx->msg[2], xx->len[2]);
    emit_noise("transport", 3, xx->transport, xx->transport_len);
    tf_proto_noise_handshake_deinit(&xx->resp_before_msg1);
    tf_proto_noise_handshake_deinit(&xx->init_before_msg2);
    tf_proto_noise_handshake_deinit(&xx->resp_before_msg3);
    tf_proto_noise_cipher_deinit(&xx->resp_recv);
    free(xx);

    uint8_t msg[TF_FUZZ_NOISE_MSG_CAP];
    size_t len;
    CHECK(tf_fuzz_noise_ik_msg1(f, msg, sizeof msg, &len));
    emit_noise("ik-msg1", 4, msg, len);
    /* XX message 1 with a (cleartext) payload, and with a low-order key. */
    struct tf_proto_noise_handshake hs;
    CHECK(tf_fuzz_noise_start(&hs, &f->me, TF_PROTO_NOISE_PATTERN_XX, TF_PROTO_NOISE_ROLE_INITIATOR,
                              NULL));
    CHECK(tf_proto_noise_handshake_write(&hs, (const uint8_t *)"hi", 2, msg, sizeof msg, &len));
    tf_proto_noise_handshake_deinit(&hs);
    emit_noise("xx-msg1-payload", 0, msg, len);
    memset(msg, 0, TF_PROTO_NOISE_KEY_LEN);
    emit_noise("xx-msg1-low-order", 0, msg, TF_PROTO_NOISE_KEY_LEN);
}

static void emit_ctl(const char *name, struct tf_proto_mp_writer *w)
{
    struct tf_proto_buf b;
    CHECK(tf_proto_mp_writer_finish(w, &b));
    emit_buf("ctl", name, &b);
    tf_proto_buf_free(&b);
}

static void gen_ctl(const struct tf_fuzz_fixture *f)
{
    struct tf_proto_mp_writer w;
    char *card;
    CHECK(tf_proto_card_to_text(f->other_card.data, f->other_card.len, &card));

    tf_proto_mp_writer_init(&w);
    tf_proto_mp_write_map(&w, 2);
    tf_proto_mp_write_cstr(&w, "id");
    tf_proto_mp_write_uint(&w, 1);
    tf_proto_mp_write_cstr(&w, "verb");
    tf_proto_mp_write_cstr(&w, "status");
    struct tf_proto_buf status;
    CHECK(tf_proto_mp_writer_finish(&w, &status));
    emit_buf("ctl", "status", &status);
    /* The same request framed: the frame parser sees a real header. */
    uint8_t *framed = malloc(status.len + TF_PROTO_CTL_HEADER_LEN);
    if (framed == NULL)
        exit(1);
    tf_proto_ctl_frame_header(framed, (uint32_t)status.len);
    memcpy(framed + TF_PROTO_CTL_HEADER_LEN, status.data, status.len);
    emit("ctl", "framed-status", framed, status.len + TF_PROTO_CTL_HEADER_LEN);
    free(framed);
    tf_proto_buf_free(&status);

    tf_proto_mp_writer_init(&w);
    tf_proto_mp_write_map(&w, 3);
    tf_proto_mp_write_cstr(&w, "id");
    tf_proto_mp_write_uint(&w, 2);
    tf_proto_mp_write_cstr(&w, "verb");
    tf_proto_mp_write_cstr(&w, "contact.add");
    tf_proto_mp_write_cstr(&w, "args");
    tf_proto_mp_write_map(&w, 4);
    tf_proto_mp_write_cstr(&w, "card");
    tf_proto_mp_write_cstr(&w, card);
    tf_proto_mp_write_cstr(&w, "alias");
    tf_proto_mp_write_cstr(&w, "bob");
    tf_proto_mp_write_cstr(&w, "trust");
    tf_proto_mp_write_cstr(&w, "known");
    tf_proto_mp_write_cstr(&w, "tags");
    tf_proto_mp_write_array(&w, 2);
    tf_proto_mp_write_cstr(&w, "coffee");
    tf_proto_mp_write_cstr(&w, "work");
    emit_ctl("contact-add", &w);
    free(card);

    tf_proto_mp_writer_init(&w);
    tf_proto_mp_write_map(&w, 3);
    tf_proto_mp_write_cstr(&w, "id");
    tf_proto_mp_write_uint(&w, UINT64_MAX);
    tf_proto_mp_write_cstr(&w, "verb");
    tf_proto_mp_write_cstr(&w, "contact.set");
    tf_proto_mp_write_cstr(&w, "args");
    tf_proto_mp_write_map(&w, 5);
    tf_proto_mp_write_cstr(&w, "name");
    tf_proto_mp_write_cstr(&w, "tf1abcdef");
    tf_proto_mp_write_cstr(&w, "alias");
    tf_proto_mp_write_nil(&w);
    tf_proto_mp_write_cstr(&w, "blocked");
    tf_proto_mp_write_bool(&w, true);
    tf_proto_mp_write_cstr(&w, "add_tags");
    tf_proto_mp_write_array(&w, 0);
    tf_proto_mp_write_cstr(&w, "rm_tags");
    tf_proto_mp_write_array(&w, 2);
    tf_proto_mp_write_cstr(&w, "a");
    tf_proto_mp_write_uint(&w, 1);
    emit_ctl("contact-set", &w);

    tf_proto_mp_writer_init(&w);
    tf_proto_mp_write_map(&w, 3);
    tf_proto_mp_write_cstr(&w, "id");
    tf_proto_mp_write_uint(&w, 0);
    tf_proto_mp_write_cstr(&w, "ok");
    tf_proto_mp_write_bool(&w, false);
    tf_proto_mp_write_cstr(&w, "error");
    tf_proto_mp_write_map(&w, 3);
    tf_proto_mp_write_cstr(&w, "code");
    tf_proto_mp_write_int(&w, TF_E_STALE);
    tf_proto_mp_write_cstr(&w, "name");
    tf_proto_mp_write_cstr(&w, tf_err_name(TF_E_STALE));
    tf_proto_mp_write_cstr(&w, "message");
    tf_proto_mp_write_cstr(&w, tf_strerror(TF_E_STALE));
    emit_ctl("error-reply", &w);

    tf_proto_mp_writer_init(&w);
    tf_proto_mp_write_map(&w, 2);
    tf_proto_mp_write_cstr(&w, "id");
    tf_proto_mp_write_uint(&w, 1);
    tf_proto_mp_write_cstr(&w, "id");
    tf_proto_mp_write_uint(&w, 2);
    emit_ctl("dup-key", &w);

    tf_proto_mp_writer_init(&w);
    tf_proto_mp_write_map(&w, 1);
    tf_proto_mp_write_uint(&w, 1);
    tf_proto_mp_write_cstr(&w, "int key");
    emit_ctl("int-key", &w);

    tf_proto_mp_writer_init(&w);
    for (int i = 0; i < TF_PROTO_CTL_DEPTH_MAX; i++) {
        tf_proto_mp_write_map(&w, 1);
        tf_proto_mp_write_cstr(&w, "k");
    }
    tf_proto_mp_write_nil(&w);
    emit_ctl("depth-8", &w);
}

/* direct (issue 17): DIRECT contents, valid of each type, and one per
 * check the decoder makes. */
static void gen_direct(const struct tf_fuzz_fixture *f, const struct tf_proto_buf *proposal,
                       const struct tf_proto_buf *intro, const struct tf_proto_buf *close)
{
    const char *target = "direct";
    uint8_t msg_id[TF_PROTO_MSG_ID_LEN];
    memset(msg_id, 0x11, sizeof msg_id);
    const uint64_t exp = TF_FUZZ_NOW + 3600;
    const uint8_t *note = (const uint8_t *)"hello, me";
    static uint8_t big[5000];
    memset(big, 'b', sizeof big);
    const struct {
        const char *name;
        uint16_t type;
        const uint8_t *body;
        size_t len;
    } valid[] = {
        {"note", TF_PROTO_MSG_TYPE_NOTE, note, 9},
        {"empty-note", TF_PROTO_MSG_TYPE_NOTE, note, 0},
        {"proposal", TF_PROTO_MSG_TYPE_PROPOSAL, proposal->data, proposal->len},
        {"reply", TF_PROTO_MSG_TYPE_REPLY, f->other_reply.data, f->other_reply.len},
        {"introduction", TF_PROTO_MSG_TYPE_INTRODUCTION, intro->data, intro->len},
        {"close", TF_PROTO_MSG_TYPE_CLOSE, close->data, close->len},
        {"card-update", TF_PROTO_MSG_TYPE_CARD_UPDATE, f->other_card.data, f->other_card.len},
        {"class-8192", TF_PROTO_MSG_TYPE_NOTE, big, sizeof big},
    };
    struct tf_proto_buf d;
    for (size_t i = 0; i < sizeof valid / sizeof valid[0]; i++) {
        CHECK(tf_proto_envelope_direct_encode(msg_id, exp, valid[i].type, valid[i].body,
                                              valid[i].len, &d));
        emit_buf(target, valid[i].name, &d);
        tf_proto_buf_free(&d);
    }
    CHECK(tf_proto_envelope_direct_encode(msg_id, exp, TF_PROTO_MSG_TYPE_NOTE, note, 9, &d));
    d.data[d.len - 1] = 0x01;
    emit_buf(target, "nonzero-padding", &d);
    emit(target, "short-of-class", d.data, d.len - 1);
    d.data[d.len - 1] = 0x00;
    emit(target, "unpadded", d.data, 1 + 2 + TF_PROTO_MSG_ID_LEN + 5 + 1 + 2 + 9);
    d.data[1 + 2 + TF_PROTO_MSG_ID_LEN + 5] = 10; /* the type: unknown */
    emit_buf(target, "unknown-type", &d);
    tf_proto_buf_free(&d);
}

int main(int argc, char **argv)
{
    if (argc == 3 && strcmp(argv[1], "--check") == 0) {
        check_only = true;
        corpus_dir = argv[2];
    } else if (argc == 2) {
        corpus_dir = argv[1];
    } else {
        fprintf(stderr, "usage: %s [--check] CORPUS_DIR\n", argv[0]);
        return 2;
    }
    if (randombytes_set_implementation(&det_impl) != 0 || sodium_init() < 0) {
        fprintf(stderr, "gen_corpus: cannot initialise libsodium\n");
        return 1;
    }
    if (!check_only)
        make_dir(corpus_dir);

    struct tf_fuzz_fixture f;
    struct tf_proto_buf proposal, intro, close, note_env;
    CHECK(tf_fuzz_fixture_init(&f));
    gen_card(&f);
    gen_text_id(&f);
    gen_proposal(&f, &proposal);
    gen_reply(&f);
    gen_introductions(&f, &intro);
    gen_close(&f, &close);
    gen_request(&f); /* requests */
    gen_core(&f);
    gen_envelope(&f, &proposal, &intro, &close, &note_env);
    gen_direct(&f, &proposal, &intro, &close); /* direct */
    gen_mp_check(&f, &note_env);
    gen_noise(&f);
    gen_ctl(&f);

    tf_proto_buf_free(&proposal);
    tf_proto_buf_free(&intro);
    tf_proto_buf_free(&close);
    tf_proto_buf_free(&note_env);
    tf_fuzz_fixture_deinit(&f);
    if (check_only) {
        if (n_stale > 0) {
            fprintf(stderr,
                    "gen_corpus: %d seed(s) differ from what proto/ produces now; regenerate "
                    "with: gen_corpus %s\n",
                    n_stale, corpus_dir);
            return 1;
        }
        printf("gen_corpus: seeds up to date\n");
    } else {
        printf("gen_corpus: wrote %d seeds under %s\n", n_written, corpus_dir);
    }
    return 0;
}
