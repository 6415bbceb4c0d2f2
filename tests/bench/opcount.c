/* SPDX-License-Identifier: MIT */
/*
 * twofold-bench's op counter (perf, issue 17; docs/PERFORMANCE.md): an
 * LD_PRELOAD shim the bench puts in front of each twofoldd it starts.  It
 * wraps the four libsodium calls whose cost binds an introduction and counts
 * each call in a file the bench maps too (TF_BENCH_OPS_FILE, laid out as
 * struct tf_bench_opcount), so the bench reads the counts before and after a
 * phase.  The count is taken at the library boundary: every call the node
 * makes, whatever code path made it, and none it skips.
 *
 * A shim is handed no context, so its state is process-wide: the mapping and
 * the real functions, each set once.  It never changes what a call does.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* RTLD_NEXT */
#endif
#include "tests/bench/opcount.h"

#include <dlfcn.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include <sodium.h>

static struct tf_bench_opcount *counts; /* NULL until mapped */
static int map_tried;

static void count(enum tf_bench_opcount_op op)
{
    if (!map_tried) {
        map_tried = 1;
        const char *path = getenv("TF_BENCH_OPS_FILE");
        int fd = path != NULL ? open(path, O_RDWR | O_CLOEXEC) : -1;
        if (fd >= 0) {
            void *p = mmap(NULL, sizeof *counts, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
            close(fd);
            if (p != MAP_FAILED) {
                counts = p;
                __atomic_store_n(&counts->magic, TF_BENCH_OPCOUNT_MAGIC, __ATOMIC_RELAXED);
            }
        }
    }
    if (counts != NULL)
        __atomic_fetch_add(&counts->n[op], 1, __ATOMIC_RELAXED);
}

/* The next definition of name (libsodium's), found once. */
static void *real(void **slot, const char *name)
{
    if (*slot == NULL)
        *slot = dlsym(RTLD_NEXT, name);
    if (*slot == NULL)
        abort(); /* no libsodium behind the shim: nothing sensible to do */
    return *slot;
}

int crypto_sign_detached(unsigned char *sig, unsigned long long *siglen_p, const unsigned char *m,
                         unsigned long long mlen, const unsigned char *sk)
{
    static void *slot;
    int (*f)(unsigned char *, unsigned long long *, const unsigned char *, unsigned long long,
             const unsigned char *);
    void *p = real(&slot, "crypto_sign_detached");
    memcpy(&f, &p, sizeof f);
    count(TF_BENCH_OPCOUNT_SIGN);
    return f(sig, siglen_p, m, mlen, sk);
}

int crypto_sign_verify_detached(const unsigned char *sig, const unsigned char *m,
                                unsigned long long mlen, const unsigned char *pk)
{
    static void *slot;
    int (*f)(const unsigned char *, const unsigned char *, unsigned long long,
             const unsigned char *);
    void *p = real(&slot, "crypto_sign_verify_detached");
    memcpy(&f, &p, sizeof f);
    count(TF_BENCH_OPCOUNT_VERIFY);
    return f(sig, m, mlen, pk);
}

int crypto_box_seal(unsigned char *c, const unsigned char *m, unsigned long long mlen,
                    const unsigned char *pk)
{
    static void *slot;
    int (*f)(unsigned char *, const unsigned char *, unsigned long long, const unsigned char *);
    void *p = real(&slot, "crypto_box_seal");
    memcpy(&f, &p, sizeof f);
    count(TF_BENCH_OPCOUNT_SEAL);
    return f(c, m, mlen, pk);
}

int crypto_box_seal_open(unsigned char *m, const unsigned char *c, unsigned long long clen,
                         const unsigned char *pk, const unsigned char *sk)
{
    static void *slot;
    int (*f)(unsigned char *, const unsigned char *, unsigned long long, const unsigned char *,
             const unsigned char *);
    void *p = real(&slot, "crypto_box_seal_open");
    memcpy(&f, &p, sizeof f);
    count(TF_BENCH_OPCOUNT_SEAL_OPEN);
    return f(m, c, clen, pk, sk);
}
