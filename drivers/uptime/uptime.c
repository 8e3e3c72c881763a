/*
 * uptime: seconds since boot from /proc/uptime ("12345.67 45678.90": uptime,
 * then idle time summed over all CPUs).
 */
#include <errno.h>
#include <string.h>

#include "common.h"
#include "edgetel/platform.h"

#define UPTIME_PATH "/proc/uptime"

enum { UPTIME_SECONDS, UPTIME_N };

static const struct et_channel uptime_channels[] = {
    /* /proc/uptime gives hundredths */
    [UPTIME_SECONDS] = { .name = "seconds", .unit = "s", .type = ET_TYPE_F64,
                         .resolution = 0.01 },
};

struct uptime_priv {
    struct et_fs_file uptime;   /* kept open between rounds */
    double seconds;
    bool valid;
};

static int uptime_read(struct et_dev *dev, struct uptime_priv *out)
{
    char text[128];
    const char *p = text;
    ssize_t n;

    n = et_fs_reread(&out->uptime, text, sizeof(text));
    if (n < 0)
        return et_dev_fail(dev, (int)n, UPTIME_PATH ": %s", strerror((int)-n));
    if (!et_scan_f64(&p, &out->seconds) || (*p != ' ' && *p != '\n' && *p != '\0'))
        return et_dev_fail(dev, -ENODATA, UPTIME_PATH ": not \"<seconds> <idle seconds>\"");
    out->valid = true;
    return 0;
}

static int uptime_probe(struct et_dev *dev, const void *params)
{
    struct uptime_priv *p = dev->priv;
    int ret;

    p->uptime.path = UPTIME_PATH;
    ret = uptime_read(dev, p);
    if (ret)
        et_fs_file_close(&p->uptime);   /* a failed probe is not removed */

    if (ret == -ENOENT || ret == -ENODATA)
        return -ENODEV;
    return ret;
}

static int uptime_fetch(struct et_dev *dev)
{
    struct uptime_priv *p = dev->priv;

    p->valid = false;
    return uptime_read(dev, p);
}

static int uptime_get(struct et_dev *dev, unsigned ch, struct et_value *out)
{
    struct uptime_priv *p = dev->priv;

    if (ch >= UPTIME_N)
        return -EINVAL;
    if (!p->valid)
        return et_dev_fail(dev, -ENODATA, UPTIME_PATH ": no reading this round");
    *out = et_value_f64(p->seconds);
    return 0;
}

static void uptime_remove(struct et_dev *dev)
{
    struct uptime_priv *p = dev->priv;

    et_fs_file_close(&p->uptime);
}

const struct et_driver et_driver_uptime = {
    .name = "uptime",
    .help = "seconds since boot (/proc/uptime)",
    .priv_size = sizeof(struct uptime_priv),
    .channels = uptime_channels,
    .n_channels = UPTIME_N,
    .probe = uptime_probe,
    .fetch = uptime_fetch,
    .get = uptime_get,
    .remove = uptime_remove,
};
