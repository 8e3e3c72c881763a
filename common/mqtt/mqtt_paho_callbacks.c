/*
 * What Paho calls back with, on its own threads (see mqtt_paho_internal.h
 * for the threads and the lock order): the session is up and the
 * subscriptions are made again, a message arrived, a publish was
 * acknowledged or failed, the connection was lost, the disconnect ended.
 * Each becomes an event on the handle's queue.
 *
 * Every handler has the MQTT 5 shape. MQTT 3.1.1 replies reach the same
 * handlers through the two adapters at the end of this file, the only
 * place that knows the 3.1.1 reply shapes.
 */
#include "mqtt_paho_internal.h"

#include "edgetel/log.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- subscriptions ------------------------------------------------------- */

static void warn_subscription_refused(const struct paho *m, enum MQTTReasonCodes rc,
                                      const char *message)
{
    et_warn(MQTT_LOG, "%s: subscription refused by %s: %s", m->client_id, m->uri,
            rc ? MQTTReasonCode_toString(rc) : message ? message : "no reason given");
}

/* Caller holds m->lock; the last outstanding SUBACK (or none) completes the connect. */
static void subs_done_locked(struct paho *m)
{
    if (__atomic_load_n(&m->connected, __ATOMIC_ACQUIRE) && !m->stopping)
        paho_queue_simple_locked(m, ET_MQTT_CONNECTED, 0, NULL);
}

/* Caller holds m->lock: one SUBACK of the connect's subscriptions is in. */
static void resubscribe_answered_locked(struct paho *m)
{
    if (m->pending_subs > 0 && --m->pending_subs == 0)
        subs_done_locked(m);
}

static void on_resubscribed(void *context, MQTTAsync_successData5 *ok)
{
    struct paho *m = context;

    paho_callback_enter(m);
    pthread_mutex_lock(&m->lock);
    if (ok && ok->reasonCode >= MQTTREASONCODE_UNSPECIFIED_ERROR)
        warn_subscription_refused(m, ok->reasonCode, NULL);
    resubscribe_answered_locked(m);
    pthread_mutex_unlock(&m->lock);
    paho_callback_leave(m);
}

static void on_resubscribe_failed(void *context, MQTTAsync_failureData5 *fail)
{
    struct paho *m = context;

    paho_callback_enter(m);
    pthread_mutex_lock(&m->lock);
    if (fail && fail->code == MQTTASYNC_OPERATION_INCOMPLETE) {
        /* Paho discards outstanding requests when the session closes, and may
         * do so before it reports the lost connection: this session will not
         * become CONNECTED. */
        m->pending_subs = 0;
    } else {
        if (__atomic_load_n(&m->connected, __ATOMIC_ACQUIRE))
            warn_subscription_refused(m, fail ? fail->reasonCode : MQTTREASONCODE_SUCCESS,
                                      fail ? fail->message : NULL);
        resubscribe_answered_locked(m);
    }
    pthread_mutex_unlock(&m->lock);
    paho_callback_leave(m);
}

static void on_late_subscribed(void *context, MQTTAsync_successData5 *ok)
{
    struct paho *m = context;

    paho_callback_enter(m);
    if (ok && ok->reasonCode >= MQTTREASONCODE_UNSPECIFIED_ERROR)
        warn_subscription_refused(m, ok->reasonCode, NULL);
    paho_callback_leave(m);
}

static void on_late_subscribe_failed(void *context, MQTTAsync_failureData5 *fail)
{
    struct paho *m = context;

    paho_callback_enter(m);
    /* Discarded because the session closed: the next connect makes it again. */
    if (__atomic_load_n(&m->connected, __ATOMIC_ACQUIRE) &&
        !(fail && fail->code == MQTTASYNC_OPERATION_INCOMPLETE))
        warn_subscription_refused(m, fail ? fail->reasonCode : MQTTREASONCODE_SUCCESS,
                                  fail ? fail->message : NULL);
    paho_callback_leave(m);
}

/*
 * Paho calls on_connected holding its global mutex, so from there this runs
 * without client_lock (taking it would order Paho's mutex before it, the
 * reverse of et_mqtt_publish). No lock is needed there: the client is never
 * replaced while it is connected. et_mqtt_subscribe takes the read lock.
 */
int paho_subscribe_one(struct paho *m, const char *filter, int qos, bool on_connect)
{
    MQTTAsync_responseOptions opts = MQTTAsync_responseOptions_initializer;
    int rc;

    PAHO_SET_REPLY(opts, m->version, on_connect ? &m->reply_resubscribe : &m->reply_late_subscribe);
    /* Our own publishes on a subscribed filter are delivered back (noLocal = 0):
     * a test or a loopback deployment may rely on it. */
    rc = MQTTAsync_subscribe(m->client, filter, qos, &opts);
    if (rc != MQTTASYNC_SUCCESS) {
        et_warn(MQTT_LOG, "%s: subscribe to \"%s\" failed: %s", m->client_id, filter,
                MQTTAsync_strerror(rc) ? MQTTAsync_strerror(rc) : "unknown error");
        return -EIO;
    }
    return 0;
}

/* ---- the session --------------------------------------------------------- */

/*
 * Over MQTT 5 we told the broker our Maximum Packet Size (max_packet). A
 * broker that then has to drop a QoS 1 message for us may not let go of
 * it: mosquitto 2.0.11 keeps each one in our in-flight window, and after
 * some twenty of them sends us nothing more (tests/integration/
 * test_mqtt_limits.c found it). So the broker must refuse such packets
 * itself when a device publishes them: its own limit, which its CONNACK
 * states (none stated: no limit), must be no larger than ours. Said once.
 */
static void check_broker_packet_limit(struct paho *m, MQTTAsync_successData5 *ok)
{
    size_t ours = m->max_packet + ET_MQTT_HEADER_ROOM;
    int theirs = -1;
    char what[48];

    if (!m->max_packet || m->version < MQTTVERSION_5 || !ok || m->packet_limit_warned)
        return;
    if (MQTTProperties_hasProperty(&ok->properties, MQTTPROPERTY_CODE_MAXIMUM_PACKET_SIZE))
        theirs = MQTTProperties_getNumericValue(&ok->properties,
                                                MQTTPROPERTY_CODE_MAXIMUM_PACKET_SIZE);
    if (theirs > 0 && (size_t)theirs <= ours)
        return;
    m->packet_limit_warned = true;
    if (theirs > 0)
        snprintf(what, sizeof(what), "packets of up to %d bytes", theirs);
    else
        snprintf(what, sizeof(what), "packets of any size");
    et_warn(MQTT_LOG, "%s: %s takes %s from its clients, this client at most %zu: a broker "
            "that must drop messages meant for us may stall delivery to us (mosquitto 2.0.11 "
            "does after about 20 of them). Set the broker's max_packet_size to at most %zu",
            m->client_id, m->uri, what, ours, ours);
}

static void on_connected(void *context, MQTTAsync_successData5 *ok)
{
    struct paho *m = context;
    struct mqtt_sub *copy = NULL;
    size_t n = 0;
    size_t failed = 0;

    paho_callback_enter(m);
    /* Before the first publish of this session; system calls only, no lock
     * needed. The user timeout is 1.5 keepalives, the time Paho gives a
     * PINGRESP: while we publish, a silent partition is noticed that long
     * after the first write into it (docs/ARCHITECTURE.md). */
    paho_set_socket_options(m->port, m->keepalive_s * 1500);
    pthread_mutex_lock(&m->lock);
    if (m->stopping) {
        pthread_mutex_unlock(&m->lock);
        goto out;
    }
    et_info(MQTT_LOG, "%s: connected to %s (MQTT %d)", m->client_id, m->uri,
            ok ? ok->alt.connect.MQTTVersion : 0);
    check_broker_packet_limit(m, ok);
    __atomic_store_n(&m->connected, true, __ATOMIC_RELEASE);
    et_backoff_reset(&m->backoff);
    m->tls_error[0] = '\0';
    m->tls_refused = false;
    m->server_reason[0] = '\0';
    /* Subscribe from a snapshot: Paho must not be called with m->lock held. */
    if (m->n_subs > 0 && (copy = calloc(m->n_subs, sizeof(*copy)))) {
        for (n = 0; n < m->n_subs; n++) {
            copy[n].qos = m->subs[n].qos;
            if (!(copy[n].filter = strdup(m->subs[n].filter)))
                break;
        }
    }
    if (m->n_subs > 0 && n < m->n_subs)
        et_error(MQTT_LOG, "%s: out of memory: %zu of %zu subscriptions not restored",
                 m->client_id, m->n_subs - n, m->n_subs);
    m->pending_subs = (int)n;
    if (n == 0)
        subs_done_locked(m);
    pthread_mutex_unlock(&m->lock);

    for (size_t i = 0; i < n; i++)
        if (paho_subscribe_one(m, copy[i].filter, copy[i].qos, true) != 0)
            failed++;
    if (failed > 0) {
        pthread_mutex_lock(&m->lock);
        if (m->pending_subs > 0) {
            m->pending_subs -= (int)failed;
            if (m->pending_subs <= 0) {
                m->pending_subs = 0;
                subs_done_locked(m);
            }
        }
        pthread_mutex_unlock(&m->lock);
    }
    for (size_t i = 0; i < n; i++)
        free(copy[i].filter);
    free(copy);
out:
    paho_callback_leave(m);
}

void paho_on_server_disconnect(void *context, MQTTProperties *props, enum MQTTReasonCodes rc)
{
    struct paho *m = context;

    /* Paho calls connectionLost right after this; keep the broker's reason for it. */
    paho_callback_enter(m);
    pthread_mutex_lock(&m->lock);
    snprintf(m->server_reason, sizeof(m->server_reason), "broker sent DISCONNECT: 0x%02x %s",
             (unsigned)rc, MQTTReasonCode_toString(rc));
    pthread_mutex_unlock(&m->lock);
    paho_callback_leave(m);
}

void paho_on_connection_lost(void *context, char *cause)
{
    struct paho *m = context;
    char reason[MQTT_REASON_MAX];

    paho_callback_enter(m);
    pthread_mutex_lock(&m->lock);
    snprintf(reason, sizeof(reason), "connection to %s lost: %s", m->uri,
             m->server_reason[0] ? m->server_reason
             : cause ? cause : "socket closed or keepalive expired");
    m->server_reason[0] = '\0';
    m->pending_subs = 0;
    paho_retry_later_locked(m, reason);
    pthread_mutex_unlock(&m->lock);
    paho_callback_leave(m);
}

static void on_disconnect_done(void *context, MQTTAsync_successData5 *ok)
{
    struct paho *m = context;

    paho_callback_enter(m);
    pthread_mutex_lock(&m->lock);
    m->disconnect_done = true;
    pthread_cond_broadcast(&m->wake);
    pthread_mutex_unlock(&m->lock);
    paho_callback_leave(m);
}

/* destroy waits for the disconnect to end, whichever way it ends. */
static void on_disconnect_failed(void *context, MQTTAsync_failureData5 *fail)
{
    on_disconnect_done(context, NULL);
}

/* ---- messages and publishes ---------------------------------------------- */

/* A message is dropped unless one is warned about within this time. */
#define OVERSIZE_WARN_EVERY_MS 60000

/*
 * A message over max_packet: dropped before it is copied (Paho has read it
 * already; nothing can spare that but the broker, told on CONNECT), and
 * counted, with a warning at most once a minute.
 */
static void drop_oversize(struct paho *m, const char *topic, int topic_len, size_t len)
{
    int64_t now = paho_mono_ms();
    uint64_t dropped;
    bool warn;

    pthread_mutex_lock(&m->lock);
    dropped = ++m->oversize_dropped;
    warn = now >= m->oversize_warn_ms;
    if (warn)
        m->oversize_warn_ms = now + OVERSIZE_WARN_EVERY_MS;
    pthread_mutex_unlock(&m->lock);
    if (warn)
        et_warn(MQTT_LOG, "%s: dropped a message of %zu bytes on %.*s: over the %zu byte "
                "limit (max_packet); %" PRIu64 " dropped so far", m->client_id, len,
                topic_len > 0 ? topic_len : (int)strlen(topic), topic, m->max_packet, dropped);
}

int paho_on_message(void *context, char *topic, int topic_len, MQTTAsync_message *msg)
{
    struct paho *m = context;
    struct et_mqtt_event ev = {
        .type = ET_MQTT_MESSAGE,
        .topic = topic,
        .payload = msg->payload,
        .len = msg->payloadlen > 0 ? (size_t)msg->payloadlen : 0,
    };
    char *copy = NULL;
    int rc;

    paho_callback_enter(m);
    if (m->max_packet && ev.len > m->max_packet) {
        drop_oversize(m, topic, topic_len, ev.len);
        MQTTAsync_freeMessage(&msg);
        MQTTAsync_free(topic);
        paho_callback_leave(m);
        return 1;               /* taken: Paho must not offer it again */
    }
    /* A topic with a length of its own need not end in a NUL. */
    if (topic_len > 0 && !(ev.topic = copy = strndup(topic, (size_t)topic_len))) {
        paho_callback_leave(m);
        return 0;               /* Paho keeps the message and offers it again */
    }
    pthread_mutex_lock(&m->lock);
    rc = et_mqtt_queue_push(&m->events, &ev);
    pthread_mutex_unlock(&m->lock);
    free(copy);
    if (rc) {
        paho_callback_leave(m);
        return 0;               /* likewise */
    }
    MQTTAsync_freeMessage(&msg);
    MQTTAsync_free(topic);
    paho_callback_leave(m);
    return 1;
}

static void on_published(void *context, MQTTAsync_successData5 *ok)
{
    struct mqtt_slot *slot = context;
    struct paho *m = slot->m;

    paho_callback_enter(m);
    pthread_mutex_lock(&m->lock);
    if (slot->used) {
        if (ok && ok->reasonCode >= MQTTREASONCODE_UNSPECIFIED_ERROR) {
            char reason[160];

            snprintf(reason, sizeof(reason), "broker refused publish: 0x%02x %s",
                     (unsigned)ok->reasonCode, MQTTReasonCode_toString(ok->reasonCode));
            paho_queue_simple_locked(m, ET_MQTT_PUBLISH_FAILED, slot->token, reason);
        } else {
            paho_queue_simple_locked(m, ET_MQTT_PUBLISHED, slot->token, NULL);
        }
        slot->used = false;
    }
    pthread_mutex_unlock(&m->lock);
    paho_callback_leave(m);
}

static void on_publish_failed(void *context, MQTTAsync_failureData5 *fail)
{
    struct mqtt_slot *slot = context;
    struct paho *m = slot->m;
    char reason[MQTT_REASON_MAX];

    paho_callback_enter(m);
    pthread_mutex_lock(&m->lock);
    if (slot->used) {
        if (fail && fail->reasonCode != MQTTREASONCODE_SUCCESS)
            snprintf(reason, sizeof(reason), "broker refused publish: 0x%02x %s",
                     (unsigned)fail->reasonCode, MQTTReasonCode_toString(fail->reasonCode));
        else if (fail && fail->code == MQTTASYNC_OPERATION_INCOMPLETE)
            snprintf(reason, sizeof(reason),
                     "connection to %s closed before the broker acknowledged", m->uri);
        else
            snprintf(reason, sizeof(reason), "publish failed: %s",
                     fail && fail->message ? fail->message
                     : fail && MQTTAsync_strerror(fail->code) ? MQTTAsync_strerror(fail->code)
                     : "unknown error");
        paho_queue_simple_locked(m, ET_MQTT_PUBLISH_FAILED, slot->token, reason);
        slot->used = false;
    }
    pthread_mutex_unlock(&m->lock);
    paho_callback_leave(m);
}

/* ---- who answers which request ------------------------------------------- */

void paho_replies_init(struct paho *m)
{
    m->reply_connect = (struct paho_reply){ PAHO_REPLY_CONNECT, on_connected,
                                            paho_on_connect_failure, m };
    m->reply_resubscribe = (struct paho_reply){ PAHO_REPLY_SUBSCRIBE, on_resubscribed,
                                                on_resubscribe_failed, m };
    m->reply_late_subscribe = (struct paho_reply){ PAHO_REPLY_SUBSCRIBE, on_late_subscribed,
                                                   on_late_subscribe_failed, m };
    m->reply_disconnect = (struct paho_reply){ PAHO_REPLY_PLAIN, on_disconnect_done,
                                               on_disconnect_failed, m };
    for (int i = 0; i < m->max_inflight; i++)
        m->slots[i].reply = (struct paho_reply){ PAHO_REPLY_PLAIN, on_published,
                                                 on_publish_failed, &m->slots[i] };
}

/*
 * MQTT 3.1.1 replies, in the MQTT 5 shape (reason code "success", since
 * 3.1.1 has none) for the request's own handler. What the 3.1.1 success
 * data holds depends on the request, so the reply's kind says which member
 * of its union to read.
 */
void paho_on_success3(void *context, MQTTAsync_successData *ok)
{
    const struct paho_reply *reply = context;
    MQTTAsync_successData5 data = MQTTAsync_successData5_initializer;

    if (ok)
        data.token = ok->token;
    if (reply->kind == PAHO_REPLY_CONNECT)
        data.alt.connect.MQTTVersion = ok ? ok->alt.connect.MQTTVersion : MQTTVERSION_3_1_1;
    /* A 3.1.1 SUBACK refusal is granted QoS 0x80. */
    if (reply->kind == PAHO_REPLY_SUBSCRIBE && ok && ok->alt.qos == 0x80)
        data.reasonCode = MQTTREASONCODE_UNSPECIFIED_ERROR;
    reply->on_success(reply->context, &data);
}

void paho_on_failure3(void *context, MQTTAsync_failureData *fail)
{
    const struct paho_reply *reply = context;
    MQTTAsync_failureData5 data = MQTTAsync_failureData5_initializer;

    if (fail) {
        data.token = fail->token;
        data.code = fail->code;
        data.message = fail->message;
    }
    reply->on_failure(reply->context, &data);
}
