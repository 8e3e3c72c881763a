/*
 * The web view's handlers (web/, et_web) over a real SQLite store, without
 * the HTTP server: the fleet and device answers, a day of 1 s data
 * downsampled with its gap and its corrected and uncorrectable times, the
 * CSV, Prometheus /metrics read by promtool, every bound, and hostile
 * device ids, metric names, units and tags escaped in JSON and in labels.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cloud_test.h"
#include "edgetel/store_open.h"
#include "edgetel/text.h"
#include "edgetel/web.h"
#include "edgetel/web_out.h"
#include "web_data.h"

#define HOUR_MS (3600LL * 1000)
#define DAY_MS (24 * HOUR_MS)
/* Noon UTC, so that "today" holds the last 12 hours of the day of data. */
#define NOW (CLOUD_NOW - CLOUD_NOW % DAY_MS + 12 * HOUR_MS)

struct args {
    const char *names[8];
    const char *values[8];
};

static const char *arg_of(void *ctx, const char *name)
{
    struct args *a = ctx;

    for (size_t i = 0; i < 8 && a->names[i]; i++)
        if (strcmp(a->names[i], name) == 0)
            return a->values[i];
    return NULL;
}

/* GET path with NAME=VALUE pairs (NULL-terminated) into resp; its body NUL-terminated. */
static char *get(struct et_web *w, struct et_web_response *resp, const char *path, ...)
{
    struct args a = { .names = { NULL } };
    struct et_web_request req = { .path = path, .arg = arg_of, .arg_ctx = &a, .now_ms = NOW };
    va_list ap;
    char *text;

    va_start(ap, path);
    for (size_t i = 0; i < 8; i++) {
        a.names[i] = va_arg(ap, const char *);
        if (!a.names[i])
            break;
        a.values[i] = va_arg(ap, const char *);
    }
    va_end(ap);
    et_web_handle(w, &req, resp);
    text = malloc(resp->len + 1);
    assert_non_null(text);
    memcpy(text, resp->body ? resp->body : "", resp->len);
    text[resp->len] = '\0';
    free(resp->body);
    resp->body = NULL;
    return text;
}

static const struct web_data day = {
    .device = "bench-device", .metrics = 3,
    .from_ms = NOW - DAY_MS, .to_ms = NOW, .interval_ms = 1000,
    .gap_from_ms = NOW - 12 * HOUR_MS, .gap_to_ms = NOW - 11 * HOUR_MS,
    .corrected_from_ms = NOW - 20 * HOUR_MS, .corrected_to_ms = NOW - 20 * HOUR_MS + 600000,
    .uncorrectable_from_ms = NOW - 6 * HOUR_MS,
    .uncorrectable_to_ms = NOW - 6 * HOUR_MS + 60000,
    .outbox_batches = 31, .dropped_samples = 0, .now_ms = NOW,
};

static struct et_web *web_on(struct cloud_fixture *f, const struct et_web_limits *lim)
{
    struct et_web *w;

    assert_int_equal(et_web_create(&w, f->r, et_store_config(f->store), lim), 0);
    return w;
}

static int64_t count_of(const char *text, const char *needle)
{
    int64_t n = 0;

    for (const char *p = strstr(text, needle); p; p = strstr(p + 1, needle))
        n++;
    return n;
}

static void test_fleet(void **state)
{
    struct cloud_fixture *f = *state;
    struct et_web_response r;
    struct et_web *w;
    char *text;

    assert_int_equal(web_data_fill(f->w, &day), 0);
    w = web_on(f, NULL);
    cloud_last_id_settled(f);   /* samples today are counted up to the last id */
    text = get(w, &r, "/api/v1/fleet", NULL);
    assert_int_equal(r.status, 200);
    assert_string_equal(r.content_type, "application/json");
    assert_non_null(strstr(text, "{\"id\":\"bench-device\",\"online\":true"));
    /* Today is the last 12 h less the offline hour: 11 h of 3 metrics at 1 s. */
    assert_int_equal(web_json_int(text, "samples_today"), 11 * 3600 * 3);
    assert_int_equal(web_json_int(text, "outbox_batches"), 31);
    assert_non_null(strstr(text, "\"problems\":[\"behind\"]"));
    assert_non_null(strstr(text, "\"cert_not_after_ms\":null"));
    free(text);

    /* New rows are counted by id from where the last count stopped. */
    cloud_put_batch(f->w, "bench-device", 99, "late", "", NOW - 1000, 5);
    cloud_put_batch(f->w, "other", 1, "x", "", NOW - DAY_MS - 5000, 3);   /* yesterday */
    cloud_last_id_settled(f);
    text = get(w, &r, "/api/v1/fleet", NULL);
    assert_int_equal(web_json_int(text, "samples_today"), 11 * 3600 * 3 + 5);
    /* "other" has no Status: backlog and dropped are not known, and it is not online. */
    assert_non_null(strstr(text, "{\"id\":\"other\",\"online\":false"));
    assert_non_null(strstr(text, "\"samples_today\":0,\"has_status\":false,"
                                 "\"outbox_batches\":null,\"dropped_samples\":null"));
    assert_non_null(strstr(text, "\"problems\":[\"offline\"]"));
    free(text);
    et_web_destroy(w);
}

static void test_dropping(void **state)
{
    struct cloud_fixture *f = *state;
    struct et_store_status st = {
        .device = "d", .online = true, .boot_id_hex = "", .agent_version = "",
        .reason = "", .dropped_samples = 7,
    };
    struct et_web_response r;
    struct et_web *w = web_on(f, NULL);
    char *text;

    cloud_put_batch(f->w, "d", 1, "x", "", NOW - 1000, 1);
    assert_int_equal(et_store_device_status(f->w, &st, NOW, NULL), 0);
    /* Dropped before this view watched: shown, but not "dropping". */
    text = get(w, &r, "/api/v1/fleet", NULL);
    assert_non_null(strstr(text, "\"dropped_samples\":7"));
    assert_null(strstr(text, "dropping"));
    free(text);
    st.dropped_samples = 9;
    assert_int_equal(et_store_device_status(f->w, &st, NOW, NULL), 0);
    text = get(w, &r, "/api/v1/fleet", NULL);
    assert_non_null(strstr(text, "\"problems\":[\"dropping\"]"));
    free(text);
    et_web_destroy(w);
}

static void test_series_day(void **state)
{
    struct cloud_fixture *f = *state;
    struct et_web_response r;
    struct et_web *w;
    char from[32], to[32], *text;

    assert_int_equal(web_data_fill(f->w, &day), 0);
    w = web_on(f, NULL);
    snprintf(from, sizeof(from), "%lld", (long long)(NOW - DAY_MS));
    snprintf(to, sizeof(to), "%lld", (long long)NOW);
    text = get(w, &r, "/api/v1/series", "device", "bench-device", "metric", "m0", "from", from,
               "to", to, "points", "1000", NULL);
    assert_int_equal(r.status, 200);
    /* 86.4 s buckets: 1000 of them, less the ones of the offline hour. */
    assert_int_equal(web_json_int(text, "bucket_ms"), 86400);
    assert_in_range(web_json_int(text, "points"), 950, 1000);
    assert_int_equal(web_json_int(text, "gaps"), 1);
    assert_int_equal(count_of(text, "null,null,null,0,0,0,0]"), 1);
    assert_int_equal(web_json_int(text, "samples"), 23 * 3600);
    assert_int_equal(web_json_int(text, "corrected"), 600);
    assert_int_equal(web_json_int(text, "uncorrectable"), 60);
    free(text);

    text = get(w, &r, "/api/v1/series", "device", "bench-device", "metric", "m1", "from", from,
               "to", to, "points", "500", "format", "csv", NULL);
    assert_int_equal(r.status, 200);
    assert_string_equal(r.content_type, "text/csv; charset=utf-8");
    assert_string_equal(r.filename, "bench-device-m1.csv");
    assert_memory_equal(text, "time_ms,time_utc,samples,min,avg,max,", 37);
    /* A header and a line a bucket with data (a gap is no line). */
    assert_in_range(count_of(text, "\r\n"), 450, 501);
    free(text);

    /* A metric sampled every minute is not cut into gaps by its own spacing. */
    {
        struct web_data slow = day;

        slow.device = "slow";
        slow.metrics = 1;
        slow.interval_ms = 60000;
        slow.gap_from_ms = slow.gap_to_ms = 0;
        assert_int_equal(web_data_fill(f->w, &slow), 0);
    }
    text = get(w, &r, "/api/v1/series", "device", "slow", "metric", "m0", "from", from, "to", to,
               "points", "5000", NULL);
    assert_int_equal(web_json_int(text, "gaps"), 0);
    assert_int_equal(web_json_int(text, "points"), 1440);
    free(text);
    et_web_destroy(w);
}

static void test_bounds(void **state)
{
    struct cloud_fixture *f = *state;
    struct et_web_limits lim = { .max_body = 2000, .max_points = 100 };
    struct et_web_response r;
    struct et_web *w;
    char *text;

    assert_int_equal(web_data_fill(f->w, &day), 0);
    w = web_on(f, &lim);
    text = get(w, &r, "/api/v1/series", "device", "bench-device", "metric", "m0", "points",
               "101", NULL);
    assert_int_equal(r.status, 400);
    free(text);
    text = get(w, &r, "/api/v1/series", "device", "bench-device", "metric", "m0", "points",
               "100", NULL);
    assert_int_equal(r.status, 503);
    assert_non_null(strstr(text, "result too large"));
    free(text);
    text = get(w, &r, "/api/v1/series", "device", "bench-device", NULL);
    assert_int_equal(r.status, 400);
    free(text);
    text = get(w, &r, "/api/v1/series", "device", "x", "metric", "y", "from", "10", "to", "5",
               NULL);
    assert_int_equal(r.status, 400);
    free(text);
    text = get(w, &r, "/api/v1/series", "device", "x", "metric", "y", "format", "xml", NULL);
    assert_int_equal(r.status, 400);
    free(text);
    text = get(w, &r, "/api/v1/device", "id", "nobody", NULL);
    assert_int_equal(r.status, 404);
    free(text);
    text = get(w, &r, "/etc/passwd", NULL);
    assert_int_equal(r.status, 404);
    free(text);
    text = get(w, &r, "/", NULL);
    assert_int_equal(r.status, 200);
    assert_non_null(strstr(text, "<title>edgetel fleet</title>"));
    free(text);
    et_web_destroy(w);
}

/* Valid UTF-8, and nothing a browser or a terminal would obey. */
static void assert_inert_json(const char *text)
{
    assert_int_equal(et_text_check(text, strlen(text), true, NULL), ET_TEXT_OK);
    for (const char *p = text; *p; p++) {
        assert_true(*p != '<' && *p != '>');
        assert_true((unsigned char)*p >= 0x20 || *p == '\n');
    }
}

static void test_hostile(void **state)
{
    struct cloud_fixture *f = *state;
    struct et_web_response r;
    struct et_web *w;
    char *text;

    assert_int_equal(web_data_hostile(f->w, NOW, !cloud_store_is_pg()), 0);
    w = web_on(f, NULL);
    text = get(w, &r, "/api/v1/fleet", NULL);
    assert_int_equal(r.status, 200);
    assert_inert_json(text);
    assert_non_null(strstr(text, "\"id\":\"evil\\\"\\u003cscript\\u003edev\""));
    free(text);
    text = get(w, &r, "/api/v1/device", "id", WEB_HOSTILE_DEVICE, NULL);
    assert_int_equal(r.status, 200);
    assert_inert_json(text);
    assert_non_null(strstr(text, "\\u003cimg src=x onerror=\\\"document.title='PWNED'\\\"\\u003e"));
    assert_non_null(strstr(text, "quote\\\"back\\\\slash\\nnew line\\ttab\\u001b[2Jesc"));
    /* Bytes that are not UTF-8 became U+FFFD, the rest kept (SQLite
     * holds them; PostgreSQL refuses them when they are written). */
    if (!cloud_store_is_pg())
        assert_non_null(strstr(text, "bad utf8 \xef\xbf\xbd\xef\xbf\xbd "
                                     "\xef\xbf\xbd\xef\xbf\xbd end"));
    assert_non_null(strstr(text, "\"unit\":\"\xc2\xb0" "C\""));
    free(text);
    text = get(w, &r, "/api/v1/series", "device", WEB_HOSTILE_DEVICE, "metric",
               WEB_HOSTILE_METRIC, NULL);
    assert_int_equal(r.status, 200);
    assert_inert_json(text);
    assert_int_equal(web_json_int(text, "samples"), 10);
    free(text);
    text = get(w, &r, "/api/v1/series", "device", WEB_HOSTILE_DEVICE, "metric",
               WEB_HOSTILE_METRIC, "format", "csv", NULL);
    assert_string_equal(r.filename, "evil__script_dev-_img_src_x_onerror__document.title__PWNED_.csv");
    free(text);
    et_web_destroy(w);
}

static void test_out_escaping(void **state)
{
    struct et_web_out o;

    (void)state;
    et_web_out_init(&o, 1024);
    et_web_out_prom_label(&o, "a\"b\\c\nd\xff<e>");
    assert_string_equal(o.data, "a\\\"b\\\\c\\nd\xef\xbf\xbd<e>");
    et_web_out_free(&o);
    et_web_out_json_str(&o, "\x01\x7f&\xe2\x82\xac\xf0\x9f\x98\x80\xed\xa0\x80");
    assert_string_equal(o.data, "\"\\u0001\\u007f\\u0026\xe2\x82\xac\xf0\x9f\x98\x80"
                                "\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd\"");
    et_web_out_free(&o);
    et_web_out_json_num(&o, 1.0 / 0.0);
    assert_string_equal(o.data, "null");
    et_web_out_free(&o);
    /* Never past its max: the write that would is dropped whole. */
    et_web_out_init(&o, 4);
    et_web_out_str(&o, "abc");
    et_web_out_str(&o, "de");
    assert_true(o.full);
    assert_string_equal(o.data, "abc");
    et_web_out_free(&o);
}

/* promtool check metrics on text; skipped without promtool unless the suite demands it. */
static void promtool_check(struct cloud_fixture *f, const char *text)
{
    char path[256], cmd[512], out[4096] = "";
    FILE *p;
    size_t n;
    int status;

    if (system("command -v promtool >/dev/null 2>&1") != 0) {
        if (getenv("ET_REQUIRE_TOOLS"))
            fail_msg("promtool is missing (scripts/deps.sh installs prometheus)");
        fprintf(stderr, "test_web: promtool not installed (Debian's prometheus): "
                        "the exposition format is not checked by it here\n");
        return;
    }
    snprintf(path, sizeof(path), "%s/metrics.txt", f->dir);
    p = fopen(path, "w");
    assert_non_null(p);
    fputs(text, p);
    fclose(p);
    snprintf(cmd, sizeof(cmd), "promtool check metrics < %s 2>&1", path);
    p = popen(cmd, "r");
    assert_non_null(p);
    n = fread(out, 1, sizeof(out) - 1, p);
    out[n] = '\0';
    status = pclose(p);
    if (status != 0)
        fail_msg("promtool check metrics failed:\n%s\non:\n%s", out, text);
}

static void test_metrics(void **state)
{
    struct cloud_fixture *f = *state;
    struct et_web_health h = { .started_ms = NOW - 5000, .messages = 12, .acks_sent = 10 };
    struct args a = { .names = { NULL } };
    struct et_web_request req = { .path = "/metrics", .arg = arg_of, .arg_ctx = &a,
                                  .now_ms = NOW, .health = &h };
    struct et_web_response r;
    struct et_web *w;
    char *text;

    assert_int_equal(web_data_fill(f->w, &day), 0);
    assert_int_equal(web_data_hostile(f->w, NOW, !cloud_store_is_pg()), 0);
    h.ingest.batches = 5;
    et_web_health_commit(&h, 0.003);
    et_web_health_commit(&h, 0.2);
    w = web_on(f, NULL);
    et_web_handle(w, &req, &r);
    assert_int_equal(r.status, 200);
    assert_string_equal(r.content_type, "text/plain; version=0.0.4; charset=utf-8");
    text = r.body;
    assert_non_null(strstr(text, "\nedgetel_aggregator_messages_total 12\n"));
    assert_non_null(strstr(text, "\nedgetel_aggregator_batches_total 5\n"));
    assert_non_null(strstr(text, "edgetel_aggregator_commit_seconds_bucket{le=\"0.005\"} 1\n"));
    assert_non_null(strstr(text, "edgetel_aggregator_commit_seconds_bucket{le=\"+Inf\"} 2\n"));
    assert_non_null(strstr(text, "\nedgetel_devices_online 2\n"));
    assert_non_null(strstr(text, "edgetel_device_outbox_batches{device=\"bench-device\"} 31\n"));
    assert_non_null(strstr(text, "edgetel_device_online{device=\"evil\\\"<script>dev\"} 1\n"));
    promtool_check(f, text);
    free(r.body);
    et_web_destroy(w);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_fleet, cloud_fixture_setup, cloud_fixture_teardown),
        cmocka_unit_test_setup_teardown(test_dropping, cloud_fixture_setup,
                                        cloud_fixture_teardown),
        cmocka_unit_test_setup_teardown(test_series_day, cloud_fixture_setup,
                                        cloud_fixture_teardown),
        cmocka_unit_test_setup_teardown(test_bounds, cloud_fixture_setup, cloud_fixture_teardown),
        cmocka_unit_test_setup_teardown(test_hostile, cloud_fixture_setup,
                                        cloud_fixture_teardown),
        cmocka_unit_test(test_out_escaping),
        cmocka_unit_test_setup_teardown(test_metrics, cloud_fixture_setup,
                                        cloud_fixture_teardown),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
