/*
 * The batcher: samples in, encoded batches into the outbox, one group
 * commit per durability window.
 *
 * Samples gather in the open batch until a flush (every batch_interval, or
 * when batch_max_samples are waiting). A flush encodes the batch with the
 * next seq and appends it to the outbox inside the open group; a commit
 * (every durability_window) makes the group durable. Until its group
 * commits a batch is readable and may be sent, but is not durable, so the
 * batcher keeps its bytes ("held") until the commit lands.
 *
 * When the outbox cannot take a batch (full disk, I/O error), or a commit
 * fails, the outbox undoes the whole group and the held batches are
 * appended again, in seq order and with the same seqs, before any new
 * batch is made; meanwhile samples stay in memory, up to
 * ET_BATCHER_MEMORY_BATCHES batches' worth. Beyond it the newest samples
 * are dropped and counted (held batches keep their seqs, so they cannot be
 * skipped). Nothing is dropped without being counted.
 */
#ifndef EDGETEL_BATCHER_H
#define EDGETEL_BATCHER_H

#include <stddef.h>
#include <stdint.h>

#include "edgetel/codec.h"
#include "edgetel/outbox.h"
#include "edgetel/value.h"

#define ET_BATCHER_MEMORY_BATCHES 10

struct et_batcher;

struct et_batcher_stats {
    uint64_t batches_made;
    uint64_t samples_stored;     /* samples in batches appended to the outbox */
    uint64_t dropped_in_memory;  /* samples dropped because memory was full */
};

/**
 * A batcher writing to outbox (borrowed; it must outlive the batcher) for
 * device_id (borrowed likewise) in boot boot_id.
 */
int et_batcher_create(struct et_batcher **out, struct et_outbox *outbox, const char *device_id,
                      const uint8_t boot_id[ET_BOOT_ID_LEN], uint32_t max_samples);

/** Free; samples still in memory are lost (et_batcher_unstored() counts them). NULL is a no-op. */
void et_batcher_destroy(struct et_batcher *b);

/**
 * Add one sample to the open batch. -EINVAL for a value the wire cannot
 * carry (a string too long), -ENOMEM.
 */
int et_batcher_add(struct et_batcher *b, const char *metric, const char *unit,
                   const char *tags, int64_t mono_ms, const struct et_value *v,
                   enum et_time_quality tq);

/** Whether the open batch has reached max_samples and should be flushed now. */
bool et_batcher_full(const struct et_batcher *b);

/**
 * Encode the open batch (if it has samples) and append it to the outbox,
 * after appending again whatever a failed group left held.
 * @return 0 when everything made so far is in the outbox (in the open
 *         group), or the outbox's -errno (samples stay in memory).
 */
int et_batcher_flush(struct et_batcher *b, int64_t now_ms);

/** End the durability window: commit the group, forget the held bytes. 0 or -errno. */
int et_batcher_commit(struct et_batcher *b);

/** Samples made but not (yet) in the outbox: in the open batch and held after a failure. */
uint64_t et_batcher_unstored(const struct et_batcher *b);

const struct et_batcher_stats *et_batcher_stats(const struct et_batcher *b);

#endif
