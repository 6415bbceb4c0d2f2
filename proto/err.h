/* SPDX-License-Identifier: MIT */
/*
 * Error codes shared by every twofold module.
 *
 * Functions return 0 (TF_OK) on success and a negative value on failure.
 * System errors are -errno (libuv's codes are the same); twofold's own codes
 * live below -10000 so the two ranges never collide.  Each code has a stable
 * short name (tf_err_name, used in test vectors and docs/PROTOCOL.md) and a
 * human message (tf_strerror).
 */
#ifndef TF_PROTO_ERR_H
#define TF_PROTO_ERR_H

#define TF_MUST_CHECK __attribute__((warn_unused_result))

/* X(name, value, message).  Values are part of the control protocol: never
 * renumber, only append. */
#define TF_ERR_LIST(X)                                                                             \
    X(AGAIN, -10001, "need more bytes")                                                            \
    X(NOMEM, -10002, "out of memory")                                                              \
    X(INVALID_ARG, -10003, "invalid argument")                                                     \
    X(TRUNCATED, -10010, "input ends in the middle of a value")                                    \
    X(TRAILING, -10011, "trailing bytes after the value")                                          \
    X(TYPE, -10012, "value has the wrong msgpack type")                                            \
    X(NONCANONICAL, -10013, "value is not in canonical (shortest) msgpack form")                   \
    X(TOO_LONG, -10014, "length or count is larger than allowed")                                  \
    X(TOO_DEEP, -10015, "nesting is too deep")                                                     \
    X(DUP_KEY, -10016, "duplicate map key")                                                        \
    X(BAD_KEY, -10017, "missing, unknown or out-of-order map key")                                 \
    X(BAD_LENGTH, -10018, "fixed-size field has the wrong length")                                 \
    X(BAD_UTF8, -10019, "text is not valid UTF-8")                                                 \
    X(BAD_TEXT, -10023, "text contains control characters or is not allowed here")                 \
    X(BAD_VALUE, -10020, "field value is out of range")                                            \
    X(VERSION, -10021, "unknown protocol version")                                                 \
    X(COUNT, -10022, "array has the wrong number of fields")                                       \
    X(BAD_PREFIX, -10030, "text has the wrong prefix")                                             \
    X(BAD_CHAR, -10031, "text contains a character outside its alphabet")                          \
    X(BAD_CHECKSUM, -10032, "checksum does not match (mistyped character?)")                       \
    X(BAD_ENCODING, -10033, "text is not valid base64url")                                         \
    X(MIXED_CASE, -10034, "text mixes upper and lower case")                                       \
    X(BAD_SIG, -10040, "signature does not verify")                                                \
    X(NOT_FOR_ME, -10041, "addressed to another identity")                                         \
    X(EXPIRED, -10042, "expired")                                                                  \
    X(BAD_SEAL, -10043, "sealed box does not open")                                                \
    X(STALE, -10044, "not newer than the copy already held")                                       \
    X(KEY_MISMATCH, -10045, "key does not match the expected identity")                            \
    X(FROM_FUTURE, -10046, "timestamp is too far in the future")                                   \
    X(INTRO_ID, -10050, "intro id is not the hash of the intro core")                              \
    X(COMMITMENT, -10051, "commitment does not open to the card's key")                            \
    X(REPLY_INTRO, -10052, "reply is for another intro")                                           \
    X(REPLY_SIDE, -10053, "reply is for the other side")                                           \
    X(REPLY_DECLINE, -10054, "reply is a decline, not an acceptance")                              \
    X(REPLY_SIG, -10055, "reply signature does not verify against the card's key")                 \
    X(NOT_MY_REPLY, -10056, "my reply in the introduction is not the one I sent")                  \
    X(SIGNED_LATE, -10057, "signed after the intro expired")                                       \
    X(SAME_PARTY, -10058, "both sides are the same identity")                                      \
    X(CONNECTOR, -10059, "connector card does not match the intro's connector")                    \
    X(DECRYPT, -10060, "message does not decrypt (authentication failed)")                         \
    X(LOW_ORDER, -10061, "Diffie-Hellman with a low-order point")                                  \
    X(NONCE_EXHAUSTED, -10062, "cipher nonce exhausted: rekey or reconnect")                       \
    X(BAD_STATE, -10063, "call not allowed in the current state")                                  \
    X(NOT_FOUND, -10070, "not found")                                                              \
    X(EXISTS, -10071, "already exists")                                                            \
    X(AMBIGUOUS, -10072, "name matches more than one entry")                                       \
    X(CORRUPT, -10073, "stored record is corrupt")                                                 \
    X(BAD_REQUEST, -10074, "malformed request")                                                    \
    X(UNKNOWN_VERB, -10075, "unknown request verb")                                                \
    X(NOT_RUNNING, -10076, "the node is not running")                                              \
    /* powerloss: a change refused because the store's disk is full */                             \
    X(FULL, -10090, "the disk is full")

enum tf_err {
    TF_OK = 0,
#define TF_ERR_ENUM(name, value, msg) TF_E_##name = (value),
    TF_ERR_LIST(TF_ERR_ENUM)
#undef TF_ERR_ENUM
};

/* Human message for any return code: ours, or -errno.  Never NULL; the
 * string is static. */
const char *tf_strerror(int err);

/* Stable short name ("E_BAD_SIG", "OK", or "ERRNO" for system errors), used by
 * the test vectors and the cross-implementation checker.  Static string. */
const char *tf_err_name(int err);

#endif
