/*
 * A device that sends garbage, in the aggregator's log: its first
 * malformed message is said in full, then at most one line a minute with
 * how many more came and the last cause, also when it stops sending; and
 * a fleet of hostile ids cannot grow the memory behind that. Every
 * malformed message is counted all the same.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <string.h>

#include "cloud_test.h"
#include "edgetel/ingest.h"

#define MINUTE 60000

/* Garbage on the device's telemetry topic at now_ms: malformed. */
static void send_garbage(struct cloud_fake *f, const char *device, int64_t now_ms)
{
    static const uint8_t junk[] = { 0xff, 0xff, 0xff, 0x01 };
    struct et_ingest_reply r;
    char topic[128];

    snprintf(topic, sizeof(topic), CLOUD_ROOT "/v1/%s/telemetry", device);
    assert_int_equal(et_ingest_message(f->ig, topic, junk, sizeof(junk), now_ms, &r), 0);
    assert_int_equal(r.kind, ET_INGEST_MALFORMED);
}

static void a_flood_is_said_once_a_minute_with_its_count(void **state)
{
    struct cloud_fake *f = *state;
    int64_t t = CLOUD_NOW;

    /* 600 messages over 150 s, one every 250 ms; another device once. */
    for (int i = 0; i < 600; i++, t += 250) {
        send_garbage(f, "pi-bad", t);
        et_ingest_tick(f->ig, t);
    }
    send_garbage(f, "pi-other", t);
    assert_int_equal(et_ingest_stats(f->ig)->malformed, 601);
    /* The first in full, with its cause and what happens to the rest. */
    assert_int_equal(log_capture_count("device pi-bad: dropped a malformed batch on "
                                       "edgetel/v1/pi-bad/telemetry, neither stored nor "
                                       "acknowledged: ", "said once a minute", NULL), 1);
    /* Then a line a minute: 240 more in each of the two minutes since. */
    assert_int_equal(log_capture_count("device pi-bad: 240 more malformed messages in the last "
                                       "60 s; the last: dropped a malformed batch on "
                                       "edgetel/v1/pi-bad/telemetry, neither stored nor "
                                       "acknowledged: ", NULL), 2);
    assert_int_equal(log_capture_count("pi-bad", NULL), 3);
    assert_int_equal(log_capture_count("device pi-other: dropped a malformed", NULL), 1);

    /* It stopped: what came after the last line is said when its minute is up. */
    assert_int_equal(et_ingest_tick(f->ig, t), MINUTE / 2);
    assert_int_equal(log_capture_count("more malformed", NULL), 2);
    assert_int_equal(et_ingest_tick(f->ig, t + MINUTE / 2), INT64_MAX);
    assert_int_equal(log_capture_count("device pi-bad: 119 more malformed messages in the last "
                                       "60 s", NULL), 1);
    assert_int_equal(log_capture_count("pi-bad", NULL), 4);
    /* Quiet for a minute: the next one is said in full again. */
    send_garbage(f, "pi-bad", t + 3 * MINUTE);
    assert_int_equal(log_capture_count("device pi-bad: dropped a malformed", NULL), 2);
}

static void a_fleet_of_ids_keeps_memory_bounded_and_loses_no_count(void **state)
{
    struct cloud_fake *f = *state;
    char device[32];
    int64_t t = CLOUD_NOW;

    /* Each of 20000 ids twice: the second only counted, for now. */
    for (int i = 0; i < 20000; i++, t++) {
        snprintf(device, sizeof(device), "hostile-%d", i);
        send_garbage(f, device, t);
        send_garbage(f, device, t);
    }
    assert_int_equal(et_ingest_stats(f->ig)->malformed, 40000);
    assert_true(et_ingest_malformed_devices(f->ig) <= 1024);
    assert_int_equal(log_capture_count("said once a minute", NULL), 20000);
    /* Ids whose place was taken had their count said then; the rest when
     * their minute is up. None is lost from the log. */
    et_ingest_tick(f->ig, t + MINUTE);
    assert_int_equal(log_capture_count("1 more malformed message in the last", NULL), 20000);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(a_flood_is_said_once_a_minute_with_its_count,
                                        cloud_fake_setup, cloud_fake_teardown),
        cmocka_unit_test_setup_teardown(a_fleet_of_ids_keeps_memory_bounded_and_loses_no_count,
                                        cloud_fake_setup, cloud_fake_teardown),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
