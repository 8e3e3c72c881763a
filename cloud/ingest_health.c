/*
 * The store's health as ingest sees it, and where each message's counts
 * go: a store that fails is said once, reminded of at most once a minute
 * and said again when it works; inside a group the counts wait for the
 * commit. See ingest_priv.h.
 */
#include "ingest_priv.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "edgetel/log.h"

/* A store that keeps failing is reminded of at most this often. */
#define INGEST_REMIND_MS 60000

/* Unix ms as ISO 8601 UTC, whole seconds or with ms; a number when out of range. */
void ingest_iso(int64_t ms, bool with_ms, char *buf, size_t len)
{
    time_t secs = (time_t)(ms >= 0 ? ms / 1000 : -1);
    struct tm tm;
    size_t n;

    if (ms < 0 || ms > INGEST_UNSYNCED_MAX_MS * 4 || !gmtime_r(&secs, &tm)) {
        snprintf(buf, len, "%" PRId64 " ms", ms);
        return;
    }
    n = strftime(buf, len, "%Y-%m-%dT%H:%M:%S", &tm);
    if (with_ms)
        snprintf(buf + n, len - n, ".%03dZ", (int)(ms % 1000));
    else
        snprintf(buf + n, len - n, "Z");
}

/*
 * The store failed (count messages not stored). A store that fails every
 * batch must be said once, clearly, not once a batch: the first failure
 * is one error line with since when, why, and what it means for the
 * devices; then a reminder at most once a minute with the count; and one
 * line when it works again. -ECANCELED is a group already spoiled by a
 * failure reported before: counted, the reason kept.
 */
static void ingest_store_trouble(struct et_ingest *ig, int err, const char *what, uint64_t count)
{
    struct ingest_health *h = &ig->health;
    const char *detail = et_store_last_error(ig->w);
    char since[40];

    if (err != -ECANCELED || !h->reason[0])
        snprintf(h->reason, sizeof(h->reason), "%s: %s", what,
                 detail && detail[0] ? detail : strerror(-err));
    if (!h->failing) {
        h->failing = true;
        h->since_ms = ig->now_ms;
        h->failed = count;
        h->next_remind_ms = ig->now_ms + INGEST_REMIND_MS;
        ingest_iso(h->since_ms, false, since, sizeof(since));
        et_error("ingest", "store is failing since %s: %s; batches are not stored and not "
                 "acknowledged (the devices keep them and send them again)", since, h->reason);
        return;
    }
    h->failed += count;
    if (ig->now_ms >= h->next_remind_ms) {
        h->next_remind_ms = ig->now_ms + INGEST_REMIND_MS;
        ingest_iso(h->since_ms, false, since, sizeof(since));
        et_error("ingest", "store still failing since %s (%" PRId64 " s): %" PRIu64 " batches "
                 "and statuses not stored and not acknowledged since; last reason: %s", since,
                 (ig->now_ms - h->since_ms) / 1000, h->failed, h->reason);
    }
}

/* A commit succeeded: if the store was failing, say once that it works again. */
static void ingest_store_works(struct et_ingest *ig)
{
    struct ingest_health *h = &ig->health;

    if (!h->failing)
        return;
    et_info("ingest", "store works again after failing for %" PRId64 " s: %" PRIu64 " batches "
            "and statuses were not stored meanwhile; their devices send them again",
            (ig->now_ms - h->since_ms) / 1000, h->failed);
    *h = (struct ingest_health){ .failing = false };
}

/* The store (or memory) failed: undo, count, and tell the caller not to ack. */
int ingest_store_failed(struct et_ingest *ig, struct et_ingest_reply *reply,
                               int err, const char *what)
{
    ingest_tx_rollback(ig);
    ig->stats.store_errors++;
    reply->kind = ET_INGEST_NONE;
    et_debug("ingest", "device %s: %s not stored: %s (the device will send it again)",
             reply->device, what, strerror(-err));
    ingest_store_trouble(ig, err, what, 1);
    return err;
}

/*
 * Where a message's counts go: the stats, or inside a group the pending
 * counts that become stats only when the group commits.
 */
struct et_ingest_stats *ingest_counts(struct et_ingest *ig)
{
    if (!ig->group.open)
        return &ig->stats;
    ig->pending_msgs++;
    return &ig->pending;
}

/* The message's transaction committed (outside a group, the store works). */
void ingest_committed(struct et_ingest *ig)
{
    if (!ig->group.open)
        ingest_store_works(ig);
}

void ingest_group_settled(struct et_ingest *ig, int ret)
{
    struct et_ingest_stats *st = &ig->stats;
    const struct et_ingest_stats *p = &ig->pending;

    if (ret == 0) {
        st->batches += p->batches;
        st->samples += p->samples;
        st->retimed += p->retimed;
        st->duplicates += p->duplicates;
        st->statuses += p->statuses;
        st->new_devices += p->new_devices;
        st->new_streams += p->new_streams;
        st->quarantined += p->quarantined;
        if (ig->pending_msgs)
            ingest_store_works(ig);
    } else if (ig->pending_msgs) {
        st->store_errors += ig->pending_msgs;
        ingest_store_trouble(ig, ret, "commit", ig->pending_msgs);
    }
    ig->pending = (struct et_ingest_stats){ 0 };
    ig->pending_msgs = 0;
}
