/* SPDX-License-Identifier: MIT */
/*
 * struct tf_node: one running twofoldd.  Owns the event loop's handles, the
 * identity, the store and the control server, and runs group commit: a
 * uv_prepare callback commits the loop turn's write transaction before the
 * loop sleeps, then releases the replies and events that waited for it.
 */
#ifndef TF_NODE_NODE_H
#define TF_NODE_NODE_H

#include <stdbool.h>
#include <stdint.h>

#include <uv.h>

#include "node/config.h"
#include "node/home.h"
#include "node/store.h"
#include "proto/card.h"
#include "proto/identity.h"
#include "proto/mp.h"

struct tf_node_ctl;
struct tf_node_net;
struct tf_node_delivery;
struct tf_node_ping;
struct tf_proto_policy;

struct tf_node_options {
    const char *home; /* resolved home directory */
};

/* Counters since start, for `status` (docs/CONTROL.md) and the benchmark. */
struct tf_node_stats {
    uint64_t envelopes_sent;     /* including resends */
    uint64_t envelopes_received; /* including duplicates and refused ones */
    uint64_t frames_sent;        /* link messages (after the handshake) */
    uint64_t frames_received;
    uint64_t writes;    /* socket writes: handshake messages, batches of frames */
    uint64_t commit_us; /* time spent committing (writing and syncing the store) */
    /* perf (issue 17): bytes the loop thread handed to write(2), pwrite(2)
     * and pwritev(2) inside commits: the kernel's wchar (/proc/thread-self/io)
     * read before and after each commit.  Nothing else writes on that thread
     * during a commit, so it is exactly what LMDB wrote: its dirty pages
     * (4 KiB each) and the meta page's changed bytes; 0 if the kernel does not
     * account task I/O.  (Not write_bytes: with large page-cache folios the
     * kernel counts a whole folio, up to 2 MiB, for one 4 KiB write.) */
    uint64_t commit_write_bytes;
    /* ackdefer (issue 17): commits whose only writes were outbox deletes
     * after ACKs (node/delivery.c): a commit that promised nothing to
     * anyone. */
    uint64_t commits_acks_only;
    uint64_t acks_deferred;  /* outbox deletes after ACKs left to a later commit */
    uint64_t ack_defer_full; /* ... written at once: ack_defer_max were waiting */
    /* waitcommit (issue 17): commits of a batch that waited past the end of
     * its loop turn, because its every change said it may wait
     * (tf_node_commit_may_wait). */
    uint64_t commits_waited;
};

/* Savepoints over the store batch and the events waiting for it. */
struct tf_node_savepoint {
    size_t store;
    size_t events;
};

/* An event appended in this loop turn (tf_node.pending_events). */
struct tf_node_pending_event {
    struct tf_proto_buf frame; /* the framed event message */
    uint64_t seq;
};

struct tf_node {
    uv_loop_t *loop; /* borrowed */
    char home[TF_NODE_PATH_MAX];
    char socket_path[TF_NODE_PATH_MAX];
    int lock_fd;
    int wchar_fd; /* /proc/thread-self/io of the loop thread; -1 unopened, -2 none */
    struct tf_proto_identity id;
    char text_id[TF_PROTO_TEXT_ID_SIZE];
    struct tf_node_store *store;
    struct tf_proto_buf card; /* own signed card */
    struct tf_proto_card card_fields;
    char listen[TF_PROTO_CARD_ADDR_MAX + 1];
    uint64_t started;
    struct tf_node_config config;
    struct tf_node_ctl *ctl;
    struct tf_node_net *net;
    struct tf_node_delivery *delivery;
    struct tf_node_ping *pings; /* pending pings (node/ping.c) */
    uv_timer_t intro_sweep;     /* expires intros (node/intro.c) */
    uv_timer_t events_sweep;    /* collects old events and policy counters */
    /* Intros whose proposal this node refused lately (node/intro.c): their
     * closes are acknowledged rather than left to wait for a proposal that
     * will not come.  A ring (oldest overwritten); a refusal of a verified
     * proposal is also kept as a tombstone, written by the intro sweep
     * before the refusal's ACK is committed (unsaved until then). */
    struct tf_node_refused_intro {
        uint8_t id[32];
        uint8_t connector[32];
        bool stranger; /* the connector was not a contact */
        bool unsaved;  /* a tombstone is still to be written */
    } refused_intros[64];
    size_t next_refused_intro;
    struct tf_node_stats stats;
    struct tf_proto_policy *policy; /* the owner's rules, NULL: ask (node/policy.c) */
    /* Test hook (TWOFOLD_TEST_CRASH=after-receive-commit): die by SIGKILL
     * right after committing a received envelope, before its ACK is sent.
     * Read only in builds with TF_TEST_HOOKS (tf_node_test_hooks); in others
     * it stays false. */
    bool test_crash_after_receive;
    bool test_crash_armed;
    /* Test hook (TWOFOLD_TEST_CRASH=eio-on-receive-commit): the commit that
     * would end as test_crash_after_receive's does fails with EIO instead, as
     * a failed sync would (the batch is aborted). */
    bool test_commit_eio;
    /* Test hook (TWOFOLD_TEST_CRASH=fail-outbox-delete): the first outbox
     * delete after start fails with EIO, as a failed write would
     * (node/delivery.c finish). */
    bool test_fail_outbox_delete;
    /* Test hook (TWOFOLD_TEST_CRASH=before-waited-commit): die by SIGKILL
     * when a batch that waited (waitcommit) is to be committed because its
     * deadline came, before the commit. */
    bool test_crash_waited;
    uv_prepare_t commit;
    uv_signal_t sig_int, sig_term, sig_hup;
    bool stopping;
    /* Events appended in this loop turn, broadcast to watchers after commit:
     * each framed event message with its seq. */
    struct tf_node_pending_event *pending_events;
    size_t n_pending_events, cap_pending_events;
    /* requests (node/request.c): expires and collects requests */
    uv_timer_t request_sweep;
    /* powerloss: non-zero once the store failed in a way the node cannot
     * survive (a commit whose write or sync failed): the exit status
     * twofoldd returns after the orderly stop (TF_NODE_EXIT_STORE). */
    int exit_status;
    /* powerloss: the last commit failed for want of space (-ENOSPC): new
     * work is refused until a commit succeeds again (node/node.c). */
    bool store_full;
    uint64_t disk_checked_ms; /* when free space was last checked (loop ms) */
    uint64_t disk_warned_ms;  /* when the low-space warning was last logged */
    /* mailbox: envelopes held for tenants, links to the own mailboxes
     * (node/mailbox.c). */
    struct tf_node_mailbox *mailbox;
    /* waitcommit (node/node.c): how much of the open batch may wait
     * (tf_node_commit_may_wait).  The batch may wait while the store's
     * savepoint and the pending events are still at `upto`: nothing else
     * was written or emitted after the last change that said so. */
    struct {
        uint64_t batch;                /* the store batch `upto` is of */
        struct tf_node_savepoint upto; /* where the changes that may wait end */
        uint64_t deadline;             /* loop ms: commit by then */
        uv_timer_t timer;              /* wakes the loop at the deadline */
        bool held;                     /* a turn ended without committing it */
    } waiting;
    /* Set by a handler of a received envelope (node/intro.c) whose change
     * sends nothing and may wait; node/delivery.c reads and clears it. */
    bool receive_may_wait;
};

/* twofoldd's exit status after a commit failed to write or sync (EIO and
 * the like): the node cannot tell what reached the disk and no longer trusts
 * the page cache, so it stops without sending anything of that batch; a
 * restart recovers from what is on disk.  EX_IOERR of sysexits.h. */
#define TF_NODE_EXIT_STORE 74

/* True if a failed commit's code means the node must stop (see
 * TF_NODE_EXIT_STORE): any failure to write or sync, that is every code but
 * those a full store gives (-ENOSPC: the batch was refused, the store is
 * intact) and an allocation failure. */
bool tf_node_commit_failure_is_fatal(int rc);

/* Starts a node on loop: takes the home's lock (TF_E_EXISTS with a message if
 * another twofoldd holds it), loads the key, opens the store, starts the
 * control server.  On failure logs why, releases everything and returns an
 * error; the caller exits.  On success the loop runs the node until
 * tf_node_stop. */
TF_MUST_CHECK int tf_node_start(struct tf_node *node, uv_loop_t *loop,
                                const struct tf_node_options *opts);

/* Begins an orderly stop: stops accepting, commits, closes every handle.  The
 * loop then returns; call tf_node_deinit after it has. */
void tf_node_stop(struct tf_node *node);

/* Releases what the node owns (after the loop has returned). */
void tf_node_deinit(struct tf_node *node);

/* Records an event (a msgpack map body built by the caller without "seq",
 * whose first pair is "time": its unix time; TF_E_INVALID_ARG otherwise):
 * appends it to the store in the current transaction, queues its frame for
 * watchers after commit, and collects the oldest events past the budget
 * (config events_max, events_retention_s). */
TF_MUST_CHECK int tf_node_event(struct tf_node *node, const struct tf_proto_buf *record);

struct tf_node_savepoint tf_node_savepoint(const struct tf_node *node);
/* Undoes what a failed handler wrote since sp (logged if even that fails). */
void tf_node_rollback(struct tf_node *node, struct tf_node_savepoint sp);

/* waitcommit: says that what was written and emitted since `since` may wait
 * for the next commit (at most config.commit_wait_ms): nothing waits on it
 * but its ACK.  The batch then waits past the end of its loop turn if every
 * change in it said so and no control reply waits; any other change, a
 * control reply or the deadline commits it at the end of that turn. */
void tf_node_commit_may_wait(struct tf_node *node, struct tf_node_savepoint since);

/* True if this build has its test hooks (CMake option TF_TEST_HOOKS, off in
 * release builds): the TWOFOLD_TEST_CRASH environment variable
 * (after-receive-commit, eio-on-receive-commit).  A build
 * without them ignores the variable. */
bool tf_node_test_hooks(void);

/* Current time (unix seconds) from the loop's clock source. */
uint64_t tf_node_now(const struct tf_node *node);

#endif
