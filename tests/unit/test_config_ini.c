/*
 * The INI loader under the agent config (common/ini): its syntax and its
 * messages as the agent config shows them, and the loader's types that the
 * agent table does not use.
 */
#include "config_test.h"

/* ---- syntax errors ------------------------------------------------------------ */

static void syntax_errors(void **state)
{
    char text[512], msg[512];

    expect_error("[agent]\ndevice_id = d1\n[mqtt]\nhots = x\n",
                 NAME ":4: unknown key \"hots\" in [mqtt]");
    expect_error("[agent]\n\n[mqt]\n",
                 NAME ":3: unknown section [mqt] (known: [agent], [mqtt], [outbox], [collector NAME])");
    expect_error("[mqtt extra]\n",
                 NAME ":1: unknown section [mqtt extra] (known: [agent], [mqtt], "
                 "[outbox], [collector NAME])");
    expect_error("# c\n[]\n", NAME ":2: empty section header \"[]\"");
    expect_error("[  ]\n", NAME ":1: empty section header \"[]\"");
    expect_error("[mqtt\nhost = x\n", NAME ":1: section header \"[mqtt\" has no closing ']'");
    /* An inline comment ends the header before its ']', as libinih reads it. */
    expect_error("[mqtt ;]\n", NAME ":1: section header \"[mqtt ;]\" has no closing ']'");
    expect_error("[mqtt] host = x\n",
                 NAME ":1: unexpected text \"host = x\" after the section header");
    expect_error("device_id = d1\n[agent]\n",
                 NAME ":1: key \"device_id\" comes before any [section]");
    expect_error("[agent]\ndevice_id d1\n",
                 NAME ":2: expected \"key = value\" or \"[section]\", not \"device_id d1\"");
    /* libinih's multi-line values are off: an indented line is a line. */
    expect_error("[agent]\ndevice_id = d1\n    and more\n",
                 NAME ":3: expected \"key = value\" or \"[section]\", not \"and more\"");
    expect_error("[agent]\n= d1\n", NAME ":2: no key before '='");
    expect_error("[agent]\n : d1\n", NAME ":2: no key before ':'");
    expect_error("[agent]\ndevice_id =\n", NAME ":2: [agent] device_id has no value");
    expect_error("[agent]\ndevice_id = ; only a comment\n",
                 NAME ":2: [agent] device_id has no value");
    expect_error("[agent]\ndevice_id = a\n\ndevice_id = b\n",
                 NAME ":4: [agent] device_id given twice (first on line 2)");
    expect_error("[mqtt]\nport = 1\n[agent]\n[mqtt]\n",
                 NAME ":4: section [mqtt] given twice (first on line 1)");

    /* The longest line passes, one more character does not. */
    snprintf(text, sizeof(text), "[agent]\ndata_dir = /%0*d\n[bad]\n",
             ET_INI_MAX_LINE - (int)strlen("data_dir = /"), 0);
    snprintf(msg, sizeof(msg), NAME ":3: unknown section [bad] (known: [agent], [mqtt], "
             "[outbox], [collector NAME])");
    expect_error(text, msg);
    snprintf(text, sizeof(text), "[agent]\ndata_dir = /%0*d\n",
             ET_INI_MAX_LINE + 1 - (int)strlen("data_dir = /"), 0);
    snprintf(msg, sizeof(msg), NAME ":2: line longer than %d characters", ET_INI_MAX_LINE);
    expect_error(text, msg);
    /* Indentation does not count towards the limit. */
    snprintf(text, sizeof(text), "[agent]\n        device_id = %0*d\n[bad]\n",
             ET_INI_MAX_LINE - (int)strlen("device_id = "), 0);
    expect_error(text, NAME ":3: unknown section [bad] (known: [agent], [mqtt], "
                 "[outbox], [collector NAME])");

    /* Section headers: libinih keeps 49 characters; longer ones are refused. */
    snprintf(text, sizeof(text), "[collector %0*d]\n", ET_INI_MAX_SECTION - 9, 0);
    snprintf(msg, sizeof(msg), NAME ":1: section header longer than %d characters",
             ET_INI_MAX_SECTION);
    expect_error(text, msg);

    /* Control characters are refused, and never echoed into a log line. */
    expect_error("[agent]\nde\x1b[31mvice = 1\n", NAME ":2: control character 0x1b in the line");
    expect_error("[agent]\ndevice_id = a\rb\n", NAME ":2: control character 0x0d in the line");
    expect_error("[agent]\n\ndevice_id = a\x7f\n", NAME ":3: control character 0x7f in the line");
    /* Long junk is cut in the message. */
    expect_error("[agent]\nxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"
                 " = 1\n",
                 NAME ":2: unknown key \"xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"
                 "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx...\" in [agent]");
}

/* ---- the loader's other types -------------------------------------------------------- */

struct sample {
    char *name;
    int8_t i8;
    uint16_t u16;
    int32_t i32;
    int64_t i64;
    uint64_t bytes;
    int mode;
    bool flag;
    char *arg_seen;
    int hook_keys;
};

static const char *const modes[] = { "oldest", "newest", "none", NULL };

#define ROW(section, ...) { section, { __VA_ARGS__ } }
static const struct et_ini_key sample_keys[] = {
    ROW("s", .name = "name", .type = ET_KEY_STRING, .offset = offsetof(struct sample, name),
        .size = sizeof(char *), .def = "anon"),
    ROW("s", .name = "i8", .type = ET_KEY_INT, .offset = offsetof(struct sample, i8),
        .size = 1, .def = "-3", .min = -100, .max = 100),
    ROW("s", .name = "u16", .type = ET_KEY_INT, .offset = offsetof(struct sample, u16),
        .size = 2, .def = "65535", .min = 0, .max = 65535),
    ROW("s", .name = "i32", .type = ET_KEY_INT, .offset = offsetof(struct sample, i32),
        .size = 4, .min = INT32_MIN, .max = INT32_MAX),
    ROW("s", .name = "i64", .type = ET_KEY_INT, .offset = offsetof(struct sample, i64),
        .size = 8, .def = "0", .min = INT64_MIN, .max = INT64_MAX),
    ROW("s", .name = "bytes", .type = ET_KEY_SIZE, .offset = offsetof(struct sample, bytes),
        .size = 8, .def = "64k", .min = 4096, .max = 1 << 30),
    ROW("t", .name = "mode", .type = ET_KEY_ENUM, .offset = offsetof(struct sample, mode),
        .size = sizeof(int), .def = "oldest", .choices = modes),
    ROW("t", .name = "flag", .type = ET_KEY_BOOL, .offset = offsetof(struct sample, flag),
        .size = sizeof(bool), .def = "yes"),
};

static int sample_begin(void *obj, const char *arg, int line, char *why, size_t whylen)
{
    struct sample *s = obj;

    if (strcmp(arg, "veto") == 0) {
        snprintf(why, whylen, "vetoed at line %d", line);
        return -EPERM;
    }
    free(s->arg_seen);
    s->arg_seen = strdup(arg);
    return s->arg_seen ? 0 : -ENOMEM;
}

static int sample_key(void *obj, const char *arg, const char *key, const char *value, int line,
                      char *why, size_t whylen)
{
    struct sample *s = obj;

    if (strcmp(key, "ok") != 0)
        return -EINVAL;     /* no reason given: the loader says "unknown key" */
    s->hook_keys++;
    return 0;
}

static const struct et_ini_hook sample_hooks[] = { { "plug", sample_begin, sample_key } };
static const struct et_ini_schema sample_schema = {
    sample_keys, sizeof(sample_keys) / sizeof(sample_keys[0]), sample_hooks, 1,
};

static int parse_sample(const char *text, struct sample *s, int *lines, char *err, size_t len)
{
    memset(s, 0, sizeof(*s));
    return et_ini_parse(&sample_schema, text, strlen(text), "t.ini", s, lines, err, len);
}

static void free_sample(struct sample *s)
{
    et_ini_free_strings(sample_keys, sizeof(sample_keys) / sizeof(sample_keys[0]), s);
    free(s->arg_seen);
    assert_null(s->name);
}

static void ini_types(void **state)
{
    struct sample s;
    int lines[8];
    char err[256];

    assert_int_equal(parse_sample("", &s, lines, err, sizeof(err)), 0);
    assert_string_equal(s.name, "anon");
    assert_int_equal(s.i8, -3);
    assert_int_equal(s.u16, 65535);
    assert_int_equal(s.i32, 0);
    assert_int_equal(s.bytes, 65536);
    assert_int_equal(s.mode, 0);
    assert_true(s.flag);
    for (int i = 0; i < 8; i++)
        assert_int_equal(lines[i], 0);
    free_sample(&s);

    assert_int_equal(parse_sample("[s]\nname = x\ni8 = -100\nu16 = 0\ni32 = -2147483648\n"
                                  "i64 = -9223372036854775808\nbytes = 1G\n[t]\nmode = none\n"
                                  "flag = off\n[plug  in ]\nok = 1\n",
                                  &s, lines, err, sizeof(err)), 0);
    assert_string_equal(s.name, "x");
    assert_int_equal(s.i8, -100);
    assert_int_equal(s.u16, 0);
    assert_int_equal(s.i32, INT32_MIN);
    assert_true(s.i64 == INT64_MIN);
    assert_true(s.bytes == 1 << 30);
    assert_int_equal(s.mode, 2);
    assert_false(s.flag);
    assert_string_equal(s.arg_seen, "in");
    assert_int_equal(s.hook_keys, 1);
    assert_int_equal(lines[0], 2);
    assert_int_equal(lines[5], 7);
    assert_int_equal(lines[6], 9);
    assert_int_equal(lines[7], 10);
    free_sample(&s);

    static const struct {
        const char *text;
        int rc;
        const char *msg;
    } bad[] = {
        { "[s]\ni8 = 101\n", -EINVAL, "t.ini:2: [s] i8 \"101\": must be between -100 and 100" },
        { "[s]\nbytes = 1k\n", -EINVAL, "t.ini:2: [s] bytes \"1k\": must be between 4k and 1G" },
        { "[s]\nbytes = 2G\n", -EINVAL, "t.ini:2: [s] bytes \"2G\": must be between 4k and 1G" },
        { "[s]\nbytes = lots\n", -EINVAL,
          "t.ini:2: [s] bytes \"lots\": expected a size like 64k" },
        { "[s]\nbytes = 99999999999999999999\n", -EINVAL,
          "t.ini:2: [s] bytes \"99999999999999999999\": must be between 4k and 1G" },
        { "[t]\nmode = random\n", -EINVAL,
          "t.ini:2: [t] mode \"random\": expected one of oldest, newest, none" },
        { "[plug]\nnope = 1\n", -EINVAL, "t.ini:2: [plug] unknown key \"nope\"" },
        { "[plug veto]\n", -EPERM, "t.ini:1: [plug veto] vetoed at line 1" },
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        assert_int_equal(parse_sample(bad[i].text, &s, lines, err, sizeof(err)), bad[i].rc);
        assert_string_equal(err, bad[i].msg);
        free_sample(&s);
    }
}

/*
 * A default that does not parse is named with the file. The table errors
 * of single rows (a range that does not fit its member, a member of the
 * wrong size) are the key module's: tests/unit/test_keys.c.
 */
static void ini_bad_table(void **state)
{
    static const struct et_ini_key d = ROW("s", .name = "bytes", .type = ET_KEY_SIZE,
                                           .offset = offsetof(struct sample, bytes), .size = 8,
                                           .def = "lots");
    static const struct et_ini_schema bad_default = { &d, 1, NULL, 0 };
    struct sample s = { 0 };
    char why[256];

    assert_int_equal(et_ini_parse(&bad_default, "", 0, "t.ini", &s, NULL, why, sizeof(why)),
                     -EINVAL);
    assert_string_equal(why, "t.ini: default of bytes \"lots\": expected a size like 64k");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(syntax_errors),
        cmocka_unit_test(ini_types),
        cmocka_unit_test(ini_bad_table),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
