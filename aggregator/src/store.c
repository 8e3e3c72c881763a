/*
 * Store front end: picks the backend by type and forwards each call
 * through its vtable.
 */
#include "edgetel/store.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

static const struct et_store_ops *const store_backends[] = {
    &et_store_sqlite_ops,
};

int et_store_open(struct et_store **out, const char *type, const char *target,
                  unsigned flags, char *err, size_t errlen)
{
    *out = NULL;
    if (!type)
        type = ET_STORE_DEFAULT_TYPE;
    for (size_t i = 0; i < sizeof(store_backends) / sizeof(store_backends[0]); i++) {
        if (strcmp(store_backends[i]->type, type) == 0)
            return store_backends[i]->open(out, target, flags, err, errlen);
    }
    snprintf(err, errlen, "unknown store type \"%s\" (this build has: sqlite)", type);
    return -EPROTONOSUPPORT;
}

void et_store_close(struct et_store *s)
{
    if (s)
        s->ops->close(s);
}

int et_store_begin(struct et_store *s)
{
    if (s->group_open)
        return s->group_failed ? -ECANCELED : 0;   /* joins the group's transaction */
    return s->ops->begin(s);
}

int et_store_commit(struct et_store *s)
{
    if (s->group_open)
        return s->group_failed ? -ECANCELED : 0;   /* durable at et_store_group_commit() */
    return s->ops->commit(s);
}

int et_store_rollback(struct et_store *s)
{
    if (s->group_open) {
        /* Part of the group's transaction may be this message's half-done
         * writes: the only safe undo is the whole group's. */
        s->group_failed = true;
        return 0;
    }
    return s->ops->rollback(s);
}

int et_store_group_begin(struct et_store *s)
{
    int rc;

    if (s->group_open)
        return -EALREADY;
    rc = s->ops->begin(s);
    if (rc)
        return rc;
    s->group_open = true;
    s->group_failed = false;
    return 0;
}

int et_store_group_commit(struct et_store *s)
{
    bool failed = s->group_failed;

    if (!s->group_open)
        return -EINVAL;
    s->group_open = false;
    s->group_failed = false;
    if (failed) {
        s->ops->rollback(s);
        return -ECANCELED;
    }
    return s->ops->commit(s);
}

int et_store_metric_tags(struct et_store *s, int64_t id, const char *tags)
{
    return s->ops->metric_tags(s, id, tags);
}

int et_store_batch_seen(struct et_store *s, const char *device, uint64_t seq, bool *seen)
{
    return s->ops->batch_seen(s, device, seq, seen);
}

int et_store_device_seen(struct et_store *s, const char *device, int64_t now_ms,
                         const char *boot_id_hex, uint64_t add_samples, bool *created)
{
    return s->ops->device_seen(s, device, now_ms, boot_id_hex, add_samples, created);
}

int et_store_metric_id(struct et_store *s, const char *device, const char *name,
                       const char *unit, int64_t *id)
{
    return s->ops->metric_id(s, device, name, unit, id);
}

int et_store_insert_batch(struct et_store *s, const struct et_store_batch *b)
{
    return s->ops->insert_batch(s, b);
}

int et_store_insert_sample(struct et_store *s, const struct et_store_sample *smp, int64_t *id)
{
    return s->ops->insert_sample(s, smp, id);
}

int et_store_advance_ack(struct et_store *s, const char *device, uint64_t floor,
                         uint64_t *acked_through)
{
    return s->ops->advance_ack(s, device, floor, acked_through);
}

int et_store_device_status(struct et_store *s, const struct et_store_status *st,
                           int64_t now_ms, bool *created, bool *changed)
{
    return s->ops->device_status(s, st, now_ms, created, changed);
}

int et_store_devices(struct et_store *s, const char *only, et_store_device_cb cb, void *ctx)
{
    return s->ops->devices(s, only, cb, ctx);
}

int et_store_metrics(struct et_store *s, const char *device, et_store_metric_cb cb, void *ctx)
{
    return s->ops->metrics(s, device, cb, ctx);
}

int et_store_query(struct et_store *s, const struct et_store_query *q,
                   et_store_sample_cb cb, void *ctx)
{
    return s->ops->query(s, q, cb, ctx);
}

int et_store_samples_after(struct et_store *s, int64_t after_id, const char *device,
                           unsigned limit, et_store_sample_cb cb, void *ctx)
{
    return s->ops->samples_after(s, after_id, device, limit, cb, ctx);
}

int et_store_last_sample_id(struct et_store *s, int64_t *id)
{
    return s->ops->last_sample_id(s, id);
}

int et_store_clock_get(struct et_store *s, const char *device, struct et_store_clock *out)
{
    return s->ops->clock_get(s, device, out);
}

int et_store_retime(struct et_store *s, const char *device, const struct et_store_clock *clk,
                    uint64_t *retimed)
{
    return s->ops->retime(s, device, clk, retimed);
}

void et_store_hex(const uint8_t *bytes, size_t n, char *out)
{
    static const char digits[] = "0123456789abcdef";

    for (size_t i = 0; i < n; i++) {
        out[2 * i] = digits[bytes[i] >> 4];
        out[2 * i + 1] = digits[bytes[i] & 0xf];
    }
    out[2 * n] = '\0';
}
