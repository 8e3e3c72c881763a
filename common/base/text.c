/*
 * Text from outside: UTF-8 checks and escaping for a person. See text.h.
 */
#include "edgetel/text.h"

#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

/*
 * The well-formed UTF-8 sequence at p (n bytes left): its length, with
 * its code point in *cp, or 0 when it is not one. The table of RFC 3629
 * section 4: overlong forms (C0, C1, E0 80..9F, F0 80..8F), surrogates
 * (ED A0..BF) and code points above U+10FFFF (F4 90.., F5..FF) are not.
 */
static size_t utf8_seq(const unsigned char *p, size_t n, uint32_t *cp)
{
    unsigned char c = p[0];
    uint32_t v, min;
    size_t len;

    if (c < 0x80) {
        *cp = c;
        return 1;
    }
    if (c >= 0xc2 && c <= 0xdf) {
        len = 2, v = c & 0x1f, min = 0x80;
    } else if (c >= 0xe0 && c <= 0xef) {
        len = 3, v = c & 0x0f, min = 0x800;
    } else if (c >= 0xf0 && c <= 0xf4) {
        len = 4, v = c & 0x07, min = 0x10000;
    } else {
        return 0;
    }
    if (n < len)
        return 0;
    for (size_t i = 1; i < len; i++) {
        if ((p[i] & 0xc0) != 0x80)
            return 0;
        v = (v << 6) | (p[i] & 0x3f);
    }
    if (v < min || v > 0x10ffff || (v >= 0xd800 && v <= 0xdfff))
        return 0;
    *cp = v;
    return len;
}

static bool is_control(uint32_t cp)
{
    return cp < 0x20 || (cp >= 0x7f && cp <= 0x9f);
}

enum et_text_problem et_text_check(const char *s, size_t len, bool control_ok, size_t *at)
{
    const unsigned char *p = (const unsigned char *)s;
    size_t i = 0, n;
    uint32_t cp;
    enum et_text_problem found = ET_TEXT_OK;

    while (i < len) {
        n = utf8_seq(p + i, len - i, &cp);
        if (n == 0) {
            found = ET_TEXT_BAD_UTF8;
            break;
        }
        if (cp == 0) {
            found = ET_TEXT_NUL;
            break;
        }
        if (!control_ok && is_control(cp)) {
            found = ET_TEXT_CONTROL;
            break;
        }
        i += n;
    }
    if (at)
        *at = i;
    return found;
}

const char *et_text_problem_name(enum et_text_problem p)
{
    switch (p) {
    case ET_TEXT_OK:
        return "is valid text";
    case ET_TEXT_NUL:
        return "holds a NUL byte";
    case ET_TEXT_BAD_UTF8:
        return "is not valid UTF-8";
    case ET_TEXT_CONTROL:
        return "holds a control character";
    }
    return "is not valid text";
}

bool et_text_needs_escape(const char *s)
{
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        /* Bytes from 0x80 start UTF-8 (or garbage): the slow path judges. */
        if (*p < 0x20 || *p >= 0x7f)
            return true;
    }
    return false;
}

const char *et_text_escape(const char *s, char *out, size_t cap)
{
    const unsigned char *p = (const unsigned char *)s;
    size_t left = strlen(s), used = 0, n;
    char esc[8];
    const char *piece;
    uint32_t cp;

    if (cap == 0)
        return out;
    while (left > 0) {
        n = utf8_seq(p, left, &cp);
        if (n == 0) {
            snprintf(esc, sizeof(esc), "\\x%02x", p[0]);
            piece = esc;
            n = 1;
        } else if (cp == '\n' || cp == '\r' || cp == '\t') {
            snprintf(esc, sizeof(esc), "\\%c", cp == '\n' ? 'n' : cp == '\r' ? 'r' : 't');
            piece = esc;
        } else if (cp < 0x20 || cp == 0x7f) {
            snprintf(esc, sizeof(esc), "\\x%02x", (unsigned)cp);
            piece = esc;
        } else if (cp >= 0x80 && cp <= 0x9f) {
            snprintf(esc, sizeof(esc), "\\u%04x", (unsigned)cp);
            piece = esc;
        } else {
            piece = NULL;   /* printable: the bytes themselves */
        }
        size_t plen = piece ? strlen(piece) : n;

        if (used + plen >= cap)
            break;
        memcpy(out + used, piece ? piece : (const char *)p, plen);
        used += plen;
        p += n;
        left -= n;
    }
    out[used] = '\0';
    return out;
}

int et_text_reason(char *err, size_t errlen, int rc, const char *fmt, ...)
{
    va_list ap;

    if (err && errlen) {
        va_start(ap, fmt);
        vsnprintf(err, errlen, fmt, ap);
        va_end(ap);
    }
    return rc;
}
