/*
 * Mutual TLS is enforced end to end. Next to a working device, clients
 * without a valid certificate try their luck:
 *   - an agent whose certificate comes from another CA: the broker refuses
 *     the TLS handshake, the agent says why in its log and keeps its data
 *     in the outbox, and none of it ever reaches the store;
 *   - an agent configured without a client certificate and given no claim:
 *     it keeps its own identity (a key born in its data directory, 0600)
 *     but has no certificate, so it never connects, says how to provision
 *     it, and keeps collecting (mutual TLS is on unless insecure is set
 *     explicitly);
 *   - a plain MQTT client (mosquitto_pub) with no certificate: the broker
 *     refuses it, while the same client with a device certificate gets in,
 *     so the refusal is about the certificate and nothing else.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>
#include <setjmp.h>
#include <cmocka.h>

#include "e2e.h"

#define GOOD_VALUES 40
#define STEP_TIMEOUT_MS 30000
#define CLIENT_TIMEOUT_MS 20000

static bool no_claim_in_log(void *ctx)
{
    return et_proc_log_contains(ctx, "there is no claim");
}

static int setup(void **state)
{
    return et_e2e_create((struct et_e2e **)state, "e2e-auth");
}

static int teardown(void **state)
{
    et_e2e_destroy(*state);
    return 0;
}

static bool refused_in_log(void *ctx)
{
    return et_proc_log_contains(ctx, "cannot connect to");
}

/* Run mosquitto_pub once as the given identity (no cert when cert is NULL); its wait status. */
static int publish_once(struct et_e2e *e, const char *name, const char *ca, const char *cert,
                        const char *key, const char *topic)
{
    char port[16];
    const char *argv[20];
    size_t n = 0;
    struct et_proc *p;
    int status;

    snprintf(port, sizeof(port), "%d", et_test_broker_port(e->broker));
    argv[n++] = "mosquitto_pub";
    argv[n++] = "-h";
    argv[n++] = "127.0.0.1";
    argv[n++] = "-p";
    argv[n++] = port;
    argv[n++] = "-V";
    argv[n++] = "mqttv5";
    argv[n++] = "-q";
    argv[n++] = "1";
    argv[n++] = "--cafile";
    argv[n++] = ca;
    if (cert) {
        argv[n++] = "--cert";
        argv[n++] = cert;
        argv[n++] = "--key";
        argv[n++] = key;
    }
    argv[n++] = "-t";
    argv[n++] = topic;
    argv[n++] = "-m";
    argv[n++] = "edgetel auth test";
    argv[n] = NULL;
    p = et_test_env_start(e->env, name, argv);
    if (et_proc_wait_exit(p, CLIENT_TIMEOUT_MS, &status) != 0)
        fail_msg("%s: mosquitto_pub did not finish within %d ms", name, CLIENT_TIMEOUT_MS);
    return status;
}

static void clients_without_a_valid_certificate_are_refused(void **state)
{
    struct et_e2e *e = *state;
    struct et_test_identity foreign;
    struct et_test_identity dev;
    const struct et_e2e_agent_opts good = { 0 };
    struct et_e2e_agent_opts rogue = { .device = "rogue", .identity = &foreign };
    struct et_e2e_agent_opts nocert = { .device = "nocert", .no_client_cert = true };
    struct et_proc *rogue_agent;
    struct et_proc *nocert_agent;
    int status;

    et_e2e_start_broker(e);
    assert_int_equal(et_test_broker_foreign_identity(e->broker, "rogue", &foreign), 0);
    assert_int_equal(et_test_broker_identity(e->broker, ET_E2E_DEVICE, &dev), 0);
    et_e2e_start_aggregator(e);
    et_e2e_start_agent(e, &good);
    rogue_agent = et_e2e_start_agent(e, &rogue);
    nocert_agent = et_e2e_start_agent(e, &nocert);

    /* The system works: the good device's data arrives ... */
    et_e2e_wait_counter_at_least(e, ET_E2E_DEVICE, GOOD_VALUES, STEP_TIMEOUT_MS);

    /* ... while the foreign-CA agent is refused, says so, and keeps its data. */
    et_test_wait_until(refused_in_log, rogue_agent, STEP_TIMEOUT_MS);
    assert_true(et_proc_log_contains(rogue_agent, "TLS"));
    et_e2e_wait_outbox_at_least(e, "rogue", 5, STEP_TIMEOUT_MS);
    assert_true(et_proc_running(rogue_agent));
    assert_int_equal(et_e2e_device_samples(e->store_path, "rogue"), 0);

    /* An agent without a certificate or a claim runs, collects, and never connects. */
    et_test_wait_until(no_claim_in_log, nocert_agent, STEP_TIMEOUT_MS);
    assert_true(et_proc_log_contains(nocert_agent, "edgetelctl provision nocert"));
    et_e2e_wait_outbox_at_least(e, "nocert", 5, STEP_TIMEOUT_MS);
    assert_true(et_proc_running(nocert_agent));
    assert_false(et_proc_log_contains(nocert_agent, "connected to"));
    assert_int_equal(et_e2e_device_samples(e->store_path, "nocert"), 0);

    /* A bare client: refused without a certificate, let in with one. */
    status = publish_once(e, "pub-nocert", dev.ca_file, NULL, NULL,
                          "edgetel/v1/nocert/config/report");
    assert_false(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    status = publish_once(e, "pub-dev1", dev.ca_file, dev.cert_file, dev.key_file,
                          "edgetel/v1/" ET_E2E_DEVICE "/config/report");
    assert_true(WIFEXITED(status));
    assert_int_equal(WEXITSTATUS(status), 0);

    /* Still nothing from either refused identity after all that. */
    assert_int_equal(et_e2e_device_samples(e->store_path, "rogue"), 0);
    assert_int_equal(et_e2e_device_samples(e->store_path, "nocert"), 0);

    et_e2e_pass(e);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(clients_without_a_valid_certificate_are_refused, setup,
                                        teardown),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
