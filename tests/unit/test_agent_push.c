/*
 * Signed config pushed to a running agent (agent/src/reconf.h), on the
 * agent bench (fake broker, fake clock): applied live and committed, every
 * refusal reported with its reason while the old config runs on, a trial
 * that never gets an Ack reverted at its deadline, a power cut during a
 * trial reverted at the next start, a commit kept across restarts, the
 * operator key rotated through a push, and group targets.
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

#include "agent_bench.h"
#include "edgetel/agent.h"
#include "edgetel/config_wire.h"
#include "edgetel/outbox.h"
#include "edgetel/sign.h"
#include "et_fake.h"
#include "fake_mqtt.h"
#include "log_capture.h"

struct push_fx {
    struct bench b;
    char cfg_topic[BENCH_TOPIC_MAX], report_topic[BENCH_TOPIC_MAX];
    char pub1[128], pub2[128], agent_extra[512];
    struct et_sign_key *k1, *k2;
    uint64_t last_seq;
};

static int setup(void **state)
{
    struct push_fx *f = calloc(1, sizeof(*f));
    char priv[128], err[256];

    assert_non_null(f);
    et_fake_reset();
    et_fake_time_set(1000000, TRUE_WALL0, true);
    bench_init(&f->b, BENCH_DEVICE, NULL);
    snprintf(f->cfg_topic, sizeof(f->cfg_topic), "edgetel/v1/%s/config", BENCH_DEVICE);
    snprintf(f->report_topic, sizeof(f->report_topic), "edgetel/v1/%s/config/report",
             BENCH_DEVICE);
    snprintf(priv, sizeof(priv), "%s/op1.key", f->b.dir);
    snprintf(f->pub1, sizeof(f->pub1), "%s/op1.pub", f->b.dir);
    assert_int_equal(et_sign_keygen(priv, f->pub1, &f->k1, err, sizeof(err)), 0);
    snprintf(priv, sizeof(priv), "%s/op2.key", f->b.dir);
    snprintf(f->pub2, sizeof(f->pub2), "%s/op2.pub", f->b.dir);
    assert_int_equal(et_sign_keygen(priv, f->pub2, &f->k2, err, sizeof(err)), 0);
    snprintf(f->agent_extra, sizeof(f->agent_extra), "trusted_keys = %s\ngroups = north, g1\n",
             f->pub1);
    f->b.agent_extra = f->agent_extra;
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct push_fx *f = *state;

    log_capture_stop();
    bench_fini(&f->b);
    et_sign_key_destroy(f->k1);
    et_sign_key_destroy(f->k2);
    free(f);
    return 0;
}

/* The config a push carries: the bench's, with the sim collector every interval. */
static void push_config(struct push_fx *f, struct et_config *c, const char *interval,
                        const char *mqtt_extra)
{
    char text[1024], err[256];

    snprintf(text, sizeof(text),
             "[agent]\ndevice_id = %s\ndata_dir = %s\nbatch_interval = 200ms\n"
             "[mqtt]\nhost = %s\nmax_inflight = 4\nack_timeout = 2s\ninsecure = true\n"
             "[collector sim]\ntype = sim\ninterval = %s\n",
             BENCH_DEVICE, f->b.dir, mqtt_extra ? mqtt_extra : "127.0.0.1", interval);
    assert_int_equal(et_config_parse(text, "push.conf", c, err, sizeof(err)), 0);
}

/* Sign c as version v for the bench's device (or group) with k, and publish it retained. */
static void publish_signed(struct push_fx *f, const struct et_config *c,
                           const struct et_config_push *p, const struct et_sign_key *k,
                           bool corrupt)
{
    uint8_t *buf = NULL;
    size_t len = 0;
    char err[256];

    assert_int_equal(et_config_sign(c, p, k, &buf, &len, err, sizeof(err)), 0);
    if (corrupt)
        buf[len - 3] ^= 0x01;   /* inside the signature */
    assert_int_equal(et_fake_broker_publish(f->b.broker, f->cfg_topic, buf, len, true), 0);
    free(buf);
}

static void push(struct push_fx *f, uint64_t version, const char *interval,
                 const struct et_sign_key *k)
{
    struct et_config c;
    struct et_config_push p = { .device_id = BENCH_DEVICE, .version = version };

    push_config(f, &c, interval, NULL);
    publish_signed(f, &c, &p, k, false);
    et_config_free(&c);
}

/* The report retained on config/report, decoded; NULL when none. */
static Edgetel__V1__ConfigReport *retained_report(struct push_fx *f)
{
    const struct et_fake_message *m = et_fake_broker_retained(f->b.broker, f->report_topic);

    return m ? edgetel__v1__config_report__unpack(NULL, m->len, m->payload) : NULL;
}

static void expect_report(struct push_fx *f, uint64_t version, Edgetel__V1__ConfigResult result,
                          uint64_t running, const char *reason_part)
{
    Edgetel__V1__ConfigReport *r = retained_report(f);

    assert_non_null(r);
    assert_string_equal(r->device_id, BENCH_DEVICE);
    if (r->version != version || r->result != result || r->running_version != running)
        fail_msg("report v%llu result %d running v%llu (%s); expected v%llu result %d running "
                 "v%llu", (unsigned long long)r->version, r->result,
                 (unsigned long long)r->running_version, r->reason,
                 (unsigned long long)version, result, (unsigned long long)running);
    if (reason_part && !strstr(r->reason, reason_part))
        fail_msg("reason \"%s\" does not say \"%s\"", r->reason, reason_part);
    assert_true(r->time_ms > 0);
    edgetel__v1__config_report__free_unpacked(r, NULL);
}

/* Whether any report of version with this result was published (not only the last). */
static bool reported(struct push_fx *f, uint64_t version, Edgetel__V1__ConfigResult result)
{
    const struct et_fake_message *m;
    bool found = false;

    for (size_t i = 0; (m = et_fake_broker_published(f->b.broker, i)) != NULL; i++) {
        Edgetel__V1__ConfigReport *r;

        if (strcmp(m->topic, f->report_topic) != 0)
            continue;
        r = edgetel__v1__config_report__unpack(NULL, m->len, m->payload);
        if (r && r->version == version && r->result == result)
            found = true;
        if (r)
            edgetel__v1__config_report__free_unpacked(r, NULL);
    }
    return found;
}

/* The config version the agent's newest Status names. */
static uint64_t status_version(struct push_fx *f)
{
    const struct et_fake_message *m = et_fake_broker_retained(f->b.broker, f->b.status);
    Edgetel__V1__Status *st;
    uint64_t v;

    assert_non_null(m);
    st = edgetel__v1__status__unpack(NULL, m->len, m->payload);
    assert_non_null(st);
    v = st->config_version;
    assert_int_equal(st->n_groups, 2);
    assert_string_equal(st->groups[0], "north");
    edgetel__v1__status__free_unpacked(st, NULL);
    return v;
}

/* sim.counter samples in batches published since the last call (resent ones not counted). */
static size_t new_counters(struct push_fx *f)
{
    Edgetel__V1__Batch *d;
    struct et_wire_named *s;
    size_t fresh = 0, n;

    while (bench_next_read_at(&f->b, &f->b.seen, &d, &s, &n)) {
        for (size_t i = 0; d->seq > f->last_seq && i < n; i++)
            fresh += strcmp(s[i].name, "sim.counter") == 0;
        if (d->seq > f->last_seq)
            f->last_seq = d->seq;
        free(s);
        et_wire_free_batch(d);
    }
    return fresh;
}

/* sim.counter values the agent made in the next ms of fake time, acking as it goes. */
static size_t counters_during(struct push_fx *f, int64_t ms)
{
    size_t n;

    new_counters(f);
    for (int64_t t = 0; t < ms; t += 200) {
        bench_run_for(&f->b, 200);
        bench_send_ack(&f->b, et_outbox_next_seq(et_agent_outbox(f->b.agent)) - 1, NULL, 0);
    }
    n = new_counters(f);
    return n;
}

static void start(struct push_fx *f)
{
    bench_start(&f->b, NULL);
    bench_connect_now(&f->b);
}

static void push_is_applied_committed_and_reported(void **state)
{
    struct push_fx *f = *state;
    size_t before, after;

    start(f);
    before = counters_during(f, 2000);
    push(f, 1, "500ms", f->k1);
    bench_run_for(&f->b, 200);
    assert_true(reported(f, 1, EDGETEL__V1__CONFIG_RESULT__CONFIG_RESULT_APPLIED));
    expect_report(f, 1, EDGETEL__V1__CONFIG_RESULT__CONFIG_RESULT_COMMITTED, 1, NULL);
    /* The sim collector went from every 100 ms to every 500 ms, live. */
    after = counters_during(f, 2000);
    assert_in_range(before, 18, 21);
    assert_in_range(after, 3, 5);
    et_agent_step(f->b.agent, f->b.stop[0], 0);
    bench_run_for(&f->b, 61000);
    assert_int_equal(status_version(f), 1);
}

static void refusals_are_reported_and_the_old_config_runs_on(void **state)
{
    struct push_fx *f = *state;
    struct et_config c;
    struct et_config_push other = { .device_id = "someone-else", .version = 5 };
    struct et_config_push mine = { .device_id = BENCH_DEVICE, .version = 6 };
    struct et_config_push group = { .group = "south", .version = 7 };

    start(f);
    push(f, 2, "1s", f->k2);
    bench_run_for(&f->b, 100);
    expect_report(f, 2, EDGETEL__V1__CONFIG_RESULT__CONFIG_RESULT_REJECTED, 0, "not trust");

    push_config(f, &c, "1s", NULL);
    publish_signed(f, &c, &mine, f->k1, true);
    bench_run_for(&f->b, 100);
    expect_report(f, 6, EDGETEL__V1__CONFIG_RESULT__CONFIG_RESULT_REJECTED, 0, "signature");

    publish_signed(f, &c, &other, f->k1, false);
    bench_run_for(&f->b, 100);
    expect_report(f, 5, EDGETEL__V1__CONFIG_RESULT__CONFIG_RESULT_REJECTED, 0, "someone-else");

    publish_signed(f, &c, &group, f->k1, false);
    bench_run_for(&f->b, 100);
    expect_report(f, 7, EDGETEL__V1__CONFIG_RESULT__CONFIG_RESULT_REJECTED, 0, "south");

    /* A value the file rules refuse, though signed by a trusted key. */
    c.mqtt.port = 70000;
    mine.version = 8;
    publish_signed(f, &c, &mine, f->k1, false);
    bench_run_for(&f->b, 100);
    expect_report(f, 8, EDGETEL__V1__CONFIG_RESULT__CONFIG_RESULT_REJECTED, 0, "port");
    et_config_free(&c);

    /* v9 commits; v3 afterwards is a downgrade. */
    push(f, 9, "1s", f->k1);
    bench_run_for(&f->b, 100);
    expect_report(f, 9, EDGETEL__V1__CONFIG_RESULT__CONFIG_RESULT_COMMITTED, 9, NULL);
    push(f, 3, "2s", f->k1);
    bench_run_for(&f->b, 100);
    expect_report(f, 3, EDGETEL__V1__CONFIG_RESULT__CONFIG_RESULT_REJECTED, 9, "not newer");
    /* Through all of it the 100 ms config, then v9's 1 s one, ran. */
    assert_in_range(counters_during(f, 3000), 2, 4);
}

static void a_trial_without_an_ack_is_reverted_at_its_deadline(void **state)
{
    struct push_fx *f = *state;
    struct et_config c;
    struct et_config_push p = { .device_id = BENCH_DEVICE, .version = 4,
                                .commit_deadline_ms = 5000 };

    start(f);
    /* Another host: the uplink reconnects, and no Ack is ever sent here. */
    push_config(f, &c, "100ms", "localhost");
    publish_signed(f, &c, &p, f->k1, false);
    et_config_free(&c);
    bench_run_for(&f->b, 4000);
    assert_true(reported(f, 4, EDGETEL__V1__CONFIG_RESULT__CONFIG_RESULT_APPLIED));
    assert_false(reported(f, 4, EDGETEL__V1__CONFIG_RESULT__CONFIG_RESULT_REVERTED));
    bench_run_for(&f->b, 1500);
    expect_report(f, 4, EDGETEL__V1__CONFIG_RESULT__CONFIG_RESULT_REVERTED, 0, "no Ack");
    /* Seen again after a reconnect: not tried again, not reported again. */
    size_t n = et_fake_broker_n_published(f->b.broker);

    et_fake_client_drop(bench_client(&f->b));
    bench_run_for(&f->b, 2000);
    for (size_t i = n; i < et_fake_broker_n_published(f->b.broker); i++) {
        const struct et_fake_message *m = et_fake_broker_published(f->b.broker, i);

        if (strcmp(m->topic, f->report_topic) == 0) {
            Edgetel__V1__ConfigReport *r =
                edgetel__v1__config_report__unpack(NULL, m->len, m->payload);

            assert_int_equal(r->result, EDGETEL__V1__CONFIG_RESULT__CONFIG_RESULT_REVERTED);
            edgetel__v1__config_report__free_unpacked(r, NULL);
        }
    }
}

static void an_ack_commits_a_trial_that_changed_the_uplink(void **state)
{
    struct push_fx *f = *state;
    struct et_config c;
    struct et_config_push p = { .device_id = BENCH_DEVICE, .version = 4 };

    start(f);
    push_config(f, &c, "100ms", "localhost");
    publish_signed(f, &c, &p, f->k1, false);
    et_config_free(&c);
    bench_run_for(&f->b, 1000);
    assert_false(reported(f, 4, EDGETEL__V1__CONFIG_RESULT__CONFIG_RESULT_COMMITTED));
    bench_send_ack(&f->b, et_outbox_next_seq(et_agent_outbox(f->b.agent)) - 1, NULL, 0);
    bench_run_for(&f->b, 100);
    expect_report(f, 4, EDGETEL__V1__CONFIG_RESULT__CONFIG_RESULT_COMMITTED, 4, NULL);
}

/* A crash (no stop) with the agent as it is. */
static void power_cut(struct push_fx *f)
{
    et_agent_destroy(f->b.agent);
    f->b.agent = NULL;
    et_config_free(&f->b.cfg);
}

static void a_power_cut_during_a_trial_reverts_at_start(void **state)
{
    struct push_fx *f = *state;
    struct et_config c;
    struct et_config_push p = { .device_id = BENCH_DEVICE, .version = 3 };

    start(f);
    push(f, 2, "500ms", f->k1);
    bench_run_for(&f->b, 200);
    expect_report(f, 2, EDGETEL__V1__CONFIG_RESULT__CONFIG_RESULT_COMMITTED, 2, NULL);
    push_config(f, &c, "100ms", "localhost");
    publish_signed(f, &c, &p, f->k1, false);
    et_config_free(&c);
    bench_run_for(&f->b, 200);
    assert_true(reported(f, 3, EDGETEL__V1__CONFIG_RESULT__CONFIG_RESULT_APPLIED));
    power_cut(f);

    /* The last good config (v2, every 500 ms) runs again, and the start says so. */
    log_capture_start();
    bench_start(&f->b, NULL);
    assert_int_equal(log_capture_count("running pushed config v2", NULL), 1);
    assert_int_equal(log_capture_count("config v3 reverted", "found pending at start", NULL), 1);
    log_capture_stop();
    bench_run_for(&f->b, 500);
    expect_report(f, 3, EDGETEL__V1__CONFIG_RESULT__CONFIG_RESULT_REVERTED, 2, "pending at start");
    assert_in_range(counters_during(f, 2000), 3, 5);
    assert_int_equal(status_version(f), 2);
}

static void a_commit_survives_restarts(void **state)
{
    struct push_fx *f = *state;

    start(f);
    push(f, 7, "1s", f->k1);
    bench_run_for(&f->b, 200);
    expect_report(f, 7, EDGETEL__V1__CONFIG_RESULT__CONFIG_RESULT_COMMITTED, 7, NULL);
    power_cut(f);
    bench_start(&f->b, NULL);
    bench_run_for(&f->b, 200);
    assert_int_equal(status_version(f), 7);
    assert_in_range(counters_during(f, 3000), 2, 4);
    bench_stop(&f->b);
    bench_start(&f->b, NULL);
    bench_run_for(&f->b, 200);
    assert_int_equal(status_version(f), 7);
}

static void the_operator_key_is_rotated_by_a_push(void **state)
{
    struct push_fx *f = *state;
    struct et_config c;
    const struct et_sign_key *add[] = { f->k2 };
    uint8_t old_id[1][ET_SIGN_KEY_ID_LEN];
    struct et_config_push p = { .device_id = BENCH_DEVICE, .version = 1, .add_keys = add,
                                .n_add_keys = 1, .remove_ids = old_id, .n_remove_ids = 1 };

    et_sign_key_id(f->k1, old_id[0]);
    start(f);
    push_config(f, &c, "100ms", NULL);
    publish_signed(f, &c, &p, f->k1, false);
    et_config_free(&c);
    bench_run_for(&f->b, 200);
    expect_report(f, 1, EDGETEL__V1__CONFIG_RESULT__CONFIG_RESULT_COMMITTED, 1, NULL);
    push(f, 2, "1s", f->k1);
    bench_run_for(&f->b, 100);
    expect_report(f, 2, EDGETEL__V1__CONFIG_RESULT__CONFIG_RESULT_REJECTED, 1, "not trust");
    /* Across a restart too: the file still lists the old key, the push removed it. */
    power_cut(f);
    bench_start(&f->b, NULL);
    push(f, 3, "1s", f->k1);
    bench_run_for(&f->b, 200);
    expect_report(f, 3, EDGETEL__V1__CONFIG_RESULT__CONFIG_RESULT_REJECTED, 1, "not trust");
    push(f, 4, "1s", f->k2);
    bench_run_for(&f->b, 200);
    expect_report(f, 4, EDGETEL__V1__CONFIG_RESULT__CONFIG_RESULT_COMMITTED, 4, NULL);
}

static void a_push_that_would_leave_no_trusted_key_is_rejected(void **state)
{
    struct push_fx *f = *state;
    struct et_config c;
    uint8_t ids[1][ET_SIGN_KEY_ID_LEN];
    struct et_config_push p = { .device_id = BENCH_DEVICE, .version = 1, .remove_ids = ids,
                                .n_remove_ids = 1 };

    et_sign_key_id(f->k1, ids[0]);
    start(f);
    push_config(f, &c, "1s", NULL);
    publish_signed(f, &c, &p, f->k1, false);
    bench_run_for(&f->b, 200);
    expect_report(f, 1, EDGETEL__V1__CONFIG_RESULT__CONFIG_RESULT_REJECTED, 0, "trusting no");
    /* The key still works. */
    push(f, 2, "1s", f->k1);
    bench_run_for(&f->b, 200);
    expect_report(f, 2, EDGETEL__V1__CONFIG_RESULT__CONFIG_RESULT_COMMITTED, 2, NULL);
    et_config_free(&c);
}

static void a_group_push_reaches_its_members(void **state)
{
    struct push_fx *f = *state;
    struct et_config c;
    struct et_config_push p = { .group = "g1", .version = 11 };

    start(f);
    push_config(f, &c, "1s", NULL);
    publish_signed(f, &c, &p, f->k1, false);
    et_config_free(&c);
    bench_run_for(&f->b, 200);
    expect_report(f, 11, EDGETEL__V1__CONFIG_RESULT__CONFIG_RESULT_COMMITTED, 11, NULL);
}

static void a_damaged_config_db_is_moved_aside(void **state)
{
    struct push_fx *f = *state;
    char path[128];
    FILE *fp;

    start(f);
    push(f, 1, "1s", f->k1);
    bench_run_for(&f->b, 200);
    power_cut(f);
    snprintf(path, sizeof(path), "%s/config.db", f->b.dir);
    fp = fopen(path, "w");
    assert_non_null(fp);
    fputs("this is not a database, and it is longer than a header would be.............",
          fp);
    fclose(fp);
    log_capture_start();
    bench_start(&f->b, NULL);
    assert_int_equal(log_capture_count("config.db", "moving it to", NULL), 1);
    log_capture_stop();
    bench_run_for(&f->b, 200);
    assert_int_equal(status_version(f), 0);
    /* The push, sent again, is taken. */
    push(f, 2, "1s", f->k1);
    bench_run_for(&f->b, 200);
    expect_report(f, 2, EDGETEL__V1__CONFIG_RESULT__CONFIG_RESULT_COMMITTED, 2, NULL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(push_is_applied_committed_and_reported, setup, teardown),
        cmocka_unit_test_setup_teardown(refusals_are_reported_and_the_old_config_runs_on, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(a_trial_without_an_ack_is_reverted_at_its_deadline, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(an_ack_commits_a_trial_that_changed_the_uplink, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(a_power_cut_during_a_trial_reverts_at_start, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(a_commit_survives_restarts, setup, teardown),
        cmocka_unit_test_setup_teardown(the_operator_key_is_rotated_by_a_push, setup, teardown),
        cmocka_unit_test_setup_teardown(a_push_that_would_leave_no_trusted_key_is_rejected, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(a_group_push_reaches_its_members, setup, teardown),
        cmocka_unit_test_setup_teardown(a_damaged_config_db_is_moved_aside, setup, teardown),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
