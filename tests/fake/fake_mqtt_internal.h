/*
 * What the fake broker's two files share (fake_mqtt.c: the broker and its
 * routing; fake_mqtt_client.c: its clients, the seam's side). Private to
 * library et_fake_mqtt; tests include fake_mqtt.h.
 */
#ifndef EDGETEL_FAKE_MQTT_INTERNAL_H
#define EDGETEL_FAKE_MQTT_INTERNAL_H

#include "edgetel/mqtt_queue.h"
#include "fake_mqtt.h"

#include <stdbool.h>
#include <stddef.h>

/* A growable list of pointers, kept in the order items were added. */
struct ptr_list {
    void **items;
    size_t n;
    size_t cap;
};

struct fake_sub {
    char *filter;           /* as the client asked, $share/GROUP/ included */
    const char *match;      /* the filter without $share/GROUP/ */
    bool shared;
};

struct et_fake_client {
    struct et_mqtt base;                /* first: the seam's handle */
    struct et_fake_broker *broker;      /* NULL once the broker is destroyed */
    char *client_id;
    struct et_fake_message will;        /* topic NULL: none */
    struct et_mqtt_queue events;
    size_t queued_messages;             /* of which MESSAGE */
    size_t dropped;
    bool started;
    bool connected;
    int next_token;
    struct fake_sub *subs;
    size_t n_subs;
};

/* Where the next message of one shared subscription goes. */
struct share_cursor {
    char *filter;           /* $share/GROUP/FILTER */
    size_t next;
};

struct et_fake_broker {
    struct et_mqtt_transport transport;
    bool up;
    bool fail_publishes;
    struct ptr_list clients;    /* struct et_fake_client *, in order of creation */
    struct ptr_list published;  /* struct et_fake_message *, owned */
    struct ptr_list retained;   /* struct et_fake_message *, owned, one per topic */
    struct ptr_list cursors;    /* struct share_cursor * */
};

/* The operations of every client the broker's transport makes. */
extern const struct et_mqtt_ops fake_client_ops;

/* ---- fake_mqtt.c ---- */

int fake_list_add(struct ptr_list *l, void *item);
void fake_list_remove_at(struct ptr_list *l, size_t i);
/* len bytes of p and a NUL after them, so a text payload reads as a string. */
void *fake_copy_bytes(const void *p, size_t len);
/* + and # stand for whole levels, # only at the end. */
bool fake_filter_valid(const char *filter);
/* Record msg, keep it if retained, and route it. */
/* Keep, retain and route msg; *takers (may be NULL) gets how many subscriptions took it. */
int fake_broker_accept(struct et_fake_broker *b, const struct et_fake_message *msg,
                       size_t *takers);
/* Retained messages for c's plain subscriptions, or only for only_filter. */
void fake_send_retained(struct et_fake_client *c, const char *only_filter);
/* c connects (taking over a connected client with its id): CONNECTED, then retained. */
void fake_client_connect(struct et_fake_client *c);
/* c's connection ends with reason; will: the broker publishes c's will. */
void fake_connection_lost(struct et_fake_client *c, const char *reason, bool will);

/* ---- fake_mqtt_client.c ---- */

/* Returns 0, or -ENOBUFS (queue full) or -ENOMEM with the event dropped and counted. */
int fake_queue_event(struct et_fake_client *c, enum et_mqtt_event_type type, int token,
                     const char *topic, const void *payload, size_t len, const char *reason);
/* Does a plain (not shared) subscription of c, or only only_filter, match topic? */
bool fake_client_wants(const struct et_fake_client *c, const char *topic, const char *only_filter);
bool fake_client_has_sub(const struct et_fake_client *c, const char *filter);

#endif
