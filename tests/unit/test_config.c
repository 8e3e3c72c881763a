/*
 * Agent config and the INI loader under it: defaults, every accepted form,
 * and every error path with its exact "file:line: message"; the whole-config
 * checks; loading from files; the packaged example kept in step with the
 * key table; the generic loader's types that the agent table does not use.
 */
#define _GNU_SOURCE
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "edgetel/codec.h"
#include "edgetel/config.h"
#include "edgetel/ini.h"
#include "params.h"

#define NAME "agent.conf"

/*
 * Allocation failure injection: this executable's malloc() family, which
 * glibc lets a program replace, fails once a countdown reaches zero. The
 * sanitizers bring their own allocator, so there the test is skipped.
 */
#if defined(__SANITIZE_ADDRESS__)
#define ET_TEST_OOM 0
#elif defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(memory_sanitizer)
#define ET_TEST_OOM 0
#endif
#endif
#ifndef ET_TEST_OOM
#define ET_TEST_OOM 1
#endif

#if ET_TEST_OOM
extern void *__libc_malloc(size_t n);
extern void *__libc_calloc(size_t n, size_t size);
extern void *__libc_realloc(void *p, size_t n);

/* Allocations left before one fails; -1: never. Test-only state. */
static long oom_countdown = -1;

static bool oom_now(void)
{
    if (oom_countdown == 0)
        return true;
    if (oom_countdown > 0)
        oom_countdown--;
    return false;
}

void *malloc(size_t n)
{
    return oom_now() ? NULL : __libc_malloc(n);
}

void *calloc(size_t n, size_t size)
{
    return oom_now() ? NULL : __libc_calloc(n, size);
}

void *realloc(void *p, size_t n)
{
    return oom_now() ? NULL : __libc_realloc(p, n);
}
#endif

/* TLS settings that satisfy the whole-config check when a host is set. */
#define TLS "ca = /etc/edgetel/ca.pem\ncert = /etc/edgetel/dev.pem\nkey = /etc/edgetel/dev.key\n"

static bool is_zero(const void *p, size_t n)
{
    const unsigned char *b = p;

    for (size_t i = 0; i < n; i++) {
        if (b[i])
            return false;
    }
    return true;
}

/* Parse text that must fail; check rc, the exact message, and that the
 * result was left empty. */
static void expect_error_rc(const char *text, int rc_expected, const char *msg)
{
    struct et_config c;
    char err[512];
    int rc;

    memset(&c, 0xA5, sizeof(c));
    rc = et_config_parse(text, NAME, &c, err, sizeof(err));
    if (rc != rc_expected || strcmp(err, msg) != 0)
        print_error("text:\n%s\nrc %d, message:\n  %s\nexpected rc %d, message:\n  %s\n", text,
                    rc, err, rc_expected, msg);
    assert_int_equal(rc, rc_expected);
    assert_string_equal(err, msg);
    assert_true(is_zero(&c, sizeof(c)));
}

static void expect_error(const char *text, const char *msg)
{
    expect_error_rc(text, -EINVAL, msg);
}

static void parse_ok(const char *text, struct et_config *c)
{
    char err[512] = "";
    int rc = et_config_parse(text, NAME, c, err, sizeof(err));

    if (rc)
        print_error("unexpected error %d: %s\n", rc, err);
    assert_int_equal(rc, 0);
}

static bool host_name_is_device_id(void)
{
    char host[256] = "";

    gethostname(host, sizeof(host) - 1);
    return et_device_id_valid(host);
}

/* ---- defaults ------------------------------------------------------------- */

static void defaults(void **state)
{
    static const char *const system_set[] = {
        "cpu", "memory", "disk", "diskio", "net", "load", "uptime", "procs", "thermal", "throttle",
        "self",
    };
    struct et_config c;
    char host[256] = "";
    size_t expect = 0;

    if (!host_name_is_device_id())
        skip();
    parse_ok("", &c);
    gethostname(host, sizeof(host) - 1);
    assert_string_equal(c.path, NAME);
    assert_string_equal(c.device_id, host);
    assert_string_equal(c.data_dir, "/var/lib/edgetel");
    assert_int_equal(c.batch_interval_ms, 2000);
    assert_int_equal(c.batch_max_samples, 1000);
    assert_int_equal(c.log_level, ET_LOG_INFO);
    assert_null(c.host);
    assert_int_equal(c.port, 8883);
    assert_null(c.ca_file);
    assert_null(c.cert_file);
    assert_null(c.key_file);
    assert_false(c.insecure);
    assert_string_equal(c.topic_root, "edgetel");
    assert_int_equal(c.keepalive_ms, 30000);
    assert_int_equal(c.ack_timeout_ms, 30000);
    assert_int_equal(c.max_inflight, 16);
    assert_int_equal(c.clock_wait_ms, 120000);
    assert_int_equal(c.drain_rate, 0);
    assert_int_equal(c.outbox_quota, 256ULL << 20);
    assert_int_equal(c.outbox_reserve, 64ULL << 20);
    assert_int_equal(c.outbox_policy, 0);
    assert_int_equal(c.durability_window_ms, 10000);
    assert_int_equal(c.backoff_min_ms, 1000);
    assert_int_equal(c.backoff_max_ms, 60000);

    /* No [collector] section: the system set, as far as it is built in. */
    for (size_t i = 0; i < sizeof(system_set) / sizeof(system_set[0]); i++) {
        const struct et_collector_cfg *cc;

        if (!et_driver_find(system_set[i]))
            continue;
        assert_true(expect < c.n_collectors);
        cc = &c.collectors[expect++];
        assert_string_equal(cc->name, system_set[i]);
        assert_string_equal(cc->type, system_set[i]);
        assert_int_equal(cc->interval_ms, 10000);
        assert_true(cc->enabled);
        assert_int_equal(cc->line, 0);
        assert_int_equal(cc->n_keys, 0);
        /* Its driver's params, at their defaults, or none. */
        assert_true((cc->params != NULL) == (et_driver_find(cc->type)->params_size > 0));
    }
    assert_int_equal(c.n_collectors, expect);
    et_config_free(&c);
    assert_true(is_zero(&c, sizeof(c)));
    et_config_free(&c);     /* freeing twice is harmless */
    et_config_free(NULL);
}

/* ---- every key, every syntax ------------------------------------------------ */

static void every_key(void **state)
{
    const char *text =
        "\xEF\xBB\xBF; a UTF-8 byte order mark, CRLF line ends, comments of both kinds\r\n"
        "# comment\r\n"
        "[agent]\r\n"
        "device_id = pi-kitchen.01\r\n"
        "  data_dir = /srv/edgetel  ; inline comment\r\n"
        "\tbatch_interval = 1m30s\r\n"
        "batch_max_samples: 5000\r\n"
        "log_level = debug\r\n"
        "\r\n"
        "[ mqtt ]\r\n"
        "host = broker.example.net\r\n"
        "port = 8884\r\n"
        "ca = /etc/edgetel/ca.pem\r\n"
        "cert = /etc/edgetel/dev.pem\r\n"
        "key = /etc/edgetel/dev key;with-semicolon.pem\r\n"
        "insecure = no\r\n"
        "topic_root = plant-7\r\n"
        "keepalive = 2m\r\n"
        "ack_timeout = 45s\r\n"
        "max_inflight = 64\r\n"
        "backoff_min = 500ms\r\n"
        "backoff_max = 5m\r\n"
        "clock_wait = 0s\r\n"
        "drain_rate = 20\r\n"
        "[outbox]\r\n"
        "quota = 1G\r\n"
        "reserve = 0\r\n"
        "policy = drop-newest\r\n"
        "durability_window = 500ms\r\n";
    struct et_config c;

    parse_ok(text, &c);
    assert_string_equal(c.device_id, "pi-kitchen.01");
    assert_string_equal(c.data_dir, "/srv/edgetel");
    assert_int_equal(c.batch_interval_ms, 90000);
    assert_int_equal(c.batch_max_samples, 5000);
    assert_int_equal(c.log_level, ET_LOG_DEBUG);
    assert_string_equal(c.host, "broker.example.net");
    assert_int_equal(c.port, 8884);
    assert_string_equal(c.ca_file, "/etc/edgetel/ca.pem");
    assert_string_equal(c.cert_file, "/etc/edgetel/dev.pem");
    /* A ';' not after a blank is part of the value. */
    assert_string_equal(c.key_file, "/etc/edgetel/dev key;with-semicolon.pem");
    assert_false(c.insecure);
    assert_string_equal(c.topic_root, "plant-7");
    assert_int_equal(c.keepalive_ms, 120000);
    assert_int_equal(c.ack_timeout_ms, 45000);
    assert_int_equal(c.max_inflight, 64);
    assert_int_equal(c.backoff_min_ms, 500);
    assert_int_equal(c.backoff_max_ms, 300000);
    assert_int_equal(c.clock_wait_ms, 0);
    assert_int_equal(c.drain_rate, 20);
    assert_true(c.outbox_quota == 1ULL << 30);
    assert_true(c.outbox_reserve == 0);
    assert_int_equal(c.outbox_policy, 1);
    assert_int_equal(c.durability_window_ms, 500);
    et_config_free(&c);
}

static void insecure_needs_no_tls_files(void **state)
{
    struct et_config c;

    parse_ok("[agent]\ndevice_id = d1\n[mqtt]\nhost = 127.0.0.1\nport = 1883\ninsecure = true\n",
             &c);
    assert_true(c.insecure);
    assert_string_equal(c.host, "127.0.0.1");
    assert_int_equal(c.port, 1883);
    et_config_free(&c);
}

/* A member of a collector's parsed params, found through its driver's table. */
static const void *param_field(const struct et_collector_cfg *cc, const char *key)
{
    const struct et_param *p = et_params_find(et_driver_find(cc->type), key);

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

static void value_errors(void **state)
{
    expect_error("[agent]\nbatch_interval = 5x\n",
                 NAME ":2: [agent] batch_interval \"5x\": expected a duration like 10s");
    expect_error("[agent]\nbatch_interval = 50ms\n",
                 NAME ":2: [agent] batch_interval \"50ms\": must be between 100ms and 1h");
    expect_error("[agent]\nbatch_interval = 2h\n",
                 NAME ":2: [agent] batch_interval \"2h\": must be between 100ms and 1h");
    expect_error("[agent]\nbatch_interval = 99999999999999999999d\n",
                 NAME ":2: [agent] batch_interval \"99999999999999999999d\": must be between "
                 "100ms and 1h");
    expect_error("[agent]\nbatch_max_samples = many\n",
                 NAME ":2: [agent] batch_max_samples \"many\": expected a whole number");
    expect_error("[agent]\nbatch_max_samples = 0\n",
                 NAME ":2: [agent] batch_max_samples \"0\": must be between 1 and 50000");
    expect_error("[agent]\nlog_level = loud\n",
                 NAME ":2: [agent] log_level \"loud\": expected error, warn, info or debug");
    expect_error("[mqtt]\nport = 70000\n",
                 NAME ":2: [mqtt] port \"70000\": must be between 1 and 65535");
    expect_error("[mqtt]\nport = -1\n", NAME ":2: [mqtt] port \"-1\": must be between 1 and 65535");
    expect_error("[mqtt]\nport = 88 83\n", NAME ":2: [mqtt] port \"88 83\": expected a whole number");
    expect_error("[mqtt]\ninsecure = maybe\n",
                 NAME ":2: [mqtt] insecure \"maybe\": expected true or false");
    expect_error("[mqtt]\nkeepalive = 1s\n",
                 NAME ":2: [mqtt] keepalive \"1s\": must be between 5s and 65535s");
    expect_error("[mqtt]\nack_timeout = soon\n",
                 NAME ":2: [mqtt] ack_timeout \"soon\": expected a duration like 10s");
    expect_error("[mqtt]\nmax_inflight = 0\n",
                 NAME ":2: [mqtt] max_inflight \"0\": must be between 1 and 1024");
    expect_error("[mqtt]\nbackoff_min = 10ms\n",
                 NAME ":2: [mqtt] backoff_min \"10ms\": must be between 100ms and 1h");
    expect_error("[mqtt]\nbackoff_max = 2d\n",
                 NAME ":2: [mqtt] backoff_max \"2d\": must be between 1s and 1d");
    expect_error("[mqtt]\nclock_wait = 2d\n",
                 NAME ":2: [mqtt] clock_wait \"2d\": must be between 0ms and 1d");
    expect_error("[mqtt]\ndrain_rate = fast\n",
                 NAME ":2: [mqtt] drain_rate \"fast\": expected a whole number");
    expect_error("[mqtt]\ndrain_rate = 1000001\n",
                 NAME ":2: [mqtt] drain_rate \"1000001\": must be between 0 and 1000000");
    expect_error("[outbox]\nquota = 10m\n",
                 NAME ":2: [outbox] quota \"10m\": expected a size like 64k");
    expect_error("[outbox]\nreserve = 99999999999T\n",
                 NAME ":2: [outbox] reserve \"99999999999T\": too large");
    expect_error("[outbox]\npolicy = drop-random\n",
                 NAME ":2: [outbox] policy \"drop-random\": expected one of drop-oldest, "
                 "drop-newest");
    expect_error("[outbox]\ndurability_window = 1h\n",
                 NAME ":2: [outbox] durability_window \"1h\": must be between 100ms and 10m");
}

/* ---- whole-config checks -------------------------------------------------------- */

static void whole_config_errors(void **state)
{
    expect_error("[agent]\ndevice_id = d1\n[mqtt]\nhost = broker\n",
                 NAME ":4: [mqtt] host is set but ca, cert, key are not: mutual TLS needs ca, "
                 "cert and key (insecure = true for plain TCP)");
    expect_error("[agent]\ndevice_id = d1\n[mqtt]\nhost = broker\ncert = c.pem\nkey = k.pem\n",
                 NAME ":4: [mqtt] host is set but ca is not: mutual TLS needs ca, cert and key "
                 "(insecure = true for plain TCP)");
    expect_error("[agent]\ndevice_id = d1\n[mqtt]\nhost = broker\nca = ca.pem\n",
                 NAME ":4: [mqtt] host is set but cert, key are not: mutual TLS needs ca, cert "
                 "and key (insecure = true for plain TCP)");
    /* cert and key go together, insecure or not, host or not. */
    expect_error("[agent]\ndevice_id = d1\n[mqtt]\ninsecure = true\ncert = c.pem\n",
                 NAME ":5: [mqtt] cert is set without key: the certificate and its key go "
                 "together");
    expect_error("[agent]\ndevice_id = d1\n[mqtt]\n\nkey = k.pem\n",
                 NAME ":5: [mqtt] key is set without cert: the certificate and its key go "
                 "together");
    expect_error("[agent]\ndevice_id = d1\n[mqtt]\nbackoff_min = 2m\n",
                 NAME ":4: [mqtt] backoff_min (120000 ms) must not be above backoff_max "
                 "(60000 ms)");
    expect_error("[agent]\ndevice_id = d1\n[mqtt]\nbackoff_max = 5s\nbackoff_min = 6s\n",
                 NAME ":5: [mqtt] backoff_min (6000 ms) must not be above backoff_max "
                 "(5000 ms)");
    expect_error("[agent]\ndevice_id = d1\n[mqtt]\nkeepalive = 5500ms\n",
                 NAME ":4: [mqtt] keepalive: must be whole seconds (MQTT counts it in seconds)");
    expect_error("[agent]\ndevice_id = d1\n[mqtt]\nhost = mqtts://broker\n" TLS,
                 NAME ":4: [mqtt] host \"mqtts://broker\": give the host name or address only; "
                 "the port goes in port");
    /* An IPv6 address is a host; "host:port" is not. */
    {
        struct et_config c;

        parse_ok("[agent]\ndevice_id = d1\n[mqtt]\nhost = fd00::1\n" TLS, &c);
        assert_string_equal(c.host, "fd00::1");
        et_config_free(&c);
    }
    expect_error("[agent]\ndevice_id = d1\n[mqtt]\nhost = broker:8883\n" TLS "\n",
                 NAME ":4: [mqtt] host \"broker:8883\": give the host name or address only; "
                 "the port goes in port");

    static const char *const bad_roots[] = { "a/b", "edge+", "#", "$SYS",
        "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx" };
    for (size_t i = 0; i < sizeof(bad_roots) / sizeof(bad_roots[0]); i++) {
        char text[256], msg[512];

        snprintf(text, sizeof(text), "[agent]\ndevice_id = d1\n[mqtt]\n\ntopic_root = %s\n",
                 bad_roots[i]);
        char q[ET_INI_QUOTE_BUF];

        /* The 65-character one is cut in the message. */
        snprintf(msg, sizeof(msg), NAME ":5: [mqtt] topic_root \"%s\": must be one topic level "
                 "of 1-64 characters without '/', '+' or '#', not starting with '$'",
                 et_ini_quote(bad_roots[i], q, sizeof(q)));
        expect_error(text, msg);
    }

    static const char *const bad_ids[] = { ".hidden", "a/b", "a+b", "sp ace",
        "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx" };
    for (size_t i = 0; i < sizeof(bad_ids) / sizeof(bad_ids[0]); i++) {
        char text[256], msg[512];

        snprintf(text, sizeof(text), "[agent]\ndevice_id = %s\n", bad_ids[i]);
        char q[ET_INI_QUOTE_BUF];

        snprintf(msg, sizeof(msg), NAME ":2: [agent] device_id \"%s\": use 1-64 characters of "
                 "A-Z, a-z, 0-9, '.', '_' and '-', not starting with '.'",
                 et_ini_quote(bad_ids[i], q, sizeof(q)));
        expect_error(text, msg);
    }
}

/*
 * device_id defaults to the host name; a host name that is no device id is
 * an error naming the key to set. The host name is changed in a private
 * UTS namespace of a child process, which needs CAP_SYS_ADMIN: skipped
 * without it.
 */
static void host_name_not_a_device_id(void **state)
{
    int pipefd[2], status;
    char msg[512] = "";
    ssize_t n;
    pid_t pid;

    assert_int_equal(pipe(pipefd), 0);
    pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        struct et_config c;
        char err[512] = "";
        int rc;

        close(pipefd[0]);
        if (unshare(CLONE_NEWUTS) != 0 || sethostname("under_score!", 12) != 0)
            _exit(77);
        rc = et_config_parse("[agent]\nlog_level = info\n", NAME, &c, err, sizeof(err));
        if (write(pipefd[1], err, strlen(err)) < 0)
            _exit(2);
        _exit(rc == -EINVAL && is_zero(&c, sizeof(c)) ? 0 : 1);
    }
    close(pipefd[1]);
    n = read(pipefd[0], msg, sizeof(msg) - 1);
    close(pipefd[0]);
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFEXITED(status));
    if (WEXITSTATUS(status) == 77)
        skip();
    assert_true(n > 0);
    msg[n] = '\0';
    assert_string_equal(msg, NAME ": [agent] device_id is not set and the host name "
                        "\"under_score!\" is not a valid device id: set device_id");
    assert_int_equal(WEXITSTATUS(status), 0);
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
        used += (size_t)snprintf(msg + used, sizeof(msg) - used, ", %s", sim->params[i].key);
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

/* ---- files --------------------------------------------------------------------- */

static char *write_temp(const char *data, size_t len)
{
    char *path = strdup("/tmp/edgetel-test-config-XXXXXX");
    int fd;

    assert_non_null(path);
    fd = mkstemp(path);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, data, len), (ssize_t)len);
    close(fd);
    return path;
}

static void load_files(void **state)
{
    struct et_config c;
    char err[512], msg[512];
    char *path, *big;

    path = write_temp("[agent]\ndevice_id = d9\n[mqtt]\nport = x\n", 39);
    assert_int_equal(et_config_load(path, &c, err, sizeof(err)), -EINVAL);
    snprintf(msg, sizeof(msg), "%s:4: [mqtt] port \"x\": expected a whole number", path);
    assert_string_equal(err, msg);
    assert_true(is_zero(&c, sizeof(c)));
    unlink(path);
    free(path);

    path = write_temp("[agent]\ndevice_id = d9\n", 23);
    assert_int_equal(et_config_load(path, &c, err, sizeof(err)), 0);
    assert_string_equal(c.path, path);
    assert_string_equal(c.device_id, "d9");
    et_config_free(&c);
    unlink(path);

    /* Gone. */
    assert_int_equal(et_config_load(path, &c, err, sizeof(err)), -ENOENT);
    snprintf(msg, sizeof(msg), "%s: cannot open: %s", path, strerror(ENOENT));
    assert_string_equal(err, msg);
    assert_true(is_zero(&c, sizeof(c)));
    free(path);

    /* A directory opens but cannot be read. */
    assert_int_equal(et_config_load("/", &c, err, sizeof(err)), -EIO);
    snprintf(msg, sizeof(msg), "/: cannot read: %s", strerror(EISDIR));
    assert_string_equal(err, msg);

    /* A NUL byte: binary junk, reported on its line. */
    path = write_temp("[agent]\ndevice_id = d9\nx\0y = 1\n", 31);
    assert_int_equal(et_config_load(path, &c, err, sizeof(err)), -EINVAL);
    snprintf(msg, sizeof(msg), "%s:3: NUL byte in the text: not a config file?", path);
    assert_string_equal(err, msg);
    unlink(path);
    free(path);

    /* Larger than the limit: refused before parsing. */
    big = malloc(ET_CONFIG_MAX_BYTES + 1);
    assert_non_null(big);
    memset(big, '\n', ET_CONFIG_MAX_BYTES + 1);
    path = write_temp(big, ET_CONFIG_MAX_BYTES + 1);
    assert_int_equal(et_config_load(path, &c, err, sizeof(err)), -EFBIG);
    snprintf(msg, sizeof(msg), "%s: larger than %d bytes: not a config file?", path,
             ET_CONFIG_MAX_BYTES);
    assert_string_equal(err, msg);
    unlink(path);
    free(path);
    /* At the limit it is read (blank lines only: all defaults). */
    if (host_name_is_device_id()) {
        path = write_temp(big, ET_CONFIG_MAX_BYTES);
        assert_int_equal(et_config_load(path, &c, err, sizeof(err)), 0);
        et_config_free(&c);
        unlink(path);
        free(path);
    }
    free(big);
}

/* A short error buffer is cut, never overrun; a NULL one is allowed. */
static void short_error_buffer(void **state)
{
    struct et_config c;
    char err[16];

    memset(err, 'z', sizeof(err));
    assert_int_equal(et_config_parse("[x]\n", NAME, &c, err, 8), -EINVAL);
    assert_string_equal(err, "agent.c");
    assert_int_equal(err[8], 'z');
    assert_int_equal(et_config_parse("[x]\n", NAME, &c, NULL, 0), -EINVAL);
    assert_int_equal(et_config_parse("[mqtt]\nhost = h\n", NAME, &c, err, 3), -EINVAL);
    assert_string_equal(err, "ag");
}

/*
 * Fail the 1st, 2nd, 3rd ... allocation of a parse that touches every
 * allocating path (strings, defaults, collectors, driver keys, the loader's
 * bookkeeping, the host-name default). Each must fail cleanly: -ENOMEM,
 * a message, an empty result and, under valgrind, nothing leaked.
 */
static void out_of_memory_everywhere(void **state)
{
#if ET_TEST_OOM
    const char *text = "[agent]\nlog_level = debug\ndata_dir = /d\n"
                       "[mqtt]\nhost = h\n" TLS
                       "[collector a]\ntype = sim\nperiod = 5s\nstart = 1\n"
                       "[collector b]\ntype = sim\n";
    const char *defaults_only = "[agent]\ndata_dir = /d\n";
    const char *texts[] = { text, defaults_only };
    long failures = 0;

    void *(*volatile alloc)(size_t) = malloc;
    void *probe;

    if (!et_driver_find("sim") || !host_name_is_device_id())
        skip();
    /* A tool that replaces malloc itself (valgrind without
     * --soname-synonyms=somalloc=nouserintercepts) bypasses the injection. */
    oom_countdown = 0;
    probe = alloc(1);
    oom_countdown = -1;
    if (probe) {
        free(probe);
        skip();
    }
    for (size_t t = 0; t < 2; t++) {
        for (long n = 0;; n++) {
            struct et_config c;
            char err[256] = "";
            int rc;

            oom_countdown = n;
            rc = et_config_parse(texts[t], NAME, &c, err, sizeof(err));
            oom_countdown = -1;
            if (rc == 0) {
                et_config_free(&c);
                break;
            }
            if (rc != -ENOMEM || !strstr(err, "out of memory") ||
                strncmp(err, NAME ":", strlen(NAME ":")) != 0)
                print_error("allocation %ld: rc %d, message %s\n", n, rc, err);
            assert_int_equal(rc, -ENOMEM);
            assert_non_null(strstr(err, "out of memory"));
            assert_memory_equal(err, NAME ":", strlen(NAME ":"));
            assert_true(is_zero(&c, sizeof(c)));
            failures++;
            assert_true(n < 1000);
        }
    }
    /* The sweep really went through many allocation sites. */
    assert_true(failures > 20);
#else
    skip();
#endif
}

/* ---- the packaged example --------------------------------------------------------- */

static char *read_example(void)
{
    char path[1024];
    char *text = calloc(1, 65536);
    FILE *f;

    snprintf(path, sizeof(path), "%s/packaging/agent.conf.example", ET_SOURCE_DIR);
    f = fopen(path, "r");
    assert_non_null(f);
    assert_non_null(text);
    fread(text, 1, 65535, f);
    fclose(f);
    return text;
}

/*
 * Every key of the table appears in the example as "# key = DEFAULT" (or
 * "# key = " plus an example value when it has no default), under its
 * section, and has help text; the example parses as it is shipped, and
 * with its [agent] and [mqtt] lines uncommented.
 */
static void example_matches_table(void **state)
{
    const struct et_ini_schema *s = et_config_schema();
    char *text = read_example();
    char *uncommented = calloc(1, 65536);
    const char *section = "";
    struct et_config c;
    char err[512];
    size_t nck, o = 0;
    const struct et_ini_key *ck = et_config_collector_keys(&nck);
    int rc;

    assert_non_null(uncommented);
    for (size_t i = 0; i < s->n_keys; i++) {
        const struct et_ini_key *k = &s->keys[i];
        char header[64], line[256];
        const char *at;

        assert_non_null(k->help);
        snprintf(header, sizeof(header), "\n[%s]\n", k->section);
        if (k->def)
            snprintf(line, sizeof(line), "\n# %s = %s\n", k->key, k->def);
        else
            snprintf(line, sizeof(line), "\n# %s = ", k->key);
        at = strstr(text, header);
        if (!at)
            print_error("example lacks section [%s]\n", k->section);
        assert_non_null(at);
        if (!strstr(at, line))
            print_error("example lacks \"%s\" under [%s]\n", line + 1, k->section);
        assert_non_null(strstr(at, line));
    }
    for (size_t i = 0; i < nck; i++) {
        char line[256];

        assert_non_null(ck[i].help);
        if (ck[i].def)
            snprintf(line, sizeof(line), "\n# %s = %s\n", ck[i].key, ck[i].def);
        else
            snprintf(line, sizeof(line), "\n# %s = ", ck[i].key);
        assert_non_null(strstr(text, line));
    }

    /* As shipped: everything commented out, the defaults. */
    if (host_name_is_device_id()) {
        assert_int_equal(et_config_parse(text, "agent.conf.example", &c, err, sizeof(err)), 0);
        et_config_free(&c);
    }

    /* Uncomment the "# key = value" lines of the table's sections; [collector]
     * examples need drivers that may not be built in, so they stay comments. */
    for (char *p = text; *p;) {
        char *nl = strchr(p, '\n');
        size_t n = nl ? (size_t)(nl - p + 1) : strlen(p);

        /* Commented-out headers count: "# [collector cpu]" starts an example. */
        if (p[0] == '[' || strncmp(p, "# [", 3) == 0) {
            const char *name = p[0] == '[' ? p + 1 : p + 3;

            /* Only the collectors stay commented: their drivers may not be built in. */
            section = strncmp(name, "collector", 9) == 0 ? "other" : "table";
        }
        if (strncmp(p, "# ", 2) == 0 && strchr(p, '=') && (!nl || strchr(p, '=') < nl) &&
            p[2] >= 'a' && p[2] <= 'z' && strcmp(section, "other") != 0) {
            memcpy(uncommented + o, p + 2, n - 2);
            o += n - 2;
        } else {
            memcpy(uncommented + o, p, n);
            o += n;
        }
        p += n;
    }
    rc = et_config_parse(uncommented, "uncommented", &c, err, sizeof(err));
    if (rc != 0)
        print_error("%s\n%s\n", uncommented, err);
    assert_int_equal(rc, 0);
    /* It really set the keys: the TLS files have no defaults. */
    assert_non_null(c.host);
    assert_non_null(c.ca_file);
    assert_non_null(c.key_file);
    et_config_free(&c);
    free(uncommented);
    free(text);
}

/*
 * The example's [collector] sections, uncommented, parse: the driver keys
 * they show exist and their values are in range. Skipped when one of their
 * drivers is not built in. The example points to --list-drivers for the
 * rest.
 */
static void example_collectors_parse(void **state)
{
    char *text = read_example();
    char *sections = calloc(1, 65536);
    size_t o = (size_t)snprintf(sections, 65536, "[agent]\ndevice_id = d1\n");
    struct et_config c;
    char err[512];
    int rc;

    assert_non_null(sections);
    assert_non_null(strstr(text, "`edgetel-agent --list-drivers` lists every built-in driver"));
    for (char *p = strstr(text, "\n# [collector"); p && *p;) {
        char *nl;
        size_t n;

        p++;
        nl = strchr(p, '\n');
        n = nl ? (size_t)(nl - p) : strlen(p);
        if (strncmp(p, "# ", 2) == 0) {
            memcpy(sections + o, p + 2, n - 2);
            o += n - 2;
        }
        sections[o++] = '\n';
        p += n;
    }
    rc = et_config_parse(sections, "collectors", &c, err, sizeof(err));
    if (rc == 0) {
        assert_int_equal(c.n_collectors, 4);
        if (et_driver_find("bme280")) {
            assert_string_equal(c.collectors[3].type, "bme280");
            assert_int_equal(c.collectors[3].n_keys, 3);
        }
        et_config_free(&c);
    }
    free(sections);
    free(text);
    if (rc != 0 && strstr(err, "no such driver"))
        skip();
    if (rc != 0)
        print_error("%s\n", err);
    assert_int_equal(rc, 0);
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

static const struct et_ini_key sample_keys[] = {
    { .section = "s", .key = "name", .type = ET_INI_STRING,
      .offset = offsetof(struct sample, name), .size = sizeof(char *), .def = "anon" },
    { .section = "s", .key = "i8", .type = ET_INI_INT, .offset = offsetof(struct sample, i8),
      .size = 1, .def = "-3", .min = -100, .max = 100 },
    { .section = "s", .key = "u16", .type = ET_INI_INT, .offset = offsetof(struct sample, u16),
      .size = 2, .def = "65535", .min = 0, .max = 65535 },
    { .section = "s", .key = "i32", .type = ET_INI_INT, .offset = offsetof(struct sample, i32),
      .size = 4, .min = INT32_MIN, .max = INT32_MAX },
    { .section = "s", .key = "i64", .type = ET_INI_INT, .offset = offsetof(struct sample, i64),
      .size = 8, .def = "0", .min = INT64_MIN, .max = INT64_MAX },
    { .section = "s", .key = "bytes", .type = ET_INI_SIZE,
      .offset = offsetof(struct sample, bytes), .size = 8, .def = "64k", .min = 4096,
      .max = 1 << 30 },
    { .section = "t", .key = "mode", .type = ET_INI_ENUM, .offset = offsetof(struct sample, mode),
      .size = sizeof(int), .def = "oldest", .choices = modes },
    { .section = "t", .key = "flag", .type = ET_INI_BOOL, .offset = offsetof(struct sample, flag),
      .size = sizeof(bool), .def = "yes" },
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

/* A table whose range does not fit its member is caught, not truncated. */
static void ini_bad_table(void **state)
{
    static const struct et_ini_key k = {
        .section = "s", .key = "u16", .type = ET_INI_INT, .offset = offsetof(struct sample, u16),
        .size = 2, .def = "1", .min = 0, .max = 70000,
    };
    static const struct et_ini_key d = {
        .section = "s", .key = "bytes", .type = ET_INI_SIZE,
        .offset = offsetof(struct sample, bytes), .size = 8, .def = "lots",
    };
    static const struct et_ini_key narrow = {
        .section = "s", .key = "i32", .type = ET_INI_DURATION,
        .offset = offsetof(struct sample, i32), .size = 4,
    };
    static const struct et_ini_key odd = {
        .section = "s", .key = "i32", .type = ET_INI_INT, .offset = offsetof(struct sample, i32),
        .size = 3,
    };
    static const struct et_ini_key unbounded = {
        .section = "s", .key = "i32", .type = ET_INI_INT, .offset = offsetof(struct sample, i32),
        .size = 4,
    };
    static const struct et_ini_key forever = {
        .section = "s", .key = "i64", .type = ET_INI_DURATION,
        .offset = offsetof(struct sample, i64), .size = 8,
    };
    static const struct et_ini_schema bad_default = { &d, 1, NULL, 0 };
    struct sample s = { 0 };
    char why[256];

    assert_int_equal(et_ini_set(&k, &s, "5", why, sizeof(why)), -EINVAL);
    assert_string_equal(why, "u16: internal error: range [0, 70000] does not fit a 2-byte member");
    assert_int_equal(et_ini_set(&narrow, &s, "5s", why, sizeof(why)), -EINVAL);
    assert_string_equal(why, "i32: internal error: member of 4 bytes, the type writes 8");
    assert_int_equal(et_ini_set(&odd, &s, "5", why, sizeof(why)), -EINVAL);
    assert_string_equal(why, "i32: internal error: an integer member of 3 bytes");
    /* A duration without a range still cannot overflow. */
    assert_int_equal(et_ini_set(&forever, &s, "99999999999999999999d", why, sizeof(why)), -EINVAL);
    assert_string_equal(why, "i64 \"99999999999999999999d\": too large");
    assert_int_equal(et_ini_set(&forever, &s, "106751991167d", why, sizeof(why)), 0);
    assert_true(s.i64 == 106751991167LL * 86400000);
    /* No range: the member's own, never a silent truncation. */
    assert_int_equal(et_ini_set(&unbounded, &s, "-2147483648", why, sizeof(why)), 0);
    assert_int_equal(s.i32, INT32_MIN);
    assert_int_equal(et_ini_set(&unbounded, &s, "3000000000", why, sizeof(why)), -EINVAL);
    assert_string_equal(why, "i32 \"3000000000\": must be between -2147483648 and 2147483647");
    assert_int_equal(s.i32, INT32_MIN);
    assert_int_equal(et_ini_parse(&bad_default, "", 0, "t.ini", &s, NULL, why, sizeof(why)),
                     -EINVAL);
    assert_string_equal(why, "t.ini: default of bytes \"lots\": expected a size like 64k");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(defaults),
        cmocka_unit_test(every_key),
        cmocka_unit_test(insecure_needs_no_tls_files),
        cmocka_unit_test(collectors),
        cmocka_unit_test(syntax_errors),
        cmocka_unit_test(value_errors),
        cmocka_unit_test(whole_config_errors),
        cmocka_unit_test(host_name_not_a_device_id),
        cmocka_unit_test(collector_errors),
        cmocka_unit_test(driver_key_errors),
        cmocka_unit_test(load_files),
        cmocka_unit_test(short_error_buffer),
        cmocka_unit_test(out_of_memory_everywhere),
        cmocka_unit_test(example_matches_table),
        cmocka_unit_test(example_collectors_parse),
        cmocka_unit_test(ini_types),
        cmocka_unit_test(ini_bad_table),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
