/*
 * edgetelctl ca: the fleet CA (ca_cmd.c over common/ca/). Takes its own
 * arguments and needs no store, like keys and config (sign_cmd.h).
 * Returns the exit status: 0 done, 1 failed, 2 a usage error.
 */
#ifndef EDGETEL_CTL_CA_CMD_H
#define EDGETEL_CTL_CA_CMD_H

int et_ctl_ca_main(int argc, char **argv, const char *store);

/**
 * The CA directory: given (--dir), else $XDG_CONFIG_HOME/edgetel/ca, else
 * ~/.config/edgetel/ca, into buf. 0, or 2 (a usage error, said on stderr).
 */
int et_ctl_ca_dir(const char *given, char *buf, size_t len);

#endif
