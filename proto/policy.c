/* SPDX-License-Identifier: MIT */
#include "proto/policy.h"

#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "proto/card.h"

/* Longest file name kept whole in an error message; longer ones keep their
 * tail, which holds the informative part (".../.twofold/policy"). */
#define FILE_NAME_SHOWN 256
/* Longest token quoted whole in an error message. */
#define TOKEN_SHOWN 40
/* Tokens are separated by at least one blank, so a line has at most this
 * many. */
#define TOKENS_MAX (TF_PROTO_POLICY_LINE_MAX / 2 + 1)

static const char KEY_DOMAIN[] = "twofold/v1/policy-rule";

/*
 * String building without stdio (proto/ may not include it): a buffer that
 * either grows (formatting) or truncates silently at a fixed size (error
 * messages, which must be produced even when memory is short).
 */
struct strbuf {
    char *p;
    size_t len;
    size_t cap; /* bytes at p, including room for the NUL */
    bool grows;
    bool failed; /* a growing buffer could not grow */
};

static void sb_fixed(struct strbuf *b, char *buf, size_t cap)
{
    b->p = buf;
    b->len = 0;
    b->cap = cap;
    b->grows = false;
    b->failed = false;
    buf[0] = '\0';
}

static void sb_growing(struct strbuf *b)
{
    b->p = NULL;
    b->len = 0;
    b->cap = 0;
    b->grows = true;
    b->failed = false;
}

static void sb_putn(struct strbuf *b, const char *s, size_t n)
{
    if (b->failed || n == 0)
        return;
    if (n > b->cap - b->len - (b->cap > 0)) {
        if (!b->grows) {
            n = b->cap - b->len - 1;
        } else {
            size_t want = b->cap > 0 ? b->cap : 64;
            while (want - b->len - 1 < n) {
                if (want > SIZE_MAX / 2) {
                    b->failed = true;
                    return;
                }
                want *= 2;
            }
            char *np = realloc(b->p, want);
            if (np == NULL) {
                b->failed = true;
                return;
            }
            b->p = np;
            b->cap = want;
        }
    }
    memcpy(b->p + b->len, s, n);
    b->len += n;
    b->p[b->len] = '\0';
}

static void sb_puts(struct strbuf *b, const char *s)
{
    sb_putn(b, s, strlen(s));
}

static void sb_putu(struct strbuf *b, uint64_t v)
{
    char digits[20];
    size_t i = sizeof digits;
    do {
        digits[--i] = (char)('0' + v % 10);
        v /= 10;
    } while (v > 0);
    sb_putn(b, digits + i, sizeof digits - i);
}

static void sb_putc(struct strbuf *b, char c)
{
    sb_putn(b, &c, 1);
}

/* Names. */

const char *tf_proto_policy_action_name(enum tf_proto_policy_action action)
{
    switch (action) {
    case TF_PROTO_POLICY_ACTION_ASK:
        return "ask";
    case TF_PROTO_POLICY_ACTION_ACCEPT:
        return "accept";
    case TF_PROTO_POLICY_ACTION_DECLINE:
        return "decline";
    case TF_PROTO_POLICY_ACTION_PROPOSE:
        return "propose";
    }
    return "?";
}

const char *tf_proto_policy_trust_name(enum tf_proto_policy_trust trust)
{
    switch (trust) {
    case TF_PROTO_POLICY_TRUST_NONE:
        return "none";
    case TF_PROTO_POLICY_TRUST_ACQUAINTANCE:
        return "acquaintance";
    case TF_PROTO_POLICY_TRUST_KNOWN:
        return "known";
    case TF_PROTO_POLICY_TRUST_CLOSE:
        return "close";
    }
    return "?";
}

static const char *mode_name(enum tf_proto_intro_mode mode)
{
    switch (mode) {
    case TF_PROTO_INTRO_MODE_PARALLEL:
        return "parallel";
    case TF_PROTO_INTRO_MODE_SEQUENTIAL:
        return "sequential";
    }
    return "?";
}

/* Formatting. */

static void format_cond(struct strbuf *b, const struct tf_proto_policy_cond *c)
{
    switch (c->kind) {
    case TF_PROTO_POLICY_COND_KNOWN:
        sb_puts(b, "connector is known");
        return;
    case TF_PROTO_POLICY_COND_UNKNOWN:
        sb_puts(b, "connector is unknown");
        return;
    case TF_PROTO_POLICY_COND_TRUST_AT_LEAST:
        sb_puts(b, "connector trust >= ");
        sb_puts(b, tf_proto_policy_trust_name(c->trust));
        return;
    case TF_PROTO_POLICY_COND_TAG:
        sb_puts(b, "connector tag ");
        sb_putn(b, (const char *)c->tags[0].ptr, c->tags[0].len);
        return;
    case TF_PROTO_POLICY_COND_TOPIC_IS:
        sb_puts(b, "topic is ");
        for (size_t i = 0; i < c->n_tags; i++) {
            if (i > 0)
                sb_putc(b, ',');
            sb_putn(b, (const char *)c->tags[i].ptr, c->tags[i].len);
        }
        return;
    case TF_PROTO_POLICY_COND_TOPIC_IN_OFFERS:
        sb_puts(b, "topic in offers");
        return;
    case TF_PROTO_POLICY_COND_TOPIC_IN_SEEKS:
        sb_puts(b, "topic in seeks");
        return;
    case TF_PROTO_POLICY_COND_MODE_IS:
        sb_puts(b, "mode is ");
        sb_puts(b, mode_name(c->mode));
        return;
    case TF_PROTO_POLICY_COND_ANSWERS_REQUEST:
        sb_puts(b, "answers my request");
        return;
    case TF_PROTO_POLICY_COND_REQUESTER_KNOWN:
        sb_puts(b, "requester is known");
        return;
    case TF_PROTO_POLICY_COND_REQUESTER_UNKNOWN:
        sb_puts(b, "requester is unknown");
        return;
    case TF_PROTO_POLICY_COND_REQUESTER_TRUST:
        sb_puts(b, "requester trust >= ");
        sb_puts(b, tf_proto_policy_trust_name(c->trust));
        return;
    case TF_PROTO_POLICY_COND_CONTACT_OFFERS:
        sb_puts(b, "a contact offers the topic with trust >= ");
        sb_puts(b, tf_proto_policy_trust_name(c->trust));
        return;
    case TF_PROTO_POLICY_COND_CONNECTOR_HELPED:
        sb_puts(b, "connector helped >= ");
        sb_putu(b, c->count);
        return;
    }
}

/* The rule in canonical form; without its limit clause for the counter key. */
static void format_rule(struct strbuf *b, const struct tf_proto_policy_rule *r, bool with_limit)
{
    sb_puts(b, tf_proto_policy_action_name(r->action));
    for (size_t i = 0; i < r->n_conds; i++) {
        sb_puts(b, i == 0 ? " when " : " and ");
        format_cond(b, &r->conds[i]);
    }
    if (with_limit && r->limited) {
        sb_puts(b, " limit ");
        sb_putu(b, r->limit);
        sb_puts(b, " per ");
        sb_putu(b, r->window_n);
        sb_putc(b, r->window_unit);
        if (r->each_connector)
            sb_puts(b, " each connector");
    }
}

int tf_proto_policy_format(const struct tf_proto_policy *policy,
                           enum tf_proto_policy_format_style style, char **out)
{
    if (out == NULL)
        return TF_E_INVALID_ARG;
    *out = NULL;
    if (policy == NULL ||
        (style != TF_PROTO_POLICY_FORMAT_PLAIN && style != TF_PROTO_POLICY_FORMAT_LINES))
        return TF_E_INVALID_ARG;
    struct strbuf b;
    sb_growing(&b);
    for (size_t i = 0; i < policy->n_rules; i++) {
        if (style == TF_PROTO_POLICY_FORMAT_LINES) {
            sb_putu(&b, policy->rules[i].line);
            sb_puts(&b, ": ");
        }
        format_rule(&b, &policy->rules[i], true);
        sb_putc(&b, '\n');
    }
    if (!b.failed && b.p == NULL) {
        /* No rules: still return a string the caller can print and free. */
        b.p = calloc(1, 1);
        b.failed = b.p == NULL;
    }
    if (b.failed) {
        free(b.p);
        return TF_E_NOMEM;
    }
    *out = b.p;
    return TF_OK;
}

/* Parsing. */

struct tok {
    const char *s; /* into the policy's copy of the text */
    size_t len;
    size_t col; /* 0-based byte offset in the line */
};

struct parser {
    struct tf_proto_policy *pol;
    struct tf_proto_policy_error *err;
    const char *file_name;
    size_t rules_cap;
    size_t n_tags; /* used entries of pol->tag_pool */
    size_t tags_cap;
    /* The current line. */
    size_t line;
    struct tok toks[TOKENS_MAX];
    size_t n_toks;
    size_t pos;     /* next token */
    size_t end_col; /* 0-based column just after the last token */
};

/* Fills err->text from err->line, err->column and err->what. */
static void finish_error(struct tf_proto_policy_error *err, const char *file_name)
{
    struct strbuf b;
    sb_fixed(&b, err->text, sizeof err->text);
    size_t n = strlen(file_name);
    if (n > FILE_NAME_SHOWN) {
        sb_puts(&b, "...");
        sb_putn(&b, file_name + n - (FILE_NAME_SHOWN - 3), FILE_NAME_SHOWN - 3);
    } else {
        sb_putn(&b, file_name, n);
    }
    if (err->line > 0) {
        sb_putc(&b, ':');
        sb_putu(&b, err->line);
        sb_putc(&b, ':');
        sb_putu(&b, err->column);
    }
    sb_puts(&b, ": ");
    sb_puts(&b, err->what);
}

/* Quotes a token for a message, shortened if long.  Tokens hold printable
 * ASCII only (the lexer checks), so they are safe to print. */
static void sb_quote(struct strbuf *b, const char *s, size_t len)
{
    sb_putc(b, '\'');
    if (len > TOKEN_SHOWN) {
        sb_putn(b, s, TOKEN_SHOWN - 3);
        sb_puts(b, "...");
    } else {
        sb_putn(b, s, len);
    }
    sb_putc(b, '\'');
}

/* Records an error at 0-based column col of the current line, with the
 * message a + 'token' + c (the token part only if t is not NULL).  Returns
 * rc so callers can `return fail(...)`. */
static int fail(struct parser *p, int rc, size_t col, const char *a, const struct tok *t,
                const char *c)
{
    struct tf_proto_policy_error *err = p->err;
    err->line = p->line;
    err->column = col + 1;
    struct strbuf b;
    sb_fixed(&b, err->what, sizeof err->what);
    sb_puts(&b, a);
    if (t != NULL)
        sb_quote(&b, t->s, t->len);
    sb_puts(&b, c);
    finish_error(err, p->file_name);
    return rc;
}

static int fail_tok(struct parser *p, int rc, const struct tok *t, const char *a, const char *c)
{
    return fail(p, rc, t->col, a, t, c);
}

static int fail_byte(struct parser *p, size_t col, uint8_t byte, const char *what)
{
    static const char hex[] = "0123456789abcdef";
    char h[5] = {'0', 'x', hex[byte >> 4], hex[byte & 15], '\0'};
    struct tf_proto_policy_error *err = p->err;
    err->line = p->line;
    err->column = col + 1;
    struct strbuf b;
    sb_fixed(&b, err->what, sizeof err->what);
    sb_puts(&b, what);
    sb_puts(&b, " (byte ");
    sb_puts(&b, h);
    sb_putc(&b, ')');
    finish_error(err, p->file_name);
    return TF_E_BAD_TEXT;
}

static bool is_blank(char c)
{
    return c == ' ' || c == '\t';
}

/* Splits line[0..n) into tokens, checking every byte.  A '#' at the start of
 * a token begins a comment; inside a token it is just a byte (and then no
 * valid tag or keyword), so "topic is law#tax" is an error, not a silently
 * shortened list.  Comments may hold any text except NUL and control
 * characters. */
static int lex_line(struct parser *p, const char *line, size_t n)
{
    p->n_toks = 0;
    p->pos = 0;
    p->end_col = 0;
    size_t i = 0;
    while (i < n) {
        if (is_blank(line[i])) {
            i++;
            continue;
        }
        if (line[i] == '#') {
            for (i++; i < n; i++) {
                uint8_t c = (uint8_t)line[i];
                if (c == 0)
                    return fail_byte(p, i, c, "NUL byte");
                if ((c < 0x20 && c != '\t') || c == 0x7f)
                    return fail_byte(p, i, c, "control character");
            }
            break;
        }
        size_t start = i;
        for (; i < n && !is_blank(line[i]); i++) {
            uint8_t c = (uint8_t)line[i];
            if (c == 0)
                return fail_byte(p, i, c, "NUL byte");
            if (c < 0x20 || c == 0x7f)
                return fail_byte(p, i, c, "control character");
            if (c > 0x7f)
                return fail_byte(p, i, c, "non-ASCII byte outside a comment");
        }
        /* Cannot overflow: a line of at most LINE_MAX bytes has at most
         * TOKENS_MAX blank-separated tokens. */
        struct tok *t = &p->toks[p->n_toks++];
        t->s = line + start;
        t->len = i - start;
        t->col = start;
        p->end_col = i;
    }
    return TF_OK;
}

static const struct tok *peek(const struct parser *p)
{
    return p->pos < p->n_toks ? &p->toks[p->pos] : NULL;
}

static const struct tok *next(struct parser *p)
{
    const struct tok *t = peek(p);
    if (t != NULL)
        p->pos++;
    return t;
}

static bool tok_is(const struct tok *t, const char *kw)
{
    return t != NULL && t->len == strlen(kw) && memcmp(t->s, kw, t->len) == 0;
}

static bool tok_is_nocase(const struct tok *t, const char *kw)
{
    if (t == NULL || t->len != strlen(kw))
        return false;
    for (size_t i = 0; i < t->len; i++) {
        char c = t->s[i];
        if (c >= 'A' && c <= 'Z')
            c = (char)(c - 'A' + 'a');
        if (c != kw[i])
            return false;
    }
    return true;
}

/* Fails where one of kws (NULL-terminated) was expected, described by
 * `what`: at t, or at the end of the line if t is NULL.  A keyword written
 * in another case gets a hint, since keywords are lowercase. */
static int expected(struct parser *p, const struct tok *t, const char *const *kws, const char *what)
{
    struct strbuf b;
    char msg[TF_PROTO_POLICY_WHAT_MAX];
    sb_fixed(&b, msg, sizeof msg);
    sb_puts(&b, "expected ");
    sb_puts(&b, what);
    if (t == NULL)
        return fail(p, TF_E_BAD_VALUE, p->end_col, msg, NULL, ", found end of line");
    for (size_t i = 0; kws != NULL && kws[i] != NULL; i++)
        if (tok_is_nocase(t, kws[i]))
            return fail_tok(p, TF_E_BAD_VALUE, t, "keywords are lowercase, found ", "");
    sb_puts(&b, ", found ");
    return fail_tok(p, TF_E_BAD_VALUE, t, msg, "");
}

/* Takes the next token if it is one of kws; returns its index, or fails. */
static int take_kw(struct parser *p, const char *const *kws, const char *what, size_t *which)
{
    const struct tok *t = peek(p);
    for (size_t i = 0; kws[i] != NULL; i++) {
        if (tok_is(t, kws[i])) {
            p->pos++;
            *which = i;
            return TF_OK;
        }
    }
    return expected(p, t, kws, what);
}

/* Parses a decimal number of digits only.  Returns false if s is not one;
 * values above max come back as max + 1. */
static bool parse_number(const char *s, size_t len, uint64_t max, uint64_t *out)
{
    if (len == 0)
        return false;
    uint64_t v = 0;
    for (size_t i = 0; i < len; i++) {
        if (s[i] < '0' || s[i] > '9')
            return false;
        if (v <= max)
            v = v * 10 + (uint64_t)(s[i] - '0');
    }
    *out = v > max ? max + 1 : v;
    return true;
}

/* Appends a tag view to the pool.  The pool may move when it grows, so the
 * conditions get their pointers into it only when parsing is done. */
static int push_tag(struct parser *p, const char *s, size_t len)
{
    if (p->n_tags == p->tags_cap) {
        size_t cap = p->tags_cap ? p->tags_cap * 2 : 16;
        struct tf_proto_bytes *np = realloc(p->pol->tag_pool, cap * sizeof *np);
        if (np == NULL)
            return TF_E_NOMEM;
        p->pol->tag_pool = np;
        p->tags_cap = cap;
    }
    p->pol->tag_pool[p->n_tags].ptr = (const uint8_t *)s;
    p->pol->tag_pool[p->n_tags].len = len;
    p->n_tags++;
    return TF_OK;
}

/* Checks a tag written at t (a token or a list element). */
static int check_tag(struct parser *p, const struct tok *t)
{
    if (tf_proto_tag_is_valid((const uint8_t *)t->s, t->len))
        return TF_OK;
    if (t->len > TF_PROTO_TAG_MAX)
        return fail_tok(p, TF_E_TOO_LONG, t, "tag ", " is longer than 64 bytes");
    return fail_tok(p, TF_E_BAD_VALUE, t, "",
                    " is not a tag (a-z, 0-9 and '-', not starting or ending with '-')");
}

/* `topic is a,b,c`: one token; each element is checked where it stands. */
static int parse_topic_list(struct parser *p, const struct tok *t, struct tf_proto_policy_cond *c)
{
    size_t first = p->n_tags;
    size_t i = 0;
    for (;;) {
        size_t start = i;
        while (i < t->len && t->s[i] != ',')
            i++;
        struct tok el = {t->s + start, i - start, t->col + start};
        if (el.len == 0) {
            /* Point at the stray comma (or at the one before the gap). */
            size_t at = i < t->len ? i : i - 1;
            return fail(p, TF_E_BAD_VALUE, t->col + at,
                        "empty tag in a topic list (write tags separated by ',' without spaces)",
                        NULL, "");
        }
        if (c->n_tags == TF_PROTO_POLICY_TOPICS_MAX)
            return fail_tok(p, TF_E_TOO_LONG, &el, "more than 16 topics in one list, at ", "");
        int rc = check_tag(p, &el);
        if (rc != TF_OK)
            return rc;
        for (size_t k = first; k < p->n_tags; k++) {
            const struct tf_proto_bytes *prev = &p->pol->tag_pool[k];
            if (prev->len == el.len && memcmp(prev->ptr, el.s, el.len) == 0)
                return fail_tok(p, TF_E_BAD_VALUE, &el, "topic ", " is listed twice");
        }
        if ((rc = push_tag(p, el.s, el.len)) != TF_OK)
            return rc;
        c->n_tags++;
        if (i == t->len)
            return TF_OK;
        i++; /* the comma */
    }
}

static const char *const KW_COND[] = {"connector", "topic", "mode", "answers",
                                      "requester", "a",     NULL};
static const char *const KW_CONNECTOR[] = {"is", "trust", "tag", "helped", NULL};
static const char *const KW_KNOWN[] = {"known", "unknown", NULL};
static const char *const KW_GE[] = {">=", NULL};
static const char *const KW_TRUST[] = {"acquaintance", "known", "close", NULL};
static const char *const KW_TOPIC[] = {"is", "in", NULL};
static const char *const KW_IN[] = {"offers", "seeks", NULL};
static const char *const KW_IS[] = {"is", NULL};
static const char *const KW_MODE[] = {"parallel", "sequential", NULL};
/* requests */
static const char *const KW_MY[] = {"my", NULL};
static const char *const KW_REQUEST[] = {"request", NULL};
static const char *const KW_REQUESTER[] = {"is", "trust", NULL};
static const char *const KW_CONTACT[] = {"contact", NULL};
static const char *const KW_OFFERS[] = {"offers", NULL};
static const char *const KW_THE[] = {"the", NULL};
static const char *const KW_TOPIC_WORD[] = {"topic", NULL};
static const char *const KW_WITH[] = {"with", NULL};
static const char *const KW_TRUST_WORD[] = {"trust", NULL};

/* Parses ">= <level>" into c->trust. */
static int parse_trust_level(struct parser *p, struct tf_proto_policy_cond *c, const char *after)
{
    static const enum tf_proto_policy_trust levels[] = {TF_PROTO_POLICY_TRUST_ACQUAINTANCE,
                                                        TF_PROTO_POLICY_TRUST_KNOWN,
                                                        TF_PROTO_POLICY_TRUST_CLOSE};
    size_t which = 0;
    int rc = take_kw(p, KW_GE, after, &which);
    if (rc == TF_OK)
        rc = take_kw(p, KW_TRUST, "a trust level (acquaintance, known or close)", &which);
    if (rc == TF_OK)
        c->trust = levels[which];
    return rc;
}

/* requests: answers my request | requester ... | a contact offers the topic
 * [with trust >= <level>]; first is the keyword already taken (3, 4, 5 in
 * KW_COND). */
static int parse_request_cond(struct parser *p, size_t first, struct tf_proto_policy_cond *c)
{
    size_t which = 0;
    int rc;
    if (first == 3) { /* answers */
        if ((rc = take_kw(p, KW_MY, "'my' after 'answers'", &which)) != TF_OK ||
            (rc = take_kw(p, KW_REQUEST, "'request' after 'answers my'", &which)) != TF_OK)
            return rc;
        c->kind = TF_PROTO_POLICY_COND_ANSWERS_REQUEST;
        return TF_OK;
    }
    if (first == 4) { /* requester */
        if ((rc = take_kw(p, KW_REQUESTER, "'is' or 'trust' after 'requester'", &which)) != TF_OK)
            return rc;
        if (which == 1) {
            c->kind = TF_PROTO_POLICY_COND_REQUESTER_TRUST;
            return parse_trust_level(p, c, "'>=' after 'requester trust'");
        }
        if ((rc = take_kw(p, KW_KNOWN, "'known' or 'unknown' after 'requester is'", &which)) !=
            TF_OK)
            return rc;
        c->kind = which == 0 ? TF_PROTO_POLICY_COND_REQUESTER_KNOWN
                             : TF_PROTO_POLICY_COND_REQUESTER_UNKNOWN;
        return TF_OK;
    }
    /* a contact offers the topic [with trust >= <level>] */
    if ((rc = take_kw(p, KW_CONTACT, "'contact' after 'a'", &which)) != TF_OK ||
        (rc = take_kw(p, KW_OFFERS, "'offers' after 'a contact'", &which)) != TF_OK ||
        (rc = take_kw(p, KW_THE, "'the' after 'a contact offers'", &which)) != TF_OK ||
        (rc = take_kw(p, KW_TOPIC_WORD, "'topic' after 'a contact offers the'", &which)) != TF_OK)
        return rc;
    c->kind = TF_PROTO_POLICY_COND_CONTACT_OFFERS;
    c->trust = TF_PROTO_POLICY_TRUST_ACQUAINTANCE;
    const struct tok *t = peek(p);
    if (t == NULL || !tok_is(t, "with"))
        return TF_OK;
    if ((rc = take_kw(p, KW_WITH, "'with'", &which)) != TF_OK ||
        (rc = take_kw(p, KW_TRUST_WORD, "'trust' after 'with'", &which)) != TF_OK)
        return rc;
    return parse_trust_level(p, c, "'>=' after 'with trust'");
}

static int parse_cond(struct parser *p, struct tf_proto_policy_cond *c)
{
    size_t which = 0; /* set by take_kw; gcc -O3 cannot tell */
    int rc =
        take_kw(p, KW_COND, "a condition (connector, topic, mode, answers, requester or a contact)",
                &which);
    if (rc != TF_OK)
        return rc;
    if (which >= 3)
        return parse_request_cond(p, which, c);
    const struct tok *t;
    switch (which) {
    case 0: /* connector */
        if ((rc = take_kw(p, KW_CONNECTOR, "'is', 'trust', 'tag' or 'helped' after 'connector'",
                          &which)) != TF_OK)
            return rc;
        if (which == 3) { /* feedback: connector helped >= N */
            if ((rc = take_kw(p, KW_GE, "'>=' after 'connector helped'", &which)) != TF_OK)
                return rc;
            if ((t = next(p)) == NULL)
                return expected(p, NULL, NULL, "a number after 'connector helped >='");
            if (!parse_number(t->s, t->len, TF_PROTO_POLICY_LIMIT_MAX, &c->count) ||
                c->count > TF_PROTO_POLICY_LIMIT_MAX)
                return fail_tok(p, TF_E_BAD_VALUE, t, "expected a number from 0 to 1000000, found ",
                                "");
            c->kind = TF_PROTO_POLICY_COND_CONNECTOR_HELPED;
            return TF_OK;
        }
        if (which == 0) {
            if ((rc = take_kw(p, KW_KNOWN, "'known' or 'unknown' after 'connector is'", &which)) !=
                TF_OK)
                return rc;
            c->kind = which == 0 ? TF_PROTO_POLICY_COND_KNOWN : TF_PROTO_POLICY_COND_UNKNOWN;
        } else if (which == 1) {
            if ((rc = take_kw(p, KW_GE, "'>=' after 'connector trust'", &which)) != TF_OK)
                return rc;
            if ((rc = take_kw(p, KW_TRUST, "a trust level (acquaintance, known or close)",
                              &which)) != TF_OK)
                return rc;
            static const enum tf_proto_policy_trust levels[] = {TF_PROTO_POLICY_TRUST_ACQUAINTANCE,
                                                                TF_PROTO_POLICY_TRUST_KNOWN,
                                                                TF_PROTO_POLICY_TRUST_CLOSE};
            c->kind = TF_PROTO_POLICY_COND_TRUST_AT_LEAST;
            c->trust = levels[which];
        } else {
            if ((t = next(p)) == NULL)
                return expected(p, NULL, NULL, "a tag after 'connector tag'");
            if ((rc = check_tag(p, t)) != TF_OK || (rc = push_tag(p, t->s, t->len)) != TF_OK)
                return rc;
            c->kind = TF_PROTO_POLICY_COND_TAG;
            c->n_tags = 1;
        }
        return TF_OK;
    case 1: /* topic */
        if ((rc = take_kw(p, KW_TOPIC, "'is' or 'in' after 'topic'", &which)) != TF_OK)
            return rc;
        if (which == 0) {
            if ((t = next(p)) == NULL)
                return expected(p, NULL, NULL, "a list of tags after 'topic is'");
            c->kind = TF_PROTO_POLICY_COND_TOPIC_IS;
            return parse_topic_list(p, t, c);
        }
        if ((rc = take_kw(p, KW_IN, "'offers' or 'seeks' after 'topic in'", &which)) != TF_OK)
            return rc;
        c->kind =
            which == 0 ? TF_PROTO_POLICY_COND_TOPIC_IN_OFFERS : TF_PROTO_POLICY_COND_TOPIC_IN_SEEKS;
        return TF_OK;
    default: /* mode */
        if ((rc = take_kw(p, KW_IS, "'is' after 'mode'", &which)) != TF_OK)
            return rc;
        if ((rc = take_kw(p, KW_MODE, "'parallel' or 'sequential' after 'mode is'", &which)) !=
            TF_OK)
            return rc;
        c->kind = TF_PROTO_POLICY_COND_MODE_IS;
        c->mode = which == 0 ? TF_PROTO_INTRO_MODE_PARALLEL : TF_PROTO_INTRO_MODE_SEQUENTIAL;
        return TF_OK;
    }
}

static int parse_duration(struct parser *p, struct tf_proto_policy_rule *r)
{
    const struct tok *t = next(p);
    if (t == NULL)
        return expected(p, NULL, NULL, "a window after 'per' (like 12h, 7d or 2w)");
    size_t digits = 0;
    while (digits < t->len && t->s[digits] >= '0' && t->s[digits] <= '9')
        digits++;
    if (digits == 0)
        return fail_tok(p, TF_E_BAD_VALUE, t,
                        "expected a window after 'per' (like 12h, 7d or 2w), found ", "");
    if (digits == t->len)
        return fail_tok(p, TF_E_BAD_VALUE, t, "window ", " needs a unit: h, d or w");
    uint64_t unit = 0;
    if (t->len - digits == 1) {
        switch (t->s[digits]) {
        case 'h':
            unit = 3600;
            break;
        case 'd':
            unit = 86400;
            break;
        case 'w':
            unit = 7 * 86400;
            break;
        default:
            break;
        }
    }
    if (unit == 0)
        return fail_tok(p, TF_E_BAD_VALUE, t, "unknown unit in window ", " (use h, d or w)");
    uint64_t n;
    bool ok = parse_number(t->s, digits, TF_PROTO_POLICY_WINDOW_MAX / 3600, &n);
    if (!ok || n == 0 || n > TF_PROTO_POLICY_WINDOW_MAX / unit)
        return fail_tok(p, TF_E_BAD_VALUE, t, "window ", " is out of range (1h to 3650d)");
    r->window_n = (uint32_t)n; /* <= WINDOW_MAX / 3600 = 87600 */
    r->window_unit = t->s[digits];
    r->window = n * unit;
    return TF_OK;
}

static const char *const KW_PER[] = {"per", NULL};
static const char *const KW_EACH[] = {"each", NULL};
static const char *const KW_CONN[] = {"connector", NULL};

/* `limit N per DUR [each connector]`, after `limit`. */
static int parse_limit(struct parser *p, struct tf_proto_policy_rule *r)
{
    const struct tok *t = next(p);
    if (t == NULL)
        return expected(p, NULL, NULL, "a number after 'limit'");
    uint64_t n;
    if (!parse_number(t->s, t->len, TF_PROTO_POLICY_LIMIT_MAX, &n))
        return fail_tok(p, TF_E_BAD_VALUE, t, "expected a number after 'limit', found ", "");
    if (n == 0 || n > TF_PROTO_POLICY_LIMIT_MAX)
        return fail_tok(p, TF_E_BAD_VALUE, t, "limit ", " is out of range (1 to 1000000)");
    r->limited = true;
    r->limit = (uint32_t)n; /* <= LIMIT_MAX */
    size_t which;
    int rc = take_kw(p, KW_PER, "'per' after the limit", &which);
    if (rc != TF_OK || (rc = parse_duration(p, r)) != TF_OK)
        return rc;
    t = peek(p);
    if (t == NULL)
        return TF_OK;
    if (tok_is(t, "when") || tok_is(t, "and"))
        return fail_tok(p, TF_E_BAD_VALUE, t, "conditions go before 'limit', found ", "");
    if (tok_is(t, "limit"))
        return fail_tok(p, TF_E_BAD_VALUE, t, "a rule has at most one ", "");
    if ((rc = take_kw(p, KW_EACH, "'each connector' or end of line", &which)) != TF_OK ||
        (rc = take_kw(p, KW_CONN, "'connector' after 'each'", &which)) != TF_OK)
        return rc;
    r->each_connector = true;
    return TF_OK;
}

static const char *const KW_ACTION[] = {"accept", "decline", "ask", "propose", NULL};
static const char *const KW_AFTER_ACTION[] = {"when", "limit", NULL};
static const char *const KW_AFTER_COND[] = {"and", "limit", NULL};

static int parse_rule(struct parser *p, struct tf_proto_policy_rule *r)
{
    static const enum tf_proto_policy_action actions[] = {
        TF_PROTO_POLICY_ACTION_ACCEPT, TF_PROTO_POLICY_ACTION_DECLINE, TF_PROTO_POLICY_ACTION_ASK,
        TF_PROTO_POLICY_ACTION_PROPOSE};
    size_t which = 0; /* set by take_kw; gcc -O3 cannot tell */
    int rc = take_kw(p, KW_ACTION, "an action (accept, decline, ask or propose)", &which);
    if (rc != TF_OK)
        return rc;
    r->action = actions[which];
    const struct tok *t = peek(p);
    if (t == NULL)
        return TF_OK;
    if (tok_is(t, "when")) {
        p->pos++;
        for (;;) {
            if (r->n_conds == TF_PROTO_POLICY_CONDS_MAX)
                return fail(p, TF_E_TOO_LONG, peek(p) ? peek(p)->col : p->end_col,
                            "more than 16 conditions in one rule", NULL, "");
            if ((rc = parse_cond(p, &r->conds[r->n_conds])) != TF_OK)
                return rc;
            r->n_conds++;
            t = peek(p);
            if (t == NULL)
                return TF_OK;
            if (!tok_is(t, "and"))
                break;
            p->pos++;
        }
        if (!tok_is(t, "limit"))
            return expected(p, t, KW_AFTER_COND, "'and', 'limit' or end of line");
    } else if (!tok_is(t, "limit")) {
        return expected(p, t, KW_AFTER_ACTION, "'when', 'limit' or end of line");
    }
    p->pos++; /* limit */
    if ((rc = parse_limit(p, r)) != TF_OK)
        return rc;
    if ((t = peek(p)) != NULL) {
        if (tok_is(t, "limit"))
            return fail_tok(p, TF_E_BAD_VALUE, t, "a rule has at most one ", "");
        return fail_tok(p, TF_E_BAD_VALUE, t, "expected end of line, found ", "");
    }
    return TF_OK;
}

/* requests: whether a condition belongs to request rules (1), to
 * introduction rules (0), or to both (-1: none yet). */
static int cond_side(enum tf_proto_policy_cond_kind k)
{
    switch (k) {
    case TF_PROTO_POLICY_COND_REQUESTER_KNOWN:
    case TF_PROTO_POLICY_COND_REQUESTER_UNKNOWN:
    case TF_PROTO_POLICY_COND_REQUESTER_TRUST:
    case TF_PROTO_POLICY_COND_CONTACT_OFFERS:
        return 1;
    case TF_PROTO_POLICY_COND_TOPIC_IS:
        return -1;
    case TF_PROTO_POLICY_COND_KNOWN:
    case TF_PROTO_POLICY_COND_UNKNOWN:
    case TF_PROTO_POLICY_COND_TRUST_AT_LEAST:
    case TF_PROTO_POLICY_COND_TAG:
    case TF_PROTO_POLICY_COND_TOPIC_IN_OFFERS:
    case TF_PROTO_POLICY_COND_TOPIC_IN_SEEKS:
    case TF_PROTO_POLICY_COND_MODE_IS:
    case TF_PROTO_POLICY_COND_ANSWERS_REQUEST:
    case TF_PROTO_POLICY_COND_CONNECTOR_HELPED:
        return 0;
    }
    return 0;
}

bool tf_proto_policy_rule_is_request(const struct tf_proto_policy_rule *rule)
{
    if (rule->action == TF_PROTO_POLICY_ACTION_PROPOSE)
        return true;
    for (size_t i = 0; i < rule->n_conds; i++)
        if (cond_side(rule->conds[i].kind) == 1)
            return true;
    return false;
}

/* A request rule may not use introduction conditions nor `accept`. */
static int check_rule_kind(struct parser *p, const struct tf_proto_policy_rule *r)
{
    if (!tf_proto_policy_rule_is_request(r))
        return TF_OK;
    if (r->action == TF_PROTO_POLICY_ACTION_ACCEPT)
        return fail(p, TF_E_BAD_VALUE, p->toks[0].col,
                    "'accept' decides introductions; a request rule proposes, declines or asks",
                    NULL, "");
    for (size_t i = 0; i < r->n_conds; i++)
        if (cond_side(r->conds[i].kind) == 0)
            return fail(p, TF_E_BAD_VALUE, p->toks[0].col,
                        "a request rule (propose, requester, a contact offers) cannot use a "
                        "condition of introductions (connector, topic in, mode, answers my "
                        "request)",
                        NULL, "");
    return TF_OK;
}

static int parse_line(struct parser *p, const char *line, size_t n)
{
    int rc = lex_line(p, line, n);
    if (rc != TF_OK || p->n_toks == 0)
        return rc;
    struct tf_proto_policy *pol = p->pol;
    if (pol->n_rules == TF_PROTO_POLICY_RULES_MAX)
        return fail(p, TF_E_TOO_LONG, p->toks[0].col, "more than 256 rules", NULL, "");
    if (pol->n_rules == p->rules_cap) {
        size_t cap = p->rules_cap ? p->rules_cap * 2 : 8;
        struct tf_proto_policy_rule *np = realloc(pol->rules, cap * sizeof *np);
        if (np == NULL)
            return TF_E_NOMEM;
        pol->rules = np;
        p->rules_cap = cap;
    }
    struct tf_proto_policy_rule *r = &pol->rules[pol->n_rules];
    memset(r, 0, sizeof *r);
    r->line = p->line;
    if ((rc = parse_rule(p, r)) != TF_OK)
        return rc;
    if ((rc = check_rule_kind(p, r)) != TF_OK)
        return rc;
    pol->n_rules++;
    return TF_OK;
}

/* Gives each rule its counter key (see policy.h).  First every key is the
 * hash of the rule's canonical text; then, from the last rule back, each is
 * rehashed with the number of earlier rules with the same text, so identical
 * rules keep separate counters.  Going backwards leaves the earlier keys
 * unrehashed while they are compared.  The keys are identifiers, not
 * secrets, so plain memcmp is fine. */
static int compute_keys(struct tf_proto_policy *pol)
{
    struct strbuf b;
    sb_growing(&b);
    for (size_t i = 0; i < pol->n_rules; i++) {
        b.len = 0;
        format_rule(&b, &pol->rules[i], false);
        if (b.failed) {
            free(b.p);
            return TF_E_NOMEM;
        }
        crypto_generichash_state st;
        crypto_generichash_init(&st, NULL, 0, TF_PROTO_POLICY_KEY_LEN);
        crypto_generichash_update(&st, (const uint8_t *)KEY_DOMAIN, sizeof KEY_DOMAIN);
        crypto_generichash_update(&st, (const uint8_t *)b.p, b.len);
        crypto_generichash_final(&st, pol->rules[i].key, TF_PROTO_POLICY_KEY_LEN);
    }
    free(b.p);
    for (size_t i = pol->n_rules; i-- > 0;) {
        uint32_t same = 0;
        for (size_t j = 0; j < i; j++)
            if (memcmp(pol->rules[j].key, pol->rules[i].key, TF_PROTO_POLICY_KEY_LEN) == 0)
                same++;
        uint8_t in[TF_PROTO_POLICY_KEY_LEN + 4];
        memcpy(in, pol->rules[i].key, TF_PROTO_POLICY_KEY_LEN);
        for (size_t k = 0; k < 4; k++)
            in[TF_PROTO_POLICY_KEY_LEN + k] = (uint8_t)(same >> (24 - 8 * k));
        crypto_generichash(pol->rules[i].key, TF_PROTO_POLICY_KEY_LEN, in, sizeof in, NULL, 0);
    }
    return TF_OK;
}

/* Where byte `off` of text lies, for an error about the file as a whole. */
static void position_of(const char *text, size_t off, size_t *line, size_t *col)
{
    size_t l = 1, line_start = 0;
    for (size_t i = 0; i < off; i++) {
        if (text[i] == '\n') {
            l++;
            line_start = i + 1;
        }
    }
    *line = l;
    *col = off - line_start + 1;
}

static void set_error(struct tf_proto_policy_error *err, const char *file_name, size_t line,
                      size_t col, const char *what)
{
    err->line = line;
    err->column = col;
    struct strbuf b;
    sb_fixed(&b, err->what, sizeof err->what);
    sb_puts(&b, what);
    finish_error(err, file_name != NULL ? file_name : "policy");
}

static int parse_text(struct parser *p, size_t len)
{
    const char *text = p->pol->text;
    size_t off = 0;
    p->line = 1;
    while (off < len) {
        const char *nl = memchr(text + off, '\n', len - off);
        size_t end = nl != NULL ? (size_t)(nl - text) : len;
        size_t n = end - off;
        /* CRLF files: the '\r' before the line end is not part of the line. */
        if (n > 0 && text[off + n - 1] == '\r')
            n--;
        if (n > TF_PROTO_POLICY_LINE_MAX)
            return fail(p, TF_E_TOO_LONG, TF_PROTO_POLICY_LINE_MAX,
                        "line is longer than 1024 bytes", NULL, "");
        int rc = parse_line(p, text + off, n);
        if (rc != TF_OK)
            return rc;
        off = end + 1;
        p->line++;
    }
    return TF_OK;
}

int tf_proto_policy_parse(const char *text, size_t len, const char *file_name,
                          struct tf_proto_policy **out, struct tf_proto_policy_error *err)
{
    struct tf_proto_policy_error local;
    if (err == NULL)
        err = &local;
    memset(err, 0, sizeof *err);
    if (out != NULL)
        *out = NULL;
    if ((text == NULL && len > 0) || file_name == NULL || out == NULL) {
        set_error(err, file_name, 0, 0, "invalid argument");
        return TF_E_INVALID_ARG;
    }
    if (len > TF_PROTO_POLICY_TEXT_MAX) {
        size_t line, col;
        position_of(text, TF_PROTO_POLICY_TEXT_MAX, &line, &col);
        set_error(err, file_name, line, col, "file is larger than 1048576 bytes");
        return TF_E_TOO_LONG;
    }

    int rc = TF_E_NOMEM;
    struct parser *p = NULL;
    struct tf_proto_policy *pol = calloc(1, sizeof *pol);
    if (pol == NULL)
        goto cleanup;
    size_t name_len = strlen(file_name);
    pol->file_name = malloc(name_len + 1);
    pol->text = malloc(len + 1);
    p = calloc(1, sizeof *p);
    if (pol->file_name == NULL || pol->text == NULL || p == NULL)
        goto cleanup;
    memcpy(pol->file_name, file_name, name_len + 1);
    if (len > 0)
        memcpy(pol->text, text, len);
    pol->text[len] = '\0';

    p->pol = pol;
    p->err = err;
    p->file_name = file_name;
    if ((rc = parse_text(p, len)) != TF_OK)
        goto cleanup;

    /* The pool no longer moves: point each condition at its tags, which
     * were pushed in rule and condition order. */
    size_t k = 0;
    for (size_t i = 0; i < pol->n_rules; i++) {
        struct tf_proto_policy_rule *r = &pol->rules[i];
        for (size_t j = 0; j < r->n_conds; j++) {
            r->conds[j].tags = r->conds[j].n_tags > 0 ? pol->tag_pool + k : NULL;
            k += r->conds[j].n_tags;
        }
    }
    if ((rc = compute_keys(pol)) != TF_OK)
        goto cleanup;
    *out = pol;
    pol = NULL;

cleanup:
    if (rc == TF_E_NOMEM)
        set_error(err, file_name, 0, 0, "out of memory");
    free(p);
    tf_proto_policy_free(pol);
    return rc;
}

void tf_proto_policy_free(struct tf_proto_policy *policy)
{
    if (policy == NULL)
        return;
    free(policy->file_name);
    free(policy->text);
    free(policy->rules);
    free(policy->tag_pool);
    free(policy);
}

/* Comparison. */

static bool bytes_eq(struct tf_proto_bytes a, struct tf_proto_bytes b)
{
    return a.len == b.len && (a.len == 0 || memcmp(a.ptr, b.ptr, a.len) == 0);
}

static bool cond_eq(const struct tf_proto_policy_cond *a, const struct tf_proto_policy_cond *b)
{
    if (a->kind != b->kind)
        return false;
    switch (a->kind) {
    case TF_PROTO_POLICY_COND_KNOWN:
    case TF_PROTO_POLICY_COND_UNKNOWN:
    case TF_PROTO_POLICY_COND_TOPIC_IN_OFFERS:
    case TF_PROTO_POLICY_COND_TOPIC_IN_SEEKS:
    case TF_PROTO_POLICY_COND_ANSWERS_REQUEST:
    case TF_PROTO_POLICY_COND_REQUESTER_KNOWN:
    case TF_PROTO_POLICY_COND_REQUESTER_UNKNOWN:
        return true;
    case TF_PROTO_POLICY_COND_TRUST_AT_LEAST:
    case TF_PROTO_POLICY_COND_REQUESTER_TRUST:
    case TF_PROTO_POLICY_COND_CONTACT_OFFERS:
        return a->trust == b->trust;
    case TF_PROTO_POLICY_COND_MODE_IS:
        return a->mode == b->mode;
    case TF_PROTO_POLICY_COND_CONNECTOR_HELPED:
        return a->count == b->count;
    case TF_PROTO_POLICY_COND_TAG:
    case TF_PROTO_POLICY_COND_TOPIC_IS:
        if (a->n_tags != b->n_tags)
            return false;
        for (size_t i = 0; i < a->n_tags; i++)
            if (!bytes_eq(a->tags[i], b->tags[i]))
                return false;
        return true;
    }
    return false;
}

static bool rule_eq(const struct tf_proto_policy_rule *a, const struct tf_proto_policy_rule *b)
{
    if (a->action != b->action || a->n_conds != b->n_conds || a->limited != b->limited)
        return false;
    for (size_t i = 0; i < a->n_conds; i++)
        if (!cond_eq(&a->conds[i], &b->conds[i]))
            return false;
    return !a->limited || (a->limit == b->limit && a->window == b->window &&
                           a->each_connector == b->each_connector);
}

bool tf_proto_policy_rules_equal(const struct tf_proto_policy *a, const struct tf_proto_policy *b)
{
    if (a == NULL || b == NULL)
        return a == b;
    if (a->n_rules != b->n_rules)
        return false;
    for (size_t i = 0; i < a->n_rules; i++)
        if (!rule_eq(&a->rules[i], &b->rules[i]))
            return false;
    return true;
}

/* Evaluation. */

static bool list_has(const struct tf_proto_bytes *list, size_t n, struct tf_proto_bytes v)
{
    for (size_t i = 0; i < n; i++)
        if (bytes_eq(list[i], v))
            return true;
    return false;
}

static bool cond_holds(const struct tf_proto_policy_cond *c, const struct tf_proto_policy_input *in)
{
    switch (c->kind) {
    case TF_PROTO_POLICY_COND_KNOWN:
        return in->connector_known;
    case TF_PROTO_POLICY_COND_UNKNOWN:
        return !in->connector_known;
    case TF_PROTO_POLICY_COND_TRUST_AT_LEAST:
        /* A stranger has no trust level, so no level is reached. */
        return in->connector_known && in->trust >= c->trust;
    case TF_PROTO_POLICY_COND_TAG:
        return in->connector_known && list_has(in->tags, in->n_tags, c->tags[0]);
    case TF_PROTO_POLICY_COND_TOPIC_IS:
        return list_has(c->tags, c->n_tags, in->topic);
    case TF_PROTO_POLICY_COND_TOPIC_IN_OFFERS:
        return list_has(in->offers, in->n_offers, in->topic);
    case TF_PROTO_POLICY_COND_TOPIC_IN_SEEKS:
        return list_has(in->seeks, in->n_seeks, in->topic);
    case TF_PROTO_POLICY_COND_MODE_IS:
        return in->mode == c->mode;
    case TF_PROTO_POLICY_COND_ANSWERS_REQUEST:
        return in->answers_request;
    case TF_PROTO_POLICY_COND_REQUESTER_KNOWN:
        return in->connector_known;
    case TF_PROTO_POLICY_COND_REQUESTER_UNKNOWN:
        return !in->connector_known;
    case TF_PROTO_POLICY_COND_REQUESTER_TRUST:
        return in->connector_known && in->trust >= c->trust;
    case TF_PROTO_POLICY_COND_CONTACT_OFFERS:
        return in->offer_trust != TF_PROTO_POLICY_TRUST_NONE && in->offer_trust >= c->trust;
    case TF_PROTO_POLICY_COND_CONNECTOR_HELPED:
        return in->connector_helped >= c->count;
    }
    return false;
}

static bool input_is_valid(const struct tf_proto_policy_input *in)
{
    if ((in->tags == NULL && in->n_tags > 0) || (in->offers == NULL && in->n_offers > 0) ||
        (in->seeks == NULL && in->n_seeks > 0) || (in->topic.ptr == NULL && in->topic.len > 0))
        return false;
    if (in->mode != TF_PROTO_INTRO_MODE_PARALLEL && in->mode != TF_PROTO_INTRO_MODE_SEQUENTIAL)
        return false;
    if ((unsigned)in->offer_trust > (unsigned)TF_PROTO_POLICY_TRUST_CLOSE)
        return false;
    switch (in->trust) {
    case TF_PROTO_POLICY_TRUST_NONE:
    case TF_PROTO_POLICY_TRUST_ACQUAINTANCE:
    case TF_PROTO_POLICY_TRUST_KNOWN:
    case TF_PROTO_POLICY_TRUST_CLOSE:
        return true;
    }
    return false;
}

int tf_proto_policy_eval(const struct tf_proto_policy *policy,
                         const struct tf_proto_policy_input *in,
                         struct tf_proto_policy_decision *out)
{
    if (out == NULL)
        return TF_E_INVALID_ARG;
    memset(out, 0, sizeof *out);
    out->action = TF_PROTO_POLICY_ACTION_ASK;
    if (in == NULL || !input_is_valid(in))
        return TF_E_INVALID_ARG;
    if (policy == NULL)
        return TF_OK;

    for (size_t i = 0; i < policy->n_rules; i++) {
        const struct tf_proto_policy_rule *r = &policy->rules[i];
        /* requests: request rules decide requests only, the others
         * introductions only. */
        if (tf_proto_policy_rule_is_request(r) != in->is_request)
            continue;
        bool holds = true;
        for (size_t j = 0; j < r->n_conds && holds; j++)
            holds = cond_holds(&r->conds[j], in);
        if (!holds)
            continue;
        if (r->limited) {
            if (in->count_cb == NULL)
                return TF_E_INVALID_ARG;
            struct tf_proto_policy_count_query q = {
                .rule_index = i,
                .rule_key = r->key,
                .connector_pk = r->each_connector ? in->connector_pk : NULL,
                .since = in->now > r->window ? in->now - r->window : 0,
            };
            uint64_t used = 0;
            int rc = in->count_cb(in->count_ctx, &q, &used);
            if (rc != TF_OK)
                return rc < 0 ? rc : TF_E_INVALID_ARG; /* callbacks must return TF_OK or < 0 */
            if (used >= r->limit)
                continue; /* used up: the rule does not match */
        }
        out->action = r->action;
        out->matched = true;
        out->rule_index = i;
        out->line = r->line;
        out->record = r->limited;
        out->each_connector = r->limited && r->each_connector;
        memcpy(out->rule_key, r->key, TF_PROTO_POLICY_KEY_LEN);
        return TF_OK;
    }
    return TF_OK;
}
