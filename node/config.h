/* SPDX-License-Identifier: MIT */
/*
 * Node settings with safe defaults, overridable in <home>/config:
 *
 *   # comment
 *   handshake_timeout_ms = 10000
 *
 * One `key = value` per line, values are unsigned integers.  An unknown key,
 * a bad value or a line over TF_NODE_CONFIG_LINE_MAX bytes (newline excluded)
 * refuses the whole file with "config:LINE: what is wrong".
 */
#ifndef TF_NODE_CONFIG_H
#define TF_NODE_CONFIG_H

#include <stddef.h>
#include <stdint.h>

#include "proto/err.h"

#define TF_NODE_HOME_CONFIG "config"
#define TF_NODE_CONFIG_LINE_MAX 510

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
    /* Events and counters (issue 12, retention): the event log keeps at most
     * events_max events and none older than events_retention_s, the newest
     * excepted (node/node.c collects them at each append and on a timer). */
    uint64_t events_max;
    uint64_t events_retention_s;
    /* Links (node/net.c): per-link memory, connection and dial budgets,
     * dead links.  Defaults and reasons in tf_node_config_defaults. */
    uint64_t max_link_queue_bytes;    /* bytes queued for writing on one link */
    uint64_t ping_rate_per_s;         /* PINGs one link may send, sustained */
    uint64_t ping_burst;              /* ... and in a burst */
    uint64_t max_inbound_links;       /* links the peer opened (handshakes included) */
    uint64_t max_outbound_links;      /* links this node opened */
    uint64_t max_inbound_handshakes;  /* inbound links still in the handshake */
    uint64_t max_links_per_identity;  /* links up with one peer key */
    uint64_t accept_rate_per_s;       /* inbound connections accepted, all addresses */
    uint64_t accept_rate_per_prefix;  /* ... from one IPv4 address or IPv6 /64, per second */
    uint64_t stranger_idle_ms;        /* a stranger's link with no envelope this long is closed */
    uint64_t max_dials;               /* dials in progress */
    uint64_t max_stranger_dials;      /* ... of them to strangers */
    uint64_t max_dials_per_addr;      /* ... to one card address */
    uint64_t stranger_dials_per_addr; /* dials to one stranger card address per window */
    uint64_t stranger_dial_window_s;
    uint64_t dead_link_ms; /* a PING without PONG or an envelope without ACK this long */
    /* delivery (node/delivery.c; docs/THREAT-MODEL.md budgets) */
    uint64_t outbox_max_per_peer;  /* envelopes queued for one recipient */
    uint64_t outbox_max_strangers; /* envelopes queued for non-contacts, together */
    uint64_t seen_max;             /* msg ids remembered (the seen table) */
    uint64_t stranger_dials_max;   /* dials for one envelope to a non-contact */
    /* intro (node/intro.c, docs/CONTROL.md "Settings"): budgets, retention,
     * close delays and what a policy decline says. */
    uint64_t max_intros_per_connector; /* inbox records and tombstones one connector caused */
    uint64_t max_stranger_intros;      /* the same for all non-contacts together */
    uint64_t retention_s;              /* finished intros are collected after this */
    uint64_t close_delay_min_s;        /* a close caused by a decline or a withdrawal */
    uint64_t close_delay_max_s;        /*   leaves after a delay uniform in [min, max] */
    uint64_t policy_decline_reason;    /* 1: a policy decline names its rule to the connector */
    /* messages (node/delivery.c): notes received from contacts are stored up
     * to these budgets (beyond, a new note gets no ACK and its sender retries);
     * notes, received or sent and finished, older than the retention are
     * collected. */
    uint64_t messages_max_per_contact; /* received notes stored from one contact */
    uint64_t messages_max;             /* received notes stored in all */
    uint64_t messages_retention_s;     /* 0: keep notes until the owner removes them */
    /* requests (node/request.c, docs/CONTROL.md "Settings"): what askers can
     * make a connector keep, and how long closed requests stay. */
    uint64_t max_open_requests_per_asker; /* open requests received from one asker */
    uint64_t max_requests_per_asker;      /* records (open or closed) kept from one asker */
    uint64_t max_stranger_requests;       /* records kept from non-contacts, together */
    uint64_t request_retention_s;         /* closed requests are collected after this */
    /* powerloss (node/node.c): the node warns when the store's file system
     * has less free space than this, before it is full. */
    uint64_t disk_warn_free_bytes;
    /* mailbox (node/mailbox.c, docs/PROTOCOL.md "Mailboxes"): what a node
     * holds for the tenants its owner hosts, and how a node behind NAT
     * runs. */
    uint64_t no_listen;                  /* 1: open no listening socket at all */
    uint64_t mailbox_tenant_bytes;       /* envelope bytes held for one tenant (default) */
    uint64_t mailbox_tenant_envelopes;   /* envelopes held for one tenant */
    uint64_t mailbox_uploader_envelopes; /* ... of them from one uploader */
    uint64_t mailbox_ttl_max_s;          /* an envelope is held at most this long */
    uint64_t mailbox_retry_max_ms;       /* a tenant redials its mailbox at least this often */
    /* direct (issue 17, node/delivery.c): 1 lists the "direct" feature in
     * HELLO, so that envelopes to a link's peer itself go without seal and
     * envelope signature when the peer lists it too; 0 sends and takes
     * sealed envelopes only, as a node without the feature does. */
    uint64_t direct_envelopes;
    /* ackdefer (issue 17, node/delivery.c): an outbox entry acknowledged
     * by an ACK is deleted in the next write transaction the node commits
     * for another reason, or at most ack_defer_ms after the ACK; at most
     * ack_defer_max deletes wait so (beyond, they are written at once, as
     * with 0). */
    uint64_t ack_defer_max;
    uint64_t ack_defer_ms;
    /* waitcommit (issue 17, node/node.c): a batch whose every change said
     * it may wait (a reply that leaves its intro waiting for the other one:
     * it sends nothing) is committed with the next batch that must not, or
     * commit_wait_ms after its first change; 0 commits every batch at the
     * end of its loop turn. */
    uint64_t commit_wait_ms;
};

/* The defaults. */
void tf_node_config_defaults(struct tf_node_config *cfg);

/* Loads <home>/config over the defaults in *cfg.  A missing file is TF_OK.  On
 * error, *cfg is unchanged and why says where and what. */
TF_MUST_CHECK int tf_node_config_load(const char *home, struct tf_node_config *cfg, char *why,
                                      size_t why_cap);

/* The same for the file at path (messages name it shown). */
TF_MUST_CHECK int tf_node_config_load_file(const char *path, const char *shown,
                                           struct tf_node_config *cfg, char *why, size_t why_cap);

/* The settings by index, 0 .. tf_node_config_n_keys() - 1, for `twofold
 * config`: the name (NULL past the end), the index of a name (TF_E_NOT_FOUND
 * if unknown), the value in cfg, and whether value (text) is one the node
 * accepts for it (TF_E_BAD_VALUE with why saying the range). */
size_t tf_node_config_n_keys(void);
const char *tf_node_config_key_name(size_t i);
TF_MUST_CHECK int tf_node_config_key_find(const char *name, size_t *i);
uint64_t tf_node_config_key_value(const struct tf_node_config *cfg, size_t i);
TF_MUST_CHECK int tf_node_config_key_check(size_t i, const char *value, char *why, size_t why_cap);

#endif
