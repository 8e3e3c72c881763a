/*
 * The in-process fake broker (tests/fake/fake_mqtt.c), through the MQTT
 * seam as the agent uses it: a fake that routes wrongly would make every
 * test built on it prove nothing.
 *
 * What must hold: topic filters match as MQTT says; a publish reaches each
 * subscriber once and one member of a shared group, in turn; retained
 * messages come after CONNECTED and after a subscribe, not to shared
 * subscriptions; a will goes out on a drop or a takeover, never on a clean
 * destroy or a broker going down; the broker's down/up and refusals reach
 * the clients as the seam's events through a readable descriptor.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "edgetel/mqtt.h"
#include "fake_mqtt.h"

#define MAX_SEEN 64

struct seen {
    enum et_mqtt_event_type type;
    char topic[64];
    char payload[64];
    int token;
    char reason[128];
};

/* One client and what its handler was given. */
struct client {
    struct et_mqtt *mqtt;
    struct seen ev[MAX_SEEN];
    size_t n;
};

struct bench {
    struct et_fake_broker *broker;
    struct client c[4];
};

static void on_event(void *ctx, const struct et_mqtt_event *ev)
{
    struct client *c = ctx;
    struct seen *s;

    assert_true(c->n < MAX_SEEN);
    s = &c->ev[c->n++];
    memset(s, 0, sizeof(*s));
    s->type = ev->type;
    s->token = ev->token;
    if (ev->topic)
        snprintf(s->topic, sizeof(s->topic), "%s", ev->topic);
    if (ev->payload)
        snprintf(s->payload, sizeof(s->payload), "%.*s", (int)ev->len, (const char *)ev->payload);
    if (ev->reason)
        snprintf(s->reason, sizeof(s->reason), "%s", ev->reason);
}

static bool readable(const struct client *c)
{
    struct pollfd p = { .fd = et_mqtt_fd(c->mqtt), .events = POLLIN };

    return poll(&p, 1, 0) == 1 && (p.revents & POLLIN);
}

/* Dispatch what is queued; the descriptor must say so beforehand and be clear after. */
static size_t pump(struct client *c)
{
    size_t before = c->n;
    bool was_readable = readable(c);
    int n = et_mqtt_dispatch(c->mqtt, on_event, c);

    assert_int_equal(was_readable, n > 0);
    assert_false(readable(c));
    return c->n - before;
}

static void open_client(struct bench *b, struct client *c, const char *id, const char *will)
{
    struct et_mqtt_cfg cfg = et_fake_client_cfg(id);

    if (will) {
        cfg.will_topic = will;
        cfg.will_payload = "offline";
        cfg.will_len = 7;
        cfg.will_retain = true;
    }
    assert_int_equal(et_mqtt_create(&c->mqtt, et_fake_broker_transport(b->broker), &cfg), 0);
}

static int setup(void **state)
{
    struct bench *b = calloc(1, sizeof(*b));

    assert_non_null(b);
    assert_int_equal(et_fake_broker_create(&b->broker), 0);
    *state = b;
    return 0;
}

static int teardown(void **state)
{
    struct bench *b = *state;

    for (size_t i = 0; i < 4; i++)
        et_mqtt_destroy(b->c[i].mqtt, 0);
    et_fake_broker_destroy(b->broker);
    free(b);
    return 0;
}

/* Does c have a MESSAGE on topic with payload among its events from `from` on? */
static size_t count_msgs(const struct client *c, size_t from, const char *topic,
                         const char *payload)
{
    size_t n = 0;

    for (size_t i = from; i < c->n; i++)
        n += c->ev[i].type == ET_MQTT_MESSAGE && strcmp(c->ev[i].topic, topic) == 0 &&
             (!payload || strcmp(c->ev[i].payload, payload) == 0);
    return n;
}

/* ---- tests --------------------------------------------------------------------- */

static void topic_filters_match_as_mqtt_says(void **state)
{
    static const struct {
        const char *filter, *topic;
        bool match;
    } cases[] = {
        { "a/b/c", "a/b/c", true },   { "a/b/c", "a/b", false },    { "a/b", "a/b/c", false },
        { "a/+/c", "a/x/c", true },   { "a/+/c", "a/x/y/c", false }, { "a/+", "a/", true },
        { "+/+", "/x", true },        { "+", "a/b", false },        { "a/#", "a", true },
        { "a/#", "a/b/c", true },     { "#", "a/b", true },         { "a/#", "ab", false },
        { "ab", "a", false },         { "a", "ab", false },         { "#", "$SYS/x", false },
        { "+/x", "$SYS/x", false },   { "$SYS/#", "$SYS/x", true },
        { "edgetel/v1/+/telemetry", "edgetel/v1/dev-1/telemetry", true },
        { "edgetel/v1/+/telemetry", "edgetel/v1/dev-1/ack", false },
    };

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
        if (et_fake_topic_matches(cases[i].filter, cases[i].topic) != cases[i].match)
            fail_msg("filter \"%s\" topic \"%s\": expected %s", cases[i].filter, cases[i].topic,
                     cases[i].match ? "a match" : "no match");
}

static void publish_reaches_each_subscriber_once(void **state)
{
    struct bench *b = *state;
    struct client *dev = &b->c[0], *agg = &b->c[1], *other = &b->c[2];
    int token;

    open_client(b, dev, "dev-1", NULL);
    open_client(b, agg, "agg", NULL);
    open_client(b, other, "dev-2", NULL);
    assert_int_equal(et_mqtt_subscribe(agg->mqtt, "edgetel/v1/+/telemetry", 1), 0);
    assert_int_equal(et_mqtt_subscribe(agg->mqtt, "edgetel/#", 1), 0);   /* overlaps */
    assert_int_equal(et_mqtt_subscribe(other->mqtt, "edgetel/v1/dev-2/ack", 1), 0);
    assert_int_equal(et_mqtt_subscribe(other->mqtt, "a+b", 1), -EINVAL);
    assert_int_equal(et_mqtt_subscribe(other->mqtt, "a/#/b", 1), -EINVAL);
    assert_true(et_fake_client_subscribed(et_fake_broker_client(b->broker, "agg"), "edgetel/#"));
    assert_string_equal(et_fake_client_subscription(et_fake_broker_client(b->broker, "agg"), 0),
                        "edgetel/v1/+/telemetry");
    assert_null(et_fake_client_subscription(et_fake_broker_client(b->broker, "agg"), 2));
    assert_int_equal(et_mqtt_subscribe(agg->mqtt, "edgetel/#", 0), 0);     /* not twice */
    assert_null(et_fake_client_subscription(et_fake_broker_client(b->broker, "agg"), 2));

    assert_int_equal(et_mqtt_publish(dev->mqtt, "edgetel/v1/dev-1/telemetry", "x", 1, 1, false),
                     -ENOTCONN);
    for (size_t i = 0; i < 3; i++) {
        assert_int_equal(et_mqtt_start(b->c[i].mqtt), 0);
        assert_int_equal(pump(&b->c[i]), 1);
        assert_int_equal(b->c[i].ev[0].type, ET_MQTT_CONNECTED);
        assert_true(et_mqtt_connected(b->c[i].mqtt));
    }
    assert_int_equal(et_mqtt_start(dev->mqtt), -EALREADY);

    token = et_mqtt_publish(dev->mqtt, "edgetel/v1/dev-1/telemetry", "batch", 5, 1, false);
    assert_true(token > 0);
    assert_int_equal(pump(agg), 1);
    assert_int_equal(count_msgs(agg, 0, "edgetel/v1/dev-1/telemetry", "batch"), 1);
    assert_int_equal(pump(other), 0);
    assert_int_equal(pump(dev), 1);                 /* the broker's PUBACK */
    assert_int_equal(dev->ev[1].type, ET_MQTT_PUBLISHED);
    assert_int_equal(dev->ev[1].token, token);
    /* QoS 0 gets a token and no event. */
    assert_true(et_mqtt_publish(dev->mqtt, "edgetel/v1/dev-1/telemetry", "q0", 2, 0, false) > 0);
    assert_int_equal(pump(dev), 0);
    assert_int_equal(pump(agg), 1);

    /* Recorded, in order, with who sent it. */
    assert_int_equal(et_fake_broker_n_published(b->broker), 2);
    const struct et_fake_message *m = et_fake_broker_published(b->broker, 0);

    assert_string_equal(m->client_id, "dev-1");
    assert_string_equal(m->topic, "edgetel/v1/dev-1/telemetry");
    assert_int_equal(m->len, 5);
    assert_memory_equal(m->payload, "batch", 5);
    assert_int_equal(m->qos, 1);
    assert_false(m->retain);
    assert_null(et_fake_broker_published(b->broker, 2));
}

static void own_publishes_come_back_on_the_callers_thread(void **state)
{
    struct bench *b = *state;
    struct client *c = &b->c[0];

    open_client(b, c, "loop", NULL);
    assert_int_equal(et_mqtt_subscribe(c->mqtt, "echo/#", 1), 0);
    assert_int_equal(et_mqtt_start(c->mqtt), 0);
    assert_true(et_mqtt_publish(c->mqtt, "echo/1", "hi", 2, 1, false) > 0);
    /* CONNECTED, the message and the PUBACK, all by the time dispatch returns. */
    assert_int_equal(pump(c), 3);
    assert_int_equal(count_msgs(c, 0, "echo/1", "hi"), 1);
    assert_int_equal(et_fake_client_queued(et_fake_broker_client(b->broker, "loop")), 0);
}

/* Publishes again from inside its handler, once per message it gets. */
static void on_event_echo(void *ctx, const struct et_mqtt_event *ev)
{
    struct client *c = ctx;

    on_event(ctx, ev);
    if (ev->type == ET_MQTT_MESSAGE && c->n < 4)
        assert_true(et_mqtt_publish(c->mqtt, "echo/again", "x", 1, 0, false) > 0);
}

static void what_a_handler_causes_waits_for_the_next_dispatch(void **state)
{
    struct bench *b = *state;
    struct client *c = &b->c[0];

    open_client(b, c, "echo", NULL);
    assert_int_equal(et_mqtt_subscribe(c->mqtt, "echo/#", 1), 0);
    assert_int_equal(et_mqtt_start(c->mqtt), 0);
    assert_int_equal(et_fake_broker_publish(b->broker, "echo/first", "1", 1, false), 0);
    assert_int_equal(et_mqtt_dispatch(c->mqtt, on_event_echo, c), 2);   /* CONNECTED, first */
    assert_true(readable(c));                       /* the echo is queued, not yet run */
    assert_int_equal(et_mqtt_dispatch(c->mqtt, on_event_echo, c), 1);
    assert_string_equal(c->ev[2].topic, "echo/again");
    assert_int_equal(et_mqtt_dispatch(c->mqtt, on_event_echo, c), 1);
    assert_int_equal(et_mqtt_dispatch(c->mqtt, on_event_echo, c), 0);
    assert_false(readable(c));
}

static void shared_subscription_delivers_to_one_member_in_turn(void **state)
{
    struct bench *b = *state;
    struct client *dev = &b->c[0], *a1 = &b->c[1], *a2 = &b->c[2], *plain = &b->c[3];
    char payload[8];

    open_client(b, dev, "dev-1", NULL);
    open_client(b, a1, "agg-1", NULL);
    open_client(b, a2, "agg-2", NULL);
    open_client(b, plain, "watcher", NULL);
    assert_int_equal(et_mqtt_subscribe(a1->mqtt, "$share/edgetel/edgetel/v1/+/telemetry", 1), 0);
    assert_int_equal(et_mqtt_subscribe(a2->mqtt, "$share/edgetel/edgetel/v1/+/telemetry", 1), 0);
    assert_int_equal(et_mqtt_subscribe(a2->mqtt, "$share//x", 1), -EINVAL);
    assert_int_equal(et_mqtt_subscribe(plain->mqtt, "edgetel/v1/+/telemetry", 1), 0);
    for (size_t i = 0; i < 4; i++) {
        assert_int_equal(et_mqtt_start(b->c[i].mqtt), 0);
        pump(&b->c[i]);
    }
    for (int i = 0; i < 6; i++) {
        snprintf(payload, sizeof(payload), "%d", i);
        assert_true(et_mqtt_publish(dev->mqtt, "edgetel/v1/dev-1/telemetry", payload,
                                    strlen(payload), 1, false) > 0);
    }
    assert_int_equal(pump(a1), 3);
    assert_int_equal(pump(a2), 3);
    assert_int_equal(pump(plain), 6);               /* a plain subscriber sees them all */
    /* In turn: 0, 2, 4 to the first member, 1, 3, 5 to the second. */
    for (int i = 0; i < 3; i++) {
        snprintf(payload, sizeof(payload), "%d", 2 * i);
        assert_string_equal(a1->ev[1 + i].payload, payload);
        snprintf(payload, sizeof(payload), "%d", 2 * i + 1);
        assert_string_equal(a2->ev[1 + i].payload, payload);
    }

    /* A member that is down gets nothing; the other takes all. */
    et_fake_client_drop(et_fake_broker_client(b->broker, "agg-2"));
    pump(a2);
    for (int i = 0; i < 2; i++)
        assert_true(et_mqtt_publish(dev->mqtt, "edgetel/v1/dev-1/telemetry", "y", 1, 1,
                                    false) > 0);
    assert_int_equal(pump(a1), 2);
    assert_int_equal(pump(a2), 0);
}

static void retained_messages_after_connect_and_subscribe_not_shared(void **state)
{
    struct bench *b = *state;
    struct client *dev = &b->c[0], *agg = &b->c[1], *shared = &b->c[2];

    open_client(b, dev, "dev-1", NULL);
    assert_int_equal(et_mqtt_start(dev->mqtt), 0);
    pump(dev);
    assert_true(et_mqtt_publish(dev->mqtt, "edgetel/v1/dev-1/status", "v1", 2, 1, true) > 0);
    assert_true(et_mqtt_publish(dev->mqtt, "edgetel/v1/dev-1/status", "v2", 2, 1, true) > 0);
    assert_int_equal(et_fake_broker_publish(b->broker, "edgetel/v1/dev-9/status", "gone", 4,
                                            true), 0);
    assert_int_equal(et_fake_broker_publish(b->broker, "edgetel/v1/+/status", "x", 1, true),
                     -EINVAL);
    assert_string_equal(et_fake_broker_retained(b->broker, "edgetel/v1/dev-1/status")->payload,
                        "v2");
    assert_null(et_fake_broker_published(b->broker, 2)->client_id);

    /* Subscribed before connecting: the latest retained of each topic after CONNECTED. */
    open_client(b, agg, "agg", NULL);
    assert_int_equal(et_mqtt_subscribe(agg->mqtt, "edgetel/v1/+/status", 1), 0);
    assert_int_equal(et_mqtt_start(agg->mqtt), 0);
    assert_int_equal(pump(agg), 3);
    assert_int_equal(agg->ev[0].type, ET_MQTT_CONNECTED);
    assert_int_equal(count_msgs(agg, 1, "edgetel/v1/dev-1/status", "v2"), 1);
    assert_int_equal(count_msgs(agg, 1, "edgetel/v1/dev-9/status", "gone"), 1);

    /* An empty retained payload deletes; a later subscriber gets only the rest. */
    assert_int_equal(et_fake_broker_publish(b->broker, "edgetel/v1/dev-9/status", NULL, 0, true),
                     0);
    assert_null(et_fake_broker_retained(b->broker, "edgetel/v1/dev-9/status"));
    pump(agg);
    open_client(b, shared, "agg-2", NULL);
    assert_int_equal(et_mqtt_start(shared->mqtt), 0);
    pump(shared);
    assert_int_equal(et_mqtt_subscribe(shared->mqtt, "$share/g/edgetel/v1/+/status", 1), 0);
    assert_int_equal(pump(shared), 0);              /* never to a shared subscription */
    assert_int_equal(et_mqtt_subscribe(shared->mqtt, "edgetel/v1/dev-1/status", 1), 0);
    assert_int_equal(pump(shared), 1);              /* at once, while connected */
    assert_int_equal(count_msgs(shared, 0, "edgetel/v1/dev-1/status", "v2"), 1);
}

static void will_on_drop_and_takeover_not_on_destroy_or_broker_down(void **state)
{
    struct bench *b = *state;
    struct client *dev = &b->c[0], *agg = &b->c[1], *twin = &b->c[2];
    const struct et_fake_message *will;

    open_client(b, dev, "dev-1", "edgetel/v1/dev-1/status");
    open_client(b, agg, "agg", NULL);
    will = et_fake_client_will(et_fake_broker_client(b->broker, "dev-1"));
    assert_non_null(will);
    assert_string_equal(will->topic, "edgetel/v1/dev-1/status");
    assert_true(will->retain);
    assert_null(et_fake_client_will(et_fake_broker_client(b->broker, "agg")));
    assert_int_equal(et_mqtt_subscribe(agg->mqtt, "edgetel/v1/+/status", 1), 0);
    assert_int_equal(et_mqtt_start(dev->mqtt), 0);
    assert_int_equal(et_mqtt_start(agg->mqtt), 0);
    pump(dev);
    pump(agg);

    /* The broker going down sends no will, and neither does it coming back. */
    et_fake_broker_set_up(b->broker, false);
    assert_false(et_fake_broker_is_up(b->broker));
    assert_int_equal(pump(dev), 1);
    assert_int_equal(dev->ev[dev->n - 1].type, ET_MQTT_DISCONNECTED);
    assert_non_null(strstr(dev->ev[dev->n - 1].reason, "broker down"));
    assert_false(et_mqtt_connected(dev->mqtt));
    assert_int_equal(et_mqtt_publish(dev->mqtt, "edgetel/v1/dev-1/telemetry", "x", 1, 1, false),
                     -ENOTCONN);
    et_fake_broker_set_up(b->broker, true);
    assert_int_equal(pump(dev), 1);
    assert_int_equal(dev->ev[dev->n - 1].type, ET_MQTT_CONNECTED);
    pump(agg);
    assert_int_equal(et_fake_broker_n_published(b->broker), 0);

    /* An unclean drop: the will, retained, to the subscriber. */
    et_fake_client_drop(et_fake_broker_client(b->broker, "dev-1"));
    assert_int_equal(pump(dev), 1);
    assert_int_equal(dev->ev[dev->n - 1].type, ET_MQTT_DISCONNECTED);
    assert_int_equal(pump(agg), 1);
    assert_int_equal(count_msgs(agg, 0, "edgetel/v1/dev-1/status", "offline"), 1);
    assert_true(et_fake_broker_published(b->broker, 0)->will);
    assert_non_null(et_fake_broker_retained(b->broker, "edgetel/v1/dev-1/status"));
    et_fake_broker_set_up(b->broker, true);         /* it comes back */
    assert_true(et_mqtt_connected(dev->mqtt));
    pump(dev);

    /* A second client with the same id takes the session over: the first's will goes out. */
    open_client(b, twin, "dev-1", "edgetel/v1/dev-1/status");
    assert_int_equal(et_mqtt_start(twin->mqtt), 0);
    assert_false(et_mqtt_connected(dev->mqtt));
    assert_int_equal(pump(dev), 1);
    assert_non_null(strstr(dev->ev[dev->n - 1].reason, "taken over"));
    assert_int_equal(et_fake_broker_n_published(b->broker), 2);
    pump(agg);

    /* A clean destroy sends nothing. */
    et_mqtt_destroy(twin->mqtt, 0);
    twin->mqtt = NULL;
    et_mqtt_destroy(dev->mqtt, 0);
    dev->mqtt = NULL;
    assert_null(et_fake_broker_client(b->broker, "dev-1"));
    assert_int_equal(et_fake_broker_n_published(b->broker), 2);
    assert_int_equal(pump(agg), 0);
}

static void start_while_down_says_so_and_connects_when_up(void **state)
{
    struct bench *b = *state;
    struct client *c = &b->c[0];

    et_fake_broker_set_up(b->broker, false);
    open_client(b, c, "late", NULL);
    assert_false(et_fake_client_started(et_fake_broker_client(b->broker, "late")));
    assert_int_equal(et_mqtt_start(c->mqtt), 0);
    assert_true(et_fake_client_started(et_fake_broker_client(b->broker, "late")));
    assert_int_equal(pump(c), 1);
    assert_int_equal(c->ev[0].type, ET_MQTT_DISCONNECTED);
    assert_true(c->ev[0].reason[0] != '\0');
    assert_int_equal(et_fake_broker_publish(b->broker, "t", "x", 1, false), -ENOTCONN);
    et_fake_broker_set_up(b->broker, true);
    assert_int_equal(pump(c), 1);
    assert_int_equal(c->ev[1].type, ET_MQTT_CONNECTED);
    assert_true(et_fake_client_connected(et_fake_broker_client(b->broker, "late")));
}

static void refused_publishes_fail_with_a_reason_and_go_nowhere(void **state)
{
    struct bench *b = *state;
    struct client *dev = &b->c[0], *agg = &b->c[1];
    int t1, t2;

    open_client(b, dev, "dev-1", NULL);
    open_client(b, agg, "agg", NULL);
    assert_int_equal(et_mqtt_subscribe(agg->mqtt, "#", 1), 0);
    assert_int_equal(et_mqtt_start(dev->mqtt), 0);
    assert_int_equal(et_mqtt_start(agg->mqtt), 0);
    pump(dev);
    pump(agg);
    et_fake_broker_fail_publishes(b->broker, true);
    t1 = et_mqtt_publish(dev->mqtt, "edgetel/v1/dev-1/telemetry", "x", 1, 1, false);
    assert_true(t1 > 0);
    assert_true(et_mqtt_publish(dev->mqtt, "edgetel/v1/dev-1/telemetry", "q0", 2, 0, false) > 0);
    assert_int_equal(pump(dev), 1);
    assert_int_equal(dev->ev[1].type, ET_MQTT_PUBLISH_FAILED);
    assert_int_equal(dev->ev[1].token, t1);
    assert_string_equal(dev->ev[1].reason, "broker refused publish: 0x87 Not authorized");
    assert_int_equal(pump(agg), 0);
    assert_int_equal(et_fake_broker_n_published(b->broker), 0);

    et_fake_broker_fail_publishes(b->broker, false);
    t2 = et_mqtt_publish(dev->mqtt, "edgetel/v1/dev-1/telemetry", "y", 1, 1, false);
    assert_true(t2 > t1 + 1);                        /* tokens never repeat */
    assert_int_equal(pump(agg), 1);
}

static void injected_messages_and_a_full_queue(void **state)
{
    struct bench *b = *state;
    struct client *c = &b->c[0];
    struct et_fake_client *fc;

    open_client(b, c, "dev-1", NULL);
    fc = et_fake_broker_client(b->broker, "dev-1");
    /* Injected whether or not it subscribed or is connected. */
    assert_int_equal(et_fake_client_inject(fc, "anything/at/all", "\xff\x01", 2), 0);
    assert_int_equal(et_fake_client_queued(fc), 1);
    assert_int_equal(pump(c), 1);
    assert_int_equal(c->ev[0].type, ET_MQTT_MESSAGE);
    assert_string_equal(c->ev[0].topic, "anything/at/all");

    for (size_t i = 0; i < ET_FAKE_QUEUE_MAX + 5; i++)
        et_fake_client_inject(fc, "t", "x", 1);
    assert_int_equal(et_fake_client_queued(fc), ET_FAKE_QUEUE_MAX);
    assert_int_equal(et_fake_client_dropped(fc), 5);
    assert_int_equal(et_mqtt_dispatch(c->mqtt, NULL, NULL), ET_FAKE_QUEUE_MAX);
    assert_int_equal(et_fake_client_queued(fc), 0);
}

static void clients_outlive_their_broker(void **state)
{
    struct bench *b = *state;
    struct client *c = &b->c[0];

    open_client(b, c, "orphan", NULL);
    assert_int_equal(et_mqtt_start(c->mqtt), 0);
    pump(c);
    et_fake_broker_destroy(b->broker);
    b->broker = NULL;
    assert_false(et_mqtt_connected(c->mqtt));
    assert_int_equal(et_mqtt_publish(c->mqtt, "t", "x", 1, 1, false), -ENOTCONN);
    assert_int_equal(et_mqtt_subscribe(c->mqtt, "t", 1), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(topic_filters_match_as_mqtt_says),
        cmocka_unit_test_setup_teardown(publish_reaches_each_subscriber_once, setup, teardown),
        cmocka_unit_test_setup_teardown(own_publishes_come_back_on_the_callers_thread,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(what_a_handler_causes_waits_for_the_next_dispatch, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(shared_subscription_delivers_to_one_member_in_turn, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(retained_messages_after_connect_and_subscribe_not_shared,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(will_on_drop_and_takeover_not_on_destroy_or_broker_down,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(start_while_down_says_so_and_connects_when_up, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(refused_publishes_fail_with_a_reason_and_go_nowhere, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(injected_messages_and_a_full_queue, setup, teardown),
        cmocka_unit_test_setup_teardown(clients_outlive_their_broker, setup, teardown),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
