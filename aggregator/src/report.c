/*
 * edgetelctl's output, from a store. See report.h.
 */
#include "edgetel/report.h"

#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "edgetel/timefmt.h"

#define ISO_MAX 40

static int out_status(FILE *out)
{
    return ferror(out) ? -EIO : 0;
}

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
        /* The shortest of %.15g and %.17g that reads back as the same double. */
        int n = snprintf(buf, len, "%.15g", v->u.f64);

        if (strtod(buf, NULL) != v->u.f64)
            n = snprintf(buf, len, "%.17g", v->u.f64);
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

struct device_row {
    char *id;
    char online[4];
    char seen[ISO_MAX + 48];
    uint64_t samples, acked;
    char outbox[24], dropped[24];
};

struct device_rows {
    struct device_row *rows;
    size_t n, cap;
    int64_t now_ms;
};

static int collect_device(void *ctx, const struct et_store_device *d)
{
    struct device_rows *dr = ctx;
    struct device_row *r;
    char iso[ISO_MAX], age[32];

    if (dr->n == dr->cap) {
        size_t cap = dr->cap ? dr->cap * 2 : 32;
        struct device_row *grown = realloc(dr->rows, cap * sizeof(*grown));

        if (!grown)
            return -ENOMEM;
        dr->rows = grown;
        dr->cap = cap;
    }
    r = &dr->rows[dr->n];
    r->id = strdup(d->id);
    if (!r->id)
        return -ENOMEM;
    dr->n++;
    /* Online state comes from Status only; before one arrives it is unknown. */
    snprintf(r->online, sizeof(r->online), "%s", !d->has_status ? "?" : d->online ? "yes" : "no");
    et_time_format_iso(d->last_seen_ms - d->last_seen_ms % 1000, iso, sizeof(iso));
    et_time_format_age(dr->now_ms - d->last_seen_ms, age, sizeof(age));
    snprintf(r->seen, sizeof(r->seen), "%s (%s)", iso, age);
    r->samples = d->samples_stored;
    r->acked = d->acked_through;
    if (d->has_status) {
        snprintf(r->outbox, sizeof(r->outbox), "%" PRIu64, d->outbox_batches);
        snprintf(r->dropped, sizeof(r->dropped), "%" PRIu64, d->dropped_samples);
    } else {
        snprintf(r->outbox, sizeof(r->outbox), "-");
        snprintf(r->dropped, sizeof(r->dropped), "-");
    }
    return 0;
}

int et_report_devices(struct et_store *s, FILE *out, int64_t now_ms)
{
    struct device_rows dr = { .now_ms = now_ms };
    int idw = (int)strlen("DEVICE"), seenw = (int)strlen("LAST SEEN");
    int rc;

    rc = et_store_devices(s, NULL, collect_device, &dr);
    if (rc < 0)
        goto out;
    if (dr.n == 0) {
        fprintf(out, "no devices yet\n");
        goto out;
    }
    for (size_t i = 0; i < dr.n; i++) {
        if ((int)strlen(dr.rows[i].id) > idw)
            idw = (int)strlen(dr.rows[i].id);
        if ((int)strlen(dr.rows[i].seen) > seenw)
            seenw = (int)strlen(dr.rows[i].seen);
    }
    fprintf(out, "%-*s  %-6s  %-*s  %10s  %10s  %8s  %8s\n", idw, "DEVICE", "ONLINE", seenw,
            "LAST SEEN", "SAMPLES", "ACKED SEQ", "OUTBOX", "DROPPED");
    for (size_t i = 0; i < dr.n; i++) {
        const struct device_row *r = &dr.rows[i];

        fprintf(out, "%-*s  %-6s  %-*s  %10" PRIu64 "  %10" PRIu64 "  %8s  %8s\n", idw, r->id,
                r->online, seenw, r->seen, r->samples, r->acked, r->outbox, r->dropped);
    }
out:
    for (size_t i = 0; i < dr.n; i++)
        free(dr.rows[i].id);
    free(dr.rows);
    return rc < 0 ? rc : out_status(out);
}

/* ---- metrics ------------------------------------------------------------ */

struct metrics_ctx {
    FILE *out;
    bool with_device;
    bool header_done;
    uint64_t n;
};

static int print_metric(void *ctx, const struct et_store_metric *m)
{
    struct metrics_ctx *mc = ctx;
    char first[ISO_MAX] = "-", last[ISO_MAX] = "-";

    if (!mc->header_done) {
        if (mc->with_device)
            fprintf(mc->out, "%-24s  ", "DEVICE");
        fprintf(mc->out, "%-32s  %-8s  %10s  %-24s  %-24s\n", "METRIC", "UNIT", "SAMPLES",
                "FIRST", "LAST");
        mc->header_done = true;
    }
    if (m->samples) {
        et_time_format_iso(m->first_ts_ms, first, sizeof(first));
        et_time_format_iso(m->last_ts_ms, last, sizeof(last));
    }
    if (mc->with_device)
        fprintf(mc->out, "%-24s  ", m->device);
    fprintf(mc->out, "%-32s  %-8s  %10" PRIu64 "  %-24s  %-24s\n", m->name,
            m->unit[0] ? m->unit : "-", m->samples, first, last);
    mc->n++;
    return 0;
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

int et_report_metrics(struct et_store *s, FILE *out, const char *device)
{
    struct metrics_ctx mc = { .out = out, .with_device = device == NULL };
    struct device_list dl = { .ids = NULL };
    int rc;

    if (device) {
        rc = et_store_metrics(s, device, print_metric, &mc);
    } else {
        /* Devices first, then their metrics: one statement at a time. */
        rc = et_store_devices(s, NULL, collect_id, &dl);
        for (size_t i = 0; rc == 0 && i < dl.n; i++)
            rc = et_store_metrics(s, dl.ids[i], print_metric, &mc);
        for (size_t i = 0; i < dl.n; i++)
            free(dl.ids[i]);
        free(dl.ids);
    }
    if (rc < 0)
        return rc;
    if (mc.n == 0)
        fprintf(out, "no metrics yet\n");
    return out_status(out);
}

/* ---- query and tail ----------------------------------------------------- */

struct query_ctx {
    FILE *out;
    bool csv;
    uint64_t rows;
};

/* A CSV field, quoted when it holds a separator, a quote or a line break. */
static void csv_field(FILE *out, const char *s)
{
    if (!strpbrk(s, ",\"\r\n")) {
        fputs(s, out);
        return;
    }
    fputc('"', out);
    for (; *s; s++) {
        if (*s == '"')
            fputc('"', out);
        fputc(*s, out);
    }
    fputc('"', out);
}

static int print_sample(void *ctx, const struct et_store_sample *smp)
{
    struct query_ctx *qc = ctx;
    char iso[ISO_MAX], value[64 + ET_VALUE_STR_MAX];

    et_time_format_iso(smp->ts_ms, iso, sizeof(iso));
    et_report_value(&smp->value, value, sizeof(value));
    if (qc->csv) {
        fprintf(qc->out, "%s,%" PRId64 ",", iso, smp->ts_ms);
        csv_field(qc->out, smp->device);
        fputc(',', qc->out);
        csv_field(qc->out, smp->metric);
        fputc(',', qc->out);
        csv_field(qc->out, value);
        fputc(',', qc->out);
        csv_field(qc->out, smp->unit);
        fprintf(qc->out, ",%s,%" PRIu64 "\n", et_report_quality(smp->time_quality), smp->seq);
    } else {
        fprintf(qc->out, "%-24s  %16s %-8s  %s\n", iso, value, smp->unit,
                et_report_quality(smp->time_quality));
    }
    qc->rows++;
    return ferror(qc->out) ? -EIO : 0;
}

int et_report_query(struct et_store *s, FILE *out, const struct et_store_query *q, bool csv,
                    uint64_t *rows)
{
    struct query_ctx qc = { .out = out, .csv = csv };
    int rc;

    if (csv)
        fprintf(out, "time,ts_ms,device,metric,value,unit,time_quality,seq\n");
    rc = et_store_query(s, q, print_sample, &qc);
    if (rows)
        *rows = qc.rows;
    return rc < 0 ? rc : out_status(out);
}

int et_report_tail_line(FILE *out, const struct et_store_sample *smp)
{
    char iso[ISO_MAX], value[64 + ET_VALUE_STR_MAX];

    et_time_format_iso(smp->ts_ms, iso, sizeof(iso));
    et_report_value(&smp->value, value, sizeof(value));
    fprintf(out, "%s %s %s %s %s\n", iso, smp->device, smp->metric, value,
            smp->unit[0] ? smp->unit : "-");
    return out_status(out);
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

int et_report_check(struct et_store *s, const char *device, const char *metric, char *why,
                    size_t whylen)
{
    struct metric_find mf = { .name = metric };
    bool found = false;
    int rc;

    rc = et_store_devices(s, device, found_device, &found);
    if (rc < 0)
        return rc;
    if (!found) {
        snprintf(why, whylen, "device %s is not in the store (edgetelctl devices lists them)",
                 device);
        return -ENOENT;
    }
    if (!metric)
        return 0;
    rc = et_store_metrics(s, device, find_metric, &mf);
    if (rc < 0)
        return rc;
    if (!mf.found) {
        snprintf(why, whylen, "device %s has no metric \"%s\" (edgetelctl metrics --device %s "
                 "lists them)", device, metric, device);
        return -ENOENT;
    }
    return 0;
}
