/*
 * What edgetelctl reads and prints (ctl/): time parsing and formatting,
 * and the devices / metrics / query / tail output from a store built here
 * through the same ingest path the aggregator uses.
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

#include "cloud_test.h"
#include "edgetel/codec.h"
#include "edgetel/ingest.h"
#include "edgetel/log.h"
#include "edgetel/report.h"
#include "edgetel/store.h"
#include "edgetel/timefmt.h"

/* 2026-11-22T16:05:30Z */
#define T0 1795363530000LL

/* ---- time parsing --------------------------------------------------------- */

static void assert_time(const char *text, int64_t now, int64_t want)
{
    char why[256] = "";
    int64_t got = 0;

    if (et_time_parse(text, now, &got, why, sizeof(why)) != 0)
        fail_msg("\"%s\" did not parse: %s", text, why);
    if (got != want)
        fail_msg("\"%s\": got %lld, want %lld", text, (long long)got, (long long)want);
}

static void assert_bad_time(const char *text, const char *why_part)
{
    char why[256] = "";
    int64_t got = 12345;

    assert_int_equal(et_time_parse(text, T0, &got, why, sizeof(why)), -EINVAL);
    if (!strstr(why, why_part))
        fail_msg("\"%s\": reason \"%s\" does not mention \"%s\"", text, why, why_part);
}

static void test_time_parse_iso(void **state)
{
    assert_time("2026-11-22T16:05:30Z", 0, T0);
    assert_time("2026-11-22t16:05:30z", 0, T0);
    assert_time("2026-11-22 16:05:30", 0, T0);          /* no offset: UTC */
    assert_time("2026-11-22T16:05:30", 0, T0);
    assert_time("2026-11-22T16:05", 0, T0 - 30000);
    assert_time("2026-11-22", 0, 1795305600000LL);
    assert_time("2026-11-22T16:05:30.250Z", 0, T0 + 250);
    assert_time("2026-11-22T16:05:30.5Z", 0, T0 + 500);
    assert_time("2026-11-22T16:05:30.123456Z", 0, T0 + 123);
    assert_time("2026-11-22T17:05:30+01:00", 0, T0);
    assert_time("2026-11-22T11:05:30-0500", 0, T0);
    assert_time("2026-11-22T21:35:30+05:30", 0, T0);
    assert_time("2026-11-22T18:05:30+02", 0, T0);
    assert_time("2028-02-29T12:00:00Z", 0, 1835438400000LL);
    assert_time("1970-01-01T00:00:00Z", 0, 0);
}

static void test_time_parse_relative(void **state)
{
    assert_time("now", T0, T0);
    assert_time("-10m", T0, T0 - 600000);
    assert_time("-1h30m", T0, T0 - 5400000);
    assert_time("-2d", T0, T0 - 2 * 86400000LL);
    assert_time("-90s", T0, T0 - 90000);
    assert_time("-250ms", T0, T0 - 250);
}

static void test_time_parse_errors(void **state)
{
    assert_bad_time("", "empty");
    assert_bad_time("yesterday", "\"yesterday\"");
    assert_bad_time("2026-02-29", "no such date");
    assert_bad_time("2026-13-01", "no such date");
    assert_bad_time("2026-11-31", "no such date");
    assert_bad_time("2026-11-22T25:00", "no such time");
    assert_bad_time("2026-11-22T16:60", "no such time");
    assert_bad_time("2026-11-22T16", "HH:MM");
    assert_bad_time("2026-11-22T16:05:30Zjunk", "at the end");
    assert_bad_time("2026-11-22T16:05:30+25:00", "offset");
    assert_bad_time("2026-11-22T16:05:30.Z", "decimal point");
    assert_bad_time("26-11-22", "YYYY-MM-DD");
    assert_bad_time("-10x", "-10m");
    assert_bad_time("-", "-10m");
    assert_bad_time("10m", "ISO 8601");   /* a bare duration is not a time */
}

static void test_time_format(void **state)
{
    char buf[64], why[128];
    int64_t back;

    et_time_format_iso(0, buf, sizeof(buf));
    assert_string_equal(buf, "1970-01-01T00:00:00Z");
    et_time_format_iso(T0, buf, sizeof(buf));
    assert_string_equal(buf, "2026-11-22T16:05:30Z");
    et_time_format_iso(T0 + 7, buf, sizeof(buf));
    assert_string_equal(buf, "2026-11-22T16:05:30.007Z");
    et_time_format_iso(-1, buf, sizeof(buf));
    assert_string_equal(buf, "1969-12-31T23:59:59.999Z");

    /* What edgetelctl prints, it reads back. */
    for (int64_t t = T0 - 5000; t < T0 + 5000; t += 337) {
        et_time_format_iso(t, buf, sizeof(buf));
        assert_int_equal(et_time_parse(buf, 0, &back, why, sizeof(why)), 0);
        assert_int_equal(back, t);
    }

    et_time_format_age(0, buf, sizeof(buf));
    assert_string_equal(buf, "just now");
    et_time_format_age(12000, buf, sizeof(buf));
    assert_string_equal(buf, "12s ago");
    et_time_format_age(5 * 60000 + 59000, buf, sizeof(buf));
    assert_string_equal(buf, "5m ago");
    et_time_format_age((3 * 3600 + 20 * 60) * 1000LL, buf, sizeof(buf));
    assert_string_equal(buf, "3h 20m ago");
    et_time_format_age((4 * 86400 + 2 * 3600) * 1000LL, buf, sizeof(buf));
    assert_string_equal(buf, "4d 2h ago");
    et_time_format_age(-5 * 60000, buf, sizeof(buf));
    assert_string_equal(buf, "in 5m");
}

/* ---- reports from a store --------------------------------------------------- */

struct fixture {
    struct cloud_fixture *store;   /* an SQLite store with ingest on it */
    struct et_ingest *ig;
    struct et_store_reader *r;
    char *out;
    size_t out_len;
    FILE *mem;
};

static int setup(void **state)
{
    struct fixture *f = calloc(1, sizeof(*f));

    assert_non_null(f);
    f->store = cloud_fixture_create("ctl");
    f->ig = f->store->ig;
    f->r = f->store->r;
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fixture *f = *state;

    if (f->mem)
        fclose(f->mem);
    free(f->out);
    cloud_fixture_destroy(f->store);
    free(f);
    return 0;
}

/* A fresh in-memory stream for the next report. */
static FILE *capture(struct fixture *f)
{
    if (f->mem)
        fclose(f->mem);
    free(f->out);
    f->out = NULL;
    f->mem = open_memstream(&f->out, &f->out_len);
    assert_non_null(f->mem);
    return f->mem;
}

static const char *captured(struct fixture *f)
{
    fflush(f->mem);
    return f->out;
}

/*
 * Ingest a batch of stream stream_id (NULL: none, an agent from before
 * streams) at now_ms: temp (f64, Cel) at T0 + i s, and one "status" string.
 */
static void ingest_in(struct fixture *f, const char *device, const uint8_t *stream_id,
                      uint64_t seq, int n, int64_t now_ms)
{
    struct et_batch_meta meta = {
        .device_id = device, .seq = seq, .base_mono_ms = 1000, .base_wall_ms = T0,
        .time_quality = ET_TQ_SYNCED, .oldest_seq = 1, .stream_id = stream_id,
    };
    struct et_ingest_reply r;
    struct et_batch *b;
    struct et_value v;
    char topic[128];
    uint8_t *buf;
    size_t len;

    assert_int_equal(et_batch_create(&b), 0);
    for (int i = 0; i < n; i++) {
        v = et_value_f64(20.0 + i * 0.25);
        assert_int_equal(et_batch_add(b, "temp", "Cel", 1000 + i * 1000, &v,
                                      i == 0 ? ET_TQ_UNSYNCED : ET_TQ_SYNCED), 0);
    }
    v.type = ET_TYPE_STR;
    strcpy(v.u.str, "ok, \"fine\"");
    assert_int_equal(et_batch_add(b, "status", "", 1000, &v, ET_TQ_SYNCED), 0);
    assert_int_equal(et_batch_encode(b, &meta, &buf, &len), 0);
    et_batch_destroy(b);
    snprintf(topic, sizeof(topic), "edgetel/v1/%s/telemetry", device);
    assert_int_equal(et_ingest_message(f->ig, topic, buf, len, now_ms, &r), 0);
    assert_int_equal(r.kind, ET_INGEST_STORED);
    free(buf);
}

static void ingest(struct fixture *f, const char *device, uint64_t seq, int n)
{
    ingest_in(f, device, NULL, seq, n, T0 + 60000);
}

static void test_query_csv(void **state)
{
    struct fixture *f = *state;
    struct et_store_query q = {
        .device = "pi-1", .metric = "temp", .since_ms = INT64_MIN, .until_ms = INT64_MAX,
    };
    uint64_t rows = 0;

    ingest(f, "pi-1", 1, 3);
    ingest(f, "pi-2", 1, 1);
    assert_int_equal(et_report_query(f->r, capture(f), &q, true, &rows), 0);
    assert_int_equal(rows, 3);
    /* The first was measured unsynced, in a batch made on a synced clock:
     * its time is known now, so it reads "corrected". */
    assert_string_equal(captured(f),
        "time,ts_ms,device,metric,value,unit,time_quality,seq\n"
        "2026-11-22T16:05:30Z,1795363530000,pi-1,temp,20,Cel,corrected,1\n"
        "2026-11-22T16:05:31Z,1795363531000,pi-1,temp,20.25,Cel,synced,1\n"
        "2026-11-22T16:05:32Z,1795363532000,pi-1,temp,20.5,Cel,synced,1\n");

    /* A time window, as the command line gives it. */
    char why[128];

    assert_int_equal(et_time_parse("2026-11-22T16:05:31Z", 0, &q.since_ms, why, sizeof(why)), 0);
    assert_int_equal(et_time_parse("2026-11-22T16:05:32Z", 0, &q.until_ms, why, sizeof(why)), 0);
    assert_int_equal(et_report_query(f->r, capture(f), &q, true, &rows), 0);
    assert_int_equal(rows, 1);
    assert_non_null(strstr(captured(f), "\n2026-11-22T16:05:31Z,"));

    /* Strings with separators are quoted. */
    q = (struct et_store_query){
        .device = "pi-1", .metric = "status", .since_ms = INT64_MIN, .until_ms = INT64_MAX,
    };
    assert_int_equal(et_report_query(f->r, capture(f), &q, true, &rows), 0);
    assert_int_equal(rows, 1);
    assert_non_null(strstr(captured(f), ",pi-1,status,\"ok, \"\"fine\"\"\",,synced,1\n"));

    /* An empty window has the header only. */
    q.since_ms = T0 + 3600000;
    assert_int_equal(et_report_query(f->r, capture(f), &q, true, &rows), 0);
    assert_int_equal(rows, 0);
    assert_string_equal(captured(f), "time,ts_ms,device,metric,value,unit,time_quality,seq\n");
}

static void test_query_text_and_tail(void **state)
{
    struct fixture *f = *state;
    struct et_store_query q = {
        .device = "pi-1", .metric = "temp", .since_ms = T0 + 1000, .until_ms = INT64_MAX,
    };
    struct et_store_sample smp = {
        .device = "pi-1", .metric = "temp", .unit = "Cel", .ts_ms = T0,
        .value = { .type = ET_TYPE_F64, .u.f64 = 21.5 },
    };

    ingest(f, "pi-1", 1, 2);
    assert_int_equal(et_report_query(f->r, capture(f), &q, false, NULL), 0);
    assert_string_equal(captured(f), "2026-11-22T16:05:31Z                 20.25 Cel       synced\n");

    assert_int_equal(et_report_tail_line(capture(f), &smp), 0);
    assert_string_equal(captured(f), "2026-11-22T16:05:30Z pi-1 temp 21.5 Cel\n");
    smp.unit = "";
    smp.value = (struct et_store_value){ .type = ET_TYPE_BOOL, .u.b = true };
    assert_int_equal(et_report_tail_line(capture(f), &smp), 0);
    assert_string_equal(captured(f), "2026-11-22T16:05:30Z pi-1 temp true -\n");
}

static void test_values(void **state)
{
    struct et_store_value v;
    char buf[64];

    v = (struct et_store_value){ .type = ET_TYPE_F64, .u.f64 = 0.1 };
    et_report_value(&v, buf, sizeof(buf));
    assert_string_equal(buf, "0.1");
    v.u.f64 = 1.0 / 3.0;
    et_report_value(&v, buf, sizeof(buf));
    assert_true(strtod(buf, NULL) == 1.0 / 3.0);
    v.u.f64 = 9007199254740993.0;   /* not exact in %.15g */
    et_report_value(&v, buf, sizeof(buf));
    assert_true(strtod(buf, NULL) == v.u.f64);
    v = (struct et_store_value){ .type = ET_TYPE_I64, .u.i64 = INT64_MIN };
    et_report_value(&v, buf, sizeof(buf));
    assert_string_equal(buf, "-9223372036854775808");
    v = (struct et_store_value){ .type = ET_TYPE_BOOL, .u.b = false };
    et_report_value(&v, buf, sizeof(buf));
    assert_string_equal(buf, "false");
    assert_string_equal(et_report_quality(ET_TQ_CORRECTED), "corrected");
    assert_string_equal(et_report_quality(99), "-");
}

static uint8_t *pack_status(const char *device, bool online, uint64_t outbox, size_t *len)
{
    Edgetel__V1__Status s = EDGETEL__V1__STATUS__INIT;
    uint8_t *buf;

    s.device_id = (char *)device;
    s.online = online;
    s.outbox_batches = outbox;
    s.dropped_samples = 7;
    *len = edgetel__v1__status__get_packed_size(&s);
    buf = malloc(*len ? *len : 1);
    assert_non_null(buf);
    edgetel__v1__status__pack(&s, buf);
    return buf;
}

static void test_devices_table(void **state)
{
    struct fixture *f = *state;
    struct et_ingest_reply r;
    const char *out;
    size_t len;
    uint8_t *buf;

    assert_int_equal(et_report_devices(f->r, capture(f), T0), 0);
    assert_string_equal(captured(f), "no devices yet\n");

    /* pi-1's data directory since 16:05:30, an older agent without streams. */
    ingest_in(f, "pi-1", cloud_stream_a, 1, 2, T0);
    ingest_in(f, "pi-1", cloud_stream_a, 2, 2, T0);
    ingest(f, "a-much-longer-device-name", 1, 1);
    buf = pack_status("pi-1", true, 4, &len);
    assert_int_equal(et_ingest_message(f->ig, "edgetel/v1/pi-1/status", buf, len,
                                       T0 + 60000, &r), 0);
    free(buf);

    /* Five minutes after the last message. */
    assert_int_equal(et_report_devices(f->r, capture(f), T0 + 60000 + 300000), 0);
    out = captured(f);
    assert_string_equal(out,
        "DEVICE                     ONLINE  LAST SEEN                      SAMPLES"
        "  STREAM                               ACKED SEQ  OUTBOX  DROPPED\n"
        "a-much-longer-device-name  ?       2026-11-22T16:06:30Z (5m ago)        2"
        "  legacy since 2026-11-22T16:06:30Z            1       -        -\n"
        "pi-1                       yes     2026-11-22T16:06:30Z (5m ago)        6"
        "  a0a1a2a3 since 2026-11-22T16:05:30Z          2       4        7\n");

    /* pi-1 re-flashed at 16:10:30: a new stream, its own acked seq. */
    ingest_in(f, "pi-1", cloud_stream_b, 1, 1, T0 + 300000);
    assert_int_equal(et_report_devices(f->r, capture(f), T0 + 360000), 0);
    assert_non_null(strstr(captured(f),
        "\npi-1                       yes     2026-11-22T16:10:30Z (1m ago)        8"
        "  b0b1b2b3 since 2026-11-22T16:10:30Z          1       4        7\n"));
}

static void test_metrics_list(void **state)
{
    struct fixture *f = *state;
    const char *out;

    assert_int_equal(et_report_metrics(f->r, capture(f), NULL), 0);
    assert_string_equal(captured(f), "no metrics yet\n");

    ingest(f, "pi-1", 1, 3);
    ingest(f, "pi-2", 1, 1);
    assert_int_equal(et_report_metrics(f->r, capture(f), "pi-1"), 0);
    out = captured(f);
    /* Columns as wide as their widest cell; the last one is not padded. */
    assert_string_equal(out,
        "METRIC  UNIT  SAMPLES  FIRST                 LAST                  TAGS\n"
        "status  -           1  2026-11-22T16:05:30Z  2026-11-22T16:05:30Z  -\n"
        "temp    Cel         3  2026-11-22T16:05:30Z  2026-11-22T16:05:32Z  -\n");

    assert_int_equal(et_report_metrics(f->r, capture(f), NULL), 0);
    out = captured(f);
    assert_true(strncmp(out, "DEVICE", 6) == 0);
    assert_non_null(strstr(out, "\npi-1 "));
    assert_non_null(strstr(out, "\npi-2 "));
}

static void test_check_names(void **state)
{
    struct fixture *f = *state;
    char why[256];

    ingest(f, "pi-1", 1, 1);
    assert_int_equal(et_report_check(f->r, "pi-1", "temp", why, sizeof(why)), 0);
    assert_int_equal(et_report_check(f->r, "pi-1", NULL, why, sizeof(why)), 0);
    assert_int_equal(et_report_check(f->r, "pi-9", "temp", why, sizeof(why)), -ENOENT);
    assert_string_equal(why, "device pi-9 is not in the store (edgetelctl devices lists them)");
    assert_int_equal(et_report_check(f->r, "pi-1", "tmep", why, sizeof(why)), -ENOENT);
    assert_string_equal(why, "device pi-1 has no metric \"tmep\" (edgetelctl metrics "
                             "--device pi-1 lists them)");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_time_parse_iso),
        cmocka_unit_test(test_time_parse_relative),
        cmocka_unit_test(test_time_parse_errors),
        cmocka_unit_test(test_time_format),
        cmocka_unit_test(test_values),
        cmocka_unit_test_setup_teardown(test_query_csv, setup, teardown),
        cmocka_unit_test_setup_teardown(test_query_text_and_tail, setup, teardown),
        cmocka_unit_test_setup_teardown(test_devices_table, setup, teardown),
        cmocka_unit_test_setup_teardown(test_metrics_list, setup, teardown),
        cmocka_unit_test_setup_teardown(test_check_names, setup, teardown),
    };

    et_log_init("test_ctl", ET_LOG_WARN);
    return cmocka_run_group_tests(tests, NULL, NULL);
}
