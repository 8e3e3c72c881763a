/*
 * The web view's bounded output buffer and its escaping (web_out.h).
 */
#include "edgetel/web_out.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* U+FFFD, what a byte that is not text becomes. */
#define REPLACEMENT "\xef\xbf\xbd"

void et_web_out_init(struct et_web_out *o, size_t max)
{
    *o = (struct et_web_out){ .max = max };
}

void et_web_out_free(struct et_web_out *o)
{
    free(o->data);
    et_web_out_init(o, o->max);
}

char *et_web_out_take(struct et_web_out *o, size_t *len)
{
    char *d = o->data;

    *len = o->len;
    et_web_out_init(o, o->max);
    return d;
}

/* Room for n more bytes and the NUL; false (and full) when there is none. */
static bool reserve(struct et_web_out *o, size_t n)
{
    size_t want, cap;
    char *p;

    if (o->full || n > o->max - o->len) {
        o->full = true;
        return false;
    }
    want = o->len + n + 1;
    if (want <= o->cap)
        return true;
    cap = o->cap ? o->cap : 4096;
    while (cap < want)
        cap *= 2;
    if (cap > o->max + 1)
        cap = o->max + 1;
    p = realloc(o->data, cap);
    if (!p) {
        o->full = true;
        return false;
    }
    o->data = p;
    o->cap = cap;
    return true;
}

void et_web_out_add(struct et_web_out *o, const char *s, size_t n)
{
    if (!reserve(o, n))
        return;
    memcpy(o->data + o->len, s, n);
    o->len += n;
    o->data[o->len] = '\0';
}

void et_web_out_str(struct et_web_out *o, const char *s)
{
    et_web_out_add(o, s, strlen(s));
}

void et_web_out_printf(struct et_web_out *o, const char *fmt, ...)
{
    char small[256];
    va_list ap;
    int n;

    va_start(ap, fmt);
    n = vsnprintf(small, sizeof(small), fmt, ap);
    va_end(ap);
    if (n < 0) {
        o->full = true;
        return;
    }
    if ((size_t)n < sizeof(small)) {
        et_web_out_add(o, small, (size_t)n);
        return;
    }
    if (!reserve(o, (size_t)n))
        return;
    va_start(ap, fmt);
    vsnprintf(o->data + o->len, (size_t)n + 1, fmt, ap);
    va_end(ap);
    o->len += (size_t)n;
}

size_t et_web_utf8_char(const unsigned char *s)
{
    unsigned char c = s[0];
    size_t n, i;
    uint32_t cp;

    if (c < 0x80)
        return 1;
    if (c >= 0xc2 && c <= 0xdf) {
        n = 2;
        cp = c & 0x1f;
    } else if (c >= 0xe0 && c <= 0xef) {
        n = 3;
        cp = c & 0x0f;
    } else if (c >= 0xf0 && c <= 0xf4) {
        n = 4;
        cp = c & 0x07;
    } else {
        return 0;   /* a continuation byte, C0/C1 (overlong) or F5-FF */
    }
    for (i = 1; i < n; i++) {
        if ((s[i] & 0xc0) != 0x80)
            return 0;   /* the NUL ends it too */
        cp = (cp << 6) | (s[i] & 0x3f);
    }
    if ((n == 3 && cp < 0x800) || (n == 4 && (cp < 0x10000 || cp > 0x10ffff)) ||
        (cp >= 0xd800 && cp <= 0xdfff))
        return 0;
    return n;
}

/*
 * Walk s a character at a time: plain runs are copied as they are, each
 * character for which esc() writes something is replaced by that, and a
 * byte that is not UTF-8 becomes U+FFFD.
 */
typedef bool (*escape_fn)(struct et_web_out *o, unsigned char c);

static void escaped(struct et_web_out *o, const char *s, escape_fn esc)
{
    const unsigned char *p = (const unsigned char *)(s ? s : "");
    const unsigned char *run = p;
    size_t n;

    while (*p) {
        n = et_web_utf8_char(p);
        if (n == 1 && !esc(NULL, *p)) {
            p++;
            continue;
        }
        if (n > 1) {
            p += n;
            continue;
        }
        et_web_out_add(o, (const char *)run, (size_t)(p - run));
        if (n == 0)
            et_web_out_str(o, REPLACEMENT);
        else
            esc(o, *p);
        run = ++p;
    }
    et_web_out_add(o, (const char *)run, (size_t)(p - run));
}

/* With o NULL: whether c needs escaping; else write its escape. */
static bool json_escape(struct et_web_out *o, unsigned char c)
{
    bool needs = c < 0x20 || c == 0x7f || c == '"' || c == '\\' || c == '<' || c == '>' ||
                 c == '&';

    if (!o || !needs)
        return needs;
    switch (c) {
    case '"':
        et_web_out_str(o, "\\\"");
        break;
    case '\\':
        et_web_out_str(o, "\\\\");
        break;
    case '\n':
        et_web_out_str(o, "\\n");
        break;
    case '\r':
        et_web_out_str(o, "\\r");
        break;
    case '\t':
        et_web_out_str(o, "\\t");
        break;
    default:
        et_web_out_printf(o, "\\u%04x", c);
        break;
    }
    return true;
}

void et_web_out_json_str(struct et_web_out *o, const char *s)
{
    et_web_out_add(o, "\"", 1);
    escaped(o, s, json_escape);
    et_web_out_add(o, "\"", 1);
}

void et_web_out_json_num(struct et_web_out *o, double x)
{
    if (!isfinite(x))
        et_web_out_str(o, "null");
    else
        et_web_out_printf(o, "%.15g", x);
}

static bool prom_escape(struct et_web_out *o, unsigned char c)
{
    const char *e = c == '\\' ? "\\\\" : c == '"' ? "\\\"" : c == '\n' ? "\\n" : NULL;

    if (e && o)
        et_web_out_str(o, e);
    return e != NULL;
}

void et_web_out_prom_label(struct et_web_out *o, const char *s)
{
    escaped(o, s, prom_escape);
}
