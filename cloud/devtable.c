/*
 * A bounded table of per-device state. See devtable.h.
 */
#include "edgetel/devtable.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

/* FNV-1a, 64 bits; never 0, which marks an empty slot. */
static uint64_t devtable_key(const char *device)
{
    uint64_t h = 0xcbf29ce484222325ULL;

    for (const unsigned char *p = (const unsigned char *)device; *p; p++) {
        h ^= *p;
        h *= 0x100000001b3ULL;
    }
    return h ? h : 1;
}

int et_devtable_init(struct et_devtable *t, size_t n_slots, size_t slot_size,
                     et_devtable_forget_fn forget, void *forget_ctx)
{
    memset(t, 0, sizeof(*t));
    if (n_slots < ET_DEVTABLE_WINDOW || (n_slots & (n_slots - 1)) ||
        slot_size < sizeof(struct et_devtable_slot))
        return -EINVAL;
    t->slots = calloc(n_slots, slot_size);
    if (!t->slots)
        return -ENOMEM;
    t->slot_size = slot_size;
    t->n_slots = n_slots;
    t->forget = forget;
    t->forget_ctx = forget_ctx;
    return 0;
}

void et_devtable_fini(struct et_devtable *t)
{
    free(t->slots);
    memset(t, 0, sizeof(*t));
}

static struct et_devtable_slot *slot_at(const struct et_devtable *t, size_t i)
{
    return (struct et_devtable_slot *)(t->slots + (i & (t->n_slots - 1)) * t->slot_size);
}

void *et_devtable_get(struct et_devtable *t, const char *device, int64_t now_ms, bool *fresh)
{
    uint64_t key = devtable_key(device);
    size_t home = (size_t)key;
    struct et_devtable_slot *oldest = NULL, *s;

    *fresh = false;
    for (size_t i = 0; i < ET_DEVTABLE_WINDOW; i++) {
        s = slot_at(t, home + i);
        if (s->key == key) {
            s->seen_ms = now_ms;
            return s;
        }
        if (s->key == 0) {
            /* Slots are never emptied, so the device is not further on. */
            oldest = s;
            t->used++;
            break;
        }
        if (!oldest || s->seen_ms < oldest->seen_ms)
            oldest = s;
    }
    if (oldest->key != 0 && t->forget)
        t->forget(t->forget_ctx, oldest);
    memset(oldest, 0, t->slot_size);
    oldest->key = key;
    oldest->seen_ms = now_ms;
    *fresh = true;
    return oldest;
}

void *et_devtable_at(const struct et_devtable *t, size_t i)
{
    struct et_devtable_slot *s = slot_at(t, i);

    return i < t->n_slots && s->key ? s : NULL;
}
