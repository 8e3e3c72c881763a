/*
 * A new batch's rows through the store writer: the batch row that claims
 * its key, then its samples (read by ingest_dict.c, which also keeps its
 * metrics; re-timed as retime.h says) and where they are; or, for a batch
 * with impossible sample times, its quarantine row. The transaction is
 * open; ingest.c decides that the batch is new.
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

/* A read sample's value as the store takes it. */
static void ingest_value(const struct et_wire_sample *s, struct et_store_value *v)
{
    v->type = s->type;
    switch (s->type) {
    case ET_TYPE_F64:
        v->u.f64 = s->u.f64;
        break;
    case ET_TYPE_I64:
        v->u.i64 = s->u.i64;
        break;
    case ET_TYPE_BOOL:
        v->u.b = s->u.b;
        break;
    case ET_TYPE_STR:
        v->u.str = s->u.str;
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

int ingest_claim_batch(struct et_ingest *ig, const Edgetel__V1__Batch *b, const char *device,
                       const char *stream_hex, const char *boot_hex, int64_t now_ms)
{
    const struct et_store_batch row = {
        .device = device,
        .stream_hex = stream_hex,
        .seq = b->seq,
        .received_ms = now_ms,
        .n_samples = (uint32_t)et_wire_batch_samples(b),
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
                      const int64_t *metric_ids, const char *device, const char *stream_hex,
                      const char *boot_hex)
{
    size_t n = et_wire_batch_samples(b);
    struct et_store_clock own = {
        .base_wall_ms = b->base_wall_ms, .base_mono_ms = b->base_mono_ms,
    };
    struct et_retime rt;
    uint64_t retimed = 0, earlier = 0;
    int64_t id, first_id = 0, last_id = 0;
    uint32_t unsynced = 0;
    int ret;

    snprintf(own.boot_id_hex, sizeof(own.boot_id_hex), "%s", boot_hex);
    ret = et_retime_clock(ig->w, device, &own,
                          b->time_quality == EDGETEL__V1__TIME_QUALITY__TIME_QUALITY_SYNCED, &rt);
    if (ret < 0)
        return ret;
    for (size_t i = 0; i < n; i++) {
        const struct et_wire_sample *s = &ig->expanded[i];
        struct et_store_sample smp = {
            .metric_id = metric_ids[s->metric],
            /* Overflow was ruled out by ingest_check_batch(). */
            .ts_ms = b->base_wall_ms + (s->mono_ms - b->base_mono_ms),
            .mono_ms = s->mono_ms,
            .time_quality = s->tq,
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
        .n_samples = (uint32_t)et_wire_batch_samples(b), .reason = why, .payload = payload, .len = len,
    };

    return et_store_quarantine(ig->w, &q);
}
