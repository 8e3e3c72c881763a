/*
 * edgetelctl's output, from a store. See report.h.
 */
#include "edgetel/report.h"

#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "edgetel/text.h"
#include "edgetel/timefmt.h"
#include "table.h"

const char *et_report_quality(int time_quality)
{
    switch (time_quality) {
    case ET_TQ_SYNCED:
        return "synced";
    case ET_TQ_UNSYNCED:
        return "unsynced";
    case ET_TQ_CORRECTED:
        return "corrected";
    case ET_TQ_UNCORRECTABLE:
        return "uncorrectable";
    default:
        return "-";
    }
}

int et_report_value(const struct et_store_value *v, char *buf, size_t len)
{
    switch (v->type) {
    case ET_TYPE_F64: {
        /* The fewest digits (15 to 17) that read back as the same double. */
        int n = 0;

        for (int prec = 15; prec <= 17; prec++) {
            n = snprintf(buf, len, "%.*g", prec, v->u.f64);
            if (strtod(buf, NULL) == v->u.f64)
                break;
        }
        return n;
    }
    case ET_TYPE_I64:
        return snprintf(buf, len, "%" PRId64, v->u.i64);
    case ET_TYPE_BOOL:
        return snprintf(buf, len, "%s", v->u.b ? "true" : "false");
    default:
        return snprintf(buf, len, "%s", v->u.str ? v->u.str : "");
    }
}

/* ---- devices ------------------------------------------------------------ */

static const char *const device_headers[] = {
    "DEVICE", "ONLINE", "LAST SEEN", "SAMPLES", "STREAM", "ACKED SEQ", "OUTBOX", "DROPPED",
};
static const bool device_right[] = { false, false, false, true, false, true, true, true };

/* Hex digits of a stream id shown: enough to tell a device's streams apart. */
#define STREAM_SHORT 8

struct devices_ctx {
    struct ctl_table table;
    int64_t now_ms;
};

static int device_row(void *ctx, const struct et_store_device *d)
{
    struct devices_ctx *dc = ctx;
    char iso[ISO_MAX], age[32], seen[ISO_MAX + 48], samples[24], acked[24];
    char outbox[24] = "-", dropped[24] = "-", stream[ISO_MAX + 24] = "-";
    const char *row[8];

    /* Whole seconds: the age beside it is what a person reads. */
    et_time_format_iso(d->last_seen_ms - d->last_seen_ms % 1000, iso, sizeof(iso));
    et_time_format_age(dc->now_ms - d->last_seen_ms, age, sizeof(age));
    snprintf(seen, sizeof(seen), "%s (%s)", iso, age);
    snprintf(samples, sizeof(samples), "%" PRIu64, d->samples_stored);
    snprintf(acked, sizeof(acked), "%" PRIu64, d->acked_through);
    /* Online state and the device's own counters come from its Status;
     * before one has arrived they are unknown, not zero. */
    if (d->has_status) {
        snprintf(outbox, sizeof(outbox), "%" PRIu64, d->outbox_batches);
        snprintf(dropped, sizeof(dropped), "%" PRIu64, d->dropped_samples);
    }
    /* The current stream (a data directory of the device), short, and when
     * the store first heard of it: a re-flashed board shows a new one. */
    if (d->has_stream) {
        et_time_format_iso(d->stream_started_ms - d->stream_started_ms % 1000, iso, sizeof(iso));
        snprintf(stream, sizeof(stream), "%.*s since %s", STREAM_SHORT,
                 d->stream_hex[0] ? d->stream_hex : "legacy", iso);
    }
    row[0] = d->id;
    row[1] = !d->has_status ? "?" : d->online ? "yes" : "no";
    row[2] = seen;
    row[3] = samples;
    row[4] = stream;
    row[5] = acked;
    row[6] = outbox;
    row[7] = dropped;
    return ctl_table_add(&dc->table, row);
}

int et_report_devices(struct et_store_reader *r, FILE *out, int64_t now_ms)
{
    struct devices_ctx dc = {
        .table = { .ncols = 8, .headers = device_headers, .right = device_right },
        .now_ms = now_ms,
    };
    int rc;

    rc = et_store_devices(r, NULL, device_row, &dc);
    return ctl_table_finish(&dc.table, out, rc, "no devices yet");
}

/* ---- quarantine ---------------------------------------------------------- */

static const char *const quarantine_headers[] = {
    "KEPT", "DEVICE", "STREAM", "SEQ", "SAMPLES", "BYTES", "REASON",
};
static const bool quarantine_right[] = { false, false, false, true, true, true, false };

static int quarantine_row(void *ctx, const struct et_store_quarantined *q)
{
    char kept[ISO_MAX], stream[STREAM_SHORT + 1], seq[24], samples[24], bytes[24];
    const char *row[7];

    et_time_format_iso(q->received_ms - q->received_ms % 1000, kept, sizeof(kept));
    snprintf(stream, sizeof(stream), "%.*s", STREAM_SHORT,
             q->stream_hex[0] ? q->stream_hex : "legacy");
    snprintf(seq, sizeof(seq), "%" PRIu64, q->seq);
    snprintf(samples, sizeof(samples), "%" PRIu32, q->n_samples);
    snprintf(bytes, sizeof(bytes), "%zu", q->len);
    row[0] = kept;
    row[1] = q->device;
    row[2] = stream;
    row[3] = seq;
    row[4] = samples;
    row[5] = bytes;
    row[6] = q->reason;
    return ctl_table_add(ctx, row);
}

int et_report_quarantine(struct et_store_reader *r, FILE *out, const char *device)
{
    struct ctl_table t = { .ncols = 7, .headers = quarantine_headers, .right = quarantine_right };
    int rc = et_store_quarantined(r, device, quarantine_row, &t);

    return ctl_table_finish(&t, out, rc, "no quarantined batches");
}

/* ---- metrics ------------------------------------------------------------ */

static const char *const metric_headers[] = {
    "DEVICE", "METRIC", "UNIT", "SAMPLES", "FIRST", "LAST", "TAGS",
};
static const bool metric_right[] = { false, false, false, true, false, false, false };

static int metric_row(void *ctx, const struct et_store_metric *m)
{
    struct ctl_table *t = ctx;
    char first[ISO_MAX] = "-", last[ISO_MAX] = "-", samples[24];
    const char *row[7];
    /* Without the device column the row starts one cell later. */
    size_t skip = t->ncols == 6 ? 1 : 0;

    if (m->samples) {
        et_time_format_iso(m->first_ts_ms, first, sizeof(first));
        et_time_format_iso(m->last_ts_ms, last, sizeof(last));
    }
    snprintf(samples, sizeof(samples), "%" PRIu64, m->samples);
    row[0] = m->device;
    row[1] = m->name;
    row[2] = m->unit[0] ? m->unit : "-";
    row[3] = samples;
    row[4] = first;
    row[5] = last;
    row[6] = m->tags && m->tags[0] ? m->tags : "-";
    return ctl_table_add(t, row + skip);
}

struct device_list {
    char **ids;
    size_t n, cap;
};

static int collect_id(void *ctx, const struct et_store_device *d)
{
    struct device_list *dl = ctx;

    if (dl->n == dl->cap) {
        size_t cap = dl->cap ? dl->cap * 2 : 32;
        char **grown = realloc(dl->ids, cap * sizeof(*grown));

        if (!grown)
            return -ENOMEM;
        dl->ids = grown;
        dl->cap = cap;
    }
    dl->ids[dl->n] = strdup(d->id);
    if (!dl->ids[dl->n])
        return -ENOMEM;
    dl->n++;
    return 0;
}

int et_report_metrics(struct et_store_reader *r, FILE *out, const char *device)
{
    struct ctl_table t = { .ncols = 7, .headers = metric_headers, .right = metric_right };
    struct device_list dl = { .ids = NULL };
    int rc;

    if (device) {
        /* One device: its id would repeat on every line. */
        t.ncols = 6;
        t.headers = metric_headers + 1;
        t.right = metric_right + 1;
        rc = et_store_metrics(r, device, metric_row, &t);
    } else {
        /* Devices first, then their metrics: one statement at a time. */
        rc = et_store_devices(r, NULL, collect_id, &dl);
        for (size_t i = 0; rc == 0 && i < dl.n; i++)
            rc = et_store_metrics(r, dl.ids[i], metric_row, &t);
        for (size_t i = 0; i < dl.n; i++)
            free(dl.ids[i]);
        free(dl.ids);
    }
    return ctl_table_finish(&t, out, rc, "no metrics yet");
}

/* ---- query and tail ----------------------------------------------------- */

struct query_ctx {
    FILE *out;
    bool csv;
    uint64_t rows;
};

static int print_sample(void *ctx, const struct et_store_sample *smp)
{
    struct query_ctx *qc = ctx;
    char iso[ISO_MAX], value[VALUE_MAX], value_shown[SHOWN_MAX], unit_shown[SHOWN_MAX];

    et_time_format_iso(smp->ts_ms, iso, sizeof(iso));
    et_report_value(&smp->value, value, sizeof(value));
    if (qc->csv) {
        fprintf(qc->out, "%s,%" PRId64 ",", iso, smp->ts_ms);
        ctl_csv_field(qc->out, smp->device, true);
        fputc(',', qc->out);
        ctl_csv_field(qc->out, smp->metric, true);
        fputc(',', qc->out);
        ctl_csv_field(qc->out, value, smp->value.type == ET_TYPE_STR);
        fputc(',', qc->out);
        ctl_csv_field(qc->out, smp->unit, true);
        fprintf(qc->out, ",%s,%" PRIu64 "\n", et_report_quality(smp->time_quality), smp->seq);
    } else {
        fprintf(qc->out, "%-24s  %16s %-8s  %s\n", iso,
                ctl_shown(value, value_shown, sizeof(value_shown)),
                ctl_shown(smp->unit, unit_shown, sizeof(unit_shown)),
                et_report_quality(smp->time_quality));
    }
    qc->rows++;
    return ferror(qc->out) ? -EIO : 0;
}

int et_report_query(struct et_store_reader *r, FILE *out, const struct et_store_query *q, bool csv,
                    uint64_t *rows)
{
    struct query_ctx qc = { .out = out, .csv = csv };
    int rc;

    if (csv)
        fprintf(out, "time,ts_ms,device,metric,value,unit,time_quality,seq\n");
    rc = et_store_query(r, q, print_sample, &qc);
    if (rows)
        *rows = qc.rows;
    return rc < 0 ? rc : ctl_out_status(out);
}

int et_report_tail_line(FILE *out, const struct et_store_sample *smp)
{
    char iso[ISO_MAX], value[VALUE_MAX];
    char device_shown[SHOWN_MAX], metric_shown[SHOWN_MAX], value_shown[SHOWN_MAX];
    char unit_shown[SHOWN_MAX];

    et_time_format_iso(smp->ts_ms, iso, sizeof(iso));
    et_report_value(&smp->value, value, sizeof(value));
    fprintf(out, "%s %s %s %s %s\n", iso, ctl_shown(smp->device, device_shown, sizeof(device_shown)),
            ctl_shown(smp->metric, metric_shown, sizeof(metric_shown)),
            ctl_shown(value, value_shown, sizeof(value_shown)),
            smp->unit[0] ? ctl_shown(smp->unit, unit_shown, sizeof(unit_shown)) : "-");
    return ctl_out_status(out);
}

/* ---- existence checks --------------------------------------------------- */

static int found_device(void *ctx, const struct et_store_device *d)
{
    *(bool *)ctx = true;
    return 0;
}

struct metric_find {
    const char *name;
    bool found;
};

static int find_metric(void *ctx, const struct et_store_metric *m)
{
    struct metric_find *mf = ctx;

    if (strcmp(m->name, mf->name) == 0) {
        mf->found = true;
        return 1;   /* stop */
    }
    return 0;
}

int et_report_check(struct et_store_reader *r, const char *device, const char *metric, char *why,
                    size_t whylen)
{
    struct metric_find mf = { .name = metric };
    bool found = false;
    int rc;

    rc = et_store_devices(r, device, found_device, &found);
    if (rc < 0)
        return rc;
    if (!found) {
        snprintf(why, whylen, "device %s is not in the store (edgetelctl devices lists them)",
                 device);
        return -ENOENT;
    }
    if (!metric)
        return 0;
    rc = et_store_metrics(r, device, find_metric, &mf);
    if (rc < 0)
        return rc;
    if (!mf.found) {
        snprintf(why, whylen, "device %s has no metric \"%s\" (edgetelctl metrics --device %s "
                 "lists them)", device, metric, device);
        return -ENOENT;
    }
    return 0;
}
