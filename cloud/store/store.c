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

/* The backends of this build: PostgreSQL where libpq was found (a board's
 * cross build of the cloud side has none). */
static const struct et_store_backend *const store_backends[] = {
    &et_store_sqlite,
#ifdef ET_STORE_POSTGRESQL
    &et_store_postgresql,
#endif
};
#define N_BACKENDS (sizeof(store_backends) / sizeof(store_backends[0]))

const char *et_store_type_of(const char *target)
{
    if (target && (strncmp(target, "postgresql://", 13) == 0 ||
                   strncmp(target, "postgres://", 11) == 0 || strchr(target, '=')))
        return "postgresql";
    return "sqlite";
}

bool et_store_type_known(const char *type)
{
    for (size_t i = 0; i < N_BACKENDS; i++) {
        if (strcmp(store_backends[i]->type, type) == 0)
            return true;
    }
    return false;
}

int et_store_open(struct et_store **out, const char *type, const char *target,
                  unsigned flags, char *err, size_t errlen)
{
    size_t used;

    *out = NULL;
    if (!type)
        type = et_store_type_of(target);
    for (size_t i = 0; i < N_BACKENDS; i++) {
        if (strcmp(store_backends[i]->type, type) == 0)
            return store_backends[i]->open(out, target, flags, err, errlen);
    }
    used = (size_t)snprintf(err, errlen, "unknown store type \"%s\" (this build has:", type);
    for (size_t i = 0; i < N_BACKENDS && used < errlen; i++)
        used += (size_t)snprintf(err + used, errlen - used, "%s %s", i ? "," : "",
                                 store_backends[i]->type);
    if (used < errlen)
        snprintf(err + used, errlen - used, ")");
    return -EPROTONOSUPPORT;
}

void et_store_close(struct et_store *s)
{
    if (s)
        s->backend->close(s);
}

int et_store_maintain(struct et_store *s, int64_t now_ms, int64_t retention_ms, char *err,
                      size_t errlen)
{
    if (err && errlen)
        err[0] = '\0';
    if (!s->backend->maintain)
        return retention_ms > 0 ? -EOPNOTSUPP : 0;
    return s->backend->maintain(s, now_ms, retention_ms, err, errlen);
}

void et_store_describe(const char *target, char *out, size_t len)
{
    const char *p, *at, *slash;
    size_t n = 0;

    if (!target)
        target = "";
    /* A URI's password: postgresql://user:SECRET@host/db. */
    slash = strstr(target, "://");
    at = slash ? strchr(slash + 3, '@') : NULL;
    p = slash ? strchr(slash + 3, ':') : NULL;
    if (at && p && p < at) {
        snprintf(out, len, "%.*s:***%s", (int)(p - target), target, at);
        return;
    }
    /* Keywords: password=SECRET (quoted or not). */
    p = strstr(target, "password");
    if (!p || !strchr(p, '=')) {
        snprintf(out, len, "%s", target);
        return;
    }
    n = (size_t)(p - target);
    at = strchr(p, '=') + 1;
    while (*at == ' ')
        at++;
    if (*at == '\'') {
        for (at++; *at && *at != '\''; at++)
            if (*at == '\\' && at[1])
                at++;
        if (*at)
            at++;
    } else {
        at += strcspn(at, " ");
    }
    snprintf(out, len, "%.*spassword=***%s", (int)n, target, at);
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
