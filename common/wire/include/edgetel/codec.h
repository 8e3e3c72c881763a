/*
 * Wire codec: builds edgetel.v1.Batch messages from samples and checks
 * decoded messages before anything trusts them.
 *
 * The builder keeps the metric dictionary and the samples of one batch in
 * memory it owns; et_batch_encode() turns them into protobuf bytes and
 * et_batch_reset() starts the next batch while keeping the allocations.
 */
#ifndef EDGETEL_CODEC_H
#define EDGETEL_CODEC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "edgetel/value.h"
#include "edgetel/v1/config.pb-c.h"
#include "edgetel/v1/telemetry.pb-c.h"

#define ET_BOOT_ID_LEN 16
/* A stream id (Batch.stream_id): random bytes made with a device's outbox. */
#define ET_STREAM_ID_LEN 16
/* Largest message edgetel accepts from the network, in bytes. */
#define ET_WIRE_MAX_MESSAGE (1024 * 1024)
/* What one batch may hold: the builder refuses more, a decoded batch with
 * more is malformed. A time delta beyond ten years is garbage, not a clock. */
#define ET_WIRE_MAX_METRICS 4096
#define ET_WIRE_MAX_SAMPLES 200000
#define ET_WIRE_MAX_NAME 128
#define ET_WIRE_MAX_DT_MS (10LL * 366 * 24 * 3600 * 1000)

/* Per-sample time quality; values match edgetel.v1.TimeQuality. */
enum et_time_quality {
    ET_TQ_UNSPECIFIED = 0,
    ET_TQ_SYNCED = 1,
    ET_TQ_UNSYNCED = 2,
    ET_TQ_CORRECTED = 3,
    ET_TQ_UNCORRECTABLE = 4,
};

struct et_batch;

/* What the encoder stamps on a batch besides its samples. */
struct et_batch_meta {
    const char *device_id;
    uint64_t seq;
    uint8_t boot_id[ET_BOOT_ID_LEN];
    int64_t base_mono_ms;   /* monotonic ms that base_wall_ms describes */
    int64_t base_wall_ms;
    enum et_time_quality time_quality; /* batch-wide default */
    uint64_t oldest_seq;
    /* ET_STREAM_ID_LEN bytes, borrowed for the call; NULL: none (legacy). */
    const uint8_t *stream_id;
};

int et_batch_create(struct et_batch **out);
void et_batch_destroy(struct et_batch *b);

/**
 * Add one sample. metric and unit are copied. A sample whose time quality
 * equals the batch-wide one passed to et_batch_encode() costs nothing extra.
 * @return 0, -ENOMEM, or -EINVAL for an empty metric name or a string value
 *         longer than ET_VALUE_STR_MAX.
 */
int et_batch_add(struct et_batch *b, const char *metric, const char *unit,
                 int64_t mono_ms, const struct et_value *v, enum et_time_quality tq);

/* Tags: at most ET_TAGS_MAX per metric, keys of a-z 0-9 _ (1-32), values
 * of A-Z a-z 0-9 space _ - . : / (1-64). */
#define ET_TAGS_MAX 16
#define ET_TAG_KEY_MAX 32
#define ET_TAG_VALUE_MAX 64
#define ET_TAGS_TEXT_MAX (ET_TAGS_MAX * (ET_TAG_KEY_MAX + ET_TAG_VALUE_MAX + 2))

/**
 * The same as et_batch_add() for a metric with tags: tags is the canonical
 * "k=v,k2=v2" that et_tags_canonical() makes, or NULL. A metric's tags are
 * taken from its first sample in the batch.
 */
int et_batch_add_tagged(struct et_batch *b, const char *metric, const char *unit,
                        const char *tags, int64_t mono_ms, const struct et_value *v,
                        enum et_time_quality tq);

/**
 * Check "key=value, key2 = value2" from a config file and write its
 * canonical form "key=value,key2=value2" (spaces around keys, '=' and ','
 * dropped; order kept) into out. -EINVAL with a reason in err for a bad
 * key or value, a key given twice, or more than ET_TAGS_MAX tags.
 */
int et_tags_canonical(const char *in, char *out, size_t cap, char *err, size_t errlen);

size_t et_batch_samples(const struct et_batch *b);
/**
 * The batch-wide time quality to encode with: SYNCED only when every
 * sample is SYNCED, else UNSYNCED. Encoding with it keeps the rule that a
 * batch marked SYNCED needs no re-timing, checkable without decoding the
 * samples (et_wire_peek_batch).
 */
enum et_time_quality et_batch_time_quality(const struct et_batch *b);

/* Monotonic time of the first sample, or 0 when empty. */
int64_t et_batch_first_mono_ms(const struct et_batch *b);

/**
 * Encode the batch into a freshly malloc'd buffer (*out, *len); the caller
 * frees it. The builder is left unchanged.
 */
int et_batch_encode(const struct et_batch *b, const struct et_batch_meta *meta,
                    uint8_t **out, size_t *len);

/* Forget all samples and metrics, keep the memory. */
void et_batch_reset(struct et_batch *b);

/**
 * Append "historical = true" (field 9) to an encoded Batch. Protobuf keeps
 * the last value of a scalar field, so any decoder reads the batch as
 * historical without re-encoding it. buf must have room for 2 more bytes.
 * @return the new length.
 */
size_t et_batch_mark_historical(uint8_t *buf, size_t len);

/**
 * Read boot_id and the batch-wide time_quality of an encoded Batch without
 * decoding it (a walk over the top-level fields before the metrics).
 * @return 0, or -EBADMSG when the bytes do not parse that far.
 */
int et_wire_peek_batch(const uint8_t *buf, size_t len, uint8_t boot_id[ET_BOOT_ID_LEN],
                       enum et_time_quality *tq);

/**
 * Decode and validate a Batch from the network. On failure returns -EBADMSG
 * and writes a reason for a person into err ("sample 3: metric index 9 out
 * of range (4 metrics)"). Free a returned batch with et_wire_free_batch().
 *
 * Every string of a Batch, Status or Ack must be well-formed UTF-8 without
 * NUL bytes, and names (device id, metric name, unit, tag key and value,
 * agent version) must hold no control characters: "metric 0: tag 1:
 * value holds a NUL byte (at byte 7)". A string value, a Status reason and
 * a Status group (checked as a name by ingest, which ignores a bad group
 * list rather than the Status) may hold control characters; whoever shows
 * them escapes them (edgetel/text.h).
 */
int et_wire_decode_batch(const uint8_t *buf, size_t len, Edgetel__V1__Batch **out,
                         char *err, size_t errlen);
void et_wire_free_batch(Edgetel__V1__Batch *b);

/**
 * Monotonic ms of every sample of a decoded batch (the deltas summed in
 * order) into mono_out[0 .. n_samples-1]; wall time is
 * base_wall_ms + (mono_out[i] - base_mono_ms).
 */
void et_wire_sample_times(const Edgetel__V1__Batch *b, int64_t *mono_out);

/**
 * Encode an Ack for device_id's stream stream_id (ET_STREAM_ID_LEN bytes,
 * or NULL for the legacy stream of agents from before streams) into a
 * malloc'd *out (*len bytes). 0 or -ENOMEM.
 */
int et_wire_encode_ack(const char *device_id, const uint8_t *stream_id, uint64_t acked_through,
                       const uint64_t *seqs, size_t n_seqs, uint8_t **out, size_t *len);
/**
 * Decode an Ack: -EBADMSG with a reason in err for bytes that do not parse,
 * a device id that is not valid, or a stream_id that is neither empty nor
 * ET_STREAM_ID_LEN bytes.
 */
int et_wire_decode_ack(const uint8_t *buf, size_t len, Edgetel__V1__Ack **out,
                       char *err, size_t errlen);
int et_wire_decode_status(const uint8_t *buf, size_t len, Edgetel__V1__Status **out,
                          char *err, size_t errlen);

/* A device's Status (edgetel.v1.Status) as its agent reports it. */
struct et_status {
    const char *device_id;
    bool online;
    const uint8_t *boot_id;    /* ET_BOOT_ID_LEN bytes, or NULL */
    int64_t wall_ms;           /* the device's clock when it was made */
    const char *agent_version; /* NULL: none */
    uint64_t outbox_batches;
    uint64_t dropped_samples;  /* every sample dropped over the data dir's life */
    bool clock_synced;
    const char *reason;        /* why it says this (late connect, last will); NULL: none */
    uint64_t not_persisted_samples; /* delivered without being stored, since the agent started */
    const uint8_t *stream_id;  /* ET_STREAM_ID_LEN bytes, or NULL: the outbox's stream */
    uint64_t config_version;   /* the pushed config running; 0: the local file only */
    const char *const *groups; /* [agent] groups */
    size_t n_groups;
};

/* A board's outcome for a pushed config; values match edgetel.v1.ConfigResult. */
enum et_config_result {
    ET_CONFIG_RESULT_UNSPECIFIED = 0,
    ET_CONFIG_RESULT_APPLIED = 1,     /* verified and running, not yet proved healthy */
    ET_CONFIG_RESULT_COMMITTED = 2,   /* healthy within its deadline: the last good config */
    ET_CONFIG_RESULT_REJECTED = 3,    /* never applied; the old config runs on */
    ET_CONFIG_RESULT_REVERTED = 4,    /* applied, not healthy in time: the last good runs again */
};

/* Largest ConfigReport taken from a device: a few numbers, an id and a reason. */
#define ET_WIRE_CONFIG_REPORT_MAX 4096

/**
 * Decode a ConfigReport from the network: -EBADMSG with a reason in err
 * for more than ET_WIRE_CONFIG_REPORT_MAX bytes, bytes that do not parse,
 * text that is not UTF-8 or holds a NUL (or, in the device id, a control
 * character), a device id that is not valid, or a result that is not one
 * of APPLIED, COMMITTED, REJECTED, REVERTED. Free a returned report with
 * edgetel__v1__config_report__free_unpacked(*out, NULL).
 */
int et_wire_decode_config_report(const uint8_t *buf, size_t len,
                                 Edgetel__V1__ConfigReport **out, char *err, size_t errlen);

/** Encode a Status into a malloc'd *out (*len bytes). 0 or -ENOMEM. */
int et_wire_encode_status(const struct et_status *st, uint8_t **out, size_t *len);

/** Check that a device id is usable as one MQTT topic level and a file name:
 *  1-64 chars of [A-Za-z0-9._-], not starting with '.' */
bool et_device_id_valid(const char *id);

#endif
