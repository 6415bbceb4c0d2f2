/* SPDX-License-Identifier: MIT */
#include "node/config.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "node/home.h"

void tf_node_config_defaults(struct tf_node_config *cfg)
{
    cfg->handshake_timeout_ms = 10000;
    cfg->idle_timeout_ms = 300000;
    cfg->max_frame = 65535;
    cfg->max_handshake_frame = 8192;
    cfg->max_connections = 256;
    cfg->max_connections_per_ip = 32;
    cfg->max_in_flight = 64;
    cfg->note_ttl_s = 7 * 86400;
    cfg->retry_max_ms = 15 * 60 * 1000;
    cfg->max_pending_per_connector = 100;
    /* intro */
    cfg->max_intros_per_connector = 200;
    cfg->max_stranger_intros = 1000;
    cfg->retention_s = 30 * 86400;
    cfg->close_delay_min_s = 3600;
    cfg->close_delay_max_s = 86400;
    cfg->policy_decline_reason = 0;
}

struct key {
    const char *name;
    size_t offset;
    uint64_t min, max;
};

#define KEY(field, lo, hi)                                                                         \
    {                                                                                              \
#field, offsetof(struct tf_node_config, field), lo, hi                                     \
    }
static const struct key KEYS[] = {
    KEY(handshake_timeout_ms, 100, 600000),
    KEY(idle_timeout_ms, 1000, 86400000),
    KEY(max_frame, 1024, 65535),
    KEY(max_handshake_frame, 1024, 65535),
    KEY(max_connections, 1, 100000),
    KEY(max_connections_per_ip, 1, 100000),
    KEY(max_in_flight, 1, 100000),
    KEY(note_ttl_s, 60, 365 * 86400),
    KEY(retry_max_ms, 1000, 86400000),
    KEY(max_pending_per_connector, 1, 1000000),
    /* intro */
    KEY(max_intros_per_connector, 1, 1000000),
    KEY(max_stranger_intros, 0, 1000000),
    KEY(retention_s, 1, 10 * 365 * 86400),
    KEY(close_delay_min_s, 0, 30 * 86400),
    KEY(close_delay_max_s, 0, 30 * 86400),
    KEY(policy_decline_reason, 0, 1),
};

static char *trim(char *s)
{
    while (*s == ' ' || *s == '\t')
        s++;
    size_t n = strlen(s);
    while (n > 0 && (s[n - 1] == ' ' || s[n - 1] == '\t' || s[n - 1] == '\n' || s[n - 1] == '\r'))
        s[--n] = '\0';
    return s;
}

int tf_node_config_load(const char *home, struct tf_node_config *cfg, char *why, size_t why_cap)
{
    char path[TF_NODE_PATH_MAX], line[512];
    if (tf_node_home_path(home, TF_NODE_HOME_CONFIG, path, sizeof path) != 0)
        return -ENAMETOOLONG;
    FILE *f = fopen(path, "re");
    if (f == NULL) {
        if (errno == ENOENT)
            return TF_OK;
        int rc = -errno;
        snprintf(why, why_cap, "%s: %s", path, strerror(errno));
        return rc;
    }
    struct tf_node_config next = *cfg;
    int rc = TF_OK;
    unsigned lineno = 0;
    while (rc == TF_OK && fgets(line, sizeof line, f) != NULL) {
        lineno++;
        char *s = trim(line);
        if (*s == '\0' || *s == '#')
            continue;
        char *eq = strchr(s, '=');
        if (eq == NULL) {
            snprintf(why, why_cap, "%s:%u: expected KEY = VALUE", path, lineno);
            rc = TF_E_BAD_VALUE;
            break;
        }
        *eq = '\0';
        char *k = trim(s), *v = trim(eq + 1);
        const struct key *key = NULL;
        for (size_t i = 0; i < sizeof KEYS / sizeof KEYS[0]; i++)
            if (strcmp(KEYS[i].name, k) == 0)
                key = &KEYS[i];
        if (key == NULL) {
            snprintf(why, why_cap, "%s:%u: unknown setting '%.40s'", path, lineno, k);
            rc = TF_E_BAD_VALUE;
            break;
        }
        char *end;
        errno = 0;
        unsigned long long val = strtoull(v, &end, 10);
        if (*v == '\0' || *v == '-' || *end != '\0' || errno != 0 || val < key->min ||
            val > key->max) {
            snprintf(why, why_cap, "%s:%u: %s must be a whole number from %llu to %llu", path,
                     lineno, key->name, (unsigned long long)key->min, (unsigned long long)key->max);
            rc = TF_E_BAD_VALUE;
            break;
        }
        memcpy((char *)&next + key->offset, &(uint64_t){val}, sizeof(uint64_t));
    }
    fclose(f);
    if (rc == TF_OK && next.close_delay_min_s > next.close_delay_max_s) {
        snprintf(why, why_cap, "%s: close_delay_min_s must not exceed close_delay_max_s", path);
        rc = TF_E_BAD_VALUE;
    }
    if (rc == TF_OK)
        *cfg = next;
    return rc;
}
