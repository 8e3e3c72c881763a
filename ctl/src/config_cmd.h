/*
 * edgetelctl config sign, push and status: what config_cmd.c (the
 * arguments, the signing) and config_push.c (the store) share.
 */
#ifndef EDGETEL_CTL_CONFIG_CMD_H
#define EDGETEL_CTL_CONFIG_CMD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "edgetel/config_wire.h"
#include "edgetel/sign.h"

#define PROG_CONFIG "edgetelctl config"
/* More key changes in one push than any rotation needs. */
#define CTL_MAX_KEY_CHANGES 8

struct config_args {
    const char *sub;          /* sign, push, status */
    const char *store;        /* --store; NULL: the default */
    const char *key, *device, *group, *version, *deadline, *file, *out;
    const char *add[CTL_MAX_KEY_CHANGES];
    size_t n_add;
    uint8_t remove[CTL_MAX_KEY_CHANGES][ET_SIGN_KEY_ID_LEN];
    size_t n_remove;
    bool csv;
};

/* What a config is signed from: the file checked, the keys loaded. */
struct config_inputs {
    struct et_config config;
    struct et_sign_key *key;
    struct et_sign_key *add[CTL_MAX_KEY_CHANGES];
    struct et_config_push push;       /* all but the version */
    char key_id[ET_SIGN_KEY_ID_TEXT]; /* the signing key's */
};

/*
 * Check a's FILE with the agent's own code and load the keys; the board's
 * own data_dir is left out. Says what is wrong on stderr.
 * @return 0, or the exit status (1 failed, 2 a usage error).
 */
int ctl_config_inputs_load(const struct config_args *a, struct config_inputs *in);

/* Sign the inputs as version; *out malloc'd. Says what is wrong. 0 or 1. */
int ctl_config_inputs_sign(struct config_inputs *in, uint64_t version, uint8_t **out,
                           size_t *len);

void ctl_config_inputs_free(struct config_inputs *in);

/* config push and config status (config_push.c): the exit status. */
int ctl_config_push(const struct config_args *a);
int ctl_config_status(const struct config_args *a);

#endif
