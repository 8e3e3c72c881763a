/*
 * A damaged outbox is moved aside, byte for byte, and a fresh one started
 * without repeating a seq; failures that are not damage leave the file
 * alone. Each test works in a fresh temporary directory.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "outbox_fixture.h"

/* ---- damaged databases ------------------------------------------------------ */

static void test_garbage_file_moved_aside(void **state)
{
    struct fixture *fx = *state;
    struct et_outbox *ob = open_ok(fx);
    struct et_outbox_stats st;
    uint8_t junk[8192], back[8192];
    char aside[512] = "";
    DIR *d;
    struct dirent *de;
    int fd;

    for (int i = 0; i < 3; i++)
        assert_int_equal(append_n(ob, 100, 1), 0);
    et_outbox_close(ob);

    write_junk(fx->path, junk, sizeof(junk));

    ob = open_ok(fx);
    assert_int_equal(et_outbox_stats(ob, &st), 0);
    assert_int_equal(st.batches, 0);
    /* A fresh database, but seqs 1..3 are never handed out again. */
    assert_true(et_outbox_next_seq(ob) > 3);
    assert_int_equal(append_n(ob, 100, 1), 0);
    et_outbox_close(ob);

    /* The damaged file is kept, byte for byte, under PATH.corrupt-<secs>. */
    assert_int_equal(count_files(fx->dir, "outbox.db.corrupt-"), 1);
    d = opendir(fx->dir);
    assert_non_null(d);
    while ((de = readdir(d)) != NULL)
        if (strncmp(de->d_name, "outbox.db.corrupt-", 18) == 0)
            snprintf(aside, sizeof(aside), "%s/%s", fx->dir, de->d_name);
    closedir(d);
    fd = open(aside, O_RDONLY);
    assert_true(fd >= 0);
    assert_int_equal(read(fd, back, sizeof(back)), (ssize_t)sizeof(back));
    close(fd);
    assert_memory_equal(back, junk, sizeof(junk));
}

/* A valid header with a damaged page inside: caught by the check at open. */
static void test_damaged_page_moved_aside(void **state)
{
    struct fixture *fx = *state;
    struct et_outbox *ob = open_ok(fx);
    uint8_t junk[4096];
    uint64_t before;
    struct stat sb;

    for (int i = 0; i < 40; i++)
        assert_int_equal(append_n(ob, 1500, 1), 0);
    et_outbox_close(ob);
    assert_int_equal(stat(fx->path, &sb), 0);
    assert_true(sb.st_size >= 8 * 4096);

    /* Page 4 holds batch rows: a B-tree page full of noise. */
    for (size_t i = 0; i < sizeof(junk); i++)
        junk[i] = (uint8_t)(i * 13 + 5);
    write_file(fx->path, junk, sizeof(junk), 3 * 4096);

    ob = open_ok(fx);
    before = et_outbox_next_seq(ob);
    assert_true(before > 40);
    et_outbox_close(ob);
    assert_int_equal(count_files(fx->dir, "outbox.db.corrupt-"), 1);
}

/* Failures that are not damage leave the file alone. */
static void test_open_failure_not_damage(void **state)
{
    struct fixture *fx = *state;
    struct et_outbox *ob = NULL, *second = NULL;
    char path[256], err[256] = "";

    snprintf(path, sizeof(path), "%s/missing-dir/outbox.db", fx->dir);
    assert_true(et_outbox_open(&ob, path, err, sizeof(err)) < 0);
    assert_null(ob);
    assert_non_null(strstr(err, path));
    assert_int_equal(count_files(fx->dir, "outbox.db"), 0);

    /* A second handle on the same outbox would repeat seqs: refused. */
    ob = open_ok(fx);
    assert_int_equal(append_n(ob, 100, 1), 0);
    assert_int_equal(et_outbox_open(&second, fx->path, err, sizeof(err)), -EBUSY);
    assert_null(second);
    assert_non_null(strstr(err, "in use"));
    assert_int_equal(count_files(fx->dir, "outbox.db.corrupt"), 0);
    assert_int_equal(append_n(ob, 100, 1), 0);
    et_outbox_close(ob);
    ob = open_ok(fx);
    assert_int_equal(et_outbox_next_seq(ob), 3);
    et_outbox_close(ob);
}


/*
 * SQLite cannot open PATH (here: it is a directory): -EACCES, which is not
 * damage, so nothing is moved aside. (Before the shared SQLite helper this
 * was -EIO; the agent exits with the same status either way.)
 */
static void test_cannot_open_not_damage(void **state)
{
    struct fixture *fx = *state;
    struct et_outbox *ob = NULL;
    char err[256] = "";

    assert_int_equal(mkdir(fx->path, 0755), 0);
    assert_int_equal(et_outbox_open(&ob, fx->path, err, sizeof(err)), -EACCES);
    assert_null(ob);
    assert_non_null(strstr(err, "cannot open"));
    assert_int_equal(count_files(fx->dir, "outbox.db.corrupt"), 0);
    assert_int_equal(rmdir(fx->path), 0);
    ob = open_ok(fx);
    assert_int_equal(et_outbox_next_seq(ob), 1);
    et_outbox_close(ob);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_garbage_file_moved_aside, setup, teardown),
        cmocka_unit_test_setup_teardown(test_damaged_page_moved_aside, setup, teardown),
        cmocka_unit_test_setup_teardown(test_open_failure_not_damage, setup, teardown),
        cmocka_unit_test_setup_teardown(test_cannot_open_not_damage, setup, teardown),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
