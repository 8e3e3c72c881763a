/*
 * The SQLite store's writer (cloud/store/store_sqlite_writer.c):
 * transactions and the duplicate key, the storage the cumulative ack and
 * re-timing run over (and the ack walk over it), streams, device status
 * rows, and streams' metric dictionaries.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "cloud_test.h"
#include "edgetel/ack.h"
#include "edgetel/log.h"
#include "edgetel/store.h"
#include "edgetel/store_open.h"

#define setup cloud_fixture_setup
#define teardown cloud_fixture_teardown
#define put_batch(store, ...) cloud_put_batch(et_store_writer(store), __VA_ARGS__)

static int last_seen_cb(void *ctx, const struct et_store_device *d)
{
    *(int64_t *)ctx = d->last_seen_ms;
    return 0;
}

static int64_t last_seen(struct et_store_reader *r, const char *device)
{
    int64_t ms = -1;

    assert_int_equal(et_store_devices(r, device, last_seen_cb, &ms), 0);
    return ms;
}

/* Entries of one dictionary read back, by index (up to 8). */
struct dict_rows {
    struct et_store_dict_entry e[8];
    size_t n;
};

static int dict_row_cb(void *ctx, const struct et_store_dict_entry *e)
{
    struct dict_rows *rows = ctx;

    assert_true(e->idx < 8);
    rows->e[e->idx] = *e;
    rows->n++;
    return 0;
}

static struct dict_rows dict_read(struct et_store_writer *w, const char *device,
                                  const char *stream, uint64_t dict_id)
{
    struct dict_rows rows = { .n = 0 };

    assert_int_equal(et_store_dict_get(w, device, stream, dict_id, dict_row_cb, &rows), 0);
    return rows;
}

/*
 * Streams' metric dictionaries (schema 7): entries kept per device, stream
 * and dictionary; immutable once kept; gone with a rolled-back
 * transaction; an id past INT64_MAX refused, as a seq is.
 */
static void test_dictionaries(void **state)
{
    struct cloud_fixture *f = *state;
    const char *s1 = "00112233445566778899aabbccddeeff";
    struct et_store_dict_entry e0 = { .idx = 0, .metric_id = 11, .type = 2, .scale = 0.01 };
    struct et_store_dict_entry e1 = { .idx = 1, .metric_id = 12, .type = 1, .scale = 1 };
    struct et_store_dict_entry other = { .idx = 0, .metric_id = 99, .type = 3, .scale = 5 };
    struct dict_rows rows;

    assert_true(et_store_has_dicts(f->w));
    assert_int_equal(et_store_begin(f->w), 0);
    assert_int_equal(et_store_dict_put(f->w, "dev1", s1, 7, &e0), 0);
    assert_int_equal(et_store_dict_put(f->w, "dev1", s1, 7, &e1), 0);
    /* The same index again, with another meaning: the first stays. */
    assert_int_equal(et_store_dict_put(f->w, "dev1", s1, 7, &other), 0);
    assert_int_equal(et_store_commit(f->w), 0);

    rows = dict_read(f->w, "dev1", s1, 7);
    assert_int_equal(rows.n, 2);
    assert_int_equal(rows.e[0].metric_id, 11);
    assert_int_equal(rows.e[0].type, 2);
    assert_float_equal(rows.e[0].scale, 0.01, 0);
    assert_int_equal(rows.e[1].metric_id, 12);
    assert_float_equal(rows.e[1].scale, 1, 0);

    /* Another dictionary, stream or device knows nothing of it. */
    assert_int_equal(dict_read(f->w, "dev1", s1, 8).n, 0);
    assert_int_equal(dict_read(f->w, "dev1", "", 7).n, 0);
    assert_int_equal(dict_read(f->w, "dev2", s1, 7).n, 0);

    /* A rolled-back entry is not kept. */
    assert_int_equal(et_store_begin(f->w), 0);
    assert_int_equal(et_store_dict_put(f->w, "dev1", s1, 8, &e0), 0);
    assert_int_equal(et_store_rollback(f->w), 0);
    assert_int_equal(dict_read(f->w, "dev1", s1, 8).n, 0);

    /* A dictionary id the signed column cannot hold. */
    assert_int_equal(et_store_begin(f->w), 0);
    assert_int_equal(et_store_dict_put(f->w, "dev1", s1, UINT64_MAX, &e0), -ERANGE);
    assert_int_equal(et_store_rollback(f->w), 0);

    /* Kept across a reopen. */
    cloud_fixture_reopen(f);
    assert_int_equal(dict_read(f->w, "dev1", s1, 7).n, 2);
}

static void test_rollback_and_duplicate_key(void **state)
{
    struct cloud_fixture *f = *state;
    struct et_store_batch b = {
        .device = "dev1", .seq = 5, .received_ms = 1, .boot_id_hex = "",
    };
    bool seen = true, created = false;

    assert_int_equal(et_store_begin(f->w), 0);
    assert_int_equal(et_store_begin(f->w), -EALREADY);
    assert_int_equal(et_store_device_seen(f->w, "dev1", 1, NULL, 0, &created), 0);
    assert_true(created);
    assert_int_equal(et_store_insert_batch(f->w, &b), 0);
    assert_int_equal(et_store_rollback(f->w), 0);
    assert_int_equal(et_store_batch_seen(f->w, "dev1", "", 5, &seen), 0);
    assert_false(seen);

    assert_int_equal(et_store_begin(f->w), 0);
    assert_int_equal(et_store_device_seen(f->w, "dev1", 1, NULL, 0, &created), 0);
    assert_true(created);   /* the rolled back row is gone */
    assert_int_equal(et_store_insert_batch(f->w, &b), 0);
    assert_int_equal(et_store_insert_batch(f->w, &b), -EEXIST);
    assert_int_equal(et_store_commit(f->w), 0);
    assert_int_equal(et_store_batch_seen(f->w, "dev1", "", 5, &seen), 0);
    assert_true(seen);

    /* A seq the signed column cannot hold. */
    b.seq = UINT64_MAX;
    assert_int_equal(et_store_begin(f->w), 0);
    assert_int_equal(et_store_insert_batch(f->w, &b), -ERANGE);
    assert_int_equal(et_store_rollback(f->w), 0);
    assert_int_equal(et_store_batch_seen(f->w, "dev1", "", UINT64_MAX, &seen), 0);
    assert_false(seen);
}

static void test_advance_ack(void **state)
{
    struct cloud_fixture *f = *state;
    uint64_t ack = 99;

    assert_int_equal(et_store_begin(f->w), 0);
    assert_int_equal(et_ack_advance(f->w, "nobody", "", 0, &ack), -ENOENT);
    assert_int_equal(et_store_rollback(f->w), 0);

    for (uint64_t seq = 2; seq <= 4; seq++)
        put_batch(f->store, "dev1", seq, "m", "1", 1000, 1);
    put_batch(f->store, "dev1", 7, "m", "1", 1000, 1);

    assert_int_equal(et_store_begin(f->w), 0);
    assert_int_equal(et_ack_advance(f->w, "dev1", "", 0, &ack), 0);
    assert_int_equal(ack, 0);    /* 1 missing */
    assert_int_equal(et_ack_advance(f->w, "dev1", "", 1, &ack), 0);
    assert_int_equal(ack, 4);    /* 1 evicted: 2..4 follow */
    assert_int_equal(et_ack_advance(f->w, "dev1", "", 0, &ack), 0);
    assert_int_equal(ack, 4);    /* never goes down */
    assert_int_equal(et_ack_advance(f->w, "dev1", "", 5, &ack), 0);
    assert_int_equal(ack, 5);    /* 6 missing */
    assert_int_equal(et_ack_advance(f->w, "dev1", "", 6, &ack), 0);
    assert_int_equal(ack, 7);
    assert_int_equal(et_store_commit(f->w), 0);
}

/* The primitives under the ack walk: a page of stored seqs, the ack itself. */
static void test_seqs_after_and_ack(void **state)
{
    struct cloud_fixture *f = *state;
    const uint64_t stored[] = { 2, 3, 4, 7, 9 };
    uint64_t seqs[8], ack = 99;
    size_t n = 99;

    for (size_t i = 0; i < sizeof(stored) / sizeof(stored[0]); i++)
        put_batch(f->store, "dev1", stored[i], "m", "1", 1000, 1);
    put_batch(f->store, "dev2", 5, "m", "1", 1000, 1);

    assert_int_equal(et_store_begin(f->w), 0);
    assert_int_equal(et_store_seqs_after(f->w, "dev1", "", 0, seqs, 8, &n), 0);
    assert_int_equal(n, 5);
    for (size_t i = 0; i < n; i++)
        assert_int_equal(seqs[i], stored[i]);
    /* Above a seq, in order, at most max. */
    assert_int_equal(et_store_seqs_after(f->w, "dev1", "", 3, seqs, 2, &n), 0);
    assert_int_equal(n, 2);
    assert_int_equal(seqs[0], 4);
    assert_int_equal(seqs[1], 7);
    assert_int_equal(et_store_seqs_after(f->w, "dev1", "", 9, seqs, 8, &n), 0);
    assert_int_equal(n, 0);
    assert_int_equal(et_store_seqs_after(f->w, "nobody", "", 0, seqs, 8, &n), 0);
    assert_int_equal(n, 0);

    assert_int_equal(et_store_ack_get(f->w, "nobody", "", &ack), -ENOENT);
    assert_int_equal(et_store_ack_get(f->w, "dev1", "", &ack), 0);
    assert_int_equal(ack, 0);
    assert_int_equal(et_store_ack_set(f->w, "dev1", "", 4), 0);
    assert_int_equal(et_store_ack_get(f->w, "dev1", "", &ack), 0);
    assert_int_equal(ack, 4);
    assert_int_equal(et_store_commit(f->w), 0);
}

/*
 * Streams: each (device, stream) has its seqs and its ack; starting one
 * makes it the device's current stream and says which it replaced; the
 * device table shows the current one.
 */
static void test_streams(void **state)
{
    struct cloud_fixture *f = *state;
    struct et_store_batch b = { .device = "dev1", .received_ms = 5000, .boot_id_hex = "" };
    struct et_store_stream st;
    struct et_store_stream_was was;
    struct et_store_device d;
    uint64_t seqs[8];
    size_t n;
    bool seen;

    assert_int_equal(et_store_begin(f->w), 0);
    assert_int_equal(et_store_stream_get(f->w, "dev1", CLOUD_STREAM_A_HEX, &st), -ENOENT);
    /* No device row yet: nothing to attach the stream to. */
    assert_int_equal(et_store_stream_start(f->w, "dev1", CLOUD_STREAM_A_HEX, 1000, &was),
                     -ENOENT);
    assert_int_equal(et_store_rollback(f->w), 0);

    assert_int_equal(et_store_begin(f->w), 0);
    assert_int_equal(et_store_device_seen(f->w, "dev1", 1000, NULL, 0, NULL), 0);
    assert_int_equal(et_store_stream_start(f->w, "dev1", CLOUD_STREAM_A_HEX, 1000, &was), 0);
    assert_false(was.had);
    assert_int_equal(et_store_stream_start(f->w, "dev1", CLOUD_STREAM_A_HEX, 2000, &was),
                     -EEXIST);
    assert_int_equal(et_store_stream_get(f->w, "dev1", CLOUD_STREAM_A_HEX, &st), 0);
    assert_int_equal(st.started_ms, 1000);
    assert_int_equal(st.top_seq, 0);
    assert_int_equal(st.acked_through, 0);
    for (uint64_t seq = 1; seq <= 3; seq++) {
        b.seq = seq;
        b.stream_hex = CLOUD_STREAM_A_HEX;
        b.received_ms = 5000 + (int64_t)seq;
        assert_int_equal(et_store_insert_batch(f->w, &b), 0);
    }
    assert_int_equal(et_store_ack_set(f->w, "dev1", CLOUD_STREAM_A_HEX, 3), 0);
    assert_int_equal(et_store_commit(f->w), 0);

    /* A new stream of the same device: the same seqs are new rows. */
    assert_int_equal(et_store_begin(f->w), 0);
    assert_int_equal(et_store_stream_start(f->w, "dev1", CLOUD_STREAM_B_HEX, 9000, &was), 0);
    assert_true(was.had);
    assert_string_equal(was.stream_hex, CLOUD_STREAM_A_HEX);
    assert_int_equal(was.acked_through, 3);
    b.seq = 1;
    b.stream_hex = CLOUD_STREAM_B_HEX;
    b.received_ms = 9100;
    assert_int_equal(et_store_insert_batch(f->w, &b), 0);
    assert_int_equal(et_store_insert_batch(f->w, &b), -EEXIST);
    assert_int_equal(et_store_batch_seen(f->w, "dev1", CLOUD_STREAM_B_HEX, 1, &seen), 0);
    assert_true(seen);
    assert_int_equal(et_store_batch_seen(f->w, "dev1", CLOUD_STREAM_B_HEX, 2, &seen), 0);
    assert_false(seen);
    assert_int_equal(et_store_batch_seen(f->w, "dev1", CLOUD_STREAM_A_HEX, 2, &seen), 0);
    assert_true(seen);
    assert_int_equal(et_store_batch_seen(f->w, "dev1", "", 1, &seen), 0);
    assert_false(seen);
    assert_int_equal(et_store_seqs_after(f->w, "dev1", CLOUD_STREAM_B_HEX, 0, seqs, 8, &n), 0);
    assert_int_equal(n, 1);
    assert_int_equal(et_store_seqs_after(f->w, "dev1", CLOUD_STREAM_A_HEX, 0, seqs, 8, &n), 0);
    assert_int_equal(n, 3);
    assert_int_equal(et_store_stream_get(f->w, "dev1", CLOUD_STREAM_A_HEX, &st), 0);
    assert_int_equal(st.top_seq, 3);
    assert_int_equal(st.top_received_ms, 5003);
    assert_int_equal(st.acked_through, 3);
    assert_int_equal(et_store_stream_get(f->w, "dev1", CLOUD_STREAM_B_HEX, &st), 0);
    assert_int_equal(st.top_seq, 1);
    assert_int_equal(st.acked_through, 0);
    assert_int_equal(et_store_commit(f->w), 0);

    /* The device table names the current stream, its start and its ack. */
    d = cloud_device(f->r, "dev1");
    assert_true(d.has_stream);
    assert_string_equal(d.stream_hex, CLOUD_STREAM_B_HEX);
    assert_int_equal(d.stream_started_ms, 9000);
    assert_int_equal(d.acked_through, 0);
    assert_int_equal(d.batches_stored, 4);
}

/* The primitives under re-timing: waiting samples, their new times, done. */
struct samples_got {
    struct et_store_sample s[8];
    size_t n;
};

static int collect_samples(void *ctx, const struct et_store_sample *s)
{
    struct samples_got *got = ctx;

    assert_true(got->n < 8);
    got->s[got->n] = *s;
    /* The strings die with the callback. */
    got->s[got->n].device = got->s[got->n].metric = got->s[got->n].unit = NULL;
    got->n++;
    return 0;
}

static void test_retime_storage(void **state)
{
    struct cloud_fixture *f = *state;
    struct et_store_clock clk = { .boot_id_hex = "ab", .base_wall_ms = 5, .base_mono_ms = 6 };
    struct et_store_batch b = {
        .device = "dev1", .seq = 1, .boot_id_hex = "ab", .time_quality = ET_TQ_UNSYNCED,
        .unsynced_samples = 2,
    };
    struct samples_got got = { .n = 0 };
    int64_t metric, id;

    assert_int_equal(et_store_begin(f->w), 0);
    assert_int_equal(et_store_device_seen(f->w, "dev1", 1, "ab", 3, NULL), 0);
    assert_int_equal(et_store_metric_id(f->w, "dev1", "m", "1", &metric), 0);
    for (int i = 0; i < 3; i++) {
        struct et_store_sample smp = {
            .metric_id = metric, .ts_ms = 100 + i, .mono_ms = 10 + i, .seq = 1,
            .value = { .type = ET_TYPE_I64 },
            .time_quality = i == 1 ? ET_TQ_SYNCED : ET_TQ_UNSYNCED,
        };

        assert_int_equal(et_store_insert_sample(f->w, &smp, &id), 0);
        if (i == 0)
            b.first_sample_id = id;
        b.last_sample_id = id;
    }
    assert_int_equal(et_store_insert_batch(f->w, &b), 0);

    /* Every sample of the waiting batch, whatever its quality; another boot has none. */
    assert_int_equal(et_store_unsynced_samples(f->w, "dev1", "cd", collect_samples, &got), 0);
    assert_int_equal(got.n, 0);
    assert_int_equal(et_store_unsynced_samples(f->w, "dev1", "ab", collect_samples, &got), 0);
    assert_int_equal(got.n, 3);
    assert_int_equal(got.s[0].mono_ms, 10);
    assert_int_equal(got.s[0].time_quality, ET_TQ_UNSYNCED);
    assert_int_equal(got.s[1].time_quality, ET_TQ_SYNCED);
    assert_int_equal(got.s[2].ts_ms, 102);
    assert_int_equal(got.s[2].seq, 1);

    /* Written as told; then the batch waits no more. */
    assert_int_equal(et_store_sample_time(f->w, got.s[0].id, 7777, ET_TQ_CORRECTED), 0);
    assert_int_equal(et_store_unsynced_done(f->w, "dev1", "ab"), 0);
    got.n = 0;
    assert_int_equal(et_store_unsynced_samples(f->w, "dev1", "ab", collect_samples, &got), 0);
    assert_int_equal(got.n, 0);
    assert_int_equal(et_store_clock_set(f->w, "dev1", &clk), 0);
    memset(&clk, 0, sizeof(clk));
    assert_int_equal(et_store_clock_get(f->w, "dev1", &clk), 0);
    assert_string_equal(clk.boot_id_hex, "ab");
    assert_int_equal(clk.base_wall_ms, 5);
    assert_int_equal(clk.base_mono_ms, 6);
    assert_int_equal(et_store_clock_get(f->w, "nobody", &clk), 0);
    assert_string_equal(clk.boot_id_hex, "");
    assert_int_equal(et_store_commit(f->w), 0);

    got.n = 0;
    cloud_tail_settle(f->r, "dev1", 3);
    assert_int_equal(et_store_samples_after(f->r, 0, "dev1", 10, collect_samples, &got), 0);
    assert_int_equal(got.n, 3);
    assert_int_equal(got.s[0].ts_ms, 7777);
    assert_int_equal(got.s[0].time_quality, ET_TQ_CORRECTED);
    assert_int_equal(got.s[2].ts_ms, 102);
}

static void test_status_changes(void **state)
{
    struct cloud_fixture *f = *state;
    struct et_store_status st = {
        .device = "dev1", .online = true, .boot_id_hex = "", .agent_version = "0.1.0",
        .reason = "",
    };
    struct et_store_status_was was;
    bool created = false;

    /* What the row held before each write: ingest tells a change from it. */
    assert_int_equal(et_store_begin(f->w), 0);
    assert_int_equal(et_store_device_status(f->w, &st, 1000, &was), 0);
    assert_true(was.created);
    assert_false(was.had_status);          /* the first status is a change */
    assert_int_equal(et_store_device_status(f->w, &st, 2000, &was), 0);
    assert_false(was.created);
    assert_true(was.had_status);
    assert_true(was.online);               /* a replayed retained status is no news */
    st.online = false;
    assert_int_equal(et_store_device_status(f->w, &st, 3000, &was), 0);
    assert_true(was.online);               /* going offline is a change */
    assert_int_equal(et_store_device_status(f->w, &st, 3000, NULL), 0);
    assert_int_equal(et_store_device_status(f->w, &st, 3000, &was), 0);
    assert_false(was.online);              /* the offline one was recorded */
    assert_int_equal(et_store_commit(f->w), 0);

    /* A device first heard in a batch has no status yet: the first is a change. */
    assert_int_equal(et_store_begin(f->w), 0);
    assert_int_equal(et_store_device_seen(f->w, "dev2", 1000, NULL, 0, &created), 0);
    assert_true(created);
    st.device = "dev2";
    assert_int_equal(et_store_device_status(f->w, &st, 2000, &was), 0);
    assert_false(was.created);
    assert_false(was.had_status);
    assert_int_equal(et_store_commit(f->w), 0);

    /* A status is not the device being heard: last seen is the batch's. */
    assert_int_equal(last_seen(f->r, "dev2"), 1000);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_dictionaries, setup, teardown),
        cmocka_unit_test_setup_teardown(test_rollback_and_duplicate_key, setup, teardown),
        cmocka_unit_test_setup_teardown(test_advance_ack, setup, teardown),
        cmocka_unit_test_setup_teardown(test_seqs_after_and_ack, setup, teardown),
        cmocka_unit_test_setup_teardown(test_streams, setup, teardown),
        cmocka_unit_test_setup_teardown(test_retime_storage, setup, teardown),
        cmocka_unit_test_setup_teardown(test_status_changes, setup, teardown),
    };

    et_log_init("test_store_writer", ET_LOG_ERROR);
    return cmocka_run_group_tests(tests, NULL, NULL);
}
