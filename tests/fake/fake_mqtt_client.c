/*
 * The fake broker's clients (fake_mqtt.h): the seam's operations that a
 * client made through et_fake_broker_transport() answers, its event queue
 * behind an eventfd, and what a test may ask of a client. Routing is in
 * fake_mqtt.c.
 */
#include "fake_mqtt_internal.h"

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define SHARE_PREFIX "$share/"
#define REASON_NOT_UP "connect to fake broker failed: broker down"
#define REASON_DROPPED "connection to fake broker lost: dropped by the test"
#define REASON_NO_BROKER "connect to fake broker failed: the broker was destroyed"
/* What the Paho transport says for a publish refused by the broker's ACL. */
#define REASON_REFUSED "broker refused publish: 0x87 Not authorized"

/* ---- a client's queue ---------------------------------------------------- */

int fake_queue_event(struct et_fake_client *c, enum et_mqtt_event_type type, int token,
                     const char *topic, const void *payload, size_t len, const char *reason)
{
    struct et_mqtt_event ev = { .type = type, .token = token, .topic = topic,
                                .payload = payload, .len = len, .reason = reason };

    if (type == ET_MQTT_MESSAGE && c->queued_messages >= ET_FAKE_QUEUE_MAX) {
        c->dropped++;
        return -ENOBUFS;
    }
    if (et_mqtt_queue_push(&c->events, &ev) != 0) {
        c->dropped++;
        return -ENOMEM;
    }
    c->queued_messages += type == ET_MQTT_MESSAGE;
    return 0;
}

bool fake_client_wants(const struct et_fake_client *c, const char *topic, const char *only_filter)
{
    for (size_t i = 0; i < c->n_subs; i++) {
        const struct fake_sub *s = &c->subs[i];

        if (!s->shared && (!only_filter || strcmp(s->filter, only_filter) == 0) &&
            et_fake_topic_matches(s->match, topic))
            return true;
    }
    return false;
}

bool fake_client_has_sub(const struct et_fake_client *c, const char *filter)
{
    for (size_t i = 0; i < c->n_subs; i++)
        if (strcmp(c->subs[i].filter, filter) == 0)
            return true;
    return false;
}

/* ---- the seam's operations ----------------------------------------------- */

static struct et_fake_client *to_client(struct et_mqtt *base)
{
    return (struct et_fake_client *)base;
}

static void client_free(struct et_fake_client *c)
{
    et_mqtt_queue_fini(&c->events);
    for (size_t i = 0; i < c->n_subs; i++)
        free(c->subs[i].filter);
    free(c->subs);
    free((char *)c->will.topic);
    free((void *)c->will.payload);
    free(c->client_id);
    free(c);
}

static int fake_create(void *impl, struct et_mqtt **out, const struct et_mqtt_cfg *cfg)
{
    struct et_fake_broker *b = impl;
    struct et_fake_client *c = calloc(1, sizeof(*c));
    int rc = -ENOMEM;

    if (!c)
        return -ENOMEM;
    c->broker = b;
    c->next_token = 1;
    rc = et_mqtt_queue_init(&c->events);
    if (rc)
        goto fail;
    rc = -ENOMEM;
    if (!(c->client_id = strdup(cfg->client_id)))
        goto fail;
    if (cfg->will_topic) {
        c->will = (struct et_fake_message){ .client_id = c->client_id, .len = cfg->will_len,
                                            .qos = 1, .retain = cfg->will_retain, .will = true };
        c->will.topic = strdup(cfg->will_topic);
        c->will.payload = fake_copy_bytes(cfg->will_payload, cfg->will_len);
        if (!c->will.topic || !c->will.payload)
            goto fail;
    }
    rc = fake_list_add(&b->clients, c);
    if (rc)
        goto fail;
    *out = &c->base;
    return 0;

fail:
    client_free(c);
    return rc;
}

static int fake_start(struct et_mqtt *base)
{
    struct et_fake_client *c = to_client(base);

    if (c->started)
        return -EALREADY;
    c->started = true;
    if (c->broker && c->broker->up)
        fake_client_connect(c);
    else
        fake_queue_event(c, ET_MQTT_DISCONNECTED, 0, NULL, NULL, 0,
                    c->broker ? REASON_NOT_UP : REASON_NO_BROKER);
    return 0;
}

static int fake_fd(const struct et_mqtt *base)
{
    return ((const struct et_fake_client *)base)->events.fd;
}

static int fake_dispatch(struct et_mqtt *base, et_mqtt_handler handler, void *ctx)
{
    struct et_fake_client *c = to_client(base);

    /* Take the whole queue: what the handlers cause waits for the next call. */
    c->queued_messages = 0;
    return et_mqtt_queue_run(et_mqtt_queue_take(&c->events), handler, ctx);
}

static int fake_subscribe(struct et_mqtt *base, const char *filter, int qos)
{
    struct et_fake_client *c = to_client(base);
    struct fake_sub sub = { .shared = strncmp(filter, SHARE_PREFIX, strlen(SHARE_PREFIX)) == 0 };
    struct fake_sub *grown;

    if (fake_client_has_sub(c, filter))
        goto subscribed;
    if (!(sub.filter = strdup(filter)))
        return -ENOMEM;
    sub.match = sub.filter;
    if (sub.shared) {
        const char *group = sub.filter + strlen(SHARE_PREFIX);
        const char *slash = strchr(group, '/');

        if (!slash || slash == group || strcspn(group, "+#") < (size_t)(slash - group)) {
            free(sub.filter);
            return -EINVAL;
        }
        sub.match = slash + 1;
    }
    if (!fake_filter_valid(sub.match)) {
        free(sub.filter);
        return -EINVAL;
    }
    grown = realloc(c->subs, (c->n_subs + 1) * sizeof(*grown));
    if (!grown) {
        free(sub.filter);
        return -ENOMEM;
    }
    c->subs = grown;
    c->subs[c->n_subs++] = sub;
subscribed:
    /* A broker answers every SUBSCRIBE with the retained messages it matches. */
    if (c->connected)
        fake_send_retained(c, filter);
    return 0;
}

static int fake_publish(struct et_mqtt *base, const char *topic, const void *payload, size_t len,
                        int qos, bool retain)
{
    struct et_fake_client *c = to_client(base);
    struct et_fake_message msg = { .client_id = c->client_id, .topic = topic,
                                   .payload = payload ? payload : "", .len = len, .qos = qos,
                                   .retain = retain };
    int token, rc;

    if (!c->connected)
        return -ENOTCONN;
    token = c->next_token;
    c->next_token = c->next_token == INT32_MAX ? 1 : c->next_token + 1;
    if (c->broker->fail_publishes) {
        if (qos > 0)
            fake_queue_event(c, ET_MQTT_PUBLISH_FAILED, token, NULL, NULL, 0, REASON_REFUSED);
        return token;
    }
    rc = fake_broker_accept(c->broker, &msg, NULL);
    if (rc)
        return rc;
    if (qos > 0)
        fake_queue_event(c, ET_MQTT_PUBLISHED, token, NULL, NULL, 0, NULL);
    return token;
}

static bool fake_connected(const struct et_mqtt *base)
{
    return ((const struct et_fake_client *)base)->connected;
}

/* A clean disconnect: the broker forgets the client and does not send its will. */
static void fake_destroy(struct et_mqtt *base, int timeout_ms)
{
    struct et_fake_client *c = to_client(base);
    struct et_fake_broker *b = c->broker;

    for (size_t i = 0; b && i < b->clients.n; i++) {
        if (b->clients.items[i] == c) {
            fake_list_remove_at(&b->clients, i);
            break;
        }
    }
    client_free(c);
}

const struct et_mqtt_ops fake_client_ops = {
    .name = "fake",
    .create = fake_create,
    .start = fake_start,
    .fd = fake_fd,
    .dispatch = fake_dispatch,
    .subscribe = fake_subscribe,
    .publish = fake_publish,
    .connected = fake_connected,
    .destroy = fake_destroy,
};

/* ---- what a test may ask of a client ------------------------------------- */

struct et_mqtt_cfg et_fake_client_cfg(const char *client_id)
{
    return (struct et_mqtt_cfg){
        .host = "fake-broker",
        .port = 1883,
        .client_id = client_id,
        .keepalive_s = 30,
        .min_backoff_ms = 500,
        .max_backoff_ms = 60000,
        .max_inflight = 64,
    };
}

bool et_fake_client_started(const struct et_fake_client *c)
{
    return c->started;
}

bool et_fake_client_connected(const struct et_fake_client *c)
{
    return c->connected;
}

bool et_fake_client_subscribed(const struct et_fake_client *c, const char *filter)
{
    return fake_client_has_sub(c, filter);
}

const char *et_fake_client_subscription(const struct et_fake_client *c, size_t i)
{
    return i < c->n_subs ? c->subs[i].filter : NULL;
}

const struct et_fake_message *et_fake_client_will(const struct et_fake_client *c)
{
    return c->will.topic ? &c->will : NULL;
}

size_t et_fake_client_queued(const struct et_fake_client *c)
{
    return c->events.n;
}

size_t et_fake_client_dropped(const struct et_fake_client *c)
{
    return c->dropped;
}

int et_fake_client_inject(struct et_fake_client *c, const char *topic, const void *payload,
                          size_t len)
{
    if (!topic || (len > 0 && !payload))
        return -EINVAL;
    return fake_queue_event(c, ET_MQTT_MESSAGE, 0, topic, payload, len, NULL);
}

void et_fake_client_drop(struct et_fake_client *c)
{
    fake_connection_lost(c, REASON_DROPPED, true);
}
