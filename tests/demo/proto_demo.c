/* SPDX-License-Identifier: MIT */
/*
 * A walk through one double opt-in introduction using only proto/: Carol knows
 * Alice (a real-estate lawyer looking for clients) and Bob (looking for one).
 * Every object below is built, signed, sealed and checked exactly as nodes do
 * it; the network part arrives with the node and transport issues.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "proto/card.h"
#include "proto/envelope.h"
#include "proto/identity.h"
#include "proto/intro.h"

struct person {
    const char *name;
    const char *offers;
    const char *seeks;
    struct tf_proto_identity id;
    struct tf_proto_buf card; /* signed */
};

static int failures;

static void step(const char *what, int rc)
{
    printf("  %-62s %s\n", what, rc == TF_OK ? "ok" : tf_strerror(rc));
    if (rc != TF_OK)
        failures++;
}

/* An attack is shown as refused when it fails with the expected error. */
static void refused(const char *what, int rc, int expected)
{
    printf("  %-62s %s\n", what, rc == expected ? "refused" : "NOT REFUSED");
    if (rc == expected)
        printf("      (%s)\n", tf_strerror(rc));
    else
        failures++;
}

static struct tf_proto_bytes view(const char *s)
{
    struct tf_proto_bytes b = {(const uint8_t *)s, s ? strlen(s) : 0};
    return b;
}

static int make_person(struct person *p, uint64_t now)
{
    uint8_t seed[TF_PROTO_SEED_LEN];
    randombytes_buf(seed, sizeof seed);
    int rc = tf_proto_identity_from_seed(&p->id, seed);
    sodium_memzero(seed, sizeof seed);
    if (rc != TF_OK)
        return rc;
    struct tf_proto_card c;
    memset(&c, 0, sizeof c);
    memcpy(c.sign_pk, p->id.sign_pk, TF_PROTO_KEY_LEN);
    memcpy(c.noise_pk, p->id.noise_pk, TF_PROTO_KEY_LEN);
    memcpy(c.box_pk, p->id.box_pk, TF_PROTO_KEY_LEN);
    c.name = view(p->name);
    c.n_addrs = 1;
    c.addrs[0] = view("127.0.0.1:7451");
    if (p->offers) {
        c.n_offers = 1;
        c.offers[0] = view(p->offers);
    }
    if (p->seeks) {
        c.n_seeks = 1;
        c.seeks[0] = view(p->seeks);
    }
    c.issued = now;
    c.seq = 1;
    return tf_proto_card_sign(&p->id, &c, &p->card);
}

/* Seals body from `from` to `to`, then opens it as `to` would. */
static int deliver(const struct person *from, const struct person *to, uint16_t type,
                   const struct tf_proto_buf *body, uint64_t now, struct tf_proto_buf *plain,
                   struct tf_proto_envelope_opened *opened)
{
    uint8_t msg_id[TF_PROTO_MSG_ID_LEN];
    struct tf_proto_buf env;
    randombytes_buf(msg_id, sizeof msg_id);
    int rc = tf_proto_envelope_seal(&from->id, to->id.sign_pk, to->id.box_pk, msg_id,
                                    now + 30 * 86400, type, body->data, body->len, &env);
    if (rc != TF_OK)
        return rc;
    rc = tf_proto_envelope_open(&to->id, env.data, env.len, now, plain, opened);
    tf_proto_buf_free(&env);
    return rc;
}

int main(void)
{
    if (sodium_init() < 0)
        return 1;
    const uint64_t now = 1800000000;
    struct person carol = {.name = "Carol"};
    struct person alice = {.name = "Alice", .offers = "real-estate-law"};
    struct person bob = {.name = "Bob", .seeks = "real-estate-law"};
    struct person mallory = {.name = "Mallory"};
    struct person *all[] = {&carol, &alice, &bob, &mallory};

    printf("1. Everyone creates an identity and a signed contact card\n");
    for (size_t i = 0; i < 4; i++) {
        char tid[TF_PROTO_TEXT_ID_SIZE], fp[TF_PROTO_FINGERPRINT_SIZE];
        step(all[i]->name, make_person(all[i], now));
        tf_proto_text_id_encode(all[i]->id.sign_pk, tid);
        tf_proto_fingerprint(all[i]->id.sign_pk, fp);
        printf("      id %s  fingerprint %s\n", tid, fp);
    }
    char *text = NULL;
    struct tf_proto_buf parsed;
    struct tf_proto_card card;
    step("Alice's card as one line of text",
         tf_proto_card_to_text(alice.card.data, alice.card.len, &text));
    if (text)
        printf("      %.60s...\n", text);
    step("Carol pastes it and verifies Alice's signature",
         tf_proto_card_from_text(text, strlen(text), &parsed, &card));
    tf_proto_buf_free(&parsed);
    text[30] = text[30] == 'A' ? 'B' : 'A';
    refused("a card with one character changed",
            tf_proto_card_from_text(text, strlen(text), &parsed, &card), TF_E_BAD_SIG);
    free(text);

    printf("\n2. Carol proposes: each side gets a signed proposal that names the\n"
           "   other only by a salted commitment\n");
    struct tf_proto_intro_core core;
    uint8_t salt_a[TF_PROTO_SALT_LEN], salt_b[TF_PROTO_SALT_LEN];
    randombytes_buf(salt_a, sizeof salt_a);
    randombytes_buf(salt_b, sizeof salt_b);
    memcpy(core.connector_pk, carol.id.sign_pk, TF_PROTO_KEY_LEN);
    tf_proto_intro_commit(alice.id.sign_pk, salt_a, core.commit_a);
    tf_proto_intro_commit(bob.id.sign_pk, salt_b, core.commit_b);
    core.topic = view("real-estate-law");
    core.created = now;
    core.expires = now + 14 * 86400;
    core.mode = TF_PROTO_INTRO_MODE_PARALLEL;
    struct tf_proto_buf core_bytes, prop_a, prop_b, plain;
    struct tf_proto_envelope_opened opened;
    struct tf_proto_proposal p, got;
    step("intro core encoded", tf_proto_intro_core_encode(&core, &core_bytes));
    memset(&p, 0, sizeof p);
    tf_proto_intro_id(core_bytes.data, core_bytes.len, p.intro_id);
    p.core_bytes = (struct tf_proto_bytes){core_bytes.data, core_bytes.len};
    p.connector_card = (struct tf_proto_bytes){carol.card.data, carol.card.len};
    p.side = TF_PROTO_SIDE_A;
    memcpy(p.salt, salt_a, TF_PROTO_SALT_LEN);
    p.about_other = view("Bob is buying his first flat.");
    p.note = view("Alice, would you like to meet Bob?");
    step("proposal to Alice signed", tf_proto_proposal_sign(&carol.id, &p, &prop_a));
    p.side = TF_PROTO_SIDE_B;
    memcpy(p.salt, salt_b, TF_PROTO_SALT_LEN);
    p.about_other = view("Alice is a real-estate lawyer taking clients.");
    p.note = view("Bob, would you like to meet Alice?");
    step("proposal to Bob signed", tf_proto_proposal_sign(&carol.id, &p, &prop_b));
    step("sealed to Alice, opened by Alice",
         deliver(&carol, &alice, TF_PROTO_MSG_TYPE_PROPOSAL, &prop_a, now, &plain, &opened));
    step("Alice verifies it (signature, intro id, commitment, time)",
         tf_proto_proposal_verify(alice.id.sign_pk, opened.body.ptr, opened.body.len, now,
                                  TF_PROTO_SKEW_DEFAULT, &got));
    printf("      Alice reads: \"%.*s\" about the other side: \"%.*s\"\n", (int)got.note.len,
           (const char *)got.note.ptr, (int)got.about_other.len, (const char *)got.about_other.ptr);
    tf_proto_buf_free(&plain);
    {
        uint8_t msg_id[TF_PROTO_MSG_ID_LEN] = {0};
        struct tf_proto_buf env;
        step("Carol seals Alice's proposal again",
             tf_proto_envelope_seal(&carol.id, alice.id.sign_pk, alice.id.box_pk, msg_id,
                                    now + 86400, TF_PROTO_MSG_TYPE_PROPOSAL, prop_a.data,
                                    prop_a.len, &env));
        refused("Mallory intercepts it and tries to open it",
                tf_proto_envelope_open(&mallory.id, env.data, env.len, now, &plain, &opened),
                TF_E_NOT_FOR_ME);
        tf_proto_buf_free(&env);
    }
    refused("Mallory replays the proposal as if it were meant for her",
            tf_proto_proposal_verify(mallory.id.sign_pk, prop_a.data, prop_a.len, now,
                                     TF_PROTO_SKEW_DEFAULT, &got),
            TF_E_COMMITMENT);

    printf("\n3. Both accept with signed replies carrying their cards\n");
    struct tf_proto_reply r;
    struct tf_proto_buf reply_a, reply_b;
    memset(&r, 0, sizeof r);
    memcpy(r.intro_id, p.intro_id, TF_PROTO_INTRO_ID_LEN);
    r.decision = TF_PROTO_DECISION_ACCEPT;
    r.side = TF_PROTO_SIDE_A;
    r.card = (struct tf_proto_bytes){alice.card.data, alice.card.len};
    r.note = view("Happy to help, Bob.");
    r.time = now + 60;
    step("Alice accepts", tf_proto_reply_sign(&alice.id, &r, &reply_a));
    r.side = TF_PROTO_SIDE_B;
    r.card = (struct tf_proto_bytes){bob.card.data, bob.card.len};
    r.note = view("Thanks, Alice!");
    r.time = now + 120;
    step("Bob accepts", tf_proto_reply_sign(&bob.id, &r, &reply_b));
    struct tf_proto_reply checked;
    step("Carol verifies Alice's reply",
         tf_proto_reply_verify(alice.id.sign_pk, p.intro_id, TF_PROTO_SIDE_A, reply_a.data,
                               reply_a.len, &checked));
    step("Carol verifies Bob's reply",
         tf_proto_reply_verify(bob.id.sign_pk, p.intro_id, TF_PROTO_SIDE_B, reply_b.data,
                               reply_b.len, &checked));

    printf("\n4. Carol sends the introduction; each side checks BOTH consents itself\n");
    struct tf_proto_introduction in;
    struct tf_proto_buf intro, forged;
    struct tf_proto_materialised m;
    memset(&in, 0, sizeof in);
    memcpy(in.intro_id, p.intro_id, TF_PROTO_INTRO_ID_LEN);
    in.core_bytes = p.core_bytes;
    memcpy(in.salt_a, salt_a, TF_PROTO_SALT_LEN);
    memcpy(in.salt_b, salt_b, TF_PROTO_SALT_LEN);
    in.reply_a = (struct tf_proto_bytes){reply_a.data, reply_a.len};
    in.reply_b = (struct tf_proto_bytes){reply_b.data, reply_b.len};
    in.note = view("You two should talk.");
    in.time = now + 180;
    step("introduction signed", tf_proto_introduction_sign(&carol.id, &in, &intro));
    step("Alice's materialisation check",
         tf_proto_intro_materialise_check(alice.id.sign_pk, reply_a.data, reply_a.len, intro.data,
                                          intro.len, TF_PROTO_SKEW_DEFAULT, &m));
    printf("      Alice adds \"%.*s\" as a contact, introduced by Carol; note: \"%.*s\"\n",
           (int)m.other.name.len, (const char *)m.other.name.ptr, (int)m.other_note.len,
           (const char *)m.other_note.ptr);
    step("Bob's materialisation check",
         tf_proto_intro_materialise_check(bob.id.sign_pk, reply_b.data, reply_b.len, intro.data,
                                          intro.len, TF_PROTO_SKEW_DEFAULT, &m));
    printf("      Bob adds \"%.*s\" as a contact, introduced by Carol\n", (int)m.other.name.len,
           (const char *)m.other.name.ptr);

    printf("\n5. A connector cannot fake consent\n");
    r.side = TF_PROTO_SIDE_B;
    r.card = (struct tf_proto_bytes){bob.card.data, bob.card.len};
    struct tf_proto_buf fake;
    step("Mallory signs an 'acceptance' carrying Bob's card",
         tf_proto_reply_sign(&mallory.id, &r, &fake));
    in.reply_b = (struct tf_proto_bytes){fake.data, fake.len};
    step("Carol wraps it in an introduction", tf_proto_introduction_sign(&carol.id, &in, &forged));
    refused("Alice's materialisation check",
            tf_proto_intro_materialise_check(alice.id.sign_pk, reply_a.data, reply_a.len,
                                             forged.data, forged.len, TF_PROTO_SKEW_DEFAULT, &m),
            TF_E_REPLY_SIG);

    tf_proto_buf_free(&fake);
    tf_proto_buf_free(&forged);
    tf_proto_buf_free(&intro);
    tf_proto_buf_free(&reply_a);
    tf_proto_buf_free(&reply_b);
    tf_proto_buf_free(&prop_a);
    tf_proto_buf_free(&prop_b);
    tf_proto_buf_free(&core_bytes);
    for (size_t i = 0; i < 4; i++) {
        tf_proto_buf_free(&all[i]->card);
        tf_proto_identity_deinit(&all[i]->id);
    }
    printf("\n%s\n", failures == 0 ? "Done: introduced with both consents verified."
                                   : "Something went wrong (see above).");
    return failures == 0 ? 0 : 1;
}
