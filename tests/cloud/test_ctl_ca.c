/*
 * edgetelctl ca, the program itself, and what other tools make of its
 * files: OpenSSL's own command line reads the CRL it writes (openssl crl
 * -text lists the revoked serial) and verifies its certificates against
 * ca.crt; an operator meets clear refusals (a reserved device name, a CA
 * key readable by others, a second init).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include "cloud_test.h"

#define CTL ET_BINARY_DIR "/ctl/edgetelctl"

#define sh(f, out, len, ...) cloud_sh((f)->dir, out, len, __VA_ARGS__)

static void openssl_reads_the_crl_and_verifies_the_chain(void **state)
{
    struct cloud_tmpdir *f = *state;
    char out[16384], serial[64] = "", upper[64];
    const char *p;

    assert_int_equal(sh(f, out, sizeof(out), CTL " ca init --dir ca"), 0);
    assert_int_equal(sh(f, out, sizeof(out), CTL " ca issue device dev1 --dir ca --out o"), 0);
    p = strstr(out, "serial ");
    assert_non_null(p);
    assert_int_equal(sscanf(p, "serial %32[0-9a-f]", serial), 1);
    assert_int_equal(sh(f, out, sizeof(out), CTL " ca issue device dev2 --dir ca --out o"), 0);
    assert_int_equal(sh(f, out, sizeof(out), "openssl verify -CAfile ca/ca.crt o/dev1.crt"), 0);

    assert_int_equal(sh(f, out, sizeof(out), CTL " ca revoke dev1 --dir ca"), 0);
    assert_int_equal(sh(f, out, sizeof(out), "openssl crl -in ca/crl.pem -noout -text"), 0);
    for (size_t i = 0; i <= strlen(serial); i++)
        upper[i] = (char)toupper((unsigned char)serial[i]);
    assert_non_null(strstr(out, upper));
    assert_non_null(strstr(out, "Issuer: CN = edgetel issuing CA"));
    assert_non_null(strstr(out, "CRL Number"));
    /* OpenSSL with the CRL: dev1 is revoked, dev2 is not. */
    assert_int_not_equal(sh(f, out, sizeof(out), "openssl verify -crl_check -CAfile ca/ca.crt "
                            "-CRLfile ca/crl.pem o/dev1.crt"), 0);
    assert_non_null(strstr(out, "revoked"));
    assert_int_equal(sh(f, out, sizeof(out), "openssl verify -crl_check -CAfile ca/ca.crt "
                        "-CRLfile ca/crl.pem o/dev2.crt"), 0);
    assert_int_equal(sh(f, out, sizeof(out), CTL " ca list --dir ca"), 0);
    assert_non_null(strstr(out, serial));
}

static void an_operator_meets_clear_refusals(void **state)
{
    struct cloud_tmpdir *f = *state;
    char out[4096];

    assert_int_equal(sh(f, out, sizeof(out), CTL " ca init --dir ca"), 0);
    assert_int_equal(sh(f, out, sizeof(out), CTL " ca init --dir ca"), 1);
    assert_non_null(strstr(out, "never overwritten"));
    assert_int_equal(sh(f, out, sizeof(out), CTL " ca issue device aggregator-2 --dir ca"), 1);
    assert_non_null(strstr(out, "reserved"));
    assert_int_equal(sh(f, out, sizeof(out), CTL " ca issue device 'a/b' --dir ca"), 1);
    assert_non_null(strstr(out, "'/'"));
    assert_int_equal(sh(f, out, sizeof(out), CTL " ca issue gizmo x --dir ca"), 2);
    assert_int_equal(sh(f, out, sizeof(out), "chmod 644 ca/issuing-ca.key && " CTL
                        " ca issue device dev1 --dir ca"), 1);
    assert_non_null(strstr(out, "issuing-ca.key is mode 0644"));
    assert_non_null(strstr(out, "chmod 600"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(openssl_reads_the_crl_and_verifies_the_chain, cloud_tmpdir_setup,
                                        cloud_tmpdir_teardown),
        cmocka_unit_test_setup_teardown(an_operator_meets_clear_refusals, cloud_tmpdir_setup,
                                        cloud_tmpdir_teardown),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
