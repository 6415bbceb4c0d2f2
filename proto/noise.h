/* SPDX-License-Identifier: MIT */
/*
 * Noise handshakes (Noise Protocol Framework, revision 34):
 * Noise_XX_25519_ChaChaPoly_SHA256, which twofold uses, and
 * Noise_IK_25519_ChaChaPoly_SHA256 for completeness.  Built only from
 * libsodium: crypto_scalarmult (X25519), crypto_aead_chacha20poly1305_ietf
 * (nonce = 4 zero bytes || 64-bit little-endian counter), crypto_hash_sha256
 * and crypto_auth_hmacsha256 (HMAC, and HKDF on top of it).
 *
 * The module is pure: no I/O, clocks or randomness.  The caller supplies the
 * ephemeral secret key as bytes (fresh from randombytes_buf for every
 * handshake; tests inject fixed keys to replay published vectors).
 *
 * XX, with the roles and what each message carries:
 *   1. initiator -> responder:  e                  payload in CLEAR, unauthenticated
 *   2. responder -> initiator:  e, ee, s, es       payload encrypted
 *   3. initiator -> responder:  s, se              payload encrypted
 * Message 1's payload is sent in the clear: twofold leaves it empty.  After
 * reading message 2 the initiator knows the responder's static key (and the
 * payload is authenticated by it); after reading message 3 the responder knows
 * the initiator's.  The caller checks the remote static key against the card
 * carried in the payload (tf_proto_noise_handshake_remote_static).
 *
 * A DH with a low-order public key (crypto_scalarmult returns -1) fails the
 * handshake with TF_E_LOW_ORDER.  In XX the responder's first DH happens when
 * it WRITES message 2, so a low-order ephemeral in message 1 is reported by
 * tf_proto_noise_handshake_write, not by the read of message 1.  Likewise
 * message 1 carries no MAC: tampering with it (or a prologue mismatch) is
 * detected when the initiator reads message 2.
 *
 * Sequence:
 *   tf_proto_noise_handshake_init
 *   write/read alternately, as tf_proto_noise_handshake_state says,
 *   tf_proto_noise_handshake_split when the state is SPLIT,
 *   tf_proto_noise_handshake_deinit (always, also after a failure),
 *   tf_proto_noise_cipher_encrypt/decrypt for transport messages,
 *   tf_proto_noise_cipher_deinit for both cipher states.
 *
 * Every message, handshake or transport, is at most TF_PROTO_NOISE_MSG_MAX
 * bytes, so a buffer of that size is always large enough for any output.
 */
#ifndef TF_PROTO_NOISE_H
#define TF_PROTO_NOISE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "proto/err.h"

/* The twofold prologue (16 bytes, no NUL): both sides pass it, so peers of
 * different protocol versions fail the handshake. */
#define TF_PROTO_NOISE_PROLOGUE "twofold/v1/noise"
#define TF_PROTO_NOISE_PROLOGUE_LEN (sizeof TF_PROTO_NOISE_PROLOGUE - 1)

#define TF_PROTO_NOISE_KEY_LEN 32  /* X25519 keys and ChaChaPoly keys */
#define TF_PROTO_NOISE_HASH_LEN 32 /* SHA-256 */
#define TF_PROTO_NOISE_TAG_LEN 16  /* Poly1305 */
/* Largest Noise message (handshake or transport), tag included. */
#define TF_PROTO_NOISE_MSG_MAX 65535
/* Largest transport plaintext. */
#define TF_PROTO_NOISE_PLAINTEXT_MAX (TF_PROTO_NOISE_MSG_MAX - TF_PROTO_NOISE_TAG_LEN)

enum tf_proto_noise_pattern {
    TF_PROTO_NOISE_PATTERN_XX, /* the one twofold uses */
    TF_PROTO_NOISE_PATTERN_IK, /* 1-RTT, but message 1 is replayable and KCI-prone */
};

enum tf_proto_noise_role {
    TF_PROTO_NOISE_ROLE_INITIATOR,
    TF_PROTO_NOISE_ROLE_RESPONDER,
};

enum tf_proto_noise_state {
    TF_PROTO_NOISE_STATE_NONE,   /* zeroed, or after _deinit */
    TF_PROTO_NOISE_STATE_WRITE,  /* next call: tf_proto_noise_handshake_write */
    TF_PROTO_NOISE_STATE_READ,   /* next call: tf_proto_noise_handshake_read */
    TF_PROTO_NOISE_STATE_SPLIT,  /* handshake complete: call _split */
    TF_PROTO_NOISE_STATE_DONE,   /* split done; only _hash, _remote_static, _deinit */
    TF_PROTO_NOISE_STATE_FAILED, /* an error ended the handshake; secrets wiped */
};

/* One direction of the transport (a Noise CipherState).  The fields are
 * private: k is secret; wipe with tf_proto_noise_cipher_deinit.  n is the
 * number of messages processed so far in this direction. */
struct tf_proto_noise_cipher {
    uint8_t k[TF_PROTO_NOISE_KEY_LEN];
    uint64_t n;
    bool has_key;
};

/*
 * Handshake state, in storage the caller provides (a peer struct, or
 * sodium_malloc'ed memory to keep it out of swap and core dumps).  The fields
 * are private: use the functions below.  ck, cs, s_sk and e_sk are secret;
 * they are wiped by _split (which no longer needs them), on any failure, and
 * by _deinit, which the caller must call on every path.  The struct holds no
 * pointers, so it may be moved with memcpy (the source then needs _deinit).
 */
struct tf_proto_noise_handshake {
    enum tf_proto_noise_state state;
    enum tf_proto_noise_pattern pattern;
    enum tf_proto_noise_role role;
    unsigned msg_index; /* next message of the pattern, from 0 */
    bool has_rs;
    bool has_re;
    struct tf_proto_noise_cipher cs;
    uint8_t ck[TF_PROTO_NOISE_HASH_LEN];
    uint8_t h[TF_PROTO_NOISE_HASH_LEN];
    uint8_t s_sk[TF_PROTO_NOISE_KEY_LEN];
    uint8_t s_pk[TF_PROTO_NOISE_KEY_LEN];
    uint8_t e_sk[TF_PROTO_NOISE_KEY_LEN];
    uint8_t e_pk[TF_PROTO_NOISE_KEY_LEN];
    uint8_t rs[TF_PROTO_NOISE_KEY_LEN];
    uint8_t re[TF_PROTO_NOISE_KEY_LEN];
};

/* Parameters of tf_proto_noise_handshake_init.  Every pointer is borrowed for
 * the call only: the keys are copied, and the caller wipes its own copies. */
struct tf_proto_noise_config {
    enum tf_proto_noise_pattern pattern;
    enum tf_proto_noise_role role;
    /* Prologue bytes, identical on both sides (TF_PROTO_NOISE_PROLOGUE in
     * twofold); may be NULL when prologue_len is 0. */
    const uint8_t *prologue;
    size_t prologue_len;
    /* Local static X25519 secret key (tf_proto_identity_noise_sk).  Required. */
    const uint8_t *s_sk;
    /* Its public key, when the caller already has it (a node computes it
     * once at start): saves one X25519 per handshake.  NULL: computed from
     * s_sk.  The caller vouches that it matches s_sk; a wrong one makes
     * every peer fail the handshake (TF_E_DECRYPT on their side). */
    const uint8_t *s_pk;
    /* Ephemeral X25519 secret key: 32 fresh random bytes, never reused.
     * Required. */
    const uint8_t *e_sk;
    /* IK initiator only: the responder's static public key, known in advance.
     * Must be NULL otherwise. */
    const uint8_t *rs_pk;
};

/* Name of a state ("write", "read", ...), for logs.  Static string. */
const char *tf_proto_noise_state_name(enum tf_proto_noise_state state);

/* The Noise protocol name, e.g. "Noise_XX_25519_ChaChaPoly_SHA256".  Static
 * string; NULL for an unknown pattern. */
const char *tf_proto_noise_protocol_name(enum tf_proto_noise_pattern pattern);

/* Starts a handshake.  Any previous content of *hs is overwritten (not wiped:
 * _deinit it first).  Returns TF_OK (state WRITE for the initiator, READ for
 * the responder) or TF_E_INVALID_ARG for a bad config (missing key, rs_pk given
 * or missing for the pattern and role, unknown enum value); on failure *hs is
 * left in state NONE, holding no secrets. */
TF_MUST_CHECK int tf_proto_noise_handshake_init(struct tf_proto_noise_handshake *hs,
                                                const struct tf_proto_noise_config *cfg);

/* Wipes all of *hs and leaves it in state NONE.  Safe on a zeroed struct and
 * idempotent. */
void tf_proto_noise_handshake_deinit(struct tf_proto_noise_handshake *hs);

/* The current state. */
enum tf_proto_noise_state tf_proto_noise_handshake_state(const struct tf_proto_noise_handshake *hs);

/*
 * Writes the next handshake message carrying payload[0..payload_len) (payload
 * may be NULL when payload_len is 0) into out[0..out_cap); *out_len receives
 * its length.  out must not overlap payload.
 *
 * Returns TF_OK, or:
 *   TF_E_BAD_STATE    not in state WRITE; TF_E_INVALID_ARG: out_cap too small;
 *   TF_E_TOO_LONG     the message would exceed TF_PROTO_NOISE_MSG_MAX;
 *                     (these two leave the state unchanged)
 *   TF_E_LOW_ORDER    a DH gave the all-zero output (low-order remote key);
 *   TF_E_NONCE_EXHAUSTED nonce exhausted (cannot happen in a handshake);
 *                     (these fail the handshake: state FAILED, secrets wiped)
 * On failure *out_len is 0 and out holds nothing useful.
 */
TF_MUST_CHECK int tf_proto_noise_handshake_write(struct tf_proto_noise_handshake *hs,
                                                 const uint8_t *payload, size_t payload_len,
                                                 uint8_t *out, size_t out_cap, size_t *out_len);

/*
 * Reads the next handshake message msg[0..msg_len) and writes its payload to
 * payload[0..payload_cap) (msg_len bytes always suffice); *payload_len
 * receives its length.  payload must not overlap msg.  The payload is a copy:
 * msg may be reused afterwards.
 *
 * Returns TF_OK, or:
 *   TF_E_BAD_STATE    not in state READ (state unchanged);
 * and, failing the handshake (state FAILED, secrets wiped):
 *   TF_E_INVALID_ARG  payload_cap is too small;
 *   TF_E_TRUNCATED    msg is shorter than the pattern requires;
 *   TF_E_TOO_LONG     msg_len > TF_PROTO_NOISE_MSG_MAX;
 *   TF_E_DECRYPT      a MAC does not verify (tampering, wrong prologue, or a
 *                     peer that is not who the keys say);
 *   TF_E_LOW_ORDER    a DH gave the all-zero output (low-order remote key).
 * On failure *payload_len is 0 and payload is zeroed.
 */
TF_MUST_CHECK int tf_proto_noise_handshake_read(struct tf_proto_noise_handshake *hs,
                                                const uint8_t *msg, size_t msg_len,
                                                uint8_t *payload, size_t payload_cap,
                                                size_t *payload_len);

/* The remote static public key (TF_PROTO_NOISE_KEY_LEN bytes, borrowed; valid
 * until the next call on hs), or NULL if it has not been received yet (or the
 * handshake failed).  In XX the initiator has it after reading message 2 and
 * the responder after reading message 3; the payload of that same message is
 * the first one authenticated by that key. */
const uint8_t *tf_proto_noise_handshake_remote_static(const struct tf_proto_noise_handshake *hs);

/* Copies the handshake hash h (channel binding; identical on both sides) once
 * the handshake is complete (state SPLIT or DONE).  TF_OK or
 * TF_E_BAD_STATE. */
TF_MUST_CHECK int tf_proto_noise_handshake_hash(const struct tf_proto_noise_handshake *hs,
                                                uint8_t out[static TF_PROTO_NOISE_HASH_LEN]);

/* Derives the two transport cipher states (Noise Split) into caller storage:
 * send encrypts what this side sends, recv decrypts what it receives.  Wipes
 * the handshake secrets and enters state DONE.  TF_OK, or TF_E_BAD_STATE if
 * not in state SPLIT (send and recv untouched). */
TF_MUST_CHECK int tf_proto_noise_handshake_split(struct tf_proto_noise_handshake *hs,
                                                 struct tf_proto_noise_cipher *send,
                                                 struct tf_proto_noise_cipher *recv);

/* Encrypts one transport message: out receives len + TF_PROTO_NOISE_TAG_LEN
 * bytes (*out_len).  out may equal plain (in place) but must not otherwise
 * overlap it.  Returns TF_OK, TF_E_TOO_LONG (len > TF_PROTO_NOISE_PLAINTEXT_MAX),
 * TF_E_INVALID_ARG (no key, or out_cap too small) or TF_E_NONCE_EXHAUSTED (2^64 - 1
 * messages sent: open a new session).  On failure the counter is unchanged. */
TF_MUST_CHECK int tf_proto_noise_cipher_encrypt(struct tf_proto_noise_cipher *cs,
                                                const uint8_t *plain, size_t len, uint8_t *out,
                                                size_t out_cap, size_t *out_len);

/* Decrypts one transport message: out receives len - TF_PROTO_NOISE_TAG_LEN
 * bytes (*out_len).  out may equal msg (in place) but must not otherwise
 * overlap it.  Returns TF_OK, TF_E_TRUNCATED (shorter than the tag),
 * TF_E_TOO_LONG (len > TF_PROTO_NOISE_MSG_MAX), TF_E_INVALID_ARG (no key, or
 * out_cap too small), TF_E_NONCE_EXHAUSTED (counter exhausted) or TF_E_DECRYPT (MAC
 * does not verify; out is zeroed).  On failure the counter is unchanged, but a
 * session that saw a bad message should be closed: messages are never
 * reordered or lost on a TCP stream. */
TF_MUST_CHECK int tf_proto_noise_cipher_decrypt(struct tf_proto_noise_cipher *cs,
                                                const uint8_t *msg, size_t len, uint8_t *out,
                                                size_t out_cap, size_t *out_len);

/* Wipes a cipher state.  Safe on a zeroed struct and idempotent. */
void tf_proto_noise_cipher_deinit(struct tf_proto_noise_cipher *cs);

#endif
