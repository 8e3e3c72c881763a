/*
 * Boards' config reports through the relay (cloud/config_report.c) on a
 * real SQLite store: recorded and said for a person; refused, with a line
 * that names the device and the cause at most once a minute, when they
 * name another device, are too large, are not a ConfigReport, hold text
 * that is not text, or come too fast; a device's history kept bounded; a
 * late report never replaces a later one.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "edgetel/codec.h"
#include "edgetel/config_relay.h"
#include "relay_fixture.h"

#define NOW CLOUD_NOW
#define TOPIC CLOUD_ROOT "/v1/pi-1/config/report"

static enum et_config_relay_kind message(struct relay_fixture *rf, const char *topic,
                                         const void *payload, size_t len, int64_t now_ms)
{
    enum et_config_relay_kind kind = ET_CONFIG_RELAY_RECORDED;

    assert_int_equal(et_config_relay_message(rf->relay, topic, payload, len, now_ms, &kind), 0);
    return kind;
}

static int count_history(void *ctx, const struct et_store_config_report *rep)
{
    (*(int *)ctx)++;
    return 0;
}

static int history(struct relay_fixture *rf, const char *device)
{
    int n = 0;

    assert_int_equal(et_store_config_report_history(rf->sc, device, 1000, count_history, &n), 0);
    return n;
}

static void a_report_is_recorded_and_said(void **state)
{
    struct relay_fixture *rf = *state;
    struct et_store_device_config dc;

    relay_status(rf, "greenhouse-3", 6, NULL, 0, NOW);
    assert_int_equal(relay_report(rf->relay, "greenhouse-3", 7, ET_CONFIG_RESULT_APPLIED, "", 7,
                                  NOW + 10), ET_CONFIG_RELAY_RECORDED);
    assert_int_equal(relay_report(rf->relay, "greenhouse-3", 7, ET_CONFIG_RESULT_COMMITTED, "", 7,
                                  NOW + 20), ET_CONFIG_RELAY_RECORDED);
    assert_int_equal(log_capture_count("config v7 on greenhouse-3: applied", NULL), 1);
    assert_int_equal(log_capture_count("config v7 on greenhouse-3: committed", NULL), 1);
    dc = relay_device(rf->sc, "greenhouse-3");
    assert_true(dc.known);
    assert_true(dc.has_report);
    assert_int_equal(dc.report.version, 7);
    assert_int_equal(dc.report.result, ET_CONFIG_RESULT_COMMITTED);
    assert_int_equal(dc.report.device_ms, CLOUD_BASE_WALL + 7000 + ET_CONFIG_RESULT_COMMITTED);
    assert_true(dc.report.clock_synced);
    assert_int_equal(dc.report.received_ms, NOW + 20);
    assert_int_equal(dc.running_version, 7);   /* the report is the newest word */

    assert_int_equal(relay_report(rf->relay, "greenhouse-3", 8, ET_CONFIG_RESULT_REVERTED,
                                  "uplink did not reconnect within 2m", 7, NOW + 30),
                     ET_CONFIG_RELAY_RECORDED);
    assert_int_equal(log_capture_count("config v8 on greenhouse-3: reverted: uplink did not "
                                       "reconnect within 2m (runs v7)", NULL), 1);
    dc = relay_device(rf->sc, "greenhouse-3");
    assert_string_equal(dc.report.reason, "uplink did not reconnect within 2m");
    assert_int_equal(dc.running_version, 7);

    /* The same report again (retained, replayed to a restarted aggregator):
     * kept once, said once. */
    assert_int_equal(relay_report(rf->relay, "greenhouse-3", 8, ET_CONFIG_RESULT_REVERTED,
                                  "uplink did not reconnect within 2m", 7, NOW + 40),
                     ET_CONFIG_RELAY_RECORDED);
    assert_int_equal(log_capture_count("config v8 on greenhouse-3: reverted", NULL), 1);
    assert_int_equal(relay_device(rf->sc, "greenhouse-3").report.received_ms, NOW + 30);
    assert_int_equal(history(rf, "greenhouse-3"), 3);

    /* A late report of an older version never replaces the latest. */
    assert_int_equal(relay_report(rf->relay, "greenhouse-3", 5, ET_CONFIG_RESULT_COMMITTED, "", 5,
                                  NOW + 50), ET_CONFIG_RELAY_RECORDED);
    dc = relay_device(rf->sc, "greenhouse-3");
    assert_int_equal(dc.report.version, 8);
    assert_int_equal(dc.running_version, 7);
    assert_int_equal(history(rf, "greenhouse-3"), 4);

    /* A board not heard from yet: its report is kept all the same. */
    assert_int_equal(relay_report(rf->relay, "pi-new", 2, ET_CONFIG_RESULT_REJECTED,
                                  "signed by key 1a2b3c4d5e6f7081, which this device does not "
                                  "trust", 0, NOW), ET_CONFIG_RELAY_RECORDED);
    dc = relay_device(rf->sc, "pi-new");
    assert_false(dc.known);
    assert_true(dc.has_report);
    assert_int_equal(log_capture_count("config v2 on pi-new: rejected: signed by key", NULL), 1);
    assert_int_equal(et_config_relay_stats(rf->relay)->reports, 6);
}

static void a_report_for_another_device_is_refused(void **state)
{
    struct relay_fixture *rf = *state;
    size_t len;
    uint8_t *buf = relay_pack_report("pi-2", 3, ET_CONFIG_RESULT_COMMITTED, "", 3, &len);

    /* pi-1's certificate, pi-2's name: the topic is who it is. */
    assert_int_equal(message(rf, TOPIC, buf, len, NOW), ET_CONFIG_RELAY_REFUSED);
    assert_false(relay_device(rf->sc, "pi-2").has_report);
    assert_false(relay_device(rf->sc, "pi-1").has_report);
    assert_int_equal(log_capture_count("device pi-1: refused a config report on "
                                       "edgetel/v1/pi-1/config/report: it names device \"pi-2\", "
                                       "not its topic's", NULL), 1);
    /* Again within the minute: refused, not said; then said with the count. */
    assert_int_equal(message(rf, TOPIC, buf, len, NOW + 1000), ET_CONFIG_RELAY_REFUSED);
    assert_int_equal(message(rf, TOPIC, buf, len, NOW + 2000), ET_CONFIG_RELAY_REFUSED);
    assert_int_equal(log_capture_count("refused a config report", NULL), 1);
    assert_int_equal(message(rf, TOPIC, buf, len, NOW + 61000), ET_CONFIG_RELAY_REFUSED);
    assert_int_equal(log_capture_count("refused a config report", NULL), 2);
    assert_int_equal(log_capture_count("(2 more refused since the last such line)", NULL), 1);
    /* Another device's refusals are its own line. */
    assert_int_equal(message(rf, CLOUD_ROOT "/v1/pi-3/config/report", buf, len, NOW + 2000),
                     ET_CONFIG_RELAY_REFUSED);
    assert_int_equal(log_capture_count("device pi-3: refused a config report", NULL), 1);
    assert_int_equal(et_config_relay_stats(rf->relay)->refused, 5);
    free(buf);
}

static void malformed_reports_are_refused_with_the_cause(void **state)
{
    struct relay_fixture *rf = *state;
    uint8_t big[ET_WIRE_CONFIG_REPORT_MAX + 1];
    Edgetel__V1__ConfigReport rep = EDGETEL__V1__CONFIG_REPORT__INIT;
    uint8_t buf[256];
    size_t len;

    memset(big, 0x0a, sizeof(big));
    assert_int_equal(message(rf, TOPIC, big, sizeof(big), NOW), ET_CONFIG_RELAY_REFUSED);
    assert_int_equal(log_capture_count("device pi-1: refused a config report", "config report of "
                                       "4097 bytes is over the limit of 4096", NULL), 1);
    assert_int_equal(message(rf, CLOUD_ROOT "/v1/pi-2/config/report", "\xff\xff\xff", 3, NOW),
                     ET_CONFIG_RELAY_REFUSED);
    assert_int_equal(log_capture_count("device pi-2: refused", "are not a valid "
                                       "edgetel.v1.ConfigReport", NULL), 1);

    /* Text that is not text. */
    rep.device_id = "pi-3";
    rep.version = 4;
    rep.result = EDGETEL__V1__CONFIG_RESULT__CONFIG_RESULT_REJECTED;
    rep.reason = "bad \xc3";
    len = edgetel__v1__config_report__pack(&rep, buf);
    assert_int_equal(message(rf, CLOUD_ROOT "/v1/pi-3/config/report", buf, len, NOW),
                     ET_CONFIG_RELAY_REFUSED);
    assert_int_equal(log_capture_count("device pi-3: refused", "reason is not valid UTF-8",
                                       NULL), 1);
    /* No result a board sends. */
    rep.device_id = "pi-4";
    rep.reason = "";
    rep.result = (Edgetel__V1__ConfigResult)9;
    len = edgetel__v1__config_report__pack(&rep, buf);
    assert_int_equal(message(rf, CLOUD_ROOT "/v1/pi-4/config/report", buf, len, NOW),
                     ET_CONFIG_RELAY_REFUSED);
    assert_int_equal(log_capture_count("device pi-4: refused", "has no known result", NULL), 1);
    /* A topic with no device level of ours. */
    assert_int_equal(message(rf, CLOUD_ROOT "/v1/bad id/config/report", buf, len, NOW),
                     ET_CONFIG_RELAY_REFUSED);
    assert_int_equal(log_capture_count("device ?: refused", "no valid device id", NULL), 1);
    assert_int_equal(et_config_relay_stats(rf->relay)->reports, 0);

    /* Not the relay's: other topics, a cleared retained report. */
    assert_int_equal(message(rf, CLOUD_ROOT "/v1/pi-1/status", buf, len, NOW),
                     ET_CONFIG_RELAY_IGNORED);
    assert_int_equal(message(rf, "other/v1/pi-1/config/report", buf, len, NOW),
                     ET_CONFIG_RELAY_IGNORED);
    assert_int_equal(message(rf, TOPIC, "", 0, NOW), ET_CONFIG_RELAY_IGNORED);
    assert_int_equal(et_config_relay_stats(rf->relay)->refused, 5);
}

static void reports_are_paced_and_their_history_bounded(void **state)
{
    struct relay_fixture *rf = *state;
    int recorded = 0, refused = 0;
    int64_t now = NOW;

    /* A burst of 25 at once: the burst passes, the rest is refused, said once. */
    for (uint64_t v = 1; v <= 25; v++) {
        if (relay_report(rf->relay, "pi-1", v, ET_CONFIG_RESULT_COMMITTED, "", v, now) ==
            ET_CONFIG_RELAY_RECORDED)
            recorded++;
        else
            refused++;
    }
    assert_int_equal(recorded, ET_CONFIG_REPORT_BURST);
    assert_int_equal(refused, 5);
    assert_int_equal(log_capture_count("device pi-1 sends config reports faster than 1 a second",
                                       NULL), 1);
    /* At the paced rate every one is kept, and the history stops at its bound. */
    for (uint64_t v = 26; v <= 130; v++) {
        now += 1000;
        assert_int_equal(relay_report(rf->relay, "pi-1", v, ET_CONFIG_RESULT_COMMITTED, "", v,
                                      now), ET_CONFIG_RELAY_RECORDED);
    }
    assert_int_equal(history(rf, "pi-1"), ET_CONFIG_HISTORY_KEEP);
    assert_int_equal(relay_device(rf->sc, "pi-1").report.version, 130);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(a_report_is_recorded_and_said, relay_fixture_setup,
                                        relay_fixture_teardown),
        cmocka_unit_test_setup_teardown(a_report_for_another_device_is_refused,
                                        relay_fixture_setup, relay_fixture_teardown),
        cmocka_unit_test_setup_teardown(malformed_reports_are_refused_with_the_cause,
                                        relay_fixture_setup, relay_fixture_teardown),
        cmocka_unit_test_setup_teardown(reports_are_paced_and_their_history_bounded,
                                        relay_fixture_setup, relay_fixture_teardown),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
