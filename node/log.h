/* SPDX-License-Identifier: MIT */
/*
 * Logging for twofoldd: one line per event on stderr,
 *   2026-11-26T07:30:00Z info  ctl: client 3 connected
 * Only node/ logs.  Peer- or user-supplied text must go through
 * tf_node_log_escape before it is logged.
 */
#ifndef TF_NODE_LOG_H
#define TF_NODE_LOG_H

#include <stddef.h>

enum tf_node_log_level {
    TF_NODE_LOG_ERROR = 0,
    TF_NODE_LOG_WARN = 1,
    TF_NODE_LOG_INFO = 2,
    TF_NODE_LOG_DEBUG = 3,
};

/* Line buffering for the daemon (off by default: every line is written at
 * once).  When on, info and debug lines are kept in a buffer of at most
 * TF_NODE_LOG_BUFFER bytes and written by tf_node_log_flush, which twofoldd
 * calls once per loop turn before the loop blocks, or earlier when the
 * buffer would overflow; an error or warning line flushes at once, with
 * what was kept before it, in order.  Each write is of whole lines and at
 * most PIPE_BUF bytes, so lines stay whole on a pipe shared with other
 * writers.  What a kill -9 or a crash can lose is the current turn's info
 * lines.  An exit flushes (atexit). */
#define TF_NODE_LOG_BUFFER 4096
void tf_node_log_buffered(void);
void tf_node_log_flush(void);

/* Sets the most verbose level that is printed (default: info). */
void tf_node_log_set_level(enum tf_node_log_level level);

/* Parses "error", "warn", "info" or "debug"; -1 if unknown. */
int tf_node_log_parse_level(const char *s);

/* Logs one line.  fmt is a literal without a trailing newline. */
void tf_node_log(enum tf_node_log_level level, const char *subsystem, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Copies text (len bytes, not NUL-terminated) to out as printable ASCII:
 * control bytes and non-ASCII become \xNN, backslash becomes \\.  Truncates
 * with "..." to fit cap (>= 4).  Returns out. */
const char *tf_node_log_escape(const char *text, size_t len, char *out, size_t cap);

#endif
