/*
 * End to end across a stalled and then a crashed aggregator, on one stream:
 *   1. the aggregator is frozen (SIGSTOP) for longer than the agent's ack
 *      timeout: the agent sends the unacknowledged batches again, so on
 *      SIGCONT the aggregator receives many batches twice and must store
 *      each once;
 *   2. the aggregator is SIGKILLed (perhaps between committing a batch and
 *      acking it) while the agent keeps sampling, publishing and buffering,
 *      and is started again on the same store.
 * Every sim.counter value must end up in the store exactly once, and the
 * outbox must drain.
 */
#include <stdarg.h>
#include <stddef.h>
#include <signal.h>
#include <stdint.h>
#include <string.h>
#include <setjmp.h>
#include <cmocka.h>

#include "e2e.h"

#define BEFORE 40
#define OUTAGE_BATCHES 15
#define N 250
#define STEP_TIMEOUT_MS 30000
#define DELIVERY_TIMEOUT_MS 90000
#define DRAIN_TIMEOUT_MS 30000

static int setup(void **state)
{
    return et_e2e_create((struct et_e2e **)state, "e2e-aggregator-restart");
}

static int teardown(void **state)
{
    et_e2e_destroy(*state);
    return 0;
}

/* The newest batch in the outbox: everything up to it must be acked in the end. */
static uint64_t stalled_through(struct et_e2e *e)
{
    int64_t batches;
    uint64_t newest;

    assert_int_equal(et_e2e_outbox_read(et_e2e_outbox_path(e, ET_E2E_DEVICE), UINT64_MAX,
                                        &batches, &newest), 0);
    return newest;
}

static void nothing_is_lost_or_repeated_across_an_aggregator_stall_and_crash(void **state)
{
    struct et_e2e *e = *state;
    const struct et_e2e_agent_opts opts = { 0 };
    const char *outbox = et_e2e_outbox_path(e, ET_E2E_DEVICE);
    struct et_proc *aggregator;
    int64_t batches;
    uint64_t backlog_through;
    int rc;

    et_e2e_start_broker(e);
    aggregator = et_e2e_start_aggregator(e);
    et_e2e_start_agent(e, &opts);
    et_e2e_wait_counter_at_least(e, ET_E2E_DEVICE, BEFORE, STEP_TIMEOUT_MS);

    /* 1: a stall longer than the ack timeout (15 batches of 200 ms > 2 s). */
    assert_int_equal(et_proc_signal(aggregator, SIGSTOP), 0);
    et_e2e_wait_outbox_at_least(e, ET_E2E_DEVICE, OUTAGE_BATCHES, STEP_TIMEOUT_MS);
    assert_int_equal(et_proc_signal(aggregator, SIGCONT), 0);
    et_e2e_wait_outbox_drained(e, ET_E2E_DEVICE, stalled_through(e), DRAIN_TIMEOUT_MS);

    /* 2: a crash, and the agent buffering while nobody acks. */
    assert_int_equal(et_proc_kill(aggregator), 0);
    et_e2e_wait_outbox_at_least(e, ET_E2E_DEVICE, OUTAGE_BATCHES, STEP_TIMEOUT_MS);
    assert_int_equal(et_e2e_outbox_read(outbox, UINT64_MAX, &batches, &backlog_through), 0);

    rc = et_proc_restart(aggregator);
    if (rc < 0)
        fail_msg("cannot restart the aggregator: %s", strerror(-rc));

    et_e2e_expect_exactly_once(e, ET_E2E_DEVICE, N, DELIVERY_TIMEOUT_MS);
    et_e2e_wait_outbox_drained(e, ET_E2E_DEVICE, backlog_through, DRAIN_TIMEOUT_MS);
    assert_true(et_e2e_acked_through(e->store_path, ET_E2E_DEVICE) >= backlog_through);

    et_e2e_pass(e);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(
            nothing_is_lost_or_repeated_across_an_aggregator_stall_and_crash, setup, teardown),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
