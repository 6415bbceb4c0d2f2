/* SPDX-License-Identifier: MIT */
#include "proto/ctl.h"

#include <string.h>

#include <msgpack/unpack.h>

#include "proto/mp.h"

void tf_proto_ctl_frame_header(uint8_t out[static TF_PROTO_CTL_HEADER_LEN], uint32_t len)
{
    out[0] = (uint8_t)(len >> 24);
    out[1] = (uint8_t)(len >> 16);
    out[2] = (uint8_t)(len >> 8);
    out[3] = (uint8_t)len;
}

int tf_proto_ctl_frame_parse(const uint8_t *buf, size_t len, uint32_t max, uint32_t *body_len)
{
    if (len < TF_PROTO_CTL_HEADER_LEN)
        return TF_E_AGAIN;
    uint32_t n = (uint32_t)buf[0] << 24 | (uint32_t)buf[1] << 16 | (uint32_t)buf[2] << 8 | buf[3];
    if (n == 0)
        return TF_E_BAD_LENGTH;
    if (n > max)
        return TF_E_TOO_LONG;
    *body_len = n;
    return TF_OK;
}

static bool key_equals(const msgpack_object *k, const char *key, size_t klen)
{
    /* msgpack-c gives an empty string a NULL pointer: never memcmp that. */
    return k->type == MSGPACK_OBJECT_STR && k->via.str.size == klen &&
           (klen == 0 || memcmp(k->via.str.ptr, key, klen) == 0);
}

/* Every map: string keys, no duplicates.  Depth is bounded by the pre-pass. */
static int check_tree(const msgpack_object *o)
{
    if (o->type == MSGPACK_OBJECT_ARRAY) {
        for (uint32_t i = 0; i < o->via.array.size; i++) {
            int rc = check_tree(&o->via.array.ptr[i]);
            if (rc != TF_OK)
                return rc;
        }
    } else if (o->type == MSGPACK_OBJECT_MAP) {
        const msgpack_object_kv *kv = o->via.map.ptr;
        if (o->via.map.size > TF_PROTO_CTL_MAP_MAX)
            return TF_E_TOO_LONG;
        for (uint32_t i = 0; i < o->via.map.size; i++) {
            if (kv[i].key.type != MSGPACK_OBJECT_STR)
                return TF_E_BAD_KEY;
            /* Maps are capped at TF_PROTO_CTL_MAP_MAX keys, so this quadratic
             * scan stays small. */
            for (uint32_t j = 0; j < i; j++)
                if (key_equals(&kv[j].key, kv[i].key.via.str.ptr, kv[i].key.via.str.size))
                    return TF_E_DUP_KEY;
            int rc = check_tree(&kv[i].val);
            if (rc != TF_OK)
                return rc;
        }
    }
    return TF_OK;
}

int tf_proto_ctl_unpack(const uint8_t *buf, size_t len, msgpack_zone *zone, msgpack_object *out)
{
    int rc = tf_proto_mp_check(buf, len, TF_PROTO_CTL_DEPTH_MAX);
    if (rc != TF_OK)
        return rc;
    size_t off = 0;
    msgpack_object obj;
    msgpack_unpack_return ur = msgpack_unpack((const char *)buf, len, &off, zone, &obj);
    if (ur == MSGPACK_UNPACK_NOMEM_ERROR)
        return TF_E_NOMEM;
    if (ur != MSGPACK_UNPACK_SUCCESS || off != len)
        return TF_E_BAD_REQUEST;
    if ((rc = check_tree(&obj)) != TF_OK)
        return rc;
    *out = obj;
    return TF_OK;
}

const msgpack_object *tf_proto_ctl_get(const msgpack_object *obj, const char *key)
{
    if (obj == NULL || obj->type != MSGPACK_OBJECT_MAP)
        return NULL;
    size_t klen = strlen(key);
    for (uint32_t i = 0; i < obj->via.map.size; i++)
        if (key_equals(&obj->via.map.ptr[i].key, key, klen))
            return &obj->via.map.ptr[i].val;
    return NULL;
}

static const msgpack_object *get_present(const msgpack_object *obj, const char *key)
{
    const msgpack_object *v = tf_proto_ctl_get(obj, key);
    return v == NULL || v->type == MSGPACK_OBJECT_NIL ? NULL : v;
}

int tf_proto_ctl_get_str(const msgpack_object *obj, const char *key, const char **ptr, size_t *len)
{
    const msgpack_object *v = get_present(obj, key);
    if (v == NULL)
        return TF_E_NOT_FOUND;
    if (v->type != MSGPACK_OBJECT_STR)
        return TF_E_TYPE;
    *ptr = v->via.str.ptr;
    *len = v->via.str.size;
    return TF_OK;
}

int tf_proto_ctl_get_uint(const msgpack_object *obj, const char *key, uint64_t *out)
{
    const msgpack_object *v = get_present(obj, key);
    if (v == NULL)
        return TF_E_NOT_FOUND;
    if (v->type != MSGPACK_OBJECT_POSITIVE_INTEGER)
        return TF_E_TYPE;
    *out = v->via.u64;
    return TF_OK;
}

int tf_proto_ctl_get_int(const msgpack_object *obj, const char *key, int64_t *out)
{
    const msgpack_object *v = get_present(obj, key);
    if (v == NULL)
        return TF_E_NOT_FOUND;
    if (v->type == MSGPACK_OBJECT_NEGATIVE_INTEGER) {
        *out = v->via.i64;
        return TF_OK;
    }
    if (v->type == MSGPACK_OBJECT_POSITIVE_INTEGER && v->via.u64 <= INT64_MAX) {
        *out = (int64_t)v->via.u64;
        return TF_OK;
    }
    return TF_E_TYPE;
}

int tf_proto_ctl_get_bool(const msgpack_object *obj, const char *key, bool *out)
{
    const msgpack_object *v = get_present(obj, key);
    if (v == NULL)
        return TF_E_NOT_FOUND;
    if (v->type != MSGPACK_OBJECT_BOOLEAN)
        return TF_E_TYPE;
    *out = v->via.boolean;
    return TF_OK;
}

int tf_proto_ctl_get_str_array(const msgpack_object *obj, const char *key,
                               const msgpack_object_array **out)
{
    const msgpack_object *v = get_present(obj, key);
    if (v == NULL)
        return TF_E_NOT_FOUND;
    if (v->type != MSGPACK_OBJECT_ARRAY)
        return TF_E_TYPE;
    for (uint32_t i = 0; i < v->via.array.size; i++)
        if (v->via.array.ptr[i].type != MSGPACK_OBJECT_STR)
            return TF_E_TYPE;
    *out = &v->via.array;
    return TF_OK;
}

int tf_proto_ctl_strcpy(char *dst, size_t cap, const char *ptr, size_t len)
{
    if (len >= cap)
        return TF_E_TOO_LONG;
    if (len > 0 && memchr(ptr, '\0', len) != NULL)
        return TF_E_BAD_TEXT;
    if (len > 0)
        memcpy(dst, ptr, len);
    dst[len] = '\0';
    return TF_OK;
}

/* Did-you-mean (issue 16, ux). */
static char fold(char c)
{
    return c >= 'A' && c <= 'Z' ? (char)(c - 'A' + 'a') : c;
}

size_t tf_proto_ctl_distance(const char *a, size_t alen, const char *b, size_t blen)
{
    /* d[i][j]: the distance between a's first i bytes and b's first j; at
     * most 64, so a byte holds it. */
    uint8_t d[TF_PROTO_CTL_DISTANCE_MAX + 1][TF_PROTO_CTL_DISTANCE_MAX + 1];
    if (alen > TF_PROTO_CTL_DISTANCE_MAX || blen > TF_PROTO_CTL_DISTANCE_MAX)
        return SIZE_MAX;
    for (size_t i = 0; i <= alen; i++)
        d[i][0] = (uint8_t)i;
    for (size_t j = 0; j <= blen; j++)
        d[0][j] = (uint8_t)j;
    for (size_t i = 1; i <= alen; i++) {
        for (size_t j = 1; j <= blen; j++) {
            unsigned cost = fold(a[i - 1]) == fold(b[j - 1]) ? 0 : 1;
            unsigned best = d[i - 1][j] + 1u;
            if (d[i][j - 1] + 1u < best)
                best = d[i][j - 1] + 1u;
            if (d[i - 1][j - 1] + cost < best)
                best = d[i - 1][j - 1] + cost;
            if (i > 1 && j > 1 && fold(a[i - 1]) == fold(b[j - 2]) &&
                fold(a[i - 2]) == fold(b[j - 1]) && d[i - 2][j - 2] + 1u < best)
                best = d[i - 2][j - 2] + 1u;
            d[i][j] = (uint8_t)best;
        }
    }
    return d[alen][blen];
}

bool tf_proto_ctl_is_near(const char *typed, size_t tlen, const char *candidate, size_t clen)
{
    size_t dist = tf_proto_ctl_distance(typed, tlen, candidate, clen);
    return dist >= 1 && (dist == 1 || (dist == 2 && tlen >= 5 && clen >= 5));
}
