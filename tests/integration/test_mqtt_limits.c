/*
 * The MQTT seam's packet limit (struct et_mqtt_cfg.max_packet) against a
 * real mosquitto: a message larger than the limit never reaches the
 * seam's queue. Over MQTT 5 the broker is told the limit on CONNECT and
 * does not send larger packets at all (so they are not even read into
 * this process); over MQTT 3.1.1, which cannot say it, the seam drops
 * them before copying them, counts them and warns at most once a minute.
 */
#include "broker.h"
#include "mqtt_client.h"

#include "edgetel/log.h"
#include "edgetel/mqtt.h"

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#define LIMIT 200
#define TOPIC "edgetel/v1/dev-1/telemetry"

/* stderr into a file while a test runs: the seam's warnings are its evidence. */
static FILE *log_file;
static int saved_stderr = -1;

static int setup(void **state)
{
    fflush(stderr);
    saved_stderr = dup(2);
    log_file = tmpfile();
    assert_non_null(log_file);
    dup2(fileno(log_file), 2);
    return et_test_mqtt_setup(state);
}

static void copy_lines_with(const char *path, const char *needle, FILE *out)
{
    FILE *in = fopen(path, "r");
    char line[1024];

    if (!in)
        return;
    while (fgets(line, sizeof(line), in))
        if (strstr(line, needle))
            fputs(line, out);
    fclose(in);
}

static int teardown(void **state)
{
    struct et_test_mqtt *f = *state;
    char path[512];
    int rc;

    /* The broker's own word on what it dropped, beside the seam's. */
    snprintf(path, sizeof(path), "%s/mosquitto.log", et_test_broker_dir(f->broker));
    copy_lines_with(path, "PUBLISH", stderr);
    rc = et_test_mqtt_teardown(state);
    char line[1024];

    fflush(stderr);
    dup2(saved_stderr, 2);
    close(saved_stderr);
    /* Shown again, so a failure's log is not lost. */
    rewind(log_file);
    while (fgets(line, sizeof(line), log_file))
        fputs(line, stderr);
    fclose(log_file);
    return rc;
}

static int log_lines_with(const char *needle)
{
    char line[1024];
    int n = 0;

    fflush(stderr);
    rewind(log_file);
    while (fgets(line, sizeof(line), log_file))
        n += strstr(line, needle) != NULL;
    fseek(log_file, 0, SEEK_END);
    return n;
}

/* The aggregator's identity on protocol version (4 or 5) with the limit, and dev-1. */
static void open_pair(struct et_test_mqtt *f, int version)
{
    struct et_test_client *both[] = { &f->agg, &f->dev1 };
    struct et_test_identity id;
    struct et_mqtt_cfg cfg;

    assert_int_equal(et_test_broker_identity(f->broker, ET_TEST_AGGREGATOR, &id), 0);
    et_test_broker_mqtt_cfg(f->broker, &id, ET_TEST_AGGREGATOR, &cfg);
    cfg.mqtt_version = version;
    cfg.max_packet = LIMIT;
    et_test_client_open(f, &f->agg, "aggregator", ET_TEST_AGGREGATOR, &cfg);
    et_test_client_open(f, &f->dev1, "dev-1", "dev-1", NULL);
    assert_int_equal(et_mqtt_subscribe(f->agg.mqtt, "edgetel/v1/+/telemetry", 1), 0);
    assert_int_equal(et_mqtt_start(f->agg.mqtt), 0);
    assert_int_equal(et_mqtt_start(f->dev1.mqtt), 0);
    et_test_wait_for(both, 2, &f->agg, 0, ET_MQTT_CONNECTED, NULL, 0);
    et_test_wait_for(both, 2, &f->dev1, 0, ET_MQTT_CONNECTED, NULL, 0);
}

/* dev-1 publishes len bytes (QoS 1) and the broker acknowledges it. */
static void publish(struct et_test_mqtt *f, size_t len)
{
    struct et_test_client *both[] = { &f->agg, &f->dev1 };
    unsigned char *buf = malloc(len);
    int token;

    assert_non_null(buf);
    memset(buf, 0x5a, len);
    token = et_mqtt_publish(f->dev1.mqtt, TOPIC, buf, len, 1, false);
    free(buf);
    assert_true(token > 0);
    et_test_wait_for(both, 2, &f->dev1, 0, ET_MQTT_PUBLISHED, NULL, token);
}

/* Publish a small marker and wait for it: everything sent before it has come, or never will. */
static void expect_only(struct et_test_mqtt *f, size_t n_messages)
{
    struct et_test_client *both[] = { &f->agg, &f->dev1 };
    size_t from = f->agg.n;
    const struct et_test_record *r;

    publish(f, 7);
    /* Messages published before the marker may still be arriving: skip to
     * the marker itself (the wait is bounded, so is this loop). */
    for (;;) {
        r = et_test_wait_for(both, 2, &f->agg, from, ET_MQTT_MESSAGE, TOPIC, 0);
        if (r->len == 7)
            break;
        from = (size_t)(r - f->agg.rec) + 1;
    }
    assert_int_equal(et_test_count(&f->agg, 0, ET_MQTT_MESSAGE, TOPIC), n_messages);
    for (size_t i = 0; i < f->agg.n; i++)
        if (f->agg.rec[i].type == ET_MQTT_MESSAGE)
            assert_true(f->agg.rec[i].len <= LIMIT);
}

static void mqtt311_the_seam_drops_what_is_over_the_limit(void **state)
{
    struct et_test_mqtt *f = *state;

    open_pair(f, 4);
    publish(f, LIMIT + 1);
    publish(f, LIMIT);
    expect_only(f, 2);       /* LIMIT bytes, and the marker */
    assert_int_equal(log_lines_with("dropped a message of 201 bytes on " TOPIC ": over the "
                                    "200 byte limit (max_packet); 1 dropped so far"), 1);
    /* More of them: dropped, counted, not warned about again within the minute. */
    publish(f, 5000);
    publish(f, 200000);
    expect_only(f, 3);
    assert_int_equal(log_lines_with("dropped a message of"), 1);
}

static void mqtt5_the_broker_sends_nothing_over_the_limit(void **state)
{
    struct et_test_mqtt *f = *state;

    open_pair(f, 5);
    /* Over the limit and its room for headers: the broker drops it, so
     * this process never reads it and the seam has nothing to drop. */
    publish(f, LIMIT + ET_MQTT_HEADER_ROOM + 100);
    publish(f, 200000);
    expect_only(f, 1);
    assert_int_equal(log_lines_with("dropped a message of"), 0);
    /* Within the room for headers the broker sends it; the seam drops it. */
    publish(f, LIMIT + 1);
    expect_only(f, 2);
    assert_int_equal(log_lines_with("dropped a message of 201 bytes"), 1);
    /*
     * The shipped broker takes packets of up to 1 MiB from devices, more
     * than this client's limit: said, because mosquitto 2.0.11 keeps each
     * QoS 1 message it dropped for us in our in-flight window, and stops
     * sending to us after about twenty (found here: 25 of them and the
     * next message never came). The aggregator's default limit is above
     * the shipped broker's, so there the broker refuses them itself.
     */
    assert_int_equal(log_lines_with("takes packets of up to 1048576 bytes from its clients, "
                                    "this client at most 4296"), 1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(mqtt311_the_seam_drops_what_is_over_the_limit, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(mqtt5_the_broker_sends_nothing_over_the_limit, setup,
                                        teardown),
    };

    et_log_init("test_mqtt_limits", ET_LOG_INFO);
    return cmocka_run_group_tests(tests, NULL, NULL);
}
