/* SPDX-License-Identifier: MIT */
/*
 * Requests for an introduction (docs/PROTOCOL.md, "Requests"): the objects,
 * their pure checks, and the pure machine both ends of a request run.
 *
 *   request       = [version=1, asker_pk bin32, connector_pk bin32, seeking,
 *                    note, created, expires, nonce bin16]   (asker signs)
 *   request_id    = H("twofold/v1/request-id", request body bytes)
 *   request_close = [version=1, request_id bin32, action, time]
 *                   action 0: withdraw (asker signs), 1: decline (connector
 *                   signs)
 *
 * H(tag, m) = BLAKE2b-256(tag || 0x00 || m).  Both travel as signed
 * statements (proto/statement.h) in their own domains, "twofold/v1/request"
 * and "twofold/v1/request-close", inside envelopes of types
 * TF_PROTO_MSG_TYPE_REQUEST and TF_PROTO_MSG_TYPE_REQUEST_CLOSE.  The id is a
 * hash of the signed body, which names the asker: no one can make a request
 * with another asker's id.  A connector's proposal that answers a request
 * names the id in an optional eighth field (proto/intro.h), in the proposal to
 * the asker only.
 */
#ifndef TF_PROTO_REQUEST_H
#define TF_PROTO_REQUEST_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "proto/card.h"
#include "proto/err.h"
#include "proto/identity.h"
#include "proto/mp.h"
#include "proto/statement.h"

#define TF_PROTO_REQUEST_VERSION 1
#define TF_PROTO_REQUEST_ID_LEN TF_PROTO_HASH_LEN
#define TF_PROTO_REQUEST_NONCE_LEN 16
#define TF_PROTO_REQUEST_NOTE_MAX 2000 /* bytes of UTF-8 */
/* The longest a request may stay open (its expires - created). */
#define TF_PROTO_REQUEST_EXPIRES_MAX_S (90u * 86400u)

struct tf_proto_request {
    uint8_t id[TF_PROTO_REQUEST_ID_LEN]; /* filled by decode; ignored by sign */
    uint8_t asker_pk[TF_PROTO_KEY_LEN];
    uint8_t connector_pk[TF_PROTO_KEY_LEN];
    struct tf_proto_bytes seeking; /* a tag (tf_proto_tag_is_valid) */
    struct tf_proto_bytes note;    /* to the connector, may be empty */
    uint64_t created;
    uint64_t expires; /* > created, at most created + EXPIRES_MAX_S */
    uint8_t nonce[TF_PROTO_REQUEST_NONCE_LEN];
};

/* Signs a request by asker (whose key must be r->asker_pk: TF_E_KEY_MISMATCH)
 * after validating it as the decoder would.  *out is owned by the caller;
 * id (may be NULL) receives the request id. */
TF_MUST_CHECK int tf_proto_request_sign(const struct tf_proto_identity *asker,
                                        const struct tf_proto_request *r, struct tf_proto_buf *out,
                                        uint8_t id[TF_PROTO_REQUEST_ID_LEN]);

/* Decodes a signed request (format only: for re-reading one verified
 * before) and computes its id.  Views point into buf. */
TF_MUST_CHECK int tf_proto_request_decode(const uint8_t *buf, size_t len,
                                          struct tf_proto_request *out);

/*
 * Verifies a request received by the connector my_pk from from_pk at now.  In
 * order: format (TF_E_VERSION for another version, TF_E_BAD_VALUE for an
 * invalid tag, expires <= created or a lifetime over EXPIRES_MAX_S); the
 * asker's signature (TF_E_BAD_SIG); asker_pk = from_pk (TF_E_KEY_MISMATCH);
 * connector_pk = my_pk (TF_E_NOT_FOR_ME); now <= expires (TF_E_EXPIRED);
 * created <= now + skew (TF_E_FROM_FUTURE).
 */
TF_MUST_CHECK int tf_proto_request_verify(const uint8_t my_pk[static TF_PROTO_KEY_LEN],
                                          const uint8_t from_pk[static TF_PROTO_KEY_LEN],
                                          const uint8_t *buf, size_t len, uint64_t now,
                                          uint64_t skew, struct tf_proto_request *out);

enum tf_proto_request_action {
    TF_PROTO_REQUEST_ACTION_WITHDRAW = 0,
    TF_PROTO_REQUEST_ACTION_DECLINE = 1,
};

struct tf_proto_request_close {
    uint8_t id[TF_PROTO_REQUEST_ID_LEN];
    enum tf_proto_request_action action;
    uint64_t time;
};

TF_MUST_CHECK int tf_proto_request_close_sign(const struct tf_proto_identity *signer,
                                              const struct tf_proto_request_close *c,
                                              struct tf_proto_buf *out);

/* Verifies a request close signed by signer_pk: format (TF_E_BAD_VALUE for an
 * unknown action), then TF_E_BAD_SIG.  Whether the signer may take that
 * action on that request is the caller's check. */
TF_MUST_CHECK int tf_proto_request_close_verify(const uint8_t signer_pk[static TF_PROTO_KEY_LEN],
                                                const uint8_t *buf, size_t len,
                                                struct tf_proto_request_close *out);

/*
 * Feedback on an introduction, from a party to its connector (envelope type
 * TF_PROTO_MSG_TYPE_FEEDBACK, domain "twofold/v1/feedback"):
 *
 *   feedback = [version=1, intro_id bin32, connector_pk bin32, helped bool,
 *               note (0..500 bytes of multi-line text), time uint]
 *
 * signed by the party.  Whether the signer is a party of an introduction the
 * connector made is the connector's check.
 */
#define TF_PROTO_FEEDBACK_NOTE_MAX 500

struct tf_proto_feedback {
    uint8_t intro_id[TF_PROTO_HASH_LEN];
    uint8_t connector_pk[TF_PROTO_KEY_LEN];
    bool helped;
    struct tf_proto_bytes note;
    uint64_t time;
};

TF_MUST_CHECK int tf_proto_feedback_sign(const struct tf_proto_identity *party,
                                         const struct tf_proto_feedback *f,
                                         struct tf_proto_buf *out);

/* Verifies feedback from signer_pk to the connector my_pk: format
 * (TF_E_VERSION, text errors), signature (TF_E_BAD_SIG), connector_pk =
 * my_pk (TF_E_NOT_FOR_ME).  Views point into buf. */
TF_MUST_CHECK int tf_proto_feedback_verify(const uint8_t my_pk[static TF_PROTO_KEY_LEN],
                                           const uint8_t signer_pk[static TF_PROTO_KEY_LEN],
                                           const uint8_t *buf, size_t len,
                                           struct tf_proto_feedback *out);

/*
 * The request machine, run by both ends: the asker's node (role SENT) and
 * the connector's (role RECEIVED).  Pure: (state, event, now) -> (next,
 * actions, result).
 *
 *   open --withdraw--> withdrawn        (asker; the connector on WITHDRAWN)
 *   open --decline---> declined         (connector; the asker on DECLINED)
 *   open --answer----> answered         (connector; the asker on ANSWERED)
 *   open --tick after expires--> expired (both, silently)
 *   any closed state --tick after closed + retention--> collected
 *
 * A closed request (answered, declined, expired, withdrawn) never opens
 * again and is never answered: a second ANSWER or ANSWERED is refused
 * (TF_E_BAD_STATE), so a proposal claiming a closed request does not count
 * as answering it.  A repeated close event of the same kind is a duplicate:
 * no change, TF_OK.  An event of the other role is refused (TF_E_BAD_STATE).
 * An event on an open request after its expiry is refused with
 * TF_E_EXPIRED (the next tick expires it).
 */
enum tf_proto_req_role {
    TF_PROTO_REQ_ROLE_SENT = 0,     /* this node asked */
    TF_PROTO_REQ_ROLE_RECEIVED = 1, /* this node is the connector */
};

enum tf_proto_req_state {
    TF_PROTO_REQ_OPEN = 0,
    TF_PROTO_REQ_ANSWERED = 1,
    TF_PROTO_REQ_DECLINED = 2,
    TF_PROTO_REQ_EXPIRED = 3,
    TF_PROTO_REQ_WITHDRAWN = 4,
    TF_PROTO_REQ_REFUSED = 5, /* sent: the connector's node refused the envelope */
};

enum tf_proto_req_event {
    TF_PROTO_REQ_EV_CREATE,    /* SENT: the owner asks; RECEIVED: it arrives */
    TF_PROTO_REQ_EV_WITHDRAW,  /* SENT: the owner withdraws */
    TF_PROTO_REQ_EV_WITHDRAWN, /* RECEIVED: the asker's withdraw arrives */
    TF_PROTO_REQ_EV_DECLINE,   /* RECEIVED: the owner declines */
    TF_PROTO_REQ_EV_DECLINED,  /* SENT: the connector's decline arrives */
    TF_PROTO_REQ_EV_ANSWER,    /* RECEIVED: the owner (or policy) proposes */
    TF_PROTO_REQ_EV_ANSWERED,  /* SENT: a proposal claiming it arrives */
    TF_PROTO_REQ_EV_TICK,      /* the sweep */
    TF_PROTO_REQ_EV_REFUSED,   /* SENT: the connector's node refused it (ACK) */
};

/* What the executor does after a step, in this order. */
enum tf_proto_req_action {
    TF_PROTO_REQ_ACT_SEND_REQUEST = 1u << 0,  /* sign and send the request */
    TF_PROTO_REQ_ACT_SEND_WITHDRAW = 1u << 1, /* sign and send a withdraw */
    TF_PROTO_REQ_ACT_SEND_DECLINE = 1u << 2,  /* sign and send a decline */
    TF_PROTO_REQ_ACT_SAVE = 1u << 3,          /* store the record (state changed) */
    TF_PROTO_REQ_ACT_EMIT = 1u << 4,          /* emit "request.<next state>" */
    TF_PROTO_REQ_ACT_COLLECT = 1u << 5,       /* remove the record */
};

struct tf_proto_req {
    enum tf_proto_req_role role;
    enum tf_proto_req_state state;
    bool exists;      /* false before CREATE */
    uint64_t expires; /* the request's */
    uint64_t closed;  /* when it left open (0 while open) */
};

struct tf_proto_req_out {
    struct tf_proto_req next;
    unsigned actions; /* enum tf_proto_req_action bits */
    int rc;           /* TF_OK, TF_E_BAD_STATE or TF_E_EXPIRED */
};

/* One step.  retention: how long a closed request is kept (seconds). */
void tf_proto_req_step(const struct tf_proto_req *s, enum tf_proto_req_event ev, uint64_t now,
                       uint64_t retention, struct tf_proto_req_out *out);

/* When a TICK next changes s: expires + 1 while open, closed + retention
 * after.  UINT64_MAX when never. */
uint64_t tf_proto_req_deadline(const struct tf_proto_req *s, uint64_t retention);

/* "open", "answered", ... Static. */
const char *tf_proto_req_state_name(enum tf_proto_req_state s);

#endif
