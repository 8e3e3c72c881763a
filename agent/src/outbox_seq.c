/*
 * The seq sidecar, PATH.seq: what keeps a seq from being handed out twice
 * when the database alone cannot (a power cut lost its last commits, or a
 * damaged one was replaced). See "How a seq is kept from repeating" in
 * edgetel/outbox.h.
 *
 * The file is two or three lines of text:
 *   edgetel-outbox-seq 1
 *   reserved N        no seq above N was used
 *   clean M           only after a clean close: no seq above M was used
 *                     (M is at least the database's mark)
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
 * Whether text is the start of a clean line and no more: what a clean
 * mark written in place (seq_mark_in_place) leaves when the power goes
 * during the write. The reservation before it is intact, so it reads as
 * "not clean", never as garbage.
 */
static bool clean_line_cut_short(const char *text)
{
    static const char line[] = "clean ";
    size_t n = strlen(text);

    if (n == 0 || strchr(text, '\n'))
        return false;
    if (strncmp(text, line, n < sizeof(line) - 1 ? n : sizeof(line) - 1) != 0)
        return false;
    return n <= sizeof(line) - 1 || strspn(text + sizeof(line) - 1, "0123456789") ==
                                        n - (sizeof(line) - 1);
}

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
        if (sscanf(buf + used, "clean %llu\n%n", &clean, &used2) == 1 && used2 > 0 &&
            buf[used + used2] == '\0') {
            sf->clean = true;
            sf->clean_hwm = clean;
        } else if (!clean_line_cut_short(buf + used)) {
            goto garbage;
        }
    }
    sf->present = true;
    return;
garbage:
    et_warn(OUTBOX_LOG, "%s: not a seq reservation file; seqs continue from the database alone",
            ob->seq_path);
    memset(sf, 0, sizeof(*sf));
}

/* The text of PATH.seq; the clean line, when there is one, comes last. */
static int seq_file_format(char *buf, size_t cap, uint64_t reserved, bool clean,
                           uint64_t clean_hwm)
{
    return clean ? snprintf(buf, cap, SEQ_FILE_MAGIC "\nreserved %" PRIu64 "\nclean %" PRIu64 "\n",
                            reserved, clean_hwm)
                 : snprintf(buf, cap, SEQ_FILE_MAGIC "\nreserved %" PRIu64 "\n", reserved);
}

/* Replace PATH.seq atomically: a new file, fsync, rename, fsync the directory. */
static int seq_file_write(const struct et_outbox *ob, uint64_t reserved, bool clean,
                          uint64_t clean_hwm)
{
    char buf[128];
    int len, fd, ret = 0;
    ssize_t n;

    len = seq_file_format(buf, sizeof(buf), reserved, clean, clean_hwm);
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
    /*
     * A clean mark may be above the database's: the last run used seqs it
     * could not store (sent from memory, or an undone group on a full
     * disk). It stopped after using them, so nothing above the mark was.
     */
    ob->last_run_clean = sf.present && sf.clean && sf.clean_hwm >= ob->db_hwm && !replaced;
    if (ob->last_run_clean) {
        last = sf.clean_hwm;
    } else {
        last = sf.reserved > ob->db_hwm ? sf.reserved : ob->db_hwm;
        if (last > ob->db_hwm && replaced)
            et_info(OUTBOX_LOG, "%s: the database was replaced; seqs continue after the reserved "
                    "seq %" PRIu64 " so that none repeats", ob->path, last);
        else if (last > ob->db_hwm)
            et_warn(OUTBOX_LOG, "%s: the last run did not stop cleanly (crash, kill or power "
                    "loss): batches it made after seq %" PRIu64 " and had not yet committed "
                    "(at most one durability window, unless storing was failing) are lost unless "
                    "they reached the aggregator; how many is not recorded. Seqs continue after "
                    "the reserved seq %" PRIu64 " so that none repeats", ob->path, ob->db_hwm,
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

/*
 * The clean mark without new space: a full disk cannot give the new file
 * seq_file_write needs, but PATH.seq already has a block, and the clean
 * text is the armed text plus one line. So when the file holds exactly the
 * armed text, write the clean text over it in place: the bytes before the
 * new line do not change, and a write cut short reads as "not clean"
 * (clean_line_cut_short). 0 or -errno.
 */
static int seq_mark_in_place(const struct et_outbox *ob, uint64_t clean_hwm)
{
    char want[128], have[128], clean[128];
    int want_len, len, fd, ret = 0;
    ssize_t n;

    want_len = seq_file_format(want, sizeof(want), ob->reserved, false, 0);
    len = seq_file_format(clean, sizeof(clean), ob->reserved, true, clean_hwm);
    fd = open(ob->seq_path, O_RDWR | O_CLOEXEC);
    if (fd < 0)
        return -errno;
    n = pread(fd, have, sizeof(have), 0);
    if (n != want_len || memcmp(have, want, (size_t)want_len) != 0) {
        ret = n < 0 ? -errno : -ESTALE;
        goto out;
    }
    n = pwrite(fd, clean + want_len, (size_t)(len - want_len), want_len);
    if (n != len - want_len)
        ret = n < 0 ? -errno : -ENOSPC;
    else if (fsync(fd) < 0)
        ret = -errno;
out:
    close(fd);
    return ret;
}

void et_outbox_seq_mark_clean(struct et_outbox *ob)
{
    uint64_t hwm = ob->seq_high > ob->next_seq - 1 ? ob->seq_high : ob->next_seq - 1;
    int ret = seq_file_write(ob, ob->reserved, true, hwm);

    if (ret < 0 && seq_mark_in_place(ob, hwm) == 0) {
        et_debug(OUTBOX_LOG, "%s: clean stop recorded in place (%s)", ob->seq_path,
                 strerror(-ret));
        return;
    }
    if (ret < 0)
        et_warn(OUTBOX_LOG, "%s: cannot record the clean stop: %s; the next start will take it "
                "for a crash and skip to seq %" PRIu64 " (nothing is lost)", ob->seq_path,
                strerror(-ret), ob->reserved + 1);
}
