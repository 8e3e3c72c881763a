/*
 * The MQTT seam: how the agent and the aggregator talk MQTT without knowing
 * which client library does it. The core, the aggregator and their tests
 * use this interface and never include MQTTAsync.h.
 *
 * An implementation is an operations struct handed in at creation, as
 * coreMQTT hands in its TransportInterface_t: et_mqtt_create() takes a
 * struct et_mqtt_transport (ops + the implementation's own context) and
 * every later call goes through the handle's ops. The real one is Eclipse
 * Paho (et_mqtt_paho(), library et_mqtt_paho, the only code that links
 * Paho); tests hand in an in-process fake broker instead
 * (tests/fake/fake_mqtt.h), so two agents, or an agent and a fake
 * aggregator, live in one test process. An implementation keeps every
 * promise below; edgetel/mqtt_queue.h gives it the event queue.
 *
 * Threading contract: an implementation may call back on its own threads.
 * It turns every callback into an event on an internal queue and makes
 * et_mqtt_fd() readable; the owner's thread calls et_mqtt_dispatch(), which
 * runs the handler for each queued event on the owner's thread. Nothing
 * else in the program needs a lock. The other calls are made from the
 * owner's thread too; one handle is not to be used from two threads.
 *
 * Connection contract: et_mqtt_start() connects in the background and keeps
 * the session up for as long as the handle lives: after a failed connect or
 * a lost connection it retries after a delay from edgetel/backoff.h (full
 * jitter: drawn uniformly from [0, ceiling], the ceiling doubling from
 * min_backoff_ms up to max_backoff_ms while the broker does not answer, up
 * to max_backoff_refused_ms once it answered no; so a fleet that lost its
 * broker together comes back within seconds, and spread out). Every failed
 * attempt and every lost connection is one DISCONNECTED event with a
 * reason; CONNECTED comes once the subscriptions are made again, as they
 * are on every connect. No persistence of the client's own: whoever
 * publishes keeps the data until its own end-to-end acknowledgement.
 *
 * A connection that goes silent (a partition: no RST, nothing more
 * arrives) is declared lost, with a DISCONNECTED event, within
 * 2.5 * keepalive_s (plus Paho's check interval, keepalive_s / 10 up to
 * 5 s) when idle, and within 1.5 * keepalive_s of the first write the
 * peer's TCP does not acknowledge when sending (docs/ARCHITECTURE.md,
 * "Noticing a partition"; keepalive_s 0 turns both off).
 */
#ifndef EDGETEL_MQTT_H
#define EDGETEL_MQTT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct et_mqtt_cfg {
    const char *host;           /* e.g. "127.0.0.1" */
    int port;                   /* e.g. 8883 */
    const char *client_id;      /* unique per connection on the broker */
    bool tls;                   /* false only with an explicit insecure flag */
    const char *ca_file;        /* PEM, the CA that signed the broker */
    const char *cert_file;      /* PEM, our certificate (mutual TLS) */
    const char *key_file;       /* PEM, our private key */
    int keepalive_s;            /* also bounds how long a silent connection lives (above) */
    int min_backoff_ms;         /* the first retry comes within this, e.g. 1000 */
    int max_backoff_ms;         /* cap while the broker does not answer, e.g. 5000 */
    int max_inflight;           /* QoS 1 publishes outstanding at once */
    /* Optional last will, registered with each connect. */
    const char *will_topic;
    const void *will_payload;
    size_t will_len;
    bool will_retain;
    /*
     * 0 (the default): MQTT 5, and MQTT 3.1.1 from the next attempt on if
     * the broker refuses 5 as an unsupported protocol version. 5: MQTT 5
     * only. 4: MQTT 3.1.1 only. 3.1.1 has no reason codes, so a publish the
     * broker refuses by ACL still reads PUBLISHED (it acknowledges and drops).
     */
    int mqtt_version;
    /*
     * Largest message payload taken from the broker, in bytes; 0: no
     * limit. Over MQTT 5 the broker is told on CONNECT (Maximum Packet
     * Size: this plus ET_MQTT_HEADER_ROOM for the topic and properties)
     * and must not send larger packets; a larger message that comes
     * anyway (MQTT 3.1.1, or a broker that ignores it) is dropped before
     * the seam copies it, counted, and warned about at most once a minute.
     * At most ET_MQTT_PACKET_MAX.
     */
    size_t max_packet;
    /* Cap once the broker refused us (TLS alert or verification, CONNACK
     * refusal), e.g. 120000; 0: max_backoff_ms. */
    int max_backoff_refused_ms;
};

/* What a packet holds besides its payload, as max_packet allows for it. */
#define ET_MQTT_HEADER_ROOM 4096
/* MQTT's largest packet: a remaining length of 268,435,455 and its header. */
#define ET_MQTT_PACKET_MAX ((size_t)268435455)

/*
 * The [mqtt] connection settings that the agent's and the aggregator's
 * config files share, as their loaders fill them. Both programs turn them
 * into a struct et_mqtt_cfg with et_mqtt_cfg_from_settings(), the one place
 * a connection is described.
 */
struct et_mqtt_settings {
    char *host;
    int port;                   /* default 8883 */
    char *ca_file;
    char *cert_file;
    char *key_file;
    bool insecure;              /* plain TCP: only when set explicitly */
    int64_t keepalive_ms;       /* whole seconds on the wire */
    int64_t backoff_min_ms;
    int64_t backoff_max_ms;
    int64_t backoff_max_refused_ms;
};

/**
 * Check settings as a config file gave them, the same for every program:
 * keepalive in whole seconds, backoff_min not above either cap, cert and
 * key together, host a name or address only (no scheme, port or path),
 * and with a host and TLS all of ca, cert and key.
 * @return 0, or -EINVAL with "[mqtt] ..." in why for a person and *key
 *         the key whose line it concerns ("host", "keepalive", ...), and
 *         *alt_key (may be NULL) the one to name when *key was not in the
 *         file.
 */
int et_mqtt_settings_check(const struct et_mqtt_settings *s, const char **key,
                           const char **alt_key, char *why, size_t whylen);

/**
 * Check the files mutual TLS will read, before a connection needs them:
 * the CA file and the certificate exist and are readable, and the
 * private key exists and is readable and writable by its owner only (a
 * key that others could read must be taken as known to them). Nothing to
 * check without a host or with insecure set.
 * @return 0, or -errno with "[mqtt] <key> <path>: <cause>" in why.
 */
int et_mqtt_settings_check_files(const struct et_mqtt_settings *s, char *why, size_t whylen);

/**
 * The seam's cfg for one connection with settings s, as client_id, with up
 * to max_inflight QoS 1 publishes outstanding. Strings are borrowed from s
 * and client_id; the will and mqtt_version are left unset.
 */
void et_mqtt_cfg_from_settings(const struct et_mqtt_settings *s, const char *client_id,
                               int max_inflight, struct et_mqtt_cfg *out);

enum et_mqtt_event_type {
    ET_MQTT_CONNECTED = 1,      /* session up; subscriptions re-made */
    ET_MQTT_DISCONNECTED = 2,   /* lost or failed; reason says why; retry is scheduled */
    ET_MQTT_MESSAGE = 3,        /* topic, payload, len */
    ET_MQTT_PUBLISHED = 4,      /* the broker acknowledged publish `token` (PUBACK) */
    ET_MQTT_PUBLISH_FAILED = 5, /* publish `token` will not be acknowledged */
};

struct et_mqtt_event {
    enum et_mqtt_event_type type;
    const char *topic;          /* MESSAGE: valid during the handler call only */
    const void *payload;        /* MESSAGE: likewise */
    size_t len;
    int token;                  /* PUBLISHED / PUBLISH_FAILED */
    const char *reason;         /* DISCONNECTED / PUBLISH_FAILED, for a person */
};

typedef void (*et_mqtt_handler)(void *ctx, const struct et_mqtt_event *ev);

struct et_mqtt;

/*
 * An implementation. Every member is required; the struct grows only at
 * the end. The et_mqtt_* functions below state each call's contract.
 */
struct et_mqtt_ops {
    const char *name;   /* for messages: "paho", "fake" */
    /* impl is et_mqtt_transport.impl; cfg has been checked by et_mqtt_cfg_check(). */
    int (*create)(void *impl, struct et_mqtt **out, const struct et_mqtt_cfg *cfg);
    int (*start)(struct et_mqtt *m);
    int (*fd)(const struct et_mqtt *m);
    int (*dispatch)(struct et_mqtt *m, et_mqtt_handler handler, void *ctx);
    int (*subscribe)(struct et_mqtt *m, const char *filter, int qos);
    int (*publish)(struct et_mqtt *m, const char *topic, const void *payload, size_t len,
                   int qos, bool retain);
    bool (*connected)(const struct et_mqtt *m);
    void (*destroy)(struct et_mqtt *m, int timeout_ms);
};

/* Every implementation's handle starts with this. */
struct et_mqtt {
    const struct et_mqtt_ops *ops;
};

/* What a program hands to whoever creates connections: which implementation, and its context. */
struct et_mqtt_transport {
    const struct et_mqtt_ops *ops;
    void *impl;         /* given to ops->create; NULL for Paho, the broker for the fake */
};

/** The Eclipse Paho transport (library et_mqtt_paho). */
const struct et_mqtt_transport *et_mqtt_paho(void);

/**
 * Check cfg as every implementation requires it: host, port 1..65535,
 * client id, CA with TLS, cert and key together, backoff and inflight
 * bounds, mqtt_version 0/4/5, a will with a topic, max_packet within
 * MQTT's largest packet.
 * @return 0 or -EINVAL.
 */
int et_mqtt_cfg_check(const struct et_mqtt_cfg *cfg);

/**
 * Check cfg, then make a handle of transport t that copies cfg (all strings
 * and the will payload). -EINVAL names nothing: check cfg first.
 */
int et_mqtt_create(struct et_mqtt **out, const struct et_mqtt_transport *t,
                   const struct et_mqtt_cfg *cfg);

/** Begin connecting; returns at once. -EALREADY when called again. */
int et_mqtt_start(struct et_mqtt *m);

/** A descriptor that is readable while events wait for et_mqtt_dispatch(). */
int et_mqtt_fd(const struct et_mqtt *m);

/**
 * Run handler for every queued event, in the order they happened, on the
 * caller's thread (none with a NULL handler: they are dropped). Events
 * that arrive while the handlers run, including those a handler causes,
 * wait for the next call. Returns the number run.
 */
int et_mqtt_dispatch(struct et_mqtt *m, et_mqtt_handler handler, void *ctx);

/** Remember a subscription; made now if connected and again after every reconnect. */
int et_mqtt_subscribe(struct et_mqtt *m, const char *filter, int qos);

/**
 * Publish. Returns a token > 0 that exactly one later PUBLISHED or
 * PUBLISH_FAILED event names (QoS 0: no event), also across a lost
 * connection; or -ENOTCONN when not connected, or -EAGAIN when
 * max_inflight publishes are outstanding, or -EINVAL for an empty topic, a
 * topic with a wildcard (+ #), or qos outside 0..2. Tokens do not repeat
 * while any could still be outstanding.
 */
int et_mqtt_publish(struct et_mqtt *m, const char *topic, const void *payload, size_t len,
                    int qos, bool retain);

bool et_mqtt_connected(const struct et_mqtt *m);

/**
 * Disconnect cleanly within timeout_ms (the broker then does not send the
 * will: publish a final status first if one is wanted), then free.
 * NULL is a no-op.
 */
void et_mqtt_destroy(struct et_mqtt *m, int timeout_ms);

#endif
