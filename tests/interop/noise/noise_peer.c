/* SPDX-License-Identifier: MIT */
/*
 * One Noise_XX_25519_ChaChaPoly_SHA256 session over stdin/stdout, built on
 * proto/noise.h, for the live interop test against an independent Noise
 * implementation (test.mjs drives npm noise-c.wasm as the other side).
 *
 * Usage: noise_peer initiator|responder PROLOGUE_HEX
 *
 * Frames on both pipes: a 16-bit big-endian length, then that many bytes.
 * The conversation (the other side runs the same script in the other role):
 *   handshake  1. initiator -> responder  payload empty
 *              2. responder -> initiator  payload "c-resp" / "js-resp"
 *              3. initiator -> responder  payload "c-init" / "js-init"
 *   transport, ROUNDS times (i = 1..ROUNDS), so nonces above 0 are used too:
 *              initiator -> responder  "ping <i> from C" / "ping <i> from JS"
 *              responder -> initiator  "echo:" + the plaintext it received
 * Each side checks every payload and plaintext it receives, so both cipher
 * states of both sides are exercised and verified.
 *
 * stderr gets "local_static=HEX", "remote_static=HEX" and "handshake_hash=HEX"
 * lines (public values only) for the test to compare with what the other side
 * saw.  Exit status: 0 on success, 1 on any failure (reason on stderr), 2 on
 * bad usage.
 */
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <sodium.h>

#include "proto/err.h"
#include "proto/noise.h"

#define ROUNDS 3
#define PROLOGUE_MAX 1024
#define TEXT_MAX 64

/* Names used in the payloads: this side is always "C", the other "JS". */
#define SELF_NAME "C"
#define PEER_NAME "JS"

static void fail(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

static void fail(const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    fputs("noise_peer: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
}

static void print_hex(const char *label, const uint8_t *bin, size_t len)
{
    char hex[2 * TF_PROTO_NOISE_HASH_LEN + 1];

    if (2 * len + 1 > sizeof hex) {
        return;
    }
    sodium_bin2hex(hex, sizeof hex, bin, len);
    fprintf(stderr, "noise_peer: %s=%s\n", label, hex);
}

/* Reads one frame into buf[0..cap); 0, or -1 after reporting why. */
static int frame_read(uint8_t *buf, size_t cap, size_t *len)
{
    uint8_t hdr[2];
    size_t n;

    if (fread(hdr, 1, sizeof hdr, stdin) != sizeof hdr) {
        fail("read: %s before a frame header", feof(stdin) ? "end of input" : "read error");
        return -1;
    }
    n = (size_t)hdr[0] << 8 | hdr[1];
    if (n > cap) {
        fail("read: frame of %zu bytes is larger than %zu", n, cap);
        return -1;
    }
    if (fread(buf, 1, n, stdin) != n) {
        fail("read: %s inside a %zu-byte frame", feof(stdin) ? "end of input" : "read error", n);
        return -1;
    }
    *len = n;
    return 0;
}

static int frame_write(const uint8_t *buf, size_t len)
{
    uint8_t hdr[2];

    if (len > UINT16_MAX) {
        fail("write: frame of %zu bytes does not fit the 16-bit length", len);
        return -1;
    }
    hdr[0] = (uint8_t)(len >> 8);
    hdr[1] = (uint8_t)(len & 0xff);
    if (fwrite(hdr, 1, sizeof hdr, stdout) != sizeof hdr || fwrite(buf, 1, len, stdout) != len ||
        fflush(stdout) != 0) {
        fail("write: cannot write a %zu-byte frame to stdout", len);
        return -1;
    }
    return 0;
}

/* Compares a received plaintext with the expected text (not secret). */
static int expect(const char *what, const uint8_t *got, size_t got_len, const char *want)
{
    size_t want_len = strlen(want);

    if (got_len != want_len || memcmp(got, want, want_len) != 0) {
        fail("%s: got %zu bytes \"%.*s\", want \"%s\"", what, got_len,
             (int)(got_len < TEXT_MAX ? got_len : TEXT_MAX), (const char *)got, want);
        return -1;
    }
    return 0;
}

static int hs_write(struct tf_proto_noise_handshake *hs, const char *payload, uint8_t *buf)
{
    size_t len = 0;
    int rc = tf_proto_noise_handshake_write(hs, (const uint8_t *)payload, strlen(payload), buf,
                                            TF_PROTO_NOISE_MSG_MAX, &len);

    if (rc != TF_OK) {
        fail("handshake write: %s (%s)", tf_err_name(rc), tf_strerror(rc));
        return -1;
    }
    return frame_write(buf, len);
}

static int hs_read(struct tf_proto_noise_handshake *hs, const char *want, uint8_t *buf,
                   uint8_t *payload)
{
    size_t len = 0;
    size_t payload_len = 0;
    int rc;

    if (frame_read(buf, TF_PROTO_NOISE_MSG_MAX, &len) != 0) {
        return -1;
    }
    rc = tf_proto_noise_handshake_read(hs, buf, len, payload, TF_PROTO_NOISE_MSG_MAX, &payload_len);
    if (rc != TF_OK) {
        fail("handshake read: %s (%s)", tf_err_name(rc), tf_strerror(rc));
        return -1;
    }
    return expect("handshake payload", payload, payload_len, want);
}

/* Runs the handshake to state SPLIT. */
static int handshake(struct tf_proto_noise_handshake *hs, bool initiator, uint8_t *buf,
                     uint8_t *payload)
{
    if (initiator) {
        if (hs_write(hs, "", buf) != 0 || hs_read(hs, "js-resp", buf, payload) != 0 ||
            hs_write(hs, "c-init", buf) != 0) {
            return -1;
        }
    } else {
        if (hs_read(hs, "", buf, payload) != 0 || hs_write(hs, "c-resp", buf) != 0 ||
            hs_read(hs, "js-init", buf, payload) != 0) {
            return -1;
        }
    }
    if (tf_proto_noise_handshake_state(hs) != TF_PROTO_NOISE_STATE_SPLIT) {
        fail("handshake: state %s after three messages, want split",
             tf_proto_noise_state_name(tf_proto_noise_handshake_state(hs)));
        return -1;
    }
    return 0;
}

static int send_text(struct tf_proto_noise_cipher *send, const char *text, uint8_t *buf)
{
    size_t len = 0;
    int rc = tf_proto_noise_cipher_encrypt(send, (const uint8_t *)text, strlen(text), buf,
                                           TF_PROTO_NOISE_MSG_MAX, &len);

    if (rc != TF_OK) {
        fail("transport encrypt: %s (%s)", tf_err_name(rc), tf_strerror(rc));
        return -1;
    }
    return frame_write(buf, len);
}

static int recv_text(struct tf_proto_noise_cipher *recv, const char *want, uint8_t *buf,
                     uint8_t *plain)
{
    size_t len = 0;
    size_t plain_len = 0;
    int rc;

    if (frame_read(buf, TF_PROTO_NOISE_MSG_MAX, &len) != 0) {
        return -1;
    }
    rc = tf_proto_noise_cipher_decrypt(recv, buf, len, plain, TF_PROTO_NOISE_MSG_MAX, &plain_len);
    if (rc != TF_OK) {
        fail("transport decrypt: %s (%s)", tf_err_name(rc), tf_strerror(rc));
        return -1;
    }
    return expect("transport plaintext", plain, plain_len, want);
}

static int transport(struct tf_proto_noise_cipher *send, struct tf_proto_noise_cipher *recv,
                     bool initiator, uint8_t *buf, uint8_t *plain)
{
    char ping[TEXT_MAX];
    char echo[sizeof "echo:" + TEXT_MAX];
    const char *name = initiator ? SELF_NAME : PEER_NAME;

    for (int i = 1; i <= ROUNDS; i++) {
        snprintf(ping, sizeof ping, "ping %d from %s", i, name);
        snprintf(echo, sizeof echo, "echo:%s", ping);
        if (initiator) {
            if (send_text(send, ping, buf) != 0 || recv_text(recv, echo, buf, plain) != 0) {
                return -1;
            }
        } else {
            if (recv_text(recv, ping, buf, plain) != 0 || send_text(send, echo, buf) != 0) {
                return -1;
            }
        }
    }
    return 0;
}

static int run(bool initiator, const uint8_t *prologue, size_t prologue_len, uint8_t *buf,
               uint8_t *payload)
{
    uint8_t s_sk[TF_PROTO_NOISE_KEY_LEN];
    uint8_t s_pk[TF_PROTO_NOISE_KEY_LEN];
    uint8_t e_sk[TF_PROTO_NOISE_KEY_LEN];
    uint8_t hash[TF_PROTO_NOISE_HASH_LEN];
    const struct tf_proto_noise_config cfg = {
        .pattern = TF_PROTO_NOISE_PATTERN_XX,
        .role = initiator ? TF_PROTO_NOISE_ROLE_INITIATOR : TF_PROTO_NOISE_ROLE_RESPONDER,
        .prologue = prologue,
        .prologue_len = prologue_len,
        .s_sk = s_sk,
        .e_sk = e_sk,
        .rs_pk = NULL,
    };
    struct tf_proto_noise_handshake hs;
    struct tf_proto_noise_cipher send;
    struct tf_proto_noise_cipher recv;
    const uint8_t *rs;
    int ret = -1;
    int rc;

    memset(&hs, 0, sizeof hs);
    memset(&send, 0, sizeof send);
    memset(&recv, 0, sizeof recv);
    randombytes_buf(s_sk, sizeof s_sk);
    randombytes_buf(e_sk, sizeof e_sk);
    if (crypto_scalarmult_base(s_pk, s_sk) != 0) {
        fail("crypto_scalarmult_base failed");
        goto cleanup;
    }
    print_hex("local_static", s_pk, sizeof s_pk);

    rc = tf_proto_noise_handshake_init(&hs, &cfg);
    sodium_memzero(s_sk, sizeof s_sk);
    sodium_memzero(e_sk, sizeof e_sk);
    if (rc != TF_OK) {
        fail("handshake init: %s (%s)", tf_err_name(rc), tf_strerror(rc));
        goto cleanup;
    }
    if (handshake(&hs, initiator, buf, payload) != 0) {
        goto cleanup;
    }
    rs = tf_proto_noise_handshake_remote_static(&hs);
    if (rs == NULL) {
        fail("handshake complete but no remote static key");
        goto cleanup;
    }
    print_hex("remote_static", rs, TF_PROTO_NOISE_KEY_LEN);
    rc = tf_proto_noise_handshake_hash(&hs, hash);
    if (rc != TF_OK) {
        fail("handshake hash: %s (%s)", tf_err_name(rc), tf_strerror(rc));
        goto cleanup;
    }
    print_hex("handshake_hash", hash, sizeof hash);
    rc = tf_proto_noise_handshake_split(&hs, &send, &recv);
    if (rc != TF_OK) {
        fail("split: %s (%s)", tf_err_name(rc), tf_strerror(rc));
        goto cleanup;
    }
    if (transport(&send, &recv, initiator, buf, payload) != 0) {
        goto cleanup;
    }
    ret = 0;

cleanup:
    sodium_memzero(s_sk, sizeof s_sk);
    sodium_memzero(e_sk, sizeof e_sk);
    tf_proto_noise_handshake_deinit(&hs);
    tf_proto_noise_cipher_deinit(&send);
    tf_proto_noise_cipher_deinit(&recv);
    return ret;
}

int main(int argc, char **argv)
{
    static uint8_t buf[TF_PROTO_NOISE_MSG_MAX];
    static uint8_t payload[TF_PROTO_NOISE_MSG_MAX];
    uint8_t prologue[PROLOGUE_MAX];
    size_t prologue_len = 0;
    const char *hex_end = NULL;
    bool initiator;
    int ret;

    if (argc != 3 || (strcmp(argv[1], "initiator") != 0 && strcmp(argv[1], "responder") != 0)) {
        fprintf(stderr, "usage: noise_peer initiator|responder PROLOGUE_HEX\n");
        return 2;
    }
    initiator = strcmp(argv[1], "initiator") == 0;
    if (sodium_hex2bin(prologue, sizeof prologue, argv[2], strlen(argv[2]), NULL, &prologue_len,
                       &hex_end) != 0 ||
        *hex_end != '\0') {
        fprintf(stderr,
                "noise_peer: PROLOGUE_HEX is not an even-length hex string of at most %d "
                "bytes\n",
                PROLOGUE_MAX);
        return 2;
    }
    if (sodium_init() < 0) {
        fail("sodium_init failed");
        return 1;
    }
    /* A peer that hangs up must give a write error, not a silent death. */
    signal(SIGPIPE, SIG_IGN);

    ret = run(initiator, prologue, prologue_len, buf, payload);
    sodium_memzero(buf, sizeof buf);
    sodium_memzero(payload, sizeof payload);
    if (ret == 0) {
        fprintf(stderr, "noise_peer: %s: handshake and %d transport round trips OK\n", argv[1],
                ROUNDS);
        return 0;
    }
    return 1;
}
