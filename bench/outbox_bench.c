/*
 * outbox_bench: how fast the outbox takes batches and how much it writes.
 *
 *   outbox_bench [-n SAMPLES] [DIR]
 *
 * Each row appends SAMPLES samples (default 1,000,000) to a fresh outbox in
 * DIR (default: a new directory under the current one, removed afterwards)
 * and reports append throughput and the bytes the process caused to be
 * written to storage (/proc/self/io write_bytes, taken from before open to
 * after close, so the final checkpoint counts) per sample, against the
 * encoded bytes per sample. wchar is what went through write() before the
 * page cache; write_bytes is what reached the block layer. The last row
 * drains the first row's backlog the way the agent does after a long
 * outage: reopen, then next() and a cumulative ack per batch.
 *
 * Blobs are pseudo-random bytes of the size a real Batch has (about 12
 * encoded bytes per sample plus a header with the device id and boot id):
 * SQLite stores blobs as they are, so only their size matters here.
 *
 * DIR must be on a disk filesystem: on tmpfs nothing reaches a block
 * device and write_bytes stays 0 (the bench says so).
 */
#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/vfs.h>
#include <time.h>
#include <unistd.h>

#include <sqlite3.h>

#include "common.h"   /* et_text_field_u64, from drivers/ */
#include "edgetel/outbox.h"
#include "edgetel/platform.h"

#define BENCH_BYTES_PER_SAMPLE 12
#define BENCH_HEADER_BYTES 48      /* device id, seq, boot id, times */
#define BENCH_TMPFS_MAGIC 0x01021994
#define BENCH_BLOB_POOL 64         /* distinct blobs, used in turn */

struct bench_row {
    const char *name;
    uint32_t samples_per_batch;
    uint32_t group;                /* batches per commit; 1: no group */
};

static const struct bench_row bench_rows[] = {
    { "100/batch, commit each", 100, 1 },
    { "100/batch, group of 10", 100, 10 },
    { "100/batch, group of 100", 100, 100 },
    { "20/batch, commit each", 20, 1 },
    { "20/batch, group of 12", 20, 12 },
    { "1000/batch, commit each", 1000, 1 },
};

struct bench_io {
    uint64_t wchar;
    uint64_t write_bytes;
};

struct bench_result {
    double seconds;
    uint64_t batches;
    uint64_t samples;
    uint64_t encoded;
    struct bench_io io;
};

static double now_s(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Both counters of /proc/self/io, read with the drivers' line parser. */
static int read_io(struct bench_io *io)
{
    char buf[1024];
    ssize_t n = et_fs_read("/proc/self/io", buf, sizeof(buf));

    if (n < 0)
        return (int)n;
    if (!et_text_field_u64(buf, "wchar:", &io->wchar) ||
        !et_text_field_u64(buf, "write_bytes:", &io->write_bytes))
        return -EBADMSG;
    return 0;
}

/* xorshift64*: a cheap stand-in for varint-packed sample values. */
static void fill_blob(uint8_t *buf, size_t len, uint64_t *state)
{
    uint64_t x = *state;

    for (size_t i = 0; i < len; i++) {
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        buf[i] = (uint8_t)((x * 0x2545F4914F6CDD1DULL) >> 56);
    }
    *state = x;
}

static void remove_db(const char *path)
{
    static const char *const suffixes[] = { "", "-wal", "-shm", ".seq", ".seq.tmp", ".lock" };
    char p[4096];

    for (size_t i = 0; i < sizeof(suffixes) / sizeof(suffixes[0]); i++) {
        snprintf(p, sizeof(p), "%s%s", path, suffixes[i]);
        unlink(p);
    }
}

/*
 * A closed outbox is its file and its seq sidecar (close removed the WAL);
 * the lock file goes with remove_db().
 */
static int rename_db(const char *from, const char *to)
{
    char a[PATH_MAX], b[PATH_MAX];

    if (snprintf(a, sizeof(a), "%s.seq", from) >= (int)sizeof(a) ||
        snprintf(b, sizeof(b), "%s.seq", to) >= (int)sizeof(b))
        return -ENAMETOOLONG;
    if (rename(from, to) < 0 || rename(a, b) < 0)
        return -errno;
    return 0;
}

static int run_append(const char *path, const struct bench_row *row, uint64_t total,
                      struct bench_result *res)
{
    size_t len = BENCH_HEADER_BYTES + (size_t)row->samples_per_batch * BENCH_BYTES_PER_SAMPLE;
    struct bench_io before, after;
    struct et_outbox *ob;
    uint64_t rng = 0x9E3779B97F4A7C15ULL;
    uint8_t *blobs;
    char err[512];
    double t0;
    int ret;

    memset(res, 0, sizeof(*res));
    /* Made before the clock starts: the bench times the outbox, not its input. */
    blobs = malloc(len * BENCH_BLOB_POOL);
    if (!blobs)
        return -ENOMEM;
    fill_blob(blobs, len * BENCH_BLOB_POOL, &rng);
    remove_db(path);
    ret = read_io(&before);
    if (ret < 0)
        goto out;
    t0 = now_s();
    ret = et_outbox_open(&ob, path, err, sizeof(err));
    if (ret < 0) {
        fprintf(stderr, "outbox_bench: %s\n", err);
        goto out;
    }
    while (res->samples < total) {
        uint64_t seq = et_outbox_next_seq(ob);

        if (row->group > 1 && res->batches % row->group == 0 && (ret = et_outbox_begin(ob)) < 0)
            break;
        ret = et_outbox_append(ob, seq, blobs + (res->batches % BENCH_BLOB_POOL) * len, len,
                               row->samples_per_batch, 0);
        if (ret < 0)
            break;
        res->batches++;
        res->samples += row->samples_per_batch;
        res->encoded += len;
        if (row->group > 1 && (res->batches % row->group == 0 || res->samples >= total) &&
            (ret = et_outbox_commit(ob)) < 0)
            break;
    }
    et_outbox_close(ob);
    res->seconds = now_s() - t0;
    if (ret < 0) {
        fprintf(stderr, "outbox_bench: %s: append: %s\n", path, strerror(-ret));
        goto out;
    }
    ret = read_io(&after);
    res->io.wchar = after.wchar - before.wchar;
    res->io.write_bytes = after.write_bytes - before.write_bytes;
out:
    free(blobs);
    return ret;
}

/*
 * Reopen a backlog and deliver it: next(), then a cumulative ack, per
 * batch; with group > 1 the acks of that many batches share a commit (a
 * lost ack only means a batch is sent again, so acks need no durability).
 */
static int run_drain(const char *path, uint32_t group, struct bench_result *res)
{
    struct bench_io before, after;
    struct et_outbox_stats st;
    struct et_outbox *ob;
    uint64_t after_seq = 0, seq;
    uint8_t *blob;
    size_t len;
    char err[512];
    double t0;
    int ret;

    memset(res, 0, sizeof(*res));
    ret = read_io(&before);
    if (ret < 0)
        return ret;
    t0 = now_s();
    ret = et_outbox_open(&ob, path, err, sizeof(err));
    if (ret < 0) {
        fprintf(stderr, "outbox_bench: %s\n", err);
        return ret;
    }
    et_outbox_stats(ob, &st);
    res->samples = st.samples;
    res->encoded = st.bytes;
    while ((ret = et_outbox_next(ob, after_seq, &seq, &blob, &len)) == 0) {
        if (group > 1 && res->batches % group == 0 && (ret = et_outbox_begin(ob)) < 0) {
            free(blob);
            break;
        }
        /* The agent marks the blob historical in the spare bytes, then sends it. */
        blob[len] = 0x48;
        blob[len + 1] = 0x01;
        free(blob);
        ret = et_outbox_ack(ob, seq, NULL, 0);
        if (ret < 0)
            break;
        after_seq = seq;
        res->batches++;
        if (group > 1 && res->batches % group == 0 && (ret = et_outbox_commit(ob)) < 0)
            break;
    }
    et_outbox_stats(ob, &st);
    et_outbox_close(ob);    /* commits a last partial group */
    res->seconds = now_s() - t0;
    if (ret != -ENOENT) {
        fprintf(stderr, "outbox_bench: %s: drain: %s\n", path, strerror(-ret));
        return ret < 0 ? ret : -EIO;
    }
    if (st.batches != 0) {
        fprintf(stderr, "outbox_bench: %s: %" PRIu64 " batches left after the drain\n", path,
                st.batches);
        return -EIO;
    }
    ret = read_io(&after);
    res->io.wchar = after.wchar - before.wchar;
    res->io.write_bytes = after.write_bytes - before.write_bytes;
    return ret;
}

static void print_row(const char *name, const struct bench_result *r)
{
    double per = r->samples ? 1.0 / (double)r->samples : 0;
    double enc = (double)r->encoded * per;
    double wb = (double)r->io.write_bytes * per;

    printf("%-26s %8" PRIu64 " %9" PRIu64 " %12.0f %8.1f %10.1f %9.1f %6.2fx\n", name,
           r->batches, r->samples, (double)r->samples / r->seconds, enc,
           (double)r->io.wchar * per, wb, enc > 0 ? wb / enc : 0);
}

static void usage(void)
{
    fprintf(stderr, "usage: outbox_bench [-n SAMPLES] [DIR]\n"
                    "  DIR must exist and be on a disk filesystem (default: ./outbox-bench-XXXXXX)\n");
}

int main(int argc, char **argv)
{
    char tmpl[] = "outbox-bench-XXXXXX";
    char path[4096], backlog[2][4200];
    const char *dir = NULL;
    uint64_t total = 1000000;
    struct bench_result res;
    struct rusage ru;
    struct statfs sfs;
    bool made_dir = false;
    int opt, ret = 0;

    while ((opt = getopt(argc, argv, "n:h")) != -1) {
        switch (opt) {
        case 'n':
            total = strtoull(optarg, NULL, 10);
            if (total == 0) {
                usage();
                return 2;
            }
            break;
        default:
            usage();
            return opt == 'h' ? 0 : 2;
        }
    }
    if (optind < argc)
        dir = argv[optind];
    if (!dir) {
        dir = mkdtemp(tmpl);
        if (!dir) {
            fprintf(stderr, "outbox_bench: cannot make a directory here: %s\n", strerror(errno));
            return 1;
        }
        made_dir = true;
    }
    snprintf(path, sizeof(path), "%s/outbox.db", dir);
    for (int i = 0; i < 2; i++)
        snprintf(backlog[i], sizeof(backlog[i]), "%s.backlog%d", path, i);
    if (statfs(dir, &sfs) == 0 && sfs.f_type == BENCH_TMPFS_MAGIC)
        fprintf(stderr, "outbox_bench: %s is on tmpfs: write_bytes will read 0; "
                        "give a directory on a disk\n", dir);

    printf("outbox_bench: SQLite %s, %" PRIu64 " samples per row, ~%d encoded bytes per sample, dir %s\n",
           sqlite3_libversion(), total, BENCH_BYTES_PER_SAMPLE, dir);
    printf("%-26s %8s %9s %12s %8s %10s %9s %7s\n", "row", "batches", "samples", "samples/s",
           "enc B/s", "wchar B/s", "disk B/s", "disk/enc");
    for (size_t i = 0; i < sizeof(bench_rows) / sizeof(bench_rows[0]); i++) {
        ret = run_append(path, &bench_rows[i], total, &res);
        if (ret < 0)
            goto out;
        print_row(bench_rows[i].name, &res);
        if (i == 0 || i == 1) {
            /* Keep these backlogs for the drain rows, in files of their own. */
            remove_db(backlog[i]);
            ret = rename_db(path, backlog[i]);
            if (ret < 0) {
                fprintf(stderr, "outbox_bench: keeping the backlog: %s\n", strerror(-ret));
                goto out;
            }
        }
    }
    ret = run_drain(backlog[0], 1, &res);
    if (ret < 0)
        goto out;
    print_row("drain: next+ack each", &res);
    ret = run_drain(backlog[1], 100, &res);
    if (ret < 0)
        goto out;
    print_row("drain: acks grouped by 100", &res);
    getrusage(RUSAGE_SELF, &ru);
    printf("(B/s columns are bytes per sample; disk = /proc/self/io write_bytes)\n"
           "peak RSS of the bench %ld KiB; SQLite heap high-water %lld KiB\n", ru.ru_maxrss,
           (long long)sqlite3_memory_highwater(0) / 1024);
out:
    remove_db(path);
    remove_db(backlog[0]);
    remove_db(backlog[1]);
    if (made_dir)
        rmdir(dir);
    return ret < 0 ? 1 : 0;
}
