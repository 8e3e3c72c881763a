/*
 * An MQTT broker in the test process behind the seam's transport: see
 * fake_mqtt.h for what it does and where it is simpler than the real one.
 *
 * Everything runs on the caller's thread: a client's publish routes the
 * message into the queues of the clients it reaches, each of which makes
 * its eventfd readable; their owners dispatch when they poll. Lists keep
 * the order things were made in, so every run routes the same way.
 */
#include "fake_mqtt.h"

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#define SHARE_PREFIX "$share/"
#define REASON_DOWN "connection to fake broker lost: broker down"
#define REASON_NOT_UP "connect to fake broker failed: broker down"
#define REASON_NO_BROKER "connect to fake broker failed: the broker was destroyed"
#define REASON_DROPPED "connection to fake broker lost: dropped by the test"
#define REASON_TAKEN_OVER "connection to fake broker lost: session taken over by a newer client"
/* What the Paho transport says for a publish refused by the broker's ACL. */
#define REASON_REFUSED "broker refused publish: 0x87 Not authorized"

/* A growable list of pointers, kept in the order items were added. */
struct ptr_list {
    void **items;
    size_t n;
    size_t cap;
};

struct fake_event {
    struct fake_event *next;
    enum et_mqtt_event_type type;
    int token;
    char *topic;
    void *payload;
    size_t len;
    char *reason;
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
    int event_fd;
    struct fake_event *head;
    struct fake_event **tail;
    size_t queued;                      /* events in the queue */
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

static const struct et_mqtt_ops fake_ops;

/* ---- small parts ------------------------------------------------------------- */

static int list_add(struct ptr_list *l, void *item)
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

static void list_remove_at(struct ptr_list *l, size_t i)
{
    memmove(&l->items[i], &l->items[i + 1], (l->n - i - 1) * sizeof(*l->items));
    l->n--;
}

/* len bytes of p and a NUL after them, so a text payload reads as a string. */
static void *copy_bytes(const void *p, size_t len)
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
    msg->payload = copy_bytes(src->payload, src->len);
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
static bool filter_valid(const char *f)
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

/* ---- a client's queue ------------------------------------------------------------ */

static void event_free(struct fake_event *ev)
{
    free(ev->topic);
    free(ev->payload);
    free(ev->reason);
    free(ev);
}

/* Returns 0, or -ENOBUFS (queue full) or -ENOMEM with the event dropped and counted. */
static int queue_event(struct et_fake_client *c, enum et_mqtt_event_type type, int token,
                       const char *topic, const void *payload, size_t len, const char *reason)
{
    struct fake_event *ev;
    uint64_t one = 1;

    if (type == ET_MQTT_MESSAGE && c->queued_messages >= ET_FAKE_QUEUE_MAX) {
        c->dropped++;
        return -ENOBUFS;
    }
    ev = calloc(1, sizeof(*ev));
    if (!ev || (topic && !(ev->topic = strdup(topic))) ||
        (type == ET_MQTT_MESSAGE && !(ev->payload = copy_bytes(payload, len))) ||
        (reason && !(ev->reason = strdup(reason)))) {
        if (ev)
            event_free(ev);
        c->dropped++;
        return -ENOMEM;
    }
    ev->type = type;
    ev->token = token;
    ev->len = len;
    *c->tail = ev;
    c->tail = &ev->next;
    c->queued++;
    c->queued_messages += type == ET_MQTT_MESSAGE;
    /* Only fails if the counter would overflow, and then it is readable anyway. */
    (void)!write(c->event_fd, &one, sizeof(one));
    return 0;
}

static bool subscribed_plainly(const struct et_fake_client *c, const char *topic,
                               const char *only_filter)
{
    for (size_t i = 0; i < c->n_subs; i++) {
        const struct fake_sub *s = &c->subs[i];

        if (!s->shared && (!only_filter || strcmp(s->filter, only_filter) == 0) &&
            et_fake_topic_matches(s->match, topic))
            return true;
    }
    return false;
}

/* Retained messages for c's plain subscriptions, or only for only_filter. */
static void send_retained(struct et_fake_client *c, const char *only_filter)
{
    const struct ptr_list *r = &c->broker->retained;

    for (size_t i = 0; i < r->n; i++) {
        const struct et_fake_message *msg = r->items[i];

        if (subscribed_plainly(c, msg->topic, only_filter))
            queue_event(c, ET_MQTT_MESSAGE, 0, msg->topic, msg->payload, msg->len, NULL);
    }
}

/* ---- routing -------------------------------------------------------------------------- */

static struct share_cursor *cursor_for(struct et_fake_broker *b, const char *filter)
{
    struct share_cursor *cur;

    for (size_t i = 0; i < b->cursors.n; i++) {
        cur = b->cursors.items[i];
        if (strcmp(cur->filter, filter) == 0)
            return cur;
    }
    cur = calloc(1, sizeof(*cur));
    if (!cur || !(cur->filter = strdup(filter)) || list_add(&b->cursors, cur) != 0) {
        if (cur)
            free(cur->filter);
        free(cur);
        return NULL;
    }
    return cur;
}

static bool has_sub(const struct et_fake_client *c, const char *filter)
{
    for (size_t i = 0; i < c->n_subs; i++)
        if (strcmp(c->subs[i].filter, filter) == 0)
            return true;
    return false;
}

/* One member of the shared subscription `share`, in turn, gets msg. */
static void deliver_shared(struct et_fake_broker *b, const char *share,
                           const struct et_fake_message *msg)
{
    struct share_cursor *cur = cursor_for(b, share);
    size_t members = 0, pick;

    for (size_t i = 0; i < b->clients.n; i++) {
        const struct et_fake_client *c = b->clients.items[i];

        members += c->connected && has_sub(c, share);
    }
    if (!cur || members == 0)
        return;
    pick = cur->next++ % members;
    for (size_t i = 0; i < b->clients.n; i++) {
        struct et_fake_client *c = b->clients.items[i];

        if (c->connected && has_sub(c, share) && pick-- == 0) {
            queue_event(c, ET_MQTT_MESSAGE, 0, msg->topic, msg->payload, msg->len, NULL);
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

static void route(struct et_fake_broker *b, const struct et_fake_message *msg)
{
    for (size_t i = 0; i < b->clients.n; i++) {
        struct et_fake_client *c = b->clients.items[i];

        if (c->connected && subscribed_plainly(c, msg->topic, NULL))
            queue_event(c, ET_MQTT_MESSAGE, 0, msg->topic, msg->payload, msg->len, NULL);
    }
    for (size_t i = 0; i < b->clients.n; i++) {
        const struct et_fake_client *c = b->clients.items[i];

        for (size_t k = 0; c->connected && k < c->n_subs; k++)
            if (c->subs[k].shared && et_fake_topic_matches(c->subs[k].match, msg->topic) &&
                !share_seen_before(b, i, k))
                deliver_shared(b, c->subs[k].filter, msg);
    }
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
            list_remove_at(&b->retained, i);
            break;
        }
    }
    /* An empty retained payload only deletes. */
    if (copy && list_add(&b->retained, copy) != 0) {
        message_free(copy);
        return -ENOMEM;
    }
    return 0;
}

/* Record msg, keep it if retained, and route it. */
static int accept_message(struct et_fake_broker *b, const struct et_fake_message *msg)
{
    struct et_fake_message *rec = message_copy(msg);
    int rc;

    if (!rec)
        return -ENOMEM;
    rc = list_add(&b->published, rec);
    if (rc) {
        message_free(rec);
        return rc;
    }
    if (msg->retain && (rc = keep_retained(b, msg)) != 0)
        return rc;
    route(b, rec);
    return 0;
}

/* ---- connections ------------------------------------------------------------------------ */

static void send_will(struct et_fake_client *c)
{
    if (c->will.topic && c->broker && accept_message(c->broker, &c->will) != 0)
        c->dropped++;
}

static void connection_lost(struct et_fake_client *c, const char *reason, bool will)
{
    if (!c->connected)
        return;
    c->connected = false;
    queue_event(c, ET_MQTT_DISCONNECTED, 0, NULL, NULL, 0, reason);
    if (will)
        send_will(c);
}

static void client_connect(struct et_fake_client *c)
{
    struct et_fake_broker *b = c->broker;

    for (size_t i = 0; i < b->clients.n; i++) {
        struct et_fake_client *o = b->clients.items[i];

        if (o != c && o->connected && strcmp(o->client_id, c->client_id) == 0)
            connection_lost(o, REASON_TAKEN_OVER, true);
    }
    c->connected = true;
    queue_event(c, ET_MQTT_CONNECTED, 0, NULL, NULL, 0, NULL);
    send_retained(c, NULL);
}

/* ---- the seam's operations ---------------------------------------------------------------- */

static struct et_fake_client *to_client(struct et_mqtt *base)
{
    return (struct et_fake_client *)base;
}

static void client_free(struct et_fake_client *c)
{
    while (c->head) {
        struct fake_event *ev = c->head;

        c->head = ev->next;
        event_free(ev);
    }
    for (size_t i = 0; i < c->n_subs; i++)
        free(c->subs[i].filter);
    free(c->subs);
    if (c->event_fd >= 0)
        close(c->event_fd);
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
    c->tail = &c->head;
    c->next_token = 1;
    c->event_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (c->event_fd < 0) {
        rc = -errno;
        goto fail;
    }
    if (!(c->client_id = strdup(cfg->client_id)))
        goto fail;
    if (cfg->will_topic) {
        c->will = (struct et_fake_message){ .client_id = c->client_id, .len = cfg->will_len,
                                            .qos = 1, .retain = cfg->will_retain, .will = true };
        c->will.topic = strdup(cfg->will_topic);
        c->will.payload = copy_bytes(cfg->will_payload, cfg->will_len);
        if (!c->will.topic || !c->will.payload)
            goto fail;
    }
    rc = list_add(&b->clients, c);
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
        client_connect(c);
    else
        queue_event(c, ET_MQTT_DISCONNECTED, 0, NULL, NULL, 0,
                    c->broker ? REASON_NOT_UP : REASON_NO_BROKER);
    return 0;
}

static int fake_fd(const struct et_mqtt *base)
{
    return ((const struct et_fake_client *)base)->event_fd;
}

static int fake_dispatch(struct et_mqtt *base, et_mqtt_handler handler, void *ctx)
{
    struct et_fake_client *c = to_client(base);
    struct fake_event *list = c->head;
    uint64_t count;
    int n = 0;

    /* Take the whole queue: what the handlers cause waits for the next call. */
    c->head = NULL;
    c->tail = &c->head;
    c->queued = 0;
    c->queued_messages = 0;
    while (read(c->event_fd, &count, sizeof(count)) > 0)
        ;
    while (list) {
        struct fake_event *ev = list;
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

static int fake_subscribe(struct et_mqtt *base, const char *filter, int qos)
{
    struct et_fake_client *c = to_client(base);
    struct fake_sub sub = { .shared = strncmp(filter, SHARE_PREFIX, strlen(SHARE_PREFIX)) == 0 };
    struct fake_sub *grown;

    if (has_sub(c, filter))
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
    if (!filter_valid(sub.match)) {
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
        send_retained(c, filter);
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
            queue_event(c, ET_MQTT_PUBLISH_FAILED, token, NULL, NULL, 0, REASON_REFUSED);
        return token;
    }
    rc = accept_message(c->broker, &msg);
    if (rc)
        return rc;
    if (qos > 0)
        queue_event(c, ET_MQTT_PUBLISHED, token, NULL, NULL, 0, NULL);
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
            list_remove_at(&b->clients, i);
            break;
        }
    }
    client_free(c);
}

static const struct et_mqtt_ops fake_ops = {
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

/* ---- the broker and its controls --------------------------------------------------------------- */

int et_fake_broker_create(struct et_fake_broker **out)
{
    struct et_fake_broker *b = calloc(1, sizeof(*b));

    *out = NULL;
    if (!b)
        return -ENOMEM;
    b->transport = (struct et_mqtt_transport){ .ops = &fake_ops, .impl = b };
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
            connection_lost(c, REASON_DOWN, false);
        else if (c->started && !c->connected)
            client_connect(c);
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
    return accept_message(b, &msg);
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
    return has_sub(c, filter);
}

const struct et_fake_message *et_fake_client_will(const struct et_fake_client *c)
{
    return c->will.topic ? &c->will : NULL;
}

size_t et_fake_client_queued(const struct et_fake_client *c)
{
    return c->queued;
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
    return queue_event(c, ET_MQTT_MESSAGE, 0, topic, payload, len, NULL);
}

void et_fake_client_drop(struct et_fake_client *c)
{
    connection_lost(c, REASON_DROPPED, true);
}
