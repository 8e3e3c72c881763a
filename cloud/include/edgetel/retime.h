/*
 * Re-timing on the cloud side: the true wall time of samples measured
 * before a device's clock was synchronised. The one owner of that rule on
 * the cloud side; the agent's own (agent/src/clock.c) re-times what is
 * still in its outbox when its clock syncs, this covers what reached the
 * aggregator before (an agent with clock_wait = 0, a long unsynced boot).
 *
 * A sample of quality UNSYNCED is stored with the wall time it was given
 * and counted in its batch row. Every batch carries its boot id and a
 * (base_wall_ms, base_mono_ms) pair; a batch made on a synchronised clock
 * therefore maps that boot's monotonic clock to true wall time:
 *     wall = base_wall_ms + (mono - base_mono_ms).
 * When one arrives, the unsynced samples already stored for the device and
 * boot get that wall time and quality CORRECTED, and its mapping is kept
 * for the device, so unsynced samples of that boot that arrive later (the
 * backlog drains behind live data) are corrected as they are stored. A
 * sample more than ET_RETIME_SPAN_MS from the mapping's base keeps its
 * time: such a pair is garbage, not a clock. Without a boot id nothing is
 * re-timed: monotonic times of different boots look alike.
 *
 * The decisions are made here, in C; the store only runs the updates it is
 * told (store_writer.h).
 */
#ifndef EDGETEL_RETIME_H
#define EDGETEL_RETIME_H

#include <stdbool.h>
#include <stdint.h>

#include "edgetel/store_writer.h"

/* Furthest a re-timed sample may lie from its mapping's base, in ms (ten
 * years): beyond it the pair is garbage, not a clock. */
#define ET_RETIME_SPAN_MS (INT64_C(10) * 366 * 24 * 3600 * 1000)

/* What re-timing knows while one batch is stored. */
struct et_retime {
    struct et_store_clock clk;   /* the mapping of the batch's boot, when known */
    bool known;                  /* clk holds for the batch's samples */
    bool fresh;                  /* clk is the batch's own: earlier batches of the
                                    boot can be re-timed with it */
};

/**
 * The mapping for a batch of boot batch->boot_id_hex: the batch's own
 * (batch->base_wall_ms, batch->base_mono_ms) when it was made on a
 * synchronised clock, else the one the store holds for the device when it
 * is of the same boot, else none.
 * @return 0 or a store error.
 */
int et_retime_clock(struct et_store_writer *w, const char *device,
                    const struct et_store_clock *batch, bool synced, struct et_retime *rt);

/**
 * Whether a sample of quality tq measured at mono_ms gets a true wall time
 * from rt: only an UNSYNCED sample, only with a known mapping, only within
 * ET_RETIME_SPAN_MS of its base. Then *ts_ms gets it (the quality becomes
 * CORRECTED); otherwise *ts_ms is not touched.
 */
bool et_retime_sample(const struct et_retime *rt, int64_t mono_ms, enum et_time_quality tq,
                      int64_t *ts_ms);

/**
 * After a batch with a fresh mapping is stored (inside its transaction):
 * re-time the unsynced samples stored earlier for the device and boot, and
 * keep the mapping for the device. A no-op without a fresh mapping.
 * @param retimed (may be NULL) gets the number of samples re-timed.
 * @return 0 or -errno (a store error, -ENOMEM).
 */
int et_retime_boot(struct et_store_writer *w, const char *device, const struct et_retime *rt,
                   uint64_t *retimed);

#endif
