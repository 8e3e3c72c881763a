/*
 * The board's own identity on disk (agent/src/identity.h), with a real
 * CA issuing its certificates: enrollment commits at once, a renewal is on
 * trial until committed or abandoned, and what a power cut leaves at any
 * step is settled at the next open so the board keeps a certificate that
 * works: a key waiting for its certificate asks again with the same key,
 * a certificate on trial is tried again, an enrollment cut before its
 * commit is the identity; stray files go. Renewal falls due at the share
 * of the lifetime, or the time before its end, that renew_at says.
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
#include <unistd.h>

#include "ca_fixture.h"
#include "identity.h"
#include "edgetel/ca.h"

#define DAY_S 86400

static const char *path(struct ca_fx *f, const char *name)
{
    static char buf[4][256];
    static int i;

    i = (i + 1) % 4;
    snprintf(buf[i], sizeof(buf[i]), "%s/data/identity/%s", f->dir, name);
    return buf[i];
}

static struct et_identity *open_id(struct ca_fx *f)
{
    char data[128], ca[160];
    struct et_identity *id = NULL;

    snprintf(data, sizeof(data), "%s/data", f->dir);
    snprintf(ca, sizeof(ca), "%s/ca.crt", f->ca_dir);
    assert_int_equal(et_identity_open(&id, data, "pi-1", ca, f->err, sizeof(f->err)), 0);
    return id;
}

/* The CA's answer to the identity's next CSR, with lifetime_s; *pem malloc'd. */
static char *issue_next(struct ca_fx *f, struct et_identity *id, int64_t lifetime_s)
{
    struct et_ca_request req = { .kind = ET_CA_DEVICE, .name = "pi-1", .lifetime_s = lifetime_s };
    uint8_t *csr = NULL;
    size_t len = 0;
    char *pem = NULL;

    assert_int_equal(et_identity_next_csr(id, &csr, &len, f->err, sizeof(f->err)), 0);
    assert_int_equal(et_ca_issue_csr(f->ca, &req, csr, len, f->now, &pem, NULL, f->err,
                                     sizeof(f->err)), 0);
    free(csr);
    return pem;
}

static void enrollment_commits_at_once_and_deletes_the_claim(void **state)
{
    struct ca_fx *f = *state;
    struct et_identity *id = open_id(f);
    struct stat st;
    char *pem;

    assert_int_equal(et_identity_state(id, f->now, true, NULL, 0), ET_ID_NOTHING);
    assert_null(et_identity_cert(id));
    /* A claim put there is found. */
    fclose(fopen(path(f, "claim.crt"), "w"));
    fclose(fopen(path(f, "claim.key"), "w"));
    assert_int_equal(et_identity_state(id, f->now, true, NULL, 0), ET_ID_CLAIM);
    pem = issue_next(f, id, DAY_S);
    assert_int_equal(stat(path(f, "1.key"), &st), 0);
    assert_int_equal(st.st_mode & 0777, 0600);
    assert_int_equal(et_identity_accept(id, pem, strlen(pem), f->now, true, f->err,
                                        sizeof(f->err)), 0);
    assert_false(et_identity_on_trial(id));
    assert_string_equal(et_identity_cert(id), path(f, "1.crt"));
    assert_string_equal(et_identity_key(id), path(f, "1.key"));
    assert_int_equal(et_identity_state(id, f->now, true, NULL, 0), ET_ID_READY);
    assert_int_equal(access(path(f, "claim.key"), F_OK), -1);
    assert_int_equal(access(path(f, "claim.crt"), F_OK), -1);
    /* It is the identity after a restart too. */
    et_identity_destroy(id);
    id = open_id(f);
    assert_int_equal(et_identity_state(id, f->now, true, NULL, 0), ET_ID_READY);
    et_identity_destroy(id);
    free(pem);
}

static void a_renewal_is_on_trial_until_it_works(void **state)
{
    struct ca_fx *f = *state;
    struct et_identity *id = open_id(f);
    char *one = issue_next(f, id, DAY_S), *two;

    assert_int_equal(et_identity_accept(id, one, strlen(one), f->now, true, f->err,
                                        sizeof(f->err)), 0);
    two = issue_next(f, id, DAY_S);
    assert_int_equal(et_identity_accept(id, two, strlen(two), f->now, true, f->err,
                                        sizeof(f->err)), 0);
    /* On trial: the new files are what the uplink connects with; the old stay. */
    assert_true(et_identity_on_trial(id));
    assert_string_equal(et_identity_cert(id), path(f, "2.crt"));
    assert_int_equal(access(path(f, "1.key"), F_OK), 0);
    /* Abandoned: back to the old, the new gone. */
    et_identity_abandon(id);
    assert_string_equal(et_identity_cert(id), path(f, "1.crt"));
    assert_int_equal(access(path(f, "2.key"), F_OK), -1);
    free(two);
    /* Again, and this time it works: the old is deleted. */
    two = issue_next(f, id, DAY_S);
    assert_int_equal(et_identity_accept(id, two, strlen(two), f->now, true, f->err,
                                        sizeof(f->err)), 0);
    assert_int_equal(et_identity_commit(id, f->err, sizeof(f->err)), 0);
    assert_string_equal(et_identity_cert(id), path(f, "2.crt"));
    assert_int_equal(access(path(f, "1.key"), F_OK), -1);
    assert_int_equal(access(path(f, "1.crt"), F_OK), -1);
    et_identity_destroy(id);
    free(one);
    free(two);
}

static void a_power_cut_at_any_step_leaves_a_working_identity(void **state)
{
    struct ca_fx *f = *state;
    struct et_identity *id = open_id(f);
    char *one = issue_next(f, id, DAY_S), *two;
    FILE *stray;

    /* Cut after the key was made, before the certificate came: asked again, same key. */
    et_identity_destroy(id);
    id = open_id(f);
    assert_int_equal(et_identity_state(id, f->now, true, NULL, 0), ET_ID_NOTHING);
    assert_int_equal(et_identity_accept(id, one, strlen(one), f->now, true, f->err,
                                        sizeof(f->err)), 0);
    /* Cut during a renewal's trial: on trial again, the old kept. */
    two = issue_next(f, id, DAY_S);
    assert_int_equal(et_identity_accept(id, two, strlen(two), f->now, true, f->err,
                                        sizeof(f->err)), 0);
    stray = fopen(path(f, "7.key"), "w");
    fclose(stray);
    fclose(fopen(path(f, "current.tmp"), "w"));
    et_identity_destroy(id);
    id = open_id(f);
    assert_true(et_identity_on_trial(id));
    assert_non_null(et_identity_current(id));
    assert_string_equal(et_identity_cert(id), path(f, "2.crt"));
    assert_int_equal(access(path(f, "1.crt"), F_OK), 0);
    assert_int_equal(access(path(f, "7.key"), F_OK), -1);
    assert_int_equal(access(path(f, "current.tmp"), F_OK), -1);
    et_identity_destroy(id);
    free(one);
    free(two);
}

static void an_enrollment_cut_before_its_commit_is_the_identity(void **state)
{
    struct ca_fx *f = *state;
    struct et_identity *id = open_id(f);
    char *one = issue_next(f, id, DAY_S);
    FILE *crt = fopen(path(f, "1.crt"), "w");

    /* The certificate written, "current" not yet. */
    fputs(one, crt);
    fclose(crt);
    et_identity_destroy(id);
    id = open_id(f);
    assert_false(et_identity_on_trial(id));
    assert_int_equal(et_identity_state(id, f->now, true, NULL, 0), ET_ID_READY);
    assert_int_equal(access(path(f, "current"), F_OK), 0);
    et_identity_destroy(id);
    free(one);
}

static void what_is_not_its_own_is_refused(void **state)
{
    struct ca_fx *f = *state;
    struct et_identity *id = open_id(f);
    struct et_ca_request req = { .kind = ET_CA_DEVICE, .name = "pi-2", .lifetime_s = DAY_S };
    char other_key[160], *pem = NULL, *one;
    uint8_t *csr;
    size_t len;

    /* Nothing asked for yet. */
    assert_int_equal(et_identity_accept(id, "x", 1, f->now, true, f->err, sizeof(f->err)),
                     -EALREADY);
    /* Another device's certificate for another key. */
    one = issue_next(f, id, DAY_S);
    snprintf(other_key, sizeof(other_key), "%s/other.key", f->dir);
    assert_int_equal(et_ca_make_key_csr(other_key, "pi-2", &csr, &len, f->err, sizeof(f->err)),
                     0);
    assert_int_equal(et_ca_issue_csr(f->ca, &req, csr, len, f->now, &pem, NULL, f->err,
                                     sizeof(f->err)), 0);
    assert_int_equal(et_identity_accept(id, pem, strlen(pem), f->now, true, f->err,
                                        sizeof(f->err)), -EINVAL);
    /* Its own, but past its end by a synced clock. */
    assert_int_equal(et_identity_accept(id, one, strlen(one), f->now + 2 * DAY_S, true, f->err,
                                        sizeof(f->err)), -EKEYEXPIRED);
    /* By a clock that is not synced, it is taken, and said usable. */
    assert_int_equal(et_identity_accept(id, one, strlen(one), f->now + 2 * DAY_S, false,
                                        f->err, sizeof(f->err)), 0);
    assert_int_equal(et_identity_state(id, f->now + 2 * DAY_S, false, NULL, 0), ET_ID_READY);
    assert_int_equal(et_identity_state(id, f->now + 2 * DAY_S, true, f->err, sizeof(f->err)),
                     ET_ID_NOTHING);
    assert_non_null(strstr(f->err, "ended at"));
    et_identity_destroy(id);
    free(csr);
    free(pem);
    free(one);
}

static void renewal_falls_due_as_renew_at_says(void **state)
{
    struct ca_fx *f = *state;
    struct et_identity *id = open_id(f);
    char *one = issue_next(f, id, 300 * DAY_S);
    const struct et_ca_leaf *l;

    assert_int_equal(et_identity_renew_at(id, 67, 0), INT64_MAX);
    assert_int_equal(et_identity_accept(id, one, strlen(one), f->now, true, f->err,
                                        sizeof(f->err)), 0);
    l = et_identity_leaf(id);
    assert_int_equal(et_identity_renew_at(id, 67, 0),
                     l->not_before + (l->not_after - l->not_before) * 67 / 100);
    assert_int_equal(et_identity_renew_at(id, 0, 30LL * DAY_S * 1000), l->not_after - 30 * DAY_S);
    et_identity_destroy(id);
    free(one);
}

static void check_refuses_a_key_others_can_read(void **state)
{
    struct ca_fx *f = *state;
    struct et_identity *id = open_id(f);
    char data[128], ca[160], msg[512], *one = issue_next(f, id, DAY_S);

    assert_int_equal(et_identity_accept(id, one, strlen(one), f->now, true, f->err,
                                        sizeof(f->err)), 0);
    et_identity_destroy(id);
    snprintf(data, sizeof(data), "%s/data", f->dir);
    snprintf(ca, sizeof(ca), "%s/ca.crt", f->ca_dir);
    assert_int_equal(et_identity_check(data, "pi-1", ca, f->now, msg, sizeof(msg)), 0);
    assert_non_null(strstr(msg, "certificate serial"));
    chmod(path(f, "1.key"), 0640);
    assert_int_equal(et_identity_check(data, "pi-1", ca, f->now, msg, sizeof(msg)), -EACCES);
    assert_non_null(strstr(msg, "chmod 600"));
    free(one);
}

#define ON_A_CA(test) cmocka_unit_test_setup_teardown(test, ca_fx_setup, ca_fx_teardown)

int main(void)
{
    const struct CMUnitTest tests[] = {
        ON_A_CA(enrollment_commits_at_once_and_deletes_the_claim),
        ON_A_CA(a_renewal_is_on_trial_until_it_works),
        ON_A_CA(a_power_cut_at_any_step_leaves_a_working_identity),
        ON_A_CA(an_enrollment_cut_before_its_commit_is_the_identity),
        ON_A_CA(what_is_not_its_own_is_refused),
        ON_A_CA(renewal_falls_due_as_renew_at_says),
        ON_A_CA(check_refuses_a_key_others_can_read),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
