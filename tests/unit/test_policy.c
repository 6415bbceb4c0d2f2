/* SPDX-License-Identifier: MIT */
/*
 * Unit tests for proto/policy: the parser (valid files, and a table of
 * malformed files each with its exact error position and message), the
 * canonical printer (round trips, `policy show` text), counter keys, and
 * evaluation (a table covering each condition, first-match order, limits
 * falling through, sliding windows, per-connector quotas, unknown vs known
 * connectors, offers and seeks), plus a simulated node that records the
 * decisions it is told to record; and the node's collection of counters
 * that no longer count (node/policy.c, on a real store).
 */
#include "fixtures.h"

#include <unistd.h>

#include "node/node.h"
#include "node/policy.h"
#include "node/store.h"
#include "proto/policy.h"

#define NOW 1700000000u
#define HOUR 3600u
#define DAY 86400u

/* The real-estate lawyer from docs/POLICY.md. */
static const char LAWYER[] = "decline when connector is unknown\n"
                             "accept when connector trust >= known and topic in offers\n"
                             "ask\n";

/* Parses text (NUL-terminated) that must be valid. */
static struct tf_proto_policy *parse_ok(const char *text)
{
    struct tf_proto_policy *pol = NULL;
    struct tf_proto_policy_error err;
    int rc = tf_proto_policy_parse(text, strlen(text), "policy", &pol, &err);
    if (rc != TF_OK)
        fail_msg("unexpected parse error %s: %s", tf_err_name(rc), err.text);
    assert_non_null(pol);
    return pol;
}

static char *format(const struct tf_proto_policy *pol, enum tf_proto_policy_format_style style)
{
    char *s = NULL;
    assert_ok(tf_proto_policy_format(pol, style, &s));
    assert_non_null(s);
    return s;
}

static bool view_is(struct tf_proto_bytes v, const char *s)
{
    return v.len == strlen(s) && memcmp(v.ptr, s, v.len) == 0;
}

/* Valid files. */

static void test_parse_issue_example(void **state)
{
    (void)state;
    struct tf_proto_policy *pol =
        parse_ok("decline when connector is unknown\n"
                 "accept  when connector trust >= known and topic in offers limit 5 per 7d\n"
                 "ask\n");
    assert_string_equal(pol->file_name, "policy");
    assert_int_equal(pol->n_rules, 3);

    const struct tf_proto_policy_rule *r = &pol->rules[0];
    assert_int_equal(r->action, TF_PROTO_POLICY_ACTION_DECLINE);
    assert_int_equal(r->line, 1);
    assert_int_equal(r->n_conds, 1);
    assert_int_equal(r->conds[0].kind, TF_PROTO_POLICY_COND_UNKNOWN);
    assert_false(r->limited);

    r = &pol->rules[1];
    assert_int_equal(r->action, TF_PROTO_POLICY_ACTION_ACCEPT);
    assert_int_equal(r->line, 2);
    assert_int_equal(r->n_conds, 2);
    assert_int_equal(r->conds[0].kind, TF_PROTO_POLICY_COND_TRUST_AT_LEAST);
    assert_int_equal(r->conds[0].trust, TF_PROTO_POLICY_TRUST_KNOWN);
    assert_int_equal(r->conds[1].kind, TF_PROTO_POLICY_COND_TOPIC_IN_OFFERS);
    assert_true(r->limited);
    assert_int_equal(r->limit, 5);
    assert_int_equal(r->window_n, 7);
    assert_int_equal(r->window_unit, 'd');
    assert_int_equal(r->window, 7 * DAY);
    assert_false(r->each_connector);

    r = &pol->rules[2];
    assert_int_equal(r->action, TF_PROTO_POLICY_ACTION_ASK);
    assert_int_equal(r->line, 3);
    assert_int_equal(r->n_conds, 0);
    assert_false(r->limited);
    tf_proto_policy_free(pol);
}

static void test_parse_every_condition(void **state)
{
    (void)state;
    struct tf_proto_policy *pol =
        parse_ok("# every condition once\n"
                 "\n"
                 "accept when connector is known and connector trust >= close and "
                 "connector trust >= acquaintance and connector tag family "
                 "and topic is law,tax-advice,x1 and topic in offers and topic in seeks "
                 "and mode is parallel and mode is sequential and connector is unknown "
                 "limit 1000000 per 3650d each connector # trailing comment\n");
    assert_int_equal(pol->n_rules, 1);
    const struct tf_proto_policy_rule *r = &pol->rules[0];
    assert_int_equal(r->line, 3);
    assert_int_equal(r->n_conds, 10);
    assert_int_equal(r->conds[0].kind, TF_PROTO_POLICY_COND_KNOWN);
    assert_int_equal(r->conds[1].kind, TF_PROTO_POLICY_COND_TRUST_AT_LEAST);
    assert_int_equal(r->conds[1].trust, TF_PROTO_POLICY_TRUST_CLOSE);
    assert_int_equal(r->conds[2].trust, TF_PROTO_POLICY_TRUST_ACQUAINTANCE);
    assert_int_equal(r->conds[3].kind, TF_PROTO_POLICY_COND_TAG);
    assert_int_equal(r->conds[3].n_tags, 1);
    assert_true(view_is(r->conds[3].tags[0], "family"));
    assert_int_equal(r->conds[4].kind, TF_PROTO_POLICY_COND_TOPIC_IS);
    assert_int_equal(r->conds[4].n_tags, 3);
    assert_true(view_is(r->conds[4].tags[0], "law"));
    assert_true(view_is(r->conds[4].tags[1], "tax-advice"));
    assert_true(view_is(r->conds[4].tags[2], "x1"));
    assert_int_equal(r->conds[5].kind, TF_PROTO_POLICY_COND_TOPIC_IN_OFFERS);
    assert_int_equal(r->conds[6].kind, TF_PROTO_POLICY_COND_TOPIC_IN_SEEKS);
    assert_int_equal(r->conds[7].kind, TF_PROTO_POLICY_COND_MODE_IS);
    assert_int_equal(r->conds[7].mode, TF_PROTO_INTRO_MODE_PARALLEL);
    assert_int_equal(r->conds[8].mode, TF_PROTO_INTRO_MODE_SEQUENTIAL);
    assert_int_equal(r->conds[9].kind, TF_PROTO_POLICY_COND_UNKNOWN);
    assert_int_equal(r->limit, TF_PROTO_POLICY_LIMIT_MAX);
    assert_int_equal(r->window, TF_PROTO_POLICY_WINDOW_MAX);
    assert_true(r->each_connector);
    /* the tags view the policy's own copy of the text */
    assert_true((const char *)r->conds[3].tags[0].ptr >= pol->text);
    tf_proto_policy_free(pol);
}

/* Blank lines, comments, tabs, CRLF, no final newline, empty files. */
static void test_parse_layout(void **state)
{
    (void)state;
    static const char *const empty[] = {"", "\n", "# only a comment", "  \t \n\n# x\n\t# y\r\n"};
    for (size_t i = 0; i < sizeof empty / sizeof *empty; i++) {
        struct tf_proto_policy *pol = parse_ok(empty[i]);
        assert_int_equal(pol->n_rules, 0);
        char *s = format(pol, TF_PROTO_POLICY_FORMAT_LINES);
        assert_string_equal(s, "");
        free(s);
        tf_proto_policy_free(pol);
    }
    struct tf_proto_policy *pol = NULL;
    assert_ok(tf_proto_policy_parse(NULL, 0, "policy", &pol, NULL));
    assert_int_equal(pol->n_rules, 0);
    tf_proto_policy_free(pol);
}

static void test_parse_hash_inside_token_is_not_comment(void **state)
{
    (void)state;
    struct tf_proto_policy *pol = NULL;
    struct tf_proto_policy_error err;
    const char *t = "ask#comment\n";
    assert_rc(tf_proto_policy_parse(t, strlen(t), "policy", &pol, &err), TF_E_BAD_VALUE);
    assert_string_equal(err.text,
                        "policy:1:1: expected an action (accept, decline, ask or propose), "
                        "found 'ask#comment'");
    pol = parse_ok("\r\n\tdecline\twhen connector   is unknown\r\n#c\r\n  ask # a comment\r\n"
                   "accept when mode is sequential");
    assert_int_equal(pol->n_rules, 3);
    assert_int_equal(pol->rules[0].line, 2);
    assert_int_equal(pol->rules[1].line, 4);
    assert_int_equal(pol->rules[2].line, 5);
    char *s = format(pol, TF_PROTO_POLICY_FORMAT_LINES);
    assert_string_equal(s, "2: decline when connector is unknown\n"
                           "4: ask\n"
                           "5: accept when mode is sequential\n");
    free(s);
    tf_proto_policy_free(pol);
}

/* Every limit of the parser, exactly at the limit. */
static void test_parse_at_limits(void **state)
{
    (void)state;
    /* 256 rules, the last with 16 conditions, one a list of 16 topics. */
    size_t cap = 64 * 1024;
    char *text = malloc(cap);
    assert_non_null(text);
    struct fx_sb {
        char *p;
        size_t len;
    } b = {text, 0};
#define ADD(s)                                                                                     \
    do {                                                                                           \
        size_t n_ = strlen(s);                                                                     \
        assert_true(b.len + n_ < cap);                                                             \
        memcpy(b.p + b.len, (s), n_);                                                              \
        b.len += n_;                                                                               \
    } while (0)
    for (int i = 0; i < 255; i++)
        ADD("decline when mode is sequential\n");
    ADD("ask when topic is a,b,c,d,e,f,g,h,i,j,k,l,m,n,o,p");
    for (int i = 1; i < 16; i++)
        ADD(" and topic in seeks");
    ADD(" limit 1 per 87600h\n");
    text[b.len] = '\0';
    struct tf_proto_policy *pol = parse_ok(text);
    assert_int_equal(pol->n_rules, 256);
    assert_int_equal(pol->rules[255].n_conds, 16);
    assert_int_equal(pol->rules[255].conds[0].n_tags, 16);
    assert_true(view_is(pol->rules[255].conds[0].tags[15], "p"));
    assert_int_equal(pol->rules[255].window, TF_PROTO_POLICY_WINDOW_MAX);
    tf_proto_policy_free(pol);

    /* A line of exactly 1024 bytes (a 64-byte tag inside). */
    b.len = 0;
    ADD("accept when connector tag ");
    for (int i = 0; i < 64; i++)
        ADD("t");
    ADD(" #");
    while (b.len < 1024)
        ADD("c");
    ADD("\r\n");
    text[b.len] = '\0';
    pol = parse_ok(text);
    assert_int_equal(pol->rules[0].conds[0].tags[0].len, 64);
    tf_proto_policy_free(pol);

    /* Largest windows in each unit, and a 1h one. */
    pol = parse_ok("ask limit 1 per 521w\nask limit 1 per 3650d\nask limit 1 per 1h\n"
                   "ask limit 01 per 007d\n");
    assert_int_equal(pol->rules[0].window, 521u * 7 * DAY);
    assert_int_equal(pol->rules[1].window, 3650u * DAY);
    assert_int_equal(pol->rules[2].window, HOUR);
    assert_int_equal(pol->rules[3].limit, 1);
    assert_int_equal(pol->rules[3].window, 7 * DAY);
    tf_proto_policy_free(pol);
    free(text);
#undef ADD
}

/* Malformed files: the whole file is refused with file:line:column. */

struct bad_case {
    const char *name;
    const char *text;
    size_t len; /* 0: strlen(text) */
    int rc;
    size_t line, column;
    const char *what;
};

static const struct bad_case bad_cases[] = {
    {"unknown action", "acept\n", 0, TF_E_BAD_VALUE, 1, 1,
     "expected an action (accept, decline, ask or propose), found 'acept'"},
    {"keyword case on line 2", "ask\nAccept when connector is known\n", 0, TF_E_BAD_VALUE, 2, 1,
     "keywords are lowercase, found 'Accept'"},
    {"keyword case mid-rule", "accept When connector is known", 0, TF_E_BAD_VALUE, 1, 8,
     "keywords are lowercase, found 'When'"},
    {"nothing after when", "accept when\n", 0, TF_E_BAD_VALUE, 1, 12,
     "expected a condition (connector, topic, mode, answers, requester or a contact), found end of "
     "line"},
    {"nothing after when, comment after", "accept when   # oops\n", 0, TF_E_BAD_VALUE, 1, 12,
     "expected a condition (connector, topic, mode, answers, requester or a contact), found end of "
     "line"},
    {"nothing after and", "decline when connector is unknown and\n", 0, TF_E_BAD_VALUE, 1, 38,
     "expected a condition (connector, topic, mode, answers, requester or a contact), found end of "
     "line"},
    {"not a condition", "accept when limit 5 per 1d", 0, TF_E_BAD_VALUE, 1, 13,
     "expected a condition (connector, topic, mode, answers, requester or a contact), found "
     "'limit'"},
    {"connector what", "accept when connector was known", 0, TF_E_BAD_VALUE, 1, 23,
     "expected 'is', 'trust', 'tag' or 'helped' after 'connector', found 'was'"},
    {"connector is what", "decline when connector is stranger", 0, TF_E_BAD_VALUE, 1, 27,
     "expected 'known' or 'unknown' after 'connector is', found 'stranger'"},
    {"trust operator", "accept when connector trust > known", 0, TF_E_BAD_VALUE, 1, 29,
     "expected '>=' after 'connector trust', found '>'"},
    {"trust level", "accept when connector trust >= friend", 0, TF_E_BAD_VALUE, 1, 32,
     "expected a trust level (acquaintance, known or close), found 'friend'"},
    {"trust none is no level", "accept when connector trust >= none", 0, TF_E_BAD_VALUE, 1, 32,
     "expected a trust level (acquaintance, known or close), found 'none'"},
    {"connector tag missing", "accept when connector tag", 0, TF_E_BAD_VALUE, 1, 26,
     "expected a tag after 'connector tag', found end of line"},
    {"connector tag invalid", "accept when connector tag Lawyer", 0, TF_E_BAD_VALUE, 1, 27,
     "'Lawyer' is not a tag (a-z, 0-9 and '-', not starting or ending with '-')"},
    {"connector tag too long",
     "accept when connector tag "
     "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
     0, TF_E_TOO_LONG, 1, 27,
     "tag 'aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa...' is longer than 64 bytes"},
    {"topic what", "accept when topic = law", 0, TF_E_BAD_VALUE, 1, 19,
     "expected 'is' or 'in' after 'topic', found '='"},
    {"topic in what",
     "decline when connector is unknown\n\n  # comment\n\taccept when topic in offerz\n", 0,
     TF_E_BAD_VALUE, 4, 23, "expected 'offers' or 'seeks' after 'topic in', found 'offerz'"},
    {"topic list with a space", "accept when topic is law, tax", 0, TF_E_BAD_VALUE, 1, 25,
     "empty tag in a topic list (write tags separated by ',' without spaces)"},
    {"topic list leading comma", "accept when topic is ,law", 0, TF_E_BAD_VALUE, 1, 22,
     "empty tag in a topic list (write tags separated by ',' without spaces)"},
    {"topic list double comma", "accept when topic is law,,tax", 0, TF_E_BAD_VALUE, 1, 26,
     "empty tag in a topic list (write tags separated by ',' without spaces)"},
    {"topic list bad element", "accept when topic is law,Tax,x", 0, TF_E_BAD_VALUE, 1, 26,
     "'Tax' is not a tag (a-z, 0-9 and '-', not starting or ending with '-')"},
    {"topic list duplicate", "accept when topic is law,tax,law", 0, TF_E_BAD_VALUE, 1, 30,
     "topic 'law' is listed twice"},
    {"17 topics", "accept when topic is a,b,c,d,e,f,g,h,i,j,k,l,m,n,o,p,q", 0, TF_E_TOO_LONG, 1, 54,
     "more than 16 topics in one list, at 'q'"},
    {"hash inside a tag", "accept when topic is law#tax", 0, TF_E_BAD_VALUE, 1, 22,
     "'law#tax' is not a tag (a-z, 0-9 and '-', not starting or ending with '-')"},
    {"mode without is", "ask when mode parallel", 0, TF_E_BAD_VALUE, 1, 15,
     "expected 'is' after 'mode', found 'parallel'"},
    {"mode value", "ask when mode is serial", 0, TF_E_BAD_VALUE, 1, 18,
     "expected 'parallel' or 'sequential' after 'mode is', found 'serial'"},
    {"17 conditions",
     "ask when mode is parallel and mode is parallel and mode is parallel and mode is parallel "
     "and mode is parallel and mode is parallel and mode is parallel and mode is parallel "
     "and mode is parallel and mode is parallel and mode is parallel and mode is parallel "
     "and mode is parallel and mode is parallel and mode is parallel and mode is parallel "
     "and mode is parallel",
     0, TF_E_TOO_LONG, 1, 346, "more than 16 conditions in one rule"},
    {"junk after action", "accept please", 0, TF_E_BAD_VALUE, 1, 8,
     "expected 'when', 'limit' or end of line, found 'please'"},
    {"junk after condition", "accept when mode is parallel or mode is sequential", 0,
     TF_E_BAD_VALUE, 1, 30, "expected 'and', 'limit' or end of line, found 'or'"},
    {"limit missing", "accept limit", 0, TF_E_BAD_VALUE, 1, 13,
     "expected a number after 'limit', found end of line"},
    {"limit zero", "accept limit 0 per 1d", 0, TF_E_BAD_VALUE, 1, 14,
     "limit '0' is out of range (1 to 1000000)"},
    {"limit too big", "accept limit 1000001 per 1d", 0, TF_E_BAD_VALUE, 1, 14,
     "limit '1000001' is out of range (1 to 1000000)"},
    {"limit huge", "accept limit 99999999999999999999999999 per 1d", 0, TF_E_BAD_VALUE, 1, 14,
     "limit '99999999999999999999999999' is out of range (1 to 1000000)"},
    {"limit not a number", "accept limit five per 1d", 0, TF_E_BAD_VALUE, 1, 14,
     "expected a number after 'limit', found 'five'"},
    {"limit negative", "accept limit -5 per 1d", 0, TF_E_BAD_VALUE, 1, 14,
     "expected a number after 'limit', found '-5'"},
    {"per missing", "accept limit 5 in 7d", 0, TF_E_BAD_VALUE, 1, 16,
     "expected 'per' after the limit, found 'in'"},
    {"window missing", "accept limit 5 per", 0, TF_E_BAD_VALUE, 1, 19,
     "expected a window after 'per' (like 12h, 7d or 2w), found end of line"},
    {"window without number", "accept limit 5 per week", 0, TF_E_BAD_VALUE, 1, 20,
     "expected a window after 'per' (like 12h, 7d or 2w), found 'week'"},
    {"window without unit", "accept limit 5 per 7", 0, TF_E_BAD_VALUE, 1, 20,
     "window '7' needs a unit: h, d or w"},
    {"window unit", "accept limit 5 per 7m", 0, TF_E_BAD_VALUE, 1, 20,
     "unknown unit in window '7m' (use h, d or w)"},
    {"window unit word", "accept limit 5 per 7days", 0, TF_E_BAD_VALUE, 1, 20,
     "unknown unit in window '7days' (use h, d or w)"},
    {"window zero", "accept limit 5 per 0h", 0, TF_E_BAD_VALUE, 1, 20,
     "window '0h' is out of range (1h to 3650d)"},
    {"window 3651d", "accept limit 5 per 3651d", 0, TF_E_BAD_VALUE, 1, 20,
     "window '3651d' is out of range (1h to 3650d)"},
    {"window 522w", "accept limit 5 per 522w", 0, TF_E_BAD_VALUE, 1, 20,
     "window '522w' is out of range (1h to 3650d)"},
    {"window 87601h", "accept limit 5 per 87601h", 0, TF_E_BAD_VALUE, 1, 20,
     "window '87601h' is out of range (1h to 3650d)"},
    {"each alone", "accept limit 5 per 7d each", 0, TF_E_BAD_VALUE, 1, 27,
     "expected 'connector' after 'each', found end of line"},
    {"each what", "accept limit 5 per 7d each contact", 0, TF_E_BAD_VALUE, 1, 28,
     "expected 'connector' after 'each', found 'contact'"},
    {"after the limit", "accept limit 5 per 7d per connector", 0, TF_E_BAD_VALUE, 1, 23,
     "expected 'each connector' or end of line, found 'per'"},
    {"junk at the end", "ask limit 1 per 1h each connector please", 0, TF_E_BAD_VALUE, 1, 35,
     "expected end of line, found 'please'"},
    {"condition after limit", "accept limit 5 per 7d when connector is known", 0, TF_E_BAD_VALUE, 1,
     23, "conditions go before 'limit', found 'when'"},
    {"two limits", "accept limit 5 per 7d limit 1 per 1d", 0, TF_E_BAD_VALUE, 1, 23,
     "a rule has at most one 'limit'"},
    {"two limits, each", "accept limit 5 per 7d each connector limit 1 per 1d", 0, TF_E_BAD_VALUE,
     1, 38, "a rule has at most one 'limit'"},
    {"NUL byte", "ask\nac\0cept\n", 12, TF_E_BAD_TEXT, 2, 3, "NUL byte (byte 0x00)"},
    {"NUL in comment", "ask # a\0b\n", 10, TF_E_BAD_TEXT, 1, 8, "NUL byte (byte 0x00)"},
    {"control character in comment", "ask # hi\x01\n", 0, TF_E_BAD_TEXT, 1, 9,
     "control character (byte 0x01)"},
    {"bare CR", "ask\raccept\n", 0, TF_E_BAD_TEXT, 1, 4, "control character (byte 0x0d)"},
    {"DEL", "ask \x7f\n", 0, TF_E_BAD_TEXT, 1, 5, "control character (byte 0x7f)"},
    {"non-ASCII outside a comment", "accept when topic is caf\xc3\xa9", 0, TF_E_BAD_TEXT, 1, 25,
     "non-ASCII byte outside a comment (byte 0xc3)"},
    {"bad bytes come before syntax", "acept \x02", 0, TF_E_BAD_TEXT, 1, 7,
     "control character (byte 0x02)"},
};

static void check_bad(const struct bad_case *c, const char *file_name)
{
    size_t len = c->len ? c->len : strlen(c->text);
    /* An exact-size heap copy, so ASan sees any read past the end. */
    char *copy = (char *)fx_dup((const uint8_t *)c->text, len, 0);
    struct tf_proto_policy *pol = (struct tf_proto_policy *)(uintptr_t)1;
    struct tf_proto_policy_error err;
    int rc = tf_proto_policy_parse(copy, len, file_name, &pol, &err);
    free(copy);
    if (rc != c->rc || pol != NULL || err.line != c->line || err.column != c->column ||
        strcmp(err.what, c->what) != 0)
        fail_msg("case \"%s\":\n  got  %s %zu:%zu: %s\n  want %s %zu:%zu: %s", c->name,
                 tf_err_name(rc), err.line, err.column, err.what, tf_err_name(c->rc), c->line,
                 c->column, c->what);
}

static void test_parse_errors(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof bad_cases / sizeof *bad_cases; i++)
        check_bad(&bad_cases[i], "policy");
    /* the full message */
    struct tf_proto_policy *pol = NULL;
    struct tf_proto_policy_error err;
    const char *t = "ask\n\n  decline when connector is strange\n";
    assert_rc(tf_proto_policy_parse(t, strlen(t), "/home/a/.twofold/policy", &pol, &err),
              TF_E_BAD_VALUE);
    assert_string_equal(err.text, "/home/a/.twofold/policy:3:29: expected 'known' or 'unknown' "
                                  "after 'connector is', found 'strange'");
    /* the same without an error struct */
    assert_rc(tf_proto_policy_parse(t, strlen(t), "policy", &pol, NULL), TF_E_BAD_VALUE);
    assert_null(pol);
}

/* A very long file name keeps its tail. */
static void test_parse_error_long_file_name(void **state)
{
    (void)state;
    char name[400];
    memset(name, 'd', sizeof name);
    memcpy(name + sizeof name - 8, "/policy", 8);
    struct tf_proto_policy *pol = NULL;
    struct tf_proto_policy_error err;
    assert_rc(tf_proto_policy_parse("x", 1, name, &pol, &err), TF_E_BAD_VALUE);
    assert_int_equal(strncmp(err.text, "...ddd", 6), 0);
    const char *tail =
        "dd/policy:1:1: expected an action (accept, decline, ask or propose), found 'x'";
    assert_true(strlen(err.text) > strlen(tail));
    assert_string_equal(err.text + strlen(err.text) - strlen(tail), tail);
    assert_int_equal(strlen(err.text), 256 + strlen(":1:1: ") + strlen(err.what));
}

static void test_parse_size_limits(void **state)
{
    (void)state;
    struct tf_proto_policy *pol = NULL;
    struct tf_proto_policy_error err;

    /* 257 rules, after a header comment: refused at the 257th rule. */
    size_t cap = 4096;
    char *text = malloc(cap);
    assert_non_null(text);
    size_t len = 0;
    memcpy(text, "# header\n", 9);
    len = 9;
    for (int i = 0; i < 256; i++) {
        memcpy(text + len, "ask\n", 4);
        len += 4;
    }
    memcpy(text + len, "  decline\n", 10);
    len += 10;
    assert_rc(tf_proto_policy_parse(text, len, "policy", &pol, &err), TF_E_TOO_LONG);
    assert_null(pol);
    assert_string_equal(err.text, "policy:258:3: more than 256 rules");
    /* 256 rules and a comment after them are fine */
    memcpy(text + len - 10, "# decline\n", 10);
    assert_ok(tf_proto_policy_parse(text, len, "policy", &pol, &err));
    assert_int_equal(pol->n_rules, 256);
    tf_proto_policy_free(pol);
    free(text);

    /* A line of 1025 bytes, even a comment, on line 2. */
    text = malloc(2000);
    assert_non_null(text);
    memcpy(text, "ask\n#", 5);
    memset(text + 5, 'c', 1024);
    text[1029] = '\n';
    assert_rc(tf_proto_policy_parse(text, 1030, "policy", &pol, &err), TF_E_TOO_LONG);
    assert_string_equal(err.text, "policy:2:1025: line is longer than 1024 bytes");
    free(text);

    /* A file over 1 MiB: 100-byte comment lines; byte 1048576 is on line
     * 10486, column 77. */
    len = TF_PROTO_POLICY_TEXT_MAX + 1;
    text = malloc(len);
    assert_non_null(text);
    for (size_t i = 0; i < len; i++)
        text[i] = i % 100 == 0 ? '#' : i % 100 == 99 ? '\n' : 'c';
    assert_rc(tf_proto_policy_parse(text, len, "policy", &pol, &err), TF_E_TOO_LONG);
    assert_string_equal(err.text, "policy:10486:77: file is larger than 1048576 bytes");
    assert_ok(tf_proto_policy_parse(text, len - 1, "policy", &pol, &err));
    assert_int_equal(pol->n_rules, 0);
    tf_proto_policy_free(pol);
    free(text);
}

static void test_parse_invalid_args(void **state)
{
    (void)state;
    struct tf_proto_policy *pol = NULL;
    struct tf_proto_policy_error err;
    assert_rc(tf_proto_policy_parse(NULL, 3, "policy", &pol, &err), TF_E_INVALID_ARG);
    assert_null(pol);
    assert_int_equal(err.line, 0);
    assert_string_equal(err.text, "policy: invalid argument");
    assert_rc(tf_proto_policy_parse("ask", 3, NULL, &pol, &err), TF_E_INVALID_ARG);
    assert_rc(tf_proto_policy_parse("ask", 3, "policy", NULL, &err), TF_E_INVALID_ARG);
    tf_proto_policy_free(NULL);

    char *s = (char *)(uintptr_t)1;
    assert_rc(tf_proto_policy_format(NULL, TF_PROTO_POLICY_FORMAT_PLAIN, &s), TF_E_INVALID_ARG);
    assert_null(s);
    pol = parse_ok("ask");
    assert_rc(tf_proto_policy_format(pol, (enum tf_proto_policy_format_style)7, &s),
              TF_E_INVALID_ARG);
    assert_rc(tf_proto_policy_format(pol, TF_PROTO_POLICY_FORMAT_PLAIN, NULL), TF_E_INVALID_ARG);
    tf_proto_policy_free(pol);
}

/* Printing. */

static void test_format_canonical(void **state)
{
    (void)state;
    struct tf_proto_policy *pol =
        parse_ok("# lawyer\n"
                 "decline   when connector is unknown   # strangers\n"
                 "\taccept when connector trust >= known and topic in offers limit 05 per 168h\n"
                 "accept when connector tag family and topic is law,tax limit 2 per 1w each "
                 "connector\n"
                 "ask when mode is sequential and topic in seeks\n"
                 "ask\n");
    char *plain = format(pol, TF_PROTO_POLICY_FORMAT_PLAIN);
    static const char want_plain[] =
        "decline when connector is unknown\n"
        "accept when connector trust >= known and topic in offers limit 5 per 168h\n"
        "accept when connector tag family and topic is law,tax limit 2 per 1w each connector\n"
        "ask when mode is sequential and topic in seeks\n"
        "ask\n";
    assert_string_equal(plain, want_plain);
    char *lines = format(pol, TF_PROTO_POLICY_FORMAT_LINES);
    assert_string_equal(
        lines,
        "2: decline when connector is unknown\n"
        "3: accept when connector trust >= known and topic in offers limit 5 per 168h\n"
        "4: accept when connector tag family and topic is law,tax limit 2 per 1w each connector\n"
        "5: ask when mode is sequential and topic in seeks\n"
        "6: ask\n");

    /* parse(format(x)) gives the same rules, the same keys, the same text */
    struct tf_proto_policy *again = parse_ok(plain);
    assert_true(tf_proto_policy_rules_equal(pol, again));
    for (size_t i = 0; i < pol->n_rules; i++)
        assert_memory_equal(pol->rules[i].key, again->rules[i].key, TF_PROTO_POLICY_KEY_LEN);
    char *plain2 = format(again, TF_PROTO_POLICY_FORMAT_PLAIN);
    assert_string_equal(plain, plain2);
    free(plain2);
    free(plain);
    free(lines);
    tf_proto_policy_free(again);
    tf_proto_policy_free(pol);
}

static void test_rules_equal(void **state)
{
    (void)state;
    struct tf_proto_policy *a = parse_ok("ask limit 3 per 168h\naccept when topic is a,b\n");
    struct tf_proto_policy *b = parse_ok("\n\nask limit 3 per 1w\naccept  when topic is a,b\n");
    assert_true(tf_proto_policy_rules_equal(a, b));
    assert_true(tf_proto_policy_rules_equal(NULL, NULL));
    assert_false(tf_proto_policy_rules_equal(a, NULL));
    static const char *const differ[] = {
        "ask limit 4 per 1w\naccept when topic is a,b\n",
        "ask limit 3 per 6d\naccept when topic is a,b\n",
        "ask limit 3 per 1w each connector\naccept when topic is a,b\n",
        "ask\naccept when topic is a,b\n",
        "decline limit 3 per 1w\naccept when topic is a,b\n",
        "ask limit 3 per 1w\naccept when topic is b,a\n",
        "ask limit 3 per 1w\naccept when topic is a\n",
        "ask limit 3 per 1w\naccept when topic in offers\n",
        "ask limit 3 per 1w\naccept when topic is a,b and mode is parallel\n",
        "ask limit 3 per 1w\n",
    };
    for (size_t i = 0; i < sizeof differ / sizeof *differ; i++) {
        struct tf_proto_policy *c = parse_ok(differ[i]);
        if (tf_proto_policy_rules_equal(a, c))
            fail_msg("equal to a: %s", differ[i]);
        tf_proto_policy_free(c);
    }
    tf_proto_policy_free(a);
    tf_proto_policy_free(b);
}

/* Counter keys survive moves and limit edits; they differ otherwise. */
static void test_keys(void **state)
{
    (void)state;
    struct tf_proto_policy *a = parse_ok("decline when connector is unknown\n"
                                         "accept when topic in offers limit 5 per 7d\n"
                                         "ask\n");
    struct tf_proto_policy *b =
        parse_ok("# moved down, limit and window edited\n"
                 "accept when connector tag vip\n"
                 "decline when connector is unknown\n"
                 "accept when topic in offers limit 9 per 2w each connector\n"
                 "ask\n");
    assert_memory_equal(a->rules[0].key, b->rules[1].key, TF_PROTO_POLICY_KEY_LEN);
    assert_memory_equal(a->rules[1].key, b->rules[2].key, TF_PROTO_POLICY_KEY_LEN);
    assert_memory_equal(a->rules[2].key, b->rules[3].key, TF_PROTO_POLICY_KEY_LEN);
    assert_memory_not_equal(a->rules[0].key, a->rules[1].key, TF_PROTO_POLICY_KEY_LEN);
    assert_memory_not_equal(b->rules[0].key, b->rules[1].key, TF_PROTO_POLICY_KEY_LEN);
    tf_proto_policy_free(b);

    /* identical rules get separate counters, stable by occurrence */
    b = parse_ok("ask limit 1 per 1d\nask limit 1 per 1d\naccept\nask limit 2 per 1d\n");
    assert_memory_not_equal(b->rules[0].key, b->rules[1].key, TF_PROTO_POLICY_KEY_LEN);
    assert_memory_not_equal(b->rules[1].key, b->rules[3].key, TF_PROTO_POLICY_KEY_LEN);
    assert_memory_not_equal(b->rules[0].key, b->rules[3].key, TF_PROTO_POLICY_KEY_LEN);
    assert_memory_equal(b->rules[0].key, a->rules[2].key, TF_PROTO_POLICY_KEY_LEN);
    tf_proto_policy_free(b);

    /* a different condition or action is a different rule */
    b = parse_ok("accept when topic in seeks limit 5 per 7d\ndecline when topic in offers\n");
    assert_memory_not_equal(a->rules[1].key, b->rules[0].key, TF_PROTO_POLICY_KEY_LEN);
    assert_memory_not_equal(a->rules[1].key, b->rules[1].key, TF_PROTO_POLICY_KEY_LEN);
    tf_proto_policy_free(b);
    tf_proto_policy_free(a);
}

/* Evaluation. */

/* A node's counter store: hits (rule key, connector, time). */
struct hit {
    uint8_t key[TF_PROTO_POLICY_KEY_LEN];
    uint8_t who;
    uint64_t time;
};

struct store {
    struct hit hits[64];
    size_t n;
    size_t calls;
    struct tf_proto_policy_count_query last;
    uint8_t last_pk[TF_PROTO_KEY_LEN];
    bool last_had_pk;
    int fail_rc;
};

static int count_hits(void *ctx, const struct tf_proto_policy_count_query *q, uint64_t *count)
{
    struct store *s = ctx;
    s->calls++;
    s->last = *q;
    s->last_had_pk = q->connector_pk != NULL;
    if (q->connector_pk != NULL)
        memcpy(s->last_pk, q->connector_pk, TF_PROTO_KEY_LEN);
    if (s->fail_rc != 0)
        return s->fail_rc;
    uint64_t n = 0;
    for (size_t i = 0; i < s->n; i++) {
        const struct hit *h = &s->hits[i];
        if (memcmp(h->key, q->rule_key, TF_PROTO_POLICY_KEY_LEN) != 0 || h->time <= q->since)
            continue;
        if (q->connector_pk != NULL && q->connector_pk[0] != h->who)
            continue;
        n++;
    }
    *count = n;
    return TF_OK;
}

static void store_add(struct store *s, const uint8_t key[TF_PROTO_POLICY_KEY_LEN], uint8_t who,
                      uint64_t time)
{
    assert_true(s->n < sizeof s->hits / sizeof *s->hits);
    memcpy(s->hits[s->n].key, key, TF_PROTO_POLICY_KEY_LEN);
    s->hits[s->n].who = who;
    s->hits[s->n].time = time;
    s->n++;
}

static const struct tf_proto_bytes my_offers[] = {{(const uint8_t *)"conveyancing", 12},
                                                  {(const uint8_t *)"probate", 7}};
static const struct tf_proto_bytes my_seeks[] = {{(const uint8_t *)"tax-advice", 10}};

/* The input for an intro from connector `who` ('A' fills its key). */
static void input_init(struct tf_proto_policy_input *in, char who, struct store *s)
{
    memset(in, 0, sizeof *in);
    memset(in->connector_pk, who, TF_PROTO_KEY_LEN);
    in->topic = fx_str("gardening");
    in->mode = TF_PROTO_INTRO_MODE_PARALLEL;
    in->offers = my_offers;
    in->n_offers = 2;
    in->seeks = my_seeks;
    in->n_seeks = 1;
    in->now = NOW;
    in->count_cb = count_hits;
    in->count_ctx = s;
}

/* Earlier decisions of the rule on `line`, by connector `who`, `ago` seconds
 * before now (repeated n times). */
struct hit_spec {
    size_t line;
    char who;
    uint64_t ago;
    unsigned n;
};

struct eval_case {
    const char *name;
    const char *policy; /* NULL: no policy file */
    bool known;
    enum tf_proto_policy_trust trust;
    const char *tags[3]; /* the contact's tags, NULL-terminated */
    const char *topic;   /* NULL: "gardening" (neither offered nor sought) */
    bool sequential;
    char who;                /* 0: 'A' */
    uint64_t later;          /* evaluate this many seconds after NOW */
    struct hit_spec hits[4]; /* ended by line 0 */
    enum tf_proto_policy_action want;
    size_t want_line; /* 0: no rule matched (default ask) */
};

#define ACCEPT TF_PROTO_POLICY_ACTION_ACCEPT
#define DECLINE TF_PROTO_POLICY_ACTION_DECLINE
#define ASK TF_PROTO_POLICY_ACTION_ASK
#define TR_NONE TF_PROTO_POLICY_TRUST_NONE
#define TR_ACQ TF_PROTO_POLICY_TRUST_ACQUAINTANCE
#define TR_KNOWN TF_PROTO_POLICY_TRUST_KNOWN
#define TR_CLOSE TF_PROTO_POLICY_TRUST_CLOSE

/* Line 2 is the limited accept: 5 per 7 days over all connectors. */
static const char LIMITED[] = "decline when connector is unknown\n"
                              "accept when connector trust >= known and topic in offers "
                              "limit 5 per 7d\n"
                              "ask\n";
/* Line 1: 2 per day per connector. */
static const char EACH[] = "accept when connector is known limit 2 per 1d each connector\n"
                           "decline\n";

static const struct eval_case eval_cases[] = {
    /* No policy, no rules. */
    {.name = "no policy file", .policy = NULL, .known = true, .trust = TR_CLOSE, .want = ASK},
    {.name = "only comments", .policy = "# nothing yet\n", .want = ASK},
    {.name = "rule without conditions", .policy = "accept\n", .want = ACCEPT, .want_line = 1},

    /* connector is known / unknown */
    {.name = "unknown: is unknown",
     .policy = "decline when connector is unknown\n",
     .want = DECLINE,
     .want_line = 1},
    {.name = "known: not unknown",
     .policy = "decline when connector is unknown\n",
     .known = true,
     .want = ASK},
    {.name = "known: is known",
     .policy = "accept when connector is known\n",
     .known = true,
     .trust = TR_NONE,
     .want = ACCEPT,
     .want_line = 1},
    {.name = "unknown: not known", .policy = "accept when connector is known\n", .want = ASK},

    /* connector trust >= X */
    {.name = "trust known >= known",
     .policy = "accept when connector trust >= known\n",
     .known = true,
     .trust = TR_KNOWN,
     .want = ACCEPT,
     .want_line = 1},
    {.name = "trust close >= known",
     .policy = "accept when connector trust >= known\n",
     .known = true,
     .trust = TR_CLOSE,
     .want = ACCEPT,
     .want_line = 1},
    {.name = "trust acquaintance < known",
     .policy = "accept when connector trust >= known\n",
     .known = true,
     .trust = TR_ACQ,
     .want = ASK},
    {.name = "trust close >= close",
     .policy = "accept when connector trust >= close\n",
     .known = true,
     .trust = TR_CLOSE,
     .want = ACCEPT,
     .want_line = 1},
    {.name = "trust none < acquaintance",
     .policy = "accept when connector trust >= acquaintance\n",
     .known = true,
     .trust = TR_NONE,
     .want = ASK},
    {.name = "trust of an unknown connector is ignored",
     .policy = "accept when connector trust >= acquaintance\n",
     .known = false,
     .trust = TR_CLOSE,
     .want = ASK},

    /* connector tag T */
    {.name = "tag present",
     .policy = "accept when connector tag law\n",
     .known = true,
     .tags = {"family", "law"},
     .want = ACCEPT,
     .want_line = 1},
    {.name = "tag absent",
     .policy = "accept when connector tag law\n",
     .known = true,
     .tags = {"family", "lawyer"},
     .want = ASK},
    {.name = "tags of an unknown connector are ignored",
     .policy = "accept when connector tag law\n",
     .tags = {"law"},
     .want = ASK},

    /* topic is / in offers / in seeks */
    {.name = "topic is, in the list",
     .policy = "accept when topic is probate,tax\n",
     .topic = "tax",
     .want = ACCEPT,
     .want_line = 1},
    {.name = "topic is, not in the list",
     .policy = "accept when topic is probate,tax\n",
     .topic = "taxes",
     .want = ASK},
    {.name = "topic in offers",
     .policy = "accept when topic in offers\n",
     .topic = "conveyancing",
     .want = ACCEPT,
     .want_line = 1},
    {.name = "sought topic is not offered",
     .policy = "accept when topic in offers\n",
     .topic = "tax-advice",
     .want = ASK},
    {.name = "topic in seeks",
     .policy = "accept when topic in seeks\n",
     .topic = "tax-advice",
     .want = ACCEPT,
     .want_line = 1},
    {.name = "offered topic is not sought",
     .policy = "accept when topic in seeks\n",
     .topic = "probate",
     .want = ASK},

    /* mode is */
    {.name = "mode is sequential",
     .policy = "decline when mode is sequential\n",
     .sequential = true,
     .want = DECLINE,
     .want_line = 1},
    {.name = "mode is not sequential", .policy = "decline when mode is sequential\n", .want = ASK},
    {.name = "mode is parallel",
     .policy = "accept when mode is parallel\n",
     .want = ACCEPT,
     .want_line = 1},

    /* and, first match */
    {.name = "and: every condition must hold",
     .policy = "accept when connector is known and topic in offers and mode is parallel\n"
               "decline\n",
     .known = true,
     .topic = "probate",
     .sequential = true,
     .want = DECLINE,
     .want_line = 2},
    {.name = "and: all hold",
     .policy = "accept when connector is known and topic in offers and mode is parallel\n"
               "decline\n",
     .known = true,
     .topic = "probate",
     .want = ACCEPT,
     .want_line = 1},
    {.name = "first match wins",
     .policy = "decline when topic is probate\naccept\n",
     .topic = "probate",
     .want = DECLINE,
     .want_line = 1},
    {.name = "first match wins, reversed",
     .policy = "accept\ndecline when topic is probate\n",
     .topic = "probate",
     .want = ACCEPT,
     .want_line = 1},
    {.name = "comments and blanks keep file lines",
     .policy = "# header\n\ndecline when connector is unknown\n\n# then\nask\n",
     .known = true,
     .want = ASK,
     .want_line = 6},

    /* The lawyer. */
    {.name = "lawyer: stranger",
     .policy = LAWYER,
     .topic = "conveyancing",
     .want = DECLINE,
     .want_line = 1},
    {.name = "lawyer: known, offered topic",
     .policy = LAWYER,
     .known = true,
     .trust = TR_KNOWN,
     .topic = "conveyancing",
     .want = ACCEPT,
     .want_line = 2},
    {.name = "lawyer: known, other topic",
     .policy = LAWYER,
     .known = true,
     .trust = TR_CLOSE,
     .topic = "gardening",
     .want = ASK,
     .want_line = 3},
    {.name = "lawyer: acquaintance, offered topic",
     .policy = LAWYER,
     .known = true,
     .trust = TR_ACQ,
     .topic = "probate",
     .want = ASK,
     .want_line = 3},

    /* Limits over all connectors: 5 per 7 days. */
    {.name = "limit: 4 used of 5",
     .policy = LIMITED,
     .known = true,
     .trust = TR_KNOWN,
     .topic = "probate",
     .hits = {{2, 'A', DAY, 2}, {2, 'B', 6 * DAY, 2}},
     .want = ACCEPT,
     .want_line = 2},
    {.name = "limit: used up falls through",
     .policy = LIMITED,
     .known = true,
     .trust = TR_KNOWN,
     .topic = "probate",
     .hits = {{2, 'A', DAY, 3}, {2, 'B', 6 * DAY, 2}},
     .want = ASK,
     .want_line = 3},
    {.name = "limit: hits of other rules do not count",
     .policy = LIMITED,
     .known = true,
     .trust = TR_KNOWN,
     .topic = "probate",
     .hits = {{1, 'A', HOUR, 3}, {3, 'A', HOUR, 3}},
     .want = ACCEPT,
     .want_line = 2},
    {.name = "window: a hit exactly 7d old is out",
     .policy = LIMITED,
     .known = true,
     .trust = TR_KNOWN,
     .topic = "probate",
     .hits = {{2, 'A', 7 * DAY, 1}, {2, 'B', HOUR, 4}},
     .want = ACCEPT,
     .want_line = 2},
    {.name = "window: a hit 7d - 1s old is in",
     .policy = LIMITED,
     .known = true,
     .trust = TR_KNOWN,
     .topic = "probate",
     .hits = {{2, 'A', 7 * DAY - 1, 1}, {2, 'B', HOUR, 4}},
     .want = ASK,
     .want_line = 3},
    {.name = "window slides: 5 hits, two of them 6d old, 1d later",
     .policy = LIMITED,
     .known = true,
     .trust = TR_KNOWN,
     .topic = "probate",
     .later = DAY,
     .hits = {{2, 'A', 6 * DAY, 2}, {2, 'B', HOUR, 3}},
     .want = ACCEPT,
     .want_line = 2},
    {.name = "window slides: not yet, 1d - 1s later",
     .policy = LIMITED,
     .known = true,
     .trust = TR_KNOWN,
     .topic = "probate",
     .later = DAY - 1,
     .hits = {{2, 'A', 6 * DAY, 2}, {2, 'B', HOUR, 3}},
     .want = ASK,
     .want_line = 3},
    {.name = "limit: strangers never reach the limited rule",
     .policy = LIMITED,
     .topic = "probate",
     .want = DECLINE,
     .want_line = 1},

    /* Limits per connector: 2 per day each. */
    {.name = "each: other connectors' hits do not count",
     .policy = EACH,
     .known = true,
     .who = 'A',
     .hits = {{1, 'B', HOUR, 5}, {1, 'A', HOUR, 1}},
     .want = ACCEPT,
     .want_line = 1},
    {.name = "each: this connector's quota used up",
     .policy = EACH,
     .known = true,
     .who = 'B',
     .hits = {{1, 'B', HOUR, 2}, {1, 'A', HOUR, 1}},
     .want = DECLINE,
     .want_line = 2},
    {.name = "each: quota back after a day",
     .policy = EACH,
     .known = true,
     .who = 'B',
     .later = 23 * HOUR + 1,
     .hits = {{1, 'B', HOUR, 1}, {1, 'B', 0, 1}},
     .want = ACCEPT,
     .want_line = 1},

    /* A limited ask bounds how often the owner is asked. */
    {.name = "ask limit: under",
     .policy = "ask when connector is unknown limit 2 per 1d\ndecline\n",
     .hits = {{1, 'A', HOUR, 1}},
     .want = ASK,
     .want_line = 1},
    {.name = "ask limit: used up",
     .policy = "ask when connector is unknown limit 2 per 1d\ndecline\n",
     .hits = {{1, 'C', HOUR, 2}},
     .want = DECLINE,
     .want_line = 2},
};

static void run_eval_case(const struct eval_case *c)
{
    struct tf_proto_policy *pol = c->policy != NULL ? parse_ok(c->policy) : NULL;
    struct store s;
    memset(&s, 0, sizeof s);
    for (size_t i = 0; i < 4 && c->hits[i].line != 0; i++) {
        const struct tf_proto_policy_rule *r = NULL;
        for (size_t k = 0; k < pol->n_rules; k++)
            if (pol->rules[k].line == c->hits[i].line)
                r = &pol->rules[k];
        assert_non_null(r);
        for (unsigned n = 0; n < c->hits[i].n; n++)
            store_add(&s, r->key, (uint8_t)c->hits[i].who, NOW - c->hits[i].ago);
    }
    struct tf_proto_policy_input in;
    input_init(&in, c->who ? c->who : 'A', &s);
    in.connector_known = c->known;
    in.trust = c->trust;
    struct tf_proto_bytes tags[3];
    while (in.n_tags < 3 && c->tags[in.n_tags] != NULL) {
        tags[in.n_tags] = fx_str(c->tags[in.n_tags]);
        in.n_tags++;
    }
    in.tags = tags;
    if (c->topic != NULL)
        in.topic = fx_str(c->topic);
    in.mode = c->sequential ? TF_PROTO_INTRO_MODE_SEQUENTIAL : TF_PROTO_INTRO_MODE_PARALLEL;
    in.now = NOW + c->later;

    struct tf_proto_policy_decision d;
    int rc = tf_proto_policy_eval(pol, &in, &d);
    if (rc != TF_OK || d.action != c->want || d.line != c->want_line ||
        d.matched != (c->want_line != 0))
        fail_msg("case \"%s\":\n  got  %s %s line %zu matched %d\n  want %s line %zu", c->name,
                 tf_err_name(rc), tf_proto_policy_action_name(d.action), d.line, d.matched,
                 tf_proto_policy_action_name(c->want), c->want_line);
    if (d.matched) {
        const struct tf_proto_policy_rule *r = &pol->rules[d.rule_index];
        assert_int_equal(r->line, d.line);
        assert_memory_equal(d.rule_key, r->key, TF_PROTO_POLICY_KEY_LEN);
        assert_int_equal(d.record, r->limited);
        assert_int_equal(d.each_connector, r->limited && r->each_connector);
    } else {
        assert_false(d.record);
    }
    tf_proto_policy_free(pol);
}

static void test_eval_table(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof eval_cases / sizeof *eval_cases; i++)
        run_eval_case(&eval_cases[i]);
}

/* What the counter is asked, and when. */
static void test_eval_count_queries(void **state)
{
    (void)state;
    struct store s;
    memset(&s, 0, sizeof s);
    struct tf_proto_policy_input in;
    struct tf_proto_policy_decision d;

    struct tf_proto_policy *pol = parse_ok("accept when topic is probate\n"
                                           "accept when connector is known limit 3 per 2h\n"
                                           "ask when connector is unknown limit 1 per 1w each "
                                           "connector\n"
                                           "decline\n");
    /* an unlimited rule matches first: no counting at all */
    input_init(&in, 'A', &s);
    in.topic = fx_str("probate");
    assert_ok(tf_proto_policy_eval(pol, &in, &d));
    assert_int_equal(d.line, 1);
    assert_int_equal(s.calls, 0);

    /* a limited rule whose conditions fail is not counted */
    struct tf_proto_policy *other = parse_ok("accept when connector is known limit 1 per 1h\n"
                                             "decline\n");
    input_init(&in, 'A', &s);
    in.count_cb = NULL; /* would be an error if it were needed */
    assert_ok(tf_proto_policy_eval(other, &in, &d));
    assert_int_equal(d.action, DECLINE);
    assert_int_equal(d.line, 2);
    assert_false(d.record);
    tf_proto_policy_free(other);

    /* over all connectors: connector_pk NULL, since = now - window */
    input_init(&in, 'A', &s);
    in.connector_known = true;
    assert_ok(tf_proto_policy_eval(pol, &in, &d));
    assert_int_equal(d.action, ACCEPT);
    assert_int_equal(d.line, 2);
    assert_true(d.record);
    assert_false(d.each_connector);
    assert_int_equal(s.calls, 1);
    assert_int_equal(s.last.rule_index, 1);
    assert_false(s.last_had_pk);
    assert_int_equal(s.last.since, NOW - 2 * HOUR);

    /* per connector: connector_pk is the intro's connector */
    s.calls = 0;
    input_init(&in, 'Z', &s);
    assert_ok(tf_proto_policy_eval(pol, &in, &d));
    assert_int_equal(d.action, ASK);
    assert_true(d.matched);
    assert_int_equal(d.line, 3);
    assert_true(d.record);
    assert_true(d.each_connector);
    assert_int_equal(s.calls, 1);
    assert_int_equal(s.last.rule_index, 2);
    assert_true(s.last_had_pk);
    uint8_t z[TF_PROTO_KEY_LEN];
    memset(z, 'Z', sizeof z);
    assert_memory_equal(s.last_pk, z, TF_PROTO_KEY_LEN);
    assert_memory_equal(d.rule_key, pol->rules[2].key, TF_PROTO_POLICY_KEY_LEN);
    assert_int_equal(s.last.since, NOW - 7 * DAY);

    /* a clock before the window's length: since is 0, not a wrapped value */
    input_init(&in, 'Z', &s);
    in.now = 1000;
    assert_ok(tf_proto_policy_eval(pol, &in, &d));
    assert_int_equal(s.last.since, 0);

    tf_proto_policy_free(pol);
}

static void test_eval_errors(void **state)
{
    (void)state;
    struct store s;
    memset(&s, 0, sizeof s);
    struct tf_proto_policy_input in;
    struct tf_proto_policy_decision d;
    struct tf_proto_policy *pol =
        parse_ok("accept when connector is known limit 3 per 2h\ndecline\n");

    /* the counter fails: its error, and the answer is ask */
    input_init(&in, 'A', &s);
    in.connector_known = true;
    s.fail_rc = TF_E_CORRUPT;
    assert_rc(tf_proto_policy_eval(pol, &in, &d), TF_E_CORRUPT);
    assert_int_equal(d.action, ASK);
    assert_false(d.matched);
    s.fail_rc = -5; /* -EIO */
    assert_rc(tf_proto_policy_eval(pol, &in, &d), -5);
    s.fail_rc = 1; /* not a valid return code */
    assert_rc(tf_proto_policy_eval(pol, &in, &d), TF_E_INVALID_ARG);
    assert_int_equal(d.action, ASK);
    s.fail_rc = 0;

    /* a counter is needed but missing */
    in.count_cb = NULL;
    assert_rc(tf_proto_policy_eval(pol, &in, &d), TF_E_INVALID_ARG);
    assert_int_equal(d.action, ASK);
    assert_false(d.matched);

    /* invalid input */
    input_init(&in, 'A', &s);
    in.trust = (enum tf_proto_policy_trust)4;
    assert_rc(tf_proto_policy_eval(pol, &in, &d), TF_E_INVALID_ARG);
    input_init(&in, 'A', &s);
    in.mode = (enum tf_proto_intro_mode)2;
    assert_rc(tf_proto_policy_eval(pol, &in, &d), TF_E_INVALID_ARG);
    input_init(&in, 'A', &s);
    in.n_tags = 1;
    assert_rc(tf_proto_policy_eval(pol, &in, &d), TF_E_INVALID_ARG);
    input_init(&in, 'A', &s);
    in.offers = NULL;
    assert_rc(tf_proto_policy_eval(pol, &in, &d), TF_E_INVALID_ARG);
    input_init(&in, 'A', &s);
    in.topic.ptr = NULL;
    assert_rc(tf_proto_policy_eval(pol, &in, &d), TF_E_INVALID_ARG);
    assert_rc(tf_proto_policy_eval(pol, NULL, &d), TF_E_INVALID_ARG);
    assert_rc(tf_proto_policy_eval(pol, &in, NULL), TF_E_INVALID_ARG);

    /* empty lists and an empty topic are fine */
    input_init(&in, 'A', &s);
    in.offers = NULL;
    in.n_offers = 0;
    in.topic = fx_bytes(NULL, 0);
    assert_ok(tf_proto_policy_eval(pol, &in, &d));
    assert_int_equal(d.action, DECLINE);
    tf_proto_policy_free(pol);
}

/* A node over two weeks: it records each decision it is told to record, and
 * the quota (3 per day per connector, 4 per week overall) opens and closes as
 * the windows slide. */
static void test_eval_simulated_node(void **state)
{
    (void)state;
    struct tf_proto_policy *pol =
        parse_ok("decline when connector is unknown\n"
                 "accept when topic in offers limit 2 per 1d each connector\n"
                 "accept when connector trust >= close limit 4 per 1w\n"
                 "ask\n");
    struct store s;
    memset(&s, 0, sizeof s);
    struct {
        uint64_t at;
        char who;
        const char *topic;
        enum tf_proto_policy_action want;
        size_t line;
    } steps[] = {
        {0, 'A', "probate", ACCEPT, 2},
        {HOUR, 'A', "probate", ACCEPT, 2},
        {2 * HOUR, 'A', "probate", ACCEPT, 3}, /* A's daily quota is used up */
        {2 * HOUR, 'B', "probate", ACCEPT, 2}, /* B has its own */
        {3 * HOUR, 'A', "gardening", ACCEPT, 3},
        {4 * HOUR, 'A', "gardening", ACCEPT, 3},
        {5 * HOUR, 'A', "gardening", ACCEPT, 3}, /* the 4th of line 3 this week */
        {6 * HOUR, 'A', "gardening", ASK, 4},
        {DAY, 'A', "probate", ACCEPT, 2},        /* the hit at 0 is now out */
        {DAY + HOUR, 'A', "probate", ACCEPT, 2}, /* ... and the one at 1h */
        {DAY + HOUR, 'A', "probate", ASK, 4},
        {7 * DAY + 2 * HOUR, 'A', "gardening", ACCEPT, 3}, /* 2h's hit slid out */
        {7 * DAY + 2 * HOUR, 'A', "gardening", ASK, 4},
        {14 * DAY, 'A', "gardening", ACCEPT, 3},
    };
    for (size_t i = 0; i < sizeof steps / sizeof *steps; i++) {
        struct tf_proto_policy_input in;
        input_init(&in, steps[i].who, &s);
        in.connector_known = true;
        in.trust = TR_CLOSE;
        in.topic = fx_str(steps[i].topic);
        in.now = NOW + steps[i].at;
        struct tf_proto_policy_decision d;
        assert_ok(tf_proto_policy_eval(pol, &in, &d));
        if (d.action != steps[i].want || d.line != steps[i].line)
            fail_msg("step %zu: got %s line %zu, want %s line %zu", i,
                     tf_proto_policy_action_name(d.action), d.line,
                     tf_proto_policy_action_name(steps[i].want), steps[i].line);
        if (d.record)
            store_add(&s, d.rule_key, (uint8_t)steps[i].who, in.now);
    }
    tf_proto_policy_free(pol);
}

/* A counter as node/policy.c stores it: rule key || u64be(t) || 8 bytes. */
static void put_hit(struct tf_node_store *st, const uint8_t *rule_key, uint64_t t, uint8_t tag)
{
    uint8_t key[TF_PROTO_POLICY_KEY_LEN + 16], who[32];
    memcpy(key, rule_key, TF_PROTO_POLICY_KEY_LEN);
    for (int i = 0; i < 8; i++)
        key[TF_PROTO_POLICY_KEY_LEN + i] = (uint8_t)(t >> (56 - 8 * i));
    memset(key + TF_PROTO_POLICY_KEY_LEN + 8, tag, 8);
    memset(who, tag, sizeof who);
    assert_ok(
        tf_node_store_kv_put(st, TF_NODE_STORE_POLICY_HITS, key, sizeof key, who, sizeof who));
}

struct hits {
    size_t n;
    uint8_t tags[16];
};

static int hit_cb(const uint8_t *key, size_t klen, const uint8_t *val, size_t vlen, void *arg)
{
    struct hits *h = arg;
    (void)val;
    (void)vlen;
    assert_int_equal(klen, TF_PROTO_POLICY_KEY_LEN + 16);
    assert_true(h->n < 16);
    h->tags[h->n++] = key[klen - 1];
    return 0;
}

/* The tags of the counters left, in key order. */
static struct hits hits_left(struct tf_node_store *st)
{
    struct hits h;
    memset(&h, 0, sizeof h);
    assert_ok(tf_node_store_kv_foreach(st, TF_NODE_STORE_POLICY_HITS, hit_cb, &h));
    return h;
}

static void test_node_collects_counters(void **state)
{
    (void)state;
    char dir[] = "/tmp/tf-policy-XXXXXX", store_dir[64], path[128];
    assert_non_null(mkdtemp(dir));
    snprintf(store_dir, sizeof store_dir, "%s/store", dir);
    struct tf_node node;
    memset(&node, 0, sizeof node);
    assert_ok(tf_node_store_open(store_dir, TF_NODE_STORE_CREATE, &node.store));
    node.policy = parse_ok("accept when topic in offers limit 2 per 1d\n"
                           "ask when connector is unknown limit 3 per 1w each connector\n"
                           "ask\n");
    const uint8_t *day = node.policy->rules[0].key, *week = node.policy->rules[1].key;
    uint8_t gone[TF_PROTO_POLICY_KEY_LEN];
    memset(gone, 0xee, sizeof gone); /* the key of a rule no longer in the file */
    /* A decision at t counts while t > now - window. */
    put_hit(node.store, day, NOW - 2 * DAY, 1);  /* out */
    put_hit(node.store, day, NOW - DAY, 2);      /* out, just */
    put_hit(node.store, day, NOW - DAY + 1, 3);  /* in */
    put_hit(node.store, day, NOW, 4);            /* in */
    put_hit(node.store, week, NOW - 8 * DAY, 5); /* out */
    put_hit(node.store, week, NOW - 5 * DAY, 6); /* in */
    put_hit(node.store, gone, NOW, 7);           /* its rule is gone */
    assert_ok(tf_node_store_commit(node.store));
    assert_int_equal(hits_left(node.store).n, 7);

    size_t deleted = 99;
    assert_ok(tf_node_policy_collect(&node, NOW, 3, &deleted));
    assert_int_equal(deleted, 3); /* the limit */
    assert_ok(tf_node_policy_collect(&node, NOW, 3, &deleted));
    assert_int_equal(deleted, 1);
    assert_ok(tf_node_policy_collect(&node, NOW, 3, &deleted));
    assert_int_equal(deleted, 0);
    assert_ok(tf_node_store_commit(node.store));
    struct hits h = hits_left(node.store);
    assert_int_equal(h.n, 3);
    uint8_t kept[3] = {h.tags[0], h.tags[1], h.tags[2]};
    /* Key order is rule key order; both orders of the two rules are fine. */
    bool day_first = memcmp(day, week, TF_PROTO_POLICY_KEY_LEN) < 0;
    uint8_t want[3] = {3, 4, 6};
    if (!day_first) {
        want[0] = 6;
        want[1] = 3;
        want[2] = 4;
    }
    assert_memory_equal(kept, want, 3);

    /* A day later the 1d rule's hits are out too; without a policy, all go. */
    assert_ok(tf_node_policy_collect(&node, NOW + DAY, 10, &deleted));
    assert_int_equal(deleted, 2);
    tf_proto_policy_free(node.policy);
    node.policy = NULL;
    assert_ok(tf_node_policy_collect(&node, NOW + DAY, 10, &deleted));
    assert_int_equal(deleted, 1);
    assert_ok(tf_node_store_commit(node.store));
    assert_int_equal(hits_left(node.store).n, 0);

    tf_node_store_close(node.store);
    snprintf(path, sizeof path, "%s/data.mdb", store_dir);
    unlink(path);
    snprintf(path, sizeof path, "%s/lock.mdb", store_dir);
    unlink(path);
    rmdir(store_dir);
    rmdir(dir);
}

static void test_names(void **state)
{
    (void)state;
    assert_string_equal(tf_proto_policy_action_name(ACCEPT), "accept");
    assert_string_equal(tf_proto_policy_action_name(DECLINE), "decline");
    assert_string_equal(tf_proto_policy_action_name(ASK), "ask");
    assert_string_equal(tf_proto_policy_action_name((enum tf_proto_policy_action)9), "?");
    assert_string_equal(tf_proto_policy_trust_name(TR_NONE), "none");
    assert_string_equal(tf_proto_policy_trust_name(TR_ACQ), "acquaintance");
    assert_string_equal(tf_proto_policy_trust_name(TR_KNOWN), "known");
    assert_string_equal(tf_proto_policy_trust_name(TR_CLOSE), "close");
    assert_string_equal(tf_proto_policy_trust_name((enum tf_proto_policy_trust)9), "?");
}

/* requests: the request rules and `answers my request`: parsed, printed
 * back canonically, kept apart from introduction rules in evaluation, and
 * refused when they mix the two kinds. */
static void test_request_rules(void **state)
{
    (void)state;
    static const char text[] =
        "accept when answers my request\n"
        "decline when requester is unknown\n"
        "propose when requester trust >= known and a contact offers the topic with trust >= "
        "close\n"
        "propose when topic is tax-law and a contact offers the topic\n"
        "ask\n";
    struct tf_proto_policy *pol = parse_ok(text);
    assert_int_equal(pol->n_rules, 5);
    assert_false(tf_proto_policy_rule_is_request(&pol->rules[0]));
    assert_true(tf_proto_policy_rule_is_request(&pol->rules[1]));
    assert_true(tf_proto_policy_rule_is_request(&pol->rules[2]));
    assert_true(tf_proto_policy_rule_is_request(&pol->rules[3]));
    assert_false(tf_proto_policy_rule_is_request(&pol->rules[4]));
    char *out = format(pol, TF_PROTO_POLICY_FORMAT_PLAIN);
    assert_string_equal(out, "accept when answers my request\n"
                             "decline when requester is unknown\n"
                             "propose when requester trust >= known and a contact offers the "
                             "topic with trust >= close\n"
                             "propose when topic is tax-law and a contact offers the topic with "
                             "trust >= acquaintance\n"
                             "ask\n");
    struct tf_proto_policy *again = parse_ok(out);
    assert_true(tf_proto_policy_rules_equal(pol, again));
    tf_proto_policy_free(again);
    free(out);

    struct store st;
    memset(&st, 0, sizeof st);
    struct tf_proto_policy_input in;
    struct tf_proto_policy_decision d;
    /* An introduction: only rules 1 and 5 are looked at. */
    input_init(&in, 'A', &st);
    assert_ok(tf_proto_policy_eval(pol, &in, &d));
    assert_int_equal(d.action, ASK);
    assert_int_equal(d.line, 5);
    in.answers_request = true;
    assert_ok(tf_proto_policy_eval(pol, &in, &d));
    assert_int_equal(d.action, ACCEPT);
    assert_int_equal(d.line, 1);
    /* A request from a stranger: declined by rule 2, never by rule 1's
     * accept nor the catch-all ask of rule 5. */
    input_init(&in, 'B', &st);
    in.is_request = true;
    in.answers_request = true;
    in.offer_trust = TR_CLOSE;
    assert_ok(tf_proto_policy_eval(pol, &in, &d));
    assert_int_equal(d.action, DECLINE);
    assert_int_equal(d.line, 2);
    /* A known requester, a close contact offers it: rule 3 proposes. */
    in.connector_known = true;
    in.trust = TR_KNOWN;
    assert_ok(tf_proto_policy_eval(pol, &in, &d));
    assert_int_equal(d.action, TF_PROTO_POLICY_ACTION_PROPOSE);
    assert_int_equal(d.line, 3);
    /* Only a known contact offers it: rule 3 fails, rule 4 needs tax-law. */
    in.offer_trust = TR_KNOWN;
    assert_ok(tf_proto_policy_eval(pol, &in, &d));
    assert_false(d.matched);
    assert_int_equal(d.action, ASK);
    in.topic = fx_str("tax-law");
    assert_ok(tf_proto_policy_eval(pol, &in, &d));
    assert_int_equal(d.line, 4);
    /* Nobody offers it: no rule proposes. */
    in.offer_trust = TR_NONE;
    assert_ok(tf_proto_policy_eval(pol, &in, &d));
    assert_false(d.matched);
    /* An acquaintance requester is below rule 3's level. */
    in.offer_trust = TR_CLOSE;
    in.topic = fx_str("gardening");
    in.trust = TR_ACQ;
    assert_ok(tf_proto_policy_eval(pol, &in, &d));
    assert_false(d.matched);
    tf_proto_policy_free(pol);

    /* Mixing the kinds is refused, with a position. */
    static const char *const bad[] = {
        "propose when connector is known\n",
        "accept when requester is known\n",
        "decline when requester is known and mode is parallel\n",
        "propose when answers my request\n",
        "propose when a contact offers the topic with trust >= best\n",
        "accept when answers my requests\n",
        "propose when a contact offers topic\n",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        struct tf_proto_policy *p = NULL;
        struct tf_proto_policy_error err;
        assert_rc(tf_proto_policy_parse(bad[i], strlen(bad[i]), "policy", &p, &err),
                  TF_E_BAD_VALUE);
        assert_null(p);
        assert_int_equal(err.line, 1);
    }
    assert_string_equal(tf_proto_policy_action_name(TF_PROTO_POLICY_ACTION_PROPOSE), "propose");

    /* feedback: connector helped >= N, an introduction condition. */
    pol = parse_ok("accept when connector is known and connector helped >= 2\n");
    assert_false(tf_proto_policy_rule_is_request(&pol->rules[0]));
    char *txt = format(pol, TF_PROTO_POLICY_FORMAT_PLAIN);
    assert_string_equal(txt, "accept when connector is known and connector helped >= 2\n");
    free(txt);
    input_init(&in, 'A', &st);
    in.connector_known = true;
    in.connector_helped = 1;
    assert_ok(tf_proto_policy_eval(pol, &in, &d));
    assert_false(d.matched);
    in.connector_helped = 2;
    assert_ok(tf_proto_policy_eval(pol, &in, &d));
    assert_int_equal(d.action, ACCEPT);
    tf_proto_policy_free(pol);
    static const char *const bad2[] = {
        "accept when connector helped 2\n", "accept when connector helped >= many\n",
        "accept when connector helped >= 1000001\n", "propose when connector helped >= 1\n"};
    for (size_t i = 0; i < sizeof bad2 / sizeof bad2[0]; i++) {
        struct tf_proto_policy *p = NULL;
        assert_rc(tf_proto_policy_parse(bad2[i], strlen(bad2[i]), "policy", &p, NULL),
                  TF_E_BAD_VALUE);
        assert_null(p);
    }
}

int main(void)
{
    if (sodium_init() < 0)
        return 1;
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parse_issue_example),
        cmocka_unit_test(test_parse_every_condition),
        cmocka_unit_test(test_parse_layout),
        cmocka_unit_test(test_parse_hash_inside_token_is_not_comment),
        cmocka_unit_test(test_parse_at_limits),
        cmocka_unit_test(test_parse_errors),
        cmocka_unit_test(test_parse_error_long_file_name),
        cmocka_unit_test(test_parse_size_limits),
        cmocka_unit_test(test_parse_invalid_args),
        cmocka_unit_test(test_format_canonical),
        cmocka_unit_test(test_rules_equal),
        cmocka_unit_test(test_keys),
        cmocka_unit_test(test_eval_table),
        cmocka_unit_test(test_eval_count_queries),
        cmocka_unit_test(test_eval_errors),
        cmocka_unit_test(test_eval_simulated_node),
        cmocka_unit_test(test_names),
        cmocka_unit_test(test_node_collects_counters),
        cmocka_unit_test(test_request_rules),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
