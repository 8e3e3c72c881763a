/*
 * One metric of one device over a range, in at most `points` buckets of
 * min, mean and max (GET /api/v1/series, JSON or CSV): a day of 1 s data
 * is 86,400 samples in the store and 1,000 rows on the wire.
 *
 * Gaps: a device that was offline sent nothing, so the buckets of that
 * time are empty. Where two buckets with data lie further apart than the
 * metric's usual spacing allows, a row of nulls goes between them, and
 * dygraphs breaks the line there. The usual spacing is the median of the
 * spacings the buckets show (within a bucket, and between neighbours), so
 * a metric sampled every minute is not cut at every empty 4 s bucket.
 */
#include "web_priv.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define DAY_MS (24LL * 3600 * 1000)
/* The widest range one series may cover: 20 years. */
#define MAX_RANGE_MS (20 * 366 * DAY_MS)

struct buckets {
    struct et_store_bucket *b;
    size_t n, max;
};

static int bucket_cb(void *ctx, const struct et_store_bucket *b)
{
    struct buckets *bs = ctx;

    if (bs->n >= bs->max)
        return -E2BIG;   /* cannot happen: the range makes at most max buckets */
    bs->b[bs->n++] = *b;
    return 0;
}

static int cmp_i64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;

    return (x > y) - (x < y);
}

/* How far apart two buckets' samples may be before the time between them is a gap. */
static int64_t gap_after(const struct buckets *bs, int64_t bucket_ms)
{
    int64_t *spacing = malloc((2 * bs->n + 1) * sizeof(*spacing));
    int64_t median = 0, gap;
    size_t k = 0;

    if (!spacing)
        return INT64_MAX;   /* no gaps marked rather than none plotted */
    for (size_t i = 0; i < bs->n; i++) {
        const struct et_store_bucket *b = &bs->b[i];

        if (b->samples >= 2)
            spacing[k++] = (b->last_ts_ms - b->first_ts_ms) / (int64_t)(b->samples - 1);
        if (i + 1 < bs->n)
            spacing[k++] = bs->b[i + 1].first_ts_ms - b->last_ts_ms;
    }
    if (k) {
        qsort(spacing, k, sizeof(*spacing), cmp_i64);
        median = spacing[k / 2];
    }
    free(spacing);
    gap = 3 * median;
    return gap > 2 * bucket_ms ? gap : 2 * bucket_ms;
}

static int64_t bucket_x(const struct et_store_bucket *b)
{
    return b->first_ts_ms + (b->last_ts_ms - b->first_ts_ms) / 2;
}

struct totals {
    uint64_t samples, unsynced, corrected, uncorrectable;
    size_t gaps;
};

static void json_rows(struct et_web_out *o, const struct buckets *bs, int64_t gap,
                      struct totals *t)
{
    for (size_t i = 0; i < bs->n; i++) {
        const struct et_store_bucket *b = &bs->b[i];

        et_web_out_str(o, i ? ",\n[" : "[");
        et_web_out_printf(o, "%lld,", (long long)bucket_x(b));
        if (b->values) {
            et_web_out_json_num(o, b->min);
            et_web_out_str(o, ",");
            et_web_out_json_num(o, b->avg_known ? b->avg : NAN);
            et_web_out_str(o, ",");
            et_web_out_json_num(o, b->max);
        } else {
            et_web_out_str(o, "null,null,null");
        }
        et_web_out_printf(o, ",%llu,%llu,%llu,%llu]", (unsigned long long)b->samples,
                          (unsigned long long)b->unsynced, (unsigned long long)b->corrected,
                          (unsigned long long)b->uncorrectable);
        t->samples += b->samples;
        t->unsynced += b->unsynced;
        t->corrected += b->corrected;
        t->uncorrectable += b->uncorrectable;
        if (i + 1 < bs->n && bs->b[i + 1].first_ts_ms - b->last_ts_ms > gap) {
            /* No data: a row of nulls half way, where the plot breaks. */
            et_web_out_printf(o, ",\n[%lld,null,null,null,0,0,0,0]",
                              (long long)(b->last_ts_ms +
                                          (bs->b[i + 1].first_ts_ms - b->last_ts_ms) / 2));
            t->gaps++;
        }
    }
}

static void csv_rows(struct et_web_out *o, const struct buckets *bs)
{
    char iso[32];
    struct tm tm;

    et_web_out_str(o, "time_ms,time_utc,samples,min,avg,max,unsynced,corrected,uncorrectable\r\n");
    for (size_t i = 0; i < bs->n; i++) {
        const struct et_store_bucket *b = &bs->b[i];
        int64_t x = bucket_x(b);
        time_t secs = (time_t)(x / 1000 - (x % 1000 < 0));

        gmtime_r(&secs, &tm);
        strftime(iso, sizeof(iso), "%Y-%m-%dT%H:%M:%S", &tm);
        et_web_out_printf(o, "%lld,%s.%03lldZ,%llu,", (long long)x, iso,
                          (long long)(((x % 1000) + 1000) % 1000), (unsigned long long)b->samples);
        if (b->values) {
            et_web_out_printf(o, "%.15g,", b->min);
            if (b->avg_known)
                et_web_out_printf(o, "%.15g", b->avg);
            et_web_out_printf(o, ",%.15g", b->max);
        } else {
            et_web_out_str(o, ",,");
        }
        et_web_out_printf(o, ",%llu,%llu,%llu\r\n", (unsigned long long)b->unsynced,
                          (unsigned long long)b->corrected, (unsigned long long)b->uncorrectable);
    }
}

static char safe_char(char c)
{
    return strchr("._-", c) || (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') ||
           (c >= 'A' && c <= 'Z') ? c : '_';
}

/* "DEVICE-METRIC.csv" of safe characters only, for Content-Disposition. */
static void csv_filename(char *out, size_t len, const char *device, const char *metric)
{
    size_t k = 0;

    for (const char *p = device; *p && k + 24 < len; p++)
        out[k++] = safe_char(*p);
    out[k++] = '-';
    for (const char *p = metric; *p && k + 5 < len; p++)
        out[k++] = safe_char(*p);
    snprintf(out + k, len - k, ".csv");
}

void web_series(struct et_web *w, const struct et_web_request *req, struct web_answer *a)
{
    const char *device = req->arg(req->arg_ctx, "device");
    const char *metric = req->arg(req->arg_ctx, "metric");
    const char *format = req->arg(req->arg_ctx, "format");
    struct et_store_series_query q = { .device = device, .metric = metric };
    struct buckets bs = { 0 };
    struct totals t = { 0 };
    int64_t to, from, points, gap;
    bool csv;
    int rc;

    if (!device || !*device || !metric || !*metric) {
        web_error(a, 400, "device and metric are required (/api/v1/series?device=D&metric=M)");
        return;
    }
    csv = format && strcmp(format, "csv") == 0;
    if (format && !csv && strcmp(format, "json") != 0) {
        web_error(a, 400, "format: json or csv");
        return;
    }
    if (!web_arg_int(req, "to", req->now_ms + 1, -MAX_RANGE_MS, INT64_MAX / 4, &to) ||
        !web_arg_int(req, "from", to - DAY_MS, to - MAX_RANGE_MS, to - 1, &from)) {
        web_error(a, 400, "from and to: milliseconds since 1970 (UTC), from < to, at most "
                  "20 years apart");
        return;
    }
    if (!web_arg_int(req, "points", ET_WEB_DEFAULT_POINTS, 1, w->lim.max_points, &points)) {
        web_error(a, 400, "points: a whole number from 1 to the server's max_points");
        return;
    }
    q.since_ms = from;
    q.until_ms = to;
    q.bucket_ms = (to - from + points - 1) / points;
    /* Buckets start at from, so the range makes ceil((to - from) / bucket) <= points. */
    bs.max = (size_t)points + 1;
    bs.b = malloc(bs.max * sizeof(*bs.b));
    if (!bs.b) {
        web_error(a, 503, "out of memory");
        return;
    }
    rc = et_store_series(w->r, &q, bucket_cb, &bs);
    if (rc < 0) {
        free(bs.b);
        web_store_error(a, rc, "series");
        return;
    }
    gap = gap_after(&bs, q.bucket_ms);
    if (csv) {
        csv_rows(&a->out, &bs);
        csv_filename(a->resp->filename, sizeof(a->resp->filename), device, metric);
        free(bs.b);
        web_finish(a, "text/csv; charset=utf-8");
        return;
    }
    et_web_out_str(&a->out, "{\"device\":");
    et_web_out_json_str(&a->out, device);
    et_web_out_str(&a->out, ",\"metric\":");
    et_web_out_json_str(&a->out, metric);
    et_web_out_printf(&a->out, ",\"from_ms\":%lld,\"to_ms\":%lld,\"bucket_ms\":%lld,"
                      "\"gap_ms\":%lld,\"columns\":[\"time_ms\",\"min\",\"avg\",\"max\","
                      "\"samples\",\"unsynced\",\"corrected\",\"uncorrectable\"],\"rows\":[",
                      (long long)from, (long long)to, (long long)q.bucket_ms,
                      (long long)(gap == INT64_MAX ? 0 : gap));
    json_rows(&a->out, &bs, gap, &t);
    et_web_out_printf(&a->out, "],\"points\":%zu,\"gaps\":%zu,\"samples\":%llu,"
                      "\"unsynced\":%llu,\"corrected\":%llu,\"uncorrectable\":%llu}\n", bs.n,
                      t.gaps, (unsigned long long)t.samples, (unsigned long long)t.unsynced,
                      (unsigned long long)t.corrected, (unsigned long long)t.uncorrectable);
    free(bs.b);
    web_finish(a, "application/json");
}
