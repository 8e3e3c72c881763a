#include "edgetel/ini.h"

#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <ini.h>   /* libinih */

struct seen {
    char *name;
    int line;
};

struct seen_list {
    struct seen *v;
    size_t n, cap;
};

struct loader {
    const struct et_ini_schema *schema;
    const char *name;
    void *obj;
    int *key_lines;

    /* The reader's view of the text. */
    const char *text;
    size_t len;
    size_t pos;
    int line;               /* lines handed to libinih so far = current line */

    /* The section being read. */
    char section[ET_INI_MAX_SECTION + 1];   /* normalised: "collector cpu" */
    const char *arg;                        /* inside section: "cpu" or "" */
    const struct et_ini_hook *hook;         /* NULL for a table section */
    struct seen_list keys;                  /* keys of this section so far */
    struct seen_list sections;              /* every section so far */

    int rc;                 /* first error; once set, reading stops */
    char *err;
    size_t errlen;
};

/* ---- helpers ------------------------------------------------------------- */

static const char *quote(const char *s, char *buf, size_t len)
{
    return et_key_quote(s, buf, len);
}

static void fail(struct loader *L, int rc, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Record the first error as "NAME:LINE: text" and make the reader stop. */
static void fail(struct loader *L, int rc, const char *fmt, ...)
{
    va_list ap;
    int n;

    if (L->rc)
        return;
    L->rc = rc;
    if (!L->err || !L->errlen)
        return;
    n = snprintf(L->err, L->errlen, "%s:%d: ", L->name, L->line);
    if (n < 0 || (size_t)n >= L->errlen)
        return;
    va_start(ap, fmt);
    vsnprintf(L->err + n, L->errlen - (size_t)n, fmt, ap);
    va_end(ap);
}

static int seen_add(struct seen_list *l, const char *name, int line)
{
    if (l->n == l->cap) {
        size_t cap = l->cap ? l->cap * 2 : 8;
        struct seen *v = realloc(l->v, cap * sizeof(*v));

        if (!v)
            return -ENOMEM;
        l->v = v;
        l->cap = cap;
    }
    l->v[l->n].name = strdup(name);
    if (!l->v[l->n].name)
        return -ENOMEM;
    l->v[l->n].line = line;
    l->n++;
    return 0;
}

static const struct seen *seen_find(const struct seen_list *l, const char *name)
{
    for (size_t i = 0; i < l->n; i++) {
        if (strcmp(l->v[i].name, name) == 0)
            return &l->v[i];
    }
    return NULL;
}

static void seen_clear(struct seen_list *l)
{
    for (size_t i = 0; i < l->n; i++)
        free(l->v[i].name);
    l->n = 0;
}

static void seen_free(struct seen_list *l)
{
    seen_clear(l);
    free(l->v);
    l->v = NULL;
    l->cap = 0;
}

/* ---- the table ------------------------------------------------------------ */

/*
 * The rows of an INI table each embed their typed key after the section, so
 * the key module's functions for whole tables are given one row at a time.
 */
static int set_defaults(const struct et_ini_schema *s, void *obj, char *why, size_t whylen)
{
    for (size_t i = 0; i < s->n_keys; i++) {
        int rc = et_keys_set_defaults(&s->keys[i].key, 1, obj, why, whylen);

        if (rc)
            return rc;
    }
    return 0;
}

void et_ini_free_strings(const struct et_ini_key *keys, size_t n, void *obj)
{
    for (size_t i = 0; i < n; i++)
        et_keys_free_strings(&keys[i].key, 1, obj);
}

/* ---- sections ------------------------------------------------------------ */

static bool table_has_section(const struct et_ini_schema *s, const char *section)
{
    for (size_t i = 0; i < s->n_keys; i++) {
        if (strcmp(s->keys[i].section, section) == 0)
            return true;
    }
    return false;
}

/* "agent, mqtt, collector NAME": what a person may write instead. */
static void list_sections(const struct et_ini_schema *s, char *buf, size_t len)
{
    size_t used = 0;

    buf[0] = '\0';
    for (size_t i = 0; i < s->n_keys && used < len; i++) {
        bool first = true;

        for (size_t j = 0; j < i; j++) {
            if (strcmp(s->keys[j].section, s->keys[i].section) == 0)
                first = false;
        }
        if (first)
            used += (size_t)snprintf(buf + used, len - used, "%s[%s]", used ? ", " : "",
                                     s->keys[i].section);
    }
    for (size_t i = 0; i < s->n_hooks && used < len; i++)
        used += (size_t)snprintf(buf + used, len - used, "%s[%s NAME]", used ? ", " : "",
                                 s->hooks[i].section);
}

/* text: what is between '[' and ']', NUL-terminated, at most ET_INI_MAX_SECTION. */
static void enter_section(struct loader *L, const char *text)
{
    char word[ET_INI_MAX_SECTION + 1], q[ET_INI_QUOTE_BUF], why[256];
    const char *p = text, *arg, *end;
    const struct seen *prev;
    size_t wlen, alen;

    while (isspace((unsigned char)*p))
        p++;
    for (wlen = 0; p[wlen] && !isspace((unsigned char)p[wlen]); wlen++)
        ;
    memcpy(word, p, wlen);
    word[wlen] = '\0';
    arg = p + wlen;
    while (isspace((unsigned char)*arg))
        arg++;
    end = arg + strlen(arg);
    while (end > arg && isspace((unsigned char)end[-1]))
        end--;
    alen = (size_t)(end - arg);

    L->hook = NULL;
    L->arg = "";
    seen_clear(&L->keys);
    if (!wlen) {
        fail(L, -EINVAL, "empty section header \"[]\"");
        return;
    }
    /* word, a blank and arg are no longer than text, so they fit L->section. */
    memcpy(L->section, word, wlen);
    L->section[wlen] = '\0';
    if (alen) {
        L->section[wlen] = ' ';
        memcpy(L->section + wlen + 1, arg, alen);
        L->section[wlen + 1 + alen] = '\0';
    }
    L->arg = alen ? L->section + wlen + 1 : "";

    prev = seen_find(&L->sections, L->section);
    if (prev) {
        fail(L, -EINVAL, "section [%s] given twice (first on line %d)",
             quote(L->section, q, sizeof(q)), prev->line);
        return;
    }
    if (seen_add(&L->sections, L->section, L->line)) {
        fail(L, -ENOMEM, "out of memory");
        return;
    }
    for (size_t i = 0; i < L->schema->n_hooks; i++) {
        const struct et_ini_hook *h = &L->schema->hooks[i];

        if (strcmp(h->section, word) == 0) {
            int rc;

            L->hook = h;
            why[0] = '\0';
            rc = h->begin ? h->begin(L->obj, L->arg, L->line, why, sizeof(why)) : 0;
            if (rc)
                fail(L, rc, "[%s] %s", quote(L->section, q, sizeof(q)), why);
            return;
        }
    }
    if (!alen && table_has_section(L->schema, word))
        return;
    list_sections(L->schema, why, sizeof(why));
    fail(L, -EINVAL, "unknown section [%s] (known: %s)", quote(L->section, q, sizeof(q)), why);
}

/* ---- the reader: one line per call, counted ------------------------------- */

/*
 * libinih's own rule for where a token ends: at one of chars, or at an
 * inline comment, a ';' that follows whitespace.
 */
static const char *find_chars_or_comment(const char *s, const char *chars)
{
    bool was_space = false;

    while (*s && !strchr(chars, *s) && !(was_space && *s == ';')) {
        was_space = isspace((unsigned char)*s);
        s++;
    }
    return s;
}

/*
 * Check one line (NUL-terminated, leading blanks removed) before libinih
 * sees it, so that every line libinih would reject, or silently truncate,
 * gets a message that says what is wrong. Section headers are handled here
 * because libinih does not tell its handler about them.
 */
static void check_line(struct loader *L, char *s)
{
    char q[ET_INI_QUOTE_BUF];

    if (!*s || *s == ';' || *s == '#')
        return;
    if (*s == '[') {
        char *close = (char *)find_chars_or_comment(s + 1, "]");
        const char *rest;
        size_t n;

        if (*close != ']') {
            fail(L, -EINVAL, "section header \"%s\" has no closing ']'", quote(s, q, sizeof(q)));
            return;
        }
        for (rest = close + 1; isspace((unsigned char)*rest); rest++)
            ;
        if (*rest && *rest != ';' && *rest != '#') {
            fail(L, -EINVAL, "unexpected text \"%s\" after the section header",
                 quote(rest, q, sizeof(q)));
            return;
        }
        n = (size_t)(close - (s + 1));
        if (n > ET_INI_MAX_SECTION) {
            fail(L, -EINVAL, "section header longer than %d characters", ET_INI_MAX_SECTION);
            return;
        }
        *close = '\0';
        enter_section(L, s + 1);
        *close = ']';
        return;
    }
    {
        const char *sep = find_chars_or_comment(s, "=:");

        if (*sep != '=' && *sep != ':') {
            fail(L, -EINVAL, "expected \"key = value\" or \"[section]\", not \"%s\"",
                 quote(s, q, sizeof(q)));
            return;
        }
        if (sep == s) {
            fail(L, -EINVAL, "no key before '%c'", *sep);
            return;
        }
    }
}

static char *reader(char *str, int num, void *stream)
{
    struct loader *L = stream;
    const char *start, *end, *nl;
    size_t n;

    if (L->rc || L->pos >= L->len)
        return NULL;
    start = L->text + L->pos;
    nl = memchr(start, '\n', L->len - L->pos);
    end = nl ? nl : L->text + L->len;
    L->pos = (size_t)(end - L->text) + (nl ? 1 : 0);
    L->line++;

    if (end > start && end[-1] == '\r')
        end--;
    if (L->line == 1 && end - start >= 3 && memcmp(start, "\xEF\xBB\xBF", 3) == 0)
        start += 3;
    /* Leading blanks are dropped so libinih never sees a continuation line. */
    while (start < end && isspace((unsigned char)*start))
        start++;
    n = (size_t)(end - start);
    /* Room for "\n" and NUL: a line that fills libinih's buffer without a
     * line break is one libinih would split or discard. */
    if (n > ET_INI_MAX_LINE || n + 2 > (size_t)num) {
        fail(L, -EINVAL, "line longer than %d characters",
             ET_INI_MAX_LINE < num - 2 ? ET_INI_MAX_LINE : num - 2);
        return NULL;
    }
    /* A stray CR or escape byte inside a value would end up in a path or a
     * log line; no config needs one. Tabs are blanks. */
    for (size_t i = 0; i < n; i++) {
        unsigned char ch = (unsigned char)start[i];

        if ((ch < 0x20 && ch != '\t') || ch == 0x7f) {
            fail(L, -EINVAL, "control character 0x%02x in the line", ch);
            return NULL;
        }
    }
    memcpy(str, start, n);
    str[n] = '\0';
    check_line(L, str);
    if (L->rc)
        return NULL;
    str[n] = '\n';
    str[n + 1] = '\0';
    return str;
}

/* ---- the handler ----------------------------------------------------------- */

static int handler(void *user, const char *section, const char *key, const char *value)
{
    struct loader *L = user;
    char q[ET_INI_QUOTE_BUF], qs[ET_INI_QUOTE_BUF], why[256];
    const struct seen *prev;
    int rc;

    if (L->rc)
        return 0;
    if (!L->section[0]) {
        fail(L, -EINVAL, "key \"%s\" comes before any [section]", quote(key, q, sizeof(q)));
        return 0;
    }
    (void)section;  /* the reader tracked the header itself, normalised */
    quote(L->section, qs, sizeof(qs));
    if (!*value) {
        fail(L, -EINVAL, "[%s] %s has no value", qs, quote(key, q, sizeof(q)));
        return 0;
    }
    prev = seen_find(&L->keys, key);
    if (prev) {
        fail(L, -EINVAL, "[%s] %s given twice (first on line %d)", qs, quote(key, q, sizeof(q)),
             prev->line);
        return 0;
    }
    if (seen_add(&L->keys, key, L->line)) {
        fail(L, -ENOMEM, "out of memory");
        return 0;
    }
    why[0] = '\0';
    if (L->hook) {
        rc = L->hook->key ? L->hook->key(L->obj, L->arg, key, value, L->line, why, sizeof(why))
                          : -EINVAL;
        if (rc) {
            if (!why[0])
                snprintf(why, sizeof(why), "unknown key \"%s\"", quote(key, q, sizeof(q)));
            fail(L, rc, "[%s] %s", qs, why);
            return 0;
        }
        return 1;
    }
    for (size_t i = 0; i < L->schema->n_keys; i++) {
        const struct et_ini_key *k = &L->schema->keys[i];

        if (strcmp(k->section, L->section) || strcmp(k->key.name, key))
            continue;
        rc = et_key_set(&k->key, L->obj, value, why, sizeof(why));
        if (rc) {
            fail(L, rc, "[%s] %s", qs, why);
            return 0;
        }
        if (L->key_lines)
            L->key_lines[i] = L->line;
        return 1;
    }
    fail(L, -EINVAL, "unknown key \"%s\" in [%s]", quote(key, q, sizeof(q)), qs);
    return 0;
}

int et_ini_parse(const struct et_ini_schema *schema, const char *text, size_t len,
                 const char *name, void *obj, int *key_lines, char *err, size_t errlen)
{
    struct loader L = {
        .schema = schema, .name = name, .obj = obj, .key_lines = key_lines,
        .text = text, .len = len, .err = err, .errlen = errlen,
    };
    const char *nul;
    char why[256];
    int rc;

    if (err && errlen)
        err[0] = '\0';
    if (key_lines)
        memset(key_lines, 0, schema->n_keys * sizeof(*key_lines));
    rc = set_defaults(schema, obj, why, sizeof(why));
    if (rc) {
        if (err && errlen)
            snprintf(err, errlen, "%s: default of %s", name, why);
        return rc;
    }
    nul = memchr(text, '\0', len);
    if (nul) {
        /* Count the lines up to it so the message points at the right one. */
        for (const char *p = text; p < nul; p++)
            L.line += *p == '\n';
        L.line++;
        fail(&L, -EINVAL, "NUL byte in the text: not a config file?");
        return L.rc;
    }
    rc = ini_parse_stream(reader, &L, handler, &L);
    if (!L.rc && rc == -2)
        fail(&L, -ENOMEM, "out of memory");
    else if (!L.rc && rc != 0) {
        /* The reader checks every line libinih rejects; this is a safety net. */
        L.line = rc;
        fail(&L, -EINVAL, "cannot read this line");
    }
    seen_free(&L.keys);
    seen_free(&L.sections);
    return L.rc;
}

int et_ini_read_file(const char *path, size_t max_bytes, char **text, size_t *len,
                     char *err, size_t errlen)
{
    FILE *f;
    char *buf = NULL;
    size_t n;
    int rc = 0;

    *text = NULL;
    *len = 0;
    f = fopen(path, "r");
    if (!f) {
        rc = -errno;
        snprintf(err, errlen, "%s: cannot open: %s", path, strerror(-rc));
        return rc;
    }
    /* One byte over the limit tells a file at the limit from a longer one. */
    buf = malloc(max_bytes + 2);
    if (!buf) {
        rc = -ENOMEM;
        snprintf(err, errlen, "%s: out of memory", path);
        goto out;
    }
    n = fread(buf, 1, max_bytes + 1, f);
    if (ferror(f)) {
        rc = -EIO;
        snprintf(err, errlen, "%s: cannot read: %s", path, strerror(errno));
        goto out;
    }
    if (n > max_bytes) {
        rc = -EFBIG;
        snprintf(err, errlen, "%s: larger than %zu bytes: not a config file?", path, max_bytes);
        goto out;
    }
    buf[n] = '\0';
    *text = buf;
    *len = n;
    buf = NULL;
out:
    free(buf);
    fclose(f);
    return rc;
}

int et_ini_load_file(const char *path, size_t max_bytes, et_ini_text_parser parse, void *obj,
                     char *err, size_t errlen)
{
    char *text = NULL;
    size_t len = 0;
    int rc = et_ini_read_file(path, max_bytes, &text, &len, err, errlen);

    if (rc == 0)
        rc = parse(text, len, path, obj, err, errlen);
    free(text);
    return rc;
}
