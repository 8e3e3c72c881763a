/*
 * The stream's metric dictionary on the board: see dictionary.h.
 */
#define _GNU_SOURCE
#include "dictionary.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "edgetel/log.h"

#define DICT_LINE_MAX 1024

struct et_dictionary {
    char *path;                 /* PATH.dict */
    char header[80];            /* "edgetel-dict 1 <stream hex>\n" */
    struct et_dict *cur;
    struct et_dict *prev;       /* the one before, while batches of it may be sent */
    int fd;                     /* open for appending; -1 until the first save */
};

struct et_dict *et_dictionary_current(struct et_dictionary *dy)
{
    return dy->cur;
}

const struct et_dict *et_dictionary_find(const struct et_dictionary *dy, uint64_t id)
{
    if (id && dy->cur->id == id)
        return dy->cur;
    if (id && dy->prev && dy->prev->id == id)
        return dy->prev;
    return NULL;
}

/* One entry line into e (pointers into line, whose tabs become NULs). */
static bool parse_entry(char *line, struct et_dict_entry *e)
{
    char *f[5], *p = line, *end;

    for (size_t n = 0; n < 5; n++) {
        f[n] = p;
        p = strchr(p, '\t');
        if (n < 4 && !p)
            return false;
        if (p)
            *p++ = '\0';
    }
    if (p || !*f[2])
        return false;
    e->type = (enum et_wire_type)strtol(f[0], &end, 10);
    if (*end || e->type < ET_WIRE_TYPE_NONE || e->type > ET_WIRE_TYPE_BOOL)
        return false;
    e->scale = strtod(f[1], &end);
    if (*end || !(e->scale > 0))
        return false;
    e->name = f[2];
    e->unit = f[3];
    e->tags = *f[4] ? f[4] : NULL;
    return true;
}

/*
 * Read PATH.dict: the last two dictionaries in it. *valid gets the length
 * of the whole lines that parsed (the rest is cut off). -EBADMSG for a
 * file of another stream or one that does not parse.
 */
static int dictionary_load(struct et_dictionary *dy, FILE *f, off_t *valid)
{
    char line[DICT_LINE_MAX];
    struct et_dict *tmp;
    off_t at = 0;
    bool first = true;
    int rc;

    while (fgets(line, sizeof(line), f)) {
        size_t n = strlen(line);
        struct et_dict_entry e;
        unsigned long long id;

        if (n == 0 || line[n - 1] != '\n')
            break;      /* cut short by a crash: dropped */
        line[n - 1] = '\0';
        if (first) {
            if (strncmp(line, dy->header, strlen(dy->header) - 1) != 0 ||
                line[strlen(dy->header) - 1] != '\0')
                return -EBADMSG;
            first = false;
        } else if (sscanf(line, "dict %llu", &id) == 1 && strncmp(line, "dict ", 5) == 0) {
            if (id == 0)
                return -EBADMSG;
            /* The current one becomes the previous; two are kept. */
            tmp = dy->prev;
            dy->prev = dy->cur;
            dy->cur = tmp;
            et_dict_clear(dy->cur);
            dy->cur->id = id;
        } else if (dy->cur->id == 0 || !parse_entry(line, &e)) {
            return -EBADMSG;
        } else if ((rc = et_dict_add(dy->cur, &e)) < 0) {
            return rc;
        }
        at += (off_t)n;
    }
    *valid = at;
    return first ? -EBADMSG : 0;
}

int et_dictionary_open(struct et_dictionary **out, const char *outbox_path,
                       const uint8_t *stream_id)
{
    struct et_dictionary *dy = calloc(1, sizeof(*dy));
    size_t used;
    off_t valid = 0;
    FILE *f;
    int rc = -ENOMEM;

    *out = NULL;
    if (!dy)
        return -ENOMEM;
    dy->fd = -1;
    used = (size_t)snprintf(dy->header, sizeof(dy->header), "edgetel-dict 1 ");
    for (size_t i = 0; i < ET_STREAM_ID_LEN; i++)
        used += (size_t)snprintf(dy->header + used, sizeof(dy->header) - used, "%02x",
                                 stream_id[i]);
    snprintf(dy->header + used, sizeof(dy->header) - used, "\n");
    if (asprintf(&dy->path, "%s.dict", outbox_path) < 0) {
        dy->path = NULL;
        goto fail;
    }
    if (et_dict_create(&dy->cur) < 0 || et_dict_create(&dy->prev) < 0)
        goto fail;
    f = fopen(dy->path, "r");
    if (f) {
        rc = dictionary_load(dy, f, &valid);
        fclose(f);
        if (rc == -EBADMSG) {
            /* Another stream's, or damaged: begin again. The next
             * dictionary's id is a new seq, so nothing changes meaning. */
            et_info("outbox", "%s: %s; starting a new metric dictionary", dy->path,
                    valid ? "damaged" : "not this outbox's");
            et_dict_clear(dy->cur);
            et_dict_clear(dy->prev);
            valid = 0;
        } else if (rc < 0) {
            goto fail;
        }
        if (valid > 0) {
            dy->fd = open(dy->path, O_WRONLY | O_APPEND | O_CLOEXEC);
            if (dy->fd < 0 || ftruncate(dy->fd, valid) != 0) {
                rc = -errno;
                goto fail;
            }
        }
    } else if (errno != ENOENT) {
        rc = -errno;
        goto fail;
    }
    *out = dy;
    return 0;
fail:
    et_dictionary_close(dy);
    return rc;
}

void et_dictionary_close(struct et_dictionary *dy)
{
    if (!dy)
        return;
    if (dy->fd >= 0)
        close(dy->fd);
    et_dict_destroy(dy->cur);
    et_dict_destroy(dy->prev);
    free(dy->path);
    free(dy);
}

/* Append d's "dict" line (when with_id) and entries [from, d->n) to buf. */
static int dict_text(const struct et_dict *d, size_t from, bool with_id, char **buf,
                     size_t *len)
{
    FILE *m = open_memstream(buf, len);

    if (!m)
        return -ENOMEM;
    if (with_id)
        fprintf(m, "dict %" PRIu64 "\n", d->id);
    for (size_t i = from; i < d->n; i++) {
        const struct et_dict_entry *e = &d->e[i];
        const char *tags = e->tags ? e->tags : "";

        if (strpbrk(e->name, "\t\n") || strpbrk(e->unit, "\t\n") || strpbrk(tags, "\t\n")) {
            fclose(m);
            free(*buf);
            return -EINVAL;
        }
        fprintf(m, "%d\t%.17g\t%s\t%s\t%s\n", (int)e->type, e->scale, e->name, e->unit, tags);
    }
    if (fclose(m) != 0) {
        free(*buf);
        return -ENOMEM;
    }
    return 0;
}

static int write_all(int fd, const char *buf, size_t len)
{
    while (len > 0) {
        ssize_t n = write(fd, buf, len);

        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return -errno;
        buf += n;
        len -= (size_t)n;
    }
    return 0;
}

/*
 * Write the whole file anew through a rename: the header, the previous
 * dictionary (when it has an id) and the current one's id line when it
 * has one. Leaves fd open for appending.
 */
static int dictionary_rewrite(struct et_dictionary *dy)
{
    char *tmp = NULL, *a = NULL, *b = NULL;
    size_t alen = 0, blen = 0;
    int fd = -1, rc = -ENOMEM;

    if (asprintf(&tmp, "%s.tmp", dy->path) < 0)
        return -ENOMEM;
    if ((dy->prev->id && (rc = dict_text(dy->prev, 0, true, &a, &alen)) < 0) ||
        (dy->cur->id && (rc = dict_text(dy->cur, 0, true, &b, &blen)) < 0)) {
        a = b = NULL;
        goto out;
    }
    fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0 || (rc = write_all(fd, dy->header, strlen(dy->header))) < 0 ||
        (rc = write_all(fd, a ? a : "", alen)) < 0 || (rc = write_all(fd, b ? b : "", blen)) < 0)
        goto fail;
    if (fdatasync(fd) != 0 || rename(tmp, dy->path) != 0)
        goto fail;
    if (dy->fd >= 0)
        close(dy->fd);
    dy->fd = fd;
    fd = -1;
    rc = 0;
    goto out;
fail:
    if (rc == 0 || rc == -ENOMEM)
        rc = -errno;
    unlink(tmp);
out:
    if (fd >= 0)
        close(fd);
    free(tmp);
    free(a);
    free(b);
    return rc;
}

int et_dictionary_save(struct et_dictionary *dy, size_t from, uint64_t seq)
{
    struct et_dict *d = dy->cur;
    char *text = NULL;
    size_t len = 0;
    int rc;

    if (d->id == 0) {
        /* A new dictionary: its id line goes with its first entries. */
        d->id = seq;
        rc = dictionary_rewrite(dy);
        if (rc < 0) {
            d->id = 0;
            return rc;
        }
        /* The rewrite wrote every entry there is. */
        return 0;
    }
    if (from >= d->n)
        return 0;
    rc = dict_text(d, from, false, &text, &len);
    if (rc < 0)
        return rc;
    if (dy->fd < 0)
        rc = dictionary_rewrite(dy);
    else if ((rc = write_all(dy->fd, text, len)) == 0 && fdatasync(dy->fd) != 0)
        rc = -errno;
    free(text);
    if (rc < 0 && dy->fd >= 0) {
        /* Take back a part written: the file must end on a whole line of
         * what was saved before. A failed rewrite starts over next time. */
        close(dy->fd);
        dy->fd = -1;
    }
    return rc;
}

void et_dictionary_undo(struct et_dictionary *dy, size_t from)
{
    et_dict_truncate(dy->cur, from);
    if (dy->cur->n == 0 && dy->fd < 0)
        dy->cur->id = 0;
}

bool et_dictionary_rotate(struct et_dictionary *dy, uint64_t oldest_seq)
{
    struct et_dict *tmp;

    if (dy->cur->n < ET_DICTIONARY_ROTATE)
        return false;
    if (dy->prev->id && oldest_seq < dy->cur->id)
        return false;   /* batches of the previous one may still go: keep it */
    tmp = dy->prev;
    dy->prev = dy->cur;
    dy->cur = tmp;
    et_dict_clear(dy->cur);
    /* The file holds the previous one and, at the next save, the new one. */
    if (dictionary_rewrite(dy) < 0 && dy->fd >= 0) {
        close(dy->fd);
        dy->fd = -1;
    }
    et_info("outbox", "%s: began a new metric dictionary (the last one reached %zu entries)",
            dy->path, dy->prev->n);
    return true;
}
