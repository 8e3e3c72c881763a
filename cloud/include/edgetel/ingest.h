/*
 * Ingest: what the aggregator does with one MQTT message, without MQTT.
 * The front of the cloud library, which owns the cloud's rules:
 *   ingest.c        decode, validate, dedupe, the rows to store, Status
 *   ingest_group.c  group commit, and holding Acks until it is durable
 *   ack.c           the cumulative ack and the Ack message (ack.h)
 *   retime.c        true wall times for unsynchronised samples (retime.h)
 * all written over the store writer (store_writer.h), which only stores.
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
 *   - a batch that does not decode or validate (the codec's checks,
 *     codec.h: text, indexes, bounds; a seq the store cannot keep) is
 *     logged with the device, the topic and the reason, counted, and
 *     skipped. It is never acked. So is a batch whose seq or oldest_seq
 *     jumps implausibly far ahead of what the store has of its stream
 *     (ack.h, "Seq poisoning").
 *   - a batch that decodes but whose sample times are impossible is
 *     quarantined: kept whole (device, stream, seq, why, its bytes; no
 *     sample stored), counted, and acked like a stored batch, so the
 *     device deletes it instead of sending it for ever; edgetelctl
 *     quarantine lists it. A sample's wall time must be from 2000-01-01
 *     to a day ahead of now_ms when its clock claims to be good (synced,
 *     corrected, or unspecified), from 1970 to 2100 when it says it is
 *     not (unsynced, uncorrectable: a board without a real-time clock
 *     before NTP). It passes the same budget, seq and dedupe checks as
 *     any batch (a resent one is a duplicate, acked again).
 *   - malformed and quarantined batches are said per device: the first
 *     in full, then at most one line a minute with how many more came and
 *     the last cause (et_ingest_tick()); the state is a bounded table.
 *   - with a budget (et_ingest_set_budget), a batch over its device's
 *     budget is refused before the store sees it: not stored, not acked.
 *   - seqs count per stream (Batch.stream_id; none: the legacy stream of
 *     agents from before streams). A stream the store has not heard of
 *     for the device is recorded as its current stream and logged once at
 *     info: "device D started a new stream S (was S', acked through N)".
 *     A batch of an older stream that still arrives (a re-flashed board's
 *     leftovers, in flight before the wipe) is stored and acked in its own
 *     stream.
 *   - in one transaction: if (device, stream, seq) is stored it is a
 *     duplicate and nothing is stored; otherwise the batch row and every
 *     sample are (re-timed as retime.h says). Then the stream's cumulative
 *     ack advances (ack.h).
 *   - after the commit the reply is an Ack for {root}/v1/{device}/ack
 *     (ack.h says what it names). Duplicates are acked too: the device
 *     resent because it missed the earlier Ack, and only an Ack lets it
 *     delete the batch.
 *
 * Group commit: between et_ingest_group_begin() and et_ingest_group_end()
 * every message joins one store transaction, so a burst of messages costs
 * one durable commit (one fsync) instead of one each. Nothing in the group
 * is durable, so none of its Acks may be published, before the group's
 * commit: ingest holds them and et_ingest_group_end() hands them to the
 * caller to publish only once the commit succeeded. A message that fails
 * inside the group spoils the whole group (its half-done writes share the
 * transaction): the rest of the group's messages fail with -ECANCELED,
 * the group is rolled back and its Acks are dropped; the devices send the
 * batches again when no Ack comes.
 *
 * A store that fails is said once, not once a message: one error line
 * (since when, the store's own reason, that nothing is acknowledged and
 * the devices keep their batches), a reminder at most once a minute with
 * the count, and one line when a commit works again.
 *
 * Status ({root}/v1/{device}/status, a Status, retained): the device's row
 * gets its online state and counters, and a stream it names that the store
 * has not heard of is recorded as above. Only an online Status counts as
 * hearing from the device (last seen): an offline one is the broker
 * speaking for it (its will) or a retained message replayed to a starting
 * aggregator. An empty payload (a cleared retained message) is ignored.
 * With a config part (et_ingest_set_config), an online Status's
 * config_version and groups are recorded in the same transaction (an
 * offline one may be a will made before the board applied its config);
 * a group list that is not valid (more than ET_STORE_CONFIG_GROUPS_MAX,
 * or a group that is not a name as a device id is) is logged with the
 * device and ignored, and the rest of the Status is recorded.
 */
#ifndef EDGETEL_INGEST_H
#define EDGETEL_INGEST_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "edgetel/store_writer.h"

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
    ET_INGEST_OVER_BUDGET,    /* refused: the device is over its budget (budget.h); no ack */
    ET_INGEST_QUARANTINED,    /* kept whole, not as samples (impossible times); ack in the reply */
    ET_INGEST_DICT_WANTED,    /* not stored: its stream's dictionary is not known; the reply's
                                 Ack asks the device for it (Ack.dict_wanted) */
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
    uint64_t over_budget;     /* messages refused: their device was over its budget */
    uint64_t new_streams;     /* streams recorded, a new device's first included */
    uint64_t quarantined;     /* batches kept whole for impossible sample times */
    uint64_t dict_wanted;     /* batches answered with "send the dictionary" */
};

struct et_ingest_reply {
    enum et_ingest_kind kind;
    char device[ET_DEVICE_ID_MAX + 1];  /* "" when the topic had none */
    uint64_t seq;             /* STORED / DUPLICATE / QUARANTINED: the batch's seq */
    uint64_t acked_through;   /* STORED / DUPLICATE / QUARANTINED */
    bool new_device;          /* the store had never heard of the device */
    bool changed;             /* STATUS: the online state is news (none was recorded,
                                 or it differs); a replayed retained Status is not */
    bool config_status;       /* STATUS: an online Status whose config_version (and
                                 groups) were recorded: the relay's cue */
    uint64_t config_version;  /* STATUS: the pushed config version it runs (0: its file) */
    /* STORED / DUPLICATE / QUARANTINED: publish ack (ack_len bytes) to ack_topic, QoS 1,
     * not retained. Both are owned by the ingest handle and valid until
     * its next call or its destruction. Inside a group ack is NULL and
     * ack_held true: the Ack waits for et_ingest_group_end(). */
    const char *ack_topic;
    const uint8_t *ack;
    size_t ack_len;
    bool ack_held;
};

/*
 * Publishes one Ack that et_ingest_group_end() releases: reply has kind,
 * device, seq, acked_through, ack_topic, ack and ack_len set, valid during
 * the call only.
 */
typedef void (*et_ingest_publish_fn)(void *ctx, const struct et_ingest_reply *reply);

struct et_ingest;

/**
 * @param w borrowed; must outlive the handle. While a group is open the
 *        handle owns w's transaction: nothing else may use w.
 * @param topic_root copied; 1..ET_TOPIC_ROOT_MAX chars with no wildcards.
 * @return 0, -EINVAL for a bad root or no writer, -ENOMEM.
 */
int et_ingest_create(struct et_ingest **out, struct et_store_writer *w, const char *topic_root);

/** Destroy; NULL is a no-op. An open group is rolled back and its Acks dropped. */
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

/**
 * Counters since et_ingest_create(). Inside a group, what its messages
 * stored is counted when the group commits; a group rolled back counts
 * each of its messages as a store error, none as stored.
 */
const struct et_ingest_stats *et_ingest_stats(const struct et_ingest *ig);

/**
 * Say what the malformed-message log holds back (see the top of this
 * file): for each device whose minute is up, one line with how many more
 * came and the last cause. Call it from the event loop.
 * @param now_ms the aggregator's wall clock, as for et_ingest_message().
 * @return ms until the next such line is due; INT64_MAX when none waits.
 */
int64_t et_ingest_tick(struct et_ingest *ig, int64_t now_ms);

/** Devices the malformed-message log keeps state for (bounded; for tests). */
size_t et_ingest_malformed_devices(const struct et_ingest *ig);

struct et_budget_cfg;
struct et_store_config;

/**
 * Record each online Status's config_version and groups through sc, the
 * config part of the store w belongs to (store_config.h), inside the
 * Status's transaction. NULL: not recorded (the default).
 */
void et_ingest_set_config(struct et_ingest *ig, struct et_store_config *sc);

/**
 * Give every device a budget of samples and bytes a second (budget.h):
 * a batch or Status over it is refused (ET_INGEST_OVER_BUDGET: not
 * stored, not acknowledged, so its device sends it again later), logged
 * at most once a minute per device and counted. NULL, or both rates 0:
 * no budget (the default).
 * @return 0, -EINVAL for a burst below its rate, -ENOMEM.
 */
int et_ingest_set_budget(struct et_ingest *ig, const struct et_budget_cfg *cfg);

/**
 * Open a group (see the top of this file): one store transaction begins.
 * @return 0; -EALREADY when one is open; a store error (then messages go
 *         on committing one by one).
 */
int et_ingest_group_begin(struct et_ingest *ig);

/**
 * Close the group: commit it, then hand every Ack it held to publish, in
 * the order of the messages, when the commit succeeded; drop them when it
 * did not.
 * @param held (may be NULL) gets the number of Acks the group held.
 * @return 0; -ECANCELED when a message failed and the group was rolled
 *         back; -EINVAL when no group is open; the store's error when the
 *         commit failed (it is then rolled back).
 */
int et_ingest_group_end(struct et_ingest *ig, et_ingest_publish_fn publish, void *ctx,
                        size_t *held);

/** Whether root is a topic root: 1..ET_TOPIC_ROOT_MAX chars, no wildcard, no trailing '/'. */
bool et_ingest_root_valid(const char *root);

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
