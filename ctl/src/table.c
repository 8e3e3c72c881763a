/*
 * edgetelctl's tables and CSV fields. See table.h.
 */
#include "table.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

int ctl_out_status(FILE *out)
{
    return ferror(out) ? -EIO : 0;
}

const char *ctl_shown(const char *s, char *buf, size_t cap)
{
    return et_text_needs_escape(s) ? et_text_escape(s, buf, cap) : s;
}

/* ---- aligned tables ---------------------------------------------------- */

void ctl_table_free(struct ctl_table *t)
{
    for (size_t i = 0; i < t->nrows * t->ncols; i++)
        free(t->cells[i]);
    free(t->cells);
}

int ctl_table_add(struct ctl_table *t, const char *const *row)
{
    if (t->nrows == t->cap) {
        size_t cap = t->cap ? t->cap * 2 : 32;
        char **grown = realloc(t->cells, cap * t->ncols * sizeof(*grown));

        if (!grown)
            return -ENOMEM;
        t->cells = grown;
        t->cap = cap;
    }
    for (size_t c = 0; c < t->ncols; c++) {
        size_t cap = ET_TEXT_ESCAPED_MAX(strlen(row[c]));
        char *cell = malloc(cap);

        if (cell)
            et_text_escape(row[c], cell, cap);
        t->cells[t->nrows * t->ncols + c] = cell;
        if (!cell) {
            while (c-- > 0)
                free(t->cells[t->nrows * t->ncols + c]);
            return -ENOMEM;
        }
    }
    t->nrows++;
    return 0;
}

static void table_line(const struct ctl_table *t, FILE *out, const char *const *row,
                       const int *width)
{
    for (size_t c = 0; c < t->ncols; c++) {
        bool last = c + 1 == t->ncols;

        if (t->right[c])
            fprintf(out, "%*s", width[c], row[c]);
        else
            fprintf(out, "%-*s", last ? 0 : width[c], row[c]);
        fputs(last ? "\n" : "  ", out);
    }
}

int ctl_table_print(const struct ctl_table *t, FILE *out)
{
    int width[16];

    if (t->ncols > sizeof(width) / sizeof(width[0]))
        return -EINVAL;
    for (size_t c = 0; c < t->ncols; c++) {
        width[c] = (int)strlen(t->headers[c]);
        for (size_t r = 0; r < t->nrows; r++) {
            int w = (int)strlen(t->cells[r * t->ncols + c]);

            if (w > width[c])
                width[c] = w;
        }
    }
    table_line(t, out, t->headers, width);
    for (size_t r = 0; r < t->nrows; r++)
        table_line(t, out, (const char *const *)&t->cells[r * t->ncols], width);
    return 0;
}

/* ---- CSV ----------------------------------------------------------------- */

void ctl_csv_field(FILE *out, const char *s, bool text)
{
    char buf[SHOWN_MAX];
    const char *cell = ctl_shown(s, buf, sizeof(buf));
    bool guard = text && s[0] && strchr("=+-@\t\r", s[0]);

    if (!guard && !strpbrk(cell, ",\"")) {
        fputs(cell, out);
        return;
    }
    fputc('"', out);
    if (guard)
        fputc('\'', out);
    for (; *cell; cell++) {
        if (*cell == '"')
            fputc('"', out);
        fputc(*cell, out);
    }
    fputc('"', out);
}


int ctl_table_finish(struct ctl_table *t, FILE *out, int rc, const char *empty)
{
    if (rc == 0) {
        if (t->nrows == 0)
            fprintf(out, "%s\n", empty);
        else
            rc = ctl_table_print(t, out);
    }
    ctl_table_free(t);
    return rc < 0 ? rc : ctl_out_status(out);
}
