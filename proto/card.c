/* SPDX-License-Identifier: MIT */
#include "proto/card.h"

#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "proto/statement.h"

enum card_key {
    KEY_VERSION = 1,
    KEY_SIGN_PK,
    KEY_NOISE_PK,
    KEY_BOX_PK,
    KEY_NAME,
    KEY_ADDRS,
    KEY_OFFERS,
    KEY_SEEKS,
    KEY_ISSUED,
    KEY_SEQ,
    KEY_MAILBOXES,
    KEY_COUNT = KEY_SEQ, /* the keys every card has; KEY_MAILBOXES is optional */
};

bool tf_proto_tag_is_valid(const uint8_t *s, size_t len)
{
    if (len < 1 || len > TF_PROTO_TAG_MAX || s[0] == '-' || s[len - 1] == '-')
        return false;
    for (size_t i = 0; i < len; i++) {
        uint8_t c = s[i];
        if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-'))
            return false;
    }
    return true;
}

static bool port_is_valid(const uint8_t *s, size_t len)
{
    if (len < 1 || len > 5 || s[0] == '0')
        return false;
    uint32_t port = 0;
    for (size_t i = 0; i < len; i++) {
        if (s[i] < '0' || s[i] > '9')
            return false;
        port = port * 10 + (uint32_t)(s[i] - '0');
    }
    return port >= 1 && port <= 65535;
}

bool tf_proto_addr_is_valid(const uint8_t *s, size_t len)
{
    if (len < 3 || len > TF_PROTO_CARD_ADDR_MAX)
        return false;
    size_t colon = len;
    while (colon > 0 && s[colon - 1] != ':')
        colon--;
    if (colon < 2 || !port_is_valid(s + colon, len - colon))
        return false;
    size_t hlen = colon - 1; /* host is s[0..hlen) */
    if (s[0] == '[') {
        if (hlen < 3 || s[hlen - 1] != ']')
            return false;
        for (size_t i = 1; i + 1 < hlen; i++) {
            uint8_t c = s[i];
            if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F') ||
                  c == ':' || c == '.'))
                return false;
        }
        return true;
    }
    for (size_t i = 0; i < hlen; i++) {
        uint8_t c = s[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '-' || c == '.'))
            return false;
    }
    return s[0] != '-' && s[0] != '.';
}

/* A card's mailboxes are other identities, each named once. */
static int check_mailbox_keys(const struct tf_proto_card *c)
{
    for (size_t i = 0; i < c->n_mailboxes; i++) {
        if (sodium_memcmp(c->mailboxes[i].sign_pk, c->sign_pk, TF_PROTO_KEY_LEN) == 0)
            return TF_E_BAD_VALUE;
        for (size_t j = 0; j < i; j++)
            if (sodium_memcmp(c->mailboxes[i].sign_pk, c->mailboxes[j].sign_pk, TF_PROTO_KEY_LEN) ==
                0)
                return TF_E_BAD_VALUE;
    }
    return TF_OK;
}

static int check_fields(const struct tf_proto_card *c)
{
    if (c->name.len < 1 || c->name.len > TF_PROTO_CARD_NAME_MAX ||
        !tf_proto_utf8_is_valid(c->name.ptr, c->name.len))
        return TF_E_BAD_VALUE;
    for (size_t i = 0; i < c->name.len; i++)
        if (c->name.ptr[i] < 0x20 || c->name.ptr[i] == 0x7f)
            return TF_E_BAD_TEXT;
    if (c->n_addrs > TF_PROTO_CARD_ADDRS_MAX || c->n_offers > TF_PROTO_CARD_TAGS_MAX ||
        c->n_seeks > TF_PROTO_CARD_TAGS_MAX)
        return TF_E_TOO_LONG;
    for (size_t i = 0; i < c->n_addrs; i++)
        if (!tf_proto_addr_is_valid(c->addrs[i].ptr, c->addrs[i].len))
            return TF_E_BAD_VALUE;
    for (size_t i = 0; i < c->n_offers; i++)
        if (!tf_proto_tag_is_valid(c->offers[i].ptr, c->offers[i].len))
            return TF_E_BAD_VALUE;
    for (size_t i = 0; i < c->n_seeks; i++)
        if (!tf_proto_tag_is_valid(c->seeks[i].ptr, c->seeks[i].len))
            return TF_E_BAD_VALUE;
    if (c->n_mailboxes > TF_PROTO_CARD_MAILBOXES_MAX)
        return TF_E_TOO_LONG;
    for (size_t i = 0; i < c->n_mailboxes; i++) {
        const struct tf_proto_card_mailbox *m = &c->mailboxes[i];
        if (m->n_addrs < 1)
            return TF_E_BAD_LENGTH;
        if (m->n_addrs > TF_PROTO_CARD_MAILBOX_ADDRS_MAX)
            return TF_E_TOO_LONG;
        for (size_t j = 0; j < m->n_addrs; j++)
            if (!tf_proto_addr_is_valid(m->addrs[j].ptr, m->addrs[j].len))
                return TF_E_BAD_VALUE;
    }
    return check_mailbox_keys(c);
}

static void write_strs(struct tf_proto_mp_writer *w, const struct tf_proto_bytes *v, size_t n)
{
    tf_proto_mp_write_array(w, (uint32_t)n);
    for (size_t i = 0; i < n; i++)
        tf_proto_mp_write_text(w, v[i]);
}

uint64_t tf_proto_card_next_seq(uint64_t prev, uint64_t now_ms)
{
    return prev + 1 > now_ms ? prev + 1 : now_ms;
}

int tf_proto_card_sign(const struct tf_proto_identity *id, const struct tf_proto_card *card,
                       struct tf_proto_buf *out)
{
    if (sodium_memcmp(card->sign_pk, id->sign_pk, TF_PROTO_KEY_LEN) != 0 ||
        sodium_memcmp(card->noise_pk, id->noise_pk, TF_PROTO_KEY_LEN) != 0 ||
        sodium_memcmp(card->box_pk, id->box_pk, TF_PROTO_KEY_LEN) != 0)
        return TF_E_KEY_MISMATCH;
    int rc = check_fields(card);
    if (rc != TF_OK)
        return rc;
    struct tf_proto_mp_writer w;
    tf_proto_mp_writer_init(&w);
    tf_proto_mp_write_map(&w, (uint32_t)KEY_COUNT + (card->n_mailboxes > 0 ? 1u : 0u));
    tf_proto_mp_write_uint(&w, KEY_VERSION);
    tf_proto_mp_write_uint(&w, TF_PROTO_CARD_VERSION);
    tf_proto_mp_write_uint(&w, KEY_SIGN_PK);
    tf_proto_mp_write_bin(&w, card->sign_pk, TF_PROTO_KEY_LEN);
    tf_proto_mp_write_uint(&w, KEY_NOISE_PK);
    tf_proto_mp_write_bin(&w, card->noise_pk, TF_PROTO_KEY_LEN);
    tf_proto_mp_write_uint(&w, KEY_BOX_PK);
    tf_proto_mp_write_bin(&w, card->box_pk, TF_PROTO_KEY_LEN);
    tf_proto_mp_write_uint(&w, KEY_NAME);
    tf_proto_mp_write_text(&w, card->name);
    tf_proto_mp_write_uint(&w, KEY_ADDRS);
    write_strs(&w, card->addrs, card->n_addrs);
    tf_proto_mp_write_uint(&w, KEY_OFFERS);
    write_strs(&w, card->offers, card->n_offers);
    tf_proto_mp_write_uint(&w, KEY_SEEKS);
    write_strs(&w, card->seeks, card->n_seeks);
    tf_proto_mp_write_uint(&w, KEY_ISSUED);
    tf_proto_mp_write_uint(&w, card->issued);
    tf_proto_mp_write_uint(&w, KEY_SEQ);
    tf_proto_mp_write_uint(&w, card->seq);
    if (card->n_mailboxes > 0) {
        tf_proto_mp_write_uint(&w, KEY_MAILBOXES);
        tf_proto_mp_write_array(&w, (uint32_t)card->n_mailboxes);
        for (size_t i = 0; i < card->n_mailboxes; i++) {
            tf_proto_mp_write_array(&w, 2);
            tf_proto_mp_write_bin(&w, card->mailboxes[i].sign_pk, TF_PROTO_KEY_LEN);
            write_strs(&w, card->mailboxes[i].addrs, card->mailboxes[i].n_addrs);
        }
    }
    struct tf_proto_buf body;
    if ((rc = tf_proto_mp_writer_finish(&w, &body)) != TF_OK)
        return rc;
    rc = tf_proto_statement_sign(id, TF_PROTO_DOMAIN_CARD, body.data, body.len, out);
    tf_proto_buf_free(&body);
    if (rc == TF_OK && out->len > TF_PROTO_CARD_SIGNED_MAX) {
        tf_proto_buf_free(out);
        return TF_E_TOO_LONG;
    }
    return rc;
}

/* Reads an array of validated strings (tags or addresses), at least min_n. */
static int read_strs(struct tf_proto_mp_reader *r, size_t max_n, size_t max_len, bool tags,
                     struct tf_proto_bytes *dst, size_t *n, size_t min_n)
{
    uint32_t count;
    int rc = tf_proto_mp_read_array(r, (uint32_t)max_n, &count);
    if (rc != TF_OK)
        return rc;
    if (count < min_n)
        return TF_E_BAD_LENGTH;
    for (uint32_t i = 0; i < count; i++) {
        if ((rc = tf_proto_mp_read_str(r, 1, max_len, TF_PROTO_TEXT_LINE, &dst[i])) != TF_OK)
            return rc;
        bool ok = tags ? tf_proto_tag_is_valid(dst[i].ptr, dst[i].len)
                       : tf_proto_addr_is_valid(dst[i].ptr, dst[i].len);
        if (!ok)
            return TF_E_BAD_VALUE;
    }
    *n = count;
    return TF_OK;
}

/* Key 11: array (1..3) of [sign_pk bin 32, addrs array (1..2)]. */
static int read_mailboxes(struct tf_proto_mp_reader *r, struct tf_proto_card *c)
{
    uint32_t count;
    int rc = tf_proto_mp_read_array(r, TF_PROTO_CARD_MAILBOXES_MAX, &count);
    if (rc != TF_OK)
        return rc;
    if (count < 1)
        return TF_E_BAD_LENGTH; /* an empty list is written as no key 11 */
    for (uint32_t i = 0; i < count; i++) {
        struct tf_proto_card_mailbox *m = &c->mailboxes[i];
        if ((rc = tf_proto_mp_read_array_exact(r, 2)) != TF_OK ||
            (rc = tf_proto_mp_read_bin_fixed(r, m->sign_pk, TF_PROTO_KEY_LEN)) != TF_OK ||
            (rc = read_strs(r, TF_PROTO_CARD_MAILBOX_ADDRS_MAX, TF_PROTO_CARD_ADDR_MAX, false,
                            m->addrs, &m->n_addrs, 1)) != TF_OK)
            return rc;
    }
    c->n_mailboxes = count;
    return check_mailbox_keys(c);
}

int tf_proto_card_mailbox_index(const struct tf_proto_card *card,
                                const uint8_t pk[static TF_PROTO_KEY_LEN])
{
    for (size_t i = 0; i < card->n_mailboxes; i++)
        if (sodium_memcmp(card->mailboxes[i].sign_pk, pk, TF_PROTO_KEY_LEN) == 0)
            return (int)i;
    return -1;
}

int tf_proto_card_decode_body(const uint8_t *body, size_t len, struct tf_proto_card *out)
{
    struct tf_proto_mp_reader r;
    struct tf_proto_card c;
    uint32_t n;
    uint64_t version;
    int64_t prev = -1;
    int rc;
    memset(&c, 0, sizeof c);
    tf_proto_mp_reader_init(&r, body, len);
    /* Any other entry count is E_COUNT (the count was checked against the
     * bytes left, so no bound is needed here). */
    if ((rc = tf_proto_mp_read_map(&r, UINT32_MAX, &n)) != TF_OK)
        return rc;
    if (n != KEY_COUNT && n != KEY_COUNT + 1)
        return TF_E_COUNT;
#define KEY(k)                                                                                     \
    if ((rc = tf_proto_mp_read_key(&r, &prev, (k))) != TF_OK)                                      \
        return rc;
    KEY(KEY_VERSION)
    if ((rc = tf_proto_mp_read_uint(&r, &version)) != TF_OK)
        return rc;
    if (version != TF_PROTO_CARD_VERSION)
        return TF_E_VERSION;
    KEY(KEY_SIGN_PK)
    if ((rc = tf_proto_mp_read_bin_fixed(&r, c.sign_pk, TF_PROTO_KEY_LEN)) != TF_OK)
        return rc;
    KEY(KEY_NOISE_PK)
    if ((rc = tf_proto_mp_read_bin_fixed(&r, c.noise_pk, TF_PROTO_KEY_LEN)) != TF_OK)
        return rc;
    KEY(KEY_BOX_PK)
    if ((rc = tf_proto_mp_read_bin_fixed(&r, c.box_pk, TF_PROTO_KEY_LEN)) != TF_OK)
        return rc;
    KEY(KEY_NAME)
    if ((rc = tf_proto_mp_read_str(&r, 1, TF_PROTO_CARD_NAME_MAX, TF_PROTO_TEXT_LINE, &c.name)) !=
        TF_OK)
        return rc;
    KEY(KEY_ADDRS)
    if ((rc = read_strs(&r, TF_PROTO_CARD_ADDRS_MAX, TF_PROTO_CARD_ADDR_MAX, false, c.addrs,
                        &c.n_addrs, 0)) != TF_OK)
        return rc;
    KEY(KEY_OFFERS)
    if ((rc = read_strs(&r, TF_PROTO_CARD_TAGS_MAX, TF_PROTO_TAG_MAX, true, c.offers, &c.n_offers,
                        0)) != TF_OK)
        return rc;
    KEY(KEY_SEEKS)
    if ((rc = read_strs(&r, TF_PROTO_CARD_TAGS_MAX, TF_PROTO_TAG_MAX, true, c.seeks, &c.n_seeks,
                        0)) != TF_OK)
        return rc;
    KEY(KEY_ISSUED)
    if ((rc = tf_proto_mp_read_uint(&r, &c.issued)) != TF_OK)
        return rc;
    KEY(KEY_SEQ)
    if ((rc = tf_proto_mp_read_uint(&r, &c.seq)) != TF_OK)
        return rc;
    if (n == KEY_COUNT + 1) {
        KEY(KEY_MAILBOXES)
        if ((rc = read_mailboxes(&r, &c)) != TF_OK)
            return rc;
    }
#undef KEY
    if ((rc = tf_proto_mp_read_end(&r)) != TF_OK)
        return rc;
    *out = c;
    return TF_OK;
}

/* Signed statements are public (whoever sends one knows it, and the known
 * copy came from the same signer), so the compare need not take constant
 * time; libc's memcmp is several times faster on a statement's kilobytes. */
bool tf_proto_known_matches(struct tf_proto_known known, const uint8_t *buf, size_t len)
{
    return known.ptr != NULL && known.len == len && len > 0 && memcmp(known.ptr, buf, len) == 0;
}

int tf_proto_card_verify_known(const uint8_t *buf, size_t len, struct tf_proto_known known,
                               struct tf_proto_card *out)
{
    struct tf_proto_statement st;
    struct tf_proto_card c;
    int rc;
    if (len > TF_PROTO_CARD_SIGNED_MAX)
        return TF_E_TOO_LONG;
    if ((rc = tf_proto_statement_parse(buf, len, &st)) != TF_OK)
        return rc;
    if ((rc = tf_proto_card_decode_body(st.body.ptr, st.body.len, &c)) != TF_OK)
        return rc;
    if (!tf_proto_known_matches(known, buf, len) &&
        (rc = tf_proto_statement_verify(&st, TF_PROTO_DOMAIN_CARD, c.sign_pk)) != TF_OK)
        return rc;
    *out = c;
    return TF_OK;
}

int tf_proto_card_verify(const uint8_t *buf, size_t len, struct tf_proto_card *out)
{
    return tf_proto_card_verify_known(buf, len, (struct tf_proto_known){NULL, 0}, out);
}

int tf_proto_card_to_text(const uint8_t *signed_card, size_t len, char **out)
{
    const int variant = sodium_base64_VARIANT_URLSAFE_NO_PADDING;
    size_t prefix = strlen(TF_PROTO_CARD_TEXT_PREFIX);
    if (len > TF_PROTO_CARD_SIGNED_MAX)
        return TF_E_TOO_LONG;
    size_t b64 = sodium_base64_encoded_len(len, variant);
    char *s = malloc(prefix + b64);
    if (s == NULL)
        return TF_E_NOMEM;
    memcpy(s, TF_PROTO_CARD_TEXT_PREFIX, prefix);
    sodium_bin2base64(s + prefix, b64, signed_card, len, variant);
    *out = s;
    return TF_OK;
}

static bool is_space(char c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

int tf_proto_card_from_text(const char *text, size_t len, struct tf_proto_buf *signed_out,
                            struct tf_proto_card *card)
{
    size_t prefix = strlen(TF_PROTO_CARD_TEXT_PREFIX);
    while (len > 0 && is_space(text[0])) {
        text++;
        len--;
    }
    while (len > 0 && is_space(text[len - 1]))
        len--;
    if (len < prefix || memcmp(text, TF_PROTO_CARD_TEXT_PREFIX, prefix) != 0)
        return TF_E_BAD_PREFIX;
    text += prefix;
    len -= prefix;
    /* Unpadded base64 of n bytes is ceil(4n / 3) characters; refuse anything
     * longer than that of the largest card before allocating. */
    if (len > (TF_PROTO_CARD_SIGNED_MAX * 4 + 2) / 3)
        return TF_E_TOO_LONG;
    /* libsodium 1.0.18's decoder takes some bytes >= 0x80 for base64 digits
     * (e.g. "QUJDRA\xc3\xa9" decodes to 6 bytes), so check the alphabet here. */
    for (size_t i = 0; i < len; i++) {
        char ch = text[i];
        if (!((ch >= 'A' && ch <= 'Z') || (ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') ||
              ch == '-' || ch == '_'))
            return TF_E_BAD_ENCODING;
    }
    size_t cap = len / 4 * 3 + 3;
    uint8_t *bin = malloc(cap);
    if (bin == NULL)
        return TF_E_NOMEM;
    size_t bin_len;
    const char *end;
    if (sodium_base642bin(bin, cap, text, len, NULL, &bin_len, &end,
                          sodium_base64_VARIANT_URLSAFE_NO_PADDING) != 0 ||
        end != text + len) {
        free(bin);
        return TF_E_BAD_ENCODING;
    }
    int rc = tf_proto_card_verify(bin, bin_len, card);
    if (rc != TF_OK) {
        free(bin);
        return rc;
    }
    signed_out->data = bin;
    signed_out->len = bin_len;
    return TF_OK;
}

int tf_proto_card_supersedes(const struct tf_proto_card *candidate,
                             const struct tf_proto_card *held)
{
    if (sodium_memcmp(candidate->sign_pk, held->sign_pk, TF_PROTO_KEY_LEN) != 0)
        return TF_E_KEY_MISMATCH;
    return candidate->seq > held->seq ? TF_OK : TF_E_STALE;
}
