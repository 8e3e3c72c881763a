/*
 * systemd's notify protocol as the build without libsystemd speaks it
 * (common/notify/notify_socket.c, the static agent's): the test is the
 * service manager, with a datagram socket of its own as $NOTIFY_SOCKET.
 *   - READY=1 with its STATUS=, a STATUS= only when it changes, WATCHDOG=1
 *     at half the interval and STOPPING=1 arrive as sd_notify sends them,
 *     to a socket path and to an abstract socket ('@');
 *   - the watchdog interval is $WATCHDOG_USEC, and none when $WATCHDOG_PID
 *     names another process or either is not a whole number;
 *   - no $NOTIFY_SOCKET: nothing sent, nothing fails; one that names no
 *     socket, or a socket nobody listens on: an error, said once, and the
 *     daemon goes on without notifying.
 */
#include <errno.h>
#include <poll.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>
#include <setjmp.h>
#include <cmocka.h>

#include "edgetel/notify.h"

struct manager {
    int fd;
    char dir[64];
    char name[108];      /* as $NOTIFY_SOCKET says it */
};

/* Listen on a socket path in a directory of the test's own, or on an
 * abstract socket. */
static void manager_open(struct manager *m, bool abstract)
{
    struct sockaddr_un sa = { .sun_family = AF_UNIX };
    socklen_t len;

    memset(m, 0, sizeof(*m));
    m->fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    assert_true(m->fd >= 0);
    if (abstract) {
        snprintf(m->name, sizeof(m->name), "@edgetel-test-notify-%ld", (long)getpid());
        memcpy(sa.sun_path, m->name, strlen(m->name));
        sa.sun_path[0] = '\0';
        len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + strlen(m->name));
    } else {
        snprintf(m->dir, sizeof(m->dir), "/tmp/et-notify-XXXXXX");
        assert_non_null(mkdtemp(m->dir));
        snprintf(m->name, sizeof(m->name), "%s/notify.sock", m->dir);
        snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", m->name);
        len = sizeof(sa);
    }
    if (bind(m->fd, (struct sockaddr *)&sa, len) != 0)
        fail_msg("bind %s: %s", m->name, strerror(errno));
    assert_int_equal(setenv("NOTIFY_SOCKET", m->name, 1), 0);
}

static void manager_close(struct manager *m)
{
    close(m->fd);
    if (m->dir[0]) {
        unlink(m->name);
        rmdir(m->dir);
    }
    unsetenv("NOTIFY_SOCKET");
    unsetenv("WATCHDOG_USEC");
    unsetenv("WATCHDOG_PID");
}

/* The next datagram, waited for up to a second; "" when none came. */
static const char *manager_read(struct manager *m, char *buf, size_t size)
{
    struct pollfd p = { .fd = m->fd, .events = POLLIN };
    ssize_t n;

    buf[0] = '\0';
    if (poll(&p, 1, 1000) != 1)
        return buf;
    n = recv(m->fd, buf, size - 1, 0);
    assert_true(n >= 0);
    buf[n] = '\0';
    return buf;
}

/* Nothing waiting on the socket now. */
static void assert_nothing_sent(struct manager *m)
{
    struct pollfd p = { .fd = m->fd, .events = POLLIN };

    assert_int_equal(poll(&p, 1, 0), 0);
}

static void the_life_of_a_daemon(bool abstract)
{
    struct manager m;
    struct et_notify n;
    char buf[512];

    manager_open(&m, abstract);
    assert_int_equal(setenv("WATCHDOG_USEC", "2000000", 1), 0);
    et_notify_init(&n, 1000);
    assert_true(n.on);
    assert_int_equal(n.watchdog_ms, 2000);

    et_notify_ready(&n, "connected; 0 batches waiting");
    assert_string_equal(manager_read(&m, buf, sizeof(buf)),
                        "READY=1\nSTATUS=connected; 0 batches waiting");
    et_notify_status(&n, "connected; 0 batches waiting");
    assert_nothing_sent(&m);
    et_notify_status(&n, "not connected; 3 batches waiting");
    assert_string_equal(manager_read(&m, buf, sizeof(buf)),
                        "STATUS=not connected; 3 batches waiting");

    /* The first pass feeds the watchdog, the next one a second later. */
    assert_int_equal(et_notify_max_wait_ms(&n, 1000, 5000), 0);
    et_notify_watchdog(&n, 1000);
    assert_string_equal(manager_read(&m, buf, sizeof(buf)), "WATCHDOG=1");
    et_notify_watchdog(&n, 1999);
    assert_nothing_sent(&m);
    assert_int_equal(et_notify_max_wait_ms(&n, 1500, 5000), 500);
    et_notify_watchdog(&n, 2000);
    assert_string_equal(manager_read(&m, buf, sizeof(buf)), "WATCHDOG=1");

    et_notify_stopping(&n);
    assert_string_equal(manager_read(&m, buf, sizeof(buf)), "STOPPING=1");
    manager_close(&m);
}

static void test_socket_path(void **state)
{
    (void)state;
    the_life_of_a_daemon(false);
}

static void test_abstract_socket(void **state)
{
    (void)state;
    the_life_of_a_daemon(true);
}

static void test_watchdog_environment(void **state)
{
    char pid[32];

    (void)state;
    unsetenv("WATCHDOG_PID");
    unsetenv("WATCHDOG_USEC");
    assert_int_equal(et_notify_watchdog_usec(), 0);
    setenv("WATCHDOG_USEC", "30000000", 1);
    assert_int_equal(et_notify_watchdog_usec(), 30000000);

    /* systemd names the process the interval is for. */
    snprintf(pid, sizeof(pid), "%ld", (long)getpid());
    setenv("WATCHDOG_PID", pid, 1);
    assert_int_equal(et_notify_watchdog_usec(), 30000000);
    snprintf(pid, sizeof(pid), "%ld", (long)getpid() + 1);
    setenv("WATCHDOG_PID", pid, 1);
    assert_int_equal(et_notify_watchdog_usec(), 0);
    unsetenv("WATCHDOG_PID");

    /* Not a whole number: no watchdog rather than a wrong one. */
    static const char *const bad[] = { "", "30s", "-5", " 30", "0", "99999999999999999999999" };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        setenv("WATCHDOG_USEC", bad[i], 1);
        if (et_notify_watchdog_usec() != 0)
            fail_msg("WATCHDOG_USEC=\"%s\" taken as an interval", bad[i]);
    }
    unsetenv("WATCHDOG_USEC");
}

static void test_no_manager(void **state)
{
    struct et_notify n;

    (void)state;
    unsetenv("NOTIFY_SOCKET");
    assert_int_equal(et_notify_send("READY=1"), 0);
    et_notify_init(&n, 0);
    assert_false(n.on);
    et_notify_ready(&n, "connected");   /* a no-op, not a failure */
    assert_int_equal(et_notify_max_wait_ms(&n, 0, 5000), 5000);
}

static void test_bad_socket(void **state)
{
    struct et_notify n;
    char long_name[200];

    (void)state;
    /* Not a path nor an abstract name, or one too long for an address. */
    setenv("NOTIFY_SOCKET", "notify.sock", 1);
    assert_int_equal(et_notify_send("READY=1"), -EINVAL);
    setenv("NOTIFY_SOCKET", "@", 1);
    assert_int_equal(et_notify_send("READY=1"), -EINVAL);
    memset(long_name, 'a', sizeof(long_name) - 1);
    long_name[0] = '/';
    long_name[sizeof(long_name) - 1] = '\0';
    setenv("NOTIFY_SOCKET", long_name, 1);
    assert_int_equal(et_notify_send("READY=1"), -EINVAL);

    /* Nobody listening: the error is said once and notifying stops. */
    setenv("NOTIFY_SOCKET", "/nonexistent/edgetel/notify.sock", 1);
    assert_int_equal(et_notify_send("READY=1"), -ENOENT);
    et_notify_init(&n, 0);
    assert_true(n.on);
    et_notify_ready(&n, NULL);
    assert_false(n.on);
    unsetenv("NOTIFY_SOCKET");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_socket_path),
        cmocka_unit_test(test_abstract_socket),
        cmocka_unit_test(test_watchdog_environment),
        cmocka_unit_test(test_no_manager),
        cmocka_unit_test(test_bad_socket),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
