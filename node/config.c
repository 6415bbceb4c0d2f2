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
    cfg->max_connections = 384; /* max_inbound_links + max_outbound_links */
    cfg->max_connections_per_ip = 32;
    cfg->max_in_flight = 64;
    cfg->note_ttl_s = 7 * 86400;
    cfg->retry_max_ms = 15 * 60 * 1000;
    cfg->max_pending_per_connector = 100;
    /* Events and counters (retention). */
    cfg->events_max = 100000;
    cfg->events_retention_s = 30 * 86400;
    /* Links (docs/THREAT-MODEL.md has one line per budget).  A link's queue
     * holds at most what 64 envelopes in flight and their ACKs take in
     * practice (envelopes are 0.3-3 KB); a peer that lets 1 MiB pile up is
     * not reading. */
    cfg->max_link_queue_bytes = 1024 * 1024;
    cfg->ping_rate_per_s = 10;
    cfg->ping_burst = 50;
    cfg->max_inbound_links = 256;
    cfg->max_outbound_links = 128;
    cfg->max_inbound_handshakes = 64;
    cfg->max_links_per_identity = 4;
    cfg->accept_rate_per_s = 100;
    cfg->accept_rate_per_prefix = 20;
    cfg->stranger_idle_ms = 120000;
    cfg->max_dials = 32;
    cfg->max_stranger_dials = 8;
    cfg->max_dials_per_addr = 4;
    cfg->stranger_dials_per_addr = 4;
    cfg->stranger_dial_window_s = 3600;
    cfg->dead_link_ms = 30000;
    /* delivery */
    cfg->outbox_max_per_peer = 1000;
    cfg->outbox_max_strangers = 2000;
    cfg->seen_max = 200000;
    cfg->stranger_dials_max = 3;
    /* intro */
    cfg->max_intros_per_connector = 200;
    cfg->max_stranger_intros = 1000;
    cfg->retention_s = 30 * 86400;
    cfg->close_delay_min_s = 3600;
    cfg->close_delay_max_s = 86400;
    cfg->policy_decline_reason = 0;
    /* messages: a year of a few dozen notes a day from one contact; a store
     * of at most ~100000 * 4 KB = 400 MB of note text in all. */
    cfg->messages_max_per_contact = 10000;
    cfg->messages_max = 100000;
    cfg->messages_retention_s = 365 * 86400;
    /* requests */
    cfg->max_open_requests_per_asker = 4;
    cfg->max_requests_per_asker = 32;
    cfg->max_stranger_requests = 64;
    cfg->request_retention_s = 30 * 86400;
    /* powerloss: warn below 64 MiB free for the store */
    cfg->disk_warn_free_bytes = 64ull << 20;
    /* mailbox: a tenant's share is about what a month of a busy
     * introducer's traffic takes (envelopes are 4-53 KB padded); one
     * uploader may take a tenth of it. */
    cfg->no_listen = 0;
    cfg->mailbox_tenant_bytes = 64 * 1024 * 1024;
    cfg->mailbox_tenant_envelopes = 2000;
    cfg->mailbox_uploader_envelopes = 200;
    cfg->mailbox_ttl_max_s = 30 * 86400;
    cfg->mailbox_retry_max_ms = 60000;
    /* direct */
    cfg->direct_envelopes = 1;
    /* ackdefer: a second's ACKs at the rate a loaded node takes them */
    cfg->ack_defer_max = 1024;
    cfg->ack_defer_ms = 1000;
    /* waitcommit: well above what the other party's reply takes to follow
     * the first one when both answer at once (under a millisecond here,
     * docs/PERFORMANCE.md), well below a sender's first retry */
    cfg->commit_wait_ms = 5;
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
    /* At least a padded handshake message (TF_PROTO_LINK_HS_PAYLOAD_LEN
     * and 96 bytes of keys and tags). */
    KEY(max_handshake_frame, 4608, 65535),
    KEY(max_connections, 1, 100000),
    KEY(max_connections_per_ip, 1, 100000),
    KEY(max_in_flight, 1, 100000),
    KEY(note_ttl_s, 60, 365 * 86400),
    KEY(retry_max_ms, 1000, 86400000),
    KEY(max_pending_per_connector, 1, 1000000),
    /* Events and counters (retention). */
    KEY(events_max, 10, 100000000),
    KEY(events_retention_s, 1, 3650 * 86400),
    /* Links (node/net.c). */
    KEY(max_link_queue_bytes, 65536, 1024 * 1024 * 1024),
    KEY(ping_rate_per_s, 1, 1000000),
    KEY(ping_burst, 1, 100000000),
    KEY(max_inbound_links, 1, 100000),
    KEY(max_outbound_links, 1, 100000),
    KEY(max_inbound_handshakes, 1, 100000),
    KEY(max_links_per_identity, 1, 1000),
    KEY(accept_rate_per_s, 1, 1000000),
    KEY(accept_rate_per_prefix, 1, 1000000),
    KEY(stranger_idle_ms, 1000, 86400000),
    KEY(max_dials, 1, 100000),
    KEY(max_stranger_dials, 1, 100000),
    KEY(max_dials_per_addr, 1, 100000),
    KEY(stranger_dials_per_addr, 1, 100000),
    KEY(stranger_dial_window_s, 1, 30 * 86400),
    KEY(dead_link_ms, 1000, 86400000),
    /* delivery */
    KEY(outbox_max_per_peer, 1, 1000000),
    KEY(outbox_max_strangers, 1, 1000000),
    KEY(seen_max, 1, 100000000),
    KEY(stranger_dials_max, 0, 1000),
    /* intro */
    KEY(max_intros_per_connector, 1, 1000000),
    KEY(max_stranger_intros, 0, 1000000),
    KEY(retention_s, 1, 10 * 365 * 86400),
    KEY(close_delay_min_s, 0, 30 * 86400),
    KEY(close_delay_max_s, 0, 30 * 86400),
    KEY(policy_decline_reason, 0, 1),
    /* messages */
    KEY(messages_max_per_contact, 1, 100000000),
    KEY(messages_max, 1, 100000000),
    KEY(messages_retention_s, 0, 10 * 365 * 86400),
    /* requests */
    KEY(max_open_requests_per_asker, 1, 1000000),
    KEY(max_requests_per_asker, 1, 1000000),
    KEY(max_stranger_requests, 0, 1000000),
    KEY(request_retention_s, 1, 10 * 365 * 86400),
    /* powerloss */
    KEY(disk_warn_free_bytes, 0, UINT64_MAX),
    /* mailbox */
    KEY(no_listen, 0, 1),
    KEY(mailbox_tenant_bytes, 1, (uint64_t)1 << 40),
    KEY(mailbox_tenant_envelopes, 1, 100000000),
    KEY(mailbox_uploader_envelopes, 1, 100000000),
    KEY(mailbox_ttl_max_s, 1, 400 * 86400),
    KEY(mailbox_retry_max_ms, 1000, 3600000),
    /* direct */
    KEY(direct_envelopes, 0, 1),
    /* ackdefer */
    KEY(ack_defer_max, 0, 8192),
    KEY(ack_defer_ms, 1, 3600000),
    /* waitcommit: well under a sender's first retry (500 ms) */
    KEY(commit_wait_ms, 0, 250),
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

#define N_KEYS (sizeof KEYS / sizeof KEYS[0])

size_t tf_node_config_n_keys(void)
{
    return N_KEYS;
}

const char *tf_node_config_key_name(size_t i)
{
    return i < N_KEYS ? KEYS[i].name : NULL;
}

int tf_node_config_key_find(const char *name, size_t *i)
{
    for (size_t k = 0; k < N_KEYS; k++) {
        if (strcmp(KEYS[k].name, name) == 0) {
            *i = k;
            return TF_OK;
        }
    }
    return TF_E_NOT_FOUND;
}

uint64_t tf_node_config_key_value(const struct tf_node_config *cfg, size_t i)
{
    uint64_t v = 0;
    if (i < N_KEYS)
        memcpy(&v, (const char *)cfg + KEYS[i].offset, sizeof v);
    return v;
}

/* Parses value as key's setting: the one rule for the file and the CLI. */
static int parse_value(const struct key *key, const char *v, uint64_t *out, char *why,
                       size_t why_cap)
{
    char *end;
    errno = 0;
    unsigned long long val = strtoull(v, &end, 10);
    if (*v == '\0' || *v == '-' || *end != '\0' || errno != 0 || val < key->min || val > key->max) {
        snprintf(why, why_cap, "%s must be a whole number from %llu to %llu", key->name,
                 (unsigned long long)key->min, (unsigned long long)key->max);
        return TF_E_BAD_VALUE;
    }
    *out = val;
    return TF_OK;
}

int tf_node_config_key_check(size_t i, const char *value, char *why, size_t why_cap)
{
    uint64_t v;
    if (i >= N_KEYS) {
        snprintf(why, why_cap, "no such setting");
        return TF_E_NOT_FOUND;
    }
    return parse_value(&KEYS[i], value, &v, why, why_cap);
}

int tf_node_config_load(const char *home, struct tf_node_config *cfg, char *why, size_t why_cap)
{
    char path[TF_NODE_PATH_MAX];
    if (tf_node_home_path(home, TF_NODE_HOME_CONFIG, path, sizeof path) != 0)
        return -ENAMETOOLONG;
    return tf_node_config_load_file(path, path, cfg, why, why_cap);
}

int tf_node_config_load_file(const char *path, const char *shown, struct tf_node_config *cfg,
                             char *why, size_t why_cap)
{
    char line[TF_NODE_CONFIG_LINE_MAX + 2]; /* + newline and NUL */
    FILE *f = fopen(path, "re");
    if (f == NULL) {
        if (errno == ENOENT)
            return TF_OK;
        int rc = -errno;
        snprintf(why, why_cap, "%s: %s", shown, strerror(errno));
        return rc;
    }
    struct tf_node_config next = *cfg;
    int rc = TF_OK;
    unsigned lineno = 0;
    while (rc == TF_OK && fgets(line, sizeof line, f) != NULL) {
        lineno++;
        /* A full buffer without its newline is a line too long to read whole:
         * its rest must not be parsed as the next line. */
        size_t len = strlen(line);
        if (len == sizeof line - 1 && line[len - 1] != '\n' && !feof(f)) {
            snprintf(why, why_cap, "%s:%u: line is longer than %d bytes", shown, lineno,
                     TF_NODE_CONFIG_LINE_MAX);
            rc = TF_E_BAD_VALUE;
            break;
        }
        char *s = trim(line);
        if (*s == '\0' || *s == '#')
            continue;
        char *eq = strchr(s, '=');
        if (eq == NULL) {
            snprintf(why, why_cap, "%s:%u: expected KEY = VALUE", shown, lineno);
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
            snprintf(why, why_cap, "%s:%u: unknown setting '%.40s'", shown, lineno, k);
            rc = TF_E_BAD_VALUE;
            break;
        }
        uint64_t val;
        char what[160];
        if ((rc = parse_value(key, v, &val, what, sizeof what)) != TF_OK) {
            snprintf(why, why_cap, "%s:%u: %s", shown, lineno, what);
            break;
        }
        memcpy((char *)&next + key->offset, &val, sizeof val);
    }
    fclose(f);
    if (rc == TF_OK && next.close_delay_min_s > next.close_delay_max_s) {
        snprintf(why, why_cap, "%s: close_delay_min_s must not exceed close_delay_max_s", shown);
        rc = TF_E_BAD_VALUE;
    }
    if (rc == TF_OK)
        *cfg = next;
    return rc;
}
