/*
 * A hostile device, from ingest to what edgetelctl prints: a valid
 * certificate proves who the device is, not that its words are harmless.
 * Its escape sequences and line breaks are stored as sent and shown
 * escaped; names that hold them are refused; a CSV cell that a
 * spreadsheet would run as a formula is guarded while numbers stay
 * numbers; NaN and infinities are kept as what they are.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <math.h>
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

/* 2026-11-22T16:05:30Z */
#define T0 1795363530000LL

struct fixture {
    struct cloud_fixture *store;
    struct cloud_output out;
};

static int setup(void **state)
{
    struct fixture *f = calloc(1, sizeof(*f));

    assert_non_null(f);
    f->store = cloud_fixture_create("hostile");
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fixture *f = *state;

    cloud_output_free(&f->out);
    cloud_fixture_destroy(f->store);
    free(f);
    return 0;
}

#define capture(f) cloud_output_start(&(f)->out)
#define captured(f) cloud_output_text(&(f)->out)

/* Output a person reads: no byte a terminal obeys but the lines' own ends. */
static void assert_no_control_bytes(const char *text)
{
    for (const unsigned char *p = (const unsigned char *)text; *p; p++) {
        if (*p == '\n')
            continue;
        if (*p < 0x20 || *p == 0x7f || (p[0] == 0xc2 && p[1] >= 0x80 && p[1] <= 0x9f))
            fail_msg("control byte 0x%02x at offset %zu in:\n%s", *p, (size_t)(p - (const unsigned char *)text), text);
    }
}

struct sample_spec {
    const char *metric, *unit, *tags;
    struct et_value v;
};

static struct et_value str_value(const char *s)
{
    struct et_value v = { .type = ET_TYPE_STR };

    snprintf(v.u.str, sizeof(v.u.str), "%s", s);
    return v;
}

/* One batch of device holding the samples; returns what ingest made of it. */
static enum et_ingest_kind ingest(struct fixture *f, const char *device, uint64_t seq,
                                  const struct sample_spec *s, size_t n)
{
    struct et_batch_meta meta = {
        .device_id = device, .seq = seq, .base_mono_ms = 1000, .base_wall_ms = T0,
        .time_quality = ET_TQ_SYNCED, .oldest_seq = 1,
    };
    struct et_ingest_reply r;
    struct et_batch *b;
    char topic[128];
    uint8_t *buf;
    size_t len;

    assert_int_equal(et_batch_create(&b), 0);
    for (size_t i = 0; i < n; i++)
        assert_int_equal(et_batch_add_tagged(b, s[i].metric, s[i].unit, s[i].tags,
                                             1000 + (int64_t)i * 1000, &s[i].v, ET_TQ_SYNCED), 0);
    assert_int_equal(et_batch_encode(b, &meta, &buf, &len), 0);
    et_batch_destroy(b);
    snprintf(topic, sizeof(topic), "edgetel/v1/%s/telemetry", device);
    assert_int_equal(et_ingest_message(f->store->ig, topic, buf, len, T0 + 60000, &r), 0);
    free(buf);
    return r.kind;
}

static const char *query(struct fixture *f, const char *device, const char *metric, bool csv)
{
    struct et_store_query q = {
        .device = device, .metric = metric, .since_ms = INT64_MIN, .until_ms = INT64_MAX,
    };
    uint64_t rows = 0;

    assert_int_equal(et_report_query(f->store->r, capture(f), &q, csv, &rows), 0);
    assert_int_equal(rows, 1);
    return captured(f);
}

static void test_terminal_and_spreadsheet(void **state)
{
    struct fixture *f = *state;
    const struct sample_spec batch[] = {
        { "screen", "", NULL, str_value("\x1b[2J\x1b[1;1HAll devices healthy\nforged line") },
        { "formula", "", NULL, str_value("=cmd|' /C calc'!A0") },
        { "at", "", NULL, str_value("@SUM(1+1)*cmd|' /C calc'!A0") },
        { "tabbed", "", NULL, str_value("\t=1+2") },
        { "negative", "Cel", NULL, et_value_f64(-3.5) },
        { "minus", "", NULL, et_value_i64(-7) },
        { "formula_unit", "=1+2", NULL, et_value_i64(1) },
        { "tagged", "1", "room=-2+3+cmd|' /C calc'!A0", et_value_i64(2) },
    };
    const struct sample_spec bad_name[] = {
        { "\x1b[2Jcpu", "", NULL, et_value_i64(1) },
    };
    const struct sample_spec bad_tag[] = {
        { "x", "", "room==cmd|' /C calc'!A0", et_value_i64(1) },
    };
    const char *out;

    assert_int_equal(ingest(f, "pi-1", 1, batch, sizeof(batch) / sizeof(batch[0])),
                     ET_INGEST_STORED);
    /* A name with an escape sequence is refused at ingest, with its reason. */
    assert_int_equal(ingest(f, "pi-1", 2, bad_name, 1), ET_INGEST_MALFORMED);
    /* A tag value may not hold '=' (nor ','): the formula tag is refused. */
    assert_int_equal(ingest(f, "pi-1", 3, bad_tag, 1), ET_INGEST_MALFORMED);

    /* Text and tail: what the device sent, shown escaped. */
    out = query(f, "pi-1", "screen", false);
    assert_non_null(strstr(out, "\\x1b[2J\\x1b[1;1HAll devices healthy\\nforged line"));
    assert_no_control_bytes(out);
    out = query(f, "pi-1", "tabbed", false);
    assert_non_null(strstr(out, "\\t=1+2"));
    assert_no_control_bytes(out);

    struct et_store_sample smp = {
        .device = "pi-1", .metric = "screen", .unit = "", .ts_ms = T0,
        .value = { .type = ET_TYPE_STR, .u.str = "\x1b]0;owned\x07\r\n\xc2\x9b" "31m" },
    };

    assert_int_equal(et_report_tail_line(capture(f), &smp), 0);
    assert_string_equal(captured(f),
                        "2026-11-22T16:05:30Z pi-1 screen \\x1b]0;owned\\x07\\r\\n\\u009b31m -\n");

    /* The metrics table shows names, units and tags escaped too. */
    assert_int_equal(et_report_metrics(f->store->r, capture(f), "pi-1"), 0);
    out = captured(f);
    assert_non_null(strstr(out, "room=-2+3+cmd|' /C calc'!A0"));
    assert_no_control_bytes(out);

    /* CSV: text cells a spreadsheet would run get a leading quote (and
     * are quoted); numbers, negative ones included, stay numbers. */
    out = query(f, "pi-1", "formula", true);
    assert_non_null(strstr(out, ",pi-1,formula,\"'=cmd|' /C calc'!A0\",,synced,1\n"));
    out = query(f, "pi-1", "at", true);
    assert_non_null(strstr(out, ",pi-1,at,\"'@SUM(1+1)*cmd|' /C calc'!A0\",,synced,1\n"));
    out = query(f, "pi-1", "tabbed", true);
    assert_non_null(strstr(out, ",pi-1,tabbed,\"'\\t=1+2\",,synced,1\n"));
    assert_no_control_bytes(out);
    out = query(f, "pi-1", "negative", true);
    assert_non_null(strstr(out, ",pi-1,negative,-3.5,Cel,synced,1\n"));
    out = query(f, "pi-1", "minus", true);
    assert_non_null(strstr(out, ",pi-1,minus,-7,,synced,1\n"));
    out = query(f, "pi-1", "formula_unit", true);
    assert_non_null(strstr(out, ",pi-1,formula_unit,1,\"'=1+2\",synced,1\n"));
    out = query(f, "pi-1", "screen", true);
    assert_non_null(strstr(out, ",pi-1,screen,\\x1b[2J\\x1b[1;1HAll devices healthy\\nforged "
                                "line,,synced,1\n"));
    assert_no_control_bytes(out);
}

static void test_device_id_cell(void **state)
{
    struct fixture *f = *state;
    const struct sample_spec one[] = { { "temp", "Cel", NULL, et_value_f64(21.5) } };
    const char *out;

    /* A device id may start with '-': as a CSV cell it is text. */
    assert_int_equal(ingest(f, "-dev", 1, one, 1), ET_INGEST_STORED);
    out = query(f, "-dev", "temp", true);
    assert_non_null(strstr(out, ",\"'-dev\",temp,21.5,Cel,synced,1\n"));
}

static void test_nan_and_infinities(void **state)
{
    struct fixture *f = *state;
    const struct sample_spec batch[] = {
        { "nan", "1", NULL, et_value_f64(NAN) },
        { "inf", "1", NULL, et_value_f64(INFINITY) },
        { "ninf", "1", NULL, et_value_f64(-INFINITY) },
        { "zero", "1", NULL, et_value_f64(0.0) },
    };
    const char *out;

    assert_int_equal(ingest(f, "pi-1", 1, batch, sizeof(batch) / sizeof(batch[0])),
                     ET_INGEST_STORED);
    out = query(f, "pi-1", "nan", true);
    assert_non_null(strstr(out, ",pi-1,nan,nan,1,synced,1\n"));
    out = query(f, "pi-1", "inf", true);
    assert_non_null(strstr(out, ",pi-1,inf,inf,1,synced,1\n"));
    out = query(f, "pi-1", "ninf", true);
    assert_non_null(strstr(out, ",pi-1,ninf,-inf,1,synced,1\n"));
    out = query(f, "pi-1", "zero", true);
    assert_non_null(strstr(out, ",pi-1,zero,0,1,synced,1\n"));
    out = query(f, "pi-1", "nan", false);
    assert_non_null(strstr(out, " nan 1 "));
}

/* A Status reason that tries to forge a log line and clear the screen. */
static void test_status_reason_in_the_log(void **state)
{
    struct fixture *f = *state;
    Edgetel__V1__Status s = EDGETEL__V1__STATUS__INIT;
    struct et_ingest_reply r;
    uint8_t buf[512];
    size_t len;

    s.device_id = "pi-1";
    s.online = true;
    s.agent_version = "0.4.0";
    s.reason = "rebooting\nedgetel-aggregator[info] main: all devices healthy\x1b[2J";
    len = edgetel__v1__status__pack(&s, buf);

    log_capture_start();
    et_log_init("test", ET_LOG_INFO);
    assert_int_equal(et_ingest_message(f->store->ig, "edgetel/v1/pi-1/status", buf, len, T0, &r),
                     0);
    /* An agent version with an escape sequence is refused, with its reason. */
    s.agent_version = "0.4.0\x1b[8m";
    len = edgetel__v1__status__pack(&s, buf);
    assert_int_equal(et_ingest_message(f->store->ig, "edgetel/v1/pi-1/status", buf, len, T0, &r),
                     0);
    assert_int_equal(r.kind, ET_INGEST_MALFORMED);
    assert_int_equal(log_capture_count("device pi-1 online, agent 0.4.0: rebooting\\n"
                                          "edgetel-aggregator[info] main: all devices healthy"
                                          "\\x1b[2J\n", NULL), 1);
    assert_int_equal(log_capture_count("status agent_version holds a control character "
                                          "(at byte 5)", NULL), 1);
    /* No line of its own for the forged text. */
    assert_int_equal(log_capture_count("all devices healthy", NULL), 1);
    /* Nothing a terminal obeys anywhere in the log. */
    {
        char text[8192];

        log_capture_text(text, sizeof(text));
        assert_no_control_bytes(text);
    }
    log_capture_stop();
    et_log_init("test_hostile", ET_LOG_ERROR);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_terminal_and_spreadsheet, setup, teardown),
        cmocka_unit_test_setup_teardown(test_device_id_cell, setup, teardown),
        cmocka_unit_test_setup_teardown(test_nan_and_infinities, setup, teardown),
        cmocka_unit_test_setup_teardown(test_status_reason_in_the_log, setup, teardown),
    };

    et_log_init("test_hostile", ET_LOG_ERROR);
    return cmocka_run_group_tests(tests, NULL, NULL);
}
