/* SPDX-License-Identifier: MIT */
/*
 * twofold-bench: starts one connector and P parties (real twofoldd processes
 * on loopback, temporary homes, durable settings as shipped), drives
 * introductions through the connector's control socket and times them until
 * both parties have materialised them (issue 7; docs/PERFORMANCE.md).
 *
 *   twofold-bench [--json] [--intros N] [--parties P] [--inflight K] ...
 *   twofold-bench --smoke --json      (CI: correctness only, seconds)
 *   twofold-bench --scaling           (contacts 100 / 10k / 100k, 50 parties)
 *
 * A run: set up homes (CLI: init, card), start the nodes, exchange contacts
 * over the control socket, optionally preload extra contacts, then
 *   warm-up   P intros (every link comes up; not measured),
 *   low load  one intro at a time,
 *   saturation N intros with K in flight,
 * then read every node's figures, stop the nodes and remove the homes.
 * Results are built as one JSON object per run; the human table is printed
 * from that same object.
 */
#include "tests/bench/bench.h"
#include "tests/bench/opcount.h" /* perf */

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <math.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>
#include <sodium.h>

#include "proto/card.h"
#include "proto/ctl.h"
#include "proto/identity.h"
#include "proto/statement.h"

#ifndef TF_BENCH_TWOFOLDD
#define TF_BENCH_TWOFOLDD "twofoldd"
#endif
#ifndef TF_BENCH_OPCOUNT
#define TF_BENCH_OPCOUNT "" /* no shim: ops are not counted */
#endif
#ifndef TF_BENCH_TWOFOLD
#define TF_BENCH_TWOFOLD "twofold"
#endif

#define WHY(...) snprintf(r->why, sizeof r->why, __VA_ARGS__)
#define READY_TIMEOUT_S 30.0
#define CLI_TIMEOUT_S 60.0
#define CALL_TIMEOUT_S 60.0
#define STOP_TIMEOUT_S 30.0
#define PRELOAD_WINDOW 256
#define STATS_MAX 32

/* The policy every party runs: accept what a close contact proposes. */
static const char PARTY_POLICY[] =
    "# twofold-bench: accept every introduction from a close contact\n"
    "accept when connector trust >= close\n";

struct opts {
    uint32_t intros, lowload, parties, inflight, contacts;
    uint32_t print_cards; /* web (issue 18): --print-cards N */
    bool lowload_set;
    double timeout_s, stall_s;
    bool json, smoke, scaling, keep;
    bool mailbox; /* parties without a listener, reached through one mailbox node */
    bool sealed;  /* direct (issue 17): every node runs with direct_envelopes = 0 */
    const char *twofoldd, *twofold;
};

/* pages (issue 17): the store tables of a status {tables: true} reply. */
#define TABLES_MAX 40
enum tab_field { TAB_WRITES, TAB_ENTRIES, TAB_DEPTH, TAB_BRANCH, TAB_LEAF, TAB_OVERFLOW, TAB_N };
static const char *const tab_keys[TAB_N] = {"writes",       "entries",    "depth",
                                            "branch_pages", "leaf_pages", "overflow_pages"};

/* The numeric keys of a status reply's `stats` map. */
struct stats {
    bool present;
    size_t n;
    char key[STATS_MAX][48];
    uint64_t val[STATS_MAX];
    size_t n_tables; /* pages */
    char table[TABLES_MAX][32];
    uint64_t tab[TABLES_MAX][TAB_N];
};

struct node {
    char name[24];
    bool connector;
    char home[TF_BENCH_PATH_MAX], log[TF_BENCH_PATH_MAX];
    uint16_t port;
    pid_t pid; /* 0 once stopped (or never started) */
    char text_id[TF_PROTO_TEXT_ID_SIZE];
    char *card; /* text form, owned */
    struct tf_bench_ctl req, watch;
    uint64_t idle_rss_kb, loaded_rss_kb, peak_rss_kb;
    uint64_t loaded_anon_kb, end_anon_kb; /* RssAnon: RSS without LMDB's mapped pages */
    double cpu0, cpu1, cpu_end;
    struct stats st0, st1;
    uint64_t store0, store1, store_used;
    int exit_status;
    bool stopped_cleanly;
    /* perf: the op-counting shim's file, mapped (NULL: not counted), and
     * its counts before and after the saturation phase. */
    struct tf_bench_opcount *ops;
    uint64_t ops0[TF_BENCH_OPCOUNT_COUNT], ops1[TF_BENCH_OPCOUNT_COUNT];
};

struct intro {
    uint32_t a, b; /* party indexes */
    double t_sent, t_party[2];
    uint8_t got; /* bit 0: a materialised it, bit 1: b */
    bool replied, failed, done;
    uint8_t id[32];
};

/* intro id -> intro index; an event may (in theory) beat the propose reply,
 * so a slot can also hold events for an id not known yet. */
struct slot {
    bool used;
    int64_t intro; /* -1: only events so far */
    uint8_t id[32];
    uint8_t n_early;
    uint32_t early_party[2];
    double early_t[2];
};

/* Extra contacts for --contacts: text cards made once per process. */
struct preload_cards {
    char **text;
    size_t n;
};

struct run {
    const struct opts *o;
    uint32_t parties, contacts;
    char root[TF_BENCH_PATH_MAX / 2];
    bool root_made;
    struct node *nodes; /* [0] connector, [1 + i] party i, then the mailbox (--mailbox) */
    size_t n_nodes;
    struct intro *intros;
    uint32_t n_intros;
    struct slot *map;
    size_t map_cap;
    char why[4 * TF_BENCH_WHY_MAX]; /* room for a quoted reply's reason and a path */
};

static void on_stop_signal(int sig)
{
    (void)sig;
    tf_bench_stop = 1;
}

/* Small helpers. */

static double percentile(const double *sorted, size_t n, double p)
{
    if (n == 0)
        return NAN;
    double rank = ceil(p * (double)n);
    size_t i = rank < 1 ? 0 : (size_t)rank - 1;
    return sorted[i < n ? i : n - 1];
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static json_t *jreal_or_null(double v)
{
    return isfinite(v) ? json_real(v) : json_null();
}

static json_t *latency_json(double *ms, size_t n)
{
    qsort(ms, n, sizeof *ms, cmp_double);
    json_t *j = json_object();
    json_object_set_new(j, "p50", jreal_or_null(percentile(ms, n, 0.50)));
    json_object_set_new(j, "p90", jreal_or_null(percentile(ms, n, 0.90)));
    json_object_set_new(j, "p99", jreal_or_null(percentile(ms, n, 0.99)));
    json_object_set_new(j, "max", jreal_or_null(n ? ms[n - 1] : NAN));
    json_object_set_new(j, "n", json_integer((json_int_t)n));
    return j;
}

/* A number from a JSON object (NAN if absent or null). */
static double jnum(const json_t *o, const char *key)
{
    const json_t *v = json_object_get(o, key);
    return json_is_number(v) ? json_number_value(v) : NAN;
}

static uint32_t pair_a(uint32_t k, uint32_t parties)
{
    return k % parties;
}

/* Intro k's parties: each round of P intros is a ring (0,1), (1,2), ...
 * (P-1,0) with a growing step, so consecutive intros use different parties
 * and every ordered pair comes up once in P(P-1) intros. */
static uint32_t pair_b(uint32_t k, uint32_t parties)
{
    uint32_t a = k % parties;
    return (a + 1 + (k / parties) % (parties - 1)) % parties;
}

/* The intro map. */

static struct slot *map_find(struct run *r, const uint8_t id[32], bool insert)
{
    uint64_t h;
    memcpy(&h, id, sizeof h); /* ids are BLAKE2b output: uniform */
    for (size_t i = (size_t)h & (r->map_cap - 1);; i = (i + 1) & (r->map_cap - 1)) {
        struct slot *s = &r->map[i];
        if (!s->used) {
            if (!insert)
                return NULL;
            memset(s, 0, sizeof *s);
            s->used = true;
            s->intro = -1;
            memcpy(s->id, id, 32);
            return s;
        }
        if (memcmp(s->id, id, 32) == 0)
            return s;
    }
}

/* Records that party p materialised intro i at time t. */
static void intro_seen(struct intro *in, uint32_t p, double t, uint32_t *n_done)
{
    int side = p == in->a ? 0 : p == in->b ? 1 : -1;
    if (side < 0 || in->done || (in->got & (1u << side)))
        return;
    in->got = (uint8_t)(in->got | (1u << side));
    in->t_party[side] = t;
    if (in->got == 3) {
        in->done = true;
        (*n_done)++;
    }
}

/* Setup. */

static int cli(struct run *r, struct node *n, char **out, const char *a1, const char *a2,
               const char *a3, const char *a4, const char *a5, const char *a6)
{
    char *argv[10] = {(char *)(uintptr_t)r->o->twofold,
                      "--home",
                      n->home,
                      (char *)(uintptr_t)a1,
                      (char *)(uintptr_t)a2,
                      (char *)(uintptr_t)a3,
                      (char *)(uintptr_t)a4,
                      (char *)(uintptr_t)a5,
                      (char *)(uintptr_t)a6,
                      NULL};
    return tf_bench_run(argv, n->log, CLI_TIMEOUT_S, out, r->why, sizeof r->why);
}

static int write_file(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    if (f == NULL)
        return -errno;
    int rc = fputs(text, f) < 0 ? -EIO : 0;
    if (fclose(f) != 0 && rc == 0)
        rc = -EIO;
    return rc;
}

/* init, card, policy: everything before the node starts. */
static int node_prepare(struct run *r, struct node *n)
{
    char listen[32], *out = NULL, path[TF_BENCH_PATH_MAX + 16];
    struct tf_proto_buf signed_card = {0};
    struct tf_proto_card card;
    /* The kernel may hand out a port it gave an earlier probe again (the
     * probe socket is closed at once): 51 nodes collided about one run in
     * twenty.  Each node's port differs from those prepared before it. */
    int rc;
    bool taken;
    int tries = 0;
    do {
        if ((rc = tf_bench_free_port(&n->port)) != 0) {
            WHY("cannot find a free port: %s", tf_strerror(rc));
            return rc;
        }
        taken = false;
        for (const struct node *o = r->nodes; o < n; o++)
            taken = taken || o->port == n->port;
    } while (taken && ++tries < 100);
    if (taken) {
        WHY("%s", "cannot find a port no other node uses");
        return -EADDRINUSE;
    }
    snprintf(listen, sizeof listen, "127.0.0.1:%u", n->port);
    if ((rc = cli(r, n, NULL, "init", "--name", n->name, "--listen", listen, NULL)) != 0 ||
        (rc = cli(r, n, &out, "card", NULL, NULL, NULL, NULL, NULL)) != 0)
        return rc;
    size_t len = strlen(out);
    while (len > 0 && (out[len - 1] == '\n' || out[len - 1] == '\r' || out[len - 1] == ' '))
        out[--len] = '\0';
    n->card = out;
    if ((rc = tf_proto_card_from_text(out, len, &signed_card, &card)) != TF_OK) {
        WHY("%s: `twofold card` printed something that is not a card: %s", n->name,
            tf_strerror(rc));
        return rc;
    }
    tf_proto_text_id_encode(card.sign_pk, n->text_id);
    tf_proto_buf_free(&signed_card);
    if (!n->connector) {
        snprintf(path, sizeof path, "%s/policy", n->home);
        if ((rc = write_file(path, PARTY_POLICY)) != 0) {
            WHY("cannot write %s: %s", path, tf_strerror(rc));
            return rc;
        }
    }
    /* --mailbox: parties open no listening socket (their card's address
     * answers nothing), as behind a NAT.  direct: --sealed turns the
     * "direct" feature off on every node. */
    bool no_listen = r->o->mailbox && !n->connector && strcmp(n->name, "mailbox") != 0;
    if (no_listen || r->o->sealed) {
        char config[64];
        snprintf(config, sizeof config, "%s%s", no_listen ? "no_listen = 1\n" : "",
                 r->o->sealed ? "direct_envelopes = 0\n" : "");
        snprintf(path, sizeof path, "%s/config", n->home);
        if ((rc = write_file(path, config)) != 0) {
            WHY("cannot write %s: %s", path, tf_strerror(rc));
            return rc;
        }
    }
    return 0;
}

/* perf (issue 17): the op-counting shim (opcount.c).  Maps <home>.ops for
 * n and returns the environment the node must start with, or leaves n->ops
 * NULL (no shim built, or TF_BENCH_OPCOUNT set empty) and counts nothing. */
static void opcount_map(struct node *n, char *path, size_t cap)
{
    n->ops = NULL;
    snprintf(path, cap, "%s.ops", n->home);
    int fd = open(path, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0)
        return;
    if (ftruncate(fd, (off_t)sizeof *n->ops) == 0) {
        void *p = mmap(NULL, sizeof *n->ops, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
        if (p != MAP_FAILED)
            n->ops = p;
    }
    close(fd);
}

static const char *opcount_shim(void)
{
    const char *e = getenv("TF_BENCH_OPCOUNT");
    const char *shim = e != NULL ? e : TF_BENCH_OPCOUNT;
    return shim[0] != '\0' && access(shim, R_OK) == 0 ? shim : NULL;
}

static void opcount_snap(const struct node *n, uint64_t out[static TF_BENCH_OPCOUNT_COUNT])
{
    for (int i = 0; i < TF_BENCH_OPCOUNT_COUNT; i++)
        out[i] = n->ops != NULL ? __atomic_load_n(&n->ops->n[i], __ATOMIC_RELAXED) : 0;
}

static void opcount_unmap(struct node *n)
{
    if (n->ops != NULL)
        munmap(n->ops, sizeof *n->ops);
    n->ops = NULL;
}

/* Starts n; with the shim, preloaded (its variables are set in the bench's
 * environment only around the fork, which copies them). */
static int node_start(struct run *r, struct node *n)
{
    char *argv[] = {(char *)(uintptr_t)r->o->twofoldd, "--home", n->home, NULL};
    const char *shim = opcount_shim();
    char ops_path[TF_BENCH_PATH_MAX + 8], asan[512];
    if (shim != NULL)
        opcount_map(n, ops_path, sizeof ops_path);
    if (n->ops == NULL)
        return tf_bench_spawn(argv, n->log, &n->pid, r->why, sizeof r->why);
    const char *asan0 = getenv("ASAN_OPTIONS");
    char *asan_saved = asan0 != NULL ? strdup(asan0) : NULL;
    /* A sanitized node wants its runtime first; the shim is harmless ahead. */
    snprintf(asan, sizeof asan, "%s%sverify_asan_link_order=0", asan0 ? asan0 : "",
             asan0 && asan0[0] ? ":" : "");
    setenv("LD_PRELOAD", shim, 1);
    setenv("TF_BENCH_OPS_FILE", ops_path, 1);
    setenv("ASAN_OPTIONS", asan, 1);
    int rc = tf_bench_spawn(argv, n->log, &n->pid, r->why, sizeof r->why);
    unsetenv("LD_PRELOAD");
    unsetenv("TF_BENCH_OPS_FILE");
    if (asan_saved != NULL)
        setenv("ASAN_OPTIONS", asan_saved, 1);
    else
        unsetenv("ASAN_OPTIONS");
    free(asan_saved);
    return rc;
}

/* Waits for the ready line, notes the idle RSS, opens both connections and
 * subscribes the watch connection. */
static int node_ready(struct run *r, struct node *n)
{
    struct tf_bench_mem m = {0};
    struct tf_proto_mp_writer w;
    msgpack_object res;
    int rc =
        tf_bench_wait_log(n->pid, n->log, 0, "ready id=", READY_TIMEOUT_S, r->why, sizeof r->why);
    if (rc != 0)
        return rc;
    if (tf_bench_proc_mem(n->pid, &m) == 0)
        n->idle_rss_kb = m.rss_kb;
    if ((rc = tf_bench_ctl_open(&n->req, n->home, r->why, sizeof r->why)) != 0 ||
        (rc = tf_bench_ctl_open(&n->watch, n->home, r->why, sizeof r->why)) != 0)
        return rc;
    tf_bench_ctl_begin(&n->watch, &w, "watch", 0);
    if ((rc = tf_bench_ctl_call(&n->watch, &w, CALL_TIMEOUT_S, &res, r->why, sizeof r->why)) != 0)
        return rc;
    return 0;
}

static int contact_add(struct run *r, struct node *n, const char *card, const char *alias,
                       const char *trust)
{
    struct tf_proto_mp_writer w;
    msgpack_object res;
    tf_bench_ctl_begin(&n->req, &w, "contact.add", 3);
    tf_proto_mp_write_cstr(&w, "card");
    tf_proto_mp_write_cstr(&w, card);
    tf_proto_mp_write_cstr(&w, "alias");
    tf_proto_mp_write_cstr(&w, alias);
    tf_proto_mp_write_cstr(&w, "trust");
    tf_proto_mp_write_cstr(&w, trust);
    char why[TF_BENCH_WHY_MAX];
    int rc = tf_bench_ctl_call(&n->req, &w, CALL_TIMEOUT_S, &res, why, sizeof why);
    if (rc != 0)
        WHY("%s: contact.add %s: %s", n->name, alias, why);
    return rc;
}

/* Reads status: the stats map (if any) and store_bytes. */
/* pages: status.tables, {name: {writes, entries, ...}}; a node without it
 * leaves n_tables 0. */
static void tables_parse(const msgpack_object *m, struct stats *st)
{
    if (m == NULL || m->type != MSGPACK_OBJECT_MAP)
        return;
    for (uint32_t i = 0; i < m->via.map.size && st->n_tables < TABLES_MAX; i++) {
        const msgpack_object_kv *kv = &m->via.map.ptr[i];
        if (kv->key.type != MSGPACK_OBJECT_STR || kv->key.via.str.size >= sizeof st->table[0])
            continue;
        size_t t = st->n_tables++;
        memcpy(st->table[t], kv->key.via.str.ptr, kv->key.via.str.size);
        st->table[t][kv->key.via.str.size] = '\0';
        for (size_t f = 0; f < TAB_N; f++)
            if (tf_proto_ctl_get_uint(&kv->val, tab_keys[f], &st->tab[t][f]) != TF_OK)
                st->tab[t][f] = 0;
    }
}

static int node_status(struct run *r, struct node *n, struct stats *st, uint64_t *store_used)
{
    struct tf_proto_mp_writer w;
    msgpack_object res;
    char why[TF_BENCH_WHY_MAX];
    tf_bench_ctl_begin(&n->req, &w, "status", 1);
    tf_proto_mp_write_cstr(&w, "tables"); /* pages */
    tf_proto_mp_write_bool(&w, true);
    int rc = tf_bench_ctl_call(&n->req, &w, CALL_TIMEOUT_S, &res, why, sizeof why);
    if (rc != 0) {
        WHY("%s: status: %s", n->name, why);
        return rc;
    }
    if (store_used != NULL && tf_proto_ctl_get_uint(&res, "store_bytes", store_used) != TF_OK)
        *store_used = 0;
    memset(st, 0, sizeof *st);
    const msgpack_object *m = tf_proto_ctl_get(&res, "stats");
    if (m == NULL || m->type != MSGPACK_OBJECT_MAP)
        return 0;
    st->present = true;
    for (uint32_t i = 0; i < m->via.map.size && st->n < STATS_MAX; i++) {
        const msgpack_object_kv *kv = &m->via.map.ptr[i];
        if (kv->key.type != MSGPACK_OBJECT_STR || kv->val.type != MSGPACK_OBJECT_POSITIVE_INTEGER ||
            kv->key.via.str.size >= sizeof st->key[0])
            continue;
        memcpy(st->key[st->n], kv->key.via.str.ptr, kv->key.via.str.size);
        st->key[st->n][kv->key.via.str.size] = '\0';
        st->val[st->n] = kv->val.via.u64;
        st->n++;
    }
    tables_parse(tf_proto_ctl_get(&res, "tables"), st);
    return 0;
}

static const uint64_t *stats_get(const struct stats *st, const char *key)
{
    for (size_t i = 0; i < st->n; i++)
        if (strcmp(st->key[i], key) == 0)
            return &st->val[i];
    return NULL;
}

static void node_cpu(struct node *n, double *out)
{
    if (n->pid <= 0 || tf_bench_proc_cpu(n->pid, out) != 0)
        *out = NAN;
}

static uint64_t node_store_file(const struct node *n)
{
    char path[TF_BENCH_PATH_MAX + 32];
    snprintf(path, sizeof path, "%s/store/data.mdb", n->home);
    return tf_bench_file_size(path);
}

/* Preloading extra contacts: contact.add pipelined on every node at once. */
static int preload(struct run *r, const struct preload_cards *pc, uint32_t count)
{
    size_t nn = r->n_nodes;
    uint32_t *sent = calloc(nn, sizeof *sent), *acked = calloc(nn, sizeof *acked);
    struct pollfd *pf = calloc(nn, sizeof *pf);
    int rc = 0;
    if (sent == NULL || acked == NULL || pf == NULL) {
        WHY("out of memory");
        rc = TF_E_NOMEM;
        goto out;
    }
    double deadline = tf_bench_now() + r->o->timeout_s;
    for (;;) {
        bool all = true;
        for (size_t i = 0; i < nn && rc == 0; i++) {
            struct node *n = &r->nodes[i];
            while (sent[i] < count && sent[i] - acked[i] < PRELOAD_WINDOW && rc == 0) {
                struct tf_proto_mp_writer w;
                tf_bench_ctl_begin(&n->req, &w, "contact.add", 1);
                tf_proto_mp_write_cstr(&w, "card");
                tf_proto_mp_write_cstr(&w, pc->text[sent[i]]);
                if ((rc = tf_bench_ctl_send(&n->req, &w)) != 0)
                    WHY("%s: cannot send contact.add: %s", n->name, tf_strerror(rc));
                sent[i]++;
            }
            if (acked[i] < count)
                all = false;
            pf[i].fd = n->req.fd;
            pf[i].events = (short)(POLLIN | (tf_bench_ctl_want_write(&n->req) ? POLLOUT : 0));
            pf[i].revents = 0;
        }
        if (rc != 0 || all)
            break;
        if (tf_bench_stop || tf_bench_now() > deadline) {
            WHY(tf_bench_stop ? "interrupted" : "preloading contacts took longer than %.0f s",
                r->o->timeout_s);
            rc = -ETIMEDOUT;
            break;
        }
        if (poll(pf, (nfds_t)nn, 100) < 0 && errno != EINTR) {
            rc = -errno;
            WHY("poll: %s", strerror(errno));
            break;
        }
        for (size_t i = 0; i < nn && rc == 0; i++) {
            struct node *n = &r->nodes[i];
            msgpack_object f, res;
            uint64_t id;
            char why[TF_BENCH_WHY_MAX];
            if ((pf[i].revents & POLLOUT) && (rc = tf_bench_ctl_flush(&n->req)) != 0)
                WHY("%s: write: %s", n->name, tf_strerror(rc));
            if (rc == 0 && (pf[i].revents & (POLLIN | POLLHUP | POLLERR)) &&
                (rc = tf_bench_ctl_fill(&n->req)) != 0)
                WHY("%s: read: %s (did it stop?)", n->name, tf_strerror(rc));
            int k;
            while (rc == 0 && (k = tf_bench_ctl_next(&n->req, &f)) != 0) {
                if (k < 0) {
                    rc = k;
                    WHY("%s: malformed frame: %s", n->name, tf_strerror(k));
                } else if ((rc = tf_bench_ctl_reply(&f, &id, &res, why, sizeof why)) != 0) {
                    WHY("%s: contact.add refused: %s", n->name, why);
                } else {
                    acked[i]++;
                }
            }
        }
        if (rc != 0)
            break;
    }
out:
    free(sent);
    free(acked);
    free(pf);
    return rc;
}

/* Driving intros. */

static int send_propose(struct run *r, uint32_t k)
{
    struct node *c = &r->nodes[0];
    struct intro *in = &r->intros[k];
    char a[16], b[16], topic[24];
    struct tf_proto_mp_writer w;
    snprintf(a, sizeof a, "p%" PRIu32, in->a);
    snprintf(b, sizeof b, "p%" PRIu32, in->b);
    snprintf(topic, sizeof topic, "b%" PRIu32, k);
    tf_bench_ctl_begin(&c->req, &w, "intro.propose", 3);
    tf_proto_mp_write_cstr(&w, "a");
    tf_proto_mp_write_cstr(&w, a);
    tf_proto_mp_write_cstr(&w, "b");
    tf_proto_mp_write_cstr(&w, b);
    tf_proto_mp_write_cstr(&w, "topic");
    tf_proto_mp_write_cstr(&w, topic);
    in->t_sent = tf_bench_now();
    int rc = tf_bench_ctl_send(&c->req, &w);
    if (rc != 0)
        WHY("cannot send intro.propose: %s", tf_strerror(rc));
    return rc;
}

/* Says what is missing when a phase stalls or times out. */
static void diagnose(struct run *r, uint32_t first, uint32_t count)
{
    uint32_t unreplied = 0, miss_a = 0, miss_b = 0, shown = 0;
    for (uint32_t k = first; k < first + count; k++) {
        const struct intro *in = &r->intros[k];
        if (in->done || in->failed || in->t_sent == 0)
            continue;
        if (!in->replied) {
            unreplied++;
            continue;
        }
        miss_a += !(in->got & 1);
        miss_b += !(in->got & 2);
        if (shown++ < 5) {
            char hex[65];
            sodium_bin2hex(hex, sizeof hex, in->id, 32);
            fprintf(stderr,
                    "twofold-bench:   intro %" PRIu32 " (p%" PRIu32 " + p%" PRIu32
                    ", topic b%" PRIu32 ", id %.16s): not materialised on%s%s\n",
                    k, in->a, in->b, k, hex, in->got & 1 ? "" : " a", in->got & 2 ? "" : " b");
        }
    }
    fprintf(stderr,
            "twofold-bench:   %" PRIu32 " proposals unanswered by the connector's control socket; "
            "%" PRIu32 " intros missing on side a, %" PRIu32 " on side b\n",
            unreplied, miss_a, miss_b);
}

/* Handles frames on the connector's request connection (propose replies,
 * in request order: fifo holds the intro of each request sent). */
static int on_replies(struct run *r, uint32_t *fifo, size_t cap, size_t *head, size_t *queued,
                      uint32_t *n_done, uint32_t *n_failed)
{
    struct node *c = &r->nodes[0];
    msgpack_object f, res;
    uint64_t id;
    char why[TF_BENCH_WHY_MAX];
    int k;
    while ((k = tf_bench_ctl_next(&c->req, &f)) == 1) {
        if (*queued == 0) {
            WHY("the connector sent a reply nobody asked for");
            return TF_E_BAD_STATE;
        }
        uint32_t i = fifo[*head];
        *head = (*head + 1) % cap;
        (*queued)--;
        struct intro *in = &r->intros[i];
        int rc = tf_bench_ctl_reply(&f, &id, &res, why, sizeof why);
        if (rc == TF_E_BAD_KEY) {
            WHY("connector: %s", why);
            return rc;
        }
        const char *hex;
        size_t hex_len;
        if (rc == 0 &&
            (tf_proto_ctl_get_str(&res, "id", &hex, &hex_len) != TF_OK || hex_len != 64 ||
             sodium_hex2bin(in->id, 32, hex, hex_len, NULL, NULL, NULL) != 0)) {
            rc = TF_E_BAD_VALUE;
            snprintf(why, sizeof why, "no intro id in the reply");
        }
        if (rc != 0) {
            /* Refused: the intro will never complete.  Say so once per run
             * for the first few. */
            if (*n_failed < 5)
                fprintf(stderr,
                        "twofold-bench: intro.propose p%" PRIu32 " p%" PRIu32 " b%" PRIu32
                        " refused: %s\n",
                        in->a, in->b, i, why);
            in->failed = true;
            (*n_failed)++;
            continue;
        }
        in->replied = true;
        struct slot *s = map_find(r, in->id, true);
        s->intro = i;
        for (uint8_t e = 0; e < s->n_early; e++)
            intro_seen(in, s->early_party[e], s->early_t[e], n_done);
        s->n_early = 0;
    }
    if (k < 0)
        WHY("connector: malformed frame: %s", tf_strerror(k));
    return k < 0 ? k : 0;
}

/* Handles the event frames of node ni's watch connection. */
static int on_events(struct run *r, size_t ni, uint32_t *n_done)
{
    struct node *n = &r->nodes[ni];
    msgpack_object f;
    int k;
    double t = tf_bench_now();
    while ((k = tf_bench_ctl_next(&n->watch, &f)) == 1) {
        const msgpack_object *ev = tf_proto_ctl_get(&f, "event");
        const char *type, *hex;
        size_t type_len, hex_len;
        uint8_t id[32];
        if (ev == NULL || ni == 0 || tf_proto_ctl_get_str(ev, "type", &type, &type_len) != TF_OK ||
            type_len != strlen("inbox.introduced") ||
            memcmp(type, "inbox.introduced", type_len) != 0)
            continue;
        if (tf_proto_ctl_get_str(ev, "id", &hex, &hex_len) != TF_OK || hex_len != 64 ||
            sodium_hex2bin(id, sizeof id, hex, hex_len, NULL, NULL, NULL) != 0) {
            WHY("%s: an inbox.introduced event without an intro id", n->name);
            return TF_E_BAD_VALUE;
        }
        uint32_t p = (uint32_t)(ni - 1);
        struct slot *s = map_find(r, id, true);
        if (s->intro >= 0) {
            intro_seen(&r->intros[s->intro], p, t, n_done);
        } else if (s->n_early < 2) {
            s->early_party[s->n_early] = p;
            s->early_t[s->n_early++] = t;
        }
    }
    if (k < 0)
        WHY("%s: malformed frame: %s", n->name, tf_strerror(k));
    return k < 0 ? k : 0;
}

/* Proposes intros [first, first + count) with at most `window` of them
 * unfinished at a time, and waits until each one is materialised on both
 * sides or refused.  Latencies (ms) of the completed ones go to *lat. */
static int drive(struct run *r, uint32_t first, uint32_t count, uint32_t window, double *lat,
                 size_t *n_lat, uint32_t *n_failed_out)
{
    size_t nn = r->n_nodes, head = 0, queued = 0, cap = window;
    uint32_t next = first, n_done = 0, n_failed = 0, last_progress_n = 0;
    struct pollfd *pf = calloc(nn + 1, sizeof *pf);
    uint32_t *fifo = calloc(cap, sizeof *fifo);
    int rc = 0;
    if (pf == NULL || fifo == NULL) {
        free(pf);
        free(fifo);
        WHY("out of memory");
        return TF_E_NOMEM;
    }
    double deadline = tf_bench_now() + r->o->timeout_s, last_progress = tf_bench_now();
    while (n_done + n_failed < count) {
        /* Unfinished = sent and neither done nor refused. */
        while (next < first + count && (next - first) - n_done - n_failed < window &&
               queued < cap) {
            if ((rc = send_propose(r, next)) != 0)
                goto out;
            fifo[(head + queued) % cap] = next;
            queued++;
            next++;
        }
        pf[0].fd = r->nodes[0].req.fd;
        pf[0].events = (short)(POLLIN | (tf_bench_ctl_want_write(&r->nodes[0].req) ? POLLOUT : 0));
        for (size_t i = 0; i < nn; i++) {
            pf[1 + i].fd = r->nodes[i].watch.fd;
            pf[1 + i].events = POLLIN;
        }
        if (poll(pf, (nfds_t)(nn + 1), 100) < 0 && errno != EINTR) {
            rc = -errno;
            WHY("poll: %s", strerror(errno));
            goto out;
        }
        if ((pf[0].revents & POLLOUT) && (rc = tf_bench_ctl_flush(&r->nodes[0].req)) != 0) {
            WHY("connector: write: %s", tf_strerror(rc));
            goto out;
        }
        if (pf[0].revents & (POLLIN | POLLHUP | POLLERR)) {
            if ((rc = tf_bench_ctl_fill(&r->nodes[0].req)) != 0) {
                WHY("connector: read: %s (did it stop?)", tf_strerror(rc));
                goto out;
            }
            if ((rc = on_replies(r, fifo, cap, &head, &queued, &n_done, &n_failed)) != 0)
                goto out;
        }
        for (size_t i = 0; i < nn; i++) {
            if (!(pf[1 + i].revents & (POLLIN | POLLHUP | POLLERR)))
                continue;
            if ((rc = tf_bench_ctl_fill(&r->nodes[i].watch)) != 0) {
                WHY("%s: watch: %s (did it stop?)", r->nodes[i].name, tf_strerror(rc));
                goto out;
            }
            if ((rc = on_events(r, i, &n_done)) != 0)
                goto out;
        }
        double now = tf_bench_now();
        if (n_done + n_failed != last_progress_n) {
            last_progress_n = n_done + n_failed;
            last_progress = now;
        }
        if (tf_bench_stop) {
            WHY("interrupted");
            rc = -EINTR;
            goto out;
        }
        if (now > deadline || now - last_progress > r->o->stall_s) {
            WHY(now > deadline ? "%" PRIu32 " of %" PRIu32 " intros done after %.0f s (--timeout)"
                               : "%" PRIu32 " of %" PRIu32 " intros done; none completed in the "
                                 "last %.0f s (--stall)",
                n_done + n_failed, count, now > deadline ? r->o->timeout_s : r->o->stall_s);
            diagnose(r, first, count);
            rc = -ETIMEDOUT;
            goto out;
        }
    }
out:
    for (uint32_t k = first; k < next; k++) {
        const struct intro *in = &r->intros[k];
        if (in->done) {
            double t = in->t_party[0] > in->t_party[1] ? in->t_party[0] : in->t_party[1];
            lat[(*n_lat)++] = (t - in->t_sent) * 1000.0;
        }
    }
    *n_failed_out += n_failed;
    free(pf);
    free(fifo);
    return rc;
}

/* Smoke checks: each party lists the other as a contact, introduced. */
static int check_contacts(struct run *r, struct node *n, const char *want)
{
    struct tf_proto_mp_writer w;
    msgpack_object res;
    char why[TF_BENCH_WHY_MAX];
    /* The whole list, unless preloading made it huge (a reply of tens of
     * megabytes): then the one contact. */
    bool list = r->contacts <= 1000;
    const char *verb = list ? "contact.list" : "contact.show";
    tf_bench_ctl_begin(&n->req, &w, verb, list ? 0 : 1);
    if (!list) {
        tf_proto_mp_write_cstr(&w, "name");
        tf_proto_mp_write_cstr(&w, want);
    }
    int rc = tf_bench_ctl_call(&n->req, &w, CALL_TIMEOUT_S, &res, why, sizeof why);
    if (rc != 0) {
        WHY("%s: %s: %s", n->name, verb, why);
        return rc;
    }
    const msgpack_object *items =
        list && res.type == MSGPACK_OBJECT_ARRAY ? res.via.array.ptr : &res;
    uint32_t n_items = list ? (res.type == MSGPACK_OBJECT_ARRAY ? res.via.array.size : 0) : 1;
    for (uint32_t i = 0; i < n_items; i++) {
        const char *id, *by;
        size_t id_len, by_len;
        if (tf_proto_ctl_get_str(&items[i], "id", &id, &id_len) == TF_OK &&
            id_len == strlen(want) && memcmp(id, want, id_len) == 0) {
            if (tf_proto_ctl_get_str(&items[i], "introduced_by", &by, &by_len) != TF_OK ||
                by_len != strlen(r->nodes[0].text_id) ||
                memcmp(by, r->nodes[0].text_id, by_len) != 0) {
                WHY("%s lists %s, but not as introduced by the connector", n->name, want);
                return TF_E_BAD_VALUE;
            }
            return 0;
        }
    }
    WHY("%s does not list the other party (%s) as a contact", n->name, want);
    return TF_E_NOT_FOUND;
}

/* Stops every node, reading its last figures first. */
static void stop_nodes(struct run *r)
{
    for (size_t i = 0; i < r->n_nodes; i++) {
        struct node *n = &r->nodes[i];
        if (n->pid <= 0)
            continue;
        node_cpu(n, &n->cpu_end);
        tf_bench_ctl_close(&n->req);
        tf_bench_ctl_close(&n->watch);
        /* SIGTERM all first: they stop in parallel. */
        kill(n->pid, SIGTERM);
    }
    for (size_t i = 0; i < r->n_nodes; i++) {
        struct node *n = &r->nodes[i];
        if (n->pid <= 0)
            continue;
        int rc = tf_bench_stop_pid(n->pid, false, STOP_TIMEOUT_S, &n->exit_status);
        n->stopped_cleanly =
            rc == 0 && WIFEXITED(n->exit_status) && WEXITSTATUS(n->exit_status) == 0;
        if (!n->stopped_cleanly && rc != 0)
            fprintf(stderr, "twofold-bench: %s did not stop within %.0f s of SIGTERM: killed\n",
                    n->name, STOP_TIMEOUT_S);
        else if (!n->stopped_cleanly && WIFSIGNALED(n->exit_status))
            fprintf(stderr, "twofold-bench: %s was killed by signal %d after SIGTERM\n", n->name,
                    WTERMSIG(n->exit_status));
        else if (!n->stopped_cleanly)
            fprintf(stderr, "twofold-bench: %s exited with status %d after SIGTERM\n", n->name,
                    WEXITSTATUS(n->exit_status));
        n->pid = 0;
    }
}

static void free_run(struct run *r)
{
    for (size_t i = 0; i < r->n_nodes; i++) {
        tf_bench_ctl_close(&r->nodes[i].req);
        tf_bench_ctl_close(&r->nodes[i].watch);
        opcount_unmap(&r->nodes[i]); /* perf */
        free(r->nodes[i].card);
    }
    free(r->nodes);
    free(r->intros);
    free(r->map);
}

/* Result building. */

static json_t *stats_json(const struct stats *st)
{
    if (!st->present)
        return json_null();
    json_t *j = json_object();
    for (size_t i = 0; i < st->n; i++)
        json_object_set_new(j, st->key[i], json_integer((json_int_t)st->val[i]));
    return j;
}

/* Sum over nodes of (st1[key] - st0[key]) / per; NAN unless every node has
 * the key. */
static double stats_delta(const struct run *r, const char *key, double per)
{
    double sum = 0;
    for (size_t i = 0; i < r->n_nodes; i++) {
        const uint64_t *a = stats_get(&r->nodes[i].st0, key), *b = stats_get(&r->nodes[i].st1, key);
        if (a == NULL || b == NULL)
            return NAN;
        sum += (double)(*b - *a);
    }
    return per > 0 ? sum / per : NAN;
}

static void result_nodes(const struct run *r, json_t *res)
{
    json_t *arr = json_array();
    for (size_t i = 0; i < r->n_nodes; i++) {
        const struct node *n = &r->nodes[i];
        json_t *j = json_object();
        json_object_set_new(j, "role", json_string(n->connector ? "connector" : "party"));
        json_object_set_new(j, "name", json_string(n->name));
        json_object_set_new(j, "idle_rss_kb", json_integer((json_int_t)n->idle_rss_kb));
        json_object_set_new(j, "loaded_rss_kb", json_integer((json_int_t)n->loaded_rss_kb));
        json_object_set_new(j, "peak_rss_kb", json_integer((json_int_t)n->peak_rss_kb));
        json_object_set_new(j, "loaded_anon_rss_kb", json_integer((json_int_t)n->loaded_anon_kb));
        json_object_set_new(j, "end_anon_rss_kb", json_integer((json_int_t)n->end_anon_kb));
        json_object_set_new(j, "cpu_s", jreal_or_null(n->cpu1 - n->cpu0));
        json_object_set_new(j, "cpu_total_s", jreal_or_null(n->cpu_end));
        json_object_set_new(j, "store_bytes", json_integer((json_int_t)n->store1));
        json_object_set_new(j, "store_used_bytes", json_integer((json_int_t)n->store_used));
        /* The exit code, or minus the signal that ended it; null if it
         * never ran. */
        json_object_set_new(j, "exit_status",
                            n->exit_status < 0          ? json_null()
                            : WIFEXITED(n->exit_status) ? json_integer(WEXITSTATUS(n->exit_status))
                            : WIFSIGNALED(n->exit_status) ? json_integer(-WTERMSIG(n->exit_status))
                                                          : json_null());
        json_object_set_new(j, "stopped_cleanly", json_boolean(n->stopped_cleanly));
        json_object_set_new(j, "stats", stats_json(&n->st1));
        json_array_append_new(arr, j);
    }
    json_object_set_new(res, "nodes", arr);
}

static void result_ops(json_t *res, const double ops_us[static TF_BENCH_OP_COUNT],
                       double intros_per_s, bool sealed)
{
    json_t *us = json_object(), *cnt = json_object();
    double per_intro_us = 0;
    for (int op = 0; op < TF_BENCH_OP_COUNT; op++) {
        double c = tf_bench_ops_per_intro_as((enum tf_bench_op)op, sealed);
        json_object_set_new(us, tf_bench_op_name((enum tf_bench_op)op), json_real(ops_us[op]));
        json_object_set_new(cnt, tf_bench_op_name((enum tf_bench_op)op), json_real(c));
        per_intro_us += c * ops_us[op];
    }
    long ncores = sysconf(_SC_NPROCESSORS_ONLN);
    if (ncores < 1)
        ncores = 1;
    double limit = per_intro_us > 0 ? (double)ncores * 1e6 / per_intro_us : NAN;
    json_object_set_new(res, "ops_us", us);
    json_object_set_new(res, "ops_per_intro", cnt);
    json_object_set_new(res, "crypto_us_per_intro", jreal_or_null(per_intro_us));
    json_object_set_new(res, "ncores", json_integer(ncores));
    json_object_set_new(res, "limit_intros_per_s", jreal_or_null(limit));
    json_object_set_new(res, "fraction_of_limit", jreal_or_null(intros_per_s / limit));
}

/* perf (issue 17): the ops the nodes really called during the saturation
 * phase (the shim's counts, all nodes), per intro, and the CPU-bound limit
 * they imply with this run's measured costs.  null when not counted. */
static void result_opcount(const struct run *r, json_t *res, size_t n_sat,
                           const double ops_us[static TF_BENCH_OP_COUNT])
{
    static const struct {
        const char *name;
        enum tf_bench_op cost;
    } ops[TF_BENCH_OPCOUNT_COUNT] = {
        [TF_BENCH_OPCOUNT_SIGN] = {"sign", TF_BENCH_OP_SIGN},
        [TF_BENCH_OPCOUNT_VERIFY] = {"verify", TF_BENCH_OP_VERIFY},
        [TF_BENCH_OPCOUNT_SEAL] = {"box_seal", TF_BENCH_OP_SEAL},
        [TF_BENCH_OPCOUNT_SEAL_OPEN] = {"box_seal_open", TF_BENCH_OP_SEAL_OPEN},
    };
    bool counted = n_sat > 0 && r->n_nodes > 0;
    for (size_t i = 0; i < r->n_nodes; i++)
        if (r->nodes[i].ops == NULL || r->nodes[i].ops->magic != TF_BENCH_OPCOUNT_MAGIC)
            counted = false;
    if (!counted) {
        json_object_set_new(res, "ops_counted_per_intro", json_null());
        json_object_set_new(res, "limit_counted_intros_per_s", json_null());
        return;
    }
    json_t *cnt = json_object();
    double us = 0;
    for (int op = 0; op < TF_BENCH_OPCOUNT_COUNT; op++) {
        double sum = 0;
        for (size_t i = 0; i < r->n_nodes; i++)
            sum += (double)(r->nodes[i].ops1[op] - r->nodes[i].ops0[op]);
        json_object_set_new(cnt, ops[op].name, json_real(sum / (double)n_sat));
        us += sum / (double)n_sat * ops_us[ops[op].cost];
    }
    long ncores = sysconf(_SC_NPROCESSORS_ONLN);
    json_object_set_new(res, "ops_counted_per_intro", cnt);
    json_object_set_new(res, "crypto_counted_us_per_intro", jreal_or_null(us));
    json_object_set_new(res, "limit_counted_intros_per_s",
                        jreal_or_null(us > 0 ? (double)(ncores < 1 ? 1 : ncores) * 1e6 / us : NAN));
}

/* Smoke (correctness): with the shim built, every node loaded it, and the
 * saturation phase made the counted calls the op table (ops.c) expects per
 * intro: at least as many, and at most a quarter more (an envelope sent
 * again is opened and verified again).  direct (issue 17): with direct
 * links, none of crypto_box_seal and crypto_box_seal_open at all; with
 * --sealed, every envelope's.  Through a mailbox (--mailbox) some envelopes
 * may be sealed: anything from the direct count to the sealed one. */
static int check_opcount(struct run *r, size_t n_sat)
{
    static const enum tf_bench_op cost[TF_BENCH_OPCOUNT_COUNT] = {
        [TF_BENCH_OPCOUNT_SIGN] = TF_BENCH_OP_SIGN,
        [TF_BENCH_OPCOUNT_VERIFY] = TF_BENCH_OP_VERIFY,
        [TF_BENCH_OPCOUNT_SEAL] = TF_BENCH_OP_SEAL,
        [TF_BENCH_OPCOUNT_SEAL_OPEN] = TF_BENCH_OP_SEAL_OPEN,
    };
    if (opcount_shim() == NULL)
        return 0;
    uint64_t sum[TF_BENCH_OPCOUNT_COUNT] = {0};
    uint64_t n = n_sat;
    for (size_t i = 0; i < r->n_nodes; i++) {
        const struct node *nd = &r->nodes[i];
        if (nd->ops == NULL || nd->ops->magic != TF_BENCH_OPCOUNT_MAGIC) {
            WHY("%s: the op-counting shim was not loaded (%s)", nd->name, opcount_shim());
            return TF_E_BAD_STATE;
        }
        for (int op = 0; op < TF_BENCH_OPCOUNT_COUNT; op++)
            sum[op] += nd->ops1[op] - nd->ops0[op];
    }
    for (int op = 0; op < TF_BENCH_OPCOUNT_COUNT && n > 0; op++) {
        double got = (double)sum[op] / (double)n;
        double lo = tf_bench_ops_per_intro_as(cost[op], r->o->sealed);
        double hi = tf_bench_ops_per_intro_as(cost[op], r->o->sealed || r->o->mailbox) * 1.25;
        if (got < lo - 1e-9 || got > hi + 1e-9) {
            WHY("the shim counted %.2f calls of %s per intro; the op table expects %.1f to %.1f",
                got, tf_bench_op_name(cost[op]), lo, hi);
            return TF_E_BAD_STATE;
        }
    }
    return 0;
}

static void print_opcount(const json_t *res)
{
    const json_t *cnt = json_object_get(res, "ops_counted_per_intro");
    if (!json_is_object(cnt)) {
        printf("\nops counted    (not counted: no op-counting shim)\n");
        return;
    }
    printf("\nops counted    per intro, all nodes, saturation phase (libsodium calls seen by "
           "the preloaded shim):\n               sign %.2f, verify %.2f, box_seal %.2f, "
           "box_seal_open %.2f\n               %.0f us of public-key crypto per intro: limit "
           "%.1f intros/s (the table above: %.1f)\n",
           jnum(cnt, "sign"), jnum(cnt, "verify"), jnum(cnt, "box_seal"),
           jnum(cnt, "box_seal_open"), jnum(res, "crypto_counted_us_per_intro"),
           jnum(res, "limit_counted_intros_per_s"), jnum(res, "limit_intros_per_s"));
}

/* perf (issue 17): the store's writes, from each node's status.stats
 * (docs/PERFORMANCE.md "Second round").  Commits are LMDB write transactions
 * (group commit: one per loop turn that wrote); commit_write_bytes is what
 * the node's loop thread passed to write-family calls inside commits (the
 * kernel's wchar): LMDB's dirty 4 KiB pages plus a few hundred bytes of meta
 * page per commit, so bytes / 4096 is the pages written (the meta write adds
 * under one);
 * store_pages is mdb_env_info's high-water mark (its growth shows how many
 * of the pages written were new rather than reused). */
static bool io_node_counted(const struct run *r, size_t i)
{
    return i <= r->parties; /* the connector and the parties, not a mailbox */
}

static double io_delta(const struct run *r, const char *key, bool connector)
{
    double sum = 0;
    for (size_t i = 0; i < r->n_nodes; i++) {
        if (!io_node_counted(r, i) || r->nodes[i].connector != connector)
            continue;
        const uint64_t *a = stats_get(&r->nodes[i].st0, key), *b = stats_get(&r->nodes[i].st1, key);
        if (a == NULL || b == NULL)
            return NAN;
        sum += (double)(*b - *a);
    }
    return sum;
}

static json_t *io_role_json(const struct run *r, bool connector, double n_intros)
{
    double commits = io_delta(r, "commits", connector),
           bytes = io_delta(r, "commit_write_bytes", connector),
           pages = io_delta(r, "store_pages", connector), us = io_delta(r, "commit_us", connector);
    json_t *j = json_object();
    json_object_set_new(j, "commits_per_intro", jreal_or_null(commits / n_intros));
    json_object_set_new(j, "bytes_written_per_commit", jreal_or_null(bytes / commits));
    json_object_set_new(j, "pages_written_per_commit", jreal_or_null(bytes / 4096.0 / commits));
    json_object_set_new(j, "new_pages_per_commit", jreal_or_null(pages / commits));
    json_object_set_new(j, "bytes_written_per_intro", jreal_or_null(bytes / n_intros));
    json_object_set_new(j, "commit_us_per_commit", jreal_or_null(us / commits));
    /* ackdefer: commits whose only writes were outbox deletes after ACKs
     * (NaN from a node that does not count them) */
    json_object_set_new(j, "acks_only_commits_per_intro",
                        jreal_or_null(io_delta(r, "commits_acks_only", connector) / n_intros));
    return j;
}

static void result_io(const struct run *r, json_t *res, size_t n_sat)
{
    json_t *io = json_object();
    double n = n_sat > 0 ? (double)n_sat : NAN;
    json_object_set_new(io, "connector", io_role_json(r, true, n));
    json_object_set_new(io, "parties", io_role_json(r, false, n));
    json_object_set_new(res, "store_io", io);
}

/* pages (issue 17): per table and role, the writes committed during the
 * saturation phase, per commit of that role and per intro, and the table's
 * shape at its end (per node of the role: the mean of leaf and overflow
 * pages and entries, the deepest tree).  A write dirties the leaf holding
 * its key and every branch page above it: writes to random keys of a table
 * with many leaves dirty about one leaf each, writes in key order share
 * leaves (docs/PERFORMANCE.md). */
static json_t *tables_role_json(const struct run *r, bool connector, double n_intros)
{
    const struct node *first = NULL;
    double nodes = 0, commits = io_delta(r, "commits", connector);
    for (size_t i = 0; i < r->n_nodes; i++)
        if (io_node_counted(r, i) && r->nodes[i].connector == connector) {
            first = first != NULL ? first : &r->nodes[i];
            nodes++;
        }
    json_t *j = json_object();
    if (first == NULL)
        return j;
    for (size_t t = 0; t < first->st1.n_tables; t++) {
        double writes = 0, leaf = 0, branch = 0, overflow = 0, entries = 0, depth = 0;
        for (size_t i = 0; i < r->n_nodes; i++) {
            const struct node *nd = &r->nodes[i];
            if (!io_node_counted(r, i) || nd->connector != connector ||
                nd->st1.n_tables != first->st1.n_tables || nd->st0.n_tables != nd->st1.n_tables)
                continue;
            writes += (double)(nd->st1.tab[t][TAB_WRITES] - nd->st0.tab[t][TAB_WRITES]);
            leaf += (double)nd->st1.tab[t][TAB_LEAF] / nodes;
            branch += (double)nd->st1.tab[t][TAB_BRANCH] / nodes;
            overflow += (double)nd->st1.tab[t][TAB_OVERFLOW] / nodes;
            entries += (double)nd->st1.tab[t][TAB_ENTRIES] / nodes;
            if ((double)nd->st1.tab[t][TAB_DEPTH] > depth)
                depth = (double)nd->st1.tab[t][TAB_DEPTH];
        }
        json_t *o = json_object();
        json_object_set_new(o, "writes_per_commit", jreal_or_null(writes / commits));
        json_object_set_new(o, "writes_per_intro", jreal_or_null(writes / n_intros));
        json_object_set_new(o, "entries", jreal_or_null(entries));
        json_object_set_new(o, "depth", jreal_or_null(depth));
        json_object_set_new(o, "branch_pages", jreal_or_null(branch));
        json_object_set_new(o, "leaf_pages", jreal_or_null(leaf));
        json_object_set_new(o, "overflow_pages", jreal_or_null(overflow));
        json_object_set_new(j, first->st1.table[t], o);
    }
    return j;
}

static void result_tables(const struct run *r, json_t *res, size_t n_sat)
{
    json_t *t = json_object();
    double n = n_sat > 0 ? (double)n_sat : NAN;
    json_object_set_new(t, "connector", tables_role_json(r, true, n));
    json_object_set_new(t, "parties", tables_role_json(r, false, n));
    json_object_set_new(res, "store_tables", t);
}

static void print_tables(const json_t *res)
{
    const json_t *all = json_object_get(res, "store_tables");
    static const char *const roles[] = {"connector", "parties"};
    if (!json_is_object(all))
        return;
    printf("\nstore tables   writes per commit and per intro in the saturation phase; shape at "
           "its end\n               (per node: entries, depth, branch, leaf and overflow pages; "
           "parties: "
           "writes summed, shape averaged)\n");
    for (size_t i = 0; i < 2; i++) {
        const json_t *role = json_object_get(all, roles[i]);
        const char *name;
        const json_t *o;
        printf("  %-10s %-14s %9s %9s %9s %5s %7s %7s %8s\n", roles[i], "table", "w/commit",
               "w/intro", "entries", "depth", "branch", "leaves", "overflow");
        json_object_foreach((json_t *)(uintptr_t)role, name, o)
        {
            if (!(jnum(o, "writes_per_intro") > 0))
                continue;
            printf("  %-10s %-14s %9.1f %9.2f %9.0f %5.0f %7.0f %7.0f %8.0f\n", "", name,
                   jnum(o, "writes_per_commit"), jnum(o, "writes_per_intro"), jnum(o, "entries"),
                   jnum(o, "depth"), jnum(o, "branch_pages"), jnum(o, "leaf_pages"),
                   jnum(o, "overflow_pages"));
        }
    }
}

/* Smoke (correctness, never timing): every node reports the store figures,
 * and the saturation phase moved them: it committed, and those commits
 * wrote pages (when this kernel accounts task I/O at all). */
static int check_io_stats(struct run *r)
{
    int fd = open("/proc/thread-self/io", O_RDONLY | O_CLOEXEC);
    bool kernel_counts = fd >= 0;
    if (fd >= 0)
        close(fd);
    static const char *const keys[] = {"commits", "commit_write_bytes", "store_pages"};
    for (size_t i = 0; i < r->n_nodes; i++) {
        if (!io_node_counted(r, i))
            continue;
        const struct node *nd = &r->nodes[i];
        for (size_t k = 0; k < sizeof keys / sizeof keys[0]; k++) {
            const uint64_t *a = stats_get(&nd->st0, keys[k]), *b = stats_get(&nd->st1, keys[k]);
            if (a == NULL || b == NULL) {
                WHY("%s: status.stats has no %s", nd->name, keys[k]);
                return TF_E_BAD_STATE;
            }
            bool must_grow = k == 0 || (k == 1 && kernel_counts);
            if (must_grow && *b <= *a) {
                WHY("%s: status.stats.%s did not grow over %s intros (%" PRIu64 " -> %" PRIu64 ")",
                    nd->name, keys[k], "the saturation", *a, *b);
                return TF_E_BAD_STATE;
            }
            if (k == 2 && *b == 0) {
                WHY("%s: status.stats.store_pages is 0", nd->name);
                return TF_E_BAD_STATE;
            }
        }
        /* pages: status {tables: true} names every table, and the events
         * table (every intro appends events on every node) was written. */
        bool events = false;
        for (size_t t = 0; t < nd->st1.n_tables; t++)
            events = events || (strcmp(nd->st1.table[t], "events") == 0 && t < nd->st0.n_tables &&
                                nd->st1.tab[t][TAB_WRITES] > nd->st0.tab[t][TAB_WRITES] &&
                                nd->st1.tab[t][TAB_ENTRIES] > 0 && nd->st1.tab[t][TAB_DEPTH] > 0);
        if (!events) {
            WHY("%s: status.tables shows no writes to the events table over the saturation",
                nd->name);
            return TF_E_BAD_STATE;
        }
    }
    return 0;
}

static void print_io(const json_t *res)
{
    const json_t *io = json_object_get(res, "store_io");
    if (!json_is_object(io))
        return;
    printf("\nstore writes   commits/intro  pages written/commit  KB/commit  new pages/commit  "
           "us/commit\n");
    static const char *const roles[] = {"connector", "parties"};
    for (size_t i = 0; i < 2; i++) {
        const json_t *j = json_object_get(io, roles[i]);
        printf("  %-12s %13.3f %21.1f %10.1f %17.2f %10.0f\n", roles[i],
               jnum(j, "commits_per_intro"), jnum(j, "pages_written_per_commit"),
               jnum(j, "bytes_written_per_commit") / 1024, jnum(j, "new_pages_per_commit"),
               jnum(j, "commit_us_per_commit"));
    }
    printf("  (written: what each node's loop thread passed to write calls inside its commits, "
           "in 4 KiB pages;\n   new pages: growth of LMDB's last page; parties summed)\n");
}

static double self_cpu(void)
{
    struct rusage ru;
    if (getrusage(RUSAGE_SELF, &ru) != 0)
        return NAN;
    return (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6 +
           (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec / 1e6;
}

/* Makes the temporary root and the node records. */
/* One control call with string arguments (key, value pairs; n pairs) on
 * n's request connection; *res is valid until the next call. */
static int call_strs(struct run *r, struct node *n, const char *verb, const char *const *kv,
                     uint32_t pairs, msgpack_object *res)
{
    struct tf_proto_mp_writer w;
    char why[TF_BENCH_WHY_MAX];
    tf_bench_ctl_begin(&n->req, &w, verb, pairs);
    for (uint32_t i = 0; i < 2 * pairs; i++)
        tf_proto_mp_write_cstr(&w, kv[i]);
    int rc = tf_bench_ctl_call(&n->req, &w, CALL_TIMEOUT_S, res, why, sizeof why);
    if (rc != 0)
        WHY("%s: %s: %s", n->name, verb, why);
    return rc;
}

/* --mailbox: the mailbox node hosts every party; each party lists it on its
 * card and is linked to it before the connector is given its (new) card. */
static int mailbox_setup(struct run *r)
{
    struct node *m = &r->nodes[r->n_nodes - 1];
    msgpack_object res;
    int rc = 0;
    for (size_t i = 1; i + 1 < r->n_nodes && rc == 0; i++) {
        struct node *p = &r->nodes[i];
        const char *host[] = {"name", p->name}, *use[] = {"card", m->card};
        if ((rc = contact_add(r, m, p->card, p->name, "known")) == 0 &&
            (rc = call_strs(r, m, "mailbox.host", host, 1, &res)) == 0)
            rc = call_strs(r, p, "mailbox.use", use, 1, &res);
    }
    for (size_t i = 1; i + 1 < r->n_nodes && rc == 0; i++) {
        struct node *p = &r->nodes[i];
        double deadline = tf_bench_now() + READY_TIMEOUT_S;
        bool up = false;
        while (rc == 0 && !up) {
            const msgpack_object *list, *c;
            if ((rc = call_strs(r, p, "mailbox.status", NULL, 0, &res)) != 0)
                break;
            list = tf_proto_ctl_get(&res, "mailboxes");
            up = list != NULL && list->type == MSGPACK_OBJECT_ARRAY && list->via.array.size == 1 &&
                 (c = tf_proto_ctl_get(&list->via.array.ptr[0], "connected")) != NULL &&
                 c->type == MSGPACK_OBJECT_BOOLEAN && c->via.boolean;
            if (!up && tf_bench_now() > deadline) {
                WHY("%s: not linked to its mailbox after %.0f s", p->name, READY_TIMEOUT_S);
                rc = -ETIMEDOUT;
            } else if (!up) {
                nanosleep(&(struct timespec){0, 20 * 1000 * 1000}, NULL);
            }
        }
        char *card = NULL;
        if (rc == 0 && (rc = cli(r, p, &card, "card", NULL, NULL, NULL, NULL, NULL)) == 0) {
            size_t len = strlen(card);
            while (len > 0 && (card[len - 1] == '\n' || card[len - 1] == ' '))
                card[--len] = '\0';
            free(p->card);
            p->card = card; /* the card that names the mailbox */
        }
    }
    return rc;
}

static int run_setup_dirs(struct run *r)
{
    const char *tmp = getenv("TMPDIR");
    /* Control socket paths must fit sun_path (108 bytes): keep the root short. */
    if (tmp == NULL || tmp[0] == '\0' || strlen(tmp) > 60)
        tmp = "/tmp";
    snprintf(r->root, sizeof r->root, "%s/tfbench-XXXXXX", tmp);
    if (mkdtemp(r->root) == NULL) {
        int e = errno;
        WHY("mkdtemp %s: %s", r->root, strerror(e));
        return -e;
    }
    r->root_made = true;
    r->n_nodes = 1 + (size_t)r->parties + (r->o->mailbox ? 1 : 0);
    r->nodes = calloc(r->n_nodes, sizeof *r->nodes);
    if (r->nodes == NULL) {
        WHY("out of memory");
        return TF_E_NOMEM;
    }
    for (size_t i = 0; i < r->n_nodes; i++) {
        struct node *n = &r->nodes[i];
        n->connector = i == 0;
        n->exit_status = -1;
        n->req.fd = n->watch.fd = -1;
        n->cpu0 = n->cpu1 = n->cpu_end = NAN;
        if (i == 0)
            snprintf(n->name, sizeof n->name, "connector");
        else if (i == 1 + (size_t)r->parties)
            snprintf(n->name, sizeof n->name, "mailbox");
        else
            snprintf(n->name, sizeof n->name, "p%zu", i - 1);
        snprintf(n->home, sizeof n->home, "%s/%s", r->root, n->name);
        snprintf(n->log, sizeof n->log, "%s/%s.log", r->root, n->name);
    }
    return 0;
}

/* Everything up to "every node is running and knows whom it should". */
static int run_setup(struct run *r)
{
    int rc = 0;
    for (size_t i = 0; i < r->n_nodes && rc == 0; i++)
        rc = node_prepare(r, &r->nodes[i]);
    for (size_t i = 0; i < r->n_nodes && rc == 0; i++)
        rc = node_start(r, &r->nodes[i]);
    for (size_t i = 0; i < r->n_nodes && rc == 0; i++)
        rc = node_ready(r, &r->nodes[i]);
    if (rc == 0 && r->o->mailbox)
        rc = mailbox_setup(r);
    /* The connector knows every party; every party knows the connector and
     * trusts it as close (its policy accepts on that). */
    for (size_t i = 1; i < 1 + (size_t)r->parties && rc == 0; i++) {
        if ((rc = contact_add(r, &r->nodes[0], r->nodes[i].card, r->nodes[i].name, "known")) == 0)
            rc = contact_add(r, &r->nodes[i], r->nodes[0].card, "connector", "close");
    }
    return rc;
}

/*
 * One complete run; returns its result object (owned by the caller), with
 * "ok" false and "error" set if anything failed.
 */
static json_t *run_one(const struct opts *o, const double ops_us[static TF_BENCH_OP_COUNT],
                       const struct preload_cards *pc, uint32_t parties, uint32_t contacts)
{
    struct run run, *r = &run;
    memset(r, 0, sizeof *r);
    r->o = o;
    r->parties = parties;
    r->contacts = contacts;
    uint32_t warmup = parties,
             low = o->lowload_set ? o->lowload : (o->intros < 200 ? o->intros : 200);
    r->n_intros = warmup + low + o->intros;
    double *lat_low = calloc(low + 1, sizeof *lat_low);
    double *lat_sat = calloc(o->intros + 1u, sizeof *lat_sat);
    double *lat_warm = calloc(warmup + 1, sizeof *lat_warm);
    size_t n_low = 0, n_sat = 0, n_warm = 0;
    uint32_t failed_low = 0, failed_sat = 0, failed_warm = 0;
    double t0 = tf_bench_now(), setup_s = NAN, preload_s = 0, sat_s = NAN, bench_cpu = NAN;
    bool smoke_ok = false;
    json_t *res = json_object();
    int rc = 0;

    for (r->map_cap = 64; r->map_cap < 2 * (size_t)r->n_intros;)
        r->map_cap *= 2;
    r->intros = calloc(r->n_intros, sizeof *r->intros);
    r->map = calloc(r->map_cap, sizeof *r->map);
    if (lat_low == NULL || lat_sat == NULL || lat_warm == NULL || r->intros == NULL ||
        r->map == NULL) {
        WHY("out of memory");
        rc = TF_E_NOMEM;
        goto done;
    }
    for (uint32_t k = 0; k < r->n_intros; k++) {
        r->intros[k].a = pair_a(k, parties);
        r->intros[k].b = pair_b(k, parties);
    }
    if ((rc = run_setup_dirs(r)) != 0 || (rc = run_setup(r)) != 0)
        goto done;
    setup_s = tf_bench_now() - t0;
    fprintf(stderr, "twofold-bench: %" PRIu32 " parties up in %.1f s (%s)\n", parties, setup_s,
            r->root);

    if (contacts > 0) {
        double p0 = tf_bench_now();
        if ((rc = preload(r, pc, contacts)) != 0)
            goto done;
        preload_s = tf_bench_now() - p0;
        fprintf(stderr, "twofold-bench: %" PRIu32 " contacts preloaded into each node in %.1f s\n",
                contacts, preload_s);
    }
    for (size_t i = 0; i < r->n_nodes; i++) {
        struct tf_bench_mem m = {0};
        if (tf_bench_proc_mem(r->nodes[i].pid, &m) == 0) {
            r->nodes[i].loaded_rss_kb = m.rss_kb;
            r->nodes[i].loaded_anon_kb = m.anon_kb;
        }
    }

    /* Warm-up: every link comes up. */
    if ((rc = drive(r, 0, warmup, warmup, lat_warm, &n_warm, &failed_warm)) != 0)
        goto done;
    fprintf(stderr, "twofold-bench: warm-up done; low load: %" PRIu32 " intros one at a time\n",
            low);
    if ((rc = drive(r, warmup, low, 1, lat_low, &n_low, &failed_low)) != 0)
        goto done;

    /* Saturation, with figures either side. */
    fprintf(stderr, "twofold-bench: saturation: %" PRIu32 " intros, %" PRIu32 " in flight\n",
            o->intros, o->inflight);
    for (size_t i = 0; i < r->n_nodes && rc == 0; i++) {
        struct node *n = &r->nodes[i];
        n->store0 = node_store_file(n);
        rc = node_status(r, n, &n->st0, NULL);
        opcount_snap(n, n->ops0); /* perf */
        node_cpu(n, &n->cpu0);
    }
    if (rc != 0)
        goto done;
    double c0 = self_cpu(), s0 = tf_bench_now();
    rc = drive(r, warmup + low, o->intros, o->inflight, lat_sat, &n_sat, &failed_sat);
    sat_s = tf_bench_now() - s0;
    bench_cpu = self_cpu() - c0;
    if (rc != 0)
        goto done;
    for (size_t i = 0; i < r->n_nodes && rc == 0; i++) {
        struct node *n = &r->nodes[i];
        struct tf_bench_mem m = {0};
        node_cpu(n, &n->cpu1);
        n->store1 = node_store_file(n);
        /* Peak memory now, before the checks below ask for big replies. */
        if (tf_bench_proc_mem(n->pid, &m) == 0) {
            n->peak_rss_kb = m.hwm_kb;
            n->end_anon_kb = m.anon_kb;
        }
        rc = node_status(r, n, &n->st1, &n->store_used);
        opcount_snap(n, n->ops1); /* perf */
    }
    if (rc != 0)
        goto done;
    if (failed_warm + failed_low + failed_sat > 0) {
        WHY("%" PRIu32 " intros were refused by the connector (see above)",
            failed_warm + failed_low + failed_sat);
        rc = TF_E_BAD_STATE;
        goto done;
    }
    /* Both parties of the first intro know each other, introduced. */
    if ((rc = check_contacts(r, &r->nodes[1], r->nodes[2].text_id)) != 0 ||
        (rc = check_contacts(r, &r->nodes[2], r->nodes[1].text_id)) != 0)
        goto done;
    if (o->smoke &&
        ((rc = check_io_stats(r)) != 0 || (rc = check_opcount(r, n_sat)) != 0)) /* perf */
        goto done;
    smoke_ok = true;

done:
    if (rc != 0) {
        fprintf(stderr, "twofold-bench: FAILED: %s\n", r->why);
        /* The nodes' last words, unless the owner interrupted the run. */
        for (size_t i = 0; i < r->n_nodes && !tf_bench_stop; i++) {
            char prefix[40];
            snprintf(prefix, sizeof prefix, "  %s| ", r->nodes[i].name);
            if (r->nodes[i].pid > 0 || r->nodes[i].card != NULL)
                tf_bench_tail(r->nodes[i].log, prefix, 15);
        }
    }
    if (r->nodes != NULL)
        stop_nodes(r);
    bool nodes_ok = true;
    for (size_t i = 0; i < r->n_nodes; i++)
        if (r->nodes[i].card != NULL && !r->nodes[i].stopped_cleanly)
            nodes_ok = false;

    double total_cpu_sat = 0, store_delta = 0;
    for (size_t i = 0; i < r->n_nodes; i++) {
        total_cpu_sat += r->nodes[i].cpu1 - r->nodes[i].cpu0;
        store_delta += (double)r->nodes[i].store1 - (double)r->nodes[i].store0;
    }
    double ips = n_sat > 0 && sat_s > 0 ? (double)n_sat / sat_s : NAN;
    json_object_set_new(res, "ok", json_boolean(rc == 0 && nodes_ok && smoke_ok));
    json_object_set_new(res, "error",
                        rc != 0     ? json_string(r->why)
                        : !nodes_ok ? json_string("a node did not exit 0 on SIGTERM")
                                    : json_null());
    json_object_set_new(res, "intros", json_integer(o->intros));
    json_object_set_new(res, "lowload_intros", json_integer(low));
    json_object_set_new(res, "warmup_intros", json_integer(warmup));
    json_object_set_new(res, "parties", json_integer(parties));
    json_object_set_new(res, "mode", json_string(o->mailbox ? "mailbox" : "direct"));
    json_object_set_new(res, "envelopes", json_string(o->sealed ? "sealed" : "direct"));
    json_object_set_new(res, "inflight", json_integer(o->inflight));
    json_object_set_new(res, "contacts", json_integer(contacts));
    json_object_set_new(res, "completed", json_integer((json_int_t)n_sat));
    json_object_set_new(res, "refused", json_integer(failed_warm + failed_low + failed_sat));
    json_object_set_new(res, "setup_s", jreal_or_null(setup_s));
    json_object_set_new(res, "preload_s", jreal_or_null(preload_s));
    json_object_set_new(res, "saturation_s", jreal_or_null(sat_s));
    json_object_set_new(res, "intros_per_s", jreal_or_null(ips));
    json_object_set_new(res, "latency_ms", latency_json(lat_low, n_low));
    json_object_set_new(res, "latency_saturated_ms", latency_json(lat_sat, n_sat));
    json_object_set_new(res, "cpu_ms_per_intro",
                        jreal_or_null(n_sat ? total_cpu_sat * 1000.0 / (double)n_sat : NAN));
    json_object_set_new(res, "bench_cpu_ms_per_intro",
                        jreal_or_null(n_sat ? bench_cpu * 1000.0 / (double)n_sat : NAN));
    result_ops(res, ops_us, ips, o->sealed);
    json_object_set_new(res, "store_bytes_per_intro",
                        jreal_or_null(n_sat ? store_delta / (double)n_sat : NAN));
    json_object_set_new(res, "messages_per_intro",
                        jreal_or_null(stats_delta(r, "envelopes_sent", (double)n_sat)));
    json_object_set_new(res, "frames_per_intro",
                        jreal_or_null(stats_delta(r, "frames_sent", (double)n_sat)));
    json_object_set_new(res, "commits_per_intro",
                        jreal_or_null(stats_delta(r, "commits", (double)n_sat)));
    json_t *spi = json_null();
    if (r->n_nodes > 0 && r->nodes[0].st1.present) {
        spi = json_object();
        for (size_t i = 0; i < r->nodes[0].st1.n; i++)
            json_object_set_new(
                spi, r->nodes[0].st1.key[i],
                jreal_or_null(stats_delta(r, r->nodes[0].st1.key[i], (double)n_sat)));
    }
    json_object_set_new(res, "stats_per_intro", spi);
    result_io(r, res, n_sat);              /* perf */
    result_tables(r, res, n_sat);          /* pages */
    result_opcount(r, res, n_sat, ops_us); /* perf */
    result_nodes(r, res);
    if (r->root_made && !o->keep) {
        if (tf_bench_rmtree(r->root) != 0)
            fprintf(stderr, "twofold-bench: cannot remove %s: %s\n", r->root, strerror(errno));
    } else if (r->root_made) {
        fprintf(stderr, "twofold-bench: kept %s\n", r->root);
    }
    free_run(r);
    free(lat_low);
    free(lat_sat);
    free(lat_warm);
    return res;
}

/* Output. */

static void print_lat(const char *label, const json_t *l)
{
    printf("  %-12s %9.2f %9.2f %9.2f %9.2f   (%lld intros)\n", label, jnum(l, "p50"),
           jnum(l, "p90"), jnum(l, "p99"), jnum(l, "max"),
           (long long)json_integer_value(json_object_get(l, "n")));
}

static void print_human(const json_t *res)
{
    const json_t *err = json_object_get(res, "error");
    printf("twofold-bench: 1 connector + %lld parties (%s), %lld intros (%lld at low load), %lld "
           "in flight, %lld extra contacts per node\n",
           json_integer_value(json_object_get(res, "parties")),
           json_string_value(json_object_get(res, "mode")),
           json_integer_value(json_object_get(res, "intros")),
           json_integer_value(json_object_get(res, "lowload_intros")),
           json_integer_value(json_object_get(res, "inflight")),
           json_integer_value(json_object_get(res, "contacts")));
    if (json_is_string(err))
        printf("FAILED: %s\n", json_string_value(err));
    printf("setup %.1f s, contact preload %.1f s\n\n", jnum(res, "setup_s"),
           jnum(res, "preload_s"));
    printf("throughput     %9.1f intros/s  (%lld completed on both sides in %.2f s)\n",
           jnum(res, "intros_per_s"), json_integer_value(json_object_get(res, "completed")),
           jnum(res, "saturation_s"));
    printf("latency (ms)         p50       p90       p99       max\n");
    print_lat("low load", json_object_get(res, "latency_ms"));
    print_lat("saturated", json_object_get(res, "latency_saturated_ms"));
    printf("cpu per intro  %9.3f ms  (all nodes, saturation phase; the bench itself: %.3f ms)\n",
           jnum(res, "cpu_ms_per_intro"), jnum(res, "bench_cpu_ms_per_intro"));
    printf("crypto limit   %9.1f intros/s  (%lld cores / %.0f us of crypto per intro)\n",
           jnum(res, "limit_intros_per_s"), json_integer_value(json_object_get(res, "ncores")),
           jnum(res, "crypto_us_per_intro"));
    printf("achieved       %9.3f of the limit\n", jnum(res, "fraction_of_limit"));
    printf("store          %9.0f bytes per intro (all nodes, data.mdb growth)\n",
           jnum(res, "store_bytes_per_intro"));
    printf("per intro      messages %.2f, frames %.2f, commits %.2f (status.stats; nan: not "
           "reported)\n",
           jnum(res, "messages_per_intro"), jnum(res, "frames_per_intro"),
           jnum(res, "commits_per_intro"));
    const json_t *spi = json_object_get(res, "stats_per_intro");
    if (json_is_object(spi)) {
        const char *key;
        const json_t *v;
        printf("  stats/intro ");
        json_object_foreach((json_t *)(uintptr_t)spi, key, v)
        {
            printf(" %s=%.2f", key, json_number_value(v));
        }
        printf("\n");
    }
    printf("\nnode          idle RSS  loaded RSS  peak RSS  anon RSS   CPU (sat)  CPU (total)  "
           "store\n");
    const json_t *nodes = json_object_get(res, "nodes");
    for (size_t i = 0; i < json_array_size(nodes); i++) {
        const json_t *n = json_array_get(nodes, i);
        printf("%-12s %7.1f MB %8.1f MB %7.1f MB %6.1f MB %9.2f s %10.2f s %6.1f MB%s\n",
               json_string_value(json_object_get(n, "name")), jnum(n, "idle_rss_kb") / 1024,
               jnum(n, "loaded_rss_kb") / 1024, jnum(n, "peak_rss_kb") / 1024,
               jnum(n, "end_anon_rss_kb") / 1024, jnum(n, "cpu_s"), jnum(n, "cpu_total_s"),
               jnum(n, "store_bytes") / 1048576,
               json_is_true(json_object_get(n, "stopped_cleanly")) ? "" : "  (did not exit 0)");
        if (i >= 5 && json_array_size(nodes) > 7) {
            printf("... and %zu more parties\n", json_array_size(nodes) - i - 1);
            break;
        }
    }
    printf("\nlibsodium op      median us   per intro   us per intro\n");
    const json_t *us = json_object_get(res, "ops_us"), *cnt = json_object_get(res, "ops_per_intro");
    for (int op = 0; op < TF_BENCH_OP_COUNT; op++) {
        const char *name = tf_bench_op_name((enum tf_bench_op)op);
        double u = jnum(us, name), c = jnum(cnt, name);
        printf("  %-22s %7.2f %9.1f %12.1f\n", name, u, c, u * c);
    }
    print_opcount(res); /* perf */
    print_io(res);      /* perf */
    print_tables(res);  /* pages */
}

static void print_scaling_row(const json_t *res, bool header)
{
    if (header)
        printf("contacts parties  intros/s  low p50  low p99  sat p50  sat p99  cpu ms/intro  "
               "peak RSS conn/party (MB)  anon RSS conn/party (MB)  preload s  ok\n");
    const json_t *lo = json_object_get(res, "latency_ms"),
                 *sa = json_object_get(res, "latency_saturated_ms"),
                 *nodes = json_object_get(res, "nodes");
    printf("%8lld %7lld %9.1f %8.2f %8.2f %8.2f %8.2f %13.3f %11.1f / %-11.1f %11.1f / %-12.1f "
           "%9.1f  %s\n",
           json_integer_value(json_object_get(res, "contacts")),
           json_integer_value(json_object_get(res, "parties")), jnum(res, "intros_per_s"),
           jnum(lo, "p50"), jnum(lo, "p99"), jnum(sa, "p50"), jnum(sa, "p99"),
           jnum(res, "cpu_ms_per_intro"), jnum(json_array_get(nodes, 0), "peak_rss_kb") / 1024,
           jnum(json_array_get(nodes, 1), "peak_rss_kb") / 1024,
           jnum(json_array_get(nodes, 0), "end_anon_rss_kb") / 1024,
           jnum(json_array_get(nodes, 1), "end_anon_rss_kb") / 1024, jnum(res, "preload_s"),
           json_is_true(json_object_get(res, "ok")) ? "yes" : "NO");
    fflush(stdout);
}

/* Options. */

static void usage(FILE *out)
{
    fprintf(out,
            "usage: twofold-bench [options]\n"
            "  --intros N          intros at saturation (default 10000)\n"
            "  --lowload-intros M  intros at low load, one at a time (default min(N, 200))\n"
            "  --parties P         parties (default 2); intros go round-robin over pairs\n"
            "  --inflight K        intros unfinished at once at saturation (default 64)\n"
            "  --contacts C        preload C extra contacts into every node first\n"
            "  --scaling           runs: contacts 100, 10000, 100000 (P=2) and P=50 (C=100)\n"
            "  --smoke             CI: 20 intros (5 at low load), P=2; correctness only\n"
            "  --json              one JSON object (an array with --scaling) on stdout\n"
            "  --timeout S         give up on a phase after S seconds (default 1800)\n"
            "  --stall S           give up when nothing completes for S seconds (default 60)\n"
            "  --ops               print the op-count table (ops.c) with its reasons, and exit\n"
            "  --print-cards N     print N cards of fresh identities, one per line, and exit\n"
            "  --keep              keep the temporary homes and logs\n"
            "  --mailbox           parties run without a listener and are reached through\n"
            "                      one mailbox node that hosts them all\n"
            "  --sealed            every node runs with direct_envelopes = 0: every envelope\n"
            "                      sealed and signed, as with peers without the feature\n"
            "  --twofoldd PATH     the daemon (default: $TF_TWOFOLDD, else the build's)\n"
            "  --twofold PATH      the CLI (default: $TF_TWOFOLD, else the build's)\n");
}

static void print_ops_table(void)
{
    size_t n;
    const struct tf_bench_op_count *t = tf_bench_ops_table(&n);
    printf("per intro, all three nodes (C connector, A and B parties):\n");
    for (size_t i = 0; i < n; i++)
        printf("  %-22s %5.1f  %s\n", tf_bench_op_name(t[i].op), t[i].count, t[i].where);
    printf("totals on direct links:");
    for (int op = 0; op < TF_BENCH_OP_COUNT; op++)
        printf(" %s %.1f", tf_bench_op_name((enum tf_bench_op)op),
               tf_bench_ops_per_intro((enum tf_bench_op)op));
    t = tf_bench_ops_sealed_table(&n);
    printf("\nwith every envelope sealed and signed (--sealed, peers without \"direct\"), "
           "add:\n");
    for (size_t i = 0; i < n; i++)
        printf("  %-22s %5.1f  %s\n", tf_bench_op_name(t[i].op), t[i].count, t[i].where);
    printf("totals sealed:");
    for (int op = 0; op < TF_BENCH_OP_COUNT; op++)
        printf(" %s %.1f", tf_bench_op_name((enum tf_bench_op)op),
               tf_bench_ops_per_intro_as((enum tf_bench_op)op, true));
    printf("\n");
}

static int parse_u32(const char *s, uint32_t min, uint32_t max, uint32_t *out)
{
    char *end;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno != 0 || end == s || *end != '\0' || s[0] == '-' || v < min || v > max)
        return -EINVAL;
    *out = (uint32_t)v;
    return 0;
}

static int parse_opts(int argc, char **argv, struct opts *o)
{
    memset(o, 0, sizeof *o);
    o->intros = 10000;
    o->parties = 2;
    o->inflight = 64;
    o->timeout_s = 1800;
    o->stall_s = 60;
    o->twofoldd = getenv("TF_TWOFOLDD") ? getenv("TF_TWOFOLDD") : TF_BENCH_TWOFOLDD;
    o->twofold = getenv("TF_TWOFOLD") ? getenv("TF_TWOFOLD") : TF_BENCH_TWOFOLD;
    bool intros_set = false, parties_set = false;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        uint32_t u = 0;
        int bad = 0;
        if (strcmp(a, "--json") == 0) {
            o->json = true;
        } else if (strcmp(a, "--smoke") == 0) {
            o->smoke = true;
        } else if (strcmp(a, "--scaling") == 0) {
            o->scaling = true;
        } else if (strcmp(a, "--keep") == 0) {
            o->keep = true;
        } else if (strcmp(a, "--mailbox") == 0) {
            o->mailbox = true;
        } else if (strcmp(a, "--sealed") == 0) {
            o->sealed = true;
        } else if (strcmp(a, "--ops") == 0) {
            print_ops_table();
            exit(0);
        } else if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
            usage(stdout);
            exit(0);
        } else if (v == NULL) {
            fprintf(stderr, "twofold-bench: unknown option or missing value: %s\n", a);
            return -EINVAL;
        } else if (strcmp(a, "--twofoldd") == 0) {
            o->twofoldd = v, i++;
        } else if (strcmp(a, "--twofold") == 0) {
            o->twofold = v, i++;
        } else if (strcmp(a, "--intros") == 0) {
            bad = parse_u32(v, 1, 10000000, &o->intros), i++, intros_set = true;
        } else if (strcmp(a, "--lowload-intros") == 0) {
            bad = parse_u32(v, 0, 10000000, &o->lowload), i++, o->lowload_set = true;
        } else if (strcmp(a, "--parties") == 0) {
            bad = parse_u32(v, 2, 1000, &o->parties), i++, parties_set = true;
        } else if (strcmp(a, "--inflight") == 0) {
            bad = parse_u32(v, 1, 100000, &o->inflight), i++;
        } else if (strcmp(a, "--contacts") == 0) {
            bad = parse_u32(v, 0, 10000000, &o->contacts), i++;
        } else if (strcmp(a, "--print-cards") == 0) {
            bad = parse_u32(v, 1, 10000000, &o->print_cards), i++;
        } else if (strcmp(a, "--timeout") == 0) {
            bad = parse_u32(v, 1, 86400 * 7, &u), i++, o->timeout_s = u;
        } else if (strcmp(a, "--stall") == 0) {
            bad = parse_u32(v, 1, 86400, &u), i++, o->stall_s = u;
        } else {
            fprintf(stderr, "twofold-bench: unknown option %s (try --help)\n", a);
            return -EINVAL;
        }
        if (bad) {
            fprintf(stderr, "twofold-bench: bad value for %s: %s\n", a, v);
            return -EINVAL;
        }
    }
    if (o->smoke) {
        if (!intros_set)
            o->intros = 20;
        if (!o->lowload_set)
            o->lowload = 5, o->lowload_set = true;
        if (!parties_set)
            o->parties = 2;
    }
    return 0;
}

/*
 * One signed card of a fresh identity, in text form (*text owned by the
 * caller).  Built here rather than with tf_proto_identity_from_seed +
 * tf_proto_card_sign: those keep each secret in sodium_malloc memory (an
 * mmap, mprotect and munmap per identity), which made 100,000 cards take
 * about a minute on the benchmark machine.  The layout is proto/card.h's;
 * make_cards checks the first card with tf_proto_card_verify, and every
 * node verifies every card it is given.
 */
static int make_card(size_t i, uint64_t issued, char **text)
{
    uint8_t seed[crypto_sign_SEEDBYTES], sk[crypto_sign_SECRETKEYBYTES];
    uint8_t sign_pk[TF_PROTO_KEY_LEN], dh_sk[TF_PROTO_KEY_LEN];
    uint8_t noise_pk[TF_PROTO_KEY_LEN], box_pk[TF_PROTO_KEY_LEN], sig[TF_PROTO_SIG_LEN];
    struct tf_proto_mp_writer w;
    struct tf_proto_buf body = {0}, tagged = {0}, card = {0};
    char name[32];
    randombytes_buf(seed, sizeof seed);
    crypto_sign_seed_keypair(sign_pk, sk, seed);
    randombytes_buf(dh_sk, sizeof dh_sk);
    int rc = crypto_scalarmult_base(noise_pk, dh_sk);
    randombytes_buf(dh_sk, sizeof dh_sk);
    rc |= crypto_scalarmult_base(box_pk, dh_sk);
    sodium_memzero(dh_sk, sizeof dh_sk);
    sodium_memzero(seed, sizeof seed);
    if (rc != 0) {
        sodium_memzero(sk, sizeof sk);
        return TF_E_BAD_VALUE;
    }
    snprintf(name, sizeof name, "bench contact %zu", i);
    tf_proto_mp_writer_init(&w);
    tf_proto_mp_write_map(&w, 10);
    tf_proto_mp_write_uint(&w, 1); /* version */
    tf_proto_mp_write_uint(&w, TF_PROTO_CARD_VERSION);
    tf_proto_mp_write_uint(&w, 2); /* sign_pk */
    tf_proto_mp_write_bin(&w, sign_pk, TF_PROTO_KEY_LEN);
    tf_proto_mp_write_uint(&w, 3); /* noise_pk */
    tf_proto_mp_write_bin(&w, noise_pk, TF_PROTO_KEY_LEN);
    tf_proto_mp_write_uint(&w, 4); /* box_pk */
    tf_proto_mp_write_bin(&w, box_pk, TF_PROTO_KEY_LEN);
    tf_proto_mp_write_uint(&w, 5); /* name */
    tf_proto_mp_write_cstr(&w, name);
    for (uint64_t key = 6; key <= 8; key++) { /* addrs, offers, seeks: none */
        tf_proto_mp_write_uint(&w, key);
        tf_proto_mp_write_array(&w, 0);
    }
    tf_proto_mp_write_uint(&w, 9); /* issued */
    tf_proto_mp_write_uint(&w, issued);
    tf_proto_mp_write_uint(&w, 10); /* seq */
    tf_proto_mp_write_uint(&w, 1);
    if ((rc = tf_proto_mp_writer_finish(&w, &body)) != TF_OK)
        goto out;
    /* The statement signature: Ed25519 over tag || 0x00 || body
     * (proto/statement.h). */
    const char *tag = tf_proto_domain_tag(TF_PROTO_DOMAIN_CARD);
    tf_proto_mp_writer_init(&w);
    tf_proto_mp_write_raw(&w, (const uint8_t *)tag, strlen(tag) + 1);
    tf_proto_mp_write_raw(&w, body.data, body.len);
    if ((rc = tf_proto_mp_writer_finish(&w, &tagged)) != TF_OK)
        goto out;
    crypto_sign_detached(sig, NULL, tagged.data, tagged.len, sk);
    tf_proto_mp_writer_init(&w);
    tf_proto_mp_write_array(&w, 2);
    tf_proto_mp_write_bin(&w, body.data, body.len);
    tf_proto_mp_write_bin(&w, sig, sizeof sig);
    if ((rc = tf_proto_mp_writer_finish(&w, &card)) == TF_OK)
        rc = tf_proto_card_to_text(card.data, card.len, text);
out:
    sodium_memzero(sk, sizeof sk);
    tf_proto_buf_free(&body);
    tf_proto_buf_free(&tagged);
    tf_proto_buf_free(&card);
    return rc;
}

/* Makes `count` cards of fresh identities, in text form. */
static int make_cards(struct preload_cards *pc, size_t count)
{
    struct tf_proto_buf signed_card = {0};
    struct tf_proto_card fields;
    pc->text = calloc(count ? count : 1, sizeof *pc->text);
    if (pc->text == NULL)
        return TF_E_NOMEM;
    uint64_t now = (uint64_t)time(NULL);
    for (size_t i = 0; i < count; i++) {
        int rc = make_card(i, now, &pc->text[i]);
        if (rc != TF_OK)
            return rc;
        pc->n = i + 1;
    }
    /* The first one must read back as a valid card. */
    int rc = count > 0
                 ? tf_proto_card_from_text(pc->text[0], strlen(pc->text[0]), &signed_card, &fields)
                 : TF_OK;
    tf_proto_buf_free(&signed_card);
    return rc;
}

static void free_cards(struct preload_cards *pc)
{
    for (size_t i = 0; i < pc->n; i++)
        free(pc->text[i]);
    free(pc->text);
    pc->text = NULL;
    pc->n = 0;
}

int main(int argc, char **argv)
{
    struct opts o;
    struct preload_cards pc = {0};
    double ops_us[TF_BENCH_OP_COUNT];
    struct sigaction sa;
    if (parse_opts(argc, argv, &o) != 0)
        return 2;
    if (sodium_init() < 0) {
        fprintf(stderr, "twofold-bench: sodium_init failed\n");
        return 1;
    }
    if (o.print_cards > 0) {
        /* Contacts for another test to load (tests/web/test_web_load.py). */
        int rc = make_cards(&pc, o.print_cards);
        for (size_t i = 0; rc == TF_OK && i < pc.n; i++)
            printf("%s\n", pc.text[i]);
        free_cards(&pc);
        return rc == TF_OK && fflush(stdout) == 0 ? 0 : 1;
    }
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_stop_signal; /* no SA_RESTART: waits see EINTR */
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);

    /* The four scaling runs: contacts, parties. */
    static const uint32_t SCALING[][2] = {{100, 2}, {10000, 2}, {100000, 2}, {100, 50}};
    size_t n_runs = o.scaling ? sizeof SCALING / sizeof SCALING[0] : 1;
    uint32_t max_contacts = o.scaling ? 100000 : o.contacts;

    fprintf(stderr, "twofold-bench: measuring libsodium op costs\n");
    tf_bench_ops_measure(ops_us);
    if (max_contacts > 0) {
        double t = tf_bench_now();
        fprintf(stderr, "twofold-bench: making %" PRIu32 " contact cards\n", max_contacts);
        if (make_cards(&pc, max_contacts) != 0) {
            fprintf(stderr, "twofold-bench: cannot make contact cards\n");
            free_cards(&pc);
            return 1;
        }
        fprintf(stderr, "twofold-bench: cards made in %.1f s\n", tf_bench_now() - t);
    }

    bool all_ok = true;
    json_t *runs = json_array();
    for (size_t i = 0; i < n_runs && !tf_bench_stop; i++) {
        uint32_t contacts = o.scaling ? SCALING[i][0] : o.contacts;
        uint32_t parties = o.scaling ? SCALING[i][1] : o.parties;
        json_t *res = run_one(&o, ops_us, &pc, parties, contacts);
        all_ok = all_ok && json_is_true(json_object_get(res, "ok"));
        if (!o.json && o.scaling)
            print_scaling_row(res, i == 0);
        else if (!o.json)
            print_human(res);
        json_array_append_new(runs, res);
    }
    if (o.json) {
        json_t *out = o.scaling ? runs : json_array_get(runs, 0);
        char *text = json_dumps(out, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
        /* The output must parse: check it as a consumer would. */
        json_t *back = text ? json_loads(text, 0, NULL) : NULL;
        if (back == NULL) {
            fprintf(stderr, "twofold-bench: the JSON output does not parse\n");
            all_ok = false;
        } else {
            printf("%s\n", text);
        }
        json_decref(back);
        free(text);
    }
    json_decref(runs);
    free_cards(&pc);
    if (tf_bench_stop)
        all_ok = false;
    return all_ok ? 0 : 1;
}
