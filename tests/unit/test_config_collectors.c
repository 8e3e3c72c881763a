/*
 * [collector NAME] sections: names, the core keys, the system set, and the
 * driver keys, which the config loader parses with each driver's params
 * table (drivers/params.c) so that a bad value is refused with its file
 * and line before any probe.
 */
#include "config_test.h"
#include "params.h"

/* A member of a collector's parsed params, found through its driver's table. */
static const void *param_field(const struct et_collector_cfg *cc, const char *key)
{
    const struct et_key *p = et_params_find(et_driver_find(cc->type), key);

    assert_non_null(p);
    assert_non_null(cc->params);
    return (const char *)cc->params + p->offset;
}

static int64_t param_i64(const struct et_collector_cfg *cc, const char *key)
{
    int64_t v;

    memcpy(&v, param_field(cc, key), sizeof(v));
    return v;
}

static double param_f64(const struct et_collector_cfg *cc, const char *key)
{
    double v;

    memcpy(&v, param_field(cc, key), sizeof(v));
    return v;
}

static void collectors(void **state)
{
    const char *text =
        "[agent]\n"
        "device_id = d1\n"
        "[collector fast-sim]\n"
        "start = 5\n"                       /* before type: checked at the end */
        "type = sim\n"
        "interval = 250ms\n"
        "period = 30s\n"
        "\n"
        "[collector slow_sim_2]\n"
        "type = sim\n"
        "enabled = false\n";
    struct et_config c;

    if (!et_driver_find("sim"))
        skip();
    parse_ok(text, &c);
    assert_int_equal(c.n_collectors, 2);
    assert_string_equal(c.collectors[0].name, "fast-sim");
    assert_string_equal(c.collectors[0].type, "sim");
    assert_int_equal(c.collectors[0].interval_ms, 250);
    assert_true(c.collectors[0].enabled);
    assert_int_equal(c.collectors[0].line, 3);
    assert_int_equal(c.collectors[0].n_keys, 2);
    assert_string_equal(c.collectors[0].keys[0].key, "start");
    assert_string_equal(c.collectors[0].keys[0].value, "5");
    assert_int_equal(c.collectors[0].keys[0].line, 4);
    assert_string_equal(c.collectors[0].keys[1].key, "period");
    assert_string_equal(c.collectors[0].keys[1].value, "30s");
    assert_int_equal(c.collectors[0].keys[1].line, 7);
    /* Parsed by sim's table for probe: the values given, the default for the rest. */
    assert_true(param_i64(&c.collectors[0], "period") == 30000);
    assert_true(param_i64(&c.collectors[0], "start") == 5);
    assert_float_equal(param_f64(&c.collectors[0], "amplitude"), 1.0, 0);

    assert_string_equal(c.collectors[1].name, "slow_sim_2");
    assert_int_equal(c.collectors[1].interval_ms, 10000);
    assert_false(c.collectors[1].enabled);
    assert_int_equal(c.collectors[1].line, 9);
    assert_int_equal(c.collectors[1].n_keys, 0);
    assert_true(param_i64(&c.collectors[1], "period") == 60000);
    assert_true(param_i64(&c.collectors[1], "start") == 0);
    et_config_free(&c);

    /* All collectors disabled is a choice, not "no section": no defaults added. */
    parse_ok("[agent]\ndevice_id = d1\n[collector s]\ntype = sim\nenabled = off\n", &c);
    assert_int_equal(c.n_collectors, 1);
    et_config_free(&c);
}

/* ---- collector errors ------------------------------------------------------------- */

static void drivers_list(char *buf, size_t len)
{
    size_t used = 0;

    buf[0] = '\0';
    for (size_t i = 0; i < et_n_drivers; i++)
        used += (size_t)snprintf(buf + used, len - used, "%s%s", i ? ", " : "",
                                 et_drivers[i]->name);
}

static void collector_errors(void **state)
{
    const struct et_driver *sim = et_driver_find("sim");
    char msg[1024], names[512];
    size_t used;

    expect_error("[agent]\ndevice_id = d1\n[collector]\ntype = sim\n",
                 NAME ":3: [collector] needs a name: [collector NAME]");
    expect_error("[collector CPU]\n",
                 NAME ":1: [collector CPU] name: use 1-32 characters of a-z, 0-9, _ and - "
                 "(it starts every metric name of the collector)");
    expect_error("[collector a.b]\n",
                 NAME ":1: [collector a.b] name: use 1-32 characters of a-z, 0-9, _ and - "
                 "(it starts every metric name of the collector)");
    expect_error("[collector a b]\n",
                 NAME ":1: [collector a b] name: use 1-32 characters of a-z, 0-9, _ and - "
                 "(it starts every metric name of the collector)");
    expect_error("[collector abcdefghijklmnopqrstuvwxyz0123456]\n",
                 NAME ":1: [collector abcdefghijklmnopqrstuvwxyz0123456] name: use 1-32 "
                 "characters of a-z, 0-9, _ and - (it starts every metric name of the "
                 "collector)");
    expect_error("[agent]\ndevice_id = d1\n\n[collector x]\ninterval = 1s\n",
                 NAME ":4: [collector x] has no type: add type = DRIVER");

    drivers_list(names, sizeof(names));
    snprintf(msg, sizeof(msg),
             NAME ":2: [collector x] type \"nope\": no such driver (built in: %s)", names);
    expect_error("[collector x]\ntype = nope\n", msg);

    if (!sim)
        skip();
    expect_error("[agent]\ndevice_id = d1\n[collector x]\ntype = sim\ninterval = 50ms\n",
                 NAME ":5: [collector x] interval \"50ms\": must be between 100ms and 1d");
    expect_error("[collector x]\ntype = sim\ninterval = often\n",
                 NAME ":3: [collector x] interval \"often\": expected a duration like 10s");
    expect_error("[collector x]\ntype = sim\nenabled = sometimes\n",
                 NAME ":3: [collector x] enabled \"sometimes\": expected true or false");
    expect_error("[collector x]\ntype = sim\ntype = sim\n",
                 NAME ":3: [collector x] type given twice (first on line 2)");
    expect_error("[collector x]\ntype = sim\nperiod = 1s\n\nperiod = 2s\n",
                 NAME ":5: [collector x] period given twice (first on line 3)");
    expect_error("[collector x]\ntype = sim\n[collector y]\ntype = sim\n[collector  x ]\n",
                 NAME ":5: section [collector x] given twice (first on line 1)");
    expect_error("[collector x]\ntype = sim\nperiod =\n",
                 NAME ":3: [collector x] period has no value");

    /* Limits: a runaway file is refused at the first section or key too many. */
    {
        size_t cap = 64 * (ET_CONFIG_MAX_COLLECTORS + 1) + 64, o = 0;
        char *big = malloc(cap);

        assert_non_null(big);
        for (int i = 0; i <= ET_CONFIG_MAX_COLLECTORS; i++)
            o += (size_t)snprintf(big + o, cap - o, "[collector c%d]\ntype = sim\n", i);
        snprintf(msg, sizeof(msg), NAME ":%d: [collector c%d] too many collectors: at most %d",
                 2 * ET_CONFIG_MAX_COLLECTORS + 1, ET_CONFIG_MAX_COLLECTORS,
                 ET_CONFIG_MAX_COLLECTORS);
        expect_error(big, msg);

        o = (size_t)snprintf(big, cap, "[collector x]\ntype = sim\n");
        for (int i = 0; i <= ET_CONFIG_MAX_PARAMS; i++)
            o += (size_t)snprintf(big + o, cap - o, "k%d = 1\n", i);
        snprintf(msg, sizeof(msg), NAME ":%d: [collector x] too many keys: at most %d besides "
                 "type, interval, enabled and tags", ET_CONFIG_MAX_PARAMS + 3, ET_CONFIG_MAX_PARAMS);
        expect_error(big, msg);
        free(big);
    }

    /* A key the driver does not list, reported with its own line. */
    used = (size_t)snprintf(msg, sizeof(msg), NAME ":4: [collector x] unknown key \"bogus\" "
                            "(sim takes type, interval, enabled, tags");
    for (size_t i = 0; i < sim->n_params; i++)
        used += (size_t)snprintf(msg + used, sizeof(msg) - used, ", %s", sim->params[i].name);
    snprintf(msg + used, sizeof(msg) - used, ")");
    expect_error("[agent]\ndevice_id = d1\n[collector x]\nbogus = 1\ntype = sim\n", msg);

    /* Tags: checked where they are written. */
    expect_error("[agent]\ndevice_id = d1\n[collector x]\ntype = sim\ntags = Room=1\n",
                 NAME ":5: [collector x] tags: tag 1: expected key=value with a key of a-z 0-9 _");
    expect_error("[agent]\ndevice_id = d1\n[collector x]\ntype = sim\ntags = a=1, a=2\n",
                 NAME ":5: [collector x] tags: tag \"a\" given twice");
}

/*
 * Driver keys are parsed by the driver's table when the file is loaded, so
 * a bad value is refused with its file and line before any probe. The key
 * comes before the type here (checked at the end, still on its own line),
 * and after it.
 */
static void driver_key_errors(void **state)
{
    static const struct {
        const char *driver, *key, *value, *msg;
    } bad[] = {
        { "sim", "start", "12abc", "start \"12abc\": expected a whole number" },
        { "sim", "start", "4611686018427387904", "start \"4611686018427387904\": must be "
          "between -4611686018427387904 and 4611686018427387903" },
        { "sim", "period", "0s", "period \"0s\": must be between 1ms and 2305843009213693951ms" },
        { "sim", "period", "5 parsecs", "period \"5 parsecs\": expected a duration like 10s" },
        { "sim", "amplitude", "loud", "amplitude \"loud\": expected a number" },
        { "sim", "amplitude", "nan", "amplitude \"nan\": expected a number" },
        { "sim", "amplitude", "2e12", "amplitude \"2e12\": must be between -1000000000000 and "
          "1000000000000" },
        { "bme280", "address", "0x99", "address \"0x99\": must be between 0x03 and 0x77" },
        { "bme280", "address", "seventy",
          "address \"seventy\": expected a whole number (0x for hex)" },
        { "bme280", "mode", "turbo", "mode \"turbo\": expected one of forced, normal" },
        { "bme280", "bus", "-1", "bus \"-1\": must be between 0 and 255" },
        { "bme280", "bus", "one", "bus \"one\": expected a whole number" },
        { "ds18b20", "id", "../../etc",
          "id \"../../etc\": expected a DS18B20 id like 28-01193a5f2e6b" },
        { "ds18b20", "id", "28-0000000000000000000",
          "id \"28-0000000000000000000\": expected a DS18B20 id like 28-01193a5f2e6b" },
    };
    char text[512], msg[512];
    size_t tested = 0;

    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        if (!et_driver_find(bad[i].driver))
            continue;
        tested++;
        snprintf(text, sizeof(text), "[agent]\ndevice_id = d1\n[collector x]\n%s = %s\n"
                 "type = %s\n", bad[i].key, bad[i].value, bad[i].driver);
        snprintf(msg, sizeof(msg), NAME ":4: [collector x] %s", bad[i].msg);
        expect_error(text, msg);
        snprintf(text, sizeof(text), "[agent]\ndevice_id = d1\n[collector ok]\ntype = %s\n"
                 "[collector y]\ntype = %s\ninterval = 1s\n\n%s = %s\n", bad[i].driver,
                 bad[i].driver, bad[i].key, bad[i].value);
        snprintf(msg, sizeof(msg), NAME ":9: [collector y] %s", bad[i].msg);
        expect_error(text, msg);
    }
    if (!tested)
        skip();

    /* Good values of every kind a built-in driver takes. */
    if (et_driver_find("bme280")) {
        struct et_config c;

        parse_ok("[agent]\ndevice_id = d1\n[collector a]\ntype = bme280\nbus = 3\n"
                 "address = 0x77\nmode = normal\n[collector b]\ntype = bme280\n", &c);
        assert_true(param_i64(&c.collectors[0], "bus") == 3);
        assert_true(param_i64(&c.collectors[0], "address") == 0x77);
        assert_int_equal(*(const int *)param_field(&c.collectors[0], "mode"), 1);
        /* The defaults: bus 1, 0x76, forced. */
        assert_true(param_i64(&c.collectors[1], "bus") == 1);
        assert_true(param_i64(&c.collectors[1], "address") == 0x76);
        assert_int_equal(*(const int *)param_field(&c.collectors[1], "mode"), 0);
        et_config_free(&c);

        /* A key bme280 does not take: the keys it does are listed. */
        expect_error("[agent]\ndevice_id = d1\n[collector a]\ntype = bme280\nmode = forced\n"
                     "adress = 0x77\n",
                     NAME ":6: [collector a] unknown key \"adress\" (bme280 takes type, "
                     "interval, enabled, tags, bus, address, mode)");
    }
    if (et_driver_find("net")) {
        struct et_config c;

        parse_ok("[agent]\ndevice_id = d1\n[collector n]\ntype = net\n"
                 "interfaces = eth0, wlan0\n", &c);
        assert_string_equal(*(char *const *)param_field(&c.collectors[0], "interfaces"),
                            "eth0, wlan0");
        et_config_free(&c);
    }
    /* A driver without keys of its own takes none. */
    if (et_driver_find("cpu"))
        expect_error("[agent]\ndevice_id = d1\n[collector c]\ntype = cpu\nmounts = /\n",
                     NAME ":5: [collector c] unknown key \"mounts\" (cpu takes type, interval, "
                     "enabled, tags)");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(collectors),
        cmocka_unit_test(collector_errors),
        cmocka_unit_test(driver_key_errors),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
