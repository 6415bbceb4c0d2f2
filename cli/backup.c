/* SPDX-License-Identifier: MIT */
#include "cli/backup.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

#include <sodium.h>

#include "cli/render.h"
#include "node/backup.h"

/* A passphrase in locked memory: TF_NODE_BACKUP_PASS_MAX bytes, one more to
 * tell a longer one, and room for a line end. */
#define PASS_CAP (TF_NODE_BACKUP_PASS_MAX + 3)

enum { OPT_PASS_FILE = 1, OPT_PASS_ENV, OPT_FORCE };

/* Where the passphrase comes from. */
struct pass_src {
    const char *file; /* --passphrase-file */
    const char *env;  /* --passphrase-env */
};

static int pass_opt(const struct tf_cli *cli, struct pass_src *src, int id, const char *val)
{
    if (id == OPT_PASS_FILE)
        src->file = val;
    else
        src->env = val;
    if (src->file != NULL && src->env != NULL)
        return tf_cli_args_usage_error(cli, "give --passphrase-file or --passphrase-env, not both");
    return TF_CLI_EXIT_OK;
}

/* Drops one line end ("\n" or "\r\n") from the end of buf[0..*len). */
static void chomp(const uint8_t *buf, size_t *len)
{
    if (*len > 0 && buf[*len - 1] == '\n')
        (*len)--;
    if (*len > 0 && buf[*len - 1] == '\r')
        (*len)--;
}

/* min: TF_NODE_BACKUP_PASS_MIN for a new backup, less for a restore (older
 * backups took shorter passphrases). */
static int check_len(const struct tf_cli *cli, size_t len, size_t min, const char *from)
{
    if (len < min || len > TF_NODE_BACKUP_PASS_MAX)
        return tf_cli_render_fail(cli, TF_CLI_EXIT_USAGE,
                                  "the passphrase %s is %zu bytes: give %zu to %d bytes", from, len,
                                  min, TF_NODE_BACKUP_PASS_MAX);
    return TF_CLI_EXIT_OK;
}

/* The passphrase file's first line (one line end dropped).  It must hold
 * nothing else: a second line is more likely a mistake than a passphrase. */
static int pass_from_file(const struct tf_cli *cli, const char *path, uint8_t *buf, size_t *len,
                          size_t min)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return tf_cli_render_fail(cli, TF_CLI_EXIT_LOCAL, "cannot open %s: %s", path,
                                  strerror(errno));
    *len = 0;
    for (ssize_t r = 1; r != 0 && *len < PASS_CAP;) {
        r = read(fd, buf + *len, PASS_CAP - *len);
        if (r < 0 && errno != EINTR) {
            int e = errno;
            close(fd);
            return tf_cli_render_fail(cli, TF_CLI_EXIT_LOCAL, "cannot read %s: %s", path,
                                      strerror(e));
        }
        if (r > 0)
            *len += (size_t)r;
    }
    close(fd);
    chomp(buf, len);
    if (memchr(buf, '\n', *len) != NULL)
        return tf_cli_render_fail(cli, TF_CLI_EXIT_USAGE,
                                  "%s holds more than one line: put the passphrase alone on the "
                                  "first line",
                                  path);
    return check_len(cli, *len, min, "in the file");
}

/* Set by SIGINT/SIGTERM while the terminal does not echo. */
static volatile sig_atomic_t interrupted;

static void on_interrupt(int sig)
{
    (void)sig;
    interrupted = 1;
}

/* Asks on the terminal, without echo.  Returns an exit status. */
static int pass_from_tty(const struct tf_cli *cli, int tty, const char *prompt, uint8_t *buf,
                         size_t *len, size_t min)
{
    struct termios old, quiet;
    struct sigaction sa, old_int, old_term;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_interrupt; /* no SA_RESTART: read() returns EINTR */
    sigemptyset(&sa.sa_mask);
    if (tcgetattr(tty, &old) != 0)
        return tf_cli_render_fail(cli, TF_CLI_EXIT_LOCAL, "cannot use the terminal: %s",
                                  strerror(errno));
    quiet = old;
    quiet.c_lflag &= ~(tcflag_t)(ECHO | ECHONL);
    quiet.c_lflag |= ICANON;
    sigaction(SIGINT, &sa, &old_int);
    sigaction(SIGTERM, &sa, &old_term);
    interrupted = 0;
    (void)!write(tty, prompt, strlen(prompt));
    tcsetattr(tty, TCSAFLUSH, &quiet);
    *len = 0;
    bool eol = false;
    while (!eol && !interrupted && *len < PASS_CAP) {
        ssize_t r = read(tty, buf + *len, 1);
        if (r <= 0) {
            if (r < 0 && errno == EINTR)
                continue;
            break;
        }
        eol = buf[*len] == '\n';
        *len += (size_t)r;
    }
    tcsetattr(tty, TCSAFLUSH, &old);
    (void)!write(tty, "\n", 1);
    sigaction(SIGINT, &old_int, NULL);
    sigaction(SIGTERM, &old_term, NULL);
    if (interrupted)
        return tf_cli_render_fail(cli, TF_CLI_EXIT_FAIL, "interrupted");
    chomp(buf, len);
    return check_len(cli, *len, min, "given");
}

/* Gets the passphrase into buf (PASS_CAP bytes of locked memory): from the
 * file or variable named, else from the terminal (twice when confirm). */
static int get_pass(const struct tf_cli *cli, const struct pass_src *src, bool confirm,
                    uint8_t *buf, size_t *len)
{
    /* A new backup (confirm) wants the longer passphrase; a restore takes
     * what older versions took. */
    size_t min = confirm ? TF_NODE_BACKUP_PASS_MIN : TF_NODE_BACKUP_RESTORE_PASS_MIN;
    if (src->file != NULL)
        return pass_from_file(cli, src->file, buf, len, min);
    if (src->env != NULL) {
        const char *v = getenv(src->env);
        if (v == NULL)
            return tf_cli_render_fail(cli, TF_CLI_EXIT_USAGE, "the variable %s is not set",
                                      src->env);
        *len = strnlen(v, PASS_CAP);
        memcpy(buf, v, *len);
        return check_len(cli, *len, min, "in the variable");
    }
    int tty = open("/dev/tty", O_RDWR | O_NOCTTY | O_CLOEXEC);
    if (tty < 0)
        return tf_cli_render_fail(cli, TF_CLI_EXIT_USAGE,
                                  "no terminal to ask for the passphrase: give "
                                  "--passphrase-file FILE or --passphrase-env VAR");
    int rc = pass_from_tty(cli, tty, "passphrase: ", buf, len, min);
    if (rc == TF_CLI_EXIT_OK && confirm) {
        uint8_t *again = sodium_malloc(PASS_CAP);
        size_t again_len = 0;
        if (again == NULL)
            rc = tf_cli_render_fail(cli, TF_CLI_EXIT_LOCAL, "out of memory");
        else if ((rc = pass_from_tty(cli, tty, "the same again: ", again, &again_len, min)) ==
                     TF_CLI_EXIT_OK &&
                 (again_len != *len || sodium_memcmp(again, buf, *len) != 0))
            rc = tf_cli_render_fail(cli, TF_CLI_EXIT_USAGE, "the two passphrases differ");
        sodium_free(again);
    }
    close(tty);
    return rc;
}

static void describe(char *buf, size_t cap, const struct tf_node_backup_info *info)
{
    snprintf(buf, cap, "the identity, the store (%llu KiB)%s%s",
             (unsigned long long)((info->store_bytes + 1023) / 1024),
             info->has_config ? ", the config" : "", info->has_policy ? ", the policy" : "");
}

static json_t *info_json(const struct tf_node_backup_info *info, const char *file, const char *home)
{
    return json_pack("{s:s, s:s, s:I, s:I, s:I, s:b, s:b}", "file", file, "home", home, "created",
                     (json_int_t)info->created, "bytes", (json_int_t)info->file_bytes,
                     "store_bytes", (json_int_t)info->store_bytes, "config", info->has_config,
                     "policy", info->has_policy);
}

/* Exit status for a failure of node/backup.c: a refusal (the file, the
 * passphrase, the target) is 1, trouble with the system (-errno, memory) 4. */
static int fail_status(int rc)
{
    if (rc == -EBUSY || (rc <= -10000 && rc != TF_E_NOMEM))
        return TF_CLI_EXIT_FAIL;
    return TF_CLI_EXIT_LOCAL;
}

int tf_cli_backup_write(struct tf_cli *cli, int argc, char **argv)
{
    static const struct tf_cli_opt opts[] = {
        {"passphrase-file", true, OPT_PASS_FILE},
        {"passphrase-env", true, OPT_PASS_ENV},
        {"force", false, OPT_FORCE},
        {NULL, false, 0},
    };
    struct tf_node_backup_info info;
    struct pass_src src = {0};
    struct tf_cli_args a;
    const char *val;
    bool force = false;
    char why[TF_NODE_PATH_MAX + 256];
    size_t len = 0;
    int id, rc;

    tf_cli_args_init(&a, cli, argc, argv, opts);
    while ((id = tf_cli_args_next(&a, &val)) > 0) {
        if (id == OPT_FORCE)
            force = true;
        else if ((rc = pass_opt(cli, &src, id, val)) != TF_CLI_EXIT_OK)
            return rc;
    }
    if (id < 0 || tf_cli_args_want(&a, 1, 1, "FILE") != 0)
        return TF_CLI_EXIT_USAGE;
    if ((rc = tf_cli_args_home(cli)) != TF_CLI_EXIT_OK)
        return rc;
    uint8_t *pass = sodium_malloc(PASS_CAP);
    if (pass == NULL)
        return tf_cli_render_fail(cli, TF_CLI_EXIT_LOCAL, "out of memory");
    if ((rc = get_pass(cli, &src, true, pass, &len)) != TF_CLI_EXIT_OK)
        goto cleanup;
    time_t now = time(NULL);
    rc = tf_node_backup_write(cli->home, a.pos[0], force, pass, len, now > 0 ? (uint64_t)now : 0,
                              &info, why, sizeof why);
    if (rc != TF_OK) {
        rc = tf_cli_render_fail(cli, fail_status(rc), "%s", why);
        goto cleanup;
    }
    if (cli->json) {
        rc = tf_cli_render_json_print(cli, info_json(&info, a.pos[0], cli->home), false);
    } else {
        char what[128];
        describe(what, sizeof what, &info);
        printf("backed up %s to %s (%llu KiB): %s.\n"
               "Keep the passphrase somewhere safe: without it the backup cannot be opened.\n",
               cli->home, a.pos[0], (unsigned long long)((info.file_bytes + 1023) / 1024), what);
        rc = TF_CLI_EXIT_OK;
    }
cleanup:
    sodium_free(pass);
    return rc;
}

int tf_cli_backup_restore(struct tf_cli *cli, int argc, char **argv)
{
    static const struct tf_cli_opt opts[] = {
        {"passphrase-file", true, OPT_PASS_FILE},
        {"passphrase-env", true, OPT_PASS_ENV},
        {NULL, false, 0},
    };
    struct tf_node_backup_info info;
    struct pass_src src = {0};
    struct tf_cli_args a;
    const char *val;
    char why[TF_NODE_PATH_MAX + 256];
    size_t len = 0;
    int id, rc;

    tf_cli_args_init(&a, cli, argc, argv, opts);
    while ((id = tf_cli_args_next(&a, &val)) > 0)
        if ((rc = pass_opt(cli, &src, id, val)) != TF_CLI_EXIT_OK)
            return rc;
    if (id < 0 || tf_cli_args_want(&a, 1, 2, "FILE") != 0)
        return TF_CLI_EXIT_USAGE;
    /* The new home: the argument, else the one --home or the environment
     * names. */
    if (a.n_pos == 2) {
        if (cli->home_arg != NULL)
            return tf_cli_args_usage_error(cli, "give the new home once: as HOME or --home");
        cli->home_arg = a.pos[1];
    }
    if ((rc = tf_cli_args_home(cli)) != TF_CLI_EXIT_OK)
        return rc;
    uint8_t *pass = sodium_malloc(PASS_CAP);
    if (pass == NULL)
        return tf_cli_render_fail(cli, TF_CLI_EXIT_LOCAL, "out of memory");
    if ((rc = get_pass(cli, &src, false, pass, &len)) != TF_CLI_EXIT_OK)
        goto cleanup;
    rc = tf_node_backup_restore(a.pos[0], cli->home, pass, len, &info, why, sizeof why);
    if (rc != TF_OK) {
        rc = tf_cli_render_fail(cli, fail_status(rc), "%s", why);
        goto cleanup;
    }
    if (cli->json) {
        rc = tf_cli_render_json_print(cli, info_json(&info, a.pos[0], cli->home), false);
    } else {
        char what[128], when[64];
        struct tm tm;
        time_t t = (time_t)info.created;
        describe(what, sizeof what, &info);
        if (gmtime_r(&t, &tm) == NULL ||
            strftime(when, sizeof when, "%Y-%m-%d %H:%M UTC", &tm) == 0)
            snprintf(when, sizeof when, "?");
        printf("restored %s into %s: %s, as of %s.\n"
               "Start it with: twofoldd --home %s\n"
               "Only one node may run with this identity: never start the node this backup\n"
               "came from again (see BACKUP AND RESTORE in twofold(1)).\n",
               a.pos[0], cli->home, what, when, cli->home);
        rc = TF_CLI_EXIT_OK;
    }
cleanup:
    sodium_free(pass);
    return rc;
}
