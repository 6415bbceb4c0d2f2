/* SPDX-License-Identifier: MIT */
/* The daemon's log lines (node/log.c): one write per line until buffering is
 * on; then info lines wait for tf_node_log_flush, a warning or error flushes
 * what was kept before it, and every write is of whole lines, at most
 * TF_NODE_LOG_BUFFER bytes.  stderr is a SOCK_SEQPACKET socket here, so each
 * write() arrives as one message and its bounds can be checked. */
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cmocka.h>

#include "node/log.h"

static int reader = -1;

/* The next write's bytes (NUL-terminated in buf), or -1 if none is waiting. */
static ssize_t next_write(char *buf, size_t cap)
{
    ssize_t n = recv(reader, buf, cap - 1, MSG_DONTWAIT);
    if (n < 0) {
        assert_true(errno == EAGAIN || errno == EWOULDBLOCK);
        return -1;
    }
    buf[n] = '\0';
    return n;
}

static int count_lines(const char *s)
{
    int n = 0;
    for (; *s != '\0'; s++)
        n += *s == '\n';
    return n;
}

static void test_log(void **state)
{
    (void)state;
    int sv[2];
    assert_int_equal(socketpair(AF_UNIX, SOCK_SEQPACKET, 0, sv), 0);
    int saved = dup(STDERR_FILENO);
    assert_true(saved >= 0);
    assert_int_equal(dup2(sv[1], STDERR_FILENO), STDERR_FILENO);
    close(sv[1]);
    reader = sv[0];
    int sndbuf = 1 << 20;
    (void)setsockopt(STDERR_FILENO, SOL_SOCKET, SO_SNDBUF, &sndbuf, sizeof sndbuf);
    char buf[2 * TF_NODE_LOG_BUFFER];

    /* Unbuffered: each line is written at once. */
    tf_node_log(TF_NODE_LOG_INFO, "test", "first %d", 1);
    assert_true(next_write(buf, sizeof buf) > 0);
    assert_non_null(strstr(buf, " info  test: first 1\n"));
    assert_int_equal(count_lines(buf), 1);
    tf_node_log(TF_NODE_LOG_DEBUG, "test", "below the level");
    assert_int_equal(next_write(buf, sizeof buf), -1);

    tf_node_log_buffered();
    /* Info lines wait for the flush, then leave in one write, in order. */
    tf_node_log(TF_NODE_LOG_INFO, "test", "kept a");
    tf_node_log(TF_NODE_LOG_INFO, "test", "kept b");
    assert_int_equal(next_write(buf, sizeof buf), -1);
    tf_node_log_flush();
    assert_true(next_write(buf, sizeof buf) > 0);
    assert_int_equal(count_lines(buf), 2);
    assert_true(strstr(buf, "kept a\n") < strstr(buf, "kept b\n"));
    assert_non_null(strstr(buf, "kept b\n"));
    tf_node_log_flush(); /* nothing kept: nothing written */
    assert_int_equal(next_write(buf, sizeof buf), -1);

    /* A warning flushes at once, after what was kept before it. */
    tf_node_log(TF_NODE_LOG_INFO, "test", "before the warning");
    tf_node_log(TF_NODE_LOG_WARN, "test", "the warning");
    assert_true(next_write(buf, sizeof buf) > 0);
    assert_int_equal(count_lines(buf), 2);
    assert_true(strstr(buf, "before the warning\n") < strstr(buf, " warn  test: the warning\n"));
    tf_node_log(TF_NODE_LOG_ERROR, "test", "an error");
    assert_true(next_write(buf, sizeof buf) > 0);
    assert_non_null(strstr(buf, " error test: an error\n"));

    /* More than the buffer holds: whole lines, each write at most the
     * buffer, none lost, none repeated. */
    char big[300];
    memset(big, 'x', sizeof big - 1);
    big[sizeof big - 1] = '\0';
    int total = 0, writes = 0;
    for (int i = 0; i < 100; i++) {
        tf_node_log(TF_NODE_LOG_INFO, "test", "line %03d %s", i, big);
        for (ssize_t n; (n = next_write(buf, sizeof buf)) > 0; writes++) {
            assert_true((size_t)n <= TF_NODE_LOG_BUFFER);
            assert_int_equal(buf[n - 1], '\n');
            total += count_lines(buf);
        }
    }
    tf_node_log_flush();
    for (ssize_t n; (n = next_write(buf, sizeof buf)) > 0; writes++) {
        assert_int_equal(buf[n - 1], '\n');
        total += count_lines(buf);
    }
    assert_int_equal(total, 100);
    assert_true(writes >= 100 * 320 / TF_NODE_LOG_BUFFER && writes < 20);

    /* A line longer than the buffer (the 2 KiB message cap plus the
     * prefix never is, so this checks the cap): still one whole line. */
    char huge[3000];
    memset(huge, 'y', sizeof huge - 1);
    huge[sizeof huge - 1] = '\0';
    tf_node_log(TF_NODE_LOG_WARN, "test", "%s", huge);
    ssize_t n = next_write(buf, sizeof buf);
    assert_true(n > 2000 && (size_t)n <= TF_NODE_LOG_BUFFER);
    assert_int_equal(count_lines(buf), 1);

    assert_int_equal(dup2(saved, STDERR_FILENO), STDERR_FILENO);
    close(saved);
    close(reader);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_log),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
