/* Mbed TLS 2.28 calls whose signatures changed in 3.x: see mbedtls_shim.h. */
#include "mbedtls_shim.h"

#include <string.h>

#include <mbedtls/ecp.h>
#include <mbedtls/error.h>
#include <mbedtls/sha256.h>

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
