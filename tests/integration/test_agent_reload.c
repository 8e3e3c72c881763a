/*
 * The real edgetel-agent and its local file: SIGHUP reads it again.
 *   - a file that does not parse keeps the running config and the log says
 *     file:line and what is wrong;
 *   - a change of data_dir is refused (it changes with a restart only);
 *   - a good change goes through the trial and is committed, and the
 *     agent keeps running throughout;
 *   - --check loads the trusted keys and names a bad one;
 *   - --forget-push runs on a stopped agent's data directory.
 * No broker: the agent collects into its outbox only.
 */
#include <errno.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <signal.h>
#include <sys/wait.h>
#include <setjmp.h>
#include <cmocka.h>

#include "proc.h"

#define AGENT_BIN ET_BINARY_DIR "/agent/edgetel-agent"
#define CTL_BIN ET_BINARY_DIR "/ctl/edgetelctl"
#define WAIT_MS 20000

struct log_wait {
    struct et_proc *p;
    const char *needle;
};

static bool log_has(void *ctx)
{
    struct log_wait *w = ctx;

    return et_proc_log_contains(w->p, w->needle);
}

static void wait_log(struct et_proc *p, const char *needle)
{
    struct log_wait w = { p, needle };

    if (!et_test_poll_until(log_has, &w, WAIT_MS)) {
        et_test_print_log_tail("agent", et_proc_log_path(p));
        fail_msg("the agent's log never said \"%s\" within %d ms", needle, WAIT_MS);
    }
}

static void expect_in_file(const char *path, const char *needle)
{
    char text[8192];
    FILE *f = fopen(path, "r");
    size_t n;

    assert_non_null(f);
    n = fread(text, 1, sizeof(text) - 1, f);
    fclose(f);
    text[n] = '\0';
    if (!strstr(text, needle))
        fail_msg("%s does not say \"%s\":\n%s", path, needle, text);
}

static const char *write_conf(struct et_test_env *env, const char *interval, const char *extra)
{
    return et_test_env_write(env, "agent.conf",
                             "[agent]\n"
                             "device_id = reload-dev\n"
                             "data_dir = %s/data\n"
                             "%s"
                             "[outbox]\n"
                             "reserve = 0\n"
                             "[collector sim]\n"
                             "type = sim\n"
                             "interval = %s\n",
                             et_test_env_dir(env), extra ? extra : "", interval);
}

static void sighup_reloads_with_the_same_rules(void **state)
{
    struct et_test_env *env;
    const char *conf;
    struct et_proc *agent;

    (void)state;
    assert_int_equal(et_test_env_create(&env, "agent-reload"), 0);
    conf = write_conf(env, "1s", NULL);
    agent = et_test_env_start(env, "agent", (const char *const[]){ AGENT_BIN, "--config", conf,
                                                                   NULL });
    wait_log(agent, "running the local file");
    wait_log(agent, "device reload-dev: 1 collectors");

    /* A line the parser refuses: said with file and line, nothing changes. */
    et_test_env_write(env, "agent.conf",
                      "[agent]\ndevice_id = reload-dev\ndata_dir = %s/data\n"
                      "[collector sim]\ntype = sim\ninterval = 5x\n", et_test_env_dir(env));
    assert_int_equal(et_proc_signal(agent, SIGHUP), 0);
    wait_log(agent, "agent.conf:6: [collector sim] interval \"5x\"");
    wait_log(agent, "keeping the running config");
    assert_true(et_proc_running(agent));

    /* data_dir is the board's stream: a restart only. */
    et_test_env_write(env, "agent.conf",
                      "[agent]\ndevice_id = reload-dev\ndata_dir = %s/other\n"
                      "[collector sim]\ntype = sim\ninterval = 1s\n", et_test_env_dir(env));
    assert_int_equal(et_proc_signal(agent, SIGHUP), 0);
    wait_log(agent, "device_id or data_dir changed");

    /* A good change: tried, committed, running on. */
    write_conf(env, "500ms", "groups = north\n");
    assert_int_equal(et_proc_signal(agent, SIGHUP), 0);
    wait_log(agent, "reloaded: applying");
    wait_log(agent, "committed");
    assert_true(et_proc_running(agent));

    /* The same file again: nothing to do. */
    assert_int_equal(et_proc_signal(agent, SIGHUP), 0);
    wait_log(agent, "reloaded: nothing changed");

    assert_int_equal(et_proc_stop(agent, 10000, NULL), 0);
    et_test_env_pass(env);
    et_test_env_destroy(env);
}

static void check_names_a_bad_trusted_key_and_forget_push_works(void **state)
{
    struct et_test_env *env;
    const char *conf, *pub, *log;
    char extra[512];

    (void)state;
    assert_int_equal(et_test_env_create(&env, "agent-check-keys"), 0);
    pub = et_test_env_write(env, "not-a-key.pub", "-----BEGIN PUBLIC KEY-----\nAAAA\n"
                                                  "-----END PUBLIC KEY-----\n");
    snprintf(extra, sizeof(extra), "trusted_keys = %s\n", pub);
    conf = write_conf(env, "1s", extra);
    log = et_test_env_path(env, "check.log");
    assert_int_equal(et_test_run(log, (const char *const[]){ AGENT_BIN, "--config", conf,
                                                             "--check", NULL },
                                 WAIT_MS), -EIO);
    expect_in_file(log, "[agent] trusted_keys:");
    expect_in_file(log, "not-a-key.pub");

    /* A real key from edgetelctl keys init is taken. */
    assert_int_equal(et_test_run(et_test_env_path(env, "keys.log"),
                                 (const char *const[]){ CTL_BIN, "keys", "init", "--dir",
                                                        et_test_env_dir(env), NULL },
                                 WAIT_MS), 0);
    snprintf(extra, sizeof(extra), "trusted_keys = %s/operator.pub\n", et_test_env_dir(env));
    conf = write_conf(env, "1s", extra);
    assert_int_equal(et_test_run(et_test_env_path(env, "check2.log"),
                                 (const char *const[]){ AGENT_BIN, "--config", conf, "--check",
                                                        NULL },
                                 WAIT_MS), 0);
    assert_int_equal(et_test_run(et_test_env_path(env, "forget.log"),
                                 (const char *const[]){ AGENT_BIN, "--config", conf,
                                                        "--forget-push", NULL },
                                 WAIT_MS), 0);
    et_test_env_pass(env);
    et_test_env_destroy(env);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(sighup_reloads_with_the_same_rules),
        cmocka_unit_test(check_names_a_bad_trusted_key_and_forget_push_works),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
