/* SPDX-License-Identifier: MIT */
#include "node/notify.h"

#include <errno.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "node/log.h"

int tf_node_notify(const char *state)
{
    const char *addr = getenv("NOTIFY_SOCKET");
    if (addr == NULL || addr[0] == '\0')
        return 0;
    struct sockaddr_un sa;
    memset(&sa, 0, sizeof sa);
    sa.sun_family = AF_UNIX;
    size_t n = strlen(addr);
    int rc;
    if (addr[0] != '/' && addr[0] != '@') {
        rc = -EAFNOSUPPORT;
        goto fail;
    }
    /* A path needs its NUL inside sun_path; an abstract address does not
     * (its length is given, its first byte is the NUL). */
    if (n > sizeof sa.sun_path - (addr[0] == '/')) {
        rc = -ENAMETOOLONG;
        goto fail;
    }
    memcpy(sa.sun_path, addr, n);
    if (addr[0] == '@')
        sa.sun_path[0] = '\0';
    socklen_t len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + n + (addr[0] == '/'));
    int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (fd < 0) {
        rc = -errno;
        goto fail;
    }
    size_t slen = strlen(state);
    ssize_t sent = sendto(fd, state, slen, MSG_NOSIGNAL, (const struct sockaddr *)&sa, len);
    rc = sent < 0 ? -errno : (size_t)sent == slen ? 0 : -EMSGSIZE;
    close(fd);
    if (rc == 0)
        return 0;
fail:
    tf_node_log(TF_NODE_LOG_WARN, "node", "cannot notify the service manager at %.200s: %s", addr,
                strerror(-rc));
    return rc;
}
