/*
 * What et_sign shares with the other Mbed TLS users of common/ (the fleet
 * CA, et_ca): the key struct, one random generator per operation, and the
 * key file rules (born 0600 with O_EXCL; a private key readable by others
 * refused). Not a public header: only libraries in common/ include it.
 */
#ifndef EDGETEL_SIGN_INTERNAL_H
#define EDGETEL_SIGN_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include <mbedtls/ctr_drbg.h>
#include <mbedtls/entropy.h>
#include <mbedtls/pk.h>

#include "edgetel/sign.h"

struct et_sign_key {
    mbedtls_pk_context pk;
    uint8_t id[ET_SIGN_KEY_ID_LEN];
    bool priv;
};

/* A random generator for one operation: keys, signatures, blinding, serials. */
struct et_sign_rng {
    mbedtls_entropy_context entropy;
    mbedtls_ctr_drbg_context drbg;
};

/** Seed r from the system's entropy; on failure r still needs et_sign_rng_end(). */
int et_sign_rng_start(struct et_sign_rng *r, char *err, size_t errlen);
void et_sign_rng_end(struct et_sign_rng *r);

/** Mbed TLS's text for one of its error codes, into buf; returns buf. */
const char *et_sign_tls_why(int code, char *buf, size_t len);

/** An empty key (mbedtls_pk_init'ed), or NULL. */
struct et_sign_key *et_sign_key_new(void);

/** Check k is P-256 and fill its key id; name stands for it in messages. */
int et_sign_key_finish(struct et_sign_key *k, const char *name, char *err, size_t errlen);

/** A new P-256 private key in memory; name stands for it in messages. */
int et_sign_key_generate(struct et_sign_key **out, const char *name, char *err, size_t errlen);

/** Write k's private key as PEM to a new file (O_EXCL, 0600). */
int et_sign_key_write_private(const struct et_sign_key *k, const char *path, char *err,
                              size_t errlen);

/**
 * Write len bytes to a new file (O_EXCL, O_NOFOLLOW) born with mode, fsync
 * it; removed again on failure. -EEXIST when the name is taken.
 */
int et_sign_write_new(const char *path, mode_t mode, const unsigned char *data, size_t len,
                      char *err, size_t errlen);

/**
 * Read a key file whole into buf with a NUL after it; *len counts the NUL
 * for PEM (as Mbed TLS wants it). With private set, a file readable or
 * writable by group or others is refused with -EACCES and the chmod that
 * fixes it; anything but a regular file (a symlink) is refused too.
 */
int et_sign_read_key_file(const char *path, bool private, unsigned char *buf, size_t size,
                          size_t *len, char *err, size_t errlen);

#endif
