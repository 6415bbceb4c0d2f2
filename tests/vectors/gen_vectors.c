/* SPDX-License-Identifier: MIT */
/*
 * Generates tests/vectors/twofold-v1.json: valid objects from the fixed cast of
 * chain.c, and invalid variants, each naming the error a conforming verifier
 * must report first.  Run once and check the output in; check_vectors
 * replays it (byte for byte for the deterministic objects).
 *
 *   gen_vectors > tests/vectors/twofold-v1.json
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "chain.h"
#include "proto/link.h"
#include "proto/request.h"
#include "vecjson.h"

static struct vec_world W;
static json_t *VALID, *INVALID;

#define CHECK(expr)                                                                                \
    do {                                                                                           \
        int rc_ = (expr);                                                                          \
        if (rc_ != TF_OK) {                                                                        \
            fprintf(stderr, "%s:%d: %s: %s\n", __FILE__, __LINE__, #expr, tf_strerror(rc_));       \
            exit(1);                                                                               \
        }                                                                                          \
    } while (0)

static void add(json_t *section, json_t *c, const char *kind, const char *name, int expect)
{
    json_object_set_new(c, "kind", json_string(kind));
    json_object_set_new(c, "name", json_string(name));
    if (section == INVALID)
        json_object_set_new(c, "error", json_string(tf_err_name(expect)));
    json_array_append_new(section, c);
}

static struct tf_proto_buf copy(const struct tf_proto_buf *b)
{
    struct tf_proto_buf o = {malloc(b->len + 1), b->len};
    if (o.data == NULL)
        exit(1);
    memcpy(o.data, b->data, b->len);
    return o;
}

static struct tf_proto_buf flipped(const struct tf_proto_buf *b, size_t at)
{
    struct tf_proto_buf o = copy(b);
    o.data[at] ^= 0x01;
    return o;
}

static struct tf_proto_buf truncated(const struct tf_proto_buf *b, size_t drop)
{
    struct tf_proto_buf o = copy(b);
    o.len -= drop;
    return o;
}

static struct tf_proto_buf trailing(const struct tf_proto_buf *b)
{
    struct tf_proto_buf o = {malloc(b->len + 1), b->len + 1};
    memcpy(o.data, b->data, b->len);
    o.data[b->len] = 0xc0;
    return o;
}

static struct tf_proto_buf sign_body(enum vec_who who, enum tf_proto_domain d,
                                     struct tf_proto_mp_writer *w)
{
    struct tf_proto_buf body, out;
    CHECK(tf_proto_mp_writer_finish(w, &body));
    CHECK(tf_proto_statement_sign(&W.id[who], d, body.data, body.len, &out));
    tf_proto_buf_free(&body);
    return out;
}

static void wtext(struct tf_proto_mp_writer *w, const char *s)
{
    tf_proto_mp_write_str(w, s, strlen(s));
}

/* Identities and text ids. */

static void gen_identities(json_t *root)
{
    json_t *ids = json_object();
    for (int i = 0; i < VEC_COUNT; i++) {
        uint8_t seed[TF_PROTO_SEED_LEN];
        char tid[TF_PROTO_TEXT_ID_SIZE], fp[TF_PROTO_FINGERPRINT_SIZE];
        vec_seed((enum vec_who)i, seed);
        tf_proto_text_id_encode(W.id[i].sign_pk, tid);
        tf_proto_fingerprint(W.id[i].sign_pk, fp);
        json_t *o = json_object();
        json_object_set_new(o, "seed", vec_hex(seed, sizeof seed));
        json_object_set_new(o, "sign_pk", vec_hex(W.id[i].sign_pk, TF_PROTO_KEY_LEN));
        json_object_set_new(o, "noise_pk", vec_hex(W.id[i].noise_pk, TF_PROTO_KEY_LEN));
        json_object_set_new(o, "box_pk", vec_hex(W.id[i].box_pk, TF_PROTO_KEY_LEN));
        json_object_set_new(o, "text_id", json_string(tid));
        json_object_set_new(o, "fingerprint", json_string(fp));
        json_object_set_new(o, "card", vec_hex_buf(&W.card[i]));
        json_object_set_new(ids, vec_name((enum vec_who)i), o);
    }
    json_object_set_new(root, "identities", ids);
}

static void text_id_case(json_t *section, const char *name, const char *text, int expect)
{
    json_t *c = json_object();
    json_object_set_new(c, "text", json_string(text));
    if (expect == TF_OK)
        json_object_set_new(c, "pk", vec_hex(W.id[VEC_ALICE].sign_pk, TF_PROTO_KEY_LEN));
    add(section, c, "text_id", name, expect);
}

static void gen_text_ids(void)
{
    char tid[TF_PROTO_TEXT_ID_SIZE], bad[TF_PROTO_TEXT_ID_SIZE + 1];
    tf_proto_text_id_encode(W.id[VEC_ALICE].sign_pk, tid);
    text_id_case(VALID, "alice", tid, TF_OK);
    for (size_t i = 0; i < TF_PROTO_TEXT_ID_LEN; i++)
        bad[i] = (char)(tid[i] >= 'a' && tid[i] <= 'z' ? tid[i] - 32 : tid[i]);
    bad[TF_PROTO_TEXT_ID_LEN] = '\0';
    text_id_case(VALID, "alice upper case", bad, TF_OK);
    memcpy(bad, tid, sizeof tid);
    bad[10] = bad[10] == 'q' ? 'p' : 'q';
    text_id_case(INVALID, "one character mistyped", bad, TF_E_BAD_CHECKSUM);
    memcpy(bad, tid, sizeof tid);
    char t = bad[20];
    bad[20] = bad[21];
    bad[21] = t;
    if (bad[20] != bad[21])
        text_id_case(INVALID, "two characters swapped", bad, TF_E_BAD_CHECKSUM);
    memcpy(bad, tid, sizeof tid);
    bad[30] = 'b';
    text_id_case(INVALID, "character outside the alphabet", bad, TF_E_BAD_CHAR);
    memcpy(bad, tid, sizeof tid);
    bad[0] = 'x';
    text_id_case(INVALID, "wrong prefix", bad, TF_E_BAD_PREFIX);
    memcpy(bad, tid, sizeof tid);
    bad[TF_PROTO_TEXT_ID_LEN - 1] = '\0';
    text_id_case(INVALID, "one character short", bad, TF_E_BAD_LENGTH);
    memcpy(bad, tid, sizeof tid);
    for (size_t i = 0; i < 30; i++)
        bad[i] = (char)(bad[i] >= 'a' && bad[i] <= 'z' ? bad[i] - 32 : bad[i]);
    text_id_case(INVALID, "mixed case", bad, TF_E_MIXED_CASE);
}

/* Cards. */

/* Writes a card body for `who` with one field changed by `variant`. */
enum card_variant {
    CARD_OK,
    CARD_DUP_KEY,
    CARD_KEY_ORDER,
    CARD_VERSION2,
    CARD_LONG_NAME,
    CARD_BAD_TAG,
    CARD_SEQ_NONCANONICAL,
    CARD_NAME_OVERLONG_LENGTH,
    CARD_BAD_ADDR,
    CARD_BAD_UTF8,
    /* mailbox: key 11 */
    CARD_MAILBOX,       /* one mailbox (Alice's node) with two addresses */
    CARD_MAILBOX_SELF,  /* the owner named as its own mailbox */
    CARD_MAILBOX_EMPTY, /* key 11 with an empty list */
};

static struct tf_proto_buf card_body(enum vec_who who, enum card_variant v)
{
    struct tf_proto_mp_writer w;
    const struct tf_proto_identity *id = &W.id[who];
    bool mailbox = v == CARD_MAILBOX || v == CARD_MAILBOX_SELF || v == CARD_MAILBOX_EMPTY;
    tf_proto_mp_writer_init(&w);
    tf_proto_mp_write_map(&w, mailbox ? 11 : 10);
    tf_proto_mp_write_uint(&w, 1);
    tf_proto_mp_write_uint(&w, v == CARD_VERSION2 ? 2 : 1);
    tf_proto_mp_write_uint(&w, 2);
    tf_proto_mp_write_bin(&w, id->sign_pk, 32);
    tf_proto_mp_write_uint(&w, v == CARD_KEY_ORDER ? 4 : 3);
    tf_proto_mp_write_bin(&w, v == CARD_KEY_ORDER ? id->box_pk : id->noise_pk, 32);
    tf_proto_mp_write_uint(&w, v == CARD_KEY_ORDER ? 3 : 4);
    tf_proto_mp_write_bin(&w, v == CARD_KEY_ORDER ? id->noise_pk : id->box_pk, 32);
    tf_proto_mp_write_uint(&w, v == CARD_DUP_KEY ? 4 : 5);
    if (v == CARD_LONG_NAME)
        wtext(&w, "A name that is much too long to fit in a card's sixty-four bytes.");
    else if (v == CARD_NAME_OVERLONG_LENGTH) {
        static const uint8_t str32[] = {0xdb, 0xff, 0xff, 0xff, 0xf0, 'M'};
        tf_proto_mp_writer_deinit(&w);
        /* A str32 that declares ~4 GiB but ends after one byte. */
        struct tf_proto_buf b = {malloc(256), 0};
        struct tf_proto_buf good = card_body(who, CARD_OK);
        /* Copy the prefix up to the name value (keys 1..4 and key 5). */
        size_t prefix = 1 + 2 + 1 + 34 + 1 + 34 + 1 + 34 + 1;
        memcpy(b.data, good.data, prefix);
        memcpy(b.data + prefix, str32, sizeof str32);
        b.len = prefix + sizeof str32;
        tf_proto_buf_free(&good);
        return b;
    } else if (v == CARD_BAD_UTF8)
        tf_proto_mp_write_str(&w, "Mall\xc0\xafry", 8);
    else
        wtext(&w, "Mallory");
    tf_proto_mp_write_uint(&w, 6);
    tf_proto_mp_write_array(&w, 1);
    wtext(&w, v == CARD_BAD_ADDR ? "mallory.example" : "mallory.example:7455");
    tf_proto_mp_write_uint(&w, 7);
    tf_proto_mp_write_array(&w, 1);
    wtext(&w, v == CARD_BAD_TAG ? "Real Estate" : "real-estate-law");
    tf_proto_mp_write_uint(&w, 8);
    tf_proto_mp_write_array(&w, 0);
    tf_proto_mp_write_uint(&w, 9);
    tf_proto_mp_write_uint(&w, VEC_NOW);
    tf_proto_mp_write_uint(&w, 10);
    if (v == CARD_SEQ_NONCANONICAL) {
        static const uint8_t u16one[] = {0xcd, 0x00, 0x01};
        struct tf_proto_buf b;
        CHECK(tf_proto_mp_writer_finish(&w, &b));
        uint8_t *p = realloc(b.data, b.len + 3);
        memcpy(p + b.len, u16one, 3);
        b.data = p;
        b.len += 3;
        return b;
    }
    tf_proto_mp_write_uint(&w, 1);
    if (mailbox) {
        tf_proto_mp_write_uint(&w, 11);
        tf_proto_mp_write_array(&w, v == CARD_MAILBOX_EMPTY ? 0 : 1);
        if (v != CARD_MAILBOX_EMPTY) {
            tf_proto_mp_write_array(&w, 2);
            tf_proto_mp_write_bin(
                &w, v == CARD_MAILBOX_SELF ? id->sign_pk : W.id[VEC_ALICE].sign_pk, 32);
            tf_proto_mp_write_array(&w, 2);
            wtext(&w, "mbox.example:7452");
            wtext(&w, "[2001:db8::2]:7452");
        }
    }
    struct tf_proto_buf b;
    CHECK(tf_proto_mp_writer_finish(&w, &b));
    return b;
}

static void card_case(json_t *section, const char *name, struct tf_proto_buf signed_card,
                      int expect)
{
    json_t *c = json_object();
    json_object_set_new(c, "signed", vec_hex_buf(&signed_card));
    if (expect == TF_OK) {
        char *text;
        CHECK(tf_proto_card_to_text(signed_card.data, signed_card.len, &text));
        json_object_set_new(c, "text", json_string(text));
        free(text);
    }
    add(section, c, "card", name, expect);
    tf_proto_buf_free(&signed_card);
}

static struct tf_proto_buf signed_variant(enum card_variant v, enum tf_proto_domain d)
{
    struct tf_proto_buf body = card_body(VEC_MALLORY, v), out;
    CHECK(tf_proto_statement_sign(&W.id[VEC_MALLORY], d, body.data, body.len, &out));
    tf_proto_buf_free(&body);
    return out;
}

static void gen_cards(void)
{
    for (int i = 0; i < VEC_COUNT; i++)
        card_case(VALID, vec_name((enum vec_who)i), copy(&W.card[i]), TF_OK);
    card_case(VALID, "hand-built body", signed_variant(CARD_OK, TF_PROTO_DOMAIN_CARD), TF_OK);
    card_case(VALID, "with a mailbox (key 11)", signed_variant(CARD_MAILBOX, TF_PROTO_DOMAIN_CARD),
              TF_OK);
    card_case(INVALID, "its own mailbox", signed_variant(CARD_MAILBOX_SELF, TF_PROTO_DOMAIN_CARD),
              TF_E_BAD_VALUE);
    card_case(INVALID, "empty mailbox list",
              signed_variant(CARD_MAILBOX_EMPTY, TF_PROTO_DOMAIN_CARD), TF_E_BAD_LENGTH);
    const struct tf_proto_buf *alice = &W.card[VEC_ALICE];
    card_case(INVALID, "body byte flipped (name)", flipped(alice, 120), TF_E_BAD_SIG);
    card_case(INVALID, "signature byte flipped", flipped(alice, alice->len - 5), TF_E_BAD_SIG);
    card_case(INVALID, "signed in the reply domain", signed_variant(CARD_OK, TF_PROTO_DOMAIN_REPLY),
              TF_E_BAD_SIG);
    card_case(INVALID, "duplicate key 4", signed_variant(CARD_DUP_KEY, TF_PROTO_DOMAIN_CARD),
              TF_E_DUP_KEY);
    card_case(INVALID, "keys 3 and 4 swapped", signed_variant(CARD_KEY_ORDER, TF_PROTO_DOMAIN_CARD),
              TF_E_BAD_KEY);
    card_case(INVALID, "version 2", signed_variant(CARD_VERSION2, TF_PROTO_DOMAIN_CARD),
              TF_E_VERSION);
    card_case(INVALID, "name longer than 64 bytes",
              signed_variant(CARD_LONG_NAME, TF_PROTO_DOMAIN_CARD), TF_E_TOO_LONG);
    card_case(INVALID, "offer tag with capitals and a space",
              signed_variant(CARD_BAD_TAG, TF_PROTO_DOMAIN_CARD), TF_E_BAD_VALUE);
    card_case(INVALID, "address without a port",
              signed_variant(CARD_BAD_ADDR, TF_PROTO_DOMAIN_CARD), TF_E_BAD_VALUE);
    card_case(INVALID, "name with an overlong UTF-8 sequence",
              signed_variant(CARD_BAD_UTF8, TF_PROTO_DOMAIN_CARD), TF_E_BAD_UTF8);
    card_case(INVALID, "seq as uint16", signed_variant(CARD_SEQ_NONCANONICAL, TF_PROTO_DOMAIN_CARD),
              TF_E_NONCANONICAL);
    card_case(INVALID, "name length past the end of the body",
              signed_variant(CARD_NAME_OVERLONG_LENGTH, TF_PROTO_DOMAIN_CARD), TF_E_TRUNCATED);
    card_case(INVALID, "statement truncated", truncated(alice, 1), TF_E_TRUNCATED);
    card_case(INVALID, "trailing byte after the statement", trailing(alice), TF_E_TRAILING);

    /* Text forms. */
    char *text;
    CHECK(tf_proto_card_to_text(alice->data, alice->len, &text));
    json_t *c = json_object();
    json_object_set_new(c, "text", json_string(text));
    add(INVALID, c, "card_text", "missing prefix", TF_E_BAD_PREFIX);
    json_object_set_new(c, "text", json_string(text + strlen(TF_PROTO_CARD_TEXT_PREFIX)));
    text[20] = '*';
    c = json_object();
    json_object_set_new(c, "text", json_string(text));
    add(INVALID, c, "card_text", "character outside base64url", TF_E_BAD_ENCODING);
    free(text);
}

/* Envelopes. */

static const uint8_t MSG_ID[TF_PROTO_MSG_ID_LEN] = {0xa0, 0xa1, 0xa2, 0xa3, 0xa4, 0xa5, 0xa6, 0xa7,
                                                    0xa8, 0xa9, 0xaa, 0xab, 0xac, 0xad, 0xae, 0xaf};

static void envelope_case(json_t *section, const char *name, enum vec_who to, uint64_t now,
                          struct tf_proto_buf env, int expect)
{
    json_t *c = json_object();
    json_object_set_new(c, "recipient", json_string(vec_name(to)));
    json_object_set_new(c, "now", json_integer((json_int_t)now));
    json_object_set_new(c, "envelope", vec_hex_buf(&env));
    if (expect == TF_OK) {
        static const char body[] = "Hello Bob, this is Alice.";
        json_object_set_new(c, "from", json_string("alice"));
        json_object_set_new(c, "type", json_integer(TF_PROTO_MSG_TYPE_NOTE));
        json_object_set_new(c, "body", vec_hex((const uint8_t *)body, strlen(body)));
        json_object_set_new(c, "msg_id", vec_hex(MSG_ID, sizeof MSG_ID));
        json_object_set_new(c, "expires", json_integer(VEC_NOW + 3600));
        /* inner || padding: what the sealed part opens to (section 7) */
        struct tf_proto_envelope e;
        CHECK(tf_proto_envelope_decode(env.data, env.len, &e));
        json_object_set_new(c, "padded_len",
                            json_integer((json_int_t)(e.sealed.len - crypto_box_SEALBYTES)));
    }
    add(section, c, "envelope", name, expect);
    tf_proto_buf_free(&env);
}

static struct tf_proto_buf make_envelope(enum vec_who from, enum vec_who to_sign,
                                         enum vec_who to_box, const uint8_t *msg_id,
                                         uint64_t expires)
{
    static const char body[] = "Hello Bob, this is Alice.";
    struct tf_proto_buf out;
    CHECK(tf_proto_envelope_seal(&W.id[from], W.id[to_sign].sign_pk, W.id[to_box].box_pk, msg_id,
                                 expires, TF_PROTO_MSG_TYPE_NOTE, (const uint8_t *)body,
                                 strlen(body), &out));
    return out;
}

/* The envelope env with its sealed part replaced by plain, sealed to to_box
 * (plain: what env opens to, perhaps changed). */
static struct tf_proto_buf resealed(const struct tf_proto_buf *env, enum vec_who to_box,
                                    const uint8_t *plain, size_t len)
{
    struct tf_proto_envelope e;
    struct tf_proto_mp_writer w;
    struct tf_proto_buf out;
    uint8_t *sealed = malloc(len + crypto_box_SEALBYTES);
    if (sealed == NULL || crypto_box_seal(sealed, plain, len, W.id[to_box].box_pk) != 0)
        exit(1);
    CHECK(tf_proto_envelope_decode(env->data, env->len, &e));
    tf_proto_mp_writer_init(&w);
    tf_proto_mp_write_array(&w, 5);
    tf_proto_mp_write_uint(&w, TF_PROTO_ENVELOPE_VERSION);
    tf_proto_mp_write_bin(&w, e.msg_id, sizeof e.msg_id);
    tf_proto_mp_write_bin(&w, e.to_pk, sizeof e.to_pk);
    tf_proto_mp_write_uint(&w, e.expires);
    tf_proto_mp_write_bin(&w, sealed, len + crypto_box_SEALBYTES);
    CHECK(tf_proto_mp_writer_finish(&w, &out));
    free(sealed);
    return out;
}

/* Padding: none at all (an envelope sealed before padding existed) is read,
 * and so is any other length of zeros; a byte that is not zero is not. */
static void gen_envelope_padding(const struct tf_proto_buf *good)
{
    struct tf_proto_buf plain;
    struct tf_proto_envelope_opened o;
    CHECK(tf_proto_envelope_open(&W.id[VEC_BOB], good->data, good->len, VEC_NOW, &plain, &o));
    /* inner = [..., body, bin8 sig]: it ends 66 bytes after the body */
    size_t inner_len = (size_t)(o.body.ptr + o.body.len - plain.data) + 2 + TF_PROTO_SIG_LEN;
    envelope_case(VALID, "inner not padded (sealed before padding)", VEC_BOB, VEC_NOW,
                  resealed(good, VEC_BOB, plain.data, inner_len), TF_OK);
    envelope_case(VALID, "inner padded with 1 zero byte (not a class)", VEC_BOB, VEC_NOW,
                  resealed(good, VEC_BOB, plain.data, inner_len + 1), TF_OK);
    plain.data[inner_len] = 0x01;
    envelope_case(INVALID, "first padding byte not zero", VEC_BOB, VEC_NOW,
                  resealed(good, VEC_BOB, plain.data, plain.len), TF_E_TRAILING);
    plain.data[inner_len] = 0x00;
    plain.data[plain.len - 1] = 0x80;
    envelope_case(INVALID, "last padding byte not zero", VEC_BOB, VEC_NOW,
                  resealed(good, VEC_BOB, plain.data, plain.len), TF_E_TRAILING);
    tf_proto_buf_free(&plain);
}

static void gen_envelopes(void)
{
    uint64_t exp = VEC_NOW + 3600;
    struct tf_proto_buf good = make_envelope(VEC_ALICE, VEC_BOB, VEC_BOB, MSG_ID, exp);
    envelope_case(VALID, "note from alice to bob", VEC_BOB, VEC_NOW, copy(&good), TF_OK);
    envelope_case(VALID, "opened at the second of expiry", VEC_BOB, exp, copy(&good), TF_OK);
    envelope_case(INVALID, "for another recipient", VEC_DAVE, VEC_NOW, copy(&good),
                  TF_E_NOT_FOR_ME);
    envelope_case(INVALID, "expired", VEC_BOB, exp + 1, copy(&good), TF_E_EXPIRED);
    /* Outer layout: 95 (fixarray 5), 01, c4 10 <16 id>, c4 20 <32 pk>, ce <4 expires>, ... */
    envelope_case(INVALID, "msg id altered", VEC_BOB, VEC_NOW, flipped(&good, 4), TF_E_BAD_SIG);
    envelope_case(INVALID, "expiry altered", VEC_BOB, VEC_NOW, flipped(&good, 2 + 18 + 34 + 4),
                  TF_E_BAD_SIG);
    envelope_case(INVALID, "sealed box altered", VEC_BOB, VEC_NOW, flipped(&good, good.len - 3),
                  TF_E_BAD_SEAL);
    envelope_case(INVALID, "sealed to another identity's box key", VEC_BOB, VEC_NOW,
                  make_envelope(VEC_ALICE, VEC_BOB, VEC_DAVE, MSG_ID, exp), TF_E_BAD_SEAL);
    struct tf_proto_buf v2 = copy(&good);
    v2.data[1] = 0x02;
    envelope_case(INVALID, "version 2", VEC_BOB, VEC_NOW, v2, TF_E_VERSION);
    envelope_case(INVALID, "truncated", VEC_BOB, VEC_NOW, truncated(&good, 1), TF_E_TRUNCATED);
    envelope_case(INVALID, "trailing byte", VEC_BOB, VEC_NOW, trailing(&good), TF_E_TRAILING);
    gen_envelope_padding(&good);
    tf_proto_buf_free(&good);
}

/* Proposals. */

static struct tf_proto_buf proposal_raw(enum vec_who signer, enum tf_proto_domain d,
                                        const uint8_t *intro_id, const struct tf_proto_buf *core,
                                        const uint8_t *salt, enum vec_who card_of)
{
    struct tf_proto_mp_writer w;
    tf_proto_mp_writer_init(&w);
    tf_proto_mp_write_array(&w, 7);
    tf_proto_mp_write_bin(&w, intro_id, TF_PROTO_INTRO_ID_LEN);
    tf_proto_mp_write_bin(&w, core->data, core->len);
    tf_proto_mp_write_uint(&w, TF_PROTO_SIDE_A);
    tf_proto_mp_write_bin(&w, salt, TF_PROTO_SALT_LEN);
    tf_proto_mp_write_bin(&w, W.card[card_of].data, W.card[card_of].len);
    wtext(&w, "Bob is buying his first flat and needs a lawyer.");
    wtext(&w, "Alice, would you like to meet Bob?");
    return sign_body(signer, d, &w);
}

static void proposal_case(json_t *section, const char *name, enum vec_who to, uint64_t now,
                          struct tf_proto_buf p, const struct vec_intro *in, int side, int expect)
{
    json_t *c = json_object();
    json_object_set_new(c, "recipient", json_string(vec_name(to)));
    json_object_set_new(c, "now", json_integer((json_int_t)now));
    json_object_set_new(c, "skew", json_integer(TF_PROTO_SKEW_DEFAULT));
    json_object_set_new(c, "proposal", vec_hex_buf(&p));
    if (expect == TF_OK) {
        json_object_set_new(c, "intro_id", vec_hex(in->intro_id, TF_PROTO_INTRO_ID_LEN));
        json_object_set_new(c, "side", json_integer(side));
        json_object_set_new(c, "topic", json_string("real-estate-law"));
    }
    add(section, c, "proposal", name, expect);
    tf_proto_buf_free(&p);
}

static struct tf_proto_buf core_with(const struct vec_intro *in, const char *topic,
                                     uint64_t version, uint64_t created, uint64_t expires,
                                     uint64_t mode)
{
    struct tf_proto_intro_core core;
    CHECK(tf_proto_intro_core_decode(in->core.data, in->core.len, &core));
    struct tf_proto_mp_writer w;
    tf_proto_mp_writer_init(&w);
    tf_proto_mp_write_array(&w, 8);
    tf_proto_mp_write_uint(&w, version);
    tf_proto_mp_write_bin(&w, core.connector_pk, 32);
    tf_proto_mp_write_bin(&w, core.commit_a, 32);
    tf_proto_mp_write_bin(&w, core.commit_b, 32);
    wtext(&w, topic);
    tf_proto_mp_write_uint(&w, created);
    tf_proto_mp_write_uint(&w, expires);
    tf_proto_mp_write_uint(&w, mode);
    struct tf_proto_buf b;
    CHECK(tf_proto_mp_writer_finish(&w, &b));
    return b;
}

static void gen_proposals(const struct vec_intro *in)
{
    proposal_case(VALID, "to alice (side a)", VEC_ALICE, VEC_NOW, copy(&in->proposal_a), in, 0,
                  TF_OK);
    proposal_case(VALID, "to bob (side b)", VEC_BOB, VEC_NOW, copy(&in->proposal_b), in, 1, TF_OK);
    const struct tf_proto_buf *pa = &in->proposal_a;
    proposal_case(INVALID, "signature byte flipped", VEC_ALICE, VEC_NOW, flipped(pa, pa->len - 9),
                  in, 0, TF_E_BAD_SIG);
    proposal_case(INVALID, "signed in the introduction domain", VEC_ALICE, VEC_NOW,
                  proposal_raw(VEC_CAROL, TF_PROTO_DOMAIN_INTRODUCTION, in->intro_id, &in->core,
                               in->salt_a, VEC_CAROL),
                  in, 0, TF_E_BAD_SIG);
    proposal_case(INVALID, "signed by mallory", VEC_ALICE, VEC_NOW,
                  proposal_raw(VEC_MALLORY, TF_PROTO_DOMAIN_PROPOSAL, in->intro_id, &in->core,
                               in->salt_a, VEC_CAROL),
                  in, 0, TF_E_BAD_SIG);
    proposal_case(INVALID, "presented to dave (commitment does not open)", VEC_DAVE, VEC_NOW,
                  copy(pa), in, 0, TF_E_COMMITMENT);
    proposal_case(INVALID, "wrong salt", VEC_ALICE, VEC_NOW,
                  proposal_raw(VEC_CAROL, TF_PROTO_DOMAIN_PROPOSAL, in->intro_id, &in->core,
                               in->salt_b, VEC_CAROL),
                  in, 0, TF_E_COMMITMENT);
    struct tf_proto_buf other = core_with(in, "tax-law", 1, VEC_CREATED, VEC_EXPIRES, 0);
    proposal_case(INVALID, "intro id of another core", VEC_ALICE, VEC_NOW,
                  proposal_raw(VEC_CAROL, TF_PROTO_DOMAIN_PROPOSAL, in->intro_id, &other,
                               in->salt_a, VEC_CAROL),
                  in, 0, TF_E_INTRO_ID);
    tf_proto_buf_free(&other);
    proposal_case(INVALID, "connector card of mallory", VEC_ALICE, VEC_NOW,
                  proposal_raw(VEC_CAROL, TF_PROTO_DOMAIN_PROPOSAL, in->intro_id, &in->core,
                               in->salt_a, VEC_MALLORY),
                  in, 0, TF_E_CONNECTOR);
    proposal_case(INVALID, "expired", VEC_ALICE, VEC_EXPIRES + 1, copy(pa), in, 0, TF_E_EXPIRED);
    proposal_case(INVALID, "created more than the skew in the future", VEC_ALICE,
                  VEC_CREATED - TF_PROTO_SKEW_DEFAULT - 1, copy(pa), in, 0, TF_E_FROM_FUTURE);
    proposal_case(VALID, "created within the skew in the future", VEC_ALICE,
                  VEC_CREATED - TF_PROTO_SKEW_DEFAULT, copy(pa), in, 0, TF_OK);
    proposal_case(INVALID, "truncated", VEC_ALICE, VEC_NOW, truncated(pa, 1), in, 0,
                  TF_E_TRUNCATED);
    proposal_case(INVALID, "trailing byte", VEC_ALICE, VEC_NOW, trailing(pa), in, 0, TF_E_TRAILING);
    struct tf_proto_buf v2 = core_with(in, "real-estate-law", 2, VEC_CREATED, VEC_EXPIRES, 0);
    uint8_t id2[TF_PROTO_INTRO_ID_LEN];
    tf_proto_intro_id(v2.data, v2.len, id2);
    proposal_case(
        INVALID, "core version 2", VEC_ALICE, VEC_NOW,
        proposal_raw(VEC_CAROL, TF_PROTO_DOMAIN_PROPOSAL, id2, &v2, in->salt_a, VEC_CAROL), in, 0,
        TF_E_VERSION);
    tf_proto_buf_free(&v2);
    struct tf_proto_buf bad = core_with(in, "real-estate-law", 1, VEC_CREATED, VEC_CREATED, 0);
    tf_proto_intro_id(bad.data, bad.len, id2);
    proposal_case(
        INVALID, "core expires == created", VEC_ALICE, VEC_NOW,
        proposal_raw(VEC_CAROL, TF_PROTO_DOMAIN_PROPOSAL, id2, &bad, in->salt_a, VEC_CAROL), in, 0,
        TF_E_BAD_VALUE);
    tf_proto_buf_free(&bad);
    bad = core_with(in, "real-estate-law", 1, VEC_CREATED, VEC_EXPIRES, 2);
    tf_proto_intro_id(bad.data, bad.len, id2);
    proposal_case(
        INVALID, "core mode 2", VEC_ALICE, VEC_NOW,
        proposal_raw(VEC_CAROL, TF_PROTO_DOMAIN_PROPOSAL, id2, &bad, in->salt_a, VEC_CAROL), in, 0,
        TF_E_BAD_VALUE);
    tf_proto_buf_free(&bad);
}

/* Replies (connector side). */

static void reply_case(json_t *section, const char *name, enum vec_who signer,
                       const uint8_t *intro_id, int side, struct tf_proto_buf r, int decision,
                       int expect)
{
    json_t *c = json_object();
    json_object_set_new(c, "signer", json_string(vec_name(signer)));
    json_object_set_new(c, "intro_id", vec_hex(intro_id, TF_PROTO_INTRO_ID_LEN));
    json_object_set_new(c, "side", json_integer(side));
    json_object_set_new(c, "reply", vec_hex_buf(&r));
    if (expect == TF_OK)
        json_object_set_new(c, "decision", json_integer(decision));
    add(section, c, "reply", name, expect);
    tf_proto_buf_free(&r);
}

static void gen_replies(const struct vec_intro *in, const struct vec_intro *other)
{
    struct tf_proto_buf r;
    reply_case(VALID, "alice accepts", VEC_ALICE, in->intro_id, 0, copy(&in->reply_a), 1, TF_OK);
    reply_case(VALID, "bob accepts", VEC_BOB, in->intro_id, 1, copy(&in->reply_b), 1, TF_OK);
    CHECK(vec_reply(&W, VEC_BOB, in->intro_id, TF_PROTO_SIDE_B, TF_PROTO_DECISION_DECLINE,
                    "Not looking right now.", VEC_CREATED + 20, &r));
    reply_case(VALID, "bob declines with a private reason", VEC_BOB, in->intro_id, 1, r, 0, TF_OK);
    reply_case(INVALID, "claimed by dave", VEC_DAVE, in->intro_id, 0, copy(&in->reply_a), 1,
               TF_E_REPLY_SIG);
    reply_case(INVALID, "signature byte flipped", VEC_ALICE, in->intro_id, 0,
               flipped(&in->reply_a, in->reply_a.len - 2), 1, TF_E_REPLY_SIG);
    reply_case(INVALID, "for another intro", VEC_ALICE, in->intro_id, 0, copy(&other->reply_a), 1,
               TF_E_REPLY_INTRO);
    reply_case(INVALID, "for the other side", VEC_ALICE, in->intro_id, 1, copy(&in->reply_a), 1,
               TF_E_REPLY_SIDE);
    /* Alice signs an accept carrying Bob's card. */
    struct tf_proto_reply x;
    memset(&x, 0, sizeof x);
    memcpy(x.intro_id, in->intro_id, TF_PROTO_INTRO_ID_LEN);
    x.side = TF_PROTO_SIDE_A;
    x.decision = TF_PROTO_DECISION_ACCEPT;
    x.card.ptr = W.card[VEC_BOB].data;
    x.card.len = W.card[VEC_BOB].len;
    x.time = VEC_CREATED + 10;
    CHECK(tf_proto_reply_sign(&W.id[VEC_ALICE], &x, &r));
    reply_case(INVALID, "accept carrying someone else's card", VEC_ALICE, in->intro_id, 0, r, 1,
               TF_E_KEY_MISMATCH);
    reply_case(INVALID, "truncated", VEC_ALICE, in->intro_id, 0, truncated(&in->reply_a, 3), 1,
               TF_E_TRUNCATED);
}

/* Introductions (party side: the materialisation check). */

static void intro_case(json_t *section, const char *name, enum vec_who me,
                       const struct tf_proto_buf *my_reply, struct tf_proto_buf intro,
                       enum vec_who other, int expect)
{
    json_t *c = json_object();
    json_object_set_new(c, "me", json_string(vec_name(me)));
    json_object_set_new(c, "my_reply", vec_hex_buf(my_reply));
    json_object_set_new(c, "introduction", vec_hex_buf(&intro));
    json_object_set_new(c, "skew", json_integer(TF_PROTO_SKEW_DEFAULT));
    if (expect == TF_OK)
        json_object_set_new(c, "other", json_string(vec_name(other)));
    add(section, c, "introduction", name, expect);
    tf_proto_buf_free(&intro);
}

static struct tf_proto_buf intro_from(const struct vec_intro *in, const struct tf_proto_buf *ra,
                                      const struct tf_proto_buf *rb, uint64_t time)
{
    struct tf_proto_buf out;
    CHECK(vec_introduction(&W, VEC_CAROL, in, &in->core, in->intro_id, in->salt_a, in->salt_b, ra,
                           rb, time, &out));
    return out;
}

static struct tf_proto_buf introduction_raw(enum vec_who signer, const struct vec_intro *in,
                                            const struct tf_proto_buf *core, const uint8_t *salt_a,
                                            const uint8_t *salt_b, const struct tf_proto_buf *ra,
                                            const struct tf_proto_buf *rb)
{
    struct tf_proto_mp_writer w;
    tf_proto_mp_writer_init(&w);
    tf_proto_mp_write_array(&w, 8);
    tf_proto_mp_write_bin(&w, in->intro_id, TF_PROTO_INTRO_ID_LEN);
    tf_proto_mp_write_bin(&w, core->data, core->len);
    tf_proto_mp_write_bin(&w, salt_a, TF_PROTO_SALT_LEN);
    tf_proto_mp_write_bin(&w, salt_b, TF_PROTO_SALT_LEN);
    tf_proto_mp_write_bin(&w, ra->data, ra->len);
    tf_proto_mp_write_bin(&w, rb->data, rb->len);
    wtext(&w, "You two should talk about the Elm Street deal.");
    tf_proto_mp_write_uint(&w, VEC_CREATED + 30);
    return sign_body(signer, TF_PROTO_DOMAIN_INTRODUCTION, &w);
}

static void gen_introductions(const struct vec_intro *in, const struct vec_intro *ad)
{
    const struct tf_proto_buf *ra = &in->reply_a, *rb = &in->reply_b;
    struct tf_proto_buf r;
    intro_case(VALID, "alice materialises bob", VEC_ALICE, ra, copy(&in->introduction), VEC_BOB,
               TF_OK);
    intro_case(VALID, "bob materialises alice", VEC_BOB, rb, copy(&in->introduction), VEC_ALICE,
               TF_OK);
    intro_case(INVALID, "connector signature flipped", VEC_ALICE, ra,
               flipped(&in->introduction, in->introduction.len - 7), VEC_BOB, TF_E_BAD_SIG);
    intro_case(INVALID, "signed by mallory", VEC_ALICE, ra,
               introduction_raw(VEC_MALLORY, in, &in->core, in->salt_a, in->salt_b, ra, rb),
               VEC_BOB, TF_E_BAD_SIG);
    struct tf_proto_buf other = core_with(in, "tax-law", 1, VEC_CREATED, VEC_EXPIRES, 0);
    intro_case(INVALID, "core that is not the intro id's", VEC_ALICE, ra,
               introduction_raw(VEC_CAROL, in, &other, in->salt_a, in->salt_b, ra, rb), VEC_BOB,
               TF_E_INTRO_ID);
    tf_proto_buf_free(&other);
    /* Mallory fabricates Bob's consent: a reply carrying Bob's card. */
    struct tf_proto_reply x;
    memset(&x, 0, sizeof x);
    memcpy(x.intro_id, in->intro_id, TF_PROTO_INTRO_ID_LEN);
    x.side = TF_PROTO_SIDE_B;
    x.decision = TF_PROTO_DECISION_ACCEPT;
    x.card.ptr = W.card[VEC_BOB].data;
    x.card.len = W.card[VEC_BOB].len;
    x.time = VEC_CREATED + 20;
    CHECK(tf_proto_reply_sign(&W.id[VEC_MALLORY], &x, &r));
    intro_case(INVALID, "fabricated reply for bob", VEC_ALICE, ra, intro_from(in, ra, &r, 0),
               VEC_BOB, TF_E_REPLY_SIG);
    tf_proto_buf_free(&r);
    CHECK(vec_reply(&W, VEC_BOB, in->intro_id, TF_PROTO_SIDE_B, TF_PROTO_DECISION_DECLINE,
                    "No thanks.", VEC_CREATED + 20, &r));
    intro_case(INVALID, "decline presented as accept", VEC_ALICE, ra,
               intro_from(in, ra, &r, VEC_CREATED + 30), VEC_BOB, TF_E_REPLY_DECLINE);
    tf_proto_buf_free(&r);
    intro_case(INVALID, "replies swapped", VEC_ALICE, ra, intro_from(in, rb, ra, VEC_CREATED + 30),
               VEC_BOB, TF_E_COMMITMENT);
    intro_case(INVALID, "replies and salts swapped", VEC_ALICE, ra,
               introduction_raw(VEC_CAROL, in, &in->core, in->salt_b, in->salt_a, rb, ra), VEC_BOB,
               TF_E_COMMITMENT);
    CHECK(vec_reply(&W, VEC_BOB, ad->intro_id, TF_PROTO_SIDE_B, TF_PROTO_DECISION_ACCEPT,
                    "Thanks, Alice!", VEC_CREATED + 20, &r));
    intro_case(INVALID, "bob's reply to another intro", VEC_ALICE, ra,
               intro_from(in, ra, &r, VEC_CREATED + 30), VEC_BOB, TF_E_REPLY_INTRO);
    tf_proto_buf_free(&r);
    /* Alice's acceptance of (alice, bob) reused for (alice, dave); Carol chose
     * the same salt for Alice so the commitment opens. */
    intro_case(INVALID, "reply reused for a different pair", VEC_DAVE, &ad->reply_b,
               intro_from(ad, ra, &ad->reply_b, VEC_CREATED + 30), VEC_ALICE, TF_E_REPLY_INTRO);
    CHECK(vec_reply(&W, VEC_BOB, in->intro_id, TF_PROTO_SIDE_A, TF_PROTO_DECISION_ACCEPT,
                    "Thanks, Alice!", VEC_CREATED + 20, &r));
    intro_case(INVALID, "bob's reply claims side a", VEC_ALICE, ra,
               introduction_raw(VEC_CAROL, in, &in->core, in->salt_a, in->salt_b, ra, &r), VEC_BOB,
               TF_E_REPLY_SIDE);
    tf_proto_buf_free(&r);
    /* Alice accepted twice with different notes; Carol forwards the other. */
    CHECK(vec_reply(&W, VEC_ALICE, in->intro_id, TF_PROTO_SIDE_A, TF_PROTO_DECISION_ACCEPT,
                    "Happy to help, Bob!!", VEC_CREATED + 11, &r));
    intro_case(INVALID, "my reply is not the one I stored", VEC_ALICE, &r, copy(&in->introduction),
               VEC_BOB, TF_E_NOT_MY_REPLY);
    intro_case(INVALID, "I am not a party", VEC_DAVE, ra, copy(&in->introduction), VEC_BOB,
               TF_E_NOT_MY_REPLY);
    tf_proto_buf_free(&r);
    CHECK(vec_reply(&W, VEC_BOB, in->intro_id, TF_PROTO_SIDE_B, TF_PROTO_DECISION_ACCEPT,
                    "Thanks, Alice!", VEC_EXPIRES + TF_PROTO_SKEW_DEFAULT + 1, &r));
    intro_case(INVALID, "bob accepted after expiry + skew", VEC_ALICE, ra,
               intro_from(in, ra, &r, VEC_EXPIRES), VEC_BOB, TF_E_SIGNED_LATE);
    tf_proto_buf_free(&r);
    CHECK(vec_reply(&W, VEC_BOB, in->intro_id, TF_PROTO_SIDE_B, TF_PROTO_DECISION_ACCEPT,
                    "Thanks, Alice!", VEC_EXPIRES + TF_PROTO_SKEW_DEFAULT, &r));
    intro_case(VALID, "bob accepted within the skew after expiry", VEC_ALICE, ra,
               intro_from(in, ra, &r, VEC_EXPIRES + TF_PROTO_SKEW_DEFAULT), VEC_BOB, TF_OK);
    intro_case(INVALID, "introduction signed after expiry + skew", VEC_ALICE, ra,
               intro_from(in, ra, &r, VEC_EXPIRES + TF_PROTO_SKEW_DEFAULT + 1), VEC_BOB,
               TF_E_SIGNED_LATE);
    tf_proto_buf_free(&r);
    /* Alice on both sides of an intro (two salts, two commitments). */
    struct vec_intro aa;
    CHECK(vec_intro_build(&W, VEC_ALICE, VEC_ALICE, "real-estate-law", 0x51, &aa));
    intro_case(INVALID, "same party on both sides", VEC_ALICE, &aa.reply_a, copy(&aa.introduction),
               VEC_ALICE, TF_E_SAME_PARTY);
    vec_intro_free(&aa);
    intro_case(INVALID, "truncated", VEC_ALICE, ra, truncated(&in->introduction, 1), VEC_BOB,
               TF_E_TRUNCATED);
    intro_case(INVALID, "trailing byte", VEC_ALICE, ra, trailing(&in->introduction), VEC_BOB,
               TF_E_TRAILING);
}

static void gen_closes(const struct vec_intro *in)
{
    json_t *c = json_object();
    json_object_set_new(c, "connector", json_string("carol"));
    json_object_set_new(c, "close", vec_hex_buf(&in->close));
    json_object_set_new(c, "intro_id", vec_hex(in->intro_id, TF_PROTO_INTRO_ID_LEN));
    add(VALID, c, "close", "carol closes", TF_OK);
    c = json_object();
    json_object_set_new(c, "connector", json_string("mallory"));
    json_object_set_new(c, "close", vec_hex_buf(&in->close));
    add(INVALID, c, "close", "claimed by mallory", TF_E_BAD_SIG);
    struct tf_proto_buf r;
    struct tf_proto_statement st;
    CHECK(tf_proto_statement_parse(in->close.data, in->close.len, &st));
    CHECK(tf_proto_statement_sign(&W.id[VEC_CAROL], TF_PROTO_DOMAIN_REPLY, st.body.ptr, st.body.len,
                                  &r));
    c = json_object();
    json_object_set_new(c, "connector", json_string("carol"));
    json_object_set_new(c, "close", vec_hex_buf(&r));
    add(INVALID, c, "close", "signed in the reply domain", TF_E_BAD_SIG);
    tf_proto_buf_free(&r);
}

/* requests: requests and request closes (proto/request.h). */

/* A request body from asker to connector, as the encoder writes it, with
 * the given version, tag and times; signed by signer. */
static struct tf_proto_buf request_from(enum vec_who signer, enum vec_who asker,
                                        enum vec_who connector, uint64_t version, const char *tag,
                                        uint64_t created, uint64_t expires,
                                        enum tf_proto_domain domain)
{
    struct tf_proto_mp_writer w;
    uint8_t nonce[TF_PROTO_REQUEST_NONCE_LEN];
    memset(nonce, 0x5a, sizeof nonce);
    tf_proto_mp_writer_init(&w);
    tf_proto_mp_write_array(&w, 8);
    tf_proto_mp_write_uint(&w, version);
    tf_proto_mp_write_bin(&w, W.id[asker].sign_pk, TF_PROTO_KEY_LEN);
    tf_proto_mp_write_bin(&w, W.id[connector].sign_pk, TF_PROTO_KEY_LEN);
    wtext(&w, tag);
    wtext(&w, "buying a flat");
    tf_proto_mp_write_uint(&w, created);
    tf_proto_mp_write_uint(&w, expires);
    tf_proto_mp_write_bin(&w, nonce, sizeof nonce);
    return sign_body(signer, domain, &w);
}

static void request_case(json_t *section, const char *name, enum vec_who from,
                         enum vec_who recipient, uint64_t now, struct tf_proto_buf req, int expect)
{
    json_t *c = json_object();
    json_object_set_new(c, "from", json_string(vec_name(from)));
    json_object_set_new(c, "recipient", json_string(vec_name(recipient)));
    json_object_set_new(c, "now", json_integer((json_int_t)now));
    json_object_set_new(c, "skew", json_integer(TF_PROTO_SKEW_DEFAULT));
    json_object_set_new(c, "request", vec_hex_buf(&req));
    if (expect == TF_OK) {
        struct tf_proto_request q;
        CHECK(tf_proto_request_decode(req.data, req.len, &q));
        json_object_set_new(c, "request_id", vec_hex(q.id, TF_PROTO_REQUEST_ID_LEN));
        json_object_set_new(c, "seeking", json_string("real-estate-law"));
    }
    add(section, c, "request", name, expect);
    tf_proto_buf_free(&req);
}

static void close_case(json_t *section, const char *name, enum vec_who signer, enum vec_who claimed,
                       uint64_t action, const uint8_t id[TF_PROTO_REQUEST_ID_LEN], int expect)
{
    struct tf_proto_mp_writer w;
    tf_proto_mp_writer_init(&w);
    tf_proto_mp_write_array(&w, 4);
    tf_proto_mp_write_uint(&w, 1);
    tf_proto_mp_write_bin(&w, id, TF_PROTO_REQUEST_ID_LEN);
    tf_proto_mp_write_uint(&w, action);
    tf_proto_mp_write_uint(&w, VEC_NOW);
    struct tf_proto_buf b = sign_body(signer, TF_PROTO_DOMAIN_REQUEST_CLOSE, &w);
    json_t *c = json_object();
    json_object_set_new(c, "signer", json_string(vec_name(claimed)));
    json_object_set_new(c, "request_close", vec_hex_buf(&b));
    if (expect == TF_OK) {
        json_object_set_new(c, "request_id", vec_hex(id, TF_PROTO_REQUEST_ID_LEN));
        json_object_set_new(c, "action", json_integer((json_int_t)action));
    }
    add(section, c, "request_close", name, expect);
    tf_proto_buf_free(&b);
}

static void gen_requests(void)
{
    const enum tf_proto_domain R = TF_PROTO_DOMAIN_REQUEST;
    const uint64_t max = TF_PROTO_REQUEST_EXPIRES_MAX_S;
    struct tf_proto_buf good = request_from(VEC_BOB, VEC_BOB, VEC_CAROL, 1, "real-estate-law",
                                            VEC_CREATED, VEC_EXPIRES, R);
    struct tf_proto_request q;
    CHECK(tf_proto_request_decode(good.data, good.len, &q));
    request_case(VALID, "bob asks carol", VEC_BOB, VEC_CAROL, VEC_NOW, copy(&good), TF_OK);
    request_case(VALID, "lifetime of exactly 90 days", VEC_BOB, VEC_CAROL, VEC_NOW,
                 request_from(VEC_BOB, VEC_BOB, VEC_CAROL, 1, "real-estate-law", VEC_CREATED,
                              VEC_CREATED + max, R),
                 TF_OK);
    request_case(INVALID, "signed by mallory as bob", VEC_BOB, VEC_CAROL, VEC_NOW,
                 request_from(VEC_MALLORY, VEC_BOB, VEC_CAROL, 1, "real-estate-law", VEC_CREATED,
                              VEC_EXPIRES, R),
                 TF_E_BAD_SIG);
    request_case(INVALID, "signed in the proposal domain", VEC_BOB, VEC_CAROL, VEC_NOW,
                 request_from(VEC_BOB, VEC_BOB, VEC_CAROL, 1, "real-estate-law", VEC_CREATED,
                              VEC_EXPIRES, TF_PROTO_DOMAIN_PROPOSAL),
                 TF_E_BAD_SIG);
    request_case(INVALID, "bob's request relayed by dave", VEC_DAVE, VEC_CAROL, VEC_NOW,
                 copy(&good), TF_E_KEY_MISMATCH);
    request_case(INVALID, "bob's request to carol, received by dave", VEC_BOB, VEC_DAVE, VEC_NOW,
                 copy(&good), TF_E_NOT_FOR_ME);
    request_case(INVALID, "one second after expiry", VEC_BOB, VEC_CAROL, VEC_EXPIRES + 1,
                 copy(&good), TF_E_EXPIRED);
    request_case(INVALID, "created beyond the skew", VEC_BOB, VEC_CAROL,
                 VEC_CREATED - TF_PROTO_SKEW_DEFAULT - 1, copy(&good), TF_E_FROM_FUTURE);
    request_case(INVALID, "version 2", VEC_BOB, VEC_CAROL, VEC_NOW,
                 request_from(VEC_BOB, VEC_BOB, VEC_CAROL, 2, "real-estate-law", VEC_CREATED,
                              VEC_EXPIRES, R),
                 TF_E_VERSION);
    request_case(
        INVALID, "seeking is not a tag", VEC_BOB, VEC_CAROL, VEC_NOW,
        request_from(VEC_BOB, VEC_BOB, VEC_CAROL, 1, "Real Estate", VEC_CREATED, VEC_EXPIRES, R),
        TF_E_BAD_VALUE);
    request_case(INVALID, "expires at its creation", VEC_BOB, VEC_CAROL, VEC_NOW,
                 request_from(VEC_BOB, VEC_BOB, VEC_CAROL, 1, "real-estate-law", VEC_CREATED,
                              VEC_CREATED, R),
                 TF_E_BAD_VALUE);
    request_case(INVALID, "lifetime of 90 days and a second", VEC_BOB, VEC_CAROL, VEC_NOW,
                 request_from(VEC_BOB, VEC_BOB, VEC_CAROL, 1, "real-estate-law", VEC_CREATED,
                              VEC_CREATED + max + 1, R),
                 TF_E_BAD_VALUE);
    request_case(INVALID, "truncated", VEC_BOB, VEC_CAROL, VEC_NOW, truncated(&good, 1),
                 TF_E_TRUNCATED);
    request_case(INVALID, "trailing byte", VEC_BOB, VEC_CAROL, VEC_NOW, trailing(&good),
                 TF_E_TRAILING);
    close_case(VALID, "carol declines", VEC_CAROL, VEC_CAROL, 1, q.id, TF_OK);
    close_case(VALID, "bob withdraws", VEC_BOB, VEC_BOB, 0, q.id, TF_OK);
    close_case(INVALID, "claimed by mallory", VEC_CAROL, VEC_MALLORY, 1, q.id, TF_E_BAD_SIG);
    close_case(INVALID, "action 2", VEC_CAROL, VEC_CAROL, 2, q.id, TF_E_BAD_VALUE);
    tf_proto_buf_free(&good);
}

static void gen_chain(json_t *root, const struct vec_intro *in)
{
    json_t *c = json_object();
    json_object_set_new(c, "core", vec_hex_buf(&in->core));
    json_object_set_new(c, "intro_id", vec_hex(in->intro_id, TF_PROTO_INTRO_ID_LEN));
    json_object_set_new(c, "salt_a", vec_hex(in->salt_a, TF_PROTO_SALT_LEN));
    json_object_set_new(c, "salt_b", vec_hex(in->salt_b, TF_PROTO_SALT_LEN));
    json_object_set_new(c, "proposal_a", vec_hex_buf(&in->proposal_a));
    json_object_set_new(c, "proposal_b", vec_hex_buf(&in->proposal_b));
    json_object_set_new(c, "reply_a", vec_hex_buf(&in->reply_a));
    json_object_set_new(c, "reply_b", vec_hex_buf(&in->reply_b));
    json_object_set_new(c, "introduction", vec_hex_buf(&in->introduction));
    json_object_set_new(c, "close", vec_hex_buf(&in->close));
    json_object_set_new(root, "chain", c);
}

/* direct (issue 17): DIRECT link messages (docs/PROTOCOL.md §9), in a file
 * of their own (gen_vectors --direct > tests/vectors/twofold-direct-v1.json)
 * so that the published twofold-v1.json stays as it was.  Deterministic:
 * nothing is sealed or signed. */

/* link: a whole link message (taken). */
static void direct_case_link(json_t *section, const char *name, struct tf_proto_buf *link,
                             uint64_t now, int expect)
{
    json_t *c = json_object();
    json_object_set_new(c, "now", json_integer((json_int_t)now));
    json_object_set_new(c, "link", vec_hex_buf(link));
    if (expect == TF_OK) {
        struct tf_proto_link_msg m;
        struct tf_proto_envelope_direct d;
        CHECK(tf_proto_link_decode(link->data, link->len, &m));
        CHECK(tf_proto_envelope_direct_decode(m.envelope.ptr, m.envelope.len, &d));
        json_object_set_new(c, "msg_id", vec_hex(d.msg_id, sizeof d.msg_id));
        json_object_set_new(c, "expires", json_integer((json_int_t)d.expires));
        json_object_set_new(c, "type", json_integer(d.type));
        json_object_set_new(c, "body", vec_hex(d.body.ptr, d.body.len));
        json_object_set_new(c, "padded_len", json_integer((json_int_t)m.envelope.len));
    }
    add(section, c, "direct", name, expect);
    tf_proto_buf_free(link);
}

static void direct_case(json_t *section, const char *name, const struct tf_proto_buf *content,
                        uint64_t now, int expect)
{
    struct tf_proto_buf link;
    CHECK(tf_proto_link_envelope_as(TF_PROTO_LINK_DIRECT, content->data, content->len, &link));
    direct_case_link(section, name, &link, now, expect);
}

static struct tf_proto_buf direct_of(uint16_t type, const char *body, uint64_t expires)
{
    struct tf_proto_buf d;
    CHECK(tf_proto_envelope_direct_encode(MSG_ID, expires, type, (const uint8_t *)body,
                                          strlen(body), &d));
    return d;
}

static void gen_direct(void)
{
    const uint64_t exp = VEC_NOW + 3600;
    static const char note[] = "Hello Bob, this is Alice.";
    struct tf_proto_buf d = direct_of(TF_PROTO_MSG_TYPE_NOTE, note, exp);
    /* fixarray, bin8 msg_id, uint32 expires, fixint type, bin8 body */
    const size_t inner_len = 1 + 2 + TF_PROTO_MSG_ID_LEN + 5 + 1 + 2 + strlen(note);
    direct_case(VALID, "note from alice to bob", &d, VEC_NOW, TF_OK);
    direct_case(VALID, "read at the second of expiry", &d, exp, TF_OK);
    direct_case(INVALID, "expired", &d, exp + 1, TF_E_EXPIRED);
    struct tf_proto_buf bad = copy(&d);
    bad.data[bad.len - 1] = 0x01;
    direct_case(INVALID, "last padding byte not zero", &bad, VEC_NOW, TF_E_TRAILING);
    bad.data[bad.len - 1] = 0x00;
    bad.data[inner_len] = 0x80;
    direct_case(INVALID, "first padding byte not zero", &bad, VEC_NOW, TF_E_TRAILING);
    tf_proto_buf_free(&bad);
    bad = truncated(&d, 1);
    direct_case(INVALID, "one byte short of its class", &bad, VEC_NOW, TF_E_BAD_LENGTH);
    tf_proto_buf_free(&bad);
    bad = truncated(&d, d.len - (inner_len));
    direct_case(INVALID, "not padded", &bad, VEC_NOW, TF_E_BAD_LENGTH);
    tf_proto_buf_free(&bad);
    bad = copy(&d); /* copy() leaves a byte of room */
    bad.data[bad.len++] = 0x00;
    direct_case(INVALID, "one zero byte past its class", &bad, VEC_NOW, TF_E_BAD_LENGTH);
    tf_proto_buf_free(&bad);
    /* The same inner padded to 8192: a class, but not its own. */
    bad.data = calloc(1, 8192);
    if (bad.data == NULL)
        exit(1);
    bad.len = 8192;
    memcpy(bad.data, d.data, inner_len);
    direct_case(INVALID, "padded to a larger class than its own", &bad, VEC_NOW, TF_E_BAD_LENGTH);
    tf_proto_buf_free(&bad);
    bad = copy(&d);
    bad.data[1 + 2 + TF_PROTO_MSG_ID_LEN + 5] = 10; /* the type */
    direct_case(INVALID, "unknown type 10", &bad, VEC_NOW, TF_E_BAD_VALUE);
    tf_proto_buf_free(&bad);
    bad = copy(&d);
    /* msg_id: bin8 of 15 bytes (its first byte dropped), one more zero */
    memmove(bad.data + 3, bad.data + 4, bad.len - 4);
    bad.data[2] = 15;
    bad.data[bad.len - 1] = 0;
    direct_case(INVALID, "msg id of 15 bytes", &bad, VEC_NOW, TF_E_BAD_LENGTH);
    tf_proto_buf_free(&bad);
    /* The link message around it: trailing bytes, and over the largest class. */
    struct tf_proto_buf link;
    CHECK(tf_proto_link_envelope_as(TF_PROTO_LINK_DIRECT, d.data, d.len, &link));
    bad = trailing(&link);
    direct_case_link(INVALID, "link message with a trailing byte", &bad, VEC_NOW, TF_E_TRAILING);
    tf_proto_buf_free(&link);
    CHECK(tf_proto_link_envelope_as(TF_PROTO_LINK_ENVELOPE, d.data, d.len, &link));
    link.data[1] = TF_PROTO_LINK_DIRECT;
    direct_case_link(VALID, "note, as the same bytes as an ENVELOPE but of type 10", &link, VEC_NOW,
                     TF_OK);
    tf_proto_buf_free(&d);
    uint8_t *big = calloc(1, TF_PROTO_ENVELOPE_PAD_MAX + 1);
    if (big == NULL)
        exit(1);
    CHECK(tf_proto_link_envelope_as(TF_PROTO_LINK_ENVELOPE, big, TF_PROTO_ENVELOPE_PAD_MAX + 1,
                                    &link));
    free(big);
    link.data[1] = TF_PROTO_LINK_DIRECT;
    direct_case_link(INVALID, "content of 53249 bytes", &link, VEC_NOW, TF_E_TOO_LONG);
    /* Every type, and the classes: an introduction-sized note fills 8192. */
    static const char close_body[] = "a close";
    d = direct_of(TF_PROTO_MSG_TYPE_CLOSE, close_body, exp);
    direct_case(VALID, "a close, same length as the note", &d, VEC_NOW, TF_OK);
    tf_proto_buf_free(&d);
    char *long_note = malloc(5001);
    if (long_note == NULL)
        exit(1);
    memset(long_note, 'n', 5000);
    long_note[5000] = '\0';
    d = direct_of(TF_PROTO_MSG_TYPE_NOTE, long_note, exp);
    free(long_note);
    direct_case(VALID, "a note of 5000 bytes: class 8192", &d, VEC_NOW, TF_OK);
    tf_proto_buf_free(&d);
}

/* Adds the cases to root, prints it and frees it. */
static void print_doc(json_t *root)
{
    json_object_set_new(root, "valid", VALID);
    json_object_set_new(root, "invalid", INVALID);
    json_dumpf(root, stdout, JSON_INDENT(1) | JSON_PRESERVE_ORDER);
    putchar('\n');
    json_decref(root);
}

int main(int argc, char **argv)
{
    if (sodium_init() < 0)
        return 1;
    CHECK(vec_world_init(&W));
    if (argc == 2 && strcmp(argv[1], "--direct") == 0) {
        json_t *root = json_object();
        json_object_set_new(
            root, "description",
            json_string("twofold v1 test vectors for DIRECT link messages (the \"direct\" HELLO "
                        "feature): see docs/PROTOCOL.md section 9. Each case is a whole link "
                        "message read at `now`; each invalid case names the first error a "
                        "reader must report."));
        json_object_set_new(root, "generator", json_string("tests/vectors/gen_vectors.c --direct"));
        json_object_set_new(root, "now", json_integer(VEC_NOW));
        gen_identities(root);
        VALID = json_array();
        INVALID = json_array();
        gen_direct();
        print_doc(root);
        vec_world_deinit(&W);
        return 0;
    }
    struct vec_intro ab, ad, other;
    CHECK(vec_intro_build(&W, VEC_ALICE, VEC_BOB, "real-estate-law", 0x31, &ab));
    CHECK(vec_intro_build(&W, VEC_ALICE, VEC_DAVE, "real-estate-law", 0x31, &ad));
    CHECK(vec_intro_build(&W, VEC_ALICE, VEC_BOB, "tax-law", 0x61, &other));

    json_t *root = json_object();
    json_object_set_new(root, "description",
                        json_string("twofold v1 test vectors: see docs/PROTOCOL.md. Each invalid "
                                    "case names the first error a verifier must report."));
    json_object_set_new(root, "generator", json_string("tests/vectors/gen_vectors.c"));
    json_object_set_new(root, "now", json_integer(VEC_NOW));
    json_object_set_new(root, "skew", json_integer(TF_PROTO_SKEW_DEFAULT));
    gen_identities(root);
    VALID = json_array();
    INVALID = json_array();
    gen_text_ids();
    gen_cards();
    gen_envelopes();
    gen_proposals(&ab);
    gen_replies(&ab, &other);
    gen_introductions(&ab, &ad);
    gen_closes(&ab);
    gen_requests(); /* requests */
    gen_chain(root, &ab);
    print_doc(root);
    vec_intro_free(&ab);
    vec_intro_free(&ad);
    vec_intro_free(&other);
    vec_world_deinit(&W);
    return 0;
}
