/*
 * Enrollment against hostile moves, with the real broker, plugin, issuer,
 * aggregator and agents; each move is refused while the victim's data
 * still arrives exactly once:
 *   - a claim used twice: a second board with a copy of the claim (the SD
 *     card read before the first board took it off) is refused by the
 *     issuer, says why, and never connects as the device;
 *   - a claim used late: the board says the claim has ended and how to
 *     get a new one; the broker refuses the expired claim at the handshake;
 *   - a claim used for another id: a CSR for the victim is refused by the
 *     issuer; the claim cannot publish on the victim's or another claim's
 *     topics, nor telemetry, nor listen for the victim's certificate; the
 *     same claim then enrolls its own device (the refusals cost it nothing);
 *   - a device asking the issuer for another device's certificate: refused
 *     on its own topic, and the victim's topic is closed to it.
 */
#include <errno.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <setjmp.h>
#include <cmocka.h>

#include "e2e.h"
#include "mqtt_client.h"
#include "edgetel/ca_device.h"
#include "edgetel/cert_wire.h"
#include "edgetel/sign.h"

#define VALUES 40
#define STEP_TIMEOUT_MS 30000

static int setup(void **state)
{
    return et_e2e_create((struct et_e2e **)state, "e2e-enroll-hostile");
}

static int teardown(void **state)
{
    et_e2e_destroy(*state);
    return 0;
}

static bool enrolled(void *ctx)
{
    return et_proc_log_contains(ctx, "enrolled by claim in");
}

static bool claim_refused(void *ctx)
{
    return et_proc_log_contains(ctx, "the issuer refused the claim");
}

static bool claim_ended(void *ctx)
{
    return et_proc_log_contains(ctx, "ended at");
}

/* A client of the broker with the certificate and key at cert and key. */
static void open_as(struct et_e2e *e, struct et_test_client *c, const char *name,
                    const char *cert, const char *key)
{
    struct et_test_mqtt f = { .broker = e->broker };
    struct et_test_identity id = { .ca_file = et_test_broker_ca_file(e->broker),
                                   .cert_file = cert, .key_file = key };
    struct et_mqtt_cfg cfg;

    et_test_broker_mqtt_cfg(e->broker, &id, name, &cfg);
    et_test_client_open(&f, c, name, name, &cfg);
}

/* A CertRequest for cn from a key made at key_path, signed by claim_key when given. */
static void cert_request(const char *key_path, const char *cn, const char *claim_key,
                         uint8_t **out, size_t *len)
{
    struct et_cert_request r = { .request_id = 7 };
    uint8_t sig[ET_SIGN_SIG_MAX], *csr = NULL;
    struct et_sign_key *k = NULL;
    char err[512];

    if (access(key_path, F_OK) != 0)
        assert_int_equal(et_ca_key_make(key_path, err, sizeof(err)), 0);
    assert_int_equal(et_ca_csr_make(key_path, cn, &csr, &r.csr_len, err, sizeof(err)), 0);
    r.csr = csr;
    if (claim_key) {
        assert_int_equal(et_sign_key_load_private(claim_key, &k, err, sizeof(err)), 0);
        assert_int_equal(et_sign_sign(k, csr, r.csr_len, sig, &r.claim_sig_len, err,
                                      sizeof(err)), 0);
        r.claim_sig = sig;
        et_sign_key_destroy(k);
    }
    assert_int_equal(et_cert_request_encode(&r, out, len), 0);
    free(csr);
}

/* Publish buf on topic as c; the broker's answer: PUBLISHED or PUBLISH_FAILED. */
static enum et_mqtt_event_type publish(struct et_test_client *c, const char *topic,
                                       const uint8_t *buf, size_t len)
{
    struct et_test_client *all[] = { c };
    int token = et_mqtt_publish(c->mqtt, topic, buf, len, 1, false);
    long long until = et_test_now_ms() + ET_TEST_WAIT_MS;

    assert_true(token > 0);
    while (et_test_now_ms() < until) {
        if (et_test_find(c, 0, ET_MQTT_PUBLISHED, NULL, token) >= 0)
            return ET_MQTT_PUBLISHED;
        if (et_test_find(c, 0, ET_MQTT_PUBLISH_FAILED, NULL, token) >= 0)
            return ET_MQTT_PUBLISH_FAILED;
        et_test_pump(all, 1, 100);
    }
    fail_msg("no answer from the broker to a publish on %s", topic);
    return 0;
}

/* Wait for the issuer's answer on topic after record from; decoded. */
static Edgetel__V1__CertReply *answer(struct et_test_client *c, size_t from, const char *topic)
{
    struct et_test_client *all[] = { c };
    const struct et_test_record *r = et_test_wait_for(all, 1, c, from, ET_MQTT_MESSAGE, topic, 0);
    Edgetel__V1__CertReply *m;
    char err[256];

    assert_int_equal(et_cert_reply_decode(r->payload, r->len, &m, err, sizeof(err)), 0);
    return m;
}

static bool time_passed(void *ctx)
{
    return (int64_t)time(NULL) > *(int64_t *)ctx;
}

static void claims_are_refused_twice_late_and_for_another_id(void **state)
{
    struct et_e2e *e = *state;
    const struct et_e2e_agent_opts dev1 = { .no_client_cert = true };
    const struct et_e2e_agent_opts thief = { .no_client_cert = true, .name = "thief" };
    const struct et_e2e_agent_opts late = { .no_client_cert = true, .device = "dev2" };
    struct et_test_client claim3 = { 0 }, stale = { 0 };
    struct et_test_client *all[] = { &stale };
    Edgetel__V1__CertReply *m;
    char crt[4200], key[4200];
    struct et_proc *a, *t, *l;
    const char *c1, *c2, *c3;
    int64_t ends;
    uint8_t *req;
    size_t len, from;

    et_e2e_start_broker(e);
    et_e2e_start_aggregator(e);
    et_e2e_start_issuer(e, "90d");

    /* Twice: the rightful board enrolls; a copy of its claim is refused. */
    c1 = et_e2e_provision(e, ET_E2E_DEVICE, "1h");
    et_e2e_give_claim(e, c1, ET_E2E_DEVICE, NULL);
    et_e2e_give_claim(e, c1, ET_E2E_DEVICE, "thief");
    a = et_e2e_start_agent(e, &dev1);
    et_test_wait_until(enrolled, a, STEP_TIMEOUT_MS);
    t = et_e2e_start_agent(e, &thief);
    et_test_wait_until(claim_refused, t, STEP_TIMEOUT_MS);
    assert_true(et_proc_log_contains(t, "was used at"));
    assert_false(et_proc_log_contains(t, "enrolled by claim"));

    /* Late: a claim that lasted two seconds. */
    ends = (int64_t)time(NULL) + 2;
    c2 = et_e2e_provision(e, "dev2", "2s");
    et_test_wait_until(time_passed, &ends, 10000);
    et_e2e_give_claim(e, c2, "dev2", NULL);
    l = et_e2e_start_agent(e, &late);
    et_test_wait_until(claim_ended, l, STEP_TIMEOUT_MS);
    assert_true(et_proc_log_contains(l, "edgetelctl provision dev2"));
    snprintf(crt, sizeof(crt), "%s/claim-dev2.crt", c2);
    snprintf(key, sizeof(key), "%s/claim-dev2.key", c2);
    open_as(e, &stale, "claim-dev2", crt, key);
    assert_int_equal(et_mqtt_start(stale.mqtt), 0);
    et_test_wait_for(all, 1, &stale, 0, ET_MQTT_DISCONNECTED, NULL, 0);
    assert_int_equal(et_test_count(&stale, 0, ET_MQTT_CONNECTED, NULL), 0);
    et_mqtt_destroy(stale.mqtt, 1000);

    /* Another id: claim-dev3 asks for dev1's certificate, and tries the topics it may not. */
    c3 = et_e2e_provision(e, "dev3", "1h");
    snprintf(crt, sizeof(crt), "%s/claim-dev3.crt", c3);
    snprintf(key, sizeof(key), "%s/claim-dev3.key", c3);
    open_as(e, &claim3, "claim-dev3", crt, key);
    assert_int_equal(et_mqtt_subscribe(claim3.mqtt, "edgetel/v1/claim-dev3/cert/issued", 1), 0);
    assert_int_equal(et_mqtt_subscribe(claim3.mqtt, "edgetel/v1/dev1/cert/issued", 1), 0);
    assert_int_equal(et_mqtt_start(claim3.mqtt), 0);
    {
        struct et_test_client *one[] = { &claim3 };

        et_test_wait_for(one, 1, &claim3, 0, ET_MQTT_CONNECTED, NULL, 0);
    }
    cert_request(et_test_env_path(e->env, "stolen.key"), ET_E2E_DEVICE, key, &req, &len);
    from = claim3.n;
    assert_int_equal(publish(&claim3, "edgetel/v1/claim-dev3/cert/csr", req, len),
                     ET_MQTT_PUBLISHED);
    m = answer(&claim3, from, "edgetel/v1/claim-dev3/cert/issued");
    assert_int_equal(m->result, EDGETEL__V1__CERT_RESULT__CERT_RESULT_REFUSED);
    assert_non_null(strstr(m->reason, "asks for another name"));
    edgetel__v1__cert_reply__free_unpacked(m, NULL);
    assert_int_equal(publish(&claim3, "edgetel/v1/claim-dev1/cert/csr", req, len),
                     ET_MQTT_PUBLISH_FAILED);
    assert_int_equal(publish(&claim3, "edgetel/v1/dev1/cert/csr", req, len),
                     ET_MQTT_PUBLISH_FAILED);
    assert_int_equal(publish(&claim3, "edgetel/v1/dev3/telemetry", req, len),
                     ET_MQTT_PUBLISH_FAILED);
    assert_int_equal(publish(&claim3, "edgetel/v1/claim-dev3/telemetry", req, len),
                     ET_MQTT_PUBLISH_FAILED);
    free(req);
    /* Its own device's request still goes through: the refusals did not use the claim. */
    cert_request(et_test_env_path(e->env, "dev3.key"), "dev3", key, &req, &len);
    from = claim3.n;
    assert_int_equal(publish(&claim3, "edgetel/v1/claim-dev3/cert/csr", req, len),
                     ET_MQTT_PUBLISHED);
    m = answer(&claim3, from, "edgetel/v1/claim-dev3/cert/issued");
    assert_int_equal(m->result, EDGETEL__V1__CERT_RESULT__CERT_RESULT_ISSUED);
    edgetel__v1__cert_reply__free_unpacked(m, NULL);
    free(req);
    /* It never heard anything of dev1's. */
    assert_int_equal(et_test_count(&claim3, 0, ET_MQTT_MESSAGE, "edgetel/v1/dev1/cert/issued"),
                     0);
    et_mqtt_destroy(claim3.mqtt, 1000);

    /* And through it all the victim's data, once each; the thief never was dev1. */
    et_e2e_expect_exactly_once(e, ET_E2E_DEVICE, VALUES, STEP_TIMEOUT_MS);
    assert_int_equal(et_e2e_streams(e->store_path, ET_E2E_DEVICE), 1);
    assert_int_equal(et_e2e_device_samples(e->store_path, "dev2"), 0);
    et_e2e_pass(e);
}

static void a_device_cannot_get_another_devices_certificate(void **state)
{
    struct et_e2e *e = *state;
    const struct et_e2e_agent_opts dev1 = { .no_client_cert = true };
    struct et_test_client evil = { 0 };
    struct et_test_client *all[] = { &evil };
    struct et_test_identity id;
    Edgetel__V1__CertReply *m;
    struct et_proc *victim;
    uint8_t *req;
    size_t len, from;

    et_e2e_start_broker(e);
    et_e2e_start_aggregator(e);
    et_e2e_start_issuer(e, "90d");
    et_e2e_give_claim(e, et_e2e_provision(e, ET_E2E_DEVICE, "1h"), ET_E2E_DEVICE, NULL);
    victim = et_e2e_start_agent(e, &dev1);
    et_test_wait_until(enrolled, victim, STEP_TIMEOUT_MS);

    assert_int_equal(et_test_broker_identity(e->broker, "evil-1", &id), 0);
    open_as(e, &evil, "evil-1", id.cert_file, id.key_file);
    assert_int_equal(et_mqtt_subscribe(evil.mqtt, "edgetel/v1/evil-1/cert/issued", 1), 0);
    assert_int_equal(et_mqtt_subscribe(evil.mqtt, "edgetel/v1/dev1/cert/issued", 1), 0);
    assert_int_equal(et_mqtt_start(evil.mqtt), 0);
    et_test_wait_for(all, 1, &evil, 0, ET_MQTT_CONNECTED, NULL, 0);

    /* A CSR for dev1 on its own topic: refused, with the reason. */
    cert_request(et_test_env_path(e->env, "evil.key"), ET_E2E_DEVICE, NULL, &req, &len);
    from = evil.n;
    assert_int_equal(publish(&evil, "edgetel/v1/evil-1/cert/csr", req, len), ET_MQTT_PUBLISHED);
    m = answer(&evil, from, "edgetel/v1/evil-1/cert/issued");
    assert_int_equal(m->result, EDGETEL__V1__CERT_RESULT__CERT_RESULT_REFUSED);
    assert_non_null(strstr(m->reason, "asks for another name"));
    edgetel__v1__cert_reply__free_unpacked(m, NULL);
    /* On dev1's topic: the broker does not let it. */
    assert_int_equal(publish(&evil, "edgetel/v1/dev1/cert/csr", req, len),
                     ET_MQTT_PUBLISH_FAILED);
    free(req);
    /* Its own renewal, just after it got its certificate: held off, with the reason. */
    cert_request(et_test_env_path(e->env, "evil-next.key"), "evil-1", NULL, &req, &len);
    from = evil.n;
    assert_int_equal(publish(&evil, "edgetel/v1/evil-1/cert/csr", req, len), ET_MQTT_PUBLISHED);
    m = answer(&evil, from, "edgetel/v1/evil-1/cert/issued");
    assert_int_equal(m->result, EDGETEL__V1__CERT_RESULT__CERT_RESULT_REFUSED);
    assert_non_null(strstr(m->reason, "renewed at most every"));
    edgetel__v1__cert_reply__free_unpacked(m, NULL);
    free(req);
    et_mqtt_destroy(evil.mqtt, 1000);

    et_e2e_expect_exactly_once(e, ET_E2E_DEVICE, VALUES, STEP_TIMEOUT_MS);
    assert_int_equal(et_test_count(&evil, 0, ET_MQTT_MESSAGE, "edgetel/v1/dev1/cert/issued"), 0);
    /* The victim kept its own identity: one generation, never renewed by anyone. */
    assert_int_equal(access(et_test_env_path(e->env, "dev1-data/identity/2.key"), F_OK), -1);
    assert_false(et_proc_log_contains(victim, "renewed"));
    et_e2e_pass(e);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(claims_are_refused_twice_late_and_for_another_id, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(a_device_cannot_get_another_devices_certificate, setup,
                                        teardown),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
