/*
 * Enrollment by claim and renewal over MQTT (enroll.h).
 */
/* A 64-bit time_t on 32-bit ARM too: certificate times are shown past 2038.
 * _TIME_BITS=64 needs _FILE_OFFSET_BITS=64 (set for all); before any #include. */
#define _TIME_BITS 64
#include "enroll.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

#include "edgetel/ca.h"
#include "edgetel/cert_wire.h"
#include "edgetel/codec.h"
#include "edgetel/log.h"
#include "edgetel/sign.h"
#include "edgetel/text.h"

/* No answer within this: ask again, waiting twice as long each time (the
 * issuer may not have subscribed yet, and the broker drops a request
 * nobody takes). */
#define ANSWER_WAIT_MIN_MS (5 * 1000)
#define ANSWER_WAIT_MAX_MS (60 * 1000)
#define CLAIM_LOOK_MS (30 * 1000)
#define CLAIM_BACKOFF_MIN_MS (30 * 1000)
#define BACKOFF_MAX_MS (60 * 60 * 1000)
#define RENEW_BACKOFF_MIN_MS 2000
#define TRIAL_MAX_MS (120 * 1000)
#define TRIAL_MIN_MS (10 * 1000)
#define SAME_REASON_MS (10 * 60 * 1000)
#define DISCONNECT_LOG_MS (60 * 1000)
#define STOP_MS 2000
#define TOPIC_LEN 320

enum phase {
    P_START,     /* see what the identity holds, once the clock gate lets us */
    P_NOTHING,   /* no certificate, no claim: look for a claim now and then */
    P_CLAIM,     /* the claim connection asks for the first certificate */
    P_READY,     /* the uplink runs on the identity; renew when due */
    P_ASKED,     /* a renewal's CSR went out over the uplink */
    P_TRIAL,     /* the uplink runs on the renewed certificate, not yet proved */
};

struct et_enroll {
    const struct et_config *cfg;
    const struct et_mqtt_transport *transport;
    const struct et_enroll_hooks *hooks;
    void *ctx;
    struct et_identity *id;
    enum phase phase;

    /* The request in flight (claim or renewal). */
    uint64_t request_id;
    uint8_t *request;
    size_t request_len;
    int64_t asked_ms;          /* when it went out; 0: not yet */
    int64_t answer_wait_ms;    /* how long to wait for its answer this time */
    int64_t retry_ms;          /* not before this (monotonic) */
    int64_t backoff_ms;

    /* The claim connection. */
    struct et_mqtt *claim;
    char claim_csr[TOPIC_LEN], claim_issued[TOPIC_LEN];
    int64_t enroll_began_ms;
    char claim_gone[ET_CA_LEAF_SERIAL_TEXT];   /* a claim found ended: not tried again */
    char last_disconnect[160];
    int64_t disconnect_logged_ms;

    /* The renewal on trial. */
    int64_t trial_started_ms, trial_deadline_ms;
    int64_t now_ms, wall_s;
    bool synced;

    char last_reason[256];
    int64_t reason_logged_ms;

    /* An answer kept until the next step: handling it may close the
     * connection it came over, which must not happen inside its dispatch. */
    uint8_t *answer;
    size_t answer_len;
};

static void iso(int64_t t, char out[32])
{
    time_t tt = (time_t)t;
    struct tm tm;

    if (!gmtime_r(&tt, &tm) || !strftime(out, 32, "%Y-%m-%dT%H:%M:%SZ", &tm))
        snprintf(out, 32, "%" PRId64, t);
}

int et_enroll_create(struct et_enroll **out, const struct et_config *cfg,
                     const struct et_mqtt_transport *transport,
                     const struct et_enroll_hooks *hooks, void *ctx, char *err, size_t errlen)
{
    struct et_enroll *e = calloc(1, sizeof(*e));
    int rc;

    *out = NULL;
    if (!e)
        return et_text_reason(err, errlen, -ENOMEM, "out of memory");
    rc = et_identity_open(&e->id, cfg->data_dir, cfg->device_id, cfg->mqtt.ca_file, err,
                          errlen);
    if (rc) {
        free(e);
        return rc;
    }
    e->cfg = cfg;
    e->transport = transport;
    e->hooks = hooks;
    e->ctx = ctx;
    snprintf(e->claim_csr, sizeof(e->claim_csr), "%s/v1/" ET_CA_CLAIM_PREFIX "%s/cert/csr",
             cfg->topic_root, cfg->device_id);
    snprintf(e->claim_issued, sizeof(e->claim_issued),
             "%s/v1/" ET_CA_CLAIM_PREFIX "%s/cert/issued", cfg->topic_root, cfg->device_id);
    *out = e;
    return 0;
}

static void claim_close(struct et_enroll *e)
{
    et_mqtt_destroy(e->claim, STOP_MS);
    e->claim = NULL;
}

void et_enroll_destroy(struct et_enroll *e)
{
    if (!e)
        return;
    claim_close(e);
    et_identity_destroy(e->id);
    free(e->request);
    free(e->answer);
    free(e);
}

const struct et_identity *et_enroll_identity(const struct et_enroll *e)
{
    return e->id;
}

int et_enroll_fd(const struct et_enroll *e)
{
    return e && e->claim ? et_mqtt_fd(e->claim) : -1;
}

/* ---- requests -------------------------------------------------------------------------- */

static void forget_request(struct et_enroll *e)
{
    free(e->request);
    e->request = NULL;
    e->request_len = 0;
    e->asked_ms = 0;
}

/* A CertRequest for the next key, signed by the claim's key when claim_key is given. */
static int make_request(struct et_enroll *e, const char *claim_key)
{
    struct et_cert_request r = { 0 };
    uint8_t sig[ET_SIGN_SIG_MAX], *csr = NULL;
    struct et_sign_key *k = NULL;
    char err[512];
    int rc;

    forget_request(e);
    if (getrandom(&e->request_id, sizeof(e->request_id), 0) != sizeof(e->request_id))
        e->request_id = (uint64_t)e->now_ms ^ (uint64_t)e->wall_s << 20;
    rc = et_identity_next_csr(e->id, &csr, &r.csr_len, err, sizeof(err));
    if (rc == 0 && claim_key && (rc = et_sign_key_load_private(claim_key, &k, err,
                                                               sizeof(err))) == 0)
        rc = et_sign_sign(k, csr, r.csr_len, sig, &r.claim_sig_len, err, sizeof(err));
    if (rc == 0) {
        r.csr = csr;
        r.request_id = e->request_id;
        r.claim_sig = claim_key ? sig : NULL;
        rc = et_cert_request_encode(&r, &e->request, &e->request_len);
        if (rc)
            snprintf(err, sizeof(err), "cannot encode the request: %s", strerror(-rc));
    }
    if (rc)
        et_error("identity", "no certificate request: %s", err);
    et_sign_key_destroy(k);
    free(csr);
    return rc;
}

/* A reason from the issuer, said unless it was said lately. */
static void say_refusal(struct et_enroll *e, const char *what, const char *reason)
{
    char safe[ET_TEXT_ESCAPED_MAX(ET_CERT_REASON_MAX)];

    if (strcmp(reason, e->last_reason) == 0 && e->now_ms - e->reason_logged_ms < SAME_REASON_MS)
        return;
    snprintf(e->last_reason, sizeof(e->last_reason), "%s", reason);
    e->reason_logged_ms = e->now_ms;
    et_warn("identity", "the issuer refused %s: %s", what, et_text_escape(reason, safe,
                                                                          sizeof(safe)));
}

static int64_t clamp(int64_t v, int64_t lo, int64_t hi)
{
    return v < lo ? lo : v > hi ? hi : v;
}

/* Ask again later: after retry_after_ms, or the backoff of what was asked. */
static void later(struct et_enroll *e, uint64_t retry_after_ms)
{
    const struct et_ca_leaf *cur = et_identity_current(e->id);
    int64_t wait;

    if (e->phase == P_CLAIM) {
        e->backoff_ms = clamp(e->backoff_ms * 2, CLAIM_BACKOFF_MIN_MS, BACKOFF_MAX_MS);
        wait = e->backoff_ms;
    } else {
        wait = clamp(cur ? (cur->not_after - e->wall_s) * 1000 / 4 : RENEW_BACKOFF_MIN_MS,
                     RENEW_BACKOFF_MIN_MS, BACKOFF_MAX_MS);
    }
    if ((int64_t)retry_after_ms > wait)
        wait = (int64_t)retry_after_ms;
    e->retry_ms = e->now_ms + wait;
    forget_request(e);
}

/* ---- the claim connection ---------------------------------------------------------------- */

static void say_using(const struct et_enroll *e, const char *how)
{
    const struct et_ca_leaf *l = et_identity_leaf(e->id);
    char until[32];

    iso(l->not_after, until);
    et_info("identity", "%s as %s with certificate serial %s (valid until %s)", how,
            e->cfg->device_id, l->serial, until);
}

static void enrolled(struct et_enroll *e)
{
    claim_close(e);
    forget_request(e);
    e->backoff_ms = 0;
    et_info("identity", "enrolled by claim in %" PRId64 " ms", e->now_ms - e->enroll_began_ms);
    say_using(e, "connecting");
    e->hooks->remake_uplink(e->ctx, "");
    e->phase = P_READY;
}

static void renewed(struct et_enroll *e)
{
    const struct et_ca_leaf *cur = et_identity_current(e->id);
    int64_t left_ms = cur ? (cur->not_after - e->wall_s) * 1000 : 0;

    forget_request(e);
    say_using(e, "renewed: reconnecting (the old certificate stays until this one brings an "
              "Ack)");
    e->trial_started_ms = e->now_ms;
    e->trial_deadline_ms = e->now_ms + clamp(left_ms / 2, TRIAL_MIN_MS, TRIAL_MAX_MS);
    e->hooks->remake_uplink(e->ctx, "reconnecting with a renewed certificate");
    e->phase = P_TRIAL;
}

static void on_reply(struct et_enroll *e, const uint8_t *buf, size_t len)
{
    Edgetel__V1__CertReply *r;
    char err[512];

    if (et_cert_reply_decode(buf, len, &r, err, sizeof(err)) != 0) {
        et_warn("identity", "ignoring an answer that is no certificate reply: %s", err);
        return;
    }
    if (!e->request || r->request_id != e->request_id ||
        (e->phase != P_CLAIM && e->phase != P_ASKED)) {
        /* A late answer to a request given up: the issuer may have said no to the many. */
        if (r->request_id == 0 && r->result == EDGETEL__V1__CERT_RESULT__CERT_RESULT_REFUSED)
            say_refusal(e, "a request", r->reason);
        else
            et_debug("identity", "ignoring an answer to request %" PRIx64, r->request_id);
        goto out;
    }
    if (r->result == EDGETEL__V1__CERT_RESULT__CERT_RESULT_REFUSED) {
        say_refusal(e, e->phase == P_CLAIM ? "the claim" : "the renewal", r->reason);
        later(e, r->retry_after_ms);
        if (e->phase == P_ASKED)
            e->phase = P_READY;
        goto out;
    }
    if (et_identity_accept(e->id, (const char *)r->certificate.data, r->certificate.len,
                           e->wall_s, e->synced, err, sizeof(err)) != 0) {
        et_error("identity", "the certificate that came back is not taken: %s", err);
        later(e, 0);
        if (e->phase == P_ASKED)
            e->phase = P_READY;
        goto out;
    }
    if (e->phase == P_CLAIM)
        enrolled(e);
    else
        renewed(e);
out:
    edgetel__v1__cert_reply__free_unpacked(r, NULL);
}

void et_enroll_on_reply(struct et_enroll *e, const uint8_t *buf, size_t len)
{
    uint8_t *copy;

    if (!e || len > ET_CERT_REPLY_MAX || !(copy = malloc(len ? len : 1)))
        return;
    memcpy(copy, buf, len);
    free(e->answer);
    e->answer = copy;
    e->answer_len = len;
}

/* The request went out: wait for its answer, longer each time it goes again. */
static void asked(struct et_enroll *e)
{
    e->answer_wait_ms = !e->asked_ms ? ANSWER_WAIT_MIN_MS
                        : clamp(e->answer_wait_ms * 2, ANSWER_WAIT_MIN_MS, ANSWER_WAIT_MAX_MS);
    e->asked_ms = e->now_ms;
}

/* Whether the request should go (again) now. */
static bool ask_now(const struct et_enroll *e)
{
    return !e->asked_ms || e->now_ms - e->asked_ms >= e->answer_wait_ms;
}

static void send_request(struct et_enroll *e, struct et_mqtt *m, const char *topic)
{
    int rc = et_mqtt_publish(m, topic, e->request, e->request_len, 1, false);

    if (rc < 0)
        et_debug("identity", "request not published on %s: %s", topic, strerror(-rc));
    else
        asked(e);
}

static void on_claim_event(void *ctx, const struct et_mqtt_event *ev)
{
    struct et_enroll *e = ctx;
    const char *why = ev->reason ? ev->reason : "unknown reason";

    switch (ev->type) {
    case ET_MQTT_CONNECTED:
        et_info("identity", "connected with the claim; asking for %s's certificate",
                e->cfg->device_id);
        e->last_disconnect[0] = '\0';
        if (e->request)
            send_request(e, e->claim, e->claim_csr);
        break;
    case ET_MQTT_DISCONNECTED:
        if (strcmp(why, e->last_disconnect) != 0 &&
            (!e->disconnect_logged_ms ||
             e->now_ms - e->disconnect_logged_ms >= DISCONNECT_LOG_MS)) {
            et_warn("identity", "claim connection to %s:%d: %s (retrying with backoff)",
                    e->cfg->mqtt.host, e->cfg->mqtt.port, why);
            e->disconnect_logged_ms = e->now_ms;
        }
        snprintf(e->last_disconnect, sizeof(e->last_disconnect), "%s", why);
        break;
    case ET_MQTT_MESSAGE:
        if (ev->topic && strcmp(ev->topic, e->claim_issued) == 0)
            et_enroll_on_reply(e, ev->payload, ev->len);
        break;
    case ET_MQTT_PUBLISH_FAILED:
        et_warn("identity", "the broker refused the claim's request on %s: %s", e->claim_csr,
                why);
        break;
    case ET_MQTT_PUBLISHED:
        break;
    }
}

void et_enroll_dispatch(struct et_enroll *e)
{
    if (e && e->claim)
        et_mqtt_dispatch(e->claim, on_claim_event, e);
}

/* The claim, unless it has ended: then say so once and wait for another. */
static bool claim_usable(struct et_enroll *e)
{
    struct et_ca_leaf leaf;
    char err[400], when[32];

    if (et_ca_leaf_read(et_identity_claim_cert(e->id), &leaf, err, sizeof(err)) != 0) {
        et_error("identity", "the claim is not usable: %s", err);
        return false;
    }
    if (leaf.not_after > e->wall_s)
        return true;
    if (strcmp(leaf.serial, e->claim_gone) != 0) {
        iso(leaf.not_after, when);
        et_error("identity", "the claim for %s (serial %s) ended at %s%s: it cannot enroll "
                 "the board. Make a new one: edgetelctl provision %s --boot DIR, and put DIR "
                 "on the boot partition (or its claim.crt and claim.key in %s/identity/)",
                 e->cfg->device_id, leaf.serial, when,
                 e->synced ? "" : " by this board's clock, which is not synchronised (trying "
                 "it all the same)", e->cfg->device_id, e->cfg->data_dir);
        snprintf(e->claim_gone, sizeof(e->claim_gone), "%s", leaf.serial);
    }
    /* A clock that is not synchronised may be wrong: the broker decides. */
    return !e->synced;
}

static int claim_open(struct et_enroll *e)
{
    struct et_mqtt_settings files = e->cfg->mqtt;
    char client[ET_CA_NAME_MAX + 8], err[512];
    struct et_mqtt_cfg mc;
    int rc;

    files.cert_file = (char *)et_identity_claim_cert(e->id);
    files.key_file = (char *)et_identity_claim_key(e->id);
    if ((rc = et_mqtt_settings_check_files(&files, err, sizeof(err)))) {
        et_error("identity", "the claim cannot be used: %s", err);
        return rc;
    }
    snprintf(client, sizeof(client), ET_CA_CLAIM_PREFIX "%s", e->cfg->device_id);
    et_mqtt_cfg_from_settings(&files, client, 4, &mc);
    /* As the broker's (1 MiB): the codec takes no more than a reply's bound anyway. */
    mc.max_packet = ET_WIRE_MAX_MESSAGE;
    if ((rc = et_mqtt_create(&e->claim, e->transport, &mc)) ||
        (rc = et_mqtt_subscribe(e->claim, e->claim_issued, 1)) ||
        (rc = et_mqtt_start(e->claim))) {
        et_error("identity", "cannot set up the claim's connection to %s:%d: %s",
                 e->cfg->mqtt.host, e->cfg->mqtt.port, strerror(-rc));
        claim_close(e);
        return rc;
    }
    return 0;
}

/* ---- the steps -------------------------------------------------------------------------- */

static void start(struct et_enroll *e)
{
    char why[256];

    switch (et_identity_state(e->id, e->wall_s, e->synced, why, sizeof(why))) {
    case ET_ID_READY:
        if (why[0])
            et_warn("identity", "%s: %s; trying it all the same. If the broker refuses it, "
                    "re-provision the board: edgetelctl provision %s --boot DIR, DIR on the "
                    "boot partition (or claim.crt and claim.key in %s/identity/)",
                    e->cfg->device_id, why, e->cfg->device_id, e->cfg->data_dir);
        say_using(e, "connecting");
        e->hooks->remake_uplink(e->ctx, "");
        e->phase = et_identity_on_trial(e->id) ? P_TRIAL : P_READY;
        e->trial_started_ms = e->now_ms;
        e->trial_deadline_ms = e->now_ms + TRIAL_MAX_MS;
        return;
    case ET_ID_CLAIM:
        if (!claim_usable(e))
            break;
        et_info("identity", "%s: %s: enrolling with the claim %s", e->cfg->device_id, why,
                et_identity_claim_cert(e->id));
        if (make_request(e, et_identity_claim_key(e->id)) != 0 || claim_open(e) != 0) {
            e->retry_ms = e->now_ms + CLAIM_LOOK_MS;
            break;
        }
        e->enroll_began_ms = e->now_ms;
        e->phase = P_CLAIM;
        return;
    case ET_ID_NOTHING:
        et_error("identity", "%s cannot connect: %s, and there is no claim. Provision it: "
                 "edgetelctl provision %s --boot DIR and DIR on the boot partition, or "
                 "claim.crt and claim.key in %s/identity/ (looked for every %d s). Collecting "
                 "into the outbox meanwhile", e->cfg->device_id, why, e->cfg->device_id,
                 e->cfg->data_dir, CLAIM_LOOK_MS / 1000);
        break;
    }
    e->phase = P_NOTHING;
    e->retry_ms = e->now_ms + CLAIM_LOOK_MS;
}

static void step_claim(struct et_enroll *e)
{
    if (!claim_usable(e)) {
        claim_close(e);
        forget_request(e);
        e->phase = P_NOTHING;
        e->retry_ms = e->now_ms + CLAIM_LOOK_MS;
        return;
    }
    if (!e->request && e->now_ms >= e->retry_ms &&
        make_request(e, et_identity_claim_key(e->id)) != 0)
        e->retry_ms = e->now_ms + CLAIM_LOOK_MS;
    if (e->request && et_mqtt_connected(e->claim) && ask_now(e))
        send_request(e, e->claim, e->claim_csr);
}

static void step_ready(struct et_enroll *e, struct et_uplink *u)
{
    struct et_uplink_stats st;
    char why[256];

    switch (et_identity_state(e->id, e->wall_s, e->synced, why, sizeof(why))) {
    case ET_ID_READY:
        break;
    case ET_ID_CLAIM:
        /* The certificate ended and a claim was put there: enroll again. */
        e->phase = P_START;
        return;
    case ET_ID_NOTHING:
        if (e->now_ms >= e->retry_ms) {
            et_error("identity", "%s: %s; the broker will refuse it, and there is no claim "
                     "(edgetelctl provision %s --boot DIR)", e->cfg->device_id, why,
                     e->cfg->device_id);
            e->retry_ms = e->now_ms + BACKOFF_MAX_MS;
        }
        return;
    }
    et_uplink_stats(u, &st);
    if (!st.connected || e->now_ms < e->retry_ms ||
        e->wall_s < et_identity_renew_at(e->id, e->cfg->renew_at_pct, e->cfg->renew_before_ms))
        return;
    et_info("identity", "certificate serial %s is due for renewal ([mqtt] renew_at = %s): "
            "asking for a new one", et_identity_leaf(e->id)->serial, e->cfg->renew_at);
    if (make_request(e, NULL) != 0) {
        later(e, 0);
        return;
    }
    e->phase = P_ASKED;
    if (et_uplink_publish_csr(u, e->request, e->request_len) == 0)
        asked(e);
}

/* No answer in time (a lost connection, a busy issuer): the same request again. */
static void step_asked(struct et_enroll *e, struct et_uplink *u)
{
    if (!ask_now(e))
        return;
    if (et_uplink_publish_csr(u, e->request, e->request_len) == 0)
        asked(e);
}

static void step_trial(struct et_enroll *e, struct et_uplink *u)
{
    const struct et_ca_leaf *old = et_identity_current(e->id);
    struct et_uplink_stats st;
    char err[400], serial[ET_CA_LEAF_SERIAL_TEXT];

    et_uplink_stats(u, &st);
    if (st.connected && st.batches_acked > 0) {
        snprintf(serial, sizeof(serial), "%s", old ? old->serial : "-");
        if (et_identity_commit(e->id, err, sizeof(err)) != 0) {
            et_error("identity", "the renewed certificate works but cannot be kept: %s", err);
            return;
        }
        et_info("identity", "the renewed certificate serial %s works (connected, and an Ack "
                "came back): it is the identity now; the old one (serial %s) is deleted",
                et_identity_leaf(e->id)->serial, serial);
        e->phase = P_READY;
        return;
    }
    if (e->now_ms < e->trial_deadline_ms)
        return;
    /* With the old one ended there is nothing to go back to: keep trying the new. */
    if (!old || (e->synced && old->not_after <= e->wall_s)) {
        e->trial_deadline_ms = e->now_ms + TRIAL_MAX_MS;
        return;
    }
    et_warn("identity", "the renewed certificate serial %s brought no Ack within %" PRId64
            " s (%s): back to serial %s; renewal is tried again later",
            et_identity_leaf(e->id)->serial, (e->now_ms - e->trial_started_ms) / 1000,
            st.connected ? "connected, but the aggregator did not answer"
                         : st.last_error[0] ? st.last_error : "not connected", old->serial);
    et_identity_abandon(e->id);
    e->hooks->remake_uplink(e->ctx, "back to the certificate that worked");
    e->phase = P_READY;
    later(e, 0);
}

void et_enroll_step(struct et_enroll *e, const struct et_config *cfg, int64_t now_ms,
                    int64_t wall_s, bool synced, bool may_connect)
{
    struct et_uplink *u;

    if (!e || !may_connect)
        return;
    e->cfg = cfg;
    e->now_ms = now_ms;
    e->wall_s = wall_s;
    e->synced = synced;
    if (e->answer) {
        uint8_t *answer = e->answer;

        e->answer = NULL;
        on_reply(e, answer, e->answer_len);
        free(answer);
    }
    u = e->hooks->uplink(e->ctx);
    switch (e->phase) {
    case P_START:
        start(e);
        break;
    case P_NOTHING:
        if (now_ms >= e->retry_ms) {
            e->retry_ms = now_ms + CLAIM_LOOK_MS;
            if (et_identity_find_claim(e->id))
                start(e);
        }
        break;
    case P_CLAIM:
        step_claim(e);
        break;
    case P_READY:
        if (u)
            step_ready(e, u);
        break;
    case P_ASKED:
        if (u)
            step_asked(e, u);
        break;
    case P_TRIAL:
        if (u)
            step_trial(e, u);
        break;
    }
}
