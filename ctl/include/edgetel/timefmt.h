/*
 * Times as an operator types and reads them (edgetelctl): ISO 8601 in UTC
 * and relative times. All times are Unix epoch milliseconds.
 */
#ifndef EDGETEL_TIMEFMT_H
#define EDGETEL_TIMEFMT_H

#include <stddef.h>
#include <stdint.h>

/**
 * Parse a point in time:
 *   - ISO 8601: "2026-11-22", "2026-11-22T16:05", "2026-11-22T16:05:30",
 *     "2026-11-22T16:05:30.250", a space instead of the 'T', then "Z",
 *     "+01:00", "-0500" or nothing. Without an offset the time is UTC.
 *   - relative to now_ms: "-10m", "-1h30m", "-2d", "-90s" (a duration as
 *     et_parse_duration_ms() reads it, after a '-'), or "now".
 * @return 0, or -EINVAL with why set to a reason for a person.
 */
int et_time_parse(const char *s, int64_t now_ms, int64_t *out_ms, char *why, size_t whylen);

/** "2026-11-22T16:05:30.250Z" (milliseconds only when not zero). As snprintf. */
int et_time_format_iso(int64_t ms, char *buf, size_t len);

/**
 * A short age for a person: "12s ago", "5m ago", "3h 20m ago", "4d 2h ago";
 * "just now" under a second; "in 5m" for the future (a skewed clock).
 * As snprintf.
 */
int et_time_format_age(int64_t age_ms, char *buf, size_t len);

#endif
