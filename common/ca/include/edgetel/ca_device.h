/*
 * The board's side of its identity: a key born on the board, a CSR for
 * it, and the checks of the certificate that comes back. The agent links
 * these (agent/src/identity.c); the key never leaves the board and is
 * never read by anything but Mbed TLS here and the TLS library that
 * connects with it.
 *
 * Every function returns 0 or -errno with a reason for a person in err,
 * naming the file and the cause.
 */
#ifndef EDGETEL_CA_DEVICE_H
#define EDGETEL_CA_DEVICE_H

#include <stddef.h>
#include <stdint.h>

#include "edgetel/ca.h"

/* A serial of up to 20 bytes (RFC 5280) as hex text and its NUL. */
#define ET_CA_LEAF_SERIAL_TEXT 41
/* A CSR in DER: a P-256 key and a short name take about 250 bytes. */
#define ET_CA_CSR_MAX 2048

/** What a board needs to know of its certificate. */
struct et_ca_leaf {
    char cn[ET_CA_NAME_MAX + 1];
    char serial[ET_CA_LEAF_SERIAL_TEXT];   /* lower-case hex */
    int64_t not_before, not_after;         /* Unix seconds */
};

/** A new P-256 private key at key_path: created with O_EXCL, mode 0600, fsync'ed. */
int et_ca_key_make(const char *key_path, char *err, size_t errlen);

/**
 * A CSR (DER, malloc'd into *der) for the key at key_path, subject CN=name,
 * signed by that key. A key readable by group or others is refused
 * (-EACCES), as everywhere.
 */
int et_ca_csr_make(const char *key_path, const char *name, uint8_t **der, size_t *len,
                   char *err, size_t errlen);

/** The first certificate of the file at path. */
int et_ca_leaf_read(const char *path, struct et_ca_leaf *out, char *err, size_t errlen);

/**
 * Check a certificate chain that came back for a CSR (PEM text of len
 * bytes, NUL not counted): its first certificate is for name, carries the
 * public key of the private key at key_path, and chains up to the CA
 * certificates in ca_file. Its times are not judged here (a board's clock
 * may be wrong; the caller knows whether it is synced): they are in *out.
 * @return 0; -EINVAL (does not parse, another name, another key);
 *         -EBADMSG (not signed by the CA); -errno reading the files.
 */
int et_ca_leaf_check(const char *pem, size_t len, const char *name, const char *key_path,
                     const char *ca_file, struct et_ca_leaf *out, char *err, size_t errlen);

#endif
