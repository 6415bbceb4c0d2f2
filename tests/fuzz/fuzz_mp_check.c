/* SPDX-License-Identifier: MIT */
/*
 * tf_proto_mp_check on arbitrary bytes.  Input: one byte choosing max_depth
 * (mod TF_PROTO_MP_MAX_DEPTH + 2, so values above the cap are tried too),
 * then the msgpack bytes.
 *
 * Properties when the check accepts:
 *  - it also accepts at the largest depth (a deeper limit never rejects more);
 *  - msgpack-c's unpacker, which mp.h says is safe to call after the check,
 *    parses exactly one value using every byte, and that value nests no
 *    deeper than max_depth.
 */
#include <msgpack.h>

#include "fuzz.h"

/* Container nesting as tf_proto_mp_check counts it: a non-empty array or map
 * adds a level; an empty one does not. */
static unsigned object_depth(const msgpack_object *o)
{
    unsigned d = 0;
    if (o->type == MSGPACK_OBJECT_ARRAY && o->via.array.size > 0) {
        for (uint32_t i = 0; i < o->via.array.size; i++) {
            unsigned c = object_depth(&o->via.array.ptr[i]);
            d = c > d ? c : d;
        }
        return d + 1;
    }
    if (o->type == MSGPACK_OBJECT_MAP && o->via.map.size > 0) {
        for (uint32_t i = 0; i < o->via.map.size; i++) {
            unsigned k = object_depth(&o->via.map.ptr[i].key);
            unsigned v = object_depth(&o->via.map.ptr[i].val);
            d = k > d ? k : d;
            d = v > d ? v : d;
        }
        return d + 1;
    }
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    unsigned max_depth = data[0] % (TF_PROTO_MP_MAX_DEPTH + 2);
    const uint8_t *buf = data + 1;
    size_t len = size - 1;

    int rc = tf_proto_mp_check(buf, len, max_depth);
    FUZZ_ASSERT(rc <= 0);
    if (rc != TF_OK)
        return 0;
    FUZZ_ASSERT(tf_proto_mp_check(buf, len, TF_PROTO_MP_MAX_DEPTH) == TF_OK);

    msgpack_unpacked u;
    size_t off = 0;
    msgpack_unpacked_init(&u);
    msgpack_unpack_return ur = msgpack_unpack_next(&u, (const char *)buf, len, &off);
    FUZZ_ASSERT(ur == MSGPACK_UNPACK_SUCCESS);
    FUZZ_ASSERT(off == len);
    unsigned cap = max_depth > TF_PROTO_MP_MAX_DEPTH ? TF_PROTO_MP_MAX_DEPTH : max_depth;
    FUZZ_ASSERT(object_depth(&u.data) <= cap);
    msgpack_unpacked_destroy(&u);
    return 0;
}
