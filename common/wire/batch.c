/*
 * The batch builder of the wire codec (edgetel/codec.h), on protobuf-c.
 *
 * It keeps samples in a flat array and metric names in a small
 * dictionary; nothing is converted to protobuf-c structs until encode, so
 * adding a sample is a copy and a lookup. Decoding, the other messages and
 * peeking are in codec.c.
 */
#include "edgetel/codec.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>


struct batch_metric {
    char *name;
    char *unit;
    char *tags;     /* canonical "k=v,k2=v2", or NULL */
};

struct batch_sample {
    uint32_t metric;
    enum et_time_quality tq;
    int64_t mono_ms;
    struct et_value v;
};

struct et_batch {
    struct batch_metric *metrics;
    size_t n_metrics, cap_metrics;
    struct batch_sample *samples;
    size_t n_samples, cap_samples;
    size_t last_metric;           /* lookup hint: samples arrive grouped by metric */
    size_t n_not_synced;          /* samples whose time quality is not SYNCED */
};

int et_batch_create(struct et_batch **out)
{
    struct et_batch *b = calloc(1, sizeof(*b));

    if (!b)
        return -ENOMEM;
    *out = b;
    return 0;
}

static void batch_free_metrics(struct et_batch *b)
{
    for (size_t i = 0; i < b->n_metrics; i++) {
        free(b->metrics[i].name);
        free(b->metrics[i].unit);
        free(b->metrics[i].tags);
    }
    b->n_metrics = 0;
}

void et_batch_destroy(struct et_batch *b)
{
    if (!b)
        return;
    batch_free_metrics(b);
    free(b->metrics);
    free(b->samples);
    free(b);
}

void et_batch_reset(struct et_batch *b)
{
    batch_free_metrics(b);
    b->n_samples = 0;
    b->last_metric = 0;
    b->n_not_synced = 0;
}

size_t et_batch_samples(const struct et_batch *b)
{
    return b->n_samples;
}

enum et_time_quality et_batch_time_quality(const struct et_batch *b)
{
    return b->n_not_synced ? ET_TQ_UNSYNCED : ET_TQ_SYNCED;
}

int64_t et_batch_first_mono_ms(const struct et_batch *b)
{
    return b->n_samples ? b->samples[0].mono_ms : 0;
}

/* Index of metric name in the dictionary, adding it when new; -errno on failure. */
static long batch_metric_index(struct et_batch *b, const char *name, const char *unit,
                               const char *tags)
{
    if (b->last_metric < b->n_metrics && strcmp(b->metrics[b->last_metric].name, name) == 0)
        return (long)b->last_metric;
    for (size_t i = 0; i < b->n_metrics; i++) {
        if (strcmp(b->metrics[i].name, name) == 0) {
            b->last_metric = i;
            return (long)i;
        }
    }
    if (b->n_metrics >= ET_WIRE_MAX_METRICS)
        return -E2BIG;
    if (b->n_metrics == b->cap_metrics) {
        size_t cap = b->cap_metrics ? b->cap_metrics * 2 : 16;
        struct batch_metric *m = realloc(b->metrics, cap * sizeof(*m));

        if (!m)
            return -ENOMEM;
        b->metrics = m;
        b->cap_metrics = cap;
    }
    struct batch_metric *m = &b->metrics[b->n_metrics];

    m->name = strdup(name);
    m->unit = strdup(unit ? unit : "");
    m->tags = tags && *tags ? strdup(tags) : NULL;
    if (!m->name || !m->unit || (tags && *tags && !m->tags)) {
        free(m->name);
        free(m->unit);
        free(m->tags);
        return -ENOMEM;
    }
    b->last_metric = b->n_metrics;
    return (long)b->n_metrics++;
}

int et_batch_add(struct et_batch *b, const char *metric, const char *unit,
                 int64_t mono_ms, const struct et_value *v, enum et_time_quality tq)
{
    return et_batch_add_tagged(b, metric, unit, NULL, mono_ms, v, tq);
}

int et_batch_add_tagged(struct et_batch *b, const char *metric, const char *unit,
                        const char *tags, int64_t mono_ms, const struct et_value *v,
                        enum et_time_quality tq)
{
    if (!metric || !*metric || strlen(metric) > ET_WIRE_MAX_NAME)
        return -EINVAL;
    if (v->type == ET_TYPE_STR && strnlen(v->u.str, ET_VALUE_STR_MAX + 1) > ET_VALUE_STR_MAX)
        return -EINVAL;
    if (b->n_samples >= ET_WIRE_MAX_SAMPLES)
        return -E2BIG;

    long idx = batch_metric_index(b, metric, unit, tags);

    if (idx < 0)
        return (int)idx;
    if (b->n_samples == b->cap_samples) {
        size_t cap = b->cap_samples ? b->cap_samples * 2 : 64;
        struct batch_sample *s = realloc(b->samples, cap * sizeof(*s));

        if (!s)
            return -ENOMEM;
        b->samples = s;
        b->cap_samples = cap;
    }
    struct batch_sample *s = &b->samples[b->n_samples++];

    s->metric = (uint32_t)idx;
    s->tq = tq;
    if (tq != ET_TQ_SYNCED)
        b->n_not_synced++;
    s->mono_ms = mono_ms;
    s->v.type = v->type;
    if (v->type == ET_TYPE_STR)
        memcpy(s->v.u.str, v->u.str, strlen(v->u.str) + 1);
    else
        s->v.u = v->u;
    return 0;
}

int et_batch_encode(const struct et_batch *b, const struct et_batch_meta *meta,
                    uint8_t **out, size_t *len)
{
    Edgetel__V1__Batch msg = EDGETEL__V1__BATCH__INIT;
    Edgetel__V1__Metric *metrics = NULL, **metric_ptrs = NULL;
    Edgetel__V1__Sample *samples = NULL, **sample_ptrs = NULL;
    /* Tags: one array for all metrics, split from copies of the strings. */
    Edgetel__V1__Tag *tags = NULL, **tag_ptrs = NULL;
    char **tag_text = NULL;
    size_t n_tags_total = 0, next_tag = 0;
    uint8_t *buf = NULL;
    int rc = -ENOMEM;

    for (size_t i = 0; i < b->n_metrics; i++) {
        if (!b->metrics[i].tags)
            continue;
        n_tags_total++;
        for (const char *p = b->metrics[i].tags; *p; p++)
            n_tags_total += *p == ',';
    }
    if (n_tags_total) {
        tags = calloc(n_tags_total, sizeof(*tags));
        tag_ptrs = calloc(n_tags_total, sizeof(*tag_ptrs));
        tag_text = calloc(b->n_metrics, sizeof(*tag_text));
        if (!tags || !tag_ptrs || !tag_text)
            goto out;
    }

    if (b->n_metrics) {
        metrics = calloc(b->n_metrics, sizeof(*metrics));
        metric_ptrs = calloc(b->n_metrics, sizeof(*metric_ptrs));
        if (!metrics || !metric_ptrs)
            goto out;
    }
    if (b->n_samples) {
        samples = calloc(b->n_samples, sizeof(*samples));
        sample_ptrs = calloc(b->n_samples, sizeof(*sample_ptrs));
        if (!samples || !sample_ptrs)
            goto out;
    }

    for (size_t i = 0; i < b->n_metrics; i++) {
        edgetel__v1__metric__init(&metrics[i]);
        metrics[i].name = b->metrics[i].name;
        metrics[i].unit = b->metrics[i].unit;
        metric_ptrs[i] = &metrics[i];
        if (!b->metrics[i].tags)
            continue;
        /* "k=v,k2=v2" (canonical, checked by et_tags_canonical) into Tags. */
        tag_text[i] = strdup(b->metrics[i].tags);
        if (!tag_text[i])
            goto out;
        metrics[i].tags = &tag_ptrs[next_tag];
        for (char *save = NULL, *kv = strtok_r(tag_text[i], ",", &save); kv;
             kv = strtok_r(NULL, ",", &save)) {
            char *eq = strchr(kv, '=');
            Edgetel__V1__Tag *t = &tags[next_tag];

            edgetel__v1__tag__init(t);
            if (eq)
                *eq = '\0';
            t->key = kv;
            t->value = eq ? eq + 1 : "";
            tag_ptrs[next_tag++] = t;
            metrics[i].n_tags++;
        }
    }

    int64_t prev = meta->base_mono_ms;

    for (size_t i = 0; i < b->n_samples; i++) {
        const struct batch_sample *s = &b->samples[i];
        Edgetel__V1__Sample *w = &samples[i];

        edgetel__v1__sample__init(w);
        w->metric = s->metric;
        w->dt_ms = s->mono_ms - prev;
        prev = s->mono_ms;
        if (s->tq != meta->time_quality)
            w->time_quality = (Edgetel__V1__TimeQuality)s->tq;
        switch (s->v.type) {
        case ET_TYPE_F64:
            w->value_case = EDGETEL__V1__SAMPLE__VALUE_F64;
            w->f64 = s->v.u.f64;
            break;
        case ET_TYPE_I64:
            w->value_case = EDGETEL__V1__SAMPLE__VALUE_I64;
            w->i64 = s->v.u.i64;
            break;
        case ET_TYPE_BOOL:
            w->value_case = EDGETEL__V1__SAMPLE__VALUE_B;
            w->b = s->v.u.b;
            break;
        case ET_TYPE_STR:
            w->value_case = EDGETEL__V1__SAMPLE__VALUE_STR;
            w->str = (char *)s->v.u.str;
            break;
        }
        sample_ptrs[i] = w;
    }

    msg.device_id = (char *)meta->device_id;
    msg.seq = meta->seq;
    msg.boot_id.data = (uint8_t *)meta->boot_id;
    msg.boot_id.len = ET_BOOT_ID_LEN;
    msg.base_mono_ms = meta->base_mono_ms;
    msg.base_wall_ms = meta->base_wall_ms;
    msg.time_quality = (Edgetel__V1__TimeQuality)meta->time_quality;
    msg.n_metrics = b->n_metrics;
    msg.metrics = metric_ptrs;
    msg.n_samples = b->n_samples;
    msg.samples = sample_ptrs;
    msg.oldest_seq = meta->oldest_seq;
    msg.stream_id.data = (uint8_t *)meta->stream_id;
    msg.stream_id.len = meta->stream_id ? ET_STREAM_ID_LEN : 0;

    size_t n = edgetel__v1__batch__get_packed_size(&msg);

    buf = malloc(n ? n : 1);
    if (!buf)
        goto out;
    *len = edgetel__v1__batch__pack(&msg, buf);
    *out = buf;
    rc = 0;
out:
    for (size_t i = 0; tag_text && i < b->n_metrics; i++)
        free(tag_text[i]);
    free(tag_text);
    free(tags);
    free(tag_ptrs);
    free(metrics);
    free(metric_ptrs);
    free(samples);
    free(sample_ptrs);
    return rc;
}

/* ---- tags ------------------------------------------------------------------ */

static bool tag_key_char(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_';
}

static bool tag_value_char(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
           c == '_' || c == '-' || c == '.' || c == ':' || c == '/' || c == ' ';
}

__attribute__((format(printf, 3, 4)))
static int tags_fail(char *err, size_t errlen, const char *fmt, ...)
{
    va_list ap;

    if (err && errlen) {
        va_start(ap, fmt);
        vsnprintf(err, errlen, fmt, ap);
        va_end(ap);
    }
    return -EINVAL;
}

int et_tags_canonical(const char *in, char *out, size_t cap, char *err, size_t errlen)
{
    char keys[ET_TAGS_MAX][ET_TAG_KEY_MAX + 1];
    size_t n = 0, used = 0;
    const char *p = in;

    if (cap)
        out[0] = '\0';
    for (;;) {
        const char *k, *v;
        size_t klen, vlen;

        while (*p == ' ')
            p++;
        if (!*p)
            break;
        k = p;
        while (tag_key_char(*p))
            p++;
        klen = (size_t)(p - k);
        while (*p == ' ')
            p++;
        if (klen == 0 || *p != '=')
            return tags_fail(err, errlen, "tag %zu: expected key=value with a key of a-z 0-9 _",
                             n + 1);
        if (klen > ET_TAG_KEY_MAX)
            return tags_fail(err, errlen, "tag key \"%.*s\" is longer than %d", (int)klen, k,
                             ET_TAG_KEY_MAX);
        p++;
        while (*p == ' ')
            p++;
        v = p;
        while (*p && *p != ',' && tag_value_char(*p))
            p++;
        if (*p && *p != ',')
            return tags_fail(err, errlen, "tag \"%.*s\": value has '%c'; allowed: A-Z a-z 0-9 "
                             "space _ - . : /", (int)klen, k, *p);
        vlen = (size_t)(p - v);
        while (vlen && v[vlen - 1] == ' ')
            vlen--;
        if (vlen == 0 || vlen > ET_TAG_VALUE_MAX)
            return tags_fail(err, errlen, "tag \"%.*s\": value must be 1-%d characters",
                             (int)klen, k, ET_TAG_VALUE_MAX);
        if (n == ET_TAGS_MAX)
            return tags_fail(err, errlen, "more than %d tags", ET_TAGS_MAX);
        for (size_t i = 0; i < n; i++)
            if (strlen(keys[i]) == klen && memcmp(keys[i], k, klen) == 0)
                return tags_fail(err, errlen, "tag \"%.*s\" given twice", (int)klen, k);
        memcpy(keys[n], k, klen);
        keys[n][klen] = '\0';
        n++;
        if (used + klen + vlen + 2 > cap)
            return tags_fail(err, errlen, "tags too long");
        used += (size_t)snprintf(out + used, cap - used, "%s%.*s=%.*s", used ? "," : "",
                                 (int)klen, k, (int)vlen, v);
        if (*p == ',')
            p++;
    }
    return 0;
}

size_t et_batch_mark_historical(uint8_t *buf, size_t len)
{
    buf[len] = (9 << 3) | 0;   /* field 9, varint */
    buf[len + 1] = 1;
    return len + 2;
}
