/*
 * The stream's metric dictionary on the board (agent/src/dictionary.c): it
 * outlives a restart with its id and indexes, a file of another stream or
 * a damaged one starts afresh (and a new dictionary never reuses an id:
 * it takes the seq of its first batch), a line cut short by a crash is cut
 * off, and a dictionary that has grown past its bound is begun again only
 * once no batch of the one before it is left.
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

#include "../../agent/src/dictionary.h"

struct fx {
    char dir[64];
    char outbox[96];
    char dict[112];
};

static const uint8_t stream_a[ET_STREAM_ID_LEN] = { 1, 2, 3, 4, 5, 6, 7, 8,
                                                    9, 10, 11, 12, 13, 14, 15, 16 };
static const uint8_t stream_b[ET_STREAM_ID_LEN] = { 16, 15, 14, 13, 12, 11, 10, 9,
                                                    8, 7, 6, 5, 4, 3, 2, 1 };

static int setup(void **state)
{
    struct fx *f = calloc(1, sizeof(*f));

    snprintf(f->dir, sizeof(f->dir), "/tmp/et-dict-XXXXXX");
    assert_non_null(mkdtemp(f->dir));
    snprintf(f->outbox, sizeof(f->outbox), "%s/outbox.db", f->dir);
    snprintf(f->dict, sizeof(f->dict), "%s.dict", f->outbox);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fx *f = *state;
    char cmd[96];

    snprintf(cmd, sizeof(cmd), "rm -rf %s", f->dir);
    assert_int_equal(system(cmd), 0);
    free(f);
    return 0;
}

static long add(struct et_dictionary *dy, const char *name, double resolution)
{
    return et_dict_index(et_dictionary_current(dy), name, "1", NULL, ET_TYPE_F64, resolution);
}

static void survives_a_restart(void **state)
{
    struct fx *f = *state;
    struct et_dictionary *dy;
    struct et_dict *d;

    assert_int_equal(et_dictionary_open(&dy, f->outbox, stream_a), 0);
    assert_int_equal(et_dictionary_current(dy)->id, 0);
    assert_int_equal(add(dy, "cpu.usage", 0.01), 0);
    assert_int_equal(add(dy, "load.load1", 0.01), 1);
    assert_int_equal(et_dictionary_save(dy, 0, 41), 0);     /* the first batch is seq 41 */
    assert_int_equal(et_dictionary_current(dy)->id, 41);
    assert_int_equal(add(dy, "mem.used", 1), 2);
    assert_int_equal(et_dictionary_save(dy, 2, 42), 0);     /* appended */
    et_dictionary_close(dy);

    assert_int_equal(et_dictionary_open(&dy, f->outbox, stream_a), 0);
    d = et_dictionary_current(dy);
    assert_int_equal(d->id, 41);
    assert_int_equal(d->n, 3);
    assert_string_equal(d->e[2].name, "mem.used");
    assert_true(d->e[0].scale == 0.01);
    /* The same metric keeps its index; a new one follows. */
    assert_int_equal(add(dy, "load.load1", 0.01), 1);
    assert_int_equal(add(dy, "disk.used", 4096), 3);
    assert_ptr_equal(et_dictionary_find(dy, 41), d);
    assert_null(et_dictionary_find(dy, 40));
    et_dictionary_close(dy);
}

static void another_streams_file_or_a_damaged_one_starts_afresh(void **state)
{
    struct fx *f = *state;
    struct et_dictionary *dy;
    FILE *fp;

    assert_int_equal(et_dictionary_open(&dy, f->outbox, stream_a), 0);
    add(dy, "cpu.usage", 0.01);
    assert_int_equal(et_dictionary_save(dy, 0, 7), 0);
    et_dictionary_close(dy);

    /* A new outbox (another stream) beside the old file. */
    assert_int_equal(et_dictionary_open(&dy, f->outbox, stream_b), 0);
    assert_int_equal(et_dictionary_current(dy)->n, 0);
    assert_int_equal(et_dictionary_current(dy)->id, 0);
    add(dy, "uptime.seconds", 0.01);
    assert_int_equal(et_dictionary_save(dy, 0, 1), 0);
    et_dictionary_close(dy);

    /* Garbage in the middle: begun again. */
    fp = fopen(f->dict, "a");
    assert_non_null(fp);
    fputs("not an entry\n", fp);
    fclose(fp);
    assert_int_equal(et_dictionary_open(&dy, f->outbox, stream_b), 0);
    assert_int_equal(et_dictionary_current(dy)->n, 0);
    et_dictionary_close(dy);
}

static void a_line_cut_short_is_cut_off(void **state)
{
    struct fx *f = *state;
    struct et_dictionary *dy;
    FILE *fp;

    assert_int_equal(et_dictionary_open(&dy, f->outbox, stream_a), 0);
    add(dy, "a", 0.5);
    add(dy, "b", 0.5);
    assert_int_equal(et_dictionary_save(dy, 0, 3), 0);
    et_dictionary_close(dy);
    fp = fopen(f->dict, "a");
    assert_non_null(fp);
    fputs("1\t0.5\tc\t1", fp);          /* a crash in the middle of a line */
    fclose(fp);
    assert_int_equal(et_dictionary_open(&dy, f->outbox, stream_a), 0);
    assert_int_equal(et_dictionary_current(dy)->n, 2);
    assert_int_equal(add(dy, "c", 0.5), 2);
    assert_int_equal(et_dictionary_save(dy, 2, 4), 0);
    et_dictionary_close(dy);
    assert_int_equal(et_dictionary_open(&dy, f->outbox, stream_a), 0);
    assert_int_equal(et_dictionary_current(dy)->n, 3);
    assert_string_equal(et_dictionary_current(dy)->e[2].name, "c");
    et_dictionary_close(dy);
}

static void a_grown_dictionary_is_begun_again_when_nothing_needs_the_last(void **state)
{
    struct fx *f = *state;
    struct et_dictionary *dy;
    char name[32];

    assert_int_equal(et_dictionary_open(&dy, f->outbox, stream_a), 0);
    for (int i = 0; i < ET_DICTIONARY_ROTATE; i++) {
        snprintf(name, sizeof(name), "veth%d.rx_bytes", i);
        assert_int_equal(add(dy, name, 1), i);
    }
    assert_int_equal(et_dictionary_save(dy, 0, 10), 0);
    assert_true(et_dictionary_rotate(dy, 5));         /* no previous one to keep */
    assert_int_equal(et_dictionary_current(dy)->n, 0);
    assert_non_null(et_dictionary_find(dy, 10));       /* batches of it may go again */
    add(dy, "cpu.usage", 0.01);
    assert_int_equal(et_dictionary_save(dy, 0, 11), 0);
    et_dictionary_close(dy);

    /* After a restart both are there, the new one current. */
    assert_int_equal(et_dictionary_open(&dy, f->outbox, stream_a), 0);
    assert_int_equal(et_dictionary_current(dy)->id, 11);
    assert_int_equal(et_dictionary_current(dy)->n, 1);
    assert_int_equal(et_dictionary_find(dy, 10)->n, ET_DICTIONARY_ROTATE);
    et_dictionary_close(dy);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(survives_a_restart, setup, teardown),
        cmocka_unit_test_setup_teardown(another_streams_file_or_a_damaged_one_starts_afresh,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(a_line_cut_short_is_cut_off, setup, teardown),
        cmocka_unit_test_setup_teardown(
            a_grown_dictionary_is_begun_again_when_nothing_needs_the_last, setup, teardown),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
