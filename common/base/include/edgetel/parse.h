/*
 * Value parsers shared by every edgetel program: durations, sizes, booleans
 * and bounded integers as an operator writes them in a config file or on a
 * command line.
 *
 * All of them take the whole string: leading or trailing whitespace, a
 * trailing unit they do not know, or anything else left over is an error.
 * They return 0 and write *out only on success; on failure *out is left as
 * it was and they return
 *   -EINVAL  the text is not of the expected form (empty, junk, bad unit),
 *   -ERANGE  the form is right but the number does not fit (overflow, or
 *            outside the range the caller gave).
 */
#ifndef EDGETEL_PARSE_H
#define EDGETEL_PARSE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/**
 * Parse a duration into milliseconds: one or more <digits><unit> parts in
 * any order, units ms, s, m (minutes), h, d, e.g. "250ms", "10s", "5m",
 * "1h30m", "2d". A bare number with no unit is seconds ("30" = 30 s).
 * No sign, no fractions, no spaces.
 * @return 0, -EINVAL, or -ERANGE when the total does not fit in int64 ms.
 */
int et_parse_duration_ms(const char *s, int64_t *out_ms);

/**
 * Parse a size in bytes: digits with an optional binary multiplier
 * k/K (1024), M (1024^2), G (1024^3), T (1024^4), which may be followed
 * by "B" or "iB": "4096", "64k", "10M", "1G", "512KiB", "100B".
 * @return 0, -EINVAL, or -ERANGE on overflow of uint64.
 */
int et_parse_size(const char *s, uint64_t *out);

/**
 * Parse a boolean: true/false, yes/no, on/off, 1/0, in any letter case.
 * @return 0 or -EINVAL.
 */
int et_parse_bool(const char *s, bool *out);

/**
 * Parse a decimal integer with an optional leading '-' and check
 * min <= value <= max.
 * @return 0, -EINVAL, or -ERANGE (overflow of int64, or outside the range).
 */
int et_parse_int(const char *s, int64_t min, int64_t max, int64_t *out);

/**
 * Write ms the way et_parse_duration_ms() reads it, in the largest unit
 * that divides it exactly ("250ms", "10s", "5m", "2d"; "90s" stays "90s").
 * @return the length written (as snprintf), output cut to len.
 */
int et_format_duration_ms(int64_t ms, char *buf, size_t len);

/**
 * Write a byte count the way et_parse_size() reads it, in the largest
 * binary multiplier that divides it exactly ("4096" is "4k", "1000" stays).
 * @return the length written (as snprintf), output cut to len.
 */
int et_format_size(uint64_t bytes, char *buf, size_t len);

/**
 * Split a comma-separated list ("a, b,c") into its items, each trimmed of
 * spaces and tabs: *items is a malloc'd array of malloc'd strings (free
 * with et_list_free), *n their number. NULL or an empty string is no
 * items. An empty item ("a,,b") is -EINVAL; more than max items -E2BIG.
 * @return 0, -EINVAL, -E2BIG or -ENOMEM (then *items is NULL, *n 0).
 */
int et_list_split(const char *list, size_t max, char ***items, size_t *n);

/** Free what et_list_split() made; NULL is a no-op. */
void et_list_free(char **items, size_t n);

#endif
