/*
 * What the outbox's files share, and nothing outside them may use (the
 * API is edgetel/outbox.h). One handle, four jobs:
 *
 *   outbox.c         the operations: append, ack, next, stats, group
 *                    commit; the mirror of the database in the handle;
 *                    undoing a failure
 *   outbox_limits.c  quota, free-space reserve, eviction and refusal, and
 *                    their log lines
 *   outbox_seq.c     the PATH.seq sidecar that keeps seqs from repeating,
 *                    and the stream id
 *   outbox_open.c    open and close: the lock (and the loss note kept in
 *                    the lock file), the schema and settings, the
 *                    integrity check, moving a damaged file aside
 *
 * Database errors are -errno from edgetel/sqlite.h; the SQLite code of the
 * last failure stays readable on ob->db for log lines.
 */
#ifndef EDGETEL_OUTBOX_INTERNAL_H
#define EDGETEL_OUTBOX_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <sqlite3.h>

#include "edgetel/outbox.h"

#define OUTBOX_LOG "outbox"

/* The statements prepared at open and kept until close; SQL in outbox_open.c. */
enum outbox_stmt {
    ST_INSERT,
    ST_NEXT,
    ST_RANGE_SUM,
    ST_DELETE_THROUGH,
    ST_ONE,
    ST_DELETE_ONE,
    ST_BOUNDS,
    ST_OLDEST,
    ST_META_GET,
    ST_META_SET,
    ST_FREELIST,
    ST_COUNT_FROM,
    ST_BEGIN,
    ST_COMMIT,
    ST_ROLLBACK,
    ST_COUNT
};

struct et_outbox {
    sqlite3 *db;
    sqlite3_stmt *stmt[ST_COUNT];
    char *path;
    char *seq_path;         /* PATH.seq */
    char *seq_tmp_path;     /* PATH.seq.tmp, renamed over PATH.seq */
    char *dir;              /* directory of PATH, fsynced after renames */
    int lock_fd;            /* PATH.lock, flock()ed for the handle's life */

    uint64_t next_seq;
    uint64_t reserved;      /* PATH.seq durably says no seq above this was used */
    bool seq_armed;         /* the sidecar no longer says "clean" */
    uint64_t seq_high;      /* highest seq used in this session: stored, undone or claimed */
    bool last_run_clean;    /* what et_outbox_seq_start() found */
    bool seq_failing;       /* PATH.seq could not be written: said once */
    uint8_t stream_id[ET_OUTBOX_STREAM_ID_LEN];
    uint64_t stream_first;  /* seqs below it are of the legacy stream */

    /* Mirror of the database. */
    uint64_t batches, samples, bytes;
    uint64_t oldest, newest;
    uint64_t dropped;       /* as the database (or the open transaction) counts them */
    uint64_t dropped_unsaved; /* counted, not in the database yet (et_outbox_count_dropped) */
    uint64_t db_hwm;        /* max(meta hwm, max(seq)) at the last reload */

    /* The loss note in PATH.lock (outbox_open.c): samples the database has not counted. */
    uint64_t note_on_disk;  /* what the file says */
    uint64_t held_noted;    /* the caller's part (et_outbox_note_held) */
    bool note_failing;      /* a write failed; said once */

    bool in_group;
    bool group_wrote;       /* the open group changed the database (append, ack, eviction) */
    uint64_t group_seq;     /* next_seq when the group began */

    struct et_outbox_limits lim;
    bool evicting;          /* inside an eviction episode (logged once) */
    uint64_t episode_dropped;
    uint64_t page_size;
    uint64_t fs_avail;      /* free bytes at the last look (reserve check, full disk) */
    bool below_reserve;     /* the last append was refused for the reserve */
};

/* ---- outbox.c: the mirror and failures ------------------------------------ */

/* Write the high-water mark and the dropped count (one page of meta). 0 or -errno. */
int et_outbox_meta_save(struct et_outbox *ob, uint64_t hwm, uint64_t dropped);

/* Read oldest and newest from the database. 0 or -errno. */
int et_outbox_load_bounds(struct et_outbox *ob);

/* Read every counter from the database: at open and after a rollback. 0 or -errno. */
int et_outbox_reload(struct et_outbox *ob);

/*
 * Undo whatever a failed operation left: roll back the open transaction
 * (the group's, or one of its own), put next_seq back, and read the
 * counters from the database again when anything had changed.
 */
void et_outbox_undo(struct et_outbox *ob);

/*
 * A write failed with ret (-errno): log what was being done (at debug for
 * -ENOSPC, which the agent handles quietly), undo the open transaction and
 * any group, and return ret.
 */
int et_outbox_fail(struct et_outbox *ob, const char *what, int ret);

/* ---- outbox_limits.c ------------------------------------------------------ */

/*
 * Make room for a batch of len bytes by the limits, before it is inserted.
 * A transaction this opened for itself is left open in *own (the caller
 * inserts and commits in it); *freed says how many payload bytes eviction
 * deleted.
 * @return 0 (insert now), -EDQUOT (refused: seq used up, samples counted,
 *         committed), or -errno (failed and undone by et_outbox_fail()).
 */
int et_outbox_make_room(struct et_outbox *ob, uint64_t seq, size_t len, uint32_t n_samples,
                        bool *own, uint64_t *freed);

/* ---- outbox_seq.c --------------------------------------------------------- */

/*
 * At open, once the database is read: decide where seqs continue
 * (next_seq) and the stream, and arm the sidecar. replaced: the database
 * is new because the old one was damaged. 0, or -errno when no stream id
 * could be made (the open fails).
 */
int et_outbox_seq_start(struct et_outbox *ob, bool replaced);

/*
 * Make sure seq is covered by a durable reservation that does not say
 * "clean" before a batch carrying it can be stored (and sent). 0 or -errno.
 */
int et_outbox_seq_reserve(struct et_outbox *ob, uint64_t seq);

/*
 * At a clean close, after the database is closed: record the highest seq
 * used (stored or not). Needs no new space on the filesystem when the
 * usual atomic replace cannot get it.
 */
void et_outbox_seq_mark_clean(struct et_outbox *ob);

/* ---- outbox_open.c -------------------------------------------------------- */

/* fsync the directory of PATH, after a rename in it. 0 or -errno. */
int et_outbox_sync_dir(const struct et_outbox *ob);

/* Write the loss note (dropped_unsaved + held_noted) when it changed. 0 or -errno. */
int et_outbox_note_write(struct et_outbox *ob);

#endif
