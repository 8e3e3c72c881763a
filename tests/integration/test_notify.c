/*
 * systemd's notify protocol, as the real programs speak it (common/notify/):
 * the test binds a datagram socket in its directory, hands it to the
 * program as $NOTIFY_SOCKET (with $WATCHDOG_USEC, as systemd does for a
 * unit with WatchdogSec=) and reads what arrives.
 *   - the agent sends READY=1 once its config is valid and its outbox open,
 *     never before and never twice; a config it refuses sends nothing;
 *   - WATCHDOG=1 comes from its loop at half the interval;
 *   - STATUS= says connected or not and the backlog, and follows a broker
 *     that goes away; STOPPING=1 on SIGTERM;
 *   - the aggregator is ready only once connected and subscribed.
 * Every build notifies: through libsystemd, or (-DET_SYSTEMD=OFF, the
 * static agent) with the protocol spoken by common/notify/notify_socket.c.
 */
#include <errno.h>
#include <inttypes.h>
#include <poll.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <setjmp.h>
#include <cmocka.h>

#include "e2e.h"

#define WATCHDOG_USEC "1000000"   /* WatchdogSec=1s: WATCHDOG=1 every 500 ms */
#define WAIT_MS 30000

/* The socket systemd would listen on, and everything received on it. */
struct notify_sock {
    int fd;
    char path[sizeof(((struct sockaddr_un *)0)->sun_path)];
    char msgs[256][320];
    int64_t at_ms[256];
    size_t n;
};

static int64_t now_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void sock_open(struct notify_sock *s, struct et_e2e *e)
{
    struct sockaddr_un sa = { .sun_family = AF_UNIX };
    const char *path = et_test_env_path(e->env, "notify.sock");

    memset(s, 0, sizeof(*s));
    if (strlen(path) >= sizeof(sa.sun_path))
        fail_msg("%s: too long for a unix socket path; set a shorter TMPDIR", path);
    snprintf(s->path, sizeof(s->path), "%s", path);
    snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", path);
    s->fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    assert_true(s->fd >= 0);
    if (bind(s->fd, (struct sockaddr *)&sa, sizeof(sa)) != 0)
        fail_msg("bind %s: %s", path, strerror(errno));
}

static void sock_close(struct notify_sock *s)
{
    if (s->fd >= 0)
        close(s->fd);
    s->fd = -1;
}

/* Start a program with $NOTIFY_SOCKET (and the watchdog) in its environment only. */
static void notify_env(const struct notify_sock *s, bool on)
{
    if (on) {
        setenv("NOTIFY_SOCKET", s->path, 1);
        setenv("WATCHDOG_USEC", WATCHDOG_USEC, 1);
    } else {
        unsetenv("NOTIFY_SOCKET");
        unsetenv("WATCHDOG_USEC");
    }
}

/* Receive for up to ms; returns the index of the first new message holding
 * needle (NULL: any), or -1. Every message is kept. */
static int sock_wait(struct notify_sock *s, const char *needle, int ms)
{
    int64_t deadline = now_ms() + ms;

    for (;;) {
        int64_t left = deadline - now_ms();
        struct pollfd pfd = { .fd = s->fd, .events = POLLIN };
        ssize_t len;

        if (left < 0 || poll(&pfd, 1, (int)left) <= 0)
            return -1;
        assert_true(s->n < sizeof(s->msgs) / sizeof(s->msgs[0]));
        len = recv(s->fd, s->msgs[s->n], sizeof(s->msgs[0]) - 1, 0);
        if (len < 0)
            continue;
        s->msgs[s->n][len] = '\0';
        s->at_ms[s->n] = now_ms();
        s->n++;
        if (!needle || strstr(s->msgs[s->n - 1], needle))
            return (int)s->n - 1;
    }
}

static size_t count(const struct notify_sock *s, const char *needle, size_t from)
{
    size_t k = 0;

    for (size_t i = from; i < s->n; i++)
        k += strstr(s->msgs[i], needle) != NULL;
    return k;
}

static void dump(const struct notify_sock *s)
{
    for (size_t i = 0; i < s->n; i++)
        fprintf(stderr, "  notify %zu: %s\n", i, s->msgs[i]);
}

static int setup(void **state)
{
    return et_e2e_create((struct et_e2e **)state, "notify");
}

static int teardown(void **state)
{
    notify_env(NULL, false);
    et_e2e_destroy(*state);
    return 0;
}

static void agent_ready_watchdog_status_stopping(void **state)
{
    struct et_e2e *e = *state;
    const struct et_e2e_agent_opts opts = { 0 };
    struct notify_sock s;
    struct et_proc *agent;
    struct stat st;
    char connected[64], *p;
    size_t first_wd, wd_from;
    int i, port;
    unsigned long long backlog = 0;

    et_e2e_start_broker(e);
    et_e2e_start_aggregator(e);
    port = et_test_broker_port(e->broker);
    sock_open(&s, e);
    notify_env(&s, true);
    agent = et_e2e_start_agent(e, &opts);
    notify_env(&s, false);

    /* The first message is READY=1, and the outbox exists when it comes. */
    i = sock_wait(&s, NULL, WAIT_MS);
    if (i != 0)
        fail_msg("no notification from the agent within %d ms", WAIT_MS);
    if (!strstr(s.msgs[0], "READY=1") || !strstr(s.msgs[0], "STATUS=") ||
        !strstr(s.msgs[0], "backlog")) {
        dump(&s);
        fail_msg("the agent's first notification is not READY=1 with a STATUS= backlog line");
    }
    assert_int_equal(stat(et_e2e_outbox_path(e, ET_E2E_DEVICE), &st), 0);

    /* Connected, said in STATUS=. */
    snprintf(connected, sizeof(connected), "STATUS=connected to 127.0.0.1:%d", port);
    if (sock_wait(&s, connected, WAIT_MS) < 0) {
        dump(&s);
        fail_msg("no \"%s\" within %d ms", connected, WAIT_MS);
    }

    /* WATCHDOG=1 from the loop: at half of WatchdogSec=1s, never a gap of 1 s. */
    wd_from = s.n;
    while (sock_wait(&s, NULL, 3000) >= 0 && s.at_ms[s.n - 1] - s.at_ms[wd_from] < 3000)
        ;
    if (count(&s, "WATCHDOG=1", wd_from) < 4) {
        dump(&s);
        fail_msg("%zu WATCHDOG=1 in 3 s; expected one every 500 ms",
                 count(&s, "WATCHDOG=1", wd_from));
    }
    first_wd = SIZE_MAX;
    for (size_t k = wd_from; k < s.n; k++) {
        if (!strstr(s.msgs[k], "WATCHDOG=1"))
            continue;
        if (first_wd != SIZE_MAX && s.at_ms[k] - s.at_ms[first_wd] >= 1000) {
            dump(&s);
            fail_msg("%" PRId64 " ms between two WATCHDOG=1: systemd would have killed it",
                     s.at_ms[k] - s.at_ms[first_wd]);
        }
        first_wd = k;
    }

    /* The broker goes: STATUS= says so, and the backlog grows. */
    assert_int_equal(et_test_broker_stop(e->broker), 0);
    if (sock_wait(&s, "STATUS=not connected to 127.0.0.1", WAIT_MS) < 0) {
        dump(&s);
        fail_msg("STATUS= did not say the broker was lost within %d ms", WAIT_MS);
    }
    for (int64_t end = now_ms() + WAIT_MS; backlog == 0 && now_ms() < end;) {
        i = sock_wait(&s, "STATUS=not connected", 3000);
        if (i >= 0 && (p = strstr(s.msgs[i], "backlog ")) != NULL)
            backlog = strtoull(p + 8, NULL, 10);
    }
    if (backlog == 0) {
        dump(&s);
        fail_msg("STATUS= never showed a backlog while the broker was down");
    }

    /* SIGTERM: STOPPING=1, and READY=1 was said exactly once. */
    assert_int_equal(et_proc_stop(agent, 15000, NULL), 0);
    if (sock_wait(&s, "STOPPING=1", 5000) < 0) {
        dump(&s);
        fail_msg("no STOPPING=1 after SIGTERM");
    }
    assert_int_equal(count(&s, "READY=1", 0), 1);
    sock_close(&s);
    et_e2e_pass(e);
}

static void agent_with_a_bad_config_is_never_ready(void **state)
{
    struct et_e2e *e = *state;
    struct notify_sock s;
    struct et_proc *agent;
    const char *conf;
    int status = 0;

    conf = et_test_env_write(e->env, "bad.conf", "[agent]\ndevice_id = bad\ndata_dir = %s/bad\n"
                             "batch_interval = 5x\n", et_test_env_dir(e->env));
    sock_open(&s, e);
    notify_env(&s, true);
    agent = et_test_env_start(e->env, "bad-agent", (const char *const[]){
        ET_BINARY_DIR "/agent/edgetel-agent", "--config", conf, NULL });
    notify_env(&s, false);
    assert_int_equal(et_proc_wait_exit(agent, WAIT_MS, &status), 0);
    assert_true(WIFEXITED(status));
    assert_int_equal(WEXITSTATUS(status), 2);
    if (sock_wait(&s, NULL, 500) >= 0) {
        dump(&s);
        fail_msg("an agent that refused its config notified the manager");
    }
    sock_close(&s);
    et_e2e_pass(e);
}

static void aggregator_ready_once_subscribed(void **state)
{
    struct et_e2e *e = *state;
    struct notify_sock s;
    char connected[64];
    int i;

    et_e2e_start_broker(e);
    snprintf(connected, sizeof(connected), "STATUS=connected to 127.0.0.1:%d",
             et_test_broker_port(e->broker));
    /* No broker yet: running, saying so, not ready. */
    assert_int_equal(et_test_broker_stop(e->broker), 0);
    sock_open(&s, e);
    notify_env(&s, true);
    et_e2e_start_aggregator(e);
    notify_env(&s, false);
    if (sock_wait(&s, "STATUS=not connected to 127.0.0.1", WAIT_MS) < 0) {
        dump(&s);
        fail_msg("the aggregator did not say it was not connected within %d ms", WAIT_MS);
    }
    sock_wait(&s, "READY=1", 2000);
    if (count(&s, "READY=1", 0) != 0) {
        dump(&s);
        fail_msg("the aggregator said READY=1 without a broker");
    }
    assert_true(count(&s, "WATCHDOG=1", 0) >= 1);

    /* The broker comes: READY=1 with the connected line, once. */
    assert_int_equal(et_test_broker_restart(e->broker), 0);
    i = sock_wait(&s, "READY=1", WAIT_MS);
    if (i < 0 || !strstr(s.msgs[i], connected)) {
        dump(&s);
        fail_msg("no READY=1 with \"%s\" once the broker was there", connected);
    }
    sock_wait(&s, "READY=1", 2000);
    assert_int_equal(count(&s, "READY=1", 0), 1);
    sock_close(&s);
    et_e2e_pass(e);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(agent_ready_watchdog_status_stopping, setup, teardown),
        cmocka_unit_test_setup_teardown(agent_with_a_bad_config_is_never_ready, setup, teardown),
        cmocka_unit_test_setup_teardown(aggregator_ready_once_subscribed, setup, teardown),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
