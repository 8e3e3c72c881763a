/*
 * Table-driven INI loading on libinih, shared by the agent, the aggregator
 * and edgetelctl.
 *
 * The caller describes its struct with a table of keys (a section and a
 * typed row of edgetel/keys.h: key, type, offsetof, default, range, help)
 * and, for sections whose keys are not known in advance such as
 * "[collector NAME]", a hook, which may parse with a key table of its own
 * (et_key_set). et_ini_parse() then applies
 * the defaults, reads the text and fills the struct. It stops at the first
 * problem and describes it as "NAME:LINE: what is wrong", for example
 *   agent.conf:7: unknown key "hots" in [mqtt]
 *   agent.conf:3: [agent] batch_interval "5x": expected a duration like 10s
 *
 * The syntax is libinih's: "[section]" headers, "key = value" lines
 * ("key: value" too), whole-line comments starting with ';' or '#', and
 * inline comments starting with " ;" (a ';' after whitespace). On top of
 * that this loader
 * - allows indentation and gives it no meaning: libinih's multi-line values
 *   (an indented line continuing the previous value) are not supported, as
 *   they turn an innocently indented "key = value" into part of another
 *   value;
 * - rejects lines it cannot read, keys before the first section, unknown
 *   sections and keys, a key given twice in a section, a section given
 *   twice, empty values, and lines longer than ET_INI_MAX_LINE;
 * - counts lines itself, because Debian's libinih is built without
 *   INI_HANDLER_LINENO.
 * Parsing needs no global state and is safe in several threads at once.
 */
#ifndef EDGETEL_INI_H
#define EDGETEL_INI_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "edgetel/keys.h"

/* Longest line accepted, without its line break. libinih reads lines into a
 * 200-byte buffer (INI_MAX_LINE); the loader keeps room for "\n" and NUL. */
#define ET_INI_MAX_LINE 197
/* Longest section header text between '[' and ']' (libinih's MAX_SECTION - 1). */
#define ET_INI_MAX_SECTION 49

/* A key of the table: the section it belongs to and the typed row that
 * parses its value (edgetel/keys.h). */
struct et_ini_key {
    const char *section;    /* "agent" for [agent] */
    struct et_key key;      /* name, type, ET_KEY_FIELD(struct, member), default, ... */
};

/*
 * A family of sections handled by the caller: every header whose first word
 * is .section ("[collector cpu]" for "collector"). arg is the rest of the
 * header with surrounding blanks removed ("cpu"), "" when there is none.
 * The callbacks return 0, or -errno after writing the reason into why;
 * the loader turns it into "NAME:LINE: [collector cpu] <why>".
 * The loader looks each new section and key up among those seen before
 * (to refuse repeats), so a hook should bound how many it accepts.
 */
struct et_ini_hook {
    const char *section;
    /* At the header line. */
    int (*begin)(void *obj, const char *arg, int line, char *why, size_t whylen);
    /* For each "key = value" of the section, in file order; value is not empty
     * and the loader has already rejected a key given twice. */
    int (*key)(void *obj, const char *arg, const char *key, const char *value, int line,
               char *why, size_t whylen);
};

struct et_ini_schema {
    const struct et_ini_key *keys;
    size_t n_keys;
    const struct et_ini_hook *hooks;
    size_t n_hooks;
};

/**
 * Apply the schema's defaults to obj, then parse text (len bytes; a NUL
 * byte inside is an error) into it.
 * @param name      stands for the file in messages; borrowed for the call.
 * @param obj       the caller's struct; the caller zeroes it first.
 * @param key_lines NULL, or schema->n_keys ints that receive the line each
 *                  table key was set on (0: not in the text, default kept),
 *                  for the caller's checks of the whole.
 * @return 0; -EINVAL with "NAME:LINE: reason" in err; -ENOMEM; or a hook's
 *         error. On failure obj may hold some values: free its strings with
 *         et_ini_free_strings() and whatever the hooks allocated.
 */
int et_ini_parse(const struct et_ini_schema *schema, const char *text, size_t len,
                 const char *name, void *obj, int *key_lines, char *err, size_t errlen);

/* Room for a key or section quoted in the loader's messages: up to 67
 * characters, or 64 and "...". */
#define ET_INI_QUOTE_BUF 68

/** et_key_quote(), under the name the loader's callers know. */
static inline const char *et_ini_quote(const char *s, char *buf, size_t len)
{
    return et_key_quote(s, buf, len);
}

/** Free the string members of obj that the table names, and NULL them. */
void et_ini_free_strings(const struct et_ini_key *keys, size_t n, void *obj);

/**
 * Read a whole config file of at most max_bytes into a malloc'd *text
 * (NUL-terminated; *len without the NUL). On failure returns -errno
 * (-EFBIG when larger) and writes "PATH: what is wrong" into err.
 */
int et_ini_read_file(const char *path, size_t max_bytes, char **text, size_t *len,
                     char *err, size_t errlen);

/* A program's whole-config parser: text (len bytes) named name into obj. */
typedef int (*et_ini_text_parser)(const char *text, size_t len, const char *name, void *obj,
                                  char *err, size_t errlen);

/**
 * The one way a program loads its config file: read path (et_ini_read_file)
 * and hand the text to parse under the file's name, so every message reads
 * "PATH:LINE: what is wrong".
 * @return et_ini_read_file's or parse's result.
 */
int et_ini_load_file(const char *path, size_t max_bytes, et_ini_text_parser parse, void *obj,
                     char *err, size_t errlen);

#endif
