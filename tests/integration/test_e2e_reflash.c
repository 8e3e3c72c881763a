/*
 * End to end, a re-flashed board: an agent runs and its data is stored and
 * acknowledged; it is stopped, its data directory wiped (a new SD card
 * image, or a replacement board), and started again with the same device
 * id, so its seqs start again at 1, all below what the aggregator has
 * already acknowledged for that device. Every value it makes after the
 * wipe must be stored exactly once, none taken for a repeat of the first
 * life's batches, and its new outbox must drain.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>
#include <setjmp.h>
#include <cmocka.h>

#include "e2e.h"

/* 300 values are 150 batches; the second life's 100 values about 50. */
#define FIRST_LIFE 300
#define SECOND_LIFE 100
#define DELIVERY_TIMEOUT_MS 90000
#define DRAIN_TIMEOUT_MS 30000
/* After the agent stops, nothing more of it reaches the store within this. */
#define QUIET_MS 1500
#define STOP_TIMEOUT_MS 10000

static int setup(void **state)
{
    return et_e2e_create((struct et_e2e **)state, "e2e-reflash");
}

static int teardown(void **state)
{
    et_e2e_destroy(*state);
    return 0;
}

struct quiet {
    struct et_e2e *e;
    struct et_e2e_counter last;
    int64_t changed_ms;
};

/* The store's sim.counter values stopped changing QUIET_MS ago. */
static bool store_quiet(void *ctx)
{
    struct quiet *q = ctx;
    struct et_e2e_counter now;

    if (et_e2e_counter_read(q->e->store_path, ET_E2E_DEVICE, INT64_MAX, &now) < 0)
        return false;
    if (now.rows != q->last.rows || now.max != q->last.max) {
        q->last = now;
        q->changed_ms = et_test_now_ms();
        return false;
    }
    return et_test_now_ms() - q->changed_ms >= QUIET_MS;
}

static void a_reflashed_board_loses_nothing_it_makes_after(void **state)
{
    struct et_e2e *e = *state;
    struct et_e2e_agent_opts opts = { 0 };
    const char *outbox = et_e2e_outbox_path(e, ET_E2E_DEVICE);
    struct quiet q = { .e = e, .changed_ms = et_test_now_ms() };
    struct et_proc *aggregator, *agent;
    uint64_t first_acked, newest;
    int64_t batches, last;

    et_e2e_start_broker(e);
    aggregator = et_e2e_start_aggregator(e);
    agent = et_e2e_start_agent(e, &opts);

    /* The first life: stored, and acknowledged through the batch that
     * brought its last awaited value. */
    et_e2e_expect_exactly_once(e, ET_E2E_DEVICE, FIRST_LIFE, DELIVERY_TIMEOUT_MS);
    first_acked = (uint64_t)et_e2e_counter_seq(e->store_path, ET_E2E_DEVICE, FIRST_LIFE);
    assert_true(first_acked >= FIRST_LIFE / 2);
    et_e2e_wait_outbox_drained(e, ET_E2E_DEVICE, first_acked, DRAIN_TIMEOUT_MS);

    /* Stopped; what it had not delivered goes with the wipe. */
    assert_int_equal(et_proc_stop(agent, STOP_TIMEOUT_MS, NULL), 0);
    if (!et_test_poll_until(store_quiet, &q, DELIVERY_TIMEOUT_MS))
        fail_msg("the store kept changing after the agent stopped");
    last = q.last.max;
    et_e2e_expect_exactly_once(e, ET_E2E_DEVICE, last, DRAIN_TIMEOUT_MS);
    et_e2e_wipe_agent_data(e, ET_E2E_DEVICE);

    /* The second life: same device id, a new data directory, seq 1 again;
     * its counter goes on where the stored values end. */
    opts.sim_start = last + 1;
    et_e2e_start_agent(e, &opts);
    et_e2e_expect_exactly_once(e, ET_E2E_DEVICE, last + SECOND_LIFE, DELIVERY_TIMEOUT_MS);

    /* All of it came in seqs the first life had acknowledged already:
     * without streams the aggregator would have acked those batches as
     * repeats, and the agent deleted them, none stored. */
    assert_true(et_e2e_counter_seq(e->store_path, ET_E2E_DEVICE, last + SECOND_LIFE) <
                (int64_t)first_acked);
    assert_int_equal(et_e2e_outbox_read(outbox, UINT64_MAX, &batches, &newest), 0);
    et_e2e_wait_outbox_drained(e, ET_E2E_DEVICE, newest, DRAIN_TIMEOUT_MS);
    assert_true(et_e2e_acked_through(e->store_path, ET_E2E_DEVICE) >= newest);
    assert_int_equal(et_e2e_streams(e->store_path, ET_E2E_DEVICE), 2);
    assert_true(et_proc_log_contains(aggregator, "device " ET_E2E_DEVICE " started a new stream"));

    et_e2e_pass(e);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(a_reflashed_board_loses_nothing_it_makes_after, setup,
                                        teardown),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
