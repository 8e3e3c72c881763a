/*
 * Three aggregator instances in one shared-subscription group on one
 * PostgreSQL store, the way a fleet scales out: the broker hands each
 * batch to one of them, and resends after an ack timeout may go to
 * another. One instance is SIGKILLed mid-stream, with its group's
 * transaction open or committing; the other two carry on (what the dead
 * one held is rolled back by PostgreSQL and comes again from the agents).
 * Every sim.counter value of every device must be stored exactly once,
 * and every outbox must drain.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <setjmp.h>
#include <cmocka.h>

#include "e2e.h"

#define DEVICES 3
#define BEFORE 40
#define N 200
#define STEP_TIMEOUT_MS 30000
#define DELIVERY_TIMEOUT_MS 120000
#define DRAIN_TIMEOUT_MS 30000

static int setup(void **state)
{
    return et_e2e_create((struct et_e2e **)state, "e2e-pg-aggregators");
}

static int teardown(void **state)
{
    et_e2e_destroy(*state);
    return 0;
}

static void three_instances_on_postgresql_store_each_value_once(void **state)
{
    static const char *const devices[DEVICES] = { ET_E2E_DEVICE, "dev2", "dev3" };
    struct et_e2e *e = *state;
    struct et_proc *aggregators[3];
    struct et_e2e_counter c;

    et_e2e_use_postgresql(e);
    et_e2e_start_broker(e);
    for (int i = 0; i < 3; i++)
        aggregators[i] = et_e2e_start_aggregator(e);
    for (int d = 0; d < DEVICES; d++) {
        const struct et_e2e_agent_opts opts = { .device = devices[d] };

        et_e2e_start_agent(e, &opts);
    }
    et_e2e_wait_counter_at_least(e, devices[0], BEFORE, STEP_TIMEOUT_MS);

    assert_int_equal(et_proc_kill(aggregators[1]), 0);

    for (int d = 0; d < DEVICES; d++) {
        int64_t batches;
        uint64_t newest;

        et_e2e_expect_exactly_once(e, devices[d], N, DELIVERY_TIMEOUT_MS);
        assert_int_equal(et_e2e_counter_read(e->store_path, devices[d], N, &c), 0);
        print_message("e2e: %s: %lld sim.counter samples stored, %lld distinct, values 0..%d "
                      "all there (%lld in range)\n", devices[d], (long long)c.rows,
                      (long long)c.distinct, N, (long long)c.in_range);
        assert_int_equal(et_e2e_outbox_read(et_e2e_outbox_path(e, devices[d]), UINT64_MAX,
                                            &batches, &newest), 0);
        et_e2e_wait_outbox_drained(e, devices[d], newest, DRAIN_TIMEOUT_MS);
    }
    assert_true(et_proc_running(aggregators[0]));
    assert_true(et_proc_running(aggregators[2]));

    et_e2e_pass(e);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(three_instances_on_postgresql_store_each_value_once,
                                        setup, teardown),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
