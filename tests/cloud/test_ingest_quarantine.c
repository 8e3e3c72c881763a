/*
 * A batch whose sample times are impossible (cloud/ingest.c): not stored
 * as samples, and not refused either, which would leave its device
 * sending it for ever. It is quarantined: kept whole with why, acked like
 * a stored batch (the device deletes it; a resend is a duplicate), counted,
 * said once a minute per device, and listed by edgetelctl quarantine.
 * The window: a clock that says it is good reads from 2000-01-01 to a day
 * ahead of the aggregator's; one that says it is not, from 1970 to 2100.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cloud_test.h"
#include "edgetel/codec.h"
#include "edgetel/ingest.h"
#include "edgetel/report.h"

#define DAY_MS (24LL * 3600 * 1000)
#define Y2000_MS 946684800000LL
#define Y2100_MS 4102444800000LL

/* One sample of dev1 at wall time wall_ms with time quality tq (batch-wide too). */
static uint8_t *time_batch(uint64_t seq, int64_t wall_ms, enum et_time_quality tq, size_t *len)
{
    struct et_batch_meta meta = {
        .device_id = "dev1", .seq = seq, .base_mono_ms = 5000, .base_wall_ms = wall_ms,
        .time_quality = tq == ET_TQ_SYNCED ? ET_TQ_SYNCED : ET_TQ_UNSYNCED, .oldest_seq = 1,
        .stream_id = cloud_stream_a,
    };
    struct et_batch *b;
    struct et_value v = et_value_f64(1.5);
    uint8_t *buf;

    assert_int_equal(et_batch_create(&b), 0);
    assert_int_equal(et_batch_add(b, "temp", "Cel", 5000, &v, tq), 0);
    assert_int_equal(et_batch_encode(b, &meta, &buf, len), 0);
    et_batch_destroy(b);
    return buf;
}

static enum et_ingest_kind ingest_time(struct et_ingest *ig, uint64_t seq, int64_t wall_ms,
                                       enum et_time_quality tq, struct et_ingest_reply *r)
{
    size_t len;
    uint8_t *buf = time_batch(seq, wall_ms, tq, &len);

    assert_int_equal(et_ingest_message(ig, CLOUD_ROOT "/v1/dev1/telemetry", buf, len,
                                       CLOUD_NOW, r), 0);
    free(buf);
    return r->kind;
}

/* The fake store's row of dev1's seq in stream A, which must exist. */
static const struct fake_batch *row_of(struct cloud_fake *f, uint64_t seq)
{
    for (size_t i = 0; i < f->fw->rows.n_batches; i++)
        if (f->fw->rows.batches[i].seq == seq &&
            strcmp(f->fw->rows.batches[i].stream, CLOUD_STREAM_A_HEX) == 0)
            return &f->fw->rows.batches[i];
    fail_msg("no row for seq %llu", (unsigned long long)seq);
    return NULL;
}

/* seq was quarantined with a reason holding why, and acked through it. */
static void assert_quarantined(struct cloud_fake *f, uint64_t seq, int64_t wall_ms,
                               enum et_time_quality tq, const char *why)
{
    struct et_ingest_reply r;
    const struct fake_batch *row;

    assert_int_equal(ingest_time(f->ig, seq, wall_ms, tq, &r), ET_INGEST_QUARANTINED);
    cloud_assert_ack(&r, "dev1", seq, NULL, 0);
    row = row_of(f, seq);
    assert_true(row->quarantined);
    assert_true(row->payload_len > 0);
    if (!strstr(row->reason, why))
        fail_msg("seq %llu: reason \"%s\" does not say \"%s\"", (unsigned long long)seq,
                 row->reason, why);
}

static void impossible_times_are_quarantined_and_acked(void **state)
{
    struct cloud_fake *f = *state;
    const struct et_ingest_stats *st = et_ingest_stats(f->ig);
    struct et_ingest_reply r;
    uint64_t seq = 1;

    /* A synchronised clock must read between 2000-01-01 and a day ahead. */
    assert_int_equal(ingest_time(f->ig, seq++, CLOUD_NOW, ET_TQ_SYNCED, &r), ET_INGEST_STORED);
    assert_int_equal(ingest_time(f->ig, seq++, Y2000_MS, ET_TQ_SYNCED, &r), ET_INGEST_STORED);
    assert_int_equal(ingest_time(f->ig, seq++, CLOUD_NOW + DAY_MS, ET_TQ_SYNCED, &r),
                     ET_INGEST_STORED);
    assert_quarantined(f, seq++, Y2000_MS - 1, ET_TQ_SYNCED, "sample 0: wall time "
                       "1999-12-31T23:59:59.999Z is before 2000-01-01 on a synchronised clock");
    assert_quarantined(f, seq++, CLOUD_NOW + DAY_MS + 1, ET_TQ_SYNCED,
                       "more than a day ahead of the aggregator's clock");
    /* -146 million years, as the issue found stored. */
    assert_quarantined(f, seq++, -4611686018427387000LL, ET_TQ_SYNCED, "sample 0: wall time");
    assert_quarantined(f, seq++, 0, ET_TQ_CORRECTED, "before 2000-01-01");

    /* An honest board without a clock sends 1970 and says so: kept. */
    assert_int_equal(ingest_time(f->ig, seq++, 42000, ET_TQ_UNSYNCED, &r), ET_INGEST_STORED);
    assert_int_equal(ingest_time(f->ig, seq++, 0, ET_TQ_UNCORRECTABLE, &r), ET_INGEST_STORED);
    assert_int_equal(ingest_time(f->ig, seq++, CLOUD_NOW + 365 * DAY_MS, ET_TQ_UNSYNCED, &r),
                     ET_INGEST_STORED);
    /* But no clock reads before 1970 or after 2100. */
    assert_quarantined(f, seq++, -1, ET_TQ_UNSYNCED, "outside 1970-01-01..2100-01-01");
    assert_quarantined(f, seq++, Y2100_MS, ET_TQ_UNCORRECTABLE, "outside 1970-01-01..2100-01-01");

    assert_int_equal(st->batches, 6);
    assert_int_equal(st->quarantined, 6);
    assert_int_equal(st->malformed, 0);
    assert_int_equal(f->fw->calls[FAKE_INSERT_SAMPLE], 6);   /* the stored batches' only */
    assert_int_equal(fake_device(f->fw, "dev1")->samples_stored, 6);
    /* The ack went over every seq, quarantined ones included. */
    assert_int_equal(fake_stream(f->fw, "dev1", CLOUD_STREAM_A_HEX)->acked_through, seq - 1);

    /* Sent again (the Ack was lost): a duplicate, acked again, kept once. */
    assert_int_equal(ingest_time(f->ig, 4, Y2000_MS - 1, ET_TQ_SYNCED, &r), ET_INGEST_DUPLICATE);
    cloud_assert_ack(&r, "dev1", seq - 1, NULL, 0);
    assert_int_equal(st->quarantined, 6);

    /* Said once, then counted for the minute's line. */
    assert_int_equal(log_capture_count("device dev1: quarantined batch 4 of stream "
                                       CLOUD_STREAM_A_HEX, "kept whole and acknowledged",
                                       "edgetelctl quarantine lists it",
                                       "before 2000-01-01", NULL), 1);
    assert_int_equal(log_capture_count("quarantined batch", NULL), 1);
    assert_int_equal(et_ingest_tick(f->ig, CLOUD_NOW + 60000), INT64_MAX);
    assert_int_equal(log_capture_count("device dev1: 5 more malformed messages in the last",
                                       "the last: quarantined batch 12", NULL), 1);
}

/* In a group, a quarantined batch is counted when the group commits, and
 * its Ack is published only then; a rolled back group counted none. */
static void quarantine_in_a_group_counts_at_the_commit(void **state)
{
    struct cloud_fake *f = *state;
    const struct et_ingest_stats *st = et_ingest_stats(f->ig);
    struct et_ingest_reply r;
    size_t held = 0;

    assert_int_equal(et_ingest_group_begin(f->ig), 0);
    assert_int_equal(ingest_time(f->ig, 1, Y2000_MS - 1, ET_TQ_SYNCED, &r), ET_INGEST_QUARANTINED);
    assert_null(r.ack);
    assert_true(r.ack_held);
    assert_int_equal(st->quarantined, 0);
    assert_int_equal(et_ingest_group_end(f->ig, NULL, NULL, &held), 0);
    assert_int_equal(held, 1);
    assert_int_equal(st->quarantined, 1);

    f->fw->fail_at[FAKE_COMMIT] = f->fw->calls[FAKE_COMMIT] + 1;
    assert_int_equal(et_ingest_group_begin(f->ig), 0);
    assert_int_equal(ingest_time(f->ig, 2, Y2000_MS - 1, ET_TQ_SYNCED, &r), ET_INGEST_QUARANTINED);
    assert_int_not_equal(et_ingest_group_end(f->ig, NULL, NULL, &held), 0);
    assert_int_equal(st->quarantined, 1);
    assert_int_equal(st->store_errors, 1);
}

/* A quarantined batch in a real store and what edgetelctl shows of it. */
static void quarantine_is_kept_whole_and_listed(void **state)
{
    struct cloud_fixture *f = cloud_fixture_create("quarantine");
    struct cloud_output out = { 0 };
    struct et_ingest_reply r;
    size_t len;
    uint8_t *sent = time_batch(7, -1, ET_TQ_UNSYNCED, &len);
    const uint64_t seven = 7;
    bool seen = false;

    (void)state;
    assert_int_equal(et_report_quarantine(f->r, cloud_output_start(&out), NULL), 0);
    assert_string_equal(cloud_output_text(&out), "no quarantined batches\n");

    assert_int_equal(et_ingest_message(f->ig, CLOUD_ROOT "/v1/dev1/telemetry", sent, len,
                                       CLOUD_NOW, &r), 0);
    assert_int_equal(r.kind, ET_INGEST_QUARANTINED);
    cloud_assert_ack(&r, "dev1", 0, &seven, 1);   /* 1..6 never came: selective */
    assert_int_equal(et_store_batch_seen(f->w, "dev1", CLOUD_STREAM_A_HEX, 7, &seen), 0);
    assert_true(seen);
    assert_int_equal(cloud_stored(f->r, "dev1", "temp"), 0);

    /* Kept across a restart, bytes and all. */
    cloud_fixture_reopen(f);
    assert_int_equal(et_report_quarantine(f->r, cloud_output_start(&out), "dev1"), 0);
    assert_string_equal(cloud_output_text(&out),
                        "KEPT                  DEVICE  STREAM    SEQ  SAMPLES  BYTES  REASON\n"
                        "2026-11-18T11:08:20Z  dev1    a0a1a2a3    7        1     86  sample 0: "
                        "wall time -1 ms is outside 1970-01-01..2100-01-01, which even an "
                        "unsynchronised clock reads\n");
    assert_int_equal(et_report_quarantine(f->r, cloud_output_start(&out), "pi-other"), 0);
    assert_string_equal(cloud_output_text(&out), "no quarantined batches\n");

    /* The same batch again after the restart: a duplicate, acked. */
    assert_int_equal(et_ingest_message(f->ig, CLOUD_ROOT "/v1/dev1/telemetry", sent, len,
                                       CLOUD_NOW + 1000, &r), 0);
    assert_int_equal(r.kind, ET_INGEST_DUPLICATE);
    cloud_assert_ack(&r, "dev1", 0, &seven, 1);
    free(sent);
    cloud_output_free(&out);
    cloud_fixture_destroy(f);
}

/* The bytes as they arrived come back from the store. */
struct payload_check {
    const uint8_t *want;
    size_t len;
    int rows;
};

static int check_payload(void *ctx, const struct et_store_quarantined *q)
{
    struct payload_check *pc = ctx;

    assert_int_equal(q->len, pc->len);
    assert_memory_equal(q->payload, pc->want, pc->len);
    assert_int_equal(q->seq, 3);
    assert_int_equal(q->n_samples, 1);
    assert_string_equal(q->stream_hex, CLOUD_STREAM_A_HEX);
    pc->rows++;
    return 0;
}

static void quarantine_keeps_the_bytes(void **state)
{
    struct cloud_fixture *f = cloud_fixture_create("quarantine-bytes");
    struct et_ingest_reply r;
    struct payload_check pc = { 0 };
    uint8_t *sent = time_batch(3, Y2100_MS + 5, ET_TQ_SYNCED, &pc.len);

    (void)state;
    pc.want = sent;
    assert_int_equal(et_ingest_message(f->ig, CLOUD_ROOT "/v1/dev1/telemetry", sent, pc.len,
                                       CLOUD_NOW, &r), 0);
    assert_int_equal(r.kind, ET_INGEST_QUARANTINED);
    assert_int_equal(et_store_quarantined(f->r, NULL, check_payload, &pc), 0);
    assert_int_equal(pc.rows, 1);
    free(sent);
    cloud_fixture_destroy(f);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(impossible_times_are_quarantined_and_acked,
                                        cloud_fake_setup, cloud_fake_teardown),
        cmocka_unit_test_setup_teardown(quarantine_in_a_group_counts_at_the_commit,
                                        cloud_fake_setup, cloud_fake_teardown),
        cmocka_unit_test(quarantine_is_kept_whole_and_listed),
        cmocka_unit_test(quarantine_keeps_the_bytes),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
