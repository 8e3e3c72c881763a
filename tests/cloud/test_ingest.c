/*
 * Aggregator ingest (cloud/ingest.c) against a real SQLite store and real
 * encoded protobuf: dedupe, identity checks, malformed input, what is
 * stored of a batch, two and three instances on one store, and a store
 * that refuses writes. The acks it computes are test_ack.c's, re-timing
 * test_retime.c's, group commit test_ingest_group.c's, Status messages
 * test_ingest_status.c's.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <sqlite3.h>

#include "cloud_test.h"
#include "edgetel/codec.h"
#include "edgetel/ingest.h"
#include "edgetel/log.h"
#include "edgetel/store.h"
#include "edgetel/store_open.h"

#define ROOT CLOUD_ROOT
#define NOW CLOUD_NOW
#define BASE_WALL CLOUD_BASE_WALL
#define BASE_MONO CLOUD_BASE_MONO

#define make_batch cloud_make_batch

#define setup cloud_fixture_setup
#define teardown cloud_fixture_teardown

static int64_t stored(struct cloud_fixture *f, const char *device, const char *metric)
{
    return cloud_stored(f->r, device, metric);
}

static struct et_store_device device_row(struct cloud_fixture *f, const char *device)
{
    return cloud_device(f->r, device);
}

static void test_store_then_duplicate(void **state)
{
    struct cloud_fixture *f = *state;
    struct et_ingest_reply r;

    assert_int_equal(cloud_ingest_batch(f->ig, "dev1", 1, 1, 4, &r), 0);
    assert_int_equal(r.kind, ET_INGEST_STORED);
    assert_true(r.new_device);
    assert_int_equal(r.seq, 1);
    cloud_assert_ack(&r, "dev1", 1, NULL, 0);
    assert_int_equal(stored(f, "dev1", "sim.counter"), 4);
    assert_int_equal(stored(f, "dev1", "sim.sine"), 2);

    /* The device missed the ack and sends the same batch again. */
    assert_int_equal(cloud_ingest_batch(f->ig, "dev1", 1, 1, 4, &r), 0);
    assert_int_equal(r.kind, ET_INGEST_DUPLICATE);
    assert_false(r.new_device);
    cloud_assert_ack(&r, "dev1", 1, NULL, 0);
    assert_int_equal(stored(f, "dev1", "sim.counter"), 4);
    assert_int_equal(stored(f, "dev1", "sim.sine"), 2);

    struct et_store_device d = device_row(f, "dev1");

    assert_int_equal(d.samples_stored, 6);
    assert_int_equal(d.batches_stored, 1);
    assert_int_equal(d.acked_through, 1);

    const struct et_ingest_stats *st = et_ingest_stats(f->ig);

    assert_int_equal(st->batches, 1);
    assert_int_equal(st->samples, 6);
    assert_int_equal(st->duplicates, 1);
    assert_int_equal(st->new_devices, 1);
    assert_int_equal(st->malformed, 0);
}

static void test_device_topic_mismatch(void **state)
{
    struct cloud_fixture *f = *state;
    struct et_ingest_reply r;
    size_t len;
    uint8_t *buf = make_batch("dev2", 1, 1, 3, &len);

    /* dev1's connection (the broker ties topic to certificate) sends a
     * batch claiming to be dev2's. */
    assert_int_equal(et_ingest_message(f->ig, ROOT "/v1/dev1/telemetry", buf, len, NOW, &r), 0);
    free(buf);
    assert_int_equal(r.kind, ET_INGEST_MALFORMED);
    assert_null(r.ack);
    assert_int_equal(et_ingest_stats(f->ig)->malformed, 1);
    assert_int_equal(stored(f, "dev1", "sim.counter"), 0);
    assert_int_equal(stored(f, "dev2", "sim.counter"), 0);
}

static void test_truncated_and_garbage(void **state)
{
    struct cloud_fixture *f = *state;
    struct et_ingest_reply r;
    size_t len;
    uint8_t *buf = make_batch("dev1", 1, 1, 3, &len);
    uint8_t garbage[40];

    /* The last field is oldest_seq (tag, value): cut the value off. */
    assert_int_equal(et_ingest_message(f->ig, ROOT "/v1/dev1/telemetry", buf, len - 1, NOW,
                                       &r), 0);
    assert_int_equal(r.kind, ET_INGEST_MALFORMED);
    assert_null(r.ack);

    memset(garbage, 0xff, sizeof(garbage));
    assert_int_equal(et_ingest_message(f->ig, ROOT "/v1/dev1/telemetry", garbage,
                                       sizeof(garbage), NOW, &r), 0);
    assert_int_equal(r.kind, ET_INGEST_MALFORMED);

    /* An empty payload decodes to a Batch without a device id. */
    assert_int_equal(et_ingest_message(f->ig, ROOT "/v1/dev1/telemetry", "", 0, NOW, &r), 0);
    assert_int_equal(r.kind, ET_INGEST_MALFORMED);
    assert_int_equal(et_ingest_stats(f->ig)->malformed, 3);
    assert_int_equal(stored(f, "dev1", "sim.counter"), 0);

    /* None of it was fatal: the whole batch still goes in. */
    assert_int_equal(et_ingest_message(f->ig, ROOT "/v1/dev1/telemetry", buf, len, NOW, &r), 0);
    assert_int_equal(r.kind, ET_INGEST_STORED);
    assert_int_equal(stored(f, "dev1", "sim.counter"), 3);
    free(buf);
}

/* Pack a Batch by hand: what et_batch_* can never produce. */
static uint8_t *pack_bad_batch(uint32_t metric_index, int64_t base_mono, uint64_t seq,
                              size_t *len)
{
    Edgetel__V1__Batch b = EDGETEL__V1__BATCH__INIT;
    Edgetel__V1__Metric m = EDGETEL__V1__METRIC__INIT;
    Edgetel__V1__Sample s = EDGETEL__V1__SAMPLE__INIT;
    Edgetel__V1__Metric *mp = &m;
    Edgetel__V1__Sample *sp = &s;
    uint8_t *buf;

    m.name = "sim.counter";
    m.unit = "1";
    s.metric = metric_index;
    s.value_case = EDGETEL__V1__SAMPLE__VALUE_I64;
    s.i64 = 1;
    b.device_id = "dev1";
    b.seq = seq;
    b.oldest_seq = 1;
    b.base_mono_ms = base_mono;
    b.base_wall_ms = BASE_WALL;
    b.n_metrics = 1;
    b.metrics = &mp;
    b.n_samples = 1;
    b.samples = &sp;
    *len = edgetel__v1__batch__get_packed_size(&b);
    buf = malloc(*len);
    assert_non_null(buf);
    edgetel__v1__batch__pack(&b, buf);
    return buf;
}

static void test_wrong_metric_index(void **state)
{
    struct cloud_fixture *f = *state;
    struct et_ingest_reply r;
    size_t len;
    uint8_t *buf;

    buf = pack_bad_batch(3, BASE_MONO, 1, &len);
    assert_int_equal(et_ingest_message(f->ig, ROOT "/v1/dev1/telemetry", buf, len, NOW, &r), 0);
    free(buf);
    assert_int_equal(r.kind, ET_INGEST_MALFORMED);
    assert_null(r.ack);

    /* A base time no clock has would overflow the wall time sum: an
     * impossible time, so the batch is quarantined (and acked), not summed. */
    buf = pack_bad_batch(0, INT64_MAX - 5, 2, &len);
    assert_int_equal(et_ingest_message(f->ig, ROOT "/v1/dev1/telemetry", buf, len, NOW, &r), 0);
    free(buf);
    assert_int_equal(r.kind, ET_INGEST_QUARANTINED);
    assert_int_equal(et_ingest_stats(f->ig)->quarantined, 1);

    /* The same batch with index 0 is fine. */
    buf = pack_bad_batch(0, BASE_MONO, 1, &len);
    assert_int_equal(et_ingest_message(f->ig, ROOT "/v1/dev1/telemetry", buf, len, NOW, &r), 0);
    free(buf);
    assert_int_equal(r.kind, ET_INGEST_STORED);
    assert_int_equal(et_ingest_stats(f->ig)->malformed, 1);
}

static void test_topics(void **state)
{
    struct cloud_fixture *f = *state;
    struct et_ingest_reply r;
    struct et_ingest *ig2;
    char dev[ET_DEVICE_ID_MAX + 1];
    const char *leaf;
    size_t len;
    uint8_t *buf = make_batch("dev1", 1, 1, 1, &len);

    assert_int_equal(et_ingest_parse_topic("edgetel", "edgetel/v1/pi-01/telemetry", dev,
                                           &leaf), 0);
    assert_string_equal(dev, "pi-01");
    assert_string_equal(leaf, "telemetry");
    assert_int_equal(et_ingest_parse_topic("edgetel", "other/v1/pi-01/telemetry", dev, &leaf),
                     -ENOENT);
    assert_int_equal(et_ingest_parse_topic("edgetel", "edgetelx/v1/pi/telemetry", dev, &leaf),
                     -ENOENT);
    assert_int_equal(et_ingest_parse_topic("edgetel", "edgetel/v1/.hidden/telemetry", dev,
                                           &leaf), -EINVAL);
    assert_int_equal(et_ingest_parse_topic("edgetel", "edgetel/v1//telemetry", dev, &leaf),
                     -EINVAL);
    assert_int_equal(et_ingest_parse_topic("edgetel", "edgetel/v1/pi-01", dev, &leaf), -EINVAL);

    assert_int_equal(et_ingest_message(f->ig, "edgetel/v1/dev1/config/report", buf, len, NOW,
                                       &r), 0);
    assert_int_equal(r.kind, ET_INGEST_IGNORED);
    assert_int_equal(et_ingest_message(f->ig, "edgetel/v1/d$v/telemetry", buf, len, NOW, &r),
                     0);
    assert_int_equal(r.kind, ET_INGEST_MALFORMED);
    assert_int_equal(stored(f, "dev1", "sim.counter"), 0);

    /* A root of several levels. */
    assert_int_equal(et_ingest_create(&ig2, f->w, "acme/site-3/edgetel"), 0);
    assert_int_equal(et_ingest_message(ig2, "acme/site-3/edgetel/v1/dev1/telemetry", buf, len,
                                       NOW, &r), 0);
    assert_int_equal(r.kind, ET_INGEST_STORED);
    assert_string_equal(r.ack_topic, "acme/site-3/edgetel/v1/dev1/ack");
    et_ingest_destroy(ig2);
    free(buf);

    assert_int_equal(et_ingest_create(&ig2, f->w, "edgetel/#"), -EINVAL);
    assert_int_equal(et_ingest_create(&ig2, f->w, ""), -EINVAL);
    assert_int_equal(et_ingest_create(&ig2, f->w, "edgetel/"), -EINVAL);
}

/* Wall time, typed values and time quality as stored. */
struct collected {
    struct et_store_sample s[8];
    char str[8][32];
    size_t n;
};

static int collect_cb(void *ctx, const struct et_store_sample *s)
{
    struct collected *c = ctx;

    assert_true(c->n < 8);
    c->s[c->n] = *s;
    if (s->value.type == ET_TYPE_STR) {
        snprintf(c->str[c->n], sizeof(c->str[c->n]), "%s", s->value.u.str);
        c->s[c->n].value.u.str = c->str[c->n];
    }
    c->s[c->n].device = c->s[c->n].metric = c->s[c->n].unit = NULL;
    c->n++;
    return 0;
}

static void test_times_values_quality(void **state)
{
    struct cloud_fixture *f = *state;
    struct et_batch_meta meta = {
        .device_id = "dev1", .seq = 7, .base_mono_ms = BASE_MONO, .base_wall_ms = BASE_WALL,
        .time_quality = ET_TQ_UNSYNCED, .oldest_seq = 7,
    };
    struct et_store_query q = {
        .device = "dev1", .metric = "x", .since_ms = INT64_MIN, .until_ms = INT64_MAX,
    };
    struct et_ingest_reply r;
    struct collected c = { .n = 0 };
    struct et_batch *b;
    struct et_value v;
    uint8_t *buf;
    size_t len;
    sqlite3 *db;
    sqlite3_stmt *st;

    assert_int_equal(et_batch_create(&b), 0);
    v = et_value_f64(21.5);
    assert_int_equal(et_batch_add(b, "x", "Cel", BASE_MONO - 2000, &v, ET_TQ_UNSYNCED), 0);
    v = et_value_i64(-42);
    assert_int_equal(et_batch_add(b, "x", "Cel", BASE_MONO + 3000, &v, ET_TQ_CORRECTED), 0);
    v = et_value_bool(true);
    assert_int_equal(et_batch_add(b, "x", "Cel", BASE_MONO + 4000, &v, ET_TQ_UNSYNCED), 0);
    v.type = ET_TYPE_STR;
    strcpy(v.u.str, "ok");
    assert_int_equal(et_batch_add(b, "x", "Cel", BASE_MONO + 5000, &v, ET_TQ_UNSYNCED), 0);
    assert_int_equal(et_batch_encode(b, &meta, &buf, &len), 0);
    et_batch_destroy(b);
    buf = realloc(buf, len + 2);
    len = et_batch_mark_historical(buf, len);

    assert_int_equal(et_ingest_message(f->ig, ROOT "/v1/dev1/telemetry", buf, len, NOW, &r), 0);
    free(buf);
    assert_int_equal(r.kind, ET_INGEST_STORED);
    assert_int_equal(et_store_query(f->r, &q, collect_cb, &c), 0);
    assert_int_equal(c.n, 4);
    assert_int_equal(c.s[0].ts_ms, BASE_WALL - 2000);
    assert_int_equal(c.s[0].mono_ms, BASE_MONO - 2000);
    assert_int_equal(c.s[0].value.type, ET_TYPE_F64);
    assert_true(c.s[0].value.u.f64 == 21.5);
    assert_int_equal(c.s[0].time_quality, ET_TQ_UNSYNCED);
    assert_int_equal(c.s[0].seq, 7);
    assert_int_equal(c.s[1].ts_ms, BASE_WALL + 3000);
    assert_int_equal(c.s[1].value.type, ET_TYPE_I64);
    assert_int_equal(c.s[1].value.u.i64, -42);
    assert_int_equal(c.s[1].time_quality, ET_TQ_CORRECTED);
    assert_int_equal(c.s[2].value.type, ET_TYPE_BOOL);
    assert_true(c.s[2].value.u.b);
    assert_int_equal(c.s[3].value.type, ET_TYPE_STR);
    assert_string_equal(c.s[3].value.u.str, "ok");
    assert_int_equal(c.s[3].ts_ms, BASE_WALL + 5000);

    /* The batch row: historical, boot id, received time (read from the SQLite file). */
    if (cloud_store_is_pg())
        return;
    assert_int_equal(sqlite3_open_v2(f->path, &db, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_prepare_v2(db, "SELECT historical, boot_id, received_ms,"
                                        " n_samples FROM batches WHERE device = 'dev1'"
                                        " AND seq = 7", -1, &st, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_step(st), SQLITE_ROW);
    assert_int_equal(sqlite3_column_int(st, 0), 1);
    assert_int_equal(strlen((const char *)sqlite3_column_text(st, 1)), 32);
    assert_int_equal(sqlite3_column_int64(st, 2), NOW);
    assert_int_equal(sqlite3_column_int(st, 3), 4);
    sqlite3_finalize(st);
    sqlite3_close(db);
}

/* Two aggregators on one store: the ack comes from the store, not memory. */
static void test_two_instances(void **state)
{
    struct cloud_fixture *f = *state;
    struct et_store *store2;
    struct et_ingest *ig2;
    struct et_ingest_reply r;
    char err[256], topic[] = ROOT "/v1/dev1/telemetry";
    uint8_t *b1, *b2, *b3;
    size_t l1, l2, l3;
    uint64_t sel = 3;

    assert_int_equal(et_store_open(&store2, f->type, f->path, 0, err, sizeof(err)), 0);
    assert_int_equal(et_ingest_create(&ig2, et_store_writer(store2), ROOT), 0);
    b1 = make_batch("dev1", 1, 1, 2, &l1);
    b2 = make_batch("dev1", 2, 1, 2, &l2);
    b3 = make_batch("dev1", 3, 1, 2, &l3);

    assert_int_equal(et_ingest_message(f->ig, topic, b1, l1, NOW, &r), 0);
    cloud_assert_ack(&r, "dev1", 1, NULL, 0);
    assert_int_equal(et_ingest_message(ig2, topic, b3, l3, NOW, &r), 0);
    cloud_assert_ack(&r, "dev1", 1, &sel, 1);
    assert_int_equal(et_ingest_message(f->ig, topic, b2, l2, NOW, &r), 0);
    cloud_assert_ack(&r, "dev1", 3, NULL, 0);
    /* Redelivered to the other instance. */
    assert_int_equal(et_ingest_message(ig2, topic, b2, l2, NOW, &r), 0);
    assert_int_equal(r.kind, ET_INGEST_DUPLICATE);
    cloud_assert_ack(&r, "dev1", 3, NULL, 0);
    assert_int_equal(stored(f, "dev1", "sim.counter"), 6);

    free(b1);
    free(b2);
    free(b3);
    et_ingest_destroy(ig2);
    et_store_close(store2);
}

/*
 * Three instances at once on one store, each with its own connection, as
 * three aggregator processes would run: two split the seqs between them and
 * the third receives every batch again (redelivery). The write lock makes
 * them take turns; nobody may fail, nothing may be stored twice, and the
 * last ack must cover everything.
 */
#define RACE_BATCHES 120

struct racer {
    const char *path;
    uint64_t first, step;        /* seqs first, first + step, ... */
    int failures;
    uint64_t max_ack;
};

static void *race(void *arg)
{
    struct racer *r = arg;
    struct et_store *store = NULL;
    struct et_ingest *ig = NULL;
    struct et_ingest_reply reply;
    char err[256];
    uint8_t *buf;
    size_t len;

    if (et_store_open(&store, NULL, r->path, 0, err, sizeof(err)) < 0) {
        print_error("racer %llu: opening the store: %s\n", (unsigned long long)r->first, err);
        r->failures++;
        goto out;
    }
    if (et_ingest_create(&ig, et_store_writer(store), ROOT) < 0) {
        r->failures++;
        goto out;
    }
    for (uint64_t seq = r->first; seq <= RACE_BATCHES; seq += r->step) {
        buf = make_batch("dev1", seq, 1, 2, &len);
        int ret = et_ingest_message(ig, ROOT "/v1/dev1/telemetry", buf, len, NOW, &reply);

        if (ret < 0 || (reply.kind != ET_INGEST_STORED && reply.kind != ET_INGEST_DUPLICATE)) {
            print_error("racer %llu: seq %llu: %d, kind %d\n", (unsigned long long)r->first,
                        (unsigned long long)seq, ret, (int)reply.kind);
            r->failures++;
        }
        else if (reply.acked_through > r->max_ack)
            r->max_ack = reply.acked_through;
        free(buf);
    }
out:
    et_ingest_destroy(ig);
    et_store_close(store);
    return NULL;
}

static void test_concurrent_instances(void **state)
{
    struct cloud_fixture *f = *state;
    struct racer r[3] = {
        { .path = f->path, .first = 1, .step = 2 },
        { .path = f->path, .first = 2, .step = 2 },
        { .path = f->path, .first = 1, .step = 1 },
    };
    pthread_t th[3];
    struct et_ingest_reply reply;
    size_t len;
    uint8_t *buf;

    for (int i = 0; i < 3; i++)
        assert_int_equal(pthread_create(&th[i], NULL, race, &r[i]), 0);
    for (int i = 0; i < 3; i++)
        assert_int_equal(pthread_join(th[i], NULL), 0);
    for (int i = 0; i < 3; i++)
        assert_int_equal(r[i].failures, 0);
    assert_int_equal(stored(f, "dev1", "sim.counter"), 2 * RACE_BATCHES);
    assert_int_equal(device_row(f, "dev1").batches_stored, RACE_BATCHES);
    assert_int_equal(device_row(f, "dev1").samples_stored, 3 * RACE_BATCHES);

    /* Whoever committed last saw the whole run; a resend confirms it. */
    assert_true(r[0].max_ack == RACE_BATCHES || r[1].max_ack == RACE_BATCHES ||
                r[2].max_ack == RACE_BATCHES);
    buf = make_batch("dev1", 1, 1, 2, &len);
    assert_int_equal(et_ingest_message(f->ig, ROOT "/v1/dev1/telemetry", buf, len, NOW,
                                       &reply), 0);
    free(buf);
    assert_int_equal(reply.kind, ET_INGEST_DUPLICATE);
    cloud_assert_ack(&reply, "dev1", RACE_BATCHES, NULL, 0);
}

/* A writer whose calls a test makes fail: its ops swapped for a copy. */
static int refuse_begin(struct et_store_writer *w)
{
    return -EROFS;
}

static int fail_sample(struct et_store_writer *w, const struct et_store_sample *smp, int64_t *id)
{
    return -EIO;
}

static void test_store_refuses(void **state)
{
    struct cloud_fixture *f = *state;
    const struct et_store_writer_ops *real = f->w->ops;
    struct et_store_writer_ops refusing = *real;
    struct et_store *ro;
    struct et_ingest *ig2;
    struct et_ingest_reply r;
    char err[256];
    size_t len;
    uint8_t *buf = make_batch("dev1", 1, 1, 2, &len);

    /* A store opened read-only has no writer to ingest with. */
    assert_int_equal(et_store_open(&ro, f->type, f->path, ET_STORE_READONLY, err,
                                   sizeof(err)), 0);
    assert_null(et_store_writer(ro));
    assert_int_equal(et_ingest_create(&ig2, et_store_writer(ro), ROOT), -EINVAL);
    et_store_close(ro);

    /* A store that refuses the transaction. */
    refusing.begin = refuse_begin;
    f->w->ops = &refusing;
    assert_int_equal(et_ingest_create(&ig2, f->w, ROOT), 0);
    assert_true(et_ingest_message(ig2, ROOT "/v1/dev1/telemetry", buf, len, NOW, &r) < 0);
    assert_int_equal(r.kind, ET_INGEST_NONE);
    assert_null(r.ack);
    assert_int_equal(et_ingest_stats(ig2)->store_errors, 1);

    /* One that fails half way, after the device and metric rows. */
    refusing = *real;
    refusing.insert_sample = fail_sample;
    assert_true(et_ingest_message(ig2, ROOT "/v1/dev1/telemetry", buf, len, NOW, &r) < 0);
    assert_int_equal(r.kind, ET_INGEST_NONE);
    assert_null(r.ack);
    assert_int_equal(et_ingest_stats(ig2)->store_errors, 2);
    et_ingest_destroy(ig2);
    f->w->ops = real;

    /* Nothing half-written: the writable instance stores it in full. */
    assert_int_equal(et_ingest_message(f->ig, ROOT "/v1/dev1/telemetry", buf, len, NOW, &r), 0);
    assert_int_equal(r.kind, ET_INGEST_STORED);
    assert_true(r.new_device);
    assert_int_equal(stored(f, "dev1", "sim.counter"), 2);
    free(buf);
}

/* Tags arrive on the Metric and are kept with it; the latest batch wins. */
static int tags_cb(void *ctx, const struct et_store_metric *m)
{
    if (strcmp(m->name, "room.temp") == 0)
        snprintf(ctx, ET_TAGS_TEXT_MAX, "%s", m->tags);
    return 0;
}

static void metric_tags_are_stored(void **state)
{
    struct cloud_fixture *f = *state;
    struct et_batch_meta meta = { .device_id = "dev-t", .seq = 1, .oldest_seq = 1,
                                  .time_quality = ET_TQ_SYNCED, .base_mono_ms = BASE_MONO,
                                  .base_wall_ms = BASE_WALL };
    struct et_ingest_reply r;
    struct et_value v = et_value_f64(20.5);
    char tags[ET_TAGS_TEXT_MAX] = "";
    struct et_batch *b;
    uint8_t *buf;
    size_t len;

    for (int round = 0; round < 2; round++) {
        assert_int_equal(et_batch_create(&b), 0);
        assert_int_equal(et_batch_add_tagged(b, "room.temp", "Cel",
                                             round ? "room=hall" : "room=kitchen,floor=1",
                                             BASE_MONO, &v, ET_TQ_SYNCED), 0);
        meta.seq = (uint64_t)round + 1;
        assert_int_equal(et_batch_encode(b, &meta, &buf, &len), 0);
        assert_int_equal(et_ingest_message(f->ig, ROOT "/v1/dev-t/telemetry", buf, len, NOW, &r),
                         0);
        assert_int_equal(r.kind, ET_INGEST_STORED);
        assert_int_equal(et_store_metrics(f->r, "dev-t", tags_cb, tags), 0);
        assert_string_equal(tags, round ? "room=hall" : "room=kitchen,floor=1");
        free(buf);
        et_batch_destroy(b);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_store_then_duplicate, setup, teardown),
        cmocka_unit_test_setup_teardown(test_device_topic_mismatch, setup, teardown),
        cmocka_unit_test_setup_teardown(test_truncated_and_garbage, setup, teardown),
        cmocka_unit_test_setup_teardown(test_wrong_metric_index, setup, teardown),
        cmocka_unit_test_setup_teardown(test_topics, setup, teardown),
        cmocka_unit_test_setup_teardown(test_times_values_quality, setup, teardown),
        cmocka_unit_test_setup_teardown(test_two_instances, setup, teardown),
        cmocka_unit_test_setup_teardown(test_concurrent_instances, setup, teardown),
        cmocka_unit_test_setup_teardown(test_store_refuses, setup, teardown),
        cmocka_unit_test_setup_teardown(metric_tags_are_stored, setup, teardown),
    };

    /* Malformed input is logged as a warning; keep the test output short. */
    et_log_init("test_ingest", ET_LOG_ERROR);
    return cmocka_run_group_tests(tests, NULL, NULL);
}
