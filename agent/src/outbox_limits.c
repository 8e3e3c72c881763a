/*
 * The outbox's limits: a quota on stored payload bytes and a reserve of
 * free space on the filesystem. When an append would break one, the
 * policy decides: drop the oldest batches, or refuse the new one. Either
 * way every dropped sample is counted in the database (meta 'dropped'),
 * and an episode of eviction is logged once when it starts and once when
 * an append fits again. A reserve that dropping could not restore refuses
 * the batch as a full disk would (-ENOSPC, nothing dropped): the caller
 * keeps it, and says so (see et_outbox_set_limits()).
 */
#include "outbox_internal.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "edgetel/log.h"
#include "edgetel/platform.h"
#include "edgetel/sqlite.h"

int et_outbox_set_limits(struct et_outbox *ob, const struct et_outbox_limits *lim)
{
    if (lim->policy != ET_OUTBOX_DROP_OLDEST && lim->policy != ET_OUTBOX_DROP_NEWEST)
        return -EINVAL;
    ob->lim = *lim;
    return 0;
}

static const char *policy_name(enum et_outbox_policy p)
{
    return p == ET_OUTBOX_DROP_NEWEST ? "drop-newest" : "drop-oldest";
}

static int read_pages(void *ctx, sqlite3_stmt *row)
{
    *(uint64_t *)ctx = et_sqlite_col_u64(row, 0);
    return 0;
}

/* How many payload bytes must go before a batch may be stored, and why. */
struct room {
    uint64_t quota;     /* for the quota */
    uint64_t reserve;   /* for the free-space reserve */
    char why[160];      /* the larger one's reason, for the episode's log line */
};

/* What storing a batch of len bytes needs; both 0 when it fits. */
static void room_needed(struct et_outbox *ob, size_t len, struct room *r)
{
    uint64_t avail, total, free_pages = 0;
    int ret;

    r->quota = r->reserve = 0;
    r->why[0] = '\0';
    if (ob->lim.quota_bytes && ob->bytes + len > ob->lim.quota_bytes) {
        r->quota = ob->bytes + len - ob->lim.quota_bytes;
        snprintf(r->why, sizeof(r->why), "the payload would exceed the quota of %" PRIu64 " bytes",
                 ob->lim.quota_bytes);
    }
    if (!ob->lim.reserve_bytes)
        return;
    ret = et_fs_space(ob->path, &avail, &total);
    if (ret < 0) {
        /* Without an answer the reserve cannot be judged; never evict blind. */
        et_debug(OUTBOX_LOG, "%s: free space unknown: %s", ob->path, strerror(-ret));
        ob->fs_avail = UINT64_MAX;
        return;
    }
    ob->fs_avail = avail;
    /*
     * Pages freed inside the database are reused before the file grows.
     * A failed read counts none: the reserve errs on the side of evicting.
     */
    et_sqlite_one_row(ob->stmt[ST_FREELIST], read_pages, &free_pages);
    avail += free_pages * ob->page_size;
    if (avail < ob->lim.reserve_bytes + len) {
        r->reserve = ob->lim.reserve_bytes + len - avail;
        if (r->reserve > r->quota)
            snprintf(r->why, sizeof(r->why), "free space (%" PRIu64 " bytes) would fall below the "
                     "reserve of %" PRIu64 " bytes", avail, ob->lim.reserve_bytes);
    }
}

struct oldest_row {
    uint64_t seq, n_samples, len;
};

static int read_oldest(void *ctx, sqlite3_stmt *row)
{
    struct oldest_row *o = ctx;

    o->seq = et_sqlite_col_u64(row, 0);
    o->n_samples = et_sqlite_col_u64(row, 1);
    o->len = et_sqlite_col_u64(row, 2);
    return 0;
}

/*
 * Delete the oldest batches until at least need payload bytes are gone,
 * or none is left. 0 or -errno.
 */
static int evict_oldest(struct et_outbox *ob, uint64_t need, uint64_t *freed)
{
    sqlite3_stmt *del = ob->stmt[ST_DELETE_ONE];
    struct oldest_row o;
    int ret;

    *freed = 0;
    while (*freed < need) {
        ret = et_sqlite_one_row(ob->stmt[ST_OLDEST], read_oldest, &o);
        if (ret == -ENOENT)
            return 0;   /* nothing left */
        if (ret < 0)
            return ret;
        sqlite3_bind_int64(del, 1, et_sqlite_u64_arg(o.seq));
        ret = et_sqlite_run(del);
        if (ret < 0)
            return ret;
        *freed += o.len;
        ob->batches--;
        ob->samples -= o.n_samples;
        ob->bytes -= o.len;
        ob->dropped += o.n_samples;
        ob->episode_dropped += o.n_samples;
    }
    return 0;
}

static void episode_start(struct et_outbox *ob, const char *why)
{
    if (ob->evicting)
        return;
    ob->evicting = true;
    ob->episode_dropped = 0;
    et_warn(OUTBOX_LOG, "%s: %s; %s until it fits (every dropped sample is counted)", ob->path,
            why, ob->lim.policy == ET_OUTBOX_DROP_NEWEST ? "refusing new batches"
                                                         : "dropping the oldest batches");
}

static void episode_end(struct et_outbox *ob)
{
    if (!ob->evicting)
        return;
    ob->evicting = false;
    et_info(OUTBOX_LOG, "%s: back within limits (%s); %" PRIu64 " samples dropped meanwhile, %"
            PRIu64 " since the data dir was made", ob->path, policy_name(ob->lim.policy),
            ob->episode_dropped, ob->dropped);
}

/*
 * Refuse the batch: use its seq up and count its samples, durably. Runs in
 * the open transaction (the group's, or the append's own when tx_open),
 * else in one of its own; commits that own one.
 */
static int refuse(struct et_outbox *ob, uint64_t seq, uint32_t n_samples, bool tx_open)
{
    bool own = !ob->in_group;
    int ret;

    if (own && !tx_open) {
        ret = et_sqlite_run(ob->stmt[ST_BEGIN]);
        if (ret < 0)
            return et_outbox_fail(ob, "refusing a batch", ret);
    }
    ret = et_outbox_meta_save(ob, seq, ob->dropped + n_samples);
    if (ret == 0 && own)
        ret = et_sqlite_run(ob->stmt[ST_COMMIT]);
    if (ret < 0)
        return et_outbox_fail(ob, "refusing a batch", ret);
    ob->dropped += n_samples;
    ob->episode_dropped += n_samples;
    ob->next_seq = seq + 1;
    if (seq > ob->seq_high)
        ob->seq_high = seq;
    if (et_outbox_load_bounds(ob) < 0)
        et_warn(OUTBOX_LOG, "%s: reading the outbox's bounds: %s", ob->path, sqlite3_errmsg(ob->db));
    return -EDQUOT;
}

int et_outbox_make_room(struct et_outbox *ob, uint64_t seq, size_t len, uint32_t n_samples,
                        bool *own, uint64_t *freed)
{
    struct room r;
    uint64_t need;
    int ret;

    *own = false;
    *freed = 0;
    room_needed(ob, len, &r);
    need = r.quota > r.reserve ? r.quota : r.reserve;
    ob->below_reserve = false;
    if (need == 0) {
        episode_end(ob);
        return 0;
    }
    /*
     * Below the reserve the card is full for the outbox. When dropping every
     * stored batch would not bring it back (or the policy keeps them), drop
     * nothing: the batch is not stored, as on a full disk, and the caller,
     * which still holds it, may send it anyway and says so (-ENOSPC).
     */
    if (r.reserve > 0 && (ob->lim.policy == ET_OUTBOX_DROP_NEWEST || r.reserve > ob->bytes)) {
        ob->below_reserve = true;
        if (ob->in_group)
            et_outbox_undo(ob);     /* the contract: -ENOSPC ends the group */
        return -ENOSPC;
    }
    episode_start(ob, r.why);
    if (ob->in_group)
        ob->group_wrote = true;
    if (ob->lim.policy == ET_OUTBOX_DROP_NEWEST ||
        (ob->lim.quota_bytes && len > ob->lim.quota_bytes))
        return refuse(ob, seq, n_samples, false);
    if (!ob->in_group) {
        ret = et_sqlite_run(ob->stmt[ST_BEGIN]);
        if (ret < 0)
            return et_outbox_fail(ob, "appending a batch", ret);
        *own = true;
    }
    ret = evict_oldest(ob, need, freed);
    if (ret == 0 && *freed < need)
        return refuse(ob, seq, n_samples, *own);   /* all gone, still no room */
    if (ret == 0)
        ret = et_outbox_meta_save(ob, seq, ob->dropped);
    if (ret < 0)
        return et_outbox_fail(ob, "making room for a batch", ret);
    return 0;
}
