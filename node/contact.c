/* SPDX-License-Identifier: MIT */
#include "node/contact.h"

#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "proto/statement.h"

/* The stored record is a msgpack array of this many fields (node/contact.h). */
#define RECORD_FIELDS 9

const char *tf_node_trust_name(enum tf_node_trust trust)
{
    switch (trust) {
    case TF_NODE_TRUST_NONE:
        return "none";
    case TF_NODE_TRUST_ACQUAINTANCE:
        return "acquaintance";
    case TF_NODE_TRUST_KNOWN:
        return "known";
    case TF_NODE_TRUST_CLOSE:
        return "close";
    }
    return "invalid";
}

int tf_node_trust_parse(const char *s, enum tf_node_trust *out)
{
    for (int t = TF_NODE_TRUST_NONE; t <= TF_NODE_TRUST_CLOSE; t++) {
        if (strcmp(s, tf_node_trust_name((enum tf_node_trust)t)) == 0) {
            *out = (enum tf_node_trust)t;
            return TF_OK;
        }
    }
    return TF_E_BAD_VALUE;
}

static bool is_alnum(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
}

bool tf_node_alias_is_valid(const char *s)
{
    size_t len = strnlen(s, TF_NODE_ALIAS_MAX + 1);
    if (len < 1 || len > TF_NODE_ALIAS_MAX || !is_alnum(s[0]))
        return false;
    /* Text ids are case-insensitive, so "TF1..." would read as one too. */
    if (len >= 3 && (s[0] == 't' || s[0] == 'T') && (s[1] == 'f' || s[1] == 'F') && s[2] == '1')
        return false;
    for (size_t i = 1; i < len; i++)
        if (!is_alnum(s[i]) && s[i] != '.' && s[i] != '_' && s[i] != '-')
            return false;
    return true;
}

/* Decodes the body of a signed card without checking its signature, and
 * checks that it names pk.  The views in *fields point into card. */
static int card_fields(const uint8_t pk[static TF_PROTO_KEY_LEN], const uint8_t *card, size_t len,
                       struct tf_proto_card *fields)
{
    struct tf_proto_statement st;
    int rc;
    if (len > TF_PROTO_CARD_SIGNED_MAX)
        return TF_E_TOO_LONG;
    if ((rc = tf_proto_statement_parse(card, len, &st)) != TF_OK ||
        (rc = tf_proto_card_decode_body(st.body.ptr, st.body.len, fields)) != TF_OK)
        return rc;
    return sodium_memcmp(fields->sign_pk, pk, TF_PROTO_KEY_LEN) == 0 ? TF_OK : TF_E_KEY_MISMATCH;
}

/* Gives c its own copy of a signed card naming pk, with c->fields viewing
 * that copy (never the caller's bytes, which may be LMDB memory or another
 * contact's card).  On failure c->card and c->fields are left empty. */
static int own_card(struct tf_node_contact *c, const uint8_t pk[static TF_PROTO_KEY_LEN],
                    const uint8_t *card, size_t len)
{
    uint8_t *copy;
    int rc;
    if (len == 0 || len > TF_PROTO_CARD_SIGNED_MAX)
        return TF_E_BAD_LENGTH;
    if ((copy = malloc(len)) == NULL)
        return TF_E_NOMEM;
    memcpy(copy, card, len);
    if ((rc = card_fields(pk, copy, len, &c->fields)) != TF_OK) {
        free(copy);
        memset(&c->fields, 0, sizeof c->fields);
        return rc;
    }
    memcpy(c->pk, pk, TF_PROTO_KEY_LEN);
    c->card.data = copy;
    c->card.len = len;
    return TF_OK;
}

int tf_node_contact_from_card(struct tf_node_contact *c, const uint8_t *card, size_t len)
{
    struct tf_proto_card fields;
    memset(c, 0, sizeof *c);
    int rc = tf_proto_card_verify(card, len, &fields);
    if (rc != TF_OK)
        return rc;
    return own_card(c, fields.sign_pk, card, len);
}

int tf_node_contact_from_verified_card(struct tf_node_contact *c, const uint8_t *card, size_t len)
{
    struct tf_proto_card fields;
    memset(c, 0, sizeof *c);
    int rc = tf_proto_card_verify_known(card, len, (struct tf_proto_known){card, len}, &fields);
    if (rc != TF_OK)
        return rc;
    return own_card(c, fields.sign_pk, card, len);
}

/* A NUL-terminated string of at most max bytes in a buffer of max + 1. */
static bool fits(const char *s, size_t max)
{
    return strnlen(s, max + 1) <= max;
}

/* Checks everything the decoder will check, so that every record the store
 * writes can be read back. */
static int check_contact(const struct tf_node_contact *c)
{
    struct tf_proto_card fields;
    int rc = card_fields(c->pk, c->card.data, c->card.len, &fields);
    if (rc != TF_OK)
        return rc;
    if ((c->alias[0] != '\0' && !tf_node_alias_is_valid(c->alias)) ||
        !fits(c->alias, TF_NODE_ALIAS_MAX) || (unsigned)c->trust > TF_NODE_TRUST_CLOSE ||
        c->n_tags > TF_NODE_TAGS_MAX)
        return TF_E_BAD_VALUE;
    for (size_t i = 0; i < c->n_tags; i++)
        if (!fits(c->tags[i], TF_PROTO_TAG_MAX) ||
            !tf_proto_tag_is_valid((const uint8_t *)c->tags[i], strlen(c->tags[i])))
            return TF_E_BAD_VALUE;
    return TF_OK;
}

static void write_opt_key(struct tf_proto_mp_writer *w, bool present, const uint8_t *key)
{
    if (present)
        tf_proto_mp_write_bin(w, key, TF_PROTO_KEY_LEN);
    else
        tf_proto_mp_write_nil(w);
}

int tf_node_contact_encode(const struct tf_node_contact *c, struct tf_proto_buf *out)
{
    struct tf_proto_mp_writer w;
    int rc = check_contact(c);
    if (rc != TF_OK)
        return rc;
    tf_proto_mp_writer_init(&w);
    tf_proto_mp_write_array(&w, RECORD_FIELDS);
    tf_proto_mp_write_bin(&w, c->card.data, c->card.len);
    tf_proto_mp_write_cstr(&w, c->alias);
    tf_proto_mp_write_uint(&w, (uint64_t)c->trust);
    tf_proto_mp_write_array(&w, (uint32_t)c->n_tags);
    for (size_t i = 0; i < c->n_tags; i++)
        tf_proto_mp_write_cstr(&w, c->tags[i]);
    write_opt_key(&w, c->has_introducer, c->introduced_by);
    write_opt_key(&w, c->has_introducer, c->intro);
    tf_proto_mp_write_uint(&w, c->added);
    tf_proto_mp_write_uint(&w, c->updated);
    tf_proto_mp_write_bool(&w, c->blocked);
    return tf_proto_mp_writer_finish(&w, out);
}

/* Reads bin 32 | nil. */
static int read_opt_key(struct tf_proto_mp_reader *r, uint8_t key[static TF_PROTO_KEY_LEN],
                        bool *present)
{
    *present = !tf_proto_mp_peek_nil(r);
    return *present ? tf_proto_mp_read_bin_fixed(r, key, TF_PROTO_KEY_LEN)
                    : tf_proto_mp_read_nil(r);
}

/* Reads a str of min..max bytes into a NUL-terminated buffer of max + 1 (a
 * LINE str holds no NUL, so the C string is the whole value). */
static int read_cstr(struct tf_proto_mp_reader *r, size_t min, size_t max, char *dst)
{
    struct tf_proto_bytes s;
    int rc = tf_proto_mp_read_str(r, min, max, TF_PROTO_TEXT_LINE, &s);
    if (rc != TF_OK)
        return rc;
    if (s.len > 0)
        memcpy(dst, s.ptr, s.len);
    dst[s.len] = '\0';
    return TF_OK;
}

static int decode_record(const uint8_t pk[static TF_PROTO_KEY_LEN], const uint8_t *rec, size_t len,
                         struct tf_node_contact *c)
{
    struct tf_proto_mp_reader r;
    struct tf_proto_bytes card;
    uint64_t trust;
    uint32_t n_tags;
    bool has_intro;
    int rc;
    tf_proto_mp_reader_init(&r, rec, len);
    if ((rc = tf_proto_mp_read_array_exact(&r, RECORD_FIELDS)) != TF_OK ||
        (rc = tf_proto_mp_read_bin(&r, 1, TF_PROTO_CARD_SIGNED_MAX, &card)) != TF_OK ||
        (rc = read_cstr(&r, 0, TF_NODE_ALIAS_MAX, c->alias)) != TF_OK ||
        (rc = tf_proto_mp_read_uint(&r, &trust)) != TF_OK ||
        (rc = tf_proto_mp_read_array(&r, TF_NODE_TAGS_MAX, &n_tags)) != TF_OK)
        return rc;
    if ((c->alias[0] != '\0' && !tf_node_alias_is_valid(c->alias)) || trust > TF_NODE_TRUST_CLOSE)
        return TF_E_BAD_VALUE;
    c->trust = (enum tf_node_trust)trust;
    for (c->n_tags = 0; c->n_tags < n_tags; c->n_tags++) {
        char *tag = c->tags[c->n_tags];
        if ((rc = read_cstr(&r, 1, TF_PROTO_TAG_MAX, tag)) != TF_OK)
            return rc;
        if (!tf_proto_tag_is_valid((const uint8_t *)tag, strlen(tag)))
            return TF_E_BAD_VALUE;
    }
    if ((rc = read_opt_key(&r, c->introduced_by, &c->has_introducer)) != TF_OK ||
        (rc = read_opt_key(&r, c->intro, &has_intro)) != TF_OK ||
        (rc = tf_proto_mp_read_uint(&r, &c->added)) != TF_OK ||
        (rc = tf_proto_mp_read_uint(&r, &c->updated)) != TF_OK ||
        (rc = tf_proto_mp_read_bool(&r, &c->blocked)) != TF_OK ||
        (rc = tf_proto_mp_read_end(&r)) != TF_OK)
        return rc;
    /* The connector and the intro id come together or not at all. */
    if (has_intro != c->has_introducer)
        return TF_E_BAD_VALUE;
    /* Last, so that nothing is allocated for a record that fails above. */
    return own_card(c, pk, card.ptr, card.len);
}

int tf_node_contact_decode(const uint8_t pk[static TF_PROTO_KEY_LEN], const uint8_t *rec,
                           size_t len, struct tf_node_contact *c)
{
    memset(c, 0, sizeof *c);
    if (decode_record(pk, rec, len, c) != TF_OK) {
        tf_node_contact_deinit(c);
        return TF_E_CORRUPT;
    }
    return TF_OK;
}

int tf_node_contact_copy(struct tf_node_contact *dst, const struct tf_node_contact *src)
{
    struct tf_node_contact tmp = *src;
    memset(&tmp.card, 0, sizeof tmp.card);
    memset(&tmp.fields, 0, sizeof tmp.fields);
    /* Decoding the copy, rather than copying src->fields, makes the views
     * point into dst's own bytes. */
    if (src->card.data != NULL) {
        int rc = own_card(&tmp, src->pk, src->card.data, src->card.len);
        if (rc != TF_OK)
            return rc;
    }
    *dst = tmp;
    return TF_OK;
}

void tf_node_contact_deinit(struct tf_node_contact *c)
{
    tf_proto_buf_free(&c->card);
    memset(c, 0, sizeof *c);
}
