/*
 * The outbox: encoded batches waiting for the aggregator's Ack, in SQLite
 * (WAL). It is the one source of truth for undelivered data: a batch is
 * deleted only when an Ack covers it (or when a configured limit evicts it,
 * which is counted, see et_outbox_set_limits()).
 *
 * Sequence numbers: et_outbox_next_seq() says the seq the next append must
 * carry; et_outbox_append() stores the batch and the new high-water mark in
 * one transaction, so a seq is never handed out twice, across restarts and
 * crashes, even after every batch was acknowledged and deleted.
 *
 * How a seq is kept from repeating:
 *  - In the database, the high-water mark is max(seq) of the stored batches,
 *    and a meta row written in the same transaction whenever a deletion
 *    (ack, eviction) could remove the newest batch or a refused batch uses
 *    a seq up. So an append costs one row and no extra page.
 *  - The database runs with synchronous=NORMAL, so a power cut can lose its
 *    last commits, and a damaged database is replaced by an empty one. Either
 *    would let a seq that was already sent come back. A sidecar file,
 *    PATH.seq, therefore reserves seqs in blocks of 1024: before an append
 *    uses a seq above the reservation, the reservation is raised (a new
 *    file, fsync, rename, fsync of the directory). A clean close records
 *    the exact high-water mark there. On open the outbox continues after the
 *    database's mark only when the sidecar says the last close was clean at
 *    that same mark; otherwise (crash, power cut, replaced database) it
 *    continues after the whole reservation. A gap in seqs is harmless: each
 *    Batch carries oldest_seq, so the cloud steps over it. A repeat is not.
 *
 * Streams: an outbox is one stream, named by ET_OUTBOX_STREAM_ID_LEN random
 * bytes made with it (et_outbox_stream_id()) that never change for it. The
 * cloud dedupes and acknowledges per (device, stream, seq), so a board
 * whose data directory was wiped or replaced, starting again at seq 1, is
 * a new stream and its batches are never taken for repeats of the old
 * one's. The id lives where the seqs do: in PATH.seq beside the
 * reservation (so a damaged database moved aside keeps it) and in the
 * database (so a lost PATH.seq does). An outbox made before streams gets
 * a new stream on its first open with this code and its seqs continue;
 * its older batches carry no stream id (the cloud's "legacy" stream) and
 * lie below et_outbox_stream_first_seq().
 *
 * Files beside PATH: PATH-wal and PATH-shm (SQLite's WAL), PATH.seq (the
 * reservation and the stream id), PATH.lock (never removed), and
 * PATH.corrupt-<secs>* (damaged databases kept for inspection; nothing
 * deletes them).
 *
 * Only the thread that opened it may use a handle, and only one handle
 * may be open on a PATH at a time (an flock() on PATH.lock enforces it
 * across processes): two would hand out the same seqs.
 */
#ifndef EDGETEL_OUTBOX_H
#define EDGETEL_OUTBOX_H

#include <stddef.h>
#include <stdint.h>

struct et_outbox;
struct sqlite3;

struct et_outbox_stats {
    uint64_t batches;       /* waiting for an ack */
    uint64_t samples;
    uint64_t bytes;         /* payload bytes */
    uint64_t oldest_seq;    /* 0 when empty */
    uint64_t newest_seq;
    uint64_t dropped_samples; /* evicted over the data dir's life */
};

/** Bytes of a stream id (the wire's ET_STREAM_ID_LEN). */
#define ET_OUTBOX_STREAM_ID_LEN 16

/** Spare bytes at the end of every blob et_outbox_next() returns. */
#define ET_OUTBOX_BLOB_SPARE 16

/**
 * Open or create PATH. The directory holding PATH must exist (the agent
 * makes it). A database that SQLite reports as corrupt or not a database,
 * or that fails PRAGMA quick_check, is renamed aside with its -wal and -shm
 * files (PATH.corrupt-<unix seconds>[-wal|-shm]), the reason is logged, and a
 * fresh one started; seqs continue after the sidecar's reservation. Other
 * failures (no permission, locked by another process, I/O error) are not
 * taken as damage: the file is left alone and the open fails. The stream
 * id is read, or made (see "Streams" above).
 * err gets a reason for a person on failure.
 * @return 0; -EBUSY when another handle has PATH open; -EPROTO when a
 *         newer edgetel wrote the schema; -EACCES when SQLite cannot open
 *         PATH (a directory, no permission); -EIO when a damaged file
 *         cannot be replaced or SQLite fails otherwise; or another -errno
 *         (-ENOENT for a missing directory, -ENOMEM, ...).
 */
int et_outbox_open(struct et_outbox **out, const char *path, char *err, size_t errlen);

/**
 * Commit an open group (et_outbox_begin()), checkpoint, record a clean
 * shutdown in the sidecar, and free the handle. NULL is a no-op.
 */
void et_outbox_close(struct et_outbox *ob);

/** The seq the next et_outbox_append() must carry. */
uint64_t et_outbox_next_seq(const struct et_outbox *ob);

/**
 * The outbox's stream id: ET_OUTBOX_STREAM_ID_LEN bytes, the same for every
 * handle ever opened on this data directory (see "Streams" above); every
 * batch appended must carry it. Borrowed for the handle's life.
 */
const uint8_t *et_outbox_stream_id(const struct et_outbox *ob);

/**
 * The first seq of the stream: 1 for an outbox made with its stream. An
 * outbox made before streams holds batches below it that carry no stream
 * id, which the cloud acknowledges in the legacy stream.
 */
uint64_t et_outbox_stream_first_seq(const struct et_outbox *ob);

/**
 * Store one encoded batch; seq must equal et_outbox_next_seq().
 * @return 0 (stored, next_seq advanced);
 *         -EINVAL for a wrong seq or an empty blob, -EOVERFLOW for a seq
 *           over INT64_MAX: nothing changed, an open group stays open;
 *         -EDQUOT when a limit refused the batch (policy drop-newest, or a
 *           batch larger than the whole quota): it is not stored, its
 *           samples are counted as dropped and its seq is used up;
 *         -ENOSPC (disk or database full), -EIO (I/O error) or another
 *           -errno (-EFBIG: a blob over SQLite's length limit): nothing
 *           changed, next_seq is unchanged, the handle stays usable and
 *           the caller may retry the same batch later. Inside a group see
 *           et_outbox_begin().
 */
int et_outbox_append(struct et_outbox *ob, uint64_t seq, const void *blob, size_t len,
                     uint32_t n_samples, int64_t created_ms);

/**
 * Delete every batch with seq <= through and each of seqs[]; seqs not
 * stored (any more) are skipped, so a repeated ack deletes nothing.
 * Returns the number of batches deleted (>= 0), -EINVAL for seqs NULL with
 * n_seqs > 0, or -errno: then nothing was deleted, and inside a group the
 * group is undone (see et_outbox_begin()).
 */
int et_outbox_ack(struct et_outbox *ob, uint64_t through, const uint64_t *seqs, size_t n_seqs);

/**
 * The first stored batch with seq > after: its seq, and the blob copied
 * into a malloc'd buffer with 16 spare bytes at the end (the caller frees).
 * Returns 0, -ENOENT when there is none, or -errno.
 * One indexed lookup; nothing else of the table is read, so draining a
 * large backlog batch by batch keeps memory flat.
 */
int et_outbox_next(struct et_outbox *ob, uint64_t after, uint64_t *seq,
                   uint8_t **blob, size_t *len);

/** Fill st from counters kept in the handle (no query). Returns 0. */
int et_outbox_stats(struct et_outbox *ob, struct et_outbox_stats *st);

/* ---- group commit ---------------------------------------------------- */

/**
 * Start a group: the appends (and acks) that follow share one transaction
 * until et_outbox_commit(), so a durability window of many batches costs
 * one commit and writes each database page once. Until the commit they are
 * readable through this handle but not durable. Acks need no durability (a
 * lost ack only means a batch is sent again), so acking inside the group
 * saves most of what a drain writes.
 *
 * When an append or ack inside a group fails (-ENOSPC, -EIO: any error but
 * -EINVAL, -EOVERFLOW and -EDQUOT), or the commit does, the whole group is
 * undone: the batches appended since et_outbox_begin() are gone (acked
 * ones are back), next_seq is back where it was at et_outbox_begin(), and
 * the group is closed. The caller, which still holds those batches (refused ones
 * included), appends them again with the same seqs (same seq, same
 * content: no repeat). An -EDQUOT refusal does not end the group.
 * @return 0, -EALREADY when a group is open, or -errno.
 */
int et_outbox_begin(struct et_outbox *ob);

/** Commit the open group. @return 0, -EINVAL when none is open, or -errno. */
int et_outbox_commit(struct et_outbox *ob);

/* ---- limits ---------------------------------------------------------- */

enum et_outbox_policy {
    ET_OUTBOX_DROP_OLDEST = 0,  /* delete the oldest batches to make room */
    ET_OUTBOX_DROP_NEWEST = 1,  /* refuse the new batch (-EDQUOT) */
};

struct et_outbox_limits {
    uint64_t quota_bytes;    /* most payload bytes stored; 0: no quota */
    uint64_t reserve_bytes;  /* free space the filesystem keeps; 0: no check */
    enum et_outbox_policy policy;
};

/**
 * Set the limits enforced by every later append. An append that would take
 * the stored payload over quota_bytes, or the filesystem's free space
 * (et_fs_space(PATH); pages free inside the database count as free) below
 * reserve_bytes, evicts by the policy. Every dropped sample is counted in
 * the database (stats.dropped_samples). One warning is logged when eviction
 * starts and one line when an append fits again, not one per batch.
 * Lowering the quota evicts nothing until the next append.
 * @return 0 or -EINVAL for an unknown policy.
 */
int et_outbox_set_limits(struct et_outbox *ob, const struct et_outbox_limits *lim);

/* ---- diagnostics ----------------------------------------------------- */

/**
 * The SQLite connection, borrowed for the handle's life: for diagnostics
 * and for tests that provoke SQLite errors (PRAGMA max_page_count). Writing
 * data or schema through it breaks the outbox's bookkeeping.
 */
struct sqlite3 *et_outbox_sqlite(struct et_outbox *ob);

#endif
