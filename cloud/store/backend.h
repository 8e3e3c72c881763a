/*
 * What a store backend gives the front door (store.c), and the handle
 * every backend's store starts with. Private to et_store: callers see
 * struct et_store only through store.h.
 */
#ifndef EDGETEL_STORE_BACKEND_H
#define EDGETEL_STORE_BACKEND_H

#include <stddef.h>
#include <stdint.h>

#include "edgetel/store.h"
#include "edgetel/store_config.h"
#include "edgetel/store_reader.h"
#include "edgetel/store_writer.h"

struct et_store_backend {
    const char *type;   /* matches [store] type */
    /* As et_store_open(); target is the backend's own (a file, a URI). */
    int (*open)(struct et_store **out, const char *target, unsigned flags, char *err,
                size_t errlen);
    /* Roll back what is open and free everything; never called with NULL. */
    void (*close)(struct et_store *s);
    /* Optional (NULL: nothing to do): et_store_maintain(). */
    int (*maintain)(struct et_store *s, int64_t now_ms, int64_t retention_ms, char *err,
                    size_t errlen);
};

/* Every backend's store starts with this, filled in by its open. */
struct et_store {
    const struct et_store_backend *backend;
    struct et_store_writer *writer;   /* NULL when opened ET_STORE_READONLY */
    struct et_store_reader *reader;
    struct et_store_config *config;
};

extern const struct et_store_backend et_store_sqlite;
extern const struct et_store_backend et_store_postgresql;

#endif
