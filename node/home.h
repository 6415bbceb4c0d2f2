/* SPDX-License-Identifier: MIT */
/*
 * The node's home directory: where it is, what is in it, and how a new one is
 * made (`twofold init`).
 *
 *   <home>/               mode 0700
 *     identity.key        the identity seed, 0600 (node/keys.h)
 *     store/              LMDB environment (node/store.h)
 *     control.sock        control socket, 0600 (docs/CONTROL.md)
 *     twofoldd.lock       held (flock) by the running node
 */
#ifndef TF_NODE_HOME_H
#define TF_NODE_HOME_H

#include <stddef.h>
#include <stdint.h>

#include "proto/err.h"

#define TF_NODE_PATH_MAX 4096
#define TF_NODE_HOME_KEY "identity.key"
#define TF_NODE_HOME_STORE "store"
#define TF_NODE_HOME_SOCKET "control.sock"
#define TF_NODE_HOME_LOCK "twofoldd.lock"
/* Where a node listens when `init` is not told. */
#define TF_NODE_DEFAULT_LISTEN "127.0.0.1:7451"

/* Picks the home: arg if given, else $TWOFOLD_HOME, else
 * $XDG_DATA_HOME/twofold, else $HOME/.local/share/twofold.  -ENOENT if none
 * can be determined, -ENAMETOOLONG if it does not fit. */
TF_MUST_CHECK int tf_node_home_resolve(const char *arg, char *out, size_t cap);

/* out = home + "/" + leaf.  -ENAMETOOLONG if it does not fit. */
TF_MUST_CHECK int tf_node_home_path(const char *home, const char *leaf, char *out, size_t cap);

/* out = the control socket's path, HOME/control.sock, which must fit in a
 * Unix socket address (sun_path, 107 bytes on Linux, NUL excluded): a longer
 * one would be truncated by bind(2) and the socket would land elsewhere.
 * -ENAMETOOLONG if it does not fit, with why set to the message both the node
 * and the CLI give ("... longer than a Unix socket allows ...; use a shorter
 * --home"). */
TF_MUST_CHECK int tf_node_home_socket_path(const char *home, char *out, size_t cap, char *why,
                                           size_t why_cap);

/* Creates every missing parent directory of path (not path itself), mode
 * 0755 as the umask allows.  0 or -errno. */
TF_MUST_CHECK int tf_node_home_make_parents(const char *path);
/* Whether a twofoldd holds the home's lock (HOME/twofoldd.lock): 1 if one
 * does (it is starting, running or stopping), 0 if none does or the lock file
 * does not exist, -errno if the file cannot be opened.  The test takes a
 * shared lock for an instant; a twofoldd that starts at that moment retries
 * its own lock for a while (node/node.c), so the test never makes it fail. */
TF_MUST_CHECK int tf_node_home_lock_held(const char *home);

struct tf_node_home_init_args {
    const char *name;      /* display name for the card (required) */
    const char *listen;    /* host:port to listen on (NULL: default) */
    const char *advertise; /* host:port put in the card (NULL: listen) */
    uint64_t now;          /* card issue time */
    char *warn;            /* if not NULL, gets a warning line or "" (node/addr.h) */
    size_t warn_cap;
};

/* Creates a new home: the directory (0700, parents as needed), a fresh
 * identity, the store, and the first signed card (seq 1).  Refuses with
 * TF_E_EXISTS if the home already holds an identity or a store; on any other
 * failure removes what it created.  why gets a one-line reason. */
TF_MUST_CHECK int tf_node_home_init(const char *home, const struct tf_node_home_init_args *args,
                                    char *why, size_t why_cap);

#endif
