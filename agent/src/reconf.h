/*
 * The life of the agent's config: the local file, signed pushes from the
 * cloud, and a trial of each change that ends in commit or revert.
 *
 * Which config runs:
 *   - The local file is the base. Its anchors (device_id, data_dir,
 *     trusted_keys, groups) always come from it.
 *   - A push, once committed, runs over the base: its keys replace the
 *     file's, with the file's anchors. It keeps running across restarts
 *     and SIGHUPs until a newer push commits, or the operator runs
 *     `edgetel-agent --forget-push`. The log says at start and on every
 *     reload which one runs ("running pushed config v7" or "running the
 *     local file").
 *   - A reload (SIGHUP) takes the file's anchors at once; the rest of the
 *     file runs only while no push runs, and the log says so when a push
 *     hides it.
 *
 * A trial: a verified push, or a reload that changes what runs, is
 * written down as pending (before the agent applies it), applied, and
 * kept only if the agent proves healthy before the deadline (the body's,
 * or 2 minutes; the agent decides what healthy is: agent.c). Commit makes
 * it the last good config; revert goes back to the last good one and
 * never tries that version again. A pending push found at start is
 * treated as failed: the agent stopped (a crash, a power cut) before it
 * was proved healthy. Trusted-key changes a push carries take effect at
 * its commit.
 *
 * Persistence: DATA_DIR/config.db (SQLite, synchronous FULL), written in
 * one transaction per step, so a power cut at any moment leaves either the
 * old state or the new one:
 *   slot (good | pending): the SignedConfig bytes and their version;
 *   trust: keys a push added or removed (by key id);
 *   meta: the highest version reverted (never tried again), and the last
 *         report, which is published again on every connect.
 *
 * Reports: every outcome (applied, committed, rejected with the reason,
 * reverted with the reason) becomes a ConfigReport, queued here for the
 * uplink to publish retained on ROOT/v1/DEVICE/config/report.
 *
 * Threads: none; all calls on the agent's thread.
 */
#ifndef EDGETEL_RECONF_H
#define EDGETEL_RECONF_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "clock.h"
#include "edgetel/config.h"

struct et_reconf;

/* What an offer or a reload came to. */
enum et_reconf_verdict {
    ET_RECONF_IGNORED,   /* nothing to do: the version runs already, or the file is unchanged */
    ET_RECONF_REJECTED,  /* refused, reported and logged; the running config goes on */
    ET_RECONF_TRY,       /* apply the candidate (et_reconf_candidate) and prove it healthy */
};

/* The trial in progress, for the agent's health check. */
struct et_reconf_trial {
    uint64_t version;       /* 0 for a reload of the local file */
    int64_t started_ms;     /* monotonic */
    int64_t deadline_ms;    /* monotonic */
    bool uplink_changed;    /* its [mqtt] settings differ from those it replaced */
};

/**
 * Open DATA_DIR/config.db of base (the parsed local file, borrowed: it
 * must outlive r; a reloaded file is r's own), load the trusted keys (the file's, then the changes
 * pushes made), and settle what was left: a pending push is reverted and
 * reported; a good one runs. clock is borrowed (a report says whether
 * the clock was synced).
 * @return 0; -errno with err naming the file and the cause (a trusted key
 *         that cannot be read, a config.db that cannot be opened).
 */
int et_reconf_open(struct et_reconf **out, const struct et_config *base,
                   const struct et_clock *clock, char *err, size_t errlen);

/** The config to run now; valid until the next call that changes what runs. */
const struct et_config *et_reconf_running(const struct et_reconf *r);

/** The version of the pushed config running; 0 for the local file alone. */
uint64_t et_reconf_version(const struct et_reconf *r);

/**
 * A SignedConfig from the broker. Verified (et_config_verify) against the
 * trusted keys, this board's id and groups, and the running version;
 * then validated as a file is. A push that arrives while a trial runs
 * waits (the newest one) until it ends.
 */
enum et_reconf_verdict et_reconf_offer(struct et_reconf *r, const uint8_t *buf, size_t len,
                                       int64_t now_ms);

/**
 * Read the local file again (SIGHUP). A file that does not parse keeps
 * what runs and logs "file:line: what is wrong"; one that changes
 * device_id or data_dir is refused (they change with a restart only).
 */
enum et_reconf_verdict et_reconf_reload(struct et_reconf *r, int64_t now_ms);

/** The config to apply after ET_RECONF_TRY; the trial is in et_reconf_trial_get(). */
const struct et_config *et_reconf_candidate(const struct et_reconf *r);

/** The trial running, or NULL. */
const struct et_reconf_trial *et_reconf_trial_get(const struct et_reconf *r);

/**
 * The agent applied the candidate: it runs now (reported as applied).
 * When applying failed, call et_reconf_revert() instead.
 */
void et_reconf_applied(struct et_reconf *r);

/** The trial proved healthy: it is the last good config now. */
void et_reconf_commit(struct et_reconf *r);

/**
 * The trial failed (why says how, for the log and the report): the last
 * good config runs again (et_reconf_running()); apply it.
 */
void et_reconf_revert(struct et_reconf *r, const char *why);

/** A push that waited for a trial to end, or NULL; take it with et_reconf_offer(). */
bool et_reconf_take_waiting(struct et_reconf *r, uint8_t **buf, size_t *len);

/**
 * The oldest report not yet handed out, encoded; false when none. The
 * caller frees *buf. After a connect, et_reconf_report_again() queues the
 * last one once more (the broker may have lost the retained copy).
 */
bool et_reconf_next_report(struct et_reconf *r, uint8_t **buf, size_t *len);
void et_reconf_report_again(struct et_reconf *r);

/**
 * Whether a and b connect alike: every [mqtt] key the same. When they
 * differ, applying b means a new connection.
 */
bool et_reconf_uplink_same(const struct et_config *a, const struct et_config *b);

/** Free; NULL is a no-op. */
void et_reconf_destroy(struct et_reconf *r);

/**
 * Forget the pushed config of the data directory of base (good and
 * pending), so the local file runs at the next start. Trusted-key changes
 * and the reverted version are kept. For `edgetel-agent --forget-push`.
 * @return 0; -ENOENT when the data directory has no config.db (nothing
 *         was pushed there); -errno with err.
 */
int et_reconf_forget(const struct et_config *base, char *err, size_t errlen);

#endif
