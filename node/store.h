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
 * and, since schema 2:
 *   outbox     msg_id (16) -> outbox record
 *   outbox_due u64be(next_try_ms) || msg_id -> empty   (the due index)
 *   seen       key (32) -> u64be(expires)
 *   seen_exp   u64be(expires) || key -> empty          (the expiry index)
 *              where key = BLAKE2b-128(sender_pk) || msg_id (node/delivery.c),
 *              so that one sender's time-ordered msg ids append at the end of
 *              its range; since schema 12 (seenkeys: see the seen functions
 *              below for the rows older versions wrote)
 *   messages   id (16) -> message record
 * Big-endian times make LMDB's byte order time order.  Each index holds
 * exactly one key per entry of its table, naming the entry's current time.
 *
 * Records are msgpack arrays, canonical, decoded with proto/mp's strict
 * reader (any failure, trailing bytes included, is TF_E_CORRUPT):
 *   outbox:  [ to_pk: bin 32, type: uint (a valid enum tf_proto_msg_type),
 *              envelope: bin (1..TF_PROTO_ENVELOPE_MAX), created: uint,
 *              expires: uint, attempts: uint (<= UINT32_MAX),
 *              next_try_ms: uint, last_error: str (LINE, 0..127)
 *              (, body: bin 1..TF_PROTO_BODY_MAX) ]
 *            since schema 9 (direct), a 9th field, the body, is present when
 *            the entry keeps what it needs to be sent unsealed on a direct
 *            link; its envelope is then empty (0 bytes) until it is sealed.
 *            Without a body the envelope is 1..TF_PROTO_ENVELOPE_MAX bytes.
 *   message: [ outgoing: bool, contact: bin 32,
 *              text: str (MULTILINE, 0..TF_NODE_MESSAGE_TEXT_MAX),
 *              time: uint, updated: uint, state: uint (0..3, RECEIVED iff
 *              not outgoing), error: str (LINE, 0..127) ]
 * (LINE and MULTILINE as in proto/mp.h: UTF-8 without control characters,
 * MULTILINE allowing '\n' and '\t'.)
 *
 * Schema history: 1 = meta, contacts, aliases, events; 2 adds outbox,
 * outbox_due, seen, seen_exp and messages; 3 the intro tables and cards; 4
 * policy_hits; 5 the intro indexes; 6 intro_sched; 7 the requests tables;
 * 8 the mailbox tables (enum tf_node_store_table); 9 the outbox body
 * (direct: no table changes, schema 8 records are valid as they are); 10
 * (pages) the time in intro_sched's 'f', 'b', 's' and 'q' keys (node/intro.c
 * rewrites them at its start); 11 (introkeys) the intro records in time
 * order: intros_out and intros_in are rewritten, in the opening transaction,
 * into intros_out_seq / intros_out_ids and intros_in_seq / intros_in_ids
 * (see enum tf_node_store_table) and dropped; 12 (seenkeys) the seen keys'
 * form (see the seen functions).  Each migration up to 10 only adds tables
 * or changes keys node/intro.c rewrites; 11 replaces two, but a read-only
 * open still reads an older store's intro tables as they are (see
 * tf_node_store_open), and 12 rewrites the seen keys, which a read-only open
 * of an older store reads as they are.
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
 * TF_E_*); MDB_MAP_FULL grows the map and replays the write transaction's
 * journal of writes (every table's) into a new one, once.
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
#define TF_NODE_STORE_SCHEMA 12

struct tf_node_store;

enum tf_node_store_mode {
    TF_NODE_STORE_CREATE,   /* create a new store; TF_E_EXISTS if one is there */
    TF_NODE_STORE_OPEN,     /* open read-write; TF_E_NOT_FOUND if missing */
    TF_NODE_STORE_READONLY, /* open read-only (the CLI's offline verbs); works
                               while a node has the store open; writes fail
                               with -EROFS */
};

/* Opens (or creates) the store in directory dir (created 0700 when creating).
 * Checks the schema version: newer -> TF_E_VERSION; missing, malformed or
 * with no migration path -> TF_E_CORRUPT; older -> migrated in OPEN mode (in
 * the transaction that opens the tables).  READONLY cannot migrate: it opens
 * an older store as it is when every migration since is additive (only adds
 * tables, as 1 -> 2 does), the tables it lacks reading as empty, and gives
 * TF_E_VERSION otherwise; it reads the intro records of a store older than
 * 11 from their old tables (introkeys).  A migration is all or nothing: it
 * runs in the transaction that writes the new schema.  *out is owned by the
 * caller (tf_node_store_close). */
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

/* A point in the open batch (0 when none is open): a request or envelope
 * handler takes one first, and rolls back to it when it fails, so that a
 * failed handler leaves no partial writes while other handlers' writes in the
 * same batch stay. */
size_t tf_node_store_savepoint(const struct tf_node_store *st);
/* Undoes the writes made since sp (earlier ones stay).  On failure the whole
 * batch is lost (as for any failed write) and the error is returned. */
TF_MUST_CHECK int tf_node_store_rollback(struct tf_node_store *st, size_t sp);

/* For a module that keeps counts of stored rows in memory, updated as it
 * writes (node/delivery.c), to learn which of its writes did not last:
 * undo_take returns the lowest savepoint (tf_node_store_savepoint, taken just
 * before the write) whose writes were discarded since its last call, by a
 * rollback, an abort, a lost transaction or a failed commit, and SIZE_MAX
 * when none were; each call starts afresh.  batches counts the batches ended
 * (committed or lost): once it moves, every earlier write that undo_take did
 * not report is committed.  contacts_gen moves whenever a contact is created
 * or deleted (in the batch, committed or not). */
size_t tf_node_store_undo_take(struct tf_node_store *st);
uint64_t tf_node_store_batches(const struct tf_node_store *st);
uint64_t tf_node_store_contacts_gen(const struct tf_node_store *st);

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
 * does, under the same rules for cb: a caller that pages stops it after a
 * page and calls again with after = the last seq it saw. */
typedef int tf_node_store_event_cb(uint64_t seq, const uint8_t *rec, size_t len, void *arg);
TF_MUST_CHECK int tf_node_store_event_foreach(struct tf_node_store *st, uint64_t after,
                                              tf_node_store_event_cb *cb, void *arg);

/* The newest event's seq in *seq (0 if there is none). */
TF_MUST_CHECK int tf_node_store_event_last(struct tf_node_store *st, uint64_t *seq);

/* Collects the oldest events, in the write transaction: deletes them while
 * more than max_count remain or the oldest's time is below `before` (unix
 * seconds; 0: no age limit), at most `limit` of them, and never the newest
 * one, so that sequence numbers never repeat.  An event's time is the value
 * of its record's first pair, which must be "time" (tf_node_event's records
 * all start so); a record that does not start so counts as time 0.
 * *deleted gets how many went.  Errors as for any write. */
TF_MUST_CHECK int tf_node_store_event_trim(struct tf_node_store *st, uint64_t max_count,
                                           uint64_t before, size_t limit, size_t *deleted);

/*
 * The tables below follow the rules of the ones above: writes go into the
 * group-commit transaction (-EROFS in READONLY mode), reads see its
 * uncommitted writes, and a record that does not decode is TF_E_CORRUPT.
 * Every pointer parameter is borrowed for the call.
 */

/* Outbox: envelopes waiting for an ACK (docs/PROTOCOL.md §10).  Stored in
 * "outbox" (msg_id -> record) with a due index "outbox_due"
 * (u64be(next_try_ms) || msg_id -> empty) that put/del keep in step. */
#define TF_NODE_OUTBOX_ERROR_MAX 128 /* buffer size: at most 127 bytes and NUL */

struct tf_node_outbox_entry {
    uint8_t msg_id[16];
    uint8_t to_pk[32];
    uint16_t type;                /* enum tf_proto_msg_type */
    struct tf_proto_buf envelope; /* owned: the sealed envelope bytes; len 0: not sealed yet */
    uint64_t created;             /* unix seconds */
    uint64_t expires;             /* unix seconds (the envelope's) */
    uint32_t attempts;
    uint64_t next_try_ms;                      /* unix milliseconds */
    char last_error[TF_NODE_OUTBOX_ERROR_MAX]; /* "" when none */
    /* direct: owned, the envelope's body, kept so that it can be sent
     * unsealed on a link to the recipient (len 0: none, the entry is sent
     * sealed).  At least one of envelope and body is non-empty. */
    struct tf_proto_buf body;
};

/* Frees the envelope and body bytes and zeroes *e; safe on a zeroed entry. */
void tf_node_outbox_entry_deinit(struct tf_node_outbox_entry *e);

/* The stored record of an entry (layout above), exposed for tests and
 * fuzzing.  encode: everything but msg_id; TF_E_BAD_VALUE for a field the
 * record cannot hold (an invalid type, an empty envelope without a body, a
 * too long envelope or body, a last_error that is unterminated or not LINE
 * text); *out owned by the caller.
 * decode: strict, TF_E_CORRUPT on any failure (TF_E_NOMEM if out of memory);
 * *e (msg_id taken from the key) owns copies, and is zeroed on failure. */
TF_MUST_CHECK int tf_node_outbox_entry_encode(const struct tf_node_outbox_entry *e,
                                              struct tf_proto_buf *out);
TF_MUST_CHECK int tf_node_outbox_entry_decode(const uint8_t msg_id[static 16], const uint8_t *rec,
                                              size_t len, struct tf_node_outbox_entry *e);

/* Inserts or replaces the entry for e->msg_id (moving its due index entry).
 * TF_E_BAD_VALUE as tf_node_outbox_entry_encode. */
TF_MUST_CHECK int tf_node_store_outbox_put(struct tf_node_store *st,
                                           const struct tf_node_outbox_entry *e);
/* TF_E_NOT_FOUND if absent; *out owns copies (zeroed unless TF_OK). */
TF_MUST_CHECK int tf_node_store_outbox_get(struct tf_node_store *st,
                                           const uint8_t msg_id[static 16],
                                           struct tf_node_outbox_entry *out);
/* Deletes the entry and its due index entry.  TF_E_NOT_FOUND if absent.  An
 * entry whose record is corrupt can be deleted (with every index key naming
 * it), and put replaces it the same way. */
TF_MUST_CHECK int tf_node_store_outbox_del(struct tf_node_store *st,
                                           const uint8_t msg_id[static 16]);

/* Calls cb for every entry (msg id order), entry valid during the call only.
 * Stops early and writes under the rules of tf_node_store_contact_foreach. */
typedef int tf_node_store_outbox_cb(const struct tf_node_outbox_entry *e, void *arg);
TF_MUST_CHECK int tf_node_store_outbox_foreach(struct tf_node_store *st,
                                               tf_node_store_outbox_cb *cb, void *arg);

/* Calls cb for up to max entries with next_try_ms <= now_ms, earliest first
 * (ties in msg id order), each at most once, the entry valid during the call
 * only.  Stops early, returning cb's value, if cb returns non-zero.  The walk
 * copies the due keys first, then fetches each entry just before its call,
 * with no transaction of the walk open while cb runs: cb may put, delete,
 * commit or abort freely (the map can grow), and an entry that an earlier call
 * moved or deleted is skipped.  TF_E_CORRUPT if the due index is out of step
 * with the outbox or a record does not decode.  cb must not close the store. */
TF_MUST_CHECK int tf_node_store_outbox_due(struct tf_node_store *st, uint64_t now_ms, size_t max,
                                           tf_node_store_outbox_cb *cb, void *arg);

/* Calls cb with the recipient of every outbox entry (in msg_id order),
 * reading nothing else: what the outbox budgets count (node/delivery.c).
 * Reads through the open write transaction, if any.  TF_E_CORRUPT for a
 * record that does not start as an outbox record; a non-zero return from cb
 * stops the walk and is returned. */
typedef int tf_node_store_recipient_cb(const uint8_t to_pk[static 32], void *arg);
TF_MUST_CHECK int tf_node_store_outbox_recipients(struct tf_node_store *st,
                                                  tf_node_store_recipient_cb *cb, void *arg);

/* The earliest next_try_ms of any entry; TF_E_NOT_FOUND when the outbox is
 * empty. */
TF_MUST_CHECK int tf_node_store_outbox_next_due(struct tf_node_store *st, uint64_t *next_ms);

/* ackdefer: the same, among the first max entries of the due index (max >
 * 0), for the earliest entry whose msg id skip does not accept (an entry
 * acknowledged whose delete waits, node/delivery.c); TF_E_NOT_FOUND when
 * skip accepts every one of them, or the outbox is empty. */
typedef bool tf_node_store_skip_cb(const uint8_t msg_id[static 16], void *arg);
TF_MUST_CHECK int tf_node_store_outbox_next_due_skip(struct tf_node_store *st, size_t max,
                                                     tf_node_store_skip_cb *skip, void *arg,
                                                     uint64_t *next_ms);

/* Seen envelopes ("seen": key -> u64be(expires), plus an expiry index
 * "seen_exp": u64be(expires) || key -> empty), for duplicate detection.  The
 * caller makes the key (node/delivery.c: BLAKE2b-128(sender_pk) || msg_id).
 *
 * seenkeys: before schema 12 the key was 16 bytes (BLAKE2b-128(sender_pk ||
 * msg_id), and before that msg_id alone).  Such a key cannot be rebuilt in
 * the new form, so the migration keeps each of those rows, with its expiry,
 * under 16 zero bytes || its old key (a new key starts with zero bytes only
 * if BLAKE2b-128 of a sender's key is zero: probability 2^-128), and records
 * in meta "seen-legacy-until" (u64be) the latest expiry they had.  Until that
 * time seen_check also looks the old key up, so that an envelope taken
 * before the upgrade is still a duplicate after it, as long as its row
 * lives.  Old rows count against the budget and expire like the others. */
#define TF_NODE_STORE_SEEN_KEY_LEN 32
/* TF_OK if key was recorded (expired or not: seen_gc forgets), or if legacy,
 * the key code before schema 12 gave the same envelope, was recorded by that
 * code and now (unix seconds) is not after seen-legacy-until; else
 * TF_E_NOT_FOUND.  In a read-only open of an older store, whose rows are all
 * of the old form, legacy is looked up as it was stored. */
TF_MUST_CHECK int tf_node_store_seen_check(struct tf_node_store *st,
                                           const uint8_t key[static TF_NODE_STORE_SEEN_KEY_LEN],
                                           const uint8_t legacy[static 16], uint64_t now);
/* Records key until expires (unix seconds).  Recording it again is TF_OK
 * and keeps the later of the two expiries. */
TF_MUST_CHECK int tf_node_store_seen_add(struct tf_node_store *st,
                                         const uint8_t key[static TF_NODE_STORE_SEEN_KEY_LEN],
                                         uint64_t expires);
/* Forgets up to max keys (old rows too) whose expiry is before now
 * (expires < now), earliest first; *removed says how many (also when it
 * fails part way: those are gone from the write transaction).  -EROFS in
 * READONLY mode. */
TF_MUST_CHECK int tf_node_store_seen_gc(struct tf_node_store *st, uint64_t now, size_t max,
                                        size_t *removed);

/* The seen rows there are (old rows too), as status's "seen" counts them:
 * one mdb_stat, for the seen_max check of every envelope taken. */
TF_MUST_CHECK int tf_node_store_seen_count(struct tf_node_store *st, uint64_t *count);

/* Frees the reader slots of processes that died holding a read transaction
 * on the store (a `twofold backup` killed mid-copy, say): LMDB keeps every
 * page such a reader could see until its slot is freed, so the store would
 * grow until the node restarts.  *dead: how many were freed. */
TF_MUST_CHECK int tf_node_store_clear_dead_readers(struct tf_node_store *st, int *dead);

/* Notes between contacts ("messages": id -> record). */
#define TF_NODE_MESSAGE_TEXT_MAX 4000

enum tf_node_message_state {
    TF_NODE_MESSAGE_QUEUED = 0,    /* outgoing, not yet acknowledged */
    TF_NODE_MESSAGE_DELIVERED = 1, /* outgoing, acknowledged */
    TF_NODE_MESSAGE_FAILED = 2,    /* outgoing, rejected or expired */
    TF_NODE_MESSAGE_RECEIVED = 3,  /* incoming */
};

/* "queued", "delivered", "failed", "received". */
const char *tf_node_message_state_name(enum tf_node_message_state s);

struct tf_node_message {
    uint8_t id[16]; /* the envelope's msg_id */
    bool outgoing;
    uint8_t contact[32];      /* the other identity */
    struct tf_proto_buf text; /* owned UTF-8, not NUL-terminated */
    uint64_t time;            /* sent or received (unix seconds) */
    uint64_t updated;         /* last state change */
    enum tf_node_message_state state;
    char error[TF_NODE_OUTBOX_ERROR_MAX]; /* why it failed, "" otherwise */
};

/* Frees the text and zeroes *m; safe on a zeroed message. */
void tf_node_message_deinit(struct tf_node_message *m);

/* The stored record of a message (layout above), exposed for tests and
 * fuzzing, as tf_node_outbox_entry_encode/_decode.  encode: TF_E_BAD_VALUE
 * for text that is too long or not MULTILINE text, an error that is
 * unterminated or not LINE text, a state out of range, or a state that does
 * not match outgoing (RECEIVED iff incoming).  decode: the text is never NULL,
 * even when empty. */
TF_MUST_CHECK int tf_node_message_encode(const struct tf_node_message *m, struct tf_proto_buf *out);
TF_MUST_CHECK int tf_node_message_decode(const uint8_t id[static 16], const uint8_t *rec,
                                         size_t len, struct tf_node_message *m);

/* Inserts or replaces the message with m->id (a state change is a put of the
 * updated message).  TF_E_BAD_VALUE as tf_node_message_encode. */
TF_MUST_CHECK int tf_node_store_message_put(struct tf_node_store *st,
                                            const struct tf_node_message *m);
/* Deletes the message with id (the retention sweep, node/delivery.c).
 * TF_E_NOT_FOUND if absent (nothing is written then). */
TF_MUST_CHECK int tf_node_store_message_del(struct tf_node_store *st, const uint8_t id[static 16]);
/* TF_E_NOT_FOUND if absent; *out owns copies (zeroed unless TF_OK). */
TF_MUST_CHECK int tf_node_store_message_get(struct tf_node_store *st, const uint8_t id[static 16],
                                            struct tf_node_message *out);
/* Calls cb for every message (id order), valid during the call only, under
 * the rules of tf_node_store_contact_foreach. */
typedef int tf_node_store_message_cb(const struct tf_node_message *m, void *arg);
TF_MUST_CHECK int tf_node_store_message_foreach(struct tf_node_store *st,
                                                tf_node_store_message_cb *cb, void *arg);

/* Generic tables whose records belong to other modules (schema 3):
 * intros_out and intros_in (intro id -> record, node/intro.c) and cards
 * (sign_pk -> signed card of a correspondent who is not a contact).
 *
 * introkeys (schema 11): the intro tables are read and written by intro id
 * exactly as the others are by key (the kv functions below, same contract:
 * foreach in id order, foreach_from from the first id >= from), but stored in
 * time order, so that the writes of one batch, which concern the intros
 * begun lately, fall into a few leaves at the end of the table instead of one
 * random leaf each (intro ids are random):
 *   intros_out_seq  u64be(order) || id -> record
 *   intros_out_ids  id -> u64be(order)      (exactly one per record)
 * and intros_in_seq / intros_in_ids alike.  A record's order is given at its
 * first put and kept by every later put (a rewrite in place) until it is
 * deleted (both rows go).  The order is a store-wide counter, one past the
 * highest order stored (found again at open), not the wall clock: the store
 * keeps no clock, a counter needs no write of its own, and a clock that
 * steps back would only scatter records again.  Only locality depends on it:
 * gaps (from rolled-back writes) and repeats (after the last record was
 * deleted) are harmless, the id completing every key.  A read costs one
 * extra lookup in the small ids table; a new id one random insert there (a
 * 48-byte entry, not a 1-2 KB record).  Records migrated from schema 10 get
 * their order in id order (store.c cannot read their time: node/intro.c
 * owns the record format). */
enum tf_node_store_table {
    TF_NODE_STORE_INTROS_OUT, /* intros_out_seq and intros_out_ids, above */
    TF_NODE_STORE_INTROS_IN,  /* intros_in_seq and intros_in_ids */
    TF_NODE_STORE_CARDS,
    TF_NODE_STORE_POLICY_HITS, /* schema 4: rule key || u64be(time) || id -> connector */
    /* Schema 5, indexes of node/intro.c's tables: */
    TF_NODE_STORE_INTRO_PAIRS,   /* lower pk || higher pk || topic -> intro id (intros_out) */
    TF_NODE_STORE_INTRO_EXPIRY,  /* u64be(expires) || intro id -> empty (open intros_out) */
    TF_NODE_STORE_INTRO_PENDING, /* connector pk || intro id -> empty (pending intros_in) */
    /* Schema 6: node/intro.c's schedules (due times), budget indexes and
     * tombstones, told apart by a one-byte kind first (see node/intro.c). */
    TF_NODE_STORE_INTRO_SCHED,
    /* Schema 7 (requests): requests (request id -> record, node/request.c),
     * request_index (its budgets and schedules, one-byte kind first) and
     * intro_stats (per-contact intro statistics and feedback). */
    TF_NODE_STORE_REQUESTS,
    TF_NODE_STORE_REQUEST_INDEX,
    TF_NODE_STORE_INTRO_STATS,
    /* mailbox: schema 8, node/mailbox.c's tables (records described there). */
    TF_NODE_STORE_MBOX_TENANTS, /* tenant pk -> tenant record */
    TF_NODE_STORE_MBOX_ENVS,    /* tenant pk || msg_id -> held envelope record */
    TF_NODE_STORE_MBOX_EXPIRY,  /* u64be(expires) || tenant pk || msg_id -> empty */
};

/* Keys are 1..256 bytes.  get: TF_E_NOT_FOUND if absent, *out owned by the
 * caller; del: TF_E_NOT_FOUND if absent. */
TF_MUST_CHECK int tf_node_store_kv_get(struct tf_node_store *st, enum tf_node_store_table t,
                                       const uint8_t *key, size_t klen, struct tf_proto_buf *out);
TF_MUST_CHECK int tf_node_store_kv_put(struct tf_node_store *st, enum tf_node_store_table t,
                                       const uint8_t *key, size_t klen, const uint8_t *val,
                                       size_t vlen);
TF_MUST_CHECK int tf_node_store_kv_del(struct tf_node_store *st, enum tf_node_store_table t,
                                       const uint8_t *key, size_t klen);
/* Calls cb for every entry in key order (bytes valid during the call only);
 * a non-zero return stops the walk and is returned. */
typedef int tf_node_store_kv_cb(const uint8_t *key, size_t klen, const uint8_t *val, size_t vlen,
                                void *arg);
TF_MUST_CHECK int tf_node_store_kv_foreach(struct tf_node_store *st, enum tf_node_store_table t,
                                           tf_node_store_kv_cb *cb, void *arg);
/* The same, starting at the first key >= from. */
TF_MUST_CHECK int tf_node_store_kv_foreach_from(struct tf_node_store *st,
                                                enum tf_node_store_table t, const uint8_t *from,
                                                size_t flen, tf_node_store_kv_cb *cb, void *arg);

struct tf_node_store_stat {
    uint64_t contacts;
    uint64_t events;
    uint64_t outbox;
    uint64_t seen;
    uint64_t messages;
    uint64_t size_bytes; /* pages in use * page size */
    uint64_t commits;    /* write transactions committed since open */
    /* powerloss: the map (the most the store can grow to before LMDB must
     * grow it; it grows by doubling) and the store's file system (statvfs:
     * bytes available to the node and in all; 0 if unknown). */
    uint64_t map_bytes;
    uint64_t disk_free_bytes;
    uint64_t disk_total_bytes;
    /* perf: mdb_env_info's last page number + 1, the pages the file uses up to
     * its high-water mark (freed pages reused below it do not move it). */
    uint64_t pages;
};

TF_MUST_CHECK int tf_node_store_stat(struct tf_node_store *st, struct tf_node_store_stat *out);

/* pages (issue 17): the shape of one table (LMDB's mdb_stat, through the
 * open write transaction if any) and the puts and deletes committed to it
 * since the store was opened (what a commit rewrites: each write dirties the
 * leaf holding its key and the branch pages above it).  i counts tables from
 * 0; TF_E_NOT_FOUND past the last.  name is a static string.  A table the
 * open store lacks (a read-only open of an older store) reports zeros; the
 * tables a later schema dropped (intros_out and intros_in, by 11) are not
 * listed: the intro records are counted in intros_out_seq and intros_in_seq,
 * their index entries in intros_out_ids and intros_in_ids. */
struct tf_node_store_table_stat {
    const char *name;
    uint64_t writes;
    uint64_t entries, depth, branch_pages, leaf_pages, overflow_pages;
};
TF_MUST_CHECK int tf_node_store_table_stat(struct tf_node_store *st, size_t i,
                                           struct tf_node_store_table_stat *out);

/* Backup (issue 16, ux): writes a compacted copy of the whole environment to
 * fd (a regular file open for writing, at offset 0), from one read
 * transaction: a consistent snapshot even while another process (the
 * running node) writes, which it never blocks.  Works in READONLY mode.
 * Returns TF_OK or an error (-errno). */
TF_MUST_CHECK int tf_node_store_copy_fd(struct tf_node_store *st, int fd);

#endif
