/*
 * The notify backend of a build without libsystemd (the static agent:
 * Debian ships no libsystemd.a), so that the one unit file serves every
 * build: systemd's notify protocol as sd_notify(3) documents it. A
 * notification is one datagram of newline-separated assignments sent to
 * the AF_UNIX socket $NOTIFY_SOCKET names (a leading '@': an abstract
 * socket); the watchdog interval is $WATCHDOG_USEC, for this process only
 * when $WATCHDOG_PID names another.
 */
#include "edgetel/notify.h"

#include <errno.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <sys/un.h>
#include <unistd.h>

bool et_notify_supported(void)
{
    return true;
}

/* $NOTIFY_SOCKET as an address; -EINVAL when it names none. */
static int notify_address(const char *name, struct sockaddr_un *sa, socklen_t *len)
{
    size_t n = strlen(name);

    if ((name[0] != '/' && name[0] != '@') || n < 2 || n >= sizeof(sa->sun_path))
        return -EINVAL;
    memset(sa, 0, sizeof(*sa));
    sa->sun_family = AF_UNIX;
    memcpy(sa->sun_path, name, n);
    if (name[0] == '@')
        sa->sun_path[0] = '\0';   /* abstract: the name's bytes, no terminator */
    else
        n++;                      /* a path: with its terminator */
    *len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + n);
    return 0;
}

int et_notify_send(const char *state)
{
    const char *name = getenv("NOTIFY_SOCKET");
    struct sockaddr_un sa;
    socklen_t len;
    int fd, ret;

    if (!name || !name[0])
        return 0;
    ret = notify_address(name, &sa, &len);
    if (ret < 0)
        return ret;
    fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -errno;
    ret = sendto(fd, state, strlen(state), MSG_NOSIGNAL, (struct sockaddr *)&sa, len) < 0
              ? -errno
              : 1;
    close(fd);
    return ret;
}

/* A decimal number that is the whole of s and above zero, or 0. */
static unsigned long long whole_number(const char *s)
{
    unsigned long long v;
    char *end;

    if (!s || s[0] < '0' || s[0] > '9')
        return 0;
    errno = 0;
    v = strtoull(s, &end, 10);
    return errno || *end ? 0 : v;
}

uint64_t et_notify_watchdog_usec(void)
{
    const char *pid = getenv("WATCHDOG_PID");

    if (pid && pid[0] && whole_number(pid) != (unsigned long long)getpid())
        return 0;
    return whole_number(getenv("WATCHDOG_USEC"));
}
