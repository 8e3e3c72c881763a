/*
 * Filling a driver's params struct from config text with the driver's
 * params table (driver.h). The agent's config loader does this for each
 * driver key of a [collector NAME] section; tests do it to probe a driver
 * with what a config file would give it.
 *
 * Values are parsed by the key module (edgetel/keys.h), as the config
 * file's own keys are, and refused in the same words, e.g.
 *   address "0x99": must be between 0x03 and 0x77
 *   mode "turbo": expected one of forced, normal
 * which the loader prefixes with "FILE:LINE: [collector NAME] ".
 * Only et_base is needed: drivers link no INI library.
 */
#ifndef EDGETEL_DRIVERS_PARAMS_H
#define EDGETEL_DRIVERS_PARAMS_H

#include <stddef.h>

#include "driver.h"

/**
 * Allocate drv's params struct (params_size bytes) and give every key of
 * its table its default. *out is NULL for a driver without params.
 * @return 0; -ENOMEM; or -EINVAL with the reason in why when the table is
 *         wrong (a default that does not parse, a member of the wrong
 *         size): a bug in the driver, which the driver tests catch.
 */
int et_params_create(const struct et_driver *drv, void **out, char *why, size_t whylen);

/** Free what et_params_create() made, with its strings. NULL is a no-op. */
void et_params_destroy(const struct et_driver *drv, void *params);

/** The table entry for key, or NULL when drv takes no such key. */
const struct et_key *et_params_find(const struct et_driver *drv, const char *key);

/**
 * Parse value for key and store it in params (made by et_params_create()),
 * replacing what was there.
 * @return 0; -ENOENT when drv takes no such key; -ENOMEM; or -EINVAL with
 *         why set to "KEY \"VALUE\": what was expected" (the value quoted
 *         with control characters shown as '?' and cut when long).
 */
int et_params_set(const struct et_driver *drv, void *params, const char *key, const char *value,
                  char *why, size_t whylen);

#endif
