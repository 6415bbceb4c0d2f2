/* SPDX-License-Identifier: MIT */
#include "fixture.h"

#include <string.h>

#include <sodium.h>

static struct tf_proto_bytes view(const char *s)
{
    struct tf_proto_bytes v = {(const uint8_t *)s, strlen(s)};
    return v;
}

int tf_fuzz_identity(struct tf_proto_identity *id, uint8_t b)
{
    uint8_t seed[TF_PROTO_SEED_LEN];
    memset(seed, b, sizeof seed);
    int rc = tf_proto_identity_from_seed(id, seed);
    sodium_memzero(seed, sizeof seed);
    return rc;
}

int tf_fuzz_card(const struct tf_proto_identity *id, const char *name, const char *addr,
                 uint64_t seq, struct tf_proto_buf *out)
{
    struct tf_proto_card c;
    memset(&c, 0, sizeof c);
    memcpy(c.sign_pk, id->sign_pk, TF_PROTO_KEY_LEN);
    memcpy(c.noise_pk, id->noise_pk, TF_PROTO_KEY_LEN);
    memcpy(c.box_pk, id->box_pk, TF_PROTO_KEY_LEN);
    c.name = view(name);
    c.n_addrs = 1;
    c.addrs[0] = view(addr);
    c.issued = TF_FUZZ_NOW - 86400;
    c.seq = seq;
    return tf_proto_card_sign(id, &c, out);
}

int tf_fuzz_core(const uint8_t connector_pk[static TF_PROTO_KEY_LEN],
                 const uint8_t pk_a[static TF_PROTO_KEY_LEN],
                 const uint8_t salt_a[static TF_PROTO_SALT_LEN],
                 const uint8_t pk_b[static TF_PROTO_KEY_LEN],
                 const uint8_t salt_b[static TF_PROTO_SALT_LEN], const char *topic,
                 uint64_t created, uint64_t expires, enum tf_proto_intro_mode mode,
                 struct tf_proto_buf *out, uint8_t intro_id[static TF_PROTO_INTRO_ID_LEN])
{
    struct tf_proto_intro_core core;
    memcpy(core.connector_pk, connector_pk, TF_PROTO_KEY_LEN);
    tf_proto_intro_commit(pk_a, salt_a, core.commit_a);
    tf_proto_intro_commit(pk_b, salt_b, core.commit_b);
    core.topic = view(topic);
    core.created = created;
    core.expires = expires;
    core.mode = mode;
    int rc = tf_proto_intro_core_encode(&core, out);
    if (rc == TF_OK)
        tf_proto_intro_id(out->data, out->len, intro_id);
    return rc;
}

int tf_fuzz_reply(const struct tf_proto_identity *id,
                  const uint8_t intro_id[static TF_PROTO_INTRO_ID_LEN], enum tf_proto_side side,
                  const struct tf_proto_buf *card, const char *note, uint64_t time,
                  struct tf_proto_buf *out)
{
    struct tf_proto_reply r;
    memset(&r, 0, sizeof r);
    memcpy(r.intro_id, intro_id, TF_PROTO_INTRO_ID_LEN);
    r.side = side;
    if (card != NULL) {
        r.decision = TF_PROTO_DECISION_ACCEPT;
        r.card.ptr = card->data;
        r.card.len = card->len;
        r.note = view(note);
    } else {
        r.decision = TF_PROTO_DECISION_DECLINE;
        r.reason = view(note);
    }
    r.time = time;
    return tf_proto_reply_sign(id, &r, out);
}

int tf_fuzz_fixture_init(struct tf_fuzz_fixture *f)
{
    int rc;
    memset(f, 0, sizeof *f);
    memset(f->salt_a, 0xa1, sizeof f->salt_a);
    memset(f->salt_b, 0xb2, sizeof f->salt_b);
    if ((rc = tf_fuzz_identity(&f->me, TF_FUZZ_SEED_ME)) != TF_OK ||
        (rc = tf_fuzz_identity(&f->other, TF_FUZZ_SEED_OTHER)) != TF_OK ||
        (rc = tf_fuzz_identity(&f->connector, TF_FUZZ_SEED_CONNECTOR)) != TF_OK ||
        (rc = tf_fuzz_card(&f->me, "me", "127.0.0.1:7001", 1, &f->me_card)) != TF_OK ||
        (rc = tf_fuzz_card(&f->other, "other", "[::1]:7002", 1, &f->other_card)) != TF_OK ||
        (rc = tf_fuzz_card(&f->connector, "connector", "node.example:7003", 1,
                           &f->connector_card)) != TF_OK ||
        (rc = tf_fuzz_core(f->connector.sign_pk, f->me.sign_pk, f->salt_a, f->other.sign_pk,
                           f->salt_b, "coffee", TF_FUZZ_CREATED, TF_FUZZ_EXPIRES,
                           TF_PROTO_INTRO_MODE_PARALLEL, &f->core, f->intro_id)) != TF_OK ||
        (rc = tf_fuzz_reply(&f->me, f->intro_id, TF_PROTO_SIDE_A, &f->me_card, "hello from me",
                            TF_FUZZ_NOW - 300, &f->my_reply)) != TF_OK ||
        (rc = tf_fuzz_reply(&f->other, f->intro_id, TF_PROTO_SIDE_B, &f->other_card,
                            "hello from other", TF_FUZZ_NOW - 200, &f->other_reply)) != TF_OK)
        return rc;
    return TF_OK;
}

void tf_fuzz_fixture_deinit(struct tf_fuzz_fixture *f)
{
    tf_proto_buf_free(&f->me_card);
    tf_proto_buf_free(&f->other_card);
    tf_proto_buf_free(&f->connector_card);
    tf_proto_buf_free(&f->core);
    tf_proto_buf_free(&f->my_reply);
    tf_proto_buf_free(&f->other_reply);
    tf_proto_identity_deinit(&f->me);
    tf_proto_identity_deinit(&f->other);
    tf_proto_identity_deinit(&f->connector);
}

int tf_fuzz_noise_start(struct tf_proto_noise_handshake *hs, const struct tf_proto_identity *id,
                        enum tf_proto_noise_pattern pattern, enum tf_proto_noise_role role,
                        const uint8_t *rs_pk)
{
    uint8_t e[TF_PROTO_NOISE_KEY_LEN];
    memset(e,
           role == TF_PROTO_NOISE_ROLE_INITIATOR ? TF_FUZZ_NOISE_E_INITIATOR
                                                 : TF_FUZZ_NOISE_E_RESPONDER,
           sizeof e);
    struct tf_proto_noise_config cfg = {
        .pattern = pattern,
        .role = role,
        .prologue = (const uint8_t *)TF_PROTO_NOISE_PROLOGUE,
        .prologue_len = TF_PROTO_NOISE_PROLOGUE_LEN,
        .s_sk = tf_proto_identity_noise_sk(id),
        .e_sk = e,
        .rs_pk = rs_pk,
    };
    return tf_proto_noise_handshake_init(hs, &cfg);
}

int tf_fuzz_noise_xx(const struct tf_fuzz_fixture *f, struct tf_fuzz_noise_xx *out)
{
    struct tf_proto_noise_handshake init, resp;
    struct tf_proto_noise_cipher init_send, init_recv, resp_send;
    uint8_t payload[TF_FUZZ_NOISE_MSG_CAP];
    size_t plen;
    int rc;
    memset(out, 0, sizeof *out);
    memset(&init, 0, sizeof init);
    memset(&resp, 0, sizeof resp);
    if ((rc = tf_fuzz_noise_start(&init, &f->me, TF_PROTO_NOISE_PATTERN_XX,
                                  TF_PROTO_NOISE_ROLE_INITIATOR, NULL)) != TF_OK ||
        (rc = tf_fuzz_noise_start(&resp, &f->other, TF_PROTO_NOISE_PATTERN_XX,
                                  TF_PROTO_NOISE_ROLE_RESPONDER, NULL)) != TF_OK)
        goto cleanup;
    out->resp_before_msg1 = resp;
    if ((rc = tf_proto_noise_handshake_write(&init, NULL, 0, out->msg[0], TF_FUZZ_NOISE_MSG_CAP,
                                             &out->len[0])) != TF_OK ||
        (rc = tf_proto_noise_handshake_read(&resp, out->msg[0], out->len[0], payload,
                                            sizeof payload, &plen)) != TF_OK ||
        (rc = tf_proto_noise_handshake_write(&resp, f->other_card.data, f->other_card.len,
                                             out->msg[1], TF_FUZZ_NOISE_MSG_CAP, &out->len[1])) !=
            TF_OK)
        goto cleanup;
    out->init_before_msg2 = init;
    if ((rc = tf_proto_noise_handshake_read(&init, out->msg[1], out->len[1], payload,
                                            sizeof payload, &plen)) != TF_OK ||
        (rc = tf_proto_noise_handshake_write(&init, f->me_card.data, f->me_card.len, out->msg[2],
                                             TF_FUZZ_NOISE_MSG_CAP, &out->len[2])) != TF_OK)
        goto cleanup;
    out->resp_before_msg3 = resp;
    if ((rc = tf_proto_noise_handshake_read(&resp, out->msg[2], out->len[2], payload,
                                            sizeof payload, &plen)) != TF_OK ||
        (rc = tf_proto_noise_handshake_split(&init, &init_send, &init_recv)) != TF_OK ||
        (rc = tf_proto_noise_handshake_split(&resp, &resp_send, &out->resp_recv)) != TF_OK ||
        (rc = tf_proto_noise_cipher_encrypt(&init_send, (const uint8_t *)"hello", 5, out->transport,
                                            sizeof out->transport, &out->transport_len)) != TF_OK)
        goto cleanup;
    tf_proto_noise_cipher_deinit(&init_send);
    tf_proto_noise_cipher_deinit(&init_recv);
    tf_proto_noise_cipher_deinit(&resp_send);
cleanup:
    tf_proto_noise_handshake_deinit(&init);
    tf_proto_noise_handshake_deinit(&resp);
    return rc;
}

int tf_fuzz_noise_ik_msg1(const struct tf_fuzz_fixture *f, uint8_t *out, size_t cap, size_t *len)
{
    struct tf_proto_noise_handshake init;
    memset(&init, 0, sizeof init);
    int rc = tf_fuzz_noise_start(&init, &f->me, TF_PROTO_NOISE_PATTERN_IK,
                                 TF_PROTO_NOISE_ROLE_INITIATOR, f->other.noise_pk);
    if (rc == TF_OK)
        rc = tf_proto_noise_handshake_write(&init, f->me_card.data, f->me_card.len, out, cap, len);
    tf_proto_noise_handshake_deinit(&init);
    return rc;
}
