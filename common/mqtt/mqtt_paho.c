/*
 * The MQTT seam (edgetel/mqtt.h) on Eclipse Paho MQTTAsync: the handle's
 * life cycle, its event queue, and the seam's operations. The threads, the
 * lock order, publish tokens and MQTT 3.1.1 are explained in
 * mqtt_paho_internal.h; connecting is in mqtt_paho_connect.c, Paho's
 * callbacks in mqtt_paho_callbacks.c.
 */
#include "mqtt_paho_internal.h"

#include "edgetel/log.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <unistd.h>

/* ---- time, callback bookkeeping, the event queue ------------------------- */

int64_t paho_mono_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

void paho_deadline_ts(int64_t at_ms, struct timespec *ts)
{
    ts->tv_sec = at_ms / 1000;
    ts->tv_nsec = (long)(at_ms % 1000) * 1000000;
}

void paho_callback_enter(struct paho *m)
{
    pthread_mutex_lock(&m->lock);
    m->active_callbacks++;
    pthread_mutex_unlock(&m->lock);
}

void paho_callback_leave(struct paho *m)
{
    pthread_mutex_lock(&m->lock);
    /* Only destroy waits for the last callback, and it sets stopping
     * first: a broadcast after every callback woke the timer thread for
     * nothing (once a second at 1 s rounds; issue 13's profile). */
    if (--m->active_callbacks == 0 && m->stopping)
        pthread_cond_broadcast(&m->wake);
    pthread_mutex_unlock(&m->lock);
}

void paho_queue_simple_locked(struct paho *m, enum et_mqtt_event_type type, int token,
                              const char *reason)
{
    struct et_mqtt_event ev = { .type = type, .token = token, .reason = reason };

    if (et_mqtt_queue_push(&m->events, &ev) != 0)
        et_error(MQTT_LOG, "%s: out of memory: event %d (token %d) lost", m->client_id,
                 (int)type, token);
}

/* ---- the seam's operations ----------------------------------------------- */

static struct paho *to_paho(struct et_mqtt *base)
{
    return (struct paho *)base;
}

/* The copies create made, and the handle: the last step of create's failure and of destroy. */
static void free_handle(struct paho *m)
{
    free(m->slots);
    free(m->uri);
    free(m->will_payload);
    free(m->will_topic);
    free(m->key_file);
    free(m->cert_file);
    free(m->ca_file);
    free(m->client_id);
    free(m->host);
    free(m);
}

static int dup_opt(char **dst, const char *src)
{
    if (!src) {
        *dst = NULL;
        return 0;
    }
    *dst = strdup(src);
    return *dst ? 0 : -ENOMEM;
}

static int paho_create(void *impl, struct et_mqtt **out_base, const struct et_mqtt_cfg *cfg)
{
    struct paho **out = (struct paho **)out_base;
    char why[MQTT_REASON_MAX];
    pthread_condattr_t cattr;
    struct paho *m;
    bool host_is_v6;
    size_t uri_len;
    uint64_t seed;
    int rc;

    m = calloc(1, sizeof(*m));
    if (!m)
        return -ENOMEM;
    m->events.fd = -1;
    m->port = cfg->port;
    m->tls = cfg->tls;
    m->keepalive_s = cfg->keepalive_s;
    m->max_inflight = cfg->max_inflight;
    m->max_packet = cfg->max_packet;
    m->will_len = cfg->will_len;
    m->will_retain = cfg->will_retain;
    m->version = cfg->mqtt_version == MQTTVERSION_3_1_1 ? MQTTVERSION_3_1_1 : MQTTVERSION_5;
    m->version_auto = cfg->mqtt_version == 0;
    m->next_token = 1;

    rc = -ENOMEM;
    if (dup_opt(&m->host, cfg->host) || dup_opt(&m->client_id, cfg->client_id) ||
        dup_opt(&m->ca_file, cfg->tls ? cfg->ca_file : NULL) ||
        dup_opt(&m->cert_file, cfg->tls ? cfg->cert_file : NULL) ||
        dup_opt(&m->key_file, cfg->tls ? cfg->key_file : NULL) ||
        dup_opt(&m->will_topic, cfg->will_topic))
        goto fail_strings;
    if (cfg->will_topic) {
        m->will_payload = malloc(cfg->will_len ? cfg->will_len : 1);
        if (!m->will_payload)
            goto fail_strings;
        if (cfg->will_len)
            memcpy(m->will_payload, cfg->will_payload, cfg->will_len);
    }
    host_is_v6 = strchr(m->host, ':') != NULL;
    uri_len = strlen(m->host) + sizeof("tcp://[]:65535");
    m->uri = malloc(uri_len);
    if (!m->uri)
        goto fail_strings;
    snprintf(m->uri, uri_len, "%s://%s%s%s:%d", m->tls ? "ssl" : "tcp", host_is_v6 ? "[" : "",
             m->host, host_is_v6 ? "]" : "", m->port);
    m->slots = calloc((size_t)m->max_inflight, sizeof(*m->slots));
    if (!m->slots)
        goto fail_strings;
    for (int i = 0; i < m->max_inflight; i++)
        m->slots[i].m = m;
    paho_replies_init(m);
    /* Each client its own schedule, so a fleet spreads out (backoff.h). */
    if (getrandom(&seed, sizeof(seed), GRND_NONBLOCK) != (ssize_t)sizeof(seed))
        seed = (uint64_t)paho_mono_ms() ^ ((uint64_t)getpid() << 32) ^ (uint64_t)(uintptr_t)m;
    rc = et_backoff_init(&m->backoff, cfg->min_backoff_ms, cfg->max_backoff_ms,
                         cfg->max_backoff_refused_ms ? cfg->max_backoff_refused_ms
                                                     : cfg->max_backoff_ms, seed);
    if (rc)
        goto fail_strings;

    rc = et_mqtt_queue_init(&m->events);
    if (rc)
        goto fail_strings;
    rc = -pthread_mutex_init(&m->lock, NULL);
    if (rc)
        goto fail_fd;
    /* The timer waits on CLOCK_MONOTONIC so a wall-clock step at NTP sync
     * neither fires every retry at once nor delays one by hours. */
    pthread_condattr_init(&cattr);
    pthread_condattr_setclock(&cattr, CLOCK_MONOTONIC);
    rc = -pthread_cond_init(&m->wake, &cattr);
    pthread_condattr_destroy(&cattr);
    if (rc)
        goto fail_mutex;

    rc = -pthread_rwlock_init(&m->client_lock, NULL);
    if (rc)
        goto fail_cond;
    rc = paho_make_client(m, m->version, why, sizeof(why));
    if (rc) {
        et_error(MQTT_LOG, "%s: %s", m->client_id, why);
        goto fail_rwlock;
    }
    if (!m->tls)
        et_warn(MQTT_LOG, "%s: TLS is OFF for %s: traffic and identity are unprotected",
                m->client_id, m->uri);
    *out = m;
    return 0;

fail_rwlock:
    pthread_rwlock_destroy(&m->client_lock);
fail_cond:
    pthread_cond_destroy(&m->wake);
fail_mutex:
    pthread_mutex_destroy(&m->lock);
fail_fd:
    et_mqtt_queue_fini(&m->events);
fail_strings:
    free_handle(m);
    return rc;
}

static int paho_start(struct et_mqtt *base)
{
    struct paho *m = to_paho(base);
    int rc = 0;

    pthread_mutex_lock(&m->lock);
    if (m->started || m->stopping) {
        rc = -EALREADY;
        goto out;
    }
    rc = -pthread_create(&m->timer, NULL, paho_timer_main, m);
    if (rc)
        goto out;
    m->timer_running = true;
    m->started = true;
    m->connect_due = true;
    m->connect_at_ms = paho_mono_ms();
    pthread_cond_broadcast(&m->wake);
out:
    pthread_mutex_unlock(&m->lock);
    return rc;
}

static int paho_fd(const struct et_mqtt *base)
{
    return ((const struct paho *)base)->events.fd;
}

static int paho_dispatch(struct et_mqtt *base, et_mqtt_handler handler, void *ctx)
{
    struct paho *m = to_paho(base);
    struct et_mqtt_queued *list;

    /* Take the whole queue and clear the descriptor under the lock, so an
     * event queued after this point makes the descriptor readable again. */
    pthread_mutex_lock(&m->lock);
    list = et_mqtt_queue_take(&m->events);
    pthread_mutex_unlock(&m->lock);
    return et_mqtt_queue_run(list, handler, ctx);
}

static int paho_subscribe(struct et_mqtt *base, const char *filter, int qos)
{
    struct paho *m = to_paho(base);
    struct mqtt_sub *grown;
    bool now;
    size_t i;

    pthread_mutex_lock(&m->lock);
    for (i = 0; i < m->n_subs; i++) {
        if (strcmp(m->subs[i].filter, filter) == 0) {
            m->subs[i].qos = qos;
            break;
        }
    }
    if (i == m->n_subs) {
        if (m->n_subs == m->cap_subs) {
            size_t cap = m->cap_subs ? m->cap_subs * 2 : 4;

            grown = realloc(m->subs, cap * sizeof(*grown));
            if (!grown)
                goto nomem;
            m->subs = grown;
            m->cap_subs = cap;
        }
        m->subs[m->n_subs].filter = strdup(filter);
        if (!m->subs[m->n_subs].filter)
            goto nomem;
        m->subs[m->n_subs].qos = qos;
        m->n_subs++;
    }
    now = __atomic_load_n(&m->connected, __ATOMIC_ACQUIRE);
    pthread_mutex_unlock(&m->lock);
    /* If the connection drops before the SUBACK, the next connect makes it again. */
    if (now) {
        pthread_rwlock_rdlock(&m->client_lock);
        paho_subscribe_one(m, filter, qos, false);
        pthread_rwlock_unlock(&m->client_lock);
    }
    return 0;

nomem:
    pthread_mutex_unlock(&m->lock);
    return -ENOMEM;
}

static int paho_publish(struct et_mqtt *base, const char *topic, const void *payload, size_t len,
                        int qos, bool retain)
{
    struct paho *m = to_paho(base);
    MQTTAsync_responseOptions opts = MQTTAsync_responseOptions_initializer;
    struct mqtt_slot *slot = NULL;
    int token;
    int rc;

    /* The front (mqtt.c) has checked the topic, qos and payload. */
    pthread_mutex_lock(&m->lock);
    if (!__atomic_load_n(&m->connected, __ATOMIC_ACQUIRE) || m->stopping) {
        pthread_mutex_unlock(&m->lock);
        return -ENOTCONN;
    }
    if (qos > 0) {
        for (int i = 0; i < m->max_inflight; i++) {
            if (!m->slots[i].used) {
                slot = &m->slots[i];
                break;
            }
        }
        if (!slot) {
            pthread_mutex_unlock(&m->lock);
            return -EAGAIN;
        }
    }
    token = m->next_token;
    m->next_token = m->next_token == INT_MAX ? 1 : m->next_token + 1;
    if (slot) {
        slot->used = true;
        slot->token = token;
        PAHO_SET_REPLY(opts, m->version, &slot->reply);
    }
    pthread_mutex_unlock(&m->lock);

    pthread_rwlock_rdlock(&m->client_lock);
    rc = MQTTAsync_send(m->client, topic, (int)len, payload, qos, retain, &opts);
    pthread_rwlock_unlock(&m->client_lock);
    if (rc == MQTTASYNC_SUCCESS)
        return token;

    if (slot) {
        pthread_mutex_lock(&m->lock);
        slot->used = false;
        pthread_mutex_unlock(&m->lock);
    }
    switch (rc) {
    case MQTTASYNC_DISCONNECTED:
        return -ENOTCONN;
    case MQTTASYNC_MAX_MESSAGES_INFLIGHT:
    case MQTTASYNC_MAX_BUFFERED_MESSAGES:
    case MQTTASYNC_NO_MORE_MSGIDS:
        return -EAGAIN;
    case MQTTASYNC_BAD_UTF8_STRING:
    case MQTTASYNC_BAD_QOS:
    case MQTTASYNC_NULL_PARAMETER:
        return -EINVAL;
    default:
        et_warn(MQTT_LOG, "%s: publish to \"%s\" failed: %s (Paho %d)", m->client_id, topic,
                MQTTAsync_strerror(rc) ? MQTTAsync_strerror(rc) : "unknown error", rc);
        return -EIO;
    }
}

static bool paho_connected(const struct et_mqtt *base)
{
    const struct paho *m = (const struct paho *)base;

    return __atomic_load_n(&m->connected, __ATOMIC_ACQUIRE);
}

static void paho_destroy(struct et_mqtt *base, int timeout_ms)
{
    struct paho *m = to_paho(base);
    MQTTAsync_disconnectOptions disc5 = MQTTAsync_disconnectOptions_initializer5;
    MQTTAsync_disconnectOptions disc3 = MQTTAsync_disconnectOptions_initializer;
    MQTTAsync_disconnectOptions disc;
    struct timespec ts;

    pthread_mutex_lock(&m->lock);
    m->stopping = true;
    m->connect_due = false;
    pthread_cond_broadcast(&m->wake);
    pthread_mutex_unlock(&m->lock);
    if (m->timer_running)
        pthread_join(m->timer, NULL);

    /* A clean DISCONNECT (reason 0) tells the broker not to send the will. */
    disc = m->version >= MQTTVERSION_5 ? disc5 : disc3;
    PAHO_SET_REPLY(disc, m->version, &m->reply_disconnect);
    disc.timeout = timeout_ms;
    if (m->client && MQTTAsync_isConnected(m->client) &&
        MQTTAsync_disconnect(m->client, &disc) == MQTTASYNC_SUCCESS) {
        /* Paho gives up after timeout_ms itself; the margin covers its own scheduling. */
        paho_deadline_ts(paho_mono_ms() + timeout_ms + 1000, &ts);
        pthread_mutex_lock(&m->lock);
        while (!m->disconnect_done)
            if (pthread_cond_timedwait(&m->wake, &m->lock, &ts) == ETIMEDOUT)
                break;
        pthread_mutex_unlock(&m->lock);
    }
    __atomic_store_n(&m->connected, false, __ATOMIC_RELEASE);
    if (m->client)
        MQTTAsync_destroy(&m->client);

    /* Paho runs some callbacks outside its own lock; wait until none is inside ours. */
    pthread_mutex_lock(&m->lock);
    while (m->active_callbacks > 0)
        pthread_cond_wait(&m->wake, &m->lock);
    pthread_mutex_unlock(&m->lock);

    for (size_t i = 0; i < m->n_subs; i++)
        free(m->subs[i].filter);
    free(m->subs);
    pthread_rwlock_destroy(&m->client_lock);
    pthread_cond_destroy(&m->wake);
    pthread_mutex_destroy(&m->lock);
    et_mqtt_queue_fini(&m->events);
    free_handle(m);
}

static const struct et_mqtt_ops et_mqtt_paho_ops = {
    .name = "paho",
    .create = paho_create,
    .start = paho_start,
    .fd = paho_fd,
    .dispatch = paho_dispatch,
    .subscribe = paho_subscribe,
    .publish = paho_publish,
    .connected = paho_connected,
    .destroy = paho_destroy,
};

const struct et_mqtt_transport *et_mqtt_paho(void)
{
    static const struct et_mqtt_transport paho = { .ops = &et_mqtt_paho_ops, .impl = NULL };

    return &paho;
}
