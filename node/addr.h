/* SPDX-License-Identifier: MIT */
/*
 * Addresses as a person writes them (`twofold init --listen`, `advertise`,
 * card addresses): HOST:PORT where HOST is a DNS name, an IPv4 address or a
 * bracketed IPv6 address ([::1]:7451).  The rules here are the node's; the
 * CLI checks `init` and `config set` with the same functions.
 *
 * Names are resolved when used, never stored resolved: the listener resolves
 * its name at each start, and each dial resolves the card address afresh and
 * tries every address returned (node/net.c).
 */
#ifndef TF_NODE_ADDR_H
#define TF_NODE_ADDR_H

#include <stdbool.h>
#include <stddef.h>

#include "proto/card.h"
#include "proto/err.h"

#define TF_NODE_ADDR_HOST_MAX TF_PROTO_CARD_ADDR_MAX

/* Splits "host:port" (tf_proto_addr_is_valid) at its last colon, without the
 * brackets of an IPv6 host.  TF_E_BAD_VALUE if addr is not a valid address. */
TF_MUST_CHECK int tf_node_addr_split(const char *addr, char host[static TF_NODE_ADDR_HOST_MAX + 1],
                                     char port[static 6]);

/* True if addr's host is a loopback name or address: localhost (or a name
 * under .localhost), 127.0.0.0/8 or ::1.  Names are not resolved. */
bool tf_node_addr_is_loopback(const char *addr);

/* True if addr's host is the unspecified address (0.0.0.0 or ::): fine to
 * listen on, not an address others can reach. */
bool tf_node_addr_is_any(const char *addr);

/* The node's rule for a listen address: valid HOST:PORT.  why gets a line
 * naming the address and saying what is wrong. */
TF_MUST_CHECK int tf_node_addr_check_listen(const char *listen, char *why, size_t why_cap);

/* The node's rule for advertised (card) addresses: each valid HOST:PORT and
 * not the unspecified address; 1 to TF_PROTO_CARD_ADDRS_MAX of them.  When
 * they are fine but listen is loopback and an advertised address is not,
 * warn (if not NULL) gets a line saying others cannot reach the node (else
 * warn[0] is NUL). */
TF_MUST_CHECK int tf_node_addr_check_advertise(const char *const *addrs, size_t n,
                                               const char *listen, char *why, size_t why_cap,
                                               char *warn, size_t warn_cap);

#endif
