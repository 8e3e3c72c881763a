/*
 * A board's config reports through the relay: checked, recorded, said for
 * a person. See config_relay.h.
 */
#include "config_relay_priv.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "edgetel/codec.h"
#include "edgetel/log.h"

#define REPORT_LEAF "config/report"

/* FNV-1a of a device id, never 0 (an empty slot). */
static uint64_t relay_key(const char *device)
{
    uint64_t h = 0xcbf29ce484222325ULL;

    for (const unsigned char *p = (const unsigned char *)device; *p; p++)
        h = (h ^ *p) * 0x100000001b3ULL;
    return h ? h : 1;
}

/* Whether a refusal of device's report is to be logged now; *quiet: those not logged since. */
static bool relay_log_due(struct et_config_relay *r, const char *device, int64_t now_ms,
                          uint64_t *quiet)
{
    uint64_t key = relay_key(device);
    struct relay_log_slot *s = &r->log_slots[key & (RELAY_LOG_SLOTS - 1)];

    if (s->key != key)
        *s = (struct relay_log_slot){ .key = key };
    if (now_ms < s->next_ms) {
        s->quiet++;
        return false;
    }
    *quiet = s->quiet;
    s->quiet = 0;
    s->next_ms = now_ms + ET_CONFIG_LOG_EVERY_MS;
    return true;
}

/* ---- reports ------------------------------------------------------------------ */

/* Refuse a device's report: counted, and logged at most once a minute per device. */
static int relay_refuse(struct et_config_relay *r, const char *device, const char *topic,
                        const char *why, int64_t now_ms, enum et_config_relay_kind *kind)
{
    uint64_t quiet = 0;
    char more[64] = "";

    r->stats.refused++;
    *kind = ET_CONFIG_RELAY_REFUSED;
    if (!relay_log_due(r, device, now_ms, &quiet))
        return 0;
    if (quiet)
        snprintf(more, sizeof(more), " (%" PRIu64 " more refused since the last such line)",
                 quiet);
    et_warn("config", "device %s: refused a config report on %s: %s%s",
            device[0] ? device : "?", topic, why, more);
    return 0;
}

/* Say a recorded report for a person: once, by the aggregator that recorded it first. */
static void relay_say(const Edgetel__V1__ConfigReport *rep, bool news)
{
    bool bad = (int)rep->result == ET_CONFIG_RESULT_REJECTED ||
               (int)rep->result == ET_CONFIG_RESULT_REVERTED;
    char version[32] = "a config", runs[48] = "";

    if (rep->version)
        snprintf(version, sizeof(version), "config v%" PRIu64, (uint64_t)rep->version);
    if (rep->running_version != rep->version && rep->running_version)
        snprintf(runs, sizeof(runs), " (runs v%" PRIu64 ")", (uint64_t)rep->running_version);
    else if (rep->running_version != rep->version)
        snprintf(runs, sizeof(runs), " (runs its local file)");
    et_log(!news ? ET_LOG_DEBUG : bad ? ET_LOG_WARN : ET_LOG_INFO, "config", "%s on %s: %s%s%s%s",
           version, rep->device_id, et_config_result_name(rep->result),
           rep->reason[0] ? ": " : "", rep->reason, runs);
}

static int relay_report(struct et_config_relay *r, const char *device, const char *topic,
                        const void *payload, size_t len, int64_t now_ms,
                        enum et_config_relay_kind *kind)
{
    Edgetel__V1__ConfigReport *rep = NULL;
    struct et_store_config_report row;
    struct et_budget_verdict v;
    bool added = false, latest = false;
    char why[256];
    int ret;

    if (len == 0) {
        et_debug("config", "device %s: retained config report cleared", device);
        return 0;   /* ignored */
    }
    et_budget_charge(r->budget, device, 1, 0, now_ms, &v);
    if (v.over) {
        r->stats.refused++;
        *kind = ET_CONFIG_RELAY_REFUSED;
        if (v.log)
            et_warn("config", "device %s sends config reports faster than %d a second (burst "
                    "%d): %" PRIu64 " refused since the last such line", device,
                    ET_CONFIG_REPORTS_PER_S, ET_CONFIG_REPORT_BURST, v.refused);
        return 0;
    }
    if (et_wire_decode_config_report(payload, len, &rep, why, sizeof(why)) < 0)
        return relay_refuse(r, device, topic, why, now_ms, kind);
    if (strcmp(rep->device_id, device) != 0) {
        snprintf(why, sizeof(why), "it names device \"%.64s\", not its topic's",
                 rep->device_id);
        ret = relay_refuse(r, device, topic, why, now_ms, kind);
        goto out;
    }
    row = (struct et_store_config_report){
        .device = device,
        .version = rep->version,
        .result = (int)rep->result,
        .reason = rep->reason,
        .device_ms = rep->time_ms,
        .clock_synced = rep->clock_synced,
        .running_version = rep->running_version,
        .received_ms = now_ms,
    };
    ret = et_store_config_report_record(r->sc, &row, ET_CONFIG_HISTORY_KEEP, &added, &latest);
    /* The latest report is the newest word on what the board runs. */
    if (ret == 0 && latest) {
        ret = et_store_config_device_set(r->sc, device, NULL, rep->running_version);
        if (ret == -ENOENT)
            ret = 0;   /* not heard from yet: its report says it */
    }
    if (ret < 0) {
        ret = relay_store_failed(r, ret, "recording a config report", now_ms);
        goto out;
    }
    r->stats.reports++;
    *kind = ET_CONFIG_RELAY_RECORDED;
    relay_say(rep, added);
out:
    edgetel__v1__config_report__free_unpacked(rep, NULL);
    return ret;
}

int et_config_relay_message(struct et_config_relay *r, const char *topic, const void *payload,
                            size_t len, int64_t now_ms, enum et_config_relay_kind *kind)
{
    char device[ET_DEVICE_ID_MAX + 1] = "";
    enum et_config_relay_kind ignored;
    const char *leaf = NULL;
    size_t tn = strlen(topic), ln = strlen(REPORT_LEAF);
    int ret;

    if (!kind)
        kind = &ignored;
    *kind = ET_CONFIG_RELAY_IGNORED;
    ret = et_ingest_parse_topic(r->root, topic, device, &leaf);
    if (ret == -EINVAL && tn > ln + 1 && topic[tn - ln - 1] == '/' &&
        strcmp(topic + tn - ln, REPORT_LEAF) == 0)
        return relay_refuse(r, "", topic, "the topic has no valid device id level", now_ms,
                            kind);
    if (ret < 0 || strcmp(leaf, REPORT_LEAF) != 0)
        return 0;
    return relay_report(r, device, topic, payload, len, now_ms, kind);
}
