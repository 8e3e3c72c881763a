/*
 * ingest_bench: how fast aggregators store telemetry, acks included, on a
 * store of either kind, and how long a day of one metric takes to read.
 *
 *   ingest_bench ingest STORE [--instances N] [--devices D] [--batches B]
 *                [--metrics M] [--per-metric K] [--group G]
 *   ingest_bench query STORE
 *
 * STORE is a SQLite file or a PostgreSQL connection string (the type goes
 * by et_store_type_of()); it should be new and empty.
 *
 * ingest: N processes, each an aggregator's ingest (cloud/ingest.c) on its
 * own connection to the store, share the batches of D devices the way a
 * shared subscription shares them (batch i goes to instance i mod N, the
 * devices' batches interleaved as they come in real time). A batch is what
 * a board sends every 2 s at 60 values a second: M metrics (default 60) of
 * K samples each (default 2). Each instance takes its messages in groups
 * of G (default 64; the aggregator groups what is queued) and encodes and
 * counts an Ack for every batch, released after the commit. The batches are
 * encoded before the clock starts (that is the boards' work). Prints the
 * samples a second of all instances together, from the first start to the
 * last end.
 *
 * query: stores a day of one metric at 1 s (86,400 samples, in batches of
 * 120) beside 9 other metrics, then reads that day through the store
 * reader (et_store_query, as edgetelctl query does) five times and prints
 * the median time.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "edgetel/codec.h"
#include "edgetel/ingest.h"
#include "edgetel/log.h"
#include "edgetel/store_open.h"
#include "edgetel/store_reader.h"
#include "edgetel/value.h"

struct opts {
    const char *store;
    int instances, devices, batches, metrics, per_metric, group;
};

static int64_t mono_ns(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static int64_t wall_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

struct message {
    char topic[96];
    uint8_t *payload;
    size_t len;
    size_t samples;
};

/* Batch seq of device d: metrics m0.. of per samples each, 1 s apart, from wall. */
static int make_batch(struct message *msg, int d, uint64_t seq, int metrics, int per,
                      int64_t wall)
{
    static const uint8_t stream[ET_STREAM_ID_LEN] = { 0x5e, 0x11 };
    char device[32], name[32];
    struct et_batch_meta meta = {
        .device_id = device, .seq = seq, .base_mono_ms = 1000000, .base_wall_ms = wall,
        .time_quality = ET_TQ_SYNCED, .oldest_seq = seq, .stream_id = stream,
    };
    struct et_batch *b;
    struct et_value v;
    int ret;

    snprintf(device, sizeof(device), "board-%05d", d);
    memset(meta.boot_id, 0xb0, sizeof(meta.boot_id));
    ret = et_batch_create(&b);
    for (int k = 0; ret == 0 && k < per; k++) {
        for (int m = 0; ret == 0 && m < metrics; m++) {
            snprintf(name, sizeof(name), "sensor.m%02d", m);
            v = et_value_f64(20.0 + 0.01 * (double)(seq * (uint64_t)per + (uint64_t)k) + m);
            ret = et_batch_add(b, name, "1", 1000000 + (int64_t)k * 1000, &v, ET_TQ_SYNCED);
        }
    }
    if (ret == 0)
        ret = et_batch_encode(b, &meta, &msg->payload, &msg->len);
    et_batch_destroy(b);
    snprintf(msg->topic, sizeof(msg->topic), "edgetel/v1/%s/telemetry", device);
    msg->samples = (size_t)(metrics * per);
    return ret;
}

static void count_ack(void *ctx, const struct et_ingest_reply *reply)
{
    (void)reply;
    (*(uint64_t *)ctx)++;
}

struct result {
    int64_t start_ns, end_ns;
    uint64_t samples, acks, failed_groups;
    int ret;
};

/* One instance: open, ingest its share in groups, report. */
static struct result instance(const struct opts *o, int me, struct message *msgs, size_t n,
                              int go_fd)
{
    struct result res = { .ret = 0 };
    struct et_store *s = NULL;
    struct et_ingest *ig = NULL;
    struct et_ingest_reply reply;
    char err[512], go;

    res.ret = et_store_open(&s, NULL, o->store, 0, err, sizeof(err));
    if (res.ret < 0) {
        fprintf(stderr, "ingest_bench: %s\n", err);
        return res;
    }
    res.ret = et_ingest_create(&ig, et_store_writer(s), "edgetel");
    if (res.ret < 0 || read(go_fd, &go, 1) != 1)
        goto out;
    res.start_ns = mono_ns();
    for (size_t i = (size_t)me; i < n;) {
        size_t first = i;
        uint64_t acks = 0, samples = 0;

        et_ingest_group_begin(ig);
        for (int g = 0; g < o->group && i < n; g++, i += (size_t)o->instances) {
            if (et_ingest_message(ig, msgs[i].topic, msgs[i].payload, msgs[i].len, wall_ms(),
                                  &reply) == 0 && reply.kind == ET_INGEST_STORED)
                samples += msgs[i].samples;
        }
        if (et_ingest_group_end(ig, count_ack, &acks, NULL) < 0) {
            /* Rolled back: the devices would send these again; so do we. */
            res.failed_groups++;
            i = first;
            continue;
        }
        res.acks += acks;
        res.samples += samples;
    }
    res.end_ns = mono_ns();
out:
    et_ingest_destroy(ig);
    et_store_close(s);
    return res;
}

static int run_ingest(const struct opts *o)
{
    size_t n = (size_t)o->devices * (size_t)o->batches;
    struct message *msgs = calloc(n, sizeof(*msgs));
    int go[2], out[2];
    pid_t *pids = calloc((size_t)o->instances, sizeof(*pids));
    struct result total = { .start_ns = INT64_MAX }, r;
    int64_t wall = wall_ms() - (int64_t)o->batches * o->per_metric * 1000;
    struct rusage ru;
    double secs, cpu;
    uint64_t bytes = 0;
    int status = 0;

    if (!msgs || !pids || pipe(go) < 0 || pipe(out) < 0)
        return 1;
    /* Every device's seq 1, then every device's seq 2, ...: as boards send. */
    for (int b = 0; b < o->batches; b++)
        for (int d = 0; d < o->devices; d++)
            if (make_batch(&msgs[(size_t)b * (size_t)o->devices + (size_t)d], d,
                           (uint64_t)b + 1, o->metrics, o->per_metric,
                           wall + (int64_t)b * o->per_metric * 1000) < 0)
                return 1;
    for (int i = 0; i < o->instances; i++) {
        pids[i] = fork();
        if (pids[i] == 0) {
            close(go[1]);
            r = instance(o, i, msgs, n, go[0]);
            if (write(out[1], &r, sizeof(r)) != (ssize_t)sizeof(r))
                _exit(1);
            _exit(r.ret < 0 ? 1 : 0);
        }
    }
    close(go[0]);
    /* Every instance connected and waiting: go. */
    sleep(1);
    for (int i = 0; i < o->instances; i++)
        if (write(go[1], "g", 1) != 1)
            return 1;
    for (int i = 0; i < o->instances; i++) {
        if (read(out[0], &r, sizeof(r)) != (ssize_t)sizeof(r) || r.ret < 0) {
            status = 1;
            continue;
        }
        total.samples += r.samples;
        total.acks += r.acks;
        total.failed_groups += r.failed_groups;
        if (r.start_ns < total.start_ns)
            total.start_ns = r.start_ns;
        if (r.end_ns > total.end_ns)
            total.end_ns = r.end_ns;
    }
    for (int i = 0; i < o->instances; i++)
        waitpid(pids[i], NULL, 0);
    /* The instances' own CPU time (the batches were encoded before the
     * fork): on a shared machine the wall clock also counts others' work. */
    getrusage(RUSAGE_CHILDREN, &ru);
    cpu = (double)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) +
          (double)(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6;
    secs = (double)(total.end_ns - total.start_ns) / 1e9;
    printf("%-10s %d instance%s  %6" PRIu64 " batches  %8" PRIu64 " samples  %6.2f s  "
           "%9.0f samples/s  %6" PRIu64 " acks  %" PRIu64 " groups rolled back;"
           "  aggregator CPU %.2f s\n",
           et_store_type_of(o->store), o->instances, o->instances == 1 ? " " : "s",
           (uint64_t)n, total.samples, secs, (double)total.samples / secs, total.acks,
           total.failed_groups, cpu);
    for (size_t i = 0; i < n; i++) {
        bytes += msgs[i].len;
        free(msgs[i].payload);
    }
    printf("%-10s a batch of %d samples is %.0f bytes on the wire (protobuf, before MQTT and "
           "TLS)\n", et_store_type_of(o->store), o->metrics * o->per_metric,
           (double)bytes / (double)n);
    free(msgs);
    free(pids);
    return status || total.acks != n;
}

static int count_sample(void *ctx, const struct et_store_sample *smp)
{
    (void)smp;
    (*(uint64_t *)ctx)++;
    return 0;
}

static int cmp_i64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;

    return (x > y) - (x < y);
}

static int run_query(const struct opts *o)
{
    const int per = 120 / 10, batches = 86400 / per;
    int64_t day = (wall_ms() / 86400000 - 1) * 86400000;   /* yesterday, whole */
    struct et_store *s = NULL;
    struct et_ingest *ig = NULL;
    struct et_ingest_reply reply;
    struct message msg;
    int64_t times[5];
    uint64_t got = 0;
    char err[512];
    int ret;

    ret = et_store_open(&s, NULL, o->store, 0, err, sizeof(err));
    if (ret < 0) {
        fprintf(stderr, "ingest_bench: %s\n", err);
        return 1;
    }
    et_ingest_create(&ig, et_store_writer(s), "edgetel");
    for (int b = 0; b < batches; b += 64) {
        et_ingest_group_begin(ig);
        for (int k = b; k < b + 64 && k < batches; k++) {
            /* 10 metrics of 12 samples a batch: m00 is the one read back. */
            if (make_batch(&msg, 0, (uint64_t)k + 1, 10, per, day + (int64_t)k * per * 1000) < 0)
                return 1;
            et_ingest_message(ig, msg.topic, msg.payload, msg.len, wall_ms(), &reply);
            free(msg.payload);
        }
        if (et_ingest_group_end(ig, NULL, NULL, NULL) < 0)
            return 1;
    }
    et_ingest_destroy(ig);
    et_store_maintain(s, wall_ms(), 0, err, sizeof(err));
    for (int i = 0; i < 5; i++) {
        const struct et_store_query q = {
            .device = "board-00000", .metric = "sensor.m00", .since_ms = day,
            .until_ms = day + 86400000,
        };
        int64_t t0 = mono_ns();

        got = 0;
        if (et_store_query(et_store_reader(s), &q, count_sample, &got) < 0)
            return 1;
        times[i] = mono_ns() - t0;
    }
    qsort(times, 5, sizeof(times[0]), cmp_i64);
    printf("%-10s a day of one metric at 1 s: %" PRIu64 " samples read in %.1f ms (median of 5;"
           " fastest %.1f ms)\n", et_store_type_of(o->store), got, (double)times[2] / 1e6,
           (double)times[0] / 1e6);
    et_store_close(s);
    return got == 86400 ? 0 : 1;
}

static int int_arg(const char *v)
{
    return v ? atoi(v) : 0;
}

int main(int argc, char **argv)
{
    struct opts o = { .instances = 1, .devices = 100, .batches = 100, .metrics = 60,
                      .per_metric = 2, .group = 64 };

    et_log_init("ingest_bench", ET_LOG_WARN);
    if (argc < 3) {
        fprintf(stderr, "usage: ingest_bench ingest|query STORE [--instances N] [--devices D]"
                " [--batches B] [--metrics M] [--per-metric K] [--group G]\n");
        return 2;
    }
    o.store = argv[2];
    for (int i = 3; i + 1 < argc; i += 2) {
        int v = int_arg(argv[i + 1]);

        if (strcmp(argv[i], "--instances") == 0)
            o.instances = v;
        else if (strcmp(argv[i], "--devices") == 0)
            o.devices = v;
        else if (strcmp(argv[i], "--batches") == 0)
            o.batches = v;
        else if (strcmp(argv[i], "--metrics") == 0)
            o.metrics = v;
        else if (strcmp(argv[i], "--per-metric") == 0)
            o.per_metric = v;
        else if (strcmp(argv[i], "--group") == 0)
            o.group = v;
        else
            return 2;
    }
    if (o.instances < 1 || o.devices < 1 || o.batches < 1 || o.metrics < 1 ||
        o.per_metric < 1 || o.group < 1)
        return 2;
    return strcmp(argv[1], "query") == 0 ? run_query(&o) : run_ingest(&o);
}
