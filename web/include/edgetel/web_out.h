/*
 * The web view's output: a bounded growing buffer, and the two ways text
 * from the store is written into it so that nothing in it is obeyed.
 *
 *   JSON      et_web_out_json_str(): a JSON string literal (RFC 8259): " and
 *             \ escaped, every control character as \u00XX, and < > & as
 *             \u003c \u003e \u0026 so that a body read as HTML by mistake
 *             holds no tag; a byte that is not part of well-formed UTF-8
 *             becomes U+FFFD, so the output is always valid UTF-8.
 *   Prometheus et_web_out_prom_label(): a label value of the text
 *             exposition format: \ " and newline escaped, invalid UTF-8
 *             as U+FFFD (the format is UTF-8).
 *
 * The store holds what devices sent: ingest refuses invalid UTF-8 and
 * control characters in most fields, but a store written by an older
 * edgetel or by hand may hold anything, so every writer here copes with
 * any bytes.
 *
 * A buffer never grows past its max: a write that would is dropped and
 * the buffer marked full, and the caller answers "result too large"
 * rather than a truncated body. et_base only; no state outside the struct.
 */
#ifndef EDGETEL_WEB_OUT_H
#define EDGETEL_WEB_OUT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct et_web_out {
    char *data;          /* NUL-terminated; NULL until the first write */
    size_t len;
    size_t cap;
    size_t max;          /* the most it may hold, NUL excluded */
    bool full;           /* a write was dropped: over max, or out of memory */
};

/** An empty buffer that holds at most max bytes. */
void et_web_out_init(struct et_web_out *o, size_t max);

/** Free the data; the buffer is empty again (its max kept). */
void et_web_out_free(struct et_web_out *o);

/** Hand the data to the caller (free() it), leaving the buffer empty. */
char *et_web_out_take(struct et_web_out *o, size_t *len);

void et_web_out_add(struct et_web_out *o, const char *s, size_t n);
void et_web_out_str(struct et_web_out *o, const char *s);
void et_web_out_printf(struct et_web_out *o, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/** s (NULL: "") as a JSON string literal, quotes included. */
void et_web_out_json_str(struct et_web_out *o, const char *s);
/** A JSON number: %.15g, or null when x is NaN or infinite (JSON has neither). */
void et_web_out_json_num(struct et_web_out *o, double x);

/** s (NULL: "") as the inside of a Prometheus label value (no quotes). */
void et_web_out_prom_label(struct et_web_out *o, const char *s);

/**
 * The length of the well-formed UTF-8 character at s (1 to 4), or 0 when
 * the bytes there are not one (a stray continuation byte, an overlong
 * form, a surrogate, past U+10FFFF, cut short by the NUL).
 */
size_t et_web_utf8_char(const unsigned char *s);

#endif
