/* SPDX-License-Identifier: MIT */
/*
 * twofold-web [--home DIR] [--listen HOST:PORT [--allow-remote]] [--open]
 *
 * Serves the node's web page (web.h) until SIGINT or SIGTERM.  Prints the
 * page's address, with its secret, as the first line on stdout.  The secret
 * signs in one browser once; on SIGUSR1 the program prints a new link (one
 * line on stdout) for the next browser; --open also
 * hands it to the desktop's browser (xdg-open) through a 0600 file in the
 * home, so the secret never appears on a command line other users can read;
 * the file is removed TF_CLI_WEB_OPEN_FILE_S after xdg-open returned, and at
 * exit.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <microhttpd.h>
#include <sodium.h>

#include "cli/render.h"
#include "cli/web/web.h"

extern char **environ;

enum { OPT_LISTEN = 1, OPT_ALLOW_REMOTE, OPT_OPEN };

static const char USAGE[] =
    "usage: twofold web [--home DIR] [--listen HOST:PORT [--allow-remote]] [--open]\n"
    "\n"
    "Serves your node's page on this machine and prints its address, with a secret:\n"
    "open that address in your browser.  Stop with Ctrl-C.\n"
    "\n"
    "  --listen HOST:PORT  where to listen (default 127.0.0.1:0, a free port)\n"
    "  --allow-remote      allow a --listen address that is not loopback (one concrete\n"
    "                      address, not 0.0.0.0 or [::]; plain HTTP:\n"
    "                      anyone who can see the traffic can take over the page)\n"
    "  --open              also open the page in the desktop's browser\n";

/* Where to listen: an IPv4 or IPv6 address and port. */
struct listen_addr {
    struct sockaddr_in v4;
    struct sockaddr_in6 v6;
    bool is_v6;
    bool loopback;
    bool unspecified;               /* 0.0.0.0 or [::]: every address, not one */
    char host[TF_CLI_WEB_HOST_LEN]; /* as given, for the Host check and the URL */
};

/* Parses HOST:PORT, [V6]:PORT or localhost:PORT.  Returns 0 or -1. */
static int parse_listen(const char *s, struct listen_addr *la)
{
    const char *colon;
    char host[TF_CLI_WEB_HOST_LEN];
    memset(la, 0, sizeof *la);
    if (s[0] == '[') {
        const char *close = strchr(s, ']');
        if (close == NULL || close[1] != ':')
            return -1;
        colon = close + 1;
    } else if ((colon = strrchr(s, ':')) == NULL) {
        return -1;
    }
    size_t hl = (size_t)(colon - s);
    if (hl == 0 || hl >= sizeof host)
        return -1;
    memcpy(la->host, s, hl);
    la->host[hl] = '\0';
    char *end;
    errno = 0;
    unsigned long port = strtoul(colon + 1, &end, 10);
    if (colon[1] < '0' || colon[1] > '9' || *end != '\0' || errno != 0 || port > 65535)
        return -1;
    if (s[0] == '[') {
        memcpy(host, s + 1, hl - 2);
        host[hl - 2] = '\0';
    } else {
        memcpy(host, la->host, hl + 1);
    }
    if (strcmp(host, "localhost") == 0)
        memcpy(host, "127.0.0.1", sizeof "127.0.0.1");
    if (inet_pton(AF_INET, host, &la->v4.sin_addr) == 1 && s[0] != '[') {
        la->v4.sin_family = AF_INET;
        la->v4.sin_port = htons((uint16_t)port);
        la->loopback = (ntohl(la->v4.sin_addr.s_addr) >> 24) == 127;
        la->unspecified = la->v4.sin_addr.s_addr == htonl(INADDR_ANY);
        return 0;
    }
    if (inet_pton(AF_INET6, host, &la->v6.sin6_addr) == 1 && s[0] == '[') {
        la->is_v6 = true;
        la->v6.sin6_family = AF_INET6;
        la->v6.sin6_port = htons((uint16_t)port);
        la->loopback = IN6_IS_ADDR_LOOPBACK(&la->v6.sin6_addr);
        la->unspecified = IN6_IS_ADDR_UNSPECIFIED(&la->v6.sin6_addr);
        return 0;
    }
    return -1;
}

/* Mints a new sign-in secret and writes the page's address with it into
 * url (one line of stdout when print). */
static void new_link(struct tf_cli_web *web, const char *host, unsigned port, char *url,
                     size_t size, bool print)
{
    char secret[TF_CLI_WEB_TOKEN_HEX + 1];
    tf_cli_web_http_new_secret(web, secret);
    snprintf(url, size, "http://%s:%u/?k=%s", host, port, secret);
    sodium_memzero(secret, sizeof secret);
    if (print) {
        printf("%s\n", url);
        fflush(stdout);
    }
}

/* Opens url in the desktop's browser: xdg-open on a 0600 file in the home
 * that sends the browser on, so the secret is not on xdg-open's command
 * line.  The file's name goes to path.  Returns 0 once xdg-open returned
 * (the caller removes the file later), or -1 after saying why (the file is
 * gone). */
static int open_browser(const struct tf_cli *cli, const char *url, char *path, size_t size)
{
    snprintf(path, size, "%s/web-open.html", cli->home);
    (void)unlink(path);
    int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
    if (fd < 0) {
        tf_cli_render_fail(cli, 0, "cannot write %s: %s", path, strerror(errno));
        return -1;
    }
    FILE *f = fdopen(fd, "w");
    if (f == NULL) {
        close(fd);
        return -1;
    }
    fprintf(f,
            "<!doctype html><meta charset=utf-8><meta name=referrer content=no-referrer>"
            "<meta http-equiv=refresh content=\"0;url=%s\"><title>twofold</title>"
            "<a href=\"%s\">Open your twofold page</a>\n",
            url, url);
    if (fclose(f) != 0) {
        (void)unlink(path);
        return -1;
    }
    char *argv[] = {"xdg-open", path, NULL};
    pid_t pid;
    int rc = posix_spawnp(&pid, "xdg-open", NULL, NULL, argv, environ);
    if (rc != 0) {
        (void)unlink(path);
        tf_cli_render_fail(cli, 0, "cannot run xdg-open (%s): open the address above yourself",
                           strerror(rc));
        return -1;
    }
    int st;
    (void)waitpid(pid, &st, 0);
    return 0;
}

int main(int argc, char **argv)
{
    static const struct tf_cli_opt opts[] = {{"listen", true, OPT_LISTEN},
                                             {"allow-remote", false, OPT_ALLOW_REMOTE},
                                             {"open", false, OPT_OPEN},
                                             {NULL, false, 0}};
    static struct tf_cli_web web; /* large; threads use it until the end */
    struct tf_cli_args a;
    struct listen_addr la;
    const char *val, *listen = "127.0.0.1:0";
    bool allow_remote = false, want_open = false;
    int id, quit[2];

    web.cli.cmd = "twofold web";
    if (sodium_init() < 0)
        return tf_cli_render_fail(&web.cli, TF_CLI_EXIT_LOCAL, "libsodium failed to initialise");
    tf_cli_args_init(&a, &web.cli, argc - 1, argv + 1, opts);
    while ((id = tf_cli_args_next(&a, &val)) > 0) {
        if (id == OPT_LISTEN)
            listen = val;
        else if (id == OPT_ALLOW_REMOTE)
            allow_remote = true;
        else
            want_open = true;
    }
    if (id < 0)
        return TF_CLI_EXIT_USAGE;
    if (a.help) {
        fputs(USAGE, stdout);
        return TF_CLI_EXIT_OK;
    }
    if (tf_cli_args_want(&a, 0, 0, "") != 0)
        return TF_CLI_EXIT_USAGE;
    if (parse_listen(listen, &la) != 0)
        return tf_cli_args_usage_error(&web.cli,
                                       "--listen wants IP:PORT, [IPV6]:PORT or localhost:PORT, "
                                       "not '%s'",
                                       listen);
    if (la.unspecified)
        return tf_cli_args_usage_error(&web.cli,
                                       "%s means every address of this machine, and the page only "
                                       "answers to the address it is opened at: give one concrete "
                                       "address (with --allow-remote if it is not loopback)",
                                       listen);
    if (!la.loopback && !allow_remote)
        return tf_cli_args_usage_error(&web.cli,
                                       "%s is not a loopback address: the page would be reachable "
                                       "from other machines over plain HTTP; add --allow-remote "
                                       "if you mean it",
                                       listen);
    int rc = tf_cli_args_home(&web.cli);
    if (rc != TF_CLI_EXIT_OK)
        return rc;

    if (sem_init(&web.calls, 0, TF_CLI_WEB_CALLS_MAX) != 0 || pipe(quit) != 0 ||
        pthread_mutex_init(&web.lock, NULL) != 0)
        return tf_cli_render_fail(&web.cli, TF_CLI_EXIT_LOCAL, "cannot set up: %s",
                                  strerror(errno));
    web.quit_fd = quit[0];

    /* The server's threads inherit this mask: only main takes the signals. */
    sigset_t stop;
    sigemptyset(&stop);
    sigaddset(&stop, SIGINT);
    sigaddset(&stop, SIGTERM);
    sigaddset(&stop, SIGUSR1);
    sigprocmask(SIG_BLOCK, &stop, NULL);
    signal(SIGPIPE, SIG_IGN);

    unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_THREAD_PER_CONNECTION |
                     MHD_USE_ERROR_LOG | (la.is_v6 ? MHD_USE_IPv6 : 0);
    const struct sockaddr *sa =
        la.is_v6 ? (const struct sockaddr *)&la.v6 : (const struct sockaddr *)&la.v4;
    struct MHD_Daemon *d = MHD_start_daemon(
        flags, 0, NULL, NULL, tf_cli_web_http_handle_cb, &web, MHD_OPTION_SOCK_ADDR, sa,
        MHD_OPTION_CONNECTION_LIMIT, (unsigned)TF_CLI_WEB_CONNECTIONS_MAX,
        MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)TF_CLI_WEB_HEADER_TIMEOUT_S,
        MHD_OPTION_NOTIFY_COMPLETED, tf_cli_web_http_done_cb, &web, MHD_OPTION_END);
    if (d == NULL)
        return tf_cli_render_fail(&web.cli, TF_CLI_EXIT_LOCAL, "cannot listen on %s", listen);
    const union MHD_DaemonInfo *info = MHD_get_daemon_info(d, MHD_DAEMON_INFO_BIND_PORT);
    unsigned port = info != NULL ? info->port : 0;
    tf_cli_web_http_hosts(&web, port, la.host);

    char url[TF_CLI_WEB_HOST_LEN + TF_CLI_WEB_TOKEN_HEX + 32];
    const char *url_host = la.host; /* as given: the page answers to it */
    new_link(&web, url_host, port, url, sizeof url, true);
    fprintf(stderr,
            "twofold web: your node's page is at the address above (it holds a secret that "
            "signs in once: do not share it).\ntwofold web: for another link, `kill -USR1 %ld`; "
            "stop with Ctrl-C.\n",
            (long)getpid());
    char open_file[TF_NODE_PATH_MAX + 32];
    bool open_pending = want_open && open_browser(&web.cli, url, open_file, sizeof open_file) == 0;
    sodium_memzero(url, sizeof url);
    struct timespec open_until;
    clock_gettime(CLOCK_MONOTONIC, &open_until);
    open_until.tv_sec += TF_CLI_WEB_OPEN_FILE_S;

    int sig = 0;
    for (;;) {
        if (open_pending) {
            struct timespec now, left;
            clock_gettime(CLOCK_MONOTONIC, &now);
            left.tv_sec = open_until.tv_sec - now.tv_sec;
            left.tv_nsec = open_until.tv_nsec - now.tv_nsec;
            if (left.tv_nsec < 0) {
                left.tv_sec--;
                left.tv_nsec += 1000000000L;
            }
            sig = left.tv_sec < 0 ? -1 : sigtimedwait(&stop, NULL, &left);
            if (sig < 0) {
                if (left.tv_sec < 0 || errno == EAGAIN) {
                    (void)unlink(open_file); /* the browser has read it */
                    open_pending = false;
                }
                continue;
            }
        } else if (sigwait(&stop, &sig) != 0) {
            continue;
        }
        if (sig != SIGUSR1)
            break;
        new_link(&web, url_host, port, url, sizeof url, true);
        sodium_memzero(url, sizeof url);
        fprintf(stderr, "twofold web: a new link, good for one sign-in, is above.\n");
    }
    /* Ending the streams' waits first lets MHD_stop_daemon join their threads
     * at once. */
    if (open_pending)
        (void)unlink(open_file);
    close(quit[1]);
    MHD_stop_daemon(d);
    close(quit[0]);
    sem_destroy(&web.calls);
    pthread_mutex_destroy(&web.lock);
    sodium_memzero(&web, sizeof web);
    return TF_CLI_EXIT_OK;
}
