/*
 * The SQLite outbox: order, acks, seq persistence (clean close, crash,
 * replaced database), damaged files moved aside, stats, limits and
 * eviction, a full disk (PRAGMA max_page_count), and group commit.
 * Each test works in a fresh temporary directory.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <sqlite3.h>

#include "edgetel/outbox.h"
#include "et_fake.h"

struct fixture {
    char dir[64];
    char path[128];
};

static int setup(void **state)
{
    struct fixture *fx = calloc(1, sizeof(*fx));

    if (!fx)
        return -1;
    snprintf(fx->dir, sizeof(fx->dir), "/tmp/et-outbox-XXXXXX");
    if (!mkdtemp(fx->dir)) {
        free(fx);
        return -1;
    }
    snprintf(fx->path, sizeof(fx->path), "%s/outbox.db", fx->dir);
    et_fake_reset();
    *state = fx;
    return 0;
}

static int teardown(void **state)
{
    struct fixture *fx = *state;
    DIR *d = opendir(fx->dir);
    struct dirent *de;
    char p[512];

    while (d && (de = readdir(d)) != NULL) {
        if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
            continue;
        snprintf(p, sizeof(p), "%s/%s", fx->dir, de->d_name);
        unlink(p);
    }
    if (d)
        closedir(d);
    rmdir(fx->dir);
    free(fx);
    return 0;
}

static struct et_outbox *open_ok(const struct fixture *fx)
{
    struct et_outbox *ob = NULL;
    char err[256] = "";
    int ret = et_outbox_open(&ob, fx->path, err, sizeof(err));

    if (ret != 0)
        fail_msg("open %s: %d %s", fx->path, ret, err);
    return ob;
}

/* A blob whose bytes say which seq it belongs to. */
static void make_blob(uint8_t *buf, size_t len, uint64_t seq)
{
    for (size_t i = 0; i < len; i++)
        buf[i] = (uint8_t)(seq * 31 + i * 7);
}

static int append_n(struct et_outbox *ob, size_t len, uint32_t samples)
{
    uint8_t buf[4096];
    uint64_t seq = et_outbox_next_seq(ob);

    assert_true(len <= sizeof(buf));
    make_blob(buf, len, seq);
    return et_outbox_append(ob, seq, buf, len, samples, 1700000000000 + (int64_t)seq);
}

static void expect_batch(struct et_outbox *ob, uint64_t after, uint64_t want_seq, size_t want_len)
{
    uint8_t want[4096];
    uint8_t *blob = NULL;
    uint64_t seq = 0;
    size_t len = 0;

    assert_int_equal(et_outbox_next(ob, after, &seq, &blob, &len), 0);
    assert_int_equal(seq, want_seq);
    assert_int_equal(len, want_len);
    make_blob(want, want_len, want_seq);
    assert_memory_equal(blob, want, want_len);
    /* The spare bytes are there and zeroed (ASan checks they are ours). */
    for (size_t i = 0; i < ET_OUTBOX_BLOB_SPARE; i++)
        assert_int_equal(blob[len + i], 0);
    free(blob);
}

static void expect_seqs(struct et_outbox *ob, const uint64_t *want, size_t n, size_t len)
{
    uint64_t after = 0, seq;
    uint8_t *blob;
    size_t blen;

    for (size_t i = 0; i < n; i++) {
        expect_batch(ob, after, want[i], len);
        after = want[i];
    }
    assert_int_equal(et_outbox_next(ob, after, &seq, &blob, &blen), -ENOENT);
    assert_null(blob);
}

static int count_files(const char *dir, const char *prefix)
{
    DIR *d = opendir(dir);
    struct dirent *de;
    int n = 0;

    assert_non_null(d);
    while ((de = readdir(d)) != NULL)
        if (strncmp(de->d_name, prefix, strlen(prefix)) == 0)
            n++;
    closedir(d);
    return n;
}

static void write_file(const char *path, const void *data, size_t len, off_t at)
{
    int fd = open(path, O_WRONLY | O_CREAT, 0644);

    assert_true(fd >= 0);
    assert_int_equal(pwrite(fd, data, len, at), (ssize_t)len);
    close(fd);
}

/* ---- order and acks ----------------------------------------------------- */

static void test_append_next_order(void **state)
{
    struct fixture *fx = *state;
    struct et_outbox *ob = open_ok(fx);
    const uint64_t all[] = { 1, 2, 3, 4, 5 };
    uint8_t byte = 1;

    assert_int_equal(et_outbox_next_seq(ob), 1);
    for (int i = 0; i < 5; i++)
        assert_int_equal(append_n(ob, 300, 10), 0);
    assert_int_equal(et_outbox_next_seq(ob), 6);
    expect_seqs(ob, all, 5, 300);
    expect_batch(ob, 3, 4, 300);

    /* Wrong seq, empty blob: refused, nothing changes. */
    assert_int_equal(et_outbox_append(ob, 5, &byte, 1, 1, 0), -EINVAL);
    assert_int_equal(et_outbox_append(ob, 7, &byte, 1, 1, 0), -EINVAL);
    assert_int_equal(et_outbox_append(ob, 6, &byte, 0, 1, 0), -EINVAL);
    assert_int_equal(et_outbox_next_seq(ob), 6);
    et_outbox_close(ob);
}

static void test_ack_cumulative_and_selective(void **state)
{
    struct fixture *fx = *state;
    struct et_outbox *ob = open_ok(fx);
    struct et_outbox_stats st;
    const uint64_t sel[] = { 5, 7, 42, 2 };
    const uint64_t left[] = { 4, 6, 8, 9, 10 };
    const uint64_t sel2[] = { 10 };
    const uint64_t left2[] = { 4, 6, 8, 9 };

    for (int i = 0; i < 10; i++)
        assert_int_equal(append_n(ob, 200, 7), 0);
    /* seq 2 is covered by through, 42 does not exist: 3 + 2 deleted. */
    assert_int_equal(et_outbox_ack(ob, 3, sel, 4), 5);
    expect_seqs(ob, left, 5, 200);
    assert_int_equal(et_outbox_stats(ob, &st), 0);
    assert_int_equal(st.batches, 5);
    assert_int_equal(st.samples, 35);
    assert_int_equal(st.bytes, 1000);
    assert_int_equal(st.oldest_seq, 4);
    assert_int_equal(st.newest_seq, 10);

    /* A repeated ack deletes nothing. */
    assert_int_equal(et_outbox_ack(ob, 3, sel, 4), 0);
    /* Selective ack of the newest. */
    assert_int_equal(et_outbox_ack(ob, 0, sel2, 1), 1);
    expect_seqs(ob, left2, 4, 200);
    assert_int_equal(et_outbox_stats(ob, &st), 0);
    assert_int_equal(st.newest_seq, 9);

    assert_int_equal(et_outbox_ack(ob, 100, NULL, 0), 4);
    assert_int_equal(et_outbox_stats(ob, &st), 0);
    assert_int_equal(st.batches, 0);
    assert_int_equal(st.samples, 0);
    assert_int_equal(st.bytes, 0);
    assert_int_equal(st.oldest_seq, 0);
    assert_int_equal(st.newest_seq, 0);
    expect_seqs(ob, NULL, 0, 0);
    /* Acking an empty outbox is no error. */
    assert_int_equal(et_outbox_ack(ob, 100, sel, 4), 0);
    assert_int_equal(et_outbox_next_seq(ob), 11);
    et_outbox_close(ob);
}

/* ---- seq persistence ------------------------------------------------------ */

static void test_seq_persists_across_reopen(void **state)
{
    struct fixture *fx = *state;
    struct et_outbox *ob = open_ok(fx);
    struct et_outbox_stats st;
    const uint64_t all[] = { 1, 2, 3 };

    for (int i = 0; i < 3; i++)
        assert_int_equal(append_n(ob, 500, 3), 0);
    et_outbox_close(ob);

    ob = open_ok(fx);
    /* A clean close continues without a gap. */
    assert_int_equal(et_outbox_next_seq(ob), 4);
    expect_seqs(ob, all, 3, 500);
    assert_int_equal(et_outbox_stats(ob, &st), 0);
    assert_int_equal(st.batches, 3);
    assert_int_equal(st.samples, 9);
    assert_int_equal(st.bytes, 1500);
    et_outbox_close(ob);
}

static void test_seq_not_reused_after_all_acked(void **state)
{
    struct fixture *fx = *state;
    struct et_outbox *ob = open_ok(fx);

    for (int i = 0; i < 3; i++)
        assert_int_equal(append_n(ob, 100, 1), 0);
    assert_int_equal(et_outbox_ack(ob, 3, NULL, 0), 3);
    et_outbox_close(ob);

    ob = open_ok(fx);
    assert_int_equal(et_outbox_next_seq(ob), 4);
    assert_int_equal(append_n(ob, 100, 1), 0);
    expect_batch(ob, 0, 4, 100);
    et_outbox_close(ob);

    /* Even with the sidecar gone, the database's own mark holds. */
    {
        char seqpath[256];

        snprintf(seqpath, sizeof(seqpath), "%s.seq", fx->path);
        assert_int_equal(unlink(seqpath), 0);
    }
    ob = open_ok(fx);
    assert_int_equal(et_outbox_ack(ob, 4, NULL, 0), 1);
    assert_int_equal(et_outbox_next_seq(ob), 5);
    et_outbox_close(ob);
}

/* A process that dies without closing: the next open skips the reservation. */
static void test_seq_after_crash(void **state)
{
    struct fixture *fx = *state;
    struct et_outbox *ob;
    uint64_t next;
    int status;
    pid_t pid;

    pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        struct et_outbox *child = NULL;
        char err[256];

        if (et_outbox_open(&child, fx->path, err, sizeof(err)) != 0)
            _exit(2);
        for (int i = 0; i < 5; i++)
            if (append_n(child, 100, 1) != 0)
                _exit(3);
        raise(SIGKILL);   /* no close: a crash */
        _exit(4);
    }
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFSIGNALED(status));
    assert_int_equal(WTERMSIG(status), SIGKILL);

    ob = open_ok(fx);
    /* Seqs 1..5 were handed out; whatever the database kept, none repeats. */
    next = et_outbox_next_seq(ob);
    assert_true(next > 5);
    expect_batch(ob, 0, 1, 100);
    et_outbox_close(ob);

    /* The skip happens once: a clean close after it continues without a gap. */
    ob = open_ok(fx);
    assert_int_equal(et_outbox_next_seq(ob), next);
    assert_int_equal(et_outbox_ack(ob, 5, NULL, 0), 5);
    et_outbox_close(ob);
    ob = open_ok(fx);
    assert_int_equal(et_outbox_next_seq(ob), next);
    et_outbox_close(ob);
}

/* A damaged sidecar is reported and ignored; the database still counts. */
static void test_seq_file_garbage(void **state)
{
    struct fixture *fx = *state;
    struct et_outbox *ob = open_ok(fx);
    char seqpath[256];
    static const char junk[] = "hello\x01\x02";

    for (int i = 0; i < 2; i++)
        assert_int_equal(append_n(ob, 100, 1), 0);
    et_outbox_close(ob);
    snprintf(seqpath, sizeof(seqpath), "%s.seq", fx->path);
    assert_int_equal(truncate(seqpath, 0), 0);
    write_file(seqpath, junk, sizeof(junk), 0);

    ob = open_ok(fx);
    assert_int_equal(et_outbox_next_seq(ob), 3);
    et_outbox_close(ob);
}

/*
 * The sidecar cannot be written (here: its temporary name is taken by a
 * directory): no batch is stored under a seq it does not cover, nothing
 * changes, and it works again once the file can be written.
 */
static void test_seq_file_unwritable(void **state)
{
    struct fixture *fx = *state;
    struct et_outbox *ob;
    struct et_outbox_stats st;
    char tmp[256];
    uint64_t group_start;
    int ret;

    snprintf(tmp, sizeof(tmp), "%s.seq.tmp", fx->path);
    assert_int_equal(mkdir(tmp, 0755), 0);
    /* The open cannot arm the sidecar: the first append must not store. */
    ob = open_ok(fx);
    assert_true(append_n(ob, 100, 1) < 0);
    assert_int_equal(et_outbox_next_seq(ob), 1);
    assert_int_equal(rmdir(tmp), 0);
    assert_int_equal(append_n(ob, 100, 1), 0);

    /*
     * In a group that runs past the reserved block: the append that needs
     * the next block fails, and the group is undone.
     */
    while (et_outbox_next_seq(ob) < 500)
        assert_int_equal(append_n(ob, 10, 1), 0);
    assert_int_equal(mkdir(tmp, 0755), 0);
    assert_int_equal(et_outbox_begin(ob), 0);
    group_start = et_outbox_next_seq(ob);
    for (ret = 0; ret == 0 && et_outbox_next_seq(ob) < group_start + 5000;)
        ret = append_n(ob, 10, 1);
    assert_true(ret < 0);
    assert_int_equal(et_outbox_next_seq(ob), group_start);
    assert_int_equal(et_outbox_commit(ob), -EINVAL);
    assert_int_equal(et_outbox_stats(ob, &st), 0);
    assert_int_equal(st.newest_seq, group_start - 1);
    assert_int_equal(st.batches, group_start - 1);

    assert_int_equal(rmdir(tmp), 0);
    while (et_outbox_next_seq(ob) < group_start + 2000)
        assert_int_equal(append_n(ob, 10, 1), 0);
    et_outbox_close(ob);
}

/* ---- damaged databases ------------------------------------------------------ */

static void test_garbage_file_moved_aside(void **state)
{
    struct fixture *fx = *state;
    struct et_outbox *ob = open_ok(fx);
    struct et_outbox_stats st;
    uint8_t junk[8192], back[8192];
    char aside[512] = "";
    DIR *d;
    struct dirent *de;
    int fd;

    for (int i = 0; i < 3; i++)
        assert_int_equal(append_n(ob, 100, 1), 0);
    et_outbox_close(ob);

    memset(junk, 0xA5, sizeof(junk));
    assert_int_equal(truncate(fx->path, 0), 0);
    write_file(fx->path, junk, sizeof(junk), 0);

    ob = open_ok(fx);
    assert_int_equal(et_outbox_stats(ob, &st), 0);
    assert_int_equal(st.batches, 0);
    /* A fresh database, but seqs 1..3 are never handed out again. */
    assert_true(et_outbox_next_seq(ob) > 3);
    assert_int_equal(append_n(ob, 100, 1), 0);
    et_outbox_close(ob);

    /* The damaged file is kept, byte for byte, under PATH.corrupt-<secs>. */
    assert_int_equal(count_files(fx->dir, "outbox.db.corrupt-"), 1);
    d = opendir(fx->dir);
    assert_non_null(d);
    while ((de = readdir(d)) != NULL)
        if (strncmp(de->d_name, "outbox.db.corrupt-", 18) == 0)
            snprintf(aside, sizeof(aside), "%s/%s", fx->dir, de->d_name);
    closedir(d);
    fd = open(aside, O_RDONLY);
    assert_true(fd >= 0);
    assert_int_equal(read(fd, back, sizeof(back)), (ssize_t)sizeof(back));
    close(fd);
    assert_memory_equal(back, junk, sizeof(junk));
}

/* A valid header with a damaged page inside: caught by the check at open. */
static void test_damaged_page_moved_aside(void **state)
{
    struct fixture *fx = *state;
    struct et_outbox *ob = open_ok(fx);
    uint8_t junk[4096];
    uint64_t before;
    struct stat sb;

    for (int i = 0; i < 40; i++)
        assert_int_equal(append_n(ob, 1500, 1), 0);
    et_outbox_close(ob);
    assert_int_equal(stat(fx->path, &sb), 0);
    assert_true(sb.st_size >= 8 * 4096);

    /* Page 4 holds batch rows: a B-tree page full of noise. */
    for (size_t i = 0; i < sizeof(junk); i++)
        junk[i] = (uint8_t)(i * 13 + 5);
    write_file(fx->path, junk, sizeof(junk), 3 * 4096);

    ob = open_ok(fx);
    before = et_outbox_next_seq(ob);
    assert_true(before > 40);
    et_outbox_close(ob);
    assert_int_equal(count_files(fx->dir, "outbox.db.corrupt-"), 1);
}

/* Failures that are not damage leave the file alone. */
static void test_open_failure_not_damage(void **state)
{
    struct fixture *fx = *state;
    struct et_outbox *ob = NULL, *second = NULL;
    char path[256], err[256] = "";

    snprintf(path, sizeof(path), "%s/missing-dir/outbox.db", fx->dir);
    assert_true(et_outbox_open(&ob, path, err, sizeof(err)) < 0);
    assert_null(ob);
    assert_non_null(strstr(err, path));
    assert_int_equal(count_files(fx->dir, "outbox.db"), 0);

    /* A second handle on the same outbox would repeat seqs: refused. */
    ob = open_ok(fx);
    assert_int_equal(append_n(ob, 100, 1), 0);
    assert_int_equal(et_outbox_open(&second, fx->path, err, sizeof(err)), -EBUSY);
    assert_null(second);
    assert_non_null(strstr(err, "in use"));
    assert_int_equal(count_files(fx->dir, "outbox.db.corrupt"), 0);
    assert_int_equal(append_n(ob, 100, 1), 0);
    et_outbox_close(ob);
    ob = open_ok(fx);
    assert_int_equal(et_outbox_next_seq(ob), 3);
    et_outbox_close(ob);
}

/*
 * A writer killed (SIGKILL) at an arbitrary point of its appends, groups
 * and acks: every batch whose commit it reported is still there, no seq it
 * handed out comes back, and the database opens without damage. The child
 * reports over a pipe; the parent kills it after a varying number of
 * reports, so the kill lands inside groups as well as between them.
 */
struct kill_report {
    uint64_t first;       /* first seq of this run */
    uint64_t used;        /* highest seq handed out */
    uint64_t committed;   /* highest seq whose group commit returned */
    uint64_t acked;       /* highest ack through whose group commit returned */
    uint64_t ack_issued;  /* highest ack through issued, committed or not */
};

/* Groups of 4 appends; every 5th append also acks all but the last 3. */
static void kill_child(const char *path, int fd)
{
    struct et_outbox *ob = NULL;
    struct kill_report rep = { 0 };
    uint64_t pending_ack = 0;
    char err[256];

    if (et_outbox_open(&ob, path, err, sizeof(err)) != 0)
        _exit(2);
    rep.first = et_outbox_next_seq(ob);
    for (unsigned i = 0;; i++) {
        if (i % 4 == 0 && et_outbox_begin(ob) != 0)
            _exit(3);
        rep.used = et_outbox_next_seq(ob);
        if (append_n(ob, 200 + (i % 7) * 150, 10) != 0)
            _exit(4);
        if (i % 5 == 4) {
            /* Said before the commit that may make it durable. */
            rep.ack_issued = rep.used - 3;
            if (write(fd, &rep, sizeof(rep)) != (ssize_t)sizeof(rep))
                _exit(7);
            if (et_outbox_ack(ob, rep.used - 3, NULL, 0) < 0)
                _exit(5);
            pending_ack = rep.used - 3;
        }
        if (i % 4 == 3) {
            if (et_outbox_commit(ob) != 0)
                _exit(6);
            rep.committed = rep.used;
            rep.acked = pending_ack;
        }
        if (write(fd, &rep, sizeof(rep)) != (ssize_t)sizeof(rep))
            _exit(7);
    }
}

static void test_kill_during_writes(void **state)
{
    struct fixture *fx = *state;
    uint64_t highest_used = 0;

    for (int round = 0; round < 6; round++) {
        struct kill_report rep = { 0 };
        struct et_outbox *ob;
        int pipefd[2], status;
        uint64_t seq;
        uint8_t *blob;
        size_t len;
        pid_t pid;

        assert_int_equal(pipe(pipefd), 0);
        pid = fork();
        assert_true(pid >= 0);
        if (pid == 0) {
            close(pipefd[0]);
            kill_child(fx->path, pipefd[1]);
        }
        close(pipefd[1]);
        /* Wait for 5 + 7 * round reports, then kill wherever it is. */
        for (int n = 0; n < 5 + 7 * round; n++)
            assert_int_equal(read(pipefd[0], &rep, sizeof(rep)), (ssize_t)sizeof(rep));
        assert_int_equal(kill(pid, SIGKILL), 0);
        assert_int_equal(waitpid(pid, &status, 0), pid);
        assert_true(WIFSIGNALED(status));
        /* The child may have got further than its last report we read. */
        while (read(pipefd[0], &rep, sizeof(rep)) == (ssize_t)sizeof(rep))
            ;
        close(pipefd[0]);

        ob = open_ok(fx);
        assert_int_equal(count_files(fx->dir, "outbox.db.corrupt"), 0);
        assert_true(et_outbox_next_seq(ob) > rep.used);
        assert_true(et_outbox_next_seq(ob) > highest_used);
        highest_used = et_outbox_next_seq(ob) - 1;
        /*
         * Every batch of this run that was committed and not acked is
         * there. A commit the child made just before the kill may not have
         * been reported, so the acks it may have made durable reach up to
         * ack_issued, which is reported before any commit.
         */
        seq = rep.ack_issued + 1 > rep.first ? rep.ack_issued + 1 : rep.first;
        for (; seq <= rep.committed; seq++) {
            uint64_t got = 0;

            assert_int_equal(et_outbox_next(ob, seq - 1, &got, &blob, &len), 0);
            free(blob);
            assert_int_equal(got, seq);
        }
        /* And nothing the committed ack covered came back. */
        if (rep.acked >= rep.first) {
            struct et_outbox_stats st;

            assert_int_equal(et_outbox_stats(ob, &st), 0);
            assert_true(st.oldest_seq > rep.acked);
        }
        et_outbox_close(ob);
    }
}

/* ---- limits ------------------------------------------------------------------ */

static void test_quota_drop_oldest(void **state)
{
    struct fixture *fx = *state;
    struct et_outbox *ob = open_ok(fx);
    struct et_outbox_limits lim = { .quota_bytes = 5000, .policy = ET_OUTBOX_DROP_OLDEST };
    struct et_outbox_stats st;
    const uint64_t left[] = { 4, 5, 6, 7, 8 };

    assert_int_equal(et_outbox_set_limits(ob, &lim), 0);
    for (int i = 0; i < 8; i++)
        assert_int_equal(append_n(ob, 1000, 10), 0);
    assert_int_equal(et_outbox_stats(ob, &st), 0);
    assert_int_equal(st.batches, 5);
    assert_int_equal(st.bytes, 5000);
    assert_int_equal(st.samples, 50);
    assert_int_equal(st.oldest_seq, 4);
    assert_int_equal(st.dropped_samples, 30);
    expect_seqs(ob, left, 5, 1000);
    et_outbox_close(ob);

    /* The count survives a restart. */
    ob = open_ok(fx);
    assert_int_equal(et_outbox_stats(ob, &st), 0);
    assert_int_equal(st.dropped_samples, 30);
    assert_int_equal(et_outbox_next_seq(ob), 9);
    et_outbox_close(ob);
}

static void test_quota_drop_newest(void **state)
{
    struct fixture *fx = *state;
    struct et_outbox *ob = open_ok(fx);
    struct et_outbox_limits lim = { .quota_bytes = 3000, .policy = ET_OUTBOX_DROP_NEWEST };
    struct et_outbox_stats st;
    const uint64_t left[] = { 2, 3, 5 };

    assert_int_equal(et_outbox_set_limits(ob, &lim), 0);
    for (int i = 0; i < 3; i++)
        assert_int_equal(append_n(ob, 1000, 10), 0);
    assert_int_equal(append_n(ob, 1000, 4), -EDQUOT);
    /* The refused batch used its seq up. */
    assert_int_equal(et_outbox_next_seq(ob), 5);
    assert_int_equal(et_outbox_stats(ob, &st), 0);
    assert_int_equal(st.batches, 3);
    assert_int_equal(st.dropped_samples, 4);

    assert_int_equal(et_outbox_ack(ob, 1, NULL, 0), 1);
    assert_int_equal(append_n(ob, 1000, 10), 0);
    expect_seqs(ob, left, 3, 1000);

    /* A batch larger than the whole quota cannot be stored by any policy. */
    lim.policy = ET_OUTBOX_DROP_OLDEST;
    assert_int_equal(et_outbox_set_limits(ob, &lim), 0);
    assert_int_equal(append_n(ob, 3001, 6), -EDQUOT);
    assert_int_equal(et_outbox_stats(ob, &st), 0);
    assert_int_equal(st.batches, 3);
    assert_int_equal(st.dropped_samples, 10);
    et_outbox_close(ob);

    /* The used-up seq stays used up across a restart. */
    ob = open_ok(fx);
    assert_int_equal(et_outbox_next_seq(ob), 7);
    et_outbox_close(ob);

    lim.policy = (enum et_outbox_policy)7;
    ob = open_ok(fx);
    assert_int_equal(et_outbox_set_limits(ob, &lim), -EINVAL);
    et_outbox_close(ob);
}

static void test_reserve_evicts(void **state)
{
    struct fixture *fx = *state;
    struct et_outbox *ob = open_ok(fx);
    struct et_outbox_limits lim = { .reserve_bytes = 1 << 20, .policy = ET_OUTBOX_DROP_OLDEST };
    struct et_outbox_stats st;

    assert_int_equal(et_outbox_set_limits(ob, &lim), 0);
    /* Plenty of room. */
    assert_int_equal(et_fake_fs_set_space(fx->path, 100 << 20, 1000 << 20, 0), 0);
    for (int i = 0; i < 10; i++)
        assert_int_equal(append_n(ob, 1000, 5), 0);
    assert_int_equal(et_outbox_stats(ob, &st), 0);
    assert_int_equal(st.dropped_samples, 0);

    /*
     * The filesystem is 2500 bytes short of the reserve (the database has no
     * free pages yet): the three oldest batches go to store a fourth.
     */
    assert_int_equal(et_fake_fs_set_space(fx->path, (1 << 20) - 1500, 1000 << 20, 0), 0);
    assert_int_equal(append_n(ob, 1000, 5), 0);
    assert_int_equal(et_outbox_stats(ob, &st), 0);
    assert_int_equal(st.dropped_samples, 15);
    assert_int_equal(st.batches, 8);
    assert_int_equal(st.oldest_seq, 4);

    /* When free space cannot be read, nothing is evicted blind. */
    assert_int_equal(et_fake_fs_set_space(fx->path, 0, 0, -EIO), 0);
    assert_int_equal(append_n(ob, 1000, 5), 0);
    assert_int_equal(et_outbox_stats(ob, &st), 0);
    assert_int_equal(st.dropped_samples, 15);
    et_outbox_close(ob);
}

/* Count lines containing needle in a file. */
static int count_lines(const char *path, const char *needle)
{
    FILE *f = fopen(path, "r");
    char line[1024];
    int n = 0;

    assert_non_null(f);
    while (fgets(line, sizeof(line), f))
        if (strstr(line, needle))
            n++;
    fclose(f);
    return n;
}

/* One line when eviction starts, one when it stops: never one per batch. */
static void test_eviction_logged_once(void **state)
{
    struct fixture *fx = *state;
    struct et_outbox_limits lim = { .quota_bytes = 3000, .policy = ET_OUTBOX_DROP_OLDEST };
    struct et_outbox *ob = open_ok(fx);
    char logpath[256];
    int saved, fd;

    snprintf(logpath, sizeof(logpath), "%s/log", fx->dir);
    fflush(stderr);
    saved = dup(STDERR_FILENO);
    fd = open(logpath, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    assert_true(saved >= 0 && fd >= 0);
    dup2(fd, STDERR_FILENO);
    close(fd);

    assert_int_equal(et_outbox_set_limits(ob, &lim), 0);
    for (int i = 0; i < 20; i++)
        assert_int_equal(append_n(ob, 1000, 1), 0);
    assert_int_equal(et_outbox_ack(ob, 19, NULL, 0), 2);
    assert_int_equal(append_n(ob, 1000, 1), 0);   /* fits: the episode ends */
    assert_int_equal(append_n(ob, 1000, 1), 0);   /* exactly at the quota */
    assert_int_equal(append_n(ob, 1000, 1), 0);   /* over again: a new one */
    et_outbox_close(ob);

    fflush(stderr);
    dup2(saved, STDERR_FILENO);
    close(saved);
    assert_int_equal(count_lines(logpath, "quota of 3000 bytes"), 2);
    assert_int_equal(count_lines(logpath, "back within limits"), 1);
}

/* ---- a full disk ---------------------------------------------------------------- */

static int set_max_pages(struct et_outbox *ob, int extra)
{
    sqlite3 *db = et_outbox_sqlite(ob);
    sqlite3_stmt *s;
    char sql[64];
    int pages = 0;

    assert_int_equal(sqlite3_prepare_v2(db, "PRAGMA page_count", -1, &s, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_step(s), SQLITE_ROW);
    pages = sqlite3_column_int(s, 0);
    sqlite3_finalize(s);
    snprintf(sql, sizeof(sql), "PRAGMA max_page_count=%d", pages + extra);
    assert_int_equal(sqlite3_exec(db, sql, NULL, NULL, NULL), SQLITE_OK);
    return pages;
}

static void test_disk_full(void **state)
{
    struct fixture *fx = *state;
    struct et_outbox *ob = open_ok(fx);
    struct et_outbox_stats before, after;
    uint64_t seq;
    int ret = 0, stored = 0;

    for (int i = 0; i < 5; i++)
        assert_int_equal(append_n(ob, 1000, 10), 0);
    set_max_pages(ob, 2);
    for (int i = 0; i < 50 && ret == 0; i++) {
        ret = append_n(ob, 3000, 10);
        stored += ret == 0;
    }
    assert_int_equal(ret, -ENOSPC);
    assert_true(stored < 50);

    /* Nothing changed by the failed append; the handle still works. */
    seq = et_outbox_next_seq(ob);
    assert_int_equal(seq, 6 + (uint64_t)stored);
    assert_int_equal(et_outbox_stats(ob, &before), 0);
    assert_int_equal(before.batches, 5 + (uint64_t)stored);
    assert_int_equal(append_n(ob, 3000, 10), -ENOSPC);
    assert_int_equal(et_outbox_stats(ob, &after), 0);
    assert_memory_equal(&before, &after, sizeof(before));
    expect_batch(ob, 0, 1, 1000);

    /* Room again (an ack, a bigger disk): the same seq goes in. */
    set_max_pages(ob, 100);
    assert_int_equal(append_n(ob, 3000, 10), 0);
    assert_int_equal(et_outbox_next_seq(ob), seq + 1);
    expect_batch(ob, seq - 1, seq, 3000);
    et_outbox_close(ob);

    ob = open_ok(fx);
    assert_int_equal(et_outbox_next_seq(ob), seq + 1);
    assert_int_equal(et_outbox_stats(ob, &after), 0);
    assert_int_equal(after.batches, before.batches + 1);
    et_outbox_close(ob);
}

/*
 * A VFS that passes everything to the default one, except that writes fail
 * with a chosen SQLite code while faulty.fail_writes is set: an I/O error
 * of the disk, at the place SQLite meets it. Registered as the default for
 * the one test that uses it.
 */
struct faulty_file {
    sqlite3_file base;
    sqlite3_file *real;     /* the default VFS's file, right after this struct */
};

static struct {
    sqlite3_vfs vfs;
    sqlite3_vfs *orig;
    int fail_writes;        /* SQLite code to fail xWrite with, 0: pass */
} faulty;

#define REAL(f) (((struct faulty_file *)(f))->real)

static int ff_close(sqlite3_file *f) { return REAL(f)->pMethods->xClose(REAL(f)); }
static int ff_read(sqlite3_file *f, void *buf, int n, sqlite3_int64 off)
{
    return REAL(f)->pMethods->xRead(REAL(f), buf, n, off);
}
static int ff_write(sqlite3_file *f, const void *buf, int n, sqlite3_int64 off)
{
    if (faulty.fail_writes)
        return faulty.fail_writes;
    return REAL(f)->pMethods->xWrite(REAL(f), buf, n, off);
}
static int ff_truncate(sqlite3_file *f, sqlite3_int64 size)
{
    return REAL(f)->pMethods->xTruncate(REAL(f), size);
}
static int ff_sync(sqlite3_file *f, int flags) { return REAL(f)->pMethods->xSync(REAL(f), flags); }
static int ff_file_size(sqlite3_file *f, sqlite3_int64 *size)
{
    return REAL(f)->pMethods->xFileSize(REAL(f), size);
}
static int ff_lock(sqlite3_file *f, int l) { return REAL(f)->pMethods->xLock(REAL(f), l); }
static int ff_unlock(sqlite3_file *f, int l) { return REAL(f)->pMethods->xUnlock(REAL(f), l); }
static int ff_check_reserved(sqlite3_file *f, int *out)
{
    return REAL(f)->pMethods->xCheckReservedLock(REAL(f), out);
}
static int ff_file_control(sqlite3_file *f, int op, void *arg)
{
    return REAL(f)->pMethods->xFileControl(REAL(f), op, arg);
}
static int ff_sector_size(sqlite3_file *f) { return REAL(f)->pMethods->xSectorSize(REAL(f)); }
static int ff_device_chars(sqlite3_file *f)
{
    return REAL(f)->pMethods->xDeviceCharacteristics(REAL(f));
}
static int ff_shm_map(sqlite3_file *f, int pg, int pgsz, int extend, void volatile **out)
{
    return REAL(f)->pMethods->xShmMap(REAL(f), pg, pgsz, extend, out);
}
static int ff_shm_lock(sqlite3_file *f, int off, int n, int flags)
{
    return REAL(f)->pMethods->xShmLock(REAL(f), off, n, flags);
}
static void ff_shm_barrier(sqlite3_file *f) { REAL(f)->pMethods->xShmBarrier(REAL(f)); }
static int ff_shm_unmap(sqlite3_file *f, int del) { return REAL(f)->pMethods->xShmUnmap(REAL(f), del); }
static int ff_fetch(sqlite3_file *f, sqlite3_int64 off, int n, void **out)
{
    return REAL(f)->pMethods->xFetch(REAL(f), off, n, out);
}
static int ff_unfetch(sqlite3_file *f, sqlite3_int64 off, void *p)
{
    return REAL(f)->pMethods->xUnfetch(REAL(f), off, p);
}

static const sqlite3_io_methods ff_methods = {
    .iVersion = 3,
    .xClose = ff_close,
    .xRead = ff_read,
    .xWrite = ff_write,
    .xTruncate = ff_truncate,
    .xSync = ff_sync,
    .xFileSize = ff_file_size,
    .xLock = ff_lock,
    .xUnlock = ff_unlock,
    .xCheckReservedLock = ff_check_reserved,
    .xFileControl = ff_file_control,
    .xSectorSize = ff_sector_size,
    .xDeviceCharacteristics = ff_device_chars,
    .xShmMap = ff_shm_map,
    .xShmLock = ff_shm_lock,
    .xShmBarrier = ff_shm_barrier,
    .xShmUnmap = ff_shm_unmap,
    .xFetch = ff_fetch,
    .xUnfetch = ff_unfetch,
};

static int fv_open(sqlite3_vfs *vfs, sqlite3_filename name, sqlite3_file *f, int flags, int *out)
{
    struct faulty_file *ff = (struct faulty_file *)f;
    int rc;

    ff->real = (sqlite3_file *)(ff + 1);
    rc = faulty.orig->xOpen(faulty.orig, name, ff->real, flags, out);
    ff->base.pMethods = rc == SQLITE_OK && ff->real->pMethods ? &ff_methods : NULL;
    return rc;
}

static void faulty_register(void)
{
    faulty.orig = sqlite3_vfs_find(NULL);
    assert_non_null(faulty.orig);
    assert_int_equal(faulty.orig->iVersion >= 2, 1);
    faulty.vfs = *faulty.orig;
    faulty.vfs.zName = "et-faulty";
    faulty.vfs.szOsFile = (int)sizeof(struct faulty_file) + faulty.orig->szOsFile;
    faulty.vfs.xOpen = fv_open;
    faulty.vfs.pNext = NULL;
    faulty.fail_writes = 0;
    assert_int_equal(sqlite3_vfs_register(&faulty.vfs, 1), SQLITE_OK);
}

static void faulty_unregister(void)
{
    faulty.fail_writes = 0;
    assert_int_equal(sqlite3_vfs_unregister(&faulty.vfs), SQLITE_OK);
    assert_int_equal(sqlite3_vfs_register(faulty.orig, 1), SQLITE_OK);
}

/*
 * I/O errors on write: -EIO, and the handle stays consistent: nothing
 * half-stored, counters right, reads still work, and everything works
 * again once the disk does. In a group the group is undone.
 */
static void test_io_error(void **state)
{
    struct fixture *fx = *state;
    struct et_outbox_stats before, after;
    const uint64_t all[] = { 1, 2, 3, 4, 5, 6 };
    struct et_outbox *ob;
    uint64_t start;

    faulty_register();
    ob = open_ok(fx);
    for (int i = 0; i < 3; i++)
        assert_int_equal(append_n(ob, 700, 5), 0);
    assert_int_equal(et_outbox_stats(ob, &before), 0);

    faulty.fail_writes = SQLITE_IOERR_WRITE;
    assert_int_equal(append_n(ob, 700, 5), -EIO);
    assert_int_equal(et_outbox_next_seq(ob), 4);
    assert_int_equal(et_outbox_ack(ob, 1, NULL, 0), -EIO);
    assert_int_equal(et_outbox_stats(ob, &after), 0);
    assert_memory_equal(&before, &after, sizeof(before));
    expect_batch(ob, 0, 1, 700);
    faulty.fail_writes = 0;
    assert_int_equal(append_n(ob, 700, 5), 0);

    /* A group whose commit meets the error is undone as a whole. */
    start = et_outbox_next_seq(ob);
    assert_int_equal(et_outbox_stats(ob, &before), 0);
    assert_int_equal(et_outbox_begin(ob), 0);
    assert_int_equal(append_n(ob, 700, 5), 0);
    assert_int_equal(append_n(ob, 700, 5), 0);
    faulty.fail_writes = SQLITE_IOERR_WRITE;
    assert_int_equal(et_outbox_commit(ob), -EIO);
    assert_int_equal(et_outbox_next_seq(ob), start);
    assert_int_equal(et_outbox_stats(ob, &after), 0);
    assert_memory_equal(&before, &after, sizeof(before));
    faulty.fail_writes = 0;
    assert_int_equal(et_outbox_begin(ob), 0);
    assert_int_equal(append_n(ob, 700, 5), 0);
    assert_int_equal(append_n(ob, 700, 5), 0);
    assert_int_equal(et_outbox_commit(ob), 0);
    et_outbox_close(ob);

    ob = open_ok(fx);
    expect_seqs(ob, all, 6, 700);
    et_outbox_close(ob);
    faulty_unregister();
}

/* ---- group commit ------------------------------------------------------------------ */

static void test_group_commit(void **state)
{
    struct fixture *fx = *state;
    struct et_outbox *ob = open_ok(fx);
    struct et_outbox_stats st;
    const uint64_t all[] = { 1, 2, 3, 4 };

    assert_int_equal(et_outbox_commit(ob), -EINVAL);
    assert_int_equal(et_outbox_begin(ob), 0);
    assert_int_equal(et_outbox_begin(ob), -EALREADY);
    for (int i = 0; i < 3; i++)
        assert_int_equal(append_n(ob, 400, 2), 0);
    /* Readable through the handle before the commit. */
    expect_batch(ob, 2, 3, 400);
    assert_int_equal(et_outbox_ack(ob, 1, NULL, 0), 1);
    assert_int_equal(et_outbox_commit(ob), 0);
    assert_int_equal(et_outbox_stats(ob, &st), 0);
    assert_int_equal(st.batches, 2);

    /* An open group is committed by close. */
    assert_int_equal(et_outbox_begin(ob), 0);
    assert_int_equal(append_n(ob, 400, 2), 0);
    et_outbox_close(ob);

    ob = open_ok(fx);
    assert_int_equal(et_outbox_next_seq(ob), 5);
    expect_seqs(ob, all + 1, 3, 400);
    et_outbox_close(ob);
}

static void test_group_undone_on_disk_full(void **state)
{
    struct fixture *fx = *state;
    struct et_outbox *ob = open_ok(fx);
    struct et_outbox_stats before, after;
    uint64_t start;
    int ret = 0;

    for (int i = 0; i < 3; i++)
        assert_int_equal(append_n(ob, 1000, 10), 0);
    assert_int_equal(et_outbox_stats(ob, &before), 0);
    start = et_outbox_next_seq(ob);
    set_max_pages(ob, 3);

    assert_int_equal(et_outbox_begin(ob), 0);
    assert_int_equal(et_outbox_ack(ob, 1, NULL, 0), 1);
    for (int i = 0; i < 50 && ret == 0; i++)
        ret = append_n(ob, 3000, 10);
    assert_int_equal(ret, -ENOSPC);

    /* The whole group is undone, the ack included, and the group closed. */
    assert_int_equal(et_outbox_next_seq(ob), start);
    assert_int_equal(et_outbox_stats(ob, &after), 0);
    assert_memory_equal(&before, &after, sizeof(before));
    assert_int_equal(et_outbox_commit(ob), -EINVAL);
    expect_batch(ob, 0, 1, 1000);

    /* The caller appends the same seqs again once there is room. */
    set_max_pages(ob, 100);
    assert_int_equal(et_outbox_begin(ob), 0);
    assert_int_equal(append_n(ob, 3000, 10), 0);
    assert_int_equal(et_outbox_commit(ob), 0);
    assert_int_equal(et_outbox_next_seq(ob), start + 1);
    et_outbox_close(ob);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_append_next_order, setup, teardown),
        cmocka_unit_test_setup_teardown(test_ack_cumulative_and_selective, setup, teardown),
        cmocka_unit_test_setup_teardown(test_seq_persists_across_reopen, setup, teardown),
        cmocka_unit_test_setup_teardown(test_seq_not_reused_after_all_acked, setup, teardown),
        cmocka_unit_test_setup_teardown(test_seq_after_crash, setup, teardown),
        cmocka_unit_test_setup_teardown(test_seq_file_garbage, setup, teardown),
        cmocka_unit_test_setup_teardown(test_seq_file_unwritable, setup, teardown),
        cmocka_unit_test_setup_teardown(test_garbage_file_moved_aside, setup, teardown),
        cmocka_unit_test_setup_teardown(test_damaged_page_moved_aside, setup, teardown),
        cmocka_unit_test_setup_teardown(test_open_failure_not_damage, setup, teardown),
        cmocka_unit_test_setup_teardown(test_kill_during_writes, setup, teardown),
        cmocka_unit_test_setup_teardown(test_quota_drop_oldest, setup, teardown),
        cmocka_unit_test_setup_teardown(test_quota_drop_newest, setup, teardown),
        cmocka_unit_test_setup_teardown(test_reserve_evicts, setup, teardown),
        cmocka_unit_test_setup_teardown(test_eviction_logged_once, setup, teardown),
        cmocka_unit_test_setup_teardown(test_disk_full, setup, teardown),
        cmocka_unit_test_setup_teardown(test_io_error, setup, teardown),
        cmocka_unit_test_setup_teardown(test_group_commit, setup, teardown),
        cmocka_unit_test_setup_teardown(test_group_undone_on_disk_full, setup, teardown),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
