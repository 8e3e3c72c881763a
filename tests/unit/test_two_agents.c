/*
 * Two agents (two devices) in one process against one fake broker, with a
 * fake aggregator in the same process: what the MQTT seam as an operations
 * struct handed in at creation makes possible. One fake clock, one broker
 * (tests/fake/fake_mqtt.h); each agent on the agent bench (agent_bench.h)
 * with its own data directory; the aggregator is a client of the same
 * broker that decodes each batch, keeps what it has per device, as a store
 * would, and answers on the device's own ack topic.
 *
 * What must hold: both devices' batches arrive, each on its own topic with
 * its own id and its own seqs from 1 with no gap, its own counter values
 * from 0; an ack for one device never deletes the other's rows, even when
 * misrouted onto the other's ack topic; both outboxes empty once acked;
 * each device's status (birth, will, clean stop) is retained on its own
 * topic and leaves the other's alone; two aggregator instances in a shared
 * subscription split the load and still empty both outboxes.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "agent_bench.h"
#include "edgetel/agent.h"
#include "edgetel/codec.h"
#include "edgetel/mqtt.h"
#include "et_fake.h"
#include "fake_mqtt.h"

#define MAX_SEQ 1024
#define N_DEVICES 2

/* What the aggregators have stored of one device. */
struct device_log {
    const char *device;
    bool acking;                    /* the aggregator answers this device */
    bool stored[MAX_SEQ + 1];       /* by seq */
    int64_t first_counter[MAX_SEQ + 1];     /* the batch's first sim.counter value */
    size_t n_counters[MAX_SEQ + 1];
    uint64_t through;               /* every seq up to here is stored */
    uint64_t max_seq;
    size_t deliveries;              /* batches received, repeats included */
    size_t statuses;
    bool online;
    char reason[128];
    uint8_t stream[ET_STREAM_ID_LEN];   /* the device's, from its batches */
    struct et_wire_reader *reader;  /* the device's dictionaries, as the store keeps them */
    size_t dict_asked;              /* batches answered with "send the dictionary" */
};

/* One aggregator instance: a client of the broker, sharing the store. */
struct aggregator {
    struct et_mqtt *mqtt;
    struct device_log *store;       /* N_DEVICES of them */
    size_t received;
};

struct world {
    struct et_fake_broker *broker;
    struct device_log store[N_DEVICES];
    struct aggregator agg[2];
    size_t n_agg;
    struct bench dev[N_DEVICES];
};

static const char *const devices[N_DEVICES] = { "dev-a", "dev-b" };

static struct device_log *log_of(struct aggregator *a, const char *device)
{
    for (size_t i = 0; i < N_DEVICES; i++)
        if (strcmp(a->store[i].device, device) == 0)
            return &a->store[i];
    fail_msg("message for unknown device \"%s\"", device);
    return NULL;
}

/* Store a batch (dedupe by seq) and, if acking this device, ack it on its own topic. */
static void take_batch(struct aggregator *a, struct device_log *log, const char *device,
                       const struct et_mqtt_event *ev)
{
    Edgetel__V1__Batch *d;
    char err[160], topic[96];
    uint8_t *ack;
    size_t len;
    uint64_t seq;

    if (et_wire_decode_batch(ev->payload, ev->len, &d, err, sizeof(err)) != 0)
        fail_msg("batch on %s does not decode: %s", ev->topic, err);
    /* On its own topic; an id, when it names one, its own. */
    assert_true(d->device_id[0] == '\0' || strcmp(d->device_id, device) == 0);
    assert_int_equal(d->stream_id.len, ET_STREAM_ID_LEN);   /* one stream a device */
    memcpy(log->stream, d->stream_id.data, ET_STREAM_ID_LEN);
    seq = d->seq;
    assert_in_range(seq, 1, MAX_SEQ);
    if (!log->stored[seq]) {
        struct et_wire_named *s;
        size_t n;
        int rc;

        if (!log->reader)
            assert_int_equal(et_wire_reader_create(&log->reader), 0);
        rc = et_wire_read(log->reader, ev->payload, ev->len, &s, &n, err, sizeof(err));
        if (rc == -ENOKEY) {
            /* As the aggregator does: not stored, the dictionary asked for. */
            uint64_t dict_id = d->dict_id;

            et_wire_free_batch(d);
            log->dict_asked++;
            log->deliveries++;
            a->received++;
            assert_int_equal(et_wire_encode_ack_dict(device, log->stream, log->through, dict_id,
                                                     seq, &ack, &len), 0);
            snprintf(topic, sizeof(topic), "edgetel/v1/%s/ack", device);
            assert_true(et_mqtt_publish(a->mqtt, topic, ack, len, 1, false) > 0);
            free(ack);
            return;
        }
        assert_int_equal(rc, 0);
        log->stored[seq] = true;
        log->first_counter[seq] = -1;
        for (size_t i = 0; i < n; i++) {
            if (strcmp(s[i].name, "sim.counter") != 0)
                continue;
            if (log->n_counters[seq]++ == 0)
                log->first_counter[seq] = s[i].s.u.i64;
        }
        free(s);
    }
    et_wire_free_batch(d);
    log->deliveries++;
    a->received++;
    log->max_seq = seq > log->max_seq ? seq : log->max_seq;
    while (log->through < MAX_SEQ && log->stored[log->through + 1])
        log->through++;
    if (!log->acking)
        return;
    assert_int_equal(et_wire_encode_ack(device, log->stream, log->through, &seq, 1, &ack, &len), 0);
    snprintf(topic, sizeof(topic), "edgetel/v1/%s/ack", device);
    assert_true(et_mqtt_publish(a->mqtt, topic, ack, len, 1, false) > 0);
    free(ack);
}

static void take_status(struct device_log *log, const char *device,
                        const struct et_mqtt_event *ev)
{
    Edgetel__V1__Status *st;
    char err[160];

    if (et_wire_decode_status(ev->payload, ev->len, &st, err, sizeof(err)) != 0)
        fail_msg("status on %s does not decode: %s", ev->topic, err);
    assert_string_equal(st->device_id, device);
    log->online = st->online;
    snprintf(log->reason, sizeof(log->reason), "%s", st->reason ? st->reason : "");
    log->statuses++;
    edgetel__v1__status__free_unpacked(st, NULL);
}

static void on_aggregator_event(void *ctx, const struct et_mqtt_event *ev)
{
    struct aggregator *a = ctx;
    char device[32], kind[16];

    if (ev->type != ET_MQTT_MESSAGE)
        return;
    if (sscanf(ev->topic, "edgetel/v1/%31[^/]/%15s", device, kind) != 2)
        fail_msg("aggregator got a message on %s", ev->topic);
    if (strcmp(kind, "telemetry") == 0)
        take_batch(a, log_of(a, device), device, ev);
    else if (strcmp(kind, "status") == 0)
        take_status(log_of(a, device), device, ev);
    else
        fail_msg("aggregator got a message on %s", ev->topic);
}

static void add_aggregator(struct world *w, const char *id, const char *telemetry_filter)
{
    struct aggregator *a = &w->agg[w->n_agg++];
    struct et_mqtt_cfg cfg = et_fake_client_cfg(id);

    a->store = w->store;
    assert_int_equal(et_mqtt_create(&a->mqtt, et_fake_broker_transport(w->broker), &cfg), 0);
    assert_int_equal(et_mqtt_subscribe(a->mqtt, telemetry_filter, 1), 0);
    assert_int_equal(et_mqtt_subscribe(a->mqtt, "edgetel/v1/+/status", 1), 0);
    assert_int_equal(et_mqtt_start(a->mqtt), 0);
    assert_true(et_mqtt_connected(a->mqtt));
}

static int setup(void **state)
{
    struct world *w = calloc(1, sizeof(*w));

    assert_non_null(w);
    et_fake_reset();
    et_fake_time_set(1000000, TRUE_WALL0, true);
    assert_int_equal(et_fake_broker_create(&w->broker), 0);     /* up */
    for (size_t i = 0; i < N_DEVICES; i++) {
        w->store[i].device = devices[i];
        w->store[i].acking = true;
        bench_init(&w->dev[i], devices[i], w->broker);
    }
    *state = w;
    return 0;
}

static int teardown(void **state)
{
    struct world *w = *state;

    for (size_t i = 0; i < N_DEVICES; i++)
        bench_fini(&w->dev[i]);
    for (size_t i = 0; i < w->n_agg; i++)
        et_mqtt_destroy(w->agg[i].mqtt, 0);
    et_fake_broker_destroy(w->broker);
    for (size_t i = 0; i < N_DEVICES; i++)
        et_wire_reader_destroy(w->store[i].reader);
    free(w);
    return 0;
}

/* Every aggregator handles what it has; each agent runs one pass of its loop. */
static void one_pass(struct world *w)
{
    for (size_t i = 0; i < w->n_agg; i++)
        assert_true(et_mqtt_dispatch(w->agg[i].mqtt, on_aggregator_event, &w->agg[i]) >= 0);
    for (size_t i = 0; i < N_DEVICES; i++)
        if (w->dev[i].agent)
            assert_int_equal(et_agent_step(w->dev[i].agent, w->dev[i].stop[0], 0), 0);
}

/* Advance the one clock by ms in 50 ms steps, running everything at each. */
static void run_for(struct world *w, int64_t ms)
{
    for (int64_t t = 0; t < ms; t += 50) {
        et_fake_time_advance(50);
        one_pass(w);
    }
}

/* Without time passing no batch is made: let the acks in flight land. */
static void settle(struct world *w)
{
    for (int i = 0; i < 10; i++)
        one_pass(w);
}

/* Every seq from 1 to the last is stored, and the counter values run on from 0. */
static void assert_complete(const struct device_log *log, uint64_t at_least)
{
    int64_t next = 0;

    assert_true(log->max_seq >= at_least);
    assert_int_equal(log->through, log->max_seq);
    for (uint64_t seq = 1; seq <= log->through; seq++) {
        if (log->n_counters[seq] == 0)
            continue;
        if (log->first_counter[seq] != next)
            fail_msg("%s batch %llu starts at counter %lld, expected %lld", log->device,
                     (unsigned long long)seq, (long long)log->first_counter[seq],
                     (long long)next);
        next += (int64_t)log->n_counters[seq];
    }
    assert_true(next >= (int64_t)at_least);
}

static void both_send_and_each_takes_only_its_own_acks(void **state)
{
    struct world *w = *state;
    struct bench *a = &w->dev[0], *b = &w->dev[1];
    uint64_t b_waiting;
    uint8_t *ack;
    size_t len;

    add_aggregator(w, "aggregator", "edgetel/v1/+/telemetry");
    bench_start(a, NULL);
    bench_start(b, NULL);

    /* For three seconds the aggregator answers dev-a only. */
    w->store[1].acking = false;
    run_for(w, 3000);
    settle(w);
    assert_int_equal(bench_outbox_batches(a), 0);
    b_waiting = bench_outbox_batches(b);
    assert_true(b_waiting >= 10);           /* dev-a's acks took none of dev-b's rows */
    assert_true(w->store[0].through >= 14);
    assert_true(w->store[1].max_seq >= 4);  /* dev-b sent; nobody answered */

    /* An ack naming dev-a that lands on dev-b's topic deletes nothing there,
     * even in dev-b's stream. */
    assert_int_equal(et_wire_encode_ack("dev-a", w->store[1].stream, 1000, NULL, 0, &ack, &len),
                     0);
    assert_true(et_mqtt_publish(w->agg[0].mqtt, "edgetel/v1/dev-b/ack", ack, len, 1, false) > 0);
    free(ack);
    settle(w);
    assert_true(bench_outbox_batches(b) >= b_waiting);

    /* Now dev-b is answered too: both outboxes empty, nothing missing. */
    w->store[1].acking = true;
    run_for(w, 3000);
    settle(w);
    assert_int_equal(bench_outbox_batches(a), 0);
    assert_int_equal(bench_outbox_batches(b), 0);
    assert_complete(&w->store[0], 29);
    assert_complete(&w->store[1], 29);
    /* Each device counted its own seqs from 1: both streams reached about the same seq. */
    assert_true(w->store[0].max_seq <= w->store[1].max_seq + 1 &&
                w->store[1].max_seq <= w->store[0].max_seq + 1);
}

/*
 * After a broker restart the agents may be back before any aggregator has
 * subscribed again: the broker takes their first window and gives it to
 * nobody. With Acks coming in milliseconds before the restart, those
 * batches must go again within a few seconds (the resend timer follows the
 * round trips), not after ack_timeout (here 30 s).
 */
static void a_window_lost_at_a_broker_restart_goes_again_within_seconds(void **state)
{
    struct world *w = *state;
    struct bench *a = &w->dev[0], *b = &w->dev[1];

    a->ack_timeout = b->ack_timeout = "30s";
    add_aggregator(w, "aggregator", "edgetel/v1/+/telemetry");
    bench_start(a, NULL);
    bench_start(b, NULL);
    run_for(w, 2000);                       /* round trips measured */
    settle(w);
    assert_int_equal(bench_outbox_batches(a), 0);

    /* The broker restarts; the aggregator is back a second after the agents. */
    et_mqtt_destroy(w->agg[0].mqtt, 0);
    w->n_agg = 0;
    et_fake_broker_set_up(w->broker, false);
    run_for(w, 500);
    et_fake_broker_set_up(w->broker, true);
    run_for(w, 1000);                       /* the agents' windows go to nobody */
    assert_true(bench_outbox_batches(a) >= 3);
    add_aggregator(w, "aggregator", "edgetel/v1/+/telemetry");
    run_for(w, 4000);
    settle(w);
    /* Everything made so far is stored and acknowledged, long before 30 s. */
    assert_int_equal(bench_outbox_batches(a), 0);
    assert_int_equal(bench_outbox_batches(b), 0);
    assert_complete(&w->store[0], 30);
    assert_complete(&w->store[1], 30);
}

static void status_topics_are_per_device(void **state)
{
    struct world *w = *state;
    struct bench *a = &w->dev[0], *b = &w->dev[1];
    const struct et_fake_message *ra, *rb;
    Edgetel__V1__Status *st;
    struct aggregator *late;
    char err[160];

    add_aggregator(w, "aggregator", "edgetel/v1/+/telemetry");
    bench_start(a, NULL);
    bench_start(b, NULL);
    run_for(w, 500);
    /* Each birth on its own topic. */
    assert_true(w->store[0].online && w->store[1].online);
    ra = et_fake_broker_retained(w->broker, "edgetel/v1/dev-a/status");
    rb = et_fake_broker_retained(w->broker, "edgetel/v1/dev-b/status");
    assert_non_null(ra);
    assert_non_null(rb);
    assert_string_equal(ra->client_id, "dev-a");
    assert_string_equal(rb->client_id, "dev-b");

    /* dev-b's connection breaks: its will, on its topic; dev-a stays online. */
    et_fake_client_drop(bench_client(b));
    one_pass(w);
    assert_false(w->store[1].online);
    assert_string_equal(w->store[1].reason, "connection lost (last will)");
    assert_true(w->store[0].online);
    rb = et_fake_broker_retained(w->broker, "edgetel/v1/dev-b/status");
    assert_true(rb->will);
    assert_string_equal(et_fake_broker_retained(w->broker, "edgetel/v1/dev-a/status")->client_id,
                        "dev-a");
    assert_false(et_fake_broker_retained(w->broker, "edgetel/v1/dev-a/status")->will);

    /* dev-a stops cleanly: its own offline status; dev-b's will stays as it was. */
    bench_stop(a);
    one_pass(w);
    assert_false(w->store[0].online);
    assert_string_equal(w->store[0].reason, "agent stopped");
    assert_true(et_fake_broker_retained(w->broker, "edgetel/v1/dev-b/status") == rb);
    ra = et_fake_broker_retained(w->broker, "edgetel/v1/dev-a/status");
    assert_int_equal(et_wire_decode_status(ra->payload, ra->len, &st, err, sizeof(err)), 0);
    assert_string_equal(st->device_id, "dev-a");
    assert_false(st->online);
    edgetel__v1__status__free_unpacked(st, NULL);

    /* An aggregator that starts now learns both from the retained messages. */
    for (size_t i = 0; i < N_DEVICES; i++)
        et_wire_reader_destroy(w->store[i].reader);
    memset(w->store, 0, sizeof(w->store));
    for (size_t i = 0; i < N_DEVICES; i++)
        w->store[i].device = devices[i];
    add_aggregator(w, "aggregator-late", "edgetel/v1/+/telemetry");
    late = &w->agg[1];
    assert_int_equal(et_mqtt_dispatch(late->mqtt, on_aggregator_event, late), 3);
    assert_int_equal(w->store[0].statuses, 1);
    assert_int_equal(w->store[1].statuses, 1);
    assert_string_equal(w->store[0].reason, "agent stopped");
    assert_string_equal(w->store[1].reason, "connection lost (last will)");
}

static void two_aggregators_in_a_shared_group_split_the_load(void **state)
{
    struct world *w = *state;

    add_aggregator(w, "aggregator-1", "$share/edgetel/edgetel/v1/+/telemetry");
    add_aggregator(w, "aggregator-2", "$share/edgetel/edgetel/v1/+/telemetry");
    bench_start(&w->dev[0], NULL);
    bench_start(&w->dev[1], NULL);
    run_for(w, 3000);
    settle(w);
    assert_int_equal(bench_outbox_batches(&w->dev[0]), 0);
    assert_int_equal(bench_outbox_batches(&w->dev[1]), 0);
    assert_complete(&w->store[0], 14);
    assert_complete(&w->store[1], 14);
    /* Each batch went to one of them: both worked, neither saw everything. */
    assert_true(w->agg[0].received > 0 && w->agg[1].received > 0);
    assert_int_equal(w->agg[0].received + w->agg[1].received,
                     w->store[0].deliveries + w->store[1].deliveries);
    assert_true(w->agg[0].received < w->store[0].deliveries + w->store[1].deliveries);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(both_send_and_each_takes_only_its_own_acks, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(status_topics_are_per_device, setup, teardown),
        cmocka_unit_test_setup_teardown(a_window_lost_at_a_broker_restart_goes_again_within_seconds,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(two_aggregators_in_a_shared_group_split_the_load, setup,
                                        teardown),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
