/* SPDX-License-Identifier: MIT */
/*
 * Noise handshake state machine (Noise Protocol Framework, revision 34),
 * written from the specification using libsodium primitives only.  Section
 * numbers in comments refer to that document.
 */
#include "proto/noise.h"

#include <assert.h>
#include <string.h>

#include <sodium.h>

static_assert(crypto_scalarmult_BYTES == TF_PROTO_NOISE_KEY_LEN, "DHLEN");
static_assert(crypto_scalarmult_SCALARBYTES == TF_PROTO_NOISE_KEY_LEN, "DH secret length");
static_assert(crypto_aead_chacha20poly1305_ietf_KEYBYTES == TF_PROTO_NOISE_KEY_LEN, "key length");
static_assert(crypto_aead_chacha20poly1305_ietf_NPUBBYTES == 12, "ChaChaPoly nonce length");
static_assert(crypto_aead_chacha20poly1305_ietf_ABYTES == TF_PROTO_NOISE_TAG_LEN, "tag length");
static_assert(crypto_hash_sha256_BYTES == TF_PROTO_NOISE_HASH_LEN, "HASHLEN");
static_assert(crypto_auth_hmacsha256_BYTES == TF_PROTO_NOISE_HASH_LEN, "HMAC length");

/* Message pattern tokens (section 7). */
enum token {
    TOKEN_END,
    TOKEN_E,
    TOKEN_S,
    TOKEN_EE,
    TOKEN_ES,
    TOKEN_SE,
    TOKEN_SS,
};

/* The longest message of the supported patterns has four tokens. */
#define MAX_TOKENS 5
#define MAX_MESSAGES 3

struct pattern {
    const char *name;
    unsigned n_messages;
    bool responder_static_premessage; /* "<- s" before "..." */
    enum token messages[MAX_MESSAGES][MAX_TOKENS];
};

/* Messages alternate: even indices are sent by the initiator. */
static const struct pattern PATTERN_XX = {
    .name = "Noise_XX_25519_ChaChaPoly_SHA256",
    .n_messages = 3,
    .responder_static_premessage = false,
    .messages =
        {
            {TOKEN_E, TOKEN_END},
            {TOKEN_E, TOKEN_EE, TOKEN_S, TOKEN_ES, TOKEN_END},
            {TOKEN_S, TOKEN_SE, TOKEN_END},
        },
};

static const struct pattern PATTERN_IK = {
    .name = "Noise_IK_25519_ChaChaPoly_SHA256",
    .n_messages = 2,
    .responder_static_premessage = true,
    .messages =
        {
            {TOKEN_E, TOKEN_ES, TOKEN_S, TOKEN_SS, TOKEN_END},
            {TOKEN_E, TOKEN_EE, TOKEN_SE, TOKEN_END},
        },
};

static const struct pattern *pattern_get(enum tf_proto_noise_pattern p)
{
    switch (p) {
    case TF_PROTO_NOISE_PATTERN_XX:
        return &PATTERN_XX;
    case TF_PROTO_NOISE_PATTERN_IK:
        return &PATTERN_IK;
    }
    return NULL;
}

const char *tf_proto_noise_protocol_name(enum tf_proto_noise_pattern pattern)
{
    const struct pattern *p = pattern_get(pattern);
    return p == NULL ? NULL : p->name;
}

const char *tf_proto_noise_state_name(enum tf_proto_noise_state state)
{
    switch (state) {
    case TF_PROTO_NOISE_STATE_NONE:
        return "none";
    case TF_PROTO_NOISE_STATE_WRITE:
        return "write";
    case TF_PROTO_NOISE_STATE_READ:
        return "read";
    case TF_PROTO_NOISE_STATE_SPLIT:
        return "split";
    case TF_PROTO_NOISE_STATE_DONE:
        return "done";
    case TF_PROTO_NOISE_STATE_FAILED:
        return "failed";
    }
    return "unknown";
}

/* The only writer of hs->state.  proto/ does not log; the caller can log the
 * transition from tf_proto_noise_handshake_state before and after a call. */
static void enter_state(struct tf_proto_noise_handshake *hs, enum tf_proto_noise_state state)
{
    hs->state = state;
}

static void wipe_secrets(struct tf_proto_noise_handshake *hs)
{
    sodium_memzero(&hs->cs, sizeof hs->cs);
    sodium_memzero(hs->ck, sizeof hs->ck);
    sodium_memzero(hs->s_sk, sizeof hs->s_sk);
    sodium_memzero(hs->e_sk, sizeof hs->e_sk);
}

/* Any error in the middle of a message leaves h and ck in an unusable state
 * (section 5.3: the handshake cannot be resumed), so everything is wiped. */
static int fail(struct tf_proto_noise_handshake *hs, int rc)
{
    sodium_memzero(hs, sizeof *hs);
    enter_state(hs, TF_PROTO_NOISE_STATE_FAILED);
    return rc;
}

/* Bytes a MAC adds: none before the first DH, when k is still empty. */
static size_t tag_len(bool keyed)
{
    return keyed ? (size_t)TF_PROTO_NOISE_TAG_LEN : 0;
}

/* ---- CipherState (section 5.1) ------------------------------------------ */

/* ChaChaPoly nonce (section 12.3): 32 bits of zeros, then n little-endian. */
static void nonce_encode(uint8_t out[crypto_aead_chacha20poly1305_ietf_NPUBBYTES], uint64_t n)
{
    memset(out, 0, 4);
    for (unsigned i = 0; i < 8; i++)
        out[4 + i] = (uint8_t)(n >> (8 * i));
}

/* EncryptWithAd.  Without a key the plaintext is copied unchanged.  The value
 * 2^64 - 1 is reserved (section 5.1), so at n == UINT64_MAX the state is used
 * up. */
static int cipher_encrypt_ad(struct tf_proto_noise_cipher *cs, const uint8_t *ad, size_t ad_len,
                             const uint8_t *plain, size_t len, uint8_t *out)
{
    if (!cs->has_key) {
        if (len > 0)
            memmove(out, plain, len);
        return TF_OK;
    }
    if (cs->n == UINT64_MAX)
        return TF_E_NONCE_EXHAUSTED;
    uint8_t nonce[crypto_aead_chacha20poly1305_ietf_NPUBBYTES];
    nonce_encode(nonce, cs->n);
    crypto_aead_chacha20poly1305_ietf_encrypt(out, NULL, plain, len, ad, ad_len, NULL, nonce,
                                              cs->k);
    cs->n++;
    return TF_OK;
}

/* DecryptWithAd: len includes the tag when there is a key.  On a MAC failure
 * n is not incremented (section 5.1) and out is zeroed (libsodium does that,
 * and does it again here so the contract does not depend on it). */
static int cipher_decrypt_ad(struct tf_proto_noise_cipher *cs, const uint8_t *ad, size_t ad_len,
                             const uint8_t *msg, size_t len, uint8_t *out)
{
    if (!cs->has_key) {
        if (len > 0)
            memmove(out, msg, len);
        return TF_OK;
    }
    if (len < TF_PROTO_NOISE_TAG_LEN)
        return TF_E_TRUNCATED;
    if (cs->n == UINT64_MAX)
        return TF_E_NONCE_EXHAUSTED;
    uint8_t nonce[crypto_aead_chacha20poly1305_ietf_NPUBBYTES];
    nonce_encode(nonce, cs->n);
    if (crypto_aead_chacha20poly1305_ietf_decrypt(out, NULL, NULL, msg, len, ad, ad_len, nonce,
                                                  cs->k) != 0) {
        if (len > TF_PROTO_NOISE_TAG_LEN)
            sodium_memzero(out, len - TF_PROTO_NOISE_TAG_LEN);
        return TF_E_DECRYPT;
    }
    cs->n++;
    return TF_OK;
}

/* ---- SymmetricState (section 5.2) --------------------------------------- */

/* HMAC-SHA256(key, a || b); b may be NULL with b_len 0. */
static void hmac(uint8_t out[TF_PROTO_NOISE_HASH_LEN], const uint8_t key[TF_PROTO_NOISE_HASH_LEN],
                 const uint8_t *a, size_t a_len, const uint8_t *b, size_t b_len)
{
    crypto_auth_hmacsha256_state st;
    crypto_auth_hmacsha256_init(&st, key, TF_PROTO_NOISE_HASH_LEN);
    if (a_len > 0)
        crypto_auth_hmacsha256_update(&st, a, a_len);
    if (b_len > 0)
        crypto_auth_hmacsha256_update(&st, b, b_len);
    crypto_auth_hmacsha256_final(&st, out);
    sodium_memzero(&st, sizeof st);
}

/* HKDF with two outputs (section 4.3).  out1 may alias ck: ck is last read
 * before out1 is written. */
static void hkdf2(const uint8_t ck[TF_PROTO_NOISE_HASH_LEN], const uint8_t *ikm, size_t ikm_len,
                  uint8_t out1[TF_PROTO_NOISE_HASH_LEN], uint8_t out2[TF_PROTO_NOISE_HASH_LEN])
{
    static const uint8_t one = 0x01, two = 0x02;
    uint8_t temp_key[TF_PROTO_NOISE_HASH_LEN];
    hmac(temp_key, ck, ikm, ikm_len, NULL, 0);
    hmac(out1, temp_key, &one, 1, NULL, 0);
    hmac(out2, temp_key, out1, TF_PROTO_NOISE_HASH_LEN, &two, 1);
    sodium_memzero(temp_key, sizeof temp_key);
}

/* h = HASH(h || data) */
static void mix_hash(struct tf_proto_noise_handshake *hs, const uint8_t *data, size_t len)
{
    crypto_hash_sha256_state st;
    crypto_hash_sha256_init(&st);
    crypto_hash_sha256_update(&st, hs->h, sizeof hs->h);
    if (len > 0)
        crypto_hash_sha256_update(&st, data, len);
    crypto_hash_sha256_final(&st, hs->h);
    sodium_memzero(&st, sizeof st);
}

/* ck, k = HKDF(ck, ikm); n = 0.  HASHLEN is 32, so no truncation. */
static void mix_key(struct tf_proto_noise_handshake *hs, const uint8_t ikm[TF_PROTO_NOISE_KEY_LEN])
{
    hkdf2(hs->ck, ikm, TF_PROTO_NOISE_KEY_LEN, hs->ck, hs->cs.k);
    hs->cs.n = 0;
    hs->cs.has_key = true;
}

/* MixKey(DH(sk, pk)).  crypto_scalarmult returns -1 when the output is all
 * zeros, i.e. pk has low order: such a peer contributes nothing to the key,
 * so the handshake fails (section 12.1 allows rejecting these). */
static int mix_dh(struct tf_proto_noise_handshake *hs, const uint8_t sk[TF_PROTO_NOISE_KEY_LEN],
                  const uint8_t pk[TF_PROTO_NOISE_KEY_LEN])
{
    uint8_t shared[TF_PROTO_NOISE_KEY_LEN];
    int rc = TF_OK;
    if (crypto_scalarmult(shared, sk, pk) != 0)
        rc = TF_E_LOW_ORDER;
    else
        mix_key(hs, shared);
    sodium_memzero(shared, sizeof shared);
    return rc;
}

/* EncryptAndHash: out receives len (+ tag if keyed) bytes. */
static int encrypt_and_hash(struct tf_proto_noise_handshake *hs, const uint8_t *plain, size_t len,
                            uint8_t *out)
{
    int rc = cipher_encrypt_ad(&hs->cs, hs->h, sizeof hs->h, plain, len, out);
    if (rc != TF_OK)
        return rc;
    mix_hash(hs, out, len + tag_len(hs->cs.has_key));
    return TF_OK;
}

/* DecryptAndHash: len includes the tag if keyed.  The next h is computed
 * first and installed only after the MAC verified, so the old h is the
 * associated data and a failed call leaves h as it was. */
static int decrypt_and_hash(struct tf_proto_noise_handshake *hs, const uint8_t *msg, size_t len,
                            uint8_t *out)
{
    crypto_hash_sha256_state st;
    uint8_t next_h[TF_PROTO_NOISE_HASH_LEN];
    crypto_hash_sha256_init(&st);
    crypto_hash_sha256_update(&st, hs->h, sizeof hs->h);
    if (len > 0)
        crypto_hash_sha256_update(&st, msg, len);
    crypto_hash_sha256_final(&st, next_h);
    sodium_memzero(&st, sizeof st);
    int rc = cipher_decrypt_ad(&hs->cs, hs->h, sizeof hs->h, msg, len, out);
    if (rc == TF_OK)
        memcpy(hs->h, next_h, sizeof hs->h);
    sodium_memzero(next_h, sizeof next_h);
    return rc;
}

/* ---- HandshakeState (section 5.3) ---------------------------------------- */

static bool is_initiator(const struct tf_proto_noise_handshake *hs)
{
    return hs->role == TF_PROTO_NOISE_ROLE_INITIATOR;
}

/* Whether this side sends message number index (even: the initiator). */
static bool sends(const struct tf_proto_noise_handshake *hs, unsigned index)
{
    return (index % 2 == 0) == is_initiator(hs);
}

/* The state after message msg_index has been processed. */
static enum tf_proto_noise_state next_state(const struct tf_proto_noise_handshake *hs)
{
    const struct pattern *p = pattern_get(hs->pattern);
    assert(p != NULL);
    if (hs->msg_index >= p->n_messages)
        return TF_PROTO_NOISE_STATE_SPLIT;
    return sends(hs, hs->msg_index) ? TF_PROTO_NOISE_STATE_WRITE : TF_PROTO_NOISE_STATE_READ;
}

/* Bytes the current message adds around its payload: public keys, encrypted
 * static keys and tags.  Computed by walking the tokens and tracking whether a
 * key will be set, without touching the state. */
static size_t message_overhead(const struct tf_proto_noise_handshake *hs)
{
    const struct pattern *p = pattern_get(hs->pattern);
    assert(p != NULL && hs->msg_index < p->n_messages);
    bool keyed = hs->cs.has_key;
    size_t n = 0;
    for (const enum token *t = p->messages[hs->msg_index]; *t != TOKEN_END; t++) {
        switch (*t) {
        case TOKEN_E:
            n += TF_PROTO_NOISE_KEY_LEN;
            break;
        case TOKEN_S:
            n += TF_PROTO_NOISE_KEY_LEN + tag_len(keyed);
            break;
        case TOKEN_EE:
        case TOKEN_ES:
        case TOKEN_SE:
        case TOKEN_SS:
            keyed = true;
            break;
        case TOKEN_END:
            break;
        }
    }
    return n + tag_len(keyed);
}

/* Performs a DH token.  "es" is DH(initiator e, responder s) whichever side
 * computes it; likewise "se" (section 7.1). */
static int dh_token(struct tf_proto_noise_handshake *hs, enum token t)
{
    bool init = is_initiator(hs);
    switch (t) {
    case TOKEN_EE:
        return mix_dh(hs, hs->e_sk, hs->re);
    case TOKEN_ES:
        return init ? mix_dh(hs, hs->e_sk, hs->rs) : mix_dh(hs, hs->s_sk, hs->re);
    case TOKEN_SE:
        return init ? mix_dh(hs, hs->s_sk, hs->re) : mix_dh(hs, hs->e_sk, hs->rs);
    case TOKEN_SS:
        return mix_dh(hs, hs->s_sk, hs->rs);
    case TOKEN_END:
    case TOKEN_E:
    case TOKEN_S:
        break;
    }
    return TF_E_INVALID_ARG;
}

enum tf_proto_noise_state tf_proto_noise_handshake_state(const struct tf_proto_noise_handshake *hs)
{
    return hs->state;
}

int tf_proto_noise_handshake_init(struct tf_proto_noise_handshake *hs,
                                  const struct tf_proto_noise_config *cfg)
{
    memset(hs, 0, sizeof *hs);
    const struct pattern *p = pattern_get(cfg->pattern);
    if (p == NULL || cfg->s_sk == NULL || cfg->e_sk == NULL ||
        (cfg->prologue == NULL && cfg->prologue_len > 0))
        return TF_E_INVALID_ARG;
    if (cfg->role != TF_PROTO_NOISE_ROLE_INITIATOR && cfg->role != TF_PROTO_NOISE_ROLE_RESPONDER)
        return TF_E_INVALID_ARG;
    bool needs_rs = p->responder_static_premessage && cfg->role == TF_PROTO_NOISE_ROLE_INITIATOR;
    if (needs_rs != (cfg->rs_pk != NULL))
        return TF_E_INVALID_ARG;

    hs->pattern = cfg->pattern;
    hs->role = cfg->role;
    memcpy(hs->s_sk, cfg->s_sk, sizeof hs->s_sk);
    memcpy(hs->e_sk, cfg->e_sk, sizeof hs->e_sk);
    int dh = 0;
    if (cfg->s_pk != NULL)
        memcpy(hs->s_pk, cfg->s_pk, sizeof hs->s_pk);
    else
        dh |= crypto_scalarmult_base(hs->s_pk, hs->s_sk);
    dh |= crypto_scalarmult_base(hs->e_pk, hs->e_sk);
    if (dh != 0) {
        sodium_memzero(hs, sizeof *hs);
        return TF_E_INVALID_ARG;
    }

    /* InitializeSymmetric: a name of at most HASHLEN bytes is used directly,
     * zero-padded; a longer one is hashed. */
    size_t name_len = strlen(p->name);
    if (name_len <= sizeof hs->h)
        memcpy(hs->h, p->name, name_len);
    else
        crypto_hash_sha256(hs->h, (const unsigned char *)p->name, name_len);
    memcpy(hs->ck, hs->h, sizeof hs->ck);
    mix_hash(hs, cfg->prologue, cfg->prologue_len);

    /* Pre-message "<- s": both sides hash the responder's static key. */
    if (p->responder_static_premessage) {
        if (cfg->role == TF_PROTO_NOISE_ROLE_INITIATOR) {
            memcpy(hs->rs, cfg->rs_pk, sizeof hs->rs);
            hs->has_rs = true;
            mix_hash(hs, hs->rs, sizeof hs->rs);
        } else {
            mix_hash(hs, hs->s_pk, sizeof hs->s_pk);
        }
    }
    enter_state(hs, next_state(hs));
    return TF_OK;
}

void tf_proto_noise_handshake_deinit(struct tf_proto_noise_handshake *hs)
{
    if (hs == NULL)
        return;
    sodium_memzero(hs, sizeof *hs);
    enter_state(hs, TF_PROTO_NOISE_STATE_NONE);
}

int tf_proto_noise_handshake_write(struct tf_proto_noise_handshake *hs, const uint8_t *payload,
                                   size_t payload_len, uint8_t *out, size_t out_cap,
                                   size_t *out_len)
{
    *out_len = 0;
    if (hs->state != TF_PROTO_NOISE_STATE_WRITE || (payload == NULL && payload_len > 0))
        return TF_E_BAD_STATE;
    size_t overhead = message_overhead(hs);
    if (payload_len > TF_PROTO_NOISE_MSG_MAX - overhead)
        return TF_E_TOO_LONG;
    if (out_cap < overhead + payload_len)
        return TF_E_INVALID_ARG;

    const struct pattern *p = pattern_get(hs->pattern);
    assert(p != NULL);
    size_t pos = 0;
    int rc = TF_OK;
    for (const enum token *t = p->messages[hs->msg_index]; *t != TOKEN_END && rc == TF_OK; t++) {
        switch (*t) {
        case TOKEN_E:
            memcpy(out + pos, hs->e_pk, sizeof hs->e_pk);
            mix_hash(hs, hs->e_pk, sizeof hs->e_pk);
            pos += sizeof hs->e_pk;
            break;
        case TOKEN_S: {
            size_t n = sizeof hs->s_pk + tag_len(hs->cs.has_key);
            rc = encrypt_and_hash(hs, hs->s_pk, sizeof hs->s_pk, out + pos);
            pos += n;
            break;
        }
        case TOKEN_EE:
        case TOKEN_ES:
        case TOKEN_SE:
        case TOKEN_SS:
            rc = dh_token(hs, *t);
            break;
        case TOKEN_END:
            break;
        }
    }
    if (rc == TF_OK) {
        rc = encrypt_and_hash(hs, payload, payload_len, out + pos);
        pos += payload_len + tag_len(hs->cs.has_key);
    }
    if (rc != TF_OK) {
        sodium_memzero(out, overhead + payload_len);
        return fail(hs, rc);
    }
    assert(pos == overhead + payload_len);
    hs->msg_index++;
    enter_state(hs, next_state(hs));
    *out_len = pos;
    return TF_OK;
}

int tf_proto_noise_handshake_read(struct tf_proto_noise_handshake *hs, const uint8_t *msg,
                                  size_t msg_len, uint8_t *payload, size_t payload_cap,
                                  size_t *payload_len)
{
    *payload_len = 0;
    if (hs->state != TF_PROTO_NOISE_STATE_READ)
        return TF_E_BAD_STATE;
    const struct pattern *p = pattern_get(hs->pattern);
    assert(p != NULL);
    size_t overhead = message_overhead(hs);
    size_t pos = 0;
    int rc = TF_OK;
    if (msg_len > TF_PROTO_NOISE_MSG_MAX)
        rc = TF_E_TOO_LONG;
    else if (msg_len < overhead)
        rc = TF_E_TRUNCATED;
    else if (payload_cap < msg_len - overhead || (payload == NULL && msg_len > overhead))
        rc = TF_E_INVALID_ARG;

    for (const enum token *t = p->messages[hs->msg_index]; *t != TOKEN_END && rc == TF_OK; t++) {
        switch (*t) {
        case TOKEN_E:
            memcpy(hs->re, msg + pos, sizeof hs->re);
            hs->has_re = true;
            mix_hash(hs, hs->re, sizeof hs->re);
            pos += sizeof hs->re;
            break;
        case TOKEN_S: {
            size_t n = sizeof hs->rs + tag_len(hs->cs.has_key);
            rc = decrypt_and_hash(hs, msg + pos, n, hs->rs);
            hs->has_rs = rc == TF_OK;
            pos += n;
            break;
        }
        case TOKEN_EE:
        case TOKEN_ES:
        case TOKEN_SE:
        case TOKEN_SS:
            rc = dh_token(hs, *t);
            break;
        case TOKEN_END:
            break;
        }
    }
    if (rc == TF_OK)
        rc = decrypt_and_hash(hs, msg + pos, msg_len - pos, payload);
    if (rc != TF_OK) {
        if (payload != NULL && payload_cap > 0)
            sodium_memzero(payload, payload_cap);
        return fail(hs, rc);
    }
    hs->msg_index++;
    enter_state(hs, next_state(hs));
    *payload_len = msg_len - overhead;
    return TF_OK;
}

const uint8_t *tf_proto_noise_handshake_remote_static(const struct tf_proto_noise_handshake *hs)
{
    if (hs->state == TF_PROTO_NOISE_STATE_NONE || hs->state == TF_PROTO_NOISE_STATE_FAILED ||
        !hs->has_rs)
        return NULL;
    return hs->rs;
}

int tf_proto_noise_handshake_hash(const struct tf_proto_noise_handshake *hs,
                                  uint8_t out[static TF_PROTO_NOISE_HASH_LEN])
{
    if (hs->state != TF_PROTO_NOISE_STATE_SPLIT && hs->state != TF_PROTO_NOISE_STATE_DONE)
        return TF_E_BAD_STATE;
    memcpy(out, hs->h, sizeof hs->h);
    return TF_OK;
}

int tf_proto_noise_handshake_split(struct tf_proto_noise_handshake *hs,
                                   struct tf_proto_noise_cipher *send,
                                   struct tf_proto_noise_cipher *recv)
{
    if (hs->state != TF_PROTO_NOISE_STATE_SPLIT)
        return TF_E_BAD_STATE;
    /* The first key is for initiator -> responder (section 5.2). */
    uint8_t k1[TF_PROTO_NOISE_KEY_LEN], k2[TF_PROTO_NOISE_KEY_LEN];
    hkdf2(hs->ck, NULL, 0, k1, k2);
    memset(send, 0, sizeof *send);
    memset(recv, 0, sizeof *recv);
    memcpy(send->k, is_initiator(hs) ? k1 : k2, sizeof send->k);
    memcpy(recv->k, is_initiator(hs) ? k2 : k1, sizeof recv->k);
    send->has_key = true;
    recv->has_key = true;
    sodium_memzero(k1, sizeof k1);
    sodium_memzero(k2, sizeof k2);
    /* h, rs and the public keys stay for _hash and _remote_static. */
    wipe_secrets(hs);
    enter_state(hs, TF_PROTO_NOISE_STATE_DONE);
    return TF_OK;
}

/* ---- Transport ------------------------------------------------------------ */

int tf_proto_noise_cipher_encrypt(struct tf_proto_noise_cipher *cs, const uint8_t *plain,
                                  size_t len, uint8_t *out, size_t out_cap, size_t *out_len)
{
    *out_len = 0;
    if (len > TF_PROTO_NOISE_PLAINTEXT_MAX)
        return TF_E_TOO_LONG;
    if (!cs->has_key || out_cap < len + TF_PROTO_NOISE_TAG_LEN || (plain == NULL && len > 0))
        return TF_E_INVALID_ARG;
    int rc = cipher_encrypt_ad(cs, NULL, 0, plain, len, out);
    if (rc != TF_OK)
        return rc;
    *out_len = len + TF_PROTO_NOISE_TAG_LEN;
    return TF_OK;
}

int tf_proto_noise_cipher_decrypt(struct tf_proto_noise_cipher *cs, const uint8_t *msg, size_t len,
                                  uint8_t *out, size_t out_cap, size_t *out_len)
{
    *out_len = 0;
    if (len > TF_PROTO_NOISE_MSG_MAX)
        return TF_E_TOO_LONG;
    if (len < TF_PROTO_NOISE_TAG_LEN)
        return TF_E_TRUNCATED;
    if (!cs->has_key || out_cap < len - TF_PROTO_NOISE_TAG_LEN ||
        (out == NULL && len > TF_PROTO_NOISE_TAG_LEN))
        return TF_E_INVALID_ARG;
    int rc = cipher_decrypt_ad(cs, NULL, 0, msg, len, out);
    if (rc != TF_OK)
        return rc;
    *out_len = len - TF_PROTO_NOISE_TAG_LEN;
    return TF_OK;
}

void tf_proto_noise_cipher_deinit(struct tf_proto_noise_cipher *cs)
{
    if (cs == NULL)
        return;
    sodium_memzero(cs, sizeof *cs);
}
