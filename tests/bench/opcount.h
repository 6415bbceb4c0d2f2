/* SPDX-License-Identifier: MIT */
/* The file the op-counting shim (opcount.c) and twofold-bench share: one
 * per node, mapped by both.  perf, issue 17. */
#ifndef TF_BENCH_OPCOUNT_H
#define TF_BENCH_OPCOUNT_H

#include <stdint.h>

#define TF_BENCH_OPCOUNT_MAGIC 0x74666f7073636e74ULL /* set once the shim mapped the file */

enum tf_bench_opcount_op {
    TF_BENCH_OPCOUNT_SIGN,      /* crypto_sign_detached */
    TF_BENCH_OPCOUNT_VERIFY,    /* crypto_sign_verify_detached */
    TF_BENCH_OPCOUNT_SEAL,      /* crypto_box_seal */
    TF_BENCH_OPCOUNT_SEAL_OPEN, /* crypto_box_seal_open */
    TF_BENCH_OPCOUNT_COUNT
};

struct tf_bench_opcount {
    uint64_t magic;
    uint64_t n[TF_BENCH_OPCOUNT_COUNT];
};

#endif
