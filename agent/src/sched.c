#include "edgetel/sched.h"

#include <errno.h>
#include <limits.h>
#include <stdbool.h>
#include <stdlib.h>

/*
 * A handful of jobs (collectors, batching, status): a flat array searched
 * linearly is both the simplest and the fastest structure at this size.
 */
struct job {
    int id;
    bool live;
    bool pending;           /* due in the run_due() under way, not yet run */
    int64_t interval_ms;
    int64_t due_ms;
    et_sched_fn fn;
    void *ctx;
};

struct et_sched {
    struct job *jobs;
    size_t n, cap;
    int next_id;
    bool running;           /* inside run_due(): removal only marks jobs dead */
};

int et_sched_create(struct et_sched **out)
{
    struct et_sched *s = calloc(1, sizeof(*s));

    if (!s)
        return -ENOMEM;
    *out = s;
    return 0;
}

void et_sched_destroy(struct et_sched *s)
{
    if (!s)
        return;
    free(s->jobs);
    free(s);
}

static struct job *find(const struct et_sched *s, int id)
{
    for (size_t i = 0; i < s->n; i++) {
        if (s->jobs[i].id == id && s->jobs[i].live)
            return &s->jobs[i];
    }
    return NULL;
}

/* a + b, or INT64_MAX when it does not fit: a job that far out never runs. */
static int64_t add_sat(int64_t a, int64_t b)
{
    int64_t r;

    return __builtin_add_overflow(a, b, &r) ? INT64_MAX : r;
}

static void compact(struct et_sched *s)
{
    size_t w = 0;

    for (size_t r = 0; r < s->n; r++) {
        if (s->jobs[r].live)
            s->jobs[w++] = s->jobs[r];
    }
    s->n = w;
}

int et_sched_add(struct et_sched *s, int64_t interval_ms, int64_t first_delay_ms,
                 int64_t now_ms, et_sched_fn fn, void *ctx)
{
    struct job *j;

    if (!s || !fn || interval_ms <= 0 || first_delay_ms < 0)
        return -EINVAL;
    if (s->next_id == INT_MAX)
        return -EOVERFLOW;
    if (s->n == s->cap) {
        size_t cap = s->cap ? s->cap * 2 : 8;
        struct job *jobs = realloc(s->jobs, cap * sizeof(*jobs));

        if (!jobs)
            return -ENOMEM;
        s->jobs = jobs;
        s->cap = cap;
    }
    j = &s->jobs[s->n++];
    *j = (struct job){
        .id = s->next_id++,
        .live = true,
        .interval_ms = interval_ms,
        .due_ms = add_sat(now_ms, first_delay_ms),
        .fn = fn,
        .ctx = ctx,
    };
    return j->id;
}

int et_sched_set_interval(struct et_sched *s, int id, int64_t interval_ms, int64_t now_ms)
{
    struct job *j;
    int64_t sooner;

    if (!s || interval_ms <= 0)
        return -EINVAL;
    j = find(s, id);
    if (!j)
        return -ENOENT;
    j->interval_ms = interval_ms;
    /* From now on the new phase counts: a shorter interval takes effect
     * at once, a longer one after the run already planned. */
    sooner = add_sat(now_ms, interval_ms);
    if (sooner < j->due_ms)
        j->due_ms = sooner;
    return 0;
}

int et_sched_remove(struct et_sched *s, int id)
{
    struct job *j = s ? find(s, id) : NULL;

    if (!j)
        return -ENOENT;
    j->live = false;
    j->pending = false;
    if (!s->running)
        compact(s);
    return 0;
}

int64_t et_sched_next_due(const struct et_sched *s)
{
    int64_t next = INT64_MAX;

    for (size_t i = 0; s && i < s->n; i++) {
        if (s->jobs[i].live && s->jobs[i].due_ms < next)
            next = s->jobs[i].due_ms;
    }
    return next;
}

/*
 * The first due time after now on the job's grid due + k * interval: whole
 * intervals keep the phase (no drift), and jumping over every missed slot
 * at once is what turns a stall into one run instead of a burst.
 * Called for a job that is due, so now >= due.
 */
static int64_t next_slot(int64_t due, int64_t interval, int64_t now)
{
    int64_t k, step;

    k = (now - due) / interval + 1;
    if (__builtin_mul_overflow(k, interval, &step))
        return INT64_MAX;
    return add_sat(due, step);
}

int et_sched_run_due(struct et_sched *s, int64_t now_ms)
{
    int ran = 0;

    if (!s || s->running)
        return 0;
    s->running = true;
    /* Fix the set of due jobs first, so a job a callback adds or makes due
     * waits for the next call and no job runs twice in one call. */
    for (size_t i = 0; i < s->n; i++)
        s->jobs[i].pending = s->jobs[i].live && s->jobs[i].due_ms <= now_ms;
    for (;;) {
        struct job *j = NULL;
        et_sched_fn fn;
        void *ctx;

        /* Indices, not pointers, across callbacks: an add may move the array. */
        for (size_t i = 0; i < s->n; i++) {
            struct job *c = &s->jobs[i];

            if (c->pending && (!j || c->due_ms < j->due_ms ||
                               (c->due_ms == j->due_ms && c->id < j->id)))
                j = c;
        }
        if (!j)
            break;
        j->pending = false;
        j->due_ms = next_slot(j->due_ms, j->interval_ms, now_ms);
        fn = j->fn;
        ctx = j->ctx;
        fn(ctx, now_ms);
        ran++;
    }
    s->running = false;
    compact(s);
    return ran;
}
