/* SPDX-License-Identifier: MIT */
#include "proto/identity.h"

#include <stdbool.h>
#include <string.h>

#include <sodium.h>

#include "proto/statement.h"

struct tf_proto_identity_secrets {
    uint8_t sign_sk[crypto_sign_SECRETKEYBYTES];
    uint8_t noise_sk[TF_PROTO_KEY_LEN];
    uint8_t box_sk[TF_PROTO_KEY_LEN];
};

/* crypto_kdf context and subkey ids: part of the protocol (PROTOCOL.md). */
static const char KDF_CONTEXT[crypto_kdf_CONTEXTBYTES] = {'t', 'w', 'o', 'f', 'o', 'l', 'd', '1'};
enum { KDF_SIGN = 1, KDF_NOISE = 2, KDF_BOX = 3 };

int tf_proto_identity_from_seed(struct tf_proto_identity *id,
                                const uint8_t seed[static TF_PROTO_SEED_LEN])
{
    struct tf_proto_identity_secrets *sec = sodium_malloc(sizeof *sec);
    if (sec == NULL)
        return TF_E_NOMEM;
    uint8_t sign_seed[crypto_sign_SEEDBYTES];
    int rc = TF_OK;
    if (crypto_kdf_derive_from_key(sign_seed, sizeof sign_seed, KDF_SIGN, KDF_CONTEXT, seed) != 0 ||
        crypto_kdf_derive_from_key(sec->noise_sk, TF_PROTO_KEY_LEN, KDF_NOISE, KDF_CONTEXT, seed) !=
            0 ||
        crypto_kdf_derive_from_key(sec->box_sk, TF_PROTO_KEY_LEN, KDF_BOX, KDF_CONTEXT, seed) !=
            0 ||
        crypto_sign_seed_keypair(id->sign_pk, sec->sign_sk, sign_seed) != 0 ||
        crypto_scalarmult_base(id->noise_pk, sec->noise_sk) != 0 ||
        crypto_scalarmult_base(id->box_pk, sec->box_sk) != 0)
        rc = TF_E_INVALID_ARG;
    sodium_memzero(sign_seed, sizeof sign_seed);
    if (rc != TF_OK) {
        sodium_free(sec);
        id->sec = NULL;
        return rc;
    }
    id->sec = sec;
    return TF_OK;
}

void tf_proto_identity_deinit(struct tf_proto_identity *id)
{
    if (id == NULL || id->sec == NULL)
        return;
    sodium_free(id->sec); /* sodium_free wipes before unmapping */
    id->sec = NULL;
}

int tf_proto_identity_sign(const struct tf_proto_identity *id, const uint8_t *msg, size_t len,
                           uint8_t sig[static TF_PROTO_SIG_LEN])
{
    if (id->sec == NULL)
        return TF_E_INVALID_ARG;
    crypto_sign_detached(sig, NULL, msg, len, id->sec->sign_sk);
    return TF_OK;
}

int tf_proto_identity_unseal(const struct tf_proto_identity *id, uint8_t *m, const uint8_t *c,
                             size_t clen)
{
    if (id->sec == NULL)
        return TF_E_INVALID_ARG;
    if (clen < crypto_box_SEALBYTES)
        return TF_E_BAD_SEAL;
    if (crypto_box_seal_open(m, c, clen, id->box_pk, id->sec->box_sk) != 0)
        return TF_E_BAD_SEAL;
    return TF_OK;
}

const uint8_t *tf_proto_identity_noise_sk(const struct tf_proto_identity *id)
{
    return id->sec ? id->sec->noise_sk : NULL;
}

/* bech32m (BIP-173 / BIP-350). */

static const char B32_CHARSET[] = "qpzry9x8gf2tvdw0s3jn54khce6mua7l";
#define BECH32M_CONST 0x2bc830a3u
#define TEXT_ID_HRP "tf"
#define TEXT_ID_DATA_CHARS 52 /* ceil(256 / 5) */
#define TEXT_ID_CHECK_CHARS 6

static uint32_t polymod_step(uint32_t chk, uint8_t v)
{
    static const uint32_t gen[5] = {0x3b6a57b2u, 0x26508e6du, 0x1ea119fau, 0x3d4233ddu,
                                    0x2a1462b3u};
    uint8_t top = (uint8_t)(chk >> 25);
    chk = ((chk & 0x1ffffffu) << 5) ^ v;
    for (int i = 0; i < 5; i++)
        if ((top >> i) & 1)
            chk ^= gen[i];
    return chk;
}

static uint32_t hrp_polymod(void)
{
    const char *hrp = TEXT_ID_HRP;
    size_t n = strlen(hrp);
    uint32_t chk = 1;
    for (size_t i = 0; i < n; i++)
        chk = polymod_step(chk, (uint8_t)((uint8_t)hrp[i] >> 5));
    chk = polymod_step(chk, 0);
    for (size_t i = 0; i < n; i++)
        chk = polymod_step(chk, (uint8_t)(hrp[i] & 0x1f));
    return chk;
}

/* Regroups 8-bit bytes into 5-bit values, zero-padding the last group. */
static void to_5bit(const uint8_t *in, size_t len, uint8_t *out)
{
    uint32_t acc = 0;
    unsigned bits = 0;
    size_t o = 0;
    for (size_t i = 0; i < len; i++) {
        acc = (acc << 8) | in[i];
        bits += 8;
        while (bits >= 5) {
            bits -= 5;
            out[o++] = (uint8_t)((acc >> bits) & 0x1f);
        }
    }
    if (bits > 0)
        out[o++] = (uint8_t)((acc << (5 - bits)) & 0x1f);
}

void tf_proto_text_id_encode(const uint8_t pk[static TF_PROTO_KEY_LEN],
                             char out[static TF_PROTO_TEXT_ID_SIZE])
{
    uint8_t data[TEXT_ID_DATA_CHARS];
    to_5bit(pk, TF_PROTO_KEY_LEN, data);
    uint32_t chk = hrp_polymod();
    for (size_t i = 0; i < TEXT_ID_DATA_CHARS; i++)
        chk = polymod_step(chk, data[i]);
    for (size_t i = 0; i < TEXT_ID_CHECK_CHARS; i++)
        chk = polymod_step(chk, 0);
    chk ^= BECH32M_CONST;
    size_t o = 0;
    memcpy(out, TEXT_ID_HRP "1", 3);
    o = 3;
    for (size_t i = 0; i < TEXT_ID_DATA_CHARS; i++)
        out[o++] = B32_CHARSET[data[i]];
    for (size_t i = 0; i < TEXT_ID_CHECK_CHARS; i++)
        out[o++] = B32_CHARSET[(chk >> (5 * (5 - i))) & 0x1f];
    out[o] = '\0';
}

static int charset_value(char c)
{
    const char *p = memchr(B32_CHARSET, c, 32);
    return p ? (int)(p - B32_CHARSET) : -1;
}

int tf_proto_text_id_decode(const char *text, size_t len, uint8_t pk[static TF_PROTO_KEY_LEN],
                            size_t *where)
{
    bool lower = false, upper = false;
    for (size_t i = 0; i < len; i++) {
        if (text[i] >= 'a' && text[i] <= 'z')
            lower = true;
        else if (text[i] >= 'A' && text[i] <= 'Z')
            upper = true;
    }
    if (lower && upper)
        return TF_E_MIXED_CASE;
    if (len < 3 || (text[0] | 0x20) != 't' || (text[1] | 0x20) != 'f' || text[2] != '1')
        return TF_E_BAD_PREFIX;
    if (len != TF_PROTO_TEXT_ID_LEN)
        return TF_E_BAD_LENGTH;
    uint8_t vals[TEXT_ID_DATA_CHARS + TEXT_ID_CHECK_CHARS];
    for (size_t i = 3; i < len; i++) {
        char c = text[i];
        if (c >= 'A' && c <= 'Z')
            c = (char)(c | 0x20);
        int v = charset_value(c);
        if (v < 0) {
            if (where)
                *where = i;
            return TF_E_BAD_CHAR;
        }
        vals[i - 3] = (uint8_t)v;
    }
    uint32_t chk = hrp_polymod();
    for (size_t i = 0; i < sizeof vals; i++)
        chk = polymod_step(chk, vals[i]);
    if (chk != BECH32M_CONST)
        return TF_E_BAD_CHECKSUM;
    /* 52 groups carry 260 bits: the 4 padding bits must be zero. */
    if (vals[TEXT_ID_DATA_CHARS - 1] & 0x0f)
        return TF_E_BAD_CHECKSUM;
    uint32_t acc = 0;
    unsigned bits = 0;
    size_t o = 0;
    for (size_t i = 0; i < TEXT_ID_DATA_CHARS; i++) {
        acc = (acc << 5) | vals[i];
        bits += 5;
        if (bits >= 8) {
            bits -= 8;
            if (o < TF_PROTO_KEY_LEN)
                pk[o++] = (uint8_t)(acc >> bits);
        }
        acc &= (1u << bits) - 1;
    }
    return TF_OK;
}

void tf_proto_fingerprint(const uint8_t pk[static TF_PROTO_KEY_LEN],
                          char out[static TF_PROTO_FINGERPRINT_SIZE])
{
    uint8_t h[TF_PROTO_HASH_LEN];
    tf_proto_hash_tagged(h, "twofold/v1/fingerprint", pk, TF_PROTO_KEY_LEN, NULL, 0);
    static const char hex[] = "0123456789abcdef";
    size_t o = 0;
    for (size_t i = 0; i < 8; i++) {
        if (i > 0 && i % 2 == 0)
            out[o++] = '-';
        out[o++] = hex[h[i] >> 4];
        out[o++] = hex[h[i] & 0x0f];
    }
    out[o] = '\0';
}
