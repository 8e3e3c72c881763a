/*
 * The life of the agent's config: trials, commit, revert, and what
 * survives a power cut (reconf.h). The persistence is reconf_db.c.
 */
#include "reconf.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "reconf_internal.h"
#include "edgetel/config_wire.h"
#include "edgetel/log.h"
#include "edgetel/platform.h"

#define REPORT_QUEUE REPORTS_MAX

/* ---- reports ----------------------------------------------------------------- */

static void queue_bytes(struct et_reconf *r, uint8_t *buf, size_t len)
{
    if (r->n_reports == REPORT_QUEUE) {
        /* The oldest goes: the retained topic keeps only the last anyway. */
        free(r->reports[0].buf);
        memmove(r->reports, r->reports + 1, (REPORT_QUEUE - 1) * sizeof(r->reports[0]));
        r->n_reports--;
    }
    r->reports[r->n_reports].buf = buf;
    r->reports[r->n_reports].len = len;
    r->n_reports++;
}

/* Queue a ConfigReport, remember it as the last (published again on connects). */
static void report(struct et_reconf *r, uint64_t version, Edgetel__V1__ConfigResult result,
                   const char *reason)
{
    Edgetel__V1__ConfigReport rep = EDGETEL__V1__CONFIG_REPORT__INIT;
    uint8_t *buf, *copy;
    size_t len;

    rep.device_id = r->base->device_id;
    rep.version = version;
    rep.result = result;
    rep.reason = (char *)(reason ? reason : "");
    rep.time_ms = et_time_wall_ms();
    rep.clock_synced = r->clock && r->clock->synced;
    rep.running_version = et_reconf_version(r);
    len = edgetel__v1__config_report__get_packed_size(&rep);
    buf = malloc(len ? len : 1);
    copy = malloc(len ? len : 1);
    if (!buf || !copy) {
        free(buf);
        free(copy);
        et_error("config", "out of memory: report on config v%" PRIu64 " not sent", version);
        return;
    }
    edgetel__v1__config_report__pack(&rep, buf);
    memcpy(copy, buf, len);
    free(r->last_report);
    r->last_report = copy;
    r->last_report_len = len;
    reconf_db_save_report(r, buf, len);
    queue_bytes(r, buf, len);
}

bool et_reconf_next_report(struct et_reconf *r, uint8_t **buf, size_t *len)
{
    if (!r->n_reports)
        return false;
    *buf = r->reports[0].buf;
    *len = r->reports[0].len;
    r->n_reports--;
    memmove(r->reports, r->reports + 1, r->n_reports * sizeof(r->reports[0]));
    return true;
}

void et_reconf_report_again(struct et_reconf *r)
{
    uint8_t *copy;

    if (!r->last_report || r->n_reports)
        return;   /* what is queued is newer */
    copy = malloc(r->last_report_len ? r->last_report_len : 1);
    if (!copy)
        return;
    memcpy(copy, r->last_report, r->last_report_len);
    queue_bytes(r, copy, r->last_report_len);
}

/* ---- what runs ---------------------------------------------------------------- */

const struct et_config *et_reconf_running(const struct et_reconf *r)
{
    if (r->trial_on)
        return r->cand;
    return r->good ? r->good : r->base;
}

uint64_t et_reconf_version(const struct et_reconf *r)
{
    if (r->trial_on && r->trial.version)
        return r->trial.version;
    return r->good ? r->good_version : 0;
}

const struct et_config *et_reconf_candidate(const struct et_reconf *r)
{
    return r->trial_on ? r->cand : NULL;
}

const struct et_reconf_trial *et_reconf_trial_get(const struct et_reconf *r)
{
    return r->trial_on ? &r->trial : NULL;
}

static void free_config(struct et_config *c)
{
    et_config_free(c);
    free(c);
}

/* Free what the agent stopped using at the last change (it applied since). */
static void free_retired(struct et_reconf *r)
{
    for (size_t i = 0; i < r->n_retired; i++)
        free_config(r->retired[i]);
    r->n_retired = 0;
}

static void retire(struct et_reconf *r, struct et_config *c)
{
    if (!c)
        return;
    if (r->n_retired == RETIRED_MAX) {
        /* Never reached: each change retires at most three, after a free. */
        et_error("config", "internal: too many configs retired at once");
        return;
    }
    r->retired[r->n_retired++] = c;
}

bool et_reconf_uplink_same(const struct et_config *a, const struct et_config *b)
{
    const struct et_mqtt_settings *x = &a->mqtt, *y = &b->mqtt;
    bool strs = !strcmp(x->host ? x->host : "", y->host ? y->host : "") &&
                !strcmp(x->ca_file ? x->ca_file : "", y->ca_file ? y->ca_file : "") &&
                !strcmp(x->cert_file ? x->cert_file : "", y->cert_file ? y->cert_file : "") &&
                !strcmp(x->key_file ? x->key_file : "", y->key_file ? y->key_file : "") &&
                !strcmp(a->topic_root, b->topic_root);

    return strs && x->port == y->port && x->insecure == y->insecure &&
           x->keepalive_ms == y->keepalive_ms && x->backoff_min_ms == y->backoff_min_ms &&
           x->backoff_max_ms == y->backoff_max_ms &&
           x->backoff_max_refused_ms == y->backoff_max_refused_ms &&
           a->ack_timeout_ms == b->ack_timeout_ms && a->max_inflight == b->max_inflight &&
           a->clock_wait_ms == b->clock_wait_ms && a->drain_rate == b->drain_rate;
}

static void start_trial(struct et_reconf *r, struct et_config *cand, uint64_t version,
                        uint64_t deadline_ms, int64_t now_ms)
{
    r->cand = cand;
    r->trial_on = true;
    r->trial = (struct et_reconf_trial){
        .version = version,
        .started_ms = now_ms,
        .deadline_ms = now_ms + (int64_t)(deadline_ms ? deadline_ms : ET_CONFIG_DEFAULT_DEADLINE_MS),
        .uplink_changed = !et_reconf_uplink_same(et_reconf_running_before(r), cand),
    };
}

const struct et_config *et_reconf_running_before(const struct et_reconf *r)
{
    return r->good ? r->good : r->base;
}

/* ---- offers ------------------------------------------------------------------ */

static uint64_t fnv1a(const uint8_t *p, size_t n)
{
    uint64_t h = 1469598103934665603ull;

    for (size_t i = 0; i < n; i++)
        h = (h ^ p[i]) * 1099511628211ull;
    return h;
}

/* The version a refused push claims, read without trusting it: for the report only. */
static uint64_t claimed_version(const uint8_t *buf, size_t len)
{
    Edgetel__V1__ConfigBody *b = NULL;
    uint64_t v = 0;

    if (len <= ET_CONFIG_SIGNED_MAX && et_config_decode_stored(buf, len, &b) == 0)
        v = b->version;
    if (b)
        edgetel__v1__config_body__free_unpacked(b, NULL);
    return v;
}

static enum et_reconf_verdict reject(struct et_reconf *r, uint64_t version, const char *why)
{
    et_warn("config", "config v%" PRIu64 " rejected: %s; %s keeps running", version, why,
            r->good ? "the pushed config" : "the local file");
    report(r, version, EDGETEL__V1__CONFIG_RESULT__CONFIG_RESULT_REJECTED, why);
    return ET_RECONF_REJECTED;
}

static void keep_waiting(struct et_reconf *r, const uint8_t *buf, size_t len)
{
    uint8_t *copy = malloc(len ? len : 1);

    if (!copy)
        return;   /* the aggregator sends it again after the next Status */
    memcpy(copy, buf, len);
    free(r->waiting);
    r->waiting = copy;
    r->waiting_len = len;
    et_info("config", "a config push arrived during the trial of %s: it waits for the trial "
            "to end", r->trial.version ? "a push" : "the reloaded file");
}

/* How many keys this board would trust after b's key changes. */
static size_t trusted_after(const struct et_reconf *r, const Edgetel__V1__ConfigBody *b)
{
    size_t n = et_sign_trust_count(r->trust);

    for (size_t i = 0; i < b->n_remove_trusted_key_ids; i++)
        if (et_sign_trust_find(r->trust, b->remove_trusted_key_ids[i].data))
            n--;
    for (size_t i = 0; i < b->n_add_trusted_keys; i++) {
        struct et_sign_key *k = NULL;
        uint8_t id[ET_SIGN_KEY_ID_LEN];
        char why[200];
        bool removed = false;

        if (et_sign_key_parse_public(b->add_trusted_keys[i].data, b->add_trusted_keys[i].len,
                                     "to trust", &k, why, sizeof(why)) != 0)
            continue;
        et_sign_key_id(k, id);
        et_sign_key_destroy(k);
        for (size_t j = 0; j < b->n_remove_trusted_key_ids; j++)
            removed |= memcmp(b->remove_trusted_key_ids[j].data, id, ET_SIGN_KEY_ID_LEN) == 0;
        /* A new key that this body does not remove again (a removal wins at commit). */
        if (!removed && !et_sign_trust_find(r->trust, id))
            n++;
    }
    return n;
}

enum et_reconf_verdict et_reconf_offer(struct et_reconf *r, const uint8_t *buf, size_t len,
                                       int64_t now_ms)
{
    const struct et_config *base = r->base;
    struct et_config_verify_ctx ctx = {
        .trust = r->trust,
        .device_id = base->device_id,
        .groups = (const char *const *)base->group_names,
        .n_groups = base->n_groups,
        .running_version = r->good_version > r->floor ? r->good_version : r->floor,
    };
    Edgetel__V1__ConfigBody *body = NULL;
    struct et_config *cand;
    char err[512], name[64];
    uint64_t hash = fnv1a(buf, len);
    int rc;

    if (r->trial_on) {
        keep_waiting(r, buf, len);
        return ET_RECONF_IGNORED;
    }
    free_retired(r);
    /* The same retained message again (every reconnect delivers it): said once. */
    if (r->seen_offer && hash == r->last_offer_hash)
        return ET_RECONF_IGNORED;
    r->seen_offer = true;
    r->last_offer_hash = hash;
    rc = et_config_verify(buf, len, &ctx, &body, err, sizeof(err));
    if (rc == -ESTALE) {
        uint64_t v = claimed_version(buf, len);

        /* What runs, or what was reverted here: nothing to say again. */
        if (v == r->good_version || v == r->floor) {
            et_debug("config", "config v%" PRIu64 " seen again: already %s", v,
                     v == r->good_version ? "running" : "reverted");
            return ET_RECONF_IGNORED;
        }
        return reject(r, v, err);
    }
    if (rc)
        return reject(r, claimed_version(buf, len), err);
    if (trusted_after(r, body) == 0) {
        uint64_t v = body->version;

        edgetel__v1__config_body__free_unpacked(body, NULL);
        return reject(r, v, "its key changes would leave this board trusting no operator key "
                            "(no push could ever reach it again); add the new key in the same "
                            "push that removes the old one");
    }
    snprintf(name, sizeof(name), "config v%" PRIu64 " from the cloud", body->version);
    cand = calloc(1, sizeof(*cand));
    if (!cand) {
        edgetel__v1__config_body__free_unpacked(body, NULL);
        return reject(r, claimed_version(buf, len), "out of memory");
    }
    rc = et_config_from_push(body->config, base, name, cand, err, sizeof(err));
    if (rc == 0)
        rc = reconf_db_set_pending(r, body->version, buf, len, err, sizeof(err));
    if (rc) {
        uint64_t v = body->version;

        free(cand);
        edgetel__v1__config_body__free_unpacked(body, NULL);
        return reject(r, v, err);
    }
    r->cand_body = body;
    start_trial(r, cand, body->version, body->commit_deadline_ms, now_ms);
    et_info("config", "config v%" PRIu64 " verified (signed %s for %s %s): applying; it must "
            "prove healthy within %" PRId64 " s%s", body->version, "by a trusted key",
            body->target_case == EDGETEL__V1__CONFIG_BODY__TARGET_GROUP ? "group" : "device",
            body->target_case == EDGETEL__V1__CONFIG_BODY__TARGET_GROUP ? body->group
                                                                        : body->device_id,
            (r->trial.deadline_ms - now_ms) / 1000,
            r->trial.uplink_changed ? ", reconnecting with its [mqtt] settings" : "");
    return ET_RECONF_TRY;
}

bool et_reconf_take_waiting(struct et_reconf *r, uint8_t **buf, size_t *len)
{
    if (!r->waiting || r->trial_on)
        return false;
    *buf = r->waiting;
    *len = r->waiting_len;
    r->waiting = NULL;
    return true;
}

/* ---- the local file --------------------------------------------------------- */

enum et_reconf_verdict et_reconf_reload(struct et_reconf *r, int64_t now_ms)
{
    struct et_config *nb = calloc(1, sizeof(*nb)), *cand = NULL;
    struct et_sign_trust *trust = NULL;
    char err[512];
    int rc;

    if (!nb)
        return ET_RECONF_REJECTED;
    if (r->trial_on) {
        et_warn("config", "SIGHUP: not reloading %s while config %s is on trial; send it "
                "again when the trial ends", r->base->path, r->trial.version ? "a push" : "a reload");
        free(nb);
        return ET_RECONF_REJECTED;
    }
    free_retired(r);
    rc = et_config_load(r->base->path, nb, err, sizeof(err));
    if (rc) {
        et_error("config", "%s; keeping the running config", err);
        goto refuse;
    }
    if (strcmp(nb->device_id, r->base->device_id) != 0 ||
        strcmp(nb->data_dir, r->base->data_dir) != 0) {
        et_error("config", "%s: [agent] device_id or data_dir changed: they change only with a "
                 "restart; keeping the running config", nb->path);
        goto refuse;
    }
    rc = reconf_load_trust(r, nb, &trust, err, sizeof(err));
    if (rc) {
        et_error("config", "%s; keeping the running config", err);
        goto refuse;
    }
    if (r->good) {
        char name[64];

        cand = calloc(1, sizeof(*cand));
        snprintf(name, sizeof(name), "config v%" PRIu64 " over %s", r->good_version, nb->path);
        if (!cand || et_config_from_push(r->good_body->config, nb, name, cand, err,
                                         sizeof(err)) != 0) {
            et_error("config", "%s; keeping the running config", cand ? err : "out of memory");
            free(cand);
            cand = NULL;
            goto refuse;
        }
        et_info("config", "%s reloaded: pushed config v%" PRIu64 " still runs over it (its keys "
                "win over the file's, except device_id, data_dir, trusted_keys and groups; "
                "edgetel-agent --forget-push goes back to the file)", nb->path, r->good_version);
    } else {
        cand = nb;
    }
    if (et_config_equal(cand, et_reconf_running(r))) {
        et_info("config", "%s reloaded: nothing changed", nb->path);
        if (cand != nb)
            free_config(cand);
        et_sign_trust_destroy(trust);
        free_config(nb);
        return ET_RECONF_IGNORED;
    }
    r->cand_base = nb;
    r->cand_trust = trust;
    start_trial(r, cand, 0, 0, now_ms);
    et_info("config", "%s reloaded: applying; it must prove healthy within %" PRId64 " s",
            nb->path, (r->trial.deadline_ms - now_ms) / 1000);
    return ET_RECONF_TRY;
refuse:
    et_sign_trust_destroy(trust);
    free_config(nb);
    return ET_RECONF_REJECTED;
}

/* ---- the end of a trial ----------------------------------------------------- */

void et_reconf_applied(struct et_reconf *r)
{
    if (r->trial_on && r->trial.version)
        report(r, r->trial.version, EDGETEL__V1__CONFIG_RESULT__CONFIG_RESULT_APPLIED, NULL);
}

static void end_trial(struct et_reconf *r)
{
    r->trial_on = false;
    r->cand = NULL;
    if (r->cand_body)
        edgetel__v1__config_body__free_unpacked(r->cand_body, NULL);
    r->cand_body = NULL;
    r->cand_base = NULL;
    et_sign_trust_destroy(r->cand_trust);
    r->cand_trust = NULL;
}

void et_reconf_revert(struct et_reconf *r, const char *why)
{
    uint64_t v = r->trial.version;

    if (!r->trial_on)
        return;
    retire(r, r->cand);
    if (r->cand_base != r->cand)
        retire(r, r->cand_base);
    end_trial(r);
    if (v) {
        if (v > r->floor)
            r->floor = v;
        reconf_db_drop_pending(r, v);
        et_error("config", "config v%" PRIu64 " reverted: %s; %s runs again", v, why,
                 r->good ? "the last good pushed config" : "the local file");
        report(r, v, EDGETEL__V1__CONFIG_RESULT__CONFIG_RESULT_REVERTED, why);
    } else {
        et_error("config", "the reloaded %s reverted: %s; the config that ran before runs again",
                 r->base->path, why);
    }
}

void et_reconf_commit(struct et_reconf *r)
{
    char err[256];
    uint64_t v = r->trial.version;

    if (!r->trial_on)
        return;
    if (v) {
        if (reconf_db_commit(r, err, sizeof(err)) != 0) {
            char why[320];

            snprintf(why, sizeof(why), "healthy, but the commit could not be recorded: %s", err);
            et_reconf_revert(r, why);
            return;
        }
        reconf_apply_key_changes(r->trust, r->cand_body);
        retire(r, r->good);
        if (r->good_body)
            edgetel__v1__config_body__free_unpacked(r->good_body, NULL);
        r->good = r->cand;
        r->good_body = r->cand_body;
        r->good_version = v;
        r->cand_body = NULL;
        end_trial(r);
        et_info("config", "config v%" PRIu64 " committed: it is the last good config", v);
        report(r, v, EDGETEL__V1__CONFIG_RESULT__CONFIG_RESULT_COMMITTED, NULL);
        return;
    }
    /* A reload: the new file is the base, its keys the trust. */
    if (r->base_owned)
        retire(r, r->base);
    r->base = r->cand_base;
    r->base_owned = true;
    if (r->good) {
        retire(r, r->good);
        r->good = r->cand;
    }
    et_sign_trust_destroy(r->trust);
    r->trust = r->cand_trust;
    r->cand_trust = NULL;
    end_trial(r);
    et_info("config", "the reloaded %s committed", r->base->path);
}

/* ---- open and close --------------------------------------------------------- */

int et_reconf_open(struct et_reconf **out, const struct et_config *base,
                   const struct et_clock *clock, char *err, size_t errlen)
{
    struct et_reconf *r = calloc(1, sizeof(*r));
    int rc;

    *out = NULL;
    if (!r) {
        snprintf(err, errlen, "out of memory");
        return -ENOMEM;
    }
    r->base = (struct et_config *)base;
    r->clock = clock;
    if ((rc = reconf_db_open(r, err, errlen)) ||
        (rc = reconf_load_trust(r, base, &r->trust, err, errlen)) ||
        (rc = reconf_db_settle(r, err, errlen))) {
        et_reconf_destroy(r);
        return rc;
    }
    if (r->good)
        et_info("config", "running pushed config v%" PRIu64 " (committed here) over %s",
                r->good_version, base->path);
    else
        et_info("config", "running the local file %s (no pushed config committed)", base->path);
    if (r->pending_found) {
        char why[160];

        snprintf(why, sizeof(why), "the agent stopped before config v%" PRIu64 " was proved "
                 "healthy (found pending at start)", r->pending_found);
        et_warn("config", "config v%" PRIu64 " reverted: %s", r->pending_found, why);
        report(r, r->pending_found, EDGETEL__V1__CONFIG_RESULT__CONFIG_RESULT_REVERTED, why);
    }
    *out = r;
    return 0;
}

void et_reconf_destroy(struct et_reconf *r)
{
    if (!r)
        return;
    free_retired(r);
    if (r->trial_on) {
        if (r->cand_base && r->cand_base != r->cand)
            free_config(r->cand_base);
        free_config(r->cand);
    }
    end_trial(r);
    if (r->good_body)
        edgetel__v1__config_body__free_unpacked(r->good_body, NULL);
    if (r->good)
        free_config(r->good);
    if (r->base_owned)
        free_config(r->base);
    et_sign_trust_destroy(r->trust);
    for (size_t i = 0; i < r->n_reports; i++)
        free(r->reports[i].buf);
    free(r->last_report);
    free(r->waiting);
    reconf_db_close(r);
    free(r);
}
