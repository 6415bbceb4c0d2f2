/* SPDX-License-Identifier: MIT */
#include "cli/render.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "proto/ctl.h"

/* Labels of "label  value" listings are padded to this width. */
#define LABEL_WIDTH 15
/* Longest value of one field or cell; longer ones are cut. */
#define FIELD_MAX 8192
/* Widest TF_CLI_RENDER_LINE, "..." included: enough of a message to know it
 * by, while a table row that ends with it stays about 100 columns wide. */
#define LINE_COLS 60
/* TF_CLI_RENDER_SHORT_LINE, for tables with several texts (inbox). */
#define SHORT_LINE_COLS 30

/* A bounded string being appended to: always NUL-terminated, truncated at a
 * character boundary when full. */
struct sb {
    char *p;
    size_t cap; /* > 0 */
    size_t len;
    bool full; /* something did not fit: later appends are dropped too */
};

static void sb_init(struct sb *s, char *buf, size_t cap)
{
    s->p = buf;
    s->cap = cap;
    s->len = 0;
    s->full = false;
    buf[0] = '\0';
}

static void sb_addn(struct sb *s, const char *p, size_t n)
{
    if (s->full || n >= s->cap - s->len) {
        s->full = true;
        return;
    }
    memcpy(s->p + s->len, p, n);
    s->len += n;
    s->p[s->len] = '\0';
}

static void sb_add(struct sb *s, const char *p)
{
    sb_addn(s, p, strlen(p));
}

static void sb_fmt(struct sb *s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void sb_fmt(struct sb *s, const char *fmt, ...)
{
    char tmp[64];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(tmp, sizeof tmp, fmt, ap);
    va_end(ap);
    if (n > 0)
        sb_addn(s, tmp, strnlen(tmp, sizeof tmp));
}

/* The length of the valid UTF-8 sequence at p (n > 0 bytes left) with its
 * code point in *cp, or 0 if the bytes there are not valid UTF-8. */
static size_t utf8_next(const unsigned char *p, size_t n, uint32_t *cp)
{
    size_t len;
    uint32_t v, min;
    if (p[0] < 0x80) {
        *cp = p[0];
        return 1;
    }
    if (p[0] >= 0xC2 && p[0] <= 0xDF) {
        len = 2, v = p[0] & 0x1Fu, min = 0x80;
    } else if (p[0] >= 0xE0 && p[0] <= 0xEF) {
        len = 3, v = p[0] & 0x0Fu, min = 0x800;
    } else if (p[0] >= 0xF0 && p[0] <= 0xF4) {
        len = 4, v = p[0] & 0x07u, min = 0x10000;
    } else {
        return 0;
    }
    if (len > n)
        return 0;
    for (size_t i = 1; i < len; i++) {
        if ((p[i] & 0xC0) != 0x80)
            return 0;
        v = v << 6 | (p[i] & 0x3Fu);
    }
    if (v < min || v > 0x10FFFF || (v >= 0xD800 && v <= 0xDFFF))
        return 0;
    *cp = v;
    return len;
}

/* Characters that must not reach a terminal: C0 and C1 controls, DEL, and the
 * ones that reorder or break lines (bidi embeddings, overrides, isolates and
 * marks; line and paragraph separators). */
static bool is_unsafe(uint32_t cp)
{
    return cp < 0x20 || (cp >= 0x7F && cp <= 0x9F) || cp == 0x061C || cp == 0x200E ||
           cp == 0x200F || (cp >= 0x2028 && cp <= 0x202E) || (cp >= 0x2066 && cp <= 0x2069);
}

/* Appends p[0..n) with invalid UTF-8 replaced by '?', and, for a terminal,
 * unsafe characters too. */
static void sb_add_clean(struct sb *s, const char *p, size_t n, bool terminal)
{
    const unsigned char *u = (const unsigned char *)p;
    size_t i = 0;
    while (i < n) {
        uint32_t cp;
        size_t len = utf8_next(u + i, n - i, &cp);
        if (len == 0 || (terminal && is_unsafe(cp))) {
            sb_addn(s, "?", 1);
            i += len == 0 ? 1 : len;
            continue;
        }
        sb_addn(s, p + i, len);
        i += len;
    }
}

void tf_cli_render_clean(char *buf, size_t cap, const char *p, size_t n)
{
    struct sb s;
    sb_init(&s, buf, cap);
    sb_add_clean(&s, p, n, true);
}

/* Width in terminal columns, counted as code points: good enough for the
 * alphabets names are usually written in. */
static size_t width(const char *s)
{
    size_t w = 0;
    for (; *s != '\0'; s++)
        w += ((unsigned char)*s & 0xC0) != 0x80;
    return w;
}

/* The bytes of the first cols characters of s. */
static size_t prefix_len(const char *s, size_t cols)
{
    size_t i = 0;
    for (; s[i] != '\0' && cols > 0; cols--)
        for (i++; ((unsigned char)s[i] & 0xC0) == 0x80; i++)
            ;
    return i;
}

/* Appends the first line of p[0..n), cleaned and cut to LINE_COLS columns,
 * with "..." where anything was left out (more characters or more lines). */
static void sb_add_line(struct sb *s, const char *p, size_t n, size_t cols)
{
    char line[4 * LINE_COLS + 8];
    struct sb l;
    const char *nl = memchr(p, '\n', n);
    size_t len = nl != NULL ? (size_t)(nl - p) : n;
    bool more = len + 1 < n;
    if (len > 0 && p[len - 1] == '\r')
        len--;
    sb_init(&l, line, sizeof line);
    sb_add_clean(&l, p, len, true);
    if (!more && !l.full && width(line) <= cols) {
        sb_add(s, line);
        return;
    }
    sb_addn(s, line, prefix_len(line, cols - 3));
    sb_add(s, "...");
}

/* Appends every line of p[0..n), cleaned, the later ones on new lines
 * indented to follow a label of tf_cli_render_rows; line breaks at the end
 * are dropped. */
static void sb_add_para(struct sb *s, const char *p, size_t n)
{
    while (n > 0 && (p[n - 1] == '\n' || p[n - 1] == '\r'))
        n--;
    for (;;) {
        const char *nl = memchr(p, '\n', n);
        size_t len = nl != NULL ? (size_t)(nl - p) : n;
        sb_add_clean(s, p, len > 0 && p[len - 1] == '\r' ? len - 1 : len, true);
        if (nl == NULL)
            return;
        sb_fmt(s, "\n%*s", LABEL_WIDTH, "");
        p += len + 1;
        n -= len + 1;
    }
}

/* The stable name of a failure the CLI finds itself, by exit status. */
static const char *exit_name(int code)
{
    switch (code) {
    case TF_CLI_EXIT_USAGE:
        return "E_USAGE";
    case TF_CLI_EXIT_NODE:
        return "E_NODE";
    case TF_CLI_EXIT_LOCAL:
        return "E_LOCAL";
    default:
        return "E_FAILED";
    }
}

static int vfail(const struct tf_cli *cli, int code, bool json, const char *fmt, va_list ap)
    __attribute__((format(printf, 4, 0)));

static int vfail(const struct tf_cli *cli, int code, bool json, const char *fmt, va_list ap)
{
    char msg[1024], clean[1024];
    vsnprintf(msg, sizeof msg, fmt, ap);
    tf_cli_render_clean(clean, sizeof clean, msg, strlen(msg));
    /* Scripts get the failure on stdout as one JSON object (docs/twofold.1,
     * JSON OUTPUT); people read the line on stderr. */
    if (json && cli->json) {
        json_t *j = json_pack("{s:{s:s, s:s, s:i}}", "error", "name", exit_name(code), "message",
                              clean, "exit", code);
        (void)tf_cli_render_json_print(cli, j, true);
    }
    fflush(stdout);
    fprintf(stderr, "%s: %s\n", cli->cmd, clean);
    return code;
}

int tf_cli_render_fail(const struct tf_cli *cli, int code, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int rc = vfail(cli, code, true, fmt, ap);
    va_end(ap);
    return rc;
}

int tf_cli_render_fail_text(const struct tf_cli *cli, int code, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int rc = vfail(cli, code, false, fmt, ap);
    va_end(ap);
    return rc;
}

static void sb_duration(struct sb *s, uint64_t secs)
{
    unsigned long long v = secs;
    if (v < 60)
        sb_fmt(s, "%llu s", v);
    else if (v < 3600)
        sb_fmt(s, "%llu min", v / 60);
    else if (v < 86400)
        sb_fmt(s, "%llu h", v / 3600);
    else
        sb_fmt(s, "%llu %s", v / 86400, v / 86400 == 1 ? "day" : "days");
}

static void sb_ago(struct sb *s, uint64_t then, uint64_t now)
{
    uint64_t d = then > now ? then - now : now - then;
    if (d < 60) {
        sb_add(s, "just now");
    } else if (then > now) {
        sb_add(s, "in ");
        sb_duration(s, d);
    } else {
        sb_duration(s, d);
        sb_add(s, " ago");
    }
}

void tf_cli_render_ago(char *buf, size_t cap, uint64_t then, uint64_t now)
{
    struct sb s;
    sb_init(&s, buf, cap);
    sb_ago(&s, then, now);
}

static void sb_bytes(struct sb *s, uint64_t n)
{
    static const char *const units[] = {"KiB", "MiB", "GiB", "TiB"};
    if (n < 1024) {
        sb_fmt(s, "%llu B", (unsigned long long)n);
        return;
    }
    double v = (double)n / 1024.0;
    size_t u = 0;
    while (v >= 1024.0 && u + 1 < sizeof units / sizeof units[0]) {
        v /= 1024.0;
        u++;
    }
    sb_fmt(s, "%.1f %s", v, units[u]);
}

static uint64_t now_s(void)
{
    time_t t = time(NULL);
    return t > 0 ? (uint64_t)t : 0;
}

static uint64_t now_ms(void)
{
    struct timespec ts;
    if (clock_gettime(CLOCK_REALTIME, &ts) != 0 || ts.tv_sec < 0)
        return 0;
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* "now" once due_ms has passed, else "in 3 s" (rounded up). */
static void sb_due_ms(struct sb *s, uint64_t due_ms)
{
    uint64_t now = now_ms();
    if (due_ms <= now) {
        sb_add(s, "now");
        return;
    }
    sb_add(s, "in ");
    sb_duration(s, (due_ms - now + 999) / 1000);
}

/* A name a peer chose for itself: "\"bob\" tf1abcdefghi", quotes in it
 * escaped, the short id left out when id is not a string. */
static void sb_peer_name(struct sb *s, const msgpack_object_str *name, const msgpack_object *id)
{
    const char *p = name->ptr;
    size_t n = name->size;
    sb_add(s, "\"");
    for (const char *q; (q = memchr(p, '"', n)) != NULL; n -= (size_t)(q - p) + 1, p = q + 1) {
        sb_add_clean(s, p, (size_t)(q - p), true);
        sb_add(s, "\\\"");
    }
    sb_add_clean(s, p, n, true);
    sb_add(s, "\"");
    if (id != NULL && id->type == MSGPACK_OBJECT_STR) {
        sb_add(s, " ");
        sb_add_clean(s, id->via.str.ptr, id->via.str.size < 12 ? id->via.str.size : 12, true);
    }
}

void tf_cli_render_peer_name(char *buf, size_t cap, const msgpack_object *obj, const char *key)
{
    struct sb s;
    char key_name[64];
    snprintf(key_name, sizeof key_name, "%s_name", key);
    const msgpack_object *name = tf_proto_ctl_get(obj, key_name);
    if (name == NULL || name->type != MSGPACK_OBJECT_STR || name->via.str.size == 0)
        name = tf_proto_ctl_get(obj, "name");
    sb_init(&s, buf, cap);
    if (name == NULL || name->type != MSGPACK_OBJECT_STR || name->via.str.size == 0)
        sb_add(&s, "-");
    else
        sb_peer_name(&s, &name->via.str, tf_proto_ctl_get(obj, key));
}

/* An intro's side: "alice (accepted)". */
static void sb_party(struct sb *s, const msgpack_object *side)
{
    char who[256], state[64];
    tf_cli_render_field(who, sizeof who, side, "contact", TF_CLI_RENDER_CONTACT);
    tf_cli_render_field(state, sizeof state, side, "state", TF_CLI_RENDER_TEXT);
    sb_add(s, who);
    sb_add(s, " (");
    sb_add(s, state);
    sb_add(s, ")");
}

/* Formats v as kind; false if v has the wrong type for it. */
static bool sb_field(struct sb *s, const msgpack_object *v, enum tf_cli_render_kind kind)
{
    bool is_str = v->type == MSGPACK_OBJECT_STR;
    bool is_uint = v->type == MSGPACK_OBJECT_POSITIVE_INTEGER;
    switch (kind) {
    case TF_CLI_RENDER_TEXT:
        if (is_str)
            sb_add_clean(s, v->via.str.ptr, v->via.str.size, true);
        return is_str;
    case TF_CLI_RENDER_SHORT_ID:
    case TF_CLI_RENDER_CONTACT: /* without a name (see tf_cli_render_field) */
        if (is_str)
            sb_add_clean(s, v->via.str.ptr, v->via.str.size < 12 ? v->via.str.size : 12, true);
        return is_str;
    case TF_CLI_RENDER_LINE:
    case TF_CLI_RENDER_SHORT_LINE:
        if (is_str)
            sb_add_line(s, v->via.str.ptr, v->via.str.size,
                        kind == TF_CLI_RENDER_LINE ? LINE_COLS : SHORT_LINE_COLS);
        return is_str;
    case TF_CLI_RENDER_PARA:
        if (is_str)
            sb_add_para(s, v->via.str.ptr, v->via.str.size);
        return is_str;
    case TF_CLI_RENDER_PARTY:
        if (v->type == MSGPACK_OBJECT_MAP)
            sb_party(s, v);
        return v->type == MSGPACK_OBJECT_MAP;
    case TF_CLI_RENDER_LIST:
        if (v->type != MSGPACK_OBJECT_ARRAY)
            return false;
        for (uint32_t i = 0; i < v->via.array.size; i++) {
            const msgpack_object *e = &v->via.array.ptr[i];
            if (e->type != MSGPACK_OBJECT_STR)
                return false;
            if (i > 0)
                sb_add(s, ", ");
            sb_add_clean(s, e->via.str.ptr, e->via.str.size, true);
        }
        if (v->via.array.size == 0)
            sb_add(s, "-");
        return true;
    case TF_CLI_RENDER_UINT:
        if (is_uint)
            sb_fmt(s, "%llu", (unsigned long long)v->via.u64);
        return is_uint;
    case TF_CLI_RENDER_AGO:
        if (is_uint)
            sb_ago(s, v->via.u64, now_s());
        return is_uint;
    case TF_CLI_RENDER_DUE_MS:
        if (is_uint)
            sb_due_ms(s, v->via.u64);
        return is_uint;
    case TF_CLI_RENDER_DURATION:
        if (is_uint)
            sb_duration(s, v->via.u64);
        return is_uint;
    case TF_CLI_RENDER_BYTES:
        if (is_uint)
            sb_bytes(s, v->via.u64);
        return is_uint;
    case TF_CLI_RENDER_YESNO:
        if (v->type == MSGPACK_OBJECT_BOOLEAN)
            sb_add(s, v->via.boolean ? "yes" : "no");
        return v->type == MSGPACK_OBJECT_BOOLEAN;
    }
    return false;
}

void tf_cli_render_field(char *buf, size_t cap, const msgpack_object *obj, const char *key,
                         enum tf_cli_render_kind kind)
{
    struct sb s;
    char alt[4][64];
    sb_init(&s, buf, cap);
    if (kind == TF_CLI_RENDER_CONTACT) {
        /* The first of these that obj has names the contact for people: the
         * owner's alias as it is; the name the peer chose for themselves
         * quoted and followed by the short id, so that it never reads like an
         * alias (a stranger may call itself "bob"). */
        snprintf(alt[0], sizeof alt[0], "%s_alias", key);
        snprintf(alt[1], sizeof alt[1], "alias");
        snprintf(alt[2], sizeof alt[2], "%s_name", key);
        snprintf(alt[3], sizeof alt[3], "name");
        for (size_t i = 0; i < 4; i++) {
            const msgpack_object *name = tf_proto_ctl_get(obj, alt[i]);
            if (name == NULL || name->type != MSGPACK_OBJECT_STR || name->via.str.size == 0)
                continue;
            if (i >= 2) {
                tf_cli_render_peer_name(buf, cap, obj, key);
                return;
            }
            key = alt[i];
            kind = TF_CLI_RENDER_TEXT;
            break;
        }
    }
    const msgpack_object *v = tf_proto_ctl_get(obj, key);
    if (v == NULL || v->type == MSGPACK_OBJECT_NIL) {
        sb_add(&s, "-");
    } else if (!sb_field(&s, v, kind)) {
        sb_init(&s, buf, cap);
        sb_add(&s, "?");
    }
}

static void sb_value(struct sb *s, const msgpack_object *o)
{
    switch (o->type) {
    case MSGPACK_OBJECT_NIL:
        sb_add(s, "-");
        break;
    case MSGPACK_OBJECT_BOOLEAN:
        sb_add(s, o->via.boolean ? "true" : "false");
        break;
    case MSGPACK_OBJECT_POSITIVE_INTEGER:
        sb_fmt(s, "%llu", (unsigned long long)o->via.u64);
        break;
    case MSGPACK_OBJECT_NEGATIVE_INTEGER:
        sb_fmt(s, "%lld", (long long)o->via.i64);
        break;
    case MSGPACK_OBJECT_FLOAT32:
    case MSGPACK_OBJECT_FLOAT64:
        sb_fmt(s, "%g", o->via.f64);
        break;
    case MSGPACK_OBJECT_STR: {
        bool quote = o->via.str.size == 0 || memchr(o->via.str.ptr, ' ', o->via.str.size);
        if (quote)
            sb_add(s, "\"");
        sb_add_clean(s, o->via.str.ptr, o->via.str.size, true);
        if (quote)
            sb_add(s, "\"");
        break;
    }
    case MSGPACK_OBJECT_ARRAY:
        for (uint32_t i = 0; i < o->via.array.size; i++) {
            if (i > 0)
                sb_add(s, ",");
            sb_value(s, &o->via.array.ptr[i]);
        }
        break;
    case MSGPACK_OBJECT_MAP:
        sb_add(s, "{...}");
        break;
    case MSGPACK_OBJECT_BIN:
        sb_fmt(s, "<%u bytes>", o->via.bin.size);
        break;
    case MSGPACK_OBJECT_EXT:
        sb_add(s, "?");
        break;
    }
}

void tf_cli_render_value(char *buf, size_t cap, const msgpack_object *o)
{
    struct sb s;
    sb_init(&s, buf, cap);
    sb_value(&s, o);
}

void tf_cli_render_kv(const char *label, const char *value)
{
    printf("%-*s%s\n", LABEL_WIDTH, label, value);
}

void tf_cli_render_rows(const msgpack_object *obj, const struct tf_cli_render_row *rows, size_t n)
{
    char *buf = malloc(FIELD_MAX);
    if (buf == NULL)
        return;
    for (size_t i = 0; i < n; i++) {
        if (tf_proto_ctl_get(obj, rows[i].key) == NULL)
            continue;
        tf_cli_render_field(buf, FIELD_MAX, obj, rows[i].key, rows[i].kind);
        tf_cli_render_kv(rows[i].label, buf);
    }
    free(buf);
}

void tf_cli_render_table_init(struct tf_cli_render_table *t, size_t ncols,
                              const char *const *headers)
{
    memset(t, 0, sizeof *t);
    t->ncols = ncols;
    t->headers = headers;
}

static void table_take(struct tf_cli_render_table *t, char *cell)
{
    if (cell == NULL || t->oom) {
        t->oom = true;
        free(cell);
        return;
    }
    if (t->n == t->cap) {
        size_t cap = t->cap ? 2 * t->cap : 64;
        char **cells =
            cap > SIZE_MAX / sizeof *cells ? NULL : realloc(t->cells, cap * sizeof *cells);
        if (cells == NULL) {
            t->oom = true;
            free(cell);
            return;
        }
        t->cells = cells;
        t->cap = cap;
    }
    t->cells[t->n++] = cell;
}

void tf_cli_render_table_add(struct tf_cli_render_table *t, const char *text)
{
    char buf[FIELD_MAX];
    tf_cli_render_clean(buf, sizeof buf, text, strlen(text));
    table_take(t, strdup(buf));
}

void tf_cli_render_table_add_field(struct tf_cli_render_table *t, const msgpack_object *obj,
                                   const char *key, enum tf_cli_render_kind kind)
{
    char buf[FIELD_MAX];
    tf_cli_render_field(buf, sizeof buf, obj, key, kind);
    table_take(t, strdup(buf));
}

static void pad(size_t n)
{
    while (n-- > 0)
        putchar(' ');
}

int tf_cli_render_table_print(const struct tf_cli_render_table *t, const struct tf_cli *cli)
{
    if (t->oom)
        return tf_cli_render_fail(cli, TF_CLI_EXIT_LOCAL, "out of memory");
    size_t *w = calloc(t->ncols, sizeof *w);
    if (w == NULL)
        return tf_cli_render_fail(cli, TF_CLI_EXIT_LOCAL, "out of memory");
    for (size_t c = 0; c < t->ncols; c++)
        w[c] = width(t->headers[c]);
    for (size_t i = 0; i < t->n; i++) {
        size_t cw = width(t->cells[i]);
        if (cw > w[i % t->ncols])
            w[i % t->ncols] = cw;
    }
    for (size_t c = 0; c < t->ncols; c++) {
        printf("%s%s%s", cli->color ? "\033[1m" : "", t->headers[c], cli->color ? "\033[0m" : "");
        if (c + 1 < t->ncols)
            pad(w[c] - width(t->headers[c]) + 2);
    }
    putchar('\n');
    for (size_t i = 0; i < t->n; i++) {
        size_t c = i % t->ncols;
        fputs(t->cells[i], stdout);
        if (c + 1 < t->ncols)
            pad(w[c] - width(t->cells[i]) + 2);
        else
            putchar('\n');
    }
    free(w);
    return TF_CLI_EXIT_OK;
}

void tf_cli_render_table_deinit(struct tf_cli_render_table *t)
{
    for (size_t i = 0; i < t->n; i++)
        free(t->cells[i]);
    free(t->cells);
    memset(t, 0, sizeof *t);
}

int tf_cli_render_list(const struct tf_cli *cli, const msgpack_object_array *list,
                       const struct tf_cli_render_row *cols, size_t ncols)
{
    struct tf_cli_render_table t;
    const char **headers = calloc(ncols, sizeof *headers);
    if (headers == NULL)
        return tf_cli_render_fail(cli, TF_CLI_EXIT_LOCAL, "out of memory");
    for (size_t c = 0; c < ncols; c++)
        headers[c] = cols[c].label;
    tf_cli_render_table_init(&t, ncols, headers);
    for (uint32_t i = 0; i < list->size; i++)
        for (size_t c = 0; c < ncols; c++)
            tf_cli_render_table_add_field(&t, &list->ptr[i], cols[c].key, cols[c].kind);
    int rc = tf_cli_render_table_print(&t, cli);
    tf_cli_render_table_deinit(&t);
    free(headers);
    return rc;
}

/* A JSON string from bytes that should be UTF-8 but may not be: jansson
 * refuses invalid UTF-8, so invalid bytes become '?'. */
static json_t *json_text(const char *p, size_t n)
{
    json_t *j = json_stringn(p, n);
    if (j != NULL || n == SIZE_MAX)
        return j;
    char *fixed = malloc(n + 1);
    if (fixed == NULL)
        return NULL;
    struct sb s;
    sb_init(&s, fixed, n + 1);
    sb_add_clean(&s, p, n, false);
    j = json_stringn(fixed, s.len);
    free(fixed);
    return j;
}

static json_t *json_object_of(const msgpack_object_map *m)
{
    json_t *obj = json_object();
    for (uint32_t i = 0; obj != NULL && i < m->size; i++) {
        const msgpack_object *k = &m->ptr[i].key;
        /* tf_proto_ctl_unpack accepts only string keys. */
        json_t *key = k->type == MSGPACK_OBJECT_STR ? json_text(k->via.str.ptr, k->via.str.size)
                                                    : json_string("?");
        json_t *val = tf_cli_render_json(&m->ptr[i].val);
        if (key == NULL || val == NULL ||
            json_object_setn_new(obj, json_string_value(key), json_string_length(key), val) != 0) {
            if (key == NULL)
                json_decref(val);
            json_decref(obj);
            obj = NULL;
        }
        json_decref(key);
    }
    return obj;
}

json_t *tf_cli_render_json(const msgpack_object *o)
{
    switch (o->type) {
    case MSGPACK_OBJECT_NIL:
        return json_null();
    case MSGPACK_OBJECT_BOOLEAN:
        return json_boolean(o->via.boolean);
    case MSGPACK_OBJECT_POSITIVE_INTEGER:
        if (o->via.u64 > (uint64_t)INT64_MAX)
            return json_real((double)o->via.u64);
        return json_integer((json_int_t)o->via.u64);
    case MSGPACK_OBJECT_NEGATIVE_INTEGER:
        return json_integer((json_int_t)o->via.i64);
    case MSGPACK_OBJECT_FLOAT32:
    case MSGPACK_OBJECT_FLOAT64:
        return json_real(o->via.f64);
    case MSGPACK_OBJECT_STR:
        return json_text(o->via.str.ptr, o->via.str.size);
    case MSGPACK_OBJECT_ARRAY: {
        json_t *arr = json_array();
        for (uint32_t i = 0; arr != NULL && i < o->via.array.size; i++) {
            if (json_array_append_new(arr, tf_cli_render_json(&o->via.array.ptr[i])) != 0) {
                json_decref(arr);
                arr = NULL;
            }
        }
        return arr;
    }
    case MSGPACK_OBJECT_MAP:
        return json_object_of(&o->via.map);
    case MSGPACK_OBJECT_BIN: {
        /* Not used by the control protocol today; hex keeps it printable. */
        static const char hex[] = "0123456789abcdef";
        size_t n = o->via.bin.size;
        char *buf = malloc(2 * n + 1);
        if (buf == NULL)
            return NULL;
        for (size_t i = 0; i < n; i++) {
            buf[2 * i] = hex[(unsigned char)o->via.bin.ptr[i] >> 4];
            buf[2 * i + 1] = hex[(unsigned char)o->via.bin.ptr[i] & 15];
        }
        json_t *j = json_stringn(buf, 2 * n);
        free(buf);
        return j;
    }
    case MSGPACK_OBJECT_EXT:
        return json_null();
    }
    return json_null();
}

int tf_cli_render_json_print(const struct tf_cli *cli, json_t *j, bool one_line)
{
    if (j == NULL)
        return tf_cli_render_fail(cli, TF_CLI_EXIT_LOCAL, "out of memory");
    size_t flags = JSON_ENCODE_ANY | (one_line ? JSON_COMPACT : JSON_INDENT(2));
    int rc = json_dumpf(j, stdout, flags);
    json_decref(j);
    if (rc != 0 || putchar('\n') == EOF)
        return tf_cli_render_fail(cli, TF_CLI_EXIT_LOCAL, "cannot write the output");
    return TF_CLI_EXIT_OK;
}
