/* SPDX-License-Identifier: MIT */
/*
 * Identities: one 32-byte secret seed from which three key pairs are derived
 * (Ed25519 for signatures, X25519 for the Noise static key, X25519 for sealed
 * boxes), text ids for people to type and paste, and short fingerprints.
 *
 * Secret key bytes live only in sodium_malloc memory owned by
 * struct tf_proto_identity and are wiped by tf_proto_identity_deinit.
 */
#ifndef TF_PROTO_IDENTITY_H
#define TF_PROTO_IDENTITY_H

#include <stddef.h>
#include <stdint.h>

#include "proto/err.h"

#define TF_PROTO_KEY_LEN 32
#define TF_PROTO_SIG_LEN 64
#define TF_PROTO_SEED_LEN 32
/* "tf1" + 52 data characters + 6 checksum characters. */
#define TF_PROTO_TEXT_ID_LEN 61
#define TF_PROTO_TEXT_ID_SIZE (TF_PROTO_TEXT_ID_LEN + 1)
/* "xxxx-xxxx-xxxx-xxxx" */
#define TF_PROTO_FINGERPRINT_SIZE 20

struct tf_proto_identity_secrets;

struct tf_proto_identity {
    uint8_t sign_pk[TF_PROTO_KEY_LEN];     /* Ed25519: the identity itself */
    uint8_t noise_pk[TF_PROTO_KEY_LEN];    /* X25519: Noise static key */
    uint8_t box_pk[TF_PROTO_KEY_LEN];      /* X25519: sealed boxes */
    struct tf_proto_identity_secrets *sec; /* sodium_malloc'ed, owned */
};

/* Derives every key from seed (borrowed; the caller wipes its copy).  Returns
 * TF_OK or TF_E_NOMEM.  On failure *id holds no secrets. */
TF_MUST_CHECK int tf_proto_identity_from_seed(struct tf_proto_identity *id,
                                              const uint8_t seed[static TF_PROTO_SEED_LEN]);

/* Wipes and frees the secrets.  Safe on a zeroed or already deinit'ed id. */
void tf_proto_identity_deinit(struct tf_proto_identity *id);

/* Ed25519 detached signature over msg (no domain tag added: callers use
 * tf_proto_statement_sign, which adds one). */
TF_MUST_CHECK int tf_proto_identity_sign(const struct tf_proto_identity *id, const uint8_t *msg,
                                         size_t len, uint8_t sig[static TF_PROTO_SIG_LEN]);

/* Opens a crypto_box_seal ciphertext addressed to this identity's box key.
 * m must have room for clen - crypto_box_SEALBYTES bytes.  TF_E_BAD_SEAL if
 * it does not open. */
TF_MUST_CHECK int tf_proto_identity_unseal(const struct tf_proto_identity *id, uint8_t *m,
                                           const uint8_t *c, size_t clen);

/* The Noise static secret key (32 bytes, borrowed; valid until deinit).  Only
 * the Noise handshake may call this. */
const uint8_t *tf_proto_identity_noise_sk(const struct tf_proto_identity *id);

/* Text id: "tf1" followed by the bech32m (BIP-350) encoding of the Ed25519
 * public key.  The checksum detects any error in up to four characters. */
void tf_proto_text_id_encode(const uint8_t pk[static TF_PROTO_KEY_LEN],
                             char out[static TF_PROTO_TEXT_ID_SIZE]);

/* Parses a text id (case-insensitive but not mixed case).  On failure returns
 * TF_E_BAD_PREFIX, TF_E_BAD_LENGTH, TF_E_MIXED_CASE, TF_E_BAD_CHAR (with the
 * 0-based offending position in *where if where is non-NULL) or
 * TF_E_BAD_CHECKSUM, and leaves pk untouched. */
TF_MUST_CHECK int tf_proto_text_id_decode(const char *text, size_t len,
                                          uint8_t pk[static TF_PROTO_KEY_LEN], size_t *where);

/* Short fingerprint for people comparing keys by eye: the first 8 bytes of
 * H("twofold/v1/fingerprint", pk) as four dash-separated groups of hex. */
void tf_proto_fingerprint(const uint8_t pk[static TF_PROTO_KEY_LEN],
                          char out[static TF_PROTO_FINGERPRINT_SIZE]);

#endif
