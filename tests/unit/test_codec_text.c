/*
 * Wire codec: every string a device sends is checked as text at decode.
 * protobuf-c copies a string field's bytes as they come (no UTF-8 check,
 * and a NUL inside cuts the C string short), so the codec refuses
 * invalid UTF-8 and NUL bytes in every string, and control characters
 * in names (metric, unit, tag, agent version), with a reason naming the
 * field. Free text (a string value, a Status reason) may hold control
 * characters: it is stored as sent and escaped wherever it is shown.
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

#include "edgetel/codec.h"

/* Replace the first occurrence of the marker in buf (same length): how a
 * test puts bytes protobuf-c's packer cannot (a NUL) into a string. */
static void patch(uint8_t *buf, size_t len, const char *marker, const char *bytes, size_t n)
{
    size_t m = strlen(marker);

    assert_int_equal(m, n);
    for (size_t i = 0; i + m <= len; i++) {
        if (memcmp(buf + i, marker, m) == 0) {
            memcpy(buf + i, bytes, n);
            return;
        }
    }
    fail_msg("marker \"%s\" not in the message", marker);
}

struct hand_batch {
    Edgetel__V1__Batch msg;
    Edgetel__V1__Metric metric, *metrics[1];
    Edgetel__V1__Tag tag, *tags[1];
    Edgetel__V1__Sample num, str, *samples[2];
};

/* A valid batch: one metric with one tag, a number and a string sample. */
static void hand_batch_init(struct hand_batch *h)
{
    memset(h, 0, sizeof(*h));
    h->msg = (Edgetel__V1__Batch)EDGETEL__V1__BATCH__INIT;
    h->metric = (Edgetel__V1__Metric)EDGETEL__V1__METRIC__INIT;
    h->tag = (Edgetel__V1__Tag)EDGETEL__V1__TAG__INIT;
    h->num = (Edgetel__V1__Sample)EDGETEL__V1__SAMPLE__INIT;
    h->str = (Edgetel__V1__Sample)EDGETEL__V1__SAMPLE__INIT;
    h->tag.key = "room";
    h->tag.value = "kitchen";
    h->tags[0] = &h->tag;
    h->metric.name = "sensor.state";
    h->metric.unit = "1";
    h->metric.n_tags = 1;
    h->metric.tags = h->tags;
    h->metrics[0] = &h->metric;
    h->num.value_case = EDGETEL__V1__SAMPLE__VALUE_F64;
    h->num.f64 = -3.5;
    h->str.value_case = EDGETEL__V1__SAMPLE__VALUE_STR;
    h->str.str = "ok";
    h->samples[0] = &h->num;
    h->samples[1] = &h->str;
    h->msg.device_id = "dev-1";
    h->msg.seq = 1;
    h->msg.n_metrics = 1;
    h->msg.metrics = h->metrics;
    h->msg.n_samples = 2;
    h->msg.samples = h->samples;
}

static uint8_t *pack_batch(const struct hand_batch *h, size_t *len)
{
    uint8_t *buf = malloc(edgetel__v1__batch__get_packed_size(&h->msg) + 1);

    assert_non_null(buf);
    *len = edgetel__v1__batch__pack(&h->msg, buf);
    return buf;
}

/* A decoder under test: 0 or -EBADMSG with err, the message freed either way. */
typedef int (*decode_fn)(const uint8_t *buf, size_t len, char *err, size_t errlen);

static int decode_batch(const uint8_t *buf, size_t len, char *err, size_t errlen)
{
    Edgetel__V1__Batch *d = NULL;
    int rc = et_wire_decode_batch(buf, len, &d, err, errlen);

    if (rc)
        assert_null(d);
    et_wire_free_batch(d);
    return rc;
}

static int decode_status(const uint8_t *buf, size_t len, char *err, size_t errlen)
{
    Edgetel__V1__Status *d = NULL;
    int rc = et_wire_decode_status(buf, len, &d, err, errlen);

    if (rc)
        assert_null(d);
    if (d)
        edgetel__v1__status__free_unpacked(d, NULL);
    return rc;
}

/*
 * Decode buf (freed here) with marker, if any, replaced by n bytes:
 * expect the reason, or success when reason is NULL.
 */
static void expect(decode_fn decode, uint8_t *buf, size_t len, const char *marker,
                   const char *bytes, size_t n, const char *reason)
{
    char err[200] = "";
    int rc;

    if (marker)
        patch(buf, len, marker, bytes, n);
    rc = decode(buf, len, err, sizeof(err));
    free(buf);
    if (!reason && rc != 0)
        fail_msg("refused: %s", err);
    if (reason && rc != -EBADMSG)
        fail_msg("accepted, want \"%s\"", reason);
    if (reason && strcmp(err, reason) != 0)
        fail_msg("reason \"%s\", want \"%s\"", err, reason);
}

static void expect_batch(const struct hand_batch *h, const char *marker, const char *bytes,
                         size_t n, const char *reason)
{
    size_t len;
    uint8_t *buf = pack_batch(h, &len);

    expect(decode_batch, buf, len, marker, bytes, n, reason);
}

static void batch_strings_must_be_text(void **state)
{
    struct hand_batch h;

    hand_batch_init(&h);
    expect_batch(&h, NULL, NULL, 0, NULL);

    /* NUL bytes: in the device id, a name, a unit, a tag, a string value. */
    h.msg.device_id = "dev-1XXX";
    expect_batch(&h, "dev-1XXX", "dev-1\0..", 8, "device_id holds a NUL byte (at byte 5)");
    hand_batch_init(&h);
    h.metric.name = "sensorXstate";
    expect_batch(&h, "sensorXstate", "sensor\0state", 12, "metric 0: name holds a NUL byte (at byte 6)");
    hand_batch_init(&h);
    h.metric.unit = "CelX";
    expect_batch(&h, "CelX", "Cel\0", 4, "metric 0: unit holds a NUL byte (at byte 3)");
    hand_batch_init(&h);
    h.tag.value = "kitchenX";
    expect_batch(&h, "kitchenX", "kitchen\0", 8,
                 "metric 0: tag 0: value holds a NUL byte (at byte 7)");
    hand_batch_init(&h);
    h.str.str = "okXhidden";
    expect_batch(&h, "okXhidden", "ok\0hidden", 9,
                 "sample 1: string value holds a NUL byte (at byte 2)");

    /* Invalid UTF-8, which protobuf-c lets through. */
    hand_batch_init(&h);
    h.metric.name = "sensor\xc0\xaf";
    expect_batch(&h, NULL, NULL, 0, "metric 0: name is not valid UTF-8 (at byte 6)");
    hand_batch_init(&h);
    h.tag.key = "ro\xffom";
    expect_batch(&h, NULL, NULL, 0, "metric 0: tag 0: key is not valid UTF-8 (at byte 2)");
    hand_batch_init(&h);
    h.str.str = "\xed\xa0\x80";
    expect_batch(&h, NULL, NULL, 0, "sample 1: string value is not valid UTF-8 (at byte 0)");

    /* Control characters: refused in names, which no honest agent makes
     * with them, kept in a string value (shown escaped). */
    hand_batch_init(&h);
    h.metric.name = "\x1b[2Jsensor";
    expect_batch(&h, NULL, NULL, 0, "metric 0: name holds a control character (at byte 0)");
    hand_batch_init(&h);
    h.metric.unit = "C\xc2\x9b";
    expect_batch(&h, NULL, NULL, 0, "metric 0: unit holds a control character (at byte 1)");
    hand_batch_init(&h);
    h.tag.value = "a\nb";
    expect_batch(&h, NULL, NULL, 0, "metric 0: tag 0: value holds a control character (at byte 1)");
    hand_batch_init(&h);
    h.str.str = "\x1b[2J\x1b[1;1Hall fine\n";
    expect_batch(&h, NULL, NULL, 0, NULL);
    h.str.str = "=cmd|' /C calc'!A0";
    expect_batch(&h, NULL, NULL, 0, NULL);
    h.metric.name = "\xc3\xa9t\xc3\xa9.temp";   /* UTF-8 names are fine */
    h.metric.unit = "\xc2\xb0" "C";
    expect_batch(&h, NULL, NULL, 0, NULL);
}

static uint8_t *pack_status(const Edgetel__V1__Status *s, size_t *len)
{
    uint8_t *buf = malloc(edgetel__v1__status__get_packed_size(s) + 1);

    assert_non_null(buf);
    *len = edgetel__v1__status__pack(s, buf);
    return buf;
}

static void expect_status(const Edgetel__V1__Status *s, const char *marker, const char *bytes,
                          size_t n, const char *reason)
{
    size_t len;
    uint8_t *buf = pack_status(s, &len);

    expect(decode_status, buf, len, marker, bytes, n, reason);
}

static void status_strings_must_be_text(void **state)
{
    Edgetel__V1__Status s = EDGETEL__V1__STATUS__INIT;

    s.device_id = "pi-1";
    s.agent_version = "0.4.0";
    s.reason = "clock not synchronised";
    expect_status(&s, NULL, NULL, 0, NULL);

    /* A newline in the reason is text (the log escapes it); a NUL is not. */
    s.reason = "rebooting\nedgetel-aggregator[info] main: all devices healthy";
    expect_status(&s, NULL, NULL, 0, NULL);
    s.reason = "rebootingX";
    expect_status(&s, "rebootingX", "rebooting\0", 10, "status reason holds a NUL byte (at byte 9)");
    s.reason = "bad \xfe";
    expect_status(&s, NULL, NULL, 0, "status reason is not valid UTF-8 (at byte 4)");
    s.reason = "";
    s.agent_version = "0.4.0\x1b[8m";
    expect_status(&s, NULL, NULL, 0,
                  "status agent_version holds a control character (at byte 5)");
    s.agent_version = "0.4.0";
    s.device_id = "pi-1XX";
    expect_status(&s, "pi-1XX", "pi-1\0\0", 6, "status device_id holds a NUL byte (at byte 4)");
    s.device_id = "pi-1";

    /* Groups: text, or the Status is refused whole; a control character
     * passes here, for ingest to ignore the list as no names. */
    {
        char *groups[] = { "lab", "roofX" };

        s.groups = groups;
        s.n_groups = 2;
        expect_status(&s, NULL, NULL, 0, NULL);
        expect_status(&s, "roofX", "roof\0", 5, "status group holds a NUL byte (at byte 4)");
        groups[1] = "roof\xc3";
        expect_status(&s, NULL, NULL, 0, "status group is not valid UTF-8 (at byte 4)");
        groups[1] = "roof\x1b";
        expect_status(&s, NULL, NULL, 0, NULL);
    }
}

static int decode_report(const uint8_t *buf, size_t len, char *err, size_t errlen)
{
    Edgetel__V1__ConfigReport *d = NULL;
    int rc = et_wire_decode_config_report(buf, len, &d, err, errlen);

    if (rc)
        assert_null(d);
    if (d)
        edgetel__v1__config_report__free_unpacked(d, NULL);
    return rc;
}

static void expect_report(const Edgetel__V1__ConfigReport *r, const char *marker,
                          const char *bytes, size_t n, const char *reason)
{
    uint8_t *buf = malloc(edgetel__v1__config_report__get_packed_size(r) + 1);
    size_t len;

    assert_non_null(buf);
    len = edgetel__v1__config_report__pack(r, buf);
    expect(decode_report, buf, len, marker, bytes, n, reason);
}

static void config_report_is_checked(void **state)
{
    Edgetel__V1__ConfigReport r = EDGETEL__V1__CONFIG_REPORT__INIT;
    static char reason[ET_WIRE_CONFIG_REPORT_MAX];

    r.device_id = "pi-1";
    r.version = 7;
    r.result = EDGETEL__V1__CONFIG_RESULT__CONFIG_RESULT_REVERTED;
    r.reason = "uplink did not reconnect\nwithin 2m";
    expect_report(&r, NULL, NULL, 0, NULL);
    r.reason = "revertedX";
    expect_report(&r, "revertedX", "reverted\0", 9,
                  "config report reason holds a NUL byte (at byte 8)");
    r.reason = "";
    r.device_id = "pi\x1b" "1";
    expect_report(&r, NULL, NULL, 0,
                  "config report device_id holds a control character (at byte 2)");
    r.device_id = "../etc";
    expect_report(&r, NULL, NULL, 0, "config report names no valid device id");
    r.device_id = "pi-1";
    r.result = EDGETEL__V1__CONFIG_RESULT__CONFIG_RESULT_UNSPECIFIED;
    expect_report(&r, NULL, NULL, 0, "config report has no known result");
    r.result = EDGETEL__V1__CONFIG_RESULT__CONFIG_RESULT_COMMITTED;
    memset(reason, 'x', sizeof(reason) - 1);
    r.reason = reason;
    expect_report(&r, NULL, NULL, 0, "config report of 4108 bytes is over the limit of 4096");
}

static void ack_device_id_must_be_text(void **state)
{
    Edgetel__V1__Ack *a = NULL;
    char err[200] = "";
    uint8_t *buf;
    size_t len;

    assert_int_equal(et_wire_encode_ack("pi-1XXXX", NULL, 3, NULL, 0, &buf, &len), 0);
    patch(buf, len, "pi-1XXXX", "pi-1\0pi2", 8);
    assert_int_equal(et_wire_decode_ack(buf, len, &a, err, sizeof(err)), -EBADMSG);
    assert_null(a);
    assert_string_equal(err, "ack device_id holds a NUL byte (at byte 4)");
    free(buf);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(batch_strings_must_be_text),
        cmocka_unit_test(status_strings_must_be_text),
        cmocka_unit_test(ack_device_id_must_be_text),
        cmocka_unit_test(config_report_is_checked),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
