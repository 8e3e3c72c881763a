/*
 * MQTT seam clients for tests against a real broker: see mqtt_client.h.
 */
#include "mqtt_client.h"

#include <errno.h>
#include <poll.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>

static const char *const devices[] = { "dev-1", "dev-2", NULL };

const char *et_test_event_name(enum et_mqtt_event_type t)
{
    switch (t) {
    case ET_MQTT_CONNECTED: return "CONNECTED";
    case ET_MQTT_DISCONNECTED: return "DISCONNECTED";
    case ET_MQTT_MESSAGE: return "MESSAGE";
    case ET_MQTT_PUBLISHED: return "PUBLISHED";
    case ET_MQTT_PUBLISH_FAILED: return "PUBLISH_FAILED";
    }
    return "?";
}

void et_test_on_event(void *ctx, const struct et_mqtt_event *ev)
{
    struct et_test_client *c = ctx;
    struct et_test_record *r;

    if (ev->reason)
        fprintf(stderr, "[%s] %s token %d: %s\n", c->name, et_test_event_name(ev->type), ev->token,
                ev->reason);
    assert_true(c->n < ET_TEST_MAX_RECORDS);
    r = &c->rec[c->n++];
    memset(r, 0, sizeof(*r));
    r->type = ev->type;
    r->token = ev->token;
    r->at_ms = et_test_now_ms();
    if (ev->type == ET_MQTT_MESSAGE) {
        assert_non_null(ev->topic);
        assert_true(ev->len <= sizeof(r->payload));
        snprintf(r->topic, sizeof(r->topic), "%s", ev->topic);
        if (ev->len)
            memcpy(r->payload, ev->payload, ev->len);
        r->len = ev->len;
    }
    if (ev->reason)
        snprintf(r->reason, sizeof(r->reason), "%s", ev->reason);
}

/* Poll every client's descriptor once (up to timeout_ms) and dispatch. */
void et_test_pump(struct et_test_client *const *cs, size_t n, int timeout_ms)
{
    struct pollfd pfd[8];

    assert_true(n <= 8);
    for (size_t i = 0; i < n; i++) {
        pfd[i].fd = et_mqtt_fd(cs[i]->mqtt);
        pfd[i].events = POLLIN;
        pfd[i].revents = 0;
    }
    assert_true(poll(pfd, n, timeout_ms) >= 0 || errno == EINTR);
    for (size_t i = 0; i < n; i++)
        if (pfd[i].revents & POLLIN)
            assert_true(et_mqtt_dispatch(cs[i]->mqtt, et_test_on_event, cs[i]) >= 0);
}

/* Index of the first record of c at or after *from matching, or -1. */
int et_test_find(const struct et_test_client *c, size_t from, enum et_mqtt_event_type type,
                const char *topic, int token)
{
    for (size_t i = from; i < c->n; i++) {
        const struct et_test_record *r = &c->rec[i];

        if (r->type != type)
            continue;
        if (topic && strcmp(r->topic, topic) != 0)
            continue;
        if (token && r->token != token)
            continue;
        return (int)i;
    }
    return -1;
}

size_t et_test_count(const struct et_test_client *c, size_t from, enum et_mqtt_event_type type,
                    const char *topic)
{
    size_t k = 0;

    for (size_t i = from; i < c->n; i++)
        if (c->rec[i].type == type && (!topic || strcmp(c->rec[i].topic, topic) == 0))
            k++;
    return k;
}

/* Wait (bounded) until `target` has a record matching, pumping all clients. */
const struct et_test_record *et_test_wait_for(struct et_test_client *const *cs, size_t n,
                                              struct et_test_client *target, size_t from, enum et_mqtt_event_type type,
                                     const char *topic, int token)
{
    int64_t deadline = et_test_now_ms() + ET_TEST_WAIT_MS;
    int i;

    while ((i = et_test_find(target, from, type, topic, token)) < 0) {
        int64_t left = deadline - et_test_now_ms();

        if (left <= 0) {
            fail_msg("%s: no %s%s%s within %d ms", target->name, et_test_event_name(type),
                     topic ? " on " : "", topic ? topic : "", ET_TEST_WAIT_MS);
        }
        et_test_pump(cs, n, (int)(left > 200 ? 200 : left));
    }
    return &target->rec[i];
}

void et_test_client_open(struct et_test_mqtt *f, struct et_test_client *c, const char *name,
                        const char *identity, const struct et_mqtt_cfg *override)
{
    struct et_test_identity id;
    struct et_mqtt_cfg cfg;

    c->name = name;
    c->n = 0;
    if (override) {
        cfg = *override;
    } else {
        assert_int_equal(et_test_broker_identity(f->broker, identity, &id), 0);
        et_test_broker_mqtt_cfg(f->broker, &id, name, &cfg);
    }
    assert_int_equal(et_mqtt_create(&c->mqtt, et_mqtt_paho(), &cfg), 0);
}

int et_test_mqtt_setup(void **state)
{
    struct et_test_mqtt *f = calloc(1, sizeof(*f));

    assert_non_null(f);
    assert_int_equal(et_test_broker_start(&f->broker, devices), 0);
    *state = f;
    return 0;
}

int et_test_mqtt_teardown(void **state)
{
    struct et_test_mqtt *f = *state;

    et_mqtt_destroy(f->agg.mqtt, 1000);
    et_mqtt_destroy(f->dev1.mqtt, 1000);
    et_mqtt_destroy(f->dev2.mqtt, 1000);
    et_test_broker_destroy(f->broker);
    free(f);
    return 0;
}

/* Connect agg and dev1 with the given subscriptions made before start. */
void et_test_connect_pair(struct et_test_mqtt *f, const char *agg_filter, const char *dev_filter)
{
    struct et_test_client *both[] = { &f->agg, &f->dev1 };

    et_test_client_open(f, &f->agg, "aggregator", ET_TEST_AGGREGATOR, NULL);
    et_test_client_open(f, &f->dev1, "dev-1", "dev-1", NULL);
    if (agg_filter)
        assert_int_equal(et_mqtt_subscribe(f->agg.mqtt, agg_filter, 1), 0);
    if (dev_filter)
        assert_int_equal(et_mqtt_subscribe(f->dev1.mqtt, dev_filter, 1), 0);
    assert_int_equal(et_mqtt_start(f->agg.mqtt), 0);
    assert_int_equal(et_mqtt_start(f->dev1.mqtt), 0);
    et_test_wait_for(both, 2, &f->agg, 0, ET_MQTT_CONNECTED, NULL, 0);
    et_test_wait_for(both, 2, &f->dev1, 0, ET_MQTT_CONNECTED, NULL, 0);
    assert_true(et_mqtt_connected(f->agg.mqtt));
    assert_true(et_mqtt_connected(f->dev1.mqtt));
}

int et_test_mqtt_setup_no_broker(void **state)
{
    struct et_test_mqtt *f = calloc(1, sizeof(*f));

    assert_non_null(f);
    *state = f;
    return 0;
}

