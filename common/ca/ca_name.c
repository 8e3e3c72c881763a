/*
 * Which names the CA gives to whom, and the name a certificate file
 * carries. The broker takes a certificate's CN as the client's user name
 * and client id and confines a device to <root>/v1/<CN>/, so a device name
 * must be a device id, and never a name that means something else to the
 * broker: an aggregator's, an operator's, the broker's own.
 */
#define _GNU_SOURCE /* timegm */
#include "ca_internal.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <mbedtls/oid.h>

#include "edgetel/text.h"

/* Prefixes no device may start with (case ignored): the broker gives
 * aggregator-*, issuer-* and claim-* rights of their own (broker/edgetel_acl.c). */
static const char *const reserved_prefixes[] = { "aggregator", "ops", "issuer", "claim" };
/* Names no device may have (case ignored), beside any server's. */
static const char *const reserved_names[] = { "broker", "server", "localhost", "ca" };

static bool id_char(unsigned char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
           c == '.' || c == '_' || c == '-';
}

/* The first character of name that a topic or a subject cannot carry, as a person reads it. */
static int bad_char(const char *name, char *what, size_t len)
{
    for (const unsigned char *p = (const unsigned char *)name; *p; p++) {
        if (id_char(*p))
            continue;
        if (*p < 0x20 || *p == 0x7f)
            snprintf(what, len, "a control character (0x%02x)", *p);
        else if (*p == '/' || *p == '+' || *p == '#')
            snprintf(what, len, "'%c' (an MQTT topic level or wildcard)", *p);
        else if (*p >= 0x80)
            snprintf(what, len, "a byte outside ASCII (0x%02x)", *p);
        else
            snprintf(what, len, "'%c'", *p);
        return 1;
    }
    return 0;
}

static int check_id(const char *what, const char *name, char *err, size_t errlen)
{
    char bad[64];
    size_t n = strlen(name);

    if (n == 0 || n > ET_CA_NAME_MAX)
        return et_text_reason(err, errlen, -EINVAL, "%s \"%.64s\": use 1-%d characters",
                              what, name, ET_CA_NAME_MAX);
    if (bad_char(name, bad, sizeof(bad)))
        return et_text_reason(err, errlen, -EINVAL, "%s \"%.64s\": holds %s; use only A-Z, "
                              "a-z, 0-9, '.', '_' and '-'", what, name, bad);
    if (name[0] == '.' || name[0] == '-')
        return et_text_reason(err, errlen, -EINVAL, "%s \"%.64s\": cannot start with '%c'",
                              what, name, name[0]);
    return 0;
}

static int check_device(const struct et_ca *ca, const char *name, char *err, size_t errlen)
{
    int rc = check_id("device id", name, err, errlen);

    if (rc)
        return rc;
    for (size_t i = 0; i < sizeof(reserved_prefixes) / sizeof(reserved_prefixes[0]); i++) {
        if (strncasecmp(name, reserved_prefixes[i], strlen(reserved_prefixes[i])) == 0)
            return et_text_reason(err, errlen, -EINVAL, "device id \"%s\": names starting "
                                  "with \"%s\" are reserved (the broker gives them rights "
                                  "no device may have); choose another id", name,
                                  reserved_prefixes[i]);
    }
    for (size_t i = 0; i < sizeof(reserved_names) / sizeof(reserved_names[0]); i++) {
        if (strcasecmp(name, reserved_names[i]) == 0)
            return et_text_reason(err, errlen, -EINVAL, "device id \"%s\": reserved for the "
                                  "broker and the CA; choose another id", name);
    }
    for (size_t i = 0; ca && i < ca->n; i++) {
        if (ca->certs[i].kind != ET_CA_DEVICE && strcasecmp(ca->certs[i].name, name) == 0)
            return et_text_reason(err, errlen, -EINVAL, "device id \"%s\": this CA issued "
                                  "that name to a %s (serial %s); choose another id", name,
                                  et_ca_kind_name(ca->certs[i].kind), ca->certs[i].serial);
    }
    return 0;
}

/* PREFIX<instance>, the instance an id, the whole at most ET_CA_NAME_MAX. */
static int check_instance(const char *what, const char *prefix, const char *name, char *err,
                          size_t errlen)
{
    size_t plen = strlen(prefix);
    char label[32];
    int rc;

    if (strncmp(name, prefix, plen) != 0 || !name[plen])
        return et_text_reason(err, errlen, -EINVAL, "%s \"%.64s\": an %s instance is named "
                              "%s<instance>", what, name, what, prefix);
    snprintf(label, sizeof(label), "%s instance", what);
    rc = check_id(label, name + plen, err, errlen);
    if (rc == 0 && strlen(name) > ET_CA_NAME_MAX)
        rc = et_text_reason(err, errlen, -EINVAL, "%s \"%.64s\": at most %d characters", what,
                            name, ET_CA_NAME_MAX);
    return rc;
}

int et_ca_name_check(const struct et_ca *ca, enum et_ca_kind kind, const char *name, char *err,
                     size_t errlen)
{
    size_t plen;
    int rc;

    if (!name)
        return et_text_reason(err, errlen, -EINVAL, "no name given");
    switch (kind) {
    case ET_CA_DEVICE:
        return check_device(ca, name, err, errlen);
    case ET_CA_AGGREGATOR:
        return check_instance("aggregator", ET_CA_AGGREGATOR_PREFIX, name, err, errlen);
    case ET_CA_ISSUER:
        return check_instance("issuer", ET_CA_ISSUER_PREFIX, name, err, errlen);
    case ET_CA_CLAIM:
        plen = strlen(ET_CA_CLAIM_PREFIX);
        if (strncmp(name, ET_CA_CLAIM_PREFIX, plen) != 0)
            return et_text_reason(err, errlen, -EINVAL, "claim \"%.64s\": a claim is named "
                                  ET_CA_CLAIM_PREFIX "<device id>", name);
        if (strlen(name + plen) > ET_CA_CLAIM_DEVICE_MAX)
            return et_text_reason(err, errlen, -EINVAL, "device id \"%.64s\": a device "
                                  "enrolled by claim has an id of at most %d characters (its "
                                  "claim, " ET_CA_CLAIM_PREFIX "<id>, must fit a certificate's "
                                  "%d)", name + plen, ET_CA_CLAIM_DEVICE_MAX, ET_CA_NAME_MAX);
        return check_device(ca, name + plen, err, errlen);
    case ET_CA_SERVER:
        /* A host name: the id's characters less '_', dot-separated labels. */
        rc = check_id("server name", name, err, errlen);
        if (rc == 0 && (strchr(name, '_') || strstr(name, "..") || name[strlen(name) - 1] == '.'))
            rc = et_text_reason(err, errlen, -EINVAL, "server name \"%s\": not a host name "
                                "(letters, digits, '-' in dot-separated labels)", name);
        return rc;
    }
    return et_text_reason(err, errlen, -EINVAL, "unknown certificate kind %d", (int)kind);
}

int64_t ca_time_unix(const mbedtls_x509_time *t)
{
    struct tm tm = {
        .tm_year = t->year - 1900, .tm_mon = t->mon - 1, .tm_mday = t->day,
        .tm_hour = t->hour, .tm_min = t->min, .tm_sec = t->sec,
    };

    return (int64_t)timegm(&tm);
}

int et_ca_cert_identity(const char *path, char *cn, size_t cnlen, int64_t *not_after, char *err,
                        size_t errlen)
{
    mbedtls_x509_crt crt;
    char why[100];
    bool found = false;
    int rc;

    mbedtls_x509_crt_init(&crt);
    rc = mbedtls_x509_crt_parse_file(&crt, path);
    if (rc) {
        rc = et_text_reason(err, errlen, -EINVAL, "certificate %s: %s", path,
                            et_sign_tls_why(rc, why, sizeof(why)));
        goto out;
    }
    for (const mbedtls_x509_name *n = &crt.subject; n; n = n->next) {
        if (MBEDTLS_OID_CMP(MBEDTLS_OID_AT_CN, &n->oid) != 0)
            continue;
        if (n->val.len >= cnlen || memchr(n->val.p, '\0', n->val.len)) {
            rc = et_text_reason(err, errlen, -EINVAL, "certificate %s: its CN is not a name",
                                path);
            goto out;
        }
        memcpy(cn, n->val.p, n->val.len);
        cn[n->val.len] = '\0';
        found = true;
    }
    if (!found) {
        rc = et_text_reason(err, errlen, -ENOENT, "certificate %s: its subject has no CN",
                            path);
        goto out;
    }
    if (not_after)
        *not_after = ca_time_unix(&crt.valid_to);
out:
    mbedtls_x509_crt_free(&crt);
    return rc;
}
