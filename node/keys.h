/* SPDX-License-Identifier: MIT */
/*
 * The identity key file: the only place secret key bytes are read or written.
 * The file holds the 32-byte identity seed (proto/identity.h derives every key
 * from it), mode 0600, in the 0700 home.  Loaded seeds live only in
 * sodium_malloc memory and are wiped after the keys are derived.
 */
#ifndef TF_NODE_KEYS_H
#define TF_NODE_KEYS_H

#include <stddef.h>
#include <stdint.h>

#include "proto/err.h"
#include "proto/identity.h"

/* Creates path with a fresh random seed: O_EXCL (TF_E_EXISTS if present),
 * mode 0600, written and fsync'ed (file and directory).  On failure nothing is
 * left behind. */
TF_MUST_CHECK int tf_node_keys_create(const char *path);

/* Loads the identity from path.  Refuses (with a one-line reason in why) a
 * file that is missing (-ENOENT), not a regular file, owned by another user
 * than the effective one or readable or writable by group or others (-EPERM,
 * like ssh), or not exactly 32 bytes
 * (TF_E_BAD_LENGTH).  On success *id owns its secrets. */
TF_MUST_CHECK int tf_node_keys_load(const char *path, struct tf_proto_identity *id, char *why,
                                    size_t why_cap);

/* Reads the seed from path into seed (which the caller should hold in
 * sodium_malloc memory and wipe), with the checks and messages of
 * tf_node_keys_load.  For a backup (node/backup.h), which carries the seed
 * itself. */
TF_MUST_CHECK int tf_node_keys_read_seed(const char *path, uint8_t seed[static TF_PROTO_SEED_LEN],
                                         char *why, size_t why_cap);

/* Creates path holding seed, as tf_node_keys_create does with a fresh one
 * (O_EXCL: TF_E_EXISTS if present; 0600; fsync'ed; nothing left behind on
 * failure).  For a restore (node/backup.h). */
TF_MUST_CHECK int tf_node_keys_write_seed(const char *path,
                                          const uint8_t seed[static TF_PROTO_SEED_LEN]);

#endif
