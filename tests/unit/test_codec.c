/*
 * Wire codec: golden vectors (today's form, and the form of agents from
 * before stream dictionaries, which must still be read), round trips of
 * every value type through the compact columns and the typed samples,
 * stream dictionaries (carried, referred to, asked for), the historical
 * marker, and rejection of malformed input with a reason.
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

#include "edgetel/codec.h"

static uint8_t *read_vector(const char *name, size_t *len)
{
    char path[512];
    FILE *f;
    uint8_t *buf = malloc(4096);

    snprintf(path, sizeof(path), "%s/tests/vectors/%s", ET_SOURCE_DIR, name);
    f = fopen(path, "rb");
    assert_non_null(f);
    *len = fread(buf, 1, 4096, f);
    fclose(f);
    assert_true(*len > 0);
    return buf;
}

/* The samples and stamp of tests/vectors/batch_v{1,2}_basic.{bin,txt}, into b. */
static void basic_into(struct et_batch *b, struct et_batch_meta *m)
{
    struct et_value v;

    v = et_value_i64(41);
    assert_int_equal(et_batch_add(b, "sim.counter", "1", 1000000, &v, ET_TQ_SYNCED), 0);
    v = et_value_f64(0.5);
    v.resolution = 0.01;
    assert_int_equal(et_batch_add(b, "sim.sine", "1", 1000000, &v, ET_TQ_SYNCED), 0);
    v = et_value_i64(42);
    assert_int_equal(et_batch_add(b, "sim.counter", "1", 1001000, &v, ET_TQ_SYNCED), 0);
    v = et_value_f64(-0.25);
    v.resolution = 0.01;
    assert_int_equal(et_batch_add(b, "sim.sine", "1", 1001000, &v, ET_TQ_UNSYNCED), 0);
    v = et_value_bool(true);
    assert_int_equal(et_batch_add(b, "throttle.under_voltage", "1", 1001000, &v, ET_TQ_SYNCED), 0);
    v.type = ET_TYPE_STR;
    strcpy(v.u.str, "ok");
    assert_int_equal(et_batch_add(b, "bme280.status", "", 1001500, &v, ET_TQ_SYNCED), 0);

    memset(m, 0, sizeof(*m));
    m->device_id = "pi-gh-01";
    m->seq = 7;
    m->base_mono_ms = 1000000;
    m->base_wall_ms = 1795000000000LL;
    m->time_quality = ET_TQ_SYNCED;
    m->oldest_seq = 5;
    for (int i = 0; i < 16; i++)
        m->boot_id[i] = (uint8_t)(0xa0 + i);
}

static struct et_batch *basic_batch(struct et_batch_meta *m)
{
    struct et_batch *b;

    assert_int_equal(et_batch_create(&b), 0);
    basic_into(b, m);
    return b;
}

/* The stream id of tests/vectors/batch_v1_stream.{bin,txt}: 0xc0 .. 0xcf. */
static const uint8_t vector_stream[ET_STREAM_ID_LEN] = {
    0xc0, 0xc1, 0xc2, 0xc3, 0xc4, 0xc5, 0xc6, 0xc7,
    0xc8, 0xc9, 0xca, 0xcb, 0xcc, 0xcd, 0xce, 0xcf,
};

/* The vectors are written anew with ET_WRITE_VECTORS=1 (then check the .txt by protoc). */
static void encodes_as(const struct et_batch *b, const struct et_batch_meta *m,
                       const char *vector)
{
    uint8_t *out, *golden;
    size_t len, golden_len;

    assert_int_equal(et_batch_encode(b, m, &out, &len), 0);
    if (getenv("ET_WRITE_VECTORS")) {
        char path[512];
        FILE *f;

        snprintf(path, sizeof(path), "%s/tests/vectors/%s", ET_SOURCE_DIR, vector);
        f = fopen(path, "wb");
        assert_non_null(f);
        assert_int_equal(fwrite(out, 1, len, f), len);
        fclose(f);
    }
    golden = read_vector(vector, &golden_len);
    assert_int_equal(len, golden_len);
    assert_memory_equal(out, golden, len);
    free(out);
    free(golden);
}

static void encode_matches_golden_vector(void **state)
{
    struct et_batch_meta m;
    struct et_batch *b = basic_batch(&m);
    struct et_dict *d;

    /* A batch with its own dictionary (dict_id 0). */
    m.stream_id = vector_stream;
    encodes_as(b, &m, "batch_v2_basic.bin");
    et_batch_destroy(b);

    /* On a stream dictionary: its entries carried from index 0, dict_id 7. */
    assert_int_equal(et_dict_create(&d), 0);
    assert_int_equal(et_batch_create(&b), 0);
    et_batch_use_dict(b, d);
    basic_into(b, &m);
    m.stream_id = vector_stream;
    d->id = 7;
    encodes_as(b, &m, "batch_v2_stream.bin");
    et_batch_destroy(b);
    et_dict_destroy(d);
}

/* The samples of basic_batch(), read back by name, in any batch form. */
static void reads_as_basic(const struct et_wire_named *s, size_t n)
{
    assert_int_equal(n, 6);
    for (size_t i = 0; i < n; i++) {
        const struct et_wire_named *x = &s[i];

        if (strcmp(x->name, "sim.counter") == 0) {
            assert_int_equal(x->s.type, ET_TYPE_I64);
            assert_true(x->s.u.i64 == (x->s.mono_ms == 1000000 ? 41 : 42));
            assert_int_equal(x->s.tq, ET_TQ_SYNCED);
        } else if (strcmp(x->name, "sim.sine") == 0) {
            assert_int_equal(x->s.type, ET_TYPE_F64);
            assert_true(x->s.u.f64 == (x->s.mono_ms == 1000000 ? 0.5 : -0.25));
            assert_int_equal(x->s.tq, x->s.mono_ms == 1000000 ? ET_TQ_SYNCED : ET_TQ_UNSYNCED);
        } else if (strcmp(x->name, "throttle.under_voltage") == 0) {
            assert_int_equal(x->s.type, ET_TYPE_BOOL);
            assert_true(x->s.u.b);
            assert_int_equal(x->s.mono_ms, 1001000);
        } else {
            assert_string_equal(x->name, "bme280.status");
            assert_int_equal(x->s.type, ET_TYPE_STR);
            assert_string_equal(x->s.u.str, "ok");
            assert_int_equal(x->s.mono_ms, 1001500);
        }
    }
}

static void read_vector_as_basic(const char *vector)
{
    struct et_wire_reader *r;
    struct et_wire_named *s;
    size_t len, n;
    uint8_t *buf = read_vector(vector, &len);
    char err[160];

    assert_int_equal(et_wire_reader_create(&r), 0);
    assert_int_equal(et_wire_read(r, buf, len, &s, &n, err, sizeof(err)), 0);
    reads_as_basic(s, n);
    free(s);
    et_wire_reader_destroy(r);
    free(buf);
}

/* Today's vectors and the ones of agents from before stream dictionaries
 * read alike: an old agent's batches stay accepted. */
static void vectors_read_alike(void **state)
{
    read_vector_as_basic("batch_v1_basic.bin");
    read_vector_as_basic("batch_v1_stream.bin");
    read_vector_as_basic("batch_v2_basic.bin");
    read_vector_as_basic("batch_v2_stream.bin");
}

static void decode_stream_vector(void **state)
{
    size_t len;
    uint8_t *buf = read_vector("batch_v1_stream.bin", &len);
    Edgetel__V1__Batch *d = NULL;
    char err[160];

    assert_int_equal(et_wire_decode_batch(buf, len, &d, err, sizeof(err)), 0);
    assert_int_equal(d->seq, 7);
    assert_int_equal(d->stream_id.len, ET_STREAM_ID_LEN);
    assert_memory_equal(d->stream_id.data, vector_stream, ET_STREAM_ID_LEN);
    et_wire_free_batch(d);
    free(buf);

    /* The first vector has none: the legacy stream. */
    buf = read_vector("batch_v1_basic.bin", &len);
    assert_int_equal(et_wire_decode_batch(buf, len, &d, err, sizeof(err)), 0);
    assert_int_equal(d->stream_id.len, 0);
    et_wire_free_batch(d);
    free(buf);
}

static void decode_golden_vector(void **state)
{
    size_t len;
    uint8_t *buf = read_vector("batch_v1_basic.bin", &len);
    Edgetel__V1__Batch *d = NULL;
    char err[160];
    int64_t t[6];

    assert_int_equal(et_wire_decode_batch(buf, len, &d, err, sizeof(err)), 0);
    assert_string_equal(d->device_id, "pi-gh-01");
    assert_int_equal(d->seq, 7);
    assert_int_equal(d->oldest_seq, 5);
    assert_int_equal(d->boot_id.len, 16);
    assert_int_equal(d->boot_id.data[15], 0xaf);
    assert_int_equal(d->n_metrics, 4);
    assert_string_equal(d->metrics[2]->name, "throttle.under_voltage");
    assert_int_equal(d->n_samples, 6);
    assert_int_equal(et_wire_batch_samples(d), 6);
    et_wire_sample_times(d, t);
    assert_int_equal(t[0], 1000000);
    assert_int_equal(t[2], 1001000);
    assert_int_equal(t[5], 1001500);
    assert_int_equal(d->samples[2]->value_case, EDGETEL__V1__SAMPLE__VALUE_I64);
    assert_int_equal(d->samples[2]->i64, 42);
    assert_true(d->samples[3]->f64 == -0.25);
    assert_int_equal(d->samples[3]->time_quality, ET_TQ_UNSYNCED);
    /* Unset per-sample quality means "as the batch". */
    assert_int_equal(d->samples[0]->time_quality, ET_TQ_UNSPECIFIED);
    assert_true(d->samples[4]->b);
    assert_string_equal(d->samples[5]->str, "ok");
    assert_false(d->historical);
    et_wire_free_batch(d);
    free(buf);

    /* Today's form: four values in runs, the unsynced sine and the string typed. */
    buf = read_vector("batch_v2_basic.bin", &len);
    assert_int_equal(et_wire_decode_batch(buf, len, &d, err, sizeof(err)), 0);
    assert_int_equal(d->dict_id, 0);
    assert_int_equal(d->n_values, 4);
    assert_int_equal(d->n_samples, 2);
    assert_int_equal(d->metrics[1]->type, EDGETEL__V1__VALUE_TYPE__VALUE_TYPE_F64);
    assert_true(d->metrics[1]->scale == 0.01);
    et_wire_free_batch(d);
    free(buf);
}

static void historical_marker_appends(void **state)
{
    struct et_batch_meta m;
    struct et_batch *b = basic_batch(&m);
    uint8_t *out, *grown;
    size_t len;
    Edgetel__V1__Batch *d;
    char err[160];

    assert_int_equal(et_batch_encode(b, &m, &out, &len), 0);
    grown = realloc(out, len + 2);
    assert_non_null(grown);
    len = et_batch_mark_historical(grown, len);
    assert_int_equal(et_wire_decode_batch(grown, len, &d, err, sizeof(err)), 0);
    assert_true(d->historical);
    assert_int_equal(d->seq, 7);
    assert_int_equal(et_wire_batch_samples(d), 6);
    et_wire_free_batch(d);
    free(grown);
    et_batch_destroy(b);
}

static void reset_reuses_builder(void **state)
{
    struct et_batch *b;
    struct et_value v = et_value_i64(1);

    assert_int_equal(et_batch_create(&b), 0);
    assert_int_equal(et_batch_add(b, "a", "1", 5, &v, ET_TQ_SYNCED), 0);
    assert_int_equal(et_batch_samples(b), 1);
    assert_int_equal(et_batch_first_mono_ms(b), 5);
    et_batch_reset(b);
    assert_int_equal(et_batch_samples(b), 0);
    assert_int_equal(et_batch_first_mono_ms(b), 0);
    assert_int_equal(et_batch_add(b, "b", "1", 9, &v, ET_TQ_SYNCED), 0);
    assert_int_equal(et_batch_first_mono_ms(b), 9);
    et_batch_destroy(b);
    et_batch_destroy(NULL);
}

static void add_rejects_bad_input(void **state)
{
    struct et_batch *b;
    struct et_value v;

    assert_int_equal(et_batch_create(&b), 0);
    v = et_value_f64(1);
    assert_int_equal(et_batch_add(b, "", "1", 0, &v, ET_TQ_SYNCED), -EINVAL);
    v.type = ET_TYPE_STR;
    memset(v.u.str, 'x', sizeof(v.u.str));   /* no NUL inside the limit */
    assert_int_equal(et_batch_add(b, "s", "", 0, &v, ET_TQ_SYNCED), -EINVAL);
    assert_int_equal(et_batch_samples(b), 0);
    et_batch_destroy(b);
}

/* A realistic round of 20 float metrics, 50 rounds: without a resolution
 * each value travels whole, as a typed sample; with one, as a small
 * difference from the metric's last value. */
static size_t encoded_rounds(double resolution)
{
    struct et_batch *b;
    struct et_batch_meta m = { .device_id = "pi-gh-01", .seq = 1, .base_mono_ms = 5000,
                               .base_wall_ms = 1795000000000LL, .time_quality = ET_TQ_SYNCED,
                               .oldest_seq = 1 };
    uint8_t *out;
    size_t len;
    char name[32];

    assert_int_equal(et_batch_create(&b), 0);
    for (int r = 0; r < 50; r++) {
        for (int k = 0; k < 20; k++) {
            struct et_value v = et_value_f64(r * 0.1 + k);

            v.resolution = resolution;
            snprintf(name, sizeof(name), "metric.number%d", k);
            assert_int_equal(et_batch_add(b, name, "1", 5000 + r * 1000, &v, ET_TQ_SYNCED), 0);
        }
    }
    assert_int_equal(et_batch_encode(b, &m, &out, &len), 0);
    free(out);
    et_batch_destroy(b);
    return len;
}

static void encoded_size_per_sample_is_small(void **state)
{
    /* Typed: tag+len (2), metric (2), value (9), a delta now and then. */
    size_t typed = encoded_rounds(0), compact = encoded_rounds(0.01);

    print_message("typed %zu bytes, compact %zu bytes\n", typed, compact);

    assert_true(typed < 1000 * 15);
    assert_true(typed > 1000 * 12);
    /* Compact: the 20 names once (500 bytes), a 2-byte first value per
     * metric, then +10 a round (1 byte), one run per round (4 bytes for 20
     * values). */
    assert_true(compact < 1000 * 2);
}

/* Every value a compact column can take comes back as it went, and what it
 * cannot take (NaN, infinities, a value off its step) travels typed. */
static void values_round_trip(void **state)
{
    static const struct { enum et_type type; double res; double f; int64_t i; } cases[] = {
        { ET_TYPE_F64, 0.01, 21.37, 0 },      { ET_TYPE_F64, 0.01, -0.29, 0 },
        { ET_TYPE_F64, 0.001, 1e12, 0 },      { ET_TYPE_F64, 0.5, 3.5, 0 },
        { ET_TYPE_F64, 0.01, NAN, 0 },        { ET_TYPE_F64, 0.01, INFINITY, 0 },
        { ET_TYPE_F64, 1e-9, 1e300, 0 },      { ET_TYPE_F64, 0, 0.1, 0 },
        { ET_TYPE_I64, 0, 0, INT64_MAX },     { ET_TYPE_I64, 0, 0, INT64_MIN },
        { ET_TYPE_I64, 512, 0, 512 * 1000 },  { ET_TYPE_I64, 512, 0, 513 },
        { ET_TYPE_I64, 1024, 0, -2048 },      { ET_TYPE_BOOL, 0, 0, 1 },
    };
    size_t n_cases = sizeof(cases) / sizeof(cases[0]);
    struct et_batch_meta m = { .device_id = "dev-1", .seq = 2, .base_mono_ms = 100,
                               .base_wall_ms = 1795000000000LL, .time_quality = ET_TQ_SYNCED };
    struct et_wire_reader *r;
    struct et_wire_named *out;
    struct et_batch *b;
    uint8_t *buf;
    size_t len, n;
    char name[32], err[160];

    assert_int_equal(et_batch_create(&b), 0);
    /* Twice each, the second time at another time: differences both ways. */
    for (int round = 0; round < 2; round++) {
        for (size_t i = 0; i < n_cases; i++) {
            struct et_value v = { .type = cases[i].type, .resolution = cases[i].res };

            if (v.type == ET_TYPE_F64)
                v.u.f64 = round ? -cases[i].f : cases[i].f;
            else if (v.type == ET_TYPE_I64)
                v.u.i64 = round && cases[i].i != INT64_MIN ? -cases[i].i : cases[i].i;
            else
                v.u.b = round == 0;
            snprintf(name, sizeof(name), "m%zu", i);
            assert_int_equal(et_batch_add(b, name, "1", 100 + round * 1000, &v, ET_TQ_SYNCED), 0);
        }
    }
    assert_int_equal(et_batch_encode(b, &m, &buf, &len), 0);
    assert_int_equal(et_wire_reader_create(&r), 0);
    assert_int_equal(et_wire_read(r, buf, len, &out, &n, err, sizeof(err)), 0);
    assert_int_equal(n, 2 * n_cases);
    for (size_t k = 0; k < n; k++) {
        size_t i = (size_t)atoi(out[k].name + 1);
        int round = out[k].s.mono_ms == 1100;

        assert_int_equal(out[k].s.type, cases[i].type);
        if (cases[i].type == ET_TYPE_F64) {
            double want = round ? -cases[i].f : cases[i].f;

            if (isnan(want))
                assert_true(isnan(out[k].s.u.f64));
            else if (cases[i].res == 1e-9)
                assert_true(out[k].s.u.f64 == want);        /* too large: typed */
            else
                assert_true(out[k].s.u.f64 == want);
        } else if (cases[i].type == ET_TYPE_I64) {
            int64_t want = round && cases[i].i != INT64_MIN ? -cases[i].i : cases[i].i;

            assert_true(out[k].s.u.i64 == want);
        } else {
            assert_int_equal(out[k].s.u.b, round == 0);
        }
    }
    free(out);
    et_wire_reader_destroy(r);
    free(buf);
    et_batch_destroy(b);
}

/*
 * A stream dictionary: the first batch carries the entries, the next
 * refers to them only; a reader that missed the first cannot read the
 * second (-ENOKEY) until it comes again with the dictionary inline.
 */
static void stream_dictionary_carried_referred_and_asked_for(void **state)
{
    struct et_batch_meta m = { .device_id = "dev-1", .base_mono_ms = 100,
                               .base_wall_ms = 1795000000000LL, .time_quality = ET_TQ_SYNCED,
                               .stream_id = vector_stream };
    struct et_wire_reader *seen_all, *late;
    struct et_wire_named *out;
    struct et_batch *b;
    struct et_dict *d;
    uint8_t *first, *second, *again;
    size_t first_len, second_len, again_len, n;
    uint64_t id;
    char err[160];
    Edgetel__V1__Batch *dec;

    assert_int_equal(et_dict_create(&d), 0);
    assert_int_equal(et_batch_create(&b), 0);
    et_batch_use_dict(b, d);
    basic_into(b, &m);
    m.seq = 7;
    d->id = 7;
    m.stream_id = vector_stream;
    assert_int_equal(et_batch_encode(b, &m, &first, &first_len), 0);
    et_batch_reset(b);
    et_batch_use_dict(b, d);            /* the entries are kept: none is new */
    basic_into(b, &m);
    m.seq = 8;
    m.stream_id = vector_stream;
    assert_int_equal(et_batch_encode(b, &m, &second, &second_len), 0);
    assert_true(second_len + 40 < first_len);
    assert_int_equal(et_wire_decode_batch(second, second_len, &dec, err, sizeof(err)), 0);
    assert_int_equal(dec->dict_id, 7);
    assert_int_equal(dec->n_metrics, 0);
    et_wire_free_batch(dec);
    assert_int_equal(et_wire_peek_dict(second, second_len, &id), 0);
    assert_int_equal(id, 7);

    assert_int_equal(et_wire_reader_create(&seen_all), 0);
    assert_int_equal(et_wire_read(seen_all, first, first_len, &out, &n, err, sizeof(err)), 0);
    reads_as_basic(out, n);
    free(out);
    if (et_wire_read(seen_all, second, second_len, &out, &n, err, sizeof(err)) != 0)
        fail_msg("%s", err);
    reads_as_basic(out, n);
    free(out);

    assert_int_equal(et_wire_reader_create(&late), 0);
    assert_int_equal(et_wire_read(late, second, second_len, &out, &n, err, sizeof(err)),
                     -ENOKEY);
    assert_null(out);
    assert_int_equal(et_batch_add_dict(second, second_len, d, &again, &again_len), 0);
    assert_int_equal(et_wire_read(late, again, again_len, &out, &n, err, sizeof(err)), 0);
    reads_as_basic(out, n);
    free(out);
    free(again);
    /* Only a batch of that dictionary takes it. */
    d->id = 9;
    assert_int_equal(et_batch_add_dict(second, second_len, d, &again, &again_len), -ENOENT);

    free(first);
    free(second);
    et_wire_reader_destroy(seen_all);
    et_wire_reader_destroy(late);
    et_batch_destroy(b);
    et_dict_destroy(d);
}

/* The self-contained form of a stream batch (its dictionary could not be kept). */
static void inline_form_carries_everything(void **state)
{
    struct et_batch_meta m;
    struct et_wire_reader *r;
    struct et_wire_named *out;
    struct et_batch *b;
    struct et_dict *d;
    struct et_value v = et_value_i64(5);
    uint8_t *buf;
    size_t len, n;
    char err[160];

    assert_int_equal(et_dict_create(&d), 0);
    assert_int_equal(et_batch_create(&b), 0);
    et_batch_use_dict(b, d);
    assert_int_equal(et_batch_add(b, "early", "1", 1, &v, ET_TQ_SYNCED), 0);
    et_batch_reset(b);
    et_batch_use_dict(b, d);
    basic_into(b, &m);
    assert_int_equal(et_batch_encode_inline(b, &m, &buf, &len), 0);
    assert_int_equal(et_wire_reader_create(&r), 0);
    assert_int_equal(et_wire_read(r, buf, len, &out, &n, err, sizeof(err)), 0);
    reads_as_basic(out, n);
    free(out);
    free(buf);
    /* Without an id a stream batch cannot be made. */
    assert_int_equal(et_batch_encode(b, &m, &buf, &len), -EINVAL);
    et_wire_reader_destroy(r);
    et_batch_destroy(b);
    et_dict_destroy(d);
}

static void decode_fails(const uint8_t *buf, size_t len, const char *expect)
{
    Edgetel__V1__Batch *d = NULL;
    char err[160] = "";

    assert_int_equal(et_wire_decode_batch(buf, len, &d, err, sizeof(err)), -EBADMSG);
    assert_null(d);
    if (!strstr(err, expect))
        fail_msg("error \"%s\" does not mention \"%s\"", err, expect);
}

/* Pack a hand-made Batch so tests can break rules the encoder never breaks. */
static uint8_t *pack(const Edgetel__V1__Batch *msg, size_t *len)
{
    uint8_t *buf = malloc(edgetel__v1__batch__get_packed_size(msg) + 1);

    *len = edgetel__v1__batch__pack(msg, buf);
    return buf;
}

static void decode_rejects_malformed(void **state)
{
    size_t len;
    uint8_t *good = read_vector("batch_v1_basic.bin", &len);
    uint8_t garbage[64];

    decode_fails(good, len - 7, "not a valid");          /* truncated */
    memset(garbage, 0xff, sizeof(garbage));
    decode_fails(garbage, sizeof(garbage), "not a valid");
    decode_fails(good, ET_WIRE_MAX_MESSAGE + 1, "limit");
    free(good);

    Edgetel__V1__Metric metric = EDGETEL__V1__METRIC__INIT, *metrics[] = { &metric };
    Edgetel__V1__Sample sample = EDGETEL__V1__SAMPLE__INIT, *samples[] = { &sample };
    Edgetel__V1__Batch msg = EDGETEL__V1__BATCH__INIT;
    uint8_t *buf;

    metric.name = "x";
    sample.value_case = EDGETEL__V1__SAMPLE__VALUE_F64;
    sample.metric = 3;
    msg.device_id = "dev-1";
    msg.seq = 1;
    msg.n_metrics = 1;
    msg.metrics = metrics;
    msg.n_samples = 1;
    msg.samples = samples;
    buf = pack(&msg, &len);
    decode_fails(buf, len, "sample 0: metric index 3 out of range (1 metrics)");
    free(buf);

    sample.metric = 0;
    sample.value_case = EDGETEL__V1__SAMPLE__VALUE__NOT_SET;
    buf = pack(&msg, &len);
    decode_fails(buf, len, "sample 0: no value");
    free(buf);

    sample.value_case = EDGETEL__V1__SAMPLE__VALUE_F64;
    msg.device_id = "../etc";
    buf = pack(&msg, &len);
    decode_fails(buf, len, "not a valid device id");
    free(buf);

    msg.device_id = "dev+1";
    buf = pack(&msg, &len);
    decode_fails(buf, len, "not a valid device id");
    free(buf);

    msg.device_id = "dev-1";
    msg.seq = 0;
    buf = pack(&msg, &len);
    decode_fails(buf, len, "seq is 0");
    free(buf);

    msg.seq = 4;
    msg.oldest_seq = 9;
    buf = pack(&msg, &len);
    decode_fails(buf, len, "oldest_seq 9 is above seq 4");
    free(buf);

    msg.oldest_seq = 0;
    msg.boot_id.len = 3;
    msg.boot_id.data = (uint8_t *)"abc";
    buf = pack(&msg, &len);
    decode_fails(buf, len, "boot_id has 3 bytes");
    free(buf);

    msg.boot_id.len = 0;
    sample.dt_ms = INT64_MAX / 2;
    buf = pack(&msg, &len);
    decode_fails(buf, len, "out of range");
    free(buf);

    sample.dt_ms = 0;
    sample.time_quality = 77;
    buf = pack(&msg, &len);
    decode_fails(buf, len, "time_quality 77");
    free(buf);

    sample.time_quality = 0;
    msg.stream_id.len = 15;
    msg.stream_id.data = (uint8_t *)vector_stream;
    buf = pack(&msg, &len);
    decode_fails(buf, len, "stream_id has 15 bytes");
    free(buf);
    msg.stream_id.len = 0;

    /* The compact columns. */
    int64_t dts[] = { 0, 5 }, values[] = { 1, 2, 3 };
    int32_t firsts[] = { 0, -1 };
    uint32_t lens[] = { 1, 1 };

    msg.n_samples = 0;
    metric.type = EDGETEL__V1__VALUE_TYPE__VALUE_TYPE_I64;
    msg.n_run_dt_ms = 2;
    msg.run_dt_ms = dts;
    msg.n_run_metric = 1;
    msg.run_metric = firsts;
    msg.n_run_len = 2;
    msg.run_len = lens;
    msg.n_values = 2;
    msg.values = values;
    buf = pack(&msg, &len);
    decode_fails(buf, len, "runs: 2 times, 1 metrics and 2 lengths");
    free(buf);

    msg.n_run_metric = 2;
    msg.n_values = 3;
    buf = pack(&msg, &len);
    decode_fails(buf, len, "runs hold 2 values, the batch 3");
    free(buf);

    msg.n_values = 2;
    firsts[1] = 4;
    buf = pack(&msg, &len);
    decode_fails(buf, len, "run 1: metrics 5..6 out of range (1)");
    free(buf);

    firsts[1] = -1;
    metric.type = EDGETEL__V1__VALUE_TYPE__VALUE_TYPE_UNSPECIFIED;
    buf = pack(&msg, &len);
    decode_fails(buf, len, "run 0: metric 0 has no compact type");
    free(buf);

    metric.type = EDGETEL__V1__VALUE_TYPE__VALUE_TYPE_I64;
    metric.scale = 0.5;
    buf = pack(&msg, &len);
    decode_fails(buf, len, "an integer's scale 0.5 is not a whole number");
    free(buf);

    metric.scale = 0;
    msg.dict_base = 3;
    buf = pack(&msg, &len);
    decode_fails(buf, len, "dict_base 3 without a dict_id");
    free(buf);

    /* A stream's dictionary: indexes beyond what the batch carries are fine. */
    msg.dict_id = 9;
    msg.dict_base = 0;
    firsts[1] = 40;
    buf = pack(&msg, &len);
    {
        Edgetel__V1__Batch *ok = NULL;
        char err[160];

        assert_int_equal(et_wire_decode_batch(buf, len, &ok, err, sizeof(err)), 0);
        et_wire_free_batch(ok);
    }
    free(buf);
    msg.dict_base = ET_DICT_MAX;
    buf = pack(&msg, &len);
    decode_fails(buf, len, "beyond");
    free(buf);
}

static void ack_round_trip(void **state)
{
    uint64_t seqs[] = { 12, 15 };
    uint8_t *buf;
    size_t len;
    Edgetel__V1__Ack *a;
    char err[160];

    assert_int_equal(et_wire_encode_ack("pi-gh-01", vector_stream, 10, seqs, 2, &buf, &len), 0);
    assert_int_equal(et_wire_decode_ack(buf, len, &a, err, sizeof(err)), 0);
    assert_string_equal(a->device_id, "pi-gh-01");
    assert_int_equal(a->acked_through, 10);
    assert_int_equal(a->n_seqs, 2);
    assert_int_equal(a->seqs[1], 15);
    assert_int_equal(a->stream_id.len, ET_STREAM_ID_LEN);
    assert_memory_equal(a->stream_id.data, vector_stream, ET_STREAM_ID_LEN);
    edgetel__v1__ack__free_unpacked(a, NULL);
    free(buf);

    /* The legacy stream: no stream id on the wire. */
    assert_int_equal(et_wire_encode_ack("pi-gh-01", NULL, 10, NULL, 0, &buf, &len), 0);
    assert_int_equal(et_wire_decode_ack(buf, len, &a, err, sizeof(err)), 0);
    assert_int_equal(a->stream_id.len, 0);
    edgetel__v1__ack__free_unpacked(a, NULL);
    free(buf);

    assert_int_equal(et_wire_encode_ack("bad id", NULL, 1, NULL, 0, &buf, &len), 0);
    assert_int_equal(et_wire_decode_ack(buf, len, &a, err, sizeof(err)), -EBADMSG);
    free(buf);

    {
        Edgetel__V1__Ack msg = EDGETEL__V1__ACK__INIT;
        uint8_t packed[64];

        msg.device_id = "pi-gh-01";
        msg.stream_id.data = (uint8_t *)vector_stream;
        msg.stream_id.len = 4;
        len = edgetel__v1__ack__pack(&msg, packed);
        assert_int_equal(et_wire_decode_ack(packed, len, &a, err, sizeof(err)), -EBADMSG);
        assert_non_null(strstr(err, "stream_id has 4 bytes"));
    }
}

/* Found by fuzz_wire: the reason was formatted from a freed message. */
static void status_with_bad_boot_id_is_rejected(void **state)
{
    Edgetel__V1__Status msg = EDGETEL__V1__STATUS__INIT, *out = NULL;
    uint8_t buf[128];
    size_t len;
    char err[160] = "";

    msg.device_id = "pi-gh-01";
    msg.boot_id.data = (uint8_t *)"abc";
    msg.boot_id.len = 3;
    len = edgetel__v1__status__pack(&msg, buf);
    assert_int_equal(et_wire_decode_status(buf, len, &out, err, sizeof(err)), -EBADMSG);
    assert_null(out);
    assert_string_equal(err, "status boot_id has 3 bytes, expected 16");

    msg.boot_id.len = 0;
    len = edgetel__v1__status__pack(&msg, buf);
    assert_int_equal(et_wire_decode_status(buf, len, &out, err, sizeof(err)), 0);
    assert_string_equal(out->device_id, "pi-gh-01");
    edgetel__v1__status__free_unpacked(out, NULL);
}

/* The agent's birth, periodic and last-will Status, through the codec. */
static void status_round_trip(void **state)
{
    const uint8_t boot[ET_BOOT_ID_LEN] = { 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16 };
    struct et_status st = {
        .device_id = "pi-gh-01", .online = true, .boot_id = boot, .wall_ms = 1700000000123,
        .agent_version = "0.1.0", .outbox_batches = 42, .dropped_samples = 7,
        .clock_synced = true, .reason = "waited 12 s for the wall clock to synchronise",
        .stream_id = vector_stream,
    };
    Edgetel__V1__Status *out = NULL;
    char err[160];
    uint8_t *buf;
    size_t len;

    assert_int_equal(et_wire_encode_status(&st, &buf, &len), 0);
    assert_int_equal(et_wire_decode_status(buf, len, &out, err, sizeof(err)), 0);
    assert_string_equal(out->device_id, "pi-gh-01");
    assert_true(out->online);
    assert_int_equal(out->boot_id.len, ET_BOOT_ID_LEN);
    assert_memory_equal(out->boot_id.data, boot, ET_BOOT_ID_LEN);
    assert_int_equal(out->wall_ms, 1700000000123);
    assert_string_equal(out->agent_version, "0.1.0");
    assert_int_equal(out->outbox_batches, 42);
    assert_int_equal(out->dropped_samples, 7);
    assert_true(out->clock_synced);
    assert_string_equal(out->reason, st.reason);
    assert_int_equal(out->stream_id.len, ET_STREAM_ID_LEN);
    assert_memory_equal(out->stream_id.data, vector_stream, ET_STREAM_ID_LEN);
    edgetel__v1__status__free_unpacked(out, NULL);
    free(buf);

    /* Offline, no reason, no boot id: empty strings, no boot id on the wire. */
    st = (struct et_status){ .device_id = "pi-gh-01" };
    assert_int_equal(et_wire_encode_status(&st, &buf, &len), 0);
    assert_int_equal(et_wire_decode_status(buf, len, &out, err, sizeof(err)), 0);
    assert_false(out->online);
    assert_int_equal(out->boot_id.len, 0);
    assert_int_equal(out->stream_id.len, 0);
    assert_string_equal(out->reason, "");
    assert_string_equal(out->agent_version, "");
    edgetel__v1__status__free_unpacked(out, NULL);
    free(buf);
}

static void tags_canonical_form_and_errors(void **state)
{
    char out[ET_TAGS_TEXT_MAX], err[160];

    assert_int_equal(et_tags_canonical(" room = kitchen , floor=1,site=plant 3/hall:a ", out,
                                       sizeof(out), err, sizeof(err)), 0);
    assert_string_equal(out, "room=kitchen,floor=1,site=plant 3/hall:a");
    assert_int_equal(et_tags_canonical("", out, sizeof(out), err, sizeof(err)), 0);
    assert_string_equal(out, "");
    assert_int_equal(et_tags_canonical("Room=x", out, sizeof(out), err, sizeof(err)), -EINVAL);
    assert_non_null(strstr(err, "key of a-z 0-9 _"));
    assert_int_equal(et_tags_canonical("room", out, sizeof(out), err, sizeof(err)), -EINVAL);
    assert_int_equal(et_tags_canonical("room=", out, sizeof(out), err, sizeof(err)), -EINVAL);
    assert_non_null(strstr(err, "value must be 1-64"));
    assert_int_equal(et_tags_canonical("room=a=b", out, sizeof(out), err, sizeof(err)), -EINVAL);
    assert_non_null(strstr(err, "value has '='"));
    assert_int_equal(et_tags_canonical("a=1,a=2", out, sizeof(out), err, sizeof(err)), -EINVAL);
    assert_string_equal(err, "tag \"a\" given twice");
}

static void tags_travel_with_their_metric(void **state)
{
    struct et_batch *b;
    struct et_batch_meta m = { .device_id = "pi-gh-01", .seq = 3, .time_quality = ET_TQ_SYNCED,
                               .oldest_seq = 1 };
    struct et_value v = et_value_f64(21.5);
    Edgetel__V1__Batch *d;
    uint8_t *out;
    size_t len;
    char err[160];

    assert_int_equal(et_batch_create(&b), 0);
    assert_int_equal(et_batch_add_tagged(b, "room.temperature", "Cel", "room=kitchen,floor=1",
                                         10, &v, ET_TQ_SYNCED), 0);
    assert_int_equal(et_batch_add(b, "cpu.usage", "%", 10, &v, ET_TQ_SYNCED), 0);
    assert_int_equal(et_batch_encode(b, &m, &out, &len), 0);
    assert_int_equal(et_wire_decode_batch(out, len, &d, err, sizeof(err)), 0);
    assert_int_equal(d->metrics[0]->n_tags, 2);
    assert_string_equal(d->metrics[0]->tags[0]->key, "room");
    assert_string_equal(d->metrics[0]->tags[0]->value, "kitchen");
    assert_string_equal(d->metrics[0]->tags[1]->key, "floor");
    assert_string_equal(d->metrics[0]->tags[1]->value, "1");
    assert_int_equal(d->metrics[1]->n_tags, 0);
    et_wire_free_batch(d);
    free(out);
    et_batch_destroy(b);
}

static void device_ids(void **state)
{
    assert_true(et_device_id_valid("pi-greenhouse-01"));
    assert_true(et_device_id_valid("A.b_c-9"));
    assert_false(et_device_id_valid(""));
    assert_false(et_device_id_valid(".hidden"));
    assert_false(et_device_id_valid("a/b"));
    assert_false(et_device_id_valid("a#"));
    assert_false(et_device_id_valid("a b"));
    assert_false(et_device_id_valid(NULL));
    assert_true(et_device_id_valid("0123456789012345678901234567890123456789012345678901234567890123"));
    assert_false(et_device_id_valid("01234567890123456789012345678901234567890123456789012345678901234"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(encode_matches_golden_vector),
        cmocka_unit_test(decode_golden_vector),
        cmocka_unit_test(decode_stream_vector),
        cmocka_unit_test(historical_marker_appends),
        cmocka_unit_test(reset_reuses_builder),
        cmocka_unit_test(add_rejects_bad_input),
        cmocka_unit_test(encoded_size_per_sample_is_small),
        cmocka_unit_test(values_round_trip),
        cmocka_unit_test(vectors_read_alike),
        cmocka_unit_test(stream_dictionary_carried_referred_and_asked_for),
        cmocka_unit_test(inline_form_carries_everything),
        cmocka_unit_test(decode_rejects_malformed),
        cmocka_unit_test(ack_round_trip),
        cmocka_unit_test(status_with_bad_boot_id_is_rejected),
        cmocka_unit_test(status_round_trip),
        cmocka_unit_test(tags_canonical_form_and_errors),
        cmocka_unit_test(tags_travel_with_their_metric),
        cmocka_unit_test(device_ids),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
