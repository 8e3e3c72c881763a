/*
 * The outbox's operations: append, ack, next, stats and group commit, on
 * the statements outbox_open.c prepared (schema there). Limits are in
 * outbox_limits.c, the seq sidecar in outbox_seq.c.
 *
 * The counters behind et_outbox_stats() live in the handle and move with
 * every change, so stats, quota checks and oldest_seq cost no query. They
 * are read from the database once at open and again after any rollback,
 * so they never drift from what is stored.
 */
#include "outbox_internal.h"

#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include "edgetel/log.h"
#include "edgetel/platform.h"
#include "edgetel/sqlite.h"

/* ---- meta and the mirror of the database ------------------------------- */

static int read_u64(void *ctx, sqlite3_stmt *row)
{
    *(uint64_t *)ctx = et_sqlite_col_u64(row, 0);
    return 0;
}

/* A missing key reads as 0. */
static int meta_get(struct et_outbox *ob, const char *key, uint64_t *out)
{
    sqlite3_stmt *s = ob->stmt[ST_META_GET];
    int ret;

    *out = 0;
    sqlite3_bind_text(s, 1, key, -1, SQLITE_STATIC);
    ret = et_sqlite_one_row(s, read_u64, out);
    return ret == -ENOENT ? 0 : ret;
}

static int meta_set(struct et_outbox *ob, const char *key, uint64_t value)
{
    sqlite3_stmt *s = ob->stmt[ST_META_SET];

    sqlite3_bind_text(s, 1, key, -1, SQLITE_STATIC);
    sqlite3_bind_int64(s, 2, et_sqlite_u64_arg(value));
    return et_sqlite_run(s);
}

int et_outbox_meta_save(struct et_outbox *ob, uint64_t hwm, uint64_t dropped)
{
    int ret = meta_set(ob, "hwm", hwm);

    return ret < 0 ? ret : meta_set(ob, "dropped", dropped);
}

static int read_bounds(void *ctx, sqlite3_stmt *row)
{
    struct et_outbox *ob = ctx;

    ob->oldest = et_sqlite_col_u64(row, 0);
    ob->newest = et_sqlite_col_u64(row, 1);
    return 0;
}

int et_outbox_load_bounds(struct et_outbox *ob)
{
    return et_sqlite_one_row(ob->stmt[ST_BOUNDS], read_bounds, ob);
}

/* count, samples and payload bytes of the batches with seq <= ?1 (ST_RANGE_SUM) */
struct range_sum {
    uint64_t count, samples, bytes;
};

static int read_range_sum(void *ctx, sqlite3_stmt *row)
{
    struct range_sum *r = ctx;

    r->count = et_sqlite_col_u64(row, 0);
    r->samples = et_sqlite_col_u64(row, 1);
    r->bytes = et_sqlite_col_u64(row, 2);
    return 0;
}

static int range_sum(struct et_outbox *ob, uint64_t through, struct range_sum *r)
{
    sqlite3_stmt *s = ob->stmt[ST_RANGE_SUM];

    sqlite3_bind_int64(s, 1, et_sqlite_u64_arg(through));
    return et_sqlite_one_row(s, read_range_sum, r);
}

int et_outbox_reload(struct et_outbox *ob)
{
    struct range_sum all;
    uint64_t meta_hwm;
    int ret;

    ret = range_sum(ob, INT64_MAX, &all);
    if (ret < 0)
        return ret;
    ob->batches = all.count;
    ob->samples = all.samples;
    ob->bytes = all.bytes;
    ret = et_outbox_load_bounds(ob);
    if (ret == 0)
        ret = meta_get(ob, "hwm", &meta_hwm);
    if (ret == 0)
        ret = meta_get(ob, "dropped", &ob->dropped);
    if (ret < 0)
        return ret;
    ob->db_hwm = meta_hwm > ob->newest ? meta_hwm : ob->newest;
    return 0;
}

/* See outbox_internal.h. */
void et_outbox_undo(struct et_outbox *ob)
{
    bool changed = !ob->in_group || ob->group_wrote;

    if (!sqlite3_get_autocommit(ob->db))
        et_sqlite_run(ob->stmt[ST_ROLLBACK]);
    if (ob->in_group) {
        ob->next_seq = ob->group_seq;
        ob->in_group = false;
    }
    /* A group that wrote nothing left the counters as they were: no need
     * to count the whole table again (a refusal every flush while the
     * disk is below the reserve must stay cheap). */
    if (changed && et_outbox_reload(ob) < 0)
        et_warn(OUTBOX_LOG, "%s: re-reading the counters after a failure: %s", ob->path,
                sqlite3_errstr(sqlite3_extended_errcode(ob->db)));
}

int et_outbox_fail(struct et_outbox *ob, const char *what, int ret)
{
    uint64_t avail, total;

    if (ret == -ENOSPC) {
        et_debug(OUTBOX_LOG, "%s: %s: %s", ob->path, what, sqlite3_errmsg(ob->db));
        /* For the caller's line about the full disk: how full it is. */
        if (et_fs_space(ob->path, &avail, &total) == 0)
            ob->fs_avail = avail;
    } else {
        et_warn(OUTBOX_LOG, "%s: %s: %s", ob->path, what, sqlite3_errmsg(ob->db));
    }
    et_outbox_undo(ob);
    return ret;
}

/* ---- the operations ------------------------------------------------------ */

const char *et_outbox_path(const struct et_outbox *ob)
{
    return ob->path;
}

uint64_t et_outbox_next_seq(const struct et_outbox *ob)
{
    return ob->next_seq;
}

int et_outbox_claim(struct et_outbox *ob, uint64_t seq)
{
    int ret;

    if (seq < ob->next_seq || seq > (uint64_t)INT64_MAX)
        return -EINVAL;
    ret = et_outbox_seq_reserve(ob, seq);
    if (ret < 0)
        return ret;
    /* The close must not call the stop clean below this seq (outbox_open.c). */
    if (seq > ob->seq_high)
        ob->seq_high = seq;
    return 0;
}

/*
 * Insert the row. The blob is bound, not copied: the statement must not
 * keep the pointer to the caller's buffer past this call. A blob over
 * SQLite's length limit (1e9 bytes by default) cannot be bound: -EFBIG,
 * and like any failed insert it undoes the group. (Before the shared
 * mapping it went in unbound, failed NOT NULL and read as -EEXIST.)
 */
static int insert(struct et_outbox *ob, uint64_t seq, const void *blob, size_t len,
                  uint32_t n_samples, int64_t created_ms)
{
    sqlite3_stmt *s = ob->stmt[ST_INSERT];
    int rc, ret;

    sqlite3_bind_int64(s, 1, (sqlite3_int64)seq);
    sqlite3_bind_int64(s, 2, created_ms);
    sqlite3_bind_int64(s, 3, n_samples);
    rc = sqlite3_bind_blob(s, 4, blob, (int)len, SQLITE_STATIC);
    /* A seq already stored would be -EEXIST (PRIMARY KEY), as it always was. */
    ret = rc == SQLITE_OK ? et_sqlite_run(s) : et_sqlite_errno(ob->db, rc);
    sqlite3_clear_bindings(s);
    return ret;
}

int et_outbox_append(struct et_outbox *ob, uint64_t seq, const void *blob, size_t len,
                     uint32_t n_samples, int64_t created_ms)
{
    uint64_t freed;
    bool own;
    int ret;

    if (!blob || len == 0 || len > INT_MAX || seq < ob->next_seq)
        return -EINVAL;
    if (seq > (uint64_t)INT64_MAX)
        return -EOVERFLOW;
    ret = et_outbox_seq_reserve(ob, seq);
    if (ret < 0) {
        if (ob->in_group)
            et_outbox_undo(ob);    /* the contract: a failure ends the group */
        return ret;
    }
    ret = et_outbox_make_room(ob, seq, len, n_samples, &own, &freed);
    if (ret < 0)
        return ret;     /* -EDQUOT, or failed and undone */

    ret = insert(ob, seq, blob, len, n_samples, created_ms);
    if (ret == 0 && own)
        ret = et_sqlite_run(ob->stmt[ST_COMMIT]);
    if (ret < 0)
        return et_outbox_fail(ob, "appending a batch", ret);

    if (freed > 0 && et_outbox_load_bounds(ob) < 0)
        et_warn(OUTBOX_LOG, "%s: reading the outbox's bounds: %s", ob->path, sqlite3_errmsg(ob->db));
    if (ob->batches == 0)
        ob->oldest = seq;
    ob->newest = seq;
    ob->batches++;
    ob->samples += n_samples;
    ob->bytes += len;
    ob->next_seq = seq + 1;
    if (seq > ob->seq_high)
        ob->seq_high = seq;
    ob->group_wrote = ob->in_group;
    return 0;
}

/* n_samples and payload length of one batch (ST_ONE) */
static int read_one(void *ctx, sqlite3_stmt *row)
{
    struct range_sum *r = ctx;

    r->samples += et_sqlite_col_u64(row, 0);
    r->bytes += et_sqlite_col_u64(row, 1);
    return 0;
}

/*
 * Delete seq and add it to *gone. On failure *gone is half-counted, which
 * does not matter: the caller undoes the ack and reloads the counters.
 * @return 1 (deleted), 0 (not stored, or not any more: a repeated ack), -errno.
 */
static int ack_one(struct et_outbox *ob, uint64_t seq, struct range_sum *gone)
{
    int ret;

    sqlite3_bind_int64(ob->stmt[ST_ONE], 1, et_sqlite_u64_arg(seq));
    ret = et_sqlite_one_row(ob->stmt[ST_ONE], read_one, gone);
    if (ret < 0)
        return ret == -ENOENT ? 0 : ret;
    sqlite3_bind_int64(ob->stmt[ST_DELETE_ONE], 1, et_sqlite_u64_arg(seq));
    ret = et_sqlite_run(ob->stmt[ST_DELETE_ONE]);
    if (ret < 0)
        return ret;
    gone->count++;
    return 1;
}

int et_outbox_ack(struct et_outbox *ob, uint64_t through, const uint64_t *seqs, size_t n_seqs)
{
    struct range_sum gone = { 0 };
    bool own = !ob->in_group, newest_gone = false;
    int ret;

    if (n_seqs && !seqs)
        return -EINVAL;
    if (ob->batches == 0)
        return 0;
    if (own) {
        ret = et_sqlite_run(ob->stmt[ST_BEGIN]);
        if (ret < 0)
            goto fail;
    } else {
        ob->group_wrote = true;     /* may have; an undo then counts again */
    }
    if (through >= ob->oldest) {
        ret = range_sum(ob, through, &gone);
        if (ret < 0)
            goto fail;
        if (gone.count > 0) {
            sqlite3_bind_int64(ob->stmt[ST_DELETE_THROUGH], 1, et_sqlite_u64_arg(through));
            ret = et_sqlite_run(ob->stmt[ST_DELETE_THROUGH]);
            if (ret < 0)
                goto fail;
        }
        newest_gone = through >= ob->newest;
    }
    for (size_t i = 0; i < n_seqs; i++) {
        if (seqs[i] <= through || seqs[i] < ob->oldest || seqs[i] > ob->newest)
            continue;
        ret = ack_one(ob, seqs[i], &gone);
        if (ret < 0)
            goto fail;
        if (ret == 1 && seqs[i] == ob->newest)
            newest_gone = true;
    }
    /* Keep the high-water mark once the newest row no longer holds it. */
    if (newest_gone) {
        ret = et_outbox_meta_save(ob, ob->next_seq - 1, ob->dropped);
        if (ret < 0)
            goto fail;
    }
    if (own) {
        ret = et_sqlite_run(ob->stmt[ST_COMMIT]);
        if (ret < 0)
            goto fail;
    }
    ob->batches -= gone.count;
    ob->samples -= gone.samples;
    ob->bytes -= gone.bytes;
    if (gone.count > 0) {
        ret = et_outbox_load_bounds(ob);
        if (ret < 0)
            return et_outbox_fail(ob, "reading the outbox after an ack", ret);
    }
    return gone.count > INT_MAX ? INT_MAX : (int)gone.count;
fail:
    return et_outbox_fail(ob, "acknowledging", ret);
}

/* The row of ST_NEXT, copied out with the spare bytes. */
struct next_row {
    bool read;          /* the step found a row: a failure after it is copy_next's */
    uint64_t seq;
    uint8_t *blob;
    size_t len;
};

static int copy_next(void *ctx, sqlite3_stmt *row)
{
    struct next_row *r = ctx;
    const void *data;
    size_t n;

    r->read = true;
    /* Blob first, then its size: the documented order for a stable pointer. */
    data = sqlite3_column_blob(row, 1);
    n = (size_t)sqlite3_column_bytes(row, 1);
    if (!data && n == 0 && sqlite3_errcode(sqlite3_db_handle(row)) == SQLITE_NOMEM)
        return -ENOMEM;
    r->blob = malloc(n + ET_OUTBOX_BLOB_SPARE);
    if (!r->blob)
        return -ENOMEM;
    if (n)
        memcpy(r->blob, data, n);
    memset(r->blob + n, 0, ET_OUTBOX_BLOB_SPARE);
    r->seq = et_sqlite_col_u64(row, 0);
    r->len = n;
    return 0;
}

int et_outbox_next(struct et_outbox *ob, uint64_t after, uint64_t *seq, uint8_t **blob,
                   size_t *len)
{
    sqlite3_stmt *s = ob->stmt[ST_NEXT];
    struct next_row r = { 0 };
    int ret;

    *blob = NULL;
    *len = 0;
    if (after >= (uint64_t)INT64_MAX)
        return -ENOENT;
    sqlite3_bind_int64(s, 1, (sqlite3_int64)after);
    ret = et_sqlite_one_row(s, copy_next, &r);
    if (ret == -ENOENT)
        return ret;
    if (ret < 0 && !r.read)
        et_warn(OUTBOX_LOG, "%s: reading the batch after seq %" PRIu64 ": %s", ob->path, after,
                sqlite3_errmsg(ob->db));
    if (ret < 0)
        return ret;
    *seq = r.seq;
    *blob = r.blob;
    *len = r.len;
    return 0;
}

int et_outbox_stats(struct et_outbox *ob, struct et_outbox_stats *st)
{
    memset(st, 0, sizeof(*st));     /* padding too: callers compare whole structs */
    st->batches = ob->batches;
    st->samples = ob->samples;
    st->bytes = ob->bytes;
    st->oldest_seq = ob->batches ? ob->oldest : 0;
    st->newest_seq = ob->batches ? ob->newest : 0;
    st->dropped_samples = ob->dropped + ob->dropped_unsaved;
    st->fs_avail = ob->fs_avail;
    st->reserve_bytes = ob->lim.reserve_bytes;
    st->below_reserve = ob->below_reserve;
    return 0;
}

int et_outbox_count_from(struct et_outbox *ob, uint64_t from, uint64_t *n)
{
    sqlite3_stmt *s = ob->stmt[ST_COUNT_FROM];

    *n = 0;
    if (ob->batches == 0 || from > ob->newest)
        return 0;
    if (from <= ob->oldest) {
        *n = ob->batches;
        return 0;
    }
    sqlite3_bind_int64(s, 1, et_sqlite_u64_arg(from));
    return et_sqlite_one_row(s, read_u64, n);
}

void et_outbox_count_dropped(struct et_outbox *ob, uint64_t n)
{
    ob->dropped_unsaved += n;
}

int et_outbox_note_held(struct et_outbox *ob, uint64_t n)
{
    ob->held_noted = n;
    return et_outbox_note_write(ob);
}

int et_outbox_begin(struct et_outbox *ob)
{
    int ret;

    if (ob->in_group)
        return -EALREADY;
    ret = et_sqlite_run(ob->stmt[ST_BEGIN]);
    if (ret < 0) {
        et_warn(OUTBOX_LOG, "%s: starting a group: %s", ob->path, sqlite3_errmsg(ob->db));
        return ret;
    }
    ob->in_group = true;
    ob->group_wrote = false;
    ob->group_seq = ob->next_seq;
    return 0;
}

int et_outbox_commit(struct et_outbox *ob)
{
    uint64_t unsaved = ob->dropped_unsaved;
    int ret = 0;

    if (!ob->in_group)
        return -EINVAL;
    /* Drops the caller counted go in with the group: no commit of their own. */
    if (unsaved > 0)
        ret = meta_set(ob, "dropped", ob->dropped + unsaved);
    if (ret == 0)
        ret = et_sqlite_run(ob->stmt[ST_COMMIT]);
    if (ret < 0)
        return et_outbox_fail(ob, "committing a group", ret);
    ob->in_group = false;
    ob->dropped += unsaved;
    ob->dropped_unsaved -= unsaved;
    if (unsaved > 0)
        et_outbox_note_write(ob);   /* the database counts them now */
    return 0;
}

bool et_outbox_in_group(const struct et_outbox *ob)
{
    return ob->in_group;
}
