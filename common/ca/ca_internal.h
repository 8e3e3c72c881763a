/* What the files of et_ca share; see edgetel/ca.h for the library. */
#ifndef EDGETEL_CA_INTERNAL_H
#define EDGETEL_CA_INTERNAL_H

#include <limits.h>
#include <stdio.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <mbedtls/ctr_drbg.h>
#include <mbedtls/pk.h>
#include <mbedtls/x509_crt.h>

#include "edgetel/ca.h"
#include "sign_internal.h"

/* Every subject: CN=<name>,OU=<kind>,O=ET_CA_ORG; the two CAs' are fixed. */
#define ET_CA_ORG "edgetel"
#define ET_CA_ROOT_SUBJECT "CN=edgetel root CA,O=" ET_CA_ORG
#define ET_CA_ISSUING_SUBJECT "CN=edgetel issuing CA,O=" ET_CA_ORG
/* A leaf's notBefore is this far back: a board whose clock lags a little
 * still accepts a certificate issued a moment ago. */
#define ET_CA_BACKDATE_S 300
/* A certificate as PEM is under 1 KiB; with a few names, well under this. */
#define ET_CA_PEM_MAX 4096
/* A P-256 SubjectPublicKeyInfo is 91 bytes; room for any EC key we parse. */
#define CA_PUB_DER_MAX 160

struct et_ca {
    char dir[PATH_MAX];
    int lock_fd;
    struct et_sign_key *key;          /* the issuing CA's */
    mbedtls_x509_crt crt;             /* the issuing CA's certificate */
    char *crt_pem;                    /* the same as PEM, for chains */
    struct et_ca_cert *certs;         /* the index, in issue order */
    size_t n, cap;
};

/* One certificate to write (ca_issue.c). */
struct ca_cert_spec {
    const char *subject;              /* Mbed TLS name string, "CN=...,O=..." */
    const char *issuer;
    mbedtls_pk_context *subject_key;
    mbedtls_pk_context *issuer_key;
    bool is_ca;
    int max_pathlen;                  /* CAs only */
    unsigned key_usage;               /* MBEDTLS_X509_KU_* */
    const char *eku_oid;              /* NULL: none */
    size_t eku_oid_len;
    const unsigned char *san;         /* DER GeneralNames; NULL: none */
    size_t san_len;
    int64_t not_before, not_after;
    uint8_t serial[ET_CA_SERIAL_LEN];
};

/** A fresh random positive serial of ET_CA_SERIAL_LEN bytes. */
int ca_new_serial(mbedtls_ctr_drbg_context *drbg, uint8_t serial[ET_CA_SERIAL_LEN]);

/** Write the certificate of spec as PEM into pem (size bytes, NUL-terminated). */
int ca_write_crt(const struct ca_cert_spec *spec, unsigned char *pem, size_t size,
                 mbedtls_ctr_drbg_context *drbg, char *err, size_t errlen);

/** A CSR's own signature, P-256 key and CN (= req->name) checked, as et_ca_issue_csr() does. */
int ca_csr_check(const struct et_ca_request *req, const uint8_t *data, size_t len, char *err,
                 size_t errlen);

/** pk's SubjectPublicKeyInfo (DER) at the start of der; its length or -EINVAL. */
int ca_pub_der(mbedtls_pk_context *pk, uint8_t *der, size_t cap);

/** Serial bytes as lower-case hex into text. */
void ca_serial_text(const uint8_t serial[ET_CA_SERIAL_LEN], char text[ET_CA_SERIAL_TEXT]);

/** A certificate's time in Unix seconds (UTC). */
int64_t ca_time_unix(const mbedtls_x509_time *t);

/* Longest line of a table file (index.tsv, claims.tsv). */
#define CA_LINE_MAX 1024

/**
 * Read the table dir/file: row() gets each line that is not a comment,
 * without its newline; its -EINVAL becomes "<what> PATH:LINE: not a line
 * of <fields>" in err, its -ENOMEM "out of memory".
 */
int ca_table_load(const struct et_ca *ca, const char *file, const char *what,
                  const char *fields, int (*row)(void *ctx, char *line), void *ctx, char *err,
                  size_t errlen);

/** Write the table dir/file anew (atomically): header, then what rows() prints. */
int ca_table_save(const struct et_ca *ca, const char *file, const char *header,
                  void (*rows)(void *ctx, FILE *out), void *ctx, char *err, size_t errlen);

/** Append c to the index and write the index file (atomically). */
int ca_index_add(struct et_ca *ca, const struct et_ca_cert *c, char *err, size_t errlen);

/** Write the index file from ca->certs (atomically). */
int ca_index_save(struct et_ca *ca, char *err, size_t errlen);

/** Write data to dir/file through a temporary name and rename, mode 0644. */
int ca_replace_file(const char *path, const void *data, size_t len, char *err, size_t errlen);

#endif
