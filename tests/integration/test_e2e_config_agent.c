/*
 * Pushed config end to end with the real board: mosquitto with the
 * shipped rules, edgetel-aggregator, edgetel-agent, edgetelctl.
 *   - a push is applied, committed and reported within seconds, and the
 *     new sim interval shows in the stored data (the time it took is
 *     printed);
 *   - a key the board does not trust, a config signed for another board
 *     and bytes altered on the way (both published by a second aggregator
 *     identity, as a rogue aggregator would): each rejected and reported
 *     with its reason, the old config running on;
 *   - a push that points the uplink at a port nobody listens on: reverted
 *     within its deadline, reported once the old uplink is back;
 *   - a board that was off during a push, and one whose data directory
 *     was wiped, take it when they return;
 *   - the agent SIGKILLed at random moments of apply and commit: after
 *     the restart it runs either the new committed config or the last good
 *     one, says which, and the store's last report says the same;
 *   - the operator key rotated through a push; the old key refused after.
 */
#define _GNU_SOURCE   /* memmem */
#include <errno.h>
#include <inttypes.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <setjmp.h>
#include <cmocka.h>

#include "e2e.h"

#include "edgetel/codec.h"
#include "edgetel/store_config.h"
#include "edgetel/store_open.h"

#define CTL ET_BINARY_DIR "/ctl/edgetelctl"
#define STEP_TIMEOUT_MS 30000
#define CONFIG_TOPIC "edgetel/v1/" ET_E2E_DEVICE "/config"

struct fx {
    struct et_e2e *e;
    struct et_proc *agent;
    char extra[512];           /* the board's [agent] trusted_keys */
    uint64_t version;          /* the last pushed */
};

static int setup(void **state)
{
    struct fx *f = calloc(1, sizeof(*f));

    if (!f || et_e2e_create(&f->e, "e2e-config-agent") != 0)
        return -1;
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fx *f = *state;

    et_e2e_destroy(f->e);
    free(f);
    return 0;
}

/* Run edgetelctl to its end; its exit code (0 success) and its output in the log NAME. */
static int ctl_run(struct fx *f, const char *name, const char *const *args)
{
    const char *argv[20] = { CTL };
    size_t n = 1;

    for (; args[n - 1] && n < 19; n++)
        argv[n] = args[n - 1];
    argv[n] = NULL;
    return et_test_run(et_test_env_path(f->e->env, name), argv, STEP_TIMEOUT_MS);
}

static void ctl(struct fx *f, const char *name, const char *const *args)
{
    if (ctl_run(f, name, args) != 0) {
        et_test_print_log_tail(name, et_test_env_path(f->e->env, name));
        fail_msg("edgetelctl %s %s failed", args[0], args[1]);
    }
}

/* The whole file as a string (malloc'd); fails the test when it cannot be read. */
static char *read_text(const char *path)
{
    FILE *fp = fopen(path, "r");
    char *text = NULL;
    size_t len = 0;

    if (!fp)
        fail_msg("cannot open %s: %s", path, strerror(errno));
    if (getdelim(&text, &len, '\0', fp) < 0) {
        free(text);
        text = strdup("");
    }
    fclose(fp);
    assert_non_null(text);
    return text;
}

/* keys init into DIR; its key id (16 hex digits) into id. */
static void keys_init(struct fx *f, const char *dir, char id[17])
{
    char log[64];
    char *text, *at;

    snprintf(log, sizeof(log), "%s.log", dir);
    ctl(f, log, (const char *const[]){ "keys", "init", "--dir", et_test_env_path(f->e->env, dir),
                                       NULL });
    text = read_text(et_test_env_path(f->e->env, log));
    at = strstr(text, "key id ");
    assert_non_null(at);
    snprintf(id, 17, "%.16s", at + 7);
    free(text);
}

/* The board's config as a push carries it, in FILE: sim every sim_ms, plus mqtt_extra. */
static const char *push_file(struct fx *f, const char *file, int sim_ms, const char *mqtt_extra)
{
    struct et_e2e_agent_opts o = { .sim_interval_ms = sim_ms, .agent_extra = f->extra,
                                   .mqtt_extra = mqtt_extra, .conf_name = file };

    return et_e2e_write_agent_config(f->e, &o);
}

static void push_with(struct fx *f, const char *key_dir, const char *file, const char *deadline,
                      const char *more1, const char *more2)
{
    char log[64], key[256];
    const char *args[20] = { "--store", f->e->store_path, "config", "push", "--key", key,
                             "--device", ET_E2E_DEVICE };
    size_t n = 8;

    snprintf(key, sizeof(key), "%s/operator.key", et_test_env_path(f->e->env, key_dir));
    if (deadline) {
        args[n++] = "--deadline";
        args[n++] = deadline;
    }
    if (more1) {
        args[n++] = more1;
        args[n++] = more2;
    }
    args[n++] = et_test_env_path(f->e->env, file);
    args[n] = NULL;
    f->version++;
    snprintf(log, sizeof(log), "push-v%" PRIu64 ".log", f->version);
    ctl(f, log, args);
}

/* ---- what the store says of dev1's config ---------------------------------------- */

struct seen {
    uint64_t version;
    int result;
    uint64_t running;
    int64_t device_ms;
    int64_t received_ms;
    char reason[512];
};

static int copy_report(void *ctx, const struct et_store_device_config *dc)
{
    struct seen *s = ctx;

    if (dc->has_report) {
        s->version = dc->report.version;
        s->result = dc->report.result;
        s->running = dc->report.running_version;
        s->device_ms = dc->report.device_ms;
        s->received_ms = dc->report.received_ms;
        snprintf(s->reason, sizeof(s->reason), "%s", dc->report.reason);
    }
    return 0;
}

static void store_report(struct fx *f, struct seen *s)
{
    struct et_store *st;
    char err[256];

    memset(s, 0, sizeof(*s));
    if (et_store_open(&st, "sqlite", f->e->store_path, ET_STORE_READONLY, err, sizeof(err)))
        return;
    et_store_config_devices(et_store_config(st), ET_E2E_DEVICE, copy_report, s);
    et_store_close(st);
}

/* wait_report() for a report of whatever version (altered bytes may claim any). */
#define ANY_VERSION UINT64_MAX

struct want {
    struct fx *f;
    uint64_t version;
    int result;         /* 0: committed or reverted */
    int64_t after_ms;   /* received after this (aggregator's wall clock); 0 any */
    struct seen got;
};

static bool report_is(void *ctx)
{
    struct want *w = ctx;

    store_report(w->f, &w->got);
    if ((w->version != ANY_VERSION && w->got.version != w->version) ||
        w->got.received_ms < w->after_ms)
        return false;
    if (w->result)
        return w->got.result == w->result;
    return w->got.result == ET_CONFIG_RESULT_COMMITTED ||
           w->got.result == ET_CONFIG_RESULT_REVERTED;
}

static struct seen wait_report(struct fx *f, uint64_t version, int result, int64_t after_ms,
                               int timeout_ms)
{
    struct want w = { f, version, result, after_ms, { 0 } };

    if (!et_test_poll_until(report_is, &w, timeout_ms)) {
        et_test_print_log_tail("agent", et_proc_log_path(f->agent));
        fail_msg("no report of v%" PRIu64 " with result %d in the store within %d ms (last: v%"
                 PRIu64 " result %d \"%s\")", version, result, timeout_ms, w.got.version,
                 w.got.result, w.got.reason);
    }
    return w.got;
}

static int64_t wall_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* sim.counter samples stored with a time in [from, to). */
static int samples_between(struct fx *f, int64_t from, int64_t to)
{
    struct et_e2e_sample *s = NULL;
    size_t n = 0;
    int count = 0;

    assert_int_equal(et_e2e_counter_samples(f->e->store_path, ET_E2E_DEVICE, &s, &n), 0);
    for (size_t i = 0; i < n; i++)
        count += s[i].ts_ms >= from && s[i].ts_ms < to;
    free(s);
    return count;
}

/*
 * How many lines of the agent's log hold needle (and also, when not NULL,
 * also), and the last such line.
 */
static int count_lines(struct fx *f, const char *needle, const char *also, char *last,
                       size_t cap)
{
    char *text = read_text(et_proc_log_path(f->agent));
    int n = 0;

    for (char *at = text; (at = strstr(at, needle)) != NULL; at++) {
        size_t len = strcspn(at, "\n");

        if (also && !memmem(at, len, also, strlen(also)))
            continue;
        n++;
        snprintf(last, cap, "%.*s", (int)len, at);
    }
    free(text);
    return n;
}

struct said {
    struct fx *f;
    const char *needle, *also;
    int before;
    char last[512];
};

static bool said_again(void *ctx)
{
    struct said *s = ctx;

    return count_lines(s->f, s->needle, s->also, s->last, sizeof(s->last)) > s->before;
}

/* How many times the agent's log said which config it runs, and the last such line. */
static int which_runs(struct fx *f, char *last, size_t cap)
{
    return count_lines(f, "config: running ", NULL, last, cap);
}

static void start_all(struct fx *f)
{
    char id[17];
    struct et_e2e_agent_opts o = { 0 };

    keys_init(f, "keys", id);
    snprintf(f->extra, sizeof(f->extra), "trusted_keys = %s/operator.pub\n",
             et_test_env_path(f->e->env, "keys"));
    o.agent_extra = f->extra;
    et_e2e_start_broker(f->e);
    et_e2e_start_aggregator(f->e);
    f->agent = et_e2e_start_agent(f->e, &o);
    /* 5 s of data at the local file's rate, to compare with. */
    et_e2e_wait_counter_at_least(f->e, ET_E2E_DEVICE, 50, STEP_TIMEOUT_MS);
}

static void a_push_is_committed_and_its_interval_lands(void **state)
{
    struct fx *f = *state;
    struct seen r;
    long long t0, t1;

    start_all(f);
    push_file(f, "push.conf", 1000, NULL);
    t0 = et_test_now_ms();
    push_with(f, "keys", "push.conf", NULL, NULL, NULL);
    r = wait_report(f, 1, ET_CONFIG_RESULT_COMMITTED, 0, STEP_TIMEOUT_MS);
    t1 = et_test_now_ms();
    print_message("config push to the committed report in the store: %lld ms\n", t1 - t0);
    assert_int_equal(r.running, 1);
    assert_true(et_proc_log_contains(f->agent, "config v1 committed"));
    /* Before: every 100 ms; after: every second. */
    assert_in_range(samples_between(f, r.device_ms - 3000, r.device_ms - 1000), 15, 25);
    /* Bounded: the device's clock is this machine's. */
    while (wall_ms() < r.device_ms + 5500)
        usleep(100 * 1000);
    assert_in_range(samples_between(f, r.device_ms + 1000, r.device_ms + 4000), 2, 4);
    et_e2e_pass(f->e);
}

/* Publish FILE's bytes retained on dev1's config topic as a second aggregator identity. */
static void publish_as_aggregator(struct fx *f, const char *file)
{
    struct et_test_identity id;
    char port[16];
    struct et_proc *p;
    int status;

    assert_int_equal(et_test_broker_identity(f->e->broker, "aggregator-9", &id), 0);
    snprintf(port, sizeof(port), "%d", et_test_broker_port(f->e->broker));
    p = et_test_env_start(f->e->env, "rogue-aggregator", (const char *const[]){
        "mosquitto_pub", "-h", "127.0.0.1", "-p", port, "-V", "mqttv5", "-q", "1", "-r",
        "--cafile", id.ca_file, "--cert", id.cert_file, "--key", id.key_file,
        "-i", "aggregator-9", "-t", CONFIG_TOPIC, "-f", et_test_env_path(f->e->env, file),
        NULL });
    assert_int_equal(et_proc_wait_exit(p, STEP_TIMEOUT_MS, &status), 0);
    assert_int_equal(status, 0);
}

static void refusals_are_reported_and_the_old_config_runs_on(void **state)
{
    struct fx *f = *state;
    char other_id[17];
    struct seen r;
    FILE *fp;
    char *signed_path;
    long sz;

    start_all(f);
    keys_init(f, "keys2", other_id);
    push_file(f, "push.conf", 1000, NULL);

    /* Signed by a key the board does not trust. */
    push_with(f, "keys2", "push.conf", NULL, NULL, NULL);
    r = wait_report(f, 1, ET_CONFIG_RESULT_REJECTED, 0, STEP_TIMEOUT_MS);
    assert_non_null(strstr(r.reason, "not trust"));
    assert_int_equal(r.running, 0);

    /* Signed by the trusted key for another board, sent by a rogue aggregator. */
    ctl(f, "sign-other.log", (const char *const[]){
        "config", "sign", "--key", et_test_env_path(f->e->env, "keys/operator.key"),
        "--device", "dev2", "--version", "50", et_test_env_path(f->e->env, "push.conf"),
        et_test_env_path(f->e->env, "other.signed"), NULL });
    publish_as_aggregator(f, "other.signed");
    r = wait_report(f, 50, ET_CONFIG_RESULT_REJECTED, 0, STEP_TIMEOUT_MS);
    assert_non_null(strstr(r.reason, "dev2"));

    /* For this board, but one byte changed on the way. */
    ctl(f, "sign-mine.log", (const char *const[]){
        "config", "sign", "--key", et_test_env_path(f->e->env, "keys/operator.key"),
        "--device", ET_E2E_DEVICE, "--version", "51", et_test_env_path(f->e->env, "push.conf"),
        et_test_env_path(f->e->env, "mine.signed"), NULL });
    signed_path = (char *)et_test_env_path(f->e->env, "mine.signed");
    fp = fopen(signed_path, "r+b");
    assert_non_null(fp);
    fseek(fp, 0, SEEK_END);
    sz = ftell(fp);
    fseek(fp, sz / 2, SEEK_SET);
    {
        int c = fgetc(fp);

        fseek(fp, sz / 2, SEEK_SET);
        fputc(c ^ 0x20, fp);
    }
    fclose(fp);
    {
        /* The flipped byte may fall in the version or a length, so the
         * report may be of any version (or of none, which the store keeps
         * in the device's history only): the board's own log says it. */
        struct said rej = { .f = f, .needle = "config: config v", .also = " rejected: " };

        rej.before = count_lines(f, rej.needle, " rejected: ", rej.last, sizeof(rej.last));
        publish_as_aggregator(f, "mine.signed");
        et_test_wait_until(said_again, &rej, STEP_TIMEOUT_MS);
        if (!strstr(rej.last, "signature") && !strstr(rej.last, "not a SignedConfig") &&
            !strstr(rej.last, "not trusted") && !strstr(rej.last, "ConfigBody"))
            fail_msg("altered bytes refused for another reason: %s", rej.last);
    }
    assert_int_equal(r.running, 0);

    /* Through it all the local file ran: samples every 100 ms. */
    assert_false(et_proc_log_contains(f->agent, "it is the last good config"));
    assert_in_range(samples_between(f, wall_ms() - 4000, wall_ms() - 2000), 15, 25);
    et_e2e_pass(f->e);
}

struct grow {
    struct fx *f;
    int64_t target;
};

static bool samples_reach(void *ctx)
{
    struct grow *g = ctx;

    return et_e2e_device_samples(g->f->e->store_path, ET_E2E_DEVICE) >= g->target;
}

static void an_unreachable_uplink_is_reverted_and_reported(void **state)
{
    struct fx *f = *state;
    struct seen r;
    long long t0;

    start_all(f);
    /* Port 9 (discard): nobody listens on 127.0.0.1 there in a test. */
    push_file(f, "push.conf", 100, NULL);
    {
        char *text = read_text(et_test_env_path(f->e->env, "push.conf"));
        char *at = strstr(text, "\nport = ");
        char *end = strchr(at + 1, '\n');

        assert_non_null(at);
        et_test_env_write(f->e->env, "push.conf", "%.*s\nport = 9%s", (int)(at - text), text, end);
        free(text);
    }
    t0 = et_test_now_ms();
    push_with(f, "keys", "push.conf", "8s", NULL, NULL);
    r = wait_report(f, 1, ET_CONFIG_RESULT_REVERTED, 0, 40000);
    print_message("pushed a dead uplink: reverted and reported after %lld ms (deadline 8 s)\n",
                  et_test_now_ms() - t0);
    assert_non_null(strstr(r.reason, "no Ack"));
    assert_int_equal(r.running, 0);
    assert_true(et_proc_log_contains(f->agent, "config v1 reverted"));
    /* Data flows again over the old uplink. */
    struct grow g = { f, et_e2e_device_samples(f->e->store_path, ET_E2E_DEVICE) + 20 };

    et_test_wait_until(samples_reach, &g, STEP_TIMEOUT_MS);
    et_e2e_pass(f->e);
}

static void an_offline_or_wiped_board_takes_it_when_back(void **state)
{
    struct fx *f = *state;
    struct seen r;
    int64_t before;

    start_all(f);
    assert_int_equal(et_proc_stop(f->agent, 10000, NULL), 0);
    push_file(f, "push.conf", 500, NULL);
    push_with(f, "keys", "push.conf", NULL, NULL, NULL);
    assert_int_equal(et_proc_restart(f->agent), 0);
    r = wait_report(f, 1, ET_CONFIG_RESULT_COMMITTED, 0, STEP_TIMEOUT_MS);
    assert_int_equal(r.running, 1);

    /* Re-flashed: the data directory gone, the retained config still there. */
    assert_int_equal(et_proc_stop(f->agent, 10000, NULL), 0);
    et_e2e_wipe_agent_data(f->e, ET_E2E_DEVICE);
    before = wall_ms();
    assert_int_equal(et_proc_restart(f->agent), 0);
    r = wait_report(f, 1, ET_CONFIG_RESULT_COMMITTED, before, STEP_TIMEOUT_MS);
    assert_int_equal(r.running, 1);
    et_e2e_pass(f->e);
}


static void sigkill_during_apply_and_commit_leaves_a_whole_config(void **state)
{
    struct fx *f = *state;
    uint64_t good = 0;
    unsigned seed = (unsigned)time(NULL);

    start_all(f);
    print_message("seed %u\n", seed);
    srand(seed);
    for (int round = 0; round < 6; round++) {
        char name[32], want[64];
        int64_t before = wall_ms();
        int delay_ms = rand() % 1500;
        struct said said = { .f = f, .needle = "config: running " };
        bool committed_before;
        struct seen r;

        /* Another [mqtt] key: the uplink reconnects, so commit waits for an Ack. */
        snprintf(name, sizeof(name), "push-%d.conf", round);
        push_file(f, name, round % 2 ? 200 : 300, round % 2 ? "backoff_max_refused = 3m\n"
                                                            : "backoff_max_refused = 4m\n");
        push_with(f, "keys", name, "20s", NULL, NULL);
        usleep((useconds_t)delay_ms * 1000);
        assert_int_equal(et_proc_kill(f->agent), 0);
        snprintf(want, sizeof(want), "config v%" PRIu64 " committed", f->version);
        committed_before = et_proc_log_contains(f->agent, want);
        said.before = which_runs(f, said.last, sizeof(said.last));
        assert_int_equal(et_proc_restart(f->agent), 0);
        /* At its start it says which whole config it runs: the one committed last. */
        et_test_wait_until(said_again, &said, STEP_TIMEOUT_MS);
        if (committed_before || good)
            snprintf(want, sizeof(want), "running pushed config v%" PRIu64,
                     committed_before ? f->version : good);
        else
            snprintf(want, sizeof(want), "running the local file");
        if (!strstr(said.last, want))
            fail_msg("round %d: the agent said \"%s\", expected \"%s\"", round, said.last, want);
        r = wait_report(f, f->version, 0, before, 60000);
        print_message("round %d: killed %d ms after the push (%s); at restart: %s; then v%"
                      PRIu64 " %s, v%" PRIu64 " runs\n", round, delay_ms,
                      committed_before ? "it had committed" : "not committed yet",
                      strstr(said.last, "running "), f->version,
                      r.result == ET_CONFIG_RESULT_COMMITTED ? "committed" : "reverted",
                      r.running);
        if (r.result == ET_CONFIG_RESULT_COMMITTED) {
            assert_int_equal(r.running, f->version);
            good = f->version;
        } else {
            assert_int_equal(r.running, good);
        }
    }
    et_e2e_pass(f->e);
}

static void the_operator_key_is_rotated_by_a_push(void **state)
{
    struct fx *f = *state;
    char id1[17], id2[17];
    char add[256];

    start_all(f);
    /* keys_init of "keys" ran in start_all; its id is in its log. */
    {
        char *text = read_text(et_test_env_path(f->e->env, "keys.log"));

        snprintf(id1, sizeof(id1), "%.16s", strstr(text, "key id ") + 7);
        free(text);
    }
    keys_init(f, "keys2", id2);
    snprintf(add, sizeof(add), "%s/operator.pub", et_test_env_path(f->e->env, "keys2"));
    push_file(f, "push.conf", 500, NULL);
    {
        char key[256];
        const char *args[] = { "--store", f->e->store_path, "config", "push", "--key", key,
                               "--device", ET_E2E_DEVICE, "--add-key", add, "--remove-key", id1,
                               et_test_env_path(f->e->env, "push.conf"), NULL };

        snprintf(key, sizeof(key), "%s/operator.key", et_test_env_path(f->e->env, "keys"));
        f->version++;
        ctl(f, "rotate.log", args);
    }
    wait_report(f, 1, ET_CONFIG_RESULT_COMMITTED, 0, STEP_TIMEOUT_MS);
    push_with(f, "keys", "push.conf", NULL, NULL, NULL);
    assert_non_null(strstr(wait_report(f, 2, ET_CONFIG_RESULT_REJECTED, 0, STEP_TIMEOUT_MS).reason,
                           "not trust"));
    push_with(f, "keys2", "push.conf", NULL, NULL, NULL);
    wait_report(f, 3, ET_CONFIG_RESULT_COMMITTED, 0, STEP_TIMEOUT_MS);
    et_e2e_pass(f->e);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(a_push_is_committed_and_its_interval_lands, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(refusals_are_reported_and_the_old_config_runs_on, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(an_unreachable_uplink_is_reverted_and_reported, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(an_offline_or_wiped_board_takes_it_when_back, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(sigkill_during_apply_and_commit_leaves_a_whole_config,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(the_operator_key_is_rotated_by_a_push, setup, teardown),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
