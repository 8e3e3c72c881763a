/*
 * The aggregator's config file: defaults, every key, and errors that name
 * the file, the line and the cause.
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

#include "edgetel/agg_config.h"
#include "edgetel/store.h"

#define TLS_KEYS "ca = /etc/edgetel/ca.crt\ncert = /etc/edgetel/agg.crt\nkey = /etc/edgetel/agg.key\n"

/* The error must be want, or start with it when want ends in "...". */
static void assert_error(const char *text, const char *want)
{
    struct et_agg_config c;
    char err[512] = "";
    size_t n = strlen(want);
    bool prefix = n > 3 && strcmp(want + n - 3, "...") == 0;

    assert_int_equal(et_agg_config_parse(text, "agg.conf", &c, err, sizeof(err)), -EINVAL);
    if (prefix ? strncmp(err, want, n - 3) != 0 : strcmp(err, want) != 0)
        fail_msg("error \"%s\", want \"%s\"", err, want);
    assert_null(c.mqtt.host);   /* nothing left behind on failure */
}

static void test_defaults(void **state)
{
    struct et_agg_config c;
    char err[256];

    assert_int_equal(et_agg_config_parse("[mqtt]\nhost = broker.example\n" TLS_KEYS,
                                         "agg.conf", &c, err, sizeof(err)), 0);
    assert_string_equal(c.mqtt.host, "broker.example");
    assert_int_equal(c.mqtt.port, 8883);
    assert_false(c.mqtt.insecure);
    assert_string_equal(c.topic_root, "edgetel");
    assert_string_equal(c.share_group, "edgetel");
    assert_int_equal(c.mqtt.keepalive_ms, 10000);
    assert_int_equal(c.mqtt.backoff_min_ms, 250);
    assert_int_equal(c.mqtt.backoff_max_ms, 1000);
    assert_int_equal(c.mqtt.backoff_max_refused_ms, 120000);
    assert_int_equal(c.stats_interval_ms, 60000);
    assert_int_equal(c.log_level, ET_LOG_INFO);
    assert_null(c.instance_id);
    assert_string_equal(et_agg_store_types[c.store_type], "sqlite");
    assert_string_equal(c.store_path, ET_STORE_DEFAULT_PATH);
    assert_string_equal(c.mqtt.ca_file, "/etc/edgetel/ca.crt");
    et_agg_config_free(&c);
    et_agg_config_free(&c);   /* freeing twice is harmless */
}

static void test_every_key(void **state)
{
    static const char text[] =
        "; a full aggregator config\n"
        "[aggregator]\n"
        "instance_id = agg-2\n"
        "log_level = debug\n"
        "stats_interval = 10s\n"
        "\n"
        "[mqtt]\n"
        "host = 127.0.0.1\n"
        "port = 18883\n"
        TLS_KEYS
        "insecure = false\n"
        "topic_root = acme/site-3/edgetel\n"
        "share_group = ingest\n"
        "keepalive = 1m\n"
        "backoff_min = 250ms\n"
        "backoff_max = 30s\n"
        "backoff_max_refused = 10m\n"
        "max_inflight = 64\n"
        "\n"
        "[store]\n"
        "type = sqlite\n"
        "path = /srv/edgetel/agg.db\n";
    struct et_agg_config c;
    char err[256];

    assert_int_equal(et_agg_config_parse(text, "agg.conf", &c, err, sizeof(err)), 0);
    assert_string_equal(c.instance_id, "agg-2");
    assert_int_equal(c.log_level, ET_LOG_DEBUG);
    assert_int_equal(c.stats_interval_ms, 10000);
    assert_int_equal(c.mqtt.port, 18883);
    assert_string_equal(c.topic_root, "acme/site-3/edgetel");
    assert_string_equal(c.share_group, "ingest");
    assert_int_equal(c.mqtt.keepalive_ms, 60000);
    assert_int_equal(c.mqtt.backoff_min_ms, 250);
    assert_int_equal(c.mqtt.backoff_max_ms, 30000);
    assert_int_equal(c.mqtt.backoff_max_refused_ms, 600000);
    assert_int_equal(c.max_inflight, 64);
    assert_string_equal(c.store_path, "/srv/edgetel/agg.db");
    assert_string_equal(c.path, "agg.conf");
    et_agg_config_free(&c);
}

static void test_insecure_needs_no_keys(void **state)
{
    struct et_agg_config c;
    char err[256];

    assert_int_equal(et_agg_config_parse("[mqtt]\nhost = 127.0.0.1\nport = 1883\n"
                                         "insecure = true\n", "agg.conf", &c, err,
                                         sizeof(err)), 0);
    assert_true(c.mqtt.insecure);
    assert_null(c.mqtt.ca_file);
    et_agg_config_free(&c);
}

static void test_errors(void **state)
{
    assert_error("[aggregator]\nlog_level = info\n",
                 "agg.conf: [mqtt] host is not set: the aggregator needs the broker that "
                 "devices publish to");
    assert_error("[mqtt]\nhost = h\n" TLS_KEYS "hots = x\n",
                 "agg.conf:6: unknown key \"hots\" in [mqtt]");
    assert_error("[mqtt]\nhost = h\nport = 88x3\n" TLS_KEYS,
                 "agg.conf:3: [mqtt] port \"88x3\": expected a whole number");
    assert_error("[mqtt]\nhost = h\nca = /ca.crt\n",
                 "agg.conf:2: [mqtt] host is set but cert, key are not: mutual TLS needs ca, "
                 "cert and key (insecure = true for plain TCP)");
    assert_error("[mqtt]\nhost = h\n",
                 "agg.conf:2: [mqtt] host is set but ca, cert, key are not: mutual TLS needs "
                 "ca, cert and key (insecure = true for plain TCP)");
    /* The aggregator's [mqtt] connection is checked by the agent's rules too
     * (et_mqtt_settings_check): a certificate without its key, a port in host. */
    assert_error("[mqtt]\nhost = h\nca = /ca.crt\ncert = /agg.crt\n",
                 "agg.conf:4: [mqtt] cert is set without key: the certificate and its key go "
                 "together");
    assert_error("[mqtt]\nhost = h:1883\n" TLS_KEYS,
                 "agg.conf:2: [mqtt] host \"h:1883\": give the host name or address only; the "
                 "port goes in port");
    assert_error("[mqtt]\nhost = h\n" TLS_KEYS "topic_root = edgetel/#\n",
                 "agg.conf:6: [mqtt] topic_root \"edgetel/#\": expected topic levels without "
                 "wildcards, a leading $ or a leading or trailing /, at most 128 chars");
    assert_error("[mqtt]\nhost = h\n" TLS_KEYS "share_group = a/b\n",
                 "agg.conf:6: [mqtt] share_group \"a/b\": a group name may not contain /, + "
                 "or #");
    assert_error("[aggregator]\ninstance_id = agg 2\n[mqtt]\nhost = h\n" TLS_KEYS,
                 "agg.conf:2: [aggregator] instance_id \"agg 2\": expected 1-64 of A-Z a-z "
                 "0-9 . _ -");
    assert_error("[mqtt]\nhost = h\n" TLS_KEYS "backoff_min = 2m\nbackoff_max = 1m\n",
                 "agg.conf:6: [mqtt] backoff_min (120000 ms) must not be above backoff_max "
                 "(60000 ms)");
    assert_error("[mqtt]\nhost = h\n" TLS_KEYS
                 "backoff_min = 3s\nbackoff_max = 5s\nbackoff_max_refused = 2s\n",
                 "agg.conf:6: [mqtt] backoff_min (3000 ms) must not be above backoff_max_refused "
                 "(2000 ms)");
    assert_error("[mqtt]\nhost = h\n" TLS_KEYS "keepalive = 1500ms\n",
                 "agg.conf:6: [mqtt] keepalive \"1500ms\": ...");
    assert_error("[mqtt]\nhost = h\n" TLS_KEYS "keepalive = 5500ms\n",
                 "agg.conf:6: [mqtt] keepalive: must be whole seconds (MQTT counts it in "
                 "seconds)");
}

/* [http]: the web view; anywhere but loopback it needs TLS and the token. */
static void test_http(void **state)
{
    struct et_agg_config c;
    char err[512] = "";

    assert_int_equal(et_agg_config_parse("[mqtt]\nhost = h\n" TLS_KEYS, "agg.conf", &c, err,
                                         sizeof(err)), 0);
    assert_false(c.http.enabled);
    assert_string_equal(c.http.address, "127.0.0.1");
    assert_int_equal(c.http.port, 8080);
    assert_int_equal(c.http.max_connections, 32);
    et_agg_config_free(&c);
    assert_int_equal(et_agg_config_parse("[mqtt]\nhost = h\n" TLS_KEYS
                                         "[http]\nenabled = true\naddress = ::1\nport = 0\n",
                                         "agg.conf", &c, err, sizeof(err)), 0);
    et_agg_config_free(&c);
    assert_error("[mqtt]\nhost = h\n" TLS_KEYS "[http]\nenabled = true\naddress = 0.0.0.0\n",
                 "agg.conf:8: [http] address 0.0.0.0 is not loopback: set tls_cert, tls_key and "
                 "token_file, so the fleet's data and the token never cross the network in the "
                 "clear nor to anyone");
    assert_error("[mqtt]\nhost = h\n" TLS_KEYS "[http]\nenabled = true\naddress = 10.0.0.1\n"
                 "tls_cert = /c.pem\ntls_key = /k.pem\n",
                 "agg.conf:8: [http] address 10.0.0.1 is not loopback: ...");
    assert_error("[mqtt]\nhost = h\n" TLS_KEYS "[http]\nenabled = true\ntls_cert = /c.pem\n",
                 "agg.conf:8: [http] tls_cert and tls_key go together");
    assert_error("[mqtt]\nhost = h\n" TLS_KEYS "[http]\nenabled = true\naddress = localhost\n",
                 "agg.conf:8: [http] address \"localhost\": expected a numeric IPv4 or IPv6 "
                 "address (127.0.0.1, ::1, 0.0.0.0)");
    assert_int_equal(et_agg_config_parse("[mqtt]\nhost = h\n" TLS_KEYS
                                         "[http]\nenabled = true\naddress = 0.0.0.0\n"
                                         "tls_cert = /c.pem\ntls_key = /k.pem\n"
                                         "token_file = /t\n", "agg.conf", &c, err,
                                         sizeof(err)), 0);
    et_agg_config_free(&c);
    assert_true(et_agg_http_loopback("127.1.2.3"));
    assert_true(et_agg_http_loopback("::1"));
    assert_false(et_agg_http_loopback("::"));
    assert_false(et_agg_http_loopback("128.0.0.1"));
}

static void test_store_type(void **state)
{
    struct et_agg_config c;
    char err[256] = "";

    assert_int_equal(et_agg_config_parse("[mqtt]\nhost = h\n" TLS_KEYS "[store]\ntype = mysql\n",
                                         "agg.conf", &c, err, sizeof(err)), -EINVAL);
    assert_non_null(strstr(err, "agg.conf:7:"));
    assert_non_null(strstr(err, "mysql"));
    assert_non_null(strstr(err, "sqlite"));
}

static void test_load_file(void **state)
{
    struct et_agg_config c;
    char dir[] = "/tmp/et-aggconf-XXXXXX", path[64], err[256];
    FILE *fp;

    assert_non_null(mkdtemp(dir));
    snprintf(path, sizeof(path), "%s/agg.conf", dir);
    assert_int_equal(et_agg_config_load(path, &c, err, sizeof(err)), -ENOENT);
    assert_non_null(strstr(err, "cannot open"));
    assert_non_null(strstr(err, path));

    fp = fopen(path, "w");
    assert_non_null(fp);
    fputs("[mqtt]\nhost = h\ninsecure = yes\n[store]\npath = /x.db\nbogus\n", fp);
    fclose(fp);
    assert_int_equal(et_agg_config_load(path, &c, err, sizeof(err)), -EINVAL);
    assert_true(strncmp(err, path, strlen(path)) == 0);
    assert_non_null(strstr(err, ":6:"));

    fp = fopen(path, "w");
    assert_non_null(fp);
    fputs("[mqtt]\nhost = h\ninsecure = yes\n[store]\npath = /x.db\n", fp);
    fclose(fp);
    assert_int_equal(et_agg_config_load(path, &c, err, sizeof(err)), 0);
    assert_string_equal(c.store_path, "/x.db");
    assert_string_equal(c.path, path);
    et_agg_config_free(&c);
    unlink(path);
    rmdir(dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_defaults),
        cmocka_unit_test(test_every_key),
        cmocka_unit_test(test_insecure_needs_no_keys),
        cmocka_unit_test(test_http),
        cmocka_unit_test(test_errors),
        cmocka_unit_test(test_store_type),
        cmocka_unit_test(test_load_file),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
