/*
 * Value parsers: every accepted form, every kind of junk, overflow at the
 * exact edge, and the formatters reading back through the parsers.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "edgetel/parse.h"

static void duration_forms(void **state)
{
    static const struct {
        const char *text;
        int64_t ms;
    } ok[] = {
        { "250ms", 250 },
        { "10s", 10000 },
        { "5m", 300000 },
        { "1h", 3600000 },
        { "2d", 172800000 },
        { "30", 30000 },          /* bare number: seconds */
        { "0", 0 },
        { "0ms", 0 },
        { "1h30m", 5400000 },
        { "1m30s", 90000 },
        { "1s500ms", 1500 },
        { "007s", 7000 },
        { "9223372036854775807ms", INT64_MAX },
    };

    for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
        int64_t ms = -1;

        assert_int_equal(et_parse_duration_ms(ok[i].text, &ms), 0);
        assert_int_equal(ms, ok[i].ms);
    }
}

static void duration_junk(void **state)
{
    static const char *const bad[] = {
        "", "s", "ms", "5x", "10 s", " 10s", "10s ", "-1s", "+1s", "1.5s", "10S", "5M",
        "1m30", "10sec", "1w", "h1", "0x10", "1e3", "10s\n", "５s",
    };

    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        int64_t ms = 12345;

        assert_int_equal(et_parse_duration_ms(bad[i], &ms), -EINVAL);
        assert_int_equal(ms, 12345);   /* untouched on failure */
    }
    assert_int_equal(et_parse_duration_ms(NULL, &(int64_t){ 0 }), -EINVAL);
}

static void duration_overflow(void **state)
{
    int64_t ms = 7;

    /* One past INT64_MAX in each place an overflow can happen. */
    assert_int_equal(et_parse_duration_ms("9223372036854775808ms", &ms), -ERANGE);
    assert_int_equal(et_parse_duration_ms("9223372036854776s", &ms), -ERANGE);
    assert_int_equal(et_parse_duration_ms("106751991168d", &ms), -ERANGE);
    assert_int_equal(et_parse_duration_ms("99999999999999999999999s", &ms), -ERANGE);
    assert_int_equal(et_parse_duration_ms("9223372036854775807ms1ms", &ms), -ERANGE);
    assert_int_equal(ms, 7);
    /* The largest whole number of days that fits. */
    assert_int_equal(et_parse_duration_ms("106751991167d", &ms), 0);
    assert_int_equal(ms, 106751991167LL * 86400000);
}

static void size_forms(void **state)
{
    static const struct {
        const char *text;
        uint64_t bytes;
    } ok[] = {
        { "4096", 4096 },
        { "0", 0 },
        { "64k", 65536 },
        { "64K", 65536 },
        { "64kB", 65536 },
        { "64KiB", 65536 },
        { "10M", 10485760 },
        { "10MiB", 10485760 },
        { "1G", 1073741824 },
        { "2T", 2199023255552ULL },
        { "100B", 100 },
        { "18446744073709551615", UINT64_MAX },
        { "16777215T", 16777215ULL << 40 },
    };

    for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
        uint64_t b = 1;

        assert_int_equal(et_parse_size(ok[i].text, &b), 0);
        assert_true(b == ok[i].bytes);
    }
}

static void size_junk(void **state)
{
    static const char *const bad[] = {
        "", "k", "10m", "10x", "10 M", " 10", "-1", "+1", "1.5G", "10MB B", "10Mi",
        "10iB", "10BB", "10kk", "0x10",
    };
    uint64_t b = 99;

    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        assert_int_equal(et_parse_size(bad[i], &b), -EINVAL);
    assert_true(b == 99);
    assert_int_equal(et_parse_size("18446744073709551616", &b), -ERANGE);
    assert_int_equal(et_parse_size("16777216T", &b), -ERANGE);
    assert_int_equal(et_parse_size("17179869184G", &b), -ERANGE);
    assert_true(b == 99);
}

static void bools(void **state)
{
    static const char *const yes[] = { "true", "TRUE", "Yes", "on", "1" };
    static const char *const no[] = { "false", "False", "NO", "off", "0" };
    static const char *const bad[] = { "", "2", "tru", "truee", "y", "n", " true", "enabled" };
    bool v;

    for (size_t i = 0; i < sizeof(yes) / sizeof(yes[0]); i++) {
        v = false;
        assert_int_equal(et_parse_bool(yes[i], &v), 0);
        assert_true(v);
    }
    for (size_t i = 0; i < sizeof(no) / sizeof(no[0]); i++) {
        v = true;
        assert_int_equal(et_parse_bool(no[i], &v), 0);
        assert_false(v);
    }
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        v = true;
        assert_int_equal(et_parse_bool(bad[i], &v), -EINVAL);
        assert_true(v);
    }
}

static void ints(void **state)
{
    int64_t v = 0;

    assert_int_equal(et_parse_int("42", 0, 100, &v), 0);
    assert_int_equal(v, 42);
    assert_int_equal(et_parse_int("-5", -10, 10, &v), 0);
    assert_int_equal(v, -5);
    assert_int_equal(et_parse_int("0", 0, 0, &v), 0);
    assert_int_equal(v, 0);
    /* The range is inclusive at both ends. */
    assert_int_equal(et_parse_int("1", 1, 65535, &v), 0);
    assert_int_equal(et_parse_int("65535", 1, 65535, &v), 0);
    assert_int_equal(v, 65535);
    v = 3;
    assert_int_equal(et_parse_int("0", 1, 65535, &v), -ERANGE);
    assert_int_equal(et_parse_int("65536", 1, 65535, &v), -ERANGE);
    assert_int_equal(v, 3);
    /* Edges of int64. */
    assert_int_equal(et_parse_int("9223372036854775807", INT64_MIN, INT64_MAX, &v), 0);
    assert_true(v == INT64_MAX);
    assert_int_equal(et_parse_int("-9223372036854775808", INT64_MIN, INT64_MAX, &v), 0);
    assert_true(v == INT64_MIN);
    assert_int_equal(et_parse_int("9223372036854775808", INT64_MIN, INT64_MAX, &v), -ERANGE);
    assert_int_equal(et_parse_int("-9223372036854775809", INT64_MIN, INT64_MAX, &v), -ERANGE);
    assert_int_equal(et_parse_int("99999999999999999999999", INT64_MIN, INT64_MAX, &v),
                     -ERANGE);
    /* Junk. */
    static const char *const bad[] = { "", "-", "+1", " 1", "1 ", "1x", "0x10", "1.0", "--1",
                                       "1e3", "١" };

    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        assert_int_equal(et_parse_int(bad[i], INT64_MIN, INT64_MAX, &v), -EINVAL);
    assert_int_equal(et_parse_int(NULL, 0, 1, &v), -EINVAL);
}

static void format_round_trip(void **state)
{
    static const struct {
        int64_t ms;
        const char *text;
    } d[] = {
        { 0, "0ms" }, { 250, "250ms" }, { 1500, "1500ms" }, { 10000, "10s" }, { 90000, "90s" },
        { 300000, "5m" }, { 3600000, "1h" }, { 5400000, "90m" }, { 172800000, "2d" },
    };
    static const struct {
        uint64_t bytes;
        const char *text;
    } z[] = {
        { 0, "0" }, { 1000, "1000" }, { 4096, "4k" }, { 1536, "1536" }, { 10485760, "10M" },
        { 1073741824, "1G" }, { 3ULL << 40, "3T" },
    };
    char buf[32];

    for (size_t i = 0; i < sizeof(d) / sizeof(d[0]); i++) {
        int64_t back;

        et_format_duration_ms(d[i].ms, buf, sizeof(buf));
        assert_string_equal(buf, d[i].text);
        assert_int_equal(et_parse_duration_ms(buf, &back), 0);
        assert_int_equal(back, d[i].ms);
    }
    for (size_t i = 0; i < sizeof(z) / sizeof(z[0]); i++) {
        uint64_t back;

        et_format_size(z[i].bytes, buf, sizeof(buf));
        assert_string_equal(buf, z[i].text);
        assert_int_equal(et_parse_size(buf, &back), 0);
        assert_true(back == z[i].bytes);
    }
    /* A short buffer is cut, never overrun, and the full length reported. */
    assert_int_equal(et_format_duration_ms(172800000, buf, 2), 2);
    assert_string_equal(buf, "2");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(duration_forms),
        cmocka_unit_test(duration_junk),
        cmocka_unit_test(duration_overflow),
        cmocka_unit_test(size_forms),
        cmocka_unit_test(size_junk),
        cmocka_unit_test(bools),
        cmocka_unit_test(ints),
        cmocka_unit_test(format_round_trip),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
