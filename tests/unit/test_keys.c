/*
 * The typed key rows of edgetel/keys.h on their own: every type parsed into
 * members of every size, ranges and their messages, hex, choices, lists and
 * check callbacks, defaults, freeing, rows that are wrong, the description
 * --list-drivers prints, and quoting. The config loader's use of them is
 * tested in test_config*.c, the drivers' in tests/drivers/test_params.c.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "edgetel/keys.h"
#include "edgetel/log.h"

struct sample {
    char *name;
    char *names;
    int8_t i8;
    uint8_t u8;
    int16_t i16;
    uint16_t u16;
    int32_t i32;
    uint32_t u32;
    int64_t i64;
    int64_t addr;
    uint8_t reg;
    double gain;
    int64_t period_ms;
    int64_t forever_ms;
    uint64_t bytes;
    uint64_t any_bytes;
    bool flag;
    enum et_log_level level;
    int mode;
};

static const char *const modes[] = { "oldest", "newest", "none", NULL };

static const char *only_abc(const char *v)
{
    return strspn(v, "abc") == strlen(v) ? NULL : "letters a, b and c";
}

static const char *no_spaces(const char *v)
{
    return strchr(v, ' ') ? "names without blanks" : NULL;
}

#define F(member) ET_KEY_FIELD(struct sample, member)
static const struct et_key keys[] = {
    { "name", ET_KEY_STRING, F(name), "cab", .check = only_abc, .help = "a text" },
    { "names", ET_KEY_LIST, F(names), NULL, .check = no_spaces, .help = "a list" },
    { "i8", ET_KEY_INT, F(i8), "-3", -100, 100, .help = "1 byte, signed" },
    { "u8", ET_KEY_INT, F(u8), "200", 0, 255, .help = "1 byte, unsigned" },
    { "i16", ET_KEY_INT, F(i16), NULL, .help = "2 bytes, the member's range" },
    { "u16", ET_KEY_INT, F(u16), "65535", 0, 65535, .help = "2 bytes, unsigned" },
    { "i32", ET_KEY_INT, F(i32), NULL, .help = "4 bytes, the member's range" },
    { "u32", ET_KEY_INT, F(u32), "4294967295", 0, UINT32_MAX, .help = "4 bytes, unsigned" },
    { "i64", ET_KEY_INT, F(i64), "0", INT64_MIN, INT64_MAX, .help = "8 bytes" },
    { "addr", ET_KEY_INT, F(addr), "0x76", 0x03, 0x77, .hex = true, .help = "an address" },
    { "reg", ET_KEY_INT, F(reg), NULL, .hex = true, .help = "a 1-byte register, no range" },
    { "gain", ET_KEY_NUMBER, F(gain), "1.5", -10, 10, .help = "a number" },
    { "period", ET_KEY_DURATION, F(period_ms), "60s", 0, 3600000, .help = "a duration" },
    { "forever", ET_KEY_DURATION, F(forever_ms), NULL, .help = "a duration without range" },
    { "bytes", ET_KEY_SIZE, F(bytes), "64k", 4096, 1 << 30, .help = "a size" },
    { "any_bytes", ET_KEY_SIZE, F(any_bytes), NULL, .help = "a size without range" },
    { "flag", ET_KEY_BOOL, F(flag), "yes", .help = "a boolean" },
    { "level", ET_KEY_LOG_LEVEL, F(level), "info", .help = "a log level" },
    { "mode", ET_KEY_ENUM, F(mode), "newest", .choices = modes, .help = "a choice" },
};
#define N_KEYS (sizeof(keys) / sizeof(keys[0]))

static const struct et_key *key(const char *name)
{
    for (size_t i = 0; i < N_KEYS; i++) {
        if (strcmp(keys[i].name, name) == 0)
            return &keys[i];
    }
    fail_msg("no key %s", name);
    return NULL;
}

static void set_ok(struct sample *s, const char *name, const char *value)
{
    char why[256] = "";
    int rc = et_key_set(key(name), s, value, why, sizeof(why));

    if (rc != 0)
        fail_msg("%s = %s: rc %d, %s", name, value, rc, why);
}

/* name = value must be refused with exactly msg; the struct stays as it was. */
static void refused(struct sample *s, const char *name, const char *value, const char *msg)
{
    struct sample before = *s;
    char why[256] = "";
    int rc = et_key_set(key(name), s, value, why, sizeof(why));

    if (rc != -EINVAL || strcmp(why, msg) != 0)
        fail_msg("%s = %s: rc %d, \"%s\"; expected \"%s\"", name, value, rc, why, msg);
    assert_memory_equal(&before, s, sizeof(before));
}

static void make(struct sample *s)
{
    char why[256] = "";

    memset(s, 0, sizeof(*s));
    if (et_keys_set_defaults(keys, N_KEYS, s, why, sizeof(why)) != 0)
        fail_msg("defaults: %s", why);
}

static void defaults_are_applied(void **state)
{
    struct sample s;
    char why[256] = "";

    make(&s);
    assert_string_equal(s.name, "cab");
    assert_null(s.names);
    assert_int_equal(s.i8, -3);
    assert_int_equal(s.u8, 200);
    assert_int_equal(s.i16, 0);
    assert_int_equal(s.u16, 65535);
    assert_true(s.u32 == UINT32_MAX);
    assert_int_equal(s.addr, 0x76);
    assert_float_equal(s.gain, 1.5, 0);
    assert_int_equal(s.period_ms, 60000);
    assert_int_equal(s.bytes, 65536);
    assert_true(s.flag);
    assert_int_equal(s.level, ET_LOG_INFO);
    assert_int_equal(s.mode, 1);

    /* Applied again, a string's old value is freed (valgrind sees no leak)
     * and keys without a default go back to zero and NULL. */
    set_ok(&s, "names", "lo,eth0");
    set_ok(&s, "i16", "7");
    assert_int_equal(et_keys_set_defaults(keys, N_KEYS, &s, why, sizeof(why)), 0);
    assert_null(s.names);
    assert_int_equal(s.i16, 0);
    assert_string_equal(s.name, "cab");
    et_keys_free_strings(keys, N_KEYS, &s);
}

static void every_type_parses(void **state)
{
    struct sample s;

    make(&s);
    set_ok(&s, "name", "cab");
    assert_string_equal(s.name, "cab");
    set_ok(&s, "name", "abc");     /* the first string is freed, not leaked */
    assert_string_equal(s.name, "abc");
    set_ok(&s, "names", "eth0,wlan0");
    assert_string_equal(s.names, "eth0,wlan0");

    /* Integers of every size, signed and unsigned, to the edges. */
    set_ok(&s, "i8", "-100");
    assert_int_equal(s.i8, -100);
    set_ok(&s, "u8", "255");
    assert_int_equal(s.u8, 255);
    set_ok(&s, "i16", "-32768");
    assert_int_equal(s.i16, INT16_MIN);
    set_ok(&s, "u16", "0");
    assert_int_equal(s.u16, 0);
    set_ok(&s, "i32", "2147483647");
    assert_int_equal(s.i32, INT32_MAX);
    set_ok(&s, "u32", "4294967295");
    assert_true(s.u32 == UINT32_MAX);
    set_ok(&s, "i64", "-9223372036854775808");
    assert_true(s.i64 == INT64_MIN);
    set_ok(&s, "i8", "-0");
    assert_int_equal(s.i8, 0);

    set_ok(&s, "gain", "-1e1");
    assert_float_equal(s.gain, -10, 0);
    set_ok(&s, "period", "90s");
    assert_int_equal(s.period_ms, 90000);
    set_ok(&s, "forever", "106751991167d");
    assert_true(s.forever_ms == 106751991167LL * 86400000);
    set_ok(&s, "bytes", "1G");
    assert_true(s.bytes == 1 << 30);
    set_ok(&s, "any_bytes", "16T");
    assert_true(s.any_bytes == 16ULL << 40);
    set_ok(&s, "flag", "off");
    assert_false(s.flag);
    set_ok(&s, "level", "debug");
    assert_int_equal(s.level, ET_LOG_DEBUG);
    set_ok(&s, "mode", "none");
    assert_int_equal(s.mode, 2);
    set_ok(&s, "mode", "oldest");
    assert_int_equal(s.mode, 0);
    et_keys_free_strings(keys, N_KEYS, &s);
}

/* Integers as C writes them, for I2C addresses: read in any base, shown in hex. */
static void hex_integers(void **state)
{
    struct sample s;

    make(&s);
    set_ok(&s, "addr", "0x77");
    assert_int_equal(s.addr, 0x77);
    set_ok(&s, "addr", "0X03");
    assert_int_equal(s.addr, 3);
    set_ok(&s, "addr", "118");
    assert_int_equal(s.addr, 118);
    set_ok(&s, "addr", "010");     /* C's octal, as strtoll reads it */
    assert_int_equal(s.addr, 8);
    set_ok(&s, "reg", "0x7f");
    assert_int_equal(s.reg, 0x7f);
    /* Without a range a hex key takes its member's signed range. */
    refused(&s, "reg", "0x80", "reg \"0x80\": must be between -128 and 0x7f");
    refused(&s, "addr", "0x99", "addr \"0x99\": must be between 0x03 and 0x77");
    refused(&s, "addr", "2", "addr \"2\": must be between 0x03 and 0x77");
    refused(&s, "addr", "0xffffffffffffffffff",
            "addr \"0xffffffffffffffffff\": must be between 0x03 and 0x77");
    refused(&s, "addr", "seventy", "addr \"seventy\": expected a whole number (0x for hex)");
    refused(&s, "addr", "0x7g", "addr \"0x7g\": expected a whole number (0x for hex)");
    /* A key without .hex reads decimal only. */
    refused(&s, "i32", "0x10", "i32 \"0x10\": expected a whole number");
    et_keys_free_strings(keys, N_KEYS, &s);
}

/* Each type's refusals, each with its reason; the struct keeps its values. */
static void ranges_and_refusals(void **state)
{
    static const struct {
        const char *name, *value, *msg;
    } bad[] = {
        { "i8", "101", "i8 \"101\": must be between -100 and 100" },
        { "i8", "1.5", "i8 \"1.5\": expected a whole number" },
        { "u8", "256", "u8 \"256\": must be between 0 and 255" },
        { "u8", "-1", "u8 \"-1\": must be between 0 and 255" },
        { "i16", "32768", "i16 \"32768\": must be between -32768 and 32767" },
        { "i32", "3000000000", "i32 \"3000000000\": must be between -2147483648 and "
          "2147483647" },
        { "u32", "4294967296", "u32 \"4294967296\": must be between 0 and 4294967295" },
        { "i64", "9223372036854775808", "i64 \"9223372036854775808\": must be between "
          "-9223372036854775808 and 9223372036854775807" },
        { "gain", "10.5", "gain \"10.5\": must be between -10 and 10" },
        { "gain", "nan", "gain \"nan\": expected a number" },
        { "gain", "1e999", "gain \"1e999\": expected a number" },
        { "period", "2h", "period \"2h\": must be between 0ms and 1h" },
        { "period", "soon", "period \"soon\": expected a duration like 10s" },
        { "forever", "99999999999999999999d", "forever \"99999999999999999999d\": too large" },
        { "bytes", "1k", "bytes \"1k\": must be between 4k and 1G" },
        { "bytes", "99999999999999999999", "bytes \"99999999999999999999\": must be between "
          "4k and 1G" },
        { "any_bytes", "99999999999999999999", "any_bytes \"99999999999999999999\": "
          "too large" },
        { "bytes", "lots", "bytes \"lots\": expected a size like 64k" },
        { "flag", "maybe", "flag \"maybe\": expected true or false" },
        { "level", "loud", "level \"loud\": expected error, warn, info or debug" },
        { "mode", "random", "mode \"random\": expected one of oldest, newest, none" },
        { "mode", "Oldest", "mode \"Oldest\": expected one of oldest, newest, none" },
        /* The check callbacks of a text and a list. */
        { "name", "abd", "name \"abd\": expected letters a, b and c" },
        { "names", "lo, eth0", "names \"lo, eth0\": expected names without blanks" },
    };
    struct sample s;
    char long_value[101], why[8];

    make(&s);
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        refused(&s, bad[i].name, bad[i].value, bad[i].msg);
    /* A long value is cut in the message. */
    memset(long_value, '9', 100);
    long_value[100] = '\0';
    refused(&s, "i8", long_value, "i8 \"99999999999999999999999999999999999999999999999999999"
            "99999999...\": must be between -100 and 100");
    /* A short buffer is cut, a missing one is not written. */
    assert_int_equal(et_key_set(key("flag"), &s, "maybe", why, sizeof(why)), -EINVAL);
    assert_string_equal(why, "flag \"m");
    assert_int_equal(et_key_set(key("mode"), &s, "x", NULL, 0), -EINVAL);
    assert_int_equal(et_key_set(key("mode"), &s, "none", NULL, 0), 0);
    et_keys_free_strings(keys, N_KEYS, &s);
}

/* A row that does not fit its member is caught, never written through. */
static void wrong_rows_are_caught(void **state)
{
    static const struct et_key wide = {
        .name = "u16", .type = ET_KEY_INT, .offset = offsetof(struct sample, u16), .size = 2,
        .def = "1", .min = 0, .max = 70000,
    };
    static const struct et_key narrow = {
        .name = "i32", .type = ET_KEY_DURATION, .offset = offsetof(struct sample, i32), .size = 4,
    };
    static const struct et_key odd = {
        .name = "i32", .type = ET_KEY_INT, .offset = offsetof(struct sample, i32), .size = 3,
    };
    static const struct et_key bad_default = {
        .name = "bytes", .type = ET_KEY_SIZE, .offset = offsetof(struct sample, bytes),
        .size = 8, .def = "lots",
    };
    struct sample s = { 0 };
    char why[256];

    assert_int_equal(et_key_set(&wide, &s, "5", why, sizeof(why)), -EINVAL);
    assert_string_equal(why, "u16: internal error: range [0, 70000] does not fit a 2-byte member");
    assert_int_equal(et_key_check(&wide, why, sizeof(why)), -EINVAL);
    assert_int_equal(et_key_set(&narrow, &s, "5s", why, sizeof(why)), -EINVAL);
    assert_string_equal(why, "i32: internal error: member of 4 bytes, the type writes 8");
    assert_int_equal(et_key_set(&odd, &s, "5", why, sizeof(why)), -EINVAL);
    assert_string_equal(why, "i32: internal error: an integer member of 3 bytes");
    assert_int_equal(et_key_member_size(&odd), 0);
    assert_true(et_key_member_size(&narrow) == sizeof(int64_t));
    assert_true(et_key_member_size(&wide) == sizeof(uint16_t));
    /* Defaults check rows without a default too, before zeroing them. */
    assert_int_equal(et_keys_set_defaults(&narrow, 1, &s, why, sizeof(why)), -EINVAL);
    assert_string_equal(why, "i32: internal error: member of 4 bytes, the type writes 8");
    assert_int_equal(et_keys_set_defaults(&bad_default, 1, &s, why, sizeof(why)), -EINVAL);
    assert_string_equal(why, "bytes \"lots\": expected a size like 64k");
    assert_true(s.i32 == 0 && s.u16 == 0 && s.bytes == 0);
    for (size_t i = 0; i < N_KEYS; i++)
        assert_int_equal(et_key_check(&keys[i], why, sizeof(why)), 0);
}

/* A duration without a range still cannot overflow; an integer without one
 * takes its member's own range, never a silent truncation. */
static void unbounded_keys(void **state)
{
    static const struct et_key unbounded = {
        .name = "i32", .type = ET_KEY_INT, .offset = offsetof(struct sample, i32), .size = 4,
    };
    static const struct et_key forever = {
        .name = "i64", .type = ET_KEY_DURATION, .offset = offsetof(struct sample, i64), .size = 8,
    };
    struct sample s = { 0 };
    char why[256];

    assert_int_equal(et_key_set(&forever, &s, "99999999999999999999d", why, sizeof(why)),
                     -EINVAL);
    assert_string_equal(why, "i64 \"99999999999999999999d\": too large");
    assert_int_equal(et_key_set(&forever, &s, "106751991167d", why, sizeof(why)), 0);
    assert_true(s.i64 == 106751991167LL * 86400000);
    assert_int_equal(et_key_set(&unbounded, &s, "-2147483648", why, sizeof(why)), 0);
    assert_int_equal(s.i32, INT32_MIN);
    assert_int_equal(et_key_set(&unbounded, &s, "3000000000", why, sizeof(why)), -EINVAL);
    assert_string_equal(why, "i32 \"3000000000\": must be between -2147483648 and 2147483647");
    assert_int_equal(s.i32, INT32_MIN);
}

static void free_strings(void **state)
{
    struct sample s;

    make(&s);
    set_ok(&s, "names", "a,b");
    s.i64 = 42;
    et_keys_free_strings(keys, N_KEYS, &s);
    assert_null(s.name);
    assert_null(s.names);
    assert_int_equal(s.i64, 42);   /* other members are left alone */
    et_keys_free_strings(keys, N_KEYS, &s);   /* and again: NULL is fine */
}

static void keys_are_described(void **state)
{
    static const struct {
        const char *name, *want;
    } cases[] = {
        { "name", "text; default cab" },
        { "names", "comma-separated list" },
        { "i8", "integer, -100 to 100; default -3" },
        { "i16", "integer" },
        { "addr", "integer, 0x for hex, 0x03 to 0x77; default 0x76" },
        { "reg", "integer, 0x for hex" },
        { "gain", "number, -10 to 10; default 1.5" },
        { "period", "duration, 0ms to 1h; default 60s" },
        { "bytes", "size, 4k to 1G; default 64k" },
        { "flag", "true or false; default yes" },
        { "level", "error, warn, info or debug; default info" },
        { "mode", "oldest, newest or none; default newest" },
    };
    char buf[128], small[8];

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        assert_int_equal(et_key_describe(key(cases[i].name), buf, sizeof(buf)),
                         strlen(cases[i].want));
        assert_string_equal(buf, cases[i].want);
    }
    /* Cut to the buffer, the full length returned, as snprintf. */
    assert_int_equal(et_key_describe(key("addr"), small, sizeof(small)),
                     strlen("integer, 0x for hex, 0x03 to 0x77; default 0x76"));
    assert_string_equal(small, "integer");
}

static void quoting(void **state)
{
    char buf[ET_KEY_QUOTE_BUF], tiny[3];
    char text[80];

    assert_string_equal(et_key_quote("a\x1b[31mb\tc", buf, sizeof(buf)), "a?[31mb?c");
    /* 64 characters fit whole; 65 are cut to 61 and "...". */
    memset(text, 'x', 64);
    text[64] = '\0';
    assert_string_equal(et_key_quote(text, buf, sizeof(buf)), text);
    text[64] = 'y';
    text[65] = '\0';
    et_key_quote(text, buf, sizeof(buf));
    assert_int_equal(strlen(buf), 64);
    assert_memory_equal(buf, text, 61);
    assert_string_equal(buf + 61, "...");
    /* Too small for "...": cut plainly. */
    assert_string_equal(et_key_quote("abcdef", tiny, sizeof(tiny)), "ab");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(defaults_are_applied),
        cmocka_unit_test(every_type_parses),
        cmocka_unit_test(hex_integers),
        cmocka_unit_test(ranges_and_refusals),
        cmocka_unit_test(wrong_rows_are_caught),
        cmocka_unit_test(unbounded_keys),
        cmocka_unit_test(free_strings),
        cmocka_unit_test(keys_are_described),
        cmocka_unit_test(quoting),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
