/*
 * Telling the service manager how a daemon is doing: systemd's notify
 * protocol (Type=notify units), through libsystemd's sd_notify(), or
 * spoken here where the build has no libsystemd.
 *
 *   READY=1     once the daemon does its job (the agent: config valid and
 *               outbox open; the aggregator: store open and subscribed)
 *   WATCHDOG=1  from the event loop, at half the unit's WatchdogSec=, so a
 *               loop that hangs is killed and restarted by systemd
 *   STATUS=...  one line for `systemctl status`: connected or not, backlog
 *   STOPPING=1  on the way out
 *
 * Only when a manager listens: without $NOTIFY_SOCKET (a terminal, a test,
 * a chroot) every call is a no-op. A build without libsystemd (-DET_SYSTEMD=OFF,
 * or the static agent: Debian ships no libsystemd.a) links notify_socket.c,
 * the protocol itself, so every build runs under the same Type=notify unit.
 *
 * No process-wide state here: each daemon keeps its struct et_notify.
 */
#ifndef EDGETEL_NOTIFY_H
#define EDGETEL_NOTIFY_H

#include <stdbool.h>
#include <stdint.h>

struct et_notify {
    bool on;                   /* a manager listens and this build can tell it */
    int64_t watchdog_ms;       /* the manager's WatchdogSec=; 0: no watchdog */
    int64_t next_watchdog_ms;  /* when the next WATCHDOG=1 is due */
    char status[256];          /* the last STATUS= sent */
};

/** Whether this build can notify at all (built with libsystemd). */
bool et_notify_supported(void);

/** Read $NOTIFY_SOCKET and $WATCHDOG_USEC once, at start; now_ms on the monotonic clock. */
void et_notify_init(struct et_notify *n, int64_t now_ms);

/** READY=1, with a first STATUS= line (NULL: none). */
void et_notify_ready(struct et_notify *n, const char *status);

/** STATUS=status, sent only when it differs from the last one sent. */
void et_notify_status(struct et_notify *n, const char *status);

/** WATCHDOG=1 when half the watchdog interval has passed since the last one. */
void et_notify_watchdog(struct et_notify *n, int64_t now_ms);

/**
 * The longest a loop may sleep and still keep the watchdog fed: max_ms, or
 * less when the next WATCHDOG=1 is due sooner (never below 0).
 */
int et_notify_max_wait_ms(const struct et_notify *n, int64_t now_ms, int max_ms);

/** STOPPING=1: the daemon leaves (SIGTERM); the manager waits for the exit. */
void et_notify_stopping(struct et_notify *n);

/* The backend, chosen at link time: notify_systemd.c or notify_socket.c. */

/** Send one notification (newline-separated assignments). >0 sent, 0 nobody listens, -errno. */
int et_notify_send(const char *state);

/** The watchdog interval the manager asked this process for, in µs; 0: none. */
uint64_t et_notify_watchdog_usec(void);

#endif
