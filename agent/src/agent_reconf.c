/*
 * The agent's config changes (reconf.h): a verified push or a reloaded
 * file applied in place, its trial judged each pass, commit or revert,
 * and the reports of all that handed to the uplink.
 */
#include "agent_internal.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "edgetel/log.h"
#include "edgetel/outbox.h"

void agent_drop_collectors(struct et_agent *a)
{
    for (size_t i = 0; i < a->n_collectors; i++)
        et_collector_fini(&a->collectors[i]);
    free(a->collectors);
    free(a->jobs);
    a->collectors = NULL;
    a->jobs = NULL;
    a->n_collectors = 0;
    et_sched_destroy(a->sched);
    a->sched = NULL;
}

/* The collectors not running now, by "name/type": a trial is not blamed for them. */
static void note_not_running(struct et_agent *a)
{
    a->n_down_before = 0;
    for (size_t i = 0; i < a->n_collectors && a->n_down_before < DOWN_MAX; i++) {
        const struct et_collector *c = &a->collectors[i];

        if (!et_collector_running(c))
            snprintf(a->down_before[a->n_down_before++], sizeof(a->down_before[0]), "%s/%s",
                     c->cfg->name, c->cfg->type);
    }
}

static bool was_down(const struct et_agent *a, const struct et_collector *c)
{
    char key[sizeof(a->down_before[0])];

    snprintf(key, sizeof(key), "%s/%s", c->cfg->name, c->cfg->type);
    for (size_t i = 0; i < a->n_down_before; i++)
        if (strcmp(a->down_before[i], key) == 0)
            return true;
    return false;
}

/*
 * Run next instead of what runs: what was collected is kept first, then
 * the collectors and jobs are made anew, the outbox limits and batch size
 * set, and the uplink reconnects when its settings differ.
 */
static int agent_apply(struct et_agent *a, const struct et_config *next, int64_t now_ms,
                       char *err, size_t errlen)
{
    bool reconnect = !et_reconf_uplink_same(a->cfg, next);
    struct et_outbox_limits lim = {
        .quota_bytes = next->outbox_quota,
        .reserve_bytes = next->outbox_reserve,
        .policy = next->outbox_policy,
    };
    struct et_uplink_stats up;
    int rc;

    note_not_running(a);
    et_batcher_flush(a->batcher, now_ms);
    et_batcher_commit(a->batcher);
    agent_drop_collectors(a);
    a->cfg = next;
    et_log_set_level(next->log_level);
    et_batcher_set_max_samples(a->batcher, next->batch_max_samples);
    if ((rc = et_outbox_set_limits(a->outbox, &lim))) {
        snprintf(err, errlen, "[outbox] limits not accepted: %s", strerror(-rc));
        return rc;
    }
    if ((rc = et_sched_create(&a->sched)) || (rc = agent_make_collectors(a, now_ms, err, errlen)) ||
        (rc = agent_add_jobs(a, now_ms)))
        return rc;
    if (reconnect) {
        et_uplink_stop(a->uplink, "reconnecting with a new config");
        a->uplink = NULL;
        a->acks_at_apply = 0;
        return agent_make_uplink(a, err, errlen);
    }
    et_uplink_retarget(a->uplink, next);
    et_uplink_stats(a->uplink, &up);
    a->acks_at_apply = up.batches_acked;
    return 0;
}

/*
 * Whether the config on trial is healthy: every enabled collector probed
 * (or was down before the change too), and when the uplink's settings
 * changed, it connected and an Ack came back. why says what is missing.
 */
static bool trial_healthy(struct et_agent *a, const struct et_reconf_trial *t, int64_t now_ms,
                          char *why, size_t whylen)
{
    struct et_uplink_stats up;

    for (size_t i = 0; i < a->n_collectors; i++) {
        const struct et_collector *c = &a->collectors[i];

        if (!et_collector_running(c) && !was_down(a, c)) {
            snprintf(why, whylen, "collector %s did not probe within %" PRId64 " s: %s",
                     c->cfg->name, (now_ms - t->started_ms) / 1000, et_collector_reason(c));
            return false;
        }
    }
    if (!t->uplink_changed || !a->uplink)
        return true;
    et_uplink_stats(a->uplink, &up);
    if (up.batches_acked > a->acks_at_apply)
        return true;
    snprintf(why, whylen, "the uplink to %s:%d got no Ack within %" PRId64 " s (%s)",
             a->cfg->mqtt.host, a->cfg->mqtt.port, (now_ms - t->started_ms) / 1000,
             !up.connected ? (up.last_error[0] ? up.last_error : "not connected")
                           : "connected, but the aggregator did not answer");
    return false;
}

/* Go back to the last good config after a trial failed. Fatal when even that fails. */
static int agent_revert(struct et_agent *a, const char *why, int64_t now_ms)
{
    char err[512] = "";
    int rc;

    et_reconf_revert(a->reconf, why);
    rc = agent_apply(a, et_reconf_running(a->reconf), now_ms, err, sizeof(err));
    if (rc)
        et_error("config", "the last good config does not apply again: %s; stopping (a restart "
                 "runs it from scratch)", err);
    return rc;
}

static int agent_try(struct et_agent *a, int64_t now_ms)
{
    char err[512] = "", why[600];
    int rc = agent_apply(a, et_reconf_candidate(a->reconf), now_ms, err, sizeof(err));

    if (rc == 0) {
        et_reconf_applied(a->reconf);
        return 0;
    }
    snprintf(why, sizeof(why), "it does not apply: %s", err[0] ? err : strerror(-rc));
    return agent_revert(a, why, now_ms);
}

/* Pushes, reloads, the trial's end, and the reports of all that. */
int agent_config_step(struct et_agent *a, int64_t now_ms)
{
    const struct et_reconf_trial *t;
    struct et_uplink_stats up;
    uint8_t *buf;
    size_t len;
    int rc = 0;

    if (a->reload_asked) {
        a->reload_asked = false;
        if (et_reconf_reload(a->reconf, now_ms) == ET_RECONF_TRY)
            rc = agent_try(a, now_ms);
    }
    if (rc == 0 && !et_reconf_trial_get(a->reconf) &&
        (a->incoming || et_reconf_take_waiting(a->reconf, &a->incoming, &a->incoming_len))) {
        buf = a->incoming;
        len = a->incoming_len;
        a->incoming = NULL;
        if (et_reconf_offer(a->reconf, buf, len, now_ms) == ET_RECONF_TRY)
            rc = agent_try(a, now_ms);
        free(buf);
    }
    t = et_reconf_trial_get(a->reconf);
    if (rc == 0 && t) {
        char why[600];

        if (trial_healthy(a, t, now_ms, why, sizeof(why))) {
            et_reconf_commit(a->reconf);
            /* A commit that could not be recorded reverts. */
            if (et_reconf_running(a->reconf) != a->cfg)
                rc = agent_apply(a, et_reconf_running(a->reconf), now_ms, why, sizeof(why));
        } else if (now_ms >= t->deadline_ms) {
            rc = agent_revert(a, why, now_ms);
        }
    }
    /* Reports go out while connected; after each connect the last goes again. */
    et_uplink_stats(a->uplink, &up);
    if (up.connected && up.connects != a->connects_seen) {
        a->connects_seen = up.connects;
        et_reconf_report_again(a->reconf);
    }
    while (up.connected && et_reconf_next_report(a->reconf, &buf, &len)) {
        if (et_uplink_publish_report(a->uplink, buf, len) != 0)
            et_debug("config", "a config report was not published");
        free(buf);
    }
    return rc;
}

void et_agent_reload(struct et_agent *a)
{
    a->reload_asked = true;
}

