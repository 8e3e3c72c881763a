/*
 * The agent's delivery policy, driven step by step: the fake platform's
 * clock, the real outbox in a temp dir, the real sim driver, and an MQTT
 * transport defined here, handed to the agent at creation (the unit tests
 * never link Paho).
 *
 * What must hold: rows leave the outbox only on an Ack; every batch is
 * sent; the backlog goes out marked historical, live batches overtake it;
 * a batch with no Ack is sent again after ack_timeout; every sim counter
 * value arrives.
 */
#define _GNU_SOURCE
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "edgetel/agent.h"
#include "edgetel/codec.h"
#include "edgetel/config.h"
#include "edgetel/mqtt.h"
#include "edgetel/outbox.h"
#include "et_fake.h"

#include <sqlite3.h>
#include <sys/stat.h>

/* ---- the fake MQTT seam -------------------------------------------------- */

#define FAKE_MAX_EVENTS 64
#define FAKE_MAX_PUBLISHED 4096

struct fake_published {
    char topic[128];
    uint8_t *payload;
    size_t len;
    bool retain;
};

struct fake_client {
    struct et_mqtt base;    /* first: the seam's handle */
    int pipe[2];
    bool started;           /* et_mqtt_start() was called */
    bool connected;
    int next_token;
    int outstanding;
    struct et_mqtt_event events[FAKE_MAX_EVENTS];
    uint8_t *event_payloads[FAKE_MAX_EVENTS];
    char event_topics[FAKE_MAX_EVENTS][128];
    size_t n_events;
};

/* The test's view of the one client the agent makes. */
static struct {
    struct fake_client *client;
    struct fake_published published[FAKE_MAX_PUBLISHED];
    size_t n_published;
    char subscribed[128];
} fake;

static int fake_create(void *impl, struct et_mqtt **out, const struct et_mqtt_cfg *cfg)
{
    struct fake_client *m = calloc(1, sizeof(*m));

    assert_non_null(m);
    assert_int_equal(pipe2(m->pipe, O_NONBLOCK | O_CLOEXEC), 0);
    assert_non_null(cfg->will_topic);
    assert_true(cfg->will_retain);
    fake.client = m;
    *out = &m->base;
    return 0;
}

static int fake_start(struct et_mqtt *base)
{
    struct fake_client *m = (struct fake_client *)base;

    m->started = true;
    return 0;
}

static int fake_fd(const struct et_mqtt *base)
{
    return ((const struct fake_client *)base)->pipe[0];
}

static void fake_queue(struct fake_client *m, enum et_mqtt_event_type type, const char *topic,
                       const void *payload, size_t len)
{
    size_t i = m->n_events++;

    assert_true(i < FAKE_MAX_EVENTS);
    m->events[i] = (struct et_mqtt_event){ .type = type, .len = len };
    if (topic) {
        snprintf(m->event_topics[i], sizeof(m->event_topics[i]), "%s", topic);
        m->events[i].topic = m->event_topics[i];
    }
    if (payload) {
        m->event_payloads[i] = malloc(len);
        memcpy(m->event_payloads[i], payload, len);
        m->events[i].payload = m->event_payloads[i];
    }
    assert_int_equal(write(m->pipe[1], "e", 1), 1);
}

static int fake_dispatch(struct et_mqtt *base, et_mqtt_handler handler, void *ctx)
{
    struct fake_client *m = (struct fake_client *)base;
    char drain[64];
    size_t n = m->n_events;

    while (read(m->pipe[0], drain, sizeof(drain)) > 0)
        ;
    m->n_events = 0;
    for (size_t i = 0; i < n; i++) {
        if (m->events[i].type == ET_MQTT_CONNECTED)
            m->connected = true;
        if (m->events[i].type == ET_MQTT_DISCONNECTED)
            m->connected = false;
        handler(ctx, &m->events[i]);
        free(m->event_payloads[i]);
        m->event_payloads[i] = NULL;
    }
    return (int)n;
}

static int fake_subscribe(struct et_mqtt *base, const char *filter, int qos)
{
    snprintf(fake.subscribed, sizeof(fake.subscribed), "%s", filter);
    return 0;
}

static int fake_publish(struct et_mqtt *base, const char *topic, const void *payload, size_t len,
                        int qos, bool retain)
{
    struct fake_client *m = (struct fake_client *)base;
    struct fake_published *p;

    if (!m->connected)
        return -ENOTCONN;
    assert_true(fake.n_published < FAKE_MAX_PUBLISHED);
    p = &fake.published[fake.n_published++];
    snprintf(p->topic, sizeof(p->topic), "%s", topic);
    p->payload = malloc(len);
    memcpy(p->payload, payload, len);
    p->len = len;
    p->retain = retain;
    return ++m->next_token;
}

static bool fake_connected(const struct et_mqtt *base)
{
    return ((const struct fake_client *)base)->connected;
}

static void fake_destroy(struct et_mqtt *base, int timeout_ms)
{
    struct fake_client *m = (struct fake_client *)base;

    for (size_t i = 0; i < m->n_events; i++)
        free(m->event_payloads[i]);
    close(m->pipe[0]);
    close(m->pipe[1]);
    if (fake.client == m)
        fake.client = NULL;
    free(m);
}

static const struct et_mqtt_ops fake_ops = {
    .name = "fake",
    .create = fake_create,
    .start = fake_start,
    .fd = fake_fd,
    .dispatch = fake_dispatch,
    .subscribe = fake_subscribe,
    .publish = fake_publish,
    .connected = fake_connected,
    .destroy = fake_destroy,
};

static const struct et_mqtt_transport fake_transport = { .ops = &fake_ops };

/* ---- the test bench -------------------------------------------------------- */

#define TELEMETRY "edgetel/v1/unit-dev/telemetry"
#define ACK "edgetel/v1/unit-dev/ack"

struct bench {
    char dir[64];
    struct et_config cfg;
    struct et_agent *agent;
    int stop[2];
    size_t seen;          /* published entries already looked at */
};

static void bench_start(struct bench *b, const char *extra)
{
    char text[1024], err[256];

    snprintf(text, sizeof(text),
             "[agent]\n"
             "device_id = unit-dev\n"
             "data_dir = %s\n"
             "batch_interval = 200ms\n"
             "[mqtt]\n"
             "host = 127.0.0.1\n"
             "max_inflight = 4\n"
             "ack_timeout = 2s\n"
             "%s"
             "[collector sim]\n"
             "type = sim\n"
             "interval = 100ms\n",
             b->dir, extra ? extra : "insecure = true\n");
    if (et_config_parse(text, "unit.conf", &b->cfg, err, sizeof(err)) != 0)
        fail_msg("config: %s", err);
    if (et_agent_create(&b->agent, &b->cfg, &fake_transport, err, sizeof(err)) != 0)
        fail_msg("agent: %s", err);
    assert_int_equal(et_agent_start(b->agent), 0);
    assert_string_equal(fake.subscribed, ACK);
}

static void bench_stop(struct bench *b)
{
    et_agent_stop(b->agent);
    et_agent_destroy(b->agent);
    b->agent = NULL;
    et_config_free(&b->cfg);
}

static int setup(void **state)
{
    struct bench *b = calloc(1, sizeof(*b));

    et_fake_reset();
    et_fake_time_set(1000000, 1795000000000LL, true);
    snprintf(b->dir, sizeof(b->dir), "/tmp/et-uplink-XXXXXX");
    assert_non_null(mkdtemp(b->dir));
    assert_int_equal(pipe(b->stop), 0);
    memset(&fake, 0, sizeof(fake));
    *state = b;
    return 0;
}

static int teardown(void **state)
{
    struct bench *b = *state;
    char cmd[128];

    if (b->agent)
        bench_stop(b);
    for (size_t i = 0; i < fake.n_published; i++)
        free(fake.published[i].payload);
    close(b->stop[0]);
    close(b->stop[1]);
    snprintf(cmd, sizeof(cmd), "rm -rf %s", b->dir);
    assert_int_equal(system(cmd), 0);
    free(b);
    return 0;
}

/* Advance the fake clock by ms in 50 ms steps, running the loop at each. */
static void run_for(struct bench *b, int64_t ms)
{
    for (int64_t t = 0; t < ms; t += 50) {
        et_fake_time_advance(50);
        assert_int_equal(et_agent_step(b->agent, b->stop[0], 0), 0);
    }
}

static void connect_now(struct bench *b)
{
    fake_queue(fake.client, ET_MQTT_CONNECTED, NULL, NULL, 0);
    assert_int_equal(et_agent_step(b->agent, b->stop[0], 0), 0);
}

static void send_ack(struct bench *b, uint64_t through, const uint64_t *seqs, size_t n)
{
    uint8_t *buf;
    size_t len;

    assert_int_equal(et_wire_encode_ack("unit-dev", through, seqs, n, &buf, &len), 0);
    fake_queue(fake.client, ET_MQTT_MESSAGE, ACK, buf, len);
    free(buf);
    assert_int_equal(et_agent_step(b->agent, b->stop[0], 0), 0);
}

/* Decode the telemetry published since the last call into seqs/flags. */
static size_t new_batches(struct bench *b, uint64_t *seqs, bool *historical, size_t cap,
                          int64_t *counters, size_t *n_counters, size_t counter_cap)
{
    size_t n = 0;

    for (; b->seen < fake.n_published; b->seen++) {
        struct fake_published *p = &fake.published[b->seen];
        Edgetel__V1__Batch *d;
        char err[160];

        if (strcmp(p->topic, TELEMETRY) != 0)
            continue;
        if (et_wire_decode_batch(p->payload, p->len, &d, err, sizeof(err)) != 0)
            fail_msg("published batch does not decode: %s", err);
        assert_true(n < cap);
        seqs[n] = d->seq;
        historical[n] = d->historical;
        n++;
        for (size_t i = 0; counters && i < d->n_samples; i++) {
            if (strcmp(d->metrics[d->samples[i]->metric]->name, "sim.counter") != 0)
                continue;
            assert_true(*n_counters < counter_cap);
            counters[(*n_counters)++] = d->samples[i]->i64;
        }
        et_wire_free_batch(d);
    }
    return n;
}

static uint64_t outbox_batches(struct bench *b)
{
    struct et_outbox_stats st;

    assert_int_equal(et_agent_outbox_stats(b->agent, &st), 0);
    return st.batches;
}

/* ---- tests ------------------------------------------------------------------- */

static void offline_backlog_drains_in_order_exactly_once(void **state)
{
    struct bench *b = *state;
    uint64_t seqs[256];
    bool hist[256];
    int64_t counters[1024];
    size_t n_counters = 0, n_total = 0;
    uint64_t expect_seq = 1;

    bench_start(b, NULL);
    run_for(b, 5000);                      /* offline: 5 s of sim at 100 ms */
    uint64_t backlog = outbox_batches(b);
    assert_true(backlog >= 20);
    assert_int_equal(fake.n_published, 0);

    connect_now(b);
    /* Ack each window as it arrives; stop collecting so nothing is live. */
    for (int round = 0; round < 100 && outbox_batches(b) > 0; round++) {
        size_t n = new_batches(b, seqs, hist, 256, counters, &n_counters, 1024);

        assert_true(n <= 4);               /* the window */
        for (size_t i = 0; i < n; i++) {
            assert_int_equal(seqs[i], expect_seq);
            expect_seq++;
            if (seqs[i] <= backlog)
                assert_true(hist[i]);
        }
        n_total += n;
        if (n)
            send_ack(b, seqs[n - 1], NULL, 0);
        else
            run_for(b, 50);
    }
    assert_int_equal(outbox_batches(b), 0);
    assert_true(n_total >= backlog);
    /* Every counter value from 0 on, once, in order. */
    for (size_t i = 0; i < n_counters; i++)
        assert_int_equal(counters[i], (int64_t)i);
    assert_true(n_counters >= 45);
}

static void rows_stay_until_acked_and_resend_after_timeout(void **state)
{
    struct bench *b = *state;
    uint64_t seqs[64];
    bool hist[64];

    bench_start(b, NULL);
    connect_now(b);
    run_for(b, 450);                       /* two batches made and sent */
    size_t n = new_batches(b, seqs, hist, 64, NULL, NULL, 0);

    assert_true(n >= 1);
    assert_false(hist[0]);                 /* live */
    uint64_t first = seqs[0];

    /* A PUBACK is not an Ack: nothing leaves the outbox. */
    assert_true(outbox_batches(b) >= n);

    /* No Ack within 2 s: the same batch goes out again. */
    run_for(b, 2100);
    n = new_batches(b, seqs, hist, 64, NULL, NULL, 0);
    bool resent = false;

    for (size_t i = 0; i < n; i++)
        resent |= seqs[i] == first;
    assert_true(resent);

    /* A selective ack deletes exactly that batch. */
    uint64_t before = outbox_batches(b);

    send_ack(b, 0, &first, 1);
    assert_int_equal(outbox_batches(b), before - 1);
}

static void live_batches_overtake_the_backlog(void **state)
{
    struct bench *b = *state;
    uint64_t seqs[64];
    bool hist[64];

    bench_start(b, NULL);
    run_for(b, 3000);                      /* backlog of ~15 batches */
    uint64_t backlog = outbox_batches(b);

    connect_now(b);
    size_t n = new_batches(b, seqs, hist, 64, NULL, NULL, 0);

    assert_int_equal(n, 4);                /* window full of backlog */
    for (size_t i = 0; i < n; i++)
        assert_true(hist[i]);
    run_for(b, 250);                       /* a live batch is made; the window is full */
    assert_int_equal(new_batches(b, seqs, hist, 64, NULL, NULL, 0), 0);

    send_ack(b, 4, NULL, 0);               /* room again */
    n = new_batches(b, seqs, hist, 64, NULL, NULL, 0);
    assert_true(n >= 1);
    assert_true(seqs[0] > backlog);        /* the live batch first... */
    assert_false(hist[0]);
    for (size_t i = 1; i < n; i++)         /* ...then backlog again */
        if (seqs[i] <= backlog)
            assert_true(hist[i]);
}

static void reconnect_sends_unacked_again(void **state)
{
    struct bench *b = *state;
    uint64_t seqs[64];
    bool hist[64];

    bench_start(b, NULL);
    connect_now(b);
    run_for(b, 450);
    size_t n = new_batches(b, seqs, hist, 64, NULL, NULL, 0);

    assert_true(n >= 1);
    uint64_t first = seqs[0];

    fake_queue(fake.client, ET_MQTT_DISCONNECTED, NULL, NULL, 0);
    assert_int_equal(et_agent_step(b->agent, b->stop[0], 0), 0);
    run_for(b, 300);
    assert_int_equal(new_batches(b, seqs, hist, 64, NULL, NULL, 0), 0);

    connect_now(b);
    n = new_batches(b, seqs, hist, 64, NULL, NULL, 0);
    bool again = false;

    for (size_t i = 0; i < n; i++)
        again |= seqs[i] == first && hist[i];
    assert_true(again);
}

static void foreign_and_malformed_acks_are_ignored(void **state)
{
    struct bench *b = *state;
    uint8_t *buf;
    size_t len;

    bench_start(b, NULL);
    connect_now(b);
    run_for(b, 450);
    uint64_t before = outbox_batches(b);

    assert_true(before >= 1);
    assert_int_equal(et_wire_encode_ack("other-dev", 1000, NULL, 0, &buf, &len), 0);
    fake_queue(fake.client, ET_MQTT_MESSAGE, ACK, buf, len);
    free(buf);
    fake_queue(fake.client, ET_MQTT_MESSAGE, ACK, "\xff\xff\xff", 3);
    assert_int_equal(et_agent_step(b->agent, b->stop[0], 0), 0);
    assert_true(outbox_batches(b) >= before);
}

static void seq_continues_after_restart(void **state)
{
    struct bench *b = *state;
    uint64_t seqs[64];
    bool hist[64];

    bench_start(b, NULL);
    run_for(b, 1000);
    uint64_t made = outbox_batches(b);

    bench_stop(b);                          /* the stop flushes the open batch too */
    bench_start(b, NULL);
    connect_now(b);
    size_t n = new_batches(b, seqs, hist, 64, NULL, NULL, 0);

    assert_true(n >= 1);
    assert_int_equal(seqs[0], 1);           /* the old rows are still there */
    send_ack(b, seqs[n - 1], NULL, 0);
    run_for(b, 250);
    n = new_batches(b, seqs, hist, 64, NULL, NULL, 0);
    for (size_t i = 0; i < n; i++)
        if (!hist[i])
            assert_true(seqs[i] > made);    /* new seqs never reuse old ones */
}


/* ---- time on boards without a real-time clock --------------------------------- */

#define YEAR_MS (365LL * 24 * 3600 * 1000)
#define TRUE_WALL0 1795000000000LL     /* the true wall time at mono 1000000 */
#define TRUE_OFFSET (TRUE_WALL0 - 1000000)

struct timed {
    int64_t counter;
    int64_t mono;
    int64_t wall;
    int tq;                 /* effective: the sample's own, else the batch's */
    uint8_t boot0;          /* first byte of the boot id */
};

/* Every sim.counter sample published since the last call, with its times. */
static size_t timed_samples(struct bench *b, struct timed *out, size_t cap)
{
    size_t n = 0;

    for (; b->seen < fake.n_published; b->seen++) {
        struct fake_published *p = &fake.published[b->seen];
        Edgetel__V1__Batch *d;
        char err[160];
        int64_t mono[4096];

        if (strcmp(p->topic, TELEMETRY) != 0)
            continue;
        if (et_wire_decode_batch(p->payload, p->len, &d, err, sizeof(err)) != 0)
            fail_msg("published batch does not decode: %s", err);
        assert_true(d->n_samples <= 4096);
        et_wire_sample_times(d, mono);
        for (size_t i = 0; i < d->n_samples; i++) {
            Edgetel__V1__Sample *s = d->samples[i];

            if (strcmp(d->metrics[s->metric]->name, "sim.counter") != 0)
                continue;
            assert_true(n < cap);
            out[n].counter = s->i64;
            out[n].mono = mono[i];
            out[n].wall = d->base_wall_ms + (mono[i] - d->base_mono_ms);
            out[n].tq = s->time_quality ? (int)s->time_quality : (int)d->time_quality;
            out[n].boot0 = d->boot_id.data[0];
            n++;
        }
        et_wire_free_batch(d);
    }
    return n;
}

/* Connect and ack everything until the outbox is empty. */
static void drain_all(struct bench *b)
{
    connect_now(b);
    for (int round = 0; round < 200 && outbox_batches(b) > 0; round++) {
        uint64_t seqs[4096];
        size_t n = 0;

        /* Ack every telemetry batch published so far, selectively. */
        for (size_t i = 0; i < fake.n_published && n < 4096; i++) {
            Edgetel__V1__Batch *d;
            char err[160];

            if (strcmp(fake.published[i].topic, TELEMETRY) != 0)
                continue;
            assert_int_equal(et_wire_decode_batch(fake.published[i].payload,
                                                  fake.published[i].len, &d, err,
                                                  sizeof(err)), 0);
            seqs[n++] = d->seq;
            et_wire_free_batch(d);
        }
        send_ack(b, 0, seqs, n);
    }
    assert_int_equal(outbox_batches(b), 0);
}

static void boot_a_year_behind_then_sync_corrects_every_sample(void **state)
{
    struct bench *b = *state;
    struct timed t[512];

    et_fake_time_set(1000000, TRUE_WALL0 - YEAR_MS, false);
    bench_start(b, NULL);
    run_for(b, 3000);                               /* offline, unsynced */
    /* NTP steps the clock to the truth; monotonic time goes on. */
    et_fake_time_set(1003000, TRUE_WALL0 + 3000, true);
    run_for(b, 1000);
    drain_all(b);

    size_t n = timed_samples(b, t, 512);
    size_t corrected = 0, synced = 0;

    assert_true(n >= 35);
    for (size_t i = 0; i < n; i++) {
        assert_int_equal(t[i].counter, (int64_t)i);
        /* Every stored time is the true one, to the millisecond. */
        assert_int_equal(t[i].wall, TRUE_OFFSET + t[i].mono);
        if (t[i].mono <= 1003000) {   /* the round at 1003000 ran before the step */
            assert_int_equal(t[i].tq, ET_TQ_CORRECTED);
            corrected++;
        } else {
            assert_int_equal(t[i].tq, ET_TQ_SYNCED);
            synced++;
        }
    }
    assert_true(corrected >= 29);
    assert_true(synced >= 9);
}

static void wall_clock_jumps_neither_burst_nor_stall(void **state)
{
    struct bench *b = *state;
    struct timed t[1024];

    bench_start(b, NULL);
    run_for(b, 5000);
    et_fake_time_set(1005000, TRUE_WALL0 + 5000 + 3600000, true);    /* +1 h */
    run_for(b, 5000);
    et_fake_time_set(1010000, TRUE_WALL0 + 10000 - 3600000, true);   /* -1 h from the truth */
    run_for(b, 5000);
    drain_all(b);

    size_t n = timed_samples(b, t, 1024);

    /* 15 s at 100 ms: 150 rounds (give or take the round at the edge). */
    assert_true(n >= 149 && n <= 151);
    /* The first round runs at the first step (50 ms late); the rest keep
     * the 100 ms grid through both jumps. */
    for (size_t i = 2; i < n; i++) {
        assert_int_equal(t[i].counter, t[i - 1].counter + 1);
        if (t[i].mono - t[i - 1].mono != 100)
            fail_msg("sample %zu at mono %lld, the one before at %lld", i,
                     (long long)t[i].mono, (long long)t[i - 1].mono);
    }
}

static void reboot_before_sync_is_uncorrectable_not_wrong(void **state)
{
    struct bench *b = *state;
    struct timed t[512];
    const uint8_t boot_a[16] = { 0xaa }, boot_b[16] = { 0xbb };

    /* Boot A: never synced, powered off with data in the outbox. */
    et_fake_time_set_boot_id(boot_a);
    et_fake_time_set(1000000, TRUE_WALL0 - YEAR_MS, false);
    bench_start(b, NULL);
    run_for(b, 2000);
    bench_stop(b);

    /* Boot B: monotonic starts again; the clock syncs after a while. */
    et_fake_time_set_boot_id(boot_b);
    et_fake_time_set(20000, TRUE_WALL0 - YEAR_MS, false);
    bench_start(b, NULL);
    run_for(b, 2000);
    et_fake_time_set(22000, TRUE_WALL0 + 100000, true);
    run_for(b, 500);
    drain_all(b);

    size_t n = timed_samples(b, t, 512);
    size_t from_a = 0, from_b = 0;

    for (size_t i = 0; i < n; i++) {
        if (t[i].boot0 == 0xaa) {
            assert_int_equal(t[i].tq, ET_TQ_UNCORRECTABLE);
            from_a++;
        } else {
            assert_int_equal(t[i].boot0, 0xbb);
            assert_true(t[i].tq == ET_TQ_CORRECTED || t[i].tq == ET_TQ_SYNCED);
            assert_int_equal(t[i].wall, TRUE_WALL0 + 100000 - 22000 + t[i].mono);
            from_b++;
        }
    }
    assert_true(from_a >= 19);
    assert_true(from_b >= 24);
}

static void earlier_boot_that_synced_is_corrected_after_reboot(void **state)
{
    struct bench *b = *state;
    struct timed t[512];
    const uint8_t boot_a[16] = { 0xaa }, boot_b[16] = { 0xbb };

    et_fake_time_set_boot_id(boot_a);
    et_fake_time_set(1000000, TRUE_WALL0 - YEAR_MS, false);
    bench_start(b, NULL);
    run_for(b, 2000);                                   /* unsynced samples of boot A */
    et_fake_time_set(1002000, TRUE_WALL0 + 2000, true); /* A syncs... */
    run_for(b, 300);
    bench_stop(b);                                      /* ...and loses power, unsent */

    et_fake_time_set_boot_id(boot_b);
    et_fake_time_set(30000, TRUE_WALL0 + 60000, true);
    bench_start(b, NULL);
    drain_all(b);

    size_t n = timed_samples(b, t, 512);
    size_t corrected = 0;

    assert_true(n >= 22);
    for (size_t i = 0; i < n; i++) {
        assert_int_equal(t[i].boot0, 0xaa);
        assert_int_equal(t[i].wall, TRUE_OFFSET + t[i].mono);
        corrected += t[i].tq == ET_TQ_CORRECTED;
    }
    assert_true(corrected >= 19);
}


/* ---- storage trouble, drain pacing, waiting for the clock ------------------------ */

static void exec_sql(sqlite3 *db, const char *sql)
{
    char *err = NULL;

    if (sqlite3_exec(db, sql, NULL, NULL, &err) != SQLITE_OK)
        fail_msg("%s: %s", sql, err ? err : "?");
}

static void full_disk_holds_samples_in_memory_and_loses_none(void **state)
{
    struct bench *b = *state;
    int64_t counters[1024];
    size_t n_counters = 0;
    uint64_t seqs[1024];
    bool hist[1024];
    char sql[96];
    sqlite3_stmt *st;

    bench_start(b, NULL);
    run_for(b, 1000);
    sqlite3 *db = et_outbox_sqlite(et_agent_outbox(b->agent));

    /* The "disk" is full from now on: no page may be added. */
    assert_int_equal(sqlite3_prepare_v2(db, "PRAGMA page_count", -1, &st, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_step(st), SQLITE_ROW);
    snprintf(sql, sizeof(sql), "PRAGMA max_page_count = %d", sqlite3_column_int(st, 0));
    sqlite3_finalize(st);
    exec_sql(db, sql);
    run_for(b, 3000);                        /* 3 s of samples with nowhere to go */
    exec_sql(db, "PRAGMA max_page_count = 1000000");
    run_for(b, 1000);                        /* room again: the held samples go in */

    drain_all(b);
    b->seen = 0;
    new_batches(b, seqs, hist, 1024, counters, &n_counters, 1024);
    assert_true(n_counters >= 45);
    for (size_t i = 0; i < n_counters; i++)
        assert_int_equal(counters[i], (int64_t)i);   /* none lost, none twice */
}

static void backlog_drains_at_the_configured_rate_and_live_data_does_not_wait(void **state)
{
    struct bench *b = *state;
    uint64_t seqs[256];
    bool hist[256];
    size_t historical = 0, live = 0;

    bench_start(b, "insecure = true\ndrain_rate = 2\n");
    run_for(b, 4000);                        /* a backlog of about 20 batches */
    assert_true(outbox_batches(b) >= 15);
    connect_now(b);
    /* Two seconds online, every batch acked as soon as it is out. */
    for (int t = 0; t < 40; t++) {
        size_t n = new_batches(b, seqs, hist, 256, NULL, NULL, 0);

        for (size_t i = 0; i < n; i++) {
            historical += hist[i];
            live += !hist[i];
        }
        if (n)
            send_ack(b, 0, seqs, n);
        run_for(b, 50);
    }
    /* 2 batches a second: 4 or 5 in two seconds, not the whole backlog. */
    assert_true(historical >= 3 && historical <= 5);
    assert_true(live >= 8);                  /* a batch every 200 ms went at once */
}

/* TLS settings with files that exist; the fake MQTT seam never reads them. */
static void tls_files(struct bench *b, char *extra, size_t cap, const char *more)
{
    const char *names[] = { "ca.pem", "cert.pem", "key.pem" };
    char path[3][128];

    for (int i = 0; i < 3; i++) {
        FILE *f;

        snprintf(path[i], sizeof(path[i]), "%s/%s", b->dir, names[i]);
        f = fopen(path[i], "w");
        assert_non_null(f);
        fputs("-----BEGIN PLACEHOLDER-----\n", f);
        fclose(f);
        chmod(path[i], 0600);
    }
    snprintf(extra, cap, "ca = %s\ncert = %s\nkey = %s\n%s", path[0], path[1], path[2], more);
}

static const char *last_status_reason(void)
{
    static char reason[160];

    reason[0] = '\0';
    for (size_t i = 0; i < fake.n_published; i++) {
        Edgetel__V1__Status *st;

        if (!strstr(fake.published[i].topic, "/status"))
            continue;
        st = edgetel__v1__status__unpack(NULL, fake.published[i].len, fake.published[i].payload);
        assert_non_null(st);
        snprintf(reason, sizeof(reason), "%s", st->reason);
        edgetel__v1__status__free_unpacked(st, NULL);
    }
    return reason;
}

/* An agent with TLS on a board that booted a year behind, clock not synced. */
static void start_unsynced_with_tls(struct bench *b, const char *clock_wait)
{
    char extra[1024];

    et_fake_time_set(1000000, TRUE_WALL0 - YEAR_MS, false);
    tls_files(b, extra, sizeof(extra), clock_wait);
    bench_start(b, extra);
}

static void tls_waits_for_clock_sync_and_collects_meanwhile(void **state)
{
    struct bench *b = *state;

    start_unsynced_with_tls(b, "clock_wait = 10m\n");
    run_for(b, 60000);                       /* a minute without sync: no connect */
    assert_false(fake.client->started);
    assert_true(outbox_batches(b) >= 250);   /* but collecting all along */

    et_fake_time_set(1060000, TRUE_WALL0 + 60000, true);
    run_for(b, 100);
    assert_true(fake.client->started);       /* connects as soon as the clock is good */
    connect_now(b);
    assert_non_null(strstr(last_status_reason(), "waited 60 s for the wall clock"));
}

static void clock_wait_is_bounded(void **state)
{
    struct bench *b = *state;

    start_unsynced_with_tls(b, "clock_wait = 30s\n");
    run_for(b, 29000);
    assert_false(fake.client->started);
    run_for(b, 1100);
    assert_true(fake.client->started);       /* tries anyway after clock_wait */
    connect_now(b);
    assert_non_null(strstr(last_status_reason(), "still not synchronised after 30 s"));
}

static void insecure_or_no_wait_connects_at_once(void **state)
{
    struct bench *b = *state;

    start_unsynced_with_tls(b, "clock_wait = 0s\n");
    assert_true(fake.client->started);
}


/* Find the last value of metric in the telemetry published so far. */
static bool last_value(const char *metric, Edgetel__V1__Sample *out)
{
    bool found = false;

    for (size_t i = 0; i < fake.n_published; i++) {
        Edgetel__V1__Batch *d;
        char err[160];

        if (strcmp(fake.published[i].topic, TELEMETRY) != 0)
            continue;
        assert_int_equal(et_wire_decode_batch(fake.published[i].payload, fake.published[i].len,
                                              &d, err, sizeof(err)), 0);
        for (size_t k = 0; k < d->n_samples; k++) {
            if (strcmp(d->metrics[d->samples[k]->metric]->name, metric) == 0) {
                *out = *d->samples[k];
                found = true;
            }
        }
        et_wire_free_batch(d);
    }
    return found;
}

static void each_collector_reports_its_health(void **state)
{
    struct bench *b = *state;
    Edgetel__V1__Sample v;

    /* /proc/stat fails with an I/O error: the cpu collector cannot probe. */
    et_fake_fs_set_file("/proc/stat", NULL, 0, -EIO);
    bench_start(b, "insecure = true\n[collector cpu]\ntype = cpu\n");
    run_for(b, 31000);                      /* the agent's own metrics come every 30 s */
    drain_all(b);
    assert_true(last_value("agent.collector.sim.ok", &v));
    assert_true(v.b);
    assert_true(last_value("agent.collector.cpu.ok", &v));
    assert_false(v.b);
    assert_true(last_value("agent.collectors_failing", &v));
    assert_int_equal(v.i64, 1);
    assert_true(last_value("agent.outbox_batches", &v));
}


static void collector_tags_go_with_its_metrics(void **state)
{
    struct bench *b = *state;
    bool seen = false;

    bench_start(b, "insecure = true\n[collector room]\ntype = sim\ninterval = 1s\n"
                   "tags = room = kitchen, floor=1\n");
    connect_now(b);
    run_for(b, 1500);
    for (size_t i = 0; i < fake.n_published; i++) {
        Edgetel__V1__Batch *d;
        char err[160];

        if (strcmp(fake.published[i].topic, TELEMETRY) != 0)
            continue;
        assert_int_equal(et_wire_decode_batch(fake.published[i].payload, fake.published[i].len,
                                              &d, err, sizeof(err)), 0);
        for (size_t k = 0; k < d->n_metrics; k++) {
            const Edgetel__V1__Metric *m = d->metrics[k];

            if (strncmp(m->name, "room.", 5) == 0) {
                assert_int_equal(m->n_tags, 2);
                assert_string_equal(m->tags[0]->key, "room");
                assert_string_equal(m->tags[0]->value, "kitchen");
                assert_string_equal(m->tags[1]->key, "floor");
                assert_string_equal(m->tags[1]->value, "1");
                seen = true;
            } else {
                assert_int_equal(m->n_tags, 0);   /* sim.* and agent.* have none */
            }
        }
        et_wire_free_batch(d);
    }
    assert_true(seen);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(offline_backlog_drains_in_order_exactly_once, setup, teardown),
        cmocka_unit_test_setup_teardown(rows_stay_until_acked_and_resend_after_timeout, setup, teardown),
        cmocka_unit_test_setup_teardown(live_batches_overtake_the_backlog, setup, teardown),
        cmocka_unit_test_setup_teardown(reconnect_sends_unacked_again, setup, teardown),
        cmocka_unit_test_setup_teardown(foreign_and_malformed_acks_are_ignored, setup, teardown),
        cmocka_unit_test_setup_teardown(seq_continues_after_restart, setup, teardown),
        cmocka_unit_test_setup_teardown(boot_a_year_behind_then_sync_corrects_every_sample, setup, teardown),
        cmocka_unit_test_setup_teardown(wall_clock_jumps_neither_burst_nor_stall, setup, teardown),
        cmocka_unit_test_setup_teardown(reboot_before_sync_is_uncorrectable_not_wrong, setup, teardown),
        cmocka_unit_test_setup_teardown(earlier_boot_that_synced_is_corrected_after_reboot, setup, teardown),
        cmocka_unit_test_setup_teardown(full_disk_holds_samples_in_memory_and_loses_none, setup, teardown),
        cmocka_unit_test_setup_teardown(backlog_drains_at_the_configured_rate_and_live_data_does_not_wait, setup, teardown),
        cmocka_unit_test_setup_teardown(tls_waits_for_clock_sync_and_collects_meanwhile, setup, teardown),
        cmocka_unit_test_setup_teardown(clock_wait_is_bounded, setup, teardown),
        cmocka_unit_test_setup_teardown(insecure_or_no_wait_connects_at_once, setup, teardown),
        cmocka_unit_test_setup_teardown(each_collector_reports_its_health, setup, teardown),
        cmocka_unit_test_setup_teardown(collector_tags_go_with_its_metrics, setup, teardown),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
