/* SPDX-License-Identifier: MIT */
/*
 * Backups of a home (`twofold backup FILE`, `twofold restore FILE HOME`): the
 * identity seed, a consistent copy of the store and the owner's files
 * (config, policy), encrypted under a passphrase.
 *
 * The store is copied by opening it read-only from the backing-up process,
 * not through the running node: LMDB gives a read transaction a consistent
 * snapshot while the node keeps writing, the copy never stalls the node's
 * event loop, and a stopped node can be backed up the same way.
 *
 * File format (version 1), all integers big-endian:
 *
 *   header, 64 bytes:
 *     0   8  magic "TFBACKUP"
 *     8   1  version, 1
 *     9   1  key derivation: 2 = Argon2id v1.3 (crypto_pwhash_ALG_ARGON2ID13)
 *    10   2  reserved, zero
 *    12   4  opslimit (Argon2 passes), 1..TF_NODE_BACKUP_OPS_MAX
 *    16   8  memlimit in bytes, 8192..TF_NODE_BACKUP_MEM_MAX
 *    24  16  salt
 *    40  24  crypto_secretstream_xchacha20poly1305 header
 *   then the stream: chunks of TF_NODE_BACKUP_CHUNK plaintext bytes, each
 *   sealed by crypto_secretstream_xchacha20poly1305_push into 17 more bytes;
 *   the first chunk has the 64 header bytes as additional data, so any
 *   change to the header is detected; every chunk but the last is full and
 *   tagged MESSAGE, the last (0..CHUNK bytes) is tagged FINAL, and nothing
 *   follows it, so a truncated, extended or reordered file is refused.
 *   The key is crypto_pwhash(passphrase, salt, opslimit, memlimit, Argon2id).
 *
 *   plaintext:
 *     created  8  unix time of the backup
 *     records, each: name_len 1 (1..64), name, size 8, size bytes of content
 *     end      1  a zero name_len; the plaintext ends there
 *   Names, each at most once: "identity.key" (required, 32 bytes),
 *   "store/data.mdb" (required), "config" and "policy" (optional, at most
 *   TF_NODE_BACKUP_FILE_MAX bytes).  Any other name is refused.
 */
#ifndef TF_NODE_BACKUP_H
#define TF_NODE_BACKUP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "proto/err.h"

#define TF_NODE_BACKUP_MAGIC "TFBACKUP"
#define TF_NODE_BACKUP_VERSION 1
#define TF_NODE_BACKUP_HEADER_LEN 64
#define TF_NODE_BACKUP_CHUNK 65536
/* Argon2id cost of new backups: libsodium's MODERATE, 3 passes over 256
 * MiB (crypto_pwhash_OPSLIMIT_MODERATE, crypto_pwhash_MEMLIMIT_MODERATE):
 * a backup is what an attacker gets to guess at offline.  Older backups
 * carry their own cost in the header and restore as they are. */
#define TF_NODE_BACKUP_OPS 3
#define TF_NODE_BACKUP_MEM (256u << 20)
/* The most a backup's header may ask of a restore. */
#define TF_NODE_BACKUP_OPS_MAX 16
#define TF_NODE_BACKUP_MEM_MAX (1u << 30)
/* config and policy files. */
#define TF_NODE_BACKUP_FILE_MAX (1u << 20)
/* Passphrases of new backups: 12 to 1024 bytes.  A restore takes 8 and
 * more, the minimum of earlier versions. */
#define TF_NODE_BACKUP_PASS_MIN 12
#define TF_NODE_BACKUP_RESTORE_PASS_MIN 8
#define TF_NODE_BACKUP_PASS_MAX 1024

/* What a backup holds (filled by both calls). */
struct tf_node_backup_info {
    uint64_t created;     /* when the backup was made */
    uint64_t store_bytes; /* size of the store copy */
    uint64_t file_bytes;  /* size of the backup file */
    bool has_config, has_policy;
};

/* Writes a backup of home to path (mode 0600), through a temporary file in
 * path's directory that is renamed into place once complete and synced: a
 * failure leaves no file at path.  Refuses (TF_E_EXISTS) an existing path
 * unless force, and (TF_E_INVALID_ARG) a path whose directory is home or
 * below it, symbolic links resolved, force or not.  Works whether or not a node runs on home.  pass
 * is borrowed.  why gets a one-line reason on failure. */
TF_MUST_CHECK int tf_node_backup_write(const char *home, const char *path, bool force,
                                       const uint8_t *pass, size_t pass_len, uint64_t now,
                                       struct tf_node_backup_info *info, char *why, size_t why_cap);

/* Restores the backup at path into home, which must not exist or be an empty
 * directory (TF_E_EXISTS otherwise; -EBUSY with a node running there).  The
 * whole file is decrypted and checked before anything is created; then it is
 * written into a temporary directory beside home, the store is opened and
 * its card checked against the identity, and the directory is renamed into
 * place.  On failure home is left as it was.  A wrong passphrase and a
 * damaged file give TF_E_DECRYPT, a malformed one TF_E_CORRUPT or
 * TF_E_VERSION.  why gets a one-line reason on failure. */
TF_MUST_CHECK int tf_node_backup_restore(const char *path, const char *home, const uint8_t *pass,
                                         size_t pass_len, struct tf_node_backup_info *info,
                                         char *why, size_t why_cap);

#endif
