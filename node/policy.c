/* SPDX-License-Identifier: MIT */
#include "node/policy.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <sodium.h>

#include "node/contact.h"
#include "node/internal.h"
#include "node/log.h"
#include "node/node.h"
#include "node/request.h" /* requests */
#include "node/store.h"
#include "proto/ctl.h"

#define WHY(...) snprintf(why, why_cap, __VA_ARGS__)
#define POLICY_FILE_MAX (1024 * 1024)

/* Reads the whole file (at most POLICY_FILE_MAX bytes); -ENOENT if absent. */
static int read_file(const char *path, struct tf_proto_buf *out)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -errno;
    struct stat sb;
    int rc = 0;
    if (fstat(fd, &sb) != 0)
        rc = -errno;
    else if (!S_ISREG(sb.st_mode))
        rc = -EINVAL;
    else if (sb.st_size > POLICY_FILE_MAX)
        rc = TF_E_TOO_LONG;
    uint8_t *p = rc == 0 ? malloc((size_t)sb.st_size + 1) : NULL;
    if (rc == 0 && p == NULL)
        rc = TF_E_NOMEM;
    size_t got = 0;
    while (rc == 0 && got < (size_t)sb.st_size) {
        ssize_t r = read(fd, p + got, (size_t)sb.st_size - got);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            rc = r < 0 ? -errno : TF_E_TRUNCATED;
        else
            got += (size_t)r;
    }
    close(fd);
    if (rc != 0) {
        free(p);
        return rc;
    }
    out->data = p;
    out->len = got;
    return 0;
}

int tf_node_policy_load(struct tf_node *node, char *why, size_t why_cap)
{
    char path[TF_NODE_PATH_MAX];
    struct tf_proto_buf text = {0};
    int rc = tf_node_home_path(node->home, TF_NODE_HOME_POLICY, path, sizeof path);
    if (rc != 0)
        return rc;
    rc = read_file(path, &text);
    if (rc == -ENOENT) {
        /* No file: every proposal is put to the owner. */
        tf_proto_policy_free(node->policy);
        node->policy = NULL;
        return TF_OK;
    }
    if (rc != 0) {
        WHY("%s: %s", path, tf_strerror(rc));
        return rc;
    }
    struct tf_proto_policy *p = NULL;
    struct tf_proto_policy_error err;
    rc = tf_proto_policy_parse((const char *)text.data, text.len, path, &p, &err);
    tf_proto_buf_free(&text);
    if (rc != TF_OK) {
        WHY("%s", err.text);
        return rc;
    }
    tf_proto_policy_free(node->policy);
    node->policy = p;
    return TF_OK;
}

void tf_node_policy_free(struct tf_node *node)
{
    tf_proto_policy_free(node->policy);
    node->policy = NULL;
}

/* Counters: policy_hits keys are rule key (16) || u64be(time) || 8 random
 * bytes, values the connector's key. */
struct count_walk {
    const uint8_t *rule_key;
    const uint8_t *connector; /* NULL: all */
    uint64_t n;
};

static int count_cb(const uint8_t *key, size_t klen, const uint8_t *val, size_t vlen, void *arg)
{
    struct count_walk *c = arg;
    if (klen != TF_PROTO_POLICY_KEY_LEN + 16 ||
        memcmp(key, c->rule_key, TF_PROTO_POLICY_KEY_LEN) != 0)
        return 1; /* past this rule's entries */
    if (c->connector == NULL || (vlen == 32 && memcmp(val, c->connector, 32) == 0))
        c->n++;
    return 0;
}

static int count_hits(void *ctx, const struct tf_proto_policy_count_query *q, uint64_t *count)
{
    struct tf_node *node = ctx;
    uint8_t from[TF_PROTO_POLICY_KEY_LEN + 8];
    memcpy(from, q->rule_key, TF_PROTO_POLICY_KEY_LEN);
    for (int i = 0; i < 8; i++)
        from[TF_PROTO_POLICY_KEY_LEN + i] = (uint8_t)((q->since + 1) >> (56 - 8 * i));
    struct count_walk c = {q->rule_key, q->connector_pk, 0};
    int rc = tf_node_store_kv_foreach_from(node->store, TF_NODE_STORE_POLICY_HITS, from,
                                           sizeof from, count_cb, &c);
    if (rc != TF_OK && rc != 1)
        return rc;
    *count = c.n;
    return TF_OK;
}

/* Finds the counters to collect (see tf_node_policy_collect), up to cap. */
struct collect_walk {
    const struct tf_proto_policy *policy; /* NULL: no rules, every counter goes */
    uint64_t now;
    uint8_t (*keys)[TF_PROTO_POLICY_KEY_LEN + 16];
    size_t n, cap;
};

static int collect_cb(const uint8_t *key, size_t klen, const uint8_t *val, size_t vlen, void *arg)
{
    struct collect_walk *c = arg;
    (void)val;
    (void)vlen;
    bool expired = true;
    /* node/policy.c writes no other keys; a stranger one is left alone. */
    if (klen != sizeof c->keys[0])
        return 0;
    if (c->policy != NULL) {
        uint64_t t = 0;
        for (int i = 0; i < 8; i++)
            t = t << 8 | key[TF_PROTO_POLICY_KEY_LEN + i];
        for (size_t i = 0; i < c->policy->n_rules; i++) {
            const struct tf_proto_policy_rule *r = &c->policy->rules[i];
            if (memcmp(r->key, key, TF_PROTO_POLICY_KEY_LEN) == 0)
                expired = !r->limited || (c->now > r->window && t <= c->now - r->window);
        }
    }
    if (!expired)
        return 0;
    memcpy(c->keys[c->n++], key, klen);
    return c->n == c->cap ? 1 : 0;
}

int tf_node_policy_collect(struct tf_node *node, uint64_t now, size_t limit, size_t *deleted)
{
    struct collect_walk c = {node->policy, now, NULL, 0, limit};
    *deleted = 0;
    if (limit == 0)
        return TF_OK;
    if ((c.keys = calloc(limit, sizeof c.keys[0])) == NULL)
        return TF_E_NOMEM;
    int rc = tf_node_store_kv_foreach(node->store, TF_NODE_STORE_POLICY_HITS, collect_cb, &c);
    if (rc == 1)
        rc = TF_OK;
    for (size_t i = 0; rc == TF_OK && i < c.n; i++)
        rc = tf_node_store_kv_del(node->store, TF_NODE_STORE_POLICY_HITS, c.keys[i],
                                  sizeof c.keys[i]);
    if (rc == TF_OK)
        *deleted = c.n;
    free(c.keys);
    return rc;
}

enum tf_proto_policy_trust tf_node_policy_trust(enum tf_node_trust t)
{
    switch (t) {
    case TF_NODE_TRUST_NONE:
        return TF_PROTO_POLICY_TRUST_NONE;
    case TF_NODE_TRUST_ACQUAINTANCE:
        return TF_PROTO_POLICY_TRUST_ACQUAINTANCE;
    case TF_NODE_TRUST_KNOWN:
        return TF_PROTO_POLICY_TRUST_KNOWN;
    case TF_NODE_TRUST_CLOSE:
        return TF_PROTO_POLICY_TRUST_CLOSE;
    }
    return TF_PROTO_POLICY_TRUST_NONE;
}

int tf_node_policy_decide(struct tf_node *node, const uint8_t connector_pk[32],
                          struct tf_proto_bytes topic, enum tf_proto_intro_mode mode, bool record,
                          struct tf_proto_policy_decision *out)
{
    static const struct tf_node_policy_facts none = {false, false, TF_PROTO_POLICY_TRUST_NONE};
    return tf_node_policy_decide_ex(node, connector_pk, topic, mode, &none, record, out);
}

int tf_node_policy_decide_ex(struct tf_node *node, const uint8_t connector_pk[32],
                             struct tf_proto_bytes topic, enum tf_proto_intro_mode mode,
                             const struct tf_node_policy_facts *facts, bool record,
                             struct tf_proto_policy_decision *out)
{
    struct tf_node_contact c;
    struct tf_proto_bytes tags[TF_NODE_TAGS_MAX];
    struct tf_proto_policy_input in;
    memset(&c, 0, sizeof c);
    memset(&in, 0, sizeof in);
    int rc = tf_node_store_contact_get(node->store, connector_pk, &c);
    if (rc != TF_OK && rc != TF_E_NOT_FOUND)
        return rc;
    memcpy(in.connector_pk, connector_pk, 32);
    in.connector_known = rc == TF_OK;
    if (in.connector_known) {
        in.trust = tf_node_policy_trust(c.trust);
        for (size_t i = 0; i < c.n_tags; i++) {
            tags[i].ptr = (const uint8_t *)c.tags[i];
            tags[i].len = strlen(c.tags[i]);
        }
        in.tags = tags;
        in.n_tags = c.n_tags;
    }
    in.topic = topic;
    in.mode = mode;
    /* requests */
    in.is_request = facts->is_request;
    in.answers_request = facts->answers_request;
    in.offer_trust = facts->offer_trust;
    if (!facts->is_request && (rc = tf_node_request_connector_helped(
                                   node, connector_pk, &in.connector_helped)) != TF_OK) {
        tf_node_contact_deinit(&c);
        return rc;
    }
    in.offers = node->card_fields.offers;
    in.n_offers = node->card_fields.n_offers;
    in.seeks = node->card_fields.seeks;
    in.n_seeks = node->card_fields.n_seeks;
    in.now = tf_node_now(node);
    in.count_cb = count_hits;
    in.count_ctx = node;
    rc = tf_proto_policy_eval(node->policy, &in, out);
    tf_node_contact_deinit(&c);
    if (rc != TF_OK || !record || !out->record)
        return rc;
    uint8_t key[TF_PROTO_POLICY_KEY_LEN + 16];
    memcpy(key, out->rule_key, TF_PROTO_POLICY_KEY_LEN);
    for (int i = 0; i < 8; i++)
        key[TF_PROTO_POLICY_KEY_LEN + i] = (uint8_t)(in.now >> (56 - 8 * i));
    randombytes_buf(key + TF_PROTO_POLICY_KEY_LEN + 8, 8);
    return tf_node_store_kv_put(node->store, TF_NODE_STORE_POLICY_HITS, key, sizeof key,
                                connector_pk, 32);
}

/* Verbs. */

static void write_file_name(struct tf_node *node, struct tf_proto_mp_writer *w)
{
    char path[TF_NODE_PATH_MAX];
    if (tf_node_home_path(node->home, TF_NODE_HOME_POLICY, path, sizeof path) == 0)
        tf_proto_mp_write_cstr(w, path);
    else
        tf_proto_mp_write_nil(w);
}

static int verb_reload(struct tf_node *node, struct tf_proto_mp_writer *w, char *why,
                       size_t why_cap)
{
    int rc = tf_node_policy_load(node, why, why_cap);
    if (rc != TF_OK) {
        tf_node_log(TF_NODE_LOG_ERROR, "policy", "reload refused, keeping the old rules: %s", why);
        return TF_E_BAD_VALUE;
    }
    size_t n = node->policy ? node->policy->n_rules : 0;
    tf_node_log(TF_NODE_LOG_INFO, "policy", "reloaded: %zu rules", n);
    tf_proto_mp_write_map(w, 2);
    tf_proto_mp_write_cstr(w, "file");
    write_file_name(node, w);
    tf_proto_mp_write_cstr(w, "rules");
    tf_proto_mp_write_uint(w, n);
    return TF_OK;
}

static int verb_show(struct tf_node *node, struct tf_proto_mp_writer *w)
{
    char *text = NULL;
    int rc = TF_OK;
    if (node->policy != NULL &&
        (rc = tf_proto_policy_format(node->policy, TF_PROTO_POLICY_FORMAT_PLAIN, &text)) != TF_OK)
        return rc;
    tf_proto_mp_write_map(w, 3);
    tf_proto_mp_write_cstr(w, "file");
    write_file_name(node, w);
    tf_proto_mp_write_cstr(w, "loaded");
    tf_proto_mp_write_bool(w, node->policy != NULL);
    tf_proto_mp_write_cstr(w, "rules");
    size_t n = node->policy ? node->policy->n_rules : 0;
    tf_proto_mp_write_array(w, (uint32_t)n);
    /* The canonical text has one rule per line, in order. */
    const char *p = text;
    for (size_t i = 0; i < n; i++) {
        const char *nl = p ? strchr(p, '\n') : NULL;
        size_t len = nl ? (size_t)(nl - p) : (p ? strlen(p) : 0);
        tf_proto_mp_write_map(w, 2);
        tf_proto_mp_write_cstr(w, "line");
        tf_proto_mp_write_uint(w, node->policy->rules[i].line);
        tf_proto_mp_write_cstr(w, "text");
        tf_proto_mp_write_str(w, p ? p : "", len);
        p = nl ? nl + 1 : NULL;
    }
    free(text);
    return TF_OK;
}

static int verb_test(struct tf_node *node, const msgpack_object *args, struct tf_proto_mp_writer *w,
                     char *why, size_t why_cap)
{
    const char *topic, *conn, *mode_s;
    size_t topic_len, conn_len, mode_len;
    int rc0;
    uint8_t pk[32];
    enum tf_proto_intro_mode mode = TF_PROTO_INTRO_MODE_PARALLEL;
    if (tf_proto_ctl_get_str(args, "topic", &topic, &topic_len) != TF_OK ||
        !tf_proto_tag_is_valid((const uint8_t *)topic, topic_len)) {
        WHY("give a topic tag");
        return TF_E_BAD_VALUE;
    }
    if (tf_proto_ctl_get_str(args, "mode", &mode_s, &mode_len) == TF_OK) {
        if (mode_len == 10 && memcmp(mode_s, "sequential", 10) == 0)
            mode = TF_PROTO_INTRO_MODE_SEQUENTIAL;
        else if (!(mode_len == 8 && memcmp(mode_s, "parallel", 8) == 0)) {
            WHY("mode is parallel or sequential");
            return TF_E_BAD_VALUE;
        }
    }
    /* requests: "requester" tests the request rules instead, and
     * "answers_request" says the proposal answers one of the owner's requests. */
    struct tf_node_policy_facts facts = {.is_request = false};
    const char *key = "connector";
    rc0 = tf_proto_ctl_get_bool(args, "answers_request", &facts.answers_request);
    if (rc0 != TF_OK && rc0 != TF_E_NOT_FOUND) {
        WHY("argument 'answers_request' must be true or false");
        return TF_E_BAD_REQUEST;
    }
    if (tf_proto_ctl_get_str(args, "requester", &conn, &conn_len) == TF_OK) {
        facts.is_request = true;
        key = "requester";
    } else if (tf_proto_ctl_get_str(args, "connector", &conn, &conn_len) != TF_OK) {
        WHY("give --connector NAME or unknown (or --requester NAME or unknown)");
        return TF_E_BAD_REQUEST;
    }
    if (conn_len == 7 && memcmp(conn, "unknown", 7) == 0) {
        /* A key that is nobody's contact. */
        randombytes_buf(pk, sizeof pk);
    } else {
        struct tf_node_contact c = {0};
        int rc = tf_node__find_contact(node, args, key, &c, why, why_cap);
        if (rc != TF_OK)
            return rc;
        memcpy(pk, c.pk, 32);
        tf_node_contact_deinit(&c);
    }
    struct tf_proto_policy_decision d;
    struct tf_proto_bytes t = {(const uint8_t *)topic, topic_len};
    struct tf_node_request_offer best;
    size_t n_best = 0;
    int rc = TF_OK;
    if (facts.is_request &&
        (rc = tf_node_request_offers(node, pk, t, &best, 1, &n_best)) == TF_OK && n_best > 0)
        facts.offer_trust = best.trust;
    if (rc == TF_OK)
        rc = tf_node_policy_decide_ex(node, pk, t, mode, &facts, false, &d);
    if (rc != TF_OK) {
        WHY("cannot evaluate the policy: %s", tf_strerror(rc));
        return rc;
    }
    char rule[32];
    snprintf(rule, sizeof rule, "policy:%zu", d.line);
    bool proposes = d.action == TF_PROTO_POLICY_ACTION_PROPOSE && n_best > 0;
    tf_proto_mp_write_map(w, proposes ? 5 : 4);
    if (proposes) { /* requests: whom the rule would propose */
        char tid[TF_PROTO_TEXT_ID_SIZE];
        tf_proto_text_id_encode(best.pk, tid);
        tf_proto_mp_write_cstr(w, "propose");
        tf_proto_mp_write_cstr(w, tid);
    }
    tf_proto_mp_write_cstr(w, "action");
    tf_proto_mp_write_cstr(w, tf_proto_policy_action_name(d.action));
    tf_proto_mp_write_cstr(w, "rule");
    if (d.matched)
        tf_proto_mp_write_cstr(w, rule);
    else
        tf_proto_mp_write_nil(w);
    tf_proto_mp_write_cstr(w, "line");
    if (d.matched)
        tf_proto_mp_write_uint(w, d.line);
    else
        tf_proto_mp_write_nil(w);
    tf_proto_mp_write_cstr(w, "file");
    write_file_name(node, w);
    return TF_OK;
}

int tf_node_policy_verb(struct tf_node *node, const char *verb, size_t verb_len,
                        const msgpack_object *args, struct tf_proto_mp_writer *w, char *why,
                        size_t why_cap, bool *handled)
{
    *handled = true;
    if (verb_len == 13 && memcmp(verb, "policy.reload", 13) == 0)
        return verb_reload(node, w, why, why_cap);
    if (verb_len == 11 && memcmp(verb, "policy.show", 11) == 0)
        return verb_show(node, w);
    if (verb_len == 11 && memcmp(verb, "policy.test", 11) == 0)
        return verb_test(node, args, w, why, why_cap);
    *handled = false;
    return TF_E_UNKNOWN_VERB;
}
