/*
 * The agent's delivery policy, driven step by step on the agent bench
 * (agent_bench.h): the fake platform's clock, the real outbox in a temp
 * dir, the real sim driver, and the in-process fake broker handed to the
 * agent at creation (the unit tests never link Paho).
 *
 * What must hold: rows leave the outbox only on an Ack; every batch is
 * sent; the backlog goes out marked historical, live batches overtake it;
 * a batch with no Ack is sent again after ack_timeout; every sim counter
 * value arrives, also through a full disk; the backlog drains at its rate;
 * what the agent sends carries each collector's health and tags; every
 * batch and Status names the outbox's stream, and an Ack for another
 * stream (a re-flashed board's earlier life) deletes nothing.
 * A full card: test_agent_card.c. Time on boards without a real-time
 * clock: test_agent_time.c.
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
#include "edgetel/log.h"
#include "edgetel/codec.h"
#include "edgetel/outbox.h"
#include "et_fake.h"
#include "log_capture.h"


/* ---- delivery ------------------------------------------------------------ */

static void offline_backlog_drains_in_order_exactly_once(void **state)
{
    struct bench *b = *state;
    uint64_t seqs[256];
    bool hist[256];
    int64_t counters[1024];
    size_t n_counters = 0, n_total = 0;
    uint64_t expect_seq = 1;

    bench_start(b, NULL);
    bench_run_for(b, 5000);                /* offline: 5 s of sim at 100 ms */
    uint64_t backlog = bench_outbox_batches(b);
    assert_true(backlog >= 20);
    assert_int_equal(et_fake_broker_n_published(b->broker), 0);

    bench_connect_now(b);
    /* Ack each window as it arrives; stop collecting so nothing is live. */
    for (int round = 0; round < 100 && bench_outbox_batches(b) > 0; round++) {
        size_t n = bench_new_batches(b, seqs, hist, 256, counters, &n_counters, 1024);

        assert_true(n <= 4);               /* the window */
        for (size_t i = 0; i < n; i++) {
            assert_int_equal(seqs[i], expect_seq);
            expect_seq++;
            if (seqs[i] <= backlog)
                assert_true(hist[i]);
        }
        n_total += n;
        if (n)
            bench_send_ack(b, seqs[n - 1], NULL, 0);
        else
            bench_run_for(b, 50);
    }
    assert_int_equal(bench_outbox_batches(b), 0);
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
    bench_connect_now(b);
    bench_run_for(b, 450);                 /* two batches made and sent */
    size_t n = bench_new_batches(b, seqs, hist, 64, NULL, NULL, 0);

    assert_true(n >= 1);
    assert_false(hist[0]);                 /* live */
    uint64_t first = seqs[0];

    /* A PUBACK is not an Ack: nothing leaves the outbox. */
    assert_true(bench_outbox_batches(b) >= n);

    /* No Ack within 2 s: the same batch goes out again. */
    bench_run_for(b, 2100);
    n = bench_new_batches(b, seqs, hist, 64, NULL, NULL, 0);
    bool resent = false;

    for (size_t i = 0; i < n; i++)
        resent |= seqs[i] == first;
    assert_true(resent);

    /* A selective ack deletes exactly that batch. */
    uint64_t before = bench_outbox_batches(b);

    bench_send_ack(b, 0, &first, 1);
    assert_int_equal(bench_outbox_batches(b), before - 1);
}

static void live_batches_overtake_the_backlog(void **state)
{
    struct bench *b = *state;
    uint64_t seqs[64];
    bool hist[64];

    bench_start(b, NULL);
    bench_run_for(b, 3000);                /* backlog of ~15 batches */
    uint64_t backlog = bench_outbox_batches(b);

    bench_connect_now(b);
    size_t n = bench_new_batches(b, seqs, hist, 64, NULL, NULL, 0);

    assert_int_equal(n, 4);                /* window full of backlog */
    for (size_t i = 0; i < n; i++)
        assert_true(hist[i]);
    bench_run_for(b, 250);                 /* a live batch is made; the window is full */
    assert_int_equal(bench_new_batches(b, seqs, hist, 64, NULL, NULL, 0), 0);

    bench_send_ack(b, 4, NULL, 0);         /* room again */
    n = bench_new_batches(b, seqs, hist, 64, NULL, NULL, 0);
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
    bench_connect_now(b);
    bench_run_for(b, 450);
    size_t n = bench_new_batches(b, seqs, hist, 64, NULL, NULL, 0);

    assert_true(n >= 1);
    uint64_t first = seqs[0];

    et_fake_broker_set_up(b->broker, false);
    assert_int_equal(et_agent_step(b->agent, b->stop[0], 0), 0);
    bench_run_for(b, 300);
    assert_int_equal(bench_new_batches(b, seqs, hist, 64, NULL, NULL, 0), 0);

    bench_connect_now(b);
    n = bench_new_batches(b, seqs, hist, 64, NULL, NULL, 0);
    bool again = false;

    for (size_t i = 0; i < n; i++)
        again |= seqs[i] == first && hist[i];
    assert_true(again);
}

static void foreign_and_malformed_acks_are_ignored(void **state)
{
    struct bench *b = *state;
    uint8_t *buf, stream[ET_STREAM_ID_LEN];
    size_t len;

    bench_start(b, NULL);
    bench_connect_now(b);
    bench_run_for(b, 450);
    uint64_t before = bench_outbox_batches(b);

    assert_true(before >= 1);
    /* Another device's ack, even in this device's stream. */
    assert_true(bench_stream(b, stream));
    assert_int_equal(et_wire_encode_ack("other-dev", stream, 1000, NULL, 0, &buf, &len), 0);
    assert_int_equal(et_fake_broker_publish(b->broker, b->ack, buf, len, false), 0);
    free(buf);
    assert_int_equal(et_fake_client_inject(bench_client(b), b->ack, "\xff\xff\xff", 3), 0);
    assert_int_equal(et_agent_step(b->agent, b->stop[0], 0), 0);
    assert_true(bench_outbox_batches(b) >= before);
}

/* ---- streams -------------------------------------------------------------- */

/* Every stream id in the broker's log from index *i on: the agent's batches and Statuses. */
static size_t published_streams(struct bench *b, size_t *i, uint8_t (*ids)[ET_STREAM_ID_LEN],
                                size_t cap)
{
    const struct et_fake_message *p;
    size_t n = 0;
    char err[160];

    for (; (p = et_fake_broker_published(b->broker, *i)) != NULL; (*i)++) {
        Edgetel__V1__Batch *batch;
        Edgetel__V1__Status *st;

        assert_true(n < cap);
        if (strcmp(p->topic, b->telemetry) == 0) {
            assert_int_equal(et_wire_decode_batch(p->payload, p->len, &batch, err,
                                                  sizeof(err)), 0);
            assert_int_equal(batch->stream_id.len, ET_STREAM_ID_LEN);
            memcpy(ids[n++], batch->stream_id.data, ET_STREAM_ID_LEN);
            et_wire_free_batch(batch);
        } else if (strcmp(p->topic, b->status) == 0) {
            assert_int_equal(et_wire_decode_status(p->payload, p->len, &st, err,
                                                   sizeof(err)), 0);
            assert_int_equal(st->stream_id.len, ET_STREAM_ID_LEN);
            memcpy(ids[n++], st->stream_id.data, ET_STREAM_ID_LEN);
            edgetel__v1__status__free_unpacked(st, NULL);
        }
    }
    return n;
}

/*
 * Every batch (backlog, live, resent) and every Status names the outbox's
 * stream, the same across a restart of the agent on the same data
 * directory; another data directory has a stream of its own.
 */
static void every_batch_and_status_names_the_stream(void **state)
{
    struct bench *b = *state, other;
    uint8_t ids[512][ET_STREAM_ID_LEN], first[ET_STREAM_ID_LEN], theirs[ET_STREAM_ID_LEN];
    size_t i = 0, n, batches = 0;

    bench_start(b, NULL);
    bench_run_for(b, 1000);                 /* a backlog */
    bench_connect_now(b);
    bench_run_for(b, 2500);                 /* live batches, and resends (no acks) */
    n = published_streams(b, &i, ids, 512);
    assert_true(n >= 6);                    /* a Status, the backlog's window, resends */
    memcpy(first, ids[0], ET_STREAM_ID_LEN);
    for (size_t k = 0; k < n; k++)
        assert_memory_equal(ids[k], first, ET_STREAM_ID_LEN);
    batches = et_fake_broker_n_published(b->broker);

    bench_stop(b);
    bench_start(b, NULL);
    bench_connect_now(b);
    bench_run_for(b, 500);
    n = published_streams(b, &i, ids, 512);
    assert_true(n >= 2);
    for (size_t k = 0; k < n; k++)
        assert_memory_equal(ids[k], first, ET_STREAM_ID_LEN);
    assert_true(et_fake_broker_n_published(b->broker) > batches);

    /* A second board (its own data directory) on the same broker. */
    bench_init(&other, "unit-dev-2", b->broker);
    bench_start(&other, NULL);
    bench_run_for(&other, 500);
    assert_true(bench_stream(&other, theirs));
    assert_memory_not_equal(theirs, first, ET_STREAM_ID_LEN);
    bench_fini(&other);
}

/*
 * An Ack for another stream, a re-flashed board's earlier life, deletes
 * nothing, however much it says is stored; nor does one without a stream
 * (the legacy stream) in an outbox that never had legacy batches. The
 * outbox's own stream's Ack then deletes as usual.
 */
static void acks_for_another_stream_delete_nothing(void **state)
{
    struct bench *b = *state;
    uint8_t own[ET_STREAM_ID_LEN], old_life[ET_STREAM_ID_LEN];
    uint64_t seqs[64], all[] = { 1, 2, 3, 4, 5, 6, 7, 8 };
    bool hist[64];

    bench_start(b, NULL);
    bench_connect_now(b);
    bench_run_for(b, 1100);                 /* five batches made and sent */
    uint64_t before = bench_outbox_batches(b);
    size_t n = bench_new_batches(b, seqs, hist, 64, NULL, NULL, 0);

    assert_true(before >= 4);
    assert_true(n >= 4);
    assert_true(bench_stream(b, own));
    memset(old_life, 0xfa, sizeof(old_life));
    assert_memory_not_equal(old_life, own, sizeof(own));

    /* The old life was acknowledged through 500: none of it applies here,
     * however often the broker hands it over; said once a stream. */
    et_log_init("test_agent_uplink", ET_LOG_WARN);
    log_capture_start();
    for (int i = 0; i < 3; i++) {
        bench_send_ack_in(b, old_life, 500, all, 8);
        assert_true(bench_outbox_batches(b) >= before);
        bench_send_ack_in(b, NULL, 500, all, 8);
        assert_true(bench_outbox_batches(b) >= before);
    }
    assert_int_equal(log_capture_count("ignoring acks for stream fafafafa",
                                       "this outbox is stream", NULL), 1);
    assert_int_equal(log_capture_count("ignoring acks without a stream id", NULL), 1);
    log_capture_stop();
    et_log_init("test_agent_uplink", ET_LOG_INFO);   /* the other tests count info lines */
    /* Still unacknowledged: sent again after the ack timeout. */
    bench_run_for(b, 2100);
    n = bench_new_batches(b, seqs, hist, 64, NULL, NULL, 0);
    bool again = false;

    for (size_t i = 0; i < n; i++)
        again |= seqs[i] == 1;
    assert_true(again);

    /* This stream's ack deletes what it names. */
    before = bench_outbox_batches(b);
    bench_send_ack(b, 2, NULL, 0);
    assert_int_equal(bench_outbox_batches(b), before - 2);
}

static void seq_continues_after_restart(void **state)
{
    struct bench *b = *state;
    uint64_t seqs[64];
    bool hist[64];

    bench_start(b, NULL);
    bench_run_for(b, 1000);
    uint64_t made = bench_outbox_batches(b);

    bench_stop(b);                          /* the stop flushes the open batch too */
    bench_start(b, NULL);
    bench_connect_now(b);
    size_t n = bench_new_batches(b, seqs, hist, 64, NULL, NULL, 0);

    assert_true(n >= 1);
    assert_int_equal(seqs[0], 1);           /* the old rows are still there */
    bench_send_ack(b, seqs[n - 1], NULL, 0);
    bench_run_for(b, 250);
    n = bench_new_batches(b, seqs, hist, 64, NULL, NULL, 0);
    for (size_t i = 0; i < n; i++)
        if (!hist[i])
            assert_true(seqs[i] > made);    /* new seqs never reuse old ones */
}


/* ---- storage trouble and drain pacing -------------------------------------- */

static void backlog_drains_at_the_configured_rate_and_live_data_does_not_wait(void **state)
{
    struct bench *b = *state;
    uint64_t seqs[256];
    bool hist[256];
    size_t historical = 0, live = 0;

    bench_start(b, "insecure = true\ndrain_rate = 2\n");
    bench_run_for(b, 4000);                  /* a backlog of about 20 batches */
    assert_true(bench_outbox_batches(b) >= 15);
    bench_connect_now(b);
    /* Two seconds online, every batch acked as soon as it is out. */
    for (int t = 0; t < 40; t++) {
        size_t n = bench_new_batches(b, seqs, hist, 256, NULL, NULL, 0);

        for (size_t i = 0; i < n; i++) {
            historical += hist[i];
            live += !hist[i];
        }
        if (n)
            bench_send_ack(b, 0, seqs, n);
        bench_run_for(b, 50);
    }
    /* 2 batches a second: 4 or 5 in two seconds, not the whole backlog. */
    assert_true(historical >= 3 && historical <= 5);
    assert_true(live >= 8);                  /* a batch every 200 ms went at once */
}


/* ---- what the agent reports about itself ---------------------------------- */

/* Find the last value of metric in the telemetry published so far. */
static bool last_value(struct bench *b, const char *metric, struct et_wire_sample *out)
{
    Edgetel__V1__Batch *d;
    struct et_wire_named *s;
    bool found = false;
    size_t i = 0, n;

    while (bench_next_read_at(b, &i, &d, &s, &n)) {
        for (size_t k = 0; k < n; k++) {
            if (strcmp(s[k].name, metric) == 0) {
                *out = s[k].s;
                found = true;
            }
        }
        free(s);
        et_wire_free_batch(d);
    }
    return found;
}

static void each_collector_reports_its_health(void **state)
{
    struct bench *b = *state;
    struct et_wire_sample v;

    /* /proc/stat fails with an I/O error: the cpu collector cannot probe. */
    et_fake_fs_set_file("/proc/stat", NULL, 0, -EIO);
    bench_start(b, "insecure = true\n[collector cpu]\ntype = cpu\n");
    bench_run_for(b, 31000);                /* the agent's own metrics come every 30 s */
    bench_drain_all(b);
    assert_true(last_value(b, "agent.collector.sim.ok", &v));
    assert_true(v.u.b);
    assert_true(last_value(b, "agent.collector.cpu.ok", &v));
    assert_false(v.u.b);
    assert_true(last_value(b, "agent.collectors_failing", &v));
    assert_int_equal(v.u.i64, 1);
    assert_true(last_value(b, "agent.outbox_batches", &v));
}

static void collector_tags_go_with_its_metrics(void **state)
{
    struct bench *b = *state;
    Edgetel__V1__Batch *d;
    bool seen = false;
    size_t i = 0;

    bench_start(b, "insecure = true\n[collector room]\ntype = sim\ninterval = 1s\n"
                   "tags = room = kitchen, floor=1\n");
    bench_connect_now(b);
    bench_run_for(b, 1500);
    while ((d = bench_next_batch(b, &i)) != NULL) {
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
        cmocka_unit_test_setup_teardown(offline_backlog_drains_in_order_exactly_once, bench_setup, bench_teardown),
        cmocka_unit_test_setup_teardown(rows_stay_until_acked_and_resend_after_timeout, bench_setup, bench_teardown),
        cmocka_unit_test_setup_teardown(live_batches_overtake_the_backlog, bench_setup, bench_teardown),
        cmocka_unit_test_setup_teardown(reconnect_sends_unacked_again, bench_setup, bench_teardown),
        cmocka_unit_test_setup_teardown(foreign_and_malformed_acks_are_ignored, bench_setup, bench_teardown),
        cmocka_unit_test_setup_teardown(every_batch_and_status_names_the_stream, bench_setup, bench_teardown),
        cmocka_unit_test_setup_teardown(acks_for_another_stream_delete_nothing, bench_setup, bench_teardown),
        cmocka_unit_test_setup_teardown(seq_continues_after_restart, bench_setup, bench_teardown),
        cmocka_unit_test_setup_teardown(backlog_drains_at_the_configured_rate_and_live_data_does_not_wait, bench_setup, bench_teardown),
        cmocka_unit_test_setup_teardown(each_collector_reports_its_health, bench_setup, bench_teardown),
        cmocka_unit_test_setup_teardown(collector_tags_go_with_its_metrics, bench_setup, bench_teardown),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
