/* SPDX-License-Identifier: MIT */
/*
 * tf-plfs: a power-loss file system for tests (FUSE, libfuse3).
 *
 *   tf-plfs --backing DIR --ctl SOCKET [--seed N] [--quota BYTES] MOUNTPOINT
 *
 * Passes every operation through to the backing directory, except file data:
 * writes are kept in memory, per file and page-granular (4 KiB), until that
 * file is fsynced or fdatasynced (or written through a descriptor opened with
 * O_SYNC/O_DSYNC, which syncs the file before the write returns).  On command
 * it "loses power": everything not yet synced is discarded, optionally keeping
 * some of it (a torn last write, or any unsynced page at random), and from
 * then on every operation fails with EIO until the file system is unmounted.
 * Remounting a new tf-plfs on the same backing directory is "power back on".
 *
 * What it models (see also docs/RELIABILITY.md):
 * - File data and file size are volatile until the file is synced.  A
 *   truncate is volatile too (the synced size comes back after a cut).
 *   Unsynced data belongs to the inode, not the name: a file written, renamed
 *   over another and never synced comes back with its synced contents (the
 *   classic "rename without fsync" loss).
 * - Namespace operations (create, mkdir, rename, unlink, link, symlink,
 *   mknod, chmod, chown, utimens) are durable at once, as on a file system
 *   that journals metadata synchronously.  Directory fsync therefore has
 *   nothing to make durable; it is counted and can fail on command.  This is
 *   weaker than POSIX allows (a create not followed by a directory fsync may
 *   vanish): the shim does not test that.
 * - A failed fsync (injected EIO) behaves like Linux after "fsyncgate": the
 *   file's dirty pages stay readable but will never reach the disk (a later
 *   fsync succeeds without writing them), unless written again.
 * - A quota (bytes of file data: the backing files' sizes plus unsynced
 *   growth) makes writes and truncates that would exceed it fail with
 *   ENOSPC; statfs reports the quota's free space.
 * Not modelled: sector-granular tearing inside a page, reordering within the
 * backing file system (it is never itself power-cut), extended attributes,
 * fallocate (EOPNOTSUPP), and POSIX locks (the kernel keeps them locally).
 *
 * The kernel must not cache writes behind our back, so the mount has no
 * writeback cache (every write(2) reaches this process before it returns)
 * and no direct_io (shared mmap, which LMDB uses for reads and for its lock
 * file, needs the page cache); attribute and entry timeouts are 0 so that the
 * size the kernel believes is always ours.  After a cut, the kernel's page
 * cache may still hold discarded data: only unmounting and mounting again
 * (which the tests do) starts from what survived.
 *
 * Control: a Unix stream socket, one command per line, one reply line
 * ("ok ..." or "err ...") each:
 *   ping                       ok
 *   stats                      ok writes=N fsyncs=N syncwrites=N dirsyncs=N
 *                              dirty_pages=N cuts=N dead=0|1 used=N quota=N
 *   cut [MODE]                 power loss now; MODE: all (default: drop every
 *                              unsynced page), tear (keep a random subset of
 *                              the last unsynced write's pages), any P (keep
 *                              each unsynced page with probability P percent)
 *   arm cut-before|cut-after EVENT NAME N [MODE]
 *                              cut just before (the event then fails with
 *                              EIO) or just after (it succeeds) the Nth next
 *                              EVENT on a file whose base name is NAME ("*":
 *                              any); EVENT: fsync (fsync/fdatasync of a
 *                              file), syncwrite (a write through an O_SYNC or
 *                              O_DSYNC descriptor), write (any write)
 *   arm eio EVENT NAME N [COUNT]
 *                              the Nth next matching EVENT and the COUNT-1
 *                              after it (default 1) fail with EIO (only
 *                              fsync and syncwrite)
 *   disarm                     ok
 *   quota BYTES                0: none
 *   sync                       write every unsynced page (a checkpoint)
 * The random choices of cuts come from --seed (default 1).
 */
#define FUSE_USE_VERSION 31
#define _GNU_SOURCE

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <fuse.h>
#include <inttypes.h>
#include <limits.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/un.h>
#include <unistd.h>

#define PAGE 4096u

struct page {
    uint64_t idx;
    bool doomed; /* an fsync of it failed: never written back (fsyncgate) */
    uint8_t *data;
};

/* One backing inode with unsynced state or open handles. */
struct pfile {
    dev_t dev;
    ino_t ino;
    int fd;    /* O_RDWR on the backing inode, for as long as we track it */
    int opens; /* handles open on it */
    char name[NAME_MAX + 1];
    uint64_t size;        /* what readers see */
    uint64_t synced_size; /* what the backing file holds */
    uint64_t floor;       /* backing bytes at or past this read as zeros (an
                             unsynced shrink); UINT64_MAX: none */
    struct page *pages;   /* unsynced pages, sorted by idx */
    size_t n, cap;
    struct pfile *next;
};

struct handle {
    struct pfile *pf;
    bool sync_writes; /* opened with O_SYNC or O_DSYNC */
};

enum event { EV_FSYNC, EV_SYNCWRITE, EV_WRITE };
enum action { ACT_NONE, ACT_CUT_BEFORE, ACT_CUT_AFTER, ACT_EIO };
enum cut_mode { CUT_ALL, CUT_TEAR, CUT_ANY };

struct arm {
    enum action action;
    enum event event;
    char name[NAME_MAX + 1];
    uint64_t countdown; /* matching events before it fires */
    uint64_t eio_left;  /* ACT_EIO: failures still to give once fired */
    enum cut_mode mode;
    unsigned percent;
};

static struct {
    pthread_mutex_t mu;
    int bfd; /* the backing directory */
    char ctl_path[sizeof(((struct sockaddr_un *)0)->sun_path)];
    int ctl_fd;
    pthread_t ctl_thread;
    bool ctl_started;
    struct pfile *files;
    /* The last write's pages, for a torn cut. */
    struct pfile *last_pf;
    uint64_t last_first, last_end; /* pages [first, end) */
    bool dead;
    uint64_t rng;
    uint64_t quota;
    struct arm arm;
    uint64_t writes, fsyncs, syncwrites, dirsyncs, cuts;
} g = {.mu = PTHREAD_MUTEX_INITIALIZER, .bfd = -1, .ctl_fd = -1, .rng = 1};

static void say(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void say(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fputs("tf-plfs: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
}

static uint64_t rnd(void)
{
    /* xorshift64*: reproducible from --seed, good enough to pick pages. */
    g.rng ^= g.rng >> 12;
    g.rng ^= g.rng << 25;
    g.rng ^= g.rng >> 27;
    return g.rng * 2685821657736338717ull;
}

/* "/a/b" -> "a/b"; "/" -> "." (for the *at calls on the backing dir). */
static const char *rel(const char *path)
{
    while (*path == '/')
        path++;
    return *path != '\0' ? path : ".";
}

static const char *base_name(const char *path)
{
    const char *s = strrchr(path, '/');
    return s != NULL ? s + 1 : path;
}

/* Pages -------------------------------------------------------------- */

static size_t page_pos(const struct pfile *pf, uint64_t idx, bool *found)
{
    size_t lo = 0, hi = pf->n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (pf->pages[mid].idx < idx)
            lo = mid + 1;
        else
            hi = mid;
    }
    *found = lo < pf->n && pf->pages[lo].idx == idx;
    return lo;
}

static struct page *page_find(struct pfile *pf, uint64_t idx)
{
    bool found;
    size_t i = page_pos(pf, idx, &found);
    return found ? &pf->pages[i] : NULL;
}

/* The bytes the disk holds for page idx: backing data below floor, zeros
 * past it and past the end of the backing file. */
static int base_read(const struct pfile *pf, uint64_t idx, uint8_t *out)
{
    memset(out, 0, PAGE);
    uint64_t off = idx * PAGE;
    if (off >= pf->floor || off >= pf->synced_size)
        return 0;
    size_t want = PAGE;
    if (pf->floor - off < want)
        want = (size_t)(pf->floor - off);
    ssize_t r = pread(pf->fd, out, want, (off_t)off);
    if (r < 0)
        return -errno;
    return 0;
}

/* The page idx in memory, loaded from the disk if it was not there. */
static int page_get(struct pfile *pf, uint64_t idx, struct page **out)
{
    bool found;
    size_t i = page_pos(pf, idx, &found);
    if (found) {
        *out = &pf->pages[i];
        return 0;
    }
    if (pf->n == pf->cap) {
        size_t cap = pf->cap == 0 ? 16 : pf->cap * 2;
        struct page *p = realloc(pf->pages, cap * sizeof *p);
        if (p == NULL)
            return -ENOMEM;
        pf->pages = p;
        pf->cap = cap;
    }
    uint8_t *data = malloc(PAGE);
    if (data == NULL)
        return -ENOMEM;
    int rc = base_read(pf, idx, data);
    if (rc != 0) {
        free(data);
        return rc;
    }
    memmove(&pf->pages[i + 1], &pf->pages[i], (pf->n - i) * sizeof *pf->pages);
    pf->pages[i] = (struct page){.idx = idx, .doomed = false, .data = data};
    pf->n++;
    *out = &pf->pages[i];
    return 0;
}

static void page_drop_at(struct pfile *pf, size_t i)
{
    free(pf->pages[i].data);
    memmove(&pf->pages[i], &pf->pages[i + 1], (pf->n - i - 1) * sizeof *pf->pages);
    pf->n--;
}

/* Files -------------------------------------------------------------- */

static bool pfile_idle(const struct pfile *pf)
{
    return pf->opens == 0 && pf->n == 0 && pf->size == pf->synced_size && pf->floor == UINT64_MAX;
}

static void pfile_unlink(struct pfile *pf)
{
    for (struct pfile **pp = &g.files; *pp != NULL; pp = &(*pp)->next) {
        if (*pp == pf) {
            *pp = pf->next;
            break;
        }
    }
    if (g.last_pf == pf)
        g.last_pf = NULL;
    for (size_t i = 0; i < pf->n; i++)
        free(pf->pages[i].data);
    free(pf->pages);
    if (pf->fd >= 0)
        close(pf->fd);
    free(pf);
}

static void pfile_maybe_free(struct pfile *pf)
{
    if (pfile_idle(pf))
        pfile_unlink(pf);
}

static struct pfile *pfile_lookup(dev_t dev, ino_t ino)
{
    for (struct pfile *pf = g.files; pf != NULL; pf = pf->next)
        if (pf->dev == dev && pf->ino == ino)
            return pf;
    return NULL;
}

/* The tracked file for the regular file at path (relative), created with
 * its own backing descriptor if needed. */
static int pfile_for_path(const char *path, struct pfile **out)
{
    struct stat sb;
    if (fstatat(g.bfd, rel(path), &sb, AT_SYMLINK_NOFOLLOW) != 0)
        return -errno;
    if (!S_ISREG(sb.st_mode))
        return -EINVAL;
    struct pfile *pf = pfile_lookup(sb.st_dev, sb.st_ino);
    if (pf != NULL) {
        *out = pf;
        return 0;
    }
    if ((pf = calloc(1, sizeof *pf)) == NULL)
        return -ENOMEM;
    pf->fd = openat(g.bfd, rel(path), O_RDWR | O_CLOEXEC | O_NOFOLLOW);
    if (pf->fd < 0) {
        int rc = -errno;
        free(pf);
        return rc;
    }
    pf->dev = sb.st_dev;
    pf->ino = sb.st_ino;
    pf->size = pf->synced_size = (uint64_t)sb.st_size;
    pf->floor = UINT64_MAX;
    snprintf(pf->name, sizeof pf->name, "%s", base_name(path));
    pf->next = g.files;
    g.files = pf;
    *out = pf;
    return 0;
}

/* The bytes of the regular files under the directory fd (taken), as the
 * backing disk holds them. */
static uint64_t tree_bytes(int fd, int depth)
{
    DIR *d = fdopendir(fd);
    uint64_t sum = 0;
    if (d == NULL) {
        close(fd);
        return 0;
    }
    rewinddir(d); /* a dup of g.bfd shares its offset, left at the end last time */
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        struct stat sb;
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0 ||
            fstatat(dirfd(d), e->d_name, &sb, AT_SYMLINK_NOFOLLOW) != 0)
            continue;
        if (S_ISREG(sb.st_mode)) {
            sum += (uint64_t)sb.st_size;
        } else if (S_ISDIR(sb.st_mode) && depth < 16) {
            int sub = openat(dirfd(d), e->d_name, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
            if (sub >= 0)
                sum += tree_bytes(sub, depth + 1);
        }
    }
    closedir(d);
    return sum;
}

/* Bytes of file data in this file system if everything were synced: what
 * the quota counts (apparent sizes, not blocks, so that the figure does not
 * depend on the backing file system). */
static uint64_t used_bytes(void)
{
    int fd = dup(g.bfd);
    uint64_t used = fd >= 0 ? tree_bytes(fd, 0) : 0;
    for (struct pfile *pf = g.files; pf != NULL; pf = pf->next)
        if (pf->size > pf->synced_size)
            used += pf->size - pf->synced_size;
    return used;
}

/* ENOSPC if growing some file by `grow` bytes would pass the quota. */
static int quota_check(uint64_t grow)
{
    if (g.quota == 0 || grow == 0)
        return 0;
    return used_bytes() + grow > g.quota ? -ENOSPC : 0;
}

/* Writes the file's unsynced state to the backing file: its size (zeroing
 * what an unsynced shrink cut off) and every page not doomed.  Doomed pages
 * stay in memory (readable, never written back). */
static int pfile_sync(struct pfile *pf)
{
    if (pf->floor < pf->synced_size && ftruncate(pf->fd, (off_t)pf->floor) != 0)
        return -errno;
    if (pf->size != pf->synced_size || pf->floor != UINT64_MAX) {
        if (ftruncate(pf->fd, (off_t)pf->size) != 0)
            return -errno;
    }
    pf->synced_size = pf->size;
    pf->floor = UINT64_MAX;
    size_t keep = 0;
    for (size_t i = 0; i < pf->n; i++) {
        struct page *p = &pf->pages[i];
        uint64_t off = p->idx * PAGE;
        if (!p->doomed && off < pf->size) {
            size_t len = pf->size - off < PAGE ? (size_t)(pf->size - off) : PAGE;
            if (pwrite(pf->fd, p->data, len, (off_t)off) != (ssize_t)len)
                return errno != 0 ? -errno : -EIO;
        }
        if (p->doomed && off < pf->size)
            pf->pages[keep++] = *p;
        else
            free(p->data);
    }
    pf->n = keep;
    if (g.last_pf == pf)
        g.last_pf = NULL;
    return 0;
}

/* Power loss ------------------------------------------------------------ */

/* Makes one unsynced page durable (a cut that keeps it). */
static void persist_page(struct pfile *pf, const struct page *p)
{
    uint64_t off = p->idx * PAGE;
    if (p->doomed || off >= pf->size)
        return;
    size_t len = pf->size - off < PAGE ? (size_t)(pf->size - off) : PAGE;
    if (pwrite(pf->fd, p->data, len, (off_t)off) != (ssize_t)len)
        say("cut: cannot persist a page of %s: %s", pf->name, strerror(errno));
}

/* Power goes out: drops every unsynced page (keeping some as `mode` says)
 * and every unsynced size change; the file system is dead from now on. */
static void cut(enum cut_mode mode, unsigned percent, uint64_t *dropped, uint64_t *kept)
{
    *dropped = *kept = 0;
    /* A torn write: each of its pages survives or not, but never all of a
     * write of several pages (`lost` is one that does not). */
    uint64_t n_last = g.last_pf != NULL ? g.last_end - g.last_first : 0;
    uint64_t lost = n_last > 1 ? g.last_first + rnd() % n_last : UINT64_MAX;
    for (struct pfile *pf = g.files; pf != NULL; pf = pf->next) {
        for (size_t i = 0; i < pf->n; i++) {
            const struct page *p = &pf->pages[i];
            bool keep = false;
            if (mode == CUT_ANY)
                keep = rnd() % 100 < percent;
            else if (mode == CUT_TEAR && pf == g.last_pf && p->idx >= g.last_first &&
                     p->idx < g.last_end)
                keep = p->idx != lost && rnd() % 2 == 0;
            if (keep) {
                persist_page(pf, p);
                (*kept)++;
            } else {
                (*dropped)++;
            }
            free(pf->pages[i].data);
        }
        pf->n = 0;
        pf->size = pf->synced_size;
        pf->floor = UINT64_MAX;
    }
    g.last_pf = NULL;
    g.dead = true;
    g.cuts++;
    say("power cut: %" PRIu64 " unsynced pages dropped, %" PRIu64 " kept", *dropped, *kept);
}

/* Counts an event on pf and runs what is armed for it.  Returns -EIO if the
 * event must fail (before it happens); *cut_after is set if power must go
 * right after it succeeds. */
static int event(enum event ev, const struct pfile *pf, bool *cut_after)
{
    *cut_after = false;
    struct arm *a = &g.arm;
    if (a->action == ACT_NONE || a->event != ev ||
        (strcmp(a->name, "*") != 0 && strcmp(a->name, pf->name) != 0))
        return 0;
    if (a->countdown > 1) {
        a->countdown--;
        return 0;
    }
    uint64_t dropped, kept;
    switch (a->action) {
    case ACT_NONE:
        return 0;
    case ACT_CUT_BEFORE:
        a->action = ACT_NONE;
        say("armed cut before %s of %s", ev == EV_FSYNC ? "fsync" : "write", pf->name);
        cut(a->mode, a->percent, &dropped, &kept);
        return -EIO;
    case ACT_CUT_AFTER:
        a->action = ACT_NONE;
        *cut_after = true;
        return 0;
    case ACT_EIO:
        a->countdown = 1;
        if (--a->eio_left == 0)
            a->action = ACT_NONE;
        say("injected EIO on %s of %s", ev == EV_FSYNC ? "fsync" : "write", pf->name);
        return -EIO;
    }
    return 0;
}

static void cut_now(const struct arm *a, const struct pfile *pf)
{
    uint64_t dropped, kept;
    say("armed cut after an event on %s", pf->name);
    cut(a->mode, a->percent, &dropped, &kept);
}

/* FUSE operations -------------------------------------------------------- */

#define LOCKED_BEGIN                                                                               \
    pthread_mutex_lock(&g.mu);                                                                     \
    int rc;                                                                                        \
    if (g.dead) {                                                                                  \
        rc = -EIO;                                                                                 \
        goto out;                                                                                  \
    }
#define LOCKED_END                                                                                 \
    out:                                                                                           \
    pthread_mutex_unlock(&g.mu);                                                                   \
    return rc

static int op_getattr(const char *path, struct stat *st, struct fuse_file_info *fi)
{
    LOCKED_BEGIN;
    struct handle *h = fi != NULL ? (struct handle *)(uintptr_t)fi->fh : NULL;
    if (h != NULL)
        rc = fstat(h->pf->fd, st) == 0 ? 0 : -errno;
    else
        rc = fstatat(g.bfd, rel(path), st, AT_SYMLINK_NOFOLLOW) == 0 ? 0 : -errno;
    if (rc == 0 && S_ISREG(st->st_mode)) {
        struct pfile *pf = pfile_lookup(st->st_dev, st->st_ino);
        if (pf != NULL) {
            st->st_size = (off_t)pf->size;
            st->st_blocks = (blkcnt_t)((pf->size + 511) / 512);
        }
    }
    LOCKED_END;
}

static int op_readlink(const char *path, char *buf, size_t size)
{
    LOCKED_BEGIN;
    ssize_t n = readlinkat(g.bfd, rel(path), buf, size - 1);
    rc = n < 0 ? -errno : 0;
    if (n >= 0)
        buf[n] = '\0';
    LOCKED_END;
}

static int op_mknod(const char *path, mode_t mode, dev_t rdev)
{
    LOCKED_BEGIN;
    rc = mknodat(g.bfd, rel(path), mode, rdev) == 0 ? 0 : -errno;
    LOCKED_END;
}

static int op_mkdir(const char *path, mode_t mode)
{
    LOCKED_BEGIN;
    rc = mkdirat(g.bfd, rel(path), mode) == 0 ? 0 : -errno;
    LOCKED_END;
}

/* Before a name goes away (unlink, rename over it): if it was the last link
 * of a tracked file, the file's unsynced state dies with it once closed. */
static void forget_name(const char *path)
{
    struct stat sb;
    if (fstatat(g.bfd, rel(path), &sb, AT_SYMLINK_NOFOLLOW) != 0 || !S_ISREG(sb.st_mode) ||
        sb.st_nlink != 1)
        return;
    struct pfile *pf = pfile_lookup(sb.st_dev, sb.st_ino);
    if (pf == NULL)
        return;
    for (size_t i = pf->n; i > 0; i--)
        page_drop_at(pf, i - 1);
    pf->size = pf->synced_size;
    pf->floor = UINT64_MAX;
    if (g.last_pf == pf)
        g.last_pf = NULL;
    pfile_maybe_free(pf);
}

static int op_unlink(const char *path)
{
    LOCKED_BEGIN;
    forget_name(path);
    rc = unlinkat(g.bfd, rel(path), 0) == 0 ? 0 : -errno;
    LOCKED_END;
}

static int op_rmdir(const char *path)
{
    LOCKED_BEGIN;
    rc = unlinkat(g.bfd, rel(path), AT_REMOVEDIR) == 0 ? 0 : -errno;
    LOCKED_END;
}

static int op_symlink(const char *target, const char *path)
{
    LOCKED_BEGIN;
    rc = symlinkat(target, g.bfd, rel(path)) == 0 ? 0 : -errno;
    LOCKED_END;
}

static int op_rename(const char *from, const char *to, unsigned int flags)
{
    LOCKED_BEGIN;
    if (flags != 0) {
        rc = -EINVAL;
        goto out;
    }
    forget_name(to);
    rc = renameat(g.bfd, rel(from), g.bfd, rel(to)) == 0 ? 0 : -errno;
    LOCKED_END;
}

static int op_link(const char *from, const char *to)
{
    LOCKED_BEGIN;
    rc = linkat(g.bfd, rel(from), g.bfd, rel(to), 0) == 0 ? 0 : -errno;
    LOCKED_END;
}

static int op_chmod(const char *path, mode_t mode, struct fuse_file_info *fi)
{
    LOCKED_BEGIN;
    struct handle *h = fi != NULL ? (struct handle *)(uintptr_t)fi->fh : NULL;
    if (h != NULL)
        rc = fchmod(h->pf->fd, mode) == 0 ? 0 : -errno;
    else
        rc = fchmodat(g.bfd, rel(path), mode, 0) == 0 ? 0 : -errno;
    LOCKED_END;
}

static int op_chown(const char *path, uid_t uid, gid_t gid, struct fuse_file_info *fi)
{
    LOCKED_BEGIN;
    struct handle *h = fi != NULL ? (struct handle *)(uintptr_t)fi->fh : NULL;
    if (h != NULL)
        rc = fchown(h->pf->fd, uid, gid) == 0 ? 0 : -errno;
    else
        rc = fchownat(g.bfd, rel(path), uid, gid, AT_SYMLINK_NOFOLLOW) == 0 ? 0 : -errno;
    LOCKED_END;
}

/* An unsynced size change. */
static int resize(struct pfile *pf, uint64_t size)
{
    if (size > pf->size) {
        int rc = quota_check(size - pf->size);
        if (rc != 0)
            return rc;
    }
    if (size < pf->size) {
        /* Drop whole pages past the end; zero the tail of the last one. */
        for (size_t i = pf->n; i > 0; i--) {
            struct page *p = &pf->pages[i - 1];
            if (p->idx * PAGE >= size)
                page_drop_at(pf, i - 1);
        }
        if (size % PAGE != 0) {
            struct page *p;
            int rc = page_get(pf, size / PAGE, &p);
            if (rc != 0)
                return rc;
            memset(p->data + size % PAGE, 0, PAGE - size % PAGE);
        }
        if (size < pf->floor)
            pf->floor = size;
    }
    pf->size = size;
    return 0;
}

static int op_truncate(const char *path, off_t size, struct fuse_file_info *fi)
{
    LOCKED_BEGIN;
    struct handle *h = fi != NULL ? (struct handle *)(uintptr_t)fi->fh : NULL;
    struct pfile *pf = h != NULL ? h->pf : NULL;
    if (size < 0) {
        rc = -EINVAL;
        goto out;
    }
    if (pf == NULL && (rc = pfile_for_path(path, &pf)) != 0)
        goto out;
    rc = resize(pf, (uint64_t)size);
    pfile_maybe_free(pf);
    LOCKED_END;
}

static int op_utimens(const char *path, const struct timespec tv[2], struct fuse_file_info *fi)
{
    LOCKED_BEGIN;
    struct handle *h = fi != NULL ? (struct handle *)(uintptr_t)fi->fh : NULL;
    if (h != NULL)
        rc = futimens(h->pf->fd, tv) == 0 ? 0 : -errno;
    else
        rc = utimensat(g.bfd, rel(path), tv, AT_SYMLINK_NOFOLLOW) == 0 ? 0 : -errno;
    LOCKED_END;
}

/* Opens path (created first if `create`) and gives fi a handle. */
static int do_open(const char *path, struct fuse_file_info *fi, bool create, mode_t mode)
{
    struct pfile *pf;
    int rc;
    if (create) {
        int fd = openat(g.bfd, rel(path),
                        O_WRONLY | O_CREAT | O_CLOEXEC | O_NOFOLLOW | (fi->flags & O_EXCL), mode);
        if (fd < 0)
            return -errno;
        close(fd);
    }
    if ((rc = pfile_for_path(path, &pf)) != 0)
        return rc;
    struct handle *h = calloc(1, sizeof *h);
    if (h == NULL) {
        pfile_maybe_free(pf);
        return -ENOMEM;
    }
    h->pf = pf;
    h->sync_writes = (fi->flags & (O_SYNC | O_DSYNC)) != 0;
    pf->opens++;
    if ((fi->flags & O_TRUNC) && (fi->flags & O_ACCMODE) != O_RDONLY)
        (void)resize(pf, 0);
    fi->fh = (uint64_t)(uintptr_t)h;
    /* Page cache on (no direct_io: mmap needs it), but dropped at each open
     * so that nothing the kernel kept outlives what we hold. */
    fi->direct_io = 0;
    fi->keep_cache = 0;
    return 0;
}

static int op_open(const char *path, struct fuse_file_info *fi)
{
    LOCKED_BEGIN;
    rc = do_open(path, fi, false, 0);
    LOCKED_END;
}

static int op_create(const char *path, mode_t mode, struct fuse_file_info *fi)
{
    LOCKED_BEGIN;
    rc = do_open(path, fi, true, mode);
    LOCKED_END;
}

static int op_read(const char *path, char *buf, size_t size, off_t off_, struct fuse_file_info *fi)
{
    (void)path;
    LOCKED_BEGIN;
    struct pfile *pf = ((struct handle *)(uintptr_t)fi->fh)->pf;
    uint64_t off = (uint64_t)off_;
    if (off >= pf->size) {
        rc = 0;
        goto out;
    }
    if (size > pf->size - off)
        size = (size_t)(pf->size - off);
    uint8_t tmp[PAGE];
    size_t done = 0;
    while (done < size) {
        uint64_t pos = off + done;
        uint64_t idx = pos / PAGE;
        size_t in = (size_t)(pos % PAGE);
        size_t n = PAGE - in < size - done ? PAGE - in : size - done;
        const struct page *p = page_find(pf, idx);
        if (p == NULL) {
            if ((rc = base_read(pf, idx, tmp)) != 0)
                goto out;
            memcpy(buf + done, tmp + in, n);
        } else {
            memcpy(buf + done, p->data + in, n);
        }
        done += n;
    }
    rc = (int)done;
    LOCKED_END;
}

static int op_write(const char *path, const char *buf, size_t size, off_t off_,
                    struct fuse_file_info *fi)
{
    (void)path;
    LOCKED_BEGIN;
    struct handle *h = (struct handle *)(uintptr_t)fi->fh;
    struct pfile *pf = h->pf;
    uint64_t off = (uint64_t)off_;
    bool after = false, sync_after = false;
    if (size == 0) {
        rc = 0;
        goto out;
    }
    if (off + size > pf->size && (rc = quota_check(off + size - pf->size)) != 0)
        goto out;
    if ((rc = event(EV_WRITE, pf, &after)) != 0)
        goto out;
    if (h->sync_writes && (rc = event(EV_SYNCWRITE, pf, &sync_after)) != 0)
        goto out;
    size_t done = 0;
    while (done < size) {
        uint64_t pos = off + done;
        size_t in = (size_t)(pos % PAGE);
        size_t n = PAGE - in < size - done ? PAGE - in : size - done;
        struct page *p;
        if ((rc = page_get(pf, pos / PAGE, &p)) != 0)
            goto out;
        memcpy(p->data + in, buf + done, n);
        p->doomed = false;
        done += n;
    }
    if (off + size > pf->size)
        pf->size = off + size;
    g.writes++;
    g.last_pf = pf;
    g.last_first = off / PAGE;
    g.last_end = (off + size + PAGE - 1) / PAGE;
    if (h->sync_writes) {
        g.syncwrites++;
        if ((rc = pfile_sync(pf)) != 0)
            goto out;
    }
    rc = (int)size;
    if (after || sync_after)
        cut_now(&g.arm, pf);
    LOCKED_END;
}

static int op_statfs(const char *path, struct statvfs *sv)
{
    (void)path;
    LOCKED_BEGIN;
    rc = fstatvfs(g.bfd, sv) == 0 ? 0 : -errno;
    if (rc == 0 && g.quota != 0 && sv->f_frsize > 0) {
        uint64_t used = used_bytes();
        uint64_t free_b = used < g.quota ? g.quota - used : 0;
        sv->f_blocks = (fsblkcnt_t)(g.quota / sv->f_frsize);
        sv->f_bfree = sv->f_bavail = (fsblkcnt_t)(free_b / sv->f_frsize);
    }
    LOCKED_END;
}

static int op_release(const char *path, struct fuse_file_info *fi)
{
    (void)path;
    pthread_mutex_lock(&g.mu);
    struct handle *h = (struct handle *)(uintptr_t)fi->fh;
    h->pf->opens--;
    pfile_maybe_free(h->pf);
    free(h);
    pthread_mutex_unlock(&g.mu);
    return 0;
}

static int op_fsync(const char *path, int datasync, struct fuse_file_info *fi)
{
    (void)path;
    (void)datasync; /* fdatasync also writes the size: what later reads need */
    LOCKED_BEGIN;
    struct pfile *pf = ((struct handle *)(uintptr_t)fi->fh)->pf;
    bool after = false;
    g.fsyncs++;
    if ((rc = event(EV_FSYNC, pf, &after)) != 0) {
        if (!g.dead) {
            /* fsyncgate: what this fsync should have written never will. */
            for (size_t i = 0; i < pf->n; i++)
                pf->pages[i].doomed = true;
        }
        goto out;
    }
    rc = pfile_sync(pf);
    if (after)
        cut_now(&g.arm, pf);
    LOCKED_END;
}

static int op_opendir(const char *path, struct fuse_file_info *fi)
{
    LOCKED_BEGIN;
    int fd = openat(g.bfd, rel(path), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    DIR *d = fd >= 0 ? fdopendir(fd) : NULL;
    if (d == NULL) {
        rc = -errno;
        if (fd >= 0)
            close(fd);
        goto out;
    }
    fi->fh = (uint64_t)(uintptr_t)d;
    rc = 0;
    LOCKED_END;
}

static int op_readdir(const char *path, void *buf, fuse_fill_dir_t fill, off_t off,
                      struct fuse_file_info *fi, enum fuse_readdir_flags flags)
{
    (void)path;
    (void)off;
    (void)flags;
    LOCKED_BEGIN;
    DIR *d = (DIR *)(uintptr_t)fi->fh;
    rewinddir(d);
    struct dirent *e;
    rc = 0;
    while ((e = readdir(d)) != NULL) {
        struct stat st;
        memset(&st, 0, sizeof st);
        st.st_ino = e->d_ino;
        st.st_mode = (mode_t)(DTTOIF(e->d_type));
        if (fill(buf, e->d_name, &st, 0, 0) != 0)
            break;
    }
    LOCKED_END;
}

static int op_releasedir(const char *path, struct fuse_file_info *fi)
{
    (void)path;
    closedir((DIR *)(uintptr_t)fi->fh);
    return 0;
}

static int op_fsyncdir(const char *path, int datasync, struct fuse_file_info *fi)
{
    (void)path;
    (void)datasync;
    (void)fi;
    LOCKED_BEGIN;
    g.dirsyncs++; /* namespace operations are already durable */
    rc = 0;
    LOCKED_END;
}

static int op_access(const char *path, int mask)
{
    LOCKED_BEGIN;
    rc = faccessat(g.bfd, rel(path), mask, 0) == 0 ? 0 : -errno;
    LOCKED_END;
}

static void *control_main(void *arg);

static void *op_init(struct fuse_conn_info *conn, struct fuse_config *cfg)
{
    conn->want &= ~(unsigned)FUSE_CAP_WRITEBACK_CACHE;
    cfg->use_ino = 1;
    cfg->hard_remove = 1;
    cfg->nullpath_ok = 1;
    cfg->direct_io = 0;
    cfg->kernel_cache = 0;
    cfg->auto_cache = 0;
    cfg->entry_timeout = 0;
    cfg->attr_timeout = 0;
    cfg->negative_timeout = 0;
    if (pthread_create(&g.ctl_thread, NULL, control_main, NULL) == 0)
        g.ctl_started = true;
    else
        say("cannot start the control thread");
    return NULL;
}

static const struct fuse_operations ops = {
    .getattr = op_getattr,
    .readlink = op_readlink,
    .mknod = op_mknod,
    .mkdir = op_mkdir,
    .unlink = op_unlink,
    .rmdir = op_rmdir,
    .symlink = op_symlink,
    .rename = op_rename,
    .link = op_link,
    .chmod = op_chmod,
    .chown = op_chown,
    .truncate = op_truncate,
    .open = op_open,
    .read = op_read,
    .write = op_write,
    .statfs = op_statfs,
    .release = op_release,
    .fsync = op_fsync,
    .opendir = op_opendir,
    .readdir = op_readdir,
    .releasedir = op_releasedir,
    .fsyncdir = op_fsyncdir,
    .init = op_init,
    .access = op_access,
    .create = op_create,
    .utimens = op_utimens,
};

/* Control ---------------------------------------------------------------- */

static bool parse_u64(const char *s, uint64_t *out)
{
    char *end;
    if (s == NULL || *s == '\0' || *s == '-')
        return false;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno != 0 || *end != '\0')
        return false;
    *out = v;
    return true;
}

/* Parses "[all | tear | any P]" from words[i..]. */
static bool parse_mode(char **w, size_t n, size_t i, enum cut_mode *mode, unsigned *percent)
{
    uint64_t p = 0;
    *mode = CUT_ALL;
    *percent = 0;
    if (i == n || strcmp(w[i], "all") == 0)
        return i + (i < n) == n;
    if (strcmp(w[i], "tear") == 0) {
        *mode = CUT_TEAR;
        return i + 1 == n;
    }
    if (strcmp(w[i], "any") == 0 && i + 2 == n && parse_u64(w[i + 1], &p) && p <= 100) {
        *mode = CUT_ANY;
        *percent = (unsigned)p;
        return true;
    }
    return false;
}

static bool parse_event(const char *s, enum event *ev)
{
    if (strcmp(s, "fsync") == 0)
        *ev = EV_FSYNC;
    else if (strcmp(s, "syncwrite") == 0)
        *ev = EV_SYNCWRITE;
    else if (strcmp(s, "write") == 0)
        *ev = EV_WRITE;
    else
        return false;
    return true;
}

static uint64_t dirty_pages(void)
{
    uint64_t n = 0;
    for (struct pfile *pf = g.files; pf != NULL; pf = pf->next)
        n += pf->n;
    return n;
}

/* Runs one command line; the reply (without newline) in out. */
static void command(char *line, char *out, size_t cap)
{
    char *w[8];
    size_t n = 0;
    for (char *save = NULL, *t = strtok_r(line, " \t\r", &save); t != NULL && n < 8;
         t = strtok_r(NULL, " \t\r", &save))
        w[n++] = t;
    if (n == 0) {
        snprintf(out, cap, "err empty command");
        return;
    }
    pthread_mutex_lock(&g.mu);
    enum cut_mode mode;
    unsigned percent;
    uint64_t a, b;
    if (strcmp(w[0], "ping") == 0) {
        snprintf(out, cap, "ok");
    } else if (strcmp(w[0], "stats") == 0) {
        snprintf(out, cap,
                 "ok writes=%" PRIu64 " fsyncs=%" PRIu64 " syncwrites=%" PRIu64 " dirsyncs=%" PRIu64
                 " dirty_pages=%" PRIu64 " cuts=%" PRIu64 " dead=%d used=%" PRIu64
                 " quota=%" PRIu64,
                 g.writes, g.fsyncs, g.syncwrites, g.dirsyncs, dirty_pages(), g.cuts, g.dead,
                 used_bytes(), g.quota);
    } else if (strcmp(w[0], "cut") == 0 && parse_mode(w, n, 1, &mode, &percent)) {
        if (g.dead) {
            snprintf(out, cap, "err already dead");
        } else {
            cut(mode, percent, &a, &b);
            snprintf(out, cap, "ok dropped=%" PRIu64 " kept=%" PRIu64, a, b);
        }
    } else if (strcmp(w[0], "arm") == 0 && n >= 5 &&
               (strcmp(w[1], "cut-before") == 0 || strcmp(w[1], "cut-after") == 0) &&
               parse_event(w[2], &g.arm.event) && parse_u64(w[4], &a) && a > 0 &&
               strlen(w[3]) <= NAME_MAX && parse_mode(w, n, 5, &mode, &percent)) {
        g.arm.action = strcmp(w[1], "cut-before") == 0 ? ACT_CUT_BEFORE : ACT_CUT_AFTER;
        snprintf(g.arm.name, sizeof g.arm.name, "%s", w[3]);
        g.arm.countdown = a;
        g.arm.mode = mode;
        g.arm.percent = percent;
        snprintf(out, cap, "ok");
    } else if (strcmp(w[0], "arm") == 0 && (n == 5 || n == 6) && strcmp(w[1], "eio") == 0 &&
               parse_event(w[2], &g.arm.event) && g.arm.event != EV_WRITE && parse_u64(w[4], &a) &&
               a > 0 && strlen(w[3]) <= NAME_MAX && (n == 5 || (parse_u64(w[5], &b) && b > 0))) {
        g.arm.action = ACT_EIO;
        snprintf(g.arm.name, sizeof g.arm.name, "%s", w[3]);
        g.arm.countdown = a;
        g.arm.eio_left = n == 6 ? b : 1;
        snprintf(out, cap, "ok");
    } else if (strcmp(w[0], "disarm") == 0 && n == 1) {
        g.arm.action = ACT_NONE;
        snprintf(out, cap, "ok");
    } else if (strcmp(w[0], "quota") == 0 && n == 2 && parse_u64(w[1], &a)) {
        g.quota = a;
        snprintf(out, cap, "ok");
    } else if (strcmp(w[0], "sync") == 0 && n == 1) {
        int rc = 0;
        for (struct pfile *pf = g.files; pf != NULL && rc == 0 && !g.dead; pf = pf->next)
            rc = pfile_sync(pf);
        snprintf(out, cap, rc == 0 ? "ok" : "err sync failed: %s", strerror(-rc));
    } else {
        snprintf(out, cap, "err bad command (see tests/powerloss/plfs.c)");
    }
    pthread_mutex_unlock(&g.mu);
}

static void serve(int c)
{
    char buf[512];
    size_t len = 0;
    for (;;) {
        ssize_t r = read(c, buf + len, sizeof buf - 1 - len);
        if (r <= 0)
            return;
        len += (size_t)r;
        char *nl;
        while ((nl = memchr(buf, '\n', len)) != NULL) {
            *nl = '\0';
            char reply[256];
            command(buf, reply, sizeof reply - 1);
            size_t rl = strlen(reply);
            reply[rl++] = '\n';
            if (write(c, reply, rl) != (ssize_t)rl)
                return;
            len -= (size_t)(nl + 1 - buf);
            memmove(buf, nl + 1, len);
        }
        if (len == sizeof buf - 1)
            return; /* a line too long */
    }
}

static void *control_main(void *arg)
{
    (void)arg;
    for (;;) {
        int c = accept(g.ctl_fd, NULL, NULL);
        if (c < 0) {
            if (errno == EINTR || errno == ECONNABORTED)
                continue;
            return NULL; /* the socket was shut down: we are exiting */
        }
        serve(c);
        close(c);
    }
}

static int control_listen(const char *path)
{
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    if (strlen(path) >= sizeof sa.sun_path) {
        say("control socket path too long: %s", path);
        return -1;
    }
    memcpy(sa.sun_path, path, strlen(path) + 1);
    snprintf(g.ctl_path, sizeof g.ctl_path, "%s", path);
    unlink(path);
    g.ctl_fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (g.ctl_fd < 0 || bind(g.ctl_fd, (struct sockaddr *)&sa, sizeof sa) != 0 ||
        listen(g.ctl_fd, 8) != 0) {
        say("control socket %s: %s", path, strerror(errno));
        return -1;
    }
    return 0;
}

static void usage(void)
{
    fprintf(stderr, "usage: tf-plfs --backing DIR --ctl SOCKET [--seed N] [--quota BYTES] "
                    "MOUNTPOINT\n");
}

int main(int argc, char **argv)
{
    const char *backing = NULL, *ctl = NULL, *mnt = NULL;
    for (int i = 1; i < argc; i++) {
        uint64_t v;
        if (strcmp(argv[i], "--backing") == 0 && i + 1 < argc)
            backing = argv[++i];
        else if (strcmp(argv[i], "--ctl") == 0 && i + 1 < argc)
            ctl = argv[++i];
        else if (strcmp(argv[i], "--seed") == 0 && i + 1 < argc && parse_u64(argv[i + 1], &v))
            g.rng = v == 0 ? 1 : v, i++;
        else if (strcmp(argv[i], "--quota") == 0 && i + 1 < argc && parse_u64(argv[i + 1], &v))
            g.quota = v, i++;
        else if (argv[i][0] != '-' && mnt == NULL)
            mnt = argv[i];
        else {
            usage();
            return 2;
        }
    }
    if (backing == NULL || ctl == NULL || mnt == NULL) {
        usage();
        return 2;
    }
    g.bfd = open(backing, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (g.bfd < 0) {
        say("backing directory %s: %s", backing, strerror(errno));
        return 1;
    }
    if (control_listen(ctl) != 0)
        return 1;
    /* Foreground, one thread (the control thread shares the one lock), and
     * the mount goes away if this process dies. */
    char *fargv[] = {argv[0], (char *)(uintptr_t)mnt,
                     "-f",    "-s",
                     "-o",    "auto_unmount,fsname=tf-plfs,subtype=tf-plfs",
                     NULL};
    int rc = fuse_main(6, fargv, &ops, NULL);
    /* The control thread may be serving a client: it is left to die with
     * the process, and the state it reads is freed under the lock. */
    pthread_mutex_lock(&g.mu);
    unlink(g.ctl_path);
    while (g.files != NULL)
        pfile_unlink(g.files);
    g.dead = true;
    pthread_mutex_unlock(&g.mu);
    return rc;
}
