/*
 * The agent config's own keys: defaults, every accepted form, every value
 * error with its exact "file:line: message", the whole-config checks, and
 * allocation failures anywhere in a parse. Collectors and driver keys are
 * in test_config_collectors.c, files and the packaged example in
 * test_config_files.c, the INI syntax and loader in test_config_ini.c.
 */
#define _GNU_SOURCE
#include <sched.h>
#include <sys/wait.h>

#include "config_test.h"

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
    assert_int_equal(c.batch_interval_ms, 5000);
    assert_int_equal(c.batch_max_samples, 1000);
    assert_int_equal(c.log_level, ET_LOG_INFO);
    assert_null(c.mqtt.host);
    assert_int_equal(c.mqtt.port, 8883);
    assert_null(c.mqtt.ca_file);
    assert_null(c.mqtt.cert_file);
    assert_null(c.mqtt.key_file);
    assert_false(c.mqtt.insecure);
    assert_string_equal(c.topic_root, "edgetel");
    assert_int_equal(c.mqtt.keepalive_ms, 10000);
    assert_int_equal(c.ack_timeout_ms, 30000);
    assert_int_equal(c.max_inflight, 16);
    assert_int_equal(c.clock_wait_ms, 120000);
    assert_int_equal(c.drain_rate, 0);
    assert_string_equal(c.renew_at, "67%");
    assert_int_equal(c.renew_at_pct, 67);
    assert_int_equal(c.renew_before_ms, 0);
    assert_int_equal(c.outbox_quota, 256ULL << 20);
    assert_int_equal(c.outbox_reserve, 64ULL << 20);
    assert_int_equal(c.outbox_policy, 0);
    assert_int_equal(c.durability_window_ms, 10000);
    assert_int_equal(c.mqtt.backoff_min_ms, 1000);
    assert_int_equal(c.mqtt.backoff_max_ms, 5000);
    assert_int_equal(c.mqtt.backoff_max_refused_ms, 120000);

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
        "backoff_max_refused = 10m\r\n"
        "clock_wait = 0s\r\n"
        "drain_rate = 20\r\n"
        "renew_at = 30d\r\n"
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
    assert_string_equal(c.mqtt.host, "broker.example.net");
    assert_int_equal(c.mqtt.port, 8884);
    assert_string_equal(c.mqtt.ca_file, "/etc/edgetel/ca.pem");
    assert_string_equal(c.mqtt.cert_file, "/etc/edgetel/dev.pem");
    /* A ';' not after a blank is part of the value. */
    assert_string_equal(c.mqtt.key_file, "/etc/edgetel/dev key;with-semicolon.pem");
    assert_false(c.mqtt.insecure);
    assert_string_equal(c.topic_root, "plant-7");
    assert_int_equal(c.mqtt.keepalive_ms, 120000);
    assert_int_equal(c.ack_timeout_ms, 45000);
    assert_int_equal(c.max_inflight, 64);
    assert_int_equal(c.mqtt.backoff_min_ms, 500);
    assert_int_equal(c.mqtt.backoff_max_ms, 300000);
    assert_int_equal(c.mqtt.backoff_max_refused_ms, 600000);
    assert_int_equal(c.clock_wait_ms, 0);
    assert_int_equal(c.drain_rate, 20);
    assert_int_equal(c.renew_at_pct, 0);
    assert_int_equal(c.renew_before_ms, 30LL * 86400 * 1000);
    assert_true(c.outbox_quota == 1ULL << 30);
    assert_true(c.outbox_reserve == 0);
    assert_int_equal(c.outbox_policy, 1);
    assert_int_equal(c.durability_window_ms, 500);
    et_config_free(&c);
}

/* No cert and key with a broker over TLS: the board makes its own and enrolls. */
static void an_own_identity_needs_only_the_ca(void **state)
{
    struct et_config c;

    parse_ok("[agent]\ndevice_id = d1\n[mqtt]\nhost = b\nca = ca.pem\nrenew_at = 50%\n", &c);
    assert_true(et_config_own_identity(&c));
    assert_int_equal(c.renew_at_pct, 50);
    et_config_free(&c);
    parse_ok("[agent]\ndevice_id = d1\n[mqtt]\nhost = b\nca = ca.pem\ncert = c.pem\n"
             "key = k.pem\n", &c);
    assert_false(et_config_own_identity(&c));
    et_config_free(&c);
    parse_ok("[agent]\ndevice_id = d1\n", &c);
    assert_false(et_config_own_identity(&c));
    et_config_free(&c);
}

static void insecure_needs_no_tls_files(void **state)
{
    struct et_config c;

    parse_ok("[agent]\ndevice_id = d1\n[mqtt]\nhost = 127.0.0.1\nport = 1883\ninsecure = true\n",
             &c);
    assert_true(c.mqtt.insecure);
    assert_string_equal(c.mqtt.host, "127.0.0.1");
    assert_int_equal(c.mqtt.port, 1883);
    et_config_free(&c);
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
                 NAME ":4: [mqtt] host is set but ca is not: TLS needs the CA that signed the "
                 "broker's certificate (cert and key unset: the board makes its own; insecure "
                 "= true for plain TCP)");
    expect_error("[agent]\ndevice_id = d1\n[mqtt]\nhost = broker\ncert = c.pem\nkey = k.pem\n",
                 NAME ":4: [mqtt] host is set but ca is not: mutual TLS needs ca, cert and key "
                 "(insecure = true for plain TCP)");
    /* renew_at: a share of the lifetime or a time before its end. */
    expect_error("[agent]\ndevice_id = d1\n[mqtt]\nrenew_at = 100%\n",
                 NAME ":4: [mqtt] renew_at \"100%\": expected a share of the certificate's "
                 "lifetime from 1% to 99% (67%), or the time left before it ends (30d)");
    expect_error("[agent]\ndevice_id = d1\n[mqtt]\nrenew_at = soon\n",
                 NAME ":4: [mqtt] renew_at \"soon\": expected a share of the certificate's "
                 "lifetime from 1% to 99% (67%), or the time left before it ends (30d)");
    /* cert and key go together, insecure or not, host or not. */
    expect_error("[agent]\ndevice_id = d1\n[mqtt]\ninsecure = true\ncert = c.pem\n",
                 NAME ":5: [mqtt] cert is set without key: the certificate and its key go "
                 "together");
    expect_error("[agent]\ndevice_id = d1\n[mqtt]\n\nkey = k.pem\n",
                 NAME ":5: [mqtt] key is set without cert: the certificate and its key go "
                 "together");
    expect_error("[agent]\ndevice_id = d1\n[mqtt]\nbackoff_min = 2m\n",
                 NAME ":4: [mqtt] backoff_min (120000 ms) must not be above backoff_max "
                 "(5000 ms)");
    expect_error("[agent]\ndevice_id = d1\n[mqtt]\nbackoff_max = 1m\nbackoff_max_refused = 2s\n"
                 "backoff_min = 3s\n",
                 NAME ":6: [mqtt] backoff_min (3000 ms) must not be above backoff_max_refused "
                 "(2000 ms)");
    expect_error("[agent]\ndevice_id = d1\n[mqtt]\nbackoff_max_refused = 500ms\n",
                 NAME ":4: [mqtt] backoff_max_refused \"500ms\": must be between 1s and 1d");
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
        assert_string_equal(c.mqtt.host, "fd00::1");
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

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(defaults),
        cmocka_unit_test(every_key),
        cmocka_unit_test(insecure_needs_no_tls_files),
        cmocka_unit_test(an_own_identity_needs_only_the_ca),
        cmocka_unit_test(value_errors),
        cmocka_unit_test(whole_config_errors),
        cmocka_unit_test(host_name_not_a_device_id),
        cmocka_unit_test(out_of_memory_everywhere),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
