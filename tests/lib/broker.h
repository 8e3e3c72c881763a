/*
 * A real mosquitto for process-level tests: mutual TLS on 127.0.0.1 (or on
 * an address the test chose, et_test_broker_start_at()) with the broker
 * configuration the project ships (packaging/mosquitto/: the client id
 * bound to the certificate, the CRL, the edgetel_acl plugin), and
 * certificates from edgetelctl ca (a CA in DIR/ca, certificates in
 * DIR/issued), all in a private temporary directory. No global state: a
 * test may run several.
 *
 * The broker runs as a child process of the test and dies with it
 * (PR_SET_PDEATHSIG), so a crashed test leaves no broker behind; only its
 * temporary directory may remain.
 */
#ifndef EDGETEL_TEST_BROKER_H
#define EDGETEL_TEST_BROKER_H

#include "edgetel/mqtt.h"

#include <stdbool.h>
#include <sys/types.h>

struct et_test_broker;

/* The aggregator identity every broker has from its start. */
#define ET_TEST_AGGREGATOR "aggregator-1"

/* Paths of one client identity; they live until et_test_broker_destroy(). */
struct et_test_identity {
    const char *ca_file;        /* the CA this identity trusts (always the broker's CA) */
    const char *cert_file;
    const char *key_file;
};

/**
 * Make certificates (CA, server, ET_TEST_AGGREGATOR, and one per entry of
 * device_ids, a NULL-terminated list that may itself be NULL), write a
 * mosquitto config, start mosquitto on a free port and wait (bounded) until
 * it accepts TCP connections. Returns 0 or -errno; on failure the broker's
 * log is copied to stderr.
 */
int et_test_broker_start(struct et_test_broker **out, const char *const *device_ids);

/**
 * The same, listening on host (a dotted IPv4 address of this machine)
 * instead of 127.0.0.1; the server certificate names that address too.
 * For a test that reaches the broker from a network namespace it made
 * (netns.h): the address of the host's end of its veth pair.
 */
int et_test_broker_start_at(struct et_test_broker **out, const char *const *device_ids,
                            const char *host);

/** SIGTERM, and SIGKILL if it has not exited within a few seconds; waits for it. */
int et_test_broker_stop(struct et_test_broker *b);

/** SIGKILL (a crash: no persistence save, wills of connected clients are lost). */
int et_test_broker_kill(struct et_test_broker *b);

/** Start again on the same port with the same certificates (stops it first if running). */
int et_test_broker_restart(struct et_test_broker *b);

/** Stop the broker and remove its directory. NULL is a no-op. */
void et_test_broker_destroy(struct et_test_broker *b);

int et_test_broker_port(const struct et_test_broker *b);
/** The address it listens on (owned by b). */
const char *et_test_broker_host(const struct et_test_broker *b);
bool et_test_broker_running(const struct et_test_broker *b);
pid_t et_test_broker_pid(const struct et_test_broker *b);
/** Its CA's certificates (ca.crt: issuing + root), what every client trusts (owned by b). */
const char *et_test_broker_ca_file(const struct et_test_broker *b);

/** The temporary directory (certificates, config, log "mosquitto.log"). */
const char *et_test_broker_dir(const struct et_test_broker *b);

/**
 * Paths for an identity signed by the broker's CA: an aggregator instance
 * ("aggregator-<instance>"), an issuer ("issuer-<instance>"), a device
 * given at start, or one made now (edgetelctl's name rules apply).
 * Returns 0, or -errno if the certificate cannot be made.
 */
int et_test_broker_identity(struct et_test_broker *b, const char *id,
                            struct et_test_identity *out);

/**
 * Paths for an identity whose certificate comes from a second CA that the
 * broker does not trust (ca_file is still the broker's CA, so the client
 * accepts the server and only the broker's check can refuse it).
 */
int et_test_broker_foreign_identity(struct et_test_broker *b, const char *id,
                                    struct et_test_identity *out);

/**
 * edgetelctl ca revoke id on the broker's CA: its certificates are in the
 * CRL from now on, which the broker reads when it starts
 * (et_test_broker_restart()). Returns 0 or -errno.
 */
int et_test_broker_revoke(struct et_test_broker *b, const char *id);

/**
 * Fill cfg to connect to this broker as id (NULL id: TLS without a client
 * certificate), with test-friendly timing: keepalive 5 s, backoff 50 ms to
 * 1 s, 16 publishes in flight, no will. cfg borrows strings from b and id.
 */
void et_test_broker_mqtt_cfg(const struct et_test_broker *b, const struct et_test_identity *id,
                             const char *client_id, struct et_mqtt_cfg *cfg);

#endif
