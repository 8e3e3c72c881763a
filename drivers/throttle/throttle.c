/*
 * throttle: the Raspberry Pi firmware's under-voltage and throttling flags,
 * as `vcgencmd get_throttled` shows them, from the sysfs attribute
 * get_throttled of the firmware node (a hex word, e.g. "50005"):
 *   bit 0 under_voltage     bit 16 under_voltage_occurred
 *   bit 1 freq_capped       bit 17 freq_capped_occurred
 *   bit 2 throttled         bit 18 throttled_occurred
 *   bit 3 soft_temp_limit   bit 19 soft_temp_limit_occurred
 * The "occurred" bits are sticky since boot.
 *
 * The node is /sys/devices/platform/soc/soc:firmware on Pi 0-4 and
 * soc@107c000000/soc@107c000000:firmware on Pi 5, so probe looks for
 * <x>/<x>:firmware/get_throttled for every soc* entry. Boards without that
 * firmware (or kernels without the attribute) get -ENODEV with the reason.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "common.h"
#include "edgetel/platform.h"

#define PLATFORM_DIR "/sys/devices/platform"

enum {
    TH_RAW, TH_UNDER_VOLTAGE, TH_FREQ_CAPPED, TH_THROTTLED, TH_SOFT_TEMP_LIMIT,
    TH_UNDER_VOLTAGE_OCCURRED, TH_FREQ_CAPPED_OCCURRED, TH_THROTTLED_OCCURRED,
    TH_SOFT_TEMP_LIMIT_OCCURRED, TH_N
};

static const struct et_channel throttle_channels[] = {
    [TH_RAW] = { .name = "raw", .unit = "1", .type = ET_TYPE_I64 },
    [TH_UNDER_VOLTAGE] = { .name = "under_voltage", .unit = "1", .type = ET_TYPE_BOOL },
    [TH_FREQ_CAPPED] = { .name = "freq_capped", .unit = "1", .type = ET_TYPE_BOOL },
    [TH_THROTTLED] = { .name = "throttled", .unit = "1", .type = ET_TYPE_BOOL },
    [TH_SOFT_TEMP_LIMIT] = { .name = "soft_temp_limit", .unit = "1", .type = ET_TYPE_BOOL },
    [TH_UNDER_VOLTAGE_OCCURRED] = { .name = "under_voltage_occurred", .unit = "1", .type = ET_TYPE_BOOL },
    [TH_FREQ_CAPPED_OCCURRED] = { .name = "freq_capped_occurred", .unit = "1", .type = ET_TYPE_BOOL },
    [TH_THROTTLED_OCCURRED] = { .name = "throttled_occurred", .unit = "1", .type = ET_TYPE_BOOL },
    [TH_SOFT_TEMP_LIMIT_OCCURRED] = { .name = "soft_temp_limit_occurred", .unit = "1", .type = ET_TYPE_BOOL },
};

/* Bit of each boolean channel. */
static const unsigned throttle_bit[TH_N] = {
    [TH_UNDER_VOLTAGE] = 0, [TH_FREQ_CAPPED] = 1, [TH_THROTTLED] = 2,
    [TH_SOFT_TEMP_LIMIT] = 3, [TH_UNDER_VOLTAGE_OCCURRED] = 16,
    [TH_FREQ_CAPPED_OCCURRED] = 17, [TH_THROTTLED_OCCURRED] = 18,
    [TH_SOFT_TEMP_LIMIT_OCCURRED] = 19,
};

struct throttle_priv {
    char path[160];
    uint32_t word;
    bool valid;
};

struct find_ctx {
    struct throttle_priv *p;
};

static int try_soc(void *ctx, const char *name)
{
    struct find_ctx *c = ctx;
    char text[32];
    int n;

    if (strncmp(name, "soc", 3) != 0)
        return 0;
    n = snprintf(c->p->path, sizeof(c->p->path), PLATFORM_DIR "/%s/%s:firmware/get_throttled",
                 name, name);
    if (n < 0 || (size_t)n >= sizeof(c->p->path))
        return 0;
    return et_fs_read(c->p->path, text, sizeof(text)) >= 0 ? 1 : 0;
}

/* Parse the attribute: hex digits, optionally "0x", then a newline. */
static int parse_word(const char *text, uint32_t *out)
{
    const char *p = text;
    uint64_t v = 0;
    size_t digits = 0;

    if (p[0] == '0' && (p[1] == 'x' || p[1] == 'X'))
        p += 2;
    for (; *p; p++, digits++) {
        int d;

        if (*p >= '0' && *p <= '9')
            d = *p - '0';
        else if (*p >= 'a' && *p <= 'f')
            d = *p - 'a' + 10;
        else if (*p >= 'A' && *p <= 'F')
            d = *p - 'A' + 10;
        else
            break;
        v = v * 16 + (uint64_t)d;
        if (v > UINT32_MAX)
            return -ERANGE;
    }
    while (*p == '\n' || *p == ' ')
        p++;
    if (digits == 0 || *p != '\0')
        return -EINVAL;
    *out = (uint32_t)v;
    return 0;
}

static int throttle_read(struct et_dev *dev)
{
    struct throttle_priv *p = dev->priv;
    char text[32];
    ssize_t n;

    p->valid = false;
    n = et_fs_read(p->path, text, sizeof(text));
    if (n < 0)
        return et_dev_fail(dev, (int)n, "%s: %s", p->path, strerror((int)-n));
    if (parse_word(text, &p->word) < 0)
        return et_dev_fail(dev, -ENODATA, "%s: \"%.16s\" is not a hex word", p->path, text);
    p->valid = true;
    return 0;
}

static int throttle_probe(struct et_dev *dev, const void *params)
{
    struct throttle_priv *p = dev->priv;
    struct find_ctx ctx = { .p = p };
    int ret;

    ret = et_fs_list(PLATFORM_DIR, try_soc, &ctx);
    if (ret != 1)
        return et_dev_fail(dev, -ENODEV,
                           "no Raspberry Pi firmware get_throttled attribute under "
                           PLATFORM_DIR " (not a Raspberry Pi, or the kernel lacks it)");
    ret = throttle_read(dev);
    return ret == -ENODATA ? -ENODEV : ret;
}

static int throttle_fetch(struct et_dev *dev)
{
    return throttle_read(dev);
}

static int throttle_get(struct et_dev *dev, unsigned ch, struct et_value *out)
{
    struct throttle_priv *p = dev->priv;

    if (ch >= TH_N)
        return -EINVAL;
    if (!p->valid)
        return et_dev_fail(dev, -ENODATA, "%s: no reading this round", p->path);
    if (ch == TH_RAW)
        *out = et_value_i64(p->word);
    else
        *out = et_value_bool((p->word >> throttle_bit[ch]) & 1u);
    return 0;
}

const struct et_driver et_driver_throttle = {
    .name = "throttle",
    .help = "Raspberry Pi under-voltage and throttling flags (firmware get_throttled)",
    .priv_size = sizeof(struct throttle_priv),
    .channels = throttle_channels,
    .n_channels = TH_N,
    .probe = throttle_probe,
    .fetch = throttle_fetch,
    .get = throttle_get,
};
