/* SPDX-License-Identifier: MIT */
#include "proto/intro.h"

#include <string.h>

#include <sodium.h>

#define TAG_INTRO "twofold/v1/intro"
#define TAG_COMMIT "twofold/v1/commit"

void tf_proto_intro_commit(const uint8_t pk[static TF_PROTO_KEY_LEN],
                           const uint8_t salt[static TF_PROTO_SALT_LEN],
                           uint8_t out[static TF_PROTO_HASH_LEN])
{
    tf_proto_hash_tagged(out, TAG_COMMIT, pk, TF_PROTO_KEY_LEN, salt, TF_PROTO_SALT_LEN);
}

void tf_proto_intro_id(const uint8_t *core_bytes, size_t len,
                       uint8_t out[static TF_PROTO_INTRO_ID_LEN])
{
    tf_proto_hash_tagged(out, TAG_INTRO, core_bytes, len, NULL, 0);
}

/* Constant-time equality of two 32-byte values. */
static bool eq32(const uint8_t *a, const uint8_t *b)
{
    return crypto_verify_32(a, b) == 0;
}

static int check_core(const struct tf_proto_intro_core *c)
{
    if (!tf_proto_tag_is_valid(c->topic.ptr, c->topic.len))
        return TF_E_BAD_VALUE;
    if (c->mode != TF_PROTO_INTRO_MODE_PARALLEL && c->mode != TF_PROTO_INTRO_MODE_SEQUENTIAL)
        return TF_E_BAD_VALUE;
    if (c->expires <= c->created)
        return TF_E_BAD_VALUE;
    return TF_OK;
}

int tf_proto_intro_core_encode(const struct tf_proto_intro_core *core, struct tf_proto_buf *out)
{
    int rc = check_core(core);
    if (rc != TF_OK)
        return rc;
    struct tf_proto_mp_writer w;
    tf_proto_mp_writer_init(&w);
    tf_proto_mp_write_array(&w, 8);
    tf_proto_mp_write_uint(&w, TF_PROTO_INTRO_VERSION);
    tf_proto_mp_write_bin(&w, core->connector_pk, TF_PROTO_KEY_LEN);
    tf_proto_mp_write_bin(&w, core->commit_a, TF_PROTO_HASH_LEN);
    tf_proto_mp_write_bin(&w, core->commit_b, TF_PROTO_HASH_LEN);
    tf_proto_mp_write_text(&w, core->topic);
    tf_proto_mp_write_uint(&w, core->created);
    tf_proto_mp_write_uint(&w, core->expires);
    tf_proto_mp_write_uint(&w, (uint64_t)core->mode);
    return tf_proto_mp_writer_finish(&w, out);
}

int tf_proto_intro_core_decode(const uint8_t *buf, size_t len, struct tf_proto_intro_core *out)
{
    struct tf_proto_mp_reader r;
    struct tf_proto_intro_core c;
    uint64_t version, mode;
    int rc;
    tf_proto_mp_reader_init(&r, buf, len);
    if ((rc = tf_proto_mp_read_array_exact(&r, 8)) != TF_OK ||
        (rc = tf_proto_mp_read_uint(&r, &version)) != TF_OK)
        return rc;
    if (version != TF_PROTO_INTRO_VERSION)
        return TF_E_VERSION;
    /* Each field is checked as it is read (docs/PROTOCOL.md §2). */
    if ((rc = tf_proto_mp_read_bin_fixed(&r, c.connector_pk, TF_PROTO_KEY_LEN)) != TF_OK ||
        (rc = tf_proto_mp_read_bin_fixed(&r, c.commit_a, TF_PROTO_HASH_LEN)) != TF_OK ||
        (rc = tf_proto_mp_read_bin_fixed(&r, c.commit_b, TF_PROTO_HASH_LEN)) != TF_OK ||
        (rc = tf_proto_mp_read_str(&r, 1, TF_PROTO_TAG_MAX, TF_PROTO_TEXT_LINE, &c.topic)) != TF_OK)
        return rc;
    if (!tf_proto_tag_is_valid(c.topic.ptr, c.topic.len))
        return TF_E_BAD_VALUE;
    if ((rc = tf_proto_mp_read_uint(&r, &c.created)) != TF_OK ||
        (rc = tf_proto_mp_read_uint(&r, &c.expires)) != TF_OK)
        return rc;
    if (c.expires <= c.created)
        return TF_E_BAD_VALUE;
    if ((rc = tf_proto_mp_read_uint(&r, &mode)) != TF_OK)
        return rc;
    if (mode > TF_PROTO_INTRO_MODE_SEQUENTIAL)
        return TF_E_BAD_VALUE;
    c.mode = (enum tf_proto_intro_mode)mode;
    if ((rc = tf_proto_mp_read_end(&r)) != TF_OK)
        return rc;
    *out = c;
    return TF_OK;
}

static int read_side(struct tf_proto_mp_reader *r, enum tf_proto_side *side)
{
    uint64_t v;
    int rc = tf_proto_mp_read_uint(r, &v);
    if (rc != TF_OK)
        return rc;
    if (v > TF_PROTO_SIDE_B)
        return TF_E_BAD_VALUE;
    *side = (enum tf_proto_side)v;
    return TF_OK;
}

/* Signs body (owned, freed here) as a statement of the given domain. */
static int finish_and_sign(const struct tf_proto_identity *id, enum tf_proto_domain domain,
                           struct tf_proto_mp_writer *w, struct tf_proto_buf *out)
{
    struct tf_proto_buf body;
    int rc = tf_proto_mp_writer_finish(w, &body);
    if (rc != TF_OK)
        return rc;
    rc = tf_proto_statement_sign(id, domain, body.data, body.len, out);
    tf_proto_buf_free(&body);
    return rc;
}

/* Proposal. */

int tf_proto_proposal_sign(const struct tf_proto_identity *connector,
                           const struct tf_proto_proposal *p, struct tf_proto_buf *out)
{
    uint8_t id[TF_PROTO_INTRO_ID_LEN];
    tf_proto_intro_id(p->core_bytes.ptr, p->core_bytes.len, id);
    if (!eq32(id, p->intro_id))
        return TF_E_INTRO_ID;
    if (p->side != TF_PROTO_SIDE_A && p->side != TF_PROTO_SIDE_B)
        return TF_E_BAD_VALUE;
    if (p->about_other.len > TF_PROTO_NOTE_MAX || p->note.len > TF_PROTO_NOTE_MAX)
        return TF_E_TOO_LONG;
    struct tf_proto_mp_writer w;
    tf_proto_mp_writer_init(&w);
    tf_proto_mp_write_array(&w, p->has_request ? 8 : 7);
    tf_proto_mp_write_bin(&w, p->intro_id, TF_PROTO_INTRO_ID_LEN);
    tf_proto_mp_write_bin(&w, p->core_bytes.ptr, p->core_bytes.len);
    tf_proto_mp_write_uint(&w, (uint64_t)p->side);
    tf_proto_mp_write_bin(&w, p->salt, TF_PROTO_SALT_LEN);
    tf_proto_mp_write_bin(&w, p->connector_card.ptr, p->connector_card.len);
    tf_proto_mp_write_text(&w, p->about_other);
    tf_proto_mp_write_text(&w, p->note);
    if (p->has_request)
        tf_proto_mp_write_bin(&w, p->request_id, TF_PROTO_HASH_LEN);
    return finish_and_sign(connector, TF_PROTO_DOMAIN_PROPOSAL, &w, out);
}

static int proposal_decode(const uint8_t *buf, size_t len, struct tf_proto_statement *st,
                           struct tf_proto_proposal *p)
{
    struct tf_proto_mp_reader r;
    int rc;
    if ((rc = tf_proto_statement_parse(buf, len, st)) != TF_OK)
        return rc;
    uint32_t fields;
    tf_proto_mp_reader_init(&r, st->body.ptr, st->body.len);
    /* Seven fields, or eight with the request it answers. */
    if ((rc = tf_proto_mp_read_array(&r, UINT32_MAX, &fields)) != TF_OK)
        return rc;
    if (fields != 7 && fields != 8)
        return TF_E_COUNT;
    p->has_request = fields == 8;
    if ((rc = tf_proto_mp_read_bin_fixed(&r, p->intro_id, TF_PROTO_INTRO_ID_LEN)) != TF_OK ||
        (rc = tf_proto_mp_read_bin(&r, 1, TF_PROTO_BODY_MAX, &p->core_bytes)) != TF_OK ||
        (rc = read_side(&r, &p->side)) != TF_OK ||
        (rc = tf_proto_mp_read_bin_fixed(&r, p->salt, TF_PROTO_SALT_LEN)) != TF_OK ||
        (rc = tf_proto_mp_read_bin(&r, 1, TF_PROTO_CARD_SIGNED_MAX, &p->connector_card)) != TF_OK ||
        (rc = tf_proto_mp_read_str(&r, 0, TF_PROTO_NOTE_MAX, TF_PROTO_TEXT_MULTILINE,
                                   &p->about_other)) != TF_OK ||
        (rc = tf_proto_mp_read_str(&r, 0, TF_PROTO_NOTE_MAX, TF_PROTO_TEXT_MULTILINE, &p->note)) !=
            TF_OK ||
        (p->has_request &&
         (rc = tf_proto_mp_read_bin_fixed(&r, p->request_id, TF_PROTO_HASH_LEN)) != TF_OK) ||
        (rc = tf_proto_mp_read_end(&r)) != TF_OK)
        return rc;
    return tf_proto_intro_core_decode(p->core_bytes.ptr, p->core_bytes.len, &p->core);
}

int tf_proto_proposal_decode(const uint8_t *buf, size_t len, struct tf_proto_proposal *out)
{
    struct tf_proto_statement st;
    struct tf_proto_proposal p;
    int rc = proposal_decode(buf, len, &st, &p);
    if (rc != TF_OK)
        return rc;
    struct tf_proto_statement cst;
    if ((rc = tf_proto_statement_parse(p.connector_card.ptr, p.connector_card.len, &cst)) !=
            TF_OK ||
        (rc = tf_proto_card_decode_body(cst.body.ptr, cst.body.len, &p.card)) != TF_OK)
        return rc;
    *out = p;
    return TF_OK;
}

int tf_proto_proposal_verify(const uint8_t my_pk[static TF_PROTO_KEY_LEN], const uint8_t *buf,
                             size_t len, uint64_t now, uint64_t skew, struct tf_proto_proposal *out)
{
    return tf_proto_proposal_verify_known(my_pk, buf, len, now, skew,
                                          (struct tf_proto_known){NULL, 0}, out);
}

int tf_proto_proposal_verify_known(const uint8_t my_pk[static TF_PROTO_KEY_LEN], const uint8_t *buf,
                                   size_t len, uint64_t now, uint64_t skew,
                                   struct tf_proto_known connector_card,
                                   struct tf_proto_proposal *out)
{
    struct tf_proto_statement st;
    struct tf_proto_proposal p;
    uint8_t h[TF_PROTO_HASH_LEN];
    int rc;
    if ((rc = proposal_decode(buf, len, &st, &p)) != TF_OK)
        return rc;
    if ((rc = tf_proto_statement_verify(&st, TF_PROTO_DOMAIN_PROPOSAL, p.core.connector_pk)) !=
        TF_OK)
        return rc;
    tf_proto_intro_id(p.core_bytes.ptr, p.core_bytes.len, h);
    if (!eq32(h, p.intro_id))
        return TF_E_INTRO_ID;
    if ((rc = tf_proto_card_verify_known(p.connector_card.ptr, p.connector_card.len, connector_card,
                                         &p.card)) != TF_OK)
        return rc;
    if (!eq32(p.card.sign_pk, p.core.connector_pk))
        return TF_E_CONNECTOR;
    tf_proto_intro_commit(my_pk, p.salt, h);
    if (!eq32(h, p.side == TF_PROTO_SIDE_A ? p.core.commit_a : p.core.commit_b))
        return TF_E_COMMITMENT;
    if (now > p.core.expires)
        return TF_E_EXPIRED;
    if (p.core.created > now && p.core.created - now > skew)
        return TF_E_FROM_FUTURE;
    *out = p;
    return TF_OK;
}

bool tf_proto_intro_expiry_is_valid(const struct tf_proto_intro_core *core, uint64_t now,
                                    uint64_t skew)
{
    if (core->expires <= core->created ||
        core->expires - core->created > TF_PROTO_INTRO_EXPIRES_MAX_S)
        return false;
    return core->expires <= now ||
           core->expires - now <= (uint64_t)TF_PROTO_INTRO_EXPIRES_MAX_S + skew;
}

/* Reply. */

int tf_proto_reply_sign(const struct tf_proto_identity *me, const struct tf_proto_reply *reply,
                        struct tf_proto_buf *out)
{
    bool accept = reply->decision == TF_PROTO_DECISION_ACCEPT;
    if (reply->decision != TF_PROTO_DECISION_ACCEPT && reply->decision != TF_PROTO_DECISION_DECLINE)
        return TF_E_BAD_VALUE;
    if (reply->side != TF_PROTO_SIDE_A && reply->side != TF_PROTO_SIDE_B)
        return TF_E_BAD_VALUE;
    if (accept && (reply->card.len == 0 || reply->card.len > TF_PROTO_CARD_SIGNED_MAX))
        return TF_E_BAD_VALUE;
    if ((accept && reply->note.len > TF_PROTO_NOTE_MAX) ||
        (!accept && reply->reason.len > TF_PROTO_REASON_MAX))
        return TF_E_TOO_LONG;
    struct tf_proto_mp_writer w;
    tf_proto_mp_writer_init(&w);
    tf_proto_mp_write_array(&w, 7);
    tf_proto_mp_write_bin(&w, reply->intro_id, TF_PROTO_INTRO_ID_LEN);
    tf_proto_mp_write_uint(&w, (uint64_t)reply->side);
    tf_proto_mp_write_uint(&w, (uint64_t)reply->decision);
    if (accept) {
        tf_proto_mp_write_bin(&w, reply->card.ptr, reply->card.len);
        tf_proto_mp_write_text(&w, reply->note);
        tf_proto_mp_write_nil(&w);
    } else {
        tf_proto_mp_write_nil(&w);
        tf_proto_mp_write_nil(&w);
        tf_proto_mp_write_text(&w, reply->reason);
    }
    tf_proto_mp_write_uint(&w, reply->time);
    return finish_and_sign(me, TF_PROTO_DOMAIN_REPLY, &w, out);
}

int tf_proto_reply_decode(const uint8_t *buf, size_t len, struct tf_proto_statement *st,
                          struct tf_proto_reply *out)
{
    struct tf_proto_mp_reader r;
    struct tf_proto_reply p;
    uint64_t decision;
    int rc;
    memset(&p, 0, sizeof p);
    if ((rc = tf_proto_statement_parse(buf, len, st)) != TF_OK)
        return rc;
    tf_proto_mp_reader_init(&r, st->body.ptr, st->body.len);
    if ((rc = tf_proto_mp_read_array_exact(&r, 7)) != TF_OK ||
        (rc = tf_proto_mp_read_bin_fixed(&r, p.intro_id, TF_PROTO_INTRO_ID_LEN)) != TF_OK ||
        (rc = read_side(&r, &p.side)) != TF_OK ||
        (rc = tf_proto_mp_read_uint(&r, &decision)) != TF_OK)
        return rc;
    if (decision > TF_PROTO_DECISION_ACCEPT)
        return TF_E_BAD_VALUE;
    p.decision = (enum tf_proto_decision)decision;
    if (p.decision == TF_PROTO_DECISION_ACCEPT) {
        if ((rc = tf_proto_mp_read_bin(&r, 1, TF_PROTO_CARD_SIGNED_MAX, &p.card)) != TF_OK ||
            (rc = tf_proto_mp_read_str(&r, 0, TF_PROTO_NOTE_MAX, TF_PROTO_TEXT_MULTILINE,
                                       &p.note)) != TF_OK ||
            (rc = tf_proto_mp_read_nil(&r)) != TF_OK)
            return rc;
    } else {
        if ((rc = tf_proto_mp_read_nil(&r)) != TF_OK || (rc = tf_proto_mp_read_nil(&r)) != TF_OK ||
            (rc = tf_proto_mp_read_str(&r, 0, TF_PROTO_REASON_MAX, TF_PROTO_TEXT_MULTILINE,
                                       &p.reason)) != TF_OK)
            return rc;
    }
    if ((rc = tf_proto_mp_read_uint(&r, &p.time)) != TF_OK ||
        (rc = tf_proto_mp_read_end(&r)) != TF_OK)
        return rc;
    *out = p;
    return TF_OK;
}

int tf_proto_reply_verify(const uint8_t signer_pk[static TF_PROTO_KEY_LEN],
                          const uint8_t intro_id[static TF_PROTO_INTRO_ID_LEN],
                          enum tf_proto_side side, const uint8_t *buf, size_t len,
                          struct tf_proto_reply *out)
{
    return tf_proto_reply_verify_known(signer_pk, intro_id, side, buf, len,
                                       (struct tf_proto_known){NULL, 0}, out);
}

int tf_proto_reply_verify_known(const uint8_t signer_pk[static TF_PROTO_KEY_LEN],
                                const uint8_t intro_id[static TF_PROTO_INTRO_ID_LEN],
                                enum tf_proto_side side, const uint8_t *buf, size_t len,
                                struct tf_proto_known signer_card, struct tf_proto_reply *out)
{
    struct tf_proto_statement st;
    struct tf_proto_reply p;
    int rc;
    if ((rc = tf_proto_reply_decode(buf, len, &st, &p)) != TF_OK)
        return rc;
    if (tf_proto_statement_verify(&st, TF_PROTO_DOMAIN_REPLY, signer_pk) != TF_OK)
        return TF_E_REPLY_SIG;
    if (!eq32(p.intro_id, intro_id))
        return TF_E_REPLY_INTRO;
    if (p.side != side)
        return TF_E_REPLY_SIDE;
    if (p.decision == TF_PROTO_DECISION_ACCEPT) {
        if ((rc = tf_proto_card_verify_known(p.card.ptr, p.card.len, signer_card,
                                             &p.card_fields)) != TF_OK)
            return rc;
        if (!eq32(p.card_fields.sign_pk, signer_pk))
            return TF_E_KEY_MISMATCH;
    }
    *out = p;
    return TF_OK;
}

/* Introduction. */

int tf_proto_introduction_sign(const struct tf_proto_identity *connector,
                               const struct tf_proto_introduction *intro, struct tf_proto_buf *out)
{
    uint8_t id[TF_PROTO_INTRO_ID_LEN];
    tf_proto_intro_id(intro->core_bytes.ptr, intro->core_bytes.len, id);
    if (!eq32(id, intro->intro_id))
        return TF_E_INTRO_ID;
    if (intro->note.len > TF_PROTO_NOTE_MAX)
        return TF_E_TOO_LONG;
    struct tf_proto_mp_writer w;
    tf_proto_mp_writer_init(&w);
    tf_proto_mp_write_array(&w, 8);
    tf_proto_mp_write_bin(&w, intro->intro_id, TF_PROTO_INTRO_ID_LEN);
    tf_proto_mp_write_bin(&w, intro->core_bytes.ptr, intro->core_bytes.len);
    tf_proto_mp_write_bin(&w, intro->salt_a, TF_PROTO_SALT_LEN);
    tf_proto_mp_write_bin(&w, intro->salt_b, TF_PROTO_SALT_LEN);
    tf_proto_mp_write_bin(&w, intro->reply_a.ptr, intro->reply_a.len);
    tf_proto_mp_write_bin(&w, intro->reply_b.ptr, intro->reply_b.len);
    tf_proto_mp_write_text(&w, intro->note);
    tf_proto_mp_write_uint(&w, intro->time);
    return finish_and_sign(connector, TF_PROTO_DOMAIN_INTRODUCTION, &w, out);
}

int tf_proto_introduction_decode(const uint8_t *buf, size_t len, struct tf_proto_statement *st,
                                 struct tf_proto_introduction *out)
{
    struct tf_proto_mp_reader r;
    struct tf_proto_introduction in;
    int rc;
    if ((rc = tf_proto_statement_parse(buf, len, st)) != TF_OK)
        return rc;
    tf_proto_mp_reader_init(&r, st->body.ptr, st->body.len);
    if ((rc = tf_proto_mp_read_array_exact(&r, 8)) != TF_OK ||
        (rc = tf_proto_mp_read_bin_fixed(&r, in.intro_id, TF_PROTO_INTRO_ID_LEN)) != TF_OK ||
        (rc = tf_proto_mp_read_bin(&r, 1, TF_PROTO_BODY_MAX, &in.core_bytes)) != TF_OK ||
        (rc = tf_proto_mp_read_bin_fixed(&r, in.salt_a, TF_PROTO_SALT_LEN)) != TF_OK ||
        (rc = tf_proto_mp_read_bin_fixed(&r, in.salt_b, TF_PROTO_SALT_LEN)) != TF_OK ||
        (rc = tf_proto_mp_read_bin(&r, 1, TF_PROTO_BODY_MAX, &in.reply_a)) != TF_OK ||
        (rc = tf_proto_mp_read_bin(&r, 1, TF_PROTO_BODY_MAX, &in.reply_b)) != TF_OK ||
        (rc = tf_proto_mp_read_str(&r, 0, TF_PROTO_NOTE_MAX, TF_PROTO_TEXT_MULTILINE, &in.note)) !=
            TF_OK ||
        (rc = tf_proto_mp_read_uint(&r, &in.time)) != TF_OK ||
        (rc = tf_proto_mp_read_end(&r)) != TF_OK)
        return rc;
    if ((rc = tf_proto_intro_core_decode(in.core_bytes.ptr, in.core_bytes.len, &in.core)) != TF_OK)
        return rc;
    *out = in;
    return TF_OK;
}

/* Step 4 of the materialisation check for one side. */
static int check_side(const struct tf_proto_introduction *in, enum tf_proto_side side,
                      const struct tf_proto_statement *st, struct tf_proto_reply *reply,
                      uint64_t skew, struct tf_proto_known own_reply)
{
    /* A reply this party signed itself: its card and signature are good. */
    const struct tf_proto_bytes *bytes = side == TF_PROTO_SIDE_A ? &in->reply_a : &in->reply_b;
    bool own = tf_proto_known_matches(own_reply, bytes->ptr, bytes->len);
    const uint8_t *commit = side == TF_PROTO_SIDE_A ? in->core.commit_a : in->core.commit_b;
    const uint8_t *salt = side == TF_PROTO_SIDE_A ? in->salt_a : in->salt_b;
    uint8_t h[TF_PROTO_HASH_LEN];
    int rc;
    if (reply->decision != TF_PROTO_DECISION_ACCEPT)
        return TF_E_REPLY_DECLINE;
    struct tf_proto_known card = {own ? reply->card.ptr : NULL, own ? reply->card.len : 0};
    if ((rc = tf_proto_card_verify_known(reply->card.ptr, reply->card.len, card,
                                         &reply->card_fields)) != TF_OK)
        return rc;
    tf_proto_intro_commit(reply->card_fields.sign_pk, salt, h);
    if (!eq32(h, commit))
        return TF_E_COMMITMENT;
    if (!own &&
        tf_proto_statement_verify(st, TF_PROTO_DOMAIN_REPLY, reply->card_fields.sign_pk) != TF_OK)
        return TF_E_REPLY_SIG;
    if (!eq32(reply->intro_id, in->intro_id))
        return TF_E_REPLY_INTRO;
    if (reply->side != side)
        return TF_E_REPLY_SIDE;
    if (reply->time > in->core.expires && reply->time - in->core.expires > skew)
        return TF_E_SIGNED_LATE;
    return TF_OK;
}

static int materialise_check(const uint8_t my_pk[static TF_PROTO_KEY_LEN], const uint8_t *my_reply,
                             size_t my_reply_len, const uint8_t *intro, size_t intro_len,
                             uint64_t skew, struct tf_proto_known own_reply,
                             struct tf_proto_materialised *out)
{
    struct tf_proto_statement st, st_a, st_b, st_mine;
    struct tf_proto_introduction in;
    struct tf_proto_reply ra, rb, mine;
    uint8_t h[TF_PROTO_HASH_LEN];
    int rc;

    /* 1. Format. */
    if ((rc = tf_proto_introduction_decode(intro, intro_len, &st, &in)) != TF_OK ||
        (rc = tf_proto_reply_decode(in.reply_a.ptr, in.reply_a.len, &st_a, &ra)) != TF_OK ||
        (rc = tf_proto_reply_decode(in.reply_b.ptr, in.reply_b.len, &st_b, &rb)) != TF_OK)
        return rc;
    /* 2. Connector signature. */
    if ((rc = tf_proto_statement_verify(&st, TF_PROTO_DOMAIN_INTRODUCTION, in.core.connector_pk)) !=
        TF_OK)
        return rc;
    /* 3. The core is the one the id names. */
    tf_proto_intro_id(in.core_bytes.ptr, in.core_bytes.len, h);
    if (!eq32(h, in.intro_id))
        return TF_E_INTRO_ID;
    /* 4. Both acceptances. */
    if ((rc = check_side(&in, TF_PROTO_SIDE_A, &st_a, &ra, skew, own_reply)) != TF_OK ||
        (rc = check_side(&in, TF_PROTO_SIDE_B, &st_b, &rb, skew, own_reply)) != TF_OK)
        return rc;
    /* 5. Two different people. */
    if (eq32(ra.card_fields.sign_pk, rb.card_fields.sign_pk))
        return TF_E_SAME_PARTY;
    /* 6. My reply is the one I sent.  A stored reply we cannot decode is not
     * ours either. */
    if (tf_proto_reply_decode(my_reply, my_reply_len, &st_mine, &mine) != TF_OK)
        return TF_E_NOT_MY_REPLY;
    const struct tf_proto_bytes *in_mine = mine.side == TF_PROTO_SIDE_A ? &in.reply_a : &in.reply_b;
    const struct tf_proto_reply *mine_checked = mine.side == TF_PROTO_SIDE_A ? &ra : &rb;
    const struct tf_proto_reply *other = mine.side == TF_PROTO_SIDE_A ? &rb : &ra;
    /* Both copies of my signed reply are public bytes: memcmp will do. */
    if (in_mine->len != my_reply_len || memcmp(in_mine->ptr, my_reply, my_reply_len) != 0 ||
        !eq32(mine_checked->card_fields.sign_pk, my_pk))
        return TF_E_NOT_MY_REPLY;
    /* 7. The introduction itself was made in time. */
    if (in.time > in.core.expires && in.time - in.core.expires > skew)
        return TF_E_SIGNED_LATE;

    memcpy(out->intro_id, in.intro_id, TF_PROTO_INTRO_ID_LEN);
    memcpy(out->connector_pk, in.core.connector_pk, TF_PROTO_KEY_LEN);
    out->topic = in.core.topic;
    out->my_side = mine.side;
    out->other_card = other->card;
    out->other = other->card_fields;
    out->other_note = other->note;
    out->connector_note = in.note;
    return TF_OK;
}

int tf_proto_intro_materialise_check(const uint8_t my_pk[static TF_PROTO_KEY_LEN],
                                     const uint8_t *my_reply, size_t my_reply_len,
                                     const uint8_t *intro, size_t intro_len, uint64_t skew,
                                     struct tf_proto_materialised *out)
{
    return materialise_check(my_pk, my_reply, my_reply_len, intro, intro_len, skew,
                             (struct tf_proto_known){NULL, 0}, out);
}

int tf_proto_intro_materialise_check_own(const uint8_t my_pk[static TF_PROTO_KEY_LEN],
                                         const uint8_t *my_reply, size_t my_reply_len,
                                         const uint8_t *intro, size_t intro_len, uint64_t skew,
                                         struct tf_proto_materialised *out)
{
    return materialise_check(my_pk, my_reply, my_reply_len, intro, intro_len, skew,
                             (struct tf_proto_known){my_reply, my_reply_len}, out);
}

/* Close. */

int tf_proto_close_sign(const struct tf_proto_identity *connector,
                        const uint8_t intro_id[static TF_PROTO_INTRO_ID_LEN],
                        struct tf_proto_buf *out)
{
    struct tf_proto_mp_writer w;
    tf_proto_mp_writer_init(&w);
    tf_proto_mp_write_array(&w, 1);
    tf_proto_mp_write_bin(&w, intro_id, TF_PROTO_INTRO_ID_LEN);
    return finish_and_sign(connector, TF_PROTO_DOMAIN_CLOSE, &w, out);
}

int tf_proto_close_verify(const uint8_t connector_pk[static TF_PROTO_KEY_LEN], const uint8_t *buf,
                          size_t len, uint8_t intro_id[static TF_PROTO_INTRO_ID_LEN])
{
    struct tf_proto_statement st;
    struct tf_proto_mp_reader r;
    uint8_t id[TF_PROTO_INTRO_ID_LEN];
    int rc;
    if ((rc = tf_proto_statement_parse(buf, len, &st)) != TF_OK)
        return rc;
    tf_proto_mp_reader_init(&r, st.body.ptr, st.body.len);
    if ((rc = tf_proto_mp_read_array_exact(&r, 1)) != TF_OK ||
        (rc = tf_proto_mp_read_bin_fixed(&r, id, TF_PROTO_INTRO_ID_LEN)) != TF_OK ||
        (rc = tf_proto_mp_read_end(&r)) != TF_OK)
        return rc;
    if ((rc = tf_proto_statement_verify(&st, TF_PROTO_DOMAIN_CLOSE, connector_pk)) != TF_OK)
        return rc;
    memcpy(intro_id, id, TF_PROTO_INTRO_ID_LEN);
    return TF_OK;
}
