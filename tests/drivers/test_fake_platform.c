/*
 * The fake platform itself: what the driver tests rely on it to do.
 */
#include <errno.h>

#include "drv_test.h"
#include "edgetel/platform.h"

static void clock_is_set_and_advanced(void **state)
{
    const uint8_t id[16] = { 0xb9, 0x7e, 0xef, 0x83, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12 };
    uint8_t out[16];

    assert_int_equal(et_time_mono_ms(), 0);
    assert_false(et_time_synced());
    et_time_boot_id(out);
    assert_int_equal(out[0] | out[15], 0);
    et_fake_time_set(5000, 1700000000000, true);
    et_fake_time_advance(250);
    assert_int_equal(et_time_mono_ms(), 5250);
    assert_int_equal(et_time_wall_ms(), 1700000000250);
    assert_true(et_time_synced());
    et_fake_time_set_boot_id(id);
    et_time_boot_id(out);
    assert_memory_equal(out, id, 16);
}

static int count_entry(void *ctx, const char *name)
{
    (*(int *)ctx)++;
    return strcmp(name, "stop") == 0 ? 7 : 0;
}

static void files_come_from_the_root_or_memory(void **state)
{
    char buf[8];
    int n = 0;

    assert_int_equal(et_fs_read("/proc/uptime", buf, sizeof(buf)), -ENOENT); /* no root */
    use_board("pi4");
    assert_int_equal(et_fs_read("/proc/uptime", buf, sizeof(buf)), -EFBIG);
    assert_string_equal(buf, "86413.2"); /* cut at cap - 1 */
    assert_int_equal(et_fs_read("/proc/nothing", buf, sizeof(buf)), -ENOENT);
    assert_int_equal(et_fake_fs_set_file("/proc/uptime", "1.5 2\n", 6, 0), 0);
    assert_int_equal(et_fs_read("/proc/uptime", buf, sizeof(buf)), 6);
    assert_string_equal(buf, "1.5 2\n");
    assert_int_equal(et_fake_fs_set_file("/proc/uptime", NULL, 0, -EACCES), 0);
    assert_int_equal(et_fs_read("/proc/uptime", buf, sizeof(buf)), -EACCES);
    assert_int_equal(et_fs_list("/sys/class/thermal", count_entry, &n), 0);
    assert_int_equal(n, 2); /* thermal_zone0, cooling_device0 */
    assert_int_equal(et_fs_list("/sys/nowhere", count_entry, &n), -ENOENT);
}

static void space_answers_only_what_was_set(void **state)
{
    uint64_t avail, total;

    assert_int_equal(et_fs_space("/", &avail, &total), -ENOENT);
    assert_int_equal(et_fake_fs_set_space("/", 1, 2, 0), 0);
    assert_int_equal(et_fs_space("/", &avail, &total), 0);
    assert_true(avail == 1 && total == 2);
    assert_int_equal(et_fake_fs_set_space("/", 0, 0, -EIO), 0); /* newest answer wins */
    assert_int_equal(et_fs_space("/", &avail, &total), -EIO);
}

static void i2c_register_maps_and_faults(void **state)
{
    const uint8_t regs[3] = { 0x11, 0x22, 0x33 };
    struct et_i2c *i2c;
    uint8_t buf[3];
    unsigned reads, writes;

    assert_int_equal(et_i2c_open(&i2c, 1, 0x40), -ENOENT); /* no bus */
    assert_int_equal(et_fake_i2c_add(1, 0x40), 0);
    assert_int_equal(et_fake_i2c_set_regs(1, 0x40, 0xFE, regs, 3), 0); /* wraps to 0x00 */
    assert_int_equal(et_i2c_open(&i2c, 1, 0x40), 0);
    assert_int_equal(et_i2c_read_reg(i2c, 0xFE, buf, 3), 0);
    assert_memory_equal(buf, regs, 3);
    assert_int_equal(et_i2c_write_reg(i2c, 0x10, regs, 2), 0);
    assert_int_equal(et_fake_i2c_get_regs(1, 0x40, 0x10, buf, 2), 0);
    assert_memory_equal(buf, regs, 2);
    assert_int_equal(et_fake_i2c_set_fault(1, 0x40, ET_FAKE_I2C_CORRUPT), 0);
    assert_int_equal(et_i2c_read_reg(i2c, 0x10, buf, 1), 0);
    assert_int_equal(buf[0], 0xEE);
    assert_int_equal(et_fake_i2c_set_fault(1, 0x40, ET_FAKE_I2C_NACK_READ), 0);
    assert_int_equal(et_i2c_read_reg(i2c, 0x10, buf, 1), -EREMOTEIO);
    assert_int_equal(et_i2c_write_reg(i2c, 0x10, regs, 1), 0);
    assert_int_equal(et_fake_i2c_set_fault(1, 0x40, ET_FAKE_I2C_ABSENT), 0);
    assert_int_equal(et_i2c_read_reg(i2c, 0x10, buf, 1), -ENXIO);
    assert_int_equal(et_i2c_write_reg(i2c, 0x10, regs, 1), -ENXIO);
    assert_int_equal(et_fake_i2c_counts(1, 0x40, &reads, &writes), 0);
    assert_int_equal(reads, 3);
    assert_int_equal(writes, 2);
    et_i2c_close(i2c);
    et_i2c_close(NULL);
    /* Another address on a bus that exists: opens, nobody answers. */
    assert_int_equal(et_i2c_open(&i2c, 1, 0x41), 0);
    assert_int_equal(et_i2c_read_reg(i2c, 0, buf, 1), -ENXIO);
    et_i2c_close(i2c);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup(clock_is_set_and_advanced, reset_fake),
        cmocka_unit_test_setup(files_come_from_the_root_or_memory, reset_fake),
        cmocka_unit_test_setup(space_answers_only_what_was_set, reset_fake),
        cmocka_unit_test_setup(i2c_register_maps_and_faults, reset_fake),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
