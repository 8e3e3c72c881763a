/*
 * Renewal with the real programs and certificates that live one minute:
 * a board enrolled by claim renews at two thirds of each certificate's
 * life (about every 40 s), three times, while its sim counter runs every
 * 100 ms. Every value arrives exactly once; the agent never fails to
 * connect or loses its connection (a certificate used past its end would);
 * no certificate is used again once its successor worked; and the board
 * keeps one generation of key and certificate, the others deleted.
 * And a board that was off past its certificate's end: at its next start
 * it says so, with how to re-provision it; given a new claim it enrolls
 * again and delivers what it collected meanwhile, once.
 */
#include <errno.h>
#include <stdarg.h>
#include <stddef.h>
#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <dirent.h>
#include <unistd.h>
#include <setjmp.h>
#include <cmocka.h>

#include "e2e.h"

#define RENEWALS 3
#define WORKS "the renewed certificate serial "
#define RENEWALS_TIMEOUT_MS (4 * 60 * 1000)
#define STEP_TIMEOUT_MS 30000

static int setup(void **state)
{
    return et_e2e_create((struct et_e2e **)state, "e2e-renewal");
}

static int teardown(void **state)
{
    et_e2e_destroy(*state);
    return 0;
}

/* How many lines of the agent's log hold needle. */
static int log_count(struct et_proc *p, const char *needle)
{
    char line[4096];
    int n = 0;
    FILE *f = fopen(et_proc_log_path(p), "r");

    while (f && fgets(line, sizeof(line), f))
        n += strstr(line, needle) != NULL;
    if (f)
        fclose(f);
    return n;
}

struct renewals {
    struct et_e2e *e;
    struct et_proc *agent;
};

static bool three_renewals(void *ctx)
{
    struct renewals *r = ctx;
    struct et_e2e_counter c;

    /* The store is read too, so a stalled aggregator shows here and not at the end. */
    et_e2e_counter_read(r->e->store_path, ET_E2E_DEVICE, INT64_MAX, &c);
    return log_count(r->agent, WORKS) >= RENEWALS;
}

/*
 * Walk the agent's log in order: once a line says serial X was replaced
 * ("the old one (serial X) is deleted"), no later line may connect with X.
 */
static void no_old_certificate_used_again(struct et_proc *p)
{
    char line[4096], gone[RENEWALS + 4][64];
    size_t n_gone = 0;
    FILE *f = fopen(et_proc_log_path(p), "r");

    assert_non_null(f);
    while (fgets(line, sizeof(line), f)) {
        const char *at = strstr(line, "the old one (serial ");

        if (at && n_gone < sizeof(gone) / sizeof(gone[0])) {
            sscanf(at + strlen("the old one (serial "), "%63[0-9a-f]", gone[n_gone]);
            n_gone++;
            continue;
        }
        at = strstr(line, "with certificate serial ");
        for (size_t i = 0; at && i < n_gone; i++)
            if (strncmp(at + strlen("with certificate serial "), gone[i], strlen(gone[i])) == 0)
                fail_msg("certificate %s used again after its successor worked: %s", gone[i],
                         line);
    }
    fclose(f);
    assert_int_equal(n_gone, RENEWALS);
}

/* The identity folder holds one generation (N.key and N.crt), current and nothing else. */
static void one_generation_left(struct et_e2e *e)
{
    DIR *d = opendir(et_test_env_path(e->env, "dev1-data/identity"));
    struct dirent *ent;
    int keys = 0, crts = 0, others = 0;

    assert_non_null(d);
    while ((ent = readdir(d)) != NULL) {
        size_t n = strlen(ent->d_name);

        if (ent->d_name[0] == '.' || strcmp(ent->d_name, "current") == 0)
            continue;
        if (n > 4 && strcmp(ent->d_name + n - 4, ".key") == 0)
            keys++;
        else if (n > 4 && strcmp(ent->d_name + n - 4, ".crt") == 0)
            crts++;
        else
            others++;
    }
    closedir(d);
    assert_int_equal(keys, 1);
    assert_int_equal(crts, 1);
    assert_int_equal(others, 0);
}

static void renewal_keeps_data_flowing_across_three_renewals(void **state)
{
    struct et_e2e *e = *state;
    const struct et_e2e_agent_opts board = { .no_client_cert = true };
    struct et_e2e_counter c;
    struct renewals r = { .e = e };
    struct et_proc *issuer;

    et_e2e_start_broker(e);
    et_e2e_start_aggregator(e);
    issuer = et_e2e_start_issuer(e, "1m");
    et_e2e_give_claim(e, et_e2e_provision(e, ET_E2E_DEVICE, "1h"), ET_E2E_DEVICE, NULL);
    r.agent = et_e2e_start_agent(e, &board);
    if (!et_test_poll_until(three_renewals, &r, RENEWALS_TIMEOUT_MS))
        fail_msg("%d renewals in %d s, expected %d", log_count(r.agent, WORKS),
                 RENEWALS_TIMEOUT_MS / 1000, RENEWALS);

    /* Everything collected so far arrives, once. */
    assert_int_equal(et_e2e_counter_read(e->store_path, ET_E2E_DEVICE, INT64_MAX, &c), 0);
    et_e2e_expect_exactly_once(e, ET_E2E_DEVICE, c.max, STEP_TIMEOUT_MS);
    print_message("%d renewals; %" PRId64 " values, each stored once\n", RENEWALS, c.max + 1);

    /* Never refused, never cut off: no certificate was used past its end. */
    assert_int_equal(log_count(r.agent, "cannot connect"), 0);
    assert_int_equal(log_count(r.agent, "lost connection"), 0);
    assert_int_equal(log_count(r.agent, "brought no Ack"), 0);
    assert_true(log_count(issuer, "renewed dev1: serial") >= RENEWALS);
    no_old_certificate_used_again(r.agent);
    one_generation_left(e);
    et_e2e_pass(e);
}

static bool time_passed(void *ctx)
{
    return (int64_t)time(NULL) > *(int64_t *)ctx;
}

struct log_wait {
    struct et_proc *p;
    const char *needle;
    int count;
};

static bool log_has(void *ctx)
{
    struct log_wait *w = ctx;

    return log_count(w->p, w->needle) >= w->count;
}

/* The values of device in the store are exactly [0, a] and [from, from + n) for some a, n > 0. */
static void two_runs_once_each(struct et_e2e *e, int64_t from)
{
    struct et_e2e_sample *s = NULL;
    size_t n = 0, i = 0;
    int64_t expect = 0;

    assert_int_equal(et_e2e_counter_samples(e->store_path, ET_E2E_DEVICE, &s, &n), 0);
    for (; i < n && s[i].value < from; i++, expect++)
        if (s[i].value != expect)
            fail_msg("first run: value %" PRId64 " where %" PRId64 " was due", s[i].value,
                     expect);
    assert_true(expect > 0);
    for (expect = from; i < n; i++, expect++)
        if (s[i].value != expect)
            fail_msg("second run: value %" PRId64 " where %" PRId64 " was due", s[i].value,
                     expect);
    assert_true(expect > from);
    free(s);
}

static void a_board_off_past_its_end_enrolls_again_by_claim(void **state)
{
    struct et_e2e *e = *state;
    struct et_e2e_agent_opts board = { .no_client_cert = true, .renew_at = "99%" };
    struct log_wait enrolled = { .needle = "enrolled by claim in", .count = 1 };
    struct log_wait said = { .needle = "ended at", .count = 1 };
    struct et_e2e_counter c;
    struct et_proc *agent;
    int64_t ended, batches;
    uint64_t newest;

    et_e2e_start_broker(e);
    et_e2e_start_aggregator(e);
    et_e2e_start_issuer(e, "1m");
    et_e2e_give_claim(e, et_e2e_provision(e, ET_E2E_DEVICE, "1h"), ET_E2E_DEVICE, NULL);
    agent = enrolled.p = said.p = et_e2e_start_agent(e, &board);
    et_test_wait_until(log_has, &enrolled, STEP_TIMEOUT_MS);
    ended = (int64_t)time(NULL) + 61;
    et_e2e_wait_counter_at_least(e, ET_E2E_DEVICE, 10, STEP_TIMEOUT_MS);

    /* Off past the certificate's end; then on again, counting from 100000. */
    assert_int_equal(et_proc_stop(agent, 10000, NULL), 0);
    et_test_wait_until(time_passed, &ended, 90000);
    board.sim_start = 100000;
    et_e2e_write_agent_config(e, &board);
    assert_int_equal(et_proc_restart(agent), 0);
    et_test_wait_until(log_has, &said, STEP_TIMEOUT_MS);
    assert_true(log_count(agent, "edgetelctl provision dev1") > 0);
    et_e2e_wait_outbox_at_least(e, ET_E2E_DEVICE, 5, STEP_TIMEOUT_MS);

    /* Re-provisioned: a new claim, which the board finds and enrolls with. */
    et_e2e_give_claim(e, et_e2e_provision(e, ET_E2E_DEVICE, "1h"), ET_E2E_DEVICE, NULL);
    enrolled.count = 2;
    et_test_wait_until(log_has, &enrolled, 2 * STEP_TIMEOUT_MS);
    assert_int_equal(et_e2e_counter_read(e->store_path, ET_E2E_DEVICE, INT64_MAX, &c), 0);
    et_e2e_wait_counter_at_least(e, ET_E2E_DEVICE, c.distinct + 20, STEP_TIMEOUT_MS);
    /* Every batch made while it could not connect has gone. */
    assert_int_equal(et_e2e_outbox_read(et_e2e_outbox_path(e, ET_E2E_DEVICE), UINT64_MAX,
                                        &batches, &newest), 0);
    et_e2e_wait_outbox_drained(e, ET_E2E_DEVICE, newest, STEP_TIMEOUT_MS);
    two_runs_once_each(e, 100000);
    et_e2e_pass(e);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(renewal_keeps_data_flowing_across_three_renewals, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(a_board_off_past_its_end_enrolls_again_by_claim, setup,
                                        teardown),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
