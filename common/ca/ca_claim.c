/*
 * Claims and the issuer's two decisions: enroll a device under its claim,
 * renew the certificate of a device that proved who it is. The contract
 * is edgetel/ca_claim.h; certificates are written by et_ca_issue_csr().
 */
#define _GNU_SOURCE
#include "ca_internal.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <mbedtls/x509_csr.h>

#include "edgetel/ca_claim.h"
#include "edgetel/text.h"
#include "mbedtls_shim.h"

#define CLAIMS_HEADER "# device\tclaim_serial\tcreated\texpires\tused_at\tenrolled_key\tclaim_key\n"

/* A claim as claims.tsv keeps it: the public part and the claim's own key. */
struct claim_row {
    struct et_ca_claim c;
    uint8_t key[CA_PUB_DER_MAX];
    size_t key_len;
};

struct claims {
    struct claim_row *rows;
    size_t n, cap;
};

static void iso_time(int64_t t, char out[32])
{
    time_t tt = (time_t)t;
    struct tm tm;

    if (!gmtime_r(&tt, &tm) || !strftime(out, 32, "%Y-%m-%dT%H:%M:%SZ", &tm))
        snprintf(out, 32, "%" PRId64, t);
}

static void hex(const uint8_t *in, size_t n, char *out)
{
    for (size_t i = 0; i < n; i++)
        snprintf(out + 2 * i, 3, "%02x", in[i]);
}

static int unhex(const char *in, uint8_t *out, size_t cap, size_t *n)
{
    size_t len = strlen(in);

    if (len % 2 || len / 2 > cap)
        return -EINVAL;
    for (size_t i = 0; i < len / 2; i++) {
        unsigned v;

        if (sscanf(in + 2 * i, "%2x", &v) != 1)
            return -EINVAL;
        out[i] = (uint8_t)v;
    }
    *n = len / 2;
    return 0;
}

/* The CSR's key as DER and its SHA-256 in hex; the CSR's own checks come later. */
static int csr_key(const uint8_t *csr, size_t len, uint8_t *der, size_t cap, size_t *der_len,
                   char hash[ET_CA_KEY_HASH_TEXT], char *err, size_t errlen)
{
    mbedtls_x509_csr parsed;
    unsigned char sum[32];
    char why[100];
    int rc, n;

    mbedtls_x509_csr_init(&parsed);
    rc = mbedtls_x509_csr_parse(&parsed, csr, len);
    if (rc) {
        rc = et_text_reason(err, errlen, -EINVAL, "the CSR does not parse: %s",
                            et_sign_tls_why(rc, why, sizeof(why)));
        goto out;
    }
    n = ca_pub_der(&parsed.pk, der, cap);
    if (n < 0 || et_shim_sha256(der, (size_t)n, sum) != 0) {
        rc = et_text_reason(err, errlen, -EINVAL, "the CSR's key cannot be read");
        goto out;
    }
    *der_len = (size_t)n;
    hex(sum, sizeof(sum), hash);
out:
    mbedtls_x509_csr_free(&parsed);
    return rc;
}

/* ---- claims.tsv ------------------------------------------------------------------ */

static void claims_free(struct claims *cl)
{
    free(cl->rows);
    cl->rows = NULL;
    cl->n = cl->cap = 0;
}

static int claims_push(struct claims *cl, const struct claim_row *r)
{
    if (cl->n == cl->cap) {
        size_t cap = cl->cap ? 2 * cl->cap : 16;
        struct claim_row *v = realloc(cl->rows, cap * sizeof(*v));

        if (!v)
            return -ENOMEM;
        cl->rows = v;
        cl->cap = cap;
    }
    cl->rows[cl->n++] = *r;
    return 0;
}

static int parse_line(char *line, struct claim_row *r)
{
    char *f[7], *save = NULL, *end;
    size_t n = 0;

    memset(r, 0, sizeof(*r));
    for (char *t = strtok_r(line, "\t", &save); t && n < 7; t = strtok_r(NULL, "\t", &save))
        f[n++] = t;
    if (n != 7 || strlen(f[0]) > ET_CA_NAME_MAX || strlen(f[1]) != ET_CA_SERIAL_TEXT - 1 ||
        (strcmp(f[5], "-") != 0 && strlen(f[5]) != ET_CA_KEY_HASH_TEXT - 1))
        return -EINVAL;
    snprintf(r->c.device, sizeof(r->c.device), "%s", f[0]);
    memcpy(r->c.serial, f[1], ET_CA_SERIAL_TEXT);
    errno = 0;
    r->c.created = strtoll(f[2], &end, 10);
    if (*end)
        return -EINVAL;
    r->c.expires = strtoll(f[3], &end, 10);
    if (*end)
        return -EINVAL;
    r->c.used_at = strtoll(f[4], &end, 10);
    if (*end || errno)
        return -EINVAL;
    if (strcmp(f[5], "-") != 0)
        memcpy(r->c.enrolled_key, f[5], ET_CA_KEY_HASH_TEXT);
    return unhex(f[6], r->key, sizeof(r->key), &r->key_len);
}

static int claims_row(void *ctx, char *line)
{
    struct claim_row r;

    return parse_line(line, &r) ? -EINVAL : claims_push(ctx, &r);
}

/* The CA's claims; none yet is an empty table. */
static int claims_load(struct et_ca *ca, struct claims *cl, char *err, size_t errlen)
{
    char path[PATH_MAX];
    int rc;

    memset(cl, 0, sizeof(*cl));
    if (et_ca_path(ca, ET_CA_CLAIMS, path, sizeof(path)) == 0 && access(path, F_OK) != 0 &&
        errno == ENOENT)
        return 0;
    rc = ca_table_load(ca, ET_CA_CLAIMS, "claims", "device, claim_serial, created, expires, "
                       "used_at, enrolled_key, claim_key", claims_row, cl, err, errlen);
    if (rc)
        claims_free(cl);
    return rc;
}

static void claims_rows(void *ctx, FILE *m)
{
    const struct claims *cl = ctx;
    char key_hex[2 * CA_PUB_DER_MAX + 1];

    for (size_t i = 0; i < cl->n; i++) {
        const struct claim_row *r = &cl->rows[i];

        hex(r->key, r->key_len, key_hex);
        fprintf(m, "%s\t%s\t%" PRId64 "\t%" PRId64 "\t%" PRId64 "\t%s\t%s\n", r->c.device,
                r->c.serial, r->c.created, r->c.expires, r->c.used_at,
                r->c.enrolled_key[0] ? r->c.enrolled_key : "-", key_hex);
    }
}

static int claims_save(struct et_ca *ca, const struct claims *cl, char *err, size_t errlen)
{
    return ca_table_save(ca, ET_CA_CLAIMS, CLAIMS_HEADER, claims_rows, (void *)cl, err, errlen);
}

static struct claim_row *claims_find(struct claims *cl, const char *device)
{
    for (size_t i = 0; i < cl->n; i++)
        if (strcmp(cl->rows[i].c.device, device) == 0)
            return &cl->rows[i];
    return NULL;
}

/* ---- registering a claim --------------------------------------------------------- */

int et_ca_claim_issue(struct et_ca *ca, const char *device, int64_t lifetime_s, int64_t now,
                      const char *key_path, char **pem, struct et_ca_claim *info, char *err,
                      size_t errlen)
{
    char name[ET_CA_NAME_MAX + 16], hash[ET_CA_KEY_HASH_TEXT];
    struct et_ca_request req = { .kind = ET_CA_CLAIM, .name = name, .lifetime_s = lifetime_s };
    struct claims cl = { 0 };
    struct claim_row row = { 0 }, *old;
    struct et_ca_cert crt;
    uint8_t *csr = NULL;
    size_t csr_len = 0;
    int rc;

    *pem = NULL;
    if (snprintf(name, sizeof(name), ET_CA_CLAIM_PREFIX "%s", device) >= (int)sizeof(name))
        return et_text_reason(err, errlen, -EINVAL, "device id \"%.64s...\": too long", device);
    if ((rc = et_ca_name_check(ca, ET_CA_CLAIM, name, err, errlen)) ||
        (rc = claims_load(ca, &cl, err, errlen)))
        return rc;
    if ((rc = et_ca_make_key_csr(key_path, name, &csr, &csr_len, err, errlen)))
        goto out;
    if ((rc = csr_key(csr, csr_len, row.key, sizeof(row.key), &row.key_len, hash, err, errlen)) ||
        (rc = et_ca_issue_csr(ca, &req, csr, csr_len, now, pem, &crt, err, errlen)))
        goto out;
    snprintf(row.c.device, sizeof(row.c.device), "%s", device);
    memcpy(row.c.serial, crt.serial, sizeof(row.c.serial));
    row.c.created = now;
    row.c.expires = crt.not_after;
    old = claims_find(&cl, device);
    if (old)
        *old = row;
    else if ((rc = claims_push(&cl, &row)) != 0)
        et_text_reason(err, errlen, rc, "out of memory");
    if (rc == 0)
        rc = claims_save(ca, &cl, err, errlen);
    if (rc == 0 && info)
        *info = row.c;
out:
    if (rc) {
        free(*pem);
        *pem = NULL;
        if (csr)
            unlink(key_path);
    }
    free(csr);
    claims_free(&cl);
    return rc;
}

int et_ca_claim_list(struct et_ca *ca, int (*fn)(void *ctx, const struct et_ca_claim *c),
                     void *ctx, char *err, size_t errlen)
{
    struct claims cl;
    int rc = claims_load(ca, &cl, err, errlen);

    for (size_t i = 0; rc == 0 && i < cl.n; i++)
        rc = fn(ctx, &cl.rows[i].c);
    claims_free(&cl);
    return rc;
}

/* ---- enrolling and renewing ------------------------------------------------------- */

/* Whether sig is the claim key's signature over the CSR's bytes. */
static bool claim_signed(const struct claim_row *r, const uint8_t *csr, size_t len,
                         const uint8_t *sig, size_t sig_len)
{
    mbedtls_pk_context pk;
    unsigned char sum[32];
    bool ok = false;

    mbedtls_pk_init(&pk);
    if (sig_len > 0 && sig_len <= ET_SHIM_SIG_MAX &&
        mbedtls_pk_parse_public_key(&pk, r->key, r->key_len) == 0 &&
        et_shim_sha256(csr, len, sum) == 0)
        ok = mbedtls_pk_verify(&pk, MBEDTLS_MD_SHA256, sum, sizeof(sum), sig, sig_len) == 0;
    mbedtls_pk_free(&pk);
    return ok;
}

int et_ca_enroll(struct et_ca *ca, const char *device, const uint8_t *csr, size_t csr_len,
                 const uint8_t *sig, size_t sig_len, int64_t lifetime_s, int64_t now,
                 char **pem, struct et_ca_cert *info, char *err, size_t errlen)
{
    struct et_ca_request req = { .kind = ET_CA_DEVICE, .name = device, .lifetime_s = lifetime_s };
    char hash[ET_CA_KEY_HASH_TEXT], when[32];
    uint8_t key[CA_PUB_DER_MAX];
    size_t key_len;
    struct claims cl;
    struct claim_row *r;
    int rc;

    *pem = NULL;
    if ((rc = claims_load(ca, &cl, err, errlen)))
        return rc;
    r = claims_find(&cl, device);
    if (!r) {
        rc = et_text_reason(err, errlen, -ENOENT, "no claim is registered for \"%.64s\": the "
                            "operator registers a device with edgetelctl provision", device);
        goto out;
    }
    if (now >= r->c.expires) {
        iso_time(r->c.expires, when);
        rc = et_text_reason(err, errlen, -EKEYEXPIRED, "the claim for %s ended at %s: make a "
                            "new one (edgetelctl provision %s)", device, when, device);
        goto out;
    }
    if (!claim_signed(r, csr, csr_len, sig, sig_len)) {
        rc = et_text_reason(err, errlen, -EKEYREJECTED, "the request is not signed by the key "
                            "of %s's claim (serial %s): an older claim of the device, or a "
                            "forgery", device, r->c.serial);
        goto out;
    }
    if ((rc = csr_key(csr, csr_len, key, sizeof(key), &key_len, hash, err, errlen)))
        goto out;
    if (r->c.used_at && strcmp(r->c.enrolled_key, hash) != 0) {
        iso_time(r->c.used_at, when);
        rc = et_text_reason(err, errlen, -EALREADY, "the claim for %s was used at %s to enroll "
                            "another key: a claim enrolls one board, once (if this board is "
                            "the rightful one, make a new claim: edgetelctl provision %s)",
                            device, when, device);
        goto out;
    }
    if ((rc = et_ca_issue_csr(ca, &req, csr, csr_len, now, pem, info, err, errlen)))
        goto out;
    if (!r->c.used_at)
        r->c.used_at = now;
    memcpy(r->c.enrolled_key, hash, sizeof(hash));
    rc = claims_save(ca, &cl, err, errlen);
    if (rc) {
        /* Not recorded as used: the certificate must not leave. */
        free(*pem);
        *pem = NULL;
    }
out:
    claims_free(&cl);
    return rc;
}

int et_ca_renew(struct et_ca *ca, const char *device, const uint8_t *csr, size_t csr_len,
                int64_t lifetime_s, int64_t now, char **pem, struct et_ca_cert *info, char *err,
                size_t errlen)
{
    struct et_ca_request req = { .kind = ET_CA_DEVICE, .name = device, .lifetime_s = lifetime_s };
    size_t issued = 0, revoked = 0, valid = 0;
    int64_t newest = INT64_MIN;
    char why[256];
    int rc;

    *pem = NULL;
    if (et_ca_name_check(ca, ET_CA_DEVICE, device, why, sizeof(why)) != 0)
        return et_text_reason(err, errlen, -EPERM, "%s is not a device this CA renews: %s",
                              device, why);
    /* A CSR for another id is refused as that, whatever else holds. */
    if ((rc = ca_csr_check(&req, csr, csr_len, err, errlen)))
        return rc;
    for (size_t i = 0; i < ca->n; i++) {
        const struct et_ca_cert *c = &ca->certs[i];

        if (c->kind != ET_CA_DEVICE || strcmp(c->name, device) != 0)
            continue;
        issued++;
        if (c->revoked_at) {
            revoked++;
            continue;
        }
        if (c->not_after > now)
            valid++;
        if (c->not_before > newest)
            newest = c->not_before;
    }
    /*
     * A device renews at two thirds of a lifetime; one that asks again and
     * again (hostile, or broken) would fill the index. A tenth of a
     * lifetime leaves room for a board whose new certificate did not work
     * and asks once more.
     */
    if (valid && now - newest < lifetime_s / 10)
        return et_text_reason(err, errlen, -EAGAIN, "%s got a certificate %" PRId64 " s ago: "
                              "a device is renewed at most every %" PRId64 " s", device,
                              now - newest, lifetime_s / 10);
    if (valid)
        return et_ca_issue_csr(ca, &req, csr, csr_len, now, pem, info, err, errlen);
    if (issued == 0)
        return et_text_reason(err, errlen, -ENOENT, "this CA never issued %s a certificate: "
                              "a new device enrolls by claim (edgetelctl provision %s)", device,
                              device);
    if (revoked == issued)
        return et_text_reason(err, errlen, -EKEYREVOKED, "%s's certificates are revoked: it is "
                              "not renewed (provision it again to let it back)", device);
    return et_text_reason(err, errlen, -EKEYEXPIRED, "%s has no certificate that is still "
                          "valid: provision it again (edgetelctl provision %s)", device, device);
}
