/*
 * Re-timing samples measured on an unsynchronised clock. See retime.h.
 */
#include "edgetel/retime.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

int et_retime_clock(struct et_store_writer *w, const char *device,
                    const struct et_store_clock *batch, bool synced, struct et_retime *rt)
{
    int ret;

    memset(rt, 0, sizeof(*rt));
    if (!batch->boot_id_hex[0])
        return 0;   /* no boot id: monotonic times of different boots look alike */
    if (synced) {
        rt->clk = *batch;
        rt->known = rt->fresh = true;
        return 0;
    }
    ret = et_store_clock_get(w, device, &rt->clk);
    if (ret == 0)
        rt->known = strcmp(rt->clk.boot_id_hex, batch->boot_id_hex) == 0;
    return ret;
}

bool et_retime_sample(const struct et_retime *rt, int64_t mono_ms, enum et_time_quality tq,
                      int64_t *ts_ms)
{
    int64_t since_base, wall;

    if (!rt->known || tq != ET_TQ_UNSYNCED)
        return false;
    if (__builtin_sub_overflow(mono_ms, rt->clk.base_mono_ms, &since_base) ||
        since_base < -ET_RETIME_SPAN_MS || since_base > ET_RETIME_SPAN_MS ||
        __builtin_add_overflow(rt->clk.base_wall_ms, since_base, &wall))
        return false;
    *ts_ms = wall;
    return true;
}

/* Samples to re-time, collected before any is written (store_writer.h). */
struct retime_list {
    const struct et_retime *rt;
    struct { int64_t id, ts_ms; } *items;
    size_t n, cap;
};

static int collect(void *ctx, const struct et_store_sample *s)
{
    struct retime_list *list = ctx;
    int64_t ts_ms;
    void *grown;

    if (!et_retime_sample(list->rt, s->mono_ms, s->time_quality, &ts_ms))
        return 0;
    if (list->n == list->cap) {
        list->cap = list->cap ? list->cap * 2 : 64;
        grown = realloc(list->items, list->cap * sizeof(*list->items));
        if (!grown)
            return -ENOMEM;
        list->items = grown;
    }
    list->items[list->n].id = s->id;
    list->items[list->n].ts_ms = ts_ms;
    list->n++;
    return 0;
}

int et_retime_boot(struct et_store_writer *w, const char *device, const struct et_retime *rt,
                   uint64_t *retimed)
{
    struct retime_list list = { .rt = rt };
    int ret;

    if (retimed)
        *retimed = 0;
    if (!rt->fresh)
        return 0;
    ret = et_store_unsynced_samples(w, device, rt->clk.boot_id_hex, collect, &list);
    for (size_t i = 0; ret == 0 && i < list.n; i++)
        ret = et_store_sample_time(w, list.items[i].id, list.items[i].ts_ms, ET_TQ_CORRECTED);
    if (ret == 0)
        ret = et_store_unsynced_done(w, device, rt->clk.boot_id_hex);
    if (ret == 0)
        ret = et_store_clock_set(w, device, &rt->clk);
    if (ret == 0 && retimed)
        *retimed = list.n;
    free(list.items);
    return ret;
}
