/*
 * The cloud tests' in-memory store writer. See fake_writer.h.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "fake_writer.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static struct fake_writer *of(struct et_store_writer *w)
{
    return (struct fake_writer *)w;
}

/* Count a call; true when the test asked for it to fail. */
static bool failing(struct fake_writer *f, enum fake_op op)
{
    return ++f->calls[op] == f->fail_at[op];
}

struct fake_device *fake_device(struct fake_writer *f, const char *device)
{
    for (size_t i = 0; i < f->rows.n_devices; i++) {
        if (strcmp(f->rows.devices[i].id, device) == 0)
            return &f->rows.devices[i];
    }
    return NULL;
}

static int device_index(struct fake_writer *f, const char *device, int64_t now_ms,
                        bool *created)
{
    struct fake_device *d = fake_device(f, device);

    if (created)
        *created = !d || d->unseen;
    if (!d) {
        assert_true(f->rows.n_devices < FAKE_DEVICES);
        d = &f->rows.devices[f->rows.n_devices++];
        memset(d, 0, sizeof(*d));
        snprintf(d->id, sizeof(d->id), "%s", device);
        d->first_seen_ms = d->last_seen_ms = now_ms;
        d->unseen = !created;
    } else if (created) {
        d->unseen = false;
    }
    return (int)(d - f->rows.devices);
}

/* Order of (device, stream, seq) keys: <0, 0, >0. */
static int batch_cmp(const struct fake_batch *b, int device, const char *stream, uint64_t seq)
{
    int c = strcmp(b->stream, stream);

    if (b->device != device)
        return b->device < device ? -1 : 1;
    if (c)
        return c;
    return b->seq < seq ? -1 : b->seq > seq;
}

static struct fake_batch *batch_find(struct fake_writer *f, int device, const char *stream,
                                     uint64_t seq, size_t *at)
{
    size_t i = 0;

    /* The first at or after (device, stream, seq): the rows are kept in that order. */
    while (i < f->rows.n_batches && batch_cmp(&f->rows.batches[i], device, stream, seq) < 0)
        i++;
    if (at)
        *at = i;
    if (i < f->rows.n_batches && batch_cmp(&f->rows.batches[i], device, stream, seq) == 0)
        return &f->rows.batches[i];
    return NULL;
}

struct fake_stream *fake_stream(struct fake_writer *f, const char *device, const char *stream)
{
    struct fake_device *d = fake_device(f, device);
    int dev = d ? (int)(d - f->rows.devices) : -1;

    for (size_t i = 0; i < f->rows.n_streams; i++) {
        if (f->rows.streams[i].device == dev && strcmp(f->rows.streams[i].stream, stream) == 0)
            return &f->rows.streams[i];
    }
    return NULL;
}

static int fake_begin(struct et_store_writer *w)
{
    struct fake_writer *f = of(w);

    if (failing(f, FAKE_BEGIN))
        return f->fail_ret;
    if (f->in_tx)
        return -EALREADY;
    f->saved = f->rows;
    f->in_tx = true;
    return 0;
}

static int fake_rollback(struct et_store_writer *w)
{
    struct fake_writer *f = of(w);

    failing(f, FAKE_ROLLBACK);   /* a rollback always works */
    if (f->in_tx)
        f->rows = f->saved;
    f->in_tx = false;
    return 0;
}

static int fake_commit(struct et_store_writer *w)
{
    struct fake_writer *f = of(w);

    if (!f->in_tx)
        return -EINVAL;
    if (failing(f, FAKE_COMMIT)) {
        f->rows = f->saved;   /* as store_writer.h says: rolled back */
        f->in_tx = false;
        return f->fail_ret;
    }
    f->in_tx = false;
    return 0;
}

static int fake_batch_seen(struct et_store_writer *w, const char *device, const char *stream,
                           uint64_t seq, bool *seen)
{
    struct fake_writer *f = of(w);
    struct fake_device *d = fake_device(f, device);

    if (failing(f, FAKE_BATCH_SEEN))
        return f->fail_ret;
    *seen = d && batch_find(f, (int)(d - f->rows.devices), stream, seq, NULL);
    return 0;
}

static int fake_device_seen(struct et_store_writer *w, const char *device, int64_t now_ms,
                            const char *boot_id_hex, uint64_t add_samples, bool *created)
{
    struct fake_writer *f = of(w);
    struct fake_device *d;

    if (failing(f, FAKE_DEVICE_SEEN))
        return f->fail_ret;
    d = &f->rows.devices[device_index(f, device, now_ms, created)];
    if (now_ms > d->last_seen_ms)
        d->last_seen_ms = now_ms;
    if (boot_id_hex && boot_id_hex[0])
        snprintf(d->boot_id_hex, sizeof(d->boot_id_hex), "%s", boot_id_hex);
    d->samples_stored += add_samples;
    return 0;
}

static int fake_device_status(struct et_store_writer *w, const struct et_store_status *st,
                              int64_t now_ms, struct et_store_status_was *was)
{
    struct fake_writer *f = of(w);
    struct et_store_status_was before = { .created = false };
    struct fake_device *d;

    if (failing(f, FAKE_DEVICE_STATUS))
        return f->fail_ret;
    d = &f->rows.devices[device_index(f, st->device, now_ms, &before.created)];
    before.had_status = d->has_status;
    before.online = d->online;
    d->has_status = true;
    d->online = st->online;
    if (st->boot_id_hex && st->boot_id_hex[0])
        snprintf(d->boot_id_hex, sizeof(d->boot_id_hex), "%s", st->boot_id_hex);
    if (was)
        *was = before;
    return 0;
}

static int fake_metric_id(struct et_store_writer *w, const char *device, const char *name,
                          const char *unit, int64_t *id)
{
    struct fake_writer *f = of(w);
    struct fake_metric *m;
    int dev;

    if (failing(f, FAKE_METRIC_ID))
        return f->fail_ret;
    dev = device_index(f, device, 0, NULL);
    for (size_t i = 0; i < f->rows.n_metrics; i++) {
        m = &f->rows.metrics[i];
        if (m->device == dev && strcmp(m->name, name) == 0) {
            snprintf(m->unit, sizeof(m->unit), "%s", unit);
            *id = (int64_t)i + 1;
            return 0;
        }
    }
    assert_true(f->rows.n_metrics < FAKE_METRICS);
    m = &f->rows.metrics[f->rows.n_metrics++];
    m->device = dev;
    snprintf(m->name, sizeof(m->name), "%s", name);
    snprintf(m->unit, sizeof(m->unit), "%s", unit);
    m->tags[0] = '\0';
    *id = (int64_t)f->rows.n_metrics;
    return 0;
}

static int fake_metric_tags(struct et_store_writer *w, int64_t id, const char *tags)
{
    struct fake_writer *f = of(w);

    if (failing(f, FAKE_METRIC_TAGS))
        return f->fail_ret;
    assert_true(id >= 1 && (size_t)id <= f->rows.n_metrics);
    snprintf(f->rows.metrics[id - 1].tags, sizeof(f->rows.metrics[0].tags), "%s", tags);
    return 0;
}

/* The batch row of b, in key order: 0, -EEXIST or -ERANGE. */
static int add_batch_row(struct fake_writer *f, const struct et_store_batch *b,
                         struct fake_batch **out)
{
    struct fake_batch *row;
    int dev;
    size_t at;

    if (b->seq > ET_STORE_SEQ_MAX)
        return -ERANGE;
    dev = device_index(f, b->device, b->received_ms, NULL);
    if (batch_find(f, dev, b->stream_hex ? b->stream_hex : "", b->seq, &at))
        return -EEXIST;
    assert_true(f->rows.n_batches < FAKE_BATCHES);
    memmove(&f->rows.batches[at + 1], &f->rows.batches[at],
            (f->rows.n_batches - at) * sizeof(f->rows.batches[0]));
    f->rows.n_batches++;
    row = &f->rows.batches[at];
    *row = (struct fake_batch){
        .device = dev, .seq = b->seq, .unsynced = b->unsynced_samples,
        .first_sample_id = b->first_sample_id, .last_sample_id = b->last_sample_id,
        .received_ms = b->received_ms,
    };
    snprintf(row->stream, sizeof(row->stream), "%s", b->stream_hex ? b->stream_hex : "");
    snprintf(row->boot_id_hex, sizeof(row->boot_id_hex), "%s",
             b->boot_id_hex ? b->boot_id_hex : "");
    *out = row;
    return 0;
}

static int fake_insert_batch(struct et_store_writer *w, const struct et_store_batch *b)
{
    struct fake_writer *f = of(w);
    struct fake_batch *row;

    if (failing(f, FAKE_INSERT_BATCH))
        return f->fail_ret;
    return add_batch_row(f, b, &row);
}

static int fake_batch_samples(struct et_store_writer *w, const char *device,
                              const char *stream, uint64_t seq, int64_t first_sample_id,
                              int64_t last_sample_id, uint32_t unsynced_samples)
{
    struct fake_writer *f = of(w);
    struct fake_device *d = fake_device(f, device);
    struct fake_batch *b;

    if (failing(f, FAKE_BATCH_SAMPLES))
        return f->fail_ret;
    b = d ? batch_find(f, (int)(d - f->rows.devices), stream, seq, NULL) : NULL;
    if (!b)
        return -ENOENT;
    b->first_sample_id = first_sample_id;
    b->last_sample_id = last_sample_id;
    b->unsynced = unsynced_samples;
    return 0;
}

/* A quarantined batch is a batch row marked so, with its reason and size. */
static int fake_quarantine(struct et_store_writer *w, const struct et_store_quarantined *q)
{
    struct fake_writer *f = of(w);
    const struct et_store_batch b = {
        .device = q->device, .stream_hex = q->stream_hex, .seq = q->seq,
        .received_ms = q->received_ms,
    };
    struct fake_batch *row;
    int ret;

    if (failing(f, FAKE_QUARANTINE))
        return f->fail_ret;
    ret = add_batch_row(f, &b, &row);
    if (ret < 0)
        return ret;
    row->quarantined = true;
    row->payload_len = q->len;
    snprintf(row->reason, sizeof(row->reason), "%s", q->reason);
    return 0;
}

static int fake_insert_sample(struct et_store_writer *w, const struct et_store_sample *smp,
                              int64_t *id)
{
    struct fake_writer *f = of(w);
    struct fake_sample *row;

    if (failing(f, FAKE_INSERT_SAMPLE))
        return f->fail_ret;
    assert_true(f->rows.n_samples < FAKE_SAMPLES);
    row = &f->rows.samples[f->rows.n_samples++];
    *row = (struct fake_sample){
        .id = (int64_t)f->rows.n_samples, .metric_id = smp->metric_id, .ts_ms = smp->ts_ms,
        .mono_ms = smp->mono_ms, .time_quality = smp->time_quality, .seq = smp->seq,
    };
    if (id)
        *id = row->id;
    return 0;
}

static int fake_ack_get(struct et_store_writer *w, const char *device, const char *stream,
                        uint64_t *acked_through)
{
    struct fake_writer *f = of(w);
    struct fake_stream *st = fake_stream(f, device, stream);

    if (failing(f, FAKE_ACK_GET))
        return f->fail_ret;
    if (!st)
        return -ENOENT;
    *acked_through = st->acked_through;
    return 0;
}

static int fake_ack_set(struct et_store_writer *w, const char *device, const char *stream,
                        uint64_t acked_through)
{
    struct fake_writer *f = of(w);
    struct fake_stream *st = fake_stream(f, device, stream);

    if (failing(f, FAKE_ACK_SET))
        return f->fail_ret;
    assert_non_null(st);
    assert_true(acked_through <= ET_STORE_SEQ_MAX);
    if (acked_through > st->acked_through)
        st->acked_through = acked_through;
    return 0;
}

static int fake_seqs_after(struct et_store_writer *w, const char *device, const char *stream,
                           uint64_t after, uint64_t *seqs, size_t max, size_t *n)
{
    struct fake_writer *f = of(w);
    struct fake_device *d = fake_device(f, device);
    int dev = d ? (int)(d - f->rows.devices) : -1;

    *n = 0;
    if (failing(f, FAKE_SEQS_AFTER))
        return f->fail_ret;
    for (size_t i = 0; i < f->rows.n_batches && *n < max; i++) {
        const struct fake_batch *b = &f->rows.batches[i];

        if (b->device == dev && strcmp(b->stream, stream) == 0 && b->seq > after)
            seqs[(*n)++] = b->seq;
    }
    return 0;
}

static int fake_stream_get(struct et_store_writer *w, const char *device, const char *stream,
                           struct et_store_stream *out)
{
    struct fake_writer *f = of(w);
    struct fake_stream *st = fake_stream(f, device, stream);

    memset(out, 0, sizeof(*out));
    if (failing(f, FAKE_STREAM_GET))
        return f->fail_ret;
    if (!st)
        return -ENOENT;
    out->started_ms = st->started_ms;
    out->acked_through = st->acked_through;
    for (size_t i = 0; i < f->rows.n_batches; i++) {
        const struct fake_batch *b = &f->rows.batches[i];

        if (b->device == st->device && strcmp(b->stream, stream) == 0 && b->seq >= out->top_seq) {
            out->top_seq = b->seq;
            out->top_received_ms = b->received_ms;
        }
    }
    return 0;
}

/* A stream row for device (which has a row) at started_ms; -EEXIST when there is one. */
static int stream_add(struct fake_writer *f, int dev, const char *stream, int64_t started_ms)
{
    struct fake_stream *st;

    if (fake_stream(f, f->rows.devices[dev].id, stream))
        return -EEXIST;
    assert_true(f->rows.n_streams < FAKE_STREAMS);
    st = &f->rows.streams[f->rows.n_streams++];
    *st = (struct fake_stream){ .device = dev, .started_ms = started_ms };
    snprintf(st->stream, sizeof(st->stream), "%s", stream);
    return 0;
}

static int fake_stream_start(struct et_store_writer *w, const char *device, const char *stream,
                             int64_t now_ms, struct et_store_stream_was *was)
{
    struct fake_writer *f = of(w);
    struct fake_device *d = fake_device(f, device);
    struct et_store_stream_was before = { .had = false };
    struct fake_stream *cur;
    int ret;

    if (failing(f, FAKE_STREAM_START))
        return f->fail_ret;
    if (!d)
        return -ENOENT;
    cur = fake_stream(f, device, d->stream);
    if (cur) {
        before.had = true;
        snprintf(before.stream_hex, sizeof(before.stream_hex), "%s", cur->stream);
        before.acked_through = cur->acked_through;
    }
    ret = stream_add(f, (int)(d - f->rows.devices), stream, now_ms);
    if (ret < 0)
        return ret;
    snprintf(d->stream, sizeof(d->stream), "%s", stream);
    if (was)
        *was = before;
    return 0;
}

static int fake_clock_get(struct et_store_writer *w, const char *device,
                          struct et_store_clock *out)
{
    struct fake_writer *f = of(w);
    struct fake_device *d = fake_device(f, device);

    if (failing(f, FAKE_CLOCK_GET))
        return f->fail_ret;
    memset(out, 0, sizeof(*out));
    if (d)
        *out = d->clock;
    return 0;
}

static int fake_clock_set(struct et_store_writer *w, const char *device,
                          const struct et_store_clock *clk)
{
    struct fake_writer *f = of(w);
    struct fake_device *d = fake_device(f, device);

    if (failing(f, FAKE_CLOCK_SET))
        return f->fail_ret;
    assert_non_null(d);
    d->clock = *clk;
    return 0;
}

static bool batch_waits(struct fake_writer *f, const struct fake_batch *b, int dev,
                        const char *boot_id_hex)
{
    return b->device == dev && b->unsynced > 0 && strcmp(b->boot_id_hex, boot_id_hex) == 0;
}

static int fake_unsynced_samples(struct et_store_writer *w, const char *device,
                                 const char *boot_id_hex, et_store_sample_cb cb, void *ctx)
{
    struct fake_writer *f = of(w);
    struct fake_device *d = fake_device(f, device);
    int dev = d ? (int)(d - f->rows.devices) : -1;
    int ret;

    if (failing(f, FAKE_UNSYNCED_SAMPLES))
        return f->fail_ret;
    for (size_t i = 0; i < f->rows.n_batches; i++) {
        const struct fake_batch *b = &f->rows.batches[i];

        if (!batch_waits(f, b, dev, boot_id_hex))
            continue;
        for (int64_t id = b->first_sample_id; id && id <= b->last_sample_id; id++) {
            const struct fake_sample *s = &f->rows.samples[id - 1];
            struct et_store_sample smp = {
                .id = s->id, .metric_id = s->metric_id, .ts_ms = s->ts_ms,
                .mono_ms = s->mono_ms, .time_quality = s->time_quality, .seq = s->seq,
            };

            if (s->seq == b->seq && (ret = cb(ctx, &smp)) != 0)
                return ret;
        }
    }
    return 0;
}

static int fake_sample_time(struct et_store_writer *w, int64_t id, int64_t ts_ms,
                            enum et_time_quality tq)
{
    struct fake_writer *f = of(w);

    if (failing(f, FAKE_SAMPLE_TIME))
        return f->fail_ret;
    assert_true(id >= 1 && (size_t)id <= f->rows.n_samples);
    f->rows.samples[id - 1].ts_ms = ts_ms;
    f->rows.samples[id - 1].time_quality = tq;
    return 0;
}

static int fake_unsynced_done(struct et_store_writer *w, const char *device,
                              const char *boot_id_hex)
{
    struct fake_writer *f = of(w);
    struct fake_device *d = fake_device(f, device);
    int dev = d ? (int)(d - f->rows.devices) : -1;

    if (failing(f, FAKE_UNSYNCED_DONE))
        return f->fail_ret;
    for (size_t i = 0; i < f->rows.n_batches; i++) {
        if (batch_waits(f, &f->rows.batches[i], dev, boot_id_hex))
            f->rows.batches[i].unsynced = 0;
    }
    return 0;
}

static const struct et_store_writer_ops fake_ops = {
    .begin = fake_begin,
    .commit = fake_commit,
    .rollback = fake_rollback,
    .batch_seen = fake_batch_seen,
    .device_seen = fake_device_seen,
    .device_status = fake_device_status,
    .metric_id = fake_metric_id,
    .metric_tags = fake_metric_tags,
    .insert_batch = fake_insert_batch,
    .insert_sample = fake_insert_sample,
    .ack_get = fake_ack_get,
    .ack_set = fake_ack_set,
    .seqs_after = fake_seqs_after,
    .clock_get = fake_clock_get,
    .clock_set = fake_clock_set,
    .unsynced_samples = fake_unsynced_samples,
    .sample_time = fake_sample_time,
    .unsynced_done = fake_unsynced_done,
    .stream_get = fake_stream_get,
    .stream_start = fake_stream_start,
    .quarantine = fake_quarantine,
    .batch_samples = fake_batch_samples,
};

struct fake_writer *fake_writer_create(void)
{
    struct fake_writer *f = calloc(1, sizeof(*f));

    assert_non_null(f);
    f->base.ops = &fake_ops;
    f->fail_ret = -EIO;
    return f;
}

void fake_writer_destroy(struct fake_writer *f)
{
    free(f);
}

int fake_writer_setup(void **state)
{
    *state = fake_writer_create();
    return 0;
}

int fake_writer_teardown(void **state)
{
    fake_writer_destroy(*state);
    return 0;
}

void fake_add_stream_batches(struct fake_writer *f, const char *device, const char *stream,
                             uint64_t first, uint64_t last)
{
    int dev = device_index(f, device, 0, NULL);

    stream_add(f, dev, stream, 0);   /* or it is there already */
    for (uint64_t seq = first; seq <= last; seq++) {
        struct et_store_batch b = {
            .device = device, .seq = seq, .boot_id_hex = "", .stream_hex = stream,
        };

        assert_int_equal(fake_insert_batch(&f->base, &b), 0);
        f->calls[FAKE_INSERT_BATCH]--;   /* the test's rows, not the code's calls */
    }
}

void fake_add_batches(struct fake_writer *f, const char *device, uint64_t first, uint64_t last)
{
    fake_add_stream_batches(f, device, "", first, last);
}
