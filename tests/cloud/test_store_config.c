/*
 * The SQLite store's config part (cloud/store/store_sqlite_config.c):
 * schema 4 migrated to 5 with every row kept; what a read-only store and
 * an old one answer; the calls' edges (a taken version, each target's
 * newest, a group's members and no one else, a device that is not there);
 * and what ingest records of a Status's config, a bad group list ignored
 * with the device named.
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

#include <sqlite3.h>

#include "edgetel/codec.h"
#include "edgetel/store_open.h"
#include "relay_fixture.h"

#define NOW CLOUD_NOW
#define DEV ET_CONFIG_TARGET_DEVICE
#define GROUP ET_CONFIG_TARGET_GROUP

/*
 * Schema version 4 exactly as edgetel wrote it, with a device pi-1 that has
 * a stream acked through 2, batches 1 and 2 and their samples.
 */
static const char schema_v4[] =
    "CREATE TABLE devices (id TEXT PRIMARY KEY, online INTEGER NOT NULL DEFAULT 0,"
    " first_seen_ms INTEGER NOT NULL, last_seen_ms INTEGER NOT NULL,"
    " boot_id TEXT NOT NULL DEFAULT '', agent_version TEXT NOT NULL DEFAULT '',"
    " samples_stored INTEGER NOT NULL DEFAULT 0, has_status INTEGER NOT NULL DEFAULT 0,"
    " outbox_batches INTEGER NOT NULL DEFAULT 0, dropped_samples INTEGER NOT NULL DEFAULT 0,"
    " clock_synced INTEGER NOT NULL DEFAULT 0, reason TEXT NOT NULL DEFAULT '',"
    " status_wall_ms INTEGER NOT NULL DEFAULT 0, clock_boot TEXT NOT NULL DEFAULT '',"
    " clock_wall_ms INTEGER NOT NULL DEFAULT 0, clock_mono_ms INTEGER NOT NULL DEFAULT 0,"
    " stream TEXT NOT NULL DEFAULT '');"
    "CREATE TABLE streams (device TEXT NOT NULL, stream TEXT NOT NULL,"
    " started_ms INTEGER NOT NULL, acked_through INTEGER NOT NULL DEFAULT 0,"
    " PRIMARY KEY (device, stream));"
    "CREATE TABLE batches (device TEXT NOT NULL, stream TEXT NOT NULL DEFAULT '',"
    " seq INTEGER NOT NULL, received_ms INTEGER NOT NULL, n_samples INTEGER NOT NULL,"
    " historical INTEGER NOT NULL, boot_id TEXT NOT NULL, time_quality INTEGER NOT NULL,"
    " first_sample_id INTEGER NOT NULL DEFAULT 0, last_sample_id INTEGER NOT NULL DEFAULT 0,"
    " unsynced INTEGER NOT NULL DEFAULT 0, PRIMARY KEY (device, stream, seq));"
    "CREATE INDEX batches_unsynced ON batches (device, boot_id) WHERE unsynced > 0;"
    "CREATE TABLE metrics (id INTEGER PRIMARY KEY, device TEXT NOT NULL, name TEXT NOT NULL,"
    " unit TEXT NOT NULL, tags TEXT NOT NULL DEFAULT '', UNIQUE (device, name));"
    "CREATE TABLE samples (id INTEGER PRIMARY KEY, metric_id INTEGER NOT NULL"
    " REFERENCES metrics(id), ts_ms INTEGER NOT NULL, mono_ms INTEGER NOT NULL,"
    " vtype INTEGER NOT NULL, v_f64 REAL, v_i64 INTEGER, v_bool INTEGER, v_str TEXT,"
    " time_quality INTEGER NOT NULL, seq INTEGER NOT NULL);"
    "CREATE INDEX samples_metric_ts ON samples (metric_id, ts_ms);"
    "INSERT INTO devices (id, first_seen_ms, last_seen_ms, samples_stored, has_status, online,"
    " agent_version, stream) VALUES ('pi-1', 1000, 9000, 2, 1, 1, '0.3.0',"
    " '" CLOUD_STREAM_A_HEX "');"
    "INSERT INTO streams VALUES ('pi-1', '" CLOUD_STREAM_A_HEX "', 1000, 2);"
    "INSERT INTO batches VALUES ('pi-1', '" CLOUD_STREAM_A_HEX "', 1, 1001, 1, 0, '', 1, 1, 1, 0),"
    " ('pi-1', '" CLOUD_STREAM_A_HEX "', 2, 1002, 1, 0, '', 1, 2, 2, 0);"
    "INSERT INTO metrics VALUES (1, 'pi-1', 'm', 'C', 'room=a');"
    "INSERT INTO samples VALUES (1, 1, 1000, 1, 1, 20.5, NULL, NULL, NULL, 1, 1),"
    " (2, 1, 2000, 2, 1, 21.5, NULL, NULL, NULL, 1, 2);"
    "PRAGMA user_version = 4;";

static void exec_sql(const char *path, const char *sql)
{
    sqlite3 *db;

    assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
    assert_int_equal(sqlite3_exec(db, sql, NULL, NULL, NULL), SQLITE_OK);
    sqlite3_close(db);
}

static int count_devices(void *ctx, const struct et_store_device_config *dc)
{
    (*(int *)ctx)++;
    return 0;
}

static int ignore_desired(void *ctx, const struct et_store_desired *d)
{
    return 0;
}

static void schema_4_migrates_with_every_row(void **state)
{
    struct relay_fixture *rf = *state;
    struct et_store *s;
    struct et_store_device d;
    struct et_store_stream st;
    struct et_ingest *ig;
    struct et_ingest_reply r;
    char err[256], path[192];
    uint64_t top = 1;
    bool seen = false;
    int n = 0;

    snprintf(path, sizeof(path), "%s/v4.db", rf->f->dir);
    exec_sql(path, schema_v4);

    /* edgetelctl reads a v4 store as it is; its config part is not there yet. */
    assert_int_equal(et_store_open(&s, "sqlite", path, ET_STORE_READONLY, err, sizeof(err)), 0);
    d = cloud_device(et_store_reader(s), "pi-1");
    assert_int_equal(d.acked_through, 2);
    assert_int_equal(et_store_desired_top(et_store_config(s), &top), -EPROTO);
    assert_int_equal(et_store_config_devices(et_store_config(s), NULL, count_devices, &n),
                     -EPROTO);
    et_store_close(s);

    /* The aggregator (or config push) migrates it: every row kept. */
    assert_int_equal(et_store_open(&s, "sqlite", path, 0, err, sizeof(err)), 0);
    d = cloud_device(et_store_reader(s), "pi-1");
    assert_true(d.online);
    assert_int_equal(d.samples_stored, 2);
    assert_int_equal(d.batches_stored, 2);
    assert_int_equal(d.acked_through, 2);
    assert_string_equal(d.stream_hex, CLOUD_STREAM_A_HEX);
    assert_int_equal(cloud_stored(et_store_reader(s), "pi-1", "m"), 2);
    assert_int_equal(et_store_batch_seen(et_store_writer(s), "pi-1", CLOUD_STREAM_A_HEX, 2,
                                         &seen), 0);
    assert_true(seen);
    assert_int_equal(et_store_stream_get(et_store_writer(s), "pi-1", CLOUD_STREAM_A_HEX, &st), 0);
    assert_int_equal(st.top_seq, 2);
    /* And the config part is there, empty. */
    assert_int_equal(et_store_desired_top(et_store_config(s), &top), 0);
    assert_int_equal(top, 0);
    {
        struct et_store_device_config dc = relay_device(et_store_config(s), "pi-1");

        assert_true(dc.known);
        assert_string_equal(dc.groups, "");
        assert_int_equal(dc.running_version, 0);
        assert_false(dc.has_report);
    }
    /* Ingest goes on, a Status's config recorded, a batch deduped. */
    assert_int_equal(et_ingest_create(&ig, et_store_writer(s), CLOUD_ROOT), 0);
    et_ingest_set_config(ig, et_store_config(s));
    assert_int_equal(cloud_ingest_batch(ig, "pi-1", 2, 1, 1, &r), 0);
    assert_int_equal(r.kind, ET_INGEST_DUPLICATE);
    et_ingest_destroy(ig);
    et_store_close(s);

    /* Opening again finds nothing to do. */
    assert_int_equal(et_store_open(&s, "sqlite", path, 0, err, sizeof(err)), 0);
    assert_int_equal(et_store_desired_get(et_store_config(s), 1, ignore_desired, NULL), -ENOENT);
    et_store_close(s);
    cloud_remove_db(path);
}

static void a_read_only_store_refuses_every_write(void **state)
{
    struct relay_fixture *rf = *state;
    struct et_store *s;
    struct et_store_config *sc;
    struct et_store_config_report rep = { .device = "pi-1", .version = 1, .result = 2 };
    char err[256];
    uint64_t top = 0;
    int n = 0;

    assert_int_equal(relay_push(rf, DEV, "pi-1"), 1);
    assert_int_equal(et_store_open(&s, rf->f->type, rf->f->path, ET_STORE_READONLY, err,
                                   sizeof(err)), 0);
    sc = et_store_config(s);
    assert_int_equal(et_store_desired_top(sc, &top), 0);
    assert_int_equal(top, 1);
    assert_int_equal(et_store_config_devices(sc, NULL, count_devices, &n), 0);
    assert_int_equal(n, 1);   /* named by a desired config, not heard from */
    assert_int_equal(et_store_desired_add(sc, &(struct et_store_desired){
        .version = 2, .kind = DEV, .target = "pi-1", .signed_config = (const uint8_t *)"x",
        .signed_len = 1 }), -EROFS);
    assert_int_equal(et_store_config_device_set(sc, "pi-1", "lab", 1), -EROFS);
    assert_int_equal(et_store_config_report_record(sc, &rep, 10, NULL, NULL), -EROFS);
    et_store_close(s);
}

struct desired_list {
    uint64_t versions[16];
    char targets[16][16];
    size_t n;
    size_t bytes;             /* signed_len of the last one */
};

static int list_desired(void *ctx, const struct et_store_desired *d)
{
    struct desired_list *l = ctx;

    l->bytes = d->signed_len;
    snprintf(l->targets[l->n], sizeof(l->targets[0]), "%s%s",
             d->kind == GROUP ? "group:" : "", d->target);
    l->versions[l->n++] = d->version;
    return 0;
}

static int list_members(void *ctx, const struct et_store_device_config *dc)
{
    struct desired_list *l = ctx;

    snprintf(l->targets[l->n++], sizeof(l->targets[0]), "%s", dc->device);
    return 0;
}

static void the_calls_at_their_edges(void **state)
{
    struct relay_fixture *rf = *state;
    struct desired_list l = { .n = 0 };
    static const char *const lab[] = { "lab" };
    static const char *const lab2[] = { "lab2", "alab" };

    assert_int_equal(relay_push(rf, GROUP, "lab"), 1);
    assert_int_equal(relay_push(rf, DEV, "pi-1"), 2);
    assert_int_equal(relay_push(rf, GROUP, "lab"), 3);
    /* A version is taken once: two pushes cannot both be v3. */
    assert_int_equal(et_store_desired_add(rf->sc, &(struct et_store_desired){
        .version = 3, .kind = DEV, .target = "pi-2", .signed_config = (const uint8_t *)"x",
        .signed_len = 1, .key_id = "" }), -EEXIST);
    /* Nor empty bytes, or more than a board takes. */
    assert_int_equal(et_store_desired_add(rf->sc, &(struct et_store_desired){
        .version = 4, .kind = DEV, .target = "pi-2", .signed_config = (const uint8_t *)"x",
        .signed_len = ET_STORE_CONFIG_SIGNED_MAX + 1 }), -EINVAL);

    /* Each target's newest above a version, in version order, no bytes. */
    assert_int_equal(et_store_desired_after(rf->sc, 0, list_desired, &l), 0);
    assert_int_equal(l.n, 2);
    assert_int_equal(l.versions[0], 2);
    assert_string_equal(l.targets[0], "pi-1");
    assert_int_equal(l.versions[1], 3);
    assert_string_equal(l.targets[1], "group:lab");
    assert_int_equal(l.bytes, 0);
    l.n = 0;
    assert_int_equal(et_store_desired_after(rf->sc, 2, list_desired, &l), 0);
    assert_int_equal(l.n, 1);
    l.n = 0;
    assert_int_equal(et_store_desired_get(rf->sc, 1, list_desired, &l), 0);
    assert_int_equal(l.bytes, strlen("signed config v1"));
    assert_int_equal(et_store_desired_latest(rf->sc, GROUP, "roof", list_desired, &l), -ENOENT);

    /* Members: a device that claims the group, not one whose group only
     * starts or ends like it, from a point on, a page at a time. */
    relay_status(rf, "pi-3", 0, lab, 1, NOW);
    relay_status(rf, "pi-1", 0, lab, 1, NOW);
    relay_status(rf, "pi-2", 0, lab2, 2, NOW);
    l.n = 0;
    assert_int_equal(et_store_config_group_members(rf->sc, "lab", "", 10, list_members, &l), 0);
    assert_int_equal(l.n, 2);
    assert_string_equal(l.targets[0], "pi-1");
    assert_string_equal(l.targets[1], "pi-3");
    l.n = 0;
    assert_int_equal(et_store_config_group_members(rf->sc, "lab", "pi-1", 1, list_members, &l),
                     0);
    assert_int_equal(l.n, 1);
    assert_string_equal(l.targets[0], "pi-3");
    assert_string_equal(relay_device(rf->sc, "pi-2").groups, "alab,lab2");

    /* A device the store never heard of. */
    assert_int_equal(et_store_config_device_set(rf->sc, "pi-9", "lab", 1), -ENOENT);
    assert_false(relay_device(rf->sc, "pi-9").known);
}

static void a_status_records_its_config_and_a_bad_group_list_is_ignored(void **state)
{
    struct relay_fixture *rf = *state;
    static const char *const good[] = { "roof", "lab", "roof" };
    static const char *const bad[] = { "lab", "no spaces" };
    const char *many[ET_STORE_CONFIG_GROUPS_MAX + 1];
    struct et_store_device_config dc;
    struct et_store_device d;
    char names[ET_STORE_CONFIG_GROUPS_MAX + 1][8];

    relay_status(rf, "pi-1", 4, good, 3, NOW);
    dc = relay_device(rf->sc, "pi-1");
    assert_string_equal(dc.groups, "lab,roof");   /* sorted, once each */
    assert_int_equal(dc.running_version, 4);

    /* A bad list: said with the device, ignored; the rest of the Status counts. */
    relay_status(rf, "pi-1", 5, bad, 2, NOW + 1000);
    assert_int_equal(log_capture_count("device pi-1: the groups in its status are ignored: "
                                       "group 2 \"no spaces\" is not a name", NULL), 1);
    dc = relay_device(rf->sc, "pi-1");
    assert_string_equal(dc.groups, "lab,roof");
    assert_int_equal(dc.running_version, 5);
    d = cloud_device(rf->f->r, "pi-1");
    assert_true(d.online);
    assert_int_equal(d.last_seen_ms, NOW + 1000);

    for (size_t i = 0; i < ET_STORE_CONFIG_GROUPS_MAX + 1; i++) {
        snprintf(names[i], sizeof(names[i]), "g%zu", i);
        many[i] = names[i];
    }
    relay_status(rf, "pi-1", 5, many, ET_STORE_CONFIG_GROUPS_MAX + 1, NOW + 2000);
    assert_int_equal(log_capture_count("device pi-1: the groups in its status are ignored: 33 "
                                       "groups, at most 32", NULL), 1);
    /* 32 is the most: g0..g31, sorted as text, 117 characters. */
    relay_status(rf, "pi-1", 5, many, ET_STORE_CONFIG_GROUPS_MAX, NOW + 3000);
    dc = relay_device(rf->sc, "pi-1");
    assert_int_equal(strlen(dc.groups), 10 * 2 + 22 * 3 + 31);
    assert_int_equal(strncmp(dc.groups, "g0,g1,g10,g11,", 14), 0);

    /* An empty list: in no group any more. */
    relay_status(rf, "pi-1", 5, NULL, 0, NOW + 4000);
    assert_string_equal(relay_device(rf->sc, "pi-1").groups, "");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(schema_4_migrates_with_every_row, relay_fixture_setup,
                                        relay_fixture_teardown),
        cmocka_unit_test_setup_teardown(a_read_only_store_refuses_every_write,
                                        relay_fixture_setup, relay_fixture_teardown),
        cmocka_unit_test_setup_teardown(the_calls_at_their_edges, relay_fixture_setup,
                                        relay_fixture_teardown),
        cmocka_unit_test_setup_teardown(
            a_status_records_its_config_and_a_bad_group_list_is_ignored, relay_fixture_setup,
            relay_fixture_teardown),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
