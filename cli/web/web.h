/* SPDX-License-Identifier: MIT */
/*
 * twofold-web: a local web page for the node, a second client of the control
 * protocol (docs/CONTROL.md).  The node has no HTTP code: this program serves
 * the page on loopback and turns each API request into one control request on
 * the node's Unix socket, as the CLI does.
 *
 * It holds the owner's power, so the page is guarded as the socket is
 * (http.c): a random secret in the URL that `twofold web` prints, good for
 * one sign-in only (SIGUSR1 prints a new link), exchanged for a fresh
 * HttpOnly SameSite=Strict session cookie; a second random token, fresh per
 * sign-in and handed to the page in the redirect's fragment (never in a
 * cookie), required in a header on every API request; Host and Origin checked against
 * the address it listens on (no DNS rebinding); a strict
 * Content-Security-Policy; bounded bodies, connections and node connections.
 */
#ifndef TF_CLI_WEB_H
#define TF_CLI_WEB_H

#include <pthread.h>
#include <semaphore.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>

#include <microhttpd.h>

#include "cli/args.h"

/* Hex length of each random token (32 bytes). */
#define TF_CLI_WEB_TOKEN_HEX 64
/* Largest API request body, in bytes; a larger one gets 413 before it is read. */
#define TF_CLI_WEB_BODY_MAX (32 * 1024)
/* Open HTTP connections at once (browsers keep about six per site; the rest
 * is room for connections that other local users open and leave idle, each
 * closed after TF_CLI_WEB_HEADER_TIMEOUT_S). */
#define TF_CLI_WEB_CONNECTIONS_MAX 128
/* A connection that has not sent a signed-in request (headers included)
 * this many seconds after its last byte is closed, so idle connections
 * cannot hold the page for long. */
#define TF_CLI_WEB_HEADER_TIMEOUT_S 10
/* A signed-in connection's idle timeout (event streams have none: they send
 * a keepalive every TF_CLI_WEB_KEEPALIVE_MS). */
#define TF_CLI_WEB_IDLE_TIMEOUT_S 60
/* Control connections open at once for API calls; the node takes at most 16
 * per uid (docs/CONTROL.md), and the CLI needs some too. */
#define TF_CLI_WEB_CALLS_MAX 6
/* Event streams (Server-Sent Events, each holding one `watch`) at once. */
#define TF_CLI_WEB_STREAMS_MAX 4
/* How long an API call waits for a free control connection, in ms. */
#define TF_CLI_WEB_CALL_WAIT_MS 10000
/* An event stream sends a comment this often when the node is quiet, so a
 * closed browser tab is noticed. */
#define TF_CLI_WEB_KEEPALIVE_MS 15000
/* The Host values accepted: 127.0.0.1, localhost, [::1] and the --listen
 * host as given (another loopback address, or with --allow-remote a
 * concrete address), each with the port. */
#define TF_CLI_WEB_HOSTS_MAX 4
#define TF_CLI_WEB_HOST_LEN 300
/* --open's file (it holds a live secret) is removed this long after
 * xdg-open returned, when the browser has read it, and at exit. */
#define TF_CLI_WEB_OPEN_FILE_S 10
/* Signed-in browsers at once: each sign-in takes a new slot, and the oldest
 * session is signed out when all are taken. */
#define TF_CLI_WEB_SESSIONS_MAX 4

/* One signed-in browser: its cookie's value and the token its page sends in
 * the X-Twofold-Token header.  An empty session[] is a free slot. */
struct tf_cli_web_session {
    char session[TF_CLI_WEB_TOKEN_HEX + 1];
    char csrf[TF_CLI_WEB_TOKEN_HEX + 1];
};

struct tf_cli_web {
    struct tf_cli cli;                     /* home resolved; used by cli/ctl.c for each call */
    pthread_mutex_t lock;                  /* guards secret, secret_live and sessions */
    char secret[TF_CLI_WEB_TOKEN_HEX + 1]; /* in the URL; exchanged once for a session */
    bool secret_live;                      /* false once used (and wiped) */
    struct tf_cli_web_session sessions[TF_CLI_WEB_SESSIONS_MAX];
    size_t next_session; /* the slot the next sign-in takes (round robin: the oldest) */
    char hosts[TF_CLI_WEB_HOSTS_MAX][TF_CLI_WEB_HOST_LEN];
    size_t n_hosts;
    char cookie_name[32]; /* "twofold_web_PORT": cookies are not kept apart by port */
    sem_t calls;          /* TF_CLI_WEB_CALLS_MAX free control connections */
    atomic_int streams;   /* event streams open */
    int quit_fd;          /* readable once the program stops: streams end */
};

/* Fills web->hosts and cookie_name for the port the server is bound to;
 * listen_host is --listen's host as given (or NULL). */
void tf_cli_web_http_hosts(struct tf_cli_web *web, unsigned port, const char *listen_host);

/* Mints a new sign-in secret (the previous one, if still unused, stops
 * working) and copies it into out.  Sessions already signed in stay. */
void tf_cli_web_http_new_secret(struct tf_cli_web *web, char out[static TF_CLI_WEB_TOKEN_HEX + 1]);

/* The libmicrohttpd access handler and completion callback (http.c); cls is
 * the struct tf_cli_web. */
enum MHD_Result tf_cli_web_http_handle_cb(void *cls, struct MHD_Connection *con, const char *url,
                                          const char *method, const char *version,
                                          const char *upload, size_t *upload_size, void **req);
void tf_cli_web_http_done_cb(void *cls, struct MHD_Connection *con, void **req,
                             enum MHD_RequestTerminationCode why);

/* Calls verb on the node with the JSON object args_json (borrowed: bytes and
 * length) and writes the JSON reply text into *out (returned-owned, free it):
 * {"ok": true, "result": ...} or {"ok": false, "error": {code, name,
 * message}}.  Returns the HTTP status: 200, 400 (a verb the page may not use,
 * or arguments that are not an object of strings, booleans, unsigned integers
 * and arrays of strings), 503 (the node is not running or too busy). */
unsigned tf_cli_web_api_call(struct tf_cli_web *web, const char *verb, const char *args_json,
                             size_t len, char **out);

/* Opens an event stream: a `watch` on the node, returned as a libmicrohttpd
 * response of Server-Sent Events (each event one `data:` line of JSON).
 * Returns NULL with *status set (503) when the node cannot be reached or
 * TF_CLI_WEB_STREAMS_MAX streams are open. */
struct MHD_Response *tf_cli_web_api_events(struct tf_cli_web *web, unsigned *status);

/* The files built into the program (assets.c, generated from cli/web/assets
 * at build time). */
struct tf_cli_web_asset {
    const char *path; /* "/app.js" */
    const char *type; /* Content-Type */
    const unsigned char *data;
    size_t len;
};
extern const struct tf_cli_web_asset tf_cli_web_assets[];
extern const size_t tf_cli_web_assets_n;

#endif
