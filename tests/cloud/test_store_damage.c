/*
 * A damaged store is found when the aggregator opens it, not batch by
 * batch afterwards: 8 KiB of garbage in the middle of the file and the
 * open for writing fails with a message that names the file, says it is
 * damaged and what to do, and leaves the file where it is.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cloud_test.h"
#include "edgetel/log.h"
#include "edgetel/store.h"
#include "edgetel/store_open.h"

/* A store of a few hundred pages: 40 batches of 200 samples. */
static void fill(struct cloud_fixture *f)
{
    for (uint64_t seq = 1; seq <= 40; seq++) {
        struct et_ingest_reply r;

        assert_int_equal(cloud_ingest_batch(f->ig, "pi-1", seq, 1, 200, &r), 0);
        assert_int_equal(r.kind, ET_INGEST_STORED);
    }
}

/* Write 8 KiB of garbage into the middle of the file. */
static void damage(const char *path)
{
    uint8_t garbage[8192];
    struct stat sb;
    int fd = open(path, O_WRONLY);

    assert_true(fd >= 0);
    assert_int_equal(fstat(fd, &sb), 0);
    assert_true(sb.st_size > 3 * (off_t)sizeof(garbage));
    for (size_t i = 0; i < sizeof(garbage); i++)
        garbage[i] = (uint8_t)(i * 131 + 7);
    assert_int_equal(pwrite(fd, garbage, sizeof(garbage), sb.st_size / 2),
                     (ssize_t)sizeof(garbage));
    close(fd);
}

static void test_damaged_store_refused_at_open(void **state)
{
    struct cloud_fixture *f = cloud_fixture_create("damage");
    struct et_store *s = NULL;
    char err[1024] = "";
    struct stat sb;
    int rc;

    fill(f);
    /* Close it cleanly (checkpointed into the main file), then damage it. */
    et_ingest_destroy(f->ig);
    et_store_close(f->store);
    f->ig = NULL;
    f->store = NULL;
    damage(f->path);

    rc = et_store_open(&s, "sqlite", f->path, 0, err, sizeof(err));
    assert_int_equal(rc, -EUCLEAN);
    assert_null(s);
    if (!strstr(err, f->path) || !strstr(err, "is damaged") || !strstr(err, "move") ||
        !strstr(err, "backup") || !strstr(err, "never deletes"))
        fail_msg("the reason does not name the file, the damage and what to do: %s", err);
    /* Nothing was removed or renamed. */
    assert_int_equal(stat(f->path, &sb), 0);

    /* Opened again for writing: refused again, the same way. */
    err[0] = '\0';
    assert_int_equal(et_store_open(&s, "sqlite", f->path, 0, err, sizeof(err)), -EUCLEAN);
    assert_non_null(strstr(err, "is damaged"));
    cloud_fixture_destroy(f);
}

static void test_healthy_store_opens(void **state)
{
    struct cloud_fixture *f = cloud_fixture_create("healthy");

    fill(f);
    cloud_fixture_reopen(f);    /* asserts the open succeeds */
    assert_int_equal(cloud_stored(f->r, "pi-1", "sim.counter"), 40 * 200);
    cloud_fixture_destroy(f);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_damaged_store_refused_at_open),
        cmocka_unit_test(test_healthy_store_opens),
    };

    et_log_init("test_store_damage", ET_LOG_ERROR);
    return cmocka_run_group_tests(tests, NULL, NULL);
}
