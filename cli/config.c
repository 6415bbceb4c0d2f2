/* SPDX-License-Identifier: MIT */
#include "cli/config.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "cli/ctl.h"
#include "cli/render.h"
#include "node/addr.h"
#include "node/config.h"
#include "node/keys.h"
#include "node/store.h"
#include "proto/card.h"
#include "proto/ctl.h"

/* What the store says about the addresses. */
struct addrs {
    char listen[TF_PROTO_CARD_ADDR_MAX + 1];
    char advertise[TF_PROTO_CARD_ADDRS_MAX * (TF_PROTO_CARD_ADDR_MAX + 1)]; /* a,b,... */
};

/* The home must exist and be one a node could run in (its control socket
 * path fits: twofoldd refuses a longer one). */
static int check_home(struct tf_cli *cli)
{
    char sock[TF_NODE_PATH_MAX], why[TF_NODE_PATH_MAX + 256];
    struct stat sb;
    int rc = tf_cli_args_home(cli);
    if (rc != TF_CLI_EXIT_OK)
        return rc;
    if (tf_node_home_socket_path(cli->home, sock, sizeof sock, why, sizeof why) != 0)
        return tf_cli_render_fail(cli, TF_CLI_EXIT_LOCAL, "%s", why);
    if (stat(cli->home, &sb) != 0)
        return tf_cli_render_fail(cli, TF_CLI_EXIT_LOCAL,
                                  "there is no twofold home at %s (%s); create one with: twofold "
                                  "--home %s init --name NAME",
                                  cli->home, strerror(errno), cli->home);
    return TF_CLI_EXIT_OK;
}

/* Reads listen and advertise from the store, read-only. */
static int addrs_load(struct tf_cli *cli, struct addrs *out)
{
    char dir[TF_NODE_PATH_MAX];
    struct tf_node_store *st = NULL;
    struct tf_proto_buf listen = {0}, card = {0};
    struct tf_proto_card c;
    memset(out, 0, sizeof *out);
    if (tf_node_home_path(cli->home, TF_NODE_HOME_STORE, dir, sizeof dir) != 0)
        return tf_cli_render_fail(cli, TF_CLI_EXIT_LOCAL, "the home directory path is too long");
    int rc = tf_node_store_open(dir, TF_NODE_STORE_READONLY, &st);
    if (rc != TF_OK)
        return tf_cli_render_fail(cli, TF_CLI_EXIT_LOCAL,
                                  "cannot read the store in %s: %s (is this a twofold home? "
                                  "twofold init makes one)",
                                  dir, tf_strerror(rc));
    if (tf_node_store_meta_get(st, "listen", &listen) == TF_OK &&
        tf_proto_ctl_strcpy(out->listen, sizeof out->listen, (const char *)listen.data,
                            listen.len) != TF_OK)
        out->listen[0] = '\0';
    rc = tf_node_store_meta_get(st, "card", &card);
    if (rc == TF_OK)
        rc = tf_proto_card_verify(card.data, card.len, &c);
    if (rc == TF_OK) {
        size_t off = 0;
        for (size_t i = 0; i < c.n_addrs; i++) {
            int n = snprintf(out->advertise + off, sizeof out->advertise - off, "%s%.*s",
                             i ? "," : "", (int)c.addrs[i].len, (const char *)c.addrs[i].ptr);
            if (n > 0)
                off += (size_t)n;
        }
    }
    tf_proto_buf_free(&listen);
    tf_proto_buf_free(&card);
    tf_node_store_close(st);
    if (rc != TF_OK)
        return tf_cli_render_fail(cli, TF_CLI_EXIT_LOCAL, "cannot read your card from %s: %s", dir,
                                  tf_strerror(rc));
    return TF_CLI_EXIT_OK;
}

/* Loads HOME/config over the defaults with the node's parser. */
static int settings_load(struct tf_cli *cli, struct tf_node_config *cfg)
{
    char why[TF_NODE_PATH_MAX + 256];
    tf_node_config_defaults(cfg);
    if (tf_node_config_load(cli->home, cfg, why, sizeof why) != TF_OK)
        return tf_cli_render_fail(cli, TF_CLI_EXIT_FAIL,
                                  "the node would refuse its configuration: %s", why);
    return TF_CLI_EXIT_OK;
}

static json_t *advertise_json(const char *list)
{
    json_t *arr = json_array();
    const char *p = list;
    while (arr != NULL && *p != '\0') {
        size_t n = strcspn(p, ",");
        json_array_append_new(arr, json_stringn(p, n));
        p += n + (p[n] == ',');
    }
    return arr;
}

int tf_cli_config_list(struct tf_cli *cli, int argc, char **argv)
{
    struct tf_cli_args a;
    struct tf_node_config cfg, def;
    struct addrs ad;
    int rc;
    if (tf_cli_args_parse_plain(&a, cli, argc, argv, 0, 0, "") != 0)
        return TF_CLI_EXIT_USAGE;
    if ((rc = check_home(cli)) != TF_CLI_EXIT_OK || (rc = addrs_load(cli, &ad)) != TF_CLI_EXIT_OK ||
        (rc = settings_load(cli, &cfg)) != TF_CLI_EXIT_OK)
        return rc;
    tf_node_config_defaults(&def);
    if (cli->json) {
        json_t *j = json_object();
        json_object_set_new(j, "listen", json_string(ad.listen));
        json_object_set_new(j, "advertise", advertise_json(ad.advertise));
        for (size_t i = 0; i < tf_node_config_n_keys(); i++)
            json_object_set_new(j, tf_node_config_key_name(i),
                                json_integer((json_int_t)tf_node_config_key_value(&cfg, i)));
        return tf_cli_render_json_print(cli, j, false);
    }
    printf("%-26s %s\n", "listen", ad.listen);
    printf("%-26s %s\n", "advertise", ad.advertise);
    for (size_t i = 0; i < tf_node_config_n_keys(); i++) {
        uint64_t v = tf_node_config_key_value(&cfg, i);
        uint64_t d = tf_node_config_key_value(&def, i);
        if (v == d)
            printf("%-26s %" PRIu64 "\n", tf_node_config_key_name(i), v);
        else
            printf("%-26s %" PRIu64 "  (default %" PRIu64 ")\n", tf_node_config_key_name(i), v, d);
    }
    return TF_CLI_EXIT_OK;
}

/* A key's name: listen, advertise or one of node/config.c's. */
static int find_key(struct tf_cli *cli, const char *key, size_t *i)
{
    if (strcmp(key, "listen") == 0 || strcmp(key, "advertise") == 0)
        return TF_CLI_EXIT_OK;
    if (tf_node_config_key_find(key, i) == TF_OK)
        return TF_CLI_EXIT_OK;
    return tf_cli_args_usage_error(cli, "unknown setting '%s' (twofold config list shows them all)",
                                   key);
}

/* The arguments of get, set and unset: KEY (and VALUE for set, in
 * *value), a known key (*i: its index for a HOME/config setting), and a
 * home a node could run in. */
static int key_args(struct tf_cli *cli, int argc, char **argv, bool with_value, const char **key,
                    const char **value, size_t *i)
{
    struct tf_cli_args a;
    int rc;
    size_t n = with_value ? 2 : 1;
    if (tf_cli_args_parse_plain(&a, cli, argc, argv, n, n, with_value ? "KEY VALUE" : "KEY") != 0)
        return TF_CLI_EXIT_USAGE;
    *key = a.pos[0];
    *value = with_value ? a.pos[1] : NULL;
    if ((rc = find_key(cli, *key, i)) != TF_CLI_EXIT_OK)
        return rc;
    return check_home(cli);
}

int tf_cli_config_get(struct tf_cli *cli, int argc, char **argv)
{
    struct tf_node_config cfg;
    struct addrs ad;
    const char *key, *unused;
    size_t i = 0;
    int rc;
    if ((rc = key_args(cli, argc, argv, false, &key, &unused, &i)) != TF_CLI_EXIT_OK)
        return rc;
    if (strcmp(key, "listen") == 0 || strcmp(key, "advertise") == 0) {
        if ((rc = addrs_load(cli, &ad)) != TF_CLI_EXIT_OK)
            return rc;
        bool listen = strcmp(key, "listen") == 0;
        if (cli->json)
            return tf_cli_render_json_print(
                cli,
                json_pack("{s:o}", key,
                          listen ? json_string(ad.listen) : advertise_json(ad.advertise)),
                false);
        printf("%s\n", listen ? ad.listen : ad.advertise);
        return TF_CLI_EXIT_OK;
    }
    if ((rc = settings_load(cli, &cfg)) != TF_CLI_EXIT_OK)
        return rc;
    uint64_t v = tf_node_config_key_value(&cfg, i);
    if (cli->json)
        return tf_cli_render_json_print(cli, json_pack("{s:I}", key, (json_int_t)v), false);
    printf("%" PRIu64 "\n", v);
    return TF_CLI_EXIT_OK;
}

/* Rewrites HOME/config with key's line replaced by "key = value" (or removed
 * when value is NULL), other lines kept as they are; the new file is checked
 * with the node's parser before it replaces the old one. */
static int settings_write(struct tf_cli *cli, const char *key, const char *value)
{
    char path[TF_NODE_PATH_MAX], tmp[TF_NODE_PATH_MAX], line[TF_NODE_CONFIG_LINE_MAX + 2];
    char why[TF_NODE_PATH_MAX + 256];
    if (tf_node_home_path(cli->home, TF_NODE_HOME_CONFIG, path, sizeof path) != 0 ||
        tf_node_home_path(cli->home, TF_NODE_HOME_CONFIG ".new", tmp, sizeof tmp) != 0)
        return tf_cli_render_fail(cli, TF_CLI_EXIT_LOCAL, "the home directory path is too long");
    FILE *in = fopen(path, "re");
    if (in == NULL && errno != ENOENT)
        return tf_cli_render_fail(cli, TF_CLI_EXIT_LOCAL, "cannot read %s: %s", path,
                                  strerror(errno));
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0600);
    FILE *out = fd >= 0 ? fdopen(fd, "w") : NULL;
    if (out == NULL) {
        int e = errno;
        if (fd >= 0)
            close(fd);
        if (in != NULL)
            fclose(in);
        return tf_cli_render_fail(cli, TF_CLI_EXIT_LOCAL, "cannot write %s: %s", tmp, strerror(e));
    }
    bool done = false;
    size_t klen = strlen(key);
    while (in != NULL && fgets(line, sizeof line, in) != NULL) {
        const char *s = line + strspn(line, " \t");
        bool same = strncmp(s, key, klen) == 0 && strchr(" \t=", s[klen]) != NULL;
        if (!same) {
            fputs(line, out);
            continue;
        }
        if (value != NULL && !done)
            fprintf(out, "%s = %s\n", key, value);
        done = true;
    }
    if (value != NULL && !done)
        fprintf(out, "%s = %s\n", key, value);
    if (in != NULL)
        fclose(in);
    int rc = fflush(out) != 0 || fsync(fileno(out)) != 0 ? -errno : 0;
    if (fclose(out) != 0 && rc == 0)
        rc = -errno;
    if (rc != 0) {
        unlink(tmp);
        return tf_cli_render_fail(cli, TF_CLI_EXIT_LOCAL, "cannot write %s: %s", tmp,
                                  strerror(-rc));
    }
    struct tf_node_config cfg;
    tf_node_config_defaults(&cfg);
    if (tf_node_config_load_file(tmp, path, &cfg, why, sizeof why) != TF_OK) {
        unlink(tmp);
        return tf_cli_render_fail(cli, TF_CLI_EXIT_FAIL, "refused, nothing changed: %s", why);
    }
    if (rename(tmp, path) != 0) {
        int e = errno;
        unlink(tmp);
        return tf_cli_render_fail(cli, TF_CLI_EXIT_LOCAL, "cannot replace %s: %s", path,
                                  strerror(e));
    }
    return TF_CLI_EXIT_OK;
}

/* Splits "a,b,c" into at most TF_PROTO_CARD_ADDRS_MAX addresses (views into
 * buf, which it modifies). */
static size_t split_list(char *buf, const char **out)
{
    size_t n = 0;
    for (char *p = buf; p != NULL && n <= TF_PROTO_CARD_ADDRS_MAX;) {
        char *comma = strchr(p, ',');
        if (comma != NULL)
            *comma = '\0';
        if (n < TF_PROTO_CARD_ADDRS_MAX)
            out[n] = p;
        n++;
        p = comma != NULL ? comma + 1 : NULL;
    }
    return n;
}

/* Re-issues the card with addrs, the next number and now, in st.  The node
 * pushes it to the contacts when it starts (node/profile.h). */
static int reissue_card(struct tf_cli *cli, struct tf_node_store *st, const char *const *addrs,
                        size_t n, uint64_t *seq)
{
    char key[TF_NODE_PATH_MAX], why[512];
    struct tf_proto_identity id = {0};
    struct tf_proto_buf old = {0}, card = {0};
    struct tf_proto_card c;
    int rc = tf_node_home_path(cli->home, TF_NODE_HOME_KEY, key, sizeof key);
    if (rc == 0)
        rc = tf_node_keys_load(key, &id, why, sizeof why);
    if (rc != 0) {
        tf_cli_render_fail(cli, TF_CLI_EXIT_LOCAL, "cannot sign a new card: %s", why);
        goto cleanup;
    }
    rc = tf_node_store_meta_get(st, "card", &old);
    if (rc == TF_OK)
        rc = tf_proto_card_verify(old.data, old.len, &c);
    if (rc != TF_OK) {
        tf_cli_render_fail(cli, TF_CLI_EXIT_LOCAL, "cannot read your card: %s", tf_strerror(rc));
        goto cleanup;
    }
    c.n_addrs = n;
    for (size_t i = 0; i < n; i++) {
        c.addrs[i].ptr = (const uint8_t *)addrs[i];
        c.addrs[i].len = strlen(addrs[i]);
    }
    time_t now = time(NULL);
    c.issued = now > 0 && (uint64_t)now > c.issued ? (uint64_t)now : c.issued;
    struct timespec ts;
    uint64_t now_ms = clock_gettime(CLOCK_REALTIME, &ts) == 0 && ts.tv_sec > 0
                          ? (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000
                          : 0;
    c.seq = tf_proto_card_next_seq(c.seq, now_ms);
    if ((rc = tf_proto_card_sign(&id, &c, &card)) != TF_OK ||
        (rc = tf_node_store_meta_put(st, "card", card.data, card.len)) != TF_OK) {
        tf_cli_render_fail(cli, TF_CLI_EXIT_LOCAL, "cannot store the new card: %s",
                           tf_strerror(rc));
        goto cleanup;
    }
    *seq = c.seq;
cleanup:
    tf_proto_buf_free(&old);
    tf_proto_buf_free(&card);
    tf_proto_identity_deinit(&id);
    return rc == TF_OK ? TF_CLI_EXIT_OK : TF_CLI_EXIT_LOCAL;
}

/* listen or advertise while no node runs: under the home's lock (a node
 * starting meanwhile waits, then finds it taken and stops), in the store. */
static int addrs_set_offline(struct tf_cli *cli, const char *key, const char *const *addrs,
                             size_t n)
{
    char dir[TF_NODE_PATH_MAX];
    struct tf_node_store *st = NULL;
    uint64_t seq = 0;
    if (tf_node_home_path(cli->home, TF_NODE_HOME_STORE, dir, sizeof dir) != 0)
        return tf_cli_render_fail(cli, TF_CLI_EXIT_LOCAL, "the home directory path is too long");
    int rc = tf_node_store_open(dir, TF_NODE_STORE_OPEN, &st);
    if (rc != TF_OK)
        return tf_cli_render_fail(cli, TF_CLI_EXIT_LOCAL, "cannot open the store in %s: %s", dir,
                                  tf_strerror(rc));
    int status = TF_CLI_EXIT_OK;
    if (strcmp(key, "listen") == 0) {
        rc = tf_node_store_meta_put(st, "listen", (const uint8_t *)addrs[0], strlen(addrs[0]));
        if (rc != TF_OK)
            status = tf_cli_render_fail(cli, TF_CLI_EXIT_LOCAL, "cannot write the store: %s",
                                        tf_strerror(rc));
    } else {
        status = reissue_card(cli, st, addrs, n, &seq);
    }
    if (status == TF_CLI_EXIT_OK && (rc = tf_node_store_commit(st)) != TF_OK)
        status = tf_cli_render_fail(cli, TF_CLI_EXIT_LOCAL, "cannot write the store: %s",
                                    tf_strerror(rc));
    tf_node_store_close(st);
    if (status == TF_CLI_EXIT_OK && !cli->json) {
        if (seq != 0)
            printf("card re-issued as number %" PRIu64
                   "; twofoldd sends it to your contacts when it starts\n",
                   seq);
        else
            printf("twofoldd listens on %s from its next start\n", addrs[0]);
    }
    return status;
}

/* listen or advertise while the node runs: through it (profile.set), which
 * re-issues and pushes the card at once. */
static int addrs_set_online(struct tf_cli *cli, const char *key, const char *const *addrs, size_t n)
{
    struct tf_cli_ctl c = {0};
    struct tf_cli_ctl_arg arg = {.key = key};
    const msgpack_object *res;
    if (strcmp(key, "listen") == 0) {
        arg.type = TF_CLI_CTL_STR;
        arg.str = addrs[0];
    } else {
        arg.type = TF_CLI_CTL_STRS;
        arg.strs = addrs;
        arg.n = n;
    }
    int rc = tf_cli_ctl_run(&c, cli, "profile.set", &arg, 1, &res);
    tf_cli_ctl_close(&c);
    if (rc == TF_CLI_EXIT_OK && !cli->json)
        printf("%s\n", strcmp(key, "listen") == 0
                           ? "the running twofoldd listens there from its next start"
                           : "card re-issued and sent to your contacts");
    return rc;
}

static int set_addrs(struct tf_cli *cli, const char *key, const char *value)
{
    char buf[TF_PROTO_CARD_ADDRS_MAX * (TF_PROTO_CARD_ADDR_MAX + 1) + 1], why[512], warn[512];
    const char *list[TF_PROTO_CARD_ADDRS_MAX];
    struct addrs ad;
    int rc;
    if ((rc = addrs_load(cli, &ad)) != TF_CLI_EXIT_OK)
        return rc;
    if (strlen(value) >= sizeof buf)
        return tf_cli_args_usage_error(cli, "%s: the value is too long", key);
    snprintf(buf, sizeof buf, "%s", value);
    bool listen = strcmp(key, "listen") == 0;
    size_t n = 1;
    if (listen) {
        list[0] = buf;
        if (tf_node_addr_check_listen(buf, why, sizeof why) != TF_OK)
            return tf_cli_args_usage_error(cli, "%s", why);
        /* The advertised addresses stay: warn against them. */
        char cur[sizeof ad.advertise];
        const char *adv[TF_PROTO_CARD_ADDRS_MAX];
        snprintf(cur, sizeof cur, "%s", ad.advertise);
        size_t na = split_list(cur, adv);
        if (na > TF_PROTO_CARD_ADDRS_MAX)
            na = TF_PROTO_CARD_ADDRS_MAX;
        if (tf_node_addr_check_advertise(adv, na, buf, why, sizeof why, warn, sizeof warn) != TF_OK)
            warn[0] = '\0';
    } else {
        n = split_list(buf, list);
        if (tf_node_addr_check_advertise(list, n, ad.listen, why, sizeof why, warn, sizeof warn) !=
            TF_OK)
            return tf_cli_args_usage_error(cli, "%s", why);
    }
    /* The lock says whether a node runs; held, it keeps one from starting
     * while the store is written. */
    char lock[TF_NODE_PATH_MAX];
    if (tf_node_home_path(cli->home, TF_NODE_HOME_LOCK, lock, sizeof lock) != 0)
        return tf_cli_render_fail(cli, TF_CLI_EXIT_LOCAL, "the home directory path is too long");
    int fd = open(lock, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
    if (fd < 0)
        return tf_cli_render_fail(cli, TF_CLI_EXIT_LOCAL, "cannot open %s: %s", lock,
                                  strerror(errno));
    if (flock(fd, LOCK_EX | LOCK_NB) == 0) {
        rc = addrs_set_offline(cli, key, list, n);
        close(fd);
    } else if (errno == EWOULDBLOCK) {
        close(fd);
        rc = addrs_set_online(cli, key, list, n);
    } else {
        int e = errno;
        close(fd);
        return tf_cli_render_fail(cli, TF_CLI_EXIT_LOCAL, "cannot lock %s: %s", lock, strerror(e));
    }
    if (rc == TF_CLI_EXIT_OK && warn[0])
        fprintf(stderr, "%s: warning: %s\n", cli->cmd, warn);
    if (rc == TF_CLI_EXIT_OK && cli->json)
        rc = tf_cli_render_json_print(cli, json_pack("{s:s}", key, value), false);
    return rc;
}

int tf_cli_config_set(struct tf_cli *cli, int argc, char **argv)
{
    char why[256];
    const char *key, *value;
    size_t i = 0;
    int rc;
    if ((rc = key_args(cli, argc, argv, true, &key, &value, &i)) != TF_CLI_EXIT_OK)
        return rc;
    if (strcmp(key, "listen") == 0 || strcmp(key, "advertise") == 0)
        return set_addrs(cli, key, value);
    if (tf_node_config_key_check(i, value, why, sizeof why) != TF_OK)
        return tf_cli_args_usage_error(cli, "%s", why);
    if ((rc = settings_write(cli, key, value)) != TF_CLI_EXIT_OK)
        return rc;
    if (cli->json)
        return tf_cli_render_json_print(
            cli, json_pack("{s:I}", key, (json_int_t)strtoull(value, NULL, 10)), false);
    if (tf_node_home_lock_held(cli->home) == 1)
        printf("%s = %s; the running twofoldd reads it on SIGHUP or when it restarts\n", key,
               value);
    return TF_CLI_EXIT_OK;
}

int tf_cli_config_unset(struct tf_cli *cli, int argc, char **argv)
{
    const char *key, *unused;
    size_t i = 0;
    int rc;
    if ((rc = key_args(cli, argc, argv, false, &key, &unused, &i)) != TF_CLI_EXIT_OK)
        return rc;
    if (strcmp(key, "listen") == 0 || strcmp(key, "advertise") == 0)
        return tf_cli_args_usage_error(cli, "%s has no default to go back to: set it instead", key);
    if ((rc = settings_write(cli, key, NULL)) != TF_CLI_EXIT_OK)
        return rc;
    if (cli->json)
        return tf_cli_render_json_print(cli, json_pack("{s:n}", key), false);
    return TF_CLI_EXIT_OK;
}
