/*
 * The fleet CA (Mbed TLS, ECDSA P-256): a root CA, an issuing CA signed by
 * it, the certificates the issuing CA signs for the broker (server), the
 * aggregator instances and the devices, an index of them, and the
 * revocation list the broker reads. edgetelctl runs it on the operator's
 * machine (ctl/src/ca_cmd.c); a cloud issuer can link the same library to
 * sign a device's CSR for the id its certificate proves.
 *
 * A CA directory holds:
 *   root-ca.crt, root-ca.key        the trust anchor (the key may be moved
 *                                   offline once the issuing CA is made)
 *   issuing-ca.crt, issuing-ca.key  signs every leaf and the CRL
 *   ca.crt                          issuing + root: the file the broker,
 *                                   the aggregators and the agents trust
 *   crl.pem                         the revocation list (mosquitto crlfile)
 *   index.tsv                       every certificate issued (see et_ca_list)
 *   index.lock                      held while a process has the CA open
 * Keys are born 0600 (O_EXCL), and a key file readable or writable by
 * group or others is refused when the CA is opened.
 *
 * Names: every certificate's subject is CN=<name>, OU=<kind>, O=edgetel;
 * the broker takes the CN as the client's user name and client id. A
 * device name is a device id (1-64 of A-Z a-z 0-9 . _ -, not starting
 * with '.') and none of the names the design reserves: aggregator*,
 * ops*, issuer*, claim*, broker, server, localhost, ca, and any name a
 * server certificate was issued to. An aggregator instance is
 * "aggregator-<instance>", the cloud issuer "issuer-<instance>", and the
 * bootstrap credential of a device "claim-<device>" (ca_claim.h).
 *
 * Every function returns 0 or -errno and, on failure, writes a message for
 * a person into err naming the file or name and the cause. No global
 * state; one struct et_ca is used by one thread.
 */
#ifndef EDGETEL_CA_H
#define EDGETEL_CA_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define ET_CA_NAME_MAX 64
#define ET_CA_SERIAL_LEN 16
/* A serial as hex text and its NUL. */
#define ET_CA_SERIAL_TEXT (2 * ET_CA_SERIAL_LEN + 1)
/* The aggregator instances' names: ET_CA_AGGREGATOR_PREFIX + instance. */
#define ET_CA_AGGREGATOR_PREFIX "aggregator-"
/* The cloud issuer's (edgetelctl ca serve): ET_CA_ISSUER_PREFIX + instance. */
#define ET_CA_ISSUER_PREFIX "issuer-"
/* A bootstrap credential's: ET_CA_CLAIM_PREFIX + device id (edgetel/ca_claim.h). */
#define ET_CA_CLAIM_PREFIX "claim-"
/* The longest device id a claim can be made for: claim-<id> must fit a CN. */
#define ET_CA_CLAIM_DEVICE_MAX (ET_CA_NAME_MAX - 6)

/* File names inside a CA directory. */
#define ET_CA_ROOT_CRT "root-ca.crt"
#define ET_CA_ROOT_KEY "root-ca.key"
#define ET_CA_ISSUING_CRT "issuing-ca.crt"
#define ET_CA_ISSUING_KEY "issuing-ca.key"
#define ET_CA_TRUST "ca.crt"
#define ET_CA_CRL "crl.pem"
#define ET_CA_INDEX "index.tsv"

enum et_ca_kind {
    ET_CA_DEVICE = 0,        /* clientAuth; CN = device id */
    ET_CA_AGGREGATOR = 1,    /* clientAuth; CN = aggregator-<instance> */
    ET_CA_SERVER = 2,        /* serverAuth; subjectAltName names and addresses */
    ET_CA_ISSUER = 3,        /* clientAuth; CN = issuer-<instance>: signs CSRs over MQTT */
    ET_CA_CLAIM = 4,         /* clientAuth; CN = claim-<device>: may only enroll that device */
};

/** "device", "aggregator", "server", "issuer", "claim". */
const char *et_ca_kind_name(enum et_ca_kind kind);

/** The kind named s: 0, or -EINVAL. */
int et_ca_kind_parse(const char *s, enum et_ca_kind *out);

/** Lifetimes for et_ca_init(), in seconds; 0 takes the default noted. */
struct et_ca_init_opts {
    int64_t root_lifetime_s;      /* 20 years */
    int64_t issuing_lifetime_s;   /* 10 years */
};

/** What one issued certificate is, as the index keeps it. */
struct et_ca_cert {
    char serial[ET_CA_SERIAL_TEXT];   /* lower-case hex */
    enum et_ca_kind kind;
    char name[ET_CA_NAME_MAX + 1];    /* its CN */
    int64_t not_before, not_after;    /* Unix seconds */
    int64_t revoked_at;               /* Unix seconds; 0: not revoked */
};

/** One certificate to issue. */
struct et_ca_request {
    enum et_ca_kind kind;
    const char *name;             /* the CN, checked by et_ca_name_check() */
    int64_t lifetime_s;           /* > 0, and not past the issuing CA's own end */
    /* Server only: subjectAltName entries beside 127.0.0.1 and localhost,
     * each a DNS name or a dotted IPv4 / IPv6 address. */
    const char *const *alt_names;
    size_t n_alt_names;
};

struct et_ca;

/**
 * Make a new CA in dir (created 0700 if missing): root and issuing CA,
 * ca.crt, an empty CRL and an empty index. Refused with -EEXIST when dir
 * holds a CA already (any of its files): a CA is never overwritten.
 */
int et_ca_init(const char *dir, const struct et_ca_init_opts *opts, int64_t now, char *err,
               size_t errlen);

/**
 * Open the CA in dir: take its lock (waiting for another process that has
 * it), load the issuing CA's certificate and key (refused, -EACCES, when a
 * key file is readable by others) and the index.
 */
int et_ca_open(struct et_ca **out, const char *dir, char *err, size_t errlen);

/** Release the lock and free; NULL is a no-op. */
void et_ca_close(struct et_ca *ca);

/**
 * Whether name may be issued as kind: device names as above (reserved
 * names and names with '/', '+', '#', spaces or control characters are
 * refused with the reason); an aggregator's is aggregator-<instance>; a
 * server's a DNS-style name. ca may be NULL (then server names issued
 * before are not known).
 * @return 0, or -EINVAL with the reason.
 */
int et_ca_name_check(const struct et_ca *ca, enum et_ca_kind kind, const char *name, char *err,
                     size_t errlen);

/**
 * Issue a certificate for the key in a CSR (PEM, with its NUL counted in
 * len, or DER). The CSR's own signature must verify, its key must be
 * P-256, and its subject's CN must be exactly req->name (the id check: a
 * CSR cannot ask for another name than the one it is issued for).
 * Appends to the index. *pem (malloc'd, NUL-terminated) is the new
 * certificate followed by the issuing CA's, the chain a client presents.
 * @param info  receives the index entry; may be NULL.
 * @return 0; -EINVAL (name, CSR, lifetime); -EBADMSG (CSR signature);
 *         -errno writing the index.
 */
int et_ca_issue_csr(struct et_ca *ca, const struct et_ca_request *req, const uint8_t *csr,
                    size_t len, int64_t now, char **pem, struct et_ca_cert *info, char *err,
                    size_t errlen);

/**
 * Make a new P-256 key at key_path (O_EXCL, 0600) and a CSR for name
 * signed by it: *csr is malloc'd PEM, *len counts its NUL. For issuing
 * from a key made on the operator's machine, until boards make their own.
 */
int et_ca_make_key_csr(const char *key_path, const char *name, uint8_t **csr, size_t *len,
                       char *err, size_t errlen);

/**
 * Revoke every certificate of name not revoked yet and write the CRL.
 * @param n  receives how many were revoked; may be NULL.
 * @return 0; -ENOENT when name has no unrevoked certificate.
 */
int et_ca_revoke(struct et_ca *ca, const char *name, int64_t now, size_t *n, char *err,
                 size_t errlen);

/**
 * Write crl.pem anew: every revoked certificate that has not expired,
 * signed by the issuing CA, thisUpdate now, nextUpdate now + lifetime_s
 * (0: 365 days). A broker that reads an expired CRL refuses every client,
 * so write it again well before then (et_ca_revoke writes it too).
 */
int et_ca_write_crl(struct et_ca *ca, int64_t now, int64_t lifetime_s, char *err, size_t errlen);

/** Call fn for every certificate in the index in issue order; stops at fn's non-zero. */
int et_ca_list(const struct et_ca *ca, int (*fn)(void *ctx, const struct et_ca_cert *c),
               void *ctx);

/** dir/file of this CA into buf: 0, or -ENAMETOOLONG. */
int et_ca_path(const struct et_ca *ca, const char *file, char *buf, size_t len);

/**
 * The identity a certificate file names: the CN of its first certificate
 * (into cn) and when it ends (may be NULL). For a program to check the
 * certificate it was given is the one it means to be.
 * @return 0; -ENOENT when it has no CN; -EINVAL when it does not parse.
 */
int et_ca_cert_identity(const char *path, char *cn, size_t cnlen, int64_t *not_after, char *err,
                        size_t errlen);

#endif
