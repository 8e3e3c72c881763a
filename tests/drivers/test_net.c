/*
 * net: /proc/net/dev of the fixture boards.
 */
#include <errno.h>

#include "drv_test.h"

static void pi4_ethernet_and_wifi(void **state)
{
    struct et_dev *dev;

    use_board("pi4");
    dev = dev_open("net", NULL, 0);
    assert_int_equal(dev->n_channels, 16); /* eth0 and wlan0, 8 each; lo skipped */
    assert_int_equal(dev_channel(dev, "lo.rx_bytes"), -1);
    dev_fetch_ok(dev);
    assert_int_equal(dev_i64(dev, "eth0.rx_bytes"), 734918265);
    assert_int_equal(dev_i64(dev, "eth0.rx_packets"), 612345);
    assert_int_equal(dev_i64(dev, "eth0.rx_drops"), 17);
    assert_int_equal(dev_i64(dev, "eth0.tx_bytes"), 48215530);
    assert_int_equal(dev_i64(dev, "eth0.tx_packets"), 301223);
    assert_int_equal(dev_i64(dev, "wlan0.tx_bytes"), 0);
    dev_close(dev, true);
}

static void pi5_counters_past_32_bits(void **state)
{
    struct et_dev *dev;

    use_board("pi5");
    dev = dev_open("net", NULL, 0);
    assert_int_equal(dev->n_channels, 24); /* eth0, wlan0, docker0 */
    dev_fetch_ok(dev);
    assert_int_equal(dev_i64(dev, "eth0.rx_bytes"), 4294967296000LL);
    assert_int_equal(dev_i64(dev, "eth0.rx_errors"), 2);
    assert_int_equal(dev_i64(dev, "eth0.tx_errors"), 1);
    assert_int_equal(dev_i64(dev, "wlan0.rx_drops"), 31);
    dev_close(dev, true);
}

static void interfaces_parameter_and_vanishing_interface(void **state)
{
    static const char after[] =
        "Inter-|   Receive\n face |bytes\n"
        "    lo:  130000    1500    0    0    0     0          0         0   130000    1500    0    0    0     0       0          0\n";
    const struct drv_kv kv[] = { { "interfaces", "lo, eth0" } };
    struct et_dev *dev;

    use_board("pi4");
    dev = dev_open("net", kv, 1);
    assert_int_equal(dev->n_channels, 16);
    dev_fetch_ok(dev);
    assert_int_equal(dev_i64(dev, "lo.rx_bytes"), 84912);
    assert_int_equal(et_fake_fs_set_file("/proc/net/dev", after, sizeof(after) - 1, 0), 0);
    dev_fetch_ok(dev);
    assert_int_equal(dev_i64(dev, "lo.tx_packets"), 1500);
    dev_get_nodata(dev, "eth0.rx_bytes");
    dev_close(dev, true);
}

static void vlan_names_are_one_metric_part(void **state)
{
    static const char text[] =
        "Inter-|   Receive\n face |bytes\n"
        "eth0.100: 10 1 0 0 0 0 0 0 20 2 0 0 0 0 0 0\n";
    struct et_dev *dev;

    assert_int_equal(et_fake_fs_set_file("/proc/net/dev", text, sizeof(text) - 1, 0), 0);
    dev = dev_open("net", NULL, 0);
    dev_fetch_ok(dev);
    assert_int_equal(dev_i64(dev, "eth0_100.tx_bytes"), 20);
    dev_close(dev, true);
}

static void nothing_but_loopback_is_no_device(void **state)
{
    static const char text[] = "Inter-|\n face |\n    lo: 1 1 0 0 0 0 0 0 1 1 0 0 0 0 0 0\n";
    struct et_dev *dev;

    assert_int_equal(et_fake_fs_set_file("/proc/net/dev", text, sizeof(text) - 1, 0), 0);
    assert_int_equal(dev_probe(&dev, "net", NULL, 0), -ENODEV);
    assert_non_null(strstr(dev->err, "lo"));
    dev_close(dev, false);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup(pi4_ethernet_and_wifi, reset_fake),
        cmocka_unit_test_setup(pi5_counters_past_32_bits, reset_fake),
        cmocka_unit_test_setup(interfaces_parameter_and_vanishing_interface, reset_fake),
        cmocka_unit_test_setup(vlan_names_are_one_metric_part, reset_fake),
        cmocka_unit_test_setup(nothing_but_loopback_is_no_device, reset_fake),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
