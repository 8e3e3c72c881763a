/*
 * Size-limited tmpfs mounts in a private mount namespace. See smallfs.h.
 */
#define _GNU_SOURCE
#include "smallfs.h"

#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include "proc.h"

#define SMALLFS_FILLER ".filler"
#define SMALLFS_CHUNK (64 * 1024)
#define SMALLFS_PAGE 4096
#define SMALLFS_CMD_TIMEOUT_MS 30000

struct et_test_smallfs {
    char *dir;
    char *filler;
    char *log_path;
    bool filled;
};

int et_test_private_mounts(char *why, size_t why_len)
{
    if (unshare(CLONE_NEWNS) != 0) {
        int err = errno;

        snprintf(why, why_len, "cannot make a private mount namespace: unshare: %s%s",
                 strerror(err), err == EPERM ? " (it needs root)" : "");
        return -err;
    }
    /* Mounts made from here on must not propagate back to the machine's
     * namespace, whatever the propagation of / was there. */
    if (mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) != 0) {
        int err = errno;

        snprintf(why, why_len, "cannot make the mounts private: %s", strerror(err));
        return -err;
    }
    why[0] = '\0';
    return 0;
}

int et_test_smallfs_mount(struct et_test_smallfs **out, const char *dir, uint64_t bytes,
                          const char *log_path)
{
    struct et_test_smallfs *fs;
    char opts[64];
    int rc = -ENOMEM;

    *out = NULL;
    if (mkdir(dir, 0700) != 0 && errno != EEXIST)
        return -errno;
    fs = calloc(1, sizeof(*fs));
    if (!fs)
        return -ENOMEM;
    fs->dir = strdup(dir);
    fs->log_path = strdup(log_path);
    if (!fs->dir || !fs->log_path || asprintf(&fs->filler, "%s/" SMALLFS_FILLER, dir) < 0) {
        fs->filler = NULL;
        goto fail;
    }
    /* Mode 0700: the data directory of an agent that checks its own. */
    snprintf(opts, sizeof(opts), "size=%llu,mode=0700", (unsigned long long)bytes);
    if (mount("edgetel-test", dir, "tmpfs", MS_NOSUID | MS_NODEV, opts) != 0) {
        rc = -errno;
        fprintf(stderr, "smallfs: mount tmpfs (%s) on %s: %s\n", opts, dir, strerror(-rc));
        goto fail;
    }
    *out = fs;
    return 0;
fail:
    free(fs->dir);
    free(fs->log_path);
    free(fs->filler);
    free(fs);
    return rc;
}

/* Write chunks of size until the filesystem refuses one. */
static int write_until_full(int fd, const char *buf, size_t size, uint64_t *written)
{
    for (;;) {
        ssize_t n = write(fd, buf, size);

        if (n > 0) {
            *written += (uint64_t)n;
            continue;
        }
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && errno == ENOSPC)
            return 0;
        return n < 0 ? -errno : -EIO;
    }
}

int et_test_smallfs_fill(struct et_test_smallfs *fs, uint64_t *written)
{
    static const char zeros[SMALLFS_CHUNK];
    uint64_t total = 0;
    int fd;
    int rc;

    fd = open(fs->filler, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
    if (fd < 0)
        return -errno;
    fs->filled = true;
    /* Large chunks first, then pages: the last pages of room go too. */
    rc = write_until_full(fd, zeros, SMALLFS_CHUNK, &total);
    if (rc == 0)
        rc = write_until_full(fd, zeros, SMALLFS_PAGE, &total);
    if (close(fd) != 0 && rc == 0 && errno != ENOSPC)
        rc = -errno;
    if (written)
        *written = total;
    return rc;
}

int et_test_smallfs_free(struct et_test_smallfs *fs)
{
    if (unlink(fs->filler) != 0 && errno != ENOENT)
        return -errno;
    fs->filled = false;
    return 0;
}

bool et_test_smallfs_filled(const struct et_test_smallfs *fs)
{
    return fs->filled;
}

int64_t et_test_smallfs_avail(const struct et_test_smallfs *fs)
{
    struct statvfs st;

    if (statvfs(fs->dir, &st) != 0)
        return -errno;
    return (int64_t)st.f_bavail * (int64_t)st.f_frsize;
}

void et_test_smallfs_destroy(struct et_test_smallfs *fs, const char *keep_dir)
{
    if (!fs)
        return;
    et_test_smallfs_free(fs);
    if (keep_dir) {
        char *from = NULL;

        /* cp -a DIR/. KEEP: the contents, hidden files too. */
        if (mkdir(keep_dir, 0700) == 0 || errno == EEXIST) {
            if (asprintf(&from, "%s/.", fs->dir) >= 0 &&
                et_test_run(fs->log_path,
                            (const char *const[]){ "cp", "-a", from, keep_dir, NULL },
                            SMALLFS_CMD_TIMEOUT_MS) == 0)
                fprintf(stderr, "smallfs: kept what %s held in %s\n", fs->dir, keep_dir);
            else
                fprintf(stderr, "smallfs: cannot copy %s to %s (see %s)\n", fs->dir, keep_dir,
                        fs->log_path);
        }
        free(from);
    }
    if (umount2(fs->dir, MNT_DETACH) != 0)
        fprintf(stderr, "smallfs: umount %s: %s\n", fs->dir, strerror(errno));
    free(fs->dir);
    free(fs->filler);
    free(fs->log_path);
    free(fs);
}
