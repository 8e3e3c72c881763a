/*
 * Reading a decoded batch's samples back out (edgetel/codec.h): the
 * compact runs of scaled integers and the typed Samples, as one list; and
 * a reader that keeps the stream dictionaries it has seen, for tests and
 * tools without a store.
 */
#include "edgetel/codec.h"
#include "wire_internal.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void et_wire_batch_kinds(const Edgetel__V1__Batch *b, struct et_wire_kind *kinds)
{
    for (size_t i = 0; i < b->n_metrics; i++) {
        const Edgetel__V1__Metric *m = b->metrics[i];
        struct et_wire_kind *k = &kinds[b->dict_base + i];

        k->known = true;
        k->type = (enum et_wire_type)m->type;
        k->scale = m->scale == 0 ? 1 : m->scale;
    }
}

/* One compact value of entry k from its raw integer. */
static int expand_value(const struct et_wire_kind *k, int64_t raw, struct et_wire_sample *s,
                        size_t at, char *err, size_t errlen)
{
    switch (k->type) {
    case ET_WIRE_TYPE_F64:
        s->type = ET_TYPE_F64;
        s->u.f64 = wire_value_of(raw, k->scale);
        return 0;
    case ET_WIRE_TYPE_I64:
        s->type = ET_TYPE_I64;
        if (k->scale != 1 && __builtin_mul_overflow(raw, (int64_t)k->scale, &s->u.i64))
            return wire_fail(err, errlen, "value %zu: %lld times %g overflows", at,
                               (long long)raw, k->scale);
        if (k->scale == 1)
            s->u.i64 = raw;
        return 0;
    case ET_WIRE_TYPE_BOOL:
        if (raw != 0 && raw != 1)
            return wire_fail(err, errlen, "value %zu: a bool of %lld", at, (long long)raw);
        s->type = ET_TYPE_BOOL;
        s->u.b = raw == 1;
        return 0;
    case ET_WIRE_TYPE_NONE:
        break;
    }
    return wire_fail(err, errlen, "value %zu: its metric has no compact type", at);
}

int et_wire_expand(const Edgetel__V1__Batch *b, const struct et_wire_kind *kinds, size_t n_kinds,
                   struct et_wire_sample *out, uint32_t *missing, char *err, size_t errlen)
{
    int64_t *times = malloc((et_wire_batch_samples(b) + 1) * sizeof(*times));
    int64_t *last = calloc(n_kinds + 1, sizeof(*last));
    uint8_t *seen = calloc(n_kinds + 1, 1);
    int64_t end = 0;
    size_t o = 0;
    int rc = -ENOMEM;

    if (!times || !last || !seen)
        goto out;
    et_wire_sample_times(b, times);
    rc = 0;
    for (size_t k = 0; rc == 0 && k < b->n_run_dt_ms; k++) {
        int64_t first = end + b->run_metric[k];

        for (uint32_t j = 0; rc == 0 && j < b->run_len[k]; j++, o++) {
            uint32_t m = (uint32_t)(first + j);
            int64_t raw = b->values[o];

            if (m >= n_kinds || !kinds[m].known) {
                *missing = m;
                rc = -ENOKEY;
                break;
            }
            if (seen[m])
                raw = (int64_t)((uint64_t)last[m] + (uint64_t)raw);
            last[m] = raw;
            seen[m] = 1;
            out[o].metric = m;
            out[o].mono_ms = times[o];
            out[o].tq = (enum et_time_quality)b->time_quality;
            rc = expand_value(&kinds[m], raw, &out[o], o, err, errlen);
        }
        end = first + b->run_len[k];
    }
    for (size_t i = 0; rc == 0 && i < b->n_samples; i++, o++) {
        const Edgetel__V1__Sample *s = b->samples[i];

        if (b->dict_id && (s->metric >= n_kinds || !kinds[s->metric].known)) {
            *missing = s->metric;
            rc = -ENOKEY;
            break;
        }
        out[o].metric = s->metric;
        out[o].mono_ms = times[o];
        out[o].tq = s->time_quality != EDGETEL__V1__TIME_QUALITY__TIME_QUALITY_UNSPECIFIED
            ? (enum et_time_quality)s->time_quality : (enum et_time_quality)b->time_quality;
        switch (s->value_case) {
        case EDGETEL__V1__SAMPLE__VALUE_F64:
            out[o].type = ET_TYPE_F64;
            out[o].u.f64 = s->f64;
            break;
        case EDGETEL__V1__SAMPLE__VALUE_I64:
            out[o].type = ET_TYPE_I64;
            out[o].u.i64 = s->i64;
            break;
        case EDGETEL__V1__SAMPLE__VALUE_B:
            out[o].type = ET_TYPE_BOOL;
            out[o].u.b = s->b;
            break;
        default:   /* STR; the codec refuses a sample without a value */
            out[o].type = ET_TYPE_STR;
            out[o].u.str = s->str;
            break;
        }
    }
out:
    free(times);
    free(last);
    free(seen);
    return rc;
}

/* ---- the reader ------------------------------------------------------------ */

struct reader_dict {
    struct reader_dict *next;
    uint8_t stream[ET_STREAM_ID_LEN];
    size_t stream_len;
    uint64_t id;
    size_t n;                   /* entries 0 .. n-1 have room; kinds[i].known says which are set */
    struct et_wire_kind *kinds;
    char **names, **units;
};

struct et_wire_reader {
    struct reader_dict *dicts;
    struct reader_dict *own;    /* the last read batch's own dictionary */
    char **strs;                /* string values of the last read */
    size_t n_strs;
};

static void reader_strs_free(struct et_wire_reader *r)
{
    for (size_t i = 0; i < r->n_strs; i++)
        free(r->strs[i]);
    free(r->strs);
    r->strs = NULL;
    r->n_strs = 0;
}

int et_wire_reader_create(struct et_wire_reader **out)
{
    *out = calloc(1, sizeof(**out));
    return *out ? 0 : -ENOMEM;
}

static void reader_dict_free(struct reader_dict *d)
{
    for (size_t i = 0; i < d->n; i++) {
        free(d->names[i]);
        free(d->units[i]);
    }
    free(d->names);
    free(d->units);
    free(d->kinds);
    free(d);
}

void et_wire_reader_destroy(struct et_wire_reader *r)
{
    if (!r)
        return;
    reader_strs_free(r);
    if (r->own)
        reader_dict_free(r->own);
    while (r->dicts) {
        struct reader_dict *d = r->dicts;

        r->dicts = d->next;
        reader_dict_free(d);
    }
    free(r);
}

/* The reader's dictionary for b (made when new); the batch's own one is made fresh. */
static struct reader_dict *reader_dict_for(struct et_wire_reader *r, const Edgetel__V1__Batch *b)
{
    struct reader_dict *d;

    for (d = r->dicts; b->dict_id && d; d = d->next)
        if (d->id == b->dict_id && d->stream_len == b->stream_id.len &&
            (!d->stream_len || memcmp(d->stream, b->stream_id.data, d->stream_len) == 0))
            return d;
    d = calloc(1, sizeof(*d));
    if (!d)
        return NULL;
    d->id = b->dict_id;
    d->stream_len = b->stream_id.len;
    if (d->stream_len)
        memcpy(d->stream, b->stream_id.data, d->stream_len);
    if (b->dict_id) {
        d->next = r->dicts;
        r->dicts = d;
    } else {            /* a batch's own dictionary lives until the next read */
        if (r->own)
            reader_dict_free(r->own);
        r->own = d;
    }
    return d;
}

static int reader_learn(struct reader_dict *d, const Edgetel__V1__Batch *b)
{
    size_t need = b->dict_base + b->n_metrics;

    if (need > d->n) {
        struct et_wire_kind *k = realloc(d->kinds, need * sizeof(*k));
        char **names = k ? realloc(d->names, need * sizeof(*names)) : NULL;
        char **units = names ? realloc(d->units, need * sizeof(*units)) : NULL;

        if (k)
            d->kinds = k;
        if (names)
            d->names = names;
        if (!units)
            return -ENOMEM;
        d->units = units;
        memset(&d->kinds[d->n], 0, (need - d->n) * sizeof(*k));
        memset(&d->names[d->n], 0, (need - d->n) * sizeof(*names));
        memset(&d->units[d->n], 0, (need - d->n) * sizeof(*units));
        d->n = need;
    }
    et_wire_batch_kinds(b, d->kinds);
    for (size_t i = 0; i < b->n_metrics; i++) {
        size_t at = b->dict_base + i;

        free(d->names[at]);
        free(d->units[at]);
        d->names[at] = strdup(b->metrics[i]->name);
        d->units[at] = strdup(b->metrics[i]->unit);
        if (!d->names[at] || !d->units[at])
            return -ENOMEM;
    }
    return 0;
}

int et_wire_read(struct et_wire_reader *r, const uint8_t *buf, size_t len,
                 struct et_wire_named **out, size_t *n, char *err, size_t errlen)
{
    Edgetel__V1__Batch *b = NULL;
    struct et_wire_sample *s = NULL;
    struct reader_dict *d;
    uint32_t missing = 0;
    size_t count;
    int rc = et_wire_decode_batch(buf, len, &b, err, errlen);

    *out = NULL;
    *n = 0;
    if (rc)
        return rc;
    count = et_wire_batch_samples(b);
    d = reader_dict_for(r, b);
    rc = d ? reader_learn(d, b) : -ENOMEM;
    if (rc == 0 && !(s = calloc(count + 1, sizeof(*s))))
        rc = -ENOMEM;
    if (rc == 0)
        rc = et_wire_expand(b, d->kinds, d->n, s, &missing, err, errlen);
    if (rc == -ENOKEY && err && errlen)
        snprintf(err, errlen, "metric %u of dictionary %llu is not known", missing,
                 (unsigned long long)b->dict_id);
    if (rc == 0 && !(*out = calloc(count + 1, sizeof(**out))))
        rc = -ENOMEM;
    reader_strs_free(r);
    if (rc == 0 && !(r->strs = calloc(count + 1, sizeof(*r->strs))))
        rc = -ENOMEM;
    for (size_t i = 0; rc == 0 && i < count; i++) {
        (*out)[i].s = s[i];
        (*out)[i].name = d->names[s[i].metric];
        (*out)[i].unit = d->units[s[i].metric];
        if (s[i].type == ET_TYPE_STR) {   /* points into the batch, which goes */
            r->strs[r->n_strs] = strdup(s[i].u.str);
            if (!r->strs[r->n_strs])
                rc = -ENOMEM;
            (*out)[i].s.u.str = r->strs[r->n_strs++];
        }
    }
    if (rc == 0)
        *n = count;
    else if (*out) {
        free(*out);
        *out = NULL;
    }
    free(s);
    et_wire_free_batch(b);
    return rc;
}
