/*
 * Small filesystems to fill up: a size-limited tmpfs mounted on a
 * directory of the test, in a mount namespace private to the test process
 * and the programs it starts. Nothing is mounted where the rest of the
 * machine sees it, and every mount goes when the last of those processes
 * exits, even after a crash.
 *
 *   et_test_private_mounts(why, sizeof(why))     once, before any child starts
 *   et_test_smallfs_mount(&fs, dir, 16 << 20, log)
 *   et_test_smallfs_fill(fs, &bytes)              the disk is full (ENOSPC)
 *   et_test_smallfs_free(fs)                      and has room again
 *   et_test_smallfs_destroy(fs, keep_dir)         copy what it holds, unmount
 *
 * A full tmpfs is what a full SD card is to a program: write() and
 * fallocate() fail with ENOSPC, while space a file already has can still
 * be written over (SQLite reuses its WAL in place), so a program feels the
 * full disk when its files must grow.
 */
#ifndef EDGETEL_TEST_SMALLFS_H
#define EDGETEL_TEST_SMALLFS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/**
 * Move the test process into a mount namespace of its own, every mount in
 * it private. Call before starting the programs that must see the mounts
 * (they inherit the namespace). Needs CAP_SYS_ADMIN; returns 0, or -errno
 * with a sentence in why for a skip.
 */
int et_test_private_mounts(char *why, size_t why_len);

struct et_test_smallfs;

/**
 * Mount a tmpfs of bytes (rounded up to pages) on dir, made if missing
 * and expected empty. mount's output goes to log_path. Returns 0 or -errno.
 */
int et_test_smallfs_mount(struct et_test_smallfs **out, const char *dir, uint64_t bytes,
                          const char *log_path);

/**
 * Fill it: write a file (".filler") until the filesystem says ENOSPC.
 * Returns 0 with the bytes the filler took in *written (may be NULL), or
 * -errno for any other failure.
 */
int et_test_smallfs_fill(struct et_test_smallfs *fs, uint64_t *written);

/** Remove the filler: the room it took is free again. 0 or -errno. */
int et_test_smallfs_free(struct et_test_smallfs *fs);

/** Whether the filler is in place. */
bool et_test_smallfs_filled(const struct et_test_smallfs *fs);

/** Bytes free on it now (statvfs), or -errno. */
int64_t et_test_smallfs_avail(const struct et_test_smallfs *fs);

/**
 * Remove the filler, copy what the filesystem holds into keep_dir when
 * keep_dir is not NULL (for a failed test, whose directory is kept), and
 * unmount it. The processes using it must have stopped. NULL is a no-op.
 */
void et_test_smallfs_destroy(struct et_test_smallfs *fs, const char *keep_dir);

#endif
