/* SPDX-License-Identifier: MIT */
/*
 * Readiness and stop notices to a service manager, as systemd's sd_notify(3)
 * sends them (Type=notify units), without libsystemd: one datagram of
 * newline-separated VAR=VALUE lines to the Unix datagram socket named by
 * $NOTIFY_SOCKET, a path or, when it starts with '@', an abstract address.
 *
 *   READY=1      the control socket (and the peer listener) accept
 *   RELOADING=1  SIGHUP: the configuration and policy are being read again
 *   STOPPING=1   an orderly stop has begun
 *   STATUS=...   a line for `systemctl status`
 *
 * Without $NOTIFY_SOCKET nothing is sent.  A notice that cannot be sent is
 * logged once per call (warn) and otherwise ignored: the node serves anyway.
 */
#ifndef TF_NODE_NOTIFY_H
#define TF_NODE_NOTIFY_H

#include "proto/err.h"

/* Sends state (lines without a trailing newline, e.g. "READY=1\nSTATUS=ready")
 * to $NOTIFY_SOCKET.  Returns 0 if sent or if there is no $NOTIFY_SOCKET,
 * -ENAMETOOLONG if its address does not fit a Unix socket, -EAFNOSUPPORT if
 * it is not a path or '@' address, or -errno from socket(2)/sendto(2).
 * Never blocks: the socket is non-blocking, and a full queue is an error.
 * Callers may ignore the result: the failure is logged here. */
int tf_node_notify(const char *state);

#endif
