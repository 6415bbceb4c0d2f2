/* SPDX-License-Identifier: MIT */
#include "proto/link.h"

#include <assert.h>
#include <string.h>

#include "proto/card.h"
#include "proto/statement.h"

const char *tf_proto_ack_reason_name(uint64_t reason)
{
    switch (reason) {
    case TF_PROTO_ACK_REASON_NONE:
        return "none";
    case TF_PROTO_ACK_REASON_MALFORMED:
        return "malformed envelope";
    case TF_PROTO_ACK_REASON_NOT_FOR_ME:
        return "not for this node";
    case TF_PROTO_ACK_REASON_EXPIRED:
        return "expired";
    case TF_PROTO_ACK_REASON_BAD_SEAL:
        return "does not open";
    case TF_PROTO_ACK_REASON_BAD_SIG:
        return "bad signature";
    case TF_PROTO_ACK_REASON_NOT_PEER:
        return "sender is not the connected peer";
    case TF_PROTO_ACK_REASON_REFUSED:
        return "refused by the recipient";
    case TF_PROTO_ACK_REASON_UNSUPPORTED:
        return "unsupported message type";
    case TF_PROTO_ACK_REASON_INVALID:
        return "invalid content";
    case TF_PROTO_ACK_REASON_NOT_HOSTED:
        return "the mailbox does not host the recipient";
    case TF_PROTO_ACK_REASON_OVER_QUOTA:
        return "the mailbox is over quota";
    default:
        return "unknown reason";
    }
}

enum tf_proto_ack_reason tf_proto_ack_reason_for(int err)
{
    switch (err) {
    case TF_E_NOT_FOR_ME:
        return TF_PROTO_ACK_REASON_NOT_FOR_ME;
    case TF_E_EXPIRED:
        return TF_PROTO_ACK_REASON_EXPIRED;
    case TF_E_BAD_SEAL:
        return TF_PROTO_ACK_REASON_BAD_SEAL;
    case TF_E_BAD_SIG:
        return TF_PROTO_ACK_REASON_BAD_SIG;
    default:
        return TF_PROTO_ACK_REASON_MALFORMED;
    }
}

int tf_proto_link_decode(const uint8_t *buf, size_t len, struct tf_proto_link_msg *out)
{
    struct tf_proto_mp_reader r;
    struct tf_proto_link_msg m;
    uint32_t n;
    uint64_t type;
    int rc;
    memset(&m, 0, sizeof m);
    tf_proto_mp_reader_init(&r, buf, len);
    if ((rc = tf_proto_mp_read_array(&r, 4, &n)) != TF_OK)
        return rc;
    if (n < 1)
        return TF_E_COUNT;
    if ((rc = tf_proto_mp_read_uint(&r, &type)) != TF_OK)
        return rc;
    static const uint32_t fields[] = {0, 3, 2, 4, 2, 2, 3, 1, 2, 2, 2};
    if (type < TF_PROTO_LINK_HELLO || type > TF_PROTO_LINK_DIRECT)
        return TF_E_BAD_VALUE;
    if (n != fields[type])
        return TF_E_COUNT;
    m.type = (enum tf_proto_link_type)type;
    switch (m.type) {
    case TF_PROTO_LINK_HELLO: {
        uint32_t nf;
        if ((rc = tf_proto_mp_read_uint(&r, &m.version)) != TF_OK ||
            (rc = tf_proto_mp_read_array(&r, TF_PROTO_LINK_FEATURES_MAX, &nf)) != TF_OK)
            return rc;
        for (uint32_t i = 0; i < nf; i++) {
            if ((rc = tf_proto_mp_read_str(&r, 1, TF_PROTO_TAG_MAX, TF_PROTO_TEXT_LINE,
                                           &m.features[i])) != TF_OK)
                return rc;
            if (!tf_proto_tag_is_valid(m.features[i].ptr, m.features[i].len))
                return TF_E_BAD_VALUE;
        }
        m.n_features = nf;
        break;
    }
    case TF_PROTO_LINK_ENVELOPE:
    case TF_PROTO_LINK_UPLOAD:
    case TF_PROTO_LINK_PUSH:
        if ((rc = tf_proto_mp_read_bin(&r, 1, TF_PROTO_ENVELOPE_MAX, &m.envelope)) != TF_OK)
            return rc;
        break;
    case TF_PROTO_LINK_DIRECT:
        /* Its content is read by tf_proto_envelope_direct_decode. */
        if ((rc = tf_proto_mp_read_bin(&r, 1, TF_PROTO_ENVELOPE_PAD_MAX, &m.envelope)) != TF_OK)
            return rc;
        break;
    case TF_PROTO_LINK_ACK:
        if ((rc = tf_proto_mp_read_bin_fixed(&r, m.msg_id, TF_PROTO_MSG_ID_LEN)) != TF_OK ||
            (rc = tf_proto_mp_read_uint(&r, &m.status)) != TF_OK)
            return rc;
        if (m.status > TF_PROTO_ACK_DEFERRED)
            return TF_E_BAD_VALUE;
        if ((rc = tf_proto_mp_read_uint(&r, &m.reason)) != TF_OK)
            return rc;
        break;
    case TF_PROTO_LINK_PING:
    case TF_PROTO_LINK_PONG:
        if ((rc = tf_proto_mp_read_uint(&r, &m.nonce)) != TF_OK)
            return rc;
        break;
    case TF_PROTO_LINK_ERROR:
        if ((rc = tf_proto_mp_read_uint(&r, &m.reason)) != TF_OK ||
            (rc = tf_proto_mp_read_str(&r, 0, TF_PROTO_LINK_ERROR_TEXT_MAX, TF_PROTO_TEXT_LINE,
                                       &m.text)) != TF_OK)
            return rc;
        break;
    case TF_PROTO_LINK_BYE:
        break;
    }
    if ((rc = tf_proto_mp_read_end(&r)) != TF_OK)
        return rc;
    *out = m;
    return TF_OK;
}

int tf_proto_link_hello(const char *const *features, size_t n, struct tf_proto_buf *out)
{
    if (n > TF_PROTO_LINK_FEATURES_MAX)
        return TF_E_TOO_LONG;
    struct tf_proto_mp_writer w;
    tf_proto_mp_writer_init(&w);
    tf_proto_mp_write_array(&w, 3);
    tf_proto_mp_write_uint(&w, TF_PROTO_LINK_HELLO);
    tf_proto_mp_write_uint(&w, TF_PROTO_LINK_VERSION);
    tf_proto_mp_write_array(&w, (uint32_t)n);
    for (size_t i = 0; i < n; i++) {
        if (!tf_proto_tag_is_valid((const uint8_t *)features[i], strlen(features[i]))) {
            tf_proto_mp_writer_deinit(&w);
            return TF_E_BAD_VALUE;
        }
        tf_proto_mp_write_cstr(&w, features[i]);
    }
    return tf_proto_mp_writer_finish(&w, out);
}

int tf_proto_link_envelope(const uint8_t *env, size_t len, struct tf_proto_buf *out)
{
    return tf_proto_link_envelope_as(TF_PROTO_LINK_ENVELOPE, env, len, out);
}

int tf_proto_link_envelope_as(enum tf_proto_link_type type, const uint8_t *env, size_t len,
                              struct tf_proto_buf *out)
{
    if (type != TF_PROTO_LINK_ENVELOPE && type != TF_PROTO_LINK_UPLOAD &&
        type != TF_PROTO_LINK_PUSH && type != TF_PROTO_LINK_DIRECT)
        return TF_E_INVALID_ARG;
    size_t max = type == TF_PROTO_LINK_DIRECT ? TF_PROTO_ENVELOPE_PAD_MAX : TF_PROTO_ENVELOPE_MAX;
    if (len < 1 || len > max)
        return TF_E_TOO_LONG;
    struct tf_proto_mp_writer w;
    tf_proto_mp_writer_init(&w);
    tf_proto_mp_write_array(&w, 2);
    tf_proto_mp_write_uint(&w, (uint64_t)type);
    tf_proto_mp_write_bin(&w, env, len);
    return tf_proto_mp_writer_finish(&w, out);
}

int tf_proto_link_ack(const uint8_t msg_id[static TF_PROTO_MSG_ID_LEN],
                      enum tf_proto_ack_status status, enum tf_proto_ack_reason reason,
                      struct tf_proto_buf *out)
{
    struct tf_proto_mp_writer w;
    tf_proto_mp_writer_init(&w);
    tf_proto_mp_write_array(&w, 4);
    tf_proto_mp_write_uint(&w, TF_PROTO_LINK_ACK);
    tf_proto_mp_write_bin(&w, msg_id, TF_PROTO_MSG_ID_LEN);
    tf_proto_mp_write_uint(&w, (uint64_t)status);
    tf_proto_mp_write_uint(&w, (uint64_t)reason);
    return tf_proto_mp_writer_finish(&w, out);
}

int tf_proto_link_ping(enum tf_proto_link_type type, uint64_t nonce, struct tf_proto_buf *out)
{
    if (type != TF_PROTO_LINK_PING && type != TF_PROTO_LINK_PONG)
        return TF_E_INVALID_ARG;
    struct tf_proto_mp_writer w;
    tf_proto_mp_writer_init(&w);
    tf_proto_mp_write_array(&w, 2);
    tf_proto_mp_write_uint(&w, (uint64_t)type);
    tf_proto_mp_write_uint(&w, nonce);
    return tf_proto_mp_writer_finish(&w, out);
}

int tf_proto_link_error(enum tf_proto_link_error reason, const char *text, struct tf_proto_buf *out)
{
    size_t n = strlen(text);
    if (n > TF_PROTO_LINK_ERROR_TEXT_MAX)
        n = TF_PROTO_LINK_ERROR_TEXT_MAX;
    struct tf_proto_mp_writer w;
    tf_proto_mp_writer_init(&w);
    tf_proto_mp_write_array(&w, 3);
    tf_proto_mp_write_uint(&w, TF_PROTO_LINK_ERROR);
    tf_proto_mp_write_uint(&w, (uint64_t)reason);
    tf_proto_mp_write_str(&w, text, n);
    return tf_proto_mp_writer_finish(&w, out);
}

int tf_proto_link_bye(struct tf_proto_buf *out)
{
    struct tf_proto_mp_writer w;
    tf_proto_mp_writer_init(&w);
    tf_proto_mp_write_array(&w, 1);
    tf_proto_mp_write_uint(&w, TF_PROTO_LINK_BYE);
    return tf_proto_mp_writer_finish(&w, out);
}

static_assert(TF_PROTO_LINK_HS_PAYLOAD_LEN == TF_PROTO_CARD_SIGNED_MAX,
              "every card fits one padded handshake payload");

int tf_proto_link_hs_payload_pad(const uint8_t *card, size_t len,
                                 uint8_t out[static TF_PROTO_LINK_HS_PAYLOAD_LEN])
{
    if (len > TF_PROTO_LINK_HS_PAYLOAD_LEN)
        return TF_E_TOO_LONG;
    memcpy(out, card, len);
    memset(out + len, 0, TF_PROTO_LINK_HS_PAYLOAD_LEN - len);
    return TF_OK;
}

int tf_proto_link_hs_payload_card(const uint8_t *payload, size_t len, size_t *card_len)
{
    struct tf_proto_mp_reader r;
    struct tf_proto_bytes body, sig;
    int rc;
    tf_proto_mp_reader_init(&r, payload, len);
    if ((rc = tf_proto_mp_read_array_exact(&r, 2)) != TF_OK ||
        (rc = tf_proto_mp_read_bin(&r, 1, TF_PROTO_BODY_MAX, &body)) != TF_OK ||
        (rc = tf_proto_mp_read_bin(&r, TF_PROTO_SIG_LEN, TF_PROTO_SIG_LEN, &sig)) != TF_OK)
        return rc;
    for (size_t i = r.pos; i < len; i++)
        if (payload[i] != 0)
            return TF_E_TRAILING;
    *card_len = r.pos;
    return TF_OK;
}

int tf_proto_link_addr_prefix(const uint8_t *ip, size_t len,
                              uint8_t out[static TF_PROTO_LINK_PREFIX_LEN])
{
    static const uint8_t v4_mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
    memset(out, 0, TF_PROTO_LINK_PREFIX_LEN);
    if (len == 16 && memcmp(ip, v4_mapped, sizeof v4_mapped) == 0) {
        ip += sizeof v4_mapped;
        len = 4;
    }
    if (len == 4) {
        out[0] = 4;
        memcpy(out + 1, ip, 4);
    } else if (len == 16) {
        out[0] = 6;
        memcpy(out + 1, ip, 8);
    } else {
        return TF_E_INVALID_ARG;
    }
    return TF_OK;
}

void tf_proto_frame_header(uint8_t out[static TF_PROTO_FRAME_HEADER_LEN], uint16_t len)
{
    out[0] = (uint8_t)(len >> 8);
    out[1] = (uint8_t)len;
}

int tf_proto_frame_parse(const uint8_t *buf, size_t len, size_t max, size_t *body_len)
{
    if (len < TF_PROTO_FRAME_HEADER_LEN)
        return TF_E_AGAIN;
    size_t n = (size_t)buf[0] << 8 | buf[1];
    if (n == 0)
        return TF_E_BAD_LENGTH;
    if (n > max)
        return TF_E_TOO_LONG;
    *body_len = n;
    return TF_OK;
}
