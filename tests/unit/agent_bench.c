/*
 * The agent's unit-test bench (agent_bench.h): an agent on the fake clock
 * and the fake broker, and what the tests read back from the broker.
 */
#define _GNU_SOURCE
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "agent_bench.h"
#include "edgetel/agent.h"
#include "edgetel/codec.h"
#include "edgetel/outbox.h"
#include "et_fake.h"
#include "log_capture.h"

void bench_init(struct bench *b, const char *device, struct et_fake_broker *broker)
{
    memset(b, 0, sizeof(*b));
    snprintf(b->device, sizeof(b->device), "%s", device);
    snprintf(b->telemetry, sizeof(b->telemetry), "edgetel/v1/%s/telemetry", device);
    snprintf(b->ack, sizeof(b->ack), "edgetel/v1/%s/ack", device);
    snprintf(b->status, sizeof(b->status), "edgetel/v1/%s/status", device);
    snprintf(b->dir, sizeof(b->dir), "/tmp/et-agent-XXXXXX");
    assert_non_null(mkdtemp(b->dir));
    assert_int_equal(pipe(b->stop), 0);
    b->broker = broker;
    if (!broker) {
        /* Down until the test connects the agent, so it decides what is backlog. */
        assert_int_equal(et_fake_broker_create(&b->broker), 0);
        et_fake_broker_set_up(b->broker, false);
        b->own_broker = true;
    }
}

void bench_fini(struct bench *b)
{
    char cmd[128];

    if (b->agent)
        bench_stop(b);
    if (b->own_broker)
        et_fake_broker_destroy(b->broker);
    b->broker = NULL;
    et_wire_reader_destroy(b->reader);
    b->reader = NULL;
    close(b->stop[0]);
    close(b->stop[1]);
    snprintf(cmd, sizeof(cmd), "rm -rf %s", b->dir);
    assert_int_equal(system(cmd), 0);
}

int bench_setup(void **state)
{
    struct bench *b = calloc(1, sizeof(*b));

    assert_non_null(b);
    et_fake_reset();
    et_fake_time_set(1000000, TRUE_WALL0, true);
    bench_init(b, BENCH_DEVICE, NULL);
    *state = b;
    return 0;
}

int bench_teardown(void **state)
{
    struct bench *b = *state;

    log_capture_stop();    /* a test that failed while capturing its log */
    bench_fini(b);
    free(b);
    return 0;
}

void bench_start(struct bench *b, const char *extra)
{
    const struct et_fake_message *will;
    struct et_fake_client *client;
    char text[2048], err[256];

    snprintf(text, sizeof(text),
             "[agent]\n"
             "device_id = %s\n"
             "data_dir = %s\n"
             "batch_interval = 200ms\n"
             "%s"
             "[mqtt]\n"
             "host = 127.0.0.1\n"
             "max_inflight = 4\n"
             "ack_timeout = %s\n"
             "%s"
             "[collector sim]\n"
             "type = sim\n"
             "interval = 100ms\n",
             b->device, b->dir, b->agent_extra ? b->agent_extra : "",
             b->ack_timeout ? b->ack_timeout : "2s", extra ? extra : "insecure = true\n");
    if (et_config_parse(text, "unit.conf", &b->cfg, err, sizeof(err)) != 0)
        fail_msg("config: %s", err);
    if (et_agent_create(&b->agent, &b->cfg, et_fake_broker_transport(b->broker), err,
                        sizeof(err)) != 0)
        fail_msg("agent: %s", err);
    assert_int_equal(et_agent_start(b->agent), 0);
    client = bench_client(b);
    assert_string_equal(et_fake_client_subscription(client, 0), b->ack);
    /* Then the retained config topic (pushed configs, reconf.h). */
    assert_non_null(strstr(et_fake_client_subscription(client, 1), "/config"));
    assert_null(et_fake_client_subscription(client, 2));
    will = et_fake_client_will(client);
    assert_non_null(will);
    assert_string_equal(will->topic, b->status);
    assert_true(will->retain);
}

void bench_stop(struct bench *b)
{
    et_agent_stop(b->agent);
    et_agent_destroy(b->agent);
    b->agent = NULL;
    et_config_free(&b->cfg);
}

struct et_fake_client *bench_client(struct bench *b)
{
    struct et_fake_client *c = et_fake_broker_client(b->broker, b->device);

    assert_non_null(c);
    return c;
}

void bench_run_for(struct bench *b, int64_t ms)
{
    for (int64_t t = 0; t < ms; t += 50) {
        et_fake_time_advance(50);
        assert_int_equal(et_agent_step(b->agent, b->stop[0], 0), 0);
    }
}

void bench_connect_now(struct bench *b)
{
    et_fake_broker_set_up(b->broker, true);
    assert_true(et_fake_client_connected(bench_client(b)));
    assert_int_equal(et_agent_step(b->agent, b->stop[0], 0), 0);
}

bool bench_stream(struct bench *b, uint8_t out[ET_STREAM_ID_LEN])
{
    const struct et_fake_message *p;
    bool found = false;
    char err[160];

    for (size_t i = 0; (p = et_fake_broker_published(b->broker, i)) != NULL; i++) {
        ProtobufCBinaryData id = { 0, NULL };
        Edgetel__V1__Batch *batch = NULL;
        Edgetel__V1__Status *st = NULL;

        if (strcmp(p->topic, b->telemetry) == 0 &&
            et_wire_decode_batch(p->payload, p->len, &batch, err, sizeof(err)) == 0)
            id = batch->stream_id;
        else if (strcmp(p->topic, b->status) == 0 &&
                 et_wire_decode_status(p->payload, p->len, &st, err, sizeof(err)) == 0)
            id = st->stream_id;
        if (id.len == ET_STREAM_ID_LEN) {
            memcpy(out, id.data, ET_STREAM_ID_LEN);
            found = true;
        }
        et_wire_free_batch(batch);
        if (st)
            edgetel__v1__status__free_unpacked(st, NULL);
    }
    return found;
}

void bench_send_ack_in(struct bench *b, const uint8_t *stream_id, uint64_t through,
                       const uint64_t *seqs, size_t n)
{
    uint8_t *buf;
    size_t len;

    assert_int_equal(et_wire_encode_ack(b->device, stream_id, through, seqs, n, &buf, &len), 0);
    assert_int_equal(et_fake_broker_publish(b->broker, b->ack, buf, len, false), 0);
    free(buf);
    assert_int_equal(et_agent_step(b->agent, b->stop[0], 0), 0);
}

void bench_send_ack(struct bench *b, uint64_t through, const uint64_t *seqs, size_t n)
{
    uint8_t stream[ET_STREAM_ID_LEN];

    if (!bench_stream(b, stream))
        fail_msg("bench: the agent published no batch or Status naming its stream yet");
    bench_send_ack_in(b, stream, through, seqs, n);
}

uint64_t bench_outbox_batches(struct bench *b)
{
    struct et_outbox_stats st;

    assert_int_equal(et_agent_outbox_stats(b->agent, &st), 0);
    return st.batches;
}

Edgetel__V1__Batch *bench_next_batch(struct bench *b, size_t *i)
{
    const struct et_fake_message *p;

    for (; (p = et_fake_broker_published(b->broker, *i)) != NULL; (*i)++) {
        Edgetel__V1__Batch *d;
        char err[160];

        if (strcmp(p->topic, b->telemetry) != 0)
            continue;
        if (et_wire_decode_batch(p->payload, p->len, &d, err, sizeof(err)) != 0)
            fail_msg("published batch does not decode: %s", err);
        (*i)++;
        return d;
    }
    return NULL;
}

/* Let the bench's reader see every batch published so far (what it carries). */
static void bench_learn_all(struct bench *b)
{
    const struct et_fake_message *p;
    struct et_wire_named *s;
    size_t n;
    char err[160];

    for (size_t i = 0; (p = et_fake_broker_published(b->broker, i)) != NULL; i++) {
        if (strcmp(p->topic, b->telemetry) != 0)
            continue;
        if (et_wire_read(b->reader, p->payload, p->len, &s, &n, err, sizeof(err)) == 0)
            free(s);
    }
}

/*
 * The next telemetry message from *i on: decoded into *d and its samples
 * read with the bench's reader (as an aggregator that saw every batch
 * would) into *named (*n of them; free it). false when there is none.
 */
static bool bench_next_read(struct bench *b, size_t *i, Edgetel__V1__Batch **d,
                            struct et_wire_named **named, size_t *n)
{
    const struct et_fake_message *p;
    char err[160];

    int rc;

    if (!b->reader)
        assert_int_equal(et_wire_reader_create(&b->reader), 0);
    for (; (p = et_fake_broker_published(b->broker, *i)) != NULL; (*i)++) {
        if (strcmp(p->topic, b->telemetry) != 0)
            continue;
        if (et_wire_decode_batch(p->payload, p->len, d, err, sizeof(err)) != 0)
            fail_msg("published batch does not decode: %s", err);
        rc = et_wire_read(b->reader, p->payload, p->len, named, n, err, sizeof(err));
        if (rc == -ENOKEY) {
            /* The batch that carried the entries went later (backlog goes
             * after live data): learn from everything published, then again. */
            bench_learn_all(b);
            rc = et_wire_read(b->reader, p->payload, p->len, named, n, err, sizeof(err));
        }
        if (rc == -ENOKEY && b->agent) {
            /* Its entries were never sent (the batch that carried them was
             * dropped while the disk was full, or is still in the backlog):
             * ask for the dictionary as the aggregator does; the agent sends
             * the batch again with it at once. */
            uint8_t stream[ET_STREAM_ID_LEN], *ack;
            size_t len;

            assert_true(bench_stream(b, stream));
            assert_int_equal(et_wire_encode_ack_dict(b->device, stream, 0, (*d)->dict_id,
                                                     (*d)->seq, &ack, &len), 0);
            assert_int_equal(et_fake_broker_publish(b->broker, b->ack, ack, len, false), 0);
            free(ack);
            assert_int_equal(et_agent_step(b->agent, b->stop[0], 0), 0);
            /* This copy was not stored: the one sent again is read instead. */
            et_wire_free_batch(*d);
            continue;
        }
        if (rc != 0)
            fail_msg("published batch does not read: %s", err);
        (*i)++;
        return true;
    }
    return false;
}

bool bench_next_read_at(struct bench *b, size_t *i, Edgetel__V1__Batch **d,
                        struct et_wire_named **named, size_t *n)
{
    return bench_next_read(b, i, d, named, n);
}

size_t bench_new_batches(struct bench *b, uint64_t *seqs, bool *historical, size_t cap,
                         int64_t *counters, size_t *n_counters, size_t counter_cap)
{
    Edgetel__V1__Batch *d;
    struct et_wire_named *s;
    size_t n = 0, n_read;

    while (bench_next_read(b, &b->seen, &d, &s, &n_read)) {
        assert_true(n < cap);
        seqs[n] = d->seq;
        historical[n] = d->historical;
        n++;
        for (size_t i = 0; counters && i < n_read; i++) {
            if (strcmp(s[i].name, "sim.counter") != 0)
                continue;
            assert_true(*n_counters < counter_cap);
            counters[(*n_counters)++] = s[i].s.u.i64;
        }
        free(s);
        et_wire_free_batch(d);
    }
    return n;
}

size_t bench_timed_samples(struct bench *b, struct timed *out, size_t cap)
{
    Edgetel__V1__Batch *d;
    struct et_wire_named *s;
    size_t n = 0, n_read;

    while (bench_next_read(b, &b->seen, &d, &s, &n_read)) {
        for (size_t i = 0; i < n_read; i++) {
            if (strcmp(s[i].name, "sim.counter") != 0)
                continue;
            assert_true(n < cap);
            out[n].counter = s[i].s.u.i64;
            out[n].mono = s[i].s.mono_ms;
            out[n].wall = d->base_wall_ms + (s[i].s.mono_ms - d->base_mono_ms);
            out[n].tq = (int)s[i].s.tq;
            out[n].boot0 = d->boot_id.data[0];
            n++;
        }
        free(s);
        et_wire_free_batch(d);
    }
    return n;
}

void bench_drain_all(struct bench *b)
{
    bench_connect_now(b);
    for (int round = 0; round < 200 && bench_outbox_batches(b) > 0; round++) {
        uint64_t seqs[4096];
        size_t n = 0, i = 0;
        Edgetel__V1__Batch *d;

        /* Ack every telemetry batch published so far, selectively. */
        while (n < 4096 && (d = bench_next_batch(b, &i)) != NULL) {
            seqs[n++] = d->seq;
            et_wire_free_batch(d);
        }
        bench_send_ack(b, 0, seqs, n);
    }
    assert_int_equal(bench_outbox_batches(b), 0);
}
