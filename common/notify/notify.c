/*
 * The pacing of service notifications (notify.h): when a WATCHDOG=1 is
 * due, and sending a STATUS= only when it changed. The sending itself is
 * the backend's (notify_systemd.c, notify_socket.c).
 */
#include "edgetel/notify.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "edgetel/log.h"

static void send_state(struct et_notify *n, const char *state)
{
    int rc = et_notify_send(state);

    /* A manager that went away is not a reason to stop the daemon; say it once. */
    if (rc < 0 && n->on) {
        et_warn("notify", "cannot notify the service manager: %s; notifying no more",
                strerror(-rc));
        n->on = false;
    }
}

void et_notify_init(struct et_notify *n, int64_t now_ms)
{
    const char *sock = getenv("NOTIFY_SOCKET");
    uint64_t usec;

    memset(n, 0, sizeof(*n));
    n->on = et_notify_supported() && sock && sock[0];
    if (!n->on)
        return;
    usec = et_notify_watchdog_usec();
    n->watchdog_ms = (int64_t)(usec / 1000);
    if (usec && n->watchdog_ms == 0)
        n->watchdog_ms = 1;
    n->next_watchdog_ms = now_ms;   /* the first pass feeds it */
}

void et_notify_ready(struct et_notify *n, const char *status)
{
    char msg[sizeof(n->status) + 32];

    if (!n->on)
        return;
    if (status) {
        snprintf(n->status, sizeof(n->status), "%s", status);
        snprintf(msg, sizeof(msg), "READY=1\nSTATUS=%s", n->status);
    } else {
        snprintf(msg, sizeof(msg), "READY=1");
    }
    send_state(n, msg);
}

void et_notify_status(struct et_notify *n, const char *status)
{
    char msg[sizeof(n->status) + 16];

    if (!n->on || strncmp(n->status, status, sizeof(n->status) - 1) == 0)
        return;
    snprintf(n->status, sizeof(n->status), "%s", status);
    snprintf(msg, sizeof(msg), "STATUS=%s", n->status);
    send_state(n, msg);
}

void et_notify_watchdog(struct et_notify *n, int64_t now_ms)
{
    if (!n->on || n->watchdog_ms == 0 || now_ms < n->next_watchdog_ms)
        return;
    send_state(n, "WATCHDOG=1");
    n->next_watchdog_ms = now_ms + (n->watchdog_ms + 1) / 2;
}

int et_notify_max_wait_ms(const struct et_notify *n, int64_t now_ms, int max_ms)
{
    int64_t left;

    if (!n->on || n->watchdog_ms == 0)
        return max_ms;
    left = n->next_watchdog_ms - now_ms;
    if (left < 0)
        return 0;
    return left < max_ms ? (int)left : max_ms;
}

void et_notify_stopping(struct et_notify *n)
{
    if (n->on)
        send_state(n, "STOPPING=1");
}
