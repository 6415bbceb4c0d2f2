/* SPDX-License-Identifier: MIT */
#include "node/log.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

/* The only mutable global besides the signal flag: set once at startup. */
static enum tf_node_log_level max_level = TF_NODE_LOG_INFO;

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
    /* One fprintf per line keeps concurrent writers' lines whole. */
    fprintf(stderr, "%s %-5s %s: %s\n", stamp, LEVEL_NAMES[level], subsystem, line);
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
