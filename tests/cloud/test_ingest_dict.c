/*
 * Streams' metric dictionaries at the aggregator: a batch that refers to a
 * dictionary the aggregator does not know is answered with "send the
 * dictionary" and neither stored nor acked; the dictionary outlives an
 * aggregator restart and serves a second instance on the same store; an
 * entry is never given a second meaning; what a rolled-back transaction
 * kept is forgotten; and batches of agents from before dictionaries are
 * stored as they always were.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cloud_test.h"
#include "edgetel/codec.h"
#include "edgetel/store_open.h"

#define DEV "dict-dev"
#define TOPIC "edgetel/v1/" DEV "/telemetry"
#define DICT_ID 1

/* A device's stream dictionary and batch builder, as its agent keeps them. */
struct device {
    struct et_dict *dict;
    struct et_batch *batch;
};

static void device_init(struct device *d)
{
    assert_int_equal(et_dict_create(&d->dict), 0);
    assert_int_equal(et_batch_create(&d->batch), 0);
    d->dict->id = DICT_ID;
    et_batch_use_dict(d->batch, d->dict);
}

static void device_fini(struct device *d)
{
    et_batch_destroy(d->batch);
    et_dict_destroy(d->dict);
}

/* A round of seq: temperature (0.01 Cel), a counter, a flag; the next batch's entries are kept. */
static uint8_t *device_batch(struct device *d, uint64_t seq, size_t *len)
{
    struct et_batch_meta m = {
        .device_id = DEV, .seq = seq, .base_mono_ms = CLOUD_BASE_MONO + (int64_t)seq * 1000,
        .base_wall_ms = CLOUD_BASE_WALL + (int64_t)seq * 1000, .time_quality = ET_TQ_SYNCED,
        .oldest_seq = 1, .stream_id = cloud_stream_a,
    };
    struct et_value v = et_value_f64(21.5 + (double)seq / 100);
    uint8_t *buf;

    v.resolution = 0.01;
    assert_int_equal(et_batch_add(d->batch, "room.temp", "Cel", m.base_mono_ms, &v,
                                  ET_TQ_SYNCED), 0);
    v = et_value_i64((int64_t)seq * 1000);
    assert_int_equal(et_batch_add(d->batch, "room.count", "1", m.base_mono_ms, &v,
                                  ET_TQ_SYNCED), 0);
    v = et_value_bool(seq % 2);
    assert_int_equal(et_batch_add(d->batch, "room.open", "1", m.base_mono_ms, &v,
                                  ET_TQ_SYNCED), 0);
    assert_int_equal(et_batch_encode(d->batch, &m, &buf, len), 0);
    et_batch_reset(d->batch);
    et_batch_use_dict(d->batch, d->dict);
    return buf;
}

static int ingest(struct et_ingest *ig, const uint8_t *buf, size_t len,
                  struct et_ingest_reply *r)
{
    return et_ingest_message(ig, TOPIC, buf, len, CLOUD_NOW, r);
}

/* The reply's Ack asks for the dictionary and acks nothing new. */
static void assert_dict_wanted(const struct et_ingest_reply *r, uint64_t seq, uint64_t through)
{
    Edgetel__V1__Ack *ack;
    char err[160];

    assert_int_equal(r->kind, ET_INGEST_DICT_WANTED);
    assert_non_null(r->ack);
    assert_int_equal(et_wire_decode_ack(r->ack, r->ack_len, &ack, err, sizeof(err)), 0);
    assert_int_equal(ack->dict_wanted, DICT_ID);
    assert_int_equal(ack->dict_wanted_seq, seq);
    assert_int_equal(ack->acked_through, through);
    assert_int_equal(ack->n_seqs, 0);
    assert_int_equal(ack->stream_id.len, ET_STREAM_ID_LEN);
    edgetel__v1__ack__free_unpacked(ack, NULL);
}

struct seen_samples {
    size_t n;
    double temp[16];
    int64_t count[16];
    uint64_t seq[16];
};

static int take_sample(void *ctx, const struct et_store_sample *s)
{
    struct seen_samples *ss = ctx;

    if (strcmp(s->metric, "room.count") == 0) {
        assert_true(ss->n < 16);
        ss->count[ss->n] = s->value.u.i64;
        ss->seq[ss->n++] = s->seq;
    } else if (strcmp(s->metric, "room.temp") == 0) {
        assert_int_equal(s->value.type, ET_TYPE_F64);
        ss->temp[s->seq] = s->value.u.f64;
    } else {
        assert_string_equal(s->metric, "room.open");
        assert_int_equal(s->value.type, ET_TYPE_BOOL);
        assert_int_equal(s->value.u.b, s->seq % 2);
    }
    return 0;
}

static void assert_stored(struct et_store_reader *r, size_t n_batches)
{
    struct seen_samples ss = { 0 };

    assert_int_equal(et_store_samples_after(r, 0, NULL, 100, take_sample, &ss), 0);
    assert_int_equal(ss.n, n_batches);
    for (size_t i = 0; i < ss.n; i++) {
        assert_int_equal(ss.count[i], (int64_t)ss.seq[i] * 1000);
        assert_true(ss.temp[ss.seq[i]] == 21.5 + (double)ss.seq[i] / 100);
    }
}

/*
 * The batch that carried the dictionary comes after one that refers to it
 * (live data overtakes the backlog): the later one is asked about, then
 * stored when it comes again; after a restart the store still knows.
 */
static void unknown_dictionary_is_asked_for_and_survives_a_restart(void **state)
{
    struct cloud_fixture *f = *state;
    struct et_ingest_reply r;
    struct device dev;
    uint8_t *b1, *b2, *b3;
    size_t l1, l2, l3;

    device_init(&dev);
    b1 = device_batch(&dev, 1, &l1);      /* carries the three entries */
    b2 = device_batch(&dev, 2, &l2);      /* refers to them */
    b3 = device_batch(&dev, 3, &l3);
    assert_true(l2 < l1);

    assert_int_equal(ingest(f->ig, b2, l2, &r), 0);
    assert_dict_wanted(&r, 2, 0);
    assert_int_equal(et_ingest_stats(f->ig)->dict_wanted, 1);
    assert_int_equal(et_ingest_stats(f->ig)->samples, 0);
    assert_stored(f->r, 0);

    assert_int_equal(ingest(f->ig, b1, l1, &r), 0);
    assert_int_equal(r.kind, ET_INGEST_STORED);
    cloud_assert_ack(&r, DEV, 1, NULL, 0);
    assert_int_equal(ingest(f->ig, b2, l2, &r), 0);
    assert_int_equal(r.kind, ET_INGEST_STORED);
    cloud_assert_ack(&r, DEV, 2, NULL, 0);

    /* A restarted aggregator reads the dictionary from the store. */
    cloud_fixture_reopen(f);
    assert_int_equal(ingest(f->ig, b3, l3, &r), 0);
    assert_int_equal(r.kind, ET_INGEST_STORED);
    cloud_assert_ack(&r, DEV, 3, NULL, 0);
    assert_stored(f->r, 3);
    free(b1);
    free(b2);
    free(b3);
    device_fini(&dev);
}

/* A second instance on the same store (a shared subscription) reads what the first kept. */
static void a_second_aggregator_knows_the_dictionary_from_the_store(void **state)
{
    struct cloud_fixture *f = *state;
    struct et_store *s2;
    struct et_ingest *ig2;
    struct et_ingest_reply r;
    struct device dev;
    uint8_t *b1, *b2;
    size_t l1, l2;
    char err[256];

    device_init(&dev);
    b1 = device_batch(&dev, 1, &l1);
    b2 = device_batch(&dev, 2, &l2);
    assert_int_equal(et_store_open(&s2, "sqlite", f->path, 0, err, sizeof(err)), 0);
    assert_int_equal(et_ingest_create(&ig2, et_store_writer(s2), CLOUD_ROOT), 0);

    assert_int_equal(ingest(f->ig, b1, l1, &r), 0);
    assert_int_equal(r.kind, ET_INGEST_STORED);
    assert_int_equal(ingest(ig2, b2, l2, &r), 0);
    assert_int_equal(r.kind, ET_INGEST_STORED);
    cloud_assert_ack(&r, DEV, 2, NULL, 0);
    assert_stored(f->r, 2);

    et_ingest_destroy(ig2);
    et_store_close(s2);
    free(b1);
    free(b2);
    device_fini(&dev);
}

/* The agent's answer to "send the dictionary": the batch with every entry inline. */
static void a_batch_sent_again_with_its_dictionary_is_stored(void **state)
{
    struct cloud_fixture *f = *state;
    struct et_ingest_reply r;
    struct device dev;
    uint8_t *b1, *b2, *whole;
    size_t l1, l2, lw;

    device_init(&dev);
    b1 = device_batch(&dev, 1, &l1);
    b2 = device_batch(&dev, 2, &l2);
    assert_int_equal(ingest(f->ig, b2, l2, &r), 0);
    assert_dict_wanted(&r, 2, 0);
    assert_int_equal(et_batch_add_dict(b2, l2, dev.dict, &whole, &lw), 0);
    assert_int_equal(ingest(f->ig, whole, lw, &r), 0);
    assert_int_equal(r.kind, ET_INGEST_STORED);
    /* seq 1 is not stored yet: 2 is acked selectively. */
    cloud_assert_ack(&r, DEV, 0, (uint64_t[]){ 2 }, 1);
    assert_int_equal(ingest(f->ig, b1, l1, &r), 0);
    assert_int_equal(r.kind, ET_INGEST_STORED);
    cloud_assert_ack(&r, DEV, 2, NULL, 0);
    assert_stored(f->r, 2);
    free(whole);
    free(b1);
    free(b2);
    device_fini(&dev);
}

/* An entry once kept means that for ever: a batch saying otherwise is malformed. */
static void an_entry_is_never_given_a_second_meaning(void **state)
{
    struct cloud_fixture *f = *state;
    struct et_ingest_reply r;
    struct device dev, liar;
    struct et_batch_meta m = {
        .device_id = DEV, .seq = 2, .base_mono_ms = CLOUD_BASE_MONO,
        .base_wall_ms = CLOUD_BASE_WALL, .time_quality = ET_TQ_SYNCED, .oldest_seq = 1,
        .stream_id = cloud_stream_a,
    };
    struct et_value v = et_value_i64(7);
    uint8_t *b1, *bad;
    size_t l1, lb;

    device_init(&dev);
    device_init(&liar);
    b1 = device_batch(&dev, 1, &l1);
    assert_int_equal(ingest(f->ig, b1, l1, &r), 0);
    assert_int_equal(r.kind, ET_INGEST_STORED);
    /* Entry 0 of the same dictionary, now an integer. */
    assert_int_equal(et_batch_add(liar.batch, "room.temp", "Cel", CLOUD_BASE_MONO, &v,
                                  ET_TQ_SYNCED), 0);
    assert_int_equal(et_batch_encode(liar.batch, &m, &bad, &lb), 0);
    log_capture_start();
    assert_int_equal(ingest(f->ig, bad, lb, &r), 0);
    log_capture_stop();
    assert_int_equal(r.kind, ET_INGEST_MALFORMED);
    assert_stored(f->r, 1);
    free(b1);
    free(bad);
    device_fini(&dev);
    device_fini(&liar);
}

/* Batches of agents from before dictionaries per stream are stored as they were. */
static void an_old_agents_batch_is_stored(void **state)
{
    struct cloud_fixture *f = *state;
    struct et_ingest_reply r;
    char path[512];
    uint8_t buf[4096];
    size_t len;
    FILE *fp;

    snprintf(path, sizeof(path), "%s/tests/vectors/batch_v1_stream.bin", ET_SOURCE_DIR);
    fp = fopen(path, "rb");
    assert_non_null(fp);
    len = fread(buf, 1, sizeof(buf), fp);
    fclose(fp);
    assert_int_equal(et_ingest_message(f->ig, "edgetel/v1/pi-gh-01/telemetry", buf, len,
                                       CLOUD_NOW, &r), 0);
    assert_int_equal(r.kind, ET_INGEST_STORED);
    assert_int_equal(et_ingest_stats(f->ig)->samples, 6);
}

/*
 * Memory is never ahead of the store: a group that rolls back took the
 * entries it kept with it, so the next batch that refers to them is asked
 * about, not stored against entries no store has. (The fake store keeps
 * no dictionaries: only memory knows them.)
 */
static void a_rolled_back_dictionary_is_forgotten(void **state)
{
    struct fake_writer *fw = fake_writer_create();
    struct et_ingest *ig;
    struct et_ingest_reply r;
    struct device dev;
    uint8_t *b1, *b2;
    size_t l1, l2, held;

    assert_int_equal(et_ingest_create(&ig, &fw->base, CLOUD_ROOT), 0);
    device_init(&dev);
    b1 = device_batch(&dev, 1, &l1);
    b2 = device_batch(&dev, 2, &l2);
    fw->fail_at[FAKE_COMMIT] = 1;
    log_capture_start();
    assert_int_equal(et_ingest_group_begin(ig), 0);
    assert_int_equal(ingest(ig, b1, l1, &r), 0);
    assert_int_equal(r.kind, ET_INGEST_STORED);
    assert_int_equal(et_ingest_group_end(ig, NULL, NULL, &held), -EIO);
    log_capture_stop();
    assert_int_equal(ingest(ig, b2, l2, &r), 0);
    assert_dict_wanted(&r, 2, 0);
    /* Without a store that keeps them, the instance that saw them knows them. */
    assert_int_equal(ingest(ig, b1, l1, &r), 0);
    assert_int_equal(r.kind, ET_INGEST_STORED);
    assert_int_equal(ingest(ig, b2, l2, &r), 0);
    assert_int_equal(r.kind, ET_INGEST_STORED);
    et_ingest_destroy(ig);
    fake_writer_destroy(fw);
    free(b1);
    free(b2);
    device_fini(&dev);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(unknown_dictionary_is_asked_for_and_survives_a_restart,
                                        cloud_fixture_setup, cloud_fixture_teardown),
        cmocka_unit_test_setup_teardown(a_second_aggregator_knows_the_dictionary_from_the_store,
                                        cloud_fixture_setup, cloud_fixture_teardown),
        cmocka_unit_test_setup_teardown(a_batch_sent_again_with_its_dictionary_is_stored,
                                        cloud_fixture_setup, cloud_fixture_teardown),
        cmocka_unit_test_setup_teardown(an_entry_is_never_given_a_second_meaning,
                                        cloud_fixture_setup, cloud_fixture_teardown),
        cmocka_unit_test_setup_teardown(an_old_agents_batch_is_stored, cloud_fixture_setup,
                                        cloud_fixture_teardown),
        cmocka_unit_test(a_rolled_back_dictionary_is_forgotten),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
