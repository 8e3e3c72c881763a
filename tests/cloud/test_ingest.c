/*
 * Aggregator ingest against a real SQLite store and real encoded protobuf:
 * dedupe, the cumulative ack over gaps, reordering and evicted seqs,
 * identity checks, malformed input, status messages, two instances on one
 * store, and a store that refuses writes.
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

#include "edgetel/codec.h"
#include "edgetel/ingest.h"
#include "edgetel/log.h"
#include "edgetel/store.h"

#define ROOT "edgetel"
#define NOW 1795000100000LL
#define BASE_WALL 1795000000000LL
#define BASE_MONO 500000LL

struct fixture {
    char dir[64];
    char path[128];
    struct et_store *store;
    struct et_ingest *ig;
};

static int setup(void **state)
{
    struct fixture *f = calloc(1, sizeof(*f));
    char err[256];

    assert_non_null(f);
    snprintf(f->dir, sizeof(f->dir), "/tmp/et-ingest-XXXXXX");
    assert_non_null(mkdtemp(f->dir));
    snprintf(f->path, sizeof(f->path), "%s/agg.db", f->dir);
    assert_int_equal(et_store_open(&f->store, "sqlite", f->path, 0, err, sizeof(err)), 0);
    assert_int_equal(et_ingest_create(&f->ig, f->store, ROOT), 0);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fixture *f = *state;
    char p[192];

    et_ingest_destroy(f->ig);
    et_store_close(f->store);
    unlink(f->path);
    snprintf(p, sizeof(p), "%s-wal", f->path);
    unlink(p);
    snprintf(p, sizeof(p), "%s-shm", f->path);
    unlink(p);
    rmdir(f->dir);
    free(f);
    return 0;
}

/*
 * An encoded batch of n samples: "sim.counter" (i64 = seq * 100 + i) every
 * 1000 ms from BASE_MONO, and on even i also "sim.sine" (f64).
 */
static uint8_t *make_batch(const char *device, uint64_t seq, uint64_t oldest, size_t n,
                           size_t *len)
{
    struct et_batch_meta meta = {
        .device_id = device,
        .seq = seq,
        .base_mono_ms = BASE_MONO,
        .base_wall_ms = BASE_WALL,
        .time_quality = ET_TQ_SYNCED,
        .oldest_seq = oldest,
    };
    struct et_batch *b;
    struct et_value v;
    uint8_t *buf;

    memset(meta.boot_id, 0xab, sizeof(meta.boot_id));
    assert_int_equal(et_batch_create(&b), 0);
    for (size_t i = 0; i < n; i++) {
        v = et_value_i64((int64_t)(seq * 100 + i));
        assert_int_equal(et_batch_add(b, "sim.counter", "1", BASE_MONO + (int64_t)i * 1000,
                                      &v, ET_TQ_SYNCED), 0);
        if (i % 2 == 0) {
            v = et_value_f64(0.5 * (double)i);
            assert_int_equal(et_batch_add(b, "sim.sine", "1", BASE_MONO + (int64_t)i * 1000,
                                          &v, ET_TQ_SYNCED), 0);
        }
    }
    assert_int_equal(et_batch_encode(b, &meta, &buf, len), 0);
    et_batch_destroy(b);
    return buf;
}

static int ingest_batch(struct fixture *f, const char *device, uint64_t seq, uint64_t oldest,
                        size_t n, struct et_ingest_reply *r)
{
    char topic[128];
    size_t len;
    uint8_t *buf = make_batch(device, seq, oldest, n, &len);
    int ret;

    snprintf(topic, sizeof(topic), ROOT "/v1/%s/telemetry", device);
    ret = et_ingest_message(f->ig, topic, buf, len, NOW, r);
    free(buf);
    return ret;
}

/* Decode the reply's Ack and check it says exactly this. */
static void assert_ack(const struct et_ingest_reply *r, const char *device, uint64_t through,
                       const uint64_t *seqs, size_t n_seqs)
{
    Edgetel__V1__Ack *ack = NULL;
    char err[128], topic[128];

    snprintf(topic, sizeof(topic), ROOT "/v1/%s/ack", device);
    assert_non_null(r->ack);
    assert_string_equal(r->ack_topic, topic);
    assert_int_equal(et_wire_decode_ack(r->ack, r->ack_len, &ack, err, sizeof(err)), 0);
    assert_string_equal(ack->device_id, device);
    assert_int_equal(ack->acked_through, through);
    assert_int_equal(r->acked_through, through);
    assert_int_equal(ack->n_seqs, n_seqs);
    for (size_t i = 0; i < n_seqs; i++)
        assert_int_equal(ack->seqs[i], seqs[i]);
    edgetel__v1__ack__free_unpacked(ack, NULL);
}

static int count_cb(void *ctx, const struct et_store_sample *s)
{
    (*(int64_t *)ctx)++;
    return 0;
}

static int64_t stored(struct fixture *f, const char *device, const char *metric)
{
    struct et_store_query q = {
        .device = device, .metric = metric, .since_ms = INT64_MIN, .until_ms = INT64_MAX,
    };
    int64_t n = 0;

    assert_int_equal(et_store_query(f->store, &q, count_cb, &n), 0);
    return n;
}

static int device_cb(void *ctx, const struct et_store_device *d)
{
    struct et_store_device *out = ctx;

    /* Copy the scalars; the strings die with the callback. */
    *out = *d;
    out->id = out->boot_id_hex = out->agent_version = out->reason = NULL;
    return 0;
}

static struct et_store_device device_row(struct fixture *f, const char *device)
{
    struct et_store_device d = { .id = NULL };

    d.samples_stored = UINT64_MAX;   /* stays so if the device is missing */
    assert_int_equal(et_store_devices(f->store, device, device_cb, &d), 0);
    assert_int_not_equal(d.samples_stored, UINT64_MAX);
    return d;
}

static void test_store_then_duplicate(void **state)
{
    struct fixture *f = *state;
    struct et_ingest_reply r;

    assert_int_equal(ingest_batch(f, "dev1", 1, 1, 4, &r), 0);
    assert_int_equal(r.kind, ET_INGEST_STORED);
    assert_true(r.new_device);
    assert_int_equal(r.seq, 1);
    assert_ack(&r, "dev1", 1, NULL, 0);
    assert_int_equal(stored(f, "dev1", "sim.counter"), 4);
    assert_int_equal(stored(f, "dev1", "sim.sine"), 2);

    /* The device missed the ack and sends the same batch again. */
    assert_int_equal(ingest_batch(f, "dev1", 1, 1, 4, &r), 0);
    assert_int_equal(r.kind, ET_INGEST_DUPLICATE);
    assert_false(r.new_device);
    assert_ack(&r, "dev1", 1, NULL, 0);
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

static void test_gaps_and_reordering(void **state)
{
    struct fixture *f = *state;
    struct et_ingest_reply r;
    uint64_t sel;

    assert_int_equal(ingest_batch(f, "dev1", 1, 1, 1, &r), 0);
    assert_ack(&r, "dev1", 1, NULL, 0);

    /* 3 before 2: the ack stays at 1 and names 3 selectively. */
    assert_int_equal(ingest_batch(f, "dev1", 3, 2, 1, &r), 0);
    assert_int_equal(r.kind, ET_INGEST_STORED);
    sel = 3;
    assert_ack(&r, "dev1", 1, &sel, 1);

    /* 2 fills the gap: the ack jumps over 3. */
    assert_int_equal(ingest_batch(f, "dev1", 2, 2, 1, &r), 0);
    assert_int_equal(r.kind, ET_INGEST_STORED);
    assert_ack(&r, "dev1", 3, NULL, 0);

    assert_int_equal(ingest_batch(f, "dev1", 6, 4, 1, &r), 0);
    sel = 6;
    assert_ack(&r, "dev1", 3, &sel, 1);
    assert_int_equal(ingest_batch(f, "dev1", 5, 4, 1, &r), 0);
    sel = 5;
    assert_ack(&r, "dev1", 3, &sel, 1);
    assert_int_equal(ingest_batch(f, "dev1", 4, 4, 1, &r), 0);
    assert_ack(&r, "dev1", 6, NULL, 0);

    /* A late duplicate of an acked seq is acked with the current state. */
    assert_int_equal(ingest_batch(f, "dev1", 2, 2, 1, &r), 0);
    assert_int_equal(r.kind, ET_INGEST_DUPLICATE);
    assert_ack(&r, "dev1", 6, NULL, 0);
    assert_int_equal(stored(f, "dev1", "sim.counter"), 6);

    /* Another device's seqs are its own. */
    assert_int_equal(ingest_batch(f, "dev2", 2, 1, 1, &r), 0);
    assert_int_equal(r.kind, ET_INGEST_STORED);
    sel = 2;
    assert_ack(&r, "dev2", 0, &sel, 1);
}

static void test_oldest_seq_steps_over_evicted(void **state)
{
    struct fixture *f = *state;
    struct et_ingest_reply r;
    uint64_t sel;

    /* The device evicted 1..9 while offline and still holds 10..12. */
    assert_int_equal(ingest_batch(f, "dev1", 12, 10, 2, &r), 0);
    assert_int_equal(r.kind, ET_INGEST_STORED);
    sel = 12;
    assert_ack(&r, "dev1", 9, &sel, 1);
    assert_int_equal(ingest_batch(f, "dev1", 10, 10, 2, &r), 0);
    assert_ack(&r, "dev1", 10, NULL, 0);
    assert_int_equal(ingest_batch(f, "dev1", 11, 10, 2, &r), 0);
    assert_ack(&r, "dev1", 12, NULL, 0);

    /* It evicted 13..19 too; 20 arrives with oldest 20, then again. */
    assert_int_equal(ingest_batch(f, "dev1", 20, 20, 1, &r), 0);
    assert_ack(&r, "dev1", 20, NULL, 0);
    assert_int_equal(ingest_batch(f, "dev1", 20, 20, 1, &r), 0);
    assert_int_equal(r.kind, ET_INGEST_DUPLICATE);
    assert_ack(&r, "dev1", 20, NULL, 0);

    /* An old oldest_seq never lowers the ack. */
    assert_int_equal(ingest_batch(f, "dev1", 22, 1, 1, &r), 0);
    sel = 22;
    assert_ack(&r, "dev1", 20, &sel, 1);
}

static void test_long_run_of_stored_seqs(void **state)
{
    struct fixture *f = *state;
    struct et_ingest_reply r;
    uint64_t sel;

    /* Backlog arrives newest first past the store's scan page (512). */
    for (uint64_t seq = 1300; seq >= 2; seq--) {
        assert_int_equal(ingest_batch(f, "dev1", seq, 1, 1, &r), 0);
        assert_int_equal(r.kind, ET_INGEST_STORED);
        sel = seq;
        assert_ack(&r, "dev1", 0, &sel, 1);
    }
    assert_int_equal(ingest_batch(f, "dev1", 1, 1, 1, &r), 0);
    assert_ack(&r, "dev1", 1300, NULL, 0);
}

static void test_device_topic_mismatch(void **state)
{
    struct fixture *f = *state;
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
    struct fixture *f = *state;
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
static uint8_t *pack_bad_batch(uint32_t metric_index, int64_t base_mono, size_t *len)
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
    b.seq = 1;
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
    struct fixture *f = *state;
    struct et_ingest_reply r;
    size_t len;
    uint8_t *buf;

    buf = pack_bad_batch(3, BASE_MONO, &len);
    assert_int_equal(et_ingest_message(f->ig, ROOT "/v1/dev1/telemetry", buf, len, NOW, &r), 0);
    free(buf);
    assert_int_equal(r.kind, ET_INGEST_MALFORMED);
    assert_null(r.ack);

    /* A base time no clock has would overflow the wall time sum. */
    buf = pack_bad_batch(0, INT64_MAX - 5, &len);
    assert_int_equal(et_ingest_message(f->ig, ROOT "/v1/dev1/telemetry", buf, len, NOW, &r), 0);
    free(buf);
    assert_int_equal(r.kind, ET_INGEST_MALFORMED);

    /* The same batch with index 0 is fine. */
    buf = pack_bad_batch(0, BASE_MONO, &len);
    assert_int_equal(et_ingest_message(f->ig, ROOT "/v1/dev1/telemetry", buf, len, NOW, &r), 0);
    free(buf);
    assert_int_equal(r.kind, ET_INGEST_STORED);
    assert_int_equal(et_ingest_stats(f->ig)->malformed, 2);
}

static void test_topics(void **state)
{
    struct fixture *f = *state;
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
    assert_int_equal(et_ingest_create(&ig2, f->store, "acme/site-3/edgetel"), 0);
    assert_int_equal(et_ingest_message(ig2, "acme/site-3/edgetel/v1/dev1/telemetry", buf, len,
                                       NOW, &r), 0);
    assert_int_equal(r.kind, ET_INGEST_STORED);
    assert_string_equal(r.ack_topic, "acme/site-3/edgetel/v1/dev1/ack");
    et_ingest_destroy(ig2);
    free(buf);

    assert_int_equal(et_ingest_create(&ig2, f->store, "edgetel/#"), -EINVAL);
    assert_int_equal(et_ingest_create(&ig2, f->store, ""), -EINVAL);
    assert_int_equal(et_ingest_create(&ig2, f->store, "edgetel/"), -EINVAL);
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
    struct fixture *f = *state;
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
    assert_int_equal(et_store_query(f->store, &q, collect_cb, &c), 0);
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

    /* The batch row: historical, boot id, received time. */
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

static uint8_t *pack_status(const char *device, bool online, const char *reason, size_t *len)
{
    Edgetel__V1__Status s = EDGETEL__V1__STATUS__INIT;
    uint8_t boot[ET_BOOT_ID_LEN];
    uint8_t *buf;

    memset(boot, 0x11, sizeof(boot));
    s.device_id = (char *)device;
    s.online = online;
    s.boot_id.data = boot;
    s.boot_id.len = sizeof(boot);
    s.wall_ms = BASE_WALL;
    s.agent_version = "0.1.0";
    s.outbox_batches = 17;
    s.dropped_samples = 3;
    s.clock_synced = true;
    s.reason = (char *)reason;
    *len = edgetel__v1__status__get_packed_size(&s);
    buf = malloc(*len ? *len : 1);
    assert_non_null(buf);
    edgetel__v1__status__pack(&s, buf);
    return buf;
}

struct device_copy {
    struct et_store_device d;
    char agent_version[32];
    char reason[64];
    char boot[40];
};

static int device_copy_cb(void *ctx, const struct et_store_device *d)
{
    struct device_copy *c = ctx;

    c->d = *d;
    snprintf(c->agent_version, sizeof(c->agent_version), "%s", d->agent_version);
    snprintf(c->reason, sizeof(c->reason), "%s", d->reason);
    snprintf(c->boot, sizeof(c->boot), "%s", d->boot_id_hex);
    c->d.id = NULL;
    return 0;
}

static void test_status(void **state)
{
    struct fixture *f = *state;
    struct et_ingest_reply r;
    struct device_copy c;
    size_t len;
    uint8_t *buf;

    buf = pack_status("dev1", true, "", &len);
    assert_int_equal(et_ingest_message(f->ig, ROOT "/v1/dev1/status", buf, len, NOW, &r), 0);
    free(buf);
    assert_int_equal(r.kind, ET_INGEST_STATUS);
    assert_true(r.new_device);
    assert_null(r.ack);
    memset(&c, 0, sizeof(c));
    assert_int_equal(et_store_devices(f->store, "dev1", device_copy_cb, &c), 0);
    assert_true(c.d.online);
    assert_true(c.d.has_status);
    assert_int_equal(c.d.outbox_batches, 17);
    assert_int_equal(c.d.dropped_samples, 3);
    assert_true(c.d.clock_synced);
    assert_string_equal(c.agent_version, "0.1.0");
    assert_string_equal(c.boot, "11111111111111111111111111111111");
    assert_int_equal(c.d.last_seen_ms, NOW);

    /* The last will. */
    buf = pack_status("dev1", false, "connection lost", &len);
    assert_int_equal(et_ingest_message(f->ig, ROOT "/v1/dev1/status", buf, len, NOW + 5, &r), 0);
    free(buf);
    assert_int_equal(r.kind, ET_INGEST_STATUS);
    assert_false(r.new_device);
    assert_int_equal(et_store_devices(f->store, "dev1", device_copy_cb, &c), 0);
    assert_false(c.d.online);
    assert_string_equal(c.reason, "connection lost");
    /* The will is the broker speaking, not the device being heard. */
    assert_int_equal(c.d.last_seen_ms, NOW);

    /* Someone else's status on dev1's topic, and a cleared retained one. */
    buf = pack_status("dev2", true, "", &len);
    assert_int_equal(et_ingest_message(f->ig, ROOT "/v1/dev1/status", buf, len, NOW, &r), 0);
    free(buf);
    assert_int_equal(r.kind, ET_INGEST_MALFORMED);
    assert_int_equal(et_ingest_message(f->ig, ROOT "/v1/dev1/status", "", 0, NOW, &r), 0);
    assert_int_equal(r.kind, ET_INGEST_IGNORED);
    assert_int_equal(et_store_devices(f->store, "dev1", device_copy_cb, &c), 0);
    assert_false(c.d.online);
    assert_int_equal(et_ingest_stats(f->ig)->statuses, 2);
}

/* Two aggregators on one store: the ack comes from the store, not memory. */
static void test_two_instances(void **state)
{
    struct fixture *f = *state;
    struct et_store *store2;
    struct et_ingest *ig2;
    struct et_ingest_reply r;
    char err[256], topic[] = ROOT "/v1/dev1/telemetry";
    uint8_t *b1, *b2, *b3;
    size_t l1, l2, l3;
    uint64_t sel = 3;

    assert_int_equal(et_store_open(&store2, "sqlite", f->path, 0, err, sizeof(err)), 0);
    assert_int_equal(et_ingest_create(&ig2, store2, ROOT), 0);
    b1 = make_batch("dev1", 1, 1, 2, &l1);
    b2 = make_batch("dev1", 2, 1, 2, &l2);
    b3 = make_batch("dev1", 3, 1, 2, &l3);

    assert_int_equal(et_ingest_message(f->ig, topic, b1, l1, NOW, &r), 0);
    assert_ack(&r, "dev1", 1, NULL, 0);
    assert_int_equal(et_ingest_message(ig2, topic, b3, l3, NOW, &r), 0);
    assert_ack(&r, "dev1", 1, &sel, 1);
    assert_int_equal(et_ingest_message(f->ig, topic, b2, l2, NOW, &r), 0);
    assert_ack(&r, "dev1", 3, NULL, 0);
    /* Redelivered to the other instance. */
    assert_int_equal(et_ingest_message(ig2, topic, b2, l2, NOW, &r), 0);
    assert_int_equal(r.kind, ET_INGEST_DUPLICATE);
    assert_ack(&r, "dev1", 3, NULL, 0);
    assert_int_equal(stored(f, "dev1", "sim.counter"), 6);

    free(b1);
    free(b2);
    free(b3);
    et_ingest_destroy(ig2);
    et_store_close(store2);
}

/* A batch of n "sim.counter" samples, 1 s apart from base_mono, of one boot. */
static uint8_t *make_timed_batch(const char *device, uint64_t seq, uint8_t boot,
                                 enum et_time_quality tq, int64_t base_wall, int64_t base_mono,
                                 size_t n, size_t *len)
{
    struct et_batch_meta meta = {
        .device_id = device, .seq = seq, .base_mono_ms = base_mono, .base_wall_ms = base_wall,
        .time_quality = tq, .oldest_seq = 1,
    };
    struct et_batch *b;
    struct et_value v;
    uint8_t *buf;

    memset(meta.boot_id, boot, sizeof(meta.boot_id));
    assert_int_equal(et_batch_create(&b), 0);
    for (size_t i = 0; i < n; i++) {
        v = et_value_i64((int64_t)(seq * 100 + i));
        assert_int_equal(et_batch_add(b, "sim.counter", "1", base_mono + (int64_t)i * 1000, &v,
                                      tq), 0);
    }
    assert_int_equal(et_batch_encode(b, &meta, &buf, len), 0);
    et_batch_destroy(b);
    return buf;
}

static void ingest_timed(struct fixture *f, const char *device, uint64_t seq, uint8_t boot,
                         enum et_time_quality tq, int64_t base_wall, int64_t base_mono,
                         enum et_ingest_kind want)
{
    struct et_ingest_reply r;
    char topic[128];
    size_t len;
    uint8_t *buf = make_timed_batch(device, seq, boot, tq, base_wall, base_mono, 2, &len);

    snprintf(topic, sizeof(topic), ROOT "/v1/%s/telemetry", device);
    assert_int_equal(et_ingest_message(f->ig, topic, buf, len, NOW, &r), 0);
    assert_int_equal(r.kind, want);
    free(buf);
}

/* The (ts_ms, time_quality) of the two samples of (device, seq). */
static void assert_times(struct fixture *f, const char *device, uint64_t seq, int64_t ts0,
                         enum et_time_quality tq)
{
    sqlite3 *db;
    sqlite3_stmt *st;
    int rows = 0;

    assert_int_equal(sqlite3_open_v2(f->path, &db, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_prepare_v2(db, "SELECT s.ts_ms, s.time_quality FROM samples s"
                                        " JOIN metrics m ON m.id = s.metric_id"
                                        " WHERE m.device = ?1 AND s.seq = ?2 ORDER BY s.mono_ms",
                                        -1, &st, NULL), SQLITE_OK);
    sqlite3_bind_text(st, 1, device, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 2, (int64_t)seq);
    while (sqlite3_step(st) == SQLITE_ROW) {
        if (sqlite3_column_int64(st, 0) != ts0 + rows * 1000 || sqlite3_column_int(st, 1) != (int)tq)
            fail_msg("%s seq %llu sample %d: ts %lld quality %d, want ts %lld quality %d", device,
                     (unsigned long long)seq, rows, (long long)sqlite3_column_int64(st, 0),
                     sqlite3_column_int(st, 1), (long long)(ts0 + rows * 1000), (int)tq);
        rows++;
    }
    sqlite3_finalize(st);
    sqlite3_close(db);
    assert_int_equal(rows, 2);
}

static void test_retime_unsynced_boot(void **state)
{
    struct fixture *f = *state;
    /* Before sync the board believes it is early 1970. */
    const int64_t bogus = 100000;

    /* Boot 0xaa, clock not yet synchronised; dev2 happens to share the boot id. */
    ingest_timed(f, "dev1", 1, 0xaa, ET_TQ_UNSYNCED, bogus, 50000, ET_INGEST_STORED);
    ingest_timed(f, "dev2", 1, 0xaa, ET_TQ_UNSYNCED, bogus, 50000, ET_INGEST_STORED);
    assert_times(f, "dev1", 1, bogus, ET_TQ_UNSYNCED);

    /* The clock syncs: mono 60000 is BASE_WALL. Batch 1 moves to its true time. */
    ingest_timed(f, "dev1", 2, 0xaa, ET_TQ_SYNCED, BASE_WALL, 60000, ET_INGEST_STORED);
    assert_times(f, "dev1", 1, BASE_WALL - 10000, ET_TQ_CORRECTED);
    assert_times(f, "dev1", 2, BASE_WALL, ET_TQ_SYNCED);
    assert_int_equal(et_ingest_stats(f->ig)->retimed, 2);
    /* Another device's samples are its own, whatever its boot id. */
    assert_times(f, "dev2", 1, bogus, ET_TQ_UNSYNCED);

    /* Backlog of the same boot drains later: corrected on arrival. */
    ingest_timed(f, "dev1", 3, 0xaa, ET_TQ_UNSYNCED, bogus + 5000, 55000, ET_INGEST_STORED);
    assert_times(f, "dev1", 3, BASE_WALL - 5000, ET_TQ_CORRECTED);
    assert_int_equal(et_ingest_stats(f->ig)->retimed, 4);

    /* A new boot with no sync yet: nothing is known about its clock. */
    ingest_timed(f, "dev1", 4, 0xbb, ET_TQ_UNSYNCED, bogus, 3000, ET_INGEST_STORED);
    assert_times(f, "dev1", 4, bogus, ET_TQ_UNSYNCED);

    /* Re-sent batches change nothing. */
    ingest_timed(f, "dev1", 1, 0xaa, ET_TQ_UNSYNCED, bogus, 50000, ET_INGEST_DUPLICATE);
    assert_times(f, "dev1", 1, BASE_WALL - 10000, ET_TQ_CORRECTED);

    /* Boot 0xbb syncs; 0xaa's corrected times stay as they are. */
    ingest_timed(f, "dev1", 5, 0xbb, ET_TQ_SYNCED, BASE_WALL + 100000, 13000, ET_INGEST_STORED);
    assert_times(f, "dev1", 4, BASE_WALL + 90000, ET_TQ_CORRECTED);
    assert_times(f, "dev1", 1, BASE_WALL - 10000, ET_TQ_CORRECTED);
    assert_int_equal(et_ingest_stats(f->ig)->retimed, 6);
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

    if (et_store_open(&store, "sqlite", r->path, 0, err, sizeof(err)) < 0 ||
        et_ingest_create(&ig, store, ROOT) < 0) {
        r->failures++;
        goto out;
    }
    for (uint64_t seq = r->first; seq <= RACE_BATCHES; seq += r->step) {
        buf = make_batch("dev1", seq, 1, 2, &len);
        if (et_ingest_message(ig, ROOT "/v1/dev1/telemetry", buf, len, NOW, &reply) < 0 ||
            (reply.kind != ET_INGEST_STORED && reply.kind != ET_INGEST_DUPLICATE))
            r->failures++;
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
    struct fixture *f = *state;
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
    assert_ack(&reply, "dev1", RACE_BATCHES, NULL, 0);
}

static void test_store_refuses(void **state)
{
    struct fixture *f = *state;
    struct et_store *ro;
    struct et_ingest *ig2;
    struct et_ingest_reply r;
    char err[256];
    size_t len;
    uint8_t *buf = make_batch("dev1", 1, 1, 2, &len);

    assert_int_equal(et_store_open(&ro, "sqlite", f->path, ET_STORE_READONLY, err,
                                   sizeof(err)), 0);
    assert_int_equal(et_ingest_create(&ig2, ro, ROOT), 0);
    assert_true(et_ingest_message(ig2, ROOT "/v1/dev1/telemetry", buf, len, NOW, &r) < 0);
    assert_int_equal(r.kind, ET_INGEST_NONE);
    assert_null(r.ack);
    assert_int_equal(et_ingest_stats(ig2)->store_errors, 1);
    et_ingest_destroy(ig2);
    et_store_close(ro);

    /* Nothing half-written: the writable instance stores it in full. */
    assert_int_equal(et_ingest_message(f->ig, ROOT "/v1/dev1/telemetry", buf, len, NOW, &r), 0);
    assert_int_equal(r.kind, ET_INGEST_STORED);
    assert_true(r.new_device);
    assert_int_equal(stored(f, "dev1", "sim.counter"), 2);
    free(buf);
}


/* Group commit: a burst of batches shares one transaction. */
static void group_commits_a_burst_together(void **state)
{
    struct fixture *f = *state;
    struct et_ingest_reply r;
    char err[256];
    bool seen;

    assert_int_equal(et_store_group_begin(f->store), 0);
    assert_int_equal(et_store_group_begin(f->store), -EALREADY);
    for (uint64_t seq = 1; seq <= 3; seq++) {
        assert_int_equal(ingest_batch(f, "dev-g", seq, 1, 4, &r), 0);
        assert_int_equal(r.kind, ET_INGEST_STORED);
        /* Acks computed inside the group see the group's own writes. */
        assert_int_equal(r.acked_through, seq);
    }
    assert_int_equal(et_store_group_commit(f->store), 0);
    assert_int_equal(et_store_group_commit(f->store), -EINVAL);

    /* Durable: another handle on the file sees all three. */
    et_ingest_destroy(f->ig);
    et_store_close(f->store);
    assert_int_equal(et_store_open(&f->store, "sqlite", f->path, 0, err, sizeof(err)), 0);
    assert_int_equal(et_ingest_create(&f->ig, f->store, ROOT), 0);
    for (uint64_t seq = 1; seq <= 3; seq++) {
        assert_int_equal(et_store_batch_seen(f->store, "dev-g", seq, &seen), 0);
        assert_true(seen);
    }
}

/* One failed message in a group undoes the group: nothing may be acked. */
static void rollback_inside_a_group_undoes_it(void **state)
{
    struct fixture *f = *state;
    struct et_ingest_reply r;
    bool seen;

    assert_int_equal(et_store_group_begin(f->store), 0);
    assert_int_equal(ingest_batch(f, "dev-g", 1, 1, 4, &r), 0);
    assert_int_equal(r.kind, ET_INGEST_STORED);
    /* What ingest does when a write of the next message fails. */
    assert_int_equal(et_store_begin(f->store), 0);
    assert_int_equal(et_store_rollback(f->store), 0);
    assert_int_equal(et_store_begin(f->store), -ECANCELED);
    assert_int_equal(et_store_group_commit(f->store), -ECANCELED);

    assert_int_equal(et_store_batch_seen(f->store, "dev-g", 1, &seen), 0);
    assert_false(seen);
    /* The device sends it again and it is stored then, not a duplicate. */
    assert_int_equal(ingest_batch(f, "dev-g", 1, 1, 4, &r), 0);
    assert_int_equal(r.kind, ET_INGEST_STORED);
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
    struct fixture *f = *state;
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
        assert_int_equal(et_store_metrics(f->store, "dev-t", tags_cb, tags), 0);
        assert_string_equal(tags, round ? "room=hall" : "room=kitchen,floor=1");
        free(buf);
        et_batch_destroy(b);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_store_then_duplicate, setup, teardown),
        cmocka_unit_test_setup_teardown(test_gaps_and_reordering, setup, teardown),
        cmocka_unit_test_setup_teardown(test_oldest_seq_steps_over_evicted, setup, teardown),
        cmocka_unit_test_setup_teardown(test_long_run_of_stored_seqs, setup, teardown),
        cmocka_unit_test_setup_teardown(test_device_topic_mismatch, setup, teardown),
        cmocka_unit_test_setup_teardown(test_truncated_and_garbage, setup, teardown),
        cmocka_unit_test_setup_teardown(test_wrong_metric_index, setup, teardown),
        cmocka_unit_test_setup_teardown(test_topics, setup, teardown),
        cmocka_unit_test_setup_teardown(test_times_values_quality, setup, teardown),
        cmocka_unit_test_setup_teardown(test_status, setup, teardown),
        cmocka_unit_test_setup_teardown(test_two_instances, setup, teardown),
        cmocka_unit_test_setup_teardown(test_retime_unsynced_boot, setup, teardown),
        cmocka_unit_test_setup_teardown(test_concurrent_instances, setup, teardown),
        cmocka_unit_test_setup_teardown(test_store_refuses, setup, teardown),
        cmocka_unit_test_setup_teardown(group_commits_a_burst_together, setup, teardown),
        cmocka_unit_test_setup_teardown(rollback_inside_a_group_undoes_it, setup, teardown),
        cmocka_unit_test_setup_teardown(metric_tags_are_stored, setup, teardown),
    };

    /* Malformed input is logged as a warning; keep the test output short. */
    et_log_init("test_ingest", ET_LOG_ERROR);
    return cmocka_run_group_tests(tests, NULL, NULL);
}
