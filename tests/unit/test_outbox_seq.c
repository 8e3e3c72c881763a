/*
 * The outbox's seqs never repeat: across a clean close, after every batch
 * was acknowledged, after a crash, with the PATH.seq sidecar damaged or
 * unwritable, and with a writer killed at any point of its appends,
 * groups and acks. Each test works in a fresh temporary directory.
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


int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_seq_persists_across_reopen, setup, teardown),
        cmocka_unit_test_setup_teardown(test_seq_not_reused_after_all_acked, setup, teardown),
        cmocka_unit_test_setup_teardown(test_seq_after_crash, setup, teardown),
        cmocka_unit_test_setup_teardown(test_seq_file_garbage, setup, teardown),
        cmocka_unit_test_setup_teardown(test_seq_file_unwritable, setup, teardown),
        cmocka_unit_test_setup_teardown(test_kill_during_writes, setup, teardown),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
