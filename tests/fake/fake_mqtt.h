/*
 * An MQTT broker in the test process, behind the seam's transport
 * (edgetel/mqtt.h): hand et_fake_broker_transport() to et_agent_create()
 * or et_mqtt_create() where a program hands in et_mqtt_paho(). Any number
 * of clients made through it meet on the one broker, so two agents and a
 * fake aggregator live in one test process.
 *
 * What it does as a broker would:
 *  - routes each publish to every connected client with a matching filter
 *    (`+` one level, `#` the rest, wildcards never match a leading `$`),
 *    once per client however many of its filters match; and to one member
 *    of each matching shared subscription `$share/GROUP/FILTER`, taking the
 *    members in turn (the order their clients were created);
 *  - a client's own publishes come back to it when it subscribes to them;
 *  - keeps retained messages (an empty retained payload deletes the topic's)
 *    and sends the matching ones after CONNECTED and after each subscribe,
 *    never to shared subscriptions (brokers do not);
 *  - publishes a client's last will when its connection drops uncleanly
 *    (et_fake_client_drop), not when it is destroyed (a clean DISCONNECT)
 *    and not when the broker goes down;
 *  - a client that connects with the client id of a connected one takes
 *    the session over: the older gets DISCONNECTED and its will is sent.
 *
 * Where it is simpler than a broker with Paho in front of it: no time and
 * no threads. A client connects at et_mqtt_start() if the broker is up
 * (else it gets one DISCONNECTED saying so) and otherwise when the test
 * brings the broker up, as if its backoff had run out. A QoS 1 or 2 publish
 * is acknowledged at once (PUBLISHED is queued before et_mqtt_publish
 * returns), so -EAGAIN never happens. Delivery is QoS-blind: each message
 * arrives once.
 *
 * Events reach a client as the real seam delivers them, through the same
 * event queue as the Paho transport (edgetel/mqtt_queue.h): queued, its
 * et_mqtt_fd() (an eventfd) readable while any wait, handed to the handler
 * by et_mqtt_dispatch() on the caller's thread. Events that a handler
 * causes wait for the next dispatch. A client queues at most
 * ET_FAKE_QUEUE_MAX messages; more are dropped and counted
 * (et_fake_client_dropped), as a broker's queue limit would.
 *
 * Deterministic and single-threaded: use one broker and its clients from
 * one thread. Every call returns at once.
 */
#ifndef EDGETEL_FAKE_MQTT_H
#define EDGETEL_FAKE_MQTT_H

#include <stdbool.h>
#include <stddef.h>

#include "edgetel/mqtt.h"

#define ET_FAKE_QUEUE_MAX 4096

struct et_fake_broker;
struct et_fake_client;

/* A message the broker routed, a retained one, or a client's will. */
struct et_fake_message {
    const char *client_id;  /* who published it; NULL for et_fake_broker_publish() */
    const char *topic;
    const void *payload;    /* len bytes, and a NUL after them */
    size_t len;
    int qos;
    bool retain;
    bool will;              /* the broker published it as client_id's last will */
};

/** A broker that is up, with no clients. @return 0 or -ENOMEM. */
int et_fake_broker_create(struct et_fake_broker **out);

/**
 * Free the broker and everything it recorded. Clients still alive stay
 * usable as clients of no broker (never connected) until destroyed.
 * NULL is a no-op.
 */
void et_fake_broker_destroy(struct et_fake_broker *b);

/** The transport whose clients meet on b; lives as long as b. */
const struct et_mqtt_transport *et_fake_broker_transport(struct et_fake_broker *b);

/* ---- test controls ------------------------------------------------------- */

/**
 * Down: every connected client gets DISCONNECTED and publishes fail with
 * -ENOTCONN (no wills: the broker is gone). Up: every started client that
 * is not connected connects (CONNECTED, then its retained messages), in
 * the order the clients were created; also after et_fake_client_drop().
 */
void et_fake_broker_set_up(struct et_fake_broker *b, bool up);

bool et_fake_broker_is_up(const struct et_fake_broker *b);

/**
 * While on, the broker refuses every publish: QoS 1 and 2 end in
 * PUBLISH_FAILED "broker refused publish: 0x87 Not authorized" (the words
 * the Paho transport uses), QoS 0 vanishes; nothing is routed or recorded.
 */
void et_fake_broker_fail_publishes(struct et_fake_broker *b, bool fail);

/**
 * Publish as a client outside the test's view would: routed and recorded
 * with client_id NULL. @return 0, -EINVAL for a topic with a wildcard or
 * an empty one, -ENOTCONN while the broker is down, -ENOMEM.
 */
int et_fake_broker_publish(struct et_fake_broker *b, const char *topic, const void *payload,
                           size_t len, bool retain);

/* ---- what happened ----------------------------------------------------------- */

/** How many messages the broker has routed (publishes and wills, in order). */
size_t et_fake_broker_n_published(const struct et_fake_broker *b);

/** The i-th routed message, or NULL past the end; valid until b is destroyed. */
const struct et_fake_message *et_fake_broker_published(const struct et_fake_broker *b, size_t i);

/** The message retained on topic, or NULL; valid until the topic's next retained publish. */
const struct et_fake_message *et_fake_broker_retained(const struct et_fake_broker *b,
                                                      const char *topic);

/* ---- clients ------------------------------------------------------------------- */

/**
 * A configuration et_mqtt_create() accepts, for a client of the fake: it
 * reads only the client id and the will; add a will if one is wanted.
 * client_id is borrowed.
 */
struct et_mqtt_cfg et_fake_client_cfg(const char *client_id);

/**
 * The live client made with client_id (the newest if several), or NULL.
 * Valid until that client's et_mqtt_destroy().
 */
struct et_fake_client *et_fake_broker_client(struct et_fake_broker *b, const char *client_id);

/** et_mqtt_start() was called. */
bool et_fake_client_started(const struct et_fake_client *c);

bool et_fake_client_connected(const struct et_fake_client *c);

/** The client asked for exactly this filter (shared ones as `$share/GROUP/FILTER`). */
bool et_fake_client_subscribed(const struct et_fake_client *c, const char *filter);

/** The i-th distinct filter the client asked for, in order, or NULL past the last. */
const char *et_fake_client_subscription(const struct et_fake_client *c, size_t i);

/** The client's last will as configured, or NULL without one. */
const struct et_fake_message *et_fake_client_will(const struct et_fake_client *c);

/** Events waiting for et_mqtt_dispatch(). */
size_t et_fake_client_queued(const struct et_fake_client *c);

/** Messages dropped because the client's queue was full. */
size_t et_fake_client_dropped(const struct et_fake_client *c);

/**
 * Queue a MESSAGE for c alone, whether or not it subscribed or is
 * connected: a message the broker would not have routed, such as one on a
 * topic it is not subscribed to or a malformed payload.
 * @return 0, -EINVAL, -ENOBUFS when the queue is full, -ENOMEM.
 */
int et_fake_client_inject(struct et_fake_client *c, const char *topic, const void *payload,
                          size_t len);

/**
 * The client's connection breaks (no DISCONNECT packet): it gets
 * DISCONNECTED and the broker publishes its will. It stays down until the
 * broker is set up again.
 */
void et_fake_client_drop(struct et_fake_client *c);

/** MQTT topic filter matching, as the broker routes. */
bool et_fake_topic_matches(const char *filter, const char *topic);

#endif
