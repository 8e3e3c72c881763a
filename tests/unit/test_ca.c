/*
 * The fleet CA library (common/ca/, et_ca) on its own, checked with Mbed
 * TLS's own parsers and verifier: a new CA's chain, certificates issued
 * from CSRs that verify to the root, the id check on a CSR, names the
 * design reserves, a CA key readable by others, and the CRL (it parses
 * and lists exactly the revoked serials).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <mbedtls/x509_crl.h>
#include <mbedtls/x509_crt.h>

#include "ca_fixture.h"
#include "edgetel/ca.h"

#define DAY_S 86400

static const char *path(struct ca_fx *f, const char *file)
{
    static char buf[2][256];
    static int i;

    i ^= 1;
    snprintf(buf[i], sizeof(buf[i]), "%s/%s", f->ca_dir, file);
    return buf[i];
}

static int count_certs(void *ctx, const struct et_ca_cert *c)
{
    (void)c;
    (*(size_t *)ctx)++;
    return 0;
}

static size_t index_size(struct ca_fx *f)
{
    size_t n = 0;

    et_ca_list(f->ca, count_certs, &n);
    return n;
}

/* A key and CSR for csr_name, issued as kind/name: the CA's answer, the PEM in *pem. */
static int issue(struct ca_fx *f, enum et_ca_kind kind, const char *name, const char *csr_name,
                 char **pem, struct et_ca_cert *info, char *err, size_t errlen)
{
    struct et_ca_request req = { .kind = kind, .name = name, .lifetime_s = 30 * DAY_S };
    char key[256];
    uint8_t *csr = NULL;
    size_t len = 0;
    int rc;

    snprintf(key, sizeof(key), "%s/%s-%d.key", f->dir, csr_name, rand());
    assert_int_equal(et_ca_make_key_csr(key, csr_name, &csr, &len, err, errlen), 0);
    rc = et_ca_issue_csr(f->ca, &req, csr, len, f->now, pem, info, err, errlen);
    free(csr);
    return rc;
}

/* The chain in pem verifies against the root alone, for the expected CN. */
static void expect_verifies(struct ca_fx *f, const char *pem, const char *cn)
{
    mbedtls_x509_crt chain, root;
    uint32_t flags = 0;

    mbedtls_x509_crt_init(&chain);
    mbedtls_x509_crt_init(&root);
    assert_int_equal(mbedtls_x509_crt_parse(&chain, (const unsigned char *)pem, strlen(pem) + 1),
                     0);
    /* The issuing CA rides along in the file: a client presents both. */
    assert_non_null(chain.next);
    assert_int_equal(mbedtls_x509_crt_parse_file(&root, path(f, ET_CA_ROOT_CRT)), 0);
    assert_int_equal(mbedtls_x509_crt_verify(&chain, &root, NULL, cn, &flags, NULL, NULL), 0);
    assert_int_equal(flags, 0);
    mbedtls_x509_crt_free(&chain);
    mbedtls_x509_crt_free(&root);
}

static void init_makes_a_chain_and_keys_nobody_else_reads(void **state)
{
    struct ca_fx *f = *state;
    mbedtls_x509_crt trust, root;
    uint32_t flags = 0;
    struct stat st;
    char err[512];

    assert_int_equal(stat(path(f, ET_CA_ROOT_KEY), &st), 0);
    assert_int_equal(st.st_mode & 0777, 0600);
    assert_int_equal(stat(path(f, ET_CA_ISSUING_KEY), &st), 0);
    assert_int_equal(st.st_mode & 0777, 0600);
    /* ca.crt is issuing + root; the issuing CA verifies to the root. */
    mbedtls_x509_crt_init(&trust);
    mbedtls_x509_crt_init(&root);
    assert_int_equal(mbedtls_x509_crt_parse_file(&trust, path(f, ET_CA_TRUST)), 0);
    assert_non_null(trust.next);
    assert_int_equal(mbedtls_x509_crt_parse_file(&root, path(f, ET_CA_ROOT_CRT)), 0);
    assert_int_equal(mbedtls_x509_crt_verify(&trust, &root, NULL, NULL, &flags, NULL, NULL), 0);
    assert_true(trust.ca_istrue);
    mbedtls_x509_crt_free(&trust);
    mbedtls_x509_crt_free(&root);
    /* Never over an existing CA. */
    assert_int_equal(et_ca_init(f->ca_dir, NULL, f->now, err, sizeof(err)), -EEXIST);
    assert_non_null(strstr(err, "never overwritten"));
}

static void issued_certificates_verify_to_the_root(void **state)
{
    struct ca_fx *f = *state;
    struct et_ca_cert info;
    char *pem = NULL;
    char err[512], cn[80];
    int64_t until = 0;

    assert_int_equal(issue(f, ET_CA_DEVICE, "dev-1", "dev-1", &pem, &info, err, sizeof(err)), 0);
    expect_verifies(f, pem, "dev-1");
    assert_string_equal(info.name, "dev-1");
    assert_int_equal(info.kind, ET_CA_DEVICE);
    assert_int_equal(info.not_after, f->now + 30 * DAY_S);
    assert_int_equal(strlen(info.serial), 2 * ET_CA_SERIAL_LEN);
    free(pem);

    assert_int_equal(issue(f, ET_CA_AGGREGATOR, "aggregator-a", "aggregator-a", &pem, NULL, err,
                           sizeof(err)), 0);
    expect_verifies(f, pem, "aggregator-a");
    {
        /* What a program reads back from its own certificate file. */
        char file[128];
        FILE *out;

        snprintf(file, sizeof(file), "%s/agg.crt", f->dir);
        out = fopen(file, "w");
        assert_non_null(out);
        fputs(pem, out);
        fclose(out);
        assert_int_equal(et_ca_cert_identity(file, cn, sizeof(cn), &until, err, sizeof(err)), 0);
        assert_string_equal(cn, "aggregator-a");
        assert_int_equal(until, f->now + 30 * DAY_S);
    }
    free(pem);

    /* A server certificate names 127.0.0.1: mbedtls checks the CN given against the SAN. */
    assert_int_equal(issue(f, ET_CA_SERVER, "broker", "broker", &pem, NULL, err, sizeof(err)), 0);
    expect_verifies(f, pem, "localhost");
    expect_verifies(f, pem, "broker");
    free(pem);
}

static void a_csr_gets_only_its_own_name(void **state)
{
    struct ca_fx *f = *state;
    struct et_ca_request req = { .kind = ET_CA_DEVICE, .name = "dev-2", .lifetime_s = DAY_S };
    char *pem = NULL;
    char err[512], key[128];
    uint8_t *csr = NULL;
    size_t len = 0;

    assert_int_equal(issue(f, ET_CA_DEVICE, "dev-2", "dev-3", &pem, NULL, err, sizeof(err)),
                     -EINVAL);
    assert_null(pem);
    assert_non_null(strstr(err, "another name"));

    /* A changed byte in the signed part: the CSR's own signature fails. */
    snprintf(key, sizeof(key), "%s/dev-2.key", f->dir);
    assert_int_equal(et_ca_make_key_csr(key, "dev-2", &csr, &len, err, sizeof(err)), 0);
    {
        /* Flip a bit inside the base64 of the name part, past the header. */
        char *b64 = strchr((char *)csr, '\n') + 1;

        b64[60] = b64[60] == 'A' ? 'B' : 'A';
    }
    assert_int_not_equal(et_ca_issue_csr(f->ca, &req, csr, len, f->now, &pem, NULL, err,
                                         sizeof(err)), 0);
    assert_null(pem);
    free(csr);
    /* Nothing refused went into the index. */
    assert_int_equal(index_size(f), 0);
}

static void reserved_and_hostile_names_are_refused(void **state)
{
    struct ca_fx *f = *state;
    static const char *const refused[] = {
        "aggregator", "aggregator-1", "Aggregator-x", "ops", "ops-console", "broker", "server",
        "localhost", "CA", "a/b", "dev+", "dev#", "dev\n1", "dev\x01", "", ".hidden",
        "edgetel/v1/x", "caf\xc3\xa9",
        "a-very-long-device-name-that-goes-on-and-on-past-sixty-four-characters-x",
    };
    char err[512], *pem = NULL;

    for (size_t i = 0; i < sizeof(refused) / sizeof(refused[0]); i++) {
        err[0] = '\0';
        assert_int_equal(et_ca_name_check(f->ca, ET_CA_DEVICE, refused[i], err, sizeof(err)),
                         -EINVAL);
        assert_true(strlen(err) > 10);
    }
    assert_int_equal(et_ca_name_check(f->ca, ET_CA_DEVICE, "dev1", err, sizeof(err)), 0);
    assert_int_equal(et_ca_name_check(f->ca, ET_CA_DEVICE, "pi-4.kitchen_2", err, sizeof(err)),
                     0);
    /* A name a server certificate went to is the broker's from then on. */
    assert_int_equal(issue(f, ET_CA_SERVER, "mqtt", "mqtt", &pem, NULL, err, sizeof(err)), 0);
    free(pem);
    assert_int_equal(et_ca_name_check(f->ca, ET_CA_DEVICE, "mqtt", err, sizeof(err)), -EINVAL);
    assert_non_null(strstr(err, "server"));
    /* The CA itself refuses, CSR or not; nothing refused reaches the index. */
    assert_int_equal(issue(f, ET_CA_DEVICE, "aggregator-1", "aggregator-1", &pem, NULL, err,
                           sizeof(err)), -EINVAL);
    assert_null(pem);
    assert_int_equal(index_size(f), 1);
    /* An aggregator is aggregator-<instance>. */
    assert_int_equal(et_ca_name_check(f->ca, ET_CA_AGGREGATOR, "dev1", err, sizeof(err)),
                     -EINVAL);
    assert_int_equal(et_ca_name_check(f->ca, ET_CA_AGGREGATOR, "aggregator-", err, sizeof(err)),
                     -EINVAL);
    assert_int_equal(et_ca_name_check(f->ca, ET_CA_AGGREGATOR, "aggregator-2", err, sizeof(err)),
                     0);
}

static void a_ca_key_readable_by_others_is_refused(void **state)
{
    struct ca_fx *f = *state;
    struct et_ca *again = NULL;
    char err[512];

    et_ca_close(f->ca);
    f->ca = NULL;
    assert_int_equal(chmod(path(f, ET_CA_ISSUING_KEY), 0644), 0);
    assert_int_equal(et_ca_open(&again, f->ca_dir, err, sizeof(err)), -EACCES);
    assert_null(again);
    assert_non_null(strstr(err, ET_CA_ISSUING_KEY));
    assert_non_null(strstr(err, "chmod 600"));
    assert_int_equal(chmod(path(f, ET_CA_ISSUING_KEY), 0600), 0);
    assert_int_equal(chmod(path(f, ET_CA_ROOT_KEY), 0640), 0);
    assert_int_equal(et_ca_open(&again, f->ca_dir, err, sizeof(err)), -EACCES);
    assert_non_null(strstr(err, ET_CA_ROOT_KEY));
    assert_int_equal(chmod(path(f, ET_CA_ROOT_KEY), 0600), 0);
    assert_int_equal(et_ca_open(&f->ca, f->ca_dir, err, sizeof(err)), 0);
}

/* The serials a CRL file lists, as hex, into out (space-separated). */
static void crl_serials(struct ca_fx *f, char *out, size_t len)
{
    mbedtls_x509_crl crl;
    mbedtls_x509_crt issuing;

    mbedtls_x509_crl_init(&crl);
    mbedtls_x509_crt_init(&issuing);
    assert_int_equal(mbedtls_x509_crl_parse_file(&crl, path(f, ET_CA_CRL)), 0);
    assert_int_equal(crl.version, 2);
    /* Issued by the issuing CA, byte for byte its subject. */
    assert_int_equal(mbedtls_x509_crt_parse_file(&issuing, path(f, ET_CA_ISSUING_CRT)), 0);
    assert_int_equal(crl.issuer_raw.len, issuing.subject_raw.len);
    assert_memory_equal(crl.issuer_raw.p, issuing.subject_raw.p, crl.issuer_raw.len);
    out[0] = '\0';
    for (const mbedtls_x509_crl_entry *e = &crl.entry; e && e->serial.len; e = e->next) {
        size_t at = strlen(out);

        for (size_t i = 0; i < e->serial.len && at + 3 < len; i++, at += 2)
            snprintf(out + at, 3, "%02x", e->serial.p[i]);
        if (at + 2 < len)
            strcat(out, " ");
    }
    mbedtls_x509_crl_free(&crl);
    mbedtls_x509_crt_free(&issuing);
}

static void revoking_lists_the_serial_in_a_crl_that_verifies(void **state)
{
    struct ca_fx *f = *state;
    struct et_ca_cert a, b;
    char *pem = NULL;
    char err[512], serials[512], want[80];
    mbedtls_x509_crt chain, root;
    mbedtls_x509_crl crl;
    uint32_t flags = 0;
    size_t n = 0;

    crl_serials(f, serials, sizeof(serials));
    assert_string_equal(serials, "");   /* init writes an empty one */
    assert_int_equal(issue(f, ET_CA_DEVICE, "dev-a", "dev-a", &pem, &a, err, sizeof(err)), 0);
    free(pem);
    assert_int_equal(issue(f, ET_CA_DEVICE, "dev-b", "dev-b", &pem, &b, err, sizeof(err)), 0);

    assert_int_equal(et_ca_revoke(f->ca, "dev-b", f->now, &n, err, sizeof(err)), 0);
    assert_int_equal(n, 1);
    crl_serials(f, serials, sizeof(serials));
    snprintf(want, sizeof(want), "%s ", b.serial);
    assert_string_equal(serials, want);
    assert_int_equal(et_ca_revoke(f->ca, "dev-b", f->now, &n, err, sizeof(err)), -ENOENT);

    /* Mbed TLS's verifier, given the CRL, refuses the revoked certificate. */
    mbedtls_x509_crt_init(&chain);
    mbedtls_x509_crt_init(&root);
    mbedtls_x509_crl_init(&crl);
    assert_int_equal(mbedtls_x509_crt_parse(&chain, (const unsigned char *)pem, strlen(pem) + 1),
                     0);
    assert_int_equal(mbedtls_x509_crt_parse_file(&root, path(f, ET_CA_ROOT_CRT)), 0);
    assert_int_equal(mbedtls_x509_crl_parse_file(&crl, path(f, ET_CA_CRL)), 0);
    assert_int_not_equal(mbedtls_x509_crt_verify(&chain, &root, &crl, NULL, &flags, NULL, NULL),
                         0);
    assert_true(flags & MBEDTLS_X509_BADCERT_REVOKED);
    mbedtls_x509_crt_free(&chain);
    mbedtls_x509_crt_free(&root);
    mbedtls_x509_crl_free(&crl);
    free(pem);

    /* The index remembers, across a reopen. */
    et_ca_close(f->ca);
    assert_int_equal(et_ca_open(&f->ca, f->ca_dir, err, sizeof(err)), 0);
    assert_int_equal(et_ca_revoke(f->ca, "dev-a", f->now + 5, &n, err, sizeof(err)), 0);
    crl_serials(f, serials, sizeof(serials));
    assert_non_null(strstr(serials, a.serial));
    assert_non_null(strstr(serials, b.serial));
}

#define ON_A_CA(test) cmocka_unit_test_setup_teardown(test, ca_fx_setup, ca_fx_teardown)

int main(void)
{
    const struct CMUnitTest tests[] = {
        ON_A_CA(init_makes_a_chain_and_keys_nobody_else_reads),
        ON_A_CA(issued_certificates_verify_to_the_root),
        ON_A_CA(a_csr_gets_only_its_own_name),
        ON_A_CA(reserved_and_hostile_names_are_refused),
        ON_A_CA(a_ca_key_readable_by_others_is_refused),
        ON_A_CA(revoking_lists_the_serial_in_a_crl_that_verifies),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
