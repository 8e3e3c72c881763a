/*
 * Ingest: what the aggregator does with one MQTT message, without MQTT.
 *
 * Given a topic, a payload and the time, et_ingest_message() checks and
 * decodes the message, stores it in one transaction, and says what to
 * publish back. It keeps no state about devices between calls: the dedupe
 * and the cumulative ack are computed from the store, so any number of
 * aggregator instances may share one store and one shared subscription.
 *
 * Telemetry ({root}/v1/{device}/telemetry, a Batch):
 *   - the device in the topic must be a valid id and equal Batch.device_id
 *     (the broker's ACL ties the topic to the device's certificate, so the
 *     topic is the identity we trust);
 *   - a batch that does not decode or validate is logged with the device,
 *     the topic and the reason, counted, and skipped. It is never acked.
 *   - in one transaction: if (device, seq) is stored it is a duplicate and
 *     nothing is stored; otherwise the batch row and every sample are. Then
 *     the device's ack rises to Batch.oldest_seq - 1 (the device holds
 *     nothing below it) and on over every stored seq that follows.
 *   - after the commit the reply is an Ack for {root}/v1/{device}/ack:
 *     acked_through, plus this batch's seq as a selective seq when it lies
 *     above. Duplicates are acked too: the device resent because it missed
 *     the earlier Ack, and only an Ack lets it delete the batch.
 *
 * Clock re-timing: a sample measured before the device's clock was
 * synchronised (quality UNSYNCED) is stored with the wall time it was given
 * and counted in its batch row. When a batch made on a synchronised clock
 * arrives from the same boot, its (base_wall_ms, base_mono_ms) pair maps
 * that boot's monotonic clock to true wall time: the waiting samples are
 * re-timed and marked CORRECTED, and so are unsynced samples of that boot
 * that arrive later (the backlog drains behind live data).
 *
 * Status ({root}/v1/{device}/status, a Status, retained): the device's row
 * gets its online state and counters. An empty payload (a cleared retained
 * message) is ignored.
 */
#ifndef EDGETEL_INGEST_H
#define EDGETEL_INGEST_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "edgetel/store.h"

/* Longest topic root accepted, e.g. "edgetel" or "acme/site-3/edgetel". */
#define ET_TOPIC_ROOT_MAX 128
#define ET_DEVICE_ID_MAX 64

enum et_ingest_kind {
    ET_INGEST_NONE = 0,       /* nothing happened (a store error) */
    ET_INGEST_STORED,         /* a new batch stored; ack in the reply */
    ET_INGEST_DUPLICATE,      /* batch already stored; ack in the reply */
    ET_INGEST_STATUS,         /* a device status recorded */
    ET_INGEST_MALFORMED,      /* rejected and counted; logged */
    ET_INGEST_IGNORED,        /* not a topic the aggregator handles */
};

/* Counters since et_ingest_create(). */
struct et_ingest_stats {
    uint64_t batches;         /* new batches stored */
    uint64_t samples;         /* samples in them */
    uint64_t duplicates;
    uint64_t malformed;
    uint64_t statuses;
    uint64_t new_devices;
    uint64_t store_errors;    /* messages not stored because the store failed */
    uint64_t ignored;
    uint64_t retimed;         /* unsynced samples given their true wall time */
};

struct et_ingest_reply {
    enum et_ingest_kind kind;
    char device[ET_DEVICE_ID_MAX + 1];  /* "" when the topic had none */
    uint64_t seq;             /* STORED / DUPLICATE: the batch's seq */
    uint64_t acked_through;   /* STORED / DUPLICATE */
    bool new_device;          /* the store had never heard of the device */
    /* STORED / DUPLICATE: publish ack (ack_len bytes) to ack_topic, QoS 1,
     * not retained. Both are owned by the ingest handle and valid until
     * its next call or its destruction. */
    const char *ack_topic;
    const uint8_t *ack;
    size_t ack_len;
};

struct et_ingest;

/**
 * @param store borrowed; must outlive the handle.
 * @param topic_root copied; 1..ET_TOPIC_ROOT_MAX chars with no wildcards.
 * @return 0, -EINVAL for a bad root, -ENOMEM.
 */
int et_ingest_create(struct et_ingest **out, struct et_store *store, const char *topic_root);
void et_ingest_destroy(struct et_ingest *ig);

/**
 * Handle one message (see the top of this file).
 * @param now_ms the aggregator's wall clock, Unix epoch ms (received time).
 * @return 0 when the message was dealt with (reply->kind says how,
 *         including MALFORMED and IGNORED), or -errno when the store
 *         failed: nothing was stored and nothing must be acked; the device
 *         sends the batch again when its ack does not come.
 */
int et_ingest_message(struct et_ingest *ig, const char *topic, const void *payload,
                      size_t len, int64_t now_ms, struct et_ingest_reply *reply);

const struct et_ingest_stats *et_ingest_stats(const struct et_ingest *ig);

/**
 * Split "{root}/v1/{device}/{leaf}" into device and leaf.
 * @return 0 when topic is under root and has that shape, device is a valid
 *         id (copied into device, ET_DEVICE_ID_MAX + 1 bytes) and leaf
 *         points into topic; -ENOENT when topic is not under root/v1/;
 *         -EINVAL when it is but the shape or the device id is wrong.
 */
int et_ingest_parse_topic(const char *root, const char *topic, char *device,
                          const char **leaf);

#endif
