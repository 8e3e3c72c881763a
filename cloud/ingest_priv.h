/*
 * The ingest handle, shared by ingest.c (messages) and ingest_group.c
 * (group commit and held Acks). Private to et_cloud.
 */
#ifndef EDGETEL_INGEST_PRIV_H
#define EDGETEL_INGEST_PRIV_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "edgetel/budget.h"
#include "edgetel/ingest.h"

/* {root}/v1/{device}/ack */
#define INGEST_TOPIC_MAX (ET_TOPIC_ROOT_MAX + ET_DEVICE_ID_MAX + 16)

/* An Ack held until its group commits. */
struct ingest_held_ack {
    enum et_ingest_kind kind;
    char topic[INGEST_TOPIC_MAX];
    char device[ET_DEVICE_ID_MAX + 1];
    uint64_t seq;
    uint64_t acked_through;
    uint8_t *payload;
    size_t len;
};

struct ingest_group {
    bool open;
    bool failed;               /* a message failed: the group rolls back */
    struct ingest_held_ack *held;
    size_t n_held, cap_held;
};

/*
 * Whether the store is failing, for saying so once, a reminder at most
 * once a minute, and once when it works again (ingest.c).
 */
struct ingest_health {
    bool failing;
    int64_t since_ms;          /* the first failure, the aggregator's clock */
    uint64_t failed;           /* messages not stored since then */
    int64_t next_remind_ms;
    char reason[256];          /* the last failure's */
};

struct et_ingest {
    struct et_store_writer *w;     /* borrowed */
    char root[ET_TOPIC_ROOT_MAX + 1];
    struct et_ingest_stats stats;
    /* Per-batch scratch, grown to the largest batch seen. */
    int64_t *mono;
    size_t mono_cap;
    int64_t *metric_ids;
    size_t metric_cap;
    /* Samples re-timed by the transaction in progress; counted on commit. */
    uint64_t pending_retimed;
    /* The time of the message in hand (et_ingest_message's now_ms). */
    int64_t now_ms;
    /* Inside a group, what its messages stored is counted here and moves
     * into stats only when the group commits: a rolled-back batch was
     * not stored. pending_msgs is how many messages that is. */
    struct et_ingest_stats pending;
    uint64_t pending_msgs;
    struct ingest_health health;
    struct et_budget *budget;      /* NULL: no per-device budget */
    struct et_budget_cfg budget_cfg;
    /* The last reply's Ack. */
    char ack_topic[INGEST_TOPIC_MAX];
    uint8_t *ack;
    struct ingest_group group;
};

/*
 * One message's transaction: its own, or its share of the open group's.
 * Inside a failed group begin and commit return -ECANCELED; a rollback
 * inside a group spoils the group, as the message's half-done writes can
 * only be undone with everything else in it.
 */
int ingest_tx_begin(struct et_ingest *ig);
int ingest_tx_commit(struct et_ingest *ig);
void ingest_tx_rollback(struct et_ingest *ig);

/* Inside a group: keep a copy of reply's Ack for after the commit and take
 * it out of reply (ack NULL, ack_held true). Outside one: nothing. */
void ingest_hold_ack(struct et_ingest *ig, struct et_ingest_reply *reply);

/*
 * The group ended with ret (0: committed): its messages' counts become
 * stored or store errors, and the store's health is updated. ingest.c.
 */
void ingest_group_settled(struct et_ingest *ig, int ret);

/* Roll back an open group and drop what it held; free the list. */
void ingest_group_free(struct et_ingest *ig);

#endif
