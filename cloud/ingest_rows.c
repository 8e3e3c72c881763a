/*
 * A new batch's rows through the store writer: the batch row that claims
 * its key, then its metrics and their tags, its samples (re-timed as
 * retime.h says) and where they are; or, for a batch with impossible
 * sample times, its quarantine row. The transaction is open; ingest.c
 * decides that the batch is new.
 */
#include "ingest_priv.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>

#include "edgetel/codec.h"
#include "edgetel/log.h"
#include "edgetel/retime.h"

int ingest_grow(void **buf, size_t *cap, size_t need, size_t elem)
{
    void *p;

    if (need <= *cap)
        return 0;
    p = realloc(*buf, need * elem);
    if (!p)
        return -ENOMEM;
    *buf = p;
    *cap = need;
    return 0;
}

static void ingest_value(const Edgetel__V1__Sample *s, struct et_store_value *v)
{
    switch (s->value_case) {
    case EDGETEL__V1__SAMPLE__VALUE_F64:
        v->type = ET_TYPE_F64;
        v->u.f64 = s->f64;
        break;
    case EDGETEL__V1__SAMPLE__VALUE_I64:
        v->type = ET_TYPE_I64;
        v->u.i64 = s->i64;
        break;
    case EDGETEL__V1__SAMPLE__VALUE_B:
        v->type = ET_TYPE_BOOL;
        v->u.b = s->b;
        break;
    default:   /* STR; the codec refuses a sample without a value */
        v->type = ET_TYPE_STR;
        v->u.str = s->str;
        break;
    }
}

void ingest_boot_hex(const ProtobufCBinaryData *boot_id, char *out)
{
    if (boot_id->len == ET_BOOT_ID_LEN)
        et_store_hex(boot_id->data, boot_id->len, out);
    else
        out[0] = '\0';
}

/* Keep a metric's tags as its latest batch has them ("k=v,k2=v2"). The
 * decoder checked every tag (no '=' or ',' inside, lengths bounded). */
static int ingest_metric_tags(struct et_ingest *ig, const Edgetel__V1__Metric *m, int64_t id)
{
    char tags[ET_TAGS_TEXT_MAX];
    size_t used = 0;

    tags[0] = '\0';
    for (size_t t = 0; t < m->n_tags && used < sizeof(tags); t++)
        used += (size_t)snprintf(tags + used, sizeof(tags) - used, "%s%s=%s", t ? "," : "",
                                 m->tags[t]->key, m->tags[t]->value);
    return et_store_metric_tags(ig->w, id, tags);
}

int ingest_claim_batch(struct et_ingest *ig, const Edgetel__V1__Batch *b, const char *device,
                       const char *stream_hex, const char *boot_hex, int64_t now_ms)
{
    const struct et_store_batch row = {
        .device = device,
        .stream_hex = stream_hex,
        .seq = b->seq,
        .received_ms = now_ms,
        .n_samples = (uint32_t)b->n_samples,
        .historical = b->historical,
        .boot_id_hex = boot_hex,
        .time_quality = (enum et_time_quality)b->time_quality,
    };

    return et_store_insert_batch(ig->w, &row);
}

/*
 * Store the batch's rows; the transaction is open and the batch row
 * claimed (ingest_claim_batch). Each sample gets the wall time re-timing
 * gives it, or keeps the one it was measured with and is counted in the
 * batch row when it still waits for its boot's clock (retime.h).
 */
int ingest_store_rows(struct et_ingest *ig, const Edgetel__V1__Batch *b,
                      const char *device, const char *stream_hex, const char *boot_hex)
{
    struct et_store_clock own = {
        .base_wall_ms = b->base_wall_ms, .base_mono_ms = b->base_mono_ms,
    };
    struct et_retime rt;
    uint64_t retimed = 0, earlier = 0;
    int64_t id, first_id = 0, last_id = 0;
    uint32_t unsynced = 0;
    int ret;

    if (ingest_grow((void **)&ig->metric_ids, &ig->metric_cap, b->n_metrics,
             sizeof(*ig->metric_ids)) < 0)
        return -ENOMEM;
    for (size_t i = 0; i < b->n_metrics; i++) {
        ret = et_store_metric_id(ig->w, device, b->metrics[i]->name, b->metrics[i]->unit,
                                 &ig->metric_ids[i]);
        if (ret < 0)
            return ret;
        ret = ingest_metric_tags(ig, b->metrics[i], ig->metric_ids[i]);
        if (ret < 0)
            return ret;
    }
    snprintf(own.boot_id_hex, sizeof(own.boot_id_hex), "%s", boot_hex);
    ret = et_retime_clock(ig->w, device, &own,
                          b->time_quality == EDGETEL__V1__TIME_QUALITY__TIME_QUALITY_SYNCED, &rt);
    if (ret < 0)
        return ret;
    for (size_t i = 0; i < b->n_samples; i++) {
        const Edgetel__V1__Sample *s = b->samples[i];
        struct et_store_sample smp = {
            .metric_id = ig->metric_ids[s->metric],
            /* Overflow was ruled out by ingest_check_batch(). */
            .ts_ms = b->base_wall_ms + (ig->mono[i] - b->base_mono_ms),
            .mono_ms = ig->mono[i],
            .time_quality = s->time_quality != EDGETEL__V1__TIME_QUALITY__TIME_QUALITY_UNSPECIFIED
                ? (enum et_time_quality)s->time_quality
                : (enum et_time_quality)b->time_quality,
            .seq = b->seq,
        };

        if (et_retime_sample(&rt, smp.mono_ms, smp.time_quality, &smp.ts_ms)) {
            smp.time_quality = ET_TQ_CORRECTED;
            retimed++;
        } else if (smp.time_quality == ET_TQ_UNSYNCED) {
            unsynced++;
        }
        ingest_value(s, &smp.value);
        ret = et_store_insert_sample(ig->w, &smp, &id);
        if (ret < 0)
            return ret;
        if (i == 0)
            first_id = id;
        last_id = id;
    }
    ret = et_store_batch_samples(ig->w, device, stream_hex, b->seq, first_id, last_id, unsynced);
    if (ret < 0)
        return ret;
    /* A batch of a synchronised clock: what earlier batches of its boot
     * left unsynced can be re-timed now, and later ones will use it. */
    ret = et_retime_boot(ig->w, device, &rt, &earlier);
    if (ret < 0)
        return ret;
    if (earlier)
        et_info("ingest", "device %s: re-timed %" PRIu64 " samples of boot %s measured "
                "before its clock was synchronised", device, earlier, boot_hex);
    ig->pending_retimed = retimed + earlier;
    return 0;
}

int ingest_quarantine_batch(struct et_ingest *ig, const Edgetel__V1__Batch *b,
                            const char *device, const char *stream_hex, const void *payload,
                            size_t len, const char *why)
{
    const struct et_store_quarantined q = {
        .device = device, .stream_hex = stream_hex, .seq = b->seq, .received_ms = ig->now_ms,
        .n_samples = (uint32_t)b->n_samples, .reason = why, .payload = payload, .len = len,
    };

    return et_store_quarantine(ig->w, &q);
}
