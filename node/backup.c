/* SPDX-License-Identifier: MIT */
/* realpath(3) */
#define _XOPEN_SOURCE 700
#include "node/backup.h"

#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <dirent.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <sodium.h>

#include "node/config.h"
#include "node/home.h"
#include "node/internal.h"
#include "node/keys.h"
#include "node/store.h"
#include "proto/card.h"
#include "proto/identity.h"

#define CIPHER_CHUNK (TF_NODE_BACKUP_CHUNK + crypto_secretstream_xchacha20poly1305_ABYTES)
#define HOME_POLICY "policy"
#define STORE_DATA TF_NODE_HOME_STORE "/data.mdb"
#define NAME_MAX_LEN 64

_Static_assert(TF_NODE_BACKUP_HEADER_LEN == 8 + 1 + 1 + 2 + 4 + 8 + crypto_pwhash_SALTBYTES +
                                                crypto_secretstream_xchacha20poly1305_HEADERBYTES,
               "the header layout of node/backup.h");
_Static_assert(crypto_pwhash_ALG_ARGON2ID13 == 2, "the key derivation byte of node/backup.h");

/* The records a backup may hold; index = bit in a seen mask. */
enum record {
    RECORD_IDENTITY,
    RECORD_STORE,
    RECORD_CONFIG,
    RECORD_POLICY,
    RECORD_COUNT,
};

static const struct {
    const char *name;
    uint64_t min, max;
} RECORDS[RECORD_COUNT] = {
    [RECORD_IDENTITY] = {TF_NODE_HOME_KEY, TF_PROTO_SEED_LEN, TF_PROTO_SEED_LEN},
    [RECORD_STORE] = {STORE_DATA, 1, UINT64_MAX},
    [RECORD_CONFIG] = {TF_NODE_HOME_CONFIG, 0, TF_NODE_BACKUP_FILE_MAX},
    [RECORD_POLICY] = {HOME_POLICY, 0, TF_NODE_BACKUP_FILE_MAX},
};

static void put_be(uint8_t *p, uint64_t v, int n)
{
    for (int i = 0; i < n; i++)
        p[i] = (uint8_t)(v >> (8 * (n - 1 - i)));
}

static uint64_t get_be(const uint8_t *p, int n)
{
    uint64_t v = 0;
    for (int i = 0; i < n; i++)
        v = v << 8 | p[i];
    return v;
}

/* Reads until n bytes or end of file; *got says how many came. */
static int read_full(int fd, uint8_t *p, size_t n, size_t *got)
{
    *got = 0;
    while (*got < n) {
        ssize_t r = read(fd, p + *got, n - *got);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0)
            return -errno;
        if (r == 0)
            break;
        *got += (size_t)r;
    }
    return 0;
}

static int sync_dir(const char *dir)
{
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0)
        return -errno;
    int rc = fsync(fd) == 0 ? 0 : -errno;
    close(fd);
    return rc;
}

/* dir = the directory part of path ("." for a bare name). */
static int dir_of(const char *path, char *dir, size_t cap)
{
    const char *slash = strrchr(path, '/');
    int n = slash == NULL   ? snprintf(dir, cap, ".")
            : slash == path ? snprintf(dir, cap, "/")
                            : snprintf(dir, cap, "%.*s", (int)(slash - path), path);
    return n < 0 || (size_t)n >= cap ? -ENAMETOOLONG : 0;
}

/* True if dir is home or a directory below it, both resolved (symbolic
 * links, "..").  False when either cannot be resolved: the write then fails
 * on its own, or dir is not there to be inside anything. */
static bool is_inside(const char *dir, const char *home)
{
    char rdir[PATH_MAX], rhome[PATH_MAX];
    if (realpath(dir, rdir) == NULL || realpath(home, rhome) == NULL)
        return false;
    size_t n = strlen(rhome);
    if (n == 1) /* home is "/" */
        return true;
    return strncmp(rdir, rhome, n) == 0 && (rdir[n] == '\0' || rdir[n] == '/');
}

static_assert(TF_NODE_BACKUP_OPS == crypto_pwhash_OPSLIMIT_MODERATE, "MODERATE passes");
static_assert(TF_NODE_BACKUP_MEM == crypto_pwhash_MEMLIMIT_MODERATE, "MODERATE memory");

/* --- the header -------------------------------------------------------- */

struct header {
    uint32_t ops;
    uint64_t mem;
    uint8_t salt[crypto_pwhash_SALTBYTES];
    uint8_t stream[crypto_secretstream_xchacha20poly1305_HEADERBYTES];
};

static void header_encode(const struct header *h, uint8_t out[static TF_NODE_BACKUP_HEADER_LEN])
{
    memcpy(out, TF_NODE_BACKUP_MAGIC, 8);
    out[8] = TF_NODE_BACKUP_VERSION;
    out[9] = crypto_pwhash_ALG_ARGON2ID13;
    out[10] = out[11] = 0;
    put_be(out + 12, h->ops, 4);
    put_be(out + 16, h->mem, 8);
    memcpy(out + 24, h->salt, sizeof h->salt);
    memcpy(out + 40, h->stream, sizeof h->stream);
}

static int header_decode(const uint8_t in[static TF_NODE_BACKUP_HEADER_LEN], struct header *h,
                         char *why, size_t why_cap)
{
    if (memcmp(in, TF_NODE_BACKUP_MAGIC, 8) != 0) {
        snprintf(why, why_cap, "not a twofold backup (no TFBACKUP header)");
        return TF_E_CORRUPT;
    }
    if (in[8] != TF_NODE_BACKUP_VERSION) {
        snprintf(why, why_cap,
                 "a twofold backup of version %u, and this twofold reads version %d: use a "
                 "newer twofold",
                 in[8], TF_NODE_BACKUP_VERSION);
        return TF_E_VERSION;
    }
    h->ops = (uint32_t)get_be(in + 12, 4);
    h->mem = get_be(in + 16, 8);
    if (in[9] != crypto_pwhash_ALG_ARGON2ID13 || in[10] != 0 || in[11] != 0 || h->ops < 1 ||
        h->ops > TF_NODE_BACKUP_OPS_MAX || h->mem < crypto_pwhash_MEMLIMIT_MIN ||
        h->mem > TF_NODE_BACKUP_MEM_MAX) {
        snprintf(why, why_cap,
                 "the backup's header is damaged (key derivation %u, %u passes, %llu bytes)", in[9],
                 (unsigned)h->ops, (unsigned long long)h->mem);
        return TF_E_CORRUPT;
    }
    memcpy(h->salt, in + 24, sizeof h->salt);
    memcpy(h->stream, in + 40, sizeof h->stream);
    return TF_OK;
}

/* key (sodium_malloc'ed, crypto_secretstream_xchacha20poly1305_KEYBYTES). */
static int derive_key(uint8_t *key, const struct header *h, const uint8_t *pass, size_t pass_len,
                      char *why, size_t why_cap)
{
    if (crypto_pwhash(key, crypto_secretstream_xchacha20poly1305_KEYBYTES, (const char *)pass,
                      pass_len, h->salt, h->ops, (size_t)h->mem,
                      crypto_pwhash_ALG_ARGON2ID13) != 0) {
        snprintf(why, why_cap, "cannot derive the key from the passphrase (%llu MiB of memory)",
                 (unsigned long long)(h->mem >> 20));
        return TF_E_NOMEM;
    }
    return TF_OK;
}

/* --- sealing ------------------------------------------------------------- */

struct sealer {
    crypto_secretstream_xchacha20poly1305_state st;
    int fd;
    uint8_t *plain;  /* TF_NODE_BACKUP_CHUNK, sodium_malloc (it holds the seed) */
    uint8_t *cipher; /* CIPHER_CHUNK */
    size_t n;
    const uint8_t *ad; /* the header, for the first chunk */
    size_t ad_len;
    uint64_t written;
};

static int seal_chunk(struct sealer *s, unsigned char tag)
{
    unsigned long long clen;
    crypto_secretstream_xchacha20poly1305_push(&s->st, s->cipher, &clen, s->plain, s->n, s->ad,
                                               s->ad_len, tag);
    s->ad = NULL;
    s->ad_len = 0;
    s->n = 0;
    s->written += clen;
    return tf_node__write_all(s->fd, s->cipher, (size_t)clen);
}

/* A full buffer is sealed only when more comes, so the last chunk, sealed by
 * seal_finish, is never empty unless the whole plaintext is. */
static int seal_put(struct sealer *s, const void *p, size_t len)
{
    const uint8_t *b = p;
    while (len > 0) {
        if (s->n == TF_NODE_BACKUP_CHUNK) {
            int rc = seal_chunk(s, crypto_secretstream_xchacha20poly1305_TAG_MESSAGE);
            if (rc != 0)
                return rc;
        }
        size_t k = TF_NODE_BACKUP_CHUNK - s->n < len ? TF_NODE_BACKUP_CHUNK - s->n : len;
        memcpy(s->plain + s->n, b, k);
        s->n += k;
        b += k;
        len -= k;
    }
    return 0;
}

static int seal_record_head(struct sealer *s, enum record r, uint64_t size)
{
    uint8_t head[1 + NAME_MAX_LEN + 8];
    size_t nl = strlen(RECORDS[r].name);
    head[0] = (uint8_t)nl;
    memcpy(head + 1, RECORDS[r].name, nl);
    put_be(head + 1 + nl, size, 8);
    return seal_put(s, head, 1 + nl + 8);
}

/* --- opening ------------------------------------------------------------- */

struct opener {
    crypto_secretstream_xchacha20poly1305_state st;
    int fd;
    uint8_t *plain;  /* TF_NODE_BACKUP_CHUNK, sodium_malloc */
    uint8_t *cipher; /* CIPHER_CHUNK */
    size_t n, off;
    const uint8_t *ad;
    size_t ad_len;
    bool final;
    uint64_t chunks;
};

/* Opens the next chunk.  TF_E_DECRYPT: it does not authenticate (wrong key,
 * or altered); TF_E_TRUNCATED: the file ends early; TF_E_TRAILING: bytes
 * after the final chunk. */
static int open_chunk(struct opener *o)
{
    size_t got;
    unsigned long long mlen;
    unsigned char tag;
    if (o->final)
        return TF_E_TRUNCATED; /* the plaintext ends inside a record */
    int rc = read_full(o->fd, o->cipher, CIPHER_CHUNK, &got);
    if (rc != 0)
        return rc;
    if (got < crypto_secretstream_xchacha20poly1305_ABYTES)
        return TF_E_TRUNCATED;
    if (crypto_secretstream_xchacha20poly1305_pull(&o->st, o->plain, &mlen, &tag, o->cipher, got,
                                                   o->ad, o->ad_len) != 0)
        return TF_E_DECRYPT;
    o->ad = NULL;
    o->ad_len = 0;
    o->chunks++;
    o->n = (size_t)mlen;
    o->off = 0;
    if (tag == crypto_secretstream_xchacha20poly1305_TAG_FINAL) {
        uint8_t extra;
        o->final = true;
        if ((rc = read_full(o->fd, &extra, 1, &got)) != 0)
            return rc;
        return got == 0 ? 0 : TF_E_TRAILING;
    }
    if (tag != crypto_secretstream_xchacha20poly1305_TAG_MESSAGE)
        return TF_E_CORRUPT;
    return got == CIPHER_CHUNK ? 0 : TF_E_TRUNCATED;
}

static int open_get(struct opener *o, void *dst, size_t len)
{
    uint8_t *b = dst;
    while (len > 0) {
        if (o->off == o->n) {
            int rc = open_chunk(o);
            if (rc != 0)
                return rc;
            continue;
        }
        size_t k = o->n - o->off < len ? o->n - o->off : len;
        memcpy(b, o->plain + o->off, k);
        o->off += k;
        b += k;
        len -= k;
    }
    return 0;
}

/* After the end record: nothing may follow, and the stream must be final. */
static int open_end(struct opener *o)
{
    if (o->off != o->n)
        return TF_E_TRAILING;
    if (!o->final) {
        int rc = open_chunk(o);
        if (rc != 0)
            return rc;
        if (o->n != 0 || !o->final)
            return TF_E_TRAILING;
    }
    return 0;
}

static int opener_start(struct opener *o, const struct header *h, const uint8_t *key,
                        const uint8_t *hdr_bytes)
{
    if (crypto_secretstream_xchacha20poly1305_init_pull(&o->st, h->stream, key) != 0)
        return TF_E_DECRYPT;
    o->n = o->off = 0;
    o->final = false;
    o->chunks = 0;
    o->ad = hdr_bytes;
    o->ad_len = TF_NODE_BACKUP_HEADER_LEN;
    return 0;
}

/* --- writing a backup ---------------------------------------------------- */

/* Reads a small optional file of the home into *buf (malloc'ed, *len bytes);
 * *buf stays NULL if the file does not exist. */
static int read_small(const char *path, uint8_t **buf, size_t *len, char *why, size_t why_cap)
{
    struct stat sb;
    size_t got;
    *buf = NULL;
    *len = 0;
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    if (fd < 0 && errno == ENOENT)
        return 0;
    if (fd < 0 || fstat(fd, &sb) != 0) {
        int rc = -errno;
        snprintf(why, why_cap, "cannot read %s: %s", path, strerror(errno));
        if (fd >= 0)
            close(fd);
        return rc;
    }
    if (!S_ISREG(sb.st_mode) || sb.st_size > (off_t)TF_NODE_BACKUP_FILE_MAX) {
        snprintf(why, why_cap, "%s is not a regular file of at most %u bytes", path,
                 TF_NODE_BACKUP_FILE_MAX);
        close(fd);
        return TF_E_TOO_LONG;
    }
    *buf = malloc((size_t)sb.st_size + 1);
    int rc = *buf == NULL ? TF_E_NOMEM : read_full(fd, *buf, (size_t)sb.st_size, &got);
    close(fd);
    if (rc == 0 && got != (size_t)sb.st_size)
        rc = TF_E_TRUNCATED; /* it shrank while read */
    if (rc != 0) {
        snprintf(why, why_cap, "cannot read %s: %s", path, tf_strerror(rc));
        free(*buf);
        *buf = NULL;
        return rc;
    }
    *len = got;
    return 0;
}

/* Copies the store into an unlinked temporary file in the home (so the
 * plaintext copy never appears under a name, and sits where the store is).
 * Returns the file, at offset 0, in *fd, and its size. */
static int copy_store(const char *home, int *fd, uint64_t *size, char *why, size_t why_cap)
{
    char store[TF_NODE_PATH_MAX], tmp[TF_NODE_PATH_MAX];
    struct tf_node_store *st = NULL;
    struct stat sb;
    *fd = -1;
    if (tf_node_home_path(home, TF_NODE_HOME_STORE, store, sizeof store) != 0 ||
        tf_node_home_path(home, ".backup-XXXXXX", tmp, sizeof tmp) != 0) {
        snprintf(why, why_cap, "the home path is too long");
        return -ENAMETOOLONG;
    }
    int rc = tf_node_store_open(store, TF_NODE_STORE_READONLY, &st);
    if (rc != TF_OK) {
        snprintf(why, why_cap, "cannot open the store in %s: %s", store, tf_strerror(rc));
        return rc;
    }
    int f = mkstemp(tmp);
    if (f < 0) {
        rc = -errno;
        snprintf(why, why_cap, "cannot make a temporary file in %s: %s", home, strerror(errno));
        goto cleanup;
    }
    unlink(tmp);
    if ((rc = tf_node_store_copy_fd(st, f)) != TF_OK) {
        snprintf(why, why_cap, "cannot copy the store: %s", tf_strerror(rc));
        close(f);
        goto cleanup;
    }
    if (fstat(f, &sb) != 0 || lseek(f, 0, SEEK_SET) != 0) {
        rc = -errno;
        snprintf(why, why_cap, "cannot read the store's copy: %s", strerror(errno));
        close(f);
        goto cleanup;
    }
    *fd = f;
    *size = (uint64_t)sb.st_size;
cleanup:
    tf_node_store_close(st);
    return rc;
}

static int seal_fd(struct sealer *s, int fd, uint64_t size)
{
    uint8_t buf[16384];
    int rc = 0;
    while (size > 0) {
        size_t got, want = size < sizeof buf ? (size_t)size : sizeof buf;
        rc = read_full(fd, buf, want, &got);
        if (rc == 0 && got != want)
            rc = TF_E_TRUNCATED;
        if (rc == 0)
            rc = seal_put(s, buf, got);
        if (rc != 0)
            break;
        size -= got;
    }
    sodium_memzero(buf, sizeof buf); /* store contents */
    return rc;
}

int tf_node_backup_write(const char *home, const char *path, bool force, const uint8_t *pass,
                         size_t pass_len, uint64_t now, struct tf_node_backup_info *info, char *why,
                         size_t why_cap)
{
    char key_path[TF_NODE_PATH_MAX], config_path[TF_NODE_PATH_MAX], policy_path[TF_NODE_PATH_MAX];
    char tmp[TF_NODE_PATH_MAX], dir[TF_NODE_PATH_MAX];
    uint8_t *seed = NULL, *key = NULL, *config = NULL, *policy = NULL;
    size_t config_len = 0, policy_len = 0;
    struct sealer s = {.fd = -1};
    uint8_t hdr[TF_NODE_BACKUP_HEADER_LEN];
    struct header h = {.ops = TF_NODE_BACKUP_OPS, .mem = TF_NODE_BACKUP_MEM};
    struct stat sb;
    int store_fd = -1, rc;
    bool made = false;

    memset(info, 0, sizeof *info);
    if (pass_len < TF_NODE_BACKUP_PASS_MIN || pass_len > TF_NODE_BACKUP_PASS_MAX) {
        snprintf(why, why_cap, "a passphrase is %d to %d bytes", TF_NODE_BACKUP_PASS_MIN,
                 TF_NODE_BACKUP_PASS_MAX);
        return TF_E_INVALID_ARG;
    }
    if (tf_node_home_path(home, TF_NODE_HOME_KEY, key_path, sizeof key_path) != 0 ||
        tf_node_home_path(home, TF_NODE_HOME_CONFIG, config_path, sizeof config_path) != 0 ||
        tf_node_home_path(home, HOME_POLICY, policy_path, sizeof policy_path) != 0 ||
        snprintf(tmp, sizeof tmp, "%s.partial-XXXXXX", path) >= (int)sizeof tmp ||
        dir_of(path, dir, sizeof dir) != 0) {
        snprintf(why, why_cap, "a path is too long");
        return -ENAMETOOLONG;
    }
    /* Fail before the slow work when the answer is already known. */
    if (!force && lstat(path, &sb) == 0) {
        snprintf(why, why_cap, "%s already exists; choose another name (or give --force)", path);
        return TF_E_EXISTS;
    }
    /* A backup inside the home it saves is lost with it, and with --force a
     * slip (FILE = HOME/identity.key) would replace the seed or the store
     * with ciphertext. */
    if (is_inside(dir, home)) {
        snprintf(why, why_cap, "%s is inside the home %s; write the backup outside it", path, home);
        return TF_E_INVALID_ARG;
    }
    if ((seed = sodium_malloc(TF_PROTO_SEED_LEN)) == NULL ||
        (key = sodium_malloc(crypto_secretstream_xchacha20poly1305_KEYBYTES)) == NULL ||
        (s.plain = sodium_malloc(TF_NODE_BACKUP_CHUNK)) == NULL ||
        (s.cipher = malloc(CIPHER_CHUNK)) == NULL) {
        snprintf(why, why_cap, "out of memory");
        rc = TF_E_NOMEM;
        goto cleanup;
    }
    if ((rc = tf_node_keys_read_seed(key_path, seed, why, why_cap)) != TF_OK) {
        if (rc == -ENOENT)
            snprintf(why, why_cap,
                     "%s holds no twofold identity; create one with: twofold --home %s init "
                     "--name NAME",
                     home, home);
        goto cleanup;
    }
    if ((rc = read_small(config_path, &config, &config_len, why, why_cap)) != 0 ||
        (rc = read_small(policy_path, &policy, &policy_len, why, why_cap)) != 0 ||
        (rc = copy_store(home, &store_fd, &info->store_bytes, why, why_cap)) != 0)
        goto cleanup;

    if ((s.fd = mkstemp(tmp)) < 0) {
        rc = -errno;
        snprintf(why, why_cap, "cannot create a file in %s: %s", dir, strerror(errno));
        goto cleanup;
    }
    made = true;
    randombytes_buf(h.salt, sizeof h.salt);
    if (fchmod(s.fd, 0600) != 0) {
        rc = -errno;
        snprintf(why, why_cap, "cannot set the mode of %s: %s", tmp, strerror(errno));
        goto cleanup;
    }
    if ((rc = derive_key(key, &h, pass, pass_len, why, why_cap)) != 0)
        goto cleanup;
    crypto_secretstream_xchacha20poly1305_init_push(&s.st, h.stream, key);
    header_encode(&h, hdr);
    s.ad = hdr;
    s.ad_len = sizeof hdr;
    uint8_t created[8];
    put_be(created, now, 8);
    if ((rc = tf_node__write_all(s.fd, hdr, sizeof hdr)) != 0 ||
        (rc = seal_put(&s, created, sizeof created)) != 0 ||
        (rc = seal_record_head(&s, RECORD_IDENTITY, TF_PROTO_SEED_LEN)) != 0 ||
        (rc = seal_put(&s, seed, TF_PROTO_SEED_LEN)) != 0 ||
        (rc = seal_record_head(&s, RECORD_STORE, info->store_bytes)) != 0 ||
        (rc = seal_fd(&s, store_fd, info->store_bytes)) != 0 ||
        (config != NULL && ((rc = seal_record_head(&s, RECORD_CONFIG, config_len)) != 0 ||
                            (rc = seal_put(&s, config, config_len)) != 0)) ||
        (policy != NULL && ((rc = seal_record_head(&s, RECORD_POLICY, policy_len)) != 0 ||
                            (rc = seal_put(&s, policy, policy_len)) != 0)) ||
        (rc = seal_put(&s, "", 1)) != 0 ||
        (rc = seal_chunk(&s, crypto_secretstream_xchacha20poly1305_TAG_FINAL)) != 0) {
        snprintf(why, why_cap, "cannot write %s: %s", tmp, tf_strerror(rc));
        goto cleanup;
    }
    if (fsync(s.fd) != 0 || close(s.fd) != 0) {
        s.fd = -1;
        rc = -errno;
        snprintf(why, why_cap, "cannot write %s: %s", tmp, strerror(errno));
        goto cleanup;
    }
    s.fd = -1;
    /* Without --force, link() refuses a path that appeared meanwhile. */
    if (force ? rename(tmp, path) != 0 : link(tmp, path) != 0) {
        rc = errno == EEXIST ? TF_E_EXISTS : -errno;
        snprintf(why, why_cap, "cannot create %s: %s", path, strerror(errno));
        goto cleanup;
    }
    if (!force)
        unlink(tmp);
    made = false;
    if ((rc = sync_dir(dir)) != 0) {
        snprintf(why, why_cap, "cannot sync %s: %s", dir, tf_strerror(rc));
        goto cleanup;
    }
    info->created = now;
    info->file_bytes = sizeof hdr + s.written;
    info->has_config = config != NULL;
    info->has_policy = policy != NULL;
cleanup:
    if (s.fd >= 0)
        close(s.fd);
    if (made)
        unlink(tmp);
    if (store_fd >= 0)
        close(store_fd);
    sodium_memzero(&s.st, sizeof s.st);
    sodium_free(seed);
    sodium_free(key);
    sodium_free(s.plain);
    free(s.cipher);
    free(config);
    free(policy);
    return rc;
}

/* --- restoring ----------------------------------------------------------- */

/* Writes a file of the restored home from the stream: size bytes into
 * dir/name (0600, O_EXCL), or nowhere when dir is NULL. */
static int restore_file(struct opener *o, const char *dir, const char *name, uint64_t size)
{
    char path[TF_NODE_PATH_MAX];
    uint8_t buf[16384];
    int fd = -1, rc = 0;
    if (dir != NULL) {
        if (tf_node_home_path(dir, name, path, sizeof path) != 0)
            return -ENAMETOOLONG;
        fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
        if (fd < 0)
            return -errno;
    }
    while (rc == 0 && size > 0) {
        size_t k = size < sizeof buf ? (size_t)size : sizeof buf;
        if ((rc = open_get(o, buf, k)) == 0 && fd >= 0)
            rc = tf_node__write_all(fd, buf, k);
        size -= k;
    }
    sodium_memzero(buf, sizeof buf); /* store contents */
    if (fd >= 0) {
        if (rc == 0 && fsync(fd) != 0)
            rc = -errno;
        if (close(fd) != 0 && rc == 0)
            rc = -errno;
    }
    return rc;
}

/* Reads the plaintext: the records, checked; with dir, writes them there. */
static int restore_records(struct opener *o, const char *dir, struct tf_node_backup_info *info,
                           char *why, size_t why_cap)
{
    uint8_t b8[8], nl;
    char name[NAME_MAX_LEN + 1];
    unsigned seen = 0;
    int rc;
    if ((rc = open_get(o, b8, 8)) != 0)
        return rc;
    info->created = get_be(b8, 8);
    for (;;) {
        if ((rc = open_get(o, &nl, 1)) != 0)
            return rc;
        if (nl == 0)
            break;
        if (nl > NAME_MAX_LEN || (rc = open_get(o, name, nl)) != 0 ||
            (rc = open_get(o, b8, 8)) != 0)
            return rc != 0 ? rc : TF_E_CORRUPT;
        name[nl] = '\0';
        uint64_t size = get_be(b8, 8);
        int r = 0;
        while (r < RECORD_COUNT && strcmp(RECORDS[r].name, name) != 0)
            r++;
        if (r == RECORD_COUNT || (seen & 1u << r) != 0 || size < RECORDS[r].min ||
            size > RECORDS[r].max) {
            snprintf(why, why_cap, "the backup holds an unexpected or malformed entry");
            return TF_E_CORRUPT;
        }
        seen |= 1u << r;
        if (r == RECORD_IDENTITY) {
            /* The seed goes through locked memory to keys.c. */
            uint8_t *seed = sodium_malloc(TF_PROTO_SEED_LEN);
            char path[TF_NODE_PATH_MAX];
            if (seed == NULL)
                return TF_E_NOMEM;
            if ((rc = open_get(o, seed, TF_PROTO_SEED_LEN)) == 0 && dir != NULL)
                rc = tf_node_home_path(dir, TF_NODE_HOME_KEY, path, sizeof path) != 0
                         ? -ENAMETOOLONG
                         : tf_node_keys_write_seed(path, seed);
            sodium_free(seed);
        } else {
            if (r == RECORD_STORE && dir != NULL) {
                char store[TF_NODE_PATH_MAX];
                if (tf_node_home_path(dir, TF_NODE_HOME_STORE, store, sizeof store) != 0)
                    return -ENAMETOOLONG;
                if (mkdir(store, 0700) != 0)
                    return -errno;
            }
            rc = restore_file(o, dir, name, size);
        }
        if (rc != 0)
            return rc;
        if (r == RECORD_STORE)
            info->store_bytes = size;
        info->has_config |= r == RECORD_CONFIG;
        info->has_policy |= r == RECORD_POLICY;
    }
    if ((rc = open_end(o)) != 0)
        return rc;
    if ((seen & (1u << RECORD_IDENTITY | 1u << RECORD_STORE)) !=
        (1u << RECORD_IDENTITY | 1u << RECORD_STORE)) {
        snprintf(why, why_cap, "the backup lacks the identity or the store");
        return TF_E_CORRUPT;
    }
    return 0;
}

/* Checks that a restored home's store opens and holds a card of its
 * identity. */
static int check_restored(const char *dir, char *why, size_t why_cap)
{
    char key[TF_NODE_PATH_MAX], store[TF_NODE_PATH_MAX];
    struct tf_proto_identity id = {0};
    struct tf_node_store *st = NULL;
    struct tf_proto_buf card = {0};
    struct tf_proto_card c;
    int rc;
    if (tf_node_home_path(dir, TF_NODE_HOME_KEY, key, sizeof key) != 0 ||
        tf_node_home_path(dir, TF_NODE_HOME_STORE, store, sizeof store) != 0)
        return -ENAMETOOLONG;
    if ((rc = tf_node_keys_load(key, &id, why, why_cap)) != TF_OK)
        return rc;
    if ((rc = tf_node_store_open(store, TF_NODE_STORE_READONLY, &st)) != TF_OK) {
        snprintf(why, why_cap,
                 rc == TF_E_VERSION ? "the backup's store was written by a newer twofold: %s"
                                    : "the backup's store does not open: %s",
                 tf_strerror(rc));
        goto cleanup;
    }
    if ((rc = tf_node_store_meta_get(st, "card", &card)) != TF_OK ||
        (rc = tf_proto_card_verify(card.data, card.len, &c)) != TF_OK ||
        (rc = sodium_memcmp(c.sign_pk, id.sign_pk, TF_PROTO_KEY_LEN) == 0
                  ? TF_OK
                  : TF_E_KEY_MISMATCH) != TF_OK)
        snprintf(why, why_cap, "the backup's store does not hold a card of its identity: %s",
                 tf_strerror(rc));
cleanup:
    tf_proto_buf_free(&card);
    tf_node_store_close(st);
    tf_proto_identity_deinit(&id);
    return rc;
}

/* Removes what restore_records may have written into dir, and dir. */
static void remove_restored(const char *dir)
{
    static const char *const leaves[] = {TF_NODE_HOME_KEY, TF_NODE_HOME_CONFIG, HOME_POLICY,
                                         STORE_DATA, TF_NODE_HOME_STORE "/lock.mdb"};
    char p[TF_NODE_PATH_MAX];
    for (size_t i = 0; i < sizeof leaves / sizeof leaves[0]; i++)
        if (tf_node_home_path(dir, leaves[i], p, sizeof p) == 0)
            unlink(p);
    if (tf_node_home_path(dir, TF_NODE_HOME_STORE, p, sizeof p) == 0)
        rmdir(p);
    rmdir(dir);
}

/* Removes the directories that interrupted restores into parent/base left
 * (".base.restore-XXXXXX", with the seed in them): those of this user that
 * no restore holds locked (a running restore locks its own until it ends,
 * and the lock goes with its process, however that ends). */
static void remove_stale(const char *parent, const char *base)
{
    char prefix[TF_NODE_PATH_MAX], p[TF_NODE_PATH_MAX];
    int plen = snprintf(prefix, sizeof prefix, ".%s.restore-", base);
    DIR *d = opendir(parent);
    struct dirent *e;
    if (d == NULL || plen < 0 || (size_t)plen >= sizeof prefix) {
        if (d != NULL)
            closedir(d);
        return;
    }
    while ((e = readdir(d)) != NULL) {
        if (strncmp(e->d_name, prefix, (size_t)plen) != 0 ||
            strlen(e->d_name) != (size_t)plen + 6 ||
            snprintf(p, sizeof p, "%s/%s", parent, e->d_name) >= (int)sizeof p)
            continue;
        int fd = open(p, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        struct stat sb;
        if (fd < 0)
            continue;
        if (fstat(fd, &sb) == 0 && sb.st_uid == geteuid() && flock(fd, LOCK_EX | LOCK_NB) == 0)
            remove_restored(p);
        close(fd);
    }
    closedir(d);
}

/* home must not exist, or be an empty directory with no node running. */
static int check_target(const char *home, char *why, size_t why_cap)
{
    char lock[TF_NODE_PATH_MAX];
    struct stat sb;
    if (lstat(home, &sb) != 0) {
        if (errno == ENOENT)
            return 0;
        snprintf(why, why_cap, "cannot look at %s: %s", home, strerror(errno));
        return -errno;
    }
    if (!S_ISDIR(sb.st_mode)) {
        snprintf(why, why_cap, "%s exists and is not a directory", home);
        return TF_E_EXISTS;
    }
    if (tf_node_home_path(home, TF_NODE_HOME_LOCK, lock, sizeof lock) != 0)
        return -ENAMETOOLONG;
    int fd = open(lock, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    if (fd >= 0) {
        bool running = flock(fd, LOCK_SH | LOCK_NB) != 0 && errno == EWOULDBLOCK;
        close(fd);
        if (running) {
            snprintf(why, why_cap,
                     "a node is running in %s: a restore never replaces a home; restore into a "
                     "new one",
                     home);
            return -EBUSY;
        }
    }
    DIR *d = opendir(home);
    if (d == NULL) {
        snprintf(why, why_cap, "cannot read %s: %s", home, strerror(errno));
        return -errno;
    }
    struct dirent *e;
    bool empty = true;
    while (empty && (e = readdir(d)) != NULL)
        empty = strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0;
    closedir(d);
    if (!empty) {
        snprintf(why, why_cap,
                 "%s is not empty: a restore never replaces a home; restore into a new or empty "
                 "directory",
                 home);
        return TF_E_EXISTS;
    }
    return 0;
}

/* The signals that end a CLI: blocked while a restore writes. */
static const int stop_signals[] = {SIGINT, SIGTERM, SIGHUP, SIGQUIT};

/* True if one of stop_signals is pending (they are blocked). */
static bool interrupted(void)
{
    sigset_t pending;
    if (sigpending(&pending) != 0)
        return false;
    for (size_t i = 0; i < sizeof stop_signals / sizeof stop_signals[0]; i++)
        if (sigismember(&pending, stop_signals[i]) == 1)
            return true;
    return false;
}

/* Describes a failure to open the stream (at chunk o->chunks). */
static void stream_why(const struct opener *o, int rc, char *why, size_t why_cap)
{
    if (rc == TF_E_DECRYPT && o->chunks == 0)
        snprintf(why, why_cap, "wrong passphrase, or the backup is damaged");
    else if (rc == TF_E_DECRYPT || rc == TF_E_TRUNCATED || rc == TF_E_TRAILING ||
             rc == TF_E_CORRUPT)
        snprintf(why, why_cap, "the backup is damaged (altered, truncated or extended): %s",
                 tf_strerror(rc));
    else
        snprintf(why, why_cap, "cannot read the backup: %s", tf_strerror(rc));
}

int tf_node_backup_restore(const char *path, const char *home, const uint8_t *pass, size_t pass_len,
                           struct tf_node_backup_info *info, char *why, size_t why_cap)
{
    char parent[TF_NODE_PATH_MAX], tmp[TF_NODE_PATH_MAX];
    uint8_t hdr[TF_NODE_BACKUP_HEADER_LEN];
    struct opener o = {.fd = -1};
    struct header h;
    uint8_t *key = NULL;
    sigset_t stop, old_mask;
    bool made = false, blocked = false;
    size_t got;
    int rc, lock_fd = -1;

    memset(info, 0, sizeof *info);
    why[0] = '\0';
    const char *base = strrchr(home, '/');
    base = base != NULL ? base + 1 : home;
    if (base[0] == '\0' || strcmp(base, ".") == 0 || strcmp(base, "..") == 0) {
        snprintf(why, why_cap, "give the new home as a path that ends in its name, not '%s'", home);
        return TF_E_INVALID_ARG;
    }
    if (dir_of(home, parent, sizeof parent) != 0 ||
        snprintf(tmp, sizeof tmp, "%s/.%s.restore-XXXXXX", parent, base) >= (int)sizeof tmp) {
        snprintf(why, why_cap, "the home path is too long");
        return -ENAMETOOLONG;
    }
    /* A home whose node could not listen is refused as init refuses it. */
    char sock[TF_NODE_PATH_MAX];
    if ((rc = tf_node_home_socket_path(home, sock, sizeof sock, why, why_cap)) != 0 ||
        (rc = check_target(home, why, why_cap)) != 0)
        return rc;
    remove_stale(parent, base);
    if ((o.fd = open(path, O_RDONLY | O_CLOEXEC)) < 0) {
        rc = -errno;
        snprintf(why, why_cap, "cannot open %s: %s", path, strerror(errno));
        return rc;
    }
    if ((key = sodium_malloc(crypto_secretstream_xchacha20poly1305_KEYBYTES)) == NULL ||
        (o.plain = sodium_malloc(TF_NODE_BACKUP_CHUNK)) == NULL ||
        (o.cipher = malloc(CIPHER_CHUNK)) == NULL) {
        snprintf(why, why_cap, "out of memory");
        rc = TF_E_NOMEM;
        goto cleanup;
    }
    if ((rc = read_full(o.fd, hdr, sizeof hdr, &got)) != 0) {
        snprintf(why, why_cap, "cannot read %s: %s", path, tf_strerror(rc));
        goto cleanup;
    }
    if (got < sizeof hdr) {
        snprintf(why, why_cap, "not a twofold backup (shorter than its header)");
        rc = TF_E_CORRUPT;
        goto cleanup;
    }
    if ((rc = header_decode(hdr, &h, why, why_cap)) != 0 ||
        (rc = derive_key(key, &h, pass, pass_len, why, why_cap)) != 0)
        goto cleanup;
    /* First pass: decrypt and check everything, creating nothing. */
    if ((rc = opener_start(&o, &h, key, hdr)) != 0 ||
        (rc = restore_records(&o, NULL, info, why, why_cap)) != 0) {
        if (why[0] == '\0')
            stream_why(&o, rc, why, why_cap);
        goto cleanup;
    }
    /* Second pass: write it into a new directory beside home.  The signals
     * that end a CLI wait until the directory is renamed or removed; one
     * that came meanwhile abandons the restore.  The directory stays locked
     * so that a later restore removes it if this one dies anyway (kill -9,
     * power loss), and only then. */
    sigemptyset(&stop);
    for (size_t i = 0; i < sizeof stop_signals / sizeof stop_signals[0]; i++)
        sigaddset(&stop, stop_signals[i]);
    blocked = sigprocmask(SIG_BLOCK, &stop, &old_mask) == 0;
    if ((rc = tf_node_home_make_parents(home)) != 0 || mkdtemp(tmp) == NULL) {
        rc = rc != 0 ? rc : -errno;
        snprintf(why, why_cap, "cannot create a directory in %s: %s", parent, tf_strerror(rc));
        goto cleanup;
    }
    made = true;
    if ((lock_fd = open(tmp, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) < 0 ||
        flock(lock_fd, LOCK_EX | LOCK_NB) != 0) {
        rc = -errno;
        snprintf(why, why_cap, "cannot lock %s: %s", tmp, strerror(errno));
        goto cleanup;
    }
    if (lseek(o.fd, (off_t)sizeof hdr, SEEK_SET) != (off_t)sizeof hdr) {
        rc = -errno;
        snprintf(why, why_cap, "cannot read %s again: %s", path, strerror(errno));
        goto cleanup;
    }
    if ((rc = opener_start(&o, &h, key, hdr)) != 0 ||
        (rc = restore_records(&o, tmp, info, why, why_cap)) != 0) {
        if (why[0] == '\0')
            snprintf(why, why_cap, "cannot restore into %s: %s (did %s change meanwhile?)", tmp,
                     tf_strerror(rc), path);
        goto cleanup;
    }
    if ((rc = check_restored(tmp, why, why_cap)) != 0)
        goto cleanup;
    if (interrupted()) {
        snprintf(why, why_cap, "interrupted; nothing was restored");
        rc = -EINTR;
        goto cleanup;
    }
    /* rename() replaces an empty directory, and fails on one that was
     * filled meanwhile.  store/'s entry (data.mdb) is made durable first,
     * then the home's (identity.key, store/). */
    char store_dir[TF_NODE_PATH_MAX];
    if (tf_node_home_path(tmp, TF_NODE_HOME_STORE, store_dir, sizeof store_dir) != 0)
        rc = -ENAMETOOLONG;
    else if ((rc = sync_dir(store_dir)) == -ENOENT)
        rc = 0; /* a backup without a store */
    if (rc != 0 || (rc = sync_dir(tmp)) != 0 || rename(tmp, home) != 0) {
        rc = rc != 0 ? rc : -errno;
        snprintf(why, why_cap, "cannot move the restored home to %s: %s", home, tf_strerror(rc));
        goto cleanup;
    }
    made = false;
    if ((rc = sync_dir(parent)) != 0)
        snprintf(why, why_cap, "cannot sync %s: %s", parent, tf_strerror(rc));
    struct stat sb;
    info->file_bytes = fstat(o.fd, &sb) == 0 ? (uint64_t)sb.st_size : 0;
cleanup:
    if (made)
        remove_restored(tmp);
    if (lock_fd >= 0)
        close(lock_fd);
    /* A signal that came meanwhile is delivered now. */
    if (blocked)
        sigprocmask(SIG_SETMASK, &old_mask, NULL);
    if (o.fd >= 0)
        close(o.fd);
    sodium_memzero(&o.st, sizeof o.st);
    sodium_free(key);
    sodium_free(o.plain);
    free(o.cipher);
    return rc;
}
