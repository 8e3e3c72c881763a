/*
 * End to end, a batch whose sample times are impossible (a board whose
 * clock says it is synchronised and reads 1999): the real aggregator, over
 * the real broker, keeps it in quarantine and acknowledges it, so the
 * device may delete it and stop sending it; edgetelctl quarantine lists
 * it. The device here is a test client with dev1's certificate sending a
 * batch it made itself: no agent makes such a batch on purpose.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "e2e.h"
#include "mqtt_client.h"
#include "edgetel/codec.h"

#define ACK_TOPIC "edgetel/v1/" ET_E2E_DEVICE "/ack"
#define TELEMETRY_TOPIC "edgetel/v1/" ET_E2E_DEVICE "/telemetry"
/* Until the aggregator has subscribed the broker drops the batch: send it
 * again this often, as an agent would, for at most this long. */
#define RESEND_MS 1000
#define ACK_TIMEOUT_MS 30000
#define SEQ 5

static int setup(void **state)
{
    return et_e2e_create((struct et_e2e **)state, "e2e-quarantine");
}

static int teardown(void **state)
{
    et_e2e_destroy(*state);
    return 0;
}

/* One sample of a "synchronised" clock at 1999-12-31T23:00:00Z. */
static uint8_t *batch_from_1999(size_t *len)
{
    static const uint8_t stream[ET_STREAM_ID_LEN] = { 0x5a, 1, 2, 3 };
    struct et_batch_meta meta = {
        .device_id = ET_E2E_DEVICE, .seq = SEQ, .oldest_seq = SEQ, .base_mono_ms = 1000,
        .base_wall_ms = 946681200000LL, .time_quality = ET_TQ_SYNCED, .stream_id = stream,
    };
    struct et_value v = et_value_f64(21.5);
    struct et_batch *b;
    uint8_t *buf;

    assert_int_equal(et_batch_create(&b), 0);
    assert_int_equal(et_batch_add(b, "temp", "Cel", 1000, &v, ET_TQ_SYNCED), 0);
    assert_int_equal(et_batch_encode(b, &meta, &buf, len), 0);
    et_batch_destroy(b);
    return buf;
}

static void impossible_times_are_quarantined_acked_and_listed(void **state)
{
    struct et_e2e *e = *state;
    struct et_test_mqtt m = { 0 };
    struct et_test_client *dev = &m.dev1;
    struct et_test_client *const cs[] = { dev };
    const char *out = et_test_env_path(e->env, "quarantine.out");
    const char *const ctl[] = {
        ET_BINARY_DIR "/ctl/edgetelctl", "--store", e->store_path, "quarantine", NULL,
    };
    Edgetel__V1__Ack *ack = NULL;
    int64_t deadline, next_send = 0;
    char err[160], text[4096];
    size_t len, n;
    int found = -1;
    uint8_t *batch = batch_from_1999(&len);
    FILE *f;

    et_e2e_start_broker(e);
    et_e2e_start_aggregator(e);
    m.broker = e->broker;
    et_test_client_open(&m, dev, "device", ET_E2E_DEVICE, NULL);
    assert_int_equal(et_mqtt_subscribe(dev->mqtt, ACK_TOPIC, 1), 0);
    assert_int_equal(et_mqtt_start(dev->mqtt), 0);
    et_test_wait_for(cs, 1, dev, 0, ET_MQTT_CONNECTED, NULL, 0);

    deadline = et_test_now_ms() + ACK_TIMEOUT_MS;
    while (found < 0 && et_test_now_ms() < deadline) {
        if (et_test_now_ms() >= next_send) {
            assert_true(et_mqtt_publish(dev->mqtt, TELEMETRY_TOPIC, batch, len, 1, false) > 0);
            next_send = et_test_now_ms() + RESEND_MS;
        }
        et_test_pump(cs, 1, 100);
        found = et_test_find(dev, 0, ET_MQTT_MESSAGE, ACK_TOPIC, 0);
    }
    free(batch);
    if (found < 0)
        fail_msg("no Ack for the quarantined batch within %d ms", ACK_TIMEOUT_MS);
    /* Acked: cumulatively (its oldest_seq says nothing below it is held). */
    assert_int_equal(et_wire_decode_ack(dev->rec[found].payload, dev->rec[found].len, &ack, err,
                                        sizeof(err)), 0);
    assert_int_equal(ack->acked_through, SEQ);
    edgetel__v1__ack__free_unpacked(ack, NULL);
    et_mqtt_destroy(dev->mqtt, 1000);

    /* edgetelctl lists it, with why, beside the aggregator that keeps writing. */
    assert_int_equal(et_test_run(out, ctl, 10000), 0);
    f = fopen(out, "r");
    assert_non_null(f);
    n = fread(text, 1, sizeof(text) - 1, f);
    fclose(f);
    text[n] = '\0';
    if (!strstr(text, ET_E2E_DEVICE "    5a010203    5") ||
        !strstr(text, "sample 0: wall time 1999-12-31T23:00:00.000Z is before 2000-01-01 on a "
                      "synchronised clock"))
        fail_msg("edgetelctl quarantine printed:\n%s", text);
    assert_true(et_proc_log_contains(e->aggregator, "quarantined batch 5 of stream 5a010203"));
    et_e2e_pass(e);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(impossible_times_are_quarantined_acked_and_listed, setup,
                                        teardown),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
