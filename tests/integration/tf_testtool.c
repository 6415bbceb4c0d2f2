/* SPDX-License-Identifier: MIT */
/*
 * Test helper for the integration tests: makes objects a node would only make
 * through later features (or a malicious peer would make), from a home's own
 * key file.
 *
 *   tf-testtool card HOME --seq N [--name NAME] [--addr HOST:PORT]
 *       prints a card signed by HOME's identity, with sequence number N
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "node/home.h"
#include "node/keys.h"
#include "proto/card.h"

static int card(int argc, char **argv)
{
    const char *home = NULL, *name = "Test", *addr = "127.0.0.1:7451";
    unsigned long long seq = 1;
    for (int i = 0; i < argc; i++) {
        if (strcmp(argv[i], "--seq") == 0 && i + 1 < argc)
            seq = strtoull(argv[++i], NULL, 10);
        else if (strcmp(argv[i], "--name") == 0 && i + 1 < argc)
            name = argv[++i];
        else if (strcmp(argv[i], "--addr") == 0 && i + 1 < argc)
            addr = argv[++i];
        else if (home == NULL)
            home = argv[i];
        else
            return 2;
    }
    if (home == NULL)
        return 2;
    char key[TF_NODE_PATH_MAX], why[512];
    struct tf_proto_identity id = {0};
    if (tf_node_home_path(home, TF_NODE_HOME_KEY, key, sizeof key) != 0 ||
        tf_node_keys_load(key, &id, why, sizeof why) != 0) {
        fprintf(stderr, "tf-testtool: %s\n", why);
        return 1;
    }
    struct tf_proto_card c;
    memset(&c, 0, sizeof c);
    memcpy(c.sign_pk, id.sign_pk, 32);
    memcpy(c.noise_pk, id.noise_pk, 32);
    memcpy(c.box_pk, id.box_pk, 32);
    c.name = (struct tf_proto_bytes){(const uint8_t *)name, strlen(name)};
    c.n_addrs = 1;
    c.addrs[0] = (struct tf_proto_bytes){(const uint8_t *)addr, strlen(addr)};
    c.issued = 1800000000;
    c.seq = seq;
    struct tf_proto_buf signed_card;
    char *text = NULL;
    int rc = tf_proto_card_sign(&id, &c, &signed_card);
    if (rc == TF_OK) {
        rc = tf_proto_card_to_text(signed_card.data, signed_card.len, &text);
        tf_proto_buf_free(&signed_card);
    }
    tf_proto_identity_deinit(&id);
    if (rc != TF_OK) {
        fprintf(stderr, "tf-testtool: %s\n", tf_strerror(rc));
        return 1;
    }
    printf("%s\n", text);
    free(text);
    return 0;
}

int main(int argc, char **argv)
{
    if (sodium_init() < 0)
        return 1;
    if (argc >= 2 && strcmp(argv[1], "card") == 0)
        return card(argc - 2, argv + 2);
    fprintf(stderr, "usage: tf-testtool card HOME --seq N [--name NAME] [--addr HOST:PORT]\n");
    return 2;
}
