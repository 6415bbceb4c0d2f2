/* SPDX-License-Identifier: MIT */
/*
 * The owner's own card: `profile` shows it, `profile.set` re-issues it with a
 * higher sequence number and pushes it to every contact as a signed card
 * update; a card update from a contact replaces their card if it is newer.
 */
#include "node/profile.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>
#include <uv.h>

#include "node/contact.h"
#include "node/delivery.h"
#include "node/internal.h"
#include "node/log.h"
#include "node/node.h"
#include "node/store.h"
#include "proto/card.h"
#include "proto/ctl.h"
#include "proto/envelope.h"

#define WHY(...) snprintf(why, why_cap, __VA_ARGS__)
/* How long a card update is retried. */
#define CARD_UPDATE_TTL_S (30u * 86400u)

static void write_views(struct tf_proto_mp_writer *w, const struct tf_proto_bytes *v, size_t n)
{
    tf_proto_mp_write_array(w, (uint32_t)n);
    for (size_t i = 0; i < n; i++)
        tf_proto_mp_write_text(w, v[i]);
}

static int write_profile(struct tf_node *node, struct tf_proto_mp_writer *w)
{
    char tid[TF_PROTO_TEXT_ID_SIZE], *text = NULL;
    const struct tf_proto_card *c = &node->card_fields;
    int rc = tf_proto_card_to_text(node->card.data, node->card.len, &text);
    if (rc != TF_OK)
        return rc;
    tf_proto_text_id_encode(c->sign_pk, tid);
    tf_proto_mp_write_map(w, 9);
    tf_proto_mp_write_cstr(w, "id");
    tf_proto_mp_write_cstr(w, tid);
    tf_proto_mp_write_cstr(w, "name");
    tf_proto_mp_write_text(w, c->name);
    tf_proto_mp_write_cstr(w, "addrs");
    write_views(w, c->addrs, c->n_addrs);
    tf_proto_mp_write_cstr(w, "offers");
    write_views(w, c->offers, c->n_offers);
    tf_proto_mp_write_cstr(w, "seeks");
    write_views(w, c->seeks, c->n_seeks);
    tf_proto_mp_write_cstr(w, "seq");
    tf_proto_mp_write_uint(w, c->seq);
    tf_proto_mp_write_cstr(w, "issued");
    tf_proto_mp_write_uint(w, c->issued);
    tf_proto_mp_write_cstr(w, "listen");
    tf_proto_mp_write_cstr(w, node->listen);
    tf_proto_mp_write_cstr(w, "card");
    tf_proto_mp_write_cstr(w, text);
    free(text);
    return TF_OK;
}

/* Reads an optional array of strings into views (into the request). */
static int list_arg(const msgpack_object *args, const char *key, bool tags,
                    struct tf_proto_bytes *dst, size_t max, size_t *n, bool *present, char *why,
                    size_t why_cap)
{
    const msgpack_object_array *arr;
    int rc = tf_proto_ctl_get_str_array(args, key, &arr);
    *present = rc == TF_OK;
    if (rc == TF_E_NOT_FOUND)
        return TF_OK;
    if (rc != TF_OK) {
        WHY("argument '%s' must be an array of strings", key);
        return TF_E_BAD_REQUEST;
    }
    if (arr->size > max) {
        WHY("at most %zu %s", max, key);
        return TF_E_TOO_LONG;
    }
    for (uint32_t i = 0; i < arr->size; i++) {
        const msgpack_object_str *s = &arr->ptr[i].via.str;
        bool ok = tags ? tf_proto_tag_is_valid((const uint8_t *)s->ptr, s->size)
                       : tf_proto_addr_is_valid((const uint8_t *)s->ptr, s->size);
        if (!ok) {
            char esc[160];
            WHY("'%s' is not a valid %s", tf_node_log_escape(s->ptr, s->size, esc, sizeof esc),
                tags ? "tag (a-z, 0-9, '-')" : "HOST:PORT address");
            return TF_E_BAD_VALUE;
        }
        dst[i].ptr = (const uint8_t *)s->ptr;
        dst[i].len = s->size;
    }
    *n = arr->size;
    return TF_OK;
}

struct push {
    struct tf_node *node;
    int err;
};

/* Queues the new card for contact c.  A blocked contact gets no card
 * updates (issue 12: being blocked must not be noticeable, and a blocked
 * contact should not learn where we moved).  A contact whose outbox budget
 * is full is skipped (logged by delivery): one unreachable contact must not
 * stop the owner from changing the card. */
static int push_cb(const struct tf_node_contact *c, void *arg)
{
    struct push *p = arg;
    uint8_t msg_id[16];
    if (c->blocked)
        return 0;
    uint64_t expires = tf_node_now(p->node) + CARD_UPDATE_TTL_S;
    int rc = tf_node_delivery_enqueue(p->node->delivery, c, TF_PROTO_MSG_TYPE_CARD_UPDATE,
                                      p->node->card.data, p->node->card.len, expires, msg_id);
    if (rc == TF_E_TOO_LONG)
        return 0;
    if (rc != TF_OK) {
        p->err = rc;
        return 1;
    }
    return 0;
}

#define CARD_PUSHED "card_pushed"

/* Queues the own card for every contact and records its sequence number as
 * pushed, in the open transaction. */
static int push_card(struct tf_node *node)
{
    struct push p = {node, TF_OK};
    int rc = tf_node_store_contact_foreach(node->store, push_cb, &p);
    if (rc == TF_OK)
        rc = p.err;
    if (rc != TF_OK)
        return rc;
    uint8_t seq[8];
    for (int i = 0; i < 8; i++)
        seq[i] = (uint8_t)(node->card_fields.seq >> (56 - 8 * i));
    return tf_node_store_meta_put(node->store, CARD_PUSHED, seq, sizeof seq);
}

int tf_node_profile_start(struct tf_node *node)
{
    struct tf_proto_buf b = {0};
    int rc = tf_node_store_meta_get(node->store, CARD_PUSHED, &b);
    if (rc != TF_OK && rc != TF_E_NOT_FOUND)
        return rc;
    uint64_t pushed = 0;
    bool known = rc == TF_OK && b.len == 8;
    for (size_t i = 0; known && i < 8; i++)
        pushed = pushed << 8 | b.data[i];
    tf_proto_buf_free(&b);
    if (known && pushed >= node->card_fields.seq)
        return TF_OK;
    if (!known) {
        /* A store from before card_pushed: its card went out when it was
         * made (profile.set), so only record it. */
        uint8_t seq[8];
        for (int i = 0; i < 8; i++)
            seq[i] = (uint8_t)(node->card_fields.seq >> (56 - 8 * i));
        return tf_node_store_meta_put(node->store, CARD_PUSHED, seq, sizeof seq);
    }
    tf_node_log(TF_NODE_LOG_INFO, "node",
                "card %llu was issued while the node was stopped: pushing it to every contact",
                (unsigned long long)node->card_fields.seq);
    return push_card(node);
}

int tf_node_profile_publish(struct tf_node *node, const struct tf_proto_card *fields_in,
                            const char *listen, char *why, size_t why_cap)
{
    struct tf_proto_card c = *fields_in;
    struct tf_proto_buf card = {0};
    int rc;
    c.issued = tf_node_now(node);
    uv_timeval64_t tv;
    uint64_t now_ms = uv_gettimeofday(&tv) == 0 && tv.tv_sec > 0
                          ? (uint64_t)tv.tv_sec * 1000 + (uint64_t)tv.tv_usec / 1000
                          : 0;
    c.seq = tf_proto_card_next_seq(node->card_fields.seq, now_ms);
    if ((rc = tf_proto_card_sign(&node->id, &c, &card)) != TF_OK) {
        WHY("cannot sign the new card: %s", tf_strerror(rc));
        return rc;
    }
    struct tf_proto_card fields;
    if ((rc = tf_proto_card_verify(card.data, card.len, &fields)) != TF_OK ||
        (rc = tf_node_store_meta_put(node->store, "card", card.data, card.len)) != TF_OK ||
        (listen != NULL &&
         (rc = tf_node_store_meta_put(node->store, "listen", (const uint8_t *)listen,
                                      strlen(listen))) != TF_OK)) {
        tf_proto_buf_free(&card);
        WHY("cannot store the new card: %s", tf_strerror(rc));
        return rc;
    }
    /* From here on the node speaks with the new card. */
    tf_proto_buf_free(&node->card);
    node->card = card;
    node->card_fields = fields;
    if ((rc = push_card(node)) != TF_OK) {
        WHY("cannot queue the card update: %s", tf_strerror(rc));
        return rc;
    }
    return TF_OK;
}

static int verb_set(struct tf_node *node, const msgpack_object *args, struct tf_proto_mp_writer *w,
                    char *why, size_t why_cap)
{
    struct tf_proto_card c = node->card_fields; /* views into node->card */
    const char *name, *listen;
    size_t name_len, listen_len;
    bool has_offers, has_seeks, has_addrs;
    char listen_buf[TF_PROTO_CARD_ADDR_MAX + 1] = "";
    int rc = tf_proto_ctl_get_str(args, "name", &name, &name_len);
    if (rc != TF_OK && rc != TF_E_NOT_FOUND) {
        WHY("argument 'name' must be a string");
        return TF_E_BAD_REQUEST;
    }
    if (rc == TF_OK) {
        if (name_len < 1 || name_len > TF_PROTO_CARD_NAME_MAX ||
            !tf_proto_utf8_is_valid((const uint8_t *)name, name_len)) {
            WHY("a name is 1 to %d bytes of text", TF_PROTO_CARD_NAME_MAX);
            return TF_E_BAD_VALUE;
        }
        c.name.ptr = (const uint8_t *)name;
        c.name.len = name_len;
    }
    if ((rc = list_arg(args, "offers", true, c.offers, TF_PROTO_CARD_TAGS_MAX, &c.n_offers,
                       &has_offers, why, why_cap)) != TF_OK ||
        (rc = list_arg(args, "seeks", true, c.seeks, TF_PROTO_CARD_TAGS_MAX, &c.n_seeks, &has_seeks,
                       why, why_cap)) != TF_OK ||
        (rc = list_arg(args, "advertise", false, c.addrs, TF_PROTO_CARD_ADDRS_MAX, &c.n_addrs,
                       &has_addrs, why, why_cap)) != TF_OK)
        return rc;
    rc = tf_proto_ctl_get_str(args, "listen", &listen, &listen_len);
    if (rc != TF_OK && rc != TF_E_NOT_FOUND) {
        WHY("argument 'listen' must be a string");
        return TF_E_BAD_REQUEST;
    }
    if (rc == TF_OK) {
        if (!tf_proto_addr_is_valid((const uint8_t *)listen, listen_len) ||
            tf_proto_ctl_strcpy(listen_buf, sizeof listen_buf, listen, listen_len) != TF_OK) {
            WHY("listen must be HOST:PORT");
            return TF_E_BAD_VALUE;
        }
    }
    if ((rc = tf_node_profile_publish(node, &c, listen_buf[0] ? listen_buf : NULL, why, why_cap)) !=
        TF_OK)
        return rc;
    if (listen_buf[0])
        tf_node_log(TF_NODE_LOG_INFO, "node", "listen address changes to %s at the next start",
                    listen_buf);
    return write_profile(node, w);
}

int tf_node_profile_verb(struct tf_node *node, const char *verb, size_t verb_len,
                         const msgpack_object *args, struct tf_proto_mp_writer *w, char *why,
                         size_t why_cap, bool *handled)
{
    *handled = true;
    if (verb_len == 12 && memcmp(verb, "profile.show", 12) == 0)
        return write_profile(node, w);
    if (verb_len == 11 && memcmp(verb, "profile.set", 11) == 0)
        return verb_set(node, args, w, why, why_cap);
    *handled = false;
    return TF_E_UNKNOWN_VERB;
}

int tf_node_profile_card_update(struct tf_node *node, const uint8_t from_pk[32],
                                const uint8_t *body, size_t len)
{
    struct tf_proto_card card;
    struct tf_node_contact old, c;
    memset(&old, 0, sizeof old);
    memset(&c, 0, sizeof c);
    char tid[TF_PROTO_TEXT_ID_SIZE];
    tf_proto_text_id_encode(from_pk, tid);
    int rc = tf_proto_card_verify(body, len, &card);
    if (rc == TF_OK && sodium_memcmp(card.sign_pk, from_pk, 32) != 0)
        rc = TF_E_KEY_MISMATCH;
    if (rc != TF_OK) {
        /* Say which check failed (docs/PROTOCOL.md §6), not just "invalid". */
        tf_node_log(TF_NODE_LOG_WARN, "node", "card update from %s refused: %s (%s)", tid,
                    tf_err_name(rc), tf_strerror(rc));
        return TF_PROTO_ACK_REASON_INVALID;
    }
    rc = tf_node_store_contact_get(node->store, from_pk, &old);
    if (rc == TF_E_NOT_FOUND)
        return TF_PROTO_ACK_REASON_REFUSED; /* only contacts' cards are kept */
    if (rc != TF_OK)
        return -1;
    int result = TF_PROTO_ACK_REASON_NONE;
    if (tf_proto_card_supersedes(&card, &old.fields) != TF_OK)
        goto out; /* not newer: nothing to do */
    result = -1;
    if ((rc = tf_node_contact_from_card(&c, body, len)) != TF_OK)
        goto out;
    memcpy(c.alias, old.alias, sizeof c.alias);
    c.trust = old.trust;
    c.n_tags = old.n_tags;
    memcpy(c.tags, old.tags, sizeof c.tags);
    c.has_introducer = old.has_introducer;
    memcpy(c.introduced_by, old.introduced_by, 32);
    memcpy(c.intro, old.intro, 32);
    c.blocked = old.blocked;
    c.added = old.added;
    c.updated = tf_node_now(node);
    if ((rc = tf_node_store_contact_put(node->store, &c)) != TF_OK)
        goto out;
    struct tf_proto_mp_writer w;
    struct tf_proto_buf rec;
    tf_proto_mp_writer_init(&w);
    tf_proto_mp_write_map(&w, 5);
    tf_proto_mp_write_cstr(&w, "time");
    tf_proto_mp_write_uint(&w, c.updated);
    tf_proto_mp_write_cstr(&w, "type");
    tf_proto_mp_write_cstr(&w, "contact.updated");
    tf_proto_mp_write_cstr(&w, "contact");
    tf_proto_mp_write_cstr(&w, tid);
    tf_proto_mp_write_cstr(&w, "name");
    tf_proto_mp_write_text(&w, c.fields.name);
    tf_proto_mp_write_cstr(&w, "seq");
    tf_proto_mp_write_uint(&w, c.fields.seq);
    if ((rc = tf_proto_mp_writer_finish(&w, &rec)) != TF_OK)
        goto out;
    rc = tf_node_event(node, &rec);
    tf_proto_buf_free(&rec);
    if (rc == TF_OK) {
        tf_node_log(TF_NODE_LOG_INFO, "node", "card update from %s: now card %llu", tid,
                    (unsigned long long)c.fields.seq);
        result = TF_PROTO_ACK_REASON_NONE;
    }
out:
    tf_node_contact_deinit(&old);
    tf_node_contact_deinit(&c);
    return result;
}
