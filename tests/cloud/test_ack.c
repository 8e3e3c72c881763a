/*
 * The cumulative ack (cloud/ack.c): the walk over stored seqs on an
 * in-memory writer (gaps, the floor, pages of the scan, store errors), the
 * Ack message, and, through ingest on a real SQLite store, the acks a
 * device gets for gaps, reordering, evicted seqs and a long backlog.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <stdlib.h>

#include "cloud_test.h"
#include "edgetel/ack.h"
#include "edgetel/codec.h"
#include "edgetel/log.h"

#define setup cloud_fixture_setup
#define teardown cloud_fixture_teardown
#define fake_setup fake_writer_setup
#define fake_teardown fake_writer_teardown

/* ---- the walk, on the fake writer ------------------------------------------ */

static void walk_steps_over_stored_seqs_up_to_a_gap(void **state)
{
    struct fake_writer *fw = *state;
    struct et_store_writer *w = &fw->base;
    uint64_t ack = 99;

    assert_int_equal(et_ack_advance(w, "nobody", "", 0, &ack), -ENOENT);
    assert_int_equal(ack, 99);
    fake_add_batches(fw, "dev1", 2, 4);
    fake_add_batches(fw, "dev1", 7, 7);
    fake_add_batches(fw, "dev2", 1, 9);   /* another device's seqs are its own */

    assert_int_equal(et_ack_advance(w, "dev1", "", 0, &ack), 0);
    assert_int_equal(ack, 0);        /* 1 missing */
    assert_int_equal(fw->calls[FAKE_ACK_SET], 0);   /* unchanged: not written */
    assert_int_equal(et_ack_advance(w, "dev1", "", 1, &ack), 0);
    assert_int_equal(ack, 4);        /* 1 evicted: 2..4 follow */
    assert_int_equal(fake_stream(fw, "dev1", "")->acked_through, 4);
    assert_int_equal(et_ack_advance(w, "dev1", "", 0, &ack), 0);
    assert_int_equal(ack, 4);        /* never goes down */
    assert_int_equal(et_ack_advance(w, "dev1", "", 3, &ack), 0);
    assert_int_equal(ack, 4);        /* nor for a floor below it */
    assert_int_equal(fw->calls[FAKE_ACK_SET], 1);
    assert_int_equal(et_ack_advance(w, "dev1", "", 5, &ack), 0);
    assert_int_equal(ack, 5);        /* the floor alone: 6 missing */
    assert_int_equal(et_ack_advance(w, "dev1", "", 6, &ack), 0);
    assert_int_equal(ack, 7);
    assert_int_equal(et_ack_advance(w, "dev1", "", 20, &ack), 0);
    assert_int_equal(ack, 20);       /* a floor past everything stored */
    assert_int_equal(fake_stream(fw, "dev1", "")->acked_through, 20);
    assert_int_equal(fake_stream(fw, "dev2", "")->acked_through, 0);
}

static void walk_reads_page_after_page(void **state)
{
    struct fake_writer *fw = *state;
    struct et_store_writer *w = &fw->base;
    uint64_t ack = 0;

    /* Two full pages and a third that holds the gap (1301 missing). */
    fake_add_batches(fw, "dev1", 1, 1300);
    fake_add_batches(fw, "dev1", 1302, 1400);
    assert_int_equal(et_ack_advance(w, "dev1", "", 0, &ack), 0);
    assert_int_equal(ack, 1300);
    assert_int_equal(fw->calls[FAKE_SEQS_AFTER], 3);

    /* Exactly two full pages: the third read finds nothing more. */
    fake_add_batches(fw, "dev2", 1, 2 * ET_ACK_SCAN_SEQS);
    fw->calls[FAKE_SEQS_AFTER] = 0;
    assert_int_equal(et_ack_advance(w, "dev2", "", 0, &ack), 0);
    assert_int_equal(ack, 2 * ET_ACK_SCAN_SEQS);
    assert_int_equal(fw->calls[FAKE_SEQS_AFTER], 3);

    /* A gap right after a full page: found at the start of the next. */
    fake_add_batches(fw, "dev3", 1, ET_ACK_SCAN_SEQS);
    fake_add_batches(fw, "dev3", ET_ACK_SCAN_SEQS + 2, ET_ACK_SCAN_SEQS + 9);
    fw->calls[FAKE_SEQS_AFTER] = 0;
    assert_int_equal(et_ack_advance(w, "dev3", "", 0, &ack), 0);
    assert_int_equal(ack, ET_ACK_SCAN_SEQS);
    assert_int_equal(fw->calls[FAKE_SEQS_AFTER], 2);

    /* Later walks start from the recorded ack, not from the bottom. */
    fake_add_batches(fw, "dev1", 1301, 1301);
    fw->calls[FAKE_SEQS_AFTER] = 0;
    assert_int_equal(et_ack_advance(w, "dev1", "", 0, &ack), 0);
    assert_int_equal(ack, 1400);
    assert_int_equal(fw->calls[FAKE_SEQS_AFTER], 1);
}

static void walk_floor_is_clamped_to_the_store(void **state)
{
    struct fake_writer *fw = *state;
    uint64_t ack = 0;

    fake_add_batches(fw, "dev1", 1, 1);
    assert_int_equal(et_ack_advance(&fw->base, "dev1", "", UINT64_MAX, &ack), 0);
    assert_int_equal(ack, ET_STORE_SEQ_MAX);
}

static void walk_writes_nothing_when_the_store_fails(void **state)
{
    struct fake_writer *fw = *state;
    struct et_store_writer *w = &fw->base;
    uint64_t ack = 42;

    fake_add_batches(fw, "dev1", 1, 1000);
    fw->fail_at[FAKE_ACK_GET] = 1;
    assert_int_equal(et_ack_advance(w, "dev1", "", 0, &ack), -EIO);
    fw->fail_at[FAKE_SEQS_AFTER] = 2;   /* the second page */
    assert_int_equal(et_ack_advance(w, "dev1", "", 0, &ack), -EIO);
    assert_int_equal(fw->calls[FAKE_ACK_SET], 0);
    assert_int_equal(fake_stream(fw, "dev1", "")->acked_through, 0);
    assert_int_equal(ack, 42);
    fw->fail_at[FAKE_ACK_SET] = 1;
    assert_int_equal(et_ack_advance(w, "dev1", "", 0, &ack), -EIO);
    assert_int_equal(ack, 42);
    assert_int_equal(et_ack_advance(w, "dev1", "", 0, &ack), 0);
    assert_int_equal(ack, 1000);
}

/* ---- the Ack message ---------------------------------------------------------- */

static void assert_encoded(const uint8_t *stream, uint64_t seq, uint64_t through,
                           bool selective)
{
    Edgetel__V1__Ack *ack = NULL;
    uint8_t *buf = NULL;
    char err[128];
    size_t len;

    assert_int_equal(et_ack_encode("dev1", stream, seq, through, &buf, &len), 0);
    assert_int_equal(et_wire_decode_ack(buf, len, &ack, err, sizeof(err)), 0);
    assert_string_equal(ack->device_id, "dev1");
    assert_int_equal(ack->acked_through, through);
    assert_int_equal(ack->n_seqs, selective ? 1 : 0);
    if (selective)
        assert_int_equal(ack->seqs[0], seq);
    assert_int_equal(ack->stream_id.len, stream ? ET_STREAM_ID_LEN : 0);
    if (stream)
        assert_memory_equal(ack->stream_id.data, stream, ET_STREAM_ID_LEN);
    edgetel__v1__ack__free_unpacked(ack, NULL);
    free(buf);
}

static void ack_names_a_seq_above_the_cumulative_one(void **state)
{
    assert_encoded(cloud_stream_a, 5, 3, true);      /* live overtook the backlog */
    assert_encoded(cloud_stream_a, 3, 3, false);     /* covered */
    assert_encoded(cloud_stream_a, 2, 3, false);     /* a late duplicate */
    assert_encoded(cloud_stream_a, 1, 0, true);
    assert_encoded(NULL, 1, 0, true);                /* the legacy stream */
}

/* ---- streams ---------------------------------------------------------------- */

static void each_stream_has_its_own_ack(void **state)
{
    struct fake_writer *fw = *state;
    struct et_store_writer *w = &fw->base;
    uint64_t ack = 0;

    /* The old data directory's stream, stored and acked through 500. */
    fake_add_stream_batches(fw, "dev1", CLOUD_STREAM_A_HEX, 1, 500);
    assert_int_equal(et_ack_advance(w, "dev1", CLOUD_STREAM_A_HEX, 0, &ack), 0);
    assert_int_equal(ack, 500);
    /* The new one starts at 1: its seqs are its own. */
    assert_int_equal(et_ack_advance(w, "dev1", CLOUD_STREAM_B_HEX, 0, &ack), -ENOENT);
    fake_add_stream_batches(fw, "dev1", CLOUD_STREAM_B_HEX, 1, 3);
    fake_add_stream_batches(fw, "dev1", CLOUD_STREAM_B_HEX, 5, 5);
    assert_int_equal(et_ack_advance(w, "dev1", CLOUD_STREAM_B_HEX, 0, &ack), 0);
    assert_int_equal(ack, 3);
    assert_int_equal(fake_stream(fw, "dev1", CLOUD_STREAM_B_HEX)->acked_through, 3);
    assert_int_equal(fake_stream(fw, "dev1", CLOUD_STREAM_A_HEX)->acked_through, 500);
    /* Neither is the legacy stream. */
    assert_null(fake_stream(fw, "dev1", ""));
}

static void seq_limit_bounds_the_jump(void **state)
{
    const int64_t t = CLOUD_NOW;
    struct et_store_stream st = {
        .started_ms = t - 3600000, .acked_through = 400, .top_seq = 500, .top_received_ms = t,
    };

    /* A stream never heard of starts at most at 2^40. */
    assert_int_equal(et_ack_seq_limit(NULL, t), UINT64_C(1) << 40);
    /* A stream recorded (from a Status) but with nothing stored or acked yet too. */
    struct et_store_stream empty = { .started_ms = t };

    assert_int_equal(et_ack_seq_limit(&empty, t + 1000), UINT64_C(1) << 40);
    /* From its highest seq: 2^20 at once, 2048 more each second since it was stored. */
    assert_int_equal(et_ack_seq_limit(&st, t), 500 + (UINT64_C(1) << 20));
    assert_int_equal(et_ack_seq_limit(&st, t + 10999), 500 + (UINT64_C(1) << 20) + 10 * 2048);
    /* A clock behind the one that stored it allows no less. */
    assert_int_equal(et_ack_seq_limit(&st, t - 60000), 500 + (UINT64_C(1) << 20));
    /* The ack counts when it is higher (the floor stepped over evicted seqs). */
    st.acked_through = 9000;
    assert_int_equal(et_ack_seq_limit(&st, t), 9000 + (UINT64_C(1) << 20));
    /* An ack but no stored batch (migrated from before streams): since its start. */
    st.top_seq = 0;
    st.top_received_ms = 0;
    assert_int_equal(et_ack_seq_limit(&st, t), 9000 + (UINT64_C(1) << 20) + 3600 * 2048);
    /* A year away: about 2^36 more. */
    st.started_ms = t - 365LL * 24 * 3600 * 1000;
    assert_true(et_ack_seq_limit(&st, t) > (UINT64_C(1) << 35));
    assert_true(et_ack_seq_limit(&st, t) < (UINT64_C(1) << 37));
    /* Near the top it saturates instead of wrapping. */
    st.acked_through = UINT64_MAX - 10;
    assert_int_equal(et_ack_seq_limit(&st, t), UINT64_MAX);
    st.started_ms = INT64_MIN;
    assert_int_equal(et_ack_seq_limit(&st, INT64_MAX), UINT64_MAX);
}

/* ---- acks through ingest on SQLite ------------------------------------------ */

static void test_gaps_and_reordering(void **state)
{
    struct cloud_fixture *f = *state;
    struct et_ingest_reply r;
    uint64_t sel;

    assert_int_equal(cloud_ingest_batch(f->ig, "dev1", 1, 1, 1, &r), 0);
    cloud_assert_ack(&r, "dev1", 1, NULL, 0);

    /* 3 before 2: the ack stays at 1 and names 3 selectively. */
    assert_int_equal(cloud_ingest_batch(f->ig, "dev1", 3, 2, 1, &r), 0);
    assert_int_equal(r.kind, ET_INGEST_STORED);
    sel = 3;
    cloud_assert_ack(&r, "dev1", 1, &sel, 1);

    /* 2 fills the gap: the ack jumps over 3. */
    assert_int_equal(cloud_ingest_batch(f->ig, "dev1", 2, 2, 1, &r), 0);
    assert_int_equal(r.kind, ET_INGEST_STORED);
    cloud_assert_ack(&r, "dev1", 3, NULL, 0);

    assert_int_equal(cloud_ingest_batch(f->ig, "dev1", 6, 4, 1, &r), 0);
    sel = 6;
    cloud_assert_ack(&r, "dev1", 3, &sel, 1);
    assert_int_equal(cloud_ingest_batch(f->ig, "dev1", 5, 4, 1, &r), 0);
    sel = 5;
    cloud_assert_ack(&r, "dev1", 3, &sel, 1);
    assert_int_equal(cloud_ingest_batch(f->ig, "dev1", 4, 4, 1, &r), 0);
    cloud_assert_ack(&r, "dev1", 6, NULL, 0);

    /* A late duplicate of an acked seq is acked with the current state. */
    assert_int_equal(cloud_ingest_batch(f->ig, "dev1", 2, 2, 1, &r), 0);
    assert_int_equal(r.kind, ET_INGEST_DUPLICATE);
    cloud_assert_ack(&r, "dev1", 6, NULL, 0);
    assert_int_equal(cloud_stored(f->r, "dev1", "sim.counter"), 6);

    /* Another device's seqs are its own. */
    assert_int_equal(cloud_ingest_batch(f->ig, "dev2", 2, 1, 1, &r), 0);
    assert_int_equal(r.kind, ET_INGEST_STORED);
    sel = 2;
    cloud_assert_ack(&r, "dev2", 0, &sel, 1);
}

static void test_oldest_seq_steps_over_evicted(void **state)
{
    struct cloud_fixture *f = *state;
    struct et_ingest_reply r;
    uint64_t sel;

    /* The device evicted 1..9 while offline and still holds 10..12. */
    assert_int_equal(cloud_ingest_batch(f->ig, "dev1", 12, 10, 2, &r), 0);
    assert_int_equal(r.kind, ET_INGEST_STORED);
    sel = 12;
    cloud_assert_ack(&r, "dev1", 9, &sel, 1);
    assert_int_equal(cloud_ingest_batch(f->ig, "dev1", 10, 10, 2, &r), 0);
    cloud_assert_ack(&r, "dev1", 10, NULL, 0);
    assert_int_equal(cloud_ingest_batch(f->ig, "dev1", 11, 10, 2, &r), 0);
    cloud_assert_ack(&r, "dev1", 12, NULL, 0);

    /* It evicted 13..19 too; 20 arrives with oldest 20, then again. */
    assert_int_equal(cloud_ingest_batch(f->ig, "dev1", 20, 20, 1, &r), 0);
    cloud_assert_ack(&r, "dev1", 20, NULL, 0);
    assert_int_equal(cloud_ingest_batch(f->ig, "dev1", 20, 20, 1, &r), 0);
    assert_int_equal(r.kind, ET_INGEST_DUPLICATE);
    cloud_assert_ack(&r, "dev1", 20, NULL, 0);

    /* An old oldest_seq never lowers the ack. */
    assert_int_equal(cloud_ingest_batch(f->ig, "dev1", 22, 1, 1, &r), 0);
    sel = 22;
    cloud_assert_ack(&r, "dev1", 20, &sel, 1);
}

static void test_long_run_of_stored_seqs(void **state)
{
    struct cloud_fixture *f = *state;
    struct et_ingest_reply r;
    uint64_t sel;

    /* Backlog arrives newest first past the store's scan page (512). */
    for (uint64_t seq = 1300; seq >= 2; seq--) {
        assert_int_equal(cloud_ingest_batch(f->ig, "dev1", seq, 1, 1, &r), 0);
        assert_int_equal(r.kind, ET_INGEST_STORED);
        sel = seq;
        cloud_assert_ack(&r, "dev1", 0, &sel, 1);
    }
    assert_int_equal(cloud_ingest_batch(f->ig, "dev1", 1, 1, 1, &r), 0);
    cloud_assert_ack(&r, "dev1", 1300, NULL, 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(walk_steps_over_stored_seqs_up_to_a_gap, fake_setup,
                                        fake_teardown),
        cmocka_unit_test_setup_teardown(walk_reads_page_after_page, fake_setup, fake_teardown),
        cmocka_unit_test_setup_teardown(walk_floor_is_clamped_to_the_store, fake_setup,
                                        fake_teardown),
        cmocka_unit_test_setup_teardown(walk_writes_nothing_when_the_store_fails, fake_setup,
                                        fake_teardown),
        cmocka_unit_test(ack_names_a_seq_above_the_cumulative_one),
        cmocka_unit_test_setup_teardown(each_stream_has_its_own_ack, fake_setup, fake_teardown),
        cmocka_unit_test(seq_limit_bounds_the_jump),
        cmocka_unit_test_setup_teardown(test_gaps_and_reordering, setup, teardown),
        cmocka_unit_test_setup_teardown(test_oldest_seq_steps_over_evicted, setup, teardown),
        cmocka_unit_test_setup_teardown(test_long_run_of_stored_seqs, setup, teardown),
    };

    et_log_init("test_ack", ET_LOG_ERROR);
    return cmocka_run_group_tests(tests, NULL, NULL);
}
