/*
 * disk: free space of each mounted filesystem that holds data, from the
 * mount table (/proc/self/mounts) and statvfs through et_fs_space().
 *
 * Pseudo and memory-backed filesystems (proc, sysfs, tmpfs, cgroup, ...) are
 * skipped, and so is a second mount of the same device (bind mounts, or
 * docker's view of the root), so every disk is counted once. The set of
 * mounts is fixed at probe; a mount that goes away later reports no data.
 * Per mount, named after the mount point ("/" is "root", "/boot/firmware"
 * is "boot_firmware"):
 *   <mount>.avail     bytes an unprivileged user can still write (f_bavail)
 *   <mount>.total     size in bytes
 *   <mount>.used_pct  100 * (total - avail) / total; counts the blocks
 *                     reserved for root as used, as df's Use% does
 * Param `mounts`: comma-separated mount points to report (default: all).
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "common.h"
#include "edgetel/platform.h"

#define MOUNTS_PATH "/proc/self/mounts"
#define MOUNTS_CAP 65536

enum { DISK_AVAIL, DISK_TOTAL, DISK_USED_PCT, DISK_N };

struct disk_mount {
    char *path;
    uint64_t avail;
    uint64_t total;
    bool valid;
};

struct disk_priv {
    struct et_chan_table chans;
    struct disk_mount *mounts;
    size_t n_mounts;
};

/* What the config gives probe (driver.h). */
struct disk_params {
    char *mounts;
};

static const struct et_key disk_keys[] = {
    { "mounts", ET_KEY_LIST, ET_KEY_FIELD(struct disk_params, mounts), NULL,
      .help = "mount points to report, e.g. /, /boot/firmware (default: every disk)" },
};

/* Filesystems that hold no user data, or only RAM. */
static const char *const pseudo_fs[] = {
    "autofs", "binfmt_misc", "bpf", "cgroup", "cgroup2", "configfs", "debugfs", "devpts",
    "devtmpfs", "efivarfs", "fusectl", "fuse.gvfsd-fuse", "fuse.portal", "hugetlbfs",
    "mqueue", "nsfs", "overlay", "proc", "pstore", "ramfs", "rpc_pipefs", "securityfs",
    "selinuxfs", "squashfs", "sysfs", "tmpfs", "tracefs",
};

static bool is_pseudo(const char *fstype)
{
    for (size_t i = 0; i < sizeof(pseudo_fs) / sizeof(pseudo_fs[0]); i++)
        if (strcmp(fstype, pseudo_fs[i]) == 0)
            return true;
    return false;
}

/* The mount table escapes space, tab, newline and backslash as \ooo. */
static void unescape_octal(char *s)
{
    char *out = s;

    for (char *in = s; *in; in++) {
        if (in[0] == '\\' && in[1] >= '0' && in[1] <= '3' && in[2] >= '0' && in[2] <= '7' &&
            in[3] >= '0' && in[3] <= '7') {
            *out++ = (char)((in[1] - '0') * 64 + (in[2] - '0') * 8 + (in[3] - '0'));
            in += 3;
        } else {
            *out++ = *in;
        }
    }
    *out = '\0';
}

/* "/" is "root"; "/boot/firmware" is "boot_firmware" (cut to fit out). */
static void mount_label(const char *path, char *out, size_t cap)
{
    const char *src = strcmp(path, "/") == 0 ? "root" : path[0] == '/' ? path + 1 : path;
    size_t len = strlen(src);

    if (len >= cap)
        len = cap - 1;
    memcpy(out, src, len);
    out[len] = '\0';
    et_name_sanitize(out);
}

static void disk_remove(struct et_dev *dev)
{
    struct disk_priv *p = dev->priv;

    for (size_t i = 0; i < p->n_mounts; i++)
        free(p->mounts[i].path);
    free(p->mounts);
    et_chans_free(&p->chans);
    memset(p, 0, sizeof(*p));
}

static int add_mount(struct disk_priv *p, const char *path)
{
    static const char *const names[DISK_N] = { "avail", "total", "used_pct" };
    struct disk_mount *grown;
    char label[96];
    int ret;

    grown = realloc(p->mounts, (p->n_mounts + 1) * sizeof(*grown));
    if (!grown)
        return -ENOMEM;
    p->mounts = grown;
    memset(&p->mounts[p->n_mounts], 0, sizeof(p->mounts[0]));
    p->mounts[p->n_mounts].path = strdup(path);
    if (!p->mounts[p->n_mounts].path)
        return -ENOMEM;
    p->n_mounts++;
    mount_label(path, label, sizeof(label));
    for (size_t c = 0; c < DISK_N; c++) {
        ret = et_chans_add(&p->chans, c == DISK_USED_PCT ? "%" : "By",
                           c == DISK_USED_PCT ? ET_TYPE_F64 : ET_TYPE_I64, "%s.%s", label,
                           names[c]);
        if (ret < 0)
            return ret;
        /* Filesystems count in blocks of 4 KiB or a multiple (one that does
         * not still travels exactly, as a typed value). */
        p->chans.ch[ret].resolution = c == DISK_USED_PCT ? 0.01 : 4096;
    }
    return 0;
}

/* Whether an earlier accepted line mounted the same device or mount point. */
static bool seen_before(const char *text, const char *upto, const char *device,
                        const char *path)
{
    const char *cursor = text;
    const char *line;
    size_t len;

    while ((line = et_next_line(&cursor, &len)) != NULL && line < upto) {
        char dev[256], mnt[256], fstype[64];
        const char *q = line;

        if (!et_scan_word(&q, dev, sizeof(dev)) || !et_scan_word(&q, mnt, sizeof(mnt)) ||
            !et_scan_word(&q, fstype, sizeof(fstype)) || is_pseudo(fstype))
            continue;
        unescape_octal(mnt);
        if (strcmp(mnt, path) == 0 || (device[0] == '/' && strcmp(dev, device) == 0))
            return true;
    }
    return false;
}

static int disk_probe(struct et_dev *dev, const void *params)
{
    const struct disk_params *prm = params;
    struct disk_priv *p = dev->priv;
    const char *list = prm->mounts;
    const char *cursor;
    const char *line;
    char *text;
    size_t len;
    ssize_t n;
    int ret;

    text = malloc(MOUNTS_CAP);
    if (!text)
        return -ENOMEM;
    n = et_fs_read(MOUNTS_PATH, text, MOUNTS_CAP);
    if (n < 0 && n != -EFBIG) {
        ret = et_dev_fail(dev, n == -ENOENT ? -ENODEV : (int)n, MOUNTS_PATH ": %s",
                          strerror((int)-n));
        goto out;
    }
    cursor = text;
    while ((line = et_next_line(&cursor, &len)) != NULL) {
        char device[256], path[256], fstype[64];
        const char *q = line;

        if (!et_scan_word(&q, device, sizeof(device)) || !et_scan_word(&q, path, sizeof(path)) ||
            !et_scan_word(&q, fstype, sizeof(fstype)) || is_pseudo(fstype))
            continue;
        unescape_octal(path);
        if ((list && !et_list_has(list, path)) || seen_before(text, line, device, path))
            continue;
        ret = add_mount(p, path);
        if (ret < 0)
            goto out;
    }
    if (p->n_mounts == 0) {
        ret = list ? et_dev_fail(dev, -ENODEV, "none of the mounts \"%s\" is mounted", list)
                   : et_dev_fail(dev, -ENODEV, MOUNTS_PATH ": no disk filesystem mounted");
        goto out;
    }
    et_chans_attach(&p->chans, dev);
    ret = 0;
out:
    free(text);
    if (ret < 0)
        disk_remove(dev);
    return ret;
}

static int disk_fetch(struct et_dev *dev)
{
    struct disk_priv *p = dev->priv;

    for (size_t i = 0; i < p->n_mounts; i++) {
        struct disk_mount *m = &p->mounts[i];

        m->valid = et_fs_space(m->path, &m->avail, &m->total) == 0 && m->total > 0 &&
                   m->avail <= m->total && m->total <= INT64_MAX;
    }
    return 0;
}

static int disk_get(struct et_dev *dev, unsigned ch, struct et_value *out)
{
    struct disk_priv *p = dev->priv;
    const struct disk_mount *m;

    if (ch >= p->chans.n)
        return -EINVAL;
    m = &p->mounts[ch / DISK_N];
    if (!m->valid)
        return et_dev_fail(dev, -ENODATA, "%s: no free-space answer (unmounted?)", m->path);
    switch (ch % DISK_N) {
    case DISK_AVAIL:
        *out = et_value_i64((int64_t)m->avail);
        break;
    case DISK_TOTAL:
        *out = et_value_i64((int64_t)m->total);
        break;
    default:
        *out = et_value_f64(100.0 * (double)(m->total - m->avail) / (double)m->total);
        break;
    }
    return 0;
}

const struct et_driver et_driver_disk = {
    .name = "disk",
    .help = "free and total bytes of each mounted disk filesystem",
    .priv_size = sizeof(struct disk_priv),
    .params = disk_keys,
    .n_params = sizeof(disk_keys) / sizeof(disk_keys[0]),
    .params_size = sizeof(struct disk_params),
    .probe = disk_probe,
    .fetch = disk_fetch,
    .get = disk_get,
    .remove = disk_remove,
};
