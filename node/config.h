/* SPDX-License-Identifier: MIT */
/*
 * Node settings with safe defaults, overridable in <home>/config:
 *
 *   # comment
 *   handshake_timeout_ms = 10000
 *
 * One `key = value` per line, values are unsigned integers.  An unknown key
 * or a bad value refuses the whole file with "config:LINE: what is wrong".
 */
#ifndef TF_NODE_CONFIG_H
#define TF_NODE_CONFIG_H

#include <stddef.h>
#include <stdint.h>

#include "proto/err.h"

#define TF_NODE_HOME_CONFIG "config"

struct tf_node_config {
    uint64_t handshake_timeout_ms; /* TCP connect + Noise handshake + HELLO */
    uint64_t idle_timeout_ms;      /* a link that hears nothing for this long is closed */
    uint64_t max_frame;            /* largest frame accepted after the handshake */
    uint64_t max_handshake_frame;  /* largest frame from an unauthenticated peer */
    uint64_t max_connections;      /* links in all */
    uint64_t max_connections_per_ip;
    uint64_t max_in_flight;             /* unacknowledged envelopes sent on one link */
    uint64_t note_ttl_s;                /* how long a note is retried */
    uint64_t retry_max_ms;              /* backoff cap */
    uint64_t max_pending_per_connector; /* open proposals one connector may have with us */
    /* intro (node/intro.c, docs/CONTROL.md "Settings"): budgets, retention,
     * close delays and what a policy decline says. */
    uint64_t max_intros_per_connector; /* inbox records and tombstones one connector caused */
    uint64_t max_stranger_intros;      /* the same for all non-contacts together */
    uint64_t retention_s;              /* finished intros are collected after this */
    uint64_t close_delay_min_s;        /* a close caused by a decline or a withdrawal */
    uint64_t close_delay_max_s;        /*   leaves after a delay uniform in [min, max] */
    uint64_t policy_decline_reason;    /* 1: a policy decline names its rule to the connector */
};

/* The defaults. */
void tf_node_config_defaults(struct tf_node_config *cfg);

/* Loads <home>/config over the defaults in *cfg.  A missing file is TF_OK.  On
 * error, *cfg is unchanged and why says where and what. */
TF_MUST_CHECK int tf_node_config_load(const char *home, struct tf_node_config *cfg, char *why,
                                      size_t why_cap);

#endif
