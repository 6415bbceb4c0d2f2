/* SPDX-License-Identifier: MIT */
/*
 * twofold-bench: an end-to-end benchmark of real twofoldd processes on
 * loopback (issue 7, docs/PERFORMANCE.md).  This header joins its modules:
 *
 *   ctl.c   a non-blocking control-socket client (docs/CONTROL.md) that can
 *           pipeline requests and read watch events, framed and decoded with
 *           proto/ctl (node bytes never reach msgpack_unpack directly);
 *   proc.c  processes and files: the CLI for setup, starting and stopping
 *           nodes, /proc figures (CPU, RSS), temporary homes;
 *   ops.c   the cost of each libsodium operation the protocol uses, and the
 *           table of how many of each one introduction takes;
 *   twofold-bench.c  options, the run itself, and the report.
 *
 * Errors follow the project's rule: 0 or a negative code (-errno, or a
 * TF_E_* code); a function that fails also writes one line into `why`.
 */
#ifndef TF_BENCH_BENCH_H
#define TF_BENCH_BENCH_H

#include <signal.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include <msgpack/object.h>
#include <msgpack/zone.h>

#include "proto/identity.h"
#include "proto/mp.h"

#define TF_BENCH_PATH_MAX 512
#define TF_BENCH_WHY_MAX 512

/* Set by SIGINT/SIGTERM: every wait in the bench ends when it is non-zero.
 * The process's only global besides what libsodium keeps. */
extern volatile sig_atomic_t tf_bench_stop;

/* Monotonic time in seconds. */
double tf_bench_now(void);

/* ctl.c: one control connection. */

struct tf_bench_ctl {
    int fd; /* -1 when closed */
    uint8_t *out;
    size_t out_off, out_len, out_cap; /* bytes [out_off, out_len) wait to be written */
    uint8_t *in;
    size_t in_off, in_len, in_cap; /* bytes [in_off, in_len) are unread */
    size_t last_len;               /* the last frame handed out, dropped at the next call */
    msgpack_zone zone;
    bool zone_ready;
    uint64_t next_id;
};

/* Connects to <home>/control.sock and makes the socket non-blocking.  Safe to
 * close after a failure. */
int tf_bench_ctl_open(struct tf_bench_ctl *c, const char *home, char *why, size_t why_cap);

/* Closes the connection and frees everything; safe on a zeroed struct and
 * twice. */
void tf_bench_ctl_close(struct tf_bench_ctl *c);

/* Starts a request: writes {id, verb, args: map of nargs pairs} (no args key
 * when nargs is 0) into *w, which the caller initialises nothing of.  The
 * caller then writes exactly nargs key/value pairs and calls
 * tf_bench_ctl_send.  Returns the request id. */
uint64_t tf_bench_ctl_begin(struct tf_bench_ctl *c, struct tf_proto_mp_writer *w, const char *verb,
                            uint32_t nargs);

/* Finishes *w (taken: it is reset whatever happens), frames it, queues it and
 * writes as much as the socket takes now. */
int tf_bench_ctl_send(struct tf_bench_ctl *c, struct tf_proto_mp_writer *w);

/* Writes queued bytes until done or the socket is full. */
int tf_bench_ctl_flush(struct tf_bench_ctl *c);

/* True if queued bytes wait for the socket (poll for POLLOUT). */
bool tf_bench_ctl_want_write(const struct tf_bench_ctl *c);

/* Reads what the socket has now.  -EPIPE once the node closed it. */
int tf_bench_ctl_fill(struct tf_bench_ctl *c);

/* Decodes the next buffered frame into *out: 1 if there was one, 0 if more
 * bytes are needed, or an error.  The tree views c's buffer and zone: valid
 * until the next tf_bench_ctl_next or tf_bench_ctl_fill on c. */
int tf_bench_ctl_next(struct tf_bench_ctl *c, msgpack_object *out);

/* Sends the request in *w and waits up to timeout_s for its reply, skipping
 * other frames.  On success *result views the reply's result (nil if none),
 * valid as for tf_bench_ctl_next; a refusal is TF_E_BAD_STATE with the
 * node's error name and message in why. */
int tf_bench_ctl_call(struct tf_bench_ctl *c, struct tf_proto_mp_writer *w, double timeout_s,
                      msgpack_object *result, char *why, size_t why_cap);

/* For a reply frame: its id, and either *result (ok) or the refusal in why
 * (returns TF_E_BAD_STATE).  TF_E_BAD_KEY if it is not a reply. */
int tf_bench_ctl_reply(const msgpack_object *frame, uint64_t *id, msgpack_object *result, char *why,
                       size_t why_cap);

/* proc.c: processes, /proc, files. */

struct tf_bench_mem {
    uint64_t rss_kb;  /* VmRSS */
    uint64_t hwm_kb;  /* VmHWM: peak RSS */
    uint64_t anon_kb; /* RssAnon: heap and stacks, without the mapped store */
};

/* Runs argv (argv[0] is the program path) with stdout captured into *out
 * (malloc'ed, NUL-terminated, owned by the caller; may be NULL) and stderr
 * appended to log_path.  Fails unless it exits 0 within timeout_s. */
int tf_bench_run(char *const argv[], const char *log_path, double timeout_s, char **out, char *why,
                 size_t why_cap);

/* Starts argv in its own process group with stdout and stderr appended to
 * log_path (so a Ctrl-C reaches only the bench, which stops the nodes in
 * order). */
int tf_bench_spawn(char *const argv[], const char *log_path, pid_t *pid, char *why, size_t why_cap);

/* Waits until log_path contains needle (after byte `from`), or pid exits, or
 * timeout_s passes. */
int tf_bench_wait_log(pid_t pid, const char *log_path, size_t from, const char *needle,
                      double timeout_s, char *why, size_t why_cap);

/* Size of a file in bytes (0 if it does not exist). */
uint64_t tf_bench_file_size(const char *path);

/* Waits up to timeout_s for pid to exit (sending SIGTERM first if `term`),
 * then SIGKILLs it.  *status is the wait status.  Returns 0 if the process
 * exited by itself in time.  Send SIGTERM once: a node that is already
 * shutting down has closed its signal handlers. */
int tf_bench_stop_pid(pid_t pid, bool term, double timeout_s, int *status);

/* utime + stime of pid, in seconds. */
int tf_bench_proc_cpu(pid_t pid, double *cpu_s);

/* VmRSS and VmHWM of pid. */
int tf_bench_proc_mem(pid_t pid, struct tf_bench_mem *m);

/* A TCP port on 127.0.0.1 that is free right now (bind to 0, read, close). */
int tf_bench_free_port(uint16_t *port);

/* Removes a directory tree (no symlinks followed). */
int tf_bench_rmtree(const char *path);

/* Prints the last `lines` lines of a file to stderr, each prefixed. */
void tf_bench_tail(const char *path, const char *prefix, int lines);

/* ops.c: libsodium costs and the per-intro op table. */

enum tf_bench_op {
    TF_BENCH_OP_SIGN,       /* crypto_sign_detached */
    TF_BENCH_OP_VERIFY,     /* crypto_sign_verify_detached */
    TF_BENCH_OP_SCALARMULT, /* crypto_scalarmult (X25519) */
    TF_BENCH_OP_SEAL,       /* crypto_box_seal */
    TF_BENCH_OP_SEAL_OPEN,  /* crypto_box_seal_open */
    TF_BENCH_OP_HASH,       /* crypto_generichash */
    TF_BENCH_OP_AEAD,       /* crypto_aead_chacha20poly1305_ietf encrypt or decrypt */
    TF_BENCH_OP_COUNT
};

/* A short stable name for JSON ("sign", "verify", ...). */
const char *tf_bench_op_name(enum tf_bench_op op);

/* One line of OPS_PER_INTRO (ops.c): `count` of `op` at one step. */
struct tf_bench_op_count {
    enum tf_bench_op op;
    double count;
    const char *where;
};

/* The table, and its length. */
const struct tf_bench_op_count *tf_bench_ops_table(size_t *n);

/* How many of op one introduction takes, summed over the table. */
double tf_bench_ops_per_intro(enum tf_bench_op op);

/* direct (issue 17): the ops every envelope sealed adds (SEALED_PER_INTRO),
 * and the per-intro total with them (sealed) or without (direct links). */
const struct tf_bench_op_count *tf_bench_ops_sealed_table(size_t *n);
double tf_bench_ops_per_intro_as(enum tf_bench_op op, bool sealed);

/* Measures each op: median over batches, in microseconds of process CPU
 * time.  Takes a few hundred milliseconds. */
void tf_bench_ops_measure(double us[static TF_BENCH_OP_COUNT]);

#endif
