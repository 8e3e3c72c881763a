/*
 * memory: bytes from the fixture boards' /proc/meminfo (values in kB there).
 */
#include <errno.h>

#include "drv_test.h"

static void pi4_memory_and_swap(void **state)
{
    struct et_dev *dev;

    use_board("pi4");
    dev = dev_open("memory", NULL, 0);
    dev_fetch_ok(dev);
    assert_int_equal(dev_i64(dev, "total"), 3882300LL * 1024);
    assert_int_equal(dev_i64(dev, "available"), 3298516LL * 1024);
    assert_int_equal(dev_i64(dev, "used"), (3882300LL - 3298516) * 1024);
    assert_float_equal(dev_f64(dev, "used_pct"), 100.0 * 583784 / 3882300, 1e-9);
    assert_int_equal(dev_i64(dev, "swap_total"), 102396LL * 1024);
    assert_int_equal(dev_i64(dev, "swap_used"), (102396LL - 81916) * 1024);
    dev_close(dev, true);
}

static void pi5_memory_and_unused_swap(void **state)
{
    struct et_dev *dev;

    use_board("pi5");
    dev = dev_open("memory", NULL, 0);
    dev_fetch_ok(dev);
    assert_int_equal(dev_i64(dev, "total"), 8245392LL * 1024);
    assert_int_equal(dev_i64(dev, "used"), (8245392LL - 7622912) * 1024);
    assert_float_equal(dev_f64(dev, "used_pct"), 100.0 * 622480 / 8245392, 1e-9);
    assert_int_equal(dev_i64(dev, "swap_used"), 0);
    dev_close(dev, true);
}

static void old_kernel_without_memavailable(void **state)
{
    static const char text[] = "MemTotal:  1000 kB\nMemFree:  100 kB\nBuffers:  50 kB\n"
                               "Cached:  250 kB\nSwapTotal: 0 kB\nSwapFree: 0 kB\n";
    struct et_dev *dev;

    assert_int_equal(et_fake_fs_set_file("/proc/meminfo", text, sizeof(text) - 1, 0), 0);
    dev = dev_open("memory", NULL, 0);
    dev_fetch_ok(dev);
    assert_int_equal(dev_i64(dev, "available"), 400 * 1024);
    assert_float_equal(dev_f64(dev, "used_pct"), 60.0, 1e-9);
    dev_close(dev, true);
}

static void impossible_values_have_no_data(void **state)
{
    static const char more_free[] = "MemTotal: 1000 kB\nMemAvailable: 2000 kB\n";
    static const char bad_swap[] = "MemTotal: 1000 kB\nMemAvailable: 500 kB\n"
                                   "SwapTotal: 10 kB\nSwapFree: 20 kB\n";
    struct et_dev *dev;

    use_board("pi4");
    dev = dev_open("memory", NULL, 0);
    assert_int_equal(et_fake_fs_set_file("/proc/meminfo", more_free, sizeof(more_free) - 1, 0), 0);
    assert_int_equal(dev->drv->fetch(dev), -ENODATA);
    assert_non_null(strstr(dev->err, "exceeds total"));
    dev_get_nodata(dev, "total");
    /* Swap that does not add up loses only the swap channels. */
    assert_int_equal(et_fake_fs_set_file("/proc/meminfo", bad_swap, sizeof(bad_swap) - 1, 0), 0);
    dev_fetch_ok(dev);
    assert_int_equal(dev_i64(dev, "used"), 500 * 1024);
    dev_get_nodata(dev, "swap_used");
    dev_close(dev, true);
}

static void missing_meminfo_is_no_device(void **state)
{
    struct et_dev *dev;

    assert_int_equal(dev_probe(&dev, "memory", NULL, 0), -ENODEV);
    assert_non_null(strstr(dev->err, "/proc/meminfo"));
    dev_close(dev, false);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup(pi4_memory_and_swap, reset_fake),
        cmocka_unit_test_setup(pi5_memory_and_unused_swap, reset_fake),
        cmocka_unit_test_setup(old_kernel_without_memavailable, reset_fake),
        cmocka_unit_test_setup(impossible_values_have_no_data, reset_fake),
        cmocka_unit_test_setup(missing_meminfo_is_no_device, reset_fake),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
