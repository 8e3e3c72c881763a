/*
 * The MQTT seam (edgetel/mqtt.h) on Eclipse Paho MQTTAsync, MQTT 5: what
 * the adapter's three files share. Private to library et_mqtt_paho.
 *
 *   mqtt_paho.c            life cycle, the event queue, the seam's operations
 *   mqtt_paho_connect.c    the timer thread, connect options, TLS and why a
 *                          connect failed, TCP_NODELAY, the 3.1.1 fallback
 *   mqtt_paho_callbacks.c  what Paho calls back with: session up and the
 *                          subscriptions made again, messages, publish
 *                          outcomes, lost connection, disconnect; and the one
 *                          place that adapts MQTT 3.1.1 replies
 *
 * Threads and locks:
 *  - Paho calls back on its own threads. Every callback takes m->lock only
 *    to queue an event (or to update the connection state) and never calls
 *    Paho while holding it.
 *  - Our own calls into Paho (connect, subscribe, send, disconnect) are made
 *    WITHOUT m->lock held. Paho holds its global mutex while it calls most
 *    callbacks, so the lock order is "Paho's mutex, then m->lock", and
 *    "client_lock, then Paho's mutex" (see paho_subscribe_one).
 *  - One small timer thread of our own owns reconnecting: it sleeps on
 *    m->wake until a connect is due or the handle is being destroyed. So a
 *    program using this adapter runs Paho's threads and this one besides
 *    its own.
 *
 * Paho's automatic reconnect is not used: its delays are whole seconds with
 * no jitter, and the contract in mqtt.h asks for jittered exponential
 * backoff in milliseconds (edgetel/backoff.h).
 *
 * Publish tokens are our own counter, not Paho's message ids: Paho resets
 * its ids when a clean session ends, so an id could name two publishes.
 * Each outstanding QoS>0 publish holds one slot of a table sized by
 * max_inflight; the slot is Paho's callback context and is released by the
 * first of its success or failure reply. That table is also what makes
 * et_mqtt_publish return -EAGAIN.
 *
 * Across a lost connection (clean start, session expiry 0): publishes
 * already written to the socket fail at once (Paho discards them with
 * MQTTASYNC_OPERATION_INCOMPLETE, which becomes PUBLISH_FAILED); publishes
 * still in Paho's queue are written after the next connect and end in
 * PUBLISHED or PUBLISH_FAILED then. Either way every token gets its event.
 *
 * MQTT 3.1.1 (cfg->mqtt_version 4, or the fallback when the broker refuses
 * MQTT 5 as an unknown protocol version) uses Paho's 3.1.1 reply
 * signatures. Every request names its handlers once, in MQTT 5 shapes, as a
 * struct paho_reply; PAHO_SET_REPLY() picks by version, and for 3.1.1 two
 * adapters (paho_on_success3, paho_on_failure3) turn the reply into the
 * MQTT 5 shape and call the same handler. Paho fixes the version when the
 * client is created, so falling back means replacing the Paho client (see
 * client_lock).
 */
#ifndef EDGETEL_MQTT_PAHO_INTERNAL_H
#define EDGETEL_MQTT_PAHO_INTERNAL_H

#include "edgetel/backoff.h"
#include "edgetel/mqtt.h"
#include "edgetel/mqtt_queue.h"

#include <MQTTAsync.h>

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#define MQTT_LOG "mqtt"
#define MQTT_REASON_MAX 512
#define MQTT_CONNECT_TIMEOUT_S 20
/* Paho's command queue holds every request not yet written to the socket. */
#define MQTT_MIN_BUFFERED 100

struct mqtt_sub {
    char *filter;
    int qos;
};

/* What a 3.1.1 success reply holds in its union, so the adapter reads the right member. */
enum paho_reply_kind {
    PAHO_REPLY_PLAIN = 0,
    PAHO_REPLY_CONNECT,         /* alt.connect: the version the broker took */
    PAHO_REPLY_SUBSCRIBE,       /* alt.qos: 0x80 is a refusal */
};

/*
 * Who answers a Paho request, in MQTT 5 shapes. Lives as long as the
 * request can be answered: in the handle, or in a publish slot.
 */
struct paho_reply {
    enum paho_reply_kind kind;
    MQTTAsync_onSuccess5 *on_success;
    MQTTAsync_onFailure5 *on_failure;
    void *context;              /* what on_success and on_failure are given */
};

struct mqtt_slot {
    struct paho *m;
    int token;
    bool used;
    struct paho_reply reply;    /* context: this slot */
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
    size_t max_packet;          /* 0: no limit (mqtt.h) */
    char *will_topic;
    void *will_payload;
    size_t will_len;
    bool will_retain;
    int version;                /* MQTTVERSION_5 or MQTTVERSION_3_1_1; see client_lock */
    bool version_auto;          /* MQTT 5, falling back to 3.1.1 if the broker has no 5 */
    char *uri;
    /* The handlers of each kind of request; read-only after create. */
    struct paho_reply reply_connect;
    struct paho_reply reply_resubscribe;    /* the subscriptions made again on connect */
    struct paho_reply reply_late_subscribe; /* et_mqtt_subscribe while connected */
    struct paho_reply reply_disconnect;

    /* The Paho client is replaced (write lock, timer thread only) when
     * falling back to 3.1.1; whoever calls Paho on it holds the read lock. */
    pthread_rwlock_t client_lock;
    MQTTAsync client;

    pthread_mutex_t lock;
    pthread_cond_t wake;        /* timer thread, disconnect completion, callbacks drained */
    pthread_t timer;
    bool timer_running;

    /* Everything below is guarded by lock. */
    struct et_mqtt_queue events;    /* its descriptor is read without the lock */
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
    bool tls_refused;           /* tls_error is a verdict (alert, verification), not a cut link */
    char server_reason[128];    /* from an MQTT 5 DISCONNECT sent by the broker */
    bool disconnect_done;
    bool fallback_due;          /* the broker refused MQTT 5 as an unknown version */
    int active_callbacks;
    /* Messages over max_packet, dropped before they were copied; when the
     * next warning about them may be logged. Guarded by lock. */
    uint64_t oversize_dropped;
    int64_t oversize_warn_ms;
    bool packet_limit_warned;   /* the broker's limit was found too large (on_connected) */
};

/*
 * Point a Paho request's options (response, connect or disconnect options:
 * they share these member names) at reply, in the shape the client's
 * protocol version takes.
 */
#define PAHO_SET_REPLY(opts, version, reply)                                   \
    do {                                                                       \
        if ((version) >= MQTTVERSION_5) {                                      \
            (opts).onSuccess5 = (reply)->on_success;                           \
            (opts).onFailure5 = (reply)->on_failure;                           \
            (opts).context = (reply)->context;                                 \
        } else {                                                               \
            (opts).onSuccess = paho_on_success3;                               \
            (opts).onFailure = paho_on_failure3;                               \
            (opts).context = (void *)(reply);                                  \
        }                                                                      \
    } while (0)

/* ---- mqtt_paho.c: time, callback bookkeeping, queueing events ---- */

int64_t paho_mono_ms(void);
void paho_deadline_ts(int64_t at_ms, struct timespec *ts);
/* Around every callback's use of m, so destroy waits until none is inside. */
void paho_callback_enter(struct paho *m);
void paho_callback_leave(struct paho *m);
/* Caller holds m->lock. Queues an event without topic or payload. */
void paho_queue_simple_locked(struct paho *m, enum et_mqtt_event_type type, int token,
                              const char *reason);

/* ---- mqtt_paho_connect.c ---- */

/*
 * Caller holds m->lock. Not connected (any more, or not yet): unless the
 * handle is stopping, queue DISCONNECTED with reason and arm the timer
 * thread for the next attempt when the backoff says.
 */
void paho_retry_later_locked(struct paho *m, const char *reason);
/* Create the Paho client for version; m->client is NULL on failure. */
int paho_make_client(struct paho *m, int version, char *why, size_t why_size);
void *paho_timer_main(void *arg);
void paho_on_connect_failure(void *context, MQTTAsync_failureData5 *fail);
/*
 * On this process's connections to port: turn Nagle's algorithm off, and
 * let the kernel drop the connection when written data stays
 * unacknowledged for user_timeout_ms (0: the kernel's default).
 */
void paho_set_socket_options(int port, int user_timeout_ms);

/* ---- mqtt_paho_callbacks.c ---- */

/* Fill m's replies and those of its publish slots; at create. */
void paho_replies_init(struct paho *m);
int paho_subscribe_one(struct paho *m, const char *filter, int qos, bool on_connect);
void paho_on_connection_lost(void *context, char *cause);
int paho_on_message(void *context, char *topic, int topic_len, MQTTAsync_message *msg);
void paho_on_server_disconnect(void *context, MQTTProperties *props, enum MQTTReasonCodes rc);
/* The MQTT 3.1.1 adapters; context is a struct paho_reply. */
void paho_on_success3(void *context, MQTTAsync_successData *ok);
void paho_on_failure3(void *context, MQTTAsync_failureData *fail);

#endif
