/*
 * The PostgreSQL store on its own (cloud/store/store_pg_*.c): the schema
 * made once by aggregators starting together, stores it must not touch,
 * daily partitions and retention by whole days, and several instances
 * ingesting the same batches in groups at once, each stored exactly once.
 * The interfaces' behaviour is the shared cloud tests' (ctest's *_pg).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cloud_test.h"
#include "edgetel/ingest.h"
#include "edgetel/store_open.h"
#include "pg_test.h"

#include <libpq-fe.h>

#define DAY_MS INT64_C(86400000)

static int64_t now_ms(void)
{
    return (int64_t)time(NULL) * 1000;
}

static int64_t count(struct cloud_fixture *f, const char *sql)
{
    return et_pg_test_int(f->path, sql);
}

/* ---- schema ------------------------------------------------------------- */

struct opener {
    const char *conninfo;
    int ret;
    char err[256];
};

static void *open_store(void *arg)
{
    struct opener *o = arg;
    struct et_store *s = NULL;

    o->ret = et_store_open(&s, "postgresql", o->conninfo, 0, o->err, sizeof(o->err));
    et_store_close(s);
    return NULL;
}

static void instances_starting_together_make_the_schema_once(void **state)
{
    char conninfo[512], schema[64];
    struct opener o[4];
    pthread_t th[4];

    (void)state;
    et_pg_test_schema(conninfo, sizeof(conninfo), schema, sizeof(schema));
    for (int i = 0; i < 4; i++) {
        o[i] = (struct opener){ .conninfo = conninfo };
        assert_int_equal(pthread_create(&th[i], NULL, open_store, &o[i]), 0);
    }
    for (int i = 0; i < 4; i++) {
        assert_int_equal(pthread_join(th[i], NULL), 0);
        if (o[i].ret != 0)
            fail_msg("instance %d: %s", i, o[i].err);
    }
    assert_int_equal(et_pg_test_int(conninfo, "SELECT count(*) FROM schema_version"), 1);
    assert_int_equal(et_pg_test_int(conninfo, "SELECT max(version) FROM schema_version"), 2);
    et_pg_test_drop(schema);
}

/* A schema 1 store (before streams' metric dictionaries) gains the
 * dictionaries table and keeps its rows. */
static void schema_1_is_migrated(void **state)
{
    const struct et_store_dict_entry e = { .idx = 3, .metric_id = 5, .type = 2, .scale = 0.1 };
    char conninfo[512], schema[64], err[256];
    struct et_store *s = NULL;
    struct et_store_writer *w;

    (void)state;
    et_pg_test_schema(conninfo, sizeof(conninfo), schema, sizeof(schema));
    assert_int_equal(et_store_open(&s, NULL, conninfo, 0, err, sizeof(err)), 0);
    et_store_close(s);
    et_pg_test_run(conninfo, "DROP TABLE dictionaries; UPDATE schema_version SET version = 1;"
                   " INSERT INTO devices (id, first_seen_ms, last_seen_ms) VALUES ('d1', 1, 1)");
    assert_int_equal(et_store_open(&s, NULL, conninfo, 0, err, sizeof(err)), 0);
    assert_int_equal(et_pg_test_int(conninfo, "SELECT max(version) FROM schema_version"), 2);
    assert_int_equal(et_pg_test_int(conninfo, "SELECT count(*) FROM devices"), 1);
    w = et_store_writer(s);
    assert_int_equal(et_store_begin(w), 0);
    assert_int_equal(et_store_dict_put(w, "d1", "", 9, &e), 0);
    assert_int_equal(et_store_commit(w), 0);
    assert_int_equal(et_pg_test_int(conninfo, "SELECT count(*) FROM dictionaries"
                                    " WHERE device = 'd1' AND dict_id = 9 AND idx = 3"
                                    " AND scale = 0.1"), 1);
    et_store_close(s);
    et_pg_test_drop(schema);
}

static void stores_that_are_not_ours_are_refused(void **state)
{
    char conninfo[512], schema[64], err[256];
    struct et_store *s = NULL;

    (void)state;
    et_pg_test_schema(conninfo, sizeof(conninfo), schema, sizeof(schema));
    /* Read-only on an empty schema: nothing to read, nothing made. */
    assert_int_equal(et_store_open(&s, NULL, conninfo, ET_STORE_READONLY, err, sizeof(err)),
                     -EPROTO);
    assert_non_null(strstr(err, "not yet an edgetel store"));
    /* Somebody else's tables. */
    et_pg_test_run(conninfo, "CREATE TABLE orders (id int)");
    assert_int_equal(et_store_open(&s, NULL, conninfo, 0, err, sizeof(err)), -EPROTO);
    assert_non_null(strstr(err, "not an edgetel store"));
    assert_int_equal(et_pg_test_int(conninfo, "SELECT count(*) FROM pg_tables"
                                    " WHERE schemaname = current_schema()"), 1);
    et_pg_test_drop(schema);

    /* A newer edgetel's store. */
    et_pg_test_schema(conninfo, sizeof(conninfo), schema, sizeof(schema));
    assert_int_equal(et_store_open(&s, NULL, conninfo, 0, err, sizeof(err)), 0);
    et_store_close(s);
    et_pg_test_run(conninfo, "UPDATE schema_version SET version = 99");
    assert_int_equal(et_store_open(&s, NULL, conninfo, 0, err, sizeof(err)), -EPROTO);
    assert_non_null(strstr(err, "newer"));
    et_pg_test_drop(schema);

    /* No server there: the reason, not a crash. */
    assert_int_equal(et_store_open(&s, "postgresql", "host=/nonexistent dbname=x", 0, err,
                                   sizeof(err)), -ECONNREFUSED);
    assert_non_null(strstr(err, "/nonexistent"));
}

/* ---- partitions and retention --------------------------------------------- */

static int64_t partitions(struct cloud_fixture *f, const char *like)
{
    char sql[256];

    snprintf(sql, sizeof(sql), "SELECT count(*) FROM pg_inherits i JOIN pg_class c"
             " ON c.oid = i.inhrelid WHERE i.inhparent = 'samples'::regclass"
             " AND c.relname LIKE '%s'", like);
    return count(f, sql);
}

static void days_get_partitions_and_retention_drops_them_whole(void **state)
{
    struct cloud_fixture *f = *state;
    int64_t now = now_ms(), today = now / DAY_MS * DAY_MS;
    char err[256];

    /* Opening made yesterday, today and three days ahead, and the default. */
    assert_int_equal(partitions(f, "samples_p%"), 5);
    assert_int_equal(partitions(f, "samples_default"), 1);

    /* Samples of 100 and of 10 days ago, of today, and of a clock in 1970. */
    cloud_put_batch(f->w, "dev1", 1, "m", "1", today - 100 * DAY_MS + 1000, 3);
    cloud_put_batch(f->w, "dev1", 2, "m", "1", today - 10 * DAY_MS + 1000, 4);
    cloud_put_batch(f->w, "dev1", 3, "m", "1", today + 1000, 5);
    cloud_put_batch(f->w, "dev1", 4, "m", "1", 5000, 2);
    assert_int_equal(count(f, "SELECT count(*) FROM samples_default"), 3 + 4 + 2);

    /* Upkeep without retention: the old days get partitions, nothing goes. */
    assert_int_equal(et_store_maintain(f->store, now, 0, err, sizeof(err)), 0);
    assert_int_equal(count(f, "SELECT count(*) FROM samples_default"), 0);
    assert_int_equal(partitions(f, "samples_p%"), 5 + 3);
    assert_int_equal(count(f, "SELECT count(*) FROM samples"), 14);

    /* 90 days: the day of 100 days ago and 1970 are dropped whole, rows of
     * the day of 10 days ago and today stay. */
    assert_int_equal(et_store_maintain(f->store, now, 90 * DAY_MS, err, sizeof(err)), 0);
    assert_int_equal(partitions(f, "samples_p%"), 5 + 1);
    assert_int_equal(partitions(f, "samples_p1970%"), 0);
    assert_int_equal(count(f, "SELECT count(*) FROM samples"), 4 + 5);
    /* The dedupe record stays: a resend of a dropped day is a duplicate. */
    assert_int_equal(count(f, "SELECT count(*) FROM batches"), 4);

    /* Days go as time passes: ahead are made, behind dropped. */
    assert_int_equal(et_store_maintain(f->store, now + 2 * DAY_MS, 5 * DAY_MS, err,
                                       sizeof(err)), 0);
    assert_int_equal(count(f, "SELECT count(*) FROM samples"), 5);
    assert_true(partitions(f, "samples_p%") >= 5);

    /* SQLite has no partitions: retention there is refused. */
    {
        char path[128];
        struct et_store *s;

        snprintf(path, sizeof(path), "%s/lite.db", f->dir);
        assert_int_equal(et_store_open(&s, "sqlite", path, 0, err, sizeof(err)), 0);
        assert_int_equal(et_store_maintain(s, now, 0, err, sizeof(err)), 0);
        assert_int_equal(et_store_maintain(s, now, DAY_MS, err, sizeof(err)), -EOPNOTSUPP);
        et_store_close(s);
        cloud_remove_db(path);
    }
}

struct upkeep {
    struct et_store *store;
    int ret;
    char err[256];
};

static void *upkeep(void *arg)
{
    struct upkeep *u = arg;

    u->ret = et_store_maintain(u->store, now_ms(), 0, u->err, sizeof(u->err));
    return NULL;
}

/*
 * A day given its partition while another instance writes samples of that
 * day into samples_default: upkeep waits for that transaction and moves
 * its rows too, rather than failing at the ATTACH's check (which failed a
 * store's open beside an instance ingesting an old backlog).
 */
static void a_day_made_while_another_writes_it_keeps_its_rows(void **state)
{
    const struct timespec pause = { .tv_sec = 0, .tv_nsec = 10 * 1000 * 1000 };
    struct cloud_fixture *f = *state;
    int64_t day = now_ms() / DAY_MS * DAY_MS - 30 * DAY_MS;   /* before the partitions */
    struct upkeep u = { .store = f->store };
    PGconn *other = PQconnectdb(f->path);
    time_t t = (time_t)(day / 1000);
    char sql[512];
    struct tm tm;
    pthread_t th;
    int waited = 0;

    cloud_put_batch(f->w, "dev1", 1, "m", "1", day + 1000, 3);
    assert_int_equal(PQstatus(other), CONNECTION_OK);
    snprintf(sql, sizeof(sql), "BEGIN; INSERT INTO samples (id, metric_id, ts, mono_ms, vtype,"
             " v_i64, time_quality, seq) VALUES (1, 1, to_timestamp(%lld), 0, 1, 7, 1, 9)",
             (long long)(day / 1000 + 5));
    PQclear(PQexec(other, sql));
    assert_int_equal(pthread_create(&th, NULL, upkeep, &u), 0);
    /* Upkeep waits for the other transaction's hold on samples_default. */
    while (count(f, "SELECT count(*) FROM pg_locks WHERE NOT granted"
                    " AND relation = to_regclass('samples_default')") == 0 && waited++ < 1000)
        nanosleep(&pause, NULL);
    assert_true(waited < 1000);
    PQclear(PQexec(other, "COMMIT"));
    PQfinish(other);
    assert_int_equal(pthread_join(th, NULL), 0);
    if (u.ret != 0)
        fail_msg("upkeep beside a writer: %s", u.err);
    gmtime_r(&t, &tm);
    strftime(sql, sizeof(sql), "SELECT count(*) FROM samples_p%Y%m%d", &tm);
    assert_int_equal(count(f, sql), 3 + 1);
    assert_int_equal(count(f, "SELECT count(*) FROM samples_default"), 0);
}

/* ---- instances racing --------------------------------------------------------- */

#define RACE_DEVICES 5
#define RACE_SEQS 60
#define RACE_GROUP 8

struct racer {
    const char *conninfo;
    unsigned seed;
    uint64_t resent;             /* messages of groups that were rolled back */
    int failures;
};

static void *race(void *arg)
{
    struct racer *r = arg;
    struct et_store *store = NULL;
    struct et_ingest *ig = NULL;
    struct et_ingest_reply reply;
    char err[256];
    int order[RACE_DEVICES * RACE_SEQS];
    int n = RACE_DEVICES * RACE_SEQS;

    if (et_store_open(&store, "postgresql", r->conninfo, 0, err, sizeof(err)) < 0 ||
        et_ingest_create(&ig, et_store_writer(store), CLOUD_ROOT) < 0) {
        r->failures++;
        goto out;
    }
    /* Every batch of every device, in an order of this racer's own. */
    for (int i = 0; i < n; i++)
        order[i] = i;
    for (int i = n - 1; i > 0; i--) {
        int j = (int)(rand_r(&r->seed) % (unsigned)(i + 1)), t = order[i];

        order[i] = order[j];
        order[j] = t;
    }
    for (int i = 0; i < n;) {
        int first = i, end = i + RACE_GROUP < n ? i + RACE_GROUP : n;

        assert_int_equal(et_ingest_group_begin(ig), 0);
        for (; i < end; i++) {
            char device[16];
            uint64_t seq = (uint64_t)(order[i] % RACE_SEQS) + 1;

            snprintf(device, sizeof(device), "dev%d", order[i] / RACE_SEQS);
            if (cloud_ingest_batch(ig, device, seq, 1, 3, &reply) < 0)
                break;   /* the group is spoilt: rolled back below */
        }
        if (et_ingest_group_end(ig, NULL, NULL, NULL) < 0) {
            /* Rolled back (a deadlock between claims): the devices would
             * send these again; so does the racer. */
            r->resent += (uint64_t)(end - first);
            i = first;
        }
        i = i < end ? end : i;
    }
out:
    et_ingest_destroy(ig);
    et_store_close(store);
    return NULL;
}

static void instances_ingesting_the_same_batches_store_each_once(void **state)
{
    struct cloud_fixture *f = *state;
    struct racer r[3];
    pthread_t th[3];
    int64_t stored;

    for (int i = 0; i < 3; i++) {
        r[i] = (struct racer){ .conninfo = f->path, .seed = 7u + (unsigned)i };
        assert_int_equal(pthread_create(&th[i], NULL, race, &r[i]), 0);
    }
    for (int i = 0; i < 3; i++) {
        assert_int_equal(pthread_join(th[i], NULL), 0);
        assert_int_equal(r[i].failures, 0);
    }
    print_message("pg: groups rolled back and sent again: %llu, %llu, %llu messages\n",
                  (unsigned long long)r[0].resent, (unsigned long long)r[1].resent,
                  (unsigned long long)r[2].resent);
    /* Each batch once, each of its samples once. */
    assert_int_equal(count(f, "SELECT count(*) FROM batches"), RACE_DEVICES * RACE_SEQS);
    stored = count(f, "SELECT count(*) FROM samples");
    /* 5 a batch (cloud_make_batch). */
    assert_int_equal(stored, RACE_DEVICES * RACE_SEQS * 5);
    assert_int_equal(count(f, "SELECT sum(n_samples) FROM batches"), stored);
    assert_int_equal(count(f, "SELECT count(*) FROM (SELECT metric_id, seq, mono_ms"
                              " FROM samples GROUP BY 1, 2, 3 HAVING count(*) > 1) d"), 0);
    /* Counters merged from all instances, every ack at the end. */
    assert_int_equal(count(f, "SELECT sum(samples_stored) FROM devices"), stored);
    assert_int_equal(count(f, "SELECT min(acked_through) FROM streams"), RACE_SEQS);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(instances_starting_together_make_the_schema_once),
        cmocka_unit_test(stores_that_are_not_ours_are_refused),
        cmocka_unit_test(schema_1_is_migrated),
        cmocka_unit_test_setup_teardown(days_get_partitions_and_retention_drops_them_whole,
                                        cloud_fixture_setup, cloud_fixture_teardown),
        cmocka_unit_test_setup_teardown(a_day_made_while_another_writes_it_keeps_its_rows,
                                        cloud_fixture_setup, cloud_fixture_teardown),
        cmocka_unit_test_setup_teardown(instances_ingesting_the_same_batches_store_each_once,
                                        cloud_fixture_setup, cloud_fixture_teardown),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
