/*
 * The rules of pushed configuration that the relay and edgetelctl share:
 * which config a device should run, whether it is behind, its groups as
 * stored, results for a person. See config_relay.h.
 */
#include "edgetel/config_relay.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "edgetel/codec.h"
#include "edgetel/text.h"

/* Keep the newest desired config seen so far. */
static int keep_newest(void *ctx, const struct et_store_desired *d)
{
    struct et_config_desired *best = ctx;

    if (d->version > best->version) {
        best->version = d->version;
        best->kind = d->kind;
        snprintf(best->target, sizeof(best->target), "%s", d->target);
    }
    return 0;
}

/* The newest desired config of one target into best; none is no error. */
static int offer(struct et_store_config *sc, enum et_config_target kind, const char *target,
                 struct et_config_desired *best)
{
    int ret = et_store_desired_latest(sc, kind, target, keep_newest, best);

    return ret == -ENOENT ? 0 : ret;
}

int et_config_desired_for(struct et_store_config *sc, const char *device, const char *groups,
                          struct et_config_desired *out)
{
    char group[ET_DEVICE_ID_MAX + 1];
    const char *p = groups ? groups : "";
    int ret;

    memset(out, 0, sizeof(*out));
    ret = offer(sc, ET_CONFIG_TARGET_DEVICE, device, out);
    while (ret == 0 && *p) {
        size_t n = strcspn(p, ",");

        /* A stored list is canonical; a longer name is no group of ours. */
        if (n > 0 && n < sizeof(group)) {
            memcpy(group, p, n);
            group[n] = '\0';
            ret = offer(sc, ET_CONFIG_TARGET_GROUP, group, out);
        }
        p += n + (p[n] == ',');
    }
    return ret;
}

bool et_config_behind(uint64_t desired, uint64_t running,
                      const struct et_store_config_report *rep)
{
    if (desired == 0 || desired <= running)
        return false;
    return !(rep && rep->version == desired &&
             (rep->result == ET_CONFIG_RESULT_REJECTED ||
              rep->result == ET_CONFIG_RESULT_REVERTED));
}

const char *et_config_state(uint64_t desired, uint64_t running,
                            const struct et_store_config_report *rep)
{
    if (!desired)
        return "-";
    if (running >= desired)
        return "up to date";
    return et_config_behind(desired, running, rep) ? "pending" : "refused";
}

static int by_name(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

int et_config_groups_canonical(const char *const *groups, size_t n, char *out, size_t outlen,
                               char *why, size_t whylen)
{
    const char *sorted[ET_STORE_CONFIG_GROUPS_MAX];
    size_t used = 0;

    if (outlen == 0)
        return -EINVAL;
    out[0] = '\0';
    if (n > ET_STORE_CONFIG_GROUPS_MAX)
        return et_text_reason(why, whylen, -EINVAL, "%zu groups, at most %d", n,
                              ET_STORE_CONFIG_GROUPS_MAX);
    for (size_t i = 0; i < n; i++) {
        if (!et_device_id_valid(groups[i]))
            return et_text_reason(why, whylen, -EINVAL, "group %zu \"%.64s\" is not a name "
                                  "(1-64 of A-Z a-z 0-9 . _ -, not starting with .)", i + 1,
                                  groups[i] ? groups[i] : "");
        sorted[i] = groups[i];
    }
    qsort(sorted, n, sizeof(sorted[0]), by_name);
    for (size_t i = 0; i < n; i++) {
        int w;

        if (i > 0 && strcmp(sorted[i], sorted[i - 1]) == 0)
            continue;
        w = snprintf(out + used, outlen - used, "%s%s", used ? "," : "", sorted[i]);
        if (w < 0 || (size_t)w >= outlen - used)
            return et_text_reason(why, whylen, -EINVAL, "groups too long to keep");
        used += (size_t)w;
    }
    return 0;
}

const char *et_config_result_name(int result)
{
    switch (result) {
    case ET_CONFIG_RESULT_APPLIED:
        return "applied";
    case ET_CONFIG_RESULT_COMMITTED:
        return "committed";
    case ET_CONFIG_RESULT_REJECTED:
        return "rejected";
    case ET_CONFIG_RESULT_REVERTED:
        return "reverted";
    default:
        return "-";
    }
}
