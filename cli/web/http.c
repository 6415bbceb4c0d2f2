/* SPDX-License-Identifier: MIT */
/*
 * The HTTP side of twofold-web: who may ask (the checks below, in the order a
 * request meets them) and what they get.
 *
 *   1. Host must be one of web->hosts (127.0.0.1:PORT, localhost:PORT,
 *      [::1]:PORT, or the --listen address as given): a page on another
 *      site whose name was rebound to 127.0.0.1 sends its own name and is
 *      refused (no DNS rebinding).
 *   2. Origin, when sent, must be http://<one of those>; a POST must send it;
 *      Sec-Fetch-Site, when sent, must not be cross-site or same-site.
 *   3. GET /?k=SECRET: the secret (compared in constant time) works once:
 *      it is wiped at its first use, and a later use is answered as a
 *      wrong secret is.  That use mints a fresh session (a new cookie value
 *      and a new TOKEN, in one of TF_CLI_WEB_SESSIONS_MAX slots), sets the
 *      cookie (HttpOnly, SameSite=Strict) and redirects to /#t=TOKEN, a URL
 *      without the secret; the page keeps TOKEN in its origin's storage.
 *      Every other path needs the cookie of a live session.
 *   4. /api/... also needs the header X-Twofold-Token: TOKEN, the token of
 *      the cookie's own session (the event
 *      stream, which cannot send headers, the query ?t=TOKEN).  The token is
 *      never in a cookie, so a request that only carries the cookie (a form
 *      on another site, or another local server on 127.0.0.1 that received
 *      the cookie, since browsers do not keep cookies apart by port) changes
 *      nothing.
 *   5. POST /api/call/VERB: Content-Type application/json, a Content-Length
 *      of at most TF_CLI_WEB_BODY_MAX, checked before the body is read.
 *
 * A connection that has not passed these checks is closed after
 * TF_CLI_WEB_HEADER_TIMEOUT_S without a byte; a signed-in one after
 * TF_CLI_WEB_IDLE_TIMEOUT_S, and an event stream never.
 *
 * Every response carries a Content-Security-Policy that allows only this
 * origin's own files (no inline script or style, no framing), nosniff,
 * no-referrer and no-store.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <microhttpd.h>
#include <sodium.h>

#include "cli/web/web.h"

#define TOKEN_HEADER "X-Twofold-Token"
#define CSP                                                                                        \
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "              \
    "connect-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'; "            \
    "object-src 'none'"

/* A request's state across the handler's calls: the body read so far. */
struct req {
    char *body; /* owned, NUL-terminated */
    size_t len;
    size_t want; /* Content-Length */
};

void tf_cli_web_http_hosts(struct tf_cli_web *web, unsigned port, const char *listen_host)
{
    static const char *const loopback[] = {"127.0.0.1", "localhost", "[::1]"};
    web->n_hosts = 0;
    for (size_t i = 0; i < 3; i++)
        snprintf(web->hosts[web->n_hosts++], TF_CLI_WEB_HOST_LEN, "%s:%u", loopback[i], port);
    if (listen_host != NULL)
        snprintf(web->hosts[web->n_hosts++], TF_CLI_WEB_HOST_LEN, "%s:%u", listen_host, port);
    snprintf(web->cookie_name, sizeof web->cookie_name, "twofold_web_%u", port);
}

/* True if s equals one of the accepted hosts (ASCII case-insensitive: host
 * names are). */
static bool host_ok(const struct tf_cli_web *web, const char *s)
{
    for (size_t i = 0; s != NULL && i < web->n_hosts; i++)
        if (strcasecmp(s, web->hosts[i]) == 0)
            return true;
    return false;
}

static bool origin_ok(const struct tf_cli_web *web, const char *origin)
{
    return strncmp(origin, "http://", 7) == 0 && host_ok(web, origin + 7);
}

/* Compares a token the client sent with ours in constant time (the length is
 * not secret); an empty (wiped or unused) token matches nothing. */
static bool token_ok(const char *got, const char *want)
{
    return got != NULL && want[0] != '\0' && strlen(got) == TF_CLI_WEB_TOKEN_HEX &&
           sodium_memcmp(got, want, TF_CLI_WEB_TOKEN_HEX) == 0;
}

static void random_token(char out[static TF_CLI_WEB_TOKEN_HEX + 1])
{
    unsigned char b[TF_CLI_WEB_TOKEN_HEX / 2];
    randombytes_buf(b, sizeof b);
    sodium_bin2hex(out, TF_CLI_WEB_TOKEN_HEX + 1, b, sizeof b);
    sodium_memzero(b, sizeof b);
}

void tf_cli_web_http_new_secret(struct tf_cli_web *web, char out[static TF_CLI_WEB_TOKEN_HEX + 1])
{
    pthread_mutex_lock(&web->lock);
    random_token(web->secret);
    web->secret_live = true;
    memcpy(out, web->secret, TF_CLI_WEB_TOKEN_HEX + 1);
    pthread_mutex_unlock(&web->lock);
}

/* Uses up the secret if got is it: wipes it and fills the next session slot
 * (signing its previous holder out) with a fresh cookie value and token,
 * copied into *out.  Returns false, changing nothing, for any other got and
 * once the secret was used. */
static bool sign_in(struct tf_cli_web *web, const char *got, struct tf_cli_web_session *out)
{
    bool ok;
    pthread_mutex_lock(&web->lock);
    ok = web->secret_live && token_ok(got, web->secret);
    if (ok) {
        sodium_memzero(web->secret, sizeof web->secret);
        web->secret_live = false;
        struct tf_cli_web_session *s = &web->sessions[web->next_session];
        web->next_session = (web->next_session + 1) % TF_CLI_WEB_SESSIONS_MAX;
        random_token(s->session);
        random_token(s->csrf);
        *out = *s;
    }
    pthread_mutex_unlock(&web->lock);
    return ok;
}

/* Checks the session cookie and, when want_token, that token is that
 * session's own.  Returns 0, -1 (no live session) or -2 (wrong token). */
static int check_session(struct tf_cli_web *web, const char *cookie, bool want_token,
                         const char *token)
{
    int rc = -1;
    pthread_mutex_lock(&web->lock);
    for (size_t i = 0; i < TF_CLI_WEB_SESSIONS_MAX && rc == -1; i++) {
        const struct tf_cli_web_session *s = &web->sessions[i];
        if (token_ok(cookie, s->session))
            rc = !want_token || token_ok(token, s->csrf) ? 0 : -2;
    }
    pthread_mutex_unlock(&web->lock);
    return rc;
}

static const char *header(struct MHD_Connection *con, const char *name)
{
    return MHD_lookup_connection_value(con, MHD_HEADER_KIND, name);
}

/* Queues body (copied) with status and the headers every response has. */
static enum MHD_Result reply(struct MHD_Connection *con, unsigned status, const char *type,
                             const void *body, size_t len)
{
    struct MHD_Response *r =
        MHD_create_response_from_buffer(len, (void *)(uintptr_t)body, MHD_RESPMEM_MUST_COPY);
    if (r == NULL)
        return MHD_NO;
    MHD_add_response_header(r, "Content-Type", type);
    MHD_add_response_header(r, "Content-Security-Policy", CSP);
    MHD_add_response_header(r, "X-Content-Type-Options", "nosniff");
    MHD_add_response_header(r, "X-Frame-Options", "DENY");
    MHD_add_response_header(r, "Referrer-Policy", "no-referrer");
    MHD_add_response_header(r, "Cache-Control", "no-store");
    MHD_add_response_header(r, "Cross-Origin-Opener-Policy", "same-origin");
    MHD_add_response_header(r, "Cross-Origin-Resource-Policy", "same-origin");
    enum MHD_Result rc = MHD_queue_response(con, status, r);
    MHD_destroy_response(r);
    return rc;
}

/* A refusal: status with one line of text saying why. */
static enum MHD_Result refuse(struct MHD_Connection *con, unsigned status, const char *why)
{
    char text[256];
    int n = snprintf(text, sizeof text, "%s\n", why);
    return reply(con, status, "text/plain; charset=utf-8", text, (size_t)n);
}

static enum MHD_Result reply_json(struct MHD_Connection *con, unsigned status, char *text)
{
    if (text == NULL)
        return refuse(con, 500, "out of memory");
    enum MHD_Result rc = reply(con, status, "application/json", text, strlen(text));
    free(text);
    return rc;
}

/* GET /?k=SECRET: sets the cookie and sends the browser on to /#t=TOKEN. */
static enum MHD_Result exchange(struct tf_cli_web *web, struct MHD_Connection *con,
                                const char *secret)
{
    char cookie[160], location[96];
    struct tf_cli_web_session s;
    if (!sign_in(web, secret, &s))
        return refuse(con, 403,
                      "this link is not valid (any more): each link signs in once; send "
                      "`twofold web` the signal USR1 for a new one, or start it again");
    snprintf(cookie, sizeof cookie, "%s=%s; Path=/; HttpOnly; SameSite=Strict", web->cookie_name,
             s.session);
    snprintf(location, sizeof location, "/#t=%s", s.csrf);
    sodium_memzero(&s, sizeof s);
    enum MHD_Result rc = MHD_NO;
    struct MHD_Response *r = MHD_create_response_from_buffer(0, NULL, MHD_RESPMEM_PERSISTENT);
    if (r != NULL) {
        MHD_add_response_header(r, "Set-Cookie", cookie);
        MHD_add_response_header(r, "Location", location);
        MHD_add_response_header(r, "Content-Security-Policy", CSP);
        MHD_add_response_header(r, "Referrer-Policy", "no-referrer");
        MHD_add_response_header(r, "Cache-Control", "no-store");
        rc = MHD_queue_response(con, 303, r);
        MHD_destroy_response(r);
    }
    sodium_memzero(cookie, sizeof cookie);
    sodium_memzero(location, sizeof location);
    return rc;
}

static enum MHD_Result serve_asset(struct MHD_Connection *con, const char *url)
{
    if (strcmp(url, "/") == 0)
        url = "/index.html";
    for (size_t i = 0; i < tf_cli_web_assets_n; i++) {
        const struct tf_cli_web_asset *a = &tf_cli_web_assets[i];
        if (strcmp(a->path, url) == 0)
            return reply(con, 200, a->type, a->data, a->len);
    }
    return refuse(con, 404, "not found");
}

static enum MHD_Result serve_events(struct tf_cli_web *web, struct MHD_Connection *con)
{
    unsigned status;
    struct MHD_Response *r = tf_cli_web_api_events(web, &status);
    if (r == NULL)
        return refuse(con, status, "cannot watch the node (is it running? too many pages open?)");
    MHD_add_response_header(r, "Content-Type", "text/event-stream");
    MHD_add_response_header(r, "Cache-Control", "no-store");
    MHD_add_response_header(r, "Content-Security-Policy", CSP);
    MHD_add_response_header(r, "X-Content-Type-Options", "nosniff");
    enum MHD_Result rc = MHD_queue_response(con, status, r);
    MHD_destroy_response(r);
    return rc;
}

/* The checks every request meets before its path is looked at (1 and 2
 * above).  Returns NULL, or why the request is refused. */
static const char *check_headers(const struct tf_cli_web *web, struct MHD_Connection *con,
                                 bool post)
{
    const char *origin = header(con, "Origin");
    const char *site = header(con, "Sec-Fetch-Site");
    if (!host_ok(web, header(con, "Host")))
        return "wrong Host header: open the page at the address `twofold web` printed";
    if (origin != NULL && !origin_ok(web, origin))
        return "cross-origin requests are refused";
    if (post && origin == NULL)
        return "a POST must say where it comes from (Origin)";
    if (site != NULL && (strcmp(site, "cross-site") == 0 || strcmp(site, "same-site") == 0))
        return "cross-site requests are refused";
    return NULL;
}

/* The first call for a POST: everything but the body.  Returns NULL if the
 * body may be read (then *want is its length), else why not, with *status. */
static const char *check_post(struct MHD_Connection *con, size_t *want, unsigned *status)
{
    const char *type = header(con, "Content-Type");
    const char *len = header(con, "Content-Length");
    char *end;
    *status = 400;
    if (type == NULL || strncasecmp(type, "application/json", 16) != 0 ||
        (type[16] != '\0' && type[16] != ';'))
        return "the body must be application/json";
    if (len == NULL || len[0] < '0' || len[0] > '9') {
        *status = 411;
        return "a Content-Length is required";
    }
    unsigned long long n = strtoull(len, &end, 10);
    if (*end != '\0' || n > TF_CLI_WEB_BODY_MAX) {
        *status = 413;
        return "the body is too large";
    }
    *want = (size_t)n;
    return NULL;
}

enum MHD_Result tf_cli_web_http_handle_cb(void *cls, struct MHD_Connection *con, const char *url,
                                          const char *method, const char *version,
                                          const char *upload, size_t *upload_size, void **reqp)
{
    struct tf_cli_web *web = cls;
    struct req *req = *reqp;
    bool post = strcmp(method, "POST") == 0;
    const char *why;
    unsigned status;
    (void)version;

    if (req == NULL) {
        /* First call: the headers are in, the body (if any) is not. */
        if (!post && strcmp(method, "GET") != 0 && strcmp(method, "HEAD") != 0)
            return refuse(con, 405, "only GET and POST");
        if ((why = check_headers(web, con, post)) != NULL)
            return refuse(con, 403, why);
        const char *secret = MHD_lookup_connection_value(con, MHD_GET_ARGUMENT_KIND, "k");
        if (!post && strcmp(url, "/") == 0 && secret != NULL)
            return exchange(web, con, secret);
        bool api = strncmp(url, "/api/", 5) == 0;
        const char *token = strcmp(url, "/api/events") == 0
                                ? MHD_lookup_connection_value(con, MHD_GET_ARGUMENT_KIND, "t")
                                : header(con, TOKEN_HEADER);
        int sess = check_session(
            web, MHD_lookup_connection_value(con, MHD_COOKIE_KIND, web->cookie_name), api, token);
        if (sess == -1)
            return refuse(con, 403, "not signed in: open the link `twofold web` printed");
        if (sess != 0)
            return refuse(con, 403, "missing or wrong " TOKEN_HEADER);
        /* Signed in: the short timeout for strangers' connections no longer
         * applies; an event stream has none (it sends keepalives). */
        MHD_set_connection_option(
            con, MHD_CONNECTION_OPTION_TIMEOUT,
            strcmp(url, "/api/events") == 0 ? 0U : (unsigned)TF_CLI_WEB_IDLE_TIMEOUT_S);
        if (!post) {
            if (strcmp(url, "/api/events") == 0)
                return serve_events(web, con);
            if (api)
                return refuse(con, 405, "API calls are POST requests");
            return serve_asset(con, url);
        }
        if (strncmp(url, "/api/call/", 10) != 0)
            return refuse(con, 404, "not found");
        size_t want = 0;
        if ((why = check_post(con, &want, &status)) != NULL)
            return refuse(con, status, why);
        if ((req = calloc(1, sizeof *req)) == NULL || (req->body = malloc(want + 1)) == NULL) {
            free(req);
            return MHD_NO;
        }
        req->want = want;
        *reqp = req;
        return MHD_YES;
    }
    if (*upload_size > 0) {
        /* More bytes than Content-Length said cannot come over HTTP/1.1;
         * refuse rather than trust that. */
        if (*upload_size > req->want - req->len)
            return MHD_NO;
        memcpy(req->body + req->len, upload, *upload_size);
        req->len += *upload_size;
        *upload_size = 0;
        return MHD_YES;
    }
    req->body[req->len] = '\0';
    char *out;
    status = tf_cli_web_api_call(web, url + 10, req->body, req->len, &out);
    return reply_json(con, status, out);
}

void tf_cli_web_http_done_cb(void *cls, struct MHD_Connection *con, void **reqp,
                             enum MHD_RequestTerminationCode why)
{
    struct req *req = *reqp;
    (void)cls;
    (void)con;
    (void)why;
    if (req != NULL) {
        free(req->body);
        free(req);
    }
    *reqp = NULL;
}
