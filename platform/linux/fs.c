/*
 * Small-file reads, directory listings and free space, for procfs and sysfs.
 */
/*
 * 64-bit file offsets and inode numbers on 32-bit ARM (armhf): without them
 * readdir() and statvfs() fail with EOVERFLOW on filesystems whose inode or
 * block numbers do not fit in 32 bits. Must come before any #include.
 */
#define _FILE_OFFSET_BITS 64

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include "edgetel/platform.h"

ssize_t et_fs_read(const char *path, char *buf, size_t cap)
{
    size_t len = 0;
    int fd;
    int ret;

    if (cap == 0)
        return -EINVAL;
    fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -errno;
    /* procfs hands files out in pieces: read until EOF or the buffer is full. */
    while (len < cap - 1) {
        ssize_t n = read(fd, buf + len, cap - 1 - len);

        if (n < 0) {
            if (errno == EINTR)
                continue;
            ret = -errno;
            goto out_close;
        }
        if (n == 0)
            break;
        len += (size_t)n;
    }
    buf[len] = '\0';
    ret = 0;
    if (len == cap - 1) {
        char probe;
        ssize_t n;

        do {
            n = read(fd, &probe, 1);
        } while (n < 0 && errno == EINTR);
        if (n > 0)
            ret = -EFBIG;
    }
out_close:
    close(fd);
    return ret < 0 ? ret : (ssize_t)len;
}

int et_fs_list(const char *dir, int (*fn)(void *ctx, const char *name), void *ctx)
{
    DIR *d;
    struct dirent *de;
    int ret = 0;

    d = opendir(dir);
    if (!d)
        return -errno;
    while ((de = readdir(d)) != NULL) {
        if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
            continue;
        ret = fn(ctx, de->d_name);
        if (ret != 0)
            break;
    }
    closedir(d);
    return ret;
}

int et_fs_space(const char *path, uint64_t *avail, uint64_t *total)
{
    struct statvfs st;

    if (statvfs(path, &st) < 0)
        return -errno;
    *avail = (uint64_t)st.f_bavail * st.f_frsize;
    *total = (uint64_t)st.f_blocks * st.f_frsize;
    return 0;
}
