/*
 * The end-to-end fixture: broker, aggregator and agents for
 * tests/integration/test_e2e_*.c, and the waits and the exactly-once check
 * their assertions use; the store and outbox reads are in e2e_read.c.
 * See e2e.h.
 */
#define _GNU_SOURCE
#include "e2e.h"
#include "e2e_internal.h"

#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <setjmp.h>
#include <cmocka.h>
#include <sqlite3.h>

/* The programs under test, from this build tree. */
#define E2E_AGENT_BIN      ET_BINARY_DIR "/agent/edgetel-agent"
#define E2E_AGGREGATOR_BIN ET_BINARY_DIR "/aggregator/edgetel-aggregator"

#define E2E_MAX_REPORTED 10

static void require_program(const char *path)
{
    if (access(path, X_OK) != 0)
        fail_msg("e2e: %s: %s (build every target first: cmake --build)", path,
                 strerror(errno));
}

int et_e2e_create(struct et_e2e **out, const char *name)
{
    struct et_e2e *e;
    int rc;

    *out = NULL;
    e = calloc(1, sizeof(*e));
    if (!e)
        return -ENOMEM;
    rc = et_test_env_create(&e->env, name);
    if (rc < 0) {
        free(e);
        return rc;
    }
    e->store_path = et_test_env_path(e->env, "store.db");
    e->store_type = "sqlite";
    *out = e;
    return 0;
}

void et_e2e_start_broker(struct et_e2e *e)
{
    et_e2e_start_broker_at(e, "127.0.0.1");
}

void et_e2e_start_broker_at(struct et_e2e *e, const char *host)
{
    const char *const devices[] = { ET_E2E_DEVICE, NULL };
    int rc;

    require_program(E2E_AGENT_BIN);
    require_program(E2E_AGGREGATOR_BIN);
    rc = et_test_broker_start_at(&e->broker, devices, host);
    if (rc < 0)
        fail_msg("e2e: cannot start mosquitto on %s: %s", host, strerror(-rc));
}

void et_e2e_pass(struct et_e2e *e)
{
    et_test_env_pass(e->env);
}

static void copy_file(const char *from, const char *to)
{
    FILE *in = fopen(from, "r");
    FILE *out = in ? fopen(to, "w") : NULL;
    char buf[8192];
    size_t n;

    while (out && (n = fread(buf, 1, sizeof(buf), in)) > 0)
        if (fwrite(buf, 1, n, out) != n)
            break;
    if (out)
        fclose(out);
    if (in)
        fclose(in);
}

void et_e2e_destroy(struct et_e2e *e)
{
    if (!e)
        return;
    /*
     * The programs go first, while the broker still runs, so they shut
     * down as they would in the field; the broker's log is shown with
     * theirs when the test failed.
     */
    et_test_env_stop_all(e->env);
    e2e_pg_drop(e);
    if (e->broker) {
        if (!et_test_env_passed(e->env)) {
            char log[4096];

            snprintf(log, sizeof(log), "%s/mosquitto.log", et_test_broker_dir(e->broker));
            et_test_print_log_tail("mosquitto", log);
            /* The broker's directory goes with it; keep its log with the rest. */
            copy_file(log, et_test_env_path(e->env, "mosquitto.log"));
        }
        et_test_broker_destroy(e->broker);
    }
    et_test_env_destroy(e->env);
    free(e);
}

/* ---- programs -------------------------------------------------------------- */


void e2e_mqtt_section(struct et_e2e *e, const struct et_test_identity *id, char *buf,
                      size_t len)
{
    snprintf(buf, len,
             "[mqtt]\n"
             "host = %s\n"
             "port = %d\n"
             "ca = %s\n"
             "cert = %s\n"
             "key = %s\n"
             "backoff_min = 100ms\n"
             "backoff_max = 1s\n",
             et_test_broker_host(e->broker), et_test_broker_port(e->broker), id->ca_file,
             id->cert_file, id->key_file);
}

struct et_proc *et_e2e_start_aggregator(struct et_e2e *e)
{
    struct et_test_identity id;
    char mqtt[8192];
    const char *conf;
    const char *argv[4];
    struct et_proc *p;
    char name[32];
    char cn[48];
    char file[48];
    int rc;

    /* Every instance gets its own config (for its instance_id) and log. */
    e->n_aggregators++;
    if (e->n_aggregators == 1)
        snprintf(name, sizeof(name), "aggregator");
    else
        snprintf(name, sizeof(name), "aggregator-%zu", e->n_aggregators);
    /* Each instance has an identity of its own, as the broker binds client ids to them. */
    snprintf(cn, sizeof(cn), "aggregator-%zu", e->n_aggregators);
    rc = et_test_broker_identity(e->broker, cn, &id);
    if (rc < 0)
        fail_msg("e2e: no certificate for %s: %s", cn, strerror(-rc));
    snprintf(file, sizeof(file), "%s.conf", name);
    e2e_mqtt_section(e, &id, mqtt, sizeof(mqtt));
    conf = et_test_env_write(e->env, file,
                             "[aggregator]\n"
                             "instance_id = %s\n"
                             "log_level = debug\n"
                             "\n"
                             "%s"
                             "\n"
                             "[store]\n"
                             "type = %s\n"
                             "%s = %s\n"
                             "%s",
                             name, mqtt, e->store_type,
                             strcmp(e->store_type, "sqlite") == 0 ? "path" : "conninfo",
                             e->store_path, e->aggregator_extra ? e->aggregator_extra : "");
    argv[0] = E2E_AGGREGATOR_BIN;
    argv[1] = "--config";
    argv[2] = conf;
    argv[3] = NULL;
    p = et_test_env_start(e->env, name, argv);
    e2e_watch(e, p);
    if (!e->aggregator)
        e->aggregator = p;
    return p;
}

const char *et_e2e_outbox_path(struct et_e2e *e, const char *device)
{
    char name[256];

    snprintf(name, sizeof(name), "%s-data/outbox.db", device);
    return et_test_env_path(e->env, name);
}

const char *et_e2e_write_agent_config(struct et_e2e *e, const struct et_e2e_agent_opts *opts)
{
    const char *device = opts->device ? opts->device : ET_E2E_DEVICE;
    const char *file = opts->name ? opts->name : device;
    int sim_ms = opts->sim_interval_ms > 0 ? opts->sim_interval_ms : ET_E2E_SIM_INTERVAL_MS;
    int batch_ms = opts->batch_interval_ms > 0 ? opts->batch_interval_ms : 200;
    int ack_ms = opts->ack_timeout_ms > 0 ? opts->ack_timeout_ms : 2000;
    struct et_test_identity own;
    const struct et_test_identity *id = opts->identity;
    char name[256];
    char tls[4096];
    char limits[256] = "";
    int rc;

    if (!id && opts->no_client_cert) {
        own = (struct et_test_identity){ .ca_file = et_test_broker_ca_file(e->broker) };
        id = &own;
    } else if (!id) {
        rc = et_test_broker_identity(e->broker, device, &own);
        if (rc < 0)
            fail_msg("e2e: no certificate for device %s: %s", device, strerror(-rc));
        id = &own;
    }
    if (opts->no_client_cert)
        snprintf(tls, sizeof(tls), "ca = %s\n", id->ca_file);
    else
        snprintf(tls, sizeof(tls), "ca = %s\ncert = %s\nkey = %s\n", id->ca_file,
                 id->cert_file, id->key_file);
    if (opts->outbox_reserve)
        snprintf(limits, sizeof(limits), "reserve = %s\n", opts->outbox_reserve);
    if (opts->outbox_quota)
        snprintf(limits + strlen(limits), sizeof(limits) - strlen(limits), "quota = %s\n",
                 opts->outbox_quota);
    if (opts->renew_at)
        snprintf(tls + strlen(tls), sizeof(tls) - strlen(tls), "renew_at = %s\n",
                 opts->renew_at);
    snprintf(name, sizeof(name), "%s-data", file);
    const char *data_dir = et_test_env_path(e->env, name);
    snprintf(name, sizeof(name), "%s.conf", file);
    return et_test_env_write(e->env, opts->conf_name ? opts->conf_name : name,
                             "[agent]\n"
                             "device_id = %s\n"
                             "data_dir = %s\n"
                             "batch_interval = %dms\n"
                             "log_level = debug\n"
                             "%s"
                             "\n"
                             "[mqtt]\n"
                             "host = %s\n"
                             "port = %d\n"
                             "%s"
                             "ack_timeout = %dms\n"
                             /* Test machines often run without NTP; the
                              * certificates were just made with this clock. */
                             "clock_wait = 0s\n"
                             "%s"
                             "%s"
                             "\n"
                             /* The tests read the outbox file: commit often. */
                             "[outbox]\n"
                             "durability_window = %dms\n"
                             "%s"
                             "\n"
                             "[collector sim]\n"
                             "type = sim\n"
                             "interval = %dms\n"
                             "start = %" PRId64 "\n",
                             device, data_dir, batch_ms,
                             opts->agent_extra ? opts->agent_extra : "",
                             et_test_broker_host(e->broker), et_test_broker_port(e->broker), tls,
                             ack_ms,
                             opts->program_timing ? ""
                             : "keepalive = 5s\nbackoff_min = 100ms\nbackoff_max = 1s\n",
                             opts->mqtt_extra ? opts->mqtt_extra : "",
                             opts->durability_window_ms > 0 ? opts->durability_window_ms : 200,
                             limits, sim_ms, opts->sim_start);
}

struct et_proc *et_e2e_start_agent(struct et_e2e *e, const struct et_e2e_agent_opts *opts)
{
    const char *device = opts->name ? opts->name : opts->device ? opts->device : ET_E2E_DEVICE;
    const char *argv[] = { E2E_AGENT_BIN, "--config", et_e2e_write_agent_config(e, opts), NULL };
    const char *in_netns[8];
    struct et_proc *agent;

    if (opts->netns) {
        assert_int_equal(et_test_netns_argv(opts->netns, argv, in_netns, 8), 0);
        agent = et_test_env_start(e->env, device, in_netns);
    } else {
        agent = et_test_env_start(e->env, device, argv);
    }
    if (!opts->may_exit)
        e2e_watch(e, agent);
    return agent;
}

void et_e2e_wipe_agent_data(struct et_e2e *e, const char *device)
{
    char name[256];
    const char *dir;

    snprintf(name, sizeof(name), "%s-data", device);
    dir = et_test_env_path(e->env, name);
    et_test_remove_tree(dir);
    if (access(dir, F_OK) == 0)
        fail_msg("e2e: %s is still there after removing it", dir);
}

/* ---- waits and the exactly-once check -------------------------------------- */

void e2e_watch(struct et_e2e *e, struct et_proc *p)
{
    assert_true(e->n_daemons < sizeof(e->daemons) / sizeof(e->daemons[0]));
    e->daemons[e->n_daemons++] = p;
}

/*
 * A program that died by itself will not make the awaited thing happen:
 * say so now rather than at the deadline.
 */
static void check_daemons(struct et_e2e *e)
{
    for (size_t i = 0; i < e->n_daemons; i++) {
        struct et_proc *p = e->daemons[i];

        if (et_proc_exited_unasked(p)) {
            int st = et_proc_last_status(p);

            fail_msg("e2e: the program logging to %s exited by itself (%s %d)",
                     et_proc_log_path(p), WIFSIGNALED(st) ? "signal" : "exit status",
                     WIFSIGNALED(st) ? WTERMSIG(st) : WEXITSTATUS(st));
        }
    }
}

struct counter_wait {
    struct et_e2e *e;
    const char *device;
    int64_t upto;
    int64_t at_least;
    struct et_e2e_counter last;
};

static bool counter_has_range(void *ctx)
{
    struct counter_wait *w = ctx;

    check_daemons(w->e);
    return et_e2e_counter_read(w->e->store_path, w->device, w->upto, &w->last) == 0 &&
           w->last.in_range == w->upto + 1;
}

static bool counter_has_n(void *ctx)
{
    struct counter_wait *w = ctx;

    check_daemons(w->e);
    return et_e2e_counter_read(w->e->store_path, w->device, INT64_MAX, &w->last) == 0 &&
           w->last.distinct >= w->at_least;
}

void et_e2e_wait_counter_at_least(struct et_e2e *e, const char *device, int64_t n,
                                  int timeout_ms)
{
    struct counter_wait w = { .e = e, .device = device, .at_least = n };

    if (!et_test_poll_until(counter_has_n, &w, timeout_ms))
        fail_msg("e2e: %s: after %d ms the store holds %" PRId64 " distinct sim.counter values"
                 " of %s, expected at least %" PRId64,
                 e->store_path, timeout_ms, w.last.distinct, device, n);
}

struct outbox_wait {
    struct et_e2e *e;
    const char *path;
    uint64_t through;
    int64_t at_least;
    int64_t batches;
    uint64_t max_seq;
    int rc;
};

static bool outbox_drained(void *ctx)
{
    struct outbox_wait *w = ctx;

    check_daemons(w->e);
    w->rc = et_e2e_outbox_read(w->path, w->through, &w->batches, &w->max_seq);
    return w->rc == 0 && w->batches == 0;
}

static bool outbox_filled(void *ctx)
{
    struct outbox_wait *w = ctx;

    check_daemons(w->e);
    w->rc = et_e2e_outbox_read(w->path, UINT64_MAX, &w->batches, &w->max_seq);
    return w->rc == 0 && w->batches >= w->at_least;
}

void et_e2e_wait_outbox_drained(struct et_e2e *e, const char *device, uint64_t through,
                                int timeout_ms)
{
    struct outbox_wait w = { .e = e, .path = et_e2e_outbox_path(e, device), .through = through };

    if (!et_test_poll_until(outbox_drained, &w, timeout_ms))
        fail_msg("e2e: %s: after %d ms %" PRId64 " batches with seq <= %" PRIu64
                 " are still waiting for an ack (read: %s)",
                 w.path, timeout_ms, w.batches, through, w.rc ? strerror(-w.rc) : "ok");
}

void et_e2e_wait_outbox_at_least(struct et_e2e *e, const char *device, int64_t n,
                                 int timeout_ms)
{
    struct outbox_wait w = { .e = e, .path = et_e2e_outbox_path(e, device), .at_least = n };

    if (!et_test_poll_until(outbox_filled, &w, timeout_ms))
        fail_msg("e2e: %s: after %d ms the outbox holds %" PRId64 " batches, expected at least"
                 " %" PRId64 " (read: %s)",
                 w.path, timeout_ms, w.batches, n, w.rc ? strerror(-w.rc) : "ok");
}

/* Print the first missing and repeated values, so a failure says which. */
static void report_gaps(const char *store_path, const char *device, int64_t upto)
{
    struct et_e2e_sample *v = NULL;
    int64_t expect = 0;
    int64_t prev = -1;
    int missing = 0;
    int repeated = 0;
    size_t n = 0;

    if (et_e2e_counter_samples(store_path, device, &v, &n) < 0)
        return;
    for (size_t i = 0; i < n; i++) {
        if (v[i].value == prev && repeated++ < E2E_MAX_REPORTED)
            print_error("e2e: sim.counter %" PRId64 " stored again (batch seq %" PRId64 ")\n",
                        v[i].value, v[i].seq);
        for (; expect < v[i].value && expect <= upto; expect++)
            if (missing++ < E2E_MAX_REPORTED)
                print_error("e2e: sim.counter %" PRId64 " missing\n", expect);
        if (v[i].value >= expect)
            expect = v[i].value + 1;
        prev = v[i].value;
    }
    for (; expect <= upto; expect++)
        if (missing++ < E2E_MAX_REPORTED)
            print_error("e2e: sim.counter %" PRId64 " missing\n", expect);
    print_error("e2e: %d values of 0..%" PRId64 " missing, %d stored more than once\n", missing,
                upto, repeated);
    free(v);
}

void et_e2e_expect_exactly_once(struct et_e2e *e, const char *device, int64_t upto,
                                int timeout_ms)
{
    struct counter_wait w = { .e = e, .device = device, .upto = upto };

    if (!et_test_poll_until(counter_has_range, &w, timeout_ms)) {
        report_gaps(e->store_path, device, upto);
        fail_msg("e2e: after %d ms the store holds %" PRId64 " of the sim.counter values"
                 " 0..%" PRId64 " of %s",
                 timeout_ms, w.last.in_range, upto, device);
    }
    /* Everything arrived; now nothing may be there twice (the agent goes on counting). */
    assert_int_equal(et_e2e_counter_read(e->store_path, device, upto, &w.last), 0);
    if (w.last.rows != w.last.distinct || w.last.min != 0) {
        report_gaps(e->store_path, device, upto);
        fail_msg("e2e: %s: %" PRId64 " sim.counter samples of %s but %" PRId64
                 " distinct values, lowest %" PRId64,
                 e->store_path, w.last.rows, device, w.last.distinct, w.last.min);
    }
}
