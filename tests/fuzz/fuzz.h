/* SPDX-License-Identifier: MIT */
/*
 * Shared by every fuzz target in tests/fuzz/.
 *
 * Each fuzz_<name>.c defines LLVMFuzzerTestOneInput.  With TF_FUZZ=ON it is
 * linked with libFuzzer (-fsanitize=fuzzer); otherwise with replay_main.c,
 * which feeds it every file of the committed corpus so regressions are caught
 * in every build.
 *
 * FUZZ_ASSERT states a property the code under test promises (a round trip,
 * a view inside its buffer, an output left untouched on failure).  It stays
 * active under NDEBUG and aborts, which libFuzzer reports as a crash and the
 * replay driver as a failed test.
 */
#ifndef TF_TESTS_FUZZ_FUZZ_H
#define TF_TESTS_FUZZ_FUZZ_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include <sodium.h>

#include "proto/mp.h"

/* The libFuzzer entry point; data is borrowed for the call. */
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define FUZZ_ASSERT(cond)                                                                          \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            fprintf(stderr, "%s:%d: property failed: %s\n", __FILE__, __LINE__, #cond);            \
            abort();                                                                               \
        }                                                                                          \
    } while (0)

/*
 * A property proto/ is known to violate; the input that shows it is kept in
 * tests/fuzz/known-bugs/<target>/ and replayed by a ctest expected to fail.
 * If violated, aborts like FUZZ_ASSERT, unless the environment sets
 * TF_FUZZ_TOLERATE_KNOWN_BUGS=1 (run-all.sh does, so that fuzzing goes on past
 * a bug already reported, and so does the known-bugs ctest, which looks for
 * the message): then says so once on stderr, returns true, and the caller
 * skips the checks that depend on the property.  Returns false when the
 * property holds.
 */
#define FUZZ_KNOWN_BUG(violated, what) fuzz_known_bug((violated), (what), __FILE__, __LINE__)

static inline bool fuzz_known_bug(bool violated, const char *what, const char *file, int line)
{
    static int tolerate = -1;
    if (!violated)
        return false;
    if (tolerate < 0) {
        const char *env = getenv("TF_FUZZ_TOLERATE_KNOWN_BUGS");
        tolerate = env != NULL && env[0] == '1';
    }
    if (tolerate) {
        static bool said;
        if (!said)
            fprintf(stderr, "%s:%d: known bug (tolerated): %s\n", file, line, what);
        said = true;
        return true;
    }
    fprintf(stderr, "%s:%d: known bug: %s\n", file, line, what);
    abort();
}

/* Written by fuzz_touch so the compiler cannot drop the reads. */
static volatile uint8_t fuzz_sink;

/* Reads every byte of p[0..len) so ASan reports a view that overruns its
 * buffer at the decoder that produced it. */
static inline void fuzz_touch(const uint8_t *p, size_t len)
{
    uint8_t acc = 0;
    FUZZ_ASSERT(len == 0 || p != NULL);
    for (size_t i = 0; i < len; i++)
        acc = (uint8_t)(acc + p[i]);
    fuzz_sink = acc;
}

static inline void fuzz_touch_view(struct tf_proto_bytes v)
{
    fuzz_touch(v.ptr, v.len);
}

/* True if the view lies entirely inside buf[0..len). */
static inline bool fuzz_view_within(struct tf_proto_bytes v, const uint8_t *buf, size_t len)
{
    if (v.len == 0)
        return true;
    uintptr_t b = (uintptr_t)buf, p = (uintptr_t)v.ptr;
    return p >= b && p - b <= len && v.len <= len - (p - b);
}

/* True if the view's bytes equal s[0..n). */
static inline bool fuzz_view_eq(struct tf_proto_bytes v, const uint8_t *s, size_t n)
{
    if (v.len != n)
        return false;
    for (size_t i = 0; i < n; i++)
        if (v.ptr[i] != s[i])
            return false;
    return true;
}

static inline bool fuzz_views_eq(struct tf_proto_bytes a, struct tf_proto_bytes b)
{
    return fuzz_view_eq(a, b.ptr, b.len);
}

/* Calls sodium_init() once; every target needs it before any libsodium call. */
static inline void fuzz_sodium_init(void)
{
    static bool done;
    if (!done) {
        FUZZ_ASSERT(sodium_init() >= 0);
        done = true;
    }
}

/* Finishes a writer and compares its bytes with want[0..n). */
static inline bool fuzz_writer_equals(struct tf_proto_mp_writer *w, const uint8_t *want, size_t n)
{
    struct tf_proto_buf got = {NULL, 0};
    int rc = tf_proto_mp_writer_finish(w, &got);
    FUZZ_ASSERT(rc == TF_OK);
    bool eq = got.len == n && (n == 0 || sodium_memcmp(got.data, want, n) == 0);
    tf_proto_buf_free(&got);
    return eq;
}

#endif
