/*
 * The event queue every MQTT transport needs to keep the seam's threading
 * contract (edgetel/mqtt.h): events are copied in as they happen, a
 * descriptor is readable while any wait, and et_mqtt_dispatch() hands them
 * to the owner's handler on the owner's thread. For implementations of
 * struct et_mqtt_ops (Paho, the tests' fake broker), not for their users.
 *
 * Not locked: an implementation that calls back on other threads holds its
 * own lock around et_mqtt_queue_push() and et_mqtt_queue_take(), and runs
 * the taken events with et_mqtt_queue_run() without it.
 */
#ifndef EDGETEL_MQTT_QUEUE_H
#define EDGETEL_MQTT_QUEUE_H

#include <stddef.h>

#include "edgetel/mqtt.h"

struct et_mqtt_queued;

struct et_mqtt_queue {
    struct et_mqtt_queued *head;
    struct et_mqtt_queued **tail;
    size_t n;                   /* events waiting */
    int fd;                     /* an eventfd, readable while n > 0 */
};

/** An empty queue and its descriptor. @return 0 or -errno from eventfd(). */
int et_mqtt_queue_init(struct et_mqtt_queue *q);

/** Free the events still waiting and close the descriptor. */
void et_mqtt_queue_fini(struct et_mqtt_queue *q);

/**
 * Append a copy of ev (its topic, payload and reason are copied; a copied
 * payload gets a NUL after its len bytes, so a handler may read a text
 * payload as a string, and a MESSAGE always has one) and make the
 * descriptor readable.
 * @return 0, or -ENOMEM with nothing queued.
 */
int et_mqtt_queue_push(struct et_mqtt_queue *q, const struct et_mqtt_event *ev);

/**
 * Take every waiting event, in order, and clear the descriptor: an event
 * pushed after this makes it readable again. Run the result with
 * et_mqtt_queue_run().
 */
struct et_mqtt_queued *et_mqtt_queue_take(struct et_mqtt_queue *q);

/**
 * Hand each taken event to handler (none when handler is NULL) and free
 * it. @return how many there were.
 */
int et_mqtt_queue_run(struct et_mqtt_queued *list, et_mqtt_handler handler, void *ctx);

#endif
