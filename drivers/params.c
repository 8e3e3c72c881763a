/*
 * A driver's params struct, made from its key table (driver.h): the
 * parsing itself is the key module's (edgetel/keys.h), shared with the
 * config files; what is a driver's own is the struct's life and the check
 * that the table fits inside it. Callers may pass why NULL with whylen 0
 * (snprintf then writes nothing).
 */
#include "params.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The table promises a member of the type's size inside the struct: a wrong
 * table would write past it, so the promise is checked before the struct
 * is made. */
static int check_entry(const struct et_driver *drv, const struct et_key *p, char *why,
                       size_t whylen)
{
    char reason[160];

    if (p->size != et_key_member_size(p) || p->offset + p->size > drv->params_size) {
        snprintf(why, whylen, "%s: %s: internal error: a member of %zu bytes at %zu in a struct "
                 "of %zu", drv->name, p->name, p->size, p->offset, drv->params_size);
        return -EINVAL;
    }
    if (et_key_check(p, reason, sizeof(reason))) {
        snprintf(why, whylen, "%s: %s", drv->name, reason);
        return -EINVAL;
    }
    return 0;
}

const struct et_key *et_params_find(const struct et_driver *drv, const char *key)
{
    for (size_t i = 0; i < drv->n_params; i++)
        if (strcmp(drv->params[i].name, key) == 0)
            return &drv->params[i];
    return NULL;
}

int et_params_set(const struct et_driver *drv, void *params, const char *key, const char *value,
                  char *why, size_t whylen)
{
    const struct et_key *p = et_params_find(drv, key);
    char q[ET_KEY_QUOTE_BUF];

    if (!p) {
        snprintf(why, whylen, "unknown key \"%s\"", et_key_quote(key, q, sizeof(q)));
        return -ENOENT;
    }
    return et_key_set(p, params, value, why, whylen);
}

int et_params_create(const struct et_driver *drv, void **out, char *why, size_t whylen)
{
    char reason[160];
    void *params;
    int rc;

    *out = NULL;
    if (!drv->params_size && drv->n_params) {
        snprintf(why, whylen, "%s: internal error: a params table without params_size",
                 drv->name);
        return -EINVAL;
    }
    if (!drv->params_size)
        return 0;
    for (size_t i = 0; i < drv->n_params; i++) {
        rc = check_entry(drv, &drv->params[i], why, whylen);
        if (rc)
            return rc;
    }
    params = calloc(1, drv->params_size);
    if (!params) {
        snprintf(why, whylen, "out of memory");
        return -ENOMEM;
    }
    rc = et_keys_set_defaults(drv->params, drv->n_params, params, reason, sizeof(reason));
    if (rc == -ENOMEM)
        snprintf(why, whylen, "out of memory");
    else if (rc)   /* a default that does not parse is the table's fault, not the file's */
        snprintf(why, whylen, "%s: internal error: default of %s", drv->name, reason);
    if (rc) {
        et_params_destroy(drv, params);
        return rc;
    }
    *out = params;
    return 0;
}

void et_params_destroy(const struct et_driver *drv, void *params)
{
    if (!params)
        return;
    /* Only et_params_create() makes params, after checking the table. */
    et_keys_free_strings(drv->params, drv->n_params, params);
    free(params);
}
