/*
 * The fake broker (fake_mqtt.h): topic matching, routing, retained
 * messages, shared subscriptions, wills, connections, and the test's
 * controls. Its clients, the seam's side, are in fake_mqtt_client.c.
 *
 * Everything runs on the caller's thread: a client's publish routes the
 * message into the queues of the clients it reaches, each of which makes
 * its eventfd readable; their owners dispatch when they poll. Lists keep
 * the order things were made in, so every run routes the same way.
 */
#include "fake_mqtt_internal.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#define REASON_DOWN "connection to fake broker lost: broker down"
#define REASON_TAKEN_OVER "connection to fake broker lost: session taken over by a newer client"

/* ---- small parts --------------------------------------------------------- */

int fake_list_add(struct ptr_list *l, void *item)
{
    if (l->n == l->cap) {
        size_t cap = l->cap ? l->cap * 2 : 8;
        void **grown = realloc(l->items, cap * sizeof(*grown));

        if (!grown)
            return -ENOMEM;
        l->items = grown;
        l->cap = cap;
    }
    l->items[l->n++] = item;
    return 0;
}

void fake_list_remove_at(struct ptr_list *l, size_t i)
{
    memmove(&l->items[i], &l->items[i + 1], (l->n - i - 1) * sizeof(*l->items));
    l->n--;
}

/* len bytes of p and a NUL after them, so a text payload reads as a string. */
void *fake_copy_bytes(const void *p, size_t len)
{
    char *out = malloc(len + 1);

    if (!out)
        return NULL;
    if (len)
        memcpy(out, p, len);
    out[len] = '\0';
    return out;
}

static void message_free(struct et_fake_message *msg)
{
    if (!msg)
        return;
    free((char *)msg->client_id);
    free((char *)msg->topic);
    free((void *)msg->payload);
    free(msg);
}

static struct et_fake_message *message_copy(const struct et_fake_message *src)
{
    struct et_fake_message *msg = calloc(1, sizeof(*msg));

    if (!msg)
        return NULL;
    *msg = *src;
    msg->client_id = src->client_id ? strdup(src->client_id) : NULL;
    msg->topic = strdup(src->topic);
    msg->payload = fake_copy_bytes(src->payload, src->len);
    if ((src->client_id && !msg->client_id) || !msg->topic || !msg->payload) {
        message_free(msg);
        return NULL;
    }
    return msg;
}

bool et_fake_topic_matches(const char *filter, const char *topic)
{
    /* A wildcard at the first level never matches $SYS and the like. */
    if (topic[0] == '$' && (filter[0] == '+' || filter[0] == '#'))
        return false;
    for (;;) {
        if (filter[0] == '#')
            return true;
        if (filter[0] == '+') {
            filter++;
            topic += strcspn(topic, "/");
        } else {
            while (*filter && *filter != '/' && *filter == *topic) {
                filter++;
                topic++;
            }
            if ((*filter && *filter != '/') || (*topic && *topic != '/'))
                return false;
        }
        /* Both are at the end of a level. */
        if (!*filter && !*topic)
            return true;
        if (*filter == '/' && !*topic)
            return strcmp(filter, "/#") == 0;   /* "a/#" matches "a" too */
        if (!*filter || !*topic)
            return false;
        filter++;
        topic++;
    }
}

/* + and # stand for whole levels, # only at the end. */
bool fake_filter_valid(const char *f)
{
    if (!*f)
        return false;
    for (const char *p = f; *p; p++) {
        bool whole = (p == f || p[-1] == '/') && (!p[1] || p[1] == '/');

        if ((*p == '+' && !whole) || (*p == '#' && (!whole || p[1])))
            return false;
    }
    return true;
}

/* ---- routing ------------------------------------------------------------- */

/* Retained messages for c's plain subscriptions, or only for only_filter. */
void fake_send_retained(struct et_fake_client *c, const char *only_filter)
{
    const struct ptr_list *r = &c->broker->retained;

    for (size_t i = 0; i < r->n; i++) {
        const struct et_fake_message *msg = r->items[i];

        if (fake_client_wants(c, msg->topic, only_filter))
            fake_queue_event(c, ET_MQTT_MESSAGE, 0, msg->topic, msg->payload, msg->len, NULL);
    }
}

static struct share_cursor *cursor_for(struct et_fake_broker *b, const char *filter)
{
    struct share_cursor *cur;

    for (size_t i = 0; i < b->cursors.n; i++) {
        cur = b->cursors.items[i];
        if (strcmp(cur->filter, filter) == 0)
            return cur;
    }
    cur = calloc(1, sizeof(*cur));
    if (!cur || !(cur->filter = strdup(filter)) || fake_list_add(&b->cursors, cur) != 0) {
        if (cur)
            free(cur->filter);
        free(cur);
        return NULL;
    }
    return cur;
}

/* One member of the shared subscription `share`, in turn, gets msg. */
static void deliver_shared(struct et_fake_broker *b, const char *share,
                           const struct et_fake_message *msg)
{
    struct share_cursor *cur = cursor_for(b, share);
    size_t members = 0, pick;

    for (size_t i = 0; i < b->clients.n; i++) {
        const struct et_fake_client *c = b->clients.items[i];

        members += c->connected && fake_client_has_sub(c, share);
    }
    if (!cur || members == 0)
        return;
    pick = cur->next++ % members;
    for (size_t i = 0; i < b->clients.n; i++) {
        struct et_fake_client *c = b->clients.items[i];

        if (c->connected && fake_client_has_sub(c, share) && pick-- == 0) {
            fake_queue_event(c, ET_MQTT_MESSAGE, 0, msg->topic, msg->payload, msg->len, NULL);
            return;
        }
    }
}

/* Has an earlier subscription (client i, sub k) already named this shared subscription? */
static bool share_seen_before(const struct et_fake_broker *b, size_t i, size_t k)
{
    const struct et_fake_client *c = b->clients.items[i];
    const char *share = c->subs[k].filter;

    for (size_t j = 0; j <= i; j++) {
        const struct et_fake_client *o = b->clients.items[j];

        for (size_t s = 0; s < (j == i ? k : o->n_subs); s++)
            if (o->connected && strcmp(o->subs[s].filter, share) == 0)
                return true;
    }
    return false;
}

/* Deliver msg to every subscriber; how many subscriptions (shared groups once) took it. */
static size_t route(struct et_fake_broker *b, const struct et_fake_message *msg)
{
    size_t takers = 0;

    for (size_t i = 0; i < b->clients.n; i++) {
        struct et_fake_client *c = b->clients.items[i];

        if (c->connected && fake_client_wants(c, msg->topic, NULL)) {
            fake_queue_event(c, ET_MQTT_MESSAGE, 0, msg->topic, msg->payload, msg->len, NULL);
            takers++;
        }
    }
    for (size_t i = 0; i < b->clients.n; i++) {
        const struct et_fake_client *c = b->clients.items[i];

        for (size_t k = 0; c->connected && k < c->n_subs; k++)
            if (c->subs[k].shared && et_fake_topic_matches(c->subs[k].match, msg->topic) &&
                !share_seen_before(b, i, k)) {
                deliver_shared(b, c->subs[k].filter, msg);
                takers++;
            }
    }
    return takers;
}

static int keep_retained(struct et_fake_broker *b, const struct et_fake_message *msg)
{
    struct et_fake_message *copy = NULL;

    if (msg->len > 0 && !(copy = message_copy(msg)))
        return -ENOMEM;
    for (size_t i = 0; i < b->retained.n; i++) {
        struct et_fake_message *old = b->retained.items[i];

        if (strcmp(old->topic, msg->topic) == 0) {
            message_free(old);
            fake_list_remove_at(&b->retained, i);
            break;
        }
    }
    /* An empty retained payload only deletes. */
    if (copy && fake_list_add(&b->retained, copy) != 0) {
        message_free(copy);
        return -ENOMEM;
    }
    return 0;
}

/* Record msg, keep it if retained, and route it. */
int fake_broker_accept(struct et_fake_broker *b, const struct et_fake_message *msg,
                       size_t *takers)
{
    size_t n;

    struct et_fake_message *rec = message_copy(msg);
    int rc;

    if (!rec)
        return -ENOMEM;
    rc = fake_list_add(&b->published, rec);
    if (rc) {
        message_free(rec);
        return rc;
    }
    if (msg->retain && (rc = keep_retained(b, msg)) != 0)
        return rc;
    n = route(b, rec);
    if (takers)
        *takers = n;
    return 0;
}

/* ---- connections --------------------------------------------------------- */

static void send_will(struct et_fake_client *c)
{
    if (c->will.topic && c->broker && fake_broker_accept(c->broker, &c->will, NULL) != 0)
        c->dropped++;
}

void fake_connection_lost(struct et_fake_client *c, const char *reason, bool will)
{
    if (!c->connected)
        return;
    c->connected = false;
    fake_queue_event(c, ET_MQTT_DISCONNECTED, 0, NULL, NULL, 0, reason);
    if (will)
        send_will(c);
}

void fake_client_connect(struct et_fake_client *c)
{
    struct et_fake_broker *b = c->broker;

    for (size_t i = 0; i < b->clients.n; i++) {
        struct et_fake_client *o = b->clients.items[i];

        if (o != c && o->connected && strcmp(o->client_id, c->client_id) == 0)
            fake_connection_lost(o, REASON_TAKEN_OVER, true);
    }
    c->connected = true;
    fake_queue_event(c, ET_MQTT_CONNECTED, 0, NULL, NULL, 0, NULL);
    fake_send_retained(c, NULL);
}

/* ---- the broker and its controls ----------------------------------------- */

int et_fake_broker_create(struct et_fake_broker **out)
{
    struct et_fake_broker *b = calloc(1, sizeof(*b));

    *out = NULL;
    if (!b)
        return -ENOMEM;
    b->transport = (struct et_mqtt_transport){ .ops = &fake_client_ops, .impl = b };
    b->up = true;
    *out = b;
    return 0;
}

void et_fake_broker_destroy(struct et_fake_broker *b)
{
    if (!b)
        return;
    for (size_t i = 0; i < b->clients.n; i++) {
        struct et_fake_client *c = b->clients.items[i];

        c->broker = NULL;
        c->connected = false;
    }
    for (size_t i = 0; i < b->published.n; i++)
        message_free(b->published.items[i]);
    for (size_t i = 0; i < b->retained.n; i++)
        message_free(b->retained.items[i]);
    for (size_t i = 0; i < b->cursors.n; i++) {
        struct share_cursor *cur = b->cursors.items[i];

        free(cur->filter);
        free(cur);
    }
    free(b->clients.items);
    free(b->published.items);
    free(b->retained.items);
    free(b->cursors.items);
    free(b);
}

const struct et_mqtt_transport *et_fake_broker_transport(struct et_fake_broker *b)
{
    return &b->transport;
}

void et_fake_broker_set_up(struct et_fake_broker *b, bool up)
{
    b->up = up;
    for (size_t i = 0; i < b->clients.n; i++) {
        struct et_fake_client *c = b->clients.items[i];

        if (!up)
            fake_connection_lost(c, REASON_DOWN, false);
        else if (c->started && !c->connected)
            fake_client_connect(c);
    }
}

bool et_fake_broker_is_up(const struct et_fake_broker *b)
{
    return b->up;
}

void et_fake_broker_fail_publishes(struct et_fake_broker *b, bool fail)
{
    b->fail_publishes = fail;
}

int et_fake_broker_publish(struct et_fake_broker *b, const char *topic, const void *payload,
                           size_t len, bool retain)
{
    struct et_fake_message msg = { .topic = topic, .payload = payload ? payload : "",
                                   .len = len, .qos = 1, .retain = retain };

    if (!topic || !topic[0] || strpbrk(topic, "+#") || (len > 0 && !payload))
        return -EINVAL;
    if (!b->up)
        return -ENOTCONN;
    return fake_broker_accept(b, &msg, NULL);
}

size_t et_fake_broker_n_published(const struct et_fake_broker *b)
{
    return b->published.n;
}

const struct et_fake_message *et_fake_broker_published(const struct et_fake_broker *b, size_t i)
{
    return i < b->published.n ? b->published.items[i] : NULL;
}

const struct et_fake_message *et_fake_broker_retained(const struct et_fake_broker *b,
                                                      const char *topic)
{
    for (size_t i = 0; i < b->retained.n; i++) {
        const struct et_fake_message *msg = b->retained.items[i];

        if (strcmp(msg->topic, topic) == 0)
            return msg;
    }
    return NULL;
}

struct et_fake_client *et_fake_broker_client(struct et_fake_broker *b, const char *client_id)
{
    for (size_t i = b->clients.n; i-- > 0;) {
        struct et_fake_client *c = b->clients.items[i];

        if (strcmp(c->client_id, client_id) == 0)
            return c;
    }
    return NULL;
}


