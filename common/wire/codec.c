/*
 * Wire codec for edgetel.v1 messages, on protobuf-c.
 *
 * The batch builder keeps samples in a flat array and metric names in a
 * small dictionary; nothing is converted to protobuf-c structs until
 * encode, so adding a sample is a copy and a lookup.
 */
#include "edgetel/codec.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Limits on what a decoded batch may hold; beyond them it is malformed. */
#define WIRE_MAX_METRICS 4096
#define WIRE_MAX_SAMPLES 200000
#define WIRE_MAX_NAME 128
/* A delta beyond ten years is not a clock, it is garbage. */
#define WIRE_MAX_DT_MS (10LL * 366 * 24 * 3600 * 1000)

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
    if (b->n_metrics >= WIRE_MAX_METRICS)
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
    if (!metric || !*metric || strlen(metric) > WIRE_MAX_NAME)
        return -EINVAL;
    if (v->type == ET_TYPE_STR && strnlen(v->u.str, ET_VALUE_STR_MAX + 1) > ET_VALUE_STR_MAX)
        return -EINVAL;
    if (b->n_samples >= WIRE_MAX_SAMPLES)
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

/* ---- decoding ----------------------------------------------------------- */

__attribute__((format(printf, 3, 4)))
static int wire_fail(char *err, size_t errlen, const char *fmt, ...)
{
    va_list ap;

    if (err && errlen) {
        va_start(ap, fmt);
        vsnprintf(err, errlen, fmt, ap);
        va_end(ap);
    }
    return -EBADMSG;
}

bool et_device_id_valid(const char *id)
{
    size_t n = 0;

    if (!id || id[0] == '.' || id[0] == '\0')
        return false;
    for (const char *p = id; *p; p++, n++) {
        unsigned char c = (unsigned char)*p;

        if (n >= 64)
            return false;
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '.' || c == '_' || c == '-'))
            return false;
    }
    return true;
}

static bool tq_valid(int tq)
{
    return tq >= ET_TQ_UNSPECIFIED && tq <= ET_TQ_UNCORRECTABLE;
}

static int batch_check(const Edgetel__V1__Batch *b, char *err, size_t errlen)
{
    if (!et_device_id_valid(b->device_id))
        return wire_fail(err, errlen, "device_id \"%.64s\" is not a valid device id", b->device_id);
    if (b->seq == 0)
        return wire_fail(err, errlen, "seq is 0 (sequence numbers start at 1)");
    if (b->oldest_seq > b->seq)
        return wire_fail(err, errlen, "oldest_seq %llu is above seq %llu",
                         (unsigned long long)b->oldest_seq, (unsigned long long)b->seq);
    if (b->boot_id.len != 0 && b->boot_id.len != ET_BOOT_ID_LEN)
        return wire_fail(err, errlen, "boot_id has %zu bytes, expected %d", b->boot_id.len,
                         ET_BOOT_ID_LEN);
    if (!tq_valid(b->time_quality))
        return wire_fail(err, errlen, "time_quality %d is not a known value", b->time_quality);
    if (b->n_metrics > WIRE_MAX_METRICS)
        return wire_fail(err, errlen, "%zu metrics (at most %d)", b->n_metrics, WIRE_MAX_METRICS);
    if (b->n_samples > WIRE_MAX_SAMPLES)
        return wire_fail(err, errlen, "%zu samples (at most %d)", b->n_samples, WIRE_MAX_SAMPLES);
    for (size_t i = 0; i < b->n_metrics; i++) {
        const char *name = b->metrics[i]->name;
        size_t n = strlen(name);

        if (n == 0 || n > WIRE_MAX_NAME)
            return wire_fail(err, errlen, "metric %zu: name is empty or longer than %d", i,
                             WIRE_MAX_NAME);
        if (strlen(b->metrics[i]->unit) > 32)
            return wire_fail(err, errlen, "metric %zu (%s): unit longer than 32", i, name);
        if (b->metrics[i]->n_tags > ET_TAGS_MAX)
            return wire_fail(err, errlen, "metric %zu (%s): %zu tags (at most %d)", i, name,
                             b->metrics[i]->n_tags, ET_TAGS_MAX);
        for (size_t t = 0; t < b->metrics[i]->n_tags; t++) {
            const Edgetel__V1__Tag *tag = b->metrics[i]->tags[t];
            size_t kl = strlen(tag->key), vl = strlen(tag->value);

            if (kl == 0 || kl > ET_TAG_KEY_MAX || vl > ET_TAG_VALUE_MAX ||
                strpbrk(tag->key, "=,") || strpbrk(tag->value, "=,"))
                return wire_fail(err, errlen, "metric %zu (%s): tag %zu is not a valid key=value",
                                 i, name, t);
        }
    }
    for (size_t i = 0; i < b->n_samples; i++) {
        const Edgetel__V1__Sample *s = b->samples[i];

        if (s->metric >= b->n_metrics)
            return wire_fail(err, errlen, "sample %zu: metric index %u out of range (%zu metrics)",
                             i, s->metric, b->n_metrics);
        if (s->dt_ms > WIRE_MAX_DT_MS || s->dt_ms < -WIRE_MAX_DT_MS)
            return wire_fail(err, errlen, "sample %zu: time delta %lld ms is out of range", i,
                             (long long)s->dt_ms);
        if (!tq_valid(s->time_quality))
            return wire_fail(err, errlen, "sample %zu: time_quality %d is not a known value", i,
                             s->time_quality);
        switch (s->value_case) {
        case EDGETEL__V1__SAMPLE__VALUE_F64:
        case EDGETEL__V1__SAMPLE__VALUE_I64:
        case EDGETEL__V1__SAMPLE__VALUE_B:
            break;
        case EDGETEL__V1__SAMPLE__VALUE_STR:
            if (strlen(s->str) > ET_VALUE_STR_MAX)
                return wire_fail(err, errlen, "sample %zu: string value longer than %d", i,
                                 ET_VALUE_STR_MAX);
            break;
        default:
            return wire_fail(err, errlen, "sample %zu: no value", i);
        }
    }
    return 0;
}

int et_wire_decode_batch(const uint8_t *buf, size_t len, Edgetel__V1__Batch **out,
                         char *err, size_t errlen)
{
    Edgetel__V1__Batch *b;
    int rc;

    if (len > ET_WIRE_MAX_MESSAGE)
        return wire_fail(err, errlen, "message of %zu bytes is over the %d byte limit", len,
                         ET_WIRE_MAX_MESSAGE);
    b = edgetel__v1__batch__unpack(NULL, len, buf);
    if (!b)
        return wire_fail(err, errlen, "%zu bytes are not a valid edgetel.v1.Batch", len);
    rc = batch_check(b, err, errlen);
    if (rc) {
        edgetel__v1__batch__free_unpacked(b, NULL);
        return rc;
    }
    *out = b;
    return 0;
}

void et_wire_free_batch(Edgetel__V1__Batch *b)
{
    if (b)
        edgetel__v1__batch__free_unpacked(b, NULL);
}

void et_wire_sample_times(const Edgetel__V1__Batch *b, int64_t *mono_out)
{
    int64_t t = b->base_mono_ms;

    for (size_t i = 0; i < b->n_samples; i++) {
        t += b->samples[i]->dt_ms;
        mono_out[i] = t;
    }
}

int et_wire_encode_ack(const char *device_id, uint64_t acked_through,
                       const uint64_t *seqs, size_t n_seqs, uint8_t **out, size_t *len)
{
    Edgetel__V1__Ack msg = EDGETEL__V1__ACK__INIT;
    uint8_t *buf;

    msg.device_id = (char *)device_id;
    msg.acked_through = acked_through;
    msg.n_seqs = n_seqs;
    msg.seqs = (uint64_t *)seqs;
    size_t n = edgetel__v1__ack__get_packed_size(&msg);

    buf = malloc(n ? n : 1);
    if (!buf)
        return -ENOMEM;
    *len = edgetel__v1__ack__pack(&msg, buf);
    *out = buf;
    return 0;
}

int et_wire_decode_ack(const uint8_t *buf, size_t len, Edgetel__V1__Ack **out,
                       char *err, size_t errlen)
{
    Edgetel__V1__Ack *a;

    if (len > ET_WIRE_MAX_MESSAGE)
        return wire_fail(err, errlen, "ack of %zu bytes is over the limit", len);
    a = edgetel__v1__ack__unpack(NULL, len, buf);
    if (!a)
        return wire_fail(err, errlen, "%zu bytes are not a valid edgetel.v1.Ack", len);
    if (!et_device_id_valid(a->device_id)) {
        edgetel__v1__ack__free_unpacked(a, NULL);
        return wire_fail(err, errlen, "ack names no valid device id");
    }
    *out = a;
    return 0;
}

int et_wire_decode_status(const uint8_t *buf, size_t len, Edgetel__V1__Status **out,
                          char *err, size_t errlen)
{
    Edgetel__V1__Status *s;

    if (len > ET_WIRE_MAX_MESSAGE)
        return wire_fail(err, errlen, "status of %zu bytes is over the limit", len);
    s = edgetel__v1__status__unpack(NULL, len, buf);
    if (!s)
        return wire_fail(err, errlen, "%zu bytes are not a valid edgetel.v1.Status", len);
    if (!et_device_id_valid(s->device_id)) {
        edgetel__v1__status__free_unpacked(s, NULL);
        return wire_fail(err, errlen, "status names no valid device id");
    }
    if (s->boot_id.len != 0 && s->boot_id.len != ET_BOOT_ID_LEN) {
        size_t n = s->boot_id.len;

        edgetel__v1__status__free_unpacked(s, NULL);
        return wire_fail(err, errlen, "status boot_id has %zu bytes, expected %d", n,
                         ET_BOOT_ID_LEN);
    }
    *out = s;
    return 0;
}

/* ---- peeking ----------------------------------------------------------- */

static int wire_varint(const uint8_t **p, const uint8_t *end, uint64_t *out)
{
    uint64_t v = 0;

    for (int shift = 0; shift < 64 && *p < end; shift += 7) {
        uint8_t byte = *(*p)++;

        v |= (uint64_t)(byte & 0x7f) << shift;
        if (!(byte & 0x80)) {
            *out = v;
            return 0;
        }
    }
    return -EBADMSG;
}

int et_wire_peek_batch(const uint8_t *buf, size_t len, uint8_t boot_id[ET_BOOT_ID_LEN],
                       enum et_time_quality *tq)
{
    const uint8_t *p = buf, *end = buf + len;
    uint64_t key, v;

    memset(boot_id, 0, ET_BOOT_ID_LEN);
    *tq = ET_TQ_UNSPECIFIED;
    while (p < end) {
        if (wire_varint(&p, end, &key))
            return -EBADMSG;
        unsigned field = (unsigned)(key >> 3), type = (unsigned)(key & 7);

        if (field >= 7)
            return 0;    /* the dictionary and samples follow; nothing more to peek */
        switch (type) {
        case 0:
            if (wire_varint(&p, end, &v))
                return -EBADMSG;
            if (field == 6)
                *tq = (enum et_time_quality)v;
            break;
        case 1:
            if (end - p < 8)
                return -EBADMSG;
            p += 8;
            break;
        case 2:
            if (wire_varint(&p, end, &v) || v > (uint64_t)(end - p))
                return -EBADMSG;
            if (field == 3 && v == ET_BOOT_ID_LEN)
                memcpy(boot_id, p, ET_BOOT_ID_LEN);
            p += v;
            break;
        case 5:
            if (end - p < 4)
                return -EBADMSG;
            p += 4;
            break;
        default:
            return -EBADMSG;
        }
    }
    return 0;
}
