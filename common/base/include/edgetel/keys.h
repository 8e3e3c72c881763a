/*
 * Typed key tables: one row per key says what its text is parsed as, which
 * member of the caller's struct it lands in, its default, its range and a
 * line of help (fluent-bit's config_map). The agent's and the aggregator's
 * config files (edgetel/ini.h adds the section) and every driver's
 * parameters (drivers/driver.h) are tables of these rows, so a value is
 * read, checked and refused the same way wherever it is written, e.g.
 *   interval "5x": expected a duration like 10s
 *   address "0x99": must be between 0x03 and 0x77
 * The caller puts the place in front ("agent.conf:7: [agent] ...").
 *
 * Only et_base is needed, so drivers use these tables without linking the
 * INI loader. Nothing here keeps state; tables are const.
 */
#ifndef EDGETEL_KEYS_H
#define EDGETEL_KEYS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* What a key's text is parsed as, and the member it lands in. */
enum et_key_type {
    ET_KEY_STRING,    /* char *, malloc'd; freed by et_keys_free_strings() */
    ET_KEY_LIST,      /* char *: names separated by commas, "eth0, wlan0" */
    ET_KEY_INT,       /* signed or unsigned integer of .size 1, 2, 4 or 8 bytes */
    ET_KEY_NUMBER,    /* double: a finite decimal number such as 2.5 or -1e3 */
    ET_KEY_DURATION,  /* int64_t milliseconds (et_parse_duration_ms: 500ms, 90s, 5m) */
    ET_KEY_SIZE,      /* uint64_t bytes (et_parse_size: 4096, 64k, 10M) */
    ET_KEY_BOOL,      /* bool (et_parse_bool: true/false, yes/no, on/off, 1/0) */
    ET_KEY_LOG_LEVEL, /* enum et_log_level (error, warn, info, debug) */
    ET_KEY_ENUM,      /* int: the index of the value in .choices */
};

struct et_key {
    const char *name;           /* the key as written in the file */
    enum et_key_type type;
    size_t offset;              /* offsetof(struct, member): use ET_KEY_FIELD */
    size_t size;                /* sizeof the member, checked against the type */
    const char *def;            /* default in file syntax; NULL: 0, false or NULL */
    /*
     * INT, NUMBER, DURATION (ms), SIZE (bytes): when min < max the value
     * must lie in [min, max]. Without a range an INT takes the signed range
     * of its member and the others any value of their type. An INT with
     * min >= 0 is stored unsigned (a signed member then needs max within
     * its signed range). A range that does not fit the member, or a member
     * whose size does not match the type, is refused as a table error
     * rather than truncated.
     */
    int64_t min, max;
    const char *const *choices; /* ENUM: NULL-terminated names */
    /* STRING, LIST: optional check of the text; NULL when it is fine, else
     * what was expected ("a DS18B20 id like 28-01193a5f2e6b"). */
    const char *(*check)(const char *value);
    /* INT: read as C writes it (0x76, 118; strtoll base 0) and shown in hex,
     * for I2C addresses and registers. */
    bool hex;
    const char *help;           /* one line for documentation and listings */
};

#define ET_KEY_FIELD(type, member) offsetof(type, member), sizeof(((type *)0)->member)

/* Room for a value quoted back by et_key_set(): at most 64 characters. */
#define ET_KEY_QUOTE_BUF 65

/**
 * Set k's member of obj from its text form, checking type and range, and
 * replacing (freeing) what a string member held. On failure the member
 * keeps its value.
 * @param why  receives the reason on failure; may be NULL when whylen is 0.
 * @return 0; -ENOMEM; or -EINVAL with why set to "NAME \"VALUE\": what was
 *         expected" (the value quoted by et_key_quote(), cut when long), or
 *         to "NAME: internal error: ..." when the row itself is wrong.
 */
int et_key_set(const struct et_key *k, void *obj, const char *value, char *why, size_t whylen);

/**
 * Give each of the n keys its default, or 0, false or NULL without one (a
 * string member's old value is freed). A default that does not parse is a
 * bug in the table.
 * @return 0, -ENOMEM, or -EINVAL with et_key_set()'s reason in why.
 */
int et_keys_set_defaults(const struct et_key *keys, size_t n, void *obj, char *why,
                         size_t whylen);

/** Free the STRING and LIST members of obj that the n keys name, and NULL them. */
void et_keys_free_strings(const struct et_key *keys, size_t n, void *obj);

/**
 * Check a row against itself: the member's size is the one its type
 * writes, and an INT range fits the member. et_key_set() checks the same
 * before every write; callers that hold a table check it once up front.
 * @return 0, or -EINVAL with why set to "NAME: internal error: ...".
 */
int et_key_check(const struct et_key *k, char *why, size_t whylen);

/**
 * The size of the member k's type writes: sizeof(double) for NUMBER and
 * so on; for INT k->size when it is 1, 2, 4 or 8, else 0.
 */
size_t et_key_member_size(const struct et_key *k);

/**
 * Describe a key for a person: type, range or choices and default, e.g.
 * "integer, 0x for hex, 0x03 to 0x77; default 0x76" or
 * "forced or normal; default forced".
 * @return the length written, as snprintf (output cut to len).
 */
int et_key_describe(const struct et_key *k, char *buf, size_t len);

/**
 * Copy s into buf (len bytes) for quoting in a message to a person: control
 * characters become '?', so a hostile file cannot put escape sequences on a
 * terminal or split a log line, and text that does not fit is cut to its
 * first len - 4 characters and "...". Returns buf.
 */
const char *et_key_quote(const char *s, char *buf, size_t len);

#endif
