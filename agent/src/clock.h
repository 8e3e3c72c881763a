/*
 * Time you can trust on boards without a real-time clock: the agent's one
 * home for time. It reads the clock's sync state, learns each boot's
 * offset, re-times batches on their way out, and holds back TLS until the
 * clock can be trusted (the clock gate).
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
/*
 * The clock gate: with an unsynchronised wall clock the broker's
 * certificate looks not yet valid (or expired) and TLS fails. So the agent
 * waits for the clock before it connects, collecting all along, for at most
 * [mqtt] clock_wait; then it tries anyway (the clock may be right without
 * NTP saying so). Scheduling never uses the wall clock (CLOCK_BOOTTIME
 * only); a sample's wall time is derived from its monotonic time here.
 */
#ifndef EDGETEL_CLOCK_H
#define EDGETEL_CLOCK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "edgetel/codec.h"

#define ET_CLOCK_BOOTS 8

struct et_clock_boot {
    uint8_t boot_id[ET_BOOT_ID_LEN];
    int64_t offset_ms;     /* wall - monotonic while synced */
};

struct et_clock {
    char path[4096];
    uint8_t boot_id[ET_BOOT_ID_LEN];
    bool synced_this_boot;
    /* [0] is the current boot once it synced; older boots after it. */
    struct et_clock_boot boots[ET_CLOCK_BOOTS];
    size_t n_boots;

    bool synced;               /* adjtimex's answer at the last et_clock_observe() */
    int64_t wait_began_ms;     /* when the clock gate began waiting; 0: it has not */
};

/** Load what earlier runs learnt from path (absent: nothing learnt). */
int et_clock_init(struct et_clock *t, const char *path, const uint8_t boot_id[ET_BOOT_ID_LEN]);

/**
 * Tell the clock state at a moment. Records the offset when the clock is
 * synced (persisting it on the first sync of a boot and when it moves by
 * more than a second). Returns true when this call saw the first sync of
 * this boot.
 */
bool et_clock_learn(struct et_clock *t, bool synced, int64_t mono_ms, int64_t wall_ms);

/**
 * Read the clock's sync state once (adjtimex, through the platform) and
 * learn from it; the agent does this once per loop pass and everything in
 * that pass uses t->synced. Says so in the log at the first sync of a boot.
 */
void et_clock_observe(struct et_clock *t, int64_t now_mono_ms);

/** The quality every sample taken now gets: SYNCED or UNSYNCED, as last observed. */
enum et_time_quality et_clock_quality(const struct et_clock *t);

/** The wall time, by the current clock, of the monotonic instant mono_ms. */
int64_t et_clock_wall_of(int64_t mono_ms);

/**
 * The clock gate (see the top of this file): whether the uplink may start
 * connecting now. Without TLS (tls false) there is no certificate to check
 * and wait_ms <= 0 means "do not wait": both connect at once. Otherwise,
 * while the clock is unsynchronised it says once that it waits and returns
 * false, for up to wait_ms; then true. When connecting was held back, note
 * (a line for the birth Status) says why; otherwise note is "".
 */
bool et_clock_may_connect(struct et_clock *t, int64_t now_mono_ms, bool tls, int64_t wait_ms,
                          char *note, size_t notelen);

/**
 * Prepare an encoded batch for sending. When its times need fixing, writes
 * a corrected (or marked uncorrectable) copy to a malloc'd *out with 16
 * spare bytes and returns 1; returns 0 when the batch goes as it is;
 * -errno on failure (the caller sends it as it is).
 */
int et_clock_retime(const struct et_clock *t, const uint8_t *blob, size_t len,
                     uint8_t **out, size_t *out_len);

#endif
