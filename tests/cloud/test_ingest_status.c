/*
 * Status messages (cloud/ingest.c): what a device's row records of them,
 * that only an online Status counts as hearing the device, that a
 * replayed one is no news, and the messages that are refused or ignored;
 * on an in-memory writer and on a real SQLite store.
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
#include "edgetel/log.h"

#define ROOT CLOUD_ROOT
#define NOW CLOUD_NOW
#define BASE_WALL CLOUD_BASE_WALL

#define setup cloud_fixture_setup
#define teardown cloud_fixture_teardown

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

/* The rules alone, on the fake writer. */
static void only_an_online_status_is_hearing_the_device(void **state)
{
    struct fake_writer *fw = fake_writer_create();
    struct et_ingest *ig;
    struct et_ingest_reply r;
    struct fake_device *d;
    size_t len;
    uint8_t *buf;

    assert_int_equal(et_ingest_create(&ig, &fw->base, ROOT), 0);

    /* A will replayed to a starting aggregator: a new row, but not heard. */
    buf = pack_status("dev1", false, "connection lost", &len);
    assert_int_equal(et_ingest_message(ig, ROOT "/v1/dev1/status", buf, len, NOW, &r), 0);
    free(buf);
    assert_int_equal(r.kind, ET_INGEST_STATUS);
    assert_true(r.new_device);
    assert_true(r.changed);      /* the first status is news */
    assert_int_equal(fw->calls[FAKE_DEVICE_SEEN], 0);
    d = fake_device(fw, "dev1");
    assert_non_null(d);
    assert_false(d->online);

    /* Online: heard, at the aggregator's time. */
    buf = pack_status("dev1", true, "", &len);
    assert_int_equal(et_ingest_message(ig, ROOT "/v1/dev1/status", buf, len, NOW + 7, &r), 0);
    free(buf);
    assert_false(r.new_device);
    assert_true(r.changed);      /* offline to online */
    assert_int_equal(fw->calls[FAKE_DEVICE_SEEN], 1);
    assert_int_equal(d->last_seen_ms, NOW + 7);
    assert_true(d->online);
    assert_string_equal(d->boot_id_hex, "11111111111111111111111111111111");
    assert_int_equal(fw->calls[FAKE_COMMIT], 2);

    /* The same again, as a restarted aggregator is replayed it: no news. */
    buf = pack_status("dev1", true, "", &len);
    assert_int_equal(et_ingest_message(ig, ROOT "/v1/dev1/status", buf, len, NOW + 9, &r), 0);
    free(buf);
    assert_false(r.changed);
    assert_int_equal(d->last_seen_ms, NOW + 9);

    /* A device first heard in an online status is new once. */
    buf = pack_status("dev2", true, "", &len);
    assert_int_equal(et_ingest_message(ig, ROOT "/v1/dev2/status", buf, len, NOW, &r), 0);
    free(buf);
    assert_true(r.new_device);
    assert_true(r.changed);
    assert_int_equal(et_ingest_stats(ig)->new_devices, 2);
    assert_int_equal(et_ingest_stats(ig)->statuses, 4);

    /* A store that fails: nothing recorded, counted as a store error. */
    fw->fail_at[FAKE_DEVICE_STATUS] = fw->calls[FAKE_DEVICE_STATUS] + 1;
    buf = pack_status("dev1", false, "", &len);
    assert_true(et_ingest_message(ig, ROOT "/v1/dev1/status", buf, len, NOW, &r) < 0);
    free(buf);
    assert_int_equal(r.kind, ET_INGEST_NONE);
    assert_true(d->online);
    assert_int_equal(et_ingest_stats(ig)->store_errors, 1);

    et_ingest_destroy(ig);
    fake_writer_destroy(fw);
}

static void test_status(void **state)
{
    struct cloud_fixture *f = *state;
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
    assert_int_equal(et_store_devices(f->r, "dev1", device_copy_cb, &c), 0);
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
    assert_int_equal(et_store_devices(f->r, "dev1", device_copy_cb, &c), 0);
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
    assert_int_equal(et_store_devices(f->r, "dev1", device_copy_cb, &c), 0);
    assert_false(c.d.online);
    assert_int_equal(et_ingest_stats(f->ig)->statuses, 2);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(only_an_online_status_is_hearing_the_device),
        cmocka_unit_test_setup_teardown(test_status, setup, teardown),
    };

    /* Malformed input is logged as a warning; keep the test output short. */
    et_log_init("test_ingest_status", ET_LOG_ERROR);
    return cmocka_run_group_tests(tests, NULL, NULL);
}
