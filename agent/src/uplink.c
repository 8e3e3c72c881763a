/*
 * The uplink's life cycle, its Status messages, the seam's events and the
 * aggregator's Acks. Sending is in uplink_send.c; the contract in uplink.h.
 */
#include "uplink_internal.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "edgetel/config_wire.h"
#include "edgetel/log.h"
#include "edgetel/platform.h"

/* ---- status --------------------------------------------------------------- */

static int status_encode(struct et_uplink *u, bool online, const char *reason,
                         uint8_t **out, size_t *len)
{
    struct et_status st = { .device_id = u->cfg->device_id };

    u->fill(u->fill_ctx, &st);
    st.online = online;
    st.reason = reason;
    st.stream_id = et_outbox_stream_id(u->outbox);
    return et_wire_encode_status(&st, out, len);
}

void et_uplink_status(struct et_uplink *u, bool online, const char *reason)
{
    uint8_t *buf;
    size_t len;

    if (!u || !u->connected || status_encode(u, online, reason, &buf, &len) != 0)
        return;
    int rc = et_mqtt_publish(u->mqtt, u->topic_status, buf, len, 1, true);

    if (rc < 0)
        et_debug("uplink", "status not published: %s", strerror(-rc));
    free(buf);
}

/* ---- receiving -------------------------------------------------------------------- */

static void stream_text(const uint8_t *id, char *out, size_t cap)
{
    for (size_t i = 0, used = 0; i < ET_STREAM_ID_LEN && used + 3 <= cap; i++)
        used += (size_t)snprintf(out + used, cap - used, "%02x", id[i]);
}

/*
 * What of an Ack this outbox may act on, by the stream it names (see
 * "Streams" in edgetel/outbox.h): all of it for the outbox's own stream;
 * for the legacy stream (batches made before the outbox had a stream) only
 * seqs below the stream's first; nothing for any other stream. An Ack for
 * another stream was meant for an earlier life of this device's data (a
 * board re-flashed with the same device id): acting on it would delete
 * rows of the new stream that were never stored. Narrows acked_through
 * and seqs in place; false when nothing is left to act on.
 */
static bool ack_in_stream(struct et_uplink *u, Edgetel__V1__Ack *ack)
{
    const uint8_t *own = et_outbox_stream_id(u->outbox);
    uint64_t first = et_outbox_stream_first_seq(u->outbox);
    char theirs[2 * ET_STREAM_ID_LEN + 1], ours[2 * ET_STREAM_ID_LEN + 1];
    size_t kept = 0;

    if (ack->stream_id.len == ET_STREAM_ID_LEN &&
        memcmp(ack->stream_id.data, own, ET_STREAM_ID_LEN) == 0)
        return true;
    if (ack->stream_id.len == 0 && first > 1) {
        if (ack->acked_through >= first)
            ack->acked_through = first - 1;
        for (size_t i = 0; i < ack->n_seqs; i++)
            if (ack->seqs[i] < first)
                ack->seqs[kept++] = ack->seqs[i];
        ack->n_seqs = kept;
        return true;
    }
    /* Once each: a broker may hold many such Acks. */
    stream_text(own, ours, sizeof(ours));
    if (ack->stream_id.len == 0) {
        if (!u->legacy_said)
            et_warn("uplink", "ignoring acks without a stream id on %s: this outbox (stream %s) "
                    "holds no batches from before streams; is the aggregator older than this "
                    "agent? (upgrade aggregators first)", u->topic_ack, ours);
        u->legacy_said = true;
    } else if (!u->foreign_said ||
               memcmp(u->foreign_stream, ack->stream_id.data, ET_STREAM_ID_LEN) != 0) {
        stream_text(ack->stream_id.data, theirs, sizeof(theirs));
        et_warn("uplink", "ignoring acks for stream %s on %s: this outbox is stream %s, so "
                "they are for an earlier life of this device's data (a re-flashed board?)",
                theirs, u->topic_ack, ours);
        memcpy(u->foreign_stream, ack->stream_id.data, ET_STREAM_ID_LEN);
        u->foreign_said = true;
    }
    return false;
}

static void handle_ack(struct et_uplink *u, const void *payload, size_t len, int64_t now_ms)
{
    Edgetel__V1__Ack *ack;
    char err[160];
    int deleted;

    if (et_wire_decode_ack(payload, len, &ack, err, sizeof(err)) != 0) {
        et_warn("uplink", "ignoring malformed ack on %s: %s", u->topic_ack, err);
        return;
    }
    if (strcmp(ack->device_id, u->cfg->device_id) != 0) {
        et_warn("uplink", "ignoring ack for device \"%s\" on %s", ack->device_id, u->topic_ack);
        goto out;
    }
    if (!ack_in_stream(u, ack))
        goto out;
    if (ack->dict_wanted)
        uplink_dict_wanted(u, ack->dict_wanted, ack->dict_wanted_seq);
    else if (ack->acked_through || ack->n_seqs)
        u->dict_wanted = 0;     /* a batch was stored: the aggregator has the dictionary */
    /* Batches held in memory: delivered, whether or not the outbox can delete its rows. */
    u->batches_acked += u->batcher ? et_batcher_ack(u->batcher, ack->acked_through, ack->seqs,
                                                    ack->n_seqs) : 0;
    deleted = et_outbox_ack(u->outbox, ack->acked_through, ack->seqs, ack->n_seqs);
    if (deleted < 0) {
        /* Said once until it works again: every Ack of a window tries. The
         * rows stay; their batches go again and are acknowledged again. */
        if (!u->ack_delete_failing)
            et_error("outbox", "cannot delete acknowledged batches: %s; they stay until it can",
                     strerror(-deleted));
        u->ack_delete_failing = true;
        goto out;
    }
    u->ack_delete_failing = false;
    u->batches_acked += (uint64_t)deleted;
    for (size_t i = 0; i < u->n_inflight;) {
        uint64_t seq = u->inflight[i].seq;
        bool covered = seq <= ack->acked_through;

        for (size_t k = 0; !covered && k < ack->n_seqs; k++)
            covered = ack->seqs[k] == seq;
        if (covered) {
            if (!u->inflight[i].again)
                uplink_rtt_sample(u, now_ms - u->inflight[i].sent_ms);
            uplink_inflight_remove_at(u, i);
        } else {
            i++;
        }
    }
    et_debug("uplink", "ack through %" PRIu64 " (+%zu): %d batches deleted",
             (uint64_t)ack->acked_through, ack->n_seqs, deleted);
    et_uplink_pump(u, now_ms);
out:
    edgetel__v1__ack__free_unpacked(ack, NULL);
}

static void on_connected(struct et_uplink *u, int64_t now_ms)
{
    struct et_outbox_stats st = { 0 };

    u->connected = true;
    u->connects++;
    u->n_inflight = 0;
    u->live_from = u->batcher ? et_batcher_next_seq(u->batcher) : et_outbox_next_seq(u->outbox);
    u->memory_cursor = 0;
    u->live_cursor = 0;
    u->backlog_cursor = 0;
    u->outbox_idle = false;
    u->drain_report_ms = now_ms;
    uplink_backlog_rows(u, &u->drain_left_at_report);
    u->drain_left = u->drain_left_at_report;
    u->drain_eta_s = -1;
    u->last_disconnect[0] = '\0';
    u->last_disconnect_log_ms = 0;
    et_outbox_stats(u->outbox, &st);
    et_info("uplink", "connected to %s:%d; %" PRIu64 " batches waiting", u->cfg->mqtt.host,
            u->cfg->mqtt.port, st.batches);
    et_uplink_status(u, true, u->connect_note[0] ? u->connect_note : NULL);
    et_uplink_pump(u, now_ms);
}

static void on_disconnected(struct et_uplink *u, const char *reason, int64_t now_ms)
{
    const char *why = reason ? reason : "unknown reason";

    /* Each retry reports again, and a refused handshake may alternate
     * between two reasons: warn when the connection is lost and at the
     * first failed connect; then a different reason at most once a minute,
     * and the same reason again only at debug level (uplink.h). */
    if (u->connected || (strcmp(why, u->last_disconnect) != 0 &&
                         now_ms - u->last_disconnect_log_ms >= DISCONNECT_LOG_MS) ||
        u->last_disconnect_log_ms == 0) {
        et_warn("uplink", "%s %s:%d: %s (retrying with backoff)",
                u->connected ? "lost connection to" : "cannot connect to",
                u->cfg->mqtt.host, u->cfg->mqtt.port, why);
        u->last_disconnect_log_ms = now_ms;
    } else {
        et_debug("uplink", "cannot connect to %s:%d: %s", u->cfg->mqtt.host, u->cfg->mqtt.port,
                 why);
    }
    snprintf(u->last_disconnect, sizeof(u->last_disconnect), "%s", why);
    u->connected = false;
    /* What was in flight goes again after the reconnect: no round trips from it. */
    for (size_t i = 0; i < u->n_inflight; i++)
        uplink_note_resent(u, u->inflight[i].seq);
    u->n_inflight = 0;
}

static void on_mqtt_event(void *ctx, const struct et_mqtt_event *ev)
{
    struct et_uplink *u = ctx;
    int64_t now_ms = et_time_mono_ms();

    switch (ev->type) {
    case ET_MQTT_CONNECTED:
        on_connected(u, now_ms);
        break;
    case ET_MQTT_DISCONNECTED:
        on_disconnected(u, ev->reason, now_ms);
        break;
    case ET_MQTT_MESSAGE:
        if (ev->topic && strcmp(ev->topic, u->topic_ack) == 0)
            handle_ack(u, ev->payload, ev->len, now_ms);
        else if (ev->topic && strcmp(ev->topic, u->topic_config) == 0 && u->on_config)
            u->on_config(u->config_ctx, ev->payload, ev->len);
        else if (ev->topic && strcmp(ev->topic, u->topic_issued) == 0 && u->on_cert)
            u->on_cert(u->cert_ctx, ev->payload, ev->len);
        else
            et_debug("uplink", "ignoring message on %s", ev->topic ? ev->topic : "?");
        break;
    case ET_MQTT_PUBLISHED:
        break;
    case ET_MQTT_PUBLISH_FAILED:
        /* The batch stays in the outbox; the ack timeout sends it again. */
        et_debug("uplink", "publish %d failed: %s", ev->token, ev->reason ? ev->reason : "?");
        break;
    }
}

void et_uplink_dispatch(struct et_uplink *u)
{
    if (u)
        et_mqtt_dispatch(u->mqtt, on_mqtt_event, u);
}

int et_uplink_fd(const struct et_uplink *u)
{
    return u ? et_mqtt_fd(u->mqtt) : -1;
}

/* ---- life cycle -------------------------------------------------------------------- */

static int make_topics(struct et_uplink *u, char *err, size_t errlen)
{
    const char *root = u->cfg->topic_root, *dev = u->cfg->device_id;
    int n1 = snprintf(u->topic_telemetry, TOPIC_MAX, "%s/v1/%s/telemetry", root, dev);
    int n2 = snprintf(u->topic_ack, TOPIC_MAX, "%s/v1/%s/ack", root, dev);
    int n3 = snprintf(u->topic_status, TOPIC_MAX, "%s/v1/%s/status", root, dev);
    int n4 = snprintf(u->topic_config, TOPIC_MAX, "%s/v1/%s/config", root, dev);
    int n5 = snprintf(u->topic_report, TOPIC_MAX, "%s/v1/%s/config/report", root, dev);
    int n6 = snprintf(u->topic_csr, TOPIC_MAX, "%s/v1/%s/cert/csr", root, dev);
    int n7 = snprintf(u->topic_issued, TOPIC_MAX, "%s/v1/%s/cert/issued", root, dev);

    if (n1 >= TOPIC_MAX || n2 >= TOPIC_MAX || n3 >= TOPIC_MAX || n4 >= TOPIC_MAX ||
        n5 >= TOPIC_MAX || n6 >= TOPIC_MAX || n7 >= TOPIC_MAX) {
        snprintf(err, errlen, "topic root \"%s\" is too long", root);
        return -EINVAL;
    }
    return 0;
}

static int make_client(struct et_uplink *u, const struct et_uplink_tls *tls,
                       const struct et_mqtt_transport *transport, char *err, size_t errlen)
{
    const struct et_config *cfg = u->cfg;
    struct et_mqtt_cfg mc;
    uint8_t *will = NULL;
    size_t will_len = 0;
    int rc;

    /* Room for the Status beside a full window of batches. */
    et_mqtt_cfg_from_settings(&cfg->mqtt, cfg->device_id, (int)cfg->max_inflight + 4, &mc);
    if (tls) {
        mc.cert_file = tls->cert_file;
        mc.key_file = tls->key_file;
    }
    /* Acks and signed configs: none is larger (room for the MQTT header). */
    mc.max_packet = (ET_WIRE_MAX_MESSAGE > ET_CONFIG_SIGNED_MAX ? ET_WIRE_MAX_MESSAGE
                                                                : ET_CONFIG_SIGNED_MAX) + 1024;
    mc.will_topic = u->topic_status;
    mc.will_retain = true;
    rc = status_encode(u, false, "connection lost (last will)", &will, &will_len);
    if (rc)
        return rc;
    mc.will_payload = will;
    mc.will_len = will_len;
    rc = et_mqtt_create(&u->mqtt, transport, &mc);
    free(will);
    if (rc) {
        snprintf(err, errlen, "cannot set up MQTT client for %s:%d: %s", cfg->mqtt.host,
                 cfg->mqtt.port, strerror(-rc));
        return rc;
    }
    rc = et_mqtt_subscribe(u->mqtt, u->topic_ack, 1);
    if (rc) {
        snprintf(err, errlen, "cannot subscribe to %s: %s", u->topic_ack, strerror(-rc));
        return rc;
    }
    rc = et_mqtt_subscribe(u->mqtt, u->topic_config, 1);
    if (rc)
        snprintf(err, errlen, "cannot subscribe to %s: %s", u->topic_config, strerror(-rc));
    return rc;
}

int et_uplink_create(struct et_uplink **out, const struct et_config *cfg,
                     const struct et_uplink_tls *tls,
                     const struct et_mqtt_transport *transport, struct et_outbox *outbox,
                     struct et_batcher *batcher, const struct et_clock *clock,
                     et_uplink_status_fill fill, void *fill_ctx, char *err, size_t errlen)
{
    struct et_mqtt_settings files = cfg->mqtt;
    struct et_uplink *u;
    int rc;

    *out = NULL;
    if (!cfg->mqtt.host || !*cfg->mqtt.host) {
        /* A board may collect before it has a broker: all goes to the
         * outbox, within its quota, until a host is configured. */
        et_warn("uplink", "[mqtt] host is not set: collecting into the outbox only, "
                "sending nothing");
        return 0;
    }
    if (cfg->mqtt.insecure) {
        et_warn("uplink", "[mqtt] insecure = true: telemetry goes to %s:%d as PLAIN TEXT, "
                "without authentication. Use only on a closed test network.",
                cfg->mqtt.host, cfg->mqtt.port);
    } else {
        if (tls) {
            files.cert_file = (char *)tls->cert_file;
            files.key_file = (char *)tls->key_file;
        }
        if (!files.cert_file || !files.key_file) {
            snprintf(err, errlen, "[mqtt] cert and key: none to connect with");
            return -EINVAL;
        }
        if ((rc = et_mqtt_settings_check_files(&files, err, errlen)) != 0)
            return rc;
    }
    u = calloc(1, sizeof(*u));
    if (!u)
        return -ENOMEM;
    u->cfg = cfg;
    u->outbox = outbox;
    u->batcher = batcher;
    u->clock = clock;
    u->fill = fill;
    u->fill_ctx = fill_ctx;
    u->drain_eta_s = -1;
    u->rto_ms = UPLINK_INITIAL_RTO(cfg);
    rc = -ENOMEM;
    u->inflight = calloc(cfg->max_inflight ? cfg->max_inflight : 1, sizeof(*u->inflight));
    if (!u->inflight)
        goto fail;
    if ((rc = make_topics(u, err, errlen)) || (rc = make_client(u, tls, transport, err, errlen)))
        goto fail;
    *out = u;
    return 0;
fail:
    et_uplink_destroy(u);
    return rc;
}

int et_uplink_start(struct et_uplink *u, const char *note)
{
    int rc = et_mqtt_start(u->mqtt);

    if (rc) {
        et_error("uplink", "cannot start MQTT client: %s", strerror(-rc));
        return rc;
    }
    snprintf(u->connect_note, sizeof(u->connect_note), "%s", note ? note : "");
    u->started = true;
    return 0;
}

bool et_uplink_started(const struct et_uplink *u)
{
    return u && u->started;
}

void et_uplink_stats(const struct et_uplink *u, struct et_uplink_stats *out)
{
    *out = (struct et_uplink_stats){ .backlog_eta_s = -1, .last_error = "" };
    if (!u)
        return;
    *out = (struct et_uplink_stats){
        .connected = u->connected,
        .connects = u->connects,
        .last_error = u->last_disconnect,
        .inflight = u->n_inflight,
        .batches_sent = u->batches_sent,
        .batches_acked = u->batches_acked,
        .resends = u->resends,
        .backlog_left = u->drain_left,
        .backlog_eta_s = u->drain_eta_s,
    };
}

void et_uplink_stop(struct et_uplink *u, const char *why)
{
    if (!u)
        return;
    et_uplink_status(u, false, why);
    et_uplink_destroy(u);
}

void et_uplink_on_config(struct et_uplink *u, et_uplink_config_fn fn, void *ctx)
{
    if (!u)
        return;
    u->on_config = fn;
    u->config_ctx = ctx;
}

int et_uplink_on_cert(struct et_uplink *u, et_uplink_cert_fn fn, void *ctx)
{
    if (!u)
        return 0;
    if (!u->on_cert) {
        int rc = et_mqtt_subscribe(u->mqtt, u->topic_issued, 1);

        if (rc)
            return rc;
    }
    u->on_cert = fn;
    u->cert_ctx = ctx;
    return 0;
}

int et_uplink_publish_csr(struct et_uplink *u, const uint8_t *buf, size_t len)
{
    int rc;

    if (!u || !u->connected)
        return -ENOTCONN;
    rc = et_mqtt_publish(u->mqtt, u->topic_csr, buf, len, 1, false);
    return rc < 0 ? rc : 0;
}

int et_uplink_publish_report(struct et_uplink *u, const uint8_t *buf, size_t len)
{
    int rc;

    if (!u || !u->connected)
        return -ENOTCONN;
    rc = et_mqtt_publish(u->mqtt, u->topic_report, buf, len, 1, true);
    return rc < 0 ? rc : 0;
}

void et_uplink_retarget(struct et_uplink *u, const struct et_config *cfg)
{
    struct inflight *grown;

    if (!u)
        return;
    if (cfg->max_inflight > u->cfg->max_inflight) {
        grown = realloc(u->inflight, cfg->max_inflight * sizeof(*u->inflight));
        if (!grown)
            return;   /* keeps the old config's window, which still fits */
        u->inflight = grown;
    }
    u->cfg = cfg;
    if (u->rto_ms > cfg->ack_timeout_ms)
        u->rto_ms = cfg->ack_timeout_ms;
}

void et_uplink_destroy(struct et_uplink *u)
{
    if (!u)
        return;
    et_mqtt_destroy(u->mqtt, SHUTDOWN_TIMEOUT_MS);
    free(u->inflight);
    free(u);
}
