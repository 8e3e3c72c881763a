/*
 * A board's identity: its key, its CSR, and the certificate that comes
 * back (edgetel/ca_device.h).
 */
#define _GNU_SOURCE
#include "ca_internal.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <mbedtls/oid.h>
#include <mbedtls/x509_csr.h>

#include "edgetel/ca_device.h"
#include "edgetel/text.h"

int ca_pub_der(mbedtls_pk_context *pk, uint8_t *der, size_t cap)
{
    unsigned char buf[CA_PUB_DER_MAX];
    int n = mbedtls_pk_write_pubkey_der(pk, buf, sizeof(buf));

    if (n <= 0 || (size_t)n > cap)
        return -EINVAL;
    /* Mbed TLS writes DER at the end of the buffer. */
    memcpy(der, buf + sizeof(buf) - (size_t)n, (size_t)n);
    return n;
}

int et_ca_key_make(const char *key_path, char *err, size_t errlen)
{
    struct et_sign_key *k = NULL;
    int rc = et_sign_key_generate(&k, key_path, err, errlen);

    if (rc == 0)
        rc = et_sign_key_write_private(k, key_path, err, errlen);
    et_sign_key_destroy(k);
    return rc;
}

/*
 * A CSR for k with subject CN=name, signed by k: PEM (its NUL counted in
 * *len, as Mbed TLS wants PEM) or DER, malloc'd into *out.
 */
static int csr_write(struct et_sign_key *k, const char *name, bool pem, uint8_t **out,
                     size_t *len, char *err, size_t errlen)
{
    unsigned char buf[ET_CA_PEM_MAX];
    char subject[ET_CA_NAME_MAX + 8], why[100];
    mbedtls_x509write_csr w;
    struct et_sign_rng r;
    const unsigned char *start = buf;
    int rc, n;

    *out = NULL;
    if (strlen(name) > ET_CA_NAME_MAX || strpbrk(name, ",=+\\\"<>;"))
        return et_text_reason(err, errlen, -EINVAL, "name \"%.64s\": not a certificate name",
                              name);
    snprintf(subject, sizeof(subject), "CN=%s", name);
    mbedtls_x509write_csr_init(&w);
    rc = et_sign_rng_start(&r, err, errlen);
    if (rc)
        goto out;
    mbedtls_x509write_csr_set_md_alg(&w, MBEDTLS_MD_SHA256);
    mbedtls_x509write_csr_set_key(&w, &k->pk);
    n = mbedtls_x509write_csr_set_subject_name(&w, subject);
    if (n == 0 && pem) {
        n = mbedtls_x509write_csr_pem(&w, buf, sizeof(buf), mbedtls_ctr_drbg_random, &r.drbg);
        if (n == 0)
            n = (int)strlen((char *)buf) + 1;
    } else if (n == 0) {
        /* DER is written at the end of the buffer. */
        n = mbedtls_x509write_csr_der(&w, buf, sizeof(buf), mbedtls_ctr_drbg_random, &r.drbg);
        start = buf + sizeof(buf) - (n > 0 ? (size_t)n : 0);
    }
    if (n <= 0) {
        rc = et_text_reason(err, errlen, -EINVAL, "CSR for %s: %s", name,
                            et_sign_tls_why(n, why, sizeof(why)));
        goto out;
    }
    *out = malloc((size_t)n);
    if (!*out) {
        rc = et_text_reason(err, errlen, -ENOMEM, "out of memory");
        goto out;
    }
    memcpy(*out, start, (size_t)n);
    *len = (size_t)n;
out:
    mbedtls_x509write_csr_free(&w);
    et_sign_rng_end(&r);
    return rc;
}

int et_ca_make_key_csr(const char *key_path, const char *name, uint8_t **csr, size_t *len,
                       char *err, size_t errlen)
{
    struct et_sign_key *k = NULL;
    int rc;

    *csr = NULL;
    if ((rc = et_sign_key_generate(&k, key_path, err, errlen)) ||
        (rc = csr_write(k, name, true, csr, len, err, errlen)))
        goto out;
    rc = et_sign_key_write_private(k, key_path, err, errlen);
    if (rc) {
        free(*csr);
        *csr = NULL;
    }
out:
    et_sign_key_destroy(k);
    return rc;
}

int et_ca_csr_make(const char *key_path, const char *name, uint8_t **der, size_t *len,
                   char *err, size_t errlen)
{
    struct et_sign_key *k = NULL;
    int rc;

    *der = NULL;
    if ((rc = et_sign_key_load_private(key_path, &k, err, errlen)))
        return rc;
    rc = csr_write(k, name, false, der, len, err, errlen);
    et_sign_key_destroy(k);
    return rc;
}

/* The parsed certificate's CN, serial and times into out. */
static int leaf_fill(const mbedtls_x509_crt *crt, const char *what, struct et_ca_leaf *out,
                     char *err, size_t errlen)
{
    bool found = false;

    memset(out, 0, sizeof(*out));
    for (const mbedtls_x509_name *n = &crt->subject; n; n = n->next) {
        if (MBEDTLS_OID_CMP(MBEDTLS_OID_AT_CN, &n->oid) != 0)
            continue;
        if (found || n->val.len >= sizeof(out->cn) || memchr(n->val.p, '\0', n->val.len))
            return et_text_reason(err, errlen, -EINVAL, "certificate %s: its CN is not a name",
                                  what);
        memcpy(out->cn, n->val.p, n->val.len);
        found = true;
    }
    if (!found)
        return et_text_reason(err, errlen, -EINVAL, "certificate %s: its subject has no CN",
                              what);
    for (size_t i = 0; i < crt->serial.len && 2 * i + 2 < sizeof(out->serial); i++)
        snprintf(out->serial + 2 * i, 3, "%02x", crt->serial.p[i]);
    out->not_before = ca_time_unix(&crt->valid_from);
    out->not_after = ca_time_unix(&crt->valid_to);
    return 0;
}

int et_ca_leaf_read(const char *path, struct et_ca_leaf *out, char *err, size_t errlen)
{
    mbedtls_x509_crt crt;
    char why[100];
    int rc;

    mbedtls_x509_crt_init(&crt);
    rc = mbedtls_x509_crt_parse_file(&crt, path);
    if (rc)
        rc = et_text_reason(err, errlen, rc == MBEDTLS_ERR_PK_FILE_IO_ERROR ? -ENOENT : -EINVAL,
                            "certificate %s: %s", path, et_sign_tls_why(rc, why, sizeof(why)));
    else
        rc = leaf_fill(&crt, path, out, err, errlen);
    mbedtls_x509_crt_free(&crt);
    return rc;
}

/* Whether the leaf carries the public key of the private key at key_path. */
static int same_key(mbedtls_x509_crt *leaf, const char *key_path, char *err, size_t errlen)
{
    uint8_t a[CA_PUB_DER_MAX], b[CA_PUB_DER_MAX];
    struct et_sign_key *k = NULL;
    int na, nb, rc;

    if ((rc = et_sign_key_load_private(key_path, &k, err, errlen)))
        return rc;
    na = ca_pub_der(&leaf->pk, a, sizeof(a));
    nb = ca_pub_der(&k->pk, b, sizeof(b));
    et_sign_key_destroy(k);
    if (na < 0 || nb < 0 || na != nb || memcmp(a, b, (size_t)na) != 0)
        return et_text_reason(err, errlen, -EINVAL, "the certificate is for another key than "
                              "%s", key_path);
    return 0;
}

int et_ca_leaf_check(const char *pem, size_t len, const char *name, const char *key_path,
                     const char *ca_file, struct et_ca_leaf *out, char *err, size_t errlen)
{
    mbedtls_x509_crt chain, trust;
    uint32_t flags = 0;
    char why[100], *text;
    int rc;

    mbedtls_x509_crt_init(&chain);
    mbedtls_x509_crt_init(&trust);
    /* Mbed TLS wants PEM text with its NUL counted. */
    text = malloc(len + 1);
    if (!text)
        return et_text_reason(err, errlen, -ENOMEM, "out of memory");
    memcpy(text, pem, len);
    text[len] = '\0';
    rc = mbedtls_x509_crt_parse(&chain, (const unsigned char *)text, len + 1);
    free(text);
    if (rc) {
        rc = et_text_reason(err, errlen, -EINVAL, "the certificate does not parse: %s",
                            et_sign_tls_why(rc, why, sizeof(why)));
        goto out;
    }
    if ((rc = leaf_fill(&chain, "received", out, err, errlen)))
        goto out;
    if (strcmp(out->cn, name) != 0) {
        rc = et_text_reason(err, errlen, -EINVAL, "the certificate is for \"%s\", not for %s",
                            out->cn, name);
        goto out;
    }
    if ((rc = same_key(&chain, key_path, err, errlen)))
        goto out;
    rc = mbedtls_x509_crt_parse_file(&trust, ca_file);
    if (rc) {
        rc = et_text_reason(err, errlen, -EINVAL, "CA file %s: %s", ca_file,
                            et_sign_tls_why(rc, why, sizeof(why)));
        goto out;
    }
    /* Times are the caller's to judge, with a clock it knows to be synced. */
    mbedtls_x509_crt_verify(&chain, &trust, NULL, NULL, &flags, NULL, NULL);
    flags &= ~(uint32_t)(MBEDTLS_X509_BADCERT_EXPIRED | MBEDTLS_X509_BADCERT_FUTURE);
    rc = flags ? et_text_reason(err, errlen, -EBADMSG, "the certificate for %s does not chain "
                                "to the CA in %s (verify flags 0x%x)", name, ca_file,
                                (unsigned)flags)
               : 0;
out:
    mbedtls_x509_crt_free(&chain);
    mbedtls_x509_crt_free(&trust);
    return rc;
}
