/*
 * The outbox: encoded batches waiting for the aggregator's Ack, in SQLite
 * (WAL). It is the one source of truth for undelivered data: a batch is
 * deleted only when an Ack covers it.
 *
 * Sequence numbers: et_outbox_next_seq() says the seq the next append must
 * carry; et_outbox_append() stores the batch and the new high-water mark in
 * one transaction, so a seq is never handed out twice, across restarts and
 * crashes, even after every batch was acknowledged and deleted.
 *
 * Only the thread that opened it may use a handle.
 */
#ifndef EDGETEL_OUTBOX_H
#define EDGETEL_OUTBOX_H

#include <stddef.h>
#include <stdint.h>

struct et_outbox;

struct et_outbox_stats {
    uint64_t batches;       /* waiting for an ack */
    uint64_t samples;
    uint64_t bytes;         /* payload bytes */
    uint64_t oldest_seq;    /* 0 when empty */
    uint64_t newest_seq;
    uint64_t dropped_samples; /* evicted over the data dir's life */
};

/**
 * Open or create PATH. A database that fails to open or its integrity
 * check is renamed aside (PATH.corrupt-<epoch>) and a fresh one started;
 * the reason is logged. err gets a reason for a person on failure.
 */
int et_outbox_open(struct et_outbox **out, const char *path, char *err, size_t errlen);
void et_outbox_close(struct et_outbox *ob);

uint64_t et_outbox_next_seq(const struct et_outbox *ob);

/** Store one encoded batch; seq must equal et_outbox_next_seq(). */
int et_outbox_append(struct et_outbox *ob, uint64_t seq, const void *blob, size_t len,
                     uint32_t n_samples, int64_t created_ms);

/**
 * Delete every batch with seq <= through and each of seqs[].
 * Returns the number of batches deleted (>= 0) or -errno.
 */
int et_outbox_ack(struct et_outbox *ob, uint64_t through, const uint64_t *seqs, size_t n_seqs);

/**
 * The first stored batch with seq > after: its seq, and the blob copied
 * into a malloc'd buffer with 16 spare bytes at the end (the caller frees).
 * Returns 0, -ENOENT when there is none, or -errno.
 */
int et_outbox_next(struct et_outbox *ob, uint64_t after, uint64_t *seq,
                   uint8_t **blob, size_t *len);

int et_outbox_stats(struct et_outbox *ob, struct et_outbox_stats *st);

#endif
