/*
 * Typed key tables (keys.h): parsing a value's text into its member,
 * defaults, freeing, and describing a key for a person. Values go through
 * the parsers of edgetel/parse.h, so a config file's own keys and a
 * driver's keys accept the same forms and are refused in the same words.
 */
#include "edgetel/keys.h"

#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "edgetel/log.h"
#include "edgetel/parse.h"

const char *et_key_quote(const char *s, char *buf, size_t len)
{
    size_t n = strlen(s), i;
    bool cut = n >= len && len >= 4;

    if (!len)
        return buf;
    if (n >= len)
        n = cut ? len - 4 : len - 1;
    for (i = 0; i < n; i++)
        buf[i] = iscntrl((unsigned char)s[i]) ? '?' : s[i];
    if (cut) {
        memcpy(buf + i, "...", 3);
        i += 3;
    }
    buf[i] = '\0';
    return buf;
}

static void append(char *buf, size_t len, size_t *used, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* snprintf at the end of what buf holds; *used counts what did not fit too.
 * Like every writer of why here it takes a NULL buf of length 0. */
static void append(char *buf, size_t len, size_t *used, const char *fmt, ...)
{
    va_list ap;
    int n;

    va_start(ap, fmt);
    n = vsnprintf(*used < len ? buf + *used : NULL, *used < len ? len - *used : 0, fmt, ap);
    va_end(ap);
    if (n > 0)
        *used += (size_t)n;
}

static int bad_value(const struct et_key *k, const char *value, char *why, size_t whylen,
                     const char *fmt, ...) __attribute__((format(printf, 5, 6)));

/* "NAME \"VALUE\": " then the reason; -EINVAL. */
static int bad_value(const struct et_key *k, const char *value, char *why, size_t whylen,
                     const char *fmt, ...)
{
    char q[ET_KEY_QUOTE_BUF];
    size_t used = 0;
    va_list ap;

    append(why, whylen, &used, "%s \"%s\": ", k->name, et_key_quote(value, q, sizeof(q)));
    if (used >= whylen)
        return -EINVAL;
    va_start(ap, fmt);
    vsnprintf(why + used, whylen - used, fmt, ap);
    va_end(ap);
    return -EINVAL;
}

static bool has_range(const struct et_key *k)
{
    return k->min < k->max;
}

/* A bound written the way the key's value is read. */
static void format_bound(const struct et_key *k, int64_t v, char *buf, size_t len)
{
    if (k->type == ET_KEY_DURATION)
        et_format_duration_ms(v, buf, len);
    else if (k->type == ET_KEY_SIZE)
        et_format_size((uint64_t)v, buf, len);
    else if (k->type == ET_KEY_INT && k->hex && v >= 0)
        snprintf(buf, len, "0x%02" PRIx64, (uint64_t)v);
    else
        snprintf(buf, len, "%" PRId64, v);
}

/* Outside [lo, hi], or, for a type without bounds, past what it can hold. */
static int range_error(const struct et_key *k, int64_t lo, int64_t hi, bool bounded,
                       const char *value, char *why, size_t whylen)
{
    char a[32], b[32];

    if (!bounded)
        return bad_value(k, value, why, whylen, "too large");
    format_bound(k, lo, a, sizeof(a));
    format_bound(k, hi, b, sizeof(b));
    return bad_value(k, value, why, whylen, "must be between %s and %s", a, b);
}

static int bad_table(const struct et_key *k, char *why, size_t whylen, const char *what)
{
    snprintf(why, whylen, "%s: internal error: %s", k->name, what);
    return -EINVAL;
}

size_t et_key_member_size(const struct et_key *k)
{
    switch (k->type) {
    case ET_KEY_STRING:
    case ET_KEY_LIST:      return sizeof(char *);
    case ET_KEY_INT:
        return k->size == 1 || k->size == 2 || k->size == 4 || k->size == 8 ? k->size : 0;
    case ET_KEY_NUMBER:    return sizeof(double);
    case ET_KEY_DURATION:  return sizeof(int64_t);
    case ET_KEY_SIZE:      return sizeof(uint64_t);
    case ET_KEY_BOOL:      return sizeof(bool);
    case ET_KEY_LOG_LEVEL: return sizeof(enum et_log_level);
    case ET_KEY_ENUM:      return sizeof(int);
    }
    return 0;
}

/* The ranges of integer members of 1, 2, 4 and 8 bytes; unsigned 8-byte
 * members stop at INT64_MAX, as values are int64_t on their way in. */
static const int64_t smin[] = { INT8_MIN, INT16_MIN, INT32_MIN, INT64_MIN };
static const int64_t smax[] = { INT8_MAX, INT16_MAX, INT32_MAX, INT64_MAX };
static const int64_t umax[] = { UINT8_MAX, UINT16_MAX, UINT32_MAX, INT64_MAX };

/* Index of an integer member's size in those tables. */
static int width(size_t size)
{
    return size == 1 ? 0 : size == 2 ? 1 : size == 4 ? 2 : 3;
}

/*
 * The range an INT value must lie in: the table's, or without one the
 * signed range of the member. The row must have passed et_key_check().
 */
static void int_bounds(const struct et_key *k, int64_t *lo, int64_t *hi, bool *is_unsigned)
{
    int w = width(k->size);

    *lo = has_range(k) ? k->min : smin[w];
    *hi = has_range(k) ? k->max : smax[w];
    *is_unsigned = has_range(k) && k->min >= 0;
}

int et_key_check(const struct et_key *k, char *why, size_t whylen)
{
    char what[96];
    int w;

    if (k->type == ET_KEY_INT && !et_key_member_size(k)) {
        snprintf(what, sizeof(what), "an integer member of %zu bytes", k->size);
        return bad_table(k, why, whylen, what);
    }
    if (k->size != et_key_member_size(k)) {
        snprintf(what, sizeof(what), "member of %zu bytes, the type writes %zu", k->size,
                 et_key_member_size(k));
        return bad_table(k, why, whylen, what);
    }
    if (k->type != ET_KEY_INT || !has_range(k))
        return 0;
    /* A wrong range would silently store a truncated value. */
    w = width(k->size);
    if (k->min >= 0 ? k->max > umax[w] : (k->min < smin[w] || k->max > smax[w])) {
        snprintf(what, sizeof(what), "range [%" PRId64 ", %" PRId64 "] does not fit a %zu-byte "
                 "member", k->min, k->max, k->size);
        return bad_table(k, why, whylen, what);
    }
    return 0;
}

static void store_int(void *field, size_t size, int64_t v, bool is_unsigned)
{
    switch (size) {
    case 1:
        if (is_unsigned)
            *(uint8_t *)field = (uint8_t)v;
        else
            *(int8_t *)field = (int8_t)v;
        break;
    case 2:
        if (is_unsigned)
            *(uint16_t *)field = (uint16_t)v;
        else
            *(int16_t *)field = (int16_t)v;
        break;
    case 4:
        if (is_unsigned)
            *(uint32_t *)field = (uint32_t)v;
        else
            *(int32_t *)field = (int32_t)v;
        break;
    default:
        *(int64_t *)field = v;
        break;
    }
}

static int set_int(const struct et_key *k, void *field, const char *value, char *why,
                   size_t whylen)
{
    int64_t v, lo, hi;
    bool is_unsigned;
    int rc;

    int_bounds(k, &lo, &hi, &is_unsigned);
    if (k->hex) {
        /* C notation as strtoll reads it: 0x hex, a leading 0 octal, else decimal. */
        char *end;
        long long ll;

        errno = 0;
        ll = strtoll(value, &end, 0);
        if (end == value || *end != '\0')
            return bad_value(k, value, why, whylen, "expected a whole number (0x for hex)");
        rc = errno == ERANGE || ll < lo || ll > hi ? -ERANGE : 0;
        v = ll;
    } else {
        rc = et_parse_int(value, lo, hi, &v);
        if (rc && rc != -ERANGE)
            return bad_value(k, value, why, whylen, "expected a whole number");
    }
    if (rc)
        return range_error(k, lo, hi, true, value, why, whylen);
    store_int(field, k->size, v, is_unsigned);
    return 0;
}

static int set_number(const struct et_key *k, double *field, const char *value, char *why,
                      size_t whylen)
{
    char *end;
    double v;

    errno = 0;
    v = strtod(value, &end);
    if (end == value || *end != '\0' || errno == ERANGE || !isfinite(v))
        return bad_value(k, value, why, whylen, "expected a number");
    if (has_range(k) && (v < (double)k->min || v > (double)k->max))
        return range_error(k, k->min, k->max, true, value, why, whylen);
    *field = v;
    return 0;
}

static int set_text(const struct et_key *k, char **field, const char *value, char *why,
                    size_t whylen)
{
    const char *expected = k->check ? k->check(value) : NULL;
    char *copy;

    if (expected)
        return bad_value(k, value, why, whylen, "expected %s", expected);
    copy = strdup(value);
    if (!copy) {
        snprintf(why, whylen, "%s: out of memory", k->name);
        return -ENOMEM;
    }
    free(*field);
    *field = copy;
    return 0;
}

static int set_enum(const struct et_key *k, int *field, const char *value, char *why,
                    size_t whylen)
{
    char q[ET_KEY_QUOTE_BUF];
    size_t used = 0;

    for (int i = 0; k->choices && k->choices[i]; i++) {
        if (strcmp(value, k->choices[i]) == 0) {
            *field = i;
            return 0;
        }
    }
    append(why, whylen, &used, "%s \"%s\": expected one of", k->name,
           et_key_quote(value, q, sizeof(q)));
    for (int i = 0; k->choices && k->choices[i]; i++)
        append(why, whylen, &used, "%s %s", i ? "," : "", k->choices[i]);
    return -EINVAL;
}

int et_key_set(const struct et_key *k, void *obj, const char *value, char *why, size_t whylen)
{
    char *field = (char *)obj + k->offset;
    int64_t ms;
    uint64_t bytes;
    enum et_log_level level;
    int rc;

    rc = et_key_check(k, why, whylen);
    if (rc)
        return rc;
    switch (k->type) {
    case ET_KEY_STRING:
    case ET_KEY_LIST:
        return set_text(k, (char **)field, value, why, whylen);
    case ET_KEY_INT:
        return set_int(k, field, value, why, whylen);
    case ET_KEY_NUMBER:
        return set_number(k, (double *)field, value, why, whylen);
    case ET_KEY_DURATION:
        rc = et_parse_duration_ms(value, &ms);
        if (rc == -ERANGE || (rc == 0 && has_range(k) && (ms < k->min || ms > k->max)))
            return range_error(k, k->min, k->max, has_range(k), value, why, whylen);
        if (rc)
            return bad_value(k, value, why, whylen, "expected a duration like 10s");
        *(int64_t *)field = ms;
        return 0;
    case ET_KEY_SIZE:
        rc = et_parse_size(value, &bytes);
        if (rc == -ERANGE ||
            (rc == 0 && has_range(k) && (bytes < (uint64_t)k->min || bytes > (uint64_t)k->max)))
            return range_error(k, k->min, k->max, has_range(k), value, why, whylen);
        if (rc)
            return bad_value(k, value, why, whylen, "expected a size like 64k");
        *(uint64_t *)field = bytes;
        return 0;
    case ET_KEY_BOOL:
        if (et_parse_bool(value, (bool *)field))
            return bad_value(k, value, why, whylen, "expected true or false");
        return 0;
    case ET_KEY_LOG_LEVEL:
        if (et_log_parse_level(value, &level))
            return bad_value(k, value, why, whylen, "expected error, warn, info or debug");
        *(enum et_log_level *)field = level;
        return 0;
    case ET_KEY_ENUM:
        return set_enum(k, (int *)field, value, why, whylen);
    }
    snprintf(why, whylen, "%s: internal error: unknown type %d", k->name, (int)k->type);
    return -EINVAL;
}

int et_keys_set_defaults(const struct et_key *keys, size_t n, void *obj, char *why,
                         size_t whylen)
{
    for (size_t i = 0; i < n; i++) {
        const struct et_key *k = &keys[i];
        int rc = k->def ? et_key_set(k, obj, k->def, why, whylen) : et_key_check(k, why, whylen);

        if (rc)
            return rc;
        if (k->def)
            continue;
        if (k->type == ET_KEY_STRING || k->type == ET_KEY_LIST) {
            char **field = (char **)((char *)obj + k->offset);

            free(*field);
            *field = NULL;
        } else {
            memset((char *)obj + k->offset, 0, k->size);
        }
    }
    return 0;
}

void et_keys_free_strings(const struct et_key *keys, size_t n, void *obj)
{
    for (size_t i = 0; i < n; i++) {
        if (keys[i].type == ET_KEY_STRING || keys[i].type == ET_KEY_LIST) {
            char **field = (char **)((char *)obj + keys[i].offset);

            free(*field);
            *field = NULL;
        }
    }
}

int et_key_describe(const struct et_key *k, char *buf, size_t len)
{
    static const char *const names[] = {
        [ET_KEY_STRING] = "text",
        [ET_KEY_LIST] = "comma-separated list",
        [ET_KEY_INT] = "integer",
        [ET_KEY_NUMBER] = "number",
        [ET_KEY_DURATION] = "duration",
        [ET_KEY_SIZE] = "size",
        [ET_KEY_BOOL] = "true or false",
        [ET_KEY_LOG_LEVEL] = "error, warn, info or debug",
        [ET_KEY_ENUM] = "one of",
    };
    bool ranged = k->type == ET_KEY_INT || k->type == ET_KEY_NUMBER ||
                  k->type == ET_KEY_DURATION || k->type == ET_KEY_SIZE;
    size_t used = 0;

    if (len)
        buf[0] = '\0';
    if (k->type == ET_KEY_ENUM && k->choices) {
        /* "forced or normal", "a, b or c" */
        for (int i = 0; k->choices[i]; i++)
            append(buf, len, &used, "%s%s", !i ? "" : k->choices[i + 1] ? ", " : " or ",
                   k->choices[i]);
    } else {
        append(buf, len, &used, "%s",
               (size_t)k->type < sizeof(names) / sizeof(names[0]) ? names[k->type] : "?");
        if (k->type == ET_KEY_INT && k->hex)
            append(buf, len, &used, ", 0x for hex");
    }
    if (ranged && has_range(k)) {
        char lo[32], hi[32];

        format_bound(k, k->min, lo, sizeof(lo));
        format_bound(k, k->max, hi, sizeof(hi));
        append(buf, len, &used, ", %s to %s", lo, hi);
    }
    if (k->def)
        append(buf, len, &used, "; default %s", k->def);
    return (int)used;
}
