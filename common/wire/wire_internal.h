/*
 * What the wire codec's files share: scaled integers both ways. Private to
 * common/wire.
 */
#ifndef EDGETEL_WIRE_INTERNAL_H
#define EDGETEL_WIRE_INTERNAL_H

#include <math.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Write a reason for a person into err (when given); returns -EBADMSG. */
__attribute__((format(printf, 3, 4)))
int wire_fail(char *err, size_t errlen, const char *fmt, ...);

/* Largest |raw| of an F64: every integer up to it is a double. */
#define WIRE_RAW_F64_MAX 9007199254740992.0

/*
 * A decimal step (0.01, 0.001) is not a double: dividing by its inverse,
 * which is a whole number, gives the value nearest the decimal (29 / 100
 * is 0.29; 29 * 0.01 is 0.29000000000000004). 0 when scale has none.
 */
static inline double wire_inverse(double scale)
{
    double inv, k;

    if (!(scale < 1))
        return 0;
    inv = 1.0 / scale;
    k = nearbyint(inv);
    return fabs(inv - k) <= k * 1e-12 ? k : 0;
}

/* value = raw * scale, as decoders compute it (telemetry.proto). */
static inline double wire_value_of(int64_t raw, double scale)
{
    double k = wire_inverse(scale);

    return k ? (double)raw / k : (double)raw * scale;
}

/* The raw integer nearest value / scale; false for NaN, infinities and overflow. */
static inline bool et_wire_raw_of(double value, double scale, int64_t *raw)
{
    double k = wire_inverse(scale);
    double r = k ? value * k : value / scale;

    if (!isfinite(r) || fabs(r) > WIRE_RAW_F64_MAX)
        return false;
    *raw = (int64_t)llround(r);
    return true;
}

#endif
