/*
 * Writing certificates: the two CAs' (for ca.c) and the leaves, each for
 * the key of a CSR whose signature and name were checked first.
 */
#define _GNU_SOURCE
#include "ca_internal.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <mbedtls/asn1write.h>
#include <mbedtls/oid.h>
#include <mbedtls/x509_csr.h>

#include "edgetel/text.h"
#include "mbedtls_shim.h"

/* GeneralNames of a server: a few names and addresses. */
#define SAN_MAX 1024
#define ALT_NAMES_MAX 16

/* "YYYYMMDDhhmmss" in UTC, as mbedtls_x509write_crt_set_validity takes it. */
static int x509_time(int64_t t, char out[16])
{
    time_t tt = (time_t)t;
    struct tm tm;

    if (!gmtime_r(&tt, &tm) || tm.tm_year + 1900 > 9999)
        return -EINVAL;
    return strftime(out, 16, "%Y%m%d%H%M%S", &tm) == 14 ? 0 : -EINVAL;
}

/* SEQUENCE { OID } for extKeyUsage. */
static int eku_der(const char *oid, size_t oid_len, unsigned char *buf, size_t size,
                   unsigned char **start)
{
    unsigned char *p = buf + size;
    int len = 0, r;

    if ((r = mbedtls_asn1_write_oid(&p, buf, oid, oid_len)) < 0)
        return r;
    len += r;
    if ((r = mbedtls_asn1_write_len(&p, buf, (size_t)len)) < 0)
        return r;
    len += r;
    if ((r = mbedtls_asn1_write_tag(&p, buf, MBEDTLS_ASN1_CONSTRUCTED | MBEDTLS_ASN1_SEQUENCE)) <
        0)
        return r;
    *start = p;
    return len + r;
}

int ca_write_crt(const struct ca_cert_spec *s, unsigned char *pem, size_t size,
                 mbedtls_ctr_drbg_context *drbg, char *err, size_t errlen)
{
    mbedtls_x509write_cert w;
    char from[16], to[16], why[100];
    unsigned char eku[64], *eku_start = NULL;
    int eku_len = 0;
    int rc;

    if (x509_time(s->not_before, from) || x509_time(s->not_after, to))
        return et_text_reason(err, errlen, -EINVAL, "%s: validity out of range", s->subject);
    if (s->eku_oid && (eku_len = eku_der(s->eku_oid, s->eku_oid_len, eku, sizeof(eku),
                                         &eku_start)) < 0)
        return et_text_reason(err, errlen, -EINVAL, "%s: cannot encode extKeyUsage",
                              s->subject);
    mbedtls_x509write_crt_init(&w);
    mbedtls_x509write_crt_set_version(&w, MBEDTLS_X509_CRT_VERSION_3);
    mbedtls_x509write_crt_set_md_alg(&w, MBEDTLS_MD_SHA256);
    mbedtls_x509write_crt_set_subject_key(&w, s->subject_key);
    mbedtls_x509write_crt_set_issuer_key(&w, s->issuer_key);
    if ((rc = et_shim_crt_set_serial(&w, s->serial, sizeof(s->serial))) ||
        (rc = mbedtls_x509write_crt_set_validity(&w, from, to)) ||
        (rc = mbedtls_x509write_crt_set_subject_name(&w, s->subject)) ||
        (rc = mbedtls_x509write_crt_set_issuer_name(&w, s->issuer)) ||
        (rc = mbedtls_x509write_crt_set_basic_constraints(&w, s->is_ca,
                                                          s->is_ca ? s->max_pathlen : -1)) ||
        (rc = mbedtls_x509write_crt_set_key_usage(&w, s->key_usage)) ||
        (rc = mbedtls_x509write_crt_set_subject_key_identifier(&w)) ||
        (rc = mbedtls_x509write_crt_set_authority_key_identifier(&w)))
        goto fail;
    if (eku_len > 0 &&
        (rc = mbedtls_x509write_crt_set_extension(&w, MBEDTLS_OID_EXTENDED_KEY_USAGE,
                                                  MBEDTLS_OID_SIZE(MBEDTLS_OID_EXTENDED_KEY_USAGE),
                                                  0, eku_start, (size_t)eku_len)))
        goto fail;
    if (s->san && (rc = mbedtls_x509write_crt_set_extension(
                       &w, MBEDTLS_OID_SUBJECT_ALT_NAME,
                       MBEDTLS_OID_SIZE(MBEDTLS_OID_SUBJECT_ALT_NAME), 0, s->san, s->san_len)))
        goto fail;
    rc = mbedtls_x509write_crt_pem(&w, pem, size, mbedtls_ctr_drbg_random, drbg);
    if (rc)
        goto fail;
    mbedtls_x509write_crt_free(&w);
    return 0;
fail:
    mbedtls_x509write_crt_free(&w);
    return et_text_reason(err, errlen, -EINVAL, "certificate for %s: %s", s->subject,
                          et_sign_tls_why(rc, why, sizeof(why)));
}

/*
 * subjectAltName for a server: 127.0.0.1 and localhost always (the
 * programs on the broker's own host), the CN, then the extra names; each
 * an iPAddress when it reads as an address, else a dNSName. Written
 * backwards, as Mbed TLS writes DER.
 */
static int san_der(const char *cn, const char *const *extra, size_t n_extra, unsigned char *buf,
                   size_t size, unsigned char **start, char *err, size_t errlen)
{
    const char *names[ALT_NAMES_MAX + 3];
    unsigned char *p = buf + size;
    size_t n = 0, len = 0;
    int r;

    if (n_extra > ALT_NAMES_MAX)
        return et_text_reason(err, errlen, -EINVAL, "%zu extra names: at most %d", n_extra,
                              ALT_NAMES_MAX);
    names[n++] = "127.0.0.1";
    names[n++] = "localhost";
    if (strcmp(cn, "localhost") != 0)
        names[n++] = cn;
    for (size_t i = 0; i < n_extra; i++)
        names[n++] = extra[i];
    while (n-- > 0) {
        unsigned char addr[16];
        const unsigned char *v = (const unsigned char *)names[n];
        size_t vlen = strlen(names[n]);
        unsigned char tag = MBEDTLS_ASN1_CONTEXT_SPECIFIC | 2;   /* dNSName */

        if (inet_pton(AF_INET, names[n], addr) == 1) {
            v = addr, vlen = 4, tag = MBEDTLS_ASN1_CONTEXT_SPECIFIC | 7;   /* iPAddress */
        } else if (inet_pton(AF_INET6, names[n], addr) == 1) {
            v = addr, vlen = 16, tag = MBEDTLS_ASN1_CONTEXT_SPECIFIC | 7;
        } else if (n >= 2 &&
                   et_ca_name_check(NULL, ET_CA_SERVER, names[n], err, errlen) != 0) {
            return -EINVAL;
        }
        if ((r = mbedtls_asn1_write_raw_buffer(&p, buf, v, vlen)) < 0)
            goto full;
        len += (size_t)r;
        if ((r = mbedtls_asn1_write_len(&p, buf, vlen)) < 0)
            goto full;
        len += (size_t)r;
        if ((r = mbedtls_asn1_write_tag(&p, buf, tag)) < 0)
            goto full;
        len += (size_t)r;
    }
    if ((r = mbedtls_asn1_write_len(&p, buf, len)) < 0)
        goto full;
    len += (size_t)r;
    if ((r = mbedtls_asn1_write_tag(&p, buf, MBEDTLS_ASN1_CONSTRUCTED | MBEDTLS_ASN1_SEQUENCE)) <
        0)
        goto full;
    *start = p;
    return (int)(len + (size_t)r);
full:
    return et_text_reason(err, errlen, -E2BIG, "server names: too long together");
}

/*
 * How far back a leaf's notBefore goes: ET_CA_BACKDATE_S for a board whose
 * clock lags, but never more than a twentieth of the lifetime. A device
 * renews at a share of notBefore..notAfter (two thirds by default), so a
 * minute-long certificate backdated five minutes would be due for renewal
 * before it was even issued.
 */
static int64_t ca_backdate(int64_t lifetime_s)
{
    return lifetime_s / 20 < ET_CA_BACKDATE_S ? lifetime_s / 20 : ET_CA_BACKDATE_S;
}

/* The CSR's subject CN into cn; -ENOENT without one, -EINVAL with two. */
static int csr_cn(const mbedtls_x509_name *name, char *cn, size_t len)
{
    bool found = false;

    for (; name; name = name->next) {
        if (MBEDTLS_OID_CMP(MBEDTLS_OID_AT_CN, &name->oid) != 0)
            continue;
        if (found || name->val.len >= len || memchr(name->val.p, '\0', name->val.len))
            return -EINVAL;
        memcpy(cn, name->val.p, name->val.len);
        cn[name->val.len] = '\0';
        found = true;
    }
    return found ? 0 : -ENOENT;
}

/* Parse a CSR and check its signature, key and name against req. */
static int check_csr(const struct et_ca_request *req, const uint8_t *data, size_t len,
                     mbedtls_x509_csr *csr, char *err, size_t errlen);

int ca_csr_check(const struct et_ca_request *req, const uint8_t *data, size_t len, char *err,
                 size_t errlen)
{
    mbedtls_x509_csr csr;
    int rc;

    mbedtls_x509_csr_init(&csr);
    rc = check_csr(req, data, len, &csr, err, errlen);
    mbedtls_x509_csr_free(&csr);
    return rc;
}

static int check_csr(const struct et_ca_request *req, const uint8_t *data, size_t len,
                     mbedtls_x509_csr *csr, char *err, size_t errlen)
{
    char cn[ET_CA_NAME_MAX + 2], why[100];
    int rc;

    rc = mbedtls_x509_csr_parse(csr, data, len);
    if (rc)
        return et_text_reason(err, errlen, -EINVAL, "CSR for %s: does not parse: %s", req->name,
                              et_sign_tls_why(rc, why, sizeof(why)));
    if (et_shim_csr_verify(csr) != 0)
        return et_text_reason(err, errlen, -EBADMSG, "CSR for %s: its signature does not "
                              "verify with its own key (changed on the way, or forged)",
                              req->name);
    if (!et_shim_is_p256(&csr->pk))
        return et_text_reason(err, errlen, -EINVAL, "CSR for %s: the key is not an EC key on "
                              "P-256", req->name);
    rc = csr_cn(&csr->subject, cn, sizeof(cn));
    if (rc == -ENOENT)
        return et_text_reason(err, errlen, -EINVAL, "CSR for %s: its subject has no CN",
                              req->name);
    if (rc || strcmp(cn, req->name) != 0)
        return et_text_reason(err, errlen, -EINVAL, "CSR for %s asks for another name "
                              "(CN \"%.64s\"): a certificate is issued only for the name "
                              "the CSR itself carries", req->name, rc ? "?" : cn);
    return 0;
}

int et_ca_issue_csr(struct et_ca *ca, const struct et_ca_request *req, const uint8_t *csr_data,
                    size_t len, int64_t now, char **pem_out, struct et_ca_cert *info, char *err,
                    size_t errlen)
{
    unsigned char pem[ET_CA_PEM_MAX], san[SAN_MAX], *san_start = NULL;
    char subject[ET_CA_NAME_MAX + 64];
    struct et_ca_cert c = { .kind = req->kind };
    struct ca_cert_spec spec = {
        .issuer = ET_CA_ISSUING_SUBJECT, .issuer_key = &ca->key->pk,
        .key_usage = MBEDTLS_X509_KU_DIGITAL_SIGNATURE,
        .not_before = now - ca_backdate(req->lifetime_s), .not_after = now + req->lifetime_s,
    };
    int64_t ca_end = ca_time_unix(&ca->crt.valid_to);
    mbedtls_x509_csr csr;
    struct et_sign_rng r;
    int san_len = 0;
    int rc;

    *pem_out = NULL;
    if ((rc = et_ca_name_check(ca, req->kind, req->name, err, errlen)))
        return rc;
    if (req->lifetime_s <= 0)
        return et_text_reason(err, errlen, -EINVAL, "%s: a lifetime must be positive",
                              req->name);
    if (spec.not_after > ca_end)
        return et_text_reason(err, errlen, -EINVAL, "%s: a certificate cannot outlive the "
                              "issuing CA, which ends in %lld days; ask for a shorter one",
                              req->name, (long long)((ca_end - now) / 86400));
    if (req->kind == ET_CA_SERVER) {
        san_len = san_der(req->name, req->alt_names, req->n_alt_names, san, sizeof(san),
                          &san_start, err, errlen);
        if (san_len < 0)
            return san_len;
        spec.san = san_start;
        spec.san_len = (size_t)san_len;
        spec.eku_oid = MBEDTLS_OID_SERVER_AUTH;
        spec.eku_oid_len = MBEDTLS_OID_SIZE(MBEDTLS_OID_SERVER_AUTH);
    } else {
        spec.eku_oid = MBEDTLS_OID_CLIENT_AUTH;
        spec.eku_oid_len = MBEDTLS_OID_SIZE(MBEDTLS_OID_CLIENT_AUTH);
    }
    snprintf(subject, sizeof(subject), "CN=%s,OU=%s,O=" ET_CA_ORG, req->name,
             et_ca_kind_name(req->kind));
    spec.subject = subject;

    mbedtls_x509_csr_init(&csr);
    rc = et_sign_rng_start(&r, err, errlen);
    if (rc)
        goto out;
    if ((rc = check_csr(req, csr_data, len, &csr, err, errlen)))
        goto out;
    spec.subject_key = &csr.pk;
    if (ca_new_serial(&r.drbg, spec.serial)) {
        rc = et_text_reason(err, errlen, -EIO, "random generator failed");
        goto out;
    }
    if ((rc = ca_write_crt(&spec, pem, sizeof(pem), &r.drbg, err, errlen)))
        goto out;
    ca_serial_text(spec.serial, c.serial);
    snprintf(c.name, sizeof(c.name), "%s", req->name);
    c.not_before = spec.not_before;
    c.not_after = spec.not_after;
    if (asprintf(pem_out, "%s%s", (char *)pem, ca->crt_pem) < 0) {
        *pem_out = NULL;
        rc = et_text_reason(err, errlen, -ENOMEM, "out of memory");
        goto out;
    }
    rc = ca_index_add(ca, &c, err, errlen);
    if (rc) {
        free(*pem_out);
        *pem_out = NULL;
        goto out;
    }
    if (info)
        *info = c;
out:
    mbedtls_x509_csr_free(&csr);
    et_sign_rng_end(&r);
    return rc;
}
