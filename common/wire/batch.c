/*
 * The batch builder of the wire codec (edgetel/codec.h), on protobuf-c.
 *
 * It keeps samples in a flat array that refers to a dictionary (its own,
 * or the stream's the agent lends it); nothing is converted to protobuf-c
 * structs until encode, so adding a sample is a copy and a lookup (dict.c).
 * Encoding puts what fits into the compact columns (runs of scaled
 * integers) and the rest into typed Samples. Decoding, the other messages
 * and peeking are in codec.c; reading samples back out in expand.c.
 */
#include "edgetel/codec.h"
#include "wire_internal.h"

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>


/* A sample as added: a dictionary index, a time and a value (strings in the arena). */
struct batch_sample {
    uint32_t metric;
    enum et_time_quality tq;
    int64_t mono_ms;
    enum et_type type;
    union {
        double f64;
        int64_t i64;
        bool b;
        size_t str;            /* offset into strs */
    } u;
};

struct et_batch {
    struct et_dict *own;          /* the builder's own dictionary (dict_id 0) */
    struct et_dict *dict;         /* the one in use: own, or a stream's */
    size_t dict_start;            /* dict->n when this batch began */
    struct batch_sample *samples;
    size_t n_samples, cap_samples;
    char *strs;                   /* string values, NUL-terminated one after another */
    size_t strs_len, strs_cap;
    size_t n_not_synced;          /* samples whose time quality is not SYNCED */
};

int et_batch_create(struct et_batch **out)
{
    struct et_batch *b = calloc(1, sizeof(*b));

    if (!b)
        return -ENOMEM;
    if (et_dict_create(&b->own) < 0) {
        free(b);
        return -ENOMEM;
    }
    b->dict = b->own;
    *out = b;
    return 0;
}

void et_batch_destroy(struct et_batch *b)
{
    if (!b)
        return;
    et_dict_destroy(b->own);
    free(b->samples);
    free(b->strs);
    free(b);
}

void et_batch_reset(struct et_batch *b)
{
    /* A stream dictionary's new entries stay new until its owner has kept
     * them and says so (et_batch_use_dict()). */
    if (b->dict == b->own) {
        et_dict_clear(b->own);
        b->dict_start = 0;
    }
    b->n_samples = 0;
    b->strs_len = 0;
    b->n_not_synced = 0;
}

void et_batch_use_dict(struct et_batch *b, struct et_dict *d)
{
    b->dict = d ? d : b->own;
    b->dict_start = b->dict->n;
}

size_t et_batch_dict_start(const struct et_batch *b)
{
    return b->dict_start;
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

int et_batch_add(struct et_batch *b, const char *metric, const char *unit,
                 int64_t mono_ms, const struct et_value *v, enum et_time_quality tq)
{
    return et_batch_add_tagged(b, metric, unit, NULL, mono_ms, v, tq);
}

static int add_string(struct et_batch *b, const char *str, size_t *off)
{
    size_t n = strnlen(str, ET_VALUE_STR_MAX + 1);

    if (n > ET_VALUE_STR_MAX)
        return -EINVAL;
    if (b->strs_len + n + 1 > b->strs_cap) {
        size_t cap = b->strs_cap ? b->strs_cap * 2 : 1024;
        char *grown;

        while (cap < b->strs_len + n + 1)
            cap *= 2;
        grown = realloc(b->strs, cap);
        if (!grown)
            return -ENOMEM;
        b->strs = grown;
        b->strs_cap = cap;
    }
    memcpy(b->strs + b->strs_len, str, n + 1);
    *off = b->strs_len;
    b->strs_len += n + 1;
    return 0;
}

int et_batch_add_tagged(struct et_batch *b, const char *metric, const char *unit,
                        const char *tags, int64_t mono_ms, const struct et_value *v,
                        enum et_time_quality tq)
{
    struct batch_sample *s;
    long idx;
    size_t n_before = b->dict->n;

    if (!metric || !*metric)
        return -EINVAL;
    if (b->n_samples >= ET_WIRE_MAX_SAMPLES)
        return -E2BIG;
    if (b->n_samples == b->cap_samples) {
        size_t cap = b->cap_samples ? b->cap_samples * 2 : 64;
        struct batch_sample *grown = realloc(b->samples, cap * sizeof(*grown));

        if (!grown)
            return -ENOMEM;
        b->samples = grown;
        b->cap_samples = cap;
    }
    idx = et_dict_index(b->dict, metric, unit, tags, v->type, v->resolution);
    if (idx < 0)
        return (int)idx;
    /* A name checked once, when it enters the dictionary. */
    if (b->dict->n > n_before && strlen(metric) > ET_WIRE_MAX_NAME) {
        et_dict_truncate(b->dict, n_before);
        return -EINVAL;
    }
    s = &b->samples[b->n_samples];
    s->type = v->type;
    if (v->type == ET_TYPE_STR) {
        int rc = add_string(b, v->u.str, &s->u.str);

        if (rc)
            return rc;
    } else if (v->type == ET_TYPE_F64) {
        s->u.f64 = v->u.f64;
    } else if (v->type == ET_TYPE_I64) {
        s->u.i64 = v->u.i64;
    } else {
        s->u.b = v->u.b;
    }
    s->metric = (uint32_t)idx;
    s->tq = tq;
    s->mono_ms = mono_ms;
    if (tq != ET_TQ_SYNCED)
        b->n_not_synced++;
    b->n_samples++;
    return 0;
}

/* ---- encoding ---------------------------------------------------------------- */

/* Metrics [from, to) of d as protobuf-c structs; free with metrics_free(). */
struct wire_metrics {
    Edgetel__V1__Metric *m, **ptrs;
    Edgetel__V1__Tag *tags, **tag_ptrs;
    char **tag_text;
    size_t n;
};

static void metrics_free(struct wire_metrics *wm)
{
    for (size_t i = 0; wm->tag_text && i < wm->n; i++)
        free(wm->tag_text[i]);
    free(wm->tag_text);
    free(wm->tags);
    free(wm->tag_ptrs);
    free(wm->m);
    free(wm->ptrs);
}

static int metrics_fill(const struct et_dict *d, size_t from, size_t to, struct wire_metrics *wm)
{
    size_t n_tags = 0, next_tag = 0;

    memset(wm, 0, sizeof(*wm));
    wm->n = to - from;
    if (!wm->n)
        return 0;
    for (size_t i = from; i < to; i++) {
        if (!d->e[i].tags)
            continue;
        n_tags++;
        for (const char *p = d->e[i].tags; *p; p++)
            n_tags += *p == ',';
    }
    wm->m = calloc(wm->n, sizeof(*wm->m));
    wm->ptrs = calloc(wm->n, sizeof(*wm->ptrs));
    wm->tag_text = calloc(wm->n, sizeof(*wm->tag_text));
    if (n_tags) {
        wm->tags = calloc(n_tags, sizeof(*wm->tags));
        wm->tag_ptrs = calloc(n_tags, sizeof(*wm->tag_ptrs));
    }
    if (!wm->m || !wm->ptrs || !wm->tag_text || (n_tags && (!wm->tags || !wm->tag_ptrs)))
        return -ENOMEM;
    for (size_t k = 0; k < wm->n; k++) {
        const struct et_dict_entry *e = &d->e[from + k];
        Edgetel__V1__Metric *m = &wm->m[k];

        edgetel__v1__metric__init(m);
        m->name = e->name;
        m->unit = e->unit;
        m->type = (Edgetel__V1__ValueType)e->type;
        m->scale = e->scale == 1 ? 0 : e->scale;   /* 0 means 1: nine bytes saved */
        wm->ptrs[k] = m;
        if (!e->tags)
            continue;
        /* "k=v,k2=v2" (canonical, checked by et_tags_canonical) into Tags. */
        wm->tag_text[k] = strdup(e->tags);
        if (!wm->tag_text[k])
            return -ENOMEM;
        m->tags = &wm->tag_ptrs[next_tag];
        for (char *save = NULL, *kv = strtok_r(wm->tag_text[k], ",", &save); kv;
             kv = strtok_r(NULL, ",", &save)) {
            char *eq = strchr(kv, '=');
            Edgetel__V1__Tag *t = &wm->tags[next_tag];

            edgetel__v1__tag__init(t);
            if (eq)
                *eq = '\0';
            t->key = kv;
            t->value = eq ? eq + 1 : "";
            wm->tag_ptrs[next_tag++] = t;
            m->n_tags++;
        }
    }
    return 0;
}

/* A sample's raw integer in its entry's compact column; false: it goes typed. */
static bool sample_raw(const struct et_dict_entry *e, const struct batch_sample *s, int64_t *raw)
{
    switch (e->type) {
    case ET_WIRE_TYPE_F64:
        return s->type == ET_TYPE_F64 && et_wire_raw_of(s->u.f64, e->scale, raw);
    case ET_WIRE_TYPE_I64:
        if (s->type != ET_TYPE_I64)
            return false;
        if (e->scale == 1) {
            *raw = s->u.i64;
            return true;
        }
        if (s->u.i64 % (int64_t)e->scale != 0)
            return false;
        *raw = s->u.i64 / (int64_t)e->scale;
        return true;
    case ET_WIRE_TYPE_BOOL:
        if (s->type != ET_TYPE_BOOL)
            return false;
        *raw = s->u.b;
        return true;
    case ET_WIRE_TYPE_NONE:
        break;
    }
    return false;
}

/* The columns of one encode: runs, values and the typed samples. */
struct wire_columns {
    int64_t *run_dt;
    int32_t *run_metric;
    uint32_t *run_len;
    size_t n_runs;
    int64_t *values;
    size_t n_values;
    Edgetel__V1__Sample *typed, **typed_ptrs;
    size_t n_typed;
};

static void columns_free(struct wire_columns *c)
{
    free(c->run_dt);
    free(c->run_metric);
    free(c->run_len);
    free(c->values);
    free(c->typed);
    free(c->typed_ptrs);
}

static void typed_sample(const struct et_batch *b, const struct batch_sample *s,
                         enum et_time_quality batch_tq, int64_t dt, Edgetel__V1__Sample *w)
{
    edgetel__v1__sample__init(w);
    w->metric = s->metric;
    w->dt_ms = dt;
    if (s->tq != batch_tq)
        w->time_quality = (Edgetel__V1__TimeQuality)s->tq;
    switch (s->type) {
    case ET_TYPE_F64:
        w->value_case = EDGETEL__V1__SAMPLE__VALUE_F64;
        w->f64 = s->u.f64;
        break;
    case ET_TYPE_I64:
        w->value_case = EDGETEL__V1__SAMPLE__VALUE_I64;
        w->i64 = s->u.i64;
        break;
    case ET_TYPE_BOOL:
        w->value_case = EDGETEL__V1__SAMPLE__VALUE_B;
        w->b = s->u.b;
        break;
    case ET_TYPE_STR:
        w->value_case = EDGETEL__V1__SAMPLE__VALUE_STR;
        w->str = b->strs + s->u.str;
        break;
    }
}

/*
 * Split the samples into runs of compact values (consecutive metrics at
 * one time, the batch's time quality, a value that fits its entry) and
 * typed Samples for the rest; a metric's later values in the batch are
 * differences from its previous one (modulo 2^64).
 */
static int columns_make(const struct et_batch *b, const struct et_batch_meta *meta,
                        struct wire_columns *c)
{
    const struct et_dict *d = b->dict;
    size_t n = b->n_samples;
    int64_t *last = calloc(d->n ? d->n : 1, sizeof(*last));
    uint8_t *seen = calloc(d->n ? d->n : 1, 1);
    int64_t run_time = meta->base_mono_ms, typed_time = meta->base_mono_ms;
    uint32_t run_end = 0;
    bool in_run = false;
    int rc = -ENOMEM;

    memset(c, 0, sizeof(*c));
    c->run_dt = malloc(n * sizeof(*c->run_dt) + 1);
    c->run_metric = malloc(n * sizeof(*c->run_metric) + 1);
    c->run_len = malloc(n * sizeof(*c->run_len) + 1);
    c->values = malloc(n * sizeof(*c->values) + 1);
    if (!last || !seen || !c->run_dt || !c->run_metric || !c->run_len || !c->values)
        goto out;
    for (size_t i = 0; i < n; i++) {
        const struct batch_sample *s = &b->samples[i];
        int64_t raw;

        if (s->tq == meta->time_quality && sample_raw(&d->e[s->metric], s, &raw)) {
            int64_t v = seen[s->metric] ? (int64_t)((uint64_t)raw - (uint64_t)last[s->metric])
                                        : raw;

            last[s->metric] = raw;
            seen[s->metric] = 1;
            c->values[c->n_values++] = v;
            if (in_run && s->mono_ms == run_time && s->metric == run_end) {
                c->run_len[c->n_runs - 1]++;
            } else {
                c->run_dt[c->n_runs] = s->mono_ms - run_time;
                c->run_metric[c->n_runs] = (int32_t)s->metric - (int32_t)run_end;
                c->run_len[c->n_runs] = 1;
                c->n_runs++;
                run_time = s->mono_ms;
                in_run = true;
            }
            run_end = s->metric + 1;
            continue;
        }
        if (!c->typed) {
            c->typed = calloc(n, sizeof(*c->typed));
            c->typed_ptrs = calloc(n, sizeof(*c->typed_ptrs));
            if (!c->typed || !c->typed_ptrs)
                goto out;
        }
        typed_sample(b, s, meta->time_quality, s->mono_ms - typed_time, &c->typed[c->n_typed]);
        typed_time = s->mono_ms;
        c->typed_ptrs[c->n_typed] = &c->typed[c->n_typed];
        c->n_typed++;
    }
    rc = 0;
out:
    free(last);
    free(seen);
    return rc;
}

static int pack_batch(Edgetel__V1__Batch *msg, uint8_t **out, size_t *len)
{
    size_t n = edgetel__v1__batch__get_packed_size(msg);
    uint8_t *buf = malloc(n ? n : 1);

    if (!buf)
        return -ENOMEM;
    *len = edgetel__v1__batch__pack(msg, buf);
    *out = buf;
    return 0;
}

static int batch_encode(const struct et_batch *b, const struct et_batch_meta *meta,
                        bool self_contained, uint8_t **out, size_t *len)
{
    Edgetel__V1__Batch msg = EDGETEL__V1__BATCH__INIT;
    const struct et_dict *d = b->dict;
    bool stream = d != b->own && !self_contained;
    struct wire_metrics wm;
    struct wire_columns c;
    int rc;

    if (stream && d->id == 0)
        return -EINVAL;
    rc = metrics_fill(d, stream ? b->dict_start : 0, d->n, &wm);
    if (rc == 0)
        rc = columns_make(b, meta, &c);
    else
        memset(&c, 0, sizeof(c));
    if (rc)
        goto out;
    msg.device_id = (char *)meta->device_id;
    msg.seq = meta->seq;
    msg.boot_id.data = (uint8_t *)meta->boot_id;
    msg.boot_id.len = ET_BOOT_ID_LEN;
    msg.base_mono_ms = meta->base_mono_ms;
    msg.base_wall_ms = meta->base_wall_ms;
    msg.time_quality = (Edgetel__V1__TimeQuality)meta->time_quality;
    msg.n_metrics = wm.n;
    msg.metrics = wm.ptrs;
    msg.n_samples = c.n_typed;
    msg.samples = c.typed_ptrs;
    msg.oldest_seq = meta->oldest_seq;
    msg.stream_id.data = (uint8_t *)meta->stream_id;
    msg.stream_id.len = meta->stream_id ? ET_STREAM_ID_LEN : 0;
    if (stream) {
        msg.dict_id = d->id;
        msg.dict_base = (uint32_t)b->dict_start;
    }
    msg.n_run_dt_ms = c.n_runs;
    msg.run_dt_ms = c.run_dt;
    msg.n_run_metric = c.n_runs;
    msg.run_metric = c.run_metric;
    msg.n_run_len = c.n_runs;
    msg.run_len = c.run_len;
    msg.n_values = c.n_values;
    msg.values = c.values;
    rc = pack_batch(&msg, out, len);
out:
    columns_free(&c);
    metrics_free(&wm);
    return rc;
}

int et_batch_encode(const struct et_batch *b, const struct et_batch_meta *meta,
                    uint8_t **out, size_t *len)
{
    return batch_encode(b, meta, false, out, len);
}

int et_batch_encode_inline(const struct et_batch *b, const struct et_batch_meta *meta,
                           uint8_t **out, size_t *len)
{
    return batch_encode(b, meta, true, out, len);
}

int et_batch_add_dict(const uint8_t *blob, size_t len, const struct et_dict *d,
                      uint8_t **out, size_t *out_len)
{
    Edgetel__V1__Batch *msg = edgetel__v1__batch__unpack(NULL, len, blob);
    struct wire_metrics wm;
    size_t n_metrics;
    Edgetel__V1__Metric **metrics;
    int rc;

    if (!msg)
        return -EBADMSG;
    if (msg->dict_id == 0 || msg->dict_id != d->id) {
        edgetel__v1__batch__free_unpacked(msg, NULL);
        return -ENOENT;
    }
    rc = metrics_fill(d, 0, d->n, &wm);
    if (rc == 0) {
        /* Lend the message the whole dictionary for the pack, then give its own back. */
        n_metrics = msg->n_metrics;
        metrics = msg->metrics;
        msg->n_metrics = wm.n;
        msg->metrics = wm.ptrs;
        msg->dict_base = 0;
        rc = pack_batch(msg, out, out_len);
        msg->n_metrics = n_metrics;
        msg->metrics = metrics;
    }
    metrics_free(&wm);
    edgetel__v1__batch__free_unpacked(msg, NULL);
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
