/* SPDX-License-Identifier: MIT */
#include "node/addr.h"

#include <stdio.h>
#include <string.h>
#include <strings.h>

int tf_node_addr_split(const char *addr, char host[static TF_NODE_ADDR_HOST_MAX + 1],
                       char port[static 6])
{
    size_t len = strlen(addr);
    if (!tf_proto_addr_is_valid((const uint8_t *)addr, len))
        return TF_E_BAD_VALUE;
    const char *colon = strrchr(addr, ':'); /* valid: there is one, the port is 1-5 digits */
    size_t hlen = (size_t)(colon - addr);
    const char *h = addr;
    if (h[0] == '[') {
        h++;
        hlen -= 2;
    }
    memcpy(host, h, hlen);
    host[hlen] = '\0';
    snprintf(port, 6, "%s", colon + 1);
    return TF_OK;
}

bool tf_node_addr_is_loopback(const char *addr)
{
    char host[TF_NODE_ADDR_HOST_MAX + 1], port[6];
    if (tf_node_addr_split(addr, host, port) != TF_OK)
        return false;
    size_t n = strlen(host);
    if (strcasecmp(host, "localhost") == 0 ||
        (n > 10 && strcasecmp(host + n - 10, ".localhost") == 0))
        return true;
    if (strcmp(host, "::1") == 0)
        return true;
    /* 127.0.0.0/8, written as a dotted quad. */
    unsigned a, b, c, d;
    char tail;
    return sscanf(host, "%u.%u.%u.%u%c", &a, &b, &c, &d, &tail) == 4 && a == 127;
}

bool tf_node_addr_is_any(const char *addr)
{
    char host[TF_NODE_ADDR_HOST_MAX + 1], port[6];
    if (tf_node_addr_split(addr, host, port) != TF_OK)
        return false;
    return strcmp(host, "0.0.0.0") == 0 || strcmp(host, "::") == 0;
}

int tf_node_addr_check_listen(const char *listen, char *why, size_t why_cap)
{
    if (!tf_proto_addr_is_valid((const uint8_t *)listen, strlen(listen))) {
        snprintf(why, why_cap,
                 "listen address '%.200s' is not HOST:PORT (HOST a name, an IPv4 address or "
                 "[an IPv6 address]; PORT 1-65535)",
                 listen);
        return TF_E_BAD_VALUE;
    }
    return TF_OK;
}

int tf_node_addr_check_advertise(const char *const *addrs, size_t n, const char *listen, char *why,
                                 size_t why_cap, char *warn, size_t warn_cap)
{
    if (warn != NULL && warn_cap > 0)
        warn[0] = '\0';
    if (n < 1 || n > TF_PROTO_CARD_ADDRS_MAX) {
        snprintf(why, why_cap, "advertise 1 to %d addresses", TF_PROTO_CARD_ADDRS_MAX);
        return TF_E_BAD_VALUE;
    }
    const char *public = NULL;
    for (size_t i = 0; i < n; i++) {
        if (!tf_proto_addr_is_valid((const uint8_t *)addrs[i], strlen(addrs[i]))) {
            snprintf(why, why_cap,
                     "advertise address '%.200s' is not HOST:PORT (HOST a name, an IPv4 address "
                     "or [an IPv6 address]; PORT 1-65535)",
                     addrs[i]);
            return TF_E_BAD_VALUE;
        }
        if (tf_node_addr_is_any(addrs[i])) {
            snprintf(why, why_cap,
                     "'%.200s' is not an address others can reach: advertise a name or address "
                     "of this machine",
                     addrs[i]);
            return TF_E_BAD_VALUE;
        }
        if (public == NULL && !tf_node_addr_is_loopback(addrs[i]))
        public = addrs[i];
    }
    if (warn != NULL && public != NULL && listen != NULL && tf_node_addr_is_loopback(listen))
        snprintf(warn, warn_cap,
                 "your card advertises %.200s but the node listens on %.200s, a loopback "
                 "address: other machines cannot connect (listen on 0.0.0.0:PORT, [::]:PORT or "
                 "this machine's address)",
                 public, listen);
    return TF_OK;
}
