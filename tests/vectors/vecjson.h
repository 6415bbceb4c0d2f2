/* SPDX-License-Identifier: MIT */
/* Small jansson helpers shared by the vector generator and checker. */
#ifndef TF_TESTS_VECTORS_VECJSON_H
#define TF_TESTS_VECTORS_VECJSON_H

#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "proto/mp.h"

/* New JSON string of lowercase hex. */
json_t *vec_hex(const uint8_t *p, size_t n);
json_t *vec_hex_buf(const struct tf_proto_buf *b);

/* Decodes the hex string member `key` of obj into a malloc'ed buffer.
 * Returns 0, or -1 if missing or not hex. */
int vec_unhex(const json_t *obj, const char *key, struct tf_proto_buf *out);

#endif
