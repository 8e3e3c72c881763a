/*
 * edgetelctl provision DEVICE: register a device for enrollment by claim
 * and write its bootstrap credential, or a whole first-boot folder for its
 * SD card (provision.c). Returns the exit status: 0 done, 1 failed, 2 a
 * usage error.
 */
#ifndef EDGETEL_CTL_PROVISION_H
#define EDGETEL_CTL_PROVISION_H

int et_ctl_provision_main(int argc, char **argv, const char *store);

#endif
