/*
 * The aggregator's limits on what devices send: [mqtt] max_packet and the
 * [budget] section, their defaults, and their errors.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "edgetel/agg_config.h"
#include "edgetel/budget.h"
#include "edgetel/codec.h"

#define BASE "[mqtt]\nhost = h\ninsecure = true\n"

static void test_defaults(void **state)
{
    struct et_agg_config c;
    char err[256];

    assert_int_equal(et_agg_config_parse(BASE, "agg.conf", &c, err, sizeof(err)), 0);
    /* The largest message the codec takes: anything larger is refused unread. */
    assert_int_equal(c.max_packet, ET_WIRE_MAX_MESSAGE);
    assert_int_equal(c.budget.samples_per_s, ET_BUDGET_SAMPLES_PER_S);
    assert_int_equal(c.budget.sample_burst, ET_BUDGET_SAMPLE_BURST);
    assert_int_equal(c.budget.bytes_per_s, ET_BUDGET_BYTES_PER_S);
    assert_int_equal(c.budget.byte_burst, ET_BUDGET_BYTE_BURST);
    et_agg_config_free(&c);
}

static void test_set(void **state)
{
    struct et_agg_config c;
    char err[256];

    assert_int_equal(et_agg_config_parse(BASE "max_packet = 64k\n[budget]\nsamples_per_s = 0\n"
                                         "bytes_per_s = 1M\nbyte_burst = 8M\n", "agg.conf", &c,
                                         err, sizeof(err)), 0);
    assert_int_equal(c.max_packet, 65536);
    assert_int_equal(c.budget.samples_per_s, 0);
    assert_int_equal(c.budget.bytes_per_s, 1024 * 1024);
    assert_int_equal(c.budget.byte_burst, 8 * 1024 * 1024);
    et_agg_config_free(&c);
}

static void assert_error(const char *text, const char *want)
{
    struct et_agg_config c;
    char err[512] = "";

    assert_int_equal(et_agg_config_parse(text, "agg.conf", &c, err, sizeof(err)), -EINVAL);
    if (!strstr(err, want))
        fail_msg("error \"%s\" does not say \"%s\"", err, want);
}

static void test_errors(void **state)
{
    assert_error(BASE "max_packet = 100\n", "agg.conf:4: [mqtt] max_packet \"100\"");
    assert_error(BASE "[budget]\nsample_burst = 10\n",
                 "agg.conf:5: [budget] sample_burst is below samples_per_s");
    assert_error(BASE "[budget]\nbytes_per_s = 4M\n",
                 "agg.conf: [budget] byte_burst is below bytes_per_s");
    assert_error(BASE "[budget]\nsamples = 5\n", "agg.conf:5: unknown key \"samples\" in [budget]");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_defaults),
        cmocka_unit_test(test_set),
        cmocka_unit_test(test_errors),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
