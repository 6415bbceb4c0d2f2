/* SPDX-License-Identifier: MIT */
#include "node/verbs.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <sodium.h>

#include "node/contact.h"
#include "node/delivery.h"
#include "node/internal.h"
#include "node/intro.h"
#include "node/log.h"
#include "node/mailbox.h"
#include "node/net.h"
#include "node/ping.h"
#include "node/policy.h"
#include "node/request.h" /* requests */
#include "node/profile.h"
#include "node/node.h"
#include "node/store.h"
#include "proto/ctl.h"

#define WHY(...) snprintf(why, why_cap, __VA_ARGS__)

/* Arguments. */

/* Copies the optional string argument key into buf.  *present tells whether
 * it was given. */
static int str_arg(const msgpack_object *args, const char *key, char *buf, size_t cap,
                   bool *present, char *why, size_t why_cap)
{
    const char *p;
    size_t n;
    *present = false;
    int rc = tf_proto_ctl_get_str(args, key, &p, &n);
    if (rc == TF_E_NOT_FOUND)
        return TF_OK;
    if (rc != TF_OK) {
        WHY("argument '%s' must be a string", key);
        return TF_E_BAD_REQUEST;
    }
    if ((rc = tf_proto_ctl_strcpy(buf, cap, p, n)) != TF_OK) {
        WHY("argument '%s' is too long or holds a NUL byte", key);
        return TF_E_BAD_VALUE;
    }
    *present = true;
    return TF_OK;
}

/* A list of tags (validated). */
struct tag_list {
    bool present;
    size_t n;
    char tags[TF_NODE_TAGS_MAX][TF_PROTO_TAG_MAX + 1];
};

static int tags_arg(const msgpack_object *args, const char *key, struct tag_list *out, char *why,
                    size_t why_cap)
{
    const msgpack_object_array *arr;
    memset(out, 0, sizeof *out);
    int rc = tf_proto_ctl_get_str_array(args, key, &arr);
    if (rc == TF_E_NOT_FOUND)
        return TF_OK;
    if (rc != TF_OK) {
        WHY("argument '%s' must be an array of strings", key);
        return TF_E_BAD_REQUEST;
    }
    if (arr->size > TF_NODE_TAGS_MAX) {
        WHY("at most %d tags", TF_NODE_TAGS_MAX);
        return TF_E_TOO_LONG;
    }
    for (uint32_t i = 0; i < arr->size; i++) {
        const msgpack_object_str *s = &arr->ptr[i].via.str;
        if (!tf_proto_tag_is_valid((const uint8_t *)s->ptr, s->size)) {
            char esc[80];
            WHY("'%s' is not a tag (use 1-64 of a-z, 0-9 and '-')",
                tf_node_log_escape(s->ptr, s->size, esc, sizeof esc));
            return TF_E_BAD_VALUE;
        }
        memcpy(out->tags[i], s->ptr, s->size);
        out->tags[i][s->size] = '\0';
    }
    out->n = arr->size;
    out->present = true;
    return TF_OK;
}

static int alias_arg(const msgpack_object *args, char alias[static TF_NODE_ALIAS_MAX + 1],
                     bool *present, char *why, size_t why_cap)
{
    int rc = str_arg(args, "alias", alias, TF_NODE_ALIAS_MAX + 1, present, why, why_cap);
    if (rc == TF_E_BAD_VALUE)
        WHY("an alias is at most %d characters", TF_NODE_ALIAS_MAX);
    if (rc == TF_OK && *present && alias[0] != '\0' && !tf_node_alias_is_valid(alias)) {
        char esc[80];
        WHY("'%s' is not a valid alias (1-32 of A-Z a-z 0-9 . _ -, starting with a letter or "
            "digit, not starting with tf1)",
            tf_node_log_escape(alias, strlen(alias), esc, sizeof esc));
        return TF_E_BAD_VALUE;
    }
    return rc;
}

static int trust_arg(const msgpack_object *args, enum tf_node_trust *trust, bool *present,
                     char *why, size_t why_cap)
{
    char buf[32];
    int rc = str_arg(args, "trust", buf, sizeof buf, present, why, why_cap);
    if (rc == TF_OK && *present && tf_node_trust_parse(buf, trust) != TF_OK) {
        WHY("trust must be close, known, acquaintance or none");
        return TF_E_BAD_VALUE;
    }
    return rc;
}

/* Did-you-mean (issue 16, ux): the alias nearest to what was typed, among
 * the first NEAR_ALIAS_SCAN contacts (a refusal should stay cheap). */
#define NEAR_ALIAS_SCAN 10000
struct near_alias {
    const char *typed;
    char best[TF_NODE_ALIAS_MAX + 1];
    size_t best_d, seen;
};

static int near_alias_cb(const struct tf_node_contact *c, void *arg)
{
    struct near_alias *na = arg;
    if (++na->seen > NEAR_ALIAS_SCAN)
        return 1;
    size_t tl = strlen(na->typed), al = strlen(c->alias);
    if (al == 0 || !tf_proto_ctl_is_near(na->typed, tl, c->alias, al))
        return 0;
    size_t d = tf_proto_ctl_distance(na->typed, tl, c->alias, al);
    if (d < na->best_d) {
        na->best_d = d;
        snprintf(na->best, sizeof na->best, "%s", c->alias);
    }
    return 0;
}

int tf_node__find_contact(struct tf_node *node, const msgpack_object *args, const char *key,
                          struct tf_node_contact *c, char *why, size_t why_cap)
{
    char name[TF_PROTO_TEXT_ID_SIZE + 8], esc[160];
    const char *p;
    size_t n;
    if (tf_proto_ctl_get_str(args, key, &p, &n) != TF_OK ||
        tf_proto_ctl_strcpy(name, sizeof name, p, n) != TF_OK) {
        WHY("missing argument '%s' (a contact's alias or id)", key);
        return TF_E_BAD_REQUEST;
    }
    int rc = tf_node_store_contact_find(node->store, name, c);
    tf_node_log_escape(name, strlen(name), esc, sizeof esc);
    struct near_alias near = {.typed = name, .best_d = SIZE_MAX};
    if (rc == TF_E_NOT_FOUND &&
        tf_node_store_contact_foreach(node->store, near_alias_cb, &near) >= 0 &&
        near.best[0] != '\0')
        WHY("no contact called '%s' (did you mean '%s'? see: twofold contact list)", esc,
            near.best);
    else if (rc == TF_E_NOT_FOUND)
        WHY("no contact called '%s' (see: twofold contact list)", esc);
    else if (rc == TF_E_AMBIGUOUS)
        WHY("'%s' matches more than one contact; give more of the id", esc);
    else if (rc != TF_OK)
        WHY("cannot look up '%s': %s", esc, tf_strerror(rc));
    return rc;
}

/* requests: the hex-id lookup of node/intro.c and node/request.c. */
struct hex_scan {
    char prefix[65];
    size_t n;
    uint8_t id[32];
    int matches;
};

static int hex_id_cb(const uint8_t *key, size_t klen, const uint8_t *val, size_t vlen, void *arg)
{
    (void)val;
    (void)vlen;
    struct hex_scan *s = arg;
    char hex[65];
    if (klen != 32)
        return 0;
    sodium_bin2hex(hex, sizeof hex, key, 32);
    if (strncmp(hex, s->prefix, s->n & ~(size_t)1) != 0)
        return 1; /* keys are in order: past the prefix's whole bytes */
    if (strncmp(hex, s->prefix, s->n) != 0)
        return 0; /* an odd prefix: its last digit may match a later key */
    memcpy(s->id, key, 32);
    return ++s->matches > 1 ? 1 : 0;
}

int tf_node__resolve_hex_id(struct tf_node *node, enum tf_node_store_table table,
                            const msgpack_object *args, const char *key, const char *noun,
                            uint8_t id[32], char *why, size_t why_cap)
{
    const char *an =
        noun[0] == 'a' || noun[0] == 'e' || noun[0] == 'i' || noun[0] == 'o' || noun[0] == 'u'
            ? "an"
            : "a";
    struct hex_scan s = {.matches = 0};
    const char *p;
    size_t n;
    if (tf_proto_ctl_get_str(args, key, &p, &n) != TF_OK || n < 8 || n > 64) {
        WHY("give the %s id (at least its first 8 hex digits)%s%s", noun,
            strcmp(key, "id") == 0 ? "" : " as ", strcmp(key, "id") == 0 ? "" : key);
        return TF_E_BAD_REQUEST;
    }
    for (size_t i = 0; i < n; i++) {
        char ch = p[i];
        if (ch >= 'A' && ch <= 'F')
            ch = (char)(ch + 32);
        if (!((ch >= '0' && ch <= '9') || (ch >= 'a' && ch <= 'f'))) {
            WHY("%s %s id is hex digits", an, noun);
            return TF_E_BAD_REQUEST;
        }
        s.prefix[i] = ch;
    }
    s.n = n;
    /* Walk from the first key with the prefix's whole bytes. */
    uint8_t from[32];
    size_t flen = 0;
    if (sodium_hex2bin(from, sizeof from, s.prefix, n & ~(size_t)1, NULL, &flen, NULL) != 0)
        return TF_E_BAD_REQUEST;
    int rc = tf_node_store_kv_foreach_from(node->store, table, from, flen, hex_id_cb, &s);
    if (rc != TF_OK && rc != 1)
        return rc;
    if (s.matches == 0) {
        WHY("no %s %.*s here", noun, (int)n, s.prefix);
        return TF_E_NOT_FOUND;
    }
    if (s.matches > 1) {
        WHY("%.*s matches several %ss; give more digits", (int)n, s.prefix, noun);
        return TF_E_AMBIGUOUS;
    }
    memcpy(id, s.id, 32);
    return TF_OK;
}

static int find_contact(struct tf_node *node, const msgpack_object *args, struct tf_node_contact *c,
                        char *why, size_t why_cap)
{
    return tf_node__find_contact(node, args, "name", c, why, why_cap);
}

/* Output. */

static void write_text_id(struct tf_proto_mp_writer *w, const uint8_t *pk)
{
    char tid[TF_PROTO_TEXT_ID_SIZE];
    tf_proto_text_id_encode(pk, tid);
    tf_proto_mp_write_cstr(w, tid);
}

static void write_hex(struct tf_proto_mp_writer *w, const uint8_t *p, size_t n)
{
    char hex[2 * 64 + 1];
    sodium_bin2hex(hex, sizeof hex, p, n);
    tf_proto_mp_write_cstr(w, hex);
}

static void write_views(struct tf_proto_mp_writer *w, const struct tf_proto_bytes *v, size_t n)
{
    tf_proto_mp_write_array(w, (uint32_t)n);
    for (size_t i = 0; i < n; i++)
        tf_proto_mp_write_text(w, v[i]);
}

/* requests: with extra more pairs, which the caller writes after. */
static void write_contact_n(struct tf_proto_mp_writer *w, const struct tf_node_contact *c,
                            bool with_card, uint32_t extra);

void tf_node_verbs_write_contact(struct tf_proto_mp_writer *w, const struct tf_node_contact *c,
                                 bool with_card)
{
    write_contact_n(w, c, with_card, 0);
}

static void write_contact_n(struct tf_proto_mp_writer *w, const struct tf_node_contact *c,
                            bool with_card, uint32_t extra)
{
    char fp[TF_PROTO_FINGERPRINT_SIZE];
    char *card_text = NULL;
    if (with_card && tf_proto_card_to_text(c->card.data, c->card.len, &card_text) != TF_OK)
        card_text = NULL;
    tf_proto_mp_write_map(w, 15u + (card_text != NULL ? 1u : 0u) + extra);
    tf_proto_mp_write_cstr(w, "id");
    write_text_id(w, c->pk);
    tf_proto_mp_write_cstr(w, "fingerprint");
    tf_proto_fingerprint(c->pk, fp);
    tf_proto_mp_write_cstr(w, fp);
    tf_proto_mp_write_cstr(w, "name");
    tf_proto_mp_write_text(w, c->fields.name);
    tf_proto_mp_write_cstr(w, "alias");
    tf_proto_mp_write_cstr_or_nil(w, c->alias);
    tf_proto_mp_write_cstr(w, "trust");
    tf_proto_mp_write_cstr(w, tf_node_trust_name(c->trust));
    tf_proto_mp_write_cstr(w, "tags");
    tf_proto_mp_write_array(w, (uint32_t)c->n_tags);
    for (size_t i = 0; i < c->n_tags; i++)
        tf_proto_mp_write_cstr(w, c->tags[i]);
    tf_proto_mp_write_cstr(w, "introduced_by");
    if (c->has_introducer)
        write_text_id(w, c->introduced_by);
    else
        tf_proto_mp_write_nil(w);
    tf_proto_mp_write_cstr(w, "intro");
    if (c->has_introducer)
        write_hex(w, c->intro, sizeof c->intro);
    else
        tf_proto_mp_write_nil(w);
    tf_proto_mp_write_cstr(w, "addrs");
    write_views(w, c->fields.addrs, c->fields.n_addrs);
    tf_proto_mp_write_cstr(w, "offers");
    write_views(w, c->fields.offers, c->fields.n_offers);
    tf_proto_mp_write_cstr(w, "seeks");
    write_views(w, c->fields.seeks, c->fields.n_seeks);
    tf_proto_mp_write_cstr(w, "seq");
    tf_proto_mp_write_uint(w, c->fields.seq);
    tf_proto_mp_write_cstr(w, "added");
    tf_proto_mp_write_uint(w, c->added);
    tf_proto_mp_write_cstr(w, "updated");
    tf_proto_mp_write_uint(w, c->updated);
    tf_proto_mp_write_cstr(w, "blocked");
    tf_proto_mp_write_bool(w, c->blocked);
    if (card_text != NULL) {
        tf_proto_mp_write_cstr(w, "card");
        tf_proto_mp_write_cstr(w, card_text);
        free(card_text);
    }
}

/* Records a contact event: {time, type, contact, name}. */
static int contact_event(struct tf_node *node, const char *type, const struct tf_node_contact *c)
{
    struct tf_proto_mp_writer w;
    struct tf_proto_buf rec;
    tf_proto_mp_writer_init(&w);
    tf_proto_mp_write_map(&w, 4);
    tf_proto_mp_write_cstr(&w, "time");
    tf_proto_mp_write_uint(&w, tf_node_now(node));
    tf_proto_mp_write_cstr(&w, "type");
    tf_proto_mp_write_cstr(&w, type);
    tf_proto_mp_write_cstr(&w, "contact");
    write_text_id(&w, c->pk);
    tf_proto_mp_write_cstr(&w, "name");
    tf_proto_mp_write_text(&w, c->fields.name);
    int rc = tf_proto_mp_writer_finish(&w, &rec);
    if (rc != TF_OK)
        return rc;
    rc = tf_node_event(node, &rec);
    tf_proto_buf_free(&rec);
    return rc;
}

/* Verbs. */

/* pages (issue 17): status {tables: true} adds each store table's shape and
 * committed writes (docs/CONTROL.md). */
static int write_tables(struct tf_node *node, struct tf_proto_mp_writer *w)
{
    struct tf_node_store_table_stat t;
    size_t n = 0;
    int rc;
    while ((rc = tf_node_store_table_stat(node->store, n, &t)) == TF_OK)
        n++;
    if (rc != TF_E_NOT_FOUND)
        return rc;
    tf_proto_mp_write_cstr(w, "tables");
    tf_proto_mp_write_map(w, (uint32_t)n);
    for (size_t i = 0; i < n; i++) {
        if ((rc = tf_node_store_table_stat(node->store, i, &t)) != TF_OK)
            return rc;
        const uint64_t v[] = {t.writes,       t.entries,    t.depth,
                              t.branch_pages, t.leaf_pages, t.overflow_pages};
        static const char *const k[] = {"writes",       "entries",    "depth",
                                        "branch_pages", "leaf_pages", "overflow_pages"};
        tf_proto_mp_write_cstr(w, t.name);
        tf_proto_mp_write_map(w, sizeof v / sizeof v[0]);
        for (size_t j = 0; j < sizeof v / sizeof v[0]; j++) {
            tf_proto_mp_write_cstr(w, k[j]);
            tf_proto_mp_write_uint(w, v[j]);
        }
    }
    return TF_OK;
}

static int verb_status(struct tf_node *node, const msgpack_object *args,
                       struct tf_proto_mp_writer *w, char *why, size_t why_cap)
{
    struct tf_node_store_stat st;
    char fp[TF_PROTO_FINGERPRINT_SIZE];
    bool tables = false;
    int rc = tf_proto_ctl_get_bool(args, "tables", &tables);
    if (rc != TF_OK && rc != TF_E_NOT_FOUND) {
        WHY("argument 'tables' must be true or false");
        return TF_E_BAD_REQUEST;
    }
    rc = tf_node_store_stat(node->store, &st);
    if (rc != TF_OK) {
        WHY("cannot read the store: %s", tf_strerror(rc));
        return rc;
    }
    uint64_t now = tf_node_now(node);
    tf_proto_mp_write_map(w, tables ? 21 : 20);
    tf_proto_mp_write_cstr(w, "id");
    tf_proto_mp_write_cstr(w, node->text_id);
    tf_proto_mp_write_cstr(w, "fingerprint");
    tf_proto_fingerprint(node->id.sign_pk, fp);
    tf_proto_mp_write_cstr(w, fp);
    tf_proto_mp_write_cstr(w, "name");
    tf_proto_mp_write_text(w, node->card_fields.name);
    tf_proto_mp_write_cstr(w, "listen");
    tf_proto_mp_write_cstr_or_nil(w, node->listen);
    tf_proto_mp_write_cstr(w, "version");
    tf_proto_mp_write_cstr(w, TF_VERSION);
    tf_proto_mp_write_cstr(w, "pid");
    tf_proto_mp_write_uint(w, (uint64_t)getpid());
    tf_proto_mp_write_cstr(w, "started");
    tf_proto_mp_write_uint(w, node->started);
    tf_proto_mp_write_cstr(w, "uptime_s");
    tf_proto_mp_write_uint(w, now > node->started ? now - node->started : 0);
    tf_proto_mp_write_cstr(w, "store_bytes");
    tf_proto_mp_write_uint(w, st.size_bytes);
    /* powerloss: room to grow, and whether the last commit found none */
    tf_proto_mp_write_cstr(w, "store_map_bytes");
    tf_proto_mp_write_uint(w, st.map_bytes);
    tf_proto_mp_write_cstr(w, "disk_free_bytes");
    tf_proto_mp_write_uint(w, st.disk_free_bytes);
    tf_proto_mp_write_cstr(w, "disk_total_bytes");
    tf_proto_mp_write_uint(w, st.disk_total_bytes);
    tf_proto_mp_write_cstr(w, "store_full");
    tf_proto_mp_write_bool(w, node->store_full);
    tf_proto_mp_write_cstr(w, "contacts");
    tf_proto_mp_write_uint(w, st.contacts);
    tf_proto_mp_write_cstr(w, "events");
    tf_proto_mp_write_uint(w, st.events);
    tf_proto_mp_write_cstr(w, "outbox");
    /* ackdefer: entries acknowledged whose deletes wait are not queued. */
    size_t acked = tf_node_delivery_acks_pending(node->delivery);
    tf_proto_mp_write_uint(w, st.outbox > acked ? st.outbox - acked : 0);
    tf_proto_mp_write_cstr(w, "messages");
    tf_proto_mp_write_uint(w, st.messages);
    tf_proto_mp_write_cstr(w, "peers");
    tf_node_net_write_peers(node->net, w);
    tf_proto_mp_write_cstr(w, "limits");
    tf_node_net_write_limits(node->net, w);
    const struct tf_node_stats *s = &node->stats;
    const struct {
        const char *key;
        uint64_t value;
    } stats[] = {
        {"commits", st.commits},
        {"envelopes_sent", s->envelopes_sent},
        {"envelopes_received", s->envelopes_received},
        {"frames_sent", s->frames_sent},
        {"frames_received", s->frames_received},
        {"writes", s->writes},
        {"commit_us", s->commit_us},
        /* perf (issue 17) */
        {"commit_write_bytes", s->commit_write_bytes},
        {"store_pages", st.pages},
        /* ackdefer */
        {"commits_acks_only", s->commits_acks_only},
        {"acks_deferred", s->acks_deferred},
        {"ack_defer_full", s->ack_defer_full},
        {"acks_pending", tf_node_delivery_acks_pending(node->delivery)},
        /* waitcommit */
        {"commits_waited", s->commits_waited},
    };
    tf_proto_mp_write_cstr(w, "stats");
    tf_proto_mp_write_map(w, sizeof stats / sizeof stats[0]);
    for (size_t i = 0; i < sizeof stats / sizeof stats[0]; i++) {
        tf_proto_mp_write_cstr(w, stats[i].key);
        tf_proto_mp_write_uint(w, stats[i].value);
    }
    if (tables && (rc = write_tables(node, w)) != TF_OK) {
        WHY("cannot read the store: %s", tf_strerror(rc));
        return rc;
    }
    return TF_OK;
}

static void copy_tags(struct tf_node_contact *c, const struct tag_list *t)
{
    c->n_tags = t->n;
    for (size_t i = 0; i < t->n; i++)
        memcpy(c->tags[i], t->tags[i], sizeof c->tags[i]);
}

static int verb_contact_add(struct tf_node *node, const msgpack_object *args,
                            struct tf_proto_mp_writer *w, char *why, size_t why_cap)
{
    const char *text;
    size_t text_len;
    char alias[TF_NODE_ALIAS_MAX + 1];
    bool has_alias, has_trust;
    enum tf_node_trust trust = TF_NODE_TRUST_KNOWN;
    struct tag_list tags;
    struct tf_proto_buf signed_card = {0};
    struct tf_proto_card card;
    struct tf_node_contact c = {0}, old = {0};
    int rc;

    if (tf_proto_ctl_get_str(args, "card", &text, &text_len) != TF_OK) {
        WHY("missing argument 'card' (the text from: twofold card)");
        return TF_E_BAD_REQUEST;
    }
    if ((rc = alias_arg(args, alias, &has_alias, why, why_cap)) != TF_OK ||
        (rc = trust_arg(args, &trust, &has_trust, why, why_cap)) != TF_OK ||
        (rc = tags_arg(args, "tags", &tags, why, why_cap)) != TF_OK)
        return rc;
    if ((rc = tf_proto_card_from_text(text, text_len, &signed_card, &card)) != TF_OK) {
        WHY("card refused: %s; nothing was stored", tf_strerror(rc));
        return rc;
    }
    if (sodium_memcmp(card.sign_pk, node->id.sign_pk, TF_PROTO_KEY_LEN) == 0) {
        WHY("that is your own card");
        rc = TF_E_INVALID_ARG;
        goto cleanup;
    }
    if ((rc = tf_node_contact_from_card(&c, signed_card.data, signed_card.len)) != TF_OK) {
        WHY("card refused: %s", tf_strerror(rc));
        goto cleanup;
    }
    uint64_t now = tf_node_now(node);
    rc = tf_node_store_contact_get(node->store, c.pk, &old);
    bool update = rc == TF_OK;
    if (rc != TF_OK && rc != TF_E_NOT_FOUND) {
        WHY("cannot read the store: %s", tf_strerror(rc));
        goto cleanup;
    }
    if (update) {
        if ((rc = tf_proto_card_supersedes(&c.fields, &old.fields)) != TF_OK) {
            WHY("you already hold card number %llu for this contact; this one is number %llu "
                "and is not newer (use 'contact set' to change alias, trust or tags)",
                (unsigned long long)old.fields.seq, (unsigned long long)c.fields.seq);
            goto cleanup;
        }
        /* A newer card keeps everything the owner said about them. */
        memcpy(c.alias, old.alias, sizeof c.alias);
        c.trust = old.trust;
        c.n_tags = old.n_tags;
        memcpy(c.tags, old.tags, sizeof c.tags);
        c.has_introducer = old.has_introducer;
        memcpy(c.introduced_by, old.introduced_by, sizeof c.introduced_by);
        memcpy(c.intro, old.intro, sizeof c.intro);
        c.blocked = old.blocked;
        c.added = old.added;
    } else {
        c.trust = TF_NODE_TRUST_KNOWN;
        c.added = now;
    }
    c.updated = now;
    if (has_alias)
        memcpy(c.alias, alias, sizeof c.alias);
    if (has_trust)
        c.trust = trust;
    if (tags.present)
        copy_tags(&c, &tags);
    rc = tf_node_store_contact_put(node->store, &c);
    if (rc == TF_E_EXISTS) {
        WHY("the alias '%s' already names another contact", c.alias);
        goto cleanup;
    }
    if (rc != TF_OK) {
        WHY("cannot store the contact: %s", tf_strerror(rc));
        goto cleanup;
    }
    if ((rc = contact_event(node, update ? "contact.updated" : "contact.added", &c)) != TF_OK) {
        WHY("cannot record the event: %s", tf_strerror(rc));
        goto cleanup;
    }
    tf_node_verbs_write_contact(w, &c, false);
cleanup:
    tf_node_contact_deinit(&c);
    tf_node_contact_deinit(&old);
    tf_proto_buf_free(&signed_card);
    return rc;
}

/* Writes an array of n items already encoded in items (consumed). */
static int write_collected(struct tf_proto_mp_writer *w, struct tf_proto_mp_writer *items,
                           uint32_t n)
{
    struct tf_proto_buf buf;
    int rc = tf_proto_mp_writer_finish(items, &buf);
    if (rc != TF_OK)
        return rc;
    tf_proto_mp_write_array(w, n);
    tf_proto_mp_write_raw(w, buf.data, buf.len);
    tf_proto_buf_free(&buf);
    return TF_OK;
}

/* A listing verb's page: `limit` (1..TF_NODE_VERBS_PAGE_MAX, default
 * TF_NODE_VERBS_PAGE_DEFAULT) and at most one cursor, `after` or `before`,
 * a string whose meaning is the verb's (docs/CONTROL.md). */
struct page {
    uint32_t limit;
    enum { PAGE_FIRST, PAGE_AFTER, PAGE_BEFORE } from;
    char cursor[TF_PROTO_TEXT_ID_SIZE];
};

static int page_arg(const msgpack_object *args, struct page *p, char *why, size_t why_cap)
{
    bool after, before;
    uint64_t limit = TF_NODE_VERBS_PAGE_DEFAULT;
    int rc = tf_proto_ctl_get_uint(args, "limit", &limit);
    if ((rc != TF_OK && rc != TF_E_NOT_FOUND) || limit < 1 || limit > TF_NODE_VERBS_PAGE_MAX) {
        WHY("argument 'limit' must be a whole number from 1 to %d", TF_NODE_VERBS_PAGE_MAX);
        /* A mistyped argument, or one out of range (as the intro verbs say). */
        return rc == TF_E_TYPE ? TF_E_BAD_REQUEST : TF_E_BAD_VALUE;
    }
    p->limit = (uint32_t)limit;
    char other[sizeof p->cursor];
    if ((rc = str_arg(args, "after", p->cursor, sizeof p->cursor, &after, why, why_cap)) != TF_OK ||
        (rc = str_arg(args, "before", after ? other : p->cursor, sizeof p->cursor, &before, why,
                      why_cap)) != TF_OK)
        return rc;
    if (after && before) {
        WHY("give 'after' or 'before', not both");
        return TF_E_BAD_REQUEST;
    }
    p->from = after ? PAGE_AFTER : before ? PAGE_BEFORE : PAGE_FIRST;
    return TF_OK;
}

/* Contacts are paged in key order; a cursor is a contact's text id (which
 * need not be a contact any more).  Pages after the cursor are written as the
 * walk goes; the page before it is the last `limit` keys below it, kept in a
 * ring and read again. */
struct list_ctx {
    struct tf_proto_mp_writer items;
    uint32_t n;
    const struct page *page;
    uint8_t cursor[TF_PROTO_KEY_LEN];
    uint8_t (*ring)[TF_PROTO_KEY_LEN]; /* PAGE_BEFORE: limit keys */
    size_t seen;                       /* PAGE_BEFORE: keys below the cursor */
};

static int list_cb(const struct tf_node_contact *c, void *arg)
{
    struct list_ctx *l = arg;
    switch (l->page->from) {
    case PAGE_FIRST:
        break;
    case PAGE_AFTER:
        if (memcmp(c->pk, l->cursor, TF_PROTO_KEY_LEN) <= 0)
            return 0;
        break;
    case PAGE_BEFORE:
        if (memcmp(c->pk, l->cursor, TF_PROTO_KEY_LEN) >= 0)
            return 1;
        memcpy(l->ring[l->seen++ % l->page->limit], c->pk, TF_PROTO_KEY_LEN);
        return 0;
    }
    tf_node_verbs_write_contact(&l->items, c, false);
    return ++l->n == l->page->limit ? 1 : 0;
}

/* Writes the contacts a PAGE_BEFORE walk kept, in key order. */
static int list_ring(struct tf_node *node, struct list_ctx *l)
{
    size_t n = l->seen < l->page->limit ? l->seen : l->page->limit;
    for (size_t i = l->seen - n; i < l->seen; i++) {
        struct tf_node_contact c = {0};
        int rc = tf_node_store_contact_get(node->store, l->ring[i % l->page->limit], &c);
        if (rc == TF_OK)
            tf_node_verbs_write_contact(&l->items, &c, false);
        tf_node_contact_deinit(&c);
        if (rc != TF_OK)
            return rc;
        l->n++;
    }
    return TF_OK;
}

static int verb_contact_list(struct tf_node *node, const msgpack_object *args,
                             struct tf_proto_mp_writer *w, char *why, size_t why_cap)
{
    struct page page;
    int rc = page_arg(args, &page, why, why_cap);
    if (rc != TF_OK)
        return rc;
    struct list_ctx l = {.n = 0, .page = &page};
    if (page.from != PAGE_FIRST &&
        tf_proto_text_id_decode(page.cursor, strlen(page.cursor), l.cursor, NULL) != TF_OK) {
        WHY("argument '%s' must be a contact's text id (tf1...)",
            page.from == PAGE_AFTER ? "after" : "before");
        return TF_E_BAD_VALUE;
    }
    if (page.from == PAGE_BEFORE && (l.ring = calloc(page.limit, sizeof l.ring[0])) == NULL)
        return TF_E_NOMEM;
    tf_proto_mp_writer_init(&l.items);
    rc = tf_node_store_contact_foreach(node->store, list_cb, &l);
    if (rc == 1)
        rc = TF_OK;
    if (rc == TF_OK && page.from == PAGE_BEFORE)
        rc = list_ring(node, &l);
    free(l.ring);
    if (rc != TF_OK) {
        tf_proto_mp_writer_deinit(&l.items);
        WHY("cannot read the contacts: %s", tf_strerror(rc));
        return rc;
    }
    return write_collected(w, &l.items, l.n);
}

static int verb_contact_show(struct tf_node *node, const msgpack_object *args,
                             struct tf_proto_mp_writer *w, char *why, size_t why_cap)
{
    struct tf_node_contact c = {0};
    int rc = find_contact(node, args, &c, why, why_cap);
    if (rc == TF_OK) { /* requests: with the intro statistics */
        write_contact_n(w, &c, true, TF_NODE_REQUEST_STATS_PAIRS);
        rc = tf_node_request_write_stats(node, c.pk, w);
    }
    tf_node_contact_deinit(&c);
    return rc;
}

/* Applies add_tags / rm_tags to c. */
static int edit_tags(struct tf_node_contact *c, const struct tag_list *add,
                     const struct tag_list *rm, char *why, size_t why_cap)
{
    for (size_t i = 0; i < rm->n; i++) {
        for (size_t j = 0; j < c->n_tags; j++) {
            if (strcmp(c->tags[j], rm->tags[i]) != 0)
                continue;
            memmove(c->tags[j], c->tags[j + 1], (c->n_tags - j - 1) * sizeof c->tags[0]);
            c->n_tags--;
            break;
        }
    }
    for (size_t i = 0; i < add->n; i++) {
        bool have = false;
        for (size_t j = 0; j < c->n_tags && !have; j++)
            have = strcmp(c->tags[j], add->tags[i]) == 0;
        if (have)
            continue;
        if (c->n_tags == TF_NODE_TAGS_MAX) {
            WHY("a contact has at most %d tags", TF_NODE_TAGS_MAX);
            return TF_E_TOO_LONG;
        }
        memcpy(c->tags[c->n_tags++], add->tags[i], sizeof c->tags[0]);
    }
    return TF_OK;
}

static int verb_contact_set(struct tf_node *node, const msgpack_object *args,
                            struct tf_proto_mp_writer *w, char *why, size_t why_cap)
{
    char alias[TF_NODE_ALIAS_MAX + 1];
    bool has_alias, has_trust, blocked, has_blocked;
    enum tf_node_trust trust;
    struct tag_list tags, add, rm;
    struct tf_node_contact c = {0};
    int rc;
    if ((rc = alias_arg(args, alias, &has_alias, why, why_cap)) != TF_OK ||
        (rc = trust_arg(args, &trust, &has_trust, why, why_cap)) != TF_OK ||
        (rc = tags_arg(args, "tags", &tags, why, why_cap)) != TF_OK ||
        (rc = tags_arg(args, "add_tags", &add, why, why_cap)) != TF_OK ||
        (rc = tags_arg(args, "rm_tags", &rm, why, why_cap)) != TF_OK)
        return rc;
    rc = tf_proto_ctl_get_bool(args, "blocked", &blocked);
    has_blocked = rc == TF_OK;
    if (rc != TF_OK && rc != TF_E_NOT_FOUND) {
        WHY("argument 'blocked' must be true or false");
        return TF_E_BAD_REQUEST;
    }
    if ((rc = find_contact(node, args, &c, why, why_cap)) != TF_OK)
        goto cleanup;
    if (has_alias)
        memcpy(c.alias, alias, sizeof c.alias);
    if (has_trust)
        c.trust = trust;
    if (tags.present)
        copy_tags(&c, &tags);
    if ((rc = edit_tags(&c, &add, &rm, why, why_cap)) != TF_OK)
        goto cleanup;
    if (has_blocked)
        c.blocked = blocked;
    c.updated = tf_node_now(node);
    rc = tf_node_store_contact_put(node->store, &c);
    if (rc == TF_E_EXISTS) {
        WHY("the alias '%s' already names another contact", c.alias);
        goto cleanup;
    }
    if (rc != TF_OK) {
        WHY("cannot store the contact: %s", tf_strerror(rc));
        goto cleanup;
    }
    if ((rc = contact_event(node, "contact.updated", &c)) != TF_OK) {
        WHY("cannot record the event: %s", tf_strerror(rc));
        goto cleanup;
    }
    tf_node_verbs_write_contact(w, &c, false);
cleanup:
    tf_node_contact_deinit(&c);
    return rc;
}

static int verb_contact_rm(struct tf_node *node, const msgpack_object *args,
                           struct tf_proto_mp_writer *w, char *why, size_t why_cap)
{
    struct tf_node_contact c = {0};
    int rc = find_contact(node, args, &c, why, why_cap);
    if (rc != TF_OK)
        goto cleanup;
    if ((rc = tf_node_store_contact_del(node->store, c.pk)) != TF_OK) {
        WHY("cannot remove the contact: %s", tf_strerror(rc));
        goto cleanup;
    }
    if ((rc = contact_event(node, "contact.removed", &c)) != TF_OK) {
        WHY("cannot record the event: %s", tf_strerror(rc));
        goto cleanup;
    }
    tf_proto_mp_write_map(w, 1);
    tf_proto_mp_write_cstr(w, "removed");
    write_text_id(w, c.pk);
cleanup:
    tf_node_contact_deinit(&c);
    return rc;
}

/* Messages and the outbox. */

static void write_msg_id(struct tf_proto_mp_writer *w, const uint8_t id[16])
{
    write_hex(w, id, 16);
}

static int verb_message_send(struct tf_node *node, const msgpack_object *args,
                             struct tf_proto_mp_writer *w, char *why, size_t why_cap)
{
    const char *text;
    size_t len;
    struct tf_node_contact c = {0};
    int rc = tf_proto_ctl_get_str(args, "text", &text, &len);
    if (rc != TF_OK) {
        WHY("missing argument 'text'");
        return TF_E_BAD_REQUEST;
    }
    if (!tf_node_note_is_valid((const uint8_t *)text, len)) {
        WHY("a note is 1 to %d bytes of UTF-8 text without control characters (newlines and "
            "tabs are fine)",
            TF_NODE_MESSAGE_TEXT_MAX);
        return TF_E_BAD_VALUE;
    }
    if ((rc = find_contact(node, args, &c, why, why_cap)) != TF_OK)
        return rc;
    if (c.blocked) {
        WHY("%s is blocked; unblock them first", c.alias[0] ? c.alias : "this contact");
        rc = TF_E_INVALID_ARG;
        goto cleanup;
    }
    uint64_t now = tf_node_now(node);
    struct tf_node_message m;
    memset(&m, 0, sizeof m);
    rc = tf_node_delivery_enqueue(node->delivery, &c, TF_PROTO_MSG_TYPE_NOTE, (const uint8_t *)text,
                                  len, now + node->config.note_ttl_s, m.id);
    if (rc != TF_OK) {
        WHY("cannot queue the note: %s", tf_strerror(rc));
        goto cleanup;
    }
    m.outgoing = true;
    memcpy(m.contact, c.pk, 32);
    m.text.data = (uint8_t *)(uintptr_t)text;
    m.text.len = len;
    m.time = m.updated = now;
    m.state = TF_NODE_MESSAGE_QUEUED;
    if ((rc = tf_node_store_message_put(node->store, &m)) != TF_OK) {
        WHY("cannot store the note: %s", tf_strerror(rc));
        goto cleanup;
    }
    tf_proto_mp_write_map(w, 3);
    tf_proto_mp_write_cstr(w, "id");
    write_msg_id(w, m.id);
    tf_proto_mp_write_cstr(w, "contact");
    write_text_id(w, c.pk);
    tf_proto_mp_write_cstr(w, "state");
    tf_proto_mp_write_cstr(w, "queued");
cleanup:
    tf_node_contact_deinit(&c);
    return rc;
}

/* Messages are listed oldest first, by (time, id).  A page is the `limit`
 * messages nearest the cursor on its side (without one: the newest), chosen
 * in one walk that keeps only the candidates, sorted. */
struct msg_list {
    struct tf_node *node;
    bool filter;
    uint8_t pk[32];
    const struct page *page;
    struct tf_node_message cursor; /* PAGE_AFTER, PAGE_BEFORE: time and id */
    struct tf_node_message *items; /* page->limit slots, n in order */
    size_t n;
    int err;
};

static int by_time(const struct tf_node_message *x, const struct tf_node_message *y)
{
    if (x->time != y->time)
        return x->time < y->time ? -1 : 1;
    return memcmp(x->id, y->id, 16);
}

static int msg_list_cb(const struct tf_node_message *m, void *arg)
{
    struct msg_list *l = arg;
    size_t limit = l->page->limit;
    /* Keep the oldest `limit` after the cursor, or the newest before it. */
    bool oldest = l->page->from == PAGE_AFTER;
    if (l->filter && memcmp(m->contact, l->pk, 32) != 0)
        return 0;
    if ((l->page->from == PAGE_AFTER && by_time(m, &l->cursor) <= 0) ||
        (l->page->from == PAGE_BEFORE && by_time(m, &l->cursor) >= 0))
        return 0;
    if (l->n == limit &&
        (oldest ? by_time(m, &l->items[limit - 1]) > 0 : by_time(m, &l->items[0]) < 0))
        return 0;
    uint8_t *text = malloc(m->text.len ? m->text.len : 1);
    if (text == NULL) {
        l->err = TF_E_NOMEM;
        return 1;
    }
    memcpy(text, m->text.data, m->text.len);
    /* Make room: drop the one that falls off the page's far end. */
    if (l->n == limit) {
        size_t drop = oldest ? limit - 1 : 0;
        tf_node_message_deinit(&l->items[drop]);
        memmove(&l->items[drop], &l->items[drop + 1], (l->n - drop - 1) * sizeof *l->items);
        l->n--;
    }
    size_t at = l->n;
    while (at > 0 && by_time(m, &l->items[at - 1]) < 0)
        at--;
    memmove(&l->items[at + 1], &l->items[at], (l->n - at) * sizeof *l->items);
    l->items[at] = *m;
    l->items[at].text.data = text;
    l->n++;
    return 0;
}

/* The cursor of message.list: a message id (32 hex digits) still stored. */
static int msg_cursor(struct msg_list *l, char *why, size_t why_cap)
{
    uint8_t id[16];
    size_t got = 0;
    const char *cursor = l->page->cursor;
    const char *key = l->page->from == PAGE_AFTER ? "after" : "before";
    if (strlen(cursor) != 32 || sodium_hex2bin(id, sizeof id, cursor, 32, NULL, &got, NULL) != 0 ||
        got != 16) {
        WHY("argument '%s' must be a message id (32 hex digits)", key);
        return TF_E_BAD_VALUE;
    }
    int rc = tf_node_store_message_get(l->node->store, id, &l->cursor);
    if (rc == TF_E_NOT_FOUND)
        WHY("no message %s (argument '%s')", cursor, key);
    else if (rc != TF_OK)
        WHY("cannot read the messages: %s", tf_strerror(rc));
    return rc;
}

static int verb_message_list(struct tf_node *node, const msgpack_object *args,
                             struct tf_proto_mp_writer *w, char *why, size_t why_cap)
{
    struct page page;
    struct msg_list l = {.node = node, .page = &page};
    int rc = page_arg(args, &page, why, why_cap);
    if (rc != TF_OK)
        return rc;
    if (tf_proto_ctl_get(args, "name") != NULL) {
        struct tf_node_contact c = {0};
        if ((rc = find_contact(node, args, &c, why, why_cap)) != TF_OK)
            return rc;
        l.filter = true;
        memcpy(l.pk, c.pk, 32);
        tf_node_contact_deinit(&c);
    }
    if (page.from != PAGE_FIRST && (rc = msg_cursor(&l, why, why_cap)) != TF_OK)
        return rc;
    tf_proto_buf_free(&l.cursor.text); /* only its time and id are used */
    if ((l.items = calloc(page.limit, sizeof *l.items)) == NULL)
        return TF_E_NOMEM;
    rc = tf_node_store_message_foreach(node->store, msg_list_cb, &l);
    if (rc == TF_OK)
        rc = l.err;
    if (rc == TF_OK) {
        tf_proto_mp_write_array(w, (uint32_t)l.n);
        for (size_t i = 0; i < l.n; i++) {
            const struct tf_node_message *m = &l.items[i];
            tf_proto_mp_write_map(w, 9);
            tf_proto_mp_write_cstr(w, "id");
            write_msg_id(w, m->id);
            tf_proto_mp_write_cstr(w, "direction");
            tf_proto_mp_write_cstr(w, m->outgoing ? "out" : "in");
            tf_proto_mp_write_cstr(w, "contact");
            write_text_id(w, m->contact);
            tf_proto_mp_write_cstr(w, "alias");
            tf_node__write_alias(node, m->contact, w);
            tf_proto_mp_write_cstr(w, "text");
            tf_proto_mp_write_str(w, (const char *)m->text.data, m->text.len);
            tf_proto_mp_write_cstr(w, "state");
            tf_proto_mp_write_cstr(w, tf_node_message_state_name(m->state));
            tf_proto_mp_write_cstr(w, "time");
            tf_proto_mp_write_uint(w, m->time);
            tf_proto_mp_write_cstr(w, "updated");
            tf_proto_mp_write_uint(w, m->updated);
            tf_proto_mp_write_cstr(w, "error");
            tf_proto_mp_write_cstr_or_nil(w, m->error);
        }
    } else {
        WHY("cannot read the messages: %s", tf_strerror(rc));
    }
    for (size_t i = 0; i < l.n; i++)
        tf_node_message_deinit(&l.items[i]);
    free(l.items);
    return rc;
}

static const char *msg_type_name(uint16_t type)
{
    switch (type) {
    case TF_PROTO_MSG_TYPE_NOTE:
        return "note";
    case TF_PROTO_MSG_TYPE_PROPOSAL:
        return "proposal";
    case TF_PROTO_MSG_TYPE_REPLY:
        return "reply";
    case TF_PROTO_MSG_TYPE_INTRODUCTION:
        return "introduction";
    case TF_PROTO_MSG_TYPE_CLOSE:
        return "close";
    case TF_PROTO_MSG_TYPE_CARD_UPDATE:
        return "card-update";
    /* requests */
    case TF_PROTO_MSG_TYPE_REQUEST:
        return "request";
    case TF_PROTO_MSG_TYPE_REQUEST_CLOSE:
        return "request-close";
    case TF_PROTO_MSG_TYPE_FEEDBACK:
        return "feedback";
    default:
        return "unknown";
    }
}

/* The outbox is listed soonest first, by (next_try, msg_id): the order the
 * node will try the entries in.  A cursor is the msg_id of an entry still in
 * the outbox; the page after it (or before it) is taken in that order, as it
 * stands now (a retry moves an entry).  Pages after the cursor are written as
 * the walk goes; the page before it is the last `limit` entries below it, kept
 * in a ring. */
struct outbox_list {
    struct tf_node *node;
    const struct page *page;
    uint64_t cur_due; /* the cursor's place, when there is one */
    uint8_t cur_id[16];
    struct tf_proto_mp_writer items;
    uint32_t n;
    struct tf_node_outbox_entry *ring; /* PAGE_BEFORE: limit entries, envelopes dropped */
    size_t seen;
};

static int outbox_cmp(const struct tf_node_outbox_entry *e, const struct outbox_list *l)
{
    if (e->next_try_ms != l->cur_due)
        return e->next_try_ms < l->cur_due ? -1 : 1;
    return memcmp(e->msg_id, l->cur_id, sizeof l->cur_id);
}

static void outbox_item(struct outbox_list *l, const struct tf_node_outbox_entry *e)
{
    struct tf_proto_mp_writer *w = &l->items;
    tf_proto_mp_write_map(w, 9);
    tf_proto_mp_write_cstr(w, "msg_id");
    write_msg_id(w, e->msg_id);
    tf_proto_mp_write_cstr(w, "to");
    write_text_id(w, e->to_pk);
    tf_proto_mp_write_cstr(w, "alias");
    tf_node__write_alias(l->node, e->to_pk, w);
    tf_proto_mp_write_cstr(w, "type");
    tf_proto_mp_write_cstr(w, msg_type_name(e->type));
    tf_proto_mp_write_cstr(w, "attempts");
    tf_proto_mp_write_uint(w, e->attempts);
    tf_proto_mp_write_cstr(w, "next_try");
    tf_proto_mp_write_uint(w, e->next_try_ms);
    tf_proto_mp_write_cstr(w, "created");
    tf_proto_mp_write_uint(w, e->created);
    tf_proto_mp_write_cstr(w, "expires");
    tf_proto_mp_write_uint(w, e->expires);
    tf_proto_mp_write_cstr(w, "last_error");
    tf_proto_mp_write_cstr_or_nil(w, e->last_error);
    l->n++;
}

static int outbox_list_cb(const struct tf_node_outbox_entry *e, void *arg)
{
    struct outbox_list *l = arg;
    if (tf_node_delivery_acked(l->node->delivery, e->msg_id))
        return 0; /* ackdefer: acknowledged, its delete waits for a commit */
    switch (l->page->from) {
    case PAGE_BEFORE:
        if (outbox_cmp(e, l) >= 0)
            return 1;
        /* Keep what the listing shows: not the envelope or body, which the
         * store frees after this call. */
        struct tf_node_outbox_entry *slot = &l->ring[l->seen++ % l->page->limit];
        *slot = *e;
        slot->envelope = slot->body = (struct tf_proto_buf){0};
        return 0;
    case PAGE_AFTER:
        if (outbox_cmp(e, l) <= 0)
            return 0;
        /* fall through */
    case PAGE_FIRST:
        outbox_item(l, e);
        return l->n == l->page->limit ? 1 : 0;
    }
    return 1;
}

/* The cursor of outbox.list: the msg id (32 hex digits) of an entry still
 * queued, whose place in the order is looked up now. */
static int outbox_cursor(struct outbox_list *l, char *why, size_t why_cap)
{
    const char *cursor = l->page->cursor;
    const char *key = l->page->from == PAGE_AFTER ? "after" : "before";
    size_t got = 0;
    if (strlen(cursor) != 32 ||
        sodium_hex2bin(l->cur_id, sizeof l->cur_id, cursor, 32, NULL, &got, NULL) != 0 ||
        got != sizeof l->cur_id) {
        WHY("argument '%s' must be an outbox msg_id (32 hex digits)", key);
        return TF_E_BAD_VALUE;
    }
    struct tf_node_outbox_entry e;
    int rc = tf_node_store_outbox_get(l->node->store, l->cur_id, &e);
    if (rc == TF_OK && tf_node_delivery_acked(l->node->delivery, l->cur_id)) {
        tf_node_outbox_entry_deinit(&e); /* ackdefer: delivered already */
        rc = TF_E_NOT_FOUND;
    }
    if (rc == TF_E_NOT_FOUND) {
        WHY("%s (argument '%s') is no longer in the outbox (delivered, refused or expired): "
            "list again from the start",
            cursor, key);
        return rc;
    }
    if (rc != TF_OK) {
        WHY("cannot read the outbox: %s", tf_strerror(rc));
        return rc;
    }
    l->cur_due = e.next_try_ms;
    tf_node_outbox_entry_deinit(&e);
    return TF_OK;
}

static int verb_outbox_list(struct tf_node *node, const msgpack_object *args,
                            struct tf_proto_mp_writer *w, char *why, size_t why_cap)
{
    struct page page;
    struct outbox_list l = {.node = node, .page = &page};
    int rc = page_arg(args, &page, why, why_cap);
    if (rc != TF_OK)
        return rc;
    if (page.from != PAGE_FIRST && (rc = outbox_cursor(&l, why, why_cap)) != TF_OK)
        return rc;
    if (page.from == PAGE_BEFORE && (l.ring = calloc(page.limit, sizeof *l.ring)) == NULL)
        return TF_E_NOMEM;
    tf_proto_mp_writer_init(&l.items);
    /* The due walk gives the soonest first. */
    rc = tf_node_store_outbox_due(node->store, UINT64_MAX, SIZE_MAX, outbox_list_cb, &l);
    if (rc == 1)
        rc = TF_OK;
    if (rc == TF_OK && page.from == PAGE_BEFORE) {
        size_t n = l.seen < page.limit ? l.seen : page.limit;
        for (size_t i = l.seen - n; i < l.seen; i++)
            outbox_item(&l, &l.ring[i % page.limit]);
    }
    free(l.ring);
    if (rc != TF_OK) {
        tf_proto_mp_writer_deinit(&l.items);
        WHY("cannot read the outbox: %s", tf_strerror(rc));
        return rc;
    }
    return write_collected(w, &l.items, l.n);
}

typedef int verb_fn(struct tf_node *node, const msgpack_object *args, struct tf_proto_mp_writer *w,
                    char *why, size_t why_cap);

static const struct {
    const char *name;
    verb_fn *fn;
} VERBS[] = {
    {"status", verb_status},
    {"contact.add", verb_contact_add},
    {"contact.list", verb_contact_list},
    {"contact.show", verb_contact_show},
    {"contact.set", verb_contact_set},
    {"contact.rm", verb_contact_rm},
    {"message.send", verb_message_send},
    {"message.list", verb_message_list},
    {"outbox.list", verb_outbox_list},
};

int tf_node_verbs_run(struct tf_node *node, struct tf_node_ctl_request *req, const char *verb,
                      size_t verb_len, const msgpack_object *args, struct tf_proto_mp_writer *w,
                      char *why, size_t why_cap)
{
    if (verb_len == 4 && memcmp(verb, "ping", 4) == 0) {
        struct tf_node_contact c = {0};
        int rc = find_contact(node, args, &c, why, why_cap);
        if (rc == TF_OK)
            rc = tf_node_ping_start(node, req, &c, why, why_cap);
        tf_node_contact_deinit(&c);
        return rc;
    }
    for (size_t i = 0; i < sizeof VERBS / sizeof VERBS[0]; i++)
        if (strlen(VERBS[i].name) == verb_len && memcmp(VERBS[i].name, verb, verb_len) == 0)
            return VERBS[i].fn(node, args, w, why, why_cap);
    bool handled;
    int rc = tf_node_intro_verb(node, verb, verb_len, args, w, why, why_cap, &handled);
    if (handled)
        return rc;
    rc = tf_node_policy_verb(node, verb, verb_len, args, w, why, why_cap, &handled);
    if (handled)
        return rc;
    /* requests */
    rc = tf_node_request_verb(node, verb, verb_len, args, w, why, why_cap, &handled);
    if (handled)
        return rc;
    rc = tf_node_profile_verb(node, verb, verb_len, args, w, why, why_cap, &handled);
    if (handled)
        return rc;
    rc = tf_node_mailbox_verb(node, verb, verb_len, args, w, why, why_cap, &handled);
    if (handled)
        return rc;
    char esc[80];
    WHY("unknown verb '%s'", tf_node_log_escape(verb, verb_len, esc, sizeof esc));
    return TF_E_UNKNOWN_VERB;
}
