/* SPDX-License-Identifier: MIT */
/*
 * A small peer toolkit for the test tools (tests/hostile/tf_hostile.c, and
 * the sockets and frames of tests/integration/tf_testtool.c and tf_evil.c),
 * built on proto/: blocking POSIX sockets, frames (docs/PROTOCOL.md §9), a real
 * Noise_XX handshake as an initiator, encrypted link messages, and envelopes
 * built field by field so that any one of them can be wrong.
 *
 * Every receive takes an absolute deadline on the monotonic clock
 * (hp_now_ms).  Receives return HP_OK, HP_TIMEOUT or HP_CLOSED (the node
 * closed or reset the connection), or a TF_E_* code for what did not decode.
 */
#ifndef TF_TESTS_HOSTILE_PEER_H
#define TF_TESTS_HOSTILE_PEER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "proto/envelope.h"
#include "proto/identity.h"
#include "proto/link.h"
#include "proto/mp.h"
#include "proto/noise.h"

#define HP_OK 0
#define HP_TIMEOUT 1
#define HP_CLOSED 2

struct hp_target {
    struct sockaddr_storage addr;
    socklen_t addr_len;
    char text[160];
    /* Dial options (zero: none): a numeric IPv4 source address to bind
     * (loopback takes all of 127.0.0.0/8), and a receive buffer size set
     * before connecting (a peer that reads little). */
    const char *source_ip;
    int rcvbuf;
};

uint64_t hp_now_ms(void);

/* "IP:PORT" (IPv6 in brackets).  0 or -1. */
int hp_parse_target(const char *text, struct hp_target *t);

/* A connected TCP socket (TCP_NODELAY), or -1. */
int hp_dial(const struct hp_target *t);

/* 0, or -1 when the node has cut the connection (or another error). */
int hp_send_all(int fd, const void *p, size_t n);

/* Header u16be(n) and body; n must be 1..65535. */
int hp_send_frame(int fd, const uint8_t *body, size_t n);

/* Exactly n bytes: HP_OK, HP_TIMEOUT or HP_CLOSED. */
int hp_recv_exact(int fd, uint8_t *p, size_t n, uint64_t deadline);

/* One frame into buf (TF_PROTO_FRAME_MAX bytes); *len its length. */
int hp_recv_frame(int fd, uint8_t *buf, size_t *len, uint64_t deadline);

/* The same for callers that only need to know it failed: the frame's length,
 * or -1 (timeout, closed, or a length over the limit). */
long hp_recv_frame_len(int fd, uint8_t *buf, uint64_t deadline);

/* Reads and discards until the node closes (HP_CLOSED) or the deadline
 * passes (HP_TIMEOUT). */
int hp_wait_closed(int fd, uint64_t deadline);

/* Loads HOME's identity key.  0 or -1 (with a message on stderr). */
int hp_load_identity(const char *home, struct tf_proto_identity *id);

/* Signs a card for id (one address); *out owned by the caller. */
int hp_sign_card(const struct tf_proto_identity *id, const char *name, const char *addr,
                 uint64_t issued, uint64_t seq, struct tf_proto_buf *out);

/* A link: the transport ciphers after the handshake. */
struct hp_session {
    int fd;
    struct tf_proto_noise_cipher tx, rx;
    uint8_t peer_sign_pk[TF_PROTO_KEY_LEN], peer_box_pk[TF_PROTO_KEY_LEN];
    bool auto_pong; /* answer the node's keepalive PINGs while receiving */
};

/* Options of hp_handshake: the payload of message 3 is our card, or
 * msg3_payload when that is set (a card that does not verify, or another
 * identity's). */
struct hp_handshake_opts {
    const struct tf_proto_identity *id; /* our Noise static key */
    const struct tf_proto_buf *card;
    const uint8_t *msg3_payload; /* overrides card when set */
    size_t msg3_payload_len;
};

/* Dials and runs the XX handshake as initiator; checks the node's card
 * (verifies, names the Noise static key).  No HELLO yet.  HP_OK or a code. */
int hp_handshake(const struct hp_target *t, const struct hp_handshake_opts *o, struct hp_session *s,
                 uint64_t deadline);

/* Sends our HELLO and expects the node's: HP_OK or a code. */
int hp_hello(struct hp_session *s, uint64_t deadline);
/* The same with a HELLO that lists features (direct: "direct"). */
int hp_hello_features(struct hp_session *s, const char *const *features, size_t n,
                      uint64_t deadline);

/* hp_handshake (with id's card) then hp_hello. */
int hp_open(const struct hp_target *t, const struct tf_proto_identity *id,
            const struct tf_proto_buf *card, struct hp_session *s, uint64_t deadline);

void hp_session_close(struct hp_session *s);

/* Encrypts n plaintext bytes into one frame. 0 or -1. */
int hp_send_plain(struct hp_session *s, const uint8_t *p, size_t n);

/* Sends a link message an encoder built (rc is what it returned); frees it. */
int hp_send_built(struct hp_session *s, int rc, struct tf_proto_buf *msg);

/* Receives and decodes one link message (views into buf, TF_PROTO_FRAME_MAX
 * bytes).  With auto_pong, the node's PINGs are answered and skipped. */
int hp_recv_msg(struct hp_session *s, uint8_t *buf, struct tf_proto_link_msg *m, uint64_t deadline);

/* An envelope, field by field (docs/PROTOCOL.md §7). */
struct hp_envelope {
    uint64_t version; /* outer; 1 */
    uint8_t msg_id[TF_PROTO_MSG_ID_LEN];
    const uint8_t *to_pk;    /* outer to_pk, and what is signed */
    const uint8_t *box_pk;   /* sealed to this key */
    uint64_t expires;        /* outer */
    uint64_t signed_expires; /* what the signature covers (0: expires) */
    const struct tf_proto_identity *signer;
    const uint8_t *from_pk; /* inner from_pk (NULL: the signer's) */
    uint64_t type;
    const uint8_t *body;
    size_t body_len;
    bool flip_sig;            /* corrupt the signature */
    const uint8_t *inner_raw; /* replaces the whole inner plaintext */
    size_t inner_raw_len;
    const uint8_t *sealed_raw; /* replaces the sealed box */
    size_t sealed_raw_len;
};

/* Builds the envelope bytes; *out owned by the caller. */
int hp_envelope_build(const struct hp_envelope *e, struct tf_proto_buf *out);

#endif
