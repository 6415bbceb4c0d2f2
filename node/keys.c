/* SPDX-License-Identifier: MIT */
#include "node/keys.h"
#include "node/internal.h"

#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <sodium.h>

/* fsyncs the directory holding path, so a new entry survives a crash. */
static int sync_parent(const char *path)
{
    char copy[4096];
    if (snprintf(copy, sizeof copy, "%s", path) >= (int)sizeof copy)
        return -ENAMETOOLONG;
    int fd = open(dirname(copy), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0)
        return -errno;
    int rc = fsync(fd) == 0 ? 0 : -errno;
    close(fd);
    return rc;
}

int tf_node__write_all(int fd, const uint8_t *p, size_t n)
{
    while (n > 0) {
        ssize_t w = write(fd, p, n);
        if (w < 0 && errno == EINTR)
            continue;
        if (w < 0)
            return -errno;
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

int tf_node_keys_create(const char *path)
{
    uint8_t *seed = sodium_malloc(TF_PROTO_SEED_LEN);
    if (seed == NULL)
        return TF_E_NOMEM;
    randombytes_buf(seed, TF_PROTO_SEED_LEN);
    int rc = tf_node_keys_write_seed(path, seed);
    sodium_free(seed);
    return rc;
}

int tf_node_keys_write_seed(const char *path, const uint8_t seed[static TF_PROTO_SEED_LEN])
{
    int rc = 0;
    int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
    if (fd < 0)
        return errno == EEXIST ? TF_E_EXISTS : -errno;
    /* The umask cannot widen 0600, but a fchmod makes the mode exact. */
    if (fchmod(fd, 0600) != 0 || (rc = tf_node__write_all(fd, seed, TF_PROTO_SEED_LEN)) != 0 ||
        fsync(fd) != 0) {
        if (rc == 0)
            rc = -errno;
        close(fd);
        unlink(path);
        return rc;
    }
    if (close(fd) != 0) {
        rc = -errno;
        unlink(path);
        return rc;
    }
    return sync_parent(path);
}

int tf_node_keys_load(const char *path, struct tf_proto_identity *id, char *why, size_t why_cap)
{
    uint8_t *seed = sodium_malloc(TF_PROTO_SEED_LEN);
    if (seed == NULL) {
        snprintf(why, why_cap, "out of memory");
        return TF_E_NOMEM;
    }
    int rc = tf_node_keys_read_seed(path, seed, why, why_cap);
    if (rc == TF_OK && (rc = tf_proto_identity_from_seed(id, seed)) != TF_OK)
        snprintf(why, why_cap, "cannot derive keys: %s", tf_strerror(rc));
    sodium_free(seed); /* wipes */
    return rc;
}

int tf_node_keys_read_seed(const char *path, uint8_t seed[static TF_PROTO_SEED_LEN], char *why,
                           size_t why_cap)
{
    struct stat sb;
    int rc;
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    if (fd < 0) {
        rc = -errno;
        snprintf(why, why_cap, "cannot open %s: %s", path, strerror(errno));
        return rc;
    }
    if (fstat(fd, &sb) != 0) {
        rc = -errno;
        snprintf(why, why_cap, "cannot stat %s: %s", path, strerror(errno));
        goto cleanup;
    }
    if (!S_ISREG(sb.st_mode)) {
        rc = -EINVAL;
        snprintf(why, why_cap, "%s is not a regular file", path);
        goto cleanup;
    }
    if (sb.st_uid != geteuid()) {
        rc = -EPERM;
        snprintf(why, why_cap,
                 "%s is owned by uid %u, not by the running user (uid %u): refusing to use a "
                 "secret key someone else controls",
                 path, (unsigned)sb.st_uid, (unsigned)geteuid());
        goto cleanup;
    }
    if ((sb.st_mode & 077) != 0) {
        rc = -EPERM;
        snprintf(why, why_cap,
                 "permissions %04o for %s are too open: the secret key must not be "
                 "accessible by others (run: chmod 600 %s)",
                 (unsigned)(sb.st_mode & 07777), path, path);
        goto cleanup;
    }
    if (sb.st_size != TF_PROTO_SEED_LEN) {
        rc = TF_E_BAD_LENGTH;
        snprintf(why, why_cap, "%s is %lld bytes, expected %d: not a twofold key file", path,
                 (long long)sb.st_size, TF_PROTO_SEED_LEN);
        goto cleanup;
    }
    size_t got = 0;
    while (got < TF_PROTO_SEED_LEN) {
        ssize_t r = read(fd, seed + got, TF_PROTO_SEED_LEN - got);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0) {
            rc = r < 0 ? -errno : TF_E_TRUNCATED;
            snprintf(why, why_cap, "cannot read %s: %s", path, tf_strerror(rc));
            goto cleanup;
        }
        got += (size_t)r;
    }
    rc = TF_OK;
cleanup:
    close(fd);
    return rc;
}
