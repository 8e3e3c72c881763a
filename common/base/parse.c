#include "edgetel/parse.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/*
 * Read the run of decimal digits at *p into *out and move *p past it.
 * Returns -EINVAL when there is no digit, -ERANGE when it does not fit.
 * strtoull() is not used because it accepts signs and leading spaces.
 */
static int read_digits(const char **p, uint64_t *out)
{
    const char *s = *p;
    uint64_t v = 0;

    if (*s < '0' || *s > '9')
        return -EINVAL;
    for (; *s >= '0' && *s <= '9'; s++) {
        unsigned d = (unsigned)(*s - '0');

        if (v > (UINT64_MAX - d) / 10)
            return -ERANGE;
        v = v * 10 + d;
    }
    *p = s;
    *out = v;
    return 0;
}

struct unit {
    const char *name;
    uint64_t factor;
};

/* Longest names first so "ms" is not read as "m" followed by junk. */
static const struct unit duration_units[] = {
    { "ms", 1 },
    { "s", 1000 },
    { "m", 60 * 1000 },
    { "h", 60 * 60 * 1000 },
    { "d", 24 * 60 * 60 * 1000 },
};

static const struct unit *match_unit(const struct unit *units, size_t n, const char *s,
                                     size_t *len)
{
    for (size_t i = 0; i < n; i++) {
        size_t l = strlen(units[i].name);

        if (strncmp(s, units[i].name, l) == 0) {
            *len = l;
            return &units[i];
        }
    }
    return NULL;
}

int et_parse_duration_ms(const char *s, int64_t *out_ms)
{
    const char *p = s;
    uint64_t total = 0;
    int parts = 0;

    if (!s || !*s)
        return -EINVAL;
    while (*p) {
        const struct unit *u;
        uint64_t n;
        size_t ulen = 0;
        int rc = read_digits(&p, &n);

        if (rc)
            return rc;
        parts++;
        if (!*p) {
            /* A bare number is seconds, but only on its own: "1m30" is a typo. */
            if (parts > 1)
                return -EINVAL;
            u = &duration_units[1];
        } else {
            u = match_unit(duration_units, sizeof(duration_units) / sizeof(duration_units[0]),
                           p, &ulen);
            if (!u)
                return -EINVAL;
            p += ulen;
        }
        if (n > (uint64_t)INT64_MAX / u->factor)
            return -ERANGE;
        n *= u->factor;
        if (total > (uint64_t)INT64_MAX - n)
            return -ERANGE;
        total += n;
    }
    *out_ms = (int64_t)total;
    return 0;
}

int et_parse_size(const char *s, uint64_t *out)
{
    static const char multipliers[] = "kKMGT";
    const char *p = s;
    uint64_t n, factor = 1;
    int rc;

    if (!s)
        return -EINVAL;
    rc = read_digits(&p, &n);
    if (rc)
        return rc;
    if (*p && strchr(multipliers, *p)) {
        /* k and K are the same; "m" is not accepted so it is never read as milli. */
        int shift = *p == 'k' || *p == 'K' ? 10 : *p == 'M' ? 20 : *p == 'G' ? 30 : 40;

        factor = (uint64_t)1 << shift;
        p++;
        if (strcmp(p, "iB") == 0)
            p += 2;
    }
    if (strcmp(p, "B") == 0)
        p++;
    if (*p)
        return -EINVAL;
    if (n > UINT64_MAX / factor)
        return -ERANGE;
    *out = n * factor;
    return 0;
}

int et_parse_bool(const char *s, bool *out)
{
    static const char *const yes[] = { "true", "yes", "on", "1" };
    static const char *const no[] = { "false", "no", "off", "0" };

    if (!s)
        return -EINVAL;
    for (size_t i = 0; i < sizeof(yes) / sizeof(yes[0]); i++) {
        if (strcasecmp(s, yes[i]) == 0) {
            *out = true;
            return 0;
        }
        if (strcasecmp(s, no[i]) == 0) {
            *out = false;
            return 0;
        }
    }
    return -EINVAL;
}

int et_parse_int(const char *s, int64_t min, int64_t max, int64_t *out)
{
    const char *p = s;
    bool negative = false;
    uint64_t mag;
    int64_t v;
    int rc;

    if (!s)
        return -EINVAL;
    if (*p == '-') {
        negative = true;
        p++;
    }
    rc = read_digits(&p, &mag);
    if (rc)
        return rc;
    if (*p)
        return -EINVAL;
    if (negative) {
        /* -INT64_MIN does not exist as an int64, hence the unsigned bound. */
        if (mag > (uint64_t)INT64_MAX + 1)
            return -ERANGE;
        v = mag == (uint64_t)INT64_MAX + 1 ? INT64_MIN : -(int64_t)mag;
    } else {
        if (mag > (uint64_t)INT64_MAX)
            return -ERANGE;
        v = (int64_t)mag;
    }
    if (v < min || v > max)
        return -ERANGE;
    *out = v;
    return 0;
}

int et_format_duration_ms(int64_t ms, char *buf, size_t len)
{
    /* Largest unit first; "ms" is the fallback that always divides. */
    static const struct unit order[] = {
        { "d", 24 * 60 * 60 * 1000 },
        { "h", 60 * 60 * 1000 },
        { "m", 60 * 1000 },
        { "s", 1000 },
    };

    if (ms != 0) {
        for (size_t i = 0; i < sizeof(order) / sizeof(order[0]); i++) {
            if (ms % (int64_t)order[i].factor == 0)
                return snprintf(buf, len, "%" PRId64 "%s", ms / (int64_t)order[i].factor,
                                order[i].name);
        }
    }
    return snprintf(buf, len, "%" PRId64 "ms", ms);
}

int et_format_size(uint64_t bytes, char *buf, size_t len)
{
    static const char names[] = "TGMk";

    if (bytes != 0) {
        for (int i = 0; i < 4; i++) {
            unsigned shift = 40 - 10 * (unsigned)i;
            uint64_t mask = ((uint64_t)1 << shift) - 1;

            if ((bytes & mask) == 0)
                return snprintf(buf, len, "%" PRIu64 "%c", bytes >> shift, names[i]);
        }
    }
    return snprintf(buf, len, "%" PRIu64, bytes);
}

void et_list_free(char **items, size_t n)
{
    for (size_t i = 0; items && i < n; i++)
        free(items[i]);
    free(items);
}

int et_list_split(const char *list, size_t max, char ***items, size_t *n)
{
    char **out = NULL;
    size_t count = 0;
    const char *p = list;

    *items = NULL;
    *n = 0;
    if (!list || !*list)
        return 0;
    for (;;) {
        const char *end = strchr(p, ',');
        const char *stop = end ? end : p + strlen(p);
        char **grown;

        while (p < stop && (*p == ' ' || *p == '\t'))
            p++;
        while (stop > p && (stop[-1] == ' ' || stop[-1] == '\t'))
            stop--;
        if (stop == p || count == max) {
            et_list_free(out, count);
            return stop == p ? -EINVAL : -E2BIG;
        }
        grown = realloc(out, (count + 1) * sizeof(*out));
        if (!grown || !(grown[count] = strndup(p, (size_t)(stop - p)))) {
            et_list_free(grown ? grown : out, count);
            return -ENOMEM;
        }
        out = grown;
        count++;
        if (!end)
            break;
        p = end + 1;
    }
    *items = out;
    *n = count;
    return 0;
}
