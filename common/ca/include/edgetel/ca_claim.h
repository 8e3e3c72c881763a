/*
 * Enrollment by claim and renewal: what the fleet CA decides when a device
 * asks for a certificate over MQTT (edgetelctl ca serve, ctl/src/issuer.c),
 * and the claims the operator registers (edgetelctl provision).
 *
 * A claim is a device id the operator registered, and a short-lived
 * bootstrap certificate named claim-<device> (kind ET_CA_CLAIM) whose key
 * goes onto the board's SD card. The broker lets that certificate do one
 * thing: publish ROOT/v1/claim-<device>/cert/csr and read
 * ROOT/v1/claim-<device>/cert/issued (broker/edgetel_acl.c). The issuer
 * then signs the CSR with et_ca_enroll(), which holds the claim to:
 *   - registered: the CA directory's claims.tsv names the device;
 *   - in time: before the claim's end (its certificate's notAfter);
 *   - its own key: the request is signed by the claim's key (so an older
 *     claim of the same device, still valid at the broker, is refused);
 *   - once: the first CSR's key is recorded; a CSR with another key is
 *     refused ever after. The same key may ask again while the claim
 *     lasts (a board that lost the answer), and gets a certificate for
 *     that key again;
 *   - the id: the CSR's CN must be the claimed device (et_ca_issue_csr).
 * Renewal (et_ca_renew) signs for the id the asking certificate proves:
 * the topic's device, which the broker binds to the certificate's name,
 * and only while that device holds a certificate of this CA that is
 * neither revoked nor expired.
 *
 * claims.tsv (one line a device, rewritten whole through a rename, under
 * the CA's lock): device, claim serial, created, expires, used_at (0:
 * unused), the enrolled key's SHA-256 (hex, "-" unused), the claim's
 * public key (DER, hex). A new claim for a device replaces its old one.
 *
 * Every function returns 0 or -errno with a reason for a person in err,
 * as the rest of et_ca.
 */
#ifndef EDGETEL_CA_CLAIM_H
#define EDGETEL_CA_CLAIM_H

#include <stddef.h>
#include <stdint.h>

#include "edgetel/ca.h"

#define ET_CA_CLAIMS "claims.tsv"
/* A SHA-256 as hex text and its NUL. */
#define ET_CA_KEY_HASH_TEXT 65

/** One registered claim. */
struct et_ca_claim {
    char device[ET_CA_NAME_MAX + 1];
    char serial[ET_CA_SERIAL_TEXT];       /* the claim certificate's */
    int64_t created, expires;             /* Unix seconds */
    int64_t used_at;                      /* Unix seconds; 0: not used yet */
    char enrolled_key[ET_CA_KEY_HASH_TEXT];   /* SHA-256 of the key it enrolled; "" */
};

/**
 * Register device for enrollment by claim, for lifetime_s from now: a new
 * key at key_path (O_EXCL, 0600), a certificate claim-<device> for it (its
 * chain into *pem, malloc'd), and the claim in claims.tsv, replacing an
 * older one of the device. The device id is checked as a device name, at
 * most ET_CA_CLAIM_DEVICE_MAX characters.
 * @param info  receives the claim; may be NULL.
 */
int et_ca_claim_issue(struct et_ca *ca, const char *device, int64_t lifetime_s, int64_t now,
                      const char *key_path, char **pem, struct et_ca_claim *info, char *err,
                      size_t errlen);

/** Call fn for every registered claim; stops at fn's non-zero (returned). */
int et_ca_claim_list(struct et_ca *ca, int (*fn)(void *ctx, const struct et_ca_claim *c),
                     void *ctx, char *err, size_t errlen);

/**
 * Sign a CSR for device under its claim (see the top of this file): csr
 * (PEM with its NUL, or DER) signed by the claim's key as sig (ECDSA
 * P-256 over SHA-256 of the CSR's bytes, DER). On success the claim is
 * marked used by the CSR's key and *pem is the new certificate's chain.
 * @return 0; -ENOENT no claim for device; -EKEYEXPIRED the claim ended;
 *         -EKEYREJECTED sig is not by the claim's key; -EALREADY the claim
 *         enrolled another key; -EINVAL, -EBADMSG the CSR (et_ca_issue_csr).
 */
int et_ca_enroll(struct et_ca *ca, const char *device, const uint8_t *csr, size_t csr_len,
                 const uint8_t *sig, size_t sig_len, int64_t lifetime_s, int64_t now,
                 char **pem, struct et_ca_cert *info, char *err, size_t errlen);

/**
 * Sign a CSR for device, which the asking certificate proved it is.
 * A device is renewed at most once every tenth of lifetime_s (its newest
 * certificate's notBefore is the clock): one that asks again and again
 * would fill the index.
 * @return 0; -EPERM device is not a device's name; -ENOENT this CA never
 *         issued device a certificate; -EKEYREVOKED all of them revoked;
 *         -EKEYEXPIRED none still valid; -EAGAIN renewed too recently;
 *         the CSR's errors as above.
 */
int et_ca_renew(struct et_ca *ca, const char *device, const uint8_t *csr, size_t csr_len,
                int64_t lifetime_s, int64_t now, char **pem, struct et_ca_cert *info, char *err,
                size_t errlen);

#endif
