/*
 * Helpers every driver shares: failing with a reason, scanning /proc and
 * sysfs text, and channel tables built at probe time (parameters arrive
 * parsed: driver.h, params.h). Nothing here opens a file; drivers read
 * through edgetel/platform.h and hand the text to these parsers.
 */
#ifndef EDGETEL_DRIVERS_COMMON_H
#define EDGETEL_DRIVERS_COMMON_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "driver.h"
#include "edgetel/parse.h"

/**
 * Write a reason for a person into dev->err (cut to fit) and return err,
 * so a driver can say `return et_dev_fail(dev, -ENODEV, "...")`.
 */
int et_dev_fail(struct et_dev *dev, int err, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* ---- text scanning ----------------------------------------------------- */

/**
 * Return the next line of text at *cursor (without its '\n') and its length
 * in *len, advancing *cursor past it; NULL at the end of the text.
 * The text must be NUL-terminated; lines are not.
 */
const char *et_next_line(const char **cursor, size_t *len);

/**
 * Skip spaces and tabs (not newlines) at *p, then parse an unsigned decimal
 * number and advance *p past it. false (and *p unchanged) when there is no
 * number or it does not fit in 64 bits.
 */
bool et_scan_u64(const char **p, uint64_t *out);

/** As et_scan_u64 with an optional leading '-'. */
bool et_scan_i64(const char **p, int64_t *out);

/** As et_scan_u64 for a decimal fraction like "0.15" or "12345.67" (no exponent). */
bool et_scan_f64(const char **p, double *out);

/**
 * Skip spaces and tabs, then copy the next run of non-blank characters into
 * out (NUL-terminated). false when there is none or it does not fit in cap.
 */
bool et_scan_word(const char **p, char *out, size_t cap);

/**
 * Whether item is one of the entries of a comma-separated list like
 * "eth0, wlan0" (blanks around entries ignored). NULL list: false.
 */
bool et_list_has(const char *list, const char *item);

/**
 * Find the line of text that starts with key (e.g. "VmRSS:") and scan the
 * unsigned number after it (blanks skipped). false when there is none.
 */
bool et_text_field_u64(const char *text, const char *key, uint64_t *out);

/**
 * Bytes this process caused to be written to storage: write_bytes of
 * /proc/self/io, what wears an SD card. The one reader of it, for the self
 * driver and the agent's own metrics.
 * @return 0; -ENOENT without task I/O accounting; -EBADMSG when malformed.
 */
int et_self_write_bytes(uint64_t *out);

struct et_fs_file;

/** The same through io, kept open between calls (its path is set here). */
int et_self_write_bytes_kept(struct et_fs_file *io, uint64_t *out);

/** Whether line (of length len) starts with prefix. */
bool et_line_starts(const char *line, size_t len, const char *prefix);

/**
 * Parse the whole of s (after trimming trailing whitespace, e.g. sysfs's
 * newline) as a signed decimal integer. false for empty or trailing junk.
 */
bool et_parse_i64_text(const char *s, int64_t *out);

/**
 * Make a name usable as one part of a dotted metric name, in place: every
 * character other than a letter, digit, '_' or '-' becomes '_' (so "eth0.100"
 * becomes "eth0_100" and "/boot/firmware" "_boot_firmware").
 */
void et_name_sanitize(char *s);

/* ---- channel tables built at probe --------------------------------------- */

/* A channel table the driver owns (per core, per interface, per sensor). */
struct et_chan_table {
    struct et_channel *ch;
    size_t n;
    size_t cap;
};

/**
 * Append a channel whose name is printf-formatted; the name is copied.
 * @return the new channel's index (>= 0) or -ENOMEM.
 */
int et_chans_add(struct et_chan_table *t, const char *unit, enum et_type type,
                 const char *fmt, ...) __attribute__((format(printf, 4, 5)));

/** Make dev use the table's channels (after probe filled it). */
void et_chans_attach(struct et_chan_table *t, struct et_dev *dev);

/** Free the table's names and array; the zeroed table is empty. NULL-safe. */
void et_chans_free(struct et_chan_table *t);

/* ---- directory listings -------------------------------------------------- */

/* Names collected from one directory, sorted, so channel order is stable. */
struct et_name_list {
    char **names;
    size_t n;
    size_t cap;
};

/**
 * Collect the entries of dir whose names start with prefix, sorted.
 * @return 0, or et_fs_list's -errno (-ENOENT when dir is absent), -ENOMEM.
 */
int et_list_names(const char *dir, const char *prefix, struct et_name_list *out);

void et_name_list_free(struct et_name_list *l);

#endif
