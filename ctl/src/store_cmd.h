/*
 * edgetelctl store: moving a store (store_cmd.c over et_store_copy()).
 * Takes its own arguments; a --store before it is not used.
 * Returns the exit status: 0 done, 1 failed, 2 a usage error.
 */
#ifndef EDGETEL_CTL_STORE_CMD_H
#define EDGETEL_CTL_STORE_CMD_H

int et_ctl_store_main(int argc, char **argv, const char *store);

#endif
