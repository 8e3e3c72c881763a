/*
 * The transports' event queue (edgetel/mqtt_queue.h): a list of owned
 * copies and an eventfd that counts them.
 */
#include "edgetel/mqtt_queue.h"

#include "edgetel/log.h"

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

struct et_mqtt_queued {
    struct et_mqtt_queued *next;
    struct et_mqtt_event ev;    /* topic, payload and reason owned */
};

static void queued_free(struct et_mqtt_queued *e)
{
    free((char *)e->ev.topic);
    free((void *)e->ev.payload);
    free((char *)e->ev.reason);
    free(e);
}

int et_mqtt_queue_init(struct et_mqtt_queue *q)
{
    q->head = NULL;
    q->tail = &q->head;
    q->n = 0;
    q->fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    return q->fd < 0 ? -errno : 0;
}

void et_mqtt_queue_fini(struct et_mqtt_queue *q)
{
    et_mqtt_queue_run(et_mqtt_queue_take(q), NULL, NULL);
    if (q->fd >= 0)
        close(q->fd);
    q->fd = -1;
}

int et_mqtt_queue_push(struct et_mqtt_queue *q, const struct et_mqtt_event *ev)
{
    struct et_mqtt_queued *e = calloc(1, sizeof(*e));
    char *payload = NULL;
    uint64_t one = 1;

    if (!e)
        return -ENOMEM;
    e->ev = *ev;
    e->ev.topic = NULL;
    e->ev.payload = NULL;
    e->ev.reason = NULL;
    if ((ev->topic && !(e->ev.topic = strdup(ev->topic))) ||
        (ev->reason && !(e->ev.reason = strdup(ev->reason))))
        goto nomem;
    /* A message always has a payload, if only the NUL of an empty one. */
    if (ev->payload || ev->type == ET_MQTT_MESSAGE) {
        payload = malloc(ev->len + 1);
        if (!payload)
            goto nomem;
        if (ev->len)
            memcpy(payload, ev->payload, ev->len);
        payload[ev->len] = '\0';
        e->ev.payload = payload;
    }
    *q->tail = e;
    q->tail = &e->next;
    q->n++;
    /* Can only fail when the counter would overflow: it is still readable then. */
    if (write(q->fd, &one, sizeof(one)) < 0 && errno != EAGAIN)
        et_error("mqtt", "cannot signal event descriptor: %s", strerror(errno));
    return 0;

nomem:
    queued_free(e);
    return -ENOMEM;
}

struct et_mqtt_queued *et_mqtt_queue_take(struct et_mqtt_queue *q)
{
    struct et_mqtt_queued *list = q->head;
    uint64_t count;

    q->head = NULL;
    q->tail = &q->head;
    q->n = 0;
    while (q->fd >= 0 && read(q->fd, &count, sizeof(count)) > 0)
        ;
    return list;
}

int et_mqtt_queue_run(struct et_mqtt_queued *list, et_mqtt_handler handler, void *ctx)
{
    int n = 0;

    while (list) {
        struct et_mqtt_queued *e = list;

        list = e->next;
        if (handler)
            handler(ctx, &e->ev);
        queued_free(e);
        n++;
    }
    return n;
}
