/* SPDX-License-Identifier: MIT */
/*
 * Signed statements and tagged hashes.
 *
 * Every signature covers  tag || 0x00 || bytes  where tag is the domain tag of
 * the object type ("twofold/v1/card", ...).  The NUL separates tags that are
 * prefixes of one another ("twofold/v1/intro" and "twofold/v1/introduction").
 * A signed statement on the wire is the msgpack array [bin body, bin sig]: the
 * signature is checked over the body bytes exactly as received, and the body
 * is decoded only after that (never re-encoded before checking).
 */
#ifndef TF_PROTO_STATEMENT_H
#define TF_PROTO_STATEMENT_H

#include <stddef.h>
#include <stdint.h>

#include "proto/err.h"
#include "proto/identity.h"
#include "proto/mp.h"

#define TF_PROTO_HASH_LEN 32
/* Largest statement body: keeps every envelope inside one 64 KiB frame. */
#define TF_PROTO_BODY_MAX 49152

enum tf_proto_domain {
    TF_PROTO_DOMAIN_CARD,
    TF_PROTO_DOMAIN_PROPOSAL,
    TF_PROTO_DOMAIN_REPLY,
    TF_PROTO_DOMAIN_INTRODUCTION,
    TF_PROTO_DOMAIN_CLOSE,
    TF_PROTO_DOMAIN_ENVELOPE,
    /* requests (proto/request.h) */
    TF_PROTO_DOMAIN_REQUEST,
    TF_PROTO_DOMAIN_REQUEST_CLOSE,
    TF_PROTO_DOMAIN_FEEDBACK,
};

/* The domain tag string, e.g. "twofold/v1/reply".  Static. */
const char *tf_proto_domain_tag(enum tf_proto_domain domain);

/* out = BLAKE2b-256(tag || 0x00 || a || b).  b may be NULL with blen 0. */
void tf_proto_hash_tagged(uint8_t out[static TF_PROTO_HASH_LEN], const char *tag, const uint8_t *a,
                          size_t alen, const uint8_t *b, size_t blen);

/* Signs tag || 0x00 || msg.  TF_E_NOMEM or TF_E_INVALID_ARG on failure. */
TF_MUST_CHECK int tf_proto_sign_tagged(const struct tf_proto_identity *id,
                                       enum tf_proto_domain domain, const uint8_t *msg, size_t len,
                                       uint8_t sig[static TF_PROTO_SIG_LEN]);

/* Verifies a signature over tag || 0x00 || msg.  TF_OK or TF_E_BAD_SIG. */
TF_MUST_CHECK int tf_proto_verify_tagged(enum tf_proto_domain domain,
                                         const uint8_t pk[static TF_PROTO_KEY_LEN],
                                         const uint8_t *msg, size_t len,
                                         const uint8_t sig[static TF_PROTO_SIG_LEN]);

/* Builds the wire form [bin body, bin sig] signed by id.  *out is owned by the
 * caller. */
TF_MUST_CHECK int tf_proto_statement_sign(const struct tf_proto_identity *id,
                                          enum tf_proto_domain domain, const uint8_t *body,
                                          size_t len, struct tf_proto_buf *out);

/* A parsed statement: views into the caller's buffer. */
struct tf_proto_statement {
    struct tf_proto_bytes body;
    const uint8_t *sig; /* TF_PROTO_SIG_LEN bytes */
};

/* Splits the wire form (strictly: exactly two fields, no trailing bytes, body
 * at most TF_PROTO_BODY_MAX).  Does not verify. */
TF_MUST_CHECK int tf_proto_statement_parse(const uint8_t *buf, size_t len,
                                           struct tf_proto_statement *out);

/* Verifies a parsed statement with pk in the given domain. */
TF_MUST_CHECK int tf_proto_statement_verify(const struct tf_proto_statement *st,
                                            enum tf_proto_domain domain,
                                            const uint8_t pk[static TF_PROTO_KEY_LEN]);

#endif
