/* SPDX-License-Identifier: MIT */
/*
 * The node's LMDB store.  The only module that includes lmdb.h.
 *
 * Layout: one environment in <home>/store (data.mdb, lock.mdb), opened once per
 * process, with these named databases, all opened at startup in one committed
 * transaction:
 *   meta      str key -> bytes     "schema" (u32be), "card" (own signed card),
 *                                  "listen" (str), "created" (u64be)
 *   contacts  sign_pk (32) -> contact record (msgpack, see node/contact.h)
 *   aliases   alias (str) -> sign_pk (32)
 *   events    seq (u64be) -> event record (msgpack map, see docs/CONTROL.md)
 *
 * Group commit: every mutation goes into ONE write transaction that is opened
 * lazily at the first write of a loop iteration and committed by
 * tf_node_store_commit, which the node calls from a uv_prepare callback before
 * the loop sleeps; replies that promise durability are sent only after that.
 * While the write transaction is open, reads go through it; otherwise each read
 * function opens, copies out and ends a read transaction inside the call.  No
 * pointer into LMDB memory ever leaves this module.
 *
 * Errors: LMDB codes are translated in exactly one function (to -errno or
 * TF_E_*); MDB_MAP_FULL grows the map and retries once.
 *
 * Single-threaded: a store belongs to one thread.
 */
#ifndef TF_NODE_STORE_H
#define TF_NODE_STORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "node/contact.h"
#include "proto/err.h"
#include "proto/mp.h"

/* The schema this code writes.  A store with a newer schema is refused
 * (TF_E_VERSION); an older one is migrated on open. */
#define TF_NODE_STORE_SCHEMA 1

struct tf_node_store;

enum tf_node_store_mode {
    TF_NODE_STORE_CREATE,   /* create a new store; TF_E_EXISTS if one is there */
    TF_NODE_STORE_OPEN,     /* open read-write; TF_E_NOT_FOUND if missing */
    TF_NODE_STORE_READONLY, /* open read-only (the CLI's offline verbs); works
                               while a node has the store open; writes fail
                               with -EROFS */
};

/* Opens (or creates) the store in directory dir (created 0700 when creating).
 * Checks the schema version: newer -> TF_E_VERSION, older -> migrated (in
 * read-write modes; READONLY gives TF_E_VERSION), missing -> TF_E_CORRUPT.
 * *out is owned by the caller (tf_node_store_close). */
TF_MUST_CHECK int tf_node_store_open(const char *dir, enum tf_node_store_mode mode,
                                     struct tf_node_store **out);

/* Aborts any open write transaction (uncommitted changes are lost: callers
 * commit first) and closes the environment.  NULL is a no-op. */
void tf_node_store_close(struct tf_node_store *st);

/* Commits the open write transaction, if any.  TF_OK when nothing was open.
 * After a failure the transaction is gone and its changes are lost. */
TF_MUST_CHECK int tf_node_store_commit(struct tf_node_store *st);

/* Aborts the open write transaction, if any. */
void tf_node_store_abort(struct tf_node_store *st);

/* True while a write transaction is open (uncommitted changes exist or may). */
bool tf_node_store_dirty(const struct tf_node_store *st);

/* Meta values.  get: TF_E_NOT_FOUND if absent; *out owned by the caller. */
TF_MUST_CHECK int tf_node_store_meta_get(struct tf_node_store *st, const char *key,
                                         struct tf_proto_buf *out);
TF_MUST_CHECK int tf_node_store_meta_put(struct tf_node_store *st, const char *key,
                                         const uint8_t *val, size_t len);

/* Contacts.  put inserts or replaces the record for c->pk and keeps the alias
 * index in step (TF_E_EXISTS if c->alias names another contact).  get:
 * TF_E_NOT_FOUND.  *out is filled by copy (tf_node_contact_deinit frees it). */
TF_MUST_CHECK int tf_node_store_contact_put(struct tf_node_store *st,
                                            const struct tf_node_contact *c);
TF_MUST_CHECK int tf_node_store_contact_get(struct tf_node_store *st, const uint8_t pk[static 32],
                                            struct tf_node_contact *out);

/* Resolves what a person typed: an exact alias, else a text id, else a
 * unique prefix (at least 6 characters, "tf1" included) of a contact's text id.
 * TF_E_NOT_FOUND, or TF_E_AMBIGUOUS if a prefix matches several. */
TF_MUST_CHECK int tf_node_store_contact_find(struct tf_node_store *st, const char *name,
                                             struct tf_node_contact *out);

/* Deletes a contact and its alias.  TF_E_NOT_FOUND if absent. */
TF_MUST_CHECK int tf_node_store_contact_del(struct tf_node_store *st, const uint8_t pk[static 32]);

/* Calls cb for every contact in key order, with a record valid only during
 * the call.  Stops early (returning its value) if cb returns non-zero.
 * TF_E_CORRUPT if a record does not decode.  cb may write; if it commits or
 * aborts (or a write of it replaces the transaction to grow the map) the walk
 * stops with TF_E_BAD_STATE.  While a walk runs outside the write transaction
 * the map cannot grow, so a write of cb that needs it fails (-ENOSPC).  cb must
 * not close the store. */
typedef int tf_node_store_contact_cb(const struct tf_node_contact *c, void *arg);
TF_MUST_CHECK int tf_node_store_contact_foreach(struct tf_node_store *st,
                                                tf_node_store_contact_cb *cb, void *arg);

/* Appends an event record (msgpack bytes) with the next sequence number
 * (1 for the first), stored in *seq unless seq is NULL. */
TF_MUST_CHECK int tf_node_store_event_append(struct tf_node_store *st, const uint8_t *rec,
                                             size_t len, uint64_t *seq);

/* Calls cb for every event with seq > after, in order, bytes valid only
 * during the call (and only until cb writes).  Stops early as contact_foreach
 * does, under the same rules for cb. */
typedef int tf_node_store_event_cb(uint64_t seq, const uint8_t *rec, size_t len, void *arg);
TF_MUST_CHECK int tf_node_store_event_foreach(struct tf_node_store *st, uint64_t after,
                                              tf_node_store_event_cb *cb, void *arg);

struct tf_node_store_stat {
    uint64_t contacts;
    uint64_t events;
    uint64_t size_bytes; /* pages in use * page size */
    uint64_t commits;    /* write transactions committed since open */
};

TF_MUST_CHECK int tf_node_store_stat(struct tf_node_store *st, struct tf_node_store_stat *out);

#endif
