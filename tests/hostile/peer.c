/* SPDX-License-Identifier: MIT */
#include "peer.h"

#include <errno.h>
#include <arpa/inet.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <sodium.h>

#include "node/home.h"
#include "node/keys.h"
#include "proto/card.h"
#include "proto/statement.h"

uint64_t hp_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

int hp_parse_target(const char *text, struct hp_target *t)
{
    char host[160];
    memset(t, 0, sizeof *t);
    if (strlen(text) >= sizeof host)
        return -1;
    snprintf(host, sizeof host, "%s", text);
    snprintf(t->text, sizeof t->text, "%s", text);
    char *colon = strrchr(host, ':');
    if (colon == NULL)
        return -1;
    *colon = '\0';
    char *hp = host;
    if (hp[0] == '[') {
        hp++;
        size_t n = strlen(hp);
        if (n > 0 && hp[n - 1] == ']')
            hp[n - 1] = '\0';
    }
    struct addrinfo hints, *res = NULL;
    memset(&hints, 0, sizeof hints);
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_NUMERICHOST | AI_NUMERICSERV;
    if (getaddrinfo(hp, colon + 1, &hints, &res) != 0 || res == NULL)
        return -1;
    memcpy(&t->addr, res->ai_addr, res->ai_addrlen);
    t->addr_len = res->ai_addrlen;
    freeaddrinfo(res);
    return 0;
}

int hp_dial(const struct hp_target *t)
{
    int fd = socket(t->addr.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -1;
    if (t->rcvbuf > 0)
        (void)setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &t->rcvbuf, sizeof t->rcvbuf);
    if (t->source_ip != NULL) {
        struct sockaddr_in src;
        memset(&src, 0, sizeof src);
        src.sin_family = AF_INET;
        if (inet_pton(AF_INET, t->source_ip, &src.sin_addr) != 1 ||
            bind(fd, (const struct sockaddr *)&src, sizeof src) != 0) {
            fprintf(stderr, "bind %s: %s\n", t->source_ip, strerror(errno));
            close(fd);
            return -1;
        }
    }
    if (connect(fd, (const struct sockaddr *)&t->addr, t->addr_len) != 0) {
        fprintf(stderr, "connect %s: %s\n", t->text, strerror(errno));
        close(fd);
        return -1;
    }
    int one = 1;
    (void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    return fd;
}

int hp_send_all(int fd, const void *p, size_t n)
{
    const uint8_t *b = p;
    while (n > 0) {
        ssize_t w = send(fd, b, n, MSG_NOSIGNAL);
        if (w < 0 && errno == EINTR)
            continue;
        if (w < 0)
            return -1;
        b += w;
        n -= (size_t)w;
    }
    return 0;
}

int hp_send_frame(int fd, const uint8_t *body, size_t n)
{
    uint8_t hdr[TF_PROTO_FRAME_HEADER_LEN];
    if (n < 1 || n > TF_PROTO_FRAME_MAX)
        return -1;
    tf_proto_frame_header(hdr, (uint16_t)n);
    return hp_send_all(fd, hdr, sizeof hdr) == 0 ? hp_send_all(fd, body, n) : -1;
}

int hp_recv_exact(int fd, uint8_t *p, size_t n, uint64_t deadline)
{
    while (n > 0) {
        uint64_t now = hp_now_ms();
        if (now >= deadline)
            return HP_TIMEOUT;
        struct pollfd pf = {.fd = fd, .events = POLLIN};
        int k = poll(&pf, 1, (int)(deadline - now));
        if (k < 0 && errno == EINTR)
            continue;
        if (k < 0)
            return HP_CLOSED;
        if (k == 0)
            return HP_TIMEOUT;
        ssize_t r = recv(fd, p, n, 0);
        if (r < 0 && (errno == EINTR || errno == EAGAIN))
            continue;
        if (r <= 0)
            return HP_CLOSED;
        p += r;
        n -= (size_t)r;
    }
    return HP_OK;
}

int hp_recv_frame(int fd, uint8_t *buf, size_t *len, uint64_t deadline)
{
    uint8_t hdr[TF_PROTO_FRAME_HEADER_LEN];
    int rc = hp_recv_exact(fd, hdr, sizeof hdr, deadline);
    if (rc != HP_OK)
        return rc;
    if (tf_proto_frame_parse(hdr, sizeof hdr, TF_PROTO_FRAME_MAX, len) != TF_OK)
        return TF_E_BAD_LENGTH;
    return hp_recv_exact(fd, buf, *len, deadline);
}

long hp_recv_frame_len(int fd, uint8_t *buf, uint64_t deadline)
{
    size_t n;
    return hp_recv_frame(fd, buf, &n, deadline) == HP_OK ? (long)n : -1;
}

int hp_wait_closed(int fd, uint64_t deadline)
{
    uint8_t buf[4096];
    for (;;) {
        uint64_t now = hp_now_ms();
        if (now >= deadline)
            return HP_TIMEOUT;
        struct pollfd p = {.fd = fd, .events = POLLIN};
        int n = poll(&p, 1, (int)(deadline - now));
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return HP_CLOSED;
        if (n == 0)
            return HP_TIMEOUT;
        ssize_t r = recv(fd, buf, sizeof buf, 0);
        if (r == 0 || (r < 0 && errno != EINTR && errno != EAGAIN))
            return HP_CLOSED;
    }
}

int hp_load_identity(const char *home, struct tf_proto_identity *id)
{
    char key[TF_NODE_PATH_MAX], why[512] = "cannot build the key path";
    if (tf_node_home_path(home, TF_NODE_HOME_KEY, key, sizeof key) != 0 ||
        tf_node_keys_load(key, id, why, sizeof why) != 0) {
        fprintf(stderr, "tf-hostile: %s\n", why);
        return -1;
    }
    return 0;
}

int hp_sign_card(const struct tf_proto_identity *id, const char *name, const char *addr,
                 uint64_t issued, uint64_t seq, struct tf_proto_buf *out)
{
    struct tf_proto_card c;
    memset(&c, 0, sizeof c);
    memcpy(c.sign_pk, id->sign_pk, TF_PROTO_KEY_LEN);
    memcpy(c.noise_pk, id->noise_pk, TF_PROTO_KEY_LEN);
    memcpy(c.box_pk, id->box_pk, TF_PROTO_KEY_LEN);
    c.name = (struct tf_proto_bytes){(const uint8_t *)name, strlen(name)};
    c.n_addrs = 1;
    c.addrs[0] = (struct tf_proto_bytes){(const uint8_t *)addr, strlen(addr)};
    c.issued = issued;
    c.seq = seq;
    return tf_proto_card_sign(id, &c, out);
}

int hp_handshake(const struct hp_target *t, const struct hp_handshake_opts *o, struct hp_session *s,
                 uint64_t deadline)
{
    static uint8_t buf[TF_PROTO_NOISE_MSG_MAX], payload[TF_PROTO_NOISE_MSG_MAX];
    uint8_t e[TF_PROTO_NOISE_KEY_LEN];
    size_t len, plen;
    struct tf_proto_noise_handshake hs;
    struct tf_proto_card peer;
    memset(&hs, 0, sizeof hs);
    memset(s, 0, sizeof *s);
    s->auto_pong = true;
    if ((s->fd = hp_dial(t)) < 0)
        return HP_CLOSED;
    randombytes_buf(e, sizeof e);
    struct tf_proto_noise_config c = {
        .pattern = TF_PROTO_NOISE_PATTERN_XX,
        .role = TF_PROTO_NOISE_ROLE_INITIATOR,
        .prologue = (const uint8_t *)TF_PROTO_NOISE_PROLOGUE,
        .prologue_len = TF_PROTO_NOISE_PROLOGUE_LEN,
        .s_sk = tf_proto_identity_noise_sk(o->id),
        .e_sk = e,
    };
    int rc = tf_proto_noise_handshake_init(&hs, &c);
    sodium_memzero(e, sizeof e);
    if (rc == TF_OK)
        rc = tf_proto_noise_handshake_write(&hs, NULL, 0, buf, sizeof buf, &len);
    if (rc == TF_OK && hp_send_frame(s->fd, buf, len) != 0)
        rc = HP_CLOSED;
    if (rc == TF_OK)
        rc = hp_recv_frame(s->fd, buf, &len, deadline);
    if (rc == TF_OK)
        rc = tf_proto_noise_handshake_read(&hs, buf, len, payload, sizeof payload, &plen);
    if (rc == TF_OK) /* the card, then zero padding */
        rc = tf_proto_link_hs_payload_card(payload, plen, &plen);
    if (rc == TF_OK)
        rc = tf_proto_card_verify(payload, plen, &peer);
    if (rc == TF_OK &&
        sodium_memcmp(peer.noise_pk, tf_proto_noise_handshake_remote_static(&hs), 32) != 0)
        rc = TF_E_KEY_MISMATCH;
    if (rc == TF_OK) {
        memcpy(s->peer_sign_pk, peer.sign_pk, 32);
        memcpy(s->peer_box_pk, peer.box_pk, 32);
        /* Our card padded as the node pads its own, unless a case sends
         * its own payload. */
        static uint8_t padded[TF_PROTO_LINK_HS_PAYLOAD_LEN];
        if (o->msg3_payload == NULL && o->card != NULL)
            rc = tf_proto_link_hs_payload_pad(o->card->data, o->card->len, padded);
        const uint8_t *p3 = o->msg3_payload != NULL ? o->msg3_payload
                            : o->card != NULL       ? padded
                                                    : NULL;
        size_t n3 = o->msg3_payload != NULL ? o->msg3_payload_len
                    : o->card != NULL       ? sizeof padded
                                            : 0;
        if (rc == TF_OK)
            rc = tf_proto_noise_handshake_write(&hs, p3, n3, buf, sizeof buf, &len);
    }
    if (rc == TF_OK && hp_send_frame(s->fd, buf, len) != 0)
        rc = HP_CLOSED;
    if (rc == TF_OK)
        rc = tf_proto_noise_handshake_split(&hs, &s->tx, &s->rx);
    tf_proto_noise_handshake_deinit(&hs);
    return rc;
}

int hp_send_plain(struct hp_session *s, const uint8_t *p, size_t n)
{
    static uint8_t ct[TF_PROTO_NOISE_MSG_MAX];
    size_t len;
    if (tf_proto_noise_cipher_encrypt(&s->tx, p, n, ct, sizeof ct, &len) != TF_OK)
        return -1;
    return hp_send_frame(s->fd, ct, len);
}

int hp_send_built(struct hp_session *s, int rc, struct tf_proto_buf *msg)
{
    if (rc == TF_OK)
        rc = hp_send_plain(s, msg->data, msg->len) == 0 ? TF_OK : HP_CLOSED;
    tf_proto_buf_free(msg);
    return rc;
}

int hp_recv_msg(struct hp_session *s, uint8_t *buf, struct tf_proto_link_msg *m, uint64_t deadline)
{
    for (;;) {
        size_t n, plen;
        int rc = hp_recv_frame(s->fd, buf, &n, deadline);
        if (rc != HP_OK)
            return rc;
        if ((rc = tf_proto_noise_cipher_decrypt(&s->rx, buf, n, buf, n, &plen)) != TF_OK ||
            (rc = tf_proto_link_decode(buf, plen, m)) != TF_OK)
            return rc;
        if (!s->auto_pong || m->type != TF_PROTO_LINK_PING)
            return HP_OK;
        struct tf_proto_buf pong;
        rc = tf_proto_link_ping(TF_PROTO_LINK_PONG, m->nonce, &pong);
        if ((rc = hp_send_built(s, rc, &pong)) != TF_OK)
            return rc;
    }
}

int hp_hello(struct hp_session *s, uint64_t deadline)
{
    return hp_hello_features(s, NULL, 0, deadline);
}

int hp_hello_features(struct hp_session *s, const char *const *features, size_t n,
                      uint64_t deadline)
{
    static uint8_t buf[TF_PROTO_FRAME_MAX];
    struct tf_proto_buf hello;
    struct tf_proto_link_msg m;
    int rc = tf_proto_link_hello(features, n, &hello);
    if ((rc = hp_send_built(s, rc, &hello)) != TF_OK)
        return rc;
    if ((rc = hp_recv_msg(s, buf, &m, deadline)) != HP_OK)
        return rc;
    return m.type == TF_PROTO_LINK_HELLO ? HP_OK : TF_E_BAD_VALUE;
}

int hp_open(const struct hp_target *t, const struct tf_proto_identity *id,
            const struct tf_proto_buf *card, struct hp_session *s, uint64_t deadline)
{
    struct hp_handshake_opts o = {.id = id, .card = card};
    int rc = hp_handshake(t, &o, s, deadline);
    if (rc == HP_OK)
        rc = hp_hello(s, deadline);
    return rc;
}

void hp_session_close(struct hp_session *s)
{
    if (s->fd >= 0)
        close(s->fd);
    s->fd = -1;
    tf_proto_noise_cipher_deinit(&s->tx);
    tf_proto_noise_cipher_deinit(&s->rx);
}

static void store_be(uint8_t *p, uint64_t v, size_t n)
{
    for (size_t i = 0; i < n; i++)
        p[n - 1 - i] = (uint8_t)(v >> (8 * i));
}

int hp_envelope_build(const struct hp_envelope *e, struct tf_proto_buf *out)
{
    struct tf_proto_buf inner = {0};
    struct tf_proto_mp_writer w;
    int rc = TF_OK;
    if (e->inner_raw == NULL && e->sealed_raw == NULL) {
        /* sig = Sign(from_sk, "twofold/v1/envelope",
         *            to_pk || msg_id || u64be(expires) || u16be(type) || body) */
        size_t head = TF_PROTO_KEY_LEN + TF_PROTO_MSG_ID_LEN + 8 + 2;
        uint8_t *m = malloc(head + e->body_len + 1);
        uint8_t sig[TF_PROTO_SIG_LEN];
        if (m == NULL)
            return TF_E_NOMEM;
        memcpy(m, e->to_pk, TF_PROTO_KEY_LEN);
        memcpy(m + TF_PROTO_KEY_LEN, e->msg_id, TF_PROTO_MSG_ID_LEN);
        store_be(m + TF_PROTO_KEY_LEN + TF_PROTO_MSG_ID_LEN,
                 e->signed_expires != 0 ? e->signed_expires : e->expires, 8);
        store_be(m + TF_PROTO_KEY_LEN + TF_PROTO_MSG_ID_LEN + 8, e->type, 2);
        if (e->body_len > 0)
            memcpy(m + head, e->body, e->body_len);
        rc = tf_proto_sign_tagged(e->signer, TF_PROTO_DOMAIN_ENVELOPE, m, head + e->body_len, sig);
        free(m);
        if (rc != TF_OK)
            return rc;
        if (e->flip_sig)
            sig[7] ^= 0x01;
        tf_proto_mp_writer_init(&w);
        tf_proto_mp_write_array(&w, 4);
        tf_proto_mp_write_bin(&w, e->from_pk != NULL ? e->from_pk : e->signer->sign_pk,
                              TF_PROTO_KEY_LEN);
        tf_proto_mp_write_uint(&w, e->type);
        tf_proto_mp_write_bin(&w, e->body, e->body_len);
        tf_proto_mp_write_bin(&w, sig, sizeof sig);
        if ((rc = tf_proto_mp_writer_finish(&w, &inner)) != TF_OK)
            return rc;
    }
    const uint8_t *plain = e->inner_raw != NULL ? e->inner_raw : inner.data;
    size_t plain_len = e->inner_raw != NULL ? e->inner_raw_len : inner.len;
    uint8_t *sealed = NULL;
    size_t sealed_len = 0;
    if (e->sealed_raw == NULL) {
        sealed_len = plain_len + crypto_box_SEALBYTES;
        sealed = malloc(sealed_len);
        if (sealed == NULL || crypto_box_seal(sealed, plain, plain_len, e->box_pk) != 0)
            rc = TF_E_NOMEM;
    }
    if (rc == TF_OK) {
        tf_proto_mp_writer_init(&w);
        tf_proto_mp_write_array(&w, 5);
        tf_proto_mp_write_uint(&w, e->version);
        tf_proto_mp_write_bin(&w, e->msg_id, TF_PROTO_MSG_ID_LEN);
        tf_proto_mp_write_bin(&w, e->to_pk, TF_PROTO_KEY_LEN);
        tf_proto_mp_write_uint(&w, e->expires);
        if (e->sealed_raw != NULL)
            tf_proto_mp_write_bin(&w, e->sealed_raw, e->sealed_raw_len);
        else
            tf_proto_mp_write_bin(&w, sealed, sealed_len);
        rc = tf_proto_mp_writer_finish(&w, out);
    }
    free(sealed);
    tf_proto_buf_free(&inner);
    return rc;
}
