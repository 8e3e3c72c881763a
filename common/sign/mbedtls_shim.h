/*
 * The only place that calls Mbed TLS functions whose signatures or whose
 * structs changed between 2.28 (Debian 12's libmbedtls-dev) and 3.x. The
 * rest of et_sign calls only what is the same in both, so moving to
 * Mbed TLS 3.6 is this file and mbedtls_shim.c.
 *
 * What differs, 2.28 -> 3.x (docs/3.0-migration-guide.md of Mbed TLS):
 *   mbedtls_pk_parse_key(ctx, key, len, pwd, pwdlen)
 *       -> gains f_rng, p_rng (blinding while checking the private key).
 *   mbedtls_pk_sign(ctx, md, hash, hlen, sig, &slen, f_rng, p_rng)
 *       -> gains sig_size after sig: 2.28 writes up to
 *          MBEDTLS_PK_SIGNATURE_MAX_SIZE bytes unchecked.
 *   mbedtls_sha256_ret() -> renamed mbedtls_sha256() (the old void
 *       mbedtls_sha256() of 2.x is removed).
 *   struct fields are private in 3.x: mbedtls_ecp_keypair.grp.id becomes
 *       mbedtls_ecp_keypair_get_group_id() (3.6).
 *   mbedtls/config.h becomes mbedtls/build_info.h.
 *   mbedtls_x509_csr's sig, sig_md, sig_pk and sig_opts are private in 3.x:
 *       checking a CSR's own signature (et_shim_csr_verify) reads them.
 *   mbedtls_x509write_crt_set_serial(ctx, mpi) is deprecated in 3.x for
 *       mbedtls_x509write_crt_set_serial_raw(ctx, bytes, len).
 *   mbedtls_sha1_ret() -> renamed mbedtls_sha1().
 * Unchanged and called directly elsewhere: mbedtls_pk_setup,
 * mbedtls_pk_info_from_type, mbedtls_ecp_gen_key, mbedtls_pk_ec,
 * mbedtls_pk_parse_public_key, mbedtls_pk_write_*, mbedtls_pk_verify,
 * mbedtls_entropy_*, mbedtls_ctr_drbg_*, and for the fleet CA (common/ca/)
 * mbedtls_x509write_crt_* but the serial, mbedtls_x509write_csr_*,
 * mbedtls_x509_crt_parse*, mbedtls_x509_crt_verify, mbedtls_x509_csr_parse,
 * mbedtls_x509_crl_parse, mbedtls_asn1_write_*, mbedtls_pem_write_buffer.
 */
#ifndef EDGETEL_MBEDTLS_SHIM_H
#define EDGETEL_MBEDTLS_SHIM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <mbedtls/ctr_drbg.h>
#include <mbedtls/pk.h>
#include <mbedtls/x509_crt.h>
#include <mbedtls/x509_csr.h>

/* Largest DER ECDSA signature this library makes or accepts (P-256: 72). */
#define ET_SHIM_SIG_MAX 80

/** Parse a private key (PEM with its NUL counted in len, or DER). Mbed TLS error code. */
int et_shim_parse_private(mbedtls_pk_context *pk, const unsigned char *key, size_t len,
                          mbedtls_ctr_drbg_context *drbg);

/** ECDSA over a SHA-256 hash into sig (room for size bytes); Mbed TLS error code. */
int et_shim_sign_hash(mbedtls_pk_context *pk, const unsigned char hash[32], unsigned char *sig,
                      size_t size, size_t *sig_len, mbedtls_ctr_drbg_context *drbg);

/** SHA-256 of len bytes; Mbed TLS error code. */
int et_shim_sha256(const unsigned char *in, size_t len, unsigned char out[32]);

/** Whether pk is an EC key on NIST P-256. */
bool et_shim_is_p256(const mbedtls_pk_context *pk);

/** SHA-1 of len bytes (key identifiers only); Mbed TLS error code. */
int et_shim_sha1(const unsigned char *in, size_t len, unsigned char out[20]);

/** Check a parsed CSR's signature with its own public key; Mbed TLS error code. */
int et_shim_csr_verify(const mbedtls_x509_csr *csr);

/** Set a certificate's serial from len big-endian bytes; Mbed TLS error code. */
int et_shim_crt_set_serial(mbedtls_x509write_cert *ctx, const unsigned char *serial, size_t len);

#endif
