/* SPDX-License-Identifier: MIT */
/*
 * Replay driver for builds without libFuzzer: calls LLVMFuzzerTestOneInput on
 * every regular file of each directory (or on each file) named on the command
 * line, in name order.  Each input is copied into a buffer of exactly its size
 * so the sanitizers see reads past its end.  A property failure aborts; a
 * directory without inputs is an error, so a mistyped corpus path cannot pass
 * silently.
 *
 * usage: fuzz_<name> DIR|FILE...
 */
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "fuzz.h"

/* Reads the whole file into a malloc'ed buffer of exactly its size (at least
 * one byte is allocated so an empty input still has a valid pointer). */
static int read_file(const char *path, uint8_t **out, size_t *out_len)
{
    FILE *fp = fopen(path, "rb");
    if (fp == NULL)
        return -errno;
    size_t cap = 4096, len = 0;
    uint8_t *buf = malloc(cap);
    int rc = 0;
    if (buf == NULL) {
        rc = -ENOMEM;
        goto cleanup;
    }
    for (;;) {
        if (len == cap) {
            uint8_t *p = realloc(buf, cap * 2);
            if (p == NULL) {
                rc = -ENOMEM;
                goto cleanup;
            }
            buf = p;
            cap *= 2;
        }
        size_t n = fread(buf + len, 1, cap - len, fp);
        len += n;
        if (n == 0)
            break;
    }
    if (ferror(fp)) {
        rc = -EIO;
        goto cleanup;
    }
    /* Shrink to the exact size so ASan flags any read past the input. */
    uint8_t *exact = malloc(len ? len : 1);
    if (exact == NULL) {
        rc = -ENOMEM;
        goto cleanup;
    }
    if (len > 0)
        memcpy(exact, buf, len);
    *out = exact;
    *out_len = len;
cleanup:
    free(buf);
    fclose(fp);
    return rc;
}

static int run_file(const char *path)
{
    uint8_t *data = NULL;
    size_t len = 0;
    int rc = read_file(path, &data, &len);
    if (rc != 0) {
        fprintf(stderr, "replay: %s: %s\n", path, strerror(-rc));
        return rc;
    }
    (void)LLVMFuzzerTestOneInput(data, len);
    free(data);
    return 0;
}

static int skip_dots(const struct dirent *d)
{
    return d->d_name[0] != '.';
}

/* Runs every regular file of dir; returns the count or a negative error. */
static long run_dir(const char *dir)
{
    struct dirent **names;
    int n = scandir(dir, &names, skip_dots, alphasort);
    if (n < 0) {
        fprintf(stderr, "replay: %s: %s\n", dir, strerror(errno));
        return -1;
    }
    long count = 0;
    int rc = 0;
    for (int i = 0; i < n; i++) {
        size_t plen = strlen(dir) + 1 + strlen(names[i]->d_name) + 1;
        char *path = malloc(plen);
        struct stat st;
        if (path == NULL) {
            rc = -1;
        } else {
            snprintf(path, plen, "%s/%s", dir, names[i]->d_name);
            if (stat(path, &st) == 0 && S_ISREG(st.st_mode) && rc == 0) {
                if (run_file(path) != 0)
                    rc = -1;
                else
                    count++;
            }
        }
        free(path);
        free(names[i]);
    }
    free(names);
    return rc == 0 ? count : rc;
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: %s DIR|FILE...\n", argv[0]);
        return 2;
    }
    long total = 0;
    for (int i = 1; i < argc; i++) {
        struct stat st;
        if (stat(argv[i], &st) != 0) {
            fprintf(stderr, "replay: %s: %s\n", argv[i], strerror(errno));
            return 1;
        }
        if (S_ISDIR(st.st_mode)) {
            long n = run_dir(argv[i]);
            if (n < 0)
                return 1;
            if (n == 0) {
                fprintf(stderr, "replay: %s: no inputs\n", argv[i]);
                return 1;
            }
            total += n;
        } else {
            if (run_file(argv[i]) != 0)
                return 1;
            total++;
        }
    }
    printf("replay: %ld inputs OK\n", total);
    return 0;
}
