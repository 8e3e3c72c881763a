/* Mbed TLS 2.28 calls whose signatures changed in 3.x: see mbedtls_shim.h. */
#include "mbedtls_shim.h"

#include <string.h>

#include <mbedtls/ecp.h>
#include <mbedtls/error.h>
#include <mbedtls/md.h>
#include <mbedtls/sha1.h>
#include <mbedtls/sha256.h>
#include <mbedtls/x509.h>

int et_shim_parse_private(mbedtls_pk_context *pk, const unsigned char *key, size_t len,
                          mbedtls_ctr_drbg_context *drbg)
{
    /* 3.x: mbedtls_pk_parse_key(pk, key, len, NULL, 0, mbedtls_ctr_drbg_random, drbg). */
    (void)drbg;
    return mbedtls_pk_parse_key(pk, key, len, NULL, 0);
}

int et_shim_sign_hash(mbedtls_pk_context *pk, const unsigned char hash[32], unsigned char *sig,
                      size_t size, size_t *sig_len, mbedtls_ctr_drbg_context *drbg)
{
    /*
     * 2.28 has no sig_size and may write MBEDTLS_PK_SIGNATURE_MAX_SIZE
     * bytes, so it signs into a buffer of that size and copies what fits.
     * 3.x: mbedtls_pk_sign(pk, MBEDTLS_MD_SHA256, hash, 32, sig, size,
     * sig_len, mbedtls_ctr_drbg_random, drbg) directly.
     */
    unsigned char full[MBEDTLS_PK_SIGNATURE_MAX_SIZE];
    size_t n = 0;
    int rc;

    rc = mbedtls_pk_sign(pk, MBEDTLS_MD_SHA256, hash, 32, full, &n, mbedtls_ctr_drbg_random,
                         drbg);
    if (rc)
        return rc;
    if (n > size)
        return MBEDTLS_ERR_PK_BAD_INPUT_DATA;
    memcpy(sig, full, n);
    *sig_len = n;
    return 0;
}

int et_shim_sha256(const unsigned char *in, size_t len, unsigned char out[32])
{
    /* 3.x: mbedtls_sha256(in, len, out, 0). */
    return mbedtls_sha256_ret(in, len, out, 0);
}

bool et_shim_is_p256(const mbedtls_pk_context *pk)
{
    if (mbedtls_pk_get_type(pk) != MBEDTLS_PK_ECKEY)
        return false;
    /* 3.6: mbedtls_ecp_keypair_get_group_id(mbedtls_pk_ec(*pk)). */
    return mbedtls_pk_ec(*pk)->grp.id == MBEDTLS_ECP_DP_SECP256R1;
}

int et_shim_sha1(const unsigned char *in, size_t len, unsigned char out[20])
{
    /* 3.x: mbedtls_sha1(in, len, out). */
    return mbedtls_sha1_ret(in, len, out);
}

int et_shim_csr_verify(const mbedtls_x509_csr *csr)
{
    /* 3.x: the same calls, but sig, sig_md, sig_pk and sig_opts are
     * MBEDTLS_PRIVATE fields (csr->MBEDTLS_PRIVATE(sig_md), ...). */
    const mbedtls_md_info_t *md = mbedtls_md_info_from_type(csr->sig_md);
    unsigned char hash[MBEDTLS_MD_MAX_SIZE];
    int rc;

    if (!md)
        return MBEDTLS_ERR_X509_UNKNOWN_SIG_ALG;
    rc = mbedtls_md(md, csr->cri.p, csr->cri.len, hash);
    if (rc)
        return rc;
    return mbedtls_pk_verify_ext(csr->sig_pk, csr->sig_opts, (mbedtls_pk_context *)&csr->pk,
                                 csr->sig_md, hash, mbedtls_md_get_size(md), csr->sig.p,
                                 csr->sig.len);
}

int et_shim_crt_set_serial(mbedtls_x509write_cert *ctx, const unsigned char *serial, size_t len)
{
    /* 3.x: mbedtls_x509write_crt_set_serial_raw(ctx, serial, len). */
    mbedtls_mpi n;
    int rc;

    mbedtls_mpi_init(&n);
    rc = mbedtls_mpi_read_binary(&n, serial, len);
    if (!rc)
        rc = mbedtls_x509write_crt_set_serial(ctx, &n);
    mbedtls_mpi_free(&n);
    return rc;
}
