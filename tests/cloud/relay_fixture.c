/*
 * The config relay's test fixture. See relay_fixture.h.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "relay_fixture.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "edgetel/codec.h"
#include "edgetel/store_open.h"

int relay_fixture_publish(void *ctx, const char *topic, const uint8_t *payload, size_t len)
{
    struct relay_fixture *rf = ctx;
    struct relay_sent *s;

    if (rf->take == 0)
        return -EAGAIN;
    if (rf->take > 0)
        rf->take--;
    assert_true(rf->n_sent < RELAY_SENT_MAX);
    assert_true(len < sizeof(s->payload));
    s = &rf->sent[rf->n_sent++];
    snprintf(s->topic, sizeof(s->topic), "%s", topic);
    memcpy(s->payload, payload, len);
    s->payload[len] = '\0';
    s->len = len;
    return (int)rf->n_sent;   /* a token, as the MQTT seam gives */
}

int relay_fixture_setup(void **state)
{
    struct relay_fixture *rf = calloc(1, sizeof(*rf));

    assert_non_null(rf);
    rf->f = cloud_fixture_create("relay");
    rf->sc = et_store_config(rf->f->store);
    rf->take = -1;
    et_ingest_set_config(rf->f->ig, rf->sc);
    assert_int_equal(et_config_relay_create(&rf->relay, rf->sc, CLOUD_ROOT, relay_fixture_publish,
                                            rf), 0);
    log_capture_start();
    et_log_init("test", ET_LOG_INFO);
    *state = rf;
    return 0;
}

int relay_fixture_teardown(void **state)
{
    struct relay_fixture *rf = *state;

    log_capture_stop();
    et_config_relay_destroy(rf->relay);
    cloud_fixture_destroy(rf->f);
    free(rf);
    return 0;
}

uint64_t relay_push(struct relay_fixture *rf, enum et_config_target kind, const char *target)
{
    struct et_store_writer *w = rf->f->w;
    char bytes[64];
    uint64_t top = 0;

    assert_int_equal(et_store_begin(w), 0);
    assert_int_equal(et_store_desired_top(rf->sc, &top), 0);
    snprintf(bytes, sizeof(bytes), "signed config v%" PRIu64, top + 1);
    assert_int_equal(et_store_desired_add(rf->sc, &(struct et_store_desired){
        .version = top + 1,
        .kind = kind,
        .target = target,
        .signed_config = (const uint8_t *)bytes,
        .signed_len = strlen(bytes),
        .key_id = "0011223344556677",
        .created_ms = CLOUD_NOW,
        .pushed_by = "tester@host",
        .source = "/etc/edgetel/agent.conf",
    }), 0);
    assert_int_equal(et_store_commit(w), 0);
    return top + 1;
}

void relay_status(struct relay_fixture *rf, const char *device, uint64_t running,
                  const char *const *groups, size_t n, int64_t now_ms)
{
    struct et_status st = {
        .device_id = device, .online = true, .wall_ms = CLOUD_BASE_WALL, .clock_synced = true,
        .config_version = running, .groups = groups, .n_groups = n,
    };
    struct et_ingest_reply r;
    char topic[128];
    uint8_t *buf;
    size_t len;

    assert_int_equal(et_wire_encode_status(&st, &buf, &len), 0);
    snprintf(topic, sizeof(topic), CLOUD_ROOT "/v1/%s/status", device);
    assert_int_equal(et_ingest_message(rf->f->ig, topic, buf, len, now_ms, &r), 0);
    free(buf);
    assert_int_equal(r.kind, ET_INGEST_STATUS);
    assert_true(r.config_status);
    assert_int_equal(r.config_version, running);
    assert_int_equal(et_config_relay_status(rf->relay, r.device, r.config_version, now_ms), 0);
}

void relay_poll(struct relay_fixture *rf, int64_t now_ms)
{
    assert_int_equal(et_config_relay_poll(rf->relay, now_ms), 0);
}

size_t relay_sent_to(const struct relay_fixture *rf, const char *device, uint64_t *version)
{
    char topic[128];
    size_t n = 0;

    snprintf(topic, sizeof(topic), CLOUD_ROOT "/v1/%s/config", device);
    for (size_t i = 0; i < rf->n_sent; i++) {
        if (strcmp(rf->sent[i].topic, topic) != 0)
            continue;
        n++;
        if (version)
            assert_int_equal(sscanf(rf->sent[i].payload, "signed config v%" SCNu64, version), 1);
    }
    return n;
}

void relay_sent_clear(struct relay_fixture *rf)
{
    rf->n_sent = 0;
}

uint8_t *relay_pack_report(const char *device, uint64_t version, int result, const char *reason,
                           uint64_t running, size_t *len)
{
    Edgetel__V1__ConfigReport rep = EDGETEL__V1__CONFIG_REPORT__INIT;
    uint8_t *buf;

    rep.device_id = (char *)device;
    rep.version = version;
    rep.result = (Edgetel__V1__ConfigResult)result;
    rep.reason = (char *)reason;
    /* Distinct per (version, result), later for a later outcome. */
    rep.time_ms = CLOUD_BASE_WALL + (int64_t)version * 1000 + result;
    rep.clock_synced = true;
    rep.running_version = running;
    *len = edgetel__v1__config_report__get_packed_size(&rep);
    buf = malloc(*len ? *len : 1);
    assert_non_null(buf);
    edgetel__v1__config_report__pack(&rep, buf);
    return buf;
}

enum et_config_relay_kind relay_report(struct et_config_relay *relay, const char *device,
                                       uint64_t version, int result, const char *reason,
                                       uint64_t running, int64_t now_ms)
{
    enum et_config_relay_kind kind = ET_CONFIG_RELAY_IGNORED;
    char topic[128];
    size_t len;
    uint8_t *buf = relay_pack_report(device, version, result, reason, running, &len);

    snprintf(topic, sizeof(topic), CLOUD_ROOT "/v1/%s/config/report", device);
    assert_int_equal(et_config_relay_message(relay, topic, buf, len, now_ms, &kind), 0);
    free(buf);
    return kind;
}

struct device_copy {
    struct et_store_device_config dc;
    char device[80], groups[ET_STORE_CONFIG_GROUPS_TEXT_MAX], reason[256];
};

static int copy_cb(void *ctx, const struct et_store_device_config *dc)
{
    struct device_copy *c = ctx;

    c->dc = *dc;
    snprintf(c->device, sizeof(c->device), "%s", dc->device);
    snprintf(c->groups, sizeof(c->groups), "%s", dc->groups);
    snprintf(c->reason, sizeof(c->reason), "%s", dc->report.reason);
    return 0;
}

struct et_store_device_config relay_device(struct et_store_config *sc, const char *device)
{
    static struct device_copy c;

    memset(&c, 0, sizeof(c));
    assert_int_equal(et_store_config_devices(sc, device, copy_cb, &c), 0);
    c.dc.device = c.device;
    c.dc.groups = c.groups;
    c.dc.report.device = c.device;
    c.dc.report.reason = c.reason;
    return c.dc;
}
