/*
 * Text from outside, checked and made safe for a person.
 *
 * Every string a device sends is someone else's bytes: it may not be
 * UTF-8, may hide a NUL that cuts it short in C, and may carry control
 * characters that a terminal obeys (ESC [ 2 J clears the screen, a
 * newline starts a forged log line). The wire codec refuses what is not
 * text at ingest (et_text_check); whatever is written for a person, the
 * log (log.c) and edgetelctl's output (ctl/src/report.c), goes through
 * et_text_escape() so what the device sent is shown, never obeyed.
 *
 * Nothing here allocates or keeps state; et_base only.
 */
#ifndef EDGETEL_TEXT_H
#define EDGETEL_TEXT_H

#include <stdbool.h>
#include <stddef.h>

/* What et_text_check() found first. */
enum et_text_problem {
    ET_TEXT_OK = 0,
    ET_TEXT_NUL,          /* a NUL byte inside the text */
    ET_TEXT_BAD_UTF8,     /* not well-formed UTF-8 (RFC 3629) */
    ET_TEXT_CONTROL,      /* a control character: C0, DEL or C1 */
};

/**
 * Check len bytes of s: well-formed UTF-8 (no overlong forms, no
 * surrogates, nothing above U+10FFFF), no NUL, and, unless control_ok,
 * no control character (U+0000-U+001F, U+007F, U+0080-U+009F).
 * @param at (may be NULL) gets the offset of the first byte at fault.
 * @return ET_TEXT_OK or the first problem.
 */
enum et_text_problem et_text_check(const char *s, size_t len, bool control_ok, size_t *at);

/** A few words for a problem, for a reason: "holds a NUL byte", "is not valid UTF-8", ... */
const char *et_text_problem_name(enum et_text_problem p);

/*
 * Room et_text_escape() needs for n bytes of input, so nothing is cut:
 * every byte may become four ("\x1b").
 */
#define ET_TEXT_ESCAPED_MAX(n) (4 * (n) + 1)

/**
 * Copy s into out (cap bytes, always NUL-terminated when cap > 0) so that
 * a terminal shows it and obeys nothing in it: newline, CR and tab become
 * \n \r \t; other C0 characters and DEL become \xHH (ESC is \x1b); C1
 * characters (U+0080-U+009F) become \u00HH; a byte that is not part of
 * well-formed UTF-8 becomes \xHH. Printable text, UTF-8 included, is
 * copied as it is. When out is too small the copy ends at a whole
 * character or escape.
 * @return out.
 */
const char *et_text_escape(const char *s, char *out, size_t cap);

/** Whether et_text_escape() would change s (a fast path for callers). */
bool et_text_needs_escape(const char *s);

/**
 * Write a reason for a person into err (errlen bytes; nothing when err is
 * NULL or errlen 0) and return rc, so a failing path is one statement:
 *   return et_text_reason(err, errlen, -ENOKEY, "key %s is not trusted", id);
 */
int et_text_reason(char *err, size_t errlen, int rc, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

#endif
