/*
 * The SQLite store on its own (cloud/store/): schema creation, versions and
 * migrations, read-only opening, two writers on one new file, and the
 * reader's queries edgetelctl relies on. The writer's calls are
 * test_store_writer.c's.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <sqlite3.h>

#include "cloud_test.h"
#include "edgetel/ingest.h"
#include "edgetel/log.h"
#include "edgetel/store.h"
#include "edgetel/store_open.h"

#define remove_db cloud_remove_db
#define setup cloud_fixture_setup
#define teardown cloud_fixture_teardown
#define put_batch(store, ...) cloud_put_batch(et_store_writer(store), __VA_ARGS__)

static void exec_sql(const char *path, const char *sql)
{
    sqlite3 *db;

    assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
    assert_int_equal(sqlite3_exec(db, sql, NULL, NULL, NULL), SQLITE_OK);
    sqlite3_close(db);
}

static void test_open_errors(void **state)
{
    struct cloud_fixture *f = *state;
    struct et_store *s;
    char err[256], path[192];

    /* edgetelctl on a path that is not there: no file gets created. */
    snprintf(path, sizeof(path), "%s/missing.db", f->dir);
    assert_int_equal(et_store_open(&s, "sqlite", path, ET_STORE_READONLY, err, sizeof(err)),
                     -ENOENT);
    assert_null(s);
    assert_string_equal(err, "no such file");
    assert_int_equal(access(path, F_OK), -1);

    assert_int_equal(et_store_open(&s, "postgres", path, 0, err, sizeof(err)),
                     -EPROTONOSUPPORT);
    assert_non_null(strstr(err, "postgres"));

    /* Somebody else's database is left alone. */
    snprintf(path, sizeof(path), "%s/other.db", f->dir);
    exec_sql(path, "CREATE TABLE t (x)");
    assert_int_equal(et_store_open(&s, "sqlite", path, 0, err, sizeof(err)), -EPROTO);
    assert_non_null(strstr(err, "not an edgetel store"));
    remove_db(path);

    /* A store from a newer edgetel. */
    snprintf(path, sizeof(path), "%s/newer.db", f->dir);
    exec_sql(path, "PRAGMA user_version = 99");
    assert_int_equal(et_store_open(&s, "sqlite", path, 0, err, sizeof(err)), -EPROTO);
    assert_non_null(strstr(err, "newer"));
    remove_db(path);

    /* Not a database at all. */
    snprintf(path, sizeof(path), "%s/text.db", f->dir);
    FILE *fp = fopen(path, "w");

    assert_non_null(fp);
    fputs("this is not a database, just a file that someone pointed the store at\n", fp);
    fclose(fp);
    assert_int_equal(et_store_open(&s, "sqlite", path, ET_STORE_READONLY, err, sizeof(err)),
                     -EPROTO);
    assert_int_equal(et_store_open(&s, "sqlite", path, 0, err, sizeof(err)), -EPROTO);
    remove_db(path);

    /* A directory that does not exist. */
    snprintf(path, sizeof(path), "%s/no/such/dir/agg.db", f->dir);
    assert_true(et_store_open(&s, "sqlite", path, 0, err, sizeof(err)) < 0);
    assert_non_null(strstr(err, "directory"));
}

static int batches_cb(void *ctx, const struct et_store_device *d)
{
    *(uint64_t *)ctx = d->batches_stored;
    return 0;
}

/* How many batches of device the reader sees; UINT64_MAX without the device. */
static uint64_t batches_stored(struct et_store_reader *r, const char *device)
{
    uint64_t n = UINT64_MAX;

    assert_int_equal(et_store_devices(r, device, batches_cb, &n), 0);
    return n;
}

static void test_reopen_keeps_data(void **state)
{
    struct cloud_fixture *f = *state;
    struct et_store *ro;
    char err[256];
    bool seen = false;

    put_batch(f->store, "dev1", 1, "m", "1", 1000, 3);
    cloud_fixture_reopen(f);
    assert_int_equal(et_store_batch_seen(f->w, "dev1", "", 1, &seen), 0);
    assert_true(seen);

    /* A reader beside the writer sees committed data, and cannot write. */
    assert_int_equal(et_store_open(&ro, "sqlite", f->path, ET_STORE_READONLY, err,
                                   sizeof(err)), 0);
    assert_null(et_store_writer(ro));
    assert_int_equal(batches_stored(et_store_reader(ro), "dev1"), 1);
    put_batch(f->store, "dev1", 2, "m", "1", 5000, 1);
    assert_int_equal(batches_stored(et_store_reader(ro), "dev1"), 2);
    et_store_close(ro);
}

struct metric_rows {
    char names[8][32];
    char units[8][16];
    uint64_t samples[8];
    int64_t first[8], last[8];
    size_t n;
};

static int metric_cb(void *ctx, const struct et_store_metric *m)
{
    struct metric_rows *mr = ctx;

    assert_true(mr->n < 8);
    snprintf(mr->names[mr->n], sizeof(mr->names[0]), "%s", m->name);
    snprintf(mr->units[mr->n], sizeof(mr->units[0]), "%s", m->unit);
    mr->samples[mr->n] = m->samples;
    mr->first[mr->n] = m->first_ts_ms;
    mr->last[mr->n] = m->last_ts_ms;
    mr->n++;
    return 0;
}

static void test_metrics_and_units(void **state)
{
    struct cloud_fixture *f = *state;
    struct metric_rows mr = { .n = 0 };
    int64_t id1, id2;

    put_batch(f->store, "dev1", 1, "temp", "Cel", 10000, 3);
    put_batch(f->store, "dev1", 2, "cpu", "%", 20000, 2);
    put_batch(f->store, "dev2", 1, "temp", "Cel", 10000, 1);

    /* Same (device, name): same id; a changed unit is kept from now on. */
    assert_int_equal(et_store_begin(f->w), 0);
    assert_int_equal(et_store_metric_id(f->w, "dev1", "temp", "Cel", &id1), 0);
    assert_int_equal(et_store_metric_id(f->w, "dev1", "temp", "K", &id2), 0);
    assert_int_equal(id1, id2);
    assert_int_equal(et_store_metric_id(f->w, "dev2", "temp", "Cel", &id2), 0);
    assert_int_not_equal(id1, id2);
    assert_int_equal(et_store_commit(f->w), 0);

    assert_int_equal(et_store_metrics(f->r, "dev1", metric_cb, &mr), 0);
    assert_int_equal(mr.n, 2);
    assert_string_equal(mr.names[0], "cpu");
    assert_string_equal(mr.units[0], "%");
    assert_int_equal(mr.samples[0], 2);
    assert_string_equal(mr.names[1], "temp");
    assert_string_equal(mr.units[1], "K");
    assert_int_equal(mr.samples[1], 3);
    assert_int_equal(mr.first[1], 10000);
    assert_int_equal(mr.last[1], 12000);
}

struct sample_ids {
    int64_t ids[16];
    int64_t ts[16];
    char devices[16][16];
    size_t n;
};

static int sample_cb(void *ctx, const struct et_store_sample *s)
{
    struct sample_ids *si = ctx;

    assert_true(si->n < 16);
    si->ids[si->n] = s->id;
    si->ts[si->n] = s->ts_ms;
    snprintf(si->devices[si->n], sizeof(si->devices[0]), "%s", s->device);
    si->n++;
    return 0;
}

static int stop_after_two(void *ctx, const struct et_store_sample *s)
{
    int *n = ctx;

    return ++*n == 2 ? 42 : 0;
}

static void test_query_bounds_and_tail(void **state)
{
    struct cloud_fixture *f = *state;
    struct et_store_query q = {
        .device = "dev1", .metric = "temp", .since_ms = INT64_MIN, .until_ms = INT64_MAX,
    };
    struct sample_ids si = { .n = 0 };
    int64_t last = -1;
    int n = 0;

    assert_int_equal(et_store_last_sample_id(f->r, &last), 0);
    assert_int_equal(last, 0);

    /* Stored out of time order: the query still returns time order. */
    put_batch(f->store, "dev1", 2, "temp", "Cel", 20000, 2);   /* 20000, 21000 */
    put_batch(f->store, "dev1", 1, "temp", "Cel", 10000, 2);   /* 10000, 11000 */
    put_batch(f->store, "dev2", 1, "temp", "Cel", 15000, 1);

    assert_int_equal(et_store_query(f->r, &q, sample_cb, &si), 0);
    assert_int_equal(si.n, 4);
    assert_int_equal(si.ts[0], 10000);
    assert_int_equal(si.ts[3], 21000);

    /* since inclusive, until exclusive. */
    q.since_ms = 11000;
    q.until_ms = 21000;
    si.n = 0;
    assert_int_equal(et_store_query(f->r, &q, sample_cb, &si), 0);
    assert_int_equal(si.n, 2);
    assert_int_equal(si.ts[0], 11000);
    assert_int_equal(si.ts[1], 20000);

    /* A callback's non-zero value stops the query and comes back. */
    q.since_ms = INT64_MIN;
    q.until_ms = INT64_MAX;
    assert_int_equal(et_store_query(f->r, &q, stop_after_two, &n), 42);
    assert_int_equal(n, 2);
    /* ... and the statement is usable again. */
    si.n = 0;
    assert_int_equal(et_store_query(f->r, &q, sample_cb, &si), 0);
    assert_int_equal(si.n, 4);

    /* Tail: ids rise in the order rows landed, across devices. */
    si.n = 0;
    assert_int_equal(et_store_samples_after(f->r, 0, NULL, 100, sample_cb, &si), 0);
    assert_int_equal(si.n, 5);
    for (size_t i = 1; i < si.n; i++)
        assert_true(si.ids[i] > si.ids[i - 1]);
    assert_int_equal(si.ts[0], 20000);
    assert_string_equal(si.devices[4], "dev2");
    assert_int_equal(et_store_last_sample_id(f->r, &last), 0);
    assert_int_equal(last, si.ids[4]);

    si.n = 0;
    assert_int_equal(et_store_samples_after(f->r, 0, "dev2", 100, sample_cb, &si), 0);
    assert_int_equal(si.n, 1);
    si.n = 0;
    assert_int_equal(et_store_samples_after(f->r, 0, NULL, 2, sample_cb, &si), 0);
    assert_int_equal(si.n, 2);
    si.n = 0;
    assert_int_equal(et_store_samples_after(f->r, last, NULL, 100, sample_cb, &si), 0);
    assert_int_equal(si.n, 0);
}

static int count_devices(void *ctx, const struct et_store_device *d)
{
    (*(int *)ctx)++;
    return 0;
}

static void test_two_writers_create_together(void **state)
{
    struct cloud_fixture *f = *state;
    struct et_store *a, *b;
    char err[256], path[192];
    int n = 0;

    /* Two aggregators opening one new file: both succeed, one schema. */
    snprintf(path, sizeof(path), "%s/both.db", f->dir);
    assert_int_equal(et_store_open(&a, "sqlite", path, 0, err, sizeof(err)), 0);
    assert_int_equal(et_store_open(&b, "sqlite", path, 0, err, sizeof(err)), 0);
    put_batch(a, "dev1", 1, "m", "1", 1000, 1);
    put_batch(b, "dev2", 1, "m", "1", 1000, 1);
    assert_int_equal(et_store_devices(et_store_reader(a), NULL, count_devices, &n), 0);
    assert_int_equal(n, 2);
    et_store_close(a);
    et_store_close(b);
    remove_db(path);
}

/* The devices columns of schema version 1, which 2 and 3 kept and added to. */
#define DEVICES_V1_COLUMNS \
    "id TEXT PRIMARY KEY, online INTEGER NOT NULL DEFAULT 0," \
    " first_seen_ms INTEGER NOT NULL, last_seen_ms INTEGER NOT NULL," \
    " boot_id TEXT NOT NULL DEFAULT '', agent_version TEXT NOT NULL DEFAULT ''," \
    " acked_through INTEGER NOT NULL DEFAULT 0, samples_stored INTEGER NOT NULL DEFAULT 0," \
    " has_status INTEGER NOT NULL DEFAULT 0, outbox_batches INTEGER NOT NULL DEFAULT 0," \
    " dropped_samples INTEGER NOT NULL DEFAULT 0, clock_synced INTEGER NOT NULL DEFAULT 0," \
    " reason TEXT NOT NULL DEFAULT '', status_wall_ms INTEGER NOT NULL DEFAULT 0"

/* The samples table of schema version 1, unchanged since. */
#define SAMPLES_V1_TABLE \
    "CREATE TABLE samples (id INTEGER PRIMARY KEY, metric_id INTEGER NOT NULL" \
    " REFERENCES metrics(id), ts_ms INTEGER NOT NULL, mono_ms INTEGER NOT NULL," \
    " vtype INTEGER NOT NULL, v_f64 REAL, v_i64 INTEGER, v_bool INTEGER, v_str TEXT," \
    " time_quality INTEGER NOT NULL, seq INTEGER NOT NULL);" \
    "CREATE INDEX samples_metric_ts ON samples (metric_id, ts_ms);"

/* Schema version 1 as edgetel 0.1.0 first wrote it, with one stored batch. */
static const char schema_v1[] =
    "CREATE TABLE devices (" DEVICES_V1_COLUMNS ");"
    "CREATE TABLE batches (device TEXT NOT NULL, seq INTEGER NOT NULL,"
    " received_ms INTEGER NOT NULL, n_samples INTEGER NOT NULL, historical INTEGER NOT NULL,"
    " boot_id TEXT NOT NULL, time_quality INTEGER NOT NULL, PRIMARY KEY (device, seq));"
    "CREATE TABLE metrics (id INTEGER PRIMARY KEY, device TEXT NOT NULL, name TEXT NOT NULL,"
    " unit TEXT NOT NULL, UNIQUE (device, name));"
    SAMPLES_V1_TABLE
    "INSERT INTO devices (id, first_seen_ms, last_seen_ms, acked_through, samples_stored)"
    " VALUES ('old', 1000, 1000, 1, 1);"
    "INSERT INTO batches VALUES ('old', 1, 1000, 1, 0, '', 1);"
    "INSERT INTO metrics VALUES (1, 'old', 'm', '1');"
    "INSERT INTO samples VALUES (1, 1, 1000, 0, 1, NULL, 7, NULL, NULL, 1, 1);"
    "PRAGMA user_version = 1;";

static int user_version(const char *path)
{
    sqlite3 *db;
    sqlite3_stmt *st;
    int v = -1;

    assert_int_equal(sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_prepare_v2(db, "PRAGMA user_version", -1, &st, NULL), SQLITE_OK);
    if (sqlite3_step(st) == SQLITE_ROW)
        v = sqlite3_column_int(st, 0);
    sqlite3_finalize(st);
    sqlite3_close(db);
    return v;
}

static void test_migrate_v1(void **state)
{
    struct cloud_fixture *f = *state;
    struct et_store *s;
    struct sample_ids si = { .n = 0 };
    struct et_store_clock clk;
    char err[256], path[192];
    bool seen = false;

    snprintf(path, sizeof(path), "%s/v1.db", f->dir);
    exec_sql(path, schema_v1);

    /* edgetelctl reads a v1 store as it is, and leaves it so. */
    assert_int_equal(et_store_open(&s, "sqlite", path, ET_STORE_READONLY, err, sizeof(err)), 0);
    assert_int_equal(et_store_samples_after(et_store_reader(s), 0, NULL, 10, sample_cb, &si), 0);
    assert_int_equal(si.n, 1);
    et_store_close(s);
    assert_int_equal(user_version(path), 1);

    /* The aggregator migrates it and goes on with the data in it. */
    assert_int_equal(et_store_open(&s, "sqlite", path, 0, err, sizeof(err)), 0);
    assert_int_equal(user_version(path), CLOUD_SCHEMA_VERSION);
    assert_int_equal(et_store_batch_seen(et_store_writer(s), "old", "", 1, &seen), 0);
    assert_true(seen);
    assert_int_equal(et_store_clock_get(et_store_writer(s), "old", &clk), 0);
    assert_string_equal(clk.boot_id_hex, "");
    put_batch(s, "old", 2, "m", "1", 2000, 2);
    si.n = 0;
    assert_int_equal(et_store_samples_after(et_store_reader(s), 0, "old", 10, sample_cb, &si),
                     0);
    assert_int_equal(si.n, 3);
    et_store_close(s);

    /* Opening again finds nothing to do. */
    assert_int_equal(et_store_open(&s, "sqlite", path, 0, err, sizeof(err)), 0);
    et_store_close(s);
    assert_int_equal(user_version(path), CLOUD_SCHEMA_VERSION);
    remove_db(path);
}

/*
 * Schema version 3, the last without streams, as edgetel wrote it: two
 * devices, pi-1 with batches 1..500 acked through 500 (one sample each,
 * one still waiting for re-timing) and pi-2 with 1..7 acked through 7.
 */
static const char schema_v3[] =
    "CREATE TABLE devices (" DEVICES_V1_COLUMNS ","
    " clock_boot TEXT NOT NULL DEFAULT '', clock_wall_ms INTEGER NOT NULL DEFAULT 0,"
    " clock_mono_ms INTEGER NOT NULL DEFAULT 0);"
    "CREATE TABLE batches (device TEXT NOT NULL, seq INTEGER NOT NULL,"
    " received_ms INTEGER NOT NULL, n_samples INTEGER NOT NULL, historical INTEGER NOT NULL,"
    " boot_id TEXT NOT NULL, time_quality INTEGER NOT NULL,"
    " first_sample_id INTEGER NOT NULL DEFAULT 0, last_sample_id INTEGER NOT NULL DEFAULT 0,"
    " unsynced INTEGER NOT NULL DEFAULT 0, PRIMARY KEY (device, seq));"
    "CREATE INDEX batches_unsynced ON batches (device, boot_id) WHERE unsynced > 0;"
    "CREATE TABLE metrics (id INTEGER PRIMARY KEY, device TEXT NOT NULL, name TEXT NOT NULL,"
    " unit TEXT NOT NULL, tags TEXT NOT NULL DEFAULT '', UNIQUE (device, name));"
    SAMPLES_V1_TABLE
    "INSERT INTO devices (id, first_seen_ms, last_seen_ms, acked_through, samples_stored)"
    " VALUES ('pi-1', 1000, 600000, 500, 500), ('pi-2', 2000, 9000, 7, 7);"
    "INSERT INTO metrics VALUES (1, 'pi-1', 'm', '1', ''), (2, 'pi-2', 'm', '1', 'room=a');"
    "WITH RECURSIVE n(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM n WHERE x < 500)"
    " INSERT INTO batches SELECT 'pi-1', x, 1000 + x, 1, 0, 'b0', 1, x, x, x = 500 FROM n;"
    "WITH RECURSIVE n(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM n WHERE x < 500)"
    " INSERT INTO samples SELECT x, 1, 1000 * x, x, 1, NULL, x, NULL, NULL,"
    "  CASE WHEN x = 500 THEN 2 ELSE 1 END, x FROM n;"
    "WITH RECURSIVE n(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM n WHERE x < 7)"
    " INSERT INTO batches SELECT 'pi-2', x, 2000 + x, 1, 0, '', 1, 500 + x, 500 + x, 0 FROM n;"
    "WITH RECURSIVE n(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM n WHERE x < 7)"
    " INSERT INTO samples SELECT 500 + x, 2, 1000 * x, x, 1, NULL, x, NULL, NULL, 1, x FROM n;"
    "PRAGMA user_version = 3;";

static int count_unsynced(void *ctx, const struct et_store_sample *smp)
{
    (*(int *)ctx)++;
    return 0;
}

static void test_migrate_v3_keeps_every_row(void **state)
{
    struct cloud_fixture *f = *state;
    struct et_store_device d;
    struct et_ingest_reply r;
    struct et_ingest *ig;
    struct et_store *s;
    char err[256], path[192];
    uint64_t ack = 0;
    bool seen;
    int unsynced = 0, n = 0;

    snprintf(path, sizeof(path), "%s/v3.db", f->dir);
    exec_sql(path, schema_v3);

    /* edgetelctl reads a v3 store as it is: one ack per device, no stream. */
    assert_int_equal(et_store_open(&s, "sqlite", path, ET_STORE_READONLY, err, sizeof(err)), 0);
    d = cloud_device(et_store_reader(s), "pi-1");
    assert_int_equal(d.acked_through, 500);
    assert_int_equal(d.batches_stored, 500);
    assert_false(d.has_stream);
    et_store_close(s);
    assert_int_equal(user_version(path), 3);

    /* The aggregator migrates it: every row is kept, in the legacy stream. */
    assert_int_equal(et_store_open(&s, "sqlite", path, 0, err, sizeof(err)), 0);
    assert_int_equal(user_version(path), CLOUD_SCHEMA_VERSION);
    assert_int_equal(et_store_devices(et_store_reader(s), NULL, count_devices, &n), 0);
    assert_int_equal(n, 2);
    d = cloud_device(et_store_reader(s), "pi-1");
    assert_int_equal(d.batches_stored, 500);
    assert_int_equal(d.acked_through, 500);
    assert_true(d.has_stream);
    assert_string_equal(d.stream_hex, "");
    assert_int_equal(d.stream_started_ms, 1000);   /* the legacy stream began with the device */
    d = cloud_device(et_store_reader(s), "pi-2");
    assert_int_equal(d.batches_stored, 7);
    assert_int_equal(d.acked_through, 7);
    assert_int_equal(cloud_stored(et_store_reader(s), "pi-1", "m"), 500);
    assert_int_equal(cloud_stored(et_store_reader(s), "pi-2", "m"), 7);
    for (uint64_t seq = 1; seq <= 500; seq++) {
        assert_int_equal(et_store_batch_seen(et_store_writer(s), "pi-1", "", seq, &seen), 0);
        assert_true(seen);
    }
    assert_int_equal(et_store_ack_get(et_store_writer(s), "pi-2", "", &ack), 0);
    assert_int_equal(ack, 7);
    /* The batch waiting for re-timing still waits (the partial index came along). */
    assert_int_equal(et_store_unsynced_samples(et_store_writer(s), "pi-1", "b0", count_unsynced,
                                               &unsynced), 0);
    assert_int_equal(unsynced, 1);

    /* Ingest goes on: the old agent's repeats dedupe against the old rows,
     * its next seq is stored; a re-flashed pi-1 starts a stream of its own. */
    assert_int_equal(et_ingest_create(&ig, et_store_writer(s), CLOUD_ROOT), 0);
    assert_int_equal(cloud_ingest_batch_in(ig, "pi-1", NULL, 500, 1, 1, CLOUD_NOW, &r), 0);
    assert_int_equal(r.kind, ET_INGEST_DUPLICATE);
    cloud_assert_ack_in(&r, "pi-1", NULL, 500, NULL, 0);
    assert_int_equal(cloud_ingest_batch_in(ig, "pi-1", NULL, 501, 1, 1, CLOUD_NOW, &r), 0);
    assert_int_equal(r.kind, ET_INGEST_STORED);
    cloud_assert_ack_in(&r, "pi-1", NULL, 501, NULL, 0);
    assert_int_equal(cloud_ingest_batch_in(ig, "pi-1", cloud_stream_a, 1, 1, 1, CLOUD_NOW, &r),
                     0);
    assert_int_equal(r.kind, ET_INGEST_STORED);
    cloud_assert_ack_in(&r, "pi-1", cloud_stream_a, 1, NULL, 0);
    et_ingest_destroy(ig);
    et_store_close(s);

    /* Opening again finds nothing to do. */
    assert_int_equal(et_store_open(&s, "sqlite", path, 0, err, sizeof(err)), 0);
    et_store_close(s);
    assert_int_equal(user_version(path), CLOUD_SCHEMA_VERSION);
    remove_db(path);
}

static int count_dict_entries(void *ctx, const struct et_store_dict_entry *e)
{
    (void)e;
    (*(int *)ctx)++;
    return 0;
}

/* A schema 6 store (the quarantine, no dictionaries) gains the
 * dictionaries table and keeps its rows. */
static void test_migrate_v6(void **state)
{
    struct cloud_fixture *f = *state;
    const struct et_store_dict_entry e = { .idx = 0, .metric_id = 1, .type = 1, .scale = 1 };
    struct et_store *s;
    char err[256], path[192];
    int n = 0;

    snprintf(path, sizeof(path), "%s/v6.db", f->dir);
    assert_int_equal(et_store_open(&s, "sqlite", path, 0, err, sizeof(err)), 0);
    put_batch(s, "pi-1", 1, "m", "1", 1000, 1);
    et_store_close(s);
    exec_sql(path, "DROP TABLE dictionaries; PRAGMA user_version = 6;");

    /* edgetelctl reads it as it is. */
    assert_int_equal(et_store_open(&s, "sqlite", path, ET_STORE_READONLY, err, sizeof(err)), 0);
    assert_int_equal(cloud_stored(et_store_reader(s), "pi-1", "m"), 1);
    et_store_close(s);
    assert_int_equal(user_version(path), 6);

    assert_int_equal(et_store_open(&s, "sqlite", path, 0, err, sizeof(err)), 0);
    assert_int_equal(user_version(path), CLOUD_SCHEMA_VERSION);
    assert_int_equal(cloud_stored(et_store_reader(s), "pi-1", "m"), 1);
    assert_int_equal(et_store_begin(et_store_writer(s)), 0);
    assert_int_equal(et_store_dict_put(et_store_writer(s), "pi-1", "", 1, &e), 0);
    assert_int_equal(et_store_commit(et_store_writer(s)), 0);
    assert_int_equal(et_store_dict_get(et_store_writer(s), "pi-1", "", 1, count_dict_entries,
                                       &n), 0);
    assert_int_equal(n, 1);
    et_store_close(s);
    exec_sql(path, "SELECT count(*) FROM quarantine");
    remove_db(path);
}

static void test_hex(void **state)
{
    const uint8_t bytes[] = { 0x00, 0x0f, 0xa0, 0xff };
    char out[9];

    et_store_hex(bytes, sizeof(bytes), out);
    assert_string_equal(out, "000fa0ff");
    et_store_hex(bytes, 0, out);
    assert_string_equal(out, "");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_open_errors, setup, teardown),
        cmocka_unit_test_setup_teardown(test_reopen_keeps_data, setup, teardown),
        cmocka_unit_test_setup_teardown(test_metrics_and_units, setup, teardown),
        cmocka_unit_test_setup_teardown(test_query_bounds_and_tail, setup, teardown),
        cmocka_unit_test_setup_teardown(test_two_writers_create_together, setup, teardown),
        cmocka_unit_test_setup_teardown(test_migrate_v1, setup, teardown),
        cmocka_unit_test_setup_teardown(test_migrate_v3_keeps_every_row, setup, teardown),
        cmocka_unit_test_setup_teardown(test_migrate_v6, setup, teardown),
        cmocka_unit_test(test_hex),
    };

    et_log_init("test_store", ET_LOG_ERROR);
    return cmocka_run_group_tests(tests, NULL, NULL);
}
