/*
 * Pushed config through the real programs: mosquitto with the shipped
 * config and ACL, edgetel-aggregator, edgetelctl; the board is a test
 * MQTT client with dev1's certificate, so what the aggregator sends is
 * seen exactly as a board receives it.
 *   - config push queues v1 for dev1 before the board was ever heard
 *     from: the aggregator sends it retained, and the board gets it when
 *     it subscribes, the bytes exactly as in the store;
 *   - the board's Status says it runs its local file only: sent again;
 *   - its report reaches the store (the aggregator may read config/report);
 *   - a config pushed for a group the board's Status claims reaches it
 *     within the aggregator's poll.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <setjmp.h>
#include <cmocka.h>

#include "e2e.h"
#include "mqtt_client.h"

#include "edgetel/codec.h"
#include "edgetel/store_config.h"
#include "edgetel/store_open.h"

#define CTL ET_BINARY_DIR "/ctl/edgetelctl"
#define STEP_TIMEOUT_MS 30000
#define CONFIG_TOPIC "edgetel/v1/" ET_E2E_DEVICE "/config"

static int setup(void **state)
{
    return et_e2e_create((struct et_e2e **)state, "e2e-config-push");
}

static int teardown(void **state)
{
    et_e2e_destroy(*state);
    return 0;
}

/* Run edgetelctl with args (NULL-terminated) to its end; fails the test unless it succeeds. */
static void ctl(struct et_e2e *e, const char *name, const char *const *args)
{
    const char *argv[16] = { CTL };
    size_t n = 1;

    for (; args[n - 1] && n < 15; n++)
        argv[n] = args[n - 1];
    argv[n] = NULL;
    if (et_test_run(et_test_env_path(e->env, name), argv, STEP_TIMEOUT_MS) != 0) {
        et_test_print_log_tail(name, et_test_env_path(e->env, name));
        fail_msg("edgetelctl %s failed", args[0]);
    }
}

static void push(struct et_e2e *e, const char *log, const char *target_opt, const char *target)
{
    const char *args[] = {
        "--store", e->store_path, "config", "push", "--key",
        et_test_env_path(e->env, "keys/operator.key"), target_opt, target,
        et_test_env_path(e->env, "push.conf"), NULL,
    };

    ctl(e, log, args);
}

static bool file_exists(void *ctx)
{
    return access(ctx, F_OK) == 0;
}

/* What the store holds of dev1's config, read as edgetelctl reads it. */
struct seen {
    struct et_e2e *e;
    int result;                 /* of the latest report; 0 none */
    uint8_t bytes[512];
    size_t len;
};

static int copy_report(void *ctx, const struct et_store_device_config *dc)
{
    struct seen *s = ctx;

    s->result = dc->has_report ? dc->report.result : 0;
    return 0;
}

static int copy_bytes(void *ctx, const struct et_store_desired *d)
{
    struct seen *s = ctx;

    assert_true(d->signed_len <= sizeof(s->bytes));
    memcpy(s->bytes, d->signed_config, d->signed_len);
    s->len = d->signed_len;
    return 0;
}

static void store_read(struct seen *s, uint64_t version)
{
    struct et_store *st;
    char err[256];

    assert_int_equal(et_store_open(&st, "sqlite", s->e->store_path, ET_STORE_READONLY, err,
                                   sizeof(err)), 0);
    assert_int_equal(et_store_config_devices(et_store_config(st), ET_E2E_DEVICE, copy_report, s),
                     0);
    if (version)
        assert_int_equal(et_store_desired_get(et_store_config(st), version, copy_bytes, s), 0);
    et_store_close(st);
}

static bool committed_in_store(void *ctx)
{
    struct seen *s = ctx;

    store_read(s, 0);
    return s->result == ET_CONFIG_RESULT_COMMITTED;
}

static void board_publishes_status(struct et_test_client *dev, uint64_t running,
                                   const char *const *groups, size_t n_groups)
{
    struct et_status st = { .device_id = ET_E2E_DEVICE, .online = true, .clock_synced = true,
                            .config_version = running, .groups = groups, .n_groups = n_groups };
    uint8_t *buf;
    size_t len;

    assert_int_equal(et_wire_encode_status(&st, &buf, &len), 0);
    assert_true(et_mqtt_publish(dev->mqtt, "edgetel/v1/" ET_E2E_DEVICE "/status", buf, len, 1,
                                true) > 0);
    free(buf);
}

static void a_pushed_config_reaches_the_board_and_its_report_the_store(void **state)
{
    struct et_e2e *e = *state;
    struct et_test_mqtt f = { .broker = NULL };
    struct et_test_client dev = { .name = NULL };
    struct et_test_client *all[] = { &dev };
    const struct et_test_record *rec;
    Edgetel__V1__ConfigReport rep = EDGETEL__V1__CONFIG_REPORT__INIT;
    static const char *const lab[] = { "lab" };
    struct seen s = { .e = e };
    const char *keys[] = { "keys", "init", "--dir", et_test_env_path(e->env, "keys"), NULL };
    uint8_t report[128];
    size_t from, len;

    et_e2e_start_broker(e);
    f.broker = e->broker;
    et_e2e_start_aggregator(e);
    et_test_wait_until(file_exists, (void *)e->store_path, STEP_TIMEOUT_MS);
    ctl(e, "keys-init.log", keys);
    et_test_env_write(e->env, "push.conf", "[agent]\ndevice_id = %s\n[collector room]\n"
                      "type = sim\ninterval = 5s\n", ET_E2E_DEVICE);
    push(e, "push-1.log", "--device", ET_E2E_DEVICE);

    /* The board connects: the retained config is waiting, as signed. */
    et_test_client_open(&f, &dev, "board", ET_E2E_DEVICE, NULL);
    assert_int_equal(et_mqtt_subscribe(dev.mqtt, CONFIG_TOPIC, 1), 0);
    assert_int_equal(et_mqtt_start(dev.mqtt), 0);
    rec = et_test_wait_for(all, 1, &dev, 0, ET_MQTT_MESSAGE, CONFIG_TOPIC, 0);
    store_read(&s, 1);
    assert_int_equal(rec->len, s.len);
    assert_memory_equal(rec->payload, s.bytes, s.len);

    /* Its Status says it runs its local file only: sent again. */
    from = dev.n;
    board_publishes_status(&dev, 0, NULL, 0);
    rec = et_test_wait_for(all, 1, &dev, from, ET_MQTT_MESSAGE, CONFIG_TOPIC, 0);
    assert_memory_equal(rec->payload, s.bytes, s.len);

    /* It reports v1 committed: the aggregator records and says it. */
    rep.device_id = ET_E2E_DEVICE;
    rep.version = 1;
    rep.result = EDGETEL__V1__CONFIG_RESULT__CONFIG_RESULT_COMMITTED;
    rep.running_version = 1;
    rep.clock_synced = true;
    len = edgetel__v1__config_report__pack(&rep, report);
    assert_true(et_mqtt_publish(dev.mqtt, CONFIG_TOPIC "/report", report, len, 1, true) > 0);
    et_test_wait_until(committed_in_store, &s, STEP_TIMEOUT_MS);
    assert_true(et_proc_log_contains(e->aggregator, "config v1 on " ET_E2E_DEVICE ": committed"));

    /* It runs v1 and claims lab; a config for lab reaches it. */
    board_publishes_status(&dev, 1, lab, 1);
    from = dev.n;
    push(e, "push-2.log", "--group", "lab");
    rec = et_test_wait_for(all, 1, &dev, from, ET_MQTT_MESSAGE, CONFIG_TOPIC, 0);
    store_read(&s, 2);
    assert_int_equal(rec->len, s.len);
    assert_memory_equal(rec->payload, s.bytes, s.len);

    et_mqtt_destroy(dev.mqtt, 1000);
    et_e2e_pass(e);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(a_pushed_config_reaches_the_board_and_its_report_the_store,
                                        setup, teardown),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
