/* SPDX-License-Identifier: MIT */
/*
 * Replays a vectors file against the C implementation:
 *
 *   check_vectors FILE.json [--chain] [--doc PROTOCOL.md]
 *
 * Every case in "valid" must pass with the outputs it lists; every case in
 * "invalid" must fail with exactly the error it names.  With --chain, the
 * deterministic intro chain is also rebuilt from the fixed seeds and compared
 * byte for byte with the file's "chain" and "identities".  The same program
 * checks files written by the independent Python implementation.  With
 * --doc, every "```hex id=NAME" block of the document must be the bytes the
 * C code builds for NAME.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "chain.h"
#include "proto/link.h"
#include "proto/request.h"
#include "vecjson.h"

struct ctx {
    json_t *root;
    const char *doc;
    struct tf_proto_identity ids[VEC_COUNT];
    int passed, failed;
};

static int who_index(const json_t *c, const char *key)
{
    const char *name = json_string_value(json_object_get(c, key));
    for (int i = 0; name && i < VEC_COUNT; i++)
        if (strcmp(name, vec_name((enum vec_who)i)) == 0)
            return i;
    return -1;
}

static uint64_t num(const json_t *c, const char *key)
{
    return (uint64_t)json_integer_value(json_object_get(c, key));
}

/* Compares a hex field of c with bytes; 0 if equal. */
static int same_hex(const json_t *c, const char *key, const uint8_t *p, size_t n)
{
    struct tf_proto_buf b;
    if (vec_unhex(c, key, &b) != 0)
        return -1;
    int diff = b.len != n || memcmp(b.data, p, n) != 0;
    tf_proto_buf_free(&b);
    return diff ? -1 : 0;
}

/* Runs one case; returns the verifier's code and sets *outputs_ok. */
static int run_case(struct ctx *x, const json_t *c, int *outputs_ok)
{
    const char *kind = json_string_value(json_object_get(c, "kind"));
    struct tf_proto_buf a = {0}, b = {0}, plain = {0};
    int rc = TF_E_INVALID_ARG;
    *outputs_ok = 1;
    if (kind == NULL)
        return rc;
    if (strcmp(kind, "text_id") == 0) {
        const char *t = json_string_value(json_object_get(c, "text"));
        uint8_t pk[TF_PROTO_KEY_LEN];
        rc = t ? tf_proto_text_id_decode(t, strlen(t), pk, NULL) : TF_E_INVALID_ARG;
        if (rc == TF_OK)
            *outputs_ok = same_hex(c, "pk", pk, sizeof pk) == 0;
    } else if (strcmp(kind, "card") == 0) {
        struct tf_proto_card card;
        if (vec_unhex(c, "signed", &a) == 0)
            rc = tf_proto_card_verify(a.data, a.len, &card);
        const char *t = json_string_value(json_object_get(c, "text"));
        if (rc == TF_OK && t != NULL) {
            /* The text form must decode to the same bytes and re-encode the same. */
            char *again = NULL;
            *outputs_ok = tf_proto_card_from_text(t, strlen(t), &b, &card) == TF_OK &&
                          b.len == a.len && memcmp(a.data, b.data, a.len) == 0 &&
                          tf_proto_card_to_text(a.data, a.len, &again) == TF_OK &&
                          strcmp(again, t) == 0;
            free(again);
        }
    } else if (strcmp(kind, "card_text") == 0) {
        struct tf_proto_card card;
        const char *t = json_string_value(json_object_get(c, "text"));
        rc = t ? tf_proto_card_from_text(t, strlen(t), &b, &card) : TF_E_INVALID_ARG;
    } else if (strcmp(kind, "envelope") == 0) {
        int to = who_index(c, "recipient");
        struct tf_proto_envelope_opened o;
        if (to >= 0 && vec_unhex(c, "envelope", &a) == 0)
            rc = tf_proto_envelope_open(&x->ids[to], a.data, a.len, num(c, "now"), &plain, &o);
        if (rc == TF_OK) {
            int from = who_index(c, "from");
            struct tf_proto_envelope e;
            *outputs_ok =
                from >= 0 &&
                sodium_memcmp(o.from_pk, x->ids[from].sign_pk, TF_PROTO_KEY_LEN) == 0 &&
                o.type == num(c, "type") && same_hex(c, "body", o.body.ptr, o.body.len) == 0 &&
                tf_proto_envelope_decode(a.data, a.len, &e) == TF_OK &&
                same_hex(c, "msg_id", e.msg_id, sizeof e.msg_id) == 0 &&
                e.expires == num(c, "expires") &&
                (json_object_get(c, "padded_len") == NULL || plain.len == num(c, "padded_len"));
        }
    } else if (strcmp(kind, "proposal") == 0) {
        int to = who_index(c, "recipient");
        struct tf_proto_proposal p;
        if (to >= 0 && vec_unhex(c, "proposal", &a) == 0)
            rc = tf_proto_proposal_verify(x->ids[to].sign_pk, a.data, a.len, num(c, "now"),
                                          num(c, "skew"), &p);
        if (rc == TF_OK) {
            const char *topic = json_string_value(json_object_get(c, "topic"));
            *outputs_ok = same_hex(c, "intro_id", p.intro_id, sizeof p.intro_id) == 0 &&
                          (uint64_t)p.side == num(c, "side") && topic != NULL &&
                          strlen(topic) == p.core.topic.len &&
                          memcmp(topic, p.core.topic.ptr, p.core.topic.len) == 0;
        }
    } else if (strcmp(kind, "reply") == 0) {
        int who = who_index(c, "signer");
        struct tf_proto_reply r;
        if (who >= 0 && vec_unhex(c, "intro_id", &b) == 0 && b.len == TF_PROTO_INTRO_ID_LEN &&
            vec_unhex(c, "reply", &a) == 0)
            rc = tf_proto_reply_verify(x->ids[who].sign_pk, b.data,
                                       (enum tf_proto_side)num(c, "side"), a.data, a.len, &r);
        if (rc == TF_OK)
            *outputs_ok = (uint64_t)r.decision == num(c, "decision");
    } else if (strcmp(kind, "introduction") == 0) {
        int me = who_index(c, "me");
        struct tf_proto_materialised m;
        if (me >= 0 && vec_unhex(c, "my_reply", &b) == 0 && vec_unhex(c, "introduction", &a) == 0)
            rc = tf_proto_intro_materialise_check(x->ids[me].sign_pk, b.data, b.len, a.data, a.len,
                                                  num(c, "skew"), &m);
        if (rc == TF_OK) {
            int other = who_index(c, "other");
            *outputs_ok = other >= 0 && sodium_memcmp(m.other.sign_pk, x->ids[other].sign_pk,
                                                      TF_PROTO_KEY_LEN) == 0;
        }
    } else if (strcmp(kind, "request") == 0) { /* requests */
        int from = who_index(c, "from"), to = who_index(c, "recipient");
        struct tf_proto_request q;
        if (from >= 0 && to >= 0 && vec_unhex(c, "request", &a) == 0)
            rc = tf_proto_request_verify(x->ids[to].sign_pk, x->ids[from].sign_pk, a.data, a.len,
                                         num(c, "now"), num(c, "skew"), &q);
        if (rc == TF_OK) {
            const char *tag = json_string_value(json_object_get(c, "seeking"));
            *outputs_ok = same_hex(c, "request_id", q.id, sizeof q.id) == 0 && tag != NULL &&
                          strlen(tag) == q.seeking.len &&
                          memcmp(tag, q.seeking.ptr, q.seeking.len) == 0;
        }
    } else if (strcmp(kind, "request_close") == 0) {
        int who = who_index(c, "signer");
        struct tf_proto_request_close rc_;
        if (who >= 0 && vec_unhex(c, "request_close", &a) == 0)
            rc = tf_proto_request_close_verify(x->ids[who].sign_pk, a.data, a.len, &rc_);
        if (rc == TF_OK)
            *outputs_ok = same_hex(c, "request_id", rc_.id, sizeof rc_.id) == 0 &&
                          (uint64_t)rc_.action == num(c, "action");
    } else if (strcmp(kind, "direct") == 0) { /* direct (issue 17) */
        /* A DIRECT link message read at `now`: the link message, then its
         * content, then the expiry (the receiver's order). */
        struct tf_proto_link_msg m;
        struct tf_proto_envelope_direct d;
        if (vec_unhex(c, "link", &a) == 0 &&
            (rc = tf_proto_link_decode(a.data, a.len, &m)) == TF_OK)
            rc = m.type != TF_PROTO_LINK_DIRECT
                     ? TF_E_BAD_VALUE
                     : tf_proto_envelope_direct_decode(m.envelope.ptr, m.envelope.len, &d);
        if (rc == TF_OK && num(c, "now") > d.expires)
            rc = TF_E_EXPIRED;
        if (rc == TF_OK)
            *outputs_ok = d.type == num(c, "type") &&
                          same_hex(c, "body", d.body.ptr, d.body.len) == 0 &&
                          same_hex(c, "msg_id", d.msg_id, sizeof d.msg_id) == 0 &&
                          d.expires == num(c, "expires") && m.envelope.len == num(c, "padded_len");
    } else if (strcmp(kind, "close") == 0) {
        int who = who_index(c, "connector");
        uint8_t id[TF_PROTO_INTRO_ID_LEN];
        if (who >= 0 && vec_unhex(c, "close", &a) == 0)
            rc = tf_proto_close_verify(x->ids[who].sign_pk, a.data, a.len, id);
        if (rc == TF_OK)
            *outputs_ok = same_hex(c, "intro_id", id, sizeof id) == 0;
    }
    tf_proto_buf_free(&a);
    tf_proto_buf_free(&b);
    tf_proto_buf_free(&plain);
    return rc;
}

static void run_section(struct ctx *x, const char *section)
{
    const json_t *cases = json_object_get(x->root, section);
    size_t i;
    const json_t *c;
    bool valid = strcmp(section, "valid") == 0;
    json_array_foreach(cases, i, c)
    {
        int outputs_ok;
        int rc = run_case(x, c, &outputs_ok);
        const char *want = valid ? "OK" : json_string_value(json_object_get(c, "error"));
        const char *got = tf_err_name(rc);
        bool ok = want != NULL && strcmp(want, got) == 0 && (!valid || outputs_ok);
        if (ok) {
            x->passed++;
        } else {
            x->failed++;
            printf("FAIL %s %s \"%s\": expected %s, got %s%s\n", section,
                   json_string_value(json_object_get(c, "kind")),
                   json_string_value(json_object_get(c, "name")), want ? want : "?", got,
                   rc == TF_OK && !outputs_ok ? " (outputs differ)" : "");
        }
    }
}

/* The bytes a documented hex block must hold, by its id. */
static bool doc_expected(const char *id, const struct vec_world *w, const struct vec_intro *in,
                         const uint8_t **p, size_t *n)
{
    if (strcmp(id, "alice-card") == 0) {
        *p = w->card[VEC_ALICE].data;
        *n = w->card[VEC_ALICE].len;
    } else if (strcmp(id, "core") == 0) {
        *p = in->core.data;
        *n = in->core.len;
    } else if (strcmp(id, "intro-id") == 0) {
        *p = in->intro_id;
        *n = TF_PROTO_INTRO_ID_LEN;
    } else if (strcmp(id, "close") == 0) {
        *p = in->close.data;
        *n = in->close.len;
    } else {
        return false;
    }
    return true;
}

/* Checks the worked examples of docs/PROTOCOL.md. */
static void check_doc(struct ctx *x, const struct vec_world *w, const struct vec_intro *in)
{
    FILE *f = fopen(x->doc, "r");
    char line[512], id[64] = "", hex[8192];
    size_t hlen = 0;
    int blocks = 0;
    bool inside = false;
    if (f == NULL) {
        printf("FAIL doc: cannot open %s\n", x->doc);
        x->failed++;
        return;
    }
    while (fgets(line, sizeof line, f) != NULL) {
        if (!inside && sscanf(line, "```hex id=%63s", id) == 1) {
            inside = true;
            hlen = 0;
            continue;
        }
        if (!inside)
            continue;
        if (strncmp(line, "```", 3) == 0) {
            inside = false;
            blocks++;
            uint8_t bin[4096];
            size_t blen = 0, n = 0;
            const uint8_t *want = NULL;
            bool ok = sodium_hex2bin(bin, sizeof bin, hex, hlen, NULL, &blen, NULL) == 0 &&
                      doc_expected(id, w, in, &want, &n) && n == blen && memcmp(want, bin, n) == 0;
            ok ? x->passed++ : x->failed++;
            if (!ok)
                printf("FAIL doc: hex block %s differs from the C encoding\n", id);
            continue;
        }
        for (const char *c = line; *c != '\0' && hlen + 1 < sizeof hex; c++)
            if ((*c >= '0' && *c <= '9') || (*c >= 'a' && *c <= 'f'))
                hex[hlen++] = *c;
    }
    fclose(f);
    if (blocks == 0) {
        printf("FAIL doc: no hex blocks in %s\n", x->doc);
        x->failed++;
    }
}

/* Rebuilds identities and the chain and compares them byte for byte. */
static void check_chain(struct ctx *x)
{
    struct vec_world w;
    struct vec_intro in;
    if (vec_world_init(&w) != TF_OK ||
        vec_intro_build(&w, VEC_ALICE, VEC_BOB, "real-estate-law", 0x31, &in) != TF_OK) {
        printf("FAIL chain: cannot rebuild\n");
        x->failed++;
        return;
    }
    const json_t *ids = json_object_get(x->root, "identities");
    for (int i = 0; i < VEC_COUNT; i++) {
        const json_t *o = json_object_get(ids, vec_name((enum vec_who)i));
        char tid[TF_PROTO_TEXT_ID_SIZE], fp[TF_PROTO_FINGERPRINT_SIZE];
        tf_proto_text_id_encode(w.id[i].sign_pk, tid);
        tf_proto_fingerprint(w.id[i].sign_pk, fp);
        bool ok = same_hex(o, "sign_pk", w.id[i].sign_pk, TF_PROTO_KEY_LEN) == 0 &&
                  same_hex(o, "noise_pk", w.id[i].noise_pk, TF_PROTO_KEY_LEN) == 0 &&
                  same_hex(o, "box_pk", w.id[i].box_pk, TF_PROTO_KEY_LEN) == 0 &&
                  same_hex(o, "card", w.card[i].data, w.card[i].len) == 0 &&
                  strcmp(json_string_value(json_object_get(o, "text_id")), tid) == 0 &&
                  strcmp(json_string_value(json_object_get(o, "fingerprint")), fp) == 0;
        ok ? x->passed++ : x->failed++;
        if (!ok)
            printf("FAIL chain: identity %s differs\n", vec_name((enum vec_who)i));
    }
    const json_t *c = json_object_get(x->root, "chain");
    struct {
        const char *key;
        const struct tf_proto_buf *buf;
    } parts[] = {{"core", &in.core},
                 {"proposal_a", &in.proposal_a},
                 {"proposal_b", &in.proposal_b},
                 {"reply_a", &in.reply_a},
                 {"reply_b", &in.reply_b},
                 {"introduction", &in.introduction},
                 {"close", &in.close}};
    for (size_t i = 0; i < sizeof parts / sizeof parts[0]; i++) {
        bool ok = same_hex(c, parts[i].key, parts[i].buf->data, parts[i].buf->len) == 0;
        ok ? x->passed++ : x->failed++;
        if (!ok)
            printf("FAIL chain: %s differs from the rebuilt bytes\n", parts[i].key);
    }
    bool ok = same_hex(c, "intro_id", in.intro_id, TF_PROTO_INTRO_ID_LEN) == 0;
    ok ? x->passed++ : x->failed++;
    if (!ok)
        printf("FAIL chain: intro_id differs\n");
    if (x->doc != NULL)
        check_doc(x, &w, &in);
    vec_intro_free(&in);
    vec_world_deinit(&w);
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: check_vectors FILE.json [--chain] [--doc PROTOCOL.md]\n");
        return 2;
    }
    if (sodium_init() < 0)
        return 1;
    struct ctx x;
    memset(&x, 0, sizeof x);
    json_error_t err;
    x.root = json_load_file(argv[1], 0, &err);
    if (x.root == NULL) {
        fprintf(stderr, "check_vectors: %s:%d: %s\n", argv[1], err.line, err.text);
        return 1;
    }
    /* Identities come from the seeds the file gives. */
    const json_t *ids = json_object_get(x.root, "identities");
    for (int i = 0; i < VEC_COUNT; i++) {
        struct tf_proto_buf seed;
        const json_t *o = json_object_get(ids, vec_name((enum vec_who)i));
        if (vec_unhex(o, "seed", &seed) != 0 || seed.len != TF_PROTO_SEED_LEN ||
            tf_proto_identity_from_seed(&x.ids[i], seed.data) != TF_OK) {
            fprintf(stderr, "check_vectors: bad seed for %s\n", vec_name((enum vec_who)i));
            return 1;
        }
        tf_proto_buf_free(&seed);
    }
    run_section(&x, "valid");
    run_section(&x, "invalid");
    bool chain = false;
    for (int i = 2; i < argc; i++) {
        if (strcmp(argv[i], "--chain") == 0)
            chain = true;
        else if (strcmp(argv[i], "--doc") == 0 && i + 1 < argc)
            x.doc = argv[++i];
    }
    if (chain || x.doc != NULL)
        check_chain(&x);
    size_t nv = json_array_size(json_object_get(x.root, "valid"));
    size_t ni = json_array_size(json_object_get(x.root, "invalid"));
    printf("%s: %zu valid and %zu invalid cases\n", argv[1], nv, ni);
    printf("%d passed, %d failed\n", x.passed, x.failed);
    for (int i = 0; i < VEC_COUNT; i++)
        tf_proto_identity_deinit(&x.ids[i]);
    json_decref(x.root);
    return x.failed == 0 && x.passed > 0 ? 0 : 1;
}
