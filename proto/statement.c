/* SPDX-License-Identifier: MIT */
#include "proto/statement.h"

#include <stdlib.h>
#include <string.h>

#include <sodium.h>

const char *tf_proto_domain_tag(enum tf_proto_domain domain)
{
    switch (domain) {
    case TF_PROTO_DOMAIN_CARD:
        return "twofold/v1/card";
    case TF_PROTO_DOMAIN_PROPOSAL:
        return "twofold/v1/proposal";
    case TF_PROTO_DOMAIN_REPLY:
        return "twofold/v1/reply";
    case TF_PROTO_DOMAIN_INTRODUCTION:
        return "twofold/v1/introduction";
    case TF_PROTO_DOMAIN_CLOSE:
        return "twofold/v1/close";
    case TF_PROTO_DOMAIN_ENVELOPE:
        return "twofold/v1/envelope";
    case TF_PROTO_DOMAIN_REQUEST:
        return "twofold/v1/request";
    case TF_PROTO_DOMAIN_REQUEST_CLOSE:
        return "twofold/v1/request-close";
    case TF_PROTO_DOMAIN_FEEDBACK:
        return "twofold/v1/feedback";
    }
    return "twofold/v1/invalid";
}

void tf_proto_hash_tagged(uint8_t out[static TF_PROTO_HASH_LEN], const char *tag, const uint8_t *a,
                          size_t alen, const uint8_t *b, size_t blen)
{
    crypto_generichash_state st;
    static const uint8_t nul = 0;
    crypto_generichash_init(&st, NULL, 0, TF_PROTO_HASH_LEN);
    crypto_generichash_update(&st, (const uint8_t *)tag, strlen(tag));
    crypto_generichash_update(&st, &nul, 1);
    if (alen > 0)
        crypto_generichash_update(&st, a, alen);
    if (blen > 0)
        crypto_generichash_update(&st, b, blen);
    crypto_generichash_final(&st, out, TF_PROTO_HASH_LEN);
}

/* Builds tag || 0x00 || msg in a fresh buffer; the caller frees it. */
static uint8_t *tagged_message(enum tf_proto_domain domain, const uint8_t *msg, size_t len,
                               size_t *out_len)
{
    const char *tag = tf_proto_domain_tag(domain);
    size_t tlen = strlen(tag);
    if (len > SIZE_MAX - tlen - 1)
        return NULL;
    uint8_t *m = malloc(tlen + 1 + len);
    if (m == NULL)
        return NULL;
    memcpy(m, tag, tlen);
    m[tlen] = 0;
    if (len > 0)
        memcpy(m + tlen + 1, msg, len);
    *out_len = tlen + 1 + len;
    return m;
}

int tf_proto_sign_tagged(const struct tf_proto_identity *id, enum tf_proto_domain domain,
                         const uint8_t *msg, size_t len, uint8_t sig[static TF_PROTO_SIG_LEN])
{
    size_t mlen;
    uint8_t *m = tagged_message(domain, msg, len, &mlen);
    if (m == NULL)
        return TF_E_NOMEM;
    int rc = tf_proto_identity_sign(id, m, mlen, sig);
    free(m);
    return rc;
}

int tf_proto_verify_tagged(enum tf_proto_domain domain, const uint8_t pk[static TF_PROTO_KEY_LEN],
                           const uint8_t *msg, size_t len,
                           const uint8_t sig[static TF_PROTO_SIG_LEN])
{
    size_t mlen;
    uint8_t *m = tagged_message(domain, msg, len, &mlen);
    if (m == NULL)
        return TF_E_NOMEM;
    int ok = crypto_sign_verify_detached(sig, m, mlen, pk);
    free(m);
    return ok == 0 ? TF_OK : TF_E_BAD_SIG;
}

int tf_proto_statement_sign(const struct tf_proto_identity *id, enum tf_proto_domain domain,
                            const uint8_t *body, size_t len, struct tf_proto_buf *out)
{
    if (len > TF_PROTO_BODY_MAX)
        return TF_E_TOO_LONG;
    if (len == 0)
        return TF_E_BAD_LENGTH; /* the parser refuses empty bodies */
    uint8_t sig[TF_PROTO_SIG_LEN];
    int rc = tf_proto_sign_tagged(id, domain, body, len, sig);
    if (rc != TF_OK)
        return rc;
    struct tf_proto_mp_writer w;
    tf_proto_mp_writer_init(&w);
    tf_proto_mp_write_array(&w, 2);
    tf_proto_mp_write_bin(&w, body, len);
    tf_proto_mp_write_bin(&w, sig, sizeof sig);
    return tf_proto_mp_writer_finish(&w, out);
}

int tf_proto_statement_parse(const uint8_t *buf, size_t len, struct tf_proto_statement *out)
{
    struct tf_proto_mp_reader r;
    struct tf_proto_bytes body, sig;
    int rc;
    tf_proto_mp_reader_init(&r, buf, len);
    if ((rc = tf_proto_mp_read_array_exact(&r, 2)) != TF_OK ||
        (rc = tf_proto_mp_read_bin(&r, 1, TF_PROTO_BODY_MAX, &body)) != TF_OK ||
        (rc = tf_proto_mp_read_bin(&r, TF_PROTO_SIG_LEN, TF_PROTO_SIG_LEN, &sig)) != TF_OK ||
        (rc = tf_proto_mp_read_end(&r)) != TF_OK)
        return rc;
    out->body = body;
    out->sig = sig.ptr;
    return TF_OK;
}

int tf_proto_statement_verify(const struct tf_proto_statement *st, enum tf_proto_domain domain,
                              const uint8_t pk[static TF_PROTO_KEY_LEN])
{
    return tf_proto_verify_tagged(domain, pk, st->body.ptr, st->body.len, st->sig);
}
