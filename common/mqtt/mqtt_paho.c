/*
 * The MQTT seam (edgetel/mqtt.h) on Eclipse Paho MQTTAsync, MQTT 5.
 *
 * Threads and locks:
 *  - Paho calls back on its own threads. Every callback takes m->lock only
 *    to queue an event (or to update the connection state) and never calls
 *    Paho while holding it.
 *  - Our own calls into Paho (connect, subscribe, send, disconnect) are made
 *    WITHOUT m->lock held. Paho holds its global mutex while it calls most
 *    callbacks, so the lock order is "Paho's mutex, then m->lock", and
 *    "client_lock, then Paho's mutex" (see subscribe_one).
 *  - One small timer thread owns reconnecting: it sleeps on m->wake until a
 *    connect is due or the handle is being destroyed.
 *
 * Paho's automatic reconnect is not used: its delays are whole seconds with
 * no jitter, and the contract in mqtt.h asks for jittered exponential
 * backoff in milliseconds.
 *
 * Publish tokens are our own counter, not Paho's message ids: Paho resets
 * its ids when a clean session ends, so an id could name two publishes.
 * Each outstanding QoS>0 publish holds one slot of a table sized by
 * max_inflight; the slot is Paho's callback context and is released by the
 * first of onSuccess5/onFailure5. That table is also what makes
 * et_mqtt_publish return -EAGAIN.
 *
 * Across a lost connection (clean start, session expiry 0): publishes
 * already written to the socket fail at once (Paho discards them with
 * MQTTASYNC_OPERATION_INCOMPLETE, which becomes PUBLISH_FAILED); publishes
 * still in Paho's queue are written after the next connect and end in
 * PUBLISHED or PUBLISH_FAILED then. Either way every token gets its event.
 *
 * MQTT 3.1.1 (cfg->mqtt_version 4, or the fallback when the broker refuses
 * MQTT 5 as an unknown protocol version) uses Paho's 3.1.1 callback
 * signatures; small adapters turn them into the MQTT 5 shapes so there is
 * one set of handlers. Paho fixes the version when the client is created,
 * so falling back means replacing the Paho client (see client_lock).
 */
#include "edgetel/mqtt.h"

#include "edgetel/backoff.h"
#include "edgetel/log.h"

#include <MQTTAsync.h>

#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/random.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define MQTT_LOG "mqtt"
#define MQTT_REASON_MAX 512
#define MQTT_CONNECT_TIMEOUT_S 20
/* Paho's command queue holds every request not yet written to the socket. */
#define MQTT_MIN_BUFFERED 100

struct mqtt_event {
    struct mqtt_event *next;
    enum et_mqtt_event_type type;
    int token;
    char *topic;
    void *payload;
    size_t len;
    char *reason;
};

struct mqtt_sub {
    char *filter;
    int qos;
};

struct mqtt_slot {
    struct paho *m;
    int token;
    bool used;
};

struct paho {
    struct et_mqtt base;        /* first: the seam's handle */
    /* Copied configuration, read-only after create. */
    char *host;
    int port;
    char *client_id;
    bool tls;
    char *ca_file;
    char *cert_file;
    char *key_file;
    int keepalive_s;
    int max_inflight;
    char *will_topic;
    void *will_payload;
    size_t will_len;
    bool will_retain;
    int version;                /* MQTTVERSION_5 or MQTTVERSION_3_1_1; see client_lock */
    bool version_auto;          /* MQTT 5, falling back to 3.1.1 if the broker has no 5 */
    char *uri;

    /* The Paho client is replaced (write lock, timer thread only) when
     * falling back to 3.1.1; whoever calls Paho on it holds the read lock. */
    pthread_rwlock_t client_lock;
    MQTTAsync client;
    int event_fd;

    pthread_mutex_t lock;
    pthread_cond_t wake;        /* timer thread, disconnect completion, callbacks drained */
    pthread_t timer;
    bool timer_running;

    /* Everything below is guarded by lock. */
    struct mqtt_event *head;
    struct mqtt_event **tail;
    bool started;
    bool stopping;
    bool connected;             /* also read without the lock by et_mqtt_connected */
    bool connect_due;
    int64_t connect_at_ms;      /* CLOCK_MONOTONIC */
    struct et_backoff backoff;  /* when to try again; reset on connect */
    int pending_subs;           /* SUBACKs awaited before CONNECTED is queued */
    struct mqtt_sub *subs;
    size_t n_subs;
    size_t cap_subs;
    struct mqtt_slot *slots;    /* max_inflight of them */
    int next_token;
    char tls_error[MQTT_REASON_MAX];
    char server_reason[128];    /* from an MQTT 5 DISCONNECT sent by the broker */
    bool disconnect_done;
    bool fallback_due;          /* the broker refused MQTT 5 as an unknown version */
    int active_callbacks;
};

static int64_t mono_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void deadline_ts(int64_t at_ms, struct timespec *ts)
{
    ts->tv_sec = at_ms / 1000;
    ts->tv_nsec = (long)(at_ms % 1000) * 1000000;
}

static void callback_enter(struct paho *m)
{
    pthread_mutex_lock(&m->lock);
    m->active_callbacks++;
    pthread_mutex_unlock(&m->lock);
}

static void callback_leave(struct paho *m)
{
    pthread_mutex_lock(&m->lock);
    if (--m->active_callbacks == 0)
        pthread_cond_broadcast(&m->wake);
    pthread_mutex_unlock(&m->lock);
}

static void event_free(struct mqtt_event *ev)
{
    if (!ev)
        return;
    free(ev->topic);
    free(ev->payload);
    free(ev->reason);
    free(ev);
}

/* Caller holds m->lock. Takes ownership of ev. */
static void queue_event_locked(struct paho *m, struct mqtt_event *ev)
{
    uint64_t one = 1;

    ev->next = NULL;
    *m->tail = ev;
    m->tail = &ev->next;
    /* Can only fail when the counter would overflow: it is still readable then. */
    if (write(m->event_fd, &one, sizeof(one)) < 0 && errno != EAGAIN)
        et_error(MQTT_LOG, "%s: cannot signal event descriptor: %s", m->client_id,
                 strerror(errno));
}

/* Caller holds m->lock. */
static void queue_simple_locked(struct paho *m, enum et_mqtt_event_type type, int token,
                                const char *reason)
{
    struct mqtt_event *ev = calloc(1, sizeof(*ev));

    if (!ev || (reason && !(ev->reason = strdup(reason)))) {
        free(ev);
        et_error(MQTT_LOG, "%s: out of memory: event %d (token %d) lost", m->client_id,
                 (int)type, token);
        return;
    }
    ev->type = type;
    ev->token = token;
    queue_event_locked(m, ev);
}

/* Caller holds m->lock. Arms the timer thread for the next attempt. */
static void schedule_retry_locked(struct paho *m)
{
    int64_t now = mono_ms();

    if (m->stopping)
        return;
    m->connect_due = true;
    m->connect_at_ms = et_backoff_next(&m->backoff, now);
    et_debug(MQTT_LOG, "%s: next connect to %s in %lld ms", m->client_id, m->uri,
             (long long)(m->connect_at_ms - now));
    pthread_cond_broadcast(&m->wake);
}

/* ---- Paho callbacks ------------------------------------------------------- */

/*
 * OpenSSL prints one line per queued error; the last is the most specific
 * and is kept. OpenSSL 3 writes
 * "<thread>:error:<code>:<library>:<function>:<reason>:<file>:<line>:";
 * a person needs library, function and reason.
 */
static int on_ssl_error(const char *str, size_t len, void *context)
{
    struct paho *m = context;
    const char *start = str;
    const char *end;
    int field = 0;

    while (len > 0 && (str[len - 1] == '\n' || str[len - 1] == '\r'))
        len--;
    end = str + len;
    for (const char *p = str; p < end; p++) {
        if (*p != ':')
            continue;
        field++;
        if (field == 3)
            start = p + 1;
        if (field == 6) {
            end = p;
            break;
        }
    }
    if (field < 6) {
        start = str;
        end = str + len;
    }
    callback_enter(m);
    pthread_mutex_lock(&m->lock);
    snprintf(m->tls_error, sizeof(m->tls_error), "%.*s", (int)(end - start), start);
    pthread_mutex_unlock(&m->lock);
    callback_leave(m);
    return 0;
}

/* MQTT 3.1.1 CONNACK return codes, which Paho 3.1.1 connects report as positive codes. */
static const char *connack_v3_text(int code)
{
    static const char *const text[] = {
        [1] = "connection refused: unacceptable protocol version",
        [2] = "connection refused: identifier rejected",
        [3] = "connection refused: server unavailable",
        [4] = "connection refused: bad user name or password",
        [5] = "connection refused: not authorized",
    };

    return code > 0 && code < (int)(sizeof(text) / sizeof(text[0])) ? text[code] : NULL;
}

/*
 * Paho reports a refusing CONNACK as a positive code (the CONNACK's return
 * code, or for MQTT 5 its reason code) with the message "CONNACK return
 * code"; negative codes are its own errors.
 */
static void connect_failure_reason(struct paho *m, const MQTTAsync_failureData5 *fail,
                                   char *buf, size_t size)
{
    const char *paho = fail && fail->code < 0 ? MQTTAsync_strerror(fail->code) : NULL;
    int connack = fail && fail->code > 0 ? fail->code
                  : fail && fail->reasonCode != MQTTREASONCODE_SUCCESS ? (int)fail->reasonCode
                  : 0;
    const char *connack_text = !connack ? NULL
                               : m->version >= MQTTVERSION_5 && connack >= 0x80
                               ? MQTTReasonCode_toString((enum MQTTReasonCodes)connack)
                               : connack_v3_text(connack);
    int n;

    n = snprintf(buf, size, "connect to %s failed: %s", m->uri,
                 fail && fail->message ? fail->message : (paho ? paho : "unknown error"));
    if (paho && n >= 0 && (size_t)n < size)
        n += snprintf(buf + n, size - (size_t)n, " (Paho %d: %s)", fail->code, paho);
    if (connack && n >= 0 && (size_t)n < size)
        n += snprintf(buf + n, size - (size_t)n, "; broker refused: 0x%02x %s", (unsigned)connack,
                      connack_text ? connack_text : "(unknown reason code)");
    if (m->tls_error[0] && n >= 0 && (size_t)n < size)
        snprintf(buf + n, size - (size_t)n, "; TLS: %s", m->tls_error);
    else if (m->tls && fail && fail->code == MQTTASYNC_FAILURE && n >= 0 && (size_t)n < size)
        /* With TLS 1.3 the broker judges our certificate after our side of the
         * handshake is done, so its refusal looks like a closed connection. */
        snprintf(buf + n, size - (size_t)n, "; broker down, or it refused %s%s (see its log)",
                 m->cert_file ? "our certificate " : "a client without a certificate",
                 m->cert_file ? m->cert_file : "");
}

static void on_connect_failure(void *context, MQTTAsync_failureData5 *fail)
{
    struct paho *m = context;
    char reason[MQTT_REASON_MAX * 2];

    callback_enter(m);
    pthread_mutex_lock(&m->lock);
    connect_failure_reason(m, fail, reason, sizeof(reason));
    /* A 3.1.1-only broker answers an MQTT 5 CONNECT with the 3.1.1 refusal
     * "unacceptable protocol version" (1); an MQTT 5 broker that will not
     * speak 5 on this listener says 0x84. */
    if (m->version_auto && m->version >= MQTTVERSION_5 && fail &&
        (fail->code == 1 || fail->code == MQTTREASONCODE_UNSUPPORTED_PROTOCOL_VERSION)) {
        size_t n = strlen(reason);

        m->fallback_due = true;
        snprintf(reason + n, sizeof(reason) - n, "; trying MQTT 3.1.1 next");
    }
    m->tls_error[0] = '\0';
    __atomic_store_n(&m->connected, false, __ATOMIC_RELEASE);
    if (!m->stopping) {
        queue_simple_locked(m, ET_MQTT_DISCONNECTED, 0, reason);
        schedule_retry_locked(m);
    }
    pthread_mutex_unlock(&m->lock);
    callback_leave(m);
}

/* Caller holds m->lock; the last outstanding SUBACK (or none) completes the connect. */
static void subs_done_locked(struct paho *m)
{
    if (__atomic_load_n(&m->connected, __ATOMIC_ACQUIRE) && !m->stopping)
        queue_simple_locked(m, ET_MQTT_CONNECTED, 0, NULL);
}

static void on_resubscribed(void *context, MQTTAsync_successData5 *ok)
{
    struct paho *m = context;

    callback_enter(m);
    pthread_mutex_lock(&m->lock);
    if (ok && ok->reasonCode >= MQTTREASONCODE_UNSPECIFIED_ERROR)
        et_warn(MQTT_LOG, "%s: subscription refused by %s: %s", m->client_id, m->uri,
                MQTTReasonCode_toString(ok->reasonCode));
    if (m->pending_subs > 0 && --m->pending_subs == 0)
        subs_done_locked(m);
    pthread_mutex_unlock(&m->lock);
    callback_leave(m);
}

static void on_resubscribe_failed(void *context, MQTTAsync_failureData5 *fail)
{
    struct paho *m = context;

    callback_enter(m);
    pthread_mutex_lock(&m->lock);
    if (fail && fail->code == MQTTASYNC_OPERATION_INCOMPLETE) {
        /* Paho discards outstanding requests when the session closes, and may
         * do so before it reports the lost connection: this session will not
         * become CONNECTED. */
        m->pending_subs = 0;
        pthread_mutex_unlock(&m->lock);
        callback_leave(m);
        return;
    }
    if (__atomic_load_n(&m->connected, __ATOMIC_ACQUIRE))
        et_warn(MQTT_LOG, "%s: subscription refused by %s: %s", m->client_id, m->uri,
                fail && fail->reasonCode ? MQTTReasonCode_toString(fail->reasonCode)
                : fail && fail->message ? fail->message : "no reason given");
    if (m->pending_subs > 0 && --m->pending_subs == 0)
        subs_done_locked(m);
    pthread_mutex_unlock(&m->lock);
    callback_leave(m);
}

static void on_late_subscribe_failed(void *context, MQTTAsync_failureData5 *fail)
{
    struct paho *m = context;

    callback_enter(m);
    /* Discarded because the session closed: the next connect makes it again. */
    if (__atomic_load_n(&m->connected, __ATOMIC_ACQUIRE) &&
        !(fail && fail->code == MQTTASYNC_OPERATION_INCOMPLETE))
        et_warn(MQTT_LOG, "%s: subscription refused by %s: %s", m->client_id, m->uri,
                fail && fail->reasonCode ? MQTTReasonCode_toString(fail->reasonCode)
                : fail && fail->message ? fail->message : "no reason given");
    callback_leave(m);
}

static void on_late_subscribed(void *context, MQTTAsync_successData5 *ok)
{
    struct paho *m = context;

    callback_enter(m);
    if (ok && ok->reasonCode >= MQTTREASONCODE_UNSPECIFIED_ERROR)
        et_warn(MQTT_LOG, "%s: subscription refused by %s: %s", m->client_id, m->uri,
                MQTTReasonCode_toString(ok->reasonCode));
    callback_leave(m);
}

/* MQTT 3.1.1 adapters, defined with the others below. */
static void on_resubscribed3(void *context, MQTTAsync_successData *ok);
static void on_resubscribe_failed3(void *context, MQTTAsync_failureData *fail);
static void on_late_subscribed3(void *context, MQTTAsync_successData *ok);
static void on_late_subscribe_failed3(void *context, MQTTAsync_failureData *fail);

/*
 * Paho calls on_connected holding its global mutex, so from there this runs
 * without client_lock (taking it would order Paho's mutex before it, the
 * reverse of et_mqtt_publish). No lock is needed there: the client is never
 * replaced while it is connected. et_mqtt_subscribe takes the read lock.
 */
static int subscribe_one(struct paho *m, const char *filter, int qos, bool on_connect)
{
    MQTTAsync_responseOptions opts = MQTTAsync_responseOptions_initializer;
    int rc;

    opts.context = m;
    if (m->version >= MQTTVERSION_5) {
        opts.onSuccess5 = on_connect ? on_resubscribed : on_late_subscribed;
        opts.onFailure5 = on_connect ? on_resubscribe_failed : on_late_subscribe_failed;
    } else {
        opts.onSuccess = on_connect ? on_resubscribed3 : on_late_subscribed3;
        opts.onFailure = on_connect ? on_resubscribe_failed3 : on_late_subscribe_failed3;
    }
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

/*
 * Turn Nagle's algorithm off on the connection to the broker. Paho does
 * not, and has no hook for socket options, so the sockets are found by
 * their peer port. Why it matters: Paho writes a PUBACK and the next
 * PUBLISH as two small writes; with Nagle the second waits for the
 * broker's delayed ACK (40 ms on Linux), and with a window of batches in
 * flight every round trip paid it twice (measured: 100 ms per batch with a
 * window of one, 4 ms without). Another client's socket to the same port
 * in this process gets the option too, which does it no harm.
 */
static void set_nodelay_if_peer_port(int fd, int port)
{
    struct sockaddr_storage peer;
    socklen_t len = sizeof(peer);
    int type = 0, on = 1;
    socklen_t tlen = sizeof(type);
    int peer_port = -1;

    if (getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &tlen) != 0 || type != SOCK_STREAM)
        return;
    if (getpeername(fd, (struct sockaddr *)&peer, &len) != 0)
        return;
    if (peer.ss_family == AF_INET)
        peer_port = ntohs(((struct sockaddr_in *)&peer)->sin_port);
    else if (peer.ss_family == AF_INET6)
        peer_port = ntohs(((struct sockaddr_in6 *)&peer)->sin6_port);
    if (peer_port == port)
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &on, sizeof(on));
}

static void tcp_nodelay_to_port(int port)
{
    struct rlimit rl;
    struct dirent *de;
    DIR *dir = opendir("/proc/self/fd");
    int max_fd = 1024;

    /* The open descriptors are listed in /proc; without it, try them all. */
    if (dir) {
        int own = dirfd(dir);

        while ((de = readdir(dir))) {
            char *end;
            long fd = strtol(de->d_name, &end, 10);

            if (*end == '\0' && end != de->d_name && fd > 2 && fd != own && fd <= INT_MAX)
                set_nodelay_if_peer_port((int)fd, port);
        }
        closedir(dir);
        return;
    }
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY &&
        rl.rlim_cur < 65536)
        max_fd = (int)rl.rlim_cur;
    for (int fd = 3; fd < max_fd; fd++)
        set_nodelay_if_peer_port(fd, port);
}

static void on_connected(void *context, MQTTAsync_successData5 *ok)
{
    struct paho *m = context;
    struct mqtt_sub *copy = NULL;
    size_t n = 0;
    size_t failed = 0;

    callback_enter(m);
    /* Before the first publish of this session; system calls only, no lock needed. */
    tcp_nodelay_to_port(m->port);
    pthread_mutex_lock(&m->lock);
    if (m->stopping) {
        pthread_mutex_unlock(&m->lock);
        goto out;
    }
    et_info(MQTT_LOG, "%s: connected to %s (MQTT %d)", m->client_id, m->uri,
            ok ? ok->alt.connect.MQTTVersion : 0);
    __atomic_store_n(&m->connected, true, __ATOMIC_RELEASE);
    et_backoff_reset(&m->backoff);
    m->tls_error[0] = '\0';
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
        if (subscribe_one(m, copy[i].filter, copy[i].qos, true) != 0)
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
    callback_leave(m);
}

static void on_server_disconnect(void *context, MQTTProperties *props, enum MQTTReasonCodes rc)
{
    struct paho *m = context;

    /* Paho calls connectionLost right after this; keep the broker's reason for it. */
    callback_enter(m);
    pthread_mutex_lock(&m->lock);
    snprintf(m->server_reason, sizeof(m->server_reason), "broker sent DISCONNECT: 0x%02x %s",
             (unsigned)rc, MQTTReasonCode_toString(rc));
    pthread_mutex_unlock(&m->lock);
    callback_leave(m);
}

static void on_connection_lost(void *context, char *cause)
{
    struct paho *m = context;
    char reason[MQTT_REASON_MAX];

    callback_enter(m);
    pthread_mutex_lock(&m->lock);
    snprintf(reason, sizeof(reason), "connection to %s lost: %s", m->uri,
             m->server_reason[0] ? m->server_reason
             : cause ? cause : "socket closed or keepalive expired");
    m->server_reason[0] = '\0';
    __atomic_store_n(&m->connected, false, __ATOMIC_RELEASE);
    m->pending_subs = 0;
    if (!m->stopping) {
        queue_simple_locked(m, ET_MQTT_DISCONNECTED, 0, reason);
        schedule_retry_locked(m);
    }
    pthread_mutex_unlock(&m->lock);
    callback_leave(m);
}

static int on_message(void *context, char *topic, int topic_len, MQTTAsync_message *msg)
{
    struct paho *m = context;
    size_t tlen = topic_len > 0 ? (size_t)topic_len : strlen(topic);
    size_t plen = msg->payloadlen > 0 ? (size_t)msg->payloadlen : 0;
    struct mqtt_event *ev;

    callback_enter(m);
    ev = calloc(1, sizeof(*ev));
    if (ev)
        ev->topic = malloc(tlen + 1);
    /* One extra byte so a handler may treat a text payload as a string. */
    if (ev)
        ev->payload = malloc(plen + 1);
    if (!ev || !ev->topic || !ev->payload) {
        event_free(ev);
        callback_leave(m);
        return 0;               /* Paho keeps the message and offers it again */
    }
    memcpy(ev->topic, topic, tlen);
    ev->topic[tlen] = '\0';
    if (plen > 0)
        memcpy(ev->payload, msg->payload, plen);
    ((char *)ev->payload)[plen] = '\0';
    ev->len = plen;
    ev->type = ET_MQTT_MESSAGE;

    pthread_mutex_lock(&m->lock);
    queue_event_locked(m, ev);
    pthread_mutex_unlock(&m->lock);

    MQTTAsync_freeMessage(&msg);
    MQTTAsync_free(topic);
    callback_leave(m);
    return 1;
}

static void on_published(void *context, MQTTAsync_successData5 *ok)
{
    struct mqtt_slot *slot = context;
    struct paho *m = slot->m;

    callback_enter(m);
    pthread_mutex_lock(&m->lock);
    if (slot->used) {
        if (ok && ok->reasonCode >= MQTTREASONCODE_UNSPECIFIED_ERROR) {
            char reason[160];

            snprintf(reason, sizeof(reason), "broker refused publish: 0x%02x %s",
                     (unsigned)ok->reasonCode, MQTTReasonCode_toString(ok->reasonCode));
            queue_simple_locked(m, ET_MQTT_PUBLISH_FAILED, slot->token, reason);
        } else {
            queue_simple_locked(m, ET_MQTT_PUBLISHED, slot->token, NULL);
        }
        slot->used = false;
    }
    pthread_mutex_unlock(&m->lock);
    callback_leave(m);
}

static void on_publish_failed(void *context, MQTTAsync_failureData5 *fail)
{
    struct mqtt_slot *slot = context;
    struct paho *m = slot->m;
    char reason[MQTT_REASON_MAX];

    callback_enter(m);
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
        queue_simple_locked(m, ET_MQTT_PUBLISH_FAILED, slot->token, reason);
        slot->used = false;
    }
    pthread_mutex_unlock(&m->lock);
    callback_leave(m);
}

static void on_disconnect_done(void *context, MQTTAsync_successData5 *ok)
{
    struct paho *m = context;

    callback_enter(m);
    pthread_mutex_lock(&m->lock);
    m->disconnect_done = true;
    pthread_cond_broadcast(&m->wake);
    pthread_mutex_unlock(&m->lock);
    callback_leave(m);
}

static void on_disconnect_failed(void *context, MQTTAsync_failureData5 *fail)
{
    on_disconnect_done(context, NULL);
}

/*
 * MQTT 3.1.1 connections: Paho insists on its 3.1.1 callback signatures
 * there. These adapters turn them into the MQTT 5 shapes (reason code
 * "success", since 3.1.1 has none) so one set of handlers serves both.
 */
static void failure3_to5(const MQTTAsync_failureData *in, MQTTAsync_failureData5 *out)
{
    if (!in)
        return;
    out->token = in->token;
    out->code = in->code;
    out->message = in->message;
}

static void on_connected3(void *context, MQTTAsync_successData *ok)
{
    MQTTAsync_successData5 data = MQTTAsync_successData5_initializer;

    data.alt.connect.MQTTVersion = ok ? ok->alt.connect.MQTTVersion : MQTTVERSION_3_1_1;
    on_connected(context, &data);
}

static void on_connect_failure3(void *context, MQTTAsync_failureData *fail)
{
    MQTTAsync_failureData5 data = MQTTAsync_failureData5_initializer;

    failure3_to5(fail, &data);
    on_connect_failure(context, &data);
}

static void on_resubscribed3(void *context, MQTTAsync_successData *ok)
{
    MQTTAsync_successData5 data = MQTTAsync_successData5_initializer;

    /* A 3.1.1 SUBACK refusal is granted QoS 0x80. */
    if (ok && ok->alt.qos == 0x80)
        data.reasonCode = MQTTREASONCODE_UNSPECIFIED_ERROR;
    on_resubscribed(context, &data);
}

static void on_resubscribe_failed3(void *context, MQTTAsync_failureData *fail)
{
    MQTTAsync_failureData5 data = MQTTAsync_failureData5_initializer;

    failure3_to5(fail, &data);
    on_resubscribe_failed(context, &data);
}

static void on_late_subscribed3(void *context, MQTTAsync_successData *ok)
{
    MQTTAsync_successData5 data = MQTTAsync_successData5_initializer;

    if (ok && ok->alt.qos == 0x80)
        data.reasonCode = MQTTREASONCODE_UNSPECIFIED_ERROR;
    on_late_subscribed(context, &data);
}

static void on_late_subscribe_failed3(void *context, MQTTAsync_failureData *fail)
{
    MQTTAsync_failureData5 data = MQTTAsync_failureData5_initializer;

    failure3_to5(fail, &data);
    on_late_subscribe_failed(context, &data);
}

static void on_published3(void *context, MQTTAsync_successData *ok)
{
    MQTTAsync_successData5 data = MQTTAsync_successData5_initializer;

    on_published(context, &data);
}

static void on_publish_failed3(void *context, MQTTAsync_failureData *fail)
{
    MQTTAsync_failureData5 data = MQTTAsync_failureData5_initializer;

    failure3_to5(fail, &data);
    on_publish_failed(context, &data);
}

static void on_disconnect_done3(void *context, MQTTAsync_successData *ok)
{
    on_disconnect_done(context, NULL);
}

static void on_disconnect_failed3(void *context, MQTTAsync_failureData *fail)
{
    on_disconnect_done(context, NULL);
}

/* ---- connecting ------------------------------------------------------------ */

/* Create the Paho client for version; m->client is NULL on failure. */
static int make_client(struct paho *m, int version, char *why, size_t why_size)
{
    MQTTAsync_createOptions copts = MQTTAsync_createOptions_initializer5;
    int rc;

    /* Paho fixes the protocol version when the client is created. */
    copts.MQTTVersion = version;
    if (m->max_inflight * 2 > copts.maxBufferedMessages)
        copts.maxBufferedMessages = m->max_inflight * 2;
    if (copts.maxBufferedMessages < MQTT_MIN_BUFFERED)
        copts.maxBufferedMessages = MQTT_MIN_BUFFERED;
    rc = MQTTAsync_createWithOptions(&m->client, m->uri, m->client_id,
                                     MQTTCLIENT_PERSISTENCE_NONE, NULL, &copts);
    if (rc != MQTTASYNC_SUCCESS) {
        snprintf(why, why_size, "cannot create MQTT client for %s: %s", m->uri,
                 MQTTAsync_strerror(rc) ? MQTTAsync_strerror(rc) : "unknown error");
        m->client = NULL;
        return rc == MQTTASYNC_BAD_PROTOCOL ? -EPROTONOSUPPORT : -EINVAL;
    }
    if (MQTTAsync_setCallbacks(m->client, m, on_connection_lost, on_message, NULL) !=
            MQTTASYNC_SUCCESS ||
        MQTTAsync_setDisconnected(m->client, m, on_server_disconnect) != MQTTASYNC_SUCCESS) {
        snprintf(why, why_size, "cannot set MQTT callbacks for %s", m->uri);
        MQTTAsync_destroy(&m->client);
        m->client = NULL;
        return -EIO;
    }
    return 0;
}

/* Timer thread, not connected: replace the MQTT 5 client by a 3.1.1 one. */
static int fall_back_to_311(struct paho *m, char *why, size_t why_size)
{
    int rc;

    pthread_rwlock_wrlock(&m->client_lock);
    MQTTAsync_destroy(&m->client);
    rc = make_client(m, MQTTVERSION_3_1_1, why, why_size);
    if (rc)
        rc = make_client(m, MQTTVERSION_5, why, why_size) ? rc : -EAGAIN;
    pthread_mutex_lock(&m->lock);
    if (m->client && rc == 0)
        m->version = MQTTVERSION_3_1_1;
    pthread_mutex_unlock(&m->lock);
    pthread_rwlock_unlock(&m->client_lock);
    if (rc == 0)
        et_warn(MQTT_LOG, "%s: %s does not speak MQTT 5: using MQTT 3.1.1 "
                "(no reason codes: refused publishes are not reported)", m->client_id, m->uri);
    return rc;
}

/* Called by the timer thread without m->lock. Returns 0 when Paho accepted the request. */
static int begin_connect(struct paho *m, char *why, size_t why_size)
{
    MQTTAsync_connectOptions conn5 = MQTTAsync_connectOptions_initializer5;
    MQTTAsync_connectOptions conn3 = MQTTAsync_connectOptions_initializer;
    MQTTAsync_connectOptions conn;
    MQTTAsync_SSLOptions ssl = MQTTAsync_SSLOptions_initializer;
    MQTTAsync_willOptions will = MQTTAsync_willOptions_initializer;
    int rc;

    if (m->version >= MQTTVERSION_5) {
        conn = conn5;
        conn.cleanstart = 1;
        conn.onSuccess5 = on_connected;
        conn.onFailure5 = on_connect_failure;
    } else {
        conn = conn3;
        conn.MQTTVersion = MQTTVERSION_3_1_1;
        conn.cleansession = 1;
        conn.onSuccess = on_connected3;
        conn.onFailure = on_connect_failure3;
    }
    conn.keepAliveInterval = m->keepalive_s;
    conn.maxInflight = m->max_inflight;
    conn.connectTimeout = MQTT_CONNECT_TIMEOUT_S;
    conn.automaticReconnect = 0;
    conn.context = m;
    if (m->will_topic) {
        will.topicName = m->will_topic;
        will.message = NULL;    /* so Paho takes the binary payload below */
        will.payload.data = m->will_payload;
        will.payload.len = (int)m->will_len;
        will.retained = m->will_retain;
        will.qos = 1;
        conn.will = &will;
    }
    if (m->tls) {
        ssl.trustStore = m->ca_file;
        ssl.keyStore = m->cert_file;
        ssl.privateKey = m->key_file;
        ssl.enableServerCertAuth = 1;
        ssl.verify = 1;         /* check the broker's name against host */
        ssl.sslVersion = MQTT_SSL_VERSION_TLS_1_2;
        ssl.disableDefaultTrustStore = 1;   /* trust only our CA */
        ssl.ssl_error_cb = on_ssl_error;
        ssl.ssl_error_context = m;
        conn.ssl = &ssl;
    }
    rc = MQTTAsync_connect(m->client, &conn);
    if (rc != MQTTASYNC_SUCCESS) {
        snprintf(why, why_size, "connect to %s not started: %s (Paho %d)", m->uri,
                 MQTTAsync_strerror(rc) ? MQTTAsync_strerror(rc) : "unknown error", rc);
        return -EIO;
    }
    return 0;
}

static void *timer_main(void *arg)
{
    struct paho *m = arg;
    char why[MQTT_REASON_MAX];
    bool fallback;
    int rc;

    pthread_mutex_lock(&m->lock);
    while (!m->stopping) {
        if (!m->connect_due) {
            pthread_cond_wait(&m->wake, &m->lock);
            continue;
        }
        if (mono_ms() < m->connect_at_ms) {
            struct timespec ts;

            deadline_ts(m->connect_at_ms, &ts);
            pthread_cond_timedwait(&m->wake, &m->lock, &ts);
            continue;
        }
        m->connect_due = false;
        fallback = m->fallback_due;
        m->fallback_due = false;
        pthread_mutex_unlock(&m->lock);

        /* On -EAGAIN the 3.1.1 client could not be made but MQTT 5 could:
         * connect with 5 and let the broker refuse again. */
        if (fallback && fall_back_to_311(m, why, sizeof(why)) != 0 && !m->client) {
            /* Neither version could be created (out of memory?): try again later. */
            pthread_mutex_lock(&m->lock);
            m->fallback_due = true;
            if (!m->stopping) {
                queue_simple_locked(m, ET_MQTT_DISCONNECTED, 0, why);
                schedule_retry_locked(m);
            }
            continue;
        }
        et_debug(MQTT_LOG, "%s: connecting to %s", m->client_id, m->uri);
        rc = begin_connect(m, why, sizeof(why));
        pthread_mutex_lock(&m->lock);
        if (rc != 0 && !m->stopping) {
            queue_simple_locked(m, ET_MQTT_DISCONNECTED, 0, why);
            schedule_retry_locked(m);
        }
    }
    pthread_mutex_unlock(&m->lock);
    return NULL;
}

/* ---- the seam's operations --------------------------------------------------- */

static struct paho *to_paho(struct et_mqtt *base)
{
    return (struct paho *)base;
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
    m->event_fd = -1;
    m->port = cfg->port;
    m->tls = cfg->tls;
    m->keepalive_s = cfg->keepalive_s;
    m->max_inflight = cfg->max_inflight;
    m->will_len = cfg->will_len;
    m->will_retain = cfg->will_retain;
    m->version = cfg->mqtt_version == MQTTVERSION_3_1_1 ? MQTTVERSION_3_1_1 : MQTTVERSION_5;
    m->version_auto = cfg->mqtt_version == 0;
    m->next_token = 1;
    m->head = NULL;
    m->tail = &m->head;

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
    /* Each client its own schedule, so a fleet spreads out (backoff.h). */
    if (getrandom(&seed, sizeof(seed), GRND_NONBLOCK) != (ssize_t)sizeof(seed))
        seed = (uint64_t)mono_ms() ^ ((uint64_t)getpid() << 32) ^ (uint64_t)(uintptr_t)m;
    rc = et_backoff_init(&m->backoff, cfg->min_backoff_ms, cfg->max_backoff_ms, seed);
    if (rc)
        goto fail_strings;

    m->event_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (m->event_fd < 0) {
        rc = -errno;
        goto fail_strings;
    }
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
    rc = make_client(m, m->version, why, sizeof(why));
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
    close(m->event_fd);
fail_strings:
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
    rc = -pthread_create(&m->timer, NULL, timer_main, m);
    if (rc)
        goto out;
    m->timer_running = true;
    m->started = true;
    m->connect_due = true;
    m->connect_at_ms = mono_ms();
    pthread_cond_broadcast(&m->wake);
out:
    pthread_mutex_unlock(&m->lock);
    return rc;
}

static int paho_fd(const struct et_mqtt *base)
{
    return ((const struct paho *)base)->event_fd;
}

static int paho_dispatch(struct et_mqtt *base, et_mqtt_handler handler, void *ctx)
{
    struct paho *m = to_paho(base);
    struct mqtt_event *list;
    uint64_t count;
    int n = 0;

    /* Take the whole queue and clear the descriptor under the lock, so an
     * event queued after this point makes the descriptor readable again. */
    pthread_mutex_lock(&m->lock);
    list = m->head;
    m->head = NULL;
    m->tail = &m->head;
    while (read(m->event_fd, &count, sizeof(count)) > 0)
        ;
    pthread_mutex_unlock(&m->lock);

    while (list) {
        struct mqtt_event *ev = list;
        struct et_mqtt_event pub = {
            .type = ev->type,
            .topic = ev->topic,
            .payload = ev->payload,
            .len = ev->len,
            .token = ev->token,
            .reason = ev->reason,
        };

        list = ev->next;
        if (handler)
            handler(ctx, &pub);
        event_free(ev);
        n++;
    }
    return n;
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
        subscribe_one(m, filter, qos, false);
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
        opts.context = slot;
        if (m->version >= MQTTVERSION_5) {
            opts.onSuccess5 = on_published;
            opts.onFailure5 = on_publish_failed;
        } else {
            opts.onSuccess = on_published3;
            opts.onFailure = on_publish_failed3;
        }
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
    if (m->version >= MQTTVERSION_5) {
        disc = disc5;
        disc.onSuccess5 = on_disconnect_done;
        disc.onFailure5 = on_disconnect_failed;
    } else {
        disc = disc3;
        disc.onSuccess = on_disconnect_done3;
        disc.onFailure = on_disconnect_failed3;
    }
    disc.timeout = timeout_ms;
    disc.context = m;
    if (m->client && MQTTAsync_isConnected(m->client) &&
        MQTTAsync_disconnect(m->client, &disc) == MQTTASYNC_SUCCESS) {
        /* Paho gives up after timeout_ms itself; the margin covers its own scheduling. */
        deadline_ts(mono_ms() + timeout_ms + 1000, &ts);
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

    while (m->head) {
        struct mqtt_event *ev = m->head;

        m->head = ev->next;
        event_free(ev);
    }
    for (size_t i = 0; i < m->n_subs; i++)
        free(m->subs[i].filter);
    free(m->subs);
    pthread_rwlock_destroy(&m->client_lock);
    pthread_cond_destroy(&m->wake);
    pthread_mutex_destroy(&m->lock);
    close(m->event_fd);
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
