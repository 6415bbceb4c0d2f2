/* SPDX-License-Identifier: MIT */
#include "node/ping.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>
#include <uv.h>

#include "node/ctl.h"
#include "node/net.h"
#include "node/node.h"
#include "proto/link.h"

struct tf_node_ping {
    uv_timer_t timer;
    struct tf_node_ping *next;
    struct tf_node *node;
    struct tf_node_ctl_deferred *reply;
    uint8_t pk[32];
    char name[TF_NODE_ALIAS_MAX + TF_PROTO_CARD_NAME_MAX + 1];
    uint64_t nonce;
    uint64_t sent_us;
    bool sent;
    char addr[TF_PROTO_CARD_ADDR_MAX + 1];
};

static uint64_t now_us(void)
{
    uv_timeval64_t tv;
    if (uv_gettimeofday(&tv) != 0)
        return 0;
    return (uint64_t)tv.tv_sec * 1000000u + (uint64_t)tv.tv_usec;
}

static void free_cb(uv_handle_t *h)
{
    free(h->data);
}

/* Unlinks p, sends its reply and closes its timer (which frees it). */
static void finish(struct tf_node_ping *p, int rc, const struct tf_proto_buf *result,
                   const char *why)
{
    struct tf_node *node = p->node;
    for (struct tf_node_ping **pp = &node->pings; *pp != NULL; pp = &(*pp)->next) {
        if (*pp == p) {
            *pp = p->next;
            break;
        }
    }
    tf_node_ctl_complete(p->reply, rc, result, why);
    p->reply = NULL;
    uv_close((uv_handle_t *)&p->timer, free_cb);
}

static void timeout_cb(uv_timer_t *t)
{
    struct tf_node_ping *p = t->data;
    char why[256];
    snprintf(why, sizeof why, "no answer from %s within %d s", p->name,
             TF_NODE_PING_TIMEOUT_MS / 1000);
    finish(p, -ETIMEDOUT, NULL, why);
}

static void send_ping(struct tf_node_ping *p, struct tf_node_link *link)
{
    struct tf_proto_buf msg;
    p->nonce = ((uint64_t)randombytes_random() << 32 | randombytes_random()) | 1u;
    int rc = tf_proto_link_ping(TF_PROTO_LINK_PING, p->nonce, &msg);
    if (rc == TF_OK) {
        rc = tf_node_net_send(link, &msg, false);
        tf_proto_buf_free(&msg);
    }
    if (rc != TF_OK) {
        finish(p, rc, NULL, "cannot send the ping");
        return;
    }
    p->sent = true;
    p->sent_us = now_us();
    snprintf(p->addr, sizeof p->addr, "%s", tf_node_link_addr(link));
}

int tf_node_ping_start(struct tf_node *node, struct tf_node_ctl_request *req,
                       const struct tf_node_contact *c, char *why, size_t why_cap)
{
    if (c->fields.n_addrs == 0) {
        snprintf(why, why_cap, "the card of %s has no address to reach it at",
                 c->alias[0] ? c->alias : "this contact");
        return TF_E_NOT_FOUND;
    }
    struct tf_node_ping *p = calloc(1, sizeof *p);
    if (p == NULL)
        return TF_E_NOMEM;
    if ((p->reply = tf_node_ctl_defer(req)) == NULL) {
        free(p);
        return TF_E_NOMEM;
    }
    p->node = node;
    memcpy(p->pk, c->pk, 32);
    if (c->alias[0])
        snprintf(p->name, sizeof p->name, "%s", c->alias);
    else
        snprintf(p->name, sizeof p->name, "%.*s", (int)c->fields.name.len,
                 (const char *)c->fields.name.ptr);
    uv_timer_init(node->loop, &p->timer);
    p->timer.data = p;
    uv_timer_start(&p->timer, timeout_cb, TF_NODE_PING_TIMEOUT_MS, 0);
    p->next = node->pings;
    node->pings = p;
    struct tf_node_link *link = tf_node_net_find(node->net, c->pk);
    if (link != NULL)
        send_ping(p, link);
    else
        tf_node_net_dial(node->net, c->pk, c->fields.addrs, c->fields.n_addrs);
    return TF_E_AGAIN;
}

void tf_node_ping_link_up(struct tf_node *node, struct tf_node_link *link)
{
    struct tf_node_ping *p = node->pings;
    while (p != NULL) {
        struct tf_node_ping *next = p->next; /* send_ping may finish p */
        if (!p->sent && sodium_memcmp(p->pk, tf_node_link_peer(link), 32) == 0)
            send_ping(p, link);
        p = next;
    }
}

void tf_node_ping_dial_failed(struct tf_node *node, const uint8_t pk[32], int err, const char *addr)
{
    struct tf_node_ping *p = node->pings;
    while (p != NULL) {
        struct tf_node_ping *next = p->next;
        if (!p->sent && sodium_memcmp(p->pk, pk, 32) == 0) {
            char why[512];
            if (err == TF_E_KEY_MISMATCH)
                snprintf(why, sizeof why, "the node at %s is not %s", addr, p->name);
            else if (err == -ECONNREFUSED)
                snprintf(why, sizeof why, "connection refused by %s (is %s's node running?)", addr,
                         p->name);
            else if (err == -ETIMEDOUT)
                snprintf(why, sizeof why, "timed out reaching %s at %s", p->name, addr);
            else
                snprintf(why, sizeof why, "cannot reach %s at %s: %s", p->name, addr,
                         tf_strerror(err));
            finish(p, err, NULL, why);
        }
        p = next;
    }
}

void tf_node_ping_pong(struct tf_node *node, struct tf_node_link *link, uint64_t nonce)
{
    for (struct tf_node_ping *p = node->pings; p != NULL; p = p->next) {
        if (!p->sent || p->nonce != nonce || sodium_memcmp(p->pk, tf_node_link_peer(link), 32) != 0)
            continue;
        uint64_t rtt = now_us() - p->sent_us;
        char tid[TF_PROTO_TEXT_ID_SIZE];
        tf_proto_text_id_encode(p->pk, tid);
        struct tf_proto_mp_writer w;
        struct tf_proto_buf result;
        tf_proto_mp_writer_init(&w);
        tf_proto_mp_write_map(&w, 4);
        tf_proto_mp_write_cstr(&w, "id");
        tf_proto_mp_write_cstr(&w, tid);
        tf_proto_mp_write_cstr(&w, "addr");
        tf_proto_mp_write_cstr(&w, p->addr);
        tf_proto_mp_write_cstr(&w, "rtt_ms");
        tf_proto_mp_write_uint(&w, (rtt + 500) / 1000);
        tf_proto_mp_write_cstr(&w, "rtt_us");
        tf_proto_mp_write_uint(&w, rtt);
        int rc = tf_proto_mp_writer_finish(&w, &result);
        finish(p, rc, &result, "out of memory");
        tf_proto_buf_free(&result);
        return;
    }
}

void tf_node_ping_stop_all(struct tf_node *node)
{
    while (node->pings != NULL)
        finish(node->pings, TF_E_BAD_STATE, NULL, "the node is shutting down");
}
