/*
 * The params tables of driver.h: defaults, parsing a value into its
 * member, and describing a key for a person.
 */
#include "params.h"

#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "edgetel/parse.h"

/* Longest part of a value quoted back in a message, as the INI loader cuts. */
#define QUOTE_MAX 64

static int fail(char *why, size_t whylen, int rc, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static int fail(char *why, size_t whylen, int rc, const char *fmt, ...)
{
    va_list ap;

    if (!why || !whylen)
        return rc;
    va_start(ap, fmt);
    vsnprintf(why, whylen, fmt, ap);
    va_end(ap);
    return rc;
}

/* "KEY \"VALUE\": " then the reason; a long value is cut with "...". The
 * config loader has already refused control characters in the line. */
static int bad_value(const struct et_param *p, const char *value, char *why, size_t whylen,
                     const char *fmt, ...) __attribute__((format(printf, 5, 6)));

static int bad_value(const struct et_param *p, const char *value, char *why, size_t whylen,
                     const char *fmt, ...)
{
    bool cut = strlen(value) > QUOTE_MAX;
    va_list ap;
    int n;

    if (!why || !whylen)
        return -EINVAL;
    n = snprintf(why, whylen, "%s \"%.*s%s\": ", p->key, cut ? QUOTE_MAX - 3 : QUOTE_MAX, value,
                 cut ? "..." : "");
    if (n < 0 || (size_t)n >= whylen)
        return -EINVAL;
    va_start(ap, fmt);
    vsnprintf(why + n, whylen - (size_t)n, fmt, ap);
    va_end(ap);
    return -EINVAL;
}

static void append(char *buf, size_t len, size_t *used, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* snprintf at the end of what buf holds; *used counts what did not fit too. */
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

static bool has_range(const struct et_param *p)
{
    return p->min < p->max;
}

/* A bound written the way the key's type is read. */
static void format_bound(const struct et_param *p, int64_t v, char *buf, size_t len)
{
    if (p->type == ET_PARAM_DURATION)
        et_format_duration_ms(v, buf, len);
    else if (p->type == ET_PARAM_HEX && v >= 0)
        snprintf(buf, len, "0x%02" PRIx64, (uint64_t)v);
    else
        snprintf(buf, len, "%" PRId64, v);
}

/* Out of the table's range or, without one, of the member's (int64_t). */
static int range_error(const struct et_param *p, const char *value, char *why, size_t whylen)
{
    bool integer = p->type == ET_PARAM_INT || p->type == ET_PARAM_HEX;
    char lo[32], hi[32];

    if (!has_range(p) && !integer)
        return bad_value(p, value, why, whylen, "too large");
    format_bound(p, has_range(p) ? p->min : INT64_MIN, lo, sizeof(lo));
    format_bound(p, has_range(p) ? p->max : INT64_MAX, hi, sizeof(hi));
    return bad_value(p, value, why, whylen, "must be between %s and %s", lo, hi);
}

static size_t member_size(enum et_param_type t)
{
    switch (t) {
    case ET_PARAM_INT:
    case ET_PARAM_HEX:
    case ET_PARAM_DURATION: return sizeof(int64_t);
    case ET_PARAM_NUMBER:   return sizeof(double);
    case ET_PARAM_BOOL:     return sizeof(bool);
    case ET_PARAM_STRING:
    case ET_PARAM_LIST:     return sizeof(char *);
    case ET_PARAM_ENUM:     return sizeof(int);
    }
    return 0;
}

/* C notation as strtoll reads it: 0x hex, a leading 0 octal, else decimal. */
static int parse_hex(const struct et_param *p, const char *value, int64_t *out, char *why,
                     size_t whylen)
{
    char *end;
    long long v;

    errno = 0;
    v = strtoll(value, &end, 0);
    if (end == value || *end != '\0')
        return bad_value(p, value, why, whylen, "expected a whole number (0x for hex)");
    if (errno == ERANGE || (has_range(p) && (v < p->min || v > p->max)))
        return range_error(p, value, why, whylen);
    *out = v;
    return 0;
}

static int parse_number(const struct et_param *p, const char *value, double *out, char *why,
                        size_t whylen)
{
    char *end;
    double v;

    errno = 0;
    v = strtod(value, &end);
    if (end == value || *end != '\0' || errno == ERANGE || !isfinite(v))
        return bad_value(p, value, why, whylen, "expected a number");
    if (has_range(p) && (v < (double)p->min || v > (double)p->max))
        return range_error(p, value, why, whylen);
    *out = v;
    return 0;
}

static int parse_enum(const struct et_param *p, const char *value, int *out, char *why,
                      size_t whylen)
{
    char list[160];
    size_t used = 0;

    list[0] = '\0';
    for (int i = 0; p->choices && p->choices[i]; i++) {
        if (strcmp(value, p->choices[i]) == 0) {
            *out = i;
            return 0;
        }
        append(list, sizeof(list), &used, "%s%s", i ? ", " : "", p->choices[i]);
    }
    return bad_value(p, value, why, whylen, "expected one of %s", list);
}

static int set_text(const struct et_param *p, char **field, const char *value, char *why,
                    size_t whylen)
{
    const char *expected = p->check ? p->check(value) : NULL;
    char *copy;

    if (expected)
        return bad_value(p, value, why, whylen, "expected %s", expected);
    copy = strdup(value);
    if (!copy)
        return fail(why, whylen, -ENOMEM, "%s: out of memory", p->key);
    free(*field);
    *field = copy;
    return 0;
}

/* The table promises a member of the type's size inside the struct: a wrong
 * table would write past it, so the promise is checked. */
static int check_entry(const struct et_driver *drv, const struct et_param *p, char *why,
                       size_t whylen)
{
    if (p->size != member_size(p->type) || p->offset + p->size > drv->params_size)
        return fail(why, whylen, -EINVAL, "%s: %s: internal error: a member of %zu bytes at %zu "
                    "in a struct of %zu", drv->name, p->key, p->size, p->offset,
                    drv->params_size);
    return 0;
}

static int param_set(const struct et_driver *drv, const struct et_param *p, void *params,
                     const char *value, char *why, size_t whylen)
{
    char *field = (char *)params + p->offset;
    int64_t i64;
    int rc;

    rc = check_entry(drv, p, why, whylen);
    if (rc)
        return rc;
    switch (p->type) {
    case ET_PARAM_INT:
        rc = et_parse_int(value, has_range(p) ? p->min : INT64_MIN,
                          has_range(p) ? p->max : INT64_MAX, &i64);
        if (rc == -ERANGE)
            return range_error(p, value, why, whylen);
        if (rc)
            return bad_value(p, value, why, whylen, "expected a whole number");
        *(int64_t *)field = i64;
        return 0;
    case ET_PARAM_HEX:
        return parse_hex(p, value, (int64_t *)field, why, whylen);
    case ET_PARAM_NUMBER:
        return parse_number(p, value, (double *)field, why, whylen);
    case ET_PARAM_DURATION:
        rc = et_parse_duration_ms(value, &i64);
        if (rc == -ERANGE || (rc == 0 && has_range(p) && (i64 < p->min || i64 > p->max)))
            return range_error(p, value, why, whylen);
        if (rc)
            return bad_value(p, value, why, whylen, "expected a duration like 10s");
        *(int64_t *)field = i64;
        return 0;
    case ET_PARAM_BOOL:
        if (et_parse_bool(value, (bool *)field))
            return bad_value(p, value, why, whylen, "expected true or false");
        return 0;
    case ET_PARAM_STRING:
    case ET_PARAM_LIST:
        return set_text(p, (char **)field, value, why, whylen);
    case ET_PARAM_ENUM:
        return parse_enum(p, value, (int *)field, why, whylen);
    }
    return fail(why, whylen, -EINVAL, "%s: internal error: unknown type %d", p->key, p->type);
}

const struct et_param *et_params_find(const struct et_driver *drv, const char *key)
{
    for (size_t i = 0; i < drv->n_params; i++)
        if (strcmp(drv->params[i].key, key) == 0)
            return &drv->params[i];
    return NULL;
}

int et_params_set(const struct et_driver *drv, void *params, const char *key, const char *value,
                  char *why, size_t whylen)
{
    const struct et_param *p = et_params_find(drv, key);

    if (!p)
        return fail(why, whylen, -ENOENT, "unknown key \"%.*s\"", QUOTE_MAX, key);
    return param_set(drv, p, params, value, why, whylen);
}

int et_params_create(const struct et_driver *drv, void **out, char *why, size_t whylen)
{
    void *params;

    *out = NULL;
    if (!drv->params_size)
        return drv->n_params ? fail(why, whylen, -EINVAL, "%s: internal error: a params "
                                    "table without params_size", drv->name) : 0;
    for (size_t i = 0; i < drv->n_params; i++) {
        int rc = check_entry(drv, &drv->params[i], why, whylen);

        if (rc)
            return rc;
    }
    params = calloc(1, drv->params_size);
    if (!params)
        return fail(why, whylen, -ENOMEM, "out of memory");
    for (size_t i = 0; i < drv->n_params; i++) {
        const struct et_param *p = &drv->params[i];
        char reason[160];
        int rc;

        if (!p->def)
            continue;   /* calloc's zero: 0, false, NULL, the first choice */
        rc = param_set(drv, p, params, p->def, reason, sizeof(reason));
        if (rc) {
            et_params_destroy(drv, params);
            /* A default that does not parse is the table's fault, not the file's. */
            return rc == -ENOMEM ? fail(why, whylen, rc, "out of memory")
                                 : fail(why, whylen, rc, "%s: internal error: default of %s",
                                        drv->name, reason);
        }
    }
    *out = params;
    return 0;
}

void et_params_destroy(const struct et_driver *drv, void *params)
{
    if (!params)
        return;
    for (size_t i = 0; i < drv->n_params; i++) {
        const struct et_param *p = &drv->params[i];

        if ((p->type == ET_PARAM_STRING || p->type == ET_PARAM_LIST) &&
            p->offset + sizeof(char *) <= drv->params_size)
            free(*(char **)((char *)params + p->offset));
    }
    free(params);
}

int et_param_describe(const struct et_param *p, char *buf, size_t len)
{
    static const char *const names[] = {
        [ET_PARAM_INT] = "integer",
        [ET_PARAM_HEX] = "integer, 0x for hex",
        [ET_PARAM_NUMBER] = "number",
        [ET_PARAM_DURATION] = "duration",
        [ET_PARAM_BOOL] = "true or false",
        [ET_PARAM_STRING] = "text",
        [ET_PARAM_LIST] = "comma-separated list",
        [ET_PARAM_ENUM] = "one of",
    };
    bool ranged = p->type == ET_PARAM_INT || p->type == ET_PARAM_HEX ||
                  p->type == ET_PARAM_NUMBER || p->type == ET_PARAM_DURATION;
    size_t used = 0;

    if (len)
        buf[0] = '\0';
    if (p->type == ET_PARAM_ENUM && p->choices) {
        /* "forced or normal", "a, b or c" */
        for (int i = 0; p->choices[i]; i++)
            append(buf, len, &used, "%s%s", !i ? "" : p->choices[i + 1] ? ", " : " or ",
                   p->choices[i]);
    } else {
        append(buf, len, &used, "%s",
               (size_t)p->type < sizeof(names) / sizeof(names[0]) ? names[p->type] : "?");
    }
    if (ranged && has_range(p)) {
        char lo[32], hi[32];

        format_bound(p, p->min, lo, sizeof(lo));
        format_bound(p, p->max, hi, sizeof(hi));
        append(buf, len, &used, ", %s to %s", lo, hi);
    }
    if (p->def)
        append(buf, len, &used, "; default %s", p->def);
    return (int)used;
}
