/*
 * Reading a batch's samples: its dictionary (its own, or its stream's,
 * Batch.dict_id) to metric ids and value kinds, and the samples expanded
 * against it. Streams' dictionaries are kept in the store, shared by
 * every aggregator instance, and the last ones used in memory here.
 *
 * The rules that keep a batch from being stored wrongly or lost:
 *   - A dictionary's entries are immutable: an entry a batch carries for
 *     an index already known with another type or scale makes the batch
 *     malformed (never stored, never acked), not a new meaning.
 *   - A batch that refers to an entry neither this instance nor the store
 *     knows is not stored and not acked: the caller answers it with an Ack
 *     asking for the dictionary (Ack.dict_wanted) and the device sends it
 *     again with the dictionary inline.
 *   - What memory holds may be behind the store (another instance added
 *     entries), never ahead of it: a transaction that rolls back forgets
 *     every dictionary in memory (ingest_dict_forget()).
 */
#include "ingest_priv.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "edgetel/codec.h"

/* Streams' dictionaries kept in memory; the least recently used goes. */
#define INGEST_DICTS 128

struct ingest_dict {
    char device[ET_DEVICE_ID_MAX + 1];
    char stream[ET_STORE_STREAM_HEX_LEN + 1];
    uint64_t id;                   /* 0: a free slot */
    size_t n;                      /* room in the arrays (kinds[i].known says what is set) */
    int64_t *metric_ids;
    struct et_wire_kind *kinds;
    uint64_t used;                 /* the ingest's tick when last used */
};

static void dict_slot_clear(struct ingest_dict *d)
{
    free(d->metric_ids);
    free(d->kinds);
    memset(d, 0, sizeof(*d));
}

void ingest_dict_forget(struct et_ingest *ig)
{
    for (size_t i = 0; ig->dicts && i < INGEST_DICTS; i++)
        dict_slot_clear(&ig->dicts[i]);
}

void ingest_dict_free(struct et_ingest *ig)
{
    ingest_dict_forget(ig);
    free(ig->dicts);
    ig->dicts = NULL;
}

static int dict_room(struct ingest_dict *d, size_t need)
{
    int64_t *ids;
    struct et_wire_kind *kinds;

    if (need <= d->n)
        return 0;
    ids = realloc(d->metric_ids, need * sizeof(*ids));
    if (!ids)
        return -ENOMEM;
    d->metric_ids = ids;
    kinds = realloc(d->kinds, need * sizeof(*kinds));
    if (!kinds)
        return -ENOMEM;
    d->kinds = kinds;
    memset(&d->metric_ids[d->n], 0, (need - d->n) * sizeof(*ids));
    memset(&d->kinds[d->n], 0, (need - d->n) * sizeof(*kinds));
    d->n = need;
    return 0;
}

static int dict_take_row(void *ctx, const struct et_store_dict_entry *e)
{
    struct ingest_dict *d = ctx;

    if (e->idx >= ET_DICT_MAX)
        return 0;
    if (dict_room(d, (size_t)e->idx + 1) < 0)
        return -ENOMEM;
    d->metric_ids[e->idx] = e->metric_id;
    d->kinds[e->idx] = (struct et_wire_kind){
        .known = true, .type = (enum et_wire_type)e->type, .scale = e->scale,
    };
    return 0;
}

/* (device, stream, id) in memory, else a slot filled from the store. */
static int dict_find(struct et_ingest *ig, const char *device, const char *stream,
                     uint64_t id, struct ingest_dict **out, bool *loaded)
{
    struct ingest_dict *d = NULL, *oldest = NULL;
    int ret;

    *loaded = false;
    if (!ig->dicts && !(ig->dicts = calloc(INGEST_DICTS, sizeof(*ig->dicts))))
        return -ENOMEM;
    for (size_t i = 0; i < INGEST_DICTS; i++) {
        struct ingest_dict *s = &ig->dicts[i];

        if (s->id == id && strcmp(s->device, device) == 0 && strcmp(s->stream, stream) == 0) {
            d = s;
            break;
        }
        if (!oldest || s->used < oldest->used)
            oldest = s;
    }
    if (!d) {
        d = oldest;
        dict_slot_clear(d);
        snprintf(d->device, sizeof(d->device), "%s", device);
        snprintf(d->stream, sizeof(d->stream), "%s", stream);
        d->id = id;
        if (et_store_has_dicts(ig->w)) {
            ret = et_store_dict_get(ig->w, device, stream, id, dict_take_row, d);
            if (ret < 0) {
                dict_slot_clear(d);
                return ret;
            }
        }
        *loaded = true;
    }
    d->used = ++ig->dict_tick;
    *out = d;
    return 0;
}

/* The store's id of metric m (named by a batch), its tags kept as the batch has them. */
static int metric_of(struct et_ingest *ig, const char *device, const Edgetel__V1__Metric *m,
                     int64_t *id)
{
    char tags[ET_TAGS_TEXT_MAX];
    size_t used = 0;
    int ret = et_store_metric_id(ig->w, device, m->name, m->unit, id);

    if (ret < 0)
        return ret;
    tags[0] = '\0';
    for (size_t t = 0; t < m->n_tags && used < sizeof(tags); t++)
        used += (size_t)snprintf(tags + used, sizeof(tags) - used, "%s%s=%s", t ? "," : "",
                                 m->tags[t]->key, m->tags[t]->value);
    return et_store_metric_tags(ig->w, *id, tags);
}

/*
 * The kinds b's samples are read with into d's room: d's own and those b
 * carries. -EBADMSG (why) for a carried entry that differs from a kept one.
 */
static int dict_merge(const Edgetel__V1__Batch *b, struct ingest_dict *d,
                      struct et_wire_kind *kinds, char *why, size_t whylen)
{
    if (d->n)
        memcpy(kinds, d->kinds, d->n * sizeof(*kinds));
    et_wire_batch_kinds(b, kinds);
    for (size_t i = 0; i < b->n_metrics; i++) {
        uint32_t idx = b->dict_base + (uint32_t)i;

        if (d->kinds[idx].known &&
            (d->kinds[idx].type != kinds[idx].type || d->kinds[idx].scale != kinds[idx].scale)) {
            snprintf(why, whylen, "dictionary %" PRIu64 " entry %u (%s) differs from the one "
                     "kept (type %d scale %g, now type %d scale %g)", b->dict_id, idx,
                     b->metrics[i]->name, (int)d->kinds[idx].type, d->kinds[idx].scale,
                     (int)kinds[idx].type, kinds[idx].scale);
            return -EBADMSG;
        }
    }
    return 0;
}

/* Read b's samples against d and what b carries into ig->expanded. */
static int dict_read(struct et_ingest *ig, const Edgetel__V1__Batch *b, struct ingest_dict *d,
                     uint32_t *missing, char *why, size_t whylen)
{
    int ret = dict_room(d, b->dict_base + b->n_metrics);

    if (ret == 0)
        ret = ingest_grow((void **)&ig->kinds, &ig->kinds_cap, d->n + 1, sizeof(*ig->kinds));
    if (ret == 0)
        ret = dict_merge(b, d, ig->kinds, why, whylen);
    if (ret == 0)
        ret = et_wire_expand(b, ig->kinds, d->n, ig->expanded, missing, why, whylen);
    return ret;
}

int ingest_dict_read(struct et_ingest *ig, const Edgetel__V1__Batch *b, const char *device,
                     const char *stream, char *why, size_t whylen)
{
    size_t n = et_wire_batch_samples(b);
    struct ingest_dict *d = NULL;
    uint32_t missing = 0;
    bool loaded = false;
    int ret = ingest_grow((void **)&ig->expanded, &ig->expanded_cap, n + 1,
                          sizeof(*ig->expanded));

    if (ret < 0)
        return ret;
    if (b->dict_id == 0) {
        ret = ingest_grow((void **)&ig->kinds, &ig->kinds_cap, b->n_metrics + 1,
                          sizeof(*ig->kinds));
        if (ret == 0) {
            et_wire_batch_kinds(b, ig->kinds);
            ret = et_wire_expand(b, ig->kinds, b->n_metrics, ig->expanded, &missing, why,
                                 whylen);
        }
        return ret == -ENOKEY ? -EBADMSG : ret;   /* the codec checked the indexes */
    }
    ret = dict_find(ig, device, stream, b->dict_id, &d, &loaded);
    if (ret == 0)
        ret = dict_read(ig, b, d, &missing, why, whylen);
    if (ret == -ENOKEY && !loaded && et_store_has_dicts(ig->w)) {
        /* Another instance may have kept what this one has not seen. */
        ret = et_store_dict_get(ig->w, device, stream, b->dict_id, dict_take_row, d);
        if (ret == 0)
            ret = dict_read(ig, b, d, &missing, why, whylen);
    }
    if (ret == -ENOKEY)
        snprintf(why, whylen, "dictionary %" PRIu64 " of stream %s: entry %u is not known",
                 b->dict_id, ingest_stream_name(stream), missing);
    return ret;
}

int ingest_dict_keep(struct et_ingest *ig, const Edgetel__V1__Batch *b, const char *device,
                     const char *stream, const int64_t **metric_ids)
{
    struct ingest_dict *d = NULL;
    bool loaded;
    int ret;

    if (b->dict_id == 0) {
        ret = ingest_grow((void **)&ig->metric_ids, &ig->metric_cap, b->n_metrics + 1,
                          sizeof(*ig->metric_ids));
        for (size_t i = 0; ret == 0 && i < b->n_metrics; i++)
            ret = metric_of(ig, device, b->metrics[i], &ig->metric_ids[i]);
        *metric_ids = ig->metric_ids;
        return ret;
    }
    /* The slot ingest_dict_read() used (nothing has run in between). */
    ret = dict_find(ig, device, stream, b->dict_id, &d, &loaded);
    for (size_t i = 0; ret == 0 && i < b->n_metrics; i++) {
        uint32_t idx = b->dict_base + (uint32_t)i;
        struct et_store_dict_entry e = {
            .idx = idx, .type = (int)ig->kinds[idx].type, .scale = ig->kinds[idx].scale,
        };

        if (d->kinds[idx].known)
            continue;
        ret = metric_of(ig, device, b->metrics[i], &e.metric_id);
        if (ret == 0 && et_store_has_dicts(ig->w))
            ret = et_store_dict_put(ig->w, device, stream, b->dict_id, &e);
        if (ret == 0) {
            d->metric_ids[idx] = e.metric_id;
            d->kinds[idx] = ig->kinds[idx];
        }
    }
    *metric_ids = d ? d->metric_ids : NULL;
    return ret;
}
