/* SPDX-License-Identifier: MIT */
#include "node/node.h"

#include <errno.h>
#include <inttypes.h>
#include <signal.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <sodium.h>

#include "node/addr.h"
#include "node/ctl.h"
#include "node/delivery.h"
#include "node/intro.h"
#include "node/request.h" /* requests */
#include "node/internal.h"
#include "node/net.h"
#include "node/ping.h"
#include "node/policy.h"
#include "node/profile.h"
#include "node/keys.h"
#include "node/log.h"
#include "node/mailbox.h"
#include "node/notify.h"
#include "proto/ctl.h"

bool tf_node_test_hooks(void)
{
#ifdef TF_TEST_HOOKS
    return true;
#else
    return false;
#endif
}

uint64_t tf_node_now(const struct tf_node *node)
{
    (void)node;
    uv_timeval64_t tv;
    if (uv_gettimeofday(&tv) != 0)
        return 0;
    return tv.tv_sec > 0 ? (uint64_t)tv.tv_sec : 0;
}

bool tf_node_commit_failure_is_fatal(int rc)
{
    return rc != TF_OK && rc != -ENOSPC && rc != TF_E_NOMEM && rc != -ENOMEM;
}

/* A commit failed to write or sync: nothing of the batch may leave (its ACKs,
 * replies, events and envelopes are dropped with the connections that waited
 * for them), and the node stops, since the page cache may now show what the
 * disk does not hold.  A restart reads what is really there. */
static void store_failed(struct tf_node *node, int rc)
{
    tf_node_log(TF_NODE_LOG_ERROR, "store",
                "commit failed: %s; the disk may not hold this turn's changes and the cached "
                "store can no longer be trusted: stopping with exit status %d without sending "
                "anything of this turn; restart twofoldd to recover from what is on disk",
                tf_strerror(rc), TF_NODE_EXIT_STORE);
    for (size_t i = 0; i < node->n_pending_events; i++)
        tf_proto_buf_free(&node->pending_events[i].frame);
    node->n_pending_events = 0;
    node->exit_status = TF_NODE_EXIT_STORE;
    /* The held replies and frames are never released: stopping closes the
     * control clients and links with them still queued. */
    tf_node_stop(node);
}

/* Free space that ends a full-disk episode. */
#define STORE_ROOM_BYTES (1u << 20)

/* A commit found no room (the disk is full, or the map could not grow): the
 * turn's changes are lost, and so is every later turn's until there is room
 * again.  Control requests that change something are answered that the disk
 * is full (node/ctl.c), peers get no ACK and send again later (§10), reads
 * are served.  Logged once per episode; each failed turn after, at debug. */
static void store_full(struct tf_node *node)
{
    if (node->store_full) {
        tf_node_log(TF_NODE_LOG_DEBUG, "store", "still full: this turn's changes are lost");
        return;
    }
    node->store_full = true;
    struct tf_node_store_stat st;
    uint64_t free_b = tf_node_store_stat(node->store, &st) == TF_OK ? st.disk_free_bytes : 0;
    tf_node_log(TF_NODE_LOG_ERROR, "store",
                "the disk is full (commit failed: %s; %" PRIu64 " bytes free): this turn's "
                "changes are lost, and changes are refused until there is room again (control "
                "requests are answered E_FULL, peers get no ACK and retry); what is stored is "
                "still served; the node resumes by itself once space is freed",
                tf_strerror(-ENOSPC), free_b);
}

/* A commit succeeded: ends a full-disk episode once 1 MiB is free, and warns (at most once a
 * minute, checking at most every 5 s) while free space is below
 * disk_warn_free_bytes. */
static void store_room(struct tf_node *node)
{
    if (node->store_full) {
        /* A commit that reused free pages fits in a full disk: the episode
         * ends only once the disk has room to spare, lest it flap. */
        struct tf_node_store_stat st;
        if (tf_node_store_stat(node->store, &st) == TF_OK && st.disk_total_bytes != 0 &&
            st.disk_free_bytes < STORE_ROOM_BYTES)
            return;
        node->store_full = false;
        tf_node_log(TF_NODE_LOG_INFO, "store", "there is room again: changes are taken again");
    }
    uint64_t now = uv_now(node->loop);
    if (node->config.disk_warn_free_bytes == 0 ||
        (node->disk_checked_ms != 0 && now - node->disk_checked_ms < 5000))
        return;
    node->disk_checked_ms = now;
    struct tf_node_store_stat st;
    if (tf_node_store_stat(node->store, &st) != TF_OK || st.disk_total_bytes == 0 ||
        st.disk_free_bytes >= node->config.disk_warn_free_bytes)
        return;
    if (node->disk_warned_ms != 0 && now - node->disk_warned_ms < 60000)
        return;
    node->disk_warned_ms = now;
    tf_node_log(TF_NODE_LOG_WARN, "store",
                "the disk is nearly full: %" PRIu64 " bytes free for the store (warning below "
                "%" PRIu64 ", config disk_warn_free_bytes); when it is full the node refuses "
                "changes until space is freed",
                st.disk_free_bytes, node->config.disk_warn_free_bytes);
}

/* perf (issue 17): the kernel's wchar for the loop thread (bytes it has
 * passed to write-family system calls since it started), or 0 if unknown.
 * The file stays open (node->wchar_fd, opened on the loop thread, so it is
 * that thread's): a pread from offset 0 reads it anew, at a quarter of the
 * cost of an open, a read and a close around every commit. */
static uint64_t thread_wchar(struct tf_node *node)
{
    if (node->wchar_fd == -1) {
        int fd = open("/proc/thread-self/io", O_RDONLY | O_CLOEXEC);
        if (fd < 0) {
            /* A kernel without task I/O accounting is not asked again; a
             * lack of descriptors (EMFILE) passes. */
            if (errno == ENOENT || errno == EACCES || errno == EPERM)
                node->wchar_fd = -2;
            return 0;
        }
        node->wchar_fd = fd;
    }
    if (node->wchar_fd < 0)
        return 0;
    char buf[512];
    ssize_t n = pread(node->wchar_fd, buf, sizeof buf - 1, 0);
    if (n <= 0)
        return 0;
    buf[n] = '\0';
    const char *p = strstr(buf, "\nwchar: ");
    return p != NULL ? strtoull(p + strlen("\nwchar: "), NULL, 10) : 0;
}

/* Commits the open write transaction and releases what waited for it:
 * control replies, ACKs, watch events. */
static void commit(struct tf_node *node)
{
    /* Held replies and frames wait for this; a turn that wrote nothing
     * releases them at once. */
    int rc = TF_OK;
    bool acks_only = false;
    if (tf_node_store_dirty(node->store)) {
        acks_only = tf_node_delivery_acks_only(node->delivery); /* ackdefer */
        uint64_t t0 = uv_hrtime(), wb0 = thread_wchar(node);
#ifdef TF_TEST_HOOKS
        if (node->test_commit_eio && node->test_crash_armed) {
            tf_node_log(TF_NODE_LOG_WARN, "node", "test hook: failing the commit with EIO");
            tf_node_store_abort(node->store);
            rc = -EIO;
        } else
#endif
            rc = tf_node_store_commit(node->store);
        node->stats.commit_us += (uv_hrtime() - t0) / 1000;
        uint64_t wb1 = thread_wchar(node);
        node->stats.commit_write_bytes += wb1 > wb0 ? wb1 - wb0 : 0;
        if (rc == TF_OK && acks_only)
            node->stats.commits_acks_only++;
    }
    tf_node_delivery_committed(node->delivery, rc); /* ackdefer */
    if (tf_node_commit_failure_is_fatal(rc)) {
        store_failed(node, rc);
        return;
    }
    if (rc == -ENOSPC)
        store_full(node);
    else if (rc != TF_OK)
        tf_node_log(TF_NODE_LOG_ERROR, "store", "commit failed: %s; this turn's changes are lost",
                    tf_strerror(rc));
    else
        store_room(node);
#ifdef TF_TEST_HOOKS
    if (rc == TF_OK && node->test_crash_armed) {
        tf_node_log(TF_NODE_LOG_WARN, "node",
                    "test hook: crashing after the commit, before the ACK");
        raise(SIGKILL);
    }
#endif
    for (size_t i = 0; i < node->n_pending_events; i++) {
        if (rc == TF_OK)
            tf_node_ctl_broadcast(node->ctl, node->pending_events[i].seq,
                                  node->pending_events[i].frame.data,
                                  node->pending_events[i].frame.len);
        tf_proto_buf_free(&node->pending_events[i].frame);
    }
    node->n_pending_events = 0;
    /* Each client's replies and events, and each link's frames, leave in
     * one write per turn. */
    tf_node_ctl_committed(node->ctl, rc);
    if (node->net != NULL)
        tf_node_net_committed(node->net, rc);
}

/* waitcommit: the deadline's timer only wakes the loop; commit_cb commits. */
static void waiting_timer_cb(uv_timer_t *t)
{
    (void)t;
}

void tf_node_commit_may_wait(struct tf_node *node, struct tf_node_savepoint since)
{
    uint64_t batch = tf_node_store_batches(node->store);
    if (node->waiting.batch != batch || (since.store == 0 && since.events == 0)) {
        /* The first change of a batch: the batch's wait starts now. */
        node->waiting.batch = batch;
        node->waiting.upto = (struct tf_node_savepoint){0, 0};
        node->waiting.deadline = uv_now(node->loop) + node->config.commit_wait_ms;
    }
    /* Only a run of such changes from the batch's start may wait: one that
     * follows any other change leaves `upto` behind, and the batch commits
     * at the end of the turn. */
    if (since.store == node->waiting.upto.store && since.events == node->waiting.upto.events)
        node->waiting.upto = tf_node_savepoint(node);
}

/* waitcommit: true if all of the open batch may wait (it wrote something,
 * and every change said so: tf_node_commit_may_wait) and no control reply
 * waits for it; whether its deadline has come is the caller's to check. */
static bool batch_may_wait(struct tf_node *node)
{
    struct tf_node_savepoint now = tf_node_savepoint(node);
    return node->config.commit_wait_ms > 0 && !node->stopping && tf_node_store_dirty(node->store) &&
           node->waiting.batch == tf_node_store_batches(node->store) &&
           now.store == node->waiting.upto.store && now.events == node->waiting.upto.events &&
           !tf_node_ctl_holding(node->ctl);
}

/* Group commit: runs once per loop turn, before the loop blocks for I/O.
 * Delivery runs first and writes its bookkeeping into the same transaction;
 * the envelopes it sends are held with the ACKs and control replies until
 * the one commit of the turn, so nothing leaves before the state change
 * that caused it is durable, and a turn costs one fsync.  A batch whose
 * every change may wait (waitcommit) stays open for a later turn's commit,
 * its ACKs and events held with it. */
static void commit_cb(uv_prepare_t *h)
{
    struct tf_node *node = h->data;
    if (!node->stopping) {
        tf_node_delivery_run(node->delivery);
        tf_node_mailbox_run(node->mailbox);
    }
    bool may_wait = batch_may_wait(node);
    if (may_wait && uv_now(node->loop) < node->waiting.deadline) {
        if (!node->waiting.held) {
            node->waiting.held = true;
            uv_timer_start(&node->waiting.timer, waiting_timer_cb,
                           node->waiting.deadline - uv_now(node->loop), 0);
        }
        /* What does not wait for a commit still leaves with this turn. */
        if (node->net != NULL)
            tf_node_net_flush_unheld(node->net);
        tf_node_log_flush();
        return;
    }
    if (node->waiting.held) {
        node->waiting.held = false;
        uv_timer_stop(&node->waiting.timer);
        if (tf_node_store_dirty(node->store))
            node->stats.commits_waited++;
#ifdef TF_TEST_HOOKS
        if (may_wait && node->test_crash_waited) {
            tf_node_log(TF_NODE_LOG_WARN, "node",
                        "test hook: crashing before the commit of a batch that waited");
            tf_node_log_flush();
            raise(SIGKILL);
        }
#endif
    }
    /* ackdefer: outbox deletes after ACKs ride on this commit. */
    if (!node->stopping)
        tf_node_delivery_flush(node->delivery, false);
    commit(node);
    /* The turn's log lines, in one write, before the loop blocks. */
    tf_node_log_flush();
}

void tf_node__on_link_up(struct tf_node *node, struct tf_node_link *link)
{
    tf_node_delivery_link_up(node->delivery, link);
    tf_node_mailbox_link_up(node->mailbox, link);
    tf_node_ping_link_up(node, link);
}

void tf_node__on_link_closed(struct tf_node *node, struct tf_node_link *link)
{
    tf_node_delivery_link_closed(node->delivery, link);
    tf_node_mailbox_link_closed(node->mailbox, link);
}

void tf_node__on_dial_failed(struct tf_node *node, const uint8_t pk[32], int err, const char *addr)
{
    tf_node_delivery_dial_failed(node->delivery, pk, err);
    tf_node_mailbox_dial_failed(node->mailbox, pk, err);
    tf_node_ping_dial_failed(node, pk, err, addr);
}

void tf_node__on_link_message(struct tf_node *node, struct tf_node_link *link,
                              const struct tf_proto_link_msg *m)
{
    switch (m->type) {
    case TF_PROTO_LINK_ENVELOPE:
        tf_node_delivery_envelope(node->delivery, link, m->envelope.ptr, m->envelope.len);
        return;
    case TF_PROTO_LINK_ACK:
        if (!tf_node_mailbox_ack(node->mailbox, link, m))
            tf_node_delivery_ack(node->delivery, link, m);
        return;
    case TF_PROTO_LINK_UPLOAD:
        tf_node_mailbox_upload(node->mailbox, link, m->envelope.ptr, m->envelope.len);
        return;
    case TF_PROTO_LINK_PUSH:
        tf_node_delivery_pushed(node->delivery, link, m->envelope.ptr, m->envelope.len);
        return;
    case TF_PROTO_LINK_DIRECT: /* direct: node/net.c checked the feature */
        tf_node_delivery_direct(node->delivery, link, m->envelope.ptr, m->envelope.len);
        return;
    case TF_PROTO_LINK_PONG:
        tf_node_ping_pong(node, link, m->nonce);
        return;
    case TF_PROTO_LINK_HELLO:
    case TF_PROTO_LINK_PING:
    case TF_PROTO_LINK_ERROR:
    case TF_PROTO_LINK_BYE:
        return; /* handled by node/net.c */
    }
}

void tf_node__write_alias(struct tf_node *node, const uint8_t *pk, struct tf_proto_mp_writer *w)
{
    struct tf_node_contact c;
    memset(&c, 0, sizeof c);
    if (pk != NULL && tf_node_store_contact_get(node->store, pk, &c) == TF_OK && c.alias[0])
        tf_proto_mp_write_cstr(w, c.alias);
    else
        tf_proto_mp_write_nil(w);
    tf_node_contact_deinit(&c);
}

/* Events the sweep collects per loop turn, and how often it runs. */
#define EVENTS_SWEEP_BATCH 10000
#define EVENTS_SWEEP_MS (10 * 60 * 1000)
/* Old events collected per append: more than one, so that a budget lowered
 * in the config is reached by appending alone too. */
#define EVENTS_TRIM_PER_APPEND 2

/* Events older than this (unix seconds) are past their retention. */
static uint64_t events_cutoff(const struct tf_node *node)
{
    uint64_t now = tf_node_now(node);
    return now > node->config.events_retention_s ? now - node->config.events_retention_s : 0;
}

int tf_node_event(struct tf_node *node, const struct tf_proto_buf *record)
{
    static const uint8_t time_key[] = {0xa4, 't', 'i', 'm', 'e'};
    uint64_t seq;
    size_t trimmed;
    struct tf_proto_buf body, frame;
    /* Retention reads an event's time from its first pair. */
    if (record->len < 1 + sizeof time_key || (record->data[0] & 0xf0) != 0x80 ||
        memcmp(record->data + 1, time_key, sizeof time_key) != 0)
        return TF_E_INVALID_ARG;
    int rc = tf_node_store_event_append(node->store, record->data, record->len, &seq);
    if (rc == TF_OK)
        rc = tf_node_store_event_trim(node->store, node->config.events_max, events_cutoff(node),
                                      EVENTS_TRIM_PER_APPEND, &trimmed);
    if (rc != TF_OK)
        return rc;
    if (node->n_pending_events == node->cap_pending_events) {
        size_t cap = node->cap_pending_events ? 2 * node->cap_pending_events : 8;
        struct tf_node_pending_event *p = realloc(node->pending_events, cap * sizeof *p);
        if (p == NULL)
            return TF_E_NOMEM;
        node->pending_events = p;
        node->cap_pending_events = cap;
    }
    if ((rc = tf_node__ctl_event_frame(seq, record->data, record->len, &body)) != TF_OK)
        return rc;
    frame.data = malloc(TF_PROTO_CTL_HEADER_LEN + body.len);
    if (frame.data == NULL) {
        tf_proto_buf_free(&body);
        return TF_E_NOMEM;
    }
    tf_proto_ctl_frame_header(frame.data, (uint32_t)body.len);
    memcpy(frame.data + TF_PROTO_CTL_HEADER_LEN, body.data, body.len);
    frame.len = TF_PROTO_CTL_HEADER_LEN + body.len;
    tf_proto_buf_free(&body);
    node->pending_events[node->n_pending_events++] = (struct tf_node_pending_event){frame, seq};
    return TF_OK;
}

int tf_node__grow(void **items, size_t *cap, size_t n, size_t size)
{
    if (n < *cap)
        return TF_OK;
    size_t next = *cap ? 2 * *cap : 16;
    if (next > SIZE_MAX / size)
        return TF_E_NOMEM;
    void *p = realloc(*items, next * size);
    if (p == NULL)
        return TF_E_NOMEM;
    *items = p;
    *cap = next;
    return TF_OK;
}

struct tf_node_savepoint tf_node_savepoint(const struct tf_node *node)
{
    struct tf_node_savepoint sp = {tf_node_store_savepoint(node->store), node->n_pending_events};
    return sp;
}

void tf_node_rollback(struct tf_node *node, struct tf_node_savepoint sp)
{
    int rc = tf_node_store_rollback(node->store, sp.store);
    if (rc != TF_OK)
        tf_node_log(TF_NODE_LOG_ERROR, "store", "rollback failed: %s; this batch is lost",
                    tf_strerror(rc));
    while (node->n_pending_events > sp.events)
        tf_proto_buf_free(&node->pending_events[--node->n_pending_events].frame);
}

static void signal_cb(uv_signal_t *h, int signum)
{
    struct tf_node *node = h->data;
    if (signum == SIGHUP) {
        /* Limits apply to new links and timers from now on.  The service
         * manager hears of the reload and of its end whatever the outcome
         * (a refused file leaves the node serving as before); a failed
         * notice is logged by tf_node_notify. */
        char why[512];
        (void)tf_node_notify("RELOADING=1");
        struct tf_node_config cfg = node->config;
        int rc = tf_node_config_load(node->home, &cfg, why, sizeof why);
        if (rc != TF_OK) {
            tf_node_log(TF_NODE_LOG_ERROR, "node",
                        "SIGHUP: configuration refused, keeping the old one: %s", why);
            (void)tf_node_notify("READY=1\nSTATUS=configuration refused, the old one kept");
            return;
        }
        node->config = cfg;
        if (tf_node_policy_load(node, why, sizeof why) != TF_OK) {
            tf_node_log(TF_NODE_LOG_ERROR, "policy",
                        "SIGHUP: policy refused, keeping the old rules: %s", why);
            (void)tf_node_notify("READY=1\nSTATUS=policy refused, the old rules kept");
            return;
        }
        tf_node_log(TF_NODE_LOG_INFO, "node", "SIGHUP: configuration and policy reloaded");
        (void)tf_node_notify("READY=1\nSTATUS=configuration and policy reloaded");
        return;
    }
    tf_node_log(TF_NODE_LOG_INFO, "node", "%s: shutting down",
                signum == SIGINT ? "SIGINT" : "SIGTERM");
    (void)tf_node_notify("STOPPING=1\nSTATUS=shutting down");
    tf_node_stop(node);
}

/* Collects events past their budget or retention, and policy counters past
 * their window, a batch per run; runs again at once while there is more. */
static void events_sweep_cb(uv_timer_t *h)
{
    struct tf_node *node = h->data;
    size_t events = 0, counters = 0;
    int rc = tf_node_store_event_trim(node->store, node->config.events_max, events_cutoff(node),
                                      EVENTS_SWEEP_BATCH, &events);
    if (rc == TF_OK)
        rc = tf_node_policy_collect(node, tf_node_now(node), EVENTS_SWEEP_BATCH, &counters);
    if (rc != TF_OK) {
        tf_node_log(TF_NODE_LOG_ERROR, "store", "collecting old events and counters failed: %s",
                    tf_strerror(rc));
        return;
    }
    if (events > 0 || counters > 0)
        tf_node_log(TF_NODE_LOG_INFO, "store",
                    "collected %zu old events and %zu expired policy counters", events, counters);
    if (events == EVENTS_SWEEP_BATCH || counters == EVENTS_SWEEP_BATCH)
        uv_timer_start(h, events_sweep_cb, 0, EVENTS_SWEEP_MS);
}

/* Tries for the home's lock: LOCK_TRIES, LOCK_RETRY_MS apart. */
#define LOCK_TRIES 20
#define LOCK_RETRY_MS 5

/* Takes an exclusive lock on the home so two nodes never share it. */
static int lock_home(struct tf_node *node)
{
    char path[TF_NODE_PATH_MAX];
    int rc = tf_node_home_path(node->home, TF_NODE_HOME_LOCK, path, sizeof path);
    if (rc != 0)
        return rc;
    int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
    if (fd < 0) {
        rc = -errno;
        tf_node_log(TF_NODE_LOG_ERROR, "node", "cannot open %s: %s", path, strerror(errno));
        return rc;
    }
    /* The CLI tests the lock with a shared lock held for an instant
     * (tf_node_home_lock_held): a node starting at that moment tries again
     * rather than take the CLI for another node.  Startup may block. */
    rc = flock(fd, LOCK_EX | LOCK_NB);
    for (int i = 1; rc != 0 && errno == EWOULDBLOCK && i < LOCK_TRIES; i++) {
        nanosleep(&(struct timespec){0, LOCK_RETRY_MS * 1000000L}, NULL);
        rc = flock(fd, LOCK_EX | LOCK_NB);
    }
    if (rc != 0) {
        rc = errno == EWOULDBLOCK ? TF_E_EXISTS : -errno;
        if (rc == TF_E_EXISTS)
            tf_node_log(TF_NODE_LOG_ERROR, "node",
                        "another twofoldd is already running for %s; stop it first", node->home);
        else
            tf_node_log(TF_NODE_LOG_ERROR, "node", "cannot lock %s: %s", path, strerror(errno));
        close(fd);
        return rc;
    }
    node->lock_fd = fd;
    return 0;
}

/* Refuses a home that is missing, not a directory, not the running user's,
 * open to others, or so deep that its control socket cannot be bound. */
static int check_home(struct tf_node *node)
{
    struct stat sb;
    char key[TF_NODE_PATH_MAX], why[TF_NODE_PATH_MAX + 256];
    /* libuv would truncate a longer path and bind the socket elsewhere. */
    int rc = tf_node_home_socket_path(node->home, node->socket_path, sizeof node->socket_path, why,
                                      sizeof why);
    if (rc != 0) {
        tf_node_log(TF_NODE_LOG_ERROR, "node", "refusing to start: %s", why);
        return rc;
    }
    if (stat(node->home, &sb) != 0) {
        rc = -errno;
        if (rc == -ENOENT)
            tf_node_log(TF_NODE_LOG_ERROR, "node",
                        "home %s does not exist; create it with: twofold init --home %s --name "
                        "NAME",
                        node->home, node->home);
        else
            tf_node_log(TF_NODE_LOG_ERROR, "node", "cannot reach the home %s: %s", node->home,
                        strerror(-rc));
        return rc;
    }
    if (!S_ISDIR(sb.st_mode)) {
        tf_node_log(TF_NODE_LOG_ERROR, "node", "home %s is not a directory", node->home);
        return -ENOTDIR;
    }
    /* Like ssh's StrictModes: whoever owns the home could swap the key or
     * the store under the node. */
    if (sb.st_uid != geteuid()) {
        tf_node_log(TF_NODE_LOG_ERROR, "node",
                    "home %s is owned by uid %u, not by the user running twofoldd (uid %u): "
                    "refusing to start (run twofoldd as its owner, or chown the home)",
                    node->home, (unsigned)sb.st_uid, (unsigned)geteuid());
        return -EPERM;
    }
    if ((sb.st_mode & 077) != 0) {
        tf_node_log(TF_NODE_LOG_ERROR, "node",
                    "home %s has mode %04o: it must not be accessible by others (run: chmod 700 "
                    "%s)",
                    node->home, (unsigned)(sb.st_mode & 07777), node->home);
        return -EPERM;
    }
    if (tf_node_home_path(node->home, TF_NODE_HOME_KEY, key, sizeof key) != 0)
        return -ENAMETOOLONG;
    if (lstat(key, &sb) != 0 && errno == ENOENT) {
        tf_node_log(TF_NODE_LOG_ERROR, "node",
                    "home %s is not initialised; run: twofold init --home %s --name NAME",
                    node->home, node->home);
        return -ENOENT;
    }
    if (lstat(key, &sb) != 0 || access(node->home, R_OK | W_OK | X_OK) != 0) {
        rc = -errno;
        tf_node_log(TF_NODE_LOG_ERROR, "node",
                    "cannot read the home %s: %s (it must be a directory that uid %u can read, "
                    "write and enter: chmod 700 %s)",
                    node->home, strerror(errno), (unsigned)geteuid(), node->home);
        return rc;
    }
    return 0;
}

static int load_identity(struct tf_node *node)
{
    char key[TF_NODE_PATH_MAX], why[512];
    int rc = tf_node_home_path(node->home, TF_NODE_HOME_KEY, key, sizeof key);
    if (rc == 0)
        rc = tf_node_keys_load(key, &node->id, why, sizeof why);
    if (rc != 0) {
        tf_node_log(TF_NODE_LOG_ERROR, "keys", "refusing to start: %s", why);
        return rc;
    }
    tf_proto_text_id_encode(node->id.sign_pk, node->text_id);
    return 0;
}

static int open_store(struct tf_node *node)
{
    char dir[TF_NODE_PATH_MAX];
    struct tf_proto_buf listen = {0};
    int rc = tf_node_home_path(node->home, TF_NODE_HOME_STORE, dir, sizeof dir);
    if (rc == 0)
        rc = tf_node_store_open(dir, TF_NODE_STORE_OPEN, &node->store);
    if (rc == TF_E_VERSION) {
        tf_node_log(TF_NODE_LOG_ERROR, "store",
                    "the store in %s was written by a newer twofoldd (schema above %d); upgrade "
                    "twofoldd",
                    dir, TF_NODE_STORE_SCHEMA);
        return rc;
    }
    if (rc != 0) {
        tf_node_log(TF_NODE_LOG_ERROR, "store", "cannot open %s: %s", dir, tf_strerror(rc));
        return rc;
    }
    if ((rc = tf_node_store_meta_get(node->store, "card", &node->card)) != TF_OK ||
        (rc = tf_proto_card_verify(node->card.data, node->card.len, &node->card_fields)) != TF_OK ||
        sodium_memcmp(node->card_fields.sign_pk, node->id.sign_pk, TF_PROTO_KEY_LEN) != 0) {
        tf_node_log(TF_NODE_LOG_ERROR, "store", "the store's own card is missing or not ours: %s",
                    rc != TF_OK ? tf_strerror(rc) : "another identity");
        return rc != TF_OK ? rc : TF_E_KEY_MISMATCH;
    }
    rc = tf_node_store_meta_get(node->store, "listen", &listen);
    if (rc == TF_OK && listen.len < sizeof node->listen) {
        memcpy(node->listen, listen.data, listen.len);
        node->listen[listen.len] = '\0';
    }
    tf_proto_buf_free(&listen);
    return 0;
}

static int start_handles(struct tf_node *node)
{
    int rc;
    if ((rc = uv_prepare_init(node->loop, &node->commit)) != 0)
        return rc;
    node->commit.data = node;
    uv_prepare_start(&node->commit, commit_cb);
    uv_signal_t *sigs[] = {&node->sig_int, &node->sig_term, &node->sig_hup};
    int nums[] = {SIGINT, SIGTERM, SIGHUP};
    for (int i = 0; i < 3; i++) {
        if ((rc = uv_signal_init(node->loop, sigs[i])) != 0)
            return rc;
        sigs[i]->data = node;
        if ((rc = uv_signal_start(sigs[i], signal_cb, nums[i])) != 0)
            return rc;
    }
    if ((rc = tf_node_ctl_start(node, node->socket_path, &node->ctl)) != 0) {
        tf_node_log(TF_NODE_LOG_ERROR, "ctl", "cannot listen on %s: %s", node->socket_path,
                    tf_strerror(rc));
        return rc;
    }
    if ((rc = uv_timer_init(node->loop, &node->waiting.timer)) != 0) /* waitcommit */
        return rc;
    if ((rc = uv_timer_init(node->loop, &node->events_sweep)) != 0)
        return rc;
    node->events_sweep.data = node;
    if ((rc = uv_timer_start(&node->events_sweep, events_sweep_cb, 0, EVENTS_SWEEP_MS)) != 0)
        return rc;
    if ((rc = tf_node_delivery_start(node, &node->delivery)) != 0 ||
        (rc = tf_node_intro_start(node)) != 0 ||
        (rc = tf_node_request_start(node)) != 0 || /* requests */
        (rc = tf_node_mailbox_start(node, &node->mailbox)) != 0)
        return rc;
    /* no_listen: links are only dialled (a node behind NAT, reached
     * through its mailboxes). */
    if (node->listen[0] &&
        (rc = tf_node_net_start(node, node->config.no_listen ? NULL : node->listen, &node->net)) !=
            0)
        return rc;
    return 0;
}

/* Warns when the card advertises an address others could use while the
 * node listens on loopback only (node/addr.h). */
static void warn_unreachable(const struct tf_node *node)
{
    char addrs[TF_PROTO_CARD_ADDRS_MAX][TF_PROTO_CARD_ADDR_MAX + 1];
    const char *ptrs[TF_PROTO_CARD_ADDRS_MAX];
    size_t n = node->card_fields.n_addrs;
    char why[512], warn[512];
    for (size_t i = 0; i < n; i++) {
        const struct tf_proto_bytes *a = &node->card_fields.addrs[i];
        size_t len = a->len < TF_PROTO_CARD_ADDR_MAX ? a->len : TF_PROTO_CARD_ADDR_MAX;
        memcpy(addrs[i], a->ptr, len);
        addrs[i][len] = '\0';
        ptrs[i] = addrs[i];
    }
    if (n > 0 && node->listen[0] &&
        tf_node_addr_check_advertise(ptrs, n, node->listen, why, sizeof why, warn, sizeof warn) ==
            TF_OK &&
        warn[0])
        tf_node_log(TF_NODE_LOG_WARN, "node", "%s", warn);
}

int tf_node_start(struct tf_node *node, uv_loop_t *loop, const struct tf_node_options *opts)
{
    memset(node, 0, sizeof *node);
    node->loop = loop;
    node->lock_fd = -1;
    node->wchar_fd = -1;
    if (snprintf(node->home, sizeof node->home, "%s", opts->home) >= (int)sizeof node->home)
        return -ENAMETOOLONG;
    int rc;
    if ((rc = check_home(node)) != 0 || (rc = lock_home(node)) != 0 ||
        (rc = load_identity(node)) != 0 || (rc = open_store(node)) != 0)
        return rc;
    node->started = tf_node_now(node);
    tf_node_config_defaults(&node->config);
#ifdef TF_TEST_HOOKS
    const char *crash = getenv("TWOFOLD_TEST_CRASH");
    node->test_commit_eio = crash != NULL && strcmp(crash, "eio-on-receive-commit") == 0;
    node->test_crash_after_receive =
        node->test_commit_eio || (crash != NULL && strcmp(crash, "after-receive-commit") == 0);
    node->test_fail_outbox_delete = crash != NULL && strcmp(crash, "fail-outbox-delete") == 0;
    node->test_crash_waited = crash != NULL && strcmp(crash, "before-waited-commit") == 0;
#endif
    char why[512];
    if ((rc = tf_node_config_load(node->home, &node->config, why, sizeof why)) != 0) {
        tf_node_log(TF_NODE_LOG_ERROR, "node", "configuration refused: %s", why);
        return rc;
    }
#ifdef TF_TEST_HOOKS
    /* Test hook: a wait (waitcommit) longer than the config allows, so that
     * a test can act on a batch while it waits without racing its deadline
     * on a loaded machine. */
    const char *wait_ms = getenv("TWOFOLD_TEST_COMMIT_WAIT_MS");
    if (wait_ms != NULL)
        node->config.commit_wait_ms = strtoull(wait_ms, NULL, 10);
#endif
    if ((rc = tf_node_policy_load(node, why, sizeof why)) != 0) {
        tf_node_log(TF_NODE_LOG_ERROR, "policy", "refusing to start: %s", why);
        return rc;
    }
    if ((rc = start_handles(node)) != 0) {
        tf_node_stop(node);
        return rc;
    }
    if ((rc = tf_node_profile_start(node)) != TF_OK) {
        tf_node_log(TF_NODE_LOG_ERROR, "node", "cannot push the card issued offline: %s",
                    tf_strerror(rc));
        tf_node_stop(node);
        return rc;
    }
    struct tf_proto_mp_writer w;
    struct tf_proto_buf rec;
    tf_proto_mp_writer_init(&w);
    tf_proto_mp_write_map(&w, 3);
    tf_proto_mp_write_cstr(&w, "time");
    tf_proto_mp_write_uint(&w, node->started);
    tf_proto_mp_write_cstr(&w, "type");
    tf_proto_mp_write_cstr(&w, "node.started");
    tf_proto_mp_write_cstr(&w, "id");
    tf_proto_mp_write_cstr(&w, node->text_id);
    if ((rc = tf_proto_mp_writer_finish(&w, &rec)) == TF_OK) {
        rc = tf_node_event(node, &rec);
        tf_proto_buf_free(&rec);
    }
    if (rc != TF_OK) {
        tf_node_log(TF_NODE_LOG_ERROR, "store", "cannot record the start: %s", tf_strerror(rc));
        tf_node_stop(node);
        return rc;
    }
    warn_unreachable(node);
    char fp[TF_PROTO_FINGERPRINT_SIZE];
    tf_proto_fingerprint(node->id.sign_pk, fp);
    /* Tests and supervisors wait for this line. */
    tf_node_log(TF_NODE_LOG_INFO, "node", "ready id=%s fingerprint=%s control=%s listen=%s",
                node->text_id, fp, node->socket_path,
                node->listen[0] && !node->config.no_listen ? node->listen : "-");
    return 0;
}

static void close_handle(uv_handle_t *h)
{
    if (h->loop != NULL && !uv_is_closing(h))
        uv_close(h, NULL);
}

void tf_node_stop(struct tf_node *node)
{
    if (node->stopping)
        return;
    node->stopping = true;
    /* ackdefer: a clean stop writes the outbox deletes that wait (not after
     * a failed commit: the store is not to be trusted then). */
    if (node->store != NULL && node->exit_status != TF_NODE_EXIT_STORE)
        tf_node_delivery_flush(node->delivery, true);
    /* Finish the current batch: commit before closing, then release replies. */
    if (node->store != NULL && tf_node_store_dirty(node->store)) {
        int rc = tf_node_store_commit(node->store);
        if (rc != TF_OK)
            tf_node_log(TF_NODE_LOG_ERROR, "store", "final commit failed: %s", tf_strerror(rc));
        if (tf_node_commit_failure_is_fatal(rc))
            node->exit_status = TF_NODE_EXIT_STORE; /* and nothing of it is released */
        else
            tf_node_ctl_committed(node->ctl, rc);
    }
    tf_node_ping_stop_all(node);
    tf_node_ctl_stop(node->ctl);
    node->ctl = NULL;
    tf_node_net_stop(node->net);
    node->net = NULL;
    tf_node_delivery_stop(node->delivery);
    node->delivery = NULL;
    tf_node_mailbox_stop(node->mailbox);
    node->mailbox = NULL;
    tf_node_intro_stop(node);
    tf_node_request_stop(node); /* requests */
    close_handle((uv_handle_t *)&node->events_sweep);
    close_handle((uv_handle_t *)&node->waiting.timer); /* waitcommit */
    close_handle((uv_handle_t *)&node->commit);
    close_handle((uv_handle_t *)&node->sig_int);
    close_handle((uv_handle_t *)&node->sig_term);
    close_handle((uv_handle_t *)&node->sig_hup);
    /* Closing the handles restored the default actions: a second stop
     * signal would now kill the node in the middle of its orderly stop. */
    struct sigaction ignore;
    memset(&ignore, 0, sizeof ignore);
    ignore.sa_handler = SIG_IGN;
    sigemptyset(&ignore.sa_mask);
    for (size_t i = 0; i < 3; i++)
        (void)sigaction((int[]){SIGINT, SIGTERM, SIGHUP}[i], &ignore, NULL);
}

void tf_node_deinit(struct tf_node *node)
{
    for (size_t i = 0; i < node->n_pending_events; i++)
        tf_proto_buf_free(&node->pending_events[i].frame);
    free(node->pending_events);
    node->pending_events = NULL;
    tf_node_store_close(node->store);
    node->store = NULL;
    tf_proto_buf_free(&node->card);
    tf_proto_identity_deinit(&node->id);
    tf_node_policy_free(node);
    if (node->lock_fd >= 0)
        close(node->lock_fd);
    node->lock_fd = -1;
    if (node->wchar_fd >= 0)
        close(node->wchar_fd);
    node->wchar_fd = -1;
}
