/*
 * procs: pid directories, /proc/loadavg and /proc/stat of the fixture boards.
 */
#include <errno.h>

#include "drv_test.h"

static void pi4_and_pi5_counts(void **state)
{
    struct et_dev *dev;

    use_board("pi4");
    dev = dev_open("procs", NULL, 0);
    dev_fetch_ok(dev);
    assert_int_equal(dev_i64(dev, "processes"), 6); /* 1 2 3 412 587 1043; not "self" */
    assert_int_equal(dev_i64(dev, "threads"), 345);
    assert_int_equal(dev_i64(dev, "running"), 2);
    assert_int_equal(dev_i64(dev, "blocked"), 0);
    use_board("pi5");
    et_fake_time_advance(10000);            /* processes are counted every 10 s */
    dev_fetch_ok(dev);
    assert_int_equal(dev_i64(dev, "processes"), 7);
    assert_int_equal(dev_i64(dev, "threads"), 412);
    assert_int_equal(dev_i64(dev, "running"), 3);
    dev_close(dev, true);
}

static void partial_proc_gives_partial_data(void **state)
{
    struct et_dev *dev;

    use_board("pi4");
    dev = dev_open("procs", NULL, 0);
    assert_int_equal(et_fake_fs_set_file("/proc/loadavg", "garbage\n", 8, 0), 0);
    assert_int_equal(et_fake_fs_set_file("/proc/stat", NULL, 0, -EACCES), 0);
    dev_fetch_ok(dev);
    assert_int_equal(dev_i64(dev, "processes"), 6);
    dev_get_nodata(dev, "threads");
    dev_get_nodata(dev, "running");
    dev_close(dev, true);
}

/* Listing /proc is the costly part: between counts processes has no value (and no trouble). */
static void processes_are_counted_every_10_s(void **state)
{
    struct et_dev *dev;
    static const struct drv_kv every_round[] = { { "processes_every", "0" } };

    use_board("pi4");
    dev = dev_open("procs", NULL, 0);
    dev_fetch_ok(dev);
    assert_int_equal(dev_i64(dev, "processes"), 6);
    et_fake_time_advance(1000);
    dev_fetch_ok(dev);
    assert_int_equal(dev->drv->get(dev, 0, &(struct et_value){ 0 }), -ENODATA);
    assert_string_equal(dev->err, "");
    assert_int_equal(dev->drv->get(dev, 3, &(struct et_value){ 0 }), -ENODATA);  /* blocked */
    assert_int_equal(dev_i64(dev, "threads"), 345);     /* the rest every round */
    assert_int_equal(dev_i64(dev, "running"), 2);
    et_fake_time_advance(8600);                         /* 9.6 s: due, give or take */
    dev_fetch_ok(dev);
    assert_int_equal(dev_i64(dev, "processes"), 6);
    dev_close(dev, true);

    dev = dev_open("procs", every_round, 1);
    dev_fetch_ok(dev);
    dev_fetch_ok(dev);
    assert_int_equal(dev_i64(dev, "processes"), 6);
    dev_close(dev, true);
}

static void no_procfs_is_no_device(void **state)
{
    struct et_dev *dev;

    assert_int_equal(dev_probe(&dev, "procs", NULL, 0), -ENODEV);
    dev_close(dev, false);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup(pi4_and_pi5_counts, reset_fake),
        cmocka_unit_test_setup(partial_proc_gives_partial_data, reset_fake),
        cmocka_unit_test_setup(processes_are_counted_every_10_s, reset_fake),
        cmocka_unit_test_setup(no_procfs_is_no_device, reset_fake),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
