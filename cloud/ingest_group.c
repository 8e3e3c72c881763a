/*
 * Group commit and the Acks it holds: a burst of messages shares one
 * durable commit, and no Ack of the burst leaves before it. See ingest.h.
 */
#include "ingest_priv.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int ingest_tx_begin(struct et_ingest *ig)
{
    if (ig->group.open)
        return ig->group.failed ? -ECANCELED : 0;   /* joins the group's transaction */
    return et_store_begin(ig->w);
}

int ingest_tx_commit(struct et_ingest *ig)
{
    if (ig->group.open)
        return ig->group.failed ? -ECANCELED : 0;   /* durable at et_ingest_group_end() */
    return et_store_commit(ig->w);
}

void ingest_tx_rollback(struct et_ingest *ig)
{
    if (ig->group.open)
        ig->group.failed = true;
    else
        et_store_rollback(ig->w);
    ingest_dict_forget(ig);
}

void ingest_hold_ack(struct et_ingest *ig, struct et_ingest_reply *reply)
{
    struct ingest_group *g = &ig->group;
    struct ingest_held_ack *h;

    if (!g->open || !reply->ack)
        return;
    reply->ack = NULL;
    reply->ack_held = true;
    if (g->n_held == g->cap_held) {
        size_t cap = g->cap_held ? g->cap_held * 2 : 32;
        struct ingest_held_ack *grown = realloc(g->held, cap * sizeof(*grown));

        if (!grown)
            return;   /* not acked: the device sends the batch again */
        g->held = grown;
        g->cap_held = cap;
    }
    h = &g->held[g->n_held];
    h->payload = malloc(reply->ack_len ? reply->ack_len : 1);
    if (!h->payload)
        return;
    memcpy(h->payload, ig->ack, reply->ack_len);
    h->len = reply->ack_len;
    h->kind = reply->kind;
    snprintf(h->topic, sizeof(h->topic), "%s", reply->ack_topic);
    snprintf(h->device, sizeof(h->device), "%s", reply->device);
    h->seq = reply->seq;
    h->acked_through = reply->acked_through;
    g->n_held++;
}

/* Publish (committed) or forget (rolled back) every held Ack. */
static void release_held(struct ingest_group *g, et_ingest_publish_fn publish, void *ctx)
{
    for (size_t i = 0; i < g->n_held; i++) {
        struct ingest_held_ack *h = &g->held[i];

        if (publish) {
            struct et_ingest_reply r = {
                .kind = h->kind, .seq = h->seq, .acked_through = h->acked_through,
                .ack_topic = h->topic, .ack = h->payload, .ack_len = h->len,
            };

            memcpy(r.device, h->device, sizeof(r.device));
            publish(ctx, &r);
        }
        free(h->payload);
    }
    g->n_held = 0;
}

int et_ingest_group_begin(struct et_ingest *ig)
{
    int ret;

    if (ig->group.open)
        return -EALREADY;
    ret = et_store_begin(ig->w);
    if (ret < 0)
        return ret;
    ig->group.open = true;
    ig->group.failed = false;
    return 0;
}

int et_ingest_group_end(struct et_ingest *ig, et_ingest_publish_fn publish, void *ctx,
                        size_t *held)
{
    struct ingest_group *g = &ig->group;
    int ret;

    if (held)
        *held = g->n_held;
    if (!g->open)
        return -EINVAL;
    g->open = false;
    if (g->failed) {
        g->failed = false;
        et_store_rollback(ig->w);
        ret = -ECANCELED;
    } else {
        ret = et_store_commit(ig->w);
    }
    ingest_group_settled(ig, ret);
    if (ret != 0)
        ingest_dict_forget(ig);   /* entries it kept are gone with it */
    release_held(g, ret == 0 ? publish : NULL, ctx);
    return ret;
}

void ingest_group_free(struct et_ingest *ig)
{
    if (ig->group.open) {
        ig->group.open = false;
        et_store_rollback(ig->w);
        ingest_dict_forget(ig);
    }
    release_held(&ig->group, NULL, NULL);
    free(ig->group.held);
}
