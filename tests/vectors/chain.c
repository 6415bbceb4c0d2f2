/* SPDX-License-Identifier: MIT */
#include "chain.h"

#include <string.h>

static const char *const NAMES[VEC_COUNT] = {"carol", "alice", "bob", "dave", "mallory"};
static const char *const DISPLAY[VEC_COUNT] = {"Carol Connector", "Alice Avocat", "Bob Buyer",
                                               "Dave Developer", "Mallory"};

void vec_seed(enum vec_who who, uint8_t seed[static TF_PROTO_SEED_LEN])
{
    memset(seed, (int)who + 1, TF_PROTO_SEED_LEN);
}

const char *vec_name(enum vec_who who)
{
    return NAMES[who];
}

static struct tf_proto_bytes view(const char *s)
{
    struct tf_proto_bytes b = {(const uint8_t *)s, strlen(s)};
    return b;
}

int vec_world_init(struct vec_world *w)
{
    memset(w, 0, sizeof *w);
    for (int i = 0; i < VEC_COUNT; i++) {
        uint8_t seed[TF_PROTO_SEED_LEN];
        vec_seed((enum vec_who)i, seed);
        int rc = tf_proto_identity_from_seed(&w->id[i], seed);
        if (rc != TF_OK)
            return rc;
        struct tf_proto_card c;
        memset(&c, 0, sizeof c);
        memcpy(c.sign_pk, w->id[i].sign_pk, TF_PROTO_KEY_LEN);
        memcpy(c.noise_pk, w->id[i].noise_pk, TF_PROTO_KEY_LEN);
        memcpy(c.box_pk, w->id[i].box_pk, TF_PROTO_KEY_LEN);
        c.name = view(DISPLAY[i]);
        c.n_addrs = 1;
        static const char *const addrs[VEC_COUNT] = {"127.0.0.1:7451", "127.0.0.1:7452",
                                                     "127.0.0.1:7453", "[::1]:7454",
                                                     "mallory.example:7455"};
        c.addrs[0] = view(addrs[i]);
        if (i == VEC_ALICE) {
            c.n_offers = 1;
            c.offers[0] = view("real-estate-law");
        }
        if (i == VEC_BOB) {
            c.n_seeks = 1;
            c.seeks[0] = view("real-estate-law");
        }
        c.issued = VEC_NOW - 86400u;
        c.seq = 1;
        if ((rc = tf_proto_card_sign(&w->id[i], &c, &w->card[i])) != TF_OK)
            return rc;
    }
    return TF_OK;
}

void vec_world_deinit(struct vec_world *w)
{
    for (int i = 0; i < VEC_COUNT; i++) {
        tf_proto_identity_deinit(&w->id[i]);
        tf_proto_buf_free(&w->card[i]);
    }
}

int vec_reply(const struct vec_world *w, enum vec_who who, const uint8_t *intro_id,
              enum tf_proto_side side, enum tf_proto_decision decision, const char *text,
              uint64_t time, struct tf_proto_buf *out)
{
    struct tf_proto_reply r;
    memset(&r, 0, sizeof r);
    memcpy(r.intro_id, intro_id, TF_PROTO_INTRO_ID_LEN);
    r.side = side;
    r.decision = decision;
    r.card.ptr = w->card[who].data;
    r.card.len = w->card[who].len;
    if (decision == TF_PROTO_DECISION_ACCEPT)
        r.note = view(text);
    else
        r.reason = view(text);
    r.time = time;
    return tf_proto_reply_sign(&w->id[who], &r, out);
}

int vec_introduction(const struct vec_world *w, enum vec_who signer, const struct vec_intro *in,
                     const struct tf_proto_buf *core, const uint8_t *intro_id,
                     const uint8_t *salt_a, const uint8_t *salt_b,
                     const struct tf_proto_buf *reply_a, const struct tf_proto_buf *reply_b,
                     uint64_t time, struct tf_proto_buf *out)
{
    (void)in;
    struct tf_proto_introduction x;
    memset(&x, 0, sizeof x);
    memcpy(x.intro_id, intro_id, TF_PROTO_INTRO_ID_LEN);
    x.core_bytes.ptr = core->data;
    x.core_bytes.len = core->len;
    memcpy(x.salt_a, salt_a, TF_PROTO_SALT_LEN);
    memcpy(x.salt_b, salt_b, TF_PROTO_SALT_LEN);
    x.reply_a.ptr = reply_a->data;
    x.reply_a.len = reply_a->len;
    x.reply_b.ptr = reply_b->data;
    x.reply_b.len = reply_b->len;
    x.note = view("You two should talk about the Elm Street deal.");
    x.time = time;
    /* The signer may differ from the core's connector in malicious variants,
     * so the id check in introduction_sign still holds (it hashes core). */
    return tf_proto_introduction_sign(&w->id[signer], &x, out);
}

int vec_intro_build(const struct vec_world *w, enum vec_who a, enum vec_who b, const char *topic,
                    uint8_t salt_byte, struct vec_intro *out)
{
    struct tf_proto_intro_core core;
    int rc;
    memset(out, 0, sizeof *out);
    memset(out->salt_a, salt_byte, TF_PROTO_SALT_LEN);
    memset(out->salt_b, salt_byte + 1, TF_PROTO_SALT_LEN);
    memcpy(core.connector_pk, w->id[VEC_CAROL].sign_pk, TF_PROTO_KEY_LEN);
    tf_proto_intro_commit(w->id[a].sign_pk, out->salt_a, core.commit_a);
    tf_proto_intro_commit(w->id[b].sign_pk, out->salt_b, core.commit_b);
    core.topic = view(topic);
    core.created = VEC_CREATED;
    core.expires = VEC_EXPIRES;
    core.mode = TF_PROTO_INTRO_MODE_PARALLEL;
    if ((rc = tf_proto_intro_core_encode(&core, &out->core)) != TF_OK)
        return rc;
    tf_proto_intro_id(out->core.data, out->core.len, out->intro_id);

    struct tf_proto_proposal p;
    memset(&p, 0, sizeof p);
    memcpy(p.intro_id, out->intro_id, TF_PROTO_INTRO_ID_LEN);
    p.core_bytes.ptr = out->core.data;
    p.core_bytes.len = out->core.len;
    p.connector_card.ptr = w->card[VEC_CAROL].data;
    p.connector_card.len = w->card[VEC_CAROL].len;
    p.side = TF_PROTO_SIDE_A;
    memcpy(p.salt, out->salt_a, TF_PROTO_SALT_LEN);
    p.about_other = view("Bob is buying his first flat and needs a lawyer.");
    p.note = view("Alice, would you like to meet Bob?");
    if ((rc = tf_proto_proposal_sign(&w->id[VEC_CAROL], &p, &out->proposal_a)) != TF_OK)
        return rc;
    p.side = TF_PROTO_SIDE_B;
    memcpy(p.salt, out->salt_b, TF_PROTO_SALT_LEN);
    p.about_other = view("Alice is a real-estate lawyer taking new clients.");
    p.note = view("Bob, would you like to meet Alice?");
    if ((rc = tf_proto_proposal_sign(&w->id[VEC_CAROL], &p, &out->proposal_b)) != TF_OK)
        return rc;

    if ((rc = vec_reply(w, a, out->intro_id, TF_PROTO_SIDE_A, TF_PROTO_DECISION_ACCEPT,
                        "Happy to help, Bob.", VEC_CREATED + 10u, &out->reply_a)) != TF_OK ||
        (rc = vec_reply(w, b, out->intro_id, TF_PROTO_SIDE_B, TF_PROTO_DECISION_ACCEPT,
                        "Thanks, Alice!", VEC_CREATED + 20u, &out->reply_b)) != TF_OK)
        return rc;
    if ((rc = vec_introduction(w, VEC_CAROL, out, &out->core, out->intro_id, out->salt_a,
                               out->salt_b, &out->reply_a, &out->reply_b, VEC_CREATED + 30u,
                               &out->introduction)) != TF_OK)
        return rc;
    return tf_proto_close_sign(&w->id[VEC_CAROL], out->intro_id, &out->close);
}

void vec_intro_free(struct vec_intro *in)
{
    tf_proto_buf_free(&in->core);
    tf_proto_buf_free(&in->proposal_a);
    tf_proto_buf_free(&in->proposal_b);
    tf_proto_buf_free(&in->reply_a);
    tf_proto_buf_free(&in->reply_b);
    tf_proto_buf_free(&in->introduction);
    tf_proto_buf_free(&in->close);
}
