/*
 * Test controls of the fake platform (platform/fake/). Tests link
 * et_platform_fake instead of et_platform_linux; the functions of
 * edgetel/platform.h then read from a fixture directory, a settable clock and
 * in-memory I2C register maps that these calls set up.
 *
 * The fake holds its state in one static struct per file: it stands in for
 * the one operating system a process has, so it is process-wide by nature.
 * It is not thread-safe; a test sets it up before starting threads. Call
 * et_fake_reset() between test cases.
 */
#ifndef EDGETEL_FAKE_H
#define EDGETEL_FAKE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/** Forget every fixture root, in-memory file, clock setting and I2C device. */
void et_fake_reset(void);

/* ---- time ------------------------------------------------------------ */

/** Set the monotonic and wall clocks (ms) and whether the clock is synced. */
void et_fake_time_set(int64_t mono_ms, int64_t wall_ms, bool synced);

/** Move both clocks forward by ms (negative moves them back). */
void et_fake_time_advance(int64_t ms);

/** Set the boot id et_time_boot_id() returns (16 bytes, copied). */
void et_fake_time_set_boot_id(const uint8_t id[16]);

/** Forget the clock state: both clocks 0, unsynced, boot id all zero. */
void et_fake_time_reset(void);

/* ---- files ------------------------------------------------------------ */

/**
 * Serve et_fs_read() and et_fs_list() from the fixture directory dir: the
 * path /proc/stat is read from <dir>/proc/stat. dir is copied; NULL makes
 * every path absent (-ENOENT).
 * @return 0, -ENAMETOOLONG.
 */
int et_fake_fs_set_root(const char *dir);

/**
 * Serve path from memory instead of the root (len bytes of data, copied).
 * With err < 0, reading path fails with err instead. An in-memory file takes
 * precedence over the fixture root; it does not appear in et_fs_list().
 * @return 0 or -ENOMEM.
 */
int et_fake_fs_set_file(const char *path, const void *data, size_t len, int err);

/**
 * What et_fs_space(path) answers for exactly this path: avail and total, or
 * err when err < 0. Paths never set answer -ENOENT.
 * @return 0 or -ENOMEM.
 */
int et_fake_fs_set_space(const char *path, uint64_t avail, uint64_t total, int err);

/** Drop the root, in-memory files and space answers. */
void et_fake_fs_reset(void);

/* ---- I2C -------------------------------------------------------------- */

enum et_fake_i2c_fault {
    ET_FAKE_I2C_OK = 0,
    ET_FAKE_I2C_ABSENT,     /* nobody answers the address: transfers give -ENXIO */
    ET_FAKE_I2C_NACK_READ,  /* reads give -EREMOTEIO, writes work */
    ET_FAKE_I2C_CORRUPT,    /* reads succeed but every byte comes back inverted */
};

/**
 * Called after a register write lands in the map, so a test can model a
 * chip (a forced measurement that returns to sleep, a soft reset).
 * regs is the device's 256-byte map.
 */
typedef void (*et_fake_i2c_write_hook)(void *ctx, uint8_t regs[256], uint8_t reg,
                                       const uint8_t *data, size_t len);

/**
 * Put a device on bus at addr with an all-zero register map. Opening a bus
 * with no device on it fails with -ENOENT, as a missing /dev/i2c-N does; an
 * address without a device on an existing bus opens, then transfers fail
 * with -ENXIO.
 * @return 0, -ENOSPC when the fake's device table is full.
 */
int et_fake_i2c_add(int bus, uint16_t addr);

/** Set len registers from reg on (register addresses wrap at 256). */
int et_fake_i2c_set_regs(int bus, uint16_t addr, uint8_t reg, const uint8_t *data, size_t len);

/** Copy len registers from reg out of the map. */
int et_fake_i2c_get_regs(int bus, uint16_t addr, uint8_t reg, uint8_t *data, size_t len);

int et_fake_i2c_set_fault(int bus, uint16_t addr, enum et_fake_i2c_fault fault);

int et_fake_i2c_set_write_hook(int bus, uint16_t addr, et_fake_i2c_write_hook hook, void *ctx);

/** How many read and write transfers the device has seen (either may be NULL). */
int et_fake_i2c_counts(int bus, uint16_t addr, unsigned *reads, unsigned *writes);

/** Remove every I2C device. */
void et_fake_i2c_reset(void);

#endif
