/* SPDX-License-Identifier: MIT */
/*
 * Canonical msgpack: a bounded, strict reader for peer bytes and a thin writer
 * over msgpack-c's packer.
 *
 * Peer bytes never reach msgpack-c's unpacker: it allocates from a declared
 * element count before reading the elements (msgpack-c issue #1013).  The
 * reader here is schema-driven: the caller asks for the type it expects and the
 * reader checks, before it returns, that
 *   - the value has that type (TF_E_TYPE),
 *   - it is in its shortest encoding (TF_E_NONCANONICAL),
 *   - every declared length fits in the bytes left (TF_E_TRUNCATED),
 *   - lengths and counts are within the caller's bound (TF_E_TOO_LONG),
 *   - text is valid UTF-8 without control characters (TF_E_BAD_UTF8/TEXT).
 * Decoded strings and blobs are views into the input buffer: copy them before
 * the buffer is freed or reused.
 */
#ifndef TF_PROTO_MP_H
#define TF_PROTO_MP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "proto/err.h"

/* Deepest nesting tf_proto_mp_check accepts; twofold's own objects need 4. */
#define TF_PROTO_MP_MAX_DEPTH 16

/* An owned byte buffer (malloc'ed).  tf_proto_buf_free(NULL) is a no-op. */
struct tf_proto_buf {
    uint8_t *data;
    size_t len;
};

/* Frees data and zeroes the struct; safe on a zeroed struct. */
void tf_proto_buf_free(struct tf_proto_buf *buf);

/* A borrowed view of bytes (strings are NOT NUL-terminated). */
struct tf_proto_bytes {
    const uint8_t *ptr;
    size_t len;
};

struct tf_proto_mp_reader {
    const uint8_t *buf; /* borrowed for the reader's lifetime */
    size_t len;
    size_t pos;
};

/* How much control text a string may hold. */
enum tf_proto_text {
    TF_PROTO_TEXT_LINE,      /* no C0 controls, no DEL */
    TF_PROTO_TEXT_MULTILINE, /* as LINE, but '\n' and '\t' allowed */
};

void tf_proto_mp_reader_init(struct tf_proto_mp_reader *r, const uint8_t *buf, size_t len);

/* Reads an array header; the count must not exceed max (TF_E_TOO_LONG) and
 * must be plausible for the bytes left (each element takes >= 1 byte). */
TF_MUST_CHECK int tf_proto_mp_read_array(struct tf_proto_mp_reader *r, uint32_t max,
                                         uint32_t *count);

/* Reads an array header whose count must be exactly n (TF_E_COUNT). */
TF_MUST_CHECK int tf_proto_mp_read_array_exact(struct tf_proto_mp_reader *r, uint32_t n);

/* Reads a map header (count pairs, bounded as for arrays). */
TF_MUST_CHECK int tf_proto_mp_read_map(struct tf_proto_mp_reader *r, uint32_t max, uint32_t *count);

/* Reads the next integer key of an integer-keyed map whose keys are 1, 2,
 * 3, ... in order.  *prev is the previous key (or -1 before the first).  A key
 * already seen (1..*prev) gives TF_E_DUP_KEY; any other key than `expected`
 * (or a key that is not an unsigned integer) gives TF_E_BAD_KEY. */
TF_MUST_CHECK int tf_proto_mp_read_key(struct tf_proto_mp_reader *r, int64_t *prev,
                                       uint64_t expected);

/* Reads a non-negative integer (positive fixint, uint8..uint64). */
TF_MUST_CHECK int tf_proto_mp_read_uint(struct tf_proto_mp_reader *r, uint64_t *v);

/* Reads true/false. */
TF_MUST_CHECK int tf_proto_mp_read_bool(struct tf_proto_mp_reader *r, bool *v);

/* True if the next byte is nil (does not consume it). */
bool tf_proto_mp_peek_nil(const struct tf_proto_mp_reader *r);

/* Consumes a nil. */
TF_MUST_CHECK int tf_proto_mp_read_nil(struct tf_proto_mp_reader *r);

/* Reads a bin of length min..max; *out views the input. */
TF_MUST_CHECK int tf_proto_mp_read_bin(struct tf_proto_mp_reader *r, size_t min, size_t max,
                                       struct tf_proto_bytes *out);

/* Reads a bin of exactly n bytes and copies it to dst (TF_E_BAD_LENGTH). */
TF_MUST_CHECK int tf_proto_mp_read_bin_fixed(struct tf_proto_mp_reader *r, uint8_t *dst, size_t n);

/* Reads a str of min..max bytes, valid UTF-8 of the given text class. */
TF_MUST_CHECK int tf_proto_mp_read_str(struct tf_proto_mp_reader *r, size_t min, size_t max,
                                       enum tf_proto_text text, struct tf_proto_bytes *out);

/* TF_OK if every byte was consumed, else TF_E_TRAILING. */
TF_MUST_CHECK int tf_proto_mp_read_end(const struct tf_proto_mp_reader *r);

/*
 * Structural pre-pass over arbitrary msgpack: checks that buf holds exactly one
 * well-formed value (TF_E_TRAILING otherwise), that every declared length and
 * count fits in the bytes left (TF_E_TRUNCATED), and that nesting is at most
 * max_depth (TF_E_TOO_DEEP).  Does not allocate and uses O(1) stack per level
 * (iterative).  Use it before handing bytes to msgpack-c's unpacker.
 */
TF_MUST_CHECK int tf_proto_mp_check(const uint8_t *buf, size_t len, unsigned max_depth);

/* True if s[0..len) is valid UTF-8 (no overlongs, surrogates or values above
 * U+10FFFF). */
bool tf_proto_utf8_is_valid(const uint8_t *s, size_t len);

/* Writer: a sticky-error wrapper around msgpack_packer + msgpack_sbuffer.
 * Errors (out of memory) are remembered and reported by _finish. */
struct tf_proto_mp_writer {
    uint8_t *data;
    size_t len;
    size_t cap;
    int err;
};

void tf_proto_mp_writer_init(struct tf_proto_mp_writer *w);
void tf_proto_mp_write_array(struct tf_proto_mp_writer *w, uint32_t n);
void tf_proto_mp_write_map(struct tf_proto_mp_writer *w, uint32_t n);
void tf_proto_mp_write_uint(struct tf_proto_mp_writer *w, uint64_t v);
/* Signed integer (control protocol error codes); never used in signed objects. */
void tf_proto_mp_write_int(struct tf_proto_mp_writer *w, int64_t v);
/* Appends already-encoded msgpack bytes (one or more complete values). */
void tf_proto_mp_write_raw(struct tf_proto_mp_writer *w, const uint8_t *p, size_t n);
/* NUL-terminated string as str. */
void tf_proto_mp_write_cstr(struct tf_proto_mp_writer *w, const char *s);
/* As tf_proto_mp_write_cstr, but nil for NULL or "" (an absent optional text). */
void tf_proto_mp_write_cstr_or_nil(struct tf_proto_mp_writer *w, const char *s);
void tf_proto_mp_write_bool(struct tf_proto_mp_writer *w, bool v);
void tf_proto_mp_write_nil(struct tf_proto_mp_writer *w);
void tf_proto_mp_write_bin(struct tf_proto_mp_writer *w, const uint8_t *p, size_t n);
void tf_proto_mp_write_str(struct tf_proto_mp_writer *w, const char *p, size_t n);
/* Writes a view as str (nil view.ptr with len 0 writes an empty string). */
void tf_proto_mp_write_text(struct tf_proto_mp_writer *w, struct tf_proto_bytes s);

/* Moves the encoded bytes into *out (caller owns; free with
 * tf_proto_buf_free) and resets the writer.  On error, frees everything and
 * returns it. */
TF_MUST_CHECK int tf_proto_mp_writer_finish(struct tf_proto_mp_writer *w, struct tf_proto_buf *out);

/* Frees the writer's bytes without returning them. */
void tf_proto_mp_writer_deinit(struct tf_proto_mp_writer *w);

#endif
