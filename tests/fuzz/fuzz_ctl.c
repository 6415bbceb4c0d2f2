/* SPDX-License-Identifier: MIT */
/*
 * Control protocol messages: tf_proto_ctl_frame_parse on the input's first
 * bytes and tf_proto_ctl_unpack on the whole input as a frame body, then
 * every typed getter on every key of every map in the tree.
 *
 * Properties:
 *  - frame_parse: TF_E_AGAIN exactly when fewer than 4 bytes; an accepted
 *    length is 1..max and is the big-endian header;
 *  - an unpacked tree nests no deeper than TF_PROTO_CTL_DEPTH_MAX, and every
 *    map has at most TF_PROTO_CTL_MAP_MAX distinct string keys, so looking up
 *    a key finds exactly its own value; the typed getters agree with the
 *    value's type; strings and bins lie inside the input and are touched.
 */
#include <string.h>

#include <msgpack.h>

#include "fuzz.h"
#include "proto/ctl.h"

static void check_frame(const uint8_t *data, size_t size)
{
    uint32_t body_len = 0;
    int rc = tf_proto_ctl_frame_parse(data, size, TF_PROTO_CTL_REQUEST_MAX, &body_len);
    if (size < TF_PROTO_CTL_HEADER_LEN) {
        FUZZ_ASSERT(rc == TF_E_AGAIN);
        return;
    }
    FUZZ_ASSERT(rc != TF_E_AGAIN);
    if (rc != TF_OK)
        return;
    FUZZ_ASSERT(body_len >= 1 && body_len <= TF_PROTO_CTL_REQUEST_MAX);
    uint8_t hdr[TF_PROTO_CTL_HEADER_LEN];
    tf_proto_ctl_frame_header(hdr, body_len);
    FUZZ_ASSERT(memcmp(hdr, data, sizeof hdr) == 0);
}

static void check_raw(const char *p, size_t n, const uint8_t *buf, size_t len)
{
    struct tf_proto_bytes v = {(const uint8_t *)p, n};
    FUZZ_ASSERT(fuzz_view_within(v, buf, len));
    fuzz_touch_view(v);
}

static void check_lookups(const msgpack_object *map, uint32_t i)
{
    const msgpack_object_kv *kv = &map->via.map.ptr[i];
    char key[256];
    const msgpack_object *v = &kv->val;
    /* Lookups take NUL-terminated keys: only keys without NUL can be asked. */
    if (tf_proto_ctl_strcpy(key, sizeof key, kv->key.via.str.ptr, kv->key.via.str.size) != TF_OK)
        return;
    FUZZ_ASSERT(tf_proto_ctl_get(map, key) == v);

    const char *s;
    size_t slen;
    uint64_t u;
    int64_t i64;
    bool b;
    const msgpack_object_array *arr;
    bool nil = v->type == MSGPACK_OBJECT_NIL;
    int rc = tf_proto_ctl_get_str(map, key, &s, &slen);
    FUZZ_ASSERT(rc == (nil ? TF_E_NOT_FOUND : v->type == MSGPACK_OBJECT_STR ? TF_OK : TF_E_TYPE));
    if (rc == TF_OK)
        FUZZ_ASSERT(s == v->via.str.ptr && slen == v->via.str.size);
    rc = tf_proto_ctl_get_uint(map, key, &u);
    FUZZ_ASSERT(rc == (nil                                          ? TF_E_NOT_FOUND
                       : v->type == MSGPACK_OBJECT_POSITIVE_INTEGER ? TF_OK
                                                                    : TF_E_TYPE));
    rc = tf_proto_ctl_get_int(map, key, &i64);
    if (rc == TF_OK)
        FUZZ_ASSERT(v->type == MSGPACK_OBJECT_NEGATIVE_INTEGER ? i64 < 0 : i64 >= 0);
    rc = tf_proto_ctl_get_bool(map, key, &b);
    FUZZ_ASSERT(rc == (nil                                 ? TF_E_NOT_FOUND
                       : v->type == MSGPACK_OBJECT_BOOLEAN ? TF_OK
                                                           : TF_E_TYPE));
    rc = tf_proto_ctl_get_str_array(map, key, &arr);
    if (rc == TF_OK) {
        FUZZ_ASSERT(v->type == MSGPACK_OBJECT_ARRAY && arr == &v->via.array);
        for (uint32_t k = 0; k < arr->size; k++) {
            FUZZ_ASSERT(arr->ptr[k].type == MSGPACK_OBJECT_STR);
            char copy[64];
            rc = tf_proto_ctl_strcpy(copy, sizeof copy, arr->ptr[k].via.str.ptr,
                                     arr->ptr[k].via.str.size);
            if (rc == TF_OK)
                FUZZ_ASSERT(strlen(copy) == arr->ptr[k].via.str.size);
        }
    }
}

static unsigned walk(const msgpack_object *o, const uint8_t *buf, size_t len)
{
    unsigned depth = 0;
    switch (o->type) {
    case MSGPACK_OBJECT_STR:
        check_raw(o->via.str.ptr, o->via.str.size, buf, len);
        break;
    case MSGPACK_OBJECT_BIN:
        check_raw(o->via.bin.ptr, o->via.bin.size, buf, len);
        break;
    case MSGPACK_OBJECT_EXT:
        check_raw(o->via.ext.ptr, o->via.ext.size, buf, len);
        break;
    case MSGPACK_OBJECT_ARRAY:
        for (uint32_t i = 0; i < o->via.array.size; i++) {
            unsigned d = walk(&o->via.array.ptr[i], buf, len);
            depth = d > depth ? d : depth;
        }
        return o->via.array.size > 0 ? depth + 1 : 0;
    case MSGPACK_OBJECT_MAP:
        FUZZ_ASSERT(o->via.map.size <= TF_PROTO_CTL_MAP_MAX);
        for (uint32_t i = 0; i < o->via.map.size; i++) {
            const msgpack_object_kv *kv = &o->via.map.ptr[i];
            FUZZ_ASSERT(kv->key.type == MSGPACK_OBJECT_STR);
            for (uint32_t j = 0; j < i; j++)
                FUZZ_ASSERT(o->via.map.ptr[j].key.via.str.size != kv->key.via.str.size ||
                            memcmp(o->via.map.ptr[j].key.via.str.ptr, kv->key.via.str.ptr,
                                   kv->key.via.str.size) != 0);
            check_raw(kv->key.via.str.ptr, kv->key.via.str.size, buf, len);
            check_lookups(o, i);
            unsigned d = walk(&kv->val, buf, len);
            depth = d > depth ? d : depth;
        }
        return o->via.map.size > 0 ? depth + 1 : 0;
    default:
        break;
    }
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    check_frame(data, size);

    msgpack_zone zone;
    msgpack_object obj;
    FUZZ_ASSERT(msgpack_zone_init(&zone, 4096));
    int rc = tf_proto_ctl_unpack(data, size, &zone, &obj);
    FUZZ_ASSERT(rc <= 0);
    if (rc == TF_OK) {
        FUZZ_ASSERT(tf_proto_mp_check(data, size, TF_PROTO_CTL_DEPTH_MAX) == TF_OK);
        FUZZ_ASSERT(walk(&obj, data, size) <= TF_PROTO_CTL_DEPTH_MAX);
        /* Lookups on something that is not a map find nothing. */
        if (obj.type != MSGPACK_OBJECT_MAP)
            FUZZ_ASSERT(tf_proto_ctl_get(&obj, "id") == NULL);
    }
    msgpack_zone_destroy(&zone);
    return 0;
}
