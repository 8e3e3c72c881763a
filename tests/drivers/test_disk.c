/*
 * disk: mounts from the fixture boards' /proc/self/mounts, space from the
 * fake statvfs table.
 */
#include <errno.h>

#include "drv_test.h"

#define GIB (1024LL * 1024 * 1024)

static void pi4_root_and_boot_only(void **state)
{
    struct et_dev *dev;

    use_board("pi4");
    assert_int_equal(et_fake_fs_set_space("/", 20 * GIB, 29 * GIB, 0), 0);
    assert_int_equal(et_fake_fs_set_space("/boot/firmware", 400LL << 20, 510LL << 20, 0), 0);
    dev = dev_open("disk", NULL, 0);
    /* ext4 root and the vfat boot partition; proc, sysfs, tmpfs... skipped. */
    assert_int_equal(dev->n_channels, 6);
    dev_fetch_ok(dev);
    assert_int_equal(dev_i64(dev, "root.avail"), 20 * GIB);
    assert_int_equal(dev_i64(dev, "root.total"), 29 * GIB);
    assert_float_equal(dev_f64(dev, "root.used_pct"), 100.0 * 9 / 29, 1e-9);
    assert_int_equal(dev_i64(dev, "boot_firmware.avail"), 400LL << 20);
    assert_float_equal(dev_f64(dev, "boot_firmware.used_pct"), 100.0 * 110 / 510, 1e-9);
    dev_close(dev, true);
}

static void pi5_escaped_names_and_bind_mounts(void **state)
{
    struct et_dev *dev;

    use_board("pi5");
    assert_int_equal(et_fake_fs_set_space("/", 100 * GIB, 234 * GIB, 0), 0);
    assert_int_equal(et_fake_fs_set_space("/boot/firmware", 400LL << 20, 510LL << 20, 0), 0);
    /* The mount table writes the space in "USB STICK" as \040. */
    assert_int_equal(et_fake_fs_set_space("/media/pi/USB STICK", 1 * GIB, 4 * GIB, 0), 0);
    dev = dev_open("disk", NULL, 0);
    /* /var/lib/docker is the root device again and is not counted twice. */
    assert_int_equal(dev->n_channels, 9);
    assert_int_equal(dev_channel(dev, "var_lib_docker.avail"), -1);
    dev_fetch_ok(dev);
    assert_int_equal(dev_i64(dev, "media_pi_USB_STICK.total"), 4 * GIB);
    assert_float_equal(dev_f64(dev, "media_pi_USB_STICK.used_pct"), 75.0, 1e-9);
    assert_int_equal(dev_i64(dev, "root.avail"), 100 * GIB);
    dev_close(dev, true);
}

static void unmounted_stick_has_no_data(void **state)
{
    struct et_dev *dev;

    use_board("pi5");
    assert_int_equal(et_fake_fs_set_space("/", 100 * GIB, 234 * GIB, 0), 0);
    assert_int_equal(et_fake_fs_set_space("/media/pi/USB STICK", 0, 0, -EIO), 0);
    dev = dev_open("disk", NULL, 0);
    dev_fetch_ok(dev);
    assert_int_equal(dev_i64(dev, "root.total"), 234 * GIB);
    dev_get_nodata(dev, "media_pi_USB_STICK.avail");
    assert_non_null(strstr(dev->err, "/media/pi/USB STICK"));
    dev_get_nodata(dev, "boot_firmware.total"); /* statvfs never answered */
    dev_close(dev, true);
}

static void mounts_parameter_picks_and_rejects(void **state)
{
    const struct drv_kv boot[] = { { "mounts", "/boot/firmware" } };
    const struct drv_kv nowhere[] = { { "mounts", "/mnt/data, /srv" } };
    struct et_dev *dev;

    use_board("pi4");
    dev = dev_open("disk", boot, 1);
    assert_int_equal(dev->n_channels, 3);
    assert_string_equal(dev->channels[0].name, "boot_firmware.avail");
    dev_close(dev, true);
    assert_int_equal(dev_probe(&dev, "disk", nowhere, 1), -ENODEV);
    assert_non_null(strstr(dev->err, "/mnt/data"));
    dev_close(dev, false);
}

static void no_mount_table_is_no_device(void **state)
{
    struct et_dev *dev;

    assert_int_equal(dev_probe(&dev, "disk", NULL, 0), -ENODEV);
    assert_non_null(strstr(dev->err, "/proc/self/mounts"));
    dev_close(dev, false);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup(pi4_root_and_boot_only, reset_fake),
        cmocka_unit_test_setup(pi5_escaped_names_and_bind_mounts, reset_fake),
        cmocka_unit_test_setup(unmounted_stick_has_no_data, reset_fake),
        cmocka_unit_test_setup(mounts_parameter_picks_and_rejects, reset_fake),
        cmocka_unit_test_setup(no_mount_table_is_no_device, reset_fake),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
