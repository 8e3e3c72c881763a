/*
 * The store's front door: picks the backend by type and hands out the
 * writer and the reader it made. See store.h.
 */
#include "edgetel/store.h"
#include "edgetel/store_open.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "backend.h"

static const struct et_store_backend *const store_backends[] = {
    &et_store_sqlite,
};

int et_store_open(struct et_store **out, const char *type, const char *target,
                  unsigned flags, char *err, size_t errlen)
{
    *out = NULL;
    if (!type)
        type = ET_STORE_DEFAULT_TYPE;
    for (size_t i = 0; i < sizeof(store_backends) / sizeof(store_backends[0]); i++) {
        if (strcmp(store_backends[i]->type, type) == 0)
            return store_backends[i]->open(out, target, flags, err, errlen);
    }
    snprintf(err, errlen, "unknown store type \"%s\" (this build has: sqlite)", type);
    return -EPROTONOSUPPORT;
}

void et_store_close(struct et_store *s)
{
    if (s)
        s->backend->close(s);
}

struct et_store_writer *et_store_writer(struct et_store *s)
{
    return s->writer;
}

struct et_store_reader *et_store_reader(struct et_store *s)
{
    return s->reader;
}

struct et_store_config *et_store_config(struct et_store *s)
{
    return s->config;
}
