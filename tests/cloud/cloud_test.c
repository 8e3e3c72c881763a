/*
 * The cloud tests' store fixture and fake writer. See cloud_test.h.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "cloud_test.h"
#include "edgetel/store_open.h"
#include "edgetel/codec.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

/* ---- the SQLite store fixture ----------------------------------------------- */

bool cloud_store_is_pg(void)
{
    const char *t = getenv("ET_TEST_STORE");

    return t && strcmp(t, "postgresql") == 0;
}

void cloud_skip_unless_sqlite(void)
{
    if (cloud_store_is_pg())
        skip();
}

static void fixture_open(struct cloud_fixture *f)
{
    char err[256];

    assert_int_equal(et_store_open(&f->store, f->type, f->path, 0, err, sizeof(err)), 0);
    f->w = et_store_writer(f->store);
    f->r = et_store_reader(f->store);
    assert_non_null(f->w);
    assert_non_null(f->r);
    assert_int_equal(et_ingest_create(&f->ig, f->w, CLOUD_ROOT), 0);
}

static void fixture_close(struct cloud_fixture *f)
{
    et_ingest_destroy(f->ig);
    et_store_close(f->store);
    f->ig = NULL;
    f->store = NULL;
}

struct cloud_fixture *cloud_fixture_create(const char *name)
{
    struct cloud_fixture *f = calloc(1, sizeof(*f));

    assert_non_null(f);
    snprintf(f->dir, sizeof(f->dir), "/tmp/et-%.16s-XXXXXX", name);
    assert_non_null(mkdtemp(f->dir));
    f->type = cloud_store_is_pg() ? "postgresql" : "sqlite";
    if (cloud_store_is_pg())
        cloud_pg_schema(f->path, sizeof(f->path), f->schema, sizeof(f->schema));
    else
        snprintf(f->path, sizeof(f->path), "%s/agg.db", f->dir);
    fixture_open(f);
    return f;
}

int cloud_fixture_setup(void **state)
{
    *state = cloud_fixture_create("cloud");
    return 0;
}

int cloud_fixture_teardown(void **state)
{
    cloud_fixture_destroy(*state);
    return 0;
}

void cloud_fixture_reopen(struct cloud_fixture *f)
{
    fixture_close(f);
    fixture_open(f);
}

void cloud_remove_db(const char *path)
{
    char p[360];

    unlink(path);
    snprintf(p, sizeof(p), "%s-wal", path);
    unlink(p);
    snprintf(p, sizeof(p), "%s-shm", path);
    unlink(p);
}

static int count_sample(void *ctx, const struct et_store_sample *smp)
{
    (void)smp;
    (*(size_t *)ctx)++;
    return 0;
}

void cloud_tail_settle(struct et_store_reader *r, const char *device, size_t want)
{
    const struct timespec pause = { .tv_sec = 0, .tv_nsec = 10 * 1000 * 1000 };
    size_t n = 0;

    for (int i = 0; i < 1000; i++) {
        n = 0;
        assert_int_equal(et_store_samples_after(r, 0, device, 100000, count_sample, &n), 0);
        if (n >= want)
            return;
        nanosleep(&pause, NULL);
    }
    fail_msg("cloud: tail shows %zu samples of %s after 10 s, want %zu", n, device, want);
}

int64_t cloud_last_id_settled(struct cloud_fixture *f)
{
    const struct timespec pause = { .tv_sec = 0, .tv_nsec = 10 * 1000 * 1000 };
    int64_t top = cloud_store_is_pg() ? cloud_pg_int(f, "SELECT max(id) FROM samples") : 0;
    int64_t last = 0;

    for (int i = 0; i < 1000; i++) {
        assert_int_equal(et_store_last_sample_id(f->r, &last), 0);
        if (last >= top)
            return last;
        nanosleep(&pause, NULL);
    }
    fail_msg("cloud: the last sample id stays at %lld below %lld after 10 s", (long long)last,
             (long long)top);
    return 0;
}

void cloud_fixture_destroy(struct cloud_fixture *f)
{
    if (!f)
        return;
    fixture_close(f);
    if (f->schema[0])
        cloud_pg_drop(f->schema);
    else
        cloud_remove_db(f->path);
    rmdir(f->dir);
    free(f);
}

/* ---- batches and Acks --------------------------------------------------------- */

const uint8_t cloud_stream_a[ET_STREAM_ID_LEN] = {
    0xa0, 0xa1, 0xa2, 0xa3, 0xa4, 0xa5, 0xa6, 0xa7,
    0xa8, 0xa9, 0xaa, 0xab, 0xac, 0xad, 0xae, 0xaf,
};
const uint8_t cloud_stream_b[ET_STREAM_ID_LEN] = {
    0xb0, 0xb1, 0xb2, 0xb3, 0xb4, 0xb5, 0xb6, 0xb7,
    0xb8, 0xb9, 0xba, 0xbb, 0xbc, 0xbd, 0xbe, 0xbf,
};

uint8_t *cloud_make_batch(const char *device, uint64_t seq, uint64_t oldest, size_t n,
                          size_t *len)
{
    return cloud_make_batch_in(device, cloud_stream_a, seq, oldest, n, len);
}

uint8_t *cloud_make_batch_in(const char *device, const uint8_t *stream_id, uint64_t seq,
                             uint64_t oldest, size_t n, size_t *len)
{
    struct et_batch_meta meta = {
        .device_id = device,
        .seq = seq,
        .base_mono_ms = CLOUD_BASE_MONO,
        .base_wall_ms = CLOUD_BASE_WALL,
        .time_quality = ET_TQ_SYNCED,
        .oldest_seq = oldest,
        .stream_id = stream_id,
    };
    struct et_batch *b;
    struct et_value v;
    int64_t mono;
    uint8_t *buf;

    memset(meta.boot_id, 0xab, sizeof(meta.boot_id));
    assert_int_equal(et_batch_create(&b), 0);
    for (size_t i = 0; i < n; i++) {
        mono = CLOUD_BASE_MONO + (int64_t)i * 1000;
        v = et_value_i64((int64_t)(seq * 100 + i));
        assert_int_equal(et_batch_add(b, "sim.counter", "1", mono, &v, ET_TQ_SYNCED), 0);
        if (i % 2 == 0) {
            v = et_value_f64(0.5 * (double)i);
            assert_int_equal(et_batch_add(b, "sim.sine", "1", mono, &v, ET_TQ_SYNCED), 0);
        }
    }
    assert_int_equal(et_batch_encode(b, &meta, &buf, len), 0);
    et_batch_destroy(b);
    return buf;
}

int cloud_ingest_batch(struct et_ingest *ig, const char *device, uint64_t seq, uint64_t oldest,
                       size_t n, struct et_ingest_reply *r)
{
    return cloud_ingest_batch_in(ig, device, cloud_stream_a, seq, oldest, n, CLOUD_NOW, r);
}

int cloud_ingest_batch_in(struct et_ingest *ig, const char *device, const uint8_t *stream_id,
                          uint64_t seq, uint64_t oldest, size_t n, int64_t now_ms,
                          struct et_ingest_reply *r)
{
    char topic[128];
    size_t len;
    uint8_t *buf = cloud_make_batch_in(device, stream_id, seq, oldest, n, &len);
    int ret;

    snprintf(topic, sizeof(topic), CLOUD_ROOT "/v1/%s/telemetry", device);
    ret = et_ingest_message(ig, topic, buf, len, now_ms, r);
    free(buf);
    return ret;
}

void cloud_assert_ack(const struct et_ingest_reply *r, const char *device, uint64_t through,
                      const uint64_t *seqs, size_t n_seqs)
{
    cloud_assert_ack_in(r, device, cloud_stream_a, through, seqs, n_seqs);
}

void cloud_assert_ack_in(const struct et_ingest_reply *r, const char *device,
                         const uint8_t *stream_id, uint64_t through, const uint64_t *seqs,
                         size_t n_seqs)
{
    Edgetel__V1__Ack *ack = NULL;
    char err[128], topic[128];

    snprintf(topic, sizeof(topic), CLOUD_ROOT "/v1/%s/ack", device);
    assert_non_null(r->ack);
    assert_string_equal(r->ack_topic, topic);
    assert_int_equal(et_wire_decode_ack(r->ack, r->ack_len, &ack, err, sizeof(err)), 0);
    assert_string_equal(ack->device_id, device);
    assert_int_equal(ack->acked_through, through);
    assert_int_equal(r->acked_through, through);
    assert_int_equal(ack->n_seqs, n_seqs);
    for (size_t i = 0; i < n_seqs; i++)
        assert_int_equal(ack->seqs[i], seqs[i]);
    assert_int_equal(ack->stream_id.len, stream_id ? ET_STREAM_ID_LEN : 0);
    if (stream_id)
        assert_memory_equal(ack->stream_id.data, stream_id, ET_STREAM_ID_LEN);
    edgetel__v1__ack__free_unpacked(ack, NULL);
}

void cloud_put_batch(struct et_store_writer *w, const char *device, uint64_t seq,
                     const char *metric, const char *unit, int64_t ts0, int n)
{
    struct et_store_batch b = {
        .device = device, .seq = seq, .received_ms = ts0, .n_samples = (uint32_t)n,
        .boot_id_hex = "", .time_quality = ET_TQ_SYNCED,
    };
    struct et_store_stream st;
    int64_t id;

    assert_int_equal(et_store_begin(w), 0);
    assert_int_equal(et_store_device_seen(w, device, ts0, "", (uint64_t)n, NULL), 0);
    /* In the legacy stream, recorded as ingest would. */
    if (et_store_stream_get(w, device, "", &st) == -ENOENT)
        assert_int_equal(et_store_stream_start(w, device, "", ts0, NULL), 0);
    assert_int_equal(et_store_metric_id(w, device, metric, unit, &id), 0);
    assert_int_equal(et_store_insert_batch(w, &b), 0);
    for (int i = 0; i < n; i++) {
        struct et_store_sample smp = {
            .metric_id = id, .ts_ms = ts0 + i * 1000, .mono_ms = i * 1000,
            .value = { .type = ET_TYPE_I64, .u.i64 = i }, .time_quality = ET_TQ_SYNCED,
            .seq = seq,
        };

        assert_int_equal(et_store_insert_sample(w, &smp, NULL), 0);
    }
    assert_int_equal(et_store_commit(w), 0);
}

struct device_copy {
    struct et_store_device d;
    char stream[ET_STORE_STREAM_HEX_LEN + 1];
    bool found;
};

static int device_cb(void *ctx, const struct et_store_device *d)
{
    struct device_copy *dc = ctx;

    dc->d = *d;
    snprintf(dc->stream, sizeof(dc->stream), "%s", d->stream_hex ? d->stream_hex : "");
    dc->d.id = dc->d.boot_id_hex = dc->d.agent_version = dc->d.reason = NULL;
    dc->found = true;
    return 0;
}

struct et_store_device cloud_device(struct et_store_reader *r, const char *device)
{
    static struct device_copy dc;

    memset(&dc, 0, sizeof(dc));
    assert_int_equal(et_store_devices(r, device, device_cb, &dc), 0);
    if (!dc.found)
        fail_msg("device %s is not in the store", device);
    dc.d.stream_hex = dc.stream;
    return dc.d;
}

static int count_cb(void *ctx, const struct et_store_sample *s)
{
    (*(int64_t *)ctx)++;
    return 0;
}

int64_t cloud_stored(struct et_store_reader *r, const char *device, const char *metric)
{
    struct et_store_query q = {
        .device = device, .metric = metric, .since_ms = INT64_MIN, .until_ms = INT64_MAX,
    };
    int64_t n = 0;

    assert_int_equal(et_store_query(r, &q, count_cb, &n), 0);
    return n;
}

/* ---- what a test reads back ------------------------------------------------------ */

FILE *cloud_output_start(struct cloud_output *o)
{
    cloud_output_free(o);
    o->mem = open_memstream(&o->text, &o->len);
    assert_non_null(o->mem);
    return o->mem;
}

const char *cloud_output_text(struct cloud_output *o)
{
    fflush(o->mem);
    return o->text;
}

void cloud_output_free(struct cloud_output *o)
{
    if (o->mem)
        fclose(o->mem);
    free(o->text);
    *o = (struct cloud_output){ .mem = NULL };
}

int cloud_fake_setup(void **state)
{
    struct cloud_fake *f = calloc(1, sizeof(*f));

    assert_non_null(f);
    f->fw = fake_writer_create();
    assert_int_equal(et_ingest_create(&f->ig, &f->fw->base, CLOUD_ROOT), 0);
    log_capture_start();
    et_log_init("test", ET_LOG_INFO);
    *state = f;
    return 0;
}

int cloud_fake_teardown(void **state)
{
    struct cloud_fake *f = *state;

    log_capture_stop();
    et_ingest_destroy(f->ig);
    fake_writer_destroy(f->fw);
    free(f);
    return 0;
}

int cloud_tmpdir_setup(void **state)
{
    struct cloud_tmpdir *t = calloc(1, sizeof(*t));

    if (!t)
        return -1;
    snprintf(t->dir, sizeof(t->dir), "/tmp/et-cloud-test-XXXXXX");
    if (!mkdtemp(t->dir)) {
        free(t);
        return -1;
    }
    *state = t;
    return 0;
}

int cloud_tmpdir_teardown(void **state)
{
    struct cloud_tmpdir *t = *state;
    char cmd[160];

    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", t->dir);
    if (system(cmd) != 0)
        return -1;
    free(t);
    return 0;
}

int cloud_sh(const char *dir, char *out, size_t outlen, const char *fmt, ...)
{
    char cmd[1024], args[800];
    va_list ap;
    FILE *p;
    size_t n;
    int st;

    va_start(ap, fmt);
    vsnprintf(args, sizeof(args), fmt, ap);
    va_end(ap);
    snprintf(cmd, sizeof(cmd), "cd '%s' && %s 2>&1", dir, args);
    p = popen(cmd, "r");
    assert_non_null(p);
    n = fread(out, 1, outlen - 1, p);
    out[n] = '\0';
    st = pclose(p);
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}
