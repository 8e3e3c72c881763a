/*
 * edgetelctl ca serve: the cloud issuer's program (ca_serve.c), its rules
 * in issuer.h. ca_cmd.c hands it the CA directory and --config.
 */
#ifndef EDGETEL_CTL_CA_SERVE_H
#define EDGETEL_CTL_CA_SERVE_H

/** Serve the CA in ca_dir with the config file config until SIGINT or SIGTERM; the exit status. */
int et_ctl_ca_serve(const char *ca_dir, const char *config);

#endif
