/* SPDX-License-Identifier: MIT */
#include "node/home.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "node/addr.h"
#include "node/keys.h"
#include "node/store.h"
#include "proto/card.h"

int tf_node_home_resolve(const char *arg, char *out, size_t cap)
{
    const char *env;
    int n;
    if (arg != NULL && arg[0] != '\0')
        n = snprintf(out, cap, "%s", arg);
    else if ((env = getenv("TWOFOLD_HOME")) != NULL && env[0] != '\0')
        n = snprintf(out, cap, "%s", env);
    else if ((env = getenv("XDG_DATA_HOME")) != NULL && env[0] != '\0')
        n = snprintf(out, cap, "%s/twofold", env);
    else if ((env = getenv("HOME")) != NULL && env[0] != '\0')
        n = snprintf(out, cap, "%s/.local/share/twofold", env);
    else
        return -ENOENT;
    if (n < 0 || (size_t)n >= cap)
        return -ENAMETOOLONG;
    /* A trailing slash would double up in joined paths. */
    while (n > 1 && out[n - 1] == '/')
        out[--n] = '\0';
    return 0;
}

int tf_node_home_path(const char *home, const char *leaf, char *out, size_t cap)
{
    int n = snprintf(out, cap, "%s/%s", home, leaf);
    return n < 0 || (size_t)n >= cap ? -ENAMETOOLONG : 0;
}

int tf_node_home_socket_path(const char *home, char *out, size_t cap, char *why, size_t why_cap)
{
    struct sockaddr_un sa;
    int rc = tf_node_home_path(home, TF_NODE_HOME_SOCKET, out, cap);
    if (rc == 0 && strlen(out) >= sizeof sa.sun_path)
        rc = -ENAMETOOLONG;
    if (rc != 0)
        snprintf(why, why_cap,
                 "the control socket path %s/%s is longer than a Unix socket allows (%zu bytes); "
                 "use a shorter --home",
                 home, TF_NODE_HOME_SOCKET, sizeof sa.sun_path - 1);
    return rc;
}

int tf_node_home_lock_held(const char *home)
{
    char path[TF_NODE_PATH_MAX];
    if (tf_node_home_path(home, TF_NODE_HOME_LOCK, path, sizeof path) != 0)
        return -ENAMETOOLONG;
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK);
    if (fd < 0)
        return errno == ENOENT ? 0 : -errno;
    int rc = 0;
    if (flock(fd, LOCK_SH | LOCK_NB) != 0)
        rc = errno == EWOULDBLOCK ? 1 : -errno;
    close(fd); /* releases the shared lock, if taken */
    return rc;
}

/* True if dir has no entries but . and .. (false if it cannot be read). */
static bool dir_is_empty(const char *dir)
{
    DIR *d = opendir(dir);
    if (d == NULL)
        return false;
    struct dirent *e;
    bool empty = true;
    while (empty && (e = readdir(d)) != NULL)
        empty = strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0;
    closedir(d);
    return empty;
}

int tf_node_home_make_parents(const char *path)
{
    char buf[TF_NODE_PATH_MAX];
    if (snprintf(buf, sizeof buf, "%s", path) >= (int)sizeof buf)
        return -ENAMETOOLONG;
    for (char *p = buf + 1; *p != '\0'; p++) {
        if (*p != '/')
            continue;
        *p = '\0';
        if (mkdir(buf, 0755) != 0 && errno != EEXIST)
            return -errno;
        *p = '/';
    }
    return 0;
}

/* mkdir -p: parents with 0755 (the umask applies), the last with 0700.  An
 * existing last directory must be empty (it is then made 0700): twofold never
 * takes over, or changes the mode of, a directory that holds other files. */
static int make_dirs(const char *path, char *why, size_t why_cap)
{
    char buf[TF_NODE_PATH_MAX];
    if (snprintf(buf, sizeof buf, "%s", path) >= (int)sizeof buf)
        return -ENAMETOOLONG;
    int rc = tf_node_home_make_parents(buf);
    if (rc != 0)
        return rc;
    bool created = mkdir(buf, 0700) == 0;
    if (!created && errno != EEXIST)
        return -errno;
    struct stat sb;
    if (stat(buf, &sb) != 0)
        return -errno;
    if (!S_ISDIR(sb.st_mode)) {
        snprintf(why, why_cap, "%s exists and is not a directory", path);
        return -ENOTDIR;
    }
    if (!created && !dir_is_empty(buf)) {
        snprintf(why, why_cap,
                 "%s exists and is not empty; choose a new or empty directory for the home", path);
        return TF_E_EXISTS;
    }
    /* An existing, empty home may have been made with a wider mode. */
    if ((sb.st_mode & 077) != 0 && chmod(buf, 0700) != 0)
        return -errno;
    return 0;
}

static struct tf_proto_bytes view(const char *s)
{
    struct tf_proto_bytes b = {(const uint8_t *)s, strlen(s)};
    return b;
}

/* Writes the first card and the settings into a new store. */
static int seed_store(const char *store_dir, const char *key_path,
                      const struct tf_node_home_init_args *args, const char *listen,
                      const char *advertise, char *why, size_t why_cap)
{
    struct tf_proto_identity id = {0};
    struct tf_node_store *st = NULL;
    struct tf_proto_buf card = {0};
    int rc = tf_node_keys_load(key_path, &id, why, why_cap);
    if (rc != 0)
        return rc;
    struct tf_proto_card c;
    memset(&c, 0, sizeof c);
    memcpy(c.sign_pk, id.sign_pk, TF_PROTO_KEY_LEN);
    memcpy(c.noise_pk, id.noise_pk, TF_PROTO_KEY_LEN);
    memcpy(c.box_pk, id.box_pk, TF_PROTO_KEY_LEN);
    c.name = view(args->name);
    c.n_addrs = 1;
    c.addrs[0] = view(advertise);
    c.issued = args->now;
    c.seq = 1;
    if ((rc = tf_proto_card_sign(&id, &c, &card)) != TF_OK) {
        snprintf(why, why_cap, "cannot make the card: %s", tf_strerror(rc));
        goto cleanup;
    }
    if ((rc = tf_node_store_open(store_dir, TF_NODE_STORE_CREATE, &st)) != TF_OK) {
        snprintf(why, why_cap, "cannot create the store in %s: %s", store_dir, tf_strerror(rc));
        goto cleanup;
    }
    uint8_t created[8];
    for (int i = 0; i < 8; i++)
        created[i] = (uint8_t)(args->now >> (56 - 8 * i));
    if ((rc = tf_node_store_meta_put(st, "card", card.data, card.len)) != TF_OK ||
        (rc = tf_node_store_meta_put(st, "listen", (const uint8_t *)listen, strlen(listen))) !=
            TF_OK ||
        (rc = tf_node_store_meta_put(st, "created", created, sizeof created)) != TF_OK ||
        (rc = tf_node_store_commit(st)) != TF_OK)
        snprintf(why, why_cap, "cannot write the store: %s", tf_strerror(rc));
cleanup:
    tf_node_store_close(st);
    tf_proto_buf_free(&card);
    tf_proto_identity_deinit(&id);
    return rc;
}

/* Removes the store directory's files (only the ones LMDB makes). */
static void remove_store(const char *store_dir)
{
    char p[TF_NODE_PATH_MAX];
    if (tf_node_home_path(store_dir, "data.mdb", p, sizeof p) == 0)
        unlink(p);
    if (tf_node_home_path(store_dir, "lock.mdb", p, sizeof p) == 0)
        unlink(p);
    rmdir(store_dir);
}

int tf_node_home_init(const char *home, const struct tf_node_home_init_args *args, char *why,
                      size_t why_cap)
{
    char key[TF_NODE_PATH_MAX], store[TF_NODE_PATH_MAX];
    const char *listen = args->listen ? args->listen : TF_NODE_DEFAULT_LISTEN;
    const char *advertise = args->advertise ? args->advertise : listen;
    struct stat sb;
    int rc;

    if (args->name == NULL || args->name[0] == '\0' ||
        strlen(args->name) > TF_PROTO_CARD_NAME_MAX) {
        snprintf(why, why_cap, "a name of 1 to %d bytes is required", TF_PROTO_CARD_NAME_MAX);
        return TF_E_INVALID_ARG;
    }
    /* The node's own rules (node/addr.h). */
    if (tf_node_addr_check_listen(listen, why, why_cap) != TF_OK ||
        tf_node_addr_check_advertise(&advertise, 1, listen, why, why_cap, args->warn,
                                     args->warn_cap) != TF_OK) {
        if (args->advertise == NULL && tf_node_addr_is_any(listen))
            snprintf(why, why_cap,
                     "'%.200s' is not an address others can reach: give --advertise HOST:PORT "
                     "too",
                     listen);
        return TF_E_INVALID_ARG;
    }
    if ((rc = tf_node_home_path(home, TF_NODE_HOME_KEY, key, sizeof key)) != 0 ||
        (rc = tf_node_home_path(home, TF_NODE_HOME_STORE, store, sizeof store)) != 0) {
        snprintf(why, why_cap, "home path is too long");
        return rc;
    }
    /* A home whose node could not listen is refused before anything is made. */
    char sock[TF_NODE_PATH_MAX];
    if ((rc = tf_node_home_socket_path(home, sock, sizeof sock, why, why_cap)) != 0)
        return rc;
    if (lstat(key, &sb) == 0 || lstat(store, &sb) == 0) {
        snprintf(why, why_cap, "%s already holds a twofold identity; refusing to overwrite it",
                 home);
        return TF_E_EXISTS;
    }
    why[0] = '\0';
    if ((rc = make_dirs(home, why, why_cap)) != 0) {
        if (why[0] == '\0')
            snprintf(why, why_cap, "cannot create %s: %s", home, tf_strerror(rc));
        return rc;
    }
    if ((rc = tf_node_keys_create(key)) != 0) {
        snprintf(why, why_cap, "cannot create %s: %s", key, tf_strerror(rc));
        return rc;
    }
    if ((rc = seed_store(store, key, args, listen, advertise, why, why_cap)) != 0) {
        /* A store that appeared meanwhile is someone else's: leave it. */
        if (rc != TF_E_EXISTS)
            remove_store(store);
        unlink(key);
        return rc;
    }
    return TF_OK;
}
