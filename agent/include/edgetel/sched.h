/*
 * Scheduler: runs each registered job at its own interval on the monotonic
 * clock. Time is passed in (now_ms) so tests drive it with a fake clock.
 *
 * Contract: a job runs at most once per et_sched_run_due() call. Its next
 * due time advances by whole intervals from the previous due time (no
 * drift); when the loop fell behind by more than one interval, missed runs
 * are skipped, not replayed, so a stall never causes a burst.
 *
 * Jobs due in the same call run in order of due time, then of id (the
 * order they were added). A job may call et_sched_add(), _set_interval()
 * and _remove() from its callback; a job added then runs in a later call
 * at the earliest. Not thread-safe: one loop owns a scheduler.
 */
#ifndef EDGETEL_SCHED_H
#define EDGETEL_SCHED_H

#include <stddef.h>
#include <stdint.h>

struct et_sched;

typedef void (*et_sched_fn)(void *ctx, int64_t now_ms);

int et_sched_create(struct et_sched **out);
void et_sched_destroy(struct et_sched *s);

/**
 * Add a job that first runs at now_ms + first_delay_ms, then every
 * interval_ms (> 0). Returns a job id >= 0 or -errno.
 */
int et_sched_add(struct et_sched *s, int64_t interval_ms, int64_t first_delay_ms,
                 int64_t now_ms, et_sched_fn fn, void *ctx);

/** Change a job's interval; its next run is now_ms + interval_ms if sooner. */
int et_sched_set_interval(struct et_sched *s, int id, int64_t interval_ms, int64_t now_ms);

/**
 * Remove a job; it never runs again, also not later in a run_due() that is
 * under way. Its id is not given out again. Returns 0 or -ENOENT.
 */
int et_sched_remove(struct et_sched *s, int id);

/** Earliest due time of any job, INT64_MAX when there is none. */
int64_t et_sched_next_due(const struct et_sched *s);

/**
 * Run every job due at now_ms (due time <= now_ms). Returns how many ran;
 * 0 when called from inside a job's callback, which runs nothing.
 */
int et_sched_run_due(struct et_sched *s, int64_t now_ms);

#endif
