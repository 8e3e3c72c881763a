/*
 * The cumulative ack, the one rule that lets a device delete its data:
 * "every seq of device D up to N is stored" (DESIGN.md, delivery contract).
 *
 * A device's ack only rises. A Batch says with oldest_seq which seqs the
 * device still holds; below it there is nothing left to wait for (acked
 * already, or evicted from a full outbox), so the ack is first raised to
 * oldest_seq - 1 (the floor) and then steps over every stored seq that
 * follows, up to the first one missing. The ack is computed from the store
 * inside the transaction that stored the batch, never from memory, so any
 * number of aggregator instances may share one store.
 *
 * The Ack message names that cumulative seq and, when the batch just
 * stored lies above it, that seq too: live batches overtake the backlog
 * (the agent sends them first), and without the selective seq they would
 * stay unacknowledged, and be sent again, until the backlog drained.
 *
 * When an Ack may be published (after the commit of its transaction, or
 * of the group it joined) is ingest's: see ingest.h.
 */
#ifndef EDGETEL_ACK_H
#define EDGETEL_ACK_H

#include <stddef.h>
#include <stdint.h>

#include "edgetel/store_writer.h"

/* Stored seqs read from the store per page while the ack steps on. */
#define ET_ACK_SCAN_SEQS 512

/**
 * Advance the device's cumulative ack inside the open transaction: raise
 * it to floor if lower (at most ET_STORE_SEQ_MAX), then over every stored
 * seq that follows without a gap. Writes it back when it changed.
 * @param acked_through gets the result.
 * @return 0; -ENOENT when the device has no row (et_store_device_seen()
 *         first); a store error otherwise, and then nothing was written.
 */
int et_ack_advance(struct et_store_writer *w, const char *device, uint64_t floor,
                   uint64_t *acked_through);

/**
 * Encode the Ack for a batch of seq, with the cumulative acked_through:
 * seq goes along as a selective seq when it lies above acked_through.
 * @param out gets a malloc'd buffer of *len bytes for the caller to free.
 * @return 0 or -errno (-ENOMEM).
 */
int et_ack_encode(const char *device, uint64_t seq, uint64_t acked_through, uint8_t **out,
                  size_t *len);

#endif
