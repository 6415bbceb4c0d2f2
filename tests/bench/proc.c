/* SPDX-License-Identifier: MIT */
/* Processes, /proc figures and files for the benchmark. */
#define _XOPEN_SOURCE 700 /* nftw */
#include "tests/bench/bench.h"

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "proto/err.h"

#define WHY(...) snprintf(why, why_cap, __VA_ARGS__)

volatile sig_atomic_t tf_bench_stop;

double tf_bench_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void sleep_ms(int ms)
{
    struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

/* In the child: stdout to out_fd (or the log), stderr to the log, then exec.
 * Only async-signal-safe calls between fork and exec. */
static void child_exec(char *const argv[], const char *log_path, int out_fd, bool own_group)
{
    int log_fd = open(log_path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
    if (log_fd < 0)
        _exit(127);
    if (own_group)
        (void)setpgid(0, 0);
    int null_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
    if (null_fd >= 0)
        (void)dup2(null_fd, STDIN_FILENO);
    if (dup2(out_fd >= 0 ? out_fd : log_fd, STDOUT_FILENO) < 0 || dup2(log_fd, STDERR_FILENO) < 0)
        _exit(127);
    execv(argv[0], argv);
    _exit(127);
}

int tf_bench_spawn(char *const argv[], const char *log_path, pid_t *pid, char *why, size_t why_cap)
{
    pid_t p = fork();
    if (p < 0) {
        int e = errno;
        WHY("fork: %s", strerror(e));
        return -e;
    }
    if (p == 0)
        child_exec(argv, log_path, -1, true);
    *pid = p;
    return 0;
}

/* Appends what fd has now to *buf; 1 at EOF. */
static int drain(int fd, char **buf, size_t *len, size_t *cap)
{
    for (;;) {
        if (*cap - *len < 4097) {
            size_t want = *cap ? *cap * 2 : 8192;
            char *p = realloc(*buf, want);
            if (p == NULL)
                return TF_E_NOMEM;
            *buf = p;
            *cap = want;
        }
        ssize_t n = read(fd, *buf + *len, *cap - *len - 1);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && errno == EAGAIN)
            return 0;
        if (n < 0)
            return -errno;
        if (n == 0)
            return 1;
        *len += (size_t)n;
    }
}

int tf_bench_run(char *const argv[], const char *log_path, double timeout_s, char **out, char *why,
                 size_t why_cap)
{
    int fds[2];
    char *buf = NULL;
    size_t len = 0, cap = 0;
    int rc = 0, status = 0;
    bool eof = false;
    if (pipe(fds) != 0) {
        int e = errno;
        WHY("pipe: %s", strerror(e));
        return -e;
    }
    pid_t p = fork();
    if (p < 0) {
        rc = -errno;
        WHY("fork: %s", strerror(errno));
        close(fds[0]);
        close(fds[1]);
        return rc;
    }
    if (p == 0) {
        close(fds[0]);
        child_exec(argv, log_path, fds[1], false);
    }
    close(fds[1]);
    (void)fcntl(fds[0], F_SETFL, O_NONBLOCK);
    double deadline = tf_bench_now() + timeout_s;
    while (!eof) {
        struct pollfd pf = {.fd = fds[0], .events = POLLIN};
        (void)poll(&pf, 1, 100);
        int d = drain(fds[0], &buf, &len, &cap);
        if (d < 0) {
            rc = d;
            WHY("reading the output of %s: %s", argv[0], tf_strerror(d));
            break;
        }
        eof = d == 1;
        if (!eof && (tf_bench_now() > deadline || tf_bench_stop)) {
            rc = -ETIMEDOUT;
            WHY("%s did not finish within %.0f s", argv[0], timeout_s);
            break;
        }
    }
    close(fds[0]);
    if (rc != 0)
        kill(p, SIGKILL);
    while (waitpid(p, &status, 0) < 0 && errno == EINTR)
        ;
    if (rc == 0 && !(WIFEXITED(status) && WEXITSTATUS(status) == 0)) {
        rc = TF_E_BAD_STATE;
        WHY("%s %s failed (status %d; see %s)", argv[0], argv[1] ? argv[1] : "", status, log_path);
    }
    if (buf != NULL)
        buf[len] = '\0';
    if (rc == 0 && out != NULL) {
        *out = buf;
        buf = NULL;
    }
    free(buf);
    return rc;
}

/* Reads a whole (small) file into a NUL-terminated malloc'ed string. */
static char *slurp(const char *path, size_t *out_len)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return NULL;
    char *buf = NULL;
    size_t len = 0, cap = 0;
    int d = drain(fd, &buf, &len, &cap);
    close(fd);
    if (d < 0 || buf == NULL) {
        free(buf);
        return NULL;
    }
    buf[len] = '\0';
    if (out_len != NULL)
        *out_len = len;
    return buf;
}

int tf_bench_wait_log(pid_t pid, const char *log_path, size_t from, const char *needle,
                      double timeout_s, char *why, size_t why_cap)
{
    double deadline = tf_bench_now() + timeout_s;
    for (;;) {
        size_t len = 0;
        char *text = slurp(log_path, &len);
        bool found = text != NULL && len > from && strstr(text + from, needle) != NULL;
        free(text);
        if (found)
            return 0;
        int status;
        if (waitpid(pid, &status, WNOHANG) == pid) {
            WHY("twofoldd exited (status %d) before logging '%s'; see %s", status, needle,
                log_path);
            return TF_E_BAD_STATE;
        }
        if (tf_bench_now() > deadline) {
            WHY("twofoldd did not log '%s' within %.0f s; see %s", needle, timeout_s, log_path);
            return -ETIMEDOUT;
        }
        if (tf_bench_stop) {
            WHY("interrupted");
            return -EINTR;
        }
        sleep_ms(20);
    }
}

uint64_t tf_bench_file_size(const char *path)
{
    struct stat sb;
    return stat(path, &sb) == 0 && sb.st_size > 0 ? (uint64_t)sb.st_size : 0;
}

int tf_bench_stop_pid(pid_t pid, bool term, double timeout_s, int *status)
{
    double deadline = tf_bench_now() + timeout_s;
    *status = 0;
    if (term && kill(pid, SIGTERM) != 0 && errno != ESRCH)
        return -errno;
    for (;;) {
        pid_t r = waitpid(pid, status, WNOHANG);
        if (r == pid)
            return 0;
        if (r < 0 && errno != EINTR)
            return -errno;
        if (tf_bench_now() > deadline)
            break;
        sleep_ms(10);
    }
    kill(pid, SIGKILL);
    while (waitpid(pid, status, 0) < 0 && errno == EINTR)
        ;
    return -ETIMEDOUT;
}

int tf_bench_proc_cpu(pid_t pid, double *cpu_s)
{
    char path[64];
    snprintf(path, sizeof path, "/proc/%ld/stat", (long)pid);
    char *text = slurp(path, NULL);
    if (text == NULL)
        return -ENOENT;
    /* The command name may hold spaces and parentheses: fields start after
     * the last ')'.  Then: state(3) ppid pgrp session tty_nr tpgid flags
     * minflt cminflt majflt cmajflt utime(14) stime(15). */
    char *p = strrchr(text, ')');
    int rc = -EINVAL;
    if (p != NULL) {
        unsigned long long utime = 0, stime = 0;
        if (sscanf(p + 1, " %*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu", &utime,
                   &stime) == 2) {
            long tck = sysconf(_SC_CLK_TCK);
            *cpu_s = (double)(utime + stime) / (double)(tck > 0 ? tck : 100);
            rc = 0;
        }
    }
    free(text);
    return rc;
}

/* The value of "Key:   123 kB" in a /proc status text. */
static uint64_t status_kb(const char *text, const char *key)
{
    const char *p = strstr(text, key);
    if (p == NULL)
        return 0;
    unsigned long long v = 0;
    if (sscanf(p + strlen(key), " %llu", &v) != 1)
        return 0;
    return v;
}

int tf_bench_proc_mem(pid_t pid, struct tf_bench_mem *m)
{
    char path[64];
    snprintf(path, sizeof path, "/proc/%ld/status", (long)pid);
    char *text = slurp(path, NULL);
    if (text == NULL)
        return -ENOENT;
    m->rss_kb = status_kb(text, "\nVmRSS:");
    m->hwm_kb = status_kb(text, "\nVmHWM:");
    m->anon_kb = status_kb(text, "\nRssAnon:");
    free(text);
    return 0;
}

int tf_bench_free_port(uint16_t *port)
{
    struct sockaddr_in sa;
    socklen_t len = sizeof sa;
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -errno;
    memset(&sa, 0, sizeof sa);
    sa.sin_family = AF_INET;
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    int rc = 0;
    if (bind(fd, (struct sockaddr *)&sa, sizeof sa) != 0 ||
        getsockname(fd, (struct sockaddr *)&sa, &len) != 0)
        rc = -errno;
    else
        *port = ntohs(sa.sin_port);
    close(fd);
    return rc;
}

static int rm_cb(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb;
    (void)ftw;
    int rc = flag == FTW_DP ? rmdir(path) : unlink(path);
    return rc != 0 && errno != ENOENT ? -errno : 0;
}

int tf_bench_rmtree(const char *path)
{
    return nftw(path, rm_cb, 16, FTW_DEPTH | FTW_PHYS);
}

void tf_bench_tail(const char *path, const char *prefix, int lines)
{
    size_t len = 0;
    char *text = slurp(path, &len);
    if (text == NULL)
        return;
    size_t start = len;
    int seen = 0;
    while (start > 0) {
        if (text[start - 1] == '\n' && start != len && ++seen >= lines)
            break;
        start--;
    }
    char *line = text + start;
    while (*line != '\0') {
        char *nl = strchr(line, '\n');
        if (nl != NULL)
            *nl = '\0';
        fprintf(stderr, "%s%s\n", prefix, line);
        if (nl == NULL)
            break;
        line = nl + 1;
    }
    free(text);
}
