/*
 * End to end, nothing going wrong: a real agent (sim collector) talks mutual
 * TLS to a real mosquitto, a real aggregator stores into SQLite. Every
 * sim.counter value 0..N must be stored exactly once, and every batch the
 * agent sent must leave its outbox once the aggregator's ack covers it.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include "e2e.h"

#define N 200
/* N values take N * 100 ms = 20 s to produce; the rest is slack for a busy machine. */
#define DELIVERY_TIMEOUT_MS 60000
#define DRAIN_TIMEOUT_MS 20000

static int setup(void **state)
{
    return et_e2e_create((struct et_e2e **)state, "e2e-delivery");
}

static int teardown(void **state)
{
    et_e2e_destroy(*state);
    return 0;
}

static void every_value_is_stored_exactly_once(void **state)
{
    struct et_e2e *e = *state;
    const struct et_e2e_agent_opts opts = { 0 };
    const char *outbox = et_e2e_outbox_path(e, ET_E2E_DEVICE);
    int64_t batches;
    uint64_t newest;

    et_e2e_start_broker(e);
    et_e2e_start_aggregator(e);
    et_e2e_start_agent(e, &opts);

    et_e2e_expect_exactly_once(e, ET_E2E_DEVICE, N, DELIVERY_TIMEOUT_MS);

    /* Whatever the outbox holds now is delivered and acknowledged soon after. */
    assert_int_equal(et_e2e_outbox_read(outbox, UINT64_MAX, &batches, &newest), 0);
    et_e2e_wait_outbox_drained(e, ET_E2E_DEVICE, newest, DRAIN_TIMEOUT_MS);
    assert_true(et_e2e_acked_through(e->store_path, ET_E2E_DEVICE) >= newest);

    et_e2e_pass(e);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(every_value_is_stored_exactly_once, setup, teardown),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
