/* SPDX-License-Identifier: MIT */
#include "vecjson.h"

#include <stdlib.h>
#include <string.h>

#include <sodium.h>

json_t *vec_hex(const uint8_t *p, size_t n)
{
    char *s = malloc(2 * n + 1);
    if (s == NULL)
        return NULL;
    sodium_bin2hex(s, 2 * n + 1, p, n);
    json_t *j = json_string(s);
    free(s);
    return j;
}

json_t *vec_hex_buf(const struct tf_proto_buf *b)
{
    return vec_hex(b->data, b->len);
}

int vec_unhex(const json_t *obj, const char *key, struct tf_proto_buf *out)
{
    const char *s = json_string_value(json_object_get(obj, key));
    if (s == NULL)
        return -1;
    size_t n = strlen(s);
    uint8_t *p = malloc(n / 2 + 1);
    if (p == NULL)
        return -1;
    size_t len;
    const char *end;
    if (sodium_hex2bin(p, n / 2 + 1, s, n, NULL, &len, &end) != 0 || end != s + n) {
        free(p);
        return -1;
    }
    out->data = p;
    out->len = len;
    return 0;
}
