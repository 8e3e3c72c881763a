/*
 * edgetelctl config push and config status, the program itself, against a
 * store an aggregator made: pushes take the fleet's next version, their
 * bytes verify on a board (the agent's own verifier) and carry no data_dir;
 * an operator's mistakes (a bad file, a key others may read, a store path
 * that is not there) change nothing and say why; status shows what the
 * relay would do for each device, as a table, as CSV, and for one device
 * with its reports.
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

#include "ctl_run.h"
#include "edgetel/config_relay.h"
#include "edgetel/config_wire.h"
#include "edgetel/ingest.h"
#include "edgetel/log.h"
#include "edgetel/store_config.h"
#include "edgetel/store_open.h"

#define KEY "--key keys/operator.key"
#define STORE "--store agg.db"

static const char conf[] =
    "[agent]\ndevice_id = pi-1\ndata_dir = /srv/edgetel\n"
    "[collector room]\ntype = sim\ninterval = 5s\nperiod = 20s\n";

/* out holds needle, else the test fails showing both. */
static void assert_has(const char *out, const char *needle)
{
    if (!strstr(out, needle))
        fail_msg("the output lacks \"%s\"; it was:\n%s", needle, out);
}

/* The aggregator's store, as a first start of it leaves it. */
static void make_store(struct ctl_fx *f)
{
    struct et_store *s;
    char path[160], err[256];

    assert_int_equal(et_store_open(&s, "sqlite", ctl_path(f, "agg.db", path, sizeof(path)), 0,
                                   err, sizeof(err)), 0);
    et_store_close(s);
}

struct row_copy {
    uint8_t *bytes;
    size_t len;
    char target[80], pushed_by[128], source[256], key_id[32];
    enum et_config_target kind;
};

static int copy_row(void *ctx, const struct et_store_desired *d)
{
    struct row_copy *c = ctx;

    c->bytes = malloc(d->signed_len);
    assert_non_null(c->bytes);
    memcpy(c->bytes, d->signed_config, d->signed_len);
    c->len = d->signed_len;
    c->kind = d->kind;
    snprintf(c->target, sizeof(c->target), "%s", d->target);
    snprintf(c->pushed_by, sizeof(c->pushed_by), "%s", d->pushed_by);
    snprintf(c->source, sizeof(c->source), "%s", d->source);
    snprintf(c->key_id, sizeof(c->key_id), "%s", d->key_id);
    return 0;
}

/* The store's highest version, and (when row) that desired config. */
static uint64_t store_top(struct ctl_fx *f, struct row_copy *row)
{
    struct et_store *s;
    char path[160], err[256];
    uint64_t top = 0;

    assert_int_equal(et_store_open(&s, "sqlite", ctl_path(f, "agg.db", path, sizeof(path)),
                                   ET_STORE_READONLY, err, sizeof(err)), 0);
    assert_int_equal(et_store_desired_top(et_store_config(s), &top), 0);
    if (row)
        assert_int_equal(et_store_desired_get(et_store_config(s), top, copy_row, row), 0);
    et_store_close(s);
    return top;
}

/* Verify bytes as a board in groups with running version 0 would. */
static Edgetel__V1__ConfigBody *board_verifies(struct ctl_fx *f, const struct row_copy *row,
                                               const char *device, const char *const *groups,
                                               size_t n_groups)
{
    struct et_sign_key *pub = NULL;
    struct et_sign_trust *trust = NULL;
    Edgetel__V1__ConfigBody *b = NULL;
    char path[160], err[512];
    struct et_config_verify_ctx ctx = { .device_id = device, .groups = groups,
                                        .n_groups = n_groups };

    assert_int_equal(et_sign_key_load_public(ctl_path(f, "keys/operator.pub", path, sizeof(path)),
                                             &pub, err, sizeof(err)), 0);
    assert_int_equal(et_sign_trust_create(&trust), 0);
    assert_int_equal(et_sign_trust_add(trust, pub), 0);
    ctx.trust = trust;
    if (et_config_verify(row->bytes, row->len, &ctx, &b, err, sizeof(err)) != 0)
        fail_msg("the board refuses it: %s", err);
    et_sign_trust_destroy(trust);
    return b;
}

static void pushes_take_the_fleets_next_version(void **state)
{
    struct ctl_fx *f = *state;
    struct row_copy row = { .bytes = NULL };
    Edgetel__V1__ConfigBody *b;
    static const char *const lab[] = { "lab" };
    char out[2048];

    assert_int_equal(ctl_run(f, out, sizeof(out), "keys init --dir keys"), 0);
    ctl_write_file(f, "agent.conf", conf);
    make_store(f);

    assert_int_equal(ctl_run(f, out, sizeof(out), STORE " config push " KEY " --device pi-1 "
                             "--deadline 90s agent.conf"), 0);
    assert_has(out, "config v1 for device pi-1 (key ");
    assert_has(out, ") queued in agg.db; the aggregator sends it to the board");
    assert_int_equal(store_top(f, &row), 1);
    assert_int_equal(row.kind, ET_CONFIG_TARGET_DEVICE);
    assert_string_equal(row.target, "pi-1");
    assert_non_null(strchr(row.pushed_by, '@'));
    assert_non_null(strstr(row.source, "/agent.conf"));
    assert_int_equal(strlen(row.key_id), 16);
    b = board_verifies(f, &row, "pi-1", NULL, 0);
    assert_int_equal(b->version, 1);
    assert_int_equal(b->commit_deadline_ms, 90000);
    /* The board's own data directory is never pushed. */
    assert_string_equal(b->config->data_dir, "");
    assert_int_equal(b->config->n_collectors, 1);
    edgetel__v1__config_body__free_unpacked(b, NULL);
    free(row.bytes);

    /* The next push, for a group, is v2: one counter for the fleet; --store
     * after the command name works as well. */
    assert_int_equal(ctl_run(f, out, sizeof(out), "config push " STORE " " KEY " --group lab "
                             "agent.conf"), 0);
    assert_has(out, "config v2 for group lab");
    assert_has(out, "every board whose [agent] groups names it");
    assert_int_equal(store_top(f, &row), 2);
    b = board_verifies(f, &row, "pi-7", lab, 1);
    assert_int_equal(b->version, 2);
    assert_string_equal(b->group, "lab");
    edgetel__v1__config_body__free_unpacked(b, NULL);
    free(row.bytes);
}

/*
 * Boards that run a version this store never had (pushed through a store
 * since replaced) would refuse a lower one as a replay: the next push goes
 * above what they report, and says so. A board's claim past 2^53 is not
 * taken (a hostile one must not end the counter).
 */
static void pushes_go_above_what_boards_run(void **state)
{
    struct ctl_fx *f = *state;
    struct et_store *s;
    char path[160], err[256], out[2048];

    assert_int_equal(ctl_run(f, out, sizeof(out), "keys init --dir keys"), 0);
    ctl_write_file(f, "agent.conf", conf);
    assert_int_equal(et_store_open(&s, "sqlite", ctl_path(f, "agg.db", path, sizeof(path)), 0,
                                   err, sizeof(err)), 0);
    assert_int_equal(et_store_begin(et_store_writer(s)), 0);
    assert_int_equal(et_store_device_seen(et_store_writer(s), "pi-1", 1000, NULL, 0, NULL), 0);
    assert_int_equal(et_store_device_seen(et_store_writer(s), "evil", 1000, NULL, 0, NULL), 0);
    assert_int_equal(et_store_config_device_set(et_store_config(s), "pi-1", "", 7), 0);
    assert_int_equal(et_store_config_device_set(et_store_config(s), "evil", "",
                                                UINT64_MAX - 1), 0);
    assert_int_equal(et_store_commit(et_store_writer(s)), 0);
    et_store_close(s);

    assert_int_equal(ctl_run(f, out, sizeof(out), STORE " config push " KEY " --device pi-1 "
                             "agent.conf"), 0);
    assert_has(out, "boards report running v7, above this store's v0");
    assert_has(out, "config v8 for device pi-1");
    assert_int_equal(store_top(f, NULL), 8);
}

static void operator_mistakes_change_nothing(void **state)
{
    struct ctl_fx *f = *state;
    char out[2048], path[160];

    assert_int_equal(ctl_run(f, out, sizeof(out), "keys init --dir keys"), 0);
    ctl_write_file(f, "agent.conf", conf);
    make_store(f);
    assert_int_equal(ctl_run(f, out, sizeof(out), STORE " config push " KEY " --device pi-1 "
                             "agent.conf"), 0);

    /* A file the board would refuse, with its line. */
    ctl_write_file(f, "bad.conf", "[agent]\ndevice_id = pi-1\n[collector room]\ntype = sim\n"
                                  "interval = 5x\n");
    assert_int_equal(ctl_run(f, out, sizeof(out), STORE " config push " KEY " --device pi-1 "
                             "bad.conf"), 1);
    assert_has(out, "bad.conf:5: [collector room] interval \"5x\": expected a "
                    "duration like 10s");
    /* A key others may read. */
    assert_int_equal(chmod(ctl_path(f, "keys/operator.key", path, sizeof(path)), 0644), 0);
    assert_int_equal(ctl_run(f, out, sizeof(out), STORE " config push " KEY " --device pi-1 "
                             "agent.conf"), 1);
    assert_has(out, "is mode 0644: readable by group or others; chmod 600 "
                    "keys/operator.key");
    assert_int_equal(chmod(path, 0600), 0);
    /* A store that is not there is not made. */
    assert_int_equal(ctl_run(f, out, sizeof(out), "--store nowhere.db config push " KEY
                             " --device pi-1 agent.conf"), 1);
    assert_has(out, "store nowhere.db: No such file or directory");
    assert_int_equal(access(ctl_path(f, "nowhere.db", path, sizeof(path)), F_OK), -1);
    /* Usage: the version is the store's to choose; one target. */
    assert_int_equal(ctl_run(f, out, sizeof(out), STORE " config push " KEY " --device pi-1 "
                             "--version 9 agent.conf"), 2);
    assert_has(out, "--version does not apply");
    assert_int_equal(ctl_run(f, out, sizeof(out), STORE " config push " KEY " agent.conf"), 2);
    assert_int_equal(ctl_run(f, out, sizeof(out), STORE " config push " KEY " --group 'a b' "
                             "agent.conf"), 1);
    assert_has(out, "group \"a b\"");

    assert_int_equal(store_top(f, NULL), 1);
}

/* What the aggregator records: a Status and a report, through ingest and the relay. */
static int drop(void *ctx, const char *topic, const uint8_t *payload, size_t len)
{
    return 0;
}

static void aggregator_hears(struct ctl_fx *f)
{
    static const char *const lab[] = { "lab" };
    struct et_status st = { .device_id = "pi-1", .online = true, .wall_ms = 1795000000000LL,
                            .groups = lab, .n_groups = 1 };
    Edgetel__V1__ConfigReport rep = EDGETEL__V1__CONFIG_REPORT__INIT;
    struct et_store *s;
    struct et_ingest *ig;
    struct et_config_relay *relay;
    struct et_ingest_reply r;
    char path[160], err[256];
    uint8_t *buf, report[256];
    size_t len;

    assert_int_equal(et_store_open(&s, "sqlite", ctl_path(f, "agg.db", path, sizeof(path)), 0,
                                   err, sizeof(err)), 0);
    assert_int_equal(et_ingest_create(&ig, et_store_writer(s), "edgetel"), 0);
    et_ingest_set_config(ig, et_store_config(s));
    assert_int_equal(et_config_relay_create(&relay, et_store_config(s), "edgetel", drop, NULL),
                     0);
    assert_int_equal(et_wire_encode_status(&st, &buf, &len), 0);
    assert_int_equal(et_ingest_message(ig, "edgetel/v1/pi-1/status", buf, len, 1795000000000LL,
                                       &r), 0);
    free(buf);
    rep.device_id = "pi-1";
    rep.version = 1;
    rep.result = EDGETEL__V1__CONFIG_RESULT__CONFIG_RESULT_REJECTED;
    rep.reason = "signed by key 1a2b3c4d5e6f7081, which this device does not trust";
    rep.time_ms = 1795000001000LL;
    len = edgetel__v1__config_report__pack(&rep, report);
    assert_int_equal(et_config_relay_message(relay, "edgetel/v1/pi-1/config/report", report, len,
                                             1795000002000LL, NULL), 0);
    et_config_relay_destroy(relay);
    et_ingest_destroy(ig);
    et_store_close(s);
}

static void status_shows_what_the_relay_does(void **state)
{
    struct ctl_fx *f = *state;
    char out[4096];

    assert_int_equal(ctl_run(f, out, sizeof(out), "keys init --dir keys"), 0);
    ctl_write_file(f, "agent.conf", conf);
    make_store(f);
    assert_int_equal(ctl_run(f, out, sizeof(out), STORE " config status"), 0);
    assert_string_equal(out, "no devices yet\n");

    assert_int_equal(ctl_run(f, out, sizeof(out), STORE " config push " KEY " --device pi-1 "
                             "agent.conf"), 0);
    assert_int_equal(ctl_run(f, out, sizeof(out), STORE " config push " KEY " --device pi-2 "
                             "agent.conf"), 0);
    assert_int_equal(ctl_run(f, out, sizeof(out), STORE " config push " KEY " --group lab "
                             "agent.conf"), 0);
    aggregator_hears(f);

    /* pi-1 claims lab, whose v3 is newer than its own v1, which it refused;
     * pi-2 has not been heard from. */
    assert_int_equal(ctl_run(f, out, sizeof(out), STORE " config status"), 0);
    assert_has(out, "DEVICE  GROUPS  DESIRED         RUNNING  STATE    REPORT       REASON");
    assert_has(out, "\npi-1    lab     v3 (group lab)  file     pending  rejected v1  signed by "
                    "key 1a2b3c4d5e6f7081, which this device does not trust  "
                    "2026-11-18T11:06:41Z (unsynced clock)  2026-11-18T11:06:42Z (");
    assert_has(out, "\npi-2    -       v2 (device)     ?        pending  -            -  ");

    assert_int_equal(ctl_run(f, out, sizeof(out), STORE " config status --csv"), 0);
    assert_has(out, "device,groups,desired_version,desired_for,running_version,state,"
                    "report_version,report_result,reason,reported_ms,clock_synced,"
                    "received_ms\n");
    assert_has(out, "\npi-1,lab,3,group:lab,0,pending,1,rejected,\"signed by key "
                    "1a2b3c4d5e6f7081, which this device does not trust\","
                    "1795000001000,false,1795000002000\n");
    assert_has(out, "\npi-2,,2,device:pi-2,,pending,,,,,,\n");

    /* One device, with its reports. */
    assert_int_equal(ctl_run(f, out, sizeof(out), STORE " config status --device pi-1"), 0);
    assert_null(strstr(out, "pi-2"));
    assert_has(out, "\nreports of pi-1, newest first:\nRECEIVED              REPORT"
                    "       RUNNING  REPORTED                               REASON\n"
                    "2026-11-18T11:06:42Z  rejected v1  file     "
                    "2026-11-18T11:06:41Z (unsynced clock)  signed by key");
    assert_int_equal(ctl_run(f, out, sizeof(out), STORE " config status --device pi-9"), 1);
    assert_has(out, "device pi-9 is not in the store");
    assert_int_equal(ctl_run(f, out, sizeof(out), STORE " config status --group lab"), 2);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(pushes_take_the_fleets_next_version, ctl_fx_setup,
                                        ctl_fx_teardown),
        cmocka_unit_test_setup_teardown(pushes_go_above_what_boards_run, ctl_fx_setup,
                                        ctl_fx_teardown),
        cmocka_unit_test_setup_teardown(operator_mistakes_change_nothing, ctl_fx_setup,
                                        ctl_fx_teardown),
        cmocka_unit_test_setup_teardown(status_shows_what_the_relay_does, ctl_fx_setup,
                                        ctl_fx_teardown),
    };

    /* What ingest and the relay say while the test fills the store. */
    et_log_init("test_ctl_config", ET_LOG_ERROR);
    return cmocka_run_group_tests(tests, NULL, NULL);
}
