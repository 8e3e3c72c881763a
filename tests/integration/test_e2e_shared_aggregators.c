/*
 * Two aggregator instances in one shared-subscription group on one SQLite
 * store, the way a site scales out: the broker hands each batch to one of
 * them. One instance is SIGKILLed mid-stream; the other carries on alone
 * (batches that were on their way to the dead one come again after the
 * agent's ack timeout). Every sim.counter value must be stored exactly
 * once, and the outbox must drain.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include "e2e.h"

#define BEFORE 40
#define N 200
#define STEP_TIMEOUT_MS 30000
#define DELIVERY_TIMEOUT_MS 90000
#define DRAIN_TIMEOUT_MS 30000

static int setup(void **state)
{
    return et_e2e_create((struct et_e2e **)state, "e2e-shared-aggregators");
}

static int teardown(void **state)
{
    et_e2e_destroy(*state);
    return 0;
}

static void two_instances_share_the_load_and_survive_losing_one(void **state)
{
    struct et_e2e *e = *state;
    const struct et_e2e_agent_opts opts = { 0 };
    struct et_proc *first;
    struct et_proc *second;
    int64_t batches;
    uint64_t newest;

    et_e2e_start_broker(e);
    first = et_e2e_start_aggregator(e);
    second = et_e2e_start_aggregator(e);
    et_e2e_start_agent(e, &opts);
    et_e2e_wait_counter_at_least(e, ET_E2E_DEVICE, BEFORE, STEP_TIMEOUT_MS);

    assert_int_equal(et_proc_kill(first), 0);

    et_e2e_expect_exactly_once(e, ET_E2E_DEVICE, N, DELIVERY_TIMEOUT_MS);
    assert_int_equal(et_e2e_outbox_read(et_e2e_outbox_path(e, ET_E2E_DEVICE), UINT64_MAX,
                                        &batches, &newest), 0);
    et_e2e_wait_outbox_drained(e, ET_E2E_DEVICE, newest, DRAIN_TIMEOUT_MS);
    assert_true(et_proc_running(second));

    et_e2e_pass(e);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(two_instances_share_the_load_and_survive_losing_one,
                                        setup, teardown),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
