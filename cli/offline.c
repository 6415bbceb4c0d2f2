/* SPDX-License-Identifier: MIT */
#include "cli/offline.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "cli/qr.h"
#include "cli/render.h"
#include "node/store.h"
#include "proto/card.h"
#include "proto/ctl.h"
#include "proto/identity.h"

/* The own identity as the store holds it. */
struct own {
    struct tf_proto_buf signed_card;
    struct tf_proto_card card; /* views into signed_card */
    char *text;                /* "tfcard1:...", owned */
    char id[TF_PROTO_TEXT_ID_SIZE];
    char fingerprint[TF_PROTO_FINGERPRINT_SIZE];
    char listen[TF_PROTO_CARD_ADDR_MAX + 1]; /* "" if the store has none */
};

static void own_deinit(struct own *o)
{
    tf_proto_buf_free(&o->signed_card);
    free(o->text);
    o->text = NULL;
}

static int no_identity(const struct tf_cli *cli)
{
    struct stat sb;
    if (stat(cli->home, &sb) != 0 && errno == ENOENT)
        return tf_cli_render_fail(cli, TF_CLI_EXIT_LOCAL,
                                  "there is no twofold home at %s; create one with: twofold "
                                  "--home %s init --name NAME",
                                  cli->home, cli->home);
    return tf_cli_render_fail(cli, TF_CLI_EXIT_LOCAL,
                              "%s holds no twofold identity; create one with: twofold --home %s "
                              "init --name NAME",
                              cli->home, cli->home);
}

/* Reads the own card (and listen address) from the store, read-only. */
static int own_load(const struct tf_cli *cli, struct own *o)
{
    char dir[TF_NODE_PATH_MAX];
    struct tf_node_store *st = NULL;
    struct tf_proto_buf listen = {0};
    int rc, status = TF_CLI_EXIT_LOCAL;

    memset(o, 0, sizeof *o);
    if (tf_node_home_path(cli->home, TF_NODE_HOME_STORE, dir, sizeof dir) != 0)
        return tf_cli_render_fail(cli, TF_CLI_EXIT_LOCAL, "the home directory path is too long");
    rc = tf_node_store_open(dir, TF_NODE_STORE_READONLY, &st);
    if (rc == TF_E_NOT_FOUND || rc == -ENOENT)
        return no_identity(cli);
    if (rc == TF_E_VERSION)
        return tf_cli_render_fail(cli, TF_CLI_EXIT_LOCAL,
                                  "the store in %s was written by a newer twofold; upgrade "
                                  "twofold",
                                  dir);
    if (rc != TF_OK)
        return tf_cli_render_fail(cli, TF_CLI_EXIT_LOCAL, "cannot read the store in %s: %s", dir,
                                  tf_strerror(rc));
    rc = tf_node_store_meta_get(st, "card", &o->signed_card);
    if (rc == TF_E_NOT_FOUND) {
        tf_cli_render_fail(cli, TF_CLI_EXIT_LOCAL,
                           "the store in %s holds no card (was 'twofold init' interrupted?)", dir);
        goto cleanup;
    }
    if (rc != TF_OK) {
        tf_cli_render_fail(cli, TF_CLI_EXIT_LOCAL, "cannot read the card from %s: %s", dir,
                           tf_strerror(rc));
        goto cleanup;
    }
    /* The listen address is only shown; a missing or odd one is left out. */
    if (tf_node_store_meta_get(st, "listen", &listen) == TF_OK &&
        tf_proto_ctl_strcpy(o->listen, sizeof o->listen, (const char *)listen.data, listen.len) !=
            TF_OK)
        o->listen[0] = '\0';
    if ((rc = tf_proto_card_verify(o->signed_card.data, o->signed_card.len, &o->card)) != TF_OK ||
        (rc = tf_proto_card_to_text(o->signed_card.data, o->signed_card.len, &o->text)) != TF_OK) {
        tf_cli_render_fail(cli, TF_CLI_EXIT_LOCAL, "the card in %s is damaged: %s", dir,
                           tf_strerror(rc));
        goto cleanup;
    }
    tf_proto_text_id_encode(o->card.sign_pk, o->id);
    tf_proto_fingerprint(o->card.sign_pk, o->fingerprint);
    status = TF_CLI_EXIT_OK;
cleanup:
    tf_proto_buf_free(&listen);
    tf_node_store_close(st);
    if (status != TF_CLI_EXIT_OK)
        own_deinit(o);
    return status;
}

static json_t *views_json(const struct tf_proto_bytes *v, size_t n)
{
    json_t *arr = json_array();
    for (size_t i = 0; arr != NULL && i < n; i++) {
        if (json_array_append_new(arr, json_stringn((const char *)v[i].ptr, v[i].len)) != 0) {
            json_decref(arr);
            arr = NULL;
        }
    }
    return arr;
}

/* The identity as JSON; with_card adds the card's text and fields. */
static json_t *own_json(const struct own *o, bool with_card)
{
    json_t *j = json_pack("{s:s, s:s, s:s%, s:s?}", "id", o->id, "fingerprint", o->fingerprint,
                          "name", (const char *)o->card.name.ptr, o->card.name.len, "listen",
                          o->listen[0] != '\0' ? o->listen : NULL);
    if (j == NULL || !with_card)
        return j;
    if (json_object_set_new(j, "card", json_string(o->text)) != 0 ||
        json_object_set_new(j, "seq", json_integer((json_int_t)o->card.seq)) != 0 ||
        json_object_set_new(j, "issued", json_integer((json_int_t)o->card.issued)) != 0 ||
        json_object_set_new(j, "addrs", views_json(o->card.addrs, o->card.n_addrs)) != 0 ||
        json_object_set_new(j, "offers", views_json(o->card.offers, o->card.n_offers)) != 0 ||
        json_object_set_new(j, "seeks", views_json(o->card.seeks, o->card.n_seeks)) != 0) {
        json_decref(j);
        return NULL;
    }
    return j;
}

static void own_print(const struct own *o)
{
    char name[4 * TF_PROTO_CARD_NAME_MAX + 1];
    tf_cli_render_clean(name, sizeof name, (const char *)o->card.name.ptr, o->card.name.len);
    tf_cli_render_kv("id", o->id);
    tf_cli_render_kv("fingerprint", o->fingerprint);
    tf_cli_render_kv("name", name);
    if (o->listen[0] != '\0')
        tf_cli_render_kv("listen", o->listen);
}

/* A display name: what a card accepts (1-64 bytes of UTF-8, no control
 * characters), checked here so the message can say so. */
static bool name_is_valid(const char *s)
{
    size_t n = strlen(s);
    if (n == 0 || n > TF_PROTO_CARD_NAME_MAX || !tf_proto_utf8_is_valid((const uint8_t *)s, n))
        return false;
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)s[i] < 0x20 || s[i] == 0x7f)
            return false;
    return true;
}

enum { OPT_NAME = 1, OPT_LISTEN, OPT_ADVERTISE, OPT_QR };

int tf_cli_offline_init(struct tf_cli *cli, int argc, char **argv)
{
    static const struct tf_cli_opt opts[] = {
        {"name", true, OPT_NAME},
        {"listen", true, OPT_LISTEN},
        {"advertise", true, OPT_ADVERTISE},
        {NULL, false, 0},
    };
    struct tf_node_home_init_args ia = {0};
    struct tf_cli_args a;
    const char *val;
    char why[512];
    int id, rc;

    tf_cli_args_init(&a, cli, argc, argv, opts);
    while ((id = tf_cli_args_next(&a, &val)) > 0) {
        if (id == OPT_NAME)
            ia.name = val;
        else if (id == OPT_LISTEN)
            ia.listen = val;
        else
            ia.advertise = val;
    }
    if (id < 0 || tf_cli_args_want(&a, 0, 0, "") != 0)
        return TF_CLI_EXIT_USAGE;
    if (ia.name == NULL)
        return tf_cli_args_usage_error(cli, "give your display name with --name NAME");
    if (!name_is_valid(ia.name))
        return tf_cli_args_usage_error(cli,
                                       "a name is 1 to %d bytes of text without control "
                                       "characters",
                                       TF_PROTO_CARD_NAME_MAX);
    if ((rc = tf_cli_args_home(cli)) != TF_CLI_EXIT_OK)
        return rc;
    time_t now = time(NULL);
    ia.now = now > 0 ? (uint64_t)now : 0;
    char warn[512] = "";
    ia.warn = warn;
    ia.warn_cap = sizeof warn;
    rc = tf_node_home_init(cli->home, &ia, why, sizeof why);
    if (rc == TF_E_INVALID_ARG)
        return tf_cli_args_usage_error(cli, "%s", why);
    if (rc != TF_OK)
        return tf_cli_render_fail(cli, rc == TF_E_EXISTS ? TF_CLI_EXIT_FAIL : TF_CLI_EXIT_LOCAL,
                                  "%s", why);

    if (warn[0])
        fprintf(stderr, "%s: warning: %s\n", cli->cmd, warn);
    struct own o;
    if ((rc = own_load(cli, &o)) != TF_CLI_EXIT_OK)
        return rc;
    if (cli->json) {
        json_t *j = own_json(&o, true);
        if (j != NULL && json_object_set_new(j, "home", json_string(cli->home)) != 0) {
            json_decref(j);
            j = NULL;
        }
        rc = tf_cli_render_json_print(cli, j, false);
    } else {
        printf("created a twofold identity in %s\n", cli->home);
        own_print(&o);
        printf("\nstart the node with:  twofoldd --home %s\n"
               "share your card with: twofold --home %s card\n",
               cli->home, cli->home);
    }
    own_deinit(&o);
    return rc;
}

int tf_cli_offline_id(struct tf_cli *cli, int argc, char **argv)
{
    struct tf_cli_args a;
    struct own o;
    int rc;
    if (tf_cli_args_parse_plain(&a, cli, argc, argv, 0, 0, "") != 0)
        return TF_CLI_EXIT_USAGE;
    if ((rc = tf_cli_args_home(cli)) != TF_CLI_EXIT_OK ||
        (rc = own_load(cli, &o)) != TF_CLI_EXIT_OK)
        return rc;
    if (cli->json)
        rc = tf_cli_render_json_print(cli, own_json(&o, false), false);
    else
        own_print(&o);
    own_deinit(&o);
    return rc;
}

int tf_cli_offline_card(struct tf_cli *cli, int argc, char **argv)
{
    static const struct tf_cli_opt opts[] = {{"qr", false, OPT_QR}, {NULL, false, 0}};
    struct tf_cli_args a;
    const char *val;
    bool qr = false;
    struct own o;
    int id, rc;
    tf_cli_args_init(&a, cli, argc, argv, opts);
    while ((id = tf_cli_args_next(&a, &val)) > 0)
        qr = true;
    if (id < 0 || tf_cli_args_want(&a, 0, 0, "") != 0)
        return TF_CLI_EXIT_USAGE;
    if (qr && cli->json)
        return tf_cli_args_usage_error(cli, "--qr draws for people; it cannot go with --json");
    if (qr && !tf_cli_qr_available())
        return tf_cli_qr_print(cli, "");
    if ((rc = tf_cli_args_home(cli)) != TF_CLI_EXIT_OK ||
        (rc = own_load(cli, &o)) != TF_CLI_EXIT_OK)
        return rc;
    if (cli->json) {
        rc = tf_cli_render_json_print(cli, own_json(&o, true), false);
    } else {
        if (qr)
            rc = tf_cli_qr_print(cli, o.text);
        if (rc == TF_CLI_EXIT_OK)
            printf("%s\n", o.text);
    }
    own_deinit(&o);
    return rc;
}
