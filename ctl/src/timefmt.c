/*
 * Operator-facing time parsing and formatting. See timefmt.h.
 */
#include "edgetel/timefmt.h"

#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "edgetel/parse.h"

/* Read exactly n digits at *p; advance past them. */
static bool digits(const char **p, int n, int *out)
{
    int v = 0;

    for (int i = 0; i < n; i++) {
        if (!isdigit((unsigned char)(*p)[i]))
            return false;
        v = v * 10 + ((*p)[i] - '0');
    }
    *p += n;
    *out = v;
    return true;
}

static bool leap(int y)
{
    return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
}

static int days_in_month(int y, int m)
{
    static const int days[] = { 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31 };

    return m == 2 && leap(y) ? 29 : days[m - 1];
}

static int iso_fail(const char *s, char *why, size_t whylen, const char *what)
{
    snprintf(why, whylen, "time \"%.64s\": %s (expected ISO 8601 like "
             "2026-11-22T16:05:00Z, or relative like -10m)", s, what);
    return -EINVAL;
}

static int parse_iso(const char *s, int64_t *out_ms, char *why, size_t whylen)
{
    const char *p = s;
    int y, mo, d, h = 0, mi = 0, sec = 0, ms = 0, oh = 0, om = 0, sign = 0;
    struct tm tm;
    time_t t;

    if (!digits(&p, 4, &y) || *p++ != '-' || !digits(&p, 2, &mo) || *p++ != '-' ||
        !digits(&p, 2, &d))
        return iso_fail(s, why, whylen, "no date YYYY-MM-DD");
    if (mo < 1 || mo > 12 || d < 1 || d > days_in_month(y, mo))
        return iso_fail(s, why, whylen, "no such date");
    if (*p == 'T' || *p == 't' || *p == ' ') {
        p++;
        if (!digits(&p, 2, &h) || *p++ != ':' || !digits(&p, 2, &mi))
            return iso_fail(s, why, whylen, "expected HH:MM after the date");
        if (*p == ':') {
            p++;
            if (!digits(&p, 2, &sec))
                return iso_fail(s, why, whylen, "expected two digits of seconds");
            if (*p == '.' || *p == ',') {
                int scale = 100;

                p++;
                if (!isdigit((unsigned char)*p))
                    return iso_fail(s, why, whylen, "expected digits after the decimal point");
                /* Milliseconds; finer digits are read and dropped. */
                for (; isdigit((unsigned char)*p); p++) {
                    ms += (*p - '0') * scale;
                    scale /= 10;
                }
            }
        }
        if (h > 23 || mi > 59 || sec > 60)
            return iso_fail(s, why, whylen, "no such time of day");
        if (sec == 60)
            sec = 59;   /* a leap second: epoch time has none */
    }
    if (*p == 'Z' || *p == 'z') {
        p++;
    } else if (*p == '+' || *p == '-') {
        sign = *p++ == '-' ? -1 : 1;
        if (!digits(&p, 2, &oh))
            return iso_fail(s, why, whylen, "expected an offset like +01:00");
        if (*p == ':')
            p++;
        if (*p && !digits(&p, 2, &om))
            return iso_fail(s, why, whylen, "expected an offset like +01:00");
        if (oh > 23 || om > 59)
            return iso_fail(s, why, whylen, "no such UTC offset");
    }
    if (*p)
        return iso_fail(s, why, whylen, "unexpected text at the end");

    memset(&tm, 0, sizeof(tm));
    tm.tm_year = y - 1900;
    tm.tm_mon = mo - 1;
    tm.tm_mday = d;
    tm.tm_hour = h;
    tm.tm_min = mi;
    tm.tm_sec = sec;
    t = timegm(&tm);
    *out_ms = (int64_t)t * 1000 + ms - (int64_t)sign * (oh * 3600 + om * 60) * 1000;
    return 0;
}

int et_time_parse(const char *s, int64_t now_ms, int64_t *out_ms, char *why, size_t whylen)
{
    int64_t d;
    int rc;

    if (!s || !*s)
        return iso_fail("", why, whylen, "empty");
    if (strcmp(s, "now") == 0) {
        *out_ms = now_ms;
        return 0;
    }
    if (s[0] == '-') {
        rc = et_parse_duration_ms(s + 1, &d);
        if (rc < 0 || __builtin_sub_overflow(now_ms, d, out_ms)) {
            snprintf(why, whylen, "time \"%.64s\": expected a duration after '-', like -10m, "
                     "-1h30m or -2d", s);
            return -EINVAL;
        }
        return 0;
    }
    return parse_iso(s, out_ms, why, whylen);
}

int et_time_format_iso(int64_t ms, char *buf, size_t len)
{
    int64_t sec = ms / 1000, frac = ms % 1000;
    struct tm tm;
    time_t t;

    if (frac < 0) {
        frac += 1000;
        sec -= 1;
    }
    t = (time_t)sec;
    if (!gmtime_r(&t, &tm))
        return snprintf(buf, len, "@%" PRId64 "ms", ms);
    if (frac)
        return snprintf(buf, len, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900,
                        tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, (int)frac);
    return snprintf(buf, len, "%04d-%02d-%02dT%02d:%02d:%02dZ", tm.tm_year + 1900,
                    tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec);
}

int et_time_format_age(int64_t age_ms, char *buf, size_t len)
{
    bool future = age_ms < 0;
    uint64_t s = (future ? (uint64_t)0 - (uint64_t)age_ms : (uint64_t)age_ms) / 1000;
    char span[32];

    if (s == 0)
        return snprintf(buf, len, "just now");
    if (s < 60)
        snprintf(span, sizeof(span), "%" PRIu64 "s", s);
    else if (s < 3600)
        snprintf(span, sizeof(span), "%" PRIu64 "m", s / 60);
    else if (s < 86400)
        snprintf(span, sizeof(span), "%" PRIu64 "h %" PRIu64 "m", s / 3600, s % 3600 / 60);
    else
        snprintf(span, sizeof(span), "%" PRIu64 "d %" PRIu64 "h", s / 86400, s % 86400 / 3600);
    return future ? snprintf(buf, len, "in %s", span) : snprintf(buf, len, "%s ago", span);
}
