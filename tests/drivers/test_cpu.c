/*
 * cpu: shares computed from two /proc/stat snapshots of the fixture boards
 * (fixtures/<board> at probe, fixtures/<board>-t1 ten seconds later).
 * The deltas per core are 1000 ticks each (4000 in all); the expected
 * percentages below are worked out by hand from those files.
 */
#include <errno.h>

#include "drv_test.h"

static void pi4_shares_from_two_snapshots(void **state)
{
    struct et_dev *dev;

    use_board("pi4");
    dev = dev_open("cpu", NULL, 0);
    /* 4 totals + 4 cores, named after the kernel's cpuN. */
    assert_int_equal(dev->n_channels, 8);
    assert_int_equal(dev_channel(dev, "core0.usage"), 4);
    assert_int_equal(dev_channel(dev, "core3.usage"), 7);
    use_board("pi4-t1");
    dev_fetch_ok(dev);
    /* all 4000: user 600 nice 20 system 180 idle 3000 iowait 120 softirq 80 */
    assert_float_equal(dev_f64(dev, "usage"), 100.0 * 880 / 4000, 1e-9);   /* 22 */
    assert_float_equal(dev_f64(dev, "user"), 100.0 * 620 / 4000, 1e-9);    /* 15.5 */
    assert_float_equal(dev_f64(dev, "system"), 100.0 * 260 / 4000, 1e-9);  /* 6.5 */
    assert_float_equal(dev_f64(dev, "iowait"), 100.0 * 120 / 4000, 1e-9);  /* 3 */
    assert_float_equal(dev_f64(dev, "core0.usage"), 40.0, 1e-9);
    assert_float_equal(dev_f64(dev, "core1.usage"), 20.0, 1e-9);
    assert_float_equal(dev_f64(dev, "core2.usage"), 15.0, 1e-9);
    assert_float_equal(dev_f64(dev, "core3.usage"), 13.0, 1e-9);
    dev_close(dev, true);
}

static void pi5_shares_from_two_snapshots(void **state)
{
    struct et_dev *dev;

    use_board("pi5");
    dev = dev_open("cpu", NULL, 0);
    use_board("pi5-t1");
    dev_fetch_ok(dev);
    /* all 4000: user 1210 system 265 idle 2450 softirq 75 */
    assert_float_equal(dev_f64(dev, "usage"), 38.75, 1e-9);
    assert_float_equal(dev_f64(dev, "user"), 30.25, 1e-9);
    assert_float_equal(dev_f64(dev, "system"), 8.5, 1e-9);
    assert_float_equal(dev_f64(dev, "iowait"), 0.0, 1e-9);
    assert_float_equal(dev_f64(dev, "core0.usage"), 90.0, 1e-9);
    assert_float_equal(dev_f64(dev, "core1.usage"), 50.0, 1e-9);
    assert_float_equal(dev_f64(dev, "core2.usage"), 10.0, 1e-9);
    assert_float_equal(dev_f64(dev, "core3.usage"), 5.0, 1e-9);
    dev_close(dev, true);
}

/*
 * The agent fetches right after probe, usually within the same 10 ms tick:
 * no value yet, and nothing worth a warning (there used to be one per
 * channel, six on a two-core board, at most starts).
 */
static void no_time_passed_is_quietly_no_data(void **state)
{
    struct et_dev *dev;

    use_board("pi4");
    dev = dev_open("cpu", NULL, 0);
    dev_fetch_ok(dev); /* the same snapshot again: zero ticks elapsed */
    for (size_t ch = 0; ch < dev->n_channels; ch++)
        dev_get_quiet_nodata(dev, dev->channels[ch].name);
    /* Time passes: values, and the next read in the same tick is quiet again. */
    use_board("pi4-t1");
    dev_fetch_ok(dev);
    assert_float_equal(dev_f64(dev, "usage"), 22.0, 1e-9);
    dev_fetch_ok(dev);
    dev_get_quiet_nodata(dev, "usage");
    dev_get_quiet_nodata(dev, "core0.usage");
    dev_close(dev, true);
}

static void offline_core_has_no_data_but_the_rest_do(void **state)
{
    static const char t1[] =
        "cpu  48913 312 21786 2841233 3829 0 1152 0 0 0\n"
        "cpu0 12908 81 5942 709474 1066 0 762 0 0 0\n"
        "cpu1 12120 84 5312 710905 952 0 178 0 0 0\n"
        "intr 1 2 3\n";
    static const char t2[] =
        "cpu  49513 332 21966 2844233 3949 0 1232 0 0 0\n"
        "cpu0 12908 81 5942 709474 1066 0 762 0 0 0\n"
        "cpu1 12220 84 5362 711755 952 0 178 0 0 0\n"
        "cpu2 12154 78 5357 711811 961 0 156 0 0 0\n"
        "intr 1 2 3\n";
    struct et_dev *dev;

    use_board("pi4");
    dev = dev_open("cpu", NULL, 0);
    /* The totals went nowhere (a hand-made file), core0 moved, cpu2/3 vanished. */
    assert_int_equal(et_fake_fs_set_file("/proc/stat", t1, sizeof(t1) - 1, 0), 0);
    dev_fetch_ok(dev);
    assert_float_equal(dev_f64(dev, "core0.usage"), 40.0, 1e-9);
    dev_get_quiet_nodata(dev, "core1.usage");   /* no ticks elapsed */
    dev_get_nodata(dev, "core2.usage");         /* offline: said, once, by the collector */
    assert_non_null(strstr(dev->err, "offline"));
    dev_get_quiet_nodata(dev, "usage");
    /* Back online: its first snapshot, nothing to compare yet, nothing to say. */
    assert_int_equal(et_fake_fs_set_file("/proc/stat", t2, sizeof(t2) - 1, 0), 0);
    dev_fetch_ok(dev);
    dev_get_quiet_nodata(dev, "core2.usage");
    assert_float_equal(dev_f64(dev, "core1.usage"), 15.0, 1e-9);
    dev_close(dev, true);
}

static void counters_going_back_are_reported(void **state)
{
    static const char reset[] =
        "cpu  10 0 10 100 0 0 0 0 0 0\n"
        "cpu0 10 0 10 100 0 0 0 0 0 0\n"
        "cpu1 0 0 0 0 0 0 0 0 0 0\n"
        "cpu2 0 0 0 0 0 0 0 0 0 0\n"
        "cpu3 0 0 0 0 0 0 0 0 0 0\n";
    struct et_dev *dev;

    use_board("pi4");
    dev = dev_open("cpu", NULL, 0);
    assert_int_equal(et_fake_fs_set_file("/proc/stat", reset, sizeof(reset) - 1, 0), 0);
    dev_fetch_ok(dev);
    dev_get_nodata(dev, "usage");
    assert_non_null(strstr(dev->err, "reset"));
    dev_get_nodata(dev, "core0.usage");
    dev_close(dev, true);
}

static void missing_proc_stat_is_no_device(void **state)
{
    struct et_dev *dev;

    et_fake_fs_set_root(NULL);
    assert_int_equal(dev_probe(&dev, "cpu", NULL, 0), -ENODEV);
    assert_non_null(strstr(dev->err, "/proc/stat"));
    dev_close(dev, false);
}

static void garbage_is_no_device(void **state)
{
    static const char junk[] = "intr 1 2 3\nctxt 4\n";
    struct et_dev *dev;

    assert_int_equal(et_fake_fs_set_file("/proc/stat", junk, sizeof(junk) - 1, 0), 0);
    assert_int_equal(dev_probe(&dev, "cpu", NULL, 0), -ENODEV);
    assert_non_null(strstr(dev->err, "no \"cpu\" line"));
    dev_close(dev, false);
}

static void read_error_at_fetch_is_reported(void **state)
{
    struct et_dev *dev;

    use_board("pi4");
    dev = dev_open("cpu", NULL, 0);
    assert_int_equal(et_fake_fs_set_file("/proc/stat", NULL, 0, -EIO), 0);
    assert_int_equal(dev->drv->fetch(dev), -EIO);
    assert_non_null(strstr(dev->err, "/proc/stat"));
    dev_close(dev, true);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup(pi4_shares_from_two_snapshots, reset_fake),
        cmocka_unit_test_setup(pi5_shares_from_two_snapshots, reset_fake),
        cmocka_unit_test_setup(no_time_passed_is_quietly_no_data, reset_fake),
        cmocka_unit_test_setup(offline_core_has_no_data_but_the_rest_do, reset_fake),
        cmocka_unit_test_setup(counters_going_back_are_reported, reset_fake),
        cmocka_unit_test_setup(missing_proc_stat_is_no_device, reset_fake),
        cmocka_unit_test_setup(garbage_is_no_device, reset_fake),
        cmocka_unit_test_setup(read_error_at_fetch_is_reported, reset_fake),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
