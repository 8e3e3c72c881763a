/*
 * The MQTT seam's Paho transport and MQTT 3.1.1: a 3.1.1 client against
 * the real mosquitto (a refused publish cannot be reported, it is dropped),
 * and the fallback from MQTT 5 to 3.1.1 against a stand-in broker that
 * does not speak 5. Every wait is bounded.
 */
#include "broker.h"
#include "mqtt_client.h"

#include "edgetel/log.h"
#include "edgetel/mqtt.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cmocka.h>

static void test_mqtt_311(void **state)
{
    struct et_test_mqtt *f = *state;
    struct et_test_client *both[] = { &f->agg, &f->dev1 };
    struct et_test_identity id;
    struct et_mqtt_cfg cfg;
    const struct et_test_record *r;
    size_t mark;
    int token;

    et_test_client_open(f, &f->agg, "aggregator", ET_TEST_AGGREGATOR, NULL);
    assert_int_equal(et_mqtt_subscribe(f->agg.mqtt, "edgetel/v1/+/telemetry", 1), 0);
    assert_int_equal(et_test_broker_identity(f->broker, "dev-1", &id), 0);
    et_test_broker_mqtt_cfg(f->broker, &id, "dev-1", &cfg);
    cfg.mqtt_version = 4;
    et_test_client_open(f, &f->dev1, "dev-1 (3.1.1)", NULL, &cfg);
    assert_int_equal(et_mqtt_subscribe(f->dev1.mqtt, "edgetel/v1/dev-1/ack", 1), 0);
    assert_int_equal(et_mqtt_start(f->agg.mqtt), 0);
    assert_int_equal(et_mqtt_start(f->dev1.mqtt), 0);
    et_test_wait_for(both, 2, &f->agg, 0, ET_MQTT_CONNECTED, NULL, 0);
    et_test_wait_for(both, 2, &f->dev1, 0, ET_MQTT_CONNECTED, NULL, 0);

    token = et_mqtt_publish(f->dev1.mqtt, "edgetel/v1/dev-1/telemetry", "\x01\x00", 2, 1, false);
    assert_true(token > 0);
    et_test_wait_for(both, 2, &f->dev1, 0, ET_MQTT_PUBLISHED, NULL, token);
    r = et_test_wait_for(both, 2, &f->agg, 0, ET_MQTT_MESSAGE, "edgetel/v1/dev-1/telemetry", 0);
    assert_int_equal(r->len, 2);
    assert_true(et_mqtt_publish(f->agg.mqtt, "edgetel/v1/dev-1/ack", "A", 1, 1, false) > 0);
    et_test_wait_for(both, 2, &f->dev1, 0, ET_MQTT_MESSAGE, "edgetel/v1/dev-1/ack", 0);

    /* 3.1.1 has no way to say "refused": the broker acknowledges and drops. */
    token = et_mqtt_publish(f->dev1.mqtt, "edgetel/v1/dev-2/telemetry", "forged", 6, 1, false);
    assert_true(token > 0);
    et_test_wait_for(both, 2, &f->dev1, 0, ET_MQTT_PUBLISHED, NULL, token);
    mark = f->agg.n;
    token = et_mqtt_publish(f->dev1.mqtt, "edgetel/v1/dev-1/telemetry", "own", 3, 1, false);
    assert_true(token > 0);
    r = et_test_wait_for(both, 2, &f->agg, mark, ET_MQTT_MESSAGE, "edgetel/v1/dev-1/telemetry", 0);
    assert_memory_equal(r->payload, "own", 3);
    assert_int_equal(et_test_count(&f->agg, 0, ET_MQTT_MESSAGE, "edgetel/v1/dev-2/telemetry"), 0);
}

/*
 * A stand-in for a broker without MQTT 5, which mosquitto cannot be made to
 * be: plain TCP on 127.0.0.1, it reads each CONNECT, notes its protocol
 * level, and answers an MQTT 5 CONNECT with `refusal` (then closes) and a
 * 3.1.1 CONNECT with "accepted" (and keeps the connection).
 */
struct fake_broker {
    int listen_fd;
    int port;
    const unsigned char *refusal;
    size_t refusal_len;
    int max_connects;
    int levels[8];
    int n_connects;             /* written by the thread, read after join */
    int kept_fd;
    pthread_t thread;
};

static const unsigned char connack_v3_bad_version[] = { 0x20, 0x02, 0x00, 0x01 };
static const unsigned char connack_v5_unsupported[] = { 0x20, 0x03, 0x00, 0x84, 0x00 };
static const unsigned char connack_v3_accepted[] = { 0x20, 0x02, 0x00, 0x00 };

static bool read_full(int fd, unsigned char *buf, size_t len)
{
    while (len > 0) {
        struct pollfd pfd = { .fd = fd, .events = POLLIN };
        ssize_t n;

        if (poll(&pfd, 1, ET_TEST_WAIT_MS) != 1)
            return false;
        n = read(fd, buf, len);
        if (n <= 0)
            return false;
        buf += n;
        len -= (size_t)n;
    }
    return true;
}

/* Returns the protocol level of the CONNECT read from fd, or -1. */
static int read_connect_level(int fd)
{
    unsigned char b, body[512];
    size_t remaining = 0;
    int shift = 0;

    if (!read_full(fd, &b, 1) || b != 0x10)
        return -1;
    do {
        if (!read_full(fd, &b, 1) || shift > 21)
            return -1;
        remaining |= (size_t)(b & 0x7f) << shift;
        shift += 7;
    } while (b & 0x80);
    if (remaining < 7 || remaining > sizeof(body) || !read_full(fd, body, remaining))
        return -1;
    return body[6];             /* after the protocol name "\0\4MQTT" */
}

static void *fake_broker_main(void *arg)
{
    struct fake_broker *fb = arg;

    while (fb->n_connects < fb->max_connects) {
        struct pollfd pfd = { .fd = fb->listen_fd, .events = POLLIN };
        int fd, level;

        if (poll(&pfd, 1, ET_TEST_WAIT_MS) != 1)
            break;
        fd = accept(fb->listen_fd, NULL, NULL);
        if (fd < 0)
            break;
        level = read_connect_level(fd);
        fb->levels[fb->n_connects++] = level;
        if (level == 4) {
            if (write(fd, connack_v3_accepted, sizeof(connack_v3_accepted)) < 0)
                close(fd);
            else
                fb->kept_fd = fd;
            break;
        }
        if (write(fd, fb->refusal, fb->refusal_len) < 0)
            break;
        close(fd);
    }
    return NULL;
}

static void fake_broker_start(struct fake_broker *fb, const unsigned char *refusal,
                              size_t refusal_len, int max_connects)
{
    struct sockaddr_in addr = { .sin_family = AF_INET };
    socklen_t len = sizeof(addr);

    memset(fb, 0, sizeof(*fb));
    fb->kept_fd = -1;
    fb->refusal = refusal;
    fb->refusal_len = refusal_len;
    fb->max_connects = max_connects;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    fb->listen_fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    assert_true(fb->listen_fd >= 0);
    assert_int_equal(bind(fb->listen_fd, (struct sockaddr *)&addr, sizeof(addr)), 0);
    assert_int_equal(getsockname(fb->listen_fd, (struct sockaddr *)&addr, &len), 0);
    assert_int_equal(listen(fb->listen_fd, 4), 0);
    fb->port = ntohs(addr.sin_port);
    assert_int_equal(pthread_create(&fb->thread, NULL, fake_broker_main, fb), 0);
}

static void fake_broker_stop(struct fake_broker *fb)
{
    pthread_join(fb->thread, NULL);
    if (fb->kept_fd >= 0)
        close(fb->kept_fd);
    close(fb->listen_fd);
}

static void fake_client_cfg(const struct fake_broker *fb, int version, struct et_mqtt_cfg *cfg)
{
    *cfg = (struct et_mqtt_cfg){
        .host = "127.0.0.1", .port = fb->port, .client_id = "dev-1", .tls = false,
        .keepalive_s = 30, .min_backoff_ms = 50, .max_backoff_ms = 200, .max_inflight = 4,
        .mqtt_version = version,
    };
}

static void test_falls_back_to_311(void **state)
{
    struct et_test_mqtt *f = *state;
    struct et_test_client *one[] = { &f->dev1 };
    struct fake_broker fb;
    struct et_mqtt_cfg cfg;
    const struct et_test_record *r;

    fake_broker_start(&fb, connack_v3_bad_version, sizeof(connack_v3_bad_version), 4);
    fake_client_cfg(&fb, 0, &cfg);
    et_test_client_open(f, &f->dev1, "dev-1 (auto)", NULL, &cfg);
    assert_int_equal(et_mqtt_start(f->dev1.mqtt), 0);
    et_test_wait_for(one, 1, &f->dev1, 0, ET_MQTT_CONNECTED, NULL, 0);
    r = &f->dev1.rec[et_test_find(&f->dev1, 0, ET_MQTT_DISCONNECTED, NULL, 0)];
    assert_non_null(strstr(r->reason, "unacceptable protocol version"));
    assert_non_null(strstr(r->reason, "trying MQTT 3.1.1"));
    et_mqtt_destroy(f->dev1.mqtt, 0);
    f->dev1.mqtt = NULL;
    fake_broker_stop(&fb);
    assert_int_equal(fb.n_connects, 2);
    assert_int_equal(fb.levels[0], 5);
    assert_int_equal(fb.levels[1], 4);
}

static void test_mqtt5_only_refused(void **state)
{
    struct et_test_mqtt *f = *state;
    struct et_test_client *one[] = { &f->dev1 };
    struct fake_broker fb;
    struct et_mqtt_cfg cfg;
    int64_t deadline;

    fake_broker_start(&fb, connack_v5_unsupported, sizeof(connack_v5_unsupported), 2);
    fake_client_cfg(&fb, 5, &cfg);
    et_test_client_open(f, &f->dev1, "dev-1 (5 only)", NULL, &cfg);
    assert_int_equal(et_mqtt_start(f->dev1.mqtt), 0);
    deadline = et_test_now_ms() + ET_TEST_WAIT_MS;
    while (et_test_count(&f->dev1, 0, ET_MQTT_DISCONNECTED, NULL) < 2) {
        assert_true(et_test_now_ms() < deadline);
        et_test_pump(one, 1, 200);
    }
    et_mqtt_destroy(f->dev1.mqtt, 0);
    f->dev1.mqtt = NULL;
    fake_broker_stop(&fb);
    /* The MQTT 5 reason code reaches the person, and no fallback was tried. */
    assert_non_null(strstr(f->dev1.rec[0].reason, "0x84"));
    assert_non_null(strstr(f->dev1.rec[0].reason, "Unsupported Protocol Version"));
    assert_int_equal(et_test_count(&f->dev1, 0, ET_MQTT_CONNECTED, NULL), 0);
    assert_int_equal(fb.n_connects, 2);
    assert_int_equal(fb.levels[0], 5);
    assert_int_equal(fb.levels[1], 5);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_mqtt_311, et_test_mqtt_setup, et_test_mqtt_teardown),
        cmocka_unit_test_setup_teardown(test_falls_back_to_311, et_test_mqtt_setup_no_broker,
                                        et_test_mqtt_teardown),
        cmocka_unit_test_setup_teardown(test_mqtt5_only_refused, et_test_mqtt_setup_no_broker,
                                        et_test_mqtt_teardown),
    };

    et_log_init("test_mqtt_versions", getenv("ET_TEST_DEBUG") ? ET_LOG_DEBUG : ET_LOG_WARN);
    return cmocka_run_group_tests(tests, NULL, NULL);
}
