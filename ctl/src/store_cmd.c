/*
 * edgetelctl store copy FROM TO: every row of the store FROM into the
 * store TO (a SQLite file or a PostgreSQL connection string each; TO is
 * made when it is new), with a progress line at most once a second.
 * Stopped and run again, it goes on where it was and stores nothing twice
 * (edgetel/store_copy.h). FROM is only read.
 *
 * edgetelctl store upkeep STORE [--retention DUR]: what every aggregator
 * does at start and every 10 minutes (et_store_maintain()), once, now: for
 * PostgreSQL the days' partitions made ahead and old days dropped.
 */
#include "store_cmd.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "edgetel/log.h"
#include "edgetel/parse.h"
#include "edgetel/store_copy.h"
#include "edgetel/store_open.h"

#define PROG_STORE "edgetelctl store"

struct progress {
    time_t last;
    const char *phase;
};

static void show(void *ctx, const struct et_store_copy_progress *p)
{
    struct progress *pr = ctx;
    time_t now = time(NULL);
    bool new_phase = !pr->phase || strcmp(pr->phase, p->phase) != 0;

    if (!new_phase && now == pr->last)
        return;
    pr->last = now;
    pr->phase = p->phase;
    if (strcmp(p->phase, "batches") == 0 || strcmp(p->phase, "done") == 0)
        fprintf(stderr, PROG_STORE " copy: %s: batches %" PRIu64 " of %" PRIu64 " (%d%%): %"
                PRIu64 " copied, %" PRIu64 " already there; %" PRIu64 " samples copied\n",
                p->phase, p->batches_seen, p->batches_total,
                p->batches_total ? (int)(p->batches_seen * 100 / p->batches_total) : 100,
                p->batches_copied, p->batches_skipped, p->samples_copied);
    else
        fprintf(stderr, PROG_STORE " copy: %s\n", p->phase);
}

static int usage(FILE *out, int status)
{
    fprintf(out, "usage: edgetelctl store copy FROM TO\n"
                 "       edgetelctl store upkeep STORE [--retention DUR]\n"
                 "  Copy every row of the store FROM into the store TO: devices, streams and\n"
                 "  acks, metrics, batches and their samples, quarantined batches, pushed\n"
                 "  configs and reports. Each is a SQLite file or a PostgreSQL connection\n"
                 "  string (postgresql://... or host=... dbname=...); TO is made when new.\n"
                 "  Run it again after a stop: it goes on, and stores nothing twice.\n"
                 "upkeep: what an aggregator does every 10 minutes, now: PostgreSQL's daily\n"
                 "  partitions made ahead and, with --retention (e.g. 90d), the days wholly\n"
                 "  older than that dropped.\n");
    return status;
}

static int upkeep(const char *target, const char *retention)
{
    struct et_store *s = NULL;
    char err[512], name[512];
    int64_t keep_ms = 0;
    struct timespec now;
    int rc;

    if (retention && et_parse_duration_ms(retention, &keep_ms) != 0) {
        fprintf(stderr, PROG_STORE " upkeep: --retention \"%s\": expected a duration like 90d\n",
                retention);
        return 2;
    }
    et_store_describe(target, name, sizeof(name));
    /* Run by hand or from cron: say each partition made or dropped. */
    et_log_set_level(ET_LOG_INFO);
    rc = et_store_open(&s, NULL, target, 0, err, sizeof(err));
    if (rc == 0) {
        clock_gettime(CLOCK_REALTIME, &now);
        rc = et_store_maintain(s, (int64_t)now.tv_sec * 1000 + now.tv_nsec / 1000000, keep_ms,
                               err, sizeof(err));
        if (rc == -EOPNOTSUPP)
            snprintf(err, sizeof(err), "retention needs a PostgreSQL store (SQLite keeps every "
                     "sample)");
    }
    et_store_close(s);
    if (rc < 0) {
        fprintf(stderr, PROG_STORE " upkeep: %s: %s\n", name, err);
        return 1;
    }
    return 0;
}

int et_ctl_store_main(int argc, char **argv, const char *store)
{
    struct et_store *from = NULL, *to = NULL;
    struct progress pr = { .last = 0 };
    char err[512], from_name[512], to_name[512];
    int rc;

    (void)store;
    if (argc == 2 && (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0))
        return usage(stdout, 0);
    if (argc >= 3 && strcmp(argv[1], "upkeep") == 0) {
        if (argc == 3)
            return upkeep(argv[2], NULL);
        if (argc == 5 && strcmp(argv[3], "--retention") == 0)
            return upkeep(argv[2], argv[4]);
        return usage(stderr, 2);
    }
    if (argc != 4 || strcmp(argv[1], "copy") != 0)
        return usage(stderr, 2);
    et_store_describe(argv[2], from_name, sizeof(from_name));
    et_store_describe(argv[3], to_name, sizeof(to_name));
    rc = et_store_open(&from, NULL, argv[2], ET_STORE_READONLY, err, sizeof(err));
    if (rc < 0) {
        fprintf(stderr, PROG_STORE " copy: from %s: %s\n", from_name, err);
        return 1;
    }
    rc = et_store_open(&to, NULL, argv[3], 0, err, sizeof(err));
    if (rc < 0) {
        fprintf(stderr, PROG_STORE " copy: to %s: %s\n", to_name, err);
        et_store_close(from);
        return 1;
    }
    rc = et_store_copy(from, to, show, &pr, err, sizeof(err));
    et_store_close(to);
    et_store_close(from);
    if (rc < 0) {
        fprintf(stderr, PROG_STORE " copy: %s to %s: %s (what was copied stays; run it again "
                "to go on)\n", from_name, to_name, err);
        return 1;
    }
    printf("copied %s to %s\n", from_name, to_name);
    return 0;
}
