/* SPDX-License-Identifier: MIT */
/*
 * The deterministic cast and intro chain behind tests/vectors/twofold-v1.json:
 * fixed seeds, salts, times and notes, so that every signed object (all
 * Ed25519 signatures are deterministic) can be rebuilt byte for byte.
 */
#ifndef TF_TESTS_VECTORS_CHAIN_H
#define TF_TESTS_VECTORS_CHAIN_H

#include "proto/card.h"
#include "proto/envelope.h"
#include "proto/identity.h"
#include "proto/intro.h"

enum vec_who { VEC_CAROL, VEC_ALICE, VEC_BOB, VEC_DAVE, VEC_MALLORY, VEC_COUNT };

/* The vectors' clock: "now" for every check, and the intro's times. */
#define VEC_NOW 1800000000u
#define VEC_CREATED (VEC_NOW - 100u)
#define VEC_EXPIRES (VEC_CREATED + 14u * 86400u)

struct vec_world {
    struct tf_proto_identity id[VEC_COUNT];
    struct tf_proto_buf card[VEC_COUNT]; /* signed cards */
};

/* Seed of each member: 32 bytes of (who + 1). */
void vec_seed(enum vec_who who, uint8_t seed[static TF_PROTO_SEED_LEN]);
const char *vec_name(enum vec_who who);

int vec_world_init(struct vec_world *w);
void vec_world_deinit(struct vec_world *w);

struct vec_intro {
    struct tf_proto_buf core;
    uint8_t intro_id[TF_PROTO_INTRO_ID_LEN];
    uint8_t salt_a[TF_PROTO_SALT_LEN];
    uint8_t salt_b[TF_PROTO_SALT_LEN];
    struct tf_proto_buf proposal_a, proposal_b;
    struct tf_proto_buf reply_a, reply_b; /* both accepts */
    struct tf_proto_buf introduction;
    struct tf_proto_buf close;
};

/* Builds the whole chain of one intro by Carol between a and b on topic, with
 * salts derived from salt_byte.  Returns TF_OK or an error. */
int vec_intro_build(const struct vec_world *w, enum vec_who a, enum vec_who b, const char *topic,
                    uint8_t salt_byte, struct vec_intro *out);
void vec_intro_free(struct vec_intro *in);

/* Signs a reply for an intro (used for declines and variants). */
int vec_reply(const struct vec_world *w, enum vec_who who, const uint8_t *intro_id,
              enum tf_proto_side side, enum tf_proto_decision decision, const char *text,
              uint64_t time, struct tf_proto_buf *out);

/* Signs an introduction from its parts (used for malicious variants). */
int vec_introduction(const struct vec_world *w, enum vec_who signer, const struct vec_intro *in,
                     const struct tf_proto_buf *core, const uint8_t *intro_id,
                     const uint8_t *salt_a, const uint8_t *salt_b,
                     const struct tf_proto_buf *reply_a, const struct tf_proto_buf *reply_b,
                     uint64_t time, struct tf_proto_buf *out);

#endif
