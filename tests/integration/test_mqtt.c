/*
 * The MQTT seam's Paho transport (common/mqtt/mqtt_paho*.c) against a real
 * mosquitto with mutual TLS, the shipped broker config and ACL. Every wait
 * is bounded and driven by et_mqtt_fd() + poll(), the way the agent's loop
 * drives it.
 *
 * MQTT 3.1.1 and the fallback to it are in test_mqtt_versions.c; the
 * recording clients both use are in tests/lib/mqtt_client.c.
 *
 * The "killed client" of the last-will test is this same executable
 * started again with --will-client: a separate process that can be
 * SIGKILLed without taking Paho's threads in the test process with it.
 */
#include "broker.h"
#include "mqtt_client.h"

#include "edgetel/log.h"
#include "edgetel/mqtt.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

/* argv[0], to start this executable again as the will client. Set once in
 * main before any test runs. Not /proc/self/exe: under valgrind that names
 * valgrind itself. */
static const char *self_exe;

/* How many of this process's TCP sockets to 127.0.0.1:port have TCP_NODELAY, of *total. */
static int nodelay_sockets_to(int port, int *total)
{
    int with = 0;

    *total = 0;
    for (int fd = 3; fd < 1024; fd++) {
        struct sockaddr_in peer;
        socklen_t len = sizeof(peer);
        int on = 0;
        socklen_t olen = sizeof(on);

        if (getpeername(fd, (struct sockaddr *)&peer, &len) != 0 || peer.sin_family != AF_INET ||
            ntohs(peer.sin_port) != port)
            continue;
        (*total)++;
        if (getsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &on, &olen) == 0 && on)
            with++;
    }
    return with;
}

static void test_publish_and_receive(void **state)
{
    struct et_test_mqtt *f = *state;
    struct et_test_client *both[] = { &f->agg, &f->dev1 };
    static const unsigned char batch[] = { 0x08, 0x00, 0x2a, 0xff, 0x00, 0x10 };
    static const unsigned char ack[] = { 0x08, 0x07 };
    const struct et_test_record *r;
    size_t mark;
    int token;

    /* The aggregator's real subscription: a shared one, allowed by the ACL's read rule. */
    et_test_connect_pair(f, "$share/edgetel/edgetel/v1/+/telemetry", "edgetel/v1/dev-1/ack");
    /* Small publishes and acks must not wait for delayed ACKs (Nagle is off). */
    {
        int total;

        assert_int_equal(nodelay_sockets_to(et_test_broker_port(f->broker), &total), 2);
        assert_int_equal(total, 2);
    }
    assert_int_equal(et_mqtt_publish(f->dev1.mqtt, "", batch, sizeof(batch), 1, false), -EINVAL);
    /* A wildcard in a topic name would make the broker drop the connection. */
    assert_int_equal(et_mqtt_publish(f->dev1.mqtt, "edgetel/v1/dev-1/#", batch, 1, 1, false),
                     -EINVAL);
    assert_int_equal(et_mqtt_publish(f->dev1.mqtt, "edgetel/v1/+/telemetry", batch, 1, 1, false),
                     -EINVAL);
    assert_int_equal(et_mqtt_publish(f->dev1.mqtt, "edgetel/v1/dev-1/telemetry", batch, 1, 3,
                                     false), -EINVAL);

    token = et_mqtt_publish(f->dev1.mqtt, "edgetel/v1/dev-1/telemetry", batch, sizeof(batch), 1,
                            false);
    assert_true(token > 0);
    et_test_wait_for(both, 2, &f->dev1, 0, ET_MQTT_PUBLISHED, NULL, token);
    r = et_test_wait_for(both, 2, &f->agg, 0, ET_MQTT_MESSAGE, "edgetel/v1/dev-1/telemetry", 0);
    assert_int_equal(r->len, sizeof(batch));
    assert_memory_equal(r->payload, batch, sizeof(batch));

    /* And back: the aggregator acknowledges to the device. */
    token = et_mqtt_publish(f->agg.mqtt, "edgetel/v1/dev-1/ack", ack, sizeof(ack), 1, false);
    assert_true(token > 0);
    et_test_wait_for(both, 2, &f->agg, 0, ET_MQTT_PUBLISHED, NULL, token);
    r = et_test_wait_for(both, 2, &f->dev1, 0, ET_MQTT_MESSAGE, "edgetel/v1/dev-1/ack", 0);
    assert_int_equal(r->len, sizeof(ack));
    assert_memory_equal(r->payload, ack, sizeof(ack));

    /* An empty payload is a message too (e.g. clearing a retained one). */
    mark = f->agg.n;
    token = et_mqtt_publish(f->dev1.mqtt, "edgetel/v1/dev-1/telemetry", NULL, 0, 1, false);
    assert_true(token > 0);
    et_test_wait_for(both, 2, &f->dev1, 0, ET_MQTT_PUBLISHED, NULL, token);
    r = et_test_wait_for(both, 2, &f->agg, mark, ET_MQTT_MESSAGE, "edgetel/v1/dev-1/telemetry", 0);
    assert_int_equal(r->len, 0);

    /* QoS 0 still gets a token, but no event names it. */
    mark = f->agg.n;
    token = et_mqtt_publish(f->dev1.mqtt, "edgetel/v1/dev-1/telemetry", batch, 1, 0, false);
    assert_true(token > 0);
    r = et_test_wait_for(both, 2, &f->agg, mark, ET_MQTT_MESSAGE, "edgetel/v1/dev-1/telemetry", 0);
    assert_int_equal(r->len, 1);
    assert_int_equal(r->payload[0], batch[0]);
    assert_int_equal(et_test_find(&f->dev1, 0, ET_MQTT_PUBLISHED, NULL, token), -1);
}

static void test_inflight_window(void **state)
{
    struct et_test_mqtt *f = *state;
    struct et_test_client *both[] = { &f->agg, &f->dev1 };
    struct et_test_identity id;
    struct et_mqtt_cfg cfg;
    pid_t broker = et_test_broker_pid(f->broker);
    int t1, t2;

    et_test_client_open(f, &f->agg, "aggregator", ET_TEST_AGGREGATOR, NULL);
    assert_int_equal(et_test_broker_identity(f->broker, "dev-1", &id), 0);
    et_test_broker_mqtt_cfg(f->broker, &id, "dev-1", &cfg);
    cfg.max_inflight = 2;
    et_test_client_open(f, &f->dev1, "dev-1", NULL, &cfg);
    assert_int_equal(et_mqtt_publish(f->dev1.mqtt, "edgetel/v1/dev-1/telemetry", "x", 1, 1,
                                     false), -ENOTCONN);
    assert_int_equal(et_mqtt_start(f->agg.mqtt), 0);
    assert_int_equal(et_mqtt_start(f->dev1.mqtt), 0);
    et_test_wait_for(both, 2, &f->dev1, 0, ET_MQTT_CONNECTED, NULL, 0);

    /* A frozen broker acknowledges nothing: the window fills and stays full. */
    assert_int_equal(kill(broker, SIGSTOP), 0);
    t1 = et_mqtt_publish(f->dev1.mqtt, "edgetel/v1/dev-1/telemetry", "a", 1, 1, false);
    t2 = et_mqtt_publish(f->dev1.mqtt, "edgetel/v1/dev-1/telemetry", "b", 1, 1, false);
    assert_true(t1 > 0 && t2 > 0 && t1 != t2);
    assert_int_equal(et_mqtt_publish(f->dev1.mqtt, "edgetel/v1/dev-1/telemetry", "c", 1, 1,
                                     false), -EAGAIN);
    assert_int_equal(kill(broker, SIGCONT), 0);
    et_test_wait_for(both, 2, &f->dev1, 0, ET_MQTT_PUBLISHED, NULL, t1);
    et_test_wait_for(both, 2, &f->dev1, 0, ET_MQTT_PUBLISHED, NULL, t2);
    assert_true(et_mqtt_publish(f->dev1.mqtt, "edgetel/v1/dev-1/telemetry", "c", 1, 1,
                                false) > 0);
}

static void test_reconnect_restores_subscriptions(void **state)
{
    struct et_test_mqtt *f = *state;
    struct et_test_client *both[] = { &f->agg, &f->dev1 };
    size_t agg_mark, dev_mark;
    const struct et_test_record *r;
    int token;

    et_test_connect_pair(f, "edgetel/v1/+/telemetry", "edgetel/v1/dev-1/ack");
    agg_mark = f->agg.n;
    dev_mark = f->dev1.n;

    assert_int_equal(et_test_broker_stop(f->broker), 0);
    r = et_test_wait_for(both, 2, &f->dev1, dev_mark, ET_MQTT_DISCONNECTED, NULL, 0);
    assert_true(r->reason[0] != '\0');
    et_test_wait_for(both, 2, &f->agg, agg_mark, ET_MQTT_DISCONNECTED, NULL, 0);
    assert_false(et_mqtt_connected(f->dev1.mqtt));
    assert_int_equal(et_mqtt_publish(f->dev1.mqtt, "edgetel/v1/dev-1/telemetry", "x", 1, 1,
                                     false), -ENOTCONN);

    /* Retries fail while it is down; each failure is reported with its reason. */
    r = et_test_wait_for(both, 2, &f->dev1, et_test_find(&f->dev1, dev_mark, ET_MQTT_DISCONNECTED, NULL, 0) + 1,
                 ET_MQTT_DISCONNECTED, NULL, 0);
    assert_non_null(strstr(r->reason, "127.0.0.1"));

    assert_int_equal(et_test_broker_restart(f->broker), 0);
    et_test_wait_for(both, 2, &f->agg, agg_mark, ET_MQTT_CONNECTED, NULL, 0);
    et_test_wait_for(both, 2, &f->dev1, dev_mark, ET_MQTT_CONNECTED, NULL, 0);

    /* The broker kept no session (clean start): both subscriptions were made again. */
    token = et_mqtt_publish(f->agg.mqtt, "edgetel/v1/dev-1/ack", "A", 1, 1, false);
    assert_true(token > 0);
    et_test_wait_for(both, 2, &f->dev1, dev_mark, ET_MQTT_MESSAGE, "edgetel/v1/dev-1/ack", 0);
    token = et_mqtt_publish(f->dev1.mqtt, "edgetel/v1/dev-1/telemetry", "T", 1, 1, false);
    assert_true(token > 0);
    et_test_wait_for(both, 2, &f->dev1, dev_mark, ET_MQTT_PUBLISHED, NULL, token);
    et_test_wait_for(both, 2, &f->agg, agg_mark, ET_MQTT_MESSAGE, "edgetel/v1/dev-1/telemetry", 0);

    /* A crash (SIGKILL, nothing said on the wire) is noticed and recovered from too. */
    agg_mark = f->agg.n;
    dev_mark = f->dev1.n;
    assert_int_equal(et_test_broker_kill(f->broker), 0);
    assert_false(et_test_broker_running(f->broker));
    et_test_wait_for(both, 2, &f->dev1, dev_mark, ET_MQTT_DISCONNECTED, NULL, 0);
    et_test_wait_for(both, 2, &f->agg, agg_mark, ET_MQTT_DISCONNECTED, NULL, 0);
    assert_int_equal(et_test_broker_restart(f->broker), 0);
    et_test_wait_for(both, 2, &f->agg, agg_mark, ET_MQTT_CONNECTED, NULL, 0);
    et_test_wait_for(both, 2, &f->dev1, dev_mark, ET_MQTT_CONNECTED, NULL, 0);
    assert_true(et_mqtt_publish(f->agg.mqtt, "edgetel/v1/dev-1/ack", "B", 1, 1, false) > 0);
    r = et_test_wait_for(both, 2, &f->dev1, dev_mark, ET_MQTT_MESSAGE, "edgetel/v1/dev-1/ack", 0);
    assert_memory_equal(r->payload, "B", 1);
}

static const unsigned char will_payload[] = { 0x00, 'o', 'f', 'f', 0x00, 0xfe };

/* Child mode: connect as dev-2 with a will, say so on stdout, wait to be killed. */
static int will_client_main(int port, const char *ca, const char *cert, const char *key)
{
    struct et_mqtt_cfg cfg = {
        .host = "127.0.0.1", .port = port, .client_id = "dev-2", .tls = true,
        .ca_file = ca, .cert_file = cert, .key_file = key, .keepalive_s = 5,
        .min_backoff_ms = 50, .max_backoff_ms = 1000, .max_inflight = 4,
        .will_topic = "edgetel/v1/dev-2/status", .will_payload = will_payload,
        .will_len = sizeof(will_payload), .will_retain = true,
    };
    struct et_test_client c = { .name = "will-client" };
    int64_t deadline = et_test_now_ms() + ET_TEST_WAIT_MS;

    if (et_mqtt_create(&c.mqtt, et_mqtt_paho(), &cfg) != 0 || et_mqtt_start(c.mqtt) != 0)
        return 1;
    while (et_test_find(&c, 0, ET_MQTT_CONNECTED, NULL, 0) < 0) {
        struct pollfd pfd = { .fd = et_mqtt_fd(c.mqtt), .events = POLLIN };

        if (et_test_now_ms() > deadline)
            return 2;
        if (poll(&pfd, 1, 200) > 0)
            et_mqtt_dispatch(c.mqtt, et_test_on_event, &c);
    }
    if (write(STDOUT_FILENO, "C", 1) != 1)
        return 3;
    for (;;)
        pause();
}

static void test_will_on_kill_not_on_clean_close(void **state)
{
    struct et_test_mqtt *f = *state;
    struct et_test_client *both[] = { &f->agg, &f->dev1 };
    struct et_test_identity id;
    struct et_mqtt_cfg cfg;
    char port[16];
    char ready;
    int out[2];
    int status;
    pid_t child;
    const struct et_test_record *r;
    size_t mark;

    et_test_connect_pair(f, "edgetel/v1/+/status", NULL);
    assert_int_equal(et_test_broker_identity(f->broker, "dev-2", &id), 0);

    /* A clean close must not publish the will. */
    et_test_broker_mqtt_cfg(f->broker, &id, "dev-2", &cfg);
    cfg.will_topic = "edgetel/v1/dev-2/status";
    cfg.will_payload = will_payload;
    cfg.will_len = sizeof(will_payload);
    cfg.will_retain = false;
    et_test_client_open(f, &f->dev2, "dev-2", NULL, &cfg);
    assert_int_equal(et_mqtt_start(f->dev2.mqtt), 0);
    {
        struct et_test_client *three[] = { &f->agg, &f->dev1, &f->dev2 };

        et_test_wait_for(three, 3, &f->dev2, 0, ET_MQTT_CONNECTED, NULL, 0);
    }
    et_mqtt_destroy(f->dev2.mqtt, 2000);
    f->dev2.mqtt = NULL;
    /* A marker published after the close; once it arrives, a will would have too. */
    assert_true(et_mqtt_publish(f->dev1.mqtt, "edgetel/v1/dev-1/status", "up", 2, 1, false) > 0);
    et_test_wait_for(both, 2, &f->agg, 0, ET_MQTT_MESSAGE, "edgetel/v1/dev-1/status", 0);
    assert_int_equal(et_test_count(&f->agg, 0, ET_MQTT_MESSAGE, "edgetel/v1/dev-2/status"), 0);

    /* A killed client: the broker publishes its will. */
    assert_int_equal(pipe(out), 0);
    snprintf(port, sizeof(port), "%d", et_test_broker_port(f->broker));
    fflush(NULL);
    child = fork();
    assert_true(child >= 0);
    if (child == 0) {
        dup2(out[1], STDOUT_FILENO);
        close(out[0]);
        execl(self_exe, self_exe, "--will-client", port, id.ca_file, id.cert_file,
              id.key_file, (char *)NULL);
        _exit(127);
    }
    close(out[1]);
    {
        struct pollfd pfd = { .fd = out[0], .events = POLLIN };

        assert_int_equal(poll(&pfd, 1, ET_TEST_WAIT_MS), 1);
        assert_int_equal(read(out[0], &ready, 1), 1);
        assert_int_equal(ready, 'C');
    }
    close(out[0]);
    mark = f->agg.n;
    assert_int_equal(kill(child, SIGKILL), 0);
    assert_int_equal(waitpid(child, &status, 0), child);

    r = et_test_wait_for(both, 2, &f->agg, mark, ET_MQTT_MESSAGE, "edgetel/v1/dev-2/status", 0);
    assert_int_equal(r->len, sizeof(will_payload));
    assert_memory_equal(r->payload, will_payload, sizeof(will_payload));

    /* The will was retained: an aggregator that starts later still learns it. */
    et_mqtt_destroy(f->agg.mqtt, 1000);
    et_test_client_open(f, &f->agg, "aggregator (later)", ET_TEST_AGGREGATOR, NULL);
    assert_int_equal(et_mqtt_subscribe(f->agg.mqtt, "edgetel/v1/+/status", 1), 0);
    assert_int_equal(et_mqtt_start(f->agg.mqtt), 0);
    r = et_test_wait_for(both, 2, &f->agg, 0, ET_MQTT_MESSAGE, "edgetel/v1/dev-2/status", 0);
    assert_memory_equal(r->payload, will_payload, sizeof(will_payload));
}

static void test_untrusted_clients_refused(void **state)
{
    struct et_test_mqtt *f = *state;
    struct et_test_client *both[] = { &f->dev1, &f->dev2 };
    struct et_test_identity foreign;
    struct et_mqtt_cfg cfg;
    int64_t deadline;

    /* dev-1 with a certificate from a CA the broker does not trust. */
    assert_int_equal(et_test_broker_foreign_identity(f->broker, "dev-1", &foreign), 0);
    et_test_broker_mqtt_cfg(f->broker, &foreign, "dev-1", &cfg);
    et_test_client_open(f, &f->dev1, "foreign-dev-1", NULL, &cfg);
    /* And a client with no certificate at all. */
    et_test_broker_mqtt_cfg(f->broker, NULL, "anonymous", &cfg);
    et_test_client_open(f, &f->dev2, "no-cert", NULL, &cfg);
    assert_int_equal(et_mqtt_start(f->dev1.mqtt), 0);
    assert_int_equal(et_mqtt_start(f->dev2.mqtt), 0);

    /* Each must be refused, then refused again after its backoff, and never get in. */
    deadline = et_test_now_ms() + ET_TEST_WAIT_MS;
    while (et_test_count(&f->dev1, 0, ET_MQTT_DISCONNECTED, NULL) < 2 ||
           et_test_count(&f->dev2, 0, ET_MQTT_DISCONNECTED, NULL) < 2) {
        assert_true(et_test_now_ms() < deadline);
        et_test_pump(both, 2, 200);
    }
    assert_int_equal(et_test_count(&f->dev1, 0, ET_MQTT_CONNECTED, NULL), 0);
    assert_int_equal(et_test_count(&f->dev2, 0, ET_MQTT_CONNECTED, NULL), 0);
    assert_false(et_mqtt_connected(f->dev1.mqtt));
    assert_false(et_mqtt_connected(f->dev2.mqtt));
    for (size_t i = 0; i < f->dev1.n; i++)
        assert_true(f->dev1.rec[i].reason[0] != '\0');
    for (size_t i = 0; i < f->dev2.n; i++)
        assert_true(f->dev2.rec[i].reason[0] != '\0');
}

static void test_broker_checked_by_client(void **state)
{
    struct et_test_mqtt *f = *state;
    struct et_test_client *both[] = { &f->dev1, &f->dev2 };
    struct et_test_identity id, foreign;
    struct et_mqtt_cfg cfg;
    char other_ca[4096];
    int64_t deadline;

    /* By name: the broker's certificate carries DNS:localhost as well as IP:127.0.0.1. */
    assert_int_equal(et_test_broker_identity(f->broker, "dev-1", &id), 0);
    et_test_broker_mqtt_cfg(f->broker, &id, "dev-1", &cfg);
    cfg.host = "localhost";
    et_test_client_open(f, &f->dev1, "dev-1", NULL, &cfg);
    assert_int_equal(et_mqtt_start(f->dev1.mqtt), 0);

    /* A client that trusts another CA must refuse the broker, whatever the broker thinks. */
    assert_int_equal(et_test_broker_foreign_identity(f->broker, "dev-2", &foreign), 0);
    snprintf(other_ca, sizeof(other_ca), "%s/foreign/ca/ca.crt", et_test_broker_dir(f->broker));
    assert_int_equal(et_test_broker_identity(f->broker, "dev-2", &id), 0);
    et_test_broker_mqtt_cfg(f->broker, &id, "dev-2", &cfg);
    cfg.ca_file = other_ca;
    et_test_client_open(f, &f->dev2, "dev-2-wrong-ca", NULL, &cfg);
    assert_int_equal(et_mqtt_start(f->dev2.mqtt), 0);

    et_test_wait_for(both, 2, &f->dev1, 0, ET_MQTT_CONNECTED, NULL, 0);
    deadline = et_test_now_ms() + ET_TEST_WAIT_MS;
    while (et_test_count(&f->dev2, 0, ET_MQTT_DISCONNECTED, NULL) < 2) {
        assert_true(et_test_now_ms() < deadline);
        et_test_pump(both, 2, 200);
    }
    assert_int_equal(et_test_count(&f->dev2, 0, ET_MQTT_CONNECTED, NULL), 0);
    /* OpenSSL's own words reach the person reading the reason. */
    assert_non_null(strstr(f->dev2.rec[0].reason, "certificate verify failed"));
}

static void test_acl_confines_device(void **state)
{
    struct et_test_mqtt *f = *state;
    struct et_test_client *all[] = { &f->agg, &f->dev1, &f->dev2 };
    const struct et_test_record *r;
    int forbidden, marker;

    et_test_connect_pair(f, "edgetel/v1/+/telemetry", "edgetel/v1/dev-1/ack");
    et_test_client_open(f, &f->dev2, "dev-2", "dev-2", NULL);
    /* dev-2 listens on dev-1's ack and on its own. */
    assert_int_equal(et_mqtt_subscribe(f->dev2.mqtt, "edgetel/v1/dev-1/ack", 1), 0);
    assert_int_equal(et_mqtt_subscribe(f->dev2.mqtt, "edgetel/v1/dev-2/ack", 1), 0);
    assert_int_equal(et_mqtt_start(f->dev2.mqtt), 0);
    et_test_wait_for(all, 3, &f->dev2, 0, ET_MQTT_CONNECTED, NULL, 0);

    /* dev-2 writes into dev-1's subtree: the broker refuses and forwards nothing. */
    forbidden = et_mqtt_publish(f->dev2.mqtt, "edgetel/v1/dev-1/telemetry", "forged", 6, 1,
                                false);
    assert_true(forbidden > 0);
    r = et_test_wait_for(all, 3, &f->dev2, 0, ET_MQTT_PUBLISH_FAILED, NULL, forbidden);
    assert_non_null(strstr(r->reason, "authori"));
    /* Same client, later message: delivered in order, so the forged one would be here by now. */
    marker = et_mqtt_publish(f->dev2.mqtt, "edgetel/v1/dev-2/telemetry", "own", 3, 1, false);
    assert_true(marker > 0);
    et_test_wait_for(all, 3, &f->agg, 0, ET_MQTT_MESSAGE, "edgetel/v1/dev-2/telemetry", 0);
    assert_int_equal(et_test_count(&f->agg, 0, ET_MQTT_MESSAGE, "edgetel/v1/dev-1/telemetry"), 0);

    /* dev-2 may not read dev-1's acks either. */
    assert_true(et_mqtt_publish(f->agg.mqtt, "edgetel/v1/dev-1/ack", "1", 1, 1, false) > 0);
    assert_true(et_mqtt_publish(f->agg.mqtt, "edgetel/v1/dev-2/ack", "2", 1, 1, false) > 0);
    et_test_wait_for(all, 3, &f->dev1, 0, ET_MQTT_MESSAGE, "edgetel/v1/dev-1/ack", 0);
    et_test_wait_for(all, 3, &f->dev2, 0, ET_MQTT_MESSAGE, "edgetel/v1/dev-2/ack", 0);
    assert_int_equal(et_test_count(&f->dev2, 0, ET_MQTT_MESSAGE, "edgetel/v1/dev-1/ack"), 0);

    /* A device may not pose as the aggregator and write another device's config. */
    forbidden = et_mqtt_publish(f->dev1.mqtt, "edgetel/v1/dev-2/config", "cfg", 3, 1, true);
    assert_true(forbidden > 0);
    et_test_wait_for(all, 3, &f->dev1, 0, ET_MQTT_PUBLISH_FAILED, NULL, forbidden);
}

/* DISCONNECTED events of c within window_ms of now, each gap at most max_gap_ms. */
static size_t failures_within(struct et_test_client *c, int window_ms, int max_gap_ms)
{
    struct et_test_client *one[] = { c };
    int64_t end = et_test_now_ms() + window_ms;
    size_t n;

    while (et_test_now_ms() < end)
        et_test_pump(one, 1, 50);
    n = et_test_count(c, 0, ET_MQTT_DISCONNECTED, NULL);
    assert_int_equal(et_test_count(c, 0, ET_MQTT_CONNECTED, NULL), 0);
    for (size_t k = 1; k < c->n; k++) {
        int64_t gap = c->rec[k].at_ms - c->rec[k - 1].at_ms;

        /* The bound allows a slow machine; full jitter has no lower one. */
        if (gap > max_gap_ms)
            fail_msg("[%s] retry %zu after %lld ms, ceiling %d ms", c->name, k,
                     (long long)gap, max_gap_ms);
    }
    return n;
}

/*
 * Full jitter under a cap chosen by the cause: nobody listening is retried
 * within the short cap (100 ms here) however often it fails; a broker whose
 * certificate we refuse climbs towards the long cap (60 s here), doubling
 * from 100 ms. In 3 s the first makes dozens of attempts, the second at
 * most about ten (eleven waits drawn under 100, 200, ... 51,200 ms summing
 * to under 3 s is a one-in-a-million chance).
 */
static void test_backoff_cap_follows_the_cause(void **state)
{
    struct et_test_mqtt *f = *state;
    struct et_test_identity id;
    struct et_mqtt_cfg cfg;
    char other_ca[4096];
    size_t unreachable, refused;

    assert_int_equal(et_test_broker_identity(f->broker, "dev-1", &id), 0);
    et_test_broker_mqtt_cfg(f->broker, &id, "dev-1", &cfg);
    cfg.min_backoff_ms = 100;
    cfg.max_backoff_ms = 100;
    cfg.max_backoff_refused_ms = 60000;

    /* A client that trusts another CA refuses the broker: the broker answered. */
    snprintf(other_ca, sizeof(other_ca), "%s/foreign/ca/ca.crt", et_test_broker_dir(f->broker));
    assert_int_equal(et_test_broker_foreign_identity(f->broker, "dev-2", &id), 0);
    cfg.ca_file = other_ca;
    et_test_client_open(f, &f->dev2, "dev-2-wrong-ca", NULL, &cfg);
    assert_int_equal(et_mqtt_start(f->dev2.mqtt), 0);
    refused = failures_within(&f->dev2, 3000, 60000 + 1500);
    assert_non_null(strstr(f->dev2.rec[0].reason, "certificate verify failed"));

    /* Nothing listens: every attempt fails at once, so the gaps are the waits. */
    assert_int_equal(et_test_broker_stop(f->broker), 0);
    assert_int_equal(et_test_broker_identity(f->broker, "dev-1", &id), 0);
    et_test_broker_mqtt_cfg(f->broker, &id, "dev-1", &cfg);
    cfg.min_backoff_ms = 100;
    cfg.max_backoff_ms = 100;
    cfg.max_backoff_refused_ms = 60000;
    et_test_client_open(f, &f->dev1, "dev-1", NULL, &cfg);
    assert_int_equal(et_mqtt_start(f->dev1.mqtt), 0);
    unreachable = failures_within(&f->dev1, 3000, 100 + 1500);

    fprintf(stderr, "in 3 s: %zu attempts at a stopped broker, %zu at a refused one\n",
            unreachable, refused);
    assert_true(unreachable >= 15);
    assert_true(refused >= 2 && refused <= 12);
}

static void test_destroy_is_prompt(void **state)
{
    struct et_test_mqtt *f = *state;
    struct et_test_client *one[] = { &f->dev1 };
    struct et_test_identity id;
    struct et_mqtt_cfg cfg;
    pid_t broker = et_test_broker_pid(f->broker);
    int64_t t0, deadline;

    assert_int_equal(et_test_broker_identity(f->broker, "dev-1", &id), 0);
    et_test_broker_mqtt_cfg(f->broker, &id, "dev-1", &cfg);

    /* In the middle of a long backoff. */
    assert_int_equal(et_test_broker_stop(f->broker), 0);
    cfg.min_backoff_ms = 30000;
    cfg.max_backoff_ms = 60000;
    et_test_client_open(f, &f->dev1, "dev-1 backing off", NULL, &cfg);
    assert_int_equal(et_mqtt_start(f->dev1.mqtt), 0);
    et_test_wait_for(one, 1, &f->dev1, 0, ET_MQTT_DISCONNECTED, NULL, 0);
    t0 = et_test_now_ms();
    et_mqtt_destroy(f->dev1.mqtt, 1000);
    f->dev1.mqtt = NULL;
    assert_true(et_test_now_ms() - t0 < 2000);

    /* In the middle of a handshake with a broker that does not answer. */
    assert_int_equal(et_test_broker_restart(f->broker), 0);
    broker = et_test_broker_pid(f->broker);
    assert_int_equal(kill(broker, SIGSTOP), 0);
    et_test_client_open(f, &f->dev1, "dev-1 handshaking", NULL, &cfg);
    assert_int_equal(et_mqtt_start(f->dev1.mqtt), 0);
    /* Give the connect time to reach the frozen broker: no event may come of it. */
    deadline = et_test_now_ms() + 300;
    while (et_test_now_ms() < deadline)
        et_test_pump(one, 1, 50);
    assert_int_equal(et_test_count(&f->dev1, 0, ET_MQTT_CONNECTED, NULL), 0);
    t0 = et_test_now_ms();
    et_mqtt_destroy(f->dev1.mqtt, 1000);
    f->dev1.mqtt = NULL;
    fprintf(stderr, "[dev-1] destroy during a stalled handshake took %lld ms\n",
            (long long)(et_test_now_ms() - t0));
    assert_true(et_test_now_ms() - t0 < 3000);
    assert_int_equal(kill(broker, SIGCONT), 0);
}

static void test_create_rejects_bad_cfg(void **state)
{
    struct et_test_mqtt *f = *state;
    struct et_test_identity id;
    struct et_mqtt_cfg good, bad;
    struct et_mqtt *m = (struct et_mqtt *)&m;

    assert_int_equal(et_test_broker_identity(f->broker, "dev-1", &id), 0);
    et_test_broker_mqtt_cfg(f->broker, &id, "dev-1", &good);
    bad = good;
    bad.port = 0;
    assert_int_equal(et_mqtt_create(&m, et_mqtt_paho(), &bad), -EINVAL);
    assert_null(m);
    bad = good;
    bad.client_id = "";
    assert_int_equal(et_mqtt_create(&m, et_mqtt_paho(), &bad), -EINVAL);
    bad = good;
    bad.max_backoff_ms = good.min_backoff_ms - 1;
    assert_int_equal(et_mqtt_create(&m, et_mqtt_paho(), &bad), -EINVAL);
    bad = good;
    bad.max_inflight = 0;
    assert_int_equal(et_mqtt_create(&m, et_mqtt_paho(), &bad), -EINVAL);
    bad = good;
    bad.mqtt_version = 3;
    assert_int_equal(et_mqtt_create(&m, et_mqtt_paho(), &bad), -EINVAL);
    bad = good;
    bad.ca_file = NULL;
    assert_int_equal(et_mqtt_create(&m, et_mqtt_paho(), &bad), -EINVAL);
    et_mqtt_destroy(NULL, 0);
    /* Created but never started: destroy must still be clean. */
    assert_int_equal(et_mqtt_create(&m, et_mqtt_paho(), &good), 0);
    assert_false(et_mqtt_connected(m));
    assert_int_equal(et_mqtt_dispatch(m, et_test_on_event, NULL), 0);
    et_mqtt_destroy(m, 0);
}

int main(int argc, char **argv)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_create_rejects_bad_cfg, et_test_mqtt_setup, et_test_mqtt_teardown),
        cmocka_unit_test_setup_teardown(test_publish_and_receive, et_test_mqtt_setup, et_test_mqtt_teardown),
        cmocka_unit_test_setup_teardown(test_inflight_window, et_test_mqtt_setup, et_test_mqtt_teardown),
        cmocka_unit_test_setup_teardown(test_backoff_cap_follows_the_cause, et_test_mqtt_setup, et_test_mqtt_teardown),
        cmocka_unit_test_setup_teardown(test_reconnect_restores_subscriptions, et_test_mqtt_setup, et_test_mqtt_teardown),
        cmocka_unit_test_setup_teardown(test_will_on_kill_not_on_clean_close, et_test_mqtt_setup, et_test_mqtt_teardown),
        cmocka_unit_test_setup_teardown(test_untrusted_clients_refused, et_test_mqtt_setup, et_test_mqtt_teardown),
        cmocka_unit_test_setup_teardown(test_broker_checked_by_client, et_test_mqtt_setup, et_test_mqtt_teardown),
        cmocka_unit_test_setup_teardown(test_acl_confines_device, et_test_mqtt_setup, et_test_mqtt_teardown),
        cmocka_unit_test_setup_teardown(test_destroy_is_prompt, et_test_mqtt_setup, et_test_mqtt_teardown),
    };

    et_log_init("test_mqtt", getenv("ET_TEST_DEBUG") ? ET_LOG_DEBUG : ET_LOG_WARN);
    if (argc == 6 && strcmp(argv[1], "--will-client") == 0)
        return will_client_main(atoi(argv[2]), argv[3], argv[4], argv[5]);
    self_exe = argv[0];
    return cmocka_run_group_tests(tests, NULL, NULL);
}
