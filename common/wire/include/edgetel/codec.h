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
struct et_dict;

/* What the encoder stamps on a batch besides its samples. */
struct et_batch_meta {
    const char *device_id;  /* NULL: left out, the topic names the device */
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

/* ---- the stream's dictionary (agent side) --------------------------------- */

/*
 * A dictionary of metrics, append-only: an entry is (name, unit, tags,
 * type, scale) and keeps its index for life. The agent keeps one per
 * stream (Batch.dict_id) so that batches refer to metrics by index
 * instead of naming them; a batch builder without one uses a dictionary of
 * its own that each batch carries whole (dict_id 0).
 */
#define ET_DICT_MAX ET_WIRE_MAX_METRICS

/* How an entry's values travel in the compact columns; matches edgetel.v1.ValueType. */
enum et_wire_type {
    ET_WIRE_TYPE_NONE = 0,     /* only as typed Samples (strings, no resolution) */
    ET_WIRE_TYPE_F64 = 1,
    ET_WIRE_TYPE_I64 = 2,
    ET_WIRE_TYPE_BOOL = 3,
};

struct et_dict_entry {
    char *name;
    char *unit;
    char *tags;                /* canonical "k=v,k2=v2", or NULL */
    enum et_wire_type type;
    double scale;              /* value = raw * scale; 1 for I64 and BOOL */
};

struct et_dict {
    uint64_t id;               /* Batch.dict_id; 0 until the first batch names it */
    struct et_dict_entry *e;
    size_t n, cap;
    uint32_t *slots;           /* open addressing on the name's hash: index + 1, 0 empty */
    size_t n_slots;
    size_t hint;               /* where the last lookup ended + 1: samples come in order */
};

int et_dict_create(struct et_dict **out);
void et_dict_destroy(struct et_dict *d);
/** Forget every entry (keep the memory); id becomes 0. */
void et_dict_clear(struct et_dict *d);
/** Drop entries from index n on (ones that could not be kept). */
void et_dict_truncate(struct et_dict *d, size_t n);

/**
 * The index of (name, unit, tags, the wire type and scale of v's kind),
 * added when new. -E2BIG when the dictionary is full, -ENOMEM.
 */
long et_dict_index(struct et_dict *d, const char *name, const char *unit, const char *tags,
                   enum et_type type, double resolution);

/** Add an entry as given (a dictionary read back from disk). 0, -E2BIG or -ENOMEM. */
int et_dict_add(struct et_dict *d, const struct et_dict_entry *e);

/* ---- the batch builder ------------------------------------------------------ */

/**
 * Build batches on the stream dictionary d (borrowed; it must outlive the
 * builder or the next call) instead of one of the builder's own, counting
 * its entries so far as known to the aggregator: call it again once the
 * entries a batch added are kept (et_batch_reset() leaves them new). Call
 * on an empty batch. NULL: back to a dictionary of its own.
 */
void et_batch_use_dict(struct et_batch *b, struct et_dict *d);

/** The first dictionary index this batch added (entries from it on are new). */
size_t et_batch_dict_start(const struct et_batch *b);

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
 * frees it. The builder is left unchanged. On a stream dictionary the
 * batch names it (dict_id: d->id, which must be set) and carries the
 * entries it added (from et_batch_dict_start()); on its own dictionary it
 * carries every entry (dict_id 0).
 */
int et_batch_encode(const struct et_batch *b, const struct et_batch_meta *meta,
                    uint8_t **out, size_t *len);

/**
 * The same batch, self-contained: its dictionary (all of the stream
 * dictionary's entries) inline with dict_id 0, for when the stream
 * dictionary's new entries could not be kept.
 */
int et_batch_encode_inline(const struct et_batch *b, const struct et_batch_meta *meta,
                           uint8_t **out, size_t *len);

/**
 * An encoded batch of stream dictionary d again, carrying every entry of
 * d inline (dict_base 0): what the aggregator asked for with
 * Ack.dict_wanted. -ENOENT when the batch is not of dictionary d->id,
 * -EBADMSG when it does not decode.
 */
int et_batch_add_dict(const uint8_t *blob, size_t len, const struct et_dict *d,
                      uint8_t **out, size_t *out_len);

/** The dict_id of an encoded batch (0: its own dictionary). 0 or -EBADMSG. */
int et_wire_peek_dict(const uint8_t *buf, size_t len, uint64_t *dict_id);

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

/** Samples a decoded batch holds: its typed Samples and its compact values. */
size_t et_wire_batch_samples(const Edgetel__V1__Batch *b);

/**
 * Monotonic ms of every sample of a decoded batch into
 * mono_out[0 .. et_wire_batch_samples() - 1], in the order
 * et_wire_expand() gives them (the compact values, then the Samples);
 * wall time is base_wall_ms + (mono_out[i] - base_mono_ms). Needs no
 * dictionary.
 */
void et_wire_sample_times(const Edgetel__V1__Batch *b, int64_t *mono_out);

/* What a decoder knows of one dictionary entry to read compact values. */
struct et_wire_kind {
    bool known;                /* false: this index is not in the dictionary */
    enum et_wire_type type;
    double scale;
};

/* One sample of a decoded batch, whichever form it travelled in. */
struct et_wire_sample {
    uint32_t metric;           /* the dictionary index */
    int64_t mono_ms;
    enum et_time_quality tq;   /* resolved: the batch's when the sample says none */
    enum et_type type;
    union {
        double f64;
        int64_t i64;
        bool b;
        const char *str;       /* into the decoded batch */
    } u;
};

/**
 * The kinds of a batch's own dictionary (dict_id 0) or of the entries it
 * carries (from dict_base) into kinds[index]; kinds must hold
 * dict_base + n_metrics entries, the rest left as they are.
 */
void et_wire_batch_kinds(const Edgetel__V1__Batch *b, struct et_wire_kind *kinds);

/**
 * Every sample of a decoded, validated batch into out (room for
 * et_wire_batch_samples(b)), compact values first, then the Samples,
 * with mono times as et_wire_sample_times(). kinds[0 .. n_kinds-1]
 * describe the dictionary (et_wire_batch_kinds() for dict_id 0).
 * @return 0; -ENOKEY when a sample refers to an index kinds does not know
 *         (*missing gets it): the dictionary is needed; -EBADMSG with err
 *         when a compact value does not fit its entry's type.
 */
int et_wire_expand(const Edgetel__V1__Batch *b, const struct et_wire_kind *kinds, size_t n_kinds,
                   struct et_wire_sample *out, uint32_t *missing, char *err, size_t errlen);

/*
 * A reader: the dictionaries of the streams it has seen, in memory, for
 * tests and tools that decode agents' batches without a store (the
 * aggregator keeps them in its store).
 */
struct et_wire_reader;

int et_wire_reader_create(struct et_wire_reader **out);
void et_wire_reader_destroy(struct et_wire_reader *r);

/* A sample with its metric's name, as et_wire_read() gives it. */
struct et_wire_named {
    struct et_wire_sample s;
    const char *name;          /* valid until the reader is destroyed */
    const char *unit;
};

/**
 * Decode and read a batch: learn the entries it carries, then give every
 * sample with its name in *out (malloc'd, *n of them; free it). -ENOKEY when
 * the batch refers to a dictionary entry the reader has not seen, -EBADMSG
 * (err) when it does not decode.
 */
int et_wire_read(struct et_wire_reader *r, const uint8_t *buf, size_t len,
                 struct et_wire_named **out, size_t *n, char *err, size_t errlen);

/**
 * Encode an Ack for device_id's stream stream_id (ET_STREAM_ID_LEN bytes,
 * or NULL for the legacy stream of agents from before streams) into a
 * malloc'd *out (*len bytes). 0 or -ENOMEM.
 */
int et_wire_encode_ack(const char *device_id, const uint8_t *stream_id, uint64_t acked_through,
                       const uint64_t *seqs, size_t n_seqs, uint8_t **out, size_t *len);

/**
 * The same with Ack.dict_wanted: batch seq was not stored because the
 * aggregator does not know dictionary dict_id; the device sends it again
 * with the dictionary inline.
 */
int et_wire_encode_ack_dict(const char *device_id, const uint8_t *stream_id,
                            uint64_t acked_through, uint64_t dict_id, uint64_t seq,
                            uint8_t **out, size_t *len);
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
