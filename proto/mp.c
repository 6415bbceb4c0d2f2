/* SPDX-License-Identifier: MIT */
#include "proto/mp.h"

#include <stdlib.h>
#include <string.h>

#include <msgpack/pack.h>

void tf_proto_buf_free(struct tf_proto_buf *buf)
{
    if (buf == NULL)
        return;
    free(buf->data);
    buf->data = NULL;
    buf->len = 0;
}

void tf_proto_mp_reader_init(struct tf_proto_mp_reader *r, const uint8_t *buf, size_t len)
{
    r->buf = buf;
    r->len = len;
    r->pos = 0;
}

static size_t remaining(const struct tf_proto_mp_reader *r)
{
    return r->len - r->pos;
}

static uint64_t load_be(const uint8_t *p, size_t n)
{
    uint64_t v = 0;
    for (size_t i = 0; i < n; i++)
        v = (v << 8) | p[i];
    return v;
}

/* Reads an n-byte big-endian integer after the tag byte. */
static int take_be(struct tf_proto_mp_reader *r, size_t n, uint64_t *v)
{
    if (n > remaining(r))
        return TF_E_TRUNCATED;
    *v = load_be(r->buf + r->pos, n);
    r->pos += n;
    return TF_OK;
}

/* Reads a container header.  fix_base/fix_max describe the fix form,
 * tag16/tag32 the long forms.  The count is returned in *count. */
static int read_container(struct tf_proto_mp_reader *r, uint8_t fix_base, uint8_t fix_mask,
                          uint8_t tag16, uint8_t tag32, uint64_t *count)
{
    if (remaining(r) < 1)
        return TF_E_TRUNCATED;
    uint8_t tag = r->buf[r->pos];
    int rc;
    if ((tag & (uint8_t)~fix_mask) == fix_base) {
        r->pos++;
        *count = tag & fix_mask;
        return TF_OK;
    }
    if (tag == tag16) {
        r->pos++;
        if ((rc = take_be(r, 2, count)) != TF_OK)
            return rc;
        return *count <= fix_mask ? TF_E_NONCANONICAL : TF_OK;
    }
    if (tag == tag32) {
        r->pos++;
        if ((rc = take_be(r, 4, count)) != TF_OK)
            return rc;
        return *count <= 0xffff ? TF_E_NONCANONICAL : TF_OK;
    }
    return TF_E_TYPE;
}

int tf_proto_mp_read_array(struct tf_proto_mp_reader *r, uint32_t max, uint32_t *count)
{
    size_t start = r->pos;
    uint64_t n;
    int rc = read_container(r, 0x90, 0x0f, 0xdc, 0xdd, &n);
    if (rc == TF_OK && n > remaining(r))
        rc = TF_E_TRUNCATED; /* every element needs at least one byte */
    if (rc == TF_OK && n > max)
        rc = TF_E_TOO_LONG;
    if (rc != TF_OK) {
        r->pos = start;
        return rc;
    }
    *count = (uint32_t)n;
    return TF_OK;
}

int tf_proto_mp_read_array_exact(struct tf_proto_mp_reader *r, uint32_t n)
{
    size_t start = r->pos;
    uint32_t got;
    int rc = tf_proto_mp_read_array(r, UINT32_MAX, &got);
    if (rc == TF_OK && got != n)
        rc = TF_E_COUNT;
    if (rc != TF_OK)
        r->pos = start;
    return rc;
}

int tf_proto_mp_read_map(struct tf_proto_mp_reader *r, uint32_t max, uint32_t *count)
{
    size_t start = r->pos;
    uint64_t n;
    int rc = read_container(r, 0x80, 0x0f, 0xde, 0xdf, &n);
    if (rc == TF_OK && n > remaining(r) / 2)
        rc = TF_E_TRUNCATED; /* every pair needs at least two bytes */
    if (rc == TF_OK && n > max)
        rc = TF_E_TOO_LONG;
    if (rc != TF_OK) {
        r->pos = start;
        return rc;
    }
    *count = (uint32_t)n;
    return TF_OK;
}

int tf_proto_mp_read_key(struct tf_proto_mp_reader *r, int64_t *prev, uint64_t expected)
{
    size_t start = r->pos;
    uint64_t key;
    int rc = tf_proto_mp_read_uint(r, &key);
    if (rc == TF_E_TYPE)
        rc = TF_E_BAD_KEY;
    /* Keys run 1, 2, 3, ... so every key from 1 to *prev has been seen. */
    if (rc == TF_OK && *prev >= 1 && key >= 1 && key <= (uint64_t)*prev)
        rc = TF_E_DUP_KEY;
    else if (rc == TF_OK && key != expected)
        rc = TF_E_BAD_KEY;
    if (rc != TF_OK) {
        r->pos = start;
        return rc;
    }
    *prev = (int64_t)key;
    return TF_OK;
}

int tf_proto_mp_read_uint(struct tf_proto_mp_reader *r, uint64_t *v)
{
    if (remaining(r) < 1)
        return TF_E_TRUNCATED;
    size_t start = r->pos;
    uint8_t tag = r->buf[r->pos];
    if (tag <= 0x7f) {
        r->pos++;
        *v = tag;
        return TF_OK;
    }
    size_t n;
    uint64_t min; /* smallest value that needs this width */
    switch (tag) {
    case 0xcc:
        n = 1;
        min = 0x80;
        break;
    case 0xcd:
        n = 2;
        min = 0x100;
        break;
    case 0xce:
        n = 4;
        min = 0x10000;
        break;
    case 0xcf:
        n = 8;
        min = 0x100000000ULL;
        break;
    default:
        return TF_E_TYPE;
    }
    r->pos++;
    uint64_t val;
    int rc = take_be(r, n, &val);
    if (rc == TF_OK && val < min)
        rc = TF_E_NONCANONICAL;
    if (rc != TF_OK) {
        r->pos = start;
        return rc;
    }
    *v = val;
    return TF_OK;
}

int tf_proto_mp_read_bool(struct tf_proto_mp_reader *r, bool *v)
{
    if (remaining(r) < 1)
        return TF_E_TRUNCATED;
    uint8_t tag = r->buf[r->pos];
    if (tag != 0xc2 && tag != 0xc3)
        return TF_E_TYPE;
    r->pos++;
    *v = tag == 0xc3;
    return TF_OK;
}

bool tf_proto_mp_peek_nil(const struct tf_proto_mp_reader *r)
{
    return remaining(r) >= 1 && r->buf[r->pos] == 0xc0;
}

int tf_proto_mp_read_nil(struct tf_proto_mp_reader *r)
{
    if (remaining(r) < 1)
        return TF_E_TRUNCATED;
    if (r->buf[r->pos] != 0xc0)
        return TF_E_TYPE;
    r->pos++;
    return TF_OK;
}

/* Reads the header of a str (is_str) or bin and the payload view. */
static int read_raw(struct tf_proto_mp_reader *r, bool is_str, struct tf_proto_bytes *out)
{
    if (remaining(r) < 1)
        return TF_E_TRUNCATED;
    size_t start = r->pos;
    uint8_t tag = r->buf[r->pos];
    uint64_t n;
    size_t width;
    uint64_t min;
    if (is_str && (tag & 0xe0) == 0xa0) {
        r->pos++;
        n = tag & 0x1f;
        goto body;
    }
    switch (tag) {
    case 0xd9:
    case 0xc4:
        width = 1;
        min = is_str ? 32 : 0;
        break;
    case 0xda:
    case 0xc5:
        width = 2;
        min = 0x100;
        break;
    case 0xdb:
    case 0xc6:
        width = 4;
        min = 0x10000;
        break;
    default:
        return TF_E_TYPE;
    }
    if (is_str != (tag >= 0xd9))
        return TF_E_TYPE;
    r->pos++;
    int rc = take_be(r, width, &n);
    if (rc != TF_OK) {
        r->pos = start;
        return rc;
    }
    if (n < min) {
        r->pos = start;
        return TF_E_NONCANONICAL;
    }
body:
    if (n > remaining(r)) {
        r->pos = start;
        return TF_E_TRUNCATED;
    }
    out->ptr = r->buf + r->pos;
    out->len = (size_t)n;
    r->pos += (size_t)n;
    return TF_OK;
}

int tf_proto_mp_read_bin(struct tf_proto_mp_reader *r, size_t min, size_t max,
                         struct tf_proto_bytes *out)
{
    size_t start = r->pos;
    struct tf_proto_bytes v;
    int rc = read_raw(r, false, &v);
    if (rc == TF_OK && v.len > max)
        rc = TF_E_TOO_LONG;
    else if (rc == TF_OK && v.len < min)
        rc = TF_E_BAD_LENGTH;
    if (rc != TF_OK) {
        r->pos = start;
        return rc;
    }
    *out = v;
    return TF_OK;
}

int tf_proto_mp_read_bin_fixed(struct tf_proto_mp_reader *r, uint8_t *dst, size_t n)
{
    size_t start = r->pos;
    struct tf_proto_bytes v;
    int rc = read_raw(r, false, &v);
    if (rc == TF_OK && v.len != n)
        rc = TF_E_BAD_LENGTH;
    if (rc != TF_OK) {
        r->pos = start;
        return rc;
    }
    memcpy(dst, v.ptr, n);
    return TF_OK;
}

static bool text_allowed(const uint8_t *s, size_t len, enum tf_proto_text text)
{
    for (size_t i = 0; i < len; i++) {
        uint8_t c = s[i];
        if (c == 0x7f)
            return false;
        if (c >= 0x20)
            continue;
        if (text == TF_PROTO_TEXT_MULTILINE && (c == '\n' || c == '\t'))
            continue;
        return false;
    }
    return true;
}

int tf_proto_mp_read_str(struct tf_proto_mp_reader *r, size_t min, size_t max,
                         enum tf_proto_text text, struct tf_proto_bytes *out)
{
    size_t start = r->pos;
    struct tf_proto_bytes v;
    int rc = read_raw(r, true, &v);
    if (rc == TF_OK && v.len > max)
        rc = TF_E_TOO_LONG;
    else if (rc == TF_OK && v.len < min)
        rc = TF_E_BAD_LENGTH;
    else if (rc == TF_OK && !tf_proto_utf8_is_valid(v.ptr, v.len))
        rc = TF_E_BAD_UTF8;
    else if (rc == TF_OK && !text_allowed(v.ptr, v.len, text))
        rc = TF_E_BAD_TEXT;
    if (rc != TF_OK) {
        r->pos = start;
        return rc;
    }
    *out = v;
    return TF_OK;
}

int tf_proto_mp_read_end(const struct tf_proto_mp_reader *r)
{
    return r->pos == r->len ? TF_OK : TF_E_TRAILING;
}

bool tf_proto_utf8_is_valid(const uint8_t *s, size_t len)
{
    size_t i = 0;
    while (i < len) {
        uint8_t c = s[i];
        if (c < 0x80) {
            i++;
            continue;
        }
        size_t n;
        uint32_t cp;
        uint32_t min;
        if ((c & 0xe0) == 0xc0) {
            n = 1;
            cp = c & 0x1fu;
            min = 0x80;
        } else if ((c & 0xf0) == 0xe0) {
            n = 2;
            cp = c & 0x0fu;
            min = 0x800;
        } else if ((c & 0xf8) == 0xf0) {
            n = 3;
            cp = c & 0x07u;
            min = 0x10000;
        } else {
            return false;
        }
        if (n > len - i - 1)
            return false;
        for (size_t k = 1; k <= n; k++) {
            uint8_t cc = s[i + k];
            if ((cc & 0xc0) != 0x80)
                return false;
            cp = (cp << 6) | (cc & 0x3fu);
        }
        if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
            return false;
        i += n + 1;
    }
    return true;
}

/* Size of the payload/header of one value for the structural check.  Sets
 * *children to the number of nested values that follow the header and
 * *container to whether it is an array or map (even an empty one). */
static int skip_header(struct tf_proto_mp_reader *r, uint64_t *children, bool *container)
{
    if (remaining(r) < 1)
        return TF_E_TRUNCATED;
    uint8_t tag = r->buf[r->pos++];
    uint64_t n = 0;
    size_t width = 0;
    *children = 0;
    *container = (tag & 0xe0) == 0x80 || tag == 0xdc || tag == 0xdd || tag == 0xde || tag == 0xdf;
    if (tag <= 0x7f || tag >= 0xe0 || tag == 0xc0 || tag == 0xc2 || tag == 0xc3)
        return TF_OK;
    if ((tag & 0xf0) == 0x80) {
        *children = 2u * (tag & 0x0fu);
        return TF_OK;
    }
    if ((tag & 0xf0) == 0x90) {
        *children = tag & 0x0fu;
        return TF_OK;
    }
    if ((tag & 0xe0) == 0xa0) {
        n = tag & 0x1fu;
        goto payload;
    }
    switch (tag) {
    case 0xc4:
    case 0xd9:
        width = 1;
        goto sized; /* bin8, str8 */
    case 0xc5:
    case 0xda:
        width = 2;
        goto sized;
    case 0xc6:
    case 0xdb:
        width = 4;
        goto sized;
    case 0xc7:
    case 0xc8:
    case 0xc9: /* ext 8/16/32: length, then type byte */
        width = tag == 0xc7 ? 1 : tag == 0xc8 ? 2 : 4;
        if (take_be(r, width, &n) != TF_OK)
            return TF_E_TRUNCATED;
        n += 1;
        goto payload;
    case 0xca:
        n = 4;
        goto payload;
    case 0xcb:
        n = 8;
        goto payload;
    case 0xcc:
    case 0xd0:
        n = 1;
        goto payload;
    case 0xcd:
    case 0xd1:
        n = 2;
        goto payload;
    case 0xce:
    case 0xd2:
        n = 4;
        goto payload;
    case 0xcf:
    case 0xd3:
        n = 8;
        goto payload;
    case 0xd4:
        n = 2;
        goto payload; /* fixext 1: type + 1 */
    case 0xd5:
        n = 3;
        goto payload;
    case 0xd6:
        n = 5;
        goto payload;
    case 0xd7:
        n = 9;
        goto payload;
    case 0xd8:
        n = 17;
        goto payload;
    case 0xdc:
    case 0xde:
        width = 2;
        break;
    case 0xdd:
    case 0xdf:
        width = 4;
        break;
    default:
        return TF_E_TYPE; /* 0xc1 is never used */
    }
    if (take_be(r, width, &n) != TF_OK)
        return TF_E_TRUNCATED;
    *children = (tag == 0xde || tag == 0xdf) ? 2 * n : n;
    if (*children > remaining(r))
        return TF_E_TRUNCATED;
    return TF_OK;
sized:
    if (take_be(r, width, &n) != TF_OK)
        return TF_E_TRUNCATED;
payload:
    if (n > remaining(r))
        return TF_E_TRUNCATED;
    r->pos += (size_t)n;
    return TF_OK;
}

int tf_proto_mp_check(const uint8_t *buf, size_t len, unsigned max_depth)
{
    /* pending[d] counts the values still to read at depth d. */
    uint64_t pending[TF_PROTO_MP_MAX_DEPTH + 2];
    if (max_depth > TF_PROTO_MP_MAX_DEPTH)
        max_depth = TF_PROTO_MP_MAX_DEPTH;
    struct tf_proto_mp_reader r;
    tf_proto_mp_reader_init(&r, buf, len);
    unsigned depth = 0;
    pending[0] = 1;
    for (;;) {
        while (depth > 0 && pending[depth] == 0)
            depth--;
        if (depth == 0 && pending[0] == 0)
            break;
        pending[depth]--;
        uint64_t children;
        bool container;
        int rc = skip_header(&r, &children, &container);
        if (rc != TF_OK)
            return rc;
        /* A container opens a level, even an empty one. */
        if (container && depth + 1 > max_depth)
            return TF_E_TOO_DEEP;
        if (children > 0)
            pending[++depth] = children;
    }
    return tf_proto_mp_read_end(&r);
}

/* Writer. */

static int append_cb(void *data, const char *buf, size_t len)
{
    struct tf_proto_mp_writer *w = data;
    if (w->err != TF_OK)
        return -1;
    if (len == 0)
        return 0; /* buf may be NULL for an empty bin or str */
    if (len > w->cap - w->len) {
        size_t cap = w->cap ? w->cap : 256;
        while (len > cap - w->len) {
            if (cap > SIZE_MAX / 2) {
                w->err = TF_E_NOMEM;
                return -1;
            }
            cap *= 2;
        }
        uint8_t *p = realloc(w->data, cap);
        if (p == NULL) {
            w->err = TF_E_NOMEM;
            return -1;
        }
        w->data = p;
        w->cap = cap;
    }
    memcpy(w->data + w->len, buf, len);
    w->len += len;
    return 0;
}

void tf_proto_mp_writer_init(struct tf_proto_mp_writer *w)
{
    w->data = NULL;
    w->len = 0;
    w->cap = 0;
    w->err = TF_OK;
}

#define WITH_PACKER(w, call)                                                                       \
    do {                                                                                           \
        msgpack_packer pk_;                                                                        \
        msgpack_packer_init(&pk_, (w), append_cb);                                                 \
        if ((call) != 0 && (w)->err == TF_OK)                                                      \
            (w)->err = TF_E_NOMEM;                                                                 \
    } while (0)

void tf_proto_mp_write_array(struct tf_proto_mp_writer *w, uint32_t n)
{
    WITH_PACKER(w, msgpack_pack_array(&pk_, n));
}

void tf_proto_mp_write_map(struct tf_proto_mp_writer *w, uint32_t n)
{
    WITH_PACKER(w, msgpack_pack_map(&pk_, n));
}

void tf_proto_mp_write_uint(struct tf_proto_mp_writer *w, uint64_t v)
{
    WITH_PACKER(w, msgpack_pack_uint64(&pk_, v));
}

void tf_proto_mp_write_int(struct tf_proto_mp_writer *w, int64_t v)
{
    WITH_PACKER(w, msgpack_pack_int64(&pk_, v));
}

void tf_proto_mp_write_cstr_or_nil(struct tf_proto_mp_writer *w, const char *s)
{
    if (s == NULL || s[0] == '\0')
        tf_proto_mp_write_nil(w);
    else
        tf_proto_mp_write_cstr(w, s);
}

void tf_proto_mp_write_raw(struct tf_proto_mp_writer *w, const uint8_t *p, size_t n)
{
    if (n > 0 && append_cb(w, (const char *)p, n) != 0 && w->err == TF_OK)
        w->err = TF_E_NOMEM;
}

void tf_proto_mp_write_cstr(struct tf_proto_mp_writer *w, const char *s)
{
    tf_proto_mp_write_str(w, s, strlen(s));
}

void tf_proto_mp_write_bool(struct tf_proto_mp_writer *w, bool v)
{
    WITH_PACKER(w, v ? msgpack_pack_true(&pk_) : msgpack_pack_false(&pk_));
}

void tf_proto_mp_write_nil(struct tf_proto_mp_writer *w)
{
    WITH_PACKER(w, msgpack_pack_nil(&pk_));
}

void tf_proto_mp_write_bin(struct tf_proto_mp_writer *w, const uint8_t *p, size_t n)
{
    if (n > UINT32_MAX) {
        w->err = TF_E_TOO_LONG;
        return;
    }
    WITH_PACKER(w, msgpack_pack_bin_with_body(&pk_, p, n));
}

void tf_proto_mp_write_str(struct tf_proto_mp_writer *w, const char *p, size_t n)
{
    if (n > UINT32_MAX) {
        w->err = TF_E_TOO_LONG;
        return;
    }
    WITH_PACKER(w, msgpack_pack_str_with_body(&pk_, p, n));
}

void tf_proto_mp_write_text(struct tf_proto_mp_writer *w, struct tf_proto_bytes s)
{
    tf_proto_mp_write_str(w, s.len ? (const char *)s.ptr : "", s.len);
}

int tf_proto_mp_writer_finish(struct tf_proto_mp_writer *w, struct tf_proto_buf *out)
{
    int rc = w->err;
    if (rc != TF_OK) {
        tf_proto_mp_writer_deinit(w);
        return rc;
    }
    out->data = w->data;
    out->len = w->len;
    tf_proto_mp_writer_init(w);
    return TF_OK;
}

void tf_proto_mp_writer_deinit(struct tf_proto_mp_writer *w)
{
    free(w->data);
    tf_proto_mp_writer_init(w);
}
