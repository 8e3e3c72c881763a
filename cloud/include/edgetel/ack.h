/*
 * The cumulative ack, the one rule that lets a device delete its data:
 * "every seq of device D's stream S up to N is stored" (DESIGN.md,
 * delivery contract). Seqs count per stream: a stream is one data
 * directory of the device (Batch.stream_id), so a re-flashed board,
 * starting again at seq 1, has an ack of its own and never inherits the
 * old one's.
 *
 * A stream's ack only rises. A Batch says with oldest_seq which seqs the
 * device still holds; below it there is nothing left to wait for (acked
 * already, or evicted from a full outbox), so the ack is first raised to
 * oldest_seq - 1 (the floor) and then steps over every stored seq of the
 * stream that follows, up to the first one missing. The ack is computed
 * from the store inside the transaction that stored the batch, never from
 * memory, so any number of aggregator instances may share one store.
 *
 * The Ack message names the stream, that cumulative seq and, when the
 * batch just stored lies above it, that seq too: live batches overtake the
 * backlog (the agent sends them first), and without the selective seq they
 * would stay unacknowledged, and be sent again, until the backlog drained.
 *
 * Seq poisoning: because the floor raises the ack without anything stored
 * there, a batch carrying seq or oldest_seq near 2^63 (a bug, a flipped
 * bit, or someone holding the device's key) would pin the stream's ack at
 * the top for ever, and every later Ack would tell the device to delete
 * its whole outbox, stored or not. So ingest refuses (as malformed: never
 * stored, never acked) a batch whose seq or oldest_seq lies above
 * et_ack_seq_limit(). The bound, and why:
 *   - The first batch of a stream: at most 2^40. A new outbox starts at 1;
 *     an outbox from before streams continues its seqs. 2^40 is a billion
 *     unclean restarts (each skips at most a reserved block of 1024 seqs)
 *     or 35,000 years of batches at one a second.
 *   - After that: at most top + 2^20 + 2048 for every second since top was
 *     stored, where top is the higher of the stream's highest stored seq
 *     and its ack. A device moves its seq on by at most 10 batches a
 *     second (batch_interval is at least 100 ms) plus 1024 per unclean
 *     restart (systemd restarts the agent every 5 s at most, so about 205
 *     a second in a crash loop). 2^20 covers a thousand crashes with no
 *     time passing; 2048 a second covers a crash every half second for as
 *     long as the device is away (a year away: 2^36). A device refused by
 *     mistake keeps its batches, and is let in as the allowance grows.
 *   - What a hostile device still gets: each batch stored can move its own
 *     stream's ack by 2^20 and the time's allowance; climbing to 2^62 at a
 *     thousand batches a second would take over a century.
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

/* The seq bound (see "Seq poisoning" above). */
#define ET_ACK_FIRST_SEQ_MAX (UINT64_C(1) << 40)
#define ET_ACK_SEQ_JUMP (UINT64_C(1) << 20)
#define ET_ACK_SEQ_JUMP_PER_S 2048

/**
 * The highest seq or oldest_seq a batch of a stream may carry when it
 * arrives at now_ms (aggregator's clock), given what the store holds of the
 * stream: st NULL for a stream the store never recorded.
 */
uint64_t et_ack_seq_limit(const struct et_store_stream *st, int64_t now_ms);

/**
 * Advance the stream's cumulative ack inside the open transaction: raise
 * it to floor if lower (at most ET_STORE_SEQ_MAX), then over every stored
 * seq of the stream that follows without a gap. Writes it back when it
 * changed.
 * @param stream hex ("" the legacy stream).
 * @param acked_through gets the result.
 * @return 0; -ENOENT when the stream was never recorded
 *         (et_store_stream_start() first); a store error otherwise, and
 *         then nothing was written.
 */
int et_ack_advance(struct et_store_writer *w, const char *device, const char *stream,
                   uint64_t floor, uint64_t *acked_through);

/**
 * Encode the Ack for a batch of seq in stream stream_id (ET_STREAM_ID_LEN
 * bytes, NULL for the legacy stream), with the stream's cumulative
 * acked_through: seq goes along as a selective seq when it lies above
 * acked_through.
 * @param out gets a malloc'd buffer of *len bytes for the caller to free.
 * @return 0 or -errno (-ENOMEM).
 */
int et_ack_encode(const char *device, const uint8_t *stream_id, uint64_t seq,
                  uint64_t acked_through, uint8_t **out, size_t *len);

#endif
