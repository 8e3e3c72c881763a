/*
 * The helpers of common.h.
 */
#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common.h"
#include "edgetel/platform.h"

int et_dev_fail(struct et_dev *dev, int err, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(dev->err, sizeof(dev->err), fmt, ap);
    va_end(ap);
    return err;
}

const char *et_next_line(const char **cursor, size_t *len)
{
    const char *start = *cursor;
    const char *nl;

    if (!start || *start == '\0')
        return NULL;
    nl = strchr(start, '\n');
    if (nl) {
        *len = (size_t)(nl - start);
        *cursor = nl + 1;
    } else {
        *len = strlen(start);
        *cursor = start + *len;
    }
    return start;
}

static const char *skip_blanks(const char *p)
{
    while (*p == ' ' || *p == '\t')
        p++;
    return p;
}

bool et_scan_u64(const char **p, uint64_t *out)
{
    const char *s = skip_blanks(*p);
    uint64_t v = 0;

    if (*s < '0' || *s > '9')
        return false;
    for (; *s >= '0' && *s <= '9'; s++) {
        unsigned d = (unsigned)(*s - '0');

        if (v > (UINT64_MAX - d) / 10)
            return false;
        v = v * 10 + d;
    }
    *out = v;
    *p = s;
    return true;
}

bool et_scan_i64(const char **p, int64_t *out)
{
    const char *s = skip_blanks(*p);
    bool neg = false;
    uint64_t v;

    if (*s == '-') {
        neg = true;
        s++;
    }
    if (*s < '0' || *s > '9' || !et_scan_u64(&s, &v))
        return false;
    if (neg ? v > (uint64_t)INT64_MAX + 1 : v > (uint64_t)INT64_MAX)
        return false;
    *out = neg ? (int64_t)(0 - v) : (int64_t)v;
    *p = s;
    return true;
}

bool et_scan_f64(const char **p, double *out)
{
    const char *s = skip_blanks(*p);
    bool neg = false;
    double v = 0;

    if (*s == '-') {
        neg = true;
        s++;
    }
    if (*s < '0' || *s > '9')
        return false;
    for (; *s >= '0' && *s <= '9'; s++)
        v = v * 10 + (*s - '0');
    if (*s == '.') {
        double scale = 0.1;

        for (s++; *s >= '0' && *s <= '9'; s++, scale /= 10)
            v += (*s - '0') * scale;
    }
    if (!isfinite(v))
        return false;
    *out = neg ? -v : v;
    *p = s;
    return true;
}

bool et_scan_word(const char **p, char *out, size_t cap)
{
    const char *s = skip_blanks(*p);
    size_t len = 0;

    while (s[len] && s[len] != ' ' && s[len] != '\t' && s[len] != '\n')
        len++;
    if (len == 0 || len >= cap)
        return false;
    memcpy(out, s, len);
    out[len] = '\0';
    *p = s + len;
    return true;
}

bool et_list_has(const char *list, const char *item)
{
    size_t len = strlen(item);

    for (const char *p = list; p && *p;) {
        const char *end = strchr(p, ',');
        size_t n;

        while (*p == ' ' || *p == '\t')
            p++;
        n = end ? (size_t)(end - p) : strlen(p);
        while (n > 0 && (p[n - 1] == ' ' || p[n - 1] == '\t'))
            n--;
        if (n == len && strncmp(p, item, n) == 0)
            return true;
        p = end ? end + 1 : NULL;
    }
    return false;
}

bool et_line_starts(const char *line, size_t len, const char *prefix)
{
    size_t plen = strlen(prefix);

    return len >= plen && memcmp(line, prefix, plen) == 0;
}

bool et_parse_i64_text(const char *s, int64_t *out)
{
    const char *p = s;
    int64_t v;

    if (!et_scan_i64(&p, &v))
        return false;
    while (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r')
        p++;
    if (*p != '\0')
        return false;
    *out = v;
    return true;
}

void et_name_sanitize(char *s)
{
    for (; *s; s++) {
        char c = *s;

        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '_' || c == '-'))
            *s = '_';
    }
}

int et_chans_add(struct et_chan_table *t, const char *unit, enum et_type type,
                 const char *fmt, ...)
{
    char name[128];
    va_list ap;
    char *copy;

    va_start(ap, fmt);
    vsnprintf(name, sizeof(name), fmt, ap);
    va_end(ap);
    if (t->n == t->cap) {
        size_t cap = t->cap ? t->cap * 2 : 8;
        struct et_channel *grown = realloc(t->ch, cap * sizeof(*grown));

        if (!grown)
            return -ENOMEM;
        t->ch = grown;
        t->cap = cap;
    }
    copy = strdup(name);
    if (!copy)
        return -ENOMEM;
    t->ch[t->n] = (struct et_channel){ .name = copy, .unit = unit, .type = type };
    return (int)t->n++;
}

void et_chans_attach(struct et_chan_table *t, struct et_dev *dev)
{
    dev->channels = t->ch;
    dev->n_channels = t->n;
}

void et_chans_free(struct et_chan_table *t)
{
    if (!t)
        return;
    for (size_t i = 0; i < t->n; i++)
        free((char *)t->ch[i].name);
    free(t->ch);
    memset(t, 0, sizeof(*t));
}

struct list_ctx {
    const char *prefix;
    struct et_name_list *out;
};

static int collect_name(void *ctx, const char *name)
{
    struct list_ctx *c = ctx;
    struct et_name_list *l = c->out;
    char *copy;

    if (strncmp(name, c->prefix, strlen(c->prefix)) != 0)
        return 0;
    if (l->n == l->cap) {
        size_t cap = l->cap ? l->cap * 2 : 8;
        char **grown = realloc(l->names, cap * sizeof(*grown));

        if (!grown)
            return -ENOMEM;
        l->names = grown;
        l->cap = cap;
    }
    copy = strdup(name);
    if (!copy)
        return -ENOMEM;
    l->names[l->n++] = copy;
    return 0;
}

/* Natural order, so thermal_zone10 sorts after thermal_zone9. */
static int name_cmp(const void *a, const void *b)
{
    const char *x = *(const char *const *)a;
    const char *y = *(const char *const *)b;

    while (*x && *y) {
        if (*x >= '0' && *x <= '9' && *y >= '0' && *y <= '9') {
            char *ex;
            char *ey;
            unsigned long long nx = strtoull(x, &ex, 10);
            unsigned long long ny = strtoull(y, &ey, 10);

            if (nx != ny)
                return nx < ny ? -1 : 1;
            x = ex;
            y = ey;
            continue;
        }
        if (*x != *y)
            return (unsigned char)*x - (unsigned char)*y;
        x++;
        y++;
    }
    return (unsigned char)*x - (unsigned char)*y;
}

int et_list_names(const char *dir, const char *prefix, struct et_name_list *out)
{
    struct list_ctx ctx = { .prefix = prefix, .out = out };
    int ret;

    memset(out, 0, sizeof(*out));
    ret = et_fs_list(dir, collect_name, &ctx);
    if (ret < 0) {
        et_name_list_free(out);
        return ret;
    }
    if (out->n > 1)
        qsort(out->names, out->n, sizeof(out->names[0]), name_cmp);
    return 0;
}

void et_name_list_free(struct et_name_list *l)
{
    if (!l)
        return;
    for (size_t i = 0; i < l->n; i++)
        free(l->names[i]);
    free(l->names);
    memset(l, 0, sizeof(*l));
}

bool et_text_field_u64(const char *text, const char *key, uint64_t *out)
{
    const char *cursor = text;
    const char *line;
    size_t len;

    while ((line = et_next_line(&cursor, &len)) != NULL) {
        const char *q = line + strlen(key);

        if (!et_line_starts(line, len, key))
            continue;
        while (*q == '\t' || *q == ' ')
            q++;
        return et_scan_u64(&q, out);
    }
    return false;
}

int et_self_write_bytes_kept(struct et_fs_file *io, uint64_t *out)
{
    char text[1024];

    io->path = "/proc/self/io";
    if (et_fs_reread(io, text, sizeof(text)) < 0)
        return -ENOENT;
    return et_text_field_u64(text, "write_bytes:", out) ? 0 : -EBADMSG;
}

int et_self_write_bytes(uint64_t *out)
{
    struct et_fs_file io = { .path = "/proc/self/io" };
    int ret = et_self_write_bytes_kept(&io, out);

    et_fs_file_close(&io);
    return ret;
}
