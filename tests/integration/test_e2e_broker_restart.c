/*
 * End to end across a broker crash: mosquitto is SIGKILLed while the agent
 * streams, stays down while the agent buffers batches in its outbox, and
 * comes back on the same port. No sim.counter value may be lost or stored
 * twice, and the backlog built up during the outage must drain from the
 * outbox, each batch deleted only once the aggregator acknowledged it.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <setjmp.h>
#include <cmocka.h>

#include "e2e.h"

/* Values before the crash, batches buffered during it, values to reach after it. */
#define BEFORE 40
#define OUTAGE_BATCHES 15
#define N 250
#define STEP_TIMEOUT_MS 30000
#define DELIVERY_TIMEOUT_MS 90000
#define DRAIN_TIMEOUT_MS 30000

static int setup(void **state)
{
    return et_e2e_create((struct et_e2e **)state, "e2e-broker-restart");
}

static int teardown(void **state)
{
    et_e2e_destroy(*state);
    return 0;
}

static void nothing_is_lost_or_repeated_across_a_broker_crash(void **state)
{
    struct et_e2e *e = *state;
    const struct et_e2e_agent_opts opts = { 0 };
    const char *outbox = et_e2e_outbox_path(e, ET_E2E_DEVICE);
    int64_t batches;
    uint64_t backlog_through;
    int rc;

    et_e2e_start_broker(e);
    et_e2e_start_aggregator(e);
    et_e2e_start_agent(e, &opts);
    et_e2e_wait_counter_at_least(e, ET_E2E_DEVICE, BEFORE, STEP_TIMEOUT_MS);

    assert_int_equal(et_test_broker_kill(e->broker), 0);
    /* The agent goes on sampling; its outbox must grow while nobody acks. */
    et_e2e_wait_outbox_at_least(e, ET_E2E_DEVICE, OUTAGE_BATCHES, STEP_TIMEOUT_MS);
    assert_int_equal(et_e2e_outbox_read(outbox, UINT64_MAX, &batches, &backlog_through), 0);

    rc = et_test_broker_restart(e->broker);
    if (rc < 0)
        fail_msg("cannot restart mosquitto: %s", strerror(-rc));

    et_e2e_expect_exactly_once(e, ET_E2E_DEVICE, N, DELIVERY_TIMEOUT_MS);
    et_e2e_wait_outbox_drained(e, ET_E2E_DEVICE, backlog_through, DRAIN_TIMEOUT_MS);
    assert_true(et_e2e_acked_through(e->store_path, ET_E2E_DEVICE) >= backlog_through);
    /* Both programs rode out the outage instead of dying with the broker. */
    assert_true(et_proc_running(e->aggregator));

    et_e2e_pass(e);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(nothing_is_lost_or_repeated_across_a_broker_crash,
                                        setup, teardown),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
