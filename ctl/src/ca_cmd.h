/*
 * edgetelctl ca: the fleet CA (ca_cmd.c over common/ca/). Takes its own
 * arguments and needs no store, like keys and config (sign_cmd.h).
 * Returns the exit status: 0 done, 1 failed, 2 a usage error.
 */
#ifndef EDGETEL_CTL_CA_CMD_H
#define EDGETEL_CTL_CA_CMD_H

int et_ctl_ca_main(int argc, char **argv, const char *store);

#endif
