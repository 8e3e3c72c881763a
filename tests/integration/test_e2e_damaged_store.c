/*
 * The real edgetel-aggregator on a damaged store: after a run that stored
 * a device's data, 8 KiB of garbage is written into the middle of the
 * store file. Started again, the aggregator must refuse at once, exit
 * non-zero, and say which file is damaged and what to do, leaving the
 * file in place, instead of starting and failing every batch for ever.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <sqlite3.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "e2e.h"

#define STEP_TIMEOUT_MS 30000

static int setup(void **state)
{
    return et_e2e_create((struct et_e2e **)state, "e2e-damaged-store");
}

static int teardown(void **state)
{
    et_e2e_destroy(*state);
    return 0;
}

/* Grow the store with rows of the device's metric, so its middle is data. */
static void grow(const char *path)
{
    sqlite3 *db = NULL;
    char *err = NULL;

    assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
    if (sqlite3_exec(db,
                     "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 20000)"
                     " INSERT INTO samples (metric_id, ts_ms, mono_ms, vtype, v_i64, time_quality, seq)"
                     " SELECT (SELECT MIN(id) FROM metrics), 1795000000000 + i, i, 1, i, 1, 1 FROM n;"
                     "PRAGMA wal_checkpoint(TRUNCATE);", NULL, NULL, &err) != SQLITE_OK)
        fail_msg("growing %s: %s", path, err);
    sqlite3_close(db);
}

static void damage(const char *path)
{
    unsigned char garbage[8192];
    struct stat sb;
    int fd = open(path, O_WRONLY);

    assert_true(fd >= 0);
    assert_int_equal(fstat(fd, &sb), 0);
    assert_true(sb.st_size > 64 * 1024);
    for (size_t i = 0; i < sizeof(garbage); i++)
        garbage[i] = (unsigned char)(i * 131 + 7);
    assert_int_equal(pwrite(fd, garbage, sizeof(garbage), sb.st_size / 2),
                     (ssize_t)sizeof(garbage));
    close(fd);
}

static void a_damaged_store_stops_the_aggregator_at_start(void **state)
{
    struct et_e2e *e = *state;
    const struct et_e2e_agent_opts opts = { 0 };
    struct et_proc *aggregator, *agent;
    struct stat sb;
    int status = 0;

    et_e2e_start_broker(e);
    aggregator = et_e2e_start_aggregator(e);
    agent = et_e2e_start_agent(e, &opts);
    et_e2e_wait_counter_at_least(e, ET_E2E_DEVICE, 10, STEP_TIMEOUT_MS);
    assert_int_equal(et_proc_stop(agent, 10000, NULL), 0);
    assert_int_equal(et_proc_stop(aggregator, 10000, &status), 0);
    assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);

    grow(e->store_path);
    damage(e->store_path);

    assert_int_equal(et_proc_restart(aggregator), 0);
    if (et_proc_wait_exit(aggregator, STEP_TIMEOUT_MS, &status) != 0)
        fail_msg("the aggregator started on a damaged store and keeps running");
    assert_true(WIFEXITED(status));
    assert_int_not_equal(WEXITSTATUS(status), 0);
    /* One line that names the file, says it is damaged and what to do. */
    {
        char want[512];

        snprintf(want, sizeof(want), "%s is damaged (", e->store_path);
        if (!et_proc_log_contains(aggregator, want))
            fail_msg("the log does not say \"%s\"", want);
    }
    assert_true(et_proc_log_contains(aggregator, "move the file and its -wal and -shm files aside"));
    assert_true(et_proc_log_contains(aggregator, "restore it from a backup"));
    assert_true(et_proc_log_contains(aggregator, "edgetel never deletes it"));
    /* The file is where it was, for the operator to rescue. */
    assert_int_equal(stat(e->store_path, &sb), 0);
    et_e2e_pass(e);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(a_damaged_store_stops_the_aggregator_at_start, setup,
                                        teardown),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
