/* SPDX-License-Identifier: MIT */
/*
 * Introduction policy: the owner's rules for answering introductions without
 * being asked (docs/POLICY.md).  Pure: the node reads the file, owns the
 * clock and stores the counters; this module parses the text, prints it back
 * and decides.
 *
 * One rule per line, '#' comments, first match wins:
 *
 *   <action> [when <cond> [and <cond>]...] [limit <N> per <dur> [each connector]]
 *   action: accept | decline | ask | propose
 *   cond:   connector is unknown | connector is known
 *         | connector trust >= close|known|acquaintance
 *         | connector tag <tag>
 *         | topic is <tag>[,<tag>...] | topic in offers | topic in seeks
 *         | mode is parallel|sequential
 *         | answers my request
 *         | requester is known|unknown | requester trust >= <level>
 *         | a contact offers the topic [with trust >= <level>]
 *         | connector helped >= <N>
 *   dur:    <N>h | <N>d | <N>w
 *
 * requests: a rule with the action `propose`, or with a `requester` or `a
 * contact offers` condition, is a request rule: it decides requests for an
 * introduction that others send the owner (propose, decline or ask), and is
 * skipped for introductions; every other rule decides introductions and is
 * skipped for requests.  A request rule may not use the conditions that
 * only introductions have (connector ..., topic in offers|seeks, mode is,
 * answers my request), nor the action `accept`.
 *
 * A rule matches when all its conditions hold and, if it has a limit, it has
 * made fewer than N decisions in the sliding window (for this connector, with
 * `each connector`).  No rule matching, or no policy at all, means `ask`.
 */
#ifndef TF_PROTO_POLICY_H
#define TF_PROTO_POLICY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "proto/err.h"
#include "proto/identity.h"
#include "proto/intro.h"
#include "proto/mp.h"

/* Parser limits.  A file over any of them is refused (TF_E_TOO_LONG). */
#define TF_PROTO_POLICY_TEXT_MAX (1024u * 1024u) /* bytes in the whole file */
#define TF_PROTO_POLICY_LINE_MAX 1024            /* bytes per line, without "\n" */
#define TF_PROTO_POLICY_RULES_MAX 256
#define TF_PROTO_POLICY_CONDS_MAX 16  /* conditions per rule */
#define TF_PROTO_POLICY_TOPICS_MAX 16 /* tags per `topic is` list */
#define TF_PROTO_POLICY_LIMIT_MAX 1000000u
/* Longest window: 3650 days (10 years of 365 days), in seconds. */
#define TF_PROTO_POLICY_WINDOW_MAX (3650ull * 86400ull)

/* A rule's stable counter key (see struct tf_proto_policy_rule.key). */
#define TF_PROTO_POLICY_KEY_LEN 16

/* Sizes of the two strings of struct tf_proto_policy_error, NUL included. */
#define TF_PROTO_POLICY_WHAT_MAX 160
#define TF_PROTO_POLICY_ERROR_MAX 512

enum tf_proto_policy_action {
    TF_PROTO_POLICY_ACTION_ASK = 0,
    TF_PROTO_POLICY_ACTION_ACCEPT = 1,
    TF_PROTO_POLICY_ACTION_DECLINE = 2,
    TF_PROTO_POLICY_ACTION_PROPOSE = 3, /* requests: propose the best contact */
};

/* How much the owner trusts a contact.  Same order and values as the node's
 * own trust levels, but defined here so proto/ does not depend on node/. */
enum tf_proto_policy_trust {
    TF_PROTO_POLICY_TRUST_NONE = 0,
    TF_PROTO_POLICY_TRUST_ACQUAINTANCE = 1,
    TF_PROTO_POLICY_TRUST_KNOWN = 2,
    TF_PROTO_POLICY_TRUST_CLOSE = 3,
};

enum tf_proto_policy_cond_kind {
    TF_PROTO_POLICY_COND_KNOWN = 0,      /* connector is known */
    TF_PROTO_POLICY_COND_UNKNOWN,        /* connector is unknown */
    TF_PROTO_POLICY_COND_TRUST_AT_LEAST, /* connector trust >= .trust */
    TF_PROTO_POLICY_COND_TAG,            /* connector tag .tags[0] */
    TF_PROTO_POLICY_COND_TOPIC_IS,       /* topic is .tags[0],... */
    TF_PROTO_POLICY_COND_TOPIC_IN_OFFERS,
    TF_PROTO_POLICY_COND_TOPIC_IN_SEEKS,
    TF_PROTO_POLICY_COND_MODE_IS, /* mode is .mode */
    /* requests */
    TF_PROTO_POLICY_COND_ANSWERS_REQUEST,   /* answers my request */
    TF_PROTO_POLICY_COND_REQUESTER_KNOWN,   /* requester is known */
    TF_PROTO_POLICY_COND_REQUESTER_UNKNOWN, /* requester is unknown */
    TF_PROTO_POLICY_COND_REQUESTER_TRUST,   /* requester trust >= .trust */
    TF_PROTO_POLICY_COND_CONTACT_OFFERS,    /* a contact offers the topic with trust >= .trust */
    TF_PROTO_POLICY_COND_CONNECTOR_HELPED,  /* connector helped >= .count */
};

/* One condition.  Fields other than kind are meaningful only for the kinds
 * named above.  tags are views into the policy's own copy of the text (not
 * NUL-terminated), valid until tf_proto_policy_free. */
struct tf_proto_policy_cond {
    enum tf_proto_policy_cond_kind kind;
    enum tf_proto_policy_trust trust;
    enum tf_proto_intro_mode mode;
    size_t n_tags;  /* 1 for TAG, 1..TF_PROTO_POLICY_TOPICS_MAX for TOPIC_IS */
    uint64_t count; /* CONNECTOR_HELPED: 0..TF_PROTO_POLICY_LIMIT_MAX */
    const struct tf_proto_bytes *tags;
};

struct tf_proto_policy_rule {
    enum tf_proto_policy_action action;
    size_t line; /* 1-based line of the rule in its file */
    size_t n_conds;
    struct tf_proto_policy_cond conds[TF_PROTO_POLICY_CONDS_MAX];
    bool limited;        /* the rule has a limit clause; the fields below are set */
    uint32_t limit;      /* N: 1..TF_PROTO_POLICY_LIMIT_MAX decisions */
    uint32_t window_n;   /* the window as written: window_n ... */
    char window_unit;    /* ... of 'h', 'd' or 'w' */
    uint64_t window;     /* the same in seconds: 3600..TF_PROTO_POLICY_WINDOW_MAX */
    bool each_connector; /* count per connector instead of over all connectors */
    /* Identifies the rule's counter across reloads, where its index and line
     * may change: a hash of the action and conditions in canonical form (not
     * of the limit clause, so editing N, the window or `each connector` keeps
     * the history) and of how many identical rules come before it. */
    uint8_t key[TF_PROTO_POLICY_KEY_LEN];
};

/* A parsed policy.  Read-only for callers: build it with
 * tf_proto_policy_parse, release it with tf_proto_policy_free. */
struct tf_proto_policy {
    char *file_name;                    /* owned, NUL-terminated copy of the name given to parse */
    char *text;                         /* owned copy of the text; tags view into it */
    size_t n_rules;                     /* 0..TF_PROTO_POLICY_RULES_MAX; 0 for an empty file */
    struct tf_proto_policy_rule *rules; /* owned, in file order */
    struct tf_proto_bytes *tag_pool;    /* owned; the conditions' tags */
};

/* Where and why a policy was refused. */
struct tf_proto_policy_error {
    /* 1-based position of the offending token (or byte).  Columns count bytes
     * from the start of the line; a tab counts as one.  A missing token is
     * reported just after the last token of its line.  Both are 0 when the
     * error has no position (out of memory, invalid argument). */
    size_t line;
    size_t column;
    char what[TF_PROTO_POLICY_WHAT_MAX]; /* e.g. "unknown action 'acept'" */
    /* "file:line:column: what" (or "file: what" without a position).  A file
     * name longer than 256 bytes is shortened to "..." and its last bytes. */
    char text[TF_PROTO_POLICY_ERROR_MAX];
};

/*
 * Parses a policy file.  text[0..len) is borrowed (copied, need not be
 * NUL-terminated; len 0 gives an empty policy); file_name (NUL-terminated,
 * borrowed, copied) is used in error messages and kept in the policy for
 * `policy test` output.  On success *out is a new policy owned by the caller
 * (free with tf_proto_policy_free).  On failure *out is NULL and, if err is
 * not NULL, *err says where and why; the whole file is refused.
 *
 * Returns TF_OK, or:
 *   TF_E_INVALID_ARG  text (with len > 0), file_name or out is NULL
 *   TF_E_TOO_LONG     a limit above is exceeded (file, line, rules, conditions,
 *                     topics per list, a tag longer than TF_PROTO_TAG_MAX)
 *   TF_E_BAD_TEXT     a NUL byte, a control character other than tab (a "\r"
 *                     is allowed just before "\n" or at the end of the file),
 *                     or a byte above 0x7e outside a comment
 *   TF_E_BAD_VALUE    any other syntax error, a number or duration out of
 *                     range, a tag that is not a tag (tf_proto_tag_is_valid),
 *                     a tag listed twice in one `topic is`
 *   TF_E_NOMEM
 */
TF_MUST_CHECK int tf_proto_policy_parse(const char *text, size_t len, const char *file_name,
                                        struct tf_proto_policy **out,
                                        struct tf_proto_policy_error *err);

/* Frees a policy and everything it owns; NULL is a no-op. */
void tf_proto_policy_free(struct tf_proto_policy *policy);

/* True if a and b have the same rules in the same order, ignoring line
 * numbers and how windows were written ("168h" equals "1w").  Both borrowed. */
bool tf_proto_policy_rules_equal(const struct tf_proto_policy *a, const struct tf_proto_policy *b);

/* One counter question (see count_cb below).  All fields borrowed for the
 * call. */
struct tf_proto_policy_count_query {
    size_t rule_index;       /* index in policy->rules (changes on reload) */
    const uint8_t *rule_key; /* TF_PROTO_POLICY_KEY_LEN bytes (stable) */
    /* NULL: count over all connectors; otherwise TF_PROTO_KEY_LEN bytes, the
     * connector whose decisions to count (a rule with `each connector`). */
    const uint8_t *connector_pk;
    /* Count the decisions made at a time t > since (unix seconds): the
     * window is (now - window, now].  since is 0 when now < window. */
    uint64_t since;
};

/* Called by tf_proto_policy_eval, synchronously, for a limited rule whose
 * conditions all hold: store in *count how many decisions the rule (by key,
 * and by connector if query->connector_pk is set) has recorded in the window.
 * Return TF_OK, or an error that tf_proto_policy_eval then returns. */
typedef int (*tf_proto_policy_count_cb)(void *ctx, const struct tf_proto_policy_count_query *query,
                                        uint64_t *count);

/* What eval needs to know about an introduction.  All pointers borrowed for
 * the call; a list may be NULL when its count is 0. */
struct tf_proto_policy_input {
    /* The connector (from the intro core); used for per-connector counts. */
    uint8_t connector_pk[TF_PROTO_KEY_LEN];
    /* True if the connector is one of the owner's contacts.  When false,
     * trust and tags are ignored (treated as none). */
    bool connector_known;
    enum tf_proto_policy_trust trust;  /* the contact's trust */
    const struct tf_proto_bytes *tags; /* the contact's tags */
    size_t n_tags;
    /* requests: true when deciding a request for an introduction; then
     * connector_pk, connector_known, trust and tags describe the requester
     * and topic is what the request seeks. */
    bool is_request;
    /* requests: the proposal answers one of the owner's own open requests
     * (checked by the node). */
    bool answers_request;
    /* requests: the highest trust among the owner's contacts (not blocked,
     * not the requester) whose card offers the topic; NONE when none does. */
    enum tf_proto_policy_trust offer_trust;
    /* feedback: how many of the connector's intros the owner reported as
     * helpful. */
    uint64_t connector_helped;
    struct tf_proto_bytes topic;         /* the intro's topic */
    enum tf_proto_intro_mode mode;       /* the intro's mode */
    const struct tf_proto_bytes *offers; /* the owner's own card: offers */
    size_t n_offers;
    const struct tf_proto_bytes *seeks; /* ... and seeks */
    size_t n_seeks;
    uint64_t now; /* unix seconds */
    /* Required if a limited rule's conditions may all hold; ctx is passed
     * through untouched. */
    tf_proto_policy_count_cb count_cb;
    void *count_ctx;
};

struct tf_proto_policy_decision {
    enum tf_proto_policy_action action;
    bool matched;      /* false: no rule matched (or no policy): ask by default */
    size_t rule_index; /* index in policy->rules, if matched */
    size_t line;       /* the rule's line, if matched; else 0 */
    /* The rule has a limit: the node must record this decision (rule key,
     * connector, now) so later counts see it.  Asks are counted too, so that
     * `ask ... limit` bounds how often the owner is asked. */
    bool record;
    bool each_connector;
    uint8_t rule_key[TF_PROTO_POLICY_KEY_LEN]; /* if matched */
};

/*
 * Decides an introduction: the first rule whose conditions all hold and whose
 * limit (if any) is not used up.  A rule whose limit is used up is skipped
 * and evaluation goes on with the next rule.  policy may be NULL (no policy
 * file): the answer is then the default `ask`.  Conditions are checked in
 * order and the counter is asked only once they all hold, so count_cb runs
 * at most once per limited rule.
 *
 * Returns TF_OK with *out set, or TF_E_INVALID_ARG (in or out NULL, a list
 * NULL with a non-zero count, trust out of range, count_cb needed but NULL),
 * or count_cb's error.  On any failure *out (if not NULL) is the default ask
 * with matched false, never an accept.
 */
TF_MUST_CHECK int tf_proto_policy_eval(const struct tf_proto_policy *policy,
                                       const struct tf_proto_policy_input *in,
                                       struct tf_proto_policy_decision *out);

/* Output styles of tf_proto_policy_format. */
enum tf_proto_policy_format_style {
    /* Canonical policy text: one rule per line, single spaces, no comments.
     * Parsing it gives equal rules (tf_proto_policy_rules_equal). */
    TF_PROTO_POLICY_FORMAT_PLAIN = 0,
    /* As PLAIN, each line prefixed with the rule's line in its file and ": "
     * (for `policy show`); not parseable. */
    TF_PROTO_POLICY_FORMAT_LINES = 1,
};

/* Writes the rules as text, each line ending in "\n" ("" for no rules).
 * *out is a malloc'ed NUL-terminated string owned by the caller.  Returns
 * TF_OK, TF_E_INVALID_ARG or TF_E_NOMEM (then *out is NULL). */
TF_MUST_CHECK int tf_proto_policy_format(const struct tf_proto_policy *policy,
                                         enum tf_proto_policy_format_style style, char **out);

/* True if rule is a request rule (see the top of this file). */
bool tf_proto_policy_rule_is_request(const struct tf_proto_policy_rule *rule);

/* "accept", "decline", "ask", "propose"; "?" for an invalid value.  Static
 * strings. */
const char *tf_proto_policy_action_name(enum tf_proto_policy_action action);

/* "none", "acquaintance", "known", "close"; "?" for an invalid value. */
const char *tf_proto_policy_trust_name(enum tf_proto_policy_trust trust);

#endif
