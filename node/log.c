/* SPDX-License-Identifier: MIT */
#include "node/log.h"

#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

_Static_assert(TF_NODE_LOG_BUFFER <= PIPE_BUF, "a flush must be one atomic pipe write");

/* The only mutable globals besides the signal flag: the level and the
 * buffering mode, set once at startup, and the buffer of kept lines. */
static enum tf_node_log_level max_level = TF_NODE_LOG_INFO;
static bool buffered;
static char kept[TF_NODE_LOG_BUFFER];
static size_t kept_len;

/* Writes all of buf to stderr; a failed write drops the rest (there is
 * nowhere to report it). */
static void write_all(const char *buf, size_t len)
{
    while (len > 0) {
        ssize_t n = write(STDERR_FILENO, buf, len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return;
        buf += n, len -= (size_t)n;
    }
}

void tf_node_log_flush(void)
{
    write_all(kept, kept_len);
    kept_len = 0;
}

void tf_node_log_buffered(void)
{
    if (!buffered && atexit(tf_node_log_flush) == 0)
        buffered = true;
}

static const char *const LEVEL_NAMES[] = {"error", "warn", "info", "debug"};

void tf_node_log_set_level(enum tf_node_log_level level)
{
    max_level = level;
}

int tf_node_log_parse_level(const char *s)
{
    for (int i = 0; i <= TF_NODE_LOG_DEBUG; i++)
        if (strcmp(s, LEVEL_NAMES[i]) == 0)
            return i;
    return -1;
}

void tf_node_log(enum tf_node_log_level level, const char *subsystem, const char *fmt, ...)
{
    if (level > max_level)
        return;
    char stamp[32];
    time_t now = time(NULL);
    struct tm tm;
    gmtime_r(&now, &tm);
    strftime(stamp, sizeof stamp, "%Y-%m-%dT%H:%M:%SZ", &tm);
    char line[2048];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    char out[sizeof line + 64];
    _Static_assert(sizeof out <= TF_NODE_LOG_BUFFER, "a line always fits the empty buffer");
    int n =
        snprintf(out, sizeof out, "%s %-5s %s: %s\n", stamp, LEVEL_NAMES[level], subsystem, line);
    if (n < 0)
        return;
    size_t len = (size_t)n < sizeof out ? (size_t)n : sizeof out - 1;
    if (len == sizeof out - 1)
        out[len - 1] = '\n'; /* truncated: still one whole line */
    if (!buffered) {
        /* One write per line keeps concurrent writers' lines whole. */
        write_all(out, len);
        return;
    }
    if (kept_len + len > sizeof kept)
        tf_node_log_flush();
    memcpy(kept + kept_len, out, len);
    kept_len += len;
    if (level <= TF_NODE_LOG_WARN)
        tf_node_log_flush();
}

const char *tf_node_log_escape(const char *text, size_t len, char *out, size_t cap)
{
    static const char hex[] = "0123456789abcdef";
    size_t o = 0;
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)text[i];
        size_t need = (c >= 0x20 && c < 0x7f && c != '\\') ? 1 : (c == '\\' ? 2 : 4);
        if (o + need + 4 > cap) {
            memcpy(out + o, "...", 3);
            o += 3;
            break;
        }
        if (need == 1) {
            out[o++] = (char)c;
        } else if (need == 2) {
            out[o++] = '\\';
            out[o++] = '\\';
        } else {
            out[o++] = '\\';
            out[o++] = 'x';
            out[o++] = hex[c >> 4];
            out[o++] = hex[c & 0x0f];
        }
    }
    out[o] = '\0';
    return out;
}
