/* SPDX-License-Identifier: MIT */
/*
 * Policy files as text: tf_proto_policy_parse on arbitrary bytes.
 *
 * Properties when it refuses:
 *  - the result is a negative code, *out is NULL, and the error names a
 *    position inside the input (a line that exists, a column at most one
 *    past the end of that line) and starts with the file name.
 * Properties when it accepts:
 *  - the limits hold (rules, conditions, topics, N, windows), rules are in
 *    increasing line order, and every tag is a valid tag viewing the
 *    policy's own copy of the text;
 *  - the canonical text parses back to equal rules with equal counter keys,
 *    and printing that again gives the same text (a fixed point);
 *  - evaluation under a few inputs names a rule consistent with its answer.
 */
#include <string.h>

#include "fuzz.h"
#include "proto/card.h"
#include "proto/policy.h"

#define FILE_NAME "fuzz-policy"

/* Line count and the length of line `line` (1-based) in data. */
static size_t line_length(const uint8_t *data, size_t size, size_t line, size_t *n_lines)
{
    size_t l = 1, start = 0, len = SIZE_MAX;
    for (size_t i = 0; i <= size; i++) {
        if (i == size || data[i] == '\n') {
            if (l == line)
                len = i - start;
            l++;
            start = i + 1;
        }
    }
    *n_lines = l - 1;
    return len;
}

static void check_refusal(const uint8_t *data, size_t size, int rc,
                          const struct tf_proto_policy *pol,
                          const struct tf_proto_policy_error *err)
{
    FUZZ_ASSERT(rc < 0);
    FUZZ_ASSERT(pol == NULL);
    FUZZ_ASSERT(memchr(err->what, '\0', sizeof err->what) != NULL);
    FUZZ_ASSERT(memchr(err->text, '\0', sizeof err->text) != NULL);
    FUZZ_ASSERT(err->what[0] != '\0');
    FUZZ_ASSERT(strncmp(err->text, FILE_NAME ":", strlen(FILE_NAME ":")) == 0);
    if (rc == TF_E_NOMEM)
        return;
    size_t n_lines;
    size_t len = line_length(data, size, err->line, &n_lines);
    FUZZ_ASSERT(err->line >= 1 && err->line <= n_lines);
    FUZZ_ASSERT(err->column >= 1 && err->column <= len + 1);
}

static int count_cb(void *ctx, const struct tf_proto_policy_count_query *q, uint64_t *count)
{
    const struct tf_proto_policy *pol = ctx;
    FUZZ_ASSERT(q->rule_index < pol->n_rules);
    const struct tf_proto_policy_rule *r = &pol->rules[q->rule_index];
    FUZZ_ASSERT(r->limited);
    FUZZ_ASSERT(memcmp(q->rule_key, r->key, TF_PROTO_POLICY_KEY_LEN) == 0);
    FUZZ_ASSERT((q->connector_pk != NULL) == r->each_connector);
    /* Some rules used up, some not. */
    *count = (q->rule_index % 3 == 0) ? r->limit : r->limit - 1;
    return TF_OK;
}

static void check_eval(const struct tf_proto_policy *pol, bool known, uint8_t trust,
                       const char *topic, enum tf_proto_intro_mode mode)
{
    static const struct tf_proto_bytes tags[] = {{(const uint8_t *)"law", 3},
                                                 {(const uint8_t *)"a", 1}};
    static const struct tf_proto_bytes offers[] = {{(const uint8_t *)"probate", 7},
                                                   {(const uint8_t *)"a", 1}};
    static const struct tf_proto_bytes seeks[] = {{(const uint8_t *)"b", 1}};
    struct tf_proto_policy_input in;
    memset(&in, 0, sizeof in);
    memset(in.connector_pk, 'C', sizeof in.connector_pk);
    in.connector_known = known;
    in.trust = (enum tf_proto_policy_trust)(trust % 4);
    in.tags = tags;
    in.n_tags = 2;
    in.topic.ptr = (const uint8_t *)topic;
    in.topic.len = strlen(topic);
    in.mode = mode;
    in.offers = offers;
    in.n_offers = 2;
    in.seeks = seeks;
    in.n_seeks = 1;
    in.now = 1700000000;
    in.count_cb = count_cb;
    in.count_ctx = (void *)(uintptr_t)pol;
    struct tf_proto_policy_decision d;
    FUZZ_ASSERT(tf_proto_policy_eval(pol, &in, &d) == TF_OK);
    if (!d.matched) {
        FUZZ_ASSERT(d.action == TF_PROTO_POLICY_ACTION_ASK && !d.record && d.line == 0);
        return;
    }
    FUZZ_ASSERT(d.rule_index < pol->n_rules);
    const struct tf_proto_policy_rule *r = &pol->rules[d.rule_index];
    FUZZ_ASSERT(d.action == r->action && d.line == r->line && d.record == r->limited);
    FUZZ_ASSERT(memcmp(d.rule_key, r->key, TF_PROTO_POLICY_KEY_LEN) == 0);
    /* A rule of index % 3 == 0 is always used up in count_cb. */
    FUZZ_ASSERT(!r->limited || d.rule_index % 3 != 0);
}

static void check_policy(const struct tf_proto_policy *pol)
{
    FUZZ_ASSERT(strcmp(pol->file_name, FILE_NAME) == 0);
    FUZZ_ASSERT(pol->n_rules <= TF_PROTO_POLICY_RULES_MAX);
    size_t text_len = strlen(pol->text);
    for (size_t i = 0; i < pol->n_rules; i++) {
        const struct tf_proto_policy_rule *r = &pol->rules[i];
        FUZZ_ASSERT(r->line >= 1 && (i == 0 || r->line > pol->rules[i - 1].line));
        FUZZ_ASSERT(r->n_conds <= TF_PROTO_POLICY_CONDS_MAX);
        if (r->limited) {
            FUZZ_ASSERT(r->limit >= 1 && r->limit <= TF_PROTO_POLICY_LIMIT_MAX);
            FUZZ_ASSERT(r->window >= 3600 && r->window <= TF_PROTO_POLICY_WINDOW_MAX);
        }
        for (size_t j = 0; j < r->n_conds; j++) {
            const struct tf_proto_policy_cond *c = &r->conds[j];
            FUZZ_ASSERT(c->n_tags <= TF_PROTO_POLICY_TOPICS_MAX);
            for (size_t k = 0; k < c->n_tags; k++) {
                struct tf_proto_bytes t = c->tags[k];
                FUZZ_ASSERT(fuzz_view_within(t, (const uint8_t *)pol->text, text_len));
                FUZZ_ASSERT(tf_proto_tag_is_valid(t.ptr, t.len));
            }
        }
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fuzz_sodium_init();
    struct tf_proto_policy *pol = NULL;
    struct tf_proto_policy_error err;
    int rc = tf_proto_policy_parse((const char *)data, size, FILE_NAME, &pol, &err);
    if (rc != TF_OK) {
        check_refusal(data, size, rc, pol, &err);
        return 0;
    }
    check_policy(pol);

    char *plain = NULL, *lines = NULL, *plain2 = NULL;
    FUZZ_ASSERT(tf_proto_policy_format(pol, TF_PROTO_POLICY_FORMAT_PLAIN, &plain) == TF_OK);
    FUZZ_ASSERT(tf_proto_policy_format(pol, TF_PROTO_POLICY_FORMAT_LINES, &lines) == TF_OK);
    struct tf_proto_policy *again = NULL;
    rc = tf_proto_policy_parse(plain, strlen(plain), FILE_NAME, &again, &err);
    if (rc != TF_OK)
        fprintf(stderr, "canonical text refused: %s\n", err.text);
    FUZZ_ASSERT(rc == TF_OK);
    FUZZ_ASSERT(tf_proto_policy_rules_equal(pol, again));
    for (size_t i = 0; i < pol->n_rules; i++)
        FUZZ_ASSERT(memcmp(pol->rules[i].key, again->rules[i].key, TF_PROTO_POLICY_KEY_LEN) == 0);
    FUZZ_ASSERT(tf_proto_policy_format(again, TF_PROTO_POLICY_FORMAT_PLAIN, &plain2) == TF_OK);
    FUZZ_ASSERT(strcmp(plain, plain2) == 0);

    check_eval(pol, false, 0, "probate", TF_PROTO_INTRO_MODE_PARALLEL);
    check_eval(pol, true, (uint8_t)size, "probate", TF_PROTO_INTRO_MODE_SEQUENTIAL);
    check_eval(pol, true, 3, "b", TF_PROTO_INTRO_MODE_PARALLEL);
    check_eval(pol, true, 0, "law", TF_PROTO_INTRO_MODE_SEQUENTIAL);

    free(plain);
    free(plain2);
    free(lines);
    tf_proto_policy_free(again);
    tf_proto_policy_free(pol);
    return 0;
}
