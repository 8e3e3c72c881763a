/*
 * diskio: whole disks from the fixture boards' /proc/diskstats and /sys/block.
 */
#include <errno.h>

#include "drv_test.h"

static void pi4_sd_card_only(void **state)
{
    struct et_dev *dev;

    use_board("pi4");
    dev = dev_open("diskio", NULL, 0);
    /* mmcblk0; its partitions, loop0-7 and ram0-15 are not disks to report. */
    assert_int_equal(dev->n_channels, 5);
    dev_fetch_ok(dev);
    assert_int_equal(dev_i64(dev, "mmcblk0.reads"), 20489);
    assert_int_equal(dev_i64(dev, "mmcblk0.read_bytes"), 1468406LL * 512);
    assert_int_equal(dev_i64(dev, "mmcblk0.writes"), 13220);
    assert_int_equal(dev_i64(dev, "mmcblk0.write_bytes"), 822968LL * 512);
    assert_int_equal(dev_i64(dev, "mmcblk0.io_time"), 71580);
    dev_close(dev, true);
}

static void pi5_nvme_sd_and_usb(void **state)
{
    struct et_dev *dev;

    use_board("pi5");
    dev = dev_open("diskio", NULL, 0);
    assert_int_equal(dev->n_channels, 15);
    dev_fetch_ok(dev);
    assert_int_equal(dev_i64(dev, "nvme0n1.read_bytes"), 4119362LL * 512);
    assert_int_equal(dev_i64(dev, "nvme0n1.writes"), 38261);
    assert_int_equal(dev_i64(dev, "sda.reads"), 1244);
    assert_int_equal(dev_i64(dev, "mmcblk0.io_time"), 64);
    dev_close(dev, true);
}

static void unplugged_disk_has_no_data(void **state)
{
    static const char after[] =
        " 259       0 nvme0n1 51900 11863 4120000 21950 38300 31977 2897000 52314 0 64800 81402 0 0 0 0\n";
    struct et_dev *dev;

    use_board("pi5");
    dev = dev_open("diskio", NULL, 0);
    assert_int_equal(et_fake_fs_set_file("/proc/diskstats", after, sizeof(after) - 1, 0), 0);
    dev_fetch_ok(dev);
    assert_int_equal(dev_i64(dev, "nvme0n1.reads"), 51900);
    dev_get_nodata(dev, "sda.reads");
    assert_non_null(strstr(dev->err, "sda"));
    dev_close(dev, true);
}

static void devices_parameter(void **state)
{
    const struct drv_kv part[] = { { "devices", "mmcblk0p2" } };
    const struct drv_kv none[] = { { "devices", "sdz" } };
    struct et_dev *dev;

    use_board("pi4");
    dev = dev_open("diskio", part, 1);
    assert_int_equal(dev->n_channels, 5);
    dev_fetch_ok(dev);
    assert_int_equal(dev_i64(dev, "mmcblk0p2.write_bytes"), 822966LL * 512);
    dev_close(dev, true);
    assert_int_equal(dev_probe(&dev, "diskio", none, 1), -ENODEV);
    assert_non_null(strstr(dev->err, "sdz"));
    dev_close(dev, false);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup(pi4_sd_card_only, reset_fake),
        cmocka_unit_test_setup(pi5_nvme_sd_and_usb, reset_fake),
        cmocka_unit_test_setup(unplugged_disk_has_no_data, reset_fake),
        cmocka_unit_test_setup(devices_parameter, reset_fake),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
