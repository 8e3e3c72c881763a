/*
 * The agent killed with SIGKILL at random moments, many times, while it
 * sends to a real aggregator through a real mosquitto over mutual TLS.
 *
 * Each run of the agent counts sim.counter from 0, so the stored values,
 * read in (seq, time) order, fall into runs that each start at 0. What
 * must hold:
 *   - within a run the values are 0, 1, 2, ... with no value missing and
 *     none twice (a repeat would be a batch stored twice under two seqs; a
 *     hole, data lost outside the loss window);
 *   - a run ends no earlier than the loss window before the kill that
 *     ended it: the open batch and the durability window;
 *   - after the last restart the outbox drains: nothing stays unacked.
 * The kill moments come from a seed printed at the start; ET_FAULT_SEED
 * replays a run.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <inttypes.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "e2e.h"

#define KILLS 15
#define BATCH_MS 200
#define WINDOW_MS 1000
/* What a kill may cost: the open batch, the uncommitted window, and a
 * sample interval of slack each side for a busy machine. */
#define LOSS_BOUND_MS (BATCH_MS + WINDOW_MS + 4 * ET_E2E_SIM_INTERVAL_MS + 500)
#define MAX_SAMPLES 20000

struct sample {
    int64_t value;
    int64_t ts_ms;
};

static int64_t wall_now_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void sleep_ms(int ms)
{
    struct timespec ts = { .tv_sec = ms / 1000, .tv_nsec = (long)(ms % 1000) * 1000000 };

    nanosleep(&ts, NULL);
}

static size_t read_counter(const char *store, const char *device, struct sample *out, size_t cap)
{
    sqlite3 *db;
    sqlite3_stmt *st;
    size_t n = 0;

    assert_int_equal(sqlite3_open_v2(store, &db, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_prepare_v2(db,
        "SELECT s.v_i64, s.ts_ms FROM samples s JOIN metrics m ON m.id = s.metric_id"
        " WHERE m.device = ?1 AND m.name = 'sim.counter' ORDER BY s.seq, s.mono_ms",
        -1, &st, NULL), SQLITE_OK);
    sqlite3_bind_text(st, 1, device, -1, SQLITE_STATIC);
    while (sqlite3_step(st) == SQLITE_ROW) {
        assert_true(n < cap);
        out[n].value = sqlite3_column_int64(st, 0);
        out[n].ts_ms = sqlite3_column_int64(st, 1);
        n++;
    }
    sqlite3_finalize(st);
    sqlite3_close(db);
    return n;
}

static int setup(void **state)
{
    return et_e2e_create((struct et_e2e **)state, "fault-agent-sigkill");
}

static int teardown(void **state)
{
    et_e2e_destroy(*state);
    return 0;
}

static void sigkill_at_random_moments_loses_only_the_window(void **state)
{
    struct et_e2e *e = *state;
    const struct et_e2e_agent_opts opts = {
        .batch_interval_ms = BATCH_MS,
        .durability_window_ms = WINDOW_MS,
    };
    const char *seed_env = getenv("ET_FAULT_SEED");
    unsigned seed = seed_env ? (unsigned)strtoul(seed_env, NULL, 10) : (unsigned)time(NULL);
    int64_t kill_at[KILLS];
    static struct sample s[MAX_SAMPLES];
    struct et_proc *agent;

    print_message("fault: seed %u (ET_FAULT_SEED=%u replays it)\n", seed, seed);
    srand(seed);
    et_e2e_start_broker(e);
    et_e2e_start_aggregator(e);
    agent = et_e2e_start_agent(e, &opts);
    et_e2e_wait_counter_at_least(e, ET_E2E_DEVICE, 1, 30000);

    for (int k = 0; k < KILLS; k++) {
        /* The moment is the input of this test: anywhere from inside the
         * first batch to several durability windows in. */
        sleep_ms(150 + rand() % 2500);
        kill_at[k] = wall_now_ms();
        assert_int_equal(et_proc_kill(agent), 0);
        assert_int_equal(et_proc_restart(agent), 0);
    }
    /* The last run ends cleanly and the backlog of every run drains. */
    sleep_ms(1500);
    int status;

    assert_int_equal(et_proc_stop(agent, 10000, &status), 0);
    assert_int_equal(et_proc_restart(agent), 0);
    uint64_t newest = 0;
    int64_t batches = 0;

    et_e2e_wait_counter_at_least(e, ET_E2E_DEVICE, 1, 30000);
    assert_int_equal(et_e2e_outbox_read(et_e2e_outbox_path(e, ET_E2E_DEVICE), UINT64_MAX,
                                        &batches, &newest), 0);
    et_e2e_wait_outbox_drained(e, ET_E2E_DEVICE, newest, 60000);

    size_t n = read_counter(e->store_path, ET_E2E_DEVICE, s, MAX_SAMPLES);
    size_t runs = 0, i = 0;

    assert_true(n > 0);
    while (i < n) {
        size_t start = i;

        if (s[i].value != 0)
            fail_msg("run %zu starts at value %" PRId64 ", not 0: the start of a run was lost",
                     runs, s[i].value);
        for (i++; i < n && s[i].value != 0; i++) {
            if (s[i].value != s[i - 1].value + 1)
                fail_msg("run %zu: value %" PRId64 " follows %" PRId64 " (%s)", runs,
                         s[i].value, s[i - 1].value,
                         s[i].value <= s[i - 1].value ? "stored twice" : "lost");
        }
        /* The kill that ended this run: the first one after it began. */
        for (int k = 0; k < KILLS; k++) {
            if (kill_at[k] <= s[start].ts_ms)
                continue;
            int64_t lost_ms = kill_at[k] - s[i - 1].ts_ms;

            if (lost_ms > LOSS_BOUND_MS)
                fail_msg("run %zu: last value stored %" PRId64 " ms before the kill "
                         "(window %d ms)", runs, lost_ms, LOSS_BOUND_MS);
            break;
        }
        runs++;
    }
    print_message("fault: %d kills, %zu runs found in the store, %zu values checked\n", KILLS,
                  runs, n);
    /* A run killed inside its first batch leaves nothing, so runs can be
     * fewer than KILLS + 2, but most must be there. */
    assert_true(runs >= KILLS / 2);
    assert_true(runs <= KILLS + 2);
    et_e2e_pass(e);
}

/* A damaged outbox is set aside, kept, and the agent carries on. */
static void corrupt_outbox_is_kept_aside_and_data_flows(void **state)
{
    struct et_e2e *e = *state;
    const struct et_e2e_agent_opts opts = { 0 };
    const char *outbox = et_e2e_outbox_path(e, ET_E2E_DEVICE);
    char dir[512], cmd[1200];
    FILE *f;

    snprintf(dir, sizeof(dir), "%s", outbox);
    *strrchr(dir, '/') = '\0';
    snprintf(cmd, sizeof(cmd), "mkdir -p '%s'", dir);
    assert_int_equal(system(cmd), 0);
    f = fopen(outbox, "wb");
    assert_non_null(f);
    for (int i = 0; i < 4096; i++)
        fputc((i * 7919) & 0xff, f);      /* not a database: garbage from byte 0 */
    fclose(f);

    et_e2e_start_broker(e);
    et_e2e_start_aggregator(e);
    struct et_proc *agent = et_e2e_start_agent(e, &opts);

    et_e2e_expect_exactly_once(e, ET_E2E_DEVICE, 20, 60000);
    assert_true(et_proc_log_contains(agent, "corrupt"));
    /* The damaged file is still there, renamed, byte for byte. */
    snprintf(cmd, sizeof(cmd), "test \"$(ls '%s' | grep -c 'outbox.db.corrupt-')\" -ge 1", dir);
    assert_int_equal(system(cmd), 0);
    et_e2e_pass(e);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(sigkill_at_random_moments_loses_only_the_window, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(corrupt_outbox_is_kept_aside_and_data_flows, setup,
                                        teardown),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
