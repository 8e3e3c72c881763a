/*
 * Fake files: reads come from a fixture directory laid out like the root of
 * a real board (<root>/proc/stat, <root>/sys/class/thermal/...), or from
 * in-memory files a test (or a fuzz target) sets; free space comes from a
 * table the test fills.
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
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "edgetel/platform.h"
#include "et_fake.h"

struct fake_file {
    struct fake_file *next;
    char *path;
    char *data;
    size_t len;
    int err;
};

struct fake_space {
    struct fake_space *next;
    char *path;
    uint64_t avail;
    uint64_t total;
    int err;
};

/* Everything the fake file system answers from. */
static struct {
    char root[PATH_MAX];        /* "" when unset: every path is absent */
    struct fake_file *files;    /* in-memory files, newest first */
    struct fake_space *spaces;  /* et_fs_space answers */
} fake_fs;

int et_fake_fs_set_root(const char *dir)
{
    if (!dir) {
        fake_fs.root[0] = '\0';
        return 0;
    }
    if (strlen(dir) >= sizeof(fake_fs.root))
        return -ENAMETOOLONG;
    strcpy(fake_fs.root, dir);
    return 0;
}

static struct fake_file *find_file(const char *path)
{
    for (struct fake_file *f = fake_fs.files; f; f = f->next)
        if (strcmp(f->path, path) == 0)
            return f;
    return NULL;
}

int et_fake_fs_set_file(const char *path, const void *data, size_t len, int err)
{
    struct fake_file *f = find_file(path);
    char *copy;

    copy = malloc(len + 1);
    if (!copy)
        return -ENOMEM;
    if (len)
        memcpy(copy, data, len);
    copy[len] = '\0';
    if (!f) {
        f = calloc(1, sizeof(*f));
        if (!f)
            goto err_copy;
        f->path = strdup(path);
        if (!f->path)
            goto err_file;
        f->next = fake_fs.files;
        fake_fs.files = f;
    } else {
        free(f->data);
    }
    f->data = copy;
    f->len = len;
    f->err = err;
    return 0;

err_file:
    free(f);
err_copy:
    free(copy);
    return -ENOMEM;
}

int et_fake_fs_set_space(const char *path, uint64_t avail, uint64_t total, int err)
{
    struct fake_space *s = calloc(1, sizeof(*s));

    if (!s)
        return -ENOMEM;
    s->path = strdup(path);
    if (!s->path) {
        free(s);
        return -ENOMEM;
    }
    s->avail = avail;
    s->total = total;
    s->err = err;
    s->next = fake_fs.spaces;
    fake_fs.spaces = s;
    return 0;
}

void et_fake_fs_reset(void)
{
    while (fake_fs.files) {
        struct fake_file *f = fake_fs.files;

        fake_fs.files = f->next;
        free(f->path);
        free(f->data);
        free(f);
    }
    while (fake_fs.spaces) {
        struct fake_space *s = fake_fs.spaces;

        fake_fs.spaces = s->next;
        free(s->path);
        free(s);
    }
    fake_fs.root[0] = '\0';
}

/* Map an absolute board path into the fixture root. */
static int map_path(const char *path, char *out, size_t cap)
{
    int n;

    if (fake_fs.root[0] == '\0' || path[0] != '/')
        return -ENOENT;
    n = snprintf(out, cap, "%s%s", fake_fs.root, path);
    if (n < 0 || (size_t)n >= cap)
        return -ENAMETOOLONG;
    return 0;
}

ssize_t et_fs_read(const char *path, char *buf, size_t cap)
{
    struct fake_file *f = find_file(path);
    char real[PATH_MAX];
    size_t len = 0;
    ssize_t ret;
    int fd;

    if (cap == 0)
        return -EINVAL;
    if (f) {
        if (f->err < 0)
            return f->err;
        len = f->len < cap - 1 ? f->len : cap - 1;
        memcpy(buf, f->data, len);
        buf[len] = '\0';
        return f->len > cap - 1 ? -EFBIG : (ssize_t)len;
    }
    ret = map_path(path, real, sizeof(real));
    if (ret < 0)
        return ret;
    fd = open(real, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -errno;
    while (len < cap - 1) {
        ssize_t n = read(fd, buf + len, cap - 1 - len);

        if (n < 0) {
            ret = -errno;
            goto out_close;
        }
        if (n == 0)
            break;
        len += (size_t)n;
    }
    buf[len] = '\0';
    ret = (ssize_t)len;
    if (len == cap - 1) {
        char probe;

        if (read(fd, &probe, 1) > 0)
            ret = -EFBIG;
    }
out_close:
    close(fd);
    return ret;
}

/* The fake platform keeps nothing open: each read goes through its map. */
ssize_t et_fs_reread(struct et_fs_file *f, char *buf, size_t cap)
{
    f->open = true;
    return et_fs_read(f->path, buf, cap);
}

void et_fs_file_close(struct et_fs_file *f)
{
    f->open = false;
}

static int count_numeric(void *ctx, const char *name)
{
    const char *c = name;

    while (*c >= '0' && *c <= '9')
        c++;
    *(uint64_t *)ctx += *c == '\0' && c != name;
    return 0;
}

int et_fs_count_numeric(struct et_fs_file *f, uint64_t *count)
{
    *count = 0;
    f->open = true;
    return et_fs_list(f->path, count_numeric, count);
}

int et_fs_list(const char *dir, int (*fn)(void *ctx, const char *name), void *ctx)
{
    char real[PATH_MAX];
    struct dirent *de;
    DIR *d;
    int ret;

    ret = map_path(dir, real, sizeof(real));
    if (ret < 0)
        return ret;
    d = opendir(real);
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
    for (struct fake_space *s = fake_fs.spaces; s; s = s->next) {
        if (strcmp(s->path, path) != 0)
            continue;
        if (s->err < 0)
            return s->err;
        *avail = s->avail;
        *total = s->total;
        return 0;
    }
    return -ENOENT;
}
