/*
 * The outbox's seqs never repeat: across a clean close, after every batch
 * was acknowledged, after a crash, with the PATH.seq sidecar damaged or
 * unwritable, and with a writer killed at any point of its appends,
 * groups and acks. Its stream id lives exactly as long as its seqs: made
 * once, kept across reopens, crashes, a damaged database moved aside and
 * a lost sidecar, its own in every data directory, and made for an outbox
 * from before streams whose seqs then continue. Each test works in a fresh
 * temporary directory.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <sqlite3.h>

#include "outbox_fixture.h"

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

/* ---- the stream id ------------------------------------------------------------ */

static void stream_of(struct et_outbox *ob, uint8_t *out)
{
    static const uint8_t zero[ET_OUTBOX_STREAM_ID_LEN];

    memcpy(out, et_outbox_stream_id(ob), ET_OUTBOX_STREAM_ID_LEN);
    assert_memory_not_equal(out, zero, ET_OUTBOX_STREAM_ID_LEN);
}

static void expect_stream(const struct fixture *fx, const uint8_t *want, uint64_t first)
{
    struct et_outbox *ob = open_ok(fx);

    assert_memory_equal(et_outbox_stream_id(ob), want, ET_OUTBOX_STREAM_ID_LEN);
    assert_int_equal(et_outbox_stream_first_seq(ob), first);
    et_outbox_close(ob);
}

static void replace_file(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");

    assert_non_null(f);
    fputs(text, f);
    assert_int_equal(fclose(f), 0);
}

static void test_stream_made_once_and_kept(void **state)
{
    struct fixture *fx = *state;
    struct et_outbox *ob = open_ok(fx);
    uint8_t id[ET_OUTBOX_STREAM_ID_LEN];
    char seqpath[256], text[256], hex[2 * ET_OUTBOX_STREAM_ID_LEN + 1];
    FILE *f;
    int status;
    pid_t pid;

    stream_of(ob, id);
    assert_int_equal(et_outbox_stream_first_seq(ob), 1);
    for (int i = 0; i < 3; i++)
        assert_int_equal(append_n(ob, 100, 1), 0);
    et_outbox_close(ob);
    expect_stream(fx, id, 1);

    /* The sidecar names it beside the reservation. */
    snprintf(seqpath, sizeof(seqpath), "%s.seq", fx->path);
    for (size_t i = 0; i < ET_OUTBOX_STREAM_ID_LEN; i++)
        snprintf(hex + 2 * i, 3, "%02x", id[i]);
    f = fopen(seqpath, "r");
    assert_non_null(f);
    text[fread(text, 1, sizeof(text) - 1, f)] = '\0';
    fclose(f);
    assert_true(strncmp(text, "edgetel-outbox-seq 2\nstream ", 28) == 0);
    assert_non_null(strstr(text, hex));

    /* A crash changes nothing. */
    pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        struct et_outbox *child = NULL;
        char err[256];

        if (et_outbox_open(&child, fx->path, err, sizeof(err)) != 0 ||
            append_n(child, 100, 1) != 0)
            _exit(2);
        raise(SIGKILL);
        _exit(3);
    }
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFSIGNALED(status));
    expect_stream(fx, id, 1);

    /* The sidecar lost or damaged: the database still names it. */
    assert_int_equal(unlink(seqpath), 0);
    expect_stream(fx, id, 1);
    replace_file(seqpath, "hello\n");
    expect_stream(fx, id, 1);
    expect_stream(fx, id, 1);
}

/* A damaged database is moved aside; the sidecar keeps the stream and its seqs. */
static void test_stream_survives_a_damaged_database(void **state)
{
    struct fixture *fx = *state;
    struct et_outbox *ob = open_ok(fx);
    uint8_t id[ET_OUTBOX_STREAM_ID_LEN], junk[8192];

    stream_of(ob, id);
    for (int i = 0; i < 3; i++)
        assert_int_equal(append_n(ob, 100, 1), 0);
    et_outbox_close(ob);
    write_junk(fx->path, junk, sizeof(junk));

    ob = open_ok(fx);
    assert_int_equal(count_files(fx->dir, "outbox.db.corrupt-"), 1);
    assert_memory_equal(et_outbox_stream_id(ob), id, ET_OUTBOX_STREAM_ID_LEN);
    assert_int_equal(et_outbox_stream_first_seq(ob), 1);
    assert_true(et_outbox_next_seq(ob) > 3);
    assert_int_equal(append_n(ob, 100, 1), 0);
    et_outbox_close(ob);
    /* And the fresh database names it too, should the sidecar go next. */
    {
        char seqpath[256];

        snprintf(seqpath, sizeof(seqpath), "%s.seq", fx->path);
        assert_int_equal(unlink(seqpath), 0);
    }
    expect_stream(fx, id, 1);
}

/* Two data directories (two boards, or one re-flashed): two streams. */
static void test_stream_differs_between_data_dirs(void **state)
{
    struct fixture *fx = *state;
    struct fixture other;
    struct et_outbox *a, *b;
    uint8_t ida[ET_OUTBOX_STREAM_ID_LEN], idb[ET_OUTBOX_STREAM_ID_LEN];
    char cmd[160];

    snprintf(other.dir, sizeof(other.dir), "%.50s/wiped", fx->dir);
    snprintf(other.path, sizeof(other.path), "%s/outbox.db", other.dir);
    assert_int_equal(mkdir(other.dir, 0755), 0);
    a = open_ok(fx);
    b = open_ok(&other);
    stream_of(a, ida);
    stream_of(b, idb);
    assert_memory_not_equal(ida, idb, ET_OUTBOX_STREAM_ID_LEN);
    et_outbox_close(b);

    /* The same directory wiped and made again: a new stream, seq 1 again. */
    snprintf(cmd, sizeof(cmd), "rm -rf %s && mkdir %s", other.dir, other.dir);
    assert_int_equal(system(cmd), 0);
    b = open_ok(&other);
    assert_memory_not_equal(et_outbox_stream_id(b), idb, ET_OUTBOX_STREAM_ID_LEN);
    assert_memory_not_equal(et_outbox_stream_id(b), ida, ET_OUTBOX_STREAM_ID_LEN);
    assert_int_equal(et_outbox_next_seq(b), 1);
    et_outbox_close(b);
    et_outbox_close(a);
}

/*
 * An outbox from before streams (a version 1 sidecar, no stream in the
 * database): its batches stay, its seqs continue, and a stream starts at
 * the next seq.
 */
static void test_stream_for_an_outbox_from_before_streams(void **state)
{
    struct fixture *fx = *state;
    struct et_outbox *ob = open_ok(fx);
    uint8_t id[ET_OUTBOX_STREAM_ID_LEN], old[ET_OUTBOX_STREAM_ID_LEN];
    const uint64_t all[] = { 1, 2, 3, 4, 5 };
    char seqpath[256];

    stream_of(ob, old);
    for (int i = 0; i < 5; i++)
        assert_int_equal(append_n(ob, 100, 1), 0);
    assert_int_equal(sqlite3_exec(et_outbox_sqlite(ob),
                                  "DELETE FROM meta WHERE key IN ('stream', 'stream_first')",
                                  NULL, NULL, NULL), SQLITE_OK);
    et_outbox_close(ob);
    snprintf(seqpath, sizeof(seqpath), "%s.seq", fx->path);
    replace_file(seqpath, "edgetel-outbox-seq 1\nreserved 1024\nclean 5\n");

    ob = open_ok(fx);
    assert_int_equal(et_outbox_next_seq(ob), 6);   /* a clean close at 5: no gap */
    expect_seqs(ob, all, 5, 100);
    stream_of(ob, id);
    assert_memory_not_equal(id, old, ET_OUTBOX_STREAM_ID_LEN);
    assert_int_equal(et_outbox_stream_first_seq(ob), 6);
    et_outbox_close(ob);
    expect_stream(fx, id, 6);

    /* One that did not close cleanly continues after its reservation. */
    ob = open_ok(fx);
    assert_int_equal(sqlite3_exec(et_outbox_sqlite(ob),
                                  "DELETE FROM meta WHERE key IN ('stream', 'stream_first')",
                                  NULL, NULL, NULL), SQLITE_OK);
    et_outbox_close(ob);
    replace_file(seqpath, "edgetel-outbox-seq 1\nreserved 1024\n");
    ob = open_ok(fx);
    assert_int_equal(et_outbox_next_seq(ob), 1025);
    assert_int_equal(et_outbox_stream_first_seq(ob), 1025);
    assert_memory_not_equal(et_outbox_stream_id(ob), id, ET_OUTBOX_STREAM_ID_LEN);
    et_outbox_close(ob);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_seq_persists_across_reopen, setup, teardown),
        cmocka_unit_test_setup_teardown(test_seq_not_reused_after_all_acked, setup, teardown),
        cmocka_unit_test_setup_teardown(test_seq_after_crash, setup, teardown),
        cmocka_unit_test_setup_teardown(test_seq_file_garbage, setup, teardown),
        cmocka_unit_test_setup_teardown(test_seq_file_unwritable, setup, teardown),
        cmocka_unit_test_setup_teardown(test_kill_during_writes, setup, teardown),
        cmocka_unit_test_setup_teardown(test_stream_made_once_and_kept, setup, teardown),
        cmocka_unit_test_setup_teardown(test_stream_survives_a_damaged_database, setup, teardown),
        cmocka_unit_test_setup_teardown(test_stream_differs_between_data_dirs, setup, teardown),
        cmocka_unit_test_setup_teardown(test_stream_for_an_outbox_from_before_streams, setup,
                                        teardown),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
