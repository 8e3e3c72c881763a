/*
 * The batcher: samples in, encoded batches into the outbox, one group
 * commit per durability window.
 *
 * Batches refer to metrics by index into the stream's dictionary
 * (dictionary.h), which the batcher keeps beside the outbox.
 *
 * Samples gather in the open batch until a flush (every batch_interval, or
 * when batch_max_samples are waiting). A flush encodes the batch with the
 * next seq and appends it to the outbox inside the open group; a commit
 * (every durability window) makes the group durable. Until its group
 * commits a batch is readable and may be sent, but is not durable, so the
 * batcher keeps its bytes ("held") until the commit lands.
 *
 * Memory: what the batcher holds (the open batch and every held batch) is
 * bounded by ET_BATCHER_MEMORY_BATCHES batches' worth of samples
 * (batch_max_samples each), whatever fails:
 *   - While storing works, a group that reaches the bound commits early.
 *   - When the outbox cannot take a batch (full disk, below the free-space
 *     reserve, I/O error) or a commit fails, the outbox undoes the whole
 *     group; its batches, and those made after, are held "unstored" and
 *     appended again, in seq order and with the same seqs, at each flush.
 *   - Past the bound the oldest unstored batch is dropped, its samples
 *     counted (stats.dropped_in_memory, and in the outbox's dropped count,
 *     which the agent reports as agent.dropped_samples and in Status).
 *     Its seq stays used up: it may have been sent.
 *
 * Live data when it cannot be stored: an unstored batch is still sent.
 * Every seq is claimed from the outbox (et_outbox_claim) before a batch is
 * made with it, so a batch may go out from memory; the uplink reads
 * unstored batches (et_batcher_next_unstored) before the outbox. An Ack
 * that covers an unstored batch (et_batcher_ack) releases it: delivered
 * without being stored, counted as "not persisted"
 * (stats.not_persisted, reported as agent.not_persisted_samples and in
 * Status). While disconnected those batches are the first to be dropped
 * when memory runs out. So every sample made ends as exactly one of:
 * stored in the outbox, delivered from memory (not persisted), or dropped
 * and counted.
 *
 * Saying so: the first failure is logged at error level with what is full,
 * how much is free, the reserve, and what the agent does meanwhile; again
 * at most hourly while it lasts; recovery once, and only after a commit
 * succeeded.
 *
 * A crash: while storing fails, every sample in memory (held batches, and
 * the open batch, which waits there while no seq can be claimed) is in the
 * outbox's loss note (et_outbox_note_held), rewritten at every flush,
 * commit and Ack that changes it; the next start counts the note as
 * dropped. So a crash loses uncounted only what was collected since the
 * last flush, and while storing works only the uncommitted window. Batches
 * sent from memory whose Ack had not come are counted too, though the
 * aggregator may have stored them (docs/ARCHITECTURE.md, "Losses the
 * database cannot record").
 */
#ifndef EDGETEL_BATCHER_H
#define EDGETEL_BATCHER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "edgetel/codec.h"
#include "edgetel/outbox.h"
#include "edgetel/value.h"

#define ET_BATCHER_MEMORY_BATCHES 10

struct et_batcher;

struct et_batcher_stats {
    uint64_t batches_made;
    uint64_t samples_stored;     /* samples in batches made (stored, sent or dropped since) */
    uint64_t dropped_in_memory;  /* samples dropped because memory was full, or left at the stop */
    uint64_t not_persisted;      /* samples delivered (acked) from memory, never stored */
};

/**
 * A batcher writing to outbox (borrowed; it must outlive the batcher) for
 * device_id (borrowed likewise) in boot boot_id.
 */
/** A new size limit for batches made from now on (a config applied live). */
void et_batcher_set_max_samples(struct et_batcher *b, uint32_t max_samples);

int et_batcher_create(struct et_batcher **out, struct et_outbox *outbox, const char *device_id,
                      const uint8_t boot_id[ET_BOOT_ID_LEN], uint32_t max_samples);

/**
 * Free. Samples still in memory are not counted here: call
 * et_batcher_abandon() first. NULL is a no-op.
 */
void et_batcher_destroy(struct et_batcher *b);

/**
 * Add one sample to the open batch. When memory is at its bound the oldest
 * unstored batch is dropped to make room, or, with none, this sample
 * (counted either way; 0 is returned). -EINVAL for a value the wire cannot
 * carry (a string too long), -ENOMEM.
 */
int et_batcher_add(struct et_batcher *b, const char *metric, const char *unit,
                   const char *tags, int64_t mono_ms, const struct et_value *v,
                   enum et_time_quality tq);

/** Whether the open batch has reached max_samples and should be flushed now. */
bool et_batcher_full(const struct et_batcher *b);

/**
 * Append again what a failed group left unstored, then encode the open
 * batch (if it has samples) and append it to the outbox; commit early when
 * the held batches fill memory.
 * @return 0 when everything made so far is in the outbox (in the open
 *         group), or the outbox's -errno: the batches stay in memory,
 *         sendable (et_batcher_next_unstored).
 */
int et_batcher_flush(struct et_batcher *b, int64_t now_ms);

/**
 * End the durability window: store what is unstored, commit the group,
 * forget the committed bytes, and note what stays unstored. 0 or -errno.
 */
int et_batcher_commit(struct et_batcher *b);

/**
 * The first batch in memory and not in the outbox with seq > after: its
 * seq and bytes, borrowed until the next call that changes the batcher.
 * @return 0 or -ENOENT.
 */
int et_batcher_next_unstored(const struct et_batcher *b, uint64_t after, uint64_t *seq,
                             const uint8_t **blob, size_t *len);

/**
 * An Ack from the aggregator: forget every held batch with seq <= through
 * or in seqs[]. Unstored ones were delivered without being stored
 * (stats.not_persisted); stored ones the outbox deletes itself.
 * @return how many unstored batches it released.
 */
size_t et_batcher_ack(struct et_batcher *b, uint64_t through, const uint64_t *seqs,
                      size_t n_seqs);

/**
 * An encoded batch of this stream again, with its whole metric dictionary
 * inline: what the aggregator asks for (Ack.dict_wanted) when it does not
 * know the dictionary. *out is malloc'd. 0; -ENOENT when the batch's
 * dictionary is no longer kept (or it has its own), -EBADMSG, -ENOMEM.
 */
int et_batcher_with_dict(const struct et_batcher *b, const uint8_t *blob, size_t len,
                         uint8_t **out, size_t *out_len);

/**
 * The seq the next batch will carry: above every batch made, stored or not.
 * The uplink's line between live and backlog.
 */
uint64_t et_batcher_next_seq(const struct et_batcher *b);

/** Samples made but not (yet) durable: in the open batch and held. */
uint64_t et_batcher_unstored(const struct et_batcher *b);

/**
 * At the stop, after the last flush and commit: count every sample still
 * in memory as dropped (so the last Status and the outbox's count include
 * them) and forget them. Returns how many.
 */
uint64_t et_batcher_abandon(struct et_batcher *b);

const struct et_batcher_stats *et_batcher_stats(const struct et_batcher *b);

#endif
