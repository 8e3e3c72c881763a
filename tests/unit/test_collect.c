/*
 * The collector trouble policy (agent/src/collect.c) with a driver made
 * here: a failure reason is logged once, however many channels fail and
 * however often; recovery is logged once; a failed probe is retried after
 * a backoff; three failed reads send the collector back to probing.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../../agent/src/collect.h"
#include "edgetel/log.h"

struct flaky {
    int probe_rc;     /* what probe returns */
    int fetch_rc;     /* what fetch returns */
    bool bad_channels;/* get fails on both channels with their own reasons */
    int probes;
};

static struct flaky flaky;

static const struct et_channel flaky_channels[] = {
    { .name = "a", .unit = "1", .type = ET_TYPE_I64 },
    { .name = "b", .unit = "1", .type = ET_TYPE_I64 },
};

static int flaky_probe(struct et_dev *dev, const void *params)
{
    flaky.probes++;
    if (flaky.probe_rc)
        snprintf(dev->err, sizeof(dev->err), "no answer on the bus");
    return flaky.probe_rc;
}

static int flaky_fetch(struct et_dev *dev)
{
    if (flaky.fetch_rc)
        snprintf(dev->err, sizeof(dev->err), "read timed out");
    return flaky.fetch_rc;
}

static int flaky_get(struct et_dev *dev, unsigned ch, struct et_value *out)
{
    if (flaky.bad_channels) {
        snprintf(dev->err, sizeof(dev->err), "%s: value out of range", flaky_channels[ch].name);
        return -ENODATA;
    }
    *out = et_value_i64(ch);
    return 0;
}

static const struct et_driver flaky_driver = {
    .name = "flaky",
    .channels = flaky_channels,
    .n_channels = 2,
    .probe = flaky_probe,
    .fetch = flaky_fetch,
    .get = flaky_get,
};

static int count_value(void *ctx, const char *metric, const char *unit, const struct et_value *v)
{
    (*(int *)ctx)++;
    return 0;
}

/* stderr goes to a file while a test runs, so it can count log lines. */
static FILE *log_file;
static int saved_stderr;

static int setup(void **state)
{
    memset(&flaky, 0, sizeof(flaky));
    fflush(stderr);
    saved_stderr = dup(2);
    log_file = tmpfile();
    dup2(fileno(log_file), 2);
    et_log_init("test", ET_LOG_INFO);
    return 0;
}

static int teardown(void **state)
{
    fflush(stderr);
    dup2(saved_stderr, 2);
    close(saved_stderr);
    fclose(log_file);
    return 0;
}

static int log_lines_with(const char *needle)
{
    char line[512];
    int n = 0;

    fflush(stderr);
    rewind(log_file);
    while (fgets(line, sizeof(line), log_file))
        n += strstr(line, needle) != NULL;
    return n;
}

static void make(struct et_collector *c, struct et_collector_cfg *cfg)
{
    memset(cfg, 0, sizeof(*cfg));
    cfg->name = "box";
    cfg->type = "sim";           /* a real driver for init; replaced below */
    cfg->interval_ms = 1000;
    cfg->enabled = true;
    assert_int_equal(et_collector_init(c, cfg), 0);
    c->dev.drv = &flaky_driver;
}

static void each_reason_is_logged_once_across_channels_and_rounds(void **state)
{
    struct et_collector c;
    struct et_collector_cfg cfg;
    int values = 0;

    make(&c, &cfg);
    flaky.bad_channels = true;
    for (int r = 0; r < 50; r++)
        et_collector_round(&c, 1000 + r * 1000, count_value, &values);
    assert_int_equal(values, 0);
    assert_int_equal(log_lines_with("a: value out of range"), 1);
    assert_int_equal(log_lines_with("b: value out of range"), 1);
    assert_int_equal(log_lines_with("a: a:"), 0);   /* the channel name said once */

    flaky.bad_channels = false;
    et_collector_round(&c, 60000, count_value, &values);
    et_collector_round(&c, 61000, count_value, &values);
    assert_int_equal(values, 4);
    assert_int_equal(log_lines_with("recovered"), 1);

    /* After recovery the same trouble is news again. */
    flaky.bad_channels = true;
    et_collector_round(&c, 62000, count_value, &values);
    assert_int_equal(log_lines_with("a: value out of range"), 2);
    et_collector_fini(&c);
}

static void failed_probe_backs_off_and_reads_failing_reprobe(void **state)
{
    struct et_collector c;
    struct et_collector_cfg cfg;
    int values = 0;

    make(&c, &cfg);
    flaky.probe_rc = -EIO;
    assert_int_equal(et_collector_round(&c, 0, count_value, &values), -EIO);
    assert_int_equal(flaky.probes, 1);
    /* Within the backoff (5 s, then 10 s...) nothing is tried. */
    assert_int_equal(et_collector_round(&c, 4000, count_value, &values), -EAGAIN);
    assert_int_equal(flaky.probes, 1);
    assert_int_equal(et_collector_round(&c, 5000, count_value, &values), -EIO);
    assert_int_equal(flaky.probes, 2);
    assert_int_equal(et_collector_round(&c, 14000, count_value, &values), -EAGAIN);
    assert_int_equal(log_lines_with("probe failed: no answer on the bus"), 1);

    flaky.probe_rc = 0;
    assert_int_equal(et_collector_round(&c, 15000, count_value, &values), 2);
    assert_int_equal(c.state, ET_COLLECTOR_RUNNING);

    /* Unplugged: three failed reads and it goes back to probing. */
    flaky.fetch_rc = -EIO;
    for (int r = 0; r < 3; r++)
        assert_int_equal(et_collector_round(&c, 16000 + r * 1000, count_value, &values), -EIO);
    assert_int_equal(c.state, ET_COLLECTOR_PROBING);
    assert_int_equal(log_lines_with("read failed: read timed out"), 1);
    et_collector_fini(&c);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(each_reason_is_logged_once_across_channels_and_rounds,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(failed_probe_backs_off_and_reads_failing_reprobe, setup,
                                        teardown),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
