/*
 * What edgetelctl's reports share (report.c, report_config.c): aligned
 * tables, CSV fields, text from devices made safe to show. Private to
 * et_ctl_core.
 */
#ifndef EDGETEL_CTL_TABLE_H
#define EDGETEL_CTL_TABLE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

#include "edgetel/codec.h"
#include "edgetel/text.h"
#include "edgetel/value.h"

#define ISO_MAX 40
/* Room for a value as text, and for the longest name or value escaped. */
#define VALUE_MAX (64 + ET_VALUE_STR_MAX)
#define SHOWN_MAX ET_TEXT_ESCAPED_MAX(VALUE_MAX > ET_WIRE_MAX_NAME ? VALUE_MAX : ET_WIRE_MAX_NAME)

/* -EIO when writing to out failed, else 0. */
int ctl_out_status(FILE *out);

/*
 * Everything a device named or sent is shown escaped (edgetel/text.h):
 * its strings are stored as sent, and an escape sequence in a metric
 * name's tag or a string value must not clear, move or recolour the
 * operator's terminal, nor a line break forge a row. Returns s itself
 * when nothing in it needs escaping, else the escaped copy in buf.
 */
const char *ctl_shown(const char *s, char *buf, size_t cap);

/*
 * An aligned table. Rows are gathered first so every column is as wide as
 * its widest cell: device ids run to 64 characters and metric names to 128.
 */
struct ctl_table {
    size_t ncols;             /* at most 16 */
    const char *const *headers;
    const bool *right;        /* right-align the column (numbers) */
    char **cells;             /* row-major, ncols per row, malloc'd */
    size_t nrows, cap;
};

void ctl_table_free(struct ctl_table *t);

/* Add one row of ncols strings (copied, escaped for a person). 0 or -ENOMEM. */
int ctl_table_add(struct ctl_table *t, const char *const *row);

/* The headers and the rows, aligned. 0, or -EINVAL for too many columns. */
int ctl_table_print(const struct ctl_table *t, FILE *out);

/*
 * The end of every table command: after a read that returned rc, the
 * table, or empty when it has no rows; then free it. 0 or -errno.
 */
int ctl_table_finish(struct ctl_table *t, FILE *out, int rc, const char *empty);

/*
 * A CSV field: escaped as all output is (so no line break is left to
 * quote), then quoted when it holds a separator or a quote. A text cell
 * (a device, metric or unit name, a string value) that starts with what
 * a spreadsheet reads as a formula (= + - @, tab, CR) gets a leading
 * quote as OWASP's CSV injection advice has it, so "=cmd|' /C calc'!A0"
 * is shown, not run. Numbers are not text cells: -3.5 stays a number.
 */
void ctl_csv_field(FILE *out, const char *s, bool text);

#endif
