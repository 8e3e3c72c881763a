/*
 * A bounded table of per-device state: what the cloud keeps in memory
 * about each device (its budget's buckets, budget.h; when its malformed
 * messages were last said, ingest), never more than a fixed number of
 * slots, whatever ids a fleet, or a hostile client with many
 * certificates, uses.
 *
 * Open addressing over a 64-bit hash of the device id (FNV-1a; ids are
 * short and the broker ties each to a certificate, so they are not chosen
 * to collide) within a window of ET_DEVTABLE_WINDOW slots. A device with
 * no slot in its window takes the empty one there, or else the one heard
 * from longest ago: that device's state is forgotten (the forget callback
 * is told first) and it starts afresh when it comes back.
 *
 * Every slot starts with struct et_devtable_slot; the caller's state
 * follows it. One thread: the caller's.
 */
#ifndef EDGETEL_DEVTABLE_H
#define EDGETEL_DEVTABLE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define ET_DEVTABLE_WINDOW 16

/* The head of every slot. */
struct et_devtable_slot {
    uint64_t key;              /* hash of the device id; 0: empty */
    int64_t seen_ms;           /* the last et_devtable_get() of it */
};

/* Called with a slot about to be taken over by another device. */
typedef void (*et_devtable_forget_fn)(void *ctx, void *slot);

struct et_devtable {
    unsigned char *slots;
    size_t slot_size;
    size_t n_slots;            /* a power of two */
    size_t used;
    et_devtable_forget_fn forget;  /* may be NULL */
    void *forget_ctx;
};

/**
 * Set up a table of n_slots (a power of two, at least ET_DEVTABLE_WINDOW)
 * slots of slot_size bytes each (at least the head), all empty.
 * @return 0, -EINVAL or -ENOMEM.
 */
int et_devtable_init(struct et_devtable *t, size_t n_slots, size_t slot_size,
                     et_devtable_forget_fn forget, void *forget_ctx);

/** Free the slots (without calling forget); a zeroed table is a no-op. */
void et_devtable_fini(struct et_devtable *t);

/**
 * The device's slot, its seen_ms set to now_ms. A device that had none
 * gets a zeroed one (but for the head) and *fresh is true.
 */
void *et_devtable_get(struct et_devtable *t, const char *device, int64_t now_ms, bool *fresh);

/** Slot i (0 .. n_slots - 1), or NULL when it is empty. */
void *et_devtable_at(const struct et_devtable *t, size_t i);

#endif
