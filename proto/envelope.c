/* SPDX-License-Identifier: MIT */
#include "proto/envelope.h"

#include <assert.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "proto/statement.h"

bool tf_proto_msg_type_is_valid(uint64_t type)
{
    return type >= TF_PROTO_MSG_TYPE_NOTE && type <= TF_PROTO_MSG_TYPE_FEEDBACK;
}

/* The largest inner part: fixarray, bin8 from_pk, fixint type, bin16 body of
 * TF_PROTO_BODY_MAX bytes, bin8 sig.  Its class, sealed and wrapped in the
 * largest outer part, must fit TF_PROTO_ENVELOPE_MAX. */
#define INNER_MAX (1 + 2 + TF_PROTO_KEY_LEN + 1 + 3 + TF_PROTO_BODY_MAX + 2 + TF_PROTO_SIG_LEN)
#define OUTER_OVERHEAD_MAX (1 + 1 + 2 + TF_PROTO_MSG_ID_LEN + 2 + TF_PROTO_KEY_LEN + 9 + 5)
static_assert(INNER_MAX <= TF_PROTO_ENVELOPE_PAD_MAX, "the largest inner part has a class");
static_assert(TF_PROTO_ENVELOPE_PAD_MAX + crypto_box_SEALBYTES + OUTER_OVERHEAD_MAX <=
                  TF_PROTO_ENVELOPE_MAX,
              "the largest class fits an envelope");

size_t tf_proto_envelope_padded_len(size_t inner_len)
{
    static const size_t classes[] = TF_PROTO_ENVELOPE_CLASSES;
    for (size_t i = 0; i < sizeof classes / sizeof classes[0]; i++)
        if (inner_len <= classes[i])
            return classes[i];
    return 0;
}

static void store_be(uint8_t *p, uint64_t v, size_t n)
{
    for (size_t i = 0; i < n; i++)
        p[n - 1 - i] = (uint8_t)(v >> (8 * i));
}

/* The bytes the envelope signature covers after the domain tag. */
static uint8_t *signed_part(const uint8_t to_pk[static TF_PROTO_KEY_LEN],
                            const uint8_t msg_id[static TF_PROTO_MSG_ID_LEN], uint64_t expires,
                            uint16_t type, const uint8_t *body, size_t body_len, size_t *out_len)
{
    size_t head = TF_PROTO_KEY_LEN + TF_PROTO_MSG_ID_LEN + 8 + 2;
    uint8_t *m = malloc(head + body_len);
    if (m == NULL)
        return NULL;
    memcpy(m, to_pk, TF_PROTO_KEY_LEN);
    memcpy(m + TF_PROTO_KEY_LEN, msg_id, TF_PROTO_MSG_ID_LEN);
    store_be(m + TF_PROTO_KEY_LEN + TF_PROTO_MSG_ID_LEN, expires, 8);
    store_be(m + TF_PROTO_KEY_LEN + TF_PROTO_MSG_ID_LEN + 8, type, 2);
    if (body_len > 0)
        memcpy(m + head, body, body_len);
    *out_len = head + body_len;
    return m;
}

int tf_proto_envelope_seal(const struct tf_proto_identity *from,
                           const uint8_t to_sign_pk[static TF_PROTO_KEY_LEN],
                           const uint8_t to_box_pk[static TF_PROTO_KEY_LEN],
                           const uint8_t msg_id[static TF_PROTO_MSG_ID_LEN], uint64_t expires,
                           uint16_t type, const uint8_t *body, size_t body_len,
                           struct tf_proto_buf *out)
{
    if (!tf_proto_msg_type_is_valid(type))
        return TF_E_BAD_VALUE;
    if (body_len > TF_PROTO_BODY_MAX)
        return TF_E_TOO_LONG;
    size_t mlen;
    uint8_t *m = signed_part(to_sign_pk, msg_id, expires, type, body, body_len, &mlen);
    if (m == NULL)
        return TF_E_NOMEM;
    uint8_t sig[TF_PROTO_SIG_LEN];
    int rc = tf_proto_sign_tagged(from, TF_PROTO_DOMAIN_ENVELOPE, m, mlen, sig);
    free(m);
    if (rc != TF_OK)
        return rc;

    struct tf_proto_mp_writer w;
    struct tf_proto_buf inner;
    tf_proto_mp_writer_init(&w);
    tf_proto_mp_write_array(&w, 4);
    tf_proto_mp_write_bin(&w, from->sign_pk, TF_PROTO_KEY_LEN);
    tf_proto_mp_write_uint(&w, type);
    tf_proto_mp_write_bin(&w, body, body_len);
    tf_proto_mp_write_bin(&w, sig, sizeof sig);
    if ((rc = tf_proto_mp_writer_finish(&w, &inner)) != TF_OK)
        return rc;

    /* inner || zero padding to its class (the body bound makes one exist). */
    size_t padded_len = tf_proto_envelope_padded_len(inner.len);
    size_t sealed_len = padded_len + crypto_box_SEALBYTES;
    uint8_t *padded = padded_len > 0 ? calloc(1, padded_len) : NULL;
    uint8_t *sealed = padded != NULL ? malloc(sealed_len) : NULL;
    if (padded != NULL)
        memcpy(padded, inner.data, inner.len);
    sodium_memzero(inner.data, inner.len);
    tf_proto_buf_free(&inner);
    if (sealed == NULL) {
        free(padded);
        return padded_len == 0 ? TF_E_TOO_LONG : TF_E_NOMEM;
    }
    if (crypto_box_seal(sealed, padded, padded_len, to_box_pk) != 0)
        rc = TF_E_BAD_VALUE; /* the recipient's box key is not a usable point */
    sodium_memzero(padded, padded_len);
    free(padded);
    if (rc == TF_OK) {
        tf_proto_mp_writer_init(&w);
        tf_proto_mp_write_array(&w, 5);
        tf_proto_mp_write_uint(&w, TF_PROTO_ENVELOPE_VERSION);
        tf_proto_mp_write_bin(&w, msg_id, TF_PROTO_MSG_ID_LEN);
        tf_proto_mp_write_bin(&w, to_sign_pk, TF_PROTO_KEY_LEN);
        tf_proto_mp_write_uint(&w, expires);
        tf_proto_mp_write_bin(&w, sealed, sealed_len);
        rc = tf_proto_mp_writer_finish(&w, out);
    }
    free(sealed);
    return rc;
}

int tf_proto_envelope_decode(const uint8_t *buf, size_t len, struct tf_proto_envelope *out)
{
    struct tf_proto_mp_reader r;
    struct tf_proto_envelope e;
    uint64_t version;
    int rc;
    if (len > TF_PROTO_ENVELOPE_MAX)
        return TF_E_TOO_LONG;
    tf_proto_mp_reader_init(&r, buf, len);
    if ((rc = tf_proto_mp_read_array_exact(&r, 5)) != TF_OK ||
        (rc = tf_proto_mp_read_uint(&r, &version)) != TF_OK)
        return rc;
    if (version != TF_PROTO_ENVELOPE_VERSION)
        return TF_E_VERSION;
    if ((rc = tf_proto_mp_read_bin_fixed(&r, e.msg_id, TF_PROTO_MSG_ID_LEN)) != TF_OK ||
        (rc = tf_proto_mp_read_bin_fixed(&r, e.to_pk, TF_PROTO_KEY_LEN)) != TF_OK ||
        (rc = tf_proto_mp_read_uint(&r, &e.expires)) != TF_OK ||
        (rc = tf_proto_mp_read_bin(&r, crypto_box_SEALBYTES + 1, TF_PROTO_ENVELOPE_MAX,
                                   &e.sealed)) != TF_OK ||
        (rc = tf_proto_mp_read_end(&r)) != TF_OK)
        return rc;
    *out = e;
    return TF_OK;
}

int tf_proto_envelope_peek_id(const uint8_t *buf, size_t len,
                              uint8_t msg_id[static TF_PROTO_MSG_ID_LEN])
{
    struct tf_proto_mp_reader r;
    uint32_t n;
    uint64_t version;
    int rc;
    tf_proto_mp_reader_init(&r, buf, len > TF_PROTO_ENVELOPE_MAX ? TF_PROTO_ENVELOPE_MAX : len);
    if ((rc = tf_proto_mp_read_array(&r, UINT32_MAX, &n)) != TF_OK)
        return rc;
    if (n < 2)
        return TF_E_COUNT;
    if ((rc = tf_proto_mp_read_uint(&r, &version)) != TF_OK)
        return rc;
    return tf_proto_mp_read_bin_fixed(&r, msg_id, TF_PROTO_MSG_ID_LEN);
}

/* True if the n bytes at p are all zero.  Padding is not secret (its sender
 * chose it, and it carries nothing), so the check need not take constant
 * time: sodium_is_zero cost 7 % of a node's CPU on the 4 KiB and more of
 * padding each envelope and DIRECT message carries, and a byte loop still
 * 0.7 % of all samples (docs/PERFORMANCE.md).  The first byte is zero and
 * every byte equals the one before it: libc's memcmp, a word at a time. */
static bool padding_is_zero(const uint8_t *p, size_t n)
{
    return n == 0 || (p[0] == 0 && memcmp(p, p + 1, n - 1) == 0);
}

/* Decodes the inner array and checks the zero padding after it; views point
 * into plain. */
static int decode_inner(const uint8_t *plain, size_t len, struct tf_proto_envelope_opened *o,
                        const uint8_t **sig)
{
    struct tf_proto_mp_reader r;
    struct tf_proto_bytes s;
    uint64_t type;
    int rc;
    tf_proto_mp_reader_init(&r, plain, len);
    if ((rc = tf_proto_mp_read_array_exact(&r, 4)) != TF_OK ||
        (rc = tf_proto_mp_read_bin_fixed(&r, o->from_pk, TF_PROTO_KEY_LEN)) != TF_OK ||
        (rc = tf_proto_mp_read_uint(&r, &type)) != TF_OK)
        return rc;
    if (!tf_proto_msg_type_is_valid(type))
        return TF_E_BAD_VALUE;
    if ((rc = tf_proto_mp_read_bin(&r, 0, TF_PROTO_BODY_MAX, &o->body)) != TF_OK ||
        (rc = tf_proto_mp_read_bin(&r, TF_PROTO_SIG_LEN, TF_PROTO_SIG_LEN, &s)) != TF_OK)
        return rc;
    /* Padding: any length (none included), but only zero bytes. */
    if (!padding_is_zero(plain + r.pos, len - r.pos))
        return TF_E_TRAILING;
    o->type = (uint16_t)type;
    *sig = s.ptr;
    return TF_OK;
}

int tf_proto_envelope_open(const struct tf_proto_identity *me, const uint8_t *buf, size_t len,
                           uint64_t now, struct tf_proto_buf *plain,
                           struct tf_proto_envelope_opened *out)
{
    struct tf_proto_envelope e;
    int rc = tf_proto_envelope_decode(buf, len, &e);
    if (rc != TF_OK)
        return rc;
    if (sodium_memcmp(e.to_pk, me->sign_pk, TF_PROTO_KEY_LEN) != 0)
        return TF_E_NOT_FOR_ME;
    if (now > e.expires)
        return TF_E_EXPIRED;
    size_t plen = e.sealed.len - crypto_box_SEALBYTES;
    uint8_t *p = malloc(plen);
    if (p == NULL)
        return TF_E_NOMEM;
    struct tf_proto_envelope_opened o;
    const uint8_t *sig = NULL;
    size_t mlen = 0;
    uint8_t *m = NULL;
    if ((rc = tf_proto_identity_unseal(me, p, e.sealed.ptr, e.sealed.len)) != TF_OK)
        goto cleanup;
    if ((rc = decode_inner(p, plen, &o, &sig)) != TF_OK)
        goto cleanup;
    m = signed_part(e.to_pk, e.msg_id, e.expires, o.type, o.body.ptr, o.body.len, &mlen);
    if (m == NULL) {
        rc = TF_E_NOMEM;
        goto cleanup;
    }
    if ((rc = tf_proto_verify_tagged(TF_PROTO_DOMAIN_ENVELOPE, o.from_pk, m, mlen, sig)) != TF_OK)
        goto cleanup;
    plain->data = p;
    plain->len = plen;
    *out = o;
    p = NULL;
cleanup:
    free(m);
    free(p);
    return rc;
}

/* direct (issue 17) */

/* The largest direct inner part: fixarray, bin8 msg_id, uint64, fixint type,
 * bin16 body of TF_PROTO_BODY_MAX bytes. */
#define DIRECT_INNER_MAX (1 + 2 + TF_PROTO_MSG_ID_LEN + 9 + 1 + 3 + TF_PROTO_BODY_MAX)
static_assert(DIRECT_INNER_MAX <= TF_PROTO_ENVELOPE_PAD_MAX, "the largest direct part has a class");

int tf_proto_envelope_direct_encode(const uint8_t msg_id[static TF_PROTO_MSG_ID_LEN],
                                    uint64_t expires, uint16_t type, const uint8_t *body,
                                    size_t body_len, struct tf_proto_buf *out)
{
    if (!tf_proto_msg_type_is_valid(type))
        return TF_E_BAD_VALUE;
    if (body_len > TF_PROTO_BODY_MAX)
        return TF_E_TOO_LONG;
    struct tf_proto_mp_writer w;
    struct tf_proto_buf inner;
    tf_proto_mp_writer_init(&w);
    tf_proto_mp_write_array(&w, 4);
    tf_proto_mp_write_bin(&w, msg_id, TF_PROTO_MSG_ID_LEN);
    tf_proto_mp_write_uint(&w, expires);
    tf_proto_mp_write_uint(&w, type);
    tf_proto_mp_write_bin(&w, body, body_len);
    int rc = tf_proto_mp_writer_finish(&w, &inner);
    if (rc != TF_OK)
        return rc;
    size_t padded_len = tf_proto_envelope_padded_len(inner.len);
    uint8_t *padded = padded_len > 0 ? calloc(1, padded_len) : NULL;
    if (padded != NULL)
        memcpy(padded, inner.data, inner.len);
    sodium_memzero(inner.data, inner.len);
    tf_proto_buf_free(&inner);
    if (padded == NULL)
        return padded_len == 0 ? TF_E_TOO_LONG : TF_E_NOMEM;
    out->data = padded;
    out->len = padded_len;
    return TF_OK;
}

int tf_proto_envelope_direct_decode(const uint8_t *buf, size_t len,
                                    struct tf_proto_envelope_direct *out)
{
    struct tf_proto_mp_reader r;
    struct tf_proto_envelope_direct m;
    uint64_t type;
    int rc;
    if (len > TF_PROTO_ENVELOPE_PAD_MAX)
        return TF_E_TOO_LONG;
    memset(&m, 0, sizeof m);
    tf_proto_mp_reader_init(&r, buf, len);
    if ((rc = tf_proto_mp_read_array_exact(&r, 4)) != TF_OK ||
        (rc = tf_proto_mp_read_bin_fixed(&r, m.msg_id, TF_PROTO_MSG_ID_LEN)) != TF_OK ||
        (rc = tf_proto_mp_read_uint(&r, &m.expires)) != TF_OK ||
        (rc = tf_proto_mp_read_uint(&r, &type)) != TF_OK)
        return rc;
    if (!tf_proto_msg_type_is_valid(type)) {
        memcpy(out->msg_id, m.msg_id, TF_PROTO_MSG_ID_LEN);
        out->expires = m.expires;
        return TF_E_BAD_VALUE;
    }
    if ((rc = tf_proto_mp_read_bin(&r, 0, TF_PROTO_BODY_MAX, &m.body)) != TF_OK)
        return rc;
    if (!padding_is_zero(buf + r.pos, len - r.pos))
        return TF_E_TRAILING;
    if (len != tf_proto_envelope_padded_len(r.pos))
        return TF_E_BAD_LENGTH;
    m.type = (uint16_t)type; /* a valid type fits */
    *out = m;
    return TF_OK;
}
