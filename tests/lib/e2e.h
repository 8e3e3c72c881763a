/*
 * The end-to-end fixture shared by tests/integration/test_e2e_*.c: a real
 * mosquitto over mutual TLS (broker.h), a real edgetel-aggregator on SQLite
 * and real edgetel-agent processes with the sim collector, plus the store
 * and outbox queries the tests assert on.
 *
 * Use as cmocka setup/teardown:
 *   setup     et_e2e_create(&e, "name")   the test directory only: setup
 *                                         must not fail half way, cmocka
 *                                         runs no teardown after it does
 *   test      et_e2e_start_broker(e); et_e2e_start_aggregator(e);
 *             et_e2e_start_agent(e, &opts); ... waits and assertions ...;
 *             et_e2e_pass(e);
 *   teardown  et_e2e_destroy(e)           agents and aggregator stopped, then
 *                                         the broker; on failure the test
 *                                         directory is kept and logs shown
 *
 * Helpers that cannot do their job fail the running test with a message
 * naming the thing and the cause, so a test reads as its story.
 */
#ifndef EDGETEL_TEST_E2E_H
#define EDGETEL_TEST_E2E_H

#include <stdbool.h>
#include <stdint.h>

#include "broker.h"
#include "netns.h"
#include "proc.h"

/* The device the tests use unless they say otherwise. */
#define ET_E2E_DEVICE "dev1"
/*
 * The test agent samples sim every 100 ms (the shortest interval the agent
 * accepts) and seals a batch every 200 ms: two samples a batch, so 200
 * values take 20 s and 100 batches, enough for outages to land in the
 * middle of a stream.
 */
#define ET_E2E_SIM_INTERVAL_MS 100

/* How a test agent is set up; zero fields take the defaults noted. */
struct et_e2e_agent_opts {
    const char *device;          /* device id; default ET_E2E_DEVICE */
    /* Its TLS identity; NULL: the broker CA's certificate for device. */
    const struct et_test_identity *identity;
    /* Write ca but no cert/key lines: the board's own identity (a key born
     * in its data dir, a certificate by claim, renewal). */
    bool no_client_cert;
    bool may_exit;               /* the test expects it to exit: waits do not watch it */
    int sim_interval_ms;         /* default ET_E2E_SIM_INTERVAL_MS */
    int batch_interval_ms;       /* default 200 */
    int ack_timeout_ms;          /* default 2000: resend unacknowledged batches soon */
    int durability_window_ms;    /* default 200: the tests read the outbox file */
    int64_t sim_start;           /* first sim.counter value; default 0 */
    /* keepalive and backoff as the program's defaults, not the tests'
     * short ones (keepalive 5 s, backoff 100 ms to 1 s) */
    bool program_timing;
    const char *outbox_reserve;  /* [outbox] reserve, e.g. "1M"; NULL: the agent's default */
    const char *outbox_quota;    /* [outbox] quota; NULL: the agent's default */
    /* More lines of its [agent] section (trusted_keys, groups); NULL: none. */
    const char *agent_extra;
    /* More lines of its [mqtt] section, after the fixture's; NULL: none. */
    const char *mqtt_extra;
    /* The file et_e2e_write_agent_config() writes; NULL: DEVICE.conf. */
    const char *conf_name;
    /* Run it inside this network namespace (netns.h); NULL: the test's own. */
    const struct et_test_netns *netns;
    const char *renew_at;        /* [mqtt] renew_at; NULL: the agent's default */
    /* Its config, log and data directory are DIR/NAME.conf, NAME.log and
     * NAME-data; NULL: the device id. Two agents of one device need two. */
    const char *name;
};

struct et_e2e {
    struct et_test_env *env;
    struct et_test_broker *broker;
    /* The aggregators' store: a SQLite file, or after et_e2e_use_postgresql()
     * a PostgreSQL connection string; the reads below take either. */
    const char *store_path;
    const char *store_type;      /* "sqlite" or "postgresql" */
    char pg_schema[64];          /* PostgreSQL: the test's schema, dropped at the end */
    char pg_conninfo[512];       /* PostgreSQL: store_path points here */
    struct et_proc *aggregator;  /* the first instance; NULL until started */
    size_t n_aggregators;
    struct et_proc *daemons[8];  /* must keep running unless the test stops them */
    size_t n_daemons;
    /* More sections for the next aggregator's config ("[http]\n..."); NULL: none. */
    const char *aggregator_extra;
    char ca_dir[4200];           /* et_e2e_ca_dir() */
};

/** The fixture and its test directory; returns 0 or -errno. */
int et_e2e_create(struct et_e2e **out, const char *name);

/**
 * Check the programs are built and start mosquitto (mutual TLS, the
 * shipped config and ACL, certificates for "aggregator" and
 * ET_E2E_DEVICE); fails the test otherwise.
 */
void et_e2e_start_broker(struct et_e2e *e);

/** The same with the broker listening on host (et_test_broker_start_at()). */
void et_e2e_start_broker_at(struct et_e2e *e, const char *host);

/**
 * Run the aggregators of this test on PostgreSQL: a schema of the test's
 * own on the suite's private server (tests/pg/pg_server.sh, the ctest
 * fixture "pg"). Call before the first et_e2e_start_aggregator().
 */
void et_e2e_use_postgresql(struct et_e2e *e);

/** Stop every program the test started, then the broker; NULL is a no-op. */
void et_e2e_destroy(struct et_e2e *e);

/** The test reached its end: its directory can go. */
void et_e2e_pass(struct et_e2e *e);

/**
 * Write an aggregator config and start an instance on the one store; call
 * again for more instances in the same shared-subscription group
 * ("aggregator", "aggregator-2", ... name their instance_id, config and
 * log). Restart one with et_proc_restart().
 */
struct et_proc *et_e2e_start_aggregator(struct et_e2e *e);

/**
 * Write DIR/<device>.conf for opts and start an agent with it; its data_dir
 * is DIR/<device>-data. The process belongs to the env.
 */
struct et_proc *et_e2e_start_agent(struct et_e2e *e, const struct et_e2e_agent_opts *opts);

/**
 * Write DIR/<device>.conf for opts and return its path (owned by the
 * env). et_e2e_start_agent() does this; a test calls it itself to change
 * the config of an agent it then restarts with et_proc_restart().
 */
const char *et_e2e_write_agent_config(struct et_e2e *e, const struct et_e2e_agent_opts *opts);

/** DIR/<device>-data/outbox.db, the agent's outbox (string owned by the env). */
const char *et_e2e_outbox_path(struct et_e2e *e, const char *device);

/**
 * Remove DIR/<device>-data and all in it, as a re-flashed SD card or a
 * replaced board has lost it. The agent must be stopped first.
 */
void et_e2e_wipe_agent_data(struct et_e2e *e, const char *device);

/* ---- what the store and the outbox hold --------------------------------- */

/* The sim.counter values of one device in the store. */
struct et_e2e_counter {
    int64_t rows;                /* samples stored */
    int64_t distinct;            /* distinct values among them */
    int64_t min, max;            /* -1 when rows == 0 */
    int64_t upto;                /* the bound the query was given */
    int64_t in_range;            /* distinct values in [0, upto] */
};

/**
 * Read the sim.counter samples of device from the store. Returns 0, or
 * -ENOENT when the store or its tables do not exist yet, or -EIO. The
 * read is read-only and does not hold the store for longer than the query.
 */
int et_e2e_counter_read(const char *store_path, const char *device, int64_t upto,
                        struct et_e2e_counter *out);

/** The seq of the batch that brought device's sim.counter value (the highest); 0 when none. */
int64_t et_e2e_counter_seq(const char *store_path, const char *device, int64_t value);
/* One stored sim.counter sample. */
struct et_e2e_sample {
    int64_t value;
    int64_t ts_ms;               /* wall time it was taken, as stored */
    int64_t seq;                 /* the batch it came in */
};

/**
 * Every sim.counter sample of device, ordered by value then seq, into a
 * malloc'ed array (*out, *n; free(*out)). Returns 0, -ENOENT before the
 * store exists, -ENOMEM or -EIO.
 */
int et_e2e_counter_samples(const char *store_path, const char *device,
                           struct et_e2e_sample **out, size_t *n);

/**
 * The samples device says it dropped over its data directory's life: the
 * larger of its newest agent.dropped_samples metric and the count in its
 * last Status (devices.dropped_samples); 0 when neither is stored.
 */
int64_t et_e2e_dropped_samples(const char *store_path, const char *device);

/** Samples of any metric stored for device; 0 when the store does not exist yet. */
int64_t et_e2e_device_samples(const char *store_path, const char *device);

/** The cumulative ack of the device's current stream ("all seq <= N stored"); 0 when unknown. */
uint64_t et_e2e_acked_through(const char *store_path, const char *device);

/** How many streams (data directories) of device the store has heard of. */
uint64_t et_e2e_streams(const char *store_path, const char *device);

/**
 * Batches in an agent's outbox with seq <= through (UINT64_MAX for all)
 * into *batches, and the highest seq present into *max_seq (0 when empty).
 * Returns 0, -ENOENT before the outbox exists, or -EIO.
 */
int et_e2e_outbox_read(const char *outbox_path, uint64_t through, int64_t *batches,
                       uint64_t *max_seq);

/*
 * The waits below fail the test at their deadline with what they saw, and
 * at once when an aggregator or agent the test started exits without
 * being asked to (its log tail is printed by teardown).
 */

/**
 * Wait until every sim.counter value 0..upto of device is in the store,
 * then fail unless no value is stored twice. Messages name the first
 * values missing or repeated.
 */
void et_e2e_expect_exactly_once(struct et_e2e *e, const char *device, int64_t upto,
                                int timeout_ms);

/** Wait until the store holds at least n distinct sim.counter values of device. */
void et_e2e_wait_counter_at_least(struct et_e2e *e, const char *device, int64_t n,
                                  int timeout_ms);

/**
 * Wait until device's outbox holds no batch with seq <= through (every one
 * acknowledged and deleted).
 */
void et_e2e_wait_outbox_drained(struct et_e2e *e, const char *device, uint64_t through,
                                int timeout_ms);

/** Wait until device's outbox holds at least n batches (the agent is buffering). */
void et_e2e_wait_outbox_at_least(struct et_e2e *e, const char *device, int64_t n,
                                 int timeout_ms);

/* ---- enrollment: the issuer and claims (e2e_enroll.c) ---------------------- */

/* The issuer's certificate name. */
#define ET_E2E_ISSUER "issuer-1"

/**
 * Start edgetelctl ca serve on the broker's CA as ET_E2E_ISSUER, signing
 * device certificates that last lifetime (a duration: "90d", "1m"), and
 * wait until it has subscribed to the CSRs. The process belongs to the
 * env and is watched like the aggregator.
 */
struct et_proc *et_e2e_start_issuer(struct et_e2e *e, const char *lifetime);

/** The broker CA's directory, for edgetelctl --dir (owned by the broker). */
const char *et_e2e_ca_dir(struct et_e2e *e);

/**
 * Run edgetelctl with args (NULL-terminated, without the program), its
 * output into DIR/<log>.log; its exit status, or -1 when it did not exit.
 */
int et_e2e_ctl(struct et_e2e *e, const char *log, const char *const args[]);

/**
 * edgetelctl provision device --valid valid: a claim registered on the
 * broker's CA; fails the test otherwise. Returns the folder holding
 * claim-<device>.crt and claim-<device>.key (owned by the env).
 */
const char *et_e2e_provision(struct et_e2e *e, const char *device, const char *valid);

/**
 * Give an agent a claim as an operator copies one by hand: the files of
 * et_e2e_provision() into DIR/<name>-data/identity/ as claim.crt and
 * claim.key (0600). name as et_e2e_agent_opts.name.
 */
void et_e2e_give_claim(struct et_e2e *e, const char *claim_dir, const char *device,
                       const char *name);

#endif
