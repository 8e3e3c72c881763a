/*
 * The samples' partitions: one a day (UTC), samples_pYYYYMMDD, for
 * [day, day + 1). Made ahead by writers (at open and by
 * et_store_maintain()), so ingest always finds its day; dropped whole by
 * retention. Samples whose day has no partition yet (a board's clock in
 * 1970, a backlog older than the partitions) land in samples_default;
 * their day then gets a partition like any other and they move there, so
 * that retention finds them by day too and never deletes row by row.
 *
 * Each step is a transaction of its own under an advisory lock, so two
 * instances never make the same partition; one that finds the lock taken
 * leaves the work to the holder. Making a partition takes no lock that
 * stops ingest (ATTACH PARTITION takes SHARE UPDATE EXCLUSIVE on samples);
 * dropping one takes ACCESS EXCLUSIVE on samples for a moment, so it waits
 * at most STORE_PG_DROP_WAIT for readers and writers to let go, and is
 * tried again at the next call when they do not.
 */
#include "store_pg.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "edgetel/log.h"

#define DAY_MS INT64_C(86400000)
/* Days made ahead of today, and behind it (a board's clock a little slow). */
#define STORE_PG_DAYS_AHEAD 3
#define STORE_PG_DAYS_BEHIND 1
/* Days of samples_default's rows given a partition per call. */
#define STORE_PG_DEFAULT_DAYS 64
#define STORE_PG_DROP_WAIT "2s"
#define STORE_PG_LOCK_PARTS "hashtext('edgetel.partitions'), hashtext(current_schema())"

static int64_t floor_div(int64_t a, int64_t b)
{
    return a / b - (a % b != 0 && (a < 0) != (b < 0));
}

/* The day's name and bounds: samples_p20260315, '2026-03-15', '2026-03-16'. */
static void day_text(int64_t day, char *name, size_t nlen, char *from, char *to, size_t blen)
{
    time_t t = (time_t)(day * 86400);
    struct tm tm;

    gmtime_r(&t, &tm);
    snprintf(name, nlen, "samples_p%04d%02d%02d", tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday);
    strftime(from, blen, "%Y-%m-%d 00:00:00+00", &tm);
    t += 86400;
    gmtime_r(&t, &tm);
    strftime(to, blen, "%Y-%m-%d 00:00:00+00", &tm);
}

/* Day number of a partition name, or INT64_MIN for another table. */
static int64_t name_day(const char *name)
{
    struct tm tm = { 0 };
    int y, m, d;

    if (sscanf(name, "samples_p%4d%2d%2d", &y, &m, &d) != 3 || strlen(name) != 17)
        return INT64_MIN;
    tm.tm_year = y - 1900;
    tm.tm_mon = m - 1;
    tm.tm_mday = d;
    return floor_div((int64_t)timegm(&tm), 86400);
}

struct days {
    int64_t *day;
    size_t n, cap;
};

static int days_add(struct days *d, int64_t day)
{
    for (size_t i = 0; i < d->n; i++)
        if (d->day[i] == day)
            return 0;
    if (d->n == d->cap) {
        size_t cap = d->cap ? d->cap * 2 : 16;
        int64_t *grown = realloc(d->day, cap * sizeof(*grown));

        if (!grown)
            return -ENOMEM;
        d->day = grown;
        d->cap = cap;
    }
    d->day[d->n++] = day;
    return 0;
}

static bool days_has(const struct days *d, int64_t day)
{
    for (size_t i = 0; i < d->n; i++)
        if (d->day[i] == day)
            return true;
    return false;
}

/* Rows of a query of day numbers into d. */
static int query_days(struct store_pg *pg, const char *sql, bool names, struct days *d,
                      const char *what)
{
    PGresult *r = PQexec(pg->conn, sql);
    int ret = 0;

    if (PQresultStatus(r) != PGRES_TUPLES_OK) {
        ret = store_pg_failed(pg, store_pg_errno(pg, r), what, PQresultErrorMessage(r));
        PQclear(r);
        return ret;
    }
    for (int i = 0; ret == 0 && i < PQntuples(r); i++) {
        int64_t day = names ? name_day(pg_col_text(r, i, 0)) : pg_col_i64(r, i, 0);

        if (day != INT64_MIN)
            ret = days_add(d, day);
    }
    PQclear(r);
    return ret;
}

/* Begin a step under the advisory lock; 1 when another session holds it. */
static int step_begin(struct store_pg *pg)
{
    PGresult *r;
    int ret = store_pg_exec(pg, "BEGIN", "partitions");

    if (ret < 0)
        return ret;
    r = PQexec(pg->conn, "SELECT pg_try_advisory_xact_lock(" STORE_PG_LOCK_PARTS ")");
    if (PQresultStatus(r) != PGRES_TUPLES_OK) {
        ret = store_pg_failed(pg, store_pg_errno(pg, r), "partitions", PQresultErrorMessage(r));
    } else if (!pg_col_bool(r, 0, 0)) {
        ret = 1;
    }
    PQclear(r);
    if (ret != 0)
        PQclear(PQexec(pg->conn, "ROLLBACK"));
    return ret;
}

static int step_end(struct store_pg *pg, int ret, const char *what)
{
    if (ret == 0)
        ret = store_pg_exec(pg, "COMMIT", what);
    if (ret < 0)
        PQclear(PQexec(pg->conn, "ROLLBACK"));
    return ret;
}

/*
 * Give day its partition: a table like samples, filled with that day's
 * rows from samples_default (usually none), attached. 1 when another
 * instance holds the lock or made it meanwhile.
 *
 * samples_default is locked first, as ATTACH would lock it anyway: it
 * waits for writers with rows of the day still uncommitted there, and
 * then keeps new ones out until the commit. Locked only at the ATTACH,
 * such rows committed after the move and the ATTACH's check found them
 * outside their place ("updated partition constraint for default
 * partition would be violated"), which failed another instance's start.
 */
static int make_day(struct store_pg *pg, int64_t day)
{
    char name[64], from[40], to[40], sql[768];
    PGresult *r;
    int ret = step_begin(pg);

    if (ret != 0)
        return ret;
    day_text(day, name, sizeof(name), from, to, sizeof(from));
    snprintf(sql, sizeof(sql), "SELECT to_regclass('%s') IS NOT NULL", name);
    r = PQexec(pg->conn, sql);
    if (PQresultStatus(r) != PGRES_TUPLES_OK)
        ret = store_pg_failed(pg, store_pg_errno(pg, r), "partitions", PQresultErrorMessage(r));
    else if (pg_col_bool(r, 0, 0))
        ret = 1;
    PQclear(r);
    if (ret != 0) {
        PQclear(PQexec(pg->conn, "ROLLBACK"));
        return ret;
    }
    snprintf(sql, sizeof(sql),
             "LOCK TABLE samples_default IN ACCESS EXCLUSIVE MODE;"
             "CREATE TABLE %s (LIKE samples INCLUDING DEFAULTS);"
             "WITH moved AS (DELETE FROM samples_default WHERE ts >= '%s' AND ts < '%s'"
             " RETURNING *) INSERT INTO %s SELECT * FROM moved;"
             "ALTER TABLE samples ATTACH PARTITION %s FOR VALUES FROM ('%s') TO ('%s')",
             name, from, to, name, name, from, to);
    ret = step_end(pg, store_pg_exec(pg, sql, "making a partition"), "making a partition");
    if (ret == 0)
        et_info("store", "partition %s made for samples of %.10s", name, from);
    return ret;
}

static int drop_day(struct store_pg *pg, int64_t day, int64_t retention_ms)
{
    char name[64], from[40], to[40], sql[160];
    int ret = step_begin(pg);

    if (ret != 0)
        return ret;
    day_text(day, name, sizeof(name), from, to, sizeof(from));
    snprintf(sql, sizeof(sql), "SET LOCAL lock_timeout = '" STORE_PG_DROP_WAIT "';"
             " DROP TABLE IF EXISTS %s", name);
    ret = step_end(pg, store_pg_exec(pg, sql, "dropping a partition"), "dropping a partition");
    if (ret == 0)
        et_info("store", "partition %s dropped: its samples (%.10s) are older than the "
                "retention of %" PRId64 " days", name, from, retention_ms / DAY_MS);
    return ret;
}

int store_pg_partitions(struct store_pg *pg, int64_t now_ms, int64_t retention_ms, char *err,
                        size_t errlen)
{
    struct days have = { .day = NULL }, want = { .day = NULL };
    int64_t today, cutoff_day = INT64_MIN;
    char sql[256];
    int ret = 0, step;

    if (now_ms < 0)
        now_ms = (int64_t)time(NULL) * 1000;
    today = floor_div(now_ms, DAY_MS);
    if (retention_ms > 0)
        cutoff_day = floor_div(now_ms - retention_ms, DAY_MS);   /* days below it go */
    ret = query_days(pg, "SELECT c.relname FROM pg_inherits i JOIN pg_class c"
                     " ON c.oid = i.inhrelid WHERE i.inhparent = 'samples'::regclass",
                     true, &have, "listing partitions");
    for (int64_t d = today - STORE_PG_DAYS_BEHIND; ret == 0 && d <= today + STORE_PG_DAYS_AHEAD;
         d++)
        if (d >= cutoff_day)
            ret = days_add(&want, d);
    if (ret == 0) {
        snprintf(sql, sizeof(sql), "SELECT DISTINCT floor(extract(epoch FROM ts) / 86400)::bigint"
                 " FROM samples_default LIMIT %d", STORE_PG_DEFAULT_DAYS);
        ret = query_days(pg, sql, false, &want, "reading samples outside the partitions");
    }
    for (size_t i = 0; ret == 0 && i < want.n; i++) {
        if (days_has(&have, want.day[i]))
            continue;
        step = make_day(pg, want.day[i]);
        if (step == 1)
            break;   /* another instance is at it */
        ret = step;
        if (ret == 0)
            ret = days_add(&have, want.day[i]);
    }
    for (size_t i = 0; ret == 0 && i < have.n; i++) {
        if (have.day[i] >= cutoff_day)
            continue;
        step = drop_day(pg, have.day[i], retention_ms);
        if (step == 1)
            break;
        ret = step;
    }
    free(have.day);
    free(want.day);
    if (ret < 0 && err)
        snprintf(err, errlen, "%s", pg->last_error);
    return ret;
}
