/*
 * The broker holds against a device that means harm: a client with a
 * valid device certificate ("evil-*", issued by the fleet CA) tries each
 * move the shipped config once let through, beside a real aggregator and
 * agent, and each is refused while the victim's data still arrives
 * exactly once:
 *   - joining the aggregators' shared group ($share/edgetel/...): before,
 *     mosquitto granted it and dropped the share of telemetry it handed to
 *     the thief (three thieves: three quarters of the first sends lost);
 *   - taking the victim's client id, or the aggregator's: before, the
 *     broker dropped the rightful client each time ("already connected,
 *     closing old connection") and the victim's will marked it offline;
 *   - publishing on the victim's topics (telemetry, a forged status) and
 *     listening on its acks, or on everything;
 *   - a revoked device: refused at the handshake once the broker has read
 *     the new CRL, while the others go on.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <setjmp.h>
#include <cmocka.h>

#include "e2e.h"
#include "mqtt_client.h"

#define THIEVES 3
#define VALUES 60
#define STEP_TIMEOUT_MS 30000
#define TAKEOVERS 5
/* The broker's words when a second connection takes a client id. */
#define TAKEOVER_LOG "already connected, closing old connection"

static int setup(void **state)
{
    return et_e2e_create((struct et_e2e **)state, "e2e-hostile");
}

static int teardown(void **state)
{
    et_e2e_destroy(*state);
    return 0;
}

static bool broker_log_contains(struct et_e2e *e, const char *needle)
{
    char path[4096], line[2048];
    bool found = false;
    FILE *f;

    snprintf(path, sizeof(path), "%s/mosquitto.log", et_test_broker_dir(e->broker));
    f = fopen(path, "r");
    if (!f)
        return false;
    while (!found && fgets(line, sizeof(line), f))
        found = strstr(line, needle) != NULL;
    fclose(f);
    return found;
}

/* A raw client with the device certificate of identity, asking for client_id. */
static void open_client(struct et_e2e *e, struct et_test_client *c, const char *identity,
                        const char *client_id)
{
    struct et_test_mqtt f = { .broker = e->broker };
    struct et_test_identity id;
    struct et_mqtt_cfg cfg;

    assert_int_equal(et_test_broker_identity(e->broker, identity, &id), 0);
    et_test_broker_mqtt_cfg(e->broker, &id, client_id, &cfg);
    et_test_client_open(&f, c, client_id, identity, &cfg);
}

static void devices_cannot_join_the_aggregators_shared_group(void **state)
{
    struct et_e2e *e = *state;
    struct et_test_client thieves[THIEVES];
    struct et_test_client *all[THIEVES];
    char name[32], refusal[128];

    et_e2e_start_broker(e);
    et_e2e_start_aggregator(e);
    memset(thieves, 0, sizeof(thieves));
    for (int i = 0; i < THIEVES; i++) {
        snprintf(name, sizeof(name), "evil-%d", i + 1);
        open_client(e, &thieves[i], name, name);
        all[i] = &thieves[i];
        assert_int_equal(et_mqtt_subscribe(thieves[i].mqtt,
                                           "$share/edgetel/edgetel/v1/+/telemetry", 1), 0);
        assert_int_equal(et_mqtt_start(thieves[i].mqtt), 0);
    }
    for (int i = 0; i < THIEVES; i++)
        et_test_wait_for(all, THIEVES, &thieves[i], 0, ET_MQTT_CONNECTED, NULL, 0);
    /* Refused at SUBSCRIBE, by name, before any telemetry flows. */
    for (int i = 0; i < THIEVES; i++) {
        snprintf(refusal, sizeof(refusal), "refused subscribe "
                 "\"$share/edgetel/edgetel/v1/+/telemetry\" to client \"evil-%d\"", i + 1);
        assert_true(broker_log_contains(e, refusal));
    }

    et_e2e_start_agent(e, &(struct et_e2e_agent_opts){ 0 });
    et_e2e_expect_exactly_once(e, ET_E2E_DEVICE, VALUES, STEP_TIMEOUT_MS);
    /* Every batch went to the aggregator; none of it to a thief. */
    et_test_pump(all, THIEVES, 100);
    for (int i = 0; i < THIEVES; i++) {
        assert_int_equal(et_test_count(&thieves[i], 0, ET_MQTT_MESSAGE, NULL), 0);
        et_mqtt_destroy(thieves[i].mqtt, 1000);
    }
    et_e2e_pass(e);
}

/* Connect as identity asking for client_id, wait until the broker answered, close. */
static void connect_once(struct et_e2e *e, const char *identity, const char *client_id)
{
    struct et_test_client c = { 0 };
    struct et_test_client *all[] = { &c };

    open_client(e, &c, identity, client_id);
    assert_int_equal(et_mqtt_start(c.mqtt), 0);
    et_test_wait_for(all, 1, &c, 0, ET_MQTT_CONNECTED, NULL, 0);
    et_mqtt_destroy(c.mqtt, 1000);
}

static void a_device_cannot_take_another_client_id(void **state)
{
    struct et_e2e *e = *state;
    struct et_proc *aggregator;
    struct et_proc *agent;

    et_e2e_start_broker(e);
    aggregator = et_e2e_start_aggregator(e);
    agent = et_e2e_start_agent(e, &(struct et_e2e_agent_opts){ 0 });
    et_e2e_wait_counter_at_least(e, ET_E2E_DEVICE, 10, STEP_TIMEOUT_MS);

    /* The victim device's id, then the aggregator's, again and again. */
    for (int i = 0; i < TAKEOVERS; i++) {
        connect_once(e, "evil-1", ET_E2E_DEVICE);
        connect_once(e, "evil-1", ET_TEST_AGGREGATOR);
    }
    /* Each time the broker gave the thief its own name, and dropped nobody. */
    assert_true(broker_log_contains(e, "as evil-1"));
    assert_false(broker_log_contains(e, TAKEOVER_LOG));
    assert_false(et_proc_log_contains(aggregator, "(reconnecting)"));
    assert_false(et_proc_log_contains(agent, "retrying with backoff"));

    et_e2e_expect_exactly_once(e, ET_E2E_DEVICE, VALUES, STEP_TIMEOUT_MS);
    et_e2e_pass(e);
}

static void a_device_stays_in_its_own_topics(void **state)
{
    struct et_e2e *e = *state;
    struct et_test_client evil = { 0 };
    struct et_test_client *all[] = { &evil };
    static const char *const forged[] = {
        "edgetel/v1/" ET_E2E_DEVICE "/telemetry", "edgetel/v1/" ET_E2E_DEVICE "/status",
        "edgetel/v1/" ET_E2E_DEVICE "/config/report", "edgetel/v1/" ET_E2E_DEVICE "/ack",
        "edgetel/v1/evil-1/ack", "$SYS/broker/anything", "elsewhere",
    };
    static const char *const listens[] = {
        "edgetel/v1/" ET_E2E_DEVICE "/ack", "edgetel/#", "#", "edgetel/v1/+/telemetry",
        "$SYS/#",
    };
    int token;

    et_e2e_start_broker(e);
    et_e2e_start_aggregator(e);
    et_e2e_start_agent(e, &(struct et_e2e_agent_opts){ 0 });
    open_client(e, &evil, "evil-1", "evil-1");
    for (size_t i = 0; i < sizeof(listens) / sizeof(listens[0]); i++)
        assert_int_equal(et_mqtt_subscribe(evil.mqtt, listens[i], 1), 0);
    assert_int_equal(et_mqtt_start(evil.mqtt), 0);
    et_test_wait_for(all, 1, &evil, 0, ET_MQTT_CONNECTED, NULL, 0);

    for (size_t i = 0; i < sizeof(forged) / sizeof(forged[0]); i++) {
        const struct et_test_record *r;

        token = et_mqtt_publish(evil.mqtt, forged[i], "forged", 6, 1, false);
        assert_true(token > 0);
        r = et_test_wait_for(all, 1, &evil, 0, ET_MQTT_PUBLISH_FAILED, NULL, token);
        assert_non_null(strstr(r->reason, "authori"));
    }
    et_e2e_expect_exactly_once(e, ET_E2E_DEVICE, VALUES, STEP_TIMEOUT_MS);
    /* Its own topics work: the refusals were about whose they are. */
    token = et_mqtt_publish(evil.mqtt, "edgetel/v1/evil-1/config/report", "ok", 2, 1, false);
    et_test_wait_for(all, 1, &evil, 0, ET_MQTT_PUBLISHED, NULL, token);
    for (size_t i = 0; i < sizeof(listens) / sizeof(listens[0]); i++) {
        char refusal[160];

        snprintf(refusal, sizeof(refusal), "refused subscribe \"%s\" to client \"evil-1\"",
                 listens[i]);
        assert_true(broker_log_contains(e, refusal));
    }
    et_test_pump(all, 1, 100);
    assert_int_equal(et_test_count(&evil, 0, ET_MQTT_MESSAGE, NULL), 0);
    et_mqtt_destroy(evil.mqtt, 1000);
    et_e2e_pass(e);
}

static bool refused_in_log(void *ctx)
{
    return et_proc_log_contains(ctx, "cannot connect to");
}

static void a_revoked_device_is_refused(void **state)
{
    struct et_e2e *e = *state;
    struct et_e2e_counter before, after;
    struct et_proc *victim;
    int64_t dev1_then;

    et_e2e_start_broker(e);
    et_e2e_start_aggregator(e);
    et_e2e_start_agent(e, &(struct et_e2e_agent_opts){ 0 });
    victim = et_e2e_start_agent(e, &(struct et_e2e_agent_opts){ .device = "lost-board" });
    et_e2e_wait_counter_at_least(e, "lost-board", 10, STEP_TIMEOUT_MS);

    assert_int_equal(et_test_broker_revoke(e->broker, "lost-board"), 0);
    assert_int_equal(et_test_broker_restart(e->broker), 0);
    assert_int_equal(et_e2e_counter_read(e->store_path, "lost-board", INT64_MAX, &before), 0);
    assert_int_equal(et_e2e_counter_read(e->store_path, ET_E2E_DEVICE, INT64_MAX, &after), 0);
    dev1_then = after.distinct;

    /* The others are back and storing; the revoked board is refused, keeps its data. */
    et_e2e_wait_counter_at_least(e, ET_E2E_DEVICE, dev1_then + 30, STEP_TIMEOUT_MS);
    et_test_wait_until(refused_in_log, victim, STEP_TIMEOUT_MS);
    assert_true(et_proc_log_contains(victim, "TLS"));
    assert_true(et_proc_running(victim));
    assert_int_equal(et_e2e_counter_read(e->store_path, "lost-board", INT64_MAX, &after), 0);
    assert_int_equal(after.distinct, before.distinct);
    et_e2e_pass(e);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(devices_cannot_join_the_aggregators_shared_group, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(a_device_cannot_take_another_client_id, setup, teardown),
        cmocka_unit_test_setup_teardown(a_device_stays_in_its_own_topics, setup, teardown),
        cmocka_unit_test_setup_teardown(a_revoked_device_is_refused, setup, teardown),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
