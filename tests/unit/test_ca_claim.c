/*
 * Enrollment by claim and renewal in the fleet CA library (common/ca/,
 * edgetel/ca_claim.h), with the board's side of it (edgetel/ca_device.h):
 * a claim enrolls its device once, in time, with its own key and its own
 * id; the same board may ask again; renewal only for a device whose
 * certificate is neither revoked nor expired; the board's key, CSR and
 * its check of the certificate that comes back.
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

#include "ca_fixture.h"
#include "edgetel/ca.h"
#include "edgetel/ca_claim.h"
#include "edgetel/ca_device.h"
#include "edgetel/sign.h"

#define DAY_S 86400
#define CLAIM_S (7 * DAY_S)

/* f->dir/name as a string that lives until the next two calls. */
static const char *file(struct ca_fx *f, const char *name)
{
    static char buf[4][256];
    static int i;

    i = (i + 1) % 4;
    snprintf(buf[i], sizeof(buf[i]), "%s/%s", f->dir, name);
    return buf[i];
}

/* What a board sends: a key made here, a CSR for cn, signed by the claim key at claim_key. */
struct request {
    uint8_t *csr;
    size_t len;
    uint8_t sig[ET_SIGN_SIG_MAX];
    size_t sig_len;
};

static void make_request(struct ca_fx *f, const char *key, const char *cn, const char *claim_key,
                         struct request *r)
{
    struct et_sign_key *k = NULL;

    if (access(key, F_OK) != 0)
        assert_int_equal(et_ca_key_make(key, f->err, sizeof(f->err)), 0);
    assert_int_equal(et_ca_csr_make(key, cn, &r->csr, &r->len, f->err, sizeof(f->err)), 0);
    r->sig_len = 0;
    if (claim_key) {
        assert_int_equal(et_sign_key_load_private(claim_key, &k, f->err, sizeof(f->err)), 0);
        assert_int_equal(et_sign_sign(k, r->csr, r->len, r->sig, &r->sig_len, f->err,
                                      sizeof(f->err)), 0);
        et_sign_key_destroy(k);
    }
}

static int enroll(struct ca_fx *f, const char *device, struct request *r, int64_t now, char **pem)
{
    return et_ca_enroll(f->ca, device, r->csr, r->len, r->sig, r->sig_len, DAY_S, now, pem,
                        NULL, f->err, sizeof(f->err));
}

static void claim(struct ca_fx *f, const char *device, const char *key)
{
    struct et_ca_claim c;
    char *pem = NULL;

    assert_int_equal(et_ca_claim_issue(f->ca, device, CLAIM_S, f->now, key, &pem, &c, f->err,
                                       sizeof(f->err)), 0);
    assert_non_null(strstr(pem, "BEGIN CERTIFICATE"));
    assert_string_equal(c.device, device);
    assert_int_equal(c.expires, f->now + CLAIM_S);
    assert_int_equal(c.used_at, 0);
    free(pem);
}

static void a_claim_enrolls_its_device_once(void **state)
{
    struct ca_fx *f = *state;
    struct request board = { 0 }, again = { 0 }, thief = { 0 };
    struct et_ca_leaf leaf;
    struct stat st;
    char *pem = NULL;

    claim(f, "pi-7", file(f, "claim.key"));
    assert_int_equal(stat(file(f, "claim.key"), &st), 0);
    assert_int_equal(st.st_mode & 0777, 0600);
    make_request(f, file(f, "board.key"), "pi-7", file(f, "claim.key"), &board);
    assert_int_equal(enroll(f, "pi-7", &board, f->now + 60, &pem), 0);
    /* The board takes it: its name, its key, the fleet's CA. */
    assert_int_equal(et_ca_leaf_check(pem, strlen(pem), "pi-7", file(f, "board.key"),
                                      file(f, "ca/ca.crt"), &leaf, f->err, sizeof(f->err)), 0);
    assert_string_equal(leaf.cn, "pi-7");
    assert_true(leaf.not_after > f->now + DAY_S - 5);
    free(pem);

    /* The same board, which lost the answer, may ask again with the same key. */
    make_request(f, file(f, "board.key"), "pi-7", file(f, "claim.key"), &again);
    assert_int_equal(enroll(f, "pi-7", &again, f->now + 120, &pem), 0);
    free(pem);

    /* Anyone else with a copy of the claim may not. */
    make_request(f, file(f, "thief.key"), "pi-7", file(f, "claim.key"), &thief);
    assert_int_equal(enroll(f, "pi-7", &thief, f->now + 180, &pem), -EALREADY);
    assert_null(pem);
    assert_non_null(strstr(f->err, "was used at"));
    assert_non_null(strstr(f->err, "edgetelctl provision pi-7"));
    free(board.csr);
    free(again.csr);
    free(thief.csr);
}

static void a_claim_is_refused_late_unsigned_or_for_another_id(void **state)
{
    struct ca_fx *f = *state;
    struct request r = { 0 };
    char *pem = NULL;

    claim(f, "pi-8", file(f, "claim8.key"));
    claim(f, "pi-9", file(f, "claim9.key"));

    /* Late: after the claim's end. */
    make_request(f, file(f, "b8.key"), "pi-8", file(f, "claim8.key"), &r);
    assert_int_equal(enroll(f, "pi-8", &r, f->now + CLAIM_S + 1, &pem), -EKEYEXPIRED);
    assert_non_null(strstr(f->err, "ended at"));
    free(r.csr);

    /* Signed by another claim's key (pi-9's holder asking for pi-8). */
    make_request(f, file(f, "b8.key"), "pi-8", file(f, "claim9.key"), &r);
    assert_int_equal(enroll(f, "pi-8", &r, f->now + 60, &pem), -EKEYREJECTED);
    free(r.csr);
    /* Not signed at all. */
    make_request(f, file(f, "b8.key"), "pi-8", NULL, &r);
    assert_int_equal(enroll(f, "pi-8", &r, f->now + 60, &pem), -EKEYREJECTED);
    free(r.csr);

    /* pi-9's claim used for a CSR of another id: refused, and the claim stays unused. */
    make_request(f, file(f, "b9.key"), "pi-8", file(f, "claim9.key"), &r);
    assert_int_equal(enroll(f, "pi-9", &r, f->now + 60, &pem), -EINVAL);
    assert_non_null(strstr(f->err, "asks for another name"));
    free(r.csr);
    make_request(f, file(f, "b9.key"), "pi-9", file(f, "claim9.key"), &r);
    assert_int_equal(enroll(f, "pi-9", &r, f->now + 60, &pem), 0);
    free(pem);
    free(r.csr);

    /* No claim at all. */
    make_request(f, file(f, "b10.key"), "pi-10", file(f, "claim9.key"), &r);
    assert_int_equal(enroll(f, "pi-10", &r, f->now + 60, &pem), -ENOENT);
    free(r.csr);
    assert_null(pem);
}

static void a_new_claim_replaces_the_old(void **state)
{
    struct ca_fx *f = *state;
    struct request r = { 0 };
    char *pem = NULL;

    claim(f, "pi-11", file(f, "old.key"));
    unlink(file(f, "new.key"));
    claim(f, "pi-11", file(f, "new.key"));
    make_request(f, file(f, "b11.key"), "pi-11", file(f, "old.key"), &r);
    assert_int_equal(enroll(f, "pi-11", &r, f->now + 60, &pem), -EKEYREJECTED);
    free(r.csr);
    make_request(f, file(f, "b11.key"), "pi-11", file(f, "new.key"), &r);
    assert_int_equal(enroll(f, "pi-11", &r, f->now + 60, &pem), 0);
    free(r.csr);
    free(pem);
}

static void renewal_needs_a_valid_certificate_of_the_device(void **state)
{
    struct ca_fx *f = *state;
    struct request r = { 0 }, next = { 0 };
    struct et_ca_cert info;
    char *pem = NULL;

    /* Never issued. */
    make_request(f, file(f, "r.key"), "pi-20", NULL, &r);
    assert_int_equal(et_ca_renew(f->ca, "pi-20", r.csr, r.len, DAY_S, f->now, &pem, NULL,
                                 f->err, sizeof(f->err)), -ENOENT);
    /* Enrolled, then renewed with a new key. */
    claim(f, "pi-20", file(f, "c20.key"));
    free(r.csr);
    make_request(f, file(f, "r.key"), "pi-20", file(f, "c20.key"), &r);
    assert_int_equal(enroll(f, "pi-20", &r, f->now, &pem), 0);
    free(pem);
    make_request(f, file(f, "r2.key"), "pi-20", NULL, &next);
    /* Not again and again: at most once every tenth of a lifetime. */
    assert_int_equal(et_ca_renew(f->ca, "pi-20", next.csr, next.len, DAY_S, f->now + 60, &pem,
                                 &info, f->err, sizeof(f->err)), -EAGAIN);
    assert_non_null(strstr(f->err, "at most every 8640 s"));
    assert_int_equal(et_ca_renew(f->ca, "pi-20", next.csr, next.len, DAY_S,
                                 f->now + DAY_S / 10 + 1, &pem, &info, f->err, sizeof(f->err)),
                     0);
    assert_string_equal(info.name, "pi-20");
    free(pem);
    /* Not for another name than the one that asks. */
    free(next.csr);
    make_request(f, file(f, "r3.key"), "pi-21", NULL, &next);
    assert_int_equal(et_ca_renew(f->ca, "pi-20", next.csr, next.len, DAY_S, f->now + DAY_S / 5,
                                 &pem, NULL, f->err, sizeof(f->err)), -EINVAL);
    /* Not past every certificate's end. */
    free(next.csr);
    make_request(f, file(f, "r3.key"), "pi-20", NULL, &next);
    assert_int_equal(et_ca_renew(f->ca, "pi-20", next.csr, next.len, DAY_S,
                                 f->now + 3 * DAY_S, &pem, NULL, f->err, sizeof(f->err)),
                     -EKEYEXPIRED);
    /* Not once revoked. */
    assert_int_equal(et_ca_revoke(f->ca, "pi-20", f->now + 61, NULL, f->err, sizeof(f->err)), 0);
    assert_int_equal(et_ca_renew(f->ca, "pi-20", next.csr, next.len, DAY_S, f->now + DAY_S / 2,
                                 &pem, NULL, f->err, sizeof(f->err)), -EKEYREVOKED);
    /* Never for a claim's, an issuer's or an aggregator's name. */
    assert_int_equal(et_ca_renew(f->ca, "claim-pi-20", next.csr, next.len, DAY_S, f->now, &pem,
                                 NULL, f->err, sizeof(f->err)), -EPERM);
    assert_int_equal(et_ca_renew(f->ca, "aggregator-1", next.csr, next.len, DAY_S, f->now, &pem,
                                 NULL, f->err, sizeof(f->err)), -EPERM);
    assert_null(pem);
    free(r.csr);
    free(next.csr);
}

static void claim_and_issuer_names_are_reserved(void **state)
{
    struct ca_fx *f = *state;
    char key[256], *pem = NULL;
    char long_id[ET_CA_CLAIM_DEVICE_MAX + 2];

    assert_int_equal(et_ca_name_check(f->ca, ET_CA_DEVICE, "claim-pi", f->err, sizeof(f->err)),
                     -EINVAL);
    assert_int_equal(et_ca_name_check(f->ca, ET_CA_DEVICE, "Issuer-1", f->err, sizeof(f->err)),
                     -EINVAL);
    assert_int_equal(et_ca_name_check(f->ca, ET_CA_ISSUER, "issuer-1", f->err, sizeof(f->err)),
                     0);
    assert_int_equal(et_ca_name_check(f->ca, ET_CA_ISSUER, "aggregator-1", f->err,
                                      sizeof(f->err)), -EINVAL);
    /* A claim only for an id a device may have, and short enough for claim-<id>. */
    snprintf(key, sizeof(key), "%s/k", f->dir);
    assert_int_equal(et_ca_claim_issue(f->ca, "aggregator-2", DAY_S, f->now, key, &pem, NULL,
                                       f->err, sizeof(f->err)), -EINVAL);
    memset(long_id, 'a', sizeof(long_id) - 1);
    long_id[sizeof(long_id) - 1] = '\0';
    assert_int_equal(et_ca_claim_issue(f->ca, long_id, DAY_S, f->now, key, &pem, NULL, f->err,
                                       sizeof(f->err)), -EINVAL);
    assert_non_null(strstr(f->err, "at most 58"));
    assert_int_equal(access(key, F_OK), -1);
}

static void short_certificates_are_barely_backdated(void **state)
{
    struct ca_fx *f = *state;
    struct request r = { 0 };
    struct et_ca_cert info;
    char *pem = NULL;

    claim(f, "pi-30", file(f, "c30.key"));
    make_request(f, file(f, "b30.key"), "pi-30", file(f, "c30.key"), &r);
    /* A minute-long certificate: renewal at two thirds must come after it is issued. */
    assert_int_equal(et_ca_enroll(f->ca, "pi-30", r.csr, r.len, r.sig, r.sig_len, 60, f->now,
                                  &pem, &info, f->err, sizeof(f->err)), 0);
    assert_int_equal(info.not_after - f->now, 60);
    assert_int_equal(f->now - info.not_before, 3);
    free(pem);
    free(r.csr);
}

static void the_board_refuses_a_certificate_not_its_own(void **state)
{
    struct ca_fx *f = *state;
    struct request r = { 0 };
    struct et_ca_leaf leaf;
    char other_ca[160], *pem = NULL;

    claim(f, "pi-40", file(f, "c40.key"));
    make_request(f, file(f, "b40.key"), "pi-40", file(f, "c40.key"), &r);
    assert_int_equal(enroll(f, "pi-40", &r, f->now, &pem), 0);
    /* For another key of the same board. */
    assert_int_equal(et_ca_key_make(file(f, "other.key"), f->err, sizeof(f->err)), 0);
    assert_int_equal(et_ca_leaf_check(pem, strlen(pem), "pi-40", file(f, "other.key"),
                                      file(f, "ca/ca.crt"), &leaf, f->err, sizeof(f->err)),
                     -EINVAL);
    /* For another name. */
    assert_int_equal(et_ca_leaf_check(pem, strlen(pem), "pi-41", file(f, "b40.key"),
                                      file(f, "ca/ca.crt"), &leaf, f->err, sizeof(f->err)),
                     -EINVAL);
    /* From another CA than the board trusts. */
    snprintf(other_ca, sizeof(other_ca), "%s/other-ca", f->dir);
    assert_int_equal(et_ca_init(other_ca, NULL, f->now, f->err, sizeof(f->err)), 0);
    strcat(other_ca, "/ca.crt");
    assert_int_equal(et_ca_leaf_check(pem, strlen(pem), "pi-40", file(f, "b40.key"), other_ca,
                                      &leaf, f->err, sizeof(f->err)), -EBADMSG);
    /* Not a certificate. */
    assert_int_equal(et_ca_leaf_check("junk", 4, "pi-40", file(f, "b40.key"),
                                      file(f, "ca/ca.crt"), &leaf, f->err, sizeof(f->err)),
                     -EINVAL);
    /* A board key others can read is refused for a CSR. */
    chmod(file(f, "b40.key"), 0644);
    free(r.csr);
    assert_int_equal(et_ca_csr_make(file(f, "b40.key"), "pi-40", &r.csr, &r.len, f->err,
                                    sizeof(f->err)), -EACCES);
    assert_non_null(strstr(f->err, "chmod 600"));
    free(pem);
}

static int count(void *ctx, const struct et_ca_claim *c)
{
    (void)c;
    (*(int *)ctx)++;
    return 0;
}

static void claims_are_listed_and_survive_a_reopen(void **state)
{
    struct ca_fx *f = *state;
    int n = 0;

    claim(f, "pi-50", file(f, "c50.key"));
    claim(f, "pi-51", file(f, "c51.key"));
    et_ca_close(f->ca);
    assert_int_equal(et_ca_open(&f->ca, f->ca_dir, f->err, sizeof(f->err)), 0);
    assert_int_equal(et_ca_claim_list(f->ca, count, &n, f->err, sizeof(f->err)), 0);
    assert_int_equal(n, 2);
}

#define ON_A_CA(test) cmocka_unit_test_setup_teardown(test, ca_fx_setup, ca_fx_teardown)

int main(void)
{
    const struct CMUnitTest tests[] = {
        ON_A_CA(a_claim_enrolls_its_device_once),
        ON_A_CA(a_claim_is_refused_late_unsigned_or_for_another_id),
        ON_A_CA(a_new_claim_replaces_the_old),
        ON_A_CA(renewal_needs_a_valid_certificate_of_the_device),
        ON_A_CA(claim_and_issuer_names_are_reserved),
        ON_A_CA(short_certificates_are_barely_backdated),
        ON_A_CA(the_board_refuses_a_certificate_not_its_own),
        ON_A_CA(claims_are_listed_and_survive_a_reopen),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
