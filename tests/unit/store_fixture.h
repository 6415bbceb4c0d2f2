/* SPDX-License-Identifier: MIT */
/*
 * A temporary directory for the unit tests of node/store: setup makes
 * /tmp/tf-<name>-XXXXXX (name: the test's STORE_FIXTURE_NAME) with the store
 * at <tmp>/store, not created yet; teardown closes the store and removes the
 * directory; reopen.  Include after fixtures.h.
 */
#ifndef TF_TESTS_UNIT_STORE_FIXTURE_H
#define TF_TESTS_UNIT_STORE_FIXTURE_H

#include <dirent.h>
#include <stdio.h>
#include <unistd.h>

#include "node/store.h"

#ifndef STORE_FIXTURE_NAME
#error "define STORE_FIXTURE_NAME (the temporary directory's name) first"
#endif

struct fixture {
    char tmp[64];
    char dir[128]; /* tmp/store, not created yet */
    struct tf_node_store *st;
};

static int setup(void **state)
{
    struct fixture *f = calloc(1, sizeof *f);
    if (f == NULL)
        return -1;
    snprintf(f->tmp, sizeof f->tmp, "/tmp/tf-%s-XXXXXX", STORE_FIXTURE_NAME);
    if (mkdtemp(f->tmp) == NULL) {
        free(f);
        return -1;
    }
    snprintf(f->dir, sizeof f->dir, "%s/store", f->tmp);
    *state = f;
    return 0;
}

/* Removes everything under path (the tests make at most one level of
 * directories below tmp). */
static void remove_tree(const char *path)
{
    DIR *d = opendir(path);
    struct dirent *e;
    if (d == NULL) {
        unlink(path);
        return;
    }
    while ((e = readdir(d)) != NULL) {
        char sub[1024];
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
            continue;
        if (snprintf(sub, sizeof sub, "%s/%s", path, e->d_name) < (int)sizeof sub)
            remove_tree(sub);
    }
    closedir(d);
    rmdir(path);
}

static int teardown(void **state)
{
    struct fixture *f = *state;
    tf_node_store_close(f->st);
    remove_tree(f->tmp);
    free(f);
    return 0;
}

/* Closes the store (if open) and opens it again in mode.  Unused in a test
 * that opens its store once. */
static inline void reopen(struct fixture *f, enum tf_node_store_mode mode)
{
    tf_node_store_close(f->st);
    f->st = NULL;
    assert_ok(tf_node_store_open(f->dir, mode, &f->st));
    assert_non_null(f->st);
}

#endif
