/*
 * edgetelctl store copy's library (et_store_copy): a SQLite store into
 * PostgreSQL, stopped dead half way (the process killed) and run again:
 * every batch and sample once, the same answers from both stores; then
 * back into a new SQLite store; and into a destination that already holds
 * some of the batches (an aggregator stored them): those are not stored twice.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "cloud_test.h"
#include "edgetel/store_copy.h"
#include "edgetel/store_open.h"
#include "pg_test.h"

#define DEVICES 4
#define BATCHES 300

struct stores {
    char dir[64];
    char lite[128], back[128];
    char pg[512], schema[64];
};

/* DEVICES x BATCHES batches through ingest into a new SQLite store. */
static void fill(const char *path, uint64_t first, uint64_t last)
{
    struct et_store *s;
    struct et_ingest *ig;
    struct et_ingest_reply r;
    char err[256], device[16];

    assert_int_equal(et_store_open(&s, NULL, path, 0, err, sizeof(err)), 0);
    assert_int_equal(et_ingest_create(&ig, et_store_writer(s), CLOUD_ROOT), 0);
    assert_int_equal(et_ingest_group_begin(ig), 0);
    for (uint64_t seq = first; seq <= last; seq++) {
        for (int d = 0; d < DEVICES; d++) {
            snprintf(device, sizeof(device), "pi-%d", d);
            assert_int_equal(cloud_ingest_batch(ig, device, seq, 1, 3, &r), 0);
            assert_int_equal(r.kind, ET_INGEST_STORED);
        }
    }
    assert_int_equal(et_ingest_group_end(ig, NULL, NULL, NULL), 0);
    et_ingest_destroy(ig);
    et_store_close(s);
}

static void stopper(void *ctx, const struct et_store_copy_progress *p)
{
    (void)ctx;
    if (p->batches_seen >= DEVICES * BATCHES / 2)
        _exit(0);   /* as a kill: nothing closed, the open transaction lost */
}

static void record(void *ctx, const struct et_store_copy_progress *p)
{
    *(struct et_store_copy_progress *)ctx = *p;
}

/* Copy from_path into to_path; progress stopper, or record into *p. */
static int copy(const char *from_path, const char *to_path, struct et_store_copy_progress *p)
{
    struct et_store *from, *to;
    char err[512];
    int ret;

    assert_int_equal(et_store_open(&from, NULL, from_path, ET_STORE_READONLY, err,
                                   sizeof(err)), 0);
    assert_int_equal(et_store_open(&to, NULL, to_path, 0, err, sizeof(err)), 0);
    ret = et_store_copy(from, to, p ? record : stopper, p, err, sizeof(err));
    if (ret < 0)
        print_error("copy: %s\n", err);
    et_store_close(to);
    et_store_close(from);
    return ret;
}

/* What a store answers for device 0's counter and the fleet. */
static void assert_same(const char *a_path, const char *b_path)
{
    struct et_store *a, *b;
    char err[256];

    assert_int_equal(et_store_open(&a, NULL, a_path, ET_STORE_READONLY, err, sizeof(err)), 0);
    assert_int_equal(et_store_open(&b, NULL, b_path, ET_STORE_READONLY, err, sizeof(err)), 0);
    for (int d = 0; d < DEVICES; d++) {
        char device[16];
        struct et_store_device da, db;

        snprintf(device, sizeof(device), "pi-%d", d);
        assert_int_equal(cloud_stored(et_store_reader(a), device, "sim.counter"),
                         cloud_stored(et_store_reader(b), device, "sim.counter"));
        assert_int_equal(cloud_stored(et_store_reader(a), device, "sim.sine"),
                         cloud_stored(et_store_reader(b), device, "sim.sine"));
        da = cloud_device(et_store_reader(a), device);
        db = cloud_device(et_store_reader(b), device);
        assert_int_equal(da.batches_stored, db.batches_stored);
        assert_int_equal(da.samples_stored, db.samples_stored);
        assert_int_equal(da.acked_through, db.acked_through);
        assert_int_equal(da.last_seen_ms, db.last_seen_ms);
    }
    et_store_close(a);
    et_store_close(b);
}

static void a_copy_stopped_dead_goes_on_and_stores_nothing_twice(void **state)
{
    struct stores *s = *state;
    struct et_store_copy_progress p = { .phase = NULL };
    pid_t pid;
    int status;

    fill(s->lite, 1, BATCHES);
    pid = fork();
    assert_true(pid >= 0);
    if (pid == 0)
        _exit(copy(s->lite, s->pg, NULL) == 0 ? 3 : 4);   /* 0: stopped half way */
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFEXITED(status));
    assert_int_equal(WEXITSTATUS(status), 0);
    assert_true(et_pg_test_int(s->pg, "SELECT count(*) FROM batches") > 0);
    assert_true(et_pg_test_int(s->pg, "SELECT count(*) FROM batches") < DEVICES * BATCHES);

    /* Again: it goes on. */
    assert_int_equal(copy(s->lite, s->pg, &p), 0);
    assert_string_equal(p.phase, "done");
    assert_true(p.batches_skipped >= DEVICES * BATCHES / 2 - 200);
    assert_int_equal(p.batches_copied + p.batches_skipped, DEVICES * BATCHES);
    assert_int_equal(et_pg_test_int(s->pg, "SELECT count(*) FROM batches"), DEVICES * BATCHES);
    assert_int_equal(et_pg_test_int(s->pg, "SELECT count(*) FROM (SELECT metric_id, seq,"
                                    " mono_ms FROM samples GROUP BY 1, 2, 3"
                                    " HAVING count(*) > 1) d"), 0);
    assert_same(s->lite, s->pg);

    /* And back, into a new SQLite store. */
    assert_int_equal(copy(s->pg, s->back, &p), 0);
    assert_int_equal(p.batches_copied, DEVICES * BATCHES);
    assert_same(s->pg, s->back);
}

static void batches_the_destination_has_are_not_copied(void **state)
{
    struct stores *s = *state;
    struct et_store_copy_progress p = { .phase = NULL };

    /* An aggregator stored seqs 1..100 in PostgreSQL; the site's SQLite has 1..200. */
    fill(s->pg, 1, 100);
    fill(s->lite, 1, 200);
    assert_int_equal(copy(s->lite, s->pg, &p), 0);
    assert_int_equal(p.batches_skipped, DEVICES * 100);
    assert_int_equal(p.batches_copied, DEVICES * 100);
    assert_same(s->lite, s->pg);
    assert_int_equal(et_pg_test_int(s->pg, "SELECT count(*) FROM samples"),
                     DEVICES * 200 * 5);
}

static int setup(void **state)
{
    struct stores *s = calloc(1, sizeof(*s));

    assert_non_null(s);
    snprintf(s->dir, sizeof(s->dir), "/tmp/et-copy-XXXXXX");
    assert_non_null(mkdtemp(s->dir));
    snprintf(s->lite, sizeof(s->lite), "%s/site.db", s->dir);
    snprintf(s->back, sizeof(s->back), "%s/back.db", s->dir);
    et_pg_test_schema(s->pg, sizeof(s->pg), s->schema, sizeof(s->schema));
    *state = s;
    return 0;
}

static int teardown(void **state)
{
    struct stores *s = *state;

    cloud_remove_db(s->lite);
    cloud_remove_db(s->back);
    rmdir(s->dir);
    et_pg_test_drop(s->schema);
    free(s);
    return 0;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(a_copy_stopped_dead_goes_on_and_stores_nothing_twice,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(batches_the_destination_has_are_not_copied, setup,
                                        teardown),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
