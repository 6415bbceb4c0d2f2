/* SPDX-License-Identifier: MIT */
/*
 * The intro objects and their pure checks (docs/PROTOCOL.md, "Introductions").
 *
 *   core         = [version=1, connector_pk, commit_a, commit_b, topic,
 *                   created, expires, mode]
 *   intro_id     = H("twofold/v1/intro", core_bytes)
 *   commit_x     = H("twofold/v1/commit", pk_x || salt_x)
 *   proposal     = [intro_id, core_bytes, side, salt_x, connector_card,
 *                   about_other, note_to_x (, request_id)]  (connector signs)
 *   reply        = [intro_id, side, decision, card_x|nil, note|nil,
 *                   reason|nil, time]                        (party signs)
 *   introduction = [intro_id, core_bytes, salt_a, salt_b, reply_a, reply_b,
 *                   note, time]                              (connector signs)
 *   close        = [intro_id]                                (connector signs)
 *
 * H(tag, m) = BLAKE2b-256(tag || 0x00 || m).  Each object travels as a signed
 * statement (proto/statement.h) in its own domain.  Views in the decoded
 * structs point into the buffer that was decoded.
 */
#ifndef TF_PROTO_INTRO_H
#define TF_PROTO_INTRO_H

#include <stddef.h>
#include <stdint.h>

#include "proto/card.h"
#include "proto/err.h"
#include "proto/identity.h"
#include "proto/mp.h"
#include "proto/statement.h"

#define TF_PROTO_INTRO_VERSION 1
#define TF_PROTO_SALT_LEN 32
#define TF_PROTO_INTRO_ID_LEN TF_PROTO_HASH_LEN
#define TF_PROTO_NOTE_MAX 2000  /* bytes of UTF-8: notes, about_other */
#define TF_PROTO_REASON_MAX 500 /* bytes of UTF-8: a decline's private reason */
/* Clock skew tolerated between nodes, in seconds (5 minutes). */
#define TF_PROTO_SKEW_DEFAULT 300

enum tf_proto_intro_mode {
    TF_PROTO_INTRO_MODE_PARALLEL = 0,
    TF_PROTO_INTRO_MODE_SEQUENTIAL = 1,
};

enum tf_proto_side {
    TF_PROTO_SIDE_A = 0,
    TF_PROTO_SIDE_B = 1,
};

enum tf_proto_decision {
    TF_PROTO_DECISION_DECLINE = 0,
    TF_PROTO_DECISION_ACCEPT = 1,
};

struct tf_proto_intro_core {
    uint8_t connector_pk[TF_PROTO_KEY_LEN];
    uint8_t commit_a[TF_PROTO_HASH_LEN];
    uint8_t commit_b[TF_PROTO_HASH_LEN];
    struct tf_proto_bytes topic; /* a tag (tf_proto_tag_is_valid) */
    uint64_t created;
    uint64_t expires; /* must be > created */
    enum tf_proto_intro_mode mode;
};

/* commit = H("twofold/v1/commit", pk || salt). */
void tf_proto_intro_commit(const uint8_t pk[static TF_PROTO_KEY_LEN],
                           const uint8_t salt[static TF_PROTO_SALT_LEN],
                           uint8_t out[static TF_PROTO_HASH_LEN]);

/* intro_id = H("twofold/v1/intro", core_bytes). */
void tf_proto_intro_id(const uint8_t *core_bytes, size_t len,
                       uint8_t out[static TF_PROTO_INTRO_ID_LEN]);

/* The longest an intro may stay open: a connector proposes with expires at
 * most this long after created, and a party refuses a proposal whose core
 * says otherwise or that expires more than this (plus skew) after now
 * (docs/PROTOCOL.md §8). */
#define TF_PROTO_INTRO_EXPIRES_MAX_S (365u * 86400u)

/* True if core's lifetime is within TF_PROTO_INTRO_EXPIRES_MAX_S and it
 * expires by now + TF_PROTO_INTRO_EXPIRES_MAX_S + skew. */
bool tf_proto_intro_expiry_is_valid(const struct tf_proto_intro_core *core, uint64_t now,
                                    uint64_t skew);

/* Encodes a core after validating it as the decoder would. */
TF_MUST_CHECK int tf_proto_intro_core_encode(const struct tf_proto_intro_core *core,
                                             struct tf_proto_buf *out);

/* Strict decode: TF_E_VERSION for another version, TF_E_BAD_VALUE for an
 * invalid topic, unknown mode or expires <= created. */
TF_MUST_CHECK int tf_proto_intro_core_decode(const uint8_t *buf, size_t len,
                                             struct tf_proto_intro_core *out);

struct tf_proto_proposal {
    uint8_t intro_id[TF_PROTO_INTRO_ID_LEN];
    struct tf_proto_bytes core_bytes;
    struct tf_proto_intro_core core;      /* filled by decode/verify */
    enum tf_proto_side side;              /* the side this proposal asks */
    uint8_t salt[TF_PROTO_SALT_LEN];      /* opens commit_<side> */
    struct tf_proto_bytes connector_card; /* signed card */
    struct tf_proto_card card;            /* filled by verify */
    struct tf_proto_bytes about_other;
    struct tf_proto_bytes note;
    /* requests: the request this proposal answers (proto/request.h), sent
     * only to the asker as an eighth field; a proposal without it has seven
     * fields, as before. */
    bool has_request;
    uint8_t request_id[TF_PROTO_HASH_LEN];
};

/* Signs a proposal built from intro_id, core_bytes, side, salt,
 * connector_card, about_other and note.  intro_id must equal
 * H(core_bytes) (TF_E_INTRO_ID). */
TF_MUST_CHECK int tf_proto_proposal_sign(const struct tf_proto_identity *connector,
                                         const struct tf_proto_proposal *p,
                                         struct tf_proto_buf *out);

/* Decodes a signed proposal (format only, no signature or commitment check:
 * for re-reading one that was verified when it arrived).  Views point into
 * buf; the connector card is decoded but not verified. */
TF_MUST_CHECK int tf_proto_proposal_decode(const uint8_t *buf, size_t len,
                                           struct tf_proto_proposal *out);

/*
 * Verifies a proposal received by the party my_pk at time now.  In order:
 * format (statement, body, core); connector signature by core.connector_pk
 * (TF_E_BAD_SIG); H(core) = intro_id (TF_E_INTRO_ID); the connector card
 * verifies and names core.connector_pk (its own errors, then
 * TF_E_CONNECTOR); commit_<side> opens to my_pk with salt (TF_E_COMMITMENT);
 * now <= expires (TF_E_EXPIRED); created <= now + skew (TF_E_FROM_FUTURE).
 */
TF_MUST_CHECK int tf_proto_proposal_verify(const uint8_t my_pk[static TF_PROTO_KEY_LEN],
                                           const uint8_t *buf, size_t len, uint64_t now,
                                           uint64_t skew, struct tf_proto_proposal *out);
/* The same, where connector_card is a card the caller verified before (the
 * connector's card it holds; see struct tf_proto_known). */
TF_MUST_CHECK int tf_proto_proposal_verify_known(const uint8_t my_pk[static TF_PROTO_KEY_LEN],
                                                 const uint8_t *buf, size_t len, uint64_t now,
                                                 uint64_t skew,
                                                 struct tf_proto_known connector_card,
                                                 struct tf_proto_proposal *out);

struct tf_proto_reply {
    uint8_t intro_id[TF_PROTO_INTRO_ID_LEN];
    enum tf_proto_side side;
    enum tf_proto_decision decision;
    struct tf_proto_bytes card;       /* signed card: accept only */
    struct tf_proto_card card_fields; /* filled when card is verified */
    struct tf_proto_bytes note;       /* to the other party: accept only */
    struct tf_proto_bytes reason;     /* to the connector: decline only */
    uint64_t time;                    /* when signed (unix seconds) */
};

/* Signs a reply.  An accept carries card and note (reason ignored); a decline
 * carries reason (card and note ignored). */
TF_MUST_CHECK int tf_proto_reply_sign(const struct tf_proto_identity *me,
                                      const struct tf_proto_reply *reply, struct tf_proto_buf *out);

/* Decodes a signed reply without verifying anything but its format. */
TF_MUST_CHECK int tf_proto_reply_decode(const uint8_t *buf, size_t len,
                                        struct tf_proto_statement *st, struct tf_proto_reply *out);

/*
 * Connector side: verifies a reply from signer_pk for (intro_id, side).  In
 * order: format; signature (TF_E_REPLY_SIG); intro id (TF_E_REPLY_INTRO); side
 * (TF_E_REPLY_SIDE); for an accept, the card verifies and names signer_pk
 * (card errors, then TF_E_KEY_MISMATCH).
 */
TF_MUST_CHECK int tf_proto_reply_verify(const uint8_t signer_pk[static TF_PROTO_KEY_LEN],
                                        const uint8_t intro_id[static TF_PROTO_INTRO_ID_LEN],
                                        enum tf_proto_side side, const uint8_t *buf, size_t len,
                                        struct tf_proto_reply *out);
/* The same, where signer_card is the signer's card the caller verified
 * before (see struct tf_proto_known). */
TF_MUST_CHECK int tf_proto_reply_verify_known(const uint8_t signer_pk[static TF_PROTO_KEY_LEN],
                                              const uint8_t intro_id[static TF_PROTO_INTRO_ID_LEN],
                                              enum tf_proto_side side, const uint8_t *buf,
                                              size_t len, struct tf_proto_known signer_card,
                                              struct tf_proto_reply *out);

struct tf_proto_introduction {
    uint8_t intro_id[TF_PROTO_INTRO_ID_LEN];
    struct tf_proto_bytes core_bytes;
    struct tf_proto_intro_core core; /* filled by decode */
    uint8_t salt_a[TF_PROTO_SALT_LEN];
    uint8_t salt_b[TF_PROTO_SALT_LEN];
    struct tf_proto_bytes reply_a; /* signed replies, as received */
    struct tf_proto_bytes reply_b;
    struct tf_proto_bytes note;
    uint64_t time;
};

TF_MUST_CHECK int tf_proto_introduction_sign(const struct tf_proto_identity *connector,
                                             const struct tf_proto_introduction *intro,
                                             struct tf_proto_buf *out);

/* Decodes a signed introduction (format only). */
TF_MUST_CHECK int tf_proto_introduction_decode(const uint8_t *buf, size_t len,
                                               struct tf_proto_statement *st,
                                               struct tf_proto_introduction *out);

/* What a party learns from an introduction that passed the check. */
struct tf_proto_materialised {
    uint8_t intro_id[TF_PROTO_INTRO_ID_LEN];
    uint8_t connector_pk[TF_PROTO_KEY_LEN];
    struct tf_proto_bytes topic;
    enum tf_proto_side my_side;
    struct tf_proto_bytes other_card; /* signed card of the other party */
    struct tf_proto_card other;
    struct tf_proto_bytes other_note;     /* the other party's accept note */
    struct tf_proto_bytes connector_note; /* the introduction's note */
};

/*
 * The materialisation check.  my_pk is this party's identity; my_reply is the
 * signed acceptance it sent (the bytes it stored); intro is the received
 * signed introduction.  Checks, in this order, returning the first failure:
 *  1. format of the introduction, its core, and both replies (wrapper and
 *     body; their cards are checked in step 4) — decoding errors;
 *  2. connector signature by core.connector_pk (TF_E_BAD_SIG);
 *  3. H(core) = intro_id (TF_E_INTRO_ID);
 *  4. for side a, then side b: the reply is an accept (TF_E_REPLY_DECLINE);
 *     its card verifies (card errors); commit_x opens to the card's key with
 *     salt_x (TF_E_COMMITMENT); the reply is signed by that key
 *     (TF_E_REPLY_SIG); it names this intro (TF_E_REPLY_INTRO) and side x
 *     (TF_E_REPLY_SIDE); it was signed by expires + skew (TF_E_SIGNED_LATE);
 *  5. the two cards are different identities (TF_E_SAME_PARTY);
 *  6. my_reply is byte-for-byte the reply for my side, and that side's card
 *     is my_pk (TF_E_NOT_MY_REPLY);
 *  7. the introduction was signed by expires + skew (TF_E_SIGNED_LATE).
 * Arrival time does not matter.  Views in *out point into intro.
 */
TF_MUST_CHECK int tf_proto_intro_materialise_check(const uint8_t my_pk[static TF_PROTO_KEY_LEN],
                                                   const uint8_t *my_reply, size_t my_reply_len,
                                                   const uint8_t *intro, size_t intro_len,
                                                   uint64_t skew,
                                                   struct tf_proto_materialised *out);
/* The same check for a party that signed my_reply itself (the bytes it
 * stored when it answered): a reply in the introduction byte-identical to
 * my_reply is not verified again (neither its signature nor its card's), as
 * it is known good; every other step, and the order, are unchanged. */
TF_MUST_CHECK int tf_proto_intro_materialise_check_own(const uint8_t my_pk[static TF_PROTO_KEY_LEN],
                                                       const uint8_t *my_reply, size_t my_reply_len,
                                                       const uint8_t *intro, size_t intro_len,
                                                       uint64_t skew,
                                                       struct tf_proto_materialised *out);

/* Signs close = [intro_id]. */
TF_MUST_CHECK int tf_proto_close_sign(const struct tf_proto_identity *connector,
                                      const uint8_t intro_id[static TF_PROTO_INTRO_ID_LEN],
                                      struct tf_proto_buf *out);

/* Verifies a close from connector_pk: format, then TF_E_BAD_SIG; writes the
 * intro id it names. */
TF_MUST_CHECK int tf_proto_close_verify(const uint8_t connector_pk[static TF_PROTO_KEY_LEN],
                                        const uint8_t *buf, size_t len,
                                        uint8_t intro_id[static TF_PROTO_INTRO_ID_LEN]);

#endif
