/*
 * self: /proc/self of the fixture boards (the agent as pid 1043 on the Pi 4;
 * on the Pi 5 a process name holding a space and a ')').
 */
#include <errno.h>
#include <unistd.h>

#include "drv_test.h"

static void pi4_agent_costs(void **state)
{
    double hz = (double)sysconf(_SC_CLK_TCK);
    struct et_dev *dev;

    use_board("pi4");
    dev = dev_open("self", NULL, 0);
    dev_fetch_ok(dev);
    assert_int_equal(dev_i64(dev, "rss"), 5876LL * 1024);
    assert_int_equal(dev_i64(dev, "threads"), 3);
    assert_float_equal(dev_f64(dev, "cpu_user"), 1234 / hz, 1e-9);
    assert_float_equal(dev_f64(dev, "cpu_system"), 567 / hz, 1e-9);
    assert_int_equal(dev_i64(dev, "write_bytes"), 4718592);
    dev_close(dev, true);
}

static void pi5_odd_process_name_and_no_io_accounting(void **state)
{
    double hz = (double)sysconf(_SC_CLK_TCK);
    struct et_dev *dev;

    use_board("pi5");
    dev = dev_open("self", NULL, 0);
    dev_fetch_ok(dev);
    assert_int_equal(dev_i64(dev, "rss"), 9728LL * 1024);
    assert_float_equal(dev_f64(dev, "cpu_user"), 98765 / hz, 1e-9);
    assert_float_equal(dev_f64(dev, "cpu_system"), 4321 / hz, 1e-9);
    dev_get_nodata(dev, "write_bytes");
    assert_non_null(strstr(dev->err, "write_bytes"));
    dev_close(dev, true);
}

static void truncated_stat_loses_only_cpu(void **state)
{
    static const char cut[] = "1043 (edgetel-agent) S 1 1043 1043 0 -1 4194560 1351\n";
    struct et_dev *dev;

    use_board("pi4");
    dev = dev_open("self", NULL, 0);
    assert_int_equal(et_fake_fs_set_file("/proc/self/stat", cut, sizeof(cut) - 1, 0), 0);
    dev_fetch_ok(dev);
    dev_get_nodata(dev, "cpu_user");
    assert_int_equal(dev_i64(dev, "rss"), 5876LL * 1024);
    dev_close(dev, true);
}

static void no_proc_self_is_no_device(void **state)
{
    struct et_dev *dev;

    assert_int_equal(dev_probe(&dev, "self", NULL, 0), -ENODEV);
    assert_non_null(strstr(dev->err, "/proc/self"));
    dev_close(dev, false);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup(pi4_agent_costs, reset_fake),
        cmocka_unit_test_setup(pi5_odd_process_name_and_no_io_accounting, reset_fake),
        cmocka_unit_test_setup(truncated_stat_loses_only_cpu, reset_fake),
        cmocka_unit_test_setup(no_proc_self_is_no_device, reset_fake),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
