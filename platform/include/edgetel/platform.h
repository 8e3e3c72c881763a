/*
 * The platform seam: everything edgetel asks of the operating system and
 * the board that a test must be able to replace. platform/linux/ defines
 * these functions for real; platform/fake/ defines the same symbols over a
 * fixture directory, an in-memory register map and a settable clock. The
 * choice is made at link time (et_platform_linux or et_platform_fake), never
 * with #ifdef in core code.
 */
#ifndef EDGETEL_PLATFORM_H
#define EDGETEL_PLATFORM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/* ---- time ------------------------------------------------------------ */

/** Milliseconds of CLOCK_BOOTTIME: monotonic, counts suspend, never jumps. */
int64_t et_time_mono_ms(void);

/** Milliseconds since the Unix epoch (CLOCK_REALTIME; may jump). */
int64_t et_time_wall_ms(void);

/**
 * Whether the kernel says the wall clock is synchronised (adjtimex():
 * STA_UNSYNC clear and the call not returning TIME_ERROR).
 */
bool et_time_synced(void);

/** The kernel's boot id (16 bytes); all zero when it cannot be read. */
void et_time_boot_id(uint8_t out[16]);

/* ---- files (procfs, sysfs) ------------------------------------------- */

/**
 * Read a whole small file (procfs, sysfs) into buf, NUL-terminated.
 * @return bytes read (>= 0) or -errno. A file longer than cap-1 bytes is
 *         cut at cap-1 and returns -EFBIG.
 */
ssize_t et_fs_read(const char *path, char *buf, size_t cap);

/*
 * A procfs or sysfs file a driver reads every round, kept open between
 * reads: one pread() from its start instead of open, read, read to EOF and
 * close, which is most of what reading a small /proc file costs. Zeroed
 * (in a driver's priv) it is closed; path is borrowed and must outlive it.
 */
struct et_fs_file {
    const char *path;
    int fd;
    bool open;
};

/**
 * Read f's file whole again, as et_fs_read() does: opened at the first
 * call, and again once when a read of the open one fails (a device that
 * went and came back). procfs and sysfs fill a read as far as the file
 * goes, so one read that leaves room in buf is the whole file.
 */
ssize_t et_fs_reread(struct et_fs_file *f, char *buf, size_t cap);

/** Close f's file (a no-op when it is not open). */
void et_fs_file_close(struct et_fs_file *f);

/**
 * How many entries of the directory f names are all digits (/proc: one per
 * process), with the directory kept open between calls and read in large
 * pieces. 0 or -errno.
 */
int et_fs_count_numeric(struct et_fs_file *f, uint64_t *count);

/**
 * Call fn for each entry name of a directory (not "." or ".."), in no set
 * order. Stops early when fn returns non-zero and returns that value.
 * @return 0, fn's non-zero value, or -errno when the directory cannot be read.
 */
int et_fs_list(const char *dir, int (*fn)(void *ctx, const char *name), void *ctx);

/** Free and total bytes of the filesystem holding path (statvfs, f_bavail). */
int et_fs_space(const char *path, uint64_t *avail, uint64_t *total);

/* ---- memory ------------------------------------------------------------ */

/**
 * Give back what start-up touched once and steady work does not need:
 * free heap to the system (malloc_trim), and the code pages of the
 * program and its libraries from the resident set (they stay in the page
 * cache; what runs again is mapped again at its next touch). A static
 * agent's TLS, config and start-up code would otherwise stay resident
 * for its whole life: most of its resident set.
 */
void et_mem_trim(void);

/* ---- I2C (i2c-dev) ---------------------------------------------------- */

struct et_i2c;

/** Open bus N (/dev/i2c-N) for the 7-bit address addr. */
int et_i2c_open(struct et_i2c **out, int bus, uint16_t addr);

/** Write reg, then read len bytes (one combined I2C_RDWR transfer). */
int et_i2c_read_reg(struct et_i2c *i2c, uint8_t reg, uint8_t *buf, size_t len);

/** Write reg followed by len bytes. */
int et_i2c_write_reg(struct et_i2c *i2c, uint8_t reg, const uint8_t *buf, size_t len);

void et_i2c_close(struct et_i2c *i2c);

#endif
