/*
 * The outbox: encoded batches waiting for the aggregator's Ack, in SQLite
 * (WAL). It is the one source of truth for undelivered data: a batch is
 * deleted only when an Ack covers it (or when a configured limit evicts it,
 * which is counted, see et_outbox_set_limits()).
 *
 * Sequence numbers: et_outbox_next_seq() says the lowest seq the next
 * append may carry; et_outbox_append() stores the batch and the new
 * high-water mark in one transaction, so a seq is never handed out twice,
 * across restarts and crashes, even after every batch was acknowledged and
 * deleted. A batch that may be sent before it is stored, or never stored
 * (the disk is full or below the reserve), gets its seq with
 * et_outbox_claim(): the seq is then as used up as a stored one. Appends
 * may skip seqs; the skipped ones stay used up (their batches were sent
 * from memory, or dropped and counted by the caller).
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
 *    the highest seq it used there (in place when a full disk cannot give
 *    a new file). On open the outbox continues after that mark only when
 *    the sidecar says the last close was clean at or above the database's
 *    mark; otherwise (crash, power cut, replaced database) it continues
 *    after the whole reservation. A gap in seqs is harmless: each
 *    Batch carries oldest_seq, so the cloud steps over it. A repeat is not.
 *
 * Counting losses that the database cannot record (the disk is full, or
 * the process dies): samples the caller dropped are counted at once
 * (et_outbox_count_dropped) and written to the database with the next
 * commit that succeeds; samples the caller holds in memory because they
 * could not be stored are noted (et_outbox_note_held). Both go into a
 * small note in PATH.lock that is overwritten in place, so it needs no new
 * space on a full filesystem; the next open adds what it says to the
 * dropped count and says so once. A crash in normal operation loses the
 * open group (at most one durability window), which nothing records: the
 * next open says that it may have happened, not how much.
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
 * reservation and the stream id), PATH.lock (never removed; holds the loss
 * note), and
 * PATH.corrupt-<secs>* (damaged databases kept for inspection; nothing
 * deletes them).
 *
 * Only the thread that opened it may use a handle, and only one handle
 * may be open on a PATH at a time (an flock() on PATH.lock enforces it
 * across processes): two would hand out the same seqs.
 */
#ifndef EDGETEL_OUTBOX_H
#define EDGETEL_OUTBOX_H

#include <stdbool.h>
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
    uint64_t dropped_samples; /* evicted, refused or dropped by the caller, over the data dir's life */
    uint64_t fs_avail;      /* free bytes on the filesystem at the last look; UINT64_MAX: unknown */
    uint64_t reserve_bytes; /* the free-space reserve (et_outbox_set_limits) */
    bool below_reserve;     /* the last append was refused because of the reserve */
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

/**
 * The lowest seq the next et_outbox_append() may carry: above every seq
 * stored. After a group is undone it is back where the group began, so
 * the caller can append the same batches again; a seq it claimed
 * (et_outbox_claim) may be higher.
 */
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
 * Use seq up for a batch that may be sent before it is stored, or never
 * stored: the reservation in PATH.seq is raised to cover it, so no later
 * batch gets it, even after a crash. seq must be >= et_outbox_next_seq().
 * @return 0; -EINVAL for a seq below et_outbox_next_seq() or over
 *         INT64_MAX; or -errno when PATH.seq cannot be written (then seq
 *         must not be sent).
 */
int et_outbox_claim(struct et_outbox *ob, uint64_t seq);

/**
 * Store one encoded batch; seq must be >= et_outbox_next_seq(). Seqs
 * skipped are used up: they belong to batches the caller claimed and
 * could not store (sent from memory, or dropped and counted).
 * @return 0 (stored, next_seq is seq + 1);
 *         -EINVAL for a seq below next_seq or an empty blob, -EOVERFLOW
 *           for a seq over INT64_MAX: nothing changed, an open group
 *           stays open;
 *         -EDQUOT when the quota refused the batch (policy drop-newest, or
 *           a batch larger than the whole quota): it is not stored, its
 *           samples are counted as dropped and its seq is used up;
 *         -ENOSPC when the disk or database is full, or when storing it
 *           would take the filesystem's free space below the reserve and
 *           the policy cannot make room (stats.below_reserve says which);
 *           -EIO (I/O error) or another -errno (-EFBIG: a blob over
 *           SQLite's length limit): nothing changed, nothing is counted,
 *           next_seq is unchanged, the handle stays usable and the caller
 *           may retry the same batch later. Inside a group see
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

/** PATH as given to et_outbox_open(), for log lines; borrowed for the handle's life. */
const char *et_outbox_path(const struct et_outbox *ob);

/** Fill st from counters kept in the handle (no query). Returns 0. */
int et_outbox_stats(struct et_outbox *ob, struct et_outbox_stats *st);

/**
 * How many stored batches have seq >= from: one indexed count of those
 * rows, so cheap when they are the few newest. For the uplink's backlog,
 * which is counted in rows, not guessed from seqs.
 * @return 0 or -errno.
 */
int et_outbox_count_from(struct et_outbox *ob, uint64_t from, uint64_t *n);

/* ---- losses the caller counts -------------------------------------------- */

/**
 * n samples were dropped by the caller (never stored): they count in
 * stats.dropped_samples at once and in the database with the next group
 * commit or the close that succeeds; until then the loss note in PATH.lock
 * carries them over a crash.
 */
void et_outbox_count_dropped(struct et_outbox *ob, uint64_t n);

/**
 * The caller holds n samples it could not store (they are in memory only):
 * note them in PATH.lock, in place, so that if the process ends before they
 * are stored or counted the next open counts them as dropped. Writes only
 * when the note changes. Call with 0 once they are stored.
 * @return 0 or -errno (said once in the log; nothing else changes).
 */
int et_outbox_note_held(struct et_outbox *ob, uint64_t n);

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

/** Whether a group is open: false after the group was undone by a failure. */
bool et_outbox_in_group(const struct et_outbox *ob);

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
 *
 * The reserve is about the card, not the outbox: when dropping every
 * stored batch could not bring the free space back above it, or the policy
 * is drop-newest, nothing is evicted and the append fails with -ENOSPC
 * like a full disk (nothing counted, the caller keeps the batch and may
 * still send it). The outbox does not log that; the caller says it, once.
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
