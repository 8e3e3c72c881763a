/*
 * edgetelctl config status: what the store holds of pushed configs, per
 * device. The desired config and whether a device is behind are the
 * relay's own rules (config_relay.h), so this shows what the aggregator
 * does. See report.h.
 */
#include "edgetel/report.h"

#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "edgetel/codec.h"
#include "edgetel/config_relay.h"
#include "edgetel/timefmt.h"
#include "table.h"

/* Reports listed under one device's line. */
#define HISTORY_SHOWN 20

/* A device's row, copied out of the store (its callback may not call it). */
struct config_row {
    char *device;
    char *groups;
    char *reason;
    bool known;
    uint64_t running;
    bool has_report;
    struct et_store_config_report report;   /* device and reason: the fields above */
};

struct config_rows {
    struct config_row *rows;
    size_t n, cap;
};

static void rows_free(struct config_rows *cr)
{
    for (size_t i = 0; i < cr->n; i++) {
        free(cr->rows[i].device);
        free(cr->rows[i].groups);
        free(cr->rows[i].reason);
    }
    free(cr->rows);
}

static int collect(void *ctx, const struct et_store_device_config *dc)
{
    struct config_rows *cr = ctx;
    struct config_row *row;

    if (cr->n == cr->cap) {
        size_t cap = cr->cap ? cr->cap * 2 : 32;
        struct config_row *grown = realloc(cr->rows, cap * sizeof(*grown));

        if (!grown)
            return -ENOMEM;
        cr->rows = grown;
        cr->cap = cap;
    }
    row = &cr->rows[cr->n];
    *row = (struct config_row){
        .device = strdup(dc->device),
        .groups = strdup(dc->groups),
        .reason = strdup(dc->report.reason),
        .known = dc->known,
        .running = dc->running_version,
        .has_report = dc->has_report,
        .report = dc->report,
    };
    cr->n++;
    if (!row->device || !row->groups || !row->reason)
        return -ENOMEM;
    row->report.device = row->device;
    row->report.reason = row->reason;
    return 0;
}

/* What the device runs as far as the store knows: its devices row, else its report. */
static bool running_of(const struct config_row *row, uint64_t *running)
{
    *running = row->known ? row->running : row->report.running_version;
    return row->known || row->has_report;
}

/* A running version for a person: "v7", or "file" for the local file only. */
static void version_text(uint64_t v, char *buf, size_t len)
{
    if (v)
        snprintf(buf, len, "v%" PRIu64, v);
    else
        snprintf(buf, len, "file");
}

static const char *state_of(const struct config_row *row, uint64_t desired)
{
    uint64_t running;

    running_of(row, &running);
    return et_config_state(desired, running, row->has_report ? &row->report : NULL);
}

static const char *const status_headers[] = {
    "DEVICE", "GROUPS", "DESIRED", "RUNNING", "STATE", "REPORT", "REASON", "REPORTED",
    "RECEIVED",
};
static const bool status_right[] = {
    false, false, false, false, false, false, false, false, false,
};

static int text_row(struct ctl_table *t, const struct config_row *row,
                    const struct et_config_desired *want, int64_t now_ms)
{
    char desired[ET_DEVICE_ID_MAX + 48] = "-", running[32] = "?", report[48] = "-";
    char reported[ISO_MAX + 24] = "-", received[ISO_MAX + 40] = "-", iso[ISO_MAX], age[32];
    const struct et_store_config_report *rep = &row->report;
    uint64_t v;
    const char *cells[9];

    if (want->version && want->kind == ET_CONFIG_TARGET_GROUP)
        snprintf(desired, sizeof(desired), "v%" PRIu64 " (group %s)", want->version,
                 want->target);
    else if (want->version)
        snprintf(desired, sizeof(desired), "v%" PRIu64 " (device)", want->version);
    if (running_of(row, &v))
        version_text(v, running, sizeof(running));
    if (row->has_report) {
        snprintf(report, sizeof(report), "%s v%" PRIu64, et_config_result_name(rep->result),
                 rep->version);
        et_time_format_iso(rep->device_ms, iso, sizeof(iso));
        snprintf(reported, sizeof(reported), "%s%s", iso,
                 rep->clock_synced ? "" : " (unsynced clock)");
        et_time_format_iso(rep->received_ms - rep->received_ms % 1000, iso, sizeof(iso));
        et_time_format_age(now_ms - rep->received_ms, age, sizeof(age));
        snprintf(received, sizeof(received), "%s (%s)", iso, age);
    }
    cells[0] = row->device;
    cells[1] = row->groups[0] ? row->groups : "-";
    cells[2] = desired;
    cells[3] = running;
    cells[4] = state_of(row, want->version);
    cells[5] = report;
    cells[6] = row->has_report && rep->reason[0] ? rep->reason : "-";
    cells[7] = reported;
    cells[8] = received;
    return ctl_table_add(t, cells);
}

static void csv_row(FILE *out, const struct config_row *row, const struct et_config_desired *want)
{
    const struct et_store_config_report *rep = &row->report;
    uint64_t running;
    bool heard = running_of(row, &running);

    ctl_csv_field(out, row->device, true);
    fputc(',', out);
    ctl_csv_field(out, row->groups, true);
    fprintf(out, ",%" PRIu64 ",", want->version);
    if (want->version)
        fprintf(out, "%s:%s", want->kind == ET_CONFIG_TARGET_GROUP ? "group" : "device",
                want->target);
    fputc(',', out);
    if (heard)
        fprintf(out, "%" PRIu64, running);
    fprintf(out, ",%s,", state_of(row, want->version));
    if (row->has_report) {
        fprintf(out, "%" PRIu64 ",%s,", rep->version, et_config_result_name(rep->result));
        ctl_csv_field(out, rep->reason, true);
        fprintf(out, ",%" PRId64 ",%s,%" PRId64 "\n", rep->device_ms,
                rep->clock_synced ? "true" : "false", rep->received_ms);
    } else {
        fputs(",,,,,\n", out);
    }
}

/* ---- one device's reports ------------------------------------------------ */

static const char *const history_headers[] = {
    "RECEIVED", "REPORT", "RUNNING", "REPORTED", "REASON",
};
static const bool history_right[] = { false, false, false, false, false };

static int history_row(void *ctx, const struct et_store_config_report *rep)
{
    struct ctl_table *t = ctx;
    char received[ISO_MAX], report[48], running[32], reported[ISO_MAX + 24], iso[ISO_MAX];
    const char *cells[5];

    et_time_format_iso(rep->received_ms - rep->received_ms % 1000, received, sizeof(received));
    snprintf(report, sizeof(report), "%s v%" PRIu64, et_config_result_name(rep->result),
             rep->version);
    version_text(rep->running_version, running, sizeof(running));
    et_time_format_iso(rep->device_ms, iso, sizeof(iso));
    snprintf(reported, sizeof(reported), "%s%s", iso,
             rep->clock_synced ? "" : " (unsynced clock)");
    cells[0] = received;
    cells[1] = report;
    cells[2] = running;
    cells[3] = reported;
    cells[4] = rep->reason[0] ? rep->reason : "-";
    return ctl_table_add(t, cells);
}

static int print_history(struct et_store_config *sc, FILE *out, const char *device)
{
    struct ctl_table t = { .ncols = 5, .headers = history_headers, .right = history_right };
    int rc = et_store_config_report_history(sc, device, HISTORY_SHOWN, history_row, &t);

    if (rc == 0 && t.nrows) {
        fprintf(out, "\nreports of %s, newest first:\n", device);
        rc = ctl_table_print(&t, out);
    }
    ctl_table_free(&t);
    return rc;
}

/* ---- the command ------------------------------------------------------------ */

int et_report_config_status(struct et_store_config *sc, FILE *out, const char *device, bool csv,
                            int64_t now_ms)
{
    struct ctl_table t = { .ncols = 9, .headers = status_headers, .right = status_right };
    struct config_rows cr = { .rows = NULL };
    struct et_config_desired want;
    int rc;

    rc = et_store_config_devices(sc, device, collect, &cr);
    if (csv && rc == 0)
        fputs("device,groups,desired_version,desired_for,running_version,state,"
              "report_version,report_result,reason,reported_ms,clock_synced,received_ms\n", out);
    for (size_t i = 0; rc == 0 && i < cr.n; i++) {
        const struct config_row *row = &cr.rows[i];

        rc = et_config_desired_for(sc, row->device, row->groups, &want);
        if (rc == 0 && device && !row->known && !row->has_report &&
            !(want.version && want.kind == ET_CONFIG_TARGET_DEVICE))
            rc = -ENOENT;   /* the store has nothing of it */
        if (rc == 0 && csv)
            csv_row(out, row, &want);
        else if (rc == 0)
            rc = text_row(&t, row, &want, now_ms);
    }
    if (rc == 0 && !csv) {
        if (t.nrows == 0)
            fprintf(out, "no devices yet\n");
        else
            rc = ctl_table_print(&t, out);
    }
    if (rc == 0 && !csv && device)
        rc = print_history(sc, out, device);
    ctl_table_free(&t);
    rows_free(&cr);
    return rc < 0 ? rc : ctl_out_status(out);
}
