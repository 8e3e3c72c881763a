/*
 * Revocation and the CRL the broker reads (mosquitto crlfile).
 *
 * Mbed TLS 2.28 parses CRLs but has no CRL writer, so the CRL is built
 * here with mbedtls_asn1_write_* (RFC 5280 5.1), back to front as Mbed
 * TLS writes DER:
 *   CertificateList ::= SEQUENCE { tbsCertList, signatureAlgorithm, signatureValue BIT STRING }
 *   TBSCertList ::= SEQUENCE {
 *       version INTEGER (1: v2), signature AlgorithmIdentifier, issuer Name,
 *       thisUpdate Time, nextUpdate Time,
 *       revokedCertificates SEQUENCE OF SEQUENCE { serial INTEGER, revocationDate Time }
 *           (left out when empty),
 *       crlExtensions [0] EXPLICIT SEQUENCE { authorityKeyIdentifier, cRLNumber } }
 * signed by the issuing CA (ECDSA with SHA-256; the algorithm without
 * parameters, RFC 5758). The issuer is the issuing CA's subject exactly as
 * its certificate encodes it, so OpenSSL matches CRL and certificates. The
 * CRL number is thisUpdate in Unix seconds: it rises with every CRL and
 * needs no state of its own.
 */
#include "ca_internal.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <mbedtls/asn1write.h>
#include <mbedtls/oid.h>
#include <mbedtls/pem.h>
#include <mbedtls/x509_crl.h>

#include "edgetel/text.h"
#include "mbedtls_shim.h"

#define DAY_S 86400LL
#define CRL_LIFETIME_S (365 * DAY_S)
/* Fixed parts: issuer, times, extensions, signature; each entry about 40 bytes. */
#define CRL_FIXED 1024
#define CRL_ENTRY 64

/* Add what a write returned to len, or return its error. */
#define ADD(expr)                                                                          \
    do {                                                                                   \
        int r_ = (expr);                                                                   \
        if (r_ < 0)                                                                        \
            return r_;                                                                     \
        len += (size_t)r_;                                                                 \
    } while (0)

/* Length and tag in front of len bytes just written. */
static int wrap(unsigned char **p, unsigned char *start, size_t inner, unsigned char tag)
{
    size_t len = 0;

    ADD(mbedtls_asn1_write_len(p, start, inner));
    ADD(mbedtls_asn1_write_tag(p, start, tag));
    return (int)len;
}

#define SEQ (MBEDTLS_ASN1_CONSTRUCTED | MBEDTLS_ASN1_SEQUENCE)

/* An unsigned big-endian number as a DER INTEGER. */
static int write_uint(unsigned char **p, unsigned char *start, const uint8_t *b, size_t n)
{
    size_t len = 0;

    while (n > 1 && b[0] == 0)
        b++, n--;
    ADD(mbedtls_asn1_write_raw_buffer(p, start, b, n));
    if (b[0] & 0x80) {
        if (*p <= start)
            return MBEDTLS_ERR_ASN1_BUF_TOO_SMALL;
        *--(*p) = 0;
        len++;
    }
    ADD(wrap(p, start, len, MBEDTLS_ASN1_INTEGER));
    return (int)len;
}

/* UTCTime through 2049, GeneralizedTime after (RFC 5280 5.1.2.4). */
static int write_time(unsigned char **p, unsigned char *start, int64_t t)
{
    time_t tt = (time_t)t;
    struct tm tm;
    char s[64];
    size_t len = 0;
    bool utc;

    if (!gmtime_r(&tt, &tm))
        return MBEDTLS_ERR_ASN1_INVALID_DATA;
    utc = tm.tm_year + 1900 >= 1950 && tm.tm_year + 1900 < 2050;
    if (utc)
        snprintf(s, sizeof(s), "%02d%02d%02d%02d%02d%02dZ", tm.tm_year % 100, tm.tm_mon + 1,
                 tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec);
    else
        snprintf(s, sizeof(s), "%04d%02d%02d%02d%02d%02dZ", tm.tm_year + 1900, tm.tm_mon + 1,
                 tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec);
    ADD(mbedtls_asn1_write_raw_buffer(p, start, (const unsigned char *)s, strlen(s)));
    ADD(wrap(p, start, len, utc ? MBEDTLS_ASN1_UTC_TIME : MBEDTLS_ASN1_GENERALIZED_TIME));
    return (int)len;
}

/* AlgorithmIdentifier ecdsa-with-SHA256, parameters absent. */
static int write_alg(unsigned char **p, unsigned char *start)
{
    size_t len = 0;

    ADD(mbedtls_asn1_write_oid(p, start, MBEDTLS_OID_ECDSA_SHA256,
                               MBEDTLS_OID_SIZE(MBEDTLS_OID_ECDSA_SHA256)));
    ADD(wrap(p, start, len, SEQ));
    return (int)len;
}

/* Extension ::= SEQUENCE { extnID, extnValue OCTET STRING } around value bytes written. */
static int wrap_ext(unsigned char **p, unsigned char *start, size_t value_len, const char *oid,
                    size_t oid_len)
{
    size_t len = value_len;

    ADD(wrap(p, start, len, MBEDTLS_ASN1_OCTET_STRING));
    ADD(mbedtls_asn1_write_oid(p, start, oid, oid_len));
    ADD(wrap(p, start, len, SEQ));
    return (int)(len - value_len);
}

/* The issuing CA's key identifier: SHA-1 of its public key, as Mbed TLS makes the SKI. */
static int key_id(struct et_ca *ca, unsigned char id[20])
{
    unsigned char buf[160];
    unsigned char *p = buf + sizeof(buf);
    int n = mbedtls_pk_write_pubkey(&p, buf, &ca->key->pk);

    if (n <= 0)
        return -EINVAL;
    return et_shim_sha1(p, (size_t)n, id) ? -EIO : 0;
}

static int write_tbs(struct et_ca *ca, unsigned char **p, unsigned char *start, int64_t now,
                     int64_t next)
{
    unsigned char id[20];
    uint8_t number[8];
    size_t len = 0, part;

    if (key_id(ca, id))
        return MBEDTLS_ERR_ASN1_INVALID_DATA;
    for (int i = 0; i < 8; i++)
        number[i] = (uint8_t)((uint64_t)now >> (56 - 8 * i));

    /* crlExtensions: cRLNumber, authorityKeyIdentifier { [0] keyIdentifier }. */
    part = len;
    {
        size_t v = len;

        ADD(write_uint(p, start, number, sizeof(number)));
        ADD(wrap_ext(p, start, len - v, MBEDTLS_OID_CRL_NUMBER,
                     MBEDTLS_OID_SIZE(MBEDTLS_OID_CRL_NUMBER)));
        v = len;
        ADD(mbedtls_asn1_write_raw_buffer(p, start, id, sizeof(id)));
        ADD(wrap(p, start, len - v, MBEDTLS_ASN1_CONTEXT_SPECIFIC | 0));
        ADD(wrap(p, start, len - v, SEQ));
        ADD(wrap_ext(p, start, len - v, MBEDTLS_OID_AUTHORITY_KEY_IDENTIFIER,
                     MBEDTLS_OID_SIZE(MBEDTLS_OID_AUTHORITY_KEY_IDENTIFIER)));
    }
    ADD(wrap(p, start, len - part, SEQ));
    ADD(wrap(p, start, len - part,
             MBEDTLS_ASN1_CONTEXT_SPECIFIC | MBEDTLS_ASN1_CONSTRUCTED | 0));

    /* revokedCertificates: those not expired yet (an expired one is refused anyway). */
    part = len;
    for (size_t i = ca->n; i-- > 0;) {
        const struct et_ca_cert *c = &ca->certs[i];
        uint8_t serial[ET_CA_SERIAL_LEN];
        size_t entry = len;

        if (!c->revoked_at || c->not_after < now)
            continue;
        for (size_t j = 0; j < ET_CA_SERIAL_LEN; j++)
            if (sscanf(c->serial + 2 * j, "%2hhx", &serial[j]) != 1)
                return MBEDTLS_ERR_ASN1_INVALID_DATA;
        ADD(write_time(p, start, c->revoked_at));
        ADD(write_uint(p, start, serial, sizeof(serial)));
        ADD(wrap(p, start, len - entry, SEQ));
    }
    if (len > part)
        ADD(wrap(p, start, len - part, SEQ));

    ADD(write_time(p, start, next));
    ADD(write_time(p, start, now));
    ADD(mbedtls_asn1_write_raw_buffer(p, start, ca->crt.subject_raw.p, ca->crt.subject_raw.len));
    ADD(write_alg(p, start));
    ADD(mbedtls_asn1_write_int(p, start, 1));
    ADD(wrap(p, start, len, SEQ));
    return (int)len;
}

/* The whole CRL as DER into buf; *der points into it. */
static int write_crl(struct et_ca *ca, unsigned char *buf, size_t size, int64_t now,
                     int64_t next, unsigned char **der, char *err, size_t errlen)
{
    unsigned char *tbs_buf = malloc(size);
    unsigned char *p = tbs_buf ? tbs_buf + size : NULL;
    unsigned char hash[32], sig[ET_SHIM_SIG_MAX];
    size_t sig_len = 0, len = 0;
    struct et_sign_rng r;
    int tbs_len, n, rc;

    if (!tbs_buf)
        return et_text_reason(err, errlen, -ENOMEM, "out of memory");
    tbs_len = write_tbs(ca, &p, tbs_buf, now, next);
    if (tbs_len < 0) {
        rc = et_text_reason(err, errlen, -EINVAL, "CRL: cannot encode the list (%d)", tbs_len);
        goto out;
    }
    if (et_shim_sha256(p, (size_t)tbs_len, hash)) {
        rc = et_text_reason(err, errlen, -EIO, "CRL: SHA-256 failed");
        goto out;
    }
    rc = et_sign_rng_start(&r, err, errlen);
    if (rc == 0 && et_shim_sign_hash(&ca->key->pk, hash, sig, sizeof(sig), &sig_len, &r.drbg))
        rc = et_text_reason(err, errlen, -EIO, "CRL: signing with the issuing CA's key failed");
    et_sign_rng_end(&r);
    if (rc)
        goto out;
    {
        unsigned char *q = buf + size;

        if ((n = mbedtls_asn1_write_bitstring(&q, buf, sig, sig_len * 8)) < 0)
            goto full;
        len += (size_t)n;
        if ((n = write_alg(&q, buf)) < 0)
            goto full;
        len += (size_t)n;
        if ((n = mbedtls_asn1_write_raw_buffer(&q, buf, p, (size_t)tbs_len)) < 0)
            goto full;
        len += (size_t)n;
        if ((n = wrap(&q, buf, len, SEQ)) < 0)
            goto full;
        len += (size_t)n;
        *der = q;
    }
    rc = (int)len;
    goto out;
full:
    rc = et_text_reason(err, errlen, -E2BIG, "CRL: larger than its buffer");
out:
    free(tbs_buf);
    return rc;
}

int et_ca_write_crl(struct et_ca *ca, int64_t now, int64_t lifetime_s, char *err, size_t errlen)
{
    size_t size = CRL_FIXED + CRL_ENTRY * ca->n;
    size_t pem_size = 2 * size + 128, olen = 0;
    unsigned char *buf = malloc(size), *pem = malloc(pem_size), *der = NULL;
    char path[PATH_MAX], why[100];
    mbedtls_x509_crl check;
    int len, rc;

    mbedtls_x509_crl_init(&check);
    if (!buf || !pem) {
        rc = et_text_reason(err, errlen, -ENOMEM, "out of memory");
        goto out;
    }
    len = write_crl(ca, buf, size, now, now + (lifetime_s > 0 ? lifetime_s : CRL_LIFETIME_S),
                    &der, err, errlen);
    if (len < 0) {
        rc = len;
        goto out;
    }
    /* What the broker will be given must at least parse here. */
    rc = mbedtls_x509_crl_parse_der(&check, der, (size_t)len);
    if (rc == 0)
        rc = mbedtls_pem_write_buffer("-----BEGIN X509 CRL-----\n", "-----END X509 CRL-----\n",
                                      der, (size_t)len, pem, pem_size, &olen);
    if (rc) {
        rc = et_text_reason(err, errlen, -EINVAL, "CRL: made one that does not parse: %s",
                            et_sign_tls_why(rc, why, sizeof(why)));
        goto out;
    }
    rc = et_ca_path(ca, ET_CA_CRL, path, sizeof(path));
    if (rc == 0)
        rc = ca_replace_file(path, pem, strlen((char *)pem), err, errlen);
out:
    mbedtls_x509_crl_free(&check);
    free(buf);
    free(pem);
    return rc;
}

int et_ca_revoke(struct et_ca *ca, const char *name, int64_t now, size_t *n, char *err,
                 size_t errlen)
{
    size_t count = 0;
    int rc;

    for (size_t i = 0; i < ca->n; i++) {
        if (strcmp(ca->certs[i].name, name) == 0 && !ca->certs[i].revoked_at) {
            ca->certs[i].revoked_at = now;
            count++;
        }
    }
    if (n)
        *n = count;
    if (count == 0)
        return et_text_reason(err, errlen, -ENOENT, "\"%.64s\": this CA has no certificate "
                              "of that name that is not revoked already (see ca list)", name);
    rc = ca_index_save(ca, err, errlen);
    if (rc == 0)
        rc = et_ca_write_crl(ca, now, 0, err, errlen);
    return rc;
}
