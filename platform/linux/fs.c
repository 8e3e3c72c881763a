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
#include <sys/syscall.h>
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

ssize_t et_fs_reread(struct et_fs_file *f, char *buf, size_t cap)
{
    ssize_t n;

    if (cap == 0)
        return -EINVAL;
    for (int attempt = 0; attempt < 2; attempt++) {
        if (!f->open) {
            f->fd = open(f->path, O_RDONLY | O_CLOEXEC);
            if (f->fd < 0)
                return -errno;
            f->open = true;
        }
        do {
            n = pread(f->fd, buf, cap - 1, 0);
        } while (n < 0 && errno == EINTR);
        if (n >= 0)
            break;
        n = -errno;
        et_fs_file_close(f);
    }
    if (n < 0)
        return n;
    buf[n] = '\0';
    if ((size_t)n == cap - 1) {
        char probe;
        ssize_t more;

        do {
            more = pread(f->fd, &probe, 1, n);
        } while (more < 0 && errno == EINTR);
        if (more > 0)
            return -EFBIG;
    }
    return n;
}

void et_fs_file_close(struct et_fs_file *f)
{
    if (f->open)
        close(f->fd);
    f->open = false;
}

int et_fs_count_numeric(struct et_fs_file *f, uint64_t *count)
{
    /* Large enough that /proc of a board is one or two calls. */
    char buf[32768] __attribute__((aligned(8)));
    uint64_t n = 0;
    long got;

    if (!f->open) {
        f->fd = open(f->path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (f->fd < 0)
            return -errno;
        f->open = true;
    } else if (lseek(f->fd, 0, SEEK_SET) < 0) {
        int ret = -errno;

        et_fs_file_close(f);
        return ret;
    }
    while ((got = syscall(SYS_getdents64, f->fd, buf, sizeof(buf))) > 0) {
        for (long at = 0; at < got;) {
            const struct linux_dirent64 {
                uint64_t d_ino;
                int64_t d_off;
                unsigned short d_reclen;
                unsigned char d_type;
                char d_name[];
            } *de = (const void *)(buf + at);
            const char *c = de->d_name;

            while (*c >= '0' && *c <= '9')
                c++;
            n += *c == '\0' && c != de->d_name;
            at += de->d_reclen;
        }
    }
    if (got < 0) {
        int ret = -errno;

        et_fs_file_close(f);
        return ret;
    }
    *count = n;
    return 0;
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
