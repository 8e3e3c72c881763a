/*
 * Streams in ingest (cloud/ingest.c, cloud/ack.c) on a real SQLite store:
 * a re-flashed device, starting again at seq 1 in a new stream after its
 * old one was acknowledged through 500, has its batches stored and acked
 * in the new stream, never taken for repeats of the old; the old
 * stream's leftovers still dedupe against the old; the new stream is said
 * once in the log; a Status names it first; agents from before streams
 * keep their own (legacy) stream; and seqs that jump implausibly far
 * ahead are refused (seq poisoning).
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

#include "cloud_test.h"
#include "edgetel/ack.h"
#include "edgetel/codec.h"
#include "edgetel/ingest.h"
#include "edgetel/log.h"
#include "log_capture.h"

static int setup(void **state)
{
    log_capture_start();
    return cloud_fixture_setup(state);
}

static int teardown(void **state)
{
    log_capture_stop();
    return cloud_fixture_teardown(state);
}

static struct et_store_device device_row(struct cloud_fixture *f, const char *device)
{
    return cloud_device(f->r, device);
}

static void no_publish(void *ctx, const struct et_ingest_reply *r)
{
}

/* Seqs first..last of device's stream, one sample each, in one group commit. */
static void ingest_run(struct cloud_fixture *f, const char *device, const uint8_t *stream,
                       uint64_t first, uint64_t last)
{
    struct et_ingest_reply r;

    assert_int_equal(et_ingest_group_begin(f->ig), 0);
    for (uint64_t seq = first; seq <= last; seq++) {
        assert_int_equal(cloud_ingest_batch_in(f->ig, device, stream, seq, first, 1, CLOUD_NOW,
                                               &r), 0);
        assert_int_equal(r.kind, ET_INGEST_STORED);
    }
    assert_int_equal(et_ingest_group_end(f->ig, no_publish, NULL, NULL), 0);
}

static bool batch_seen(struct cloud_fixture *f, const char *device, const char *stream_hex,
                       uint64_t seq)
{
    bool seen = true;

    assert_int_equal(et_store_batch_seen(f->w, device, stream_hex, seq, &seen), 0);
    return seen;
}

/* ---- a re-flashed board ------------------------------------------------------ */

static void new_stream_is_stored_not_taken_for_repeats(void **state)
{
    struct cloud_fixture *f = *state;
    struct et_ingest_reply r;
    uint64_t sel;

    /* The board's first life: seqs 1..500, all stored and acknowledged. */
    ingest_run(f, "dev1", cloud_stream_a, 1, 500);
    assert_int_equal(cloud_ingest_batch(f->ig, "dev1", 500, 1, 1, &r), 0);
    assert_int_equal(r.kind, ET_INGEST_DUPLICATE);
    cloud_assert_ack(&r, "dev1", 500, NULL, 0);
    assert_int_equal(cloud_stored(f->r, "dev1", "sim.counter"), 500);
    assert_int_equal(log_capture_count("started a new stream", NULL), 0);

    /* Re-flashed: a new data directory, a new stream, seq 1 again. */
    for (uint64_t seq = 1; seq <= 3; seq++) {
        assert_int_equal(cloud_ingest_batch_in(f->ig, "dev1", cloud_stream_b, seq, 1, 2,
                                               CLOUD_NOW, &r), 0);
        assert_int_equal(r.kind, ET_INGEST_STORED);
        assert_false(r.new_device);
        cloud_assert_ack_in(&r, "dev1", cloud_stream_b, seq, NULL, 0);
    }
    assert_int_equal(cloud_stored(f->r, "dev1", "sim.counter"), 506);
    assert_true(batch_seen(f, "dev1", CLOUD_STREAM_B_HEX, 3));
    assert_false(batch_seen(f, "dev1", CLOUD_STREAM_B_HEX, 4));

    /* Said once, with what it replaced. */
    assert_int_equal(log_capture_count("device dev1 started a new stream " CLOUD_STREAM_B_HEX
                                       " (was " CLOUD_STREAM_A_HEX ", acked through 500)",
                                       NULL), 1);
    assert_int_equal(log_capture_count("started a new stream", NULL), 1);
    assert_int_equal(et_ingest_stats(f->ig)->new_streams, 2);   /* A with the device, B */

    /* The device table shows the new stream, since now, and its ack. */
    struct et_store_device d = device_row(f, "dev1");

    assert_true(d.has_stream);
    assert_string_equal(d.stream_hex, CLOUD_STREAM_B_HEX);
    assert_int_equal(d.stream_started_ms, CLOUD_NOW);
    assert_int_equal(d.acked_through, 3);
    assert_int_equal(d.batches_stored, 503);

    /* A batch of the new stream sent twice is a repeat in that stream. */
    assert_int_equal(cloud_ingest_batch_in(f->ig, "dev1", cloud_stream_b, 2, 1, 2, CLOUD_NOW,
                                           &r), 0);
    assert_int_equal(r.kind, ET_INGEST_DUPLICATE);
    cloud_assert_ack_in(&r, "dev1", cloud_stream_b, 3, NULL, 0);
    /* Live overtaking its backlog: acked selectively in its stream. */
    assert_int_equal(cloud_ingest_batch_in(f->ig, "dev1", cloud_stream_b, 9, 4, 2, CLOUD_NOW,
                                           &r), 0);
    sel = 9;
    cloud_assert_ack_in(&r, "dev1", cloud_stream_b, 3, &sel, 1);
}

static void old_stream_leftovers_keep_their_own_stream(void **state)
{
    struct cloud_fixture *f = *state;
    struct et_ingest_reply r;

    ingest_run(f, "dev1", cloud_stream_a, 1, 500);
    ingest_run(f, "dev1", cloud_stream_b, 1, 2);

    /* In flight before the wipe: a repeat of the old stream... */
    assert_int_equal(cloud_ingest_batch_in(f->ig, "dev1", cloud_stream_a, 499, 499, 1,
                                           CLOUD_NOW, &r), 0);
    assert_int_equal(r.kind, ET_INGEST_DUPLICATE);
    cloud_assert_ack_in(&r, "dev1", cloud_stream_a, 500, NULL, 0);
    /* ...and one it never got, stored and acked in the old stream. */
    assert_int_equal(cloud_ingest_batch_in(f->ig, "dev1", cloud_stream_a, 501, 499, 1,
                                           CLOUD_NOW, &r), 0);
    assert_int_equal(r.kind, ET_INGEST_STORED);
    cloud_assert_ack_in(&r, "dev1", cloud_stream_a, 501, NULL, 0);
    assert_true(batch_seen(f, "dev1", CLOUD_STREAM_A_HEX, 501));
    assert_false(batch_seen(f, "dev1", CLOUD_STREAM_B_HEX, 501));

    /* The old stream's leftovers do not make it current again. */
    struct et_store_device d = device_row(f, "dev1");

    assert_string_equal(d.stream_hex, CLOUD_STREAM_B_HEX);
    assert_int_equal(d.acked_through, 2);
    assert_int_equal(log_capture_count("started a new stream", NULL), 1);
}

static void status_names_the_new_stream_first(void **state)
{
    struct cloud_fixture *f = *state;
    Edgetel__V1__Status s = EDGETEL__V1__STATUS__INIT;
    struct et_ingest_reply r;
    uint8_t buf[256];
    size_t len;

    ingest_run(f, "dev1", cloud_stream_a, 1, 5);

    /* The re-flashed board's birth Status arrives before any batch of it. */
    s.device_id = "dev1";
    s.online = true;
    s.stream_id.data = (uint8_t *)cloud_stream_b;
    s.stream_id.len = ET_STREAM_ID_LEN;
    len = edgetel__v1__status__pack(&s, buf);
    for (int i = 0; i < 2; i++) {
        assert_int_equal(et_ingest_message(f->ig, CLOUD_ROOT "/v1/dev1/status", buf, len,
                                           CLOUD_NOW + 1000, &r), 0);
        assert_int_equal(r.kind, ET_INGEST_STATUS);
    }
    assert_int_equal(log_capture_count("device dev1 started a new stream " CLOUD_STREAM_B_HEX
                                       " (was " CLOUD_STREAM_A_HEX ", acked through 5)",
                                       NULL), 1);
    struct et_store_device d = device_row(f, "dev1");

    assert_string_equal(d.stream_hex, CLOUD_STREAM_B_HEX);
    assert_int_equal(d.stream_started_ms, CLOUD_NOW + 1000);
    assert_int_equal(d.acked_through, 0);

    /* Its first batch: stored, and not said again. */
    assert_int_equal(cloud_ingest_batch_in(f->ig, "dev1", cloud_stream_b, 1, 1, 1,
                                           CLOUD_NOW + 2000, &r), 0);
    assert_int_equal(r.kind, ET_INGEST_STORED);
    cloud_assert_ack_in(&r, "dev1", cloud_stream_b, 1, NULL, 0);
    assert_int_equal(log_capture_count("started a new stream", NULL), 1);

    /* A Status without a stream (an agent from before streams) changes none. */
    s.stream_id.len = 0;
    len = edgetel__v1__status__pack(&s, buf);
    assert_int_equal(et_ingest_message(f->ig, CLOUD_ROOT "/v1/dev1/status", buf, len,
                                       CLOUD_NOW + 3000, &r), 0);
    assert_string_equal(device_row(f, "dev1").stream_hex, CLOUD_STREAM_B_HEX);
}

/* Agents from before streams send no stream id: their own, legacy, stream. */
static void batches_without_a_stream_are_the_legacy_stream(void **state)
{
    struct cloud_fixture *f = *state;
    struct et_ingest_reply r;

    ingest_run(f, "old", NULL, 1, 3);
    assert_int_equal(cloud_ingest_batch_in(f->ig, "old", NULL, 3, 1, 1, CLOUD_NOW, &r), 0);
    assert_int_equal(r.kind, ET_INGEST_DUPLICATE);
    cloud_assert_ack_in(&r, "old", NULL, 3, NULL, 0);   /* no stream id on the wire */
    assert_true(batch_seen(f, "old", "", 3));
    assert_int_equal(log_capture_count("new device old (first batch seq 1, stream legacy)",
                                       NULL), 1);

    /* Upgraded in place: the outbox's new stream continues its seqs. */
    assert_int_equal(cloud_ingest_batch_in(f->ig, "old", cloud_stream_a, 4, 4, 1, CLOUD_NOW,
                                           &r), 0);
    assert_int_equal(r.kind, ET_INGEST_STORED);
    cloud_assert_ack_in(&r, "old", cloud_stream_a, 4, NULL, 0);
    assert_int_equal(log_capture_count("device old started a new stream " CLOUD_STREAM_A_HEX
                                       " (was legacy, acked through 3)", NULL), 1);
}

/* ---- seq poisoning ---------------------------------------------------------- */

/* When assert_refused() last had the log say what it held back: later each time. */
static int64_t said_at;

/* Refused: malformed, nothing stored, no Ack; true when the log says why with n1 and n2. */
static void assert_refused(struct cloud_fixture *f, const char *device, const uint8_t *stream,
                           uint64_t seq, uint64_t oldest, int64_t now_ms, const char *n1,
                           const char *n2)
{
    const struct et_ingest_stats *st = et_ingest_stats(f->ig);
    uint64_t malformed = st->malformed, batches = st->batches;
    char hex[ET_STORE_STREAM_HEX_LEN + 1];
    struct et_ingest_reply r;

    assert_int_equal(cloud_ingest_batch_in(f->ig, device, stream, seq, oldest, 1, now_ms, &r),
                     0);
    assert_int_equal(r.kind, ET_INGEST_MALFORMED);
    assert_null(r.ack);
    assert_false(r.ack_held);
    assert_int_equal(st->malformed, malformed + 1);
    assert_int_equal(st->batches, batches);
    et_store_hex(stream, ET_STREAM_ID_LEN, hex);
    assert_false(batch_seen(f, device, hex, seq));
    /* The line names the device, the stream and the numbers: said at once
     * or, after the device's first, with the count when its minute is up. */
    said_at = (said_at > now_ms ? said_at : now_ms) + 2 * 60000;
    et_ingest_tick(f->ig, said_at);
    assert_true(log_capture_count(device, hex, NULL) >= 1);
    assert_true(log_capture_count(n1, n2, NULL) >= 1);
}

static void seqs_far_ahead_are_refused(void **state)
{
    struct cloud_fixture *f = *state;
    struct et_ingest_reply r;
    const uint64_t jump = UINT64_C(1) << 20;
    const uint64_t poison = (UINT64_C(1) << 63) - 5;

    ingest_run(f, "dev1", cloud_stream_a, 1, 10);

    /* Near 2^63, as seq and as oldest_seq: refused, the ack stays. */
    assert_refused(f, "dev1", cloud_stream_a, poison, 1, CLOUD_NOW, "seq 9223372036854775803 "
                   "(oldest_seq 1)", "jumps implausibly far ahead of its highest seq 10");
    assert_refused(f, "dev1", cloud_stream_a, poison, poison, CLOUD_NOW,
                   "(oldest_seq 9223372036854775803)", "at most 1048586 now");
    /* Just past the bound, and the bound itself. */
    assert_refused(f, "dev1", cloud_stream_a, 10 + jump + 1, 10 + jump + 1, CLOUD_NOW,
                   "seq 1048587", "at most 1048586");
    assert_int_equal(cloud_ingest_batch_in(f->ig, "dev1", cloud_stream_a, 11, 11, 1, CLOUD_NOW,
                                           &r), 0);
    cloud_assert_ack(&r, "dev1", 11, NULL, 0);   /* not pinned: still counting from 11 */
    assert_int_equal(cloud_ingest_batch_in(f->ig, "dev1", cloud_stream_a, 11 + jump,
                                           11 + jump, 1, CLOUD_NOW, &r), 0);
    assert_int_equal(r.kind, ET_INGEST_STORED);
    cloud_assert_ack(&r, "dev1", 11 + jump, NULL, 0);   /* evicted in between: plausible */

    /* The bound grows with the time since the stream's highest seq. */
    uint64_t top = 11 + jump, later = top + jump + 100 * ET_ACK_SEQ_JUMP_PER_S;

    assert_refused(f, "dev1", cloud_stream_a, later, top + 1, CLOUD_NOW + 50000,
                   "jumps implausibly far ahead", NULL);
    assert_int_equal(cloud_ingest_batch_in(f->ig, "dev1", cloud_stream_a, later, top + 1, 1,
                                           CLOUD_NOW + 100000, &r), 0);
    assert_int_equal(r.kind, ET_INGEST_STORED);

    /* A new stream starts at most at 2^40. */
    assert_refused(f, "dev1", cloud_stream_b, (UINT64_C(1) << 40) + 1, 1, CLOUD_NOW,
                   "of stream " CLOUD_STREAM_B_HEX ": a stream's first batch starts at most "
                   "at 1099511627776", NULL);
    assert_int_equal(log_capture_count("started a new stream", NULL), 0);
    assert_int_equal(cloud_ingest_batch_in(f->ig, "dev1", cloud_stream_b, 1, 1, 1, CLOUD_NOW,
                                           &r), 0);
    assert_int_equal(r.kind, ET_INGEST_STORED);
}

/* Refusing a batch inside a group spoils none of the others' batches. */
static void refused_in_a_group_spoils_nothing(void **state)
{
    struct cloud_fixture *f = *state;
    struct et_ingest_reply r;
    size_t held = 0;

    ingest_run(f, "dev1", cloud_stream_a, 1, 10);
    assert_int_equal(et_ingest_group_begin(f->ig), 0);
    assert_int_equal(cloud_ingest_batch(f->ig, "dev2", 1, 1, 1, &r), 0);
    assert_int_equal(r.kind, ET_INGEST_STORED);
    assert_int_equal(cloud_ingest_batch(f->ig, "dev1", UINT64_C(1) << 62, 1, 1, &r), 0);
    assert_int_equal(r.kind, ET_INGEST_MALFORMED);
    assert_int_equal(cloud_ingest_batch(f->ig, "dev2", 2, 1, 1, &r), 0);
    assert_int_equal(r.kind, ET_INGEST_STORED);
    assert_int_equal(et_ingest_group_end(f->ig, no_publish, NULL, &held), 0);
    assert_int_equal(held, 2);
    assert_true(batch_seen(f, "dev2", CLOUD_STREAM_A_HEX, 2));
    assert_int_equal(device_row(f, "dev1").acked_through, 10);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(new_stream_is_stored_not_taken_for_repeats, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(old_stream_leftovers_keep_their_own_stream, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(status_names_the_new_stream_first, setup, teardown),
        cmocka_unit_test_setup_teardown(batches_without_a_stream_are_the_legacy_stream, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(seqs_far_ahead_are_refused, setup, teardown),
        cmocka_unit_test_setup_teardown(refused_in_a_group_spoils_nothing, setup, teardown),
    };

    et_log_init("test_ingest_streams", ET_LOG_INFO);
    return cmocka_run_group_tests(tests, NULL, NULL);
}
