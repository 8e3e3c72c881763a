/*
 * The seq sidecar, PATH.seq: what keeps a seq from being handed out twice
 * when the database alone cannot (a power cut lost its last commits, or a
 * damaged one was replaced). See "How a seq is kept from repeating" in
 * edgetel/outbox.h.
 *
 * The file is two or three lines of text:
 *   edgetel-outbox-seq 1
 *   reserved N        no seq above N was used
 *   clean M           only after a clean close: the database's mark was M
 * and is only ever replaced whole (a new file, fsync, rename, fsync of the
 * directory), so a crash leaves the old one or the new one.
 */
#include "outbox_internal.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "edgetel/log.h"

/*
 * Seqs the sidecar reserves at a time. One sidecar write (two fsyncs) per
 * block; after a crash up to one block of seqs is skipped. At one batch
 * every 5 s a block lasts over an hour; a 64-bit seq never runs out.
 */
#define OUTBOX_SEQ_BLOCK 1024

#define SEQ_FILE_MAGIC "edgetel-outbox-seq 1"

struct seq_file {
    bool present;
    uint64_t reserved;
    bool clean;
    uint64_t clean_hwm;
};

/*
 * Read PATH.seq. A missing file is no error (first start). A file that
 * cannot be parsed is reported and treated as missing: the database's own
 * mark is then all there is.
 */
static void seq_file_read(const struct et_outbox *ob, struct seq_file *sf)
{
    char buf[256];
    unsigned long long reserved, clean;
    int used = 0, used2 = 0;
    ssize_t n;
    int fd;

    memset(sf, 0, sizeof(*sf));
    fd = open(ob->seq_path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        if (errno != ENOENT)
            et_warn(OUTBOX_LOG, "%s: cannot read: %s; seqs continue from the database alone",
                    ob->seq_path, strerror(errno));
        return;
    }
    n = read(fd, buf, sizeof(buf) - 1);
    close(fd);
    if (n < 0) {
        et_warn(OUTBOX_LOG, "%s: cannot read: %s; seqs continue from the database alone",
                ob->seq_path, strerror(errno));
        return;
    }
    buf[n] = '\0';
    if (sscanf(buf, SEQ_FILE_MAGIC "\nreserved %llu\n%n", &reserved, &used) != 1 || used == 0)
        goto garbage;
    sf->reserved = reserved;
    if (buf[used] != '\0') {
        if (sscanf(buf + used, "clean %llu\n%n", &clean, &used2) != 1 || used2 == 0 ||
            buf[used + used2] != '\0')
            goto garbage;
        sf->clean = true;
        sf->clean_hwm = clean;
    }
    sf->present = true;
    return;
garbage:
    et_warn(OUTBOX_LOG, "%s: not a seq reservation file; seqs continue from the database alone",
            ob->seq_path);
    memset(sf, 0, sizeof(*sf));
}

/* Replace PATH.seq atomically: a new file, fsync, rename, fsync the directory. */
static int seq_file_write(const struct et_outbox *ob, uint64_t reserved, bool clean,
                          uint64_t clean_hwm)
{
    char buf[128];
    int len, fd, ret = 0;
    ssize_t n;

    len = clean ? snprintf(buf, sizeof(buf), SEQ_FILE_MAGIC "\nreserved %" PRIu64 "\nclean %" PRIu64 "\n",
                           reserved, clean_hwm)
                : snprintf(buf, sizeof(buf), SEQ_FILE_MAGIC "\nreserved %" PRIu64 "\n", reserved);
    fd = open(ob->seq_tmp_path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0)
        return -errno;
    do {
        n = write(fd, buf, (size_t)len);
    } while (n < 0 && errno == EINTR);
    if (n != len) {
        ret = n < 0 ? -errno : -ENOSPC;
        goto out_close;
    }
    if (fsync(fd) < 0) {
        ret = -errno;
        goto out_close;
    }
    if (close(fd) < 0) {
        ret = -errno;
        goto out_unlink;
    }
    if (rename(ob->seq_tmp_path, ob->seq_path) < 0) {
        ret = -errno;
        goto out_unlink;
    }
    return et_outbox_sync_dir(ob);
out_close:
    close(fd);
out_unlink:
    unlink(ob->seq_tmp_path);
    return ret;
}

int et_outbox_seq_reserve(struct et_outbox *ob, uint64_t seq)
{
    uint64_t reserved = ob->reserved;
    int ret;

    if (ob->seq_armed && seq <= reserved)
        return 0;
    if (seq > reserved)
        reserved = seq - 1 + OUTBOX_SEQ_BLOCK;
    ret = seq_file_write(ob, reserved, false, 0);
    if (ret < 0) {
        et_warn(OUTBOX_LOG, "%s: cannot reserve seqs up to %" PRIu64 ": %s", ob->seq_path,
                reserved, strerror(-ret));
        return ret;
    }
    ob->reserved = reserved;
    ob->seq_armed = true;
    return 0;
}

void et_outbox_seq_start(struct et_outbox *ob, bool replaced)
{
    struct seq_file sf;
    uint64_t last;
    int ret;

    seq_file_read(ob, &sf);
    if (sf.present && sf.clean && sf.clean_hwm == ob->db_hwm && !replaced) {
        last = ob->db_hwm;
    } else {
        last = sf.reserved > ob->db_hwm ? sf.reserved : ob->db_hwm;
        if (last > ob->db_hwm)
            et_info(OUTBOX_LOG, "%s: %s; seqs continue after the reserved seq %" PRIu64
                    " so that none repeats", ob->path,
                    replaced ? "the database was replaced" : "the last run did not close cleanly",
                    last);
    }
    ob->next_seq = last + 1;
    ob->reserved = sf.reserved > last ? sf.reserved : last;
    /*
     * Drop the "clean" mark now: a crash from here on must be seen as one.
     * If that write fails the first append tries again before storing.
     */
    ret = seq_file_write(ob, ob->reserved, false, 0);
    if (ret < 0)
        et_warn(OUTBOX_LOG, "%s: cannot write: %s; will retry before the first append",
                ob->seq_path, strerror(-ret));
    else
        ob->seq_armed = true;
}

void et_outbox_seq_mark_clean(struct et_outbox *ob)
{
    int ret = seq_file_write(ob, ob->reserved, true, ob->next_seq - 1);

    if (ret < 0)
        et_warn(OUTBOX_LOG, "%s: cannot record the clean close: %s", ob->seq_path,
                strerror(-ret));
}
