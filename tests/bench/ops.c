/* SPDX-License-Identifier: MIT */
/* libsodium operation costs, and how many of each one introduction takes. */
#include "tests/bench/bench.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <sodium.h>

/*
 * ======================================================================
 * OPS_PER_INTRO: the public-key and hash operations of ONE introduction,
 * summed over all three nodes (1 connector C, parties A and B), parallel
 * mode, both parties accepting by policy, links already up (the Noise
 * handshakes happen once per link, not per intro), every card already held
 * (steady state).  Read from the code as of commit 1636973 ("verify each
 * signature once"): node/intro.c, node/delivery.c, node/contact.c,
 * node/net.c, proto/envelope.c, proto/intro.c, proto/card.c (a card verify is
 * one Ed25519 verify unless tf_proto_known matches), proto/statement.c.
 * Totals on direct links (every link negotiated the "direct" feature, as
 * between nodes of this version): 5 sign, 10 verify, 0 seal, 0 seal_open,
 * 14 BLAKE2b, 24 AEAD.  With every envelope sealed (SEALED_PER_INTRO below:
 * a peer without the feature, or `--sealed`): 11 sign, 16 verify (30 before
 * 1636973), 6 seal, 6 seal_open.
 *
 * A sealed envelope costs its sender one sign + one crypto_box_seal
 * (tf_proto_envelope_seal) and its receiver one crypto_box_seal_open + one
 * verify (tf_proto_envelope_open).  crypto_box_seal includes an ephemeral
 * key pair and one X25519, crypto_box_seal_open one X25519: they are measured
 * whole, so X25519 is not counted again for them.  A DIRECT message (an
 * envelope's content on a Noise link to its recipient itself, node/delivery.c)
 * costs neither: the link authenticates both ends and encrypts.
 *
 * Six envelopes travel per intro (2 proposals, 2 replies, 2 introductions)
 * and six link ACKs; each of these 12 link messages is one Noise transport
 * message: one ChaCha20-Poly1305 encrypt at the sender and one decrypt at
 * the receiver (measured at ~300 bytes; envelopes are larger).
 *
 * Edit this table when the node changes; nothing else in the bench needs
 * to know.  Counts are per intro (fractions are fine).
 * ======================================================================
 */
static const struct tf_bench_op_count OPS_PER_INTRO[] = {
    /* Connector: intro.propose (verb_propose). */
    {TF_BENCH_OP_VERIFY, 0,
     "C propose: remember_card() finds each party's card byte-identical to the one held "
     "(tf_proto_known_matches): no verify (was 2 before 1636973)"},
    {TF_BENCH_OP_HASH, 3, "C propose: commit_a, commit_b, intro_id (tf_proto_hash_tagged)"},
    {TF_BENCH_OP_SIGN, 2, "C propose: tf_proto_proposal_sign, for a and for b"},
    {TF_BENCH_OP_SIGN, 0,
     "C propose: no envelope signature, each proposal goes DIRECT (was 2, SEALED_PER_INTRO)"},
    {TF_BENCH_OP_SEAL, 0, "C propose: no crypto_box_seal, DIRECT (was 2)"},

    /* Each party: the proposal arrives (on_proposal), policy accepts (answer). */
    {TF_BENCH_OP_SEAL_OPEN, 0, "A,B proposal: DIRECT, nothing to unseal (was 2)"},
    {TF_BENCH_OP_VERIFY, 0, "A,B proposal: DIRECT, no envelope signature (was 2)"},
    {TF_BENCH_OP_VERIFY, 2, "A,B proposal: tf_proto_proposal_verify, proposal signature"},
    {TF_BENCH_OP_HASH, 2, "A,B proposal: tf_proto_proposal_verify, intro_id = H(core)"},
    {TF_BENCH_OP_VERIFY, 0,
     "A,B proposal: tf_proto_proposal_verify_known, connector card = the contact's card "
     "(was 2)"},
    {TF_BENCH_OP_HASH, 2, "A,B proposal: tf_proto_proposal_verify, commitment opens"},
    {TF_BENCH_OP_VERIFY, 0,
     "A,B proposal: remember_card(), connector card byte-identical to the held one (was 2)"},
    {TF_BENCH_OP_SIGN, 2, "A,B answer: tf_proto_reply_sign (accept)"},
    {TF_BENCH_OP_SIGN, 0, "A,B answer: the reply goes DIRECT, no envelope signature (was 2)"},
    {TF_BENCH_OP_SEAL, 0, "A,B answer: no crypto_box_seal, DIRECT (was 2)"},

    /* Connector: each reply arrives (on_reply); the second one introduces. */
    {TF_BENCH_OP_SEAL_OPEN, 0, "C reply x2: DIRECT, nothing to unseal (was 2)"},
    {TF_BENCH_OP_VERIFY, 0, "C reply x2: DIRECT, no envelope signature (was 2)"},
    {TF_BENCH_OP_VERIFY, 2, "C reply x2: tf_proto_reply_verify, reply signature"},
    {TF_BENCH_OP_VERIFY, 0,
     "C reply x2: tf_proto_reply_verify_known, the party's card = the one held with the intro "
     "(was 2)"},
    {TF_BENCH_OP_HASH, 1, "C introduce: tf_proto_introduction_sign checks intro_id = H(core)"},
    {TF_BENCH_OP_SIGN, 1, "C introduce: tf_proto_introduction_sign"},
    {TF_BENCH_OP_SIGN, 0, "C introduce: DIRECT to a and to b, no envelope signature (was 2)"},
    {TF_BENCH_OP_SEAL, 0, "C introduce: no crypto_box_seal, DIRECT (was 2)"},

    /* Each party: the introduction arrives (on_introduction). */
    {TF_BENCH_OP_SEAL_OPEN, 0, "A,B introduction: DIRECT, nothing to unseal (was 2)"},
    {TF_BENCH_OP_VERIFY, 0, "A,B introduction: DIRECT, no envelope signature (was 2)"},
    {TF_BENCH_OP_VERIFY, 2, "A,B materialise check: introduction signature (step 2)"},
    {TF_BENCH_OP_HASH, 2, "A,B materialise check: intro_id = H(core) (step 3)"},
    {TF_BENCH_OP_VERIFY, 2,
     "A,B materialise_check_own: the other side's card (own card known; was 4)"},
    {TF_BENCH_OP_HASH, 4, "A,B materialise check: commit_a and commit_b open (step 4)"},
    {TF_BENCH_OP_VERIFY, 2,
     "A,B materialise_check_own: the other side's reply signature (own reply known; was 4)"},
    {TF_BENCH_OP_VERIFY, 0,
     "A,B add_introduced: tf_node_contact_from_verified_card, just checked (was 2)"},

    /* Links: 6 envelopes + 6 ACKs, each one Noise transport message. */
    {TF_BENCH_OP_AEAD, 12, "links: encrypt 6 envelopes + 6 ACKs (Noise transport)"},
    {TF_BENCH_OP_AEAD, 12, "links: decrypt 6 envelopes + 6 ACKs (Noise transport)"},
    {TF_BENCH_OP_SCALARMULT, 0,
     "Noise handshakes: 4 X25519 per side per link, once per link (not per intro)"},
};

/*
 * SEALED_PER_INTRO: what every envelope sealed and signed adds to the table
 * above: a node without the "direct" feature on either end of a link
 * (twofold-bench --sealed sets direct_envelopes = 0 on every node), and any
 * envelope through a mailbox.  Six envelopes per intro, each one envelope
 * signature and one crypto_box_seal at its sender, one crypto_box_seal_open
 * and one envelope verify at its receiver (the statements inside are
 * verified either way, above).
 */
static const struct tf_bench_op_count SEALED_PER_INTRO[] = {
    {TF_BENCH_OP_SIGN, 2, "C propose: envelope signature of each proposal (send_to -> seal)"},
    {TF_BENCH_OP_SEAL, 2, "C propose: crypto_box_seal of each proposal envelope"},
    {TF_BENCH_OP_SEAL_OPEN, 2, "A,B proposal: tf_proto_envelope_open unseals"},
    {TF_BENCH_OP_VERIFY, 2, "A,B proposal: tf_proto_envelope_open envelope signature"},
    {TF_BENCH_OP_SIGN, 2, "A,B answer: envelope signature of the reply"},
    {TF_BENCH_OP_SEAL, 2, "A,B answer: crypto_box_seal of the reply envelope"},
    {TF_BENCH_OP_SEAL_OPEN, 2, "C reply x2: tf_proto_envelope_open unseals"},
    {TF_BENCH_OP_VERIFY, 2, "C reply x2: envelope signature"},
    {TF_BENCH_OP_SIGN, 2, "C introduce: envelope signature, to a and to b"},
    {TF_BENCH_OP_SEAL, 2, "C introduce: crypto_box_seal, to a and to b"},
    {TF_BENCH_OP_SEAL_OPEN, 2, "A,B introduction: tf_proto_envelope_open unseals"},
    {TF_BENCH_OP_VERIFY, 2, "A,B introduction: envelope signature"},
};

static const char *const OP_NAMES[TF_BENCH_OP_COUNT] = {
    "sign", "verify", "x25519", "box_seal", "box_seal_open", "generichash", "aead_chacha20poly1305",
};

const char *tf_bench_op_name(enum tf_bench_op op)
{
    return (unsigned)op < TF_BENCH_OP_COUNT ? OP_NAMES[op] : "?";
}

const struct tf_bench_op_count *tf_bench_ops_table(size_t *n)
{
    *n = sizeof OPS_PER_INTRO / sizeof OPS_PER_INTRO[0];
    return OPS_PER_INTRO;
}

double tf_bench_ops_per_intro(enum tf_bench_op op)
{
    double sum = 0;
    for (size_t i = 0; i < sizeof OPS_PER_INTRO / sizeof OPS_PER_INTRO[0]; i++)
        if (OPS_PER_INTRO[i].op == op)
            sum += OPS_PER_INTRO[i].count;
    return sum;
}

const struct tf_bench_op_count *tf_bench_ops_sealed_table(size_t *n)
{
    *n = sizeof SEALED_PER_INTRO / sizeof SEALED_PER_INTRO[0];
    return SEALED_PER_INTRO;
}

double tf_bench_ops_per_intro_as(enum tf_bench_op op, bool sealed)
{
    double sum = tf_bench_ops_per_intro(op);
    for (size_t i = 0; sealed && i < sizeof SEALED_PER_INTRO / sizeof SEALED_PER_INTRO[0]; i++)
        if (SEALED_PER_INTRO[i].op == op)
            sum += SEALED_PER_INTRO[i].count;
    return sum;
}

/* Measurement. */

#define BATCHES 7
#define MSG_LEN 300  /* about a proposal or reply body */
#define SEAL_LEN 600 /* about an envelope's inner part */

static double cpu_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

/* Everything the ops work on; keys are throwaway. */
struct fixture {
    uint8_t sign_pk[crypto_sign_PUBLICKEYBYTES], sign_sk[crypto_sign_SECRETKEYBYTES];
    uint8_t box_pk[crypto_box_PUBLICKEYBYTES], box_sk[crypto_box_SECRETKEYBYTES];
    uint8_t msg[MSG_LEN], sig[crypto_sign_BYTES];
    uint8_t sealed[SEAL_LEN + crypto_box_SEALBYTES], opened[SEAL_LEN];
    uint8_t aead_key[crypto_aead_chacha20poly1305_ietf_KEYBYTES];
    uint8_t aead_out[MSG_LEN + crypto_aead_chacha20poly1305_ietf_ABYTES];
    uint8_t scalar[crypto_scalarmult_SCALARBYTES], point[crypto_scalarmult_BYTES];
    uint8_t shared[crypto_scalarmult_BYTES];
    uint8_t hash[crypto_generichash_BYTES];
    volatile int sink; /* keeps results observable */
};

static void run_op(struct fixture *f, enum tf_bench_op op, unsigned i)
{
    uint8_t nonce[crypto_aead_chacha20poly1305_ietf_NPUBBYTES] = {0};
    f->msg[0] = (uint8_t)i;
    switch (op) {
    case TF_BENCH_OP_SIGN:
        crypto_sign_detached(f->sig, NULL, f->msg, sizeof f->msg, f->sign_sk);
        break;
    case TF_BENCH_OP_VERIFY:
        f->sink += crypto_sign_verify_detached(f->sig, f->msg, sizeof f->msg, f->sign_pk);
        break;
    case TF_BENCH_OP_SCALARMULT:
        f->sink += crypto_scalarmult(f->shared, f->scalar, f->point);
        break;
    case TF_BENCH_OP_SEAL:
        f->sink += crypto_box_seal(f->sealed, f->opened, SEAL_LEN, f->box_pk);
        break;
    case TF_BENCH_OP_SEAL_OPEN:
        f->sink +=
            crypto_box_seal_open(f->opened, f->sealed, sizeof f->sealed, f->box_pk, f->box_sk);
        break;
    case TF_BENCH_OP_HASH:
        f->sink += crypto_generichash(f->hash, sizeof f->hash, f->msg, 64, NULL, 0);
        break;
    case TF_BENCH_OP_AEAD:
        memcpy(nonce, &i, sizeof i);
        f->sink += crypto_aead_chacha20poly1305_ietf_encrypt(
            f->aead_out, NULL, f->msg, sizeof f->msg, NULL, 0, NULL, nonce, f->aead_key);
        break;
    case TF_BENCH_OP_COUNT:
        break;
    }
}

void tf_bench_ops_measure(double us[static TF_BENCH_OP_COUNT])
{
    struct fixture *f = calloc(1, sizeof *f);
    if (f == NULL) {
        for (int op = 0; op < TF_BENCH_OP_COUNT; op++)
            us[op] = 0;
        return;
    }
    crypto_sign_keypair(f->sign_pk, f->sign_sk);
    crypto_box_keypair(f->box_pk, f->box_sk);
    randombytes_buf(f->msg, sizeof f->msg);
    randombytes_buf(f->opened, sizeof f->opened);
    randombytes_buf(f->aead_key, sizeof f->aead_key);
    randombytes_buf(f->scalar, sizeof f->scalar);
    crypto_scalarmult_base(f->point, f->scalar);
    crypto_sign_detached(f->sig, NULL, f->msg, sizeof f->msg, f->sign_sk);
    (void)crypto_box_seal(f->sealed, f->opened, SEAL_LEN, f->box_pk);
    for (int op = 0; op < TF_BENCH_OP_COUNT; op++) {
        /* Cheap ops get bigger batches, so every batch lasts a few ms. */
        unsigned n = op == TF_BENCH_OP_HASH || op == TF_BENCH_OP_AEAD ? 4000 : 150;
        double t[BATCHES];
        if (op == TF_BENCH_OP_VERIFY || op == TF_BENCH_OP_SEAL_OPEN) {
            /* Verify and open what was made, not a changing message. */
            f->msg[0] = 0;
            crypto_sign_detached(f->sig, NULL, f->msg, sizeof f->msg, f->sign_sk);
            (void)crypto_box_seal(f->sealed, f->opened, SEAL_LEN, f->box_pk);
        }
        for (int b = 0; b < BATCHES; b++) {
            double t0 = cpu_now();
            for (unsigned i = 0; i < n; i++)
                run_op(f, (enum tf_bench_op)op,
                       op == TF_BENCH_OP_VERIFY || op == TF_BENCH_OP_SEAL_OPEN ? 0 : i);
            t[b] = (cpu_now() - t0) * 1e6 / n;
        }
        qsort(t, BATCHES, sizeof t[0], cmp_double);
        us[op] = t[BATCHES / 2];
    }
    if (f->sink != 0) /* a verify or open failed: the figures would be wrong */
        for (int op = 0; op < TF_BENCH_OP_COUNT; op++)
            us[op] = 0;
    sodium_memzero(f, sizeof *f);
    free(f);
}
