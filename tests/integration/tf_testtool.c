/* SPDX-License-Identifier: MIT */
/*
 * Test helper for the integration tests: makes objects a node would only make
 * through later features (or a malicious peer would make), from a home's own
 * key file, and plays hostile peers against a node's listener.
 *
 *   tf-testtool card HOME --seq N [--name NAME] [--addr HOST:PORT]
 *       prints a card signed by HOME's identity, with sequence number N
 *
 *   tf-testtool hostile HOST:PORT [--home HOME] MODE [--count N]
 *                       [--source-ip IP] [--timeout-ms MS] [--hold-ms MS]
 *                       [--expect-open N] [--framed] [--from-home HOME]
 *       plays a hostile peer against the node listening at HOST:PORT, with
 *       plain blocking POSIX sockets, and prints one line of what happened.
 *       Exit 0 when the node behaved as expected (cut the connection off),
 *       1 when it did not, 2 for a usage error.  MODE is one of:
 *
 *       random       sends N (default 70000) random bytes; the node must
 *                    close within --timeout-ms (default 3000).  With --framed,
 *                    the bytes go in one frame with a valid length header
 *                    (N <= 65535), so they reach the Noise handshake (as a
 *                    message 1 with a payload, or a truncated one) instead of
 *                    failing the length check
 *       half-handshake
 *                    sends Noise message 1 only, reads the node's message 2,
 *                    and waits (up to --timeout-ms, default 30000) for the
 *                    node to close; prints how long that took ("after N ms")
 *       huge-frame   sends a 0xFFFF length header and 1000 bytes; the node
 *                    must close within --timeout-ms (default 3000)
 *       garbage-after-handshake
 *                    needs --home: completes a real XX handshake as HOME's
 *                    identity (a fresh card built from its key), exchanges
 *                    HELLO and a PING/PONG, then (1) sends a frame that does
 *                    not decrypt and (2), on a second connection, a frame that
 *                    decrypts to bytes that are not a link message, which
 *                    must get an ERROR; both must be closed by the node
 *       bad-envelopes
 *                    needs --home and --from-home: on a link authenticated as
 *                    HOME, sends envelopes the node must refuse, and checks
 *                    each ACK's reason (§9): sealed by the --from-home
 *                    identity (6, not the peer), from HOME, a stranger (7),
 *                    expired (3), addressed to HOME itself (2), and of a type
 *                    the node does not take (8)
 *       ping-and-vanish
 *                    needs --home: N times (default 20), opens a link as
 *                    HOME, sends 64 PINGs and closes without reading the
 *                    PONGs; then checks that the node still takes a link
 *       flood        opens N (default 100) connections, prints "connected N"
 *                    on its own line, holds them for --hold-ms (default
 *                    3000) and reports how many the node closed and how fast.
 *                    With --expect-open M, exit 0 only if exactly M are still
 *                    open at the end; otherwise only if at least one closed.
 *
 *       --source-ip binds the client sockets to that address first (loopback
 *       accepts all of 127.0.0.0/8), so a flood can come from another address
 *       than the peers that must still get through.
 *
 *   tf-testtool no-ack-peer HOST:PORT --home HOME [--hold-ms MS]
 *       listens on HOST:PORT as HOME's identity (a fresh card with that
 *       address) for --hold-ms (default 6000), printing "listening" first:
 *       completes handshakes as responder, answers HELLO and PING, takes
 *       ENVELOPEs and never acknowledges them; then prints how many envelopes
 *       and distinct msg ids it saw, and the most copies of one.
 */
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <sodium.h>

#include "hostile/peer.h"
#include "node/home.h"
#include "node/keys.h"
#include "proto/card.h"
#include "proto/envelope.h"
#include "proto/link.h"
#include "proto/noise.h"

static int load_identity(const char *home, struct tf_proto_identity *id)
{
    char key[TF_NODE_PATH_MAX], why[512] = "cannot build the key path";
    if (tf_node_home_path(home, TF_NODE_HOME_KEY, key, sizeof key) != 0 ||
        tf_node_keys_load(key, id, why, sizeof why) != 0) {
        fprintf(stderr, "tf-testtool: %s\n", why);
        return -1;
    }
    return 0;
}

/* Signs a card for id; *out owned by the caller. */
static int sign_card(const struct tf_proto_identity *id, const char *name, const char *addr,
                     uint64_t issued, uint64_t seq, struct tf_proto_buf *out)
{
    struct tf_proto_card c;
    memset(&c, 0, sizeof c);
    memcpy(c.sign_pk, id->sign_pk, 32);
    memcpy(c.noise_pk, id->noise_pk, 32);
    memcpy(c.box_pk, id->box_pk, 32);
    c.name = (struct tf_proto_bytes){(const uint8_t *)name, strlen(name)};
    c.n_addrs = 1;
    c.addrs[0] = (struct tf_proto_bytes){(const uint8_t *)addr, strlen(addr)};
    c.issued = issued;
    c.seq = seq;
    return tf_proto_card_sign(id, &c, out);
}

static int card(int argc, char **argv)
{
    const char *home = NULL, *name = "Test", *addr = "127.0.0.1:7451";
    unsigned long long seq = 1;
    for (int i = 0; i < argc; i++) {
        if (strcmp(argv[i], "--seq") == 0 && i + 1 < argc)
            seq = strtoull(argv[++i], NULL, 10);
        else if (strcmp(argv[i], "--name") == 0 && i + 1 < argc)
            name = argv[++i];
        else if (strcmp(argv[i], "--addr") == 0 && i + 1 < argc)
            addr = argv[++i];
        else if (home == NULL)
            home = argv[i];
        else
            return 2;
    }
    if (home == NULL)
        return 2;
    struct tf_proto_identity id = {0};
    if (load_identity(home, &id) != 0)
        return 1;
    struct tf_proto_buf signed_card;
    char *text = NULL;
    int rc = sign_card(&id, name, addr, 1800000000, seq, &signed_card);
    if (rc == TF_OK) {
        rc = tf_proto_card_to_text(signed_card.data, signed_card.len, &text);
        tf_proto_buf_free(&signed_card);
    }
    tf_proto_identity_deinit(&id);
    if (rc != TF_OK) {
        fprintf(stderr, "tf-testtool: %s\n", tf_strerror(rc));
        return 1;
    }
    printf("%s\n", text);
    free(text);
    return 0;
}

/* Hostile peers. */

struct hostile {
    const char *target;
    const char *home;
    const char *from_home;
    const char *source_ip;
    struct sockaddr_storage addr;
    socklen_t addr_len;
    long count;      /* -1: the mode's default */
    long timeout_ms; /* -1: the mode's default */
    long hold_ms;
    long expect_open; /* -1: not given */
    bool framed;
};

static int parse_target(struct hostile *h)
{
    struct hp_target t;
    if (hp_parse_target(h->target, &t) != 0)
        return -1;
    h->addr = t.addr;
    h->addr_len = t.addr_len;
    return 0;
}

/* Connects to the target (from source_ip if set).  Returns the fd or -1. */
static int dial(const struct hostile *h)
{
    int fd = socket(h->addr.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        fprintf(stderr, "tf-testtool: socket: %s\n", strerror(errno));
        return -1;
    }
    if (h->source_ip != NULL) {
        struct addrinfo hints, *res = NULL;
        memset(&hints, 0, sizeof hints);
        hints.ai_family = h->addr.ss_family;
        hints.ai_socktype = SOCK_STREAM;
        hints.ai_flags = AI_NUMERICHOST | AI_PASSIVE;
        if (getaddrinfo(h->source_ip, "0", &hints, &res) != 0 || res == NULL) {
            fprintf(stderr, "tf-testtool: bad --source-ip %s\n", h->source_ip);
            close(fd);
            return -1;
        }
        int rc = bind(fd, res->ai_addr, res->ai_addrlen);
        freeaddrinfo(res);
        if (rc != 0) {
            fprintf(stderr, "tf-testtool: bind %s: %s\n", h->source_ip, strerror(errno));
            close(fd);
            return -1;
        }
    }
    if (connect(fd, (const struct sockaddr *)&h->addr, h->addr_len) != 0) {
        fprintf(stderr, "tf-testtool: connect %s: %s\n", h->target, strerror(errno));
        close(fd);
        return -1;
    }
    int one = 1;
    (void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    return fd;
}

/* Waits for the node to close fd, discarding what it sends, until deadline.
 * Returns 1 when closed (EOF or reset), 0 at the deadline, -1 on a local
 * error. */
static int wait_closed(int fd, uint64_t deadline)
{
    uint8_t buf[4096];
    for (;;) {
        uint64_t now = hp_now_ms();
        if (now >= deadline)
            return 0;
        struct pollfd p = {.fd = fd, .events = POLLIN};
        int n = poll(&p, 1, (int)(deadline - now));
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return -1;
        if (n == 0)
            return 0;
        ssize_t r = recv(fd, buf, sizeof buf, 0);
        if (r == 0)
            return 1;
        if (r < 0 && (errno == ECONNRESET || errno == EPIPE))
            return 1;
        if (r < 0 && errno != EINTR && errno != EAGAIN)
            return -1;
    }
}

static long opt(long v, long dflt)
{
    return v >= 0 ? v : dflt;
}

static int hostile_random(const struct hostile *h)
{
    size_t n = (size_t)opt(h->count, 70000);
    long timeout = opt(h->timeout_ms, 3000);
    uint8_t *junk = malloc(n > 0 ? n : 1);
    if (junk == NULL)
        return 1;
    randombytes_buf(junk, n);
    int fd = dial(h);
    if (fd < 0) {
        free(junk);
        return 1;
    }
    uint64_t t0 = hp_now_ms();
    /* The node may cut us off halfway: a failed send is fine. */
    int src = h->framed ? hp_send_frame(fd, junk, n) : hp_send_all(fd, junk, n);
    int closed = wait_closed(fd, t0 + (uint64_t)timeout);
    uint64_t dt = hp_now_ms() - t0;
    close(fd);
    printf("random: sent %zu bytes%s (starting %02x%02x%02x%02x)%s; %s after %llu ms\n", n,
           h->framed ? " in one frame" : "", n > 0 ? junk[0] : 0, n > 1 ? junk[1] : 0,
           n > 2 ? junk[2] : 0, n > 3 ? junk[3] : 0, src != 0 ? " (cut off while sending)" : "",
           closed == 1 ? "node closed the connection" : "connection still open",
           (unsigned long long)dt);
    free(junk);
    return closed == 1 ? 0 : 1;
}

/* Starts an XX handshake as initiator with static key s_sk (random if NULL). */
static int handshake_init(struct tf_proto_noise_handshake *hs, const uint8_t *s_sk)
{
    uint8_t e[32], s[32];
    randombytes_buf(e, sizeof e);
    if (s_sk == NULL)
        randombytes_buf(s, sizeof s);
    struct tf_proto_noise_config c = {
        .pattern = TF_PROTO_NOISE_PATTERN_XX,
        .role = TF_PROTO_NOISE_ROLE_INITIATOR,
        .prologue = (const uint8_t *)TF_PROTO_NOISE_PROLOGUE,
        .prologue_len = TF_PROTO_NOISE_PROLOGUE_LEN,
        .s_sk = s_sk != NULL ? s_sk : s,
        .e_sk = e,
    };
    int rc = tf_proto_noise_handshake_init(hs, &c);
    sodium_memzero(e, sizeof e);
    sodium_memzero(s, sizeof s);
    return rc;
}

static int hostile_half_handshake(const struct hostile *h)
{
    long timeout = opt(h->timeout_ms, 30000);
    static uint8_t msg[TF_PROTO_NOISE_MSG_MAX];
    size_t len;
    struct tf_proto_noise_handshake hs;
    memset(&hs, 0, sizeof hs);
    int rc = handshake_init(&hs, NULL);
    if (rc == TF_OK)
        rc = tf_proto_noise_handshake_write(&hs, NULL, 0, msg, sizeof msg, &len);
    tf_proto_noise_handshake_deinit(&hs);
    if (rc != TF_OK) {
        fprintf(stderr, "tf-testtool: noise: %s\n", tf_strerror(rc));
        return 1;
    }
    int fd = dial(h);
    if (fd < 0)
        return 1;
    uint64_t t0 = hp_now_ms();
    if (hp_send_frame(fd, msg, len) != 0) {
        close(fd);
        printf("half-handshake: could not send message 1\n");
        return 1;
    }
    /* The node answers with message 2; we never send message 3. */
    long n2 = hp_recv_frame_len(fd, msg, t0 + (uint64_t)timeout);
    int closed = n2 < 0 ? 1 : wait_closed(fd, t0 + (uint64_t)timeout);
    uint64_t dt = hp_now_ms() - t0;
    close(fd);
    if (n2 < 0)
        printf("half-handshake: no message 2; node closed the connection after %llu ms\n",
               (unsigned long long)dt);
    else
        printf("half-handshake: got message 2 (%ld bytes); %s after %llu ms\n", n2,
               closed == 1 ? "node closed the connection" : "connection still open",
               (unsigned long long)dt);
    return closed == 1 && n2 >= 0 ? 0 : 1;
}

static int hostile_huge_frame(const struct hostile *h)
{
    long timeout = opt(h->timeout_ms, 3000);
    uint8_t buf[2 + 1000];
    buf[0] = 0xff;
    buf[1] = 0xff;
    randombytes_buf(buf + 2, sizeof buf - 2);
    int fd = dial(h);
    if (fd < 0)
        return 1;
    uint64_t t0 = hp_now_ms();
    int src = hp_send_all(fd, buf, sizeof buf);
    int closed = wait_closed(fd, t0 + (uint64_t)timeout);
    uint64_t dt = hp_now_ms() - t0;
    close(fd);
    printf("huge-frame: sent a 65535-byte length header and %zu bytes%s; %s after %llu ms\n",
           sizeof buf - 2, src != 0 ? " (cut off while sending)" : "",
           closed == 1 ? "node closed the connection" : "connection still open",
           (unsigned long long)dt);
    return closed == 1 ? 0 : 1;
}

/* A link up with the node: the transport ciphers after a full handshake and
 * the HELLO exchange. */
struct session {
    int fd;
    struct tf_proto_noise_cipher tx, rx;
    char peer[TF_PROTO_TEXT_ID_SIZE];
    uint8_t peer_sign_pk[32], peer_box_pk[32]; /* from the node's card */
};

static int session_send(struct session *s, const struct tf_proto_buf *msg)
{
    static uint8_t ct[TF_PROTO_NOISE_MSG_MAX];
    size_t n;
    int rc = tf_proto_noise_cipher_encrypt(&s->tx, msg->data, msg->len, ct, sizeof ct, &n);
    if (rc != TF_OK)
        return rc;
    return hp_send_frame(s->fd, ct, n) == 0 ? TF_OK : TF_E_BAD_STATE;
}

/* Receives and decodes one link message into *m (views into buf). */
static int session_recv(struct session *s, uint8_t *buf, uint64_t deadline,
                        struct tf_proto_link_msg *m)
{
    long n = hp_recv_frame_len(s->fd, buf, deadline);
    size_t plen;
    if (n < 0)
        return TF_E_TRUNCATED;
    int rc = tf_proto_noise_cipher_decrypt(&s->rx, buf, (size_t)n, buf, (size_t)n, &plen);
    if (rc == TF_OK)
        rc = tf_proto_link_decode(buf, plen, m);
    return rc;
}

static void session_close(struct session *s)
{
    if (s->fd >= 0)
        close(s->fd);
    s->fd = -1;
    tf_proto_noise_cipher_deinit(&s->tx);
    tf_proto_noise_cipher_deinit(&s->rx);
}

/* Completes the XX handshake as id, checks the node's card, exchanges HELLO
 * and a PING/PONG.  On failure prints why and returns -1. */
static int session_open(const struct hostile *h, const struct tf_proto_identity *id,
                        const struct tf_proto_buf *my_card, struct session *s)
{
    static uint8_t buf[TF_PROTO_NOISE_MSG_MAX], payload[TF_PROTO_NOISE_MSG_MAX];
    uint64_t deadline = hp_now_ms() + (uint64_t)opt(h->timeout_ms, 3000);
    size_t len, plen;
    struct tf_proto_noise_handshake hs;
    struct tf_proto_card peer;
    struct tf_proto_link_msg m;
    struct tf_proto_buf msg;
    const char *what = "noise";
    memset(&hs, 0, sizeof hs);
    memset(s, 0, sizeof *s);
    if ((s->fd = dial(h)) < 0)
        return -1;
    int rc = handshake_init(&hs, tf_proto_identity_noise_sk(id));
    if (rc == TF_OK)
        rc = tf_proto_noise_handshake_write(&hs, NULL, 0, buf, sizeof buf, &len);
    if (rc == TF_OK && hp_send_frame(s->fd, buf, len) != 0)
        what = "send message 1", rc = TF_E_BAD_STATE;
    long n2 = rc == TF_OK ? hp_recv_frame_len(s->fd, buf, deadline) : -1;
    if (rc == TF_OK && n2 < 0)
        what = "receive message 2", rc = TF_E_TRUNCATED;
    if (rc == TF_OK)
        rc = tf_proto_noise_handshake_read(&hs, buf, (size_t)n2, payload, sizeof payload, &plen);
    /* The card, then zero padding (docs/PROTOCOL.md §9). */
    if (rc == TF_OK && ((rc = tf_proto_link_hs_payload_card(payload, plen, &plen)) != TF_OK ||
                        (rc = tf_proto_card_verify(payload, plen, &peer)) != TF_OK))
        what = "the node's card";
    if (rc == TF_OK &&
        sodium_memcmp(peer.noise_pk, tf_proto_noise_handshake_remote_static(&hs), 32) != 0)
        what = "the node's card", rc = TF_E_KEY_MISMATCH;
    if (rc == TF_OK) {
        tf_proto_text_id_encode(peer.sign_pk, s->peer);
        memcpy(s->peer_sign_pk, peer.sign_pk, 32);
        memcpy(s->peer_box_pk, peer.box_pk, 32);
        rc =
            tf_proto_noise_handshake_write(&hs, my_card->data, my_card->len, buf, sizeof buf, &len);
    }
    if (rc == TF_OK && hp_send_frame(s->fd, buf, len) != 0)
        what = "send message 3", rc = TF_E_BAD_STATE;
    if (rc == TF_OK)
        rc = tf_proto_noise_handshake_split(&hs, &s->tx, &s->rx);
    tf_proto_noise_handshake_deinit(&hs);
    if (rc == TF_OK && (rc = tf_proto_link_hello(NULL, 0, &msg)) == TF_OK) {
        what = "HELLO";
        rc = session_send(s, &msg);
        tf_proto_buf_free(&msg);
    }
    if (rc == TF_OK && (rc = session_recv(s, buf, deadline, &m)) == TF_OK &&
        m.type != TF_PROTO_LINK_HELLO)
        what = "the node's HELLO", rc = TF_E_BAD_VALUE;
    if (rc == TF_OK && (rc = tf_proto_link_ping(TF_PROTO_LINK_PING, 42, &msg)) == TF_OK) {
        what = "PING";
        rc = session_send(s, &msg);
        tf_proto_buf_free(&msg);
    }
    if (rc == TF_OK && (rc = session_recv(s, buf, deadline, &m)) == TF_OK &&
        (m.type != TF_PROTO_LINK_PONG || m.nonce != 42))
        what = "the node's PONG", rc = TF_E_BAD_VALUE;
    if (rc != TF_OK) {
        printf("hostile: could not set up the link (%s: %s)\n", what, tf_strerror(rc));
        session_close(s);
        return -1;
    }
    return 0;
}

static int hostile_garbage(const struct hostile *h)
{
    if (h->home == NULL) {
        fprintf(stderr, "tf-testtool: garbage-after-handshake needs --home HOME\n");
        return 2;
    }
    static uint8_t buf[TF_PROTO_NOISE_MSG_MAX];
    long timeout = opt(h->timeout_ms, 3000);
    struct tf_proto_identity id = {0};
    struct tf_proto_buf my_card = {0};
    struct session s;
    if (load_identity(h->home, &id) != 0)
        return 1;
    int rc = sign_card(&id, "Mallory", "127.0.0.1:9", (uint64_t)time(NULL), 1, &my_card);
    if (rc != TF_OK) {
        fprintf(stderr, "tf-testtool: card: %s\n", tf_strerror(rc));
        tf_proto_identity_deinit(&id);
        return 1;
    }
    int ok = 0;
    char peer[TF_PROTO_TEXT_ID_SIZE] = "?";
    /* 1. A frame that does not decrypt: the node must close at once. */
    int closed1 = -2;
    uint64_t dt1 = 0;
    if (session_open(h, &id, &my_card, &s) == 0) {
        snprintf(peer, sizeof peer, "%s", s.peer);
        uint8_t junk[200];
        randombytes_buf(junk, sizeof junk);
        uint64_t t0 = hp_now_ms();
        if (hp_send_frame(s.fd, junk, sizeof junk) == 0) {
            /* and more garbage frames behind it, which must not matter */
            for (int i = 0; i < 3; i++) {
                randombytes_buf(junk, sizeof junk);
                (void)hp_send_frame(s.fd, junk, sizeof junk);
            }
        }
        closed1 = wait_closed(s.fd, t0 + (uint64_t)timeout);
        dt1 = hp_now_ms() - t0;
        session_close(&s);
    }
    /* 2. A frame that decrypts but is no link message: ERROR, then close. */
    int closed2 = -2;
    uint64_t dt2 = 0;
    bool got_error = false;
    uint64_t err_reason = 0;
    if (closed1 == 1 && session_open(h, &id, &my_card, &s) == 0) {
        uint8_t not_msgpack[] = {0xc1, 0x00, 0xff, 0x42};
        struct tf_proto_buf plain = {not_msgpack, sizeof not_msgpack};
        struct tf_proto_link_msg m;
        uint64_t t0 = hp_now_ms();
        if (session_send(&s, &plain) == TF_OK &&
            session_recv(&s, buf, t0 + (uint64_t)timeout, &m) == TF_OK &&
            m.type == TF_PROTO_LINK_ERROR) {
            got_error = true;
            err_reason = m.reason;
        }
        closed2 = wait_closed(s.fd, t0 + (uint64_t)timeout);
        dt2 = hp_now_ms() - t0;
        session_close(&s);
    }
    ok = closed1 == 1 && closed2 == 1 && got_error && err_reason == TF_PROTO_LINK_ERROR_PROTOCOL;
    printf("garbage-after-handshake: link up with %s; undecryptable frame: %s after %llu ms; "
           "undecodable message: %s (reason %llu), %s after %llu ms\n",
           peer,
           closed1 == 1    ? "node closed"
           : closed1 == -2 ? "not tried"
                           : "still open",
           (unsigned long long)dt1, got_error ? "ERROR" : "no ERROR",
           (unsigned long long)err_reason,
           closed2 == 1    ? "node closed"
           : closed2 == -2 ? "not tried"
                           : "still open",
           (unsigned long long)dt2);
    tf_proto_buf_free(&my_card);
    tf_proto_identity_deinit(&id);
    return ok ? 0 : 1;
}

/* Sends one envelope on s and waits for its ACK; *status and *reason get the
 * ACK's fields, or -1 when none came. */
static void envelope_ack(struct session *s, const struct tf_proto_identity *from,
                         const uint8_t to_pk[32], uint64_t expires, uint16_t type, long timeout,
                         int64_t *status, int64_t *reason)
{
    static uint8_t buf[TF_PROTO_NOISE_MSG_MAX];
    static const char text[] = "not what it seems";
    uint8_t msg_id[TF_PROTO_MSG_ID_LEN];
    struct tf_proto_buf env = {0}, msg = {0};
    struct tf_proto_link_msg m;
    *status = *reason = -1;
    randombytes_buf(msg_id, sizeof msg_id);
    if (tf_proto_envelope_seal(from, to_pk, s->peer_box_pk, msg_id, expires, type,
                               (const uint8_t *)text, sizeof text - 1, &env) != TF_OK ||
        tf_proto_link_envelope(env.data, env.len, &msg) != TF_OK || session_send(s, &msg) != TF_OK)
        goto done;
    uint64_t deadline = hp_now_ms() + (uint64_t)timeout;
    while (session_recv(s, buf, deadline, &m) == TF_OK) {
        if (m.type == TF_PROTO_LINK_ACK && memcmp(m.msg_id, msg_id, sizeof msg_id) == 0) {
            *status = (int64_t)m.status;
            *reason = (int64_t)m.reason;
            break;
        }
    }
done:
    tf_proto_buf_free(&env);
    tf_proto_buf_free(&msg);
}

/* Envelopes the node must refuse, each with its ACK reason (§9), on a link
 * authenticated as --home: sent by another identity (--from-home), from a
 * stranger, expired, addressed to someone else, of a type the node does not
 * take.  Prints the ACK each got. */
static int hostile_envelopes(const struct hostile *h)
{
    if (h->home == NULL || h->from_home == NULL) {
        fprintf(stderr, "tf-testtool: bad-envelopes needs --home HOME --from-home HOME\n");
        return 2;
    }
    long timeout = opt(h->timeout_ms, 3000);
    struct tf_proto_identity id = {0}, other = {0};
    struct tf_proto_buf my_card = {0};
    struct session s;
    if (load_identity(h->home, &id) != 0)
        return 1;
    if (load_identity(h->from_home, &other) != 0 ||
        sign_card(&id, "Mallory", "127.0.0.1:9", (uint64_t)time(NULL), 1, &my_card) != TF_OK ||
        session_open(h, &id, &my_card, &s) != 0) {
        tf_proto_buf_free(&my_card);
        tf_proto_identity_deinit(&id);
        tf_proto_identity_deinit(&other);
        return 1;
    }
    uint64_t later = (uint64_t)time(NULL) + 3600, before = (uint64_t)time(NULL) - 60;
    struct {
        const char *name;
        const struct tf_proto_identity *from;
        const uint8_t *to;
        uint64_t expires;
        uint16_t type;
        int64_t want, status, reason;
    } cases[] = {
        {"not-peer", &other, s.peer_sign_pk, later, TF_PROTO_MSG_TYPE_NOTE,
         TF_PROTO_ACK_REASON_NOT_PEER, 0, 0},
        {"not-a-contact", &id, s.peer_sign_pk, later, TF_PROTO_MSG_TYPE_NOTE,
         TF_PROTO_ACK_REASON_REFUSED, 0, 0},
        {"expired", &id, s.peer_sign_pk, before, TF_PROTO_MSG_TYPE_NOTE,
         TF_PROTO_ACK_REASON_EXPIRED, 0, 0},
        {"not-for-me", &id, id.sign_pk, later, TF_PROTO_MSG_TYPE_NOTE,
         TF_PROTO_ACK_REASON_NOT_FOR_ME, 0, 0},
        /* Every type is handled now: a card update whose body is no card is
         * an invalid body. */
        {"invalid-body", &id, s.peer_sign_pk, later, TF_PROTO_MSG_TYPE_CARD_UPDATE,
         TF_PROTO_ACK_REASON_INVALID, 0, 0},
    };
    size_t n = sizeof cases / sizeof cases[0];
    bool ok = true;
    printf("bad-envelopes:");
    for (size_t i = 0; i < n; i++) {
        envelope_ack(&s, cases[i].from, cases[i].to, cases[i].expires, cases[i].type, timeout,
                     &cases[i].status, &cases[i].reason);
        bool good = cases[i].status == TF_PROTO_ACK_REJECTED && cases[i].reason == cases[i].want;
        ok = ok && good;
        if (cases[i].status < 0)
            printf(" %s=no-ACK(want 1/%lld)", cases[i].name, (long long)cases[i].want);
        else
            printf(" %s=%lld/%lld%s", cases[i].name, (long long)cases[i].status,
                   (long long)cases[i].reason, good ? "" : "(WRONG)");
    }
    printf("\n");
    session_close(&s);
    tf_proto_buf_free(&my_card);
    tf_proto_identity_deinit(&id);
    tf_proto_identity_deinit(&other);
    return ok ? 0 : 1;
}

/* Opens a link, sends a burst of PINGs and closes at once without reading
 * the PONGs, --count times (default 20): the node writes to a connection the
 * peer has closed, which must only close that link (EPIPE), never kill the
 * node (SIGPIPE). */
static int hostile_vanish(const struct hostile *h)
{
    if (h->home == NULL) {
        fprintf(stderr, "tf-testtool: ping-and-vanish needs --home HOME\n");
        return 2;
    }
    long rounds = opt(h->count, 20);
    struct tf_proto_identity id = {0};
    struct tf_proto_buf my_card = {0};
    if (load_identity(h->home, &id) != 0)
        return 1;
    if (sign_card(&id, "Mallory", "127.0.0.1:9", (uint64_t)time(NULL), 1, &my_card) != TF_OK) {
        tf_proto_identity_deinit(&id);
        return 1;
    }
    long done = 0;
    for (; done < rounds; done++) {
        struct session s;
        if (session_open(h, &id, &my_card, &s) != 0)
            break;
        for (int i = 0; i < 64; i++) {
            struct tf_proto_buf ping;
            if (tf_proto_link_ping(TF_PROTO_LINK_PING, (uint64_t)i + 1, &ping) != TF_OK)
                break;
            int rc = session_send(&s, &ping);
            tf_proto_buf_free(&ping);
            if (rc != TF_OK)
                break;
        }
        session_close(&s); /* the PONGs are left unread */
    }
    /* The node must still take a link. */
    struct session s;
    bool alive = done == rounds && session_open(h, &id, &my_card, &s) == 0;
    if (alive)
        session_close(&s);
    printf("ping-and-vanish: %ld of %ld rounds; node %s\n", done, rounds,
           alive ? "still takes links" : "no longer takes links");
    tf_proto_buf_free(&my_card);
    tf_proto_identity_deinit(&id);
    return alive ? 0 : 1;
}

static int hostile_flood(const struct hostile *h)
{
    long n = opt(h->count, 100);
    long hold = h->hold_ms >= 0 ? h->hold_ms : 3000;
    int *fds = calloc((size_t)n, sizeof *fds);
    uint64_t *closed_at = calloc((size_t)n, sizeof *closed_at);
    struct pollfd *pf = calloc((size_t)n, sizeof *pf);
    if (fds == NULL || closed_at == NULL || pf == NULL)
        return 1;
    uint64_t t0 = hp_now_ms();
    long opened = 0;
    for (long i = 0; i < n; i++) {
        if ((fds[i] = dial(h)) < 0)
            break;
        opened++;
    }
    printf("connected %ld\n", opened);
    fflush(stdout);
    long n_closed = 0;
    uint64_t end = hp_now_ms() + (uint64_t)hold;
    for (;;) {
        uint64_t now = hp_now_ms();
        if (now >= end)
            break;
        nfds_t k = 0;
        for (long i = 0; i < opened; i++) {
            if (closed_at[i] != 0)
                continue;
            pf[k].fd = fds[i];
            pf[k].events = POLLIN;
            pf[k].revents = 0;
            k++;
        }
        if (k == 0)
            break;
        int r = poll(pf, k, (int)(end - now));
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            continue;
        for (nfds_t j = 0; j < k; j++) {
            if (pf[j].revents == 0)
                continue;
            uint8_t b[512];
            ssize_t got = recv(pf[j].fd, b, sizeof b, MSG_DONTWAIT);
            if (got > 0 || (got < 0 && (errno == EAGAIN || errno == EINTR)))
                continue; /* the node said something; still open */
            for (long i = 0; i < opened; i++) {
                if (fds[i] == pf[j].fd) {
                    closed_at[i] = hp_now_ms();
                    n_closed++;
                }
            }
        }
    }
    uint64_t last_close = 0;
    for (long i = 0; i < opened; i++) {
        if (closed_at[i] != 0 && closed_at[i] - t0 > last_close)
            last_close = closed_at[i] - t0;
        close(fds[i]);
    }
    long still_open = opened - n_closed;
    printf("flood: opened %ld of %ld connections%s%s; node closed %ld (the last after %llu ms), "
           "%ld still open after %ld ms\n",
           opened, n, h->source_ip ? " from " : "", h->source_ip ? h->source_ip : "", n_closed,
           (unsigned long long)last_close, still_open, hold);
    free(fds);
    free(closed_at);
    free(pf);
    if (opened < n)
        return 1;
    if (h->expect_open >= 0)
        return still_open == h->expect_open ? 0 : 1;
    return n_closed > 0 ? 0 : 1;
}

static int hostile(int argc, char **argv)
{
    struct hostile h = {.count = -1, .timeout_ms = -1, .hold_ms = -1, .expect_open = -1};
    const char *mode = NULL;
    for (int i = 0; i < argc; i++) {
        const char *a = argv[i];
        bool has = i + 1 < argc;
        if (strcmp(a, "--home") == 0 && has)
            h.home = argv[++i];
        else if (strcmp(a, "--from-home") == 0 && has)
            h.from_home = argv[++i];
        else if (strcmp(a, "--count") == 0 && has)
            h.count = strtol(argv[++i], NULL, 10);
        else if (strcmp(a, "--source-ip") == 0 && has)
            h.source_ip = argv[++i];
        else if (strcmp(a, "--timeout-ms") == 0 && has)
            h.timeout_ms = strtol(argv[++i], NULL, 10);
        else if (strcmp(a, "--hold-ms") == 0 && has)
            h.hold_ms = strtol(argv[++i], NULL, 10);
        else if (strcmp(a, "--expect-open") == 0 && has)
            h.expect_open = strtol(argv[++i], NULL, 10);
        else if (strcmp(a, "--framed") == 0)
            h.framed = true;
        else if (a[0] == '-')
            return 2;
        else if (h.target == NULL)
            h.target = a;
        else if (mode == NULL)
            mode = a;
        else
            return 2;
    }
    if (h.target == NULL || mode == NULL || (h.framed && (h.count < 1 || h.count > 65535)))
        return 2;
    if (parse_target(&h) != 0) {
        fprintf(stderr, "tf-testtool: bad address %s (want IP:PORT)\n", h.target);
        return 2;
    }
    signal(SIGPIPE, SIG_IGN);
    if (strcmp(mode, "random") == 0)
        return hostile_random(&h);
    if (strcmp(mode, "half-handshake") == 0)
        return hostile_half_handshake(&h);
    if (strcmp(mode, "huge-frame") == 0)
        return hostile_huge_frame(&h);
    if (strcmp(mode, "garbage-after-handshake") == 0)
        return hostile_garbage(&h);
    if (strcmp(mode, "ping-and-vanish") == 0)
        return hostile_vanish(&h);
    if (strcmp(mode, "bad-envelopes") == 0)
        return hostile_envelopes(&h);
    if (strcmp(mode, "flood") == 0)
        return hostile_flood(&h);
    fprintf(stderr, "tf-testtool: unknown mode %s\n", mode);
    return 2;
}

/* A peer that takes envelopes and never acknowledges them. */

struct quiet_conn {
    int fd;
    int stage; /* 0: wants message 1, 1: wants message 3, 2: wants HELLO, 3: up */
    struct tf_proto_noise_handshake hs;
    struct tf_proto_noise_cipher tx, rx;
};

static void quiet_close(struct quiet_conn *c)
{
    if (c->fd >= 0)
        close(c->fd);
    c->fd = -1;
    tf_proto_noise_handshake_deinit(&c->hs);
    tf_proto_noise_cipher_deinit(&c->tx);
    tf_proto_noise_cipher_deinit(&c->rx);
}

#define QUIET_IDS_MAX 256

struct quiet_seen {
    uint8_t id[QUIET_IDS_MAX][TF_PROTO_MSG_ID_LEN];
    unsigned copies[QUIET_IDS_MAX];
    size_t n_ids;
    unsigned envelopes, connections;
};

static void quiet_record(struct quiet_seen *q, const uint8_t *id)
{
    q->envelopes++;
    for (size_t i = 0; i < q->n_ids; i++) {
        if (memcmp(q->id[i], id, TF_PROTO_MSG_ID_LEN) == 0) {
            q->copies[i]++;
            return;
        }
    }
    if (q->n_ids < QUIET_IDS_MAX) {
        memcpy(q->id[q->n_ids], id, TF_PROTO_MSG_ID_LEN);
        q->copies[q->n_ids++] = 1;
    }
}

/* Handles one frame on c; returns -1 when c should be closed. */
static int quiet_frame(struct quiet_conn *c, const struct tf_proto_identity *id,
                       const struct tf_proto_buf *my_card, struct quiet_seen *q)
{
    static uint8_t buf[TF_PROTO_NOISE_MSG_MAX], out[TF_PROTO_NOISE_MSG_MAX];
    long n = hp_recv_frame_len(c->fd, buf, hp_now_ms() + 2000);
    size_t len;
    if (n < 0)
        return -1;
    if (c->stage == 0) {
        uint8_t e[32];
        randombytes_buf(e, sizeof e);
        struct tf_proto_noise_config cfg = {
            .pattern = TF_PROTO_NOISE_PATTERN_XX,
            .role = TF_PROTO_NOISE_ROLE_RESPONDER,
            .prologue = (const uint8_t *)TF_PROTO_NOISE_PROLOGUE,
            .prologue_len = TF_PROTO_NOISE_PROLOGUE_LEN,
            .s_sk = tf_proto_identity_noise_sk(id),
            .e_sk = e,
        };
        int rc = tf_proto_noise_handshake_init(&c->hs, &cfg);
        sodium_memzero(e, sizeof e);
        if (rc == TF_OK)
            rc = tf_proto_noise_handshake_read(&c->hs, buf, (size_t)n, out, sizeof out, &len);
        if (rc == TF_OK)
            rc = tf_proto_noise_handshake_write(&c->hs, my_card->data, my_card->len, out,
                                                sizeof out, &len);
        if (rc != TF_OK || hp_send_frame(c->fd, out, len) != 0)
            return -1;
        c->stage = 1;
        return 0;
    }
    if (c->stage == 1) {
        struct tf_proto_buf hello;
        if (tf_proto_noise_handshake_read(&c->hs, buf, (size_t)n, out, sizeof out, &len) != TF_OK ||
            tf_proto_noise_handshake_split(&c->hs, &c->tx, &c->rx) != TF_OK)
            return -1;
        tf_proto_noise_handshake_deinit(&c->hs);
        struct session s = {.fd = c->fd, .tx = c->tx};
        if (tf_proto_link_hello(NULL, 0, &hello) != TF_OK)
            return -1;
        int rc = session_send(&s, &hello);
        tf_proto_buf_free(&hello);
        c->tx = s.tx;
        c->stage = 2;
        return rc == TF_OK ? 0 : -1;
    }
    size_t plen;
    struct tf_proto_link_msg m;
    if (tf_proto_noise_cipher_decrypt(&c->rx, buf, (size_t)n, buf, (size_t)n, &plen) != TF_OK ||
        tf_proto_link_decode(buf, plen, &m) != TF_OK)
        return -1;
    if (c->stage == 2) {
        c->stage = m.type == TF_PROTO_LINK_HELLO ? 3 : -1;
        return c->stage == 3 ? 0 : -1;
    }
    if (m.type == TF_PROTO_LINK_PING) {
        struct tf_proto_buf pong;
        struct session s = {.fd = c->fd, .tx = c->tx};
        int rc = tf_proto_link_ping(TF_PROTO_LINK_PONG, m.nonce, &pong);
        if (rc == TF_OK) {
            rc = session_send(&s, &pong);
            tf_proto_buf_free(&pong);
        }
        c->tx = s.tx;
        return rc == TF_OK ? 0 : -1;
    }
    if (m.type == TF_PROTO_LINK_ENVELOPE) {
        struct tf_proto_envelope env;
        if (tf_proto_envelope_decode(m.envelope.ptr, m.envelope.len, &env) == TF_OK)
            quiet_record(q, env.msg_id);
        return 0; /* and never an ACK */
    }
    if (m.type == TF_PROTO_LINK_BYE || m.type == TF_PROTO_LINK_ERROR)
        return -1;
    return 0;
}

static int no_ack_peer(int argc, char **argv)
{
    const char *listen_addr = NULL, *home = NULL;
    long hold = 6000;
    for (int i = 0; i < argc; i++) {
        if (strcmp(argv[i], "--home") == 0 && i + 1 < argc)
            home = argv[++i];
        else if (strcmp(argv[i], "--hold-ms") == 0 && i + 1 < argc)
            hold = strtol(argv[++i], NULL, 10);
        else if (argv[i][0] != '-' && listen_addr == NULL)
            listen_addr = argv[i];
        else
            return 2;
    }
    if (listen_addr == NULL || home == NULL)
        return 2;
    struct hostile h = {.target = listen_addr};
    if (parse_target(&h) != 0) {
        fprintf(stderr, "tf-testtool: bad address %s (want IP:PORT)\n", listen_addr);
        return 2;
    }
    signal(SIGPIPE, SIG_IGN);
    struct tf_proto_identity id = {0};
    struct tf_proto_buf my_card = {0};
    if (load_identity(home, &id) != 0)
        return 1;
    int rc = sign_card(&id, "Quiet", listen_addr, (uint64_t)time(NULL), 1, &my_card);
    int lfd = socket(h.addr.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0), one = 1;
    if (rc != TF_OK || lfd < 0 ||
        setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) != 0 ||
        bind(lfd, (const struct sockaddr *)&h.addr, h.addr_len) != 0 || listen(lfd, 16) != 0) {
        fprintf(stderr, "tf-testtool: cannot listen on %s: %s\n", listen_addr,
                rc != TF_OK ? tf_strerror(rc) : strerror(errno));
        if (lfd >= 0)
            close(lfd);
        tf_proto_buf_free(&my_card);
        tf_proto_identity_deinit(&id);
        return 1;
    }
    printf("listening\n");
    fflush(stdout);
    static struct quiet_seen q;
    struct quiet_conn conns[8];
    for (size_t i = 0; i < 8; i++) {
        memset(&conns[i], 0, sizeof conns[i]);
        conns[i].fd = -1;
    }
    uint64_t end = hp_now_ms() + (uint64_t)hold;
    for (uint64_t now; (now = hp_now_ms()) < end;) {
        struct pollfd pf[9];
        int map[9];
        nfds_t k = 0;
        pf[k] = (struct pollfd){.fd = lfd, .events = POLLIN};
        map[k++] = -1;
        for (int i = 0; i < 8; i++) {
            if (conns[i].fd >= 0) {
                pf[k] = (struct pollfd){.fd = conns[i].fd, .events = POLLIN};
                map[k++] = i;
            }
        }
        int r = poll(pf, k, (int)(end - now));
        if (r <= 0)
            continue;
        for (nfds_t j = 0; j < k; j++) {
            if (pf[j].revents == 0)
                continue;
            if (map[j] < 0) {
                int fd = accept(lfd, NULL, NULL);
                int slot = -1;
                for (int i = 0; i < 8 && fd >= 0; i++)
                    if (conns[i].fd < 0) {
                        slot = i;
                        break;
                    }
                if (slot < 0) {
                    if (fd >= 0)
                        close(fd);
                    continue;
                }
                conns[slot].fd = fd;
                conns[slot].stage = 0;
                q.connections++;
            } else if (quiet_frame(&conns[map[j]], &id, &my_card, &q) != 0) {
                quiet_close(&conns[map[j]]);
            }
        }
    }
    unsigned max_copies = 0;
    for (size_t i = 0; i < q.n_ids; i++)
        if (q.copies[i] > max_copies)
            max_copies = q.copies[i];
    printf("no-ack-peer: %u connections, %u envelopes, %zu distinct msg ids, at most %u copies "
           "of one\n",
           q.connections, q.envelopes, q.n_ids, max_copies);
    for (int i = 0; i < 8; i++)
        quiet_close(&conns[i]);
    close(lfd);
    tf_proto_buf_free(&my_card);
    tf_proto_identity_deinit(&id);
    return 0;
}

static const char USAGE[] =
    "usage: tf-testtool card HOME --seq N [--name NAME] [--addr HOST:PORT]\n"
    "       tf-testtool hostile HOST:PORT [--home HOME] MODE [--count N] [--source-ip IP]\n"
    "                   [--timeout-ms MS] [--hold-ms MS] [--expect-open N] [--framed]\n"
    "                   [--from-home HOME]\n"
    "       MODE: random, half-handshake, huge-frame, garbage-after-handshake, bad-envelopes,\n"
    "             ping-and-vanish, flood\n"
    "       tf-testtool no-ack-peer HOST:PORT --home HOME [--hold-ms MS]\n";

int main(int argc, char **argv)
{
    if (sodium_init() < 0)
        return 1;
    int rc = 2;
    if (argc >= 2 && strcmp(argv[1], "card") == 0)
        rc = card(argc - 2, argv + 2);
    else if (argc >= 2 && strcmp(argv[1], "hostile") == 0)
        rc = hostile(argc - 2, argv + 2);
    else if (argc >= 2 && strcmp(argv[1], "no-ack-peer") == 0)
        rc = no_ack_peer(argc - 2, argv + 2);
    if (rc == 2)
        fputs(USAGE, stderr);
    return rc;
}
