/*
 * Enrollment by claim with the real programs: mosquitto with the shipped
 * config and plugin, the aggregator, the issuer (edgetelctl ca serve) and
 * agents whose keys are born in their data directory.
 *   - a board with a claim enrolls, connects with its own certificate and
 *     delivers exactly once; its key is 0600 and the claim is gone. The
 *     time from the agent's start to its certificate, and to its first
 *     value in the store, is printed (the figures in docs/ARCHITECTURE.md);
 *   - a freshly flashed board's first boot: edgetelctl provision --boot
 *     writes the folder, the agent takes its config, CA, operator key and
 *     claim from it, puts them in place with their modes, deletes them
 *     from the folder, enrolls and delivers; --check then passes, and
 *     refuses a key made readable to others and a missing CA file.
 */
#include <errno.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#include <setjmp.h>
#include <cmocka.h>

#include "e2e.h"

#define VALUES 40
#define STEP_TIMEOUT_MS 30000
#define AGENT_BIN ET_BINARY_DIR "/agent/edgetel-agent"

static int setup(void **state)
{
    return et_e2e_create((struct et_e2e **)state, "e2e-enroll");
}

static int teardown(void **state)
{
    et_e2e_destroy(*state);
    return 0;
}

static bool enrolled(void *ctx)
{
    return et_proc_log_contains(ctx, "enrolled by claim in");
}

static mode_t mode_of(const char *path)
{
    struct stat st;

    if (stat(path, &st) != 0)
        fail_msg("%s: %s", path, strerror(errno));
    return st.st_mode & 07777;
}

static void a_board_enrolls_by_claim(void **state)
{
    struct et_e2e *e = *state;
    const struct et_e2e_agent_opts board = { .no_client_cert = true };
    struct et_e2e_counter c;
    struct et_proc *agent;
    const char *claim;
    long long t0, t_cert, t_data;

    et_e2e_start_broker(e);
    et_e2e_start_aggregator(e);
    et_e2e_start_issuer(e, "90d");
    claim = et_e2e_provision(e, ET_E2E_DEVICE, "1h");
    et_e2e_give_claim(e, claim, ET_E2E_DEVICE, NULL);

    t0 = et_test_now_ms();
    agent = et_e2e_start_agent(e, &board);
    et_test_wait_until(enrolled, agent, STEP_TIMEOUT_MS);
    t_cert = et_test_now_ms();
    while (et_e2e_counter_read(e->store_path, ET_E2E_DEVICE, INT64_MAX, &c) != 0 ||
           c.rows == 0) {
        assert_true(et_test_now_ms() - t0 < STEP_TIMEOUT_MS);
        usleep(20 * 1000);
    }
    t_data = et_test_now_ms();
    print_message("enrollment on loopback: agent start to certificate %lld ms, to its first "
                  "value stored %lld ms\n", t_cert - t0, t_data - t0);
    et_e2e_expect_exactly_once(e, ET_E2E_DEVICE, VALUES, STEP_TIMEOUT_MS);

    /* The key was born here, private; the claim is gone; one generation, current. */
    assert_int_equal(mode_of(et_test_env_path(e->env, "dev1-data/identity/1.key")), 0600);
    assert_int_equal(mode_of(et_test_env_path(e->env, "dev1-data/identity")), 0700);
    assert_int_equal(access(et_test_env_path(e->env, "dev1-data/identity/1.crt"), F_OK), 0);
    assert_int_not_equal(access(et_test_env_path(e->env, "dev1-data/identity/claim.key"), F_OK),
                         0);
    assert_int_not_equal(access(et_test_env_path(e->env, "dev1-data/identity/claim.crt"), F_OK),
                         0);
    assert_true(et_proc_log_contains(agent, "connecting as dev1 with certificate serial"));
    assert_false(et_proc_log_contains(agent, "cannot connect"));
    et_e2e_pass(e);
}

/* edgetel-agent --check --config path: its exit status; its output in the log. */
static int agent_check(struct et_e2e *e, const char *config, const char *log)
{
    const char *argv[] = { AGENT_BIN, "--check", "--config", config, NULL };
    int rc = et_test_run(et_test_env_path(e->env, log), argv, STEP_TIMEOUT_MS);

    return rc == 0 ? 0 : rc == -EIO ? 2 : rc;
}

static bool file_contains(const char *path, const char *needle)
{
    char line[1024];
    bool found = false;
    FILE *f = fopen(path, "r");

    while (f && !found && fgets(line, sizeof(line), f))
        found = strstr(line, needle) != NULL;
    if (f)
        fclose(f);
    return found;
}

static void a_first_boot_from_the_boot_folder(void **state)
{
    struct et_e2e *e = *state;
    const char *boot = et_test_env_path(e->env, "boot"), *etc = et_test_env_path(e->env, "etc"),
               *data = et_test_env_path(e->env, "board-data"),
               *keys = et_test_env_path(e->env, "operator");
    static const char *const gone[] = { "agent.conf", "ca.crt", "claim.crt", "claim.key",
                                        "operator.pub" };
    char broker[64], path[4200];
    const char *tmpl, *conf;
    struct et_proc *agent;
    int rc;

    et_e2e_start_broker(e);
    et_e2e_start_aggregator(e);
    et_e2e_start_issuer(e, "90d");
    /* The operator: a signing key, the board's own settings, its folder. */
    {
        const char *args[] = { "keys", "init", "--dir", keys, NULL };

        assert_int_equal(et_e2e_ctl(e, "keys", args), 0);
    }
    tmpl = et_test_env_write(e->env, "template.conf",
                             "[agent]\nbatch_interval = 200ms\nlog_level = debug\n"
                             "[mqtt]\nack_timeout = 2s\nclock_wait = 0s\nkeepalive = 5s\n"
                             "backoff_min = 100ms\nbackoff_max = 1s\n"
                             "[outbox]\ndurability_window = 200ms\n"
                             "[collector sim]\ntype = sim\ninterval = 100ms\n");
    snprintf(broker, sizeof(broker), "%s:%d", et_test_broker_host(e->broker),
             et_test_broker_port(e->broker));
    snprintf(path, sizeof(path), "%s/operator.pub", keys);
    {
        const char *args[] = { "provision", ET_E2E_DEVICE, "--dir", et_e2e_ca_dir(e),
                               "--boot", boot, "--broker", broker, "--template", tmpl,
                               "--etc", etc, "--data-dir", data, "--operator-key", path,
                               NULL };

        assert_int_equal(et_e2e_ctl(e, "provision", args), 0);
    }

    /* The board's first start: no config yet, only the folder. */
    snprintf(path, sizeof(path), "%s/agent.conf", etc);
    conf = et_test_env_write(e->env, "config-path.txt", "%s", path);
    (void)conf;
    {
        const char *argv[] = { AGENT_BIN, "--config", path, "--boot-dir", boot, NULL };

        agent = et_test_env_start(e->env, "board", argv);
    }
    et_test_wait_until(enrolled, agent, STEP_TIMEOUT_MS);
    et_e2e_expect_exactly_once(e, ET_E2E_DEVICE, VALUES, STEP_TIMEOUT_MS);

    /* Everything in its place, with its mode; the secrets are gone from the folder. */
    assert_int_equal(mode_of(path), 0644);
    snprintf(path, sizeof(path), "%s/ca.crt", etc);
    assert_int_equal(mode_of(path), 0644);
    snprintf(path, sizeof(path), "%s/operator.pub", etc);
    assert_int_equal(mode_of(path), 0644);
    assert_int_equal(mode_of(data), 0700);
    snprintf(path, sizeof(path), "%s/identity/1.key", data);
    assert_int_equal(mode_of(path), 0600);
    snprintf(path, sizeof(path), "%s/identity/claim.key", data);
    assert_int_not_equal(access(path, F_OK), 0);
    for (size_t i = 0; i < sizeof(gone) / sizeof(gone[0]); i++) {
        snprintf(path, sizeof(path), "%s/%s", boot, gone[i]);
        if (access(path, F_OK) == 0)
            fail_msg("%s is still on the boot partition", path);
    }
    snprintf(path, sizeof(path), "%s/imported.txt", boot);
    assert_true(file_contains(path, "claim.key -> "));
    assert_true(et_proc_log_contains(agent, "boot/claim.key -> "));

    /* --check agrees, and refuses a key others can read and a missing CA file. */
    snprintf(path, sizeof(path), "%s/agent.conf", etc);
    assert_int_equal(agent_check(e, path, "check-ok.log"), 0);
    assert_true(file_contains(et_test_env_path(e->env, "check-ok.log"),
                              "certificate serial"));
    assert_true(file_contains(et_test_env_path(e->env, "check-ok.log"), "1 trusted keys"));
    snprintf(path, sizeof(path), "%s/identity/1.key", data);
    assert_int_equal(chmod(path, 0644), 0);
    snprintf(path, sizeof(path), "%s/agent.conf", etc);
    rc = agent_check(e, path, "check-key.log");
    assert_int_equal(rc, 2);
    assert_true(file_contains(et_test_env_path(e->env, "check-key.log"), "readable by others"));
    snprintf(path, sizeof(path), "%s/identity/1.key", data);
    assert_int_equal(chmod(path, 0600), 0);
    snprintf(path, sizeof(path), "%s/ca.crt", etc);
    assert_int_equal(rename(path, et_test_env_path(e->env, "ca-away.crt")), 0);
    snprintf(path, sizeof(path), "%s/agent.conf", etc);
    assert_int_equal(agent_check(e, path, "check-ca.log"), 2);
    assert_true(file_contains(et_test_env_path(e->env, "check-ca.log"), "ca.crt: no such file"));
    et_e2e_pass(e);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(a_board_enrolls_by_claim, setup, teardown),
        cmocka_unit_test_setup_teardown(a_first_boot_from_the_boot_folder, setup, teardown),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
