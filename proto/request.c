/* SPDX-License-Identifier: MIT */
#include "proto/request.h"

#include <string.h>

#include <sodium.h>

#define TAG_REQUEST_ID "twofold/v1/request-id"

static int check_request(const struct tf_proto_request *r)
{
    if (!tf_proto_tag_is_valid(r->seeking.ptr, r->seeking.len))
        return TF_E_BAD_VALUE;
    if (r->note.len > TF_PROTO_REQUEST_NOTE_MAX)
        return TF_E_TOO_LONG;
    if (r->expires <= r->created || r->expires - r->created > TF_PROTO_REQUEST_EXPIRES_MAX_S)
        return TF_E_BAD_VALUE;
    return TF_OK;
}

int tf_proto_request_sign(const struct tf_proto_identity *asker, const struct tf_proto_request *r,
                          struct tf_proto_buf *out, uint8_t id[TF_PROTO_REQUEST_ID_LEN])
{
    if (sodium_memcmp(asker->sign_pk, r->asker_pk, TF_PROTO_KEY_LEN) != 0)
        return TF_E_KEY_MISMATCH;
    int rc = check_request(r);
    if (rc != TF_OK)
        return rc;
    if (!tf_proto_utf8_is_valid(r->note.ptr, r->note.len))
        return TF_E_BAD_UTF8;
    struct tf_proto_mp_writer w;
    struct tf_proto_buf body;
    tf_proto_mp_writer_init(&w);
    tf_proto_mp_write_array(&w, 8);
    tf_proto_mp_write_uint(&w, TF_PROTO_REQUEST_VERSION);
    tf_proto_mp_write_bin(&w, r->asker_pk, TF_PROTO_KEY_LEN);
    tf_proto_mp_write_bin(&w, r->connector_pk, TF_PROTO_KEY_LEN);
    tf_proto_mp_write_text(&w, r->seeking);
    tf_proto_mp_write_text(&w, r->note);
    tf_proto_mp_write_uint(&w, r->created);
    tf_proto_mp_write_uint(&w, r->expires);
    tf_proto_mp_write_bin(&w, r->nonce, TF_PROTO_REQUEST_NONCE_LEN);
    if ((rc = tf_proto_mp_writer_finish(&w, &body)) != TF_OK)
        return rc;
    if (id != NULL)
        tf_proto_hash_tagged(id, TAG_REQUEST_ID, body.data, body.len, NULL, 0);
    rc = tf_proto_statement_sign(asker, TF_PROTO_DOMAIN_REQUEST, body.data, body.len, out);
    tf_proto_buf_free(&body);
    return rc;
}

static int request_decode(const uint8_t *buf, size_t len, struct tf_proto_statement *st,
                          struct tf_proto_request *out)
{
    struct tf_proto_mp_reader r;
    struct tf_proto_request q;
    uint64_t version;
    int rc;
    memset(&q, 0, sizeof q);
    if ((rc = tf_proto_statement_parse(buf, len, st)) != TF_OK)
        return rc;
    tf_proto_mp_reader_init(&r, st->body.ptr, st->body.len);
    if ((rc = tf_proto_mp_read_array_exact(&r, 8)) != TF_OK ||
        (rc = tf_proto_mp_read_uint(&r, &version)) != TF_OK)
        return rc;
    if (version != TF_PROTO_REQUEST_VERSION)
        return TF_E_VERSION;
    /* Each field is checked as it is read (docs/PROTOCOL.md §2). */
    if ((rc = tf_proto_mp_read_bin_fixed(&r, q.asker_pk, TF_PROTO_KEY_LEN)) != TF_OK ||
        (rc = tf_proto_mp_read_bin_fixed(&r, q.connector_pk, TF_PROTO_KEY_LEN)) != TF_OK ||
        (rc = tf_proto_mp_read_str(&r, 1, TF_PROTO_TAG_MAX, TF_PROTO_TEXT_LINE, &q.seeking)) !=
            TF_OK)
        return rc;
    if (!tf_proto_tag_is_valid(q.seeking.ptr, q.seeking.len))
        return TF_E_BAD_VALUE;
    if ((rc = tf_proto_mp_read_str(&r, 0, TF_PROTO_REQUEST_NOTE_MAX, TF_PROTO_TEXT_MULTILINE,
                                   &q.note)) != TF_OK ||
        (rc = tf_proto_mp_read_uint(&r, &q.created)) != TF_OK ||
        (rc = tf_proto_mp_read_uint(&r, &q.expires)) != TF_OK)
        return rc;
    if (q.expires <= q.created || q.expires - q.created > TF_PROTO_REQUEST_EXPIRES_MAX_S)
        return TF_E_BAD_VALUE;
    if ((rc = tf_proto_mp_read_bin_fixed(&r, q.nonce, TF_PROTO_REQUEST_NONCE_LEN)) != TF_OK ||
        (rc = tf_proto_mp_read_end(&r)) != TF_OK)
        return rc;
    tf_proto_hash_tagged(q.id, TAG_REQUEST_ID, st->body.ptr, st->body.len, NULL, 0);
    *out = q;
    return TF_OK;
}

int tf_proto_request_decode(const uint8_t *buf, size_t len, struct tf_proto_request *out)
{
    struct tf_proto_statement st;
    return request_decode(buf, len, &st, out);
}

int tf_proto_request_verify(const uint8_t my_pk[static TF_PROTO_KEY_LEN],
                            const uint8_t from_pk[static TF_PROTO_KEY_LEN], const uint8_t *buf,
                            size_t len, uint64_t now, uint64_t skew, struct tf_proto_request *out)
{
    struct tf_proto_statement st;
    struct tf_proto_request q;
    int rc = request_decode(buf, len, &st, &q);
    if (rc != TF_OK)
        return rc;
    if ((rc = tf_proto_statement_verify(&st, TF_PROTO_DOMAIN_REQUEST, q.asker_pk)) != TF_OK)
        return rc;
    if (crypto_verify_32(q.asker_pk, from_pk) != 0)
        return TF_E_KEY_MISMATCH;
    if (crypto_verify_32(q.connector_pk, my_pk) != 0)
        return TF_E_NOT_FOR_ME;
    if (now > q.expires)
        return TF_E_EXPIRED;
    if (q.created > now && q.created - now > skew)
        return TF_E_FROM_FUTURE;
    *out = q;
    return TF_OK;
}

int tf_proto_request_close_sign(const struct tf_proto_identity *signer,
                                const struct tf_proto_request_close *c, struct tf_proto_buf *out)
{
    if (c->action != TF_PROTO_REQUEST_ACTION_WITHDRAW &&
        c->action != TF_PROTO_REQUEST_ACTION_DECLINE)
        return TF_E_BAD_VALUE;
    struct tf_proto_mp_writer w;
    struct tf_proto_buf body;
    tf_proto_mp_writer_init(&w);
    tf_proto_mp_write_array(&w, 4);
    tf_proto_mp_write_uint(&w, TF_PROTO_REQUEST_VERSION);
    tf_proto_mp_write_bin(&w, c->id, TF_PROTO_REQUEST_ID_LEN);
    tf_proto_mp_write_uint(&w, (uint64_t)c->action);
    tf_proto_mp_write_uint(&w, c->time);
    int rc = tf_proto_mp_writer_finish(&w, &body);
    if (rc != TF_OK)
        return rc;
    rc = tf_proto_statement_sign(signer, TF_PROTO_DOMAIN_REQUEST_CLOSE, body.data, body.len, out);
    tf_proto_buf_free(&body);
    return rc;
}

int tf_proto_request_close_verify(const uint8_t signer_pk[static TF_PROTO_KEY_LEN],
                                  const uint8_t *buf, size_t len,
                                  struct tf_proto_request_close *out)
{
    struct tf_proto_statement st;
    struct tf_proto_mp_reader r;
    struct tf_proto_request_close c;
    uint64_t version, action;
    int rc;
    if ((rc = tf_proto_statement_parse(buf, len, &st)) != TF_OK)
        return rc;
    tf_proto_mp_reader_init(&r, st.body.ptr, st.body.len);
    if ((rc = tf_proto_mp_read_array_exact(&r, 4)) != TF_OK ||
        (rc = tf_proto_mp_read_uint(&r, &version)) != TF_OK)
        return rc;
    if (version != TF_PROTO_REQUEST_VERSION)
        return TF_E_VERSION;
    if ((rc = tf_proto_mp_read_bin_fixed(&r, c.id, TF_PROTO_REQUEST_ID_LEN)) != TF_OK ||
        (rc = tf_proto_mp_read_uint(&r, &action)) != TF_OK)
        return rc;
    if (action > TF_PROTO_REQUEST_ACTION_DECLINE)
        return TF_E_BAD_VALUE;
    c.action = (enum tf_proto_request_action)action;
    if ((rc = tf_proto_mp_read_uint(&r, &c.time)) != TF_OK ||
        (rc = tf_proto_mp_read_end(&r)) != TF_OK)
        return rc;
    if ((rc = tf_proto_statement_verify(&st, TF_PROTO_DOMAIN_REQUEST_CLOSE, signer_pk)) != TF_OK)
        return rc;
    *out = c;
    return TF_OK;
}

/* Feedback. */

int tf_proto_feedback_sign(const struct tf_proto_identity *party, const struct tf_proto_feedback *f,
                           struct tf_proto_buf *out)
{
    if (f->note.len > TF_PROTO_FEEDBACK_NOTE_MAX)
        return TF_E_TOO_LONG;
    if (!tf_proto_utf8_is_valid(f->note.ptr, f->note.len))
        return TF_E_BAD_UTF8;
    struct tf_proto_mp_writer w;
    struct tf_proto_buf body;
    tf_proto_mp_writer_init(&w);
    tf_proto_mp_write_array(&w, 6);
    tf_proto_mp_write_uint(&w, TF_PROTO_REQUEST_VERSION);
    tf_proto_mp_write_bin(&w, f->intro_id, TF_PROTO_HASH_LEN);
    tf_proto_mp_write_bin(&w, f->connector_pk, TF_PROTO_KEY_LEN);
    tf_proto_mp_write_bool(&w, f->helped);
    tf_proto_mp_write_text(&w, f->note);
    tf_proto_mp_write_uint(&w, f->time);
    int rc = tf_proto_mp_writer_finish(&w, &body);
    if (rc != TF_OK)
        return rc;
    rc = tf_proto_statement_sign(party, TF_PROTO_DOMAIN_FEEDBACK, body.data, body.len, out);
    tf_proto_buf_free(&body);
    return rc;
}

int tf_proto_feedback_verify(const uint8_t my_pk[static TF_PROTO_KEY_LEN],
                             const uint8_t signer_pk[static TF_PROTO_KEY_LEN], const uint8_t *buf,
                             size_t len, struct tf_proto_feedback *out)
{
    struct tf_proto_statement st;
    struct tf_proto_mp_reader r;
    struct tf_proto_feedback f;
    uint64_t version;
    int rc;
    if ((rc = tf_proto_statement_parse(buf, len, &st)) != TF_OK)
        return rc;
    tf_proto_mp_reader_init(&r, st.body.ptr, st.body.len);
    if ((rc = tf_proto_mp_read_array_exact(&r, 6)) != TF_OK ||
        (rc = tf_proto_mp_read_uint(&r, &version)) != TF_OK)
        return rc;
    if (version != TF_PROTO_REQUEST_VERSION)
        return TF_E_VERSION;
    if ((rc = tf_proto_mp_read_bin_fixed(&r, f.intro_id, TF_PROTO_HASH_LEN)) != TF_OK ||
        (rc = tf_proto_mp_read_bin_fixed(&r, f.connector_pk, TF_PROTO_KEY_LEN)) != TF_OK ||
        (rc = tf_proto_mp_read_bool(&r, &f.helped)) != TF_OK ||
        (rc = tf_proto_mp_read_str(&r, 0, TF_PROTO_FEEDBACK_NOTE_MAX, TF_PROTO_TEXT_MULTILINE,
                                   &f.note)) != TF_OK ||
        (rc = tf_proto_mp_read_uint(&r, &f.time)) != TF_OK ||
        (rc = tf_proto_mp_read_end(&r)) != TF_OK)
        return rc;
    if ((rc = tf_proto_statement_verify(&st, TF_PROTO_DOMAIN_FEEDBACK, signer_pk)) != TF_OK)
        return rc;
    if (crypto_verify_32(f.connector_pk, my_pk) != 0)
        return TF_E_NOT_FOR_ME;
    *out = f;
    return TF_OK;
}

/* The machine. */

const char *tf_proto_req_state_name(enum tf_proto_req_state s)
{
    switch (s) {
    case TF_PROTO_REQ_OPEN:
        return "open";
    case TF_PROTO_REQ_ANSWERED:
        return "answered";
    case TF_PROTO_REQ_DECLINED:
        return "declined";
    case TF_PROTO_REQ_EXPIRED:
        return "expired";
    case TF_PROTO_REQ_WITHDRAWN:
        return "withdrawn";
    case TF_PROTO_REQ_REFUSED:
        return "refused";
    }
    return "?";
}

uint64_t tf_proto_req_deadline(const struct tf_proto_req *s, uint64_t retention)
{
    if (!s->exists)
        return UINT64_MAX;
    if (s->state == TF_PROTO_REQ_OPEN)
        return s->expires == UINT64_MAX ? UINT64_MAX : s->expires + 1;
    return s->closed > UINT64_MAX - retention ? UINT64_MAX : s->closed + retention;
}

/* The role each event belongs to, and the state it closes the request in
 * (OPEN for CREATE and TICK, which close nothing by themselves). */
static bool event_role(enum tf_proto_req_event ev, enum tf_proto_req_role *role,
                       enum tf_proto_req_state *closes)
{
    switch (ev) {
    case TF_PROTO_REQ_EV_CREATE:
    case TF_PROTO_REQ_EV_TICK:
        *closes = TF_PROTO_REQ_OPEN;
        return false; /* either role */
    case TF_PROTO_REQ_EV_WITHDRAW:
        *role = TF_PROTO_REQ_ROLE_SENT, *closes = TF_PROTO_REQ_WITHDRAWN;
        return true;
    case TF_PROTO_REQ_EV_WITHDRAWN:
        *role = TF_PROTO_REQ_ROLE_RECEIVED, *closes = TF_PROTO_REQ_WITHDRAWN;
        return true;
    case TF_PROTO_REQ_EV_DECLINE:
        *role = TF_PROTO_REQ_ROLE_RECEIVED, *closes = TF_PROTO_REQ_DECLINED;
        return true;
    case TF_PROTO_REQ_EV_DECLINED:
        *role = TF_PROTO_REQ_ROLE_SENT, *closes = TF_PROTO_REQ_DECLINED;
        return true;
    case TF_PROTO_REQ_EV_ANSWER:
        *role = TF_PROTO_REQ_ROLE_RECEIVED, *closes = TF_PROTO_REQ_ANSWERED;
        return true;
    case TF_PROTO_REQ_EV_ANSWERED:
        *role = TF_PROTO_REQ_ROLE_SENT, *closes = TF_PROTO_REQ_ANSWERED;
        return true;
    case TF_PROTO_REQ_EV_REFUSED:
        *role = TF_PROTO_REQ_ROLE_SENT, *closes = TF_PROTO_REQ_REFUSED;
        return true;
    }
    *closes = TF_PROTO_REQ_OPEN;
    return false;
}

void tf_proto_req_step(const struct tf_proto_req *s, enum tf_proto_req_event ev, uint64_t now,
                       uint64_t retention, struct tf_proto_req_out *out)
{
    enum tf_proto_req_role role = s->role;
    enum tf_proto_req_state closes;
    bool has_role = event_role(ev, &role, &closes);
    out->next = *s;
    out->actions = 0;
    out->rc = TF_OK;
    if (ev == TF_PROTO_REQ_EV_CREATE) {
        if (s->exists) { /* the same request again: a duplicate */
            return;
        }
        if (now > s->expires) {
            out->rc = TF_E_EXPIRED;
            return;
        }
        out->next.exists = true;
        out->next.state = TF_PROTO_REQ_OPEN;
        out->next.closed = 0;
        out->actions = TF_PROTO_REQ_ACT_SAVE | TF_PROTO_REQ_ACT_EMIT |
                       (s->role == TF_PROTO_REQ_ROLE_SENT ? TF_PROTO_REQ_ACT_SEND_REQUEST : 0u);
        return;
    }
    if (!s->exists || (has_role && role != s->role)) {
        out->rc = TF_E_BAD_STATE;
        return;
    }
    if (ev == TF_PROTO_REQ_EV_TICK) {
        if (s->state == TF_PROTO_REQ_OPEN && now > s->expires) {
            out->next.state = TF_PROTO_REQ_EXPIRED;
            out->next.closed = now;
            out->actions = TF_PROTO_REQ_ACT_SAVE | TF_PROTO_REQ_ACT_EMIT;
        } else if (s->state != TF_PROTO_REQ_OPEN && now >= tf_proto_req_deadline(s, retention)) {
            out->actions = TF_PROTO_REQ_ACT_COLLECT;
        }
        return;
    }
    if (s->state != TF_PROTO_REQ_OPEN) {
        /* The same close again changes nothing; anything else on a closed
         * request is refused (a closed request is never answered). */
        bool dup = s->state == closes && closes != TF_PROTO_REQ_ANSWERED;
        out->rc = dup ? TF_OK : TF_E_BAD_STATE;
        return;
    }
    if (now > s->expires) {
        out->rc = TF_E_EXPIRED;
        return;
    }
    out->next.state = closes;
    out->next.closed = now;
    out->actions = TF_PROTO_REQ_ACT_SAVE | TF_PROTO_REQ_ACT_EMIT;
    if (ev == TF_PROTO_REQ_EV_WITHDRAW)
        out->actions |= TF_PROTO_REQ_ACT_SEND_WITHDRAW;
    else if (ev == TF_PROTO_REQ_EV_DECLINE)
        out->actions |= TF_PROTO_REQ_ACT_SEND_DECLINE;
}
