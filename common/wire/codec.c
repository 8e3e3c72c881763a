/*
 * The wire codec's messages (edgetel/codec.h), on protobuf-c: decoding and
 * validating what comes from the network, Ack and Status, and peeking
 * into an encoded Batch. The batch builder is in batch.c.
 */
#include "edgetel/codec.h"

#include "edgetel/text.h"
#include "wire_internal.h"

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- decoding ----------------------------------------------------------- */

int wire_fail(char *err, size_t errlen, const char *fmt, ...)
{
    va_list ap;

    if (err && errlen) {
        va_start(ap, fmt);
        vsnprintf(err, errlen, fmt, ap);
        va_end(ap);
    }
    return -EBADMSG;
}

/* ---- text fields -------------------------------------------------------- */

/*
 * protobuf-c copies a string field as it comes: it checks no UTF-8, and a
 * NUL inside ends the C string early, so "dev-1\0x" reads as "dev-1" and
 * a check of the C string cannot see it. So the text check walks the
 * encoded message itself (which protobuf-c has just parsed, so its shape
 * is sound) and looks at every string field whole: well-formed UTF-8 and
 * no NUL everywhere, and no control characters in names, which no honest
 * agent makes with them. Free text (a string value, a Status reason) may
 * hold them: it is stored as sent and escaped wherever a person sees it
 * (edgetel/text.h). Fields not listed here, including fields added later,
 * are skipped.
 */
struct wire_text_msg;

struct wire_text_field {
    unsigned number;
    const char *name;                   /* for the reason */
    bool free_text;                     /* control characters allowed */
    const struct wire_text_msg *sub;    /* an embedded message, walked in turn */
};

struct wire_text_msg {
    const struct wire_text_field *fields;
    size_t n;
};

#define WIRE_TEXT_MSG(f) { f, sizeof(f) / sizeof(f[0]) }

static const struct wire_text_field tag_text[] = {
    { 1, "key", false, NULL }, { 2, "value", false, NULL },
};
static const struct wire_text_msg tag_msg = WIRE_TEXT_MSG(tag_text);
static const struct wire_text_field metric_text[] = {
    { 1, "name", false, NULL }, { 2, "unit", false, NULL }, { 3, "tag", false, &tag_msg },
};
static const struct wire_text_msg metric_msg = WIRE_TEXT_MSG(metric_text);
static const struct wire_text_field sample_text[] = {
    { 6, "string value", true, NULL },
};
static const struct wire_text_msg sample_msg = WIRE_TEXT_MSG(sample_text);
static const struct wire_text_field batch_text[] = {
    { 1, "device_id", false, NULL }, { 7, "metric", false, &metric_msg },
    { 8, "sample", false, &sample_msg },
};
static const struct wire_text_msg batch_msg = WIRE_TEXT_MSG(batch_text);
/* A group passes here with control characters, so that a Status whose
 * group list is bad still records the rest: ingest checks each group as
 * a name and ignores a bad list (cloud/ingest_status.c). */
static const struct wire_text_field status_text[] = {
    { 1, "device_id", false, NULL }, { 5, "agent_version", false, NULL },
    { 9, "reason", true, NULL }, { 13, "group", true, NULL },
};
static const struct wire_text_msg status_msg = WIRE_TEXT_MSG(status_text);
static const struct wire_text_field ack_text[] = {
    { 1, "device_id", false, NULL },
};
static const struct wire_text_msg ack_msg = WIRE_TEXT_MSG(ack_text);
static const struct wire_text_field report_text[] = {
    { 1, "device_id", false, NULL }, { 4, "reason", true, NULL },
};
static const struct wire_text_msg report_msg = WIRE_TEXT_MSG(report_text);

/* Embedded messages are walked to this depth at most (ours go two deep). */
#define WIRE_TEXT_DEPTH 4

static int wire_varint(const uint8_t **p, const uint8_t *end, uint64_t *out);

/*
 * Check the string fields of the message in [p, end). where is the path
 * so far ("metric 2: "), for the reason. -EBADMSG with the reason in err.
 */
static int wire_text_walk(const uint8_t *p, const uint8_t *end, const struct wire_text_msg *msg,
                          const char *where, int depth, char *err, size_t errlen)
{
    size_t seen[8] = { 0 };    /* occurrences of each listed field: repeated ones' index */
    uint64_t key, v;

    if (msg->n > sizeof(seen) / sizeof(seen[0]))
        return wire_fail(err, errlen, "%stoo many text fields listed (a codec bug)", where);
    while (p < end) {
        if (wire_varint(&p, end, &key))
            return wire_fail(err, errlen, "%sfield key cut short", where);
        unsigned number = (unsigned)(key >> 3), type = (unsigned)(key & 7);

        switch (type) {
        case 0:
            if (wire_varint(&p, end, &v))
                return wire_fail(err, errlen, "%sfield %u cut short", where, number);
            continue;
        case 1:
        case 5:
            if ((size_t)(end - p) < (type == 1 ? 8u : 4u))
                return wire_fail(err, errlen, "%sfield %u cut short", where, number);
            p += type == 1 ? 8 : 4;
            continue;
        case 2:
            if (wire_varint(&p, end, &v) || v > (uint64_t)(end - p))
                return wire_fail(err, errlen, "%sfield %u cut short", where, number);
            break;
        default:
            return wire_fail(err, errlen, "%sfield %u has wire type %u", where, number, type);
        }
        for (size_t i = 0; i < msg->n; i++) {
            const struct wire_text_field *f = &msg->fields[i];
            char inner[96];
            size_t at;
            enum et_text_problem problem;
            int rc;

            if (f->number != number)
                continue;
            if (f->sub) {
                if (depth >= WIRE_TEXT_DEPTH)
                    return wire_fail(err, errlen, "%smessages nested too deep", where);
                snprintf(inner, sizeof(inner), "%s%s %zu: ", where, f->name, seen[i]);
                rc = wire_text_walk(p, p + v, f->sub, inner, depth + 1, err, errlen);
                if (rc)
                    return rc;
            } else {
                problem = et_text_check((const char *)p, (size_t)v, f->free_text, &at);
                if (problem != ET_TEXT_OK)
                    return wire_fail(err, errlen, "%s%s %s (at byte %zu)", where, f->name,
                                     et_text_problem_name(problem), at);
            }
            seen[i]++;
            break;
        }
        p += v;
    }
    return 0;
}

static int wire_text_check(const uint8_t *buf, size_t len, const struct wire_text_msg *msg,
                           const char *where, char *err, size_t errlen)
{
    return wire_text_walk(buf, buf + len, msg, where, 0, err, errlen);
}

bool et_device_id_valid(const char *id)
{
    size_t n = 0;

    if (!id || id[0] == '.' || id[0] == '\0')
        return false;
    for (const char *p = id; *p; p++, n++) {
        unsigned char c = (unsigned char)*p;

        if (n >= 64)
            return false;
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '.' || c == '_' || c == '-'))
            return false;
    }
    return true;
}

static bool tq_valid(int tq)
{
    return tq >= ET_TQ_UNSPECIFIED && tq <= ET_TQ_UNCORRECTABLE;
}

/* Each entry's type is known and its scale usable for it. */
static int metric_kinds_check(const Edgetel__V1__Batch *b, char *err, size_t errlen)
{
    for (size_t i = 0; i < b->n_metrics; i++) {
        const Edgetel__V1__Metric *m = b->metrics[i];
        double sc = m->scale;

        if ((int)m->type < ET_WIRE_TYPE_NONE || (int)m->type > ET_WIRE_TYPE_BOOL)
            return wire_fail(err, errlen, "metric %zu (%s): value type %d is not a known one",
                             i, m->name, (int)m->type);
        if (!isfinite(sc) || sc < 0)
            return wire_fail(err, errlen, "metric %zu (%s): scale %g is not a step", i, m->name,
                             sc);
        if (m->type == EDGETEL__V1__VALUE_TYPE__VALUE_TYPE_I64 &&
            sc != 0 && (sc < 1 || sc != floor(sc) || sc >= 9007199254740992.0))
            return wire_fail(err, errlen, "metric %zu (%s): an integer's scale %g is not a "
                             "whole number", i, m->name, sc);
        if (m->type == EDGETEL__V1__VALUE_TYPE__VALUE_TYPE_BOOL && sc != 0 && sc != 1)
            return wire_fail(err, errlen, "metric %zu (%s): a bool's scale is %g", i, m->name,
                             sc);
    }
    return 0;
}

/*
 * The runs: three columns of one length, their lengths adding up to the
 * values, every metric index within limit (the batch's own dictionary, or
 * the largest a stream's may be) and, in the batch's own dictionary, of an
 * entry with a compact type.
 */
static int runs_check(const Edgetel__V1__Batch *b, size_t limit, char *err, size_t errlen)
{
    uint64_t total = 0;
    int64_t end = 0;

    if (b->n_run_metric != b->n_run_dt_ms || b->n_run_len != b->n_run_dt_ms)
        return wire_fail(err, errlen, "runs: %zu times, %zu metrics and %zu lengths",
                         b->n_run_dt_ms, b->n_run_metric, b->n_run_len);
    for (size_t k = 0; k < b->n_run_dt_ms; k++) {
        int64_t first = end + b->run_metric[k];

        if (b->run_dt_ms[k] > ET_WIRE_MAX_DT_MS || b->run_dt_ms[k] < -ET_WIRE_MAX_DT_MS)
            return wire_fail(err, errlen, "run %zu: time delta %lld ms is out of range", k,
                             (long long)b->run_dt_ms[k]);
        if (b->run_len[k] == 0 || first < 0 || (uint64_t)first + b->run_len[k] > limit)
            return wire_fail(err, errlen, "run %zu: metrics %lld..%lld out of range (%zu)", k,
                             (long long)first, (long long)first + b->run_len[k], limit);
        if (b->dict_id == 0) {
            for (uint32_t j = 0; j < b->run_len[k]; j++)
                if (b->metrics[first + j]->type == EDGETEL__V1__VALUE_TYPE__VALUE_TYPE_UNSPECIFIED)
                    return wire_fail(err, errlen, "run %zu: metric %lld has no compact type", k,
                                     (long long)first + j);
        }
        end = first + b->run_len[k];
        total += b->run_len[k];
    }
    if (total != b->n_values)
        return wire_fail(err, errlen, "runs hold %llu values, the batch %zu",
                         (unsigned long long)total, b->n_values);
    return 0;
}

static int batch_check(const Edgetel__V1__Batch *b, char *err, size_t errlen)
{
    /* Indexes refer to the batch's own dictionary, or to its stream's. */
    size_t limit = b->dict_id ? ET_DICT_MAX : b->n_metrics;
    int rc;

    /* Empty: the device its topic names (agents leave it out: 13 bytes a batch). */
    if (b->device_id[0] && !et_device_id_valid(b->device_id))
        return wire_fail(err, errlen, "device_id \"%.64s\" is not a valid device id", b->device_id);
    if (b->seq == 0)
        return wire_fail(err, errlen, "seq is 0 (sequence numbers start at 1)");
    if (b->oldest_seq > b->seq)
        return wire_fail(err, errlen, "oldest_seq %llu is above seq %llu",
                         (unsigned long long)b->oldest_seq, (unsigned long long)b->seq);
    if (b->boot_id.len != 0 && b->boot_id.len != ET_BOOT_ID_LEN)
        return wire_fail(err, errlen, "boot_id has %zu bytes, expected %d", b->boot_id.len,
                         ET_BOOT_ID_LEN);
    if (b->stream_id.len != 0 && b->stream_id.len != ET_STREAM_ID_LEN)
        return wire_fail(err, errlen, "stream_id has %zu bytes, expected %d or none",
                         b->stream_id.len, ET_STREAM_ID_LEN);
    if (!tq_valid(b->time_quality))
        return wire_fail(err, errlen, "time_quality %d is not a known value", b->time_quality);
    if (b->n_metrics > ET_WIRE_MAX_METRICS)
        return wire_fail(err, errlen, "%zu metrics (at most %d)", b->n_metrics, ET_WIRE_MAX_METRICS);
    if (b->n_samples > ET_WIRE_MAX_SAMPLES || b->n_values > ET_WIRE_MAX_SAMPLES - b->n_samples)
        return wire_fail(err, errlen, "%zu samples and %zu values (at most %d)", b->n_samples,
                         b->n_values, ET_WIRE_MAX_SAMPLES);
    if (b->dict_id == 0 && b->dict_base != 0)
        return wire_fail(err, errlen, "dict_base %u without a dict_id", b->dict_base);
    if (b->dict_base > ET_DICT_MAX || b->n_metrics > ET_DICT_MAX - b->dict_base)
        return wire_fail(err, errlen, "dictionary entries %u..%zu beyond %d", b->dict_base,
                         b->dict_base + b->n_metrics, ET_DICT_MAX);
    for (size_t i = 0; i < b->n_metrics; i++) {
        const char *name = b->metrics[i]->name;
        size_t n = strlen(name);

        if (n == 0 || n > ET_WIRE_MAX_NAME)
            return wire_fail(err, errlen, "metric %zu: name is empty or longer than %d", i,
                             ET_WIRE_MAX_NAME);
        if (strlen(b->metrics[i]->unit) > 32)
            return wire_fail(err, errlen, "metric %zu (%s): unit longer than 32", i, name);
        if (b->metrics[i]->n_tags > ET_TAGS_MAX)
            return wire_fail(err, errlen, "metric %zu (%s): %zu tags (at most %d)", i, name,
                             b->metrics[i]->n_tags, ET_TAGS_MAX);
        for (size_t t = 0; t < b->metrics[i]->n_tags; t++) {
            const Edgetel__V1__Tag *tag = b->metrics[i]->tags[t];
            size_t kl = strlen(tag->key), vl = strlen(tag->value);

            if (kl == 0 || kl > ET_TAG_KEY_MAX || vl > ET_TAG_VALUE_MAX ||
                strpbrk(tag->key, "=,") || strpbrk(tag->value, "=,"))
                return wire_fail(err, errlen, "metric %zu (%s): tag %zu is not a valid key=value",
                                 i, name, t);
        }
    }
    rc = metric_kinds_check(b, err, errlen);
    if (rc == 0)
        rc = runs_check(b, limit, err, errlen);
    if (rc)
        return rc;
    for (size_t i = 0; i < b->n_samples; i++) {
        const Edgetel__V1__Sample *s = b->samples[i];

        if (s->metric >= limit)
            return wire_fail(err, errlen, "sample %zu: metric index %u out of range (%zu metrics)",
                             i, s->metric, limit);
        if (s->dt_ms > ET_WIRE_MAX_DT_MS || s->dt_ms < -ET_WIRE_MAX_DT_MS)
            return wire_fail(err, errlen, "sample %zu: time delta %lld ms is out of range", i,
                             (long long)s->dt_ms);
        if (!tq_valid(s->time_quality))
            return wire_fail(err, errlen, "sample %zu: time_quality %d is not a known value", i,
                             s->time_quality);
        switch (s->value_case) {
        case EDGETEL__V1__SAMPLE__VALUE_F64:
        case EDGETEL__V1__SAMPLE__VALUE_I64:
        case EDGETEL__V1__SAMPLE__VALUE_B:
            break;
        case EDGETEL__V1__SAMPLE__VALUE_STR:
            if (strlen(s->str) > ET_VALUE_STR_MAX)
                return wire_fail(err, errlen, "sample %zu: string value longer than %d", i,
                                 ET_VALUE_STR_MAX);
            break;
        default:
            return wire_fail(err, errlen, "sample %zu: no value", i);
        }
    }
    return 0;
}

int et_wire_decode_batch(const uint8_t *buf, size_t len, Edgetel__V1__Batch **out,
                         char *err, size_t errlen)
{
    Edgetel__V1__Batch *b;
    int rc;

    if (len > ET_WIRE_MAX_MESSAGE)
        return wire_fail(err, errlen, "message of %zu bytes is over the %d byte limit", len,
                         ET_WIRE_MAX_MESSAGE);
    b = edgetel__v1__batch__unpack(NULL, len, buf);
    if (!b)
        return wire_fail(err, errlen, "%zu bytes are not a valid edgetel.v1.Batch", len);
    rc = wire_text_check(buf, len, &batch_msg, "", err, errlen);
    if (rc == 0)
        rc = batch_check(b, err, errlen);
    if (rc) {
        edgetel__v1__batch__free_unpacked(b, NULL);
        return rc;
    }
    *out = b;
    return 0;
}

void et_wire_free_batch(Edgetel__V1__Batch *b)
{
    if (b)
        edgetel__v1__batch__free_unpacked(b, NULL);
}

size_t et_wire_batch_samples(const Edgetel__V1__Batch *b)
{
    return b->n_samples + b->n_values;
}

void et_wire_sample_times(const Edgetel__V1__Batch *b, int64_t *mono_out)
{
    int64_t t = b->base_mono_ms;
    size_t o = 0;

    for (size_t k = 0; k < b->n_run_dt_ms; k++) {
        t += b->run_dt_ms[k];
        for (uint32_t j = 0; j < b->run_len[k]; j++)
            mono_out[o++] = t;
    }
    t = b->base_mono_ms;
    for (size_t i = 0; i < b->n_samples; i++) {
        t += b->samples[i]->dt_ms;
        mono_out[o++] = t;
    }
}

static int ack_pack(Edgetel__V1__Ack *msg, const char *device_id, const uint8_t *stream_id,
                    uint64_t acked_through, uint8_t **out, size_t *len)
{
    uint8_t *buf;

    msg->device_id = (char *)device_id;
    msg->acked_through = acked_through;
    msg->stream_id.data = (uint8_t *)stream_id;
    msg->stream_id.len = stream_id ? ET_STREAM_ID_LEN : 0;
    size_t n = edgetel__v1__ack__get_packed_size(msg);

    buf = malloc(n ? n : 1);
    if (!buf)
        return -ENOMEM;
    *len = edgetel__v1__ack__pack(msg, buf);
    *out = buf;
    return 0;
}

int et_wire_encode_ack(const char *device_id, const uint8_t *stream_id, uint64_t acked_through,
                       const uint64_t *seqs, size_t n_seqs, uint8_t **out, size_t *len)
{
    Edgetel__V1__Ack msg = EDGETEL__V1__ACK__INIT;

    msg.n_seqs = n_seqs;
    msg.seqs = (uint64_t *)seqs;
    return ack_pack(&msg, device_id, stream_id, acked_through, out, len);
}

int et_wire_encode_ack_dict(const char *device_id, const uint8_t *stream_id,
                            uint64_t acked_through, uint64_t dict_id, uint64_t seq,
                            uint8_t **out, size_t *len)
{
    Edgetel__V1__Ack msg = EDGETEL__V1__ACK__INIT;

    msg.dict_wanted = dict_id;
    msg.dict_wanted_seq = seq;
    return ack_pack(&msg, device_id, stream_id, acked_through, out, len);
}

int et_wire_decode_ack(const uint8_t *buf, size_t len, Edgetel__V1__Ack **out,
                       char *err, size_t errlen)
{
    Edgetel__V1__Ack *a;

    if (len > ET_WIRE_MAX_MESSAGE)
        return wire_fail(err, errlen, "ack of %zu bytes is over the limit", len);
    a = edgetel__v1__ack__unpack(NULL, len, buf);
    if (!a)
        return wire_fail(err, errlen, "%zu bytes are not a valid edgetel.v1.Ack", len);
    if (wire_text_check(buf, len, &ack_msg, "ack ", err, errlen)) {
        edgetel__v1__ack__free_unpacked(a, NULL);
        return -EBADMSG;
    }
    if (!et_device_id_valid(a->device_id)) {
        edgetel__v1__ack__free_unpacked(a, NULL);
        return wire_fail(err, errlen, "ack names no valid device id");
    }
    if (a->stream_id.len != 0 && a->stream_id.len != ET_STREAM_ID_LEN) {
        size_t n = a->stream_id.len;

        edgetel__v1__ack__free_unpacked(a, NULL);
        return wire_fail(err, errlen, "ack stream_id has %zu bytes, expected %d or none", n,
                         ET_STREAM_ID_LEN);
    }
    *out = a;
    return 0;
}

int et_wire_decode_status(const uint8_t *buf, size_t len, Edgetel__V1__Status **out,
                          char *err, size_t errlen)
{
    Edgetel__V1__Status *s;

    if (len > ET_WIRE_MAX_MESSAGE)
        return wire_fail(err, errlen, "status of %zu bytes is over the limit", len);
    s = edgetel__v1__status__unpack(NULL, len, buf);
    if (!s)
        return wire_fail(err, errlen, "%zu bytes are not a valid edgetel.v1.Status", len);
    if (wire_text_check(buf, len, &status_msg, "status ", err, errlen)) {
        edgetel__v1__status__free_unpacked(s, NULL);
        return -EBADMSG;
    }
    if (!et_device_id_valid(s->device_id)) {
        edgetel__v1__status__free_unpacked(s, NULL);
        return wire_fail(err, errlen, "status names no valid device id");
    }
    if (s->boot_id.len != 0 && s->boot_id.len != ET_BOOT_ID_LEN) {
        size_t n = s->boot_id.len;

        edgetel__v1__status__free_unpacked(s, NULL);
        return wire_fail(err, errlen, "status boot_id has %zu bytes, expected %d", n,
                         ET_BOOT_ID_LEN);
    }
    if (s->stream_id.len != 0 && s->stream_id.len != ET_STREAM_ID_LEN) {
        size_t n = s->stream_id.len;

        edgetel__v1__status__free_unpacked(s, NULL);
        return wire_fail(err, errlen, "status stream_id has %zu bytes, expected %d or none", n,
                         ET_STREAM_ID_LEN);
    }
    *out = s;
    return 0;
}

int et_wire_decode_config_report(const uint8_t *buf, size_t len,
                                 Edgetel__V1__ConfigReport **out, char *err, size_t errlen)
{
    Edgetel__V1__ConfigReport *r;
    const char *why = NULL;

    if (len > ET_WIRE_CONFIG_REPORT_MAX)
        return wire_fail(err, errlen, "config report of %zu bytes is over the limit of %d",
                         len, ET_WIRE_CONFIG_REPORT_MAX);
    r = edgetel__v1__config_report__unpack(NULL, len, buf);
    if (!r)
        return wire_fail(err, errlen, "%zu bytes are not a valid edgetel.v1.ConfigReport", len);
    if (wire_text_check(buf, len, &report_msg, "config report ", err, errlen)) {
        edgetel__v1__config_report__free_unpacked(r, NULL);
        return -EBADMSG;
    }
    if (!et_device_id_valid(r->device_id))
        why = "names no valid device id";
    else if ((int)r->result < ET_CONFIG_RESULT_APPLIED ||
             (int)r->result > ET_CONFIG_RESULT_REVERTED)
        why = "has no known result";
    if (why) {
        edgetel__v1__config_report__free_unpacked(r, NULL);
        return wire_fail(err, errlen, "config report %s", why);
    }
    *out = r;
    return 0;
}

int et_wire_encode_status(const struct et_status *st, uint8_t **out, size_t *len)
{
    Edgetel__V1__Status s = EDGETEL__V1__STATUS__INIT;
    uint8_t *buf;

    s.device_id = (char *)st->device_id;
    s.online = st->online;
    s.boot_id.data = (uint8_t *)st->boot_id;
    s.boot_id.len = st->boot_id ? ET_BOOT_ID_LEN : 0;
    s.wall_ms = st->wall_ms;
    s.agent_version = (char *)(st->agent_version ? st->agent_version : "");
    s.outbox_batches = st->outbox_batches;
    s.dropped_samples = st->dropped_samples;
    s.clock_synced = st->clock_synced;
    s.reason = (char *)(st->reason ? st->reason : "");
    s.not_persisted_samples = st->not_persisted_samples;
    s.stream_id.data = (uint8_t *)st->stream_id;
    s.stream_id.len = st->stream_id ? ET_STREAM_ID_LEN : 0;
    s.config_version = st->config_version;
    s.groups = (char **)st->groups;
    s.n_groups = st->n_groups;
    size_t n = edgetel__v1__status__get_packed_size(&s);

    buf = malloc(n ? n : 1);
    if (!buf)
        return -ENOMEM;
    *len = edgetel__v1__status__pack(&s, buf);
    *out = buf;
    return 0;
}

/* ---- peeking ----------------------------------------------------------- */

static int wire_varint(const uint8_t **p, const uint8_t *end, uint64_t *out)
{
    uint64_t v = 0;

    for (int shift = 0; shift < 64 && *p < end; shift += 7) {
        uint8_t byte = *(*p)++;

        v |= (uint64_t)(byte & 0x7f) << shift;
        if (!(byte & 0x80)) {
            *out = v;
            return 0;
        }
    }
    return -EBADMSG;
}

/* One field of an encoded message: its number and wire type, and its
 * varint value or its bytes (fixed-size ones as bytes too). */
struct wire_field {
    unsigned number, type;
    uint64_t v;
    const uint8_t *data;
    size_t len;
};

/* The next field of [*p, end) into f. 0, or -EBADMSG. */
static int wire_next(const uint8_t **p, const uint8_t *end, struct wire_field *f)
{
    uint64_t key;

    if (wire_varint(p, end, &key))
        return -EBADMSG;
    f->number = (unsigned)(key >> 3);
    f->type = (unsigned)(key & 7);
    f->v = 0;
    f->data = NULL;
    f->len = 0;
    switch (f->type) {
    case 0:
        return wire_varint(p, end, &f->v);
    case 1:
    case 5:
        f->len = f->type == 1 ? 8 : 4;
        break;
    case 2:
        if (wire_varint(p, end, &f->v))
            return -EBADMSG;
        f->len = (size_t)f->v;
        break;
    default:
        return -EBADMSG;
    }
    if (f->len > (size_t)(end - *p))
        return -EBADMSG;
    f->data = *p;
    *p += f->len;
    return 0;
}

int et_wire_peek_batch(const uint8_t *buf, size_t len, uint8_t boot_id[ET_BOOT_ID_LEN],
                       enum et_time_quality *tq)
{
    const uint8_t *p = buf, *end = buf + len;
    struct wire_field f;

    memset(boot_id, 0, ET_BOOT_ID_LEN);
    *tq = ET_TQ_UNSPECIFIED;
    while (p < end) {
        if (wire_next(&p, end, &f))
            return -EBADMSG;
        if (f.number >= 7)
            return 0;    /* the dictionary and samples follow; nothing more to peek */
        if (f.number == 6 && f.type == 0)
            *tq = (enum et_time_quality)f.v;
        if (f.number == 3 && f.type == 2 && f.len == ET_BOOT_ID_LEN)
            memcpy(boot_id, f.data, ET_BOOT_ID_LEN);
    }
    return 0;
}

int et_wire_peek_dict(const uint8_t *buf, size_t len, uint64_t *dict_id)
{
    const uint8_t *p = buf, *end = buf + len;
    struct wire_field f;

    *dict_id = 0;
    while (p < end) {
        if (wire_next(&p, end, &f))
            return -EBADMSG;
        if (f.number == 12 && f.type == 0)
            *dict_id = f.v;
    }
    return 0;
}
