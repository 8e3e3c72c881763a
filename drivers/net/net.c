/*
 * net: cumulative traffic counters per network interface from
 * /proc/net/dev. Counters, not rates, as diskio. The loopback interface is
 * skipped unless named in `interfaces`; the interface set is fixed at probe
 * and an interface that disappears (a USB modem unplugged) reports no data.
 * Per interface ("eth0.100" becomes "eth0_100"):
 *   <if>.rx_bytes  rx_packets  rx_errors  rx_drops
 *   <if>.tx_bytes  tx_packets  tx_errors  tx_drops
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common.h"
#include "edgetel/platform.h"

#define NETDEV_PATH "/proc/net/dev"
#define NETDEV_CAP 32768

enum { NET_N = 8 };

static const char *const net_names[NET_N] = {
    "rx_bytes", "rx_packets", "rx_errors", "rx_drops",
    "tx_bytes", "tx_packets", "tx_errors", "tx_drops",
};
static const char *const net_units[NET_N] = { "By", "1", "1", "1", "By", "1", "1", "1" };
/* Column of each channel among the 16 numbers of a /proc/net/dev line. */
static const unsigned net_column[NET_N] = { 0, 1, 2, 3, 8, 9, 10, 11 };

struct net_if {
    char name[32];
    int64_t v[NET_N];
    bool valid;
};

struct net_priv {
    struct et_chan_table chans;
    struct net_if *ifs;
    size_t n_ifs;
    struct et_fs_file netdev;   /* kept open between rounds (fetch) */
};

/* What the config gives probe (driver.h). */
struct net_params {
    char *interfaces;
};

static const struct et_key net_keys[] = {
    { "interfaces", ET_KEY_LIST, ET_KEY_FIELD(struct net_params, interfaces), NULL,
      .help = "interfaces, e.g. eth0, wlan0 (default: all but lo)" },
};

/* "  eth0: 1 2 3 ..." -> name and the 16 counters. */
static bool parse_line(const char *line, size_t len, char *name, size_t cap, uint64_t f[16])
{
    const char *colon = memchr(line, ':', len);
    const char *start = line;
    const char *q;
    size_t n;

    if (!colon)
        return false;
    while (start < colon && *start == ' ')
        start++;
    n = (size_t)(colon - start);
    if (n == 0 || n >= cap)
        return false;
    memcpy(name, start, n);
    name[n] = '\0';
    q = colon + 1;
    for (size_t i = 0; i < 16; i++)
        if (!et_scan_u64(&q, &f[i]))
            return false;
    return true;
}

static void net_remove(struct et_dev *dev)
{
    struct net_priv *p = dev->priv;

    free(p->ifs);
    et_fs_file_close(&p->netdev);
    et_chans_free(&p->chans);
    memset(p, 0, sizeof(*p));
}

static int net_probe(struct et_dev *dev, const void *params)
{
    const struct net_params *prm = params;
    struct net_priv *p = dev->priv;
    const char *list = prm->interfaces;
    const char *cursor;
    const char *line;
    char *text;
    size_t len;
    ssize_t n;
    int ret = 0;

    text = malloc(NETDEV_CAP);
    if (!text)
        return -ENOMEM;
    n = et_fs_read(NETDEV_PATH, text, NETDEV_CAP);
    if (n < 0 && n != -EFBIG) {
        ret = et_dev_fail(dev, n == -ENOENT ? -ENODEV : (int)n, NETDEV_PATH ": %s",
                          strerror((int)-n));
        goto out;
    }
    cursor = text;
    while ((line = et_next_line(&cursor, &len)) != NULL) {
        struct net_if *grown;
        uint64_t f[16];
        char name[32];

        if (!parse_line(line, len, name, sizeof(name), f))
            continue; /* the two header lines */
        if (list ? !et_list_has(list, name) : strcmp(name, "lo") == 0)
            continue;
        grown = realloc(p->ifs, (p->n_ifs + 1) * sizeof(*grown));
        if (!grown) {
            ret = -ENOMEM;
            goto out;
        }
        p->ifs = grown;
        memset(&p->ifs[p->n_ifs], 0, sizeof(p->ifs[0]));
        snprintf(p->ifs[p->n_ifs].name, sizeof(p->ifs[0].name), "%s", name);
        p->n_ifs++;
        et_name_sanitize(name);
        for (size_t c = 0; c < NET_N; c++) {
            ret = et_chans_add(&p->chans, net_units[c], ET_TYPE_I64, "%s.%s", name, net_names[c]);
            if (ret < 0)
                goto out;
        }
        ret = 0;
    }
    if (p->n_ifs == 0) {
        ret = list ? et_dev_fail(dev, -ENODEV, "none of the interfaces \"%s\" exists", list)
                   : et_dev_fail(dev, -ENODEV, NETDEV_PATH ": no interface besides lo");
        goto out;
    }
    et_chans_attach(&p->chans, dev);
out:
    free(text);
    if (ret < 0)
        net_remove(dev);
    return ret;
}

static int net_fetch(struct et_dev *dev)
{
    struct net_priv *p = dev->priv;
    const char *cursor;
    const char *line;
    char *text;
    size_t len;
    ssize_t n;
    int ret = 0;

    for (size_t i = 0; i < p->n_ifs; i++)
        p->ifs[i].valid = false;
    text = malloc(NETDEV_CAP);
    if (!text)
        return -ENOMEM;
    p->netdev.path = NETDEV_PATH;
    n = et_fs_reread(&p->netdev, text, NETDEV_CAP);
    if (n < 0 && n != -EFBIG) {
        ret = et_dev_fail(dev, (int)n, NETDEV_PATH ": %s", strerror((int)-n));
        goto out;
    }
    cursor = text;
    while ((line = et_next_line(&cursor, &len)) != NULL) {
        uint64_t f[16];
        char name[32];

        if (!parse_line(line, len, name, sizeof(name), f))
            continue;
        for (size_t i = 0; i < p->n_ifs; i++) {
            struct net_if *nif = &p->ifs[i];
            bool fits = true;

            if (strcmp(nif->name, name) != 0)
                continue;
            for (size_t c = 0; c < NET_N; c++)
                fits = fits && f[net_column[c]] <= INT64_MAX;
            if (!fits)
                break;
            for (size_t c = 0; c < NET_N; c++)
                nif->v[c] = (int64_t)f[net_column[c]];
            nif->valid = true;
            break;
        }
    }
out:
    free(text);
    return ret;
}

static int net_get(struct et_dev *dev, unsigned ch, struct et_value *out)
{
    struct net_priv *p = dev->priv;
    const struct net_if *nif;

    if (ch >= p->chans.n)
        return -EINVAL;
    nif = &p->ifs[ch / NET_N];
    if (!nif->valid)
        return et_dev_fail(dev, -ENODATA, "%s: not in " NETDEV_PATH " (interface gone?)",
                           nif->name);
    *out = et_value_i64(nif->v[ch % NET_N]);
    return 0;
}

const struct et_driver et_driver_net = {
    .name = "net",
    .help = "bytes, packets, errors and drops in and out per network interface (/proc/net/dev)",
    .priv_size = sizeof(struct net_priv),
    .params = net_keys,
    .n_params = sizeof(net_keys) / sizeof(net_keys[0]),
    .params_size = sizeof(struct net_params),
    .probe = net_probe,
    .fetch = net_fetch,
    .get = net_get,
    .remove = net_remove,
};
