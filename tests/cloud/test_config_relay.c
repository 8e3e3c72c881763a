/*
 * The config relay's sending rules (cloud/config_relay.c) on a real SQLite
 * store: a device's desired config is the newest for it or its groups; a
 * Status that is behind gets it again, one that is up to date does not; a
 * group's config goes to the devices heard from that claim the group, and
 * to no other; the poll starts with each target's newest and goes on where
 * a full MQTT client stopped it; a version a board refused is not sent to
 * it again; two relays on one store send the same bytes.
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
#include "edgetel/store_open.h"
#include "relay_fixture.h"

#define NOW CLOUD_NOW
#define DEV ET_CONFIG_TARGET_DEVICE
#define GROUP ET_CONFIG_TARGET_GROUP

static const char *const lab[] = { "lab" };
static const char *const lab_roof[] = { "roof", "lab" };
static const char *const roof[] = { "roof" };

static uint64_t desired(struct relay_fixture *rf, const char *device, const char *groups,
                        enum et_config_target *kind, const char **target)
{
    static struct et_config_desired want;

    assert_int_equal(et_config_desired_for(rf->sc, device, groups, &want), 0);
    if (kind)
        *kind = want.kind;
    if (target)
        *target = want.target;
    return want.version;
}

static void desired_is_newest_for_the_device_or_its_groups(void **state)
{
    struct relay_fixture *rf = *state;
    enum et_config_target kind;
    const char *target;

    assert_int_equal(desired(rf, "pi-1", "lab,roof", NULL, NULL), 0);
    assert_int_equal(relay_push(rf, GROUP, "lab"), 1);
    assert_int_equal(relay_push(rf, DEV, "pi-1"), 2);
    assert_int_equal(relay_push(rf, GROUP, "roof"), 3);
    assert_int_equal(relay_push(rf, GROUP, "lab2"), 4);   /* no prefix match for "lab" */

    /* pi-1 in both groups: the fleet's counter makes roof's v3 the newest. */
    assert_int_equal(desired(rf, "pi-1", "lab,roof", &kind, &target), 3);
    assert_int_equal(kind, GROUP);
    assert_string_equal(target, "roof");
    /* Its own v2 beats lab's v1. */
    assert_int_equal(desired(rf, "pi-1", "lab", &kind, &target), 2);
    assert_int_equal(kind, DEV);
    assert_string_equal(target, "pi-1");
    assert_int_equal(desired(rf, "pi-2", "lab", NULL, NULL), 1);
    assert_int_equal(desired(rf, "pi-3", "", NULL, NULL), 0);
    /* A device's own newer push wins over its group's. */
    assert_int_equal(relay_push(rf, DEV, "pi-2"), 5);
    assert_int_equal(desired(rf, "pi-2", "lab", NULL, NULL), 5);

    /* Behind: older than desired, and not a version it refused. */
    struct et_store_config_report rep = { .version = 5, .result = ET_CONFIG_RESULT_REJECTED };

    assert_true(et_config_behind(5, 4, NULL));
    assert_false(et_config_behind(5, 5, NULL));
    assert_false(et_config_behind(5, 6, NULL));
    assert_false(et_config_behind(0, 0, NULL));
    assert_false(et_config_behind(5, 4, &rep));
    rep.result = ET_CONFIG_RESULT_REVERTED;
    assert_false(et_config_behind(5, 4, &rep));
    rep.result = ET_CONFIG_RESULT_APPLIED;
    assert_true(et_config_behind(5, 4, &rep));
    rep = (struct et_store_config_report){ .version = 4, .result = ET_CONFIG_RESULT_REJECTED };
    assert_true(et_config_behind(5, 4, &rep));
}

static void a_status_behind_is_sent_its_config_again(void **state)
{
    struct relay_fixture *rf = *state;
    uint64_t v = 0;

    assert_int_equal(relay_push(rf, DEV, "pi-1"), 1);
    /* The board's birth Status: it runs its local file only. */
    relay_status(rf, "pi-1", 0, NULL, 0, NOW);
    assert_int_equal(relay_sent_to(rf, "pi-1", &v), 1);
    assert_int_equal(v, 1);
    /* The bytes exactly as stored, on the device's own topic only. */
    assert_int_equal(rf->n_sent, 1);
    assert_string_equal(rf->sent[0].topic, "edgetel/v1/pi-1/config");
    assert_string_equal(rf->sent[0].payload, "signed config v1");
    assert_int_equal(log_capture_count("config v1 (for device pi-1) sent to pi-1, which runs its "
                                       "local file only", NULL), 1);

    /* Up to date: nothing. */
    relay_sent_clear(rf);
    relay_status(rf, "pi-1", 1, NULL, 0, NOW + 1000);
    assert_int_equal(rf->n_sent, 0);
    /* Re-flashed (its file only again), or a broker that lost the retained
     * message and a board that never got it: sent again. */
    relay_status(rf, "pi-1", 0, NULL, 0, NOW + 2000);
    assert_int_equal(relay_sent_to(rf, "pi-1", &v), 1);
    assert_int_equal(v, 1);
    /* A device without a desired config is sent nothing. */
    relay_sent_clear(rf);
    relay_status(rf, "pi-2", 0, lab, 1, NOW);
    assert_int_equal(rf->n_sent, 0);
    assert_int_equal(et_config_relay_stats(rf->relay)->sent, 2);
}

static void a_group_config_goes_to_the_devices_that_claim_the_group(void **state)
{
    struct relay_fixture *rf = *state;
    uint64_t v = 0;

    relay_poll(rf, NOW);   /* nothing pushed yet */
    relay_status(rf, "pi-1", 0, lab, 1, NOW);
    relay_status(rf, "pi-2", 0, lab_roof, 2, NOW);
    relay_status(rf, "pi-3", 0, roof, 1, NOW);
    relay_status(rf, "pi-4", 0, NULL, 0, NOW);
    assert_int_equal(rf->n_sent, 0);
    assert_string_equal(relay_device(rf->sc, "pi-2").groups, "lab,roof");

    assert_int_equal(relay_push(rf, GROUP, "lab"), 1);
    relay_poll(rf, NOW + 1000);
    assert_int_equal(relay_sent_to(rf, "pi-1", &v), 1);
    assert_int_equal(v, 1);
    assert_int_equal(relay_sent_to(rf, "pi-2", &v), 1);
    assert_int_equal(rf->n_sent, 2);   /* not pi-3, not pi-4 */
    assert_int_equal(log_capture_count("config v1 for group lab sent to 2 devices", NULL), 1);

    /* Dealt with: the next poll sends nothing. */
    relay_sent_clear(rf);
    relay_poll(rf, NOW + 2000);
    assert_int_equal(rf->n_sent, 0);

    /* A board that joins the group later gets it with its first Status. */
    relay_status(rf, "pi-5", 0, lab, 1, NOW + 3000);
    assert_int_equal(relay_sent_to(rf, "pi-5", &v), 1);
    /* A board that leaves the group (its file changed) is sent nothing more. */
    relay_sent_clear(rf);
    relay_status(rf, "pi-1", 0, NULL, 0, NOW + 4000);
    assert_int_equal(rf->n_sent, 0);

    /* A config pushed for a board never heard from waits for it on the broker. */
    assert_int_equal(relay_push(rf, DEV, "pi-9"), 2);
    relay_poll(rf, NOW + 5000);
    assert_int_equal(relay_sent_to(rf, "pi-9", &v), 1);
    assert_int_equal(v, 2);
}

static void a_starting_relay_offers_each_targets_newest_to_the_devices_behind(void **state)
{
    struct relay_fixture *rf = *state;
    struct et_config_relay *fresh;
    uint64_t v = 0;

    relay_status(rf, "pi-1", 0, lab, 1, NOW);
    relay_status(rf, "pi-2", 0, lab, 1, NOW);
    relay_status(rf, "pi-3", 0, lab, 1, NOW);
    relay_status(rf, "pi-4", 0, roof, 1, NOW);
    relay_sent_clear(rf);
    assert_int_equal(relay_push(rf, GROUP, "lab"), 1);
    assert_int_equal(relay_push(rf, GROUP, "lab"), 2);
    assert_int_equal(relay_push(rf, DEV, "pi-1"), 3);
    /* pi-2 runs v2 already (another aggregator sent it). */
    relay_status(rf, "pi-2", 2, lab, 1, NOW);
    relay_sent_clear(rf);

    assert_int_equal(et_config_relay_create(&fresh, rf->sc, CLOUD_ROOT, relay_fixture_publish,
                                            rf), 0);
    assert_int_equal(et_config_relay_poll(fresh, NOW), 0);
    /* v1 is nobody's any more; pi-1's own v3 beats lab's v2. */
    assert_int_equal(relay_sent_to(rf, "pi-1", &v), 1);
    assert_int_equal(v, 3);
    assert_int_equal(relay_sent_to(rf, "pi-2", NULL), 0);
    assert_int_equal(relay_sent_to(rf, "pi-3", &v), 1);
    assert_int_equal(v, 2);
    assert_int_equal(relay_sent_to(rf, "pi-4", NULL), 0);
    assert_int_equal(rf->n_sent, 2);
    /* In version order. */
    assert_string_equal(rf->sent[0].topic, "edgetel/v1/pi-3/config");

    relay_sent_clear(rf);
    assert_int_equal(et_config_relay_poll(fresh, NOW + 1000), 0);
    assert_int_equal(rf->n_sent, 0);
    et_config_relay_destroy(fresh);
}

static void a_full_mqtt_client_stops_the_poll_and_it_goes_on_from_there(void **state)
{
    struct relay_fixture *rf = *state;
    char id[16];

    for (int i = 1; i <= 5; i++) {
        snprintf(id, sizeof(id), "pi-%d", i);
        relay_status(rf, id, 0, lab, 1, NOW);
    }
    assert_int_equal(relay_push(rf, GROUP, "lab"), 1);
    rf->take = 2;
    relay_poll(rf, NOW);
    assert_int_equal(rf->n_sent, 2);
    assert_int_equal(et_config_relay_stats(rf->relay)->not_sent, 1);
    /* Still full: nothing goes, nothing is skipped. */
    relay_poll(rf, NOW + 1000);
    assert_int_equal(rf->n_sent, 2);

    rf->take = -1;
    relay_poll(rf, NOW + 2000);
    assert_int_equal(rf->n_sent, 5);
    for (int i = 1; i <= 5; i++) {
        snprintf(id, sizeof(id), "pi-%d", i);
        assert_int_equal(relay_sent_to(rf, id, NULL), 1);   /* each once */
    }

    /* A Status that finds the client full is offered again at the next poll. */
    assert_int_equal(relay_push(rf, DEV, "pi-6"), 2);
    relay_poll(rf, NOW + 3000);
    relay_sent_clear(rf);
    rf->take = 0;
    relay_status(rf, "pi-6", 0, NULL, 0, NOW + 4000);
    assert_int_equal(rf->n_sent, 0);
    rf->take = -1;
    relay_poll(rf, NOW + 5000);
    assert_int_equal(relay_sent_to(rf, "pi-6", NULL), 1);
}

static void a_version_the_board_refused_is_not_sent_to_it_again(void **state)
{
    struct relay_fixture *rf = *state;
    uint64_t v = 0;

    assert_int_equal(relay_push(rf, DEV, "pi-1"), 1);
    relay_status(rf, "pi-1", 0, NULL, 0, NOW);
    assert_int_equal(relay_sent_to(rf, "pi-1", NULL), 1);
    assert_int_equal(relay_report(rf->relay, "pi-1", 1, ET_CONFIG_RESULT_REVERTED,
                                  "uplink did not reconnect within 2m", 0, NOW + 1),
                     ET_CONFIG_RELAY_RECORDED);
    relay_sent_clear(rf);
    relay_status(rf, "pi-1", 0, NULL, 0, NOW + 1000);
    assert_int_equal(rf->n_sent, 0);
    /* A new version is the way on. */
    assert_int_equal(relay_push(rf, DEV, "pi-1"), 2);
    relay_poll(rf, NOW + 2000);
    assert_int_equal(relay_sent_to(rf, "pi-1", &v), 1);
    assert_int_equal(v, 2);
}

static void two_relays_on_one_store_agree(void **state)
{
    struct relay_fixture *rf = *state;
    struct et_store *s2;
    struct et_config_relay *r2;
    char err[256];

    assert_int_equal(et_store_open(&s2, rf->f->type, rf->f->path, 0, err, sizeof(err)), 0);
    assert_int_equal(et_config_relay_create(&r2, et_store_config(s2), CLOUD_ROOT,
                                            relay_fixture_publish, rf), 0);
    relay_status(rf, "pi-1", 0, lab, 1, NOW);
    assert_int_equal(relay_push(rf, GROUP, "lab"), 1);
    relay_poll(rf, NOW);
    assert_int_equal(et_config_relay_poll(r2, NOW), 0);
    /* Both send it: the same retained bytes twice, which a board ignores. */
    assert_int_equal(rf->n_sent, 2);
    assert_string_equal(rf->sent[0].topic, rf->sent[1].topic);
    assert_int_equal(rf->sent[0].len, rf->sent[1].len);
    assert_memory_equal(rf->sent[0].payload, rf->sent[1].payload, rf->sent[0].len);

    /* Both record the board's (retained) report; it is said once. */
    assert_int_equal(relay_report(rf->relay, "pi-1", 1, ET_CONFIG_RESULT_COMMITTED, "", 1,
                                  NOW + 1), ET_CONFIG_RELAY_RECORDED);
    assert_int_equal(relay_report(r2, "pi-1", 1, ET_CONFIG_RESULT_COMMITTED, "", 1, NOW + 2),
                     ET_CONFIG_RELAY_RECORDED);
    assert_int_equal(log_capture_count("config v1 on pi-1: committed", NULL), 1);
    assert_int_equal(relay_device(rf->sc, "pi-1").running_version, 1);
    assert_int_equal(relay_device(et_store_config(s2), "pi-1").report.received_ms, NOW + 1);
    /* Up to date for both now. */
    relay_sent_clear(rf);
    relay_status(rf, "pi-1", 1, lab, 1, NOW + 3);
    assert_int_equal(et_config_relay_status(r2, "pi-1", 1, NOW + 3), 0);
    assert_int_equal(rf->n_sent, 0);
    et_config_relay_destroy(r2);
    et_store_close(s2);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(desired_is_newest_for_the_device_or_its_groups,
                                        relay_fixture_setup, relay_fixture_teardown),
        cmocka_unit_test_setup_teardown(a_status_behind_is_sent_its_config_again,
                                        relay_fixture_setup, relay_fixture_teardown),
        cmocka_unit_test_setup_teardown(a_group_config_goes_to_the_devices_that_claim_the_group,
                                        relay_fixture_setup, relay_fixture_teardown),
        cmocka_unit_test_setup_teardown(
            a_starting_relay_offers_each_targets_newest_to_the_devices_behind,
            relay_fixture_setup, relay_fixture_teardown),
        cmocka_unit_test_setup_teardown(
            a_full_mqtt_client_stops_the_poll_and_it_goes_on_from_there, relay_fixture_setup,
            relay_fixture_teardown),
        cmocka_unit_test_setup_teardown(a_version_the_board_refused_is_not_sent_to_it_again,
                                        relay_fixture_setup, relay_fixture_teardown),
        cmocka_unit_test_setup_teardown(two_relays_on_one_store_agree, relay_fixture_setup,
                                        relay_fixture_teardown),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
