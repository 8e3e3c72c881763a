/*
 * The config relay: desired configs to the boards, on a Status and in the
 * poll. See config_relay.h for the rules; the shared ones are in
 * config_rules.c, a board's reports in config_report.c.
 */
#include "config_relay_priv.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "edgetel/budget.h"
#include "edgetel/codec.h"
#include "edgetel/log.h"

int et_config_relay_create(struct et_config_relay **out, struct et_store_config *sc,
                           const char *topic_root, et_config_publish_fn publish, void *ctx)
{
    const struct et_budget_cfg reports = {
        .samples_per_s = ET_CONFIG_REPORTS_PER_S, .sample_burst = ET_CONFIG_REPORT_BURST,
    };
    struct et_config_relay *r;

    *out = NULL;
    if (!sc || !publish || !et_ingest_root_valid(topic_root))
        return -EINVAL;
    r = calloc(1, sizeof(*r));
    if (!r)
        return -ENOMEM;
    r->page = calloc(RELAY_PAGE, sizeof(*r->page));
    r->retry = calloc(RELAY_RETRY_MAX, sizeof(*r->retry));
    r->log_slots = calloc(RELAY_LOG_SLOTS, sizeof(*r->log_slots));
    if (!r->page || !r->retry || !r->log_slots || et_budget_create(&r->budget, &reports) < 0) {
        et_config_relay_destroy(r);
        return -ENOMEM;
    }
    r->sc = sc;
    memcpy(r->root, topic_root, strlen(topic_root) + 1);
    r->publish = publish;
    r->ctx = ctx;
    *out = r;
    return 0;
}

void et_config_relay_destroy(struct et_config_relay *r)
{
    if (!r)
        return;
    et_budget_destroy(r->budget);
    free(r->log_slots);
    free(r->retry);
    free(r->rows);
    free(r->page);
    free(r->bytes);
    free(r);
}

const struct et_config_relay_stats *et_config_relay_stats(const struct et_config_relay *r)
{
    return &r->stats;
}

/* ---- a failing store ---------------------------------------------------------- */

int relay_store_failed(struct et_config_relay *r, int ret, const char *what, int64_t now_ms)
{
    char more[64] = "";

    r->stats.store_errors++;
    if (now_ms < r->store_next_log_ms) {
        r->store_quiet++;
        return ret;
    }
    if (r->store_quiet)
        snprintf(more, sizeof(more), "; %" PRIu64 " more failures since the last such line",
                 r->store_quiet);
    et_error("config", "the store failed %s: %s (%s); configs are sent again once it works%s",
             what, strerror(-ret), et_store_config_last_error(r->sc), more);
    r->store_quiet = 0;
    r->store_next_log_ms = now_ms + ET_CONFIG_LOG_EVERY_MS;
    return ret;
}

/* ---- sending ---------------------------------------------------------------- */

static const char *target_kind_name(enum et_config_target kind)
{
    return kind == ET_CONFIG_TARGET_GROUP ? "group" : "device";
}

static int copy_device(void *ctx, const struct et_store_device_config *dc)
{
    struct relay_device *d = ctx;

    snprintf(d->id, sizeof(d->id), "%s", dc->device);
    snprintf(d->groups, sizeof(d->groups), "%s", dc->groups);
    d->running = dc->running_version;
    d->has_report = dc->has_report;
    d->report = (struct et_store_config_report){
        .version = dc->report.version, .result = dc->report.result,
    };
    return 0;
}

static int copy_bytes(void *ctx, const struct et_store_desired *d)
{
    struct et_config_relay *r = ctx;
    uint8_t *grown;

    if (d->signed_len == 0 || d->signed_len > ET_STORE_CONFIG_SIGNED_MAX) {
        r->bytes_err = -EMSGSIZE;
        return 0;
    }
    grown = realloc(r->bytes, d->signed_len);
    if (!grown) {
        r->bytes_err = -ENOMEM;
        return 0;
    }
    memcpy(grown, d->signed_config, d->signed_len);
    r->bytes = grown;
    r->bytes_len = d->signed_len;
    return 0;
}

/* The bytes of version into r->bytes: 0, -EMSGSIZE (logged), or an error. */
static int relay_load(struct et_config_relay *r, uint64_t version, int64_t now_ms)
{
    int ret;

    if (r->bytes_version == version)
        return 0;
    r->bytes_version = 0;
    r->bytes_err = 0;
    ret = et_store_desired_get(r->sc, version, copy_bytes, r);
    if (ret == 0)
        ret = r->bytes_err;
    if (ret == -EMSGSIZE) {
        et_error("config", "desired config v%" PRIu64 " in the store is empty or larger than "
                 "%d bytes: not sent (push a new version)", version,
                 ET_STORE_CONFIG_SIGNED_MAX);
        return ret;
    }
    if (ret < 0)
        return relay_store_failed(r, ret, "reading a desired config", now_ms);
    r->bytes_version = version;
    return 0;
}

/*
 * Publish desired config version to device. 0 when done (sent, or not to
 * be sent at all, which is logged); -EAGAIN when the MQTT client did not
 * take it; else the store's error.
 */
static int relay_send(struct et_config_relay *r, const char *device, uint64_t version,
                      int64_t now_ms)
{
    char topic[RELAY_TOPIC_MAX];
    int ret;

    if (!et_device_id_valid(device)) {
        /* Only what the store holds gets here: never a topic of a device's making. */
        et_error("config", "desired config v%" PRIu64 ": \"%.64s\" is no device id; not sent",
                 version, device);
        return 0;
    }
    ret = relay_load(r, version, now_ms);
    if (ret == -EMSGSIZE)
        return 0;
    if (ret < 0)
        return ret;
    snprintf(topic, sizeof(topic), "%s/v1/%s/config", r->root, device);
    ret = r->publish(r->ctx, topic, r->bytes, r->bytes_len);
    if (ret < 0) {
        r->stats.not_sent++;
        et_debug("config", "config v%" PRIu64 " for %s not taken by the MQTT client (%s): "
                 "offered again later", version, device, strerror(-ret));
        return -EAGAIN;
    }
    r->stats.sent++;
    return 0;
}

/* The desired config of d, and whether d is to be sent it. */
static int relay_judge(struct et_config_relay *r, const struct relay_device *d,
                       struct et_config_desired *want, bool *send)
{
    int ret = et_config_desired_for(r->sc, d->id, d->groups, want);

    *send = ret == 0 && et_config_behind(want->version, d->running,
                                         d->has_report ? &d->report : NULL);
    return ret;
}

/* A device's state by id (a row whether the store knows it or not). */
static int relay_device_get(struct et_config_relay *r, const char *device, struct relay_device *d)
{
    memset(d, 0, sizeof(*d));
    snprintf(d->id, sizeof(d->id), "%s", device);
    return et_store_config_devices(r->sc, device, copy_device, d);
}

/* Remember a device whose send the MQTT client did not take, for the next poll. */
static void relay_retry_later(struct et_config_relay *r, const char *device)
{
    for (size_t i = 0; i < r->n_retry; i++)
        if (strcmp(r->retry[i], device) == 0)
            return;
    if (r->n_retry < RELAY_RETRY_MAX)
        snprintf(r->retry[r->n_retry++], sizeof(r->retry[0]), "%s", device);
    /* Beyond that the device's next Status is the next chance. */
}

/* A device that runs running: send it its desired config if it is behind. */
static int relay_catch_up(struct et_config_relay *r, const char *device, const uint64_t *running,
                          int64_t now_ms)
{
    struct relay_device d;
    struct et_config_desired want;
    bool send = false;
    int ret;

    ret = relay_device_get(r, device, &d);
    if (ret == 0 && running)
        d.running = *running;   /* the Status's own word */
    if (ret == 0)
        ret = relay_judge(r, &d, &want, &send);
    if (ret < 0)
        return relay_store_failed(r, ret, "finding a device's desired config", now_ms);
    if (!send)
        return 0;
    ret = relay_send(r, device, want.version, now_ms);
    if (ret == -EAGAIN) {
        relay_retry_later(r, device);
        return 0;
    }
    if (ret == 0 && d.running)
        et_info("config", "config v%" PRIu64 " (for %s %s) sent to %s, which runs v%" PRIu64,
                want.version, target_kind_name(want.kind), want.target, device, d.running);
    else if (ret == 0)
        et_info("config", "config v%" PRIu64 " (for %s %s) sent to %s, which runs its local "
                "file only", want.version, target_kind_name(want.kind), want.target, device);
    return ret;
}

int et_config_relay_status(struct et_config_relay *r, const char *device,
                           uint64_t running_version, int64_t now_ms)
{
    return relay_catch_up(r, device, &running_version, now_ms);
}

/* ---- the poll --------------------------------------------------------------- */

static int collect_row(void *ctx, const struct et_store_desired *d)
{
    struct et_config_relay *r = ctx;

    if (r->n_rows == r->cap_rows) {
        size_t cap = r->cap_rows ? r->cap_rows * 2 : 16;
        struct relay_row *grown = realloc(r->rows, cap * sizeof(*grown));

        if (!grown)
            return -ENOMEM;
        r->rows = grown;
        r->cap_rows = cap;
    }
    r->rows[r->n_rows] = (struct relay_row){ .version = d->version, .kind = d->kind };
    snprintf(r->rows[r->n_rows].target, sizeof(r->rows[0].target), "%s", d->target);
    r->n_rows++;
    return 0;
}

static int collect_member(void *ctx, const struct et_store_device_config *dc)
{
    struct et_config_relay *r = ctx;

    if (r->page_n == RELAY_PAGE)
        return -EOVERFLOW;   /* the store gave more than it was asked for */
    return copy_device(&r->page[r->page_n++], dc);
}

/*
 * Offer row's config to d, when it is d's desired config (else a newer
 * one is, and goes in its own row) and d is behind. *sent counts it.
 */
static int relay_offer(struct et_config_relay *r, const struct relay_row *row,
                       const struct relay_device *d, size_t *sent, int64_t now_ms)
{
    struct et_config_desired want;
    bool send = false;
    int ret = relay_judge(r, d, &want, &send);

    if (ret < 0)
        return relay_store_failed(r, ret, "finding a device's desired config", now_ms);
    if (!send || want.version != row->version)
        return 0;
    ret = relay_send(r, d->id, row->version, now_ms);
    if (ret == 0)
        (*sent)++;
    return ret;
}

/* Offer a group's config to its members from after on. */
static int relay_group(struct et_config_relay *r, const struct relay_row *row, const char *after,
                       size_t *sent, int64_t now_ms)
{
    char from[ET_DEVICE_ID_MAX + 1];
    int ret;

    /* A copy: the page the rows go into is what the statement reads it from. */
    snprintf(from, sizeof(from), "%s", after);
    for (;;) {
        r->page_n = 0;
        ret = et_store_config_group_members(r->sc, row->target, from, RELAY_PAGE, collect_member,
                                            r);
        if (ret < 0)
            return relay_store_failed(r, ret, "listing a group's devices", now_ms);
        for (size_t i = 0; i < r->page_n; i++) {
            ret = relay_offer(r, row, &r->page[i], sent, now_ms);
            if (ret == -EAGAIN) {
                r->resume_version = row->version;
                snprintf(r->resume_after, sizeof(r->resume_after), "%s",
                         i ? r->page[i - 1].id : from);
            }
            if (ret < 0)
                return ret;
        }
        if (r->page_n < RELAY_PAGE)
            return 0;
        snprintf(from, sizeof(from), "%s", r->page[r->page_n - 1].id);
    }
}

static int relay_row(struct et_config_relay *r, const struct relay_row *row, int64_t now_ms)
{
    const char *kind = target_kind_name(row->kind);
    struct relay_device d;
    size_t sent = 0;
    int ret;

    if (row->kind == ET_CONFIG_TARGET_GROUP) {
        ret = relay_group(r, row, row->version == r->resume_version ? r->resume_after : "",
                          &sent, now_ms);
    } else {
        ret = relay_device_get(r, row->target, &d);
        if (ret < 0)
            return relay_store_failed(r, ret, "reading a device's config", now_ms);
        ret = relay_offer(r, row, &d, &sent, now_ms);
    }
    if (sent)
        et_info("config", "config v%" PRIu64 " for %s %s sent to %zu device%s", row->version,
                kind, row->target, sent, sent == 1 ? "" : "s");
    else if (ret == 0)
        et_debug("config", "config v%" PRIu64 " for %s %s: no device behind it", row->version,
                 kind, row->target);
    return ret;
}

int et_config_relay_poll(struct et_config_relay *r, int64_t now_ms)
{
    size_t n_retry = r->n_retry;
    int ret;

    /* Devices whose Status found the MQTT client full, first. One that
     * finds it full again goes back on the list, at a place already read. */
    r->n_retry = 0;
    for (size_t i = 0; i < n_retry; i++) {
        char device[ET_DEVICE_ID_MAX + 1];

        memcpy(device, r->retry[i], sizeof(device));
        ret = relay_catch_up(r, device, NULL, now_ms);
        if (ret < 0)
            return ret;
    }
    r->n_rows = 0;
    ret = et_store_desired_after(r->sc, r->seen, collect_row, r);
    if (ret < 0)
        return relay_store_failed(r, ret, "finding new desired configs", now_ms);
    for (size_t i = 0; i < r->n_rows; i++) {
        ret = relay_row(r, &r->rows[i], now_ms);
        if (ret == -EAGAIN)
            return 0;   /* the MQTT client is full or away: on from here next time */
        if (ret < 0)
            return ret;
        r->seen = r->rows[i].version;
        r->resume_version = 0;
    }
    return 0;
}

