/*
 * The board's own identity: its TLS key and certificate, kept by the agent
 * when [mqtt] cert and key are unset (et_config_own_identity()). The key
 * is born here (P-256, Mbed TLS, 0600) and never leaves the board; the
 * certificate comes from the cloud issuer, first by claim, then by
 * renewal (enroll.h drives both).
 *
 * Files, in DATA_DIR/identity/ (0700):
 *   N.key, N.crt   generation N of the identity: a key, and the
 *                  certificate issued for it
 *   current        the generation that has worked (text, "N\n", replaced
 *                  through a rename: the one commit point)
 *   claim.crt, claim.key   the bootstrap credential, until enrollment
 *                  (from the boot partition, bootdir.h, or put there)
 * At most two generations live: the current one and the next (a key
 * waiting for its certificate, or a certificate on trial). Anything else
 * found at open is deleted. So a power cut at any moment leaves either
 * the old identity in force or the new one, never neither:
 *   - next key without a certificate: its CSR goes again (same key);
 *   - next certificate with a current one: a renewal on trial again;
 *   - next certificate without a current one: an enrollment whose
 *     commit was cut short: it is the identity.
 *
 * Threads: none; all calls on the agent's thread.
 */
#ifndef EDGETEL_IDENTITY_H
#define EDGETEL_IDENTITY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "edgetel/ca_device.h"

struct et_identity;

/* What the board has to connect with. */
enum et_identity_state {
    ET_ID_READY,        /* a certificate that is valid, or may be (the clock is not synced) */
    ET_ID_CLAIM,        /* no usable certificate, but a claim: enroll with it */
    ET_ID_NOTHING,      /* no usable certificate and no claim */
};

/**
 * Open (make, 0700) DATA_DIR/identity for device_id, whose issuer's
 * certificates chain to ca_file (both borrowed strings are copied), and
 * settle what a power cut left (above).
 * @return 0; -errno with err naming the file and the cause.
 */
int et_identity_open(struct et_identity **out, const char *data_dir, const char *device_id,
                     const char *ca_file, char *err, size_t errlen);

/** NULL is a no-op. */
void et_identity_destroy(struct et_identity *id);

/**
 * What there is at wall time now_s. A certificate past its end gives way
 * to a claim; without one it is still tried when the clock is not
 * synchronised (it may be the clock that is wrong). why (may be NULL)
 * says what is missing or doubtful; "" when all is well.
 */
enum et_identity_state et_identity_state(struct et_identity *id, int64_t now_s, bool synced,
                                         char *why, size_t whylen);

/**
 * The files to connect with: the next generation's while it is on trial,
 * else the current one's; NULL before there is a certificate. Valid until
 * the next call that changes the identity.
 */
const char *et_identity_cert(const struct et_identity *id);
const char *et_identity_key(const struct et_identity *id);

/** What et_identity_cert() names: serial and times; NULL before there is one. */
const struct et_ca_leaf *et_identity_leaf(const struct et_identity *id);

/** The current (proven) certificate, or NULL; an older one than et_identity_leaf() on trial. */
const struct et_ca_leaf *et_identity_current(const struct et_identity *id);

/** The claim's files, or NULL when there is none. */
const char *et_identity_claim_cert(const struct et_identity *id);
const char *et_identity_claim_key(const struct et_identity *id);

/** Look for claim files again (one may have been put there since). Whether there is one. */
bool et_identity_find_claim(struct et_identity *id);

/**
 * A CSR (DER, malloc'd) for the next generation's key, made now (0600,
 * O_EXCL) when there is none yet.
 */
int et_identity_next_csr(struct et_identity *id, uint8_t **der, size_t *len, char *err,
                         size_t errlen);

/**
 * A certificate came back for the next key (PEM, len bytes): checked
 * (et_ca_leaf_check: this device, the next key, the fleet CA) and, when
 * synced, not past its end; then written as the next generation's. With
 * no current identity it is committed at once (an enrollment: nothing to
 * fall back to) and the claim deleted; otherwise it is on trial.
 * @return 0; -errno with err (the certificate is not kept).
 */
int et_identity_accept(struct et_identity *id, const char *pem, size_t len, int64_t now_s,
                       bool synced, char *err, size_t errlen);

/** Whether a next generation's certificate is on trial. */
bool et_identity_on_trial(const struct et_identity *id);

/**
 * The trial worked (connected, and an Ack came back): the next generation
 * becomes current and the old one's files are deleted.
 * @return 0; -errno with err when current cannot be written (the trial
 *         goes on; the old files are kept).
 */
int et_identity_commit(struct et_identity *id, char *err, size_t errlen);

/** The trial failed: the next generation's files are deleted, the current one stays. */
void et_identity_abandon(struct et_identity *id);

/**
 * When the certificate in use is due for renewal (Unix seconds): at
 * renew_pct of its lifetime, or renew_before_ms before its end (one of
 * them is 0; config.h's renew_at). INT64_MAX before there is one.
 */
int64_t et_identity_renew_at(const struct et_identity *id, uint32_t renew_pct,
                             int64_t renew_before_ms);

/**
 * For --check: what DATA_DIR/identity of device holds, and whether the
 * agent can use it, in msg for a person. A private key (the current, the
 * next, the claim's) readable by others is refused.
 * @return 0; -EACCES (a key others can read) or -EINVAL with msg saying which.
 */
int et_identity_check(const char *data_dir, const char *device_id, const char *ca_file,
                      int64_t now_s, char *msg, size_t msglen);

#endif
