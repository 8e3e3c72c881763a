/*
 * edgetelctl's commands for signed configuration: they take their own
 * arguments, so main() hands them argv as it is, with the --store given
 * before the command name (NULL: none).
 *   keys.c         keys init [--dir DIR]
 *   config_cmd.c   config sign | push | status (config_push.c: the store)
 * Each returns the exit status: 0 done, 1 failed, 2 a usage error.
 */
#ifndef EDGETEL_CTL_SIGN_CMD_H
#define EDGETEL_CTL_SIGN_CMD_H

#include <stddef.h>

/* Where the operator's key pair lives without --dir: $XDG_CONFIG_HOME/edgetel,
 * else ~/.config/edgetel. 0, or -ENOENT when neither variable is set. */
int et_ctl_key_dir(char *buf, size_t len);

int et_ctl_keys_main(int argc, char **argv, const char *store);
int et_ctl_config_main(int argc, char **argv, const char *store);

#define ET_CTL_PRIVATE_KEY "operator.key"
#define ET_CTL_PUBLIC_KEY "operator.pub"

#endif
