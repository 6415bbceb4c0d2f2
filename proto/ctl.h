/* SPDX-License-Identifier: MIT */
/*
 * The control protocol's framing and message access (docs/CONTROL.md), shared
 * by twofoldd and the twofold CLI.
 *
 * A frame is a u32be length followed by that many bytes of msgpack.  Bodies
 * are decoded into msgpack-c object trees only after tf_proto_mp_check has
 * proven every declared count fits in the bytes (msgpack-c allocates from
 * declared counts: issue #1013), and every map in the tree is then checked to
 * have string keys without duplicates.
 */
#ifndef TF_PROTO_CTL_H
#define TF_PROTO_CTL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <msgpack/object.h>
#include <msgpack/zone.h>

#include "proto/err.h"

#define TF_PROTO_CTL_VERSION 1
#define TF_PROTO_CTL_HEADER_LEN 4
/* Largest request a node accepts, and largest reply or event a client accepts. */
#define TF_PROTO_CTL_REQUEST_MAX (64u * 1024u)
#define TF_PROTO_CTL_REPLY_MAX (64u * 1024u * 1024u)
/* Most keys in one map of a control message. */
#define TF_PROTO_CTL_MAP_MAX 64
/* Deepest nesting in a control message. */
#define TF_PROTO_CTL_DEPTH_MAX 8

/* Writes the 4-byte header for a body of len bytes. */
void tf_proto_ctl_frame_header(uint8_t out[static TF_PROTO_CTL_HEADER_LEN], uint32_t len);

/* Reads a frame header from buf: TF_E_AGAIN if fewer than 4 bytes,
 * TF_E_TOO_LONG if the length exceeds max, TF_E_BAD_LENGTH if it is 0;
 * otherwise TF_OK with the body length in *body_len. */
TF_MUST_CHECK int tf_proto_ctl_frame_parse(const uint8_t *buf, size_t len, uint32_t max,
                                           uint32_t *body_len);

/* Decodes one msgpack value that fills buf exactly into *out, allocating from
 * zone (which owns the tree; the tree may point into buf, so keep buf alive
 * too).  Rejects malformed input (tf_proto_mp_check errors), maps with
 * non-string keys (TF_E_BAD_KEY), duplicate keys (TF_E_DUP_KEY) or more than
 * TF_PROTO_CTL_MAP_MAX keys (TF_E_TOO_LONG). */
TF_MUST_CHECK int tf_proto_ctl_unpack(const uint8_t *buf, size_t len, msgpack_zone *zone,
                                      msgpack_object *out);

/* Looks up key in a map; NULL if obj is not a map or has no such key. */
const msgpack_object *tf_proto_ctl_get(const msgpack_object *obj, const char *key);

/* Typed lookups: TF_E_NOT_FOUND if absent (or nil), TF_E_TYPE if present with
 * another type.  Strings are views (not NUL-terminated) into the tree. */
TF_MUST_CHECK int tf_proto_ctl_get_str(const msgpack_object *obj, const char *key, const char **ptr,
                                       size_t *len);
TF_MUST_CHECK int tf_proto_ctl_get_uint(const msgpack_object *obj, const char *key, uint64_t *out);
TF_MUST_CHECK int tf_proto_ctl_get_int(const msgpack_object *obj, const char *key, int64_t *out);
TF_MUST_CHECK int tf_proto_ctl_get_bool(const msgpack_object *obj, const char *key, bool *out);
/* An array whose elements must all be strings (TF_E_TYPE otherwise). */
TF_MUST_CHECK int tf_proto_ctl_get_str_array(const msgpack_object *obj, const char *key,
                                             const msgpack_object_array **out);

/* Copies a str object into a NUL-terminated buffer; TF_E_TOO_LONG if it does
 * not fit, TF_E_BAD_TEXT if it contains a NUL byte. */
TF_MUST_CHECK int tf_proto_ctl_strcpy(char *dst, size_t cap, const char *ptr, size_t len);

/* Did-you-mean (issue 16, ux): the edit distance between a[0..alen) and
 * b[0..blen) counting insertions, deletions, substitutions and swaps of two
 * neighbouring bytes (optimal string alignment), case-insensitive for ASCII.
 * Strings longer than TF_PROTO_CTL_DISTANCE_MAX bytes give SIZE_MAX. */
#define TF_PROTO_CTL_DISTANCE_MAX 64
size_t tf_proto_ctl_distance(const char *a, size_t alen, const char *b, size_t blen);

/* True if typed is close enough to candidate to suggest it: a distance of 1,
 * or 2 when both are at least 5 bytes long, and not equal. */
bool tf_proto_ctl_is_near(const char *typed, size_t tlen, const char *candidate, size_t clen);

#endif
