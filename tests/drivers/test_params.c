/*
 * The params tables of driver.h (drivers/params.c): every type parsed,
 * defaults, ranges and their messages, tables that are wrong; every
 * built-in driver's table; and the --list-drivers listing
 * (drivers/catalog.c). The file and line in front of a message are the
 * config loader's: tests/unit/test_config.c.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdbool.h>
#include <stdint.h>

#include "common.h"
#include "drv_test.h"

/* A driver with a key of every type. */
struct all_params {
    int64_t count;
    int64_t addr;
    double gain;
    int64_t period_ms;
    bool flag;
    char *name;
    char *names;
    int mode;
    int64_t any;
    int64_t forever_ms;
    double free_gain;
};

static const char *const modes[] = { "forced", "normal", "off", NULL };

static const char *only_abc(const char *v)
{
    return strspn(v, "abc") == strlen(v) ? NULL : "letters a, b and c";
}

#define F(member) ET_KEY_FIELD(struct all_params, member)
static const struct et_key all_keys[] = {
    { "count", ET_KEY_INT, F(count), "7", 0, 100, .help = "an integer" },
    { "addr", ET_KEY_INT, F(addr), "0x76", 0x03, 0x77, .hex = true, .help = "an address" },
    { "gain", ET_KEY_NUMBER, F(gain), "1.5", -10, 10, .help = "a number" },
    { "period", ET_KEY_DURATION, F(period_ms), "60s", 0, 3600000, .help = "a duration" },
    { "flag", ET_KEY_BOOL, F(flag), "yes", .help = "a boolean" },
    { "name", ET_KEY_STRING, F(name), NULL, .check = only_abc, .help = "a text" },
    { "names", ET_KEY_LIST, F(names), "lo, eth0", .help = "a list" },
    { "mode", ET_KEY_ENUM, F(mode), "normal", .choices = modes, .help = "a choice" },
    { "any", ET_KEY_INT, F(any), NULL, .help = "an integer without range" },
    { "forever", ET_KEY_DURATION, F(forever_ms), NULL, .help = "a duration without range" },
    { "free_gain", ET_KEY_NUMBER, F(free_gain), NULL, .help = "a number without range" },
};
#define N_ALL (sizeof(all_keys) / sizeof(all_keys[0]))

static const struct et_driver all_driver = {
    .name = "all",
    .params = all_keys,
    .n_params = N_ALL,
    .params_size = sizeof(struct all_params),
};

static struct all_params *all_create(void)
{
    void *params = NULL;
    char why[256] = "";

    if (et_params_create(&all_driver, &params, why, sizeof(why)) != 0)
        fail_msg("%s", why);
    return params;
}

/* key = value must be refused with exactly msg; the old value stays. */
static void refused(struct all_params *p, const char *key, const char *value, const char *msg)
{
    struct all_params before = *p;
    char why[256] = "";
    int rc = et_params_set(&all_driver, p, key, value, why, sizeof(why));

    if (rc != -EINVAL || strcmp(why, msg) != 0)
        fail_msg("%s = %s: rc %d, \"%s\"; expected \"%s\"", key, value, rc, why, msg);
    assert_memory_equal(&before, p, sizeof(before));
}

static void set_ok(struct all_params *p, const char *key, const char *value)
{
    char why[256] = "";
    int rc = et_params_set(&all_driver, p, key, value, why, sizeof(why));

    if (rc != 0)
        fail_msg("%s = %s: rc %d, %s", key, value, rc, why);
}

static void defaults_are_applied(void **state)
{
    struct all_params *p = all_create();

    assert_int_equal(p->count, 7);
    assert_int_equal(p->addr, 0x76);
    assert_float_equal(p->gain, 1.5, 0);
    assert_int_equal(p->period_ms, 60000);
    assert_true(p->flag);
    assert_null(p->name);
    assert_string_equal(p->names, "lo, eth0");
    assert_int_equal(p->mode, 1);
    assert_int_equal(p->any, 0);
    assert_int_equal(p->forever_ms, 0);
    et_params_destroy(&all_driver, p);
    et_params_destroy(&all_driver, NULL);
}

static void every_type_parses(void **state)
{
    struct all_params *p = all_create();

    /* integer */
    set_ok(p, "count", "12");
    assert_int_equal(p->count, 12);
    set_ok(p, "count", "-0");
    assert_int_equal(p->count, 0);
    set_ok(p, "any", "-9223372036854775808");
    assert_true(p->any == INT64_MIN);

    /* integer in C notation */
    set_ok(p, "addr", "0x77");
    assert_int_equal(p->addr, 0x77);
    set_ok(p, "addr", "118");
    assert_int_equal(p->addr, 118);
    set_ok(p, "addr", "0X03");
    assert_int_equal(p->addr, 3);

    /* number */
    set_ok(p, "gain", "0.5");
    assert_float_equal(p->gain, 0.5, 0);
    set_ok(p, "gain", "-1e1");
    assert_float_equal(p->gain, -10, 0);
    set_ok(p, "free_gain", "-1e300");
    assert_float_equal(p->free_gain, -1e300, 0);

    /* duration */
    set_ok(p, "period", "90s");
    assert_int_equal(p->period_ms, 90000);
    set_ok(p, "period", "0s");
    assert_int_equal(p->period_ms, 0);
    set_ok(p, "forever", "106751991167d");
    assert_true(p->forever_ms == 106751991167LL * 86400000);

    /* boolean */
    set_ok(p, "flag", "off");
    assert_false(p->flag);
    set_ok(p, "flag", "TRUE");
    assert_true(p->flag);

    /* text with a check, list */
    set_ok(p, "name", "abc");
    assert_string_equal(p->name, "abc");
    set_ok(p, "name", "cab");
    assert_string_equal(p->name, "cab");
    set_ok(p, "names", "eth0, wlan0");
    assert_true(et_list_has(p->names, "wlan0"));
    assert_false(et_list_has(p->names, "lo"));

    /* one of a list */
    set_ok(p, "mode", "forced");
    assert_int_equal(p->mode, 0);
    set_ok(p, "mode", "off");
    assert_int_equal(p->mode, 2);
    et_params_destroy(&all_driver, p);
}

/* Each type's refusals, each with its reason; the member keeps its value. */
static void every_type_refuses_with_its_reason(void **state)
{
    static const struct {
        const char *key, *value, *msg;
    } bad[] = {
        { "count", "1000", "count \"1000\": must be between 0 and 100" },
        { "count", "-1", "count \"-1\": must be between 0 and 100" },
        { "count", "0.5", "count \"0.5\": expected a whole number" },
        { "count", "0x10", "count \"0x10\": expected a whole number" },
        { "count", "12 ", "count \"12 \": expected a whole number" },
        { "any", "9223372036854775808", "any \"9223372036854775808\": must be between "
          "-9223372036854775808 and 9223372036854775807" },
        { "addr", "0x99", "addr \"0x99\": must be between 0x03 and 0x77" },
        { "addr", "2", "addr \"2\": must be between 0x03 and 0x77" },
        { "addr", "seventy", "addr \"seventy\": expected a whole number (0x for hex)" },
        { "addr", "0x7g", "addr \"0x7g\": expected a whole number (0x for hex)" },
        { "gain", "10.5", "gain \"10.5\": must be between -10 and 10" },
        { "gain", "nan", "gain \"nan\": expected a number" },
        { "gain", "inf", "gain \"inf\": expected a number" },
        { "gain", "1e999", "gain \"1e999\": expected a number" },
        { "gain", "loud", "gain \"loud\": expected a number" },
        { "gain", "", "gain \"\": expected a number" },
        { "period", "2h", "period \"2h\": must be between 0ms and 1h" },
        { "period", "5 parsecs", "period \"5 parsecs\": expected a duration like 10s" },
        { "flag", "maybe", "flag \"maybe\": expected true or false" },
        { "name", "abd", "name \"abd\": expected letters a, b and c" },
        { "mode", "turbo", "mode \"turbo\": expected one of forced, normal, off" },
        { "mode", "Forced", "mode \"Forced\": expected one of forced, normal, off" },
        { "addr", "0xffffffffffffffffff",
          "addr \"0xffffffffffffffffff\": must be between 0x03 and 0x77" },
        { "forever", "99999999999999999999d", "forever \"99999999999999999999d\": too large" },
    };
    struct all_params *p = all_create();
    char long_value[101];

    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        refused(p, bad[i].key, bad[i].value, bad[i].msg);
    /* A long value is cut in the message. */
    memset(long_value, '9', 100);
    long_value[100] = '\0';
    refused(p, "count", long_value, "count \"9999999999999999999999999999999999999999999999999"
            "999999999999...\": must be between 0 and 100");
    et_params_destroy(&all_driver, p);
}

/* A later value replaces an earlier one, as a later line would. */
static void last_value_wins(void **state)
{
    struct all_params *p = all_create();
    char why[64];

    set_ok(p, "count", "1");
    set_ok(p, "count", "3");
    assert_int_equal(p->count, 3);
    set_ok(p, "name", "a");
    set_ok(p, "name", "bb");     /* the first string is freed, not leaked */
    assert_string_equal(p->name, "bb");
    assert_int_equal(p->mode, 1);  /* not given: its default */
    assert_int_equal(et_params_set(&all_driver, p, "bogus", "1", why, sizeof(why)), -ENOENT);
    assert_string_equal(why, "unknown key \"bogus\"");
    assert_null(et_params_find(&all_driver, "bogus"));
    assert_ptr_equal(et_params_find(&all_driver, "mode"), &all_keys[7]);
    et_params_destroy(&all_driver, p);
}

/* A table that does not fit its struct is refused, never written past. */
static void wrong_tables_are_caught(void **state)
{
    /* An integer may be any of 1, 2, 4 or 8 bytes, so the member that is
     * too small for its type is a duration's. */
    static const struct et_key narrow[] = {
        { "flag", ET_KEY_DURATION, F(flag), "1s", .help = "a bool declared as a duration" },
    };
    static const struct et_key outside[] = {
        { "count", ET_KEY_INT, F(count), "1", .help = "past the end of a 4-byte struct" },
    };
    static const struct et_key bad_default[] = {
        { "period", ET_KEY_DURATION, F(period_ms), "soon",
          .help = "a default that does not parse" },
    };
    static const struct et_key wide[] = {
        { "mode", ET_KEY_INT, F(mode), "1", 0, 1LL << 40, .help = "a range past an int" },
    };
    static const struct et_driver drivers[] = {
        { .name = "narrow", .params = narrow, .n_params = 1,
          .params_size = sizeof(struct all_params) },
        { .name = "outside", .params = outside, .n_params = 1, .params_size = 4 },
        { .name = "bad_default", .params = bad_default, .n_params = 1,
          .params_size = sizeof(struct all_params) },
        { .name = "no_size", .params = bad_default, .n_params = 1 },
        { .name = "wide", .params = wide, .n_params = 1,
          .params_size = sizeof(struct all_params) },
    };
    char msgs[5][128];
    char why[256];

    snprintf(msgs[0], sizeof(msgs[0]), "narrow: flag: internal error: a member of %zu bytes "
             "at %zu in a struct of %zu", sizeof(bool), offsetof(struct all_params, flag),
             sizeof(struct all_params));
    snprintf(msgs[1], sizeof(msgs[1]), "outside: count: internal error: a member of 8 bytes at "
             "0 in a struct of 4");
    snprintf(msgs[2], sizeof(msgs[2]), "bad_default: internal error: default of period "
             "\"soon\": expected a duration like 10s");
    snprintf(msgs[3], sizeof(msgs[3]), "no_size: internal error: a params table without "
             "params_size");
    snprintf(msgs[4], sizeof(msgs[4]), "wide: mode: internal error: range [0, 1099511627776] "
             "does not fit a %zu-byte member", sizeof(int));
    for (size_t i = 0; i < sizeof(drivers) / sizeof(drivers[0]); i++) {
        void *params = &why;

        assert_int_equal(et_params_create(&drivers[i], &params, why, sizeof(why)), -EINVAL);
        assert_null(params);
        assert_string_equal(why, msgs[i]);
    }
}

/* Every built-in driver's table fits its struct and its defaults parse. */
static void built_in_tables_are_sound(void **state)
{
    for (size_t i = 0; i < et_n_drivers; i++) {
        const struct et_driver *drv = et_drivers[i];
        void *params = NULL;
        char why[256] = "";

        assert_true((drv->n_params == 0) == (drv->params_size == 0));
        if (et_params_create(drv, &params, why, sizeof(why)) != 0)
            fail_msg("%s: %s", drv->name, why);
        assert_true((params != NULL) == (drv->params_size > 0));
        for (size_t k = 0; k < drv->n_params; k++) {
            assert_non_null(drv->params[k].help);
            assert_ptr_equal(et_params_find(drv, drv->params[k].name), &drv->params[k]);
            /* Setting the default again, as text, is accepted. */
            if (drv->params[k].def)
                assert_int_equal(et_params_set(drv, params, drv->params[k].name,
                                               drv->params[k].def, why, sizeof(why)), 0);
        }
        et_params_destroy(drv, params);
    }
}

static void keys_are_described(void **state)
{
    static const char *const want[N_ALL] = {
        "integer, 0 to 100; default 7",
        "integer, 0x for hex, 0x03 to 0x77; default 0x76",
        "number, -10 to 10; default 1.5",
        "duration, 0ms to 1h; default 60s",
        "true or false; default yes",
        "text",
        "comma-separated list; default lo, eth0",
        "forced, normal or off; default normal",
        "integer",
        "duration",
        "number",
    };
    char buf[128], small[8];

    for (size_t i = 0; i < N_ALL; i++) {
        assert_int_equal(et_key_describe(&all_keys[i], buf, sizeof(buf)), strlen(want[i]));
        assert_string_equal(buf, want[i]);
    }
    /* Cut to the buffer, the full length returned, as snprintf. */
    assert_int_equal(et_key_describe(&all_keys[0], small, sizeof(small)), strlen(want[0]));
    assert_string_equal(small, "integer");
}

static char *print_drivers(void)
{
    char *text = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&text, &len);

    assert_non_null(f);
    assert_int_equal(et_drivers_print(f), 0);
    fclose(f);
    return text;
}

/* --list-drivers: every driver with its help, every key with its description and help. */
static void list_drivers_shows_every_key(void **state)
{
    char *text = print_drivers();
    FILE *ro;

    for (size_t i = 0; i < et_n_drivers; i++) {
        const struct et_driver *drv = et_drivers[i];
        char line[512], what[256];

        snprintf(line, sizeof(line), "\n%s: %s\n", drv->name, drv->help);
        if (!strstr(text, line))
            fail_msg("no \"%s\" in:\n%s", line, text);
        for (size_t k = 0; k < drv->n_params; k++) {
            et_key_describe(&drv->params[k], what, sizeof(what));
            snprintf(line, sizeof(line), "\n    %s (%s)\n        %s\n", drv->params[k].name, what,
                     drv->params[k].help);
            if (!strstr(text, line))
                fail_msg("no \"%s\" in:\n%s", line, text);
        }
    }
    if (et_driver_find("bme280")) {
        assert_non_null(strstr(text, "\nbme280: "));
        assert_non_null(strstr(text, "\n    address (integer, 0x for hex, 0x03 to 0x77; "
                                     "default 0x76)\n"));
        assert_non_null(strstr(text, "\n    mode (forced or normal; default forced)\n"));
    }
    if (et_driver_find("cpu"))
        assert_non_null(strstr(text, "\ncpu: "));
    free(text);

    /* A stream that cannot be written is an error, not silence. */
    ro = fopen("/dev/null", "r");
    assert_non_null(ro);
    assert_int_equal(et_drivers_print(ro), -EIO);
    fclose(ro);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(defaults_are_applied),
        cmocka_unit_test(every_type_parses),
        cmocka_unit_test(every_type_refuses_with_its_reason),
        cmocka_unit_test(last_value_wins),
        cmocka_unit_test(wrong_tables_are_caught),
        cmocka_unit_test(built_in_tables_are_sound),
        cmocka_unit_test(keys_are_described),
        cmocka_unit_test(list_drivers_shows_every_key),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
