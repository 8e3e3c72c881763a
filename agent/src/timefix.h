/*
 * Time you can trust on boards without a real-time clock.
 *
 * A board boots with a wrong wall clock until NTP syncs. Samples carry the
 * monotonic time they were taken and whether the clock was synchronised
 * then. Once the clock syncs, the offset wall - monotonic is known for this
 * boot, and every sample of this boot taken before the sync gets
 *   wall = sync wall - (sync monotonic - sample monotonic)
 * that is, offset + sample monotonic. That is done when a batch is sent:
 * batches in the outbox keep the bytes they were made with, and the
 * corrected copy goes on the wire marked CORRECTED. A batch from an
 * earlier boot that never saw a sync cannot be corrected: it is sent marked
 * UNCORRECTABLE, never with a wall time presented as good.
 *
 * The offset of each boot that saw a sync is kept in a small file in the
 * data directory (last 8 boots), so batches of an earlier boot that is
 * still in the outbox after a reboot are corrected too.
 */
#ifndef EDGETEL_TIMEFIX_H
#define EDGETEL_TIMEFIX_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "edgetel/codec.h"

#define ET_TIMEFIX_BOOTS 8

struct et_timefix_boot {
    uint8_t boot_id[ET_BOOT_ID_LEN];
    int64_t offset_ms;     /* wall - monotonic while synced */
};

struct et_timefix {
    char path[4096];
    uint8_t boot_id[ET_BOOT_ID_LEN];
    bool synced_this_boot;
    /* [0] is the current boot once it synced; older boots after it. */
    struct et_timefix_boot boots[ET_TIMEFIX_BOOTS];
    size_t n_boots;
};

/** Load what earlier runs learnt from path (absent: nothing learnt). */
int et_timefix_init(struct et_timefix *t, const char *path, const uint8_t boot_id[ET_BOOT_ID_LEN]);

/**
 * Tell the clock state at a moment. Records the offset when the clock is
 * synced (persisting it on the first sync of a boot and when it moves by
 * more than a second). Returns true when this call saw the first sync of
 * this boot.
 */
bool et_timefix_observe(struct et_timefix *t, bool synced, int64_t mono_ms, int64_t wall_ms);

/**
 * Prepare an encoded batch for sending. When its times need fixing, writes
 * a corrected (or marked uncorrectable) copy to a malloc'd *out with 16
 * spare bytes and returns 1; returns 0 when the batch goes as it is;
 * -errno on failure (the caller sends it as it is).
 */
int et_timefix_apply(const struct et_timefix *t, const uint8_t *blob, size_t len,
                     uint8_t **out, size_t *out_len);

#endif
